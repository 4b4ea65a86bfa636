//! Parking a thread: block in the I/O driver if it is free, else on a condvar.
//!
//! # States
//!
//! ```text
//!  EMPTY ──park──▶ PARKED_DRIVER  (this thread holds the driver and sleeps in epoll_wait)
//!    │    └─park──▶ PARKED_CONDVAR (the driver is someone else's; sleep on the condvar)
//!    ▲                 │
//!    └──── wake ◀── NOTIFIED ◀── unpark (from any state)
//! ```
//!
//! # Protocol
//!
//! * `unpark` swaps the state to `NOTIFIED` and then wakes whatever the old state says the
//!   thread is blocked in: the condvar (notified under the mutex, so the wake cannot slip
//!   between the parker's state check and its wait), or the driver (the mio waker makes
//!   `epoll_wait` return). From `EMPTY` or `NOTIFIED` no system call is made: the next
//!   `park` sees `NOTIFIED` and returns at once.
//! * `park` first consumes a pending `NOTIFIED`. Otherwise it moves to a parked state by
//!   compare-and-swap from `EMPTY`; if that fails an unpark came in between, and it
//!   returns. After waking it swaps the state back to `EMPTY`, consuming the
//!   notification.
//!
//! # Races it survives
//!
//! * unpark before park: the state is `NOTIFIED`, park returns immediately (no lost
//!   wake-up).
//! * unpark between the CAS to `PARKED_DRIVER` and `epoll_wait`: the mio waker's eventfd
//!   stays readable, so `epoll_wait` returns at once.
//! * unpark between the CAS to `PARKED_CONDVAR` and `wait`: the parker holds the mutex
//!   across the CAS and the wait; the unparker takes the mutex before notifying.
//! * spurious wake-ups: park may return without an unpark; callers re-check their queues.

use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::{Condvar, Mutex, PoisonError};
use std::time::Duration;

use super::io::Driver;

const EMPTY: usize = 0;
const PARKED_CONDVAR: usize = 1;
const PARKED_DRIVER: usize = 2;
const NOTIFIED: usize = 3;

/// One thread's parking spot.
#[derive(Debug, Default)]
pub(crate) struct Parker {
    state: AtomicUsize,
    mutex: Mutex<()>,
    condvar: Condvar,
}

impl Parker {
    /// Blocks until unparked, the timeout passes, or (when this thread ends up driving
    /// I/O) an I/O event or timer fires. May return spuriously.
    ///
    /// With `may_drive` the thread takes the driver if nobody holds it.
    ///
    /// `after_wake` runs once the thread is awake again and before the driver wakes any
    /// task (or right away when the thread did not block in the driver).
    pub(crate) fn park(&self, driver: &Driver, timeout: Option<Duration>, may_drive: bool, after_wake: impl FnOnce()) {
        if self.state.compare_exchange(NOTIFIED, EMPTY, SeqCst, SeqCst).is_ok() {
            after_wake();
            return;
        }
        if may_drive {
            if let Some(mut core) = driver.try_lock_core() {
                if self.state.compare_exchange(EMPTY, PARKED_DRIVER, SeqCst, SeqCst).is_err() {
                    self.state.swap(EMPTY, SeqCst);
                    after_wake();
                    return;
                }
                driver.turn(&mut core, timeout, || {
                    self.state.swap(EMPTY, SeqCst);
                    after_wake();
                });
                return;
            }
        }
        self.park_condvar(timeout);
        after_wake();
    }

    fn park_condvar(&self, timeout: Option<Duration>) {
        let mut guard = self.mutex.lock().unwrap_or_else(PoisonError::into_inner);
        if self.state.compare_exchange(EMPTY, PARKED_CONDVAR, SeqCst, SeqCst).is_err() {
            self.state.swap(EMPTY, SeqCst);
            return;
        }
        let deadline = timeout.map(|t| std::time::Instant::now() + t);
        loop {
            guard = match deadline {
                None => self.condvar.wait(guard).unwrap_or_else(PoisonError::into_inner),
                Some(d) => {
                    let now = std::time::Instant::now();
                    if now >= d {
                        break;
                    }
                    self.condvar.wait_timeout(guard, d - now).unwrap_or_else(PoisonError::into_inner).0
                }
            };
            if self.state.load(SeqCst) == NOTIFIED {
                break;
            }
        }
        drop(guard);
        self.state.swap(EMPTY, SeqCst);
    }

    /// Wakes the parked thread, or makes its next `park` return at once.
    pub(crate) fn unpark(&self, driver: &Driver) {
        match self.state.swap(NOTIFIED, SeqCst) {
            PARKED_CONDVAR => {
                drop(self.mutex.lock().unwrap_or_else(PoisonError::into_inner));
                self.condvar.notify_one();
            }
            PARKED_DRIVER => driver.unpark(),
            _ => {}
        }
    }
}
