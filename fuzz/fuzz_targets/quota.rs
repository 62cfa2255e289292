//! The quota values (`option limit`'s sizes, `list threshold`) and a
//! whole `config quota` section built around the input must parse or be
//! refused with an error, never panic; what parses keeps its promises.

#![no_main]

use libfuzzer_sys::fuzz_target;
use netmeter::config::quota::{MAX_THRESHOLD, parse_bytes, parse_threshold};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(bytes) = parse_bytes(text) {
        assert!(bytes > 0, "'{text}' parsed to zero bytes");
    }
    // A whole number of G is exactly that many 10^9 bytes, GiB 2^30.
    if let Ok(n) = text.trim().parse::<u32>() {
        assert_eq!(
            parse_bytes(&format!("{n}G")).ok(),
            (n > 0).then(|| u64::from(n) * 1_000_000_000)
        );
        assert_eq!(
            parse_bytes(&format!("{n}GiB")).ok(),
            (n > 0).then(|| u64::from(n) << 30)
        );
    }
    if let Some(t) = parse_threshold(text) {
        assert!((1..=MAX_THRESHOLD).contains(&t));
    }
    // Every option of a section takes the input as its value.
    let value = text.replace(['\'', '\n', '\r', '\\'], "");
    for option in [
        "device",
        "group",
        "interface",
        "direction",
        "period",
        "limit",
        "threshold",
        "exec",
        "webhook",
        "mqtt",
        "action",
    ] {
        let config =
            format!("config quota 'q'\n\toption limit '1G'\n\toption {option} '{value}'\n");
        if let Ok(c) = netmeter::config::Config::parse(&config, std::path::Path::new("fuzz.conf")) {
            let q = &c.quotas[0];
            assert!(q.limit > 0 && !q.thresholds.is_empty());
            assert!(q.thresholds.windows(2).all(|w| w[0] < w[1]));
        }
    }
});
