//! TCP interoperability with an independent implementation: python3 as the client of a
//! blitz-io server, and as the server of a blitz-io client. Skipped (with a note) only
//! if python3 is not installed.

use std::process::{Command, Stdio};
use std::time::Duration;

use blitz_io::net::{Address, TcpListener, TcpStream};
use blitz_io::time::timeout;

fn python() -> Option<&'static str> {
    let ok = Command::new("python3").arg("-c").arg("pass").stdout(Stdio::null()).stderr(Stdio::null()).status();
    match ok {
        Ok(s) if s.success() => Some("python3"),
        _ => {
            eprintln!("python3 not found: skipping the Python interop test");
            None
        }
    }
}

const CLIENT: &str = r#"
import socket, sys
port = int(sys.argv[1])
data = bytes((i * 13 + 5) % 256 for i in range(200000))
s = socket.create_connection(("127.0.0.1", port), timeout=10)
s.sendall(data)
s.shutdown(socket.SHUT_WR)
got = bytearray()
while True:
    chunk = s.recv(65536)
    if not chunk:
        break
    got += chunk
assert bytes(got) == data[::-1], "echo mismatch"
print("ok")
"#;

const SERVER: &str = r#"
import socket, sys
l = socket.socket()
l.bind(("127.0.0.1", 0))
l.listen(1)
print(l.getsockname()[1], flush=True)
l.settimeout(10)
c, _ = l.accept()
c.settimeout(10)
got = bytearray()
while True:
    chunk = c.recv(65536)
    if not chunk:
        break
    got += chunk
c.sendall(b"len=%d sum=%d" % (len(got), sum(got)))
c.close()
"#;

#[blitz_io::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_client_against_a_blitz_server() {
    let Some(py) = python() else { return };
    timeout(Duration::from_secs(30), async {
        let listener = TcpListener::bind(Address::loopback_v4(0)).unwrap();
        let port = listener.local_addr().unwrap().port();
        let child =
            std::thread::spawn(move || Command::new(py).arg("-c").arg(CLIENT).arg(port.to_string()).output().unwrap());
        // Read everything, then send it back reversed.
        let mut s = listener.accept().await.unwrap().stream;
        let mut got = Vec::new();
        let mut buf = [0u8; 8192];
        loop {
            let n = s.read(&mut buf).await.unwrap();
            if n == 0 {
                break;
            }
            got.extend_from_slice(&buf[..n]);
        }
        let expect: Vec<u8> = (0..200_000usize).map(|i| ((i * 13 + 5) % 256) as u8).collect();
        assert!(got == expect, "bytes from Python differ");
        got.reverse();
        s.write_all(&got).await.unwrap();
        drop(s);
        let out = blitz_io::task::spawn_blocking(move || child.join().unwrap()).await.unwrap();
        assert!(out.status.success(), "python client failed: {}", String::from_utf8_lossy(&out.stderr));
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "ok");
    })
    .await
    .expect("timed out");
}

#[blitz_io::test(flavor = "multi_thread", worker_threads = 2)]
async fn blitz_client_against_a_python_server() {
    let Some(py) = python() else { return };
    timeout(Duration::from_secs(30), async {
        let mut child = Command::new(py).arg("-c").arg(SERVER).stdout(Stdio::piped()).spawn().unwrap();
        let mut stdout = child.stdout.take().unwrap();
        let port: u16 = blitz_io::task::spawn_blocking(move || {
            use std::io::Read;
            let mut line = Vec::new();
            let mut b = [0u8; 1];
            while stdout.read(&mut b).unwrap() == 1 && b[0] != b'\n' {
                line.push(b[0]);
            }
            String::from_utf8(line).unwrap().trim().parse().unwrap()
        })
        .await
        .unwrap();
        let mut s = TcpStream::connect(Address::loopback_v4(port)).await.unwrap();
        let data: Vec<u8> = (0..150_000u32).map(|i| (i % 241) as u8).collect();
        s.write_all(&data).await.unwrap();
        s.shutdown(std::net::Shutdown::Write).unwrap();
        let mut reply = Vec::new();
        let mut buf = [0u8; 256];
        loop {
            let n = s.read(&mut buf).await.unwrap();
            if n == 0 {
                break;
            }
            reply.extend_from_slice(&buf[..n]);
        }
        let sum: u64 = data.iter().map(|&b| b as u64).sum();
        assert_eq!(String::from_utf8(reply).unwrap(), format!("len={} sum={}", data.len(), sum));
        let status = blitz_io::task::spawn_blocking(move || child.wait().unwrap()).await.unwrap();
        assert!(status.success());
    })
    .await
    .expect("timed out");
}
