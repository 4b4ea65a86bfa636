//! Spinning before sleeping: an idle scheduler keeps polling the I/O driver without
//! blocking for a short, adaptive window before it sleeps in `epoll_wait`.
//!
//! # Why
//!
//! Waking a thread that sleeps costs the *waker*: the kernel moves the sleeper to a run
//! queue and, if its CPU is idle, interrupts that CPU. On a virtual machine whose idle
//! vCPUs halt, that interrupt is a trip through the hypervisor. On the benchmark machine
//! (a Firecracker guest with the guest's halt-polling switched off,
//! `guest_halt_poll_ns` = 0) the `sendto` that wakes a server asleep in `epoll_wait`
//! takes about 13 µs, against about 1 µs when the server is awake. So a server that
//! sleeps in every short gap between bursts of work makes each of its peers pay that
//! price, many times a second. Under connection churn (16 connections in flight, each
//! connect, one round trip, close) the current-thread server slept 0.25 times per
//! connection and its load generator, which pays for those wakes, was the bottleneck.
//!
//! # The window
//!
//! This is the user-space counterpart of the guest kernel's haltpoll governor, and
//! adapts the same way. Before sleeping, the scheduler polls the driver (`epoll_wait`
//! with a zero timeout) until work shows up or the *window* has passed; only then does
//! it sleep. The window adapts to how long the scheduler actually stays idle:
//!
//! * It starts at zero. After each sleep the idle time (the spin plus the sleep) is
//!   compared with the limit `max` ([`Builder::idle_spin`](crate::runtime::Builder::idle_spin)).
//!   On the current-thread scheduler a park that did not sleep, because an unpark was
//!   pending, is not counted; a multi-thread worker's park does not say whether it
//!   slept, and one that returned at once with work (park step 3, a pending notify)
//!   counts as a short idle period:
//!   * at most `max`: work came soon after the spin gave up; a longer spin would have
//!     caught it. The window doubles (from `max / 4`), up to `max`;
//!   * above `max`: sleeping was right. The window halves, and drops to zero below
//!     `max / 8`.
//! * A spin that finds work leaves the window as it is.
//!
//! A scheduler whose idle gaps are longer than `max` (a quiet server, or one
//! connection's ping-pong, where the peer takes tens of microseconds to answer) thus
//! stops spinning after a few sleeps and then measures one sleep in eight (two clock
//! reads each; see [`Spin::begin_idle`]). One whose gaps are shorter spins through them
//! and rarely sleeps. The CPU spent spinning is at
//! most `max` per idle period, and only while idle periods are about that short.
//!
//! A wake that delivers nothing does not end the idle period: no task to run and no
//! waker woken by the driver's turn (`Driver::delivered`), as with the driver's own
//! eventfd after token releases, events for sockets nobody awaits, a timer moved
//! earlier from another thread, or a watchdog look. The scheduler keeps the period's
//! start and sleeps again (after one poll, the window having passed), and the period
//! is measured when something comes. Before, such a wake counted as a short idle
//! period and reopened the window: 30 datagrams per 60 ms timer gap on a socket nobody
//! awaited kept a 10 ms window spinning through the whole gap, 1.07 s of CPU in 1.2 s
//! (now 35–48 ms; `tests/rt_spin.rs`, `*wakes_without_work_do_not_reopen_the_window`).
//! A waker woken on another thread (a multi-thread worker's turn that wakes the
//! `block_on` thread) counts as delivered: a spin catches such events sooner too. Work
//! that runs between such a wake and the next idle period ends the period unmeasured;
//! a spin from the kept start that finds work ends it measured (it began before a
//! sleep, so "a spin that finds work leaves the window" does not apply).
//!
//! A wake from another thread leaves the current-thread parker `NOTIFIED` after the
//! loop has seen its work; the spin consumes it first (`Parker::take_held_unpark`), or
//! the zero-timeout turn `park_held` makes for it would start a second idle period with
//! a second spin inside one gap (found by review: two windows then covered gaps of up to
//! twice the window, and the window never closed).
//!
//! # Where it spins
//!
//! * the current-thread scheduler, before it parks in the driver it holds;
//! * a multi-thread worker, only when it is the last awake worker (the one that would
//!   sleep in the driver), and as a searcher, so that tasks pushed from elsewhere
//!   meanwhile are left to it (`multi_thread`'s module doc, "Spin", says how it then
//!   shares them). A worker with others awake sleeps on its condvar at once, as
//!   before: spinning there would take a core from a worker or from the rest of the
//!   machine.
//!
//! Timers are served by the spin too: a non-blocking driver turn fires due timers.

use std::time::{Duration, Instant};

/// Default limit of the window: long enough for the gaps between bursts of a busy
/// server, short enough that a request/response connection does not spin through the
/// peer's turn (tens of microseconds).
pub(crate) const DEFAULT_MAX: Duration = Duration::from_micros(10);

/// While the window is zero, one idle period in this many is measured.
const SAMPLE: u8 = 8;

/// One scheduler thread's spin window.
#[derive(Debug, Clone)]
pub(crate) struct Spin {
    max_ns: u64,
    window_ns: u64,
    /// Idle periods left to pass unmeasured (see [`Spin::begin_idle`]).
    skip: u8,
    /// The start of an idle period that a wake delivering nothing did not end
    /// ([`Spin::end_sleep`]); the next [`Spin::begin_idle`] goes on with it.
    kept: Option<Instant>,
    /// Whether the current idle period is a kept one: it began before a sleep.
    resumed: bool,
}

impl Spin {
    /// A window that grows up to `max` (zero: never spin).
    pub(crate) fn new(max: Duration) -> Spin {
        Spin {
            max_ns: u64::try_from(max.as_nanos()).unwrap_or(u64::MAX),
            window_ns: 0,
            skip: 0,
            kept: None,
            resumed: false,
        }
    }

    /// The scheduler ran out of work. Returns when the idle period started if it is to be
    /// spun through or measured; `None`: sleep at once, without measuring. A period kept
    /// by [`Spin::end_sleep`] goes on: its start is returned.
    ///
    /// Measuring costs two clock reads per sleep (about 100 instructions with std's
    /// `Instant`, a sixth more per round trip on the 1-connection echo, where the server
    /// sleeps once per round trip). So while the window is zero and the last measured
    /// idle period was long, only one in [`SAMPLE`] is measured: the window still starts
    /// to grow within a few sleeps of the gaps getting short.
    #[inline]
    pub(crate) fn begin_idle(&mut self) -> Option<Instant> {
        self.resumed = self.kept.is_some();
        if let Some(start) = self.kept.take() {
            return Some(start);
        }
        if self.max_ns == 0 {
            return None;
        }
        if self.skip > 0 {
            self.skip -= 1;
            return None;
        }
        Some(Instant::now())
    }

    /// How long to spin now (zero: sleep at once).
    #[inline]
    pub(crate) fn window(&self) -> Duration {
        Duration::from_nanos(self.window_ns)
    }

    /// Work ran before the scheduler went idle again: a kept idle period ended there,
    /// unmeasured.
    #[inline]
    pub(crate) fn work_ran(&mut self) {
        self.kept = None;
    }

    /// After a sleep of the idle period that began at `start`: `delivered` says whether
    /// the wake brought anything (a task, or a waker woken by the driver's turn). If it
    /// did, the period ends and adapts the window; if not, it is kept for the next
    /// [`Spin::begin_idle`].
    pub(crate) fn end_sleep(&mut self, start: Instant, delivered: bool) {
        if delivered {
            self.after_sleep(start.elapsed());
        } else {
            self.kept = Some(start);
        }
    }

    /// Adapts the window after a sleep: `idle` is the time from the start of the spin
    /// (or of the sleep, when there was no spin) until the sleep ended.
    pub(crate) fn after_sleep(&mut self, idle: Duration) {
        let idle = u64::try_from(idle.as_nanos()).unwrap_or(u64::MAX);
        if idle <= self.max_ns {
            self.window_ns = (self.window_ns * 2).max(self.max_ns / 4).min(self.max_ns);
        } else {
            self.window_ns /= 2;
            if self.window_ns < self.max_ns / 8 {
                self.window_ns = 0;
                self.skip = SAMPLE - 1;
            }
        }
    }

    /// Polls with `poll` (one non-blocking driver turn, then whether work is there)
    /// until it reports work or the window has passed since `start`. Returns whether it
    /// found work. Work found in a kept idle period ends it measured: the period began
    /// before a sleep, so "a spin that finds work leaves the window" does not apply.
    pub(crate) fn spin(&mut self, start: Instant, mut poll: impl FnMut() -> bool) -> bool {
        let window = self.window();
        loop {
            if poll() {
                if self.resumed {
                    self.after_sleep(start.elapsed());
                }
                return true;
            }
            if start.elapsed() >= window {
                return false;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAX: Duration = Duration::from_micros(40);

    #[test]
    fn short_idle_grows_the_window_up_to_max() {
        let mut s = Spin::new(MAX);
        assert_eq!(s.window(), Duration::ZERO);
        s.after_sleep(Duration::from_micros(5));
        assert_eq!(s.window(), MAX / 4);
        s.after_sleep(Duration::from_micros(5));
        assert_eq!(s.window(), MAX / 2);
        for _ in 0..5 {
            s.after_sleep(Duration::from_micros(5));
        }
        assert_eq!(s.window(), MAX);
    }

    #[test]
    fn long_idle_shrinks_the_window_to_zero() {
        let mut s = Spin::new(MAX);
        for _ in 0..4 {
            s.after_sleep(Duration::ZERO);
        }
        assert_eq!(s.window(), MAX);
        s.after_sleep(Duration::from_millis(1));
        assert_eq!(s.window(), MAX / 2);
        s.after_sleep(Duration::from_millis(1));
        assert_eq!(s.window(), MAX / 4);
        s.after_sleep(Duration::from_millis(1));
        assert_eq!(s.window(), MAX / 8);
        s.after_sleep(Duration::from_millis(1));
        assert_eq!(s.window(), Duration::ZERO);
        s.after_sleep(Duration::from_millis(1));
        assert_eq!(s.window(), Duration::ZERO);
    }

    #[test]
    fn zero_max_never_spins_nor_measures() {
        let mut s = Spin::new(Duration::ZERO);
        assert!(s.begin_idle().is_none());
        s.after_sleep(Duration::ZERO);
        assert_eq!(s.window(), Duration::ZERO);
        assert!(s.begin_idle().is_none());
    }

    #[test]
    fn long_gaps_are_sampled_and_short_ones_noticed() {
        let mut s = Spin::new(MAX);
        assert!(s.begin_idle().is_some());
        s.after_sleep(Duration::from_millis(1));
        // Window zero after a long gap: the next SAMPLE - 1 idle periods go unmeasured.
        for _ in 0..SAMPLE - 1 {
            assert!(s.begin_idle().is_none());
        }
        assert!(s.begin_idle().is_some());
        // A short gap measured: the window opens and every idle period is measured.
        s.after_sleep(Duration::from_micros(1));
        assert_eq!(s.window(), MAX / 4);
        assert!(s.begin_idle().is_some());
        assert!(s.begin_idle().is_some());
    }

    #[test]
    fn a_period_kept_across_an_empty_wake_goes_on_until_work() {
        let mut s = Spin::new(MAX);
        s.after_sleep(Duration::ZERO);
        assert_eq!(s.window(), MAX / 4);
        let start = s.begin_idle().unwrap();
        // A wake that delivered nothing: the same period goes on.
        s.end_sleep(start, false);
        assert_eq!(s.begin_idle(), Some(start));
        // Work ran before the next idle period: the kept one is gone, unmeasured.
        s.end_sleep(start, false);
        s.work_ran();
        assert_ne!(s.begin_idle(), Some(start));
        assert_eq!(s.window(), MAX / 4);
        // A kept period that a spin ends is measured: long here, so the window shrinks.
        let old = Instant::now() - Duration::from_millis(1);
        s.end_sleep(old, false);
        assert_eq!(s.begin_idle(), Some(old));
        assert!(s.spin(old, || true));
        assert_eq!(s.window(), MAX / 8);
        // A spin that finds work in a fresh period leaves the window as it is.
        let fresh = s.begin_idle().unwrap();
        assert!(s.spin(fresh, || true));
        assert_eq!(s.window(), MAX / 8);
        // A delivering wake ends the period measured.
        s.end_sleep(Instant::now() - Duration::from_millis(1), true);
        assert_eq!(s.window(), Duration::ZERO);
    }

    #[test]
    fn spin_stops_at_work_or_at_the_window() {
        let mut s = Spin::new(Duration::from_millis(5));
        // Window zero: one poll, then give up.
        let mut polls = 0;
        assert!(!s.spin(Instant::now(), || {
            polls += 1;
            false
        }));
        assert_eq!(polls, 1);
        s.after_sleep(Duration::ZERO);
        // Work on the third poll ends the spin there.
        let mut polls = 0;
        assert!(s.spin(Instant::now(), || {
            polls += 1;
            polls == 3
        }));
        assert_eq!(polls, 3);
        // No work: the spin lasts the window (1.25 ms), not for ever.
        let t = Instant::now();
        assert!(!s.spin(t, || false));
        assert!(t.elapsed() >= s.window());
    }
}
