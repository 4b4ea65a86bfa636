//! The thread-local "current runtime", and the rule for finding a driver.
//!
//! * Worker threads, blocking-pool threads and any thread inside `block_on` have the
//!   runtime's [`Handle`] set here; `spawn` and `Handle::current` read it.
//! * Sockets and timers ask [`driver`] for the driver to register with: the current
//!   runtime's (when this thread can count on it being turned), or else the process-wide
//!   fallback driver (never a panic).

use std::cell::{Cell, RefCell};
use std::io;
use std::sync::Arc;

use super::io::{fallback, Driver};
use super::Handle;

thread_local! {
    static CURRENT: RefCell<Option<Handle>> = const { RefCell::new(None) };
    /// Set while this thread runs a scheduler: a worker's whole life, or inside
    /// `block_on`. Blocking on another future here would stall the tasks this thread
    /// must run, so `block_on` refuses (see [`BlockingRegion`]).
    static IN_RUNTIME: Cell<bool> = const { Cell::new(false) };
}

/// Marks this thread as running a scheduler until dropped.
#[derive(Debug)]
pub(crate) struct BlockingRegion(());

impl BlockingRegion {
    /// Enters the region.
    ///
    /// # Panics
    ///
    /// Panics if the thread already runs a scheduler: a nested `block_on` would deadlock
    /// (the outer one cannot run the tasks the inner one waits for).
    #[track_caller]
    pub(crate) fn enter() -> BlockingRegion {
        if IN_RUNTIME.with(|f| f.replace(true)) {
            panic!(
                "cannot block_on inside a blitz-io runtime: this thread already runs one (a worker, or \
                 inside block_on), and blocking it would stall the tasks it must run; .await the future \
                 instead, or call block_on from spawn_blocking or a plain thread"
            );
        }
        BlockingRegion(())
    }
}

impl Drop for BlockingRegion {
    fn drop(&mut self) {
        IN_RUNTIME.with(|f| f.set(false));
    }
}

/// Restores the previous current handle when dropped.
#[derive(Debug)]
pub(crate) struct EnterGuard {
    prev: Option<Handle>,
}

/// Makes `handle` the current runtime of this thread until the guard drops.
pub(crate) fn enter(handle: Handle) -> EnterGuard {
    let prev = CURRENT.with(|c| c.borrow_mut().replace(handle));
    EnterGuard { prev }
}

/// As [`enter`], or `None` while this thread's thread-locals are being destroyed (a
/// runtime kept in a `thread_local!` is dropped then, and its shutdown must not panic:
/// a panic in a thread-local destructor aborts the process).
pub(crate) fn try_enter(handle: Handle) -> Option<EnterGuard> {
    CURRENT.try_with(|c| c.borrow_mut().replace(handle)).ok().map(|prev| EnterGuard { prev })
}

impl Drop for EnterGuard {
    fn drop(&mut self) {
        let prev = self.prev.take();
        // `try_with`: the guard may be dropped while thread-locals are being destroyed.
        let old = CURRENT.try_with(|c| std::mem::replace(&mut *c.borrow_mut(), prev)).ok().flatten();
        drop(old);
    }
}

/// Sets the current runtime for the rest of this thread's life (pool threads).
pub(crate) fn set_for_thread(handle: Option<Handle>) {
    let old = CURRENT.with(|c| std::mem::replace(&mut *c.borrow_mut(), handle));
    drop(old);
}

/// Runs `f` with the current runtime's handle, borrowed (no reference count touched);
/// `None` when this thread has no runtime.
pub(crate) fn with_current<R>(f: impl FnOnce(&Handle) -> R) -> Option<R> {
    CURRENT.try_with(|c| c.borrow().as_ref().map(f)).ok().flatten()
}

/// The current runtime's handle, if any.
pub(crate) fn current() -> Option<Handle> {
    CURRENT.try_with(|c| c.borrow().clone()).ok().flatten()
}

/// The driver a socket or timer created on this thread should use.
///
/// # Errors
///
/// Only when there is no runtime and the fallback driver cannot be started (the OS
/// refused an epoll instance or a thread).
pub(crate) fn driver() -> io::Result<Arc<Driver>> {
    // A current-thread runtime's driver turns only on the thread inside its `block_on`:
    // any other thread (its blocking pool, a thread it handed a Handle to) uses the
    // fallback driver, which always turns.
    let d = CURRENT
        .try_with(|c| c.borrow().as_ref().filter(|h| h.inner.scheduler.drives_here()).map(|h| h.inner.driver.clone()))
        .ok()
        .flatten();
    match d {
        Some(d) if !d.is_shutdown() => Ok(d),
        _ => fallback::driver(),
    }
}

/// Whether `driver` is the one [`driver`] would pick on this thread now (without
/// starting the fallback driver). A timer registered elsewhere moves here when polled.
pub(crate) fn is_current_driver(driver: &Driver) -> bool {
    let here = CURRENT
        .try_with(|c| {
            c.borrow()
                .as_ref()
                .filter(|h| h.inner.scheduler.drives_here() && !h.inner.driver.is_shutdown())
                .map(|h| std::ptr::eq(&*h.inner.driver, driver))
        })
        .ok()
        .flatten();
    match here {
        Some(same) => same,
        None => fallback::get().is_some_and(|f| std::ptr::eq(Arc::as_ptr(f), driver)),
    }
}
