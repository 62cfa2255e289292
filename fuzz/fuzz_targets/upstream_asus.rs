//! ASUS login replies, netdev (JSON and the web UI's object form) and the
//! Traffic Analyzer page and the uptime hook: any bytes must be read or refused, never panic,
//! and what is read stays within the bounds the accounts keep.

#![no_main]

use libfuzzer_sys::fuzz_target;
use netmeter::upstream::account::{MAX_DEVICES_PER_SOURCE, MAX_INTERFACES_PER_SOURCE};
use netmeter::upstream::sources::asus::{parse_login, parse_netdev, parse_traffic, parse_uptime};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = parse_login(text);
    let _ = parse_uptime(text);
    if let Ok(r) = parse_netdev(text) {
        assert!(r.wan.is_some() || !r.interfaces.is_empty());
        assert!(r.interfaces.len() <= MAX_INTERFACES_PER_SOURCE);
        assert!(r.interfaces.iter().all(|(name, _)| name != "INTERNET"));
    }
    if let Some(devices) = parse_traffic(text) {
        assert!(devices.len() <= MAX_DEVICES_PER_SOURCE);
    }
});
