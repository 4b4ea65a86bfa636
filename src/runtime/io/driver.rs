//! [`Driver`]: the OS poller, the registration table and the timer wheel of one runtime
//! (or of the fallback thread).
//!
//! # Who turns it
//!
//! The driver has no thread of its own. A multi-thread worker that is about to sleep
//! calls [`Parker::park_split`](crate::runtime::park::Parker::park_split), which tries to
//! take the driver's core (`try_lock`): the winner sleeps in `epoll_wait` with a timeout
//! set by the next timer, the others sleep on their condvars. The current-thread
//! scheduler, the only thread ever to turn its driver, holds the core for its whole
//! `block_on` instead (`Parker::park_held`). [`Driver::unpark`] (a `mio::Waker`) makes
//! `epoll_wait` return. The fallback driver has one thread that does nothing else.
//!
//! # Tokens and the event-after-deregister hazard
//!
//! Each registration gets a slot in a [`TokenTable`] (loom-modelled, see `tokens.rs`);
//! the mio token packs the slot index with the slot's generation. Deregistering removes
//! the socket from epoll, then releases the slot (bumping its generation) and drops the
//! wakers the socket still holds. An event that a concurrent turn harvested before the
//! removal still carries the old token. The turning thread looks tokens up in its own
//! copy of the slab ([`TokenCache`], no lock on a hit), and a slot that copy holds is
//! reused only after the copy has forgotten it. So the stale event reaches the released
//! registration (alive, since the copy holds an `Arc`, but polled by nobody and holding
//! no waker: a no-op), or misses and is dropped by the generation check. Only a
//! generation that wrapped within one turn could let it reach a socket registered later
//! in the same slot, and then as a spurious readiness, not a lost one (`tokens.rs` has
//! the cases). (mio's RUSTSEC-2024-0019 was such a stale event, reaching freed memory.)
//! All of this is safe code: the slab holds `Arc<ScheduledIo>`, never raw pointers.
//!
//! # A turn
//!
//! 1. Ask the time wheel for the next deadline; publish it (`TimeHandle::park_timeout`) so a
//!    timer inserted meanwhile with an earlier deadline unparks us. If slots were
//!    released since the last turn, drop the cache's copies and make the slots reusable.
//! 2. `epoll_wait` (EINTR is a normal wake-up).
//! 3. Map each token to its `ScheduledIo` (through the core's [`TokenCache`], which
//!    needs the slab lock only on a miss), set readiness, collect wakers.
//! 4. Advance the wheel to now and collect the wakers of due timers.
//! 5. Release every lock, then wake (each wake inside `catch_unwind`).

use std::io;
use std::os::fd::RawFd;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::Waker;
use std::time::Duration;

use mio::unix::SourceFd;
use mio::{Events, Poll, Token};

use super::scheduled_io::{wake_all, ScheduledIo};
use super::tokens::{TokenCache, TokenTable};
use crate::io::{Interest, Ready};
use crate::time::driver::TimeHandle;

/// Token of the driver's own waker.
const WAKE_TOKEN: Token = Token(usize::MAX);
const EVENTS_CAPACITY: usize = 1024;

/// The part of the driver only the turning thread touches.
#[derive(Debug)]
pub(crate) struct Core {
    poll: Poll,
    events: Events,
    wake: Vec<Waker>,
    /// The token table as this core last saw it: dispatch without the table's lock.
    cache: TokenCache<ScheduledIo>,
}

/// One runtime's I/O and timer driver.
#[derive(Debug)]
pub(crate) struct Driver {
    core: Mutex<Core>,
    registry: mio::Registry,
    waker: mio::Waker,
    tokens: TokenTable<ScheduledIo>,
    pub(crate) time: TimeHandle,
    shutdown: AtomicBool,
    /// Completed turns (`epoll_wait` returns): how the multi-thread watchdog sees that
    /// somebody is still polling for I/O.
    turns: AtomicU64,
    /// Wakers woken by turns so far (written by the core holder only, like `turns`): an
    /// idle scheduler tells a wake that delivered nothing (its eventfd after token
    /// releases, events for sockets nobody awaits) from one that did (`spin.rs`).
    delivered: AtomicU64,
}

/// A socket's registration with a driver: what `Evented` keeps.
#[derive(Debug)]
pub(crate) struct Registration {
    pub(crate) driver: Arc<Driver>,
    pub(crate) io: Arc<ScheduledIo>,
    token: Token,
    /// The directions epoll watches (`READ_BIT | WRITE_BIT`). It only grows: a socket is
    /// registered for the direction it first waited on, and the other is added the first
    /// time an operation in it would block (see `io::evented`).
    dirs: AtomicU8,
}

/// [`Registration`] direction bits.
const READ_BIT: u8 = 1;
const WRITE_BIT: u8 = 2;

/// The direction bits of `interest`.
#[inline]
fn dir_bits(interest: Interest) -> u8 {
    (if interest.is_readable() { READ_BIT } else { 0 }) | (if interest.is_writable() { WRITE_BIT } else { 0 })
}

/// The epoll interest for direction bits. Reading includes `EPOLLPRI` where epoll has
/// it, so that events say when TCP urgent data is pending (`scheduled_io`, `URGENT`); no
/// other socket type raises it, and it adds no events of its own in normal traffic.
fn mio_interest(bits: u8) -> mio::Interest {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    const READ: mio::Interest = mio::Interest::READABLE.add(mio::Interest::PRIORITY);
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    const READ: mio::Interest = mio::Interest::READABLE;
    match bits {
        READ_BIT => READ,
        WRITE_BIT => mio::Interest::WRITABLE,
        _ => READ.add(mio::Interest::WRITABLE),
    }
}

impl Registration {
    /// Whether epoll watches every direction of `interest` for this socket.
    #[inline]
    pub(crate) fn covers(&self, interest: Interest) -> bool {
        let want = dir_bits(interest);
        self.dirs.load(Ordering::Acquire) & want == want
    }
}

impl Driver {
    /// A new driver with its own epoll instance.
    pub(crate) fn new() -> io::Result<Arc<Driver>> {
        let poll = Poll::new()?;
        let registry = poll.registry().try_clone()?;
        let waker = mio::Waker::new(&registry, WAKE_TOKEN)?;
        Ok(Arc::new(Driver {
            core: Mutex::new(Core {
                poll,
                events: Events::with_capacity(EVENTS_CAPACITY),
                wake: Vec::new(),
                cache: TokenCache::default(),
            }),
            registry,
            waker,
            tokens: TokenTable::new(),
            time: TimeHandle::new(),
            shutdown: AtomicBool::new(false),
            turns: AtomicU64::new(0),
            delivered: AtomicU64::new(0),
        }))
    }

    /// The core, if no other thread is turning the driver.
    pub(crate) fn try_lock_core(&self) -> Option<MutexGuard<'_, Core>> {
        match self.core.try_lock() {
            Ok(g) => Some(g),
            Err(std::sync::TryLockError::Poisoned(p)) => Some(p.into_inner()),
            Err(std::sync::TryLockError::WouldBlock) => None,
        }
    }

    /// The core, waiting for it (the fallback thread).
    pub(crate) fn lock_core(&self) -> MutexGuard<'_, Core> {
        self.core.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Makes a thread blocked in [`Driver::turn`] return.
    pub(crate) fn unpark(&self) {
        // A failed write means the eventfd counter is saturated: a wake-up is pending
        // anyway, so the error carries no information.
        let _ = self.waker.wake();
    }

    /// Whether [`Driver::shutdown`] ran.
    pub(crate) fn is_shutdown(&self) -> bool {
        self.shutdown.load(Ordering::Acquire)
    }

    /// Registers `fd` for read and write readiness (edge-triggered).
    pub(crate) fn register(self: &Arc<Self>, fd: RawFd, interest: Interest) -> io::Result<Registration> {
        if self.is_shutdown() {
            return Err(shutdown_error());
        }
        let bits = dir_bits(interest).max(READ_BIT);
        let io = Arc::new(ScheduledIo::new_empty());
        let token = Token(self.tokens.insert(io.clone())?);
        if let Err(e) = self.registry.register(&mut SourceFd(&fd), token, mio_interest(bits)) {
            self.release(token);
            return Err(e);
        }
        Ok(Registration { driver: self.clone(), io, token, dirs: AtomicU8::new(bits) })
    }

    /// How many turns have completed so far (a turn blocked in `epoll_wait` counts when
    /// it returns).
    pub(crate) fn turns(&self) -> u64 {
        self.turns.load(Ordering::Relaxed)
    }

    /// How many wakers the turns so far have woken (tasks, and threads in `block_on` or
    /// awaiting a `JoinHandle`). Exact for the thread that holds or last held the core.
    pub(crate) fn delivered(&self) -> u64 {
        self.delivered.load(Ordering::Relaxed)
    }

    /// Adds the directions of `interest` to `reg` (`epoll_ctl(MOD)`). epoll re-checks
    /// the socket when it is modified and queues an event if it is ready in a watched
    /// direction, so readiness that arrived before the call is not lost. Callers
    /// serialise calls for one registration.
    pub(crate) fn add_interest(&self, fd: RawFd, reg: &Registration, interest: Interest) -> io::Result<()> {
        let bits = reg.dirs.load(Ordering::Acquire) | dir_bits(interest);
        self.registry.reregister(&mut SourceFd(&fd), reg.token, mio_interest(bits))?;
        reg.dirs.store(bits, Ordering::Release);
        Ok(())
    }

    /// Removes `fd` from epoll, releases its token (reusable at once, or after the next
    /// turn if the driver's cache holds it) and drops the wakers it still holds. Call
    /// before closing `fd`.
    pub(crate) fn deregister(&self, fd: RawFd, reg: &Registration) {
        // Errors here (the fd was already closed or never added) leave nothing to undo.
        let _ = self.registry.deregister(&mut SourceFd(&fd));
        self.release(reg.token);
        reg.io.retire();
    }

    fn release(&self, token: Token) {
        let released = self.tokens.release(token.0);
        if released.wake_driver {
            // Enough released slots wait for a turn to make them reusable (`tokens.rs`).
            // Not by taking the core here: a parker that found it busy would sleep on its
            // condvar with nobody in `epoll_wait`.
            self.unpark();
        }
        // Outside the table lock.
        drop(released.value);
    }

    /// One turn: wait for events up to `timeout` (or the next timer), dispatch them,
    /// fire due timers, wake. See the module doc.
    ///
    /// `after_wait` runs as soon as `epoll_wait` returns, before any task is woken: the
    /// parker uses it to mark the thread awake, so that the wakes below neither signal a
    /// thread that is already running nor pick it as an idle worker.
    pub(crate) fn turn(&self, core: &mut Core, timeout: Option<Duration>, after_wait: impl FnOnce()) {
        let timeout = self.time.park_timeout(timeout);
        let Core { poll, events, wake, cache } = core;
        // Before the wait, off the path from an event to its task.
        cache.forget_released(&self.tokens);
        let res = poll.poll(events, timeout);
        // Only the holder of `core` writes the count: a plain load and store, no
        // read-modify-write (a locked instruction on every turn).
        self.turns.store(self.turns.load(Ordering::Relaxed).wrapping_add(1), Ordering::Relaxed);
        self.time.unparked();
        after_wait();
        if let Err(e) = res {
            if e.kind() != io::ErrorKind::Interrupted {
                // epoll_wait failing for another reason (EBADF, EFAULT) would be a bug;
                // sleep briefly instead of spinning, and keep serving timers.
                std::thread::sleep(Duration::from_millis(1));
            }
        } else {
            for ev in events.iter() {
                let token = ev.token();
                if token == WAKE_TOKEN {
                    continue;
                }
                if let Some(io) = cache.get(&self.tokens, token.0) {
                    io.set_event(Ready::from_mio(ev), ev.is_priority(), wake);
                }
            }
        }
        self.time.process(wake);
        if !wake.is_empty() {
            self.delivered
                .store(self.delivered.load(Ordering::Relaxed).wrapping_add(wake.len() as u64), Ordering::Relaxed);
        }
        wake_all(wake);
    }

    /// Shuts the driver down: every registered socket's waits complete with an error and
    /// every timer's task is woken. Idempotent.
    pub(crate) fn shutdown(&self) {
        if self.shutdown.swap(true, Ordering::AcqRel) {
            return;
        }
        let mut wake = Vec::new();
        let ios: Vec<Arc<ScheduledIo>> = self.tokens.lock().values().cloned().collect();
        for io in &ios {
            io.shutdown(&mut wake);
        }
        self.time.shutdown(&mut wake);
        wake_all(&mut wake);
        self.unpark();
    }

    /// Number of live registrations (tests, diagnostics).
    #[allow(dead_code)]
    pub(crate) fn num_registered(&self) -> usize {
        self.tokens.lock().values().count()
    }
}

/// The error a wait returns once its driver has shut down.
pub(crate) fn shutdown_error() -> io::Error {
    io::Error::other("the blitz-io runtime that drives this socket has shut down")
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::super::tokens::RELEASE_BATCH;
    use super::*;
    use std::os::fd::AsRawFd;

    /// A driver nobody turns (a runtime entered but never driven) must still reuse the
    /// slots of deregistered sockets: its cache holds none of them, so they are freed at
    /// once.
    #[test]
    fn a_driver_never_turned_reuses_released_slots() {
        let driver = Driver::new().unwrap();
        let sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        for _ in 0..10 * RELEASE_BATCH {
            let reg = driver.register(sock.as_raw_fd(), Interest::READABLE).unwrap();
            driver.deregister(sock.as_raw_fd(), &reg);
        }
        let slots = driver.tokens.lock().slots();
        assert_eq!(slots, 1, "one socket at a time needs one slot");
        assert_eq!(driver.num_registered(), 0);
    }
}
