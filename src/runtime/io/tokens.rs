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
//! The lock is `crate::loom`'s: the `loom` model at the bottom races a driver turn that
//! looks a token up against a deregistration and a re-registration reusing the slot.

use std::io;
use std::sync::Arc;

use crate::loom::sync::{Mutex, MutexGuard};

const INDEX_BITS: u32 = usize::BITS / 2;
const INDEX_MASK: usize = (1 << INDEX_BITS) - 1;

/// Slab of registrations addressed by generation-checked tokens.
#[derive(Debug)]
pub(crate) struct TokenTable<T> {
    inner: Mutex<Slab<T>>,
}

#[derive(Debug)]
pub(crate) struct Slab<T> {
    entries: Vec<Entry<T>>,
    free: Vec<usize>,
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
        TokenTable { inner: Mutex::new(Slab { entries: Vec::new(), free: Vec::new() }) }
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
        old
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
}
