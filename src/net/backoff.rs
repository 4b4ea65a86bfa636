//! The accept back-off shared by every listener (TCP and Unix).
//!
//! Out of descriptors (`EMFILE` for the process, `ENFILE` for the system), `accept`
//! fails but the connection stays queued, so the listening socket stays readable: a
//! loop that logs the error and accepts again would spin a core for as long as the
//! shortage lasts. So the failing `accept` returns its error and arms a back-off, and
//! the next `accept` on that listener first sleeps it: 10 ms, doubling to 100 ms while
//! the errors go on, back to nothing after a success.
//!
//! The sleep needs a timer. Inside a runtime that is the runtime's; outside, the
//! fallback driver's, which may itself fail to start in exactly this situation (its
//! epoll instance needs a descriptor). Then the back-off blocks the thread for the same
//! time instead: a foreign executor's thread stalls for at most 100 ms, where a
//! `Sleep` would panic and no sleep at all would spin.

use std::io;
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::io::{Evented, Interest};

/// First back-off after a descriptor-exhaustion error.
const MIN: Duration = Duration::from_millis(10);
/// Longest back-off.
const MAX: Duration = Duration::from_millis(100);

/// A listener's back-off state: the milliseconds the next `accept` waits first.
#[derive(Debug, Default)]
pub(crate) struct AcceptBackoff {
    ms: AtomicU64,
}

impl AcceptBackoff {
    /// A listener's `accept`: the armed back-off first, then `accept` through `io`'s
    /// readiness loop; the outcome arms or disarms the back-off. Every listener's
    /// `accept().await` is this.
    pub(crate) async fn accept<L: AsRawFd, C>(
        &self,
        io: &Evented<L>,
        accept: impl FnMut(&L) -> io::Result<C>,
    ) -> io::Result<C> {
        if self.is_armed() {
            self.wait().await;
        }
        let accepted = io.async_io(Interest::READABLE, accept).await;
        self.record(&accepted);
        accepted
    }

    /// A listener's `try_accept`: one `accept` through `io`; a connection or an error
    /// (not a would-block) arms or disarms the back-off.
    pub(crate) fn try_accept<L: AsRawFd, C>(
        &self,
        io: &Evented<L>,
        accept: impl FnOnce(&L) -> io::Result<C>,
    ) -> io::Result<Option<C>> {
        let accepted = io.try_io(Interest::READABLE, accept);
        if !matches!(accepted, Ok(None)) {
            self.record(&accepted);
        }
        accepted
    }

    /// Whether the next `accept` must first [`wait`](AcceptBackoff::wait): a load, so
    /// that the common case pays no `async` call.
    #[inline]
    fn is_armed(&self) -> bool {
        self.ms.load(Ordering::Relaxed) != 0
    }

    /// Sleeps the armed back-off, if any (see the module doc).
    #[cold]
    async fn wait(&self) {
        let ms = self.ms.load(Ordering::Relaxed);
        if ms > 0 {
            pause(Duration::from_millis(ms)).await;
        }
    }

    /// Records the outcome of an `accept`: a success disarms the back-off, running out
    /// of descriptors arms or doubles it.
    fn record<T>(&self, accepted: &io::Result<T>) {
        match accepted {
            Ok(_) => {
                if self.ms.load(Ordering::Relaxed) != 0 {
                    self.ms.store(0, Ordering::Relaxed);
                }
            }
            Err(e) if is_out_of_descriptors(e) => {
                let prev = self.ms.load(Ordering::Relaxed);
                let next = (prev * 2).clamp(MIN.as_millis() as u64, MAX.as_millis() as u64);
                self.ms.store(next, Ordering::Relaxed);
            }
            Err(_) => {}
        }
    }
}

/// Waits `d` on a timer, or, where no timer driver can be had (outside a runtime, when
/// the fallback driver cannot start, typically for lack of descriptors), blocks the
/// thread for `d` instead of panicking as a `Sleep` would. For short retry pauses only.
pub(crate) async fn pause(d: Duration) {
    if crate::runtime::context::driver().is_ok() {
        crate::time::sleep(d).await;
    } else {
        std::thread::sleep(d);
    }
}

/// Whether `e` is `EMFILE` (process out of descriptors) or `ENFILE` (system out).
fn is_out_of_descriptors(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::EMFILE) | Some(libc::ENFILE))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arms_doubles_caps_and_disarms() {
        let b = AcceptBackoff::default();
        let emfile: io::Result<()> = Err(io::Error::from_raw_os_error(libc::EMFILE));
        let other: io::Result<()> = Err(io::Error::from(io::ErrorKind::ConnectionAborted));
        b.record(&other);
        assert_eq!(b.ms.load(Ordering::Relaxed), 0, "only descriptor shortage arms it");
        b.record(&emfile);
        assert_eq!(b.ms.load(Ordering::Relaxed), 10);
        b.record(&Err::<(), _>(io::Error::from_raw_os_error(libc::ENFILE)));
        assert_eq!(b.ms.load(Ordering::Relaxed), 20);
        for _ in 0..10 {
            b.record(&emfile);
        }
        assert_eq!(b.ms.load(Ordering::Relaxed), 100);
        b.record(&Ok(()));
        assert_eq!(b.ms.load(Ordering::Relaxed), 0);
    }
}
