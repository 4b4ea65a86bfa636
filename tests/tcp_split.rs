//! TCP stream halves: borrowed and owned, concurrent use from two tasks (1 MiB each way,
//! verified), reunite, shutdown on drop, and every half method.

use std::future::{poll_fn, Future};
use std::io::ErrorKind;
use std::pin::pin;
use std::task::Poll;
use std::time::Duration;

use blitz_io::net::tcp::{OwnedReadHalf, OwnedWriteHalf, ReadHalf, ReuniteError, WriteHalf};
use blitz_io::net::{Address, TcpListener, TcpStream};
use blitz_io::time::timeout;

const LIMIT: Duration = Duration::from_secs(30);

async fn bounded<F: Future>(f: F) -> F::Output {
    timeout(LIMIT, f).await.expect("test body timed out")
}

async fn pair() -> (TcpStream, TcpStream) {
    let listener = TcpListener::bind(Address::loopback_v4(0)).unwrap();
    let client = TcpStream::connect(listener.local_addr().unwrap()).await.unwrap();
    let server = listener.accept().await.unwrap().stream;
    (client, server)
}

/// Polls two futures in one task until both finish.
async fn join2<A: Future, B: Future>(a: A, b: B) -> (A::Output, B::Output) {
    let mut a = pin!(a);
    let mut b = pin!(b);
    let (mut ra, mut rb) = (None, None);
    poll_fn(|cx| {
        if ra.is_none() {
            if let Poll::Ready(v) = a.as_mut().poll(cx) {
                ra = Some(v);
            }
        }
        if rb.is_none() {
            if let Poll::Ready(v) = b.as_mut().poll(cx) {
                rb = Some(v);
            }
        }
        if ra.is_some() && rb.is_some() {
            Poll::Ready((ra.take().unwrap(), rb.take().unwrap()))
        } else {
            Poll::Pending
        }
    })
    .await
}

fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len).map(|i| ((i * 7 + i / 251) as u8) ^ seed).collect()
}

async fn read_exact_owned(rd: &mut OwnedReadHalf, len: usize) -> Vec<u8> {
    let mut out = vec![0u8; len];
    let mut got = 0;
    while got < len {
        let n = rd.read(&mut out[got..]).await.unwrap();
        assert_ne!(n, 0, "early end-of-stream after {got} bytes");
        got += n;
    }
    out
}

#[blitz_io::test(flavor = "multi_thread", worker_threads = 2)]
async fn owned_halves_in_two_tasks_move_a_mebibyte_each_way() {
    bounded(async {
        const LEN: usize = 1 << 20;
        let (client, server) = pair().await;
        let (mut c_rd, mut c_wr) = client.into_split();
        let (mut s_rd, mut s_wr) = server.into_split();

        // Each side writes 1 MiB while reading 1 MiB: without truly concurrent halves
        // the socket buffers fill up and this deadlocks.
        let c_writer = blitz_io::task::spawn(async move {
            c_wr.write_all(&pattern(LEN, 0xA5)).await.unwrap();
            c_wr
        });
        let c_reader = blitz_io::task::spawn(async move { read_exact_owned(&mut c_rd, LEN).await });
        let s_writer = blitz_io::task::spawn(async move {
            s_wr.write_all(&pattern(LEN, 0x3C)).await.unwrap();
            s_wr
        });
        let s_reader = blitz_io::task::spawn(async move { read_exact_owned(&mut s_rd, LEN).await });

        assert!(s_reader.await.unwrap() == pattern(LEN, 0xA5), "server received corrupted bytes");
        assert!(c_reader.await.unwrap() == pattern(LEN, 0x3C), "client received corrupted bytes");
        c_writer.await.unwrap();
        s_writer.await.unwrap();
    })
    .await
}

#[blitz_io::test]
async fn borrowed_halves_run_concurrently_in_one_task() {
    bounded(async {
        const LEN: usize = 1 << 20;
        let (mut client, mut server) = pair().await;
        let (mut c_rd, mut c_wr) = client.split();
        let (mut s_rd, mut s_wr) = server.split();
        let send_c = pattern(LEN, 1);
        let send_s = pattern(LEN, 2);
        async fn read_into(rd: &mut ReadHalf<'_>) -> Vec<u8> {
            let mut out = vec![0u8; LEN];
            let mut got = 0;
            while got < LEN {
                let n = rd.read(&mut out[got..]).await.unwrap();
                assert_ne!(n, 0);
                got += n;
            }
            out
        }
        let ((), (got_s, (got_c, ()))) = join2(
            async { c_wr.write_all(&send_c).await.unwrap() },
            join2(read_into(&mut s_rd), join2(read_into(&mut c_rd), async { s_wr.write_all(&send_s).await.unwrap() })),
        )
        .await;
        assert!(got_s == send_c && got_c == send_s, "corrupted bytes");
    })
    .await
}

#[blitz_io::test]
async fn reunite_same_stream_succeeds_and_different_streams_fail() {
    bounded(async {
        let (a, mut a_peer) = pair().await;
        let (b, _b_peer) = pair().await;
        let a_local = a.local_addr().unwrap();
        let (a_rd, a_wr) = a.into_split();
        let (b_rd, b_wr) = b.into_split();

        let err: ReuniteError = a_rd.reunite(b_wr).unwrap_err();
        assert!(err.to_string().contains("not from the same stream"));
        let (a_rd, b_wr) = (err.0, err.1);
        let err = b_rd.reunite(a_wr).unwrap_err();
        let (b_rd, a_wr) = (err.0, err.1);

        let mut a = a_rd.reunite(a_wr).expect("same stream");
        assert_eq!(a.local_addr().unwrap(), a_local);
        let _b = b_wr.reunite(b_rd).expect("same stream, other argument order");

        // Reuniting did not shut the write side down: the stream still writes.
        a.write_all(b"still open").await.unwrap();
        let mut buf = [0u8; 10];
        let mut got = 0;
        while got < 10 {
            got += a_peer.read(&mut buf[got..]).await.unwrap();
        }
        assert_eq!(&buf, b"still open");
    })
    .await
}

#[blitz_io::test]
async fn dropping_the_owned_write_half_sends_eof() {
    bounded(async {
        let (client, mut server) = pair().await;
        let (mut rd, mut wr) = client.into_split();
        wr.write_all(b"bye").await.unwrap();
        drop(wr);
        let mut all = Vec::new();
        let mut buf = [0u8; 8];
        loop {
            let n = server.read(&mut buf).await.unwrap();
            if n == 0 {
                break;
            }
            all.extend_from_slice(&buf[..n]);
        }
        assert_eq!(all, b"bye");
        // The read half still works.
        server.write_all(b"ok").await.unwrap();
        let mut buf = [0u8; 2];
        let mut got = 0;
        while got < 2 {
            got += rd.read(&mut buf[got..]).await.unwrap();
        }
        assert_eq!(&buf, b"ok");
    })
    .await
}

#[blitz_io::test]
async fn write_half_shutdown_sends_eof() {
    bounded(async {
        let (mut client, mut server) = pair().await;
        {
            let (_rd, mut wr): (ReadHalf<'_>, WriteHalf<'_>) = client.split();
            wr.write_all(b"x").await.unwrap();
            wr.shutdown().unwrap();
        }
        let mut buf = [0u8; 4];
        assert_eq!(server.read(&mut buf).await.unwrap(), 1);
        assert_eq!(server.read(&mut buf).await.unwrap(), 0);
        let (c2, mut s2) = pair().await;
        let (_rd, wr) = c2.into_split();
        wr.shutdown().unwrap();
        assert_eq!(s2.read(&mut buf).await.unwrap(), 0);
        let err = client.write_all(b"more").await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::BrokenPipe);
    })
    .await
}

#[blitz_io::test]
async fn every_half_method() {
    bounded(async {
        let (client, server) = pair().await;
        let (c_local, c_peer) = (client.local_addr().unwrap(), client.peer_addr().unwrap());
        let (mut rd, mut wr): (OwnedReadHalf, OwnedWriteHalf) = client.into_split();
        assert_eq!((rd.local_addr().unwrap(), rd.peer_addr().unwrap()), (c_local, c_peer));
        assert_eq!((wr.local_addr().unwrap(), wr.peer_addr().unwrap()), (c_local, c_peer));

        let mut buf = [0u8; 16];
        assert_eq!(rd.try_read(&mut buf).unwrap(), None);
        assert_eq!(rd.try_peek(&mut buf).unwrap(), None);
        wr.writable().await.unwrap();
        assert_eq!(wr.try_write(b"ab").unwrap(), Some(2));
        assert_eq!(wr.write(b"cd").await.unwrap(), 2);
        assert_eq!(poll_fn(|cx| wr.poll_write(cx, b"ef")).await.unwrap(), 2);

        let mut server = server;
        let mut got = Vec::new();
        while got.len() < 6 {
            let n = server.read(&mut buf).await.unwrap();
            got.extend_from_slice(&buf[..n]);
        }
        assert_eq!(got, b"abcdef");

        server.write_all(b"123456").await.unwrap();
        rd.readable().await.unwrap();
        loop {
            let n = rd.peek(&mut buf[..6]).await.unwrap();
            if n == 6 {
                break;
            }
            blitz_io::time::sleep(Duration::from_millis(1)).await;
        }
        assert_eq!(&buf[..6], b"123456");
        let mut two = [0u8; 2];
        assert_eq!(rd.try_read(&mut two).unwrap(), Some(2));
        assert_eq!(&two, b"12");
        assert_eq!(rd.read(&mut two).await.unwrap(), 2);
        assert_eq!(&two, b"34");
        assert_eq!(poll_fn(|cx| rd.poll_read(cx, &mut two)).await.unwrap(), 2);
        assert_eq!(&two, b"56");
    })
    .await
}

#[test]
fn owned_halves_are_send_and_static() {
    fn check<T: Send + Sync + 'static + std::fmt::Debug>() {}
    check::<OwnedReadHalf>();
    check::<OwnedWriteHalf>();
    fn borrowed<T: Send + std::fmt::Debug>() {}
    borrowed::<ReadHalf<'static>>();
    borrowed::<WriteHalf<'static>>();
    fn error<T: std::error::Error + Send + Sync + 'static>() {}
    error::<ReuniteError>();
}
