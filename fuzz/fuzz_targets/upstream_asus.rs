//! ASUS login replies, netdev JSON and the Traffic Analyzer page: any bytes
//! must be read or refused, never panic.

#![no_main]

use libfuzzer_sys::fuzz_target;
use netmeter::collect::upstream::asus::{parse_login, parse_netdev, parse_traffic};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = parse_login(text);
    if let Ok(r) = parse_netdev(text) {
        assert!(r.wan.is_some() || !r.interfaces.is_empty());
    }
    let _ = parse_traffic(text);
});
