//! [`Handle`]: a cloneable reference to a runtime, usable from any thread.

use std::fmt;
use std::future::Future;
use std::sync::Arc;

use super::blocking::BlockingSpawner;
use super::io::Driver;
use super::scheduler::Scheduler;
use crate::task::{JoinHandle, Owner};

/// A handle to a runtime: spawn onto it, or block on a future inside it, from any thread.
///
/// Obtained from [`Runtime::handle`](super::Runtime::handle) or [`Handle::current`].
/// A handle does not keep the runtime alive: once the runtime is dropped, spawning through
/// the handle yields tasks that are cancelled at once.
///
/// # Examples
///
/// ```
/// let rt = blitz_io::runtime::Runtime::new().unwrap();
/// let handle = rt.handle().clone();
/// let t = std::thread::spawn(move || handle.block_on(async { 1 + 1 }));
/// assert_eq!(t.join().unwrap(), 2);
/// ```
#[derive(Clone)]
pub struct Handle {
    pub(crate) inner: Arc<HandleInner>,
}

pub(crate) struct HandleInner {
    pub(crate) scheduler: Scheduler,
    pub(crate) driver: Arc<Driver>,
    pub(crate) blocking: BlockingSpawner,
}

/// The error of [`Handle::try_current`]: this thread is not inside a blitz-io runtime.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TryCurrentError(());

impl fmt::Display for TryCurrentError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("this thread is not inside a blitz-io runtime (start one with blitz_io::run)")
    }
}

impl std::error::Error for TryCurrentError {}

/// The thread's runtime context set by [`Handle::enter`] or [`Runtime::enter`](super::Runtime::enter);
/// dropping it restores the previous one. Not `Send`: it belongs to the thread that
/// entered.
#[must_use = "the runtime is current only while the guard lives"]
pub struct EnterGuard<'a> {
    _ctx: super::context::EnterGuard,
    _not_send: std::marker::PhantomData<(&'a Handle, *const ())>,
}

impl fmt::Debug for EnterGuard<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EnterGuard").finish_non_exhaustive()
    }
}

impl Handle {
    /// The handle of the runtime this thread is in.
    ///
    /// # Panics
    ///
    /// Panics outside a runtime; [`Handle::try_current`] returns an error instead.
    ///
    /// # Examples
    ///
    /// ```
    /// blitz_io::run(async {
    ///     let h = blitz_io::runtime::Handle::current();
    ///     assert_eq!(h.spawn(async { 5 }).await.unwrap(), 5);
    /// });
    /// ```
    #[track_caller]
    pub fn current() -> Handle {
        match Handle::try_current() {
            Ok(h) => h,
            Err(e) => panic!("Handle::current: {e}"),
        }
    }

    /// The handle of the runtime this thread is in, or an error outside any runtime.
    ///
    /// # Errors
    ///
    /// [`TryCurrentError`] when the thread is not a worker, a blocking-pool thread, or
    /// inside `block_on`.
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(blitz_io::runtime::Handle::try_current().is_err());
    /// ```
    pub fn try_current() -> Result<Handle, TryCurrentError> {
        super::context::current().ok_or(TryCurrentError(()))
    }

    /// Makes this runtime the current one of this thread until the guard drops, as
    /// tokio's `Handle::enter`: `spawn`, `Handle::current` and sockets that first wait
    /// here then find it. Tasks of a current-thread runtime still run only while some
    /// thread is inside its `block_on`. Drop nested guards in the reverse order of
    /// their creation.
    ///
    /// # Examples
    ///
    /// ```
    /// let rt = blitz_io::runtime::Builder::new_multi_thread().worker_threads(1).build()?;
    /// let task = {
    ///     let _guard = rt.handle().enter();
    ///     blitz_io::task::spawn(async { 1 + 1 }) // no panic: the thread is in the runtime
    /// };
    /// assert_eq!(rt.block_on(task).unwrap(), 2);
    /// assert!(blitz_io::runtime::Handle::try_current().is_err()); // left again
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn enter(&self) -> EnterGuard<'_> {
        EnterGuard { _ctx: super::context::enter(self.clone()), _not_send: std::marker::PhantomData }
    }

    /// Spawns a task onto this runtime. See [`crate::task::spawn`].
    pub fn spawn<F>(&self, future: F) -> JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        crate::task::start(self.bind(future))
    }

    /// Creates the task for `future`, not yet scheduled (`Runnable::schedule` starts it),
    /// or gives `future` back when the runtime is shutting down. No user code runs here.
    pub(crate) fn bind<F>(&self, future: F) -> Result<(crate::task::Runnable, JoinHandle<F::Output>), F>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.inner.scheduler.bind(future)
    }

    /// Runs `f` on this runtime's blocking pool. See [`crate::task::spawn_blocking`].
    pub fn spawn_blocking<F, R>(&self, f: F) -> JoinHandle<R>
    where
        F: FnOnce() -> R + Send + 'static,
        R: Send + 'static,
    {
        // A panic in `f` is caught like any task's (the handle reports it); an aborted job
        // that has not started is dropped (cancelled) when its turn comes.
        crate::task::spawn_unlisted(async move { f() }, Owner::Blocking(self.inner.blocking.clone()))
    }

    /// Runs `future` to completion on the current thread, inside this runtime's context.
    ///
    /// On a multi-thread runtime spawned tasks keep running on the workers meanwhile. On a
    /// current-thread runtime this thread drives the runtime (its tasks, I/O and timers)
    /// unless another thread already does.
    ///
    /// # Panics
    ///
    /// Panics if the future panics.
    pub fn block_on<F: Future>(&self, future: F) -> F::Output {
        let _guard = super::context::enter(self.clone());
        self.inner.scheduler.block_on(&self.inner.driver, future)
    }
}

impl fmt::Debug for Handle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Handle").field("flavor", &self.inner.scheduler.flavor()).finish()
    }
}
