//! The lifecycle of a TCP client connection, step by step: the seed's "Connection
//! Lifecycle / Client Lifecycle".
//!
//! 1. resolve a host name (on the blocking pool: `lookup_host`),
//! 2. connect (the three-way handshake),
//! 3. configure (`TCP_NODELAY`),
//! 4. write the request (`write_all` handles partial writes),
//! 5. shut down the write side (the server reads EOF: "that is the whole request"),
//! 6. read the response until the server's EOF,
//! 7. close (drop the stream).
//!
//! The seed talks to `api.example.com`; this example starts its own small server on
//! 127.0.0.1 (kernel-chosen port) and resolves `localhost` instead, so it runs offline.
//! The server checks that it saw the whole request followed by EOF. Exits non-zero on
//! any failure. Run: `cargo run --example client_lifecycle`.

use std::io;
use std::net::Shutdown;
use std::time::Duration;

use blitz_io::net::{lookup_host, Address, TcpListener, TcpStream};
use blitz_io::time::timeout;

const REQUEST: &[u8] = b"GET /status HTTP/1.1\r\nHost: api.example.com\r\n\r\n";
const RESPONSE: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 12\r\n\r\nall is well\n";

/// A server for one client: reads the request until EOF, answers, closes.
async fn server(listener: TcpListener) -> io::Result<Vec<u8>> {
    let mut conn = listener.accept().await?.stream;
    let mut request = Vec::new();
    let mut buf = [0u8; 1024];
    loop {
        // The client shut down its write side after the request, so EOF ends it.
        let n = conn.read(&mut buf).await?;
        if n == 0 {
            break;
        }
        request.extend_from_slice(&buf[..n]);
    }
    conn.write_all(RESPONSE).await?;
    Ok(request) // dropping `conn` closes it: the client reads EOF after the response
}

async fn client(port: u16) -> io::Result<Vec<u8>> {
    // 1. RESOLVE: getaddrinfo blocks, so `lookup_host` runs it on the blocking pool.
    let addrs = match lookup_host("localhost", port).await {
        Ok(addrs) => addrs,
        Err(e) => {
            println!("1. resolve: localhost did not resolve ({e}); using 127.0.0.1");
            vec![Address::loopback_v4(port)]
        }
    };
    println!("1. resolve: localhost -> {}", addrs.iter().map(ToString::to_string).collect::<Vec<_>>().join(", "));

    // 2. CONNECT: try each address in turn (the server listens on IPv4 only, so an
    //    IPv6 `::1` is refused and the next address is tried).
    let mut last_err = None;
    let mut connected = None;
    for addr in addrs {
        match TcpStream::connect(addr).await {
            Ok(stream) => {
                connected = Some(stream);
                break;
            }
            Err(e) => {
                println!("2. connect: {addr} failed ({e}), trying the next address");
                last_err = Some(e);
            }
        }
    }
    let mut stream = match connected {
        Some(s) => s,
        None => return Err(last_err.unwrap_or_else(|| io::Error::other("no address to connect to"))),
    };
    println!("2. connect: {} -> {}", stream.local_addr()?, stream.peer_addr()?);

    // 3. CONFIGURE: request-response traffic wants small writes sent at once.
    stream.set_nodelay(true)?;
    println!("3. configure: nodelay = {}", stream.nodelay()?);

    // 4. WRITE: the whole request, however many partial writes it takes.
    stream.write_all(REQUEST).await?;
    println!("4. write: {} bytes", REQUEST.len());

    // 5. SHUTDOWN WRITE: the server sees EOF; we can still read.
    stream.shutdown(Shutdown::Write)?;
    println!("5. shutdown(Write): FIN sent, read side still open");

    // 6. READ: until the server's EOF.
    let mut response = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            break;
        }
        response.extend_from_slice(&buf[..n]);
    }
    println!("6. read: {} bytes, then EOF", response.len());

    // 7. CLOSE: dropping the stream releases the descriptor.
    drop(stream);
    println!("7. close: dropped");
    Ok(response)
}

async fn run() -> io::Result<()> {
    let listener = TcpListener::bind(Address::loopback_v4(0))?;
    let port = listener.local_addr()?.port();
    let server = blitz_io::task::spawn(server(listener));

    let response = client(port).await?;
    let request = server.await??;
    if request != REQUEST {
        return Err(io::Error::other(format!("server received {:?}", String::from_utf8_lossy(&request))));
    }
    if response != RESPONSE {
        return Err(io::Error::other(format!("client received {:?}", String::from_utf8_lossy(&response))));
    }
    let status = String::from_utf8_lossy(&response).lines().next().unwrap_or_default().to_owned();
    println!("server received the whole request, then EOF; client got {status:?}");
    Ok(())
}

fn main() {
    match blitz_io::run(async { timeout(Duration::from_secs(10), run()).await? }) {
        Ok(()) => println!("client_lifecycle: ok"),
        Err(e) => {
            eprintln!("client_lifecycle: FAILED: {e}");
            std::process::exit(1);
        }
    }
}
