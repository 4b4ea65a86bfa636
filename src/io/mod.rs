//! The readiness core every socket type goes through, and the readiness types.
//!
//! [`Interest`] and [`Ready`] are public. The machinery is `Evented<T>` (crate-private):
//! a socket plus its lazily made registration with a driver, and the only
//! `WouldBlock` loop in the crate. A read on any socket takes this path:
//!
//! 1. `TcpStream::read` (or `UdpSocket::recv_from`, `UnixStream::read`, ...) hands the
//!    system call to `Evented::poll_io` / `Evented::async_io` in one line.
//! 2. `Evented` registers the socket on first use with the current runtime's driver (or
//!    the fallback driver), asks the socket's `ScheduledIo` for readiness, and runs the
//!    call. On `WouldBlock` it clears the readiness it saw (only if no newer event came)
//!    and waits again.
//! 3. `ScheduledIo::poll_ready` returns at once if the bit is set, else stores the waker.
//! 4. The driver's turn maps the epoll event to the `ScheduledIo`, sets the bit, bumps the
//!    tick and wakes the waker (after releasing its locks).
//! 5. The scheduler runs the task again; at step 2 the call now succeeds.

mod evented;
mod interest;
mod ready;

pub(crate) use evented::Evented;
pub use interest::Interest;
pub use ready::Ready;
