//! [`timeout`], [`timeout_at`] and [`Elapsed`].

use std::fmt;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use super::{sleep_until, Sleep};

/// The error of [`timeout`]: the deadline passed first.
///
/// Converts into an [`io::Error`] of kind [`io::ErrorKind::TimedOut`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Elapsed(());

impl fmt::Display for Elapsed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("deadline has elapsed")
    }
}

impl std::error::Error for Elapsed {}

impl From<Elapsed> for io::Error {
    fn from(_: Elapsed) -> io::Error {
        io::Error::new(io::ErrorKind::TimedOut, "deadline has elapsed")
    }
}

/// Runs `future` with a time limit: `Ok(output)` if it completes within `duration`,
/// `Err(Elapsed)` otherwise (the future is then dropped).
///
/// The future is polled first, so one that is ready at once succeeds even with a zero
/// duration.
///
/// # Cancel safety
///
/// As cancel safe as `future`: on timeout, `future` is dropped, with the consequences
/// its own `# Cancel safety` section describes.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use blitz_io::time::{sleep, timeout};
/// blitz_io::run(async {
///     assert!(timeout(Duration::from_millis(10), sleep(Duration::from_secs(5))).await.is_err());
///     assert_eq!(timeout(Duration::from_secs(5), async { 7 }).await, Ok(7));
/// });
/// ```
pub fn timeout<F: Future>(duration: Duration, future: F) -> Timeout<F> {
    let deadline = super::sleep::after(Instant::now(), duration);
    timeout_at(deadline, future)
}

/// Like [`timeout`] with an absolute deadline.
pub fn timeout_at<F: Future>(deadline: Instant, future: F) -> Timeout<F> {
    Timeout { future: Box::pin(future), sleep: sleep_until(deadline) }
}

/// Future returned by [`timeout`].
#[must_use = "futures do nothing unless awaited"]
pub struct Timeout<F: Future> {
    // Boxed so `Timeout` is `Unpin` without unsafe pin projection; one allocation per
    // timeout is small next to the timer itself.
    future: Pin<Box<F>>,
    sleep: Sleep,
}

impl<F: Future> fmt::Debug for Timeout<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Timeout").field("deadline", &self.sleep.deadline()).finish()
    }
}

impl<F: Future> Future for Timeout<F> {
    type Output = Result<F::Output, Elapsed>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        if let Poll::Ready(v) = self.future.as_mut().poll(cx) {
            return Poll::Ready(Ok(v));
        }
        match Pin::new(&mut self.sleep).poll(cx) {
            Poll::Ready(()) => Poll::Ready(Err(Elapsed(()))),
            Poll::Pending => Poll::Pending,
        }
    }
}
