//! The multi-thread scheduler's idle bookkeeping: which workers sleep, how many search.
//!
//! [`Idle`] holds the three pieces of shared state of the park/wake protocol described in
//! the [`multi_thread`](super) module doc (this module is declared inside it):
//!
//! * `sleepers`: the indices of parked workers, under a mutex;
//! * `num_idle`: how many indices `sleepers` holds (read without the lock);
//! * `num_searching`: workers awake but without a task, looking for one.
//!
//! It owns the *decisions* of the protocol (whom to notify, whether a worker that wakes
//! is a searcher) and the SeqCst fences; the scheduler owns the queues and the parkers
//! and calls these methods at the points the module doc names.
//!
//! | scheduler step                           | method                              |
//! |------------------------------------------|-------------------------------------|
//! | notify, steps 1–2                        | [`Idle::worker_to_notify`]          |
//! | park, steps 1–2 and the fence of step 3  | [`Idle::transition_to_parked`]      |
//! | park, step 3 (work found) and step 5     | [`Idle::unidle`]                    |
//! | no task, but work elsewhere              | [`Idle::transition_to_searching`]   |
//! | a searcher found a task / exits          | [`Idle::transition_from_searching`] |
//!
//! The types come from [`crate::loom::sync`], so the `loom_tests` below check the push
//! vs. park race against this exact code under `RUSTFLAGS="--cfg loom"`.

use crate::loom::sync::atomic::{fence, AtomicUsize, Ordering};
use crate::loom::sync::{Mutex, MutexGuard};

/// Idle and searching workers of one multi-thread runtime.
#[derive(Debug)]
pub(crate) struct Idle {
    sleepers: Mutex<Vec<usize>>,
    num_idle: AtomicUsize,
    num_searching: AtomicUsize,
    /// How many workers the runtime has: the idle list is full at this length.
    workers: usize,
}

impl Idle {
    /// Bookkeeping for `n` workers, all awake and not searching.
    pub(crate) fn new(n: usize) -> Idle {
        Idle {
            sleepers: Mutex::new(Vec::with_capacity(n)),
            num_idle: AtomicUsize::new(0),
            num_searching: AtomicUsize::new(0),
            workers: n,
        }
    }

    fn sleepers(&self) -> MutexGuard<'_, Vec<usize>> {
        crate::loom::lock(&self.sleepers)
    }

    /// Notify, steps 1–2: called after a task was pushed where another worker can take
    /// it. Returns the worker to unpark, already moved from idle to searching on its
    /// behalf, or `None` when a searcher will find the task anyway or nobody sleeps.
    ///
    /// The caller unparks the returned worker after this returns (outside the lock).
    pub(crate) fn worker_to_notify(&self) -> Option<usize> {
        fence(Ordering::SeqCst);
        if self.num_searching.load(Ordering::SeqCst) > 0 || self.num_idle.load(Ordering::SeqCst) == 0 {
            return None;
        }
        let mut sleepers = self.sleepers();
        let index = sleepers.pop()?;
        self.num_idle.fetch_sub(1, Ordering::SeqCst);
        self.num_searching.fetch_add(1, Ordering::SeqCst);
        Some(index)
    }

    /// Park, steps 1–2 and the fence of step 3: worker `index` found no task. Stops
    /// searching if `was_searching`, joins the idle list, then issues the SeqCst fence
    /// after which the caller must re-check every queue before it sleeps.
    ///
    /// Returns `true` if this worker made the idle list full: it joined last, every other
    /// worker is idle, and it is the one that should sleep in the driver (park step 4).
    /// The list is changed only under its lock, so of workers that park at the same time
    /// exactly one sees it full.
    pub(crate) fn transition_to_parked(&self, index: usize, was_searching: bool) -> bool {
        if was_searching {
            self.num_searching.fetch_sub(1, Ordering::SeqCst);
        }
        let last = {
            let mut sleepers = self.sleepers();
            sleepers.push(index);
            self.num_idle.fetch_add(1, Ordering::SeqCst);
            sleepers.len() == self.workers
        };
        fence(Ordering::SeqCst);
        last
    }

    /// Whether every worker but the caller is parked (a hint: the count is read without
    /// the lock and may be stale by the time it is used).
    pub(crate) fn others_idle(&self) -> bool {
        self.num_idle.load(Ordering::Relaxed) + 1 >= self.workers
    }

    /// Whether every worker is on the idle list.
    pub(crate) fn all_idle(&self) -> bool {
        self.sleepers().len() == self.workers
    }

    /// Whether worker `index` is on the idle list. A worker that slept on its condvar and
    /// finds itself off the list was chosen by a notifier: it is a searcher now.
    pub(crate) fn is_idle(&self, index: usize) -> bool {
        self.sleepers().contains(&index)
    }

    /// Removes `index` from the idle list (park step 3 when work was found, or step 5 on
    /// wake). Returns `false` if a notifier already removed it: the worker is then a
    /// searcher (the notifier counted it in `num_searching`).
    pub(crate) fn unidle(&self, index: usize) -> bool {
        let mut sleepers = self.sleepers();
        match sleepers.iter().position(|&i| i == index) {
            Some(pos) => {
                sleepers.swap_remove(pos);
                self.num_idle.fetch_sub(1, Ordering::SeqCst);
                true
            }
            None => false,
        }
    }

    /// An awake, non-searching worker with no task saw work elsewhere and starts
    /// searching for it.
    pub(crate) fn transition_to_searching(&self) {
        self.num_searching.fetch_add(1, Ordering::SeqCst);
    }

    /// A searching worker stops searching (it found a task, or it exits). Returns `true`
    /// if it was the last searcher: if it leaves work in its own queue, it must notify.
    pub(crate) fn transition_from_searching(&self) -> bool {
        self.num_searching.fetch_sub(1, Ordering::SeqCst) == 1
    }
}

#[cfg(all(test, loom))]
mod loom_tests {
    //! Push vs. park: no task is left queued with every worker asleep, and one sleeper
    //! watches the driver.
    //!
    //! Two workers run the scheduler's loop around the real [`Idle`]; a pusher thread
    //! pushes tasks into a shared queue (a loom `AtomicUsize` counting queued tasks:
    //! `Release` push, `AcqRel` pop, `Acquire` emptiness check, no stronger than the
    //! crossbeam injector guarantees) and notifies exactly as `Shared::schedule` does.
    //!
    //! A worker that decides to sleep first consumes a pending wake-up (the parker's
    //! `NOTIFIED` state: `park` returns at once); without one it ends its thread
    //! "asleep". After every thread finished, the workers holding a wake-up that arrived
    //! after they fell asleep are run again (that is what the unpark does), and then the
    //! queue must be empty, every task run once, both workers asleep and idle, no
    //! searcher left, and one of the sleepers must be the one whose park filled the idle
    //! list (the worker that sleeps in the driver: with every worker asleep, I/O and
    //! timers are still watched). A lost wake-up shows as a task left in the queue: removing either
    //! SeqCst fence from `Idle` makes both models fail that way.
    //!
    //! The `long_tasks` models make every task a computation that never yields: a worker
    //! that takes one is busy for good. Two tasks must then end on two workers, so a push
    //! whose notify was skipped for a searcher that took only one task shows as a task
    //! left queued beside a sleeping worker.

    use super::Idle;
    use crate::loom::sync::atomic::fence;
    use crate::loom::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    use crate::loom::sync::Arc;
    use loom::thread;

    const WORKERS: usize = 2;

    struct Model {
        idle: Idle,
        /// Queued tasks.
        queue: AtomicUsize,
        /// Per-worker pending wake-up (the parker's `NOTIFIED`).
        wake: Vec<AtomicBool>,
        /// Tasks are long computations: a worker that takes one runs it for good.
        long: bool,
        /// Per-worker: it took a long task (it is neither asleep nor idle).
        busy: Vec<AtomicBool>,
    }

    impl Model {
        fn new(long: bool) -> Model {
            Model {
                idle: Idle::new(WORKERS),
                queue: AtomicUsize::new(0),
                wake: (0..WORKERS).map(|_| AtomicBool::new(false)).collect(),
                long,
                busy: (0..WORKERS).map(|_| AtomicBool::new(false)).collect(),
            }
        }

        fn has_work(&self) -> bool {
            self.queue.load(Ordering::Acquire) > 0
        }

        fn pop(&self) -> bool {
            let mut n = self.queue.load(Ordering::Acquire);
            while n > 0 {
                match self.queue.compare_exchange(n, n - 1, Ordering::AcqRel, Ordering::Acquire) {
                    Ok(_) => return true,
                    Err(actual) => n = actual,
                }
            }
            false
        }

        /// `Shared::schedule` from a non-worker thread: push to the injector, notify.
        fn push(&self) {
            self.queue.fetch_add(1, Ordering::Release);
            if let Some(index) = self.idle.worker_to_notify() {
                // `unpark` swaps the parker's state to NOTIFIED: an RMW, as here. (A plain
                // store would also trip loom#254, where a store can slip between the read
                // and the write of a concurrent swap.)
                let _ = self.wake[index].swap(true, Ordering::AcqRel);
            }
        }

        /// `run_worker` for worker `index` until it sleeps with no wake-up pending;
        /// returns how many tasks it ran and whether its last park made the idle list
        /// full (so it sleeps in the driver). `searching` is the state it starts in (a
        /// worker woken by a notifier is a searcher).
        fn run_worker(&self, index: usize, searching: bool) -> (usize, bool) {
            self.run_worker_spin(index, searching, false)
        }

        fn notify(&self) {
            if let Some(index) = self.idle.worker_to_notify() {
                let _ = self.wake[index].swap(true, Ordering::AcqRel);
            }
        }

        /// `run_worker`; with `spin`, a worker that finds no task while the other is
        /// idle first spins (one poll) as a searcher, as `multi_thread::run_worker` does.
        fn run_worker_spin(&self, index: usize, mut searching: bool, spin: bool) -> (usize, bool) {
            let mut ran = 0;
            let mut spun = false;
            loop {
                if self.pop() {
                    if searching {
                        searching = false;
                        // `multi_thread::end_search` (the model has no local queue).
                        if self.idle.transition_from_searching() {
                            fence(Ordering::SeqCst);
                            if self.has_work() {
                                self.notify();
                            }
                        }
                    }
                    ran += 1;
                    if self.long {
                        // The task never yields: this worker is busy for good.
                        self.busy[index].store(true, Ordering::Relaxed);
                        return (ran, false);
                    }
                    continue;
                }
                if !searching && self.has_work() {
                    searching = true;
                    self.idle.transition_to_searching();
                    continue;
                }
                if spin && !spun && self.idle.others_idle() {
                    // One spin per idle period keeps the model finite.
                    spun = true;
                    let was_searching = std::mem::replace(&mut searching, true);
                    if !was_searching {
                        self.idle.transition_to_searching();
                    }
                    if self.has_work() {
                        if !was_searching {
                            searching = false;
                            let _ = self.idle.transition_from_searching();
                            fence(Ordering::SeqCst);
                            if self.queue.load(Ordering::Acquire) > 1 {
                                self.notify();
                            }
                        }
                        continue;
                    }
                }
                spun = false;
                // park()
                let last = self.idle.transition_to_parked(index, searching);
                searching = false;
                if self.has_work() {
                    // `multi_thread::park` step 3: back as a searcher.
                    if self.idle.unidle(index) {
                        self.idle.transition_to_searching();
                    }
                    searching = true;
                    continue;
                }
                // Sleep: a pending notification makes the parker return at once.
                if self.wake[index].swap(false, Ordering::AcqRel) {
                    searching = !self.idle.unidle(index);
                    continue;
                }
                return (ran, last);
            }
        }
    }

    fn check(pushes: usize) {
        check_spin(pushes, false)
    }

    fn check_spin(pushes: usize, spin: bool) {
        check_model(pushes, spin, false)
    }

    fn check_model(pushes: usize, spin: bool, long: bool) {
        let m = Arc::new(Model::new(long));
        let workers: Vec<_> = (0..WORKERS)
            .map(|i| {
                let m = m.clone();
                thread::spawn(move || m.run_worker_spin(i, false, spin))
            })
            .collect();
        let pusher = {
            let m = m.clone();
            thread::spawn(move || {
                for _ in 0..pushes {
                    m.push();
                }
            })
        };
        pusher.join().unwrap();
        let mut ran = 0;
        let mut drives = [false; WORKERS];
        for (i, w) in workers.into_iter().enumerate() {
            let (n, last) = w.join().unwrap();
            ran += n;
            drives[i] = last;
        }
        // Wake-ups that arrived after their worker fell asleep: the unpark runs it again,
        // until none is left (a worker run again may notify another). A busy worker is
        // not asleep: its pending wake-up only matters at its next park, which never
        // comes.
        let mut rerun = true;
        while rerun {
            rerun = false;
            for i in 0..WORKERS {
                if !m.busy[i].load(Ordering::Relaxed) && m.wake[i].swap(false, Ordering::AcqRel) {
                    rerun = true;
                    let searching = !m.idle.unidle(i);
                    let (n, last) = m.run_worker_spin(i, searching, spin);
                    ran += n;
                    drives[i] = last;
                }
            }
        }
        if long {
            // No task waits while a worker sleeps: each long task got a worker of its own.
            assert_eq!(m.queue.load(Ordering::Acquire), 0, "a task left queued while a worker sleeps");
            assert_eq!(ran, pushes, "every task runs exactly once");
            assert_eq!(m.idle.num_searching.load(Ordering::SeqCst), 0);
            let busy = m.busy.iter().filter(|b| b.load(Ordering::Relaxed)).count();
            assert_eq!(busy, pushes, "each long task on its own worker");
            assert_eq!(m.idle.num_idle.load(Ordering::SeqCst), WORKERS - busy);
            return;
        }
        // Every worker sleeps: the one whose park filled the idle list sleeps in the
        // driver, so I/O and timers are still watched.
        assert!(drives.iter().any(|&d| d), "every worker asleep and none of them in the driver");
        assert_eq!(m.queue.load(Ordering::Acquire), 0, "a task was left queued with every worker asleep");
        assert_eq!(ran, pushes, "every task runs exactly once");
        assert_eq!(m.idle.num_searching.load(Ordering::SeqCst), 0);
        assert_eq!(m.idle.num_idle.load(Ordering::SeqCst), WORKERS);
        let mut sleepers = m.idle.sleepers().clone();
        sleepers.sort_unstable();
        assert_eq!(sleepers, (0..WORKERS).collect::<Vec<_>>());
    }

    /// Like `crate::loom::model`, with the preemption bound capped at `max_preemptions`
    /// (`LOOM_MAX_PREEMPTIONS` still applies if lower): the two-task model has about 1.7
    /// million interleavings at bound 3, over two minutes on a CI machine.
    fn model_capped(name: &str, max_preemptions: usize, f: impl Fn() + Sync + Send + 'static) {
        use std::sync::atomic::{AtomicUsize, Ordering};
        let iterations = std::sync::Arc::new(AtomicUsize::new(0));
        let counter = iterations.clone();
        let start = std::time::Instant::now();
        let mut builder = loom::model::Builder::new();
        let bound = builder.preemption_bound.map_or(max_preemptions, |b| b.min(max_preemptions));
        builder.preemption_bound = Some(bound);
        builder.check(move || {
            counter.fetch_add(1, Ordering::Relaxed);
            f();
        });
        println!(
            "loom model {name} (preemption bound {bound}): {} interleavings in {:?}",
            iterations.load(Ordering::Relaxed),
            start.elapsed()
        );
    }

    /// Two workers, one pusher thread pushing one task.
    #[test]
    fn loom_idle_push_vs_park_one_task() {
        crate::loom::model("idle push vs park (2 workers, 1 task)", || check(1));
    }

    /// Two workers, one pusher thread pushing two tasks back to back: the second push
    /// can meet a searcher that the first one woke.
    #[test]
    fn loom_idle_push_vs_park_two_tasks() {
        model_capped("idle push vs park (2 workers, 2 tasks)", 2, || check(2));
    }

    /// As `loom_idle_push_vs_park_one_task`, the last awake worker spinning as a
    /// searcher before it parks (`multi_thread::run_worker`, "Spin").
    #[test]
    fn loom_idle_push_vs_spin_one_task() {
        crate::loom::model("idle push vs spin (2 workers, 1 task)", || check_spin(1, true));
    }

    /// Two tasks: the second push can land while the spinner still counts as a searcher.
    #[test]
    fn loom_idle_push_vs_spin_two_tasks() {
        model_capped("idle push vs spin (2 workers, 2 tasks)", 2, || check_spin(2, true));
    }

    /// Two long computations pushed back to back each get a worker, even when the
    /// second push lands while the worker the first one woke still counts as a
    /// searcher, after it took the first task (`multi_thread::end_search`; without its
    /// notify the second task waits for the first to finish).
    #[test]
    fn loom_idle_long_tasks_get_a_worker_each() {
        model_capped("idle long tasks (2 workers, 2 tasks)", 2, || check_model(2, false, true));
    }

    /// As `loom_idle_long_tasks_get_a_worker_each`, with the spin.
    #[test]
    fn loom_idle_long_tasks_get_a_worker_each_spin() {
        model_capped("idle long tasks, spin (2 workers, 2 tasks)", 2, || check_model(2, true, true));
    }
}
