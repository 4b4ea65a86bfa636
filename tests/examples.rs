//! Runs every example program and checks its exit status and key output lines; unit-
//! tests the examples' pure parsers (`examples/common/*.rs`) directly, including
//! proptest checks that no input makes them panic.
//!
//! `cargo test` builds the example binaries before running tests; `cargo test --test
//! examples` does not, so each test first runs `cargo build --example NAME` for the same
//! profile and target directory (a no-op when the binary is up to date).

#[path = "../examples/common/framing.rs"]
mod framing;
#[path = "../examples/common/http_parse.rs"]
mod http_parse;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

// ===== running the example binaries =====

/// Serializes `cargo build` invocations (cargo would serialize them anyway, on its lock).
static BUILD: Mutex<()> = Mutex::new(());

/// `target/<profile>` of this test binary (`target/<profile>/deps/examples-HASH`).
fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    let deps = exe.parent().expect("test binary has a parent dir");
    let dir =
        if deps.file_name().is_some_and(|n| n == "deps") { deps.parent().expect("deps has a parent") } else { deps };
    dir.to_path_buf()
}

fn example_path(name: &str) -> PathBuf {
    profile_dir().join("examples").join(format!("{name}{}", std::env::consts::EXE_SUFFIX))
}

/// Builds `name` with the profile and target directory this test binary came from.
fn build_example(name: &str) {
    let _guard = BUILD.lock().unwrap_or_else(|e| e.into_inner());
    let profile_dir = profile_dir();
    let profile = profile_dir.file_name().and_then(|n| n.to_str()).unwrap_or("debug").to_owned();
    let target_dir = profile_dir.parent().expect("profile dir has a parent");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.arg("build")
        .arg("--quiet")
        .arg("--manifest-path")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml"))
        .arg("--example")
        .arg(name)
        .arg("--target-dir")
        .arg(target_dir);
    match profile.as_str() {
        "debug" => {}
        "release" => {
            cmd.arg("--release");
        }
        other => {
            cmd.arg("--profile").arg(other);
        }
    }
    let status = cmd.status().unwrap_or_else(|e| panic!("running cargo build --example {name}: {e}"));
    assert!(status.success(), "cargo build --example {name} failed: {status}");
}

/// Runs example `name` (building it if its binary is missing) with a deadline; returns
/// its stdout after asserting a zero exit status.
fn run_example(name: &str) -> String {
    let path = example_path(name);
    // Always (re)build: a no-op when the binary is fresh (`cargo test` built it), and it
    // never runs a stale binary after `cargo test --test examples` alone.
    build_example(name);
    assert!(path.exists(), "example binary {} not found after building it", path.display());

    let mut child = Command::new(&path)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("spawning {}: {e}", path.display()));
    // Collect the pipes on threads so a chatty example cannot block on a full pipe.
    let mut out = child.stdout.take().expect("piped stdout");
    let mut err = child.stderr.take().expect("piped stderr");
    let out = std::thread::spawn(move || {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut out, &mut s).map(|_| s)
    });
    let err = std::thread::spawn(move || {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut err, &mut s).map(|_| s)
    });

    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("example {name} did not finish within 60 s (killed)");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let stdout = out.join().expect("stdout thread").expect("stdout is UTF-8");
    let stderr = err.join().expect("stderr thread").unwrap_or_default();
    assert!(status.success(), "example {name} failed with {status}\n--- stdout\n{stdout}\n--- stderr\n{stderr}");
    stdout
}

fn assert_lines(name: &str, stdout: &str, expected: &[&str]) {
    for line in expected {
        assert!(stdout.contains(line), "example {name}: output lacks {line:?}\n--- stdout\n{stdout}");
    }
}

/// Runs an example that may not exist yet (owned by someone else): skipped if its
/// source file is absent.
fn run_optional_example(name: &str, expected: &[&str]) {
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples").join(format!("{name}.rs"));
    if !source.exists() {
        eprintln!("examples/{name}.rs does not exist yet: skipped");
        return;
    }
    let stdout = run_example(name);
    assert_lines(name, &stdout, expected);
}

#[test]
fn example_production_listener() {
    let out = run_example("production_listener");
    assert_lines(
        "production_listener",
        &out,
        &[
            "SO_REUSEADDR     true",
            "TCP_NODELAY      true",
            "SO_LINGER        Some(5s)",
            "exchange: client sent ping, server answered pong and closed first",
            "(same port, despite TIME_WAIT)",
            "production_listener: ok",
        ],
    );
}

#[test]
fn example_http_server() {
    let out = run_example("http_server");
    assert_lines(
        "http_server",
        &out,
        &[
            "GET /health            -> HTTP/1.1 200 OK",
            "GET /missing           -> HTTP/1.1 404 Not Found",
            "POST /health           -> HTTP/1.1 405 Method Not Allowed",
            "garbage line           -> HTTP/1.1 400 Bad Request",
            "one byte per read      -> HTTP/1.1 200 OK",
            "16 KiB header          -> HTTP/1.1 431 Request Header Fields Too Large",
            "EOF mid-head           -> HTTP/1.1 400 Bad Request",
            "http_server: all 14 cases passed",
        ],
    );
    assert!(!out.contains("UNEXPECTED"), "{out}");
}

#[test]
fn example_chat_framing() {
    let out = run_example("chat_framing");
    assert_lines(
        "chat_framing",
        &out,
        &[
            "alice: sent 500 + 1 big, received all 500 + 1 big from bob in order",
            "bob: sent 500 + 1 big, received all 500 + 1 big from alice in order",
            "client: refused to send: frame of 65537 bytes exceeds the limit of 65536 bytes",
            "mallory: declared a 1 MiB frame and was disconnected",
            "chat_framing: ok",
        ],
    );
}

#[test]
fn example_socketpair_ipc() {
    let out = run_example("socketpair_ipc");
    assert_lines(
        "socketpair_ipc",
        &out,
        &[
            "stream pair: sent 0x01, got Pong",
            "stream pair: sent 0x42, got Error",
            "stream pair: child handled 4 commands and closed; parent saw EOF",
            "datagram pair: sent 0x02, got StatusOk",
            "datagram pair: sent 0xff, got Ack",
            "datagram pair: child thread handled 4 commands and exited",
            "socketpair_ipc: ok",
        ],
    );
}

#[test]
fn example_client_lifecycle() {
    let out = run_example("client_lifecycle");
    assert_lines(
        "client_lifecycle",
        &out,
        &[
            "5. shutdown(Write): FIN sent, read side still open",
            "6. read: 51 bytes, then EOF",
            "server received the whole request, then EOF; client got \"HTTP/1.1 200 OK\"",
            "client_lifecycle: ok",
        ],
    );
}

#[test]
fn example_server_lifecycle() {
    let out = run_example("server_lifecycle");
    assert_lines(
        "server_lifecycle",
        &out,
        &[
            "client 2: got the full response, then EOF",
            "server: served 3 connections and stopped",
            "server_lifecycle: ok",
        ],
    );
}

#[test]
fn example_accept_loop() {
    let out = run_example("accept_loop");
    assert_lines(
        "accept_loop",
        &out,
        &[
            "20 clients echoed 3 messages each while the slow client stayed silent",
            "slow client: echoed 3 messages after waiting",
            "server: 21 connection tasks finished",
            "accept_loop: ok",
        ],
    );
}

#[test]
fn example_graceful_shutdown() {
    let out = run_example("graceful_shutdown");
    assert_lines(
        "graceful_shutdown",
        &out,
        &[
            "late: connection refused, as expected",
            "server: idle      -> Clean { requests: 1 }",
            "server: in-flight -> Clean { requests: 2 }",
            "server: stubborn  -> PeerKeptOpen { requests: 1 }",
            "server: stuck     -> Aborted",
            "graceful_shutdown: ok",
        ],
    );
}

#[test]
fn example_udp_kv() {
    run_optional_example(
        "udp_kv",
        &[
            "api.example.com -> 93.184.216.34",
            "db.internal -> 10.0.1.50",
            "missing.key -> not found",
            "malformed request -> ServerError",
            "silent server -> no reply from 127.0.0.1:",
        ],
    );
}

/// Multicast traffic only inside a private network namespace (made here with `unshare`,
/// its `lo` brought up with a multicast route), never on the host: the example binary
/// runs in there. Skipped, saying so, where no namespace can be made.
#[test]
fn example_multicast() {
    build_example("multicast");
    let bin = example_path("multicast");
    let setup = "ip link set lo up multicast on && ip route add 224.0.0.0/4 dev lo && exec \"$0\"";
    let mut refusals = String::new();
    for flags in [&["--net"][..], &["--net", "--map-root-user"][..]] {
        let out = match Command::new("timeout")
            .arg("60")
            .arg("unshare")
            .args(flags)
            .args(["--", "sh", "-c", setup])
            .arg(&bin)
            .output()
        {
            Ok(out) => out,
            Err(e) => {
                eprintln!("SKIP example_multicast: cannot run unshare ({e})");
                return;
            }
        };
        let stdout = String::from_utf8_lossy(&out.stdout);
        if out.status.success() {
            let mut expected = Vec::new();
            for sub in 0..2 {
                for seq in 0..5 {
                    expected.push(format!("subscriber {sub}: heartbeat:node-42:healthy:seq={seq} (from 127.0.0.1:"));
                }
            }
            let expected: Vec<&str> = expected.iter().map(String::as_str).collect();
            assert_lines("multicast", &stdout, &expected);
            return;
        }
        refusals += &format!("unshare {flags:?}: {}\n{}", out.status, String::from_utf8_lossy(&out.stderr));
    }
    eprintln!("SKIP example_multicast: no private network namespace here:\n{refusals}");
}

#[test]
fn example_demo() {
    run_optional_example(
        "demo",
        &[
            "tcp echo server listening on 127.0.0.1:",
            "tcp: 32 connections accepted, 6400 round trips, 339200 bytes echoed and verified",
            "udp: 100/100 datagrams echoed by 127.0.0.1:",
            "unix: parent sent \"ping!\", child replied \"pong!\"",
            "demo finished in",
        ],
    );
}

/// The seed's short snippets (At a Glance, Convenience Functions, the Unix sections,
/// DNS Resolution), all on this machine.
#[test]
fn example_quick_tour() {
    let out = run_example("quick_tour");
    assert_lines(
        "quick_tour",
        &out,
        &[
            "glance: server echoed 24 bytes from 127.0.0.1",
            "glance: client sent 24 bytes, got them back: true",
            "glance: udp sent Some(4), peer got \"ping\"",
            "glance: resolved localhost and connected: true",
            "convenience: connect -> accept peer matches: true",
            "convenience: listen_port(0) is on every interface: true",
            "unix stream: echoed \"Hello!\"",
            "unix datagram: got \"hello\" from Some(\"dgram.sock\")",
            "unix pair: \"over the pair\"",
            "dns: localhost resolves to loopback only: true",
            "dns: resolve_first is the first of resolve: true",
            "dns: connect_host reached the listener: true",
            "quick tour done",
        ],
    );
}

// ===== the HTTP request parser =====

mod http {
    use super::http_parse::*;
    use proptest::prelude::*;

    fn complete(input: &[u8]) -> (Request<'_>, usize) {
        match parse_request(input, MAX_HEAD_BYTES) {
            Ok(Parse::Complete { request, head_len }) => (request, head_len),
            other => panic!("expected a complete request for {:?}, got {other:?}", String::from_utf8_lossy(input)),
        }
    }

    fn status_of(input: &[u8]) -> Option<u16> {
        match parse_request(input, MAX_HEAD_BYTES) {
            Ok(Parse::Complete { request, .. }) => Some(route(&request).status),
            Ok(Parse::Partial) => None,
            Err(e) => Some(e.status()),
        }
    }

    #[test]
    fn parses_request_line_and_headers() {
        let input = b"GET /health HTTP/1.1\r\nHost: example.com\r\nX-Pad:   spaced value \t\r\n\r\nBODY";
        let (req, head_len) = complete(input);
        assert_eq!((req.method, req.path, req.version), ("GET", "/health", "HTTP/1.1"));
        assert_eq!(req.headers, vec![("Host", &b"example.com"[..]), ("X-Pad", &b"spaced value"[..])]);
        assert_eq!(req.header("host"), Some(&b"example.com"[..]));
        assert_eq!(&input[head_len..], b"BODY");
    }

    #[test]
    fn no_headers_and_http_1_0() {
        let (req, head_len) = complete(b"DELETE /x HTTP/1.0\r\n\r\n");
        assert_eq!((req.method, req.path, req.version), ("DELETE", "/x", "HTTP/1.0"));
        assert!(req.headers.is_empty());
        assert_eq!(head_len, 22);
    }

    #[test]
    fn routing() {
        assert_eq!(status_of(b"GET /health HTTP/1.1\r\n\r\n"), Some(200));
        assert_eq!(status_of(b"GET /healthz HTTP/1.1\r\n\r\n"), Some(404));
        assert_eq!(status_of(b"GET / HTTP/1.1\r\n\r\n"), Some(404));
        assert_eq!(status_of(b"POST /health HTTP/1.1\r\n\r\n"), Some(405));
        assert_eq!(status_of(b"get /health HTTP/1.1\r\n\r\n"), Some(405), "methods are case-sensitive");
        let ok = render(route(&complete(b"GET /health HTTP/1.1\r\n\r\n").0));
        assert!(ok.starts_with(b"HTTP/1.1 200 OK\r\n") && ok.ends_with(b"\r\n\r\nok"), "{ok:?}");
        let not_allowed = String::from_utf8(render(Response { status: 405, body: "" })).unwrap();
        assert!(not_allowed.contains("Allow: GET\r\n"), "{not_allowed}");
    }

    #[test]
    fn malformed_is_400() {
        for bad in [
            &b"hello\r\n\r\n"[..],
            b"GET /health\r\n\r\n",
            b"GET  /health HTTP/1.1\r\n\r\n",
            b"GET /health HTTP/1.1 extra\r\n\r\n",
            b"GET health HTTP/1.1\r\n\r\n",
            b"GET /health HTTP/2.0\r\n\r\n",
            b" GET /health HTTP/1.1\r\n\r\n",
            b"G(T /health HTTP/1.1\r\n\r\n",
            b"GET /he\x00lth HTTP/1.1\r\n\r\n",
            b"GET /health HTTP/1.1\r\nNoColon\r\n\r\n",
            b"GET /health HTTP/1.1\r\n: empty name\r\n\r\n",
            b"GET /health HTTP/1.1\r\nBad Name: x\r\n\r\n",
            b"GET /health HTTP/1.1\r\nX: a\x01b\r\n\r\n",
            b"\r\n\r\n",
        ] {
            let got = parse_request(bad, MAX_HEAD_BYTES);
            assert!(matches!(got, Err(ParseError::Malformed(_))), "{:?} -> {got:?}", String::from_utf8_lossy(bad));
            assert_eq!(status_of(bad), Some(400));
        }
    }

    #[test]
    fn rejects_early_without_waiting_for_the_blank_line() {
        // The request line is complete and bad: no need to wait for more.
        assert!(matches!(parse_request(b"BAD\r\n", MAX_HEAD_BYTES), Err(ParseError::Malformed(_))));
        // A byte that can never be part of a request line.
        assert!(matches!(parse_request(b"GE\x00", MAX_HEAD_BYTES), Err(ParseError::Malformed(_))));
        assert!(matches!(parse_request(b"GET\n", MAX_HEAD_BYTES), Err(ParseError::Malformed(_))));
        assert!(matches!(parse_request(b"GET /\rx", MAX_HEAD_BYTES), Err(ParseError::Malformed(_))));
        // A complete bad header line before the head ends.
        assert!(matches!(
            parse_request(b"GET / HTTP/1.1\r\nnocolon\r\nHost", MAX_HEAD_BYTES),
            Err(ParseError::Malformed(_))
        ));
        // A bare LF in a header line that is still arriving.
        assert!(matches!(parse_request(b"GET / HTTP/1.1\r\nA: b\nC", MAX_HEAD_BYTES), Err(ParseError::Malformed(_))));
        assert!(matches!(parse_request(b"GET / HTTP/1.1\r\n\n", MAX_HEAD_BYTES), Err(ParseError::Malformed(_))));
    }

    #[test]
    fn incomplete_is_partial() {
        for partial in [
            &b""[..],
            b"G",
            b"GET /health HTTP/1.1",
            b"GET /health HTTP/1.1\r",
            b"GET /health HTTP/1.1\r\n",
            b"GET /health HTTP/1.1\r\nHost: x",
            b"GET /health HTTP/1.1\r\nHost: x\r\n",
            b"GET /health HTTP/1.1\r\nHost: x\r\n\r",
        ] {
            assert_eq!(
                parse_request(partial, MAX_HEAD_BYTES),
                Ok(Parse::Partial),
                "{:?}",
                String::from_utf8_lossy(partial)
            );
        }
    }

    #[test]
    fn every_split_point_gives_the_same_result() {
        let input = b"GET /health HTTP/1.1\r\nHost: localhost\r\nAccept: */*\r\n\r\n";
        for cut in 0..input.len() {
            assert_eq!(parse_request(&input[..cut], MAX_HEAD_BYTES), Ok(Parse::Partial), "cut at {cut}");
        }
        assert_eq!(complete(input).0.headers.len(), 2);
    }

    #[test]
    fn size_limits_are_431() {
        let big = format!("GET / HTTP/1.1\r\nX: {}\r\n\r\n", "a".repeat(MAX_HEAD_BYTES));
        assert_eq!(parse_request(big.as_bytes(), MAX_HEAD_BYTES), Err(ParseError::HeadTooLarge));
        // Detected before the head ends, as soon as the limit is reached.
        assert_eq!(parse_request(&big.as_bytes()[..MAX_HEAD_BYTES], MAX_HEAD_BYTES), Err(ParseError::HeadTooLarge));
        // A head of exactly the limit is fine; one byte more is not.
        let fill = |n: usize| {
            let base = "GET / HTTP/1.1\r\nX: \r\n\r\n".len();
            format!("GET / HTTP/1.1\r\nX: {}\r\n\r\n", "b".repeat(n - base))
        };
        assert!(matches!(parse_request(fill(MAX_HEAD_BYTES).as_bytes(), MAX_HEAD_BYTES), Ok(Parse::Complete { .. })));
        assert_eq!(parse_request(fill(MAX_HEAD_BYTES + 1).as_bytes(), MAX_HEAD_BYTES), Err(ParseError::HeadTooLarge));
        // An endless request line.
        assert_eq!(parse_request("A".repeat(MAX_HEAD_BYTES).as_bytes(), MAX_HEAD_BYTES), Err(ParseError::HeadTooLarge));
        // Too many header lines.
        let many: String = (0..=MAX_HEADERS).map(|i| format!("H{i}: v\r\n")).collect();
        let req = format!("GET / HTTP/1.1\r\n{many}\r\n");
        assert_eq!(parse_request(req.as_bytes(), MAX_HEAD_BYTES), Err(ParseError::HeadTooLarge));
        assert_eq!(ParseError::HeadTooLarge.status(), 431);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        #[test]
        fn never_panics(input in any::<Vec<u8>>(), max in 0usize..512) {
            let _ = parse_request(&input, max);
            let _ = parse_request(&input, MAX_HEAD_BYTES);
        }

        #[test]
        fn never_panics_on_near_valid_input(
            line in "[A-Z]{1,7} /[a-z/]{0,12} HTTP/1\\.[01]",
            headers in proptest::collection::vec(("[A-Za-z-]{1,10}", "[ -~]{0,20}"), 0..6),
            noise in any::<Vec<u8>>(),
            at in any::<prop::sample::Index>(),
        ) {
            let mut req: Vec<u8> = format!("{line}\r\n").into_bytes();
            for (n, v) in &headers {
                req.extend_from_slice(format!("{n}: {v}\r\n").as_bytes());
            }
            req.extend_from_slice(b"\r\n");
            // The clean request parses completely, and any prefix is Partial.
            let parsed = parse_request(&req, MAX_HEAD_BYTES);
            prop_assert!(matches!(parsed, Ok(Parse::Complete { head_len, .. }) if head_len == req.len()), "{:?}", parsed);
            let cut = at.index(req.len());
            prop_assert_eq!(parse_request(&req[..cut], MAX_HEAD_BYTES), Ok(Parse::Partial));
            // Noise spliced in anywhere never panics.
            let mut noisy = req.clone();
            let pos = at.index(noisy.len() + 1);
            noisy.splice(pos..pos, noise);
            let _ = parse_request(&noisy, MAX_HEAD_BYTES);
        }
    }
}

// ===== the frame decoder =====

mod frames {
    use super::framing::*;
    use proptest::prelude::*;

    fn decode_all(dec: &mut FrameDecoder) -> Result<Vec<Vec<u8>>, FrameTooLarge> {
        let mut out = Vec::new();
        while let Some(f) = dec.next_frame()? {
            out.push(f);
        }
        Ok(out)
    }

    #[test]
    fn encode_layout() {
        assert_eq!(encode_frame(b"hi", MAX_FRAME_LEN).unwrap(), vec![0, 0, 0, 2, b'h', b'i']);
        assert_eq!(encode_frame(b"", MAX_FRAME_LEN).unwrap(), vec![0, 0, 0, 0]);
        assert_eq!(encode_frame(&[7; 300], MAX_FRAME_LEN).unwrap()[..4], [0, 0, 1, 44]);
        assert!(encode_frame(&vec![0; MAX_FRAME_LEN], MAX_FRAME_LEN).is_ok());
        let err = encode_frame(&vec![0; MAX_FRAME_LEN + 1], MAX_FRAME_LEN).unwrap_err();
        assert_eq!(err, FrameTooLarge { len: MAX_FRAME_LEN as u64 + 1, max: MAX_FRAME_LEN });
        assert_eq!(std::io::Error::from(err).kind(), std::io::ErrorKind::InvalidData);
    }

    #[test]
    fn decodes_byte_by_byte() {
        let mut stream = Vec::new();
        for msg in [&b"one"[..], b"", b"three"] {
            stream.extend(encode_frame(msg, MAX_FRAME_LEN).unwrap());
        }
        let mut dec = FrameDecoder::new(MAX_FRAME_LEN);
        let mut got = Vec::new();
        for b in &stream {
            dec.extend(std::slice::from_ref(b));
            got.extend(decode_all(&mut dec).unwrap());
        }
        assert_eq!(got, vec![b"one".to_vec(), vec![], b"three".to_vec()]);
        assert_eq!(dec.buffered(), 0);
    }

    #[test]
    fn partial_frame_waits() {
        let mut dec = FrameDecoder::new(16);
        dec.extend(&[0, 0, 0]);
        assert_eq!(dec.next_frame(), Ok(None));
        dec.extend(&[5, b'a', b'b']);
        assert_eq!(dec.next_frame(), Ok(None));
        assert_eq!(dec.buffered(), 6);
        dec.extend(b"cde");
        assert_eq!(dec.next_frame(), Ok(Some(b"abcde".to_vec())));
        assert_eq!(dec.next_frame(), Ok(None));
    }

    #[test]
    fn oversized_header_is_an_error_before_the_payload() {
        let mut dec = FrameDecoder::new(MAX_FRAME_LEN);
        dec.extend(&(MAX_FRAME_LEN as u32 + 1).to_be_bytes());
        assert_eq!(dec.next_frame(), Err(FrameTooLarge { len: MAX_FRAME_LEN as u64 + 1, max: MAX_FRAME_LEN }));
        let mut dec = FrameDecoder::new(MAX_FRAME_LEN);
        dec.extend(&u32::MAX.to_be_bytes());
        assert!(dec.next_frame().is_err());
        // Exactly the limit is accepted.
        let mut dec = FrameDecoder::new(4);
        dec.extend(&[0, 0, 0, 4, 1, 2, 3, 4]);
        assert_eq!(dec.next_frame(), Ok(Some(vec![1, 2, 3, 4])));
    }

    #[test]
    fn many_frames_compact_the_buffer() {
        let mut dec = FrameDecoder::new(MAX_FRAME_LEN);
        for i in 0..10_000u32 {
            dec.extend(&encode_frame(&i.to_be_bytes(), MAX_FRAME_LEN).unwrap());
            assert_eq!(dec.next_frame(), Ok(Some(i.to_be_bytes().to_vec())));
        }
        assert_eq!(dec.buffered(), 0);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(1000))]

        #[test]
        fn never_panics(input in any::<Vec<u8>>(), max in 0usize..1024, chunk in 1usize..64) {
            let mut dec = FrameDecoder::new(max);
            for piece in input.chunks(chunk) {
                dec.extend(piece);
                match decode_all(&mut dec) {
                    Ok(frames) => prop_assert!(frames.iter().all(|f| f.len() <= max)),
                    Err(e) => {
                        prop_assert!(e.len > max as u64);
                        break;
                    }
                }
            }
        }

        #[test]
        fn roundtrip_with_any_split(
            msgs in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..300), 0..20),
            cuts in proptest::collection::vec(1usize..97, 1..10),
        ) {
            let mut stream = Vec::new();
            for m in &msgs {
                stream.extend(encode_frame(m, MAX_FRAME_LEN).unwrap());
            }
            let mut dec = FrameDecoder::new(MAX_FRAME_LEN);
            let mut got = Vec::new();
            let (mut pos, mut i) = (0, 0);
            while pos < stream.len() {
                let end = (pos + cuts[i % cuts.len()]).min(stream.len());
                dec.extend(&stream[pos..end]);
                got.extend(decode_all(&mut dec).unwrap());
                pos = end;
                i += 1;
            }
            prop_assert_eq!(got, msgs);
            prop_assert_eq!(dec.buffered(), 0);
        }
    }
}
