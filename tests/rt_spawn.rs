//! Spawning: many tasks, spawning from every kind of context, `Handle::current`, panics,
//! abort, `is_finished`, `yield_now` and detaching.

mod support;

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use blitz_io::runtime::{Builder, Handle, Runtime};
use blitz_io::task::{self, JoinHandle};
use blitz_io::time::sleep;
use support::{build_runtime, eventually, oneshot, threads_named, unique_name, with_timeout, DropFlag, Flavor};

const FLAVORS: [Flavor; 2] = [Flavor::Current, Flavor::Multi(2)];

fn build(flavor: Flavor, name: &str) -> Runtime {
    build_runtime(flavor, name)
}

fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&'static str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        String::from("<non-string payload>")
    }
}

const N_TASKS: u64 = 100_000;

fn many_tasks(flavor: Flavor) {
    let rt = build(flavor, &unique_name("sp-many"));
    let sum = rt.block_on(async {
        let handles: Vec<JoinHandle<u64>> = (0..N_TASKS).map(|i| task::spawn(async move { i * 3 })).collect();
        let mut sum = 0u64;
        for h in handles {
            sum += h.await.unwrap();
        }
        sum
    });
    assert_eq!(sum, 3 * N_TASKS * (N_TASKS - 1) / 2, "{flavor:?}");
}

#[test]
fn hundred_thousand_tasks_on_two_workers() {
    with_timeout(30, || many_tasks(Flavor::Multi(2)));
}

#[test]
fn hundred_thousand_tasks_on_current_thread() {
    with_timeout(30, || many_tasks(Flavor::Current));
}

/// Task allocations of many sizes (futures capturing 8 B to 2 KiB, across the
/// per-thread allocation cache's classes and past its 1 KiB limit) and an over-aligned
/// one, spawned in bursts and freed on the scheduler's threads, on a foreign thread, and
/// after `block_on` returned: every output comes back intact. (A block recycled into the
/// wrong class is overwritten by its next task: this test aborts or fails then; checked
/// by mutation.)
#[test]
fn tasks_of_every_size_and_alignment_are_recycled_safely() {
    #[repr(align(128))]
    struct Aligned(u64);

    /// A task whose future holds `N` bytes, each `seed`; it yields once (so it is
    /// polled twice, from its block) and returns the bytes' sum.
    fn sized<const N: usize>(seed: u8) -> JoinHandle<u64> {
        let bytes = [seed; N];
        task::spawn(async move {
            task::yield_now().await;
            bytes.iter().map(|&b| b as u64).sum::<u64>()
        })
    }
    /// Spawns one task of each size for `seed`; returns (handle, expected sum) pairs.
    fn burst(seed: u8) -> Vec<(JoinHandle<u64>, u64)> {
        let s = seed as u64;
        vec![
            (sized::<8>(seed), 8 * s),
            (sized::<9>(seed), 9 * s),
            (sized::<24>(seed), 24 * s),
            (sized::<40>(seed), 40 * s),
            (sized::<57>(seed), 57 * s),
            (sized::<100>(seed), 100 * s),
            (sized::<255>(seed), 255 * s),
            (sized::<512>(seed), 512 * s),
            (sized::<900>(seed), 900 * s),
            (sized::<1000>(seed), 1000 * s),
            (sized::<1024>(seed), 1024 * s),
            (sized::<2048>(seed), 2048 * s),
        ]
    }
    for flavor in FLAVORS {
        with_timeout(30, move || {
            let rt = build(flavor, &unique_name("sp-sizes"));
            let kept: Vec<(JoinHandle<u64>, u64)> = rt.block_on(async {
                for round in 0..4u8 {
                    let mut all = Vec::new();
                    let mut aligned = Vec::new();
                    for i in 0..60u8 {
                        all.extend(burst(round.wrapping_mul(61).wrapping_add(i)));
                        let a = Aligned(i as u64);
                        aligned.push(task::spawn(async move {
                            let addr = &a as *const Aligned as usize;
                            assert_eq!(addr % 128, 0, "over-aligned future misplaced");
                            a.0
                        }));
                    }
                    // Join two thirds here; drop the rest's handles on a foreign thread
                    // once they finished (their blocks are freed there).
                    let mut foreign = Vec::new();
                    for (i, (h, want)) in all.into_iter().enumerate() {
                        if i % 3 == 2 {
                            foreign.push(h);
                        } else {
                            assert_eq!(h.await.unwrap(), want, "task {i} of round {round}");
                        }
                    }
                    while !foreign.iter().all(|h| h.is_finished()) {
                        task::yield_now().await;
                    }
                    std::thread::spawn(move || drop(foreign)).join().unwrap();
                    for (i, h) in aligned.into_iter().enumerate() {
                        assert_eq!(h.await.unwrap(), i as u64);
                    }
                }
                // Handles that outlive this `block_on`; their tasks complete first (a
                // current-thread runtime runs tasks only inside `block_on`).
                let kept = burst(7);
                while !kept.iter().all(|(h, _)| h.is_finished()) {
                    task::yield_now().await;
                }
                kept
            });
            // Joined from a plain thread after `block_on` returned.
            futures_executor::block_on(async {
                for (h, want) in kept {
                    assert_eq!(h.await.unwrap(), want, "{flavor:?}");
                }
            });
            drop(rt);
        });
    }
}

/// Tasks that yield and spawn more tasks from inside tasks: a tree of 4^6 leaves.
#[test]
fn spawn_tree_from_inside_tasks() {
    fn node(depth: u32) -> std::pin::Pin<Box<dyn std::future::Future<Output = u64> + Send>> {
        Box::pin(async move {
            if depth == 0 {
                task::yield_now().await;
                return 1;
            }
            let children: Vec<_> = (0..4).map(|_| task::spawn(node(depth - 1))).collect();
            let mut n = 0;
            for c in children {
                n += c.await.unwrap();
            }
            n
        })
    }
    with_timeout(30, || {
        for flavor in FLAVORS {
            let rt = build(flavor, &unique_name("sp-tree"));
            let leaves = rt.block_on(async { task::spawn(node(6)).await.unwrap() });
            assert_eq!(leaves, 4096, "{flavor:?}");
        }
    });
}

/// `Runtime::spawn` and `Handle::spawn` from a thread outside the runtime, while the
/// runtime is busy in `block_on` on another thread.
#[test]
fn spawn_from_another_thread_via_handle() {
    with_timeout(20, || {
        for flavor in FLAVORS {
            let rt = build(flavor, &unique_name("sp-hdl"));
            let handle = rt.handle().clone();
            let (tx, rx) = oneshot::<u64>();
            let outsider = std::thread::spawn(move || {
                // Several tasks from a foreign thread; the last one reports the total.
                let parts: Vec<_> = (1..=10u64).map(|i| handle.spawn(async move { i })).collect();
                handle.spawn(async move {
                    let mut total = 0;
                    for p in parts {
                        total += p.await.unwrap();
                    }
                    tx.send(total);
                });
            });
            let got = rt.block_on(async { blitz_io::time::timeout(Duration::from_secs(5), rx).await });
            outsider.join().unwrap();
            assert_eq!(got, Ok(Some(55)), "{flavor:?}");
        }
    });
}

/// `Handle::block_on` from a foreign thread: spawns and timers work there.
#[test]
fn handle_block_on_from_another_thread() {
    with_timeout(20, || {
        for flavor in FLAVORS {
            let rt = build(flavor, &unique_name("sp-hbo"));
            let handle = rt.handle().clone();
            let v = std::thread::spawn(move || {
                handle.block_on(async {
                    assert!(Handle::try_current().is_ok(), "inside Handle::block_on");
                    sleep(Duration::from_millis(5)).await;
                    task::spawn(async { 21 * 2 }).await.unwrap()
                })
            })
            .join()
            .unwrap();
            assert_eq!(v, 42, "{flavor:?}");
            drop(rt);
        }
    });
}

/// Two `block_on` calls of one runtime on two threads: the second waits while the first
/// drives, and when the first returns, the second takes over driving, so its spawned
/// task and that task's timer still run. (On the current-thread flavour a `block_on`
/// that found the runtime driven used to wait for ever once the driver left.)
#[test]
fn second_block_on_takes_over_when_the_first_returns() {
    with_timeout(20, || {
        for flavor in FLAVORS {
            let rt = Arc::new(build(flavor, &unique_name("sp-2bo")));
            let (started_tx, started_rx) = std::sync::mpsc::channel();
            let first = {
                let rt = rt.clone();
                std::thread::spawn(move || {
                    rt.block_on(async move {
                        started_tx.send(()).unwrap();
                        sleep(Duration::from_millis(50)).await;
                    })
                })
            };
            started_rx.recv().unwrap();
            let second = {
                let handle = rt.handle().clone();
                std::thread::spawn(move || {
                    handle.block_on(async {
                        // Outlives the first `block_on` by far.
                        task::spawn(async {
                            sleep(Duration::from_millis(300)).await;
                            7
                        })
                        .await
                        .unwrap()
                    })
                })
            };
            first.join().unwrap();
            assert_eq!(second.join().unwrap(), 7, "{flavor:?}");
            // And the runtime is driven again by the next `block_on` after both.
            assert_eq!(rt.block_on(async { task::spawn(async { 8 }).await.unwrap() }), 8, "{flavor:?}");
        }
    });
}

#[test]
fn spawn_from_spawn_blocking() {
    with_timeout(20, || {
        for flavor in FLAVORS {
            let rt = build(flavor, &unique_name("sp-blk"));
            let v = rt.block_on(async {
                let inner = task::spawn_blocking(|| {
                    let h = Handle::current();
                    let a = task::spawn(async { 40 });
                    let b = h.spawn(async {
                        sleep(Duration::from_millis(2)).await;
                        2
                    });
                    (a, b)
                })
                .await
                .unwrap();
                inner.0.await.unwrap() + inner.1.await.unwrap()
            });
            assert_eq!(v, 42, "{flavor:?}");
        }
    });
}

#[test]
fn handle_current_inside_tasks_and_blocking_closures() {
    with_timeout(20, || {
        for flavor in FLAVORS {
            let rt = build(flavor, &unique_name("sp-cur"));
            let (in_task, in_blocking, nested) = rt.block_on(async {
                let t = task::spawn(async { Handle::try_current().is_ok() }).await.unwrap();
                let b = task::spawn_blocking(|| Handle::try_current().is_ok()).await.unwrap();
                // A Handle taken inside a task spawns onto the same runtime.
                let n = task::spawn(async { Handle::current().spawn(async { 7 }).await.unwrap() }).await.unwrap();
                (t, b, n)
            });
            assert!(in_task, "{flavor:?}: Handle::try_current inside a task");
            assert!(in_blocking, "{flavor:?}: Handle::try_current inside spawn_blocking");
            assert_eq!(nested, 7);
        }
    });
}

#[test]
fn try_current_errors_outside_and_after_block_on() {
    with_timeout(10, || {
        let err = Handle::try_current().unwrap_err();
        assert!(err.to_string().contains("blitz_io::run"), "hint in the error: {err}");
        let rt = build(Flavor::Current, &unique_name("sp-try"));
        assert!(rt.block_on(async { Handle::try_current().is_ok() }));
        assert!(Handle::try_current().is_err(), "the context must be left after block_on");
        let p = catch_unwind(Handle::current).unwrap_err();
        assert!(panic_message(&*p).contains("blitz-io runtime"), "{}", panic_message(&*p));
    });
}

#[test]
fn spawn_outside_a_runtime_panics_naming_blitz_io_run() {
    with_timeout(10, || {
        let p = catch_unwind(|| {
            drop(task::spawn(async {}));
        })
        .unwrap_err();
        let msg = panic_message(&*p);
        assert!(msg.contains("blitz_io::run"), "message: {msg}");

        let p = catch_unwind(|| {
            drop(task::spawn_blocking(|| ()));
        })
        .unwrap_err();
        let msg = panic_message(&*p);
        assert!(msg.contains("blitz_io::run"), "message: {msg}");
    });
}

fn panics_do_not_hurt(flavor: Flavor) {
    let name = unique_name("sp-pan");
    let rt = build(flavor, &name);
    let expected = if let Flavor::Multi(n) = flavor { n } else { 0 };
    // A new thread names itself once it runs: give it a moment.
    assert!(
        eventually(Duration::from_secs(2), || threads_named(&name) == expected),
        "{flavor:?}: worker threads carry the builder's name ({} found)",
        threads_named(&name)
    );
    let workers_before = expected;
    rt.block_on(async {
        // (a runtime value, so the payload is a formatted String, not a folded &str)
        let n = std::hint::black_box(42);
        let err = task::spawn(async move { panic!("boom-{n}") }).await.unwrap_err();
        assert!(err.is_panic() && !err.is_cancelled());
        assert!(err.to_string().contains("boom-42"), "Display: {err}");
        let payload = err.into_panic();
        assert_eq!(payload.downcast_ref::<String>().map(String::as_str), Some("boom-42"));

        let err = task::spawn(async { std::panic::panic_any(17u32) }).await.unwrap_err();
        assert_eq!(err.into_panic().downcast_ref::<u32>(), Some(&17));

        // A panic after an await point, many of them, on every worker.
        let hs: Vec<_> = (0..50)
            .map(|i| {
                task::spawn(async move {
                    task::yield_now().await;
                    if i % 2 == 0 {
                        panic!("even {i}");
                    }
                    i
                })
            })
            .collect();
        for (i, h) in hs.into_iter().enumerate() {
            match h.await {
                Ok(v) => assert_eq!(v, i),
                Err(e) => {
                    assert!(i % 2 == 0);
                    assert!(e.is_panic());
                }
            }
        }
    });
    // The runtime still works: 1000 more tasks.
    let sum = rt.block_on(async {
        let hs: Vec<_> = (0..1000u64).map(|i| task::spawn(async move { i })).collect();
        let mut s = 0;
        for h in hs {
            s += h.await.unwrap();
        }
        s
    });
    assert_eq!(sum, 999 * 1000 / 2);
    // Same worker threads as before: a panic neither kills nor replaces a worker.
    assert_eq!(threads_named(&name), workers_before, "{flavor:?}: worker count changed");
}

#[test]
fn panicking_task_is_reported_and_runtime_survives_multi_thread() {
    with_timeout(20, || panics_do_not_hurt(Flavor::Multi(2)));
}

#[test]
fn panicking_task_is_reported_and_runtime_survives_current_thread() {
    with_timeout(20, || panics_do_not_hurt(Flavor::Current));
}

/// A panic in `block_on`'s own future propagates to the caller, and the runtime stays
/// usable (its spawned tasks too).
#[test]
fn block_on_panic_leaves_runtime_usable() {
    with_timeout(20, || {
        for flavor in FLAVORS {
            let rt = build(flavor, &unique_name("sp-bop"));
            let bg = rt.spawn(async {
                sleep(Duration::from_millis(30)).await;
                5
            });
            let r = catch_unwind(AssertUnwindSafe(|| {
                rt.block_on(async {
                    task::yield_now().await;
                    panic!("main future panics");
                })
            }));
            assert!(r.is_err());
            assert!(Handle::try_current().is_err(), "context restored after a panic");
            let v = rt.block_on(async { bg.await.unwrap() + task::spawn(async { 1 }).await.unwrap() });
            assert_eq!(v, 6, "{flavor:?}");
        }
    });
}

#[test]
fn abort_pending_task_is_cancelled() {
    with_timeout(20, || {
        for flavor in FLAVORS {
            let rt = build(flavor, &unique_name("sp-abp"));
            rt.block_on(async {
                let (guard, dropped) = DropFlag::new();
                let h = task::spawn(async move {
                    let _g = guard;
                    std::future::pending::<()>().await;
                });
                task::yield_now().await; // let it start and park
                assert!(!h.is_finished());
                h.abort();
                let err = h.await.unwrap_err();
                assert!(err.is_cancelled() && !err.is_panic(), "{flavor:?}");
                assert!(dropped.load(Ordering::SeqCst), "future dropped by abort");
                assert_eq!(err.to_string(), "task was cancelled");
                assert!(err.try_into_panic().is_err());

                // Aborted before it ever ran.
                let ran = Arc::new(AtomicBool::new(false));
                let r2 = ran.clone();
                let h = task::spawn(async move { r2.store(true, Ordering::SeqCst) });
                h.abort();
                match h.await {
                    Err(e) => {
                        assert!(e.is_cancelled());
                        assert!(!ran.load(Ordering::SeqCst), "cancelled, yet the body ran");
                    }
                    // On multi_thread a worker may have raced ahead and finished it
                    // before the abort; on current_thread it cannot have.
                    Ok(()) => {
                        assert!(matches!(flavor, Flavor::Multi(_)), "aborted before first poll must not run");
                        assert!(ran.load(Ordering::SeqCst));
                    }
                }
            });
        }
    });
}

/// Aborting a task parked on a sleep drops its future promptly (without awaiting the
/// handle), and the sleep's timer does not fire into a dead task afterwards.
#[test]
fn abort_sleeping_task_drops_its_future() {
    with_timeout(20, || {
        for flavor in FLAVORS {
            let rt = build(flavor, &unique_name("sp-abs"));
            let (guard, dropped) = DropFlag::new();
            let finished = Arc::new(AtomicBool::new(false));
            let f2 = finished.clone();
            let h = rt.spawn(async move {
                let _g = guard;
                sleep(Duration::from_secs(30)).await;
                f2.store(true, Ordering::SeqCst);
            });
            rt.block_on(async {
                sleep(Duration::from_millis(20)).await;
                assert!(!h.is_finished());
                h.abort();
                // The drop happens on the runtime, not when the handle is awaited.
                let t0 = std::time::Instant::now();
                while !dropped.load(Ordering::SeqCst) {
                    assert!(t0.elapsed() < Duration::from_secs(2), "{flavor:?}: aborted future not dropped");
                    sleep(Duration::from_millis(1)).await;
                }
                // The future is dropped first and the task completes right after, on the
                // worker that cancelled it: on the multi-thread flavour this thread can
                // see the drop before the completion (seen under TSan), so wait for it.
                while !h.is_finished() {
                    assert!(t0.elapsed() < Duration::from_secs(2), "{flavor:?}: not finished after the abort");
                    sleep(Duration::from_millis(1)).await;
                }
                assert!(h.await.unwrap_err().is_cancelled());
            });
            assert!(!finished.load(Ordering::SeqCst));
        }
    });
}

#[test]
fn abort_after_completion_keeps_the_output() {
    with_timeout(20, || {
        for flavor in FLAVORS {
            let rt = build(flavor, &unique_name("sp-abc"));
            rt.block_on(async {
                let h = task::spawn(async { "out" });
                // (sleep, not yield_now: see block_on_yield_loop_lets_tasks_run)
                while !h.is_finished() {
                    sleep(Duration::from_millis(1)).await;
                }
                h.abort();
                h.abort(); // twice is harmless
                assert_eq!(h.await.unwrap(), "out", "{flavor:?}");
            });
        }
    });
}

#[test]
fn is_finished_transitions() {
    with_timeout(20, || {
        for flavor in FLAVORS {
            let rt = build(flavor, &unique_name("sp-fin"));
            rt.block_on(async {
                let (tx, rx) = oneshot::<u8>();
                let h = task::spawn(async move { rx.await.unwrap() + 1 });
                for _ in 0..10 {
                    sleep(Duration::from_millis(1)).await;
                    assert!(!h.is_finished(), "{flavor:?}: waiting on a channel");
                }
                tx.send(1);
                let t0 = std::time::Instant::now();
                while !h.is_finished() {
                    assert!(t0.elapsed() < Duration::from_secs(2));
                    sleep(Duration::from_millis(1)).await;
                }
                assert_eq!(h.await.unwrap(), 2);

                // Blocking tasks too.
                let (go_tx, go_rx) = std::sync::mpsc::channel::<()>();
                let h = task::spawn_blocking(move || go_rx.recv().unwrap());
                sleep(Duration::from_millis(10)).await;
                assert!(!h.is_finished());
                go_tx.send(()).unwrap();
                let t0 = std::time::Instant::now();
                while !h.is_finished() {
                    assert!(t0.elapsed() < Duration::from_secs(2));
                    sleep(Duration::from_millis(1)).await;
                }
                h.await.unwrap();
            });
        }
    });
}

/// Dropping a JoinHandle detaches the task: it keeps running to completion.
#[test]
fn dropped_handle_detaches() {
    with_timeout(20, || {
        for flavor in FLAVORS {
            let rt = build(flavor, &unique_name("sp-det"));
            rt.block_on(async {
                let (tx, rx) = oneshot::<&'static str>();
                drop(task::spawn(async move {
                    sleep(Duration::from_millis(10)).await;
                    tx.send("still ran");
                }));
                assert_eq!(rx.await, Some("still ran"), "{flavor:?}");
            });
        }
    });
}

/// Aborting a `spawn_blocking` job that has not started yet (the pool is full) cancels
/// it: the closure never runs and the handle reports `is_cancelled`.
#[test]
fn abort_queued_spawn_blocking_cancels_it() {
    with_timeout(20, || {
        let rt =
            Builder::new_current_thread().max_blocking_threads(1).thread_name(unique_name("sp-abb")).build().unwrap();
        rt.block_on(async {
            let (go_tx, go_rx) = std::sync::mpsc::channel::<()>();
            let first = task::spawn_blocking(move || go_rx.recv().unwrap());
            sleep(Duration::from_millis(20)).await; // the only pool thread is now busy
            let ran = Arc::new(AtomicBool::new(false));
            let r2 = ran.clone();
            let queued = task::spawn_blocking(move || r2.store(true, Ordering::SeqCst));
            queued.abort();
            go_tx.send(()).unwrap();
            first.await.unwrap();
            let res = queued.await;
            assert!(!ran.load(Ordering::SeqCst), "an aborted, not yet started closure must not run");
            assert!(res.unwrap_err().is_cancelled());
        });
    });
}

/// `yield_now` lets the other ready task run: two tasks on a current-thread runtime
/// interleave strictly.
#[test]
fn yield_now_interleaves_on_current_thread() {
    with_timeout(10, || {
        let rt = build(Flavor::Current, &unique_name("sp-yld"));
        let log = Arc::new(Mutex::new(Vec::new()));
        rt.block_on(async {
            let mk = |id: char| {
                let log = log.clone();
                task::spawn(async move {
                    for i in 0..5 {
                        log.lock().unwrap().push(format!("{id}{i}"));
                        task::yield_now().await;
                    }
                })
            };
            let a = mk('a');
            let b = mk('b');
            a.await.unwrap();
            b.await.unwrap();
        });
        let got = log.lock().unwrap().join(" ");
        assert_eq!(got, "a0 b0 a1 b1 a2 b2 a3 b3 a4 b4");
    });
}

/// The same on a multi-thread runtime with a single worker (the LIFO slot must not let a
/// yielding task run again before the other one).
#[test]
fn yield_now_interleaves_on_one_worker() {
    with_timeout(10, || {
        let rt = build(Flavor::Multi(1), &unique_name("sp-yl1"));
        let log = Arc::new(Mutex::new(Vec::new()));
        let l2 = log.clone();
        rt.block_on(async move {
            // Spawn both from inside one task so they start on the worker together.
            task::spawn(async move {
                let mk = |id: char| {
                    let log = l2.clone();
                    task::spawn(async move {
                        for i in 0..5 {
                            log.lock().unwrap().push(format!("{id}{i}"));
                            task::yield_now().await;
                        }
                    })
                };
                let a = mk('a');
                let b = mk('b');
                a.await.unwrap();
                b.await.unwrap();
            })
            .await
            .unwrap();
        });
        let got = log.lock().unwrap().clone();
        // Whatever runs first, after the first entry the two tasks must alternate.
        for w in got.windows(2) {
            assert_ne!(w[0].as_bytes()[0], w[1].as_bytes()[0], "no alternation: {got:?}");
        }
        assert_eq!(got.len(), 10);
    });
}

/// A task that never yields voluntarily but uses yield_now in a loop does not starve a
/// timer-driven task on a current-thread runtime.
#[test]
fn yield_loop_does_not_starve_timers() {
    with_timeout(10, || {
        let rt = build(Flavor::Current, &unique_name("sp-ylt"));
        rt.block_on(async {
            let stop = Arc::new(AtomicBool::new(false));
            let s2 = stop.clone();
            let spins = Arc::new(AtomicUsize::new(0));
            let sp2 = spins.clone();
            let spinner = task::spawn(async move {
                while !s2.load(Ordering::SeqCst) {
                    sp2.fetch_add(1, Ordering::Relaxed);
                    task::yield_now().await;
                }
            });
            let t0 = std::time::Instant::now();
            sleep(Duration::from_millis(10)).await;
            let waited = t0.elapsed();
            stop.store(true, Ordering::SeqCst);
            spinner.await.unwrap();
            assert!(waited < Duration::from_millis(500), "timer starved by a yielding task: {waited:?}");
            assert!(spins.load(Ordering::Relaxed) > 0);
        });
    });
}

#[test]
fn join_error_converts_to_io_error() {
    with_timeout(10, || {
        let rt = build(Flavor::Current, &unique_name("sp-jio"));
        rt.block_on(async {
            let e: std::io::Error = task::spawn(async { panic!("x") }).await.unwrap_err().into();
            assert!(e.to_string().contains('x'));
            let h = task::spawn(std::future::pending::<()>());
            h.abort();
            let e: std::io::Error = h.await.unwrap_err().into();
            assert_ne!(e.kind(), std::io::ErrorKind::TimedOut);
        });
    });
}

/// `Runtime::spawn` without ever calling `block_on` on a multi-thread runtime: the
/// workers run it.
#[test]
fn runtime_spawn_without_block_on_runs_on_workers() {
    with_timeout(10, || {
        let rt = build(Flavor::Multi(2), &unique_name("sp-nbo"));
        let done = Arc::new(AtomicBool::new(false));
        let d2 = done.clone();
        let _h = rt.spawn(async move {
            sleep(Duration::from_millis(5)).await;
            d2.store(true, Ordering::SeqCst);
        });
        assert!(eventually(Duration::from_secs(3), || done.load(Ordering::SeqCst)));
    });
}

/// The future given to `block_on` on a current-thread runtime polls a spawned task's
/// `is_finished` in a `yield_now` loop (the pattern of `JoinHandle::is_finished`'s own doc
/// example): `yield_now` must let the spawned task run.
#[test]
fn block_on_yield_loop_lets_tasks_run_current_thread() {
    with_timeout(10, || {
        let rt = build(Flavor::Current, &unique_name("sp-byl"));
        rt.block_on(async {
            let h = task::spawn(async { 1 });
            let mut yields = 0u32;
            while !h.is_finished() && yields < 100_000 {
                task::yield_now().await;
                yields += 1;
            }
            assert!(h.is_finished(), "spawned task never ran during {yields} yield_now() calls of the main future");
            assert_eq!(h.await.unwrap(), 1);
        });
    });
}

/// `block_on` called on a thread that is already driving the runtime (inside
/// `block_on` of a current-thread runtime, or on a worker) can never complete: nobody
/// else runs that thread's tasks. It must panic with a clear message (as tokio's "Cannot
/// start a runtime from within a runtime") instead of deadlocking silently.
#[test]
fn nested_block_on_panics_instead_of_deadlocking() {
    // Each case runs on its own thread; a deadlocked one is left behind, parked.
    let current = std::thread::spawn(|| {
        let rt = build(Flavor::Current, &unique_name("sp-nb1"));
        catch_unwind(AssertUnwindSafe(|| {
            rt.block_on(async { Handle::current().block_on(sleep(Duration::from_millis(1))) })
        }))
        .is_err()
    });
    let worker = std::thread::spawn(|| {
        let rt = build(Flavor::Multi(1), &unique_name("sp-nb2"));
        rt.block_on(async {
            task::spawn(async {
                catch_unwind(|| Handle::current().block_on(async { task::spawn(async {}).await })).is_err()
            })
            .await
            .unwrap()
        })
    });
    let t0 = std::time::Instant::now();
    while !(current.is_finished() && worker.is_finished()) {
        assert!(
            t0.elapsed() < Duration::from_secs(3),
            "nested block_on deadlocked (current_thread finished: {}, worker finished: {})",
            current.is_finished(),
            worker.is_finished()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(current.join().unwrap(), "nested block_on on a current_thread runtime must panic");
    assert!(worker.join().unwrap(), "block_on on a worker thread must panic");
}

/// `blitz_io::run` and `blitz_io::block_on` run a future (and its spawned tasks) on a
/// fresh multi-thread runtime and leave no worker behind.
#[test]
fn run_and_block_on_functions() {
    with_timeout(20, || {
        let v = blitz_io::run(async {
            let h = task::spawn(async {
                sleep(Duration::from_millis(2)).await;
                20
            });
            h.await.unwrap() + 1
        });
        assert_eq!(v, 21);
        assert_eq!(blitz_io::block_on(async { task::spawn_blocking(|| 5).await.unwrap() }), 5);
        let p = catch_unwind(|| blitz_io::run(async { panic!("inside run") })).unwrap_err();
        assert_eq!(panic_message(&*p), "inside run");
        // Default thread name; nothing else in this binary uses it.
        assert!(
            eventually(Duration::from_secs(2), || threads_named("blitz-io-worker") == 0),
            "{} default-named threads left after blitz_io::run returned",
            threads_named("blitz-io-worker")
        );
    });
}

/// 10,000 wake round trips between a task and a plain thread: no lost wake-up in the
/// park/unpark protocol (a lost one hangs the test).
#[test]
fn ping_pong_with_a_foreign_thread() {
    with_timeout(30, || {
        for flavor in [Flavor::Current, Flavor::Multi(2)] {
            let rt = build(flavor, &unique_name("sp-png"));
            let (to_thread, thread_rx) = std::sync::mpsc::channel::<support::Sender<u32>>();
            let peer = std::thread::spawn(move || {
                let mut n = 0;
                while let Ok(reply) = thread_rx.recv() {
                    n += 1;
                    reply.send(n);
                }
                n
            });
            let last = rt.block_on(async move {
                task::spawn(async move {
                    let mut last = 0;
                    for i in 1..=10_000u32 {
                        let (tx, rx) = oneshot();
                        to_thread.send(tx).unwrap();
                        last = rx.await.unwrap();
                        assert_eq!(last, i);
                    }
                    last
                })
                .await
                .unwrap()
            });
            assert_eq!(last, 10_000);
            assert_eq!(peer.join().unwrap(), 10_000, "{flavor:?}");
        }
    });
}

/// 10,000 wake round trips between two tasks (on two workers for multi_thread).
#[test]
fn ping_pong_between_tasks() {
    struct Msg {
        i: u32,
        reply: support::Sender<u32>,
        next: support::Receiver<Msg>,
    }
    with_timeout(30, || {
        for flavor in [Flavor::Current, Flavor::Multi(2)] {
            let rt = build(flavor, &unique_name("sp-pp2"));
            let (last, served) = rt.block_on(async {
                let (mut req_tx, req_rx) = oneshot::<Msg>();
                let b = task::spawn(async move {
                    let mut req_rx = req_rx;
                    let mut served = 0u32;
                    while let Some(Msg { i, reply, next }) = req_rx.await {
                        served += 1;
                        reply.send(i + 1);
                        req_rx = next;
                    }
                    served
                });
                let a = task::spawn(async move {
                    let mut last = 0;
                    for i in 0..10_000u32 {
                        let (reply, rep_rx) = oneshot();
                        let (next_tx, next) = oneshot();
                        std::mem::replace(&mut req_tx, next_tx).send(Msg { i, reply, next });
                        last = rep_rx.await.unwrap();
                        assert_eq!(last, i + 1);
                    }
                    last
                    // dropping req_tx ends b's loop
                });
                let last = a.await.unwrap();
                (last, b.await.unwrap())
            });
            assert_eq!((last, served), (10_000, 10_000), "{flavor:?}");
        }
    });
}

/// The task core under cross-thread pressure: tasks parked on a hand-made gate are woken
/// by value and by reference from two foreign threads while the runtime polls them and
/// the test aborts every third one. Every future must be dropped exactly once, every
/// handle must resolve (output, or cancelled for an aborted task), and the runtime's
/// drop must find nothing left.
#[test]
fn foreign_wakes_aborts_and_completions_race_without_loss() {
    use std::future::Future;
    use std::pin::Pin;
    use std::task::{Context, Poll, Waker};

    struct Gate {
        open: Arc<AtomicBool>,
        wakers: Arc<Mutex<Vec<Waker>>>,
        polls: u32,
    }
    impl Future for Gate {
        type Output = u32;
        fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<u32> {
            self.polls += 1;
            if self.open.load(Ordering::Acquire) {
                return Poll::Ready(self.polls);
            }
            self.wakers.lock().unwrap().push(cx.waker().clone());
            Poll::Pending
        }
    }

    with_timeout(20, || {
        for flavor in FLAVORS {
            const N: usize = 2_000;
            let rt = build(flavor, &unique_name("sp-race"));
            let open = Arc::new(AtomicBool::new(false));
            let wakers = Arc::new(Mutex::new(Vec::new()));
            let drops = Arc::new(AtomicUsize::new(0));
            let stop = Arc::new(AtomicBool::new(false));
            let wakers_threads: Vec<_> = (0..2)
                .map(|k| {
                    let (wakers, stop) = (wakers.clone(), stop.clone());
                    std::thread::spawn(move || {
                        while !stop.load(Ordering::Acquire) {
                            let batch: Vec<Waker> = std::mem::take(&mut *wakers.lock().unwrap());
                            for w in batch {
                                if k == 0 {
                                    w.wake();
                                } else {
                                    w.wake_by_ref();
                                }
                            }
                            std::thread::yield_now();
                        }
                    })
                })
                .collect();
            let results = rt.block_on({
                let (open, wakers, drops) = (open.clone(), wakers.clone(), drops.clone());
                async move {
                    let handles: Vec<_> = (0..N)
                        .map(|_| {
                            let count = support::DropCount(drops.clone());
                            let gate = Gate { open: open.clone(), wakers: wakers.clone(), polls: 0 };
                            task::spawn(async move {
                                let _count = count;
                                gate.await
                            })
                        })
                        .collect();
                    // Let the wake storm run a while, aborting every third task meanwhile.
                    for (i, h) in handles.iter().enumerate() {
                        if i % 3 == 0 {
                            h.abort();
                        }
                        if i % 100 == 0 {
                            task::yield_now().await;
                        }
                    }
                    sleep(Duration::from_millis(20)).await;
                    open.store(true, Ordering::Release);
                    let rest: Vec<Waker> = std::mem::take(&mut *wakers.lock().unwrap());
                    rest.into_iter().for_each(Waker::wake);
                    let mut out = Vec::with_capacity(N);
                    for h in handles {
                        out.push(h.await);
                    }
                    out
                }
            });
            stop.store(true, Ordering::Release);
            for t in wakers_threads {
                t.join().unwrap();
            }
            // The gate opens only after every abort, so an aborted task cannot finish first.
            for (i, r) in results.iter().enumerate() {
                match r {
                    Ok(polls) => assert!(i % 3 != 0 && *polls >= 1, "{flavor:?}: task {i} was aborted"),
                    Err(e) => assert!(i % 3 == 0 && e.is_cancelled(), "{flavor:?}: task {i}: {e}"),
                }
            }
            drop(rt);
            assert_eq!(drops.load(Ordering::SeqCst), N, "{flavor:?}: every future dropped once");
        }
    });
}

/// `Runtime::enter` / `Handle::enter` make the runtime current on this thread until the
/// guard drops (tokio's pattern: enter, then `spawn` from plain code).
#[test]
fn enter_makes_the_runtime_current_until_the_guard_drops() {
    with_timeout(20, || {
        let rt = blitz_io::runtime::Builder::new_multi_thread().worker_threads(1).build().unwrap();
        assert!(blitz_io::runtime::Handle::try_current().is_err());
        let task = {
            let _guard = rt.enter();
            assert!(blitz_io::runtime::Handle::try_current().is_ok());
            blitz_io::task::spawn(async { 40 + 2 })
        };
        assert!(blitz_io::runtime::Handle::try_current().is_err(), "the guard restores the previous context");
        assert_eq!(rt.block_on(task).unwrap(), 42);
        // JoinHandle can cross catch_unwind, as tokio's.
        fn unwind_safe<T: std::panic::UnwindSafe + std::panic::RefUnwindSafe>(_: &T) {}
        let h = rt.handle().spawn(async {});
        unwind_safe(&h);
        rt.block_on(h).unwrap();
    });
}
