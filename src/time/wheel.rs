//! Hierarchical timer wheel: 6 levels × 64 slots, 1 tick = 1 ms.
//!
//! The time driver (`time/driver.rs`) owns one [`Wheel`] behind its lock. `Sleep`,
//! `Timeout` and `Interval` register deadlines with [`Wheel::insert`], re-arm them with
//! [`Wheel::reset`], check them with [`Wheel::poll_take`] and cancel them with
//! [`Wheel::remove_take`]. When the driver parks it sleeps at most until
//! [`Wheel::next_expiration`], and after waking it calls [`Wheel::advance`], which hands back
//! the wakers of every due timer so that the driver can wake them *after* releasing its
//! lock. The wheel itself knows nothing about clocks or threads: time is a plain `u64`
//! count of ticks since the wheel was created.
//!
//! # Levels and slot math
//!
//! Level `l` (0 ≤ `l` < 6) has 64 slots, and each slot of level `l` spans `64^l` ticks, so
//! the whole level spans `64^(l+1)` ticks:
//!
//! | level | slot width      | level span        |
//! |-------|-----------------|-------------------|
//! | 0     | 1 ms            | 64 ms             |
//! | 1     | 64 ms           | ~4.1 s            |
//! | 2     | ~4.1 s          | ~4.4 min          |
//! | 3     | ~4.4 min        | ~4.7 h            |
//! | 4     | ~4.7 h          | ~12.4 days        |
//! | 5     | ~12.4 days      | ~795 days (2^36)  |
//!
//! Read a tick as six base-64 digits; digit `l` is `(tick >> 6l) & 63`. A timer due at
//! `when` goes to the level of the *highest digit in which `when` differs from the current
//! tick* (`now`), and into the slot named by `when`'s digit at that level:
//!
//! ```text
//! level = msb((now ^ when) | 63) / 6        slot = (when >> 6 * level) & 63
//! ```
//!
//! So a timer at level `l` lies in the same `64^(l+1)`-aligned block as `now`, and its
//! slot digit is greater than `now`'s digit at that level: the slot starts in the future,
//! at `block_base + slot * 64^l`, and at or before `when`. A timer at level 0 sits in the
//! slot of its exact tick. A timer with `when <= now` goes to level 0's slot for `now`
//! itself, so the next [`Wheel::advance`] fires it.
//!
//! # Insert and remove in O(1)
//!
//! Entries live in a slab (a `Vec` plus a free list threaded through the vacant entries).
//! Each slot is the head and tail of an intrusive doubly-linked list running through the
//! entries' `prev`/`next` indices, and each level keeps a `u64` bitmask of its non-empty
//! slots. Inserting computes the position above and links the entry at the slot's tail;
//! removing unlinks it using the position stored in the entry. Neither walks any list.
//! A [`TimerId`] is the slab index plus a generation that is bumped whenever the entry is
//! freed, so a stale id (one whose timer was already freed) is detected and ignored rather
//! than touching whichever timer reuses the index. The generation is 32 bits wide and
//! wraps, so an id must be held across 2^32 reuses of the same index before it could be
//! mistaken for a live one.
//!
//! # Advancing and cascading
//!
//! [`Wheel::advance`] never steps tick by tick. It repeatedly picks the occupied slot with
//! the earliest start (at most six bitmask scans: the first set bit at or after the
//! current digit of each level), stops when that start is later than the target, and
//! otherwise moves `now` to the slot's start and drains it:
//!
//! 1. an entry whose deadline has been reached by the *target* fires: its waker goes to the
//!    caller's list and the entry is marked fired;
//! 2. any other entry is set aside. Once no occupied slot starts at or before the target,
//!    `now` jumps to the target and the set-aside entries are re-inserted relative to it.
//!    An entry drained from a coarse slot now lies in a block at least 64 times narrower,
//!    so it lands on a lower level (this is *cascading*); over later advances it keeps
//!    moving down until it reaches its exact level-0 slot or fires.
//!
//! Moving `now` to the earliest occupied slot start (or to the target, when that is
//! earlier) keeps every other entry's position valid: no entry's slot starts before it,
//! so all of them stay in `now`'s block at their level. Because set-aside entries are not
//! re-inserted until the walk is over, each entry is visited at most once per advance,
//! and the walk ends after at most 6 × 64 slots. The cost of an advance is therefore
//! proportional to the non-empty slots it drains and the entries in them, never to the
//! length of the jump.
//!
//! Timers fired in one advance are handed over in deadline order (a stable sort of the
//! batch; ties keep insertion order where the wheel can tell). Across separate advances
//! the order holds by construction: a timer fires at the first advance whose target
//! reaches its deadline, never earlier and never later.
//!
//! # Timers beyond the top level
//!
//! The top level wraps around like a ring: a slot whose digit is not ahead of `now`'s
//! level-5 digit means "the next time that digit comes round", that is in the next
//! `2^36`-tick block. This covers the deadlines that are less than `2^36` ticks away but
//! cross into the next block. Deadlines `2^36` ticks (about 795 days) or more away are
//! clamped: they are parked in the top level's *current* slot, read as one full rotation
//! ahead, whose start is between `2^36 - 2^30` and `2^36` ticks away and so never after
//! their deadline. When that slot comes up, the entry is simply re-inserted relative to
//! the advance's target: it cascades down if it is now in range, or is parked again
//! otherwise. Every deadline up to `u64::MAX` is therefore accepted; a very distant one
//! costs at most one re-insertion per advance that reaches its parking slot (about one
//! per 795 days of wheel time), however far that advance jumps.
//!
//! # Fired entries
//!
//! A fired entry stays in the slab (out of every slot list) until its owner either polls
//! it ([`Wheel::poll_take`] returns `true` and frees it) or drops it ([`Wheel::remove_take`] frees
//! it), so nothing leaks and a late poll still learns that the timer elapsed.
//! [`Wheel::reset`] may re-arm a fired entry.

use std::fmt;
use std::mem;
use std::task::Waker;

/// Number of levels in the wheel.
const LEVELS: usize = 6;

/// Bits of a tick consumed by one level (64 slots per level).
const SLOT_BITS: u32 = 6;

/// Number of slots in one level.
const SLOTS: usize = 1 << SLOT_BITS;

/// Mask selecting a slot digit.
const SLOT_MASK: u64 = (SLOTS as u64) - 1;

/// Ticks covered by one full rotation of the top level: `64^6 = 2^36` (about 795 days).
const WHEEL_SPAN: u64 = 1 << (SLOT_BITS * LEVELS as u32);

/// Index of the top level.
const TOP: usize = LEVELS - 1;

/// Sentinel for "no entry" in the intrusive links and the free list.
const NIL: u32 = u32::MAX;

/// Identifies one timer in the wheel; stale ids (after fire/remove) are detected by a generation.
///
/// An id stays valid while its timer is pending and while it has fired but not yet been
/// polled; [`Wheel::poll_take`] returning `true` or [`Wheel::remove_take`] frees the entry and makes
/// the id stale.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct TimerId {
    /// Slab index of the entry.
    index: u32,
    /// Generation the entry had when this id was handed out.
    generation: u32,
}

/// The slot an entry is linked into.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Position {
    /// Level, `0..LEVELS`.
    level: u8,
    /// Slot within the level, `0..SLOTS`.
    slot: u8,
}

/// Life-cycle state of a slab entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// Vacant; `next` links the free list.
    Free,
    /// Waiting for its deadline; linked into the slot at this position.
    Pending(Position),
    /// Deadline reached; unlinked and kept until polled or removed.
    Fired,
}

/// One slab entry: a timer, or a vacancy on the free list.
#[derive(Debug)]
struct Entry {
    /// Bumped (wrapping) each time the entry is freed, to detect stale [`TimerId`]s.
    generation: u32,
    /// Where the entry is in its life cycle.
    state: State,
    /// The deadline in ticks, as given by the user (never clamped).
    when: u64,
    /// Waker to hand over when the timer fires; `None` after firing, or if the entry
    /// was re-armed by [`Wheel::reset`] and has not been polled since.
    waker: Option<Waker>,
    /// Previous entry in the slot list (`NIL` at the head).
    prev: u32,
    /// Next entry in the slot list, or next vacancy when free (`NIL` at the end).
    next: u32,
}

/// Head and tail of one slot's intrusive list.
#[derive(Clone, Copy, Debug)]
struct Slot {
    /// First entry, or `NIL`.
    head: u32,
    /// Last entry, or `NIL`.
    tail: u32,
}

impl Slot {
    /// An empty slot.
    const EMPTY: Slot = Slot { head: NIL, tail: NIL };
}

/// One level of the wheel: 64 slot lists and a bitmask of the non-empty ones.
#[derive(Debug)]
struct Level {
    /// Bit `s` is set iff `slots[s]` is non-empty.
    occupied: u64,
    /// The slot lists.
    slots: [Slot; SLOTS],
}

impl Level {
    /// An empty level.
    const EMPTY: Level = Level { occupied: 0, slots: [Slot::EMPTY; SLOTS] };
}

/// A hierarchical timer wheel with 6 levels × 64 slots; see the [module docs](self).
///
/// Time is measured in ticks (1 tick = 1 ms) since the wheel's start. Not thread-safe by
/// itself: the time driver keeps it behind a lock.
pub(crate) struct Wheel {
    /// The tick the wheel has advanced to.
    now: u64,
    /// The levels, lowest (finest) first.
    levels: Box<[Level; LEVELS]>,
    /// Slab of entries, indexed by [`TimerId::index`].
    entries: Vec<Entry>,
    /// Head of the free list threaded through vacant entries' `next`, or `NIL`.
    free_head: u32,
    /// Number of pending (linked) entries.
    pending: usize,
    /// Reused buffer of `(deadline, waker)` for the timers fired by one `advance`.
    fired: Vec<(u64, Waker)>,
    /// Reused buffer of the entries one `advance` drained but did not fire, to re-insert
    /// once the wheel has reached the target.
    deferred: Vec<u32>,
}

impl fmt::Debug for Wheel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Wheel")
            .field("now", &self.now)
            .field("pending", &self.pending)
            .field("slab_len", &self.entries.len())
            .field("next_expiration", &self.next_expiration())
            .finish()
    }
}

impl Default for Wheel {
    fn default() -> Wheel {
        Wheel::new()
    }
}

impl Wheel {
    /// Creates an empty wheel whose current tick is 0.
    pub(crate) fn new() -> Wheel {
        Wheel {
            now: 0,
            levels: Box::new([Level::EMPTY; LEVELS]),
            entries: Vec::new(),
            free_head: NIL,
            pending: 0,
            fired: Vec::new(),
            deferred: Vec::new(),
        }
    }

    /// Returns the tick the wheel has advanced to.
    pub(crate) fn now(&self) -> u64 {
        self.now
    }

    /// Returns the number of pending timers (neither fired nor removed).
    pub(crate) fn len(&self) -> usize {
        self.pending
    }

    /// Returns `true` when no timer is pending.
    pub(crate) fn is_empty(&self) -> bool {
        self.pending == 0
    }

    /// Inserts a timer due at tick `when` whose expiry will hand over `waker`. O(1).
    ///
    /// A timer with `when <= now()` fires on the next [`advance`](Wheel::advance). Any
    /// `when` is accepted, up to `u64::MAX`; deadlines beyond the top level's range are
    /// handled as described in the module docs.
    ///
    /// # Panics
    ///
    /// Panics if `u32::MAX - 1` timers are already live at once (the slab index is 32
    /// bits), which would take hundreds of gigabytes of memory.
    pub(crate) fn insert(&mut self, when: u64, waker: Waker) -> TimerId {
        let index = self.alloc(when, waker);
        self.link(index);
        self.pending += 1;
        TimerId { index, generation: self.entries[index as usize].generation }
    }

    /// [`Wheel::poll_take`], dropping the displaced waker here (tests, the fuzzing shim).
    #[cfg(any(test, feature = "fuzzing"))]
    pub(crate) fn poll(&mut self, id: TimerId, waker: &Waker) -> bool {
        self.poll_take(id, waker).0
    }

    /// Checks a timer on behalf of the future that owns it.
    ///
    /// Returns `true` if the timer has fired; its entry is then freed and `id` becomes
    /// stale. A stale id also returns `true` (its timer fired and was consumed, or was
    /// removed). Otherwise the timer is still pending: `waker` replaces the stored waker
    /// (cloned only if it would not wake the same task) and `false` is returned.
    ///
    /// The waker it displaces (replaced, or freed with the entry) is handed back for
    /// the caller to drop *after* unlocking the wheel: a waker's drop is user code and
    /// may itself drop a timer of this wheel.
    pub(crate) fn poll_take(&mut self, id: TimerId, waker: &Waker) -> (bool, Option<Waker>) {
        let Some(entry) = self.live_mut(id) else {
            return (true, None);
        };
        match entry.state {
            State::Pending(_) => match &mut entry.waker {
                Some(stored) if stored.will_wake(waker) => (false, None),
                stored => (false, stored.replace(waker.clone())),
            },
            State::Fired => (true, self.release(id.index)),
            // `live_mut` never returns a free entry.
            State::Free => (true, None),
        }
    }

    /// Cancels a timer and frees its entry (called from the owner's `Drop`). O(1).
    ///
    /// Works for pending and fired-but-unpolled timers alike; stale ids are ignored.
    #[cfg(any(test, feature = "fuzzing"))]
    pub(crate) fn remove(&mut self, id: TimerId) {
        drop(self.remove_take(id));
    }

    /// Cancels a timer (a stale id is ignored) and frees its entry, handing back the
    /// entry's waker to be dropped after unlocking (see [`Wheel::poll_take`]).
    pub(crate) fn remove_take(&mut self, id: TimerId) -> Option<Waker> {
        let entry = self.live_mut(id)?;
        if let State::Pending(_) = entry.state {
            self.unlink(id.index);
            self.pending -= 1;
        }
        self.release(id.index)
    }

    /// Moves a timer to a new deadline `when` (for `Sleep::reset` and `Interval`). O(1).
    ///
    /// A pending timer keeps its waker. A fired but not yet polled timer is re-armed
    /// without a waker: the owner's next [`poll`](Wheel::poll_take) stores one, and if the
    /// timer fires before that, the poll still reports it. As with
    /// [`insert`](Wheel::insert), `when <= now()` fires on the next advance.
    ///
    /// Returns `false`, changing nothing, if `id` is stale; the caller must then
    /// [`insert`](Wheel::insert) a new timer.
    pub(crate) fn reset(&mut self, id: TimerId, when: u64) -> bool {
        let Some(entry) = self.live_mut(id) else {
            return false;
        };
        match entry.state {
            State::Pending(_) => self.unlink(id.index),
            State::Fired => self.pending += 1,
            // `live_mut` never returns a free entry.
            State::Free => return false,
        }
        self.entries[id.index as usize].when = when;
        self.link(id.index);
        true
    }

    /// Returns the earliest tick at which some timer may be due, or `None` when no timer
    /// is pending.
    ///
    /// The value is exact when the earliest timer sits in level 0 and may be early (the
    /// start of a coarser slot) otherwise; it is never later than the earliest pending
    /// deadline. It is `now()` when a timer is already overdue, and never less than
    /// `now()`. Cost: one bitmask scan per level.
    pub(crate) fn next_expiration(&self) -> Option<u64> {
        self.next_slot().map(|(_, start)| start)
    }

    /// Advances the wheel to tick `now` and collects the wakers of every timer due by then.
    ///
    /// Every pending timer with `when <= now` fires: its waker (if it has one) is pushed
    /// onto `wake`, in deadline order, and the entry is marked fired and kept until its
    /// owner polls or removes it. The caller wakes the wakers after releasing its lock.
    /// Time never goes backwards: a `now` earlier than [`now()`](Wheel::now) is treated as
    /// `now()` (which still fires timers inserted as already overdue). Coarser levels are
    /// cascaded on the way; empty stretches are skipped using the occupancy bitmasks, so a
    /// far jump costs no more than a short one with the same timers.
    pub(crate) fn advance(&mut self, now: u64, wake: &mut Vec<Waker>) {
        let target = now.max(self.now);
        let mut fired = mem::take(&mut self.fired);
        let mut deferred = mem::take(&mut self.deferred);
        while let Some((pos, start)) = self.next_slot() {
            if start > target {
                break;
            }
            // `start` is the earliest occupied slot start, so moving there keeps every
            // other entry's position valid (see the module docs). It is never below `now`.
            self.now = start.max(self.now);
            self.drain_slot(pos, target, &mut fired, &mut deferred);
        }
        // Every remaining slot starts after the target: jumping there is valid too.
        self.now = target;
        for index in deferred.drain(..) {
            self.link(index);
        }
        self.deferred = deferred;
        // Slots are drained in start order, but a drained coarse slot may fire entries
        // due later than a finer slot not yet drained; restore deadline order. The sort is
        // stable and the batch is nearly sorted already.
        fired.sort_by_key(|&(when, _)| when);
        wake.extend(fired.drain(..).map(|(_, waker)| waker));
        self.fired = fired;
    }

    // ===== internals =====

    /// Returns the entry for `id` if `id` is not stale.
    fn live_mut(&mut self, id: TimerId) -> Option<&mut Entry> {
        self.entries
            .get_mut(id.index as usize)
            .filter(|entry| entry.generation == id.generation && entry.state != State::Free)
    }

    /// Takes a vacant entry (or grows the slab) and fills it; the entry is not linked yet.
    fn alloc(&mut self, when: u64, waker: Waker) -> u32 {
        if self.free_head != NIL {
            let index = self.free_head;
            let entry = &mut self.entries[index as usize];
            self.free_head = entry.next;
            entry.when = when;
            entry.waker = Some(waker);
            entry.prev = NIL;
            entry.next = NIL;
            return index;
        }
        let index = match u32::try_from(self.entries.len()) {
            Ok(index) if index != NIL => index,
            _ => panic!("timer wheel: more than u32::MAX - 1 live timers"),
        };
        self.entries.push(Entry { generation: 0, state: State::Free, when, waker: Some(waker), prev: NIL, next: NIL });
        index
    }

    /// Frees an unlinked entry: takes its waker (returned, to be dropped outside the
    /// lock), bumps its generation and pushes it on the free list.
    fn release(&mut self, index: u32) -> Option<Waker> {
        let entry = &mut self.entries[index as usize];
        entry.state = State::Free;
        let waker = entry.waker.take();
        entry.generation = entry.generation.wrapping_add(1);
        entry.prev = NIL;
        entry.next = self.free_head;
        self.free_head = index;
        waker
    }

    /// Computes the slot for a deadline relative to the current tick (see the module docs).
    fn position(&self, when: u64) -> Position {
        let now = self.now;
        if when <= now {
            // Overdue: level 0's slot for the current tick fires on the next advance.
            return position(0, now);
        }
        let differing = (now ^ when) | SLOT_MASK;
        let level = ((u64::BITS - 1 - differing.leading_zeros()) / SLOT_BITS) as usize;
        if level < LEVELS {
            position(level, when)
        } else if when - now < WHEEL_SPAN {
            // Crosses into the next top-level block but is within one rotation: its own
            // top-level digit is at or behind ours, so the slot reads as the next rotation.
            position(TOP, when)
        } else {
            // Beyond the wheel: park in our own top-level slot, one full rotation ahead,
            // and re-insert when it comes up.
            position(TOP, now)
        }
    }

    /// Links an unlinked entry at the tail of the slot for its deadline and marks it
    /// pending.
    fn link(&mut self, index: u32) {
        let pos = self.position(self.entries[index as usize].when);
        let level = &mut self.levels[pos.level as usize];
        let slot = &mut level.slots[pos.slot as usize];
        let tail = slot.tail;
        if tail == NIL {
            slot.head = index;
        } else {
            self.entries[tail as usize].next = index;
        }
        slot.tail = index;
        level.occupied |= 1 << pos.slot;
        let entry = &mut self.entries[index as usize];
        entry.prev = tail;
        entry.next = NIL;
        entry.state = State::Pending(pos);
    }

    /// Unlinks a pending entry from its slot; the caller sets its new state.
    fn unlink(&mut self, index: u32) {
        let entry = &self.entries[index as usize];
        let State::Pending(pos) = entry.state else {
            return;
        };
        let (prev, next) = (entry.prev, entry.next);
        let level = &mut self.levels[pos.level as usize];
        let slot = &mut level.slots[pos.slot as usize];
        if prev == NIL {
            slot.head = next;
        } else {
            self.entries[prev as usize].next = next;
        }
        if next == NIL {
            slot.tail = prev;
        } else {
            self.entries[next as usize].prev = prev;
        }
        if slot.head == NIL {
            level.occupied &= !(1 << pos.slot);
        }
        let entry = &mut self.entries[index as usize];
        entry.prev = NIL;
        entry.next = NIL;
    }

    /// Detaches the list of the slot at `pos`; fires each of its entries due by `target`
    /// into `fired` and sets the others aside in `deferred`, unlinked, for the caller to
    /// re-insert once `now` has reached `target`.
    fn drain_slot(&mut self, pos: Position, target: u64, fired: &mut Vec<(u64, Waker)>, deferred: &mut Vec<u32>) {
        let level = &mut self.levels[pos.level as usize];
        let mut cursor = mem::replace(&mut level.slots[pos.slot as usize], Slot::EMPTY).head;
        level.occupied &= !(1 << pos.slot);
        while cursor != NIL {
            let index = cursor;
            let entry = &mut self.entries[index as usize];
            cursor = entry.next;
            entry.prev = NIL;
            entry.next = NIL;
            if entry.when <= target {
                entry.state = State::Fired;
                self.pending -= 1;
                if let Some(waker) = entry.waker.take() {
                    fired.push((entry.when, waker));
                }
            } else {
                // Still `Pending`, but linked nowhere until the caller re-inserts it.
                deferred.push(index);
            }
        }
    }

    /// Finds the occupied slot with the earliest start, and that start (never below
    /// `now`); ties go to the finer level. `None` when no timer is pending.
    fn next_slot(&self) -> Option<(Position, u64)> {
        let mut best: Option<(Position, u64)> = None;
        for (level_index, level) in self.levels.iter().enumerate() {
            if level.occupied == 0 {
                continue;
            }
            let shift = SLOT_BITS * level_index as u32;
            let digit = (self.now >> shift) & SLOT_MASK;
            // Start of the block this level spans around `now` (for the top level: the
            // current rotation).
            let block_base = self.now & !((SLOTS as u64) << shift).wrapping_sub(1);
            let (slot, base) = if level_index == TOP {
                // The top level is a ring. Slots after the current digit are in the
                // current rotation; the others, the current digit included (where timers
                // beyond the wheel are parked), belong to the next one.
                let ahead = level.occupied & ((u64::MAX << digit) << 1);
                if ahead != 0 {
                    (ahead.trailing_zeros(), block_base)
                } else {
                    (level.occupied.trailing_zeros(), block_base.saturating_add(WHEEL_SPAN))
                }
            } else {
                // Lower levels only hold slots in the current block, after the current
                // digit (level 0: at it, for overdue timers). Anything else would break
                // the invariants; report it as due now rather than never.
                let ahead = level.occupied & (u64::MAX << digit);
                if ahead != 0 {
                    (ahead.trailing_zeros(), block_base)
                } else {
                    (level.occupied.trailing_zeros(), self.now)
                }
            };
            let start = base.saturating_add(u64::from(slot) << shift).max(self.now);
            let pos = Position { level: level_index as u8, slot: slot as u8 };
            if best.is_none_or(|(_, best_start)| start < best_start) {
                best = Some((pos, start));
            }
        }
        best
    }
}

/// The position of `tick`'s digit at `level`.
fn position(level: usize, tick: u64) -> Position {
    Position { level: level as u8, slot: ((tick >> (SLOT_BITS * level as u32)) & SLOT_MASK) as u8 }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    use std::collections::{BTreeMap, BTreeSet};
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{Arc, Mutex};
    use std::task::Wake;
    use std::time::{Duration, Instant};

    use proptest::prelude::*;

    /// A waker that counts its wakes and logs its tag into a shared log.
    #[derive(Debug)]
    struct Probe {
        tag: usize,
        wakes: AtomicUsize,
        log: Arc<Mutex<Vec<usize>>>,
    }

    impl Wake for Probe {
        fn wake(self: Arc<Self>) {
            self.wake_by_ref();
        }

        fn wake_by_ref(self: &Arc<Self>) {
            self.wakes.fetch_add(1, Ordering::SeqCst);
            self.log.lock().unwrap_or_else(|e| e.into_inner()).push(self.tag);
        }
    }

    /// Hands out probes that share one log.
    #[derive(Debug, Default)]
    struct Probes {
        log: Arc<Mutex<Vec<usize>>>,
    }

    impl Probes {
        fn probe(&self, tag: usize) -> Arc<Probe> {
            Arc::new(Probe { tag, wakes: AtomicUsize::new(0), log: Arc::clone(&self.log) })
        }

        fn waker(&self, tag: usize) -> Waker {
            Waker::from(self.probe(tag))
        }

        /// Advances `wheel`, wakes what it returned, and returns the woken tags in order.
        fn advance(&self, wheel: &mut Wheel, now: u64) -> Vec<usize> {
            let mut wake = Vec::new();
            wheel.advance(now, &mut wake);
            for waker in wake {
                waker.wake();
            }
            mem::take(&mut *self.log.lock().unwrap_or_else(|e| e.into_inner()))
        }
    }

    /// Deterministic splitmix64 generator for the randomised tests.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^ (z >> 31)
        }

        /// A delay whose magnitude is spread over every level and beyond the wheel.
        fn delay(&mut self) -> u64 {
            let bits = self.next() % 40;
            self.next() & ((1u64 << bits) - 1)
        }
    }

    fn noop() -> Waker {
        Probes::default().waker(usize::MAX)
    }

    #[test]
    fn fires_at_exact_tick() {
        let probes = Probes::default();
        let mut wheel = Wheel::new();
        let id = wheel.insert(10, probes.waker(1));
        assert_eq!(wheel.len(), 1);
        assert_eq!(wheel.next_expiration(), Some(10));
        assert!(probes.advance(&mut wheel, 9).is_empty());
        assert!(!wheel.poll(id, &probes.waker(1)));
        assert_eq!(probes.advance(&mut wheel, 10), vec![1]);
        assert_eq!(wheel.now(), 10);
        assert!(wheel.is_empty());
        assert_eq!(wheel.next_expiration(), None);
        assert!(wheel.poll(id, &noop()));
        // The entry was freed: its id is stale now.
        assert!(wheel.poll(id, &noop()));
        assert!(!wheel.reset(id, 20));
        assert!(probes.advance(&mut wheel, 100).is_empty());
    }

    #[test]
    fn overdue_fires_on_next_advance() {
        let probes = Probes::default();
        let mut wheel = Wheel::new();
        wheel.advance(1_000, &mut Vec::new());
        let late = wheel.insert(3, probes.waker(1));
        let now = wheel.insert(1_000, probes.waker(2));
        assert_eq!(wheel.next_expiration(), Some(1_000));
        // Same tick, and even an attempt to go backwards, still fires them, in order.
        assert_eq!(probes.advance(&mut wheel, 500), vec![1, 2]);
        assert_eq!(wheel.now(), 1_000);
        assert!(wheel.poll(late, &noop()));
        assert!(wheel.poll(now, &noop()));
    }

    #[test]
    fn never_early_never_late_across_levels() {
        let probes = Probes::default();
        let mut rng = Rng(7);
        let mut wheel = Wheel::new();
        let mut deadlines = BTreeMap::new();
        for tag in 0..3_000 {
            let when = rng.delay();
            wheel.insert(when, probes.waker(tag));
            deadlines.insert(tag, when);
        }
        let mut now = 0;
        while !deadlines.is_empty() {
            let earliest = deadlines.values().copied().min().unwrap_or(u64::MAX);
            let next = wheel.next_expiration();
            assert!(next.is_some_and(|next| next <= earliest && next >= now));
            // Land exactly on a deadline, just before one, or somewhere random.
            let step = match rng.next() % 4 {
                0 => earliest.saturating_sub(now),
                1 => earliest.saturating_sub(now + 1),
                2 => rng.delay(),
                _ => next.unwrap_or(now) - now,
            };
            now += step;
            let woken = probes.advance(&mut wheel, now);
            let expected: BTreeSet<usize> =
                deadlines.iter().filter(|&(_, &when)| when <= now).map(|(&tag, _)| tag).collect();
            assert_eq!(woken.iter().copied().collect::<BTreeSet<_>>(), expected);
            assert_eq!(woken.len(), expected.len());
            let whens: Vec<u64> = woken.iter().map(|tag| deadlines[tag]).collect();
            assert!(whens.windows(2).all(|w| w[0] <= w[1]), "out of order");
            for tag in &woken {
                deadlines.remove(tag);
            }
            assert_eq!(wheel.len(), deadlines.len());
        }
    }

    #[test]
    fn big_jump_fires_all_in_order() {
        let probes = Probes::default();
        let mut wheel = Wheel::new();
        let whens = [1 << 35, 5, 1 << 20, 64, 1 << 12, 63, 1 << 30, 4_095, 1 << 40];
        for (tag, &when) in whens.iter().enumerate() {
            wheel.insert(when, probes.waker(tag));
        }
        let woken = probes.advance(&mut wheel, 1 << 41);
        let mut expected: Vec<usize> = (0..whens.len()).collect();
        expected.sort_by_key(|&tag| whens[tag]);
        assert_eq!(woken, expected);
        assert!(wheel.is_empty());
        assert_eq!(wheel.now(), 1 << 41);
    }

    #[test]
    fn remove_before_fire() {
        let probes = Probes::default();
        let mut wheel = Wheel::new();
        let a = wheel.insert(100, probes.waker(1));
        let b = wheel.insert(100, probes.waker(2));
        let c = wheel.insert(100, probes.waker(3));
        wheel.remove(b);
        assert_eq!(wheel.len(), 2);
        wheel.remove(b); // stale: ignored
        assert_eq!(wheel.len(), 2);
        assert_eq!(probes.advance(&mut wheel, 100), vec![1, 3]);
        wheel.remove(a);
        wheel.remove(c);
        assert_eq!(wheel.entries.len(), 3);
        assert!(wheel.entries.iter().all(|e| e.state == State::Free));
    }

    #[test]
    fn remove_after_fire_frees_entry() {
        let probes = Probes::default();
        let mut wheel = Wheel::new();
        let probe = probes.probe(1);
        let id = wheel.insert(5, Waker::from(Arc::clone(&probe)));
        assert_eq!(probes.advance(&mut wheel, 5), vec![1]);
        assert_eq!(probe.wakes.load(Ordering::SeqCst), 1);
        wheel.remove(id);
        assert!(wheel.entries.iter().all(|e| e.state == State::Free));
        // The slot is reused with a new generation; the old id stays stale.
        let fresh = wheel.insert(50, probes.waker(2));
        assert_eq!(fresh.index, id.index);
        assert_ne!(fresh, id);
        assert!(wheel.poll(id, &noop()));
        wheel.remove(id);
        assert_eq!(wheel.len(), 1);
        assert!(!wheel.poll(fresh, &noop()));
        // Only the latest waker is kept and fired; none of them leak.
        assert_eq!(Arc::strong_count(&probe), 1);
    }

    #[test]
    fn poll_replaces_waker_only_when_needed() {
        let probes = Probes::default();
        let mut wheel = Wheel::new();
        let first = probes.probe(1);
        let second = probes.probe(2);
        let id = wheel.insert(10, Waker::from(Arc::clone(&first)));
        let same = Waker::from(Arc::clone(&first));
        assert!(!wheel.poll(id, &same));
        assert_eq!(Arc::strong_count(&first), 3); // no clone was stored
        assert!(!wheel.poll(id, &Waker::from(Arc::clone(&second))));
        assert_eq!(Arc::strong_count(&first), 2); // old waker dropped
        assert_eq!(probes.advance(&mut wheel, 10), vec![2]);
        assert!(wheel.poll(id, &same));
    }

    #[test]
    fn reset_moves_pending_and_rearms_fired() {
        let probes = Probes::default();
        let mut wheel = Wheel::new();
        let id = wheel.insert(1 << 20, probes.waker(1));
        assert!(wheel.reset(id, 30));
        assert_eq!(wheel.next_expiration(), Some(30));
        assert!(probes.advance(&mut wheel, 29).is_empty());
        assert_eq!(probes.advance(&mut wheel, 30), vec![1]);
        assert!(wheel.is_empty());
        // Fired but not polled: reset re-arms without a waker until polled again.
        assert!(wheel.reset(id, 40));
        assert_eq!(wheel.len(), 1);
        assert!(!wheel.poll(id, &probes.waker(2)));
        assert!(wheel.reset(id, 1 << 33));
        assert!(wheel.reset(id, 35)); // move earlier again
        assert!(probes.advance(&mut wheel, 34).is_empty());
        assert_eq!(probes.advance(&mut wheel, 35), vec![2]);
        assert!(wheel.reset(id, 35)); // re-armed as overdue
        assert!(probes.advance(&mut wheel, 35).is_empty()); // no waker stored
        assert!(wheel.poll(id, &noop()));
        assert!(!wheel.reset(id, 100));
        assert!(wheel.is_empty());
    }

    #[test]
    fn next_expiration_never_late() {
        let mut rng = Rng(99);
        for _ in 0..200 {
            let mut wheel = Wheel::new();
            wheel.advance(rng.next() >> 8, &mut Vec::new());
            let now = wheel.now();
            let mut earliest = u64::MAX;
            for _ in 0..(rng.next() % 8 + 1) {
                let when = now.saturating_add(rng.delay());
                earliest = earliest.min(when);
                wheel.insert(when, noop());
            }
            let next = wheel.next_expiration().unwrap_or(u64::MAX);
            assert!(next <= earliest && next >= now, "{now} {next} {earliest}");
            // Driving the wheel by next_expiration alone reaches the earliest timer.
            let mut wake = Vec::new();
            while wake.is_empty() {
                let next = wheel.next_expiration().unwrap_or(u64::MAX);
                assert!(next <= earliest);
                wheel.advance(next, &mut wake);
            }
            assert_eq!(wheel.now(), earliest);
        }
    }

    #[test]
    fn beyond_top_level_is_clamped_and_reinserted() {
        let probes = Probes::default();
        let mut wheel = Wheel::new();
        let far = 5 * WHEEL_SPAN + 12_345;
        let id = wheel.insert(far, probes.waker(1));
        wheel.insert(u64::MAX, probes.waker(2));
        let next = wheel.next_expiration().unwrap_or(0);
        assert!(next <= far && next >= WHEEL_SPAN - (1 << 30));
        let mut now = 0;
        let mut hops = 0;
        while now < far {
            let next = wheel.next_expiration().unwrap_or(u64::MAX);
            assert!(next <= far);
            now = next;
            let woken = probes.advance(&mut wheel, now);
            assert_eq!(woken.is_empty(), now < far);
            hops += 1;
        }
        assert!(hops <= 20, "{hops} hops");
        assert!(wheel.poll(id, &noop()));
        assert!(probes.advance(&mut wheel, u64::MAX - 1).is_empty());
        assert_eq!(probes.advance(&mut wheel, u64::MAX), vec![2]);
        assert!(wheel.is_empty());
    }

    #[test]
    fn crossing_top_block_boundary() {
        let probes = Probes::default();
        let mut wheel = Wheel::new();
        let now = WHEEL_SPAN - 10;
        wheel.advance(now, &mut Vec::new());
        wheel.insert(WHEEL_SPAN + 5, probes.waker(1));
        wheel.insert(2 * WHEEL_SPAN - 20, probes.waker(2));
        assert_eq!(wheel.next_expiration(), Some(WHEEL_SPAN));
        assert!(probes.advance(&mut wheel, WHEEL_SPAN + 4).is_empty());
        assert_eq!(probes.advance(&mut wheel, WHEEL_SPAN + 5), vec![1]);
        assert!(probes.advance(&mut wheel, 2 * WHEEL_SPAN - 21).is_empty());
        assert_eq!(probes.advance(&mut wheel, 2 * WHEEL_SPAN - 20), vec![2]);
    }

    #[test]
    fn many_timers_insert_remove_is_fast() {
        const N: usize = 100_000;
        let started = Instant::now();
        let mut rng = Rng(3);
        let mut wheel = Wheel::new();
        let waker = noop();
        let ids: Vec<TimerId> = (0..N).map(|_| wheel.insert(rng.delay(), waker.clone())).collect();
        assert_eq!(wheel.len(), N);
        for id in ids.iter().step_by(2) {
            wheel.remove(*id);
        }
        assert_eq!(wheel.len(), N / 2);
        let mut wake = Vec::new();
        wheel.advance(u64::MAX, &mut wake);
        assert_eq!(wake.len(), N / 2);
        for id in &ids {
            wheel.remove(*id);
        }
        assert!(wheel.entries.iter().all(|e| e.state == State::Free));
        // Reuse does not grow the slab.
        for _ in 0..N {
            let id = wheel.insert(wheel.now().saturating_add(rng.delay()), waker.clone());
            wheel.remove(id);
        }
        assert_eq!(wheel.entries.len(), N);
        // Huge jumps over timers parked beyond the wheel cost one visit each, not one per
        // rotation skipped.
        let mut wheel = Wheel::new();
        for _ in 0..1_000 {
            wheel.insert(u64::MAX - (rng.next() >> 20), waker.clone());
        }
        let mut wake = Vec::new();
        for _ in 0..10_000 {
            let now = wheel.now().saturating_add(rng.next() >> 16);
            wheel.advance(now.min(u64::MAX - (1 << 45)), &mut wake);
        }
        assert!(wake.is_empty());
        assert_eq!(wheel.len(), 1_000);
        wheel.advance(u64::MAX, &mut wake);
        assert_eq!(wake.len(), 1_000);
        // Generous even for unoptimised builds; tick-by-tick scanning would take hours.
        assert!(started.elapsed() < Duration::from_secs(10));
    }

    /// One step of the model-based test.
    #[derive(Clone, Debug)]
    enum Op {
        Insert(u64),
        Remove(usize),
        Reset(usize, u64),
        Poll(usize),
        Advance(u64),
    }

    fn delay() -> impl Strategy<Value = u64> {
        prop_oneof![
            0u64..70,
            0u64..5_000,
            0u64..(1 << 24),
            0u64..(1 << 37),
            Just(WHEEL_SPAN),
            (WHEEL_SPAN - 100)..(WHEEL_SPAN + 100),
        ]
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            3 => delay().prop_map(Op::Insert),
            1 => any::<usize>().prop_map(Op::Remove),
            1 => (any::<usize>(), delay()).prop_map(|(i, d)| Op::Reset(i, d)),
            1 => any::<usize>().prop_map(Op::Poll),
            3 => delay().prop_map(Op::Advance),
        ]
    }

    /// Model state of one timer.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    enum Model {
        Pending(u64),
        Fired,
    }

    proptest! {
        #[test]
        fn matches_btreemap_model(
            start in prop_oneof![
                Just(0u64),
                (WHEEL_SPAN - 5_000)..WHEEL_SPAN,
                (u64::MAX - (1 << 38))..=u64::MAX,
            ],
            ops in proptest::collection::vec(op(), 1..200),
        ) {
            let probes = Probes::default();
            let mut wheel = Wheel::new();
            // Start near the interesting edges: the first top-level block boundary and
            // the end of time.
            wheel.advance(start, &mut Vec::new());
            // Every id ever handed out, live or stale, by tag.
            let mut ids: Vec<TimerId> = Vec::new();
            let mut model: BTreeMap<usize, Model> = BTreeMap::new();
            for op in ops {
                let now = wheel.now();
                match op {
                    Op::Insert(d) => {
                        let when = now.saturating_add(d).saturating_sub(3);
                        let tag = ids.len();
                        ids.push(wheel.insert(when, probes.waker(tag)));
                        model.insert(tag, Model::Pending(when));
                    }
                    Op::Remove(i) if !ids.is_empty() => {
                        let tag = i % ids.len();
                        wheel.remove(ids[tag]);
                        model.remove(&tag);
                    }
                    Op::Reset(i, d) if !ids.is_empty() => {
                        let tag = i % ids.len();
                        let when = now.saturating_add(d);
                        let live = wheel.reset(ids[tag], when);
                        prop_assert_eq!(live, model.contains_key(&tag));
                        if live {
                            // A re-armed fired timer has no waker until polled.
                            if model[&tag] == Model::Fired {
                                prop_assert!(!wheel.poll(ids[tag], &probes.waker(tag)));
                            }
                            model.insert(tag, Model::Pending(when));
                        }
                    }
                    Op::Poll(i) if !ids.is_empty() => {
                        let tag = i % ids.len();
                        let ready = wheel.poll(ids[tag], &probes.waker(tag));
                        prop_assert_eq!(ready, !matches!(model.get(&tag), Some(Model::Pending(_))));
                        if ready {
                            model.remove(&tag);
                        }
                    }
                    Op::Advance(d) => {
                        let target = now.saturating_add(d);
                        let woken = probes.advance(&mut wheel, target);
                        let due: Vec<usize> = model
                            .iter()
                            .filter_map(|(&tag, m)| match *m {
                                Model::Pending(when) if when <= target => Some(tag),
                                _ => None,
                            })
                            .collect();
                        prop_assert_eq!(
                            woken.iter().copied().collect::<BTreeSet<_>>(),
                            due.iter().copied().collect::<BTreeSet<_>>()
                        );
                        prop_assert_eq!(woken.len(), due.len());
                        let whens: Vec<u64> = woken
                            .iter()
                            .map(|tag| match model[tag] {
                                Model::Pending(when) => when,
                                Model::Fired => u64::MAX,
                            })
                            .collect();
                        prop_assert!(whens.windows(2).all(|w| w[0] <= w[1]));
                        for tag in due {
                            model.insert(tag, Model::Fired);
                        }
                        prop_assert_eq!(wheel.now(), target);
                    }
                    _ => {}
                }
                let pending: Vec<u64> = model
                    .values()
                    .filter_map(|m| match *m {
                        Model::Pending(when) => Some(when),
                        Model::Fired => None,
                    })
                    .collect();
                prop_assert_eq!(wheel.len(), pending.len());
                let next = wheel.next_expiration();
                match pending.iter().min() {
                    None => prop_assert_eq!(next, None),
                    Some(&earliest) => prop_assert!(
                        next.is_some_and(|n| n <= earliest.max(wheel.now()) && n >= wheel.now())
                    ),
                }
            }
            // Dropping every owner frees every entry.
            for id in &ids {
                wheel.remove(*id);
            }
            prop_assert!(wheel.entries.iter().all(|e| e.state == State::Free && e.waker.is_none()));
        }
    }
}
