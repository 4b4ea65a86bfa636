//! TCP.

mod options;

pub use options::Keepalive;
