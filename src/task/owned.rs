//! The task table of one runtime: a waker for every live task, so shutdown can reach
//! tasks that sit in no queue.
//!
//! A task parked on I/O, a timer or a channel is referenced only by wakers; no queue
//! holds it. To cancel such tasks when a runtime is dropped, the runtime keeps one waker
//! per task here. [`OwnedTasks::close`] refuses new tasks and returns every waker; waking
//! them makes each task scheduled, and a closed scheduler drops the `Runnable`, which
//! drops the future.
//!
//! The entry is removed by [`OwnedGuard`], which lives inside the task's future and so
//! is dropped exactly when the future is (completion, abort or shutdown).
//!
//! # Shards
//!
//! The table is split into [`SHARDS`] slabs, each behind its own mutex on its own cache
//! lines, and a thread spreads the tasks it spawns over them in turn (each thread starts
//! at a different shard). A task's entry is removed from the shard it went into, often
//! by another worker (the task was stolen, or woken there). With one table and one lock,
//! spawn + join on two workers spent half its time in that lock
//! (`perf record -e cpu-clock` on `rtbench --bench spawn`); giving each thread a home
//! shard was not enough, because a stolen task's removal then always lands on the
//! spawner's busy shard. Spreading makes two workers meet on a lock about once in
//! [`SHARDS`] operations. The guard holds an `Arc` of its shard, not of the whole table,
//! so the reference count it touches is on the shard's cache line, not one line shared by
//! every task of the runtime.
//!
//! Lock discipline: no waker is woken and no future is dropped while a shard lock is
//! held (a dropped future removes its own entry and would deadlock).
//!
//! # Closing
//!
//! [`OwnedTasks::close`] sets each shard's `closed` flag under that shard's lock. A spawn
//! holds its shard lock from the check of the flag until the new task's waker is stored.
//! So a task is either refused (its future handed back, never polled) or its waker is in
//! the table before that shard is closed and is among the wakers `close` returns: no task
//! slips past a shutdown.

use std::cell::Cell;
use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::Waker;

use super::{JoinHandle, Runnable, TaskMeta};

/// Number of shards (a power of two).
const SHARDS: usize = 16;

/// The task table.
#[derive(Debug)]
pub(crate) struct OwnedTasks {
    shards: Box<[Arc<Shard>]>,
}

impl Default for OwnedTasks {
    fn default() -> OwnedTasks {
        OwnedTasks { shards: (0..SHARDS).map(|_| Arc::new(Shard::default())).collect() }
    }
}

/// One slab of the table, alone on its cache lines.
#[derive(Debug, Default)]
#[repr(align(128))]
struct Shard {
    inner: Mutex<Table>,
}

impl Shard {
    fn lock(&self) -> MutexGuard<'_, Table> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn remove(&self, slot: usize) {
        let waker = self.lock().release(slot);
        // Dropped outside the lock: dropping a waker may free the task.
        drop(waker);
    }
}

#[derive(Debug, Default)]
struct Table {
    /// Slot `i` holds the waker of the task in slot `i`, or the next free slot.
    slots: Vec<Slot>,
    /// Head of the free list.
    free: Option<usize>,
    len: usize,
    closed: bool,
}

#[derive(Debug)]
enum Slot {
    Task(Waker),
    Reserved,
    Free(Option<usize>),
}

/// The shard the next task spawned on this thread goes into.
fn next_shard() -> usize {
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
    /// Creates the task for `future` and records it; gives `future` back when the table
    /// is closed (the caller drops it outside its own locks and borrows).
    ///
    /// The returned handle holds a waker of the task, for [`JoinHandle::abort`].
    pub(crate) fn bind<F, S>(
        &self,
        future: F,
        meta: TaskMeta,
        schedule: S,
    ) -> Result<(Runnable, JoinHandle<F::Output>), F>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
        S: Fn(Runnable, async_task::ScheduleInfo) + Send + Sync + 'static,
    {
        let shard = &self.shards[next_shard()];
        // One critical section: check `closed`, reserve the slot, create the task (an
        // allocation; no user code runs) and store its waker. So a task is either refused
        // or in the table before its shard can close.
        let mut table = shard.lock();
        if table.closed {
            return Err(future);
        }
        let slot = table.reserve();
        let guard = OwnedGuard { shard: shard.clone(), slot };
        let (runnable, task) = async_task::Builder::new()
            .metadata(meta)
            .spawn(|_| super::wrap(future, guard), async_task::WithInfo(schedule));
        let waker = runnable.waker();
        table.slots[slot] = Slot::Task(waker.clone());
        drop(table);
        Ok((runnable, JoinHandle::new(task, Some(waker))))
    }

    /// Number of live tasks.
    #[cfg(all(test, not(loom)))]
    pub(crate) fn len(&self) -> usize {
        self.shards.iter().map(|s| s.lock().len).sum()
    }

    /// Refuses new tasks from now on and returns the wakers of all live tasks.
    ///
    /// The caller wakes them after this returns (outside the locks).
    pub(crate) fn close(&self) -> Vec<Waker> {
        let mut wakers = Vec::new();
        for shard in self.shards.iter() {
            let mut table = shard.lock();
            table.closed = true;
            wakers.extend(table.slots.iter().filter_map(|s| match s {
                Slot::Task(w) => Some(w.clone()),
                _ => None,
            }));
        }
        wakers
    }
}

impl Table {
    fn reserve(&mut self) -> usize {
        self.len += 1;
        match self.free {
            Some(key) => {
                self.free = match self.slots[key] {
                    Slot::Free(next) => next,
                    _ => None,
                };
                self.slots[key] = Slot::Reserved;
                key
            }
            None => {
                self.slots.push(Slot::Reserved);
                self.slots.len() - 1
            }
        }
    }

    fn release(&mut self, key: usize) -> Option<Waker> {
        let slot = self.slots.get_mut(key)?;
        if matches!(slot, Slot::Free(_)) {
            return None;
        }
        let old = std::mem::replace(slot, Slot::Free(self.free));
        self.free = Some(key);
        self.len -= 1;
        match old {
            Slot::Task(w) => Some(w),
            _ => None,
        }
    }
}

/// Removes a task's table entry when the task's future is dropped.
#[derive(Debug)]
pub(crate) struct OwnedGuard {
    shard: Arc<Shard>,
    slot: usize,
}

impl Drop for OwnedGuard {
    fn drop(&mut self) {
        self.shard.remove(self.slot);
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn entries_are_counted_and_removed() {
        let owned = OwnedTasks::default();
        let (r1, h1) = owned.bind(async { 1 }, TaskMeta::default(), |_r, _i| {}).ok().expect("open table");
        let (r2, h2) = owned.bind(async { 2 }, TaskMeta::default(), |_r, _i| {}).ok().expect("open table");
        assert_eq!(owned.len(), 2);
        r1.run();
        assert_eq!(owned.len(), 1, "completing a task removes its entry");
        drop(h1);
        drop(r2);
        assert_eq!(owned.len(), 0, "dropping a runnable (cancel) removes its entry");
        drop(h2);
    }

    #[test]
    fn freed_slots_are_reused() {
        let owned = OwnedTasks::default();
        for i in 0..4 * SHARDS {
            let (r, _h) = owned.bind(async move { i }, TaskMeta::default(), |_r, _i| {}).ok().expect("open table");
            r.run();
        }
        let slots: usize = owned.shards.iter().map(|s| s.lock().slots.len()).sum();
        assert_eq!(slots, SHARDS, "one task at a time needs one slot per shard, reused");
        assert_eq!(owned.len(), 0);
    }

    #[test]
    fn closed_table_refuses_tasks() {
        let owned = OwnedTasks::default();
        let (r1, _h1) = owned.bind(std::future::pending::<()>(), TaskMeta::default(), |_r, _i| {}).expect("open table");
        let wakers = owned.close();
        assert_eq!(wakers.len(), 1);
        assert!(owned.bind(async {}, TaskMeta::default(), |_r, _i| {}).is_err());
        drop(r1);
        assert_eq!(owned.len(), 0);
    }
}
