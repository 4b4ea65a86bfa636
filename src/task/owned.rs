//! The task list of one runtime: every idle task, so shutdown can reach tasks that sit
//! in no queue.
//!
//! A task parked on I/O, a timer or a channel is referenced only by wakers; no queue
//! holds it. To cancel such tasks when a runtime is dropped, a task is linked into this
//! list the first time a poll of it returns `Pending` (just before it goes idle), stays
//! there until its future is dropped, and the list holds one counted reference to it
//! (see `task::state`). [`OwnedTasks::shutdown_all`] closes the list, unlinks every task
//! and cancels it: the future is dropped right there if the task is idle, or by the
//! worker polling it when that poll ends.
//!
//! # Why link late
//!
//! Until its first `Pending` a task is always in a run queue or being polled, and
//! shutdown reaches both: it drains the queues (dropping a `Runnable` cancels its task)
//! and a poll in progress ends on a live worker. Many tasks finish in their first poll
//! (a spawned computation, a request handler that does not wait); those never take a
//! list lock. Linking at spawn cost four atomic operations per task (lock and unlock,
//! twice): spawn + join on the current-thread runtime went from 119 to ~100 ns
//! (`rtbench --bench spawn`, tokio-ct 255 ns in the same runs).
//!
//! The race this must survive: a task polled while `shutdown_all` runs. The poller links
//! before it gives up `RUNNING`, under the shard lock, and checks `closed` there. Either
//! the list was closed first (the poller then drops the future itself) or the task is in
//! the list when `shutdown_all` takes that shard, sees it running, and marks it
//! cancelled, which the poller then sees in `transition_to_idle`.
//!
//! The list is intrusive (the links live in the task header): linking and unlinking
//! allocate nothing and touch no reference count besides the list's own reference,
//! dropped together with the poller's in one operation when a task completes. (The
//! table before this held a waker per task: a clone and a drop, plus an `Arc` of the
//! shard in a guard inside the future: six atomic operations per task more.)
//!
//! # Shards
//!
//! The list is split into [`SHARDS`] lists, each behind its own mutex on its own cache
//! lines, and a thread spreads the tasks it spawns over them in turn (each thread starts
//! at a different shard). A task is unlinked from the shard it went into, often by
//! another worker (the task was stolen, or woken there). With one list and one lock,
//! spawn + join on two workers spent half its time in that lock
//! (`perf record -e cpu-clock` on `rtbench --bench spawn`); giving each thread a home
//! shard was not enough, because a stolen task's removal then always lands on the
//! spawner's busy shard. Spreading makes two workers meet on a lock about once in
//! [`SHARDS`] operations.
//!
//! Lock discipline: no waker is woken and no future is dropped while a shard lock is
//! held (a dropped future may spawn, or complete another task, and so take a shard lock).
//!
//! # Closing
//!
//! `shutdown_all` sets the list's `closed` flag, then each shard's under that shard's
//! lock. A spawn that sees the flag is refused (its future handed back, never polled); a
//! spawn that does not is queued, and a queue of a runtime that shuts down drops it. A
//! link holds its shard lock from the check of the shard's flag until the task is
//! linked, so no idle task slips past a shutdown.
//!
//! # Lifetime
//!
//! A task reaches its list through its owner (the scheduler's `Shared`, which holds the
//! list), and the owner is kept alive by the task's header until the task is freed. So
//! unlinking, which happens before the task's last reference can go, always finds the
//! list.

use std::future::Future;
use std::ptr::NonNull;

use std::sync::atomic::{AtomicBool, Ordering};

use super::raw::{self, Header, Runnable, NOT_LISTED};
use super::{JoinHandle, Owner};
use crate::loom::sync::Mutex;

/// Number of shards (a power of two).
#[cfg(not(loom))]
const SHARDS: usize = 16;
/// Under loom: fewer locks to explore.
#[cfg(loom)]
const SHARDS: usize = 2;

/// The task list.
pub(crate) struct OwnedTasks {
    shards: Box<[Shard]>,
    /// Set by `shutdown_all` before it closes the shards: new spawns are refused.
    closed: AtomicBool,
}

impl Default for OwnedTasks {
    fn default() -> OwnedTasks {
        OwnedTasks {
            shards: (0..SHARDS).map(|_| Shard { list: Mutex::new(List::default()) }).collect(),
            closed: AtomicBool::new(false),
        }
    }
}

impl std::fmt::Debug for OwnedTasks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OwnedTasks").field("shards", &self.shards.len()).finish()
    }
}

/// One list, alone on its cache lines.
#[repr(align(128))]
struct Shard {
    list: Mutex<List>,
}

#[derive(Default)]
struct List {
    head: Option<NonNull<Header>>,
    len: usize,
    closed: bool,
}

// SAFETY: the list holds pointers to tasks (which are `Send`); it is only reached under
// its shard's mutex.
unsafe impl Send for List {}

impl List {
    /// Links `ptr` at the head.
    ///
    /// # Safety
    ///
    /// `ptr` is a live task, not linked, whose links are guarded by this list's lock.
    unsafe fn push(&mut self, ptr: NonNull<Header>) {
        // SAFETY: by the contract; the old head is linked here, so alive.
        unsafe {
            let links = &mut *ptr.as_ref().links.get();
            links.prev = None;
            links.next = self.head;
            links.linked = true;
            if let Some(head) = self.head {
                (*head.as_ref().links.get()).prev = Some(ptr);
            }
        }
        self.head = Some(ptr);
        self.len += 1;
    }

    /// Unlinks `ptr` if it is linked; true if it was (the caller now owns the list's
    /// reference).
    ///
    /// # Safety
    ///
    /// `ptr` is a live task of this list's shard.
    unsafe fn remove(&mut self, ptr: NonNull<Header>) -> bool {
        // SAFETY: by the contract; linked neighbours are alive (they hold a list reference).
        unsafe {
            let links = &mut *ptr.as_ref().links.get();
            if !links.linked {
                return false;
            }
            let (prev, next) = (links.prev.take(), links.next.take());
            links.linked = false;
            match prev {
                Some(p) => (*p.as_ref().links.get()).next = next,
                None => self.head = next,
            }
            if let Some(n) = next {
                (*n.as_ref().links.get()).prev = prev;
            }
        }
        self.len -= 1;
        true
    }
}

/// Under loom every task goes into shard 0: the models must be deterministic across
/// iterations, and a process-wide cursor is not.
#[cfg(loom)]
fn next_shard() -> usize {
    0
}

/// The shard the next task spawned on this thread goes into.
#[cfg(not(loom))]
fn next_shard() -> usize {
    use std::cell::Cell;
    use std::sync::atomic::{AtomicUsize, Ordering};

    static NEXT: AtomicUsize = AtomicUsize::new(0);
    thread_local! {
        static CURSOR: Cell<usize> = const { Cell::new(usize::MAX) };
    }
    CURSOR.with(|cursor| {
        let mut shard = cursor.get();
        if shard == usize::MAX {
            shard = NEXT.fetch_add(7, Ordering::Relaxed);
        }
        cursor.set(shard.wrapping_add(1));
        shard % SHARDS
    })
}

impl OwnedTasks {
    /// Creates the task for `future`, owned by `owner` (whose list this must be); gives
    /// `future` back when the list is closed (the caller drops it outside its own locks
    /// and borrows). The task is linked later, when it first goes idle.
    pub(crate) fn bind<F>(&self, future: F, owner: Owner) -> Result<(Runnable, JoinHandle<F::Output>), F>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        if self.closed.load(Ordering::Acquire) {
            return Err(future);
        }
        let (runnable, raw) = raw::new_task(future, owner);
        Ok((runnable, JoinHandle::new(raw)))
    }

    /// Number of listed tasks.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.shards.iter().map(|s| crate::loom::lock(&s.list).len).sum()
    }

    /// Refuses new tasks from now on and cancels every task in the list (outside the
    /// locks): idle ones are dropped here, running ones by their poller.
    pub(crate) fn shutdown_all(&self) {
        self.closed.store(true, Ordering::Release);
        for shard in self.shards.iter() {
            let mut tasks = Vec::new();
            let mut list = crate::loom::lock(&shard.list);
            list.closed = true;
            while let Some(ptr) = list.head {
                // SAFETY: `ptr` is linked in this shard, so alive.
                unsafe { list.remove(ptr) };
                tasks.push(ptr);
            }
            drop(list);
            for ptr in tasks {
                // SAFETY: unlinking gave this function the list's reference.
                unsafe { raw::shutdown(ptr) };
            }
        }
    }
}

/// Links a task that is about to go idle, unless it is in the list already (or was, and
/// shutdown took it out). Returns false if the list is closed: the caller, which owns the
/// future, must cancel the task.
///
/// # Safety
///
/// `ptr` is a live task whose future the caller owns (`RUNNING`).
#[inline]
pub(super) unsafe fn link(ptr: NonNull<Header>) -> bool {
    // SAFETY: the caller's reference keeps the header alive.
    if unsafe { ptr.as_ref() }.shard.load(Ordering::Relaxed) != NOT_LISTED {
        // Every poll after the first that returns `Pending`: one load inline, where the
        // call with its register saves cost 13 instructions per round trip on the
        // 1-connection echo (callgrind).
        return true;
    }
    // SAFETY: as above.
    unsafe { link_slow(ptr) }
}

/// [`link`] for a task not in the list yet.
///
/// # Safety
///
/// As for [`link`].
#[inline(never)]
unsafe fn link_slow(ptr: NonNull<Header>) -> bool {
    // SAFETY: the caller's reference keeps the header (and its owner, and so the list)
    // alive.
    let h = unsafe { ptr.as_ref() };
    let Some(owned) = h.owner.owned() else { return true };
    let index = next_shard();
    let mut list = crate::loom::lock(&owned.shards[index].list);
    if list.closed {
        return false;
    }
    h.state.ref_inc();
    h.shard.store(index as u32, Ordering::Relaxed);
    // SAFETY: live task, never linked (its shard was unset), owned by this list.
    unsafe { list.push(ptr) };
    true
}

/// Unlinks a task whose future was dropped; true if it was linked (the caller then drops
/// the list's reference too).
///
/// # Safety
///
/// `ptr` is a live task whose future the caller owned (`RUNNING`).
pub(super) unsafe fn release(ptr: NonNull<Header>) -> bool {
    // SAFETY: the caller's reference keeps the header (and its owner, and so the list)
    // alive.
    let h = unsafe { ptr.as_ref() };
    let index = h.shard.load(Ordering::Relaxed);
    if index == NOT_LISTED {
        return false;
    }
    let Some(owned) = h.owner.owned() else { return false };
    let mut list = crate::loom::lock(&owned.shards[index as usize].list);
    // SAFETY: the task went into this shard at `link`.
    unsafe { list.remove(ptr) }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use crate::task::testing::TestOwner;

    /// A future pending on its first poll, ready on the second.
    fn once_pending(v: usize) -> impl Future<Output = usize> + Send {
        let mut polled = false;
        std::future::poll_fn(move |cx| {
            if polled {
                return std::task::Poll::Ready(v);
            }
            polled = true;
            cx.waker().wake_by_ref();
            std::task::Poll::Pending
        })
    }

    #[test]
    fn tasks_are_listed_from_their_first_pending_until_their_future_is_dropped() {
        let t = TestOwner::new();
        let (r1, h1) = t.owned.bind(async { 1 }, t.owner()).ok().expect("open list");
        let (r2, h2) = t.owned.bind(std::future::pending::<()>(), t.owner()).expect("open list");
        assert_eq!(t.owned.len(), 0, "not listed while queued");
        r1.run();
        assert_eq!(t.owned.len(), 0, "a task done in its first poll is never listed");
        r2.run();
        assert_eq!(t.owned.len(), 1, "an idle task is listed");
        h2.abort();
        t.take().into_iter().for_each(Runnable::run);
        assert_eq!(t.owned.len(), 0, "cancelling unlinks it");
        drop((h1, h2));
        assert_eq!(std::sync::Arc::strong_count(&t), 1, "both freed");
    }

    #[test]
    fn unlinking_in_any_order_keeps_the_lists_consistent() {
        let t = TestOwner::new();
        let mut tasks: Vec<_> = (0..5 * SHARDS)
            .map(|i| {
                let (r, h) = t.owned.bind(once_pending(i), t.owner()).ok().expect("open list");
                r.run();
                h
            })
            .collect();
        let mut queued = t.take();
        assert_eq!(t.owned.len(), 5 * SHARDS);
        // Middle, head and tail positions of every shard's list.
        let mut k = 0;
        while !queued.is_empty() {
            k = (k + 7) % queued.len();
            queued.swap_remove(k).run();
            assert_eq!(t.owned.len(), queued.len());
        }
        tasks.clear();
        assert_eq!(std::sync::Arc::strong_count(&t), 1);
    }

    #[test]
    fn closed_list_refuses_tasks_and_cancels_idle_and_late_ones() {
        let t = TestOwner::new();
        let (r1, mut h1) = t.owned.bind(std::future::pending::<()>(), t.owner()).expect("open list");
        r1.run(); // idle now, held only by the list and the handle
        let (r2, mut h2) = t.owned.bind(std::future::pending::<()>(), t.owner()).expect("open list");
        t.owned.shutdown_all();
        assert_eq!(t.owned.len(), 0);
        assert!(t.owned.bind(async {}, t.owner()).is_err(), "refused after shutdown");
        // A task first polled after the shutdown finds the list closed and cancels itself.
        r2.run();
        let waker = std::task::Waker::noop();
        for h in [&mut h1, &mut h2] {
            let out = std::pin::Pin::new(h).poll(&mut std::task::Context::from_waker(waker));
            assert!(matches!(out, std::task::Poll::Ready(Err(e)) if e.is_cancelled()));
        }
        drop((h1, h2));
        assert_eq!(std::sync::Arc::strong_count(&t), 1, "both freed");
    }
}
