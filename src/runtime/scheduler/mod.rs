//! The two schedulers behind one enum, and `block_on` for threads that are not workers.
//!
//! * [`current_thread`]: one thread (the one in `block_on`) runs every task, polls the
//!   driver when idle. No cross-thread synchronisation on its hot path.
//! * [`multi_thread`]: N workers with local queues, a LIFO slot, a global injector and
//!   work stealing; see its module doc for the park/wake protocol.

pub(crate) mod current_thread;
pub(crate) mod multi_thread;

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};

use super::io::Driver;
use crate::task::owned::OwnedTasks;
use crate::task::JoinHandle;

/// Which scheduler a runtime uses.
#[derive(Debug, Clone)]
pub(crate) enum Scheduler {
    CurrentThread(Arc<current_thread::Shared>),
    MultiThread(Arc<multi_thread::Shared>),
}

impl Scheduler {
    pub(crate) fn spawn<F>(&self, owned: &Arc<OwnedTasks>, future: F) -> JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        match self {
            Scheduler::CurrentThread(s) => {
                let s = s.clone();
                crate::task::spawn_with(owned, future, move |r, info| s.schedule(r, info))
            }
            Scheduler::MultiThread(s) => {
                let s = s.clone();
                crate::task::spawn_with(owned, future, move |r, info| s.schedule(r, info))
            }
        }
    }

    pub(crate) fn block_on<F: Future>(&self, driver: &Arc<Driver>, future: F) -> F::Output {
        match self {
            Scheduler::CurrentThread(s) => current_thread::block_on(s, future),
            Scheduler::MultiThread(_) => block_on_thread(driver, future),
        }
    }

    /// Whether this runtime's driver is turned for the current thread: always on the
    /// multi-thread flavour (its workers turn it), only on the `block_on` thread for the
    /// current-thread flavour.
    pub(crate) fn drives_here(&self) -> bool {
        match self {
            Scheduler::CurrentThread(s) => current_thread::is_driving_thread(s),
            Scheduler::MultiThread(_) => true,
        }
    }

    pub(crate) fn flavor(&self) -> &'static str {
        match self {
            Scheduler::CurrentThread(_) => "current_thread",
            Scheduler::MultiThread(_) => "multi_thread",
        }
    }
}

/// Wakes a thread blocked in [`block_on_thread`].
struct ThreadWaker {
    thread: std::thread::Thread,
    notified: AtomicBool,
}

impl Wake for ThreadWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }
    fn wake_by_ref(self: &Arc<Self>) {
        if !self.notified.swap(true, Ordering::AcqRel) {
            self.thread.unpark();
        }
    }
}

/// Polls `future` on this thread, sleeping (`thread::park`) while it is pending. Tasks,
/// I/O and timers are served by the runtime's workers meanwhile.
pub(crate) fn block_on_thread<F: Future>(_driver: &Arc<Driver>, future: F) -> F::Output {
    let tw = Arc::new(ThreadWaker { thread: std::thread::current(), notified: AtomicBool::new(false) });
    let waker = Waker::from(tw.clone());
    let mut cx = Context::from_waker(&waker);
    let mut future = std::pin::pin!(future);
    crate::runtime::coop::unconstrained();
    let _region = crate::runtime::context::BlockingRegion::enter();
    loop {
        if let Poll::Ready(v) = future.as_mut().poll(&mut cx) {
            return v;
        }
        while !tw.notified.swap(false, Ordering::AcqRel) {
            std::thread::park();
        }
    }
}
