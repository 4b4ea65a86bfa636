//! Graceful shutdown of a server and of its connections: the seed's "Graceful Connection
//! Shutdown", plus the server-side half it implies.
//!
//! **A connection** is closed gracefully in three steps ([`graceful_close`]): shut down
//! the write side (the peer reads EOF), drain the read side until the peer's EOF (bounded
//! by a deadline), then close. Closing with unread data instead makes the kernel send a
//! reset, which can destroy the response the peer has not read yet.
//!
//! **The server**, on a shutdown signal:
//! 1. stops accepting (drops the listener: new connections are refused),
//! 2. lets every connection finish the request it is in the middle of; idle connections
//!    close at once,
//! 3. closes each connection gracefully, giving its peer a short deadline to close too,
//! 4. waits for all connection tasks up to an overall deadline, then aborts stragglers.
//!
//! blitz-io has no channel or signal-handling type, so the signal here is [`Shutdown`]:
//! a flag plus the wakers of the tasks waiting for it, built from a `Mutex` and `Waker`s.
//! A real server would call `trigger()` from its SIGTERM/Ctrl-C handler; this example
//! triggers it from `main` once its clients are in place.
//!
//! The clients (line protocol: `text\n` → `echo: text\n`):
//! * **idle** finished a request and waits: it is closed at once, reads EOF, closes;
//! * **in-flight** has sent half a request when the signal comes: it is allowed to
//!   finish, gets its answer, then EOF;
//! * **stubborn** never closes its end: the drain deadline closes it anyway;
//! * **stuck** never completes its request: the overall deadline aborts its task;
//! * **late** connects after the signal: refused.
//!
//! Exits non-zero if any of that does not happen. Run: `cargo run --example graceful_shutdown`.

use std::future::{poll_fn, Future};
use std::io;
use std::net::Shutdown as How;
use std::pin::pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Poll, Waker};
use std::time::Duration;

use blitz_io::net::{Address, TcpListener, TcpStream};
use blitz_io::task::{spawn, JoinHandle};
use blitz_io::time::{sleep, timeout, timeout_at, Instant};

/// How long a closed connection's peer gets to close its side before we close anyway.
const DRAIN_DEADLINE: Duration = Duration::from_millis(400);
/// How long the server waits for all connection tasks after the signal.
const SHUTDOWN_DEADLINE: Duration = Duration::from_millis(1200);

// ===== the shutdown signal =====

/// A one-shot broadcast signal: once triggered, every `wait()` (past and future)
/// completes. Cloning shares the signal.
#[derive(Clone, Default)]
struct Shutdown {
    state: Arc<Mutex<SignalState>>,
}

#[derive(Default)]
struct SignalState {
    triggered: bool,
    waiters: Vec<Waker>,
}

impl Shutdown {
    /// Fires the signal and wakes every waiting task.
    fn trigger(&self) {
        let waiters = {
            let mut s = self.state.lock().unwrap_or_else(PoisonError::into_inner);
            s.triggered = true;
            std::mem::take(&mut s.waiters)
        };
        for w in waiters {
            w.wake();
        }
    }

    fn is_triggered(&self) -> bool {
        self.state.lock().unwrap_or_else(PoisonError::into_inner).triggered
    }

    /// Completes once the signal has fired. Cancel safe.
    async fn wait(&self) {
        poll_fn(|cx| {
            let mut s = self.state.lock().unwrap_or_else(PoisonError::into_inner);
            if s.triggered {
                return Poll::Ready(());
            }
            if !s.waiters.iter().any(|w| w.will_wake(cx.waker())) {
                s.waiters.push(cx.waker().clone());
            }
            Poll::Pending
        })
        .await
    }
}

/// Which of two futures finished first.
enum Either<A, B> {
    Left(A),
    Right(B),
}

/// Runs two futures until one completes; the other is dropped (so it must be cancel
/// safe: `accept`, `read` and `Shutdown::wait` are). `a` is polled first.
async fn race<A: Future, B: Future>(a: A, b: B) -> Either<A::Output, B::Output> {
    let (mut a, mut b) = (pin!(a), pin!(b));
    poll_fn(|cx| {
        if let Poll::Ready(v) = a.as_mut().poll(cx) {
            return Poll::Ready(Either::Left(v));
        }
        if let Poll::Ready(v) = b.as_mut().poll(cx) {
            return Poll::Ready(Either::Right(v));
        }
        Poll::Pending
    })
    .await
}

// ===== closing one connection =====

/// Gracefully closes `stream`: FIN, drain until the peer's EOF (at most `deadline`),
/// close. Returns `true` if the peer closed in time.
async fn graceful_close(mut stream: TcpStream, deadline: Duration) -> io::Result<bool> {
    // 1. Signal that we send nothing more: the peer's next read returns EOF.
    stream.shutdown(How::Write)?;
    // 2. Drain what the peer still sends, until its EOF or the deadline.
    let drained = timeout(deadline, async {
        let mut sink = [0u8; 1024];
        while stream.read(&mut sink).await? > 0 {}
        Ok::<(), io::Error>(())
    })
    .await;
    // 3. Close (drop). After a clean drain both sides have exchanged FINs.
    drop(stream);
    match drained {
        Ok(result) => result.map(|()| true),
        Err(_elapsed) => Ok(false),
    }
}

// ===== the server =====

/// How a connection ended, as the server saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    /// Closed gracefully; the peer closed its side in time.
    Clean { requests: usize },
    /// Closed after the drain deadline: the peer never closed its side.
    PeerKeptOpen { requests: usize },
    /// The client closed first (before any shutdown).
    ClientClosed { requests: usize },
    /// Still busy at the overall deadline: aborted.
    Aborted,
}

/// Serves one connection: echo lines until the client closes, or until shutdown once no
/// request is in progress; then close gracefully.
async fn handle(mut stream: TcpStream, shutdown: Shutdown) -> io::Result<Outcome> {
    let mut pending = Vec::new();
    let mut chunk = [0u8; 1024];
    let mut requests = 0;
    loop {
        let n = if pending.is_empty() {
            // Idle between requests: the shutdown signal may end the connection here.
            match race(stream.read(&mut chunk), shutdown.wait()).await {
                Either::Left(n) => n?,
                Either::Right(()) => break,
            }
        } else {
            // In the middle of a request: finish it, signal or not (the server's overall
            // deadline bounds how long this may take).
            stream.read(&mut chunk).await?
        };
        if n == 0 {
            return Ok(Outcome::ClientClosed { requests });
        }
        pending.extend_from_slice(&chunk[..n]);
        while let Some(end) = pending.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = pending.drain(..=end).collect();
            let mut reply = b"echo: ".to_vec();
            reply.extend_from_slice(&line);
            stream.write_all(&reply).await?;
            requests += 1;
        }
        if shutdown.is_triggered() && pending.is_empty() {
            break; // the in-flight request is done
        }
    }
    Ok(if graceful_close(stream, DRAIN_DEADLINE).await? {
        Outcome::Clean { requests }
    } else {
        Outcome::PeerKeptOpen { requests }
    })
}

/// Accepts until the signal, then drains. `stopped` fires once the listener is closed.
async fn serve(listener: TcpListener, shutdown: Shutdown, stopped: Shutdown) -> io::Result<Vec<(Address, Outcome)>> {
    let mut connections: Vec<(Address, JoinHandle<io::Result<Outcome>>)> = Vec::new();
    loop {
        match race(listener.accept(), shutdown.wait()).await {
            Either::Left(Ok(conn)) => {
                connections.push((conn.peer_addr, spawn(handle(conn.stream, shutdown.clone()))));
            }
            Either::Left(Err(e)) => {
                eprintln!("server: accept failed: {e}");
                sleep(Duration::from_millis(20)).await;
            }
            Either::Right(()) => break,
        }
    }
    // 1. Stop accepting: from now on connection attempts are refused.
    drop(listener);
    println!("server: signal received, stopped accepting; draining {} connections", connections.len());
    stopped.trigger();

    // 2-4. Wait for the connection tasks, all under one deadline; abort the rest.
    let deadline = Instant::now() + SHUTDOWN_DEADLINE;
    let mut outcomes = Vec::new();
    for (peer, mut task) in connections {
        let outcome = match timeout_at(deadline, &mut task).await {
            Ok(joined) => joined??,
            Err(_elapsed) => {
                task.abort();
                Outcome::Aborted
            }
        };
        outcomes.push((peer, outcome));
    }
    Ok(outcomes)
}

// ===== the clients =====

fn fail(msg: String) -> io::Error {
    io::Error::other(msg)
}

/// Reads until `want` bytes have arrived (or EOF); returns what came.
async fn read_exact_or_eof(stream: &mut TcpStream, want: usize) -> io::Result<Vec<u8>> {
    let mut out = vec![0u8; want];
    let mut got = 0;
    while got < want {
        let n = stream.read(&mut out[got..]).await?;
        if n == 0 {
            break;
        }
        got += n;
    }
    out.truncate(got);
    Ok(out)
}

/// Sends one complete request and checks its echo.
async fn request(stream: &mut TcpStream, text: &str) -> io::Result<()> {
    stream.write_all(format!("{text}\n").as_bytes()).await?;
    let want = format!("echo: {text}\n");
    let got = read_exact_or_eof(stream, want.len()).await?;
    if got != want.as_bytes() {
        return Err(fail(format!("expected {want:?}, got {:?}", String::from_utf8_lossy(&got))));
    }
    Ok(())
}

/// Expects EOF next (the server closed its side).
async fn expect_eof(stream: &mut TcpStream, who: &str) -> io::Result<()> {
    let mut buf = [0u8; 64];
    match timeout(Duration::from_secs(3), stream.read(&mut buf)).await? {
        Ok(0) => Ok(()),
        Ok(n) => Err(fail(format!("{who}: expected EOF, got {n} more bytes"))),
        Err(e) => Err(fail(format!("{who}: expected EOF, got error {e}"))),
    }
}

async fn run() -> io::Result<()> {
    let listener = TcpListener::bind(Address::loopback_v4(0))?;
    let addr = listener.local_addr()?;
    let (shutdown, stopped) = (Shutdown::default(), Shutdown::default());
    let server = spawn(serve(listener, shutdown.clone(), stopped.clone()));
    println!("server: listening on {addr}");

    // Every client completes one request first, so each is accepted and being served.
    let mut idle = TcpStream::connect(addr).await?;
    request(&mut idle, "hello from idle").await?;
    let mut in_flight = TcpStream::connect(addr).await?;
    request(&mut in_flight, "hello from in-flight").await?;
    let mut stubborn = TcpStream::connect(addr).await?;
    request(&mut stubborn, "hello from stubborn").await?;
    let mut stuck = TcpStream::connect(addr).await?;
    request(&mut stuck, "hello from stuck").await?;
    let names = [
        (idle.local_addr()?, "idle"),
        (in_flight.local_addr()?, "in-flight"),
        (stubborn.local_addr()?, "stubborn"),
        (stuck.local_addr()?, "stuck"),
    ];

    // Two requests are half-sent when the signal comes.
    in_flight.write_all(b"second request, first half").await?;
    stuck.write_all(b"a request that never ends").await?;
    sleep(Duration::from_millis(50)).await; // let the server read the halves

    println!("main: sending the shutdown signal");
    shutdown.trigger();
    stopped.wait().await;

    // Late: refused, because the listener is gone.
    match TcpStream::connect(addr).await {
        Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => println!("late: connection refused, as expected"),
        Err(e) => return Err(fail(format!("late: expected ConnectionRefused, got {e}"))),
        Ok(_) => return Err(fail("late: connected after shutdown".into())),
    }

    // In-flight: finishes its request, gets the answer, then EOF.
    in_flight.write_all(b", second half\n").await?;
    let want = "echo: second request, first half, second half\n";
    let got = read_exact_or_eof(&mut in_flight, want.len()).await?;
    if got != want.as_bytes() {
        return Err(fail(format!("in-flight: expected {want:?}, got {:?}", String::from_utf8_lossy(&got))));
    }
    expect_eof(&mut in_flight, "in-flight").await?;
    drop(in_flight);
    println!("in-flight: finished its request after the signal, then read EOF and closed");

    // Idle: the server closed it at once; it reads EOF and closes too.
    expect_eof(&mut idle, "idle").await?;
    drop(idle);
    println!("idle: read EOF and closed");

    // Stubborn and stuck keep their connections open until the server is done.
    let outcomes = timeout(Duration::from_secs(5), server).await???;
    let mut seen = Vec::new();
    for (peer, outcome) in &outcomes {
        let name = names.iter().find(|(a, _)| a == peer).map_or("?", |(_, n)| *n);
        println!("server: {name:<9} -> {outcome:?}");
        seen.push((name, *outcome));
    }
    let expected = [
        ("idle", Outcome::Clean { requests: 1 }),
        ("in-flight", Outcome::Clean { requests: 2 }),
        ("stubborn", Outcome::PeerKeptOpen { requests: 1 }),
        ("stuck", Outcome::Aborted),
    ];
    if seen != expected {
        return Err(fail(format!("expected outcomes {expected:?}, got {seen:?}")));
    }
    expect_eof(&mut stubborn, "stubborn").await?;
    expect_eof(&mut stuck, "stuck").await?;
    println!("stubborn, stuck: read EOF after the server gave up on them");
    Ok(())
}

fn main() {
    match blitz_io::run(async { timeout(Duration::from_secs(15), run()).await? }) {
        Ok(()) => println!("graceful_shutdown: ok"),
        Err(e) => {
            eprintln!("graceful_shutdown: FAILED: {e}");
            std::process::exit(1);
        }
    }
}
