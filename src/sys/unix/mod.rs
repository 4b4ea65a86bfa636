//! Unix implementation of the platform layer (Linux, Android, macOS, the BSDs).
//!
//! Holds the one `syscall!` helper used for the few raw `libc` calls the crate makes,
//! and re-exports the non-blocking socket primitives from [`io`].

/// Turns the return value of a raw `libc` call into an `io::Result`.
///
/// The argument is the call itself, written inside its own `unsafe` block, so the
/// unsafety stays visible at the call site and carries its own `// SAFETY:` comment:
///
/// ```text
/// // SAFETY: `fd` is a live descriptor borrowed for the duration of the call.
/// let flags = syscall!(unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_GETFL) })?;
/// ```
///
/// A return of `-1` becomes [`io::Error::last_os_error`](std::io::Error::last_os_error)
/// (read immediately, before anything else can overwrite `errno`); any other value is
/// returned unchanged in `Ok`. Works for every integer return type (`c_int`, `ssize_t`).
/// `EINTR` is not retried here: callers that can be interrupted loop themselves.
macro_rules! syscall {
    ($call: expr) => {{
        let res = $call;
        if res == -1 {
            Err(std::io::Error::last_os_error())
        } else {
            Ok(res)
        }
    }};
}
pub(crate) use syscall;

pub(crate) mod io;
pub(crate) use self::io::*;

/// CPU time the calling thread has used so far (`CLOCK_THREAD_CPUTIME_ID`), or `None`
/// where the clock is not available.
pub(crate) fn thread_cpu_time() -> Option<std::time::Duration> {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `ts` is a valid, writable timespec for the duration of the call; the clock
    // id is a constant the platform defines.
    syscall!(unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) }).ok()?;
    Some(std::time::Duration::new(u64::try_from(ts.tv_sec).ok()?, u32::try_from(ts.tv_nsec).ok()?))
}
