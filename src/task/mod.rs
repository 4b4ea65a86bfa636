//! Tasks: `spawn`, `spawn_blocking`, `yield_now`, [`JoinHandle`] and [`JoinError`].
//!
//! # What a task is
//!
//! A task is one heap allocation (`raw`): a header with the state word (lifecycle bits
//! and reference count, `state`), the owner (the scheduler that queues it, or the
//! blocking pool) and the task-list links, then the future, later its output. The
//! pieces:
//!
//! * `state`: the state machine and its invariants, the part to read first;
//! * `raw`: the allocation, `Runnable` (run or drop a scheduled task), the waker
//!   vtable, the join handle's side;
//! * `owned`: the runtime's task list, so shutdown reaches tasks that sit in no queue;
//! * `join`: the public [`JoinHandle`] and [`JoinError`].
//!
//! What a runtime needs on top of "poll a future when woken":
//!
//! * **Panic capture.** A panic while polling (or while dropping the future) becomes the
//!   task's output (`Err(JoinError::is_panic)`) and never unwinds into a worker.
//! * **Ownership for shutdown.** Every live task of a runtime is in its task list. A
//!   runtime that shuts down closes the list (no new task is accepted) and cancels every
//!   task in it: a task parked forever on a socket, a timer or `pending()` is still
//!   dropped when its runtime goes.
//! * **Abort.** [`JoinHandle::abort`] sets the `CANCELLED` bit; the future is dropped on
//!   the task's next scheduling point (it is scheduled if idle), never while it is
//!   being polled.
//!
//! # Invariants
//!
//! 1. A runtime task is in its runtime's task list from spawn until its future is
//!    dropped.
//! 2. A `Runnable` is either in exactly one queue, being run, or being dropped; a task
//!    has at most one.
//! 3. After a runtime closes its list, no task of that runtime is polled again.

pub(crate) mod cache;
mod join;
pub(crate) mod owned;
mod raw;
mod state;
mod yield_now;

pub use join::{JoinError, JoinHandle};
pub use yield_now::yield_now;

pub(crate) use raw::Runnable;

use std::future::Future;

use owned::OwnedTasks;

/// Who runs a task: where its `Runnable`s go, and which task list holds it.
pub(crate) enum Owner {
    /// A runtime task: queued on its scheduler, listed in the scheduler's task list.
    Runtime(crate::runtime::scheduler::Scheduler),
    /// A `spawn_blocking` closure: run once on the blocking pool, in no list.
    Blocking(crate::runtime::blocking::BlockingSpawner),
    /// Unit tests: queued in a vector, listed in its own list.
    #[cfg(test)]
    Test(std::sync::Arc<testing::TestOwner>),
}

impl Owner {
    /// The task list tasks of this owner are linked into.
    pub(crate) fn owned(&self) -> Option<&OwnedTasks> {
        match self {
            Owner::Runtime(s) => Some(s.owned()),
            Owner::Blocking(_) => None,
            #[cfg(test)]
            Owner::Test(t) => Some(&t.owned),
        }
    }
}

/// Queues `runnable` with its owner. `yielded`: the task woke itself while running
/// (`yield_now`), so it goes behind the others.
///
/// The owner is cloned before the `Runnable` is handed over where the owner is reached
/// through the task: once queued, the task may run and be freed on another thread.
///
/// Always inlined (into the waker functions), as is the driver's `wake_all`: the wake
/// path then makes two calls fewer, 16 instructions per round trip on the 1-connection
/// echo (callgrind); `#[inline]` alone left both out of line.
#[inline(always)]
pub(crate) fn schedule(runnable: Runnable, yielded: bool) {
    match runnable.owner() {
        Owner::Runtime(_) => crate::runtime::scheduler::schedule_task(runnable, yielded),
        Owner::Blocking(spawner) => {
            let spawner = spawner.clone();
            // A refused job (pool shut down) is dropped with its runnable: the task is
            // cancelled and its handle reports it.
            let _ = spawner.spawn(Box::new(move || runnable.run()));
        }
        #[cfg(test)]
        Owner::Test(t) => {
            let t = t.clone();
            t.queue.lock().unwrap_or_else(std::sync::PoisonError::into_inner).push(runnable);
        }
    }
}

/// Runs one task (or drops its future, if it was aborted). Schedulers call this and
/// nothing else.
#[inline]
pub(crate) fn run(runnable: Runnable) {
    crate::runtime::coop::reset();
    runnable.run();
}

/// Starts a task made by `Handle::bind`: schedules it, or, if its runtime refused it
/// (shutting down), drops the future and hands out a cancelled handle. Called outside any
/// lock or thread-local borrow, since either step may run user code (a future's drop).
pub(crate) fn start<F: Future>(bound: Result<(Runnable, JoinHandle<F::Output>), F>) -> JoinHandle<F::Output> {
    match bound {
        Ok((runnable, handle)) => {
            runnable.schedule();
            handle
        }
        Err(refused) => {
            drop(refused);
            JoinHandle::cancelled()
        }
    }
}

/// Creates a task outside any task list (the blocking pool's) and schedules it.
pub(crate) fn spawn_unlisted<F>(future: F, owner: Owner) -> JoinHandle<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    let (runnable, raw) = raw::new_task(future, owner);
    runnable.schedule();
    JoinHandle::new(raw)
}

/// Spawns a future onto the current runtime and returns a handle to await its output.
///
/// The task starts running in the background at once; awaiting the [`JoinHandle`] is
/// optional (dropping it detaches the task). On the multi-thread runtime the task may
/// run on any worker and move between them, hence `Send + 'static`.
///
/// # Panics
///
/// Panics when called outside a blitz-io runtime. Start one with [`blitz_io::run`],
/// [`Runtime::block_on`](crate::runtime::Runtime::block_on) or `#[blitz_io::main]`, or
/// spawn through a [`Handle`](crate::runtime::Handle).
///
/// A panic *inside* the task does not propagate: it is caught and the handle yields
/// [`JoinError::is_panic`].
///
/// # Examples
///
/// ```
/// blitz_io::run(async {
///     let handle = blitz_io::task::spawn(async { 6 * 7 });
///     assert_eq!(handle.await.unwrap(), 42);
/// });
/// ```
///
/// [`blitz_io::run`]: crate::run
#[track_caller]
pub fn spawn<F>(future: F) -> JoinHandle<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    // The handle is borrowed from the thread-local, not cloned (two atomic operations on
    // every spawn). Only the task's creation runs under that borrow, which runs no user
    // code; scheduling it (which drops it if the runtime is shutting down) and dropping a
    // refused future come after the borrow ends: a future's destructor may enter a
    // runtime of its own.
    let mut future = Some(future);
    let bound = crate::runtime::context::with_current(|h| future.take().map(|f| h.bind(f))).flatten();
    match bound {
        Some(bound) => start(bound),
        None => {
            drop(future);
            panic!(
                "blitz_io::task::spawn called outside a blitz-io runtime: start one with \
                 blitz_io::run(..), Runtime::block_on(..) or #[blitz_io::main], or spawn through a \
                 runtime Handle"
            )
        }
    }
}

/// Runs a blocking closure on the runtime's blocking pool and returns a handle to its
/// result.
///
/// Use it for work that would stall a worker: file I/O, DNS resolution with
/// `getaddrinfo`, CPU-heavy computation. The pool grows on demand up to
/// [`Builder::max_blocking_threads`](crate::runtime::Builder::max_blocking_threads)
/// threads (512 by default); idle threads exit after a keep-alive.
///
/// Aborting the handle has no effect once the closure has started.
///
/// # Panics
///
/// Panics when called outside a blitz-io runtime (as [`spawn`] does). A panic inside the
/// closure is caught and reported through [`JoinError::is_panic`].
///
/// # Examples
///
/// ```
/// blitz_io::run(async {
///     let sum = blitz_io::task::spawn_blocking(|| (1..=10u64).sum::<u64>()).await.unwrap();
///     assert_eq!(sum, 55);
/// });
/// ```
#[track_caller]
pub fn spawn_blocking<F, R>(f: F) -> JoinHandle<R>
where
    F: FnOnce() -> R + Send + 'static,
    R: Send + 'static,
{
    match crate::runtime::Handle::try_current() {
        Ok(handle) => handle.spawn_blocking(f),
        Err(_) => panic!(
            "blitz_io::task::spawn_blocking called outside a blitz-io runtime: start one with \
             blitz_io::run(..), Runtime::block_on(..) or #[blitz_io::main]"
        ),
    }
}

#[cfg(test)]
pub(crate) mod testing {
    //! An owner for unit tests: a task list and a queue the test runs by hand.

    use std::sync::{Arc, Mutex, PoisonError};

    use super::owned::OwnedTasks;
    use super::{Owner, Runnable};

    #[derive(Default)]
    pub(crate) struct TestOwner {
        pub(crate) owned: OwnedTasks,
        pub(crate) queue: Mutex<Vec<Runnable>>,
    }

    impl TestOwner {
        pub(crate) fn new() -> Arc<TestOwner> {
            Arc::new(TestOwner::default())
        }

        pub(crate) fn owner(self: &Arc<Self>) -> Owner {
            Owner::Test(self.clone())
        }

        /// Takes the queued runnables.
        pub(crate) fn take(&self) -> Vec<Runnable> {
            std::mem::take(&mut *self.queue.lock().unwrap_or_else(PoisonError::into_inner))
        }
    }
}
