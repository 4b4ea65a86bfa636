//! The I/O driver: one mio `Poll`, the token table, and the timer wheel, turned by
//! whichever thread parks.
//!
//! * [`driver`]: [`Driver`], one turn = `epoll_wait` → set readiness → fire timers → wake.
//! * [`scheduled_io`]: the per-socket readiness word and waiters (the readiness core).
//! * [`fallback`]: the driver that serves futures polled outside any blitz-io runtime.

pub(crate) mod driver;
pub(crate) mod fallback;
pub(crate) mod scheduled_io;
pub(crate) mod tokens;

pub(crate) use driver::{Core, Driver};
pub(crate) use scheduled_io::{Direction, ReadyEvent};
