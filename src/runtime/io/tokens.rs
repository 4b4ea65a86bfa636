//! [`TokenTable`]: the map from mio tokens to registrations, safe against stale events.
//!
//! A token packs a slot index (low half of the word) with the slot's generation (high
//! half). Releasing a slot bumps its generation before the index can be reused, so a
//! token harvested by `epoll_wait` before its socket was deregistered no longer matches
//! anything: [`Table::get`] returns `None` for it, and the event is dropped. An event can
//! therefore never reach a freed registration, nor a new registration that reuses the
//! slot (the bug class of mio's RUSTSEC-2024-0019). The table holds `Arc`s, so a
//! registration found under the lock stays alive while its event is delivered, even if
//! it is released meanwhile.
//!
//! # The turning thread's copy: [`TokenCache`]
//!
//! Looking a token up under the table's lock costs a lock and an unlock (two locked
//! instructions) on the path from `epoll_wait` to the woken task. So the driver's core
//! keeps a [`TokenCache`]: for each slot index, the full token and the value it had when
//! the core last looked it up under the lock. A hit needs no lock; a miss (an index not
//! cached, or a token with another generation) looks the token up in the table as
//! above and caches the answer.
//!
//! Invariant: a cache entry `(token, value)` means that `value` was registered under
//! exactly `token`. It holds because entries are only copied from the table and the
//! token includes the generation. A stale event then reaches, at worst, the registration
//! it was harvested for, which the table allows too (it is still alive: the cache holds
//! an `Arc`), and never a newer registration of the same slot, whose token differs.
//!
//! What the cache must not do is keep released values alive for long: a registration can
//! hold a task's waker. [`TokenTable::release`] records the index under the lock and sets
//! a flag; each turn reads the flag (a plain load) and, when set, drops the cached copies
//! of released indices ([`TokenCache::forget_released`]). A released value thus lives
//! until the next turn at most, as a deregistered source does in tokio's driver.
//! Deregistration also drops the socket's stored wakers (`ScheduledIo::retire`), so a
//! cached value never holds a task: a runtime whose tasks were cancelled right before
//! its drop never turns again, and driver → cache → waker → task → runtime → driver
//! would otherwise be a cycle that leaks the runtime (`tests/churn.rs`'s
//! `runtime_churn_200` fails without `retire`).
//!
//! The lock is `crate::loom`'s: the `loom` models at the bottom race a driver turn that
//! looks a token up (in the table, and through the cache) against a deregistration and a
//! re-registration reusing the slot.

use std::io;
use std::sync::Arc;

use crate::loom::sync::atomic::{AtomicBool, Ordering::Relaxed};
use crate::loom::sync::{Mutex, MutexGuard};

const INDEX_BITS: u32 = usize::BITS / 2;
const INDEX_MASK: usize = (1 << INDEX_BITS) - 1;

/// Slab of registrations addressed by generation-checked tokens.
#[derive(Debug)]
pub(crate) struct TokenTable<T> {
    inner: Mutex<Slab<T>>,
    /// Whether `released` is non-empty. Written under the lock; read without it as a
    /// hint by [`TokenCache::forget_released`].
    has_released: AtomicBool,
}

#[derive(Debug)]
pub(crate) struct Slab<T> {
    entries: Vec<Entry<T>>,
    free: Vec<usize>,
    /// Indices released since the cache last looked (may repeat).
    released: Vec<usize>,
}

#[derive(Debug)]
struct Entry<T> {
    generation: usize,
    value: Option<Arc<T>>,
}

/// The locked table, for looking up many tokens under one lock (a driver turn).
pub(crate) struct Table<'a, T> {
    guard: MutexGuard<'a, Slab<T>>,
}

fn split(token: usize) -> (usize, usize) {
    (token & INDEX_MASK, token >> INDEX_BITS)
}

impl<T> TokenTable<T> {
    pub(crate) fn new() -> TokenTable<T> {
        TokenTable {
            inner: Mutex::new(Slab { entries: Vec::new(), free: Vec::new(), released: Vec::new() }),
            has_released: AtomicBool::new(false),
        }
    }

    /// Locks the table.
    pub(crate) fn lock(&self) -> Table<'_, T> {
        Table { guard: crate::loom::lock(&self.inner) }
    }

    /// Stores `value` and returns its token.
    ///
    /// # Errors
    ///
    /// `OutOfMemory` when every index of the token's index half is in use.
    pub(crate) fn insert(&self, value: Arc<T>) -> io::Result<usize> {
        let mut slab = crate::loom::lock(&self.inner);
        let index = match slab.free.pop() {
            Some(i) => i,
            None => {
                if slab.entries.len() >= INDEX_MASK {
                    return Err(io::Error::new(
                        io::ErrorKind::OutOfMemory,
                        "too many sockets registered with one driver",
                    ));
                }
                slab.entries.push(Entry { generation: 0, value: None });
                slab.entries.len() - 1
            }
        };
        let entry = &mut slab.entries[index];
        entry.value = Some(value);
        Ok(((entry.generation & INDEX_MASK) << INDEX_BITS) | index)
    }

    /// Frees `token`'s slot (bumping its generation) and returns its value; `None` for a
    /// stale or unknown token. The value is dropped by the caller, outside the lock.
    pub(crate) fn release(&self, token: usize) -> Option<Arc<T>> {
        let (index, generation) = split(token);
        let mut slab = crate::loom::lock(&self.inner);
        let entry = slab.entries.get_mut(index)?;
        if entry.generation & INDEX_MASK != generation || entry.value.is_none() {
            return None;
        }
        entry.generation = entry.generation.wrapping_add(1);
        let old = entry.value.take();
        slab.free.push(index);
        slab.released.push(index);
        self.has_released.store(true, Relaxed);
        old
    }
}

/// The driver core's lock-free copy of a [`TokenTable`]; see the module doc.
#[derive(Debug)]
pub(crate) struct TokenCache<T> {
    /// Per slot index: the token it was cached under and its value.
    entries: Vec<Option<(usize, Arc<T>)>>,
    /// Spare buffer swapped with the table's `released` list (keeps both allocations).
    released: Vec<usize>,
}

impl<T> Default for TokenCache<T> {
    fn default() -> Self {
        TokenCache { entries: Vec::new(), released: Vec::new() }
    }
}

impl<T> TokenCache<T> {
    /// The value of `token`, if the token is current or was current when this cache last
    /// looked it up (a stale event then reaches the registration it was meant for).
    #[inline]
    pub(crate) fn get(&mut self, table: &TokenTable<T>, token: usize) -> Option<&Arc<T>> {
        let (index, _) = split(token);
        if matches!(self.entries.get(index), Some(Some((t, _))) if *t == token) {
            return self.entries[index].as_ref().map(|(_, v)| v);
        }
        self.fill(table, token)
    }

    /// A miss: looks `token` up under the table's lock and caches the answer.
    #[cold]
    #[inline(never)]
    fn fill(&mut self, table: &TokenTable<T>, token: usize) -> Option<&Arc<T>> {
        let value = table.lock().get(token)?.clone();
        let (index, _) = split(token);
        if self.entries.len() <= index {
            self.entries.resize_with(index + 1, || None);
        }
        // A value this replaces is dropped here, outside the table lock.
        let entry = self.entries[index].insert((token, value));
        Some(&entry.1)
    }

    /// Drops the cached copies of every index released since the last call, so that a
    /// deregistered source is not kept alive. One relaxed load when nothing was released.
    #[inline]
    pub(crate) fn forget_released(&mut self, table: &TokenTable<T>) {
        if table.has_released.load(Relaxed) {
            self.forget_released_slow(table);
        }
    }

    #[cold]
    #[inline(never)]
    fn forget_released_slow(&mut self, table: &TokenTable<T>) {
        {
            let mut slab = crate::loom::lock(&table.inner);
            std::mem::swap(&mut slab.released, &mut self.released);
            table.has_released.store(false, Relaxed);
        }
        // Outside the lock: dropping a value may run a waker's drop.
        for index in self.released.drain(..) {
            if let Some(entry) = self.entries.get_mut(index) {
                *entry = None;
            }
        }
    }
}

impl<T> Table<'_, T> {
    /// The value of `token`, if the token is current.
    pub(crate) fn get(&self, token: usize) -> Option<&Arc<T>> {
        let (index, generation) = split(token);
        match self.guard.entries.get(index) {
            Some(Entry { generation: g, value: Some(v) }) if g & INDEX_MASK == generation => Some(v),
            _ => None,
        }
    }

    /// Every live value.
    pub(crate) fn values(&self) -> impl Iterator<Item = &Arc<T>> {
        self.guard.entries.iter().filter_map(|e| e.value.as_ref())
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn stale_tokens_miss_and_slots_are_reused() {
        let t = TokenTable::new();
        let a = t.insert(Arc::new("a")).unwrap();
        assert_eq!(t.lock().get(a).map(|v| **v), Some("a"));
        assert_eq!(t.release(a).map(|v| *v), Some("a"));
        assert!(t.release(a).is_none(), "double release is ignored");
        let b = t.insert(Arc::new("b")).unwrap();
        assert_ne!(a, b, "same slot, new generation");
        assert!(t.lock().get(a).is_none(), "a stale token never reaches the new value");
        assert_eq!(t.lock().get(b).map(|v| **v), Some("b"));
        assert_eq!(t.lock().values().count(), 1);
    }

    #[test]
    fn the_cache_answers_like_the_table_and_forgets_released_values() {
        let t = TokenTable::new();
        let mut c = TokenCache::default();
        let a_val = Arc::new("a");
        let a = t.insert(a_val.clone()).unwrap();
        assert_eq!(c.get(&t, a).map(|v| **v), Some("a"), "miss: filled from the table");
        assert_eq!(c.get(&t, a).map(|v| **v), Some("a"), "hit");
        assert_eq!(Arc::strong_count(&a_val), 3, "table, cache and this test");
        assert!(c.get(&t, a + 1).is_none(), "an index never used misses");

        drop(t.release(a));
        // Not yet forgotten: a stale event still reaches the old registration.
        assert_eq!(c.get(&t, a).map(|v| **v), Some("a"));
        c.forget_released(&t);
        assert_eq!(Arc::strong_count(&a_val), 1, "the cache let the released value go");
        assert!(c.get(&t, a).is_none(), "after forgetting, a stale token misses");

        let b = t.insert(Arc::new("b")).unwrap();
        assert_eq!(c.get(&t, b).map(|v| **v), Some("b"));
        // Released and reused between two turns: the old token never reaches "c".
        drop(t.release(b));
        let cc = t.insert(Arc::new("c")).unwrap();
        assert_eq!(b & INDEX_MASK, cc & INDEX_MASK, "same slot");
        assert_eq!(c.get(&t, b).map(|v| **v), Some("b"), "stale: the old registration, if any");
        assert_eq!(c.get(&t, cc).map(|v| **v), Some("c"));
        assert!(c.get(&t, b).is_none(), "the new entry replaced the old one in the cache");
        c.forget_released(&t);
        assert_eq!(c.get(&t, cc).map(|v| **v), Some("c"), "refilled after forgetting the slot");
    }
}

#[cfg(all(test, loom))]
mod loom_tests {
    use super::*;
    use loom::thread;

    /// A driver turn holds a token harvested before the socket was deregistered; another
    /// thread deregisters it and registers a new socket that reuses the slot. The event
    /// is delivered to the old registration or dropped, never to the new one.
    #[test]
    fn loom_event_after_deregister_never_reaches_the_new_registration() {
        crate::loom::model("event_after_deregister", || {
            let table = Arc::new(TokenTable::new());
            let old = table.insert(Arc::new(1u32)).unwrap();
            let other = {
                let table = table.clone();
                thread::spawn(move || {
                    let released = table.release(old);
                    assert_eq!(released.map(|v| *v), Some(1));
                    table.insert(Arc::new(2u32)).unwrap()
                })
            };
            let delivered = table.lock().get(old).map(|v| **v);
            let new = other.join().unwrap();
            assert_ne!(delivered, Some(2), "a stale event reached the registration that reused its slot");
            assert_eq!(table.lock().get(new).map(|v| **v), Some(2));
            assert!(table.lock().get(old).is_none());
        });
    }

    /// The same race through the driver's cache, which had the old token cached: the
    /// stale token reaches the old registration or nothing, the new token always the new
    /// one, and after `forget_released` the cache holds no copy of the released value.
    #[test]
    fn loom_cache_never_maps_a_stale_token_to_the_new_registration() {
        crate::loom::model("cache_event_after_deregister", || {
            let table = Arc::new(TokenTable::new());
            let old_val = Arc::new(1u32);
            let old = table.insert(old_val.clone()).unwrap();
            let mut cache = TokenCache::default();
            assert_eq!(cache.get(&table, old).map(|v| **v), Some(1));
            let other = {
                let table = table.clone();
                thread::spawn(move || {
                    drop(table.release(old));
                    table.insert(Arc::new(2u32)).unwrap()
                })
            };
            // A turn racing the release: a stale lookup, and a look at the released list.
            let delivered = cache.get(&table, old).map(|v| **v);
            cache.forget_released(&table);
            let new = other.join().unwrap();
            assert_ne!(delivered, Some(2), "a stale event reached the registration that reused its slot");
            // The next turn: the released value is let go, the new one found.
            cache.forget_released(&table);
            assert_eq!(Arc::strong_count(&old_val), 1, "a released value outlived the next turn");
            assert_eq!(cache.get(&table, new).map(|v| **v), Some(2));
        });
    }
}
