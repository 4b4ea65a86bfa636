//! Stream halves, generic over the stream type: [`ReadHalf`], [`WriteHalf`],
//! [`OwnedReadHalf`], [`OwnedWriteHalf`] and [`ReuniteError`].
//!
//! [`TcpStream`] and [`UnixStream`](crate::net::UnixStream) both split into these
//! types. `net::tcp` and `net::unix` re-export them under the same names with the stream
//! type filled in (`net::tcp::ReadHalf<'a>` is `ReadHalf<'a, TcpStream>`), so user code
//! rarely names the type parameter.
//!
//! # One implementation of the stream operations
//!
//! This module also holds the crate-private `Stream` trait: a stream
//! type hands out its readiness core (`Evented`) and its address and shutdown calls, and
//! the trait's provided methods implement every read, peek and write (non-blocking and
//! `poll_*` forms) once. `TcpStream`, `UnixStream` and the four half types all delegate
//! to them in one line, so there is no per-type copy of the read/write loop.
//!
//! The data methods (`read`, `peek`, `write`, `write_all`, and `UdpSocket`'s `send`,
//! `recv`, `send_to`, `recv_from`, `peek_from`) are plain functions that return the
//! operation's future, `fn read<'a>(&'a mut self, buf: &'a mut [u8]) -> impl Future<..> +
//! 'a`: to a caller the same as the `async fn` of the API (call, then `.await`), but
//! without an `async fn`'s own state machine wrapped around the inner future. That
//! wrapper cost 33 instructions per round trip on the 1-connection echo (callgrind:
//! 902 → 869), on the path from a wake-up to the `recvfrom`.
//!
//! # Concurrency of the halves
//!
//! A read half waits in the socket's *read* waker slot and a write half in its *write*
//! slot, so the two halves of one stream run in two tasks at once without disturbing
//! each other.
//!
//! # Caveats
//!
//! Each direction has one waker slot. Two tasks reading one stream through the
//! slot-based forms at once (for example two tasks calling [`TcpStream::poll_read`] on a
//! shared `&TcpStream`) replace each other's waker, and one of them may then sleep while
//! data waits. That is a misuse, with the same contract as `AsyncRead`: give each
//! direction a single reader and a single writer (which is what the halves do), or use
//! the `&self` readiness futures (`readable`, `writable`, `ready`), which keep a waiter
//! list and support any number of tasks.

use std::error::Error;
use std::fmt;
use std::future::{poll_fn, Future};
use std::io::{self, IoSlice, IoSliceMut};
use std::net::Shutdown;
use std::os::fd::{AsFd, AsRawFd};
use std::sync::Arc;
use std::task::{ready, Context, Poll};

use crate::io::{Evented, Interest, Ready};
use crate::net::TcpStream;
use crate::runtime::io::Direction;

pub(crate) mod sealed {
    //! The crate-private stream trait (sealed: nameable in bounds, implementable only
    //! here).

    use super::*;

    /// A connected stream socket: TCP or Unix. Implemented by `TcpStream` and
    /// `UnixStream` only.
    ///
    /// The required methods expose the socket; the provided methods are *the*
    /// implementation of every stream read, peek and write in the crate.
    ///
    /// The trait is `pub` only so that it may bound the public half types; it lives in a
    /// crate-private module, so no user can name, implement or call it, and the
    /// crate-private `Evented` it hands out never leaks.
    #[allow(private_interfaces)]
    pub trait Stream: Sized + Send + Sync + 'static {
        /// The non-blocking socket inside the readiness core.
        type Io: AsRawFd + AsFd;
        /// The address type (`Address` or `UnixAddr`).
        type Addr;

        /// The readiness core.
        fn evented(&self) -> &Evented<Self::Io>;
        /// `getsockname`.
        fn local_addr(&self) -> io::Result<Self::Addr>;
        /// `getpeername`.
        fn peer_addr(&self) -> io::Result<Self::Addr>;
        /// `shutdown(2)`.
        fn shutdown(&self, how: Shutdown) -> io::Result<()>;
        /// `SO_ERROR`, which reading clears.
        fn take_error(&self) -> io::Result<Option<io::Error>>;

        /// One non-blocking `recv`; `Ok(None)` on would-block. An empty `buf` gives
        /// `Ok(Some(0))` at once, as `read(2)` does: a zero-length `recv` on a stream
        /// socket says `EAGAIN` while no data is queued, and a read would then wait for
        /// data it cannot take.
        fn try_read(&self, buf: &mut [u8]) -> io::Result<Option<usize>> {
            if buf.is_empty() {
                return Ok(Some(0));
            }
            self.evented().try_io(Interest::READABLE, |s| crate::sys::recv(s.as_fd(), buf, false))
        }

        /// One non-blocking `recv(MSG_PEEK)`; `Ok(None)` on would-block. An empty `buf`
        /// gives `Ok(Some(0))` at once.
        fn try_peek(&self, buf: &mut [u8]) -> io::Result<Option<usize>> {
            if buf.is_empty() {
                return Ok(Some(0));
            }
            self.evented().try_io(Interest::READABLE, |s| crate::sys::recv(s.as_fd(), buf, true))
        }

        /// One non-blocking `send` (never `SIGPIPE`); `Ok(None)` on would-block.
        fn try_write(&self, data: &[u8]) -> io::Result<Option<usize>> {
            self.evented().try_io(Interest::WRITABLE, |s| crate::sys::send(s.as_fd(), data))
        }

        /// One non-blocking scatter read; `Ok(None)` on would-block. No room in `bufs`
        /// gives `Ok(Some(0))` at once.
        fn try_read_vectored(&self, bufs: &mut [IoSliceMut<'_>]) -> io::Result<Option<usize>> {
            if bufs.iter().all(|b| b.is_empty()) {
                return Ok(Some(0));
            }
            self.evented().try_io(Interest::READABLE, |s| crate::sys::recv_vectored(s.as_fd(), bufs))
        }

        /// One non-blocking gather write (never `SIGPIPE`); `Ok(None)` on would-block.
        fn try_write_vectored(&self, bufs: &[IoSlice<'_>]) -> io::Result<Option<usize>> {
            self.evented().try_io(Interest::WRITABLE, |s| crate::sys::send_vectored(s.as_fd(), bufs))
        }

        /// Reads when readable (read slot).
        ///
        /// A read shorter than the buffer consumed everything the socket had (unless TCP
        /// urgent data is pending: the kernel then stops a read at the urgent mark, and
        /// the readiness core keeps the socket readable, see `scheduled_io`): readiness
        /// is cleared then (keeping a pending EOF), which saves the `EAGAIN` round trip
        /// the next read would otherwise pay. A newer edge is never lost: the clear is
        /// skipped if the driver saw an event since this readiness was observed.
        ///
        /// An empty `buf` completes at once with `Ok(0)` (see `try_read`).
        fn poll_read(&self, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
            let len = buf.len();
            if len == 0 {
                return Poll::Ready(Ok(0));
            }
            self.evented().poll_io(
                cx,
                Direction::Read,
                |s| crate::sys::recv(s.as_fd(), buf, false),
                |&n| n > 0 && n < len,
            )
        }

        /// Peeks when readable (read slot); consumes nothing.
        fn poll_peek(&self, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
            if buf.is_empty() {
                return Poll::Ready(Ok(0));
            }
            self.evented().poll_io(cx, Direction::Read, |s| crate::sys::recv(s.as_fd(), buf, true), |_| false)
        }

        /// Writes when writable (write slot).
        fn poll_write(&self, cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
            self.evented().poll_io(cx, Direction::Write, |s| crate::sys::send(s.as_fd(), data), |_| false)
        }

        /// Gather-writes when writable (write slot).
        fn poll_write_vectored(&self, cx: &mut Context<'_>, bufs: &[IoSlice<'_>]) -> Poll<io::Result<usize>> {
            self.evented().poll_io(cx, Direction::Write, |s| crate::sys::send_vectored(s.as_fd(), bufs), |_| false)
        }

        /// Waits (read slot) until the socket may be readable.
        fn poll_read_ready(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
            self.evented().poll_ready(cx, Direction::Read).map_ok(|_| ())
        }

        /// Waits (write slot) until the socket may be writable.
        fn poll_write_ready(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
            self.evented().poll_ready(cx, Direction::Write).map_ok(|_| ())
        }
    }
}

use sealed::Stream;

/// Waits (waiter list) for any readiness in `interest`.
pub(crate) fn ready<S: Stream>(s: &S, interest: Interest) -> impl Future<Output = io::Result<Ready>> + '_ {
    s.evented().ready(interest)
}

/// Waits (waiter list) for readiness in `interest`, completing with `()`.
pub(crate) fn ready_unit<S: Stream>(s: &S, interest: Interest) -> impl Future<Output = io::Result<()>> + '_ {
    s.evented().ready_unit(interest)
}

/// Waits until the non-blocking `connect` started on `s` has finished, and returns `s`
/// connected, or the connect error (`ConnectionRefused`, `TimedOut`, ...).
pub(crate) async fn connected<S: Stream>(s: S) -> io::Result<S> {
    poll_fn(|cx| {
        s.evented().poll_io(
            cx,
            Direction::Write,
            |_| {
                // A failed connect leaves its error in SO_ERROR; one still in progress has
                // no peer yet. The first check runs before the socket is registered (and
                // readiness is only a hint), so "not connected yet" must be told apart
                // from "connected": it becomes `WouldBlock`, which waits for the real
                // writable edge.
                if let Some(e) = s.take_error()? {
                    return Err(e);
                }
                match s.peer_addr() {
                    Ok(_) => Ok(()),
                    Err(e) if e.kind() == io::ErrorKind::NotConnected => Err(io::ErrorKind::WouldBlock.into()),
                    Err(e) => Err(e),
                }
            },
            |_| false,
        )
    })
    .await?;
    Ok(s)
}

// `read`, `peek`, `write` and `write_all` return the `poll_fn` future itself rather
// than being `async fn`s that await it: the public `async fn`s that call them then hold
// one state machine instead of two nested ones (read and write_all together: about 70
// instructions per round trip on the 1-connection echo, callgrind).

/// Reads once, waiting for readiness (read slot).
pub(crate) fn read<'a, S: Stream>(s: &'a S, buf: &'a mut [u8]) -> impl Future<Output = io::Result<usize>> + 'a {
    poll_fn(move |cx| s.poll_read(cx, buf))
}

/// Peeks once, waiting for readiness (read slot).
pub(crate) fn peek<'a, S: Stream>(s: &'a S, buf: &'a mut [u8]) -> impl Future<Output = io::Result<usize>> + 'a {
    poll_fn(move |cx| s.poll_peek(cx, buf))
}

/// Writes once, waiting for readiness (write slot).
pub(crate) fn write<'a, S: Stream>(s: &'a S, data: &'a [u8]) -> impl Future<Output = io::Result<usize>> + 'a {
    poll_fn(move |cx| s.poll_write(cx, data))
}

/// Writes every byte of `data`, looping over partial writes (write slot).
pub(crate) fn write_all<'a, S: Stream>(s: &'a S, mut data: &'a [u8]) -> impl Future<Output = io::Result<()>> + 'a {
    poll_fn(move |cx| {
        while !data.is_empty() {
            let n = ready!(s.poll_write(cx, data))?;
            if n == 0 {
                let e = io::Error::new(io::ErrorKind::WriteZero, "the socket accepted 0 bytes of a non-empty write");
                return Poll::Ready(Err(e));
            }
            data = &data[n..];
        }
        Poll::Ready(Ok(()))
    })
}

// ===== borrowed halves =====

/// The read half of a stream borrowed by `split`: reads and peeks.
///
/// Made by [`TcpStream::split`] (as `net::tcp::ReadHalf`) or `UnixStream::split` (as
/// `net::unix::ReadHalf`). It borrows the stream, so it cannot outlive it or move into a
/// spawned task; use `into_split` for that. The read half and the write half can be
/// used at the same time (for example in two branches of a `join`).
///
/// # Examples
///
/// ```
/// use blitz_io::net::{TcpListener, TcpStream};
///
/// # blitz_io::run(async {
/// let listener = TcpListener::bind(([127, 0, 0, 1], 0))?;
/// let mut client = TcpStream::connect(listener.local_addr()?).await?;
/// let mut server = listener.accept().await?.stream;
///
/// let (mut rd, mut wr) = server.split();
/// wr.write_all(b"hello").await?;
/// let mut buf = [0u8; 5];
/// client.read(&mut buf).await?;
/// assert_eq!(&buf, b"hello");
/// client.write_all(b"back").await?;
/// let n = rd.read(&mut buf).await?;
/// assert_eq!(&buf[..n], b"back");
/// # Ok::<(), std::io::Error>(())
/// # }).unwrap();
/// ```
pub struct ReadHalf<'a, S: Stream = TcpStream> {
    stream: &'a S,
}

/// The write half of a stream borrowed by `split`: writes and shuts down writing.
///
/// See [`ReadHalf`]. Dropping a borrowed `WriteHalf` does **not** shut anything down
/// (the stream still owns the socket); call [`WriteHalf::shutdown`] to send end-of-stream.
///
/// # Examples
///
/// ```
/// use blitz_io::net::{TcpListener, TcpStream};
///
/// # blitz_io::run(async {
/// let listener = TcpListener::bind(([127, 0, 0, 1], 0))?;
/// let mut client = TcpStream::connect(listener.local_addr()?).await?;
/// let mut server = listener.accept().await?.stream;
///
/// let (_rd, mut wr) = client.split();
/// wr.write_all(b"bye").await?;
/// wr.shutdown()?;
/// let mut buf = [0u8; 8];
/// let mut got = Vec::new();
/// loop {
///     let n = server.read(&mut buf).await?;
///     if n == 0 { break; } // end-of-stream after the shutdown
///     got.extend_from_slice(&buf[..n]);
/// }
/// assert_eq!(got, b"bye");
/// # Ok::<(), std::io::Error>(())
/// # }).unwrap();
/// ```
pub struct WriteHalf<'a, S: Stream = TcpStream> {
    stream: &'a S,
}

/// The owned read half made by `into_split`: `Send + 'static`, so it can move into its
/// own task.
///
/// Get the stream back with [`OwnedReadHalf::reunite`].
///
/// # Examples
///
/// ```
/// use blitz_io::net::{TcpListener, TcpStream};
///
/// # blitz_io::run(async {
/// let listener = TcpListener::bind(([127, 0, 0, 1], 0))?;
/// let client = TcpStream::connect(listener.local_addr()?).await?;
/// let mut server = listener.accept().await?.stream;
///
/// let (mut rd, mut wr) = client.into_split();
/// let reader = blitz_io::task::spawn(async move {
///     let mut buf = [0u8; 4];
///     let n = rd.read(&mut buf).await?;
///     Ok::<_, std::io::Error>(buf[..n].to_vec())
/// });
/// wr.write_all(b"ping").await?;
/// let mut buf = [0u8; 4];
/// let n = server.read(&mut buf).await?;
/// server.write_all(&buf[..n]).await?;
/// assert_eq!(reader.await??, b"ping");
/// # Ok::<(), std::io::Error>(())
/// # }).unwrap();
/// ```
pub struct OwnedReadHalf<S: Stream = TcpStream> {
    stream: Arc<S>,
}

/// The owned write half made by `into_split`: `Send + 'static`.
///
/// **Dropping it shuts the write direction down** (the peer reads end-of-stream), as
/// does [`OwnedWriteHalf::shutdown`]. [`OwnedReadHalf::reunite`] takes it back without
/// shutting down.
///
/// # Examples
///
/// ```
/// use blitz_io::net::{TcpListener, TcpStream};
///
/// # blitz_io::run(async {
/// let listener = TcpListener::bind(([127, 0, 0, 1], 0))?;
/// let client = TcpStream::connect(listener.local_addr()?).await?;
/// let mut server = listener.accept().await?.stream;
///
/// let (_rd, mut wr) = client.into_split();
/// wr.write_all(b"last words").await?;
/// drop(wr); // shuts down the write direction
/// let mut all = Vec::new();
/// let mut buf = [0u8; 16];
/// loop {
///     let n = server.read(&mut buf).await?;
///     if n == 0 { break; }
///     all.extend_from_slice(&buf[..n]);
/// }
/// assert_eq!(all, b"last words");
/// # Ok::<(), std::io::Error>(())
/// # }).unwrap();
/// ```
pub struct OwnedWriteHalf<S: Stream = TcpStream> {
    stream: Arc<S>,
    shutdown_on_drop: bool,
}

/// The error of [`OwnedReadHalf::reunite`] when the halves come from different streams.
/// It gives both halves back, unchanged.
///
/// # Examples
///
/// ```
/// use blitz_io::net::UnixStream;
///
/// let (a, b) = UnixStream::pair()?;
/// let (a_rd, _a_wr) = a.into_split();
/// let (_b_rd, b_wr) = b.into_split();
/// let err = a_rd.reunite(b_wr).unwrap_err();
/// let (_a_rd, _b_wr) = (err.0, err.1);
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct ReuniteError<S: Stream = TcpStream>(pub OwnedReadHalf<S>, pub OwnedWriteHalf<S>);

impl<'a, S: Stream> ReadHalf<'a, S> {
    pub(crate) fn new(stream: &'a S) -> Self {
        ReadHalf { stream }
    }
}

impl<'a, S: Stream> WriteHalf<'a, S> {
    pub(crate) fn new(stream: &'a S) -> Self {
        WriteHalf { stream }
    }
}

/// Makes the owned halves of `stream`.
pub(crate) fn into_split<S: Stream>(stream: S) -> (OwnedReadHalf<S>, OwnedWriteHalf<S>) {
    let stream = Arc::new(stream);
    (OwnedReadHalf { stream: stream.clone() }, OwnedWriteHalf { stream, shutdown_on_drop: true })
}

/// The methods of the two read halves; `$s` is the expression giving `&S`.
macro_rules! read_half_methods {
    () => {
        /// Reads what is available without waiting: `Ok(Some(n))` with `n` bytes read
        /// (`Ok(Some(0))` once the peer has shut down its write side), `Ok(None)` if
        /// nothing is available yet. Needs no runtime.
        ///
        /// # Errors
        ///
        /// `ConnectionReset` if the peer reset the connection; other OS errors.
        pub fn try_read(&self, buf: &mut [u8]) -> io::Result<Option<usize>> {
            self.stream.try_read(buf)
        }

        /// Like [`try_read`](Self::try_read) but leaves the bytes in the socket.
        ///
        /// # Errors
        ///
        /// As [`try_read`](Self::try_read).
        pub fn try_peek(&self, buf: &mut [u8]) -> io::Result<Option<usize>> {
            self.stream.try_peek(buf)
        }

        /// Waits for data and reads it into `buf`; `Ok(0)` means end-of-stream (or an
        /// empty `buf`).
        ///
        /// # Errors
        ///
        /// `ConnectionReset` if the peer reset the connection; other OS errors.
        ///
        /// # Cancel safety
        ///
        /// Cancel safe: if the future is dropped before it completes, no data was read.
        pub fn read<'a>(&'a mut self, buf: &'a mut [u8]) -> impl Future<Output = io::Result<usize>> + 'a {
            read(&*self.stream, buf)
        }

        /// Waits for data and copies it into `buf` without consuming it (`MSG_PEEK`).
        ///
        /// # Errors
        ///
        /// As [`read`](Self::read).
        ///
        /// # Cancel safety
        ///
        /// Cancel safe: a peek consumes nothing.
        pub fn peek<'a>(&'a mut self, buf: &'a mut [u8]) -> impl Future<Output = io::Result<usize>> + 'a {
            peek(&*self.stream, buf)
        }

        /// Waits until the stream may be readable (a following `try_read` may still
        /// return `Ok(None)`).
        ///
        /// # Errors
        ///
        /// An error if the runtime driving the socket has shut down.
        ///
        /// # Cancel safety
        ///
        /// Cancel safe: dropping the future loses no readiness event.
        pub fn readable(&self) -> impl Future<Output = io::Result<()>> + '_ {
            ready_unit(&*self.stream, Interest::READABLE)
        }

        /// The poll form of [`read`](Self::read), for `AsyncRead`-style adapters. Uses the
        /// stream's read waker slot (see the module docs for the caveat).
        ///
        /// # Errors
        ///
        /// As [`read`](Self::read).
        pub fn poll_read(&mut self, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
            self.stream.poll_read(cx, buf)
        }

        /// The address of the peer.
        ///
        /// # Errors
        ///
        /// `NotConnected` if the connection is gone; other OS errors.
        pub fn peer_addr(&self) -> io::Result<S::Addr> {
            self.stream.peer_addr()
        }

        /// The local address of the stream.
        ///
        /// # Errors
        ///
        /// The OS error from `getsockname`.
        pub fn local_addr(&self) -> io::Result<S::Addr> {
            self.stream.local_addr()
        }
    };
}

/// The methods of the two write halves.
macro_rules! write_half_methods {
    () => {
        /// Writes what fits in the socket's send buffer without waiting: `Ok(Some(n))`,
        /// or `Ok(None)` if the buffer is full. Needs no runtime. Never raises `SIGPIPE`.
        ///
        /// # Errors
        ///
        /// `BrokenPipe` or `ConnectionReset` if the peer is gone; other OS errors.
        pub fn try_write(&self, data: &[u8]) -> io::Result<Option<usize>> {
            self.stream.try_write(data)
        }

        /// Waits until the socket is writable and writes some of `data`; returns how much.
        ///
        /// # Errors
        ///
        /// `BrokenPipe` or `ConnectionReset` if the peer is gone; other OS errors.
        ///
        /// # Cancel safety
        ///
        /// Cancel safe: if the future is dropped before it completes, nothing was written.
        pub fn write<'a>(&'a mut self, data: &'a [u8]) -> impl Future<Output = io::Result<usize>> + 'a {
            write(&*self.stream, data)
        }

        /// Writes all of `data`, waiting as needed and looping over partial writes.
        ///
        /// # Errors
        ///
        /// As [`write`](Self::write); `WriteZero` if the socket accepts nothing.
        ///
        /// # Cancel safety
        ///
        /// **Not cancel safe**: if the future is dropped, an unknown prefix of `data` may
        /// already have been written.
        pub fn write_all<'a>(&'a mut self, data: &'a [u8]) -> impl Future<Output = io::Result<()>> + 'a {
            write_all(&*self.stream, data)
        }

        /// Waits until the stream may be writable.
        ///
        /// # Errors
        ///
        /// An error if the runtime driving the socket has shut down.
        ///
        /// # Cancel safety
        ///
        /// Cancel safe: dropping the future loses no readiness event.
        pub fn writable(&self) -> impl Future<Output = io::Result<()>> + '_ {
            ready_unit(&*self.stream, Interest::WRITABLE)
        }

        /// Shuts down the write direction: the peer reads end-of-stream once it has read
        /// everything written before. The read direction stays open.
        ///
        /// # Errors
        ///
        /// `NotConnected` if the connection is already gone; other OS errors.
        pub fn shutdown(&self) -> io::Result<()> {
            self.stream.shutdown(Shutdown::Write)
        }

        /// The poll form of [`write`](Self::write), for `AsyncWrite`-style adapters. Uses
        /// the stream's write waker slot.
        ///
        /// # Errors
        ///
        /// As [`write`](Self::write).
        pub fn poll_write(&mut self, cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
            self.stream.poll_write(cx, data)
        }

        /// The address of the peer.
        ///
        /// # Errors
        ///
        /// `NotConnected` if the connection is gone; other OS errors.
        pub fn peer_addr(&self) -> io::Result<S::Addr> {
            self.stream.peer_addr()
        }

        /// The local address of the stream.
        ///
        /// # Errors
        ///
        /// The OS error from `getsockname`.
        pub fn local_addr(&self) -> io::Result<S::Addr> {
            self.stream.local_addr()
        }
    };
}

impl<S: Stream> ReadHalf<'_, S> {
    read_half_methods!();
}

impl<S: Stream> OwnedReadHalf<S> {
    read_half_methods!();

    /// Puts the two owned halves back together into the stream.
    ///
    /// # Errors
    ///
    /// [`ReuniteError`], holding both halves unchanged, if they come from different
    /// streams.
    ///
    /// # Examples
    ///
    /// ```
    /// use blitz_io::net::UnixStream;
    ///
    /// let (a, _b) = UnixStream::pair()?;
    /// let (rd, wr) = a.into_split();
    /// let a: UnixStream = rd.reunite(wr).expect("halves of one stream");
    /// # let _ = a;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn reunite(self, other: OwnedWriteHalf<S>) -> Result<S, ReuniteError<S>> {
        if !Arc::ptr_eq(&self.stream, &other.stream) {
            return Err(ReuniteError(self, other));
        }
        let mut other = other;
        other.shutdown_on_drop = false;
        drop(other);
        match Arc::try_unwrap(self.stream) {
            Ok(stream) => Ok(stream),
            // Only the two halves ever hold the `Arc`, and neither is `Clone`: with the
            // write half dropped above, this is the last reference.
            Err(_) => unreachable!("a stream half was shared beyond its two halves"),
        }
    }
}

impl<S: Stream> WriteHalf<'_, S> {
    write_half_methods!();
}

impl<S: Stream> OwnedWriteHalf<S> {
    write_half_methods!();

    /// Puts the two owned halves back together. The same as
    /// [`OwnedReadHalf::reunite`] with the arguments swapped.
    ///
    /// # Errors
    ///
    /// [`ReuniteError`] if the halves come from different streams.
    pub fn reunite(self, other: OwnedReadHalf<S>) -> Result<S, ReuniteError<S>> {
        other.reunite(self)
    }
}

impl<S: Stream> Drop for OwnedWriteHalf<S> {
    fn drop(&mut self) {
        if self.shutdown_on_drop {
            // The peer may already be gone (`NotConnected`): nothing to report from a drop.
            let _ = self.stream.shutdown(Shutdown::Write);
        }
    }
}

impl<S: Stream + fmt::Debug> fmt::Debug for ReadHalf<'_, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReadHalf").field("stream", self.stream).finish()
    }
}

impl<S: Stream + fmt::Debug> fmt::Debug for WriteHalf<'_, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WriteHalf").field("stream", self.stream).finish()
    }
}

impl<S: Stream + fmt::Debug> fmt::Debug for OwnedReadHalf<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OwnedReadHalf").field("stream", &*self.stream).finish()
    }
}

impl<S: Stream + fmt::Debug> fmt::Debug for OwnedWriteHalf<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OwnedWriteHalf").field("stream", &*self.stream).finish()
    }
}

impl<S: Stream> fmt::Debug for ReuniteError<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ReuniteError(..)")
    }
}

impl<S: Stream> fmt::Display for ReuniteError<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("tried to reunite halves that are not from the same stream")
    }
}

impl<S: Stream> Error for ReuniteError<S> {}
