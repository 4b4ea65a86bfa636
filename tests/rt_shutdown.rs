//! Runtime lifecycle: dropping cancels tasks and joins threads, `shutdown_timeout` and
//! `shutdown_background` return in time, current-thread `block_on` runs tasks, Builder
//! validation, and handles that outlive their runtime.

mod support;

use std::io;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use blitz_io::runtime::{Builder, Runtime};
use blitz_io::task;
use blitz_io::time::sleep;
use support::{
    build_runtime, eventually, oneshot, threads_named, unique_name, with_timeout, DropCount, DropFlag, Flavor,
};

const FLAVORS: [Flavor; 2] = [Flavor::Current, Flavor::Multi(2)];

fn build(flavor: Flavor, name: &str) -> Runtime {
    build_runtime(flavor, name)
}

/// Dropping the runtime drops the futures of tasks parked on a timer, on `pending()`, on
/// a channel, and of tasks that never ran; their handles report `is_cancelled`.
#[test]
fn drop_cancels_parked_tasks() {
    with_timeout(20, || {
        for flavor in FLAVORS {
            let rt = build(flavor, &unique_name("sd-park"));
            let (g_sleep, f_sleep) = DropFlag::new();
            let (g_pend, f_pend) = DropFlag::new();
            let (g_chan, f_chan) = DropFlag::new();
            let (g_never, f_never) = DropFlag::new();
            let (tx, rx) = oneshot::<()>();
            let started = Arc::new(AtomicUsize::new(0));
            let (h1, h2, h3) = rt.block_on(async {
                let s = started.clone();
                let h1 = task::spawn(async move {
                    let _g = g_sleep;
                    s.fetch_add(1, Ordering::SeqCst);
                    sleep(Duration::from_secs(60)).await;
                });
                let s = started.clone();
                let h2 = task::spawn(async move {
                    let _g = g_pend;
                    s.fetch_add(1, Ordering::SeqCst);
                    std::future::pending::<()>().await;
                });
                let s = started.clone();
                let h3 = task::spawn(async move {
                    let _g = g_chan;
                    s.fetch_add(1, Ordering::SeqCst);
                    rx.await;
                });
                while started.load(Ordering::SeqCst) < 3 {
                    sleep(Duration::from_millis(1)).await;
                }
                (h1, h2, h3)
            });
            // Spawned, never polled (current_thread: nobody in block_on).
            let h4 = rt.spawn(async move {
                let _g = g_never;
                std::future::pending::<()>().await;
            });
            assert!(
                !f_sleep.load(Ordering::SeqCst) && !f_pend.load(Ordering::SeqCst) && !f_chan.load(Ordering::SeqCst)
            );
            drop(rt);
            for (what, f) in
                [("sleep", &f_sleep), ("pending", &f_pend), ("channel", &f_chan), ("never polled", &f_never)]
            {
                assert!(f.load(Ordering::SeqCst), "{flavor:?}: task parked on {what} not dropped by Runtime::drop");
            }
            for h in [h1, h2, h3, h4] {
                let e = futures_executor::block_on(h).unwrap_err();
                assert!(e.is_cancelled(), "{flavor:?}");
            }
            drop(tx);
        }
    });
}

/// Ten thousand parked tasks are all dropped at shutdown, quickly.
#[test]
fn drop_cancels_many_tasks() {
    with_timeout(20, || {
        for flavor in FLAVORS {
            let rt = build(flavor, &unique_name("sd-many"));
            let dropped = Arc::new(AtomicUsize::new(0));
            rt.block_on(async {
                for i in 0..10_000u64 {
                    let g = DropCount(dropped.clone());
                    task::spawn(async move {
                        let _g = g;
                        sleep(Duration::from_secs(100 + i % 50)).await;
                    });
                }
                sleep(Duration::from_millis(20)).await;
            });
            let t0 = Instant::now();
            drop(rt);
            assert_eq!(dropped.load(Ordering::SeqCst), 10_000, "{flavor:?}");
            assert!(t0.elapsed() < Duration::from_secs(2), "{flavor:?}: drop took {:?}", t0.elapsed());
        }
    });
}

/// A dropped future that wakes another task during shutdown (a channel's sender going
/// away): the woken task is dropped too, nothing runs after shutdown, nothing deadlocks.
#[test]
fn drop_cascade_of_wakes_during_shutdown() {
    with_timeout(20, || {
        for flavor in FLAVORS {
            let rt = build(flavor, &unique_name("sd-casc"));
            let dropped = Arc::new(AtomicUsize::new(0));
            let resumed = Arc::new(AtomicBool::new(false));
            rt.block_on(async {
                // Task i holds the sender that task i+1 waits on.
                let mut prev_rx = None;
                for _ in 0..100 {
                    let (t, r) = oneshot::<()>();
                    let g = DropCount(dropped.clone());
                    let resumed = resumed.clone();
                    let wait_on = prev_rx.take();
                    task::spawn(async move {
                        let _g = g;
                        let _my_tx = t; // dropped with this future: wakes the next task
                        if let Some(r) = wait_on {
                            let _: Option<()> = r.await;
                            resumed.store(true, Ordering::SeqCst);
                        }
                        std::future::pending::<()>().await;
                    });
                    prev_rx = Some(r);
                }
                sleep(Duration::from_millis(10)).await;
            });
            drop(rt);
            assert_eq!(dropped.load(Ordering::SeqCst), 100, "{flavor:?}");
            assert!(!resumed.load(Ordering::SeqCst), "{flavor:?}: a task was polled after shutdown began");
        }
    });
}

/// After `drop(runtime)` no thread of the runtime is left: workers and blocking threads
/// are joined.
#[test]
fn drop_joins_all_threads() {
    with_timeout(20, || {
        for flavor in FLAVORS {
            let name = unique_name("sd-join");
            let rt = Builder::new_multi_thread()
                .worker_threads(match flavor {
                    Flavor::Multi(n) => n,
                    Flavor::Current => 1,
                })
                .thread_name(&name)
                .max_blocking_threads(3)
                .build()
                .unwrap();
            let rt = if matches!(flavor, Flavor::Current) {
                drop(rt);
                Builder::new_current_thread().thread_name(&name).max_blocking_threads(3).build().unwrap()
            } else {
                rt
            };
            rt.block_on(async {
                let hs: Vec<_> =
                    (0..3).map(|_| task::spawn_blocking(|| std::thread::sleep(Duration::from_millis(20)))).collect();
                for h in hs {
                    h.await.unwrap();
                }
                task::spawn(async { sleep(Duration::from_secs(60)).await });
            });
            let expected = 3 + if let Flavor::Multi(n) = flavor { n } else { 0 };
            assert!(eventually(Duration::from_secs(2), || threads_named(&name) == expected));
            drop(rt);
            let right_after = threads_named(&name);
            assert!(
                eventually(Duration::from_secs(1), || threads_named(&name) == 0),
                "{flavor:?}: {} threads left after drop",
                threads_named(&name)
            );
            // A joined thread may linger in /proc for a moment after join returns; more
            // than that means it was not joined.
            assert!(right_after <= expected, "{right_after}");
        }
    });
}

/// 50 runtimes of each flavour built, used and dropped in a loop leave no thread behind.
#[test]
fn fifty_runtimes_leave_no_threads() {
    with_timeout(40, || {
        let name = unique_name("sd-50");
        for i in 0..50u64 {
            for flavor in FLAVORS {
                let rt = build(flavor, &name);
                let v = rt.block_on(async move {
                    let a = task::spawn(async move {
                        sleep(Duration::from_millis(1)).await;
                        i
                    });
                    let b = task::spawn_blocking(move || i * 2);
                    a.await.unwrap() + b.await.unwrap()
                });
                assert_eq!(v, 3 * i);
                rt.spawn(std::future::pending::<()>());
            }
        }
        assert!(
            eventually(Duration::from_secs(2), || threads_named(&name) == 0),
            "{} threads named {name} left after 100 runtimes were dropped",
            threads_named(&name)
        );
    });
}

/// `shutdown_timeout` returns within its timeout while a blocking job sleeps for 5 s.
#[test]
fn shutdown_timeout_with_stuck_blocking_job() {
    with_timeout(20, || {
        for flavor in FLAVORS {
            let rt = build(flavor, &unique_name("sd-to"));
            let started = Arc::new(AtomicBool::new(false));
            let s2 = started.clone();
            let _h = rt.spawn_blocking(move || {
                s2.store(true, Ordering::SeqCst);
                std::thread::sleep(Duration::from_secs(5));
            });
            assert!(eventually(Duration::from_secs(2), || started.load(Ordering::SeqCst)));
            let t0 = Instant::now();
            rt.shutdown_timeout(Duration::from_millis(100));
            let took = t0.elapsed();
            assert!(took >= Duration::from_millis(90), "{flavor:?}: returned before the timeout: {took:?}");
            assert!(took < Duration::from_millis(1000), "{flavor:?}: shutdown_timeout(100ms) took {took:?}");
        }
    });
}

/// `shutdown_timeout` returns in time while a *worker* is stuck in a task that blocks
/// its thread (a badly written task).
#[test]
fn shutdown_timeout_with_stuck_worker() {
    with_timeout(20, || {
        let rt = build(Flavor::Multi(2), &unique_name("sd-tow"));
        let started = Arc::new(AtomicBool::new(false));
        let s2 = started.clone();
        rt.spawn(async move {
            s2.store(true, Ordering::SeqCst);
            std::thread::sleep(Duration::from_secs(3));
        });
        assert!(eventually(Duration::from_secs(2), || started.load(Ordering::SeqCst)));
        let t0 = Instant::now();
        rt.shutdown_timeout(Duration::from_millis(100));
        let took = t0.elapsed();
        assert!(took < Duration::from_millis(1000), "shutdown_timeout(100ms) took {took:?}");
    });
}

/// `shutdown_background` does not wait for a busy blocking job; tasks are still dropped.
#[test]
fn shutdown_background_returns_at_once() {
    with_timeout(20, || {
        for flavor in FLAVORS {
            let rt = build(flavor, &unique_name("sd-bg"));
            let (g, f) = DropFlag::new();
            let started = Arc::new(AtomicBool::new(false));
            let s2 = started.clone();
            rt.spawn_blocking(move || {
                s2.store(true, Ordering::SeqCst);
                std::thread::sleep(Duration::from_secs(2));
            });
            rt.spawn(async move {
                let _g = g;
                sleep(Duration::from_secs(60)).await;
            });
            assert!(eventually(Duration::from_secs(2), || started.load(Ordering::SeqCst)));
            let t0 = Instant::now();
            rt.shutdown_background();
            assert!(t0.elapsed() < Duration::from_millis(300), "{flavor:?}: {:?}", t0.elapsed());
            assert!(f.load(Ordering::SeqCst), "{flavor:?}: parked task not dropped");
        }
    });
}

#[test]
fn current_thread_block_on_runs_spawned_tasks() {
    with_timeout(10, || {
        let rt = build(Flavor::Current, &unique_name("sd-ct"));
        let me = std::thread::current().id();
        let (v, tid) = rt.block_on(async {
            let h = task::spawn(async {
                sleep(Duration::from_millis(2)).await;
                (5, std::thread::current().id())
            });
            h.await.unwrap()
        });
        assert_eq!(v, 5);
        // with_timeout runs the body on a helper thread: compare with that one.
        assert_eq!(tid, me, "current-thread tasks run on the block_on thread");
    });
}

/// Tasks spawned on a current-thread runtime while nobody is in `block_on` wait, and
/// run at the next `block_on`; tasks left unfinished by one `block_on` continue in the
/// next.
#[test]
fn current_thread_tasks_spawned_outside_block_on_run_at_next_block_on() {
    with_timeout(10, || {
        let rt = build(Flavor::Current, &unique_name("sd-nxt"));
        let ran = Arc::new(AtomicUsize::new(0));
        let handles: Vec<_> = (0..10)
            .map(|_| {
                let ran = ran.clone();
                rt.spawn(async move {
                    ran.fetch_add(1, Ordering::SeqCst);
                })
            })
            .collect();
        std::thread::sleep(Duration::from_millis(20));
        assert_eq!(ran.load(Ordering::SeqCst), 0, "nobody drives a current-thread runtime outside block_on");
        rt.block_on(async {
            for h in handles {
                h.await.unwrap();
            }
        });
        assert_eq!(ran.load(Ordering::SeqCst), 10);

        // A task that outlives one block_on resumes in the next.
        let steps = Arc::new(AtomicUsize::new(0));
        let s2 = steps.clone();
        let long = rt.spawn(async move {
            for _ in 0..4 {
                s2.fetch_add(1, Ordering::SeqCst);
                sleep(Duration::from_millis(5)).await;
            }
            "long done"
        });
        rt.block_on(sleep(Duration::from_millis(7)));
        let mid = steps.load(Ordering::SeqCst);
        assert!((1..4).contains(&mid), "steps after the first block_on: {mid}");
        assert_eq!(rt.block_on(long).unwrap(), "long done");
        assert_eq!(steps.load(Ordering::SeqCst), 4);
    });
}

/// Spawning from another thread onto a current-thread runtime whose driver thread is
/// parked (in `block_on`, waiting) wakes it.
#[test]
fn current_thread_remote_spawn_wakes_parked_driver() {
    with_timeout(10, || {
        let rt = build(Flavor::Current, &unique_name("sd-rmt"));
        let handle = rt.handle().clone();
        let (tx, rx) = oneshot::<u32>();
        let t = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(50));
            let t0 = Instant::now();
            handle.spawn(async move { tx.send(1) });
            t0
        });
        let v = rt.block_on(rx);
        let spawned_at = t.join().unwrap();
        assert_eq!(v, Some(1));
        assert!(
            spawned_at.elapsed() < Duration::from_millis(500),
            "remote spawn took {:?} to run",
            spawned_at.elapsed()
        );
    });
}

#[test]
fn builder_rejects_zero_sizes() {
    for b in [Builder::new_multi_thread(), Builder::new_current_thread()] {
        let e = b.clone().worker_threads(0).build().unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput, "{e}");
        assert!(e.to_string().contains("worker_threads"), "{e}");
        let e = b.clone().max_blocking_threads(0).build().unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput, "{e}");
        assert!(e.to_string().contains("max_blocking_threads"), "{e}");
    }
    // And sane values build.
    let rt = Builder::new_multi_thread().worker_threads(1).max_blocking_threads(1).build().unwrap();
    assert_eq!(rt.block_on(async { task::spawn_blocking(|| 1).await.unwrap() }), 1);
    drop(rt);
    let rt = Runtime::new().unwrap();
    assert_eq!(rt.block_on(async { 2 }), 2);
}

/// A Handle that outlives its runtime: spawned tasks are cancelled at once, blocking
/// jobs too, and `block_on` still runs futures (timers move to the fallback driver).
#[test]
fn handle_after_runtime_drop() {
    with_timeout(10, || {
        for flavor in FLAVORS {
            let rt = build(flavor, &unique_name("sd-hnd"));
            let handle = rt.handle().clone();
            drop(rt);
            let (g, f) = DropFlag::new();
            let h = handle.spawn(async move {
                let _g = g;
                1
            });
            assert!(futures_executor::block_on(h).unwrap_err().is_cancelled(), "{flavor:?}");
            assert!(f.load(Ordering::SeqCst), "the refused future is dropped");
            let b = handle.spawn_blocking(|| 2);
            assert!(futures_executor::block_on(b).unwrap_err().is_cancelled(), "{flavor:?}");
            let t0 = Instant::now();
            let v = handle.block_on(async {
                sleep(Duration::from_millis(10)).await;
                3
            });
            assert_eq!(v, 3);
            assert!(t0.elapsed() >= Duration::from_millis(10));
        }
    });
}

/// Dropping a runtime inside one of its own blocking closures neither deadlocks nor
/// panics (the pool detaches the calling thread instead of joining itself).
#[test]
fn runtime_dropped_inside_its_own_blocking_closure() {
    with_timeout(10, || {
        for flavor in FLAVORS {
            let rt = build(flavor, &unique_name("sd-self"));
            let handle = rt.handle().clone();
            let (tx, rx) = std::sync::mpsc::channel();
            let _h = handle.spawn_blocking(move || {
                drop(rt);
                tx.send(()).unwrap();
            });
            rx.recv_timeout(Duration::from_secs(5)).unwrap_or_else(|_| panic!("{flavor:?}: drop inside the pool hung"));
        }
    });
}

/// Dropping a runtime from inside a task of another runtime works.
#[test]
fn runtime_dropped_inside_another_runtime() {
    with_timeout(10, || {
        let outer = build(Flavor::Multi(2), &unique_name("sd-out"));
        let inner_name = unique_name("sd-in");
        let inner = build(Flavor::Multi(2), &inner_name);
        inner.spawn(std::future::pending::<()>());
        outer.block_on(async move {
            task::spawn(async move {
                drop(inner);
            })
            .await
            .unwrap();
        });
        assert!(eventually(Duration::from_secs(1), || threads_named(&inner_name) == 0));
    });
}

/// Tasks still queued on a worker when the runtime shuts down (spawned by a task that
/// then kept its worker busy past the shutdown) are dropped by `Runtime::drop`, not left
/// in the worker's deque, which the other workers' stealers keep alive.
#[test]
fn drop_cancels_tasks_queued_on_a_busy_worker() {
    with_timeout(20, || {
        let rt = build(Flavor::Multi(2), &unique_name("sd-queued"));
        let dropped = Arc::new(AtomicUsize::new(0));
        let polled = Arc::new(AtomicUsize::new(0));
        let blocker_running = Arc::new(AtomicBool::new(false));
        let queued = Arc::new(AtomicBool::new(false));
        rt.block_on(async {
            // B occupies one worker (a blocking sleep), so nobody steals from the other.
            let running = blocker_running.clone();
            task::spawn(async move {
                running.store(true, Ordering::SeqCst);
                std::thread::sleep(Duration::from_millis(600));
            });
            while !blocker_running.load(Ordering::SeqCst) {
                sleep(Duration::from_millis(1)).await;
            }
            // A, on the other worker, queues 1,000 tasks there, then blocks past the
            // shutdown that starts once this block_on returns.
            let (dropped, polled) = (dropped.clone(), polled.clone());
            let queued_in_task = queued.clone();
            task::spawn(async move {
                for _ in 0..1_000 {
                    let g = DropCount(dropped.clone());
                    let polled = polled.clone();
                    task::spawn(async move {
                        let _g = g;
                        polled.fetch_add(1, Ordering::SeqCst);
                        std::future::pending::<()>().await;
                    });
                }
                queued_in_task.store(true, Ordering::SeqCst);
                std::thread::sleep(Duration::from_millis(300));
            });
        });
        // Shut down only once the tasks are queued, however slow the machine. (Not an
        // async sleep inside block_on: with both workers blocked, nobody turns the driver
        // that would fire its timer, and the shutdown would start only after A returned.)
        while !queued.load(Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(1));
        }
        drop(rt);
        assert_eq!(dropped.load(Ordering::SeqCst), 1_000, "polled before shutdown: {}", polled.load(Ordering::SeqCst));
    });
}

/// `shutdown_timeout(Duration::MAX)` means "no deadline": it used to overflow `Instant`
/// and panic after marking the runtime done, so nothing was ever stopped.
#[test]
fn shutdown_timeout_with_duration_max_waits_without_a_deadline() {
    let name = unique_name("sd-max");
    let rt = build_runtime(Flavor::Multi(2), &name);
    let (flag, dropped) = DropFlag::new();
    rt.spawn(async move {
        let _flag = flag;
        std::future::pending::<()>().await
    });
    with_timeout(20, move || rt.shutdown_timeout(Duration::MAX));
    assert!(dropped.load(Ordering::SeqCst), "the pending task was cancelled");
    assert!(eventually(Duration::from_secs(5), || threads_named(&name) == 0), "workers stopped");
}

/// A `JoinHandle` waker whose drop panics (here: its `wake_by_ref` drops the handle, so
/// the completing worker must drop the waker) must not kill the worker; dropping the
/// runtime afterwards used to wait for ever for the dead worker.
#[test]
fn a_panicking_join_waker_drop_neither_kills_a_worker_nor_hangs_the_drop() {
    use std::future::Future;
    use std::sync::Mutex;
    use std::task::{Context, Wake, Waker};

    struct Bomb(Arc<Mutex<Option<task::JoinHandle<()>>>>);
    impl Wake for Bomb {
        fn wake(self: Arc<Self>) {
            self.wake_by_ref()
        }
        fn wake_by_ref(self: &Arc<Self>) {
            drop(self.0.lock().unwrap().take());
        }
    }
    impl Drop for Bomb {
        fn drop(&mut self) {
            if !std::thread::panicking() {
                panic!("join waker dropped (deliberate test panic)");
            }
        }
    }

    let name = unique_name("sd-bomb");
    let rt = build_runtime(Flavor::Multi(2), &name);
    let slot = Arc::new(Mutex::new(Some(rt.spawn(sleep(Duration::from_millis(100))))));
    {
        let waker = Waker::from(Arc::new(Bomb(slot.clone())));
        let mut handle = slot.lock().unwrap();
        let handle = handle.as_mut().expect("just spawned");
        assert!(std::pin::Pin::new(handle).poll(&mut Context::from_waker(&waker)).is_pending());
    }
    assert!(eventually(Duration::from_secs(5), || slot.lock().unwrap().is_none()), "the task completed");
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(threads_named(&name), 2, "a worker died");
    // The runtime still works, and dropping it returns.
    with_timeout(10, move || {
        assert_eq!(rt.block_on(async { task::spawn(async { 7 }).await.unwrap() }), 7);
        drop(rt)
    });
}

/// Tasks cancelled by the runtime's shutdown are dropped in that runtime's context: a
/// `Drop` that spawns gets a cancelled handle (the runtime is shutting down) instead of
/// panicking with "outside a blitz-io runtime", and `Handle::current` works there.
#[test]
fn task_drops_at_shutdown_run_in_the_runtime_context() {
    struct SpawnOnDrop(Arc<AtomicUsize>);
    impl Drop for SpawnOnDrop {
        fn drop(&mut self) {
            let cleanup = task::spawn(async {});
            assert!(blitz_io::runtime::Handle::try_current().is_ok(), "no runtime context in the drop");
            drop(cleanup);
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }
    for flavor in FLAVORS {
        let dropped = Arc::new(AtomicUsize::new(0));
        let d = dropped.clone();
        let handle = with_timeout(20, move || {
            let rt = build_runtime(flavor, &unique_name("sd-ctx"));
            let h = rt.spawn(async move {
                let _guard = SpawnOnDrop(d);
                std::future::pending::<()>().await
            });
            // Let it start and park.
            rt.block_on(sleep(Duration::from_millis(20)));
            drop(rt);
            h
        });
        assert_eq!(dropped.load(Ordering::SeqCst), 1, "{flavor:?}: the drop ran to its end");
        let err = futures_executor::block_on(handle).unwrap_err();
        assert!(err.is_cancelled(), "{flavor:?}: {err}");
    }
}

/// A task whose future's drop panics and whose output's drop panics too: neither panic
/// may unwind into the worker (it died, its task stayed "running" and the runtime hung).
#[test]
fn panicking_future_and_output_drops_do_not_kill_the_worker() {
    struct Bomb;
    impl Drop for Bomb {
        fn drop(&mut self) {
            if !std::thread::panicking() {
                panic!("deliberate test panic in a drop");
            }
        }
    }
    /// Completes at once with a `Bomb`, and panics when dropped afterwards.
    struct PanicsWhenDropped;
    impl std::future::Future for PanicsWhenDropped {
        type Output = Bomb;
        fn poll(self: std::pin::Pin<&mut Self>, _: &mut std::task::Context<'_>) -> std::task::Poll<Bomb> {
            std::task::Poll::Ready(Bomb)
        }
    }
    impl Drop for PanicsWhenDropped {
        fn drop(&mut self) {
            panic!("deliberate test panic in a future's drop");
        }
    }
    with_timeout(20, || {
        let rt = build_runtime(Flavor::Multi(1), &unique_name("sd-bomb2"));
        let out = rt.block_on(async {
            // The output is dropped by the runtime once the future's drop panicked.
            let h = task::spawn(PanicsWhenDropped);
            let r = h.await;
            (r.is_err(), task::spawn(async { 5 }).await.unwrap())
        });
        assert_eq!(out, (true, 5), "the panic is reported and the worker lives on");
    });
}
