//! Load generator: its own process, no async runtime under test. Connections are driven
//! by one thread: a blocking loop when there is a single connection (2 system calls per
//! round trip), otherwise a mio edge-triggered event loop. Every echoed byte is verified.
//!
//! ```text
//! loadgen --workload <echo|unix|http|udp|churn|idle> [--addr 127.0.0.1:PORT] [--path SOCK]
//!         [--conns N] [--size BYTES] [--duration SECS] [--warmup SECS] [--pipeline K]
//!         [--server-pid PID] [--cpu N] [--mode auto|blocking|poll] [--hold SECS]
//! loadgen --workload <echo|unix|http|udp|churn> --targets A,B,... [--server-pids P,Q,...]
//!         [--slice SECS] [--ramp SECS] [--conns N] [--size BYTES] [--duration SECS] [--warmup SECS]
//! ```
//! Prints one JSON line: throughput (`rps`: round trips, requests or connections per
//! second), latency percentiles in µs from an HdrHistogram, bytes verified, errors, and
//! the CPU time used by the load generator and (with `--server-pid`) by the server over
//! the measured interval.
//!
//! With `--targets` (one address, or socket path for `unix`, per server) it runs the
//! alternating-slices mode (`sliced_bench`) and prints one JSON line per target.
//!
//! `idle` opens `--conns` connections, does one verified round trip on each, prints its
//! JSON line and holds them open until stdin closes (or `--hold` seconds pass).

use blitz_io_bench::{
    apply_cpu_arg, pattern_byte, proc_cpu_secs, raise_nofile, self_cpu_secs, set_linger_zero, Args, Json, HTTP_REQUEST,
    HTTP_RESPONSE,
};
use hdrhistogram::Histogram;
use mio::{Events, Interest, Poll, Token};
use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

#[derive(Clone)]
struct Opts {
    workload: String,
    addr: Option<SocketAddr>,
    path: String,
    conns: usize,
    size: usize,
    duration: Duration,
    warmup: Duration,
    pipeline: usize,
    server_pid: Option<u32>,
    mode: String,
    hold: Duration,
    /// Alternating-slices mode: one target per server, see `sliced_bench`.
    targets: Vec<Target>,
    slice: Duration,
    ramp: Duration,
}

fn main() {
    let a = Args::parse();
    apply_cpu_arg(&a);
    let o = Opts {
        workload: a.str_or("workload", "echo"),
        addr: a.get("addr").map(|s| s.parse().expect("--addr must be ip:port")),
        path: a.str_or("path", ""),
        conns: a.num("conns", 1usize).max(1),
        size: a.num("size", 64usize).max(1),
        duration: Duration::from_secs_f64(a.num("duration", 5.0f64)),
        warmup: Duration::from_secs_f64(a.num("warmup", 1.0f64)),
        pipeline: a.num("pipeline", 1usize).max(1),
        server_pid: a.get("server-pid").and_then(|s| s.parse().ok()),
        mode: a.str_or("mode", "auto"),
        hold: Duration::from_secs_f64(a.num("hold", 120.0f64)),
        targets: parse_targets(&a),
        slice: Duration::from_secs_f64(a.num("slice", 0.05f64).max(0.01)),
        ramp: Duration::from_secs_f64(a.num("ramp", 0.0f64).max(0.0)),
    };
    raise_nofile((o.conns as u64 * o.targets.len().max(1) as u64 + 512).max(1024));
    if !o.targets.is_empty() {
        let r = if o.workload == "churn" { churn_sliced(&o) } else { sliced_bench(&o) };
        match r {
            Ok(v) => {
                for j in v {
                    println!("{}", j.to_line());
                }
            }
            Err(e) => {
                println!("{}", Json::new().str("workload", o.workload.clone()).str("error", e.to_string()).to_line());
                std::process::exit(1);
            }
        }
        return;
    }
    let r = match o.workload.as_str() {
        "echo" | "http" | "unix" => stream_bench(&o),
        "udp" => udp_bench(&o),
        "churn" => churn_bench(&o),
        "idle" => idle(&o),
        w => Err(io::Error::new(io::ErrorKind::InvalidInput, format!("unknown workload {w}"))),
    };
    match r {
        Ok(j) => println!("{}", j.to_line()),
        Err(e) => {
            println!("{}", Json::new().str("workload", o.workload.clone()).str("error", e.to_string()).to_line());
            std::process::exit(1);
        }
    }
}

fn need_addr(o: &Opts) -> io::Result<SocketAddr> {
    o.addr.ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "--addr is required"))
}

// ---------------------------------------------------------------------------------------
// Measurement bookkeeping shared by every workload.
// ---------------------------------------------------------------------------------------

struct Meter {
    hist: Histogram<u64>,
    start: Instant,
    warm_end: Instant,
    end: Instant,
    measuring: bool,
    count: u64,
    total_count: u64,
    bytes: u64,
    t_measure: Instant,
    cpu0: f64,
    srv_cpu0: Option<f64>,
    server_pid: Option<u32>,
}

impl Meter {
    fn new(o: &Opts) -> Meter {
        let now = Instant::now();
        let mut m = Meter {
            hist: Histogram::new_with_bounds(1, 120_000_000_000, 3).unwrap(),
            start: now,
            warm_end: now + o.warmup,
            end: now + o.warmup + o.duration,
            measuring: false,
            count: 0,
            total_count: 0,
            bytes: 0,
            t_measure: now,
            cpu0: 0.0,
            srv_cpu0: None,
            server_pid: o.server_pid,
        };
        if o.warmup.is_zero() {
            m.begin_measure(now);
        }
        m
    }
    fn begin_measure(&mut self, now: Instant) {
        self.measuring = true;
        self.hist.reset();
        self.count = 0;
        self.bytes = 0;
        self.t_measure = now;
        self.cpu0 = self_cpu_secs();
        self.srv_cpu0 = self.server_pid.and_then(proc_cpu_secs);
    }
    /// Checks the phase boundaries; returns false once the run is over.
    #[inline]
    fn tick(&mut self, now: Instant) -> bool {
        if !self.measuring && now >= self.warm_end {
            self.begin_measure(now);
        }
        now < self.end
    }
    #[inline]
    fn record(&mut self, lat: Duration, bytes: u64) {
        self.total_count += 1;
        if self.measuring {
            self.count += 1;
            self.bytes += bytes;
            let _ = self.hist.record((lat.as_nanos() as u64).max(1));
        }
    }
    fn poll_timeout(&self, now: Instant) -> Duration {
        let next = if self.measuring { self.end } else { self.warm_end };
        next.saturating_duration_since(now).min(Duration::from_millis(50))
    }
    fn finish(&self, o: &Opts, mode: &str) -> Json {
        let now = Instant::now();
        let dur = now.duration_since(self.t_measure).as_secs_f64().max(1e-9);
        let cpu = self_cpu_secs() - self.cpu0;
        let srv = match (self.srv_cpu0, self.server_pid.and_then(proc_cpu_secs)) {
            (Some(a), Some(b)) => Some(b - a),
            _ => None,
        };
        let _ = self.start;
        result_json(o, mode, dur, self.count, self.total_count, self.bytes, &self.hist, cpu, srv)
    }
}

/// The JSON line of one measurement (every workload and mode prints these fields).
#[allow(clippy::too_many_arguments)]
fn result_json(
    o: &Opts,
    mode: &str,
    dur: f64,
    count: u64,
    total_count: u64,
    bytes: u64,
    hist: &Histogram<u64>,
    cpu: f64,
    srv: Option<f64>,
) -> Json {
    let us = |q: f64| hist.value_at_quantile(q) as f64 / 1000.0;
    let per_rt = |secs: f64| if count > 0 { secs * 1e6 / count as f64 } else { 0.0 };
    let mut j = Json::new()
        .str("workload", o.workload.clone())
        .num("conns", o.conns as f64)
        .num("size", o.size as f64)
        .str("mode", mode)
        .num("duration_s", dur)
        .num("round_trips", count as f64)
        .num("total_round_trips", total_count as f64)
        .num("rps", count as f64 / dur)
        .num("mb_s", bytes as f64 / dur / 1e6)
        .num("p50_us", us(0.5))
        .num("p90_us", us(0.9))
        .num("p99_us", us(0.99))
        .num("p999_us", us(0.999))
        .num("max_us", hist.max() as f64 / 1000.0)
        .num("mean_us", hist.mean() / 1000.0)
        .num("bytes_verified", bytes as f64)
        .num("loadgen_cpu_s", cpu)
        .num("loadgen_cpu_us_per_rt", per_rt(cpu));
    if let Some(s) = srv {
        j = j.num("server_cpu_s", s).num("server_cpu_us_per_rt", per_rt(s));
    }
    j
}

// ---------------------------------------------------------------------------------------
// Streams (TCP or Unix) and the request/expected-reply pairs.
// ---------------------------------------------------------------------------------------

enum Stream {
    Tcp(mio::net::TcpStream),
    Unix(mio::net::UnixStream),
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
    fn fd(&self) -> i32 {
        match self {
            Stream::Tcp(s) => s.as_raw_fd(),
            Stream::Unix(s) => s.as_raw_fd(),
        }
    }
}

/// Blocking connect (TCP with TCP_NODELAY, or Unix), returned as a std stream.
enum StdStream {
    Tcp(std::net::TcpStream),
    Unix(std::os::unix::net::UnixStream),
}

fn connect_std(o: &Opts) -> io::Result<StdStream> {
    if o.workload == "unix" {
        Ok(StdStream::Unix(std::os::unix::net::UnixStream::connect(&o.path)?))
    } else {
        let s = std::net::TcpStream::connect_timeout(&need_addr(o)?, Duration::from_secs(5))?;
        s.set_nodelay(true)?;
        Ok(StdStream::Tcp(s))
    }
}

impl StdStream {
    fn into_mio(self) -> io::Result<Stream> {
        Ok(match self {
            StdStream::Tcp(s) => {
                s.set_nonblocking(true)?;
                Stream::Tcp(mio::net::TcpStream::from_std(s))
            }
            StdStream::Unix(s) => {
                s.set_nonblocking(true)?;
                Stream::Unix(mio::net::UnixStream::from_std(s))
            }
        })
    }
    fn rw(&mut self) -> (&mut dyn Read, i32) {
        match self {
            StdStream::Tcp(s) => {
                let fd = s.as_raw_fd();
                (s as &mut dyn Read, fd)
            }
            StdStream::Unix(s) => {
                let fd = s.as_raw_fd();
                (s as &mut dyn Read, fd)
            }
        }
    }
    fn write_all(&mut self, b: &[u8]) -> io::Result<()> {
        match self {
            StdStream::Tcp(s) => s.write_all(b),
            StdStream::Unix(s) => s.write_all(b),
        }
    }
    fn set_read_timeout(&self, d: Duration) -> io::Result<()> {
        match self {
            StdStream::Tcp(s) => s.set_read_timeout(Some(d)),
            StdStream::Unix(s) => s.set_read_timeout(Some(d)),
        }
    }
}

/// Opens `o.conns` connections in batches of 64 (below the 128-entry accept backlog that
/// std, mio, tokio and smol listeners use) and completes one verified round trip on each
/// batch before opening the next, so the server never has a long accept queue (an
/// overflowing queue drops SYNs and stalls a blocking connect for a 1 s retransmit).
fn connect_batched(o: &Opts, proto: &Proto) -> io::Result<Vec<StdStream>> {
    let mut v: Vec<StdStream> = Vec::with_capacity(o.conns);
    let mut buf = vec![0u8; 65536];
    while v.len() < o.conns {
        let first = v.len();
        for _ in 0..64.min(o.conns - v.len()) {
            v.push(connect_std(o)?);
        }
        let (req, exp) = (proto.req(0).to_vec(), proto.exp(0).to_vec());
        for s in v[first..].iter_mut() {
            s.write_all(&req)?;
        }
        for s in v[first..].iter_mut() {
            s.set_read_timeout(Duration::from_secs(5))?;
            let mut got = 0;
            while got < exp.len() {
                let (r, _) = s.rw();
                let n = r.read(&mut buf[..(exp.len() - got).min(65536)])?;
                if n == 0 || buf[..n] != exp[got..got + n] {
                    return Err(io::Error::new(io::ErrorKind::InvalidData, "bad echo during connection setup"));
                }
                got += n;
            }
        }
    }
    Ok(v)
}

/// What one connection sends and expects back for message number `k`.
struct Proto {
    http: bool,
    size: usize,
    pattern: Vec<u8>,
    http_req: Vec<u8>,
    http_resp: Vec<u8>,
}

impl Proto {
    fn new(o: &Opts) -> Proto {
        let http = o.workload == "http";
        Proto {
            http,
            size: o.size,
            pattern: (0..o.size + 256).map(pattern_byte).collect(),
            http_req: HTTP_REQUEST.repeat(o.pipeline),
            http_resp: HTTP_RESPONSE.repeat(o.pipeline),
        }
    }
    #[inline]
    fn off(conn: usize, k: u64) -> usize {
        ((conn as u64 * 17 + k * 7) % 251) as usize
    }
    #[inline]
    fn req(&self, off: usize) -> &[u8] {
        if self.http {
            &self.http_req
        } else {
            &self.pattern[off..off + self.size]
        }
    }
    #[inline]
    fn exp(&self, off: usize) -> &[u8] {
        if self.http {
            &self.http_resp
        } else {
            &self.pattern[off..off + self.size]
        }
    }
    /// Requests per round trip (pipelined HTTP counts each request).
    fn per_rt(&self, pipeline: usize) -> u64 {
        if self.http {
            pipeline as u64
        } else {
            1
        }
    }
}

/// One connection of the poll loop.
struct Conn {
    s: Stream,
    /// Message number, and the pattern offset of the message in flight.
    k: u64,
    off: usize,
    sent: usize,
    got: usize,
    t0: Instant,
    dead: bool,
    /// A request is outstanding (false once a reply completes while not running).
    busy: bool,
}

impl Conn {
    fn new(s: Stream, i: usize) -> Conn {
        Conn { s, k: 0, off: Proto::off(i, 0), sent: 0, got: 0, t0: Instant::now(), dead: false, busy: true }
    }
}

/// Where completed round trips go.
trait Sink {
    fn record(&mut self, lat: Duration, bytes: u64);
}

impl Sink for Meter {
    fn record(&mut self, lat: Duration, bytes: u64) {
        Meter::record(self, lat, bytes)
    }
}

/// Drives connection `i` as far as it goes without blocking; false if it failed.
///
/// Edge-triggered, ping-pong: once a reply is complete and the next request is fully
/// written, the socket cannot hold more reply bytes yet (the server has not seen the
/// request), and the reply's arrival raises a new edge; so the read that would only
/// return EAGAIN is skipped (2 system calls per round trip plus a share of epoll_wait).
/// With `running` false a completed reply starts no new request (`busy` becomes false).
#[allow(clippy::too_many_arguments)]
fn drive_conn(
    proto: &Proto,
    pipeline: usize,
    buf: &mut [u8],
    i: usize,
    c: &mut Conn,
    m: &mut dyn Sink,
    running: bool,
    errors: &mut u64,
) -> bool {
    if !c.busy {
        return true;
    }
    let mut fresh = false;
    loop {
        let req = proto.req(c.off);
        while c.sent < req.len() {
            match c.s.write(&req[c.sent..]) {
                Ok(n) => c.sent += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => {
                    *errors += 1;
                    return false;
                }
            }
        }
        if fresh && c.sent == req.len() {
            return true;
        }
        let exp = proto.exp(c.off);
        let mut complete = false;
        loop {
            let want = (exp.len() - c.got).min(buf.len());
            if want == 0 {
                complete = true;
                break;
            }
            match c.s.read(&mut buf[..want]) {
                Ok(0) => {
                    *errors += 1;
                    return false;
                }
                Ok(n) => {
                    if buf[..n] != exp[c.got..c.got + n] {
                        *errors += 1;
                        return false;
                    }
                    c.got += n;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => {
                    *errors += 1;
                    return false;
                }
            }
        }
        if !complete {
            return true;
        }
        let now = Instant::now();
        let per = proto.per_rt(pipeline);
        for _ in 0..per {
            m.record(now - c.t0, exp.len() as u64 / per);
        }
        c.k += 1;
        c.off = Proto::off(i, c.k);
        c.sent = 0;
        c.got = 0;
        c.t0 = now;
        if !running {
            c.busy = false;
            return true;
        }
        fresh = true;
    }
}

/// One blocking round trip of message `*k` on `s`, recorded into `m`; `Ok(false)` if the
/// echo was wrong or the connection failed.
fn blocking_round_trip(
    proto: &Proto,
    pipeline: usize,
    buf: &mut [u8],
    s: &mut StdStream,
    k: &mut u64,
    t0: Instant,
    m: &mut dyn Sink,
) -> io::Result<bool> {
    let off = Proto::off(0, *k);
    *k += 1;
    s.write_all(proto.req(off))?;
    let exp = proto.exp(off);
    let mut got = 0;
    while got < exp.len() {
        let (r, _) = s.rw();
        let want = (exp.len() - got).min(buf.len());
        let n = match r.read(&mut buf[..want]) {
            Ok(0) => return Ok(false),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => return Ok(false),
        };
        if buf[..n] != exp[got..got + n] {
            return Ok(false);
        }
        got += n;
    }
    let now = Instant::now();
    let per = proto.per_rt(pipeline);
    for _ in 0..per {
        m.record(now - t0, exp.len() as u64 / per);
    }
    Ok(true)
}

fn stream_bench(o: &Opts) -> io::Result<Json> {
    let blocking = match o.mode.as_str() {
        "blocking" => true,
        "poll" => false,
        _ => o.conns == 1,
    };
    let proto = Proto::new(o);
    let mut streams = connect_batched(o, &proto)?;
    let mut errors = 0u64;
    let mut m;
    if blocking {
        // one thread per connection would compete with the server for the 2 cores:
        // blocking mode serves exactly one connection
        let mut s = streams.pop().unwrap();
        s.set_read_timeout(Duration::from_secs(3))?;
        m = Meter::new(o);
        let mut buf = vec![0u8; 65536];
        let mut k = 0u64;
        loop {
            let t0 = Instant::now();
            if !m.tick(t0) {
                break;
            }
            if !blocking_round_trip(&proto, o.pipeline, &mut buf, &mut s, &mut k, t0, &mut m)? {
                errors += 1;
                break;
            }
        }
        let j = m.finish(o, "blocking");
        let (_, fd) = s.rw();
        set_linger_zero(fd);
        return Ok(j.num("errors", errors as f64));
    }

    let mut poll = Poll::new()?;
    let mut events = Events::with_capacity(1024);
    let mut cs = Vec::with_capacity(o.conns);
    for (i, s) in streams.into_iter().enumerate() {
        let mut s = s.into_mio()?;
        poll.registry().register(s.source(), Token(i), Interest::READABLE | Interest::WRITABLE)?;
        cs.push(Conn::new(s, i));
    }
    let mut buf = vec![0u8; 65536];
    m = Meter::new(o);
    let mut running = true;
    let mut alive = cs.len();
    let mut drive = |i: usize, c: &mut Conn, m: &mut Meter, running: bool, errors: &mut u64| -> bool {
        drive_conn(&proto, o.pipeline, &mut buf, i, c, m, running, errors)
    };
    for (i, c) in cs.iter_mut().enumerate() {
        c.t0 = Instant::now();
        if !drive(i, c, &mut m, running, &mut errors) {
            c.dead = true;
            alive -= 1;
        }
    }
    while running && alive > 0 {
        let now = Instant::now();
        if !m.tick(now) {
            running = false;
            continue;
        }
        if let Err(e) = poll.poll(&mut events, Some(m.poll_timeout(now))) {
            if e.kind() != io::ErrorKind::Interrupted {
                return Err(e);
            }
        }
        for ev in events.iter() {
            let i = ev.token().0;
            let c = &mut cs[i];
            if c.dead {
                continue;
            }
            if !drive(i, c, &mut m, running, &mut errors) {
                c.dead = true;
                alive -= 1;
                let _ = poll.registry().deregister(c.s.source());
            }
        }
    }
    let j = m.finish(o, "poll");
    for c in &cs {
        set_linger_zero(c.s.fd());
    }
    Ok(j.num("errors", errors as f64).num("dead_conns", (cs.len() - alive) as f64))
}

// ---------------------------------------------------------------------------------------
// UDP ping-pong: one datagram in flight per socket; 8-byte sequence number + pattern.
// ---------------------------------------------------------------------------------------

/// Datagram `seq` of socket `sock`: the sequence number, then `size - 8` pattern bytes
/// at an offset that depends on both.
fn udp_message(pattern: &[u8], size: usize, sock: usize, seq: u64, out: &mut Vec<u8>) {
    out.clear();
    out.extend_from_slice(&seq.to_le_bytes());
    let off = ((sock as u64 * 17 + seq * 7) % 251) as usize;
    out.extend_from_slice(&pattern[off..off + size - 8]);
}

/// How long a UDP round trip may take before its datagram counts as lost.
const UDP_LOST_AFTER: Duration = Duration::from_millis(200);

/// One socket of a blocking UDP run: connected to its server, with its sequence number.
struct UdpPeer {
    s: std::net::UdpSocket,
    seq: u64,
    msg: Vec<u8>,
}

impl UdpPeer {
    fn connect(addr: SocketAddr) -> io::Result<UdpPeer> {
        let s = std::net::UdpSocket::bind("127.0.0.1:0")?;
        s.connect(addr)?;
        s.set_read_timeout(Some(UDP_LOST_AFTER))?;
        Ok(UdpPeer { s, seq: 0, msg: Vec::new() })
    }

    /// One verified round trip, recorded into `m`. A reply that does not come within
    /// [`UDP_LOST_AFTER`] adds to `lost`; `Ok(false)` when the reply is wrong or the
    /// socket failed.
    fn round_trip(
        &mut self,
        pattern: &[u8],
        size: usize,
        buf: &mut [u8],
        t0: Instant,
        lost: &mut u64,
        m: &mut dyn Sink,
    ) -> io::Result<bool> {
        self.seq += 1;
        udp_message(pattern, size, 0, self.seq, &mut self.msg);
        self.s.send(&self.msg)?;
        loop {
            match self.s.recv(buf) {
                Ok(n) => {
                    if n >= 8 && buf[..8] != self.seq.to_le_bytes() {
                        continue; // a late reply to a datagram given up on
                    }
                    if buf[..n] != self.msg[..] {
                        return Ok(false);
                    }
                    m.record(t0.elapsed(), size as u64);
                    return Ok(true);
                }
                Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => {
                    *lost += 1;
                    return Ok(true);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return Ok(false),
            }
        }
    }
}

fn udp_bench(o: &Opts) -> io::Result<Json> {
    let addr = need_addr(o)?;
    let size = o.size.max(8);
    let pattern: Vec<u8> = (0..size + 256).map(pattern_byte).collect();
    let make = |sock: usize, seq: u64, out: &mut Vec<u8>| udp_message(&pattern, size, sock, seq, out);
    let lost_after = Duration::from_millis(200);
    let mut errors = 0u64;
    let mut lost = 0u64;
    let mut msg = Vec::with_capacity(size);
    let mut buf = vec![0u8; 65536];
    if o.conns == 1 && o.mode != "poll" {
        let s = std::net::UdpSocket::bind("127.0.0.1:0")?;
        s.connect(addr)?;
        s.set_read_timeout(Some(lost_after))?;
        let mut m = Meter::new(o);
        let mut seq = 0u64;
        loop {
            let t0 = Instant::now();
            if !m.tick(t0) {
                break;
            }
            seq += 1;
            make(0, seq, &mut msg);
            s.send(&msg)?;
            loop {
                match s.recv(&mut buf) {
                    Ok(n) => {
                        if n >= 8 && buf[..8] != seq.to_le_bytes() {
                            continue; // a late reply to a datagram we gave up on
                        }
                        if buf[..n] != msg[..] {
                            errors += 1;
                        } else {
                            m.record(t0.elapsed(), size as u64);
                        }
                        break;
                    }
                    Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => {
                        lost += 1;
                        break;
                    }
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(_) => {
                        errors += 1;
                        std::thread::sleep(Duration::from_millis(10));
                        break;
                    }
                }
                if errors > 1000 {
                    break;
                }
            }
        }
        return Ok(m.finish(o, "blocking").num("errors", errors as f64).num("lost", lost as f64));
    }
    struct U {
        s: mio::net::UdpSocket,
        seq: u64,
        msg: Vec<u8>,
        t0: Instant,
    }
    let mut poll = Poll::new()?;
    let mut events = Events::with_capacity(1024);
    let mut us = Vec::new();
    for i in 0..o.conns {
        let mut s = mio::net::UdpSocket::bind("127.0.0.1:0".parse().unwrap())?;
        s.connect(addr)?;
        poll.registry().register(&mut s, Token(i), Interest::READABLE)?;
        let mut u = U { s, seq: 1, msg: Vec::with_capacity(size), t0: Instant::now() };
        make(i, 1, &mut u.msg);
        let _ = u.s.send(&u.msg);
        us.push(u);
    }
    let mut m = Meter::new(o);
    let mut last_scan = Instant::now();
    loop {
        let now = Instant::now();
        if !m.tick(now) {
            break;
        }
        if now - last_scan > Duration::from_millis(20) {
            last_scan = now;
            for (i, u) in us.iter_mut().enumerate() {
                if now - u.t0 > lost_after {
                    lost += 1;
                    u.seq += 1;
                    make(i, u.seq, &mut u.msg);
                    u.t0 = now;
                    let _ = u.s.send(&u.msg);
                }
            }
        }
        if let Err(e) = poll.poll(&mut events, Some(m.poll_timeout(now).min(Duration::from_millis(20)))) {
            if e.kind() != io::ErrorKind::Interrupted {
                return Err(e);
            }
        }
        for ev in events.iter() {
            let i = ev.token().0;
            let u = &mut us[i];
            loop {
                match u.s.recv(&mut buf) {
                    Ok(n) => {
                        if n < 8 || buf[..8] != u.seq.to_le_bytes() {
                            continue;
                        }
                        let now = Instant::now();
                        if buf[..n] != u.msg[..] {
                            errors += 1;
                        } else {
                            m.record(now - u.t0, size as u64);
                        }
                        u.seq += 1;
                        make(i, u.seq, &mut u.msg);
                        u.t0 = now;
                        let _ = u.s.send(&u.msg);
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(_) => {
                        errors += 1;
                        break;
                    }
                }
            }
        }
    }
    Ok(m.finish(o, "poll").num("errors", errors as f64).num("lost", lost as f64))
}

// ---------------------------------------------------------------------------------------
// Connection churn: `--conns` slots, each: connect, one verified round trip, close (RST).
// ---------------------------------------------------------------------------------------

/// One connection slot of the churn workload.
struct ChurnSlot {
    s: Option<mio::net::TcpStream>,
    connected: bool,
    sent: usize,
    got: usize,
    t0: Instant,
}

impl ChurnSlot {
    fn new() -> ChurnSlot {
        ChurnSlot { s: None, connected: false, sent: 0, got: 0, t0: Instant::now() }
    }

    /// Starts a new connection to `addr` in this slot (token `i`); a failed connect
    /// leaves the slot empty and counts an error.
    fn open(&mut self, poll: &Poll, addr: SocketAddr, i: usize, errors: &mut u64) {
        self.t0 = Instant::now();
        self.connected = false;
        self.sent = 0;
        self.got = 0;
        self.s = None;
        match mio::net::TcpStream::connect(addr) {
            Ok(mut s) => {
                if poll.registry().register(&mut s, Token(i), Interest::READABLE | Interest::WRITABLE).is_err() {
                    *errors += 1;
                } else {
                    self.s = Some(s);
                }
            }
            Err(_) => *errors += 1,
        }
    }

    /// Drives the slot after an event: `None` to keep waiting, `Some(true)` when the
    /// round trip is done and verified, `Some(false)` when it failed.
    fn step(&mut self, msg: &[u8], buf: &mut [u8]) -> Option<bool> {
        let s = self.s.as_mut()?;
        if !self.connected {
            if let Ok(Some(_)) | Err(_) = s.take_error() {
                return Some(false);
            }
            match s.peer_addr() {
                Ok(_) => {
                    self.connected = true;
                    let _ = s.set_nodelay(true);
                }
                Err(e) if e.kind() == io::ErrorKind::NotConnected => return None,
                Err(_) => return Some(false),
            }
        }
        while self.sent < msg.len() {
            match s.write(&msg[self.sent..]) {
                Ok(n) => self.sent += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return None,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return Some(false),
            }
        }
        while self.got < msg.len() {
            match s.read(&mut buf[..msg.len() - self.got]) {
                Ok(0) => return Some(false),
                Ok(n) => {
                    if buf[..n] != msg[self.got..self.got + n] {
                        return Some(false);
                    }
                    self.got += n;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return None,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return Some(false),
            }
        }
        Some(true)
    }

    /// Closes the slot's connection with a reset (no TIME_WAIT pile-up).
    fn close(&mut self, poll: &Poll) {
        if let Some(mut s) = self.s.take() {
            let _ = poll.registry().deregister(&mut s);
            set_linger_zero(s.as_raw_fd());
        }
    }
}

fn churn_bench(o: &Opts) -> io::Result<Json> {
    let addr = need_addr(o)?;
    let msg: Vec<u8> = (0..o.size).map(pattern_byte).collect();
    let mut poll = Poll::new()?;
    let mut events = Events::with_capacity(1024);
    let mut errors = 0u64;
    let mut slots: Vec<ChurnSlot> = (0..o.conns).map(|_| ChurnSlot::new()).collect();
    for (i, sl) in slots.iter_mut().enumerate() {
        sl.open(&poll, addr, i, &mut errors);
    }
    let mut buf = vec![0u8; 65536];
    let mut m = Meter::new(o);
    loop {
        let now = Instant::now();
        if !m.tick(now) || errors > 10_000 {
            break;
        }
        // slots whose connect failed outright are retried here
        for (i, slot) in slots.iter_mut().enumerate() {
            if slot.s.is_none() {
                slot.open(&poll, addr, i, &mut errors);
            }
        }
        if let Err(e) = poll.poll(&mut events, Some(m.poll_timeout(now))) {
            if e.kind() != io::ErrorKind::Interrupted {
                return Err(e);
            }
        }
        for ev in events.iter() {
            let i = ev.token().0;
            let sl = &mut slots[i];
            if let Some(ok) = sl.step(&msg, &mut buf) {
                sl.close(&poll);
                if ok {
                    m.record(sl.t0.elapsed(), msg.len() as u64);
                } else {
                    errors += 1;
                }
                sl.open(&poll, addr, i, &mut errors);
            }
        }
    }
    let j = m.finish(o, "poll");
    for sl in &mut slots {
        sl.close(&poll);
    }
    Ok(j.num("errors", errors as f64))
}

/// Connection churn in alternating slices (`--workload churn --targets ...`): as
/// [`sliced_bench`], with `--conns` slots that each connect, do one verified round trip
/// and close (reset), to the target of the current slice. At the end of a slice no slot
/// reconnects; the connections in flight finish (bounded) and count.
fn churn_sliced(o: &Opts) -> io::Result<Vec<Json>> {
    let n = o.targets.len();
    let mut addrs = Vec::with_capacity(n);
    for t in &o.targets {
        addrs.push(
            t.at.parse::<SocketAddr>()
                .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, format!("bad target {}", t.at)))?,
        );
    }
    let msg: Vec<u8> = (0..o.size).map(pattern_byte).collect();
    let mut poll = Poll::new()?;
    let mut events = Events::with_capacity(1024);
    let mut slots: Vec<ChurnSlot> = (0..o.conns).map(|_| ChurnSlot::new()).collect();
    let mut stats = new_stats(n);
    let mut buf = vec![0u8; 65536];
    let plan = slice_plan(o, n);
    let mut srv0: Vec<Option<f64>> = vec![None; n];
    let dead = vec![0usize; n];
    for s in &plan {
        let t = s.target;
        if s.first_measured {
            srv0 = servers_cpu(o);
        }
        if s.len.is_zero() {
            continue;
        }
        let st = &mut stats[t];
        let mut clock = st.begin_slice(s, o.ramp);
        let end = clock.end;
        let drain_end = end + Duration::from_secs(3);
        let mut errors = 0u64;
        for (i, sl) in slots.iter_mut().enumerate() {
            sl.open(&poll, addrs[t], i, &mut errors);
        }
        loop {
            let now = Instant::now();
            let running = now < end;
            let in_flight = slots.iter().filter(|sl| sl.s.is_some()).count();
            if (!running && in_flight == 0) || now >= drain_end || errors > 10_000 {
                break;
            }
            st.tick(&mut clock, now);
            if running {
                // slots whose connect failed outright are retried here
                for (i, sl) in slots.iter_mut().enumerate() {
                    if sl.s.is_none() {
                        sl.open(&poll, addrs[t], i, &mut errors);
                    }
                }
            }
            let timeout = if running { end - now } else { drain_end - now };
            if let Err(e) = poll.poll(&mut events, Some(timeout.min(Duration::from_millis(50)))) {
                if e.kind() != io::ErrorKind::Interrupted {
                    return Err(e);
                }
            }
            let running = Instant::now() < end;
            for ev in events.iter() {
                let i = ev.token().0;
                let sl = &mut slots[i];
                if let Some(ok) = sl.step(&msg, &mut buf) {
                    sl.close(&poll);
                    if ok {
                        st.record(sl.t0.elapsed(), msg.len() as u64);
                    } else {
                        errors += 1;
                    }
                    if running {
                        sl.open(&poll, addrs[t], i, &mut errors);
                    }
                }
            }
        }
        // Anything still open after the drain bound is a lost connection.
        for sl in slots.iter_mut() {
            if sl.s.is_some() {
                errors += 1;
                sl.close(&poll);
            }
        }
        st.errors += errors;
        st.end_slice(clock);
    }
    let extra = vec![Vec::new(); n];
    Ok(sliced_results(o, "poll-sliced", &stats, &srv0, &dead, &extra))
}

// ---------------------------------------------------------------------------------------
// Idle connections for the memory measurement.
// ---------------------------------------------------------------------------------------

fn idle(o: &Opts) -> io::Result<Json> {
    let t = Instant::now();
    let msg: Vec<u8> = (0..o.size).map(pattern_byte).collect();
    let mut v = Vec::with_capacity(o.conns);
    let mut errors = 0u64;
    // connect in batches and complete a round trip on each batch, so the server has
    // accepted (and started a task for) every connection before we report
    let batch = 64;
    let mut buf = vec![0u8; 65536];
    while v.len() < o.conns && t.elapsed() < Duration::from_secs(60) && errors < 100 {
        let mut b = Vec::new();
        for _ in 0..batch.min(o.conns - v.len()) {
            match connect_std(o) {
                Ok(s) => b.push(s),
                Err(_) => errors += 1,
            }
        }
        for s in b.iter_mut() {
            if s.write_all(&msg).is_err() {
                errors += 1;
            }
        }
        for s in b.iter_mut() {
            s.set_read_timeout(Duration::from_secs(5))?;
            let mut got = 0;
            while got < msg.len() {
                let (r, _) = s.rw();
                match r.read(&mut buf[..msg.len() - got]) {
                    Ok(0) | Err(_) => {
                        errors += 1;
                        break;
                    }
                    Ok(n) => {
                        if buf[..n] != msg[got..got + n] {
                            errors += 1;
                            break;
                        }
                        got += n;
                    }
                }
            }
        }
        v.extend(b);
    }
    let j = Json::new()
        .str("workload", "idle")
        .num("conns", o.conns as f64)
        .num("established", v.len() as f64)
        .num("errors", errors as f64)
        .num("setup_s", t.elapsed().as_secs_f64());
    println!("{}", j.to_line());
    let _ = io::stdout().flush();
    // hold until stdin closes or --hold passes
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut sink = [0u8; 64];
        loop {
            match io::stdin().read(&mut sink) {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
        }
        let _ = tx.send(());
    });
    let _ = rx.recv_timeout(o.hold);
    for s in v.iter_mut() {
        let (_, fd) = s.rw();
        set_linger_zero(fd);
    }
    std::process::exit(0);
}

// ---------------------------------------------------------------------------------------
// Alternating slices: every server runs at once, the load goes to one at a time.
// ---------------------------------------------------------------------------------------

/// One server of an alternating-slices run: its address (or socket path) and pid.
#[derive(Clone)]
struct Target {
    at: String,
    pid: Option<u32>,
}

/// `--targets A,B,...` with `--server-pids P,Q,...` in the same order.
fn parse_targets(a: &Args) -> Vec<Target> {
    let Some(list) = a.get("targets") else { return Vec::new() };
    let pids: Vec<Option<u32>> =
        a.get("server-pids").map(|p| p.split(',').map(|x| x.trim().parse().ok()).collect()).unwrap_or_default();
    list.split(',')
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .enumerate()
        .map(|(i, at)| Target { at: at.to_string(), pid: pids.get(i).copied().flatten() })
        .collect()
}

/// What one target accumulates over its slices.
struct Stat {
    hist: Histogram<u64>,
    /// In a measured slice (ramp included) / past the slice's ramp.
    in_slice: bool,
    on: bool,
    /// Round trips in measured slices, ramps included (for CPU per round trip).
    in_slices: u64,
    count: u64,
    total: u64,
    bytes: u64,
    active: Duration,
    cpu: f64,
    errors: u64,
    slices: u64,
}

impl Sink for Stat {
    fn record(&mut self, lat: Duration, bytes: u64) {
        self.total += 1;
        if self.in_slice {
            self.in_slices += 1;
        }
        if self.on {
            self.count += 1;
            self.bytes += bytes;
            let _ = self.hist.record((lat.as_nanos() as u64).max(1));
        }
    }
}

impl Stat {
    fn new() -> Stat {
        Stat {
            hist: Histogram::new_with_bounds(1, 120_000_000_000, 3).expect("histogram bounds"),
            in_slice: false,
            on: false,
            in_slices: 0,
            count: 0,
            total: 0,
            bytes: 0,
            active: Duration::ZERO,
            cpu: 0.0,
            errors: 0,
            slices: 0,
        }
    }
}

/// The clock of one slice (see [`Stat::begin_slice`]).
struct SliceClock {
    /// When the slice's load stops.
    end: Instant,
    cpu0: f64,
    ramp_end: Instant,
    /// When measuring began (the ramp's end).
    t_on: Instant,
    record: bool,
}

impl Stat {
    /// Slice `s` of this target begins; it is measured (after `ramp`) if `s.record`.
    fn begin_slice(&mut self, s: &Slice, ramp: Duration) -> SliceClock {
        self.in_slice = s.record;
        self.on = false;
        let t0 = Instant::now();
        SliceClock { end: t0 + s.len, cpu0: self_cpu_secs(), ramp_end: t0 + ramp, t_on: t0, record: s.record }
    }

    /// Starts measuring once the slice's ramp is over.
    fn tick(&mut self, c: &mut SliceClock, now: Instant) {
        if c.record && !self.on && now >= c.ramp_end {
            self.on = true;
            c.t_on = now;
        }
    }

    /// The slice ends: adds its measured time and this process's CPU.
    fn end_slice(&mut self, c: SliceClock) {
        if c.record {
            self.active += c.t_on.elapsed();
            self.cpu += self_cpu_secs() - c.cpu0;
            self.slices += 1;
        }
        self.in_slice = false;
        self.on = false;
    }
}

/// Each target server's CPU seconds so far (from /proc), where its pid is known.
fn servers_cpu(o: &Opts) -> Vec<Option<f64>> {
    o.targets.iter().map(|t| t.pid.and_then(proc_cpu_secs)).collect()
}

fn new_stats(n: usize) -> Vec<Stat> {
    (0..n).map(|_| Stat::new()).collect()
}

/// One slice of a sliced run's schedule.
#[derive(Clone, Copy)]
struct Slice {
    target: usize,
    len: Duration,
    /// Measured (after the ramp); warm-up slices are not.
    record: bool,
    /// The first measured slice: the servers' CPU is read as it starts.
    first_measured: bool,
}

/// The schedule of a sliced run: a warm-up slice per target, then rotated rounds of
/// measured slices (ramp included) until each target has had `--duration`.
fn slice_plan(o: &Opts, n: usize) -> Vec<Slice> {
    let cycles = (o.duration.as_secs_f64() / o.slice.as_secs_f64()).ceil().max(1.0) as usize;
    let mut plan: Vec<Slice> =
        (0..n).map(|t| Slice { target: t, len: o.warmup, record: false, first_measured: false }).collect();
    for c in 0..cycles {
        plan.extend((0..n).map(|j| Slice {
            target: (j + c) % n,
            len: o.ramp + o.slice,
            record: true,
            first_measured: c == 0 && j == 0,
        }));
    }
    plan
}

/// One JSON line per target of a sliced run. `srv0`: each server's CPU seconds when the
/// measured phase began (read again now); `extra`: per-target fields to add.
fn sliced_results(
    o: &Opts,
    mode: &str,
    stats: &[Stat],
    srv0: &[Option<f64>],
    dead: &[usize],
    extra: &[Vec<(&'static str, f64)>],
) -> Vec<Json> {
    let mut out = Vec::with_capacity(stats.len());
    for (t, st) in stats.iter().enumerate() {
        let srv = match (srv0[t], o.targets[t].pid.and_then(proc_cpu_secs)) {
            (Some(a), Some(b)) => Some(b - a),
            _ => None,
        };
        let dur = st.active.as_secs_f64().max(1e-9);
        // CPU per round trip counts the ramps' round trips too: the CPU is read over
        // whole slices.
        let per_all = st.in_slices as f64 / st.count.max(1) as f64;
        let mut j = result_json(
            o,
            mode,
            dur,
            st.count,
            st.total,
            st.bytes,
            &st.hist,
            st.cpu / per_all,
            srv.map(|s| s / per_all),
        )
        .num("target", t as f64)
        .num("slices", st.slices as f64)
        .num("errors", st.errors as f64)
        .num("dead_conns", dead[t] as f64);
        for &(k, v) in &extra[t] {
            j = j.num(k, v);
        }
        out.push(j);
    }
    out
}

/// Alternating slices (`--targets`): the servers of every contender run at the same
/// time, idle but for the one being measured, and this one process sends the load to one
/// target at a time in slices of `--slice` seconds, rotating the order each cycle, until
/// each target has had `--duration` seconds (after a `--warmup` slice each). With
/// `--ramp R` each slice first runs R seconds unmeasured, so that what is measured is the
/// server's steady state under load, not its first milliseconds after an idle gap (a
/// multi-thread runtime takes a few milliseconds to bring its other workers in).
///
/// Why: this machine has phases, seconds long, in which every process needs ~45% more
/// CPU per operation. Runs of 2 s one after the other land in different phases, and the
/// phase then decides the ranking; slices of 250 ms spread every contender over the same
/// phases, so the ratios between them are measured on equal terms.
///
/// A slice starts every connection of its target on a fresh request, sends requests for
/// the slice's length, then sends no new ones and waits for the replies in flight (they
/// count, and so does the time they take). Server CPU is read at the start and end of the
/// whole measured phase: the other servers sleep while one is measured.
fn sliced_bench(o: &Opts) -> io::Result<Vec<Json>> {
    let proto = Proto::new(o);
    let n = o.targets.len();
    let blocking = match o.mode.as_str() {
        "blocking" => true,
        "poll" => false,
        _ => o.conns == 1,
    };
    let udp = o.workload == "udp";
    if udp && (o.conns != 1 || o.mode == "poll") {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "sliced UDP runs one blocking socket per target: use --conns 1 and no --mode poll",
        ));
    }
    let udp_size = o.size.max(8);
    let udp_pattern: Vec<u8> = (0..udp_size + 256).map(pattern_byte).collect();
    let mut udp_peers = Vec::new();
    let mut sets = Vec::with_capacity(n);
    for t in &o.targets {
        if udp {
            let addr =
                t.at.parse()
                    .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, format!("bad target {}", t.at)))?;
            udp_peers.push(UdpPeer::connect(addr)?);
            sets.push(Vec::new());
            continue;
        }
        let mut ot = o.clone();
        if o.workload == "unix" {
            ot.path = t.at.clone();
        } else {
            ot.addr = Some(
                t.at.parse()
                    .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, format!("bad target {}", t.at)))?,
            );
        }
        sets.push(connect_batched(&ot, &proto)?);
    }
    let mut stats = new_stats(n);
    let mut buf = vec![0u8; 65536];
    let plan = slice_plan(o, n);
    let mut srv0: Vec<Option<f64>> = vec![None; n];
    let mut dead = vec![0usize; n];
    let mode = if blocking { "blocking-sliced" } else { "poll-sliced" };
    let mut lost = vec![0u64; n];
    if blocking {
        let mut ss: Vec<StdStream> = Vec::with_capacity(n);
        for mut v in sets {
            if udp {
                continue;
            }
            let s = v.pop().ok_or_else(|| io::Error::other("no connection"))?;
            s.set_read_timeout(Duration::from_secs(3))?;
            ss.push(s);
        }
        let mut ks = vec![0u64; n];
        let mut failed = vec![false; n];
        for s in &plan {
            let t = s.target;
            if s.first_measured {
                srv0 = servers_cpu(o);
            }
            if failed[t] || s.len.is_zero() {
                continue;
            }
            let st = &mut stats[t];
            let mut clock = st.begin_slice(s, o.ramp);
            let end = clock.end;
            loop {
                let now = Instant::now();
                if now >= end {
                    break;
                }
                st.tick(&mut clock, now);
                let ok = if udp {
                    udp_peers[t].round_trip(&udp_pattern, udp_size, &mut buf, now, &mut lost[t], st)?
                } else {
                    blocking_round_trip(&proto, o.pipeline, &mut buf, &mut ss[t], &mut ks[t], now, st)?
                };
                if !ok {
                    st.errors += 1;
                    failed[t] = true;
                    dead[t] = 1;
                    break;
                }
            }
            st.end_slice(clock);
        }
        for s in &mut ss {
            let (_, fd) = s.rw();
            set_linger_zero(fd);
        }
    } else {
        let mut poll = Poll::new()?;
        let mut events = Events::with_capacity(1024);
        let per = o.conns;
        let mut cs: Vec<Vec<Conn>> = Vec::with_capacity(n);
        for (t, v) in sets.into_iter().enumerate() {
            let mut set = Vec::with_capacity(per);
            for (i, s) in v.into_iter().enumerate() {
                let mut s = s.into_mio()?;
                poll.registry().register(s.source(), Token(t * per + i), Interest::READABLE | Interest::WRITABLE)?;
                let mut c = Conn::new(s, i);
                c.busy = false;
                set.push(c);
            }
            cs.push(set);
        }
        for s in &plan {
            let t = s.target;
            if s.first_measured {
                srv0 = servers_cpu(o);
            }
            if s.len.is_zero() {
                continue;
            }
            let st = &mut stats[t];
            let mut clock = st.begin_slice(s, o.ramp);
            let end = clock.end;
            let mut errors = 0u64;
            let mut busy = 0usize;
            for (i, c) in cs[t].iter_mut().enumerate() {
                if c.dead {
                    continue;
                }
                c.busy = true;
                c.t0 = Instant::now();
                if !drive_conn(&proto, o.pipeline, &mut buf, i, c, st, true, &mut errors) {
                    c.dead = true;
                    dead[t] += 1;
                } else {
                    busy += 1;
                }
            }
            // Load for the slice's length, then drain the replies in flight (bounded).
            let drain_end = end + Duration::from_secs(3);
            loop {
                let now = Instant::now();
                let running = now < end;
                if busy == 0 || now >= drain_end {
                    break;
                }
                st.tick(&mut clock, now);
                let timeout = if running { end - now } else { drain_end - now };
                if let Err(e) = poll.poll(&mut events, Some(timeout.min(Duration::from_millis(50)))) {
                    if e.kind() != io::ErrorKind::Interrupted {
                        return Err(e);
                    }
                }
                let running = Instant::now() < end;
                for ev in events.iter() {
                    let (tt, i) = (ev.token().0 / per, ev.token().0 % per);
                    if tt != t {
                        continue; // an idle target's connection: nothing in flight
                    }
                    let c = &mut cs[t][i];
                    if c.dead || !c.busy {
                        continue;
                    }
                    if !drive_conn(&proto, o.pipeline, &mut buf, i, c, st, running, &mut errors) {
                        c.dead = true;
                        dead[t] += 1;
                        busy -= 1;
                        let _ = poll.registry().deregister(c.s.source());
                    } else if !c.busy {
                        busy -= 1;
                    }
                }
            }
            st.errors += errors;
            st.end_slice(clock);
            // Anything still in flight after the drain bound is a lost reply.
            for c in cs[t].iter_mut() {
                if c.busy && !c.dead {
                    c.dead = true;
                    dead[t] += 1;
                    st.errors += 1;
                }
            }
        }
        for set in &cs {
            for c in set {
                set_linger_zero(c.s.fd());
            }
        }
    }
    let extra: Vec<Vec<(&'static str, f64)>> =
        (0..n).map(|t| if udp { vec![("lost", lost[t] as f64)] } else { Vec::new() }).collect();
    Ok(sliced_results(o, mode, &stats, &srv0, &dead, &extra))
}
