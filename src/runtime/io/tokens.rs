//! [`TokenTable`]: the map from mio tokens to registrations, safe against stale events.
//!
//! A token packs a slot index (low half of the word) with the slot's generation (high
//! half). Releasing a slot bumps its generation, so a token harvested by `epoll_wait`
//! before its socket was deregistered no longer matches the slot: a lookup
//! ([`TokenCache::get`]) returns `None` for it. An event never reaches a registration other than the one its token was
//! issued for, in particular not a new registration that reuses the slot (the bug class
//! of mio's RUSTSEC-2024-0019). The table holds `Arc`s, so a registration found under the
//! lock stays alive while its event is delivered, even if it is released meanwhile.
//!
//! # The turning thread's copy: [`TokenCache`]
//!
//! Looking a token up under the table's lock costs a lock and an unlock (two locked
//! instructions) on the path from `epoll_wait` to the woken task. So the driver's core
//! keeps a [`TokenCache`]: for each slot index, the full token and the value it had when
//! the core last looked it up under the lock. A hit needs no lock; a miss (an index not
//! cached, or a token with another generation) looks the token up in the table as
//! above and caches the answer. Only the thread holding the core uses the cache.
//!
//! **A slot the cache holds is not reused until the cache has forgotten it.** The table
//! marks a slot `cached` when the cache copies it (under the lock).
//! [`TokenTable::release`] bumps the generation and puts a cached slot on a `released`
//! list, not on the free list; a slot the cache never copied is freed at once. At the
//! start of each turn the core reads a flag (a relaxed atomic load: the flag is only a
//! hint, correctness never depends on seeing it in time) and, when it is set,
//! [`TokenCache::forget_released`] drops its copies of those indices and only then moves
//! them to the free list. So a cache entry `(token, value)` holds either the
//! registration the slot has now, or a released one whose slot nobody has taken since:
//! a cache hit never reaches a newer registration of the slot, whatever the generation.
//!
//! A stale event (harvested before its socket was deregistered) therefore goes one of
//! two ways:
//!
//! * its slot was cached: the cache still holds the released registration, and the
//!   event reaches it, which is harmless: it is alive (the cache holds an `Arc`), nobody
//!   polls it any more, and it holds no waker (see below);
//! * its slot was not cached (the socket's first event, racing its deregistration): the
//!   slot may have been reused already, and the miss looks the token up in the table,
//!   where the generation check drops it. Here the generation is what protects: only
//!   after the generation wrapped (2^32 reuses of one slot within one turn on 64-bit
//!   targets, 2^16 on 32-bit ones) could the event reach the newer registration, and
//!   then only as a spurious readiness (its task's next operation gets `WouldBlock` and
//!   waits again), never as a lost one. The table without the cache had the same bound.
//!
//! **Nothing is kept alive for long.** A released value lives until the core's next turn
//! starts. A driver blocked in `epoll_wait` would delay that indefinitely, so `release`
//! asks the caller to wake the driver when [`RELEASE_BATCH`] releases are pending
//! (tokio's driver does the same; one wake is enough, since every turn empties the list
//! before it blocks). The slots waiting for reuse are bounded by the slots the cache
//! holds, whether or not the driver turns again: a driver that is never turned caches
//! nothing, and its slots are reused at once. (Only the turning thread touches the core:
//! a releasing thread that took it, even briefly, could make a parking thread miss the
//! driver and sleep on its condvar with nobody in `epoll_wait`.)
//! Deregistration drops the socket's stored wakers (`ScheduledIo::retire`), so a cached
//! value never holds a task either: a runtime whose tasks were cancelled right before
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
    /// Whether `released` is non-empty. Written under the lock; read without it, as a
    /// hint, by [`TokenCache::forget_released`].
    has_released: AtomicBool,
}

#[derive(Debug)]
pub(crate) struct Slab<T> {
    entries: Vec<Entry<T>>,
    free: Vec<usize>,
    /// Released indices the cache holds; they join `free` only after the cache has
    /// forgotten them (module doc). Each index appears at most once.
    released: Vec<usize>,
}

#[derive(Debug)]
struct Entry<T> {
    generation: usize,
    value: Option<Arc<T>>,
    /// The driver's cache holds a copy of this slot (set when it copies the value, under
    /// the lock; cleared by `forget_released`). Only such a slot has to wait for the
    /// cache before it is reused.
    cached: bool,
}

impl<T> Entry<T> {
    /// Whether this slot holds a value registered under `generation` (a token's upper
    /// half): the check every lookup and release goes through.
    fn holds(&self, generation: usize) -> bool {
        self.generation & INDEX_MASK == generation && self.value.is_some()
    }
}

/// The locked table: every live value (driver shutdown), and lookups in tests.
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
    /// `OutOfMemory` when every index of the token's index half is in use (a released
    /// index the driver's cache holds counts as in use until the cache forgets it).
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
                slab.entries.push(Entry { generation: 0, value: None, cached: false });
                slab.entries.len() - 1
            }
        };
        let entry = &mut slab.entries[index];
        entry.value = Some(value);
        Ok(((entry.generation & INDEX_MASK) << INDEX_BITS) | index)
    }

    /// Frees `token`'s slot (bumping its generation) and returns its value; `None` for a
    /// stale or unknown token. The value is dropped by the caller, outside the lock. A
    /// slot the driver's cache holds becomes reusable once the cache has forgotten it, any
    /// other slot at once; `wake_driver` says that [`RELEASE_BATCH`] releases now wait for
    /// the cache and the caller should make the driver turn.
    pub(crate) fn release(&self, token: usize) -> Released<T> {
        let (index, generation) = split(token);
        let mut slab = crate::loom::lock(&self.inner);
        let Some(entry) = slab.entries.get_mut(index).filter(|e| e.holds(generation)) else {
            return Released::default();
        };
        entry.generation = entry.generation.wrapping_add(1);
        let value = entry.value.take();
        if !entry.cached {
            slab.free.push(index);
            return Released { value, wake_driver: false };
        }
        slab.released.push(index);
        self.has_released.store(true, Relaxed);
        Released { value, wake_driver: slab.released.len() == RELEASE_BATCH }
    }

    /// The value of `token` for the driver's cache, marking the slot as cached.
    fn get_for_cache(&self, token: usize) -> Option<Arc<T>> {
        let (index, generation) = split(token);
        let mut slab = crate::loom::lock(&self.inner);
        let entry = slab.entries.get_mut(index).filter(|e| e.holds(generation))?;
        entry.cached = true;
        entry.value.clone()
    }
}

/// Pending releases after which [`TokenTable::release`] asks for a driver turn.
pub(crate) const RELEASE_BATCH: usize = 64;

/// What [`TokenTable::release`] did.
#[derive(Debug)]
pub(crate) struct Released<T> {
    /// The released value (`None` for a stale or unknown token).
    pub(crate) value: Option<Arc<T>>,
    /// [`RELEASE_BATCH`] releases are waiting for the driver's next turn: wake it.
    pub(crate) wake_driver: bool,
}

impl<T> Default for Released<T> {
    fn default() -> Self {
        Released { value: None, wake_driver: false }
    }
}

/// The driver core's lock-free copy of a [`TokenTable`]; see the module doc.
#[derive(Debug)]
pub(crate) struct TokenCache<T> {
    /// Per slot index: the token it was cached under and its value.
    entries: Vec<Option<(usize, Arc<T>)>>,
    /// Spare buffer swapped with the table's `released` list (keeps both allocations).
    released: Vec<usize>,
    /// Values being dropped by `forget_released` (a buffer kept for its allocation).
    dropped: Vec<Arc<T>>,
}

impl<T> Default for TokenCache<T> {
    fn default() -> Self {
        TokenCache { entries: Vec::new(), released: Vec::new(), dropped: Vec::new() }
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
        let value = table.get_for_cache(token)?;
        let (index, _) = split(token);
        if self.entries.len() <= index {
            self.entries.resize_with(index + 1, || None);
        }
        // A miss never replaces a live entry: an index the cache holds is `cached`, so
        // it is not reused before `forget_released` has cleared the entry.
        debug_assert!(self.entries[index].is_none(), "a cached slot was reused");
        let entry = self.entries[index].insert((token, value));
        Some(&entry.1)
    }

    /// Drops the cached copies of every index released since the last call (so that a
    /// deregistered source is not kept alive) and makes those indices reusable. One
    /// relaxed load when nothing was released.
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
            // Reusable from now on. Only this thread uses the cache, and it clears these
            // entries below before its next lookup, so a new registration of one of
            // these slots can never meet the stale entry.
            let slab = &mut *slab;
            for &index in &self.released {
                if let Some(e) = slab.entries.get_mut(index) {
                    e.cached = false;
                }
            }
            slab.free.extend_from_slice(&self.released);
        }
        // Every entry is cleared before any value is dropped (outside the lock): a
        // panicking drop cannot leave a reusable slot with a stale entry.
        for index in self.released.drain(..) {
            if let Some((_, value)) = self.entries.get_mut(index).and_then(Option::take) {
                self.dropped.push(value);
            }
        }
        self.dropped.clear();
    }
}

impl<T> Table<'_, T> {
    /// Slots ever created, live or not (tests).
    #[cfg(test)]
    pub(crate) fn slots(&self) -> usize {
        self.guard.entries.len()
    }

    /// The value of `token`, if the token is current (tests and models; the driver looks
    /// tokens up through its [`TokenCache`]).
    #[cfg(any(test, loom))]
    pub(crate) fn get(&self, token: usize) -> Option<&Arc<T>> {
        let (index, generation) = split(token);
        self.guard.entries.get(index).filter(|e| e.holds(generation))?.value.as_ref()
    }

    /// Every live value.
    pub(crate) fn values(&self) -> impl Iterator<Item = &Arc<T>> {
        self.guard.entries.iter().filter_map(|e| e.value.as_ref())
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    fn index(token: usize) -> usize {
        split(token).0
    }

    #[test]
    fn stale_tokens_miss_and_cached_slots_are_reused_once_the_cache_forgot_them() {
        let t = TokenTable::new();
        let mut c = TokenCache::default();
        // A slot the cache never copied is reused at once, with a new generation.
        let u = t.insert(Arc::new("u")).unwrap();
        assert_eq!(t.release(u).value.map(|v| *v), Some("u"));
        assert!(t.release(u).value.is_none(), "double release is ignored");
        let u2 = t.insert(Arc::new("u2")).unwrap();
        assert_eq!(index(u), index(u2), "an uncached slot is reused at once");
        assert_ne!(u, u2, "with a new generation");
        assert!(t.lock().get(u).is_none() && c.get(&t, u).is_none(), "the stale token misses");

        // A slot the cache holds waits for the cache.
        let a = t.insert(Arc::new("a")).unwrap();
        assert_eq!(c.get(&t, a).map(|v| **v), Some("a"));
        assert!(t.release(a).value.is_some());
        assert!(t.lock().get(a).is_none(), "released");
        let b = t.insert(Arc::new("b")).unwrap();
        assert_ne!(index(a), index(b), "not reused before the cache forgot it");
        c.forget_released(&t);
        let n = t.insert(Arc::new("n")).unwrap();
        assert_eq!(index(a), index(n), "reused once the cache forgot it");
        assert_ne!(a, n, "with a new generation");
        assert!(t.lock().get(a).is_none(), "a stale token never reaches the new value");
        assert!(c.get(&t, a).is_none(), "nor through the cache");
        assert_eq!(c.get(&t, n).map(|v| **v), Some("n"));
        assert_eq!(t.lock().values().count(), 3);
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
        assert_eq!(index(a), index(b));
        assert_eq!(c.get(&t, b).map(|v| **v), Some("b"), "the reused slot is found");
        c.forget_released(&t); // nothing released: keeps the entry
        assert_eq!(c.get(&t, b).map(|v| **v), Some("b"));
    }

    #[test]
    fn forgetting_a_slot_clears_its_cached_mark() {
        let t = TokenTable::new();
        let mut c = TokenCache::default();
        let a = t.insert(Arc::new(1)).unwrap();
        assert!(c.get(&t, a).is_some());
        drop(t.release(a));
        c.forget_released(&t);
        let b = t.insert(Arc::new(2)).unwrap();
        assert_eq!(index(a), index(b));
        drop(t.release(b)); // never cached since its reuse
        let n = t.insert(Arc::new(3)).unwrap();
        assert_eq!(index(b), index(n), "freed at once: the forget cleared `cached`");
    }

    #[test]
    fn every_release_batch_asks_for_a_driver_turn() {
        let t = TokenTable::new();
        let mut c = TokenCache::default();
        for _ in 0..2 {
            let tokens: Vec<usize> = (0..RELEASE_BATCH + 1).map(|i| t.insert(Arc::new(i)).unwrap()).collect();
            for &k in &tokens {
                assert!(c.get(&t, k).is_some(), "cached (the driver saw an event for each)");
            }
            let wakes: Vec<bool> = tokens.iter().map(|&k| t.release(k).wake_driver).collect();
            let asked: Vec<usize> = wakes.iter().enumerate().filter(|(_, w)| **w).map(|(i, _)| i).collect();
            assert_eq!(asked, [RELEASE_BATCH - 1], "once, when the batch fills");
            c.forget_released(&t);
        }
        assert_eq!(t.lock().values().count(), 0);
        assert_eq!(t.lock().guard.entries.len(), RELEASE_BATCH + 1, "the second round reused every slot");
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
                    let released = table.release(old).value;
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

    /// The race of `loom_event_after_deregister_…` through the driver's cache: a turn
    /// looks the stale token up, forgets released slots and looks again, while another
    /// thread deregisters the socket and registers one that may reuse the slot. With
    /// `cached_first`, the cache copied the slot before the race (it then waits for the
    /// forget); without, the socket's first event races its deregistration (the slot is
    /// freed at once and the generation check protects). Either way no lookup of the stale
    /// token reaches the new registration, the new token finds it, and after the next
    /// turn nothing holds the released value.
    fn race_through_cache(cached_first: bool) {
        let table = Arc::new(TokenTable::new());
        let old_val = Arc::new(1u32);
        let old = table.insert(old_val.clone()).unwrap();
        let mut cache = TokenCache::default();
        if cached_first {
            assert_eq!(cache.get(&table, old).map(|v| **v), Some(1));
        }
        let other = {
            let table = table.clone();
            thread::spawn(move || {
                drop(table.release(old));
                table.insert(Arc::new(2u32)).unwrap()
            })
        };
        // A turn racing the release: a stale lookup, a look at the released list, and
        // another lookup.
        let delivered = cache.get(&table, old).map(|v| **v);
        cache.forget_released(&table);
        let after_forget = cache.get(&table, old).map(|v| **v);
        let new = other.join().unwrap();
        assert_ne!(delivered, Some(2), "a stale event reached the registration that reused its slot");
        assert_ne!(after_forget, Some(2), "a stale event reached the registration that reused its slot");
        // The next turn: the released value is let go, the new one found.
        cache.forget_released(&table);
        assert_ne!(cache.get(&table, old).map(|v| **v), Some(2), "stale token after reuse");
        assert_eq!(Arc::strong_count(&old_val), 1, "a released value outlived the next turn");
        assert_eq!(cache.get(&table, new).map(|v| **v), Some(2));
        assert_ne!(cache.get(&table, old).map(|v| **v), Some(2), "stale token after the new one was cached");
    }

    /// [`race_through_cache`] for a slot the cache never copied.
    #[test]
    fn loom_uncached_stale_token_never_reaches_the_new_registration() {
        crate::loom::model("cache_uncached_event_after_deregister", || race_through_cache(false));
    }

    /// [`race_through_cache`] for a slot the cache copied before the race.
    #[test]
    fn loom_cache_never_maps_a_stale_token_to_the_new_registration() {
        crate::loom::model("cache_event_after_deregister", || race_through_cache(true));
    }
}
