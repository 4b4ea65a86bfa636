//! Parent/child IPC over a connected socket pair: the seed's "Socket Pair for
//! Parent-Child IPC".
//!
//! A one-byte command/response protocol: `ping → pong`, `get_status → status_ok`,
//! `shutdown → ack` (after which the child exits). This version adds an answer for a
//! byte that is no command (`error`), where the seed would have crashed.
//!
//! It runs twice:
//! 1. over [`UnixStream::pair`]: the child is a task on the same runtime; it reads
//!    commands with `read().await` and, after `ack`, closes its end, so the parent sees
//!    EOF. The parent also checks the peer credentials (same process id).
//! 2. over [`UnixDatagram::pair`] (the seed's choice: each command is one datagram): the
//!    child runs on its own thread with its own current-thread runtime, as a child
//!    process would run its own event loop.
//!
//! Where the seed polls `tryRecv` with 1 ms sleeps, both sides here await `recv`/`read`.
//! Run: `cargo run --example socketpair_ipc`.

use std::io;
use std::time::Duration;

use blitz_io::net::{UnixDatagram, UnixStream};
use blitz_io::time::timeout;

/// Commands the parent sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
enum Command {
    Ping = 0x01,
    GetStatus = 0x02,
    Shutdown = 0xFF,
}

impl TryFrom<u8> for Command {
    type Error = u8;
    fn try_from(b: u8) -> Result<Command, u8> {
        match b {
            0x01 => Ok(Command::Ping),
            0x02 => Ok(Command::GetStatus),
            0xFF => Ok(Command::Shutdown),
            other => Err(other),
        }
    }
}

/// Responses the child sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
enum Response {
    Pong = 0x01,
    StatusOk = 0x02,
    #[allow(dead_code)] // part of the protocol; this child is never busy
    StatusBusy = 0x03,
    Error = 0xEE,
    Ack = 0xFF,
}

impl TryFrom<u8> for Response {
    type Error = u8;
    fn try_from(b: u8) -> Result<Response, u8> {
        match b {
            0x01 => Ok(Response::Pong),
            0x02 => Ok(Response::StatusOk),
            0x03 => Ok(Response::StatusBusy),
            0xEE => Ok(Response::Error),
            0xFF => Ok(Response::Ack),
            other => Err(other),
        }
    }
}

/// The child's decision for one command byte: the reply, and whether to exit after it.
fn answer(byte: u8) -> (Response, bool) {
    match Command::try_from(byte) {
        Ok(Command::Ping) => (Response::Pong, false),
        Ok(Command::GetStatus) => (Response::StatusOk, false),
        Ok(Command::Shutdown) => (Response::Ack, true),
        Err(_) => (Response::Error, false),
    }
}

/// The conversation the parent has, and what it expects back.
const SCRIPT: [(u8, Response); 4] = [
    (Command::Ping as u8, Response::Pong),
    (Command::GetStatus as u8, Response::StatusOk),
    (0x42, Response::Error),
    (Command::Shutdown as u8, Response::Ack),
];

fn protocol_error(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg)
}

/// Child over a stream: one byte per command (a stream has no message boundaries, so the
/// protocol's fixed one-byte size is what frames it). Returns the commands handled.
async fn stream_child(mut sock: UnixStream) -> io::Result<usize> {
    let mut handled = 0;
    let mut cmd = [0u8; 1];
    loop {
        if sock.read(&mut cmd).await? == 0 {
            return Ok(handled); // parent went away
        }
        let (reply, exit) = answer(cmd[0]);
        sock.write_all(&[reply as u8]).await?;
        handled += 1;
        if exit {
            return Ok(handled); // dropping `sock` closes our end: the parent reads EOF
        }
    }
}

async fn over_stream_pair() -> io::Result<()> {
    let (mut parent, child) = UnixStream::pair()?;
    let cred = parent.peer_cred()?;
    if cred.pid() != Some(std::process::id() as i32) {
        return Err(protocol_error(format!("peer credentials name another process: {cred:?}")));
    }
    println!("stream pair: peer is pid {:?}, uid {}", cred.pid(), cred.uid());

    let child = blitz_io::task::spawn(stream_child(child));
    let mut reply = [0u8; 1];
    for (cmd, want) in SCRIPT {
        parent.write_all(&[cmd]).await?;
        if parent.read(&mut reply).await? == 0 {
            return Err(protocol_error(format!("child closed before answering {cmd:#04x}")));
        }
        let got = Response::try_from(reply[0]).map_err(|b| protocol_error(format!("unknown response {b:#04x}")))?;
        println!("stream pair: sent {cmd:#04x}, got {got:?}");
        if got != want {
            return Err(protocol_error(format!("expected {want:?} for {cmd:#04x}, got {got:?}")));
        }
    }
    // After `ack` the child closes its end.
    if parent.read(&mut reply).await? != 0 {
        return Err(protocol_error("child kept talking after ack".into()));
    }
    let handled = child.await??;
    println!("stream pair: child handled {handled} commands and closed; parent saw EOF");
    Ok(())
}

/// Child over datagrams: each datagram is one command.
async fn datagram_child(sock: UnixDatagram) -> io::Result<usize> {
    let mut handled = 0;
    let mut buf = [0u8; 256];
    loop {
        let n = sock.recv(&mut buf).await?;
        if n == 0 {
            continue; // an empty datagram carries no command
        }
        let (reply, exit) = answer(buf[0]);
        sock.send(&[reply as u8]).await?;
        handled += 1;
        if exit {
            return Ok(handled);
        }
    }
}

async fn over_datagram_pair() -> io::Result<()> {
    let (parent, child_end) = UnixDatagram::pair()?;

    // The child runs its own event loop on its own thread, like a separate process.
    let child = std::thread::spawn(move || -> io::Result<usize> {
        let rt = blitz_io::runtime::Builder::new_current_thread().build()?;
        rt.block_on(async { timeout(Duration::from_secs(5), datagram_child(child_end)).await? })
    });

    let mut buf = [0u8; 256];
    for (cmd, want) in SCRIPT {
        parent.send(&[cmd]).await?;
        let n = parent.recv(&mut buf).await?;
        if n != 1 {
            return Err(protocol_error(format!("expected a 1-byte response, got {n} bytes")));
        }
        let got = Response::try_from(buf[0]).map_err(|b| protocol_error(format!("unknown response {b:#04x}")))?;
        println!("datagram pair: sent {cmd:#04x}, got {got:?}");
        if got != want {
            return Err(protocol_error(format!("expected {want:?} for {cmd:#04x}, got {got:?}")));
        }
    }
    // Joining a thread blocks, so do it on the blocking pool, not on a worker.
    let joined = blitz_io::task::spawn_blocking(move || child.join()).await?;
    let handled = joined.map_err(|_| io::Error::other("child thread panicked"))??;
    println!("datagram pair: child thread handled {handled} commands and exited");
    Ok(())
}

fn main() {
    let result = blitz_io::run(async {
        timeout(Duration::from_secs(10), async {
            over_stream_pair().await?;
            over_datagram_pair().await
        })
        .await?
    });
    if let Err(e) = result {
        eprintln!("socketpair_ipc: FAILED: {e}");
        std::process::exit(1);
    }
    println!("socketpair_ipc: ok");
}
