//! [`Builder`]: configure and build a [`Runtime`].

use std::io;
use std::sync::Arc;
use std::time::Duration;

use super::Runtime;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    CurrentThread,
    MultiThread,
}

/// Most worker threads a runtime may have (a larger count is a mistake, not a machine).
const MAX_WORKERS: usize = 32_768;

/// Longest idle spin window a runtime may have: beyond it a thread would burn a core
/// for no wake-up it could save.
const MAX_IDLE_SPIN: Duration = Duration::from_millis(10);

/// Builds a [`Runtime`] with custom settings.
///
/// # Examples
///
/// ```
/// use blitz_io::runtime::Builder;
///
/// let rt = Builder::new_multi_thread()
///     .worker_threads(2)
///     .max_blocking_threads(16)
///     .thread_name("my-server")
///     .build()
///     .unwrap();
/// assert_eq!(rt.block_on(async { 1 + 2 }), 3);
/// ```
#[derive(Debug, Clone)]
pub struct Builder {
    pub(crate) kind: Kind,
    pub(crate) worker_threads: Option<usize>,
    pub(crate) max_blocking_threads: usize,
    pub(crate) thread_name: String,
    pub(crate) thread_stack_size: Option<usize>,
    pub(crate) keep_alive: Duration,
    pub(crate) idle_spin: Duration,
}

impl Builder {
    fn new(kind: Kind) -> Builder {
        Builder {
            kind,
            worker_threads: None,
            max_blocking_threads: 512,
            thread_name: "blitz-io-worker".to_owned(),
            thread_stack_size: None,
            keep_alive: Duration::from_secs(10),
            idle_spin: super::scheduler::DEFAULT_IDLE_SPIN,
        }
    }

    /// A multi-thread, work-stealing runtime (one worker per CPU by default).
    pub fn new_multi_thread() -> Builder {
        Builder::new(Kind::MultiThread)
    }

    /// A current-thread runtime: every task runs on the thread that calls `block_on`.
    pub fn new_current_thread() -> Builder {
        Builder::new(Kind::CurrentThread)
    }

    /// Number of worker threads of a multi-thread runtime. Default: the number of CPUs
    /// (`available_parallelism`), or `BLITZ_IO_WORKER_THREADS` if set. Ignored by the
    /// current-thread flavour. Zero is rejected by [`build`](Builder::build).
    pub fn worker_threads(&mut self, n: usize) -> &mut Builder {
        self.worker_threads = Some(n);
        self
    }

    /// Upper bound on blocking-pool threads (default 512). Zero is rejected by
    /// [`build`](Builder::build).
    pub fn max_blocking_threads(&mut self, n: usize) -> &mut Builder {
        self.max_blocking_threads = n;
        self
    }

    /// Name of the runtime's threads (default `blitz-io-worker`).
    pub fn thread_name(&mut self, name: impl Into<String>) -> &mut Builder {
        self.thread_name = name.into();
        self
    }

    /// Stack size of the runtime's threads (default: std's).
    pub fn thread_stack_size(&mut self, bytes: usize) -> &mut Builder {
        self.thread_stack_size = Some(bytes);
        self
    }

    /// How long an idle blocking-pool thread waits for work before exiting (default 10 s).
    pub fn thread_keep_alive(&mut self, d: Duration) -> &mut Builder {
        self.keep_alive = d;
        self
    }

    /// Longest time an idle scheduler thread keeps polling for I/O before it sleeps
    /// (default 10 µs; `Duration::ZERO` switches spinning off).
    ///
    /// Waking a sleeping thread is expensive for whoever wakes it, most of all on
    /// virtual machines whose idle CPUs halt. So before the current-thread scheduler, or
    /// the last awake worker of a multi-thread runtime, sleeps in `epoll_wait`, it polls
    /// the I/O driver without blocking for a *window* that adapts to how long it stays
    /// idle: the window grows (up to this limit) while work keeps arriving within the
    /// limit after it went idle, and shrinks to zero when it does not. A runtime whose
    /// idle gaps are longer than the limit therefore does not spin; one with shorter gaps
    /// spends at most the limit of CPU per gap and sleeps far less often. Other workers
    /// of a multi-thread runtime never spin.
    ///
    /// Raise it when latency matters more than CPU time (a spin that covers a peer's
    /// whole round trip saves both sides the wake-up); set it to zero on battery or on
    /// machines shared with other busy programs.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use blitz_io::runtime::Builder;
    ///
    /// let rt = Builder::new_current_thread().idle_spin(Duration::ZERO).build().unwrap();
    /// assert_eq!(rt.block_on(async { 7 }), 7);
    /// ```
    pub fn idle_spin(&mut self, max: Duration) -> &mut Builder {
        self.idle_spin = max;
        self
    }

    /// Accepted for tokio compatibility: I/O and timers are always enabled.
    pub fn enable_all(&mut self) -> &mut Builder {
        self
    }

    /// Accepted for tokio compatibility: I/O is always enabled.
    pub fn enable_io(&mut self) -> &mut Builder {
        self
    }

    /// Accepted for tokio compatibility: timers are always enabled.
    pub fn enable_time(&mut self) -> &mut Builder {
        self
    }

    /// Builds the runtime and starts its worker threads.
    ///
    /// # Errors
    ///
    /// `InvalidInput` for `worker_threads(0)` or above 32,768, for `max_blocking_threads(0)`,
    /// for an `idle_spin` above 10 ms, or for a thread name with a NUL byte (the OS cannot name a thread so); the OS
    /// error when the epoll instance or a thread cannot be created.
    pub fn build(&mut self) -> io::Result<Runtime> {
        if self.worker_threads == Some(0) {
            return Err(crate::error::invalid_input("worker_threads must be at least 1"));
        }
        if let Some(n) = self.worker_threads.filter(|&n| n > MAX_WORKERS) {
            return Err(crate::error::invalid_input(format!("worker_threads must be at most {MAX_WORKERS}, got {n}")));
        }
        if self.thread_name.contains('\0') {
            return Err(crate::error::invalid_input(format!("thread name {:?} contains a NUL byte", self.thread_name)));
        }
        if self.idle_spin > MAX_IDLE_SPIN {
            return Err(crate::error::invalid_input(format!(
                "idle_spin must be at most {MAX_IDLE_SPIN:?}, got {:?}",
                self.idle_spin
            )));
        }
        if self.max_blocking_threads == 0 {
            return Err(crate::error::invalid_input("max_blocking_threads must be at least 1"));
        }
        Runtime::build(self)
    }

    pub(crate) fn resolved_workers(&self) -> usize {
        if let Some(n) = self.worker_threads {
            return n;
        }
        if let Some(n) = std::env::var("BLITZ_IO_WORKER_THREADS").ok().and_then(|v| v.parse::<usize>().ok()) {
            if n > 0 {
                return n;
            }
        }
        std::thread::available_parallelism().map_or(1, |n| n.get())
    }

    pub(crate) fn name_fn(&self) -> Arc<dyn Fn() -> String + Send + Sync> {
        let name = self.thread_name.clone();
        Arc::new(move || name.clone())
    }
}
