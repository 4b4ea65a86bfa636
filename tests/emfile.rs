//! Out of file descriptors: `accept` returns `EMFILE` promptly, a retry loop does not
//! spin the CPU (back-off), and accepting resumes once descriptors are free; for TCP and
//! Unix listeners, and outside a runtime, where the fallback driver cannot even start.
//!
//! Its own test binary, with one test running the scenarios in turn: it lowers
//! `RLIMIT_NOFILE` for the whole process.

use std::future::Future;
use std::io::{self, Read, Write};
use std::time::{Duration, Instant};

use blitz_io::net::{Address, TcpListener, UnixListener};
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

/// Lowers the soft limit a little above what is open, then opens `/dev/null` until
/// `EMFILE`; dropping the files frees the descriptors again.
fn exhaust() -> Vec<std::fs::File> {
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
                return hog;
            }
        }
        assert!(hog.len() < 100_000, "never ran out of descriptors");
    }
}

/// Retries `accept` for 300 ms while descriptors are exhausted: every attempt fails
/// with `EMFILE`, and the back-off keeps the attempts few and the CPU low.
async fn retry_loop_backs_off<T, F: Future<Output = io::Result<T>>>(mut accept: impl FnMut() -> F) {
    let cpu0 = cpu_time();
    let wall0 = Instant::now();
    let mut attempts = 0;
    while wall0.elapsed() < Duration::from_millis(300) {
        let Err(err) = accept().await else { panic!("accepted without descriptors") };
        assert_eq!(err.raw_os_error(), Some(libc::EMFILE), "{err:?}");
        attempts += 1;
    }
    let cpu = cpu_time() - cpu0;
    let wall = wall0.elapsed();
    assert!(attempts < 60, "{attempts} accept attempts in {wall:?}: no back-off");
    assert!(cpu < wall / 3, "retry loop used {cpu:?} of CPU in {wall:?}");
}

#[test]
fn accept_survives_running_out_of_descriptors() {
    let original = nofile();
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        // First, while the fallback driver has not started (it could not now).
        outside_a_runtime();
        set_nofile(original);
        let rt = blitz_io::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(tcp());
        set_nofile(original);
        rt.block_on(unix());
    }));
    set_nofile(original);
    if let Err(p) = result {
        std::panic::resume_unwind(p);
    }
}

/// Outside a runtime, with no descriptor left for the fallback driver's epoll: the
/// back-off cannot sleep on a timer. `accept` must still return the error (and back
/// off, blocking briefly) instead of panicking, and work once descriptors are free.
fn outside_a_runtime() {
    let listener = TcpListener::bind(Address::loopback_v4(0)).unwrap();
    let addr = listener.local_addr().unwrap().to_std();
    let _client = std::net::TcpStream::connect(addr).unwrap();
    let hog = exhaust();
    for _ in 0..3 {
        let err = futures_executor::block_on(listener.accept()).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::EMFILE), "{err:?}");
    }
    futures_executor::block_on(retry_loop_backs_off(|| listener.accept()));
    drop(hog);
    futures_executor::block_on(listener.accept()).expect("accept resumes");
}

/// The same for a Unix listener, inside a runtime.
async fn unix() {
    let dir = std::env::temp_dir().join(format!("blitz-emfile-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("s");
    let listener = UnixListener::bind(&path).unwrap();
    let _clients: Vec<_> = (0..2).map(|_| std::os::unix::net::UnixStream::connect(&path).unwrap()).collect();
    let hog = exhaust();
    let err = timeout(Duration::from_secs(2), listener.accept()).await.expect("accept hung").unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::EMFILE), "{err:?}");
    retry_loop_backs_off(|| listener.accept()).await;
    drop(hog);
    for _ in 0..2 {
        timeout(Duration::from_secs(2), listener.accept()).await.expect("accept did not resume").unwrap();
    }
    let _ = std::fs::remove_dir_all(&dir);
}

async fn tcp() {
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

    let hog = exhaust();

    // accept reports the error promptly.
    let start = Instant::now();
    let err = timeout(Duration::from_secs(2), listener.accept()).await.expect("accept hung").unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::EMFILE), "{err:?}");
    assert!(start.elapsed() < Duration::from_millis(500));

    // A loop that keeps retrying costs little CPU: the listener backs off.
    retry_loop_backs_off(|| listener.accept()).await;

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
