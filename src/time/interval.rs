//! [`Interval`]: a periodic tick.

use std::future::poll_fn;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use super::sleep::after;
use super::{sleep_until, Sleep};

/// What an [`Interval`] does when ticks were missed (the task was busy past a tick).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MissedTickBehavior {
    /// Fire the missed ticks back to back until caught up (the default).
    #[default]
    Burst,
    /// Restart the schedule from now: the next tick is one period after the late one.
    Delay,
    /// Skip the missed ticks: the next tick is the next multiple of the period.
    Skip,
}

/// Creates an interval whose first tick completes at once and then every `period`.
///
/// A zero period is raised to one millisecond (the timer resolution) instead of
/// panicking.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// blitz_io::run(async {
///     let mut iv = blitz_io::time::interval(Duration::from_millis(10));
///     let first = iv.tick().await;
///     let second = iv.tick().await;
///     assert!(second - first >= Duration::from_millis(10));
/// });
/// ```
pub fn interval(period: Duration) -> Interval {
    interval_at(Instant::now(), period)
}

/// Creates an interval whose first tick completes at `start`.
pub fn interval_at(start: Instant, period: Duration) -> Interval {
    let period = period.max(Duration::from_millis(1));
    Interval { next: start, period, sleep: sleep_until(start), behavior: MissedTickBehavior::Burst }
}

/// A periodic timer, created by [`interval`].
#[derive(Debug)]
pub struct Interval {
    next: Instant,
    period: Duration,
    sleep: Sleep,
    behavior: MissedTickBehavior,
}

impl Interval {
    /// Waits for the next tick and returns the instant it was scheduled for.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: a dropped `tick()` consumes no tick.
    pub async fn tick(&mut self) -> Instant {
        poll_fn(|cx| self.poll_tick(cx)).await
    }

    /// Poll form of [`tick`](Interval::tick).
    pub fn poll_tick(&mut self, cx: &mut Context<'_>) -> Poll<Instant> {
        if Pin::new(&mut self.sleep).poll(cx).is_pending() {
            return Poll::Pending;
        }
        let scheduled = self.next;
        let now = Instant::now();
        let mut next = after(scheduled, self.period);
        if next < now {
            next = match self.behavior {
                MissedTickBehavior::Burst => next,
                MissedTickBehavior::Delay => after(now, self.period),
                MissedTickBehavior::Skip => {
                    let behind = now.duration_since(scheduled).as_nanos();
                    let p = self.period.as_nanos().max(1);
                    let periods = u32::try_from(behind / p + 1).unwrap_or(u32::MAX);
                    after(scheduled, self.period.saturating_mul(periods))
                }
            };
        }
        self.next = next;
        self.sleep.reset(next);
        Poll::Ready(scheduled)
    }

    /// Sets the behaviour for missed ticks.
    pub fn set_missed_tick_behavior(&mut self, behavior: MissedTickBehavior) {
        self.behavior = behavior;
    }

    /// The period.
    pub fn period(&self) -> Duration {
        self.period
    }

    /// Restarts the schedule: the next tick is one period from now.
    pub fn reset(&mut self) {
        self.next = after(Instant::now(), self.period);
        self.sleep.reset(self.next);
    }
}

use std::future::Future;
