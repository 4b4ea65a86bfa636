//! The platform layer: the few system calls that std, mio and socket2 do not wrap the
//! way the networking types need them.
//!
//! # Where it sits
//!
//! The socket types in [`crate::net`] own their descriptors through mio (which the I/O
//! driver registers) and set options through `socket2::SockRef`. When a call needs
//! something neither exposes (a `send` that must never raise `SIGPIPE`, a `recvmsg`
//! that reports `MSG_TRUNC`, a peek, `SO_PEERCRED`), the net layer calls into this
//! module with a borrowed descriptor. Nothing here knows about the runtime, readiness or
//! tasks.
//!
//! # The contract each platform module provides
//!
//! A platform module (today only [`unix`], for Linux, Android, macOS and the BSDs) is
//! glob re-exported here, so callers write `crate::sys::send(...)` and never name the
//! platform. It provides:
//!
//! 1. A `syscall!` macro: call a `libc` function, turn `-1` into
//!    [`io::Error::last_os_error`](std::io::Error::last_os_error).
//! 2. Non-blocking primitives on a `BorrowedFd<'_>` (module `io`): `send`,
//!    `send_vectored`, `send_to`, `recv` (with optional peek), `recv_vectored`,
//!    `recv_from` (reports datagram truncation), and
//!    `set_nosigpipe`.
//!
//! # Invariants
//!
//! - Every primitive is a single non-blocking system call, retried only on `EINTR`.
//! - Errors come back unchanged, `WouldBlock` included: turning `WouldBlock` into
//!   `Ok(None)` or a readiness wait is the caller's job (`io::evented`).
//! - Writing to a socket whose peer has gone returns `BrokenPipe` (or
//!   `ConnectionReset`); it never raises `SIGPIPE` and never kills the process.
//! - A received datagram is never silently cut: the length returned is at most the
//!   buffer's length and a separate flag says whether the datagram was longer.

#[cfg(unix)]
pub(crate) mod unix;
#[cfg(unix)]
pub(crate) use unix::*;
