//! Benchmark server: one contender, one workload.
//!
//! ```text
//! server --contender <blitz-mt|blitz-ct|tokio-mt|tokio-ct|mio|smol>
//!        --workload <echo|http|udp|unix> [--addr 127.0.0.1:0] [--path /tmp/x.sock]
//!        [--cpu N] [--exit-on-stdin-eof]
//! ```
//! Prints `READY <address or path>` on stdout once it accepts traffic, then serves until
//! killed (or, with `--exit-on-stdin-eof`, until its standard input closes).
//!
//! Every contender has the same shape: one task (or event-loop entry) per connection,
//! TCP_NODELAY on, a 16 KiB read buffer, `read` then `write_all` of what was read (echo),
//! or the shared pipelining-safe parser from `blitz_io_bench::http_process` (http).

use blitz_io_bench::{apply_cpu_arg, raise_nofile, Args};
use std::io::{self, Write};

const BUF: usize = 16 * 1024;

fn ready(what: &str) {
    let mut o = io::stdout().lock();
    let _ = writeln!(o, "READY {what}");
    let _ = o.flush();
}

fn main() {
    let args = Args::parse();
    apply_cpu_arg(&args);
    raise_nofile(20_000);
    let contender = args.str_or("contender", "tokio-mt");
    let workload = args.str_or("workload", "echo");
    let addr = args.str_or("addr", "127.0.0.1:0");
    let path = args.str_or("path", &format!("/tmp/blitz-bench-{}.sock", std::process::id()));
    if args.flag("exit-on-stdin-eof") {
        std::thread::spawn(|| {
            let mut sink = [0u8; 256];
            loop {
                match io::Read::read(&mut io::stdin(), &mut sink) {
                    Ok(0) | Err(_) => std::process::exit(0),
                    Ok(_) => {}
                }
            }
        });
    }
    if workload == "unix" {
        let _ = std::fs::remove_file(&path);
    }
    let cfg = Cfg { workload: workload.clone(), addr, path };
    let r = match contender.as_str() {
        "tokio-mt" => tk::run(true, cfg),
        "tokio-ct" => tk::run(false, cfg),
        "smol" => sm::run(cfg),
        "mio" => mioloop::run(cfg),
        #[cfg(feature = "blitz")]
        "blitz-mt" => bz::run(true, cfg),
        #[cfg(feature = "blitz")]
        "blitz-ct" => bz::run(false, cfg),
        other => {
            eprintln!("server: unknown or not-built contender {other:?} (blitz-* need the `blitz` feature)");
            std::process::exit(2)
        }
    };
    if let Err(e) = r {
        eprintln!("server {contender}/{workload}: {e}");
        std::process::exit(1);
    }
}

pub struct Cfg {
    workload: String,
    addr: String,
    path: String,
}

impl Cfg {
    fn sockaddr(&self) -> io::Result<std::net::SocketAddr> {
        self.addr.parse().map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, format!("--addr {}: {e}", self.addr)))
    }
}

/// Re-issues listen(2) with a backlog of 1024, the backlog blitz-io's listeners use
/// (std, mio, tokio and smol bind with 128). Linux applies a second listen() to an
/// already listening socket as a backlog change.
fn backlog_1024(fd: std::os::fd::RawFd) {
    unsafe {
        libc::listen(fd, 1024);
    }
}

fn bad_workload(w: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, format!("unknown workload {w:?}"))
}

// ---------------------------------------------------------------------------------------
// tokio
// ---------------------------------------------------------------------------------------
mod tk {
    use super::*;
    use blitz_io_bench::{http_process, HttpStep};
    use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

    pub fn run(mt: bool, cfg: Cfg) -> io::Result<()> {
        let rt = if mt {
            tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?
        } else {
            tokio::runtime::Builder::new_current_thread().enable_all().build()?
        };
        rt.block_on(async move {
            match cfg.workload.as_str() {
                "echo" | "http" => {
                    let http = cfg.workload == "http";
                    let l = tokio::net::TcpListener::bind(cfg.sockaddr()?).await?;
                    backlog_1024(std::os::fd::AsRawFd::as_raw_fd(&l));
                    ready(&l.local_addr()?.to_string());
                    loop {
                        let (s, _) = match l.accept().await {
                            Ok(a) => a,
                            Err(_) => {
                                tokio::time::sleep(std::time::Duration::from_millis(1)).await;
                                continue;
                            }
                        };
                        tokio::spawn(async move {
                            let _ = s.set_nodelay(true);
                            let _ = serve(s, http).await;
                        });
                    }
                }
                "unix" => {
                    let l = tokio::net::UnixListener::bind(&cfg.path)?;
                    backlog_1024(std::os::fd::AsRawFd::as_raw_fd(&l));
                    ready(&cfg.path);
                    loop {
                        let (s, _) = match l.accept().await {
                            Ok(a) => a,
                            Err(_) => {
                                tokio::time::sleep(std::time::Duration::from_millis(1)).await;
                                continue;
                            }
                        };
                        tokio::spawn(async move {
                            let _ = serve(s, false).await;
                        });
                    }
                }
                "udp" => {
                    let sock = tokio::net::UdpSocket::bind(cfg.sockaddr()?).await?;
                    ready(&sock.local_addr()?.to_string());
                    let mut buf = vec![0u8; 65536];
                    loop {
                        let (n, peer) = match sock.recv_from(&mut buf).await {
                            Ok(r) => r,
                            Err(_) => continue,
                        };
                        let _ = sock.send_to(&buf[..n], peer).await;
                    }
                }
                w => Err(bad_workload(w)),
            }
        })
    }

    async fn serve<S: AsyncRead + AsyncWrite + Unpin>(mut s: S, http: bool) -> io::Result<()> {
        let mut buf = vec![0u8; BUF];
        if !http {
            loop {
                let n = s.read(&mut buf).await?;
                if n == 0 {
                    return Ok(());
                }
                s.write_all(&buf[..n]).await?;
            }
        }
        let mut inbuf = Vec::with_capacity(4096);
        let mut out = Vec::with_capacity(4096);
        loop {
            let n = s.read(&mut buf).await?;
            if n == 0 {
                return Ok(());
            }
            inbuf.extend_from_slice(&buf[..n]);
            if http_process(&mut inbuf, &mut out) == HttpStep::Bad {
                return Ok(());
            }
            if !out.is_empty() {
                s.write_all(&out).await?;
                out.clear();
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// smol (async-executor + async-io), single-threaded: the executor runs on the main
// thread inside async_io::block_on, which also drives the reactor.
// ---------------------------------------------------------------------------------------
mod sm {
    use super::*;
    use async_executor::LocalExecutor;
    use async_io::Async;
    use blitz_io_bench::{http_process, HttpStep};
    use futures_lite::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

    pub fn run(cfg: Cfg) -> io::Result<()> {
        let ex: &'static LocalExecutor<'static> = Box::leak(Box::new(LocalExecutor::new()));
        async_io::block_on(ex.run(async move {
            match cfg.workload.as_str() {
                "echo" | "http" => {
                    let http = cfg.workload == "http";
                    let l = Async::<std::net::TcpListener>::bind(cfg.sockaddr()?)?;
                    backlog_1024(std::os::fd::AsRawFd::as_raw_fd(l.get_ref()));
                    ready(&l.get_ref().local_addr()?.to_string());
                    loop {
                        let (s, _) = match l.accept().await {
                            Ok(a) => a,
                            Err(_) => {
                                async_io::Timer::after(std::time::Duration::from_millis(1)).await;
                                continue;
                            }
                        };
                        let _ = s.get_ref().set_nodelay(true);
                        ex.spawn(async move {
                            let _ = serve(s, http).await;
                        })
                        .detach();
                    }
                }
                "unix" => {
                    let l = Async::<std::os::unix::net::UnixListener>::bind(&cfg.path)?;
                    backlog_1024(std::os::fd::AsRawFd::as_raw_fd(l.get_ref()));
                    ready(&cfg.path);
                    loop {
                        let (s, _) = match l.accept().await {
                            Ok(a) => a,
                            Err(_) => {
                                async_io::Timer::after(std::time::Duration::from_millis(1)).await;
                                continue;
                            }
                        };
                        ex.spawn(async move {
                            let _ = serve(s, false).await;
                        })
                        .detach();
                    }
                }
                "udp" => {
                    let sock = Async::<std::net::UdpSocket>::bind(cfg.sockaddr()?)?;
                    ready(&sock.get_ref().local_addr()?.to_string());
                    let mut buf = vec![0u8; 65536];
                    loop {
                        let (n, peer) = match sock.recv_from(&mut buf).await {
                            Ok(r) => r,
                            Err(_) => continue,
                        };
                        let _ = sock.send_to(&buf[..n], peer).await;
                    }
                }
                w => Err(bad_workload(w)),
            }
        }))
    }

    async fn serve<S: AsyncRead + AsyncWrite + Unpin>(mut s: S, http: bool) -> io::Result<()> {
        let mut buf = vec![0u8; BUF];
        if !http {
            loop {
                let n = s.read(&mut buf).await?;
                if n == 0 {
                    return Ok(());
                }
                s.write_all(&buf[..n]).await?;
            }
        }
        let mut inbuf = Vec::with_capacity(4096);
        let mut out = Vec::with_capacity(4096);
        loop {
            let n = s.read(&mut buf).await?;
            if n == 0 {
                return Ok(());
            }
            inbuf.extend_from_slice(&buf[..n]);
            if http_process(&mut inbuf, &mut out) == HttpStep::Bad {
                return Ok(());
            }
            if !out.is_empty() {
                s.write_all(&out).await?;
                out.clear();
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// blitz-io (written against /work/shared/API.md)
// ---------------------------------------------------------------------------------------
#[cfg(feature = "blitz")]
mod bz {
    use super::*;
    use blitz_io_bench::{http_process, HttpStep};

    /// One connection's loop; a macro because TcpStream and UnixStream share method
    /// names but (per API.md) no trait.
    macro_rules! serve {
        ($s:ident, $http:expr) => {
            (async {
                let mut buf = vec![0u8; BUF];
                if !$http {
                    loop {
                        let n = $s.read(&mut buf).await?;
                        if n == 0 {
                            break;
                        }
                        $s.write_all(&buf[..n]).await?;
                    }
                } else {
                    let mut inbuf: Vec<u8> = Vec::with_capacity(4096);
                    let mut out: Vec<u8> = Vec::with_capacity(4096);
                    loop {
                        let n = $s.read(&mut buf).await?;
                        if n == 0 {
                            break;
                        }
                        inbuf.extend_from_slice(&buf[..n]);
                        if http_process(&mut inbuf, &mut out) == HttpStep::Bad {
                            break;
                        }
                        if !out.is_empty() {
                            $s.write_all(&out).await?;
                            out.clear();
                        }
                    }
                }
                Ok::<(), io::Error>(())
            })
            .await
        };
    }

    pub fn run(mt: bool, cfg: Cfg) -> io::Result<()> {
        let mut b = if mt {
            let mut b = blitz_io::runtime::Builder::new_multi_thread();
            b.worker_threads(2);
            b
        } else {
            blitz_io::runtime::Builder::new_current_thread()
        };
        // Experiments only (the report runs the default): BLITZ_IDLE_SPIN_US=N sets
        // `Builder::idle_spin`.
        if let Some(us) = std::env::var("BLITZ_IDLE_SPIN_US").ok().and_then(|v| v.parse().ok()) {
            b.idle_spin(std::time::Duration::from_micros(us));
        }
        let rt = b.build()?;
        rt.block_on(async move {
            match cfg.workload.as_str() {
                "echo" | "http" => {
                    let http = cfg.workload == "http";
                    let l = blitz_io::net::TcpListener::bind(cfg.sockaddr()?)?;
                    ready(&l.local_addr()?.to_string());
                    loop {
                        let a = match l.accept().await {
                            Ok(a) => a,
                            Err(_) => {
                                blitz_io::time::sleep(std::time::Duration::from_millis(1)).await;
                                continue;
                            }
                        };
                        blitz_io::task::spawn(async move {
                            let mut s = a.stream;
                            let _ = s.set_nodelay(true);
                            let _ = serve!(s, http);
                        });
                    }
                }
                "unix" => {
                    let l = blitz_io::net::UnixListener::bind(&cfg.path)?;
                    ready(&cfg.path);
                    loop {
                        let a = match l.accept().await {
                            Ok(a) => a,
                            Err(_) => {
                                blitz_io::time::sleep(std::time::Duration::from_millis(1)).await;
                                continue;
                            }
                        };
                        blitz_io::task::spawn(async move {
                            let mut s = a.stream;
                            let _ = serve!(s, false);
                        });
                    }
                }
                "udp" => {
                    let sock = blitz_io::net::UdpSocket::bind(cfg.sockaddr()?)?;
                    ready(&sock.local_addr()?.to_string());
                    let mut buf = vec![0u8; 65536];
                    loop {
                        let r = match sock.recv_from(&mut buf).await {
                            Ok(r) => r,
                            Err(_) => continue,
                        };
                        let _ = sock.send_to(&buf[..r.len], r.addr).await;
                    }
                }
                w => Err(bad_workload(w)),
            }
        })
    }
}

// ---------------------------------------------------------------------------------------
// Hand-written single-threaded mio event loop: the practical ceiling.
// ---------------------------------------------------------------------------------------
mod mioloop {
    use super::*;
    use blitz_io_bench::{http_process, HttpStep};
    use mio::net::{TcpListener, TcpStream, UdpSocket, UnixListener, UnixStream};
    use mio::{Events, Interest, Poll, Token};
    use std::collections::VecDeque;
    use std::io::Read;

    enum Stream {
        Tcp(TcpStream),
        Unix(UnixStream),
    }
    impl Stream {
        fn read(&mut self, b: &mut [u8]) -> io::Result<usize> {
            match self {
                Stream::Tcp(s) => s.read(b),
                Stream::Unix(s) => s.read(b),
            }
        }
        fn write(&mut self, b: &[u8]) -> io::Result<usize> {
            match self {
                Stream::Tcp(s) => s.write(b),
                Stream::Unix(s) => s.write(b),
            }
        }
        fn source(&mut self) -> &mut dyn mio::event::Source {
            match self {
                Stream::Tcp(s) => s,
                Stream::Unix(s) => s,
            }
        }
    }

    struct Conn {
        s: Stream,
        inbuf: Vec<u8>,
        out: Vec<u8>,
        out_pos: usize,
    }

    enum Flush {
        Done,
        Pending,
        Close,
    }

    fn flush(c: &mut Conn) -> Flush {
        while c.out_pos < c.out.len() {
            match c.s.write(&c.out[c.out_pos..]) {
                Ok(0) => return Flush::Close,
                Ok(n) => c.out_pos += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Flush::Pending,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return Flush::Close,
            }
        }
        c.out.clear();
        c.out_pos = 0;
        Flush::Done
    }

    /// Returns true when the connection must be closed.
    fn handle(c: &mut Conn, rbuf: &mut [u8], http: bool) -> bool {
        match flush(c) {
            Flush::Done => {}
            Flush::Pending => return false,
            Flush::Close => return true,
        }
        loop {
            let n = match c.s.read(rbuf) {
                Ok(0) => return true,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return false,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => return true,
            };
            if http {
                c.inbuf.extend_from_slice(&rbuf[..n]);
                if http_process(&mut c.inbuf, &mut c.out) == HttpStep::Bad {
                    return true;
                }
            } else {
                // write straight from the read buffer; keep only what did not fit
                let mut w = 0;
                while w < n {
                    match c.s.write(&rbuf[w..n]) {
                        Ok(0) => return true,
                        Ok(k) => w += k,
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                        Err(_) => return true,
                    }
                }
                if w < n {
                    c.out.extend_from_slice(&rbuf[w..n]);
                }
            }
            match flush(c) {
                Flush::Done => {}
                // backpressure: stop reading; the WRITABLE edge brings us back
                Flush::Pending => return false,
                Flush::Close => return true,
            }
        }
    }

    enum Listener {
        Tcp(TcpListener),
        Unix(UnixListener),
    }

    pub fn run(cfg: Cfg) -> io::Result<()> {
        match cfg.workload.as_str() {
            "echo" | "http" => {
                let l = TcpListener::bind(cfg.sockaddr()?)?;
                backlog_1024(std::os::fd::AsRawFd::as_raw_fd(&l));
                ready(&l.local_addr()?.to_string());
                stream_loop(Listener::Tcp(l), cfg.workload == "http")
            }
            "unix" => {
                let l = UnixListener::bind(&cfg.path)?;
                backlog_1024(std::os::fd::AsRawFd::as_raw_fd(&l));
                ready(&cfg.path);
                stream_loop(Listener::Unix(l), false)
            }
            "udp" => udp_loop(UdpSocket::bind(cfg.sockaddr()?)?),
            w => Err(bad_workload(w)),
        }
    }

    fn stream_loop(mut l: Listener, http: bool) -> io::Result<()> {
        const LISTENER: Token = Token(usize::MAX);
        let mut poll = Poll::new()?;
        let mut events = Events::with_capacity(1024);
        match &mut l {
            Listener::Tcp(l) => poll.registry().register(l, LISTENER, Interest::READABLE)?,
            Listener::Unix(l) => poll.registry().register(l, LISTENER, Interest::READABLE)?,
        }
        let mut conns: Vec<Option<Conn>> = Vec::new();
        let mut free: Vec<usize> = Vec::new();
        let mut rbuf = vec![0u8; BUF];
        let mut accept_paused_until: Option<std::time::Instant> = None;
        loop {
            let timeout = accept_paused_until.map(|t| t.saturating_duration_since(std::time::Instant::now()));
            if let Err(e) = poll.poll(&mut events, timeout) {
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(e);
            }
            let mut accept_now = false;
            if let Some(t) = accept_paused_until {
                if std::time::Instant::now() >= t {
                    accept_paused_until = None;
                    accept_now = true;
                }
            }
            for ev in events.iter() {
                if ev.token() == LISTENER {
                    accept_now = true;
                    continue;
                }
                let idx = ev.token().0;
                let close = match conns.get_mut(idx).and_then(|c| c.as_mut()) {
                    Some(c) => handle(c, &mut rbuf, http),
                    None => false,
                };
                if close {
                    if let Some(mut c) = conns[idx].take() {
                        let _ = poll.registry().deregister(c.s.source());
                    }
                    free.push(idx);
                }
            }
            if accept_now && accept_paused_until.is_none() {
                loop {
                    let r = match &mut l {
                        Listener::Tcp(l) => l.accept().map(|(s, _)| {
                            let _ = s.set_nodelay(true);
                            Stream::Tcp(s)
                        }),
                        Listener::Unix(l) => l.accept().map(|(s, _)| Stream::Unix(s)),
                    };
                    let s = match r {
                        Ok(s) => s,
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                        Err(_) => {
                            // EMFILE and friends: back off instead of spinning
                            accept_paused_until =
                                Some(std::time::Instant::now() + std::time::Duration::from_millis(10));
                            break;
                        }
                    };
                    let idx = free.pop().unwrap_or_else(|| {
                        conns.push(None);
                        conns.len() - 1
                    });
                    let mut c = Conn { s, inbuf: Vec::new(), out: Vec::new(), out_pos: 0 };
                    poll.registry().register(c.s.source(), Token(idx), Interest::READABLE | Interest::WRITABLE)?;
                    // data may already be waiting
                    if handle(&mut c, &mut rbuf, http) {
                        let _ = poll.registry().deregister(c.s.source());
                        free.push(idx);
                    } else {
                        conns[idx] = Some(c);
                    }
                }
            }
        }
    }

    fn udp_loop(mut sock: UdpSocket) -> io::Result<()> {
        ready(&sock.local_addr()?.to_string());
        let mut poll = Poll::new()?;
        let mut events = Events::with_capacity(64);
        poll.registry().register(&mut sock, Token(0), Interest::READABLE | Interest::WRITABLE)?;
        let mut buf = vec![0u8; 65536];
        let mut pending: VecDeque<(Vec<u8>, std::net::SocketAddr)> = VecDeque::new();
        loop {
            if let Err(e) = poll.poll(&mut events, None) {
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(e);
            }
            while let Some((d, a)) = pending.front() {
                match sock.send_to(d, *a) {
                    Ok(_) => {
                        pending.pop_front();
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(_) => {
                        pending.pop_front();
                    }
                }
            }
            loop {
                match sock.recv_from(&mut buf) {
                    Ok((n, a)) => {
                        if !pending.is_empty() {
                            if pending.len() < 4096 {
                                pending.push_back((buf[..n].to_vec(), a));
                            }
                            continue;
                        }
                        match sock.send_to(&buf[..n], a) {
                            Ok(_) => {}
                            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                                pending.push_back((buf[..n].to_vec(), a))
                            }
                            Err(_) => {}
                        }
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(_) => continue,
                }
            }
        }
    }
}
