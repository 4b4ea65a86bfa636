//! A minimal HTTP/1.1 server: the seed's "Simple HTTP Request Parser", in async Rust.
//!
//! The server accepts connections on 127.0.0.1 (kernel-chosen port) and handles each in
//! its own task: it reads until the request head is complete, parses it with the
//! incremental parser of `examples/common/http_parse.rs`, routes it, writes the response
//! and closes the connection gracefully (shutdown the write side, then drain the read
//! side until the client's EOF). The routes:
//!
//! | request | response |
//! |---|---|
//! | `GET /health` | `200 OK`, body `ok` |
//! | any other `GET` | `404 Not Found` |
//! | any other method | `405 Method Not Allowed` |
//! | a malformed head (or EOF before it ends) | `400 Bad Request` |
//! | a head over 8 KiB | `431 Request Header Fields Too Large` |
//! | no complete head within 2 s | `408 Request Timeout` |
//!
//! Where the seed polls `tryRead` with 1 ms sleeps, this version awaits `read`: the task
//! sleeps in the I/O driver until bytes arrive, so a request split across many reads
//! costs nothing while it waits.
//!
//! `main` then plays the client: it sends one request of each kind (some split into
//! pieces, one byte at a time, one far too large, some garbage) and checks every status
//! line. It exits non-zero if any response is wrong. Run: `cargo run --example http_server`.

#[path = "common/http_parse.rs"]
mod http_parse;

use std::io;
use std::net::Shutdown;
use std::time::Duration;

use blitz_io::net::{Address, TcpListener, TcpStream};
use blitz_io::time::{sleep, timeout};
use http_parse::{error_response, parse_request, render, route, Parse, Response, MAX_HEAD_BYTES};

/// How long a client may take to send a complete request head.
const HEAD_TIMEOUT: Duration = Duration::from_secs(2);
/// How long to wait for the client's EOF after our response, before closing anyway.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(1);

/// Reads one request head from `stream` and decides the response.
///
/// Returns `None` for a connection that closed without sending a byte.
async fn read_and_route(stream: &mut TcpStream) -> io::Result<Option<Response>> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 2048];
    let read_head = async {
        loop {
            // Parse everything received so far: a head split across reads parses the
            // same as one that arrived whole; errors are caught as early as possible.
            match parse_request(&buf, MAX_HEAD_BYTES) {
                Ok(Parse::Complete { request, .. }) => return Ok(Some(route(&request))),
                Ok(Parse::Partial) => {}
                Err(e) => return Ok(Some(error_response(e))),
            }
            let n = stream.read(&mut chunk).await?;
            if n == 0 {
                // EOF: nothing sent at all is not a request; half a head is a bad one.
                return Ok(if buf.is_empty() { None } else { Some(Response { status: 400, body: "" }) });
            }
            buf.extend_from_slice(&chunk[..n]);
        }
    };
    match timeout(HEAD_TIMEOUT, read_head).await {
        Ok(result) => result,
        Err(_elapsed) => Ok(Some(Response { status: 408, body: "" })),
    }
}

/// Handles one connection: one request, one response, graceful close.
async fn handle_connection(mut stream: TcpStream) -> io::Result<()> {
    if let Some(response) = read_and_route(&mut stream).await? {
        stream.write_all(&render(response)).await?;
    }
    // Graceful close: send our FIN, then read until the client's FIN so that unread
    // request bytes (e.g. the rest of an oversized head) do not make the kernel answer
    // with a reset that would destroy the response in flight.
    stream.shutdown(Shutdown::Write)?;
    let mut sink = [0u8; 4096];
    let _ = timeout(DRAIN_TIMEOUT, async {
        while stream.read(&mut sink).await? > 0 {}
        Ok::<(), io::Error>(())
    })
    .await;
    Ok(())
}

/// The accept loop: one task per connection, forever.
async fn serve(listener: TcpListener) {
    loop {
        match listener.accept().await {
            Ok(conn) => {
                blitz_io::task::spawn(async move {
                    if let Err(e) = handle_connection(conn.stream).await {
                        eprintln!("server: connection from {}: {e}", conn.peer_addr);
                    }
                });
            }
            Err(e) => {
                // E.g. out of file descriptors: back off instead of spinning.
                eprintln!("server: accept failed: {e}");
                sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

/// One client exchange: send `parts` (pausing between them so that they arrive in
/// separate reads), signal end-of-request with a write shutdown, read the response to EOF.
async fn exchange(addr: Address, parts: &[Vec<u8>]) -> io::Result<Vec<u8>> {
    let mut stream = TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    for (i, part) in parts.iter().enumerate() {
        if i > 0 {
            sleep(Duration::from_millis(2)).await;
        }
        stream.write_all(part).await?;
    }
    stream.shutdown(Shutdown::Write)?;
    let mut response = Vec::new();
    let mut buf = [0u8; 1024];
    timeout(Duration::from_secs(5), async {
        loop {
            let n = stream.read(&mut buf).await?;
            if n == 0 {
                return Ok::<(), io::Error>(());
            }
            response.extend_from_slice(&buf[..n]);
        }
    })
    .await??;
    Ok(response)
}

/// One test case: a name, the request in pieces, the expected status and body.
struct Case {
    name: &'static str,
    parts: Vec<Vec<u8>>,
    status: Option<u16>,
    body: &'static str,
}

fn whole(s: &str) -> Vec<Vec<u8>> {
    vec![s.as_bytes().to_vec()]
}

fn cases() -> Vec<Case> {
    let health = "GET /health HTTP/1.1\r\nHost: localhost\r\nUser-Agent: blitz-io-example\r\n\r\n";
    let big_header = format!("GET /health HTTP/1.1\r\nX-Padding: {}\r\n\r\n", "a".repeat(16 * 1024));
    vec![
        Case { name: "GET /health", parts: whole(health), status: Some(200), body: "ok" },
        Case { name: "GET /missing", parts: whole("GET /missing HTTP/1.1\r\n\r\n"), status: Some(404), body: "" },
        Case {
            name: "POST /health",
            parts: whole("POST /health HTTP/1.1\r\nContent-Length: 0\r\n\r\n"),
            status: Some(405),
            body: "",
        },
        Case { name: "DELETE /item", parts: whole("DELETE /item HTTP/1.0\r\n\r\n"), status: Some(405), body: "" },
        Case { name: "garbage line", parts: whole("hello there\r\n\r\n"), status: Some(400), body: "" },
        Case { name: "missing version", parts: whole("GET /health\r\n\r\n"), status: Some(400), body: "" },
        Case { name: "bad version", parts: whole("GET /health HTTP/9.9\r\n\r\n"), status: Some(400), body: "" },
        Case {
            name: "header without colon",
            parts: whole("GET /health HTTP/1.1\r\nNoColonHere\r\n\r\n"),
            status: Some(400),
            body: "",
        },
        Case {
            name: "binary junk",
            parts: vec![vec![0, 1, 2, 0xff, 0xfe, b'\r', b'\n', b'\r', b'\n']],
            status: Some(400),
            body: "",
        },
        Case {
            name: "split in three reads",
            parts: vec![b"GET /hea".to_vec(), b"lth HTTP/1.1\r".to_vec(), b"\nHost: x\r\n\r\n".to_vec()],
            status: Some(200),
            body: "ok",
        },
        Case {
            name: "one byte per read",
            parts: "GET /health HTTP/1.1\r\n\r\n".bytes().map(|b| vec![b]).collect(),
            status: Some(200),
            body: "ok",
        },
        Case { name: "16 KiB header", parts: whole(&big_header), status: Some(431), body: "" },
        Case { name: "EOF mid-head", parts: whole("GET /health HTTP/1.1\r\nHost: x"), status: Some(400), body: "" },
        Case { name: "empty connection", parts: vec![], status: None, body: "" },
    ]
}

/// Splits a response into (status code, body); `None` for an empty response.
fn parse_response(resp: &[u8]) -> Result<Option<(u16, String, String)>, String> {
    if resp.is_empty() {
        return Ok(None);
    }
    let text = String::from_utf8_lossy(resp);
    let (head, body) = text.split_once("\r\n\r\n").ok_or("response has no blank line")?;
    let status_line = head.lines().next().unwrap_or_default().to_owned();
    let code = status_line
        .strip_prefix("HTTP/1.1 ")
        .and_then(|rest| rest.get(..3))
        .and_then(|c| c.parse::<u16>().ok())
        .ok_or_else(|| format!("bad status line {status_line:?}"))?;
    Ok(Some((code, status_line, body.to_owned())))
}

#[blitz_io::main]
async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let listener = TcpListener::bind(Address::loopback_v4(0))?;
    let addr = listener.local_addr()?;
    println!("http_server: listening on {addr}");
    let server = blitz_io::task::spawn(serve(listener));

    let mut failures = 0;
    let cases = cases();
    for case in &cases {
        let response = exchange(addr, &case.parts).await?;
        let got = parse_response(&response)?;
        let (ok, shown) = match (&got, case.status) {
            (Some((code, line, body)), Some(want)) => (*code == want && body == case.body, line.clone()),
            (None, None) => (true, "(no response, connection closed)".to_owned()),
            (Some((_, line, _)), None) => (false, line.clone()),
            (None, Some(_)) => (false, "(no response)".to_owned()),
        };
        println!("{:<22} -> {shown}{}", case.name, if ok { "" } else { "   <-- UNEXPECTED" });
        if !ok {
            failures += 1;
        }
    }

    server.abort();
    if failures > 0 {
        return Err(format!("{failures} of {} cases failed", cases.len()).into());
    }
    println!("http_server: all {} cases passed", cases.len());
    Ok(())
}
