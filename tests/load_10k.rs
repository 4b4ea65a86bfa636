//! Load: 10,000 concurrent TCP connections held by a 2-worker runtime, loopback only.
//!
//! Two processes take part, so that each needs one descriptor per connection:
//!
//! * the **server** is this test process: a blitz-io multi-thread runtime with 2 workers
//!   that accepts every connection and runs one task per connection, which reads each
//!   message, checks every byte against what that connection must send in that round,
//!   echoes it, and finishes at the client's EOF (after exactly `ROUNDS` messages);
//! * the **clients** run in a child process: the test re-executes its own binary
//!   (`std::env::current_exe()`) filtered to this one test, with `BLITZ_LOAD10K_CLIENT`
//!   set to the server's address; the child enters this same test function, sees the
//!   variable and plays the client role on its own 2-worker runtime: it opens every
//!   connection, does one echo round on each, waits at the hold point, does the
//!   remaining rounds, half-closes and checks that the server closes too.
//!
//! The processes talk over the child's stdin: `G` (the server has sampled its baseline,
//! start connecting) and `R` (the server has seen all connections open at once, release
//! the clients). At the hold point the server checks, through a counter of accepted and
//! not yet finished connections, that every connection is open at the same time, and
//! that its descriptor count grew by at least one per connection; the client checks its
//! own descriptors too. Every message is unique to its connection and round and every
//! byte is compared on both sides. The test fails if a connection is lost, a byte
//! differs, a server task does not see EOF, the child fails (its stdout and stderr are
//! then part of the failure message) or the run exceeds its time bound (the child is
//! killed).
//!
//! Both processes raise `RLIMIT_NOFILE`'s soft limit to the hard limit; when the hard
//! limit is below what 10,000 connections need, the connection count is scaled down to
//! fit and the test says so on stdout.
//!
//! The server's peak RSS (`VmHWM`) and RSS growth per connection (one socket, one task,
//! its driver state) are printed, not asserted: run with `--nocapture` to see them.
//! Linux syncs per-thread RSS counters into the process totals lazily, so `VmHWM` can
//! read a few hundred KiB below an earlier `VmRSS` sample.

mod support;

use std::future::Future;
use std::io::{Read, Write};
use std::net::Shutdown;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use blitz_io::net::{Address, TcpListener, TcpStream};
use blitz_io::runtime::{Builder, Runtime};
use blitz_io::time::sleep;
use support::with_timeout;

/// Name of this test, as libtest filters it (the child runs only this test).
const TEST_NAME: &str = "ten_thousand_concurrent_connections";
/// Set in the child's environment to the server's address: selects the client role.
const CLIENT_ENV: &str = "BLITZ_LOAD10K_CLIENT";
/// Set in the child's environment to the number of connections to open.
const COUNT_ENV: &str = "BLITZ_LOAD10K_CONNS";
/// Connections wanted when the descriptor limit allows.
const WANTED: usize = 10_000;
/// Echo rounds per connection (one before the hold point, the rest after).
const ROUNDS: usize = 4;
/// Descriptors kept free in each process for the runtime, the harness and /proc reads.
const FD_SLACK: u64 = 200;
/// Connections started by the client but not yet through their first round, at most
/// (the listen backlog is 1024).
const MAX_PENDING_CONNECTS: usize = 512;
/// Bound of each process's own work (server body in the parent, client body in the child).
const BODY_LIMIT_SECS: u64 = 50;
/// Bound of the whole test, child included; the child is killed when it runs out.
const TOTAL_LIMIT: Duration = Duration::from_secs(58);
/// How long a process waits for the hold point before failing with its counters.
const HOLD_LIMIT: Duration = Duration::from_secs(40);
/// How long the server waits, after the release, for every connection to finish.
const FINISH_LIMIT: Duration = Duration::from_secs(20);
/// Most bytes of the child's stdout or stderr quoted in a failure message.
const QUOTE_MAX: usize = 16 * 1024;

/// Raises the soft descriptor limit to the hard limit; returns the soft limit after.
fn raise_nofile_to_hard() -> u64 {
    let mut lim = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: `lim` is a valid, writable `rlimit` for the duration of the call.
    assert_eq!(unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) }, 0);
    if lim.rlim_cur < lim.rlim_max {
        lim.rlim_cur = lim.rlim_max;
        // SAFETY: `lim` is a valid `rlimit` whose soft limit equals its hard limit.
        assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lim) }, 0);
    }
    // SAFETY: as above.
    assert_eq!(unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) }, 0);
    lim.rlim_cur
}

/// A `kB` field of `/proc/self/status` (`VmRSS`, `VmHWM`), in KiB.
fn status_kib(field: &str) -> u64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap();
    for line in s.lines() {
        if let Some(v) = line.strip_prefix(field).and_then(|r| r.strip_prefix(':')) {
            return v.trim().trim_end_matches("kB").trim().parse().unwrap();
        }
    }
    panic!("{field} missing from /proc/self/status");
}

fn two_workers(name: &str) -> Runtime {
    Builder::new_multi_thread().worker_threads(2).thread_name(name).build().unwrap()
}

/// Length of the message of connection `conn` in round `round`: 16..=271 bytes.
fn msg_len(conn: usize, round: usize) -> usize {
    16 + (conn.wrapping_mul(7919) ^ round.wrapping_mul(104_729)) % 256
}

/// Longest message (see [`msg_len`]).
const MAX_MSG: usize = 16 + 255;

/// The message of connection `conn` in round `round`. The first 8 bytes carry the
/// connection id and round, so a message delivered to the wrong connection can never
/// pass as correct.
fn msg(conn: usize, round: usize) -> Vec<u8> {
    let mut m = Vec::with_capacity(msg_len(conn, round));
    m.extend_from_slice(&(conn as u32).to_le_bytes());
    m.extend_from_slice(&(round as u32).to_le_bytes());
    for i in 8..msg_len(conn, round) {
        m.push((conn.wrapping_mul(31) ^ round.wrapping_mul(131) ^ i.wrapping_mul(7)) as u8);
    }
    m
}

/// Bytes that `n` connections exchange in each direction over all their rounds.
fn expected_bytes(n: usize) -> usize {
    (0..n).map(|c| (0..ROUNDS).map(|r| msg_len(c, r)).sum::<usize>()).sum()
}

/// A one-way gate: tasks wait until `open` is called (an async barrier without a count).
/// `open` may be called from any thread.
#[derive(Default)]
struct Gate {
    open: AtomicBool,
    waiters: Mutex<Vec<Waker>>,
}

impl Gate {
    fn open(&self) {
        self.open.store(true, Ordering::SeqCst);
        let waiters = std::mem::take(&mut *self.waiters.lock().unwrap());
        for w in waiters {
            w.wake();
        }
    }

    fn wait(&self) -> GateWait<'_> {
        GateWait(self)
    }
}

struct GateWait<'a>(&'a Gate);

impl Future for GateWait<'_> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.0.open.load(Ordering::SeqCst) {
            return Poll::Ready(());
        }
        self.0.waiters.lock().unwrap().push(cx.waker().clone());
        // Re-check after registering so that an `open` in between is not missed.
        if self.0.open.load(Ordering::SeqCst) {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    }
}

/// Failures reported by connection tasks, so that the coordinating task can fail the
/// test at once with the first messages instead of waiting for its time bound.
#[derive(Default)]
struct Errors(Mutex<Vec<String>>);

impl Errors {
    fn push(&self, e: String) {
        self.0.lock().unwrap().push(e);
    }

    /// Panics with the first few errors, if there are any.
    fn check(&self, side: &str) {
        let errors = self.0.lock().unwrap();
        if !errors.is_empty() {
            let first: Vec<&str> = errors.iter().take(5).map(String::as_str).collect();
            panic!("{side}: {} connection errors, first: {first:#?}", errors.len());
        }
    }
}

/// Fills `buf` from `s`. `Ok(false)` means EOF before the first byte; EOF after some of
/// `buf` is filled is an error.
async fn fill(s: &mut TcpStream, buf: &mut [u8], what: &(dyn Fn() -> String + Sync)) -> Result<bool, String> {
    let mut n = 0;
    while n < buf.len() {
        let k = s.read(&mut buf[n..]).await.map_err(|e| format!("{}: read: {e}", what()))?;
        if k == 0 {
            if n == 0 {
                return Ok(false);
            }
            return Err(format!("{}: EOF after {n} of {} bytes", what(), buf.len()));
        }
        n += k;
    }
    Ok(true)
}

// ---------------------------------------------------------------------------------------
// The test: server role, unless the environment selects the client role.
// ---------------------------------------------------------------------------------------

#[test]
fn ten_thousand_concurrent_connections() {
    if let Ok(addr) = std::env::var(CLIENT_ENV) {
        client_role(&addr);
        return;
    }
    let started_at = Instant::now();
    let limit = raise_nofile_to_hard();
    // One descriptor per connection in each process.
    let n = WANTED.min(limit.saturating_sub(FD_SLACK) as usize);
    if n < WANTED {
        println!(
            "load_10k: RLIMIT_NOFILE hard limit is {limit} (< {} needed for {WANTED} connections, \
             1 descriptor each per process): SCALED DOWN to {n} concurrent connections",
            WANTED as u64 + FD_SLACK
        );
    } else {
        println!("load_10k: RLIMIT_NOFILE {limit}: {n} concurrent connections, clients in a child process");
    }
    assert!(n >= 1000, "descriptor limit {limit} too low for a meaningful load test");

    let listener = TcpListener::bind(Address::loopback_v4(0)).unwrap();
    let addr = listener.local_addr().unwrap();
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", TEST_NAME, "--nocapture", "--test-threads=1"])
        .env(CLIENT_ENV, addr.to_string())
        .env(COUNT_ENV, n.to_string())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let child_alive = Arc::new(AtomicBool::new(true));
    let out = Capture::start(child.stdout.take().unwrap(), Some(child_alive.clone()));
    let err = Capture::start(child.stderr.take().unwrap(), None);
    let to_child = child.stdin.take().unwrap();
    let mut child = ChildGuard(Some(child));

    let server = std::panic::catch_unwind(AssertUnwindSafe(|| {
        with_timeout(BODY_LIMIT_SECS, move || serve(listener, n, to_child, child_alive))
    }));
    let (status, killed) = match server {
        Ok(_) => child.wait_until(started_at + TOTAL_LIMIT),
        Err(_) => (child.stop(), false),
    };
    let (child_out, child_err) = (out.finish(), err.finish());
    let status_text = status.map_or_else(|| "not reaped".to_owned(), |s| s.to_string());
    let fail = |what: String| -> ! {
        panic!(
            "load_10k: {what}\nclient process: {status_text}\n--- client stdout ---\n{}\n--- client stderr ---\n{}",
            tail(&child_out),
            tail(&child_err)
        )
    };
    let report = match server {
        Ok(report) => report,
        Err(payload) => fail(format!("server failed: {}", panic_text(&*payload))),
    };
    if killed {
        fail(format!("client process killed: not done within {} s", TOTAL_LIMIT.as_secs()));
    }
    if !status.is_some_and(|s| s.success()) {
        fail("client process failed".to_owned());
    }
    if !child_out.contains("load_10k client: done") {
        fail("client process exited successfully without running the client role".to_owned());
    }

    let ServerReport { max_open, fds_held, bytes, rss_base, rss_held, hwm, held_at, done_at } = report;
    let per_conn = rss_held.saturating_sub(rss_base) as f64 * 1024.0 / n as f64;
    println!(
        "load_10k server: {max_open} connections open at once (counter), {fds_held} more descriptors at the hold point; \
         {ROUNDS} rounds each, {bytes} bytes received, verified and echoed; every task saw EOF"
    );
    println!(
        "load_10k server: RSS {rss_base} KiB before, {rss_held} KiB with all held, peak (VmHWM) {hwm} KiB; \
         {per_conn:.0} B per connection (server end: socket, task, driver state)"
    );
    // libtest prints the child's test name without a newline before the test's own
    // output, so the first report line may follow it on the same line.
    for line in child_out.lines().filter_map(|l| l.find("load_10k client").map(|i| &l[i..])) {
        println!("{line}");
    }
    println!(
        "load_10k: all held at {:.2} s, server done at {:.2} s, test done at {:.2} s",
        held_at.as_secs_f64(),
        done_at.as_secs_f64(),
        started_at.elapsed().as_secs_f64()
    );
}

// ---------------------------------------------------------------------------------------
// Server role (this process).
// ---------------------------------------------------------------------------------------

/// Figures the server measured.
struct ServerReport {
    max_open: usize,
    fds_held: usize,
    bytes: usize,
    rss_base: u64,
    rss_held: u64,
    hwm: u64,
    held_at: Duration,
    done_at: Duration,
}

#[derive(Default)]
struct ServerState {
    /// Connections accepted whose task has not finished.
    open: AtomicUsize,
    /// Highest value `open` reached.
    max_open: AtomicUsize,
    /// Connections whose first round was verified and echoed.
    first_round: AtomicUsize,
    /// Connections that completed all rounds and then saw EOF.
    done: AtomicUsize,
    /// Bytes received, verified and echoed by finished connections.
    bytes: AtomicUsize,
    /// `seen[c]`: a connection announced itself as client connection `c`.
    seen: Vec<AtomicBool>,
    errors: Errors,
}

fn serve(listener: TcpListener, n: usize, mut to_child: ChildStdin, child_alive: Arc<AtomicBool>) -> ServerReport {
    let started_at = Instant::now();
    let rt = two_workers("load10k-srv");
    let rss_base = status_kib("VmRSS");
    let fds_base = support::runtime_fds();
    to_child.write_all(b"G").unwrap();

    let report = rt.block_on(async move {
        let listener = Arc::new(listener);
        let st = Arc::new(ServerState { seen: (0..n).map(|_| AtomicBool::new(false)).collect(), ..Default::default() });

        // Two accept tasks claim the N accepts between them (so both finish), one task
        // per connection.
        let claimed = Arc::new(AtomicUsize::new(0));
        let mut acceptors = Vec::new();
        for _ in 0..2 {
            let (listener, claimed, st) = (listener.clone(), claimed.clone(), st.clone());
            acceptors.push(blitz_io::task::spawn(async move {
                while claimed.fetch_add(1, Ordering::SeqCst) < n {
                    let stream = match listener.accept().await {
                        Ok(a) => a.stream,
                        Err(e) => {
                            st.errors.push(format!("accept: {e}"));
                            return;
                        }
                    };
                    let now = st.open.fetch_add(1, Ordering::SeqCst) + 1;
                    st.max_open.fetch_max(now, Ordering::SeqCst);
                    let st = st.clone();
                    blitz_io::task::spawn(async move {
                        let r = serve_conn(stream, n, &st).await;
                        st.open.fetch_sub(1, Ordering::SeqCst);
                        match r {
                            Ok(bytes) => {
                                st.bytes.fetch_add(bytes, Ordering::SeqCst);
                                st.done.fetch_add(1, Ordering::SeqCst);
                            }
                            Err(e) => st.errors.push(e),
                        }
                    });
                }
            }));
        }

        // Hold point: every connection accepted, through its first round, and open.
        let deadline = Instant::now() + HOLD_LIMIT;
        loop {
            st.errors.check("server");
            let (open, first) = (st.open.load(Ordering::SeqCst), st.first_round.load(Ordering::SeqCst));
            if first >= n {
                break;
            }
            assert!(
                child_alive.load(Ordering::SeqCst),
                "client process ended before the hold point ({open} open, {first} through round 0)"
            );
            assert!(
                Instant::now() < deadline,
                "hold point not reached within {} s: {open} open, {first} of {n} through round 0",
                HOLD_LIMIT.as_secs()
            );
            sleep(Duration::from_millis(5)).await;
        }
        let held_at = started_at.elapsed();
        let open = st.open.load(Ordering::SeqCst);
        let rss_held = status_kib("VmRSS");
        let fds_held = support::runtime_fds().saturating_sub(fds_base);
        assert!(open >= n, "expected {n} accepted connections open at once, counter says {open}");
        assert!(fds_held >= n, "expected {n} connections open at once: only {fds_held} more descriptors than before");
        to_child.write_all(b"R").unwrap();

        let deadline = Instant::now() + FINISH_LIMIT;
        while st.done.load(Ordering::SeqCst) < n {
            st.errors.check("server");
            assert!(
                Instant::now() < deadline,
                "server: only {} of {n} connections finished (all rounds, then EOF) within {} s of the release",
                st.done.load(Ordering::SeqCst),
                FINISH_LIMIT.as_secs()
            );
            sleep(Duration::from_millis(5)).await;
        }
        for h in acceptors {
            h.await.unwrap();
        }
        st.errors.check("server");
        let expected = expected_bytes(n);
        assert_eq!(st.done.load(Ordering::SeqCst), n, "server connections that saw EOF");
        assert_eq!(st.open.load(Ordering::SeqCst), 0, "server connections still open");
        assert_eq!(st.bytes.load(Ordering::SeqCst), expected, "bytes verified and echoed by the server");
        let missing = st.seen.iter().filter(|s| !s.load(Ordering::SeqCst)).count();
        assert_eq!(missing, 0, "client connection ids never seen by the server");
        ServerReport {
            max_open: st.max_open.load(Ordering::SeqCst),
            fds_held,
            bytes: expected,
            rss_base,
            rss_held,
            hwm: 0,
            held_at,
            done_at: started_at.elapsed(),
        }
    });
    drop(rt);
    ServerReport { hwm: status_kib("VmHWM"), ..report }
}

/// Serves one connection: for each round, reads the header, checks that it names the
/// same client connection as before and the expected round, reads the rest, compares
/// every byte with the message that connection must send, and echoes it. Succeeds at
/// EOF after exactly `ROUNDS` messages; returns the bytes verified.
async fn serve_conn(mut s: TcpStream, n: usize, st: &ServerState) -> Result<usize, String> {
    let mut buf = [0u8; MAX_MSG];
    let mut conn = usize::MAX;
    let mut bytes = 0;
    let mut round = 0;
    loop {
        let what = move || format!("server conn {conn} round {round}");
        if !fill(&mut s, &mut buf[..8], &what).await? {
            return if round == ROUNDS {
                Ok(bytes)
            } else {
                Err(format!("{}: EOF after {round} of {ROUNDS} rounds", what()))
            };
        }
        let c = u32::from_le_bytes(buf[..4].try_into().unwrap()) as usize;
        let r = u32::from_le_bytes(buf[4..8].try_into().unwrap()) as usize;
        if round == 0 {
            if c >= n {
                return Err(format!("server: connection id {c} out of range (n = {n})"));
            }
            if st.seen[c].swap(true, Ordering::SeqCst) {
                return Err(format!("server: connection id {c} arrived twice"));
            }
            conn = c;
        } else if c != conn {
            return Err(format!("{}: message names connection {c}", what()));
        }
        let what = move || format!("server conn {conn} round {round}");
        if r != round || round >= ROUNDS {
            return Err(format!("{}: message names round {r}", what()));
        }
        let len = msg_len(conn, round);
        if !fill(&mut s, &mut buf[8..len], &what).await? {
            return Err(format!("{}: EOF after the 8-byte header", what()));
        }
        if buf[..len] != msg(conn, round)[..] {
            return Err(format!("{}: received bytes differ", what()));
        }
        s.write_all(&buf[..len]).await.map_err(|e| format!("{}: write: {e}", what()))?;
        bytes += len;
        if round == 0 {
            st.first_round.fetch_add(1, Ordering::SeqCst);
        }
        round += 1;
    }
}

// ---------------------------------------------------------------------------------------
// Client role (child process).
// ---------------------------------------------------------------------------------------

/// What the client process hears from the server process on its stdin.
#[derive(Default)]
struct Control {
    start: Gate,
    release: Gate,
    got_start: AtomicBool,
    got_release: AtomicBool,
}

fn client_role(addr: &str) {
    let addr = Address::parse(addr).unwrap();
    let n: usize = std::env::var(COUNT_ENV).unwrap().parse().unwrap();
    let limit = raise_nofile_to_hard();
    assert!(
        limit >= n as u64 + FD_SLACK,
        "client: RLIMIT_NOFILE {limit} too low for {n} connections (+ {FD_SLACK} spare)"
    );
    let ctl = Arc::new(Control::default());
    let reader = ctl.clone();
    std::thread::spawn(move || {
        let mut stdin = std::io::stdin().lock();
        loop {
            let mut b = [0u8; 1];
            match stdin.read(&mut b) {
                Ok(1) if b[0] == b'G' => {
                    reader.got_start.store(true, Ordering::SeqCst);
                    reader.start.open();
                }
                Ok(1) if b[0] == b'R' => {
                    reader.got_release.store(true, Ordering::SeqCst);
                    reader.release.open();
                }
                Ok(1) => {}
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                // The server process closed our stdin (or died): wake whoever waits,
                // they see that the signal never came.
                Ok(_) | Err(_) => {
                    reader.start.open();
                    reader.release.open();
                    return;
                }
            }
        }
    });
    with_timeout(BODY_LIMIT_SECS, move || run_clients(addr, n, ctl));
}

fn run_clients(addr: Address, n: usize, ctl: Arc<Control>) {
    let started_at = Instant::now();
    let rt = two_workers("load10k-cli");
    rt.block_on(async move {
        ctl.start.wait().await;
        assert!(ctl.got_start.load(Ordering::SeqCst), "client: server closed the control pipe before `G`");
        let rss_base = status_kib("VmRSS");
        let fds_base = support::runtime_fds();

        // Clients, paced so that at most MAX_PENDING_CONNECTS are between connect and
        // the end of their first round.
        let connected = Arc::new(AtomicUsize::new(0));
        let errors = Arc::new(Errors::default());
        let release = Arc::new(Gate::default());
        let mut clients = Vec::with_capacity(n);
        for c in 0..n {
            while c.saturating_sub(connected.load(Ordering::SeqCst)) > MAX_PENDING_CONNECTS {
                errors.check("client");
                sleep(Duration::from_millis(1)).await;
            }
            let (connected, errors, release) = (connected.clone(), errors.clone(), release.clone());
            clients.push(blitz_io::task::spawn(async move {
                match client_conn(addr, c, &connected, &release).await {
                    Ok(bytes) => Some(bytes),
                    Err(e) => {
                        errors.push(e);
                        None
                    }
                }
            }));
        }

        // Hold point, client side: every connection through its first round and open.
        let deadline = Instant::now() + HOLD_LIMIT;
        while connected.load(Ordering::SeqCst) < n {
            errors.check("client");
            assert!(
                Instant::now() < deadline,
                "client: only {} of {n} connections through round 0 within {} s",
                connected.load(Ordering::SeqCst),
                HOLD_LIMIT.as_secs()
            );
            sleep(Duration::from_millis(5)).await;
        }
        let held_at = started_at.elapsed();
        let fds_held = support::runtime_fds().saturating_sub(fds_base);
        let rss_held = status_kib("VmRSS");
        assert!(fds_held >= n, "client: expected {n} connections open at once, only {fds_held} more descriptors");
        ctl.release.wait().await;
        assert!(ctl.got_release.load(Ordering::SeqCst), "client: server closed the control pipe before `R`");
        release.open();

        let mut verified = 0;
        let mut completed = 0;
        for h in clients {
            if let Some(bytes) = h.await.unwrap() {
                verified += bytes;
                completed += 1;
            }
        }
        errors.check("client");
        assert_eq!(completed, n, "client: connections lost");
        assert_eq!(verified, expected_bytes(n), "client: bytes verified");
        let per_conn = rss_held.saturating_sub(rss_base) as f64 * 1024.0 / n as f64;
        println!(
            "load_10k client: {n} connections open at once ({fds_held} more descriptors), {verified} echoed bytes \
             verified, every connection saw the server's EOF; RSS {per_conn:.0} B per connection (client end); \
             all connected at {:.2} s",
            held_at.as_secs_f64()
        );
        println!("load_10k client: done in {:.2} s", started_at.elapsed().as_secs_f64());
    });
}

/// One echo round on `s`: write the unique message, read exactly its length back,
/// compare every byte. Returns the number of bytes verified.
async fn round_trip(s: &mut TcpStream, conn: usize, round: usize) -> Result<usize, String> {
    let what = || format!("client conn {conn} round {round}");
    let m = msg(conn, round);
    s.write_all(&m).await.map_err(|e| format!("{}: write: {e}", what()))?;
    let mut got = vec![0u8; m.len()];
    if !fill(s, &mut got, &what).await? {
        return Err(format!("{}: EOF instead of the echo", what()));
    }
    if got != m {
        return Err(format!("{}: echoed bytes differ", what()));
    }
    Ok(m.len())
}

/// One client connection: connect, round 0, wait for the release, the other rounds,
/// half-close and expect the server's EOF (it closes once it has seen ours).
async fn client_conn(addr: Address, c: usize, connected: &AtomicUsize, release: &Gate) -> Result<usize, String> {
    let mut s = TcpStream::connect(addr).await.map_err(|e| format!("client conn {c}: connect: {e}"))?;
    let mut bytes = round_trip(&mut s, c, 0).await?;
    connected.fetch_add(1, Ordering::SeqCst);
    release.wait().await;
    for r in 1..ROUNDS {
        bytes += round_trip(&mut s, c, r).await?;
    }
    s.shutdown(Shutdown::Write).map_err(|e| format!("client conn {c}: shutdown: {e}"))?;
    let mut rest = [0u8; 16];
    match s.read(&mut rest).await {
        Ok(0) => Ok(bytes),
        Ok(k) => Err(format!("client conn {c}: {k} unexpected bytes instead of the server's EOF")),
        Err(e) => Err(format!("client conn {c}: read after shutdown: {e}")),
    }
}

// ---------------------------------------------------------------------------------------
// Child process plumbing.
// ---------------------------------------------------------------------------------------

/// The child process; reaped on drop, killed first if still running (a failing or
/// timed-out test leaves no process behind).
struct ChildGuard(Option<Child>);

impl ChildGuard {
    /// Waits for the child until `deadline`, then kills it. Returns its status and
    /// whether it had to be killed.
    fn wait_until(&mut self, deadline: Instant) -> (Option<ExitStatus>, bool) {
        while let Some(child) = self.0.as_mut() {
            if let Ok(Some(status)) = child.try_wait() {
                self.0 = None;
                return (Some(status), false);
            }
            if Instant::now() >= deadline {
                return (self.stop(), true);
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        (None, false)
    }

    /// Reaps the child, killing it first if it is still running; returns its status.
    fn stop(&mut self) -> Option<ExitStatus> {
        let mut child = self.0.take()?;
        if let Ok(Some(status)) = child.try_wait() {
            return Some(status);
        }
        let _ = child.kill();
        child.wait().ok()
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Collects one of the child's output pipes on a thread; optionally clears a flag when
/// the pipe closes (the child has exited).
struct Capture {
    thread: JoinHandle<String>,
}

impl Capture {
    fn start(mut pipe: impl Read + Send + 'static, alive: Option<Arc<AtomicBool>>) -> Capture {
        let thread = std::thread::spawn(move || {
            let mut bytes = Vec::new();
            let _ = pipe.read_to_end(&mut bytes);
            if let Some(alive) = alive {
                alive.store(false, Ordering::SeqCst);
            }
            String::from_utf8_lossy(&bytes).into_owned()
        });
        Capture { thread }
    }

    /// The whole output; call once the child has exited.
    fn finish(self) -> String {
        self.thread.join().unwrap_or_else(|_| "<output reader panicked>".to_owned())
    }
}

/// The last `QUOTE_MAX` bytes of `s` (on a character boundary).
fn tail(s: &str) -> &str {
    let mut start = s.len().saturating_sub(QUOTE_MAX);
    while !s.is_char_boundary(start) {
        start += 1;
    }
    &s[start..]
}

fn panic_text(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "<non-string panic payload>".to_owned()
    }
}
