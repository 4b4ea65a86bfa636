//! [`UnixListener`] and [`UnixAcceptResult`].

use std::fmt;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::path::Path;

use socket2::{Domain, Socket, Type};

use super::{UnixAddr, UnixStream};
use crate::io::Evented;
use crate::net::backoff::AcceptBackoff;

/// A Unix domain socket listening for stream connections.
///
/// # The socket file
///
/// Binding a path creates a socket file there. **Dropping the listener leaves the file
/// in place** (as with `std::os::unix::net::UnixListener`): remove it yourself when the
/// server stops, with `std::fs::remove_file`. Binding a path where a file already exists
/// fails with `AddrInUse`; the listener never removes a file itself, so it cannot pull
/// the socket out from under another running server. A server that knows its old file
/// is stale removes it before binding. Abstract names (Linux) have no file and vanish
/// with the last socket.
///
/// # Examples
///
/// ```
/// use blitz_io::net::{UnixListener, UnixStream};
///
/// # blitz_io::run(async {
/// # let dir = std::env::temp_dir().join(format!("blitz-doc-ul-{}", std::process::id()));
/// # std::fs::create_dir_all(&dir)?;
/// let path = dir.join("server.sock");
/// # let _ = std::fs::remove_file(&path);
/// let listener = UnixListener::bind(&path)?;
/// let mut client = UnixStream::connect(&path).await?;
/// let mut conn = listener.accept().await?.stream;
/// client.write_all(b"hi").await?;
/// let mut buf = [0u8; 2];
/// conn.read(&mut buf).await?;
/// # drop(listener);
/// std::fs::remove_file(&path)?; // the file outlives the listener
/// # std::fs::remove_dir_all(&dir)?;
/// # Ok::<(), std::io::Error>(())
/// # }).unwrap();
/// ```
pub struct UnixListener {
    io: Evented<mio::net::UnixListener>,
    backoff: AcceptBackoff,
}

/// An accepted Unix connection: the stream and the peer's address (usually unnamed,
/// since clients rarely bind).
#[derive(Debug)]
pub struct UnixAcceptResult {
    /// The connected stream.
    pub stream: UnixStream,
    /// The address of the connecting socket.
    pub peer_addr: UnixAddr,
}

impl UnixListener {
    /// Binds a socket file at `path` and listens (backlog 1024).
    ///
    /// # Errors
    ///
    /// - `InvalidInput` if the path is empty, holds a NUL byte or is too long.
    /// - `AddrInUse` if a file already exists at `path` (a live socket, a stale one, or
    ///   any other file): it is never removed for you.
    /// - `NotFound` if the directory does not exist; `PermissionDenied`.
    ///
    /// # Examples
    ///
    /// ```
    /// use blitz_io::net::UnixListener;
    /// use std::io::ErrorKind;
    ///
    /// # let dir = std::env::temp_dir().join(format!("blitz-doc-ub-{}", std::process::id()));
    /// # std::fs::create_dir_all(&dir)?;
    /// let path = dir.join("busy.sock");
    /// # let _ = std::fs::remove_file(&path);
    /// let first = UnixListener::bind(&path)?;
    /// let err = UnixListener::bind(&path).unwrap_err();
    /// assert_eq!(err.kind(), ErrorKind::AddrInUse);
    /// # drop(first);
    /// # std::fs::remove_dir_all(&dir)?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn bind(path: impl AsRef<Path>) -> io::Result<UnixListener> {
        UnixListener::bind_addr(&UnixAddr::from_path(path)?)
    }

    /// Binds to a Unix socket address: a path, or (Linux and Android) an abstract name
    /// from [`UnixAddr::from_abstract_name`], and listens.
    ///
    /// # Errors
    ///
    /// `InvalidInput` for an unnamed address; `AddrInUse` if the path or abstract name is
    /// taken; other OS errors.
    pub fn bind_addr(addr: &UnixAddr) -> io::Result<UnixListener> {
        let sockaddr = addr.to_sockaddr()?;
        let socket = Socket::new(Domain::UNIX, Type::STREAM, None)?;
        socket.set_nonblocking(true)?;
        socket.bind(&sockaddr)?;
        socket.listen(1024)?;
        let std = std::os::unix::net::UnixListener::from(OwnedFd::from(socket));
        Ok(UnixListener { io: Evented::new(mio::net::UnixListener::from_std(std)), backoff: AcceptBackoff::default() })
    }

    /// Accepts a pending connection without waiting: `Ok(None)` if none is queued.
    /// Needs no runtime.
    ///
    /// # Errors
    ///
    /// `EMFILE`/`ENFILE` when out of descriptors; other OS errors.
    pub fn try_accept(&self) -> io::Result<Option<UnixAcceptResult>> {
        self.backoff.try_accept(&self.io, |l| l.accept())?.map(finish).transpose()
    }

    /// Waits for a connection and accepts it.
    ///
    /// # Errors
    ///
    /// `EMFILE`/`ENFILE` when out of descriptors: the error is returned and the next
    /// `accept` on this listener first sleeps a short back-off (10 ms, growing to
    /// 100 ms) so that a loop that retries does not spin a core, as
    /// [`TcpListener::accept`](crate::net::TcpListener::accept) does. An error if the
    /// runtime driving the socket has shut down; other OS errors.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: if the future is dropped before it completes, no connection was
    /// taken from the queue.
    pub async fn accept(&self) -> io::Result<UnixAcceptResult> {
        finish(self.backoff.accept(&self.io, |l| l.accept()).await?)
    }

    /// The address the listener is bound to.
    ///
    /// # Errors
    ///
    /// The OS error from `getsockname`.
    pub fn local_addr(&self) -> io::Result<UnixAddr> {
        self.io.get().local_addr().map(UnixAddr::from)
    }

    /// Adopts a `std::os::unix::net::UnixListener`, switching it to non-blocking mode.
    ///
    /// # Errors
    ///
    /// The OS error if the mode cannot be changed.
    pub fn from_std(listener: std::os::unix::net::UnixListener) -> io::Result<UnixListener> {
        listener.set_nonblocking(true)?;
        Ok(UnixListener {
            io: Evented::new(mio::net::UnixListener::from_std(listener)),
            backoff: AcceptBackoff::default(),
        })
    }

    /// Turns this listener back into a `std::os::unix::net::UnixListener`, deregistered
    /// and **back in blocking mode**.
    ///
    /// # Errors
    ///
    /// The OS error if the mode cannot be changed.
    pub fn into_std(self) -> io::Result<std::os::unix::net::UnixListener> {
        let listener = std::os::unix::net::UnixListener::from(self.io.into_inner());
        listener.set_nonblocking(false)?;
        Ok(listener)
    }
}

fn finish((stream, peer): (mio::net::UnixStream, std::os::unix::net::SocketAddr)) -> io::Result<UnixAcceptResult> {
    Ok(UnixAcceptResult { stream: UnixStream::from_mio(stream)?, peer_addr: UnixAddr::from(peer) })
}

impl AsRawFd for UnixListener {
    fn as_raw_fd(&self) -> RawFd {
        self.io.get().as_raw_fd()
    }
}

impl AsFd for UnixListener {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.io.get().as_fd()
    }
}

impl fmt::Debug for UnixListener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("UnixListener");
        if let Ok(a) = self.local_addr() {
            d.field("local", &a);
        }
        d.field("fd", &self.as_raw_fd()).finish()
    }
}
