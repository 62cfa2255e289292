//! The UCI syntax layer and the typed configuration on top of it must
//! reject any text with an error, never panic.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = netmeter::config::uci::parse(text);
    if let Ok(config) = netmeter::config::Config::parse(text, std::path::Path::new("fuzz.conf")) {
        // The parsed patterns are what the daemon matches interface names with.
        for name in ["lo", "eth0", "br-lan", "wg[0]", ""] {
            let _ = config.tracks_interface(name);
        }
        for subnet in &config.lan_subnet {
            assert!(
                subnet.contains(&subnet.addr),
                "{subnet} lacks its own address"
            );
        }
    }
});
