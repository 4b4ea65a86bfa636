//! [`UnixAddr`]: the address of a Unix domain socket, one of a filesystem path, a Linux
//! abstract name, or unnamed.
//!
//! `UnixListener::local_addr`, `UnixStream::peer_addr`, accepted peers and
//! `UnixDatagram::recv_from` all report a `UnixAddr`; `UnixDatagram::send_to` takes one.
//! The checks that matter are made when one is built ([`UnixAddr::from_path`],
//! [`UnixAddr::from_abstract_name`]), so a path that cannot fit in `sockaddr_un` is an
//! `InvalidInput` error naming the limit, never a silently cut path.
//!
//! Crate-internal conversions to and from `socket2::SockAddr` are how the socket types
//! hand the address to the kernel and read it back.

use std::ffi::OsStr;
use std::fmt;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use socket2::SockAddr;

use crate::error::invalid_input;

/// The address of a Unix domain socket.
///
/// One of three kinds:
///
/// - a **pathname**: a socket file in the filesystem, such as `/run/app.sock`;
/// - an **abstract name** (Linux and Android only): a name in a per-network-namespace
///   table, with no file behind it, that vanishes when the last socket bound to it
///   closes;
/// - **unnamed**: a socket that was never bound, such as either end of
///   `UnixStream::pair()` or a client that connected without binding.
///
/// # Examples
///
/// ```
/// use blitz_io::net::UnixAddr;
/// use std::path::Path;
///
/// let addr = UnixAddr::from_path("/tmp/app.sock")?;
/// assert_eq!(addr.as_pathname(), Some(Path::new("/tmp/app.sock")));
/// assert!(!addr.is_unnamed());
/// assert_eq!(addr.to_string(), "/tmp/app.sock");
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct UnixAddr {
    kind: Kind,
}

/// What a [`UnixAddr`] holds.
///
/// # Invariant
///
/// A `Pathname` is non-empty, has no NUL byte, and fits in `sun_path` with its
/// terminating NUL. An `Abstract` name fits in `sun_path` after its leading NUL. Both
/// hold for every value, whichever constructor made it.
#[derive(Clone, PartialEq, Eq, Hash)]
enum Kind {
    Pathname(PathBuf),
    Abstract(Vec<u8>),
    Unnamed,
}

/// The size of `sockaddr_un::sun_path` on this platform: 108 on Linux, 104 on macOS and
/// the BSDs.
fn sun_path_len() -> usize {
    // Reads the array length out of the field's type; no `sockaddr_un` is built.
    fn array_len<T, const N: usize>(_: fn(&libc::sockaddr_un) -> &[T; N]) -> usize {
        N
    }
    array_len(|addr| &addr.sun_path)
}

impl UnixAddr {
    /// A pathname address: the socket file at `path`.
    ///
    /// Nothing is created or checked on disk; this only validates the path's form. A
    /// relative path is resolved against the current directory when the address is used.
    ///
    /// # Errors
    ///
    /// [`InvalidInput`](io::ErrorKind::InvalidInput) if `path` is empty, contains a NUL
    /// byte, or is too long: it must fit in `sockaddr_un::sun_path` together with a
    /// terminating NUL, so at most 107 bytes on Linux and 103 on macOS and the BSDs.
    /// (A common way around the limit: `chdir` near the socket and use a relative path.)
    ///
    /// # Examples
    ///
    /// ```
    /// use blitz_io::net::UnixAddr;
    /// use std::io::ErrorKind;
    ///
    /// assert!(UnixAddr::from_path("app.sock").is_ok());
    ///
    /// let too_long = format!("/tmp/{}", "x".repeat(200));
    /// let err = UnixAddr::from_path(too_long).unwrap_err();
    /// assert_eq!(err.kind(), ErrorKind::InvalidInput);
    /// ```
    pub fn from_path(path: impl AsRef<Path>) -> io::Result<UnixAddr> {
        let path = path.as_ref();
        let bytes = path.as_os_str().as_bytes();
        if bytes.is_empty() {
            return Err(invalid_input("empty Unix socket path: give a file path such as \"/tmp/app.sock\""));
        }
        if let Some(at) = bytes.iter().position(|&b| b == 0) {
            return Err(invalid_input(format!("Unix socket path {path:?} contains a NUL byte at byte {at}")));
        }
        let max = sun_path_len() - 1;
        if bytes.len() > max {
            return Err(invalid_input(format!(
                "Unix socket path {path:?} is {} bytes long, but at most {max} bytes fit in \
                 sockaddr_un on this platform; use a shorter (for example relative) path",
                bytes.len()
            )));
        }
        Ok(UnixAddr { kind: Kind::Pathname(path.to_path_buf()) })
    }

    /// An address in the Linux abstract namespace, named by `name`.
    ///
    /// The name is arbitrary bytes (NUL bytes included) and is matched exactly, length
    /// included. No file is created; the name is freed when the last socket bound to it
    /// closes. It is shown as `@name` by [`Display`](fmt::Display).
    ///
    /// # Errors
    ///
    /// - [`InvalidInput`](io::ErrorKind::InvalidInput) if `name` is longer than
    ///   `sun_path` minus the leading NUL (107 bytes on Linux).
    /// - [`Unsupported`](io::ErrorKind::Unsupported) on platforms other than Linux and
    ///   Android, which have no abstract namespace.
    ///
    /// # Platform-specific behavior
    ///
    /// Linux and Android only.
    ///
    /// # Examples
    ///
    /// ```
    /// use blitz_io::net::UnixAddr;
    ///
    /// match UnixAddr::from_abstract_name(b"blitz-io-example") {
    ///     Ok(addr) => {
    ///         assert_eq!(addr.as_abstract_name(), Some(&b"blitz-io-example"[..]));
    ///         assert_eq!(addr.to_string(), "@blitz-io-example");
    ///     }
    ///     Err(e) => assert_eq!(e.kind(), std::io::ErrorKind::Unsupported),
    /// }
    /// ```
    pub fn from_abstract_name(name: &[u8]) -> io::Result<UnixAddr> {
        #[cfg(any(target_os = "linux", target_os = "android"))]
        {
            let max = sun_path_len() - 1;
            if name.len() > max {
                return Err(invalid_input(format!(
                    "abstract Unix socket name is {} bytes long, but at most {max} bytes fit \
                     in sockaddr_un after the leading NUL",
                    name.len()
                )));
            }
            Ok(UnixAddr { kind: Kind::Abstract(name.to_vec()) })
        }
        #[cfg(not(any(target_os = "linux", target_os = "android")))]
        {
            let _ = name;
            Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "abstract Unix socket names exist only on Linux and Android",
            ))
        }
    }

    /// The unnamed address: that of a socket that was never bound.
    pub(crate) fn unnamed() -> UnixAddr {
        UnixAddr { kind: Kind::Unnamed }
    }

    /// The socket file's path, if this is a pathname address.
    ///
    /// # Examples
    ///
    /// ```
    /// use blitz_io::net::UnixAddr;
    /// use std::path::Path;
    ///
    /// let addr = UnixAddr::from_path("/run/x.sock")?;
    /// assert_eq!(addr.as_pathname(), Some(Path::new("/run/x.sock")));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn as_pathname(&self) -> Option<&Path> {
        match &self.kind {
            Kind::Pathname(path) => Some(path),
            _ => None,
        }
    }

    /// The name, without the leading NUL, if this is an abstract address (Linux and
    /// Android only; always `None` elsewhere).
    ///
    /// # Examples
    ///
    /// ```
    /// use blitz_io::net::UnixAddr;
    ///
    /// assert_eq!(UnixAddr::from_path("/run/x.sock")?.as_abstract_name(), None);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn as_abstract_name(&self) -> Option<&[u8]> {
        match &self.kind {
            Kind::Abstract(name) => Some(name),
            _ => None,
        }
    }

    /// Whether this is the address of a socket that was never bound, such as either end
    /// of `UnixStream::pair()`.
    ///
    /// # Examples
    ///
    /// ```
    /// use blitz_io::net::UnixAddr;
    ///
    /// assert!(!UnixAddr::from_path("/run/x.sock")?.is_unnamed());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn is_unnamed(&self) -> bool {
        matches!(self.kind, Kind::Unnamed)
    }

    /// The address as a [`std::os::unix::net::SocketAddr`].
    ///
    /// # Errors
    ///
    /// [`InvalidInput`](io::ErrorKind::InvalidInput) for an unnamed address, which std
    /// cannot build.
    ///
    /// # Examples
    ///
    /// ```
    /// use blitz_io::net::UnixAddr;
    /// use std::path::Path;
    ///
    /// let std_addr = UnixAddr::from_path("/run/x.sock")?.to_std()?;
    /// assert_eq!(std_addr.as_pathname(), Some(Path::new("/run/x.sock")));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn to_std(&self) -> io::Result<std::os::unix::net::SocketAddr> {
        match &self.kind {
            Kind::Pathname(path) => std::os::unix::net::SocketAddr::from_pathname(path),
            #[cfg(target_os = "linux")]
            Kind::Abstract(name) => {
                use std::os::linux::net::SocketAddrExt;
                std::os::unix::net::SocketAddr::from_abstract_name(name)
            }
            #[cfg(target_os = "android")]
            Kind::Abstract(name) => {
                use std::os::android::net::SocketAddrExt;
                std::os::unix::net::SocketAddr::from_abstract_name(name)
            }
            #[cfg(not(any(target_os = "linux", target_os = "android")))]
            Kind::Abstract(_) => Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "abstract Unix socket names exist only on Linux and Android",
            )),
            Kind::Unnamed => {
                Err(invalid_input("an unnamed Unix socket address has no std::os::unix::net::SocketAddr form"))
            }
        }
    }

    /// The address in the form socket calls take.
    ///
    /// # Errors
    ///
    /// `InvalidInput` for an unnamed address: it cannot be bound, connected to or sent to.
    pub(crate) fn to_sockaddr(&self) -> io::Result<SockAddr> {
        match &self.kind {
            Kind::Pathname(path) => SockAddr::unix(path),
            Kind::Abstract(name) => {
                // socket2 treats a path whose first byte is NUL as an abstract name and
                // takes the rest, length exact, as the name.
                let mut bytes = Vec::with_capacity(name.len() + 1);
                bytes.push(0);
                bytes.extend_from_slice(name);
                SockAddr::unix(OsStr::from_bytes(&bytes))
            }
            Kind::Unnamed => {
                Err(invalid_input("an unnamed Unix socket address cannot be bound, connected to or sent to"))
            }
        }
    }

    /// Reads an address the kernel returned (`getsockname`, `getpeername`, `accept`,
    /// `recvfrom`).
    ///
    /// An empty or non-`AF_UNIX` address reads as unnamed: Linux reports the sender of a
    /// datagram from an unbound socket as a zero-length address.
    pub(crate) fn from_sockaddr(addr: &SockAddr) -> UnixAddr {
        if let Some(name) = addr.as_abstract_namespace() {
            return UnixAddr { kind: Kind::Abstract(name.to_vec()) };
        }
        if let Some(path) = addr.as_pathname() {
            // Some kernels report the whole of `sun_path`, padding included: the path
            // ends at the first NUL.
            let bytes = path.as_os_str().as_bytes();
            let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
            if end > 0 {
                return UnixAddr { kind: Kind::Pathname(PathBuf::from(OsStr::from_bytes(&bytes[..end]))) };
            }
        }
        UnixAddr::unnamed()
    }
}

impl From<&std::os::unix::net::SocketAddr> for UnixAddr {
    fn from(addr: &std::os::unix::net::SocketAddr) -> UnixAddr {
        if let Some(path) = addr.as_pathname() {
            return UnixAddr { kind: Kind::Pathname(path.to_path_buf()) };
        }
        #[cfg(any(target_os = "linux", target_os = "android"))]
        {
            #[cfg(target_os = "android")]
            use std::os::android::net::SocketAddrExt;
            #[cfg(target_os = "linux")]
            use std::os::linux::net::SocketAddrExt;
            if let Some(name) = addr.as_abstract_name() {
                return UnixAddr { kind: Kind::Abstract(name.to_vec()) };
            }
        }
        UnixAddr::unnamed()
    }
}

impl From<std::os::unix::net::SocketAddr> for UnixAddr {
    fn from(addr: std::os::unix::net::SocketAddr) -> UnixAddr {
        UnixAddr::from(&addr)
    }
}

impl fmt::Display for UnixAddr {
    /// Writes the path, `@name` for an abstract name (bytes outside printable ASCII as
    /// `\xNN`), or `(unnamed)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            Kind::Pathname(path) => write!(f, "{}", path.display()),
            Kind::Abstract(name) => {
                f.write_str("@")?;
                for &b in name {
                    if b.is_ascii_graphic() || b == b' ' {
                        write!(f, "{}", char::from(b))?;
                    } else {
                        write!(f, "\\x{b:02x}")?;
                    }
                }
                Ok(())
            }
            Kind::Unnamed => f.write_str("(unnamed)"),
        }
    }
}

impl fmt::Debug for UnixAddr {
    /// Like std's: `"/tmp/a.sock" (pathname)`, `"name" (abstract)`, `(unnamed)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            Kind::Pathname(path) => write!(f, "{path:?} (pathname)"),
            Kind::Abstract(name) => {
                write!(f, "\"{}\" (abstract)", name.escape_ascii())
            }
            Kind::Unnamed => f.write_str("(unnamed)"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use socket2::{Domain, Socket, Type};

    /// A fresh directory for socket files, removed on drop.
    struct TempDir(PathBuf);

    impl TempDir {
        fn new(tag: &str) -> TempDir {
            let dir = std::env::temp_dir().join(format!(
                "bio-ua-{tag}-{}-{:?}",
                std::process::id(),
                std::thread::current().id()
            ));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).unwrap();
            TempDir(dir)
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    #[test]
    fn sun_path_len_matches_platform() {
        #[cfg(any(target_os = "linux", target_os = "android"))]
        assert_eq!(sun_path_len(), 108);
        #[cfg(any(target_os = "macos", target_os = "ios", target_os = "freebsd"))]
        assert_eq!(sun_path_len(), 104);
    }

    #[test]
    fn path_length_boundary() {
        let max = sun_path_len() - 1;
        let fits = "p".repeat(max);
        let addr = UnixAddr::from_path(&fits).unwrap();
        let sa = addr.to_sockaddr().unwrap();
        assert_eq!(sa.as_pathname(), Some(Path::new(&fits)));
        assert_eq!(UnixAddr::from_sockaddr(&sa), addr);

        let over = "p".repeat(max + 1);
        let err = UnixAddr::from_path(&over).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
        let msg = err.to_string();
        assert!(msg.contains(&format!("at most {max} bytes")), "{msg}");
        assert!(msg.contains(&format!("{} bytes long", max + 1)), "{msg}");
    }

    #[test]
    fn longest_path_binds() {
        // Build an absolute path of exactly the maximum length inside a temp dir.
        let dir = TempDir::new("long");
        let base = dir.0.as_os_str().len() + 1;
        let max = sun_path_len() - 1;
        if base + 1 > max {
            return; // The temp dir itself is too deep to test this here.
        }
        let path = dir.0.join("s".repeat(max - base));
        assert_eq!(path.as_os_str().len(), max);
        let addr = UnixAddr::from_path(&path).unwrap();
        let sock = Socket::new(Domain::UNIX, Type::STREAM, None).unwrap();
        sock.bind(&addr.to_sockaddr().unwrap()).unwrap();
        let local = UnixAddr::from_sockaddr(&sock.local_addr().unwrap());
        assert_eq!(local, addr);
    }

    #[test]
    fn nul_and_empty_paths_are_rejected() {
        let err = UnixAddr::from_path("/tmp/a\0b").unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
        assert!(err.to_string().contains("NUL byte at byte 6"), "{err}");

        let err = UnixAddr::from_path("").unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
        assert!(err.to_string().contains("empty"), "{err}");
    }

    #[test]
    fn pathname_round_trip_through_bind() {
        let dir = TempDir::new("path");
        let path = dir.0.join("a.sock");
        let addr = UnixAddr::from_path(&path).unwrap();
        let sock = Socket::new(Domain::UNIX, Type::STREAM, None).unwrap();
        sock.bind(&addr.to_sockaddr().unwrap()).unwrap();
        let local = UnixAddr::from_sockaddr(&sock.local_addr().unwrap());
        assert_eq!(local.as_pathname(), Some(path.as_path()));
        assert_eq!(local, addr);
        assert_eq!(local.to_string(), path.display().to_string());
        assert_eq!(UnixAddr::from(local.to_std().unwrap()), addr);
    }

    #[test]
    fn unnamed_from_an_unbound_socket() {
        let sock = Socket::new(Domain::UNIX, Type::STREAM, None).unwrap();
        let local = UnixAddr::from_sockaddr(&sock.local_addr().unwrap());
        assert!(local.is_unnamed());
        assert_eq!(local, UnixAddr::unnamed());
        assert_eq!(local.to_string(), "(unnamed)");
        assert_eq!(local.as_pathname(), None);
        assert_eq!(local.as_abstract_name(), None);
        assert_eq!(local.to_sockaddr().unwrap_err().kind(), io::ErrorKind::InvalidInput);
        assert_eq!(local.to_std().unwrap_err().kind(), io::ErrorKind::InvalidInput);

        let (a, _b) = std::os::unix::net::UnixStream::pair().unwrap();
        assert!(UnixAddr::from(a.local_addr().unwrap()).is_unnamed());
        assert!(UnixAddr::from(&a.peer_addr().unwrap()).is_unnamed());
    }

    #[test]
    fn unbound_datagram_sender_reads_as_unnamed() {
        let (a, b) = std::os::unix::net::UnixDatagram::pair().unwrap();
        b.set_nonblocking(true).unwrap();
        a.send(b"x").unwrap();
        let mut buf = [0u8; 4];
        let (_, from, _) = crate::sys::recv_from(std::os::fd::AsFd::as_fd(&b), &mut buf, false).unwrap();
        assert!(UnixAddr::from_sockaddr(&from).is_unnamed());
    }

    #[cfg(any(target_os = "linux", target_os = "android"))]
    #[test]
    fn abstract_round_trip_through_bind() {
        let name = format!("blitz-io-test-{}", std::process::id()).into_bytes();
        let addr = UnixAddr::from_abstract_name(&name).unwrap();
        assert_eq!(addr.as_abstract_name(), Some(&name[..]));
        assert_eq!(addr.as_pathname(), None);
        assert!(!addr.is_unnamed());
        assert_eq!(addr.to_string(), format!("@{}", String::from_utf8_lossy(&name)));

        let sock = Socket::new(Domain::UNIX, Type::STREAM, None).unwrap();
        sock.bind(&addr.to_sockaddr().unwrap()).unwrap();
        let local = UnixAddr::from_sockaddr(&sock.local_addr().unwrap());
        assert_eq!(local, addr);
        assert_eq!(UnixAddr::from(local.to_std().unwrap()), addr);

        // Binary names, NUL bytes included, survive exactly.
        let odd = UnixAddr::from_abstract_name(b"a\0b\xff").unwrap();
        let sock = Socket::new(Domain::UNIX, Type::DGRAM, None).unwrap();
        sock.bind(&odd.to_sockaddr().unwrap()).unwrap();
        assert_eq!(UnixAddr::from_sockaddr(&sock.local_addr().unwrap()), odd);
        assert_eq!(odd.to_string(), "@a\\x00b\\xff");
    }

    #[cfg(any(target_os = "linux", target_os = "android"))]
    #[test]
    fn abstract_length_boundary() {
        let max = sun_path_len() - 1;
        let name = vec![b'n'; max];
        let addr = UnixAddr::from_abstract_name(&name).unwrap();
        let sa = addr.to_sockaddr().unwrap();
        assert_eq!(sa.as_abstract_namespace(), Some(&name[..]));

        let err = UnixAddr::from_abstract_name(&vec![b'n'; max + 1]).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
        assert!(err.to_string().contains(&format!("at most {max} bytes")));
    }

    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    #[test]
    fn abstract_is_unsupported_elsewhere() {
        let err = UnixAddr::from_abstract_name(b"x").unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::Unsupported);
    }

    #[test]
    fn debug_output() {
        let addr = UnixAddr::from_path("/tmp/a.sock").unwrap();
        assert_eq!(format!("{addr:?}"), "\"/tmp/a.sock\" (pathname)");
        assert_eq!(format!("{:?}", UnixAddr::unnamed()), "(unnamed)");
    }
}
