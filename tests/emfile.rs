//! Out of file descriptors: `accept` returns `EMFILE` promptly, a retry loop does not
//! spin the CPU (back-off), and accepting resumes once descriptors are free.
//!
//! Its own test binary: it lowers `RLIMIT_NOFILE` for the whole process.

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use blitz_io::net::{Address, TcpListener};
use blitz_io::time::timeout;

/// User + system CPU time of the whole process.
fn cpu_time() -> Duration {
    // SAFETY: `usage` is a valid, writable `rusage`; RUSAGE_SELF is always valid.
    let usage = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        assert_eq!(libc::getrusage(libc::RUSAGE_SELF, &mut usage), 0);
        usage
    };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(usage.ru_utime) + tv(usage.ru_stime)
}

fn nofile() -> libc::rlimit {
    let mut lim = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: `lim` is a valid, writable `rlimit`.
    assert_eq!(unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) }, 0);
    lim
}

fn set_nofile(lim: libc::rlimit) {
    // SAFETY: `lim` is a valid `rlimit`; lowering the soft limit is always allowed.
    assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lim) }, 0);
}

#[test]
fn accept_survives_running_out_of_descriptors() {
    let rt = blitz_io::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let original = nofile();
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| rt.block_on(body())));
    set_nofile(original);
    if let Err(p) = result {
        std::panic::resume_unwind(p);
    }
}

async fn body() {
    let listener = TcpListener::bind(Address::loopback_v4(0)).unwrap();
    let addr = listener.local_addr().unwrap().to_std();
    // Register the listener with the driver now (a first, cancelled accept).
    assert!(timeout(Duration::from_millis(5), listener.accept()).await.is_err());

    // Clients connect with blocking std sockets: the kernel completes the handshakes
    // and queues them on the listener, no accept needed.
    let mut clients: Vec<std::net::TcpStream> = (0..3).map(|_| std::net::TcpStream::connect(addr).unwrap()).collect();
    for (i, c) in clients.iter_mut().enumerate() {
        c.write_all(&[i as u8]).unwrap();
    }

    // Lower the limit a little above what is open, then use up every descriptor.
    let mut lim = nofile();
    let open = std::fs::read_dir("/proc/self/fd").map(|d| d.count() as u64).unwrap_or(64);
    lim.rlim_cur = (open + 32).min(lim.rlim_cur);
    set_nofile(lim);
    let mut hog = Vec::new();
    loop {
        match std::fs::File::open("/dev/null") {
            Ok(f) => hog.push(f),
            Err(e) => {
                assert_eq!(e.raw_os_error(), Some(libc::EMFILE), "{e:?}");
                break;
            }
        }
        assert!(hog.len() < 100_000, "never ran out of descriptors");
    }

    // accept reports the error promptly.
    let start = Instant::now();
    let err = timeout(Duration::from_secs(2), listener.accept()).await.expect("accept hung").unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::EMFILE), "{err:?}");
    assert!(start.elapsed() < Duration::from_millis(500));

    // A loop that keeps retrying costs little CPU: the listener backs off.
    let cpu0 = cpu_time();
    let wall0 = Instant::now();
    let mut attempts = 0;
    while wall0.elapsed() < Duration::from_millis(300) {
        let err = listener.accept().await.unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::EMFILE));
        attempts += 1;
    }
    let cpu = cpu_time() - cpu0;
    let wall = wall0.elapsed();
    assert!(attempts < 60, "{attempts} accept attempts in {wall:?}: no back-off");
    assert!(cpu < wall / 3, "retry loop used {cpu:?} of CPU in {wall:?}");

    // Free the descriptors: accepting resumes, and every queued connection arrives.
    drop(hog);
    let mut seen = Vec::new();
    for _ in 0..3 {
        let conn = timeout(Duration::from_secs(2), listener.accept()).await.expect("accept did not resume").unwrap();
        let mut s = conn.stream.into_std().unwrap();
        let mut id = [0u8; 1];
        s.read_exact(&mut id).unwrap();
        seen.push(id[0]);
    }
    seen.sort();
    assert_eq!(seen, vec![0, 1, 2]);
}
