//! The public API contract of `../shared/API.md`, checked by the compiler.
//!
//! Every non-generic function is coerced to a function pointer of exactly the signature
//! API.md gives, so a renamed, removed or re-typed item fails to compile. Generic and
//! `async` items are called inside a never-run `async` block with the argument types
//! API.md gives and their results bound to the types it names. The one runtime test
//! checks that the block type-checks and that the checks themselves never run.

#![allow(clippy::type_complexity, dead_code, unused_variables, unused_must_use)]

use std::io::{self, IoSlice, IoSliceMut};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, Shutdown, SocketAddr};
use std::path::Path;
use std::time::Duration;

use blitz_io::io::{Interest, Ready};
use blitz_io::net::{
    self, AcceptResult, Address, Family, Keepalive, RecvFromResult, TcpListener, TcpSocket, TcpStream, UCred,
    UdpSocket, UnixAcceptResult, UnixAddr, UnixDatagram, UnixListener, UnixRecvFromResult, UnixStream,
};
use blitz_io::runtime::{Builder, Handle, Runtime};
use blitz_io::task::{JoinError, JoinHandle};
use blitz_io::time::{Elapsed, Instant, Interval};

fn runtime_items() {
    let _: fn(&Builder) = |_| {};
    let _: fn() -> Builder = Builder::new_multi_thread;
    let _: fn() -> Builder = Builder::new_current_thread;
    let _: fn(&mut Builder, usize) -> &mut Builder = Builder::worker_threads;
    let _: fn(&mut Builder, usize) -> &mut Builder = Builder::max_blocking_threads;
    let _: fn(&mut Builder) -> io::Result<Runtime> = Builder::build;
    let _: fn() -> io::Result<Runtime> = Runtime::new;
    let _: fn(&Runtime) -> &Handle = Runtime::handle;
    let _: fn(Runtime, Duration) = Runtime::shutdown_timeout;
    let _: fn() -> Handle = Handle::current;
    let _ = Handle::try_current().is_err();
    let _: fn(&JoinError) -> bool = JoinError::is_cancelled;
    let _: fn(&JoinError) -> bool = JoinError::is_panic;
    let _: fn(JoinError) -> Box<dyn std::any::Any + Send + 'static> = JoinError::into_panic;
    let _: fn(&JoinHandle<u8>) = JoinHandle::<u8>::abort;
    let _: fn(&JoinHandle<u8>) -> bool = JoinHandle::<u8>::is_finished;
    let _: fn(Duration) -> Interval = blitz_io::time::interval;
    fn is_error<E: std::error::Error>() {}
    is_error::<JoinError>();
    is_error::<Elapsed>();
    let _: io::Error = io::Error::from(blitz_io::time::timeout(Duration::ZERO, async {}).into_inner_check());
    let _: Duration = blitz_io::Duration::from_secs(1);
}

/// Builds an `Elapsed` value's type without running anything (helper for the check above).
trait IntoInnerCheck {
    fn into_inner_check(self) -> Elapsed;
}
impl<F> IntoInnerCheck for F {
    fn into_inner_check(self) -> Elapsed {
        unreachable!("never called: type-level check only")
    }
}

#[allow(unreachable_code)]
async fn runtime_async_items(rt: &Runtime, h: &Handle) {
    let _: u8 = blitz_io::run(async { 1u8 });
    let _: u8 = blitz_io::block_on(async { 1u8 });
    let _: u8 = rt.block_on(async { 1u8 });
    let _h1: JoinHandle<u8> = rt.spawn(async { 1u8 });
    let _h2: JoinHandle<u8> = h.spawn(async { 1u8 });
    let _h3: JoinHandle<u8> = h.spawn_blocking(|| 1u8);
    let _: u8 = h.block_on(async { 1u8 });
    let _: Result<u8, JoinError> = blitz_io::task::spawn(async { 1u8 }).await;
    let _: Result<u8, JoinError> = blitz_io::task::spawn_blocking(|| 1u8).await;
    blitz_io::task::yield_now().await;
    blitz_io::time::sleep(Duration::from_millis(1)).await;
    blitz_io::time::sleep_until(Instant::now()).await;
    let _: Result<u8, Elapsed> = blitz_io::time::timeout(Duration::from_millis(1), async { 1u8 }).await;
    let _: Instant = blitz_io::time::interval(Duration::from_millis(1)).tick().await;
    let mut b = Builder::new_multi_thread();
    b.thread_name("x");
}

fn address_items() {
    let _: fn(&str) -> io::Result<Address> = Address::parse;
    let _: fn(u16) -> Address = Address::from_port;
    let _: fn(u16) -> Address = Address::loopback_v4;
    let _: fn(u16) -> Address = Address::loopback_v6;
    let _: fn(SocketAddr) -> Address = Address::from_std;
    let _: fn(&Address) -> SocketAddr = Address::to_std;
    let _: fn(&Address) -> u16 = Address::port;
    let _: fn(&Address) -> IpAddr = Address::ip;
    let _: fn(&Address) -> Family = Address::family;
    let _: fn(&Address) -> bool = Address::is_ipv4;
    let _: fn(&Address) -> bool = Address::is_ipv6;
    let _: i32 = Family::V4.as_raw() + Family::V6.as_raw();
    fn traits<T: Clone + Copy + PartialEq + Eq + std::hash::Hash + std::fmt::Debug + std::fmt::Display>() {}
    traits::<Address>();
    let a: Address = "1.2.3.4:80".parse().unwrap_or(Address::from_port(0));
    let _: SocketAddr = a.into();
    let _: Address = Address::from(SocketAddr::from(([127, 0, 0, 1], 1)));
    let _: Address = Address::from((IpAddr::V4(Ipv4Addr::LOCALHOST), 1));
    let _: Address = Address::from(([127, 0, 0, 1], 1));
    let _: fn(&str) -> io::Result<TcpListener> = net::listen;
    let _: fn(u16) -> io::Result<TcpListener> = net::listen_port;
    let _: fn(&str, u16) -> io::Result<Vec<Address>> = net::resolve;
    let _: fn(&str, u16) -> io::Result<Address> = net::resolve_first;
    let _ = Keepalive { time: Some(Duration::from_secs(1)), interval: None, retries: Some(3) } == Keepalive::default();
}

fn tcp_items() {
    let _: fn() -> io::Result<TcpSocket> = TcpSocket::new_v4;
    let _: fn() -> io::Result<TcpSocket> = TcpSocket::new_v6;
    let _: fn(&TcpSocket, bool) -> io::Result<()> = TcpSocket::set_reuse_addr;
    let _: fn(&TcpSocket) -> io::Result<bool> = TcpSocket::reuse_addr;
    let _: fn(&TcpSocket, bool) -> io::Result<()> = TcpSocket::set_reuse_port;
    let _: fn(&TcpSocket) -> io::Result<bool> = TcpSocket::reuse_port;
    let _: fn(&TcpSocket, usize) -> io::Result<()> = TcpSocket::set_send_buffer_size;
    let _: fn(&TcpSocket) -> io::Result<usize> = TcpSocket::send_buffer_size;
    let _: fn(&TcpSocket, usize) -> io::Result<()> = TcpSocket::set_recv_buffer_size;
    let _: fn(&TcpSocket) -> io::Result<usize> = TcpSocket::recv_buffer_size;
    let _: fn(&TcpSocket, bool) -> io::Result<()> = TcpSocket::set_nodelay;
    let _: fn(&TcpSocket) -> io::Result<bool> = TcpSocket::nodelay;
    let _: fn(&TcpSocket, Option<Keepalive>) -> io::Result<()> = TcpSocket::set_keepalive;
    let _: fn(&TcpSocket) -> io::Result<Option<Keepalive>> = TcpSocket::keepalive;
    let _: fn(&TcpSocket, Option<Duration>) -> io::Result<()> = TcpSocket::set_linger;
    let _: fn(&TcpSocket) -> io::Result<Option<Duration>> = TcpSocket::linger;
    let _: fn(&TcpSocket) -> io::Result<Address> = TcpSocket::local_addr;
    let _: fn(&TcpListener) -> io::Result<Option<AcceptResult>> = TcpListener::try_accept;
    let _: fn(&TcpListener) -> io::Result<Address> = TcpListener::local_addr;
    let _: fn(std::net::TcpListener) -> io::Result<TcpListener> = TcpListener::from_std;
    let _: fn(TcpListener) -> io::Result<std::net::TcpListener> = TcpListener::into_std;
    let _: fn(std::net::TcpStream) -> io::Result<TcpStream> = TcpStream::from_std;
    let _: fn(TcpStream) -> io::Result<std::net::TcpStream> = TcpStream::into_std;
    let _: fn(&TcpStream, &mut [u8]) -> io::Result<Option<usize>> = TcpStream::try_read;
    let _: fn(&TcpStream, &mut [u8]) -> io::Result<Option<usize>> = TcpStream::try_peek;
    let _: fn(&TcpStream, &[u8]) -> io::Result<Option<usize>> = TcpStream::try_write;
    let _: for<'a, 'b> fn(&TcpStream, &mut [IoSliceMut<'a>]) -> io::Result<Option<usize>> =
        TcpStream::try_read_vectored;
    let _: for<'a> fn(&TcpStream, &[IoSlice<'a>]) -> io::Result<Option<usize>> = TcpStream::try_write_vectored;
    let _: fn(&TcpStream, Shutdown) -> io::Result<()> = TcpStream::shutdown;
    let _: fn(TcpStream) -> (net::tcp::OwnedReadHalf, net::tcp::OwnedWriteHalf) = TcpStream::into_split;
    let _: fn(&TcpStream) -> io::Result<Address> = TcpStream::local_addr;
    let _: fn(&TcpStream) -> io::Result<Address> = TcpStream::peer_addr;
    let _: fn(&TcpStream, bool) -> io::Result<()> = TcpStream::set_nodelay;
    let _: fn(&TcpStream) -> io::Result<bool> = TcpStream::nodelay;
    let _: fn(&TcpStream, u32) -> io::Result<()> = TcpStream::set_ttl;
    let _: fn(&TcpStream) -> io::Result<u32> = TcpStream::ttl;
    let _: fn(&TcpStream, Option<Duration>) -> io::Result<()> = TcpStream::set_linger;
    let _: fn(&TcpStream, Option<Keepalive>) -> io::Result<()> = TcpStream::set_keepalive;
    let _: fn(&TcpStream) -> io::Result<Option<io::Error>> = TcpStream::take_error;
    fn send_static<T: Send + 'static>() {}
    send_static::<net::tcp::OwnedReadHalf>();
    send_static::<net::tcp::OwnedWriteHalf>();
    let _ = Interest::READABLE | Interest::WRITABLE;
    let _: fn(Ready) -> bool = Ready::is_readable;
    let _: fn(Ready) -> bool = Ready::is_writable;
    let _: fn(Ready) -> bool = Ready::is_read_closed;
    let _: fn(Ready) -> bool = Ready::is_write_closed;
}

async fn tcp_async_items(s: TcpSocket, l: &TcpListener, mut st: TcpStream, buf: &mut [u8]) -> io::Result<()> {
    let _: TcpStream = net::connect("127.0.0.1:1").await?;
    let _: Vec<Address> = net::lookup_host("localhost", 1).await?;
    let _: TcpStream = net::connect_host("localhost", 1).await?;
    let _: io::Result<()> = s.bind(Address::from_port(0));
    let _: TcpStream = TcpSocket::new_v4()?.connect(Address::from_port(1)).await?;
    let _: TcpListener = s.listen(Address::from_port(0), 128)?;
    let _: TcpListener = TcpListener::bind(Address::from_port(0))?;
    let AcceptResult { stream, peer_addr }: AcceptResult = l.accept().await?;
    let _: (TcpStream, Address) = (stream, peer_addr);
    let _: TcpStream = TcpStream::connect(Address::from_port(1)).await?;
    let _: usize = st.read(buf).await?;
    let _: usize = st.peek(buf).await?;
    let _: usize = st.write(b"x").await?;
    st.write_all(b"x").await?;
    st.readable().await?;
    st.writable().await?;
    let _: Ready = st.ready(Interest::READABLE).await?;
    {
        let (mut r, mut w): (net::tcp::ReadHalf<'_>, net::tcp::WriteHalf<'_>) = st.split();
        let _: Option<usize> = r.try_read(buf)?;
        let _: Option<usize> = r.try_peek(buf)?;
        let _: usize = r.read(buf).await?;
        let _: usize = r.peek(buf).await?;
        r.readable().await?;
        let _: Address = r.peer_addr()?;
        let _: Address = r.local_addr()?;
        let _: Option<usize> = w.try_write(b"x")?;
        let _: usize = w.write(b"x").await?;
        w.write_all(b"x").await?;
        w.writable().await?;
        w.shutdown()?;
        let _: Address = w.peer_addr()?;
        let _: Address = w.local_addr()?;
    }
    let (r, w) = st.into_split();
    let _: Result<TcpStream, net::tcp::ReuniteError> = r.reunite(w);
    Ok(())
}

fn udp_items() {
    let _: fn() -> io::Result<UdpSocket> = UdpSocket::unbound;
    let _: fn(std::net::UdpSocket) -> io::Result<UdpSocket> = UdpSocket::from_std;
    let _: fn(&UdpSocket, &mut [u8]) -> io::Result<Option<RecvFromResult>> = UdpSocket::try_recv_from;
    let _: fn(&UdpSocket, &mut [u8]) -> io::Result<Option<RecvFromResult>> = UdpSocket::try_peek_from;
    let _: fn(&UdpSocket, &[u8]) -> io::Result<Option<usize>> = UdpSocket::try_send;
    let _: fn(&UdpSocket, &mut [u8]) -> io::Result<Option<usize>> = UdpSocket::try_recv;
    let _: fn(&UdpSocket) -> io::Result<Address> = UdpSocket::local_addr;
    let _: fn(&UdpSocket) -> io::Result<Address> = UdpSocket::peer_addr;
    let _: fn(&UdpSocket, bool) -> io::Result<()> = UdpSocket::set_broadcast;
    let _: fn(&UdpSocket) -> io::Result<bool> = UdpSocket::broadcast;
    let _: fn(&UdpSocket, bool) -> io::Result<()> = UdpSocket::set_reuse_addr;
    let _: fn(&UdpSocket, bool) -> io::Result<()> = UdpSocket::set_multicast_loop_v4;
    let _: fn(&UdpSocket) -> io::Result<bool> = UdpSocket::multicast_loop_v4;
    let _: fn(&UdpSocket, u32) -> io::Result<()> = UdpSocket::set_multicast_ttl_v4;
    let _: fn(&UdpSocket) -> io::Result<u32> = UdpSocket::multicast_ttl_v4;
    let _: fn(&UdpSocket, bool) -> io::Result<()> = UdpSocket::set_multicast_loop_v6;
    let _: fn(&UdpSocket, u32) -> io::Result<()> = UdpSocket::set_ttl;
    let _: fn(&UdpSocket) -> io::Result<u32> = UdpSocket::ttl;
    let _: fn(&UdpSocket, u32) -> io::Result<()> = UdpSocket::set_tos;
    let _: fn(&UdpSocket) -> io::Result<u32> = UdpSocket::tos;
    let _: fn(&UdpSocket, Ipv4Addr, Ipv4Addr) -> io::Result<()> = UdpSocket::join_multicast_v4;
    let _: fn(&UdpSocket, Ipv4Addr, Ipv4Addr) -> io::Result<()> = UdpSocket::leave_multicast_v4;
    let _: fn(&UdpSocket, &Ipv6Addr, u32) -> io::Result<()> = UdpSocket::join_multicast_v6;
    let _: fn(&UdpSocket, &Ipv6Addr, u32) -> io::Result<()> = UdpSocket::leave_multicast_v6;
    let _: fn(&UdpSocket) -> io::Result<Option<io::Error>> = UdpSocket::take_error;
    let RecvFromResult { len, addr, truncated }: RecvFromResult =
        RecvFromResult { len: 0, addr: Address::from_port(0), truncated: false };
    let _: (usize, Address, bool) = (len, addr, truncated);
}

async fn udp_async_items(u: &UdpSocket, buf: &mut [u8]) -> io::Result<()> {
    let _: UdpSocket = UdpSocket::bind(Address::from_port(0))?;
    let _: Option<usize> = u.try_send_to(b"x", Address::from_port(1))?;
    let _: usize = u.send_to(b"x", Address::from_port(1)).await?;
    let _: RecvFromResult = u.recv_from(buf).await?;
    u.connect(Address::from_port(1))?;
    let _: usize = u.send(b"x").await?;
    let _: usize = u.recv(buf).await?;
    u.readable().await?;
    u.writable().await?;
    Ok(())
}

fn unix_items() {
    let _: fn() -> io::Result<(UnixStream, UnixStream)> = UnixStream::pair;
    let _: fn(&UnixStream) -> io::Result<UCred> = UnixStream::peer_cred;
    let _: fn(&UnixStream, &mut [u8]) -> io::Result<Option<usize>> = UnixStream::try_read;
    let _: fn(&UnixStream, &[u8]) -> io::Result<Option<usize>> = UnixStream::try_write;
    let _: fn(&UnixStream, Shutdown) -> io::Result<()> = UnixStream::shutdown;
    let _: fn(&UnixStream) -> io::Result<UnixAddr> = UnixStream::local_addr;
    let _: fn(&UnixStream) -> io::Result<UnixAddr> = UnixStream::peer_addr;
    let _: fn(UnixStream) -> (net::unix::OwnedReadHalf, net::unix::OwnedWriteHalf) = UnixStream::into_split;
    let _: fn(&UnixListener) -> io::Result<Option<UnixAcceptResult>> = UnixListener::try_accept;
    let _: fn(&UnixListener) -> io::Result<UnixAddr> = UnixListener::local_addr;
    let _: fn() -> io::Result<UnixDatagram> = UnixDatagram::unbound;
    let _: fn() -> io::Result<(UnixDatagram, UnixDatagram)> = UnixDatagram::pair;
    let _: fn(&UnixDatagram, &[u8]) -> io::Result<Option<usize>> = UnixDatagram::try_send;
    let _: fn(&UnixDatagram, &mut [u8]) -> io::Result<Option<usize>> = UnixDatagram::try_recv;
    let _: fn(&UnixDatagram, &[u8], &UnixAddr) -> io::Result<Option<usize>> = UnixDatagram::try_send_to;
    let _: fn(&UnixDatagram, &mut [u8]) -> io::Result<Option<UnixRecvFromResult>> = UnixDatagram::try_recv_from;
    let _: fn(&UnixDatagram) -> io::Result<UnixAddr> = UnixDatagram::local_addr;
    let _: fn(&UnixDatagram) -> io::Result<UnixAddr> = UnixDatagram::peer_addr;
    let _: fn(&[u8]) -> io::Result<UnixAddr> = UnixAddr::from_abstract_name;
    let _: fn(&UnixAddr) -> Option<&Path> = UnixAddr::as_pathname;
    let _: fn(&UnixAddr) -> bool = UnixAddr::is_unnamed;
    let UnixRecvFromResult { len, addr, truncated }: UnixRecvFromResult = UnixRecvFromResult {
        len: 0,
        addr: UnixAddr::from_path("/x").unwrap_or_else(|_| unreachable!()),
        truncated: false,
    };
    let _: (usize, UnixAddr, bool) = (len, addr, truncated);
}

async fn unix_async_items(p: &Path, d: &UnixDatagram, a: &UnixAddr, buf: &mut [u8]) -> io::Result<()> {
    let mut s: UnixStream = UnixStream::connect(p).await?;
    let _: usize = s.read(buf).await?;
    let _: usize = s.write(b"x").await?;
    s.write_all(b"x").await?;
    s.readable().await?;
    s.writable().await?;
    let _: Ready = s.ready(Interest::READABLE).await?;
    let _ = s.split();
    let l: UnixListener = UnixListener::bind(p)?;
    let UnixAcceptResult { stream, peer_addr }: UnixAcceptResult = l.accept().await?;
    let _: (UnixStream, UnixAddr) = (stream, peer_addr);
    let _: UnixDatagram = UnixDatagram::bind(p)?;
    d.connect(p)?;
    let _: usize = d.send(b"x").await?;
    let _: usize = d.recv(buf).await?;
    let _: usize = d.send_to(b"x", a).await?;
    let _: UnixRecvFromResult = d.recv_from(buf).await?;
    let _: UnixAddr = UnixAddr::from_path(p)?;
    Ok(())
}

#[test]
fn api_md_contract_compiles() {
    // The functions above are checked by the compiler; running the sync ones only
    // coerces function pointers and builds values, without touching the network.
    address_items();
    tcp_items();
    udp_items();
    unix_items();
    // The async checks are only type-checked: building the futures must not run them.
    fn assert_future<F: std::future::Future>(_: &F) {}
    let rt = Runtime::new().expect("runtime");
    let h = rt.handle().clone();
    let f = runtime_async_items(&rt, &h);
    assert_future(&f);
    drop(f);
}
