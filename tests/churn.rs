//! Churn: resources come back after heavy turnover.
//!
//! - `connection_churn_20k`: 20,000 connect / one round trip / close cycles against one
//!   server on a 2-worker runtime (32 client loops at once). Every response is checked;
//!   the server sees every connection end with EOF. Afterwards the open sockets, epoll
//!   instances and eventfds (`/proc/self/fd`) and threads (`/proc/self/task`) return to
//!   what they were with the idle runtime, and after dropping the runtime to what they
//!   were before it existed.
//! - `runtime_churn_200`: 200 runtimes (current-thread and 1-, 2-, 3-worker
//!   multi-thread, in turn) each get three tasks parked in `accept`, `read` and `sleep`,
//!   each task holding a drop guard, and are dropped. Dropping a runtime must drop the
//!   futures of its parked tasks (all 600 guards counted, each runtime's three by the
//!   time its drop returns) and give back its threads and descriptors.
//!
//! The two tests count process-wide resources, so they take a lock and never overlap;
//! threads of the test harness itself (named after the tests) are not counted.

mod support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use blitz_io::net::{Address, TcpListener, TcpStream};
use blitz_io::runtime::{Builder, Runtime};
use blitz_io::time::sleep;
use support::{eventually, fd_targets, runtime_fds, thread_names, with_timeout, DropCount};

static SERIAL: Mutex<()> = Mutex::new(());

/// libtest names each test's thread after the test (cut to 15 bytes in /proc).
const HARNESS_THREADS: [&str; 2] = ["connection_chur", "runtime_churn_2"];

const CYCLES: usize = 20_000;
const CLIENT_LOOPS: usize = 32;
const RUNTIMES: usize = 200;

fn threads() -> usize {
    thread_names().iter().filter(|n| !HARNESS_THREADS.contains(&n.as_str())).count()
}

/// Polls until both counts are back to (at most) the given baseline, with a deadline;
/// fails with the numbers if they do not settle.
fn assert_settles(what: &str, fd_base: usize, thread_base: usize) {
    let ok = eventually(Duration::from_secs(10), || runtime_fds() <= fd_base && threads() <= thread_base);
    assert!(
        ok,
        "{what}: descriptors {} (baseline {fd_base}), threads {} (baseline {thread_base}): {:?}; open: {:?}",
        runtime_fds(),
        threads(),
        thread_names(),
        fd_targets()
    );
}

fn request(i: usize) -> [u8; 16] {
    let mut r = [0u8; 16];
    r[..8].copy_from_slice(&(i as u64).to_le_bytes());
    r[8..].copy_from_slice(&(i as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15).to_le_bytes());
    r
}

/// The server's answer: the request with every byte inverted.
fn response(req: &[u8; 16]) -> [u8; 16] {
    req.map(|b| !b)
}

#[test]
fn connection_churn_20k() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    with_timeout(60, || {
        let (fd_before, th_before) = (runtime_fds(), threads());
        let rt = Builder::new_multi_thread().worker_threads(2).thread_name("churn").build().unwrap();
        // The idle runtime's own resources (lazily created ones included).
        rt.block_on(sleep(Duration::from_millis(1)));
        let (fd_idle, th_idle) = (runtime_fds(), threads());
        let started = Instant::now();

        let server_done = Arc::new(AtomicUsize::new(0));
        let client_done = Arc::new(AtomicUsize::new(0));
        let (sd, cd) = (server_done.clone(), client_done.clone());
        rt.block_on(async move {
            let listener = TcpListener::bind(Address::loopback_v4(0)).unwrap();
            let addr = listener.local_addr().unwrap();
            let acceptor = blitz_io::task::spawn(async move {
                for _ in 0..CYCLES {
                    let mut s = listener.accept().await.unwrap().stream;
                    let sd = sd.clone();
                    blitz_io::task::spawn(async move {
                        let mut req = [0u8; 16];
                        let mut n = 0;
                        while n < 16 {
                            let k = s.read(&mut req[n..]).await.unwrap();
                            assert_ne!(k, 0, "server: EOF inside the request");
                            n += k;
                        }
                        s.write_all(&response(&req)).await.unwrap();
                        let mut rest = [0u8; 1];
                        assert_eq!(s.read(&mut rest).await.unwrap(), 0, "server: expected EOF after the request");
                        sd.fetch_add(1, Ordering::SeqCst);
                    });
                }
                // `listener` is dropped here: its descriptor must go back too.
            });
            let mut loops = Vec::new();
            for l in 0..CLIENT_LOOPS {
                let cd = cd.clone();
                loops.push(blitz_io::task::spawn(async move {
                    for i in (l..CYCLES).step_by(CLIENT_LOOPS) {
                        let mut s = TcpStream::connect(addr).await.unwrap_or_else(|e| panic!("cycle {i}: {e}"));
                        let req = request(i);
                        s.write_all(&req).await.unwrap();
                        let mut got = [0u8; 16];
                        let mut n = 0;
                        while n < 16 {
                            let k = s.read(&mut got[n..]).await.unwrap();
                            assert_ne!(k, 0, "cycle {i}: EOF inside the response");
                            n += k;
                        }
                        assert_eq!(got, response(&req), "cycle {i}: wrong response");
                        drop(s);
                        cd.fetch_add(1, Ordering::SeqCst);
                    }
                }));
            }
            for h in loops {
                h.await.unwrap();
            }
            acceptor.await.unwrap();
        });
        assert_eq!(client_done.load(Ordering::SeqCst), CYCLES, "client cycles completed");
        assert!(
            eventually(Duration::from_secs(10), || server_done.load(Ordering::SeqCst) == CYCLES),
            "server connections that ended with EOF: {} of {CYCLES}",
            server_done.load(Ordering::SeqCst)
        );
        let churn_time = started.elapsed();
        assert_settles("after 20,000 connections, runtime alive", fd_idle, th_idle);
        drop(rt);
        assert_settles("after dropping the runtime", fd_before, th_before);
        println!(
            "churn: {CYCLES} connect/round-trip/close cycles in {:.2} s; descriptors {fd_before} -> {fd_idle} (idle \
             runtime) -> {} (after), threads {th_before} -> {th_idle} -> {}",
            churn_time.as_secs_f64(),
            runtime_fds(),
            threads()
        );
    });
}

fn build(i: usize) -> Runtime {
    match i % 4 {
        0 => Builder::new_current_thread().thread_name("rtchurn").build().unwrap(),
        w => Builder::new_multi_thread().worker_threads(w).thread_name("rtchurn").build().unwrap(),
    }
}

#[test]
fn runtime_churn_200() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    with_timeout(60, || {
        let (fd_before, th_before) = (runtime_fds(), threads());
        let dropped = Arc::new(AtomicUsize::new(0));
        let started = Instant::now();
        for i in 0..RUNTIMES {
            let rt = build(i);
            let parked = Arc::new(AtomicUsize::new(0));
            rt.block_on(async {
                // A listener nobody connects to: its task parks in accept.
                let idle_listener = TcpListener::bind(Address::loopback_v4(0)).unwrap();
                // A connected pair nobody writes to: the server end's task parks in read.
                let pair_listener = TcpListener::bind(Address::loopback_v4(0)).unwrap();
                let client = TcpStream::connect(pair_listener.local_addr().unwrap()).await.unwrap();
                let mut server = pair_listener.accept().await.unwrap().stream;
                drop(pair_listener);

                let (g, p) = (DropCount(dropped.clone()), parked.clone());
                blitz_io::task::spawn(async move {
                    let _g = g;
                    p.fetch_add(1, Ordering::SeqCst);
                    let r = idle_listener.accept().await;
                    panic!("accept returned: {:?}", r.map(|a| a.peer_addr));
                });
                let (g, p) = (DropCount(dropped.clone()), parked.clone());
                blitz_io::task::spawn(async move {
                    let _g = g;
                    let _client = client; // keeps the connection open
                    p.fetch_add(1, Ordering::SeqCst);
                    let mut buf = [0u8; 64];
                    let r = server.read(&mut buf).await;
                    panic!("read returned: {r:?}");
                });
                let (g, p) = (DropCount(dropped.clone()), parked.clone());
                blitz_io::task::spawn(async move {
                    let _g = g;
                    p.fetch_add(1, Ordering::SeqCst);
                    sleep(Duration::from_secs(3600)).await;
                    panic!("slept an hour");
                });
                // Let all three reach their await (a current-thread runtime runs them
                // only while this block_on polls).
                while parked.load(Ordering::SeqCst) < 3 {
                    blitz_io::task::yield_now().await;
                }
                sleep(Duration::from_millis(1)).await;
            });
            assert_eq!(parked.load(Ordering::SeqCst), 3);
            drop(rt);
            assert_eq!(
                dropped.load(Ordering::SeqCst),
                3 * (i + 1),
                "runtime {i} (flavour {}): parked futures not all dropped when the runtime's drop returned",
                i % 4
            );
        }
        assert_eq!(dropped.load(Ordering::SeqCst), 3 * RUNTIMES);
        assert_settles("after 200 runtimes", fd_before, th_before);
        println!(
            "runtime churn: {RUNTIMES} runtimes built, loaded and dropped in {:.2} s; {} parked futures dropped; \
             descriptors {fd_before} -> {}, threads {th_before} -> {}",
            started.elapsed().as_secs_f64(),
            dropped.load(Ordering::SeqCst),
            runtime_fds(),
            threads()
        );
    });
}
