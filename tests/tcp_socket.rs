//! `TcpSocket`: every option round-trips, bind/local_addr, connect, listen with a
//! backlog, SO_REUSEPORT sharing, input checks, and the seed's production listener.

use std::future::Future;
use std::io::ErrorKind;
use std::time::Duration;

use blitz_io::net::{Address, Keepalive, TcpListener, TcpSocket, TcpStream};
use blitz_io::time::timeout;

const LIMIT: Duration = Duration::from_secs(20);

async fn bounded<F: Future>(f: F) -> F::Output {
    timeout(LIMIT, f).await.expect("test body timed out")
}

#[test]
fn options_round_trip() {
    let s = TcpSocket::new_v4().unwrap();

    assert!(!s.reuse_addr().unwrap());
    s.set_reuse_addr(true).unwrap();
    assert!(s.reuse_addr().unwrap());
    s.set_reuse_addr(false).unwrap();
    assert!(!s.reuse_addr().unwrap());

    s.set_reuse_port(true).unwrap();
    assert!(s.reuse_port().unwrap());
    s.set_reuse_port(false).unwrap();
    assert!(!s.reuse_port().unwrap());

    s.set_nodelay(true).unwrap();
    assert!(s.nodelay().unwrap());
    s.set_nodelay(false).unwrap();
    assert!(!s.nodelay().unwrap());

    // Linux doubles the value it is given; other kernels keep it. Either way it grows.
    s.set_send_buffer_size(64 * 1024).unwrap();
    let snd = s.send_buffer_size().unwrap();
    assert!(snd >= 64 * 1024, "SO_SNDBUF {snd}");
    s.set_recv_buffer_size(32 * 1024).unwrap();
    let rcv = s.recv_buffer_size().unwrap();
    assert!(rcv >= 32 * 1024, "SO_RCVBUF {rcv}");
    s.set_recv_buffer_size(8 * 1024).unwrap();
    assert!(s.recv_buffer_size().unwrap() < rcv, "the size must really change");

    assert_eq!(s.keepalive().unwrap(), None);
    let ka =
        Keepalive { time: Some(Duration::from_secs(60)), interval: Some(Duration::from_secs(10)), retries: Some(5) };
    s.set_keepalive(Some(ka)).unwrap();
    assert_eq!(s.keepalive().unwrap(), Some(ka));
    s.set_keepalive(None).unwrap();
    assert_eq!(s.keepalive().unwrap(), None);

    assert_eq!(s.linger().unwrap(), None);
    s.set_linger(Some(Duration::from_secs(5))).unwrap();
    assert_eq!(s.linger().unwrap(), Some(Duration::from_secs(5)));
    s.set_linger(Some(Duration::ZERO)).unwrap();
    assert_eq!(s.linger().unwrap(), Some(Duration::ZERO));
    s.set_linger(None).unwrap();
    assert_eq!(s.linger().unwrap(), None);
}

#[test]
fn bad_option_values_are_invalid_input() {
    let s = TcpSocket::new_v4().unwrap();
    for r in [s.set_send_buffer_size(0), s.set_recv_buffer_size(0), s.set_recv_buffer_size(usize::MAX)] {
        assert_eq!(r.unwrap_err().kind(), ErrorKind::InvalidInput);
    }
    let bad = Keepalive { time: Some(Duration::ZERO), ..Keepalive::default() };
    assert_eq!(s.set_keepalive(Some(bad)).unwrap_err().kind(), ErrorKind::InvalidInput);
    assert_eq!(s.set_linger(Some(Duration::from_secs(u64::MAX))).unwrap_err().kind(), ErrorKind::InvalidInput);
}

#[test]
fn bind_and_local_addr() {
    let s = TcpSocket::new_v4().unwrap();
    s.bind(Address::loopback_v4(0)).unwrap();
    let a = s.local_addr().unwrap();
    assert!(a.ip().is_loopback());
    assert_ne!(a.port(), 0);

    // Family mismatch is caught before the kernel sees it.
    let v4 = TcpSocket::new_v4().unwrap();
    let err = v4.bind(Address::loopback_v6(0)).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    assert!(err.to_string().contains("new_v6"), "{err}");
    if let Ok(v6) = TcpSocket::new_v6() {
        assert_eq!(v6.bind(Address::loopback_v4(0)).unwrap_err().kind(), ErrorKind::InvalidInput);
        if v6.bind(Address::loopback_v6(0)).is_ok() {
            assert!(v6.local_addr().unwrap().is_ipv6());
        }
    }
}

#[blitz_io::test]
async fn connect_from_a_bound_socket_with_options() {
    bounded(async {
        let listener = TcpListener::bind(Address::loopback_v4(0)).unwrap();
        let s = TcpSocket::new_v4().unwrap();
        s.set_nodelay(true).unwrap();
        s.bind(Address::loopback_v4(0)).unwrap();
        let local = s.local_addr().unwrap();
        let stream = s.connect(listener.local_addr().unwrap()).await.unwrap();
        assert_eq!(stream.local_addr().unwrap(), local);
        assert!(stream.nodelay().unwrap());
        let conn = listener.accept().await.unwrap();
        assert_eq!(conn.peer_addr, local);
    })
    .await
}

#[blitz_io::test]
async fn connect_errors() {
    bounded(async {
        let s = TcpSocket::new_v4().unwrap();
        let err = s.connect(Address::loopback_v4(0)).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "port 0: {err:?}");
        let s = TcpSocket::new_v4().unwrap();
        let err = s.connect(Address::loopback_v6(80)).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "family: {err:?}");

        let closed = TcpListener::bind(Address::loopback_v4(0)).unwrap();
        let addr = closed.local_addr().unwrap();
        drop(closed);
        let err = TcpSocket::new_v4().unwrap().connect(addr).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::ConnectionRefused, "{err:?}");
    })
    .await
}

#[blitz_io::test]
async fn listen_with_backlog() {
    bounded(async {
        let s = TcpSocket::new_v4().unwrap();
        s.set_reuse_addr(true).unwrap();
        let listener = s.listen(Address::loopback_v4(0), 16).unwrap();
        let addr = listener.local_addr().unwrap();
        let mut clients = Vec::new();
        for _ in 0..8 {
            clients.push(TcpStream::connect(addr).await.unwrap());
        }
        for _ in 0..8 {
            listener.accept().await.unwrap();
        }
        // Listening twice on a taken address fails.
        let err = TcpSocket::new_v4().unwrap().listen(addr, 16).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::AddrInUse);
    })
    .await
}

#[blitz_io::test]
async fn reuse_port_lets_two_listeners_share_a_port() {
    bounded(async {
        let a = TcpSocket::new_v4().unwrap();
        a.set_reuse_port(true).unwrap();
        let la = a.listen(Address::loopback_v4(0), 128).unwrap();
        let addr = la.local_addr().unwrap();
        let b = TcpSocket::new_v4().unwrap();
        b.set_reuse_port(true).unwrap();
        let lb = b.listen(addr, 128).unwrap();
        assert_eq!(lb.local_addr().unwrap(), addr);

        // Without it, the same bind is AddrInUse.
        let c = TcpSocket::new_v4().unwrap();
        assert_eq!(c.listen(addr, 128).unwrap_err().kind(), ErrorKind::AddrInUse);

        // Connections reach one of the two listeners.
        let mut clients = Vec::new();
        for _ in 0..16 {
            clients.push(TcpStream::connect(addr).await.unwrap());
        }
        let mut accepted = 0;
        while accepted < 16 {
            if la.try_accept().unwrap().is_some() || lb.try_accept().unwrap().is_some() {
                accepted += 1;
            } else {
                blitz_io::time::sleep(Duration::from_millis(1)).await;
            }
        }
    })
    .await
}

/// The seed's "production listener", written as in the docs.
fn create_production_listener(bind_addr: Address) -> std::io::Result<TcpListener> {
    let socket = TcpSocket::new_v4()?;
    socket.set_reuse_addr(true)?;
    socket.set_nodelay(true)?;
    socket.set_send_buffer_size(256 * 1024)?;
    socket.set_recv_buffer_size(128 * 1024)?;
    socket.set_keepalive(Some(Keepalive {
        time: Some(Duration::from_secs(60)),
        interval: Some(Duration::from_secs(10)),
        retries: Some(5),
    }))?;
    socket.set_linger(Some(Duration::from_secs(5)))?;
    socket.listen(bind_addr, 1024)
}

#[blitz_io::test]
async fn production_listener_example() {
    bounded(async {
        let listener = create_production_listener(Address::loopback_v4(0)).unwrap();
        let sock = socket2::SockRef::from(&listener);
        assert!(sock.reuse_address().unwrap());
        assert!(sock.keepalive().unwrap());
        assert_eq!(sock.linger().unwrap(), Some(Duration::from_secs(5)));
        let mut client = TcpStream::connect(listener.local_addr().unwrap()).await.unwrap();
        let mut conn = listener.accept().await.unwrap().stream;
        client.write_all(b"GET /health").await.unwrap();
        let mut buf = [0u8; 11];
        let mut got = 0;
        while got < buf.len() {
            got += conn.read(&mut buf[got..]).await.unwrap();
        }
        assert_eq!(&buf, b"GET /health");
        // Accepted connections may inherit the 5 s linger; turn it off so the drop at
        // the end never blocks this worker.
        conn.set_linger(None).unwrap();
    })
    .await
}

#[test]
fn debug_and_fd() {
    use std::os::fd::AsRawFd;
    let s = TcpSocket::new_v4().unwrap();
    assert!(s.as_raw_fd() >= 0);
    assert!(format!("{s:?}").contains("V4"));
}

/// `bind` then `listen` (tokio's order) works: `listen` does not bind a bound socket
/// again when given its address, or the same IP with port 0. A different address is
/// `InvalidInput` saying so, not a bare `EINVAL`.
#[blitz_io::test]
async fn bind_then_listen_does_not_bind_twice() {
    let s = TcpSocket::new_v4().unwrap();
    s.bind(Address::loopback_v4(0)).unwrap();
    let addr = s.local_addr().unwrap();
    let listener = s.listen(addr, 16).unwrap();
    assert_eq!(listener.local_addr().unwrap(), addr);
    let _client = blitz_io::net::TcpStream::connect(addr).await.unwrap();
    listener.accept().await.unwrap();

    let s = TcpSocket::new_v4().unwrap();
    s.bind(Address::loopback_v4(0)).unwrap();
    let addr = s.local_addr().unwrap();
    assert_eq!(s.listen(Address::loopback_v4(0), 16).unwrap().local_addr().unwrap(), addr);

    let s = TcpSocket::new_v4().unwrap();
    s.bind(Address::loopback_v4(0)).unwrap();
    let other = Address::parse("127.0.0.2:0").unwrap();
    let err = s.listen(other, 16).unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput, "{err}");
    assert!(err.to_string().contains("already bound"), "{err}");
}

/// On a dual-stack IPv6 socket talking to an IPv4 peer the packets are IPv4: `set_ttl`
/// must set `IP_TTL` (it set only the IPv6 hop limit, leaving the real TTL at 64).
#[blitz_io::test]
async fn set_ttl_on_a_v4_mapped_stream_sets_the_ipv4_ttl() {
    let Ok(listener) = TcpSocket::new_v6().and_then(|s| s.listen(Address::parse("[::]:0").unwrap(), 8)) else {
        return; // no IPv6 here
    };
    let port = listener.local_addr().unwrap().port();
    let _client = blitz_io::net::TcpStream::connect(Address::loopback_v4(port)).await.unwrap();
    let stream = listener.accept().await.unwrap().stream;
    assert!(stream.local_addr().unwrap().is_ipv6(), "a dual-stack socket");
    stream.set_ttl(7).unwrap();
    assert_eq!(stream.ttl().unwrap(), 7);
    assert_eq!(socket2::SockRef::from(&stream).ttl_v4().unwrap(), 7, "IP_TTL itself");
}
