//! Test-only fault injection for the socket primitives in `sys::unix::io`.
//!
//! Compiled only under `cfg(test)` or the `fault-injection` cargo feature (where it is
//! re-exported as the hidden `blitz_io::__fault`); without either, the seam in `io.rs`
//! is an `#[inline(always)]` pass-through and this module does not exist, so release
//! builds pay nothing.
//!
//! # What can be injected
//!
//! A [`Plan`] is attached to one socket with [`inject`] and stays until the returned
//! [`Guard`] is dropped. Every `send`, `send_vectored`, `send_to`, `recv` (and peek),
//! `recv_vectored` and `recv_from` on that socket consults it:
//!
//! * `eintr_every: n` (n ≥ 2): every n-th call on the socket fails with `EINTR` without
//!   reaching the kernel. The primitives retry `EINTR` themselves, so this proves their
//!   retry loops: nothing above `sys` may ever see `Interrupted`.
//! * `eagain_burst: k`: in each direction, every real call is preceded by `k` calls
//!   that fail with `EAGAIN` (`WouldBlock`) without reaching the kernel: a storm of
//!   spurious would-blocks that the readiness loops (`io::Evented`) and `try_*` callers
//!   must survive without losing, duplicating or reordering a byte.
//! * `short_io_max: m`: on a *stream* socket, every send and receive moves at most `m`
//!   bytes (the buffers are cut before the system call, so the kernel really moves only
//!   that many). Datagram sockets are never cut: a datagram is sent or received whole.
//!
//! # Why an injected `EAGAIN` (or short read) must re-arm readiness
//!
//! The driver is edge-triggered (epoll `EPOLLET`). When a call returns `WouldBlock`,
//! the readiness loop clears the socket's cached readiness and sleeps until the driver
//! reports a *new* edge. A real `EAGAIN` is truthful: the socket is not ready, and the
//! kernel will signal an edge when that changes. An injected one is a lie told while the
//! socket may well be ready, so no edge would ever come and the task would sleep forever
//! (a hang that no real kernel could cause). The same holds for a cut read: a read
//! shorter than its buffer is taken as "drained" (`Stream::poll_read` clears readiness,
//! the same heuristic as tokio), which is right for a real kernel but wrong after the
//! seam cut the read while data was still queued.
//!
//! Restricting injection to the `try_*` tier would not help (a `readable().await` then
//! waits for the same missing edge) and the seam cannot tell the tiers apart anyway. So
//! instead the seam makes its lie harmless the way the kernel would: after injecting an
//! `EAGAIN` or cutting a read it **re-arms the socket in every epoll instance of the
//! process that watches it**, with `EPOLL_CTL_MOD` and the very same event mask and
//! token (read back from `/proc/self/fdinfo/<epfd>`). Re-arming an edge-triggered
//! registration makes epoll re-check the socket and queue an event if it is ready, which
//! is exactly the edge a truthful kernel would owe. The order is safe either way: the
//! event is queued *before* the caller clears readiness, and readiness clears are
//! tick-guarded, so if the driver delivers the event first the clear is skipped, and if
//! the clear comes first the event sets readiness again afterwards. A socket that is
//! genuinely not ready gets no event, which is also what the kernel would do; its next
//! real edge wakes the task. A socket not yet registered needs nothing: registering
//! (`EPOLL_CTL_ADD`) reports its current state.
//!
//! Re-arming is implemented for Linux only (it needs epoll and `/proc`); elsewhere it
//! does nothing, and plans with `eagain_burst` or `short_io_max` may hang a task that
//! waits for readiness. Everything here is for tests: `/proc` is read on every injected
//! `EAGAIN`, and the socket registry is a global mutex.
//!
//! # Scope
//!
//! Plans are attached to one socket, identified by descriptor number *and* inode, so
//! tests running in parallel in one process do not disturb each other, and a recycled
//! descriptor number never inherits a plan meant for a closed socket.

#![cfg_attr(not(feature = "fault-injection"), allow(unreachable_pub))]

use std::io;
use std::os::fd::{AsFd, AsRawFd, RawFd};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Mutex, PoisonError};

use socket2::{SockRef, Type};

use super::Side;

/// What to inject into the system calls on one socket. Zero turns a fault off; the
/// default plan injects nothing.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Plan {
    /// Every n-th call on the socket fails with `EINTR` before reaching the kernel
    /// (`0`: never; `1` is rejected, as it would make every retry fail too).
    pub eintr_every: u32,
    /// Each real call, in each direction, is preceded by this many calls failing with
    /// `EAGAIN` (the socket is re-armed after each; see the module documentation).
    pub eagain_burst: u32,
    /// On a stream socket, each send and receive moves at most this many bytes (`0`: no
    /// limit). Datagram sockets are never cut.
    pub short_io_max: usize,
}

/// How many faults a [`Guard`]'s plan has injected so far.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Calls that consulted the plan.
    pub calls: u64,
    /// Calls failed with `EINTR`.
    pub eintr: u64,
    /// Calls failed with `EAGAIN`.
    pub eagain: u64,
    /// Calls whose buffers were cut.
    pub short: u64,
    /// Epoll registrations re-armed (`EPOLL_CTL_MOD` calls that succeeded).
    pub rearms: u64,
}

/// Keeps a [`Plan`] attached to its socket; dropping it detaches the plan.
///
/// Drop the guard before the socket is closed (or keep the socket alive as long as the
/// guard): the plan is matched by descriptor number and inode, so it cannot leak onto a
/// new socket, but it is only removed by the guard.
#[derive(Debug)]
pub struct Guard {
    id: u64,
}

/// One socket with a plan.
struct Target {
    id: u64,
    fd: RawFd,
    ino: (u64, u64),
    plan: Plan,
    stream: bool,
    /// `EAGAIN`s already given to the current call, per direction (read, write).
    burst: [u32; 2],
    /// The epoll instances last found watching the socket (saves scanning `/proc`).
    epfds: Vec<RawFd>,
    stats: Stats,
}

/// Number of attached plans: the fast path skips the lock when it is zero.
static ACTIVE: AtomicUsize = AtomicUsize::new(0);
static NEXT_ID: AtomicU64 = AtomicU64::new(1);
static TARGETS: Mutex<Vec<Target>> = Mutex::new(Vec::new());

fn targets() -> std::sync::MutexGuard<'static, Vec<Target>> {
    TARGETS.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The (device, inode) pair of `fd`, or `None` if it is not open.
fn inode(fd: RawFd) -> Option<(u64, u64)> {
    let mut st = std::mem::MaybeUninit::<libc::stat>::uninit();
    // SAFETY: `st` is valid for writes of one `stat`; `fstat` on any descriptor number is
    // safe (a closed one gives `EBADF`) and fills `st` completely when it returns 0.
    let r = unsafe { libc::fstat(fd, st.as_mut_ptr()) };
    if r != 0 {
        return None;
    }
    // SAFETY: `fstat` returned 0, so it initialised the whole struct.
    let st = unsafe { st.assume_init() };
    #[allow(clippy::unnecessary_cast, clippy::useless_conversion)]
    Some((st.st_dev as u64, st.st_ino as u64))
}

/// Attaches `plan` to the socket `sock` until the returned guard is dropped.
///
/// # Errors
///
/// `InvalidInput` if `eintr_every` is 1 or the socket already has a plan; the OS error
/// if `sock` is not a socket.
pub fn inject(sock: &impl AsFd, plan: Plan) -> io::Result<Guard> {
    if plan.eintr_every == 1 {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, "eintr_every must be 0 or at least 2"));
    }
    let fd = sock.as_fd().as_raw_fd();
    let stream = SockRef::from(sock).r#type()? == Type::STREAM;
    let ino = inode(fd).ok_or_else(io::Error::last_os_error)?;
    let mut t = targets();
    if t.iter().any(|t| t.fd == fd && t.ino == ino) {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, "this socket already has a fault plan"));
    }
    let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
    t.push(Target { id, fd, ino, plan, stream, burst: [0; 2], epfds: Vec::new(), stats: Stats::default() });
    ACTIVE.fetch_add(1, Ordering::SeqCst);
    Ok(Guard { id })
}

impl Guard {
    /// The faults injected so far under this guard's plan.
    pub fn stats(&self) -> Stats {
        targets().iter().find(|t| t.id == self.id).map(|t| t.stats).unwrap_or_default()
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        let mut t = targets();
        let before = t.len();
        t.retain(|t| t.id != self.id);
        if t.len() < before {
            ACTIVE.fetch_sub(1, Ordering::SeqCst);
        }
    }
}

/// What the plan decided for one call.
enum Verdict {
    Pass,
    Fail(io::ErrorKind),
    Cut(usize),
}

/// Runs one system call on `fd` under its plan, if it has one.
///
/// `len` is the number of bytes the call would move; `call(n)` makes the real call
/// moving at most `n` bytes (`n == len` unless the plan cuts it). Returns the injected
/// error instead of calling at all when the plan says so.
pub(crate) fn intercept<R>(
    fd: RawFd,
    side: Side,
    len: usize,
    call: impl FnOnce(usize) -> io::Result<R>,
) -> io::Result<R> {
    if ACTIVE.load(Ordering::Relaxed) == 0 {
        return call(len);
    }
    let verdict = decide(fd, side, len);
    match verdict {
        Verdict::Pass => call(len),
        Verdict::Fail(kind) => {
            if kind == io::ErrorKind::WouldBlock {
                rearm_and_count(fd);
            }
            Err(io::Error::from(kind))
        }
        Verdict::Cut(max) => {
            let r = call(max);
            if side == Side::Read && r.is_ok() {
                rearm_and_count(fd);
            }
            r
        }
    }
}

fn decide(fd: RawFd, side: Side, len: usize) -> Verdict {
    let mut all = targets();
    let Some(pos) = all.iter().position(|t| t.fd == fd) else { return Verdict::Pass };
    let Some(ino) = inode(fd) else { return Verdict::Pass };
    let Some(t) = all.iter_mut().skip(pos).find(|t| t.fd == fd && t.ino == ino) else { return Verdict::Pass };
    t.stats.calls += 1;
    let p = t.plan;
    if p.eintr_every >= 2 && t.stats.calls % u64::from(p.eintr_every) == 0 {
        t.stats.eintr += 1;
        return Verdict::Fail(io::ErrorKind::Interrupted);
    }
    let b = &mut t.burst[side as usize];
    if *b < p.eagain_burst {
        *b += 1;
        t.stats.eagain += 1;
        return Verdict::Fail(io::ErrorKind::WouldBlock);
    }
    *b = 0;
    if t.stream && p.short_io_max > 0 && len > p.short_io_max {
        t.stats.short += 1;
        return Verdict::Cut(p.short_io_max);
    }
    Verdict::Pass
}

fn rearm_and_count(fd: RawFd) {
    let Some(ino) = inode(fd) else { return };
    let find = |all: &mut Vec<Target>| all.iter().position(|t| t.fd == fd && t.ino == ino);
    let cached = {
        let mut all = targets();
        let Some(i) = find(&mut all) else { return };
        all[i].epfds.clone()
    };
    // Try the epoll instances that watched the socket last time; scan `/proc/self/fd`
    // only if none of them re-armed it (first time, or the socket moved).
    let mut n = cached.iter().map(|&ep| rearm_in(ep, fd)).sum::<u64>();
    let mut found = None;
    if n == 0 {
        let eps = epoll_fds();
        n = eps.iter().map(|&ep| rearm_in(ep, fd)).sum();
        found = Some(eps);
    }
    let mut all = targets();
    if let Some(i) = find(&mut all) {
        all[i].stats.rearms += n;
        if let Some(eps) = found {
            all[i].epfds = eps;
        }
    }
}

/// The epoll instances open in this process.
#[cfg(any(target_os = "linux", target_os = "android"))]
fn epoll_fds() -> Vec<RawFd> {
    let Ok(dir) = std::fs::read_dir("/proc/self/fd") else { return Vec::new() };
    dir.flatten()
        .filter(|e| std::fs::read_link(e.path()).is_ok_and(|l| l.as_os_str() == "anon_inode:[eventpoll]"))
        .filter_map(|e| e.file_name().to_str().and_then(|s| s.parse::<RawFd>().ok()))
        .collect()
}

/// Re-arms `fd` in the epoll instance `epfd` if it watches it, with its own event mask
/// and token; returns how many registrations were re-armed (0 or 1).
#[cfg(any(target_os = "linux", target_os = "android"))]
fn rearm_in(epfd: RawFd, fd: RawFd) -> u64 {
    let Ok(info) = std::fs::read_to_string(format!("/proc/self/fdinfo/{epfd}")) else { return 0 };
    let Some((_, events, data)) = info.lines().filter_map(parse_tfd).find(|&(tfd, _, _)| tfd == fd) else {
        return 0;
    };
    let mut ev = libc::epoll_event { events, u64: data };
    // SAFETY: `ev` is a valid `epoll_event` for the duration of the call; `epfd` and `fd`
    // are plain descriptor numbers, so no memory is at stake. If one was closed since
    // `/proc` was read the kernel rejects the call (`EBADF`, `EINVAL`, `ENOENT`); if a
    // number was reused, the call may even succeed and attach a stale token, which is
    // still memory-safe: tokens are slab indices checked by generation, with the
    // registrations behind `Arc`s (`runtime::io::driver`). The mask and token are
    // otherwise the registration's own, so the driver sees it re-armed. (Test-only code:
    // the fault-injection build.)
    let r = unsafe { libc::epoll_ctl(epfd, libc::EPOLL_CTL_MOD, fd, &mut ev) };
    u64::from(r == 0)
}

/// Re-arming needs epoll; elsewhere there is none (see the module documentation).
#[cfg(not(any(target_os = "linux", target_os = "android")))]
fn epoll_fds() -> Vec<RawFd> {
    Vec::new()
}

/// Re-arming needs epoll; elsewhere it does nothing (see the module documentation).
#[cfg(not(any(target_os = "linux", target_os = "android")))]
fn rearm_in(_epfd: RawFd, _fd: RawFd) -> u64 {
    0
}

/// Parses `tfd: <fd> events: <hex> data: <hex> ...` from an epoll fdinfo line.
#[cfg(any(target_os = "linux", target_os = "android"))]
fn parse_tfd(line: &str) -> Option<(RawFd, u32, u64)> {
    let mut it = line.split_whitespace();
    if it.next()? != "tfd:" {
        return None;
    }
    let tfd = it.next()?.parse().ok()?;
    if it.next()? != "events:" {
        return None;
    }
    let events = u32::from_str_radix(it.next()?, 16).ok()?;
    if it.next()? != "data:" {
        return None;
    }
    let data = u64::from_str_radix(it.next()?, 16).ok()?;
    Some((tfd, events, data))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::net::{TcpListener, TcpStream, UdpSocket};

    #[test]
    fn eintr_is_retried_and_short_io_is_cut() {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let mut a = TcpStream::connect(l.local_addr().unwrap()).unwrap();
        let (b, _) = l.accept().unwrap();
        let g = inject(&b, Plan { eintr_every: 2, short_io_max: 3, ..Plan::default() }).unwrap();
        a.write_all(b"abcdefgh").unwrap();
        let mut buf = [0u8; 8];
        let mut got = Vec::new();
        while got.len() < 8 {
            let n = super::super::recv(b.as_fd(), &mut buf, false).unwrap();
            assert!(n <= 3, "a cut read moved {n} bytes");
            got.extend_from_slice(&buf[..n]);
        }
        assert_eq!(got, b"abcdefgh");
        assert_eq!(super::super::send(b.as_fd(), b"xyzw").unwrap(), 3);
        let mut back = [0u8; 3];
        a.read_exact(&mut back).unwrap();
        assert_eq!(&back, b"xyz");
        let s = g.stats();
        assert!(s.eintr >= 1 && s.short >= 3, "{s:?}");
        drop(g);
        assert_eq!(super::super::send(b.as_fd(), b"1234").unwrap(), 4);
    }

    #[test]
    fn eagain_burst_then_success_and_datagrams_are_never_cut() {
        let a = UdpSocket::bind("127.0.0.1:0").unwrap();
        let b = UdpSocket::bind("127.0.0.1:0").unwrap();
        let g = inject(&a, Plan { eagain_burst: 2, short_io_max: 1, ..Plan::default() }).unwrap();
        let to = socket2::SockAddr::from(b.local_addr().unwrap());
        for _ in 0..2 {
            let e = super::super::send_to(a.as_fd(), b"whole", &to).unwrap_err();
            assert_eq!(e.kind(), io::ErrorKind::WouldBlock);
        }
        assert_eq!(super::super::send_to(a.as_fd(), b"whole", &to).unwrap(), 5);
        let mut buf = [0u8; 16];
        let (n, _) = b.recv_from(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"whole");
        assert_eq!(g.stats().eagain, 2);
        assert!(inject(&a, Plan::default()).is_err(), "a second plan on one socket is refused");
        assert!(inject(&b, Plan { eintr_every: 1, ..Plan::default() }).is_err());
    }

    #[cfg(any(target_os = "linux", target_os = "android"))]
    #[test]
    fn parses_fdinfo_lines() {
        let l = "tfd:        4 events: 80000019 data:                4  pos:0 ino:1964f4 sdev:9";
        assert_eq!(parse_tfd(l), Some((4, 0x8000_0019, 4)));
        assert_eq!(parse_tfd("pos:\t0"), None);
    }
}
