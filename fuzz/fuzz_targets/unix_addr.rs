//! `UnixAddr::from_path` and `UnixAddr::from_abstract_name` on arbitrary bytes: never
//! panic, accept exactly what fits in `sockaddr_un`, and round-trip through std's
//! `SocketAddr`.
#![no_main]

use std::ffi::OsStr;
use std::io::ErrorKind;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use blitz_io::net::UnixAddr;
use libfuzzer_sys::fuzz_target;

/// Longest `sun_path` content: the array size minus the terminating (or leading) NUL.
#[cfg(any(target_os = "linux", target_os = "android"))]
const MAX: usize = 107;
#[cfg(not(any(target_os = "linux", target_os = "android")))]
const MAX: usize = 103;

fuzz_target!(|data: &[u8]| {
    let path = Path::new(OsStr::from_bytes(data));
    let fits = !data.is_empty() && !data.contains(&0) && data.len() <= MAX;
    match UnixAddr::from_path(path) {
        Ok(addr) => {
            assert!(fits, "{path:?} accepted");
            assert_eq!(addr.as_pathname(), Some(path));
            let std_addr = addr.to_std().expect("a valid pathname address converts");
            assert_eq!(UnixAddr::from(std_addr), addr);
            let _ = (addr.to_string(), format!("{addr:?}"));
        }
        Err(e) => {
            assert!(!fits, "{path:?} rejected: {e}");
            assert_eq!(e.kind(), ErrorKind::InvalidInput);
        }
    }

    #[cfg(any(target_os = "linux", target_os = "android"))]
    match UnixAddr::from_abstract_name(data) {
        Ok(addr) => {
            assert!(data.len() <= MAX, "{} bytes accepted", data.len());
            assert_eq!(addr.as_abstract_name(), Some(data));
            let std_addr = addr.to_std().expect("a valid abstract address converts");
            assert_eq!(UnixAddr::from(std_addr), addr);
            assert!(addr.to_string().starts_with('@'));
            let _ = format!("{addr:?}");
        }
        Err(e) => {
            assert!(data.len() > MAX, "{} bytes rejected: {e}", data.len());
            assert_eq!(e.kind(), ErrorKind::InvalidInput);
        }
    }
});
