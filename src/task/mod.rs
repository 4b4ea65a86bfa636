//! Tasks: `spawn`, `spawn_blocking`, `yield_now`, [`JoinHandle`] and [`JoinError`].
//!
//! # What a task is
//!
//! A task is one heap allocation made by `async-task`: a header with the reference
//! count and the state bits, the schedule function, the future, and a small
//! `TaskMeta` (the abort flag). `async-task` owns the state machine (scheduled,
//! running, completed, closed) and the waker vtable; this module adds what a runtime
//! needs on top of it:
//!
//! * **Panic capture.** The future is wrapped so a panic while polling becomes the
//!   task's output (`Err(JoinError::is_panic)`) and never unwinds into a worker.
//! * **Ownership for shutdown** (`owned::OwnedTasks`). Every live task has a waker in
//!   its runtime's task table. A runtime that shuts down closes the table (no new
//!   task is accepted), wakes every task in it, and the schedule function then drops the
//!   `Runnable` instead of queueing it. Dropping a `Runnable` drops the future: so a
//!   task parked forever on a socket, a timer or `pending()` is still dropped when its
//!   runtime goes. The table entry is removed when the future is dropped (completion or
//!   cancellation), by a guard that lives inside the future.
//! * **Abort.** [`JoinHandle::abort`] sets the abort flag in the task's metadata and wakes
//!   the task through its table entry. Schedulers check the flag before running a
//!   `Runnable` and drop it instead: the future is dropped on the next scheduling point,
//!   never while it is being polled.
//!
//! # Invariants
//!
//! 1. A task's table entry exists from spawn until its future is dropped.
//! 2. A `Runnable` is either in exactly one queue, being run, or being dropped.
//! 3. After a runtime closes its table, no task of that runtime is ever polled again.

mod join;
pub(crate) mod owned;
mod yield_now;

pub use join::{JoinError, JoinHandle};
pub use yield_now::yield_now;

use std::future::Future;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};

use owned::OwnedGuard;

/// Per-task data stored inside the task allocation.
#[derive(Debug, Default)]
pub(crate) struct TaskMeta {
    /// Set by [`JoinHandle::abort`]; schedulers drop an aborted `Runnable` instead of
    /// running it.
    aborted: AtomicBool,
    /// The runtime scheduler the task belongs to (`None` for blocking-pool tasks, whose
    /// schedule function carries its own). Kept here rather than captured by the
    /// schedule function: async-task makes a zero-sized schedule function cheaper (see
    /// `scheduler::schedule_task`).
    scheduler: Option<crate::runtime::scheduler::Scheduler>,
}

impl TaskMeta {
    /// Metadata of a task of `scheduler`.
    pub(crate) fn new(scheduler: crate::runtime::scheduler::Scheduler) -> TaskMeta {
        TaskMeta { aborted: AtomicBool::new(false), scheduler: Some(scheduler) }
    }

    /// Whether the task was aborted.
    pub(crate) fn is_aborted(&self) -> bool {
        self.aborted.load(Ordering::Acquire)
    }

    /// The scheduler the task belongs to.
    pub(crate) fn scheduler(&self) -> Option<&crate::runtime::scheduler::Scheduler> {
        self.scheduler.as_ref()
    }
}

/// A scheduled unit of work as the schedulers see it.
pub(crate) type Runnable = async_task::Runnable<TaskMeta>;

/// Runs one task unless it was aborted. Schedulers call this and nothing else.
#[inline]
pub(crate) fn run(runnable: Runnable) {
    if runnable.metadata().is_aborted() {
        // Dropping the runnable cancels the task: its future is dropped here.
        drop(runnable);
        return;
    }
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

/// Builds the future a task really runs: the user's future with panics caught, and the
/// table guard dropped together with it.
async fn wrap<F>(future: F, guard: OwnedGuard) -> Result<F::Output, JoinError>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    let _guard = guard;
    let mut future = std::pin::pin!(future);
    std::future::poll_fn(move |cx| match catch_unwind(AssertUnwindSafe(|| future.as_mut().poll(cx))) {
        Ok(std::task::Poll::Ready(v)) => std::task::Poll::Ready(Ok(v)),
        Ok(std::task::Poll::Pending) => std::task::Poll::Pending,
        Err(payload) => std::task::Poll::Ready(Err(JoinError::panic(payload))),
    })
    .await
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
