//! [`TcpStream`]: a connected TCP socket.
//!
//! Every operation is one line into the shared stream implementation
//! (`net::split::sealed::Stream`, over the readiness core `io::Evented`), so TCP and
//! Unix streams and all their halves share one read/write loop.

use std::fmt;
use std::future::Future;
use std::io::{self, IoSlice, IoSliceMut};
use std::net::Shutdown;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};
use std::task::{Context, Poll};
use std::time::Duration;

use socket2::SockRef;

use super::options;
use super::{Keepalive, OwnedReadHalf, OwnedWriteHalf, ReadHalf, TcpSocket, WriteHalf};
use crate::io::{Evented, Interest, Ready};
use crate::net::split::{self, sealed::Stream};
use crate::net::Address;

/// A TCP connection between a local and a remote socket.
///
/// Made by [`TcpStream::connect`], [`TcpSocket::connect`], accepted from a
/// [`TcpListener`](crate::net::TcpListener), or adopted with [`TcpStream::from_std`].
/// Dropping it closes the connection (see [`set_linger`](Self::set_linger) for what
/// happens to unsent data).
///
/// Two tiers, as everywhere in blitz-io:
///
/// * `try_read`, `try_write`, ...: one non-blocking system call, usable from any thread
///   with no runtime; `Ok(None)` means "would block".
/// * `read`, `write`, `write_all`, `readable`, ...: futures that wait for readiness
///   through the runtime's I/O driver (or the fallback driver outside a runtime).
///
/// A connection reset by the peer is an error of kind
/// [`ConnectionReset`](io::ErrorKind::ConnectionReset), never a silent `0`. Writing to a
/// closed connection is `BrokenPipe` or `ConnectionReset` and never raises `SIGPIPE`.
///
/// For reading and writing from two tasks at once, split the stream with
/// [`split`](Self::split) or [`into_split`](Self::into_split).
///
/// # Examples
///
/// ```
/// use blitz_io::net::{TcpListener, TcpStream};
///
/// # blitz_io::run(async {
/// # let listener = TcpListener::bind(([127, 0, 0, 1], 0))?;
/// # let addr = listener.local_addr()?;
/// # let server = blitz_io::task::spawn(async move {
/// #     let mut s = listener.accept().await?.stream;
/// #     let mut buf = [0u8; 5];
/// #     let n = s.read(&mut buf).await?;
/// #     s.write_all(&buf[..n]).await
/// # });
/// let mut stream = TcpStream::connect(addr).await?;
/// stream.write_all(b"hello").await?;
/// let mut buf = [0u8; 5];
/// let n = stream.read(&mut buf).await?;
/// assert_eq!(&buf[..n], b"hello");
/// # server.await??;
/// # Ok::<(), std::io::Error>(())
/// # }).unwrap();
/// ```
pub struct TcpStream {
    io: Evented<mio::net::TcpStream>,
}

// `evented` returns a crate-private type through the sealed trait (see `net::split`).
#[allow(private_interfaces)]
impl Stream for TcpStream {
    type Io = mio::net::TcpStream;
    type Addr = Address;

    fn evented(&self) -> &Evented<mio::net::TcpStream> {
        &self.io
    }

    fn local_addr(&self) -> io::Result<Address> {
        self.io.get().local_addr().map(Address::from)
    }

    fn peer_addr(&self) -> io::Result<Address> {
        self.io.get().peer_addr().map(Address::from)
    }

    fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        self.io.get().shutdown(how)
    }

    fn take_error(&self) -> io::Result<Option<io::Error>> {
        self.io.get().take_error()
    }
}

impl TcpStream {
    /// Wraps a non-blocking mio stream (connected, or with a connect in progress).
    pub(crate) fn from_mio(io: mio::net::TcpStream) -> io::Result<TcpStream> {
        crate::sys::set_nosigpipe(io.as_fd())?;
        Ok(TcpStream { io: Evented::new(io) })
    }

    /// Waits for the connect in progress on `io` to finish.
    pub(crate) async fn connect_mio(io: mio::net::TcpStream) -> io::Result<TcpStream> {
        split::connected(TcpStream::from_mio(io)?).await
    }

    /// Opens a TCP connection to `addr`.
    ///
    /// The connect is non-blocking: the task waits for the handshake through the I/O
    /// driver. To set options before connecting (buffer sizes, a local address), use
    /// [`TcpSocket`]. To connect to a host name, use
    /// [`connect_host`](crate::net::connect_host).
    ///
    /// # Errors
    ///
    /// - `ConnectionRefused` if nothing listens at `addr`.
    /// - `InvalidInput` if the port is 0.
    /// - Other OS errors (`NetworkUnreachable`, `TimedOut`, `AddrNotAvailable`, ...).
    ///
    /// # Cancel safety
    ///
    /// Not cancel safe in the sense that dropping the future abandons the connection
    /// attempt (the socket is closed); nothing else is lost.
    ///
    /// # Examples
    ///
    /// ```
    /// use blitz_io::net::{TcpListener, TcpStream};
    ///
    /// # blitz_io::run(async {
    /// let listener = TcpListener::bind(([127, 0, 0, 1], 0))?;
    /// let stream = TcpStream::connect(listener.local_addr()?).await?;
    /// assert_eq!(stream.peer_addr()?, listener.local_addr()?);
    /// # Ok::<(), std::io::Error>(())
    /// # }).unwrap();
    /// ```
    pub async fn connect(addr: impl Into<Address>) -> io::Result<TcpStream> {
        let addr = addr.into();
        TcpSocket::for_addr(addr)?.connect(addr).await
    }

    /// Adopts a connected `std::net::TcpStream`, switching it to non-blocking mode.
    ///
    /// # Errors
    ///
    /// The OS error if the mode cannot be changed.
    ///
    /// # Examples
    ///
    /// ```
    /// use blitz_io::net::TcpStream;
    ///
    /// let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    /// let std_stream = std::net::TcpStream::connect(listener.local_addr()?)?;
    /// let stream = TcpStream::from_std(std_stream)?;
    /// assert_eq!(stream.peer_addr()?.to_std(), listener.local_addr()?);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn from_std(stream: std::net::TcpStream) -> io::Result<TcpStream> {
        stream.set_nonblocking(true)?;
        TcpStream::from_mio(mio::net::TcpStream::from_std(stream))
    }

    /// Turns this stream back into a `std::net::TcpStream`, deregistered from the driver
    /// and **back in blocking mode**, ready for std's blocking calls.
    ///
    /// # Errors
    ///
    /// The OS error if the mode cannot be changed.
    ///
    /// # Examples
    ///
    /// ```
    /// use blitz_io::net::{TcpListener, TcpStream};
    /// use std::io::Write;
    ///
    /// # blitz_io::run(async {
    /// let listener = TcpListener::bind(([127, 0, 0, 1], 0))?;
    /// let stream = TcpStream::connect(listener.local_addr()?).await?;
    /// let mut std_stream = stream.into_std()?;
    /// std_stream.write_all(b"blocking now")?;
    /// # Ok::<(), std::io::Error>(())
    /// # }).unwrap();
    /// ```
    pub fn into_std(self) -> io::Result<std::net::TcpStream> {
        let stream = std::net::TcpStream::from(self.io.into_inner());
        stream.set_nonblocking(false)?;
        Ok(stream)
    }

    /// Reads what is available without waiting: `Ok(Some(n))` with `n` bytes read,
    /// `Ok(Some(0))` once the peer has shut down its write side (or for an empty `buf`),
    /// and `Ok(None)` if no data is available yet. Needs no runtime.
    ///
    /// `Ok(None)` also clears the driver's cached readiness, so a loop of
    /// [`readable`](Self::readable)`.await` and `try_read` never spins.
    ///
    /// # Errors
    ///
    /// `ConnectionReset` if the peer reset the connection; other OS errors.
    ///
    /// # Examples
    ///
    /// ```
    /// use blitz_io::net::{TcpListener, TcpStream};
    ///
    /// # blitz_io::run(async {
    /// let listener = TcpListener::bind(([127, 0, 0, 1], 0))?;
    /// let client = TcpStream::connect(listener.local_addr()?).await?;
    /// let server = listener.accept().await?.stream;
    /// let mut buf = [0u8; 16];
    /// assert_eq!(server.try_read(&mut buf)?, None); // nothing sent yet
    /// client.try_write(b"hi")?;
    /// loop {
    ///     server.readable().await?;
    ///     if let Some(n) = server.try_read(&mut buf)? {
    ///         assert_eq!(&buf[..n], b"hi");
    ///         break;
    ///     }
    /// }
    /// # Ok::<(), std::io::Error>(())
    /// # }).unwrap();
    /// ```
    pub fn try_read(&self, buf: &mut [u8]) -> io::Result<Option<usize>> {
        Stream::try_read(self, buf)
    }

    /// Like [`try_read`](Self::try_read), but the bytes stay in the socket
    /// (`MSG_PEEK`): the next read returns them again.
    ///
    /// # Errors
    ///
    /// As [`try_read`](Self::try_read).
    pub fn try_peek(&self, buf: &mut [u8]) -> io::Result<Option<usize>> {
        Stream::try_peek(self, buf)
    }

    /// Writes what fits in the send buffer without waiting: `Ok(Some(n))` with `n`
    /// bytes written (possibly fewer than `data.len()`), `Ok(None)` if the buffer is
    /// full. Needs no runtime. Never raises `SIGPIPE`.
    ///
    /// # Errors
    ///
    /// `BrokenPipe` or `ConnectionReset` if the peer is gone; other OS errors.
    ///
    /// # Examples
    ///
    /// ```
    /// use blitz_io::net::{TcpListener, TcpStream};
    ///
    /// # blitz_io::run(async {
    /// let listener = TcpListener::bind(([127, 0, 0, 1], 0))?;
    /// let client = TcpStream::connect(listener.local_addr()?).await?;
    /// assert_eq!(client.try_write(b"abc")?, Some(3));
    /// # Ok::<(), std::io::Error>(())
    /// # }).unwrap();
    /// ```
    pub fn try_write(&self, data: &[u8]) -> io::Result<Option<usize>> {
        Stream::try_write(self, data)
    }

    /// [`try_read`](Self::try_read) into several buffers (`readv`), filled in order.
    ///
    /// # Errors
    ///
    /// As [`try_read`](Self::try_read).
    pub fn try_read_vectored(&self, bufs: &mut [IoSliceMut<'_>]) -> io::Result<Option<usize>> {
        Stream::try_read_vectored(self, bufs)
    }

    /// [`try_write`](Self::try_write) from several buffers (`sendmsg`), in order.
    ///
    /// # Errors
    ///
    /// As [`try_write`](Self::try_write).
    pub fn try_write_vectored(&self, bufs: &[IoSlice<'_>]) -> io::Result<Option<usize>> {
        Stream::try_write_vectored(self, bufs)
    }

    /// Waits for data and reads it into `buf`; returns the number of bytes read. `Ok(0)`
    /// means the peer shut down its write side (or `buf` is empty).
    ///
    /// # Errors
    ///
    /// `ConnectionReset` if the peer reset the connection; other OS errors.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: if the future is dropped before it completes, no data was read, and
    /// a later read gets all of it.
    pub fn read<'a>(&'a mut self, buf: &'a mut [u8]) -> impl Future<Output = io::Result<usize>> + 'a {
        split::read(&*self, buf)
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
    /// client.write_all(b"GET /").await?;
    /// let mut buf = [0u8; 3];
    /// let n = server.peek(&mut buf).await?;
    /// assert_eq!(&buf[..n], &b"GET"[..n]);
    /// let n = server.read(&mut buf).await?; // the same bytes again
    /// assert_eq!(&buf[..n], &b"GET"[..n]);
    /// # Ok::<(), std::io::Error>(())
    /// # }).unwrap();
    /// ```
    pub fn peek<'a>(&'a mut self, buf: &'a mut [u8]) -> impl Future<Output = io::Result<usize>> + 'a {
        split::peek(&*self, buf)
    }

    /// Waits until the socket is writable and writes some of `data`; returns how many
    /// bytes were written.
    ///
    /// # Errors
    ///
    /// `BrokenPipe` or `ConnectionReset` if the peer is gone; other OS errors.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: if the future is dropped before it completes, nothing was written.
    pub fn write<'a>(&'a mut self, data: &'a [u8]) -> impl Future<Output = io::Result<usize>> + 'a {
        split::write(&*self, data)
    }

    /// Writes all of `data`, waiting for the socket as needed and looping over partial
    /// writes.
    ///
    /// # Errors
    ///
    /// As [`write`](Self::write); `WriteZero` if the socket accepts no bytes.
    ///
    /// # Cancel safety
    ///
    /// **Not cancel safe**: if the future is dropped before it completes, some prefix of
    /// `data` may already have been written and there is no way to know how much. Use
    /// [`write`](Self::write) in a loop when that matters.
    pub fn write_all<'a>(&'a mut self, data: &'a [u8]) -> impl Future<Output = io::Result<()>> + 'a {
        split::write_all(&*self, data)
    }

    /// Waits until the stream may be readable: data, end-of-stream or an error is
    /// pending. A following `try_read` may still return `Ok(None)` (the readiness was
    /// stale); loop.
    ///
    /// # Errors
    ///
    /// An error if the runtime driving the socket has shut down.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: dropping the future loses no readiness event.
    pub fn readable(&self) -> impl Future<Output = io::Result<()>> + '_ {
        split::ready_unit(self, Interest::READABLE)
    }

    /// Waits until the stream may be writable. A following `try_write` may still return
    /// `Ok(None)`; loop.
    ///
    /// # Errors
    ///
    /// An error if the runtime driving the socket has shut down.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: dropping the future loses no readiness event.
    pub fn writable(&self) -> impl Future<Output = io::Result<()>> + '_ {
        split::ready_unit(self, Interest::WRITABLE)
    }

    /// Waits for any of the readiness in `interest` and returns what is ready
    /// (`is_readable`, `is_writable`, `is_read_closed`, `is_write_closed`).
    ///
    /// Any number of tasks may wait on one stream at once.
    ///
    /// # Errors
    ///
    /// An error if the runtime driving the socket has shut down.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: dropping the future loses no readiness event.
    ///
    /// # Examples
    ///
    /// ```
    /// use blitz_io::net::{Interest, TcpListener, TcpStream};
    ///
    /// # blitz_io::run(async {
    /// let listener = TcpListener::bind(([127, 0, 0, 1], 0))?;
    /// let stream = TcpStream::connect(listener.local_addr()?).await?;
    /// let ready = stream.ready(Interest::READABLE | Interest::WRITABLE).await?;
    /// assert!(ready.is_writable());
    /// # Ok::<(), std::io::Error>(())
    /// # }).unwrap();
    /// ```
    pub fn ready(&self, interest: Interest) -> impl Future<Output = io::Result<Ready>> + '_ {
        split::ready(self, interest)
    }

    /// The poll form of [`read`](Self::read), for `AsyncRead`-style adapters. A read
    /// shorter than `buf` clears the cached readiness.
    ///
    /// Uses the stream's single read waker slot: two tasks polling reads on one stream
    /// at once replace each other's waker (see [`net::split`](crate::net::split)).
    ///
    /// # Errors
    ///
    /// As [`read`](Self::read).
    pub fn poll_read(&self, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
        Stream::poll_read(self, cx, buf)
    }

    /// The poll form of [`peek`](Self::peek) (read waker slot).
    ///
    /// # Errors
    ///
    /// As [`read`](Self::read).
    pub fn poll_peek(&self, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
        Stream::poll_peek(self, cx, buf)
    }

    /// The poll form of [`write`](Self::write), for `AsyncWrite`-style adapters (write
    /// waker slot).
    ///
    /// # Errors
    ///
    /// As [`write`](Self::write).
    pub fn poll_write(&self, cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
        Stream::poll_write(self, cx, data)
    }

    /// The poll form of a vectored write (write waker slot).
    ///
    /// # Errors
    ///
    /// As [`write`](Self::write).
    pub fn poll_write_vectored(&self, cx: &mut Context<'_>, bufs: &[IoSlice<'_>]) -> Poll<io::Result<usize>> {
        Stream::poll_write_vectored(self, cx, bufs)
    }

    /// Polls for read readiness (read waker slot).
    ///
    /// # Errors
    ///
    /// An error if the runtime driving the socket has shut down.
    pub fn poll_read_ready(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Stream::poll_read_ready(self, cx)
    }

    /// Polls for write readiness (write waker slot).
    ///
    /// # Errors
    ///
    /// An error if the runtime driving the socket has shut down.
    pub fn poll_write_ready(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Stream::poll_write_ready(self, cx)
    }

    /// Shuts down the read side, the write side, or both. After `Shutdown::Write` the
    /// peer reads end-of-stream once it has read everything sent before.
    ///
    /// # Errors
    ///
    /// `NotConnected` if the connection is gone; other OS errors.
    ///
    /// # Examples
    ///
    /// ```
    /// use blitz_io::net::{TcpListener, TcpStream};
    /// use std::net::Shutdown;
    ///
    /// # blitz_io::run(async {
    /// let listener = TcpListener::bind(([127, 0, 0, 1], 0))?;
    /// let client = TcpStream::connect(listener.local_addr()?).await?;
    /// let mut server = listener.accept().await?.stream;
    /// client.shutdown(Shutdown::Write)?;
    /// let mut buf = [0u8; 4];
    /// assert_eq!(server.read(&mut buf).await?, 0);
    /// # Ok::<(), std::io::Error>(())
    /// # }).unwrap();
    /// ```
    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        Stream::shutdown(self, how)
    }

    /// Borrows the stream as a read half and a write half, usable at the same time
    /// (each waits in its own waker slot).
    pub fn split(&mut self) -> (ReadHalf<'_>, WriteHalf<'_>) {
        (ReadHalf::new(self), WriteHalf::new(self))
    }

    /// Splits the stream into owned halves (`Send + 'static`) that can move into two
    /// tasks. Dropping the write half shuts the write direction down;
    /// [`OwnedReadHalf::reunite`](crate::net::split::OwnedReadHalf::reunite) puts them
    /// back together.
    pub fn into_split(self) -> (OwnedReadHalf, OwnedWriteHalf) {
        split::into_split(self)
    }

    /// The local address of the connection.
    ///
    /// # Errors
    ///
    /// The OS error from `getsockname`.
    pub fn local_addr(&self) -> io::Result<Address> {
        Stream::local_addr(self)
    }

    /// The address of the peer.
    ///
    /// # Errors
    ///
    /// `NotConnected` if the connection is gone; other OS errors.
    pub fn peer_addr(&self) -> io::Result<Address> {
        Stream::peer_addr(self)
    }

    /// Sets `TCP_NODELAY`: `true` sends small writes at once instead of letting Nagle's
    /// algorithm hold them back to coalesce.
    ///
    /// # Errors
    ///
    /// The OS error from `setsockopt`.
    ///
    /// # Examples
    ///
    /// ```
    /// use blitz_io::net::{TcpListener, TcpStream};
    ///
    /// # blitz_io::run(async {
    /// let listener = TcpListener::bind(([127, 0, 0, 1], 0))?;
    /// let stream = TcpStream::connect(listener.local_addr()?).await?;
    /// stream.set_nodelay(true)?;
    /// assert!(stream.nodelay()?);
    /// # Ok::<(), std::io::Error>(())
    /// # }).unwrap();
    /// ```
    pub fn set_nodelay(&self, on: bool) -> io::Result<()> {
        self.io.get().set_nodelay(on)
    }

    /// Whether `TCP_NODELAY` is set.
    ///
    /// # Errors
    ///
    /// The OS error from `getsockopt`.
    pub fn nodelay(&self) -> io::Result<bool> {
        self.io.get().nodelay()
    }

    /// Sets the IP time-to-live of outgoing packets (`IP_TTL`, or `IPV6_UNICAST_HOPS` on
    /// an IPv6 connection; `IP_TTL` on a dual-stack socket talking to an IPv4 peer,
    /// whose packets are IPv4).
    ///
    /// # Errors
    ///
    /// `InvalidInput` for 0 or a value above 255; the OS error otherwise.
    pub fn set_ttl(&self, ttl: u32) -> io::Result<()> {
        if ttl == 0 || ttl > 255 {
            return Err(crate::error::invalid_input(format!("TTL must be between 1 and 255, got {ttl}")));
        }
        if self.sends_ipv4()? {
            SockRef::from(self.io.get()).set_ttl_v4(ttl)
        } else {
            SockRef::from(self.io.get()).set_unicast_hops_v6(ttl)
        }
    }

    /// Whether the packets this stream sends are IPv4: an IPv4 socket, or an IPv6 one
    /// whose local address is IPv4-mapped (`::ffff:a.b.c.d`, a dual-stack connection).
    fn sends_ipv4(&self) -> io::Result<bool> {
        Ok(match self.local_addr()?.ip() {
            std::net::IpAddr::V4(_) => true,
            std::net::IpAddr::V6(ip) => ip.to_ipv4_mapped().is_some(),
        })
    }

    /// The IP time-to-live of outgoing packets.
    ///
    /// # Errors
    ///
    /// The OS error from `getsockopt`.
    pub fn ttl(&self) -> io::Result<u32> {
        if self.sends_ipv4()? {
            SockRef::from(self.io.get()).ttl_v4()
        } else {
            SockRef::from(self.io.get()).unicast_hops_v6()
        }
    }

    /// Sets `SO_LINGER`: what dropping the stream does with unsent data.
    ///
    /// - `None` (the default): the drop returns at once; the kernel sends what is queued
    ///   in the background and ends with a normal FIN.
    /// - `Some(Duration::ZERO)`: abortive close. Queued data is discarded and the peer
    ///   gets a reset (`ConnectionReset`). The drop never blocks.
    /// - `Some(d)`, `d > 0`: **the drop blocks the calling thread** (in async code, a
    ///   runtime worker and every task queued on it) until the data is acknowledged or
    ///   `d` passes. Avoid in async code: prefer `shutdown(Shutdown::Write)` and reading
    ///   to end-of-stream.
    ///
    /// # Errors
    ///
    /// `InvalidInput` if `d` is too long for the kernel; the OS error otherwise.
    pub fn set_linger(&self, d: Option<Duration>) -> io::Result<()> {
        options::set_linger(&SockRef::from(self.io.get()), d)
    }

    /// The `SO_LINGER` setting: `None` when off.
    ///
    /// # Errors
    ///
    /// The OS error from `getsockopt`.
    pub fn linger(&self) -> io::Result<Option<Duration>> {
        options::linger(&SockRef::from(self.io.get()))
    }

    /// Turns TCP keepalive on with the given settings, or off with `None`. See
    /// [`Keepalive`].
    ///
    /// # Errors
    ///
    /// `InvalidInput` for a zero or too-large field; the OS error otherwise.
    pub fn set_keepalive(&self, ka: Option<Keepalive>) -> io::Result<()> {
        options::set_keepalive(&SockRef::from(self.io.get()), ka)
    }

    /// The keepalive settings, `None` when keepalive is off.
    ///
    /// # Errors
    ///
    /// The OS error from `getsockopt`.
    pub fn keepalive(&self) -> io::Result<Option<Keepalive>> {
        options::keepalive(&SockRef::from(self.io.get()))
    }

    /// Reads and clears the socket's pending error (`SO_ERROR`).
    ///
    /// # Errors
    ///
    /// The OS error from `getsockopt` itself.
    pub fn take_error(&self) -> io::Result<Option<io::Error>> {
        Stream::take_error(self)
    }
}

impl AsRawFd for TcpStream {
    fn as_raw_fd(&self) -> RawFd {
        self.io.get().as_raw_fd()
    }
}

impl AsFd for TcpStream {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.io.get().as_fd()
    }
}

impl TryFrom<std::net::TcpStream> for TcpStream {
    type Error = io::Error;

    /// The same as [`TcpStream::from_std`].
    fn try_from(stream: std::net::TcpStream) -> io::Result<TcpStream> {
        TcpStream::from_std(stream)
    }
}

impl fmt::Debug for TcpStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("TcpStream");
        if let Ok(a) = self.local_addr() {
            d.field("local", &a);
        }
        if let Ok(a) = self.peer_addr() {
            d.field("peer", &a);
        }
        d.field("fd", &self.as_raw_fd()).finish()
    }
}
