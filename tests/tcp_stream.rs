//! `TcpStream`: both tiers, readiness without spinning, the fallback driver, peek,
//! vectored I/O, shutdown, options, std conversions and the poll forms. Loopback only.

use std::future::{poll_fn, Future};
use std::io::{self, ErrorKind, IoSlice, IoSliceMut, Read, Write};
use std::net::Shutdown;
use std::time::{Duration, Instant};

use blitz_io::net::{Address, Interest, Keepalive, TcpListener, TcpStream};
use blitz_io::time::{sleep, timeout};

const LIMIT: Duration = Duration::from_secs(20);

async fn bounded<F: Future>(f: F) -> F::Output {
    timeout(LIMIT, f).await.expect("test body timed out")
}

/// A connected (client, server) pair over loopback.
async fn pair() -> (TcpStream, TcpStream) {
    let listener = TcpListener::bind(Address::loopback_v4(0)).unwrap();
    let client = TcpStream::connect(listener.local_addr().unwrap()).await.unwrap();
    let server = listener.accept().await.unwrap().stream;
    (client, server)
}

/// Reads until end-of-stream.
async fn read_to_end(s: &mut TcpStream) -> Vec<u8> {
    let mut out = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        let n = s.read(&mut buf).await.unwrap();
        if n == 0 {
            return out;
        }
        out.extend_from_slice(&buf[..n]);
    }
}

fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len).map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed)).collect()
}

#[blitz_io::test]
async fn echo_round_trip_and_addresses() {
    bounded(async {
        let listener = TcpListener::bind(([127, 0, 0, 1], 0)).unwrap();
        let addr = listener.local_addr().unwrap();
        let mut client = TcpStream::connect(addr).await.unwrap();
        let conn = listener.accept().await.unwrap();
        let mut server = conn.stream;
        assert_eq!(conn.peer_addr, client.local_addr().unwrap());
        assert_eq!(client.peer_addr().unwrap(), addr);
        assert_eq!(server.local_addr().unwrap(), addr);
        assert_eq!(server.peer_addr().unwrap(), client.local_addr().unwrap());

        client.write_all(b"ping").await.unwrap();
        let mut buf = [0u8; 4];
        let mut got = 0;
        while got < 4 {
            got += server.read(&mut buf[got..]).await.unwrap();
        }
        assert_eq!(&buf, b"ping");
        assert_eq!(server.write(b"pong").await.unwrap(), 4);
        let mut got = 0;
        while got < 4 {
            got += client.read(&mut buf[got..]).await.unwrap();
        }
        assert_eq!(&buf, b"pong");
    })
    .await
}

#[blitz_io::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_transfer_is_byte_exact() {
    bounded(async {
        let (mut client, mut server) = pair().await;
        let data = pattern(4 << 20, 7);
        let expect = data.clone();
        let writer = blitz_io::task::spawn(async move {
            client.write_all(&data).await.unwrap();
            client.shutdown(Shutdown::Write).unwrap();
            client
        });
        let got = read_to_end(&mut server).await;
        assert_eq!(got.len(), expect.len());
        assert!(got == expect, "received bytes differ from the bytes sent");
        writer.await.unwrap();
    })
    .await
}

#[test]
fn try_calls_work_on_a_plain_thread_without_a_runtime() {
    let std_listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let std_client = std::net::TcpStream::connect(std_listener.local_addr().unwrap()).unwrap();
    let (mut std_server, _) = std_listener.accept().unwrap();
    let client = TcpStream::from_std(std_client).unwrap();

    let mut buf = [0u8; 16];
    // Nothing sent yet: would block, reported as Ok(None), not an error.
    assert_eq!(client.try_read(&mut buf).unwrap(), None);
    assert_eq!(client.try_peek(&mut buf).unwrap(), None);
    assert_eq!(client.try_write(b"hello").unwrap(), Some(5));
    let mut five = [0u8; 5];
    std_server.read_exact(&mut five).unwrap();
    assert_eq!(&five, b"hello");

    std_server.write_all(b"world").unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    let n = loop {
        if let Some(n) = client.try_read(&mut buf).unwrap() {
            break n;
        }
        assert!(Instant::now() < deadline, "data never arrived");
        std::thread::sleep(Duration::from_millis(1));
    };
    assert_eq!(&buf[..n], b"world");

    // Fill the send buffer: try_write eventually says "would block".
    let chunk = vec![0u8; 64 * 1024];
    let mut saw_none = false;
    for _ in 0..10_000 {
        if client.try_write(&chunk).unwrap().is_none() {
            saw_none = true;
            break;
        }
    }
    assert!(saw_none, "a full send buffer must give Ok(None)");
}

#[blitz_io::test]
async fn readable_then_try_read_does_not_spin() {
    bounded(async {
        let (client, server) = pair().await;
        let writer = std::thread::spawn(move || {
            let client = client;
            for i in 0..10u8 {
                std::thread::sleep(Duration::from_millis(10));
                assert_eq!(client.try_write(&[i; 100]).unwrap(), Some(100));
            }
            client
        });
        let mut nones = 0;
        let mut total = 0;
        let mut buf = [0u8; 4096];
        while total < 1000 {
            server.readable().await.unwrap();
            match server.try_read(&mut buf).unwrap() {
                Some(0) => panic!("unexpected end-of-stream"),
                Some(n) => total += n,
                None => nones += 1,
            }
        }
        // Ten bursts: a spinning loop would see thousands of `None`s in 100 ms.
        assert!(nones <= 12, "readable() + try_read spun: {nones} would-block results");
        writer.join().unwrap();
    })
    .await
}

#[test]
fn futures_work_under_a_foreign_executor() {
    // No blitz-io runtime anywhere: the fallback driver serves these futures.
    let std_listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = std_listener.local_addr().unwrap();
    let peer = std::thread::spawn(move || {
        let (mut s, _) = std_listener.accept().unwrap();
        std::thread::sleep(Duration::from_millis(50)); // the read below must wait
        let mut buf = [0u8; 5];
        s.read_exact(&mut buf).unwrap();
        s.write_all(&buf).unwrap();
    });
    let echoed = futures_executor::block_on(async {
        let mut s = TcpStream::connect(addr).await.unwrap();
        s.write_all(b"abcde").await.unwrap();
        let mut buf = [0u8; 5];
        let mut got = 0;
        while got < 5 {
            got += s.read(&mut buf[got..]).await.unwrap();
        }
        s.readable().await.unwrap();
        buf
    });
    assert_eq!(&echoed, b"abcde");
    peer.join().unwrap();
}

#[blitz_io::test]
async fn peek_does_not_consume() {
    bounded(async {
        let (mut client, mut server) = pair().await;
        client.write_all(b"peekaboo").await.unwrap();
        let mut buf = [0u8; 8];
        // Wait until all 8 bytes are there, by peeking.
        loop {
            let n = server.peek(&mut buf).await.unwrap();
            if n == 8 {
                break;
            }
            sleep(Duration::from_millis(1)).await;
        }
        assert_eq!(&buf, b"peekaboo");
        let mut again = [0u8; 4];
        assert_eq!(server.try_peek(&mut again).unwrap(), Some(4));
        assert_eq!(&again, b"peek");
        let mut all = [0u8; 8];
        assert_eq!(server.read(&mut all).await.unwrap(), 8);
        assert_eq!(&all, b"peekaboo");
        assert_eq!(server.try_peek(&mut again).unwrap(), None);
    })
    .await
}

#[blitz_io::test]
async fn vectored_io() {
    bounded(async {
        let (client, server) = pair().await;
        let bufs = [IoSlice::new(b"ab"), IoSlice::new(b""), IoSlice::new(b"cdef")];
        assert_eq!(client.try_write_vectored(&bufs).unwrap(), Some(6));
        let mut first = [0u8; 3];
        let mut second = [0u8; 10];
        let n = loop {
            server.readable().await.unwrap();
            let mut v = [IoSliceMut::new(&mut first), IoSliceMut::new(&mut second)];
            if let Some(n) = server.try_read_vectored(&mut v).unwrap() {
                if n == 6 {
                    break n;
                }
                panic!("short vectored read of {n} bytes");
            }
        };
        assert_eq!(n, 6);
        assert_eq!(&first, b"abc");
        assert_eq!(&second[..3], b"def");
    })
    .await
}

#[blitz_io::test]
async fn shutdown_write_gives_the_peer_eof_and_reading_still_works() {
    bounded(async {
        let (mut client, mut server) = pair().await;
        client.write_all(b"last").await.unwrap();
        client.shutdown(Shutdown::Write).unwrap();
        assert_eq!(read_to_end(&mut server).await, b"last");
        let mut buf = [0u8; 4];
        assert_eq!(server.read(&mut buf).await.unwrap(), 0, "EOF is sticky");
        assert_eq!(server.try_read(&mut buf).unwrap(), Some(0));
        // The other direction is still open.
        server.write_all(b"reply").await.unwrap();
        let mut buf = [0u8; 5];
        let mut got = 0;
        while got < 5 {
            got += client.read(&mut buf[got..]).await.unwrap();
        }
        assert_eq!(&buf, b"reply");
        let err = client.write_all(b"x").await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::BrokenPipe, "{err:?}");
    })
    .await
}

#[blitz_io::test]
async fn ready_reports_readiness_and_closed_sides() {
    bounded(async {
        let (client, server) = pair().await;
        let r = client.ready(Interest::WRITABLE).await.unwrap();
        assert!(r.is_writable());
        client.writable().await.unwrap();

        // Nothing was sent: a would-block read reports it, and readable() really waits
        // (a new registration starts with no cached readiness).
        let mut buf = [0u8; 1];
        assert_eq!(server.try_read(&mut buf).unwrap(), None);
        let quiet = timeout(Duration::from_millis(50), server.readable()).await;
        assert!(quiet.is_err(), "readable() must wait while nothing was sent");

        drop(client);
        let r = server.ready(Interest::READABLE).await.unwrap();
        assert!(r.is_readable() || r.is_read_closed(), "{r:?}");
        assert_eq!(server.try_read(&mut buf).unwrap(), Some(0));
        let r = server.ready(Interest::READABLE | Interest::WRITABLE).await.unwrap();
        assert!(!r.is_empty());
    })
    .await
}

#[blitz_io::test]
async fn options_round_trip() {
    bounded(async {
        let (client, _server) = pair().await;
        client.set_nodelay(true).unwrap();
        assert!(client.nodelay().unwrap());
        client.set_nodelay(false).unwrap();
        assert!(!client.nodelay().unwrap());

        client.set_ttl(42).unwrap();
        assert_eq!(client.ttl().unwrap(), 42);
        assert_eq!(client.set_ttl(0).unwrap_err().kind(), ErrorKind::InvalidInput);

        assert_eq!(client.linger().unwrap(), None);
        client.set_linger(Some(Duration::from_secs(3))).unwrap();
        assert_eq!(client.linger().unwrap(), Some(Duration::from_secs(3)));
        client.set_linger(None).unwrap();
        assert_eq!(client.linger().unwrap(), None);

        assert_eq!(client.keepalive().unwrap(), None);
        let ka =
            Keepalive { time: Some(Duration::from_secs(30)), interval: Some(Duration::from_secs(5)), retries: Some(4) };
        client.set_keepalive(Some(ka)).unwrap();
        assert_eq!(client.keepalive().unwrap(), Some(ka));
        client.set_keepalive(None).unwrap();
        assert_eq!(client.keepalive().unwrap(), None);

        assert!(client.take_error().unwrap().is_none());
    })
    .await
}

#[blitz_io::test]
async fn ipv6_loopback() {
    bounded(async {
        let Ok(listener) = TcpListener::bind(Address::loopback_v6(0)) else {
            eprintln!("IPv6 loopback unavailable; skipping");
            return;
        };
        let mut client = TcpStream::connect(listener.local_addr().unwrap()).await.unwrap();
        let mut server = listener.accept().await.unwrap().stream;
        assert!(server.peer_addr().unwrap().is_ipv6());
        client.set_ttl(9).unwrap();
        assert_eq!(client.ttl().unwrap(), 9);
        client.write_all(b"v6").await.unwrap();
        let mut buf = [0u8; 2];
        let mut got = 0;
        while got < 2 {
            got += server.read(&mut buf[got..]).await.unwrap();
        }
        assert_eq!(&buf, b"v6");
    })
    .await
}

#[blitz_io::test]
async fn from_std_and_into_std() {
    bounded(async {
        let std_listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let std_client = std::net::TcpStream::connect(std_listener.local_addr().unwrap()).unwrap();
        let (std_server, _) = std_listener.accept().unwrap();

        let mut client = TcpStream::from_std(std_client).unwrap();
        let mut server = TcpStream::try_from(std_server).unwrap();
        client.write_all(b"from std").await.unwrap();
        let mut buf = [0u8; 8];
        let mut got = 0;
        while got < 8 {
            got += server.read(&mut buf[got..]).await.unwrap();
        }
        assert_eq!(&buf, b"from std");

        // Back to std, in blocking mode: a blocking read waits for data.
        let mut std_server = server.into_std().unwrap();
        std_server.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let t = std::thread::spawn(move || {
            let mut buf = [0u8; 4];
            std_server.read_exact(&mut buf).unwrap();
            buf
        });
        sleep(Duration::from_millis(30)).await;
        client.write_all(b"back").await.unwrap();
        assert_eq!(&t.join().unwrap(), b"back");
    })
    .await
}

#[blitz_io::test]
async fn poll_forms() {
    bounded(async {
        let (client, server) = pair().await;
        poll_fn(|cx| client.poll_write_ready(cx)).await.unwrap();
        let n = poll_fn(|cx| client.poll_write(cx, b"poll")).await.unwrap();
        assert_eq!(n, 4);
        let n = poll_fn(|cx| client.poll_write_vectored(cx, &[IoSlice::new(b"ed")])).await.unwrap();
        assert_eq!(n, 2);
        poll_fn(|cx| server.poll_read_ready(cx)).await.unwrap();
        let mut buf = [0u8; 6];
        loop {
            let n = poll_fn(|cx| server.poll_peek(cx, &mut buf)).await.unwrap();
            if n == 6 {
                break;
            }
            sleep(Duration::from_millis(1)).await;
        }
        let n = poll_fn(|cx| server.poll_read(cx, &mut buf)).await.unwrap();
        assert_eq!(&buf[..n], b"polled");
    })
    .await
}

#[blitz_io::test]
async fn many_tasks_can_wait_for_readiness_on_one_stream() {
    bounded(async {
        let (mut client, server) = pair().await;
        let server = std::sync::Arc::new(server);
        let mut waiters = Vec::new();
        for _ in 0..4 {
            let s = server.clone();
            waiters.push(blitz_io::task::spawn(async move { s.readable().await }));
        }
        sleep(Duration::from_millis(20)).await;
        client.write_all(b"!").await.unwrap();
        for w in waiters {
            w.await.unwrap().unwrap();
        }
    })
    .await
}

#[test]
fn stream_is_send_sync_and_debug() {
    fn check<T: Send + Sync + std::fmt::Debug>() {}
    check::<TcpStream>();
    check::<TcpListener>();
    check::<io::Error>();
}

/// A read into an empty buffer returns `Ok(0)` at once, as `read(2)` does, on every
/// form, with no data queued: a zero-length `recv` on a stream says `EAGAIN`, and the
/// future used to wait for data it could not take. (TCP and Unix share the code.)
#[blitz_io::test]
async fn reads_into_an_empty_buffer_complete_at_once() {
    bounded(async {
        let (mut client, server) = pair().await;
        let quick = Duration::from_secs(2);
        assert_eq!(timeout(quick, client.read(&mut [])).await.expect("read(&mut []) waited").unwrap(), 0);
        assert_eq!(timeout(quick, client.peek(&mut [])).await.expect("peek(&mut []) waited").unwrap(), 0);
        assert_eq!(client.try_read(&mut []).unwrap(), Some(0));
        assert_eq!(client.try_peek(&mut []).unwrap(), Some(0));
        assert_eq!(client.try_read_vectored(&mut [IoSliceMut::new(&mut [])]).unwrap(), Some(0));
        let (mut r, _w) = client.split();
        assert_eq!(timeout(quick, r.read(&mut [])).await.expect("half read(&mut []) waited").unwrap(), 0);
        // Data still reads normally afterwards.
        server.try_write(b"hi").unwrap();
        let mut buf = [0u8; 4];
        assert_eq!(r.read(&mut buf).await.unwrap(), 2);
        let (mut u, _v) = blitz_io::net::UnixStream::pair().unwrap();
        assert_eq!(timeout(quick, u.read(&mut [])).await.expect("unix read(&mut []) waited").unwrap(), 0);
        assert_eq!(u.try_read(&mut []).unwrap(), Some(0));
    })
    .await
}

/// A peer that sends urgent (out-of-band) data makes the kernel stop a read at the urgent
/// mark: the read comes back short with more data queued behind it. A short read must not
/// then count as "drained" (the next `read` would wait for an edge that never comes while
/// `try_read` finds the data).
#[blitz_io::test]
async fn a_read_that_stops_at_the_urgent_mark_does_not_stall_the_next() {
    use std::os::fd::AsRawFd;
    bounded(async {
        let listener = TcpListener::bind(Address::loopback_v4(0)).unwrap();
        let peer = std::net::TcpStream::connect(listener.local_addr().unwrap().to_std()).unwrap();
        let mut s = listener.accept().await.unwrap().stream;
        let fd = peer.as_raw_fd();
        let send = move |data: &[u8], flags: libc::c_int| {
            // SAFETY: `fd` is the live socket `peer` owns; `data` is valid for its length.
            let n = unsafe { libc::send(fd, data.as_ptr().cast(), data.len(), flags) };
            assert_eq!(n, data.len() as isize, "send: {}", io::Error::last_os_error());
        };
        // Wait in `read` (so readiness arrives as one edge with everything queued).
        let writer = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(50));
            send(b"hello", 0);
            send(b"X", libc::MSG_OOB);
            send(b"world", 0);
            peer
        });
        s.readable().await.unwrap();
        let peer = writer.join().unwrap();
        sleep(Duration::from_millis(50)).await; // all three segments are queued
        let mut buf = [0u8; 100];
        let mut got = Vec::new();
        while got.len() < 10 {
            match timeout(Duration::from_secs(2), s.read(&mut buf)).await {
                Ok(n) => got.extend_from_slice(&buf[..n.unwrap()]),
                Err(_) => panic!("read stalled after {:?}; try_read finds {:?}", got, s.try_read(&mut buf)),
            }
        }
        assert_eq!(got, b"helloworld", "the urgent byte is out of band, the rest in order");
        drop(peer);
    })
    .await
}

/// `ready()` reports the peer's half-close as read-closed, and a reset connection as
/// write-closed too (what a following write would hit).
#[blitz_io::test]
async fn ready_reports_read_closed_and_write_closed() {
    bounded(async {
        let (client, server) = pair().await;
        client.shutdown(Shutdown::Write).unwrap();
        let r = server.ready(Interest::READABLE).await.unwrap();
        assert!(r.is_read_closed(), "peer FIN: {r:?}");
        assert!(!r.is_write_closed(), "a half-close leaves writing open: {r:?}");

        let (client, server) = pair().await;
        // SO_LINGER 0: closing sends RST.
        socket2::SockRef::from(&client).set_linger(Some(Duration::ZERO)).unwrap();
        drop(client);
        let r = loop {
            let r = server.ready(Interest::READABLE | Interest::WRITABLE).await.unwrap();
            if r.is_write_closed() {
                break r;
            }
            sleep(Duration::from_millis(5)).await;
        };
        assert!(r.is_read_closed() && r.is_write_closed(), "peer RST: {r:?}");
    })
    .await
}
