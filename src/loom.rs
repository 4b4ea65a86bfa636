//! The std/loom switch for the hand-written concurrent state machines.
//!
//! Normally [`sync`] re-exports `std::sync` (zero cost). Under `RUSTFLAGS="--cfg loom"`
//! it re-exports the [`loom`](https://docs.rs/loom) model-checked equivalents, so the
//! `#[cfg(all(test, loom))]` models in `runtime/park.rs` and
//! `runtime/io/scheduled_io.rs` explore every interleaving of the real code.
//!
//! [`cell::UnsafeCell`] is switched the same way: loom then reports an access to a cell
//! that the atomics around it fail to order as a data race.
//!
//! Only the parker and the readiness core use this module; other modules keep using
//! `std::sync` directly (they compile under `cfg(loom)` but are not instrumented). Loom
//! types must be created inside `loom::model`, so under `cfg(loom)` only the loom models
//! can run (`cargo test --lib loom`), not the runtime itself.
//!
//! The helpers ([`lock`], [`wait`], [`wait_timeout`]) hide the one API difference that
//! matters: poisoning. A poisoned std lock is recovered (the state it guards stays
//! consistent across a panic in a waker), loom never poisons.
//!
//! Run the models with:
//!
//! ```text
//! RUSTFLAGS="--cfg loom" LOOM_MAX_PREEMPTIONS=3 CARGO_TARGET_DIR=target/loom \
//!     cargo test --release --lib loom
//! ```

#[cfg(not(loom))]
#[allow(unused_imports)]
pub(crate) mod sync {
    pub(crate) use std::sync::{Arc, Condvar, Mutex, MutexGuard};

    pub(crate) mod atomic {
        pub(crate) use std::sync::atomic::{fence, AtomicBool, AtomicU64, AtomicUsize, Ordering};
    }
}

#[cfg(loom)]
#[allow(unused_imports)]
pub(crate) mod sync {
    pub(crate) use loom::sync::{Arc, Condvar, Mutex, MutexGuard};

    pub(crate) mod atomic {
        pub(crate) use loom::sync::atomic::{fence, AtomicBool, AtomicU64, AtomicUsize, Ordering};
    }
}

/// `UnsafeCell` with loom's closure API (`with`/`with_mut`), so that under loom every
/// access to the cell is checked for races against the atomics that guard it.
#[cfg(not(loom))]
pub(crate) mod cell {
    /// A plain `std::cell::UnsafeCell` behind loom's API.
    #[derive(Debug, Default)]
    pub(crate) struct UnsafeCell<T>(std::cell::UnsafeCell<T>);

    impl<T> UnsafeCell<T> {
        pub(crate) const fn new(value: T) -> Self {
            UnsafeCell(std::cell::UnsafeCell::new(value))
        }

        /// Calls `f` with a pointer to the contents, for writing.
        #[inline(always)]
        pub(crate) fn with_mut<R>(&self, f: impl FnOnce(*mut T) -> R) -> R {
            f(self.0.get())
        }
    }
}

#[cfg(loom)]
pub(crate) mod cell {
    pub(crate) use loom::cell::UnsafeCell;
}

use std::sync::PoisonError;
use std::time::Duration;

use self::sync::{Condvar, Mutex, MutexGuard};

/// Locks `mutex`, recovering the guard if a panicking thread poisoned it.
pub(crate) fn lock<T: ?Sized>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Waits on `condvar`, recovering the guard on poisoning. May wake spuriously.
pub(crate) fn wait<'a, T>(condvar: &Condvar, guard: MutexGuard<'a, T>) -> MutexGuard<'a, T> {
    condvar.wait(guard).unwrap_or_else(PoisonError::into_inner)
}

/// Waits on `condvar` for at most `dur`, recovering the guard on poisoning. May wake
/// spuriously. (Under loom the wait never times out: only a notification ends it.)
pub(crate) fn wait_timeout<'a, T>(condvar: &Condvar, guard: MutexGuard<'a, T>, dur: Duration) -> MutexGuard<'a, T> {
    match condvar.wait_timeout(guard, dur) {
        Ok((guard, _)) => guard,
        Err(poisoned) => poisoned.into_inner().0,
    }
}

/// Runs a loom model and prints how many interleavings loom explored and how long it
/// took (`cargo test ... -- --nocapture` shows it).
#[cfg(all(test, loom))]
pub(crate) fn model(name: &str, f: impl Fn() + Sync + Send + 'static) {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let iterations = std::sync::Arc::new(AtomicUsize::new(0));
    let counter = iterations.clone();
    let start = std::time::Instant::now();
    loom::model(move || {
        counter.fetch_add(1, Ordering::Relaxed);
        f();
    });
    println!("loom model {name}: {} interleavings in {:?}", iterations.load(Ordering::Relaxed), start.elapsed());
}
