//! A production-tuned TCP listener built with [`TcpSocket`]: the seed's "Production
//! Socket Setup", as written there.
//!
//! The example builds the listener, reads every option back to prove it took effect,
//! serves one request-response exchange on it, then shows why `SO_REUSEADDR` is there:
//! after the server closed a connection first (leaving it in `TIME_WAIT`) and dropped
//! the listener, a new listener binds the very same port at once. Exits non-zero if any
//! check fails. Run: `cargo run --example production_listener`.

use std::io;
use std::net::Shutdown;
use std::time::Duration;

use blitz_io::net::{Address, Keepalive, TcpListener, TcpSocket, TcpStream};
use blitz_io::time::timeout;

/// The keepalive policy: first probe after 60 s idle, then every 10 s, give up after 5.
const KEEPALIVE: Keepalive =
    Keepalive { time: Some(Duration::from_secs(60)), interval: Some(Duration::from_secs(10)), retries: Some(5) };

/// Configures a production-ready TCP listener with tuned socket options, appropriate for
/// a low-latency HTTP or RPC server. Listening sockets pass these options on to the
/// connections they accept (on Linux).
fn create_production_listener(bind_addr: Address) -> io::Result<TcpListener> {
    let socket = TcpSocket::new_v4()?;
    // (On error, `socket` is dropped and closed: Rust's `errdefer`.)

    // Allow rapid restart without TIME_WAIT blocking the port.
    socket.set_reuse_addr(true)?;

    // Disable Nagle's algorithm: send small packets immediately. Critical for
    // request-response protocols where latency matters more than throughput.
    socket.set_nodelay(true)?;

    // Size the kernel buffers for the expected workload: 256 KiB to absorb bursts of
    // outgoing data, 128 KiB for request payloads.
    socket.set_send_buffer_size(256 * 1024)?;
    socket.set_recv_buffer_size(128 * 1024)?;

    // Detect dead peers (crashed host, severed network) instead of leaking the
    // connection forever.
    socket.set_keepalive(Some(KEEPALIVE))?;

    // On close, allow up to 5 s for buffered data to drain before the kernel resets.
    socket.set_linger(Some(Duration::from_secs(5)))?;

    check_options(&socket)?;

    // Backlog of 1024 completed handshakes waiting for `accept`.
    socket.listen(bind_addr, 1024)
}

fn check(what: &str, ok: bool, shown: String) -> io::Result<()> {
    println!("  {what:<16} {shown}");
    if ok {
        Ok(())
    } else {
        Err(io::Error::other(format!("option {what} did not take effect: {shown}")))
    }
}

/// Reads the options back from the socket before it becomes a listener.
fn check_options(socket: &TcpSocket) -> io::Result<()> {
    println!("listener socket options:");
    check("SO_REUSEADDR", socket.reuse_addr()?, format!("{}", socket.reuse_addr()?))?;
    check("TCP_NODELAY", socket.nodelay()?, format!("{}", socket.nodelay()?))?;
    // The kernel may round the sizes (Linux doubles them for its bookkeeping).
    let snd = socket.send_buffer_size()?;
    check("SO_SNDBUF", snd >= 256 * 1024, format!("{snd} bytes"))?;
    let rcv = socket.recv_buffer_size()?;
    check("SO_RCVBUF", rcv >= 128 * 1024, format!("{rcv} bytes"))?;
    let ka = socket.keepalive()?;
    check("SO_KEEPALIVE", ka == Some(KEEPALIVE), format!("{ka:?}"))?;
    let linger = socket.linger()?;
    check("SO_LINGER", linger == Some(Duration::from_secs(5)), format!("{linger:?}"))?;
    Ok(())
}

/// One exchange: the server answers `ping` with `pong` and closes first.
async fn serve_one(listener: &TcpListener) -> io::Result<()> {
    let addr = listener.local_addr()?;
    let client = blitz_io::task::spawn(async move {
        let mut stream = TcpStream::connect(addr).await?;
        stream.write_all(b"ping").await?;
        let mut reply = Vec::new();
        let mut buf = [0u8; 64];
        loop {
            let n = stream.read(&mut buf).await?;
            if n == 0 {
                break;
            }
            reply.extend_from_slice(&buf[..n]);
        }
        Ok::<Vec<u8>, io::Error>(reply)
    });

    let conn = listener.accept().await?;
    let mut stream = conn.stream;
    println!("accepted {} (nodelay inherited: {})", conn.peer_addr, stream.nodelay()?);
    if cfg!(target_os = "linux") && !stream.nodelay()? {
        return Err(io::Error::other("accepted connection did not inherit TCP_NODELAY"));
    }
    let mut buf = [0u8; 4];
    let mut got = 0;
    while got < 4 {
        let n = stream.read(&mut buf[got..]).await?;
        if n == 0 {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "client closed early"));
        }
        got += n;
    }
    if &buf != b"ping" {
        return Err(io::Error::other(format!("expected ping, got {buf:?}")));
    }
    stream.write_all(b"pong").await?;
    // The server closes first, so this side of the connection goes to TIME_WAIT.
    stream.shutdown(Shutdown::Write)?;
    drop(stream);

    let reply = client.await??;
    if reply != b"pong" {
        return Err(io::Error::other(format!("expected pong, got {reply:?}")));
    }
    println!("exchange: client sent ping, server answered pong and closed first");
    Ok(())
}

async fn run() -> io::Result<()> {
    let listener = create_production_listener(Address::loopback_v4(0))?;
    let addr = listener.local_addr()?;
    println!("listening on {addr}");
    serve_one(&listener).await?;
    drop(listener);

    // "Rapid restart": the old connection is in TIME_WAIT on this port, and the new
    // listener binds it anyway thanks to SO_REUSEADDR.
    let restarted = create_production_listener(addr)?;
    println!("restarted on {} (same port, despite TIME_WAIT)", restarted.local_addr()?);
    serve_one(&restarted).await
}

fn main() {
    match blitz_io::run(async { timeout(Duration::from_secs(10), run()).await? }) {
        Ok(()) => println!("production_listener: ok"),
        Err(e) => {
            eprintln!("production_listener: FAILED: {e}");
            std::process::exit(1);
        }
    }
}
