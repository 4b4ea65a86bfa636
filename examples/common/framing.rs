//! Length-prefixed framing for `examples/chat_framing.rs`: a frame is a `u32` big-endian
//! payload length followed by that many payload bytes.
//!
//! Pure code, no I/O: [`encode_frame`] builds a frame, [`FrameDecoder`] turns a byte
//! stream that arrives in arbitrary pieces back into frames. A length above the
//! decoder's limit is an error as soon as the 4-byte header has arrived, before any of
//! the (possibly huge) payload is buffered. Nothing here panics on any input
//! (`tests/examples.rs` checks that with proptest).

#![allow(dead_code)] // each includer uses a different subset

use std::fmt;
use std::io;

/// Bytes in a frame header.
pub const HEADER_LEN: usize = 4;
/// The largest payload the chat protocol allows (the seed's `MAX_MSG_LEN`).
pub const MAX_FRAME_LEN: usize = 64 * 1024;

/// A frame whose declared length is above the limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameTooLarge {
    /// The payload length the frame declared (or the payload had, when encoding).
    pub len: u64,
    /// The limit it exceeded.
    pub max: usize,
}

impl fmt::Display for FrameTooLarge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "frame of {} bytes exceeds the limit of {} bytes", self.len, self.max)
    }
}

impl std::error::Error for FrameTooLarge {}

impl From<FrameTooLarge> for io::Error {
    fn from(e: FrameTooLarge) -> io::Error {
        io::Error::new(io::ErrorKind::InvalidData, e)
    }
}

/// Encodes `payload` as one frame.
///
/// # Errors
///
/// [`FrameTooLarge`] if `payload` is longer than `max` (or than `u32::MAX`).
pub fn encode_frame(payload: &[u8], max: usize) -> Result<Vec<u8>, FrameTooLarge> {
    let too_large = FrameTooLarge { len: payload.len() as u64, max };
    if payload.len() > max {
        return Err(too_large);
    }
    let len = u32::try_from(payload.len()).map_err(|_| too_large)?;
    let mut frame = Vec::with_capacity(HEADER_LEN + payload.len());
    frame.extend_from_slice(&len.to_be_bytes());
    frame.extend_from_slice(payload);
    Ok(frame)
}

/// Reassembles frames from a byte stream received in pieces of any size.
#[derive(Debug)]
pub struct FrameDecoder {
    buf: Vec<u8>,
    /// Start of the unconsumed bytes in `buf` (consumed bytes are dropped lazily).
    start: usize,
    max: usize,
}

impl FrameDecoder {
    /// A decoder that rejects payloads longer than `max` bytes.
    pub fn new(max: usize) -> FrameDecoder {
        FrameDecoder { buf: Vec::new(), start: 0, max }
    }

    /// Appends bytes received from the stream.
    pub fn extend(&mut self, data: &[u8]) {
        if self.start > 0 && self.start == self.buf.len() {
            self.buf.clear();
            self.start = 0;
        } else if self.start > 4096 && self.start * 2 > self.buf.len() {
            self.buf.drain(..self.start);
            self.start = 0;
        }
        self.buf.extend_from_slice(data);
    }

    /// Takes the next complete frame's payload, `Ok(None)` if more bytes are needed.
    ///
    /// # Errors
    ///
    /// [`FrameTooLarge`] if the next frame declares a length above the limit. The
    /// stream cannot be resynchronised after that: drop the connection.
    pub fn next_frame(&mut self) -> Result<Option<Vec<u8>>, FrameTooLarge> {
        let pending = &self.buf[self.start..];
        let Some(header) = pending.get(..HEADER_LEN) else { return Ok(None) };
        let mut len_bytes = [0u8; HEADER_LEN];
        len_bytes.copy_from_slice(header);
        let len = u32::from_be_bytes(len_bytes);
        let len_usize = usize::try_from(len).ok().filter(|&l| l <= self.max);
        let Some(len) = len_usize else { return Err(FrameTooLarge { len: u64::from(len), max: self.max }) };
        let Some(payload) = pending.get(HEADER_LEN..HEADER_LEN + len) else { return Ok(None) };
        let payload = payload.to_vec();
        self.start += HEADER_LEN + len;
        Ok(Some(payload))
    }

    /// Bytes received but not yet returned as frames.
    pub fn buffered(&self) -> usize {
        self.buf.len() - self.start
    }
}
