//! Error helpers shared by the whole crate.
//!
//! Bad input is an [`io::Error`] of kind [`io::ErrorKind::InvalidInput`] whose message
//! says what was wrong; these helpers keep that one-liner in one place.

use std::io;

/// An `InvalidInput` error carrying `msg`.
pub(crate) fn invalid_input(msg: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, msg.into())
}
