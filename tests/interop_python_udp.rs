//! Interoperability with another UDP implementation: CPython's `socket` module, on
//! 127.0.0.1, as an echo server and as a client. Skipped (with a note) only when
//! `python3` is not installed.

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use blitz_io::net::{Address, UdpSocket};
use blitz_io::time::timeout;

/// A UDP echo server: prints its port, echoes every datagram, answers `big` with 3000
/// bytes, exits on `quit` (or after 20 s, so it can never outlive a broken test).
const ECHO_SERVER: &str = r#"
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("127.0.0.1", 0))
s.settimeout(20)
print(s.getsockname()[1], flush=True)
while True:
    data, addr = s.recvfrom(65535)
    if data == b"quit":
        s.sendto(b"bye", addr)
        break
    if data == b"big":
        s.sendto(bytes(range(256)) * 11 + bytes(184), addr)
        continue
    s.sendto(data, addr)
"#;

/// A UDP client: sends a greeting to the port in argv[1], prints the reply.
const CLIENT: &str = r#"
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(10)
s.sendto(b"hello from python", ("127.0.0.1", int(sys.argv[1])))
data, addr = s.recvfrom(1024)
print(data.decode(), flush=True)
"#;

/// Kills the child on drop, so a failing test leaves no process behind.
struct Reaper(Child);

impl Drop for Reaper {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn python(script: &str, args: &[&str]) -> Option<Reaper> {
    match Command::new("python3")
        .arg("-c")
        .arg(script)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
    {
        Ok(child) => Some(Reaper(child)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            eprintln!("SKIP: python3 is not installed; UDP interop not tested");
            None
        }
        Err(e) => panic!("cannot start python3: {e}"),
    }
}

/// Waits for the child to exit (5 s cap) and returns its exit success.
fn wait_exit(child: &mut Reaper) -> bool {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        if let Some(status) = child.0.try_wait().unwrap() {
            return status.success();
        }
        assert!(Instant::now() < deadline, "python3 did not exit");
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[blitz_io::test]
async fn python_echo_server() {
    let Some(mut child) = python(ECHO_SERVER, &[]) else { return };
    let mut line = String::new();
    BufReader::new(child.0.stdout.as_mut().unwrap()).read_line(&mut line).unwrap();
    let port: u16 = line.trim().parse().expect("python printed its port");
    let server = Address::loopback_v4(port);

    timeout(Duration::from_secs(15), async {
        let sock = UdpSocket::bind(Address::loopback_v4(0)).unwrap();
        let mut buf = [0u8; 4096];
        for i in 0..20u32 {
            let msg = format!("datagram {i} {}", "x".repeat(i as usize * 37));
            sock.send_to(msg.as_bytes(), server).await.unwrap();
            let r = sock.recv_from(&mut buf).await.unwrap();
            assert_eq!(r.addr, server);
            assert!(!r.truncated);
            assert_eq!(&buf[..r.len], msg.as_bytes());
        }

        // Binary data survives, NULs included.
        let binary: Vec<u8> = (0..=255u8).collect();
        sock.send_to(&binary, server).await.unwrap();
        let r = sock.recv_from(&mut buf).await.unwrap();
        assert_eq!(&buf[..r.len], &binary[..]);

        // A reply larger than our buffer is flagged as truncated.
        sock.send_to(b"big", server).await.unwrap();
        let mut small = [0u8; 100];
        let r = sock.recv_from(&mut small).await.unwrap();
        assert_eq!((r.len, r.truncated), (100, true));
        assert_eq!(&small[..], &(0..100u8).collect::<Vec<_>>()[..]);

        // Connected mode against the same peer.
        sock.connect(server).unwrap();
        sock.send(b"connected").await.unwrap();
        let n = sock.recv(&mut buf).await.unwrap();
        assert_eq!(&buf[..n], b"connected");

        sock.send(b"quit").await.unwrap();
        let n = sock.recv(&mut buf).await.unwrap();
        assert_eq!(&buf[..n], b"bye");
    })
    .await
    .expect("python echo exchange timed out");
    assert!(wait_exit(&mut child), "python3 echo server failed");
}

#[blitz_io::test]
async fn python_client() {
    let sock = UdpSocket::bind(Address::loopback_v4(0)).unwrap();
    let port = sock.local_addr().unwrap().port().to_string();
    let Some(mut child) = python(CLIENT, &[&port]) else { return };

    timeout(Duration::from_secs(15), async {
        let mut buf = [0u8; 1024];
        let r = sock.recv_from(&mut buf).await.unwrap();
        assert_eq!(&buf[..r.len], b"hello from python");
        assert!(r.addr.ip().is_loopback());
        sock.send_to(b"hello from blitz-io", r.addr).await.unwrap();
    })
    .await
    .expect("python client exchange timed out");

    assert!(wait_exit(&mut child), "python3 client failed");
    let mut out = String::new();
    child.0.stdout.as_mut().unwrap().read_to_string(&mut out).unwrap();
    assert_eq!(out.trim(), "hello from blitz-io");
}
