//! The readiness state of one registered socket, shared by the driver and the tasks
//! that use the socket. Every socket type (TCP, UDP, Unix) goes through this one type.
//!
//! # The readiness word
//!
//! ```text
//!  bit  63 ..... 32 | 31 ...... 16 | 15 .. 11 |   10   |   9  |  8 7   |  6 5   |    4     | 3 .. 0
//!       (unused)    | tick (16 bit) | (unused) | URGENT | LIST | writer | reader | SHUTDOWN | ready
//! ```
//!
//! * **ready bits**: [`Ready`] (readable, writable, read closed, write closed). The driver
//!   ORs in what epoll reported; a task clears a bit when an operation hits
//!   `WouldBlock`.
//! * **tick**: bumped by the driver on every event for this socket.
//! * **SHUTDOWN**: the driver is gone; every wait completes with an error.
//! * **reader / writer**: the state of the waker slot of each direction (below).
//! * **LIST**: the waiter list holds at least one waiting entry.
//! * **URGENT**: the last event reported TCP urgent (out-of-band) data pending
//!   (`EPOLLPRI`). A read stops short at the urgent mark with more data behind it, so
//!   while this bit is set a short read does not count as "drained"
//!   ([`ScheduledIo::clear_drained`] leaves the word alone). Cleared with the readable
//!   bit when a read hits `WouldBlock`.
//!
//! # Why the tick
//!
//! mio is edge-triggered: an event is delivered once, when readiness appears. A task that
//! saw "readable", tried `recv`, and got `WouldBlock`, must clear the bit so it waits for
//! the next edge. But the next edge may have arrived between the task's check and its
//! clear: clearing then would erase it and the task would sleep with data waiting (a lost
//! wake-up). So [`ReadyEvent`] carries the tick the task saw, and
//! [`ScheduledIo::clear_readiness`] clears only if the tick is unchanged. A clear with a
//! stale tick does nothing, and the task retries the operation.
//!
//! # Waiters
//!
//! Two kinds of waiter:
//!
//! * **slots** (`reader`, `writer`): one waker per direction, for the `poll_*` methods
//!   (a `read(&mut self)`, an `AsyncRead` adapter, a read half, `poll_recv_ready`). A
//!   second poller of the same direction replaces the first waker, the same contract as
//!   `AsyncRead`. No lock: the slot's state lives in the readiness word (below).
//! * **list**: any number of waiters with their own interest, for futures on `&self`
//!   (`readable()`, `UdpSocket::recv_from`), under a mutex. Several tasks waiting on one
//!   socket are all woken. Each future owns its entry (a slab key) and removes it when
//!   dropped.
//!
//! # Slot protocol
//!
//! A slot is a cell holding an `Option<Waker>` plus a two-bit state in the word:
//!
//! | state     | meaning                                                         |
//! |-----------|-----------------------------------------------------------------|
//! | `EMPTY`   | nothing to wake (the cell is empty¹); nobody in it              |
//! | `WAITING` | the cell holds the waker to wake on readiness; nobody in it     |
//! | `LOCKED`  | exactly one thread (a poller or the driver) is in the cell      |
//!
//! ¹ Except after a `Waker::clone` panicked in (b) below: a guard then moves the slot
//! back to `EMPTY` with the cell as it was, so the slot is never left `LOCKED`.
//!
//! **Only the thread that moved the state to `LOCKED` touches the cell**, and it leaves
//! `LOCKED` itself. Every transition is a read-modify-write of the one word, so the
//! transitions, the ready bits and the tick are totally ordered with each other.
//!
//! * **Poller** (`poll_ready` found no readiness): (a) `EMPTY | WAITING → LOCKED` in one
//!   CAS, unless the word shows readiness (then done: `Ready`) or the slot is `LOCKED`
//!   (then wake its own waker and return `Pending`: it is polled again at once, and the
//!   holder is a few instructions from leaving); (b) store its waker in the cell (kept if
//!   it `will_wake` the same task); (c) `LOCKED → WAITING` in one RMW that also reads
//!   the ready bits: if readiness arrived while it held the cell, it takes its waker
//!   back out, leaves the slot `EMPTY` instead and returns `Ready`, else `Pending`.
//! * **Driver** (`set_readiness`): (1) one RMW ORs in the ready bits, bumps the tick and
//!   moves every slot the new bits satisfy from `WAITING` to `LOCKED`; (2) takes the
//!   waker out of each cell it locked; (3) one RMW moves those slots `LOCKED → EMPTY`;
//!   (4) wakes them (via the caller, outside everything).
//!
//! **No lost wake-up.** The poller's (c) and the driver's (1) are RMWs of one word, so
//! one comes first. If (c) is first, the slot is `WAITING` with the waker when (1) runs,
//! and the driver takes and wakes it. If (1) is first, (c) reads the new ready bits and
//! the poller returns `Ready`. If (1) lands while the poller holds the cell, the driver
//! leaves the slot alone and (c) sees the bits. A poller that finds the driver in the
//! cell wakes itself, so it is not left waiting on a waker the driver already took.
//!
//! **No data race.** The cell changes hands only through the word: the thread leaving
//! `LOCKED` does so with a release RMW after its last access, the next one enters with
//! an acquire RMW (the driver's (1), or the poller's (a)).
//!
//! This costs the poller two RMWs, the same as a mutex around the slot, and the driver
//! one RMW less (its readiness RMW also locks the slot). Measured against the mutex it
//! replaced, the instruction count is the same (1,170 vs 1,169 per round trip on the
//! 1-connection echo, callgrind): what it buys is that neither side can ever sleep on a
//! contended lock (on the multi-thread runtime the driver and the task's worker meet
//! here), and that the driver never touches the list's mutex while the list is empty.
//! tokio's `AtomicWaker` is the same idea as a separate atomic; folding it into the
//! readiness word lets the RMWs that move the slot also carry the readiness check.
//!
//! # List protocol
//!
//! A poller takes the list mutex, stores or updates its entry, sets `LIST` with an RMW
//! that also reads the ready bits, and unlocks; the last entry to leave clears `LIST`
//! under the mutex. The driver locks the list only when its RMW (1) shows `LIST`. Same
//! argument: if the driver's (1) comes first, the poller's RMW reads the bits; if the
//! poller's comes first, (1) sees `LIST`, and the driver's lock waits for the poller to
//! unlock, so it finds the entry.
//!
//! **An entry the driver woke completes.** The driver takes the waker out of each entry
//! it wakes, so an entry found without its waker was woken by an event for its
//! interest since its last poll. Its next poll completes (re-arming the entry with the
//! poller's waker, for a caller that waits again) even if the ready bits are gone by
//! then: another task sharing the socket may have consumed the readiness and cleared
//! it in between. Re-checking only the bits would send such a waiter back to sleep
//! although the edge it waited for came (tokio's `Readiness` behaves the same way: a
//! woken waiter is done). The driver records in the entry what the events said, and
//! the poll reports that along with the current bits, so `ready()` never completes with
//! an empty set. A `readable()` may therefore complete with nothing left to read, which
//! its docs allow: readiness is a hint, and `try_*` returns `Ok(None)`.
//!
//! Wakers are woken after every lock and slot is released, each inside `catch_unwind`,
//! so a waker that panics cannot stop the driver or poison the lock.
//!
//! # Model checking
//!
//! The word, the lock and the cells come from `crate::loom`, so under
//! `RUSTFLAGS="--cfg loom"` the `loom_tests` below run these protocols through every
//! interleaving: a lost wake-up shows up as a deadlock, an unordered cell access as a
//! data race.

use std::task::{Context, Poll, Waker};

use crate::io::{Interest, Ready};
use crate::loom::cell::UnsafeCell;
use crate::loom::sync::atomic::{AtomicUsize, Ordering::AcqRel, Ordering::Acquire};
use crate::loom::sync::{Mutex, MutexGuard};

const READY_MASK: usize = 0b1111;
const SHUTDOWN: usize = 1 << 4;
/// Shift of the reader slot's state; the writer's is two bits higher.
const SLOT_SHIFT: usize = 5;
const SLOT_MASK: usize = 0b11;
const EMPTY: usize = 0;
const WAITING: usize = 1;
const LOCKED: usize = 2;
const LIST: usize = 1 << 9;
const URGENT: usize = 1 << 10;
const TICK_SHIFT: usize = 16;
const TICK_MASK: usize = 0xffff << TICK_SHIFT;
/// The reader's and the writer's slot state fields.
const READER_FIELD: usize = SLOT_MASK << SLOT_SHIFT;
const WRITER_FIELD: usize = SLOT_MASK << (SLOT_SHIFT + 2);

// The fields of the word do not overlap, and `Direction::shift` names the right one.
const _: () = {
    let fields = [READY_MASK, SHUTDOWN, READER_FIELD, WRITER_FIELD, LIST, URGENT, TICK_MASK];
    let mut i = 0;
    while i < fields.len() {
        let mut j = i + 1;
        while j < fields.len() {
            assert!(fields[i] & fields[j] == 0);
            j += 1;
        }
        i += 1;
    }
    assert!(SLOT_MASK << (SLOT_SHIFT + 2 * Direction::Read as usize) == READER_FIELD);
    assert!(SLOT_MASK << (SLOT_SHIFT + 2 * Direction::Write as usize) == WRITER_FIELD);
};

/// Readiness observed by a task, with the tick it was observed at.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ReadyEvent {
    pub(crate) ready: Ready,
    pub(crate) tick: u16,
    pub(crate) is_shutdown: bool,
}

/// Which waker slot a `poll_ready` caller uses. The discriminant indexes
/// `ScheduledIo::slots` and places the slot's state in the word ([`Direction::shift`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Direction {
    Read = 0,
    Write = 1,
}

impl Direction {
    pub(crate) fn interest(self) -> Interest {
        match self {
            Direction::Read => Interest::READABLE,
            Direction::Write => Interest::WRITABLE,
        }
    }

    /// Shift of this direction's slot state in the word.
    #[inline]
    fn shift(self) -> usize {
        SLOT_SHIFT + 2 * self as usize
    }

    /// The word bits that complete a wait in this direction (see [`ready_mask`]).
    #[inline]
    fn ready_mask(self) -> usize {
        match self {
            Direction::Read => READ_READY,
            Direction::Write => WRITE_READY,
        }
    }
}

/// Word bits that complete a read wait: readable, read closed, shutdown.
const READ_READY: usize = Ready::READABLE.as_usize() | Ready::READ_CLOSED.as_usize() | SHUTDOWN;
/// Word bits that complete a write wait: writable, write closed, shutdown.
const WRITE_READY: usize = Ready::WRITABLE.as_usize() | Ready::WRITE_CLOSED.as_usize() | SHUTDOWN;

/// The word bits that complete a wait for `interest`: a plain AND on the hot paths
/// instead of going through `Ready::intersection`.
#[inline]
fn ready_mask(interest: Interest) -> usize {
    (if interest.is_readable() { READ_READY } else { SHUTDOWN })
        | (if interest.is_writable() { WRITE_READY } else { SHUTDOWN })
}

/// Readiness and waiters of one registered socket.
#[derive(Debug)]
pub(crate) struct ScheduledIo {
    /// The packed word described in the module doc.
    readiness: AtomicUsize,
    /// The slot cells, `[reader, writer]`: accessed only by the thread that moved the
    /// slot to `LOCKED`.
    slots: [UnsafeCell<Option<Waker>>; 2],
    waiters: Mutex<Waiters>,
}

// SAFETY: the slot cells are only touched by the one thread that holds the slot `LOCKED`
// (module doc, "Slot protocol"), and `Waker` is `Send + Sync`; everything else is atomics
// and a mutex.
unsafe impl Sync for ScheduledIo {}
// SAFETY: as above; moving the whole value moves the wakers, which are `Send`.
unsafe impl Send for ScheduledIo {}

#[derive(Debug, Default)]
struct Waiters {
    list: Vec<ListEntry>,
    free: Vec<usize>,
}

#[derive(Debug)]
enum ListEntry {
    /// `delivered`: the readiness of the events that woke this entry since its last
    /// poll (reported by that poll even if the bits are gone by then).
    Waiting {
        interest: Interest,
        waker: Option<Waker>,
        delivered: Ready,
    },
    Free,
}

/// Frees a slot this thread holds `LOCKED` (→ `EMPTY`) when dropped: armed only while
/// the poller runs code that may panic, and forgotten on the normal path.
struct Unlock<'a> {
    word: &'a AtomicUsize,
    field: usize,
}

impl Drop for Unlock<'_> {
    fn drop(&mut self) {
        self.word.fetch_and(!self.field, AcqRel);
    }
}

impl ScheduledIo {
    fn with_word(word: usize) -> ScheduledIo {
        ScheduledIo {
            readiness: AtomicUsize::new(word),
            slots: [UnsafeCell::new(None), UnsafeCell::new(None)],
            waiters: Mutex::new(Waiters::default()),
        }
    }

    /// A new registration with no readiness. epoll reports a socket's current state
    /// when it is added (edge-triggered `EPOLL_CTL_ADD` raises an edge if the socket is
    /// already ready), so nothing is missed; and `Evented` runs an operation once before
    /// registering, so a socket that never has to wait is never registered at all.
    pub(crate) fn new_empty() -> ScheduledIo {
        ScheduledIo::with_word(0)
    }

    /// A registration that starts readable and writable (tests and models start from
    /// "ready" and consume it).
    #[cfg(any(test, loom))]
    pub(crate) fn new() -> ScheduledIo {
        ScheduledIo::with_word((Ready::READABLE | Ready::WRITABLE).as_usize())
    }

    fn lock(&self) -> MutexGuard<'_, Waiters> {
        crate::loom::lock(&self.waiters)
    }

    #[inline]
    fn event(word: usize, interest: Interest) -> ReadyEvent {
        ReadyEvent {
            ready: Ready::from_usize(word & READY_MASK).intersection(interest),
            tick: ((word & TICK_MASK) >> TICK_SHIFT) as u16,
            is_shutdown: word & SHUTDOWN != 0,
        }
    }

    /// The readiness for `interest` now, if any (or shutdown).
    #[inline]
    fn ready_now(&self, interest: Interest) -> Option<ReadyEvent> {
        let word = self.readiness.load(Acquire);
        (word & ready_mask(interest) != 0).then(|| Self::event(word, interest))
    }

    /// Driver side: ORs `ready` into the word, bumps the tick, and collects the wakers of
    /// the waiters it satisfies into `wake` (woken by the caller, outside any lock).
    #[cfg(any(test, loom))]
    #[inline]
    pub(crate) fn set_readiness(&self, ready: Ready, wake: &mut Vec<Waker>) {
        self.deliver(ready.as_usize(), true, wake);
    }

    /// Driver side: ORs `ready` into the word (as `set_readiness`), and whether TCP
    /// urgent data is pending (`URGENT`).
    #[inline]
    pub(crate) fn set_event(&self, ready: Ready, urgent: bool, wake: &mut Vec<Waker>) {
        self.deliver(ready.as_usize() | if urgent { URGENT } else { 0 }, true, wake);
    }

    /// Marks the socket's driver as gone and wakes every waiter.
    pub(crate) fn shutdown(&self, wake: &mut Vec<Waker>) {
        self.deliver(SHUTDOWN, false, wake);
    }

    /// Called once the socket is deregistered: drops every stored waker without waking
    /// it. Nothing polls the socket any more (deregistration needs its owner), so these
    /// are wakers left behind by futures that were dropped; but the driver's token cache
    /// may keep this `ScheduledIo` until its next turn, and a waker kept with it would
    /// keep its task (and through the task, the runtime) alive.
    pub(crate) fn retire(&self) {
        if self.readiness.load(Acquire) & (READER_FIELD | WRITER_FIELD | LIST) == 0 {
            return;
        }
        let mut stale = Vec::new();
        self.deliver(SHUTDOWN, false, &mut stale);
        drop(stale);
    }

    /// The driver's steps (1) to (3) of the slot protocol, then the list: `bits` are ORed
    /// into the word (ready bits, or `SHUTDOWN`, which satisfies every waiter).
    #[inline(always)]
    fn deliver(&self, bits: usize, bump_tick: bool, wake: &mut Vec<Waker>) {
        const READER_WAITING: usize = WAITING << SLOT_SHIFT;
        const WRITER_WAITING: usize = WAITING << (SLOT_SHIFT + 2);
        let tick_one = if bump_tick { 1 << TICK_SHIFT } else { 0 };
        let mut cur = self.readiness.load(Acquire);
        let (new, locked) = loop {
            let tick = cur.wrapping_add(tick_one) & TICK_MASK;
            let mut new = ((cur | bits) & !TICK_MASK) | tick;
            // A `WAITING` field becomes `LOCKED` (`0b01` → `0b10`) when the new word
            // satisfies its direction.
            let mut locked = 0;
            if cur & READER_FIELD == READER_WAITING && new & READ_READY != 0 {
                locked |= READER_FIELD;
            }
            if cur & WRITER_FIELD == WRITER_WAITING && new & WRITE_READY != 0 {
                locked |= WRITER_FIELD;
            }
            new ^= locked; // flips `0b01` to `0b10` in each field in `locked`
            match self.readiness.compare_exchange_weak(cur, new, AcqRel, Acquire) {
                Ok(_) => break (new, locked),
                Err(actual) => cur = actual,
            }
        };
        if locked != 0 {
            for (i, field) in [READER_FIELD, WRITER_FIELD].into_iter().enumerate() {
                if locked & field != 0 {
                    // SAFETY: this thread moved the slot to `LOCKED` above; nobody else
                    // touches the cell until it leaves that state below.
                    wake.extend(self.slots[i].with_mut(|cell| unsafe { (*cell).take() }));
                }
            }
            // `LOCKED` is `0b10`: clearing the field leaves `EMPTY`.
            self.readiness.fetch_and(!locked, AcqRel);
        }
        if new & LIST != 0 {
            let ready = Ready::from_usize(bits & READY_MASK);
            let all = bits & SHUTDOWN != 0;
            let mut w = self.lock();
            for entry in &mut w.list {
                if let ListEntry::Waiting { interest, waker, delivered } = entry {
                    if all || !ready.intersection(*interest).is_empty() {
                        *delivered |= ready.intersection(*interest);
                        wake.extend(waker.take());
                    }
                }
            }
        }
    }

    /// Clears the bits of `event` if no new event arrived since it was observed.
    ///
    /// Closed bits are cleared too: the caller got `WouldBlock`, which proves that the
    /// "closed" report no longer means an operation completes at once (a datagram socket
    /// shut for reading keeps reporting read-closed while `recv` says `EAGAIN`). Keeping
    /// them would make the readiness loop retry forever inside one poll. A stream whose
    /// peer really closed returns `Ok(0)`, never `WouldBlock`, so nothing is lost.
    pub(crate) fn clear_readiness(&self, event: ReadyEvent) {
        self.clear_bits(event, event.ready, 0);
    }

    /// Clears the readable/writable bits of `event` but keeps the closed bits, if no new
    /// event arrived since it was observed: a short stream read consumed the data but a
    /// FIN that came with it is still to be read (the next read returns `Ok(0)`).
    ///
    /// Not while `URGENT` is set: the read then stopped at the urgent mark with data
    /// behind it (a peer's `MSG_OOB` must not stall the reader); the next read goes to
    /// the socket and its `WouldBlock` clears normally.
    pub(crate) fn clear_drained(&self, event: ReadyEvent) {
        self.clear_bits(event, event.ready.without(Ready::READ_CLOSED | Ready::WRITE_CLOSED), URGENT);
    }

    /// Clears `clear` (and, with readability, the urgent report that came with it) in
    /// one read-modify-write, if the tick is still `event`'s and none of the `unless`
    /// bits is set.
    fn clear_bits(&self, event: ReadyEvent, clear: Ready, unless: usize) {
        let clear = clear.as_usize() | if clear.as_usize() & Ready::READABLE.as_usize() != 0 { URGENT } else { 0 };
        let _ = self.readiness.fetch_update(AcqRel, Acquire, |cur| {
            let tick = ((cur & TICK_MASK) >> TICK_SHIFT) as u16;
            (tick == event.tick && cur & unless == 0).then_some(cur & !clear)
        });
    }

    /// The current readiness for `dir` (with its tick), without registering a waker.
    pub(crate) fn ready_peek(&self, dir: Direction) -> Option<ReadyEvent> {
        self.ready_now(dir.interest())
    }

    /// Slot-based wait for one direction (for `&mut` callers and `poll_*` methods).
    #[inline]
    pub(crate) fn poll_ready(&self, cx: &mut Context<'_>, dir: Direction) -> Poll<ReadyEvent> {
        match self.ready_now(dir.interest()) {
            Some(ev) => Poll::Ready(ev),
            None => self.poll_ready_slow(cx, dir),
        }
    }

    /// `poll_ready` when not ready: the poller's steps (a) to (c) of the slot protocol.
    #[inline(never)]
    fn poll_ready_slow(&self, cx: &mut Context<'_>, dir: Direction) -> Poll<ReadyEvent> {
        let (interest, mask, shift) = (dir.interest(), dir.ready_mask(), dir.shift());
        // (a) Enter the slot.
        let mut cur = self.readiness.load(Acquire);
        loop {
            if cur & mask != 0 {
                return Poll::Ready(Self::event(cur, interest));
            }
            if (cur >> shift) & SLOT_MASK == LOCKED {
                // Another poller of this direction, or the driver taking the previous
                // waker: come back at once rather than wait for it.
                cx.waker().wake_by_ref();
                // Under loom this is a spin: tell the model checker to run the holder.
                #[cfg(loom)]
                loom::thread::yield_now();
                return Poll::Pending;
            }
            let locked = (cur & !(SLOT_MASK << shift)) | (LOCKED << shift);
            match self.readiness.compare_exchange_weak(cur, locked, AcqRel, Acquire) {
                Ok(_) => break,
                Err(actual) => cur = actual,
            }
        }
        // (b) Store the waker. A `Waker::clone` that panics must not leave the slot
        // `LOCKED` (every later poll of this direction would wake itself for ever, and
        // the driver would never wake it): the guard frees the slot on unwind.
        let cell = &self.slots[dir as usize];
        let unlock = Unlock { word: &self.readiness, field: SLOT_MASK << shift };
        let old = cell.with_mut(|cell| {
            // SAFETY: this thread moved the slot to `LOCKED` above; nobody else touches
            // the cell until it leaves that state in (c).
            let cell = unsafe { &mut *cell };
            match cell {
                Some(w) if w.will_wake(cx.waker()) => None,
                _ => cell.replace(cx.waker().clone()),
            }
        });
        std::mem::forget(unlock);
        // (c) Leave the slot: `LOCKED` → `WAITING` (`0b10` → `0b01`). The common case
        // (not ready, no concurrent change of the word) is one compare-exchange.
        let cur = self.readiness.load(Acquire);
        if cur & mask == 0 {
            let waiting = (cur & !(SLOT_MASK << shift)) | (WAITING << shift);
            if self.readiness.compare_exchange(cur, waiting, AcqRel, Acquire).is_ok() {
                // A replaced waker is dropped outside the slot (its drop may run any code).
                drop(old);
                return Poll::Pending;
            }
        }
        let ready = self.leave_slot(dir);
        drop(old);
        match ready {
            Some(ev) => Poll::Ready(ev),
            None => Poll::Pending,
        }
    }

    /// Step (c) in general: readiness came while the poller held the slot (or the word
    /// changed under it). Leaves the slot `WAITING`, or `EMPTY` with the waker taken back
    /// out if the word is ready, so that an `EMPTY` slot holds no waker (a socket that
    /// outlives its runtime would otherwise keep the task alive).
    #[cold]
    #[inline(never)]
    fn leave_slot(&self, dir: Direction) -> Option<ReadyEvent> {
        let (interest, mask, shift) = (dir.interest(), dir.ready_mask(), dir.shift());
        let cell = &self.slots[dir as usize];
        let mut unused = None;
        let mut cur = self.readiness.load(Acquire);
        let ready = loop {
            let ready = cur & mask != 0;
            if ready != unused.is_some() {
                // SAFETY: the slot is still `LOCKED` by this thread.
                cell.with_mut(|cell| unsafe {
                    match unused.take() {
                        Some(w) => *cell = Some(w),
                        None => unused = (*cell).take(),
                    }
                });
            }
            let new = (cur & !(SLOT_MASK << shift)) | (if ready { EMPTY } else { WAITING } << shift);
            match self.readiness.compare_exchange_weak(cur, new, AcqRel, Acquire) {
                Ok(_) => break ready.then(|| Self::event(cur, interest)),
                Err(actual) => cur = actual,
            }
        };
        // Dropped outside the slot (a drop may run any code).
        drop(unused);
        ready
    }

    /// List-based wait (for futures on `&self`). `key` is the caller's entry, created on
    /// the first `Pending` and kept until [`ScheduledIo::remove_waiter`].
    pub(crate) fn poll_waiter(
        &self,
        cx: &mut Context<'_>,
        interest: Interest,
        key: &mut Option<usize>,
    ) -> Poll<ReadyEvent> {
        if let Some(ev) = self.ready_now(interest) {
            return Poll::Ready(ev);
        }
        let mut w = self.lock();
        match key {
            Some(k) => {
                if let Some(ListEntry::Waiting { waker, delivered, .. }) = w.list.get_mut(*k) {
                    match waker {
                        Some(old) if old.will_wake(cx.waker()) => {}
                        Some(_) => *waker = Some(cx.waker().clone()),
                        None => {
                            // Woken by an event since the last poll (the driver took the
                            // waker): done, whatever the bits say now ("List protocol"),
                            // reporting at least what the event said.
                            *waker = Some(cx.waker().clone());
                            let said = std::mem::replace(delivered, Ready::EMPTY);
                            drop(w);
                            let mut ev = Self::event(self.readiness.load(Acquire), interest);
                            ev.ready |= said;
                            return Poll::Ready(ev);
                        }
                    }
                }
            }
            None => {
                let entry = ListEntry::Waiting { interest, waker: Some(cx.waker().clone()), delivered: Ready::EMPTY };
                let k = match w.free.pop() {
                    Some(k) => {
                        w.list[k] = entry;
                        k
                    }
                    None => {
                        w.list.push(entry);
                        w.list.len() - 1
                    }
                };
                *key = Some(k);
            }
        }
        // Publish the entry (a no-op RMW if `LIST` is set already) and re-check, under
        // the lock: see "List protocol".
        let word = self.readiness.fetch_or(LIST, AcqRel);
        drop(w);
        if word & ready_mask(interest) != 0 {
            Poll::Ready(Self::event(word, interest))
        } else {
            Poll::Pending
        }
    }

    /// Removes a list waiter (its future completed or was dropped).
    pub(crate) fn remove_waiter(&self, key: usize) {
        let old = {
            let mut w = self.lock();
            match w.list.get_mut(key) {
                Some(e @ ListEntry::Waiting { .. }) => {
                    let old = std::mem::replace(e, ListEntry::Free);
                    w.free.push(key);
                    if w.free.len() == w.list.len() {
                        // The last waiting entry left: the driver may skip the lock.
                        self.readiness.fetch_and(!LIST, AcqRel);
                    }
                    old
                }
                _ => return,
            }
        };
        // The waker (if any) is dropped outside the lock.
        drop(old);
    }

    /// Number of list waiters (tests).
    #[cfg(test)]
    pub(crate) fn num_list_waiters(&self) -> usize {
        self.lock().list.iter().filter(|e| matches!(e, ListEntry::Waiting { .. })).count()
    }
}

/// Wakes every waker in `wakers`, draining it; a panicking waker is contained.
#[inline(always)]
pub(crate) fn wake_all(wakers: &mut Vec<Waker>) {
    // One waker per turn is the common case of a quiet server: popping it costs 44
    // instructions per round trip less than a `Drain` (1-connection echo, callgrind).
    if wakers.len() == 1 {
        if let Some(w) = wakers.pop() {
            wake_one(w);
        }
        return;
    }
    for w in wakers.drain(..) {
        wake_one(w);
    }
}

#[inline]
fn wake_one(w: Waker) {
    let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| w.wake()));
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    use std::task::Wake;

    #[derive(Default)]
    struct Count(AtomicUsize);
    impl Wake for Count {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    #[test]
    fn stale_tick_does_not_clear() {
        let io = ScheduledIo::new();
        let mut cx = Context::from_waker(Waker::noop());
        let Poll::Ready(ev) = io.poll_ready(&mut cx, Direction::Read) else { panic!("starts readable") };
        let mut wake = Vec::new();
        io.set_readiness(Ready::READABLE, &mut wake); // a new edge arrives mid-operation
        io.clear_readiness(ev); // stale: must not erase the new edge
        assert!(io.poll_ready(&mut cx, Direction::Read).is_ready());
        let Poll::Ready(ev) = io.poll_ready(&mut cx, Direction::Read) else { unreachable!() };
        io.clear_readiness(ev);
        assert!(io.poll_ready(&mut cx, Direction::Read).is_pending());
    }

    #[test]
    fn retire_drops_every_waker_without_waking_it() {
        let io = ScheduledIo::new_empty();
        let slot = Arc::new(Count::default());
        let listed = Arc::new(Count::default());
        let reader = Waker::from(slot.clone());
        assert!(io.poll_ready(&mut Context::from_waker(&reader), Direction::Read).is_pending());
        drop(reader);
        let writer = Waker::from(listed.clone());
        let mut key = None;
        assert!(io.poll_waiter(&mut Context::from_waker(&writer), Interest::WRITABLE, &mut key).is_pending());
        drop(writer);
        assert_eq!((Arc::strong_count(&slot), Arc::strong_count(&listed)), (2, 2), "both wakers stored");
        io.retire();
        assert_eq!((Arc::strong_count(&slot), Arc::strong_count(&listed)), (1, 1), "both wakers dropped");
        assert_eq!((slot.0.load(Ordering::SeqCst), listed.0.load(Ordering::SeqCst)), (0, 0), "and not woken");
        io.retire(); // nothing left: a no-op
    }

    #[test]
    fn every_list_waiter_is_woken() {
        let io = ScheduledIo::new();
        let mut cx0 = Context::from_waker(Waker::noop());
        let Poll::Ready(ev) = io.poll_ready(&mut cx0, Direction::Read) else { unreachable!() };
        io.clear_readiness(ev);
        let counts: Vec<Arc<Count>> = (0..3).map(|_| Arc::new(Count::default())).collect();
        let mut keys = vec![None; 3];
        for (c, k) in counts.iter().zip(keys.iter_mut()) {
            let waker = Waker::from(c.clone());
            let mut cx = Context::from_waker(&waker);
            assert!(io.poll_waiter(&mut cx, Interest::READABLE, k).is_pending());
        }
        assert_eq!(io.num_list_waiters(), 3);
        let mut wake = Vec::new();
        io.set_readiness(Ready::WRITABLE, &mut wake);
        assert!(wake.is_empty(), "writable must not wake readers");
        io.set_readiness(Ready::READABLE, &mut wake);
        wake_all(&mut wake);
        for c in &counts {
            assert_eq!(c.0.load(Ordering::SeqCst), 1);
        }
        for k in keys.into_iter().flatten() {
            io.remove_waiter(k);
        }
        assert_eq!(io.num_list_waiters(), 0);
    }

    #[test]
    fn shutdown_wakes_and_reports() {
        let io = ScheduledIo::new();
        let mut cx0 = Context::from_waker(Waker::noop());
        let Poll::Ready(ev) = io.poll_ready(&mut cx0, Direction::Write) else { unreachable!() };
        io.clear_readiness(ev);
        let c = Arc::new(Count::default());
        let waker = Waker::from(c.clone());
        let mut cx = Context::from_waker(&waker);
        assert!(io.poll_ready(&mut cx, Direction::Write).is_pending());
        let mut wake = Vec::new();
        io.shutdown(&mut wake);
        wake_all(&mut wake);
        assert_eq!(c.0.load(Ordering::SeqCst), 1);
        match io.poll_ready(&mut cx, Direction::Write) {
            Poll::Ready(ev) => assert!(ev.is_shutdown),
            Poll::Pending => panic!("shutdown must complete waits"),
        }
    }

    #[test]
    fn would_block_clears_closed_bits_too() {
        let io = ScheduledIo::new_empty();
        let mut wake = Vec::new();
        io.set_readiness(Ready::READ_CLOSED, &mut wake);
        let mut cx = Context::from_waker(Waker::noop());
        let Poll::Ready(ev) = io.poll_ready(&mut cx, Direction::Read) else { panic!("read-closed is readiness") };
        assert!(ev.ready.is_read_closed());
        io.clear_readiness(ev);
        assert!(io.poll_ready(&mut cx, Direction::Read).is_pending(), "a WouldBlock must not leave a spinning bit");
        io.set_readiness(Ready::READ_CLOSED, &mut wake);
        assert!(io.poll_ready(&mut cx, Direction::Read).is_ready(), "a new edge reports it again");
    }

    #[test]
    fn short_read_clear_keeps_a_pending_eof() {
        let io = ScheduledIo::new_empty();
        let mut wake = Vec::new();
        // The last data and the FIN arrive in one event.
        io.set_readiness(Ready::READABLE | Ready::READ_CLOSED, &mut wake);
        let mut cx = Context::from_waker(Waker::noop());
        let Poll::Ready(ev) = io.poll_ready(&mut cx, Direction::Read) else { panic!("readable") };
        io.clear_drained(ev); // a short read took the data
        let Poll::Ready(ev) = io.poll_ready(&mut cx, Direction::Read) else {
            panic!("the EOF must still be readable after a short read")
        };
        assert!(ev.ready.is_read_closed());
    }

    /// An event that reports urgent data marks the readiness seen: a short read then
    /// does not count as drained. The `WouldBlock` clear of readability forgets it.
    #[test]
    fn a_short_read_with_urgent_data_pending_drains_nothing() {
        let io = ScheduledIo::new_empty();
        let mut wake = Vec::new();
        let mut cx = Context::from_waker(Waker::noop());
        io.set_event(Ready::READABLE, true, &mut wake);
        let Poll::Ready(ev) = io.poll_ready(&mut cx, Direction::Read) else { panic!("readable") };
        io.clear_drained(ev);
        assert!(io.ready_peek(Direction::Read).is_some(), "a short read at the urgent mark drained nothing");
        io.clear_readiness(ev); // the next read's WouldBlock
        assert!(io.ready_peek(Direction::Read).is_none());
        io.set_event(Ready::READABLE, false, &mut wake);
        let Poll::Ready(ev) = io.poll_ready(&mut cx, Direction::Read) else { panic!("readable") };
        io.clear_drained(ev);
        assert!(io.ready_peek(Direction::Read).is_none(), "the WouldBlock clear forgot the urgent report");
    }

    /// A waker whose `clone` panics (a foreign executor's bug) must not leave the slot
    /// locked: afterwards a normal waker registers and is woken by the next event.
    #[test]
    fn a_panicking_waker_clone_leaves_the_slot_usable() {
        use std::task::{RawWaker, RawWakerVTable};
        fn clone(_: *const ()) -> RawWaker {
            panic!("clone refused")
        }
        fn noop(_: *const ()) {}
        static VTABLE: RawWakerVTable = RawWakerVTable::new(clone, noop, noop, noop);
        // SAFETY: the vtable's functions ignore the data pointer.
        let bad = unsafe { Waker::from_raw(RawWaker::new(std::ptr::null(), &VTABLE)) };
        let io = ScheduledIo::new_empty();
        let res = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            io.poll_ready(&mut Context::from_waker(&bad), Direction::Read)
        }));
        assert!(res.is_err(), "the clone panics");
        let count = Arc::new(Count::default());
        let good = Waker::from(count.clone());
        assert!(io.poll_ready(&mut Context::from_waker(&good), Direction::Read).is_pending());
        assert_eq!(count.0.load(Ordering::SeqCst), 0, "a locked slot makes the poller wake itself");
        let mut wake = Vec::new();
        io.set_readiness(Ready::READABLE, &mut wake);
        wake_all(&mut wake);
        assert_eq!(count.0.load(Ordering::SeqCst), 1, "the event must wake the registered waker");
    }

    /// Readiness that arrives while the poller holds its slot (here: from inside the
    /// waker's `clone`, the one call between (a) and (c)) makes the poll `Ready` and
    /// leaves no waker behind in the slot.
    #[test]
    fn readiness_during_registration_leaves_no_waker_behind() {
        use std::task::{RawWaker, RawWakerVTable};
        struct Data {
            io: ScheduledIo,
            refs: AtomicUsize,
        }
        fn clone(p: *const ()) -> RawWaker {
            // SAFETY: `p` is the `Data` below, alive for the whole test.
            let d = unsafe { &*p.cast::<Data>() };
            d.refs.fetch_add(1, Ordering::SeqCst);
            let mut wake = Vec::new();
            d.io.set_readiness(Ready::READABLE, &mut wake); // the driver, mid-registration
            assert!(wake.is_empty(), "the slot is locked: the driver must leave it alone");
            RawWaker::new(p, &VTABLE)
        }
        fn drop_ref(p: *const ()) {
            // SAFETY: as in `clone`.
            unsafe { &*p.cast::<Data>() }.refs.fetch_sub(1, Ordering::SeqCst);
        }
        fn noop(_: *const ()) {}
        static VTABLE: RawWakerVTable = RawWakerVTable::new(clone, noop, noop, drop_ref);
        let data = Data { io: ScheduledIo::new_empty(), refs: AtomicUsize::new(1) };
        // SAFETY: the vtable upholds the `RawWaker` contract for `data`, which outlives
        // every waker made from it.
        let waker = unsafe { Waker::from_raw(RawWaker::new((&data as *const Data).cast(), &VTABLE)) };
        let res = data.io.poll_ready(&mut Context::from_waker(&waker), Direction::Read);
        assert!(res.is_ready(), "readiness that came while registering completes the poll");
        assert_eq!(data.refs.load(Ordering::SeqCst), 1, "the slot kept a clone of the waker");
        drop(waker);
    }

    #[test]
    fn new_registration_is_not_ready() {
        let io = ScheduledIo::new_empty();
        let mut cx = Context::from_waker(Waker::noop());
        assert!(io.poll_ready(&mut cx, Direction::Read).is_pending());
        assert!(io.poll_ready(&mut cx, Direction::Write).is_pending());
    }
}

/// Loom models of the readiness protocol. Run with
/// `RUSTFLAGS="--cfg loom" LOOM_MAX_PREEMPTIONS=3 cargo test --release --lib loom`.
///
/// Tasks wait the way a real executor makes them: poll, and on `Pending` block until
/// their waker is called. A lost wake-up leaves a task blocked forever, which loom
/// reports as a deadlock.
#[cfg(all(test, loom))]
mod loom_tests {
    use super::*;
    use crate::loom::sync::{Arc, Condvar, Mutex};
    use loom::thread;
    use std::task::Wake;

    /// A waker that sets a flag; [`Flag::wait`] blocks until it is set, then clears it.
    #[derive(Default)]
    struct Flag {
        woken: Mutex<bool>,
        condvar: Condvar,
    }

    impl Wake for Flag {
        fn wake(self: std::sync::Arc<Self>) {
            self.wake_by_ref();
        }

        fn wake_by_ref(self: &std::sync::Arc<Self>) {
            *crate::loom::lock(&self.woken) = true;
            self.condvar.notify_one();
        }
    }

    impl Flag {
        fn wait(&self) {
            let mut woken = crate::loom::lock(&self.woken);
            while !*woken {
                woken = crate::loom::wait(&self.condvar, woken);
            }
            *woken = false;
        }
    }

    fn flag_waker() -> (std::sync::Arc<Flag>, Waker) {
        let flag = std::sync::Arc::new(Flag::default());
        let waker = Waker::from(flag.clone());
        (flag, waker)
    }

    /// A registration whose read readiness has been consumed (a `recv` hit `WouldBlock`).
    fn not_readable() -> Arc<ScheduledIo> {
        let io = ScheduledIo::new();
        let (_, waker) = flag_waker();
        let mut cx = Context::from_waker(&waker);
        let Poll::Ready(ev) = io.poll_ready(&mut cx, Direction::Read) else { panic!("starts readable") };
        io.clear_readiness(ev);
        assert!(io.ready_peek(Direction::Read).is_none());
        Arc::new(io)
    }

    /// A task waiting in the `dir` slot the way an executor runs it: poll, and on
    /// `Pending` block until its (own, fresh) waker is called; returns the readiness seen.
    fn wait_slot(io: &ScheduledIo, dir: Direction) -> ReadyEvent {
        let (flag, waker) = flag_waker();
        let mut cx = Context::from_waker(&waker);
        loop {
            match io.poll_ready(&mut cx, dir) {
                Poll::Ready(ev) => return ev,
                Poll::Pending => flag.wait(),
            }
        }
    }

    /// The same through the waiter list (a `&self` future); removes its entry at the end,
    /// as the future's completion does.
    fn wait_list(io: &ScheduledIo, interest: Interest) -> ReadyEvent {
        let (flag, waker) = flag_waker();
        let mut cx = Context::from_waker(&waker);
        let mut key = None;
        let ev = loop {
            match io.poll_waiter(&mut cx, interest, &mut key) {
                Poll::Ready(ev) => break ev,
                Poll::Pending => flag.wait(),
            }
        };
        if let Some(k) = key {
            io.remove_waiter(k);
        }
        ev
    }

    /// The driver side of one event: set readiness, then wake outside the lock.
    fn event(io: &ScheduledIo, ready: Ready) {
        let mut wake = Vec::new();
        io.set_readiness(ready, &mut wake);
        wake_all(&mut wake);
    }

    /// Data arrives (the "kernel buffer", a mutex-protected flag: a loom atomic would hit
    /// loom's modification-order bug, tokio-rs/loom#389, where a load after a racing
    /// store and swap may read a value coherence forbids) and the driver reports it,
    /// racing with a
    /// task running the `poll_io` loop: poll readiness, try the operation, clear the
    /// readiness it saw on `WouldBlock`, wait for the waker on `Pending`. The task starts
    /// with the registration's initial (stale) readiness, so the clear can race the
    /// event. It must get the data.
    #[test]
    fn loom_set_readiness_vs_poll_and_clear() {
        crate::loom::model("set_readiness_vs_poll_and_clear", || {
            let io = Arc::new(ScheduledIo::new());
            let data = Arc::new(Mutex::new(false));
            let driver = {
                let (io, data) = (io.clone(), data.clone());
                thread::spawn(move || {
                    *crate::loom::lock(&data) = true;
                    event(&io, Ready::READABLE);
                })
            };
            let (flag, waker) = flag_waker();
            let mut cx = Context::from_waker(&waker);
            loop {
                match io.poll_ready(&mut cx, Direction::Read) {
                    Poll::Ready(ev) => {
                        assert!(ev.ready.is_readable() && !ev.is_shutdown);
                        if std::mem::take(&mut *crate::loom::lock(&data)) {
                            break;
                        }
                        io.clear_readiness(ev); // WouldBlock
                    }
                    Poll::Pending => flag.wait(),
                }
            }
            driver.join().unwrap();
        });
    }

    /// The same race through the waiter list (the `async_io` loop of `&self` futures).
    #[test]
    fn loom_set_readiness_vs_poll_waiter_and_clear() {
        crate::loom::model("set_readiness_vs_poll_waiter_and_clear", || {
            let io = Arc::new(ScheduledIo::new());
            let data = Arc::new(Mutex::new(false));
            let driver = {
                let (io, data) = (io.clone(), data.clone());
                thread::spawn(move || {
                    *crate::loom::lock(&data) = true;
                    event(&io, Ready::READABLE);
                })
            };
            let (flag, waker) = flag_waker();
            let mut cx = Context::from_waker(&waker);
            let mut key = None;
            loop {
                match io.poll_waiter(&mut cx, Interest::READABLE, &mut key) {
                    Poll::Ready(ev) => {
                        if std::mem::take(&mut *crate::loom::lock(&data)) {
                            break;
                        }
                        io.clear_readiness(ev);
                    }
                    Poll::Pending => flag.wait(),
                }
            }
            if let Some(k) = key {
                io.remove_waiter(k);
            }
            driver.join().unwrap();
            assert_eq!(io.num_list_waiters(), 0);
        });
    }

    /// Two list waiters and one event: both are woken and see the readiness.
    #[test]
    fn loom_two_waiters_both_woken() {
        crate::loom::model("two_waiters_both_woken", || {
            let io = not_readable();
            let waiters: Vec<_> = (0..2)
                .map(|_| {
                    let io = io.clone();
                    thread::spawn(move || assert!(wait_list(&io, Interest::READABLE).ready.is_readable()))
                })
                .collect();
            event(&io, Ready::READABLE);
            for w in waiters {
                w.join().unwrap();
            }
            assert_eq!(io.num_list_waiters(), 0);
        });
    }

    /// The driver shuts down while a slot poller and a list poller wait: both complete,
    /// reporting shutdown.
    #[test]
    fn loom_shutdown_vs_poll() {
        crate::loom::model("shutdown_vs_poll", || {
            let io = not_readable();
            let slot = {
                let io = io.clone();
                thread::spawn(move || assert!(wait_slot(&io, Direction::Read).is_shutdown))
            };
            let list = {
                let io = io.clone();
                thread::spawn(move || assert!(wait_list(&io, Interest::READABLE).is_shutdown))
            };
            let mut wake = Vec::new();
            io.shutdown(&mut wake);
            wake_all(&mut wake);
            slot.join().unwrap();
            list.join().unwrap();
        });
    }

    /// A clear with the tick the task saw never erases an event that came after it: at
    /// the end either the socket is still readable or the task saw the latest tick.
    #[test]
    fn loom_stale_clear_keeps_newer_event() {
        crate::loom::model("stale_clear_keeps_newer_event", || {
            let io = Arc::new(ScheduledIo::new());
            let driver = {
                let io = io.clone();
                thread::spawn(move || {
                    event(&io, Ready::READABLE);
                    event(&io, Ready::READABLE);
                })
            };
            let (_, waker) = flag_waker();
            let mut cx = Context::from_waker(&waker);
            let Poll::Ready(seen) = io.poll_ready(&mut cx, Direction::Read) else { panic!("readable from the start") };
            io.clear_readiness(seen);
            driver.join().unwrap();
            // Writable is never cleared here, so peeking it reads the current tick.
            let Some(now) = io.ready_peek(Direction::Write) else { unreachable!() };
            assert_eq!(now.tick, 2);
            if io.ready_peek(Direction::Read).is_none() {
                assert_eq!(seen.tick, now.tick, "a clear with a stale tick erased a newer event");
            }
        });
    }

    /// Two tasks share a socket: one waits in `readable()` (a list entry), the other
    /// consumes the readiness the driver delivers and clears it (its next read got
    /// `EAGAIN`) before the first task polls. The woken waiter must complete, not go
    /// back to sleep with the event it waited for already gone (a deadlock here).
    #[test]
    fn loom_woken_list_waiter_completes_after_another_reader_clears() {
        crate::loom::model("woken_list_waiter_completes_after_another_reader_clears", || {
            let io = not_readable();
            let (flag, waker) = flag_waker();
            let mut cx = Context::from_waker(&waker);
            let mut key = None;
            assert!(io.poll_waiter(&mut cx, Interest::READABLE, &mut key).is_pending());
            let other = {
                let io = io.clone();
                thread::spawn(move || {
                    event(&io, Ready::READABLE);
                    // The other reader takes the data and clears what it saw.
                    if let Some(seen) = io.ready_peek(Direction::Read) {
                        io.clear_readiness(seen);
                    }
                })
            };
            flag.wait();
            let Poll::Ready(ev) = io.poll_waiter(&mut cx, Interest::READABLE, &mut key) else {
                panic!("woken, then sent back to sleep")
            };
            assert!(ev.ready.is_readable(), "completes with what the event said, not an empty set");
            if let Some(k) = key {
                io.remove_waiter(k);
            }
            other.join().unwrap();
        });
    }

    /// A task polls the read slot again with another waker (its future moved to another
    /// task, or a spurious poll) while the driver delivers an event and takes the first
    /// waker: the task must end up woken through the second waker or see the readiness.
    /// Also checks (loom's cell tracking) that the poller and the driver never touch the
    /// slot's cell at the same time.
    #[test]
    fn loom_slot_repoll_with_new_waker_vs_event() {
        crate::loom::model("slot_repoll_with_new_waker_vs_event", || {
            let io = not_readable();
            let (_first_flag, first) = flag_waker();
            assert!(io.poll_ready(&mut Context::from_waker(&first), Direction::Read).is_pending());
            let driver = {
                let io = io.clone();
                thread::spawn(move || event(&io, Ready::READABLE))
            };
            // `wait_slot` polls with a second, fresh waker.
            assert!(wait_slot(&io, Direction::Read).ready.is_readable());
            driver.join().unwrap();
        });
    }

    /// The driver is still taking an old waker from the slot when the task, having seen
    /// that event's readiness and consumed it (`WouldBlock`), registers again: the two
    /// must not meet in the cell (loom's cell tracking), and the task must get the data
    /// of the second event.
    #[test]
    fn loom_slot_register_while_driver_takes() {
        crate::loom::model("slot_register_while_driver_takes", || {
            let io = not_readable();
            let (_first_flag, first) = flag_waker();
            assert!(io.poll_ready(&mut Context::from_waker(&first), Direction::Read).is_pending());
            let data = Arc::new(Mutex::new(false));
            let driver = {
                let (io, data) = (io.clone(), data.clone());
                thread::spawn(move || {
                    event(&io, Ready::READABLE); // an edge with nothing to read
                    *crate::loom::lock(&data) = true;
                    event(&io, Ready::READABLE);
                })
            };
            let (flag, second) = flag_waker();
            let mut cx = Context::from_waker(&second);
            loop {
                match io.poll_ready(&mut cx, Direction::Read) {
                    Poll::Ready(ev) => {
                        if std::mem::take(&mut *crate::loom::lock(&data)) {
                            break;
                        }
                        io.clear_readiness(ev); // WouldBlock
                    }
                    Poll::Pending => flag.wait(),
                }
            }
            driver.join().unwrap();
        });
    }

    /// Two threads poll the same slot (`poll_recv_ready` on a shared socket) while the
    /// driver delivers an event. The contract keeps only one waker, so only the data-race
    /// check (loom's cell tracking) and the end state are asserted: nothing is left
    /// `LOCKED`, and the readiness is there to see.
    #[test]
    fn loom_two_slot_pollers_vs_event() {
        crate::loom::model("two_slot_pollers_vs_event", || {
            let io = not_readable();
            let pollers: Vec<_> = (0..2)
                .map(|_| {
                    let io = io.clone();
                    thread::spawn(move || {
                        let (_flag, waker) = flag_waker();
                        let _ = io.poll_ready(&mut Context::from_waker(&waker), Direction::Read);
                    })
                })
                .collect();
            event(&io, Ready::READABLE);
            for p in pollers {
                p.join().unwrap();
            }
            let word = io.readiness.load(Acquire);
            assert_ne!((word >> SLOT_SHIFT) & SLOT_MASK, LOCKED, "a slot was left locked");
            assert!(io.ready_peek(Direction::Read).is_some());
        });
    }

    /// One list waiter is cancelled (its future dropped) while another waits; then an
    /// event: the one still waiting is woken (fails if the last-but-one removal clears
    /// `LIST`, checked).
    #[test]
    fn loom_cancelled_list_waiter_leaves_the_other_woken() {
        crate::loom::model("cancelled_list_waiter_leaves_the_other_woken", || {
            let io = not_readable();
            let cancelled = {
                let io = io.clone();
                thread::spawn(move || {
                    let (_flag, waker) = flag_waker();
                    let mut key = None;
                    let _ = io.poll_waiter(&mut Context::from_waker(&waker), Interest::READABLE, &mut key);
                    if let Some(k) = key {
                        io.remove_waiter(k);
                    }
                })
            };
            let waiting = {
                let io = io.clone();
                thread::spawn(move || wait_list(&io, Interest::READABLE))
            };
            cancelled.join().unwrap();
            event(&io, Ready::READABLE);
            waiting.join().unwrap();
            assert_eq!(io.num_list_waiters(), 0);
        });
    }

    /// A read half and a write half wait in their slots; a writable-only event must wake
    /// the writer by itself (fails if the writer's slot is matched against the read bits,
    /// checked), and a readable event then the reader.
    #[test]
    fn loom_each_slot_woken_by_its_own_direction() {
        crate::loom::model("each_slot_woken_by_its_own_direction", || {
            let io = Arc::new(ScheduledIo::new_empty());
            let half = |dir: Direction| {
                let io = io.clone();
                thread::spawn(move || assert!(!wait_slot(&io, dir).ready.intersection(dir.interest()).is_empty()))
            };
            let (reader, writer) = (half(Direction::Read), half(Direction::Write));
            event(&io, Ready::WRITABLE);
            writer.join().unwrap();
            event(&io, Ready::READABLE);
            reader.join().unwrap();
        });
    }

    /// A slot waiter and a list waiter on the same socket, one event: both are woken.
    #[test]
    fn loom_slot_and_list_waiters_share_an_event() {
        crate::loom::model("slot_and_list_waiters_share_an_event", || {
            let io = not_readable();
            let slot = {
                let io = io.clone();
                thread::spawn(move || wait_slot(&io, Direction::Read))
            };
            let list = {
                let io = io.clone();
                thread::spawn(move || wait_list(&io, Interest::READABLE))
            };
            event(&io, Ready::READABLE);
            slot.join().unwrap();
            list.join().unwrap();
        });
    }

    /// A driver turn and a shutdown deliver at the same time to a slot waiter: it
    /// completes, and no slot is left locked.
    #[test]
    fn loom_event_vs_shutdown() {
        crate::loom::model("event_vs_shutdown", || {
            let io = not_readable();
            let waiter = {
                let io = io.clone();
                thread::spawn(move || wait_slot(&io, Direction::Read))
            };
            let turn = {
                let io = io.clone();
                thread::spawn(move || event(&io, Ready::READABLE))
            };
            let mut wake = Vec::new();
            io.shutdown(&mut wake);
            wake_all(&mut wake);
            turn.join().unwrap();
            waiter.join().unwrap();
            let word = io.readiness.load(Acquire);
            for dir in [Direction::Read, Direction::Write] {
                assert_ne!((word >> dir.shift()) & SLOT_MASK, LOCKED, "a slot was left locked");
            }
        });
    }

    /// A list waiter is removed (its future dropped, e.g. the socket is being closed)
    /// while the driver delivers an event: nothing panics, and no waker is retained.
    #[test]
    fn loom_remove_waiter_vs_event() {
        crate::loom::model("remove_waiter_vs_event", || {
            let io = not_readable();
            let (flag, waker) = flag_waker();
            let task = {
                let io = io.clone();
                thread::spawn(move || {
                    let mut cx = Context::from_waker(&waker);
                    let mut key = None;
                    let _ = io.poll_waiter(&mut cx, Interest::READABLE, &mut key);
                    if let Some(k) = key {
                        io.remove_waiter(k);
                    }
                })
            };
            event(&io, Ready::READABLE);
            task.join().unwrap();
            assert_eq!(io.num_list_waiters(), 0);
            assert_eq!(std::sync::Arc::strong_count(&flag), 1, "a removed waiter's waker was kept");
        });
    }
}
