//! The CPU gate: whether a driver batch should be shared with an idle worker, judged
//! by whether the workers that helped before actually got a CPU.
//!
//! # Why
//!
//! Sharing a driver batch wakes a second worker. That pays off when a core is free. When
//! every core is already busy (on the benchmark machine: one worker and the load
//! generator on two cores), the woken worker does not get a core of its own: it waits on
//! a run queue and then takes turns with whatever ran there. Measured at 500 connections
//! (`/proc/<tid>/schedstat`, 2 s of load, `SHARE_BACKLOG` = 128): both workers ran ~50%
//! of a core and waited for a CPU ~40% as long as they ran, and the load generator was
//! preempted 7,600 times; with sharing switched off, one worker ran at 100% and waited
//! 1%, and throughput was 8–20% higher (as the current-thread runtime's). A fixed
//! threshold cannot tell the two machines apart; the workers' own clocks can.
//!
//! # The measure
//!
//! A worker woken by a notify (a *helper*) measures its busy stint, from waking to
//! parking again: wall time and its thread's CPU time (`CLOCK_THREAD_CPUTIME_ID`). A
//! worker that runs tasks does not block (I/O is non-blocking and driver turns in a busy
//! loop have a zero timeout), so `wall - cpu` is time it was runnable but not running:
//! it waited for a CPU. (A task that blocks its worker, against the rules, also counts
//! as waiting; the worst that does is keep batches on one worker for a while.) Only
//! time spent *beside another awake worker* counts: a part of a stint after which every
//! other worker is found parked is left out, since a helper running alone says nothing
//! about whether two workers fit. Stints add up into a window of at least [`WINDOW`] of
//! such time; then the window is judged:
//!
//! * waited more than [`CONTENDED`] of the wall time: the gate **closes** for a backoff
//!   (starting at [`BACKOFF_MIN`], doubling while it keeps finding contention, up to
//!   [`BACKOFF_MAX`]); while closed, driver batches stay with the worker that turned the
//!   driver. The helper that found the contention **retires**: it runs the tasks in its
//!   own queue, takes no more from other workers' queues, leaves the driver to the
//!   others (the events it picked up would keep its own queue from running dry), and
//!   parks;
//! * otherwise the backoff halves (not below [`BACKOFF_MIN`]). Halving rather than
//!   resetting: on a machine without a free core a helper now and then gets a clean
//!   window by luck (the worker it helps waits instead), and one such window must not
//!   bring back probing every few tens of milliseconds; on a machine that has a free
//!   core, helpers find clean windows one after another and the backoff is back at its
//!   minimum within a few of them.
//!
//! A helper checks its window at park and every `EVENT_INTERVAL` ticks while it runs,
//! since a helper that keeps finding tasks to steal may not park for a long time.
//! (Without retiring, closing the gate alone changed nothing measurable: the two
//! workers, once both awake, kept stealing each other's batches.)
//!
//! When the backoff ends the gate opens by itself: the next batch over the backlog
//! threshold is shared again, and that helper's stints are the next probe. On a machine
//! that stays CPU-bound, probing costs one window in every `BACKOFF_MAX`.
//!
//! # What it does not touch
//!
//! Only driver batches consult the gate. Spawns, wakes from tasks and the injector still
//! notify at once (they may be long computations that want a core of their own), work
//! stealing by awake workers other than a retiring helper is unchanged, and the watchdog
//! still takes over from a worker stuck in a long poll. A closed gate can therefore make I/O batches wait for
//! one worker, never strand a task: the park/wake protocol does not depend on it.
//!
//! A retiring worker's last look before sleeping (park step 3) checks the injector but
//! not the other workers' local queues. That is safe because only a worker pushes to
//! its own local queue and it parks only with that queue empty: a non-empty local queue
//! has an awake owner that will run it. The one exception is an owner stuck in a long
//! poll, and that is what the watchdog is for: the retired worker sleeps with the
//! watchdog timeout, sees that nobody turned the driver, and takes over (no longer
//! retiring).
//!
//! # Measured: what the gate got wrong, and what is left
//!
//! On the 2-core benchmark machine at 500 connections (load generator on one core)
//! the gate used to let the second worker in far more often than its backoff says:
//!
//! * A helper whose partner parked went on judging windows alone; it waited for
//!   nobody, so the window passed and reset the backoff. A 1 s `sched_switch` trace
//!   showed the second worker running 17% of the time, on the first worker's core.
//!   Hence the "beside another worker" rule above.
//! * A retiring helper kept turning the driver, so its own queue never ran dry: traces
//!   showed "retiring" helpers judging contended windows back to back for 40–100 ms.
//!   A retiring helper now leaves the driver alone.
//! * A helper that gets its CPU while the worker it helps waits passes its window: one
//!   such lucky window reset the backoff to 20 ms. A good window now halves it.
//!
//! With all three, the second worker runs under 1% of a core over 3 s, against 3–17%
//! before. In throughput the fixes are small and hard to separate from this machine's
//! noise (±5% per round): side by side (`scripts/ab-servers.sh`, 10 rounds, 500
//! connections) the last two fixes with the watchdog change in `multi_thread.rs` ran
//! 1.028× the build before them, but all of the gate and watchdog changes above
//! together against the build before any of them (76b2669) measured 1.002×; the sliced bench
//! moved 2 workers against current-thread from 0.96× to 0.97×. What closed the gap at
//! 500 connections was elsewhere: the skipped event turns in `multi_thread.rs`.
//!
//! Tried and dropped: the system's CPU pressure (`/proc/pressure/cpu`, total time some
//! task waited for a CPU) as a second signal. Read at each check, its total did not
//! move during helper windows in which wall − CPU showed 1.5–2.5 ms of waiting in 2–4
//! ms, so it could not tell those windows apart; the thread's own clocks could.
//!
//! # Races
//!
//! The gate is two relaxed atomics; a stale read only shares one batch too many or too
//! few. Two helpers judging windows at once both close it; the later backoff wins.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

/// Wall time a helper's stints must add up to before they are judged.
const WINDOW: Duration = Duration::from_millis(5);
/// Fraction (in 1/256) of a window spent waiting for a CPU above which the gate closes.
const CONTENDED: u64 = 64; // 25%
/// First closing time.
const BACKOFF_MIN: Duration = Duration::from_millis(20);
/// Longest closing time.
const BACKOFF_MAX: Duration = Duration::from_millis(2000);

/// Test builds only: judge every window contended, so helpers retire at their first
/// check (exercises the retiring path of the worker loop deterministically).
#[cfg(test)]
pub(crate) static FORCE_CONTENDED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Whether a test forces contention (always `false` outside test builds).
#[inline]
fn forced() -> bool {
    #[cfg(test)]
    return FORCE_CONTENDED.load(Relaxed);
    #[cfg(not(test))]
    false
}

/// The shared gate of one runtime.
#[derive(Debug)]
pub(crate) struct CpuGate {
    epoch: Instant,
    /// Closed until this many nanoseconds after `epoch` (0: open).
    closed_until: AtomicU64,
    /// Next closing time, in milliseconds.
    backoff_ms: AtomicU32,
}

impl CpuGate {
    pub(crate) fn new() -> CpuGate {
        CpuGate {
            epoch: Instant::now(),
            closed_until: AtomicU64::new(0),
            backoff_ms: AtomicU32::new(BACKOFF_MIN.as_millis() as u32),
        }
    }

    fn nanos(&self, t: Instant) -> u64 {
        u64::try_from(t.saturating_duration_since(self.epoch).as_nanos()).unwrap_or(u64::MAX)
    }

    /// Whether a driver batch may be shared now.
    pub(crate) fn is_open(&self) -> bool {
        let until = self.closed_until.load(Relaxed);
        until == 0 || self.nanos(Instant::now()) >= until
    }

    /// Judges a finished window of `wall` time in which the helper waited `waited`.
    /// Returns whether the gate closed.
    pub(crate) fn judge(&self, wall: Duration, waited: Duration, now: Instant) -> bool {
        let contended = forced() || waited.as_nanos() * 256 > wall.as_nanos() * u128::from(CONTENDED);
        if !contended {
            let backoff = self.backoff_ms.load(Relaxed);
            self.backoff_ms.store((backoff / 2).max(BACKOFF_MIN.as_millis() as u32), Relaxed);
            return false;
        }
        let backoff = self.backoff_ms.load(Relaxed);
        self.backoff_ms.store((backoff.saturating_mul(2)).min(BACKOFF_MAX.as_millis() as u32), Relaxed);
        let until = self.nanos(now).saturating_add(u64::from(backoff) * 1_000_000).max(1);
        self.closed_until.store(until, Relaxed);
        true
    }
}

/// One worker's measurement of its helper stints.
#[derive(Debug, Default)]
pub(crate) struct Stints {
    /// Start of the part of the current stint not yet counted: wall clock and thread
    /// CPU time. `None` outside a helper stint.
    start: Option<(Instant, Duration)>,
    /// Wall and CPU time counted into the current window so far.
    wall: Duration,
    cpu: Duration,
}

impl Stints {
    /// A stint starts: the worker was woken by a notify. Reads the thread's CPU clock.
    pub(crate) fn begin(&mut self) {
        if let Some(cpu) = crate::sys::thread_cpu_time() {
            self.start = Some((Instant::now(), cpu));
        }
    }

    /// Whether a helper stint is being measured.
    pub(crate) fn active(&self) -> bool {
        self.start.is_some()
    }

    /// Counts the stint so far into the window and judges the window once it is long
    /// enough. Returns `true` when the window was contended: the helper should stop
    /// taking other workers' tasks and park once its own are done.
    ///
    /// `alone`: every other worker is parked now. The helper was then (as far as one
    /// look can tell) the only worker running since the last check, not a second one
    /// beside another, and that part says nothing about sharing: it is left out of the
    /// window. The stint goes on, so its window fills only with time spent beside
    /// another worker, whichever of the two happens to park in between.
    pub(crate) fn check(&mut self, gate: &CpuGate, alone: bool) -> bool {
        let Some((t0, c0)) = self.start else { return false };
        let Some(c1) = crate::sys::thread_cpu_time() else { return false };
        let now = Instant::now();
        self.start = Some((now, c1));
        if alone {
            return false;
        }
        self.wall += now.saturating_duration_since(t0);
        self.cpu += c1.saturating_sub(c0);
        if self.wall < WINDOW && !forced() {
            return false;
        }
        let waited = self.wall.saturating_sub(self.cpu);
        let wall = std::mem::take(&mut self.wall);
        self.cpu = Duration::ZERO;
        gate.judge(wall, waited, now)
    }

    /// The worker parks: counts the stint into the window (judging it if long enough)
    /// and ends it.
    pub(crate) fn end(&mut self, gate: &CpuGate, alone: bool) {
        self.check(gate, alone);
        self.start = None;
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    /// The tests of this module run one at a time: one of them sets [`FORCE_CONTENDED`].
    fn serial() -> std::sync::MutexGuard<'static, ()> {
        static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());
        SERIAL.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    #[test]
    fn contention_closes_the_gate_with_a_growing_backoff() {
        let _serial = serial();
        let gate = CpuGate::new();
        assert!(gate.is_open());
        let now = Instant::now();
        assert!(!gate.judge(Duration::from_millis(10), Duration::from_millis(1), now), "10% waiting is fine");
        assert!(gate.is_open());
        assert!(gate.judge(Duration::from_millis(10), Duration::from_millis(4), now), "40% waiting closes");
        assert!(!gate.is_open());
        let first = gate.closed_until.load(Relaxed);
        assert!(gate.judge(Duration::from_millis(10), Duration::from_millis(4), now));
        let second = gate.closed_until.load(Relaxed);
        assert!(second > first, "the backoff doubles while contention lasts");
        let grown = gate.backoff_ms.load(Relaxed);
        assert_eq!(grown, 4 * BACKOFF_MIN.as_millis() as u32, "doubled twice");
        assert!(!gate.judge(Duration::from_millis(10), Duration::ZERO, now));
        assert_eq!(gate.backoff_ms.load(Relaxed), grown / 2, "a good window halves it");
        for _ in 0..10 {
            gate.judge(Duration::from_millis(10), Duration::ZERO, now);
        }
        assert_eq!(
            gate.backoff_ms.load(Relaxed),
            BACKOFF_MIN.as_millis() as u32,
            "good windows bring it to the minimum"
        );
    }

    #[test]
    fn the_gate_reopens_by_itself() {
        let _serial = serial();
        let gate = CpuGate::new();
        gate.judge(Duration::from_millis(10), Duration::from_millis(9), Instant::now());
        assert!(!gate.is_open());
        // A closing that ended in the past (1 ns after the gate was made) leaves it open.
        std::thread::sleep(Duration::from_millis(1));
        gate.closed_until.store(1, Relaxed);
        assert!(gate.is_open());
    }

    #[test]
    fn a_helper_that_does_not_get_a_cpu_retires() {
        let _serial = serial();
        let gate = CpuGate::new();
        let mut s = Stints::default();
        assert!(!s.check(&gate, false), "no stint, nothing to judge");
        s.begin();
        if !s.active() {
            return; // no thread CPU clock on this platform
        }
        assert!(!s.check(&gate, false), "a window shorter than WINDOW is not judged");
        std::thread::sleep(WINDOW + Duration::from_millis(1));
        assert!(s.check(&gate, false), "a helper that waited the whole window retires");
        assert!(s.active(), "the stint goes on until the worker parks");
        s.end(&gate, false);
        assert!(!s.active());
    }

    #[test]
    fn a_helper_left_alone_is_not_judged() {
        let _serial = serial();
        let gate = CpuGate::new();
        let mut s = Stints::default();
        s.begin();
        if !s.active() {
            return; // no thread CPU clock on this platform
        }
        // A stint that waited a whole window would close the gate (see above), but the
        // other workers were parked: the helper ran alone, and that time stays out of
        // the window.
        std::thread::sleep(WINDOW + Duration::from_millis(1));
        assert!(!s.check(&gate, true), "alone: no verdict");
        assert!(s.active(), "the stint goes on");
        assert_eq!(s.wall, Duration::ZERO, "the time alone is not counted");
        assert!(gate.is_open(), "nothing was judged");
        // Once another worker runs beside it, waiting counts again.
        std::thread::sleep(WINDOW + Duration::from_millis(1));
        assert!(s.check(&gate, false), "a helper that waited beside another worker retires");
        assert!(!gate.is_open());
        // Nor does a helper parking alone judge anything.
        let gate = CpuGate::new();
        s.begin();
        std::thread::sleep(WINDOW + Duration::from_millis(1));
        s.end(&gate, true);
        assert!(!s.active());
        assert!(gate.is_open(), "a helper parking alone closes nothing");
    }

    #[test]
    fn stints_measure_waiting_as_wall_minus_cpu() {
        let _serial = serial();
        let gate = CpuGate::new();
        let mut s = Stints::default();
        // A stint spent sleeping (not running) for longer than a window: all of it waits.
        s.begin();
        if s.start.is_none() {
            return; // no thread CPU clock on this platform
        }
        std::thread::sleep(WINDOW + Duration::from_millis(1));
        s.end(&gate, false);
        assert!(!gate.is_open(), "a helper that did not run closes the gate");
        // A stint spent computing: the CPU clock keeps up with the wall clock.
        let gate = CpuGate::new();
        s.begin();
        let t = Instant::now();
        let mut x = 0u64;
        while t.elapsed() < WINDOW + Duration::from_millis(1) {
            x = std::hint::black_box(x.wrapping_add(1));
        }
        s.end(&gate, false);
        // On a machine too busy to give this thread a CPU the gate may close; the
        // computing stint must at least have been measured.
        assert_eq!(s.wall, Duration::ZERO, "the window was judged and reset");
    }

    /// Every worker retiring at once, each with a queue that never runs dry (tasks that
    /// keep yielding): the driver must still be turned, or no timer fires and no I/O is
    /// seen. A retiring worker leaves the driver only to a worker that does turn it.
    #[test]
    fn retiring_workers_with_full_queues_still_turn_the_driver() {
        use std::sync::atomic::AtomicBool;
        use std::sync::Arc;
        let _serial = serial();
        FORCE_CONTENDED.store(true, Relaxed);
        let rt = crate::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
        let stop = Arc::new(AtomicBool::new(false));
        let (tx, rx) = std::sync::mpsc::channel();
        let spinners_stop = stop.clone();
        let runner = std::thread::spawn(move || {
            // Let the workers park first: only a worker woken by a notify measures its
            // stint (and so can retire).
            std::thread::sleep(Duration::from_millis(50));
            let took = rt.block_on(async move {
                for _ in 0..200 {
                    let stop = spinners_stop.clone();
                    crate::task::spawn(async move {
                        while !stop.load(Relaxed) {
                            crate::task::yield_now().await;
                        }
                    });
                }
                // Give the workers time to pick up the spinners and retire (this thread
                // does not turn the driver) before the timer is set.
                let spin = Instant::now();
                while spin.elapsed() < Duration::from_millis(100) {
                    std::hint::spin_loop();
                }
                let t0 = Instant::now();
                crate::time::sleep(Duration::from_millis(20)).await;
                t0.elapsed()
            });
            let _ = tx.send(took);
        });
        let took = rx.recv_timeout(Duration::from_secs(10));
        // Let the spinners end (so a failing run still finishes), then restore.
        stop.store(true, Relaxed);
        FORCE_CONTENDED.store(false, Relaxed);
        let _ = runner.join();
        let took = took.expect("a 20 ms timer fired within 10 s while every worker was retiring");
        assert!(took < Duration::from_secs(2), "a 20 ms timer took {took:?} while every worker was retiring");
    }

    /// With every helper retiring at once and the gate always closed, a multi-thread
    /// runtime still runs everything: I/O on many connections, spawn bursts, tasks
    /// waking each other. (The retiring path must never strand a task.)
    #[test]
    fn retiring_helpers_strand_no_task() {
        let _serial = serial();
        FORCE_CONTENDED.store(true, Relaxed);
        let rt = crate::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let total = rt.block_on(async {
                let listener = crate::net::TcpListener::bind(crate::net::Address::loopback_v4(0)).expect("bind");
                let addr = listener.local_addr().expect("addr");
                crate::task::spawn(async move {
                    while let Ok(conn) = listener.accept().await {
                        let mut s = conn.stream;
                        crate::task::spawn(async move {
                            let mut buf = [0u8; 64];
                            while let Ok(n @ 1..) = s.read(&mut buf).await {
                                if s.write_all(&buf[..n]).await.is_err() {
                                    break;
                                }
                            }
                        });
                    }
                });
                let mut clients = Vec::new();
                for c in 0..200u64 {
                    clients.push(crate::task::spawn(async move {
                        let mut s = crate::net::TcpStream::connect(addr).await.expect("connect");
                        let mut sum = 0u64;
                        for round in 0..20u64 {
                            let msg = (c * 1000 + round).to_le_bytes();
                            s.write_all(&msg).await.expect("write");
                            let mut back = [0u8; 8];
                            let mut got = 0;
                            while got < back.len() {
                                let n = s.read(&mut back[got..]).await.expect("read");
                                assert!(n > 0, "server closed early");
                                got += n;
                            }
                            assert_eq!(back, msg, "echo of client {c} round {round}");
                            // A burst of spawned tasks between round trips.
                            let hs: Vec<_> = (0..8u64).map(|i| crate::task::spawn(async move { i })).collect();
                            for h in hs {
                                sum += h.await.expect("task");
                            }
                        }
                        sum
                    }));
                }
                let mut total = 0;
                for h in clients {
                    total += h.await.expect("client");
                }
                total
            });
            let _ = tx.send(total);
        });
        let total = rx.recv_timeout(Duration::from_secs(60)).expect("the workload finishes within 60 s");
        FORCE_CONTENDED.store(false, Relaxed);
        assert_eq!(total, 200 * 20 * 28, "every spawned task ran and returned its value");
    }
}
