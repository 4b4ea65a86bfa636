//! Timers: [`sleep()`], [`sleep_until`], [`timeout()`], [`interval()`].
//!
//! Timers live in a hierarchical timing wheel (six levels of 64 slots, 1 ms per tick at
//! the bottom level: O(1) insert, cancel and fire per timer) owned by the driver of the
//! runtime they were first polled in, and are fired by the same park/poll loop as I/O:
//! the thread that sleeps in `epoll_wait` uses the earliest deadline as its timeout.
//! Outside a runtime they use the fallback driver's wheel.
//!
//! **Resolution**: one millisecond. A deadline is rounded *up* to the next tick, so a
//! timer never completes before its deadline, and typically completes within about a
//! millisecond after it (later on a busy or oversubscribed machine).

pub(crate) mod driver;
mod interval;
mod sleep;
mod timeout;
pub(crate) mod wheel;

pub use interval::{interval, interval_at, Interval, MissedTickBehavior};
pub use sleep::{sleep, sleep_until, Sleep};
pub use std::time::Instant;
pub use timeout::{timeout, timeout_at, Elapsed, Timeout};
