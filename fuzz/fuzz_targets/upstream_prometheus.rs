//! Any body an exporter sends must parse or be refused with a line number,
//! never panic; what parses must give a reading or a clear error.

#![no_main]

use libfuzzer_sys::fuzz_target;
use netmeter::collect::upstream::prometheus::{parse, reading};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match parse(text, |_| true) {
        Ok(samples) => {
            for s in &samples {
                assert!(!s.name.is_empty());
            }
            let _ = reading(&samples, Some("wan"), &[]);
            let _ = reading(&samples, None, &["eth0".to_owned()]);
        }
        Err(e) => assert!(e.to_string().contains("line ") || e.to_string().contains("samples")),
    }
});
