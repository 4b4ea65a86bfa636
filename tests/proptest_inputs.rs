//! Bad-input hardening on the stable toolchain: property tests over the same inputs the
//! fuzz targets in `fuzz/` explore (see CONTRIBUTING.md, "Fuzzing").
//!
//! * [`Address::parse`] never panics on any string; every rejection is an
//!   `InvalidInput` error with a message; every accepted string yields an address whose
//!   `Display` text parses back to the same address; `Display` of any socket address
//!   parses back to it.
//! * [`UnixAddr::from_path`] and [`UnixAddr::from_abstract_name`] never panic on any
//!   bytes and accept exactly the inputs that fit in `sockaddr_un`.
//! * The timer wheel's model test lives next to the wheel, where it can see the private
//!   slab: `src/time/wheel.rs`, `tests::matches_btreemap_model` (run by
//!   `cargo test --lib wheel`).
//! * With `--features fuzzing`, the fuzzers' own drivers (`blitz_io::__fuzz`) are run here
//!   too: the wheel model on decoded byte strings, and spawn / abort / yield / wake /
//!   drop-handle / await sequences on a current-thread runtime's run queue
//!   (`cargo test --features fuzzing --test proptest_inputs`).
//!
//! Each test runs its whole property under a watchdog, so a hang fails the test.

mod support;

use std::ffi::OsStr;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use blitz_io::net::{Address, UnixAddr};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};

use support::with_timeout;

/// Seconds a whole property may take before the test counts as hung.
const LIMIT_SECS: u64 = 120;

/// Longest `sun_path` content: the array size minus the terminating (or leading) NUL.
#[cfg(any(target_os = "linux", target_os = "android"))]
const SUN_PATH_MAX: usize = 107;
#[cfg(not(any(target_os = "linux", target_os = "android")))]
const SUN_PATH_MAX: usize = 103;

/// Runs `test` on `cases` values of `strategy` under a watchdog; a failure reports the
/// minimal input proptest shrank it to.
fn check<S>(cases: u32, strategy: S, test: fn(S::Value) -> Result<(), TestCaseError>)
where
    S: Strategy + Send + 'static,
    S::Value: std::fmt::Debug,
{
    with_timeout(LIMIT_SECS, move || {
        let mut runner = TestRunner::new(Config { cases, failure_persistence: None, ..Config::default() });
        if let Err(e) = runner.run(&strategy, test) {
            panic!("{e}");
        }
    });
}

// ===== Address::parse =====

/// Strings near the address grammar: digits, hex, separators, brackets, scope marks,
/// and now and then a letter, a space or a non-ASCII character.
fn addressish() -> impl Strategy<Value = String> {
    prop_oneof![
        "[0-9a-fA-F:.\\[\\]%]{0,48}",
        "[0-9]{1,4}(\\.[0-9]{1,4}){0,4}(:[0-9]{0,7})?",
        "\\[[0-9a-fA-F:.]{0,45}(%[0-9a-z]{0,11})?\\](:[0-9+-]{0,7})?",
        "[ a-zA-Z0-9_.:\\-\\[\\]]{0,32}",
        ".{0,24}",
        any::<String>(),
    ]
}

/// Any IP socket address std can format; the IPv6 flow label (no text form) is zero.
fn socket_addr() -> impl Strategy<Value = SocketAddr> {
    prop_oneof![
        (any::<u32>(), any::<u16>()).prop_map(|(ip, port)| SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::from(ip), port))),
        (any::<u128>(), any::<u16>(), prop_oneof![Just(0u32), any::<u32>()])
            .prop_map(|(ip, port, scope)| SocketAddr::V6(SocketAddrV6::new(Ipv6Addr::from(ip), port, 0, scope))),
        (any::<[u8; 4]>(), any::<u16>()).prop_map(|(v4, port)| {
            // IPv4-mapped and IPv4-compatible IPv6 addresses print in dotted form.
            SocketAddr::new(IpAddr::V6(Ipv4Addr::from(v4).to_ipv6_mapped()), port)
        }),
    ]
}

/// The checks every parse result must pass, whatever the input.
fn parse_is_total(s: &str) -> Result<(), TestCaseError> {
    match Address::parse(s) {
        Ok(addr) => {
            // Agrees with std's parser, which is the grammar's reference.
            prop_assert_eq!(Ok(addr.to_std()), s.parse::<SocketAddr>().map_err(|_| ()));
            let text = addr.to_string();
            let again = Address::parse(&text);
            prop_assert!(again.is_ok(), "{:?} printed as {:?}, which fails to parse", s, text);
            prop_assert_eq!(again.ok(), Some(addr));
            prop_assert_eq!(s.parse::<Address>().ok(), Some(addr));
        }
        Err(e) => {
            prop_assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
            let msg = e.to_string();
            prop_assert!(!msg.is_empty());
            prop_assert!(s.parse::<SocketAddr>().is_err(), "{:?} rejected but std accepts it", s);
            prop_assert!(s.parse::<Address>().is_err());
        }
    }
    Ok(())
}

#[test]
fn address_parse_never_panics_on_arbitrary_strings() {
    check(4_000, addressish(), |s| parse_is_total(&s));
}

#[test]
fn address_parse_survives_mutated_valid_addresses() {
    // Take a valid address's text and damage it at one spot: every near miss must be an
    // error (or still a valid address), never a panic.
    let strategy = (socket_addr(), any::<prop::sample::Index>(), 0u8..4, any::<char>());
    check(4_000, strategy, |(addr, at, how, c)| {
        let text = addr.to_string();
        let chars: Vec<char> = text.chars().collect();
        let i = at.index(chars.len() + 1);
        let mut mutated: Vec<char> = chars.clone();
        match how {
            0 => mutated.insert(i, c),
            1 if i < chars.len() => {
                mutated.remove(i);
            }
            2 if i < chars.len() => mutated[i] = c,
            _ => mutated.truncate(i),
        }
        let mutated: String = mutated.into_iter().collect();
        parse_is_total(&mutated)
    });
}

#[test]
fn address_display_round_trips() {
    check(4_000, socket_addr(), |sa| {
        let addr = Address::from(sa);
        let text = addr.to_string();
        prop_assert_eq!(&text, &sa.to_string());
        let parsed = Address::parse(&text);
        prop_assert!(parsed.is_ok(), "{:?} does not parse: {:?}", text, parsed.err());
        prop_assert_eq!(parsed.ok(), Some(addr));
        prop_assert_eq!(addr.port(), sa.port());
        prop_assert_eq!(addr.ip(), sa.ip());
        prop_assert_eq!(format!("{addr:?}"), text);
        Ok(())
    });
}

#[test]
fn address_parse_errors_name_the_problem() {
    // Fixed inputs for the classes the docs promise a specific message for.
    let cases: &[(&str, &str)] = &[
        ("", "empty"),
        ("1.2.3.4", "missing a port"),
        ("[::1]", "missing a port"),
        ("1.2.3.4:65536", "out of range"),
        ("1.2.3.4:99999999999999999999", "out of range"),
        ("1.2.3.4:http", "not a number"),
        ("::1:80", "brackets"),
        ("localhost:80", "resolve"),
        ("[fe80::1%eth0]:80", "numeric interface index"),
        (" 1.2.3.4:80", "whitespace"),
        ("[::1", "matching ']'"),
    ];
    for (input, needle) in cases {
        let err = Address::parse(input).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput, "{input:?}");
        let msg = err.to_string();
        assert!(msg.contains(needle), "{input:?}: {msg:?} lacks {needle:?}");
    }
}

// ===== UnixAddr =====

/// Byte strings around the interesting lengths, with and without NUL bytes.
fn path_bytes() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..=220),
        prop::collection::vec(1u8..=255, (SUN_PATH_MAX - 2)..=(SUN_PATH_MAX + 2)),
        prop::collection::vec(prop_oneof![Just(b'/'), Just(b'a'), Just(0u8)], 0..=8),
        "[/a-z0-9._-]{0,120}".prop_map(String::into_bytes),
    ]
}

#[test]
fn unix_from_path_enforces_length_and_never_panics() {
    check(4_000, path_bytes(), |bytes| {
        let path = Path::new(OsStr::from_bytes(&bytes));
        let nul = bytes.iter().position(|&b| b == 0);
        let fits = !bytes.is_empty() && nul.is_none() && bytes.len() <= SUN_PATH_MAX;
        match UnixAddr::from_path(path) {
            Ok(addr) => {
                prop_assert!(fits, "{:?} accepted ({} bytes)", path, bytes.len());
                prop_assert_eq!(addr.as_pathname(), Some(path));
                prop_assert_eq!(addr.as_abstract_name(), None);
                prop_assert!(!addr.is_unnamed());
                prop_assert_eq!(addr.to_string(), path.display().to_string());
                let std_addr = addr.to_std();
                prop_assert!(std_addr.is_ok(), "{:?}", std_addr.err());
                if let Ok(std_addr) = std_addr {
                    prop_assert_eq!(std_addr.as_pathname(), Some(path));
                    prop_assert_eq!(UnixAddr::from(std_addr), addr.clone());
                }
                prop_assert_eq!(UnixAddr::from_path(path).ok(), Some(addr));
            }
            Err(e) => {
                prop_assert!(!fits, "{:?} rejected: {}", path, e);
                prop_assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
                let msg = e.to_string();
                if bytes.is_empty() {
                    prop_assert!(msg.contains("empty"), "{}", msg);
                } else if let Some(at) = nul {
                    prop_assert!(msg.contains(&format!("NUL byte at byte {at}")), "{}", msg);
                } else {
                    prop_assert!(msg.contains(&format!("at most {SUN_PATH_MAX} bytes")), "{}", msg);
                    prop_assert!(msg.contains(&format!("{} bytes long", bytes.len())), "{}", msg);
                }
            }
        }
        Ok(())
    });
}

#[cfg(any(target_os = "linux", target_os = "android"))]
#[test]
fn unix_from_abstract_name_enforces_length_and_never_panics() {
    check(4_000, path_bytes(), |name| {
        match UnixAddr::from_abstract_name(&name) {
            Ok(addr) => {
                prop_assert!(name.len() <= SUN_PATH_MAX, "{} bytes accepted", name.len());
                prop_assert_eq!(addr.as_abstract_name(), Some(&name[..]));
                prop_assert_eq!(addr.as_pathname(), None);
                prop_assert!(!addr.is_unnamed());
                let text = addr.to_string();
                prop_assert!(text.starts_with('@'));
                if name.iter().all(|&b| b.is_ascii_graphic() || b == b' ') {
                    prop_assert_eq!(&text[1..], std::str::from_utf8(&name).unwrap_or(""));
                }
                let std_addr = addr.to_std();
                prop_assert!(std_addr.is_ok(), "{:?}", std_addr.err());
                if let Ok(std_addr) = std_addr {
                    prop_assert_eq!(UnixAddr::from(std_addr), addr);
                }
            }
            Err(e) => {
                prop_assert!(name.len() > SUN_PATH_MAX, "{} bytes rejected: {}", name.len(), e);
                prop_assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
                let msg = e.to_string();
                prop_assert!(msg.contains(&format!("at most {} bytes", SUN_PATH_MAX)), "{}", msg);
            }
        }
        Ok(())
    });
}

// ===== the fuzzers' own drivers (feature `fuzzing`) =====

#[cfg(feature = "fuzzing")]
mod shim {
    use super::*;
    use blitz_io::__fuzz::{decode_tasks, decode_wheel, run_tasks, run_wheel, TaskOp, WheelOp};
    use blitz_io::runtime::Builder;

    fn delay() -> impl Strategy<Value = u64> {
        let span = 1u64 << 36;
        prop_oneof![
            0u64..70,
            0u64..5_000,
            0u64..(1 << 24),
            0u64..(1 << 37),
            Just(span),
            (span - 100)..(span + 100),
            any::<u64>(),
        ]
    }

    fn wheel_op() -> impl Strategy<Value = WheelOp> {
        prop_oneof![
            3 => delay().prop_map(WheelOp::Insert),
            1 => any::<u8>().prop_map(|i| WheelOp::Remove(i.into())),
            1 => (any::<u8>(), delay()).prop_map(|(i, d)| WheelOp::Reset(i.into(), d)),
            1 => any::<u8>().prop_map(|i| WheelOp::Poll(i.into())),
            3 => delay().prop_map(WheelOp::Advance),
        ]
    }

    #[test]
    fn wheel_model_on_typed_ops() {
        let start = prop_oneof![
            Just(0u64),
            ((1u64 << 36) - 5_000)..(1u64 << 36),
            (u64::MAX - (1 << 38))..=u64::MAX,
            any::<u64>(),
        ];
        let ops = prop::collection::vec(wheel_op(), 1..300);
        check(1_000, (start, ops), |(start, ops)| run_wheel(start, &ops).map_err(TestCaseError::fail));
    }

    #[test]
    fn wheel_model_on_fuzzer_bytes() {
        check(2_000, prop::collection::vec(any::<u8>(), 0..1_024), |bytes| {
            let (start, ops) = decode_wheel(&bytes);
            run_wheel(start, &ops).map_err(TestCaseError::fail)
        });
    }

    fn task_op() -> impl Strategy<Value = TaskOp> {
        prop_oneof![
            4 => (0u8..6, any::<bool>(), any::<bool>(), prop::bool::weighted(0.1)).prop_map(
                |(yields, gated, child, panics)| TaskOp::Spawn { yields, gated, child, panics }
            ),
            1 => any::<u8>().prop_map(|i| TaskOp::Abort(i.into())),
            2 => (0u8..8).prop_map(TaskOp::Yield),
            1 => any::<u8>().prop_map(|i| TaskOp::Wake(i.into())),
            1 => any::<u8>().prop_map(|i| TaskOp::SpuriousWake(i.into())),
            1 => any::<u8>().prop_map(|i| TaskOp::WakeRemote(i.into())),
            1 => any::<u8>().prop_map(|i| TaskOp::DropHandle(i.into())),
            1 => any::<u8>().prop_map(|i| TaskOp::Await(i.into())),
        ]
    }

    #[test]
    fn run_queue_model_on_typed_ops() {
        // Quiet the deliberate task panics (caught and checked by `run_tasks`); every
        // other panic still goes to the previous hook.
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let deliberate = info.payload().downcast_ref::<String>().is_some_and(|m| m.contains("panics on purpose"));
            if !deliberate {
                previous(info);
            }
        }));
        let ops = prop::collection::vec(task_op(), 1..120);
        check(300, ops, |ops| {
            let rt = Builder::new_current_thread().enable_all().build().unwrap();
            run_tasks(&rt, &ops).map_err(TestCaseError::fail)
        });
    }

    #[test]
    fn run_queue_model_on_fuzzer_bytes() {
        // One runtime for every case, as the fuzz target does.
        check(300, prop::collection::vec(any::<u8>(), 0..512), |bytes| {
            thread_local! {
                static RT: blitz_io::runtime::Runtime =
                    Builder::new_current_thread().enable_all().build().unwrap();
            }
            let ops = decode_tasks(&bytes, false);
            RT.with(|rt| run_tasks(rt, &ops)).map_err(TestCaseError::fail)
        });
    }
}
