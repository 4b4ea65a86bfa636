//! An accept loop with one task per connection: the seed's "Accept Loop with
//! Per-Connection Tasks" (the seed spawns a thread per connection and notes that "in an
//! async context, you would spawn a task instead": this is that version).
//!
//! Each connection gets an echo task that owns its `TcpStream` (no heap context or
//! manual cleanup: the task owns the stream and dropping it closes the socket). A slow
//! client connects first and sends nothing for a while; twenty other clients connect
//! after it and are all served meanwhile, which is the point of the pattern: one slow
//! client does not block the others. Then the slow client speaks and is echoed too.
//! Exits non-zero on any failure. Run: `cargo run --example accept_loop`.

use std::io;
use std::net::Shutdown;
use std::time::Duration;

use blitz_io::net::{Address, TcpListener, TcpStream};
use blitz_io::task::{spawn, JoinHandle};
use blitz_io::time::{sleep, timeout, Instant};

const FAST_CLIENTS: usize = 20;
const MESSAGES: usize = 3;

/// Per-connection task: echo everything until the client closes. Returns bytes echoed.
async fn echo(mut stream: TcpStream) -> io::Result<usize> {
    let mut buf = [0u8; 4096];
    let mut total = 0;
    loop {
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            return Ok(total); // client disconnected; dropping `stream` closes our side
        }
        stream.write_all(&buf[..n]).await?;
        total += n;
    }
}

/// Accepts `count` connections, spawning one echo task for each, then waits for them.
///
/// A real server loops forever; this one stops after `count` so that the example ends.
async fn accept_loop(listener: TcpListener, count: usize) -> io::Result<Vec<usize>> {
    let mut tasks: Vec<JoinHandle<io::Result<usize>>> = Vec::with_capacity(count);
    while tasks.len() < count {
        match listener.accept().await {
            Ok(conn) => tasks.push(spawn(echo(conn.stream))),
            // Out of descriptors, a connection reset before accept, ...: not fatal for
            // the listener. Back off briefly so that a persistent error does not spin.
            Err(e) => {
                eprintln!("accept failed: {e}");
                sleep(Duration::from_millis(20)).await;
            }
        }
    }
    let mut echoed = Vec::with_capacity(count);
    for task in tasks {
        echoed.push(task.await??);
    }
    Ok(echoed)
}

/// Sends `MESSAGES` messages on `stream` and checks each echo, then closes cleanly.
async fn talk(mut stream: TcpStream, id: usize) -> io::Result<()> {
    let mut buf = [0u8; 128];
    for m in 0..MESSAGES {
        let msg = format!("client {id} message {m}");
        stream.write_all(msg.as_bytes()).await?;
        let mut got = 0;
        while got < msg.len() {
            let n = stream.read(&mut buf[got..msg.len()]).await?;
            if n == 0 {
                return Err(io::Error::new(io::ErrorKind::UnexpectedEof, format!("client {id}: server closed")));
            }
            got += n;
        }
        if &buf[..got] != msg.as_bytes() {
            return Err(io::Error::other(format!("client {id}: bad echo {:?}", String::from_utf8_lossy(&buf[..got]))));
        }
    }
    stream.shutdown(Shutdown::Write)?;
    if stream.read(&mut buf).await? != 0 {
        return Err(io::Error::other(format!("client {id}: data after EOF")));
    }
    Ok(())
}

/// A fast client: connect, talk, report how long it took.
async fn client(addr: Address, id: usize) -> io::Result<Duration> {
    let started = Instant::now();
    talk(TcpStream::connect(addr).await?, id).await?;
    Ok(started.elapsed())
}

async fn run() -> io::Result<()> {
    let listener = TcpListener::bind(Address::loopback_v4(0))?;
    let addr = listener.local_addr()?;
    println!("echo server on {addr}");
    let server = spawn(accept_loop(listener, FAST_CLIENTS + 1));

    // The slow client connects first (and is accepted first), then stays silent.
    let slow = TcpStream::connect(addr).await?;

    let fast: Vec<_> = (1..=FAST_CLIENTS).map(|id| spawn(client(addr, id))).collect();
    let mut slowest = Duration::ZERO;
    for c in fast {
        slowest = slowest.max(c.await??);
    }
    println!("{FAST_CLIENTS} clients echoed {MESSAGES} messages each while the slow client stayed silent");
    println!("  (slowest of them took {slowest:?})");

    talk(slow, 0).await?;
    println!("slow client: echoed {MESSAGES} messages after waiting");

    let echoed = server.await??;
    let total: usize = echoed.iter().sum();
    println!("server: {} connection tasks finished, {total} bytes echoed", echoed.len());
    if echoed.len() != FAST_CLIENTS + 1 || echoed.contains(&0) {
        return Err(io::Error::other(format!("unexpected per-connection byte counts {echoed:?}")));
    }
    Ok(())
}

fn main() {
    match blitz_io::run(async { timeout(Duration::from_secs(10), run()).await? }) {
        Ok(()) => println!("accept_loop: ok"),
        Err(e) => {
            eprintln!("accept_loop: FAILED: {e}");
            std::process::exit(1);
        }
    }
}
