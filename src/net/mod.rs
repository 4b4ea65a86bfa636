//! Networking: TCP, UDP and Unix sockets on the runtime's I/O driver.

mod addr;
pub mod tcp;
#[cfg(unix)]
pub mod unix;

pub use addr::{resolve, resolve_first, Address, Family};
pub use tcp::Keepalive;
#[cfg(unix)]
pub use unix::{UCred, UnixAddr};
