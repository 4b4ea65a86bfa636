//! Runtime micro-benchmarks, in-process, one contender per process:
//!
//! ```text
//! rtbench --contender <blitz-mt|blitz-ct|tokio-mt|tokio-ct|smol> --bench <spawn|pingpong|timers>
//!         [--n N] [--cpu C]
//! ```
//! * `spawn`: spawn + join cost per task (tasks spawned in batches of 1024, all joined).
//! * `pingpong`: two tasks waking each other through a runtime-agnostic flag+waker;
//!   cost per round trip (two wakes, two polls).
//! * `timers`: 10,000 concurrent sleeps (10–20 ms deadlines); lateness percentiles and
//!   CPU per timer.
//!
//! Prints one JSON line; `ns_per_op` is the headline number (lower is better).
//! Each bench runs once untimed (warm-up) and once timed.

pub use blitz_io_bench::{self_cpu_secs, Args, Json};
use std::future::{poll_fn, Future};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::task::{Poll, Waker};
use std::time::Instant;

/// A one-bit event with a single waiter, independent of any runtime.
#[derive(Default)]
pub struct Flag {
    set: AtomicBool,
    waker: Mutex<Option<Waker>>,
}

impl Flag {
    pub fn notify(&self) {
        self.set.store(true, Ordering::Release);
        let w = self.waker.lock().unwrap().take();
        if let Some(w) = w {
            w.wake();
        }
    }
    pub fn wait(&self) -> impl Future<Output = ()> + '_ {
        poll_fn(move |cx| {
            if self.set.swap(false, Ordering::Acquire) {
                return Poll::Ready(());
            }
            *self.waker.lock().unwrap() = Some(cx.waker().clone());
            if self.set.swap(false, Ordering::Acquire) {
                self.waker.lock().unwrap().take();
                return Poll::Ready(());
            }
            Poll::Pending
        })
    }
}

pub struct Out {
    pub ns_per_op: f64,
    pub ops: u64,
    pub extra: Vec<(&'static str, f64)>,
}

/// Generates the three benches for one runtime, given its spawn function, its sleep
/// function and how to turn an awaited join handle into the task's output.
macro_rules! rt_benches {
    ($spawn:path, $sleep:path, |$h:ident| $join:expr) => {
        pub async fn spawn_join(n: usize) -> $crate::Out {
            let batch = 1024;
            let t = std::time::Instant::now();
            let cpu = $crate::self_cpu_secs();
            let mut sum = 0u64;
            let mut done = 0;
            while done < n {
                let b = batch.min(n - done);
                let mut hs = Vec::with_capacity(b);
                for i in 0..b {
                    hs.push($spawn(async move { i as u64 }));
                }
                for $h in hs {
                    sum += $join;
                }
                done += b;
            }
            let el = t.elapsed();
            let cpu = $crate::self_cpu_secs() - cpu;
            assert!(sum > 0);
            $crate::Out {
                ns_per_op: el.as_nanos() as f64 / n as f64,
                ops: n as u64,
                extra: vec![("cpu_ns_per_op", cpu * 1e9 / n as f64)],
            }
        }

        pub async fn pingpong(n: usize) -> $crate::Out {
            let a = std::sync::Arc::new($crate::Flag::default());
            let b = std::sync::Arc::new($crate::Flag::default());
            let t = std::time::Instant::now();
            let cpu = $crate::self_cpu_secs();
            let (a1, b1) = (a.clone(), b.clone());
            let ta = $spawn(async move {
                for _ in 0..n {
                    b1.notify();
                    a1.wait().await;
                }
                0u64
            });
            let (a2, b2) = (a.clone(), b.clone());
            let tb = $spawn(async move {
                for _ in 0..n {
                    b2.wait().await;
                    a2.notify();
                }
                0u64
            });
            for $h in [ta, tb] {
                let _: u64 = $join;
            }
            let el = t.elapsed();
            let cpu = $crate::self_cpu_secs() - cpu;
            $crate::Out {
                ns_per_op: el.as_nanos() as f64 / n as f64,
                ops: n as u64,
                extra: vec![("cpu_ns_per_op", cpu * 1e9 / n as f64)],
            }
        }

        pub async fn timers(n: usize) -> $crate::Out {
            let t = std::time::Instant::now();
            let cpu = $crate::self_cpu_secs();
            let mut hs = Vec::with_capacity(n);
            for i in 0..n {
                let deadline = t + std::time::Duration::from_micros(10_000 + (i as u64 % 50) * 200);
                hs.push($spawn(async move {
                    $sleep(deadline.saturating_duration_since(std::time::Instant::now())).await;
                    std::time::Instant::now().saturating_duration_since(deadline).as_nanos() as u64
                }));
            }
            let registered = t.elapsed();
            let mut late = Vec::with_capacity(n);
            for $h in hs {
                late.push($join);
            }
            let el = t.elapsed();
            let cpu = $crate::self_cpu_secs() - cpu;
            late.sort_unstable();
            let q = |p: f64| late[((late.len() as f64 - 1.0) * p) as usize] as f64 / 1000.0;
            $crate::Out {
                ns_per_op: cpu * 1e9 / n as f64,
                ops: n as u64,
                extra: vec![
                    ("cpu_ns_per_op", cpu * 1e9 / n as f64),
                    ("register_ms", registered.as_secs_f64() * 1e3),
                    ("elapsed_ms", el.as_secs_f64() * 1e3),
                    ("late_p50_us", q(0.5)),
                    ("late_p99_us", q(0.99)),
                    ("late_max_us", q(1.0)),
                ],
            }
        }
    };
}

mod tk {
    rt_benches!(tokio::spawn, tokio::time::sleep, |h| h.await.unwrap());
}

mod sm {
    pub static EX: async_executor::Executor<'static> = async_executor::Executor::new();
    pub fn spawn<F: std::future::Future + Send + 'static>(f: F) -> async_executor::Task<F::Output>
    where
        F::Output: Send + 'static,
    {
        EX.spawn(f)
    }
    pub async fn sleep(d: std::time::Duration) {
        async_io::Timer::after(d).await;
    }
    rt_benches!(spawn, sleep, |h| h.await);
}

#[cfg(feature = "blitz")]
mod bz {
    rt_benches!(blitz_io::task::spawn, blitz_io::time::sleep, |h| h.await.unwrap());
}

fn run_bench<F>(
    block_on: &dyn Fn(std::pin::Pin<Box<dyn Future<Output = Out> + Send>>) -> Out,
    mk: impl Fn() -> F,
) -> Out
where
    F: Future<Output = Out> + Send + 'static,
{
    let _warm = block_on(Box::pin(mk()));
    block_on(Box::pin(mk()))
}

fn main() {
    let a = Args::parse();
    blitz_io_bench::apply_cpu_arg(&a);
    let contender = a.str_or("contender", "tokio-mt");
    let bench = a.str_or("bench", "spawn");
    let default_n = match bench.as_str() {
        "timers" => 10_000,
        _ => 200_000,
    };
    let n: usize = a.num("n", default_n);
    let t = Instant::now();

    macro_rules! pick {
        ($m:ident, $bo:expr) => {{
            let bo = $bo;
            match bench.as_str() {
                "spawn" => run_bench(&bo, || $m::spawn_join(n)),
                "pingpong" => run_bench(&bo, || $m::pingpong(n)),
                "timers" => run_bench(&bo, || $m::timers(n)),
                b => {
                    eprintln!("unknown bench {b}");
                    std::process::exit(2)
                }
            }
        }};
    }

    let out = match contender.as_str() {
        "tokio-mt" | "tokio-ct" => {
            let rt = if contender == "tokio-mt" {
                tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap()
            } else {
                tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap()
            };
            // the bench body runs as a spawned task (as a server's tasks would), not on block_on's thread
            pick!(tk, |f: std::pin::Pin<Box<dyn Future<Output = Out> + Send>>| rt
                .block_on(async move { tokio::spawn(f).await.unwrap() }))
        }
        "smol" => pick!(sm, |f: std::pin::Pin<Box<dyn Future<Output = Out> + Send>>| async_io::block_on(
            sm::EX.run(sm::EX.spawn(f))
        )),
        #[cfg(feature = "blitz")]
        "blitz-mt" | "blitz-ct" => {
            let rt = if contender == "blitz-mt" {
                blitz_io::runtime::Builder::new_multi_thread().worker_threads(2).build().unwrap()
            } else {
                blitz_io::runtime::Builder::new_current_thread().build().unwrap()
            };
            pick!(bz, |f: std::pin::Pin<Box<dyn Future<Output = Out> + Send>>| rt
                .block_on(async move { blitz_io::task::spawn(f).await.unwrap() }))
        }
        c => {
            eprintln!("rtbench: unknown or not-built contender {c:?}");
            std::process::exit(2)
        }
    };
    let mut j = Json::new()
        .str("contender", contender)
        .str("bench", bench)
        .num("n", out.ops as f64)
        .num("ns_per_op", out.ns_per_op);
    for (k, v) in out.extra {
        j = j.num(k, v);
    }
    j = j.num("wall_s", t.elapsed().as_secs_f64());
    println!("{}", j.to_line());
}
