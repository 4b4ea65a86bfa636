//! [`JoinHandle`] and [`JoinError`].

use std::any::Any;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::{Mutex, PoisonError};
use std::task::{Context, Poll, Waker};

use super::TaskMeta;

type TaskOutput<T> = Result<T, JoinError>;

/// An owned permission to await a spawned task's output, and to abort it.
///
/// Awaiting yields `Ok(output)`, or `Err(JoinError)` when the task panicked
/// ([`JoinError::is_panic`]) or was cancelled ([`JoinError::is_cancelled`]: aborted, or
/// its runtime shut down). Dropping the handle detaches the task: it keeps running and
/// its output is discarded.
///
/// # Cancel safety
///
/// Awaiting is cancel safe: dropping the `.await` (for example in a `select`) leaves the
/// task running, and the handle can be awaited again.
///
/// # Examples
///
/// ```
/// blitz_io::run(async {
///     let h = blitz_io::task::spawn(async { "done" });
///     assert_eq!(h.await.unwrap(), "done");
/// });
/// ```
pub struct JoinHandle<T> {
    task: Option<async_task::FallibleTask<TaskOutput<T>, TaskMeta>>,
    /// The task's metadata (abort flag), inside the task allocation.
    ///
    /// # Invariant
    ///
    /// Non-null and valid whenever `task` is `Some`: it was taken from that task before
    /// the task was made fallible, and the allocation lives as long as the task handle.
    meta: *const TaskMeta,
    /// A waker of the task, to schedule it after setting the abort flag (`None` for
    /// tasks outside a task table, which cannot be woken to be aborted).
    waker: Option<Waker>,
}

// SAFETY: `meta` points into the task allocation, which `task` keeps alive; `TaskMeta` is
// `Sync` (an atomic), so sharing or sending the pointer along with the handle is as safe
// as sharing the `FallibleTask` itself, which is `Send + Sync` for `T: Send`.
unsafe impl<T: Send> Send for JoinHandle<T> {}
// SAFETY: see the `Send` impl; `&JoinHandle` only reads the atomic flag through `meta`.
unsafe impl<T: Send> Sync for JoinHandle<T> {}
impl<T> Unpin for JoinHandle<T> {}

impl<T> JoinHandle<T> {
    pub(crate) fn new(task: async_task::Task<TaskOutput<T>, TaskMeta>, waker: Option<Waker>) -> JoinHandle<T> {
        let meta: *const TaskMeta = task.metadata();
        JoinHandle { task: Some(task.fallible()), meta, waker }
    }

    /// A handle for a task that could not be spawned (its runtime was shutting down).
    pub(crate) fn cancelled() -> JoinHandle<T> {
        JoinHandle { task: None, meta: std::ptr::null(), waker: None }
    }

    /// A handle for a task outside any task table (blocking-pool tasks).
    pub(crate) fn unowned(task: async_task::Task<TaskOutput<T>, TaskMeta>) -> JoinHandle<T> {
        let meta: *const TaskMeta = task.metadata();
        JoinHandle { task: Some(task.fallible()), meta, waker: None }
    }

    /// Cancels the task.
    ///
    /// The task's future is dropped at its next scheduling point (never in the middle of
    /// a poll) and awaiting the handle yields [`JoinError::is_cancelled`]. A task that
    /// already finished is not affected; a `spawn_blocking` closure that already started
    /// runs to the end.
    ///
    /// # Examples
    ///
    /// ```
    /// blitz_io::run(async {
    ///     let h = blitz_io::task::spawn(std::future::pending::<()>());
    ///     h.abort();
    ///     assert!(h.await.unwrap_err().is_cancelled());
    /// });
    /// ```
    pub fn abort(&self) {
        let Some(task) = &self.task else { return };
        if task.is_finished() {
            return;
        }
        // SAFETY: `task` is `Some`, so by the field's invariant `meta` is valid.
        let meta = unsafe { &*self.meta };
        meta.aborted.store(true, Ordering::Release);
        if let Some(waker) = &self.waker {
            // Schedules the task; the scheduler sees the flag and drops the future. On a
            // runtime that shut down, the schedule function drops it instead.
            waker.wake_by_ref();
        }
    }

    /// Whether the task has finished: completed, panicked or been cancelled.
    ///
    /// # Examples
    ///
    /// ```
    /// blitz_io::run(async {
    ///     let h = blitz_io::task::spawn(async {});
    ///     while !h.is_finished() {
    ///         blitz_io::task::yield_now().await;
    ///     }
    ///     assert!(h.await.is_ok());
    /// });
    /// ```
    pub fn is_finished(&self) -> bool {
        self.task.as_ref().is_none_or(|t| t.is_finished())
    }
}

impl<T> Future for JoinHandle<T> {
    type Output = Result<T, JoinError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let Some(task) = self.task.as_mut() else {
            return Poll::Ready(Err(JoinError::cancelled()));
        };
        match Pin::new(task).poll(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Some(out)) => Poll::Ready(out),
            Poll::Ready(None) => Poll::Ready(Err(JoinError::cancelled())),
        }
    }
}

impl<T> Drop for JoinHandle<T> {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.detach();
        }
    }
}

impl<T> fmt::Debug for JoinHandle<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JoinHandle").field("finished", &self.is_finished()).finish()
    }
}

/// Why a task did not produce its output.
///
/// Branch on [`is_cancelled`](JoinError::is_cancelled) and
/// [`is_panic`](JoinError::is_panic); [`into_panic`](JoinError::into_panic) returns the
/// panic payload so it can be resumed with `std::panic::resume_unwind`.
pub struct JoinError {
    repr: Repr,
}

enum Repr {
    Cancelled,
    // Behind a mutex only so that JoinError is Sync (the payload is Send, not Sync).
    Panic(Mutex<Box<dyn Any + Send + 'static>>),
}

impl JoinError {
    pub(crate) fn cancelled() -> JoinError {
        JoinError { repr: Repr::Cancelled }
    }

    pub(crate) fn panic(payload: Box<dyn Any + Send + 'static>) -> JoinError {
        JoinError { repr: Repr::Panic(Mutex::new(payload)) }
    }

    /// True when the task was cancelled: aborted, or dropped by its runtime's shutdown.
    pub fn is_cancelled(&self) -> bool {
        matches!(self.repr, Repr::Cancelled)
    }

    /// True when the task panicked.
    ///
    /// # Examples
    ///
    /// ```
    /// blitz_io::run(async {
    ///     let h = blitz_io::task::spawn(async { panic!("boom") });
    ///     let err = h.await.unwrap_err();
    ///     assert!(err.is_panic());
    /// });
    /// ```
    pub fn is_panic(&self) -> bool {
        matches!(self.repr, Repr::Panic(_))
    }

    /// The panic payload.
    ///
    /// # Panics
    ///
    /// Panics when the error is not a panic (check [`is_panic`](JoinError::is_panic)
    /// first, or use [`try_into_panic`](JoinError::try_into_panic)).
    #[track_caller]
    pub fn into_panic(self) -> Box<dyn Any + Send + 'static> {
        match self.try_into_panic() {
            Ok(p) => p,
            Err(_) => panic!("JoinError::into_panic called on a cancelled task's error"),
        }
    }

    /// The panic payload, or the error itself when the task was cancelled.
    pub fn try_into_panic(self) -> Result<Box<dyn Any + Send + 'static>, JoinError> {
        match self.repr {
            Repr::Panic(p) => Ok(p.into_inner().unwrap_or_else(PoisonError::into_inner)),
            Repr::Cancelled => Err(self),
        }
    }

    fn panic_message(&self) -> Option<String> {
        let Repr::Panic(p) = &self.repr else { return None };
        let p = p.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(s) = p.downcast_ref::<&'static str>() {
            Some((*s).to_owned())
        } else {
            p.downcast_ref::<String>().cloned()
        }
    }
}

impl fmt::Display for JoinError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.repr, self.panic_message()) {
            (Repr::Cancelled, _) => f.write_str("task was cancelled"),
            (Repr::Panic(_), Some(msg)) => write!(f, "task panicked: {msg}"),
            (Repr::Panic(_), None) => f.write_str("task panicked"),
        }
    }
}

impl fmt::Debug for JoinError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.repr, self.panic_message()) {
            (Repr::Cancelled, _) => f.write_str("JoinError::Cancelled"),
            (Repr::Panic(_), Some(msg)) => write!(f, "JoinError::Panic({msg:?})"),
            (Repr::Panic(_), None) => f.write_str("JoinError::Panic(..)"),
        }
    }
}

impl std::error::Error for JoinError {}

impl From<JoinError> for std::io::Error {
    fn from(e: JoinError) -> std::io::Error {
        let kind = if e.is_cancelled() { std::io::ErrorKind::Interrupted } else { std::io::ErrorKind::Other };
        std::io::Error::new(kind, e.to_string())
    }
}
