//! The demo: a TCP echo server, a UDP echo server and a Unix socket pair in one process,
//! with clients that talk to them, then a summary of what happened.
//!
//! Run with `cargo run --release --example demo`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use blitz_io::net::{TcpListener, TcpStream, UdpSocket, UnixStream};
use blitz_io::time::timeout;

const CLIENTS: usize = 32;
const ROUNDS: usize = 200;

#[blitz_io::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> std::io::Result<()> {
    let started = Instant::now();

    // TCP: an echo server with one task per connection.
    let listener = TcpListener::bind(([127, 0, 0, 1], 0))?;
    let addr = listener.local_addr()?;
    println!("tcp echo server listening on {addr}");
    let accepted = Arc::new(AtomicU64::new(0));
    let server = {
        let accepted = accepted.clone();
        blitz_io::task::spawn(async move {
            for _ in 0..CLIENTS {
                let conn = listener.accept().await?;
                accepted.fetch_add(1, Ordering::Relaxed);
                blitz_io::task::spawn(async move {
                    let mut stream = conn.stream;
                    let mut buf = vec![0u8; 16 * 1024];
                    loop {
                        match stream.read(&mut buf).await {
                            Ok(0) | Err(_) => break,
                            Ok(n) => {
                                if stream.write_all(&buf[..n]).await.is_err() {
                                    break;
                                }
                            }
                        }
                    }
                });
            }
            Ok::<_, std::io::Error>(())
        })
    };

    // TCP clients: each does ROUNDS request/response round trips with unique payloads.
    let tcp_start = Instant::now();
    let mut clients = Vec::new();
    for id in 0..CLIENTS {
        clients.push(blitz_io::task::spawn(async move {
            let mut stream = TcpStream::connect(addr).await?;
            stream.set_nodelay(true)?;
            let mut verified = 0u64;
            let mut reply = [0u8; 64];
            for round in 0..ROUNDS {
                let msg = format!("client {id:03} round {round:05} {:>30}", "payload");
                let msg = &msg.as_bytes()[..64.min(msg.len())];
                stream.write_all(msg).await?;
                let mut got = 0;
                while got < msg.len() {
                    let n = stream.read(&mut reply[got..msg.len()]).await?;
                    if n == 0 {
                        return Err(std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "server closed"));
                    }
                    got += n;
                }
                if &reply[..msg.len()] != msg {
                    return Err(std::io::Error::other("echo mismatch"));
                }
                verified += msg.len() as u64;
            }
            Ok::<_, std::io::Error>(verified)
        }));
    }
    let mut tcp_bytes = 0;
    for c in clients {
        tcp_bytes += c.await??;
    }
    server.await??;
    let tcp_elapsed = tcp_start.elapsed();
    let trips = (CLIENTS * ROUNDS) as f64;
    println!(
        "tcp: {} connections accepted, {} round trips, {} bytes echoed and verified in {:.1} ms ({:.0} round trips/s)",
        accepted.load(Ordering::Relaxed),
        CLIENTS * ROUNDS,
        tcp_bytes,
        tcp_elapsed.as_secs_f64() * 1e3,
        trips / tcp_elapsed.as_secs_f64()
    );

    // UDP: an echo server and a client with a timeout per request.
    let udp_server = UdpSocket::bind(([127, 0, 0, 1], 0))?;
    let udp_addr = udp_server.local_addr()?;
    let udp_task = blitz_io::task::spawn(async move {
        let mut buf = [0u8; 1500];
        for _ in 0..100 {
            let r = udp_server.recv_from(&mut buf).await?;
            udp_server.send_to(&buf[..r.len], r.addr).await?;
        }
        Ok::<_, std::io::Error>(())
    });
    let udp_client = UdpSocket::bind(([127, 0, 0, 1], 0))?;
    udp_client.connect(udp_addr)?;
    let mut udp_ok = 0;
    let mut buf = [0u8; 1500];
    for i in 0..100u32 {
        let msg = i.to_be_bytes();
        udp_client.send(&msg).await?;
        let n = timeout(Duration::from_secs(2), udp_client.recv(&mut buf)).await??;
        if buf[..n] == msg {
            udp_ok += 1;
        }
    }
    udp_task.await??;
    println!("udp: {udp_ok}/100 datagrams echoed by {udp_addr}");

    // Unix: a socket pair, one half per task.
    let (a, b) = UnixStream::pair()?;
    let child = blitz_io::task::spawn(async move {
        let mut b = b;
        let mut buf = [0u8; 5];
        let mut got = 0;
        while got < 5 {
            got += b.read(&mut buf[got..]).await?;
        }
        b.write_all(b"pong!").await?;
        Ok::<_, std::io::Error>(buf)
    });
    let mut a = a;
    a.write_all(b"ping!").await?;
    let mut reply = [0u8; 5];
    let mut got = 0;
    while got < 5 {
        got += a.read(&mut reply[got..]).await?;
    }
    let seen = child.await??;
    println!(
        "unix: parent sent {:?}, child replied {:?}",
        String::from_utf8_lossy(&seen),
        String::from_utf8_lossy(&reply)
    );

    println!("demo finished in {:.1} ms", started.elapsed().as_secs_f64() * 1e3);
    Ok(())
}
