//! An idle runtime burns no CPU: process CPU time (getrusage, user + system) over one
//! second of idleness stays under 50 ms, for every flavour and after a burst of work.
//!
//! The tests take a lock so that only one measures at a time (the measure is
//! process-wide); this binary holds nothing else.

mod support;

use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use blitz_io::runtime::{Builder, Runtime};
use blitz_io::task;
use blitz_io::time::sleep;
use support::{process_cpu_time, unique_name, with_timeout};

const IDLE: Duration = Duration::from_secs(1);
const LIMIT: Duration = Duration::from_millis(50);

fn serial() -> MutexGuard<'static, ()> {
    static SERIAL: Mutex<()> = Mutex::new(());
    SERIAL.lock().unwrap_or_else(PoisonError::into_inner)
}

fn multi() -> Runtime {
    Builder::new_multi_thread().worker_threads(2).thread_name(unique_name("idle")).build().unwrap()
}

fn current() -> Runtime {
    Builder::new_current_thread().thread_name(unique_name("idle")).build().unwrap()
}

/// CPU time used while `rt` blocks on a one-second sleep.
fn cpu_during_block_on_sleep(rt: &Runtime) -> Duration {
    rt.block_on(async {
        // Let start-up work (thread creation, first parks) settle first.
        sleep(Duration::from_millis(50)).await;
        let before = process_cpu_time();
        sleep(IDLE).await;
        process_cpu_time() - before
    })
}

#[test]
fn multi_thread_idle_in_block_on_sleep() {
    with_timeout(20, || {
        let _s = serial();
        let rt = multi();
        let used = cpu_during_block_on_sleep(&rt);
        println!("multi_thread(2) idle 1 s in block_on(sleep): {used:?} CPU");
        assert!(used < LIMIT, "multi_thread runtime used {used:?} CPU in 1 s of idleness");
    });
}

#[test]
fn current_thread_idle_in_block_on_sleep() {
    with_timeout(20, || {
        let _s = serial();
        let rt = current();
        let used = cpu_during_block_on_sleep(&rt);
        println!("current_thread idle 1 s in block_on(sleep): {used:?} CPU");
        assert!(used < LIMIT, "current_thread runtime used {used:?} CPU in 1 s of idleness");
    });
}

/// A multi-thread runtime with no `block_on` at all, no tasks: workers parked.
#[test]
fn multi_thread_idle_without_block_on() {
    with_timeout(20, || {
        let _s = serial();
        let rt = multi();
        std::thread::sleep(Duration::from_millis(50));
        let before = process_cpu_time();
        std::thread::sleep(IDLE);
        let used = process_cpu_time() - before;
        println!("multi_thread(2) idle 1 s, nothing running: {used:?} CPU");
        assert!(used < LIMIT, "idle workers used {used:?} CPU in 1 s");
        drop(rt);
    });
}

/// After a burst of 20,000 tasks, blocking jobs and timers, with tasks left parked on
/// long timers and `pending()`, and idle blocking threads in their keep-alive: the
/// runtime goes back to sleep.
#[test]
fn idle_after_a_burst_of_work() {
    with_timeout(30, || {
        let _s = serial();
        for (label, rt) in [("multi_thread(2)", multi()), ("current_thread", current())] {
            rt.block_on(async {
                let hs: Vec<_> = (0..20_000u64)
                    .map(|i| {
                        task::spawn(async move {
                            if i % 100 == 0 {
                                sleep(Duration::from_millis(i % 7)).await;
                            }
                            task::yield_now().await;
                            i
                        })
                    })
                    .collect();
                for h in hs {
                    h.await.unwrap();
                }
                let bs: Vec<_> = (0..4).map(|i| task::spawn_blocking(move || i)).collect();
                for b in bs {
                    b.await.unwrap();
                }
                task::spawn(sleep(Duration::from_secs(3600)));
                task::spawn(std::future::pending::<()>());
            });
            let used = cpu_during_block_on_sleep(&rt);
            println!("{label} idle 1 s after a burst: {used:?} CPU");
            assert!(used < LIMIT, "{label}: {used:?} CPU in 1 s of idleness after a burst");
        }
    });
}

/// The fallback driver idles too once its timers are done.
#[test]
fn fallback_driver_idle() {
    with_timeout(20, || {
        let _s = serial();
        futures_executor::block_on(sleep(Duration::from_millis(5)));
        let before = process_cpu_time();
        futures_executor::block_on(sleep(IDLE));
        let used = process_cpu_time() - before;
        println!("fallback driver, 1 s sleep: {used:?} CPU");
        assert!(used < LIMIT, "fallback driver used {used:?} CPU in 1 s");
    });
}
