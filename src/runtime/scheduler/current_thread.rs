//! The current-thread scheduler: every task runs on the thread inside `block_on`.
//!
//! # Queues
//!
//! * **local**: a plain ring ([`Fifo`]) in `block_on`'s own frame, used when a task is woken on
//!   the driving thread itself (the common case: the driver's own wakes, a task waking
//!   another). No atomics, no lock. Wakers find it through a thread-local that holds
//!   only a pointer to it (see [`CURRENT`]); the loop itself uses it directly.
//! * **remote**: a mutex-protected `VecDeque` for wakes and spawns from other threads,
//!   with an atomic length so the driving thread checks it without locking; a remote push
//!   unparks the driving thread.
//!
//! # The loop (`block_on`)
//!
//! 1. If the main future was woken, poll it; done when it is ready.
//! 2. Run up to [`EVENT_INTERVAL`] tasks (even if the main future woke meanwhile, so a
//!    self-waking main future cannot starve them): local queue first, the remote queue
//!    when it is empty or every [`REMOTE_INTERVAL`] tasks (so remote work cannot starve).
//! 3. If work remains, turn the driver without blocking once per [`EVENT_INTERVAL`] units
//!    of work (fresh I/O readiness and timers); otherwise turn it without blocking for
//!    the idle spin window, if one is open (`spin.rs`: it adapts to how long the thread
//!    stays idle, and is zero while gaps are long), and, if that found nothing, park in
//!    the driver until an event, a timer, or an unpark.
//!
//! # The driver is held for the whole `block_on`
//!
//! No other thread ever turns this runtime's driver: a socket or timer used on another
//! thread registers with the fallback driver, and a second `block_on` waits on its own
//! thread while this one drives (and takes the driver only after this one let go). So `block_on` locks the driver once and keeps it, and
//! the parker runs in held-driver mode (`runtime::park`'s module doc): a park is a load
//! of the parker's state and `epoll_wait`, with no atomic read-modify-write and no lock
//! on either side of the wait. Wakes from the thread itself (a task waking another, the
//! driver waking the main future) never unpark; a wake from another thread writes the
//! eventfd at most once per park.
//!
//! Measured against taking the driver's lock and the parker's state per park (as the
//! multi-thread workers must), on the 1-connection echo: 987 → 939 instructions per
//! round trip (`scripts/callgrind-server.sh blitz-ct 1`), and four locked instructions
//! fewer, two of them between `epoll_wait` returning and the task's `recvfrom`. That
//! stretch (`scripts/critical-path.sh blitz-ct`, six runs each, interleaved with the
//! old build) moved within its noise: medians 0.504 → 0.496 µs (the mio loop: 0.378).
//!
//! Tasks spawned while nobody is in `block_on` wait in the remote queue for the next one.
//! When `block_on` returns, unfinished local tasks move to the remote queue: none is lost.
//!
//! # More than one `block_on`
//!
//! One `block_on` drives (it set `driving`); a `block_on` on another thread meanwhile
//! polls its own future on its own thread and sleeps between wakes
//! ([`wait_or_take_over`]), registered in `waiting`. When the driving `block_on`
//! returns it clears `driving` and wakes every registered one; the first to set
//! `driving` again drives from then on, so tasks and timers its future waits for keep
//! running. A waiter registers before it looks at `driving`, and the driver clears
//! `driving` before it takes the registrations: each side sees the other.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Wake, Waker};
use std::time::Duration;

use super::fifo::Fifo;
use super::spin::Spin;
use crate::runtime::io::{Core, Driver};
use crate::runtime::park::Parker;
use crate::task::owned::OwnedTasks;
use crate::task::Runnable;

/// Tasks run between two non-blocking driver turns.
const EVENT_INTERVAL: u32 = 61;
/// Tasks run between two looks at the remote queue.
const REMOTE_INTERVAL: u32 = 32;

/// State shared with wakers and other threads.
#[derive(Debug)]
pub(crate) struct Shared {
    remote: Mutex<VecDeque<Runnable>>,
    remote_len: AtomicUsize,
    parker: Parker,
    pub(crate) driver: Arc<Driver>,
    shutdown: AtomicBool,
    driving: AtomicBool,
    /// Wakers of `block_on` calls waiting for `driving` to be released (see
    /// [`wait_or_take_over`]).
    waiting: Mutex<Vec<Waker>>,
    /// Every live task of this runtime.
    pub(crate) owned: OwnedTasks,
    /// Limit of the idle spin window (`spin.rs`).
    idle_spin: Duration,
}

thread_local! {
    /// The [`Local`] of the `block_on` running on this thread, or null.
    ///
    /// A pointer in a `Cell` rather than the queue itself: a thread-local without a
    /// destructor needs no lazy registration, so reading it is one load, where a
    /// `RefCell<Option<Local>>` costs a state check and a borrow on every access (31
    /// instructions per round trip on the 1-connection echo, callgrind; the loop itself
    /// now reaches the queue without the thread-local at all).
    static CURRENT: Cell<*const Local> = const { Cell::new(std::ptr::null()) };
}

/// The driving thread's own state, in `block_on`'s frame.
struct Local {
    shared: Arc<Shared>,
    queue: RefCell<Fifo>,
}

impl Shared {
    pub(crate) fn new(driver: Arc<Driver>, idle_spin: Duration) -> Arc<Shared> {
        Arc::new(Shared {
            remote: Mutex::new(VecDeque::new()),
            remote_len: AtomicUsize::new(0),
            parker: Parker::default(),
            driver,
            shutdown: AtomicBool::new(false),
            driving: AtomicBool::new(false),
            waiting: Mutex::new(Vec::new()),
            owned: OwnedTasks::default(),
            idle_spin,
        })
    }

    fn remote(&self) -> MutexGuard<'_, VecDeque<Runnable>> {
        lock(&self.remote)
    }

    /// Whether the runtime is shutting down (wakes then drop their task).
    pub(crate) fn is_shutdown(&self) -> bool {
        self.shutdown.load(Ordering::Acquire)
    }

    /// Queues a task woken or spawned away from this runtime's `block_on` thread (or
    /// while its queue is borrowed) and wakes that thread.
    pub(crate) fn push_remote(&self, runnable: Runnable) {
        let mut remote = self.remote();
        // Checked under the lock `shutdown` drains with: a shutdown that began after the
        // caller's check has drained already, and this task would be left in the queue
        // for good (its owner keeps `Shared` alive: a leak).
        if self.shutdown.load(Ordering::Acquire) {
            drop(remote);
            drop(runnable);
            return;
        }
        remote.push_back(runnable);
        // Counted under the lock, like every change of `remote_len`: a `shutdown` that
        // drains between the push and the count would otherwise leave the count at 1 over
        // an empty queue, and `block_on` would never park again.
        self.remote_len.fetch_add(1, Ordering::Release);
        drop(remote);
        self.parker.unpark(&self.driver);
    }

    /// Stops the scheduler: later wakes drop their task; queued tasks are dropped now.
    pub(crate) fn shutdown(&self) {
        self.shutdown.store(true, Ordering::Release);
        let mut remote = self.remote();
        let queued: Vec<Runnable> = remote.drain(..).collect();
        self.remote_len.store(0, Ordering::Release);
        drop(remote);
        drop(queued);
    }
}

struct MainWaker {
    woken: AtomicBool,
    shared: Arc<Shared>,
}

impl Wake for MainWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }
    fn wake_by_ref(self: &Arc<Self>) {
        // On the driving thread (the driver dispatching an accept, a task waking the
        // main future) the loop sees the flag before it parks again: no unpark, which in
        // held-driver mode would write the eventfd.
        if !self.woken.swap(true, Ordering::AcqRel) && !is_driving_thread(&self.shared) {
            self.shared.parker.unpark(&self.shared.driver);
        }
    }
}

/// Queues a task on the local queue if this thread is in the `block_on` of the runtime
/// whose `Shared` is at `me` (that frame's `Arc` then keeps it alive); otherwise gives
/// the task back for `push_remote` (`scheduler::schedule_task`).
// Inlined into `schedule_task`: left to itself the compiler sometimes keeps it out of
// line, 12 instructions per wake more (callgrind, 1-connection echo).
#[inline]
pub(crate) fn schedule_local(me: *const Shared, runnable: Runnable) -> Option<Runnable> {
    with_current(|local| {
        let Some(local) = local.filter(|l| std::ptr::eq(Arc::as_ptr(&l.shared), me)) else { return Some(runnable) };
        match local.queue.try_borrow_mut() {
            Ok(mut q) => {
                q.push(runnable);
                None
            }
            Err(_) => Some(runnable),
        }
    })
}

/// Calls `f` with the `Local` of the `block_on` running on this thread, if any.
#[inline]
fn with_current<R>(f: impl FnOnce(Option<&Local>) -> R) -> R {
    let ptr = CURRENT.with(Cell::get);
    // SAFETY: a non-null `CURRENT` was set by `block_on` on this thread to a `Local` in
    // its frame, and that frame's `CurrentGuard` resets it before the `Local` is
    // dropped; `f` runs on this thread, within this call, so the frame outlives the
    // reference.
    f(unsafe { ptr.as_ref() })
}

/// Resets [`CURRENT`] when `block_on` ends (even by panic), hands the tasks left in the
/// local queue to the remote queue and leaves held-driver mode (the driver's lock itself
/// is released just before, by `block_on`'s frame).
struct CurrentGuard<'a> {
    prev: *const Local,
    local: &'a Local,
}

impl Drop for CurrentGuard<'_> {
    fn drop(&mut self) {
        CURRENT.with(|c| c.set(self.prev));
        let shared = &self.local.shared;
        shared.parker.leave_held();
        let queue = std::mem::take(&mut *self.local.queue.borrow_mut());
        if !queue.is_empty() {
            let mut remote = shared.remote();
            // Under the lock `shutdown` drains with (see `push_remote`); after a shutdown
            // the tasks are dropped here instead.
            if !shared.shutdown.load(Ordering::Acquire) {
                shared.remote_len.fetch_add(queue.len(), Ordering::Release);
                remote.extend(queue);
            } else {
                drop(remote);
                drop(queue);
            }
        }
        shared.driving.store(false, Ordering::Release);
        // A `block_on` waiting on another thread may drive now (after the store: one that
        // registers after this take sees `driving` false itself).
        let waiting = std::mem::take(&mut *lock(&shared.waiting));
        for w in waiting {
            w.wake();
        }
    }
}

/// Whether the current thread is inside `block_on` of this runtime.
pub(crate) fn is_driving_thread(shared: &Arc<Shared>) -> bool {
    with_current(|l| l.is_some_and(|l| Arc::ptr_eq(&l.shared, shared)))
}

/// Drives the runtime on this thread until `future` completes.
pub(crate) fn block_on<F: Future>(shared: &Arc<Shared>, future: F) -> F::Output {
    let _region = crate::runtime::context::BlockingRegion::enter();
    let mut future = std::pin::pin!(future);
    if shared.driving.swap(true, Ordering::AcqRel) {
        // Another thread drives this runtime: wait for our future, unless that thread's
        // `block_on` returns first and hands the driving to us.
        if let Ok(v) = wait_or_take_over(shared, future.as_mut()) {
            return v;
        }
    }
    drive(shared, future)
}

/// A `block_on` while another thread drives the runtime: polls `future` on this thread,
/// sleeping between wakes, until it completes (`Ok`) or the driving thread's `block_on`
/// returns and this thread wins `driving` (`Err`: the caller drives from then on).
/// Without the hand-over, a future that needs the runtime (a spawned task, a timer of a
/// task) would wait for ever once the driving `block_on` returned.
#[cold]
#[inline(never)]
fn wait_or_take_over<F: Future>(shared: &Shared, mut future: Pin<&mut F>) -> Result<F::Output, ()> {
    let tw = super::ThreadWaker::for_current_thread();
    let waker = Waker::from(tw.clone());
    let mut cx = Context::from_waker(&waker);
    crate::runtime::coop::unconstrained();
    loop {
        if let Poll::Ready(v) = future.as_mut().poll(&mut cx) {
            return Ok(v);
        }
        {
            let mut waiting = lock(&shared.waiting);
            if !waiting.iter().any(|w| w.will_wake(&waker)) {
                waiting.push(waker.clone());
            }
        }
        // After registering: a driver that let go before our registration is seen here,
        // one that lets go after it wakes us (`CurrentGuard`).
        if !shared.driving.load(Ordering::Acquire) && !shared.driving.swap(true, Ordering::AcqRel) {
            lock(&shared.waiting).retain(|w| !w.will_wake(&waker));
            return Err(());
        }
        tw.wait();
    }
}

/// Locks `m`, ignoring poisoning (every critical section here leaves its data whole).
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The scheduler loop of the `block_on` that holds `driving` (see the module doc).
fn drive<F: Future>(shared: &Arc<Shared>, mut future: Pin<&mut F>) -> F::Output {
    let local = Local { shared: shared.clone(), queue: RefCell::new(Fifo::default()) };
    let _guard = CurrentGuard { prev: CURRENT.with(|c| c.replace(&local)), local: &local };
    // Held until `block_on` returns (dropped before `_guard`, so before `driving` is
    // cleared); free: only the `block_on` that set `driving` takes it.
    let mut core = shared.driver.lock_core();
    let core: &mut Core = &mut core;
    shared.parker.enter_held();
    // This thread spawns and frees the runtime's tasks now: recycle their allocations.
    let _task_cache = crate::task::cache::enable_for_scheduler();

    let main = Arc::new(MainWaker { woken: AtomicBool::new(true), shared: shared.clone() });
    let waker = Waker::from(main.clone());
    let mut cx = Context::from_waker(&waker);
    let mut tick: u32 = 0;
    let mut since_turn: u32 = 0;
    let mut spin = Spin::new(shared.idle_spin);
    let work_ready = || main.woken.load(Ordering::Acquire) || has_tasks(shared, &local);
    loop {
        let mut polled_main = false;
        // Look before the swap: in a server the main future (an accept loop) is rarely
        // the one woken, and a swap is a locked instruction on every pass.
        if main.woken.load(Ordering::Acquire) && main.woken.swap(false, Ordering::AcqRel) {
            if let Poll::Ready(v) = poll_main(future.as_mut(), &mut cx) {
                return v;
            }
            since_turn += 1;
            polled_main = true;
        }
        // One batch of tasks, whether or not the main future woke meanwhile: a main
        // future that keeps waking itself (a `yield_now` loop, an exhausted budget) must
        // not starve the tasks.
        let mut ran = 0;
        while ran < EVENT_INTERVAL {
            tick = tick.wrapping_add(1);
            match next_task(shared, &local, tick) {
                Some(task) => crate::task::run(task),
                None => break,
            }
            ran += 1;
        }
        since_turn += ran;
        if ran > 0 || polled_main {
            spin.work_ran();
        }
        if ran == EVENT_INTERVAL || work_ready() {
            // Still busy. Every EVENT_INTERVAL units of work, pick up I/O readiness and
            // due timers without blocking, so neither the tasks nor the main future can
            // starve the driver.
            if since_turn >= EVENT_INTERVAL {
                since_turn = 0;
                shared.driver.turn(core, Some(Duration::ZERO), || {});
            }
        } else {
            since_turn = 0;
            // Idle: spin through a short gap (`spin.rs`), else sleep in the driver.
            let idle_since = spin.begin_idle();
            if let Some(start) = idle_since.filter(|_| spin.window() > Duration::ZERO) {
                // A pending unpark (typically the wake that ended the last idle period,
                // already seen by the loop) is consumed here, before the spin's turns and
                // checks, not by `park_held` after the spin: its zero-timeout turn would
                // start a second idle period with a second spin, two windows would cover
                // a gap of up to twice the window, the second spin would find the work
                // (leaving the window as it is), and the thread would spin through
                // gaps over the limit for good.
                shared.parker.take_held_unpark();
                if spin.spin(start, || {
                    shared.driver.turn(core, Some(Duration::ZERO), || {});
                    work_ready()
                }) {
                    continue;
                }
            }
            let delivered = shared.driver.delivered();
            let slept = shared.parker.park_held(None, |timeout| shared.driver.turn(core, timeout, || {}));
            // Not after a pending unpark's zero-timeout turn: the wake it consumed came
            // before (it is what ended the last idle period), and counting the turn as a
            // short idle period would reopen the window after every wake from another
            // thread.
            if let (true, Some(start)) = (slept, idle_since) {
                spin.end_sleep(start, work_ready() || shared.driver.delivered() != delivered);
            }
        }
    }
}

/// Polls the main future (with a fresh budget), out of line: the main future is
/// usually large (a server's accept loop, inlined whole) and rarely the one woken, and
/// inlined it made `block_on` 8.8 KB of machine code instead of 1.5 KB, with the hot
/// loop spread through it.
#[inline(never)]
fn poll_main<F: Future>(future: Pin<&mut F>, cx: &mut Context<'_>) -> Poll<F::Output> {
    crate::runtime::coop::reset();
    future.poll(cx)
}

fn has_tasks(shared: &Shared, local: &Local) -> bool {
    shared.remote_len.load(Ordering::Acquire) > 0 || !local.queue.borrow().is_empty()
}

// Inlined into the loop: as a call (with its `Option` return) it cost 28 instructions
// per round trip more on the 1-connection echo (callgrind).
#[inline]
fn next_task(shared: &Shared, local: &Local, tick: u32) -> Option<Runnable> {
    let check_remote_first = tick % REMOTE_INTERVAL == 0;
    if check_remote_first {
        if let Some(t) = pop_remote(shared) {
            return Some(t);
        }
    }
    if let Some(t) = local.queue.borrow_mut().pop() {
        return Some(t);
    }
    if check_remote_first {
        return None;
    }
    pop_remote(shared)
}

fn pop_remote(shared: &Shared) -> Option<Runnable> {
    if shared.remote_len.load(Ordering::Acquire) == 0 {
        return None;
    }
    let mut q = shared.remote();
    let t = q.pop_front();
    if t.is_some() {
        shared.remote_len.fetch_sub(1, Ordering::Release);
    }
    t
}
