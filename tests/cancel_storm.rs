//! Cancellation storms: reads and `recv_from`s wrapped in random sub-millisecond
//! timeouts (0 to 1 ms, so many are dropped mid-wait and some before their first poll)
//! while a writer trickles numbered data in. Not one byte or datagram may be lost,
//! duplicated or reordered: a `read` future dropped before it completes must have
//! consumed nothing. TCP, UDP and Unix streams, on both runtime flavours.
//!
//! The generator is a xorshift seeded per test; the seed is printed so a failure can be
//! replayed (`BLITZ_STORM_SEED=0x... cargo test --test cancel_storm`).

#![cfg(unix)]

use std::future::Future;
use std::io;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use blitz_io::net::{TcpListener, TcpStream, UdpSocket, UnixStream};
use blitz_io::task;
use blitz_io::time::{sleep, timeout};

const LIMIT: Duration = Duration::from_secs(20);

async fn bounded<F: Future>(f: F) -> F::Output {
    timeout(LIMIT, f).await.expect("test body timed out (a lost wake-up?)")
}

/// Bytes the stream tests push through; datagrams in the UDP tests.
const STREAM_BYTES: usize = 256 * 1024;
const DATAGRAMS: u32 = 1500;

struct Rng(u64);

impl Rng {
    /// A generator for test `name`: from `BLITZ_STORM_SEED` if set, else from the name
    /// and the process id; the seed is printed.
    fn for_test(name: &str) -> Rng {
        let seed = std::env::var("BLITZ_STORM_SEED")
            .ok()
            .and_then(|s| u64::from_str_radix(s.trim_start_matches("0x"), 16).ok())
            .unwrap_or_else(|| {
                name.bytes()
                    .fold(u64::from(std::process::id()) | 1, |h, b| (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3))
            });
        eprintln!("{name}: seed {seed:#x}");
        Rng(seed | 1)
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    /// A timeout between 0 and 1 ms (0 included: the future may be dropped unpolled).
    fn sub_ms(&mut self) -> Duration {
        Duration::from_micros(self.below(1001))
    }
}

fn pattern(i: usize) -> u8 {
    (i.wrapping_mul(131) ^ (i >> 9) ^ (i >> 17)) as u8
}

/// What a storm did: how many operations completed and how many were cancelled.
#[derive(Debug, Default)]
struct Tally {
    done: u64,
    cancelled: u64,
}

impl Tally {
    fn check(&self, what: &str) {
        eprintln!("{what}: {self:?}");
        assert!(self.cancelled > 0, "{what}: no operation was ever cancelled; the storm tested nothing");
        assert!(self.done > 0, "{what}: nothing completed");
    }
}

/// A stream end the storm can drive (TCP or Unix).
trait Stream: Send + 'static {
    fn read_some<'a>(&'a mut self, buf: &'a mut [u8]) -> impl Future<Output = io::Result<usize>> + Send + 'a;
    fn write_every<'a>(&'a mut self, data: &'a [u8]) -> impl Future<Output = io::Result<()>> + Send + 'a;
    fn close_write(&self) -> io::Result<()>;
}

impl Stream for TcpStream {
    fn read_some<'a>(&'a mut self, buf: &'a mut [u8]) -> impl Future<Output = io::Result<usize>> + Send + 'a {
        self.read(buf)
    }
    fn write_every<'a>(&'a mut self, data: &'a [u8]) -> impl Future<Output = io::Result<()>> + Send + 'a {
        self.write_all(data)
    }
    fn close_write(&self) -> io::Result<()> {
        self.shutdown(std::net::Shutdown::Write)
    }
}

impl Stream for UnixStream {
    fn read_some<'a>(&'a mut self, buf: &'a mut [u8]) -> impl Future<Output = io::Result<usize>> + Send + 'a {
        self.read(buf)
    }
    fn write_every<'a>(&'a mut self, data: &'a [u8]) -> impl Future<Output = io::Result<()>> + Send + 'a {
        self.write_all(data)
    }
    fn close_write(&self) -> io::Result<()> {
        self.shutdown(std::net::Shutdown::Write)
    }
}

/// Writes `STREAM_BYTES` pattern bytes in random chunks of 1..=300 bytes with tiny
/// pauses, then shuts the write side down.
async fn trickle<S: Stream>(mut w: S, mut rng: Rng) -> io::Result<S> {
    let mut at = 0;
    while at < STREAM_BYTES {
        let len = (1 + rng.below(300) as usize).min(STREAM_BYTES - at);
        let chunk: Vec<u8> = (at..at + len).map(pattern).collect();
        w.write_every(&chunk).await?;
        at += len;
        match rng.below(8) {
            0 => sleep(Duration::from_micros(rng.below(300))).await,
            1 | 2 => task::yield_now().await,
            _ => {}
        }
    }
    w.close_write()?;
    Ok(w)
}

/// Reads to end-of-stream with every `read` under a random 0..1 ms timeout; verifies
/// every byte.
async fn storm_read<S: Stream>(mut r: S, mut rng: Rng) -> Tally {
    let mut tally = Tally::default();
    let mut at = 0usize;
    let mut buf = vec![0u8; 512];
    loop {
        let want = 1 + rng.below(512) as usize;
        let d = rng.sub_ms();
        match timeout(d, r.read_some(&mut buf[..want])).await {
            Err(_) => tally.cancelled += 1,
            Ok(Err(e)) => panic!("read failed after {at} bytes: {e}"),
            Ok(Ok(0)) => break,
            Ok(Ok(n)) => {
                tally.done += 1;
                for (k, &b) in buf[..n].iter().enumerate() {
                    assert_eq!(b, pattern(at + k), "byte {} lost, repeated or reordered", at + k);
                }
                at += n;
            }
        }
    }
    assert_eq!(at, STREAM_BYTES, "bytes missing at end-of-stream");
    tally
}

async fn stream_storm<S: Stream>(name: &str, writer_end: S, reader_end: S) {
    let mut rng = Rng::for_test(name);
    let wrng = Rng(rng.next() | 1);
    let writer = task::spawn(trickle(writer_end, wrng));
    let tally = bounded(storm_read(reader_end, rng)).await;
    drop(writer.await.unwrap().unwrap());
    tally.check(name);
}

async fn tcp_storm(name: &str) {
    let listener = TcpListener::bind(([127, 0, 0, 1], 0)).unwrap();
    let client = TcpStream::connect(listener.local_addr().unwrap()).await.unwrap();
    let server = listener.accept().await.unwrap().stream;
    stream_storm(name, client, server).await;
}

async fn unix_storm(name: &str) {
    let (a, b) = UnixStream::pair().unwrap();
    stream_storm(name, a, b).await;
}

/// Numbered datagrams (`seq: u32` then `seq`-derived bytes) trickle from one socket to
/// another; every `recv_from` runs under a random 0..1 ms timeout. The sender keeps at
/// most 64 datagrams in flight (loopback drops what overflows the receive buffer, which
/// would be the test's fault), so each must arrive exactly once and in order.
async fn udp_storm(name: &str) {
    let mut rng = Rng::for_test(name);
    let mut wrng = Rng(rng.next() | 1);
    let a = UdpSocket::bind(([127, 0, 0, 1], 0)).unwrap();
    let b = UdpSocket::bind(([127, 0, 0, 1], 0)).unwrap();
    let to = b.local_addr().unwrap();
    let from = a.local_addr().unwrap();
    let seen = Arc::new(AtomicU32::new(0));
    let seen2 = seen.clone();
    let sender = task::spawn(async move {
        for seq in 0..DATAGRAMS {
            while seq >= seen2.load(Ordering::SeqCst) + 64 {
                sleep(Duration::from_micros(100)).await;
            }
            let len = 4 + (seq % 60) as usize;
            let mut d = vec![seq as u8; len];
            d[..4].copy_from_slice(&seq.to_be_bytes());
            assert_eq!(a.send_to(&d, to).await?, len);
            match wrng.below(4) {
                0 => sleep(Duration::from_micros(wrng.below(200))).await,
                1 => task::yield_now().await,
                _ => {}
            }
        }
        Ok::<_, io::Error>(())
    });
    let tally = bounded(async {
        let mut tally = Tally::default();
        let mut next = 0u32;
        let mut buf = [0u8; 128];
        while next < DATAGRAMS {
            match timeout(rng.sub_ms(), b.recv_from(&mut buf)).await {
                Err(_) => tally.cancelled += 1,
                Ok(r) => {
                    let r = r.unwrap();
                    tally.done += 1;
                    assert_eq!(r.addr, from);
                    assert!(!r.truncated);
                    let seq = u32::from_be_bytes(buf[..4].try_into().unwrap());
                    assert_eq!(seq, next, "datagram lost, repeated or reordered");
                    assert_eq!(r.len, 4 + (seq % 60) as usize, "datagram {seq} has the wrong length");
                    assert!(buf[4..r.len].iter().all(|&x| x == seq as u8), "datagram {seq} corrupted");
                    next += 1;
                    seen.store(next, Ordering::SeqCst);
                }
            }
        }
        // Nothing more may arrive: a duplicate would show up here.
        assert!(timeout(Duration::from_millis(20), b.recv_from(&mut buf)).await.is_err(), "an extra datagram");
        tally
    })
    .await;
    sender.await.unwrap().unwrap();
    tally.check(name);
}

#[blitz_io::test]
async fn tcp_read_storm_current_thread() {
    tcp_storm("tcp_read_storm_current_thread").await;
}

#[blitz_io::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_read_storm_multi_thread() {
    tcp_storm("tcp_read_storm_multi_thread").await;
}

#[blitz_io::test]
async fn unix_read_storm_current_thread() {
    unix_storm("unix_read_storm_current_thread").await;
}

#[blitz_io::test(flavor = "multi_thread", worker_threads = 2)]
async fn unix_read_storm_multi_thread() {
    unix_storm("unix_read_storm_multi_thread").await;
}

#[blitz_io::test]
async fn udp_recv_from_storm_current_thread() {
    udp_storm("udp_recv_from_storm_current_thread").await;
}

#[blitz_io::test(flavor = "multi_thread", worker_threads = 2)]
async fn udp_recv_from_storm_multi_thread() {
    udp_storm("udp_recv_from_storm_multi_thread").await;
}
