//! UDP multicast: the seed's "UDP Multicast Subscriber", as a real subscriber/publisher
//! pair on the loopback interface.
//!
//! Two subscribers share one port (each sets `SO_REUSEADDR` before binding, through
//! `UdpSocket::bind_reuse_addr`) and join the group `239.255.42.99` on the loopback
//! interface (`127.0.0.1`). A publisher sends its datagrams out of the loopback
//! interface (`IP_MULTICAST_IF`), with `IP_MULTICAST_LOOP` on so this host hears them
//! and a TTL of 1 so they never leave it. Every subscriber receives every message; then
//! they leave the group.
//!
//! `cargo run --example multicast [count]`. Nothing leaves the host.
//!
//! On Linux this works on `lo` as configured by default. In a fresh network namespace,
//! first bring loopback up with multicast and give multicast a route:
//!
//! ```text
//! ip link set lo up multicast on
//! ip route add 224.0.0.0/4 dev lo
//! ```
//!
//! The exchange is also run by `tests/multicast_netns.rs`, inside a private namespace.

use std::io;
use std::net::Ipv4Addr;
use std::time::Duration;

use blitz_io::net::{Address, UdpSocket};
use blitz_io::time::{sleep, timeout};

/// The group the demo uses: in the administratively scoped (site-local) block.
pub const GROUP: Ipv4Addr = Ipv4Addr::new(239, 255, 42, 99);
/// The interface the demo joins and publishes on, named by its address.
pub const IFACE: Ipv4Addr = Ipv4Addr::LOCALHOST;

/// A subscriber: binds `0.0.0.0:port` with `SO_REUSEADDR` (so several subscribers on the
/// host can share the port) and joins `group` on `iface`. Port 0 picks a free port.
///
/// # Errors
///
/// `AddrInUse` if a socket without `SO_REUSEADDR` holds the port; an error from the join
/// if the interface cannot do multicast.
pub fn subscribe(port: u16, group: Ipv4Addr, iface: Ipv4Addr) -> io::Result<UdpSocket> {
    let socket = UdpSocket::bind_reuse_addr(Address::from_port(port))?;
    socket.join_multicast_v4(group, iface)?;
    Ok(socket)
}

/// A publisher: sends out of `iface`, heard on this host, never routed past it.
///
/// # Errors
///
/// `AddrNotAvailable` if no interface has the address `iface`.
pub fn publisher(iface: Ipv4Addr) -> io::Result<UdpSocket> {
    let socket = UdpSocket::bind(Address::from((iface, 0)))?;
    socket.set_multicast_if_v4(iface)?;
    socket.set_multicast_loop_v4(true)?;
    socket.set_multicast_ttl_v4(1)?;
    Ok(socket)
}

/// Receives `count` datagrams on `socket`, each within `per_message`.
///
/// # Errors
///
/// `TimedOut` if a message does not arrive in time.
pub async fn receive(socket: &UdpSocket, count: usize, per_message: Duration) -> io::Result<Vec<(String, Address)>> {
    let mut got = Vec::with_capacity(count);
    let mut buf = [0u8; 1500];
    while got.len() < count {
        let r = timeout(per_message, socket.recv_from(&mut buf)).await.map_err(|_| {
            io::Error::new(
                io::ErrorKind::TimedOut,
                format!(
                    "multicast message {} of {count} did not arrive; can this host's loopback interface do multicast?",
                    got.len() + 1
                ),
            )
        })??;
        got.push((String::from_utf8_lossy(&buf[..r.len]).into_owned(), r.addr));
    }
    Ok(got)
}

/// The message number `seq` of the demo.
pub fn message(seq: usize) -> String {
    format!("heartbeat:node-42:healthy:seq={seq}")
}

/// Runs the exchange: two subscribers sharing a port, one publisher sending `count`
/// messages to `group`. Returns what each subscriber received, in order.
///
/// # Errors
///
/// Any socket error, or `TimedOut` if the host delivers no multicast on `iface`.
pub async fn run(group: Ipv4Addr, iface: Ipv4Addr, count: usize) -> io::Result<[Vec<(String, Address)>; 2]> {
    let first = subscribe(0, group, iface)?;
    let port = first.local_addr()?.port();
    let second = subscribe(port, group, iface)?;

    // Each subscriber receives in its own task. Both are bound and joined already, so
    // datagrams queue in their buffers even if the tasks start after the first send.
    let per_message = Duration::from_secs(2);
    let listen = |socket: UdpSocket| {
        blitz_io::task::spawn(async move {
            let got = receive(&socket, count, per_message).await;
            // Leaving is also what closing the socket does; spelled out as in the seed.
            socket.leave_multicast_v4(group, iface)?;
            got
        })
    };
    let (first, second) = (listen(first), listen(second));

    let publisher = publisher(iface)?;
    let to = Address::from((group, port));
    for seq in 0..count {
        publisher.send_to(message(seq).as_bytes(), to).await?;
        // Pace the feed like a heartbeat (and spare the receive buffers).
        sleep(Duration::from_millis(2)).await;
    }

    let joined = |r: Result<io::Result<_>, blitz_io::task::JoinError>| r.map_err(io::Error::other)?;
    Ok([joined(first.await)?, joined(second.await)?])
}

fn main() {
    let count = std::env::args().nth(1).and_then(|s| s.parse().ok()).unwrap_or(5);
    match blitz_io::run(run(GROUP, IFACE, count)) {
        Ok(subscribers) => {
            for (i, messages) in subscribers.iter().enumerate() {
                for (msg, from) in messages {
                    println!("subscriber {i}: {msg} (from {from})");
                }
            }
        }
        Err(e) => {
            eprintln!("multicast: {e}");
            std::process::exit(1);
        }
    }
}
