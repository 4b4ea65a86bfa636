//! Unix domain sockets.

mod addr;
mod cred;
mod datagram;
mod listener;
mod stream;

pub use addr::UnixAddr;
pub use cred::UCred;
pub use datagram::{UnixDatagram, UnixRecvFromResult};
pub use listener::{UnixAcceptResult, UnixListener};
pub use stream::UnixStream;

/// The borrowed read half of a [`UnixStream`], from [`UnixStream::split`].
pub type ReadHalf<'a> = crate::net::split::ReadHalf<'a, UnixStream>;
/// The borrowed write half of a [`UnixStream`], from [`UnixStream::split`].
pub type WriteHalf<'a> = crate::net::split::WriteHalf<'a, UnixStream>;
/// The owned read half of a [`UnixStream`], from [`UnixStream::into_split`].
pub type OwnedReadHalf = crate::net::split::OwnedReadHalf<UnixStream>;
/// The owned write half of a [`UnixStream`], from [`UnixStream::into_split`]; dropping
/// it shuts the write direction down.
pub type OwnedWriteHalf = crate::net::split::OwnedWriteHalf<UnixStream>;
/// The error of reuniting halves of two different [`UnixStream`]s.
pub type ReuniteError = crate::net::split::ReuniteError<UnixStream>;
