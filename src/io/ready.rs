//! [`Ready`]: the readiness a socket was found to have.

use std::fmt;
use std::ops::{BitOr, BitOrAssign};

use super::Interest;

/// The readiness a socket reported: readable, writable, read side closed, write side
/// closed. Returned by `ready(Interest)`.
///
/// Readiness is a hint: the next operation may still find nothing to do, which the
/// `try_*` calls report as `Ok(None)`.
///
/// # Examples
///
/// ```
/// use blitz_io::io::Ready;
/// let r = Ready::READABLE | Ready::READ_CLOSED;
/// assert!(r.is_readable() && r.is_read_closed() && !r.is_writable());
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Ready(u8);

const READABLE: u8 = 0b0001;
const WRITABLE: u8 = 0b0010;
const READ_CLOSED: u8 = 0b0100;
const WRITE_CLOSED: u8 = 0b1000;

impl Ready {
    /// No readiness.
    pub const EMPTY: Ready = Ready(0);
    /// Readable.
    pub const READABLE: Ready = Ready(READABLE);
    /// Writable.
    pub const WRITABLE: Ready = Ready(WRITABLE);
    /// The peer closed its write side (reads return EOF).
    pub const READ_CLOSED: Ready = Ready(READ_CLOSED);
    /// The write side is closed (writes fail).
    pub const WRITE_CLOSED: Ready = Ready(WRITE_CLOSED);
    /// Every readiness bit.
    pub const ALL: Ready = Ready(READABLE | WRITABLE | READ_CLOSED | WRITE_CLOSED);

    /// True if readable.
    pub const fn is_readable(self) -> bool {
        self.0 & (READABLE | READ_CLOSED) != 0
    }
    /// True if writable.
    pub const fn is_writable(self) -> bool {
        self.0 & (WRITABLE | WRITE_CLOSED) != 0
    }
    /// True if the read side is closed.
    pub const fn is_read_closed(self) -> bool {
        self.0 & READ_CLOSED != 0
    }
    /// True if the write side is closed.
    pub const fn is_write_closed(self) -> bool {
        self.0 & WRITE_CLOSED != 0
    }
    /// True if no bit is set.
    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }

    pub(crate) const fn as_usize(self) -> usize {
        self.0 as usize
    }

    pub(crate) const fn from_usize(v: usize) -> Ready {
        Ready((v & 0b1111) as u8)
    }

    /// The bits of `self` that `interest` asks about.
    pub(crate) const fn intersection(self, interest: Interest) -> Ready {
        let mut mask = 0;
        if interest.is_readable() {
            mask |= READABLE | READ_CLOSED;
        }
        if interest.is_writable() {
            mask |= WRITABLE | WRITE_CLOSED;
        }
        Ready(self.0 & mask)
    }

    /// `self` without the bits in `other`.
    pub(crate) const fn without(self, other: Ready) -> Ready {
        Ready(self.0 & !other.0)
    }

    /// Readiness from a mio event. An error condition counts as readable and writable,
    /// so that whichever operation runs next reports it.
    pub(crate) fn from_mio(ev: &mio::event::Event) -> Ready {
        let mut r = 0;
        if ev.is_readable() || ev.is_error() {
            r |= READABLE;
        }
        if ev.is_writable() || ev.is_error() {
            r |= WRITABLE;
        }
        if ev.is_read_closed() {
            r |= READ_CLOSED;
        }
        if ev.is_write_closed() {
            r |= WRITE_CLOSED;
        }
        Ready(r)
    }
}

impl BitOr for Ready {
    type Output = Ready;
    fn bitor(self, rhs: Ready) -> Ready {
        Ready(self.0 | rhs.0)
    }
}

impl BitOrAssign for Ready {
    fn bitor_assign(&mut self, rhs: Ready) {
        self.0 |= rhs.0;
    }
}

impl fmt::Debug for Ready {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ready")
            .field("readable", &(self.0 & READABLE != 0))
            .field("writable", &(self.0 & WRITABLE != 0))
            .field("read_closed", &self.is_read_closed())
            .field("write_closed", &self.is_write_closed())
            .finish()
    }
}
