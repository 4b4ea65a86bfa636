//! The task table of one runtime: a waker for every live task, so shutdown can reach
//! tasks that sit in no queue.
//!
//! A task parked on I/O, a timer or a channel is referenced only by wakers; no queue
//! holds it. To cancel such tasks when a runtime is dropped, the runtime keeps one waker
//! per task here (a slab: O(1) insert and remove, keys reused). [`OwnedTasks::close`]
//! refuses new tasks and returns every waker; waking them makes each task scheduled,
//! and a closed scheduler drops the `Runnable`, which drops the future.
//!
//! The entry is removed by [`OwnedGuard`], which lives inside the task's future and so
//! is dropped exactly when the future is (completion, abort or shutdown).
//!
//! Lock discipline: no waker is woken and no future is dropped while the table lock is
//! held (a dropped future removes its own entry and would deadlock).

use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::Waker;

use super::{JoinHandle, Runnable, TaskMeta};

/// The task table.
#[derive(Debug, Default)]
pub(crate) struct OwnedTasks {
    inner: Mutex<Table>,
}

#[derive(Debug, Default)]
struct Table {
    /// Slot `i` holds the waker of the task with key `i`, or the next free key.
    slots: Vec<Slot>,
    /// Head of the free list (`usize::MAX` when empty).
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

impl OwnedTasks {
    fn lock(&self) -> MutexGuard<'_, Table> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Creates the task for `future` and records it; `None` when the table is closed.
    pub(crate) fn bind<F, S>(self: &Arc<Self>, future: F, schedule: S) -> Option<(Runnable, JoinHandle<F::Output>)>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
        S: Fn(Runnable, async_task::ScheduleInfo) + Send + Sync + 'static,
    {
        let key = {
            let mut table = self.lock();
            if table.closed {
                return None;
            }
            table.reserve()
        };
        let guard = OwnedGuard { owned: self.clone(), key };
        let (runnable, task) = async_task::Builder::new()
            .metadata(TaskMeta::default())
            .spawn(|_| super::wrap(future, guard), async_task::WithInfo(schedule));
        let waker = runnable.waker();
        let mut table = self.lock();
        if table.closed {
            // Closed between the two locks: give the task up. Dropping the runnable drops
            // the future and with it the guard, which frees the reserved key.
            drop(table);
            drop(runnable);
            return Some((dummy_runnable(), JoinHandle::new(task, self.clone(), key)));
        }
        table.slots[key] = Slot::Task(waker);
        Some((runnable, JoinHandle::new(task, self.clone(), key)))
    }

    /// A clone of the waker of task `key`, if it is still live.
    pub(crate) fn waker(&self, key: usize) -> Option<Waker> {
        match self.lock().slots.get(key) {
            Some(Slot::Task(w)) => Some(w.clone()),
            _ => None,
        }
    }

    /// Number of live tasks.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.lock().len
    }

    /// Refuses new tasks from now on and returns the wakers of all live tasks.
    ///
    /// The caller wakes them after this returns (outside the lock).
    pub(crate) fn close(&self) -> Vec<Waker> {
        let mut table = self.lock();
        table.closed = true;
        table
            .slots
            .iter()
            .filter_map(|s| match s {
                Slot::Task(w) => Some(w.clone()),
                _ => None,
            })
            .collect()
    }

    fn remove(&self, key: usize) {
        let waker = {
            let mut table = self.lock();
            table.release(key)
        };
        // Dropped outside the lock: dropping a waker may free the task.
        drop(waker);
    }
}

/// A runnable for a task that was never bound: it completes at once with no effect.
fn dummy_runnable() -> Runnable {
    let (runnable, task) =
        async_task::Builder::new().metadata(TaskMeta::default()).spawn(|_| async {}, |_r: Runnable| {});
    task.detach();
    runnable
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
    owned: Arc<OwnedTasks>,
    key: usize,
}

impl Drop for OwnedGuard {
    fn drop(&mut self) {
        self.owned.remove(self.key);
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn keys_are_reused_and_counted() {
        let owned = Arc::new(OwnedTasks::default());
        let (r1, h1) = owned.bind(async { 1 }, |_r, _i| {}).expect("open table");
        let (r2, h2) = owned.bind(async { 2 }, |_r, _i| {}).expect("open table");
        assert_eq!(owned.len(), 2);
        r1.run();
        assert_eq!(owned.len(), 1, "completing a task removes its entry");
        drop(h1);
        drop(r2);
        assert_eq!(owned.len(), 0, "dropping a runnable (cancel) removes its entry");
        drop(h2);
        let (r3, _h3) = owned.bind(async { 3 }, |_r, _i| {}).expect("open table");
        assert_eq!(owned.lock().slots.len(), 2, "freed keys are reused");
        drop(r3);
    }

    #[test]
    fn closed_table_refuses_tasks() {
        let owned = Arc::new(OwnedTasks::default());
        let (r1, _h1) = owned.bind(std::future::pending::<()>(), |_r, _i| {}).expect("open table");
        let wakers = owned.close();
        assert_eq!(wakers.len(), 1);
        assert!(owned.bind(async {}, |_r, _i| {}).is_none());
        drop(r1);
        assert_eq!(owned.len(), 0);
    }
}
