//! Load generator: its own process, no async runtime under test. Connections are driven
//! by one thread: a blocking loop when there is a single connection (2 system calls per
//! round trip), otherwise a mio edge-triggered event loop. Every echoed byte is verified.
//!
//! ```text
//! loadgen --workload <echo|unix|http|udp|churn|idle> [--addr 127.0.0.1:PORT] [--path SOCK]
//!         [--conns N] [--size BYTES] [--duration SECS] [--warmup SECS] [--pipeline K]
//!         [--server-pid PID] [--cpu N] [--mode auto|blocking|poll] [--hold SECS]
//! ```
//! Prints one JSON line: throughput (`rps`: round trips, requests or connections per
//! second), latency percentiles in µs from an HdrHistogram, bytes verified, errors, and
//! the CPU time used by the load generator and (with `--server-pid`) by the server over
//! the measured interval.
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
    };
    raise_nofile((o.conns as u64 + 512).max(1024));
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
        let us = |q: f64| self.hist.value_at_quantile(q) as f64 / 1000.0;
        let mut j = Json::new()
            .str("workload", o.workload.clone())
            .num("conns", o.conns as f64)
            .num("size", o.size as f64)
            .str("mode", mode)
            .num("duration_s", dur)
            .num("round_trips", self.count as f64)
            .num("total_round_trips", self.total_count as f64)
            .num("rps", self.count as f64 / dur)
            .num("mb_s", self.bytes as f64 / dur / 1e6)
            .num("p50_us", us(0.5))
            .num("p90_us", us(0.9))
            .num("p99_us", us(0.99))
            .num("p999_us", us(0.999))
            .num("max_us", self.hist.max() as f64 / 1000.0)
            .num("mean_us", self.hist.mean() / 1000.0)
            .num("bytes_verified", self.bytes as f64)
            .num("loadgen_cpu_s", cpu)
            .num("loadgen_cpu_us_per_rt", if self.count > 0 { cpu * 1e6 / self.count as f64 } else { 0.0 });
        if let Some(s) = srv {
            j = j
                .num("server_cpu_s", s)
                .num("server_cpu_us_per_rt", if self.count > 0 { s * 1e6 / self.count as f64 } else { 0.0 });
        }
        let _ = self.start;
        j
    }
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
        'run: loop {
            let t0 = Instant::now();
            if !m.tick(t0) {
                break;
            }
            let off = Proto::off(0, k);
            k += 1;
            s.write_all(proto.req(off))?;
            let exp = proto.exp(off);
            let mut got = 0;
            while got < exp.len() {
                let (r, _) = s.rw();
                let n = match r.read(&mut buf[..(exp.len() - got).min(65536)]) {
                    Ok(0) => {
                        errors += 1;
                        break 'run;
                    }
                    Ok(n) => n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(_) => {
                        errors += 1;
                        break 'run;
                    }
                };
                if buf[..n] != exp[got..got + n] {
                    errors += 1;
                    break 'run;
                }
                got += n;
            }
            let now = Instant::now();
            for _ in 0..proto.per_rt(o.pipeline) {
                m.record(now - t0, exp.len() as u64 / proto.per_rt(o.pipeline));
            }
        }
        let j = m.finish(o, "blocking");
        let (_, fd) = s.rw();
        set_linger_zero(fd);
        return Ok(j.num("errors", errors as f64));
    }

    struct C {
        s: Stream,
        k: u64,
        off: usize,
        sent: usize,
        got: usize,
        t0: Instant,
        dead: bool,
    }
    let mut poll = Poll::new()?;
    let mut events = Events::with_capacity(1024);
    let mut cs = Vec::with_capacity(o.conns);
    for (i, s) in streams.into_iter().enumerate() {
        let mut s = s.into_mio()?;
        poll.registry().register(s.source(), Token(i), Interest::READABLE | Interest::WRITABLE)?;
        cs.push(C { s, k: 0, off: Proto::off(i, 0), sent: 0, got: 0, t0: Instant::now(), dead: false });
    }
    let mut buf = vec![0u8; 65536];
    m = Meter::new(o);
    let mut running = true;
    let mut alive = cs.len();
    // drives one connection as far as it goes without blocking
    // Edge-triggered, ping-pong: once a reply is complete and the next request is fully
    // written, the socket cannot hold more reply bytes yet (the server has not seen the
    // request), and the reply's arrival raises a new edge; so the read that would only
    // return EAGAIN is skipped (2 system calls per round trip plus a share of epoll_wait).
    let mut drive = |i: usize, c: &mut C, m: &mut Meter, running: bool, errors: &mut u64| -> bool {
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
            let per = proto.per_rt(o.pipeline);
            for _ in 0..per {
                m.record(now - c.t0, exp.len() as u64 / per);
            }
            if !running {
                return true;
            }
            c.k += 1;
            c.off = Proto::off(i, c.k);
            c.sent = 0;
            c.got = 0;
            c.t0 = now;
            fresh = true;
        }
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

fn udp_bench(o: &Opts) -> io::Result<Json> {
    let addr = need_addr(o)?;
    let size = o.size.max(8);
    let pattern: Vec<u8> = (0..size + 256).map(pattern_byte).collect();
    let make = |sock: usize, seq: u64, out: &mut Vec<u8>| {
        out.clear();
        out.extend_from_slice(&seq.to_le_bytes());
        let off = ((sock as u64 * 17 + seq * 7) % 251) as usize;
        out.extend_from_slice(&pattern[off..off + size - 8]);
    };
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

fn churn_bench(o: &Opts) -> io::Result<Json> {
    let addr = need_addr(o)?;
    let msg: Vec<u8> = (0..o.size).map(pattern_byte).collect();
    struct Slot {
        s: Option<mio::net::TcpStream>,
        connected: bool,
        sent: usize,
        got: usize,
        t0: Instant,
    }
    let mut poll = Poll::new()?;
    let mut events = Events::with_capacity(1024);
    let mut errors = 0u64;
    let open = |poll: &Poll, i: usize, sl: &mut Slot, errors: &mut u64| {
        sl.t0 = Instant::now();
        sl.connected = false;
        sl.sent = 0;
        sl.got = 0;
        match mio::net::TcpStream::connect(addr) {
            Ok(mut s) => {
                if poll.registry().register(&mut s, Token(i), Interest::READABLE | Interest::WRITABLE).is_err() {
                    *errors += 1;
                    sl.s = None;
                } else {
                    sl.s = Some(s);
                }
            }
            Err(_) => {
                *errors += 1;
                sl.s = None;
            }
        }
    };
    let mut slots: Vec<Slot> =
        (0..o.conns).map(|_| Slot { s: None, connected: false, sent: 0, got: 0, t0: Instant::now() }).collect();
    for (i, sl) in slots.iter_mut().enumerate() {
        open(&poll, i, sl, &mut errors);
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
                open(&poll, i, slot, &mut errors);
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
            let Some(s) = sl.s.as_mut() else { continue };
            // outcome: None = keep waiting, Some(true) = done ok, Some(false) = failed
            let outcome: Option<bool> = 'drive: {
                if !sl.connected {
                    if let Ok(Some(_)) | Err(_) = s.take_error() {
                        break 'drive Some(false);
                    }
                    match s.peer_addr() {
                        Ok(_) => {
                            sl.connected = true;
                            let _ = s.set_nodelay(true);
                        }
                        Err(e) if e.kind() == io::ErrorKind::NotConnected => break 'drive None,
                        Err(_) => break 'drive Some(false),
                    }
                }
                while sl.sent < msg.len() {
                    match s.write(&msg[sl.sent..]) {
                        Ok(n) => sl.sent += n,
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => break 'drive None,
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                        Err(_) => break 'drive Some(false),
                    }
                }
                while sl.got < msg.len() {
                    match s.read(&mut buf[..msg.len() - sl.got]) {
                        Ok(0) => break 'drive Some(false),
                        Ok(n) => {
                            if buf[..n] != msg[sl.got..sl.got + n] {
                                break 'drive Some(false);
                            }
                            sl.got += n;
                        }
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => break 'drive None,
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                        Err(_) => break 'drive Some(false),
                    }
                }
                Some(true)
            };
            if let Some(ok) = outcome {
                let mut s = sl.s.take().unwrap();
                let _ = poll.registry().deregister(&mut s);
                set_linger_zero(s.as_raw_fd());
                drop(s);
                if ok {
                    m.record(sl.t0.elapsed(), msg.len() as u64);
                } else {
                    errors += 1;
                }
                open(&poll, i, sl, &mut errors);
            }
        }
    }
    let j = m.finish(o, "poll");
    for sl in &slots {
        if let Some(s) = &sl.s {
            set_linger_zero(s.as_raw_fd());
        }
    }
    Ok(j.num("errors", errors as f64))
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
