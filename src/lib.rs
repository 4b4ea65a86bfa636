//! blitz-io: an async I/O runtime whose heart is its networking module.
//!
//! TCP listeners and streams with a typed socket builder, UDP with multicast, Unix
//! stream and datagram sockets, DNS on a blocking pool, borrowed and owned stream halves
//! and readiness futures, on a work-stealing multi-thread scheduler (or a current-thread
//! one), an I/O driver over mio (epoll/kqueue), a timer wheel and a blocking pool.
//!
//! ```
//! use blitz_io::net::{TcpListener, TcpStream};
//!
//! blitz_io::run(async {
//!     let listener = TcpListener::bind("127.0.0.1:0".parse::<std::net::SocketAddr>().unwrap())?;
//!     let addr = listener.local_addr()?;
//!     let server = blitz_io::task::spawn(async move {
//!         let mut conn = listener.accept().await?.stream;
//!         let mut buf = [0u8; 64];
//!         let n = conn.read(&mut buf).await?;
//!         conn.write_all(&buf[..n]).await
//!     });
//!     let mut client = TcpStream::connect(addr).await?;
//!     client.write_all(b"ping").await?;
//!     let mut buf = [0u8; 4];
//!     let n = client.read(&mut buf).await?;
//!     assert_eq!(&buf[..n], b"ping");
//!     server.await??;
//!     Ok::<_, Box<dyn std::error::Error + Send + Sync>>(())
//! }).unwrap();
//! ```
//!
//! # Two tiers
//!
//! * `try_*` calls are plain non-blocking system calls: no runtime needed, any thread.
//!   `Ok(None)` means "would block".
//! * `async fn`s wait for readiness through the runtime's driver.
//!
//! # Architecture
//!
//! ```text
//!  net::{TcpStream, UdpSocket, UnixStream, ...}   thin wrappers, one line per operation
//!        │
//!  io::Evented<T>            the one readiness loop (try_io / poll_io / async_io)
//!        │
//!  runtime::io::ScheduledIo  per-socket readiness word (bits + tick) and waiters
//!        │
//!  runtime::io::Driver       mio Poll, token table, timer wheel; turned by a parking thread
//!        │
//!  runtime::scheduler        current_thread | multi_thread (LIFO slot, stealing, park/wake)
//!        │
//!  task                      task state machine, allocation, panic capture, task list, abort
//! ```
//!
//! # Implementation: who drives I/O when no runtime does
//!
//! A socket future or timer polled outside a blitz-io runtime (on another executor, under
//! `futures::executor::block_on`, on a plain thread) registers with a process-wide
//! *fallback driver*: an epoll instance plus one thread, `blitz-io-fallback`, started on
//! first use, that turns it forever (idle in `epoll_wait` when there is nothing to do).
//! Its wakes go to whatever waker the foreign executor gave. Inside a runtime the
//! runtime's own driver is always used. So blitz-io futures never panic with "no reactor
//! running".

#![warn(missing_docs, missing_debug_implementations, unreachable_pub, unsafe_op_in_unsafe_fn)]
#![warn(clippy::undocumented_unsafe_blocks)]
#![doc(test(attr(deny(warnings))))]

#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod __fuzz;
#[cfg(all(unix, feature = "fault-injection"))]
#[doc(hidden)]
pub use sys::unix::io::fault as __fault;
mod error;
pub mod io;
pub(crate) mod loom;
pub mod net;
pub mod runtime;
pub(crate) mod sys;
pub mod task;
pub mod time;

pub use blitz_io_macros::{main, test};
pub use std::time::Duration;

use std::future::Future;

/// Runs `future` on a new multi-thread runtime (one worker per CPU) and returns its
/// output. The runtime is shut down (tasks cancelled, threads joined) before this returns.
///
/// # Panics
///
/// Panics if the runtime cannot be built (the OS refuses an epoll instance or threads),
/// or if `future` panics. Use [`runtime::Builder`] to handle the build error yourself.
///
/// # Examples
///
/// ```
/// let v = blitz_io::run(async { 1 + 1 });
/// assert_eq!(v, 2);
/// ```
pub fn run<F: Future>(future: F) -> F::Output {
    match runtime::Runtime::new() {
        Ok(rt) => rt.block_on(future),
        Err(e) => panic!("blitz_io::run: cannot start the runtime: {e}"),
    }
}

/// The same as [`run`], under the name tokio users reach for.
///
/// # Panics
///
/// As [`run`].
pub fn block_on<F: Future>(future: F) -> F::Output {
    run(future)
}
