//! Whatever a server behind the gateway sends as vnStat JSON must give a
//! reading or a clear error, never a panic.

#![no_main]

use libfuzzer_sys::fuzz_target;
use netmeter::upstream::sources::vnstat::parse;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = parse(text, Some("eth0"), &[]);
    if let Ok(r) = parse(text, None, &[]) {
        assert!(r.wan.is_none() && !r.interfaces.is_empty());
    }
});
