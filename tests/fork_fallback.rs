//! A child process forked after the fallback blocking pool started (`lookup_host`
//! outside a runtime) gets a pool of its own: the inherited one counts idle threads that
//! did not come along, and a lookup handed to them would never complete. One test in
//! its own binary: the fork happens with as few threads as possible.

use std::time::Duration;

#[test]
fn lookup_in_a_child_forked_after_the_pool_started() {
    // Starts a pool thread, kept alive 10 s: idle when the fork happens.
    futures_executor::block_on(blitz_io::net::lookup_host("localhost", 80)).unwrap();
    std::thread::sleep(Duration::from_millis(50));
    // SAFETY: the child only starts a thread, does a lookup, waits on a channel and
    // leaves with `_exit` (no destructors, no test-harness state touched).
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork failed");
    if pid == 0 {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let r = futures_executor::block_on(blitz_io::net::lookup_host("localhost", 80));
            let _ = tx.send(r.is_ok());
        });
        let code = match rx.recv_timeout(Duration::from_secs(5)) {
            Ok(true) => 0,
            Ok(false) => 2,
            Err(_) => 3,
        };
        // SAFETY: ends the child at once, as a forked child of a threaded process should.
        unsafe { libc::_exit(code) };
    }
    let mut status = 0;
    // SAFETY: waits for the child forked above; `status` is a valid out-pointer.
    let waited = unsafe { libc::waitpid(pid, &mut status, 0) };
    assert_eq!(waited, pid);
    assert!(libc::WIFEXITED(status), "child did not exit normally: {status}");
    assert_eq!(libc::WEXITSTATUS(status), 0, "child: 2 = lookup failed, 3 = lookup hung after fork");
}
