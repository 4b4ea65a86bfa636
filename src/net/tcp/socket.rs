//! [`TcpSocket`]: a TCP socket not yet connected or listening, for setting options first.

use std::fmt;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};
use std::time::Duration;

use socket2::{Domain, Protocol, Socket, Type};

use super::options;
use super::{Keepalive, TcpListener, TcpStream};
use crate::error::invalid_input;
use crate::net::{Address, Family};

/// A TCP socket that has not connected or started listening yet: set its options, then
/// [`connect`](TcpSocket::connect) (a [`TcpStream`]) or [`listen`](TcpSocket::listen)
/// (a [`TcpListener`]).
///
/// The socket is non-blocking and close-on-exec from the start.
///
/// # Examples
///
/// A production listener: address reuse, no Nagle delay, sized buffers, keepalive, a
/// backlog of 1024.
///
/// ```
/// use blitz_io::net::{Address, Keepalive, TcpListener, TcpSocket};
/// use blitz_io::Duration;
///
/// fn production_listener(addr: Address) -> std::io::Result<TcpListener> {
///     let socket = TcpSocket::new_v4()?;
///     socket.set_reuse_addr(true)?;
///     socket.set_nodelay(true)?;
///     socket.set_send_buffer_size(256 * 1024)?;
///     socket.set_recv_buffer_size(128 * 1024)?;
///     socket.set_keepalive(Some(Keepalive {
///         time: Some(Duration::from_secs(60)),
///         interval: Some(Duration::from_secs(10)),
///         retries: Some(5),
///     }))?;
///     socket.set_linger(Some(Duration::from_secs(5)))?;
///     socket.listen(addr, 1024)
/// }
///
/// let listener = production_listener(Address::loopback_v4(0))?;
/// assert_ne!(listener.local_addr()?.port(), 0);
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct TcpSocket {
    inner: Socket,
    family: Family,
}

impl TcpSocket {
    fn new(family: Family) -> io::Result<TcpSocket> {
        let domain = match family {
            Family::V4 => Domain::IPV4,
            Family::V6 => Domain::IPV6,
        };
        // socket2 sets close-on-exec atomically where the platform allows.
        let inner = Socket::new(domain, Type::STREAM, Some(Protocol::TCP))?;
        inner.set_nonblocking(true)?;
        Ok(TcpSocket { inner, family })
    }

    /// A socket of the family of `addr`.
    pub(crate) fn for_addr(addr: Address) -> io::Result<TcpSocket> {
        TcpSocket::new(addr.family())
    }

    /// A new IPv4 TCP socket.
    ///
    /// # Errors
    ///
    /// The OS error from `socket` (for example `EMFILE` when out of descriptors).
    ///
    /// # Examples
    ///
    /// ```
    /// let socket = blitz_io::net::TcpSocket::new_v4()?;
    /// socket.set_nodelay(true)?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn new_v4() -> io::Result<TcpSocket> {
        TcpSocket::new(Family::V4)
    }

    /// A new IPv6 TCP socket.
    ///
    /// # Errors
    ///
    /// The OS error from `socket` (`EAFNOSUPPORT` where IPv6 is disabled).
    pub fn new_v6() -> io::Result<TcpSocket> {
        TcpSocket::new(Family::V6)
    }

    /// Sets `SO_REUSEADDR`: lets a restarted server bind its port while old connections
    /// linger in `TIME_WAIT`. It does not let two live listeners share a port (that is
    /// [`set_reuse_port`](Self::set_reuse_port)).
    ///
    /// # Errors
    ///
    /// The OS error from `setsockopt`.
    pub fn set_reuse_addr(&self, on: bool) -> io::Result<()> {
        self.inner.set_reuse_address(on)
    }

    /// Whether `SO_REUSEADDR` is set.
    ///
    /// # Errors
    ///
    /// The OS error from `getsockopt`.
    pub fn reuse_addr(&self) -> io::Result<bool> {
        self.inner.reuse_address()
    }

    /// Sets `SO_REUSEPORT`: several sockets (each with it set) may bind the same address
    /// and port; on Linux the kernel spreads incoming connections over the listeners.
    ///
    /// # Errors
    ///
    /// The OS error from `setsockopt`.
    pub fn set_reuse_port(&self, on: bool) -> io::Result<()> {
        self.inner.set_reuse_port(on)
    }

    /// Whether `SO_REUSEPORT` is set.
    ///
    /// # Errors
    ///
    /// The OS error from `getsockopt`.
    pub fn reuse_port(&self) -> io::Result<bool> {
        self.inner.reuse_port()
    }

    /// Sets the kernel send buffer size (`SO_SNDBUF`). The kernel may round or double
    /// it (Linux doubles it for bookkeeping) and caps it at a system maximum.
    ///
    /// # Errors
    ///
    /// `InvalidInput` for 0 or a size above `i32::MAX`; the OS error otherwise.
    pub fn set_send_buffer_size(&self, n: usize) -> io::Result<()> {
        self.inner.set_send_buffer_size(check_buffer_size(n)?)
    }

    /// The kernel send buffer size (`SO_SNDBUF`) as the kernel reports it.
    ///
    /// # Errors
    ///
    /// The OS error from `getsockopt`.
    pub fn send_buffer_size(&self) -> io::Result<usize> {
        self.inner.send_buffer_size()
    }

    /// Sets the kernel receive buffer size (`SO_RCVBUF`); see
    /// [`set_send_buffer_size`](Self::set_send_buffer_size) for rounding.
    ///
    /// # Errors
    ///
    /// `InvalidInput` for 0 or a size above `i32::MAX`; the OS error otherwise.
    pub fn set_recv_buffer_size(&self, n: usize) -> io::Result<()> {
        self.inner.set_recv_buffer_size(check_buffer_size(n)?)
    }

    /// The kernel receive buffer size (`SO_RCVBUF`) as the kernel reports it.
    ///
    /// # Errors
    ///
    /// The OS error from `getsockopt`.
    pub fn recv_buffer_size(&self) -> io::Result<usize> {
        self.inner.recv_buffer_size()
    }

    /// Sets `TCP_NODELAY` (disable Nagle's algorithm). Connections made or accepted from
    /// this socket start with it.
    ///
    /// # Errors
    ///
    /// The OS error from `setsockopt`.
    pub fn set_nodelay(&self, on: bool) -> io::Result<()> {
        self.inner.set_tcp_nodelay(on)
    }

    /// Whether `TCP_NODELAY` is set.
    ///
    /// # Errors
    ///
    /// The OS error from `getsockopt`.
    pub fn nodelay(&self) -> io::Result<bool> {
        self.inner.tcp_nodelay()
    }

    /// Turns TCP keepalive on with the given settings, or off with `None`. See
    /// [`Keepalive`].
    ///
    /// # Errors
    ///
    /// `InvalidInput` for a zero or too-large field (nothing is changed then); the OS
    /// error otherwise.
    ///
    /// # Examples
    ///
    /// ```
    /// use blitz_io::net::{Keepalive, TcpSocket};
    /// use blitz_io::Duration;
    ///
    /// let socket = TcpSocket::new_v4()?;
    /// let ka = Keepalive { time: Some(Duration::from_secs(30)), ..Keepalive::default() };
    /// socket.set_keepalive(Some(ka))?;
    /// assert_eq!(socket.keepalive()?.unwrap().time, ka.time);
    /// socket.set_keepalive(None)?;
    /// assert_eq!(socket.keepalive()?, None);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn set_keepalive(&self, ka: Option<Keepalive>) -> io::Result<()> {
        options::set_keepalive(&(&self.inner).into(), ka)
    }

    /// The keepalive settings, `None` when keepalive is off.
    ///
    /// # Errors
    ///
    /// The OS error from `getsockopt`.
    pub fn keepalive(&self) -> io::Result<Option<Keepalive>> {
        options::keepalive(&(&self.inner).into())
    }

    /// Sets `SO_LINGER`: what closing the socket (dropping the stream or listener made
    /// from it) does with data not yet sent.
    ///
    /// - `None` (the default): close returns at once; queued data is still sent in the
    ///   background and the connection ends with a normal FIN.
    /// - `Some(Duration::ZERO)`: abortive close, the non-blocking option. Queued data is
    ///   discarded and the peer gets a reset; close never blocks.
    /// - `Some(d)` with `d > 0`: **close blocks the calling thread** until the data is
    ///   acknowledged or `d` passes (whole seconds, rounded up). In async code that
    ///   thread is a runtime worker: every task queued on it stalls for up to `d`.
    ///   Prefer `shutdown(Shutdown::Write)` and reading to end-of-stream.
    ///
    /// # Errors
    ///
    /// `InvalidInput` if `d` is too long for the kernel; the OS error otherwise.
    pub fn set_linger(&self, d: Option<Duration>) -> io::Result<()> {
        options::set_linger(&(&self.inner).into(), d)
    }

    /// The `SO_LINGER` setting: `None` when off.
    ///
    /// # Errors
    ///
    /// The OS error from `getsockopt`.
    pub fn linger(&self) -> io::Result<Option<Duration>> {
        options::linger(&(&self.inner).into())
    }

    /// Binds the socket to a local address (port 0: the kernel picks one).
    ///
    /// # Errors
    ///
    /// - `InvalidInput` if the address family differs from the socket's.
    /// - `AddrInUse` if the address is taken; `AddrNotAvailable` if it is not local;
    ///   `PermissionDenied` for a privileged port.
    ///
    /// # Examples
    ///
    /// ```
    /// use blitz_io::net::{Address, TcpSocket};
    ///
    /// let socket = TcpSocket::new_v4()?;
    /// socket.bind(Address::loopback_v4(0))?;
    /// assert!(socket.local_addr()?.ip().is_loopback());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn bind(&self, addr: impl Into<Address>) -> io::Result<()> {
        let addr = self.check_family(addr.into())?;
        self.inner.bind(&addr.to_sockaddr())
    }

    /// The local address the socket is bound to (`0.0.0.0:0` before `bind` on most
    /// platforms).
    ///
    /// # Errors
    ///
    /// The OS error from `getsockname`.
    pub fn local_addr(&self) -> io::Result<Address> {
        Address::from_sockaddr(&self.inner.local_addr()?)
    }

    /// Connects to `addr`, consuming the socket, and returns the stream once the
    /// handshake completes (the task waits for it through the I/O driver).
    ///
    /// # Errors
    ///
    /// - `InvalidInput` if the port is 0 or the family differs from the socket's.
    /// - `ConnectionRefused` if nothing listens there; other OS errors (`TimedOut`,
    ///   `NetworkUnreachable`, ...).
    ///
    /// # Cancel safety
    ///
    /// Dropping the future abandons the attempt and closes the socket.
    ///
    /// # Examples
    ///
    /// ```
    /// use blitz_io::net::{TcpListener, TcpSocket};
    ///
    /// # blitz_io::run(async {
    /// let listener = TcpListener::bind(([127, 0, 0, 1], 0))?;
    /// let socket = TcpSocket::new_v4()?;
    /// socket.set_nodelay(true)?;
    /// let stream = socket.connect(listener.local_addr()?).await?;
    /// assert!(stream.nodelay()?);
    /// # Ok::<(), std::io::Error>(())
    /// # }).unwrap();
    /// ```
    pub async fn connect(self, addr: impl Into<Address>) -> io::Result<TcpStream> {
        let addr = self.check_family(addr.into())?;
        if addr.port() == 0 {
            return Err(invalid_input(format!("cannot connect to {addr}: port 0 is not a valid destination")));
        }
        match self.inner.connect(&addr.to_sockaddr()) {
            Ok(()) => {}
            Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => {}
            Err(e) => return Err(e),
        }
        let std = std::net::TcpStream::from(self.inner);
        TcpStream::connect_mio(mio::net::TcpStream::from_std(std)).await
    }

    /// Binds to `addr` and starts listening with the given backlog (queued, completed
    /// handshakes waiting for `accept`; the kernel caps it at `somaxconn`).
    ///
    /// A socket already bound with [`bind`](Self::bind) (the order tokio's `TcpSocket`
    /// uses) is not bound again when `addr` is that address, or the same IP with port
    /// 0: it just starts listening.
    ///
    /// # Errors
    ///
    /// As [`bind`](Self::bind); `InvalidInput` if the socket is already bound to a
    /// different address; the OS error from `listen`.
    pub fn listen(self, addr: impl Into<Address>, backlog: u32) -> io::Result<TcpListener> {
        let addr = self.check_family(addr.into())?;
        let bound = self.local_addr()?;
        if bound.port() == 0 {
            self.bind(addr)?;
        } else if !(bound == addr || (addr.port() == 0 && bound.ip() == addr.ip())) {
            return Err(invalid_input(format!(
                "the socket is already bound to {bound}, not {addr}: call listen with the bound \
                 address, or skip bind (listen binds)"
            )));
        }
        self.inner.listen(i32::try_from(backlog).unwrap_or(i32::MAX))?;
        TcpListener::from_mio(mio::net::TcpListener::from_std(std::net::TcpListener::from(self.inner)))
    }

    fn check_family(&self, addr: Address) -> io::Result<Address> {
        if addr.family() != self.family {
            return Err(invalid_input(format!(
                "address {addr} is {:?} but the socket is {:?}; make the socket with new_v4 or new_v6 to match",
                addr.family(),
                self.family
            )));
        }
        Ok(addr)
    }
}

use crate::net::check_buffer_size;

impl AsRawFd for TcpSocket {
    fn as_raw_fd(&self) -> RawFd {
        self.inner.as_raw_fd()
    }
}

impl AsFd for TcpSocket {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.inner.as_fd()
    }
}

impl fmt::Debug for TcpSocket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TcpSocket").field("family", &self.family).field("fd", &self.inner.as_raw_fd()).finish()
    }
}
