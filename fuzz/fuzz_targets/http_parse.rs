//! The examples' HTTP/1.x request-head parser (`examples/common/http_parse.rs`, included
//! with `#[path]`) on arbitrary bytes and arbitrary limits.
//!
//! Checks: no panic; a complete head ends with a blank line inside the limit; parsing is
//! incremental (a prefix of an accepted request is `Partial` or the same request, a
//! prefix is never rejected when the whole is accepted, and once a prefix is rejected
//! every longer input is rejected too); every rejection maps to a 400/431 response and
//! converts to an `io::Error`; every accepted request gets a routed response.
#![no_main]

#[path = "../../examples/common/http_parse.rs"]
mod http_parse;

use http_parse::{error_response, parse_request, render, route, Parse, MAX_HEAD_BYTES};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let (max_head, cuts, buf) = match data {
        [m, c1, c2, rest @ ..] => {
            let max = match *m {
                0..=63 => usize::from(*m) + 1,
                64..=127 => usize::from(*m) * 16,
                _ => MAX_HEAD_BYTES,
            };
            (max, [usize::from(*c1), usize::from(*c2) * 16], rest)
        }
        _ => return,
    };
    let whole = parse_request(buf, max_head);
    match &whole {
        Ok(Parse::Complete { request, head_len }) => {
            assert!(*head_len <= max_head && *head_len <= buf.len());
            assert!(buf[..*head_len].ends_with(b"\r\n\r\n"), "{head_len} {buf:?}");
            let resp = route(request);
            assert!(matches!(resp.status, 200 | 404 | 405));
            assert!(render(resp).starts_with(b"HTTP/1.1 "));
            // The head alone parses to the same request.
            assert_eq!(parse_request(&buf[..*head_len], max_head), whole);
            // One byte short of the head is not complete yet, and not an error.
            assert_eq!(parse_request(&buf[..*head_len - 1], max_head), Ok(Parse::Partial));
        }
        // "Need more" only while the limit leaves room for more.
        Ok(Parse::Partial) => assert!(buf.len() < max_head, "{} >= {max_head}", buf.len()),
        Err(e) => {
            let resp = error_response(*e);
            assert!(matches!(resp.status, 400 | 431));
            let io_err = std::io::Error::new(std::io::ErrorKind::InvalidData, *e);
            assert!(!io_err.to_string().is_empty());
        }
    }
    // Prefixes: the same verdict as the whole, or "need more".
    for cut in cuts {
        let cut = cut.min(buf.len());
        match parse_request(&buf[..cut], max_head) {
            // A prefix may lack the bytes that complete or reveal an error in the whole.
            Ok(Parse::Partial) => {}
            Ok(complete @ Parse::Complete { .. }) => {
                assert_eq!(whole, Ok(complete), "prefix of {cut} bytes complete")
            }
            Err(e) => assert!(whole.is_err(), "prefix of {cut} bytes rejected ({e}) but the whole was accepted"),
        }
    }
});
