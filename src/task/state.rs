//! The task state word: one `AtomicUsize` holding the lifecycle bits and the reference
//! count, and every transition on it.
//!
//! # Bits
//!
//! | bit             | set while                                                     |
//! |-----------------|---------------------------------------------------------------|
//! | `RUNNING`       | a thread owns the future (polling it, or dropping it)          |
//! | `COMPLETE`      | the future is gone; the stage holds the output (or nothing)    |
//! | `NOTIFIED`      | a wake is pending: a `Runnable` exists or the poller resubmits |
//! | `JOIN_INTEREST` | the `JoinHandle` exists                                        |
//! | `JOIN_WAKER`    | the handle's waker is stored and belongs to the task side      |
//! | `CANCELLED`     | abort or shutdown asked for the future to be dropped           |
//!
//! The rest of the word counts references ([`REF_ONE`] each). A reference is held by:
//! the one `Runnable` (queued, or turned into the poller while it runs), the
//! `JoinHandle`, each `Waker`, and the runtime's task list while the task is in it. A
//! new task starts `NOTIFIED | JOIN_INTEREST` with two references (its `Runnable` and
//! its handle); the task list adds its own when it links the task, the first time the
//! task goes idle. The allocation is freed by whoever drops the count to zero.
//!
//! # Invariants
//!
//! 1. **One owner of the future.** Only the thread that set `RUNNING` (by
//!    [`State::transition_to_running`] or [`State::transition_to_shutdown`]) touches the
//!    future, and it keeps `RUNNING` until the task is idle again or `COMPLETE`.
//! 2. **At most one `Runnable`.** A wake creates one only when it is the one to set
//!    `NOTIFIED` on an idle task (not `RUNNING`, not `COMPLETE`). A wake during a poll only
//!    sets `NOTIFIED`; the poller sees it when it goes idle and resubmits the task itself,
//!    keeping its own reference for the new `Runnable`.
//! 3. **The output belongs to the handle once `COMPLETE` is set** if `JOIN_INTEREST` was
//!    set at that moment; otherwise the completing thread drops it.
//! 4. **The join waker slot has one writer.** While `JOIN_WAKER` is clear and the task is
//!    not complete, only the handle writes the slot; it publishes a waker by setting
//!    `JOIN_WAKER` (release). While it is set only the completing thread reads it; after
//!    completion the task side clears it, and the handle may then drop the slot.
//!
//! # Races this survives
//!
//! * **Wake during a poll** (another thread, or the task itself): `NOTIFIED` is set, no
//!   `Runnable` is made; `transition_to_idle` sees it and the poller resubmits. No wake
//!   is lost, none is doubled.
//! * **Wake vs. completion**: a wake on a `COMPLETE` task does nothing (by value, it only
//!   drops its reference).
//! * **Abort during a poll**: `CANCELLED | NOTIFIED` is set; the poller sees `CANCELLED`
//!   in `transition_to_idle` and drops the future itself, on its own thread, after the
//!   poll. An aborted idle task is scheduled so the future is dropped on its scheduler.
//! * **Shutdown vs. a worker polling the task**: shutdown sets `CANCELLED` and claims the
//!   future only if the task is idle; otherwise the poller drops it, as for an abort. A
//!   `Runnable` still queued for a task that shutdown claimed fails
//!   `transition_to_running` and only drops its reference.
//! * **Handle drop vs. completion**: both sides read the same CAS/XOR result, so exactly
//!   one of them drops the output and exactly one drops the join waker.
//!
//! The transitions are model-checked with loom (`task::raw` tests, `cfg(loom)`).

use crate::loom::sync::atomic::{AtomicUsize, Ordering};

pub(crate) const RUNNING: usize = 1 << 0;
pub(crate) const COMPLETE: usize = 1 << 1;
pub(crate) const NOTIFIED: usize = 1 << 2;
pub(crate) const JOIN_INTEREST: usize = 1 << 3;
pub(crate) const JOIN_WAKER: usize = 1 << 4;
pub(crate) const CANCELLED: usize = 1 << 5;
/// One reference.
pub(crate) const REF_ONE: usize = 1 << 6;

/// The state word of one task.
pub(crate) struct State {
    val: AtomicUsize,
}

/// A copy of the state word.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) struct Snapshot(usize);

impl Snapshot {
    pub(crate) fn is_running(self) -> bool {
        self.0 & RUNNING != 0
    }
    pub(crate) fn is_complete(self) -> bool {
        self.0 & COMPLETE != 0
    }
    pub(crate) fn is_notified(self) -> bool {
        self.0 & NOTIFIED != 0
    }
    pub(crate) fn is_join_interested(self) -> bool {
        self.0 & JOIN_INTEREST != 0
    }
    pub(crate) fn is_join_waker_set(self) -> bool {
        self.0 & JOIN_WAKER != 0
    }
    pub(crate) fn is_cancelled(self) -> bool {
        self.0 & CANCELLED != 0
    }
    pub(crate) fn ref_count(self) -> usize {
        self.0 / REF_ONE
    }
    fn is_idle(self) -> bool {
        self.0 & (RUNNING | COMPLETE) == 0
    }
}

impl std::fmt::Debug for Snapshot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Snapshot")
            .field("running", &self.is_running())
            .field("complete", &self.is_complete())
            .field("notified", &self.is_notified())
            .field("join_interest", &self.is_join_interested())
            .field("join_waker", &self.is_join_waker_set())
            .field("cancelled", &self.is_cancelled())
            .field("refs", &self.ref_count())
            .finish()
    }
}

/// Result of [`State::transition_to_running`].
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum ToRunning {
    /// The caller owns the future: poll it.
    Success,
    /// The caller owns the future and must drop it (aborted or shut down).
    Cancelled,
    /// Someone else owns the future or it is gone; the caller's reference was dropped.
    Failed,
    /// As `Failed`, and that was the last reference: free the task.
    FailedDealloc,
}

/// Result of [`State::transition_to_idle`].
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum ToIdle {
    /// Idle; the poller's reference was dropped.
    Ok,
    /// Idle, and the poller's reference was the last: free the task.
    OkDealloc,
    /// Woken during the poll: the poller's reference becomes the new `Runnable`'s.
    OkNotified,
    /// Cancelled during the poll: the caller still owns the future and must drop it.
    Cancelled,
}

/// Result of a wake.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum ToNotified {
    /// Schedule a new `Runnable` (it holds a reference already counted).
    Submit,
    DoNothing,
    /// The waker's reference was the last: free the task.
    Dealloc,
}

impl State {
    /// The state of a new task with `refs` references: notified (its first `Runnable`
    /// exists) and with a join handle.
    pub(crate) fn new(refs: usize) -> State {
        State { val: AtomicUsize::new(NOTIFIED | JOIN_INTEREST | (refs * REF_ONE)) }
    }

    pub(crate) fn load(&self) -> Snapshot {
        Snapshot(self.val.load(Ordering::Acquire))
    }

    /// Applies `f` until the compare-exchange succeeds; `f` returns the new value (or
    /// `None` to leave the word alone) and a result.
    #[inline]
    fn fetch_update_action<T>(&self, mut f: impl FnMut(Snapshot) -> (T, Option<Snapshot>)) -> T {
        let mut curr = Snapshot(self.val.load(Ordering::Acquire));
        loop {
            let (out, next) = f(curr);
            let Some(next) = next else { return out };
            match self.val.compare_exchange_weak(curr.0, next.0, Ordering::AcqRel, Ordering::Acquire) {
                Ok(_) => return out,
                Err(actual) => curr = Snapshot(actual),
            }
        }
    }

    /// A `Runnable` is being run (or, with `cancel`, dropped): take the future unless
    /// the task is running elsewhere or complete. Consumes `NOTIFIED`; on failure drops
    /// the `Runnable`'s reference.
    pub(crate) fn transition_to_running(&self, cancel: bool) -> ToRunning {
        self.fetch_update_action(|s| {
            let mut next = s.0;
            if cancel {
                next |= CANCELLED;
            }
            if !s.is_idle() {
                next -= REF_ONE;
                let r = if next / REF_ONE == 0 { ToRunning::FailedDealloc } else { ToRunning::Failed };
                return (r, Some(Snapshot(next)));
            }
            next = (next | RUNNING) & !NOTIFIED;
            let r = if next & CANCELLED != 0 { ToRunning::Cancelled } else { ToRunning::Success };
            (r, Some(Snapshot(next)))
        })
    }

    /// The poll returned `Pending`: give the future up (see [`ToIdle`]).
    pub(crate) fn transition_to_idle(&self) -> ToIdle {
        self.fetch_update_action(|s| {
            debug_assert!(s.is_running());
            if s.is_cancelled() {
                return (ToIdle::Cancelled, None);
            }
            let mut next = s.0 & !RUNNING;
            if next & NOTIFIED != 0 {
                return (ToIdle::OkNotified, Some(Snapshot(next)));
            }
            next -= REF_ONE;
            let r = if next / REF_ONE == 0 { ToIdle::OkDealloc } else { ToIdle::Ok };
            (r, Some(Snapshot(next)))
        })
    }

    /// The future is gone and the output stored: `RUNNING` → `COMPLETE`. Returns the
    /// state before.
    pub(crate) fn transition_to_complete(&self) -> Snapshot {
        let prev = Snapshot(self.val.fetch_xor(RUNNING | COMPLETE, Ordering::AcqRel));
        debug_assert!(prev.is_running() && !prev.is_complete());
        prev
    }

    /// Completion in one step for the common case: a handle is waiting for the output
    /// with no waker stored (it has not polled yet, or it was just woken and has not
    /// polled again). Sets `COMPLETE` and drops the caller's `n` references at once.
    /// Returns false, changing nothing, in any other case (or if the word changed): the
    /// caller then takes [`State::transition_to_complete`] and drops its references after
    /// handling the output or the waker, which needs the task alive.
    pub(crate) fn complete_and_release(&self, n: usize) -> bool {
        let cur = self.val.load(Ordering::Acquire);
        if cur & (JOIN_INTEREST | JOIN_WAKER) != JOIN_INTEREST {
            return false;
        }
        debug_assert!(cur & (RUNNING | COMPLETE) == RUNNING && cur / REF_ONE > n);
        // The handle's reference is among the others, so this is never the last.
        let next = (cur ^ (RUNNING | COMPLETE)) - n * REF_ONE;
        self.val.compare_exchange(cur, next, Ordering::AcqRel, Ordering::Acquire).is_ok()
    }

    /// After waking the join waker on completion: hands the slot back to the handle.
    /// Returns the state before (if the handle is gone, the caller drops the slot).
    pub(crate) fn unset_waker_after_complete(&self) -> Snapshot {
        Snapshot(self.val.fetch_and(!JOIN_WAKER, Ordering::AcqRel))
    }

    /// A wake by value (the waker's reference is consumed).
    pub(crate) fn transition_to_notified_by_val(&self) -> ToNotified {
        self.fetch_update_action(|s| {
            let mut next = s.0;
            if s.is_running() {
                // The poller resubmits; it holds a reference, so this is not the last.
                next = (next | NOTIFIED) - REF_ONE;
                (ToNotified::DoNothing, Some(Snapshot(next)))
            } else if s.is_complete() || s.is_notified() {
                next -= REF_ONE;
                let r = if next / REF_ONE == 0 { ToNotified::Dealloc } else { ToNotified::DoNothing };
                (r, Some(Snapshot(next)))
            } else {
                // The waker's reference passes to the new `Runnable`.
                (ToNotified::Submit, Some(Snapshot(next | NOTIFIED)))
            }
        })
    }

    /// A wake by reference.
    pub(crate) fn transition_to_notified_by_ref(&self) -> ToNotified {
        self.fetch_update_action(|s| {
            if s.is_complete() || s.is_notified() {
                (ToNotified::DoNothing, None)
            } else if s.is_running() {
                (ToNotified::DoNothing, Some(Snapshot(s.0 | NOTIFIED)))
            } else {
                (ToNotified::Submit, Some(Snapshot((s.0 | NOTIFIED) + REF_ONE)))
            }
        })
    }

    /// Abort: marks the task cancelled. Returns true when the caller must schedule a new
    /// `Runnable` (the task was idle and not queued; a reference was added for it).
    pub(crate) fn transition_to_notified_and_cancel(&self) -> bool {
        self.fetch_update_action(|s| {
            if s.is_cancelled() || s.is_complete() {
                (false, None)
            } else if s.is_running() || s.is_notified() {
                // The poller, or the queued `Runnable`, sees the flag.
                (false, Some(Snapshot(s.0 | NOTIFIED | CANCELLED)))
            } else {
                (true, Some(Snapshot((s.0 | NOTIFIED | CANCELLED) + REF_ONE)))
            }
        })
    }

    /// Shutdown: marks the task cancelled and takes the future if the task is idle.
    /// Returns true when the caller now owns the future (and must drop it).
    pub(crate) fn transition_to_shutdown(&self) -> bool {
        self.fetch_update_action(|s| {
            let mut next = s.0 | CANCELLED;
            let claimed = s.is_idle();
            if claimed {
                next |= RUNNING;
            }
            (claimed, Some(Snapshot(next)))
        })
    }

    /// The handle publishes its waker. Fails (and leaves the word alone) when the task
    /// completed meanwhile.
    pub(crate) fn set_join_waker(&self) -> Result<Snapshot, Snapshot> {
        self.fetch_update_action(|s| {
            debug_assert!(s.is_join_interested() && !s.is_join_waker_set());
            if s.is_complete() {
                return (Err(s), None);
            }
            let next = Snapshot(s.0 | JOIN_WAKER);
            (Ok(next), Some(next))
        })
    }

    /// The handle takes its waker slot back to replace the waker. Fails when the task
    /// completed meanwhile.
    pub(crate) fn unset_join_waker(&self) -> Result<Snapshot, Snapshot> {
        self.fetch_update_action(|s| {
            debug_assert!(s.is_join_interested() && s.is_join_waker_set());
            if s.is_complete() {
                return (Err(s), None);
            }
            let next = Snapshot(s.0 & !JOIN_WAKER);
            (Ok(next), Some(next))
        })
    }

    /// The handle is dropped. Returns (the handle must drop the output, the handle must
    /// drop the waker slot). The handle's reference is dropped separately.
    pub(crate) fn transition_to_join_handle_dropped(&self) -> (bool, bool) {
        self.fetch_update_action(|s| {
            let mut next = s.0 & !JOIN_INTEREST;
            if !s.is_complete() {
                next &= !JOIN_WAKER;
            }
            let out = (s.is_complete(), next & JOIN_WAKER == 0);
            (out, Some(Snapshot(next)))
        })
    }

    /// Clears `JOIN_INTEREST` and drops the handle's reference in one step, for a handle
    /// that saw `COMPLETE` with `JOIN_WAKER` clear (nothing else can change those bits).
    /// Returns true when that was the last reference.
    pub(crate) fn drop_join_interest_and_ref(&self) -> bool {
        let prev = Snapshot(self.val.fetch_sub(JOIN_INTEREST + REF_ONE, Ordering::AcqRel));
        debug_assert!(prev.is_join_interested() && prev.ref_count() >= 1);
        prev.ref_count() == 1
    }

    pub(crate) fn ref_inc(&self) {
        let prev = self.val.fetch_add(REF_ONE, Ordering::Relaxed);
        if prev > isize::MAX as usize {
            // Billions of wakers of one task: give up rather than wrap the count.
            std::process::abort();
        }
    }

    /// Drops `n` references; true when they were the last.
    pub(crate) fn ref_dec_n(&self, n: usize) -> bool {
        let prev = Snapshot(self.val.fetch_sub(n * REF_ONE, Ordering::AcqRel));
        debug_assert!(prev.ref_count() >= n);
        prev.ref_count() == n
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn run_idle_wake_run_complete() {
        let s = State::new(3);
        assert_eq!(s.transition_to_running(false), ToRunning::Success);
        // A wake by reference during the poll only marks the task.
        assert_eq!(s.transition_to_notified_by_ref(), ToNotified::DoNothing);
        assert_eq!(s.transition_to_idle(), ToIdle::OkNotified);
        assert_eq!(s.load().ref_count(), 3);
        assert_eq!(s.transition_to_running(false), ToRunning::Success);
        assert_eq!(s.transition_to_idle(), ToIdle::Ok);
        assert_eq!(s.load().ref_count(), 2);
        // Idle: a wake by reference makes a new runnable (+1 reference).
        assert_eq!(s.transition_to_notified_by_ref(), ToNotified::Submit);
        assert_eq!(s.transition_to_notified_by_ref(), ToNotified::DoNothing, "already queued");
        assert_eq!(s.load().ref_count(), 3);
        assert_eq!(s.transition_to_running(false), ToRunning::Success);
        let prev = s.transition_to_complete();
        assert!(prev.is_join_interested());
        assert!(s.load().is_complete() && !s.load().is_running());
        assert_eq!(s.transition_to_notified_by_ref(), ToNotified::DoNothing, "complete");
    }

    #[test]
    fn wake_by_val_transfers_or_drops_the_reference() {
        let s = State::new(3);
        assert_eq!(s.transition_to_running(false), ToRunning::Success);
        assert_eq!(s.transition_to_idle(), ToIdle::Ok);
        s.ref_inc(); // a waker
        assert_eq!(s.transition_to_notified_by_val(), ToNotified::Submit);
        assert_eq!(s.load().ref_count(), 3, "the waker's reference is the runnable's");
        s.ref_inc();
        assert_eq!(s.transition_to_notified_by_val(), ToNotified::DoNothing);
        assert_eq!(s.load().ref_count(), 3, "already queued: the waker's reference is dropped");
    }

    #[test]
    fn abort_and_shutdown() {
        // Abort while queued: the runnable finds the flag.
        let s = State::new(3);
        assert!(!s.transition_to_notified_and_cancel());
        assert_eq!(s.transition_to_running(false), ToRunning::Cancelled);
        // Abort while running: the poller finds it when going idle.
        let s = State::new(3);
        assert_eq!(s.transition_to_running(false), ToRunning::Success);
        assert!(!s.transition_to_notified_and_cancel());
        assert_eq!(s.transition_to_idle(), ToIdle::Cancelled);
        // Abort while idle: the aborter schedules.
        let s = State::new(3);
        assert_eq!(s.transition_to_running(false), ToRunning::Success);
        assert_eq!(s.transition_to_idle(), ToIdle::Ok);
        assert!(s.transition_to_notified_and_cancel());
        assert_eq!(s.load().ref_count(), 3);
        // Shutdown claims an idle task; a queued runnable then fails.
        let s = State::new(3);
        assert!(s.transition_to_shutdown());
        assert_eq!(s.transition_to_running(false), ToRunning::Failed);
        assert_eq!(s.load().ref_count(), 2);
        // Shutdown does not claim a running task.
        let s = State::new(3);
        assert_eq!(s.transition_to_running(false), ToRunning::Success);
        assert!(!s.transition_to_shutdown());
        assert_eq!(s.transition_to_idle(), ToIdle::Cancelled);
    }

    #[test]
    fn join_waker_handoff() {
        let s = State::new(3);
        assert!(s.set_join_waker().is_ok());
        assert!(s.unset_join_waker().is_ok());
        assert!(s.set_join_waker().is_ok());
        assert_eq!(s.transition_to_running(false), ToRunning::Success);
        let prev = s.transition_to_complete();
        assert!(prev.is_join_waker_set());
        assert!(s.unset_join_waker().is_err(), "complete: the slot stays with the task side");
        let prev = s.unset_waker_after_complete();
        assert!(prev.is_join_interested());
        assert_eq!(s.transition_to_join_handle_dropped(), (true, true));
        assert!(!s.ref_dec_n(1));
    }

    #[test]
    fn handle_dropped_before_completion_owns_the_waker() {
        let s = State::new(3);
        assert!(s.set_join_waker().is_ok());
        assert_eq!(s.transition_to_join_handle_dropped(), (false, true));
        assert!(!s.load().is_join_waker_set());
        assert_eq!(s.transition_to_running(false), ToRunning::Success);
        assert!(!s.transition_to_complete().is_join_interested());
    }

    #[test]
    fn one_step_completion_only_when_a_handle_waits_without_a_waker() {
        let s = State::new(3);
        assert_eq!(s.transition_to_running(false), ToRunning::Success);
        assert!(s.complete_and_release(1));
        let now = s.load();
        assert!(now.is_complete() && !now.is_running() && now.ref_count() == 2);
        // A stored join waker needs the slow path (the waker must be woken first).
        let s = State::new(3);
        assert!(s.set_join_waker().is_ok());
        assert_eq!(s.transition_to_running(false), ToRunning::Success);
        assert!(!s.complete_and_release(1));
        assert!(s.load().is_running() && s.load().ref_count() == 3, "unchanged");
        // No handle: the output must be dropped first.
        let s = State::new(3);
        assert_eq!(s.transition_to_join_handle_dropped(), (false, true));
        assert_eq!(s.transition_to_running(false), ToRunning::Success);
        assert!(!s.complete_and_release(1));
    }

    #[test]
    fn last_reference_is_reported_once() {
        let s = State::new(2);
        assert!(!s.ref_dec_n(1));
        assert!(s.ref_dec_n(1));
        let s = State::new(3);
        assert_eq!(s.transition_to_running(false), ToRunning::Success);
        let _ = s.transition_to_complete();
        assert!(!s.drop_join_interest_and_ref());
        assert!(s.ref_dec_n(2));
    }
}
