//! The timer wheel under fuzzer-chosen insert / remove / reset / poll / advance
//! sequences, checked against a model: no timer fires early, every due timer fires
//! exactly once and in deadline order, pending counts and next expirations agree.
#![no_main]

use blitz_io::__fuzz::{decode_wheel, run_wheel};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let (start, ops) = decode_wheel(data);
    if let Err(violation) = run_wheel(start, &ops) {
        panic!("timer wheel model violation: {violation}\nstart = {start}\nops = {ops:?}");
    }
});
