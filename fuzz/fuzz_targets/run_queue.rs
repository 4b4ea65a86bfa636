//! The current-thread run queue under fuzzer-chosen spawn / abort / yield / wake /
//! spurious-wake / remote-wake / drop-handle / await sequences: every task that was not
//! aborted completes exactly once, every task's future is dropped exactly once, and no
//! panic escapes.
//!
//! Tasks never panic on purpose here: libFuzzer's panic hook aborts the process even on
//! a panic the runtime catches (tests/proptest_inputs.rs covers panicking tasks).
#![no_main]

use blitz_io::__fuzz::{decode_tasks, run_tasks};
use blitz_io::runtime::{Builder, Runtime};
use libfuzzer_sys::fuzz_target;

thread_local! {
    /// One runtime for the whole run: building one per input would measure epoll setup.
    static RT: Runtime = Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("cannot build a current-thread runtime");
}

fuzz_target!(|data: &[u8]| {
    let ops = decode_tasks(data, false);
    if let Err(violation) = RT.with(|rt| run_tasks(rt, &ops)) {
        panic!("run queue violation: {violation}\nops = {ops:?}");
    }
});
