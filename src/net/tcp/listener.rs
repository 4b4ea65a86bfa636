//! [`TcpListener`] and [`AcceptResult`].
//!
//! # Running out of descriptors
//!
//! When `accept` fails with `EMFILE`/`ENFILE` the pending connection stays queued in the
//! kernel and the socket stays readable, so a loop that simply retried would spin a core
//! at 100 % until a descriptor is freed. Instead the error is returned and the listener
//! remembers a back-off (10 ms, doubling up to 100 ms): the *next* `accept` sleeps that
//! long before trying. The first successful accept resets it. So an accept loop that
//! logs the error and continues costs almost no CPU while the process is out of
//! descriptors, and accepts again as soon as some are free.

use std::fmt;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};

use super::{TcpSocket, TcpStream};
use crate::io::Evented;
use crate::net::backoff::AcceptBackoff;
use crate::net::Address;

/// A TCP socket listening for connections.
///
/// Accept connections with [`accept`](Self::accept) (a future) or
/// [`try_accept`](Self::try_accept) (non-blocking, no runtime needed). Dropping the
/// listener closes it; connections already accepted are unaffected.
///
/// # Examples
///
/// An echo server:
///
/// ```
/// use blitz_io::net::{TcpListener, TcpStream};
///
/// # blitz_io::run(async {
/// let listener = TcpListener::bind(([127, 0, 0, 1], 0))?;
/// let addr = listener.local_addr()?;
/// blitz_io::task::spawn(async move {
///     loop {
///         let Ok(conn) = listener.accept().await else { continue };
///         let mut stream = conn.stream;
///         blitz_io::task::spawn(async move {
///             let mut buf = [0u8; 1024];
///             while let Ok(n @ 1..) = stream.read(&mut buf).await {
///                 if stream.write_all(&buf[..n]).await.is_err() {
///                     break;
///                 }
///             }
///         });
///     }
/// });
/// let mut client = TcpStream::connect(addr).await?;
/// client.write_all(b"echo").await?;
/// let mut buf = [0u8; 4];
/// let mut got = 0;
/// while got < 4 {
///     got += client.read(&mut buf[got..]).await?;
/// }
/// assert_eq!(&buf, b"echo");
/// # Ok::<(), std::io::Error>(())
/// # }).unwrap();
/// ```
pub struct TcpListener {
    io: Evented<mio::net::TcpListener>,
    /// The pause the next `accept` takes after `EMFILE`/`ENFILE` (`net::backoff`).
    backoff: AcceptBackoff,
}

/// An accepted connection: the stream and the peer's address.
#[derive(Debug)]
pub struct AcceptResult {
    /// The connected stream.
    pub stream: TcpStream,
    /// The address of the peer that connected.
    pub peer_addr: Address,
}

impl TcpListener {
    pub(crate) fn from_mio(io: mio::net::TcpListener) -> io::Result<TcpListener> {
        Ok(TcpListener { io: Evented::new(io), backoff: AcceptBackoff::default() })
    }

    /// Binds to `addr` and listens, with `SO_REUSEADDR` set (a restarted server can
    /// rebind at once) and a backlog of 1024. Port 0 lets the kernel pick a port; read
    /// it back with [`local_addr`](Self::local_addr).
    ///
    /// For other options, build the listener with [`TcpSocket`].
    ///
    /// # Errors
    ///
    /// `AddrInUse` if another socket listens there; `AddrNotAvailable` if the address is
    /// not local; `PermissionDenied` for a privileged port; other OS errors.
    ///
    /// # Examples
    ///
    /// ```
    /// use blitz_io::net::{Address, TcpListener};
    ///
    /// let listener = TcpListener::bind(Address::loopback_v4(0))?;
    /// assert_ne!(listener.local_addr()?.port(), 0);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn bind(addr: impl Into<Address>) -> io::Result<TcpListener> {
        let addr = addr.into();
        let socket = TcpSocket::for_addr(addr)?;
        socket.set_reuse_addr(true)?;
        socket.listen(addr, 1024)
    }

    /// Accepts a pending connection without waiting: `Ok(None)` if none is queued.
    /// Needs no runtime.
    ///
    /// # Errors
    ///
    /// `EMFILE`/`ENFILE` when out of descriptors (the connection stays queued);
    /// `ConnectionAborted` for a connection reset while queued; other OS errors.
    ///
    /// # Examples
    ///
    /// ```
    /// use blitz_io::net::TcpListener;
    ///
    /// let listener = TcpListener::bind(([127, 0, 0, 1], 0))?;
    /// assert!(listener.try_accept()?.is_none());
    /// let _client = std::net::TcpStream::connect(listener.local_addr()?.to_std())?;
    /// let conn = loop {
    ///     if let Some(conn) = listener.try_accept()? { break conn; }
    ///     std::thread::yield_now();
    /// };
    /// assert!(conn.peer_addr.ip().is_loopback());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn try_accept(&self) -> io::Result<Option<AcceptResult>> {
        self.backoff.try_accept(&self.io, |l| l.accept())?.map(finish).transpose()
    }

    /// Waits for a connection and accepts it.
    ///
    /// Out of descriptors (`EMFILE`/`ENFILE`), the error is returned and the next
    /// `accept` on this listener first sleeps a short back-off (10 ms, growing to
    /// 100 ms), so a loop that retries does not spin a core; accepting resumes once
    /// descriptors are free.
    ///
    /// # Errors
    ///
    /// `EMFILE`/`ENFILE` as above; `ConnectionAborted` for a connection reset while
    /// queued (keep accepting); an error if the runtime driving the socket has shut down.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: if the future is dropped before it completes, no connection was
    /// taken from the queue; a later `accept` gets it.
    ///
    /// # Examples
    ///
    /// ```
    /// use blitz_io::net::{TcpListener, TcpStream};
    ///
    /// # blitz_io::run(async {
    /// let listener = TcpListener::bind(([127, 0, 0, 1], 0))?;
    /// let client = TcpStream::connect(listener.local_addr()?).await?;
    /// let conn = listener.accept().await?;
    /// assert_eq!(conn.peer_addr, client.local_addr()?);
    /// # Ok::<(), std::io::Error>(())
    /// # }).unwrap();
    /// ```
    pub async fn accept(&self) -> io::Result<AcceptResult> {
        finish(self.backoff.accept(&self.io, |l| l.accept()).await?)
    }

    /// The local address the listener is bound to (with the real port after binding
    /// port 0).
    ///
    /// # Errors
    ///
    /// The OS error from `getsockname`.
    pub fn local_addr(&self) -> io::Result<Address> {
        self.io.get().local_addr().map(Address::from)
    }

    /// Adopts a listening `std::net::TcpListener`, switching it to non-blocking mode.
    ///
    /// # Errors
    ///
    /// The OS error if the mode cannot be changed.
    ///
    /// # Examples
    ///
    /// ```
    /// use blitz_io::net::TcpListener;
    ///
    /// let std_listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    /// let addr = std_listener.local_addr()?;
    /// let listener = TcpListener::from_std(std_listener)?;
    /// assert_eq!(listener.local_addr()?.to_std(), addr);
    /// assert!(listener.try_accept()?.is_none()); // non-blocking now
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn from_std(listener: std::net::TcpListener) -> io::Result<TcpListener> {
        listener.set_nonblocking(true)?;
        TcpListener::from_mio(mio::net::TcpListener::from_std(listener))
    }

    /// Turns this listener back into a `std::net::TcpListener`, deregistered from the
    /// driver and **back in blocking mode**.
    ///
    /// # Errors
    ///
    /// The OS error if the mode cannot be changed.
    pub fn into_std(self) -> io::Result<std::net::TcpListener> {
        let listener = std::net::TcpListener::from(self.io.into_inner());
        listener.set_nonblocking(false)?;
        Ok(listener)
    }
}

/// Wraps an accepted socket.
fn finish((stream, peer): (mio::net::TcpStream, std::net::SocketAddr)) -> io::Result<AcceptResult> {
    Ok(AcceptResult { stream: TcpStream::from_mio(stream)?, peer_addr: Address::from(peer) })
}

impl AsRawFd for TcpListener {
    fn as_raw_fd(&self) -> RawFd {
        self.io.get().as_raw_fd()
    }
}

impl AsFd for TcpListener {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.io.get().as_fd()
    }
}

impl TryFrom<std::net::TcpListener> for TcpListener {
    type Error = io::Error;

    /// The same as [`TcpListener::from_std`].
    fn try_from(listener: std::net::TcpListener) -> io::Result<TcpListener> {
        TcpListener::from_std(listener)
    }
}

impl fmt::Debug for TcpListener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("TcpListener");
        if let Ok(a) = self.local_addr() {
            d.field("local", &a);
        }
        d.field("fd", &self.as_raw_fd()).finish()
    }
}
