//! Orchestrator: runs every (workload, contender) pair in interleaved rounds, collects
//! the load generator's JSON, and writes `REPORT.md`, SVG charts and `raw.jsonl`.
//!
//! Usually started by `bench/run.sh`; `bench --help` lists the options.

use blitz_io_bench::{median, proc_cpu_secs, proc_rss_bytes, Args, Json, Val};
use std::fmt::Write as _;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

const ALL_CONTENDERS: &[&str] = &["blitz-mt", "blitz-ct", "tokio-mt", "tokio-ct", "mio", "smol"];

const HELP: &str = "bench [--quick] [--rounds N] [--duration SECS] [--warmup SECS]
      [--contenders a,b,...] [--workloads a,b,...] [--idle-conns N] [--no-strace]
      [--slice SECS | --sequential] [--slice-mt SECS] [--ramp-mt SECS] [--bin-dir DIR] [--out DIR] [--repo DIR]
contenders: blitz-mt blitz-ct tokio-mt tokio-ct mio smol
workloads:  echo-64-c1 echo-64-c50 echo-64-c500 echo-16k-c50 http-c50 udp-64 unix-64-c1
            churn-c16 idle-mem rt-spawn rt-pingpong rt-timers";

#[derive(Clone, Copy, PartialEq)]
enum Kind {
    /// server workload, loadgen workload, conns, size
    Net(&'static str, &'static str, usize, usize),
    Http(usize),
    Idle,
    Rt(&'static str),
}

struct Wl {
    name: &'static str,
    title: &'static str,
    kind: Kind,
}

fn workloads() -> Vec<Wl> {
    use Kind::*;
    vec![
        Wl { name: "echo-64-c1", title: "TCP echo ping-pong, 64 B, 1 connection", kind: Net("echo", "echo", 1, 64) },
        Wl {
            name: "echo-64-c50",
            title: "TCP echo ping-pong, 64 B, 50 connections",
            kind: Net("echo", "echo", 50, 64),
        },
        Wl {
            name: "echo-64-c500",
            title: "TCP echo ping-pong, 64 B, 500 connections",
            kind: Net("echo", "echo", 500, 64),
        },
        Wl {
            name: "echo-16k-c50",
            title: "TCP echo ping-pong, 16 KiB, 50 connections",
            kind: Net("echo", "echo", 50, 16384),
        },
        Wl { name: "http-c50", title: "HTTP/1.1 keep-alive hello world, 50 connections", kind: Http(50) },
        Wl { name: "udp-64", title: "UDP ping-pong, 64 B datagrams, 1 socket", kind: Net("udp", "udp", 1, 64) },
        Wl {
            name: "unix-64-c1",
            title: "Unix-stream echo ping-pong, 64 B, 1 connection",
            kind: Net("unix", "unix", 1, 64),
        },
        Wl {
            name: "churn-c16",
            title: "Connection churn (connect, 64 B round trip, close), 16 in flight",
            kind: Net("echo", "churn", 16, 64),
        },
        Wl { name: "idle-mem", title: "Memory: RSS per idle connection", kind: Idle },
        Wl { name: "rt-spawn", title: "Runtime: spawn + join, per task", kind: Rt("spawn") },
        Wl { name: "rt-pingpong", title: "Runtime: two-task wake ping-pong, per round trip", kind: Rt("pingpong") },
        Wl { name: "rt-timers", title: "Runtime: 10,000 concurrent timers (CPU per timer)", kind: Rt("timers") },
    ]
}

fn single_threaded(c: &str) -> bool {
    !c.ends_with("-mt")
}

/// The tokio contender of the same flavour, for ratios.
fn tokio_peer(c: &str) -> &'static str {
    if single_threaded(c) {
        "tokio-ct"
    } else {
        "tokio-mt"
    }
}

struct Cfg {
    bin: PathBuf,
    out: PathBuf,
    repo: PathBuf,
    quick: bool,
    rounds: usize,
    duration: f64,
    warmup: f64,
    idle_conns: usize,
    rt_n: usize,
    /// How system calls are counted: `perf` (kernel tracepoints, no slowdown of the
    /// server), `strace` (ptrace; slows the server), or `None` (`--no-strace`).
    strace: Option<SysTool>,
    wrk: Option<String>,
    contenders: Vec<String>,
    /// Slice length (s) of the alternating-slices mode for stream workloads, for the
    /// single-threaded servers; 0 runs each contender on its own instead
    /// (`--sequential`).
    slice: f64,
    /// Slice and ramp (s) for the multi-thread servers. Their throughput settles only
    /// after some hundreds of milliseconds under load (tokio's multi-thread runtime
    /// measured 180k round trips/s in 50 ms slices, 159k after a 100 ms ramp and 146k
    /// after 500 ms, at 50 connections), so each slice first runs `ramp_mt` unmeasured.
    slice_mt: f64,
    ramp_mt: f64,
}

#[derive(Clone)]
struct Rec {
    workload: String,
    contender: String,
    round: usize,
    j: Json,
}

fn main() {
    let a = Args::parse();
    if a.flag("help") || a.flag("h") {
        println!("{HELP}");
        return;
    }
    let quick = a.flag("quick");
    let exe_dir = std::env::current_exe().ok().and_then(|p| p.parent().map(|p| p.to_path_buf())).unwrap_or_default();
    let bin = PathBuf::from(a.str_or("bin-dir", &exe_dir.to_string_lossy()));
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let out = PathBuf::from(a.str_or("out", &manifest.join("results").to_string_lossy()));
    let repo = PathBuf::from(a.str_or("repo", &manifest.join("..").to_string_lossy()));
    let built_blitz = cfg!(feature = "blitz");
    let mut contenders: Vec<String> = match a.get("contenders") {
        Some(s) => s.split(',').map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect(),
        None => ALL_CONTENDERS.iter().map(|s| s.to_string()).collect(),
    };
    if !built_blitz {
        let before = contenders.len();
        contenders.retain(|c| !c.starts_with("blitz"));
        if contenders.len() != before {
            eprintln!("[bench] built without the `blitz` feature: blitz contenders skipped");
        }
    }
    for c in &contenders {
        if !ALL_CONTENDERS.contains(&c.as_str()) {
            eprintln!("unknown contender {c}\n{HELP}");
            std::process::exit(2);
        }
    }
    let wl_filter: Option<Vec<String>> =
        a.get("workloads").map(|s| s.split(',').map(|s| s.trim().to_string()).collect());
    let wls: Vec<Wl> =
        workloads().into_iter().filter(|w| wl_filter.as_ref().is_none_or(|f| f.iter().any(|x| x == w.name))).collect();
    let wrk = which("wrk");
    let cfg = Cfg {
        bin,
        out,
        repo,
        quick,
        rounds: a.num("rounds", if quick { 1 } else { 4 }),
        duration: a.num("duration", if quick { 1.0 } else { 2.0 }),
        warmup: a.num("warmup", if quick { 0.3 } else { 1.0 }),
        idle_conns: a.num("idle-conns", if quick { 2000 } else { 10_000 }),
        rt_n: a.num("rt-n", if quick { 50_000 } else { 200_000 }),
        strace: if a.flag("no-strace") {
            None
        } else if perf_tracepoints_work() {
            Some(SysTool::Perf)
        } else if which("strace").is_some() {
            Some(SysTool::Strace)
        } else {
            None
        },
        wrk,
        contenders,
        slice: if a.flag("sequential") { 0.0 } else { a.num("slice", 0.05) },
        slice_mt: a.num("slice-mt", 0.5),
        ramp_mt: a.num("ramp-mt", 0.5),
    };
    std::fs::create_dir_all(&cfg.out).expect("create output dir");
    let _ = std::fs::create_dir_all("/tmp/bench");
    let started = Instant::now();
    let raw_path = cfg.out.join("raw.jsonl");
    let mut raw = std::fs::File::create(&raw_path).expect("raw.jsonl");
    let mut recs: Vec<Rec> = Vec::new();
    eprintln!(
        "[bench] contenders: {} | {} rounds x {} workloads | duration {}s warmup {}s | wrk: {} | strace: {}",
        cfg.contenders.join(","),
        cfg.rounds,
        wls.len(),
        cfg.duration,
        cfg.warmup,
        cfg.wrk.is_some(),
        cfg.strace.map_or("off", SysTool::name)
    );
    for round in 0..cfg.rounds {
        for w in &wls {
            // interleave: A B C in round 0, B C A in round 1, ...
            let cs: Vec<&String> = (0..cfg.contenders.len())
                .map(|i| &cfg.contenders[(i + round) % cfg.contenders.len()])
                .filter(|c| !(matches!(w.kind, Kind::Rt(_)) && c.as_str() == "mio"))
                .collect();
            // Stream workloads: every contender's server at once, the load alternating
            // between them in slices (see `loadgen`'s `sliced_bench`).
            let mut sliced: Vec<(String, Json)> = Vec::new();
            if cfg.slice > 0.0 && sliced_workload(w) {
                let t = Instant::now();
                // Single-threaded servers in short slices; multi-thread ones in longer
                // slices behind a ramp (see `Cfg::slice_mt`).
                // Single-threaded contenders also run in the multi-thread group, as
                // references measured over the same seconds (`mt_references`): each
                // multi-thread contender's JSON gets `same_run_rps_<reference>`.
                let mut mt: Vec<&String> = cs.iter().copied().filter(|c| !single_threaded(c)).collect();
                if !mt.is_empty() {
                    let refs = mt_references(w);
                    mt.extend(cs.iter().copied().filter(|c| refs.contains(&c.as_str())));
                }
                let groups: [(Vec<&String>, f64, f64, bool); 2] = [
                    (cs.iter().copied().filter(|c| single_threaded(c)).collect(), cfg.slice, 0.0, false),
                    (mt, cfg.slice_mt, cfg.ramp_mt, true),
                ];
                let mut refs_rps: Vec<(String, f64)> = Vec::new();
                for (group, slice, ramp, is_mt) in groups {
                    if group.is_empty() {
                        continue;
                    }
                    match run_sliced(&cfg, w, &group, round, slice, ramp) {
                        Ok(v) => {
                            for (c, j) in v {
                                if is_mt && single_threaded(&c) {
                                    refs_rps.extend(j.get_num("rps").map(|rps| (c, rps)));
                                } else {
                                    sliced.push((c, j));
                                }
                            }
                        }
                        Err(e) => sliced.extend(
                            group
                                .iter()
                                .filter(|c| !(is_mt && single_threaded(c)))
                                .map(|c| (c.to_string(), Json::new().str("error", e.clone()))),
                        ),
                    }
                }
                for (_, j) in sliced.iter_mut().filter(|(c, _)| !single_threaded(c)) {
                    for (r, rps) in &refs_rps {
                        j.set(&format!("same_run_rps_{r}"), Val::Num(*rps));
                    }
                }
                eprintln!("[bench] r{round} {:<13} sliced runs ({:.1}s)", w.name, t.elapsed().as_secs_f64());
            }
            if let (Kind::Http(conns), Some(wrk), true) = (w.kind, &cfg.wrk, cfg.slice > 0.0) {
                let t = Instant::now();
                match run_wrk_alternating(&cfg, wrk, &cs, conns, round) {
                    Ok(v) => sliced = v,
                    Err(e) => {
                        sliced = cs.iter().map(|c| (c.to_string(), Json::new().str("error", e.clone()))).collect()
                    }
                }
                eprintln!("[bench] r{round} {:<13} alternating wrk runs ({:.1}s)", w.name, t.elapsed().as_secs_f64());
            }
            for c in cs {
                let t = Instant::now();
                let j = if let Some((_, j)) = sliced.iter().find(|(sc, _)| sc == c) {
                    j.clone()
                } else {
                    match run_one(&cfg, w, c, round) {
                        Ok(j) => j,
                        Err(e) => Json::new().str("error", e),
                    }
                };
                let mut line = j.clone();
                line.set("bench_workload", Val::Str(w.name.to_string()));
                line.set("contender", Val::Str(c.clone()));
                line.set("round", Val::Num(round as f64));
                let _ = writeln!(raw, "{}", line.to_line());
                eprintln!(
                    "[bench] r{round} {:<13} {:<9} {} ({:.1}s)",
                    w.name,
                    c,
                    summary(w, &j),
                    t.elapsed().as_secs_f64()
                );
                recs.push(Rec { workload: w.name.to_string(), contender: c.clone(), round, j });
                if sliced.is_empty() {
                    std::thread::sleep(Duration::from_millis(150));
                }
            }
        }
    }
    // system calls per round trip (short traced runs, not part of the timed rounds)
    let mut sys: Vec<(String, String, Json)> = Vec::new();
    if let Some(tool) = cfg.strace {
        let sw: Vec<&str> =
            if quick { vec!["echo-64-c1"] } else { vec!["echo-64-c1", "echo-64-c50", "udp-64", "unix-64-c1"] };
        // Only the workloads this run measures.
        let sw: Vec<&str> = sw.into_iter().filter(|n| wls.iter().any(|w| w.name == *n)).collect();
        for wn in sw {
            let Some(w) = workloads().into_iter().find(|w| w.name == wn) else { continue };
            for c in &cfg.contenders {
                let r = match tool {
                    SysTool::Perf => perf_run(&cfg, &w, c),
                    SysTool::Strace => strace_run(&cfg, &w, c),
                };
                match r {
                    Ok(j) => {
                        eprintln!(
                            "[bench] {} {wn} {c}: {:.2} syscalls/rt",
                            tool.name(),
                            j.get_num("syscalls_per_rt").unwrap_or(f64::NAN)
                        );
                        let mut line = j.clone();
                        line.set("bench_workload", Val::Str(format!("strace-{wn}")));
                        line.set("contender", Val::Str(c.clone()));
                        let _ = writeln!(raw, "{}", line.to_line());
                        sys.push((wn.to_string(), c.clone(), j));
                    }
                    Err(e) => eprintln!("[bench] {} {wn} {c}: {e}", tool.name()),
                }
            }
        }
    }
    let total = started.elapsed();
    let report = write_report(&cfg, &wls, &recs, &sys, total);
    std::fs::write(cfg.out.join("REPORT.md"), &report).expect("write REPORT.md");
    write_charts(&cfg, &wls, &recs);
    eprintln!("[bench] done in {:.0}s: {}", total.as_secs_f64(), cfg.out.join("REPORT.md").display());
    print!("{report}");
}

fn summary(w: &Wl, j: &Json) -> String {
    if let Some(e) = j.get_str("error") {
        return format!("ERROR {e}");
    }
    let n = |k: &str| j.get_num(k).unwrap_or(f64::NAN);
    match w.kind {
        Kind::Idle => format!("{:.0} B/conn ({} conns)", n("bytes_per_conn"), n("established")),
        Kind::Rt(_) => format!("{:.1} ns/op", n("ns_per_op")),
        _ => format!(
            "{:.0}/s p50 {:.1}us p99 {:.1}us err {} srv {:.2}us/op lg {:.2}us/op",
            n("rps"),
            n("p50_us"),
            n("p99_us"),
            n("errors"),
            n("server_cpu_us_per_rt"),
            n("loadgen_cpu_us_per_rt")
        ),
    }
}

fn which(p: &str) -> Option<String> {
    let path = std::env::var("PATH").unwrap_or_default();
    path.split(':').map(|d| Path::new(d).join(p)).find(|f| f.is_file()).map(|f| f.to_string_lossy().into_owned())
}

// ---------------------------------------------------------------------------------------
// Running one measurement.
// ---------------------------------------------------------------------------------------

struct Server {
    child: Child,
    addr: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_server(cfg: &Cfg, contender: &str, workload: &str, tag: &str) -> Result<Server, String> {
    let path = format!("/tmp/bench/{}-{tag}.sock", std::process::id());
    let _ = std::fs::remove_file(&path);
    let mut cmd = Command::new(cfg.bin.join("server"));
    cmd.args(["--contender", contender, "--workload", workload, "--addr", "127.0.0.1:0", "--path", &path]);
    cmd.arg("--exit-on-stdin-eof");
    if single_threaded(contender) {
        cmd.args(["--cpu", "1"]);
    }
    cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::inherit());
    let mut child = cmd.spawn().map_err(|e| format!("spawn server: {e}"))?;
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut r = BufReader::new(stdout);
        let mut line = String::new();
        let _ = r.read_line(&mut line);
        let _ = tx.send(line);
        // keep draining so the server never blocks on a full pipe
        let mut sink = Vec::new();
        let _ = r.read_to_end(&mut sink);
    });
    let mut srv = Server { child, addr: String::new() };
    match rx.recv_timeout(Duration::from_secs(10)) {
        Ok(l) if l.starts_with("READY ") => {
            srv.addr = l["READY ".len()..].trim().to_string();
            Ok(srv)
        }
        Ok(l) => Err(format!("server did not start: {:?}", l.trim())),
        Err(_) => Err("server did not print READY within 10 s".into()),
    }
}

/// Runs a command to completion with a time limit; returns its stdout.
fn run_cmd(mut cmd: Command, limit: Duration) -> Result<String, String> {
    cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::inherit());
    let mut child = cmd.spawn().map_err(|e| format!("spawn {:?}: {e}", cmd.get_program()))?;
    let mut stdout = child.stdout.take().unwrap();
    let h = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stdout.read_to_string(&mut s);
        s
    });
    let t = Instant::now();
    loop {
        match child.try_wait() {
            Ok(Some(_)) => break,
            Ok(None) if t.elapsed() > limit => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("{:?} timed out after {:?}", cmd.get_program(), limit));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(10)),
            Err(e) => return Err(e.to_string()),
        }
    }
    Ok(h.join().unwrap_or_default())
}

fn last_json(out: &str) -> Result<Json, String> {
    out.lines()
        .rev()
        .find_map(Json::parse)
        .ok_or_else(|| format!("no JSON in output: {:?}", out.chars().take(300).collect::<String>()))
}

fn loadgen_cmd(cfg: &Cfg, srv: &Server, lw: &str, conns: usize, size: usize, dur: f64, warm: f64) -> Command {
    let mut cmd = Command::new(cfg.bin.join("loadgen"));
    cmd.args(["--workload", lw, "--cpu", "0"]);
    if lw == "unix" {
        cmd.args(["--path", &srv.addr]);
    } else {
        cmd.args(["--addr", &srv.addr]);
    }
    cmd.args(["--conns", &conns.to_string(), "--size", &size.to_string()]);
    cmd.args(["--duration", &dur.to_string(), "--warmup", &warm.to_string()]);
    cmd.args(["--server-pid", &srv.child.id().to_string()]);
    cmd
}

fn run_one(cfg: &Cfg, w: &Wl, c: &str, round: usize) -> Result<Json, String> {
    let tag = format!("{}-{c}-{round}", w.name);
    let limit = Duration::from_secs_f64(cfg.duration + cfg.warmup + 60.0);
    match w.kind {
        Kind::Net(sw, lw, conns, size) => {
            let srv = start_server(cfg, c, sw, &tag)?;
            let cmd = loadgen_cmd(cfg, &srv, lw, conns, size, cfg.duration, cfg.warmup);
            let j = last_json(&run_cmd(cmd, limit)?)?;
            if let Some(e) = j.get_str("error") {
                return Err(e.to_string());
            }
            Ok(j)
        }
        Kind::Http(conns) => {
            let srv = start_server(cfg, c, "http", &tag)?;
            let mut j = match &cfg.wrk {
                Some(wrk) => wrk_run(cfg, wrk, &srv, conns)?,
                None => {
                    let cmd = loadgen_cmd(cfg, &srv, "http", conns, 64, cfg.duration, cfg.warmup);
                    last_json(&run_cmd(cmd, limit)?)?
                }
            };
            if round == 0 {
                j.set("pipeline_check", Val::Str(pipeline_check(cfg, &srv)?));
            }
            Ok(j)
        }
        Kind::Idle => idle_run(cfg, c, &tag),
        Kind::Rt(b) => {
            let mut cmd = Command::new(cfg.bin.join("rtbench"));
            cmd.args(["--contender", c, "--bench", b]);
            if b != "timers" {
                cmd.args(["--n", &cfg.rt_n.to_string()]);
            }
            if single_threaded(c) {
                cmd.args(["--cpu", "1"]);
            }
            last_json(&run_cmd(cmd, Duration::from_secs(120))?)
        }
    }
}

/// TCP and Unix stream echo workloads run in alternating slices (not UDP, churn, HTTP,
/// memory or runtime workloads).
/// The single-threaded contenders that also run, as references, in the multi-thread
/// sliced group of workload `w`: blitz-ct always (blitz-mt's loss to it); on the 64-byte
/// echo at 50 and 500 connections, the multi-thread target's workloads, also tokio-ct
/// (tokio-mt's own loss) and the mio loop (the ceiling in that same measurement).
fn mt_references(w: &Wl) -> &'static [&'static str] {
    match w.kind {
        Kind::Net("echo", "echo", conns, 64) if conns >= 50 => &["blitz-ct", "tokio-ct", "mio"],
        _ => &["blitz-ct"],
    }
}

fn sliced_workload(w: &Wl) -> bool {
    matches!(w.kind, Kind::Net(_, lw, _, _) if lw == "echo" || lw == "unix" || lw == "udp" || lw == "churn")
}

/// One alternating-slices run: starts a server per contender (all at once), runs one
/// load generator over all of them, and returns each contender's JSON line.
fn run_sliced(
    cfg: &Cfg,
    w: &Wl,
    cs: &[&String],
    round: usize,
    slice: f64,
    ramp: f64,
) -> Result<Vec<(String, Json)>, String> {
    let Kind::Net(sw, lw, conns, size) = w.kind else { return Err("not a stream workload".into()) };
    let mut servers = Vec::with_capacity(cs.len());
    for c in cs {
        servers.push(start_server(cfg, c, sw, &format!("{}-{c}-{round}", w.name))?);
    }
    let mut cmd = Command::new(cfg.bin.join("loadgen"));
    cmd.args(["--workload", lw, "--cpu", "0"]);
    cmd.args(["--targets", &servers.iter().map(|s| s.addr.as_str()).collect::<Vec<_>>().join(",")]);
    cmd.args(["--server-pids", &servers.iter().map(|s| s.child.id().to_string()).collect::<Vec<_>>().join(",")]);
    cmd.args(["--conns", &conns.to_string(), "--size", &size.to_string()]);
    cmd.args(["--slice", &slice.to_string(), "--ramp", &ramp.to_string()]);
    cmd.args(["--duration", &cfg.duration.to_string(), "--warmup", &cfg.warmup.to_string()]);
    let slices = (cfg.duration / slice).ceil();
    let limit = Duration::from_secs_f64((cfg.duration + cfg.warmup + slices * ramp + 10.0) * cs.len() as f64 + 60.0);
    let out = run_cmd(cmd, limit)?;
    let lines: Vec<Json> = out.lines().filter_map(Json::parse).collect();
    if let Some(e) = lines.iter().find_map(|j| j.get_str("error")) {
        return Err(e.to_string());
    }
    let mut v = Vec::with_capacity(cs.len());
    for (t, c) in cs.iter().enumerate() {
        let j = lines
            .iter()
            .find(|j| j.get_num("target") == Some(t as f64))
            .ok_or_else(|| format!("no result for target {t} ({c})"))?;
        v.push((c.to_string(), j.clone()));
    }
    Ok(v)
}

/// Writes wrk's report script (one JSON line at the end of a run) and returns its path.
fn wrk_script() -> Result<&'static str, String> {
    let script = "/tmp/bench/wrk-report.lua";
    std::fs::write(
        script,
        r#"done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('{"requests":%d,"duration_us":%d,"bytes":%d,"p50_us":%.1f,"p90_us":%.1f,"p99_us":%.1f,"p999_us":%.1f,"max_us":%.1f,"mean_us":%.1f,"errors":%d}\n',
    summary.requests, summary.duration, summary.bytes, latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency:percentile(99.9), latency.max, latency.mean,
    e.connect + e.read + e.write + e.status + e.timeout))
end
"#,
    )
    .map_err(|e| e.to_string())?;
    Ok(script)
}

/// One wrk run of `secs` seconds against `srv` (wrk on core 0): wrk's JSON line and the
/// server's CPU seconds over it.
fn wrk_once(wrk: &str, script: &str, srv: &Server, conns: usize, secs: u64) -> Result<(Json, Option<f64>), String> {
    let url = format!("http://{}/", srv.addr);
    let mut cmd = Command::new("taskset");
    cmd.args(["-c", "0", wrk, "-t1", "-c", &conns.to_string(), "-d", &format!("{secs}s"), "-s", script, &url]);
    let cpu0 = proc_cpu_secs(srv.child.id());
    let out = run_cmd(cmd, Duration::from_secs(secs + 60))?;
    let cpu1 = proc_cpu_secs(srv.child.id());
    Ok((last_json(&out)?, cpu0.zip(cpu1).map(|(a, b)| b - a)))
}

/// The result line of an HTTP measurement from wrk's per-run JSON lines: requests and
/// time summed; latency percentiles are the request-weighted mean of the runs' own.
fn wrk_result(conns: usize, runs: &[(Json, Option<f64>)]) -> Json {
    let sum = |k: &str| runs.iter().map(|(w, _)| w.get_num(k).unwrap_or(0.0)).sum::<f64>();
    let req = sum("requests");
    let dur = sum("duration_us") / 1e6;
    let mut j = Json::new()
        .str("workload", "http")
        .str("loadgen", "wrk")
        .num("conns", conns as f64)
        .num("duration_s", dur)
        .num("round_trips", req)
        .num("rps", if dur > 0.0 { req / dur } else { 0.0 })
        .num("mb_s", if dur > 0.0 { sum("bytes") / dur / 1e6 } else { 0.0 })
        .num("errors", sum("errors"));
    for k in ["p50_us", "p90_us", "p99_us", "p999_us", "mean_us"] {
        let weighted = runs
            .iter()
            .map(|(w, _)| w.get_num(k).unwrap_or(f64::NAN) * w.get_num("requests").unwrap_or(0.0))
            .sum::<f64>();
        j = j.num(k, if req > 0.0 { weighted / req } else { f64::NAN });
    }
    j = j.num("max_us", runs.iter().map(|(w, _)| w.get_num("max_us").unwrap_or(f64::NAN)).fold(f64::NAN, f64::max));
    if runs.iter().all(|(_, cpu)| cpu.is_some()) {
        let cpu: f64 = runs.iter().filter_map(|(_, c)| *c).sum();
        j = j.num("server_cpu_s", cpu).num("server_cpu_us_per_rt", if req > 0.0 { cpu * 1e6 / req } else { 0.0 });
    }
    j.num("slices", runs.len() as f64)
}

fn wrk_run(cfg: &Cfg, wrk: &str, srv: &Server, conns: usize) -> Result<Json, String> {
    let script = wrk_script()?;
    if cfg.warmup >= 0.5 {
        wrk_once(wrk, script, srv, conns, cfg.warmup.round().max(1.0) as u64)?;
    }
    let secs = cfg.duration.round().max(1.0) as u64;
    Ok(wrk_result(conns, &[wrk_once(wrk, script, srv, conns, secs)?]))
}

/// HTTP under wrk in alternating 1-second runs: every contender's server at once, one wrk
/// run per server in turn (order rotated each cycle) until each had `duration` seconds,
/// after a warm-up run each. wrk cannot switch targets inside a run, so the slices are
/// wrk's shortest run (1 s) rather than the load generator's 50 ms; that still spreads
/// each contender over the same seconds as the others. In round 0 each server also
/// gets the pipelining check.
fn run_wrk_alternating(
    cfg: &Cfg,
    wrk: &str,
    cs: &[&String],
    conns: usize,
    round: usize,
) -> Result<Vec<(String, Json)>, String> {
    let script = wrk_script()?;
    let mut servers = Vec::with_capacity(cs.len());
    for c in cs {
        servers.push(start_server(cfg, c, "http", &format!("http-{c}-{round}"))?);
    }
    if cfg.warmup >= 0.5 {
        for srv in &servers {
            wrk_once(wrk, script, srv, conns, 1)?;
        }
    }
    let cycles = cfg.duration.round().max(1.0) as usize;
    let mut runs: Vec<Vec<(Json, Option<f64>)>> = vec![Vec::new(); servers.len()];
    for k in 0..cycles {
        for i in 0..servers.len() {
            let t = (i + k) % servers.len();
            runs[t].push(wrk_once(wrk, script, &servers[t], conns, 1)?);
        }
    }
    let mut v = Vec::with_capacity(cs.len());
    for ((c, srv), r) in cs.iter().zip(&servers).zip(&runs) {
        let mut j = wrk_result(conns, r).str("mode", "wrk-alternating");
        if round == 0 {
            j.set("pipeline_check", Val::Str(pipeline_check(cfg, srv)?));
        }
        v.push((c.to_string(), j));
    }
    Ok(v)
}

/// 16 pipelined requests per write on 4 connections, every response byte verified.
fn pipeline_check(cfg: &Cfg, srv: &Server) -> Result<String, String> {
    let mut cmd = loadgen_cmd(cfg, srv, "http", 4, 64, 0.3, 0.0);
    cmd.args(["--pipeline", "16"]);
    let p = last_json(&run_cmd(cmd, Duration::from_secs(60))?)?;
    let perr = p.get_num("errors").unwrap_or(1.0) + p.get_num("dead_conns").unwrap_or(0.0);
    let ok = perr == 0.0 && p.get_num("round_trips").unwrap_or(0.0) > 0.0;
    Ok(if ok { "ok".into() } else { format!("FAILED ({perr} errors)") })
}

fn idle_run(cfg: &Cfg, c: &str, tag: &str) -> Result<Json, String> {
    let srv = start_server(cfg, c, "echo", tag)?;
    std::thread::sleep(Duration::from_millis(300));
    let pid = srv.child.id();
    let rss0 = proc_rss_bytes(pid).ok_or("no RSS")?;
    let mut cmd = Command::new(cfg.bin.join("loadgen"));
    cmd.args([
        "--workload",
        "idle",
        "--cpu",
        "0",
        "--addr",
        &srv.addr,
        "--conns",
        &cfg.idle_conns.to_string(),
        "--size",
        "64",
    ]);
    cmd.args(["--hold", "120"]);
    cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::inherit());
    let mut lg = cmd.spawn().map_err(|e| format!("spawn loadgen: {e}"))?;
    let stdout = lg.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut r = BufReader::new(stdout);
        let mut line = String::new();
        let _ = r.read_line(&mut line);
        let _ = tx.send(line);
    });
    let line = rx.recv_timeout(Duration::from_secs(90));
    let res = (|| {
        let line = line.map_err(|_| "idle loadgen did not report within 90 s".to_string())?;
        let j = Json::parse(&line).ok_or_else(|| format!("bad idle output {line:?}"))?;
        std::thread::sleep(Duration::from_millis(500));
        let rss1 = proc_rss_bytes(pid).ok_or("no RSS")?;
        let est = j.get_num("established").unwrap_or(0.0);
        Ok::<Json, String>(
            j.num("rss_before", rss0 as f64)
                .num("rss_after", rss1 as f64)
                .num("bytes_per_conn", if est > 0.0 { (rss1 as f64 - rss0 as f64) / est } else { f64::NAN }),
        )
    })();
    drop(lg.stdin.take());
    let t = Instant::now();
    while t.elapsed() < Duration::from_secs(10) {
        if let Ok(Some(_)) = lg.try_wait() {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = lg.kill();
    let _ = lg.wait();
    drop(srv);
    res
}

/// A way to count the server's system calls.
#[derive(Clone, Copy, Debug)]
enum SysTool {
    Perf,
    Strace,
}

impl SysTool {
    fn name(self) -> &'static str {
        match self {
            SysTool::Perf => "perf",
            SysTool::Strace => "strace",
        }
    }
}

/// The system calls `perf_run` counts one by one (all of them are counted in the total).
const PERF_SYSCALLS: &[&str] = &[
    "epoll_wait",
    "epoll_pwait",
    "recvfrom",
    "sendto",
    "read",
    "write",
    "readv",
    "writev",
    "recvmsg",
    "sendmsg",
    "futex",
    "epoll_ctl",
    "sched_yield",
];

/// Whether `perf stat` can count syscall tracepoints here (needs perf and tracefs).
fn perf_tracepoints_work() -> bool {
    which("perf").is_some()
        && Command::new("perf")
            .args(["stat", "-x,", "-e", "raw_syscalls:sys_enter", "true"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
}

/// System calls per round trip from the kernel's syscall tracepoints (`perf stat -p`):
/// exact counts with the server running at full speed, unlike ptrace, where a slowed
/// server finds its next request already queued and skips `epoll_wait`.
fn perf_run(cfg: &Cfg, w: &Wl, c: &str) -> Result<Json, String> {
    let Kind::Net(sw, lw, conns, size) = w.kind else { return Err("not a net workload".into()) };
    let srv = start_server(cfg, c, sw, &format!("perf-{}-{c}", w.name))?;
    // Warm up (connections, buffers) before counting.
    let warm = loadgen_cmd(cfg, &srv, lw, conns, size, 0.3, 0.0);
    last_json(&run_cmd(warm, Duration::from_secs(60))?)?;
    let outf = format!("/tmp/bench/perf-{}-{c}.txt", w.name);
    let _ = std::fs::remove_file(&outf);
    let mut events = vec!["raw_syscalls:sys_enter".to_string()];
    events.extend(PERF_SYSCALLS.iter().map(|n| format!("syscalls:sys_enter_{n}")));
    let mut st = Command::new("perf")
        .args(["stat", "-x,", "-o", &outf, "-e", &events.join(","), "-p", &srv.child.id().to_string()])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("spawn perf: {e}"))?;
    std::thread::sleep(Duration::from_millis(300));
    let dur = if cfg.quick { 0.5 } else { 1.5 };
    let cmd = loadgen_cmd(cfg, &srv, lw, conns, size, dur, 0.0);
    let j = last_json(&run_cmd(cmd, Duration::from_secs(60))?);
    // SAFETY: plain kill(2) on the pid of a child we spawned and have not reaped yet.
    unsafe {
        libc::kill(st.id() as i32, libc::SIGINT);
    }
    let _ = st.wait();
    drop(srv);
    let j = j?;
    let rts = j.get_num("total_round_trips").unwrap_or(0.0);
    let text = std::fs::read_to_string(&outf).map_err(|e| format!("perf output: {e}"))?;
    // CSV rows: count,unit,event,...
    let mut rows: Vec<(String, f64)> = Vec::new();
    let mut total = None;
    for l in text.lines() {
        let t: Vec<&str> = l.split(',').collect();
        if t.len() < 3 {
            continue;
        }
        let Ok(calls) = t[0].parse::<f64>() else { continue };
        if t[2] == "raw_syscalls:sys_enter" {
            total = Some(calls);
        } else if let Some(name) = t[2].strip_prefix("syscalls:sys_enter_") {
            if calls > 0.0 {
                rows.push((name.to_string(), calls));
            }
        }
    }
    let total = total.ok_or("no raw_syscalls count in perf output")?;
    rows.sort_by(|a, b| b.1.total_cmp(&a.1));
    let top: Vec<String> =
        rows.iter().take(4).map(|(n, c)| format!("{n} {:.2}", if rts > 0.0 { c / rts } else { 0.0 })).collect();
    Ok(Json::new()
        .num("round_trips", rts)
        .num("syscalls", total)
        .num("syscalls_per_rt", if rts > 0.0 { total / rts } else { f64::NAN })
        .str("tool", "perf")
        .str("top", top.join(", ")))
}

fn strace_run(cfg: &Cfg, w: &Wl, c: &str) -> Result<Json, String> {
    let Kind::Net(sw, lw, conns, size) = w.kind else { return Err("not a net workload".into()) };
    let srv = start_server(cfg, c, sw, &format!("strace-{}-{c}", w.name))?;
    let outf = format!("/tmp/bench/strace-{}-{c}.txt", w.name);
    let _ = std::fs::remove_file(&outf);
    let mut st = Command::new("strace")
        .args(["-c", "-f", "-q", "-o", &outf, "-p", &srv.child.id().to_string()])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("spawn strace: {e}"))?;
    std::thread::sleep(Duration::from_millis(500));
    let dur = if cfg.quick { 0.5 } else { 1.5 };
    let cmd = loadgen_cmd(cfg, &srv, lw, conns, size, dur, 0.0);
    let j = last_json(&run_cmd(cmd, Duration::from_secs(60))?);
    // SAFETY: plain kill(2) on the pid of a child we spawned and have not reaped yet.
    unsafe {
        libc::kill(st.id() as i32, libc::SIGINT);
    }
    let t = Instant::now();
    while t.elapsed() < Duration::from_secs(10) {
        if let Ok(Some(_)) = st.try_wait() {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = st.kill();
    let _ = st.wait();
    drop(srv);
    let j = j?;
    let rts = j.get_num("total_round_trips").unwrap_or(0.0);
    let text = std::fs::read_to_string(&outf).map_err(|e| format!("strace output: {e}"))?;
    // rows: % time, seconds, usecs/call, calls, [errors], syscall
    let mut rows: Vec<(String, f64)> = Vec::new();
    let mut total = None;
    for l in text.lines() {
        let t: Vec<&str> = l.split_whitespace().collect();
        if t.len() < 5 || t[0].starts_with('%') || t[0].starts_with('-') {
            continue;
        }
        let Ok(calls) = t[3].parse::<f64>() else { continue };
        let name = t[t.len() - 1].to_string();
        if name == "total" {
            total = Some(calls);
        } else {
            rows.push((name, calls));
        }
    }
    let total = total.ok_or("no total line in strace output")?;
    rows.sort_by(|a, b| b.1.partial_cmp(&a.1).unwrap());
    let top: Vec<String> =
        rows.iter().take(4).map(|(n, c)| format!("{n} {:.2}", if rts > 0.0 { c / rts } else { 0.0 })).collect();
    Ok(Json::new()
        .num("round_trips", rts)
        .num("syscalls", total)
        .num("syscalls_per_rt", if rts > 0.0 { total / rts } else { f64::NAN })
        .str("top", top.join(", ")))
}

// ---------------------------------------------------------------------------------------
// Report.
// ---------------------------------------------------------------------------------------

struct Metric {
    key: &'static str,
}

fn primary(w: &Wl) -> Metric {
    match w.kind {
        Kind::Idle => Metric { key: "bytes_per_conn" },
        Kind::Rt(_) => Metric { key: "ns_per_op" },
        _ => Metric { key: "rps" },
    }
}

fn vals(recs: &[Rec], w: &str, c: &str, k: &str) -> Vec<f64> {
    recs.iter()
        .filter(|r| r.workload == w && r.contender == c)
        .filter_map(|r| r.j.get_num(k))
        .filter(|v| v.is_finite())
        .collect()
}

/// Median over rounds of (contender / reference) from the same round.
fn ratio(recs: &[Rec], w: &str, c: &str, reference: &str, k: &str) -> Option<f64> {
    let mut rs = Vec::new();
    for r in recs.iter().filter(|r| r.workload == w && r.contender == c) {
        let Some(a) = r.j.get_num(k) else { continue };
        if let Some(b) = recs
            .iter()
            .find(|x| x.workload == w && x.contender == reference && x.round == r.round)
            .and_then(|x| x.j.get_num(k))
        {
            if b != 0.0 && a.is_finite() && b.is_finite() {
                rs.push(a / b);
            }
        }
    }
    median(&rs)
}

fn fmt_num(v: f64) -> String {
    if !v.is_finite() {
        "–".into()
    } else if v.abs() >= 100_000.0 {
        format!("{:.0}k", v / 1000.0)
    } else if v.abs() >= 100.0 {
        format!("{:.0}", v)
    } else if v.abs() >= 10.0 {
        format!("{:.1}", v)
    } else {
        format!("{:.2}", v)
    }
}

/// How the load generator was checked, from the 64-byte echo at 50 connections: what
/// it costs per round trip against each single-threaded server, beside what the
/// hand-written mio server loop (the leanest server) costs; how busy its core was
/// (rate × CPU per round trip); and how far apart the rates it drove are.
fn loadgen_check(recs: &[Rec], contenders: &[String]) -> Option<String> {
    const W: &str = "echo-64-c50";
    let mio_srv = median(&vals(recs, W, "mio", "server_cpu_us_per_rt"))?;
    // (contender, rate, load generator CPU µs per round trip)
    let rows: Vec<(&str, f64, f64)> = contenders
        .iter()
        .filter(|c| !c.ends_with("-mt"))
        .filter_map(|c| {
            let rps = median(&vals(recs, W, c, "rps"))?;
            let lg = median(&vals(recs, W, c, "loadgen_cpu_us_per_rt"))?;
            Some((c.as_str(), rps, lg))
        })
        .collect();
    if rows.len() < 2 {
        return None;
    }
    let range = |f: &dyn Fn(&(&str, f64, f64)) -> f64| {
        rows.iter().map(f).fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| (a.min(v), b.max(v)))
    };
    let (lg_lo, lg_hi) = range(&|r| r.2);
    let (busy_lo, busy_hi) = range(&|r| r.1 * r.2 / 1e4);
    let fastest = rows.iter().fold(rows[0], |b, r| if r.1 > b.1 { *r } else { b });
    let slowest = rows.iter().fold(rows[0], |b, r| if r.1 < b.1 { *r } else { b });
    Some(format!(
        "- load generator check (`{W}`, single-threaded servers): it spends {}–{} µs of CPU per round trip \
         (its system calls are the same whatever the server; its CPU varies with how often the server makes it \
         wait), {:.2}–{:.2}× the {} µs the hand-written mio server loop spends, and its core was {:.0}–{:.0}% \
         busy. It drove {} round trips/s against the fastest ({}) and {} against the slowest ({}), {:.2}× apart.",
        fmt_num(lg_lo),
        fmt_num(lg_hi),
        lg_lo / mio_srv,
        lg_hi / mio_srv,
        fmt_num(mio_srv),
        busy_lo,
        busy_hi,
        fmt_num(fastest.1),
        fastest.0,
        fmt_num(slowest.1),
        slowest.0,
        fastest.1 / slowest.1
    ))
}

fn med(recs: &[Rec], w: &str, c: &str, k: &str) -> String {
    median(&vals(recs, w, c, k)).map(fmt_num).unwrap_or_else(|| "–".into())
}

fn commit_of(repo: &Path) -> String {
    let git = repo.join(".git");
    let gitdir = if git.is_file() {
        std::fs::read_to_string(&git)
            .ok()
            .and_then(|s| s.strip_prefix("gitdir:").map(|p| repo.join(p.trim())))
            .unwrap_or(git)
    } else {
        git
    };
    let Ok(head) = std::fs::read_to_string(gitdir.join("HEAD")) else { return "unknown".into() };
    let head = head.trim();
    let Some(r) = head.strip_prefix("ref:") else { return head.chars().take(12).collect() };
    let r = r.trim();
    let mut dirs = vec![gitdir.clone()];
    if let Ok(common) = std::fs::read_to_string(gitdir.join("commondir")) {
        dirs.push(gitdir.join(common.trim()));
    }
    for d in &dirs {
        if let Ok(h) = std::fs::read_to_string(d.join(r)) {
            return format!("{} ({r})", h.trim().chars().take(12).collect::<String>());
        }
        if let Ok(p) = std::fs::read_to_string(d.join("packed-refs")) {
            if let Some(l) = p.lines().find(|l| l.ends_with(r)) {
                return format!("{} ({r})", l.chars().take(12).collect::<String>());
            }
        }
    }
    format!("none yet ({r} has no commit)")
}

fn cmd_out(p: &str, args: &[&str]) -> String {
    Command::new(p)
        .args(args)
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "unknown".into())
}

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string())
        })
        .unwrap_or_else(|| "unknown".into());
    let ncpu = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0);
    let mem = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| {
            s.lines().next().map(|l| l.split_whitespace().nth(1).unwrap_or("0").parse::<f64>().unwrap_or(0.0))
        })
        .map(|kb| format!("{:.1} GiB", kb / 1048576.0))
        .unwrap_or_default();
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default().trim().to_string();
    format!("{cpu}, {ncpu} CPUs, {mem} RAM, Linux {kernel}, {}", cmd_out("rustc", &["--version"]))
}

fn write_report(cfg: &Cfg, wls: &[Wl], recs: &[Rec], sys: &[(String, String, Json)], total: Duration) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "# blitz-io benchmark report\n");
    let _ = writeln!(s, "- date: {}", cmd_out("date", &["-u", "+%Y-%m-%d %H:%M:%S UTC"]));
    let _ = writeln!(s, "- commit: {}", commit_of(&cfg.repo));
    let _ = writeln!(s, "- machine: {}", machine());
    let _ = writeln!(
        s,
        "- configuration: {} mode, {} round(s), {} s measured after {} s warm-up per run, contenders interleaved \
         (rotated start each round); {} idle connections for the memory test; run took {:.0} s",
        if cfg.quick { "quick" } else { "full" },
        cfg.rounds,
        cfg.duration,
        cfg.warmup,
        cfg.idle_conns,
        total.as_secs_f64()
    );
    if cfg.slice > 0.0 {
        let _ = writeln!(
            s,
            "- TCP, Unix and UDP echo and connection churn: **alternating slices**. In each round every contender's server runs at \
             once and one load generator sends the load to one server at a time, in slices of {} s, rotating the \
             order each cycle, until each has had {} s (after a {} s warm-up slice each); the others sleep \
             meanwhile. Each contender's figure is thus spread over the same seconds as the others', so the \
             machine's slow phases (~45% more CPU per operation for every process) no longer decide the ranking \
             (same binary against itself: within 2%). A slice starts every connection on a fresh request and ends \
             by waiting for the replies in flight. The multi-thread servers run in their own sliced run, with \
             slices of {} s each preceded by {} s of unmeasured load, because their throughput settles only after \
             some hundreds of milliseconds; their ×mio ratio compares two runs of the same round. blitz-ct runs \
             in that group too as a same-run reference for blitz-mt, and on the 64-byte echo at 50 and 500 \
             connections so do tokio-ct and the mio loop (the ratios under each table). HTTP runs \
             alternate too, at wrk's granularity: every server at once, 1-second wrk runs against each in \
             turn (latency percentiles there are the request-weighted mean of the runs' own). Memory runs are one \
             contender at a time.",
            cfg.slice, cfg.duration, cfg.warmup, cfg.slice_mt, cfg.ramp_mt
        );
    }
    let _ = writeln!(
        s,
        "- contenders: {}. `-mt` = multi-thread runtime with 2 workers, `-ct` = current-thread; `mio` = hand-written \
         single-threaded mio event loop; `smol` = async-executor + async-io on one thread. Same code shape \
         everywhere: task per connection, TCP_NODELAY, 16 KiB read buffer, read then write_all. Every runtime \
         with its default settings (blitz-io: `idle_spin` 10 µs, so an idle blitz-io scheduler polls the driver \
         for up to 10 µs before it sleeps, while its idle gaps stay that short; CPU figures include that spin).",
        cfg.contenders.join(", ")
    );
    let _ = writeln!(
        s,
        "- pinning: single-threaded servers on CPU 1, load generator on CPU 0; multi-thread servers unpinned \
         (2 cores: they share CPU 0 with the load generator)."
    );
    let _ = writeln!(
        s,
        "- load generator: `loadgen` (one thread; blocking socket for 1 connection, mio loop otherwise; verifies \
         every byte; HdrHistogram latencies). HTTP: {}.",
        match &cfg.wrk {
            Some(w) => format!(
                "`wrk -t1 -c50` ({}) pinned to CPU 0, plus a 16-deep pipelining check by `loadgen` in round 0",
                w
            ),
            None => "wrk not installed: `loadgen --workload http` (one request in flight per connection)".to_string(),
        }
    );
    if let Some(line) = loadgen_check(recs, &cfg.contenders) {
        let _ = writeln!(s, "{line}");
    }
    let _ = writeln!(
        s,
        "- ratios: per-round ratio to the same-flavour tokio (`-mt` → tokio-mt, single-threaded → tokio-ct) and to \
         `mio` from the same round, then the median over rounds. For throughput >1 is better; for ns/op and \
         bytes/conn <1 is better.\n- CPU µs/op: server (and load generator) user+system CPU over the measured interval \
         divided by round trips; from /proc/<pid>/stat (10 ms tick resolution).\n"
    );
    let _ = writeln!(s, "Charts: [throughput](throughput.svg), [p99 latency](latency_p99.svg), [runtime & memory](runtime.svg). Raw data: `raw.jsonl`.\n");

    for w in wls {
        let m = primary(w);
        let _ = writeln!(s, "## {} (`{}`)\n", w.title, w.name);
        match w.kind {
            Kind::Net(..) | Kind::Http(_) => {
                let unit = if w.name.starts_with("churn") { "conns/s" } else { "req/s" };
                let _ = writeln!(
                    s,
                    "| contender | {unit} median | min–max | ×tokio | ×mio | p50 µs | p99 µs | p99.9 µs | server CPU µs/op | loadgen CPU µs/op | errors |"
                );
                let _ = writeln!(s, "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
            }
            Kind::Idle => {
                let _ = writeln!(s, "| contender | bytes/conn median | min–max | ×tokio | ×mio | RSS before | RSS after | established |");
                let _ = writeln!(s, "|---|---:|---:|---:|---:|---:|---:|---:|");
            }
            Kind::Rt(b) => {
                let extra = if b == "timers" { " late p50 µs | late p99 µs | elapsed ms |" } else { " CPU ns/op |" };
                let _ = writeln!(s, "| contender | ns/op median | min–max | ×tokio |{extra}");
                let _ = writeln!(s, "|---|---:|---:|---:|{}", if b == "timers" { "---:|---:|---:|" } else { "---:|" });
            }
        }
        for c in &cfg.contenders {
            if matches!(w.kind, Kind::Rt(_)) && c == "mio" {
                continue;
            }
            let v = vals(recs, w.name, c, m.key);
            let errs: Vec<&str> = recs
                .iter()
                .filter(|r| r.workload == w.name && r.contender == *c)
                .filter_map(|r| r.j.get_str("error"))
                .collect();
            if v.is_empty() {
                let _ =
                    writeln!(s, "| {c} | failed: {} |", errs.first().copied().unwrap_or("no data").replace('|', "/"));
                continue;
            }
            let mn = v.iter().cloned().fold(f64::INFINITY, f64::min);
            let mx = v.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
            let rt = ratio(recs, w.name, c, tokio_peer(c), m.key).map(|r| format!("{r:.2}")).unwrap_or("–".into());
            let rm = ratio(recs, w.name, c, "mio", m.key).map(|r| format!("{r:.2}")).unwrap_or("–".into());
            let range = format!("{}–{}", fmt_num(mn), fmt_num(mx));
            let medv = median(&v).map(fmt_num).unwrap_or_default();
            match w.kind {
                Kind::Net(..) | Kind::Http(_) => {
                    let errors: f64 = vals(recs, w.name, c, "errors").iter().sum::<f64>()
                        + vals(recs, w.name, c, "dead_conns").iter().sum::<f64>()
                        + errs.len() as f64;
                    let mut errcell = format!("{errors:.0}");
                    let lost: f64 = vals(recs, w.name, c, "lost").iter().sum();
                    if lost > 0.0 {
                        errcell += &format!(" ({lost} lost)");
                    }
                    if let Some(p) = recs
                        .iter()
                        .find(|r| r.workload == w.name && r.contender == *c)
                        .and_then(|r| r.j.get_str("pipeline_check"))
                    {
                        errcell += &format!(", pipelining {p}");
                    }
                    let _ = writeln!(
                        s,
                        "| {c} | {medv} | {range} | {rt} | {rm} | {} | {} | {} | {} | {} | {errcell} |",
                        med(recs, w.name, c, "p50_us"),
                        med(recs, w.name, c, "p99_us"),
                        med(recs, w.name, c, "p999_us"),
                        med(recs, w.name, c, "server_cpu_us_per_rt"),
                        med(recs, w.name, c, "loadgen_cpu_us_per_rt"),
                    );
                }
                Kind::Idle => {
                    let mib = |k: &str| {
                        median(&vals(recs, w.name, c, k))
                            .map(|v| format!("{:.1} MiB", v / 1048576.0))
                            .unwrap_or("–".into())
                    };
                    let _ = writeln!(
                        s,
                        "| {c} | {medv} | {range} | {rt} | {rm} | {} | {} | {} |",
                        mib("rss_before"),
                        mib("rss_after"),
                        med(recs, w.name, c, "established")
                    );
                }
                Kind::Rt(b) => {
                    if b == "timers" {
                        let _ = writeln!(
                            s,
                            "| {c} | {medv} | {range} | {rt} | {} | {} | {} |",
                            med(recs, w.name, c, "late_p50_us"),
                            med(recs, w.name, c, "late_p99_us"),
                            med(recs, w.name, c, "elapsed_ms")
                        );
                    } else {
                        let _ = writeln!(
                            s,
                            "| {c} | {medv} | {range} | {rt} | {} |",
                            med(recs, w.name, c, "cpu_ns_per_op")
                        );
                    }
                }
            }
        }
        // Multi-thread contenders against the references of the same multi-thread sliced run.
        let mut same_lines = Vec::new();
        for (c, r) in [
            ("blitz-mt", "blitz-ct"),
            ("tokio-mt", "tokio-ct"),
            ("blitz-mt", "tokio-mt"),
            ("blitz-mt", "mio"),
            ("tokio-mt", "mio"),
        ] {
            let key = format!("same_run_rps_{r}");
            let per_round: Vec<f64> = recs
                .iter()
                .filter(|x| x.workload == w.name && x.contender == c)
                .filter_map(|x| {
                    let reference = if r.ends_with("-mt") {
                        recs.iter()
                            .find(|y| y.workload == w.name && y.contender == r && y.round == x.round)?
                            .j
                            .get_num("rps")?
                    } else {
                        x.j.get_num(&key)?
                    };
                    Some(x.j.get_num("rps")? / reference)
                })
                .collect();
            if let Some(m) = median(&per_round) {
                let per: Vec<String> = per_round.iter().map(|x| format!("{x:.2}")).collect();
                same_lines.push(format!("| {c} / {r} | {} | {m:.2} |", per.join(", ")));
            }
        }
        if !same_lines.is_empty() {
            let _ = writeln!(
                s,
                "\nMulti-thread sliced run, ratios from the same run (single-threaded servers take part in it as \
                 references, same slices and ramp):\n\n| ratio | per round | median |\n|---|---|---|\n{}",
                same_lines.join("\n")
            );
        }
        s.push('\n');
    }
    if !sys.is_empty() {
        let how = match cfg.strace {
            Some(SysTool::Perf) => {
                "`perf stat -e raw_syscalls:sys_enter` on the server's pid: kernel tracepoints, exact counts at full speed"
            }
            _ => "`strace -c -f`: ptrace slows the server, which then finds requests queued and skips some `epoll_wait`s",
        };
        let _ = writeln!(s, "## System calls per round trip (server; separate short run; {how})\n");
        let _ = writeln!(s, "| workload | contender | syscalls/rt | top syscalls (per rt) |");
        let _ = writeln!(s, "|---|---|---:|---|");
        for (w, c, j) in sys {
            let _ = writeln!(
                s,
                "| {w} | {c} | {} | {} |",
                j.get_num("syscalls_per_rt").map(|v| format!("{v:.2}")).unwrap_or("–".into()),
                j.get_str("top").unwrap_or("")
            );
        }
        s.push('\n');
    } else {
        let _ = writeln!(s, "System calls per round trip: not measured (perf and strace missing, or `--no-strace`).\n");
    }
    s
}

// ---------------------------------------------------------------------------------------
// SVG charts: small multiples of horizontal bars, one panel per workload.
// ---------------------------------------------------------------------------------------

fn color(c: &str) -> &'static str {
    match c {
        "blitz-mt" => "#d62728",
        "blitz-ct" => "#ff9896",
        "tokio-mt" => "#1f77b4",
        "tokio-ct" => "#aec7e8",
        "mio" => "#2ca02c",
        "smol" => "#9467bd",
        _ => "#7f7f7f",
    }
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

/// panels: (title, [(contender, value)])
fn svg_panels(title: &str, panels: &[(String, Vec<(String, f64)>)]) -> String {
    let cols = 2;
    let pw = 460.0;
    let bar_h = 16.0;
    let maxn = panels.iter().map(|p| p.1.len()).max().unwrap_or(1) as f64;
    let ph = 34.0 + maxn * (bar_h + 4.0) + 10.0;
    let rows = panels.len().div_ceil(cols).max(1);
    let width = pw * cols as f64 + 20.0;
    let height = 40.0 + ph * rows as f64;
    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="11">"#
    );
    let _ = writeln!(s, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let _ = writeln!(s, r#"<text x="10" y="24" font-size="15" font-weight="bold">{}</text>"#, esc(title));
    for (i, (pt, bars)) in panels.iter().enumerate() {
        let x0 = 10.0 + (i % cols) as f64 * pw;
        let y0 = 40.0 + (i / cols) as f64 * ph;
        let _ = writeln!(s, r#"<text x="{}" y="{}" font-weight="bold">{}</text>"#, x0, y0 + 14.0, esc(pt));
        let maxv = bars.iter().map(|b| b.1).filter(|v| v.is_finite()).fold(0.0f64, f64::max).max(1e-12);
        let label_w = 70.0;
        let bar_w = pw - label_w - 90.0;
        for (k, (c, v)) in bars.iter().enumerate() {
            let y = y0 + 24.0 + k as f64 * (bar_h + 4.0);
            let w = if v.is_finite() { (v / maxv * bar_w).max(1.0) } else { 0.0 };
            let _ = writeln!(s, r#"<text x="{}" y="{}">{}</text>"#, x0, y + 12.0, esc(c));
            let _ = writeln!(
                s,
                r#"<rect x="{}" y="{}" width="{w:.1}" height="{bar_h}" fill="{}"/>"#,
                x0 + label_w,
                y,
                color(c)
            );
            let _ = writeln!(s, r#"<text x="{:.1}" y="{}">{}</text>"#, x0 + label_w + w + 4.0, y + 12.0, fmt_num(*v));
        }
    }
    s.push_str("</svg>\n");
    s
}

fn write_charts(cfg: &Cfg, wls: &[Wl], recs: &[Rec]) {
    let panel = |w: &Wl, key: &str, unit: &str| -> Option<(String, Vec<(String, f64)>)> {
        let bars: Vec<(String, f64)> =
            cfg.contenders.iter().filter_map(|c| median(&vals(recs, w.name, c, key)).map(|v| (c.clone(), v))).collect();
        (!bars.is_empty()).then(|| (format!("{} ({unit})", w.name), bars))
    };
    let net: Vec<&Wl> = wls.iter().filter(|w| matches!(w.kind, Kind::Net(..) | Kind::Http(_))).collect();
    let tp: Vec<_> = net
        .iter()
        .filter_map(|w| panel(w, "rps", if w.name.starts_with("churn") { "conns/s" } else { "req/s" }))
        .collect();
    let lat: Vec<_> = net.iter().filter_map(|w| panel(w, "p99_us", "p99 µs")).collect();
    let rt: Vec<_> = wls
        .iter()
        .filter_map(|w| match w.kind {
            Kind::Rt(_) => panel(w, "ns_per_op", "ns/op"),
            Kind::Idle => panel(w, "bytes_per_conn", "bytes/conn"),
            _ => None,
        })
        .collect();
    let files = [
        ("throughput.svg", "Throughput, median over rounds (higher is better)", tp),
        ("latency_p99.svg", "p99 latency, median over rounds (lower is better)", lat),
        ("runtime.svg", "Runtime micro-benchmarks and memory (lower is better)", rt),
    ];
    for (f, t, p) in files {
        if !p.is_empty() {
            let _ = std::fs::write(cfg.out.join(f), svg_panels(t, &p));
        }
    }
}
