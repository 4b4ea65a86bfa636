//! The blocking pool behind `spawn_blocking`: results, panics, the thread bound, reuse,
//! keep-alive, and spawning onto it from everywhere.

mod support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use blitz_io::runtime::{Builder, Handle};
use blitz_io::task;
use support::{eventually, threads_named, unique_name, with_timeout};

/// A current-thread runtime: no worker threads, so every thread carrying `name` is a
/// blocking-pool thread.
fn pool_rt(name: &str, max: usize, keep_alive: Duration) -> blitz_io::runtime::Runtime {
    Builder::new_current_thread()
        .thread_name(name)
        .max_blocking_threads(max)
        .thread_keep_alive(keep_alive)
        .build()
        .unwrap()
}

#[test]
fn result_is_returned() {
    with_timeout(10, || {
        for multi in [false, true] {
            let rt = if multi {
                Builder::new_multi_thread().worker_threads(2).build().unwrap()
            } else {
                Builder::new_current_thread().build().unwrap()
            };
            let v = rt.block_on(async {
                let a = task::spawn_blocking(|| (1..=100u64).sum::<u64>());
                let b = task::spawn_blocking(|| String::from("text"));
                (a.await.unwrap(), b.await.unwrap())
            });
            assert_eq!(v, (5050, String::from("text")));
            // Runtime::spawn_blocking without block_on, awaited on another executor.
            let h = rt.spawn_blocking(|| 9);
            assert_eq!(futures_executor::block_on(h).unwrap(), 9);
        }
    });
}

#[test]
fn many_small_jobs_all_complete() {
    with_timeout(20, || {
        let rt = pool_rt(&unique_name("bl-many"), 8, Duration::from_secs(1));
        let sum = rt.block_on(async {
            let hs: Vec<_> = (0..2000u64).map(|i| task::spawn_blocking(move || i)).collect();
            let mut s = 0;
            for h in hs {
                s += h.await.unwrap();
            }
            s
        });
        assert_eq!(sum, 1999 * 2000 / 2);
    });
}

#[test]
fn panic_is_captured() {
    with_timeout(10, || {
        let rt = pool_rt(&unique_name("bl-pan"), 2, Duration::from_secs(1));
        rt.block_on(async {
            let err = task::spawn_blocking(|| panic!("blocking boom")).await.unwrap_err();
            assert!(err.is_panic() && !err.is_cancelled());
            assert_eq!(err.into_panic().downcast_ref::<&str>(), Some(&"blocking boom"));
            // The pool still works, on the same or a new thread.
            let hs: Vec<_> = (0..10).map(|i| task::spawn_blocking(move || i * 2)).collect();
            for (i, h) in hs.into_iter().enumerate() {
                assert_eq!(h.await.unwrap(), i * 2);
            }
        });
    });
}

/// 16 jobs of 50 ms with `max_blocking_threads(4)`: exactly 4 run at a time, never more
/// than 4 pool threads exist, and the jobs take 4 waves.
#[test]
fn threads_grow_up_to_max_blocking_threads() {
    with_timeout(20, || {
        let name = unique_name("bl-max");
        let rt = pool_rt(&name, 4, Duration::from_secs(5));
        let running = Arc::new(AtomicUsize::new(0));
        let max_running = Arc::new(AtomicUsize::new(0));
        let max_threads = Arc::new(AtomicUsize::new(0));
        let start = Instant::now();
        rt.block_on(async {
            let hs: Vec<_> = (0..16)
                .map(|_| {
                    let running = running.clone();
                    let max_running = max_running.clone();
                    let max_threads = max_threads.clone();
                    let name = name.clone();
                    task::spawn_blocking(move || {
                        let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                        max_running.fetch_max(now, Ordering::SeqCst);
                        max_threads.fetch_max(threads_named(&name), Ordering::SeqCst);
                        std::thread::sleep(Duration::from_millis(50));
                        running.fetch_sub(1, Ordering::SeqCst);
                    })
                })
                .collect();
            for h in hs {
                h.await.unwrap();
            }
        });
        let took = start.elapsed();
        assert_eq!(max_running.load(Ordering::SeqCst), 4, "concurrently running blocking jobs");
        assert!(max_threads.load(Ordering::SeqCst) <= 4, "pool threads: {}", max_threads.load(Ordering::SeqCst));
        assert!(threads_named(&name) <= 4);
        assert!(took >= Duration::from_millis(200), "16 jobs x 50 ms on 4 threads took only {took:?}");
    });
}

/// Jobs run one after another reuse one idle thread rather than starting new ones.
#[test]
fn idle_thread_is_reused() {
    with_timeout(10, || {
        let name = unique_name("bl-reu");
        let rt = pool_rt(&name, 8, Duration::from_secs(5));
        let ids = rt.block_on(async {
            let mut ids = std::collections::HashSet::new();
            for _ in 0..20 {
                ids.insert(task::spawn_blocking(|| std::thread::current().id()).await.unwrap());
                // The job's result wakes this task before its thread is back in the idle
                // list; give the thread a moment to park so reuse (not that race) is tested.
                blitz_io::time::sleep(Duration::from_millis(5)).await;
            }
            ids
        });
        assert!(ids.len() <= 2, "20 sequential jobs used {} threads", ids.len());
        assert!(threads_named(&name) <= 2);
    });
}

/// Idle pool threads exit once `thread_keep_alive` (100 ms) has passed, not before.
#[test]
fn idle_threads_exit_after_keep_alive() {
    with_timeout(10, || {
        let name = unique_name("bl-ka");
        let rt = pool_rt(&name, 4, Duration::from_millis(100));
        rt.block_on(async {
            let hs: Vec<_> =
                (0..4).map(|_| task::spawn_blocking(|| std::thread::sleep(Duration::from_millis(30)))).collect();
            for h in hs {
                h.await.unwrap();
            }
        });
        let idle_since = Instant::now();
        assert_eq!(threads_named(&name), 4, "four pool threads after four concurrent jobs");
        std::thread::sleep(Duration::from_millis(40));
        if idle_since.elapsed() < Duration::from_millis(90) {
            assert_eq!(threads_named(&name), 4, "threads must stay for the keep-alive");
        }
        assert!(
            eventually(Duration::from_secs(2), || threads_named(&name) == 0),
            "{} idle pool threads still alive {:?} after the last job (keep-alive 100 ms)",
            threads_named(&name),
            idle_since.elapsed()
        );
        // The pool starts threads again on demand.
        assert_eq!(rt.block_on(async { task::spawn_blocking(|| 3).await.unwrap() }), 3);
        assert!(eventually(Duration::from_secs(1), || threads_named(&name) == 1));
        drop(rt);
        assert!(eventually(Duration::from_secs(2), || threads_named(&name) == 0));
    });
}

/// `spawn_blocking` from inside a blocking closure, and `Handle::spawn_blocking` from a
/// thread outside the runtime.
#[test]
fn spawn_blocking_from_everywhere() {
    with_timeout(10, || {
        let rt = Builder::new_multi_thread().worker_threads(2).max_blocking_threads(4).build().unwrap();
        let handle = rt.handle().clone();
        let from_thread = std::thread::spawn(move || handle.spawn_blocking(|| 5)).join().unwrap();
        let v = rt.block_on(async move {
            let nested = task::spawn_blocking(|| {
                // Not awaited here (this thread may not block_on its own pool's task...
                // but it may): hand the handle back.
                Handle::current().spawn_blocking(|| 10)
            })
            .await
            .unwrap();
            let in_task = task::spawn(async { task::spawn_blocking(|| 20).await.unwrap() }).await.unwrap();
            nested.await.unwrap() + in_task + from_thread.await.unwrap()
        });
        assert_eq!(v, 35);
    });
}

/// A blocking closure may block on a future of its runtime through `Handle::block_on`.
#[test]
fn handle_block_on_inside_spawn_blocking() {
    with_timeout(10, || {
        let rt = Builder::new_multi_thread().worker_threads(2).build().unwrap();
        let v = rt.block_on(async {
            task::spawn_blocking(|| {
                Handle::current().block_on(async {
                    blitz_io::time::sleep(Duration::from_millis(5)).await;
                    task::spawn(async { 8 }).await.unwrap()
                })
            })
            .await
            .unwrap()
        });
        assert_eq!(v, 8);
    });
}

/// Long blocking jobs do not stall async tasks on a current-thread runtime.
#[test]
fn blocking_jobs_do_not_stall_tasks() {
    with_timeout(10, || {
        let rt = pool_rt(&unique_name("bl-stl"), 4, Duration::from_secs(1));
        rt.block_on(async {
            let slow = task::spawn_blocking(|| std::thread::sleep(Duration::from_millis(300)));
            let t0 = Instant::now();
            blitz_io::time::sleep(Duration::from_millis(10)).await;
            assert!(t0.elapsed() < Duration::from_millis(250), "timer waited for the blocking job");
            slow.await.unwrap();
        });
    });
}

/// `Builder::thread_name` names the runtime's worker threads and its blocking-pool
/// threads.
#[test]
fn thread_name_names_workers_and_blocking_threads() {
    with_timeout(20, || {
        for multi in [true, false] {
            let name = unique_name("tn");
            let rt = if multi {
                Builder::new_multi_thread().worker_threads(2).thread_name(name.clone()).build().unwrap()
            } else {
                Builder::new_current_thread().thread_name(name.clone()).build().unwrap()
            };
            let seen = rt.block_on(async {
                task::spawn_blocking(|| std::thread::current().name().map(str::to_owned)).await.unwrap()
            });
            assert_eq!(seen.as_deref(), Some(name.as_str()), "blocking thread");
            if multi {
                // A worker names itself once it runs: under load that may be a moment
                // after `build` returned.
                assert!(
                    eventually(Duration::from_secs(10), || threads_named(&name) == 2 + 1),
                    "2 workers and the blocking thread, found {}",
                    threads_named(&name)
                );
            }
        }
    });
}
