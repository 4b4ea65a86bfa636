//! [`UCred`]: the credentials of the process at the other end of a Unix stream, and
//! `peer_cred`, which reads them from the kernel.
//!
//! `UnixStream::peer_cred` calls [`peer_cred`] on its descriptor. The kernel records the
//! peer's credentials when the connection is made (`connect` or `socketpair`), so they
//! describe the process that connected, not whoever holds the descriptor now, and they
//! cannot be forged by the peer. This makes them fit for access checks on a local
//! control socket.
//!
//! - Linux and Android: `getsockopt(SO_PEERCRED)`, which gives pid, uid and gid.
//! - macOS, iOS and the BSDs: `getpeereid`, which gives uid and gid; the pid is `None`.

use std::io;
use std::os::fd::BorrowedFd;

/// The credentials of a Unix socket's peer: user id, group id and (where the platform
/// reports it) process id.
///
/// Returned by `UnixStream::peer_cred`.
///
/// # Platform-specific behavior
///
/// The pid is known on Linux and Android (`SO_PEERCRED`) and is `None` on macOS and
/// the BSDs (`getpeereid`). The uid and gid are the effective ids of the peer when it
/// connected.
///
/// # Examples
///
/// ```
/// use blitz_io::net::UnixStream;
///
/// let (a, _b) = UnixStream::pair()?;
/// let cred = a.peer_cred()?;
/// // Both ends of a pair belong to this process.
/// if cfg!(target_os = "linux") {
///     assert_eq!(cred.pid(), Some(std::process::id() as i32));
/// }
/// println!("peer uid {} gid {}", cred.uid(), cred.gid());
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UCred {
    pid: Option<i32>,
    uid: u32,
    gid: u32,
}

impl UCred {
    /// The peer's process id, where the platform reports it (Linux and Android).
    ///
    /// A pid can be reused after the process exits; use it for logging, not as a
    /// lasting identity.
    ///
    /// # Examples
    ///
    /// ```
    /// use blitz_io::net::UnixStream;
    ///
    /// let (a, _b) = UnixStream::pair()?;
    /// if let Some(pid) = a.peer_cred()?.pid() {
    ///     assert_eq!(pid, std::process::id() as i32);
    /// }
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn pid(&self) -> Option<i32> {
        self.pid
    }

    /// The peer's effective user id when it connected.
    ///
    /// # Examples
    ///
    /// ```
    /// use blitz_io::net::UnixStream;
    ///
    /// let (a, _b) = UnixStream::pair()?;
    /// let is_root = a.peer_cred()?.uid() == 0;
    /// # let _ = is_root;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn uid(&self) -> u32 {
        self.uid
    }

    /// The peer's effective group id when it connected.
    ///
    /// # Examples
    ///
    /// ```
    /// use blitz_io::net::UnixStream;
    ///
    /// let (a, _b) = UnixStream::pair()?;
    /// println!("peer gid {}", a.peer_cred()?.gid());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn gid(&self) -> u32 {
        self.gid
    }
}

/// Reads the credentials of the peer of the connected Unix stream socket `fd`.
///
/// # Errors
///
/// The OS error: `ENOTCONN` (`NotConnected`) on a socket that is not connected (on
/// some platforms), `ENOTSOCK`/`EBADF`/`EINVAL` for a descriptor that is not a Unix
/// socket. `Unsupported` on platforms with neither `SO_PEERCRED` nor `getpeereid`.
#[cfg(any(target_os = "linux", target_os = "android"))]
pub(crate) fn peer_cred(fd: BorrowedFd<'_>) -> io::Result<UCred> {
    use crate::sys::syscall;
    use std::os::fd::AsRawFd;

    let mut cred = libc::ucred { pid: 0, uid: 0, gid: 0 };
    let mut len = std::mem::size_of::<libc::ucred>() as libc::socklen_t;
    // SAFETY: `fd` is a live descriptor for the duration of the call; `cred` and `len`
    // are valid for writes, and `len` holds the size of `cred`, so the kernel writes at
    // most that many bytes into it.
    syscall!(unsafe {
        libc::getsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_PEERCRED,
            (&mut cred as *mut libc::ucred).cast::<libc::c_void>(),
            &mut len,
        )
    })?;
    if len as usize != std::mem::size_of::<libc::ucred>() {
        return Err(io::Error::other(format!(
            "SO_PEERCRED returned {len} bytes, expected {}",
            std::mem::size_of::<libc::ucred>()
        )));
    }
    Ok(UCred { pid: Some(cred.pid), uid: cred.uid, gid: cred.gid })
}

/// Reads the credentials of the peer of the connected Unix stream socket `fd`.
///
/// # Errors
///
/// The OS error: `ENOTCONN` (`NotConnected`) on a socket that is not connected,
/// `ENOTSOCK`/`EBADF`/`EINVAL` for a descriptor that is not a Unix socket.
#[cfg(any(
    target_os = "macos",
    target_os = "ios",
    target_os = "tvos",
    target_os = "watchos",
    target_os = "visionos",
    target_os = "freebsd",
    target_os = "netbsd",
    target_os = "openbsd",
    target_os = "dragonfly",
))]
pub(crate) fn peer_cred(fd: BorrowedFd<'_>) -> io::Result<UCred> {
    use crate::sys::syscall;
    use std::os::fd::AsRawFd;

    let mut uid: libc::uid_t = 0;
    let mut gid: libc::gid_t = 0;
    // SAFETY: `fd` is a live descriptor for the duration of the call; `uid` and `gid`
    // are valid for writes of their types.
    syscall!(unsafe { libc::getpeereid(fd.as_raw_fd(), &mut uid, &mut gid) })?;
    Ok(UCred { pid: None, uid, gid })
}

/// Reads the credentials of the peer of a Unix stream socket; not available here.
///
/// # Errors
///
/// Always `Unsupported`: this platform has neither `SO_PEERCRED` nor `getpeereid`.
#[cfg(not(any(
    target_os = "linux",
    target_os = "android",
    target_os = "macos",
    target_os = "ios",
    target_os = "tvos",
    target_os = "watchos",
    target_os = "visionos",
    target_os = "freebsd",
    target_os = "netbsd",
    target_os = "openbsd",
    target_os = "dragonfly",
)))]
pub(crate) fn peer_cred(fd: BorrowedFd<'_>) -> io::Result<UCred> {
    let _ = fd;
    Err(io::Error::new(io::ErrorKind::Unsupported, "peer credentials are not available on this platform"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsFd;
    use std::os::unix::net::{UnixListener, UnixStream};

    fn ids() -> (u32, u32) {
        // SAFETY: getuid and getgid take no arguments, cannot fail and touch no memory.
        unsafe { (libc::getuid(), libc::getgid()) }
    }

    #[test]
    fn pair_reports_this_process() {
        let (a, b) = UnixStream::pair().unwrap();
        let (uid, gid) = ids();
        for s in [&a, &b] {
            let cred = peer_cred(s.as_fd()).unwrap();
            assert_eq!(cred.uid(), uid);
            assert_eq!(cred.gid(), gid);
            #[cfg(any(target_os = "linux", target_os = "android"))]
            assert_eq!(cred.pid(), Some(std::process::id() as i32));
            #[cfg(not(any(target_os = "linux", target_os = "android")))]
            assert_eq!(cred.pid(), None);
        }
    }

    #[test]
    fn connected_through_a_listener() {
        let dir = std::env::temp_dir().join(format!("bio-cred-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("c.sock");
        let listener = UnixListener::bind(&path).unwrap();
        let client = UnixStream::connect(&path).unwrap();
        let (server, _) = listener.accept().unwrap();
        let (uid, gid) = ids();
        let from_server = peer_cred(server.as_fd()).unwrap();
        let from_client = peer_cred(client.as_fd()).unwrap();
        assert_eq!((from_server.uid(), from_server.gid()), (uid, gid));
        assert_eq!(from_server, from_client);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn not_a_socket_is_an_error() {
        let file = std::fs::File::open("/dev/null").unwrap();
        assert!(peer_cred(file.as_fd()).is_err());
    }
}
