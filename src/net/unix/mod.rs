//! Unix domain sockets.

mod addr;
mod cred;

pub use addr::UnixAddr;
pub use cred::UCred;
