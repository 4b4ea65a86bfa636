//! `UdpSocket`: both tiers, truncation, peek, connect, sharing between tasks, cancel
//! safety, the fallback driver, ICMP errors, options, IPv6, and the `udp_kv` example's
//! protocol. Loopback only; every port is kernel-chosen.

use std::collections::HashSet;
use std::future::{poll_fn, Future};
use std::io::{self, ErrorKind};
use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use blitz_io::io::Interest;
use blitz_io::net::{Address, UdpSocket};
use blitz_io::time::{sleep, timeout};

#[path = "../examples/udp_kv.rs"]
#[allow(dead_code)]
mod udp_kv;

/// Every test body runs under this limit, so a hang fails instead of stalling the suite.
const LIMIT: Duration = Duration::from_secs(10);

async fn bounded<F: Future>(f: F) -> F::Output {
    timeout(LIMIT, f).await.expect("test body timed out")
}

fn lo() -> Address {
    Address::loopback_v4(0)
}

/// A bound pair of loopback sockets.
fn pair() -> (UdpSocket, UdpSocket) {
    (UdpSocket::bind(lo()).unwrap(), UdpSocket::bind(lo()).unwrap())
}

/// Spins on a `try_*` call from a plain thread until it returns `Some` (5 s cap).
fn spin<T>(mut f: impl FnMut() -> io::Result<Option<T>>) -> T {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        if let Some(v) = f().unwrap() {
            return v;
        }
        assert!(Instant::now() < deadline, "nothing arrived within 5 s");
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// The documented pattern: wait for readability (a hint), retry the try call.
async fn ready_then<T>(s: &UdpSocket, mut f: impl FnMut(&UdpSocket) -> io::Result<Option<T>>) -> T {
    loop {
        s.readable().await.unwrap();
        if let Some(v) = f(s).unwrap() {
            return v;
        }
    }
}

/// A small deterministic PRNG (xorshift), so the cancel test needs no extra crate.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

// ===== the try tier, no runtime =====

#[test]
fn try_tier_works_on_a_plain_thread() {
    let (a, b) = pair();
    let to = b.local_addr().unwrap();
    assert_eq!(a.try_send_to(b"plain", to).unwrap(), Some(5));

    let mut buf = [0u8; 16];
    let r = spin(|| b.try_recv_from(&mut buf));
    assert_eq!(&buf[..r.len], b"plain");
    assert_eq!(r.addr, a.local_addr().unwrap());
    assert!(!r.truncated);
    assert_eq!(b.try_recv_from(&mut buf).unwrap(), None);

    a.connect(to).unwrap();
    b.connect(a.local_addr().unwrap()).unwrap();
    assert_eq!(a.try_send(b"conn").unwrap(), Some(4));
    let n = spin(|| b.try_recv(&mut buf));
    assert_eq!(&buf[..n], b"conn");
    assert_eq!(b.try_recv(&mut buf).unwrap(), None);
}

#[test]
fn try_calls_from_many_threads_share_one_socket() {
    let rx = Arc::new(UdpSocket::bind(lo()).unwrap());
    let to = rx.local_addr().unwrap();
    let senders: Vec<_> = (0..4u8)
        .map(|t| {
            std::thread::spawn(move || {
                let tx = UdpSocket::bind(lo()).unwrap();
                for i in 0..25u8 {
                    spin(|| tx.try_send_to(&[t, i], to));
                }
            })
        })
        .collect();
    for s in senders {
        s.join().unwrap();
    }
    let mut seen = HashSet::new();
    let mut buf = [0u8; 4];
    while seen.len() < 100 {
        let r = spin(|| rx.try_recv_from(&mut buf));
        assert_eq!(r.len, 2);
        assert!(seen.insert((buf[0], buf[1])), "duplicate datagram");
    }
}

// ===== truncation and peek =====

#[blitz_io::test]
async fn oversized_datagram_is_flagged_truncated() {
    bounded(async {
        let (a, b) = pair();
        let to = b.local_addr().unwrap();
        let big: Vec<u8> = (0..1000u32).map(|i| i as u8).collect();
        a.send_to(&big, to).await.unwrap();
        let mut buf = [0u8; 100];
        let r = b.recv_from(&mut buf).await.unwrap();
        assert_eq!(r.len, buf.len());
        assert!(r.truncated);
        assert_eq!(&buf[..], &big[..100]);

        // A datagram that fits, and one that fits exactly, are not flagged.
        a.send_to(b"small", to).await.unwrap();
        let r = b.recv_from(&mut buf).await.unwrap();
        assert_eq!((r.len, r.truncated), (5, false));
        assert_eq!(&buf[..5], b"small");
        a.send_to(&[9u8; 100], to).await.unwrap();
        let r = b.recv_from(&mut buf).await.unwrap();
        assert_eq!((r.len, r.truncated), (100, false));

        // The try form reports it too, and the tail is gone, not left for later.
        a.send_to(&big, to).await.unwrap();
        let r = ready_then(&b, |b| b.try_recv_from(&mut buf)).await;
        assert_eq!((r.len, r.truncated), (100, true));
        assert_eq!(b.try_recv_from(&mut buf).unwrap(), None);

        // A connected recv returns the part that fits.
        b.connect(a.local_addr().unwrap()).unwrap();
        a.send_to(&big, to).await.unwrap();
        assert_eq!(b.recv(&mut buf).await.unwrap(), 100);
        assert_eq!(&buf[..], &big[..100]);
    })
    .await;
}

#[blitz_io::test]
async fn empty_datagram_round_trips() {
    bounded(async {
        let (a, b) = pair();
        a.send_to(b"", b.local_addr().unwrap()).await.unwrap();
        let mut buf = [0u8; 8];
        let r = b.recv_from(&mut buf).await.unwrap();
        assert_eq!((r.len, r.truncated), (0, false));
        assert_eq!(r.addr, a.local_addr().unwrap());
    })
    .await;
}

#[blitz_io::test]
async fn peek_leaves_the_datagram_queued() {
    bounded(async {
        let (a, b) = pair();
        let to = b.local_addr().unwrap();
        a.send_to(b"first!", to).await.unwrap();
        a.send_to(b"second", to).await.unwrap();

        let mut small = [0u8; 3];
        let p = ready_then(&b, |b| b.try_peek_from(&mut small)).await;
        assert_eq!((p.len, p.truncated, &small), (3, true, b"fir"));
        let mut buf = [0u8; 16];
        let p = b.peek_from(&mut buf).await.unwrap();
        assert_eq!((&buf[..p.len], p.truncated), (&b"first!"[..], false));
        assert_eq!(p.addr, a.local_addr().unwrap());

        let r = b.recv_from(&mut buf).await.unwrap();
        assert_eq!(&buf[..r.len], b"first!");
        let r = b.recv_from(&mut buf).await.unwrap();
        assert_eq!(&buf[..r.len], b"second");
        assert_eq!(b.try_peek_from(&mut buf).unwrap(), None);
    })
    .await;
}

// ===== connect, unbound =====

#[blitz_io::test]
async fn connected_send_recv_filters_other_senders() {
    bounded(async {
        let (a, b) = pair();
        let stranger = UdpSocket::bind(lo()).unwrap();
        a.connect(b.local_addr().unwrap()).unwrap();
        b.connect(a.local_addr().unwrap()).unwrap();
        assert_eq!(a.peer_addr().unwrap(), b.local_addr().unwrap());

        stranger.send_to(b"ignored", b.local_addr().unwrap()).await.unwrap();
        assert_eq!(a.send(b"hello").await.unwrap(), 5);
        let mut buf = [0u8; 16];
        let n = b.recv(&mut buf).await.unwrap();
        assert_eq!(&buf[..n], b"hello");
        b.send(b"back").await.unwrap();
        let n = a.recv(&mut buf).await.unwrap();
        assert_eq!(&buf[..n], b"back");
        // The stranger's datagram was dropped by the kernel, not queued.
        assert_eq!(b.try_recv(&mut buf).unwrap(), None);
    })
    .await;
}

#[blitz_io::test]
async fn send_before_connect_is_not_connected() {
    let (a, _b) = pair();
    assert_eq!(a.peer_addr().unwrap_err().kind(), ErrorKind::NotConnected);
    let err = a.try_send(b"x").unwrap_err();
    assert!(
        matches!(err.kind(), ErrorKind::NotConnected | ErrorKind::Other)
            || err.raw_os_error() == Some(libc::EDESTADDRREQ),
        "{err:?}"
    );
}

#[blitz_io::test]
async fn unbound_socket_gets_a_port_on_first_send() {
    bounded(async {
        let s = UdpSocket::unbound().unwrap();
        let before = s.local_addr().unwrap();
        assert!(before.is_ipv4());
        assert_eq!(before.port(), 0);

        let peer = UdpSocket::bind(lo()).unwrap();
        s.send_to(b"hi", peer.local_addr().unwrap()).await.unwrap();
        let after = s.local_addr().unwrap();
        assert_ne!(after.port(), 0);

        let mut buf = [0u8; 4];
        let r = peer.recv_from(&mut buf).await.unwrap();
        assert_eq!(r.addr.port(), after.port());
        // The peer can answer the now-bound socket.
        peer.send_to(b"yo", r.addr).await.unwrap();
        let r = s.recv_from(&mut buf).await.unwrap();
        assert_eq!(&buf[..r.len], b"yo");
    })
    .await;
}

// ===== sharing one socket between tasks =====

#[blitz_io::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_tasks_in_recv_from_each_get_one_datagram() {
    bounded(async {
        let rx = Arc::new(UdpSocket::bind(lo()).unwrap());
        let waiting = Arc::new(AtomicUsize::new(0));
        let tasks: Vec<_> = (0..2)
            .map(|_| {
                let rx = rx.clone();
                let waiting = waiting.clone();
                blitz_io::task::spawn(async move {
                    waiting.fetch_add(1, Ordering::SeqCst);
                    let mut buf = [0u8; 16];
                    let r = rx.recv_from(&mut buf).await.unwrap();
                    buf[..r.len].to_vec()
                })
            })
            .collect();
        while waiting.load(Ordering::SeqCst) < 2 {
            sleep(Duration::from_millis(1)).await;
        }
        sleep(Duration::from_millis(30)).await; // both are parked in recv_from now

        let tx = UdpSocket::bind(lo()).unwrap();
        tx.send_to(b"one", rx.local_addr().unwrap()).await.unwrap();
        tx.send_to(b"two", rx.local_addr().unwrap()).await.unwrap();
        let mut got = Vec::new();
        for t in tasks {
            got.push(t.await.unwrap());
        }
        got.sort();
        assert_eq!(got, vec![b"one".to_vec(), b"two".to_vec()]);
    })
    .await;
}

#[blitz_io::test]
async fn many_tasks_drain_a_shared_socket_without_loss_current_thread() {
    shared_drain(8, 200).await;
}

#[blitz_io::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_tasks_drain_a_shared_socket_without_loss_multi_thread() {
    shared_drain(8, 200).await;
}

/// `tasks` receivers share one socket; `n` datagrams arrive; each is received once.
async fn shared_drain(tasks: usize, n: u32) {
    bounded(async {
        let rx = Arc::new(UdpSocket::bind(lo()).unwrap());
        rx.set_recv_buffer_size(1 << 20).unwrap();
        let remaining = Arc::new(AtomicUsize::new(n as usize));
        let handles: Vec<_> = (0..tasks)
            .map(|_| {
                let (rx, remaining) = (rx.clone(), remaining.clone());
                blitz_io::task::spawn(async move {
                    let mut mine = Vec::new();
                    let mut buf = [0u8; 8];
                    while remaining.load(Ordering::SeqCst) > 0 {
                        match timeout(Duration::from_millis(20), rx.recv_from(&mut buf)).await {
                            Ok(r) => {
                                let r = r.unwrap();
                                mine.push(u32::from_be_bytes(buf[..r.len].try_into().unwrap()));
                                remaining.fetch_sub(1, Ordering::SeqCst);
                            }
                            Err(_) => continue,
                        }
                    }
                    mine
                })
            })
            .collect();
        let tx = UdpSocket::bind(lo()).unwrap();
        let to = rx.local_addr().unwrap();
        for i in 0..n {
            tx.send_to(&i.to_be_bytes(), to).await.unwrap();
            if i % 16 == 0 {
                blitz_io::task::yield_now().await;
            }
        }
        let mut all = Vec::new();
        for h in handles {
            all.extend(h.await.unwrap());
        }
        all.sort_unstable();
        assert_eq!(all, (0..n).collect::<Vec<_>>());
    })
    .await;
}

#[blitz_io::test(flavor = "multi_thread", worker_threads = 2)]
async fn readable_wakes_every_waiting_task() {
    bounded(async {
        let rx = Arc::new(UdpSocket::bind(lo()).unwrap());
        // A new registration has no cached readiness: nothing is queued, so the waiters
        // below really wait.
        let mut buf = [0u8; 4];
        assert_eq!(rx.try_recv_from(&mut buf).unwrap(), None);
        let started = Arc::new(AtomicUsize::new(0));
        let tasks: Vec<_> = (0..3)
            .map(|_| {
                let (rx, started) = (rx.clone(), started.clone());
                blitz_io::task::spawn(async move {
                    started.fetch_add(1, Ordering::SeqCst);
                    rx.readable().await.unwrap();
                })
            })
            .collect();
        while started.load(Ordering::SeqCst) < 3 {
            sleep(Duration::from_millis(1)).await;
        }
        sleep(Duration::from_millis(30)).await;
        assert!(tasks.iter().all(|t| !t.is_finished()), "readable() returned before any datagram");

        // One datagram: every waiter is woken, not just one.
        UdpSocket::bind(lo()).unwrap().send_to(b"x", rx.local_addr().unwrap()).await.unwrap();
        for t in tasks {
            t.await.unwrap();
        }
        assert_eq!(rx.try_recv_from(&mut buf).unwrap().unwrap().len, 1);
    })
    .await;
}

#[blitz_io::test]
async fn try_recv_none_clears_readiness_so_readable_waits_again() {
    bounded(async {
        let (a, b) = pair();
        a.send_to(b"1", b.local_addr().unwrap()).await.unwrap();
        let mut buf = [0u8; 4];
        ready_then(&b, |b| b.try_recv_from(&mut buf)).await;
        assert!(b.try_recv_from(&mut buf).unwrap().is_none());
        // No datagram queued: readable() must now wait (not return at once and spin).
        assert!(timeout(Duration::from_millis(50), b.readable()).await.is_err());
        a.send_to(b"2", b.local_addr().unwrap()).await.unwrap();
        // Now an edge arrives: readable() returns and the datagram is there.
        timeout(Duration::from_secs(2), b.readable()).await.unwrap().unwrap();
        assert!(b.try_recv_from(&mut buf).unwrap().is_some());
    })
    .await;
}

// ===== cancel safety =====

#[blitz_io::test]
async fn cancelled_recv_from_loses_no_datagram_current_thread() {
    cancel_storm(0x9e37_79b9_7f4a_7c15).await;
}

#[blitz_io::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelled_recv_from_loses_no_datagram_multi_thread() {
    cancel_storm(0x2545_f491_4f6c_dd1d).await;
}

/// Datagrams trickle in while the receiver keeps dropping `recv_from` futures under
/// random short timeouts: every datagram must still be received exactly once.
async fn cancel_storm(seed: u64) {
    const N: u32 = 150;
    bounded(async {
        let rx = UdpSocket::bind(lo()).unwrap();
        rx.set_recv_buffer_size(1 << 20).unwrap();
        let to = rx.local_addr().unwrap();
        let sender = blitz_io::task::spawn(async move {
            let tx = UdpSocket::bind(lo()).unwrap();
            let mut rng = Rng(seed ^ 0xdead_beef);
            for i in 0..N {
                tx.send_to(&i.to_be_bytes(), to).await.unwrap();
                if rng.below(3) == 0 {
                    sleep(Duration::from_millis(rng.below(3))).await;
                } else {
                    blitz_io::task::yield_now().await;
                }
            }
        });
        let mut rng = Rng(seed);
        let mut seen = vec![0u32; N as usize];
        let (mut got, mut cancelled) = (0, 0);
        let mut buf = [0u8; 8];
        while got < N {
            let limit = Duration::from_micros(rng.below(2000));
            match timeout(limit, rx.recv_from(&mut buf)).await {
                Ok(r) => {
                    let r = r.unwrap();
                    assert!(!r.truncated);
                    seen[u32::from_be_bytes(buf[..r.len].try_into().unwrap()) as usize] += 1;
                    got += 1;
                }
                Err(_) => cancelled += 1,
            }
        }
        sender.await.unwrap();
        assert!(seen.iter().all(|&c| c == 1), "some datagram lost or duplicated: {seen:?}");
        assert!(cancelled > 0, "no recv_from was cancelled; the test exercised nothing");
        assert_eq!(rx.try_recv_from(&mut buf).unwrap(), None);
    })
    .await;
}

#[blitz_io::test]
async fn dropped_send_future_sends_whole_or_nothing() {
    bounded(async {
        let (a, b) = pair();
        let to = b.local_addr().unwrap();
        let payload = [7u8; 1200];
        // A send future polled to completion sends the whole datagram; one dropped
        // before its first poll sends nothing.
        drop(a.send_to(&payload, to));
        a.send_to(&payload, to).await.unwrap();
        let mut buf = [0u8; 2000];
        let r = b.recv_from(&mut buf).await.unwrap();
        assert_eq!((r.len, r.truncated), (1200, false));
        assert!(timeout(Duration::from_millis(30), b.recv_from(&mut buf)).await.is_err());
    })
    .await;
}

// ===== outside a runtime: the fallback driver =====

#[test]
fn futures_work_under_a_foreign_executor() {
    let (a, b) = pair();
    let to = b.local_addr().unwrap();
    let from = a.local_addr().unwrap();
    let receiver = std::thread::spawn(move || {
        futures_executor::block_on(async {
            let mut buf = [0u8; 16];
            let r = b.recv_from(&mut buf).await.unwrap();
            assert_eq!(r.addr, from);
            b.send_to(&buf[..r.len], r.addr).await.unwrap();
            b.readable().await.map(|_| ())
        })
    });
    std::thread::sleep(Duration::from_millis(30)); // let the receiver park first
    futures_executor::block_on(async {
        a.send_to(b"echo me", to).await.unwrap();
        let mut buf = [0u8; 16];
        let r = a.recv_from(&mut buf).await.unwrap();
        assert_eq!(&buf[..r.len], b"echo me");
        a.send_to(b"wake", to).await.unwrap();
        a.writable().await.unwrap();
        let ready = a.ready(Interest::WRITABLE).await.unwrap();
        assert!(ready.is_writable());
    });
    receiver.join().unwrap().unwrap();
}

// ===== errors =====

#[blitz_io::test]
async fn connected_send_to_a_closed_port_is_connection_refused() {
    bounded(async {
        let closed = UdpSocket::bind(lo()).unwrap().local_addr().unwrap(); // dropped at once
        let s = UdpSocket::bind(lo()).unwrap();
        s.connect(closed).unwrap();
        s.send(b"anyone?").await.unwrap();
        // The ICMP port-unreachable comes back as ConnectionRefused on the next recv.
        let mut buf = [0u8; 8];
        let err = s.recv(&mut buf).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::ConnectionRefused, "{err:?}");

        // ...or the next send.
        s.send(b"again").await.unwrap();
        let deadline = Instant::now() + Duration::from_secs(2);
        loop {
            match s.send(b"and again").await {
                Err(e) => {
                    assert_eq!(e.kind(), ErrorKind::ConnectionRefused, "{e:?}");
                    break;
                }
                Ok(_) => {
                    assert!(Instant::now() < deadline, "no ConnectionRefused from send");
                    sleep(Duration::from_millis(5)).await;
                }
            }
        }
        // take_error sees a pending one too.
        s.send(b"last").await.unwrap();
        sleep(Duration::from_millis(20)).await;
        let pending = s.take_error().unwrap().expect("a pending ICMP error");
        assert_eq!(pending.kind(), ErrorKind::ConnectionRefused);
        assert!(s.take_error().unwrap().is_none());
    })
    .await;
}

#[blitz_io::test]
async fn oversized_send_is_an_error_not_a_partial_send() {
    bounded(async {
        let (a, b) = pair();
        let huge = vec![0u8; 70_000];
        let err = a.send_to(&huge, b.local_addr().unwrap()).await.unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::EMSGSIZE), "{err:?}");
        let mut buf = [0u8; 16];
        assert_eq!(b.try_recv_from(&mut buf).unwrap(), None);
    })
    .await;
}

#[test]
fn bind_conflicts_and_reuse() {
    let first = UdpSocket::bind(lo()).unwrap();
    let taken = first.local_addr().unwrap();
    assert_eq!(UdpSocket::bind(taken).unwrap_err().kind(), ErrorKind::AddrInUse);

    // With SO_REUSEADDR set on both before bind, two sockets share a port.
    let a = UdpSocket::bind_reuse_addr(Address::from_port(0)).unwrap();
    let port = a.local_addr().unwrap().port();
    let b = UdpSocket::builder().reuse_addr(true).bind(Address::from_port(port)).unwrap();
    assert_eq!(b.local_addr().unwrap().port(), port);
    assert!(a.reuse_addr().unwrap() && b.reuse_addr().unwrap());

    // SO_REUSEPORT through the builder.
    let builder = UdpSocket::builder().reuse_port(true);
    let c = builder.bind(lo()).unwrap();
    let d = builder.bind(c.local_addr().unwrap()).unwrap();
    assert_eq!(c.local_addr().unwrap(), d.local_addr().unwrap());
    assert!(d.reuse_port().unwrap());

    // A non-local address is not available.
    let err = UdpSocket::bind(Address::from(([192, 0, 2, 123], 0))).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::AddrNotAvailable, "{err:?}");
}

// ===== options =====

#[test]
fn option_round_trips() {
    let s = UdpSocket::bind(lo()).unwrap();

    assert!(!s.broadcast().unwrap());
    s.set_broadcast(true).unwrap();
    assert!(s.broadcast().unwrap());

    s.set_reuse_addr(true).unwrap();
    assert!(s.reuse_addr().unwrap());
    s.set_reuse_addr(false).unwrap();
    assert!(!s.reuse_addr().unwrap());
    s.set_reuse_port(true).unwrap();
    assert!(s.reuse_port().unwrap());

    assert!(s.multicast_loop_v4().unwrap());
    s.set_multicast_loop_v4(false).unwrap();
    assert!(!s.multicast_loop_v4().unwrap());
    assert_eq!(s.multicast_ttl_v4().unwrap(), 1);
    s.set_multicast_ttl_v4(17).unwrap();
    assert_eq!(s.multicast_ttl_v4().unwrap(), 17);
    s.set_multicast_if_v4(Ipv4Addr::LOCALHOST).unwrap();
    assert_eq!(s.multicast_if_v4().unwrap(), Ipv4Addr::LOCALHOST);

    s.set_ttl(33).unwrap();
    assert_eq!(s.ttl().unwrap(), 33);
    assert!(s.set_ttl(0).is_err() || s.ttl().unwrap() != 0);
    s.set_tos(0x28).unwrap();
    assert_eq!(s.tos().unwrap(), 0x28);

    s.set_recv_buffer_size(64 * 1024).unwrap();
    assert!(s.recv_buffer_size().unwrap() >= 64 * 1024);
    s.set_send_buffer_size(64 * 1024).unwrap();
    assert!(s.send_buffer_size().unwrap() >= 64 * 1024);

    assert!(s.take_error().unwrap().is_none());

    let b =
        UdpSocket::builder().broadcast(true).recv_buffer_size(1 << 16).send_buffer_size(1 << 16).bind(lo()).unwrap();
    assert!(b.broadcast().unwrap());
    assert!(!b.reuse_addr().unwrap());
}

#[test]
fn std_round_trip() {
    let std_sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = std_sock.local_addr().unwrap();
    let s = UdpSocket::from_std(std_sock).unwrap();
    assert_eq!(s.local_addr().unwrap().to_std(), addr);
    let mut buf = [0u8; 4];
    // from_std made it non-blocking: nothing queued is Ok(None), not a hang.
    assert_eq!(s.try_recv_from(&mut buf).unwrap(), None);

    let back = s.into_std().unwrap();
    back.set_read_timeout(Some(Duration::from_millis(20))).unwrap();
    // into_std made it blocking again: the read waits for the timeout.
    let err = back.recv_from(&mut buf).unwrap_err();
    assert!(matches!(err.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut), "{err:?}");
    let s = UdpSocket::try_from(back).unwrap();
    assert!(format!("{s:?}").contains("UdpSocket"));
}

#[blitz_io::test]
async fn poll_methods_work() {
    bounded(async {
        let (a, b) = pair();
        let to = b.local_addr().unwrap();
        poll_fn(|cx| a.poll_send_ready(cx)).await.unwrap();
        assert_eq!(poll_fn(|cx| a.poll_send_to(cx, b"polled", to)).await.unwrap(), 6);
        poll_fn(|cx| b.poll_recv_ready(cx)).await.unwrap();
        let mut buf = [0u8; 4];
        let r = poll_fn(|cx| b.poll_recv_from(cx, &mut buf)).await.unwrap();
        assert_eq!((r.len, r.truncated, &buf), (4, true, b"poll"));

        a.connect(to).unwrap();
        b.connect(a.local_addr().unwrap()).unwrap();
        assert_eq!(poll_fn(|cx| a.poll_send(cx, b"ab")).await.unwrap(), 2);
        assert_eq!(poll_fn(|cx| b.poll_recv(cx, &mut buf)).await.unwrap(), 2);
        assert_eq!(&buf[..2], b"ab");
    })
    .await;
}

// ===== IPv6 =====

fn has_ipv6_loopback() -> bool {
    std::net::UdpSocket::bind("[::1]:0").is_ok()
}

#[blitz_io::test]
async fn ipv6_loopback_round_trip() {
    if !has_ipv6_loopback() {
        eprintln!("SKIP ipv6_loopback_round_trip: this host has no ::1");
        return;
    }
    bounded(async {
        let a = UdpSocket::bind(Address::loopback_v6(0)).unwrap();
        let b = UdpSocket::bind(Address::loopback_v6(0)).unwrap();
        assert!(a.local_addr().unwrap().is_ipv6());
        a.send_to(b"six", b.local_addr().unwrap()).await.unwrap();
        let mut buf = [0u8; 2];
        let r = b.recv_from(&mut buf).await.unwrap();
        assert_eq!((r.len, r.truncated), (2, true));
        assert_eq!(r.addr, a.local_addr().unwrap());

        assert!(a.multicast_loop_v6().unwrap());
        a.set_multicast_loop_v6(false).unwrap();
        assert!(!a.multicast_loop_v6().unwrap());
        a.set_multicast_if_v6(0).unwrap();
        assert_eq!(a.multicast_if_v6().unwrap(), 0);

        // An IPv4 socket cannot reach an IPv6 address: an error, not a panic.
        let v4 = UdpSocket::unbound().unwrap();
        assert!(v4.send_to(b"x", b.local_addr().unwrap()).await.is_err());

        // only_v6 through the builder.
        let only = UdpSocket::builder().only_v6(true).bind(Address::from(([0u16; 8], 0))).unwrap();
        assert!(only.local_addr().unwrap().is_ipv6());
    })
    .await;
}

// ===== the udp_kv example's protocol =====

#[test]
fn kv_wire_format() {
    use udp_kv::*;
    assert_eq!(build_get_request(b"ab").unwrap(), vec![OP_GET, 2, b'a', b'b']);
    assert_eq!(build_get_request(&[b'k'; 256]).unwrap_err().kind(), ErrorKind::InvalidInput);
    assert_eq!(parse_response(&[STATUS_OK, 0, 2, b'h', b'i']).unwrap(), Reply::Found(b"hi".to_vec()));
    assert_eq!(parse_response(&[STATUS_NOT_FOUND, 0, 0]).unwrap(), Reply::NotFound);
    assert_eq!(parse_response(&[STATUS_ERROR, 0, 0]).unwrap(), Reply::ServerError);
    assert_eq!(parse_response(&[STATUS_OK, 0]).unwrap_err().kind(), ErrorKind::InvalidData);
    assert_eq!(parse_response(&[STATUS_OK, 0, 9, 1]).unwrap_err().kind(), ErrorKind::InvalidData);

    let table = demo_table();
    let reply = handle_request(&table, &build_get_request(b"db.internal").unwrap(), false).unwrap();
    assert_eq!(parse_response(&reply).unwrap(), Reply::Found(b"10.0.1.50".to_vec()));
    // A key shorter than announced is dropped; a truncated request is an error.
    assert_eq!(handle_request(&table, &[OP_GET, 5, b'x'], false), None);
    let reply = handle_request(&table, &build_get_request(b"db.internal").unwrap(), true).unwrap();
    assert_eq!(parse_response(&reply).unwrap(), Reply::ServerError);
}

#[blitz_io::test(flavor = "multi_thread", worker_threads = 2)]
async fn kv_server_answers_concurrent_clients() {
    use udp_kv::*;
    bounded(async {
        let server = Arc::new(UdpSocket::bind(lo()).unwrap());
        let addr = server.local_addr().unwrap();
        let task = blitz_io::task::spawn(serve(server, demo_table()));

        let clients: Vec<_> = (0..10)
            .map(|i| {
                blitz_io::task::spawn(async move {
                    let c = UdpSocket::bind(lo()).unwrap();
                    let key: &[u8] = if i % 2 == 0 { b"api.example.com" } else { b"nope" };
                    lookup(&c, addr, key, Duration::from_millis(500), 3).await.unwrap()
                })
            })
            .collect();
        for (i, c) in clients.into_iter().enumerate() {
            let want = if i % 2 == 0 { Reply::Found(b"93.184.216.34".to_vec()) } else { Reply::NotFound };
            assert_eq!(c.await.unwrap(), want);
        }

        // An oversized request arrives truncated and is answered with an error status.
        let c = UdpSocket::bind(lo()).unwrap();
        c.send_to(&[OP_GET; MAX_DATAGRAM + 100], addr).await.unwrap();
        let mut buf = [0u8; MAX_DATAGRAM];
        let r = c.recv_from(&mut buf).await.unwrap();
        assert_eq!(parse_response(&buf[..r.len]).unwrap(), Reply::ServerError);

        // A server that never answers: the client retries, then times out.
        let silent = UdpSocket::bind(lo()).unwrap();
        let started = Instant::now();
        let err = lookup(&c, silent.local_addr().unwrap(), b"k", Duration::from_millis(40), 3).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::TimedOut);
        assert!(started.elapsed() >= Duration::from_millis(110));
        let mut n = 0;
        while silent.try_recv_from(&mut buf).unwrap().is_some() {
            n += 1;
        }
        assert_eq!(n, 3, "the client should have sent one request per attempt");
        task.abort();
    })
    .await;
}

#[blitz_io::test]
async fn kv_demo_runs() {
    let lines = bounded(udp_kv::run_demo()).await.unwrap();
    assert_eq!(lines[0], "api.example.com -> 93.184.216.34");
    assert_eq!(lines[1], "db.internal -> 10.0.1.50");
    assert_eq!(lines[2], "missing.key -> not found");
    assert_eq!(lines[3], "malformed request -> ServerError");
    assert!(lines[4].starts_with("silent server -> no reply"), "{}", lines[4]);
}

/// Port 0 is no destination: every send form and `connect` say so (`InvalidInput`,
/// naming the port) before any system call; the kernel would give a bare `EINVAL` for a
/// send and accept the `connect`.
#[blitz_io::test]
async fn port_zero_destination_is_invalid_input() {
    let s = UdpSocket::bind(lo()).unwrap();
    let zero = Address::loopback_v4(0);
    let says_port = |e: io::Error| {
        assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");
        assert!(e.to_string().contains("port 0"), "message names the problem: {e}");
    };
    says_port(s.try_send_to(b"x", zero).unwrap_err());
    says_port(bounded(s.send_to(b"x", zero)).await.unwrap_err());
    says_port(poll_fn(|cx| s.poll_send_to(cx, b"x", zero)).await.unwrap_err());
    says_port(s.connect(zero).unwrap_err());
    assert!(s.peer_addr().is_err(), "the failed connect left the socket unconnected");
}

/// Multicast calls reject a group outside the multicast range, and a call of the other
/// family, with `InvalidInput` and a message (not a bare `EINVAL` / `ENOPROTOOPT`).
#[test]
fn multicast_calls_reject_bad_groups_and_families() {
    let v4 = UdpSocket::bind(lo()).unwrap();
    let not_group = Ipv4Addr::new(10, 0, 0, 1);
    for e in [
        v4.join_multicast_v4(not_group, Ipv4Addr::UNSPECIFIED).unwrap_err(),
        v4.leave_multicast_v4(not_group, Ipv4Addr::UNSPECIFIED).unwrap_err(),
        v4.join_multicast_v6(&"2001:db8::1".parse().unwrap(), 0).unwrap_err(),
    ] {
        assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");
        assert!(e.to_string().contains("multicast"), "{e}");
    }
    let e = v4.join_multicast_v6(&"ff02::1234".parse().unwrap(), 0).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");
    assert!(e.to_string().contains("IPv6 socket"), "{e}");
    // (Linux lets an IPv6 socket join an IPv4 group: no family error the other way.)
}

/// One-byte IP options refuse values that do not fit, with `InvalidInput` saying so
/// (the kernel took `u32::MAX` as "the default" and kept the low byte of a TOS).
#[test]
fn byte_sized_options_reject_values_that_do_not_fit() {
    let s = UdpSocket::bind(lo()).unwrap();
    let says = |r: io::Result<()>, what: &str| {
        let e = r.expect_err(what);
        assert_eq!(e.kind(), ErrorKind::InvalidInput, "{what}: {e}");
        assert!(e.to_string().contains("255"), "{what}: {e}");
    };
    says(s.set_ttl(0), "set_ttl(0)");
    says(s.set_ttl(256), "set_ttl(256)");
    says(s.set_ttl(u32::MAX), "set_ttl(u32::MAX)");
    says(s.set_multicast_ttl_v4(256), "set_multicast_ttl_v4(256)");
    says(s.set_multicast_ttl_v4(u32::MAX), "set_multicast_ttl_v4(u32::MAX)");
    says(s.set_tos(0x110), "set_tos(0x110)");
    says(s.set_tos(u32::MAX), "set_tos(u32::MAX)");
    // In-range values are set and read back.
    s.set_ttl(33).unwrap();
    assert_eq!(s.ttl().unwrap(), 33);
    s.set_multicast_ttl_v4(0).unwrap();
    assert_eq!(s.multicast_ttl_v4().unwrap(), 0);
    s.set_tos(0x10).unwrap();
    assert_eq!(s.tos().unwrap(), 0x10);
}
