//! [`Interest`]: which readiness a caller waits for.

use std::fmt;
use std::ops::{BitOr, BitOrAssign};

/// The readiness a caller waits for: [`READABLE`](Interest::READABLE),
/// [`WRITABLE`](Interest::WRITABLE), or both (`Interest::READABLE | Interest::WRITABLE`).
///
/// # Examples
///
/// ```
/// use blitz_io::io::Interest;
/// let both = Interest::READABLE | Interest::WRITABLE;
/// assert!(both.is_readable() && both.is_writable());
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Interest(u8);

const R: u8 = 0b01;
const W: u8 = 0b10;

impl Interest {
    /// Interest in read readiness (data, EOF or an error to read).
    pub const READABLE: Interest = Interest(R);
    /// Interest in write readiness (buffer space, or an error to report).
    pub const WRITABLE: Interest = Interest(W);

    /// True if this includes read readiness.
    pub const fn is_readable(self) -> bool {
        self.0 & R != 0
    }

    /// True if this includes write readiness.
    pub const fn is_writable(self) -> bool {
        self.0 & W != 0
    }

    /// Both interests combined (`const` form of `|`).
    pub const fn add(self, other: Interest) -> Interest {
        Interest(self.0 | other.0)
    }
}

impl BitOr for Interest {
    type Output = Interest;
    fn bitor(self, rhs: Interest) -> Interest {
        self.add(rhs)
    }
}

impl BitOrAssign for Interest {
    fn bitor_assign(&mut self, rhs: Interest) {
        *self = self.add(rhs);
    }
}

impl fmt::Debug for Interest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.is_readable(), self.is_writable()) {
            (true, true) => f.write_str("READABLE | WRITABLE"),
            (true, false) => f.write_str("READABLE"),
            (false, true) => f.write_str("WRITABLE"),
            (false, false) => f.write_str("(none)"),
        }
    }
}
