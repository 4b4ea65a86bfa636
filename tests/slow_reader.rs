//! Back-pressure: a server task `write_all`s 64 MiB to a peer that reads only 16 KiB
//! per millisecond (about 16 MB/s, so the transfer takes about 4 s).
//!
//! What must hold:
//! - the process's resident memory grows by less than 32 MiB during the transfer (the
//!   64 MiB source buffer is allocated and touched before the baseline is taken): a
//!   `write_all` that copied or queued data in user space beyond what the kernel takes
//!   would blow through that;
//! - every byte arrives, in order (each 8-byte word carries its own index);
//! - the waiting writer does not spin: the process's CPU time stays well below the
//!   wall-clock time of the transfer;
//! - the whole test finishes within 30 s.
//!
//! The peer is a plain blocking `std` socket on its own thread, paced against absolute
//! 1 ms deadlines, so the only asynchronous code under test is the server's write path.
//! 64 MiB is kept even in debug builds: the test spends its time sleeping in the paced
//! reader, not computing.

mod support;

use std::io::Read;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use blitz_io::net::{Address, TcpListener};
use blitz_io::runtime::Builder;
use support::{process_cpu_time, with_timeout};

const TOTAL: usize = 64 * 1024 * 1024;
const CHUNK: usize = 16 * 1024;
const TICK: Duration = Duration::from_millis(1);
const MAX_GROWTH_KIB: u64 = 32 * 1024;

fn vm_rss_kib() -> u64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = s.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    line["VmRSS:".len()..].trim().trim_end_matches("kB").trim().parse().unwrap()
}

/// The stream content: 8-byte little-endian words, word `k` holding `k ^ SALT`.
fn pattern(len: usize) -> Vec<u8> {
    const SALT: u64 = 0x5eed_0000_0000_0000;
    let mut v = Vec::with_capacity(len);
    for k in 0..(len / 8) as u64 {
        v.extend_from_slice(&(k ^ SALT).to_le_bytes());
    }
    v
}

#[test]
fn slow_reader_bounded_memory_and_ordered_bytes() {
    with_timeout(30, || {
        let data = Arc::new(pattern(TOTAL));
        let rt = Builder::new_multi_thread().worker_threads(2).thread_name("slowrd").build().unwrap();
        let listener = TcpListener::bind(Address::loopback_v4(0)).unwrap();
        let addr = listener.local_addr().unwrap().to_std();

        // Memory sampler: highest VmRSS seen while the transfer runs.
        let stop = Arc::new(AtomicBool::new(false));
        let peak = Arc::new(AtomicU64::new(0));
        let base = vm_rss_kib();
        let sampler = {
            let (stop, peak) = (stop.clone(), peak.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::SeqCst) {
                    peak.fetch_max(vm_rss_kib(), Ordering::SeqCst);
                    std::thread::sleep(Duration::from_millis(5));
                }
            })
        };

        // The slow peer: read at most CHUNK bytes per TICK, compare with the pattern.
        let expected = data.clone();
        let reader = std::thread::spawn(move || {
            let mut s = std::net::TcpStream::connect(addr).unwrap();
            let mut buf = vec![0u8; CHUNK];
            let mut at = 0usize;
            let start = Instant::now();
            loop {
                let want = CHUNK.min(TOTAL + 1 - at); // one extra byte to see EOF
                let n = s.read(&mut buf[..want]).unwrap();
                if n == 0 {
                    break;
                }
                assert!(at + n <= TOTAL, "peer got more than {TOTAL} bytes");
                if buf[..n] != expected[at..at + n] {
                    let i = (0..n).find(|&i| buf[i] != expected[at + i]).unwrap();
                    panic!("byte {} differs: got {:#04x}, want {:#04x}", at + i, buf[i], expected[at + i]);
                }
                at += n;
                // Pace by bytes: byte `at` may be read no earlier than `at / CHUNK` ticks
                // after the start (absolute deadlines: no drift, no catch-up bursts).
                let due = start + TICK * (at / CHUNK) as u32;
                if let Some(d) = due.checked_duration_since(Instant::now()) {
                    std::thread::sleep(d);
                }
            }
            at
        });

        let cpu_before = process_cpu_time();
        let started = Instant::now();
        let written = rt.block_on(async move {
            let mut conn = listener.accept().await.unwrap().stream;
            conn.write_all(&data).await.unwrap();
            drop(conn); // EOF for the peer
            data.len()
        });
        let received = reader.join().unwrap();
        let elapsed = started.elapsed();
        let cpu = process_cpu_time() - cpu_before;
        stop.store(true, Ordering::SeqCst);
        sampler.join().unwrap();
        drop(rt);

        let peak = peak.load(Ordering::SeqCst);
        let growth = peak.saturating_sub(base);
        println!(
            "slow_reader: {received} bytes verified in {:.2} s ({:.1} MB/s); RSS base {base} KiB, peak {peak} KiB, \
             growth {growth} KiB; CPU {:.2} s",
            elapsed.as_secs_f64(),
            received as f64 / elapsed.as_secs_f64() / 1e6,
            cpu.as_secs_f64()
        );
        assert_eq!(written, TOTAL);
        assert_eq!(received, TOTAL, "bytes received");
        assert!(growth < MAX_GROWTH_KIB, "RSS grew by {growth} KiB during the transfer (limit {MAX_GROWTH_KIB} KiB)");
        // The reader was paced, so the transfer cannot have been fast; a writer that
        // spins while the socket is full would burn a whole core for the duration.
        assert!(elapsed >= Duration::from_secs(2), "transfer too fast for a paced reader: {elapsed:?}");
        assert!(
            cpu < elapsed / 2,
            "process used {cpu:?} of CPU during a {elapsed:?} transfer: the waiting writer spins"
        );
    });
}
