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
//! * `park` first consumes a pending `NOTIFIED` (a plain load, then a compare-and-swap only if
//!   it saw one). Otherwise it moves to a parked state by
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
//!
//! # Holding the driver (the current-thread scheduler)
//!
//! The current-thread scheduler's `block_on` thread is the only one that ever turns its
//! runtime's driver (sockets used on any other thread register with the fallback driver,
//! see `runtime::io::fallback`). So it takes the driver once, for the whole `block_on`,
//! and its parker stays in `PARKED_DRIVER` from [`Parker::enter_held`] to
//! [`Parker::leave_held`], while tasks run too, as if the thread were always about to
//! wait in `epoll_wait`:
//!
//! * an `unpark` swaps in `NOTIFIED` and, seeing `PARKED_DRIVER`, wakes the driver (the
//!   eventfd), exactly as for a parked thread. Later unparks see `NOTIFIED` and make no
//!   system call, so it costs at most one eventfd write per park, and none for wakes
//!   that come from the thread itself (the scheduler queues those without `unpark`);
//! * [`Parker::park_held`] only *loads* the state. `PARKED_DRIVER` means no unpark
//!   since the last park, and one that comes after the load writes the eventfd, which
//!   ends the wait. `NOTIFIED` means one came: it swaps `PARKED_DRIVER` back in (a swap,
//!   so that an unpark racing with it either is seen by it or sees `PARKED_DRIVER` and
//!   writes the eventfd) and turns the driver without blocking.
//!
//! A park and its wake-up thus take no atomic read-modify-write at all when no other
//! thread unparks, and the driver's lock is taken once per `block_on` instead of once
//! per park (measured: see `current_thread`'s module doc).
//!
//! # Model checking
//!
//! The parker is written against the [`Park`] trait (implemented by the I/O [`Driver`])
//! and the `crate::loom` switch, so the `loom_tests` below check the protocol with a mock
//! driver under `RUSTFLAGS="--cfg loom"`: every interleaving of park/unpark, condvar and
//! driver paths, must end with the parked thread awake.

use std::time::Duration;

use super::io::Driver;
use crate::loom::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use crate::loom::sync::{Condvar, Mutex};

const EMPTY: usize = 0;
const PARKED_CONDVAR: usize = 1;
const PARKED_DRIVER: usize = 2;
const NOTIFIED: usize = 3;

/// What a parker can sleep in besides its condvar: the I/O driver (or, in the loom
/// models, a mock of it).
pub(crate) trait Park {
    /// If no other thread is turning the driver: runs `before_wait` while holding it; if
    /// that returns `true`, blocks in the driver for up to `timeout` (or until
    /// [`Park::unpark`]), runs `after_wait` as soon as the wait ends (before any task is
    /// woken), then dispatches events. Returns `false`, running neither closure, when the
    /// driver is busy.
    ///
    /// An [`Park::unpark`] issued at any time after `before_wait` started must end the
    /// wait (the driver's wake-up is sticky, like an eventfd).
    fn try_turn(
        &self,
        timeout: Option<Duration>,
        before_wait: impl FnOnce() -> bool,
        after_wait: impl FnOnce(),
    ) -> bool;

    /// Makes a thread blocked in [`Park::try_turn`] return.
    fn unpark(&self);
}

impl Park for Driver {
    fn try_turn(
        &self,
        timeout: Option<Duration>,
        before_wait: impl FnOnce() -> bool,
        after_wait: impl FnOnce(),
    ) -> bool {
        let Some(mut core) = self.try_lock_core() else { return false };
        if before_wait() {
            self.turn(&mut core, timeout, after_wait);
        }
        true
    }

    fn unpark(&self) {
        Driver::unpark(self);
    }
}

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
    /// With `may_drive` the thread takes the driver if nobody holds it. `driver_timeout`
    /// bounds the sleep in the driver, `condvar_timeout` the sleep on the condvar (used
    /// when `may_drive` is false or the driver is busy).
    ///
    /// `after_wake` runs once the thread is awake again and before the driver wakes any
    /// task (or right away when the thread did not block in the driver).
    pub(crate) fn park_split(
        &self,
        driver: &Driver,
        driver_timeout: Option<Duration>,
        condvar_timeout: Option<Duration>,
        may_drive: bool,
        after_wake: impl FnOnce(),
    ) {
        self.park_on(driver, driver_timeout, condvar_timeout, may_drive, after_wake);
    }

    /// [`Parker::park_split`] on any [`Park`] implementation.
    pub(crate) fn park_on<D: Park + ?Sized>(
        &self,
        driver: &D,
        timeout: Option<Duration>,
        condvar_timeout: Option<Duration>,
        may_drive: bool,
        after_wake: impl FnOnce(),
    ) {
        // Look before the compare-exchange: a failed one costs as much as a successful
        // one, and most parks find no pending unpark. One landing just after the look is
        // caught by `before_wait` (or by the condvar path's own check).
        if self.state.load(SeqCst) == NOTIFIED && self.state.compare_exchange(NOTIFIED, EMPTY, SeqCst, SeqCst).is_ok() {
            after_wake();
            return;
        }
        let mut after_wake = Some(after_wake);
        let drove = may_drive
            && driver.try_turn(
                timeout,
                || {
                    // Holding the driver: announce it, unless an unpark came in between.
                    let parked = self.state.compare_exchange(EMPTY, PARKED_DRIVER, SeqCst, SeqCst).is_ok();
                    if !parked {
                        self.state.swap(EMPTY, SeqCst);
                    }
                    parked
                },
                || {
                    self.state.swap(EMPTY, SeqCst);
                    if let Some(f) = after_wake.take() {
                        f();
                    }
                },
            );
        if !drove {
            self.park_condvar(condvar_timeout);
        }
        // Not yet run when the thread used the condvar or an unpark beat `before_wait`.
        if let Some(f) = after_wake.take() {
            f();
        }
    }

    fn park_condvar(&self, timeout: Option<Duration>) {
        let mut guard = crate::loom::lock(&self.mutex);
        if self.state.compare_exchange(EMPTY, PARKED_CONDVAR, SeqCst, SeqCst).is_err() {
            self.state.swap(EMPTY, SeqCst);
            return;
        }
        let deadline = timeout.map(|t| std::time::Instant::now() + t);
        loop {
            guard = match deadline {
                None => crate::loom::wait(&self.condvar, guard),
                Some(d) => {
                    let now = std::time::Instant::now();
                    if now >= d {
                        break;
                    }
                    crate::loom::wait_timeout(&self.condvar, guard, d - now)
                }
            };
            if self.state.load(SeqCst) == NOTIFIED {
                break;
            }
        }
        drop(guard);
        self.state.swap(EMPTY, SeqCst);
    }

    /// Enters held-driver mode (see the module doc): the calling thread holds the driver
    /// and is the only one that parks on this parker until [`Parker::leave_held`]. A
    /// pending `NOTIFIED` stays pending: the first [`Parker::park_held`] consumes it.
    pub(crate) fn enter_held(&self) {
        let entered = self.state.compare_exchange(EMPTY, PARKED_DRIVER, SeqCst, SeqCst);
        debug_assert!(entered.is_ok() || entered == Err(NOTIFIED), "parker shared in held-driver mode");
    }

    /// Leaves held-driver mode; a pending notification stays pending.
    pub(crate) fn leave_held(&self) {
        let _ = self.state.compare_exchange(PARKED_DRIVER, EMPTY, SeqCst, SeqCst);
    }

    /// Parks in held-driver mode: calls `wait` with `timeout`, or with a zero timeout if an
    /// unpark came since the last park. `wait` must return when the driver is unparked
    /// after it was called (the eventfd is sticky). May return spuriously.
    ///
    /// Returns `false` when a pending unpark made it a zero-timeout turn: the thread did
    /// not sleep, and the time spent is no measure of how long it stayed idle.
    #[inline]
    pub(crate) fn park_held(&self, timeout: Option<Duration>, wait: impl FnOnce(Option<Duration>)) -> bool {
        if self.take_held_unpark() {
            wait(Some(Duration::ZERO));
            false
        } else {
            wait(timeout);
            true
        }
    }

    /// Held-driver mode: consumes a pending unpark without a driver turn, for a caller
    /// that turns the driver without blocking and re-checks its queues right after (the
    /// idle spin). The swap pairs with the unparker's: the work published before that
    /// unpark is seen by the re-check, and the eventfd it wrote is consumed by the turn;
    /// an unpark after the swap sees `PARKED_DRIVER` and writes the eventfd again.
    /// Returns whether there was one. (`park_held` starts with it, then turns the driver
    /// without blocking if it returned `true`.)
    #[inline]
    pub(crate) fn take_held_unpark(&self) -> bool {
        if self.state.load(SeqCst) == NOTIFIED {
            self.state.swap(PARKED_DRIVER, SeqCst);
            return true;
        }
        false
    }

    /// Wakes the parked thread, or makes its next `park` return at once.
    pub(crate) fn unpark(&self, driver: &Driver) {
        self.unpark_on(driver);
    }

    /// [`Parker::unpark`] on any [`Park`] implementation.
    pub(crate) fn unpark_on<D: Park + ?Sized>(&self, driver: &D) {
        match self.state.swap(NOTIFIED, SeqCst) {
            PARKED_CONDVAR => {
                drop(crate::loom::lock(&self.mutex));
                self.condvar.notify_one();
            }
            PARKED_DRIVER => driver.unpark(),
            _ => {}
        }
    }
}

/// Loom models of the park/unpark protocol. Run with
/// `RUSTFLAGS="--cfg loom" LOOM_MAX_PREEMPTIONS=3 cargo test --release --lib loom`.
///
/// Every model has a thread wait for a condition in the only correct way (`while
/// !cond { park }`); a lost wake-up leaves it parked forever, which loom reports as a
/// deadlock.
#[cfg(all(test, loom))]
mod loom_tests {
    use super::*;
    use crate::loom::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
    use crate::loom::sync::{Arc, Condvar, Mutex};
    use loom::thread;
    use std::cell::Cell;

    /// A mock I/O driver: a try-lock "core" and a sticky wake-up flag (the eventfd). A
    /// turn blocks until unparked; it never times out and never wakes spuriously, so the
    /// parker gets no help from the driver.
    #[derive(Default)]
    struct MockDriver {
        core: Mutex<()>,
        woken: Mutex<bool>,
        condvar: Condvar,
        turns: AtomicUsize,
    }

    impl Park for MockDriver {
        fn try_turn(
            &self,
            _timeout: Option<Duration>,
            before_wait: impl FnOnce() -> bool,
            after_wait: impl FnOnce(),
        ) -> bool {
            let Ok(_core) = self.core.try_lock() else { return false };
            if before_wait() {
                self.turns.fetch_add(1, SeqCst);
                let mut woken = crate::loom::lock(&self.woken);
                while !*woken {
                    woken = crate::loom::wait(&self.condvar, woken);
                }
                *woken = false;
                drop(woken);
                after_wait();
            }
            true
        }

        fn unpark(&self) {
            *crate::loom::lock(&self.woken) = true;
            self.condvar.notify_one();
        }
    }

    struct Shared {
        parker: Parker,
        driver: MockDriver,
        ready: AtomicUsize,
    }

    fn shared() -> Arc<Shared> {
        Arc::new(Shared { parker: Parker::default(), driver: MockDriver::default(), ready: AtomicUsize::new(0) })
    }

    /// Parks until `ready` reaches `n`, checking that `after_wake` runs exactly once per
    /// park.
    fn park_until(s: &Shared, n: usize, may_drive: bool) {
        while s.ready.load(SeqCst) < n {
            let woke = Cell::new(false);
            s.parker.park_on(&s.driver, None, None, may_drive, || assert!(!woke.replace(true), "after_wake twice"));
            assert!(woke.get(), "after_wake not run");
        }
    }

    fn notify(s: &Shared) {
        s.ready.fetch_add(1, SeqCst);
        s.parker.unpark_on(&s.driver);
    }

    #[test]
    fn loom_park_condvar_vs_unpark() {
        crate::loom::model("park_condvar_vs_unpark", || {
            let s = shared();
            let s2 = s.clone();
            let t = thread::spawn(move || notify(&s2));
            park_until(&s, 1, false);
            t.join().unwrap();
            assert_eq!(s.driver.turns.load(SeqCst), 0, "may_drive=false must not drive");
        });
    }

    #[test]
    fn loom_park_driver_vs_unpark() {
        crate::loom::model("park_driver_vs_unpark", || {
            let s = shared();
            let s2 = s.clone();
            let t = thread::spawn(move || notify(&s2));
            park_until(&s, 1, true);
            t.join().unwrap();
        });
    }

    #[test]
    fn loom_unpark_before_park_returns_at_once() {
        crate::loom::model("unpark_before_park", || {
            let s = shared();
            let s2 = s.clone();
            thread::spawn(move || s2.parker.unpark_on(&s2.driver)).join().unwrap();
            // The notification is pending: one park returns without sleeping anywhere.
            let woke = Cell::new(false);
            s.parker.park_on(&s.driver, None, None, true, || woke.set(true));
            assert!(woke.get());
            assert_eq!(s.driver.turns.load(SeqCst), 0, "must not block in the driver");
            // And it was consumed: the state is back to EMPTY.
            assert_eq!(s.parker.state.load(SeqCst), EMPTY);
        });
    }

    #[test]
    fn loom_park_two_unparkers() {
        crate::loom::model("park_two_unparkers", || {
            let s = shared();
            let ts: Vec<_> = (0..2)
                .map(|_| {
                    let s = s.clone();
                    thread::spawn(move || notify(&s))
                })
                .collect();
            park_until(&s, 2, true);
            for t in ts {
                t.join().unwrap();
            }
        });
    }

    /// The driver turn of a held-driver park, on the mock: a non-blocking turn consumes
    /// a pending wake-up (as `epoll_wait` returning the eventfd's edge does); a blocking
    /// one waits until unparked (the mock never times out).
    fn held_turn(s: &Shared, timeout: Option<Duration>) {
        if timeout == Some(Duration::ZERO) {
            *crate::loom::lock(&s.driver.woken) = false;
        } else {
            assert!(s.driver.try_turn(timeout, || true, || {}));
        }
    }

    /// Held-driver mode (the current-thread scheduler): the thread holding the driver
    /// parks by a plain load; two unparkers race with its parks, and with the
    /// `NOTIFIED` consumption of a park that saw one of them.
    #[test]
    fn loom_park_held_vs_two_unparkers() {
        crate::loom::model("park_held_vs_two_unparkers", || {
            let s = shared();
            s.parker.enter_held();
            let ts: Vec<_> = (0..2)
                .map(|_| {
                    let s = s.clone();
                    thread::spawn(move || notify(&s))
                })
                .collect();
            while s.ready.load(SeqCst) < 2 {
                s.parker.park_held(None, |timeout| held_turn(&s, timeout));
            }
            s.parker.leave_held();
            for t in ts {
                t.join().unwrap();
            }
        });
    }

    /// Held-driver mode with the real code's orderings: the work counter is published
    /// with `Release` and read with `Acquire` (as `remote_len` and the main waker's flag
    /// are), the busy path's non-blocking turns consume wake-ups without touching the
    /// parker, and `enter_held` races with the unparkers. With these orderings a plain
    /// store in `park_held`'s `NOTIFIED` branch instead of the swap loses a wake-up (a
    /// deadlock here; the all-`SeqCst` model above cannot tell the two apart).
    #[test]
    fn loom_park_held_real_orderings() {
        use std::sync::atomic::Ordering::{Acquire, Release};
        crate::loom::model("park_held_real_orderings", || {
            let s = shared();
            let ts: Vec<_> = (0..2)
                .map(|_| {
                    let s = s.clone();
                    thread::spawn(move || {
                        s.ready.fetch_add(1, Release);
                        s.parker.unpark_on(&s.driver);
                    })
                })
                .collect();
            s.parker.enter_held();
            while s.ready.load(Acquire) < 2 {
                // The busy path's non-blocking turn: consumes a pending wake-up.
                held_turn(&s, Some(Duration::ZERO));
                if s.ready.load(Acquire) >= 2 {
                    break;
                }
                s.parker.park_held(None, |timeout| held_turn(&s, timeout));
            }
            s.parker.leave_held();
            for t in ts {
                t.join().unwrap();
            }
        });
    }

    /// An unpark before `enter_held` stays pending through it: the first held park does
    /// not block.
    #[test]
    fn loom_unpark_before_enter_held_is_kept() {
        crate::loom::model("unpark_before_enter_held", || {
            let s = shared();
            let s2 = s.clone();
            thread::spawn(move || s2.parker.unpark_on(&s2.driver)).join().unwrap();
            s.parker.enter_held();
            let mut waited = None;
            s.parker.park_held(None, |t| waited = Some(t));
            assert_eq!(waited, Some(Some(Duration::ZERO)), "a pending unpark must not block");
            s.parker.leave_held();
            assert_eq!(s.parker.state.load(SeqCst), EMPTY);
        });
    }

    #[test]
    fn loom_two_parkers_share_driver() {
        // Two workers park on one driver (one takes it, the other its condvar); a third
        // thread makes work and unparks both.
        struct Two {
            parkers: [Parker; 2],
            driver: MockDriver,
            ready: AtomicBool,
        }
        crate::loom::model("two_parkers_share_driver", || {
            let s = Arc::new(Two {
                parkers: [Parker::default(), Parker::default()],
                driver: MockDriver::default(),
                ready: AtomicBool::new(false),
            });
            let waiter = |i: usize| {
                let s = s.clone();
                thread::spawn(move || {
                    while !s.ready.load(SeqCst) {
                        s.parkers[i].park_on(&s.driver, None, None, true, || {});
                    }
                })
            };
            let a = waiter(0);
            let b = waiter(1);
            s.ready.store(true, SeqCst);
            s.parkers[0].unpark_on(&s.driver);
            s.parkers[1].unpark_on(&s.driver);
            a.join().unwrap();
            b.join().unwrap();
        });
    }
}
