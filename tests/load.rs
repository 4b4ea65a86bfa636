//! Load: 1,000 concurrent TCP connections, each echoing 64 KiB, every byte verified, on
//! a 2-worker runtime, under a time bound.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use blitz_io::net::{Address, TcpListener, TcpStream};
use blitz_io::time::timeout;

const CONNS: usize = 1000;
const BYTES: usize = 64 * 1024;

/// Makes sure the process may open enough descriptors (two per connection plus slack).
fn raise_nofile(need: u64) {
    let mut lim = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: `lim` is a valid, writable `rlimit`.
    assert_eq!(unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) }, 0);
    if lim.rlim_cur < need {
        lim.rlim_cur = need.min(lim.rlim_max);
        // SAFETY: `lim` is a valid `rlimit` with the soft limit at most the hard limit.
        assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lim) }, 0);
    }
    assert!(lim.rlim_cur >= need.min(lim.rlim_max));
}

fn byte(conn: usize, i: usize) -> u8 {
    (conn.wrapping_mul(2654435761) ^ i.wrapping_mul(40503) ^ (i >> 8)) as u8
}

#[blitz_io::test(flavor = "multi_thread", worker_threads = 2)]
async fn thousand_connections_echo_64k_each() {
    raise_nofile((CONNS as u64) * 2 + 256);
    timeout(Duration::from_secs(60), async {
        let listener = TcpListener::bind(Address::loopback_v4(0)).unwrap();
        let addr = listener.local_addr().unwrap();
        let server = blitz_io::task::spawn(async move {
            for _ in 0..CONNS {
                let conn = listener.accept().await.unwrap();
                blitz_io::task::spawn(async move {
                    let mut s = conn.stream;
                    let mut buf = vec![0u8; 16 * 1024];
                    loop {
                        let n = s.read(&mut buf).await.unwrap();
                        if n == 0 {
                            break;
                        }
                        s.write_all(&buf[..n]).await.unwrap();
                    }
                });
            }
        });

        let verified = Arc::new(AtomicUsize::new(0));
        let mut clients = Vec::with_capacity(CONNS);
        for c in 0..CONNS {
            let verified = verified.clone();
            clients.push(blitz_io::task::spawn(async move {
                let stream = TcpStream::connect(addr).await.unwrap();
                let (mut rd, mut wr) = stream.into_split();
                let writer = blitz_io::task::spawn(async move {
                    let data: Vec<u8> = (0..BYTES).map(|i| byte(c, i)).collect();
                    for chunk in data.chunks(8 * 1024) {
                        wr.write_all(chunk).await.unwrap();
                    }
                    wr // dropping it would send EOF before the echo is read: keep it
                });
                let mut got = vec![0u8; BYTES];
                let mut n = 0;
                while n < BYTES {
                    let k = rd.read(&mut got[n..]).await.unwrap();
                    assert_ne!(k, 0, "connection {c}: early EOF at {n}");
                    n += k;
                }
                for (i, &b) in got.iter().enumerate() {
                    assert_eq!(b, byte(c, i), "connection {c}: byte {i} differs");
                }
                drop(writer.await.unwrap()); // EOF ends the server's echo task
                verified.fetch_add(1, Ordering::Relaxed);
            }));
        }
        for c in clients {
            c.await.unwrap();
        }
        server.await.unwrap();
        assert_eq!(verified.load(Ordering::Relaxed), CONNS);
    })
    .await
    .expect("load test exceeded its time bound");
}
