//! [`UnixStream`]: a connected Unix domain stream socket.
//!
//! Reads, writes and halves share the one stream implementation of
//! [`net::split`](crate::net::split) with `TcpStream`.

use std::fmt;
use std::future::Future;
use std::io::{self, IoSlice, IoSliceMut};
use std::net::Shutdown;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};
use std::path::Path;
use std::task::{Context, Poll};
use std::time::Duration;

use socket2::{Domain, Socket, Type};

use super::{OwnedReadHalf, OwnedWriteHalf, ReadHalf, UCred, UnixAddr, WriteHalf};
use crate::io::{Evented, Interest, Ready};
use crate::net::split::{self, sealed::Stream};

/// A connected Unix domain stream socket: a byte stream between two processes (or two
/// tasks) on one host.
///
/// Made by [`UnixStream::connect`], [`UnixStream::pair`], accepted from a
/// [`UnixListener`](crate::net::UnixListener), or adopted with
/// [`UnixStream::from_std`]. The API mirrors [`TcpStream`](crate::net::TcpStream):
/// `try_*` calls need no runtime and return `Ok(None)` for "would block"; the futures
/// wait through the I/O driver. Writing to a closed peer is `BrokenPipe`, never
/// `SIGPIPE`.
///
/// # Examples
///
/// ```
/// use blitz_io::net::UnixStream;
///
/// # blitz_io::run(async {
/// let (mut a, mut b) = UnixStream::pair()?;
/// a.write_all(b"over the socket").await?;
/// let mut buf = [0u8; 32];
/// let n = b.read(&mut buf).await?;
/// assert_eq!(&buf[..n], b"over the socket");
/// # Ok::<(), std::io::Error>(())
/// # }).unwrap();
/// ```
pub struct UnixStream {
    io: Evented<mio::net::UnixStream>,
}

// `evented` returns a crate-private type through the sealed trait (see `net::split`).
#[allow(private_interfaces)]
impl Stream for UnixStream {
    type Io = mio::net::UnixStream;
    type Addr = UnixAddr;

    fn evented(&self) -> &Evented<mio::net::UnixStream> {
        &self.io
    }

    fn local_addr(&self) -> io::Result<UnixAddr> {
        socket2::SockRef::from(self.io.get()).local_addr().map(|a| UnixAddr::from_sockaddr(&a))
    }

    fn peer_addr(&self) -> io::Result<UnixAddr> {
        socket2::SockRef::from(self.io.get()).peer_addr().map(|a| UnixAddr::from_sockaddr(&a))
    }

    fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        self.io.get().shutdown(how)
    }

    fn take_error(&self) -> io::Result<Option<io::Error>> {
        self.io.get().take_error()
    }
}

impl UnixStream {
    pub(crate) fn from_mio(io: mio::net::UnixStream) -> io::Result<UnixStream> {
        crate::sys::set_nosigpipe(io.as_fd())?;
        Ok(UnixStream { io: Evented::new(io) })
    }

    /// Connects to the socket bound at `path`.
    ///
    /// # Errors
    ///
    /// - `InvalidInput` if the path is empty, holds a NUL byte, or is too long for
    ///   `sockaddr_un`.
    /// - `NotFound` if nothing exists at `path`; `ConnectionRefused` if the file is not
    ///   a listening socket (for example a stale one whose listener is gone);
    ///   `PermissionDenied`.
    ///
    /// A listener whose accept queue is full does not fail the connect: as a blocking
    /// `connect` would, the future waits until there is room (Linux refuses a
    /// non-blocking Unix connect then, so it tries again every few milliseconds, at most
    /// 50 ms apart). Bound the wait with [`timeout`](crate::time::timeout).
    ///
    /// # Cancel safety
    ///
    /// Dropping the future abandons the connection attempt.
    ///
    /// # Examples
    ///
    /// ```
    /// use blitz_io::net::{UnixListener, UnixStream};
    ///
    /// # blitz_io::run(async {
    /// # let dir = std::env::temp_dir().join(format!("blitz-doc-us-{}", std::process::id()));
    /// # std::fs::create_dir_all(&dir)?;
    /// let path = dir.join("app.sock");
    /// # let _ = std::fs::remove_file(&path);
    /// let listener = UnixListener::bind(&path)?;
    /// let client = UnixStream::connect(&path).await?;
    /// let server = listener.accept().await?.stream;
    /// assert_eq!(client.peer_addr()?.as_pathname(), Some(path.as_path()));
    /// # drop(server);
    /// # std::fs::remove_dir_all(&dir)?;
    /// # Ok::<(), std::io::Error>(())
    /// # }).unwrap();
    /// ```
    pub async fn connect(path: impl AsRef<Path>) -> io::Result<UnixStream> {
        let addr = UnixAddr::from_path(path)?;
        UnixStream::connect_addr(&addr).await
    }

    /// Connects to a Unix socket address: a path, or (on Linux and Android) an abstract
    /// name made with [`UnixAddr::from_abstract_name`].
    ///
    /// # Errors
    ///
    /// `InvalidInput` for an unnamed address; otherwise as [`connect`](Self::connect).
    ///
    /// # Cancel safety
    ///
    /// Dropping the future abandons the connection attempt.
    pub async fn connect_addr(addr: &UnixAddr) -> io::Result<UnixStream> {
        let sockaddr = addr.to_sockaddr()?;
        let socket = Socket::new(Domain::UNIX, Type::STREAM, None)?;
        socket.set_nonblocking(true)?;
        // A listener whose backlog is full makes a non-blocking Unix connect fail with
        // `EAGAIN` (not `EINPROGRESS`: nothing is pending, and no readiness will say when
        // there is room). A blocking connect would wait for room; so does this one, by
        // trying again after a pause (1 ms, doubling to 50 ms).
        let mut pause = Duration::from_millis(1);
        loop {
            match socket.connect(&sockaddr) {
                Ok(()) => break,
                Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => break,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    // (No panic where no timer can be had: see `net::backoff::pause`.)
                    crate::net::backoff::pause(pause).await;
                    pause = (pause * 2).min(Duration::from_millis(50));
                }
                Err(e) => return Err(e),
            }
        }
        let std = std::os::unix::net::UnixStream::from(std::os::fd::OwnedFd::from(socket));
        split::connected(UnixStream::from_mio(mio::net::UnixStream::from_std(std))?).await
    }

    /// A pair of connected, unnamed sockets (`socketpair`). Needs no runtime.
    ///
    /// # Errors
    ///
    /// The OS error (for example `EMFILE` when out of descriptors).
    ///
    /// # Examples
    ///
    /// ```
    /// use blitz_io::net::UnixStream;
    ///
    /// let (a, b) = UnixStream::pair()?;
    /// assert_eq!(a.try_write(b"x")?, Some(1));
    /// let mut buf = [0u8; 1];
    /// assert_eq!(b.try_read(&mut buf)?, Some(1));
    /// assert!(a.peer_addr()?.is_unnamed());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn pair() -> io::Result<(UnixStream, UnixStream)> {
        let (a, b) = mio::net::UnixStream::pair()?;
        Ok((UnixStream::from_mio(a)?, UnixStream::from_mio(b)?))
    }

    /// Adopts a connected `std::os::unix::net::UnixStream`, switching it to
    /// non-blocking mode.
    ///
    /// # Errors
    ///
    /// The OS error if the mode cannot be changed.
    pub fn from_std(stream: std::os::unix::net::UnixStream) -> io::Result<UnixStream> {
        stream.set_nonblocking(true)?;
        UnixStream::from_mio(mio::net::UnixStream::from_std(stream))
    }

    /// Turns this stream back into a `std::os::unix::net::UnixStream`, deregistered
    /// from the driver and **back in blocking mode**.
    ///
    /// # Errors
    ///
    /// The OS error if the mode cannot be changed.
    pub fn into_std(self) -> io::Result<std::os::unix::net::UnixStream> {
        let stream = std::os::unix::net::UnixStream::from(self.io.into_inner());
        stream.set_nonblocking(false)?;
        Ok(stream)
    }

    /// Reads what is available without waiting: `Ok(Some(n))`, `Ok(Some(0))` at
    /// end-of-stream, `Ok(None)` if nothing is available yet (which also clears the
    /// cached readiness). Needs no runtime.
    ///
    /// # Errors
    ///
    /// `ConnectionReset` if the peer closed with unread data; other OS errors.
    pub fn try_read(&self, buf: &mut [u8]) -> io::Result<Option<usize>> {
        Stream::try_read(self, buf)
    }

    /// Like [`try_read`](Self::try_read), but the bytes stay in the socket.
    ///
    /// # Errors
    ///
    /// As [`try_read`](Self::try_read).
    pub fn try_peek(&self, buf: &mut [u8]) -> io::Result<Option<usize>> {
        Stream::try_peek(self, buf)
    }

    /// Writes what fits without waiting: `Ok(Some(n))`, or `Ok(None)` if the buffer is
    /// full. Needs no runtime. Never raises `SIGPIPE`.
    ///
    /// # Errors
    ///
    /// `BrokenPipe` if the peer is gone; other OS errors.
    pub fn try_write(&self, data: &[u8]) -> io::Result<Option<usize>> {
        Stream::try_write(self, data)
    }

    /// [`try_read`](Self::try_read) into several buffers.
    ///
    /// # Errors
    ///
    /// As [`try_read`](Self::try_read).
    pub fn try_read_vectored(&self, bufs: &mut [IoSliceMut<'_>]) -> io::Result<Option<usize>> {
        Stream::try_read_vectored(self, bufs)
    }

    /// [`try_write`](Self::try_write) from several buffers.
    ///
    /// # Errors
    ///
    /// As [`try_write`](Self::try_write).
    pub fn try_write_vectored(&self, bufs: &[IoSlice<'_>]) -> io::Result<Option<usize>> {
        Stream::try_write_vectored(self, bufs)
    }

    /// Waits for data and reads it into `buf`; `Ok(0)` means end-of-stream.
    ///
    /// # Errors
    ///
    /// `ConnectionReset` if the peer closed with unread data; other OS errors.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: if the future is dropped before it completes, no data was read.
    pub fn read<'a>(&'a mut self, buf: &'a mut [u8]) -> impl Future<Output = io::Result<usize>> + 'a {
        split::read(&*self, buf)
    }

    /// Waits for data and copies it into `buf` without consuming it.
    ///
    /// # Errors
    ///
    /// As [`read`](Self::read).
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: a peek consumes nothing.
    pub fn peek<'a>(&'a mut self, buf: &'a mut [u8]) -> impl Future<Output = io::Result<usize>> + 'a {
        split::peek(&*self, buf)
    }

    /// Waits until writable and writes some of `data`; returns how much.
    ///
    /// # Errors
    ///
    /// `BrokenPipe` if the peer is gone; other OS errors.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: if the future is dropped before it completes, nothing was written.
    pub fn write<'a>(&'a mut self, data: &'a [u8]) -> impl Future<Output = io::Result<usize>> + 'a {
        split::write(&*self, data)
    }

    /// Writes all of `data`, looping over partial writes.
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
        split::write_all(&*self, data)
    }

    /// Waits until the stream may be readable.
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
        split::ready_unit(self, Interest::WRITABLE)
    }

    /// Waits for any readiness in `interest` and returns what is ready.
    ///
    /// # Errors
    ///
    /// An error if the runtime driving the socket has shut down.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: dropping the future loses no readiness event.
    pub fn ready(&self, interest: Interest) -> impl Future<Output = io::Result<Ready>> + '_ {
        split::ready(self, interest)
    }

    /// The poll form of [`read`](Self::read) (read waker slot; see
    /// [`net::split`](crate::net::split) for the two-readers caveat).
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

    /// The poll form of [`write`](Self::write) (write waker slot).
    ///
    /// # Errors
    ///
    /// As [`write`](Self::write).
    pub fn poll_write(&self, cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
        Stream::poll_write(self, cx, data)
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

    /// Shuts down the read side, the write side, or both.
    ///
    /// # Errors
    ///
    /// `NotConnected` if the connection is gone; other OS errors.
    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        Stream::shutdown(self, how)
    }

    /// Borrows the stream as a read half and a write half, usable at the same time.
    pub fn split(&mut self) -> (ReadHalf<'_>, WriteHalf<'_>) {
        (ReadHalf::new(self), WriteHalf::new(self))
    }

    /// Splits the stream into owned halves (`Send + 'static`). Dropping the write half
    /// shuts the write direction down.
    pub fn into_split(self) -> (OwnedReadHalf, OwnedWriteHalf) {
        split::into_split(self)
    }

    /// The local address (unnamed unless the socket was bound).
    ///
    /// # Errors
    ///
    /// The OS error from `getsockname`.
    pub fn local_addr(&self) -> io::Result<UnixAddr> {
        Stream::local_addr(self)
    }

    /// The peer's address (unnamed for a pair or an unbound client).
    ///
    /// # Errors
    ///
    /// `NotConnected` if the connection is gone; other OS errors.
    pub fn peer_addr(&self) -> io::Result<UnixAddr> {
        Stream::peer_addr(self)
    }

    /// The credentials (pid, uid, gid) of the peer process, recorded by the kernel when
    /// the connection was made. See [`UCred`].
    ///
    /// # Errors
    ///
    /// The OS error from `getsockopt(SO_PEERCRED)` / `getpeereid`.
    ///
    /// # Examples
    ///
    /// ```
    /// use blitz_io::net::UnixStream;
    ///
    /// let (a, _b) = UnixStream::pair()?;
    /// let cred = a.peer_cred()?;
    /// # let _ = cred;
    /// # #[cfg(target_os = "linux")]
    /// assert_eq!(cred.pid(), Some(std::process::id() as i32));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn peer_cred(&self) -> io::Result<UCred> {
        super::cred::peer_cred(self.io.get().as_fd())
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

impl AsRawFd for UnixStream {
    fn as_raw_fd(&self) -> RawFd {
        self.io.get().as_raw_fd()
    }
}

impl AsFd for UnixStream {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.io.get().as_fd()
    }
}

impl fmt::Debug for UnixStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("UnixStream");
        if let Ok(a) = self.local_addr() {
            d.field("local", &a);
        }
        if let Ok(a) = self.peer_addr() {
            d.field("peer", &a);
        }
        d.field("fd", &self.as_raw_fd()).finish()
    }
}
