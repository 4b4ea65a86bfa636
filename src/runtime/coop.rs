//! Cooperative budget: a task whose I/O is always ready still yields now and then.
//!
//! Each time a scheduler polls a task it grants [`BUDGET`] units. Every I/O operation
//! that completes without waiting spends one. When the budget is spent, the next
//! readiness check wakes the task and returns `Pending`, so the task goes to the back of
//! the queue and other tasks run. Outside a runtime (a foreign executor, a plain thread)
//! the budget is unlimited: there is no scheduler to be fair to.
//!
//! The counter is a thread-local `Cell`; it costs a load and a store per operation.
//!
//! Building with `RUSTFLAGS="--cfg blitz_no_coop"` compiles the budget out (every check
//! passes, nothing is counted). That build exists only to measure what the budget costs
//! (`scripts/coop-cost.sh`); it is not a supported configuration, since a task with
//! always-ready I/O can then starve the others.

use std::cell::Cell;
use std::task::{Context, Poll};

/// Operations a task may complete per poll before it is made to yield.
pub(crate) const BUDGET: u32 = 128;

const UNCONSTRAINED: u32 = u32::MAX;

thread_local! {
    static REMAINING: Cell<u32> = const { Cell::new(UNCONSTRAINED) };
}

/// Grants a fresh budget; schedulers call this before each task poll.
#[inline]
pub(crate) fn reset() {
    if !cfg!(blitz_no_coop) {
        REMAINING.with(|r| r.set(BUDGET));
    }
}

/// Removes the limit (used by `block_on` for the future it drives directly... and by
/// threads that are not workers).
#[inline]
pub(crate) fn unconstrained() {
    REMAINING.with(|r| r.set(UNCONSTRAINED));
}

/// Puts the thread's budget back as it was when [`save`] made it, on drop (also when
/// unwinding).
#[must_use]
pub(crate) struct Restore(u32);

impl Drop for Restore {
    fn drop(&mut self) {
        // `try_with`: may run while thread-locals are being destroyed (a `block_on`
        // from a thread-local's destructor); nothing to restore then.
        let _ = REMAINING.try_with(|r| r.set(self.0));
    }
}

/// Remembers the thread's budget, to be restored when the guard drops. `block_on` runs
/// the runtime's tasks on the calling thread, each with a fresh (limited) budget; without
/// this the last task's remainder would stay behind after `block_on` returns, and
/// futures that a foreign executor later polls on the same thread (which work through
/// the fallback driver) would run out of it and yield for ever.
pub(crate) fn save() -> Restore {
    Restore(REMAINING.try_with(Cell::get).unwrap_or(UNCONSTRAINED))
}

/// `Ready` if the task may do one more operation; otherwise wakes the task and returns
/// `Pending` so that it yields.
#[inline]
pub(crate) fn poll_proceed(cx: &mut Context<'_>) -> Poll<()> {
    if cfg!(blitz_no_coop) {
        return Poll::Ready(());
    }
    REMAINING.with(|r| {
        if r.get() == 0 {
            cx.waker().wake_by_ref();
            Poll::Pending
        } else {
            Poll::Ready(())
        }
    })
}

/// Spends one unit: an operation completed.
#[inline]
pub(crate) fn spend() {
    if cfg!(blitz_no_coop) {
        return;
    }
    REMAINING.with(|r| {
        let n = r.get();
        if n != UNCONSTRAINED && n > 0 {
            r.set(n - 1);
        }
    })
}

#[cfg(all(test, not(loom), not(blitz_no_coop)))]
mod tests {
    use super::*;
    use std::task::Waker;

    #[test]
    fn budget_runs_out_and_resets() {
        let mut cx = Context::from_waker(Waker::noop());
        reset();
        for _ in 0..BUDGET {
            assert!(poll_proceed(&mut cx).is_ready());
            spend();
        }
        assert!(poll_proceed(&mut cx).is_pending());
        reset();
        assert!(poll_proceed(&mut cx).is_ready());
        unconstrained();
        for _ in 0..1000 {
            spend();
        }
        assert!(poll_proceed(&mut cx).is_ready());
    }

    #[test]
    fn save_restores_the_budget_on_drop() {
        let mut cx = Context::from_waker(Waker::noop());
        unconstrained();
        {
            let _saved = save();
            reset();
            for _ in 0..BUDGET {
                spend();
            }
            assert!(poll_proceed(&mut cx).is_pending());
        }
        for _ in 0..10 * BUDGET {
            spend();
        }
        assert!(poll_proceed(&mut cx).is_ready(), "the unlimited budget came back");
    }
}
