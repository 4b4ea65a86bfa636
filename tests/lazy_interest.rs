//! Datagram sockets register the write direction with epoll lazily (module doc of
//! `io::evented`): they are watched for the direction they first wait on, and writing is
//! added the first time a send would block. Streams are watched both ways at once.
//!
//! These tests check that policy from `/proc/self/fdinfo` of the runtime's epoll
//! descriptor (a UDP socket that only waits to read is not watched for writing; a TCP
//! stream is), and that sends that block on a read-registered datagram socket, writes
//! that block behind a waiting reader, and a readiness future for a newly added
//! direction all complete.

#![cfg(target_os = "linux")]

mod support;

use std::io::{Read as _, Write as _};
use std::os::fd::AsRawFd;
use std::time::Duration;

use blitz_io::net::{TcpListener, TcpStream, UdpSocket, UnixDatagram};
use blitz_io::task;
use blitz_io::time::{sleep, timeout};
use support::{build_runtime, with_timeout, Flavor};

const EPOLLIN: u32 = 0x1;
const EPOLLOUT: u32 = 0x4;

/// The epoll event mask some epoll instance of this process holds for `fd`, from
/// `/proc/self/fdinfo` (`tfd: <fd> events: <hex mask> ...` lines).
fn epoll_mask(fd: i32) -> Option<u32> {
    for entry in std::fs::read_dir("/proc/self/fd").ok()?.flatten() {
        let is_epoll = std::fs::read_link(entry.path()).is_ok_and(|l| l.to_string_lossy().contains("eventpoll"));
        if !is_epoll {
            continue;
        }
        let info = std::fs::read_to_string(format!("/proc/self/fdinfo/{}", entry.file_name().to_string_lossy()));
        for line in info.unwrap_or_default().lines() {
            let mut it = line.split_whitespace();
            if it.next() != Some("tfd:") || it.next().and_then(|t| t.parse::<i32>().ok()) != Some(fd) {
                continue;
            }
            if it.next() == Some("events:") {
                return it.next().and_then(|m| u32::from_str_radix(m, 16).ok());
            }
        }
    }
    None
}

#[test]
fn a_udp_socket_that_only_waits_to_read_is_not_watched_for_writing() {
    with_timeout(20, || {
        build_runtime(Flavor::Current, "lazy-udp").block_on(async {
            let server = UdpSocket::bind(([127, 0, 0, 1], 0)).unwrap();
            let addr = server.local_addr().unwrap().to_std();
            // The client is a plain thread: the runtime's thread only runs the echo.
            let client = std::thread::spawn(move || {
                let client = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
                client.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
                for i in 0..100u8 {
                    client.send_to(&[i; 32], addr).unwrap();
                    let mut b = [0u8; 64];
                    let n = client.recv(&mut b).unwrap();
                    assert_eq!(&b[..n], &[i; 32]);
                }
            });
            let mut buf = [0u8; 64];
            for _ in 0..100 {
                let r = server.recv_from(&mut buf).await.unwrap();
                server.send_to(&buf[..r.len], r.addr).await.unwrap();
            }
            client.join().unwrap();
            // Registration happens at the first wait. On a loaded machine every datagram
            // above may have been queued before its `recv_from` ran, so wait once for
            // certain (nothing more is sent) before looking at the registration.
            let quiet = timeout(Duration::from_millis(20), server.recv_from(&mut buf)).await;
            assert!(quiet.is_err(), "no datagram was sent, so the wait must time out");
            let mask = epoll_mask(server.as_raw_fd()).expect("the server socket is registered with an epoll");
            assert_ne!(mask & EPOLLIN, 0, "not watched for reading: {mask:#x}");
            assert_eq!(mask & EPOLLOUT, 0, "watched for writing although no send ever blocked: {mask:#x}");
        });
    });
}

/// A read waits first (the first registration), then a large write blocks on a slow
/// peer: the write completes with every byte intact, and the stream is watched for both
/// directions.
fn blocked_write_on_read_registered_stream(flavor: Flavor) {
    with_timeout(30, move || {
        build_runtime(flavor, "lazy-tcp").block_on(async {
            let listener = TcpListener::bind(([127, 0, 0, 1], 0)).unwrap();
            let addr = listener.local_addr().unwrap().to_std();
            let peer = std::thread::spawn(move || {
                let mut c = std::net::TcpStream::connect(addr).unwrap();
                c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
                // Let the server's write fill the buffers and block first.
                std::thread::sleep(Duration::from_millis(200));
                let mut got = Vec::new();
                let mut buf = vec![0u8; 65536];
                while got.len() < 8 << 20 {
                    let n = c.read(&mut buf).unwrap();
                    assert!(n > 0, "EOF after {} bytes", got.len());
                    got.extend_from_slice(&buf[..n]);
                }
                c.write_all(b"done").unwrap();
                got
            });
            let stream = listener.accept().await.unwrap().stream;
            let fd = stream.as_raw_fd();
            let (mut rd, mut wr) = stream.into_split();
            // The reader waits first, so the stream is registered for reading only.
            let reader = task::spawn(async move {
                let mut b = [0u8; 4];
                let mut n = 0;
                while n < 4 {
                    let k = rd.read(&mut b[n..]).await.unwrap();
                    assert!(k > 0);
                    n += k;
                }
                b
            });
            sleep(Duration::from_millis(20)).await;
            let mask = epoll_mask(fd).expect("the stream is registered");
            assert_eq!(mask & (EPOLLIN | EPOLLOUT), EPOLLIN | EPOLLOUT, "a stream is watched both ways: {mask:#x}");
            let data: Vec<u8> = (0..8u32 << 20).map(|i| (i % 251) as u8).collect();
            wr.write_all(&data).await.unwrap();
            assert_eq!(&reader.await.unwrap(), b"done");
            let got = peer.join().unwrap();
            assert!(got == data, "the peer received different bytes");
        });
    });
}

#[test]
fn blocked_write_on_read_registered_stream_current_thread() {
    blocked_write_on_read_registered_stream(Flavor::Current);
}

#[test]
fn blocked_write_on_read_registered_stream_multi_thread() {
    blocked_write_on_read_registered_stream(Flavor::Multi(2));
}

/// Datagram sends that block (the peer's queue is full) on a read-registered socket:
/// every datagram arrives once the peer reads, and the socket is then watched for
/// writing as well.
#[test]
fn blocked_datagram_sends_resume_when_the_peer_reads() {
    with_timeout(30, || {
        build_runtime(Flavor::Current, "lazy-unix").block_on(async {
            let (a, b) = UnixDatagram::pair().unwrap();
            // A receive that times out registers `a` for reading only.
            let mut buf = [0u8; 16];
            assert!(timeout(Duration::from_millis(10), a.recv(&mut buf)).await.is_err());
            let mask = epoll_mask(a.as_raw_fd()).expect("registered");
            assert_eq!(mask & EPOLLOUT, 0, "watched for writing before any send blocked: {mask:#x}");
            const N: u32 = 2000;
            let reader = task::spawn(async move {
                sleep(Duration::from_millis(100)).await;
                let mut buf = [0u8; 1024];
                for i in 0..N {
                    let n = b.recv(&mut buf).await.unwrap();
                    assert_eq!(n, 512);
                    assert_eq!(&buf[..4], &i.to_be_bytes(), "datagram {i} out of order or lost");
                }
            });
            let mut msg = [7u8; 512];
            for i in 0..N {
                msg[..4].copy_from_slice(&i.to_be_bytes());
                assert_eq!(a.send(&msg).await.unwrap(), 512);
            }
            reader.await.unwrap();
            let mask = epoll_mask(a.as_raw_fd()).expect("registered");
            assert_ne!(mask & EPOLLOUT, 0, "a send blocked, yet the socket is not watched for writing: {mask:#x}");
        });
    });
}

/// `writable()` on a socket registered for reading only resolves (epoll reports the
/// current state of the added direction).
#[test]
fn writable_on_a_read_registered_socket_resolves() {
    with_timeout(20, || {
        build_runtime(Flavor::Current, "lazy-writable").block_on(async {
            let sock = UdpSocket::bind(([127, 0, 0, 1], 0)).unwrap();
            let mut buf = [0u8; 16];
            assert!(timeout(Duration::from_millis(10), sock.recv(&mut buf)).await.is_err());
            timeout(Duration::from_secs(2), sock.writable())
                .await
                .expect("writable() on an idle UDP socket did not resolve")
                .unwrap();
            let s2 = TcpListener::bind(([127, 0, 0, 1], 0)).unwrap();
            let c = TcpStream::connect(s2.local_addr().unwrap()).await.unwrap();
            timeout(Duration::from_secs(2), c.writable()).await.expect("writable() did not resolve").unwrap();
        });
    });
}
