//! Any answer a ubus endpoint sends (login, interface and device status,
//! errors in every envelope) must be read or refused, never panic.

#![no_main]

use libfuzzer_sys::fuzz_target;
use netmeter::upstream::sources::ubus::{
    Answer, counters_of, parse_answer, session_of, uptime_of, wan_device_of,
};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(Answer::Data(value)) = parse_answer(text) {
        if let Ok(session) = session_of(&value) {
            assert!(!session.is_empty() && session.len() <= 64);
        }
        if let Ok(device) = wan_device_of(&value) {
            assert!(!device.is_empty() && device.len() <= 64);
        }
        let _ = counters_of(&value, "wan");
        let _ = uptime_of(&value);
    }
});
