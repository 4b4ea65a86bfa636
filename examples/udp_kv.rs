//! A DNS-style key-value lookup over UDP: the seed's "Simple Request-Response Protocol".
//!
//! One task serves GET requests from a static table; a client sends requests and waits
//! for each reply with a per-attempt timeout, re-sending a bounded number of times (UDP
//! may drop a datagram, so the client, not the transport, is responsible for retrying).
//!
//! ```text
//! Request:  [1 byte opcode] [1 byte key_len] [key_len bytes key]
//! Response: [1 byte status] [2 bytes val_len, big-endian] [val_len bytes value]
//!
//! Opcodes: 0x01 = GET
//! Status:  0x00 = OK, 0x01 = NOT_FOUND, 0x02 = ERROR
//! ```
//!
//! Everything runs on 127.0.0.1 with kernel-chosen ports: `cargo run --example udp_kv`.
//! The protocol functions are also exercised by `tests/udp.rs`.

use std::collections::HashMap;
use std::io;
use std::sync::Arc;
use std::time::Duration;

use blitz_io::net::{Address, UdpSocket};
use blitz_io::time::timeout;

/// Opcode of a GET request.
pub const OP_GET: u8 = 0x01;
/// Status: the key was found; the value follows.
pub const STATUS_OK: u8 = 0x00;
/// Status: no such key.
pub const STATUS_NOT_FOUND: u8 = 0x01;
/// Status: the request was malformed.
pub const STATUS_ERROR: u8 = 0x02;
/// Largest datagram either side expects; anything longer is malformed.
pub const MAX_DATAGRAM: usize = 512;

/// What a lookup can answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// The key's value.
    Found(Vec<u8>),
    /// The server has no such key.
    NotFound,
    /// The server rejected the request as malformed.
    ServerError,
}

/// Encodes a GET request for `key`.
///
/// # Errors
///
/// `InvalidInput` if the key is longer than 255 bytes (its length must fit in one byte).
pub fn build_get_request(key: &[u8]) -> io::Result<Vec<u8>> {
    let len = u8::try_from(key.len()).map_err(|_| {
        io::Error::new(io::ErrorKind::InvalidInput, format!("key is {} bytes long; at most 255 fit", key.len()))
    })?;
    let mut req = Vec::with_capacity(2 + key.len());
    req.extend_from_slice(&[OP_GET, len]);
    req.extend_from_slice(key);
    Ok(req)
}

/// Decodes a response.
///
/// # Errors
///
/// `InvalidData` if the response is shorter than its header or than the value length it
/// announces, or carries an unknown status.
pub fn parse_response(raw: &[u8]) -> io::Result<Reply> {
    let bad = |msg: &str| io::Error::new(io::ErrorKind::InvalidData, msg.to_string());
    let [status, hi, lo, value @ ..] = raw else {
        return Err(bad("response shorter than its 3-byte header"));
    };
    let len = usize::from(u16::from_be_bytes([*hi, *lo]));
    match *status {
        STATUS_OK if value.len() >= len => Ok(Reply::Found(value[..len].to_vec())),
        STATUS_OK => Err(bad("response shorter than the value length it announces")),
        STATUS_NOT_FOUND => Ok(Reply::NotFound),
        STATUS_ERROR => Ok(Reply::ServerError),
        _ => Err(bad("unknown response status")),
    }
}

/// Encodes a response with `status` and `value`.
fn response(status: u8, value: &[u8]) -> Vec<u8> {
    // Values come from the server's own table, all far shorter than 64 KiB; clamp
    // rather than panic if one ever is not.
    let value = &value[..value.len().min(usize::from(u16::MAX))];
    let len = u16::try_from(value.len()).unwrap_or(u16::MAX);
    let mut out = Vec::with_capacity(3 + value.len());
    out.push(status);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(value);
    out
}

/// The server's answer to one request datagram, or `None` to drop it silently (a
/// request whose key is shorter than its announced length, as in the seed).
///
/// `truncated` says the datagram did not fit in the receive buffer: such a request is
/// malformed and gets an error reply.
pub fn handle_request(table: &HashMap<Vec<u8>, Vec<u8>>, req: &[u8], truncated: bool) -> Option<Vec<u8>> {
    match req {
        [OP_GET, len, key @ ..] if !truncated => {
            let key = key.get(..usize::from(*len))?;
            Some(match table.get(key) {
                Some(value) => response(STATUS_OK, value),
                None => response(STATUS_NOT_FOUND, b""),
            })
        }
        _ => Some(response(STATUS_ERROR, b"")),
    }
}

/// Serves GET requests on `socket` from `table`, forever (abort the task to stop it).
///
/// # Errors
///
/// Only if the socket fails in a way retrying cannot fix.
pub async fn serve(socket: Arc<UdpSocket>, table: HashMap<Vec<u8>, Vec<u8>>) -> io::Result<()> {
    let mut buf = [0u8; MAX_DATAGRAM];
    loop {
        let got = socket.recv_from(&mut buf).await?;
        if let Some(reply) = handle_request(&table, &buf[..got.len], got.truncated) {
            // A reply that cannot be sent is the client's loss, like a dropped
            // datagram: it will retry. The server keeps serving.
            let _ = socket.send_to(&reply, got.addr).await;
        }
    }
}

/// Looks `key` up on the server at `server`: sends a request, waits up to
/// `per_attempt` for the reply, and re-sends up to `attempts` times in all.
///
/// Datagrams from any other address are ignored.
///
/// # Errors
///
/// `TimedOut` when no reply came after `attempts` tries; `InvalidInput` for a key over
/// 255 bytes; `InvalidData` for an undecodable reply; socket errors as they come (for
/// example `ConnectionRefused` is not reported on an unconnected socket, so a dead
/// server looks like a timeout).
pub async fn lookup(
    socket: &UdpSocket,
    server: Address,
    key: &[u8],
    per_attempt: Duration,
    attempts: u32,
) -> io::Result<Reply> {
    let request = build_get_request(key)?;
    let mut buf = [0u8; MAX_DATAGRAM];
    for _ in 0..attempts {
        socket.send_to(&request, server).await?;
        let wait = async {
            loop {
                let got = socket.recv_from(&mut buf).await?;
                if got.addr == server {
                    return parse_response(&buf[..got.len]);
                }
            }
        };
        match timeout(per_attempt, wait).await {
            Ok(reply) => return reply,
            Err(_elapsed) => continue,
        }
    }
    Err(io::Error::new(io::ErrorKind::TimedOut, format!("no reply from {server} after {attempts} attempts")))
}

/// The table the demo server serves.
pub fn demo_table() -> HashMap<Vec<u8>, Vec<u8>> {
    HashMap::from([
        (b"api.example.com".to_vec(), b"93.184.216.34".to_vec()),
        (b"db.internal".to_vec(), b"10.0.1.50".to_vec()),
    ])
}

/// Runs the demo: starts a server, looks up a few keys, and returns one line per query.
///
/// # Errors
///
/// Any socket error other than the expected timeout against a silent peer.
pub async fn run_demo() -> io::Result<Vec<String>> {
    let server = Arc::new(UdpSocket::bind(Address::loopback_v4(0))?);
    let server_addr = server.local_addr()?;
    let server_task = blitz_io::task::spawn(serve(server.clone(), demo_table()));

    let client = UdpSocket::bind(Address::loopback_v4(0))?;
    let mut lines = Vec::new();
    for key in ["api.example.com", "db.internal", "missing.key"] {
        let reply = lookup(&client, server_addr, key.as_bytes(), Duration::from_millis(500), 3).await?;
        lines.push(match reply {
            Reply::Found(v) => format!("{key} -> {}", String::from_utf8_lossy(&v)),
            Reply::NotFound => format!("{key} -> not found"),
            Reply::ServerError => format!("{key} -> server error"),
        });
    }

    // A malformed request (unknown opcode) gets an error status.
    client.send_to(&[0x7f, 0], server_addr).await?;
    let mut buf = [0u8; MAX_DATAGRAM];
    let got = timeout(Duration::from_secs(2), client.recv_from(&mut buf)).await??;
    lines.push(format!("malformed request -> {:?}", parse_response(&buf[..got.len])?));

    // A peer that never answers: the client gives up after its retries.
    let silent = UdpSocket::bind(Address::loopback_v4(0))?;
    match lookup(&client, silent.local_addr()?, b"anything", Duration::from_millis(50), 3).await {
        Err(e) if e.kind() == io::ErrorKind::TimedOut => lines.push(format!("silent server -> {e}")),
        Err(e) => return Err(e),
        Ok(reply) => lines.push(format!("silent server -> unexpected {reply:?}")),
    }

    server_task.abort();
    Ok(lines)
}

fn main() {
    match blitz_io::run(run_demo()) {
        Ok(lines) => {
            for line in lines {
                println!("{line}");
            }
        }
        Err(e) => {
            eprintln!("udp_kv: {e}");
            std::process::exit(1);
        }
    }
}
