//! [`TimeHandle`]: the timer wheel of one driver, with the clock conversion and the
//! "wake the parked thread early" handshake.
//!
//! Time is counted in 1 ms ticks from the handle's creation. A deadline becomes the
//! first tick at or after it (rounded **up**), and the wheel fires a timer only once the
//! clock has reached its tick (rounded **down**), so no timer ever fires early.
//!
//! # Parking handshake
//!
//! The thread that turns the driver computes its `epoll_wait` timeout from the wheel's
//! next expiration and publishes that tick in `parked_until`, all under the wheel lock.
//! A task that inserts a timer (under the same lock) due *before* `parked_until` unparks
//! the driver, so the new timer is not overslept. While nobody is parked the value is
//! `NOT_PARKED` and inserting costs no system call.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::task::Waker;
use std::time::{Duration, Instant};

use super::wheel::{TimerId, Wheel};

const NOT_PARKED: u64 = 0;
const PARKED_FOREVER: u64 = u64::MAX;
const NO_TIMER: u64 = u64::MAX;

/// The timer wheel of one driver.
#[derive(Debug)]
pub(crate) struct TimeHandle {
    start: Instant,
    wheel: Mutex<Wheel>,
    /// Tick at which the parked driver thread will wake (see the module doc).
    parked_until: AtomicU64,
    /// A lower bound of the earliest pending timer's tick; `NO_TIMER` when the wheel is
    /// empty. Lets a driver turn skip the clock read and the wheel lock when no timer
    /// is due (the common case of a busy network server).
    next_tick: AtomicU64,
    shutdown: std::sync::atomic::AtomicBool,
}

impl TimeHandle {
    pub(crate) fn new() -> TimeHandle {
        TimeHandle {
            start: Instant::now(),
            wheel: Mutex::new(Wheel::new()),
            parked_until: AtomicU64::new(NOT_PARKED),
            next_tick: AtomicU64::new(NO_TIMER),
            shutdown: std::sync::atomic::AtomicBool::new(false),
        }
    }

    fn wheel(&self) -> MutexGuard<'_, Wheel> {
        self.wheel.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The first tick at or after `deadline`.
    pub(crate) fn deadline_to_tick(&self, deadline: Instant) -> u64 {
        let d = deadline.saturating_duration_since(self.start);
        let ms = d.as_nanos().div_ceil(1_000_000);
        u64::try_from(ms).unwrap_or(u64::MAX - 1).min(u64::MAX - 1)
    }

    /// The last tick at or before `now`.
    fn now_tick(&self, now: Instant) -> u64 {
        u64::try_from(now.saturating_duration_since(self.start).as_millis()).unwrap_or(u64::MAX - 1)
    }

    fn tick_instant(&self, tick: u64) -> Instant {
        self.start
            .checked_add(Duration::from_millis(tick))
            .unwrap_or_else(|| self.start + Duration::from_secs(86_400 * 365 * 30))
    }

    /// Whether the handle's driver shut down (timers then move to the fallback driver).
    pub(crate) fn is_shutdown(&self) -> bool {
        self.shutdown.load(Ordering::Acquire)
    }

    /// Adds a timer. Returns `true` if the driver must be unparked to honour it.
    pub(crate) fn insert(&self, deadline: Instant, waker: &Waker) -> (TimerId, bool) {
        let tick = self.deadline_to_tick(deadline);
        // Cloned before locking: a waker's clone is user code (see `poll`).
        let waker = waker.clone();
        let mut wheel = self.wheel();
        let id = wheel.insert(tick, waker);
        self.next_tick.fetch_min(tick, Ordering::SeqCst);
        let unpark = tick < self.parked_until.load(Ordering::SeqCst);
        (id, unpark)
    }

    /// Polls timer `id`: `true` once it fired, else stores `waker`.
    ///
    /// A waker the wheel lets go of is dropped after the lock is released: its drop is
    /// user code, which may drop another timer of this driver (a waker owning a task
    /// that owns a `Sleep`) and would deadlock on the wheel's lock. (A replacement
    /// waker is still cloned under the lock, only when it would wake another task.)
    pub(crate) fn poll(&self, id: TimerId, waker: &Waker) -> bool {
        let (fired, displaced) = self.wheel().poll_take(id, waker);
        drop(displaced);
        fired
    }

    /// Cancels timer `id` (a stale id is ignored). Its waker is dropped outside the lock
    /// (see `poll`).
    pub(crate) fn remove(&self, id: TimerId) {
        let waker = {
            let mut wheel = self.wheel();
            let waker = wheel.remove_take(id);
            if wheel.is_empty() {
                self.next_tick.store(NO_TIMER, Ordering::SeqCst);
            }
            waker
        };
        drop(waker);
    }

    /// Moves timer `id` to `deadline`; `Some(unpark)` on success, `None` if it was stale.
    pub(crate) fn reset(&self, id: TimerId, deadline: Instant) -> Option<bool> {
        let tick = self.deadline_to_tick(deadline);
        let mut wheel = self.wheel();
        if !wheel.reset(id, tick) {
            return None;
        }
        self.next_tick.fetch_min(tick, Ordering::SeqCst);
        Some(tick < self.parked_until.load(Ordering::SeqCst))
    }

    /// The `epoll_wait` timeout for a thread about to park with `requested`, and the
    /// publication of the park deadline.
    #[inline]
    pub(crate) fn park_timeout(&self, requested: Option<Duration>) -> Option<Duration> {
        if requested == Some(Duration::ZERO) {
            return requested;
        }
        // Publish "parked" before looking for timers; `insert` publishes its timer before
        // looking at `parked_until` (both SeqCst): either we see the timer here, or the
        // inserter sees us parked and unparks us.
        self.parked_until.store(PARKED_FOREVER, Ordering::SeqCst);
        if self.next_tick.load(Ordering::SeqCst) == NO_TIMER {
            return requested;
        }
        self.park_timeout_timers(requested)
    }

    /// [`TimeHandle::park_timeout`] when a timer is pending (out of line, as
    /// `process_due`).
    #[inline(never)]
    fn park_timeout_timers(&self, requested: Option<Duration>) -> Option<Duration> {
        let wheel = self.wheel();
        match wheel.next_expiration() {
            None => requested,
            Some(tick) => {
                // The wheel may need an advance before the earliest deadline (to cascade
                // a higher level); make `process` do it when we wake for it.
                self.next_tick.fetch_min(tick, Ordering::SeqCst);
                self.parked_until.store(tick.max(1), Ordering::SeqCst);
                let now = Instant::now();
                let until = self.tick_instant(tick).saturating_duration_since(now);
                Some(requested.map_or(until, |r| r.min(until)))
            }
        }
    }

    /// The driver thread is awake again.
    #[inline]
    pub(crate) fn unparked(&self) {
        self.parked_until.store(NOT_PARKED, Ordering::Release);
    }

    /// Fires every timer due now; their wakers go to `wake`. Costs one atomic load when
    /// no timer is pending.
    #[inline]
    pub(crate) fn process(&self, wake: &mut Vec<Waker>) {
        let next = self.next_tick.load(Ordering::SeqCst);
        if next == NO_TIMER {
            return;
        }
        self.process_due(next, wake);
    }

    /// [`TimeHandle::process`] when a timer is pending: out of line, so that the check
    /// above inlines into every driver turn.
    #[inline(never)]
    fn process_due(&self, next: u64, wake: &mut Vec<Waker>) {
        let tick = self.now_tick(Instant::now());
        if tick < next {
            return;
        }
        let mut wheel = self.wheel();
        if tick >= wheel.now() {
            wheel.advance(tick, wake);
        }
        self.next_tick.store(wheel.next_expiration().unwrap_or(NO_TIMER), Ordering::SeqCst);
    }

    /// Number of pending timers.
    #[allow(dead_code)]
    pub(crate) fn len(&self) -> usize {
        self.wheel().len()
    }

    /// Wakes every pending timer's task (the driver is going away); later polls of these
    /// timers move them to the fallback driver.
    pub(crate) fn shutdown(&self, wake: &mut Vec<Waker>) {
        self.shutdown.store(true, Ordering::Release);
        let mut wheel = self.wheel();
        // Firing at u64::MAX - 1 would report them as elapsed; instead collect wakers
        // without completing: the sleeps see `is_shutdown` and re-register elsewhere.
        let taken = std::mem::take(&mut *wheel);
        drop(wheel);
        let mut taken = taken;
        taken.advance(u64::MAX - 1, wake);
    }
}
