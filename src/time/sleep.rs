//! [`Sleep`], [`sleep`] and [`sleep_until`].

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use super::wheel::TimerId;
use crate::runtime::io::Driver;

/// Waits until `duration` has elapsed.
///
/// Never completes early; resolution is one millisecond. Works inside a blitz-io runtime
/// and on any other executor (through the fallback driver).
///
/// # Cancel safety
///
/// Cancel safe: dropping the future removes its timer.
///
/// # Examples
///
/// ```
/// use std::time::{Duration, Instant};
/// blitz_io::run(async {
///     let start = Instant::now();
///     blitz_io::time::sleep(Duration::from_millis(20)).await;
///     assert!(start.elapsed() >= Duration::from_millis(20));
/// });
/// ```
pub fn sleep(duration: Duration) -> Sleep {
    sleep_until(after(Instant::now(), duration))
}

/// Waits until `deadline`. A deadline in the past completes at once.
///
/// # Cancel safety
///
/// Cancel safe: dropping the future removes its timer.
///
/// # Examples
///
/// ```
/// use std::time::{Duration, Instant};
/// blitz_io::run(async {
///     let deadline = Instant::now() + Duration::from_millis(5);
///     blitz_io::time::sleep_until(deadline).await;
///     assert!(Instant::now() >= deadline);
/// });
/// ```
pub fn sleep_until(deadline: Instant) -> Sleep {
    Sleep { deadline, entry: None }
}

/// `t + d`, or [`far_future`] where that overflows `Instant` (`Duration::MAX`: the
/// deadline never comes). Every deadline the time module computes from a duration.
pub(crate) fn after(t: Instant, d: Duration) -> Instant {
    t.checked_add(d).unwrap_or_else(far_future)
}

/// About thirty years from now: the deadline of a sleep whose duration overflows.
pub(crate) fn far_future() -> Instant {
    let now = Instant::now();
    now.checked_add(Duration::from_secs(86_400 * 365 * 30)).unwrap_or(now)
}

/// Future returned by [`sleep`] and [`sleep_until`].
///
/// # Panics
///
/// Polling panics only if no driver can be had at all: outside a runtime, when the OS
/// refuses to create the fallback driver's epoll instance or thread.
#[derive(Debug)]
#[must_use = "futures do nothing unless awaited"]
pub struct Sleep {
    deadline: Instant,
    entry: Option<(Arc<Driver>, TimerId)>,
}

impl Sleep {
    /// The instant this sleep completes at.
    pub fn deadline(&self) -> Instant {
        self.deadline
    }

    /// Whether the deadline has passed.
    pub fn is_elapsed(&self) -> bool {
        Instant::now() >= self.deadline
    }

    /// Moves the deadline (the sleep becomes pending again if it was complete).
    pub fn reset(&mut self, deadline: Instant) {
        self.deadline = deadline;
        if let Some((driver, id)) = &self.entry {
            match driver.time.reset(*id, deadline) {
                Some(true) => driver.unpark(),
                Some(false) => {}
                None => self.remove(),
            }
        }
    }

    fn remove(&mut self) {
        if let Some((driver, id)) = self.entry.take() {
            driver.time.remove(id);
        }
    }
}

impl Future for Sleep {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        // A completed sleep counts against the task's cooperative budget, like an I/O
        // operation: otherwise `loop { timeout(ZERO, io).await }` with an exhausted
        // budget would complete forever without yielding, and the budget (refilled only
        // when the task yields) would never come back.
        std::task::ready!(crate::runtime::coop::poll_proceed(cx));
        let this = &mut *self;
        if let Some((driver, id)) = &this.entry {
            if !driver.time.is_shutdown() && crate::runtime::context::is_current_driver(driver) {
                if driver.time.poll(*id, cx.waker()) {
                    this.entry = None;
                    crate::runtime::coop::spend();
                    return Poll::Ready(());
                }
                return Poll::Pending;
            }
            // The timer's driver is gone, or is not the one serving this thread (the
            // sleep moved to another runtime, or out of a current-thread runtime that
            // nobody drives now): move it to this thread's driver.
            self.remove();
        }
        let this = &mut *self;
        if Instant::now() >= this.deadline {
            crate::runtime::coop::spend();
            return Poll::Ready(());
        }
        let driver = match crate::runtime::context::driver() {
            Ok(d) => d,
            Err(e) => panic!("blitz-io: no timer driver available: {e}"),
        };
        let (id, unpark) = driver.time.insert(this.deadline, cx.waker());
        if unpark {
            driver.unpark();
        }
        this.entry = Some((driver, id));
        Poll::Pending
    }
}

impl Drop for Sleep {
    fn drop(&mut self) {
        self.remove();
    }
}
