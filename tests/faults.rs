//! Peer failures and state changes: resets mid-read and mid-write under load, half
//! closes in both directions, tasks parked on I/O woken by a peer close, a local
//! `shutdown` or a reset, runtimes dropped with tasks parked on I/O, refused connects,
//! and an `accept` parked across a runtime shutdown.
//!
//! Every test is bounded (a `timeout` inside the runtime or a watchdog thread around
//! it), runs on loopback or Unix socket pairs only, and binds port 0.

#![cfg(unix)]

mod support;

use std::future::{poll_fn, Future};
use std::io::{self, ErrorKind};
use std::net::Shutdown;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use blitz_io::net::{TcpListener, TcpStream, UdpSocket, UnixStream};
use blitz_io::runtime::{Builder, Runtime};
use blitz_io::task;
use blitz_io::time::{sleep, timeout};
use support::{with_timeout, DropFlag};

const LIMIT: Duration = Duration::from_secs(20);

async fn bounded<F: Future>(f: F) -> F::Output {
    timeout(LIMIT, f).await.expect("test body timed out (a lost wake-up?)")
}

/// A small xorshift generator: deterministic per seed, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn pattern(id: u32, i: usize) -> u8 {
    (i.wrapping_mul(31) ^ (i >> 8) ^ id as usize) as u8
}

/// The kinds a server may see from a peer that reset the connection at a random point.
fn reset_kind(k: ErrorKind) -> bool {
    matches!(k, ErrorKind::ConnectionReset | ErrorKind::BrokenPipe | ErrorKind::UnexpectedEof)
}

async fn read_exact(s: &mut TcpStream, buf: &mut [u8]) -> io::Result<()> {
    let mut at = 0;
    while at < buf.len() {
        match s.read(&mut buf[at..]).await? {
            0 => return Err(ErrorKind::UnexpectedEof.into()),
            n => at += n,
        }
    }
    Ok(())
}

/// One server connection: reads `id: u32, len: u32` and `len` payload bytes, verifies
/// them, and echoes the payload back.
async fn serve_one(mut s: TcpStream) -> (Option<u32>, io::Result<()>) {
    let mut head = [0u8; 8];
    if let Err(e) = read_exact(&mut s, &mut head).await {
        return (None, Err(e));
    }
    let id = u32::from_be_bytes(head[..4].try_into().unwrap());
    let len = u32::from_be_bytes(head[4..].try_into().unwrap()) as usize;
    let r = async {
        let mut body = vec![0u8; len];
        read_exact(&mut s, &mut body).await?;
        if let Some(i) = (0..len).find(|&i| body[i] != pattern(id, i)) {
            return Err(io::Error::other(format!("client {id}: byte {i} corrupted")));
        }
        s.write_all(&body).await
    }
    .await;
    (Some(id), r)
}

/// 500 clients against one server on a 2-worker runtime; every odd client resets its
/// connection (`SO_LINGER` 0, then drop) at a random point: before sending, in the middle
/// of its request, or in the middle of reading the reply. Every even client is served
/// completely and verifies the echo; every one of the 500 server tasks ends, the
/// resetters' with `Ok` or a reset-type error, never anything else and never a hang.
#[blitz_io::test(flavor = "multi_thread", worker_threads = 2)]
async fn resets_mid_read_and_mid_write_500_clients() {
    bounded(async {
        const CLIENTS: u32 = 500;
        let seed = 0x5eed_0000_u64 ^ u64::from(std::process::id());
        eprintln!("resets_mid_read_and_mid_write_500_clients: seed {seed:#x}");
        let listener = TcpListener::bind(([127, 0, 0, 1], 0)).unwrap();
        let addr = listener.local_addr().unwrap();
        let ends = Arc::new(AtomicUsize::new(0));
        let outcomes = Arc::new(Mutex::new(Vec::new()));
        let (e2, o2) = (ends.clone(), outcomes.clone());
        let server = task::spawn(async move {
            let mut handlers = Vec::new();
            for _ in 0..CLIENTS {
                let conn = listener.accept().await.unwrap().stream;
                let (ends, outcomes) = (e2.clone(), o2.clone());
                handlers.push(task::spawn(async move {
                    let (id, r) = serve_one(conn).await;
                    outcomes.lock().unwrap().push((id, r.map_err(|e| e.kind())));
                    ends.fetch_add(1, Ordering::SeqCst);
                }));
            }
            for h in handlers {
                h.await.unwrap();
            }
        });

        let mut clients = Vec::new();
        let mut rng = Rng(seed);
        for id in 0..CLIENTS {
            let len = 1 + rng.below(96 * 1024) as usize;
            let resetter = id % 2 == 1;
            // Where a resetter stops: 0 before sending, 1 inside the request, 2 inside the reply.
            let stage = rng.below(3);
            let cut = rng.below(len as u64) as usize;
            clients.push(task::spawn(async move {
                let mut s = TcpStream::connect(addr).await?;
                let body: Vec<u8> = (0..len).map(|i| pattern(id, i)).collect();
                let mut req = id.to_be_bytes().to_vec();
                req.extend_from_slice(&(len as u32).to_be_bytes());
                if resetter {
                    s.set_linger(Some(Duration::ZERO))?;
                    if stage >= 1 {
                        s.write_all(&req).await?;
                        s.write_all(&body[..if stage == 1 { cut } else { len }]).await?;
                    }
                    if stage == 2 {
                        let mut buf = vec![0u8; cut.max(1)];
                        read_exact(&mut s, &mut buf).await?;
                    }
                    drop(s); // RST
                    return Ok::<_, io::Error>(());
                }
                req.extend_from_slice(&body);
                s.write_all(&req).await?;
                let mut back = vec![0u8; len];
                read_exact(&mut s, &mut back).await?;
                assert!(back == body, "client {id}: echo differs");
                assert_eq!(s.read(&mut [0u8; 1]).await?, 0, "client {id}: bytes after the echo");
                Ok(())
            }));
        }
        for (id, c) in clients.into_iter().enumerate() {
            c.await.unwrap().unwrap_or_else(|e| panic!("client {id} failed: {e}"));
        }
        server.await.unwrap();
        assert_eq!(ends.load(Ordering::SeqCst), CLIENTS as usize, "every server task ends");
        let outcomes = outcomes.lock().unwrap();
        let mut served = 0;
        let mut resets = 0;
        for (id, r) in outcomes.iter() {
            match (id, r) {
                (Some(id), Ok(())) => served += usize::from(id % 2 == 0),
                (Some(id), Err(k)) if id % 2 == 1 && reset_kind(*k) => resets += 1,
                (None, Err(k)) if reset_kind(*k) => resets += 1,
                other => panic!("unexpected server outcome {other:?}"),
            }
        }
        assert_eq!(served, CLIENTS as usize / 2, "every well-behaved client is served");
        // Most resets land before the server finished: the test exercised the error paths.
        assert!(resets >= CLIENTS as usize / 4, "only {resets} server tasks saw a reset");
    })
    .await;
}

/// The client shuts down its write side: the server reads the request to end-of-stream
/// and can still write a reply, which the client reads (then end-of-stream).
#[blitz_io::test]
async fn half_close_from_client() {
    bounded(async {
        let listener = TcpListener::bind(([127, 0, 0, 1], 0)).unwrap();
        let mut client = TcpStream::connect(listener.local_addr().unwrap()).await.unwrap();
        let mut server = listener.accept().await.unwrap().stream;
        client.write_all(b"request").await.unwrap();
        client.shutdown(Shutdown::Write).unwrap();
        let mut got = Vec::new();
        let mut buf = [0u8; 64];
        loop {
            let n = server.read(&mut buf).await.unwrap();
            if n == 0 {
                break;
            }
            got.extend_from_slice(&buf[..n]);
        }
        assert_eq!(got, b"request");
        // Reading again after end-of-stream still says end-of-stream.
        assert_eq!(server.read(&mut buf).await.unwrap(), 0);
        server.write_all(b"reply after EOF").await.unwrap();
        server.shutdown(Shutdown::Write).unwrap();
        let mut back = Vec::new();
        loop {
            let n = client.read(&mut buf).await.unwrap();
            if n == 0 {
                break;
            }
            back.extend_from_slice(&buf[..n]);
        }
        assert_eq!(back, b"reply after EOF");
    })
    .await;
}

/// The server shuts down its write side: the client reads end-of-stream (through
/// `readable` + `try_read` too), and can still send to the server, which reads it.
#[blitz_io::test(flavor = "multi_thread", worker_threads = 2)]
async fn half_close_from_server() {
    bounded(async {
        let listener = TcpListener::bind(([127, 0, 0, 1], 0)).unwrap();
        let mut client = TcpStream::connect(listener.local_addr().unwrap()).await.unwrap();
        let mut server = listener.accept().await.unwrap().stream;
        server.write_all(b"bye").await.unwrap();
        server.shutdown(Shutdown::Write).unwrap();
        let mut buf = [0u8; 8];
        let mut got = Vec::new();
        loop {
            client.readable().await.unwrap();
            match client.try_read(&mut buf).unwrap() {
                None => continue,
                Some(0) => break,
                Some(n) => got.extend_from_slice(&buf[..n]),
            }
        }
        assert_eq!(got, b"bye");
        let ready = client.ready(blitz_io::net::Interest::READABLE).await.unwrap();
        assert!(ready.is_read_closed(), "{ready:?}");
        client.write_all(b"still here").await.unwrap();
        let mut back = [0u8; 10];
        read_exact(&mut server, &mut back).await.unwrap();
        assert_eq!(&back, b"still here");
    })
    .await;
}

/// Waits until `flag` is set by a task that is about to park, then a little longer so
/// that it has parked.
async fn until_parked(flag: &AtomicBool) {
    while !flag.load(Ordering::SeqCst) {
        sleep(Duration::from_millis(1)).await;
    }
    sleep(Duration::from_millis(20)).await;
}

/// A task parked in `readable()` is woken when the peer closes, and its read gives 0; a
/// task parked in `read()` is woken likewise.
#[blitz_io::test(flavor = "multi_thread", worker_threads = 2)]
async fn parked_readable_and_read_wake_on_peer_close() {
    bounded(async {
        let listener = TcpListener::bind(([127, 0, 0, 1], 0)).unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap()).await.unwrap();
        let (mut server, _) = {
            let a = listener.accept().await.unwrap();
            (a.stream, a.peer_addr)
        };
        let parked = Arc::new(AtomicBool::new(false));
        let p = parked.clone();
        let waiter = task::spawn(async move {
            p.store(true, Ordering::SeqCst);
            server.readable().await?;
            let n1 = server.try_read(&mut [0u8; 8])?;
            let n2 = server.read(&mut [0u8; 8]).await?;
            Ok::<_, io::Error>((n1, n2))
        });
        until_parked(&parked).await;
        assert!(!waiter.is_finished(), "readable() returned before anything happened");
        drop(client);
        assert_eq!(waiter.await.unwrap().unwrap(), (Some(0), 0));

        // The same for a Unix pair and a task parked inside `read`.
        let (a, mut b) = UnixStream::pair().unwrap();
        let parked = Arc::new(AtomicBool::new(false));
        let p = parked.clone();
        let reader = task::spawn(async move {
            p.store(true, Ordering::SeqCst);
            b.read(&mut [0u8; 8]).await
        });
        until_parked(&parked).await;
        assert!(!reader.is_finished());
        drop(a);
        assert_eq!(reader.await.unwrap().unwrap(), 0);
    })
    .await;
}

/// `shutdown(Read)` from another task, through a shared `Arc`, wakes a task parked in
/// `readable()` and one parked in `poll_read`: each returns (0 or an error), never hangs.
#[blitz_io::test(flavor = "multi_thread", worker_threads = 2)]
async fn own_shutdown_read_wakes_parked_readers() {
    bounded(async {
        let listener = TcpListener::bind(([127, 0, 0, 1], 0)).unwrap();
        let _client = TcpStream::connect(listener.local_addr().unwrap()).await.unwrap();
        let server = Arc::new(listener.accept().await.unwrap().stream);
        let (tx, ux) = UnixStream::pair().unwrap();
        let ux = Arc::new(ux);
        let parked = Arc::new(AtomicUsize::new(0));

        let mut waiters = Vec::new();
        for which in 0..2 {
            let (s, u, p) = (server.clone(), ux.clone(), parked.clone());
            waiters.push(task::spawn(async move {
                p.fetch_add(1, Ordering::SeqCst);
                let mut buf = [0u8; 8];
                let tcp = if which == 0 {
                    s.readable().await.and_then(|()| s.try_read(&mut buf).map(|n| n.unwrap_or(0)))
                } else {
                    poll_fn(|cx| s.poll_read(cx, &mut buf)).await
                };
                let unix = if which == 0 {
                    u.readable().await.and_then(|()| u.try_read(&mut buf).map(|n| n.unwrap_or(0)))
                } else {
                    poll_fn(|cx| u.poll_read(cx, &mut buf)).await
                };
                (tcp, unix)
            }));
        }
        while parked.load(Ordering::SeqCst) < 2 {
            sleep(Duration::from_millis(1)).await;
        }
        sleep(Duration::from_millis(20)).await;
        assert!(waiters.iter().all(|w| !w.is_finished()), "a reader returned before the shutdown");
        server.shutdown(Shutdown::Read).unwrap();
        sleep(Duration::from_millis(20)).await;
        ux.shutdown(Shutdown::Read).unwrap();
        for w in waiters {
            let (tcp, unix) = w.await.unwrap();
            for (what, r) in [("tcp", tcp), ("unix", unix)] {
                match r {
                    Ok(0) | Err(_) => {}
                    Ok(n) => panic!("{what}: read {n} bytes from a socket nobody wrote to"),
                }
            }
        }
        drop(tx);
    })
    .await;
}

/// Fill the send buffer so that `writable()` parks; the peer then resets: `writable()`
/// completes and the write fails with `ConnectionReset` or `BrokenPipe`.
#[blitz_io::test(flavor = "multi_thread", worker_threads = 2)]
async fn parked_writable_wakes_on_peer_reset() {
    bounded(async {
        let listener = TcpListener::bind(([127, 0, 0, 1], 0)).unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap()).await.unwrap();
        let mut server = listener.accept().await.unwrap().stream;
        let chunk = vec![0x5a_u8; 64 * 1024];
        let mut filled = 0usize;
        while let Some(n) = server.try_write(&chunk).unwrap() {
            filled += n;
            assert!(filled < 256 << 20, "the send buffer never filled");
        }
        let parked = Arc::new(AtomicBool::new(false));
        let p = parked.clone();
        let writer = task::spawn(async move {
            p.store(true, Ordering::SeqCst);
            server.writable().await?;
            // Readiness may come back before the reset is seen; keep writing until the
            // error (bounded by the test's timeout).
            loop {
                server.write(&chunk).await?;
            }
            #[allow(unreachable_code)]
            Ok::<(), io::Error>(())
        });
        until_parked(&parked).await;
        assert!(!writer.is_finished(), "writable() returned with a full send buffer");
        client.set_linger(Some(Duration::ZERO)).unwrap();
        drop(client);
        let e = writer.await.unwrap().unwrap_err();
        assert!(matches!(e.kind(), ErrorKind::ConnectionReset | ErrorKind::BrokenPipe), "{e:?}");
    })
    .await;
}

/// A task parked in `accept()` is woken by an incoming connection; a task parked in
/// `accept()` on a listener that is shut down (Linux: `shutdown(SHUT_RD)` on a listening
/// socket disconnects it) returns an error instead of hanging.
#[blitz_io::test(flavor = "multi_thread", worker_threads = 2)]
async fn parked_accept_wakes() {
    bounded(async {
        let listener = Arc::new(TcpListener::bind(([127, 0, 0, 1], 0)).unwrap());
        let addr = listener.local_addr().unwrap();
        let l = listener.clone();
        let acceptor = task::spawn(async move { l.accept().await.map(|a| a.peer_addr) });
        sleep(Duration::from_millis(20)).await;
        assert!(!acceptor.is_finished());
        let c = TcpStream::connect(addr).await.unwrap();
        assert_eq!(acceptor.await.unwrap().unwrap(), c.local_addr().unwrap());

        #[cfg(target_os = "linux")]
        {
            let l = listener.clone();
            let acceptor = task::spawn(async move { l.accept().await.map(|a| a.peer_addr) });
            sleep(Duration::from_millis(20)).await;
            assert!(!acceptor.is_finished());
            socket2::SockRef::from(&*listener).shutdown(Shutdown::Read).unwrap();
            assert!(acceptor.await.unwrap().is_err(), "accept on a shut-down listener succeeded");
        }
    })
    .await;
}

/// `connect` to a port nobody listens on fails with `ConnectionRefused`, promptly.
#[blitz_io::test]
async fn connect_to_closed_port_is_refused() {
    bounded(async {
        let addr = {
            let l = TcpListener::bind(([127, 0, 0, 1], 0)).unwrap();
            l.local_addr().unwrap()
        };
        let start = Instant::now();
        let e = TcpStream::connect(addr).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::ConnectionRefused, "{e:?}");
        assert!(start.elapsed() < Duration::from_secs(5));
    })
    .await;
}

fn runtime(multi: bool) -> Runtime {
    if multi {
        Builder::new_multi_thread().worker_threads(2).build().unwrap()
    } else {
        Builder::new_current_thread().build().unwrap()
    }
}

/// Dropping a runtime while tasks are parked in `read`, `readable`, `writable` (full
/// buffer), `accept` and `recv_from` drops every one of their futures (drop guards) and
/// returns promptly, on both flavours.
#[test]
fn runtime_drop_with_tasks_parked_on_io() {
    with_timeout(30, || {
        for multi in [false, true] {
            let rt = runtime(multi);
            let parked = Arc::new(AtomicUsize::new(0));
            let mut flags = Vec::new();
            let keep = rt.block_on(async {
                let listener = TcpListener::bind(([127, 0, 0, 1], 0)).unwrap();
                let client = TcpStream::connect(listener.local_addr().unwrap()).await.unwrap();
                let mut server = listener.accept().await.unwrap().stream;
                // `ua` fills its buffer towards `ub` (which nobody reads); `ud` waits for
                // `uc`, which never writes.
                let (ua, ub) = UnixStream::pair().unwrap();
                let (uc, ud) = UnixStream::pair().unwrap();
                let udp = UdpSocket::bind(([127, 0, 0, 1], 0)).unwrap();
                let fill = vec![1u8; 64 * 1024];
                while ua.try_write(&fill).unwrap().is_some() {}

                let spawn_parked = |flags: &mut Vec<_>, f: std::pin::Pin<Box<dyn Future<Output = ()> + Send>>| {
                    let (guard, flag) = DropFlag::new();
                    flags.push(flag);
                    let p = parked.clone();
                    task::spawn(async move {
                        let _g = guard;
                        p.fetch_add(1, Ordering::SeqCst);
                        f.await;
                        panic!("a parked I/O operation completed with nothing to complete it");
                    });
                };
                spawn_parked(
                    &mut flags,
                    Box::pin(async move {
                        let _ = server.read(&mut [0u8; 8]).await;
                    }),
                );
                spawn_parked(
                    &mut flags,
                    Box::pin(async move {
                        let _ = ud.readable().await;
                    }),
                );
                let ua = Arc::new(ua);
                let ua2 = ua.clone();
                spawn_parked(
                    &mut flags,
                    Box::pin(async move {
                        let _ = ua2.writable().await;
                    }),
                );
                spawn_parked(
                    &mut flags,
                    Box::pin(async move {
                        let _ = listener.accept().await;
                    }),
                );
                spawn_parked(
                    &mut flags,
                    Box::pin(async move {
                        let _ = udp.recv_from(&mut [0u8; 8]).await;
                    }),
                );
                while parked.load(Ordering::SeqCst) < 5 {
                    sleep(Duration::from_millis(1)).await;
                }
                sleep(Duration::from_millis(20)).await;
                (client, ua, ub, uc)
            });
            assert!(flags.iter().all(|f| !f.load(Ordering::SeqCst)), "a parked task ended early");
            let start = Instant::now();
            drop(rt);
            assert!(start.elapsed() < Duration::from_secs(5), "runtime drop took {:?}", start.elapsed());
            for (i, f) in flags.iter().enumerate() {
                assert!(f.load(Ordering::SeqCst), "multi={multi}: the future of parked task {i} was not dropped");
            }
            drop(keep);
        }
    });
}

/// A task parked in `accept()` while the runtime shuts down (`shutdown_timeout`): the
/// shutdown returns promptly, the accept future is dropped, and with it the listener,
/// so the port refuses connections afterwards.
#[test]
fn accept_parked_across_runtime_shutdown() {
    with_timeout(30, || {
        for multi in [false, true] {
            let rt = runtime(multi);
            let (guard, dropped) = DropFlag::new();
            let listener = TcpListener::bind(([127, 0, 0, 1], 0)).unwrap();
            let addr = listener.local_addr().unwrap();
            let started = Arc::new(AtomicBool::new(false));
            let s = started.clone();
            let handle = rt.spawn(async move {
                let _g = guard;
                s.store(true, Ordering::SeqCst);
                listener.accept().await.map(|a| a.peer_addr)
            });
            rt.block_on(async {
                until_parked(&started).await;
            });
            assert!(!handle.is_finished());
            let start = Instant::now();
            rt.shutdown_timeout(Duration::from_secs(2));
            assert!(start.elapsed() < Duration::from_secs(3), "shutdown took {:?}", start.elapsed());
            assert!(dropped.load(Ordering::SeqCst), "multi={multi}: the accept future was not dropped");
            let e = std::net::TcpStream::connect(addr.to_std()).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::ConnectionRefused, "the listener outlived its task");
        }
    });
}
