//! The examples' length-prefixed framing (`examples/common/framing.rs`, included with
//! `#[path]`): a byte stream cut into fuzzer-chosen pieces.
//!
//! Checks: no panic; the decoder yields exactly the frames (and the too-large error at
//! exactly the place) that a one-shot reference decoder finds in the whole stream,
//! however the stream is split; `buffered()` accounts for every byte; re-encoding the
//! frames gives back the consumed bytes; a too-large frame converts to an `io::Error`.
#![no_main]

#[path = "../../examples/common/framing.rs"]
mod framing;

use framing::{encode_frame, FrameDecoder, FrameTooLarge, HEADER_LEN, MAX_FRAME_LEN};
use libfuzzer_sys::fuzz_target;

/// The reference: frames of the whole stream, then the error that stops it, if any.
fn reference(stream: &[u8], max: usize) -> (Vec<Vec<u8>>, Option<FrameTooLarge>) {
    let mut frames = Vec::new();
    let mut at = 0;
    while stream.len() - at >= HEADER_LEN {
        let len = u32::from_be_bytes([stream[at], stream[at + 1], stream[at + 2], stream[at + 3]]);
        if len as usize > max {
            return (frames, Some(FrameTooLarge { len: u64::from(len), max }));
        }
        let end = at + HEADER_LEN + len as usize;
        if end > stream.len() {
            break;
        }
        frames.push(stream[at + HEADER_LEN..end].to_vec());
        at = end;
    }
    (frames, None)
}

fuzz_target!(|data: &[u8]| {
    let (max, mut seed, stream) = match data {
        [m, s, rest @ ..] => {
            let max = if *m < 200 { usize::from(*m) } else { MAX_FRAME_LEN };
            (max, u32::from(*s) | 1, rest)
        }
        _ => return,
    };
    let (expected, expected_err) = reference(stream, max);

    let mut decoder = FrameDecoder::new(max);
    let mut frames = Vec::new();
    let mut error = None;
    let mut fed = 0;
    'feed: while fed < stream.len() {
        // Piece sizes from a small LCG: mostly short, sometimes empty, sometimes long.
        seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12_345);
        let piece = match (seed >> 16) % 8 {
            0 => 0,
            1..=5 => ((seed >> 20) % 9) as usize + 1,
            _ => ((seed >> 8) % 600) as usize,
        };
        let end = (fed + piece).min(stream.len());
        decoder.extend(&stream[fed..end]);
        fed = end;
        loop {
            match decoder.next_frame() {
                Ok(Some(frame)) => frames.push(frame),
                Ok(None) => break,
                Err(e) => {
                    error = Some(e);
                    break 'feed;
                }
            }
        }
    }
    assert_eq!(frames, expected);
    assert_eq!(error, expected_err);
    if let Some(e) = error {
        assert!(e.len > max as u64);
        let io_err: std::io::Error = e.into();
        assert_eq!(io_err.kind(), std::io::ErrorKind::InvalidData);
    } else {
        let consumed: usize = frames.iter().map(|f| HEADER_LEN + f.len()).sum();
        assert_eq!(decoder.buffered(), stream.len() - consumed);
        // Re-encoding the frames reproduces the consumed bytes.
        let mut again = Vec::with_capacity(consumed);
        for f in &frames {
            match encode_frame(f, max) {
                Ok(bytes) => again.extend_from_slice(&bytes),
                Err(e) => panic!("decoded frame of {} bytes fails to encode: {e}", f.len()),
            }
        }
        assert_eq!(again, stream[..consumed]);
    }
    // Encoding enforces the limit.
    let over = vec![0u8; max.min(4096) + 1];
    if over.len() > max {
        assert!(encode_frame(&over, max).is_err());
    }
});
