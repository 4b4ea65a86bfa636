//! `yield_now`: give other tasks a turn.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

/// Yields to the scheduler once, letting other ready tasks run before this one resumes.
///
/// The task is re-queued at the back of its worker's queue (not in the "run next" slot),
/// so every task that was ready before it runs first.
///
/// # Cancel safety
///
/// Cancel safe: dropping the future loses nothing.
///
/// # Examples
///
/// ```
/// blitz_io::run(async {
///     blitz_io::task::yield_now().await;
/// });
/// ```
pub async fn yield_now() {
    YieldNow { yielded: false }.await
}

struct YieldNow {
    yielded: bool,
}

impl Future for YieldNow {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.yielded {
            return Poll::Ready(());
        }
        self.yielded = true;
        // A wake while running makes the poller resubmit the task with `yielded` set,
        // which queues it behind the others.
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}
