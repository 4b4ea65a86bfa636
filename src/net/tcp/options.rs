//! TCP socket options shared by `TcpSocket` and `TcpStream`: keepalive ([`Keepalive`])
//! and linger.
//!
//! The public methods on the socket types are one-line calls into the `pub(crate)`
//! functions here, which take a `socket2::SockRef` so that one implementation serves a
//! socket before it connects (`TcpSocket`) and after (`TcpStream`). Input is checked
//! here, before any `setsockopt`, so bad values are an `InvalidInput` error that says
//! what was wrong rather than a bare `EINVAL` from the kernel.

use std::io;
use std::time::Duration;

use socket2::{SockRef, TcpKeepalive};

use crate::error::invalid_input;

/// TCP keepalive settings: when to start probing an idle connection, how often, and how
/// many unanswered probes mean the peer is gone.
///
/// Pass `Some(Keepalive { .. })` to `TcpSocket::set_keepalive` or
/// `TcpStream::set_keepalive` to turn keepalive on (`None` turns it off). A field left
/// at `None` keeps the current value for that socket, which starts as the system default
/// (on Linux: `time` 7200 s, `interval` 75 s, `retries` 9, from
/// `/proc/sys/net/ipv4/tcp_keepalive_*`). `Keepalive::default()` therefore turns
/// keepalive on with the system's timings.
///
/// Without keepalive, a connection whose peer vanished (crashed host, pulled cable,
/// dropped NAT entry) while it was idle stays open forever, holding a descriptor and
/// its buffers.
///
/// # Platform-specific behavior
///
/// The kernel counts these in whole seconds: a duration with a fractional part is
/// rounded **up** to the next second (so 500 ms becomes 1 s, never 0). On Linux
/// `time` and `interval` may be at most 32767 s and `retries` at most 127.
/// `interval` and `retries` can be set on Linux, Android, macOS, iOS, FreeBSD, NetBSD,
/// DragonFly, illumos and Fuchsia; elsewhere (OpenBSD, for one) setting them is
/// `Unsupported` and reading them back gives `None`.
///
/// # Examples
///
/// ```
/// use blitz_io::net::Keepalive;
/// use std::time::Duration;
///
/// // First probe after 60 s idle, then every 10 s; give up after 5 unanswered probes.
/// let ka = Keepalive {
///     time: Some(Duration::from_secs(60)),
///     interval: Some(Duration::from_secs(10)),
///     retries: Some(5),
/// };
/// assert_ne!(ka, Keepalive::default());
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Keepalive {
    /// How long the connection must be idle before the first probe (`TCP_KEEPIDLE`;
    /// `TCP_KEEPALIVE` on Apple platforms). `None` keeps the current value.
    pub time: Option<Duration>,
    /// Time between probes when the previous one went unanswered (`TCP_KEEPINTVL`).
    /// `None` keeps the current value.
    pub interval: Option<Duration>,
    /// Unanswered probes after which the connection is dropped (`TCP_KEEPCNT`). `None`
    /// keeps the current value.
    pub retries: Option<u32>,
}

/// Linux's `MAX_TCP_KEEPIDLE` / `MAX_TCP_KEEPINTVL`, in seconds.
#[cfg(any(target_os = "linux", target_os = "android"))]
const MAX_KEEPALIVE_SECS: u64 = 32767;
/// Linux's `MAX_TCP_KEEPCNT`.
#[cfg(any(target_os = "linux", target_os = "android"))]
const MAX_KEEPALIVE_RETRIES: u32 = 127;
/// Elsewhere the limit is the kernel's `int` argument; larger values are refused.
#[cfg(not(any(target_os = "linux", target_os = "android")))]
const MAX_KEEPALIVE_SECS: u64 = i32::MAX as u64;
/// Elsewhere the limit is the kernel's `int` argument; larger values are refused.
#[cfg(not(any(target_os = "linux", target_os = "android")))]
const MAX_KEEPALIVE_RETRIES: u32 = i32::MAX as u32;

/// Checks one keepalive duration and converts it to whole seconds, rounding up.
fn keepalive_secs(what: &str, d: Duration) -> io::Result<Duration> {
    if d.is_zero() {
        return Err(invalid_input(format!(
            "keepalive {what} must be at least 1 second, got 0; to turn keepalive off pass None"
        )));
    }
    let secs = d.as_secs().saturating_add(u64::from(d.subsec_nanos() > 0));
    if secs > MAX_KEEPALIVE_SECS {
        return Err(invalid_input(format!(
            "keepalive {what} of {secs} s is too long: the limit on this platform is \
             {MAX_KEEPALIVE_SECS} s"
        )));
    }
    Ok(Duration::from_secs(secs))
}

/// Validates `ka` and builds socket2's parameter set from it.
fn keepalive_params(ka: &Keepalive) -> io::Result<TcpKeepalive> {
    let mut params = TcpKeepalive::new();
    if let Some(time) = ka.time {
        params = params.with_time(keepalive_secs("time", time)?);
    }
    if let Some(interval) = ka.interval {
        let interval = keepalive_secs("interval", interval)?;
        #[cfg(any(
            target_os = "linux",
            target_os = "android",
            target_os = "macos",
            target_os = "ios",
            target_os = "tvos",
            target_os = "watchos",
            target_os = "visionos",
            target_os = "freebsd",
            target_os = "netbsd",
            target_os = "dragonfly",
            target_os = "illumos",
            target_os = "fuchsia",
        ))]
        {
            params = params.with_interval(interval);
        }
        #[cfg(not(any(
            target_os = "linux",
            target_os = "android",
            target_os = "macos",
            target_os = "ios",
            target_os = "tvos",
            target_os = "watchos",
            target_os = "visionos",
            target_os = "freebsd",
            target_os = "netbsd",
            target_os = "dragonfly",
            target_os = "illumos",
            target_os = "fuchsia",
        )))]
        {
            let _ = interval;
            return Err(unsupported("interval"));
        }
    }
    if let Some(retries) = ka.retries {
        if retries == 0 {
            return Err(invalid_input("keepalive retries must be at least 1, got 0; to turn keepalive off pass None"));
        }
        if retries > MAX_KEEPALIVE_RETRIES {
            return Err(invalid_input(format!(
                "keepalive retries of {retries} is too many: the limit on this platform is \
                 {MAX_KEEPALIVE_RETRIES}"
            )));
        }
        #[cfg(any(
            target_os = "linux",
            target_os = "android",
            target_os = "macos",
            target_os = "ios",
            target_os = "tvos",
            target_os = "watchos",
            target_os = "visionos",
            target_os = "freebsd",
            target_os = "netbsd",
            target_os = "dragonfly",
            target_os = "illumos",
            target_os = "fuchsia",
        ))]
        {
            params = params.with_retries(retries);
        }
        #[cfg(not(any(
            target_os = "linux",
            target_os = "android",
            target_os = "macos",
            target_os = "ios",
            target_os = "tvos",
            target_os = "watchos",
            target_os = "visionos",
            target_os = "freebsd",
            target_os = "netbsd",
            target_os = "dragonfly",
            target_os = "illumos",
            target_os = "fuchsia",
        )))]
        {
            return Err(unsupported("retries"));
        }
    }
    Ok(params)
}

/// The error for a keepalive field this platform cannot set.
#[cfg(not(any(
    target_os = "linux",
    target_os = "android",
    target_os = "macos",
    target_os = "ios",
    target_os = "tvos",
    target_os = "watchos",
    target_os = "visionos",
    target_os = "freebsd",
    target_os = "netbsd",
    target_os = "dragonfly",
    target_os = "illumos",
    target_os = "fuchsia",
)))]
fn unsupported(what: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::Unsupported,
        format!("setting the keepalive {what} is not supported on this platform"),
    )
}

/// Turns keepalive off (`None`) or on with the given settings (`Some`).
///
/// Everything is validated before any option is set, so an `InvalidInput` error leaves
/// the socket unchanged.
///
/// # Errors
///
/// - `InvalidInput` for a zero `time` or `interval`, a zero `retries`, or a value above
///   the platform's limit (see [`Keepalive`]).
/// - `Unsupported` for `interval` or `retries` where the platform cannot set them.
/// - The OS error from `setsockopt` otherwise.
pub(crate) fn set_keepalive(sock: &SockRef<'_>, ka: Option<Keepalive>) -> io::Result<()> {
    match ka {
        None => sock.set_keepalive(false),
        Some(ka) => {
            let params = keepalive_params(&ka)?;
            // Turns SO_KEEPALIVE on, then sets each parameter that is present.
            sock.set_tcp_keepalive(&params)
        }
    }
}

/// Reads the keepalive settings: `None` when keepalive is off, otherwise every field
/// the platform can report (the effective value, system default included).
///
/// # Errors
///
/// The OS error from `getsockopt`.
pub(crate) fn keepalive(sock: &SockRef<'_>) -> io::Result<Option<Keepalive>> {
    if !sock.keepalive()? {
        return Ok(None);
    }
    let mut ka = Keepalive::default();
    #[cfg(not(any(target_os = "openbsd", target_os = "haiku")))]
    {
        ka.time = Some(sock.tcp_keepalive_time()?);
    }
    #[cfg(any(
        target_os = "linux",
        target_os = "android",
        target_os = "macos",
        target_os = "ios",
        target_os = "tvos",
        target_os = "watchos",
        target_os = "visionos",
        target_os = "freebsd",
        target_os = "netbsd",
        target_os = "dragonfly",
        target_os = "illumos",
        target_os = "fuchsia",
    ))]
    {
        ka.interval = Some(sock.tcp_keepalive_interval()?);
        ka.retries = Some(sock.tcp_keepalive_retries()?);
    }
    Ok(Some(ka))
}

/// Sets `SO_LINGER`: what closing the socket does with data not yet sent.
///
/// - `None` (the default): close returns at once; the kernel keeps sending queued data
///   in the background and ends the connection with a normal FIN.
/// - `Some(Duration::ZERO)`: abortive close. Queued data is discarded and the peer gets
///   a reset (RST) instead of a FIN; the socket skips `TIME_WAIT`. Close never blocks.
/// - `Some(d)` with `d > 0`: **close blocks the calling thread** until the queued data
///   is sent and acknowledged or `d` passes (rounded up to whole seconds). Dropping such
///   a socket inside a task stalls that runtime worker, and every task queued on it,
///   for up to `d`. Prefer an explicit `shutdown(Write)` and reading to end-of-stream in
///   async code.
///
/// # Errors
///
/// `InvalidInput` if `d` is longer than the kernel accepts (`i32::MAX` seconds); the OS
/// error from `setsockopt` otherwise.
pub(crate) fn set_linger(sock: &SockRef<'_>, linger: Option<Duration>) -> io::Result<()> {
    let linger = match linger {
        None => None,
        Some(d) => {
            let secs = d.as_secs().saturating_add(u64::from(d.subsec_nanos() > 0));
            if secs > i32::MAX as u64 {
                return Err(invalid_input(format!("linger of {secs} s is too long: the limit is {} s", i32::MAX)));
            }
            Some(Duration::from_secs(secs))
        }
    };
    sock.set_linger(linger)
}

/// Reads `SO_LINGER`: `None` when off, `Some(timeout)` (whole seconds) when on.
///
/// # Errors
///
/// The OS error from `getsockopt`.
pub(crate) fn linger(sock: &SockRef<'_>) -> io::Result<Option<Duration>> {
    sock.linger()
}

#[cfg(test)]
mod tests {
    use super::*;
    use socket2::{Domain, Protocol, Socket, Type};

    fn tcp() -> Socket {
        Socket::new(Domain::IPV4, Type::STREAM, Some(Protocol::TCP)).unwrap()
    }

    #[test]
    fn keepalive_off_by_default_and_toggles() {
        let s = tcp();
        let r = SockRef::from(&s);
        assert_eq!(keepalive(&r).unwrap(), None);

        set_keepalive(&r, Some(Keepalive::default())).unwrap();
        let got = keepalive(&r).unwrap().expect("keepalive is on");
        assert!(got.time.is_some_and(|t| t >= Duration::from_secs(1)));

        set_keepalive(&r, None).unwrap();
        assert_eq!(keepalive(&r).unwrap(), None);
    }

    #[test]
    fn keepalive_round_trips() {
        let s = tcp();
        let r = SockRef::from(&s);
        let ka = Keepalive {
            time: Some(Duration::from_secs(60)),
            interval: Some(Duration::from_secs(10)),
            retries: Some(5),
        };
        set_keepalive(&r, Some(ka)).unwrap();
        assert_eq!(keepalive(&r).unwrap(), Some(ka));
    }

    #[test]
    fn keepalive_on_a_connected_stream() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let stream = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let r = SockRef::from(&stream);
        let ka = Keepalive { time: Some(Duration::from_secs(30)), interval: None, retries: Some(3) };
        set_keepalive(&r, Some(ka)).unwrap();
        let got = keepalive(&r).unwrap().unwrap();
        assert_eq!(got.time, ka.time);
        assert_eq!(got.retries, ka.retries);
    }

    #[test]
    fn sub_second_durations_round_up() {
        let s = tcp();
        let r = SockRef::from(&s);
        let ka = Keepalive {
            time: Some(Duration::from_millis(1500)),
            interval: Some(Duration::from_millis(1)),
            retries: None,
        };
        set_keepalive(&r, Some(ka)).unwrap();
        let got = keepalive(&r).unwrap().unwrap();
        assert_eq!(got.time, Some(Duration::from_secs(2)));
        assert_eq!(got.interval, Some(Duration::from_secs(1)));
    }

    #[test]
    fn bad_keepalive_is_invalid_input_and_changes_nothing() {
        let s = tcp();
        let r = SockRef::from(&s);
        let cases = [
            (Keepalive { time: Some(Duration::ZERO), ..Keepalive::default() }, "time must be at least 1 second"),
            (
                Keepalive { interval: Some(Duration::ZERO), ..Keepalive::default() },
                "interval must be at least 1 second",
            ),
            (Keepalive { retries: Some(0), ..Keepalive::default() }, "retries must be at least 1"),
            (Keepalive { time: Some(Duration::from_secs(u64::MAX)), ..Keepalive::default() }, "too long"),
            (Keepalive { retries: Some(u32::MAX), ..Keepalive::default() }, "too many"),
        ];
        for (ka, needle) in cases {
            let err = set_keepalive(&r, Some(ka)).unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::InvalidInput, "{ka:?}");
            assert!(err.to_string().contains(needle), "{err}");
            assert_eq!(keepalive(&r).unwrap(), None, "socket changed by {ka:?}");
        }
    }

    #[test]
    fn linger_round_trips() {
        let s = tcp();
        let r = SockRef::from(&s);
        assert_eq!(linger(&r).unwrap(), None);
        set_linger(&r, Some(Duration::from_secs(5))).unwrap();
        assert_eq!(linger(&r).unwrap(), Some(Duration::from_secs(5)));
        set_linger(&r, Some(Duration::from_millis(200))).unwrap();
        assert_eq!(linger(&r).unwrap(), Some(Duration::from_secs(1)));
        set_linger(&r, Some(Duration::ZERO)).unwrap();
        assert_eq!(linger(&r).unwrap(), Some(Duration::ZERO));
        set_linger(&r, None).unwrap();
        assert_eq!(linger(&r).unwrap(), None);

        let err = set_linger(&r, Some(Duration::from_secs(u64::MAX))).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
    }

    #[test]
    fn zero_linger_resets_the_peer() {
        use std::io::Read;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (mut server, _) = listener.accept().unwrap();
        set_linger(&SockRef::from(&client), Some(Duration::ZERO)).unwrap();
        let start = std::time::Instant::now();
        drop(client);
        assert!(start.elapsed() < Duration::from_secs(1), "abortive close blocked");
        server.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut buf = [0u8; 8];
        let err = server.read(&mut buf).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::ConnectionReset);
    }
}
