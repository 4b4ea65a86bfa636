//! [`Runtime`]: owns the threads, the driver and the blocking pool; drops them in order.

use std::fmt;
use std::future::Future;
use std::io;
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::{Duration, Instant};

use super::blocking::{BlockingPool, PoolConfig};
use super::builder::{Builder, Kind};
use super::handle::HandleInner;
use super::io::Driver;
use super::scheduler::{current_thread, multi_thread, Scheduler};
use super::{context, Handle};
use crate::task::JoinHandle;

/// The blitz-io runtime: a scheduler with its worker threads, an I/O and timer driver,
/// and a blocking pool.
///
/// Most programs use [`blitz_io::run`](crate::run) or `#[blitz_io::main]`; build one
/// yourself with [`Runtime::new`] or a [`Builder`] to choose the flavour and sizes.
///
/// Dropping the runtime cancels its tasks (their futures are dropped), stops the driver,
/// and joins every thread it started. See the [module doc](super) for the order.
///
/// # Examples
///
/// ```
/// use blitz_io::runtime::Runtime;
///
/// let rt = Runtime::new().unwrap();
/// let answer = rt.block_on(async {
///     blitz_io::task::spawn(async { 40 + 2 }).await.unwrap()
/// });
/// assert_eq!(answer, 42);
/// ```
pub struct Runtime {
    handle: Handle,
    blocking: BlockingPool,
    workers: Vec<std::thread::JoinHandle<()>>,
    exited: Arc<(Mutex<usize>, Condvar)>,
    done: bool,
}

impl Runtime {
    /// A multi-thread runtime with default settings.
    ///
    /// # Errors
    ///
    /// The OS error when the epoll instance or a thread cannot be created.
    pub fn new() -> io::Result<Runtime> {
        Builder::new_multi_thread().build()
    }

    pub(crate) fn build(b: &Builder) -> io::Result<Runtime> {
        let driver = Driver::new()?;
        let (scheduler, queues) = match b.kind {
            Kind::CurrentThread => {
                (Scheduler::CurrentThread(current_thread::Shared::new(driver.clone(), b.idle_spin)), Vec::new())
            }
            Kind::MultiThread => {
                let (shared, queues) = multi_thread::Shared::new(b.resolved_workers(), driver.clone(), b.idle_spin);
                (Scheduler::MultiThread(shared), queues)
            }
        };
        let mut pool = None;
        let inner = Arc::new_cyclic(|weak: &std::sync::Weak<HandleInner>| {
            let weak = weak.clone();
            let p = BlockingPool::new(PoolConfig {
                max_threads: b.max_blocking_threads,
                keep_alive: b.keep_alive,
                thread_name: b.name_fn(),
                stack_size: b.thread_stack_size,
                on_thread_start: Some(Arc::new(move || {
                    context::set_for_thread(weak.upgrade().map(|inner| Handle { inner }));
                })),
                on_thread_stop: Some(Arc::new(|| context::set_for_thread(None))),
            });
            let blocking = p.handle();
            pool = Some(p);
            HandleInner { scheduler, driver, blocking }
        });
        let Some(blocking) = pool else {
            return Err(io::Error::other("blocking pool was not created"));
        };
        let mut rt = Runtime {
            handle: Handle { inner },
            blocking,
            workers: Vec::new(),
            exited: Arc::new((Mutex::new(0), Condvar::new())),
            done: false,
        };
        if let Scheduler::MultiThread(shared) = &rt.handle.inner.scheduler {
            for (index, queue) in queues.into_iter().enumerate() {
                let shared = shared.clone();
                let handle = rt.handle.clone();
                let exited = rt.exited.clone();
                let mut tb = std::thread::Builder::new().name(b.thread_name.clone());
                if let Some(sz) = b.thread_stack_size {
                    tb = tb.stack_size(sz);
                }
                let spawned = tb.spawn(move || {
                    // Counted when the thread ends, also by unwinding: `join_workers`
                    // must not wait for ever for a worker that died of a panic.
                    let _exited = ExitGuard(exited);
                    let _ctx = context::enter(handle);
                    multi_thread::run_worker(shared, index, queue);
                });
                match spawned {
                    Ok(t) => rt.workers.push(t),
                    // `rt` is dropped here, which stops the workers already started.
                    Err(e) => return Err(e),
                }
            }
        }
        Ok(rt)
    }

    /// The runtime's [`Handle`], to spawn or block on from other threads.
    pub fn handle(&self) -> &Handle {
        &self.handle
    }

    /// Makes this runtime the current one of this thread until the guard drops: see
    /// [`Handle::enter`].
    pub fn enter(&self) -> super::handle::EnterGuard<'_> {
        self.handle.enter()
    }

    /// Runs `future` to completion on the current thread and returns its output.
    ///
    /// Inside `block_on` the thread is in this runtime's context: `spawn`, sockets and
    /// timers use this runtime. On a current-thread runtime this thread also runs the
    /// spawned tasks and the driver.
    ///
    /// # Panics
    ///
    /// Panics if `future` panics (the runtime stays usable).
    pub fn block_on<F: Future>(&self, future: F) -> F::Output {
        self.handle.block_on(future)
    }

    /// Spawns a task onto this runtime. See [`crate::task::spawn`].
    pub fn spawn<F>(&self, future: F) -> JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.handle.spawn(future)
    }

    /// Runs `f` on this runtime's blocking pool. See [`crate::task::spawn_blocking`].
    pub fn spawn_blocking<F, R>(&self, f: F) -> JoinHandle<R>
    where
        F: FnOnce() -> R + Send + 'static,
        R: Send + 'static,
    {
        self.handle.spawn_blocking(f)
    }

    /// Shuts the runtime down, waiting at most `timeout` for its threads.
    ///
    /// Tasks are cancelled as on drop. Threads still busy after the timeout (a task or a
    /// blocking closure that does not return) are detached: they finish on their own and
    /// touch nothing of the runtime's afterwards.
    ///
    /// # Examples
    ///
    /// ```
    /// use blitz_io::runtime::Runtime;
    /// use std::time::Duration;
    ///
    /// let rt = Runtime::new().unwrap();
    /// rt.spawn_blocking(|| std::thread::sleep(Duration::from_secs(2)));
    /// let start = std::time::Instant::now();
    /// rt.shutdown_timeout(Duration::from_millis(100));
    /// assert!(start.elapsed() < Duration::from_secs(2));
    /// ```
    pub fn shutdown_timeout(mut self, timeout: Duration) {
        self.shutdown(Some(timeout));
    }

    /// Shuts down without waiting for busy threads (`shutdown_timeout(0)`).
    pub fn shutdown_background(self) {
        self.shutdown_timeout(Duration::ZERO);
    }

    fn shutdown(&mut self, timeout: Option<Duration>) {
        if self.done {
            return;
        }
        self.done = true;
        // A timeout too large for an `Instant` (`Duration::MAX`) means no deadline.
        let deadline = timeout.and_then(|t| Instant::now().checked_add(t));
        let inner = self.handle.inner.clone();
        // 1. Stop the scheduler and its workers.
        match &inner.scheduler {
            Scheduler::MultiThread(s) => {
                s.shutdown();
                self.join_workers(deadline);
            }
            Scheduler::CurrentThread(s) => s.shutdown(),
        }
        // 2. Cancel every live task: idle ones are dropped here, a task still being
        //    polled (a worker that outlived the timeout) by its poller. The futures are
        //    dropped in this runtime's context, as if on its threads: a `Drop` that calls
        //    `spawn` or `Handle::current` finds this runtime (and a cancelled handle, since
        //    it is shutting down) rather than panicking or reaching another runtime.
        {
            let _ctx = crate::runtime::context::try_enter(self.handle.clone());
            inner.scheduler.owned().shutdown_all();
            if let Scheduler::MultiThread(s) = &inner.scheduler {
                s.drain_queues();
            }
        }
        // 3. Stop the driver.
        inner.driver.shutdown();
        // 4. Stop the blocking pool.
        let rest = deadline.map(|d| d.saturating_duration_since(Instant::now()));
        self.blocking.shutdown(rest);
    }

    fn join_workers(&mut self, deadline: Option<Instant>) {
        let me = std::thread::current().id();
        // A worker dropping its own runtime (from inside a task) cannot wait for itself.
        let on_worker = self.workers.iter().any(|t| t.thread().id() == me);
        let n = self.workers.len() - usize::from(on_worker);
        let (count, cv) = &*self.exited;
        let mut exited = count.lock().unwrap_or_else(PoisonError::into_inner);
        while *exited < n {
            match deadline {
                None => exited = cv.wait(exited).unwrap_or_else(PoisonError::into_inner),
                Some(d) => {
                    let now = Instant::now();
                    if now >= d {
                        break;
                    }
                    exited = cv.wait_timeout(exited, d - now).unwrap_or_else(PoisonError::into_inner).0;
                }
            }
        }
        let all = *exited >= n;
        drop(exited);
        for t in self.workers.drain(..) {
            if (all || t.is_finished()) && t.thread().id() != me {
                let _ = t.join();
            }
        }
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        self.shutdown(None);
    }
}

impl fmt::Debug for Runtime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Runtime").field("handle", &self.handle).field("workers", &self.workers.len()).finish()
    }
}

/// Counts a worker thread out when dropped (see `Runtime::join_workers`).
struct ExitGuard(Arc<(Mutex<usize>, Condvar)>);

impl Drop for ExitGuard {
    fn drop(&mut self) {
        let (count, cv) = &*self.0;
        *count.lock().unwrap_or_else(PoisonError::into_inner) += 1;
        cv.notify_all();
    }
}
