//! IP socket addresses ([`Address`], [`Family`]) and blocking host-name resolution
//! ([`resolve`], [`resolve_first`]).
//!
//! Every TCP and UDP call in [`crate::net`] takes `impl Into<Address>`, so a
//! [`std::net::SocketAddr`], an `(IpAddr, u16)` pair or a `([u8; 4], u16)` pair all work
//! where an address is expected. [`Address::parse`] is strictly numeric and never
//! touches the network: turning a host name into addresses is [`resolve`]'s job (blocking,
//! through the system resolver) or `lookup_host`'s (the same work, on the runtime's
//! blocking pool, for async code).
//!
//! Conversions to and from `socket2::SockAddr` (`to_sockaddr`, `from_sockaddr`) are
//! crate-internal: they are how the socket types hand addresses to the kernel.

use std::fmt;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6, ToSocketAddrs};
use std::str::FromStr;

use socket2::SockAddr;

use crate::error::invalid_input;

/// An IPv4 or IPv6 socket address: an IP address and a port.
///
/// A thin, `Copy` wrapper over [`std::net::SocketAddr`]. Its text form (from
/// [`Display`](fmt::Display)) is the one [`Address::parse`] accepts: `1.2.3.4:80`,
/// `[::1]:80`, `[fe80::1%2]:80` (with a numeric IPv6 scope id).
///
/// # Examples
///
/// ```
/// use blitz_io::net::Address;
///
/// let addr = Address::parse("127.0.0.1:8080")?;
/// assert_eq!(addr.port(), 8080);
/// assert!(addr.is_ipv4());
/// assert_eq!(addr, Address::loopback_v4(8080));
/// assert_eq!(addr.to_string(), "127.0.0.1:8080");
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Address {
    inner: SocketAddr,
}

/// The address family of an [`Address`]: IPv4 or IPv6.
///
/// # Examples
///
/// ```
/// use blitz_io::net::{Address, Family};
///
/// assert_eq!(Address::loopback_v6(80).family(), Family::V6);
/// assert_eq!(Family::V4.as_raw(), libc::AF_INET);
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum Family {
    /// IPv4 (`AF_INET`).
    V4,
    /// IPv6 (`AF_INET6`).
    V6,
}

impl Family {
    /// The platform's raw constant for this family: `AF_INET` or `AF_INET6`.
    ///
    /// This is the value socket calls and `sockaddr` structures carry; it differs between
    /// platforms (`AF_INET6` is 10 on Linux and 30 on macOS).
    ///
    /// # Examples
    ///
    /// ```
    /// use blitz_io::net::Family;
    ///
    /// assert_ne!(Family::V4.as_raw(), Family::V6.as_raw());
    /// ```
    pub fn as_raw(self) -> i32 {
        match self {
            Family::V4 => libc::AF_INET,
            Family::V6 => libc::AF_INET6,
        }
    }
}

/// The example given in every parse error message.
const EXPECTED: &str = "expected a numeric \"IP:port\" such as \"127.0.0.1:8080\" or \"[::1]:8080\"";

impl Address {
    /// Parses a numeric socket address: `"1.2.3.4:80"`, `"[::1]:80"`, or an IPv6 address
    /// with a numeric scope id, `"[fe80::1%2]:80"`.
    ///
    /// Parsing is purely textual: no DNS lookup, no I/O. The accepted text is exactly what
    /// [`Display`](fmt::Display) produces, so `Address::parse(&a.to_string())` gives back
    /// `a` (an IPv6 flow label, which has no text form, is the one exception).
    ///
    /// # Errors
    ///
    /// [`InvalidInput`](io::ErrorKind::InvalidInput), with a message saying what was
    /// wrong, for: an empty string; a missing port (`"1.2.3.4"`, `"[::1]"`); a port that
    /// is not a number or is above 65535; an IPv6 address without brackets (`"::1:80"`);
    /// a malformed IP address; and a host name (`"localhost:80"`), whose message points to
    /// [`resolve`] and `lookup_host`, since this function never resolves names.
    ///
    /// # Examples
    ///
    /// ```
    /// use blitz_io::net::Address;
    /// use std::io::ErrorKind;
    ///
    /// let v6 = Address::parse("[::1]:443")?;
    /// assert!(v6.is_ipv6());
    /// assert_eq!(v6.port(), 443);
    ///
    /// let err = Address::parse("localhost:80").unwrap_err();
    /// assert_eq!(err.kind(), ErrorKind::InvalidInput);
    /// assert!(err.to_string().contains("resolve"));
    ///
    /// let err = Address::parse("127.0.0.1:70000").unwrap_err();
    /// assert!(err.to_string().contains("out of range"));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn parse(s: &str) -> io::Result<Address> {
        match s.parse::<SocketAddr>() {
            Ok(inner) => Ok(Address { inner }),
            Err(_) => Err(invalid_input(diagnose(s))),
        }
    }

    /// The wildcard IPv4 address with the given port: `0.0.0.0:port`.
    ///
    /// Binding to it listens on every IPv4 interface; port 0 lets the kernel pick one.
    ///
    /// # Examples
    ///
    /// ```
    /// use blitz_io::net::Address;
    ///
    /// assert_eq!(Address::from_port(8080).to_string(), "0.0.0.0:8080");
    /// ```
    pub fn from_port(port: u16) -> Address {
        Address::from((Ipv4Addr::UNSPECIFIED, port))
    }

    /// The IPv4 loopback address with the given port: `127.0.0.1:port`.
    ///
    /// # Examples
    ///
    /// ```
    /// use blitz_io::net::Address;
    ///
    /// assert!(Address::loopback_v4(80).ip().is_loopback());
    /// ```
    pub fn loopback_v4(port: u16) -> Address {
        Address::from((Ipv4Addr::LOCALHOST, port))
    }

    /// The IPv6 loopback address with the given port: `[::1]:port`.
    ///
    /// # Examples
    ///
    /// ```
    /// use blitz_io::net::Address;
    ///
    /// assert_eq!(Address::loopback_v6(80).to_string(), "[::1]:80");
    /// ```
    pub fn loopback_v6(port: u16) -> Address {
        Address::from((Ipv6Addr::LOCALHOST, port))
    }

    /// Wraps a [`std::net::SocketAddr`]. The same as `Address::from(addr)`.
    ///
    /// # Examples
    ///
    /// ```
    /// use blitz_io::net::Address;
    /// use std::net::SocketAddr;
    ///
    /// let std_addr: SocketAddr = "10.0.0.1:53".parse().unwrap();
    /// assert_eq!(Address::from_std(std_addr).to_std(), std_addr);
    /// ```
    pub fn from_std(addr: SocketAddr) -> Address {
        Address { inner: addr }
    }

    /// The address as a [`std::net::SocketAddr`]. The same as `SocketAddr::from(addr)`.
    ///
    /// # Examples
    ///
    /// ```
    /// use blitz_io::net::Address;
    ///
    /// let std_addr = Address::loopback_v4(9).to_std();
    /// assert_eq!(std_addr.port(), 9);
    /// ```
    pub fn to_std(&self) -> SocketAddr {
        self.inner
    }

    /// The port number.
    ///
    /// # Examples
    ///
    /// ```
    /// use blitz_io::net::Address;
    ///
    /// assert_eq!(Address::from_port(1234).port(), 1234);
    /// ```
    pub fn port(&self) -> u16 {
        self.inner.port()
    }

    /// The IP address.
    ///
    /// # Examples
    ///
    /// ```
    /// use blitz_io::net::Address;
    /// use std::net::{IpAddr, Ipv4Addr};
    ///
    /// assert_eq!(Address::loopback_v4(80).ip(), IpAddr::V4(Ipv4Addr::LOCALHOST));
    /// ```
    pub fn ip(&self) -> IpAddr {
        self.inner.ip()
    }

    /// The address family: [`Family::V4`] or [`Family::V6`].
    ///
    /// An IPv4-mapped IPv6 address (`[::ffff:1.2.3.4]:80`) is [`Family::V6`]: the family
    /// follows the socket address type, not the address inside it.
    ///
    /// # Examples
    ///
    /// ```
    /// use blitz_io::net::{Address, Family};
    ///
    /// assert_eq!(Address::loopback_v4(80).family(), Family::V4);
    /// ```
    pub fn family(&self) -> Family {
        match self.inner {
            SocketAddr::V4(_) => Family::V4,
            SocketAddr::V6(_) => Family::V6,
        }
    }

    /// Whether this is an IPv4 address.
    ///
    /// # Examples
    ///
    /// ```
    /// use blitz_io::net::Address;
    ///
    /// assert!(Address::loopback_v4(80).is_ipv4());
    /// ```
    pub fn is_ipv4(&self) -> bool {
        self.inner.is_ipv4()
    }

    /// Whether this is an IPv6 address.
    ///
    /// # Examples
    ///
    /// ```
    /// use blitz_io::net::Address;
    ///
    /// assert!(Address::loopback_v6(80).is_ipv6());
    /// ```
    pub fn is_ipv6(&self) -> bool {
        self.inner.is_ipv6()
    }

    /// The address in the form socket calls take.
    pub(crate) fn to_sockaddr(self) -> SockAddr {
        SockAddr::from(self.inner)
    }

    /// Reads an address the kernel returned (`getsockname`, `accept`, `recvfrom`).
    ///
    /// # Errors
    ///
    /// `InvalidInput` if the address is not IPv4 or IPv6 (for example a Unix address).
    pub(crate) fn from_sockaddr(addr: &SockAddr) -> io::Result<Address> {
        addr.as_socket().map(Address::from_std).ok_or_else(|| {
            invalid_input(format!("expected an IPv4 or IPv6 socket address, got address family {}", addr.family()))
        })
    }
}

/// Explains why `s` is not a numeric socket address. Called only after std's parser
/// rejected it; never panics, whatever `s` holds.
fn diagnose(s: &str) -> String {
    if s.is_empty() {
        return format!("empty address: {EXPECTED}");
    }
    if s.trim() != s {
        return format!("address {s:?} has leading or trailing whitespace: {EXPECTED}");
    }
    // Only a bracketed IPv6 address may contain more than one ':'.
    if let Some(rest) = s.strip_prefix('[') {
        let Some((host, after)) = rest.split_once(']') else {
            return format!("address {s:?} has '[' without a matching ']': {EXPECTED}");
        };
        let ip = host.split_once('%').map_or(host, |(ip, _)| ip);
        if ip.parse::<Ipv6Addr>().is_err() {
            return format!("{host:?} in {s:?} is not a valid IPv6 address: {EXPECTED}");
        }
        if let Some((_, scope)) = host.split_once('%') {
            if scope.parse::<u32>().is_err() {
                return format!(
                    "IPv6 scope id {scope:?} in {s:?} must be a numeric interface index \
                     such as \"[fe80::1%2]:80\""
                );
            }
        }
        return match after.strip_prefix(':') {
            None if after.is_empty() => format!("address {s:?} is missing a port: {EXPECTED}"),
            None => format!("unexpected text {after:?} after ']' in {s:?}: {EXPECTED}"),
            Some(port) => port_problem(s, port),
        };
    }
    if s.parse::<Ipv6Addr>().is_ok() {
        return format!(
            "address {s:?} is a bare IPv6 address: write it in brackets followed by a port, \
             such as \"[{s}]:80\""
        );
    }
    if s.parse::<Ipv4Addr>().is_ok() {
        return format!("address {s:?} is missing a port, such as \"{s}:80\"");
    }
    let Some((host, port)) = s.rsplit_once(':') else {
        return if looks_like_host_name(s) {
            host_name_message(s)
        } else {
            format!("address {s:?} is missing a port: {EXPECTED}")
        };
    };
    if host.parse::<SocketAddrV4>().is_ok() {
        return format!("address {s:?} has extra text after the port: {EXPECTED}");
    }
    if host.contains(':') {
        return format!(
            "address {s:?} looks like an IPv6 address without brackets: write \"[addr]:port\" \
             such as \"[::1]:8080\""
        );
    }
    if host.is_empty() {
        return format!("address {s:?} is missing the IP address before ':': {EXPECTED}");
    }
    if host.parse::<Ipv4Addr>().is_ok() {
        return port_problem(s, port);
    }
    if looks_like_host_name(host) {
        return host_name_message(s);
    }
    format!("{host:?} in {s:?} is not a valid IPv4 address: {EXPECTED}")
}

/// Explains what is wrong with the port text `port` of address `s`.
fn port_problem(s: &str, port: &str) -> String {
    if port.is_empty() {
        return format!("address {s:?} is missing a port after ':': {EXPECTED}");
    }
    if port.bytes().all(|b| b.is_ascii_digit()) {
        // All digits, yet std refused it: the value does not fit in 16 bits.
        return format!("port {port} in {s:?} is out of range: ports are 0 to 65535");
    }
    format!("port {port:?} in {s:?} is not a number: ports are 0 to 65535")
}

/// Whether `host` could be a DNS name: letters, digits, '-', '.' and '_', with at least
/// one character that is not a digit or a dot (so "1.2.3.400" is a bad IP, not a name).
fn looks_like_host_name(host: &str) -> bool {
    !host.is_empty()
        && host.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_'))
        && host.bytes().any(|b| !(b.is_ascii_digit() || b == b'.'))
}

/// The message for a host name given where a numeric address is required.
fn host_name_message(s: &str) -> String {
    format!(
        "{s:?} contains a host name, but Address::parse accepts only numeric addresses \
         such as \"127.0.0.1:8080\" or \"[::1]:8080\"; to look a name up use \
         blitz_io::net::resolve (blocking) or blitz_io::net::lookup_host (async)"
    )
}

impl fmt::Display for Address {
    /// Writes the address in the form [`Address::parse`] accepts: `1.2.3.4:80`,
    /// `[::1]:80`, `[fe80::1%2]:80`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.inner, f)
    }
}

impl fmt::Debug for Address {
    /// The same text as [`Display`](fmt::Display): `127.0.0.1:8080`, `[::1]:8080`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.inner, f)
    }
}

impl FromStr for Address {
    type Err = io::Error;

    /// The same as [`Address::parse`].
    fn from_str(s: &str) -> io::Result<Address> {
        Address::parse(s)
    }
}

impl From<SocketAddr> for Address {
    fn from(addr: SocketAddr) -> Address {
        Address { inner: addr }
    }
}

impl From<Address> for SocketAddr {
    fn from(addr: Address) -> SocketAddr {
        addr.inner
    }
}

impl From<SocketAddrV4> for Address {
    fn from(addr: SocketAddrV4) -> Address {
        Address::from(SocketAddr::V4(addr))
    }
}

impl From<SocketAddrV6> for Address {
    fn from(addr: SocketAddrV6) -> Address {
        Address::from(SocketAddr::V6(addr))
    }
}

impl From<(IpAddr, u16)> for Address {
    fn from((ip, port): (IpAddr, u16)) -> Address {
        Address::from(SocketAddr::new(ip, port))
    }
}

impl From<(Ipv4Addr, u16)> for Address {
    fn from((ip, port): (Ipv4Addr, u16)) -> Address {
        Address::from(SocketAddrV4::new(ip, port))
    }
}

impl From<(Ipv6Addr, u16)> for Address {
    fn from((ip, port): (Ipv6Addr, u16)) -> Address {
        Address::from(SocketAddrV6::new(ip, port, 0, 0))
    }
}

impl From<([u8; 4], u16)> for Address {
    fn from((octets, port): ([u8; 4], u16)) -> Address {
        Address::from((Ipv4Addr::from(octets), port))
    }
}

impl From<([u16; 8], u16)> for Address {
    fn from((segments, port): ([u16; 8], u16)) -> Address {
        Address::from((Ipv6Addr::from(segments), port))
    }
}

/// Resolves a host name (or numeric IP address) and port to socket addresses.
///
/// **This blocks the calling thread** while the system resolver (`getaddrinfo`) runs,
/// which can take seconds. From async code use `blitz_io::net::lookup_host`, which runs
/// this on the runtime's blocking pool instead of stalling a worker.
///
/// A numeric host (`"127.0.0.1"`, `"::1"`, `"[::1]"`, `"fe80::1%2"`) is converted directly,
/// without a lookup. Otherwise the addresses come back in the resolver's order, which
/// is the order to try them in, with duplicates removed.
///
/// # Errors
///
/// - [`InvalidInput`](io::ErrorKind::InvalidInput) if `host` is empty, contains a
///   `':'` without being an IPv6 literal (such as `"example.com:80"`: pass the port as
///   the second argument), or holds a character no host name has (whitespace, control
///   characters, brackets around a non-IPv6 address), with a message that says which.
/// - The resolver's error, with its kind kept and the host name added to the message,
///   if the lookup fails (an unknown name, no network, a NUL byte in `host`).
/// - [`NotFound`](io::ErrorKind::NotFound) if the lookup succeeds with no addresses.
///
/// # Examples
///
/// ```
/// use blitz_io::net::{resolve, Address};
///
/// let addrs = resolve("127.0.0.1", 8080)?;
/// assert_eq!(addrs, vec![Address::loopback_v4(8080)]);
///
/// for addr in resolve("localhost", 80)? {
///     assert!(addr.ip().is_loopback());
/// }
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn resolve(host: &str, port: u16) -> io::Result<Vec<Address>> {
    if let Some(answer) = resolve_without_dns(host, port) {
        return answer;
    }
    let found = (host, port).to_socket_addrs().map_err(|e| {
        // Keep the kind (and an OS error as it is); add which name failed, which the
        // resolver's own message does not say.
        if e.raw_os_error().is_some() {
            e
        } else {
            io::Error::new(e.kind(), format!("failed to resolve {host:?}: {e}"))
        }
    })?;
    let mut addrs: Vec<Address> = Vec::new();
    for addr in found.map(Address::from) {
        if !addrs.contains(&addr) {
            addrs.push(addr);
        }
    }
    if addrs.is_empty() {
        return Err(io::Error::new(io::ErrorKind::NotFound, format!("host {host:?} resolved to no addresses")));
    }
    Ok(addrs)
}

/// What [`resolve`] answers without asking the resolver: a numeric host's address, or
/// `InvalidInput` for a host no resolver could look up. `None`: a name to look up.
/// (`lookup_host` answers these on the calling thread, without a blocking job.)
pub(crate) fn resolve_without_dns(host: &str, port: u16) -> Option<io::Result<Vec<Address>>> {
    if host.is_empty() {
        return Some(Err(invalid_input("empty host name: expected a name such as \"example.com\" or an IP address")));
    }
    if let Some(addr) = numeric_host(host, port) {
        return Some(Ok(vec![addr]));
    }
    if host.contains(':') {
        return Some(Err(invalid_input(format!(
            "host {host:?} contains ':' but is not an IPv6 address; pass the host name \
             alone and the port as the second argument"
        ))));
    }
    check_host_name(host).err().map(Err)
}

/// `InvalidInput` for a host name that no resolver could look up, saying why: a
/// character that never appears in a name (whitespace, a control character such as
/// NUL, brackets around something that is not an IPv6 address). Length and label rules
/// are left to the resolver: local names (`/etc/hosts`, mDNS, NSS modules that encode
/// Unicode themselves) need not follow DNS's.
fn check_host_name(host: &str) -> io::Result<()> {
    if let Some(c) = host.chars().find(|c| c.is_whitespace() || c.is_control() || matches!(c, '[' | ']')) {
        let what = if matches!(c, '[' | ']') {
            "brackets enclose IPv6 addresses only".to_owned()
        } else {
            format!("{c:?} cannot appear in a host name")
        };
        return Err(invalid_input(format!("bad host name {host:?}: {what}")));
    }
    Ok(())
}

/// Resolves a host name (or numeric IP address) and port, and returns the first address.
///
/// The first address is the one the system resolver prefers. **This blocks the calling
/// thread**; from async code use `blitz_io::net::lookup_host`. To connect to a name,
/// prefer trying every address (`connect_host` does) over only the first.
///
/// # Errors
///
/// The same as [`resolve`].
///
/// # Examples
///
/// ```
/// use blitz_io::net::{resolve_first, Address};
///
/// assert_eq!(resolve_first("::1", 443)?, Address::loopback_v6(443));
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn resolve_first(host: &str, port: u16) -> io::Result<Address> {
    resolve(host, port)?
        .into_iter()
        .next()
        .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, format!("host {host:?} resolved to no addresses")))
}

/// `host` and `port` as an address, if `host` is a numeric IP address: `"1.2.3.4"`,
/// `"::1"`, `"[::1]"`, or an IPv6 address with a numeric scope id, `"fe80::1%2"`.
fn numeric_host(host: &str, port: u16) -> Option<Address> {
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Some(Address::from((ip, port)));
    }
    let inner = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')).unwrap_or(host);
    if !inner.contains(':') || inner.contains(['[', ']']) {
        return None;
    }
    format!("[{inner}]:{port}").parse::<SocketAddrV6>().ok().map(Address::from)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_v4_v6_and_scope() {
        let a = Address::parse("1.2.3.4:80").unwrap();
        assert_eq!(a.ip(), IpAddr::V4(Ipv4Addr::new(1, 2, 3, 4)));
        assert_eq!(a.port(), 80);
        assert_eq!(a.family(), Family::V4);

        let b = Address::parse("[::1]:65535").unwrap();
        assert_eq!(b, Address::loopback_v6(65535));
        assert_eq!(b.family(), Family::V6);

        let c = Address::parse("[fe80::1%2]:80").unwrap();
        match c.to_std() {
            SocketAddr::V6(v6) => assert_eq!(v6.scope_id(), 2),
            SocketAddr::V4(_) => panic!("expected IPv6"),
        }
        assert_eq!(c.to_string(), "[fe80::1%2]:80");
        assert_eq!("0.0.0.0:0".parse::<Address>().unwrap(), Address::from_port(0));
    }

    #[test]
    fn constructors_and_conversions() {
        assert_eq!(Address::from_port(7).to_string(), "0.0.0.0:7");
        assert_eq!(Address::loopback_v4(7).to_string(), "127.0.0.1:7");
        assert_eq!(Address::loopback_v6(7).to_string(), "[::1]:7");
        let std_addr: SocketAddr = "10.1.2.3:4".parse().unwrap();
        assert_eq!(Address::from(std_addr), Address::from_std(std_addr));
        assert_eq!(SocketAddr::from(Address::from(std_addr)), std_addr);
        assert_eq!(Address::from(([10, 1, 2, 3], 4)), Address::from(std_addr));
        assert_eq!(Address::from((IpAddr::V4(Ipv4Addr::new(10, 1, 2, 3)), 4)), Address::from(std_addr));
        assert_eq!(Address::from(([0, 0, 0, 0, 0, 0, 0, 1], 9)), Address::loopback_v6(9));
        assert_eq!(Family::V4.as_raw(), libc::AF_INET);
        assert_eq!(Family::V6.as_raw(), libc::AF_INET6);
    }

    #[test]
    fn sockaddr_round_trip() {
        for a in [Address::loopback_v4(1), Address::loopback_v6(2), Address::parse("[fe80::1%3]:4").unwrap()] {
            assert_eq!(Address::from_sockaddr(&a.to_sockaddr()).unwrap(), a);
        }
        let unix = SockAddr::unix("/tmp/x.sock").unwrap();
        let err = Address::from_sockaddr(&unix).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
    }

    #[test]
    fn bad_inputs_are_invalid_input_with_a_useful_message() {
        let table: &[(&str, &str)] = &[
            ("", "empty"),
            (" 1.2.3.4:80", "whitespace"),
            ("1.2.3.4:80 ", "whitespace"),
            ("1.2.3.4", "missing a port"),
            ("1.2.3.4:", "missing a port"),
            ("[::1]", "missing a port"),
            ("[::1]:", "missing a port"),
            ("1.2.3.4:65536", "out of range"),
            ("1.2.3.4:99999999999999999999", "out of range"),
            ("[::1]:70000", "out of range"),
            ("1.2.3.4:http", "not a number"),
            ("1.2.3.4:80:90", "extra text after the port"),
            ("1.2.3.4:-1", "not a number"),
            ("1.2.3.4:+80", "not a number"),
            ("::1", "brackets"),
            ("::1:80", "brackets"),
            ("fe80::1:8080", "brackets"),
            ("[::1", "matching ']'"),
            ("[::1]80", "after ']'"),
            ("[1.2.3.4]:80", "not a valid IPv6"),
            ("[zz::1]:80", "not a valid IPv6"),
            ("[fe80::1%eth0]:80", "numeric interface index"),
            ("localhost:80", "blitz_io::net::resolve"),
            ("example.com:443", "lookup_host"),
            ("localhost", "blitz_io::net::resolve"),
            ("1.2.3.400:80", "not a valid IPv4"),
            ("01.2.3.4:80", "not a valid IPv4"),
            (":80", "missing the IP address"),
            ("garbage!", "missing a port"),
            ("a b:80", "not a valid IPv4"),
        ];
        for (input, needle) in table {
            let err = Address::parse(input).expect_err(input);
            assert_eq!(err.kind(), io::ErrorKind::InvalidInput, "{input:?}");
            let msg = err.to_string();
            assert!(msg.contains(needle), "{input:?}: {msg:?} lacks {needle:?}");
        }
    }

    #[test]
    fn resolve_numeric_hosts_without_dns() {
        assert_eq!(resolve("127.0.0.1", 9).unwrap(), vec![Address::loopback_v4(9)]);
        assert_eq!(resolve("::1", 9).unwrap(), vec![Address::loopback_v6(9)]);
        assert_eq!(resolve("[::1]", 9).unwrap(), vec![Address::loopback_v6(9)]);
        assert_eq!(resolve("fe80::1%2", 9).unwrap(), vec![Address::parse("[fe80::1%2]:9").unwrap()]);
        assert_eq!(resolve_first("127.0.0.1", 9).unwrap(), Address::loopback_v4(9));
    }

    #[test]
    fn resolve_localhost_gives_loopback() {
        let addrs = resolve("localhost", 80).unwrap();
        assert!(!addrs.is_empty());
        for a in &addrs {
            assert!(a.ip().is_loopback(), "{a}");
            assert_eq!(a.port(), 80);
        }
        assert!(resolve_first("localhost", 80).unwrap().ip().is_loopback());
    }

    #[test]
    fn resolve_rejects_bad_hosts() {
        let err = resolve("", 80).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
        assert!(err.to_string().contains("empty"));

        let err = resolve("example.com:80", 80).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
        assert!(err.to_string().contains("second argument"));

        // (No lookup of a name that does not exist here: the resolver could send it to
        // a name server, and tests stay on loopback.)

        // Names no resolver could look up are refused before any lookup, saying why.
        for (host, says) in [
            ("local host", "cannot appear"),
            ("local\0host", "cannot appear"),
            ("[localhost]", "brackets"),
            ("[127.0.0.1]", "brackets"),
        ] {
            let err = resolve(host, 80).unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::InvalidInput, "{host:?}: {err}");
            assert!(err.to_string().contains(says), "{host:?}: {err}");
        }
        // Length and label rules are the resolver's (local names need not follow DNS).
        for ok in ["localhost.", "x..y", "_srv.local", &"a".repeat(300), "дддд.test"] {
            assert!(check_host_name(ok).is_ok(), "{ok:?}");
        }
    }

    fn arb_v6() -> impl Strategy<Value = SocketAddrV6> {
        (any::<[u16; 8]>(), any::<u16>()).prop_map(|(segs, port)| SocketAddrV6::new(Ipv6Addr::from(segs), port, 0, 0))
    }

    proptest! {
        #[test]
        fn display_parse_round_trip_v4(ip in any::<[u8; 4]>(), port in any::<u16>()) {
            let a = Address::from((ip, port));
            let text = a.to_string();
            prop_assert_eq!(Address::parse(&text).unwrap(), a);
            prop_assert_eq!(text.parse::<Address>().unwrap(), a);
        }

        #[test]
        fn display_parse_round_trip_v6(v6 in arb_v6()) {
            let a = Address::from(v6);
            prop_assert_eq!(Address::parse(&a.to_string()).unwrap(), a);
        }

        #[test]
        fn display_parse_round_trip_v6_scoped(v6 in arb_v6(), scope in any::<u32>()) {
            let scoped = SocketAddrV6::new(*v6.ip(), v6.port(), 0, scope);
            let a = Address::from(scoped);
            prop_assert_eq!(Address::parse(&a.to_string()).unwrap(), a);
        }

        #[test]
        fn parse_never_panics(s in "\\PC*") {
            if let Err(e) = Address::parse(&s) {
                prop_assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
                prop_assert!(!e.to_string().is_empty());
            }
        }

        #[test]
        fn parse_never_panics_on_address_like_text(s in "[\\[\\]0-9a-fA-F:.%+ -]{0,48}") {
            if let Err(e) = Address::parse(&s) {
                prop_assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
            }
        }
    }
}
