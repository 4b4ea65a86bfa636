//! The two schedulers behind one enum, and `block_on` for threads that are not workers.
//!
//! * [`current_thread`]: one thread (the one in `block_on`) runs every task, polls the
//!   driver when idle. No cross-thread synchronisation on its hot path.
//! * [`multi_thread`]: N workers with local queues, a LIFO slot, a global injector and
//!   work stealing; see its module doc for the park/wake protocol.

pub(crate) mod current_thread;
mod fifo;
pub(crate) mod multi_thread;
mod spin;

pub(crate) use spin::DEFAULT_MAX as DEFAULT_IDLE_SPIN;

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::time::{Duration, Instant};

use super::io::Driver;
use crate::task::owned::OwnedTasks;
use crate::task::{JoinHandle, Owner, Runnable};

/// Queues a runtime task on the scheduler named in its header.
///
/// No reference count is touched on the common path: on the scheduler's own thread the
/// `Local` its thread-local points at holds an `Arc` of it (the flavour's
/// `schedule_local`, given only the scheduler's address to compare); anywhere else an
/// `Arc` is cloned from the task's owner while the task is still alive, before the task
/// is handed over (once queued it may run and be freed on another thread). `yielded`:
/// the task woke itself while running.
pub(crate) fn schedule_task(runnable: Runnable, yielded: bool) {
    enum Target {
        Current(*const current_thread::Shared),
        Multi(*const multi_thread::Shared),
    }
    let target = match runnable.owner() {
        Owner::Runtime(Scheduler::CurrentThread(s)) if !s.is_shutdown() => Some(Target::Current(Arc::as_ptr(s))),
        Owner::Runtime(Scheduler::MultiThread(s)) if !s.is_shutdown() => Some(Target::Multi(Arc::as_ptr(s))),
        // Shutting down (runtime tasks always have a scheduler): cancel the task.
        _ => None,
    };
    let rest = match target {
        Some(Target::Current(me)) => current_thread::schedule_local(me, runnable),
        Some(Target::Multi(me)) => multi_thread::schedule_local(me, runnable, yielded),
        None => {
            drop(runnable);
            return;
        }
    };
    if let Some(r) = rest {
        let Owner::Runtime(scheduler) = r.owner() else { return };
        let scheduler = scheduler.clone();
        match scheduler {
            Scheduler::CurrentThread(s) => s.push_remote(r),
            Scheduler::MultiThread(s) => s.push_remote(r),
        }
    }
}

/// Which scheduler a runtime uses.
#[derive(Debug, Clone)]
pub(crate) enum Scheduler {
    CurrentThread(Arc<current_thread::Shared>),
    MultiThread(Arc<multi_thread::Shared>),
}

impl Scheduler {
    /// Creates the task for `future` in this scheduler's task list, not yet scheduled;
    /// gives `future` back when the runtime is shutting down.
    pub(crate) fn bind<F>(&self, future: F) -> Result<(Runnable, JoinHandle<F::Output>), F>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.owned().bind(future, Owner::Runtime(self.clone()))
    }

    /// The task list of this runtime.
    pub(crate) fn owned(&self) -> &OwnedTasks {
        match self {
            Scheduler::CurrentThread(s) => &s.owned,
            Scheduler::MultiThread(s) => &s.owned,
        }
    }

    pub(crate) fn block_on<F: Future>(&self, driver: &Arc<Driver>, future: F) -> F::Output {
        // Tasks and the main future run with limited budgets in here; the thread's own
        // (normally unlimited) budget comes back afterwards.
        let _budget = crate::runtime::coop::save();
        match self {
            Scheduler::CurrentThread(s) => current_thread::block_on(s, future),
            Scheduler::MultiThread(_) => block_on_thread(driver, future),
        }
    }

    /// Whether this runtime's driver is turned for the current thread: always on the
    /// multi-thread flavour (its workers turn it), only on the `block_on` thread for the
    /// current-thread flavour.
    pub(crate) fn drives_here(&self) -> bool {
        match self {
            Scheduler::CurrentThread(s) => current_thread::is_driving_thread(s),
            Scheduler::MultiThread(_) => true,
        }
    }

    pub(crate) fn flavor(&self) -> &'static str {
        match self {
            Scheduler::CurrentThread(_) => "current_thread",
            Scheduler::MultiThread(_) => "multi_thread",
        }
    }
}

/// How long a `block_on` thread of the multi-thread runtime keeps checking its wake
/// flag before it parks, after a poll returned `Pending`.
///
/// The future of a `block_on` on the multi-thread flavour is woken by a worker (the one
/// in `epoll_wait`), so a request/response loop run there pays two thread wake-ups per
/// request. Spinning a few microseconds first means that a wake that comes soon is a
/// flag the thread sees, not a futex sleep and wake; measured on the benchmark's UDP
/// ping-pong (a `block_on` loop, 2 workers, `loadgen --targets` with the servers side by
/// side, three runs): futex calls per round trip 1.8 → 0.7, `epoll_wait` calls 0.9 →
/// 0.4, throughput 44–54k → 60–70k round trips/s (tokio multi-thread: 45–62k) with
/// *less* CPU per round trip (13.0 → 10.1–11.0 µs). 20 µs measured the same as 5 µs
/// with more CPU. The cost is at most this much CPU per wake that comes later.
const BLOCK_ON_SPIN: Duration = Duration::from_micros(5);

/// Wakes a thread blocked in [`block_on_thread`].
pub(super) struct ThreadWaker {
    thread: std::thread::Thread,
    notified: AtomicBool,
}

impl ThreadWaker {
    /// A waker for the calling thread.
    pub(super) fn for_current_thread() -> Arc<ThreadWaker> {
        Arc::new(ThreadWaker { thread: std::thread::current(), notified: AtomicBool::new(false) })
    }

    /// Sleeps until woken (returns at once if a wake came since the last call).
    pub(super) fn wait(&self) {
        while !self.notified.swap(false, Ordering::AcqRel) {
            std::thread::park();
        }
    }
}

impl Wake for ThreadWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }
    fn wake_by_ref(self: &Arc<Self>) {
        if !self.notified.swap(true, Ordering::AcqRel) {
            self.thread.unpark();
        }
    }
}

/// Polls `future` on this thread, sleeping (`thread::park`) while it is pending. Tasks,
/// I/O and timers are served by the runtime's workers meanwhile.
pub(crate) fn block_on_thread<F: Future>(_driver: &Arc<Driver>, future: F) -> F::Output {
    let tw = ThreadWaker::for_current_thread();
    let waker = Waker::from(tw.clone());
    let mut cx = Context::from_waker(&waker);
    let mut future = std::pin::pin!(future);
    crate::runtime::coop::unconstrained();
    let _region = crate::runtime::context::BlockingRegion::enter();
    // The future here spawns and joins tasks like any other: recycle their allocations.
    let _task_cache = crate::task::cache::enable_for_scheduler();
    loop {
        if let Poll::Ready(v) = future.as_mut().poll(&mut cx) {
            return v;
        }
        if tw.notified.swap(false, Ordering::AcqRel) {
            continue;
        }
        // Spin, then park: see `BLOCK_ON_SPIN`. (The clock is read only once a wait has
        // begun: a wake that came during the poll costs nothing here.)
        let spin_start = Instant::now();
        let mut checks = 0u32;
        while !tw.notified.swap(false, Ordering::AcqRel) {
            checks += 1;
            if checks % 16 != 0 || spin_start.elapsed() < BLOCK_ON_SPIN {
                std::hint::spin_loop();
                continue;
            }
            std::thread::park();
        }
    }
}
