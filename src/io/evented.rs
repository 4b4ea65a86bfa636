//! `Evented<T>`: a non-blocking socket plus its registration; the one readiness loop.
//!
//! # Registration
//!
//! A socket registers with a driver the first time something has to *wait* on it (a
//! future, a `poll_*`), not when it is created: `try_*` calls never need a driver, so a
//! program that only uses them on plain threads starts no runtime machinery. The driver is
//! the current runtime's, or the fallback driver outside a runtime. The registration is
//! kept in a `OnceLock`; a mutex serialises only the one-time initialisation.
//!
//! **A socket stays with that driver** (as a tokio socket stays with its runtime):
//! waits on it progress only while that driver is turned. For a current-thread runtime
//! that means while some thread is inside its `block_on`: a socket that first waited
//! there and is then awaited elsewhere while that runtime sits idle waits until the
//! runtime is driven again. Once that runtime is dropped, waits on the socket fail with
//! "the blitz-io runtime that drives this socket has shut down" (`try_*` calls keep
//! working). Timers differ: a `Sleep` moves to the driver of whoever polls it. Moving a
//! socket's registration (deregister, register with the current driver) is not done:
//! a waiter still parked on the old driver would have to be handed over too.
//!
//! # The three forms of one operation
//!
//! * `try_io`: run the call once; `WouldBlock` becomes `Ok(None)` and clears the cached
//!   readiness (so `readable().await` followed by `try_read` never spins).
//! * `poll_io`: the poll-based loop (`ready? → call → WouldBlock? clear, again`) with the
//!   per-direction waker slot; for `&mut` callers and the `poll_*` methods that adapters
//!   (futures-io, tokio-io, hyper) will use.
//! * `async_io`: the same loop as a future on `&self`, using the waiter list, so any
//!   number of tasks may wait on one socket. Cancel safe: the operation runs only inside
//!   a single poll, so a dropped future has done nothing or everything.
//!
//! Before a socket is registered, `poll_io` and `async_io` run the call once first: a
//! socket that never has to wait (an accepted stream whose request is already queued, a
//! UDP send) is never registered at all, and a new registration starts with no cached
//! readiness (epoll reports the socket's real state when it is added).
//!
//! Each completed operation spends one unit of the task's cooperative budget.
//!
//! # Datagram sockets register the write direction lazily
//!
//! Streams and listeners are registered for both directions at once. A datagram socket
//! ([`Evented::new_datagram`]) is registered for the direction it first has to wait on;
//! the write direction is added (`epoll_ctl(MOD)`, once per socket) the first time a send
//! returns `WouldBlock`. Until then a send is simply tried: the loops below treat an
//! unwatched direction as ready.
//!
//! The reason: the kernel signals `EPOLLOUT` each time a datagram socket's sent buffer is
//! freed, i.e. after every datagram, so a UDP socket watched for writing wakes
//! `epoll_wait` once per message for nothing (UDP ping-pong, perf syscall tracepoints: 2
//! `epoll_wait` per round trip watched, 1 lazy; tokio makes 2). Datagram sends almost
//! never block, so the write direction is rarely added at all.
//!
//! Streams are different: writes routinely wait for flow control, so the `MOD` would be
//! paid by every busy connection. TCP reports `EPOLLOUT` only after a send found the
//! buffer full, so watching it costs nothing; a Unix stream reports it whenever the peer
//! reads, which in request/response traffic arrives together with (just before) the
//! next request and measured *faster* watched than lazy on this machine (64 B
//! ping-pong: 24.1k vs 20.6k round trips/s; the early wake-up hides part of a slow
//! cross-core wake).
//!
//! # Caveats
//!
//! Two tasks *reading* the same stream through `poll_*` (the slot) replace each other's
//! waker: that is a misuse (as with `AsyncRead`); use `&self` futures or split halves.
//!
//! # Drop
//!
//! The socket is deregistered from epoll and its token freed *before* the descriptor is
//! closed, so a recycled descriptor number can never receive this socket's events.

use std::future::Future;
use std::io;
use std::os::fd::AsRawFd;
use std::pin::Pin;
use std::sync::{Mutex, OnceLock, PoisonError};
use std::task::{ready, Context, Poll};

use crate::io::{Interest, Ready};
use crate::runtime::coop;
use crate::runtime::io::driver::{shutdown_error, Registration};
use crate::runtime::io::{Direction, ReadyEvent};

/// A non-blocking socket and its (lazy) driver registration.
pub(crate) struct Evented<T: AsRawFd> {
    io: Option<T>,
    reg: OnceLock<Registration>,
    init: Mutex<()>,
    /// Register the write direction only when a write would block (datagram sockets).
    lazy_write: bool,
}

impl<T: AsRawFd> std::fmt::Debug for Evented<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Evented")
            .field("fd", &self.io.as_ref().map(|io| io.as_raw_fd()))
            .field("registered", &self.reg.get().is_some())
            .finish()
    }
}

impl<T: AsRawFd> Evented<T> {
    /// Wraps `io`, which must already be in non-blocking mode. Registered for both
    /// directions when it first has to wait (streams, listeners).
    pub(crate) fn new(io: T) -> Evented<T> {
        Evented { io: Some(io), reg: OnceLock::new(), init: Mutex::new(()), lazy_write: false }
    }

    /// Wraps a non-blocking datagram socket: epoll watches the write direction only
    /// after a send would block (see the module doc).
    pub(crate) fn new_datagram(io: T) -> Evented<T> {
        Evented { io: Some(io), reg: OnceLock::new(), init: Mutex::new(()), lazy_write: true }
    }

    /// The socket.
    #[inline]
    pub(crate) fn get(&self) -> &T {
        match &self.io {
            Some(io) => io,
            // `io` is only taken in `into_inner`, which consumes `self`.
            None => unreachable!("Evented used after into_inner"),
        }
    }

    /// The registration, made on first use, watching (at least) `interest`.
    #[inline]
    fn registration(&self, interest: Interest) -> io::Result<&Registration> {
        match self.reg.get() {
            Some(r) if r.covers(interest) => Ok(r),
            _ => self.register_slow(interest),
        }
    }

    /// Registers the socket, or adds directions to its registration.
    #[inline(never)]
    fn register_slow(&self, interest: Interest) -> io::Result<&Registration> {
        let _g = self.init.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(r) = self.reg.get() {
            if !r.covers(interest) {
                r.driver.add_interest(self.get().as_raw_fd(), r, interest)?;
            }
            return Ok(r);
        }
        let driver = crate::runtime::context::driver()?;
        let initial = if self.lazy_write { interest } else { interest | Interest::READABLE | Interest::WRITABLE };
        let reg = driver.register(self.get().as_raw_fd(), initial)?;
        Ok(self.reg.get_or_init(|| reg))
    }

    /// For the operation loop: the readiness to wait for on `reg` before trying an
    /// operation in `dir`, or `None` if epoll does not watch `dir` yet (just try; on
    /// `WouldBlock` the caller adds the direction with [`Evented::registration`]).
    #[inline]
    fn poll_op_ready(reg: &Registration, cx: &mut Context<'_>, dir: Direction) -> Poll<io::Result<Option<ReadyEvent>>> {
        if !reg.covers(dir.interest()) {
            return Poll::Ready(Ok(None));
        }
        let ev = ready!(reg.io.poll_ready(cx, dir));
        if ev.is_shutdown {
            return Poll::Ready(Err(shutdown_error()));
        }
        Poll::Ready(Ok(Some(ev)))
    }

    /// The cached readiness of each direction of `interest`, with its tick.
    #[inline]
    fn peek_interest(&self, interest: Interest) -> [Option<ReadyEvent>; 2] {
        let mut seen = [None, None];
        if let Some(r) = self.reg.get() {
            for dir in directions(interest) {
                seen[dir as usize] = r.io.ready_peek(dir);
            }
        }
        seen
    }

    /// Runs `f` once: `Ok(None)` on `WouldBlock`, and the readiness cached before the
    /// call is cleared (so `readable().await` followed by `try_read` does not spin).
    ///
    /// The readiness is observed *before* the call, the same order as the other forms:
    /// an edge the driver delivers while the call runs (data that arrived after the
    /// `EAGAIN`) bumps the tick, so the clear skips it and the next wait sees it. A
    /// tick read after the call would name that edge and erase it, leaving
    /// `readable().await` asleep with data queued.
    #[inline]
    pub(crate) fn try_io<R>(&self, interest: Interest, f: impl FnOnce(&T) -> io::Result<R>) -> io::Result<Option<R>> {
        let seen = self.peek_interest(interest);
        match f(self.get()) {
            Ok(v) => Ok(Some(v)),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                if let Some(r) = self.reg.get() {
                    for ev in seen.into_iter().flatten() {
                        r.io.clear_readiness(ev);
                    }
                }
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }

    /// Waits (slot-based) until the socket is ready for `dir`.
    #[inline]
    pub(crate) fn poll_ready(&self, cx: &mut Context<'_>, dir: Direction) -> Poll<io::Result<ReadyEvent>> {
        let reg = self.registration(dir.interest())?;
        let ev = ready!(reg.io.poll_ready(cx, dir));
        if ev.is_shutdown {
            return Poll::Ready(Err(shutdown_error()));
        }
        Poll::Ready(Ok(ev))
    }

    /// The poll-based readiness loop: runs `f` when ready, retries after `WouldBlock`.
    ///
    /// `drained(&result)` may say that the call consumed all readiness (a short read on a
    /// stream); readiness is then cleared without paying for an extra `EAGAIN` call.
    #[inline]
    pub(crate) fn poll_io<R>(
        &self,
        cx: &mut Context<'_>,
        dir: Direction,
        mut f: impl FnMut(&T) -> io::Result<R>,
        drained: impl Fn(&R) -> bool,
    ) -> Poll<io::Result<R>> {
        ready!(coop::poll_proceed(cx));
        // The registration is looked up once per poll (it never changes once made).
        let reg = match self.reg.get() {
            Some(r) => r,
            None => {
                // Not registered yet: try the call first. A socket that never has to
                // wait is never registered; one that does registers here, and epoll
                // reports its state on registration, so the readiness it gains meanwhile
                // is not lost.
                match f(self.get()) {
                    Ok(v) => {
                        coop::spend();
                        return Poll::Ready(Ok(v));
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                    Err(e) => return Poll::Ready(Err(e)),
                }
                self.registration(dir.interest())?
            }
        };
        loop {
            let ev = ready!(Self::poll_op_ready(reg, cx, dir))?;
            match f(self.get()) {
                Ok(v) => {
                    if let (Some(ev), true) = (ev, drained(&v)) {
                        reg.io.clear_drained(ev);
                    }
                    coop::spend();
                    return Poll::Ready(Ok(v));
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => match ev {
                    Some(ev) => reg.io.clear_readiness(ev),
                    // Now epoll has to watch this direction.
                    None => {
                        self.registration(dir.interest())?;
                    }
                },
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
    }

    /// The readiness loop as a future on `&self` (waiter list: many tasks may wait).
    pub(crate) fn async_io<'a, R, F>(&'a self, interest: Interest, f: F) -> AsyncIo<'a, T, F>
    where
        F: FnMut(&T) -> io::Result<R>,
    {
        AsyncIo { ev: self, interest, key: None, f }
    }

    /// [`Evented::async_io`] for an operation whose input was checked when it was called
    /// (a destination address): `f` gets the checked value; a failed check is the
    /// future's result on its first poll, before any wait for readiness.
    pub(crate) fn async_io_with<'a, A: 'a, R: 'a>(
        &'a self,
        interest: Interest,
        checked: io::Result<A>,
        mut f: impl FnMut(&T, &A) -> io::Result<R> + 'a,
    ) -> impl Future<Output = io::Result<R>> + 'a {
        let (value, mut bad) = match checked {
            Ok(a) => (Some(a), None),
            Err(e) => (None, Some(e)),
        };
        let mut op = self.async_io(interest, move |s| match &value {
            Some(a) => f(s, a),
            None => Err(io::Error::from(io::ErrorKind::InvalidInput)), // never: `bad` comes first
        });
        std::future::poll_fn(move |cx| match bad.take() {
            Some(e) => Poll::Ready(Err(e)),
            None => Pin::new(&mut op).poll(cx),
        })
    }

    /// Waits until the socket has any readiness in `interest` (waiter list). The future
    /// itself, not an `async fn` around it: one small state machine for the
    /// `readable` / `writable` / `ready` methods that return it.
    pub(crate) fn ready(&self, interest: Interest) -> Readiness<'_, T> {
        Readiness { ev: self, interest, key: None }
    }

    /// [`Evented::ready`] completing with `()` (`readable`, `writable`).
    pub(crate) fn ready_unit(&self, interest: Interest) -> Discard<Readiness<'_, T>> {
        Discard(self.ready(interest))
    }

    /// Deregisters and returns the socket.
    pub(crate) fn into_inner(mut self) -> T {
        self.deregister();
        match self.io.take() {
            Some(io) => io,
            None => unreachable!("Evented::into_inner called twice"),
        }
    }

    fn deregister(&mut self) {
        if let (Some(reg), Some(io)) = (self.reg.take(), self.io.as_ref()) {
            reg.driver.deregister(io.as_raw_fd(), &reg);
        }
    }
}

fn directions(interest: Interest) -> impl Iterator<Item = Direction> {
    let r = interest.is_readable().then_some(Direction::Read);
    let w = interest.is_writable().then_some(Direction::Write);
    r.into_iter().chain(w)
}

impl<T: AsRawFd> Drop for Evented<T> {
    fn drop(&mut self) {
        self.deregister();
    }
}

/// Future of [`Evented::ready`]: waits on the waiter list. Dropping it removes its
/// entry (cancel safe: no readiness is consumed by waiting).
pub(crate) struct Readiness<'a, T: AsRawFd> {
    ev: &'a Evented<T>,
    interest: Interest,
    key: Option<usize>,
}

impl<T: AsRawFd> Readiness<'_, T> {
    fn poll_inner(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<ReadyEvent>> {
        let reg = self.ev.registration(self.interest)?;
        let ev = ready!(reg.io.poll_waiter(cx, self.interest, &mut self.key));
        if let Some(k) = self.key.take() {
            reg.io.remove_waiter(k);
        }
        if ev.is_shutdown {
            return Poll::Ready(Err(shutdown_error()));
        }
        Poll::Ready(Ok(ev))
    }
}

impl<T: AsRawFd> Future for Readiness<'_, T> {
    type Output = io::Result<Ready>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<Ready>> {
        self.poll_inner(cx).map_ok(|e| e.ready)
    }
}

/// A readiness future whose `Ok` value is dropped.
pub(crate) struct Discard<F>(F);

impl<F: Future<Output = io::Result<Ready>> + Unpin> Future for Discard<F> {
    type Output = io::Result<()>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll(cx).map_ok(|_| ())
    }
}

impl<T: AsRawFd> Drop for Readiness<'_, T> {
    fn drop(&mut self) {
        if let (Some(k), Some(reg)) = (self.key.take(), self.ev.reg.get()) {
            reg.io.remove_waiter(k);
        }
    }
}

/// Future of [`Evented::async_io`].
pub(crate) struct AsyncIo<'a, T: AsRawFd, F> {
    ev: &'a Evented<T>,
    interest: Interest,
    key: Option<usize>,
    f: F,
}

impl<T: AsRawFd, F> Unpin for AsyncIo<'_, T, F> {}

impl<T: AsRawFd, R, F: FnMut(&T) -> io::Result<R>> Future for AsyncIo<'_, T, F> {
    type Output = io::Result<R>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<R>> {
        ready!(coop::poll_proceed(cx));
        let this = &mut *self;
        if this.ev.reg.get().is_none() {
            // Not registered yet: try the call first (see `poll_io`).
            match (this.f)(this.ev.get()) {
                Ok(v) => {
                    coop::spend();
                    return Poll::Ready(Ok(v));
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
        loop {
            let reg = match this.ev.reg.get() {
                Some(r) if !r.covers(this.interest) => {
                    // Not watched in this direction yet: try first (see the module doc).
                    match (this.f)(this.ev.get()) {
                        Ok(v) => {
                            coop::spend();
                            return Poll::Ready(Ok(v));
                        }
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                        Err(e) => return Poll::Ready(Err(e)),
                    }
                    this.ev.registration(this.interest)?
                }
                _ => this.ev.registration(this.interest)?,
            };
            let ev = ready!(reg.io.poll_waiter(cx, this.interest, &mut this.key));
            if ev.is_shutdown {
                return Poll::Ready(Err(shutdown_error()));
            }
            match (this.f)(this.ev.get()) {
                Ok(v) => {
                    if let Some(k) = this.key.take() {
                        reg.io.remove_waiter(k);
                    }
                    coop::spend();
                    return Poll::Ready(Ok(v));
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => reg.io.clear_readiness(ev),
                Err(e) => {
                    if let Some(k) = this.key.take() {
                        reg.io.remove_waiter(k);
                    }
                    return Poll::Ready(Err(e));
                }
            }
        }
    }
}

impl<T: AsRawFd, F> Drop for AsyncIo<'_, T, F> {
    fn drop(&mut self) {
        if let (Some(k), Some(reg)) = (self.key.take(), self.ev.reg.get()) {
            reg.io.remove_waiter(k);
        }
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    /// `try_io`: an edge that the driver delivers while the call runs (data that came
    /// after the `EAGAIN`) must survive the clear, or `readable().await` sleeps with data
    /// queued. The readiness seen before the call is the one cleared.
    #[test]
    fn try_io_keeps_an_edge_delivered_during_the_call() {
        let (a, _b) = std::os::unix::net::UnixStream::pair().unwrap();
        a.set_nonblocking(true).unwrap();
        let ev = Evented::new(a);
        let reg = ev.registration(Interest::READABLE).unwrap();
        let mut wake = Vec::new();
        // Readiness cached from an earlier edge, already consumed by the peer's side.
        reg.io.set_readiness(Ready::READABLE, &mut wake);
        let r = ev.try_io(Interest::READABLE, |_| {
            // The call fails, and meanwhile the driver reports new data.
            reg.io.set_readiness(Ready::READABLE, &mut Vec::new());
            Err::<(), _>(io::Error::from(io::ErrorKind::WouldBlock))
        });
        assert!(matches!(r, Ok(None)));
        assert!(reg.io.ready_peek(Direction::Read).is_some(), "the edge delivered during the call was erased");

        // Without a new edge the `WouldBlock` clears what it saw (no spinning).
        let r = ev.try_io(Interest::READABLE, |_| Err::<(), _>(io::Error::from(io::ErrorKind::WouldBlock)));
        assert!(matches!(r, Ok(None)));
        assert!(reg.io.ready_peek(Direction::Read).is_none(), "a WouldBlock must clear the readiness it saw");
    }
}
