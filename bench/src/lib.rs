//! Shared pieces of the blitz-io benchmark harness: argument parsing, a flat JSON
//! writer/reader, the HTTP/1.1 request parser used by every HTTP server contender,
//! and small Linux helpers (CPU affinity, RLIMIT_NOFILE, /proc sampling).

use std::collections::BTreeMap;
use std::io;

// ---------------------------------------------------------------------------------------
// Arguments: `--key value` pairs and bare `--flag`s.
// ---------------------------------------------------------------------------------------

pub struct Args {
    map: BTreeMap<String, String>,
}

impl Args {
    /// Parses `std::env::args()`. A `--key` followed by a value that does not start with
    /// `--` takes it; otherwise it is a flag with value "true". `--key=value` also works.
    pub fn parse() -> Args {
        Args::from_vec(std::env::args().skip(1).collect())
    }

    pub fn from_vec(v: Vec<String>) -> Args {
        let mut map = BTreeMap::new();
        let mut i = 0;
        while i < v.len() {
            let a = &v[i];
            if let Some(k) = a.strip_prefix("--") {
                if let Some((k, val)) = k.split_once('=') {
                    map.insert(k.to_string(), val.to_string());
                } else if i + 1 < v.len() && !v[i + 1].starts_with("--") {
                    map.insert(k.to_string(), v[i + 1].clone());
                    i += 1;
                } else {
                    map.insert(k.to_string(), "true".to_string());
                }
            } else {
                // positional: stored under "_N"
                let n = map.keys().filter(|k| k.starts_with('_')).count();
                map.insert(format!("_{n}"), a.clone());
            }
            i += 1;
        }
        Args { map }
    }

    pub fn get(&self, k: &str) -> Option<&str> {
        self.map.get(k).map(|s| s.as_str())
    }
    pub fn str_or(&self, k: &str, d: &str) -> String {
        self.get(k).unwrap_or(d).to_string()
    }
    pub fn flag(&self, k: &str) -> bool {
        matches!(self.get(k), Some("true") | Some("1") | Some("yes"))
    }
    pub fn num<T: std::str::FromStr>(&self, k: &str, d: T) -> T {
        match self.get(k) {
            Some(s) => s.parse().unwrap_or_else(|_| {
                eprintln!("bad value for --{k}: {s:?}");
                std::process::exit(2)
            }),
            None => d,
        }
    }
}

// ---------------------------------------------------------------------------------------
// Flat JSON: one object of string/number/bool values per line.
// ---------------------------------------------------------------------------------------

#[derive(Clone, Debug, PartialEq)]
pub enum Val {
    Num(f64),
    Str(String),
    Bool(bool),
}

impl Val {
    pub fn num(&self) -> Option<f64> {
        match self {
            Val::Num(n) => Some(*n),
            _ => None,
        }
    }
    pub fn str(&self) -> Option<&str> {
        match self {
            Val::Str(s) => Some(s),
            _ => None,
        }
    }
}

#[derive(Default, Clone, Debug)]
pub struct Json {
    pub fields: Vec<(String, Val)>,
}

impl Json {
    pub fn new() -> Json {
        Json::default()
    }
    pub fn num(mut self, k: &str, v: impl Into<f64>) -> Json {
        self.fields.push((k.to_string(), Val::Num(v.into())));
        self
    }
    pub fn str(mut self, k: &str, v: impl Into<String>) -> Json {
        self.fields.push((k.to_string(), Val::Str(v.into())));
        self
    }
    pub fn bool(mut self, k: &str, v: bool) -> Json {
        self.fields.push((k.to_string(), Val::Bool(v)));
        self
    }
    pub fn set(&mut self, k: &str, v: Val) {
        if let Some(e) = self.fields.iter_mut().find(|(kk, _)| kk == k) {
            e.1 = v;
        } else {
            self.fields.push((k.to_string(), v));
        }
    }
    pub fn get(&self, k: &str) -> Option<&Val> {
        self.fields.iter().find(|(kk, _)| kk == k).map(|(_, v)| v)
    }
    pub fn get_num(&self, k: &str) -> Option<f64> {
        self.get(k).and_then(|v| v.num())
    }
    pub fn get_str(&self, k: &str) -> Option<&str> {
        self.get(k).and_then(|v| v.str())
    }

    pub fn to_line(&self) -> String {
        let mut s = String::from("{");
        for (i, (k, v)) in self.fields.iter().enumerate() {
            if i > 0 {
                s.push(',');
            }
            s.push_str(&quote(k));
            s.push(':');
            match v {
                Val::Num(n) => {
                    if n.is_finite() {
                        if n.fract() == 0.0 && n.abs() < 1e15 {
                            s.push_str(&format!("{}", *n as i64));
                        } else {
                            s.push_str(&format!("{n:.4}"));
                        }
                    } else {
                        s.push_str("null");
                    }
                }
                Val::Str(t) => s.push_str(&quote(t)),
                Val::Bool(b) => s.push_str(if *b { "true" } else { "false" }),
            }
        }
        s.push('}');
        s
    }

    /// Parses one flat JSON object (no nesting; `null` values are dropped).
    pub fn parse(line: &str) -> Option<Json> {
        let b = line.trim().as_bytes();
        let mut i = 0;
        let ws = |i: &mut usize| {
            while *i < b.len() && (b[*i] as char).is_ascii_whitespace() {
                *i += 1
            }
        };
        fn string(b: &[u8], i: &mut usize) -> Option<String> {
            if b.get(*i) != Some(&b'"') {
                return None;
            }
            *i += 1;
            let mut out = Vec::new();
            while *i < b.len() {
                match b[*i] {
                    b'"' => {
                        *i += 1;
                        return String::from_utf8(out).ok();
                    }
                    b'\\' => {
                        *i += 1;
                        match b.get(*i)? {
                            b'n' => out.push(b'\n'),
                            b't' => out.push(b'\t'),
                            b'r' => out.push(b'\r'),
                            b'u' => {
                                let h = std::str::from_utf8(b.get(*i + 1..*i + 5)?).ok()?;
                                let c = char::from_u32(u32::from_str_radix(h, 16).ok()?)?;
                                let mut tmp = [0u8; 4];
                                out.extend_from_slice(c.encode_utf8(&mut tmp).as_bytes());
                                *i += 4;
                            }
                            c => out.push(*c),
                        }
                        *i += 1;
                    }
                    c => {
                        out.push(c);
                        *i += 1;
                    }
                }
            }
            None
        }
        ws(&mut i);
        if b.get(i) != Some(&b'{') {
            return None;
        }
        i += 1;
        let mut j = Json::new();
        loop {
            ws(&mut i);
            if b.get(i) == Some(&b'}') {
                return Some(j);
            }
            let k = string(b, &mut i)?;
            ws(&mut i);
            if b.get(i) != Some(&b':') {
                return None;
            }
            i += 1;
            ws(&mut i);
            match b.get(i)? {
                b'"' => {
                    let v = string(b, &mut i)?;
                    j.fields.push((k, Val::Str(v)));
                }
                b't' if b[i..].starts_with(b"true") => {
                    i += 4;
                    j.fields.push((k, Val::Bool(true)));
                }
                b'f' if b[i..].starts_with(b"false") => {
                    i += 5;
                    j.fields.push((k, Val::Bool(false)));
                }
                b'n' if b[i..].starts_with(b"null") => {
                    i += 4;
                }
                _ => {
                    let st = i;
                    while i < b.len() && !matches!(b[i], b',' | b'}') && !(b[i] as char).is_ascii_whitespace() {
                        i += 1;
                    }
                    let n: f64 = std::str::from_utf8(&b[st..i]).ok()?.parse().ok()?;
                    j.fields.push((k, Val::Num(n)));
                }
            }
            ws(&mut i);
            match b.get(i)? {
                b',' => i += 1,
                b'}' => return Some(j),
                _ => return None,
            }
        }
    }
}

fn quote(s: &str) -> String {
    let mut o = String::with_capacity(s.len() + 2);
    o.push('"');
    for c in s.chars() {
        match c {
            '"' => o.push_str("\\\""),
            '\\' => o.push_str("\\\\"),
            '\n' => o.push_str("\\n"),
            '\r' => o.push_str("\\r"),
            '\t' => o.push_str("\\t"),
            c if (c as u32) < 0x20 => o.push_str(&format!("\\u{:04x}", c as u32)),
            c => o.push(c),
        }
    }
    o.push('"');
    o
}

// ---------------------------------------------------------------------------------------
// HTTP/1.1 hello world: the same pipelining-safe parser for every server contender.
// ---------------------------------------------------------------------------------------

pub const HTTP_BODY: &[u8] = b"Hello, World!";
pub const HTTP_RESPONSE: &[u8] =
    b"HTTP/1.1 200 OK\r\nServer: bench\r\nContent-Type: text/plain\r\nContent-Length: 13\r\n\r\nHello, World!";
pub const HTTP_REQUEST: &[u8] = b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: blitz-bench\r\n\r\n";

/// Result of feeding a connection's input buffer to the parser.
#[derive(Debug, PartialEq, Eq)]
pub enum HttpStep {
    /// `n` complete requests were consumed from the front of the buffer (possibly 0: need more bytes).
    Ok(usize),
    /// Malformed or oversized request: close the connection.
    Bad,
}

/// Consumes every complete request at the front of `inbuf` (pipelined requests included),
/// appending one response per request to `out`. Incomplete trailing bytes stay in `inbuf`.
/// Request bodies announced by `Content-Length` are skipped; chunked bodies are refused.
pub fn http_process(inbuf: &mut Vec<u8>, out: &mut Vec<u8>) -> HttpStep {
    let mut pos = 0;
    let mut n = 0;
    loop {
        let rest = &inbuf[pos..];
        let Some(hend) = find_header_end(rest) else {
            if rest.len() > 64 * 1024 {
                return HttpStep::Bad;
            }
            break;
        };
        let head = &rest[..hend];
        if !(head.starts_with(b"GET ")
            || head.starts_with(b"POST ")
            || head.starts_with(b"HEAD ")
            || head.starts_with(b"PUT "))
        {
            return HttpStep::Bad;
        }
        let mut body = 0usize;
        for line in head.split(|&c| c == b'\n') {
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            if let Some(colon) = line.iter().position(|&c| c == b':') {
                let (name, val) = line.split_at(colon);
                let val = trim(&val[1..]);
                if name.eq_ignore_ascii_case(b"content-length") {
                    match std::str::from_utf8(val).ok().and_then(|v| v.parse::<usize>().ok()) {
                        Some(l) if l <= 1 << 20 => body = l,
                        _ => return HttpStep::Bad,
                    }
                } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
                    return HttpStep::Bad;
                }
            }
        }
        let total = hend + body;
        if rest.len() < total {
            break;
        }
        pos += total;
        n += 1;
        out.extend_from_slice(HTTP_RESPONSE);
    }
    if pos > 0 {
        inbuf.drain(..pos);
    }
    HttpStep::Ok(n)
}

fn trim(v: &[u8]) -> &[u8] {
    let s = v.iter().position(|c| !c.is_ascii_whitespace()).unwrap_or(v.len());
    let e = v.iter().rposition(|c| !c.is_ascii_whitespace()).map(|p| p + 1).unwrap_or(s);
    &v[s..e.max(s)]
}

/// Index just past the blank line ending the header block.
fn find_header_end(b: &[u8]) -> Option<usize> {
    if b.len() < 4 {
        return None;
    }
    let mut i = 0;
    while i + 3 < b.len() {
        // jump to the next '\r'
        match b[i..].iter().position(|&c| c == b'\r') {
            None => return None,
            Some(p) => i += p,
        }
        if i + 3 < b.len() && &b[i..i + 4] == b"\r\n\r\n" {
            return Some(i + 4);
        }
        i += 1;
    }
    None
}

// ---------------------------------------------------------------------------------------
// Linux helpers.
// ---------------------------------------------------------------------------------------

/// Pins the calling thread (and threads it starts later) to one CPU.
pub fn pin_to_cpu(cpu: usize) -> io::Result<()> {
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        if libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

/// Applies `--cpu N` if given (ignored with a warning if it fails).
pub fn apply_cpu_arg(args: &Args) {
    if let Some(c) = args.get("cpu") {
        if let Ok(c) = c.parse::<usize>() {
            if let Err(e) = pin_to_cpu(c) {
                eprintln!("warning: sched_setaffinity(cpu {c}): {e}");
            }
        }
    }
}

/// Raises RLIMIT_NOFILE's soft limit to `want` (or to the hard limit, raising that
/// too when allowed). Returns the soft limit in force afterwards.
pub fn raise_nofile(want: u64) -> u64 {
    unsafe {
        let mut r: libc::rlimit = std::mem::zeroed();
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut r);
        if r.rlim_cur >= want {
            return r.rlim_cur;
        }
        let mut n = r;
        n.rlim_cur = want;
        if n.rlim_max < want {
            n.rlim_max = want;
        }
        if libc::setrlimit(libc::RLIMIT_NOFILE, &n) != 0 {
            n.rlim_max = r.rlim_max;
            n.rlim_cur = r.rlim_max.min(want);
            libc::setrlimit(libc::RLIMIT_NOFILE, &n);
        }
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut r);
        r.rlim_cur
    }
}

/// User+system CPU time of a whole process (all threads), in seconds, from `/proc/<pid>/stat`.
pub fn proc_cpu_secs(pid: u32) -> Option<f64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // fields after the command name (which is in parentheses and may contain spaces)
    let rest = &s[s.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    // rest starts at field 3 (state); utime is field 14, stime field 15
    let ut: f64 = f.get(11)?.parse().ok()?;
    let st: f64 = f.get(12)?.parse().ok()?;
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    Some((ut + st) / hz)
}

/// Resident set size of a process in bytes (VmRSS from `/proc/<pid>/status`).
pub fn proc_rss_bytes(pid: u32) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    for l in s.lines() {
        if let Some(v) = l.strip_prefix("VmRSS:") {
            let kb: u64 = v.trim().trim_end_matches("kB").trim().parse().ok()?;
            return Some(kb * 1024);
        }
    }
    None
}

/// CPU time (user+system) of the calling process, in seconds, from getrusage.
pub fn self_cpu_secs() -> f64 {
    unsafe {
        let mut ru: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_SELF, &mut ru);
        let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
        tv(ru.ru_utime) + tv(ru.ru_stime)
    }
}

/// Sets SO_LINGER {on, 0} so that close() sends RST and leaves no TIME_WAIT behind
/// (the load generator opens hundreds of thousands of connections per run).
pub fn set_linger_zero(fd: std::os::fd::RawFd) {
    let l = libc::linger { l_onoff: 1, l_linger: 0 };
    unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            &l as *const _ as *const libc::c_void,
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        );
    }
}

/// Median of a slice (NaN-free input expected); `None` if empty.
pub fn median(v: &[f64]) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    let mut s = v.to_vec();
    s.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
    let n = s.len();
    Some(if n % 2 == 1 { s[n / 2] } else { (s[n / 2 - 1] + s[n / 2]) / 2.0 })
}

/// Byte `i` of the deterministic payload pattern (used by the load generator to
/// build and verify messages).
#[inline]
pub fn pattern_byte(i: usize) -> u8 {
    // period 251 (prime), never aligns with power-of-two message sizes
    (i % 251) as u8 ^ 0x5a
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_roundtrip() {
        let j = Json::new().num("a", 1.5).str("b", "x\"y").bool("c", true).num("d", 3.0);
        let p = Json::parse(&j.to_line()).unwrap();
        assert_eq!(p.get_num("a"), Some(1.5));
        assert_eq!(p.get_str("b"), Some("x\"y"));
        assert_eq!(p.get("c"), Some(&Val::Bool(true)));
        assert_eq!(p.get_num("d"), Some(3.0));
    }

    #[test]
    fn http_pipelined_and_split() {
        let mut out = Vec::new();
        let mut inb = Vec::new();
        let mut all = Vec::new();
        for _ in 0..3 {
            all.extend_from_slice(HTTP_REQUEST);
        }
        all.extend_from_slice(b"POST /x HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello");
        // feed one byte at a time: every split point must work
        let mut total = 0;
        for &b in &all {
            inb.push(b);
            match http_process(&mut inb, &mut out) {
                HttpStep::Ok(n) => total += n,
                HttpStep::Bad => panic!("bad"),
            }
        }
        assert_eq!(total, 4);
        assert!(inb.is_empty());
        assert_eq!(out.len(), 4 * HTTP_RESPONSE.len());
        // all at once
        let mut inb = all.clone();
        let mut out = Vec::new();
        assert_eq!(http_process(&mut inb, &mut out), HttpStep::Ok(4));
        assert_eq!(http_process(&mut b"garbage\r\n\r\n".to_vec(), &mut out), HttpStep::Bad);
    }
}
