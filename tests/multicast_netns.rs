//! IPv4 multicast, end to end, inside a private network namespace.
//!
//! `multicast_exchange_in_private_netns` re-runs this test binary under
//! `unshare --net` (falling back to `unshare --net --map-root-user` when not root), with
//! an environment variable that makes the child run the exchange: it brings the
//! namespace's `lo` up with multicast on, routes `224.0.0.0/4` to it, and then runs the
//! `multicast` example's subscriber/publisher exchange (two subscribers sharing a port,
//! leave, join again). If the namespace cannot be made (no `unshare`, not permitted),
//! the test prints a SKIP note and passes. No datagram leaves the namespace.
//!
//! The other tests check option round-trips and join/leave on the host's loopback,
//! without sending any multicast traffic.

use std::io;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::process::Command;
use std::time::Duration;

use blitz_io::net::{Address, UdpSocket};
use blitz_io::time::timeout;

#[path = "../examples/multicast.rs"]
#[allow(dead_code)]
mod multicast;

/// Set in the child's environment: "you are inside the namespace, run the exchange".
const CHILD_ENV: &str = "BLITZ_IO_MULTICAST_NETNS_CHILD";
/// Printed by the child when the exchange succeeded.
const CHILD_OK: &str = "BLITZ_IO_MULTICAST_NETNS_OK";
const TEST_NAME: &str = "multicast_exchange_in_private_netns";

#[test]
fn multicast_exchange_in_private_netns() {
    if std::env::var_os(CHILD_ENV).is_some() {
        run_child();
        return;
    }
    let exe = std::env::current_exe().unwrap();
    let mut last_refusal = String::new();
    for flags in [&["--net"][..], &["--net", "--map-root-user"][..]] {
        let out = match Command::new("unshare")
            .args(flags)
            .arg("--")
            .arg(&exe)
            .args([TEST_NAME, "--exact", "--nocapture", "--test-threads=1"])
            .env(CHILD_ENV, "1")
            .output()
        {
            Ok(out) => out,
            Err(e) => {
                eprintln!("SKIP {TEST_NAME}: cannot run `unshare` ({e})");
                return;
            }
        };
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        if stdout.contains(CHILD_OK) {
            assert!(out.status.success(), "child printed OK but failed:\n{stdout}\n{stderr}");
            return;
        }
        // Did the child test binary start at all? If so, its failure is real.
        if stdout.contains("running 1 test") {
            panic!(
                "multicast exchange failed inside the namespace ({})\nstdout:\n{stdout}\nstderr:\n{stderr}",
                out.status
            );
        }
        last_refusal = format!("unshare {}: {} {}", flags.join(" "), out.status, stderr.trim());
    }
    eprintln!("SKIP {TEST_NAME}: cannot create a private network namespace ({last_refusal})");
}

/// Runs `ip` inside the namespace.
fn ip(args: &[&str]) {
    let out = Command::new("ip").args(args).output().expect("`ip` (iproute2) is needed inside the namespace");
    assert!(out.status.success(), "ip {}: {}", args.join(" "), String::from_utf8_lossy(&out.stderr));
}

/// Inside the private namespace: configure loopback for multicast, run the exchange.
fn run_child() {
    ip(&["link", "set", "lo", "up", "multicast", "on"]);
    ip(&["route", "add", "224.0.0.0/4", "dev", "lo"]);

    let rt = blitz_io::runtime::Builder::new_multi_thread().worker_threads(2).build().unwrap();
    rt.block_on(async {
        timeout(Duration::from_secs(20), exchange()).await.expect("exchange timed out").unwrap();
    });
    println!("{CHILD_OK}");
}

async fn exchange() -> io::Result<()> {
    let group = Ipv4Addr::new(239, 255, 0, 77);
    let iface = Ipv4Addr::LOCALHOST;

    // 1. The example's exchange: two subscribers sharing a port each get every message,
    //    in order, from the publisher's address.
    let [first, second] = multicast::run(group, iface, 10).await?;
    for got in [&first, &second] {
        let texts: Vec<&str> = got.iter().map(|(m, _)| m.as_str()).collect();
        let want: Vec<String> = (0..10).map(multicast::message).collect();
        assert_eq!(texts, want);
        assert!(got.iter().all(|(_, from)| from.ip() == iface));
    }

    // 2. Leaving stops delivery to that socket only. (Linux delivers every group joined
    //    anywhere on the host to wildcard-bound sockets unless IP_MULTICAST_ALL is off.)
    let a = multicast::subscribe(0, group, iface)?;
    let port = a.local_addr()?.port();
    let b = multicast::subscribe(port, group, iface)?;
    a.set_multicast_all_v4(false)?;
    b.set_multicast_all_v4(false)?;
    let publisher = multicast::publisher(iface)?;
    let to = Address::from((group, port));
    a.leave_multicast_v4(group, iface)?;
    publisher.send_to(b"after leave", to).await?;
    let mut buf = [0u8; 64];
    let r = timeout(Duration::from_secs(2), b.recv_from(&mut buf)).await??;
    assert_eq!(&buf[..r.len], b"after leave");
    assert!(
        timeout(Duration::from_millis(200), a.recv_from(&mut buf)).await.is_err(),
        "a socket that left the group still received"
    );

    // 3. Joining again resumes delivery.
    a.join_multicast_v4(group, iface)?;
    publisher.send_to(b"rejoined", to).await?;
    let r = timeout(Duration::from_secs(2), a.recv_from(&mut buf)).await??;
    assert_eq!(&buf[..r.len], b"rejoined");
    let r = timeout(Duration::from_secs(2), b.recv_from(&mut buf)).await??;
    assert_eq!(&buf[..r.len], b"rejoined");

    // 4. A socket on the port that never joined hears nothing with IP_MULTICAST_ALL
    //    off, while members do. (IP_MULTICAST_LOOP is not checked here: on `lo` the
    //    "transmitted" copy comes straight back in, so turning it off changes nothing.)
    let outsider = UdpSocket::bind_reuse_addr(Address::from_port(port))?;
    outsider.set_multicast_all_v4(false)?;
    publisher.send_to(b"members only", to).await?;
    let r = timeout(Duration::from_secs(2), b.recv_from(&mut buf)).await??;
    assert_eq!(&buf[..r.len], b"members only");
    let r = timeout(Duration::from_secs(2), a.recv_from(&mut buf)).await??;
    assert_eq!(&buf[..r.len], b"members only");
    assert!(
        timeout(Duration::from_millis(200), outsider.recv_from(&mut buf)).await.is_err(),
        "a socket that never joined received group traffic"
    );
    Ok(())
}

// ===== on the host: options and membership, no traffic =====

#[test]
fn multicast_options_round_trip_v4() {
    let s = UdpSocket::bind_reuse_addr(Address::from_port(0)).unwrap();
    assert!(s.reuse_addr().unwrap());
    assert!(s.multicast_loop_v4().unwrap());
    s.set_multicast_loop_v4(false).unwrap();
    assert!(!s.multicast_loop_v4().unwrap());
    s.set_multicast_loop_v4(true).unwrap();
    assert!(s.multicast_loop_v4().unwrap());
    s.set_multicast_ttl_v4(8).unwrap();
    assert_eq!(s.multicast_ttl_v4().unwrap(), 8);
    s.set_multicast_if_v4(Ipv4Addr::LOCALHOST).unwrap();
    assert_eq!(s.multicast_if_v4().unwrap(), Ipv4Addr::LOCALHOST);

    let group = Ipv4Addr::new(239, 255, 1, 2);
    s.join_multicast_v4(group, Ipv4Addr::LOCALHOST).unwrap();
    // Joining twice is an error; leaving twice too.
    assert!(s.join_multicast_v4(group, Ipv4Addr::LOCALHOST).is_err());
    s.leave_multicast_v4(group, Ipv4Addr::LOCALHOST).unwrap();
    assert!(s.leave_multicast_v4(group, Ipv4Addr::LOCALHOST).is_err());
    // A unicast "group" is invalid.
    assert!(s.join_multicast_v4(Ipv4Addr::new(10, 0, 0, 1), Ipv4Addr::LOCALHOST).is_err());
}

#[test]
fn two_subscribers_share_a_port_only_with_reuse_addr() {
    let first = multicast::subscribe(0, Ipv4Addr::new(239, 255, 1, 3), Ipv4Addr::LOCALHOST).unwrap();
    let port = first.local_addr().unwrap().port();
    let second = multicast::subscribe(port, Ipv4Addr::new(239, 255, 1, 3), Ipv4Addr::LOCALHOST).unwrap();
    assert_eq!(second.local_addr().unwrap().port(), port);
    let err = UdpSocket::bind(Address::from_port(port)).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::AddrInUse);
}

#[test]
fn multicast_options_round_trip_v6() {
    let Ok(s) = UdpSocket::bind(Address::loopback_v6(0)) else {
        eprintln!("SKIP multicast_options_round_trip_v6: this host has no ::1");
        return;
    };
    assert!(s.multicast_loop_v6().unwrap());
    s.set_multicast_loop_v6(false).unwrap();
    assert!(!s.multicast_loop_v6().unwrap());

    // Interface-local scope on the loopback interface (index from sysfs; 1 on Linux).
    let lo = std::fs::read_to_string("/sys/class/net/lo/ifindex").ok().and_then(|s| s.trim().parse().ok()).unwrap_or(1);
    let group: Ipv6Addr = "ff01::1:3".parse().unwrap();
    match s.join_multicast_v6(&group, lo) {
        Ok(()) => s.leave_multicast_v6(&group, lo).unwrap(),
        Err(e) => eprintln!("note: IPv6 multicast join on lo refused here ({e}); leave not checked"),
    }
    assert!(s.leave_multicast_v6(&"ff01::1:4".parse().unwrap(), lo).is_err());
}
