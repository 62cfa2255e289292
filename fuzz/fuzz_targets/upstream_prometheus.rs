//! Any body an exporter sends must parse or be refused with a line number,
//! never panic; what parses must give a reading or a clear error.

#![no_main]

use libfuzzer_sys::fuzz_target;
use netmeter::upstream::sources::prometheus::{Wanted, lines_read, parse, reading};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    // Every line read, as strictly as the parser can.
    match parse(text, |_| Wanted::Required) {
        Ok(samples) => {
            for s in &samples {
                assert!(!s.name.is_empty());
            }
            let _ = reading(&samples, Some("wan"), &[]);
        }
        Err(e) => assert!(e.to_string().contains("line ") || e.to_string().contains("samples")),
    }
    // Only the lines a scrape reads, as the source does.
    if let Ok(samples) = parse(text, lines_read) {
        if let Ok(r) = reading(&samples, None, &["eth0".to_owned()]) {
            assert!(r.wan.is_none() && r.interfaces.len() <= 1);
        }
        let _ = reading(&samples, Some("wan"), &[]);
    }
});
