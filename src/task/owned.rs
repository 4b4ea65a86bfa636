//! The task list of one runtime: every live task, so shutdown can reach tasks that sit
//! in no queue.
//!
//! A task parked on I/O, a timer or a channel is referenced only by wakers; no queue
//! holds it. To cancel such tasks when a runtime is dropped, each task is linked into
//! this list from spawn until its future is dropped, and the list holds one counted
//! reference to it (see `task::state`). [`OwnedTasks::shutdown_all`] refuses new tasks,
//! unlinks every task and cancels it: the future is dropped right there if the task is
//! idle, or by the worker polling it when that poll ends.
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
//! `shutdown_all` sets each shard's `closed` flag under that shard's lock. A spawn holds
//! its shard lock from the check of the flag until the new task is linked. So a task is
//! either refused (its future handed back, never polled) or linked before that shard is
//! closed and is among the tasks `shutdown_all` cancels: no task slips past a shutdown.
//!
//! # Lifetime
//!
//! A task reaches its list through its owner (the scheduler's `Shared`, which holds the
//! list), and the owner is kept alive by the task's header until the task is freed. So
//! unlinking, which happens before the task's last reference can go, always finds the
//! list.

use std::future::Future;
use std::ptr::NonNull;

use super::raw::{self, Header, RawJoin, Runnable};
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
}

impl Default for OwnedTasks {
    fn default() -> OwnedTasks {
        OwnedTasks { shards: (0..SHARDS).map(|_| Shard { list: Mutex::new(List::default()) }).collect() }
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
    /// Creates the task for `future`, owned by `owner` (whose list this must be), and
    /// links it; gives `future` back when the list is closed (the caller drops it outside
    /// its own locks and borrows).
    pub(crate) fn bind<F>(&self, future: F, owner: Owner) -> Result<(Runnable, JoinHandle<F::Output>), F>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        let index = next_shard();
        // One critical section: check `closed`, create the task (an allocation; no user
        // code runs) and link it. So a task is either refused or linked before its shard
        // can close.
        let mut list = crate::loom::lock(&self.shards[index].list);
        if list.closed {
            return Err(future);
        }
        // Three references: the `Runnable`, the handle, this list.
        let ptr = raw::allocate(future, owner, index as u32, 3);
        // SAFETY: fresh task, not linked; its shard is this one.
        unsafe { list.push(ptr) };
        drop(list);
        // SAFETY: fresh task; each wrapper takes the reference counted for it.
        unsafe { Ok((Runnable::from_new(ptr), JoinHandle::new(RawJoin::from_new(ptr)))) }
    }

    /// Number of live tasks.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.shards.iter().map(|s| crate::loom::lock(&s.list).len).sum()
    }

    /// Refuses new tasks from now on and cancels every task in the list (outside the
    /// locks): idle ones are dropped here, running ones by their poller.
    pub(crate) fn shutdown_all(&self) {
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

/// Unlinks a task whose future was dropped; true if it was linked (the caller then drops
/// the list's reference too).
///
/// # Safety
///
/// `ptr` is a live task.
pub(super) unsafe fn release(ptr: NonNull<Header>) -> bool {
    // SAFETY: the caller's reference keeps the header (and its owner, and so the list)
    // alive.
    let h = unsafe { ptr.as_ref() };
    let Some(owned) = h.owner.owned() else { return false };
    let mut list = crate::loom::lock(&owned.shards[h.shard as usize].list);
    // SAFETY: the task went into this shard at `bind`.
    unsafe { list.remove(ptr) }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use crate::task::testing::TestOwner;

    #[test]
    fn tasks_are_listed_until_their_future_is_dropped() {
        let t = TestOwner::new();
        let (r1, h1) = t.owned.bind(async { 1 }, t.owner()).ok().expect("open list");
        let (r2, h2) = t.owned.bind(async { 2 }, t.owner()).ok().expect("open list");
        assert_eq!(t.owned.len(), 2);
        r1.run();
        assert_eq!(t.owned.len(), 1, "completing a task unlinks it");
        drop(h1);
        drop(r2);
        assert_eq!(t.owned.len(), 0, "dropping a runnable (cancel) unlinks it");
        drop(h2);
    }

    #[test]
    fn unlinking_in_any_order_keeps_the_lists_consistent() {
        let t = TestOwner::new();
        let mut tasks: Vec<_> =
            (0..5 * SHARDS).map(|i| t.owned.bind(async move { i }, t.owner()).ok().expect("open list")).collect();
        assert_eq!(t.owned.len(), 5 * SHARDS);
        // Middle, head and tail positions of every shard's list.
        let mut k = 0;
        while !tasks.is_empty() {
            k = (k + 7) % tasks.len();
            let (r, h) = tasks.swap_remove(k);
            r.run();
            drop(h);
            assert_eq!(t.owned.len(), tasks.len());
        }
    }

    #[test]
    fn closed_list_refuses_tasks_and_cancels_idle_ones() {
        let t = TestOwner::new();
        let (r1, mut h1) = t.owned.bind(std::future::pending::<()>(), t.owner()).expect("open list");
        r1.run(); // idle now, held only by the list and the handle
        t.owned.shutdown_all();
        assert_eq!(t.owned.len(), 0);
        assert!(t.owned.bind(async {}, t.owner()).is_err());
        let waker = std::task::Waker::noop();
        let out = std::pin::Pin::new(&mut h1).poll(&mut std::task::Context::from_waker(waker));
        assert!(matches!(out, std::task::Poll::Ready(Err(e)) if e.is_cancelled()));
    }
}
