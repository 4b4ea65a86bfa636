//! The lifecycle of a TCP server connection, step by step: the seed's "Connection
//! Lifecycle / Server Lifecycle".
//!
//! 1. bind + listen (`net::listen`, 127.0.0.1 with a kernel-chosen port),
//! 2. accept (awaiting `accept`, where the seed polls `tryAccept` with sleeps),
//! 3. read the request until its blank line (bounded in size and time),
//! 4. write the response,
//! 5. shut down the write side (FIN: "the response is complete"), then close.
//!
//! Like the seed, this server handles one connection at a time (see `accept_loop` for
//! one task per connection). Three clients connect at once; the kernel queues the ones
//! waiting in the listen backlog. The server stops after three connections and every
//! client checks its response. Exits non-zero on any failure.
//! Run: `cargo run --example server_lifecycle`.

use std::io;
use std::net::Shutdown;
use std::time::Duration;

use blitz_io::net::{Address, TcpListener, TcpStream};
use blitz_io::time::timeout;

const RESPONSE: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
const MAX_REQUEST: usize = 4096;
const CLIENTS: usize = 3;

/// Step 3: reads until the end of the request head (`\r\n\r\n`), EOF, or the size limit.
async fn read_request(conn: &mut TcpStream) -> io::Result<Vec<u8>> {
    let mut buf = vec![0u8; MAX_REQUEST];
    let mut total = 0;
    while total < buf.len() {
        let n = conn.read(&mut buf[total..]).await?;
        if n == 0 {
            break;
        }
        total += n;
        // Only the newly read bytes (and 3 before them) can complete the marker.
        let from = (total - n).saturating_sub(3);
        if buf[from..total].windows(4).any(|w| w == b"\r\n\r\n") {
            break;
        }
    }
    buf.truncate(total);
    Ok(buf)
}

async fn server(listener: TcpListener) -> io::Result<usize> {
    let mut served = 0;
    // 2. ACCEPT LOOP (one connection at a time).
    while served < CLIENTS {
        let accepted = listener.accept().await?;
        let mut conn = accepted.stream;
        println!("server: 2. accepted {}", accepted.peer_addr);

        // 3. READ, bounded in time: a silent client cannot hold the server forever.
        let request = match timeout(Duration::from_secs(2), read_request(&mut conn)).await {
            Ok(request) => request?,
            Err(_) => {
                println!("server: 3. client sent no complete request in time; closing");
                continue;
            }
        };
        let first_line = String::from_utf8_lossy(&request).lines().next().unwrap_or_default().to_owned();
        println!("server: 3. read {} bytes: {first_line:?}", request.len());

        // 4. WRITE the whole response.
        conn.write_all(RESPONSE).await?;
        println!("server: 4. wrote {} bytes", RESPONSE.len());

        // 5. SHUTDOWN + CLOSE: FIN tells the client the response is complete; dropping
        //    the stream releases the descriptor.
        conn.shutdown(Shutdown::Write)?;
        drop(conn);
        println!("server: 5. shut down and closed");
        served += 1;
    }
    Ok(served)
}

async fn client(addr: Address, id: usize) -> io::Result<()> {
    let mut stream = TcpStream::connect(addr).await?;
    stream.write_all(format!("GET /client/{id} HTTP/1.1\r\nHost: localhost\r\n\r\n").as_bytes()).await?;
    let mut response = Vec::new();
    let mut buf = [0u8; 256];
    loop {
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            break;
        }
        response.extend_from_slice(&buf[..n]);
    }
    if response != RESPONSE {
        return Err(io::Error::other(format!("client {id} got {:?}", String::from_utf8_lossy(&response))));
    }
    Ok(())
}

async fn run() -> io::Result<()> {
    // 1. BIND + LISTEN.
    let listener = blitz_io::net::listen("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    println!("server: 1. listening on {addr}");
    let server = blitz_io::task::spawn(server(listener));

    let clients: Vec<_> = (0..CLIENTS).map(|id| blitz_io::task::spawn(client(addr, id))).collect();
    for (id, c) in clients.into_iter().enumerate() {
        c.await??;
        println!("client {id}: got the full response, then EOF");
    }
    let served = server.await??;
    println!("server: served {served} connections and stopped");
    Ok(())
}

fn main() {
    match blitz_io::run(async { timeout(Duration::from_secs(10), run()).await? }) {
        Ok(()) => println!("server_lifecycle: ok"),
        Err(e) => {
            eprintln!("server_lifecycle: FAILED: {e}");
            std::process::exit(1);
        }
    }
}
