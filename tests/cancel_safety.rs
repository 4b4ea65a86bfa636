//! Cancel safety of the stream and listener futures: a dropped `read`, `peek`,
//! `readable` or `accept` future loses no data and no connection.

use std::collections::HashSet;
use std::future::Future;
use std::time::Duration;

use blitz_io::net::{Address, TcpListener, TcpStream, UnixStream};
use blitz_io::time::{sleep, timeout};

const LIMIT: Duration = Duration::from_secs(20);

async fn bounded<F: Future>(f: F) -> F::Output {
    timeout(LIMIT, f).await.expect("test body timed out")
}

async fn pair() -> (TcpStream, TcpStream) {
    let listener = TcpListener::bind(Address::loopback_v4(0)).unwrap();
    let client = TcpStream::connect(listener.local_addr().unwrap()).await.unwrap();
    let server = listener.accept().await.unwrap().stream;
    (client, server)
}

#[blitz_io::test]
async fn dropped_read_loses_no_bytes() {
    bounded(async {
        let (mut client, mut server) = pair().await;
        let mut expect = Vec::new();
        let mut got = Vec::new();
        for round in 0..20u8 {
            let mut buf = [0u8; 64];
            // Cancelled before any data is there.
            assert!(timeout(Duration::from_millis(2), server.read(&mut buf)).await.is_err());
            assert!(timeout(Duration::from_millis(1), server.peek(&mut buf)).await.is_err());
            let _ = timeout(Duration::from_millis(1), server.readable()).await;
            let msg = [round; 10];
            client.write_all(&msg).await.unwrap();
            expect.extend_from_slice(&msg);
            // The next read gets every byte of this round.
            let mut n = 0;
            while n < 10 {
                let k = server.read(&mut buf[n..10]).await.unwrap();
                assert_ne!(k, 0);
                n += k;
            }
            got.extend_from_slice(&buf[..10]);
        }
        assert_eq!(got, expect, "a cancelled read consumed bytes");
    })
    .await
}

#[blitz_io::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_cancelled_while_data_arrives_loses_nothing() {
    bounded(async {
        let (mut a, mut b) = UnixStream::pair().unwrap();
        const N: usize = 200;
        let writer = blitz_io::task::spawn(async move {
            for i in 0..N {
                a.write_all(&(i as u32).to_le_bytes()).await.unwrap();
                if i % 10 == 0 {
                    sleep(Duration::from_millis(1)).await;
                }
            }
            a
        });
        let mut got = Vec::new();
        let mut buf = [0u8; 64];
        let mut timeouts = 0;
        while got.len() < N * 4 {
            // Very short timeouts race the arriving data; each read either completes
            // (its bytes are kept) or is dropped having read nothing.
            match timeout(Duration::from_micros(300), b.read(&mut buf)).await {
                Ok(n) => got.extend_from_slice(&buf[..n.unwrap()]),
                Err(_) => timeouts += 1,
            }
        }
        let expect: Vec<u8> = (0..N as u32).flat_map(|i| i.to_le_bytes()).collect();
        assert_eq!(got, expect);
        let _ = timeouts;
        writer.await.unwrap();
    })
    .await
}

#[blitz_io::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropped_accepts_lose_no_connection() {
    bounded(async {
        let listener = TcpListener::bind(Address::loopback_v4(0)).unwrap();
        let addr = listener.local_addr().unwrap();
        const N: usize = 60;
        let clients = blitz_io::task::spawn(async move {
            let mut locals = Vec::new();
            let mut keep = Vec::new();
            for i in 0..N {
                let mut s = TcpStream::connect(addr).await.unwrap();
                s.write_all(&(i as u32).to_le_bytes()).await.unwrap();
                locals.push(s.local_addr().unwrap());
                keep.push(s);
                if i % 3 == 0 {
                    sleep(Duration::from_millis(1)).await;
                }
            }
            (locals, keep)
        });
        let mut peers = HashSet::new();
        let mut ids = HashSet::new();
        let mut cancelled = 0;
        while peers.len() < N {
            // Alternate very short and zero-length waits so that many accept futures
            // are dropped, some while a connection is queued.
            let wait = if cancelled % 2 == 0 { Duration::from_micros(200) } else { Duration::ZERO };
            match timeout(wait, listener.accept()).await {
                Ok(conn) => {
                    let conn = conn.unwrap();
                    assert!(peers.insert(conn.peer_addr), "accepted twice");
                    let mut s = conn.stream;
                    let mut id = [0u8; 4];
                    let mut got = 0;
                    while got < 4 {
                        got += s.read(&mut id[got..]).await.unwrap();
                    }
                    assert!(ids.insert(u32::from_le_bytes(id)));
                }
                Err(_) => cancelled += 1,
            }
        }
        let (locals, _keep) = clients.await.unwrap();
        assert_eq!(peers, locals.into_iter().collect::<HashSet<_>>());
        assert_eq!(ids, (0..N as u32).collect::<HashSet<_>>());
        assert!(cancelled > 0, "the test never cancelled an accept");
        assert!(listener.try_accept().unwrap().is_none());
    })
    .await
}

#[blitz_io::test]
async fn dropped_write_all_is_documented_not_cancel_safe_but_write_is() {
    bounded(async {
        // `write`: either it completed (count returned) or nothing was written.
        let (mut client, mut server) = pair().await;
        let chunk = vec![1u8; 256 * 1024];
        let mut written = 0usize;
        for _ in 0..50 {
            if let Ok(r) = timeout(Duration::from_millis(1), client.write(&chunk)).await {
                written += r.unwrap();
            }
        }
        client.shutdown(std::net::Shutdown::Write).unwrap();
        let mut total = 0usize;
        let mut buf = vec![0u8; 65536];
        loop {
            let n = server.read(&mut buf).await.unwrap();
            if n == 0 {
                break;
            }
            total += n;
        }
        assert_eq!(total, written, "a cancelled write must have written nothing");
    })
    .await
}
