//! The thread-local "current runtime", and the rule for finding a driver.
//!
//! * Worker threads, blocking-pool threads and any thread inside `block_on` have the
//!   runtime's [`Handle`] set here; `spawn` and `Handle::current` read it.
//! * Sockets and timers ask [`driver`] for the driver to register with: the current
//!   runtime's, or else the process-wide fallback driver (never a panic).

use std::cell::RefCell;
use std::io;
use std::sync::Arc;

use super::io::{fallback, Driver};
use super::Handle;

thread_local! {
    static CURRENT: RefCell<Option<Handle>> = const { RefCell::new(None) };
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

impl Drop for EnterGuard {
    fn drop(&mut self) {
        let prev = self.prev.take();
        let old = CURRENT.with(|c| std::mem::replace(&mut *c.borrow_mut(), prev));
        drop(old);
    }
}

/// Sets the current runtime for the rest of this thread's life (pool threads).
pub(crate) fn set_for_thread(handle: Option<Handle>) {
    let old = CURRENT.with(|c| std::mem::replace(&mut *c.borrow_mut(), handle));
    drop(old);
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
    let d = CURRENT.try_with(|c| c.borrow().as_ref().map(|h| h.inner.driver.clone())).ok().flatten();
    match d {
        Some(d) if !d.is_shutdown() => Ok(d),
        _ => fallback::driver(),
    }
}
