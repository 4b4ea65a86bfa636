//! The multi-thread scheduler: N workers, work stealing, and the park/wake protocol.
//!
//! # Queues
//!
//! * Each worker owns a FIFO **local queue** (crossbeam's Chase-Lev deque: the owner pushes
//!   and pops without contention, others steal from the other end) and a **LIFO slot**.
//! * A task woken *by a worker* goes into that worker's LIFO slot; the slot's previous
//!   occupant moves to the back of the local queue. The woken task runs next, while the
//!   data it was woken for is still in cache: the request/response pattern of a network
//!   server. At most [`MAX_LIFO_POLLS`] slot tasks run in a row, so two tasks that keep
//!   waking each other cannot starve the queue.
//! * Tasks woken by the driver while this worker turns it (I/O events, due timers) go to
//!   the back of the local queue in the order the driver produced them (timers by
//!   deadline). Only if the local queue then holds more than [`SHARE_BACKLOG`] tasks is
//!   an idle worker notified to share them (see "Sharing I/O work" below).
//! * A task that wakes itself while running (`yield_now`, the cooperative budget) goes to
//!   the back of the local queue, never the slot.
//! * Wakes and spawns from other threads go to the global **injector**.
//!
//! # Finding work (`next_task`)
//!
//! LIFO slot → local queue → (every [`INJECT_INTERVAL`] ticks the injector first, for
//! fairness) → injector, taking a batch → stealing half of another worker's queue,
//! starting at a rotating victim. Every [`EVENT_INTERVAL`] ticks a busy worker also turns
//! the I/O driver without blocking, so I/O readiness and timers keep flowing while all
//! workers are busy, unless its local queue still holds at least `EVENT_INTERVAL` tasks:
//! then it skips the turn, at most [`MAX_SKIPPED_TURNS`] times in a row (so it turns the
//! driver at least every 244 ticks, whatever its queue does). A *retiring* helper (see
//! "Sharing I/O work") also skips it, but only while another worker turned the driver
//! since its last interval: if nobody did (the others are stuck in long polls, or
//! retiring too), it turns the driver itself, so the driver is never left unturned by
//! every awake worker. (A turn finds the driver held only when its holder sleeps in
//! `epoll_wait` or spins before it, where it sees the I/O itself.)
//!
//! Why skip: a turn while an interval of work is still queued only moves ready tasks
//! from the kernel's list to the back of this FIFO; they run no sooner. What it does
//! change is how long a woken task waits in the queue between its wake and its poll, and
//! how many do: at 500 connections the worker turned every 61 polls with hundreds
//! queued, polled every task long after the wake had touched it, and became the slower
//! side of the closed loop, which kept the queue long. Measured with `bench/` (sliced
//! runs, 4 rounds, 2 workers against current-thread in the same run): 500 connections
//! 0.97× → 1.02×, 50 connections 0.99× → 1.00×; against tokio's 2 workers, 1.15× →
//! 1.25× at 500 connections.
//!
//! # Idle workers: the park/wake protocol
//!
//! Shared state, in the [`Idle`] type (`idle.rs`, which also holds the fences and the
//! decisions below): `idle` (the indices of parked workers, under a mutex; the field
//! `Idle::sleepers`), `num_idle`, and `num_searching` (workers awake but without a task,
//! looking for one).
//!
//! **Notify** (after a task is pushed where another worker could take it: injector, or
//! local queue when the LIFO slot was occupied):
//! 1. `fence(SeqCst)`; if `num_searching > 0`, stop: a searcher will find the task (also
//!    stop if `num_idle == 0`: nobody to wake).
//! 2. Lock `idle`, pop a worker, `num_idle -= 1`, `num_searching += 1` on its behalf.
//! 3. Unlock, `unpark` it (condvar, or the driver's mio waker if it sleeps in epoll).
//!
//! **Park** (a worker found no task):
//! 1. If searching: `num_searching -= 1`.
//! 2. Lock `idle`, push self, `num_idle += 1`, unlock.
//! 3. `fence(SeqCst)`, then re-check the injector and every stealer. If work is there,
//!    take itself out of `idle` (unless a notifier already did) and go back to the loop
//!    as a searcher either way: a push between step 1 and here may have skipped its
//!    notify because this worker still searched (see **Searcher found a task**).
//! 4. Sleep. The worker whose step 2 made `idle` full (every worker idle; it joined
//!    last) sleeps in the driver if it is free (`epoll_wait`, timers bound the timeout).
//!    Any other worker sleeps on its condvar: a worker is still awake, and an awake
//!    worker turns the driver itself whenever it runs out of tasks and at its event
//!    intervals ("Finding work" says when it may skip one). The condvar sleep has a
//!    **watchdog** timeout: see step 6.
//! 5. On wake, *before* the driver wakes any task: if still in `idle`, remove itself (a
//!    spontaneous wake: I/O, timer); else a notifier chose it and it is a searcher.
//!    A condvar sleeper that is still in `idle` after its timeout goes to step 6
//!    instead.
//! 6. Watchdog: the driver counts completed turns. If a worker is awake and nobody
//!    turned the driver during the whole sleep ([`WATCHDOG`]), the awake workers are
//!    stuck in one long poll or busy with long ones, and I/O and timers wait for them:
//!    the sleeper leaves `idle`, turns the driver once without blocking and runs its
//!    loop, which also steals the busy worker's queue. If the driver was turned, it
//!    sleeps again, with the timeout doubled up to [`WATCHDOG_BUSY_MAX`]: while the
//!    awake worker keeps turning the driver it looks less often, and a poll that gets
//!    stuck after a long busy stretch is noticed within about twice that (64 ms). While
//!    every worker is idle (one of them sleeps in the driver) the timeout doubles up to
//!    [`WATCHDOG_MAX`]. It drops back to [`WATCHDOG`] after a look that found no turn,
//!    when it comes back from above `WATCHDOG_BUSY_MAX`, and at every park. (Sleeping without a timeout until the driver
//!    sleeper wakes with work would cost a futex wake per request after every idle
//!    moment; a single long poll after an idle period is instead noticed within the
//!    backed-off timeout, at most `WATCHDOG_MAX`.)
//!
//! **Searcher found a task** (`end_search`): the last searcher to stop searching issues
//! a SeqCst fence (paired with notify step 1) and, if tasks still wait in the injector
//! or in its own queue (the rest of a batch it took), notifies. While it searched,
//! notify step 1 left every push to it, and it takes only one task: without this, two
//! long computations spawned together from outside could run one after the other while
//! the second worker slept (the `idle.rs` loom models `long_tasks_*` fail so, with
//! this notify or step 3's return as a searcher removed). Other workers' queues are left
//! to their awake owners and to the backlog rule below.
//!
//! **Spin** (before step 1, `spin.rs`): a worker that finds no task while every other
//! worker is idle (it would be the one to sleep in the driver) first turns the driver
//! without blocking for its idle spin window, if one is open, and goes back to its loop
//! if that produced a task. It stays off the idle list and counts as a *searcher*
//! while it spins, so a task pushed from elsewhere meanwhile (a spawn from a `block_on`
//! accept loop) is left to it, as notify step 1 leaves tasks to searchers, instead of
//! waking a sleeping worker; its spin looks at the injector and every queue on each
//! turn, and if it gives up, park steps 1–3 re-check them as for any searcher. When the
//! spin finds work, a worker that only searched for the spin stops searching, issues a
//! SeqCst fence (paired with notify step 1: a later push notifies by itself, an
//! earlier one is seen here) and wakes a sleeping worker only if more work waits than
//! the task it takes next (two tasks in the injector, or one there and more in its own
//! queue) or its queue holds a backlog over [`SHARE_BACKLOG`]: while it counted as a
//! searcher, notify step 1 skipped every push, and its own delivery's backlog rule
//! too. (A review found both: two long computations spawned together ran one after
//! the other, the second 20–60 ms late, until the sleeper's watchdog; a 200-timer
//! batch was shared after 47 ms instead of 0.3 ms. `tests/rt_spin.rs` holds both.)
//! The plain searcher's notify (`end_search`, after it took its task) is not used for
//! a worker that searched only for its spin: it has not taken its task yet, so a single
//! spawn would then wake the sleeper every time. (A worker that was already a searcher
//! before it spun stays one, and `end_search` runs when it takes its task.)
//!
//! Measured (`scripts/ab-servers.sh`, churn with 16 connections in flight, 2 workers):
//! taking remote spawns while spinning gained 6% over spinning as a non-searcher (8
//! rounds, 0.81–1.35), where every spawn woke the sleeping worker with a futex; with
//! the notify above, 1.09 over the non-searcher spin (12 rounds, 0.65–1.65) and 1.18
//! against tokio's 2 workers (0.93–1.33).
//!
//! The spinner holds the driver while it spins: a watchdog sleeper that looks finds the
//! driver turning, and a worker whose turn finds the driver held knows its holder sees
//! the I/O (it sleeps in `epoll_wait` or spins).
//!
//! # Sharing I/O work
//!
//! A notify costs a futex wake and, here, 40–50 µs before the other core runs; a woken
//! worker then competes for a core that may have other work (on the benchmark machine:
//! the load generator). The two rules above keep request/response I/O on one worker
//! until it cannot keep up, and make the second worker a helper rather than a rival:
//!
//! * only the last idle worker sleeps in `epoll_wait`. Before, an idle worker took the
//!   driver while another was busy, so every event batch woke a second core and split
//!   the batches between two workers, each paying cross-core wake-ups and cache misses;
//! * a driver batch is shared only when the backlog exceeds [`SHARE_BACKLOG`] tasks, i.e.
//!   more than two event intervals of work queued behind one worker. Spawns and wakes
//!   from tasks still notify at once: they may be long computations that want a core.
//!
//! Measured with `bench/` (echo 64 B, 2 workers, load generator pinned to one of the two
//! cores, medians of 5 interleaved 2 s rounds): 50 connections 164k → 182k round trips/s
//! (current-thread 183k, tokio multi-thread 151k); 500 connections 151k → 174k
//! (tokio multi-thread 165k). With both workers pinned to one core the old and new
//! policies measured the same as current-thread, so the loss was the second worker
//! taking the load generator's core. Thresholds of 16 and 61 tasks lost most of the gain
//! (the batches at 50 and 500 connections exceed them); 128 and "never" measured the
//! same.
//! * and only while the **CPU gate** is open (`cpu_gate.rs`): a worker woken to help
//!   measures whether it got a CPU of its own (wall time against its thread's CPU time);
//!   if it waited for one more than a quarter of the time, the gate closes for a backoff
//!   (20 ms doubling to 2 s), batches stay with one worker, and the helper *retires*:
//!   it finishes its own queue, neither steals nor turns the driver any more, and parks. On this benchmark machine the
//!   128-task threshold alone still split 500-connection batches between two workers
//!   that then took turns with the load generator on its core (each waited ~40% of its
//!   running time); with the gate one worker does the work: 254k → 272k round trips/s
//!   at 500 connections (sharing switched off entirely: 275k; tokio multi-thread 250k).
//!   Re-measured later side by side (`scripts/ab-servers.sh`), the multi-thread
//!   runtime still lost ~4% to current-thread at 500 connections. The gate let the
//!   second worker in more often than its backoff says (three faults, fixed; see
//!   `cpu_gate.rs`) and the watchdog (below) woke the sleeper 500 times a second;
//!   fixing both measured small. Most of the gap was the event turns taken with a long
//!   queue (see "Finding work"). Not changed: on a machine with idle cores sharing is
//!   what keeps a large batch's latency down.
//!
//! The cost: while one worker is busy, I/O and timers are served at its driver turns
//! (every [`EVENT_INTERVAL`] polls) or, if its polls are long, by the watchdog within
//! about [`WATCHDOG`]; a driver batch of long computations is shared after about one
//! `WATCHDOG` (after an idle period, the backed-off timeout), where tokio would spread
//! it at once. After a long busy stretch a stuck poll holds I/O and timers up to about
//! twice [`WATCHDOG_BUSY_MAX`] (64 ms) before the sleeper takes over. That bound is the
//! price of the sleeper's wakes: at a fixed 2 ms it woke 500 times a second while
//! another worker was busy, and on the 2-core benchmark machine every wake preempted a
//! busy thread; A/B at 500 connections (`scripts/ab-servers.sh`, 10 rounds), letting
//! the timeout grow to 32 ms gained 1.8% round trips/s over 8 ms (2.8% at 64 ms), and
//! 8 ms had already gained over 2 ms. A sleeper wakes about 30 times a second while
//! another worker is busy and at most ten times a second while the runtime is idle.
//!
//! # Races this survives
//!
//! * **Push vs. park (lost wake-up).** The pusher does *push; fence; read num_searching and
//!   idle*. The parker does *decrement searching / join idle; fence; read queues*. By the
//!   SeqCst fences, either the parker's re-check (3) sees the task, or the pusher sees the
//!   parker in `idle` (or still searching, and that searcher's step-3 re-check sees the
//!   task). No task is left queued with every worker asleep. `idle.rs` has a loom model
//!   of this race (two workers, a pusher, the real [`Idle`] code).
//! * **Notify vs. the worker un-idling itself.** Both remove the index under the `idle`
//!   lock; whoever removes it owns the `num_searching`/`num_idle` bookkeeping. A notify
//!   that lands on a worker that is already awake leaves a `NOTIFIED` parker state, which
//!   only makes its next park return at once (a spurious loop, never a lost task).
//! * **Wakes from the driver thread.** Step 5 runs before the driver's wakes, so a worker
//!   that is delivering I/O events is not in `idle`: its own wakes go to its LIFO slot and
//!   local queue, and a notify picks a *different* worker.
//! * **Last to park vs. a busy driver.** `idle` changes only under its lock, so exactly
//!   one of two workers parking together sees it full. If the driver is busy at that
//!   moment, its holder is a worker that was asleep in it and whose step 5 has not run
//!   yet: it leaves `idle` and will park again later, then as the last one. Meanwhile the
//!   worker that found the driver busy sleeps on its condvar with the watchdog timeout,
//!   so the driver is never left unwatched with every worker asleep.
//! * **A task that never yields.** Its worker neither turns the driver nor runs its
//!   queue. The watchdog (step 6) notices within [`WATCHDOG`] (after a long busy
//!   stretch, within about twice [`WATCHDOG_BUSY_MAX`]) and takes over both. A
//!   retiring worker beside it turns the driver itself, since nobody else does.
//!   **Not the LIFO slot:** it is a plain `Cell` of the worker (no atomic operation on
//!   the wake path), so a task that this task spawned or woke last waits in it until
//!   the task yields. A task that busy-waits for such a child therefore spins until
//!   it gives up (tokio's LIFO slot has the same limit). Making the slot stealable
//!   would cost an atomic swap per task run; await the child instead of spinning.
//! * **Shutdown.** The flag is set, every worker is unparked; a worker checks the flag at
//!   the top of its loop and in step 3. Wakes after shutdown drop the task instead of
//!   queueing it; a worker pops and drops the tasks left in its deque when it exits, and
//!   the runtime, once the workers are joined, drains the injector and every deque
//!   through the stealers (a deque's buffer is shared with its stealers: dropping the
//!   `Worker` end alone drops no task).

use std::cell::Cell;
use std::sync::atomic::{fence, AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_deque::{Injector, Steal, Stealer, Worker};

use self::cpu_gate::{CpuGate, Stints};
use self::idle::Idle;
use super::spin::Spin;
use crate::runtime::io::Driver;
use crate::runtime::park::Parker;
use crate::task::owned::OwnedTasks;
use crate::task::Runnable;

// The files sit beside this one (`scheduler/cpu_gate.rs`, `scheduler/idle.rs`), declared
// here so that what was extracted from this file stays private to it.
#[path = "cpu_gate.rs"]
mod cpu_gate;
#[path = "idle.rs"]
mod idle;

/// Consecutive LIFO-slot polls before the slot task goes to the back of the queue.
const MAX_LIFO_POLLS: u32 = 3;
/// Ticks between two non-blocking driver turns on a busy worker.
const EVENT_INTERVAL: u32 = 61;
/// Event intervals in a row a busy worker may let pass without turning the driver while
/// its own queue holds at least an interval of tasks.
const MAX_SKIPPED_TURNS: u32 = 3;
/// Ticks between two "injector first" looks.
const INJECT_INTERVAL: u32 = 31;
/// Queued tasks above which a driver delivery notifies an idle worker to share them.
const SHARE_BACKLOG: usize = 128;
/// Watchdog timeout of a worker asleep on its condvar while another is awake: the
/// longest I/O and timers wait when the awake workers stop turning the driver.
const WATCHDOG: Duration = Duration::from_millis(2);
/// Longest watchdog timeout while another worker is awake and keeps turning the driver.
const WATCHDOG_BUSY_MAX: Duration = Duration::from_millis(32);
/// Longest watchdog timeout, reached while every worker is idle.
const WATCHDOG_MAX: Duration = Duration::from_millis(100);

/// State shared by the workers and every waker of this runtime's tasks.
#[derive(Debug)]
pub(crate) struct Shared {
    injector: Injector<Runnable>,
    stealers: Vec<Stealer<Runnable>>,
    parkers: Vec<Parker>,
    idle: Idle,
    /// Whether driver batches may be shared (`cpu_gate.rs`).
    gate: CpuGate,
    pub(crate) driver: Arc<Driver>,
    shutdown: AtomicBool,
    /// Every live task of this runtime.
    pub(crate) owned: OwnedTasks,
    /// Limit of the idle spin window (`spin.rs`).
    idle_spin: Duration,
}

thread_local! {
    /// The [`Local`] of the worker running on this thread, or null: a pointer to the
    /// `Local` in `run_worker`'s frame. A thread-local without a destructor is one load
    /// to read, with no lazy-initialisation or borrow state (as in `current_thread`).
    static CURRENT: Cell<*const Local> = const { Cell::new(std::ptr::null()) };
}

/// Calls `f` with the `Local` of the worker running on this thread, if any.
#[inline]
fn with_local<R>(f: impl FnOnce(Option<&Local>) -> R) -> R {
    let ptr = CURRENT.with(Cell::get);
    // SAFETY: a non-null `CURRENT` was set by `run_worker` on this thread to a `Local` in
    // its frame, and that frame's `CurrentGuard` resets it before the `Local` is
    // dropped; `f` runs on this thread, within this call, so the frame outlives the
    // reference.
    f(unsafe { ptr.as_ref() })
}

/// Restores [`CURRENT`] when `run_worker` ends (even by panic).
struct CurrentGuard(*const Local);

impl Drop for CurrentGuard {
    fn drop(&mut self) {
        CURRENT.with(|c| c.set(self.0));
    }
}

/// A worker's own queues, reachable from its thread-local while it runs. Every field
/// is used through `&Local` (a `Cell`, or the deque's `&self` methods): wakes reach it
/// while the worker loop holds it too.
struct Local {
    shared: Arc<Shared>,
    index: usize,
    queue: Worker<Runnable>,
    lifo: Cell<Option<Runnable>>,
    /// Set while this worker delivers the driver's wakes: they go to the back of the
    /// queue in the order the driver produced them (timers by deadline), not through the
    /// LIFO slot, which would reverse them.
    in_driver: Cell<bool>,
}

impl Shared {
    /// A scheduler for `n` workers; the returned deques are handed to the worker threads.
    pub(crate) fn new(n: usize, driver: Arc<Driver>, idle_spin: Duration) -> (Arc<Shared>, Vec<Worker<Runnable>>) {
        let queues: Vec<Worker<Runnable>> = (0..n).map(|_| Worker::new_fifo()).collect();
        let shared = Arc::new(Shared {
            injector: Injector::new(),
            stealers: queues.iter().map(Worker::stealer).collect(),
            parkers: (0..n).map(|_| Parker::default()).collect(),
            idle: Idle::new(n),
            gate: CpuGate::new(),
            driver,
            shutdown: AtomicBool::new(false),
            owned: OwnedTasks::default(),
            idle_spin,
        });
        (shared, queues)
    }

    /// Queues a task woken or spawned away from this runtime's workers (or while a
    /// worker's queues are borrowed) in the injector and wakes a worker.
    pub(crate) fn push_remote(&self, runnable: Runnable) {
        self.injector.push(runnable);
        // A shutdown that began after the caller's check may have drained the injector
        // already, and this task would stay there for good (its owner keeps `Shared`
        // alive: a leak). Look again; the fences pair with the ones in `shutdown` and
        // `drain_queues`: either that drain sees this task or this look sees the flag.
        fence(Ordering::SeqCst);
        if self.shutdown.load(Ordering::SeqCst) {
            drop_all(|| self.injector.steal());
            return;
        }
        self.notify_parked();
    }

    /// Wakes one idle worker unless a searching worker will find the new task anyway.
    fn notify_parked(&self) {
        if let Some(index) = self.idle.worker_to_notify() {
            self.parkers[index].unpark(&self.driver);
        }
    }

    fn has_work(&self) -> bool {
        !self.injector.is_empty() || self.stealers.iter().any(|s| !s.is_empty())
    }

    /// Stops the workers: sets the flag and unparks all of them.
    pub(crate) fn shutdown(&self) {
        self.shutdown.store(true, Ordering::SeqCst);
        fence(Ordering::SeqCst);
        for p in &self.parkers {
            p.unpark(&self.driver);
        }
        self.driver.unpark();
    }

    /// Drops every task still in the injector or in a worker's deque (after the workers
    /// exited; a worker that did not exit in time, or the worker dropping its own runtime,
    /// may have left its deque full).
    pub(crate) fn drain_queues(&self) {
        fence(Ordering::SeqCst);
        drop_all(|| self.injector.steal());
        for stealer in &self.stealers {
            drop_all(|| stealer.steal());
        }
    }

    pub(crate) fn is_shutdown(&self) -> bool {
        self.shutdown.load(Ordering::Acquire)
    }
}

/// Queues a task on this worker if this thread is a worker of the runtime whose `Shared`
/// is at `me` (the `Arc` in that worker's `Local` then keeps it alive): in the LIFO slot
/// or the queue, waking a helper when that leaves work to share. Otherwise gives the
/// task back for `push_remote` (`scheduler::schedule_task`).
pub(crate) fn schedule_local(me: *const Shared, runnable: Runnable, yielded: bool) -> Option<Runnable> {
    with_local(|local| {
        let Some(local) = local.filter(|l| std::ptr::eq(Arc::as_ptr(&l.shared), me)) else { return Some(runnable) };
        let notify = if local.in_driver.get() {
            local.queue.push(runnable);
            false
        } else if yielded {
            local.queue.push(runnable);
            true
        } else if let Some(prev) = local.lifo.replace(Some(runnable)) {
            local.queue.push(prev);
            true
        } else {
            false
        };
        if notify {
            local.shared.notify_parked();
        }
        None
    })
}

/// The body of worker thread `index`.
pub(crate) fn run_worker(shared: Arc<Shared>, index: usize, queue: Worker<Runnable>) {
    let _region = crate::runtime::context::BlockingRegion::enter();
    let _task_cache = crate::task::cache::enable_for_scheduler();
    let local = Local { shared: shared.clone(), index, queue, lifo: Cell::new(None), in_driver: Cell::new(false) };
    let guard = CurrentGuard(CURRENT.with(|c| c.replace(&local)));
    let mut tick: u32 = 0;
    let mut searching = false;
    let mut lifo_polls: u32 = 0;
    let mut stints = Stints::default();
    // A helper that found it does not get a CPU of its own (`cpu_gate.rs`): it runs its
    // own tasks, steals no more, and parks.
    let mut retiring = false;
    // Driver turns skipped in a row because the local queue was long.
    let mut skipped: u32 = 0;
    // The driver's turn count at this worker's last event interval.
    let mut seen_turns = shared.driver.turns();
    let mut spin = Spin::new(shared.idle_spin);
    while !shared.is_shutdown() {
        tick = tick.wrapping_add(1);
        if tick % EVENT_INTERVAL == 0 {
            // Skip the turn when (see "Finding work"):
            // * retiring, and another worker turned the driver since the last interval:
            //   the I/O it would pick up would only keep this worker's queue from running
            //   dry. If nobody else turned it (the others are stuck in long polls, or
            //   retiring too), this worker turns it: the driver is never left unturned;
            // * an interval of work is still queued here, at most MAX_SKIPPED_TURNS
            //   times in a row.
            let others_turned = shared.driver.turns() != seen_turns;
            if retiring && others_turned {
                skipped = 0;
            } else if local.queue.len() >= EVENT_INTERVAL as usize && skipped < MAX_SKIPPED_TURNS {
                skipped += 1;
            } else if let Some(mut core) = shared.driver.try_lock_core() {
                skipped = 0;
                local.in_driver.set(true);
                shared.driver.turn(&mut core, Some(Duration::ZERO), || {});
                end_driver_delivery(&shared, &local);
            }
            seen_turns = shared.driver.turns();
            if stints.active() && stints.check(&shared.gate, shared.idle.others_idle()) {
                retiring = true;
            }
        }
        match next_task(&shared, &local, tick, &mut lifo_polls, !retiring) {
            Some(task) => {
                spin.work_ran();
                if searching {
                    searching = false;
                    end_search(&shared, &local);
                }
                crate::task::run(task);
            }
            None => {
                if !retiring && !searching && steal_ready(&shared) {
                    // Work exists elsewhere: search for it before parking.
                    searching = true;
                    shared.idle.transition_to_searching();
                    continue;
                }
                // The last awake worker spins through a short gap before it sleeps in
                // the driver (`spin.rs`).
                let idle_since = if !retiring && shared.idle.others_idle() {
                    spin.begin_idle()
                } else {
                    spin.work_ran();
                    None
                };
                if let Some(start) = idle_since.filter(|_| spin.window() > Duration::ZERO) {
                    // A searcher while it spins: a task pushed from elsewhere meanwhile is
                    // left to it instead of waking a sleeping worker.
                    let was_searching = std::mem::replace(&mut searching, true);
                    if !was_searching {
                        shared.idle.transition_to_searching();
                    }
                    if spin_for_work(&shared, &local, &mut spin, start) {
                        if !was_searching {
                            searching = false;
                            end_spin_search(&shared, &local);
                        }
                        continue;
                    }
                }
                stints.end(&shared.gate, shared.idle.others_idle());
                let delivered = shared.driver.delivered();
                let notified = park(&shared, &local, &mut searching, std::mem::take(&mut retiring));
                if let Some(start) = idle_since {
                    let brought = searching || shared.has_work() || shared.is_shutdown();
                    spin.end_sleep(start, brought || shared.driver.delivered() != delivered);
                }
                if notified {
                    // Woken by a notify: a helper; measure whether it gets a CPU. (Not a
                    // worker that found work at park step 3 by itself: it searches, but
                    // it never slept, and nobody asked it to help.)
                    stints.begin();
                }
            }
        }
    }
    if searching {
        shared.idle.transition_from_searching();
    }
    // Cancel the tasks still queued here. Dropping the deque's `Worker` end would not drop
    // them: its buffer lives on while `Shared` holds the `Stealer`s, and the tasks' own
    // owners keep `Shared` alive (a leak, and futures never dropped).
    // Tasks dropped here may wake others: those go to the injector, not to this queue.
    drop(guard);
    drop(local.lifo.take());
    while let Some(r) = local.queue.pop() {
        drop(r);
    }
}

/// Takes tasks with `steal` and drops them (cancels them) until it finds none.
fn drop_all(steal: impl Fn() -> Steal<Runnable>) {
    loop {
        match steal() {
            Steal::Success(r) => drop(r),
            Steal::Empty => break,
            Steal::Retry => {}
        }
    }
}

fn steal_ready(shared: &Shared) -> bool {
    shared.has_work()
}

/// The next task for this worker; `steal`: whether it may take other workers' tasks.
fn next_task(shared: &Shared, local: &Local, tick: u32, lifo_polls: &mut u32, steal: bool) -> Option<Runnable> {
    if let Some(t) = local.lifo.take() {
        if *lifo_polls < MAX_LIFO_POLLS {
            *lifo_polls += 1;
            return Some(t);
        }
        // The slot has run often enough in a row: queue it behind the others.
        local.queue.push(t);
    }
    *lifo_polls = 0;
    if tick % INJECT_INTERVAL == 0 {
        if let Some(t) = steal_injector(shared, &local.queue) {
            return Some(t);
        }
    }
    if let Some(t) = local.queue.pop() {
        return Some(t);
    }
    if let Some(t) = steal_injector(shared, &local.queue) {
        return Some(t);
    }
    if !steal {
        return None;
    }
    steal_others(shared, local.index, &local.queue, tick)
}

fn steal_injector(shared: &Shared, dest: &Worker<Runnable>) -> Option<Runnable> {
    loop {
        match shared.injector.steal_batch_and_pop(dest) {
            Steal::Success(t) => return Some(t),
            Steal::Empty => return None,
            Steal::Retry => {}
        }
    }
}

fn steal_others(shared: &Shared, me: usize, dest: &Worker<Runnable>, tick: u32) -> Option<Runnable> {
    let n = shared.stealers.len();
    if n <= 1 {
        return None;
    }
    let start = tick as usize % n;
    for k in 0..n {
        let victim = (start + k) % n;
        if victim == me {
            continue;
        }
        loop {
            match shared.stealers[victim].steal_batch_and_pop(dest) {
                Steal::Success(t) => return Some(t),
                Steal::Empty => break,
                Steal::Retry => {}
            }
        }
    }
    None
}

/// Parks the worker whose `Local` this is, following the protocol in the module doc
/// (steps 1–6).
///
/// A `retiring` worker's step 3 looks at the injector only, not at the other workers'
/// local queues (their owners are awake; see `cpu_gate.rs` for why that is safe).
///
/// Returns whether a notifier chose this worker (it is then a searcher on the
/// notifier's behalf, and a helper for the CPU gate). A worker that returns at step 3
/// searches too, but chose itself unless a notifier took it off the list first.
fn park(shared: &Shared, local: &Local, searching: &mut bool, retiring: bool) -> bool {
    let index = local.index;
    let last = shared.idle.transition_to_parked(index, std::mem::take(searching));
    let work = if retiring { !shared.injector.is_empty() } else { shared.has_work() };
    if work || shared.is_shutdown() {
        // Back as a searcher, whether a notifier took it off the list or it does so
        // itself: pushes since step 1 may have skipped their notify because it still
        // searched, and the searcher's notify when it takes a task (`end_search`)
        // hands those on.
        let chose_itself = shared.idle.unidle(index);
        if chose_itself {
            shared.idle.transition_to_searching();
        }
        *searching = true;
        return !chose_itself;
    }
    if last {
        // Every other worker sleeps: this one waits for I/O and timers in the driver. If
        // the driver is busy (its holder is waking up), a short condvar sleep and another
        // pass through the loop.
        let mut became_searcher = false;
        shared.parkers[index].park_split(&shared.driver, None, Some(WATCHDOG), true, || {
            became_searcher = !shared.idle.unidle(index);
            local.in_driver.set(true);
        });
        end_driver_delivery(shared, local);
        *searching = became_searcher;
        return became_searcher;
    }
    // Another worker is awake and turns the driver between its tasks.
    let mut timeout = WATCHDOG;
    loop {
        let turns = shared.driver.turns();
        shared.parkers[index].park_split(&shared.driver, None, Some(timeout), false, || {});
        if !shared.idle.is_idle(index) {
            // A notifier took this worker off the list: it searches on its behalf.
            *searching = true;
            return true;
        }
        if shared.is_shutdown() {
            *searching = !shared.idle.unidle(index);
            return *searching;
        }
        if shared.idle.all_idle() {
            // One of the others sleeps in the driver: nothing to watch.
            timeout = (timeout * 2).min(WATCHDOG_MAX);
            continue;
        }
        if shared.driver.turns() != turns {
            // The awake worker is making progress: look less often while it does.
            timeout = if timeout > WATCHDOG_BUSY_MAX { WATCHDOG } else { (timeout * 2).min(WATCHDOG_BUSY_MAX) };
            continue;
        }
        timeout = WATCHDOG;
        // Awake workers, and nobody polled for I/O during the whole sleep. (If the driver
        // is held, its holder is in `epoll_wait` and sees the I/O: keep sleeping.)
        if let Some(mut core) = shared.driver.try_lock_core() {
            // Leave `idle` before delivering, as in step 5.
            *searching = !shared.idle.unidle(index);
            local.in_driver.set(true);
            shared.driver.turn(&mut core, Some(Duration::ZERO), || {});
            drop(core);
            end_driver_delivery(shared, local);
            return *searching;
        }
    }
}

/// The spin of the last awake worker: turns the driver without
/// blocking until a task shows up anywhere or `spin`'s window has passed since `start`.
/// Returns whether it found work (or shutdown began). Does not spin if the driver is
/// busy: its holder is another worker about to wake up.
fn spin_for_work(shared: &Shared, local: &Local, spin: &mut Spin, start: Instant) -> bool {
    let Some(mut core) = shared.driver.try_lock_core() else { return false };
    spin.spin(start, || {
        local.in_driver.set(true);
        shared.driver.turn(&mut core, Some(Duration::ZERO), || {});
        end_driver_delivery(shared, local);
        !local.queue.is_empty() || shared.has_work() || shared.is_shutdown()
    })
}

/// A searcher found a task and is about to run it. If it was the last searcher, notify
/// step 1 may have skipped a push that it will not take (the push saw it searching), so
/// after a SeqCst fence (paired with the notifier's) it wakes a sleeping worker if tasks
/// wait in its own queue (the rest of a batch it took) or in the injector: either this
/// look sees a push, or that push saw no searcher and notified by itself. Other
/// workers' queues are left to their awake owners and to the backlog rule.
fn end_search(shared: &Shared, local: &Local) {
    if shared.idle.transition_from_searching() {
        fence(Ordering::SeqCst);
        if !local.queue.is_empty() || !shared.injector.is_empty() {
            shared.notify_parked();
        }
    }
}

/// A worker that searched only for its spin found work: stops searching, without the
/// plain searcher's notify about the rest of its queue (a single spawn would then wake
/// the sleeper every time), but while it counted as a searcher notify step 1 skipped
/// every push, and its own deliveries' backlog rule too (the count included itself).
/// The fence pairs with the notifier's: a push after the transition notifies by itself,
/// one before it is seen here. Notifies if more tasks wait than the one it takes next,
/// or for a backlog.
fn end_spin_search(shared: &Shared, local: &Local) {
    shared.idle.transition_from_searching();
    fence(Ordering::SeqCst);
    let injected = shared.injector.len();
    if injected > 1 || (injected > 0 && !local.queue.is_empty()) || backlog_to_share(shared, local) {
        shared.notify_parked();
    }
}

/// Whether this worker's queue holds a backlog worth an idle worker's help (see
/// "Sharing I/O work").
fn backlog_to_share(shared: &Shared, local: &Local) -> bool {
    local.queue.len() > SHARE_BACKLOG && shared.gate.is_open()
}

/// Ends a driver delivery: wakes go through the LIFO slot again, and if the backlog is
/// now over [`SHARE_BACKLOG`], an idle worker is told there is work to share.
fn end_driver_delivery(shared: &Shared, local: &Local) {
    local.in_driver.set(false);
    if backlog_to_share(shared, local) {
        shared.notify_parked();
    }
}
