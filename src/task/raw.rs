//! The task allocation and the code that drives it: [`Runnable`] (run or drop a
//! scheduled task), the waker vtable, and the join-handle side of the output.
//!
//! # Layout
//!
//! One heap allocation per task (recycled per thread by [`super::cache`]), `Cell<F>`: a
//! [`Header`] first (state word, vtable, owner, task-list links, join waker slot), then
//! the stage: the future, later its output. Everything that does not depend on the
//! future's type goes through the header pointer; the five functions that do are in the
//! vtable (`poll`, `cancel`, `read_output`, `drop_output`, `dealloc`), monomorphised per
//! future type.
//!
//! The state machine is in [`super::state`]; read its module doc first. This file only
//! follows it: every function below names the transition it takes and does what the
//! result says.
//!
//! # Why not async-task
//!
//! This crate used async-task until spawn + join was measured at ~18 atomic
//! read-modify-writes per task: the task table held a waker (clone + drop), the join
//! handle held another for `abort`, the table guard held an `Arc` of its shard. Here the
//! table is an intrusive list holding a plain counted reference, abort and shutdown set
//! a bit, a task joins the list only when it first goes idle, and a spawned task that
//! completes before its handle is polled costs about six atomic operations.

use std::alloc::Layout;
use std::any::Any;
use std::cell::UnsafeCell;
use std::future::Future;
use std::marker::PhantomData;
use std::mem::ManuallyDrop;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::ptr::NonNull;
use std::task::{Context, Poll, RawWaker, RawWakerVTable, Waker};

use std::sync::atomic::AtomicU32;

use super::state::{State, ToIdle, ToNotified, ToRunning};
use super::{JoinError, Owner};

/// The type-independent part of a task, at the start of its allocation.
pub(crate) struct Header {
    pub(super) state: State,
    vtable: &'static Vtable,
    /// Who schedules the task and which task list it is in.
    pub(super) owner: Owner,
    /// The shard of the owner's task list this task went into, [`NOT_LISTED`] until the
    /// task first goes idle (see `owned`). Written once, by the thread that owns the
    /// future (`RUNNING`), and read by later owners: the state word's acquire/release
    /// orders it, so relaxed accesses suffice.
    pub(super) shard: AtomicU32,
    /// Task-list links; read and written only under that shard's lock.
    pub(super) links: UnsafeCell<Links>,
    /// The join handle's waker; see invariant 4 of [`super::state`].
    join_waker: UnsafeCell<Option<Waker>>,
}

/// `Header::shard` of a task that is in no task list (yet).
pub(super) const NOT_LISTED: u32 = u32::MAX;

/// Intrusive doubly linked list links (see `owned`).
#[derive(Default)]
pub(crate) struct Links {
    pub(super) prev: Option<NonNull<Header>>,
    pub(super) next: Option<NonNull<Header>>,
    pub(super) linked: bool,
}

struct Vtable {
    /// Polls the future; on `Ready` (or a panic) drops it and stores the output.
    /// Returns true when the future is done.
    poll: unsafe fn(NonNull<Header>) -> bool,
    /// Drops the future and stores a cancelled (or panicked) output.
    cancel: unsafe fn(NonNull<Header>),
    /// Moves the output to `*mut Option<Result<T, JoinError>>`.
    read_output: unsafe fn(NonNull<Header>, *mut ()),
    /// Drops whatever the stage still holds.
    drop_output: unsafe fn(NonNull<Header>),
    /// Frees the allocation.
    dealloc: unsafe fn(NonNull<Header>),
}

enum Stage<F: Future> {
    Running(F),
    Finished(Result<F::Output, JoinError>),
    Consumed,
}

#[repr(C)]
struct Cell<F: Future> {
    header: Header,
    stage: UnsafeCell<Stage<F>>,
}

/// Creates a task for `future`: its first `Runnable` (not yet scheduled) and its join
/// handle, one reference each (see `state`; the task list adds its own when the task
/// first goes idle). Nothing runs.
pub(super) fn new_task<F>(future: F, owner: Owner) -> (Runnable, RawJoin<F::Output>)
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    let cell = Cell {
        header: Header {
            state: State::new(2),
            vtable: &Vtable {
                poll: poll::<F>,
                cancel: cancel::<F>,
                read_output: read_output::<F>,
                drop_output: drop_output::<F>,
                dealloc: dealloc::<F>,
            },
            owner,
            shard: AtomicU32::new(NOT_LISTED),
            links: UnsafeCell::new(Links::default()),
            join_waker: UnsafeCell::new(None),
        },
        stage: UnsafeCell::new(Stage::Running(future)),
    };
    let block = super::cache::allocate(Layout::new::<Cell<F>>()).cast::<Cell<F>>();
    // SAFETY: `allocate` returned a block that fits and aligns a `Cell<F>` and that
    // nothing else references.
    unsafe { block.as_ptr().write(cell) };
    // `Cell` is `repr(C)` with the header first: a pointer to it is a header pointer.
    let ptr: NonNull<Header> = block.cast();
    (Runnable { ptr }, RawJoin { ptr, _output: PhantomData })
}

/// The stage of the task at `ptr`.
///
/// # Safety
///
/// `ptr` came from [`new_task`] with this `F` and the task is alive.
unsafe fn stage<F: Future>(ptr: NonNull<Header>) -> *mut Stage<F> {
    // SAFETY: by the contract, `ptr` is the start of a live `Cell<F>`.
    unsafe { (*ptr.cast::<Cell<F>>().as_ptr()).stage.get() }
}

/// Drops the stage's content in place (the future stays pinned until dropped) and marks
/// it consumed. Returns the payload if a destructor panicked.
///
/// # Safety
///
/// As [`stage`], and the caller has exclusive access to the stage.
unsafe fn clear_stage<F: Future>(ptr: NonNull<Header>) -> Option<Box<dyn Any + Send>> {
    // SAFETY: exclusive access by the contract; after `drop_in_place` the old value is
    // overwritten without being dropped again, also if its destructor panicked.
    unsafe {
        let stage = stage::<F>(ptr);
        let res = catch_unwind(AssertUnwindSafe(|| std::ptr::drop_in_place(stage)));
        std::ptr::write(stage, Stage::Consumed);
        res.err()
    }
}

/// # Safety
///
/// The caller set `RUNNING` on the task at `ptr`, made by [`new_task`] with this `F`.
unsafe fn poll<F: Future>(ptr: NonNull<Header>) -> bool {
    // SAFETY: `RUNNING` gives this thread the future (state invariant 1).
    let Stage::Running(future) = (unsafe { &mut *stage::<F>(ptr) }) else { return true };
    // SAFETY: the future lives in the allocation and is dropped in place, never moved.
    let future = unsafe { Pin::new_unchecked(future) };
    // The waker lent to the future holds no reference: the poller's keeps the task alive.
    // SAFETY: `ptr` is a live task; `ManuallyDrop` keeps the borrowed waker from dropping
    // a reference it does not own.
    let waker = ManuallyDrop::new(unsafe { Waker::from_raw(raw_waker(ptr)) });
    let mut cx = Context::from_waker(&waker);
    let output = match catch_unwind(AssertUnwindSafe(|| future.poll(&mut cx))) {
        Ok(Poll::Pending) => return false,
        Ok(Poll::Ready(v)) => Ok(v),
        Err(payload) => Err(JoinError::panic(payload)),
    };
    // SAFETY: still the owner of the stage.
    let output = match unsafe { clear_stage::<F>(ptr) } {
        None => output,
        // Dropping the future panicked. Whatever is dropped now is user code too, and
        // must not unwind into the worker: the output (its drop may panic as well), or,
        // if the poll itself panicked, the drop's payload (the poll's panic is kept).
        Some(payload) => match output {
            Ok(v) => {
                drop_contained(v);
                Err(JoinError::panic(payload))
            }
            Err(first) => {
                drop_contained(payload);
                Err(first)
            }
        },
    };
    // SAFETY: as above; the stage is `Consumed` (nothing to drop).
    unsafe { std::ptr::write(stage::<F>(ptr), Stage::Finished(output)) };
    true
}

/// # Safety
///
/// As [`poll`].
unsafe fn cancel<F: Future>(ptr: NonNull<Header>) {
    // SAFETY: the caller owns the stage (`RUNNING`).
    let output = match unsafe { clear_stage::<F>(ptr) } {
        None => JoinError::cancelled(),
        Some(payload) => JoinError::panic(payload),
    };
    // SAFETY: as above.
    unsafe { std::ptr::write(stage::<F>(ptr), Stage::Finished(Err(output))) };
}

/// # Safety
///
/// The task is `COMPLETE`, the caller is its join handle (it owns the output), and `dst`
/// points to an `Option<Result<F::Output, JoinError>>`.
unsafe fn read_output<F: Future>(ptr: NonNull<Header>, dst: *mut ()) {
    // SAFETY: the handle owns the stage once the task is complete (state invariant 3).
    let stage = unsafe { &mut *stage::<F>(ptr) };
    match std::mem::replace(stage, Stage::Consumed) {
        Stage::Finished(out) => {
            // SAFETY: `dst` has the type the contract names.
            unsafe { *dst.cast::<Option<Result<F::Output, JoinError>>>() = Some(out) }
        }
        _ => panic!("JoinHandle polled after it returned the task's output"),
    }
}

/// # Safety
///
/// The caller owns the stage (the completing thread without a handle, or the handle).
unsafe fn drop_output<F: Future>(ptr: NonNull<Header>) {
    // A panicking destructor of the output is contained: it has nowhere to go.
    // SAFETY: by the contract.
    drop(unsafe { clear_stage::<F>(ptr) });
}

/// # Safety
///
/// The reference count of the task at `ptr` reached zero.
unsafe fn dealloc<F: Future>(ptr: NonNull<Header>) {
    /// Returns the block even if a field's destructor panics.
    struct Block(NonNull<u8>, Layout);
    impl Drop for Block {
        fn drop(&mut self) {
            // SAFETY: `new_task` allocated the block with this layout; the fields are
            // dropped (or their drop unwound) and nothing references it.
            unsafe { super::cache::deallocate(self.0, self.1) }
        }
    }
    let _block = Block(ptr.cast(), Layout::new::<Cell<F>>());
    // SAFETY: no reference is left, so nothing else can reach the allocation; it holds a
    // `Cell<F>` written by `new_task`, dropped here once.
    unsafe { std::ptr::drop_in_place(ptr.cast::<Cell<F>>().as_ptr()) };
}

/// # Safety
///
/// `ptr` is a live task.
unsafe fn header<'a>(ptr: NonNull<Header>) -> &'a Header {
    // SAFETY: by the contract; callers do not use the reference past a point where the
    // task may be freed.
    unsafe { ptr.as_ref() }
}

/// Frees the task (its last reference was dropped).
///
/// # Safety
///
/// The caller dropped the last reference.
unsafe fn free(ptr: NonNull<Header>) {
    // SAFETY: the vtable is `'static`; the count is zero.
    unsafe {
        let dealloc = header(ptr).vtable.dealloc;
        dealloc(ptr)
    }
}

/// Hands a new `Runnable` (owning one reference) to the task's scheduler.
///
/// # Safety
///
/// The caller owns a reference for the `Runnable` and `NOTIFIED` is set for it.
unsafe fn schedule(ptr: NonNull<Header>, yielded: bool) {
    super::schedule(Runnable { ptr }, yielded);
}

/// A scheduled task: the right to run it once. Owns one reference.
///
/// Dropping a `Runnable` without running it cancels the task: the future is dropped
/// there (unless another thread is polling it, which then drops it).
pub(crate) struct Runnable {
    ptr: NonNull<Header>,
}

// SAFETY: the future and output are `Send` (required by every constructor) and all
// shared state is atomic or lock-protected; a `Runnable` is the unique permission to poll.
unsafe impl Send for Runnable {}

impl Runnable {
    /// The task's address: tells tasks apart in unit tests.
    #[cfg(test)]
    pub(crate) fn addr(&self) -> usize {
        self.ptr.as_ptr() as usize
    }

    /// The task's owner (scheduler, or the blocking pool).
    pub(crate) fn owner(&self) -> &Owner {
        // SAFETY: this `Runnable`'s reference keeps the task alive.
        unsafe { &header(self.ptr).owner }
    }

    /// Queues the task on its scheduler.
    pub(crate) fn schedule(self) {
        super::schedule(self, false);
    }

    /// Runs the task: polls the future once, or drops it if the task was cancelled.
    pub(crate) fn run(self) {
        let ptr = ManuallyDrop::new(self).ptr;
        // SAFETY: the `Runnable`'s reference passes to this function.
        unsafe { run(ptr) }
    }
}

impl Drop for Runnable {
    fn drop(&mut self) {
        let ptr = self.ptr;
        // SAFETY: this `Runnable` owns a reference.
        unsafe {
            match header(ptr).state.transition_to_running(true) {
                ToRunning::Success | ToRunning::Cancelled => cancel_and_complete(ptr),
                ToRunning::Failed => {}
                ToRunning::FailedDealloc => free(ptr),
            }
        }
    }
}

impl std::fmt::Debug for Runnable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // SAFETY: this `Runnable`'s reference keeps the task alive.
        let state = unsafe { header(self.ptr).state.load() };
        f.debug_struct("Runnable").field("state", &state).finish()
    }
}

/// # Safety
///
/// The caller passes in a `Runnable`'s reference.
unsafe fn run(ptr: NonNull<Header>) {
    // SAFETY: the reference passed in keeps the task alive until it is
    // dropped by the transition that says so; `RUNNING` gives the stage to this thread.
    unsafe {
        let h = header(ptr);
        match h.state.transition_to_running(false) {
            ToRunning::Success => {}
            ToRunning::Cancelled => return cancel_and_complete(ptr),
            ToRunning::Failed => return,
            ToRunning::FailedDealloc => return free(ptr),
        }
        if (h.vtable.poll)(ptr) {
            return complete(ptr);
        }
        // Going idle: from now on no queue holds the task, so its runtime's shutdown
        // must find it in the task list. A closed list means the runtime is gone.
        if !super::owned::link(ptr) {
            return cancel_and_complete(ptr);
        }
        match h.state.transition_to_idle() {
            ToIdle::Ok => {}
            ToIdle::OkDealloc => free(ptr),
            ToIdle::OkNotified => schedule(ptr, true),
            ToIdle::Cancelled => cancel_and_complete(ptr),
        }
    }
}

/// Drops the future of a task this thread owns (`RUNNING`) and completes it.
///
/// # Safety
///
/// The caller set `RUNNING` and holds one reference, which this consumes.
unsafe fn cancel_and_complete(ptr: NonNull<Header>) {
    // SAFETY: by the contract.
    unsafe {
        (header(ptr).vtable.cancel)(ptr);
        complete(ptr);
    }
}

/// The output is stored: leave the task list, set `COMPLETE`, hand the output to the
/// handle (or drop it), and drop the caller's reference (and the list's).
///
/// Drops `value`, a panic in its destructor included (user code run on a scheduler's
/// thread must not unwind into it).
fn drop_contained<T>(value: T) {
    let _ = catch_unwind(AssertUnwindSafe(move || drop(value)));
}

/// # Safety
///
/// The caller set `RUNNING`, stored the output and holds one reference.
unsafe fn complete(ptr: NonNull<Header>) {
    // SAFETY: the caller's reference keeps the task alive until the final
    // `ref_dec_n`; the stage and join waker slot are accessed as the state invariants say.
    unsafe {
        let h = header(ptr);
        let listed = super::owned::release(ptr);
        let refs = 1 + usize::from(listed);
        if h.state.complete_and_release(refs) {
            return;
        }
        let prev = h.state.transition_to_complete();
        if !prev.is_join_interested() {
            (h.vtable.drop_output)(ptr);
        } else if prev.is_join_waker_set() {
            // The slot is ours to read until `unset_waker_after_complete`.
            if let Some(waker) = &*h.join_waker.get() {
                let waker = AssertUnwindSafe(waker);
                let _ = catch_unwind(|| waker.wake_by_ref());
            }
            if !h.state.unset_waker_after_complete().is_join_interested() {
                // The handle was dropped meanwhile and left the slot to us. The waker is
                // user code (its drop may panic, e.g. a waker that dropped the handle in
                // `wake_by_ref`): contained like the wake, or it would unwind out of the
                // worker.
                drop_contained((*h.join_waker.get()).take());
            }
        }
        if h.state.ref_dec_n(refs) {
            free(ptr);
        }
    }
}

/// Cancels a task on behalf of its runtime's shutdown: drops the future here if the task
/// is idle, otherwise leaves that to the thread polling it.
///
/// # Safety
///
/// The caller owns one reference (the task list's), which this consumes.
pub(super) unsafe fn shutdown(ptr: NonNull<Header>) {
    // SAFETY: by the contract.
    unsafe {
        if header(ptr).state.transition_to_shutdown() {
            cancel_and_complete(ptr);
        } else if header(ptr).state.ref_dec_n(1) {
            free(ptr);
        }
    }
}

// ---------------------------------------------------------------------------------------
// Waker

static WAKER_VTABLE: RawWakerVTable = RawWakerVTable::new(waker_clone, waker_wake, waker_wake_by_ref, waker_drop);

fn raw_waker(ptr: NonNull<Header>) -> RawWaker {
    RawWaker::new(ptr.as_ptr().cast_const().cast(), &WAKER_VTABLE)
}

unsafe fn waker_clone(data: *const ()) -> RawWaker {
    // SAFETY: the waker being cloned holds (or borrows) a reference.
    let ptr = unsafe { NonNull::new_unchecked(data.cast_mut().cast::<Header>()) };
    // SAFETY: as above.
    unsafe { header(ptr).state.ref_inc() };
    raw_waker(ptr)
}

unsafe fn waker_wake(data: *const ()) {
    // SAFETY: the waker owns a reference, consumed here.
    unsafe {
        let ptr = NonNull::new_unchecked(data.cast_mut().cast::<Header>());
        match header(ptr).state.transition_to_notified_by_val() {
            ToNotified::Submit => schedule(ptr, false),
            ToNotified::DoNothing => {}
            ToNotified::Dealloc => free(ptr),
        }
    }
}

unsafe fn waker_wake_by_ref(data: *const ()) {
    // SAFETY: the waker holds (or borrows) a reference; `Submit` added one for the
    // `Runnable`.
    unsafe {
        let ptr = NonNull::new_unchecked(data.cast_mut().cast::<Header>());
        if header(ptr).state.transition_to_notified_by_ref() == ToNotified::Submit {
            schedule(ptr, false);
        }
    }
}

unsafe fn waker_drop(data: *const ()) {
    // SAFETY: the waker owns a reference, dropped here.
    unsafe {
        let ptr = NonNull::new_unchecked(data.cast_mut().cast::<Header>());
        if header(ptr).state.ref_dec_n(1) {
            free(ptr);
        }
    }
}

// ---------------------------------------------------------------------------------------
// Join handle side

/// The join handle's reference to a task whose output is `T`.
pub(crate) struct RawJoin<T> {
    ptr: NonNull<Header>,
    _output: PhantomData<T>,
}

// SAFETY: the output is only moved out through `&mut self`; everything else is atomic.
unsafe impl<T: Send> Send for RawJoin<T> {}
// SAFETY: `&RawJoin` only reads the state word and sets bits atomically.
unsafe impl<T: Send> Sync for RawJoin<T> {}

impl<T> RawJoin<T> {
    fn header(&self) -> &Header {
        // SAFETY: the handle's reference keeps the task alive.
        unsafe { header(self.ptr) }
    }

    pub(crate) fn is_finished(&self) -> bool {
        self.header().state.load().is_complete()
    }

    /// Aborts the task (see `JoinHandle::abort`).
    pub(crate) fn abort(&self) {
        if self.header().state.transition_to_notified_and_cancel() {
            // SAFETY: the transition added the `Runnable`'s reference and set `NOTIFIED`.
            unsafe { schedule(self.ptr, false) };
        }
    }

    /// Polls for the output: stores the waker to be woken on completion if the task is
    /// not complete.
    pub(crate) fn poll_output(&mut self, cx: &Context<'_>) -> Poll<Result<T, JoinError>> {
        if !self.ready_or_register(cx.waker()) {
            return Poll::Pending;
        }
        let mut out: Option<Result<T, JoinError>> = None;
        // SAFETY: the task is complete and this handle owns its output; `out` has the
        // type `read_output` writes.
        unsafe { (self.header().vtable.read_output)(self.ptr, (&raw mut out).cast()) };
        match out {
            Some(out) => Poll::Ready(out),
            None => Poll::Ready(Err(JoinError::cancelled())),
        }
    }

    /// True when the task is complete; otherwise makes sure `waker` is stored.
    fn ready_or_register(&self, waker: &Waker) -> bool {
        let h = self.header();
        let snapshot = h.state.load();
        if snapshot.is_complete() {
            return true;
        }
        let res = if snapshot.is_join_waker_set() {
            // SAFETY: while `JOIN_WAKER` is set the slot is only read (invariant 4).
            let same = unsafe { (*h.join_waker.get()).as_ref().is_some_and(|w| w.will_wake(waker)) };
            if same {
                return false;
            }
            h.state.unset_join_waker().and_then(|_| self.set_waker(waker.clone()))
        } else {
            self.set_waker(waker.clone())
        };
        match res {
            Ok(_) => false,
            Err(s) => {
                debug_assert!(s.is_complete());
                true
            }
        }
    }

    /// Stores `waker` in the slot (owned by the handle now) and publishes it.
    fn set_waker(&self, waker: Waker) -> Result<super::state::Snapshot, super::state::Snapshot> {
        let h = self.header();
        // SAFETY: `JOIN_WAKER` is clear and the task was not complete: the slot is the
        // handle's (invariant 4).
        unsafe { *h.join_waker.get() = Some(waker) };
        let res = h.state.set_join_waker();
        if res.is_err() {
            // Completed meanwhile, without looking at the slot: it is still ours.
            // SAFETY: as above.
            unsafe { *h.join_waker.get() = None };
        }
        res
    }
}

impl<T> Drop for RawJoin<T> {
    fn drop(&mut self) {
        let ptr = self.ptr;
        // SAFETY: the handle's reference keeps the task alive until it is
        // dropped; the stage and slot are touched only when the transitions give them to
        // the handle.
        unsafe {
            let h = header(ptr);
            let snapshot = h.state.load();
            if snapshot.is_complete() && !snapshot.is_join_waker_set() {
                // Fast path: nothing can change the bits that matter any more.
                (h.vtable.drop_output)(ptr);
                *h.join_waker.get() = None;
                if h.state.drop_join_interest_and_ref() {
                    free(ptr);
                }
                return;
            }
            let (drop_output, drop_waker) = h.state.transition_to_join_handle_dropped();
            if drop_output {
                (h.vtable.drop_output)(ptr);
            }
            if drop_waker {
                *h.join_waker.get() = None;
            }
            if h.state.ref_dec_n(1) {
                free(ptr);
            }
        }
    }
}

#[cfg(test)]
mod test_support {
    use std::future::Future;
    use std::pin::Pin;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{Arc, Mutex, PoisonError};
    use std::task::{Context, Poll, Wake, Waker};

    /// Counts its wakes.
    #[derive(Default)]
    pub(super) struct CountWaker(pub(super) AtomicUsize);

    impl Wake for CountWaker {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    /// Counts drops of the value it is in.
    pub(super) struct DropCount(pub(super) Arc<AtomicUsize>);

    impl Drop for DropCount {
        fn drop(&mut self) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    /// Pending until `polls` polls have happened; leaves its waker in `slot` each time.
    pub(super) struct Parked {
        pub(super) slot: Arc<Mutex<Option<Waker>>>,
        pub(super) polls: usize,
        pub(super) _drop: DropCount,
    }

    impl Future for Parked {
        type Output = DropCount;
        fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<DropCount> {
            if self.polls == 0 {
                return Poll::Ready(DropCount(self._drop.0.clone()));
            }
            self.polls -= 1;
            *self.slot.lock().unwrap_or_else(PoisonError::into_inner) = Some(cx.waker().clone());
            Poll::Pending
        }
    }

    /// A `Parked` future for `polls` pending polls, with its waker slot and drop counter.
    pub(super) fn parked(polls: usize) -> (Parked, Arc<Mutex<Option<Waker>>>, Arc<AtomicUsize>) {
        let slot = Arc::new(Mutex::new(None));
        let drops = Arc::new(AtomicUsize::new(0));
        (Parked { slot: slot.clone(), polls, _drop: DropCount(drops.clone()) }, slot, drops)
    }

    pub(super) fn poll_handle<T>(
        h: &mut crate::task::JoinHandle<T>,
        waker: &Waker,
    ) -> Poll<Result<T, crate::task::JoinError>> {
        Pin::new(h).poll(&mut Context::from_waker(waker))
    }

    pub(super) fn take_waker(slot: &Mutex<Option<Waker>>) -> Option<Waker> {
        slot.lock().unwrap_or_else(PoisonError::into_inner).take()
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use std::sync::atomic::Ordering;
    use std::sync::Arc;
    use std::task::{Poll, Waker};

    use super::test_support::*;
    use crate::task::testing::TestOwner;

    #[test]
    fn output_reaches_a_waiting_handle_and_the_task_is_freed() {
        let t = TestOwner::new();
        let (fut, slot, drops) = parked(1);
        let (r, mut h) = t.owned.bind(fut, t.owner()).ok().expect("open list");
        let cw = Arc::new(CountWaker::default());
        let hw = Waker::from(cw.clone());
        assert!(poll_handle(&mut h, &hw).is_pending());
        r.run();
        assert!(poll_handle(&mut h, &hw).is_pending(), "parked");
        take_waker(&slot).expect("waker stored").wake();
        let mut queued = t.take();
        assert_eq!(queued.len(), 1, "one wake, one runnable");
        queued.pop().expect("runnable").run();
        assert_eq!(cw.0.load(Ordering::SeqCst), 1, "the handle's waker was woken once");
        assert_eq!(drops.load(Ordering::SeqCst), 1, "the future was dropped");
        let Poll::Ready(Ok(out)) = poll_handle(&mut h, &hw) else { panic!("output expected") };
        drop(out);
        assert_eq!(drops.load(Ordering::SeqCst), 2, "and then the output");
        drop(h);
        assert_eq!(Arc::strong_count(&t), 1, "the task was freed (its owner reference too)");
    }

    #[test]
    #[should_panic(expected = "JoinHandle polled after it returned the task's output")]
    fn polling_a_handle_after_its_output_panics() {
        let t = TestOwner::new();
        let (r, mut h) = t.owned.bind(async { 1 }, t.owner()).ok().expect("open list");
        r.run();
        assert!(matches!(poll_handle(&mut h, Waker::noop()), Poll::Ready(Ok(1))));
        let _ = poll_handle(&mut h, Waker::noop());
    }

    #[test]
    fn wakes_during_a_poll_resubmit_once() {
        struct SelfWake(u32);
        impl std::future::Future for SelfWake {
            type Output = u32;
            fn poll(mut self: std::pin::Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> Poll<u32> {
                self.0 += 1;
                if self.0 == 3 {
                    return Poll::Ready(self.0);
                }
                cx.waker().wake_by_ref();
                // A wake by value too (the other transition), on purpose.
                #[allow(clippy::waker_clone_wake)]
                cx.waker().clone().wake();
                Poll::Pending
            }
        }
        let t = TestOwner::new();
        let (r, mut h) = t.owned.bind(SelfWake(0), t.owner()).ok().expect("open list");
        r.run();
        let mut polls = 1;
        loop {
            let q = t.take();
            if q.is_empty() {
                break;
            }
            assert_eq!(q.len(), 1, "two wakes during a poll make one runnable");
            q.into_iter().for_each(|r| r.run());
            polls += 1;
        }
        assert_eq!(polls, 3);
        assert!(matches!(poll_handle(&mut h, Waker::noop()), Poll::Ready(Ok(3))));
        drop(h);
        assert_eq!(Arc::strong_count(&t), 1);
    }

    #[test]
    fn panics_in_poll_and_in_drop_become_the_output() {
        struct PanicOnDrop;
        impl Drop for PanicOnDrop {
            fn drop(&mut self) {
                panic!("drop boom");
            }
        }
        let t = TestOwner::new();
        let (r, mut h) = t.owned.bind(async { panic!("poll boom") }, t.owner()).ok().expect("open list");
        r.run();
        let Poll::Ready(Err(e)) = poll_handle::<()>(&mut h, Waker::noop()) else { panic!("error expected") };
        assert!(e.is_panic());
        drop(h);
        let guard = PanicOnDrop;
        let (r, mut h) = t
            .owned
            .bind(
                async move {
                    let _g = guard;
                    7
                },
                t.owner(),
            )
            .ok()
            .expect("open list");
        r.run();
        let Poll::Ready(Err(e)) = poll_handle(&mut h, Waker::noop()) else { panic!("error expected") };
        assert!(e.is_panic(), "a panic while dropping the finished future is reported");
        drop(h);
        assert_eq!(Arc::strong_count(&t), 1);
    }

    #[test]
    fn abort_idle_task_drops_its_future_on_the_next_run() {
        let t = TestOwner::new();
        let (fut, slot, drops) = parked(usize::MAX);
        let (r, mut h) = t.owned.bind(fut, t.owner()).ok().expect("open list");
        r.run();
        h.abort();
        assert_eq!(drops.load(Ordering::SeqCst), 0, "never dropped by abort itself");
        let q = t.take();
        assert_eq!(q.len(), 1, "abort schedules an idle task");
        q.into_iter().for_each(|r| r.run());
        assert_eq!(drops.load(Ordering::SeqCst), 1);
        assert!(matches!(poll_handle(&mut h, Waker::noop()), Poll::Ready(Err(e)) if e.is_cancelled()));
        h.abort(); // after completion: nothing
        drop(h);
        drop(slot); // the waker the future left
        assert_eq!(t.owned.len(), 0);
        assert_eq!(Arc::strong_count(&t), 1);
    }

    #[test]
    fn detached_output_is_dropped_by_the_completing_thread() {
        let t = TestOwner::new();
        let (fut, _slot, drops) = parked(0);
        let (r, h) = t.owned.bind(fut, t.owner()).ok().expect("open list");
        drop(h);
        r.run();
        assert_eq!(drops.load(Ordering::SeqCst), 2, "future and output both dropped");
        assert_eq!(Arc::strong_count(&t), 1);
    }

    #[test]
    fn dropped_runnable_cancels_and_stale_waker_is_harmless() {
        let t = TestOwner::new();
        let (fut, slot, drops) = parked(usize::MAX);
        let (r, mut h) = t.owned.bind(fut, t.owner()).ok().expect("open list");
        r.run();
        let w = take_waker(&slot).expect("waker");
        w.wake_by_ref();
        drop(t.take()); // the scheduler drops the runnable (shutdown)
        assert_eq!(drops.load(Ordering::SeqCst), 1);
        assert!(matches!(poll_handle(&mut h, Waker::noop()), Poll::Ready(Err(e)) if e.is_cancelled()));
        w.wake(); // complete: nothing is scheduled
        assert!(t.take().is_empty());
        drop(h);
        assert_eq!(Arc::strong_count(&t), 1);
    }
}

#[cfg(all(test, loom))]
mod loom_tests {
    //! Every interleaving of the races in `state`'s module doc, on the real code.
    use std::sync::atomic::Ordering;
    use std::sync::{Arc, Mutex};
    use std::task::{Poll, Waker};

    use super::test_support::*;
    use crate::task::testing::TestOwner;

    fn run_queue(t: &TestOwner) {
        loop {
            let q = t.take();
            if q.is_empty() {
                return;
            }
            q.into_iter().for_each(|r| r.run());
        }
    }

    #[test]
    fn loom_task_wake_from_another_thread_vs_poll() {
        crate::loom::model("task wake vs poll", || {
            let t = TestOwner::new();
            let (fut, slot, drops) = parked(1);
            let (r, mut h) = t.owned.bind(fut, t.owner()).ok().expect("open list");
            let slot2 = slot.clone();
            let waker_thread = loom::thread::spawn(move || {
                // Wakes as soon as the first poll has left its waker.
                loop {
                    if let Some(w) = take_waker(&slot2) {
                        w.wake();
                        return;
                    }
                    loom::thread::yield_now();
                }
            });
            r.run();
            waker_thread.join().expect("waker thread");
            run_queue(&t);
            assert_eq!(drops.load(Ordering::SeqCst), 1, "the future ran to completion");
            assert!(matches!(poll_handle(&mut h, Waker::noop()), Poll::Ready(Ok(_))));
            drop(h);
            assert_eq!(Arc::strong_count(&t), 1, "no leak");
        });
    }

    #[test]
    fn loom_task_two_wakes_make_one_runnable() {
        crate::loom::model("task two wakes", || {
            let t = TestOwner::new();
            let (fut, slot, drops) = parked(1);
            let (r, mut h) = t.owned.bind(fut, t.owner()).ok().expect("open list");
            r.run(); // idle, its waker in `slot`
            let w1 = take_waker(&slot).expect("waker");
            let w2 = w1.clone();
            let t1 = loom::thread::spawn(move || w1.wake());
            let t2 = loom::thread::spawn(move || w2.wake_by_ref());
            t1.join().expect("waker 1");
            t2.join().expect("waker 2");
            let q = t.take();
            assert_eq!(q.len(), 1, "two wakes of an idle task queue it once");
            q.into_iter().for_each(|r| r.run());
            assert_eq!(drops.load(Ordering::SeqCst), 1, "completed");
            assert!(matches!(poll_handle(&mut h, Waker::noop()), Poll::Ready(Ok(_))));
            drop(h);
            assert_eq!(Arc::strong_count(&t), 1, "no leak");
        });
    }

    #[test]
    fn loom_task_abort_vs_poll() {
        crate::loom::model("task abort vs poll", || {
            let t = TestOwner::new();
            let (fut, slot, drops) = parked(usize::MAX);
            let (r, h) = t.owned.bind(fut, t.owner()).ok().expect("open list");
            let h = Arc::new(Mutex::new(h));
            let h2 = h.clone();
            let aborter = loom::thread::spawn(move || h2.lock().expect("handle").abort());
            r.run();
            aborter.join().expect("aborter");
            run_queue(&t);
            assert_eq!(drops.load(Ordering::SeqCst), 1, "aborted future dropped once");
            let mut h = Arc::try_unwrap(h).ok().expect("one handle").into_inner().expect("handle");
            assert!(matches!(poll_handle(&mut h, Waker::noop()), Poll::Ready(Err(e)) if e.is_cancelled()));
            drop(h);
            drop(slot); // the waker the future left
            assert_eq!(t.owned.len(), 0);
            assert_eq!(Arc::strong_count(&t), 1, "no leak");
        });
    }

    #[test]
    fn loom_task_handle_drop_vs_complete() {
        crate::loom::model("task handle drop vs complete", || {
            let t = TestOwner::new();
            let (fut, _slot, drops) = parked(0);
            let (r, mut h) = t.owned.bind(fut, t.owner()).ok().expect("open list");
            let cw = Arc::new(CountWaker::default());
            let w = Waker::from(cw.clone());
            let handle_thread = loom::thread::spawn(move || {
                if poll_handle(&mut h, &w).is_pending() {
                    drop(h);
                }
            });
            r.run();
            handle_thread.join().expect("handle thread");
            assert_eq!(drops.load(Ordering::SeqCst), 2, "future and output dropped exactly once each");
            assert!(cw.0.load(Ordering::SeqCst) <= 1);
            assert_eq!(Arc::strong_count(&t), 1, "no leak");
        });
    }

    #[test]
    fn loom_task_shutdown_vs_poll() {
        crate::loom::model("task shutdown vs poll", || {
            let t = TestOwner::new();
            let (fut, slot, drops) = parked(usize::MAX);
            let (r, mut h) = t.owned.bind(fut, t.owner()).ok().expect("open list");
            let t2 = t.clone();
            let closer = loom::thread::spawn(move || t2.owned.shutdown_all());
            r.run();
            closer.join().expect("closer");
            // The scheduler of a closed runtime drops what is still queued.
            drop(t.take());
            assert_eq!(drops.load(Ordering::SeqCst), 1, "future dropped once, by shutdown or the poller");
            assert!(matches!(poll_handle(&mut h, Waker::noop()), Poll::Ready(Err(e)) if e.is_cancelled()));
            drop(h);
            drop(slot); // the waker the future left
            assert_eq!(t.owned.len(), 0);
            assert_eq!(Arc::strong_count(&t), 1, "no leak");
        });
    }
}
