//! The runtime: schedulers, the I/O and timer driver, the blocking pool.
//!
//! # The stack
//!
//! ```text
//!  Runtime ── owns ──▶ worker threads (multi_thread) | nothing (current_thread)
//!     │                 blocking pool threads
//!     └── Handle ──▶ Scheduler (queues, idle workers) ── park ──▶ Driver
//!                    OwnedTasks (every live task)                 ├─ mio Poll + tokens
//!                                                                 └─ timer wheel
//! ```
//!
//! The driver has no thread of its own: a worker (or the `block_on` thread of a
//! current-thread runtime) with nothing to run parks *in* the driver, sleeping in
//! `epoll_wait` until I/O, a timer, or an unpark. See `runtime::park` and the scheduler docs (private items: `cargo doc --document-private-items`).
//!
//! # Shutdown order (`Drop`, `shutdown_timeout`)
//!
//! 1. The scheduler stops: the flag is set, workers are unparked, and joined (up to the
//!    timeout). Tasks in their local queues are dropped as they exit.
//! 2. The task list is closed and every task in it is cancelled: an idle task's future
//!    is dropped right here (tasks parked on I/O, timers or anything else), a task still
//!    being polled by a worker that outlived the timeout has it dropped by that worker
//!    when the poll ends. Wakes that come later find the tasks complete.
//! 3. The driver shuts down: waits on sockets registered with it complete with an error
//!    (now and later: a socket stays with the driver it first waited on; its `try_*`
//!    calls keep working), timers move to the fallback driver if polled again.
//! 4. The blocking pool stops: queued closures are dropped, running ones are waited for
//!    (up to the timeout), threads joined.
//!
//! After `drop(runtime)` returns (without a timeout), no thread of the runtime is left.

pub(crate) mod blocking;
mod builder;
pub(crate) mod context;
pub(crate) mod coop;
mod handle;
pub(crate) mod io;
pub(crate) mod park;
mod rt;
pub(crate) mod scheduler;

pub use builder::Builder;
pub use handle::{EnterGuard, Handle, TryCurrentError};
pub use rt::Runtime;
