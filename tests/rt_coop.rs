//! The cooperative budget: a task reading from a socket that is always ready must not
//! starve other tasks (or timers) on its thread.
//!
//! A peer thread keeps the socket's buffer full with blocking writes; the reader task
//! reads 16 bytes at a time in a loop, so every `read().await` finds data at once and
//! never has to wait for the socket. Only the budget makes it yield. A second task sets
//! a flag after `sleep(10ms)`; it must get to run within a second.

mod support;

use std::io::Write;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use blitz_io::runtime::Runtime;
use blitz_io::task;
use blitz_io::time::sleep;
use support::{build_runtime, read_full, unique_name, with_timeout, Flavor};

fn build(flavor: Flavor) -> Runtime {
    build_runtime(flavor, &unique_name("coop"))
}

/// Starts a thread that keeps writing into `w` until `stop` is set; returns its handle.
fn flood<W: Write + Send + 'static>(mut w: W, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<u64> {
    std::thread::spawn(move || {
        let chunk = [0xA5u8; 64 * 1024];
        let mut sent = 0u64;
        while !stop.load(Ordering::SeqCst) {
            match w.write(&chunk) {
                Ok(n) => sent += n as u64,
                Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {}
                Err(_) => break,
            }
        }
        sent
    })
}

/// Something the reader task can `read().await` from.
trait AsyncReader: Send + 'static {
    fn read<'a>(
        &'a mut self,
        buf: &'a mut [u8],
    ) -> impl std::future::Future<Output = std::io::Result<usize>> + Send + 'a;
}

impl AsyncReader for blitz_io::net::UnixStream {
    fn read<'a>(
        &'a mut self,
        buf: &'a mut [u8],
    ) -> impl std::future::Future<Output = std::io::Result<usize>> + Send + 'a {
        blitz_io::net::UnixStream::read(self, buf)
    }
}

impl AsyncReader for blitz_io::net::TcpStream {
    fn read<'a>(
        &'a mut self,
        buf: &'a mut [u8],
    ) -> impl std::future::Future<Output = std::io::Result<usize>> + Send + 'a {
        blitz_io::net::TcpStream::read(self, buf)
    }
}

/// The reader task: reads until `stop`, checking every byte is the flood pattern.
async fn read_until_stopped<R: AsyncReader>(mut r: R, stop: Arc<AtomicBool>, total: Arc<AtomicU64>) {
    let mut buf = [0u8; 16];
    let give_up = Instant::now() + Duration::from_secs(3);
    while !stop.load(Ordering::SeqCst) && Instant::now() < give_up {
        let n = r.read(&mut buf).await.unwrap();
        assert!(n > 0, "the flood never ends");
        assert!(buf[..n].iter().all(|&b| b == 0xA5));
        total.fetch_add(n as u64, Ordering::Relaxed);
    }
}

/// Runs the scenario with the reader as a spawned task.
fn no_starvation<R: AsyncReader>(flavor: Flavor, reader: R, writer: impl Write + Send + 'static) {
    let rt = build(flavor);
    let stop = Arc::new(AtomicBool::new(false));
    let flooder = flood(writer, stop.clone());
    std::thread::sleep(Duration::from_millis(20)); // let the socket buffer fill up
    let total = Arc::new(AtomicU64::new(0));
    let waited = rt.block_on(async {
        let reader_task = task::spawn(read_until_stopped(reader, stop.clone(), total.clone()));
        // Give the reader a head start so it is already spinning.
        let t0 = Instant::now();
        let fired = Arc::new(AtomicBool::new(false));
        let f2 = fired.clone();
        let sleeper = task::spawn(async move {
            sleep(Duration::from_millis(10)).await;
            f2.store(true, Ordering::SeqCst);
            Instant::now()
        });
        let at = sleeper.await.unwrap();
        stop.store(true, Ordering::SeqCst);
        reader_task.await.unwrap();
        at - t0
    });
    stop.store(true, Ordering::SeqCst);
    drop(rt); // closes the reader: the flooder's write fails and it exits
    let _ = flooder.join();
    let read = total.load(Ordering::Relaxed);
    println!("{flavor:?}: sleeper ran after {waited:?}; reader read {read} bytes meanwhile");
    assert!(waited >= Duration::from_millis(10));
    assert!(waited < Duration::from_secs(1), "{flavor:?}: the sleeping task was starved for {waited:?}");
    assert!(read > 16 * 128, "{flavor:?}: the reader barely read ({read} bytes): the test proves nothing");
}

fn unix_pair() -> (blitz_io::net::UnixStream, std::os::unix::net::UnixStream) {
    let (a, b) = std::os::unix::net::UnixStream::pair().unwrap();
    b.set_write_timeout(Some(Duration::from_millis(50))).unwrap();
    (blitz_io::net::UnixStream::from_std(a).unwrap(), b)
}

fn tcp_pair() -> (blitz_io::net::TcpStream, std::net::TcpStream) {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let w = std::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
    let (r, _) = l.accept().unwrap();
    w.set_write_timeout(Some(Duration::from_millis(50))).unwrap();
    (blitz_io::net::TcpStream::from_std(r).unwrap(), w)
}

#[test]
fn always_ready_unix_reader_does_not_starve_current_thread() {
    with_timeout(20, || {
        let (r, w) = unix_pair();
        no_starvation(Flavor::Current, r, w);
    });
}

#[test]
fn always_ready_unix_reader_does_not_starve_one_worker() {
    with_timeout(20, || {
        let (r, w) = unix_pair();
        no_starvation(Flavor::Multi(1), r, w);
    });
}

#[test]
fn always_ready_tcp_reader_does_not_starve_current_thread() {
    with_timeout(20, || {
        let (r, w) = tcp_pair();
        no_starvation(Flavor::Current, r, w);
    });
}

#[test]
fn always_ready_tcp_reader_does_not_starve_one_worker() {
    with_timeout(20, || {
        let (r, w) = tcp_pair();
        no_starvation(Flavor::Multi(1), r, w);
    });
}

/// Two always-ready readers on one thread both make progress (the budget alternates
/// them instead of letting the first one run forever).
#[test]
fn two_always_ready_readers_share_the_thread() {
    with_timeout(20, || {
        let rt = build(Flavor::Current);
        let stop = Arc::new(AtomicBool::new(false));
        let (r1, w1) = unix_pair();
        let (r2, w2) = unix_pair();
        let f1 = flood(w1, stop.clone());
        let f2 = flood(w2, stop.clone());
        std::thread::sleep(Duration::from_millis(20));
        let (t1, t2) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
        rt.block_on(async {
            let a = task::spawn(read_until_stopped(r1, stop.clone(), t1.clone()));
            let b = task::spawn(read_until_stopped(r2, stop.clone(), t2.clone()));
            sleep(Duration::from_millis(100)).await;
            stop.store(true, Ordering::SeqCst);
            a.await.unwrap();
            b.await.unwrap();
        });
        drop(rt);
        let _ = (f1.join(), f2.join());
        let (a, b) = (t1.load(Ordering::Relaxed), t2.load(Ordering::Relaxed));
        println!("two readers: {a} and {b} bytes");
        assert!(a > 16 * 128 && b > 16 * 128, "one reader starved the other: {a} vs {b} bytes");
    });
}

/// The reader is `block_on`'s own future on a current-thread runtime: when its budget
/// runs out it must let the spawned tasks and the timers run too.
#[test]
fn always_ready_reader_in_block_on_does_not_starve_tasks() {
    with_timeout(20, || {
        let rt = build(Flavor::Current);
        let stop = Arc::new(AtomicBool::new(false));
        let (r, w) = unix_pair();
        let flooder = flood(w, stop.clone());
        std::thread::sleep(Duration::from_millis(20));
        let total = Arc::new(AtomicU64::new(0));
        let fired_at = Arc::new(std::sync::Mutex::new(None));
        let t0 = Instant::now();
        rt.block_on(async {
            let fa = fired_at.clone();
            let s2 = stop.clone();
            let _sleeper = task::spawn(async move {
                sleep(Duration::from_millis(10)).await;
                *fa.lock().unwrap() = Some(Instant::now());
                s2.store(true, Ordering::SeqCst);
            });
            // Reads until the sleeper stops it (or 3 s pass).
            read_until_stopped(r, stop.clone(), total.clone()).await;
        });
        stop.store(true, Ordering::SeqCst);
        drop(rt);
        let _ = flooder.join();
        let fired = fired_at.lock().unwrap().map(|t| t - t0);
        assert!(
            fired.is_some_and(|d| d < Duration::from_secs(1)),
            "spawned sleeper starved by block_on's reader: fired after {fired:?} (reader read {} bytes)",
            total.load(Ordering::Relaxed)
        );
    });
}

/// A worker whose queue never runs dry (hundreds of tasks that keep yielding) still
/// turns the I/O driver: it may skip event turns while its queue is long, but only a
/// few in a row. A timer and a TCP echo, awaited from spawned tasks on the same single
/// worker, must complete.
#[test]
fn a_queue_that_never_drains_does_not_starve_io_or_timers() {
    with_timeout(20, || {
        let rt = build(Flavor::Multi(1));
        let stop = Arc::new(AtomicBool::new(false));
        let yields = Arc::new(AtomicU64::new(0));
        let (took, echoed) = rt.block_on(async {
            let mut spinners = Vec::new();
            for _ in 0..300 {
                let (stop, yields) = (stop.clone(), yields.clone());
                spinners.push(task::spawn(async move {
                    while !stop.load(Ordering::Relaxed) {
                        yields.fetch_add(1, Ordering::Relaxed);
                        task::yield_now().await;
                    }
                }));
            }
            let t0 = Instant::now();
            let listener = blitz_io::net::TcpListener::bind(([127, 0, 0, 1], 0)).unwrap();
            let addr = listener.local_addr().unwrap();
            let work = task::spawn(async move {
                sleep(Duration::from_millis(10)).await;
                let server = task::spawn(async move {
                    let mut s = listener.accept().await.unwrap().stream;
                    let mut b = [0u8; 4];
                    read_full(&mut s, &mut b).await;
                    s.write_all(&b).await.unwrap();
                });
                let mut c = blitz_io::net::TcpStream::connect(addr).await.unwrap();
                c.write_all(b"ping").await.unwrap();
                let mut b = [0u8; 4];
                read_full(&mut c, &mut b).await;
                server.await.unwrap();
                b
            });
            let echoed = work.await.unwrap();
            let took = t0.elapsed();
            stop.store(true, Ordering::Relaxed);
            for s in spinners {
                s.await.unwrap();
            }
            (took, echoed)
        });
        let spun = yields.load(Ordering::Relaxed);
        println!("timer + echo beside 300 yielding tasks: {took:?}; {spun} yields meanwhile");
        assert_eq!(&echoed, b"ping");
        assert!(took < Duration::from_secs(2), "I/O and timers waited {took:?} behind a queue that never drained");
        assert!(spun > 300 * 10, "the yielding tasks barely ran ({spun} yields): the test proves nothing");
    });
}

/// The budget belongs to the runtime's tasks: after a `block_on` returns, futures that a
/// foreign executor polls on the same thread (through the fallback driver) are not
/// limited. Before the fix the last task's remainder stayed behind, and after 64 UDP
/// exchanges every poll woke itself and returned `Pending`: a 100% CPU spin.
#[test]
fn budget_does_not_leak_out_of_block_on() {
    for flavor in [Flavor::Current, Flavor::Multi(1)] {
        with_timeout(20, move || {
            let rt = build(flavor);
            rt.block_on(async {
                // Spend some of a task's budget on this thread.
                let (a, b) = blitz_io::net::UnixStream::pair().unwrap();
                let (mut a, mut b) = (a, b);
                for _ in 0..10 {
                    a.write_all(b"x").await.unwrap();
                    let mut byte = [0u8; 1];
                    b.read(&mut byte).await.unwrap();
                }
            });
            drop(rt);
            let a = blitz_io::net::UdpSocket::bind(blitz_io::net::Address::loopback_v4(0)).unwrap();
            let b = blitz_io::net::UdpSocket::bind(blitz_io::net::Address::loopback_v4(0)).unwrap();
            let to = b.local_addr().unwrap();
            let mut buf = [0u8; 8];
            for _ in 0..1000 {
                futures_executor::block_on(a.send_to(b"x", to)).unwrap();
                futures_executor::block_on(b.recv_from(&mut buf)).unwrap();
            }
        });
    }
}
