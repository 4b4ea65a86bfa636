//! [`UdpSocket`]: a UDP socket on the runtime's I/O driver, with multicast; the
//! [`UdpSocketBuilder`] for options that must be set before `bind`; [`RecvFromResult`].
//!
//! # Where it sits
//!
//! `UdpSocket` is a thin wrapper: every operation is one line that hands a system call
//! from `crate::sys` (`send_to`, `recv_from` with the `MSG_TRUNC` flag, ...) to the
//! readiness core in `crate::io::Evented`, in one of its three forms:
//!
//! * `try_*`: the call once, `Ok(None)` on would-block; no runtime, any thread;
//! * `async fn` (`recv_from`, `send_to`, `readable`, ...): the waiter-list loop, so any
//!   number of tasks may wait on one shared socket (`Arc<UdpSocket>`) and every one of
//!   them is woken;
//! * `poll_*`: the slot-based loop, for adapters that implement poll traits.
//!
//! Options are read and written through `std` or `socket2::SockRef`, never cached.
//!
//! # Truncation
//!
//! A datagram longer than the buffer is never silently cut: [`RecvFromResult::truncated`]
//! says the tail was discarded. On Linux the receive asks the kernel for the datagram's
//! full length (`MSG_TRUNC`); elsewhere the flag comes from the flags `recvmsg` returns.

use std::fmt;
use std::future::Future;
use std::io;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};
use std::task::{Context, Poll};

use socket2::{Domain, Protocol, SockAddr, SockRef, Socket, Type};

use crate::error::invalid_input;
use crate::io::{Evented, Interest, Ready};
use crate::net::Address;
use crate::runtime::io::Direction;
use crate::sys;

/// The socket address to send to, or `InvalidInput` for port 0 (not a destination).
#[inline]
fn destination(addr: Address) -> io::Result<SockAddr> {
    if addr.port() == 0 {
        return Err(port_zero(addr));
    }
    Ok(addr.to_sockaddr())
}

#[cold]
fn port_zero(addr: Address) -> io::Error {
    invalid_input(format!("cannot send to {addr}: port 0 is not a valid destination"))
}

/// `InvalidInput` unless `min <= value <= 255`: a one-byte IP header field.
fn check_byte_option(name: &str, value: u32, min: u32) -> io::Result<()> {
    if value < min || value > 255 {
        return Err(invalid_input(format!("{name} must be between {min} and 255, got {value}")));
    }
    Ok(())
}

/// `InvalidInput` unless `group` is a multicast address of its family.
fn check_group(is_multicast: bool, group: &dyn fmt::Display, family: &str, range: &str) -> io::Result<()> {
    if is_multicast {
        Ok(())
    } else {
        Err(invalid_input(format!("{group} is not an {family} multicast group address ({range})")))
    }
}

/// A UDP socket.
///
/// Unlike TCP there is no listener and no stream: one socket sends datagrams to any
/// address ([`send_to`](UdpSocket::send_to)) and receives them from any sender
/// ([`recv_from`](UdpSocket::recv_from)), or, after [`connect`](UdpSocket::connect),
/// exchanges them with one peer ([`send`](UdpSocket::send), [`recv`](UdpSocket::recv)).
///
/// Every method takes `&self`, so one socket can be shared between tasks with an
/// [`Arc`](std::sync::Arc): several tasks may wait in `recv_from` at once, and each
/// datagram goes to exactly one of them.
///
/// Each operation comes in two tiers: `try_*` calls never wait and need no runtime
/// (`Ok(None)` means "would block"); `async fn`s wait for readiness through the current
/// runtime's driver, or the fallback driver when polled outside a runtime.
///
/// # Multicast
///
/// A subscriber joins a group with [`join_multicast_v4`](UdpSocket::join_multicast_v4)
/// (or [`join_multicast_v6`](UdpSocket::join_multicast_v6)). Several subscribers on one
/// host can share the group's port only if each sets `SO_REUSEADDR` *before* binding:
/// use [`UdpSocket::bind_reuse_addr`] or [`UdpSocket::builder`] (which also offers
/// `SO_REUSEPORT`). A publisher picks the outgoing interface with
/// [`set_multicast_if_v4`](UdpSocket::set_multicast_if_v4), the scope with
/// [`set_multicast_ttl_v4`](UdpSocket::set_multicast_ttl_v4), and whether its own host
/// hears it with [`set_multicast_loop_v4`](UdpSocket::set_multicast_loop_v4).
///
/// ```
/// use blitz_io::net::{Address, UdpSocket};
/// use std::net::Ipv4Addr;
///
/// # blitz_io::run(async {
/// let group = Ipv4Addr::new(239, 7, 7, 7);
/// let sub = UdpSocket::builder().reuse_addr(true).bind(Address::from_port(0))?;
/// sub.join_multicast_v4(group, Ipv4Addr::LOCALHOST)?;
///
/// let publisher = UdpSocket::bind(Address::loopback_v4(0))?;
/// publisher.set_multicast_if_v4(Ipv4Addr::LOCALHOST)?;
/// publisher.set_multicast_loop_v4(true)?;
/// publisher.set_multicast_ttl_v4(1)?;
/// # let port = sub.local_addr()?.port();
/// # // Multicast on loopback is not available on every host: publish, and if the
/// # // datagram arrives, check it.
/// # if publisher.send_to(b"tick", (group, port)).await.is_ok() {
/// #     let mut buf = [0u8; 16];
/// #     let got = blitz_io::time::timeout(blitz_io::Duration::from_secs(1), sub.recv_from(&mut buf)).await;
/// #     if let Ok(r) = got {
/// #         assert_eq!(&buf[..r?.len], b"tick");
/// #     }
/// # }
/// sub.leave_multicast_v4(group, Ipv4Addr::LOCALHOST)?;
/// # Ok::<(), std::io::Error>(())
/// # }).unwrap();
/// ```
///
/// # Examples
///
/// ```
/// use blitz_io::net::{Address, UdpSocket};
///
/// # blitz_io::run(async {
/// let server = UdpSocket::bind(Address::loopback_v4(0))?;
/// let client = UdpSocket::bind(Address::loopback_v4(0))?;
///
/// client.send_to(b"ping", server.local_addr()?).await?;
/// let mut buf = [0u8; 64];
/// let got = server.recv_from(&mut buf).await?;
/// assert_eq!(&buf[..got.len], b"ping");
/// assert_eq!(got.addr, client.local_addr()?);
/// assert!(!got.truncated);
/// # Ok::<(), std::io::Error>(())
/// # }).unwrap();
/// ```
pub struct UdpSocket {
    io: Evented<std::net::UdpSocket>,
}

/// One datagram received by [`UdpSocket::recv_from`] (and its `try_`, `peek` and `poll`
/// forms).
///
/// # Examples
///
/// ```
/// use blitz_io::net::{Address, UdpSocket};
///
/// # blitz_io::run(async {
/// let a = UdpSocket::bind(Address::loopback_v4(0))?;
/// let b = UdpSocket::bind(Address::loopback_v4(0))?;
/// a.send_to(b"0123456789", b.local_addr()?).await?;
///
/// let mut small = [0u8; 4];
/// let r = b.recv_from(&mut small).await?;
/// assert_eq!((r.len, r.truncated), (4, true)); // 6 bytes were discarded
/// assert_eq!(&small, b"0123");
/// assert_eq!(r.addr, a.local_addr()?);
/// # Ok::<(), std::io::Error>(())
/// # }).unwrap();
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct RecvFromResult {
    /// Bytes written into the buffer; never more than its length.
    pub len: usize,
    /// The sender's address.
    pub addr: Address,
    /// `true` if the datagram was longer than the buffer and its tail was discarded (or,
    /// for a peek, not copied).
    pub truncated: bool,
}

/// Builds a [`UdpSocket`] with options that must be set before `bind`:
/// `SO_REUSEADDR`, `SO_REUSEPORT`, `IPV6_V6ONLY`, buffer sizes.
///
/// Made by [`UdpSocket::builder`]. The socket itself is created by
/// [`bind`](UdpSocketBuilder::bind), in the family of the address it is bound to, so one
/// builder can bind any number of sockets.
///
/// # Examples
///
/// Two multicast subscribers sharing one port:
///
/// ```
/// use blitz_io::net::{Address, UdpSocket};
///
/// let builder = UdpSocket::builder().reuse_addr(true);
/// let first = builder.bind(Address::from_port(0))?;
/// let port = first.local_addr()?.port();
/// let second = builder.bind(Address::from_port(port))?;
/// assert_eq!(second.local_addr()?.port(), port);
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Clone, Debug, Default)]
#[must_use = "a builder does nothing until `bind` is called"]
pub struct UdpSocketBuilder {
    reuse_addr: bool,
    reuse_port: bool,
    broadcast: bool,
    only_v6: Option<bool>,
    recv_buffer_size: Option<usize>,
    send_buffer_size: Option<usize>,
}

impl UdpSocketBuilder {
    /// Sets `SO_REUSEADDR` before binding (default off). On every socket that binds the
    /// same port, this lets multicast subscribers on one host share it.
    ///
    /// # Examples
    ///
    /// ```
    /// use blitz_io::net::{Address, UdpSocket};
    ///
    /// let s = UdpSocket::builder().reuse_addr(true).bind(Address::loopback_v4(0))?;
    /// assert!(s.reuse_addr()?);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn reuse_addr(mut self, on: bool) -> UdpSocketBuilder {
        self.reuse_addr = on;
        self
    }

    /// Sets `SO_REUSEPORT` before binding (default off). Set on every socket that binds
    /// the same address, this lets them share it; on Linux unicast datagrams are then
    /// spread across the sockets.
    ///
    /// # Examples
    ///
    /// ```
    /// use blitz_io::net::{Address, UdpSocket};
    ///
    /// let s = UdpSocket::builder().reuse_port(true).bind(Address::loopback_v4(0))?;
    /// assert!(s.reuse_port()?);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    #[cfg(not(any(target_os = "solaris", target_os = "illumos", target_os = "cygwin")))]
    pub fn reuse_port(mut self, on: bool) -> UdpSocketBuilder {
        self.reuse_port = on;
        self
    }

    /// Sets `SO_BROADCAST` (default off): allows sending to broadcast addresses.
    ///
    /// # Examples
    ///
    /// ```
    /// use blitz_io::net::{Address, UdpSocket};
    ///
    /// let s = UdpSocket::builder().broadcast(true).bind(Address::loopback_v4(0))?;
    /// assert!(s.broadcast()?);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn broadcast(mut self, on: bool) -> UdpSocketBuilder {
        self.broadcast = on;
        self
    }

    /// Sets `IPV6_V6ONLY` on an IPv6 socket (unset: the system default). Ignored when
    /// binding an IPv4 address.
    ///
    /// # Examples
    ///
    /// ```
    /// use blitz_io::net::{Address, UdpSocket};
    ///
    /// let builder = UdpSocket::builder().only_v6(true);
    /// # if std::net::UdpSocket::bind("[::1]:0").is_ok() {
    /// let s = builder.bind(Address::loopback_v6(0))?;
    /// assert!(s.local_addr()?.is_ipv6());
    /// # }
    /// # let _ = builder;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn only_v6(mut self, on: bool) -> UdpSocketBuilder {
        self.only_v6 = Some(on);
        self
    }

    /// Sets `SO_RCVBUF` before binding (the kernel may round or double it).
    ///
    /// # Examples
    ///
    /// ```
    /// use blitz_io::net::{Address, UdpSocket};
    ///
    /// let s = UdpSocket::builder().recv_buffer_size(1 << 16).bind(Address::loopback_v4(0))?;
    /// assert!(s.recv_buffer_size()? >= 1 << 16);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn recv_buffer_size(mut self, size: usize) -> UdpSocketBuilder {
        self.recv_buffer_size = Some(size);
        self
    }

    /// Sets `SO_SNDBUF` before binding (the kernel may round or double it).
    ///
    /// # Examples
    ///
    /// ```
    /// use blitz_io::net::{Address, UdpSocket};
    ///
    /// let s = UdpSocket::builder().send_buffer_size(1 << 16).bind(Address::loopback_v4(0))?;
    /// assert!(s.send_buffer_size()? >= 1 << 16);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn send_buffer_size(mut self, size: usize) -> UdpSocketBuilder {
        self.send_buffer_size = Some(size);
        self
    }

    /// Creates a socket in `addr`'s family, applies the options, and binds it to `addr`.
    ///
    /// # Errors
    ///
    /// `AddrInUse` if another socket holds the address (without reuse options on both),
    /// `AddrNotAvailable` if `addr`'s IP is not local, `PermissionDenied` for a
    /// privileged port, or whatever the OS reports for an option it refuses.
    ///
    /// # Examples
    ///
    /// ```
    /// use blitz_io::net::{Address, UdpSocket};
    ///
    /// let s = UdpSocket::builder().reuse_addr(true).bind(Address::loopback_v4(0))?;
    /// assert_ne!(s.local_addr()?.port(), 0);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn bind(&self, addr: impl Into<Address>) -> io::Result<UdpSocket> {
        let addr = addr.into();
        let sock = new_socket(Domain::for_address(addr.to_std()))?;
        if self.reuse_addr {
            sock.set_reuse_address(true)?;
        }
        #[cfg(not(any(target_os = "solaris", target_os = "illumos", target_os = "cygwin")))]
        if self.reuse_port {
            sock.set_reuse_port(true)?;
        }
        if self.broadcast {
            sock.set_broadcast(true)?;
        }
        if let (Some(on), true) = (self.only_v6, addr.is_ipv6()) {
            sock.set_only_v6(on)?;
        }
        if let Some(n) = self.recv_buffer_size {
            sock.set_recv_buffer_size(crate::net::check_buffer_size(n)?)?;
        }
        if let Some(n) = self.send_buffer_size {
            sock.set_send_buffer_size(crate::net::check_buffer_size(n)?)?;
        }
        sock.bind(&addr.to_sockaddr())?;
        Ok(UdpSocket::from_socket(sock))
    }
}

/// A new non-blocking UDP socket (close-on-exec, as socket2 always sets it).
fn new_socket(domain: Domain) -> io::Result<Socket> {
    let sock = Socket::new(domain, Type::DGRAM, Some(Protocol::UDP))?;
    sock.set_nonblocking(true)?;
    Ok(sock)
}

/// Turns the `(len, sender, truncated)` of `sys::recv_from` into a result. Called inside
/// the I/O closure, so that only the small result, not the 136-byte `SockAddr`, travels
/// out through the readiness layers.
#[inline]
fn recv_result((len, addr, truncated): (usize, SockAddr, bool)) -> io::Result<RecvFromResult> {
    Ok(RecvFromResult { len, addr: Address::from_sockaddr(&addr)?, truncated })
}

impl UdpSocket {
    // ===== construction =====

    /// Creates a UDP socket bound to `addr`. Port 0 lets the kernel pick a free port
    /// (read it back with [`local_addr`](UdpSocket::local_addr)).
    ///
    /// # Errors
    ///
    /// `AddrInUse` if another socket holds the address, `AddrNotAvailable` if `addr`'s IP
    /// is not local, `PermissionDenied` for a privileged port.
    ///
    /// # Examples
    ///
    /// ```
    /// use blitz_io::net::{Address, UdpSocket};
    ///
    /// let s = UdpSocket::bind(Address::loopback_v4(0))?;
    /// assert_ne!(s.local_addr()?.port(), 0);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn bind(addr: impl Into<Address>) -> io::Result<UdpSocket> {
        UdpSocketBuilder::default().bind(addr)
    }

    /// Creates a UDP socket with `SO_REUSEADDR` set before binding it to `addr`: what a
    /// multicast subscriber that shares its port with others on the host needs.
    ///
    /// The same as `UdpSocket::builder().reuse_addr(true).bind(addr)`.
    ///
    /// # Errors
    ///
    /// As [`bind`](UdpSocket::bind); `AddrInUse` if a socket without `SO_REUSEADDR`
    /// holds the address.
    ///
    /// # Examples
    ///
    /// ```
    /// use blitz_io::net::{Address, UdpSocket};
    ///
    /// let a = UdpSocket::bind_reuse_addr(Address::from_port(0))?;
    /// let b = UdpSocket::bind_reuse_addr(Address::from_port(a.local_addr()?.port()))?;
    /// assert_eq!(a.local_addr()?, b.local_addr()?);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn bind_reuse_addr(addr: impl Into<Address>) -> io::Result<UdpSocket> {
        UdpSocketBuilder::default().reuse_addr(true).bind(addr)
    }

    /// A [`UdpSocketBuilder`], for options that must be set before `bind`.
    ///
    /// # Examples
    ///
    /// ```
    /// use blitz_io::net::{Address, UdpSocket};
    ///
    /// let s = UdpSocket::builder().reuse_addr(true).broadcast(true).bind(Address::from_port(0))?;
    /// assert!(s.reuse_addr()? && s.broadcast()?);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn builder() -> UdpSocketBuilder {
        UdpSocketBuilder::default()
    }

    /// Creates an IPv4 UDP socket that is not bound yet: the kernel binds it to
    /// `0.0.0.0` and a free port on the first send (or `connect`).
    ///
    /// # Errors
    ///
    /// Whatever the OS reports when it cannot create a socket (`EMFILE`, ...).
    ///
    /// # Examples
    ///
    /// ```
    /// use blitz_io::net::{Address, UdpSocket};
    ///
    /// # blitz_io::run(async {
    /// let s = UdpSocket::unbound()?;
    /// assert_eq!(s.local_addr()?.port(), 0);
    /// # let peer = UdpSocket::bind(Address::loopback_v4(0))?;
    /// s.send_to(b"hi", peer.local_addr()?).await?;
    /// assert_ne!(s.local_addr()?.port(), 0);
    /// # Ok::<(), std::io::Error>(())
    /// # }).unwrap();
    /// ```
    pub fn unbound() -> io::Result<UdpSocket> {
        new_socket(Domain::IPV4).map(UdpSocket::from_socket)
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
    /// use blitz_io::net::UdpSocket;
    ///
    /// let std_sock = std::net::UdpSocket::bind("127.0.0.1:0")?;
    /// let addr = std_sock.local_addr()?;
    /// let s = UdpSocket::from_std(std_sock)?;
    /// assert_eq!(s.local_addr()?.to_std(), addr);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn from_std(socket: std::net::UdpSocket) -> io::Result<UdpSocket> {
        socket.set_nonblocking(true)?;
        Ok(UdpSocket { io: Evented::new_datagram(socket) })
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
    /// use blitz_io::net::{Address, UdpSocket};
    ///
    /// let s = UdpSocket::bind(Address::loopback_v4(0))?;
    /// let addr = s.local_addr()?;
    /// let std_sock = s.into_std()?;
    /// assert_eq!(std_sock.local_addr()?, addr.to_std());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn into_std(self) -> io::Result<std::net::UdpSocket> {
        let socket = self.io.into_inner();
        socket.set_nonblocking(false)?;
        Ok(socket)
    }

    fn from_socket(sock: Socket) -> UdpSocket {
        UdpSocket { io: Evented::new_datagram(std::net::UdpSocket::from(sock)) }
    }

    fn sock(&self) -> SockRef<'_> {
        SockRef::from(self.io.get())
    }

    // ===== unconnected: send_to / recv_from =====

    /// Sends `data` as one datagram to `addr`, if that can be done without waiting.
    ///
    /// Returns `Ok(Some(n))` with `n == data.len()` when the datagram was queued,
    /// `Ok(None)` when the send buffer is full. Needs no runtime.
    ///
    /// # Errors
    ///
    /// `InvalidInput` when `addr` has port 0 (no destination), checked before any
    /// system call. `Other` (`EMSGSIZE`) for a datagram too large to send (it is never
    /// sent in part),
    /// `PermissionDenied` for a broadcast address without
    /// [`set_broadcast`](UdpSocket::set_broadcast), `NetworkUnreachable` /
    /// `HostUnreachable` when no route leads to `addr`, an address-family error when
    /// `addr` is not in the socket's family.
    ///
    /// # Examples
    ///
    /// ```
    /// use blitz_io::net::{Address, UdpSocket};
    ///
    /// let a = UdpSocket::bind(Address::loopback_v4(0))?;
    /// let b = UdpSocket::bind(Address::loopback_v4(0))?;
    /// assert_eq!(a.try_send_to(b"hi", b.local_addr()?)?, Some(2));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn try_send_to(&self, data: &[u8], addr: impl Into<Address>) -> io::Result<Option<usize>> {
        let to = destination(addr.into())?;
        self.io.try_io(Interest::WRITABLE, |s| sys::send_to(s.as_fd(), data, &to))
    }

    /// Receives one datagram, if one is queued, and says who sent it.
    ///
    /// Returns `Ok(None)` when nothing is queued. A datagram longer than `buf` fills it
    /// and sets [`truncated`](RecvFromResult::truncated); the rest is discarded. Needs no
    /// runtime.
    ///
    /// # Errors
    ///
    /// `ConnectionRefused` on a connected socket whose peer answered an earlier datagram
    /// with an ICMP port-unreachable.
    ///
    /// # Examples
    ///
    /// ```
    /// use blitz_io::net::{Address, UdpSocket};
    ///
    /// let s = UdpSocket::bind(Address::loopback_v4(0))?;
    /// let mut buf = [0u8; 16];
    /// assert!(s.try_recv_from(&mut buf)?.is_none()); // nothing sent yet
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn try_recv_from(&self, buf: &mut [u8]) -> io::Result<Option<RecvFromResult>> {
        self.io.try_io(Interest::READABLE, |s| sys::recv_from(s.as_fd(), buf, false).and_then(recv_result))
    }

    /// Copies the next datagram into `buf` without removing it from the queue, if one is
    /// queued; the next receive returns the same datagram.
    ///
    /// `truncated` is set when the datagram is longer than `buf`. Needs no runtime.
    ///
    /// # Errors
    ///
    /// As [`try_recv_from`](UdpSocket::try_recv_from).
    ///
    /// # Examples
    ///
    /// ```
    /// use blitz_io::net::{Address, UdpSocket};
    ///
    /// # blitz_io::run(async {
    /// let a = UdpSocket::bind(Address::loopback_v4(0))?;
    /// let b = UdpSocket::bind(Address::loopback_v4(0))?;
    /// a.send_to(b"once", b.local_addr()?).await?;
    /// let mut buf = [0u8; 8];
    /// let peeked = loop {
    ///     b.readable().await?; // a hint: the peek may still find nothing
    ///     if let Some(p) = b.try_peek_from(&mut buf)? {
    ///         break p;
    ///     }
    /// };
    /// let got = b.try_recv_from(&mut buf)?.expect("still queued");
    /// assert_eq!(peeked, got);
    /// # Ok::<(), std::io::Error>(())
    /// # }).unwrap();
    /// ```
    pub fn try_peek_from(&self, buf: &mut [u8]) -> io::Result<Option<RecvFromResult>> {
        self.io.try_io(Interest::READABLE, |s| sys::recv_from(s.as_fd(), buf, true).and_then(recv_result))
    }

    /// Sends `data` as one datagram to `addr`, waiting for send-buffer space if needed.
    ///
    /// Returns `data.len()`: a datagram is sent whole or not at all.
    ///
    /// # Errors
    ///
    /// As [`try_send_to`](UdpSocket::try_send_to).
    ///
    /// # Cancel safety
    ///
    /// This method is cancel safe. A datagram is sent whole or not at all: if the future
    /// is dropped before it completes, nothing was sent.
    ///
    /// # Examples
    ///
    /// ```
    /// use blitz_io::net::{Address, UdpSocket};
    ///
    /// # blitz_io::run(async {
    /// let a = UdpSocket::bind(Address::loopback_v4(0))?;
    /// let b = UdpSocket::bind(Address::loopback_v4(0))?;
    /// assert_eq!(a.send_to(b"hello", b.local_addr()?).await?, 5);
    /// # Ok::<(), std::io::Error>(())
    /// # }).unwrap();
    /// ```
    pub fn send_to<'a>(
        &'a self,
        data: &'a [u8],
        addr: impl Into<Address>,
    ) -> impl Future<Output = io::Result<usize>> + 'a {
        // Port 0 fails the first poll, before any wait for writability.
        self.io
            .async_io_with(Interest::WRITABLE, destination(addr.into()), move |s, to| sys::send_to(s.as_fd(), data, to))
    }

    /// Receives one datagram, waiting until one arrives, and says who sent it.
    ///
    /// A datagram longer than `buf` fills it and sets
    /// [`truncated`](RecvFromResult::truncated); the rest is discarded.
    ///
    /// # Errors
    ///
    /// As [`try_recv_from`](UdpSocket::try_recv_from).
    ///
    /// # Cancel safety
    ///
    /// This method is cancel safe. If the future is dropped before it completes, no
    /// datagram was taken from the socket: the next receive gets it.
    ///
    /// # Examples
    ///
    /// ```
    /// use blitz_io::net::{Address, UdpSocket};
    ///
    /// # blitz_io::run(async {
    /// let a = UdpSocket::bind(Address::loopback_v4(0))?;
    /// let b = UdpSocket::bind(Address::loopback_v4(0))?;
    /// a.send_to(b"hello", b.local_addr()?).await?;
    /// let mut buf = [0u8; 64];
    /// let got = b.recv_from(&mut buf).await?;
    /// assert_eq!(&buf[..got.len], b"hello");
    /// # Ok::<(), std::io::Error>(())
    /// # }).unwrap();
    /// ```
    pub fn recv_from<'a>(&'a self, buf: &'a mut [u8]) -> impl Future<Output = io::Result<RecvFromResult>> + 'a {
        self.io.async_io(Interest::READABLE, move |s| sys::recv_from(s.as_fd(), buf, false).and_then(recv_result))
    }

    /// Copies the next datagram into `buf`, waiting until one arrives, without removing
    /// it from the queue.
    ///
    /// # Errors
    ///
    /// As [`try_recv_from`](UdpSocket::try_recv_from).
    ///
    /// # Cancel safety
    ///
    /// This method is cancel safe: it never removes a datagram, whether it completes or
    /// is dropped.
    ///
    /// # Examples
    ///
    /// ```
    /// use blitz_io::net::{Address, UdpSocket};
    ///
    /// # blitz_io::run(async {
    /// let a = UdpSocket::bind(Address::loopback_v4(0))?;
    /// let b = UdpSocket::bind(Address::loopback_v4(0))?;
    /// a.send_to(b"keep", b.local_addr()?).await?;
    /// let mut buf = [0u8; 8];
    /// let peeked = b.peek_from(&mut buf).await?;
    /// assert_eq!(b.recv_from(&mut buf).await?, peeked);
    /// # Ok::<(), std::io::Error>(())
    /// # }).unwrap();
    /// ```
    pub fn peek_from<'a>(&'a self, buf: &'a mut [u8]) -> impl Future<Output = io::Result<RecvFromResult>> + 'a {
        self.io.async_io(Interest::READABLE, move |s| sys::recv_from(s.as_fd(), buf, true).and_then(recv_result))
    }

    // ===== connected: connect / send / recv =====

    /// Sets the socket's default peer: [`send`](UdpSocket::send) goes there, and only
    /// datagrams from there are received. An unbound socket is bound to a free port.
    ///
    /// Nothing is sent; connecting again replaces the peer.
    ///
    /// # Errors
    ///
    /// `InvalidInput` when `addr` has port 0 (the kernel would accept it and leave the
    /// socket unable to send); `NetworkUnreachable` when no route leads to `addr`, an
    /// address-family error when `addr` is not in the socket's family.
    ///
    /// # Examples
    ///
    /// ```
    /// use blitz_io::net::{Address, UdpSocket};
    ///
    /// let a = UdpSocket::bind(Address::loopback_v4(0))?;
    /// let b = UdpSocket::bind(Address::loopback_v4(0))?;
    /// a.connect(b.local_addr()?)?;
    /// assert_eq!(a.peer_addr()?, b.local_addr()?);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn connect(&self, addr: impl Into<Address>) -> io::Result<()> {
        let addr = addr.into();
        if addr.port() == 0 {
            return Err(port_zero(addr));
        }
        self.io.get().connect(addr.to_std())
    }

    /// Sends `data` as one datagram to the connected peer, if that can be done without
    /// waiting (`Ok(None)` when the send buffer is full). Needs no runtime.
    ///
    /// # Errors
    ///
    /// `NotConnected` before [`connect`](UdpSocket::connect); `ConnectionRefused` when the
    /// peer answered an earlier datagram with an ICMP port-unreachable; `Other`
    /// (`EMSGSIZE`) for a datagram too large to send.
    ///
    /// # Examples
    ///
    /// ```
    /// use blitz_io::net::{Address, UdpSocket};
    ///
    /// let a = UdpSocket::bind(Address::loopback_v4(0))?;
    /// let b = UdpSocket::bind(Address::loopback_v4(0))?;
    /// a.connect(b.local_addr()?)?;
    /// assert_eq!(a.try_send(b"hi")?, Some(2));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn try_send(&self, data: &[u8]) -> io::Result<Option<usize>> {
        self.io.try_io(Interest::WRITABLE, |s| sys::send(s.as_fd(), data))
    }

    /// Receives one datagram from the connected peer, if one is queued (`Ok(None)`
    /// otherwise). A datagram longer than `buf` fills it and the rest is discarded; use
    /// [`try_recv_from`](UdpSocket::try_recv_from) to learn that it happened. Needs no
    /// runtime.
    ///
    /// # Errors
    ///
    /// `ConnectionRefused` when the peer answered an earlier datagram with an ICMP
    /// port-unreachable.
    ///
    /// # Examples
    ///
    /// ```
    /// use blitz_io::net::{Address, UdpSocket};
    ///
    /// let s = UdpSocket::bind(Address::loopback_v4(0))?;
    /// let mut buf = [0u8; 8];
    /// assert_eq!(s.try_recv(&mut buf)?, None);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn try_recv(&self, buf: &mut [u8]) -> io::Result<Option<usize>> {
        self.io.try_io(Interest::READABLE, |s| sys::recv(s.as_fd(), buf, false))
    }

    /// Sends `data` as one datagram to the connected peer, waiting for send-buffer space
    /// if needed. Returns `data.len()`.
    ///
    /// # Errors
    ///
    /// As [`try_send`](UdpSocket::try_send).
    ///
    /// # Cancel safety
    ///
    /// This method is cancel safe. A datagram is sent whole or not at all: if the future
    /// is dropped before it completes, nothing was sent.
    ///
    /// # Examples
    ///
    /// ```
    /// use blitz_io::net::{Address, UdpSocket};
    ///
    /// # blitz_io::run(async {
    /// let a = UdpSocket::bind(Address::loopback_v4(0))?;
    /// let b = UdpSocket::bind(Address::loopback_v4(0))?;
    /// a.connect(b.local_addr()?)?;
    /// b.connect(a.local_addr()?)?;
    /// a.send(b"ping").await?;
    /// let mut buf = [0u8; 8];
    /// let n = b.recv(&mut buf).await?;
    /// assert_eq!(&buf[..n], b"ping");
    /// # Ok::<(), std::io::Error>(())
    /// # }).unwrap();
    /// ```
    pub fn send<'a>(&'a self, data: &'a [u8]) -> impl Future<Output = io::Result<usize>> + 'a {
        self.io.async_io(Interest::WRITABLE, move |s| sys::send(s.as_fd(), data))
    }

    /// Receives one datagram from the connected peer, waiting until one arrives. A
    /// datagram longer than `buf` fills it and the rest is discarded; use
    /// [`recv_from`](UdpSocket::recv_from) to learn that it happened.
    ///
    /// # Errors
    ///
    /// As [`try_recv`](UdpSocket::try_recv).
    ///
    /// # Cancel safety
    ///
    /// This method is cancel safe. If the future is dropped before it completes, no
    /// datagram was taken from the socket: the next receive gets it.
    ///
    /// # Examples
    ///
    /// ```
    /// use blitz_io::net::{Address, UdpSocket};
    ///
    /// # blitz_io::run(async {
    /// let a = UdpSocket::bind(Address::loopback_v4(0))?;
    /// let b = UdpSocket::bind(Address::loopback_v4(0))?;
    /// b.connect(a.local_addr()?)?;
    /// a.send_to(b"pong", b.local_addr()?).await?;
    /// let mut buf = [0u8; 8];
    /// let n = b.recv(&mut buf).await?;
    /// assert_eq!(&buf[..n], b"pong");
    /// # Ok::<(), std::io::Error>(())
    /// # }).unwrap();
    /// ```
    pub fn recv<'a>(&'a self, buf: &'a mut [u8]) -> impl Future<Output = io::Result<usize>> + 'a {
        self.io.async_io(Interest::READABLE, move |s| sys::recv(s.as_fd(), buf, false))
    }

    // ===== poll forms, for adapters =====

    /// Polls for one datagram (the poll form of [`recv_from`](UdpSocket::recv_from)).
    ///
    /// Returns `Poll::Pending` and stores `cx`'s waker when nothing is queued.
    ///
    /// # Errors
    ///
    /// As [`try_recv_from`](UdpSocket::try_recv_from).
    ///
    /// # Caveats
    ///
    /// The socket keeps one waker per direction for the `poll_*` methods: two tasks
    /// polling receives on the same socket replace each other's waker, and one of them
    /// may never wake. Share a socket between tasks with the `async` methods, which keep
    /// a list of waiters.
    ///
    /// # Examples
    ///
    /// ```
    /// use blitz_io::net::{Address, UdpSocket};
    /// use std::future::poll_fn;
    ///
    /// # blitz_io::run(async {
    /// let a = UdpSocket::bind(Address::loopback_v4(0))?;
    /// let b = UdpSocket::bind(Address::loopback_v4(0))?;
    /// poll_fn(|cx| a.poll_send_to(cx, b"x", b.local_addr()?)).await?;
    /// let mut buf = [0u8; 4];
    /// let got = poll_fn(|cx| b.poll_recv_from(cx, &mut buf)).await?;
    /// assert_eq!(&buf[..got.len], b"x");
    /// # Ok::<(), std::io::Error>(())
    /// # }).unwrap();
    /// ```
    pub fn poll_recv_from(&self, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<RecvFromResult>> {
        self.io.poll_io(cx, Direction::Read, |s| sys::recv_from(s.as_fd(), buf, false).and_then(recv_result), |_| false)
    }

    /// Polls to send one datagram to `addr` (the poll form of
    /// [`send_to`](UdpSocket::send_to)).
    ///
    /// # Errors
    ///
    /// As [`try_send_to`](UdpSocket::try_send_to).
    ///
    /// # Caveats
    ///
    /// As [`poll_recv_from`](UdpSocket::poll_recv_from): one waker per direction.
    ///
    /// # Examples
    ///
    /// ```
    /// use blitz_io::net::{Address, UdpSocket};
    /// use std::future::poll_fn;
    ///
    /// # blitz_io::run(async {
    /// let a = UdpSocket::bind(Address::loopback_v4(0))?;
    /// let to = UdpSocket::bind(Address::loopback_v4(0))?.local_addr()?;
    /// assert_eq!(poll_fn(|cx| a.poll_send_to(cx, b"abc", to)).await?, 3);
    /// # Ok::<(), std::io::Error>(())
    /// # }).unwrap();
    /// ```
    pub fn poll_send_to(&self, cx: &mut Context<'_>, data: &[u8], addr: impl Into<Address>) -> Poll<io::Result<usize>> {
        let to = destination(addr.into())?;
        self.io.poll_io(cx, Direction::Write, |s| sys::send_to(s.as_fd(), data, &to), |_| false)
    }

    /// Polls for one datagram from the connected peer (the poll form of
    /// [`recv`](UdpSocket::recv)).
    ///
    /// # Errors
    ///
    /// As [`try_recv`](UdpSocket::try_recv).
    ///
    /// # Caveats
    ///
    /// As [`poll_recv_from`](UdpSocket::poll_recv_from): one waker per direction.
    ///
    /// # Examples
    ///
    /// ```
    /// use blitz_io::net::{Address, UdpSocket};
    /// use std::future::poll_fn;
    ///
    /// # blitz_io::run(async {
    /// let a = UdpSocket::bind(Address::loopback_v4(0))?;
    /// let b = UdpSocket::bind(Address::loopback_v4(0))?;
    /// a.connect(b.local_addr()?)?;
    /// b.connect(a.local_addr()?)?;
    /// poll_fn(|cx| a.poll_send(cx, b"y")).await?;
    /// let mut buf = [0u8; 4];
    /// assert_eq!(poll_fn(|cx| b.poll_recv(cx, &mut buf)).await?, 1);
    /// # Ok::<(), std::io::Error>(())
    /// # }).unwrap();
    /// ```
    pub fn poll_recv(&self, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
        self.io.poll_io(cx, Direction::Read, |s| sys::recv(s.as_fd(), buf, false), |_| false)
    }

    /// Polls to send one datagram to the connected peer (the poll form of
    /// [`send`](UdpSocket::send)).
    ///
    /// # Errors
    ///
    /// As [`try_send`](UdpSocket::try_send).
    ///
    /// # Caveats
    ///
    /// As [`poll_recv_from`](UdpSocket::poll_recv_from): one waker per direction.
    ///
    /// # Examples
    ///
    /// ```
    /// use blitz_io::net::{Address, UdpSocket};
    /// use std::future::poll_fn;
    ///
    /// # blitz_io::run(async {
    /// let a = UdpSocket::bind(Address::loopback_v4(0))?;
    /// a.connect(UdpSocket::bind(Address::loopback_v4(0))?.local_addr()?)?;
    /// assert_eq!(poll_fn(|cx| a.poll_send(cx, b"zz")).await?, 2);
    /// # Ok::<(), std::io::Error>(())
    /// # }).unwrap();
    /// ```
    pub fn poll_send(&self, cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
        self.io.poll_io(cx, Direction::Write, |s| sys::send(s.as_fd(), data), |_| false)
    }

    /// Polls until a datagram may be queued (read readiness), without receiving it.
    ///
    /// # Errors
    ///
    /// Only if the socket cannot be registered with a driver, or the runtime shut down.
    ///
    /// # Caveats
    ///
    /// As [`poll_recv_from`](UdpSocket::poll_recv_from): one waker per direction.
    ///
    /// # Examples
    ///
    /// ```
    /// use blitz_io::net::{Address, UdpSocket};
    /// use std::future::poll_fn;
    ///
    /// # blitz_io::run(async {
    /// let a = UdpSocket::bind(Address::loopback_v4(0))?;
    /// a.send_to(b"self", a.local_addr()?).await?;
    /// poll_fn(|cx| a.poll_recv_ready(cx)).await?;
    /// # Ok::<(), std::io::Error>(())
    /// # }).unwrap();
    /// ```
    pub fn poll_recv_ready(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.io.poll_ready(cx, Direction::Read).map_ok(|_| ())
    }

    /// Polls until a datagram can probably be sent (write readiness).
    ///
    /// # Errors
    ///
    /// Only if the socket cannot be registered with a driver, or the runtime shut down.
    ///
    /// # Caveats
    ///
    /// As [`poll_recv_from`](UdpSocket::poll_recv_from): one waker per direction.
    ///
    /// # Examples
    ///
    /// ```
    /// use blitz_io::net::{Address, UdpSocket};
    /// use std::future::poll_fn;
    ///
    /// # blitz_io::run(async {
    /// let a = UdpSocket::bind(Address::loopback_v4(0))?;
    /// poll_fn(|cx| a.poll_send_ready(cx)).await?;
    /// # Ok::<(), std::io::Error>(())
    /// # }).unwrap();
    /// ```
    pub fn poll_send_ready(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.io.poll_ready(cx, Direction::Write).map_ok(|_| ())
    }

    // ===== readiness =====

    /// Waits until the socket is readable: a datagram (or an error) may be queued.
    ///
    /// Readiness is a hint: a following [`try_recv_from`](UdpSocket::try_recv_from) may
    /// still return `Ok(None)` (another task took the datagram, or the readiness was a
    /// false positive), which clears the cached readiness so the next wait sleeps. Call it in a loop with a `try_*` call, as below.
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
    /// use blitz_io::net::{Address, UdpSocket};
    ///
    /// # blitz_io::run(async {
    /// let a = UdpSocket::bind(Address::loopback_v4(0))?;
    /// a.send_to(b"x", a.local_addr()?).await?;
    /// let mut buf = [0u8; 4];
    /// let got = loop {
    ///     a.readable().await?;
    ///     if let Some(got) = a.try_recv_from(&mut buf)? {
    ///         break got;
    ///     }
    /// };
    /// assert_eq!(got.len, 1);
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
    /// use blitz_io::net::{Address, UdpSocket};
    ///
    /// # blitz_io::run(async {
    /// let a = UdpSocket::bind(Address::loopback_v4(0))?;
    /// a.writable().await?;
    /// assert_eq!(a.try_send_to(b"x", a.local_addr()?)?, Some(1));
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
    /// use blitz_io::net::{Address, UdpSocket};
    ///
    /// # blitz_io::run(async {
    /// let a = UdpSocket::bind(Address::loopback_v4(0))?;
    /// let ready = a.ready(Interest::READABLE | Interest::WRITABLE).await?;
    /// assert!(ready.is_writable());
    /// # Ok::<(), std::io::Error>(())
    /// # }).unwrap();
    /// ```
    pub fn ready(&self, interest: Interest) -> impl Future<Output = io::Result<Ready>> + '_ {
        self.io.ready(interest)
    }

    // ===== addresses =====

    /// The address the socket is bound to (`0.0.0.0:0` for an [`unbound`](UdpSocket::unbound)
    /// socket before its first send).
    ///
    /// # Errors
    ///
    /// Whatever `getsockname` reports (rare).
    ///
    /// # Examples
    ///
    /// ```
    /// use blitz_io::net::{Address, UdpSocket};
    ///
    /// let s = UdpSocket::bind(Address::loopback_v4(0))?;
    /// assert!(s.local_addr()?.ip().is_loopback());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn local_addr(&self) -> io::Result<Address> {
        self.io.get().local_addr().map(Address::from_std)
    }

    /// The connected peer's address.
    ///
    /// # Errors
    ///
    /// `NotConnected` before [`connect`](UdpSocket::connect).
    ///
    /// # Examples
    ///
    /// ```
    /// use blitz_io::net::{Address, UdpSocket};
    /// use std::io::ErrorKind;
    ///
    /// let s = UdpSocket::bind(Address::loopback_v4(0))?;
    /// assert_eq!(s.peer_addr().unwrap_err().kind(), ErrorKind::NotConnected);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn peer_addr(&self) -> io::Result<Address> {
        self.io.get().peer_addr().map(Address::from_std)
    }

    // ===== options =====

    /// Sets `SO_BROADCAST`: whether datagrams may be sent to broadcast addresses.
    ///
    /// # Errors
    ///
    /// Whatever the OS reports for the option (rare).
    ///
    /// # Examples
    ///
    /// ```
    /// use blitz_io::net::{Address, UdpSocket};
    ///
    /// let s = UdpSocket::bind(Address::loopback_v4(0))?;
    /// s.set_broadcast(true)?;
    /// assert!(s.broadcast()?);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn set_broadcast(&self, on: bool) -> io::Result<()> {
        self.io.get().set_broadcast(on)
    }

    /// Reads `SO_BROADCAST`; see [`set_broadcast`](UdpSocket::set_broadcast).
    ///
    /// # Errors
    ///
    /// Whatever the OS reports for the option (rare).
    ///
    /// # Examples
    ///
    /// ```
    /// use blitz_io::net::{Address, UdpSocket};
    ///
    /// assert!(!UdpSocket::bind(Address::loopback_v4(0))?.broadcast()?);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn broadcast(&self) -> io::Result<bool> {
        self.io.get().broadcast()
    }

    /// Sets `SO_REUSEADDR` on a socket that is already bound.
    ///
    /// This cannot help *this* socket bind (it is bound already), but on Linux it lets a
    /// later socket that also sets the option bind the same port. To set it before
    /// binding, use [`UdpSocket::bind_reuse_addr`] or [`UdpSocket::builder`].
    ///
    /// # Errors
    ///
    /// Whatever the OS reports for the option (rare).
    ///
    /// # Examples
    ///
    /// ```
    /// use blitz_io::net::{Address, UdpSocket};
    ///
    /// let s = UdpSocket::bind(Address::loopback_v4(0))?;
    /// s.set_reuse_addr(true)?;
    /// assert!(s.reuse_addr()?);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn set_reuse_addr(&self, on: bool) -> io::Result<()> {
        self.sock().set_reuse_address(on)
    }

    /// Reads `SO_REUSEADDR`.
    ///
    /// # Errors
    ///
    /// Whatever the OS reports for the option (rare).
    ///
    /// # Examples
    ///
    /// ```
    /// use blitz_io::net::{Address, UdpSocket};
    ///
    /// assert!(UdpSocket::bind_reuse_addr(Address::loopback_v4(0))?.reuse_addr()?);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn reuse_addr(&self) -> io::Result<bool> {
        self.sock().reuse_address()
    }

    /// Sets `SO_REUSEPORT` on a socket that is already bound (see
    /// [`set_reuse_addr`](UdpSocket::set_reuse_addr) for what that can do; use
    /// [`UdpSocketBuilder::reuse_port`] to set it before binding).
    ///
    /// # Errors
    ///
    /// Whatever the OS reports for the option (rare).
    ///
    /// # Examples
    ///
    /// ```
    /// use blitz_io::net::{Address, UdpSocket};
    ///
    /// let s = UdpSocket::bind(Address::loopback_v4(0))?;
    /// s.set_reuse_port(true)?;
    /// assert!(s.reuse_port()?);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    #[cfg(not(any(target_os = "solaris", target_os = "illumos", target_os = "cygwin")))]
    pub fn set_reuse_port(&self, on: bool) -> io::Result<()> {
        self.sock().set_reuse_port(on)
    }

    /// Reads `SO_REUSEPORT`.
    ///
    /// # Errors
    ///
    /// Whatever the OS reports for the option (rare).
    ///
    /// # Examples
    ///
    /// ```
    /// use blitz_io::net::{Address, UdpSocket};
    ///
    /// assert!(!UdpSocket::bind(Address::loopback_v4(0))?.reuse_port()?);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    #[cfg(not(any(target_os = "solaris", target_os = "illumos", target_os = "cygwin")))]
    pub fn reuse_port(&self) -> io::Result<bool> {
        self.sock().reuse_port()
    }

    /// Sets `IP_MULTICAST_LOOP`: whether IPv4 multicast this socket sends is also
    /// delivered to subscribers on this host (on by default).
    ///
    /// # Errors
    ///
    /// An error from the OS on an IPv6 socket.
    ///
    /// # Examples
    ///
    /// ```
    /// use blitz_io::net::{Address, UdpSocket};
    ///
    /// let s = UdpSocket::bind(Address::loopback_v4(0))?;
    /// s.set_multicast_loop_v4(false)?;
    /// assert!(!s.multicast_loop_v4()?);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn set_multicast_loop_v4(&self, on: bool) -> io::Result<()> {
        self.io.get().set_multicast_loop_v4(on)
    }

    /// Reads `IP_MULTICAST_LOOP`; see
    /// [`set_multicast_loop_v4`](UdpSocket::set_multicast_loop_v4).
    ///
    /// # Errors
    ///
    /// An error from the OS on an IPv6 socket.
    ///
    /// # Examples
    ///
    /// ```
    /// use blitz_io::net::{Address, UdpSocket};
    ///
    /// assert!(UdpSocket::bind(Address::loopback_v4(0))?.multicast_loop_v4()?);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn multicast_loop_v4(&self) -> io::Result<bool> {
        self.io.get().multicast_loop_v4()
    }

    /// Sets `IP_MULTICAST_TTL`: how many router hops IPv4 multicast from this socket may
    /// cross (1, the default, keeps it on the local network).
    ///
    /// # Errors
    ///
    /// `InvalidInput` for a value above 255 (checked here: the kernel would take some
    /// such values as "the default"); an error on an IPv6 socket.
    ///
    /// # Examples
    ///
    /// ```
    /// use blitz_io::net::{Address, UdpSocket};
    ///
    /// let s = UdpSocket::bind(Address::loopback_v4(0))?;
    /// s.set_multicast_ttl_v4(4)?;
    /// assert_eq!(s.multicast_ttl_v4()?, 4);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn set_multicast_ttl_v4(&self, ttl: u32) -> io::Result<()> {
        check_byte_option("multicast TTL", ttl, 0)?;
        self.io.get().set_multicast_ttl_v4(ttl)
    }

    /// Reads `IP_MULTICAST_TTL`; see
    /// [`set_multicast_ttl_v4`](UdpSocket::set_multicast_ttl_v4).
    ///
    /// # Errors
    ///
    /// An error from the OS on an IPv6 socket.
    ///
    /// # Examples
    ///
    /// ```
    /// use blitz_io::net::{Address, UdpSocket};
    ///
    /// assert_eq!(UdpSocket::bind(Address::loopback_v4(0))?.multicast_ttl_v4()?, 1);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn multicast_ttl_v4(&self) -> io::Result<u32> {
        self.io.get().multicast_ttl_v4()
    }

    /// Sets `IP_MULTICAST_IF`: the local interface, named by one of its IPv4 addresses,
    /// that IPv4 multicast from this socket leaves by (`0.0.0.0`: the routing table
    /// decides).
    ///
    /// # Errors
    ///
    /// `AddrNotAvailable` if no interface has that address; an error on an IPv6 socket.
    ///
    /// # Examples
    ///
    /// ```
    /// use blitz_io::net::{Address, UdpSocket};
    /// use std::net::Ipv4Addr;
    ///
    /// let s = UdpSocket::bind(Address::loopback_v4(0))?;
    /// s.set_multicast_if_v4(Ipv4Addr::LOCALHOST)?;
    /// assert_eq!(s.multicast_if_v4()?, Ipv4Addr::LOCALHOST);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn set_multicast_if_v4(&self, iface: Ipv4Addr) -> io::Result<()> {
        self.sock().set_multicast_if_v4(&iface)
    }

    /// Reads `IP_MULTICAST_IF`; see
    /// [`set_multicast_if_v4`](UdpSocket::set_multicast_if_v4).
    ///
    /// # Errors
    ///
    /// An error from the OS on an IPv6 socket.
    ///
    /// # Examples
    ///
    /// ```
    /// use blitz_io::net::{Address, UdpSocket};
    /// use std::net::Ipv4Addr;
    ///
    /// let s = UdpSocket::bind(Address::loopback_v4(0))?;
    /// assert_eq!(s.multicast_if_v4()?, Ipv4Addr::UNSPECIFIED);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn multicast_if_v4(&self) -> io::Result<Ipv4Addr> {
        self.sock().multicast_if_v4()
    }

    /// Sets `IP_MULTICAST_ALL` (Linux): whether this socket, bound to a wildcard address,
    /// receives datagrams for every group any socket on the host joined (on, the Linux
    /// default) or only for the groups it joined itself (off). A subscriber that must
    /// stop hearing a group when it leaves, while other sockets on the host stay joined,
    /// turns this off.
    ///
    /// # Errors
    ///
    /// An error from the OS on an IPv6 socket.
    ///
    /// # Platform-specific behavior
    ///
    /// Linux only; other systems deliver only the groups a socket joined.
    ///
    /// # Examples
    ///
    /// ```
    /// use blitz_io::net::{Address, UdpSocket};
    ///
    /// let s = UdpSocket::bind_reuse_addr(Address::from_port(0))?;
    /// assert!(s.multicast_all_v4()?);
    /// s.set_multicast_all_v4(false)?;
    /// assert!(!s.multicast_all_v4()?);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    #[cfg(target_os = "linux")]
    pub fn set_multicast_all_v4(&self, on: bool) -> io::Result<()> {
        self.sock().set_multicast_all_v4(on)
    }

    /// Reads `IP_MULTICAST_ALL` (Linux); see
    /// [`set_multicast_all_v4`](UdpSocket::set_multicast_all_v4).
    ///
    /// # Errors
    ///
    /// An error from the OS on an IPv6 socket.
    ///
    /// # Examples
    ///
    /// ```
    /// use blitz_io::net::{Address, UdpSocket};
    ///
    /// assert!(UdpSocket::bind(Address::from_port(0))?.multicast_all_v4()?);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    #[cfg(target_os = "linux")]
    pub fn multicast_all_v4(&self) -> io::Result<bool> {
        self.sock().multicast_all_v4()
    }

    /// Sets `IPV6_MULTICAST_LOOP`: whether IPv6 multicast this socket sends is also
    /// delivered to subscribers on this host (on by default).
    ///
    /// # Errors
    ///
    /// An error from the OS on an IPv4 socket.
    ///
    /// # Examples
    ///
    /// ```
    /// use blitz_io::net::{Address, UdpSocket};
    ///
    /// # if std::net::UdpSocket::bind("[::1]:0").is_err() { return Ok(()); }
    /// let s = UdpSocket::bind(Address::loopback_v6(0))?;
    /// s.set_multicast_loop_v6(false)?;
    /// assert!(!s.multicast_loop_v6()?);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn set_multicast_loop_v6(&self, on: bool) -> io::Result<()> {
        self.io.get().set_multicast_loop_v6(on)
    }

    /// Reads `IPV6_MULTICAST_LOOP`; see
    /// [`set_multicast_loop_v6`](UdpSocket::set_multicast_loop_v6).
    ///
    /// # Errors
    ///
    /// An error from the OS on an IPv4 socket.
    ///
    /// # Examples
    ///
    /// ```
    /// use blitz_io::net::{Address, UdpSocket};
    ///
    /// # if std::net::UdpSocket::bind("[::1]:0").is_err() { return Ok(()); }
    /// assert!(UdpSocket::bind(Address::loopback_v6(0))?.multicast_loop_v6()?);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn multicast_loop_v6(&self) -> io::Result<bool> {
        self.io.get().multicast_loop_v6()
    }

    /// Sets `IPV6_MULTICAST_IF`: the index of the interface IPv6 multicast from this
    /// socket leaves by (0: the routing table decides).
    ///
    /// # Errors
    ///
    /// An error from the OS for an unknown index or on an IPv4 socket.
    ///
    /// # Examples
    ///
    /// ```
    /// use blitz_io::net::{Address, UdpSocket};
    ///
    /// # if std::net::UdpSocket::bind("[::1]:0").is_err() { return Ok(()); }
    /// let s = UdpSocket::bind(Address::loopback_v6(0))?;
    /// s.set_multicast_if_v6(0)?;
    /// assert_eq!(s.multicast_if_v6()?, 0);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn set_multicast_if_v6(&self, iface_index: u32) -> io::Result<()> {
        self.sock().set_multicast_if_v6(iface_index)
    }

    /// Reads `IPV6_MULTICAST_IF`; see
    /// [`set_multicast_if_v6`](UdpSocket::set_multicast_if_v6).
    ///
    /// # Errors
    ///
    /// An error from the OS on an IPv4 socket.
    ///
    /// # Examples
    ///
    /// ```
    /// use blitz_io::net::{Address, UdpSocket};
    ///
    /// # if std::net::UdpSocket::bind("[::1]:0").is_err() { return Ok(()); }
    /// assert_eq!(UdpSocket::bind(Address::loopback_v6(0))?.multicast_if_v6()?, 0);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn multicast_if_v6(&self) -> io::Result<u32> {
        self.sock().multicast_if_v6()
    }

    /// Sets `IP_TTL`: the time-to-live of unicast IPv4 datagrams from this socket.
    ///
    /// # Errors
    ///
    /// `InvalidInput` for 0 or a value above 255, checked here (the kernel takes
    /// `u32::MAX` as "the default" and would report success).
    ///
    /// # Examples
    ///
    /// ```
    /// use blitz_io::net::{Address, UdpSocket};
    ///
    /// let s = UdpSocket::bind(Address::loopback_v4(0))?;
    /// s.set_ttl(42)?;
    /// assert_eq!(s.ttl()?, 42);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn set_ttl(&self, ttl: u32) -> io::Result<()> {
        check_byte_option("TTL", ttl, 1)?;
        self.io.get().set_ttl(ttl)
    }

    /// Reads `IP_TTL`; see [`set_ttl`](UdpSocket::set_ttl).
    ///
    /// # Errors
    ///
    /// Whatever the OS reports for the option (rare).
    ///
    /// # Examples
    ///
    /// ```
    /// use blitz_io::net::{Address, UdpSocket};
    ///
    /// assert!(UdpSocket::bind(Address::loopback_v4(0))?.ttl()? > 0);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn ttl(&self) -> io::Result<u32> {
        self.io.get().ttl()
    }

    /// Sets `IP_TOS`, the IPv4 type-of-service byte (DSCP and ECN bits) of datagrams
    /// from this socket.
    ///
    /// # Errors
    ///
    /// `InvalidInput` for a value above 255 (the field is one byte; the kernel would keep
    /// only the low byte); what the OS reports otherwise; an error on an IPv6 socket.
    ///
    /// # Examples
    ///
    /// ```
    /// use blitz_io::net::{Address, UdpSocket};
    ///
    /// let s = UdpSocket::bind(Address::loopback_v4(0))?;
    /// s.set_tos(0x10)?;
    /// assert_eq!(s.tos()?, 0x10);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    #[cfg(not(any(target_os = "fuchsia", target_os = "redox", target_os = "solaris", target_os = "haiku")))]
    pub fn set_tos(&self, tos: u32) -> io::Result<()> {
        check_byte_option("TOS", tos, 0)?;
        self.sock().set_tos_v4(tos)
    }

    /// Reads `IP_TOS`; see [`set_tos`](UdpSocket::set_tos).
    ///
    /// # Errors
    ///
    /// Whatever the OS reports for the option; an error on an IPv6 socket.
    ///
    /// # Examples
    ///
    /// ```
    /// use blitz_io::net::{Address, UdpSocket};
    ///
    /// assert_eq!(UdpSocket::bind(Address::loopback_v4(0))?.tos()?, 0);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    #[cfg(not(any(target_os = "fuchsia", target_os = "redox", target_os = "solaris", target_os = "haiku")))]
    pub fn tos(&self) -> io::Result<u32> {
        self.sock().tos_v4()
    }

    /// Sets `SO_RCVBUF`, the receive buffer size (the kernel may round or double it).
    ///
    /// # Errors
    ///
    /// Whatever the OS reports for the option (rare).
    ///
    /// # Examples
    ///
    /// ```
    /// use blitz_io::net::{Address, UdpSocket};
    ///
    /// let s = UdpSocket::bind(Address::loopback_v4(0))?;
    /// s.set_recv_buffer_size(1 << 16)?;
    /// assert!(s.recv_buffer_size()? >= 1 << 16);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn set_recv_buffer_size(&self, size: usize) -> io::Result<()> {
        self.sock().set_recv_buffer_size(crate::net::check_buffer_size(size)?)
    }

    /// Reads `SO_RCVBUF`.
    ///
    /// # Errors
    ///
    /// Whatever the OS reports for the option (rare).
    ///
    /// # Examples
    ///
    /// ```
    /// use blitz_io::net::{Address, UdpSocket};
    ///
    /// assert!(UdpSocket::bind(Address::loopback_v4(0))?.recv_buffer_size()? > 0);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn recv_buffer_size(&self) -> io::Result<usize> {
        self.sock().recv_buffer_size()
    }

    /// Sets `SO_SNDBUF`, the send buffer size (the kernel may round or double it).
    ///
    /// # Errors
    ///
    /// Whatever the OS reports for the option (rare).
    ///
    /// # Examples
    ///
    /// ```
    /// use blitz_io::net::{Address, UdpSocket};
    ///
    /// let s = UdpSocket::bind(Address::loopback_v4(0))?;
    /// s.set_send_buffer_size(1 << 16)?;
    /// assert!(s.send_buffer_size()? >= 1 << 16);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn set_send_buffer_size(&self, size: usize) -> io::Result<()> {
        self.sock().set_send_buffer_size(crate::net::check_buffer_size(size)?)
    }

    /// Reads `SO_SNDBUF`.
    ///
    /// # Errors
    ///
    /// Whatever the OS reports for the option (rare).
    ///
    /// # Examples
    ///
    /// ```
    /// use blitz_io::net::{Address, UdpSocket};
    ///
    /// assert!(UdpSocket::bind(Address::loopback_v4(0))?.send_buffer_size()? > 0);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn send_buffer_size(&self) -> io::Result<usize> {
        self.sock().send_buffer_size()
    }

    // ===== multicast membership =====

    /// Joins the IPv4 multicast group `group` on the interface whose address is `iface`
    /// (`0.0.0.0`: the kernel picks one). Datagrams sent to the group and this socket's
    /// port are then received.
    ///
    /// # Errors
    ///
    /// `InvalidInput` if `group` is not a multicast address (checked first, with a message
    /// naming the range) or the socket is IPv6, `AddrInUse` if the socket
    /// already joined it on that interface, `AddrNotAvailable` if no interface has
    /// `iface`; `NoDevice`-style errors when the kernel finds no multicast route.
    ///
    /// # Examples
    ///
    /// ```
    /// use blitz_io::net::{Address, UdpSocket};
    /// use std::net::Ipv4Addr;
    ///
    /// let s = UdpSocket::bind_reuse_addr(Address::from_port(0))?;
    /// let group = Ipv4Addr::new(239, 1, 2, 3);
    /// s.join_multicast_v4(group, Ipv4Addr::LOCALHOST)?;
    /// s.leave_multicast_v4(group, Ipv4Addr::LOCALHOST)?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn join_multicast_v4(&self, group: Ipv4Addr, iface: Ipv4Addr) -> io::Result<()> {
        check_group(group.is_multicast(), &group, "IPv4", "224.0.0.0/4")?;
        self.io.get().join_multicast_v4(&group, &iface).map_err(|e| self.family_error(e, false, "join_multicast_v4"))
    }

    /// Leaves an IPv4 multicast group joined with
    /// [`join_multicast_v4`](UdpSocket::join_multicast_v4). Closing the socket leaves
    /// every group too.
    ///
    /// # Errors
    ///
    /// `InvalidInput` as for [`join_multicast_v4`](UdpSocket::join_multicast_v4);
    /// `AddrNotAvailable` if the socket is not a member of `group` on `iface`.
    ///
    /// # Examples
    ///
    /// ```
    /// use blitz_io::net::{Address, UdpSocket};
    /// use std::net::Ipv4Addr;
    ///
    /// let s = UdpSocket::bind(Address::from_port(0))?;
    /// let group = Ipv4Addr::new(239, 1, 2, 4);
    /// assert!(s.leave_multicast_v4(group, Ipv4Addr::LOCALHOST).is_err()); // never joined
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn leave_multicast_v4(&self, group: Ipv4Addr, iface: Ipv4Addr) -> io::Result<()> {
        check_group(group.is_multicast(), &group, "IPv4", "224.0.0.0/4")?;
        self.io.get().leave_multicast_v4(&group, &iface).map_err(|e| self.family_error(e, false, "leave_multicast_v4"))
    }

    /// Joins the IPv6 multicast group `group` on the interface with index `iface_index`
    /// (0: the kernel picks one).
    ///
    /// # Errors
    ///
    /// `InvalidInput` if `group` is not a multicast address or the socket is IPv4,
    /// `AddrInUse` if already joined, an error when the index names no interface or no multicast route exists.
    ///
    /// # Examples
    ///
    /// ```
    /// use blitz_io::net::{Address, UdpSocket};
    /// use std::net::Ipv6Addr;
    ///
    /// # if std::net::UdpSocket::bind("[::1]:0").is_err() { return Ok(()); }
    /// let s = UdpSocket::bind(Address::loopback_v6(0))?;
    /// let group: Ipv6Addr = "ff01::1234".parse().unwrap();
    /// # let lo = 1; // the loopback interface's index on Linux
    /// if s.join_multicast_v6(&group, lo).is_ok() {
    ///     s.leave_multicast_v6(&group, lo)?;
    /// }
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn join_multicast_v6(&self, group: &Ipv6Addr, iface_index: u32) -> io::Result<()> {
        check_group(group.is_multicast(), group, "IPv6", "ff00::/8")?;
        self.io.get().join_multicast_v6(group, iface_index).map_err(|e| self.family_error(e, true, "join_multicast_v6"))
    }

    /// Leaves an IPv6 multicast group joined with
    /// [`join_multicast_v6`](UdpSocket::join_multicast_v6).
    ///
    /// # Errors
    ///
    /// `InvalidInput` as for [`join_multicast_v6`](UdpSocket::join_multicast_v6);
    /// `AddrNotAvailable` if the socket is not a member of `group` on that interface.
    ///
    /// # Examples
    ///
    /// ```
    /// use blitz_io::net::{Address, UdpSocket};
    /// use std::net::Ipv6Addr;
    ///
    /// # if std::net::UdpSocket::bind("[::1]:0").is_err() { return Ok(()); }
    /// let s = UdpSocket::bind(Address::loopback_v6(0))?;
    /// let group: Ipv6Addr = "ff01::4321".parse().unwrap();
    /// assert!(s.leave_multicast_v6(&group, 1).is_err()); // never joined
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn leave_multicast_v6(&self, group: &Ipv6Addr, iface_index: u32) -> io::Result<()> {
        check_group(group.is_multicast(), group, "IPv6", "ff00::/8")?;
        self.io
            .get()
            .leave_multicast_v6(group, iface_index)
            .map_err(|e| self.family_error(e, true, "leave_multicast_v6"))
    }

    /// A multicast call that failed on a socket of the other family (`EINVAL` /
    /// `ENOPROTOOPT` from the kernel) becomes `InvalidInput` saying so; other errors
    /// pass unchanged.
    #[cold]
    fn family_error(&self, e: io::Error, want_v6: bool, call: &str) -> io::Error {
        match self.local_addr() {
            Ok(local) if local.is_ipv6() != want_v6 => {
                let want = if want_v6 { "an IPv6" } else { "an IPv4" };
                invalid_input(format!("{call} needs {want} socket; this one is bound to {local}"))
            }
            _ => e,
        }
    }

    /// Takes the socket's pending error (`SO_ERROR`), clearing it.
    ///
    /// On a connected socket, an ICMP port-unreachable answering an earlier datagram is
    /// left here as `ConnectionRefused` until the next send or receive reports it, or
    /// this takes it.
    ///
    /// # Errors
    ///
    /// Whatever `getsockopt` reports (rare); the pending error itself is the `Ok` value.
    ///
    /// # Examples
    ///
    /// ```
    /// use blitz_io::net::{Address, UdpSocket};
    ///
    /// let s = UdpSocket::bind(Address::loopback_v4(0))?;
    /// assert!(s.take_error()?.is_none());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn take_error(&self) -> io::Result<Option<io::Error>> {
        self.io.get().take_error()
    }
}

impl fmt::Debug for UdpSocket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("UdpSocket");
        if let Ok(addr) = self.local_addr() {
            d.field("local", &addr);
        }
        if let Ok(addr) = self.peer_addr() {
            d.field("peer", &addr);
        }
        d.field("fd", &self.io.get().as_raw_fd()).finish()
    }
}

impl AsRawFd for UdpSocket {
    fn as_raw_fd(&self) -> RawFd {
        self.io.get().as_raw_fd()
    }
}

impl AsFd for UdpSocket {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.io.get().as_fd()
    }
}

impl TryFrom<std::net::UdpSocket> for UdpSocket {
    type Error = io::Error;

    /// The same as [`UdpSocket::from_std`].
    fn try_from(socket: std::net::UdpSocket) -> io::Result<UdpSocket> {
        UdpSocket::from_std(socket)
    }
}
