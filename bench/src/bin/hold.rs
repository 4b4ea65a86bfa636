//! Memory per held connection: one server process, one client process.
//!
//! ```text
//! hold server --rt <blitz|tokio> --conns N
//! hold client --addr 127.0.0.1:PORT --conns N
//! ```
//!
//! The server builds a 2-worker multi-thread runtime of the chosen kind, binds
//! 127.0.0.1:0, samples its own `VmRSS` (the baseline) and prints `READY <addr>`. It then
//! accepts `N` connections; each connection's task reads one 32-byte request, echoes
//! it, and then stays parked in a read until the peer closes (a held, idle connection
//! with a 64-byte read buffer in its task). Once all `N` round trips are done it waits
//! 300 ms, samples `VmRSS` again and prints
//! `HELD rt=<rt> conns=N base_kib=B held_kib=H per_conn_bytes=P`; it exits after every
//! connection has closed.
//!
//! The client (tokio current-thread, the same for both servers) opens the `N`
//! connections in batches of 500, does the round trip on each (verifying the echo),
//! prints `CLIENT_HELD N` and keeps them open until its standard input closes.
//!
//! Driven by `scripts/rss_compare.sh`.

use blitz_io_bench::{raise_nofile, Args};
use std::io::{self, Read, Write};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Request and echo size of the one round trip.
const REQ: usize = 32;

fn status_kib(field: &str) -> u64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    for line in s.lines() {
        if let Some(v) = line.strip_prefix(field).and_then(|r| r.strip_prefix(':')) {
            return v.trim().trim_end_matches("kB").trim().parse().unwrap_or(0);
        }
    }
    0
}

fn say(line: &str) {
    let mut o = io::stdout().lock();
    let _ = writeln!(o, "{line}");
    let _ = o.flush();
}

fn request(conn: usize) -> [u8; REQ] {
    let mut r = [0u8; REQ];
    for (i, b) in r.iter_mut().enumerate() {
        *b = (conn.wrapping_mul(131) ^ i.wrapping_mul(7)) as u8;
    }
    r
}

/// Shared by both servers: counts finished round trips and closed connections.
#[derive(Default)]
struct Counters {
    echoed: AtomicUsize,
    closed: AtomicUsize,
}

/// Waits until `n` round trips are done, settles, prints the `HELD` line.
fn report_when_held(rt: &str, n: usize, base_kib: u64, c: &Counters) {
    while c.echoed.load(Ordering::SeqCst) < n {
        std::thread::sleep(Duration::from_millis(10));
    }
    std::thread::sleep(Duration::from_millis(300));
    let held = status_kib("VmRSS");
    let per = held.saturating_sub(base_kib) as f64 * 1024.0 / n as f64;
    say(&format!("HELD rt={rt} conns={n} base_kib={base_kib} held_kib={held} per_conn_bytes={per:.0}"));
}

fn main() {
    let args = Args::parse();
    let mode = args.get("_0").unwrap_or("").to_string();
    let n: usize = args.num("conns", 10_000);
    let got = raise_nofile(n as u64 + 256);
    if got < n as u64 + 64 {
        eprintln!("hold: RLIMIT_NOFILE is {got}, too low for {n} connections");
        std::process::exit(2);
    }
    match mode.as_str() {
        "server" => {
            let rt = args.str_or("rt", "blitz");
            let counters = Arc::new(Counters::default());
            let r = match rt.as_str() {
                #[cfg(feature = "blitz")]
                "blitz" => bz::serve(n, counters),
                "tokio" => tk::serve(n, counters),
                other => {
                    eprintln!("hold: unknown or not-built runtime {other:?}");
                    std::process::exit(2)
                }
            };
            if let Err(e) = r {
                eprintln!("hold server: {e}");
                std::process::exit(1);
            }
        }
        "client" => {
            let addr = args.str_or("addr", "");
            if let Err(e) = client(&addr, n) {
                eprintln!("hold client: {e}");
                std::process::exit(1);
            }
        }
        _ => {
            eprintln!("usage: hold server --rt <blitz|tokio> --conns N | hold client --addr A --conns N");
            std::process::exit(2);
        }
    }
}

fn client(addr: &str, n: usize) -> io::Result<()> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr: std::net::SocketAddr = addr.parse().map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let streams = rt.block_on(async move {
        let mut held = Vec::with_capacity(n);
        let mut next = 0;
        while next < n {
            let end = (next + 500).min(n);
            let mut batch = Vec::new();
            for c in next..end {
                batch.push(tokio::spawn(async move {
                    let mut s = tokio::net::TcpStream::connect(addr).await?;
                    let req = request(c);
                    s.write_all(&req).await?;
                    let mut got = [0u8; REQ];
                    s.read_exact(&mut got).await?;
                    if got != req {
                        return Err(io::Error::new(io::ErrorKind::InvalidData, format!("conn {c}: bad echo")));
                    }
                    Ok::<_, io::Error>(s)
                }));
            }
            for h in batch {
                held.push(h.await.map_err(io::Error::other)??);
            }
            next = end;
        }
        Ok::<_, io::Error>(held)
    })?;
    say(&format!("CLIENT_HELD {}", streams.len()));
    let mut sink = [0u8; 64];
    while !matches!(io::stdin().read(&mut sink), Ok(0) | Err(_)) {}
    drop(streams);
    drop(rt);
    Ok(())
}

mod tk {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    pub(crate) fn serve(n: usize, c: Arc<Counters>) -> io::Result<()> {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
        let listener = rt.block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))?;
        let base = status_kib("VmRSS");
        say(&format!("READY {}", listener.local_addr()?));
        let c2 = c.clone();
        let acceptor = rt.spawn(async move {
            for _ in 0..n {
                let (mut s, _) = listener.accept().await?;
                let c = c2.clone();
                tokio::spawn(async move {
                    let mut buf = [0u8; 64];
                    let mut got = 0;
                    while got < REQ {
                        match s.read(&mut buf[got..REQ]).await {
                            Ok(0) | Err(_) => return,
                            Ok(k) => got += k,
                        }
                    }
                    if s.write_all(&buf[..REQ]).await.is_err() {
                        return;
                    }
                    c.echoed.fetch_add(1, Ordering::SeqCst);
                    while !matches!(s.read(&mut buf).await, Ok(0) | Err(_)) {}
                    c.closed.fetch_add(1, Ordering::SeqCst);
                });
            }
            Ok::<_, io::Error>(())
        });
        report_when_held("tokio", n, base, &c);
        while c.closed.load(Ordering::SeqCst) < n {
            std::thread::sleep(Duration::from_millis(10));
        }
        rt.block_on(acceptor).map_err(io::Error::other)?
    }
}

#[cfg(feature = "blitz")]
mod bz {
    use super::*;

    pub(crate) fn serve(n: usize, c: Arc<Counters>) -> io::Result<()> {
        let rt = blitz_io::runtime::Builder::new_multi_thread().worker_threads(2).build()?;
        let listener = blitz_io::net::TcpListener::bind(blitz_io::net::Address::loopback_v4(0))?;
        let base = status_kib("VmRSS");
        say(&format!("READY {}", listener.local_addr()?));
        let c2 = c.clone();
        let acceptor = rt.spawn(async move {
            for _ in 0..n {
                let mut s = listener.accept().await?.stream;
                let c = c2.clone();
                blitz_io::task::spawn(async move {
                    let mut buf = [0u8; 64];
                    let mut got = 0;
                    while got < REQ {
                        match s.read(&mut buf[got..REQ]).await {
                            Ok(0) | Err(_) => return,
                            Ok(k) => got += k,
                        }
                    }
                    if s.write_all(&buf[..REQ]).await.is_err() {
                        return;
                    }
                    c.echoed.fetch_add(1, Ordering::SeqCst);
                    while !matches!(s.read(&mut buf).await, Ok(0) | Err(_)) {}
                    c.closed.fetch_add(1, Ordering::SeqCst);
                });
            }
            Ok::<_, io::Error>(())
        });
        report_when_held("blitz", n, base, &c);
        while c.closed.load(Ordering::SeqCst) < n {
            std::thread::sleep(Duration::from_millis(10));
        }
        rt.block_on(acceptor).map_err(io::Error::other)?
    }
}
