//! Error behaviour of the stream types: refused connects, writes to a closed peer
//! (an error, never SIGPIPE), resets (ConnectionReset, never a silent 0), busy
//! addresses, and bad input (InvalidInput, never a panic).

use std::future::Future;
use std::io::ErrorKind;
use std::time::{Duration, Instant};

use blitz_io::net::{self, Address, Keepalive, TcpListener, TcpSocket, TcpStream, UnixAddr, UnixListener, UnixStream};
use blitz_io::time::{sleep, timeout};

const LIMIT: Duration = Duration::from_secs(20);

async fn bounded<F: Future>(f: F) -> F::Output {
    timeout(LIMIT, f).await.expect("test body timed out")
}

async fn pair() -> (TcpStream, TcpStream) {
    let listener = TcpListener::bind(Address::loopback_v4(0)).unwrap();
    let client = TcpStream::connect(listener.local_addr().unwrap()).await.unwrap();
    let server = listener.accept().await.unwrap().stream;
    (client, server)
}

#[blitz_io::test]
async fn refused_connect() {
    bounded(async {
        let l = TcpListener::bind(Address::loopback_v4(0)).unwrap();
        let addr = l.local_addr().unwrap();
        drop(l);
        let err = TcpStream::connect(addr).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::ConnectionRefused, "{err:?}");
        let err = net::connect(&addr.to_string()).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::ConnectionRefused, "{err:?}");
    })
    .await
}

#[test]
fn refused_connect_outside_a_runtime() {
    let l = TcpListener::bind(Address::loopback_v4(0)).unwrap();
    let addr = l.local_addr().unwrap();
    drop(l);
    let err = futures_executor::block_on(TcpStream::connect(addr)).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ConnectionRefused);
}

#[blitz_io::test]
async fn write_to_a_closed_peer_is_an_error_and_the_process_lives() {
    bounded(async {
        let (mut client, server) = pair().await;
        drop(server);
        let chunk = vec![7u8; 64 * 1024];
        let deadline = Instant::now() + Duration::from_secs(10);
        let err = loop {
            match client.write(&chunk).await {
                Ok(_) => sleep(Duration::from_millis(1)).await,
                Err(e) => break e,
            }
            assert!(Instant::now() < deadline, "writes to a closed peer never failed");
        };
        assert!(matches!(err.kind(), ErrorKind::BrokenPipe | ErrorKind::ConnectionReset), "{err:?}");
        // Still alive (no SIGPIPE), and the next write fails the same way.
        let err = client.write_all(b"more").await.unwrap_err();
        assert!(matches!(err.kind(), ErrorKind::BrokenPipe | ErrorKind::ConnectionReset), "{err:?}");
        let err = client.try_write(b"more").unwrap_err();
        assert!(matches!(err.kind(), ErrorKind::BrokenPipe | ErrorKind::ConnectionReset), "{err:?}");
    })
    .await
}

#[blitz_io::test]
async fn reset_peer_is_connection_reset_not_eof() {
    bounded(async {
        let (client, mut server) = pair().await;
        client.set_linger(Some(Duration::ZERO)).unwrap();
        let start = Instant::now();
        drop(client); // abortive close: RST
        assert!(start.elapsed() < Duration::from_millis(500), "zero linger must not block");
        let mut buf = [0u8; 16];
        let err = server.read(&mut buf).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::ConnectionReset, "{err:?}");

        // The same through try_read and through an owned read half.
        let (client, server) = pair().await;
        client.set_linger(Some(Duration::ZERO)).unwrap();
        drop(client);
        server.readable().await.unwrap();
        let deadline = Instant::now() + Duration::from_secs(5);
        let err = loop {
            match server.try_read(&mut buf) {
                Ok(None) => server.readable().await.unwrap(),
                Ok(Some(n)) => panic!("a reset must not read as {n} bytes"),
                Err(e) => break e,
            }
            assert!(Instant::now() < deadline);
        };
        assert_eq!(err.kind(), ErrorKind::ConnectionReset);

        let (client, server) = pair().await;
        let (mut rd, _wr) = server.into_split();
        client.set_linger(Some(Duration::ZERO)).unwrap();
        drop(client);
        assert_eq!(rd.read(&mut buf).await.unwrap_err().kind(), ErrorKind::ConnectionReset);
    })
    .await
}

#[test]
fn busy_addresses() {
    let l = TcpListener::bind(Address::loopback_v4(0)).unwrap();
    let addr = l.local_addr().unwrap();
    assert_eq!(TcpListener::bind(addr).unwrap_err().kind(), ErrorKind::AddrInUse);
    let s = TcpSocket::new_v4().unwrap();
    assert_eq!(s.bind(addr).unwrap_err().kind(), ErrorKind::AddrInUse);
}

#[blitz_io::test]
async fn bad_input_never_panics() {
    bounded(async {
        let err = Address::parse("localhost:80").unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput);
        assert!(err.to_string().contains("resolve"), "{err}");
        for bad in ["", "127.0.0.1", "1.2.3.4:70000", "::1:80", "[::1]", "a b:1", "\0:1", "ü:1"] {
            assert_eq!(Address::parse(bad).unwrap_err().kind(), ErrorKind::InvalidInput, "{bad:?}");
            assert_eq!(net::listen(bad).unwrap_err().kind(), ErrorKind::InvalidInput, "{bad:?}");
            assert_eq!(net::connect(bad).await.unwrap_err().kind(), ErrorKind::InvalidInput, "{bad:?}");
        }
        // Port 0 as a destination.
        assert_eq!(TcpStream::connect(Address::loopback_v4(0)).await.unwrap_err().kind(), ErrorKind::InvalidInput);
        assert_eq!(net::connect("127.0.0.1:0").await.unwrap_err().kind(), ErrorKind::InvalidInput);
        assert_eq!(net::connect_host("localhost", 0).await.unwrap_err().kind(), ErrorKind::InvalidInput);
        // Options.
        let (client, _server) = pair().await;
        assert_eq!(client.set_ttl(0).unwrap_err().kind(), ErrorKind::InvalidInput);
        assert_eq!(client.set_ttl(256).unwrap_err().kind(), ErrorKind::InvalidInput);
        let ka = Keepalive { retries: Some(0), ..Keepalive::default() };
        assert_eq!(client.set_keepalive(Some(ka)).unwrap_err().kind(), ErrorKind::InvalidInput);
        // Unix paths.
        let long = "/tmp/".to_string() + &"y".repeat(300);
        assert_eq!(UnixListener::bind(&long).unwrap_err().kind(), ErrorKind::InvalidInput);
        assert_eq!(UnixStream::connect(&long).await.unwrap_err().kind(), ErrorKind::InvalidInput);
        assert_eq!(UnixStream::connect("a\0b").await.unwrap_err().kind(), ErrorKind::InvalidInput);
        let (a, _b) = UnixStream::pair().unwrap();
        let unnamed = a.local_addr().unwrap();
        assert!(unnamed.is_unnamed());
        assert_eq!(UnixListener::bind_addr(&unnamed).unwrap_err().kind(), ErrorKind::InvalidInput);
        assert_eq!(UnixStream::connect_addr(&unnamed).await.unwrap_err().kind(), ErrorKind::InvalidInput);
        let _ = UnixAddr::from_path("/tmp/ok.sock").unwrap();
    })
    .await
}

#[blitz_io::test]
async fn operations_after_shutdown_both() {
    bounded(async {
        let (mut client, _server) = pair().await;
        client.shutdown(std::net::Shutdown::Both).unwrap();
        let mut buf = [0u8; 4];
        assert_eq!(client.read(&mut buf).await.unwrap(), 0);
        assert_eq!(client.write(b"x").await.unwrap_err().kind(), ErrorKind::BrokenPipe);
    })
    .await
}

/// Runtime and socket settings that cannot work are `InvalidInput` with a message, not a
/// panic ("capacity overflow", "thread name may not contain interior null bytes") or a
/// silent wrap of a C `int`.
#[test]
fn impossible_settings_are_invalid_input() {
    let says = |r: std::io::Result<()>, what: &str| {
        let e = r.expect_err(what);
        assert_eq!(e.kind(), std::io::ErrorKind::InvalidInput, "{what}: {e}");
    };
    says(blitz_io::runtime::Builder::new_multi_thread().worker_threads(usize::MAX).build().map(drop), "workers");
    says(
        blitz_io::runtime::Builder::new_multi_thread().worker_threads(1).thread_name("a\0b").build().map(drop),
        "NUL in a thread name",
    );
    let udp = blitz_io::net::UdpSocket::bind(blitz_io::net::Address::loopback_v4(0)).unwrap();
    says(udp.set_recv_buffer_size(0), "recv buffer 0");
    says(udp.set_send_buffer_size(usize::MAX), "send buffer usize::MAX");
    says(
        blitz_io::net::UdpSocket::builder()
            .recv_buffer_size(usize::MAX)
            .bind(blitz_io::net::Address::loopback_v4(0))
            .map(drop),
        "builder recv buffer",
    );
}
