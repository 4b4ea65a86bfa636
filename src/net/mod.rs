//! Networking: TCP, UDP and Unix sockets on the runtime's I/O driver.
//!
//! # Which type for what
//!
//! | you want to | use |
//! |---|---|
//! | accept TCP connections | [`TcpListener`] ([`listen`], [`listen_port`] for short) |
//! | open a TCP connection | [`TcpStream::connect`] ([`connect`], [`connect_host`] for a host name) |
//! | set socket options before connecting or listening | [`TcpSocket`] |
//! | read and write one connection from two tasks | [`TcpStream::into_split`] (owned halves) or [`TcpStream::split`] (borrowed) |
//! | send and receive datagrams | [`UdpSocket`] |
//! | talk to a local process | [`UnixStream`] / [`UnixListener`] (streams), [`UnixDatagram`] |
//! | a connected socket pair inside one process | [`UnixStream::pair`] |
//! | turn a host name into addresses | [`lookup_host`] (async, blocking pool), [`resolve`] (blocking) |
//!
//! Every function that takes an IP socket address takes `impl Into<Address>`: an
//! [`Address`], a `std::net::SocketAddr`, an `(IpAddr, u16)` or a `([u8; 4], u16)`.
//!
//! # Two tiers
//!
//! `try_*` methods are one non-blocking system call: they work on any thread with no
//! runtime, and return `Ok(None)` where the call would block. The `async` methods wait
//! for readiness through the current runtime's I/O driver, or, when polled outside a
//! blitz-io runtime, through a fallback driver thread started on first use.
//!
//! # Errors
//!
//! Everything returns `std::io::Result`. Bad input (an unparsable address, port 0 where
//! a destination is needed, an over-long Unix path) is `InvalidInput` with a message
//! saying what was wrong; nothing panics on bad input. A peer that reset the connection
//! is `ConnectionReset`; writing to a closed peer is `BrokenPipe` or `ConnectionReset`,
//! never a `SIGPIPE`.

mod addr;
mod backoff;

/// Checks a socket buffer size for `setsockopt` (`SO_RCVBUF` / `SO_SNDBUF` take a C
/// `int`: larger values would wrap, and 0 means nothing).
pub(crate) fn check_buffer_size(n: usize) -> io::Result<usize> {
    if n == 0 || n > i32::MAX as usize {
        return Err(invalid_input(format!("buffer size must be between 1 and {} bytes, got {n}", i32::MAX)));
    }
    Ok(n)
}
pub mod split;
pub mod tcp;
mod udp;
#[cfg(unix)]
pub mod unix;

pub use crate::io::{Interest, Ready};
pub use addr::{resolve, resolve_first, Address, Family};
pub use tcp::{AcceptResult, Keepalive, TcpListener, TcpSocket, TcpStream};
pub use udp::{RecvFromResult, UdpSocket, UdpSocketBuilder};
#[cfg(unix)]
pub use unix::{UCred, UnixAcceptResult, UnixAddr, UnixListener, UnixStream};
#[cfg(unix)]
pub use unix::{UnixDatagram, UnixRecvFromResult};

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll, Waker};

use crate::error::invalid_input;

/// Binds a TCP listener to a numeric address such as `"0.0.0.0:8080"` or `"[::1]:0"`,
/// with `SO_REUSEADDR` and a backlog of 1024 (as [`TcpListener::bind`]).
///
/// # Errors
///
/// `InvalidInput` if `addr` is not a numeric `IP:port` (see [`Address::parse`]); the
/// errors of [`TcpListener::bind`] (`AddrInUse`, ...).
///
/// # Examples
///
/// ```
/// let listener = blitz_io::net::listen("127.0.0.1:0")?;
/// assert!(listener.local_addr()?.ip().is_loopback());
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn listen(addr: &str) -> io::Result<TcpListener> {
    TcpListener::bind(Address::parse(addr)?)
}

/// Binds a TCP listener to `0.0.0.0:port` (every IPv4 interface), as
/// [`TcpListener::bind`]. Port 0 lets the kernel pick.
///
/// # Errors
///
/// The errors of [`TcpListener::bind`].
///
/// # Examples
///
/// ```
/// let listener = blitz_io::net::listen_port(0)?;
/// assert_ne!(listener.local_addr()?.port(), 0);
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn listen_port(port: u16) -> io::Result<TcpListener> {
    TcpListener::bind(Address::from_port(port))
}

/// Opens a TCP connection to `addr`: a numeric `"IP:port"` such as `"127.0.0.1:8080"`,
/// or a `"host:port"` such as `"localhost:8080"`, which is resolved on the blocking pool
/// and tried address by address (as [`connect_host`]).
///
/// # Errors
///
/// `InvalidInput` for text that is neither form (the message says what was wrong) or
/// port 0; resolution errors; the errors of [`TcpStream::connect`]
/// (`ConnectionRefused`, ...).
///
/// # Cancel safety
///
/// Dropping the future abandons the attempt.
///
/// # Examples
///
/// ```
/// # blitz_io::run(async {
/// let listener = blitz_io::net::listen("127.0.0.1:0")?;
/// let addr = listener.local_addr()?.to_string();
/// let stream = blitz_io::net::connect(&addr).await?;
/// assert_eq!(stream.peer_addr()?, listener.local_addr()?);
/// # Ok::<(), std::io::Error>(())
/// # }).unwrap();
/// ```
pub async fn connect(addr: &str) -> io::Result<TcpStream> {
    match Address::parse(addr) {
        Ok(a) => TcpStream::connect(a).await,
        Err(parse_err) => match host_and_port(addr) {
            Some((host, port)) => connect_host(host, port).await,
            None => Err(parse_err),
        },
    }
}

/// Splits `"name:port"` where `name` is not an IP literal; `None` for anything else.
fn host_and_port(s: &str) -> Option<(&str, u16)> {
    let (host, port) = s.rsplit_once(':')?;
    let valid_host = !host.is_empty()
        && host.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_'))
        && host.bytes().any(|b| b.is_ascii_alphabetic());
    let port = port.parse::<u16>().ok()?;
    valid_host.then_some((host, port))
}

/// Resolves `host` (a name or an IP literal) and `port` to socket addresses without
/// blocking the task: the system resolver runs on the runtime's blocking pool.
///
/// Outside a blitz-io runtime (another executor, `futures::executor::block_on`) the
/// lookup runs on a process-wide fallback pool instead (at most 16 threads, named
/// `blitz-io-lookup`, each exiting after 10 s without work; lookups beyond 16 wait in
/// its queue), and the future is woken when it finishes. A numeric `host`, and a host
/// no resolver could look up, are answered at once, without a blocking job.
///
/// # Panics
///
/// Never: a resolver that panics (outside a runtime) gives an error instead.
///
/// # Errors
///
/// The errors of [`resolve`]: `InvalidInput` for an empty host or `"name:port"` passed
/// as the host; the resolver's error for an unknown name; `NotFound` for no addresses.
///
/// # Cancel safety
///
/// Cancel safe: dropping the future abandons the result (a lookup already running on
/// its thread finishes in the background; outside a runtime, one still queued is
/// skipped).
///
/// # Examples
///
/// ```
/// use blitz_io::net::{lookup_host, Address};
///
/// # blitz_io::run(async {
/// let addrs = lookup_host("127.0.0.1", 80).await?;
/// assert_eq!(addrs, vec![Address::loopback_v4(80)]);
/// for addr in lookup_host("localhost", 80).await? {
///     assert!(addr.ip().is_loopback());
/// }
/// # Ok::<(), std::io::Error>(())
/// # }).unwrap();
/// ```
pub async fn lookup_host(host: &str, port: u16) -> io::Result<Vec<Address>> {
    // A numeric host, or one no resolver could look up: answered here, with no job.
    if let Some(answer) = addr::resolve_without_dns(host, port) {
        return answer;
    }
    let host = host.to_owned();
    match crate::runtime::Handle::try_current() {
        Ok(handle) => handle.spawn_blocking(move || resolve(&host, port)).await?,
        Err(_) => on_fallback_pool(move || resolve(&host, port))?.await,
    }
}

/// Resolves `host` on the blocking pool (as [`lookup_host`]) and connects to each
/// address in turn, returning the first connection that succeeds, or the last error.
///
/// # Errors
///
/// `InvalidInput` for port 0 or a bad host; the resolver's errors; the last address's
/// connect error (`ConnectionRefused`, ...).
///
/// # Cancel safety
///
/// Dropping the future abandons the attempt.
///
/// # Examples
///
/// ```
/// # blitz_io::run(async {
/// let listener = blitz_io::net::listen("127.0.0.1:0")?;
/// let port = listener.local_addr()?.port();
/// let stream = blitz_io::net::connect_host("127.0.0.1", port).await?;
/// assert_eq!(stream.peer_addr()?.port(), port);
/// # Ok::<(), std::io::Error>(())
/// # }).unwrap();
/// ```
pub async fn connect_host(host: &str, port: u16) -> io::Result<TcpStream> {
    if port == 0 {
        return Err(invalid_input(format!("cannot connect to {host:?} on port 0: a destination port is needed")));
    }
    connect_each(lookup_host(host, port).await?, host).await
}

/// Connects to each of `addrs` in turn: the first connection that succeeds, or the last
/// error (`NotFound` naming `host` for an empty list).
async fn connect_each(addrs: Vec<Address>, host: &str) -> io::Result<TcpStream> {
    let mut last = None;
    for addr in addrs {
        match TcpStream::connect(addr).await {
            Ok(stream) => return Ok(stream),
            Err(e) => last = Some(e),
        }
    }
    Err(last
        .unwrap_or_else(|| io::Error::new(io::ErrorKind::NotFound, format!("host {host:?} resolved to no addresses"))))
}

/// The result slot shared by [`on_fallback_pool`]'s thread and its future.
type Slot<T> = Arc<Mutex<(Option<T>, Option<Waker>)>>;

/// Runs `f` on the process-wide fallback blocking pool (`runtime::blocking::fallback`);
/// the returned future resolves to its result. Used by [`lookup_host`] outside a
/// runtime, where there is no runtime's blocking pool. A job whose future was dropped
/// before it started is skipped; a panic in `f` becomes an error.
fn on_fallback_pool<R: Send + 'static>(
    f: impl FnOnce() -> io::Result<R> + Send + 'static,
) -> io::Result<ThreadResult<io::Result<R>>> {
    let slot: Slot<io::Result<R>> = Arc::new(Mutex::new((None, None)));
    let theirs = slot.clone();
    crate::runtime::blocking::fallback().spawn(Box::new(move || {
        if Arc::strong_count(&theirs) == 1 {
            // The future is gone: nobody wants the answer.
            return;
        }
        let value = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f))
            .unwrap_or_else(|_| Err(io::Error::other("the resolver panicked")));
        let waker = {
            let mut s = theirs.lock().unwrap_or_else(PoisonError::into_inner);
            s.0 = Some(value);
            s.1.take()
        };
        if let Some(w) = waker {
            w.wake();
        }
    }))?;
    Ok(ThreadResult { slot })
}

/// Future of [`on_fallback_pool`].
struct ThreadResult<T> {
    slot: Slot<T>,
}

impl<T> Future for ThreadResult<T> {
    type Output = T;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<T> {
        let mut s = self.slot.lock().unwrap_or_else(PoisonError::into_inner);
        match s.0.take() {
            Some(v) => Poll::Ready(v),
            None => {
                s.1 = Some(cx.waker().clone());
                Poll::Pending
            }
        }
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    /// A port on loopback with nothing listening (bound, then closed).
    fn closed_port() -> Address {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        Address::from(l.local_addr().unwrap())
    }

    /// `connect_host` goes through every address of the name: past refusals to the one
    /// that listens; with none listening, the last address's error.
    #[test]
    fn connect_each_tries_every_address_in_turn() {
        let rt = crate::runtime::Builder::new_current_thread().build().unwrap();
        rt.block_on(async {
            let listener = listen("127.0.0.1:0").unwrap();
            let live = listener.local_addr().unwrap();
            let stream = connect_each(vec![closed_port(), closed_port(), live], "h").await.unwrap();
            assert_eq!(stream.peer_addr().unwrap(), live);

            let err = connect_each(vec![closed_port(), closed_port()], "h").await.unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::ConnectionRefused, "{err}");
            let err = connect_each(Vec::new(), "nohost").await.unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::NotFound);
            assert!(err.to_string().contains("nohost"), "{err}");
        });
    }

    /// Runs `f` on a plain thread and waits for it at most `secs` seconds (a hang fails).
    fn within<T: Send + 'static>(secs: u64, f: impl FnOnce() -> T + Send + 'static) -> T {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(f());
        });
        rx.recv_timeout(std::time::Duration::from_secs(secs)).expect("timed out")
    }

    /// Outside a runtime, with every fallback thread busy: a numeric host is answered at
    /// once (no job), and a lookup whose future was dropped while queued is skipped.
    #[test]
    fn fallback_pool_full_numeric_answered_abandoned_skipped() {
        use std::sync::atomic::{AtomicBool, Ordering};
        use std::time::{Duration, Instant};
        let (release, held) = std::sync::mpsc::channel::<()>();
        let held = Arc::new(Mutex::new(held));
        let started = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        // More than the pool's 16 threads (other tests may hold some): all busy.
        for _ in 0..20 {
            let (held, started) = (held.clone(), started.clone());
            crate::runtime::blocking::fallback()
                .spawn(Box::new(move || {
                    started.fetch_add(1, Ordering::SeqCst);
                    let _ = held.lock().unwrap_or_else(PoisonError::into_inner).recv_timeout(Duration::from_secs(5));
                }))
                .unwrap();
        }
        let t = Instant::now();
        while started.load(Ordering::SeqCst) < 1 && t.elapsed() < Duration::from_secs(5) {
            std::thread::sleep(Duration::from_millis(1));
        }
        let t = Instant::now();
        let addrs = within(10, || futures_executor::block_on(lookup_host("127.0.0.1", 80))).unwrap();
        assert_eq!(addrs, vec![Address::loopback_v4(80)]);
        assert!(t.elapsed() < Duration::from_millis(500), "numeric lookup waited {:?}", t.elapsed());
        let ran = Arc::new(AtomicBool::new(false));
        let flag = ran.clone();
        let abandoned = on_fallback_pool(move || {
            flag.store(true, Ordering::SeqCst);
            Ok(())
        })
        .unwrap();
        drop(abandoned);
        // Let the busy jobs go; then a lookup queued behind the abandoned one completes.
        drop(release);
        let addrs = within(20, || futures_executor::block_on(lookup_host("localhost", 80))).unwrap();
        assert!(addrs.iter().all(|a| a.ip().is_loopback()));
        assert!(!ran.load(Ordering::SeqCst), "a job whose future was dropped ran");
    }

    /// A resolver that panics (outside a runtime) gives an error, not a future that
    /// never completes.
    #[test]
    fn fallback_job_panic_is_an_error() {
        let r = within(10, || {
            futures_executor::block_on(on_fallback_pool(|| -> io::Result<u32> { panic!("test panic") }).unwrap())
        });
        let err = r.unwrap_err();
        assert!(err.to_string().contains("panicked"), "{err}");
    }
}
