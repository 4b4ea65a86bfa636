//! `Address::parse` on arbitrary text: never panics; a rejection is an `InvalidInput`
//! error with a message (and std rejects the text too); an accepted address prints as
//! text that parses back to the same address.
#![no_main]

use std::io::ErrorKind;
use std::net::SocketAddr;

use blitz_io::net::Address;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // Invalid UTF-8 still reaches the parser, through the lossy conversion.
    let text = String::from_utf8_lossy(data);
    match Address::parse(&text) {
        Ok(addr) => {
            assert_eq!(text.parse::<SocketAddr>().ok(), Some(addr.to_std()));
            let printed = addr.to_string();
            match Address::parse(&printed) {
                Ok(again) => assert_eq!(again, addr, "{text:?} -> {printed:?}"),
                Err(e) => panic!("{text:?} printed as {printed:?}, which fails: {e}"),
            }
        }
        Err(e) => {
            assert_eq!(e.kind(), ErrorKind::InvalidInput, "{text:?}");
            assert!(!e.to_string().is_empty());
            assert!(text.parse::<SocketAddr>().is_err(), "{text:?} rejected, std accepts");
        }
    }
});
