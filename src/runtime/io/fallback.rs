//! The fallback driver: serves blitz-io futures polled outside any blitz-io runtime.
//!
//! A socket future or a timer polled on another executor (or under
//! `futures::executor::block_on`, or on a plain thread) finds no runtime in its thread's
//! context. Instead of panicking with "no reactor running", it registers with this
//! process-wide driver. The driver is created on first use, together with one thread,
//! `blitz-io-fallback`, that does nothing but turn it: `epoll_wait`, set readiness, fire
//! timers, wake. The wakers it calls belong to the foreign executor, which re-polls the
//! futures on its own threads.
//!
//! The thread lives for the rest of the process (it is idle in `epoll_wait` when there
//! is nothing to do, using no CPU). Runtimes never use it: inside a runtime its own
//! driver serves every socket and timer.

use std::io;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use super::Driver;

static FALLBACK: OnceLock<Arc<Driver>> = OnceLock::new();
static INIT: Mutex<()> = Mutex::new(());

/// The fallback driver if it has been started.
pub(crate) fn get() -> Option<&'static Arc<Driver>> {
    FALLBACK.get()
}

/// The fallback driver, started on first use.
///
/// # Errors
///
/// The OS error if the epoll instance or the thread cannot be created (the next call
/// tries again).
pub(crate) fn driver() -> io::Result<Arc<Driver>> {
    if let Some(d) = FALLBACK.get() {
        return Ok(d.clone());
    }
    let _init = INIT.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(d) = FALLBACK.get() {
        return Ok(d.clone());
    }
    let driver = Driver::new()?;
    let for_thread = driver.clone();
    std::thread::Builder::new().name("blitz-io-fallback".into()).spawn(move || {
        crate::runtime::coop::unconstrained();
        loop {
            let mut core = for_thread.lock_core();
            for_thread.turn(&mut core, None, || {});
        }
    })?;
    let _ = FALLBACK.set(driver.clone());
    Ok(driver)
}
