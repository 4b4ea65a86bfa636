//! Non-blocking socket primitives on a borrowed descriptor.
//!
//! The net types (`TcpStream`, `UdpSocket`, the Unix sockets) call these from their
//! `try_*` methods and from the readiness loop in `io::evented`, always on a descriptor
//! that is already in non-blocking mode. Each function is one system call:
//!
//! - it retries on `EINTR` (an interrupted call has done nothing and is safe to repeat);
//! - it returns every other error unchanged, `WouldBlock` included; mapping
//!   `WouldBlock` to `Ok(None)` or to a readiness wait is the caller's job;
//! - a send never raises `SIGPIPE`: on Linux, Android and most BSDs every send passes
//!   `MSG_NOSIGNAL`; on Apple platforms, which lack that flag, the socket layer calls
//!   [`set_nosigpipe`] once when the socket is created, so a write to a peer that has
//!   gone is `Err(BrokenPipe)` (or `ConnectionReset`) everywhere;
//! - a datagram read reports truncation instead of hiding it: the length returned is
//!   never more than the buffer's length, and a flag says whether the datagram was
//!   longer than the buffer (Linux: `recvfrom` with `MSG_TRUNC` returns the full length;
//!   elsewhere: `MSG_TRUNC` in the flags `recvmsg` returns).
//!
//! Wherever socket2 has a safe wrapper for the call it is used (through
//! [`SockRef`]); the raw calls are `readv` for [`recv_vectored`], and `send`/`recv` on
//! the stream hot path, where the wrapper's cost shows in the echo benchmark.
//!
//! # Fault-injection seam
//!
//! Each send and receive makes its one system call through `seam`, which under
//! `cfg(test)` or the `fault-injection` feature lets a test plan (module `fault`)
//! fail the call with `EINTR` or `EAGAIN` or cut its buffers short. In every other build
//! `seam` is an `#[inline(always)]` pass-through and the module does not exist.

use std::io::{self, IoSlice, IoSliceMut};
use std::os::fd::{AsRawFd, BorrowedFd, RawFd};

use socket2::{SockAddr, SockRef};

#[cfg(any(test, feature = "fault-injection"))]
#[path = "fault.rs"]
pub mod fault;

/// The direction of a system call, for the fault-injection seam.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Side {
    /// A receive.
    Read = 0,
    /// A send.
    Write = 1,
}

/// Makes one system call, moving at most `len` bytes, through the fault-injection plan
/// of `fd` if it has one: `call(n)` is the real call limited to `n <= len` bytes.
#[cfg(any(test, feature = "fault-injection"))]
#[inline]
fn seam<R>(fd: BorrowedFd<'_>, side: Side, len: usize, call: impl FnOnce(usize) -> io::Result<R>) -> io::Result<R> {
    fault::intercept(fd.as_raw_fd(), side, len, call)
}

/// Makes one system call: `call(len)`. (Without fault injection the seam is nothing.)
#[cfg(not(any(test, feature = "fault-injection")))]
#[inline(always)]
fn seam<R>(_fd: BorrowedFd<'_>, _side: Side, len: usize, call: impl FnOnce(usize) -> io::Result<R>) -> io::Result<R> {
    call(len)
}

/// The first `max` bytes of `bufs`, as a new list (for a cut vectored send).
fn cut_slices<'a>(bufs: &'a [IoSlice<'_>], max: usize) -> Vec<IoSlice<'a>> {
    let mut left = max;
    let mut out = Vec::new();
    for b in bufs {
        if left == 0 {
            break;
        }
        let take = b.len().min(left);
        out.push(IoSlice::new(&b[..take]));
        left -= take;
    }
    out
}

/// The first `max` bytes of `bufs`, as a new list (for a cut vectored receive).
fn cut_slices_mut<'a>(bufs: &'a mut [IoSliceMut<'_>], max: usize) -> Vec<IoSliceMut<'a>> {
    let mut left = max;
    let mut out = Vec::new();
    for b in bufs.iter_mut() {
        if left == 0 {
            break;
        }
        let take = b.len().min(left);
        out.push(IoSliceMut::new(&mut b[..take]));
        left -= take;
    }
    out
}

/// Flags passed to every send: `MSG_NOSIGNAL` where the platform has it.
#[cfg(any(
    target_os = "linux",
    target_os = "android",
    target_os = "freebsd",
    target_os = "netbsd",
    target_os = "openbsd",
    target_os = "dragonfly",
))]
const SEND_FLAGS: libc::c_int = libc::MSG_NOSIGNAL;

/// Flags passed to every send: none here; `SIGPIPE` is suppressed per socket instead
/// (see [`set_nosigpipe`]).
#[cfg(not(any(
    target_os = "linux",
    target_os = "android",
    target_os = "freebsd",
    target_os = "netbsd",
    target_os = "openbsd",
    target_os = "dragonfly",
)))]
const SEND_FLAGS: libc::c_int = 0;

/// Most buffers a single vectored call passes to the kernel.
///
/// `IOV_MAX` is 1024 on Linux, macOS and the BSDs; a longer list would fail with
/// `EINVAL`, so the extra buffers are left for the next call (a short read or write,
/// which callers of vectored I/O already handle).
const MAX_IOV: usize = 1024;

/// Runs `f` until it returns something other than `ErrorKind::Interrupted`.
fn retry_eintr<T>(mut f: impl FnMut() -> io::Result<T>) -> io::Result<T> {
    loop {
        match f() {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            other => return other,
        }
    }
}

/// `send(2)` of `len` bytes at `buf`: the count, or -1 with `errno` set.
///
/// On x86-64 Linux it is the bare `sendto` system call (no address), issued inline.
/// glibc's `send` is a thread-cancellation point: once a process has a second thread it
/// brackets the call with `__pthread_enable_asynccancel`/`disable`, two atomic
/// read-modify-writes per call, which made every socket operation of the multi-thread
/// runtime about 25 instructions dearer than the current-thread runtime's. glibc's
/// generic `syscall()` avoids the bracket but shuffles its variadic arguments, which cost
/// the single-threaded case about 13 instructions per call; the inline form costs
/// neither (callgrind, echo benchmark, 50 connections, instructions per round trip:
/// 2 workers 1,232 → 1,090, current-thread 1,038 → 992). blitz-io never cancels threads, so it has no use for the bracket.
/// Elsewhere it is libc's `send`.
///
/// # Safety
///
/// `buf` must be valid for reads of `len` bytes for the duration of the call.
#[inline]
unsafe fn sys_send(fd: RawFd, buf: *const u8, len: usize, flags: libc::c_int) -> isize {
    // SAFETY: the caller guarantees `buf` for `len` bytes; a null address of length 0
    // makes `sendto` a `send`.
    unsafe { sys_sendto(fd, buf, len, flags, std::ptr::null(), 0) }
}

/// `sendto(2)`: [`sys_send`] with a destination address (`addr`, `addrlen` bytes; null
/// and 0 for a connected socket).
///
/// # Safety
///
/// `buf` must be valid for reads of `len` bytes and `addr` for reads of `addrlen` bytes
/// (or null with `addrlen` 0) for the duration of the call.
#[inline]
unsafe fn sys_sendto(
    fd: RawFd,
    buf: *const u8,
    len: usize,
    flags: libc::c_int,
    addr: *const libc::sockaddr,
    addrlen: libc::socklen_t,
) -> isize {
    #[cfg(all(target_os = "linux", target_arch = "x86_64", not(miri)))]
    {
        // SAFETY: the caller guarantees `buf` and `addr` for their lengths.
        unsafe {
            raw_syscall6(
                libc::SYS_sendto,
                fd as usize,
                buf as usize,
                len,
                flags as usize,
                addr as usize,
                addrlen as usize,
            )
        }
    }
    #[cfg(not(all(target_os = "linux", target_arch = "x86_64", not(miri))))]
    {
        // SAFETY: the caller guarantees `buf` and `addr` for their lengths.
        unsafe { libc::sendto(fd, buf.cast(), len, flags, addr, addrlen) }
    }
}

/// `recv(2)` into `len` bytes at `buf`: the count, or -1 with `errno` set; the bare
/// system call on x86-64 Linux, for the reasons given at [`sys_send`].
///
/// # Safety
///
/// `buf` must be valid for writes of `len` bytes for the duration of the call.
#[inline]
unsafe fn sys_recv(fd: RawFd, buf: *mut u8, len: usize, flags: libc::c_int) -> isize {
    // SAFETY: the caller guarantees `buf` for `len` bytes; null address pointers make
    // `recvfrom` a `recv`.
    unsafe { sys_recvfrom(fd, buf, len, flags, std::ptr::null_mut(), std::ptr::null_mut()) }
}

/// `recvfrom(2)`: [`sys_recv`] that also writes the sender into `addr` (of `*addrlen`
/// bytes; updated to the address's length), or null pointers for no sender.
///
/// # Safety
///
/// `buf` must be valid for writes of `len` bytes and, unless null, `addrlen` for reads
/// and writes and `addr` for writes of `*addrlen` bytes, for the duration of the call.
#[inline]
unsafe fn sys_recvfrom(
    fd: RawFd,
    buf: *mut u8,
    len: usize,
    flags: libc::c_int,
    addr: *mut libc::sockaddr,
    addrlen: *mut libc::socklen_t,
) -> isize {
    #[cfg(all(target_os = "linux", target_arch = "x86_64", not(miri)))]
    {
        // SAFETY: the caller guarantees `buf`, `addr` and `addrlen`.
        unsafe {
            raw_syscall6(
                libc::SYS_recvfrom,
                fd as usize,
                buf as usize,
                len,
                flags as usize,
                addr as usize,
                addrlen as usize,
            )
        }
    }
    #[cfg(not(all(target_os = "linux", target_arch = "x86_64", not(miri))))]
    {
        // SAFETY: the caller guarantees `buf`, `addr` and `addrlen`.
        unsafe { libc::recvfrom(fd, buf.cast(), len, flags, addr, addrlen) }
    }
}

/// Issues system call `nr` with six arguments (x86-64 Linux calling convention) and
/// returns its result the way libc would: -1 with `errno` set on failure.
///
/// # Safety
///
/// The arguments must be valid for system call `nr`: pointers it reads or writes must
/// be valid for the lengths it is given, for the duration of the call.
#[cfg(all(target_os = "linux", target_arch = "x86_64", not(miri)))]
#[inline]
unsafe fn raw_syscall6(nr: libc::c_long, a1: usize, a2: usize, a3: usize, a4: usize, a5: usize, a6: usize) -> isize {
    let ret: isize;
    // SAFETY: the `syscall` instruction with the number in rax and arguments in rdi,
    // rsi, rdx, r10, r8, r9 is the kernel's x86-64 ABI; it clobbers rcx and r11 (declared)
    // and touches no stack. Memory effects are those of system call `nr`, which the
    // caller vouches for; the asm is not marked pure or readonly, so the compiler assumes
    // it may read and write any memory it can reach.
    unsafe {
        std::arch::asm!(
            "syscall",
            inlateout("rax") nr as isize => ret,
            in("rdi") a1,
            in("rsi") a2,
            in("rdx") a3,
            in("r10") a4,
            in("r8") a5,
            in("r9") a6,
            lateout("rcx") _,
            lateout("r11") _,
            options(nostack),
        );
    }
    if (-4095..0).contains(&ret) {
        // The kernel returns -errno; callers read errno as they would after libc.
        set_errno(-ret as libc::c_int);
        -1
    } else {
        ret
    }
}

/// Sets the calling thread's `errno`.
#[cfg(all(target_os = "linux", target_arch = "x86_64", not(miri)))]
#[cold]
fn set_errno(e: libc::c_int) {
    // SAFETY: `__errno_location` returns a valid pointer to the calling thread's errno.
    unsafe { *libc::__errno_location() = e };
}

/// Sends `buf` on a connected socket; never raises `SIGPIPE`.
///
/// Returns the number of bytes queued, which may be less than `buf.len()` on a stream.
/// A peer that has closed or reset the connection gives `Err` of kind `BrokenPipe` or
/// `ConnectionReset`. A full send buffer gives `WouldBlock`.
#[inline]
pub(crate) fn send(fd: BorrowedFd<'_>, buf: &[u8]) -> io::Result<usize> {
    retry_eintr(|| {
        seam(fd, Side::Write, buf.len(), |len| {
            let len = len.min(buf.len());
            // SAFETY: `buf` is a valid, initialised slice for `len <= buf.len()` bytes for
            // the duration of the call, and `fd` is a live descriptor borrowed for it.
            // Calling the system directly (rather than through socket2's `SockRef`) is
            // measurable on the hot path: it saves about 50 instructions per send
            // (callgrind, echo benchmark); see `sys_send` for the rest.
            let n = unsafe { sys_send(fd.as_raw_fd(), buf.as_ptr(), len, SEND_FLAGS) };
            if n >= 0 {
                Ok(n as usize)
            } else {
                Err(io::Error::last_os_error())
            }
        })
    })
}

/// Sends the buffers in `bufs`, in order, as one `sendmsg` on a connected socket; never
/// raises `SIGPIPE`.
///
/// Returns the number of bytes queued across all buffers. At most 1024 buffers are
/// passed per call (`IOV_MAX`); the rest are left for the next call.
pub(crate) fn send_vectored(fd: BorrowedFd<'_>, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
    let sock = SockRef::from(&fd);
    let bufs = &bufs[..bufs.len().min(MAX_IOV)];
    let total = bufs.iter().map(|b| b.len()).sum::<usize>();
    retry_eintr(|| {
        seam(fd, Side::Write, total, |len| {
            if len < total {
                sock.send_vectored_with_flags(&cut_slices(bufs, len), SEND_FLAGS)
            } else {
                sock.send_vectored_with_flags(bufs, SEND_FLAGS)
            }
        })
    })
}

/// Sends one datagram `buf` to `addr` on an unconnected socket; never raises `SIGPIPE`.
///
/// A datagram larger than the socket allows gives `Err` (`EMSGSIZE`); it is never sent
/// in part.
pub(crate) fn send_to(fd: BorrowedFd<'_>, buf: &[u8], addr: &SockAddr) -> io::Result<usize> {
    // A datagram is never cut by the seam: `len` is always `buf.len()` here.
    retry_eintr(|| {
        seam(fd, Side::Write, buf.len(), |_| {
            // SAFETY: `buf` is valid for reads of its length and `addr` points at a socket
            // address of `addr.len()` bytes, both for the duration of the call; `fd` is a
            // live descriptor borrowed for it.
            let n = unsafe {
                sys_sendto(fd.as_raw_fd(), buf.as_ptr(), buf.len(), SEND_FLAGS, addr.as_ptr().cast(), addr.len())
            };
            if n >= 0 {
                Ok(n as usize)
            } else {
                Err(io::Error::last_os_error())
            }
        })
    })
}

/// Receives into `buf` from a connected socket; with `peek` the data stays queued
/// (`MSG_PEEK`) and the next receive returns it again.
///
/// On a stream `Ok(0)` means the peer closed its write side (or `buf` is empty). No
/// data yet gives `WouldBlock`.
#[inline]
pub(crate) fn recv(fd: BorrowedFd<'_>, buf: &mut [u8], peek: bool) -> io::Result<usize> {
    let flags = if peek { libc::MSG_PEEK } else { 0 };
    let cap = buf.len();
    retry_eintr(|| {
        seam(fd, Side::Read, cap, |len| {
            let len = len.min(cap);
            // SAFETY: `buf` is valid for writes of `len <= buf.len()` bytes for the
            // duration of the call and the kernel writes at most that many (initialised)
            // bytes; `fd` is a live descriptor borrowed for the call. A direct call saves
            // about 60 instructions per receive over socket2's wrapper (callgrind, echo
            // benchmark); see `sys_recv` for the rest.
            let n = unsafe { sys_recv(fd.as_raw_fd(), buf.as_mut_ptr(), len, flags) };
            if n >= 0 {
                Ok((n as usize).min(len))
            } else {
                Err(io::Error::last_os_error())
            }
        })
    })
}

/// Receives into the buffers in `bufs`, filling them in order (`readv`).
///
/// At most 1024 buffers are filled per call (`IOV_MAX`). On a stream `Ok(0)` means the
/// peer closed its write side (or every buffer is empty).
pub(crate) fn recv_vectored(fd: BorrowedFd<'_>, bufs: &mut [IoSliceMut<'_>]) -> io::Result<usize> {
    let count = bufs.len().min(MAX_IOV);
    let total = bufs[..count].iter().map(|b| b.len()).sum::<usize>();
    let n = retry_eintr(|| {
        seam(fd, Side::Read, total, |len| {
            let mut cut = Vec::new();
            let (iov, iovcnt) = if len < total {
                cut = cut_slices_mut(&mut bufs[..count], len);
                (cut.as_mut_ptr().cast::<libc::iovec>(), cut.len())
            } else {
                (bufs.as_mut_ptr().cast::<libc::iovec>(), count)
            };
            // SAFETY: `IoSliceMut` is guaranteed by std to be ABI-compatible with `iovec`
            // on Unix, so `iov` points to a valid array of `iovcnt` iovecs (the first
            // `count <= bufs.len()` of `bufs`, or the cut list `cut`, alive until the end
            // of this closure; `iovcnt <= MAX_IOV` fits in `c_int`), each describing memory
            // we hold a unique borrow of for the duration of the call. `fd` is a live
            // descriptor for the same duration.
            let r = syscall!(unsafe { libc::readv(fd.as_raw_fd(), iov, iovcnt as libc::c_int) });
            drop(cut);
            r
        })
    })?;
    // `readv` returns -1 (already an error above) or a count no larger than the total
    // buffer space, so the conversion cannot fail; map defensively rather than unwrap.
    usize::try_from(n).map_err(|_| io::Error::other("readv returned a negative length"))
}

/// Receives one datagram into `buf` and says who sent it; with `peek` the datagram
/// stays queued (`MSG_PEEK`).
///
/// Returns `(len, sender, truncated)`: `len` is the number of bytes written into
/// `buf` (never more than `buf.len()`), and `truncated` is `true` when the datagram was
/// longer than `buf` and its tail was discarded (or, with `peek`, not copied); see
/// `recv_datagram` for how each platform tells. For a datagram from an unbound Unix
/// socket the sender is empty: a zero-length address on Linux, an unnamed `AF_UNIX`
/// address elsewhere (`UnixAddr::from_sockaddr` reads both as unnamed).
///
/// The sender is written into one `sockaddr_storage` on this frame: going through
/// socket2's `recv_from_vectored_with_flags` moved the 136-byte address through five
/// layers of results, about 270 instructions per datagram (callgrind, UDP ping-pong).
pub(crate) fn recv_from(fd: BorrowedFd<'_>, buf: &mut [u8], peek: bool) -> io::Result<(usize, SockAddr, bool)> {
    let flags = if peek { libc::MSG_PEEK } else { 0 };
    let len = buf.len();
    let mut storage = socket2::SockAddrStorage::zeroed();
    let mut namelen: libc::socklen_t = 0;
    let mut truncated = false;
    // A datagram is never cut by the seam: `len` is always the buffer's length here.
    let n = retry_eintr(|| {
        seam(fd, Side::Read, len, |_| {
            let (n, name_len, cut) = recv_datagram(fd.as_raw_fd(), buf, flags, &mut storage)?;
            namelen = name_len;
            truncated = cut;
            Ok(n)
        })
    })?;
    // SAFETY: the kernel wrote a socket address of `namelen` bytes into `storage`, or
    // left `namelen` 0 for an unnamed sender. The kernel reports an address's full
    // length even when it exceeds the buffer it was given; `namelen` cannot exceed the
    // buffer here because `storage` is a `sockaddr_storage`, the largest address the
    // kernel has.
    let addr = unsafe { SockAddr::new(storage, namelen) };
    Ok((n, addr, truncated))
}

/// One datagram receive into `buf`, the sender into `storage`: the copied length, the
/// sender's address length and whether the datagram was cut.
///
/// Linux and Android: `recvfrom` with `MSG_TRUNC`, which makes the kernel return the
/// datagram's full length (UDP, Unix datagram and raw sockets), so a result longer than
/// `buf` means it was cut. That is `recvmsg`'s answer without its `msghdr` and `iovec`
/// copies in and out of the kernel (UDP ping-pong, where every round trip makes two
/// receives, one of them the `EAGAIN` before waiting).
#[cfg(any(target_os = "linux", target_os = "android"))]
fn recv_datagram(
    fd: RawFd,
    buf: &mut [u8],
    flags: libc::c_int,
    storage: &mut socket2::SockAddrStorage,
) -> io::Result<(usize, libc::socklen_t, bool)> {
    let len = buf.len();
    let mut namelen = storage.size_of();
    // SAFETY: `buf` is writable for `len` bytes, `storage` for `namelen` bytes and
    // `namelen` is a live local, all for the duration of the call; `fd` is a live
    // descriptor borrowed by the caller.
    let n = unsafe {
        sys_recvfrom(
            fd,
            buf.as_mut_ptr(),
            len,
            flags | libc::MSG_TRUNC,
            (storage as *mut socket2::SockAddrStorage).cast(),
            &mut namelen,
        )
    };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    let full = n as usize;
    Ok((full.min(len), namelen, full > len))
}

/// One datagram receive into `buf`, the sender into `storage`: the copied length, the
/// sender's address length and whether the datagram was cut (`MSG_TRUNC` in the flags
/// `recvmsg` returns; as an input flag it means different things on different systems).
#[cfg(not(any(target_os = "linux", target_os = "android")))]
fn recv_datagram(
    fd: RawFd,
    buf: &mut [u8],
    flags: libc::c_int,
    storage: &mut socket2::SockAddrStorage,
) -> io::Result<(usize, libc::socklen_t, bool)> {
    let len = buf.len();
    let mut iov = libc::iovec { iov_base: buf.as_mut_ptr().cast(), iov_len: len };
    // SAFETY: an all-zero `msghdr` is a valid value (no name, no buffers, no control
    // data); the fields that matter are set below.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_namelen = storage.size_of();
    msg.msg_name = (storage as *mut socket2::SockAddrStorage).cast();
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    // SAFETY: `msg` points at `storage` (writable, of the size given) and at one iovec
    // describing `buf` (writable for `len` bytes), all live for the call; `fd` is a live
    // descriptor borrowed by the caller.
    let n = unsafe { libc::recvmsg(fd, &mut msg, flags) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(((n as usize).min(len), msg.msg_namelen, msg.msg_flags & libc::MSG_TRUNC != 0))
}

/// Makes sends on this socket return `EPIPE` instead of raising `SIGPIPE`, on platforms
/// where the send flags cannot do it.
///
/// On Apple platforms this sets `SO_NOSIGPIPE`; the socket layer calls it once on every
/// new or adopted stream socket. Everywhere else `MSG_NOSIGNAL` is passed on each send
/// instead and this is a no-op that returns `Ok(())`.
pub(crate) fn set_nosigpipe(fd: BorrowedFd<'_>) -> io::Result<()> {
    #[cfg(any(
        target_os = "macos",
        target_os = "ios",
        target_os = "tvos",
        target_os = "watchos",
        target_os = "visionos",
    ))]
    {
        SockRef::from(&fd).set_nosigpipe(true)
    }
    #[cfg(not(any(
        target_os = "macos",
        target_os = "ios",
        target_os = "tvos",
        target_os = "watchos",
        target_os = "visionos",
    )))]
    {
        let _ = fd;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Shutdown, TcpListener, TcpStream, UdpSocket};
    use std::os::fd::AsFd;
    use std::os::unix::net::{UnixDatagram, UnixStream};
    use std::time::{Duration, Instant};

    /// Repeats a non-blocking call until it stops returning `WouldBlock` (5 s cap).
    fn wait<T>(mut f: impl FnMut() -> io::Result<T>) -> io::Result<T> {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            match f() {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock && Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(1));
                }
                other => return other,
            }
        }
    }

    fn udp_pair() -> (UdpSocket, UdpSocket) {
        let a = UdpSocket::bind("127.0.0.1:0").unwrap();
        let b = UdpSocket::bind("127.0.0.1:0").unwrap();
        a.set_nonblocking(true).unwrap();
        b.set_nonblocking(true).unwrap();
        (a, b)
    }

    fn tcp_pair() -> (TcpStream, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (server, _) = listener.accept().unwrap();
        client.set_nonblocking(true).unwrap();
        server.set_nonblocking(true).unwrap();
        (client, server)
    }

    #[test]
    fn udp_recv_from_reports_truncation() {
        let (a, b) = udp_pair();
        let to = SockAddr::from(b.local_addr().unwrap());
        assert_eq!(send_to(a.as_fd(), &[7u8; 100], &to).unwrap(), 100);

        let mut small = [0u8; 10];
        let (n, from, truncated) = wait(|| recv_from(b.as_fd(), &mut small, false)).unwrap();
        assert_eq!(n, 10);
        assert!(truncated, "a 100-byte datagram into 10 bytes must be flagged");
        assert_eq!(small, [7u8; 10]);
        assert_eq!(from.as_socket(), Some(a.local_addr().unwrap()));

        assert_eq!(send_to(a.as_fd(), b"hello", &to).unwrap(), 5);
        let mut big = [0u8; 64];
        let (n, _, truncated) = wait(|| recv_from(b.as_fd(), &mut big, false)).unwrap();
        assert_eq!((n, truncated), (5, false));
        assert_eq!(&big[..5], b"hello");
    }

    #[test]
    fn udp_exact_fit_is_not_truncated() {
        let (a, b) = udp_pair();
        let to = SockAddr::from(b.local_addr().unwrap());
        send_to(a.as_fd(), &[1u8; 32], &to).unwrap();
        let mut buf = [0u8; 32];
        let (n, _, truncated) = wait(|| recv_from(b.as_fd(), &mut buf, false)).unwrap();
        assert_eq!((n, truncated), (32, false));
    }

    #[test]
    fn udp_peek_leaves_the_datagram() {
        let (a, b) = udp_pair();
        let to = SockAddr::from(b.local_addr().unwrap());
        send_to(a.as_fd(), b"ping!", &to).unwrap();

        let mut buf = [0u8; 3];
        let (n, _, truncated) = wait(|| recv_from(b.as_fd(), &mut buf, true)).unwrap();
        assert_eq!((n, truncated, &buf), (3, true, b"pin"));

        let mut buf = [0u8; 16];
        let (n, _, truncated) = recv_from(b.as_fd(), &mut buf, true).unwrap();
        assert_eq!((n, truncated, &buf[..n]), (5, false, &b"ping!"[..]));

        let (n, _, _) = recv_from(b.as_fd(), &mut buf, false).unwrap();
        assert_eq!(&buf[..n], b"ping!");
        let err = recv_from(b.as_fd(), &mut buf, false).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::WouldBlock);
    }

    #[test]
    fn would_block_surfaces_as_would_block() {
        let (a, _b) = udp_pair();
        let mut buf = [0u8; 8];
        let err = recv_from(a.as_fd(), &mut buf, false).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::WouldBlock);

        let (client, _server) = tcp_pair();
        assert_eq!(recv(client.as_fd(), &mut buf, false).unwrap_err().kind(), io::ErrorKind::WouldBlock);
        assert_eq!(recv(client.as_fd(), &mut buf, true).unwrap_err().kind(), io::ErrorKind::WouldBlock);
        let mut bufs = [IoSliceMut::new(&mut buf)];
        assert_eq!(recv_vectored(client.as_fd(), &mut bufs).unwrap_err().kind(), io::ErrorKind::WouldBlock);
    }

    #[test]
    fn tcp_send_recv_peek_and_vectored() {
        let (client, server) = tcp_pair();
        assert_eq!(send(client.as_fd(), b"abc").unwrap(), 3);
        let bufs = [IoSlice::new(b"de"), IoSlice::new(b""), IoSlice::new(b"fgh")];
        assert_eq!(send_vectored(client.as_fd(), &bufs).unwrap(), 5);

        // Wait until all eight bytes are queued, peeking so nothing is consumed.
        let mut peeked = [0u8; 8];
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let n = wait(|| recv(server.as_fd(), &mut peeked, true)).unwrap();
            if n == 8 || Instant::now() > deadline {
                assert_eq!(&peeked[..n], b"abcdefgh");
                break;
            }
            std::thread::sleep(Duration::from_millis(1));
        }

        let mut first = [0u8; 2];
        let mut second = [0u8; 10];
        let mut bufs = [IoSliceMut::new(&mut first), IoSliceMut::new(&mut second)];
        let n = recv_vectored(server.as_fd(), &mut bufs).unwrap();
        assert_eq!(n, 8);
        assert_eq!(&first, b"ab");
        assert_eq!(&second[..6], b"cdefgh");

        // Peer closes its write side: a read then returns 0.
        client.shutdown(Shutdown::Write).unwrap();
        let mut buf = [0u8; 4];
        assert_eq!(wait(|| recv(server.as_fd(), &mut buf, false)).unwrap(), 0);
    }

    #[test]
    fn send_to_closed_peer_is_an_error_not_a_signal() {
        let (client, server) = tcp_pair();
        drop(server);
        let chunk = [0u8; 64 * 1024];
        let deadline = Instant::now() + Duration::from_secs(10);
        let err = loop {
            match send(client.as_fd(), &chunk) {
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => break e,
            }
            assert!(Instant::now() < deadline, "send to a closed peer never failed");
            std::thread::sleep(Duration::from_millis(1));
        };
        assert!(
            matches!(err.kind(), io::ErrorKind::BrokenPipe | io::ErrorKind::ConnectionReset),
            "unexpected error: {err:?}"
        );
        // The vectored path takes the same flags.
        let err = loop {
            match send_vectored(client.as_fd(), &[IoSlice::new(&chunk)]) {
                Err(e) if e.kind() != io::ErrorKind::WouldBlock => break e,
                _ => {}
            }
            assert!(Instant::now() < deadline, "vectored send never failed");
            std::thread::sleep(Duration::from_millis(1));
        };
        assert_eq!(err.kind(), io::ErrorKind::BrokenPipe, "{err:?}");
    }

    #[test]
    fn send_to_shut_down_unix_peer_is_broken_pipe() {
        let (a, b) = UnixStream::pair().unwrap();
        a.set_nonblocking(true).unwrap();
        set_nosigpipe(a.as_fd()).unwrap();
        drop(b);
        let err = send(a.as_fd(), b"x").unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::BrokenPipe);
    }

    #[test]
    fn unix_datagram_truncation() {
        let (a, b) = UnixDatagram::pair().unwrap();
        a.set_nonblocking(true).unwrap();
        b.set_nonblocking(true).unwrap();

        assert_eq!(send(a.as_fd(), &[5u8; 40]).unwrap(), 40);
        let mut buf = [0u8; 16];
        let (n, from, truncated) = recv_from(b.as_fd(), &mut buf, false).unwrap();
        assert_eq!((n, truncated), (16, true));
        // Linux reports an unbound sender with an empty address (length 0); others give
        // an unnamed AF_UNIX address. `UnixAddr::from_sockaddr` reads both as unnamed.
        assert!(from.len() == 0 || from.is_unnamed(), "{from:?}");

        assert_eq!(send(a.as_fd(), &[5u8; 16]).unwrap(), 16);
        assert_eq!(recv_from(b.as_fd(), &mut buf, false).map(|(n, _, t)| (n, t)).unwrap(), (16, false));
        assert_eq!(send(a.as_fd(), &[5u8; 17]).unwrap(), 17);
        assert_eq!(recv_from(b.as_fd(), &mut buf, false).map(|(n, _, t)| (n, t)).unwrap(), (16, true));
        assert_eq!(recv_from(b.as_fd(), &mut buf, false).unwrap_err().kind(), io::ErrorKind::WouldBlock);
    }

    #[test]
    fn unix_datagram_send_to_path() {
        let dir = std::env::temp_dir().join(format!("blitz-io-sys-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("dgram.sock");
        let _ = std::fs::remove_file(&path);
        let rx = UnixDatagram::bind(&path).unwrap();
        rx.set_nonblocking(true).unwrap();
        let tx = UnixDatagram::unbound().unwrap();
        let to = SockAddr::unix(&path).unwrap();
        assert_eq!(send_to(tx.as_fd(), b"hi", &to).unwrap(), 2);
        let mut buf = [0u8; 8];
        let (n, from, truncated) = recv_from(rx.as_fd(), &mut buf, false).unwrap();
        assert_eq!((&buf[..n], truncated), (&b"hi"[..], false));
        assert!(from.len() == 0 || from.is_unnamed(), "{from:?}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
