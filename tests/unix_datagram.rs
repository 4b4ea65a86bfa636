//! `UnixDatagram`: pairs, paths, abstract names, unnamed senders, truncation, bind
//! conflicts, back-pressure, sharing between tasks, cancel safety, the fallback driver.
//! Socket files live in a fresh directory per test under the system temp dir.

#![cfg(unix)]

use std::future::{poll_fn, Future};
use std::io::ErrorKind;
use std::net::Shutdown;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use blitz_io::io::Interest;
use blitz_io::net::{UnixAddr, UnixDatagram};
use blitz_io::time::{sleep, timeout};

const LIMIT: Duration = Duration::from_secs(10);

async fn bounded<F: Future>(f: F) -> F::Output {
    timeout(LIMIT, f).await.expect("test body timed out")
}

/// A fresh directory for socket files, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> TempDir {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("bio-udg-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn pair_try_tier_without_a_runtime() {
    let (a, b) = UnixDatagram::pair().unwrap();
    assert_eq!(a.try_send(b"one").unwrap(), Some(3));
    assert_eq!(a.try_send(b"two!").unwrap(), Some(4));
    let mut buf = [0u8; 16];
    assert_eq!(b.try_recv(&mut buf).unwrap(), Some(3));
    assert_eq!(&buf[..3], b"one");
    let r = b.try_recv_from(&mut buf).unwrap().unwrap();
    assert_eq!((&buf[..r.len], r.truncated), (&b"two!"[..], false));
    assert!(r.addr.is_unnamed());
    assert_eq!(b.try_recv(&mut buf).unwrap(), None);
    assert!(a.local_addr().unwrap().is_unnamed());
    assert!(a.peer_addr().unwrap().is_unnamed());
}

#[blitz_io::test]
async fn pair_async_round_trip_and_truncation() {
    bounded(async {
        let (a, b) = UnixDatagram::pair().unwrap();
        a.send(b"hello").await.unwrap();
        let mut buf = [0u8; 16];
        let n = b.recv(&mut buf).await.unwrap();
        assert_eq!(&buf[..n], b"hello");

        let big = [5u8; 300];
        b.send(&big).await.unwrap();
        let mut small = [0u8; 64];
        let r = a.recv_from(&mut small).await.unwrap();
        assert_eq!((r.len, r.truncated), (64, true));
        assert_eq!(small, [5u8; 64]);
        // The rest of the datagram is gone.
        assert_eq!(a.try_recv(&mut small).unwrap(), None);

        b.send(&[1u8; 64]).await.unwrap();
        let r = a.recv_from(&mut small).await.unwrap();
        assert_eq!((r.len, r.truncated), (64, false));

        // An empty datagram is a datagram.
        a.send(b"").await.unwrap();
        let r = b.recv_from(&mut buf).await.unwrap();
        assert_eq!((r.len, r.truncated), (0, false));
    })
    .await;
}

#[blitz_io::test]
async fn path_sockets_send_to_and_report_senders() {
    bounded(async {
        let dir = TempDir::new();
        let server = UnixDatagram::bind(dir.path("server.sock")).unwrap();
        let client = UnixDatagram::bind(dir.path("client.sock")).unwrap();
        let server_addr = server.local_addr().unwrap();
        assert_eq!(server_addr.as_pathname(), Some(dir.path("server.sock").as_path()));

        client.send_to(b"request", &server_addr).await.unwrap();
        let mut buf = [0u8; 32];
        let r = server.recv_from(&mut buf).await.unwrap();
        assert_eq!(&buf[..r.len], b"request");
        assert_eq!(r.addr.as_pathname(), Some(dir.path("client.sock").as_path()));

        server.send_to(b"reply", &r.addr).await.unwrap();
        let r = client.recv_from(&mut buf).await.unwrap();
        assert_eq!(&buf[..r.len], b"reply");
        assert_eq!(r.addr, server_addr);

        // An unbound sender can send but reads as unnamed: nobody can reply to it.
        let anon = UnixDatagram::unbound().unwrap();
        assert_eq!(anon.try_send_to(b"anon", &server_addr).unwrap(), Some(4));
        let r = server.recv_from(&mut buf).await.unwrap();
        assert!(r.addr.is_unnamed());
        assert_eq!(server.try_send_to(b"x", &r.addr).unwrap_err().kind(), ErrorKind::InvalidInput);

        // try_peek_from leaves the datagram.
        client.send_to(b"peek", &server_addr).await.unwrap();
        let p = server.try_peek_from(&mut buf).unwrap().unwrap();
        assert_eq!(server.try_recv_from(&mut buf).unwrap(), Some(p));
    })
    .await;
}

#[blitz_io::test]
async fn connect_then_send_recv() {
    bounded(async {
        let dir = TempDir::new();
        let server = UnixDatagram::bind(dir.path("s.sock")).unwrap();
        let client = UnixDatagram::unbound().unwrap();
        assert_eq!(client.peer_addr().unwrap_err().kind(), ErrorKind::NotConnected);
        client.connect(dir.path("s.sock")).unwrap();
        assert_eq!(client.peer_addr().unwrap(), server.local_addr().unwrap());

        client.send(b"connected").await.unwrap();
        let mut buf = [0u8; 16];
        let n = server.recv(&mut buf).await.unwrap();
        assert_eq!(&buf[..n], b"connected");

        // Connecting to nothing fails; so does a path that is not a socket.
        let err = client.connect(dir.path("missing.sock")).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::NotFound, "{err:?}");
        std::fs::write(dir.path("file"), b"").unwrap();
        assert!(client.connect(dir.path("file")).is_err());
        let err = client.try_send_to(b"x", &UnixAddr::from_path(dir.path("missing.sock")).unwrap()).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::NotFound, "{err:?}");

        // After the server closes, a connected sender is refused.
        let peer = UnixDatagram::bind(dir.path("peer.sock")).unwrap();
        client.connect(dir.path("peer.sock")).unwrap();
        drop(peer);
        let err = client.send(b"gone?").await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::ConnectionRefused, "{err:?}");
    })
    .await;
}

#[test]
fn bind_never_unlinks_and_drop_leaves_the_file() {
    let dir = TempDir::new();
    let path = dir.path("taken.sock");
    let first = UnixDatagram::bind(&path).unwrap();
    let err = UnixDatagram::bind(&path).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::AddrInUse, "{err:?}");
    // The first socket still owns the path and still works.
    let (probe, _) = UnixDatagram::pair().unwrap();
    assert_eq!(probe.try_send_to(b"still here", &first.local_addr().unwrap()).unwrap(), Some(10));
    let mut buf = [0u8; 16];
    assert_eq!(first.try_recv(&mut buf).unwrap(), Some(10));

    // A plain file at the path is not replaced either.
    let file = dir.path("file");
    std::fs::write(&file, b"keep me").unwrap();
    assert_eq!(UnixDatagram::bind(&file).unwrap_err().kind(), ErrorKind::AddrInUse);
    assert_eq!(std::fs::read(&file).unwrap(), b"keep me");

    drop(first);
    assert!(path.exists(), "dropping the socket must not remove its file");
}

#[test]
fn bad_paths_are_invalid_input() {
    let long = std::env::temp_dir().join("x".repeat(200));
    assert_eq!(UnixDatagram::bind(&long).unwrap_err().kind(), ErrorKind::InvalidInput);
    assert_eq!(UnixDatagram::bind("").unwrap_err().kind(), ErrorKind::InvalidInput);
    assert_eq!(UnixDatagram::bind("/tmp/a\0b").unwrap_err().kind(), ErrorKind::InvalidInput);
    let s = UnixDatagram::unbound().unwrap();
    assert_eq!(s.connect(&long).unwrap_err().kind(), ErrorKind::InvalidInput);
}

#[cfg(any(target_os = "linux", target_os = "android"))]
#[blitz_io::test]
async fn abstract_addresses() {
    bounded(async {
        let name = format!("blitz-io-udg-test-{}", std::process::id());
        let addr = UnixAddr::from_abstract_name(name.as_bytes()).unwrap();
        let server = UnixDatagram::bind_addr(&addr).unwrap();
        assert_eq!(server.local_addr().unwrap(), addr);
        assert_eq!(UnixDatagram::bind_addr(&addr).unwrap_err().kind(), ErrorKind::AddrInUse);

        let client_addr = UnixAddr::from_abstract_name(format!("{name}-client").as_bytes()).unwrap();
        let client = UnixDatagram::bind_addr(&client_addr).unwrap();
        client.send_to(b"abstract", &addr).await.unwrap();
        let mut buf = [0u8; 16];
        let r = server.recv_from(&mut buf).await.unwrap();
        assert_eq!(&buf[..r.len], b"abstract");
        assert_eq!(r.addr, client_addr);

        let other = UnixDatagram::unbound().unwrap();
        other.connect_addr(&addr).unwrap();
        assert_eq!(other.peer_addr().unwrap(), addr);
        other.send(b"via connect").await.unwrap();
        let r = server.recv_from(&mut buf).await.unwrap();
        assert_eq!(&buf[..r.len], b"via connect");

        assert_eq!(
            UnixDatagram::bind_addr(&r.addr).unwrap_err().kind(),
            ErrorKind::InvalidInput,
            "binding an unnamed address"
        );
    })
    .await;
}

#[blitz_io::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_queue_sender_waits_and_is_woken_by_the_reader() {
    bounded(async {
        let (a, b) = UnixDatagram::pair().unwrap();
        // Fill the peer's queue.
        let mut queued = 0usize;
        while a.try_send(&[0u8; 512]).unwrap().is_some() {
            queued += 1;
            assert!(queued < 1_000_000);
        }
        assert!(queued > 0);
        let a = Arc::new(a);
        let sender = {
            let a = a.clone();
            blitz_io::task::spawn(async move { a.send(b"the last one").await.unwrap() })
        };
        sleep(Duration::from_millis(30)).await;
        assert!(!sender.is_finished(), "send should wait while the queue is full");

        // Drain everything; the waiting send completes and its datagram arrives last.
        let mut buf = [0u8; 1024];
        for _ in 0..queued {
            assert_eq!(b.recv(&mut buf).await.unwrap(), 512);
        }
        assert_eq!(sender.await.unwrap(), 12);
        let n = b.recv(&mut buf).await.unwrap();
        assert_eq!(&buf[..n], b"the last one");
    })
    .await;
}

#[blitz_io::test(flavor = "multi_thread", worker_threads = 2)]
async fn shared_socket_many_receivers() {
    bounded(async {
        let (a, b) = UnixDatagram::pair().unwrap();
        let b = Arc::new(b);
        let left = Arc::new(AtomicUsize::new(100));
        let tasks: Vec<_> = (0..4)
            .map(|_| {
                let (b, left) = (b.clone(), left.clone());
                blitz_io::task::spawn(async move {
                    let mut mine = Vec::new();
                    let mut buf = [0u8; 4];
                    while left.load(Ordering::SeqCst) > 0 {
                        if let Ok(r) = timeout(Duration::from_millis(20), b.recv_from(&mut buf)).await {
                            mine.push(u32::from_be_bytes(buf[..r.unwrap().len].try_into().unwrap()));
                            left.fetch_sub(1, Ordering::SeqCst);
                        }
                    }
                    mine
                })
            })
            .collect();
        for i in 0..100u32 {
            a.send(&i.to_be_bytes()).await.unwrap();
        }
        let mut all = Vec::new();
        for t in tasks {
            all.extend(t.await.unwrap());
        }
        all.sort_unstable();
        assert_eq!(all, (0..100).collect::<Vec<_>>());
    })
    .await;
}

#[blitz_io::test]
async fn cancelled_recv_loses_nothing() {
    bounded(async {
        let (a, b) = UnixDatagram::pair().unwrap();
        let sender = blitz_io::task::spawn(async move {
            for i in 0..100u32 {
                a.send(&i.to_be_bytes()).await.unwrap();
                if i % 3 == 0 {
                    sleep(Duration::from_millis(1)).await;
                }
            }
            a
        });
        let (mut next, mut cancelled) = (0u32, 0);
        let mut buf = [0u8; 4];
        let mut delay = 0u64;
        while next < 100 {
            delay = (delay * 7 + 3) % 1500;
            match timeout(Duration::from_micros(delay), b.recv(&mut buf)).await {
                Ok(n) => {
                    assert_eq!(n.unwrap(), 4);
                    // Unix datagrams are reliable and ordered: exactly the next one.
                    assert_eq!(u32::from_be_bytes(buf), next);
                    next += 1;
                }
                Err(_) => cancelled += 1,
            }
        }
        drop(sender.await.unwrap());
        assert!(cancelled > 0);
    })
    .await;
}

#[blitz_io::test]
async fn readiness_and_poll_methods() {
    bounded(async {
        let dir = TempDir::new();
        let (a, b) = UnixDatagram::pair().unwrap();
        a.writable().await.unwrap();
        assert!(a.ready(Interest::WRITABLE).await.unwrap().is_writable());
        assert_eq!(poll_fn(|cx| a.poll_send(cx, b"p1")).await.unwrap(), 2);
        b.readable().await.unwrap();
        let mut buf = [0u8; 8];
        assert_eq!(poll_fn(|cx| b.poll_recv(cx, &mut buf)).await.unwrap(), 2);

        let server = UnixDatagram::bind(dir.path("s.sock")).unwrap();
        let to = server.local_addr().unwrap();
        let c = UnixDatagram::unbound().unwrap();
        assert_eq!(poll_fn(|cx| c.poll_send_to(cx, b"p3", &to)).await.unwrap(), 2);
        let r = poll_fn(|cx| server.poll_recv_from(cx, &mut buf)).await.unwrap();
        assert_eq!(&buf[..r.len], b"p3");
    })
    .await;
}

#[blitz_io::test]
async fn read_shutdown_ends_receives_instead_of_hanging() {
    bounded(async {
        let (a, b) = UnixDatagram::pair().unwrap();
        a.send(b"queued").await.unwrap();
        b.shutdown(Shutdown::Read).unwrap();
        let mut buf = [0u8; 8];
        // What was queued before the shutdown is still delivered...
        let n = b.recv(&mut buf).await.unwrap();
        assert_eq!(&buf[..n], b"queued");
        // ...then every receive is end-of-file at once (no wait, no spin).
        let r = timeout(Duration::from_secs(1), b.recv(&mut buf)).await;
        assert_eq!(r.expect("recv after shutdown(Read) must not wait").unwrap(), 0);
        let r = timeout(Duration::from_secs(1), b.recv_from(&mut buf)).await.unwrap().unwrap();
        assert_eq!((r.len, r.truncated), (0, false));
        assert!(r.addr.is_unnamed());
        assert_eq!(b.try_recv(&mut buf).unwrap(), Some(0));
        assert_eq!(b.try_recv_from(&mut buf).unwrap().unwrap().len, 0);
        // The peer can no longer send to it.
        assert_eq!(a.try_send(b"late").unwrap_err().kind(), ErrorKind::BrokenPipe);
    })
    .await;
}

#[test]
fn shutdown_std_round_trip_and_debug() {
    let (a, _b) = UnixDatagram::pair().unwrap();
    a.shutdown(Shutdown::Write).unwrap();
    assert_eq!(a.try_send(b"x").unwrap_err().kind(), ErrorKind::BrokenPipe);
    assert!(a.take_error().unwrap().is_none());

    let mut buf = [0u8; 4];

    let (a, b) = UnixDatagram::pair().unwrap();
    let (a, b) = (a.into_std().unwrap(), b.into_std().unwrap());
    b.set_read_timeout(Some(Duration::from_millis(20))).unwrap();
    let err = b.recv(&mut buf).unwrap_err(); // blocking again: waits for the timeout
    assert!(matches!(err.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut));
    let a = UnixDatagram::try_from(a).unwrap();
    let b = UnixDatagram::from_std(b).unwrap();
    assert_eq!(a.try_send(b"ok").unwrap(), Some(2));
    assert_eq!(b.try_recv(&mut buf).unwrap(), Some(2));
    assert!(format!("{a:?}").contains("UnixDatagram"));
}

#[test]
fn futures_work_under_a_foreign_executor() {
    let (a, b) = UnixDatagram::pair().unwrap();
    let t = std::thread::spawn(move || {
        futures_executor::block_on(async {
            let mut buf = [0u8; 16];
            let n = b.recv(&mut buf).await.unwrap();
            b.send(&buf[..n]).await.unwrap();
        })
    });
    std::thread::sleep(Duration::from_millis(20));
    futures_executor::block_on(async {
        a.send(b"fallback").await.unwrap();
        let mut buf = [0u8; 16];
        let r = a.recv_from(&mut buf).await.unwrap();
        assert_eq!(&buf[..r.len], b"fallback");
    });
    t.join().unwrap();
}

/// A `recv` already waiting when another task shuts the socket for reading returns
/// end-of-file: the shutdown wakes it, possibly on the other worker at once, and it must
/// not find the socket "not shut yet" and go back to sleep for ever (it did, about one
/// run in two). Repeated, since the race needs the wake to win.
#[blitz_io::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_read_wakes_a_waiting_recv_with_eof() {
    for _ in 0..20 {
        let (_a, b) = UnixDatagram::pair().unwrap();
        let b = std::sync::Arc::new(b);
        let waiting = b.clone();
        let recv = blitz_io::task::spawn(async move {
            let mut buf = [0u8; 8];
            waiting.recv(&mut buf).await
        });
        blitz_io::time::sleep(Duration::from_millis(5)).await;
        b.shutdown(std::net::Shutdown::Read).unwrap();
        let r = blitz_io::time::timeout(Duration::from_secs(2), recv).await.expect("recv not woken by shutdown(Read)");
        assert_eq!(r.unwrap().unwrap(), 0);
    }
}

/// An address that cannot be sent to fails `send_to` on its first poll, before any wait
/// for writability: with the peer's queue full, it used to wait for room first.
#[blitz_io::test]
async fn send_to_a_bad_address_fails_at_once_even_when_not_writable() {
    let (a, _b) = UnixDatagram::pair().unwrap();
    // Fill the peer's queue, then let a send wait (the write side is watched now).
    while a.try_send(b"fill").unwrap().is_some() {}
    assert!(timeout(Duration::from_millis(20), a.send(b"x")).await.is_err(), "the queue is full");
    let unnamed = a.local_addr().unwrap(); // a pair's sockets have no name
    assert!(unnamed.is_unnamed());
    let err = timeout(Duration::from_secs(1), a.send_to(b"x", &unnamed))
        .await
        .expect("waited for writability instead of failing")
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
}
