//! Fuzzing shim: thin public wrappers over crate-private machinery, compiled only with
//! the `fuzzing` cargo feature and hidden from the docs.
//!
//! The fuzz targets under `fuzz/` (and the feature-gated part of
//! `tests/proptest_inputs.rs`) drive two internal components with operation sequences
//! chosen by the fuzzer, and check them against a simple model:
//!
//! * [`run_wheel`]: the hierarchical timer wheel (`crate::time::wheel::Wheel`) under
//!   insert / remove / reset / poll / advance. A timer never fires before its deadline,
//!   every timer whose deadline an advance reaches fires in that advance exactly once, in
//!   deadline order, and the pending count and next expiration agree with the model.
//! * [`run_tasks`]: the task run queue of a current-thread runtime under spawn / abort /
//!   yield / wake / drop-handle / await sequences. Every task that was not aborted runs to
//!   completion exactly once, every task's future is dropped exactly once, and no panic
//!   escapes a task.
//!
//! Both take plain operation lists, and [`decode_wheel`] / [`decode_tasks`] build those
//! lists from raw fuzzer bytes, so the fuzz targets stay one line long. A model
//! violation is returned as `Err(description)`; a panic inside the library is a bug the
//! fuzzer reports as a crash.
//!
//! This module is not part of the public API: it may change in any release.

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll, Wake, Waker};

use crate::runtime::Runtime;
use crate::task::JoinHandle;
use crate::time::wheel::{TimerId, Wheel};

/// Ticks in one rotation of the wheel's top level (`64^6`), mirrored from the wheel.
const WHEEL_SPAN: u64 = 1 << 36;

/// Reads fuzzer bytes front to back; once the bytes run out every read yields zero.
#[derive(Debug)]
pub struct Bytes<'a> {
    data: &'a [u8],
}

impl<'a> Bytes<'a> {
    /// Wraps `data`.
    pub fn new(data: &'a [u8]) -> Bytes<'a> {
        Bytes { data }
    }

    /// Whether every byte has been consumed.
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// The next byte, or 0 at the end.
    pub fn u8(&mut self) -> u8 {
        match self.data.split_first() {
            Some((&b, rest)) => {
                self.data = rest;
                b
            }
            None => 0,
        }
    }

    /// The next `n` (at most 8) bytes as a little-endian integer.
    pub fn uint(&mut self, n: usize) -> u64 {
        (0..n.min(8)).fold(0u64, |acc, i| acc | (u64::from(self.u8()) << (8 * i)))
    }
}

// ===== timer wheel =====

/// One operation on the timer wheel. Timer references are taken modulo the number of
/// timers inserted so far (live or not), so any `usize` is meaningful.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WheelOp {
    /// Insert a timer due `delay` ticks from now, minus 3 (so some are already overdue).
    Insert(u64),
    /// Remove the timer (stale ids included: must be ignored).
    Remove(usize),
    /// Move the timer to `now + delay`.
    Reset(usize, u64),
    /// Poll the timer.
    Poll(usize),
    /// Advance the wheel by `delay` ticks.
    Advance(u64),
}

/// Decodes a delay: mostly short, sometimes at the level boundaries or far beyond the
/// wheel's range.
fn decode_delay(b: &mut Bytes<'_>) -> u64 {
    match b.u8() % 8 {
        0 => b.uint(1) % 70,
        1 => b.uint(2) % 5_000,
        2 => b.uint(3) % (1 << 24),
        3 => b.uint(5) % (1 << 37),
        4 => WHEEL_SPAN,
        5 => WHEEL_SPAN - 100 + b.uint(1) % 200,
        6 => b.uint(8),
        _ => 64u64.pow(u32::from(b.u8() % 7)).saturating_sub(1 - u64::from(b.u8() % 2)),
    }
}

/// Decodes a start tick and a list of wheel operations from raw bytes.
pub fn decode_wheel(data: &[u8]) -> (u64, Vec<WheelOp>) {
    let mut b = Bytes::new(data);
    let start = match b.u8() % 4 {
        0 => 0,
        1 => WHEEL_SPAN - 1 - b.uint(2) % 5_000,
        2 => u64::MAX - b.uint(5) % (1 << 38),
        _ => b.uint(8),
    };
    let mut ops = Vec::new();
    while !b.is_empty() && ops.len() < 512 {
        let op = match b.u8() % 9 {
            0..=2 => WheelOp::Insert(decode_delay(&mut b)),
            3 => WheelOp::Remove(b.uint(1) as usize),
            4 => WheelOp::Reset(b.uint(1) as usize, decode_delay(&mut b)),
            5 => WheelOp::Poll(b.uint(1) as usize),
            _ => WheelOp::Advance(decode_delay(&mut b)),
        };
        ops.push(op);
    }
    (start, ops)
}

/// Wakers that record which timer (by tag) they belong to.
#[derive(Debug, Default)]
struct Probes {
    woken: Arc<Mutex<Vec<usize>>>,
}

/// One timer's waker: pushes its tag when woken.
struct Probe {
    tag: usize,
    woken: Arc<Mutex<Vec<usize>>>,
}

impl Wake for Probe {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        lock(&self.woken).push(self.tag);
    }
}

impl Probes {
    fn waker(&self, tag: usize) -> Waker {
        Waker::from(Arc::new(Probe { tag, woken: Arc::clone(&self.woken) }))
    }

    /// Advances `wheel` to `target`, wakes what it hands back, and returns the tags.
    fn advance(&self, wheel: &mut Wheel, target: u64) -> Vec<usize> {
        let mut wake = Vec::new();
        wheel.advance(target, &mut wake);
        for waker in wake {
            waker.wake();
        }
        std::mem::take(&mut *lock(&self.woken))
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Model state of one timer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Model {
    Pending(u64),
    Fired,
}

/// The model of the wheel: every timer's state, and the pending ones by deadline.
#[derive(Debug, Default)]
struct TimerModel {
    state: BTreeMap<usize, Model>,
    /// `(deadline, tag)` of every pending timer.
    queue: BTreeSet<(u64, usize)>,
}

impl TimerModel {
    fn get(&self, tag: usize) -> Option<&Model> {
        self.state.get(&tag)
    }

    fn contains(&self, tag: usize) -> bool {
        self.state.contains_key(&tag)
    }

    fn remove(&mut self, tag: usize) {
        if let Some(Model::Pending(when)) = self.state.remove(&tag) {
            self.queue.remove(&(when, tag));
        }
    }

    fn set(&mut self, tag: usize, m: Model) {
        self.remove(tag);
        if let Model::Pending(when) = m {
            self.queue.insert((when, tag));
        }
        self.state.insert(tag, m);
    }

    /// Tags of the pending timers due by `target`.
    fn due(&self, target: u64) -> BTreeSet<usize> {
        self.queue.range(..=(target, usize::MAX)).map(|&(_, tag)| tag).collect()
    }

    fn pending(&self) -> usize {
        self.queue.len()
    }

    fn earliest(&self) -> Option<u64> {
        self.queue.first().map(|&(when, _)| when)
    }
}

/// Returns `Err(msg)` from the enclosing function when `cond` is false.
macro_rules! check {
    ($cond:expr, $($fmt:tt)+) => {
        if !$cond {
            return Err(format!($($fmt)+));
        }
    };
}

/// Runs `ops` on a fresh wheel advanced to `start`, checking every step against a
/// `BTreeMap` model of the timers.
///
/// # Errors
///
/// A description of the first disagreement with the model: a timer fired early, a due
/// timer did not fire, fired twice or out of deadline order, or the pending count, the
/// next expiration, a poll or a reset answered wrongly.
pub fn run_wheel(start: u64, ops: &[WheelOp]) -> Result<(), String> {
    let probes = Probes::default();
    let mut wheel = Wheel::new();
    wheel.advance(start, &mut Vec::new());
    check!(wheel.now() == start, "advance to {start} left now at {}", wheel.now());
    let mut ids: Vec<TimerId> = Vec::new();
    let mut model = TimerModel::default();
    for (step, op) in ops.iter().enumerate() {
        let now = wheel.now();
        match *op {
            WheelOp::Insert(d) => {
                let when = now.saturating_add(d).saturating_sub(3);
                let tag = ids.len();
                ids.push(wheel.insert(when, probes.waker(tag)));
                model.set(tag, Model::Pending(when));
            }
            WheelOp::Remove(i) if !ids.is_empty() => {
                let tag = i % ids.len();
                wheel.remove(ids[tag]);
                model.remove(tag);
            }
            WheelOp::Reset(i, d) if !ids.is_empty() => {
                let tag = i % ids.len();
                let when = now.saturating_add(d);
                let live = wheel.reset(ids[tag], when);
                check!(
                    live == model.contains(tag),
                    "step {step}: reset of timer {tag} answered {live}, model {:?}",
                    model.get(tag)
                );
                if live {
                    // A re-armed fired timer has no waker until its owner polls again.
                    if model.get(tag) == Some(&Model::Fired) {
                        check!(
                            !wheel.poll(ids[tag], &probes.waker(tag)),
                            "step {step}: re-armed timer {tag} polled as fired"
                        );
                    }
                    model.set(tag, Model::Pending(when));
                }
            }
            WheelOp::Poll(i) if !ids.is_empty() => {
                let tag = i % ids.len();
                let ready = wheel.poll(ids[tag], &probes.waker(tag));
                let expected = !matches!(model.get(tag), Some(Model::Pending(_)));
                check!(
                    ready == expected,
                    "step {step}: poll of timer {tag} answered {ready}, model {:?}",
                    model.get(tag)
                );
                if ready {
                    model.remove(tag);
                }
            }
            WheelOp::Advance(d) => {
                let target = now.saturating_add(d);
                let woken = probes.advance(&mut wheel, target);
                let due = model.due(target);
                let woken_set: BTreeSet<usize> = woken.iter().copied().collect();
                if let Some(early) = woken_set.difference(&due).next() {
                    return Err(format!(
                        "step {step}: advance {now} -> {target} fired timer {early} early \
                         (model {:?})",
                        model.get(*early)
                    ));
                }
                if let Some(missed) = due.difference(&woken_set).next() {
                    return Err(format!(
                        "step {step}: advance {now} -> {target} did not fire due timer \
                         {missed} (model {:?})",
                        model.get(*missed)
                    ));
                }
                check!(
                    woken.len() == due.len(),
                    "step {step}: advance fired {} wakers for {} due timers",
                    woken.len(),
                    due.len()
                );
                let whens: Vec<u64> = woken
                    .iter()
                    .map(|tag| match model.get(*tag) {
                        Some(Model::Pending(when)) => *when,
                        _ => u64::MAX,
                    })
                    .collect();
                check!(whens.windows(2).all(|w| w[0] <= w[1]), "step {step}: fired out of deadline order: {whens:?}");
                for tag in due {
                    model.set(tag, Model::Fired);
                }
                check!(wheel.now() == target, "step {step}: advance to {target} left now at {}", wheel.now());
            }
            _ => {}
        }
        let earliest = model.earliest();
        let pending = model.pending();
        check!(wheel.len() == pending, "step {step}: wheel.len() = {}, model has {pending} pending", wheel.len());
        let next = wheel.next_expiration();
        let now = wheel.now();
        match earliest {
            None => check!(next.is_none(), "step {step}: empty wheel expires at {next:?}"),
            Some(earliest) => check!(
                next.is_some_and(|n| n <= earliest.max(now) && n >= now),
                "step {step}: next_expiration {next:?} outside [{now}, {earliest}]"
            ),
        }
    }
    for id in &ids {
        wheel.remove(*id);
    }
    check!(wheel.is_empty(), "{} timers pending after removing every id", wheel.len());
    Ok(())
}

// ===== task run queue =====

/// One operation on the run queue of a current-thread runtime. Task references are
/// taken modulo the number of tasks spawned so far.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TaskOp {
    /// Spawn a task that yields `yields` times, then (if `gated`) waits until its gate is
    /// opened, then (if `child`) spawns a detached child task, then panics (if `panics`)
    /// or completes.
    Spawn {
        /// Number of `yield_now` calls before the gate.
        yields: u8,
        /// Whether the task waits on its gate.
        gated: bool,
        /// Whether the task spawns a detached child just before finishing.
        child: bool,
        /// Whether the task panics instead of completing.
        panics: bool,
    },
    /// Abort the task through its handle (no-op once the handle was dropped).
    Abort(usize),
    /// Let the scheduler run: the driving future yields this many times.
    Yield(u8),
    /// Open the task's gate and wake its stored waker.
    Wake(usize),
    /// Wake the task's stored waker without opening the gate (a spurious wake).
    SpuriousWake(usize),
    /// Open the gate and wake from another OS thread (the remote-queue path).
    WakeRemote(usize),
    /// Drop the task's handle, detaching the task.
    DropHandle(usize),
    /// Open the task's gate and await its handle (if still held).
    Await(usize),
}

/// Decodes a list of run-queue operations from raw bytes. With `allow_panics` false no
/// spawned task panics (libFuzzer's panic hook aborts the process even on a caught panic).
pub fn decode_tasks(data: &[u8], allow_panics: bool) -> Vec<TaskOp> {
    let mut b = Bytes::new(data);
    let mut ops = Vec::new();
    while !b.is_empty() && ops.len() < 256 {
        let op = match b.u8() % 12 {
            0..=2 => {
                let flags = b.u8();
                TaskOp::Spawn {
                    yields: b.u8() % 8,
                    gated: flags & 1 != 0,
                    child: flags & 2 != 0,
                    panics: allow_panics && flags & 0x1c == 0x1c,
                }
            }
            3 => TaskOp::Abort(b.uint(1) as usize),
            4 | 5 => TaskOp::Yield(b.u8() % 16),
            6 => TaskOp::Wake(b.uint(1) as usize),
            7 => TaskOp::SpuriousWake(b.uint(1) as usize),
            8 => TaskOp::WakeRemote(b.uint(1) as usize),
            9 => TaskOp::DropHandle(b.uint(1) as usize),
            _ => TaskOp::Await(b.uint(1) as usize),
        };
        ops.push(op);
    }
    ops
}

/// A gate a task waits on: opened (and woken) by the driver of the test.
#[derive(Debug, Default)]
struct Gate {
    open: bool,
    waker: Option<Waker>,
}

/// What one task reports about itself.
#[derive(Debug, Default)]
struct Tracker {
    /// Times the task body ran to its end (completion or panic point).
    finished: AtomicUsize,
    /// Times the task's future was dropped.
    dropped: AtomicUsize,
    gate: Mutex<Gate>,
}

impl Tracker {
    /// Opens the gate and returns the waker to wake (outside the lock).
    fn open(&self) -> Option<Waker> {
        let mut gate = lock(&self.gate);
        gate.open = true;
        gate.waker.take()
    }

    fn stored_waker(&self) -> Option<Waker> {
        lock(&self.gate).waker.clone()
    }
}

/// Counts the future's drop, wherever it happens (completion, abort, shutdown).
struct DropGuard(Arc<Tracker>);

impl Drop for DropGuard {
    fn drop(&mut self) {
        self.0.dropped.fetch_add(1, Ordering::SeqCst);
    }
}

/// Waits until the tracker's gate is open.
struct WaitGate<'a>(&'a Tracker);

impl Future for WaitGate<'_> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let mut gate = lock(&self.0.gate);
        if gate.open {
            Poll::Ready(())
        } else {
            gate.waker = Some(cx.waker().clone());
            Poll::Pending
        }
    }
}

/// One spawned task as the driver of the test sees it.
#[derive(Debug)]
struct Spawned {
    tracker: Arc<Tracker>,
    handle: Option<JoinHandle<usize>>,
    aborted: bool,
    panics: bool,
}

/// Counters shared by every child task.
#[derive(Debug, Default)]
struct Children {
    spawned: AtomicUsize,
    finished: AtomicUsize,
}

/// Upper bound on the yields spent waiting for the remaining tasks at the end.
const SETTLE_YIELDS: usize = 100_000;

/// Runs `ops` inside `rt.block_on` (a current-thread runtime is meant; any works) and
/// checks the run queue's guarantees.
///
/// At the end every gate is opened, every held handle awaited, and the driving future
/// yields until every task's future has been dropped.
///
/// # Errors
///
/// A description of the first broken guarantee: a non-aborted task that did not
/// complete exactly once, a task whose future was dropped other than exactly once, a
/// handle whose output disagrees with what happened to the task, `is_finished` true while
/// the future still exists, or a child task lost.
pub fn run_tasks(rt: &Runtime, ops: &[TaskOp]) -> Result<(), String> {
    rt.block_on(drive_tasks(ops))
}

/// The body of [`run_tasks`], run as the `block_on` future.
async fn drive_tasks(ops: &[TaskOp]) -> Result<(), String> {
    let mut tasks: Vec<Spawned> = Vec::new();
    let children = Arc::new(Children::default());
    for (step, op) in ops.iter().enumerate() {
        match *op {
            TaskOp::Spawn { yields, gated, child, panics } => {
                let tag = tasks.len();
                let tracker = Arc::new(Tracker::default());
                if !gated {
                    lock(&tracker.gate).open = true;
                }
                let guard = DropGuard(Arc::clone(&tracker));
                let children = Arc::clone(&children);
                let handle = crate::task::spawn(async move {
                    let guard = guard;
                    for _ in 0..yields {
                        crate::task::yield_now().await;
                    }
                    WaitGate(&guard.0).await;
                    if child {
                        children.spawned.fetch_add(1, Ordering::SeqCst);
                        let children = Arc::clone(&children);
                        drop(crate::task::spawn(async move {
                            crate::task::yield_now().await;
                            children.finished.fetch_add(1, Ordering::SeqCst);
                        }));
                    }
                    guard.0.finished.fetch_add(1, Ordering::SeqCst);
                    if panics {
                        panic!("fuzz task {tag} panics on purpose");
                    }
                    tag
                });
                tasks.push(Spawned { tracker, handle: Some(handle), aborted: false, panics });
            }
            TaskOp::Yield(n) => {
                for _ in 0..n {
                    crate::task::yield_now().await;
                }
            }
            _ if tasks.is_empty() => {}
            TaskOp::Abort(i) => {
                let len = tasks.len();
                let task = &mut tasks[i % len];
                if let Some(handle) = &task.handle {
                    let done = handle.is_finished();
                    handle.abort();
                    // Aborting a finished task changes nothing.
                    task.aborted |= !done;
                }
            }
            TaskOp::Wake(i) => {
                if let Some(waker) = tasks[i % tasks.len()].tracker.open() {
                    waker.wake();
                }
            }
            TaskOp::SpuriousWake(i) => {
                if let Some(waker) = tasks[i % tasks.len()].tracker.stored_waker() {
                    waker.wake();
                }
            }
            TaskOp::WakeRemote(i) => {
                let tracker = Arc::clone(&tasks[i % tasks.len()].tracker);
                let joined = std::thread::Builder::new()
                    .name("fuzz-waker".into())
                    .spawn(move || {
                        if let Some(waker) = tracker.open() {
                            waker.wake();
                        }
                    })
                    .map(|t| t.join());
                check!(matches!(joined, Ok(Ok(()))), "step {step}: remote waker thread failed: {joined:?}");
            }
            TaskOp::DropHandle(i) => {
                let len = tasks.len();
                tasks[i % len].handle = None;
            }
            TaskOp::Await(i) => {
                let len = tasks.len();
                let tag = i % len;
                let task = &mut tasks[tag];
                if let Some(waker) = task.tracker.open() {
                    waker.wake();
                }
                if let Some(handle) = task.handle.take() {
                    let out = handle.await;
                    check_output(step, tag, task, out)?;
                }
            }
        }
        check_finished(step, &tasks)?;
    }
    // Settle: open every gate, await every held handle, then wait for the rest.
    for task in &tasks {
        if let Some(waker) = task.tracker.open() {
            waker.wake();
        }
    }
    let step = ops.len();
    for (tag, task) in tasks.iter_mut().enumerate() {
        if let Some(handle) = task.handle.take() {
            let out = handle.await;
            check_output(step, tag, task, out)?;
        }
    }
    let settled = |tasks: &[Spawned]| {
        tasks.iter().all(|t| t.tracker.dropped.load(Ordering::SeqCst) > 0)
            && children.finished.load(Ordering::SeqCst) == children.spawned.load(Ordering::SeqCst)
    };
    let mut spins = 0;
    while !settled(&tasks) {
        check!(
            spins < SETTLE_YIELDS,
            "tasks did not settle after {SETTLE_YIELDS} yields: {:?}",
            tasks
                .iter()
                .enumerate()
                .filter(|(_, t)| t.tracker.dropped.load(Ordering::SeqCst) == 0)
                .map(|(tag, _)| tag)
                .collect::<Vec<_>>()
        );
        crate::task::yield_now().await;
        spins += 1;
    }
    for (tag, task) in tasks.iter().enumerate() {
        let finished = task.tracker.finished.load(Ordering::SeqCst);
        let dropped = task.tracker.dropped.load(Ordering::SeqCst);
        check!(dropped == 1, "task {tag}: future dropped {dropped} times");
        check!(finished <= 1, "task {tag}: body finished {finished} times");
        check!(task.aborted || finished == 1, "task {tag} was never aborted but its body finished {finished} times");
    }
    let spawned = children.spawned.load(Ordering::SeqCst);
    let finished = children.finished.load(Ordering::SeqCst);
    check!(spawned == finished, "{spawned} child tasks spawned, {finished} finished");
    Ok(())
}

/// Checks an awaited handle's output against what the task did.
fn check_output(
    step: usize,
    tag: usize,
    task: &Spawned,
    out: Result<usize, crate::task::JoinError>,
) -> Result<(), String> {
    let finished = task.tracker.finished.load(Ordering::SeqCst);
    let dropped = task.tracker.dropped.load(Ordering::SeqCst);
    check!(dropped == 1, "step {step}: task {tag} joined with its future dropped {dropped} times");
    match out {
        Ok(v) => {
            check!(v == tag, "step {step}: task {tag} returned {v}");
            check!(!task.panics, "step {step}: panicking task {tag} returned Ok");
            check!(finished == 1, "step {step}: task {tag} returned Ok but finished {finished} times");
        }
        Err(e) if e.is_panic() => {
            check!(task.panics, "step {step}: task {tag} reported a panic it never raised");
            check!(finished == 1, "step {step}: task {tag} panicked but finished {finished} times");
        }
        Err(e) => {
            check!(e.is_cancelled() && task.aborted, "step {step}: task {tag} failed without being aborted: {e:?}");
            check!(finished == 0, "step {step}: cancelled task {tag} had finished its body");
        }
    }
    Ok(())
}

/// `is_finished()` may only be true once the task's future is gone.
fn check_finished(step: usize, tasks: &[Spawned]) -> Result<(), String> {
    for (tag, task) in tasks.iter().enumerate() {
        if let Some(handle) = &task.handle {
            let dropped = task.tracker.dropped.load(Ordering::SeqCst);
            check!(
                !handle.is_finished() || dropped == 1,
                "step {step}: task {tag} is_finished() with its future dropped {dropped} times"
            );
            check!(dropped <= 1, "step {step}: task {tag} future dropped {dropped} times");
        }
    }
    Ok(())
}
