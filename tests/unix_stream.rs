//! `UnixStream` and `UnixListener`: pair, connect/accept by path and abstract name,
//! AddrInUse on a taken path (never unlinked), the path left after drop, peer
//! credentials, halves, both tiers, and input errors. Paths live in a per-test temp dir.

#![cfg(unix)]

use std::future::Future;
use std::io::{ErrorKind, Read, Write};
use std::net::Shutdown;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use blitz_io::net::unix::{OwnedReadHalf, OwnedWriteHalf, ReadHalf, WriteHalf};
use blitz_io::net::{Interest, UnixAddr, UnixListener, UnixStream};
use blitz_io::time::timeout;

const LIMIT: Duration = Duration::from_secs(20);

async fn bounded<F: Future>(f: F) -> F::Output {
    timeout(LIMIT, f).await.expect("test body timed out")
}

/// A fresh directory, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> TempDir {
        static N: AtomicUsize = AtomicUsize::new(0);
        let dir =
            std::env::temp_dir().join(format!("blitz-us-{}-{}", std::process::id(), N.fetch_add(1, Ordering::Relaxed)));
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

async fn read_n(s: &mut UnixStream, n: usize) -> Vec<u8> {
    let mut out = vec![0u8; n];
    let mut got = 0;
    while got < n {
        let k = s.read(&mut out[got..]).await.unwrap();
        assert_ne!(k, 0, "early EOF");
        got += k;
    }
    out
}

#[blitz_io::test]
async fn pair_round_trip() {
    bounded(async {
        let (mut a, mut b) = UnixStream::pair().unwrap();
        assert!(a.local_addr().unwrap().is_unnamed());
        assert!(a.peer_addr().unwrap().is_unnamed());
        a.write_all(b"hello").await.unwrap();
        assert_eq!(read_n(&mut b, 5).await, b"hello");
        assert_eq!(b.write(b"back").await.unwrap(), 4);
        assert_eq!(read_n(&mut a, 4).await, b"back");
        let r = a.ready(Interest::WRITABLE).await.unwrap();
        assert!(r.is_writable());
        a.writable().await.unwrap();
    })
    .await
}

#[blitz_io::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_and_accept_by_path() {
    bounded(async {
        let dir = TempDir::new();
        let path = dir.path("srv.sock");
        let listener = UnixListener::bind(&path).unwrap();
        assert_eq!(listener.local_addr().unwrap().as_pathname(), Some(path.as_path()));
        assert!(listener.try_accept().unwrap().is_none());

        let mut client = UnixStream::connect(&path).await.unwrap();
        let conn = listener.accept().await.unwrap();
        assert!(conn.peer_addr.is_unnamed());
        let mut server = conn.stream;
        assert_eq!(client.peer_addr().unwrap().as_pathname(), Some(path.as_path()));
        assert_eq!(server.local_addr().unwrap().as_pathname(), Some(path.as_path()));

        let data: Vec<u8> = (0..300_000u32).map(|i| (i % 253) as u8).collect();
        let expect = data.clone();
        let w = blitz_io::task::spawn(async move {
            client.write_all(&data).await.unwrap();
            client.shutdown(Shutdown::Write).unwrap();
            client
        });
        let mut got = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            let n = server.read(&mut buf).await.unwrap();
            if n == 0 {
                break;
            }
            got.extend_from_slice(&buf[..n]);
        }
        assert!(got == expect, "corrupted bytes");
        w.await.unwrap();
    })
    .await
}

#[test]
fn binding_a_taken_path_is_addr_in_use_and_unlinks_nothing() {
    let dir = TempDir::new();
    let path = dir.path("taken.sock");
    let first = UnixListener::bind(&path).unwrap();
    let err = UnixListener::bind(&path).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::AddrInUse, "{err:?}");
    // The first listener still works: its socket file was not replaced.
    let _c = std::os::unix::net::UnixStream::connect(&path).unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while first.try_accept().unwrap().is_none() {
        assert!(Instant::now() < deadline);
        std::thread::sleep(Duration::from_millis(1));
    }
    // A plain file is not removed either.
    let file = dir.path("plain");
    std::fs::write(&file, b"data").unwrap();
    assert_eq!(UnixListener::bind(&file).unwrap_err().kind(), ErrorKind::AddrInUse);
    assert_eq!(std::fs::read(&file).unwrap(), b"data");
}

#[test]
fn dropping_the_listener_leaves_the_path() {
    let dir = TempDir::new();
    let path = dir.path("left.sock");
    drop(UnixListener::bind(&path).unwrap());
    assert!(path.exists(), "the socket file stays, as with std");
    // Connecting to the stale file is refused; binding needs it removed first.
    assert_eq!(std::os::unix::net::UnixStream::connect(&path).unwrap_err().kind(), ErrorKind::ConnectionRefused);
    assert_eq!(UnixListener::bind(&path).unwrap_err().kind(), ErrorKind::AddrInUse);
    std::fs::remove_file(&path).unwrap();
    UnixListener::bind(&path).unwrap();
}

#[cfg(any(target_os = "linux", target_os = "android"))]
#[blitz_io::test]
async fn abstract_names() {
    bounded(async {
        let name = format!("blitz-io-test-{}-abstract", std::process::id());
        let addr = UnixAddr::from_abstract_name(name.as_bytes()).unwrap();
        let listener = UnixListener::bind_addr(&addr).unwrap();
        assert_eq!(listener.local_addr().unwrap(), addr);
        let err = UnixListener::bind_addr(&addr).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::AddrInUse);
        let mut client = UnixStream::connect_addr(&addr).await.unwrap();
        assert_eq!(client.peer_addr().unwrap().as_abstract_name(), Some(name.as_bytes()));
        let mut server = listener.accept().await.unwrap().stream;
        client.write_all(b"abstract").await.unwrap();
        assert_eq!(read_n(&mut server, 8).await, b"abstract");
        drop(listener);
        // No file: the name is free again once the listener is gone.
        UnixListener::bind_addr(&addr).unwrap();
    })
    .await
}

#[blitz_io::test]
async fn peer_credentials() {
    bounded(async {
        // SAFETY: getuid/getgid have no preconditions and cannot fail.
        let (uid, gid) = unsafe { (libc::getuid(), libc::getgid()) };
        let (a, b) = UnixStream::pair().unwrap();
        for s in [&a, &b] {
            let cred = s.peer_cred().unwrap();
            assert_eq!(cred.uid(), uid);
            assert_eq!(cred.gid(), gid);
            if cfg!(any(target_os = "linux", target_os = "android")) {
                assert_eq!(cred.pid(), Some(std::process::id() as i32));
            }
        }
        let dir = TempDir::new();
        let path = dir.path("cred.sock");
        let listener = UnixListener::bind(&path).unwrap();
        let client = UnixStream::connect(&path).await.unwrap();
        let server = listener.accept().await.unwrap().stream;
        assert_eq!(server.peer_cred().unwrap().uid(), uid);
        assert_eq!(client.peer_cred().unwrap().uid(), uid);
    })
    .await
}

#[test]
fn try_calls_without_a_runtime() {
    let (a, b) = UnixStream::pair().unwrap();
    let mut buf = [0u8; 8];
    assert_eq!(a.try_read(&mut buf).unwrap(), None);
    assert_eq!(a.try_peek(&mut buf).unwrap(), None);
    assert_eq!(b.try_write(b"abc").unwrap(), Some(3));
    assert_eq!(a.try_peek(&mut buf).unwrap(), Some(3));
    assert_eq!(a.try_read(&mut buf).unwrap(), Some(3));
    assert_eq!(&buf[..3], b"abc");
    let bufs = [std::io::IoSlice::new(b"de"), std::io::IoSlice::new(b"f")];
    assert_eq!(b.try_write_vectored(&bufs).unwrap(), Some(3));
    let (mut x, mut y) = ([0u8; 1], [0u8; 4]);
    let mut v = [std::io::IoSliceMut::new(&mut x), std::io::IoSliceMut::new(&mut y)];
    assert_eq!(a.try_read_vectored(&mut v).unwrap(), Some(3));
    assert_eq!((&x, &y[..2]), (b"d", &b"ef"[..]));

    // Filling the buffer gives Ok(None), never blocks.
    let chunk = [0u8; 65536];
    let mut saw_none = false;
    for _ in 0..10_000 {
        if b.try_write(&chunk).unwrap().is_none() {
            saw_none = true;
            break;
        }
    }
    assert!(saw_none);
}

#[test]
fn futures_under_a_foreign_executor() {
    let (mut a, b) = UnixStream::pair().unwrap();
    let peer = std::thread::spawn(move || {
        let mut b = b.into_std().unwrap();
        std::thread::sleep(Duration::from_millis(30));
        b.write_all(b"late").unwrap();
        let mut buf = [0u8; 2];
        b.read_exact(&mut buf).unwrap();
        buf
    });
    futures_executor::block_on(async {
        let mut buf = [0u8; 4];
        let mut got = 0;
        while got < 4 {
            got += a.read(&mut buf[got..]).await.unwrap();
        }
        assert_eq!(&buf, b"late");
        a.write_all(b"ok").await.unwrap();
    });
    assert_eq!(&peer.join().unwrap(), b"ok");
}

#[blitz_io::test(flavor = "multi_thread", worker_threads = 2)]
async fn halves_concurrently_and_reunite() {
    bounded(async {
        const LEN: usize = 1 << 20;
        let (a, b) = UnixStream::pair().unwrap();
        let (mut a_rd, mut a_wr): (OwnedReadHalf, OwnedWriteHalf) = a.into_split();
        let (mut b_rd, mut b_wr) = b.into_split();
        let data: Vec<u8> = (0..LEN).map(|i| (i % 249) as u8).collect();
        let d1 = data.clone();
        let d2 = data.clone();
        let w1 = blitz_io::task::spawn(async move {
            a_wr.write_all(&d1).await.unwrap();
            a_wr
        });
        let w2 = blitz_io::task::spawn(async move {
            b_wr.write_all(&d2).await.unwrap();
            b_wr
        });
        let r1 = blitz_io::task::spawn(async move {
            let mut out = vec![0u8; LEN];
            let mut got = 0;
            while got < LEN {
                got += b_rd.read(&mut out[got..]).await.unwrap();
            }
            (b_rd, out)
        });
        let mut out = vec![0u8; LEN];
        let mut got = 0;
        while got < LEN {
            got += a_rd.read(&mut out[got..]).await.unwrap();
        }
        assert!(out == data);
        let (b_rd, out_b) = r1.await.unwrap();
        assert!(out_b == data);
        let a_wr = w1.await.unwrap();
        let b_wr = w2.await.unwrap();

        let err = a_rd.reunite(b_wr).unwrap_err();
        let (a_rd, b_wr) = (err.0, err.1);
        let mut a = a_rd.reunite(a_wr).unwrap();
        let mut b = b_rd.reunite(b_wr).unwrap();
        a.write_all(b"again").await.unwrap();
        assert_eq!(read_n(&mut b, 5).await, b"again");

        // Borrowed halves, and EOF when the owned write half drops.
        {
            let (mut rd, mut wr): (ReadHalf<'_>, WriteHalf<'_>) = a.split();
            wr.write_all(b"q").await.unwrap();
            b.write_all(b"r").await.unwrap();
            let mut one = [0u8; 1];
            assert_eq!(rd.read(&mut one).await.unwrap(), 1);
            assert_eq!(&one, b"r");
        }
        assert_eq!(read_n(&mut b, 1).await, b"q");
        let (_rd, wr) = a.into_split();
        drop(wr);
        let mut buf = [0u8; 1];
        assert_eq!(b.read(&mut buf).await.unwrap(), 0);
    })
    .await
}

#[blitz_io::test]
async fn errors() {
    bounded(async {
        let dir = TempDir::new();
        // Nothing there.
        let err = UnixStream::connect(dir.path("missing.sock")).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::NotFound, "{err:?}");
        // Too long for sun_path: InvalidInput, for bind and connect alike.
        let long = Path::new("/tmp").join("x".repeat(200));
        assert_eq!(UnixListener::bind(&long).unwrap_err().kind(), ErrorKind::InvalidInput);
        assert_eq!(UnixStream::connect(&long).await.unwrap_err().kind(), ErrorKind::InvalidInput);
        assert_eq!(UnixListener::bind("").unwrap_err().kind(), ErrorKind::InvalidInput);
        // Writing to a closed peer: BrokenPipe, and the process lives on (no SIGPIPE).
        let (mut a, b) = UnixStream::pair().unwrap();
        drop(b);
        let err = a.write_all(b"into the void").await.unwrap_err();
        assert!(matches!(err.kind(), ErrorKind::BrokenPipe | ErrorKind::ConnectionReset), "{err:?}");
        let err = a.try_write(b"again").unwrap_err();
        assert!(matches!(err.kind(), ErrorKind::BrokenPipe | ErrorKind::ConnectionReset), "{err:?}");
    })
    .await
}

#[blitz_io::test]
async fn std_conversions_and_peek() {
    bounded(async {
        let (sa, sb) = std::os::unix::net::UnixStream::pair().unwrap();
        let mut a = UnixStream::from_std(sa).unwrap();
        let mut b = UnixStream::from_std(sb).unwrap();
        a.write_all(b"peek").await.unwrap();
        let mut buf = [0u8; 4];
        loop {
            if b.peek(&mut buf).await.unwrap() == 4 {
                break;
            }
        }
        assert_eq!(read_n(&mut b, 4).await, b"peek");
        let mut std_b = b.into_std().unwrap();
        std_b.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        a.write_all(b"blk").await.unwrap();
        let mut three = [0u8; 3];
        std_b.read_exact(&mut three).unwrap();
        assert_eq!(&three, b"blk");

        let dir = TempDir::new();
        let path = dir.path("std.sock");
        let l = UnixListener::from_std(std::os::unix::net::UnixListener::bind(&path).unwrap()).unwrap();
        assert!(l.try_accept().unwrap().is_none());
        let _c = UnixStream::connect(&path).await.unwrap();
        let l = l.into_std().unwrap();
        l.accept().unwrap();
        assert!(format!("{a:?}").contains("UnixStream"));
    })
    .await
}

/// A listener whose accept queue is full: Linux refuses a non-blocking Unix connect with
/// `EAGAIN`. `connect` waits for room, as a blocking connect does, instead of failing
/// with `WouldBlock`; it completes once the listener accepts.
#[blitz_io::test]
async fn connect_to_a_full_accept_queue_waits_for_room() {
    bounded(async {
        let dir = TempDir::new();
        let path = dir.path("full.sock");
        let raw = socket2::Socket::new(socket2::Domain::UNIX, socket2::Type::STREAM, None).unwrap();
        raw.bind(&socket2::SockAddr::unix(&path).unwrap()).unwrap();
        raw.listen(0).unwrap();
        let listener =
            UnixListener::from_std(std::os::unix::net::UnixListener::from(std::os::fd::OwnedFd::from(raw))).unwrap();
        // Fill the queue until a raw non-blocking connect is refused.
        let mut queued = Vec::new();
        loop {
            let s = socket2::Socket::new(socket2::Domain::UNIX, socket2::Type::STREAM, None).unwrap();
            s.set_nonblocking(true).unwrap();
            match s.connect(&socket2::SockAddr::unix(&path).unwrap()) {
                Ok(()) => queued.push(s),
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) => panic!("{e}"),
            }
            assert!(queued.len() < 100, "the queue never filled");
        }
        let accepter = blitz_io::task::spawn(async move {
            blitz_io::time::sleep(Duration::from_millis(100)).await;
            for _ in 0..=queued.len() {
                listener.accept().await.unwrap();
            }
        });
        let start = Instant::now();
        let client = UnixStream::connect(&path).await.expect("connect waits for room");
        assert!(start.elapsed() >= Duration::from_millis(50), "it had to wait for the accept");
        assert!(client.peer_addr().unwrap().as_pathname().is_some());
        accepter.await.unwrap();
    })
    .await
}
