//! The load generator's alternating-slices mode against real servers: every target gets
//! measured slices, every echoed byte is verified, and a target that misbehaves is
//! reported as errors instead of silently counted.

use blitz_io_bench::Json;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

struct Server(Child, String);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn server(contender: &str) -> Server {
    server_for(contender, "echo")
}

fn server_for(contender: &str, workload: &str) -> Server {
    let mut child = Command::new(env!("CARGO_BIN_EXE_server"))
        .args(["--contender", contender, "--workload", workload, "--addr", "127.0.0.1:0", "--exit-on-stdin-eof"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn server");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout")).read_line(&mut line).expect("READY line");
    let addr = line.strip_prefix("READY ").expect("server prints READY").trim().to_string();
    Server(child, addr)
}

/// Runs the load generator with a hard time limit; returns its JSON lines.
fn loadgen(args: &[&str]) -> Vec<Json> {
    let mut child =
        Command::new(env!("CARGO_BIN_EXE_loadgen")).args(args).stdout(Stdio::piped()).spawn().expect("spawn loadgen");
    let t = Instant::now();
    while child.try_wait().expect("wait").is_none() {
        if t.elapsed() > Duration::from_secs(30) {
            let _ = child.kill();
            panic!("loadgen did not finish within 30 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut out = String::new();
    child.stdout.take().expect("stdout").read_to_string(&mut out).expect("read stdout");
    out.lines().filter_map(Json::parse).collect()
}

fn check_target(j: &Json, t: usize) {
    assert_eq!(j.get_num("target"), Some(t as f64), "{}", j.to_line());
    assert_eq!(j.get_num("errors"), Some(0.0), "{}", j.to_line());
    assert_eq!(j.get_num("dead_conns"), Some(0.0), "{}", j.to_line());
    let rts = j.get_num("round_trips").unwrap_or(0.0);
    assert!(rts > 10.0, "target {t} measured only {rts} round trips: {}", j.to_line());
    assert_eq!(j.get_num("bytes_verified"), Some(rts * 64.0), "{}", j.to_line());
    assert!(j.get_num("slices").unwrap_or(0.0) >= 4.0, "{}", j.to_line());
    assert!(j.get_num("duration_s").unwrap_or(0.0) > 0.1, "{}", j.to_line());
}

/// Two `mio` servers of `server_workload`, one sliced load-generator run of `workload`
/// over both with `--conns conns` (and `extra` arguments); checks that each target was
/// measured cleanly and returns the two lines.
fn two_targets(server_workload: &str, workload: &str, conns: &str, extra: &[&str]) -> Vec<Json> {
    let (a, b) = (server_for("mio", server_workload), server_for("mio", server_workload));
    let targets = format!("{},{}", a.1, b.1);
    let pids = format!("{},{}", a.0.id(), b.0.id());
    let mut args = vec![
        "--workload",
        workload,
        "--targets",
        &targets,
        "--server-pids",
        &pids,
        "--conns",
        conns,
        "--duration",
        "0.3",
        "--warmup",
        "0.05",
        "--slice",
        "0.05",
    ];
    args.extend_from_slice(extra);
    let js = loadgen(&args);
    assert_eq!(js.len(), 2, "one line per target: {:?}", js.iter().map(Json::to_line).collect::<Vec<_>>());
    for (t, j) in js.iter().enumerate() {
        check_target(j, t);
        assert!(j.get_num("server_cpu_us_per_rt").is_some(), "server CPU read from /proc: {}", j.to_line());
    }
    js
}

#[test]
fn sliced_poll_mode_measures_every_target() {
    for j in two_targets("echo", "echo", "8", &["--ramp", "0.02"]) {
        assert_eq!(j.get_str("mode"), Some("poll-sliced"));
    }
}

#[test]
fn sliced_blocking_mode_measures_every_target() {
    for j in two_targets("echo", "echo", "1", &[]) {
        assert_eq!(j.get_str("mode"), Some("blocking-sliced"));
    }
}

#[test]
fn sliced_udp_measures_every_target() {
    for j in two_targets("udp", "udp", "1", &[]) {
        assert_eq!(j.get_str("mode"), Some("blocking-sliced"));
        // Loopback loses nothing, but a stalled CI machine can hold a reply past the
        // 200 ms loss limit: allow a few, never many.
        let lost = j.get_num("lost").expect("lost is reported");
        assert!(lost < 5.0, "datagrams lost on loopback: {}", j.to_line());
    }
}

#[test]
fn sliced_churn_measures_every_target() {
    for j in two_targets("echo", "churn", "4", &[]) {
        assert_eq!(j.get_str("mode"), Some("poll-sliced"));
    }
}

#[test]
fn sliced_udp_wants_one_socket_per_target() {
    let a = server_for("mio", "udp");
    let js = loadgen(&["--workload", "udp", "--targets", &a.1, "--conns", "4", "--duration", "0.1"]);
    assert_eq!(js.len(), 1);
    assert!(js[0].get_str("error").is_some_and(|e| e.contains("one blocking socket")), "{}", js[0].to_line());
}

#[test]
fn a_wrong_echo_is_an_error_not_a_round_trip() {
    // A "server" that echoes every byte plus one: the connection-setup check rejects it.
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = l.local_addr().expect("addr").to_string();
    std::thread::spawn(move || {
        for s in l.incoming() {
            let Ok(mut s) = s else { break };
            std::thread::spawn(move || {
                let mut buf = [0u8; 64];
                while let Ok(n @ 1..) = s.read(&mut buf) {
                    buf[0] ^= 1;
                    if s.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
            });
        }
    });
    let good = server("mio");
    let targets = format!("{},{addr}", good.1);
    let js = loadgen(&["--workload", "echo", "--targets", &targets, "--conns", "2", "--duration", "0.2"]);
    assert_eq!(js.len(), 1, "{js:?}", js = js.iter().map(Json::to_line).collect::<Vec<_>>());
    assert!(js[0].get_str("error").is_some_and(|e| e.contains("bad echo")), "{}", js[0].to_line());
}
