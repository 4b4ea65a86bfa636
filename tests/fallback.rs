//! Timers outside any runtime (the fallback driver): under `futures_executor::block_on`,
//! on plain threads, and futures that outlive the runtime they were first polled in.

mod support;

use std::future::Future;
use std::pin::Pin;
use std::sync::mpsc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use blitz_io::runtime::{Builder, Runtime};
use blitz_io::time::{interval, sleep, timeout, Sleep};
use support::{thread_names, unique_name, with_timeout};

fn build(multi: bool) -> Runtime {
    let name = unique_name("fb");
    if multi {
        Builder::new_multi_thread().worker_threads(2).thread_name(name).build().unwrap()
    } else {
        Builder::new_current_thread().thread_name(name).build().unwrap()
    }
}

/// Polls `fut` exactly once with the caller's waker and hands it back: the future is
/// then registered with whatever driver it found during that poll.
fn poll_once<F: Future + Unpin>(fut: F) -> impl Future<Output = F> {
    let mut fut = Some(fut);
    std::future::poll_fn(move |cx: &mut Context<'_>| {
        let mut f = fut.take().expect("polled after completion");
        assert!(Pin::new(&mut f).poll(cx).is_pending(), "future completed on its first poll");
        Poll::Ready(f)
    })
}

#[test]
fn sleep_and_timeout_under_a_foreign_executor() {
    with_timeout(10, || {
        let t0 = Instant::now();
        futures_executor::block_on(sleep(Duration::from_millis(20)));
        let took = t0.elapsed();
        assert!(took >= Duration::from_millis(20), "{took:?}");
        assert!(took < Duration::from_secs(1), "{took:?}");

        let r = futures_executor::block_on(timeout(Duration::from_millis(10), std::future::pending::<()>()));
        let e = r.unwrap_err();
        assert_eq!(std::io::Error::from(e).kind(), std::io::ErrorKind::TimedOut);
        let r = futures_executor::block_on(timeout(Duration::from_secs(5), async {
            sleep(Duration::from_millis(5)).await;
            3
        }));
        assert_eq!(r, Ok(3));

        let ticks = futures_executor::block_on(async {
            let mut iv = interval(Duration::from_millis(5));
            let a = iv.tick().await;
            let b = iv.tick().await;
            let c = iv.tick().await;
            (a, b, c)
        });
        assert_eq!(ticks.1 - ticks.0, Duration::from_millis(5));
        assert_eq!(ticks.2 - ticks.1, Duration::from_millis(5));
    });
}

/// Many plain threads sleeping at once through the fallback driver, with one fallback
/// thread in the whole process.
#[test]
fn many_threads_sleep_concurrently_without_a_runtime() {
    with_timeout(20, || {
        let threads: Vec<_> = (0..8u64)
            .map(|t| {
                std::thread::spawn(move || {
                    for k in 0..20u64 {
                        let d = Duration::from_millis(1 + (t * 7 + k * 3) % 10);
                        let t0 = Instant::now();
                        futures_executor::block_on(sleep(d));
                        assert!(t0.elapsed() >= d);
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let fallback = thread_names().iter().filter(|n| n.starts_with("blitz-io-fall")).count();
        assert_eq!(fallback, 1, "one fallback driver thread for the whole process");
    });
}

/// A sleep first polled inside a runtime (so registered with that runtime's driver), then
/// polled again after the runtime was dropped, still completes: not early, not never.
#[test]
fn sleep_outlives_its_runtime() {
    with_timeout(10, || {
        for multi in [false, true] {
            let rt = build(multi);
            let deadline = Instant::now() + Duration::from_millis(60);
            let s: Pin<Box<Sleep>> = rt.block_on(poll_once(Box::pin(blitz_io::time::sleep_until(deadline))));
            drop(rt);
            futures_executor::block_on(s);
            let now = Instant::now();
            assert!(now >= deadline, "multi={multi}: completed early");
            assert!(now - deadline < Duration::from_millis(500), "multi={multi}: late by {:?}", now - deadline);
        }
    });
}

/// The same with a `timeout` future, and with the second poll inside another runtime.
#[test]
fn timeout_outlives_its_runtime_and_moves_to_another() {
    with_timeout(10, || {
        for multi in [false, true] {
            let rt = build(multi);
            let t = rt.block_on(poll_once(Box::pin(timeout(Duration::from_millis(40), std::future::pending::<()>()))));
            drop(rt);
            let t0 = Instant::now();
            assert!(futures_executor::block_on(t).is_err());
            assert!(t0.elapsed() < Duration::from_millis(500));

            let rt = build(multi);
            let deadline = Instant::now() + Duration::from_millis(30);
            let s = rt.block_on(poll_once(Box::pin(blitz_io::time::sleep_until(deadline))));
            drop(rt);
            let other = build(!multi);
            other.block_on(s);
            assert!(Instant::now() >= deadline);
            assert!(Instant::now() - deadline < Duration::from_millis(500));
        }
    });
}

/// A runtime's task awaited from a foreign executor on another thread (the JoinHandle is
/// an ordinary future).
#[test]
fn join_handle_awaited_on_a_foreign_executor() {
    with_timeout(10, || {
        let rt = build(true);
        let h = rt.spawn(async {
            sleep(Duration::from_millis(10)).await;
            11
        });
        let v = std::thread::spawn(move || futures_executor::block_on(h)).join().unwrap();
        assert_eq!(v.unwrap(), 11);
    });
}

/// A blocking closure of a current-thread runtime that nobody drives (no thread is in
/// `block_on`) sleeps with a foreign executor: the sleep registers with the runtime's
/// driver (the thread is in the runtime's context), which nobody turns.
#[test]
fn sleep_in_blocking_closure_of_idle_current_thread_runtime() {
    with_timeout(10, || {
        let rt = build(false);
        let (tx, rx) = mpsc::channel();
        let _h = rt.spawn_blocking(move || {
            let t0 = Instant::now();
            futures_executor::block_on(sleep(Duration::from_millis(10)));
            let _ = tx.send(t0.elapsed());
        });
        // The main thread is NOT in block_on: it waits on a std channel.
        let took = rx.recv_timeout(Duration::from_secs(2)).expect("sleep(10ms) never completed");
        assert!(took >= Duration::from_millis(10));
        drop(rt);
    });
}

/// A sleep first polled inside a current-thread runtime that is still alive but no longer
/// driven (its `block_on` returned), then awaited elsewhere (another runtime, or a
/// foreign executor): it stays registered with the undriven runtime's wheel.
#[test]
fn sleep_moved_out_of_an_undriven_current_thread_runtime() {
    with_timeout(10, || {
        let a = build(false);
        let deadline = Instant::now() + Duration::from_millis(20);
        let s = a.block_on(poll_once(Box::pin(blitz_io::time::sleep_until(deadline))));
        // `a` stays alive, nobody is in its block_on.
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            futures_executor::block_on(s);
            let _ = tx.send(Instant::now());
        });
        let done = rx.recv_timeout(Duration::from_secs(2));
        drop(a);
        let done = done.expect("sleep never completed on a foreign executor");
        assert!(done >= deadline);
    });
}
