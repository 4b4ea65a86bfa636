//! The multi-thread scheduler's watchdog: a worker stuck in one long poll does not stop
//! the rest of the runtime.
//!
//! Only the last idle worker sleeps in the I/O driver; the others sleep on a condvar
//! and trust the awake worker to turn the driver between its tasks. When that worker is
//! stuck in a poll that never yields, the watchdog of a sleeping worker must notice and
//! take over the driver and the stuck worker's queue. Each test would hang (and fail on
//! its time bound) for the length of the stuck poll without it.

mod support;

use std::io::{Read as _, Write as _};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use blitz_io::net::{TcpListener, TcpStream};
use blitz_io::runtime::{Builder, Runtime};
use blitz_io::task;
use blitz_io::time::sleep;
use support::{read_full, unique_name, with_timeout};

/// How long the stuck task blocks its worker.
const STUCK: Duration = Duration::from_secs(3);
/// Bound on work that must not wait for the stuck task (a third of `STUCK`).
const BOUND: Duration = Duration::from_secs(1);

fn multi() -> Runtime {
    Builder::new_multi_thread().worker_threads(2).thread_name(unique_name("wd")).build().unwrap()
}

/// Spawns a task that blocks its worker thread for `STUCK`, and waits until it runs.
fn spawn_stuck(rt: &Runtime) -> task::JoinHandle<()> {
    let started = Arc::new(AtomicBool::new(false));
    let s = started.clone();
    let h = rt.spawn(async move {
        s.store(true, Ordering::SeqCst);
        std::thread::sleep(STUCK);
    });
    while !started.load(Ordering::SeqCst) {
        std::thread::sleep(Duration::from_millis(1));
    }
    // Let the other worker run dry and go to sleep while this one is stuck.
    std::thread::sleep(Duration::from_millis(50));
    h
}

#[test]
fn timer_fires_while_a_worker_is_stuck() {
    with_timeout(20, || {
        let rt = multi();
        let stuck = spawn_stuck(&rt);
        let t0 = Instant::now();
        rt.block_on(sleep(Duration::from_millis(20)));
        let took = t0.elapsed();
        println!("20 ms sleep with one worker stuck: {took:?}");
        assert!(took < BOUND, "a 20 ms timer took {took:?} while one worker was stuck");
        assert!(took >= Duration::from_millis(20), "timer fired early: {took:?}");
        rt.block_on(stuck).unwrap();
    });
}

/// The sleeping worker looks less often while the awake one keeps turning the driver
/// (its watchdog timeout grows while things go well). A worker that gets stuck after a
/// long busy stretch must still be noticed.
#[test]
fn a_worker_stuck_after_a_busy_stretch_is_still_noticed() {
    with_timeout(20, || {
        let rt = multi();
        let stuck_now = Arc::new(AtomicBool::new(false));
        let s = stuck_now.clone();
        let busy_then_stuck = rt.spawn(async move {
            // 300 ms of short polls: the worker turns the driver every few dozen of them.
            let t = Instant::now();
            while t.elapsed() < Duration::from_millis(300) {
                task::yield_now().await;
            }
            s.store(true, Ordering::SeqCst);
            std::thread::sleep(STUCK);
        });
        while !stuck_now.load(Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(1));
        }
        let t0 = Instant::now();
        rt.block_on(sleep(Duration::from_millis(20)));
        let took = t0.elapsed();
        println!("20 ms sleep with a worker stuck after a busy stretch: {took:?}");
        // The sleeper's timeout had grown to at most 32 ms: it notices within ~64 ms.
        // 500 ms leaves room for a loaded machine and still fails if the timeout grew
        // unbounded or did not come back down.
        assert!(took < Duration::from_millis(500), "a 20 ms timer took {took:?} while one worker was stuck");
        rt.block_on(busy_then_stuck).unwrap();
    });
}

#[test]
fn io_and_spawned_tasks_progress_while_a_worker_is_stuck() {
    with_timeout(20, || {
        let rt = multi();
        let stuck = spawn_stuck(&rt);
        let t0 = Instant::now();
        let echoed = rt.block_on(async {
            let listener = TcpListener::bind(([127, 0, 0, 1], 0)).unwrap();
            let addr = listener.local_addr().unwrap();
            let server = task::spawn(async move {
                let mut s = listener.accept().await.unwrap().stream;
                let mut buf = [0u8; 5];
                read_full(&mut s, &mut buf).await;
                s.write_all(&buf).await.unwrap();
            });
            let mut c = TcpStream::connect(addr).await.unwrap();
            c.write_all(b"hello").await.unwrap();
            let mut buf = [0u8; 5];
            read_full(&mut c, &mut buf).await;
            server.await.unwrap();
            buf
        });
        let took = t0.elapsed();
        println!("TCP echo through a spawned task with one worker stuck: {took:?}");
        assert_eq!(&echoed, b"hello");
        assert!(took < BOUND, "echo took {took:?} while one worker was stuck");
        rt.block_on(stuck).unwrap();
    });
}

/// Two requests readable in the same driver batch, each handled by a poll that blocks
/// for 300 ms: the second must not wait behind the first (the watchdog steals it).
#[test]
fn long_handlers_from_one_io_batch_run_in_parallel() {
    with_timeout(20, || {
        let rt = multi();
        let a = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = a.local_addr().unwrap();
        let mut clients: Vec<std::net::TcpStream> =
            (0..2).map(|_| std::net::TcpStream::connect(addr).unwrap()).collect();
        let servers: Vec<std::net::TcpStream> = (0..2).map(|_| a.accept().unwrap().0).collect();
        let took = rt.block_on(async move {
            let mut handlers = Vec::new();
            for s in servers {
                s.set_nonblocking(true).unwrap();
                let mut s = TcpStream::from_std(s).unwrap();
                handlers.push(task::spawn(async move {
                    let mut b = [0u8; 1];
                    read_full(&mut s, &mut b).await;
                    // A handler that computes for a while without yielding.
                    std::thread::sleep(Duration::from_millis(300));
                    s.write_all(&b).await.unwrap();
                }));
            }
            // Both handlers are now pending on their reads.
            sleep(Duration::from_millis(50)).await;
            let t0 = Instant::now();
            for c in &mut clients {
                c.write_all(b"x").unwrap();
            }
            for h in handlers {
                h.await.unwrap();
            }
            let took = t0.elapsed();
            for c in &mut clients {
                let mut b = [0u8; 1];
                c.read_exact(&mut b).unwrap();
                assert_eq!(&b, b"x");
            }
            took
        });
        println!("two 300 ms handlers woken by one I/O batch: {took:?}");
        assert!(took < Duration::from_millis(550), "the handlers ran one after the other: {took:?}");
    });
}
