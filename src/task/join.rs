//! [`JoinHandle`] and [`JoinError`].

use std::any::Any;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Mutex, PoisonError};
use std::task::{Context, Poll};

use super::raw::RawJoin;

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
/// # Panics
///
/// Polling the handle again after it returned the output panics (as for any future
/// polled after completion); `.await` never does that.
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
    /// `None` for a task its runtime refused (shutting down).
    raw: Option<RawJoin<T>>,
}

impl<T> Unpin for JoinHandle<T> {}

// A handle only reads its task's state word and, once the task is done, takes the
// output: no state a panic could leave half-changed for a later use to observe (as
// tokio's `JoinHandle`).
impl<T> std::panic::UnwindSafe for JoinHandle<T> {}
impl<T> std::panic::RefUnwindSafe for JoinHandle<T> {}

impl<T> JoinHandle<T> {
    pub(crate) fn new(raw: RawJoin<T>) -> JoinHandle<T> {
        JoinHandle { raw: Some(raw) }
    }

    /// A handle for a task that could not be spawned (its runtime was shutting down).
    pub(crate) fn cancelled() -> JoinHandle<T> {
        JoinHandle { raw: None }
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
        if let Some(raw) = &self.raw {
            raw.abort();
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
        self.raw.as_ref().is_none_or(RawJoin::is_finished)
    }
}

impl<T> Future for JoinHandle<T> {
    type Output = Result<T, JoinError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.raw.as_mut() {
            Some(raw) => raw.poll_output(cx),
            None => Poll::Ready(Err(JoinError::cancelled())),
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

/// An `io::Error` of kind `Other` saying what happened ("task was cancelled", "task
/// panicked: ..."), with the `JoinError` as its source. Not `Interrupted`: callers
/// retry an `Interrupted` call at once, and a task cancelled by its runtime's shutdown
/// stays cancelled, so such a retry loop would spin for ever.
impl From<JoinError> for std::io::Error {
    fn from(e: JoinError) -> std::io::Error {
        std::io::Error::other(e)
    }
}
