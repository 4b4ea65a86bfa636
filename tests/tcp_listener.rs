//! `TcpListener`: bind (SO_REUSEADDR, busy address), try_accept without a runtime,
//! accept from many tasks, std conversions, and the `listen` / `listen_port` helpers.

use std::collections::HashSet;
use std::future::Future;
use std::io::{ErrorKind, Read, Write};
use std::sync::Arc;
use std::time::{Duration, Instant};

use blitz_io::net::{self, Address, TcpListener, TcpStream};
use blitz_io::time::timeout;

const LIMIT: Duration = Duration::from_secs(20);

async fn bounded<F: Future>(f: F) -> F::Output {
    timeout(LIMIT, f).await.expect("test body timed out")
}

#[test]
fn bind_sets_reuse_addr_and_picks_a_port() {
    let listener = TcpListener::bind(Address::loopback_v4(0)).unwrap();
    let addr = listener.local_addr().unwrap();
    assert_ne!(addr.port(), 0);
    assert!(addr.ip().is_loopback());
    let sock = socket2::SockRef::from(&listener);
    assert!(sock.reuse_address().unwrap(), "bind must set SO_REUSEADDR");
    assert!(!sock.reuse_port().unwrap());
}

#[test]
fn busy_address_is_addr_in_use() {
    let first = TcpListener::bind(Address::loopback_v4(0)).unwrap();
    let addr = first.local_addr().unwrap();
    let err = TcpListener::bind(addr).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::AddrInUse, "{err:?}");
    let err = net::listen(&addr.to_string()).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::AddrInUse, "{err:?}");
    // Freed: the same port binds again at once (SO_REUSEADDR).
    drop(first);
    let again = TcpListener::bind(addr).unwrap();
    assert_eq!(again.local_addr().unwrap(), addr);
}

#[test]
fn rebinding_after_a_closed_connection_works() {
    // A server that accepted a connection and closed first leaves TIME_WAIT behind;
    // SO_REUSEADDR lets a restarted server bind the same port at once.
    let listener = TcpListener::bind(Address::loopback_v4(0)).unwrap();
    let addr = listener.local_addr().unwrap();
    let client = std::net::TcpStream::connect(addr.to_std()).unwrap();
    let conn = loop {
        if let Some(c) = listener.try_accept().unwrap() {
            break c;
        }
        std::thread::yield_now();
    };
    drop(conn); // server side closes first: TIME_WAIT on the server's port
    drop(listener);
    drop(client);
    std::thread::sleep(Duration::from_millis(20));
    TcpListener::bind(addr).expect("rebind with SO_REUSEADDR");
}

#[test]
fn try_accept_without_a_runtime() {
    let listener = TcpListener::bind(Address::loopback_v4(0)).unwrap();
    assert!(listener.try_accept().unwrap().is_none());
    let mut client = std::net::TcpStream::connect(listener.local_addr().unwrap().to_std()).unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    let conn = loop {
        if let Some(c) = listener.try_accept().unwrap() {
            break c;
        }
        assert!(Instant::now() < deadline, "connection never accepted");
        std::thread::sleep(Duration::from_millis(1));
    };
    assert_eq!(conn.peer_addr.to_std(), client.local_addr().unwrap());
    client.write_all(b"hi").unwrap();
    let mut buf = [0u8; 2];
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut got = 0;
    while got < 2 {
        if let Some(n) = conn.stream.try_read(&mut buf[got..]).unwrap() {
            got += n;
        }
        assert!(Instant::now() < deadline);
    }
    assert_eq!(&buf, b"hi");
    conn.stream.try_write(b"yo").unwrap();
    client.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"yo");
    assert!(listener.try_accept().unwrap().is_none());
}

#[blitz_io::test(flavor = "multi_thread", worker_threads = 2)]
async fn accept_from_several_tasks_at_once() {
    bounded(async {
        let listener = Arc::new(TcpListener::bind(Address::loopback_v4(0)).unwrap());
        let addr = listener.local_addr().unwrap();
        const N: usize = 40;
        let mut acceptors = Vec::new();
        for _ in 0..4 {
            let l = listener.clone();
            acceptors.push(blitz_io::task::spawn(async move {
                let mut peers = Vec::new();
                while let Ok(Ok(conn)) = timeout(Duration::from_millis(500), l.accept()).await {
                    peers.push(conn.peer_addr);
                }
                peers
            }));
        }
        let mut clients = Vec::new();
        for _ in 0..N {
            clients.push(TcpStream::connect(addr).await.unwrap());
        }
        let expected: HashSet<Address> = clients.iter().map(|c| c.local_addr().unwrap()).collect();
        let mut seen = HashSet::new();
        for a in acceptors {
            for p in a.await.unwrap() {
                assert!(seen.insert(p), "accepted twice: {p}");
            }
        }
        assert_eq!(seen, expected);
    })
    .await
}

#[blitz_io::test]
async fn accept_waits_for_a_connection() {
    bounded(async {
        let listener = TcpListener::bind(Address::loopback_v4(0)).unwrap();
        let addr = listener.local_addr().unwrap();
        let early = timeout(Duration::from_millis(30), listener.accept()).await;
        assert!(early.is_err(), "accept completed with nobody connecting");
        let connector = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(20));
            std::net::TcpStream::connect(addr.to_std()).unwrap()
        });
        let conn = listener.accept().await.unwrap();
        let client = connector.join().unwrap();
        assert_eq!(conn.peer_addr.to_std(), client.local_addr().unwrap());
    })
    .await
}

#[blitz_io::test]
async fn from_std_and_into_std() {
    bounded(async {
        let std_listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = std_listener.local_addr().unwrap();
        let listener = TcpListener::from_std(std_listener).unwrap();
        assert!(listener.try_accept().unwrap().is_none(), "from_std must set non-blocking mode");
        let _c = TcpStream::connect(addr).await.unwrap();
        listener.accept().await.unwrap();

        let std_listener = listener.into_std().unwrap();
        assert_eq!(std_listener.local_addr().unwrap(), addr);
        let t = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(20));
            std::net::TcpStream::connect(addr).unwrap()
        });
        // Blocking again: accept waits for the connection instead of failing.
        let (_s, peer) = std_listener.accept().unwrap();
        assert_eq!(peer, t.join().unwrap().local_addr().unwrap());

        let l2 = TcpListener::try_from(std::net::TcpListener::bind("127.0.0.1:0").unwrap()).unwrap();
        assert!(l2.try_accept().unwrap().is_none());
    })
    .await
}

#[blitz_io::test]
async fn listen_helpers() {
    bounded(async {
        let l = net::listen("127.0.0.1:0").unwrap();
        assert!(l.local_addr().unwrap().ip().is_loopback());
        let s = net::connect(&l.local_addr().unwrap().to_string()).await.unwrap();
        assert_eq!(s.peer_addr().unwrap(), l.local_addr().unwrap());
        if let Ok(l6) = net::listen("[::1]:0") {
            assert!(l6.local_addr().unwrap().is_ipv6());
        }

        let any = net::listen_port(0).unwrap();
        let a = any.local_addr().unwrap();
        assert!(a.ip().is_unspecified() && a.is_ipv4());
        let s = TcpStream::connect(Address::loopback_v4(a.port())).await.unwrap();
        let conn = any.accept().await.unwrap();
        assert_eq!(conn.peer_addr, s.local_addr().unwrap());
        assert!(socket2::SockRef::from(&any).reuse_address().unwrap());

        for bad in ["", "localhost:80", "127.0.0.1", "1.2.3.4:99999", "[::1"] {
            let err = net::listen(bad).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::InvalidInput, "{bad:?}: {err:?}");
        }
    })
    .await
}

#[test]
fn debug_output_names_the_address() {
    let l = TcpListener::bind(Address::loopback_v4(0)).unwrap();
    let text = format!("{l:?}");
    assert!(text.contains("TcpListener") && text.contains("127.0.0.1"), "{text}");
}

/// How many handshakes the kernel completes for a listener nobody accepts from is its
/// backlog (+1): `listen` and `TcpListener::bind` promise 1024 (the kernel's default
/// would be 128 here, or less), `TcpSocket::listen` the number given. Connections beyond
/// it are not answered (the client's connect times out).
#[test]
fn listeners_have_the_documented_backlog() {
    fn established(listener: &TcpListener, tries: usize) -> usize {
        let addr = listener.local_addr().unwrap().to_std();
        let mut clients = Vec::new();
        for _ in 0..tries {
            match std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(300)) {
                Ok(c) => clients.push(c),
                Err(_) => break,
            }
        }
        clients.len()
    }
    let somaxconn: usize = std::fs::read_to_string("/proc/sys/net/core/somaxconn")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(4096);
    if somaxconn < 300 {
        eprintln!("SKIP: net.core.somaxconn is {somaxconn}, below what this test needs");
        return;
    }
    let by_listen = net::listen("127.0.0.1:0").unwrap();
    assert!(established(&by_listen, 300) == 300, "net::listen: a backlog below 300");
    let by_bind = TcpListener::bind(Address::loopback_v4(0)).unwrap();
    assert!(established(&by_bind, 300) == 300, "TcpListener::bind: a backlog below 300");
    let small = blitz_io::net::TcpSocket::new_v4().unwrap().listen(Address::loopback_v4(0), 20).unwrap();
    let n = established(&small, 60);
    assert!((20..=22).contains(&n), "TcpSocket::listen(_, 20) queued {n} connections");
}
