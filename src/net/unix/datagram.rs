//! [`UnixDatagram`]: a Unix domain datagram socket on the runtime's I/O driver, and
//! [`UnixRecvFromResult`].
//!
//! Built like `UdpSocket`: each operation hands one `crate::sys` call to the readiness
//! core (`Evented`) as `try_*` (no runtime), `async fn` (waiter list, shareable) or
//! `poll_*` (one waker per direction). Addresses are [`UnixAddr`]s: a path, a Linux
//! abstract name, or unnamed (an unbound sender, either end of [`UnixDatagram::pair`]).
//! A datagram longer than the buffer is reported through `truncated`, never silently
//! cut.

use std::fmt;
use std::future::Future;
use std::io;
use std::net::Shutdown;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};

use socket2::{Domain, SockAddr, SockRef, Socket, Type};

use crate::io::{Evented, Interest, Ready};
use crate::net::UnixAddr;
use crate::runtime::io::Direction;
use crate::sys;

type StdUnixDatagram = std::os::unix::net::UnixDatagram;

/// A Unix domain datagram socket.
///
/// Datagrams keep their boundaries and, unlike UDP, are never lost or reordered between
/// two sockets on one host: a sender whose peer's queue is full waits (or gets
/// `Ok(None)` from `try_*`).
///
/// Every method takes `&self`: share one socket between tasks with an
/// [`Arc`](std::sync::Arc); several tasks may wait in `recv_from` at once, and each
/// datagram goes to one of them.
///
/// Binding a path creates a socket file there. Dropping the socket does **not** remove
/// the file (as with std); remove it yourself when done. Binding a path that exists is
/// `AddrInUse`: nothing here ever unlinks a file.
///
/// # Platform-specific behavior
///
/// On Linux, an *unconnected* socket sending with [`send_to`](UnixDatagram::send_to) to
/// a peer whose queue is full gets `WouldBlock` while the socket still reports itself
/// writable, so the send waits for the socket's next readiness event rather than for
/// the peer to drain. A connected socket ([`connect`](UnixDatagram::connect) + `send`)
/// is woken when the peer drains and has no such gap.
///
/// # Examples
///
/// ```
/// use blitz_io::net::UnixDatagram;
///
/// # blitz_io::run(async {
/// let (a, b) = UnixDatagram::pair()?;
/// a.send(b"hello").await?;
/// let mut buf = [0u8; 16];
/// let n = b.recv(&mut buf).await?;
/// assert_eq!(&buf[..n], b"hello");
/// # Ok::<(), std::io::Error>(())
/// # }).unwrap();
/// ```
pub struct UnixDatagram {
    io: Evented<StdUnixDatagram>,
    /// Set by `shutdown(Read | Both)`. Linux then reports the socket readable forever
    /// while a non-blocking receive keeps failing with `EAGAIN`; receives turn that
    /// `EAGAIN` into end-of-file (`Ok(0)`, what a blocking receive returns), so a
    /// waiting `recv` completes instead of retrying for ever.
    read_shut: AtomicBool,
}

/// One datagram received by [`UnixDatagram::recv_from`] (and its `try_` and `poll`
/// forms).
///
/// # Examples
///
/// ```
/// use blitz_io::net::UnixDatagram;
///
/// # blitz_io::run(async {
/// let (a, b) = UnixDatagram::pair()?;
/// a.send(b"0123456789").await?;
/// let mut small = [0u8; 4];
/// let r = b.recv_from(&mut small).await?;
/// assert_eq!((r.len, r.truncated), (4, true));
/// assert!(r.addr.is_unnamed()); // `a` was never bound
/// # Ok::<(), std::io::Error>(())
/// # }).unwrap();
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct UnixRecvFromResult {
    /// Bytes written into the buffer; never more than its length.
    pub len: usize,
    /// The sender's address (unnamed if the sender was never bound).
    pub addr: UnixAddr,
    /// `true` if the datagram was longer than the buffer and its tail was discarded (or,
    /// for a peek, not copied).
    pub truncated: bool,
}

/// After `shutdown(Read)`, a receive that would block is end-of-file instead.
fn eof_if_shut<R>(shut: &AtomicBool, r: io::Result<R>, eof: impl FnOnce() -> R) -> io::Result<R> {
    match r {
        Err(e) if e.kind() == io::ErrorKind::WouldBlock && shut.load(Ordering::Acquire) => Ok(eof()),
        r => r,
    }
}

/// `sys::recv_from` with the sender made optional: `None` stands for the empty,
/// unnamed datagram a receive reports after `shutdown(Read)`.
fn recv_from_or_eof(
    shut: &AtomicBool,
    fd: BorrowedFd<'_>,
    buf: &mut [u8],
    peek: bool,
) -> io::Result<(usize, Option<SockAddr>, bool)> {
    let r = sys::recv_from(fd, buf, peek).map(|(n, addr, t)| (n, Some(addr), t));
    eof_if_shut(shut, r, || (0, None, false))
}

/// Turns the `(len, sender, truncated)` of a receive into a result.
fn recv_result((len, addr, truncated): (usize, Option<SockAddr>, bool)) -> UnixRecvFromResult {
    let addr = addr.map_or_else(UnixAddr::unnamed, |a| UnixAddr::from_sockaddr(&a));
    UnixRecvFromResult { len, addr, truncated }
}

impl UnixDatagram {
    // ===== construction =====

    /// Creates a socket bound to the path `path` (a socket file is created there).
    ///
    /// # Errors
    ///
    /// `InvalidInput` if the path is empty, holds a NUL byte or is too long for
    /// `sockaddr_un`; `AddrInUse` if the path exists (the file is never removed);
    /// `NotFound` / `PermissionDenied` for a missing or closed directory.
    ///
    /// # Examples
    ///
    /// ```
    /// use blitz_io::net::UnixDatagram;
    ///
    /// # let dir = std::env::temp_dir().join(format!("bio-doc-udg-bind-{}", std::process::id()));
    /// # std::fs::create_dir_all(&dir)?;
    /// let path = dir.join("server.sock");
    /// let sock = UnixDatagram::bind(&path)?;
    /// assert_eq!(sock.local_addr()?.as_pathname(), Some(path.as_path()));
    /// # std::fs::remove_dir_all(&dir)?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn bind(path: impl AsRef<Path>) -> io::Result<UnixDatagram> {
        UnixDatagram::bind_addr(&UnixAddr::from_path(path)?)
    }

    /// Creates a socket bound to `addr`: a path, or on Linux an abstract name.
    ///
    /// # Errors
    ///
    /// `InvalidInput` for an unnamed address; `AddrInUse` if the path exists or the
    /// abstract name is taken; as [`bind`](UnixDatagram::bind) otherwise.
    ///
    /// # Examples
    ///
    /// ```
    /// use blitz_io::net::{UnixAddr, UnixDatagram};
    ///
    /// # #[cfg(target_os = "linux")] {
    /// let name = format!("blitz-doc-{}", std::process::id());
    /// let addr = UnixAddr::from_abstract_name(name.as_bytes())?;
    /// let sock = UnixDatagram::bind_addr(&addr)?;
    /// assert_eq!(sock.local_addr()?, addr);
    /// # }
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn bind_addr(addr: &UnixAddr) -> io::Result<UnixDatagram> {
        let to = addr.to_sockaddr()?;
        let sock = Socket::new(Domain::UNIX, Type::DGRAM, None)?;
        sock.set_nonblocking(true)?;
        sock.bind(&to)?;
        Ok(UnixDatagram::wrap(StdUnixDatagram::from(sock)))
    }

    /// Creates a socket bound to no address. It can send (its datagrams arrive from an
    /// unnamed address, so nobody can reply) and, after
    /// [`connect`](UnixDatagram::connect), receive from its peer.
    ///
    /// # Errors
    ///
    /// Whatever the OS reports when it cannot create a socket (`EMFILE`, ...).
    ///
    /// # Examples
    ///
    /// ```
    /// use blitz_io::net::UnixDatagram;
    ///
    /// let sock = UnixDatagram::unbound()?;
    /// assert!(sock.local_addr()?.is_unnamed());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn unbound() -> io::Result<UnixDatagram> {
        UnixDatagram::from_std(StdUnixDatagram::unbound()?)
    }

    /// Creates a pair of connected, unnamed sockets.
    ///
    /// # Errors
    ///
    /// Whatever the OS reports when it cannot create sockets (`EMFILE`, ...).
    ///
    /// # Examples
    ///
    /// ```
    /// use blitz_io::net::UnixDatagram;
    ///
    /// let (a, b) = UnixDatagram::pair()?;
    /// assert_eq!(a.try_send(b"x")?, Some(1));
    /// let mut buf = [0u8; 4];
    /// assert_eq!(b.try_recv(&mut buf)?, Some(1));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn pair() -> io::Result<(UnixDatagram, UnixDatagram)> {
        let (a, b) = StdUnixDatagram::pair()?;
        Ok((UnixDatagram::from_std(a)?, UnixDatagram::from_std(b)?))
    }

    /// Wraps a std socket, switching it to non-blocking mode.
    ///
    /// # Errors
    ///
    /// Whatever the OS reports when the mode cannot be set.
    ///
    /// # Examples
    ///
    /// ```
    /// use blitz_io::net::UnixDatagram;
    ///
    /// let sock = UnixDatagram::from_std(std::os::unix::net::UnixDatagram::unbound()?)?;
    /// assert!(sock.local_addr()?.is_unnamed());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn from_std(socket: StdUnixDatagram) -> io::Result<UnixDatagram> {
        socket.set_nonblocking(true)?;
        Ok(UnixDatagram::wrap(socket))
    }

    /// Unwraps the std socket, deregistered from the driver and back in blocking mode.
    ///
    /// # Errors
    ///
    /// Whatever the OS reports when the mode cannot be set.
    ///
    /// # Examples
    ///
    /// ```
    /// use blitz_io::net::UnixDatagram;
    ///
    /// let (a, b) = UnixDatagram::pair()?;
    /// let (a, b) = (a.into_std()?, b.into_std()?);
    /// a.send(b"blocking")?;
    /// let mut buf = [0u8; 16];
    /// assert_eq!(b.recv(&mut buf)?, 8);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn into_std(self) -> io::Result<StdUnixDatagram> {
        let socket = self.io.into_inner();
        socket.set_nonblocking(false)?;
        Ok(socket)
    }

    /// Sets the socket's default peer to the socket bound at `path`: `send` goes there,
    /// and only datagrams from there are received.
    ///
    /// # Errors
    ///
    /// `InvalidInput` for a malformed path; `NotFound` if nothing is at the path,
    /// `ConnectionRefused` if the file is not a bound datagram socket.
    ///
    /// # Examples
    ///
    /// ```
    /// use blitz_io::net::UnixDatagram;
    ///
    /// # let dir = std::env::temp_dir().join(format!("bio-doc-udg-conn-{}", std::process::id()));
    /// # std::fs::create_dir_all(&dir)?;
    /// let server = UnixDatagram::bind(dir.join("s.sock"))?;
    /// let client = UnixDatagram::unbound()?;
    /// client.connect(dir.join("s.sock"))?;
    /// assert_eq!(client.peer_addr()?, server.local_addr()?);
    /// # std::fs::remove_dir_all(&dir)?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn connect(&self, path: impl AsRef<Path>) -> io::Result<()> {
        self.connect_addr(&UnixAddr::from_path(path)?)
    }

    /// Sets the socket's default peer to `addr`: a path, or on Linux an abstract name.
    ///
    /// # Errors
    ///
    /// `InvalidInput` for an unnamed address; as [`connect`](UnixDatagram::connect)
    /// otherwise.
    ///
    /// # Examples
    ///
    /// ```
    /// use blitz_io::net::{UnixAddr, UnixDatagram};
    ///
    /// # #[cfg(target_os = "linux")] {
    /// let addr = UnixAddr::from_abstract_name(format!("bio-doc-c-{}", std::process::id()).as_bytes())?;
    /// let _server = UnixDatagram::bind_addr(&addr)?;
    /// let client = UnixDatagram::unbound()?;
    /// client.connect_addr(&addr)?;
    /// assert_eq!(client.peer_addr()?, addr);
    /// # }
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn connect_addr(&self, addr: &UnixAddr) -> io::Result<()> {
        self.sock().connect(&addr.to_sockaddr()?)
    }

    fn wrap(socket: StdUnixDatagram) -> UnixDatagram {
        UnixDatagram { io: Evented::new_datagram(socket), read_shut: AtomicBool::new(false) }
    }

    fn sock(&self) -> SockRef<'_> {
        SockRef::from(self.io.get())
    }

    // ===== connected: send / recv =====

    /// Sends `data` as one datagram to the connected peer, if that can be done without
    /// waiting (`Ok(None)` when the peer's queue is full). Needs no runtime.
    ///
    /// # Errors
    ///
    /// `NotConnected` without a peer; `ConnectionRefused` once the peer socket is closed;
    /// `Other` (`EMSGSIZE`) for a datagram larger than the send buffer allows.
    ///
    /// # Examples
    ///
    /// ```
    /// use blitz_io::net::UnixDatagram;
    ///
    /// let (a, _b) = UnixDatagram::pair()?;
    /// assert_eq!(a.try_send(b"hi")?, Some(2));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn try_send(&self, data: &[u8]) -> io::Result<Option<usize>> {
        self.io.try_io(Interest::WRITABLE, |s| sys::send(s.as_fd(), data))
    }

    /// Receives one datagram, if one is queued (`Ok(None)` otherwise). A datagram longer
    /// than `buf` fills it and the rest is discarded; use
    /// [`try_recv_from`](UnixDatagram::try_recv_from) to learn that it happened. Needs
    /// no runtime.
    ///
    /// # Errors
    ///
    /// Rare: whatever the OS reports for the receive.
    ///
    /// # Examples
    ///
    /// ```
    /// use blitz_io::net::UnixDatagram;
    ///
    /// let (_a, b) = UnixDatagram::pair()?;
    /// let mut buf = [0u8; 4];
    /// assert_eq!(b.try_recv(&mut buf)?, None);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn try_recv(&self, buf: &mut [u8]) -> io::Result<Option<usize>> {
        self.io.try_io(Interest::READABLE, |s| eof_if_shut(&self.read_shut, sys::recv(s.as_fd(), buf, false), || 0))
    }

    /// Sends `data` as one datagram to the connected peer, waiting while its queue is
    /// full. Returns `data.len()`.
    ///
    /// # Errors
    ///
    /// As [`try_send`](UnixDatagram::try_send).
    ///
    /// # Cancel safety
    ///
    /// This method is cancel safe. A datagram is sent whole or not at all: if the future
    /// is dropped before it completes, nothing was sent.
    ///
    /// # Examples
    ///
    /// ```
    /// use blitz_io::net::UnixDatagram;
    ///
    /// # blitz_io::run(async {
    /// let (a, _b) = UnixDatagram::pair()?;
    /// assert_eq!(a.send(b"hello").await?, 5);
    /// # Ok::<(), std::io::Error>(())
    /// # }).unwrap();
    /// ```
    pub fn send<'a>(&'a self, data: &'a [u8]) -> impl Future<Output = io::Result<usize>> + 'a {
        self.io.async_io(Interest::WRITABLE, move |s| sys::send(s.as_fd(), data))
    }

    /// Receives one datagram, waiting until one arrives. A datagram longer than `buf`
    /// fills it and the rest is discarded; use [`recv_from`](UnixDatagram::recv_from) to
    /// learn that it happened.
    ///
    /// # Errors
    ///
    /// As [`try_recv`](UnixDatagram::try_recv).
    ///
    /// # Cancel safety
    ///
    /// This method is cancel safe. If the future is dropped before it completes, no
    /// datagram was taken from the socket: the next receive gets it.
    ///
    /// # Examples
    ///
    /// ```
    /// use blitz_io::net::UnixDatagram;
    ///
    /// # blitz_io::run(async {
    /// let (a, b) = UnixDatagram::pair()?;
    /// a.send(b"ping").await?;
    /// let mut buf = [0u8; 8];
    /// let n = b.recv(&mut buf).await?;
    /// assert_eq!(&buf[..n], b"ping");
    /// # Ok::<(), std::io::Error>(())
    /// # }).unwrap();
    /// ```
    pub fn recv<'a>(&'a self, buf: &'a mut [u8]) -> impl Future<Output = io::Result<usize>> + 'a {
        self.io
            .async_io(Interest::READABLE, move |s| eof_if_shut(&self.read_shut, sys::recv(s.as_fd(), buf, false), || 0))
    }

    // ===== unconnected: send_to / recv_from =====

    /// Sends `data` as one datagram to the socket at `addr`, if that can be done without
    /// waiting (`Ok(None)` when the queue is full). Needs no runtime.
    ///
    /// # Errors
    ///
    /// `InvalidInput` for an unnamed address; `NotFound` if nothing is bound at the path;
    /// `ConnectionRefused` if the path is not a bound datagram socket; `Other`
    /// (`EMSGSIZE`) for a datagram too large.
    ///
    /// # Examples
    ///
    /// ```
    /// use blitz_io::net::UnixDatagram;
    ///
    /// # let dir = std::env::temp_dir().join(format!("bio-doc-udg-tst-{}", std::process::id()));
    /// # std::fs::create_dir_all(&dir)?;
    /// let server = UnixDatagram::bind(dir.join("s.sock"))?;
    /// let client = UnixDatagram::unbound()?;
    /// assert_eq!(client.try_send_to(b"hi", &server.local_addr()?)?, Some(2));
    /// # std::fs::remove_dir_all(&dir)?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn try_send_to(&self, data: &[u8], addr: &UnixAddr) -> io::Result<Option<usize>> {
        let to = addr.to_sockaddr()?;
        self.io.try_io(Interest::WRITABLE, |s| sys::send_to(s.as_fd(), data, &to))
    }

    /// Receives one datagram, if one is queued, and says who sent it.
    ///
    /// A datagram longer than `buf` fills it and sets
    /// [`truncated`](UnixRecvFromResult::truncated). Needs no runtime.
    ///
    /// # Errors
    ///
    /// Rare: whatever the OS reports for the receive.
    ///
    /// # Examples
    ///
    /// ```
    /// use blitz_io::net::UnixDatagram;
    ///
    /// let (a, b) = UnixDatagram::pair()?;
    /// a.try_send(b"abc")?;
    /// let mut buf = [0u8; 8];
    /// let r = b.try_recv_from(&mut buf)?.expect("a pair delivers at once");
    /// assert_eq!((r.len, r.truncated), (3, false));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn try_recv_from(&self, buf: &mut [u8]) -> io::Result<Option<UnixRecvFromResult>> {
        Ok(self
            .io
            .try_io(Interest::READABLE, |s| recv_from_or_eof(&self.read_shut, s.as_fd(), buf, false))?
            .map(recv_result))
    }

    /// Copies the next datagram into `buf` without removing it from the queue, if one is
    /// queued, and says who sent it. Needs no runtime.
    ///
    /// # Errors
    ///
    /// As [`try_recv_from`](UnixDatagram::try_recv_from).
    ///
    /// # Examples
    ///
    /// ```
    /// use blitz_io::net::UnixDatagram;
    ///
    /// let (a, b) = UnixDatagram::pair()?;
    /// a.try_send(b"stay")?;
    /// let mut buf = [0u8; 8];
    /// let peeked = b.try_peek_from(&mut buf)?.expect("queued");
    /// assert_eq!(b.try_recv_from(&mut buf)?, Some(peeked));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn try_peek_from(&self, buf: &mut [u8]) -> io::Result<Option<UnixRecvFromResult>> {
        Ok(self
            .io
            .try_io(Interest::READABLE, |s| recv_from_or_eof(&self.read_shut, s.as_fd(), buf, true))?
            .map(recv_result))
    }

    /// Sends `data` as one datagram to the socket at `addr`, waiting for room if needed.
    /// Returns `data.len()`.
    ///
    /// # Errors
    ///
    /// As [`try_send_to`](UnixDatagram::try_send_to).
    ///
    /// # Cancel safety
    ///
    /// This method is cancel safe. A datagram is sent whole or not at all: if the future
    /// is dropped before it completes, nothing was sent.
    ///
    /// # Examples
    ///
    /// ```
    /// use blitz_io::net::UnixDatagram;
    ///
    /// # blitz_io::run(async {
    /// # let dir = std::env::temp_dir().join(format!("bio-doc-udg-st-{}", std::process::id()));
    /// # std::fs::create_dir_all(&dir)?;
    /// let server = UnixDatagram::bind(dir.join("s.sock"))?;
    /// let client = UnixDatagram::bind(dir.join("c.sock"))?;
    /// client.send_to(b"hello", &server.local_addr()?).await?;
    /// let mut buf = [0u8; 16];
    /// let r = server.recv_from(&mut buf).await?;
    /// assert_eq!(&buf[..r.len], b"hello");
    /// assert_eq!(r.addr, client.local_addr()?);
    /// # std::fs::remove_dir_all(&dir)?;
    /// # Ok::<(), std::io::Error>(())
    /// # }).unwrap();
    /// ```
    pub fn send_to<'a>(&'a self, data: &'a [u8], addr: &UnixAddr) -> impl Future<Output = io::Result<usize>> + 'a {
        // A bad address fails the first poll, before any wait for writability.
        self.io.async_io_with(Interest::WRITABLE, addr.to_sockaddr(), move |s, to| sys::send_to(s.as_fd(), data, to))
    }

    /// Receives one datagram, waiting until one arrives, and says who sent it.
    ///
    /// A datagram longer than `buf` fills it and sets
    /// [`truncated`](UnixRecvFromResult::truncated).
    ///
    /// # Errors
    ///
    /// As [`try_recv_from`](UnixDatagram::try_recv_from).
    ///
    /// # Cancel safety
    ///
    /// This method is cancel safe. If the future is dropped before it completes, no
    /// datagram was taken from the socket: the next receive gets it.
    ///
    /// # Examples
    ///
    /// ```
    /// use blitz_io::net::UnixDatagram;
    ///
    /// # blitz_io::run(async {
    /// let (a, b) = UnixDatagram::pair()?;
    /// a.send(b"from a").await?;
    /// let mut buf = [0u8; 16];
    /// let r = b.recv_from(&mut buf).await?;
    /// assert_eq!(&buf[..r.len], b"from a");
    /// # Ok::<(), std::io::Error>(())
    /// # }).unwrap();
    /// ```
    pub fn recv_from<'a>(&'a self, buf: &'a mut [u8]) -> impl Future<Output = io::Result<UnixRecvFromResult>> + 'a {
        self.io.async_io(Interest::READABLE, move |s| {
            recv_from_or_eof(&self.read_shut, s.as_fd(), buf, false).map(recv_result)
        })
    }

    // ===== poll forms, for adapters =====

    /// Polls for one datagram from the connected peer (the poll form of
    /// [`recv`](UnixDatagram::recv)).
    ///
    /// # Errors
    ///
    /// As [`try_recv`](UnixDatagram::try_recv).
    ///
    /// # Caveats
    ///
    /// The socket keeps one waker per direction for the `poll_*` methods: two tasks
    /// polling receives on one socket replace each other's waker. Share a socket between
    /// tasks with the `async` methods.
    ///
    /// # Examples
    ///
    /// ```
    /// use blitz_io::net::UnixDatagram;
    /// use std::future::poll_fn;
    ///
    /// # blitz_io::run(async {
    /// let (a, b) = UnixDatagram::pair()?;
    /// poll_fn(|cx| a.poll_send(cx, b"p")).await?;
    /// let mut buf = [0u8; 4];
    /// assert_eq!(poll_fn(|cx| b.poll_recv(cx, &mut buf)).await?, 1);
    /// # Ok::<(), std::io::Error>(())
    /// # }).unwrap();
    /// ```
    pub fn poll_recv(&self, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
        self.io.poll_io(
            cx,
            Direction::Read,
            |s| eof_if_shut(&self.read_shut, sys::recv(s.as_fd(), buf, false), || 0),
            |_| false,
        )
    }

    /// Polls to send one datagram to the connected peer (the poll form of
    /// [`send`](UnixDatagram::send)).
    ///
    /// # Errors
    ///
    /// As [`try_send`](UnixDatagram::try_send).
    ///
    /// # Caveats
    ///
    /// As [`poll_recv`](UnixDatagram::poll_recv): one waker per direction.
    ///
    /// # Examples
    ///
    /// ```
    /// use blitz_io::net::UnixDatagram;
    /// use std::future::poll_fn;
    ///
    /// # blitz_io::run(async {
    /// let (a, _b) = UnixDatagram::pair()?;
    /// assert_eq!(poll_fn(|cx| a.poll_send(cx, b"pp")).await?, 2);
    /// # Ok::<(), std::io::Error>(())
    /// # }).unwrap();
    /// ```
    pub fn poll_send(&self, cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
        self.io.poll_io(cx, Direction::Write, |s| sys::send(s.as_fd(), data), |_| false)
    }

    /// Polls for one datagram and its sender (the poll form of
    /// [`recv_from`](UnixDatagram::recv_from)).
    ///
    /// # Errors
    ///
    /// As [`try_recv_from`](UnixDatagram::try_recv_from).
    ///
    /// # Caveats
    ///
    /// As [`poll_recv`](UnixDatagram::poll_recv): one waker per direction.
    ///
    /// # Examples
    ///
    /// ```
    /// use blitz_io::net::UnixDatagram;
    /// use std::future::poll_fn;
    ///
    /// # blitz_io::run(async {
    /// let (a, b) = UnixDatagram::pair()?;
    /// a.send(b"q").await?;
    /// let mut buf = [0u8; 4];
    /// let r = poll_fn(|cx| b.poll_recv_from(cx, &mut buf)).await?;
    /// assert_eq!(r.len, 1);
    /// # Ok::<(), std::io::Error>(())
    /// # }).unwrap();
    /// ```
    pub fn poll_recv_from(&self, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<UnixRecvFromResult>> {
        self.io
            .poll_io(cx, Direction::Read, |s| recv_from_or_eof(&self.read_shut, s.as_fd(), buf, false), |_| false)
            .map_ok(recv_result)
    }

    /// Polls to send one datagram to `addr` (the poll form of
    /// [`send_to`](UnixDatagram::send_to)).
    ///
    /// # Errors
    ///
    /// As [`try_send_to`](UnixDatagram::try_send_to).
    ///
    /// # Caveats
    ///
    /// As [`poll_recv`](UnixDatagram::poll_recv): one waker per direction.
    ///
    /// # Examples
    ///
    /// ```
    /// use blitz_io::net::UnixDatagram;
    /// use std::future::poll_fn;
    ///
    /// # blitz_io::run(async {
    /// # let dir = std::env::temp_dir().join(format!("bio-doc-udg-pst-{}", std::process::id()));
    /// # std::fs::create_dir_all(&dir)?;
    /// let server = UnixDatagram::bind(dir.join("s.sock"))?;
    /// let to = server.local_addr()?;
    /// let client = UnixDatagram::unbound()?;
    /// assert_eq!(poll_fn(|cx| client.poll_send_to(cx, b"r", &to)).await?, 1);
    /// # std::fs::remove_dir_all(&dir)?;
    /// # Ok::<(), std::io::Error>(())
    /// # }).unwrap();
    /// ```
    pub fn poll_send_to(&self, cx: &mut Context<'_>, data: &[u8], addr: &UnixAddr) -> Poll<io::Result<usize>> {
        let to = addr.to_sockaddr()?;
        self.io.poll_io(cx, Direction::Write, |s| sys::send_to(s.as_fd(), data, &to), |_| false)
    }

    // ===== readiness =====

    /// Waits until the socket is readable: a datagram (or an error) may be queued.
    ///
    /// # Errors
    ///
    /// Only if the socket cannot be registered with a driver, or the runtime shut down.
    ///
    /// # Cancel safety
    ///
    /// This method is cancel safe: dropping the future loses nothing, and readiness that
    /// arrived meanwhile stays cached for the next call.
    ///
    /// # Examples
    ///
    /// ```
    /// use blitz_io::net::UnixDatagram;
    ///
    /// # blitz_io::run(async {
    /// let (a, b) = UnixDatagram::pair()?;
    /// a.send(b"x").await?;
    /// b.readable().await?;
    /// let mut buf = [0u8; 4];
    /// assert_eq!(b.try_recv(&mut buf)?, Some(1));
    /// # Ok::<(), std::io::Error>(())
    /// # }).unwrap();
    /// ```
    pub fn readable(&self) -> impl Future<Output = io::Result<()>> + '_ {
        self.io.ready_unit(Interest::READABLE)
    }

    /// Waits until the socket is writable: a datagram can probably be sent.
    ///
    /// # Errors
    ///
    /// Only if the socket cannot be registered with a driver, or the runtime shut down.
    ///
    /// # Cancel safety
    ///
    /// This method is cancel safe: dropping the future loses nothing, and readiness that
    /// arrived meanwhile stays cached for the next call.
    ///
    /// # Examples
    ///
    /// ```
    /// use blitz_io::net::UnixDatagram;
    ///
    /// # blitz_io::run(async {
    /// let (a, _b) = UnixDatagram::pair()?;
    /// a.writable().await?;
    /// assert_eq!(a.try_send(b"x")?, Some(1));
    /// # Ok::<(), std::io::Error>(())
    /// # }).unwrap();
    /// ```
    pub fn writable(&self) -> impl Future<Output = io::Result<()>> + '_ {
        self.io.ready_unit(Interest::WRITABLE)
    }

    /// Waits until the socket has any of the readiness in `interest`, and returns it.
    ///
    /// # Errors
    ///
    /// Only if the socket cannot be registered with a driver, or the runtime shut down.
    ///
    /// # Cancel safety
    ///
    /// This method is cancel safe: dropping the future loses nothing, and readiness that
    /// arrived meanwhile stays cached for the next call.
    ///
    /// # Examples
    ///
    /// ```
    /// use blitz_io::io::Interest;
    /// use blitz_io::net::UnixDatagram;
    ///
    /// # blitz_io::run(async {
    /// let (a, _b) = UnixDatagram::pair()?;
    /// assert!(a.ready(Interest::WRITABLE).await?.is_writable());
    /// # Ok::<(), std::io::Error>(())
    /// # }).unwrap();
    /// ```
    pub fn ready(&self, interest: Interest) -> impl Future<Output = io::Result<Ready>> + '_ {
        self.io.ready(interest)
    }

    // ===== addresses and control =====

    /// The address the socket is bound to (unnamed if it is not bound).
    ///
    /// # Errors
    ///
    /// Whatever `getsockname` reports (rare).
    ///
    /// # Examples
    ///
    /// ```
    /// use blitz_io::net::UnixDatagram;
    ///
    /// let (a, _b) = UnixDatagram::pair()?;
    /// assert!(a.local_addr()?.is_unnamed());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn local_addr(&self) -> io::Result<UnixAddr> {
        Ok(UnixAddr::from_sockaddr(&self.sock().local_addr()?))
    }

    /// The connected peer's address (unnamed if the peer is not bound).
    ///
    /// # Errors
    ///
    /// `NotConnected` without a peer.
    ///
    /// # Examples
    ///
    /// ```
    /// use blitz_io::net::UnixDatagram;
    /// use std::io::ErrorKind;
    ///
    /// let (a, _b) = UnixDatagram::pair()?;
    /// assert!(a.peer_addr()?.is_unnamed());
    /// let lone = UnixDatagram::unbound()?;
    /// assert_eq!(lone.peer_addr().unwrap_err().kind(), ErrorKind::NotConnected);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn peer_addr(&self) -> io::Result<UnixAddr> {
        Ok(UnixAddr::from_sockaddr(&self.sock().peer_addr()?))
    }

    /// Shuts down the read side, the write side, or both.
    ///
    /// After `Shutdown::Read`, datagrams already queued are still received; then every
    /// receive returns `Ok(0)` (`Some(0)`, an empty datagram from an unnamed sender for
    /// `recv_from`) instead of waiting, and peers sending to this socket get
    /// `BrokenPipe`. After `Shutdown::Write`, sends fail with `BrokenPipe`.
    ///
    /// # Errors
    ///
    /// Rare: whatever `shutdown` reports.
    ///
    /// # Examples
    ///
    /// ```
    /// use blitz_io::net::UnixDatagram;
    /// use std::net::Shutdown;
    ///
    /// let (a, _b) = UnixDatagram::pair()?;
    /// a.shutdown(Shutdown::Write)?;
    /// assert!(a.try_send(b"x").is_err());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        // The flag goes up *before* the system call: the call wakes a waiting receive
        // (the socket reports read-closed), which may run at once on another thread; if
        // it found the flag still down, its `EAGAIN` would clear that readiness and it
        // would wait for ever instead of returning end-of-file.
        let read = matches!(how, Shutdown::Read | Shutdown::Both);
        let was_shut = read && self.read_shut.swap(true, Ordering::AcqRel);
        if let Err(e) = self.io.get().shutdown(how) {
            if read && !was_shut {
                self.read_shut.store(false, Ordering::Release);
            }
            return Err(e);
        }
        Ok(())
    }

    /// Takes the socket's pending error (`SO_ERROR`), clearing it.
    ///
    /// # Errors
    ///
    /// Whatever `getsockopt` reports (rare); the pending error itself is the `Ok` value.
    ///
    /// # Examples
    ///
    /// ```
    /// use blitz_io::net::UnixDatagram;
    ///
    /// assert!(UnixDatagram::unbound()?.take_error()?.is_none());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn take_error(&self) -> io::Result<Option<io::Error>> {
        self.io.get().take_error()
    }
}

impl fmt::Debug for UnixDatagram {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("UnixDatagram");
        if let Ok(addr) = self.local_addr() {
            d.field("local", &addr);
        }
        if let Ok(addr) = self.peer_addr() {
            d.field("peer", &addr);
        }
        d.field("fd", &self.io.get().as_raw_fd()).finish()
    }
}

impl AsRawFd for UnixDatagram {
    fn as_raw_fd(&self) -> RawFd {
        self.io.get().as_raw_fd()
    }
}

impl AsFd for UnixDatagram {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.io.get().as_fd()
    }
}

impl TryFrom<StdUnixDatagram> for UnixDatagram {
    type Error = io::Error;

    /// The same as [`UnixDatagram::from_std`].
    fn try_from(socket: StdUnixDatagram) -> io::Result<UnixDatagram> {
        UnixDatagram::from_std(socket)
    }
}
