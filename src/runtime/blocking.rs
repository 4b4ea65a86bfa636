//! The blocking thread pool behind `spawn_blocking`.
//!
//! # Design
//!
//! All pool state lives in one [`Mutex`]-protected `State` shared (through an
//! `Arc<Inner>`) by the owning [`BlockingPool`], every [`BlockingSpawner`] and
//! every worker thread:
//!
//! * `queue` — a FIFO of [`Job`]s that have been accepted but not started.
//! * `num_threads` — workers that will still look at the queue before they
//!   exit. A worker is counted from the moment it is spawned until it
//!   *decides* to exit (under the lock), not until its OS thread is gone, so
//!   a spawner never counts on a thread that is on its way out.
//! * `num_idle` — workers parked on the `work_cv` condvar that have not been
//!   claimed by a spawner.
//! * `num_notify` — wake-ups handed out by spawners but not yet consumed.
//!
//! ## Spawning
//!
//! [`BlockingSpawner::spawn`] pushes the job and then, still under the lock:
//!
//! 1. if `num_idle > 0`, *claims* one idle worker: `num_idle -= 1`,
//!    `num_notify += 1`, `notify_one`. Because the claim is recorded before
//!    the worker even wakes up, a burst of N jobs claims N distinct workers
//!    and never double-books one;
//! 2. otherwise, if `num_threads < max_threads`, spawns a new worker (the
//!    thread is registered while the lock is still held, so its handle is
//!    always known before the thread can run);
//! 3. otherwise leaves the job queued: every counted worker is busy, and a
//!    busy worker drains the queue before it parks, so the job is picked up as
//!    soon as any thread frees up.
//!
//! Consequently a burst of N jobs starts `min(N, max_threads)` threads, and a
//! job never waits in the queue while a thread could have been started.
//!
//! If the OS refuses to create a thread, the job stays queued when at least
//! one (necessarily busy) worker exists to take it; otherwise the job is
//! removed again and dropped and the OS error is returned.
//!
//! ## Parking and keep-alive
//!
//! A worker whose queue is empty increments `num_idle` and waits on `work_cv`
//! with a deadline of `now + keep_alive`. After every wake-up it checks, in
//! this order:
//!
//! 1. `num_notify > 0` — it consumes one notification (a spawner already took
//!    it out of `num_idle`) and goes back to the queue;
//! 2. `shutdown` — it removes itself from `num_idle` and exits;
//! 3. deadline passed — it removes itself from `num_idle` and exits;
//! 4. anything else is a spurious wake-up: it waits again for the *rest* of
//!    the original deadline.
//!
//! The condvar may wake a different parked worker than the one a spawner
//! "meant"; that is harmless because a notification is a token, not an
//! address: whichever worker consumes it stops being idle, and the others
//! remain correctly counted. A worker whose keep-alive expires at the same
//! moment a spawner claims it sees the token first (rule 1) and runs the job
//! instead of exiting, so a claimed job is never stranded.
//!
//! ## Reaping
//!
//! An exiting worker, as its very last step, pushes its id onto `exited` (if
//! its handle is still owned by the pool) and signals `exit_cv`. The next
//! [`BlockingSpawner::spawn`] joins those already-finished handles and
//! [`BlockingPool::shutdown`] joins all of them, so handles never accumulate
//! beyond the `max_threads` bound. Joins always happen *outside* the lock,
//! because a thread's thread-local destructors may still run user code.
//! A `joining` counter records joins in flight so that concurrent shutdown
//! callers do not report completion while another caller is still joining.
//!
//! ## Shutdown protocol
//!
//! [`BlockingPool::shutdown`]:
//!
//! 1. sets `shutdown` (new jobs are refused with an error), takes the queue
//!    and wakes every parked worker;
//! 2. releases the lock and drops the queued-but-not-started jobs; dropping a
//!    job is how the runtime cancels the task behind it, and it may run
//!    arbitrary code (even re-enter this pool), hence never under the lock;
//! 3. waits on `exit_cv` — until the optional deadline — joining workers as
//!    they appear in `exited`, until no owned handle is left;
//! 4. on timeout, drops (detaches) the handles of the workers still running a
//!    job; they exit on their own once the job returns, and later shutdown
//!    calls (including the one in `Drop`) no longer wait for them.
//!
//! The protocol survives these races:
//!
//! * a job spawned concurrently with shutdown is either queued before the flag
//!   is set (and then dropped by step 2) or refused — never silently lost;
//! * a worker timing out while shutdown starts exits through either path
//!   exactly once, keeping `num_idle` and `num_threads` consistent;
//! * shutdown called from a pool thread (for example when the last owner of
//!   the runtime is dropped inside `spawn_blocking`) detaches the calling
//!   thread's own handle instead of joining itself, and waits only for the
//!   others;
//! * concurrent or repeated shutdown calls are idempotent;
//! * panics in jobs, in dropped jobs, in the thread hooks or in the
//!   thread-name callback are caught and never corrupt the accounting; the
//!   mutex is never poisoned by user code, and poisoning is recovered with
//!   [`PoisonError::into_inner`] regardless.

use std::cell::Cell;
use std::collections::{HashMap, VecDeque};
use std::error::Error as StdError;
use std::fmt;
use std::io;
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

/// A unit of blocking work: run once on a pool thread.
pub(crate) type Job = Box<dyn FnOnce() + Send + 'static>;

/// Default upper bound on the number of blocking threads (`Builder::max_blocking_threads`).
pub(crate) const DEFAULT_MAX_THREADS: usize = 512;

/// Default time an idle blocking thread waits for work before exiting.
pub(crate) const DEFAULT_KEEP_ALIVE: Duration = Duration::from_secs(10);

/// Thread name used by [`PoolConfig::default`] and as a fallback when the
/// configured name callback panics.
const DEFAULT_THREAD_NAME: &str = "blitz-io-blocking";

/// Message of the error returned when a job is submitted after shutdown.
const SHUTDOWN_MESSAGE: &str = "blocking pool is shut down";

/// Source of unique pool ids, used to recognise "this thread belongs to this pool".
static NEXT_POOL_ID: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    /// `(pool id, worker id)` of the pool worker running on this thread, if any.
    static CURRENT_WORKER: Cell<Option<(usize, usize)>> = const { Cell::new(None) };
}

/// Configuration of a [`BlockingPool`].
pub(crate) struct PoolConfig {
    /// Maximum number of pool threads alive at once. Values below 1 are treated as 1.
    pub(crate) max_threads: usize,
    /// How long an idle thread waits for a job before exiting.
    pub(crate) keep_alive: Duration,
    /// Produces the name of each new pool thread.
    pub(crate) thread_name: Arc<dyn Fn() -> String + Send + Sync>,
    /// Stack size of pool threads; `None` uses the platform default.
    pub(crate) stack_size: Option<usize>,
    /// Run at the start of every pool thread (the runtime sets its thread-local context here).
    pub(crate) on_thread_start: Option<Arc<dyn Fn() + Send + Sync>>,
    /// Run at the end of every pool thread, after its last job.
    pub(crate) on_thread_stop: Option<Arc<dyn Fn() + Send + Sync>>,
}

impl Default for PoolConfig {
    /// 512 threads, 10 s keep-alive, threads named `blitz-io-blocking`, no hooks.
    fn default() -> Self {
        PoolConfig {
            max_threads: DEFAULT_MAX_THREADS,
            keep_alive: DEFAULT_KEEP_ALIVE,
            thread_name: Arc::new(|| DEFAULT_THREAD_NAME.to_owned()),
            stack_size: None,
            on_thread_start: None,
            on_thread_stop: None,
        }
    }
}

impl fmt::Debug for PoolConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PoolConfig")
            .field("max_threads", &self.max_threads)
            .field("keep_alive", &self.keep_alive)
            .field("stack_size", &self.stack_size)
            .field("on_thread_start", &self.on_thread_start.is_some())
            .field("on_thread_stop", &self.on_thread_stop.is_some())
            .finish_non_exhaustive()
    }
}

/// A pool of threads that run blocking jobs, growing on demand up to
/// `max_threads` and shrinking after `keep_alive` of idleness.
///
/// Dropping the pool shuts it down and waits for running jobs (see
/// [`BlockingPool::shutdown`]).
pub(crate) struct BlockingPool {
    /// Shared pool state.
    inner: Arc<Inner>,
}

/// A cheap, cloneable, `Send + Sync` handle that submits jobs to a [`BlockingPool`].
///
/// It does not keep the pool's threads alive: once the owning
/// [`BlockingPool`] is shut down or dropped, [`BlockingSpawner::spawn`] fails.
#[derive(Clone)]
pub(crate) struct BlockingSpawner {
    /// Shared pool state.
    inner: Arc<Inner>,
}

/// State shared by the pool, its spawners and its worker threads.
struct Inner {
    /// Unique id of this pool (see [`CURRENT_WORKER`]).
    id: usize,
    /// The mutable state.
    state: Mutex<State>,
    /// Parked workers wait here for jobs, shutdown or keep-alive expiry.
    work_cv: Condvar,
    /// Shutdown callers wait here for workers to exit.
    exit_cv: Condvar,
    /// Upper bound on `State::num_threads` (at least 1).
    max_threads: usize,
    /// Idle time after which a worker exits.
    keep_alive: Duration,
    /// Produces thread names.
    thread_name: Arc<dyn Fn() -> String + Send + Sync>,
    /// Stack size of worker threads.
    stack_size: Option<usize>,
    /// Hook run at worker start.
    on_thread_start: Option<Arc<dyn Fn() + Send + Sync>>,
    /// Hook run at worker stop.
    on_thread_stop: Option<Arc<dyn Fn() + Send + Sync>>,
}

/// The mutable part of the pool, guarded by `Inner::state`.
struct State {
    /// Accepted jobs not yet started.
    queue: VecDeque<Job>,
    /// Workers that will still look at the queue before exiting.
    num_threads: usize,
    /// Parked workers not yet claimed by a spawner.
    num_idle: usize,
    /// Wake-up tokens handed to parked workers but not yet consumed.
    num_notify: usize,
    /// Set once by shutdown; no job is accepted afterwards.
    shutdown: bool,
    /// Set when a worker's handle was dropped without joining it.
    detached: bool,
    /// Join handles of workers owned by the pool, by worker id.
    workers: HashMap<usize, JoinHandle<()>>,
    /// Ids (keys of `workers`) of workers that have finished and await a join.
    exited: Vec<usize>,
    /// Number of handles taken out of `workers` and being joined right now.
    joining: usize,
    /// Id for the next worker.
    next_worker_id: usize,
}

/// The OS refused to create a pool thread (wrapped in an [`io::Error`] of kind `Other`).
#[derive(Debug)]
struct ThreadSpawnError {
    /// The error reported by the OS.
    source: io::Error,
}

impl fmt::Display for ThreadSpawnError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "failed to spawn a blocking pool thread: {}", self.source)
    }
}

impl StdError for ThreadSpawnError {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        Some(&self.source)
    }
}

/// The error returned for jobs submitted after shutdown.
fn shutdown_error() -> io::Error {
    io::Error::other(SHUTDOWN_MESSAGE)
}

/// Runs `f`, containing any panic (including one raised while dropping the
/// panic payload) so that it cannot unwind into the pool's bookkeeping.
fn run_catching<F: FnOnce()>(f: F) {
    if let Err(payload) = panic::catch_unwind(AssertUnwindSafe(f)) {
        if let Err(nested) = panic::catch_unwind(AssertUnwindSafe(move || drop(payload))) {
            // A payload whose destructor panics again: leak it rather than abort.
            std::mem::forget(nested);
        }
    }
}

/// The worker id of the current thread if it is a worker of pool `pool_id`.
fn current_worker_of(pool_id: usize) -> Option<usize> {
    CURRENT_WORKER.try_with(Cell::get).ok().flatten().and_then(|(pool, worker)| (pool == pool_id).then_some(worker))
}

impl Inner {
    /// Locks the state, recovering from poisoning.
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Name for a new thread: the configured callback, made safe to hand to the OS.
    fn next_thread_name(&self) -> String {
        let name = panic::catch_unwind(AssertUnwindSafe(|| (self.thread_name)()))
            .unwrap_or_else(|_| DEFAULT_THREAD_NAME.to_owned());
        if name.contains('\0') {
            // `thread::Builder::spawn` panics on interior NULs.
            name.replace('\0', "")
        } else {
            name
        }
    }

    /// Spawns and registers one worker. Must be called with the lock held
    /// (`state` is the guarded state), so the handle is registered before the
    /// new thread can observe the state.
    fn spawn_worker(self: &Arc<Self>, state: &mut State) -> io::Result<()> {
        let id = state.next_worker_id;
        let mut builder = thread::Builder::new().name(self.next_thread_name());
        if let Some(size) = self.stack_size {
            builder = builder.stack_size(size);
        }
        let inner = Arc::clone(self);
        let handle = builder.spawn(move || inner.run_worker(id))?;
        state.next_worker_id = id.wrapping_add(1);
        state.num_threads += 1;
        state.workers.insert(id, handle);
        Ok(())
    }

    /// Body of a worker thread.
    fn run_worker(&self, id: usize) {
        // Ignoring the error is fine: it only fails while TLS is being torn down.
        let _ = CURRENT_WORKER.try_with(|current| current.set(Some((self.id, id))));
        if let Some(start) = &self.on_thread_start {
            run_catching(|| start());
        }

        self.work_loop();

        if let Some(stop) = &self.on_thread_stop {
            run_catching(|| stop());
        }
        let _ = CURRENT_WORKER.try_with(|current| current.set(None));

        // Last touch of the shared state: from here on the thread only returns.
        let mut state = self.lock();
        if state.workers.contains_key(&id) {
            state.exited.push(id);
        }
        drop(state);
        self.exit_cv.notify_all();
    }

    /// Runs jobs and parks until shutdown or keep-alive expiry. On return the
    /// worker has been removed from `num_threads` (and `num_idle`).
    fn work_loop(&self) {
        let mut state = self.lock();
        'work: loop {
            while let Some(job) = state.queue.pop_front() {
                drop(state);
                run_catching(job);
                state = self.lock();
            }
            if state.shutdown {
                break 'work;
            }

            // Park. `None` deadline: keep-alive too large to represent, wait forever.
            state.num_idle += 1;
            let deadline = Instant::now().checked_add(self.keep_alive);
            loop {
                state = match deadline {
                    Some(deadline) => {
                        let timeout = deadline.saturating_duration_since(Instant::now());
                        self.work_cv.wait_timeout(state, timeout).unwrap_or_else(PoisonError::into_inner).0
                    }
                    None => self.work_cv.wait(state).unwrap_or_else(PoisonError::into_inner),
                };
                if state.num_notify > 0 {
                    // Claimed by a spawner, which already took us out of `num_idle`.
                    state.num_notify -= 1;
                    continue 'work;
                }
                if state.shutdown || deadline.is_some_and(|d| Instant::now() >= d) {
                    state.num_idle -= 1;
                    break 'work;
                }
                // Spurious wake-up (or another worker took the token): keep waiting.
            }
        }
        state.num_threads -= 1;
    }

    /// Takes the handles of exited workers out of the state (registering them
    /// in `joining`). With `only_finished`, handles whose thread has not yet
    /// fully finished are left for later, so joining them cannot block.
    fn take_exited(state: &mut State, only_finished: bool) -> Vec<JoinHandle<()>> {
        let mut handles = Vec::new();
        let mut i = 0;
        while i < state.exited.len() {
            let id = state.exited[i];
            let finished = state.workers.get(&id).is_none_or(JoinHandle::is_finished);
            if only_finished && !finished {
                i += 1;
                continue;
            }
            state.exited.swap_remove(i);
            if let Some(handle) = state.workers.remove(&id) {
                handles.push(handle);
            }
        }
        state.joining += handles.len();
        handles
    }

    /// Joins handles obtained from [`Inner::take_exited`]. Must be called
    /// without the lock held.
    fn join_exited(&self, handles: Vec<JoinHandle<()>>) {
        if handles.is_empty() {
            return;
        }
        let count = handles.len();
        for handle in handles {
            // Workers catch every panic, so an `Err` is impossible in practice;
            // either way the thread is gone.
            let _ = handle.join();
        }
        let mut state = self.lock();
        state.joining -= count;
        drop(state);
        self.exit_cv.notify_all();
    }
}

impl BlockingPool {
    /// Creates a pool with no threads; threads are started by the first jobs.
    pub(crate) fn new(config: PoolConfig) -> BlockingPool {
        let inner = Inner {
            id: NEXT_POOL_ID.fetch_add(1, Ordering::Relaxed),
            state: Mutex::new(State {
                queue: VecDeque::new(),
                num_threads: 0,
                num_idle: 0,
                num_notify: 0,
                shutdown: false,
                detached: false,
                workers: HashMap::new(),
                exited: Vec::new(),
                joining: 0,
                next_worker_id: 0,
            }),
            work_cv: Condvar::new(),
            exit_cv: Condvar::new(),
            max_threads: config.max_threads.max(1),
            keep_alive: config.keep_alive,
            thread_name: config.thread_name,
            stack_size: config.stack_size,
            on_thread_start: config.on_thread_start,
            on_thread_stop: config.on_thread_stop,
        };
        BlockingPool { inner: Arc::new(inner) }
    }

    /// Returns a spawner for this pool.
    pub(crate) fn handle(&self) -> BlockingSpawner {
        BlockingSpawner { inner: Arc::clone(&self.inner) }
    }

    /// Stops accepting jobs, drops queued-but-not-started jobs (dropping them is how tasks get cancelled),
    /// waits for running jobs to finish up to `timeout` (None = wait forever), joins the threads that exited.
    /// Threads still running a job after the timeout are detached (their handles dropped) and exit after the job.
    ///
    /// Returns true if every thread was joined; false if any thread was ever
    /// detached, by a timeout or because this is called from a pool thread
    /// (which never joins itself). Idempotent: later calls only wait for
    /// threads that were not detached.
    pub(crate) fn shutdown(&self, timeout: Option<Duration>) -> bool {
        let inner = &*self.inner;
        // `None` (or an unrepresentable deadline) waits forever.
        let deadline = timeout.and_then(|t| Instant::now().checked_add(t));
        let me = current_worker_of(inner.id);

        let mut state = inner.lock();
        state.shutdown = true;
        let queued = std::mem::take(&mut state.queue);
        // A pool thread cannot join itself: detach its own handle.
        let own_handle = me.and_then(|id| state.workers.remove(&id));
        if own_handle.is_some() {
            state.detached = true;
        }
        drop(state);
        inner.work_cv.notify_all();
        drop(own_handle);
        for job in queued {
            run_catching(move || drop(job));
        }

        let mut state = inner.lock();
        loop {
            if !state.exited.is_empty() {
                let handles = Inner::take_exited(&mut state, false);
                drop(state);
                inner.join_exited(handles);
                state = inner.lock();
                continue;
            }
            if state.workers.is_empty() && state.joining == 0 {
                break;
            }
            match deadline {
                None => {
                    state = inner.exit_cv.wait(state).unwrap_or_else(PoisonError::into_inner);
                }
                Some(deadline) => {
                    let now = Instant::now();
                    if now >= deadline {
                        // Detach the threads still running a job.
                        let stuck: Vec<JoinHandle<()>> = state.workers.drain().map(|(_, handle)| handle).collect();
                        if !stuck.is_empty() {
                            state.detached = true;
                        }
                        let joined = !state.detached;
                        drop(state);
                        drop(stuck);
                        return joined;
                    }
                    state = inner.exit_cv.wait_timeout(state, deadline - now).unwrap_or_else(PoisonError::into_inner).0;
                }
            }
        }
        !state.detached
    }
}

impl Drop for BlockingPool {
    /// Shuts the pool down, waiting for running jobs (threads detached by an
    /// earlier timed-out shutdown are not waited for).
    fn drop(&mut self) {
        self.shutdown(None);
    }
}

impl fmt::Debug for BlockingPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BlockingPool").field("inner", &self.inner).finish()
    }
}

/// Most threads of the [`fallback`] pool at once.
const FALLBACK_MAX_THREADS: usize = 16;

/// The process-wide pool for blocking work started outside any blitz-io runtime
/// (`net::lookup_host` polled by another executor), created on first use. It is never
/// shut down; its threads, named `blitz-io-lookup`, exit after the default keep-alive
/// (10 s) without work, so an idle process keeps none. Jobs beyond its 16 threads wait
/// in its queue. Before, each such lookup started a thread of its own.
///
/// A child process forked after the pool started gets a new pool: it inherits the
/// pool's state (idle threads counted) but none of its threads, and a job handed to
/// those would never run. The old state is leaked in the child, not dropped: dropping
/// it would wait for threads that do not exist there. (A fork while another thread
/// holds this function's lock, a few instructions long, would leave the child's first
/// lookup waiting on it, as with any lock held across `fork`.)
pub(crate) fn fallback() -> BlockingSpawner {
    static POOL: Mutex<Option<(u32, BlockingPool)>> = Mutex::new(None);
    let pid = std::process::id();
    let mut pool = POOL.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some((owner, p)) = &*pool {
        if *owner == pid {
            return p.handle();
        }
    }
    let fresh = BlockingPool::new(PoolConfig {
        max_threads: FALLBACK_MAX_THREADS,
        thread_name: Arc::new(|| "blitz-io-lookup".to_owned()),
        ..PoolConfig::default()
    });
    let spawner = fresh.handle();
    if let Some((_, inherited)) = pool.replace((pid, fresh)) {
        std::mem::forget(inherited);
    }
    spawner
}

impl BlockingSpawner {
    /// Queue a job. If no thread is idle and `num_threads < max_threads`, spawn a thread.
    ///
    /// Returns `Err` with kind [`io::ErrorKind::Other`] if the pool is shut
    /// down ("blocking pool is shut down"), or if the OS refused to create a
    /// thread and no thread exists that will take the job (the OS error is
    /// the error's source). On error the job has been dropped.
    pub(crate) fn spawn(&self, job: Job) -> io::Result<()> {
        let inner = &self.inner;
        let mut state = inner.lock();
        if state.shutdown {
            drop(state);
            drop(job);
            return Err(shutdown_error());
        }
        let reaped = Inner::take_exited(&mut state, true);
        state.queue.push_back(job);

        let mut rejected = None;
        if state.num_idle > 0 {
            state.num_idle -= 1;
            state.num_notify += 1;
            inner.work_cv.notify_one();
        } else if state.num_threads < inner.max_threads {
            if let Err(source) = inner.spawn_worker(&mut state) {
                if state.num_threads == 0 {
                    // Nobody will ever run it: take it back (it is the last one
                    // pushed, as we held the lock throughout).
                    rejected = Some((state.queue.pop_back(), source));
                }
                // Otherwise every existing thread is busy and drains the queue
                // before parking, so the job will run.
            }
        }
        drop(state);
        inner.join_exited(reaped);

        match rejected {
            None => Ok(()),
            Some((job, source)) => {
                drop(job);
                Err(io::Error::other(ThreadSpawnError { source }))
            }
        }
    }

    /// Number of pool threads currently alive (started and not yet exiting).
    #[cfg_attr(any(not(test), loom), allow(dead_code))]
    pub(crate) fn num_threads(&self) -> usize {
        self.inner.lock().num_threads
    }

    /// Number of pool threads currently parked waiting for a job.
    #[cfg_attr(any(not(test), loom), allow(dead_code))]
    pub(crate) fn num_idle(&self) -> usize {
        self.inner.lock().num_idle
    }

    /// Number of jobs accepted but not yet started.
    #[cfg_attr(any(not(test), loom), allow(dead_code))]
    pub(crate) fn num_queued(&self) -> usize {
        self.inner.lock().queue.len()
    }

    /// The configured maximum number of threads (at least 1).
    #[cfg_attr(any(not(test), loom), allow(dead_code))]
    pub(crate) fn max_threads(&self) -> usize {
        self.inner.max_threads
    }

    /// The configured idle time after which a thread exits.
    #[cfg_attr(any(not(test), loom), allow(dead_code))]
    pub(crate) fn keep_alive(&self) -> Duration {
        self.inner.keep_alive
    }

    /// Whether the pool has been shut down.
    #[cfg_attr(any(not(test), loom), allow(dead_code))]
    pub(crate) fn is_shutdown(&self) -> bool {
        self.inner.lock().shutdown
    }

    /// Number of join handles the pool still holds (live plus unreaped threads).
    #[cfg(all(test, not(loom)))]
    fn num_handles(&self) -> usize {
        self.inner.lock().workers.len()
    }
}

impl fmt::Debug for BlockingSpawner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BlockingSpawner").field("inner", &self.inner).finish()
    }
}

impl fmt::Debug for Inner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Inner");
        d.field("max_threads", &self.max_threads).field("keep_alive", &self.keep_alive);
        // `try_lock`: formatting must never block or deadlock.
        match self.state.try_lock() {
            Ok(state) => d.field("state", &*state),
            Err(std::sync::TryLockError::Poisoned(poisoned)) => d.field("state", &*poisoned.into_inner()),
            Err(std::sync::TryLockError::WouldBlock) => d.field("state", &"<locked>"),
        };
        d.finish_non_exhaustive()
    }
}

impl fmt::Debug for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("State")
            .field("queued", &self.queue.len())
            .field("num_threads", &self.num_threads)
            .field("num_idle", &self.num_idle)
            .field("num_notify", &self.num_notify)
            .field("shutdown", &self.shutdown)
            .field("detached", &self.detached)
            .field("handles", &self.workers.len())
            .field("exited", &self.exited.len())
            .field("joining", &self.joining)
            .finish_non_exhaustive()
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicBool;
    use std::sync::mpsc;

    /// Generous upper bound for anything that should happen "soon".
    const PATIENCE: Duration = Duration::from_secs(10);

    /// A config with the given bounds and a fixed thread name.
    fn config(max_threads: usize, keep_alive: Duration, name: &'static str) -> PoolConfig {
        PoolConfig { max_threads, keep_alive, thread_name: Arc::new(move || name.to_owned()), ..PoolConfig::default() }
    }

    /// Polls `cond` until it holds or `PATIENCE` elapses; returns whether it held.
    fn eventually(mut cond: impl FnMut() -> bool) -> bool {
        let deadline = Instant::now() + PATIENCE;
        loop {
            if cond() {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            thread::sleep(Duration::from_millis(2));
        }
    }

    /// A job that blocks until the returned sender is dropped or sent to (bounded by `PATIENCE`),
    /// after signalling `started`.
    fn gated_job(started: mpsc::Sender<()>) -> (Job, mpsc::Sender<()>) {
        let (release, gate) = mpsc::channel::<()>();
        let job: Job = Box::new(move || {
            let _ = started.send(());
            let _ = gate.recv_timeout(PATIENCE);
        });
        (job, release)
    }

    /// Sets its flag when dropped.
    struct DropFlag(Arc<AtomicUsize>);

    impl Drop for DropFlag {
        fn drop(&mut self) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    /// Number of OS threads of this process whose name starts with `prefix`.
    #[cfg(target_os = "linux")]
    fn os_threads_named(prefix: &str) -> usize {
        let Ok(dir) = std::fs::read_dir("/proc/self/task") else {
            return 0;
        };
        dir.filter_map(Result::ok)
            .filter_map(|entry| std::fs::read_to_string(entry.path().join("comm")).ok())
            .filter(|comm| comm.starts_with(prefix))
            .count()
    }

    #[test]
    fn jobs_run() {
        let pool = BlockingPool::new(config(4, DEFAULT_KEEP_ALIVE, "bp-run"));
        let spawner = pool.handle();
        let (tx, rx) = mpsc::channel();
        for i in 0..20 {
            let tx = tx.clone();
            spawner.spawn(Box::new(move || tx.send(i).unwrap())).unwrap();
        }
        let mut got: Vec<i32> = (0..20).map(|_| rx.recv_timeout(PATIENCE).unwrap()).collect();
        got.sort_unstable();
        assert_eq!(got, (0..20).collect::<Vec<_>>());
        assert!(spawner.num_threads() <= 4);
        assert_eq!(spawner.max_threads(), 4);
        assert_eq!(spawner.keep_alive(), DEFAULT_KEEP_ALIVE);
        assert!(pool.shutdown(Some(PATIENCE)));
    }

    #[test]
    fn default_config() {
        let config = PoolConfig::default();
        assert_eq!(config.max_threads, 512);
        assert_eq!(config.keep_alive, Duration::from_secs(10));
        assert!(format!("{config:?}").contains("max_threads: 512"));
        let pool = BlockingPool::new(PoolConfig { max_threads: 0, ..PoolConfig::default() });
        assert_eq!(pool.handle().max_threads(), 1);
        assert!(format!("{pool:?}").contains("num_threads: 0"));
    }

    #[test]
    fn thread_name_and_hooks() {
        let starts = Arc::new(AtomicUsize::new(0));
        let stops = Arc::new(AtomicUsize::new(0));
        let (s1, s2) = (Arc::clone(&starts), Arc::clone(&stops));
        let pool = BlockingPool::new(PoolConfig {
            on_thread_start: Some(Arc::new(move || {
                s1.fetch_add(1, Ordering::SeqCst);
            })),
            on_thread_stop: Some(Arc::new(move || {
                s2.fetch_add(1, Ordering::SeqCst);
            })),
            ..config(2, DEFAULT_KEEP_ALIVE, "bp-named")
        });
        let (tx, rx) = mpsc::channel();
        pool.handle()
            .spawn(Box::new(move || {
                tx.send(thread::current().name().map(str::to_owned)).unwrap();
            }))
            .unwrap();
        assert_eq!(rx.recv_timeout(PATIENCE).unwrap().as_deref(), Some("bp-named"));
        assert!(pool.shutdown(Some(PATIENCE)));
        assert_eq!(starts.load(Ordering::SeqCst), 1);
        assert_eq!(stops.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn burst_is_bounded_by_max_threads() {
        const JOBS: usize = 64;
        const MAX: usize = 8;
        let pool = BlockingPool::new(config(MAX, DEFAULT_KEEP_ALIVE, "bp-burst"));
        let spawner = pool.handle();
        let running = Arc::new(AtomicUsize::new(0));
        let peak = Arc::new(AtomicUsize::new(0));
        let peak_threads = Arc::new(AtomicUsize::new(0));
        // Jobs hold until the whole burst is queued, so no thread turns idle mid-burst.
        let go = Arc::new(AtomicBool::new(false));
        let (tx, rx) = mpsc::channel();
        for _ in 0..JOBS {
            let (running, peak, peak_threads, tx, go) =
                (Arc::clone(&running), Arc::clone(&peak), Arc::clone(&peak_threads), tx.clone(), Arc::clone(&go));
            let probe = spawner.clone();
            spawner
                .spawn(Box::new(move || {
                    let deadline = Instant::now() + PATIENCE;
                    while !go.load(Ordering::SeqCst) && Instant::now() < deadline {
                        thread::sleep(Duration::from_millis(1));
                    }
                    let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                    peak.fetch_max(now, Ordering::SeqCst);
                    peak_threads.fetch_max(probe.num_threads(), Ordering::SeqCst);
                    thread::sleep(Duration::from_millis(5));
                    running.fetch_sub(1, Ordering::SeqCst);
                    tx.send(()).unwrap();
                }))
                .unwrap();
        }
        // A burst of JOBS > MAX jobs starts exactly MAX threads.
        assert_eq!(spawner.num_threads(), MAX);
        assert!(eventually(|| spawner.num_queued() == JOBS - MAX));
        go.store(true, Ordering::SeqCst);
        for _ in 0..JOBS {
            rx.recv_timeout(PATIENCE).unwrap();
        }
        assert!(peak.load(Ordering::SeqCst) <= MAX);
        assert!(peak_threads.load(Ordering::SeqCst) <= MAX);
        assert_eq!(spawner.num_threads(), MAX);
        assert!(pool.shutdown(Some(PATIENCE)));
        assert_eq!(spawner.num_threads(), 0);
    }

    #[test]
    fn concurrent_spawners_respect_max() {
        const MAX: usize = 4;
        let pool = BlockingPool::new(config(MAX, Duration::from_millis(1), "bp-conc"));
        let spawner = pool.handle();
        let ran = Arc::new(AtomicUsize::new(0));
        let over = Arc::new(AtomicBool::new(false));
        thread::scope(|scope| {
            for _ in 0..8 {
                let (spawner, ran, over) = (spawner.clone(), Arc::clone(&ran), Arc::clone(&over));
                scope.spawn(move || {
                    for _ in 0..200 {
                        let (ran, probe, over) = (Arc::clone(&ran), spawner.clone(), Arc::clone(&over));
                        spawner
                            .spawn(Box::new(move || {
                                if probe.num_threads() > MAX {
                                    over.store(true, Ordering::SeqCst);
                                }
                                ran.fetch_add(1, Ordering::SeqCst);
                            }))
                            .unwrap();
                    }
                });
            }
        });
        assert!(eventually(|| ran.load(Ordering::SeqCst) == 1600));
        assert!(!over.load(Ordering::SeqCst));
        assert!(pool.shutdown(Some(PATIENCE)));
    }

    #[test]
    fn threads_grow_on_demand_and_are_reused() {
        let pool = BlockingPool::new(config(4, DEFAULT_KEEP_ALIVE, "bp-grow"));
        let spawner = pool.handle();
        assert_eq!(spawner.num_threads(), 0);
        let (started_tx, started) = mpsc::channel();
        let mut releases = Vec::new();
        for n in 1..=3 {
            let (job, release) = gated_job(started_tx.clone());
            spawner.spawn(job).unwrap();
            started.recv_timeout(PATIENCE).unwrap();
            releases.push(release);
            assert_eq!(spawner.num_threads(), n);
            assert_eq!(spawner.num_idle(), 0);
        }
        drop(releases);
        assert!(eventually(|| spawner.num_idle() == 3));
        // Idle threads are reused rather than new ones started.
        let (tx, rx) = mpsc::channel();
        for _ in 0..3 {
            let tx = tx.clone();
            spawner.spawn(Box::new(move || tx.send(()).unwrap())).unwrap();
        }
        for _ in 0..3 {
            rx.recv_timeout(PATIENCE).unwrap();
        }
        assert_eq!(spawner.num_threads(), 3);
        // The default keep-alive (10 s) keeps them around.
        assert!(eventually(|| spawner.num_idle() == 3));
        assert_eq!(spawner.num_threads(), 3);
        assert!(pool.shutdown(Some(PATIENCE)));
    }

    #[test]
    fn idle_threads_exit_after_keep_alive() {
        let keep_alive = Duration::from_millis(50);
        let pool = BlockingPool::new(config(4, keep_alive, "bp-idle"));
        let spawner = pool.handle();
        assert_eq!(spawner.keep_alive(), keep_alive);
        let (started_tx, started) = mpsc::channel();
        let mut releases = Vec::new();
        for _ in 0..4 {
            let (job, release) = gated_job(started_tx.clone());
            spawner.spawn(job).unwrap();
            releases.push(release);
        }
        for _ in 0..4 {
            started.recv_timeout(PATIENCE).unwrap();
        }
        assert_eq!(spawner.num_threads(), 4);
        let released_at = Instant::now();
        drop(releases);
        assert!(eventually(|| spawner.num_threads() == 0));
        assert!(released_at.elapsed() >= keep_alive);
        assert_eq!(spawner.num_idle(), 0);
        // Exited threads' handles are reaped by later spawns.
        let (tx, rx) = mpsc::channel();
        assert!(eventually(|| {
            let tx = tx.clone();
            spawner.spawn(Box::new(move || tx.send(()).unwrap())).unwrap();
            rx.recv_timeout(PATIENCE).unwrap();
            spawner.num_handles() <= 1
        }));
        // And the pool still works after shrinking to zero.
        assert!(pool.shutdown(Some(PATIENCE)));
        assert_eq!(spawner.num_handles(), 0);
    }

    #[test]
    fn spawn_after_shutdown_errors() {
        let pool = BlockingPool::new(config(2, DEFAULT_KEEP_ALIVE, "bp-after"));
        let spawner = pool.handle();
        assert!(pool.shutdown(None));
        assert!(spawner.is_shutdown());
        let dropped = Arc::new(AtomicUsize::new(0));
        let guard = DropFlag(Arc::clone(&dropped));
        let err = spawner.spawn(Box::new(move || drop(guard))).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::Other);
        assert_eq!(err.to_string(), "blocking pool is shut down");
        assert_eq!(dropped.load(Ordering::SeqCst), 1, "rejected job is dropped");
        drop(pool);
        assert!(spawner.spawn(Box::new(|| {})).is_err());
    }

    #[test]
    fn shutdown_drops_queued_jobs_and_waits_for_running_ones() {
        let pool = BlockingPool::new(config(1, DEFAULT_KEEP_ALIVE, "bp-drop"));
        let spawner = pool.handle();
        let (started_tx, started) = mpsc::channel();
        let (job, release) = gated_job(started_tx);
        spawner.spawn(job).unwrap();
        started.recv_timeout(PATIENCE).unwrap();

        let dropped = Arc::new(AtomicUsize::new(0));
        let ran = Arc::new(AtomicUsize::new(0));
        for _ in 0..4 {
            let guard = DropFlag(Arc::clone(&dropped));
            let ran = Arc::clone(&ran);
            spawner
                .spawn(Box::new(move || {
                    ran.fetch_add(1, Ordering::SeqCst);
                    drop(guard);
                }))
                .unwrap();
        }
        assert_eq!(spawner.num_queued(), 4);
        thread::scope(|scope| {
            let shutdown = scope.spawn(|| pool.shutdown(Some(PATIENCE)));
            assert!(eventually(|| dropped.load(Ordering::SeqCst) == 4));
            assert!(!shutdown.is_finished(), "shutdown waits for the running job");
            release.send(()).unwrap();
            assert!(shutdown.join().unwrap());
        });
        assert_eq!(ran.load(Ordering::SeqCst), 0);
        assert_eq!(spawner.num_threads(), 0);
        assert!(pool.shutdown(Some(Duration::ZERO)), "idempotent");
    }

    #[test]
    fn shutdown_timeout_returns_promptly_with_stuck_job() {
        let pool = BlockingPool::new(config(2, DEFAULT_KEEP_ALIVE, "bp-stuck"));
        let spawner = pool.handle();
        let (started_tx, started) = mpsc::channel();
        let (job, release) = gated_job(started_tx);
        spawner.spawn(job).unwrap();
        started.recv_timeout(PATIENCE).unwrap();

        let begin = Instant::now();
        assert!(!pool.shutdown(Some(Duration::from_millis(100))));
        let took = begin.elapsed();
        assert!(took >= Duration::from_millis(100));
        assert!(took < Duration::from_secs(5), "took {took:?}");

        // The detached thread is not waited for by later calls or by Drop.
        let begin = Instant::now();
        assert!(!pool.shutdown(None));
        drop(pool);
        assert!(begin.elapsed() < Duration::from_secs(5));

        assert_eq!(spawner.num_threads(), 1);
        release.send(()).unwrap();
        assert!(eventually(|| spawner.num_threads() == 0));
    }

    #[test]
    fn no_threads_left_after_drop() {
        // Thread names are unique to this test so that concurrently running
        // tests do not disturb the OS-level count.
        const NAME: &str = "bp-leakcheck";
        let pool = BlockingPool::new(config(8, DEFAULT_KEEP_ALIVE, NAME));
        let spawner = pool.handle();
        let (started_tx, started) = mpsc::channel();
        let (release_tx, release) = mpsc::channel::<()>();
        let release = Arc::new(Mutex::new(release));
        for _ in 0..8 {
            let (started_tx, release) = (started_tx.clone(), Arc::clone(&release));
            spawner
                .spawn(Box::new(move || {
                    started_tx.send(()).unwrap();
                    let _ = release.lock().unwrap_or_else(PoisonError::into_inner).recv_timeout(PATIENCE);
                }))
                .unwrap();
        }
        for _ in 0..8 {
            started.recv_timeout(PATIENCE).unwrap();
        }
        assert_eq!(spawner.num_threads(), 8);
        #[cfg(target_os = "linux")]
        assert_eq!(os_threads_named(NAME), 8);

        drop(release_tx);
        drop(pool);
        assert_eq!(spawner.num_threads(), 0);
        assert_eq!(spawner.num_idle(), 0);
        assert_eq!(spawner.num_handles(), 0);
        // Joined threads can linger in /proc for an instant after `join` returns.
        #[cfg(target_os = "linux")]
        assert!(eventually(|| os_threads_named(NAME) == 0));
    }

    #[test]
    fn panicking_job_does_not_break_the_pool() {
        let pool = BlockingPool::new(config(1, DEFAULT_KEEP_ALIVE, "bp-panic"));
        let spawner = pool.handle();
        spawner.spawn(Box::new(|| panic!("job panic (expected by the test)"))).unwrap();
        let (tx, rx) = mpsc::channel();
        spawner.spawn(Box::new(move || tx.send(()).unwrap())).unwrap();
        rx.recv_timeout(PATIENCE).unwrap();
        assert_eq!(spawner.num_threads(), 1);
        assert!(pool.shutdown(Some(PATIENCE)));
    }

    #[test]
    fn shutdown_from_pool_thread_does_not_deadlock() {
        let pool = Arc::new(BlockingPool::new(config(2, DEFAULT_KEEP_ALIVE, "bp-self")));
        let spawner = pool.handle();
        let (tx, rx) = mpsc::channel();
        let inside = Arc::clone(&pool);
        spawner
            .spawn(Box::new(move || {
                tx.send(inside.shutdown(None)).unwrap();
                // Dropping the last owner here runs `Drop` on a pool thread too.
                drop(inside);
            }))
            .unwrap();
        // The calling thread cannot join itself.
        assert!(!rx.recv_timeout(PATIENCE).unwrap());
        drop(pool);
        assert!(eventually(|| spawner.num_threads() == 0));
        assert!(spawner.spawn(Box::new(|| {})).is_err());
    }

    /// Spawns into the pool (and records the outcome) when dropped.
    struct Reenter(BlockingSpawner, mpsc::Sender<bool>);
    impl Drop for Reenter {
        fn drop(&mut self) {
            let _ = self.1.send(self.0.spawn(Box::new(|| {})).is_ok());
        }
    }

    #[test]
    fn job_dropped_at_shutdown_may_reenter_the_pool() {
        let pool = BlockingPool::new(config(1, DEFAULT_KEEP_ALIVE, "bp-reenter"));
        let spawner = pool.handle();
        let (started_tx, started) = mpsc::channel();
        let (job, release) = gated_job(started_tx);
        spawner.spawn(job).unwrap();
        started.recv_timeout(PATIENCE).unwrap();

        let (tx, rx) = mpsc::channel();
        let reenter = Reenter(spawner.clone(), tx);
        spawner.spawn(Box::new(move || drop(reenter))).unwrap();
        thread::scope(|scope| {
            let shutdown = scope.spawn(|| pool.shutdown(Some(PATIENCE)));
            // Dropped while queued, outside the lock: the nested spawn is refused
            // instead of deadlocking.
            assert!(!rx.recv_timeout(PATIENCE).unwrap());
            release.send(()).unwrap();
            assert!(shutdown.join().unwrap());
        });
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn thread_spawn_failure_is_an_error() {
        // A 64 TiB stack cannot be mapped, so the OS refuses the thread.
        let pool =
            BlockingPool::new(PoolConfig { stack_size: Some(1 << 46), ..config(2, DEFAULT_KEEP_ALIVE, "bp-fail") });
        let spawner = pool.handle();
        let dropped = Arc::new(AtomicUsize::new(0));
        let guard = DropFlag(Arc::clone(&dropped));
        match spawner.spawn(Box::new(move || drop(guard))) {
            Err(err) => {
                assert_eq!(err.kind(), io::ErrorKind::Other);
                assert!(err.to_string().contains("failed to spawn"), "{err}");
                assert_eq!(dropped.load(Ordering::SeqCst), 1);
                assert_eq!(spawner.num_threads(), 0);
                assert_eq!(spawner.num_queued(), 0);
            }
            // Some kernels/overcommit settings allow it; then it must simply run.
            Ok(()) => assert!(eventually(|| dropped.load(Ordering::SeqCst) == 1)),
        }
        assert!(pool.shutdown(Some(PATIENCE)));
    }
}
