//! The seed's short snippets, run for real: "At a Glance", "Convenience Functions", the
//! Unix socket sections (`UnixStream`, `UnixListener`, `UnixDatagram`) and "DNS
//! Resolution". The longer "Example:" sections have programs of their own.
//!
//! Changes from the seed, so that it runs anywhere and only on this machine: the server
//! listens on `127.0.0.1` with a port the kernel picks (not `0.0.0.0:8080`), the UDP
//! datagram goes to a local socket (not `10.0.0.1:9000`), names resolved are
//! `localhost` (not `api.example.com`), and the Unix paths live in a fresh temporary
//! directory. Where the seed's `try_*` calls would race a peer that has not acted yet,
//! this version first awaits readiness (`readable()`) or retries for a moment
//! (`try_accept`), which is how the `try_*` tier is meant to be used.
//!
//! Run: `cargo run --example quick_tour`. Every line it prints is checked by
//! `tests/examples.rs`.

use std::io;
use std::path::PathBuf;

use blitz_io::net::{self, Address, TcpStream, UdpSocket, UnixAddr, UnixDatagram, UnixListener, UnixStream};

#[blitz_io::main(flavor = "current_thread")]
async fn main() -> io::Result<()> {
    at_a_glance().await?;
    convenience().await?;
    let dir = TempDir::new()?;
    unix_sockets(&dir).await?;
    dns().await?;
    println!("quick tour done");
    Ok(())
}

/// "At a Glance": a server that accepts, reads and echoes; a client that connects with
/// `TCP_NODELAY` and writes; a UDP datagram; DNS then connect.
async fn at_a_glance() -> io::Result<()> {
    // Server: listen, accept, handle.
    let listener = net::listen("127.0.0.1:0")?;
    let addr = listener.local_addr()?;

    // Client: connect and send.
    let client = net::connect(&addr.to_string()).await?;
    client.set_nodelay(true)?; // low-latency mode
    let request = b"GET /health HTTP/1.1\r\n\r\n";
    client.writable().await?;
    let sent = client.try_write(request)?.unwrap_or(0);

    if let Some(result) = try_accept_soon(|| listener.try_accept()).await? {
        let mut stream = result.stream;
        let mut buf = [0u8; 4096];
        stream.readable().await?;
        if let Some(n) = stream.try_read(&mut buf)? {
            stream.write_all(&buf[..n]).await?;
            println!("glance: server echoed {n} bytes from {}", result.peer_addr.ip());
        }
    }
    let mut echo = vec![0u8; sent];
    let mut client = client;
    let mut got = 0;
    while got < sent {
        got += client.read(&mut echo[got..]).await?;
    }
    println!("glance: client sent {sent} bytes, got them back: {}", echo == request);

    // UDP: fire-and-forget datagrams.
    let sock = UdpSocket::bind(Address::loopback_v4(0))?;
    let peer = UdpSocket::bind(Address::loopback_v4(0))?;
    let n = sock.try_send_to(b"ping", peer.local_addr()?)?;
    let mut buf = [0u8; 16];
    let r = peer.recv_from(&mut buf).await?;
    println!("glance: udp sent {n:?}, peer got {:?}", String::from_utf8_lossy(&buf[..r.len]));

    // DNS resolution (on the blocking pool here: `lookup_host` / `connect_host` do that;
    // `resolve_first` itself blocks), then connect.
    // (A listener waits where the name points, since nothing serves it here.)
    let addr = blitz_io::task::spawn_blocking(|| net::resolve_first("localhost", 0)).await??;
    let target = blitz_io::net::TcpListener::bind(addr)?;
    let addr = Address::from_std(std::net::SocketAddr::new(addr.ip(), target.local_addr()?.port()));
    let stream = TcpStream::connect(addr).await?;
    println!("glance: resolved localhost and connected: {}", stream.peer_addr()? == addr);
    Ok(())
}

/// "Convenience Functions": `listen`, `listen_port`, `connect`.
async fn convenience() -> io::Result<()> {
    let listener = net::listen("127.0.0.1:0")?;
    let stream = net::connect(&listener.local_addr()?.to_string()).await?;
    let accepted = listener.accept().await?;
    println!("convenience: connect -> accept peer matches: {}", accepted.peer_addr == stream.local_addr()?);
    let any = net::listen_port(0)?;
    println!("convenience: listen_port(0) is on every interface: {}", any.local_addr()?.ip().is_unspecified());
    Ok(())
}

/// The Unix sections: a stream (connect, `write_all`, `read`), a listener
/// (`try_accept`), datagrams (`send_to` a path, `recv_from`, `pair`).
async fn unix_sockets(dir: &TempDir) -> io::Result<()> {
    let path = dir.path("my.sock");
    let listener = UnixListener::bind(&path)?;
    let mut stream = UnixStream::connect(&path).await?;
    stream.write_all(b"Hello!").await?;

    if let Some(result) = try_accept_soon(|| listener.try_accept()).await? {
        let mut server = result.stream;
        let mut buf = [0u8; 1024];
        let n = server.read(&mut buf).await?;
        server.write_all(&buf[..n]).await?;
    }
    let mut buf = [0u8; 1024];
    let n = stream.read(&mut buf).await?;
    println!("unix stream: echoed {:?}", String::from_utf8_lossy(&buf[..n]));

    let socket = UnixDatagram::bind(dir.path("dgram.sock"))?;
    let other = UnixDatagram::bind(dir.path("other.sock"))?;
    socket.send_to(b"hello", &UnixAddr::from_path(dir.path("other.sock"))?).await?;
    let mut buf = [0u8; 64];
    let result = other.recv_from(&mut buf).await?;
    let from = result.addr.as_pathname().and_then(|p| p.file_name()).map(|f| f.to_string_lossy().into_owned());
    println!("unix datagram: got {:?} from {from:?}", String::from_utf8_lossy(&buf[..result.len]));

    let (a, b) = UnixDatagram::pair()?;
    a.send(b"over the pair").await?;
    let n = b.recv(&mut buf).await?;
    println!("unix pair: {:?}", String::from_utf8_lossy(&buf[..n]));
    Ok(())
}

/// "DNS Resolution": every address (`resolve`), the first (`resolve_first`), and
/// resolve-and-connect in one call (`connect_host`, on the blocking pool).
async fn dns() -> io::Result<()> {
    let listener = net::listen("127.0.0.1:0")?;
    let port = listener.local_addr()?.port();
    let all = blitz_io::task::spawn_blocking(move || net::resolve("localhost", port)).await??;
    println!("dns: localhost resolves to loopback only: {}", all.iter().all(|a| a.ip().is_loopback()));
    let first = blitz_io::task::spawn_blocking(move || net::resolve_first("localhost", port)).await??;
    println!("dns: resolve_first is the first of resolve: {}", all.first() == Some(&first));
    // Tries each address of the name in turn (the listener is on 127.0.0.1 only).
    let stream = net::connect_host("localhost", port).await?;
    println!("dns: connect_host reached the listener: {}", stream.peer_addr()?.port() == port);
    Ok(())
}

/// The seed's `if (try listener.tryAccept()) |result|`, given the client a moment to
/// arrive: `try_accept` until it returns a connection, for at most a second (listeners
/// have `accept().await` for real servers).
async fn try_accept_soon<T>(mut try_accept: impl FnMut() -> io::Result<Option<T>>) -> io::Result<Option<T>> {
    for _ in 0..1000 {
        if let Some(conn) = try_accept()? {
            return Ok(Some(conn));
        }
        blitz_io::time::sleep(std::time::Duration::from_millis(1)).await;
    }
    Ok(None)
}

/// A fresh directory for the Unix socket files, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> io::Result<TempDir> {
        let dir = std::env::temp_dir().join(format!("blitz-quick-tour-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir)?;
        Ok(TempDir(dir))
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
