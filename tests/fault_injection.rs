//! Fault injection into the socket system calls (`blitz_io::__fault`, feature
//! `fault-injection`): with `EINTR` on every other call, `EAGAIN` storms, and sends and
//! receives cut to a few bytes, every byte still arrives once and in order, and no task
//! hangs.
//!
//! Run with `cargo test --features fault-injection --test fault_injection`.
//!
//! Each test asserts that its faults were really injected (the guard's `Stats`), so a
//! seam that silently stopped injecting fails here rather than passing vacuously.

#![cfg(all(unix, feature = "fault-injection"))]

use std::future::Future;
use std::io;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use blitz_io::__fault::{inject, Guard, Plan, Stats};
use blitz_io::net::{TcpListener, TcpStream, UdpSocket, UnixStream};
use blitz_io::task;
use blitz_io::time::timeout;

const LIMIT: Duration = Duration::from_secs(20);

async fn bounded<F: Future>(f: F) -> F::Output {
    timeout(LIMIT, f).await.expect("test body timed out (a lost wake-up?)")
}

/// The byte at offset `i` of every test stream: not periodic in any small power of two,
/// so a dropped, repeated or reordered chunk changes the bytes at the seam.
fn pattern(i: usize) -> u8 {
    (i.wrapping_mul(31) ^ (i >> 8) ^ (i >> 16)) as u8
}

fn data(len: usize) -> Vec<u8> {
    (0..len).map(pattern).collect()
}

/// Asserts that `got` is the pattern stream, naming the first bad offset.
fn verify(got: &[u8], len: usize) {
    assert_eq!(got.len(), len, "length");
    if let Some(i) = (0..len).find(|&i| got[i] != pattern(i)) {
        panic!("byte {i} is {} but should be {}", got[i], pattern(i));
    }
}

/// A connected pair, with Nagle off: a send cut in two must not leave its tail waiting
/// for the peer's delayed ACK (40 ms per cut on Linux, which would only slow the tests).
async fn tcp_pair() -> (TcpStream, TcpStream) {
    let listener = TcpListener::bind(([127, 0, 0, 1], 0)).unwrap();
    let client = TcpStream::connect(listener.local_addr().unwrap()).await.unwrap();
    let server = listener.accept().await.unwrap().stream;
    client.set_nodelay(true).unwrap();
    server.set_nodelay(true).unwrap();
    (client, server)
}

/// Echoes everything on `s` back until end-of-stream; returns the byte count.
async fn echo_server(mut s: TcpStream) -> io::Result<usize> {
    let mut buf = vec![0u8; 16 * 1024];
    let mut total = 0;
    loop {
        let n = s.read(&mut buf).await?;
        if n == 0 {
            s.shutdown(std::net::Shutdown::Write)?;
            return Ok(total);
        }
        total += n;
        s.write_all(&buf[..n]).await?;
    }
}

/// Sends `len` pattern bytes through `client` (to an echo server) while reading the echo
/// back in another task; verifies the echo.
async fn echo_through(client: TcpStream, len: usize) {
    let (mut rd, mut wr) = client.into_split();
    let reader = task::spawn(async move {
        let mut got = Vec::with_capacity(len);
        let mut buf = vec![0u8; 8 * 1024];
        loop {
            let n = rd.read(&mut buf).await?;
            if n == 0 {
                return Ok::<_, io::Error>(got);
            }
            got.extend_from_slice(&buf[..n]);
        }
    });
    let payload = data(len);
    for chunk in payload.chunks(50_000) {
        wr.write_all(chunk).await.unwrap();
    }
    wr.shutdown().unwrap();
    let got = reader.await.unwrap().unwrap();
    verify(&got, len);
}

fn assert_injected(what: &str, s: Stats, check: impl Fn(&Stats) -> bool) {
    assert!(check(&s), "{what}: the faults were not injected as planned: {s:?}");
}

/// `EINTR` on every other call, on both ends, both directions: a 1 MiB echo is exact,
/// and `Interrupted` never reaches a caller (it would fail the `unwrap`s).
#[blitz_io::test(flavor = "multi_thread", worker_threads = 2)]
async fn eintr_every_other_call_echo_1mib() {
    bounded(async {
        const LEN: usize = 1 << 20;
        let (client, server) = tcp_pair().await;
        let plan = Plan { eintr_every: 2, ..Plan::default() };
        let gc = inject(&client, plan).unwrap();
        let gs = inject(&server, plan).unwrap();
        let srv = task::spawn(echo_server(server));
        echo_through(client, LEN).await;
        assert_eq!(srv.await.unwrap().unwrap(), LEN);
        assert_injected("client", gc.stats(), |s| s.eintr >= 10);
        assert_injected("server", gs.stats(), |s| s.eintr >= 10);
    })
    .await;
}

/// Every send moves at most 7 bytes: `write_all` (and the write loop of the echo) still
/// delivers 64 KiB complete and in order, on both runtime flavours.
#[blitz_io::test]
async fn short_writes_of_7_bytes_write_all_current_thread() {
    bounded(short_writes(64 * 1024)).await;
}

/// As above on the multi-thread runtime.
#[blitz_io::test(flavor = "multi_thread", worker_threads = 2)]
async fn short_writes_of_7_bytes_write_all_multi_thread() {
    bounded(short_writes(64 * 1024)).await;
}

async fn short_writes(len: usize) {
    let (mut client, mut server) = tcp_pair().await;
    let g = inject(&client, Plan { short_io_max: 7, ..Plan::default() }).unwrap();
    let reader = task::spawn(async move {
        let mut got = Vec::new();
        let mut buf = vec![0u8; 4096];
        loop {
            let n = server.read(&mut buf).await.unwrap();
            if n == 0 {
                return got;
            }
            got.extend_from_slice(&buf[..n]);
        }
    });
    let payload = data(len);
    client.write_all(&payload).await.unwrap();
    // A vectored send is cut too, across buffer boundaries.
    let tail = data(len + 20);
    let bufs = [io::IoSlice::new(&tail[len..len + 5]), io::IoSlice::new(&tail[len + 5..])];
    let mut sent = 0;
    while sent < 20 {
        client.writable().await.unwrap();
        let n = if sent < 5 {
            let rest = [io::IoSlice::new(&bufs[0][sent..]), bufs[1]];
            client.try_write_vectored(&rest).unwrap()
        } else {
            client.try_write_vectored(&[io::IoSlice::new(&bufs[1][sent - 5..])]).unwrap()
        };
        if let Some(n) = n {
            assert!(n <= 7, "a cut vectored send moved {n} bytes");
            sent += n;
        }
    }
    client.shutdown(std::net::Shutdown::Write).unwrap();
    let got = reader.await.unwrap();
    verify(&got, len + 20);
    assert_injected("client", g.stats(), |s| s.short as usize >= len / 7);
}

/// Every receive moves at most 3 bytes (on the server) while a request/response protocol
/// of length-prefixed frames runs over it: every frame parses and echoes correctly. This
/// is the case where a read loop that takes a short read for "drained" would sleep
/// forever unless the socket gets a new edge (the seam re-arms it, as a kernel would).
#[blitz_io::test(flavor = "multi_thread", worker_threads = 2)]
async fn short_reads_of_3_bytes_framed_protocol() {
    bounded(async {
        const FRAMES: usize = 100;
        let (mut client, mut server) = tcp_pair().await;
        let gs = inject(&server, Plan { short_io_max: 3, ..Plan::default() }).unwrap();
        let srv = task::spawn(async move {
            let mut frames = 0;
            loop {
                let mut len = [0u8; 4];
                if !read_exact(&mut server, &mut len).await? {
                    return Ok::<_, io::Error>(frames);
                }
                let mut body = vec![0u8; u32::from_be_bytes(len) as usize];
                if !read_exact(&mut server, &mut body).await? {
                    return Err(io::ErrorKind::UnexpectedEof.into());
                }
                let sum = body.iter().fold(0u32, |a, &b| a.wrapping_mul(31).wrapping_add(u32::from(b)));
                server.write_all(&sum.to_be_bytes()).await?;
                frames += 1;
            }
        });
        let mut rng = 0x9e37_79b9_u32;
        for i in 0..FRAMES {
            rng ^= rng << 13;
            rng ^= rng >> 17;
            rng ^= rng << 5;
            let body: Vec<u8> = (0..(rng % 200) as usize).map(|j| pattern(i * 1000 + j)).collect();
            let mut frame = (body.len() as u32).to_be_bytes().to_vec();
            frame.extend_from_slice(&body);
            client.write_all(&frame).await.unwrap();
            let mut sum = [0u8; 4];
            assert!(read_exact(&mut client, &mut sum).await.unwrap(), "server closed early");
            let want = body.iter().fold(0u32, |a, &b| a.wrapping_mul(31).wrapping_add(u32::from(b)));
            assert_eq!(u32::from_be_bytes(sum), want, "frame {i}");
        }
        client.shutdown(std::net::Shutdown::Write).unwrap();
        assert_eq!(srv.await.unwrap().unwrap(), FRAMES);
        assert_injected("server", gs.stats(), |s| s.short >= FRAMES as u64);
    })
    .await;
}

/// Fills `buf` with `read`s; `false` on end-of-stream before the first byte.
async fn read_exact(s: &mut TcpStream, buf: &mut [u8]) -> io::Result<bool> {
    let mut at = 0;
    while at < buf.len() {
        let n = s.read(&mut buf[at..]).await?;
        if n == 0 {
            return if at == 0 { Ok(false) } else { Err(io::ErrorKind::UnexpectedEof.into()) };
        }
        at += n;
    }
    Ok(true)
}

/// Three `EAGAIN`s before every real call, on both ends, in both directions: a 256 KiB
/// echo through the future tier (`read`, `write_all`) is exact.
#[blitz_io::test(flavor = "multi_thread", worker_threads = 2)]
async fn eagain_storm_future_tier_echo() {
    bounded(async {
        const LEN: usize = 256 * 1024;
        let (client, server) = tcp_pair().await;
        let plan = Plan { eagain_burst: 3, ..Plan::default() };
        let gc = inject(&client, plan).unwrap();
        let gs = inject(&server, plan).unwrap();
        let srv = task::spawn(echo_server(server));
        echo_through(client, LEN).await;
        assert_eq!(srv.await.unwrap().unwrap(), LEN);
        for (what, g) in [("client", &gc), ("server", &gs)] {
            assert_injected(what, g.stats(), |s| s.eagain >= 30);
            #[cfg(target_os = "linux")]
            assert_injected(what, g.stats(), |s| s.rearms > 0);
        }
    })
    .await;
}

/// The same storm through the non-blocking tier: a `readable().await` / `try_read` loop
/// and a `writable().await` / `try_write` loop, on the current-thread runtime.
#[blitz_io::test]
async fn eagain_storm_try_tier() {
    bounded(async {
        const LEN: usize = 128 * 1024;
        let (client, server) = tcp_pair().await;
        let plan = Plan { eagain_burst: 2, ..Plan::default() };
        let gc = inject(&client, plan).unwrap();
        let gs = inject(&server, plan).unwrap();
        let reader = task::spawn(async move {
            let mut got = Vec::new();
            let mut buf = vec![0u8; 8192];
            loop {
                server.readable().await?;
                match server.try_read(&mut buf)? {
                    None => continue,
                    Some(0) => return Ok::<_, io::Error>((got, gs.stats())),
                    Some(n) => got.extend_from_slice(&buf[..n]),
                }
            }
        });
        let payload = data(LEN);
        let mut at = 0;
        let mut nones = 0;
        while at < LEN {
            client.writable().await.unwrap();
            match client.try_write(&payload[at..(at + 10_000).min(LEN)]).unwrap() {
                None => nones += 1,
                Some(n) => at += n,
            }
        }
        client.shutdown(std::net::Shutdown::Write).unwrap();
        let (got, server_stats) = reader.await.unwrap().unwrap();
        verify(&got, LEN);
        assert!(nones >= 2, "the writer never saw an injected would-block");
        assert_injected("client", gc.stats(), |s| s.eagain >= 2);
        assert_injected("server", server_stats, |s| s.eagain >= 2);
    })
    .await;
}

/// UDP under `EAGAIN` storms and `EINTR`: 300 numbered datagrams sent with `send_to`
/// and received with `recv_from` all arrive exactly once, in order, never cut (the seam
/// never cuts a datagram, even with `short_io_max` set).
#[blitz_io::test(flavor = "multi_thread", worker_threads = 2)]
async fn udp_storm_loses_nothing() {
    bounded(async {
        let a = UdpSocket::bind(([127, 0, 0, 1], 0)).unwrap();
        let b = UdpSocket::bind(([127, 0, 0, 1], 0)).unwrap();
        let plan = Plan { eintr_every: 3, eagain_burst: 2, short_io_max: 2 };
        let ga = inject(&a, plan).unwrap();
        let gb = inject(&b, plan).unwrap();
        let to = b.local_addr().unwrap();
        let from = a.local_addr().unwrap();
        let seen = Arc::new(AtomicU32::new(0));
        let seen2 = seen.clone();
        let recv = task::spawn(async move {
            let mut buf = [0u8; 64];
            for want in 0u32..300 {
                let r = b.recv_from(&mut buf).await.unwrap();
                assert_eq!(r.addr, from);
                assert!(!r.truncated);
                assert_eq!(r.len, 40, "datagram {want} was cut");
                let got = u32::from_be_bytes(buf[..4].try_into().unwrap());
                assert_eq!(got, want, "datagram out of order, lost or repeated");
                assert!(buf[4..40].iter().all(|&x| x == want as u8));
                seen.store(want + 1, Ordering::SeqCst);
            }
            gb.stats()
        });
        for i in 0u32..300 {
            let mut d = [i as u8; 40];
            d[..4].copy_from_slice(&i.to_be_bytes());
            assert_eq!(a.send_to(&d, to).await.unwrap(), 40);
            // Keep at most 64 datagrams in flight: loopback drops what overflows the
            // receive buffer, and a drop here would be the test's fault, not a bug.
            while i >= seen2.load(Ordering::SeqCst) + 64 {
                blitz_io::time::sleep(Duration::from_micros(200)).await;
            }
        }
        let sb = recv.await.unwrap();
        assert_injected("sender", ga.stats(), |s| s.eagain >= 300 && s.eintr > 0 && s.short == 0);
        assert_injected("receiver", sb, |s| s.eagain >= 300 && s.short == 0);
    })
    .await;
}

/// Every fault at once on a Unix stream pair, on both runtime flavours: `EINTR` every
/// 3rd call, one `EAGAIN` before each real call, and at most 5 bytes per call.
#[test]
fn unix_stream_all_faults_both_flavours() {
    for multi in [false, true] {
        let rt = if multi {
            blitz_io::runtime::Builder::new_multi_thread().worker_threads(2).build().unwrap()
        } else {
            blitz_io::runtime::Builder::new_current_thread().build().unwrap()
        };
        rt.block_on(bounded(async {
            const LEN: usize = 6 * 1024;
            let (a, mut b) = UnixStream::pair().unwrap();
            let plan = Plan { eintr_every: 3, eagain_burst: 1, short_io_max: 5 };
            let ga: Guard = inject(&a, plan).unwrap();
            let gb: Guard = inject(&b, plan).unwrap();
            let (mut ard, mut awr) = a.into_split();
            let writer = task::spawn(async move {
                awr.write_all(&data(LEN)).await?;
                awr.shutdown()?;
                Ok::<_, io::Error>(awr)
            });
            // `b` echoes; `a` reads the echo.
            let echo = task::spawn(async move {
                let mut buf = [0u8; 1024];
                loop {
                    let n = b.read(&mut buf).await?;
                    if n == 0 {
                        return Ok::<_, io::Error>(());
                    }
                    b.write_all(&buf[..n]).await?;
                }
            });
            let mut got = Vec::new();
            let mut buf = [0u8; 777];
            while got.len() < LEN {
                let n = ard.read(&mut buf).await.unwrap();
                assert!(n > 0, "early end-of-stream after {} bytes", got.len());
                got.extend_from_slice(&buf[..n]);
            }
            verify(&got, LEN);
            echo.await.unwrap().unwrap();
            drop(writer.await.unwrap().unwrap());
            for (what, g) in [("a", &ga), ("b", &gb)] {
                assert_injected(what, g.stats(), |s| s.eintr > 0 && s.eagain > 0 && s.short > 0);
            }
        }));
    }
}
