//! `lookup_host` (blocking pool inside a runtime, a process-wide fallback pool outside), `connect_host`
//! (tries every address), `connect` with a host name, and bad input.

mod support;

use std::future::Future;
use std::io::ErrorKind;
use std::time::Duration;

use blitz_io::net::{self, lookup_host, Address, TcpListener};
use blitz_io::time::timeout;

const LIMIT: Duration = Duration::from_secs(20);

async fn bounded<F: Future>(f: F) -> F::Output {
    timeout(LIMIT, f).await.expect("test body timed out")
}

#[blitz_io::test]
async fn lookup_localhost_and_numeric_hosts() {
    bounded(async {
        let addrs = lookup_host("localhost", 8080).await.unwrap();
        assert!(!addrs.is_empty());
        for a in &addrs {
            assert!(a.ip().is_loopback(), "{a}");
            assert_eq!(a.port(), 8080);
        }
        assert_eq!(lookup_host("127.0.0.1", 1).await.unwrap(), vec![Address::loopback_v4(1)]);
        assert_eq!(lookup_host("::1", 2).await.unwrap(), vec![Address::loopback_v6(2)]);
    })
    .await
}

#[blitz_io::test(flavor = "multi_thread", worker_threads = 2)]
async fn lookup_runs_off_the_workers() {
    bounded(async {
        // Many lookups at once complete (they run on the blocking pool, not a worker).
        let mut handles = Vec::new();
        for i in 0..16u16 {
            handles.push(blitz_io::task::spawn(async move { lookup_host("localhost", i).await }));
        }
        for (i, h) in handles.into_iter().enumerate() {
            let addrs = h.await.unwrap().unwrap();
            assert!(addrs.iter().all(|a| a.port() == i as u16));
        }
    })
    .await
}

#[test]
fn lookup_outside_a_runtime() {
    let addrs = futures_executor::block_on(lookup_host("localhost", 53)).unwrap();
    assert!(addrs.iter().all(|a| a.ip().is_loopback() && a.port() == 53));
    let err = futures_executor::block_on(lookup_host("", 53)).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
}

/// Lookups outside a runtime share the fallback pool: a burst of concurrent ones starts
/// at most its 16 threads, not one each, and a thread outlives its lookup to serve the
/// next (before, each lookup started a thread that exited with it).
#[test]
fn lookups_outside_a_runtime_share_a_pool() {
    support::with_timeout(30, || {
        let lookups: Vec<_> =
            (0..40).map(|_| std::thread::spawn(|| futures_executor::block_on(lookup_host("localhost", 80)))).collect();
        let mut most = 0;
        while !lookups.iter().all(std::thread::JoinHandle::is_finished) {
            most = most.max(support::threads_named("blitz-io-lookup"));
            std::thread::sleep(Duration::from_micros(200));
        }
        for l in lookups {
            assert!(l.join().unwrap().unwrap().iter().all(|a| a.ip().is_loopback()));
        }
        assert!(most <= 16, "{most} lookup threads for 40 concurrent lookups");
        for _ in 0..5 {
            futures_executor::block_on(lookup_host("localhost", 80)).unwrap();
        }
        // Kept alive (10 s) for the next lookup.
        std::thread::sleep(Duration::from_millis(100));
        let idle = support::threads_named("blitz-io-lookup");
        assert!((1..=16).contains(&idle), "{idle} lookup threads kept after the lookups");
    });
}

#[blitz_io::test]
async fn connect_host_to_a_local_listener() {
    bounded(async {
        // Listen on IPv4 only: if "localhost" also resolves to ::1, that address is
        // refused and connect_host must go on to the next one.
        let listener = TcpListener::bind(Address::loopback_v4(0)).unwrap();
        let port = listener.local_addr().unwrap().port();
        let stream = net::connect_host("localhost", port).await.unwrap();
        assert_eq!(stream.peer_addr().unwrap(), listener.local_addr().unwrap());
        let conn = listener.accept().await.unwrap();
        assert_eq!(conn.peer_addr, stream.local_addr().unwrap());

        let s = net::connect(&format!("localhost:{port}")).await.unwrap();
        assert_eq!(s.peer_addr().unwrap().port(), port);
        let s = net::connect_host("127.0.0.1", port).await.unwrap();
        assert_eq!(s.peer_addr().unwrap(), listener.local_addr().unwrap());
    })
    .await
}

#[blitz_io::test]
async fn connect_host_reports_the_last_error() {
    bounded(async {
        let l = TcpListener::bind(Address::loopback_v4(0)).unwrap();
        let port = l.local_addr().unwrap().port();
        drop(l);
        let err = net::connect_host("localhost", port).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::ConnectionRefused, "{err:?}");
    })
    .await
}

#[blitz_io::test]
async fn bad_input_is_invalid_input() {
    bounded(async {
        for (host, port) in [("localhost", 0u16), ("", 80), ("example.com:80", 80)] {
            let err = net::connect_host(host, port).await.unwrap_err();
            assert_eq!(err.kind(), ErrorKind::InvalidInput, "{host:?} {port}: {err:?}");
        }
        assert_eq!(lookup_host("", 1).await.unwrap_err().kind(), ErrorKind::InvalidInput);
        assert_eq!(lookup_host("a:b", 1).await.unwrap_err().kind(), ErrorKind::InvalidInput);
        for bad in ["", "nonsense", "1.2.3.4", "localhost", "[::1]:99999", "host:port"] {
            let err = net::connect(bad).await.unwrap_err();
            assert_eq!(err.kind(), ErrorKind::InvalidInput, "{bad:?}: {err:?}");
        }
    })
    .await
}

/// A lookup whose blocking job the pool refuses (the runtime is gone) fails with a
/// plain error, not `Interrupted`: callers retry `Interrupted` at once, and this would
/// never succeed.
#[test]
fn lookup_after_the_runtime_is_gone_is_not_interrupted() {
    support::with_timeout(10, || {
        let rt = blitz_io::runtime::Builder::new_current_thread().build().unwrap();
        let handle = rt.handle().clone();
        drop(rt);
        let err = handle.block_on(blitz_io::net::lookup_host("localhost", 80)).unwrap_err();
        assert_ne!(err.kind(), std::io::ErrorKind::Interrupted, "{err}");
        assert!(err.to_string().contains("cancelled"), "{err}");
    });
}
