//! Shared helpers of the runtime integration tests: a time limit for test bodies, thread
//! counting through `/proc/self/task`, descriptor counting through `/proc/self/fd`,
//! process CPU time through `getrusage`, unique thread names, drop guards, a hand-made
//! "channel" future, and reading a TCP stream to a given length.
//!
//! Every test binary includes this module with `mod support;` and uses a subset of it.

#![allow(dead_code)]

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

/// Reads exactly `buf.len()` bytes from `s`; panics on an error or an early EOF.
pub async fn read_full(s: &mut blitz_io::net::TcpStream, buf: &mut [u8]) {
    let mut got = 0;
    while got < buf.len() {
        let n = s.read(&mut buf[got..]).await.unwrap();
        assert!(n > 0, "unexpected EOF");
        got += n;
    }
}

/// Which scheduler a test runtime uses.
#[derive(Debug, Clone, Copy)]
pub enum Flavor {
    Current,
    Multi(usize),
}

/// A runtime of `flavor` whose threads are named `name` (so tests can count them).
pub fn build_runtime(flavor: Flavor, name: &str) -> blitz_io::runtime::Runtime {
    use blitz_io::runtime::Builder;
    match flavor {
        Flavor::Current => Builder::new_current_thread().thread_name(name).build().unwrap(),
        Flavor::Multi(n) => Builder::new_multi_thread().worker_threads(n).thread_name(name).build().unwrap(),
    }
}

/// Runs `f` on a helper thread and fails the calling test if it does not return within
/// `secs` seconds (the helper is then left behind: a hung test must fail, not hang the
/// suite). A panic inside `f` is re-raised on the calling thread with its payload.
pub fn with_timeout<R: Send + 'static>(secs: u64, f: impl FnOnce() -> R + Send + 'static) -> R {
    let (tx, rx) = mpsc::channel();
    let name = std::thread::current().name().unwrap_or("test").to_owned();
    let t = std::thread::Builder::new()
        .name("test-body".to_owned())
        .spawn(move || {
            let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
            let _ = tx.send(r);
        })
        .unwrap();
    match rx.recv_timeout(Duration::from_secs(secs)) {
        Ok(Ok(v)) => {
            let _ = t.join();
            v
        }
        Ok(Err(payload)) => {
            let _ = t.join();
            std::panic::resume_unwind(payload)
        }
        Err(_) => panic!("test `{name}` did not finish within {secs} s (hang)"),
    }
}

/// Polls `cond` every 5 ms until it is true or `limit` passes; returns its last value.
pub fn eventually(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + limit;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= end {
            return cond();
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// What each open descriptor of this process points at (`socket:[..]`,
/// `anon_inode:[eventpoll]`, `pipe:[..]`, a path).
pub fn fd_targets() -> Vec<String> {
    let Ok(dir) = std::fs::read_dir("/proc/self/fd") else { return Vec::new() };
    dir.filter_map(|e| std::fs::read_link(e.ok()?.path()).ok()).map(|t| t.to_string_lossy().into_owned()).collect()
}

/// Open sockets, epoll instances and eventfds: the descriptors a runtime and its
/// connections hold. Pipes and files are left out: ThreadSanitizer starts its symbolizer
/// (a child process on two pipes) the first time it has to match a suppression, which
/// may be in the middle of a test that counts descriptors.
pub fn runtime_fds() -> usize {
    fd_targets().iter().filter(|t| t.starts_with("socket:") || t.starts_with("anon_inode:")).count()
}

/// The `/proc` directory and name (`comm`, at most 15 bytes) of every thread of this
/// process.
fn threads() -> Vec<(String, String)> {
    let mut threads = Vec::new();
    let Ok(dir) = std::fs::read_dir("/proc/self/task") else { return threads };
    for entry in dir.flatten() {
        if let Ok(s) = std::fs::read_to_string(entry.path().join("comm")) {
            threads.push((entry.path().display().to_string(), s.trim_end_matches('\n').to_owned()));
        }
    }
    threads
}

/// The names (`comm`, at most 15 bytes) of every thread of this process.
pub fn thread_names() -> Vec<String> {
    threads().into_iter().map(|(_, name)| name).collect()
}

/// The `/proc` directories (`/proc/self/task/TID`) of this process's threads named
/// exactly `name`.
pub fn thread_dirs_named(name: &str) -> Vec<String> {
    assert!(name.len() <= 15, "thread names are cut to 15 bytes in /proc: {name:?}");
    threads().into_iter().filter(|(_, n)| n == name).map(|(dir, _)| dir).collect()
}

/// Number of threads of this process named exactly `name`.
pub fn threads_named(name: &str) -> usize {
    thread_dirs_named(name).len()
}

/// Number of threads of this process.
pub fn thread_count() -> usize {
    std::fs::read_dir("/proc/self/task").map(|d| d.count()).unwrap_or(0)
}

/// A thread name unique in this process: `prefix` followed by a counter, at most 15
/// bytes so that `/proc/self/task/*/comm` shows it whole.
pub fn unique_name(prefix: &str) -> String {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let name = format!("{prefix}-{n}");
    assert!(name.len() <= 15, "name too long for comm: {name:?}");
    name
}

/// User plus system CPU time consumed by this process so far.
pub fn process_cpu_time() -> Duration {
    // SAFETY: `getrusage` only writes into the zeroed `rusage` we pass, which lives
    // for the whole call; `RUSAGE_SELF` is a valid `who`.
    let usage = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        let rc = libc::getrusage(libc::RUSAGE_SELF, &mut usage);
        assert_eq!(rc, 0, "getrusage failed");
        usage
    };
    let tv = |t: libc::timeval| Duration::from_secs(t.tv_sec as u64) + Duration::from_micros(t.tv_usec as u64);
    tv(usage.ru_utime) + tv(usage.ru_stime)
}

/// Sets its flag when dropped: proves that a future holding it was dropped.
#[derive(Debug)]
pub struct DropFlag(pub Arc<AtomicBool>);

impl DropFlag {
    /// A guard and the flag it sets.
    pub fn new() -> (DropFlag, Arc<AtomicBool>) {
        let flag = Arc::new(AtomicBool::new(false));
        (DropFlag(flag.clone()), flag)
    }
}

impl Drop for DropFlag {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

/// Counts drops in a shared counter.
#[derive(Debug)]
pub struct DropCount(pub Arc<AtomicUsize>);

impl Drop for DropCount {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

/// A minimal one-shot channel (the receiver is a future that parks its task with a
/// stored waker, the way a real channel does), for tests that need a task waiting on
/// something other than a timer or a socket.
#[derive(Debug, Default)]
struct Slot<T> {
    value: Option<T>,
    waker: Option<Waker>,
    closed: bool,
}

/// Sending side of [`oneshot`].
#[derive(Debug)]
pub struct Sender<T>(Arc<Mutex<Slot<T>>>);

/// Receiving side of [`oneshot`]: resolves to `Some(value)`, or `None` if the sender was
/// dropped without sending.
#[derive(Debug)]
pub struct Receiver<T>(Arc<Mutex<Slot<T>>>);

/// A one-shot channel.
pub fn oneshot<T>() -> (Sender<T>, Receiver<T>) {
    let slot = Arc::new(Mutex::new(Slot { value: None, waker: None, closed: false }));
    (Sender(slot.clone()), Receiver(slot))
}

impl<T> Sender<T> {
    /// Stores `v` and wakes the receiver's task.
    pub fn send(self, v: T) {
        let waker = {
            let mut s = self.0.lock().unwrap();
            s.value = Some(v);
            s.waker.take()
        };
        if let Some(w) = waker {
            w.wake();
        }
    }
}

impl<T> Drop for Sender<T> {
    fn drop(&mut self) {
        let waker = {
            let mut s = self.0.lock().unwrap();
            s.closed = true;
            s.waker.take()
        };
        if let Some(w) = waker {
            w.wake();
        }
    }
}

impl<T> Future for Receiver<T> {
    type Output = Option<T>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<T>> {
        let mut s = self.0.lock().unwrap();
        if let Some(v) = s.value.take() {
            return Poll::Ready(Some(v));
        }
        if s.closed {
            return Poll::Ready(None);
        }
        s.waker = Some(cx.waker().clone());
        Poll::Pending
    }
}
