//! [`Fifo`]: the current-thread scheduler's local run queue, a growable ring.
//!
//! `VecDeque` would do, but its `push_back` stays out of line and, with `pop_front`, costs
//! about 34 instructions per task on the 1-connection echo (callgrind); this ring is a
//! power-of-two slice of `Option<Runnable>` (the same size as `Runnable`, a non-null
//! pointer) indexed by a mask: push and pop are a handful of instructions each, inline.
//! It is safe code: an empty slot is `None`, and growing copies the tasks in order into
//! a slice twice as long.

use crate::task::Runnable;

/// First capacity, on the first push.
const INITIAL: usize = 64;

/// A first-in first-out queue of tasks.
#[derive(Debug, Default)]
pub(crate) struct Fifo {
    /// Slots; the length is zero or a power of two.
    buf: Box<[Option<Runnable>]>,
    /// Index of the oldest task.
    head: usize,
    /// Number of tasks.
    len: usize,
}

impl Fifo {
    /// Appends a task.
    #[inline]
    pub(crate) fn push(&mut self, task: Runnable) {
        if self.len == self.buf.len() {
            self.grow();
        }
        let mask = self.buf.len() - 1;
        let old = self.buf[(self.head + self.len) & mask].replace(task);
        debug_assert!(old.is_none(), "a slot past the tail holds a task");
        // `old` is `None` (the slot is past the tail): skip its drop glue.
        std::mem::forget(old);
        self.len += 1;
    }

    /// Takes the oldest task.
    #[inline]
    pub(crate) fn pop(&mut self) -> Option<Runnable> {
        if self.len == 0 {
            return None;
        }
        let task = self.buf[self.head].take();
        self.head = (self.head + 1) & (self.buf.len() - 1);
        self.len -= 1;
        task
    }

    /// Number of queued tasks.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Whether no task is queued.
    #[inline]
    pub(crate) fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Doubles the capacity (or allocates the first), keeping the order.
    #[cold]
    #[inline(never)]
    fn grow(&mut self) {
        let cap = (self.buf.len() * 2).max(INITIAL);
        let mut buf: Vec<Option<Runnable>> = Vec::with_capacity(cap);
        buf.extend(std::iter::from_fn(|| self.pop().map(Some)));
        let len = buf.len();
        buf.resize_with(cap, || None);
        *self = Fifo { buf: buf.into_boxed_slice(), head: 0, len };
    }
}

impl Iterator for Fifo {
    type Item = Runnable;

    /// Drains the queue in order.
    fn next(&mut self) -> Option<Runnable> {
        self.pop()
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.len, Some(self.len))
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use crate::task::testing::TestOwner;

    /// Pushes and pops across several wrap-arounds and two growths, against a
    /// `VecDeque` doing the same: same tasks, same order, same length throughout.
    #[test]
    fn keeps_fifo_order_across_wraps_and_growth() {
        let owner = TestOwner::new();
        let mut handles = Vec::new();
        let mut q = Fifo::default();
        let mut model = std::collections::VecDeque::new();
        // Net growth of one task per step up to 3 × INITIAL, with pops in between so
        // that the head wraps before each growth.
        for step in 0..(6 * INITIAL) {
            for _ in 0..2 {
                let (r, h) = owner.owned.bind(std::future::pending::<()>(), owner.owner()).expect("open list");
                handles.push(h);
                model.push_back(r.addr());
                q.push(r);
            }
            if step % 2 == 0 {
                for _ in 0..3 {
                    assert_eq!(q.pop().map(|r| r.addr()), model.pop_front());
                }
            }
            assert_eq!(q.len(), model.len());
            assert_eq!(q.is_empty(), model.is_empty());
        }
        assert!(q.buf.len() >= 2 * INITIAL && q.buf.len().is_power_of_two(), "grew: {}", q.buf.len());
        let rest: Vec<usize> = q.by_ref().map(|r| r.addr()).collect();
        assert_eq!(rest, Vec::from(model));
        assert!(q.pop().is_none());
        owner.owned.shutdown_all();
        drop(handles);
    }
}
