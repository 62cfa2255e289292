//! Any answer a ubus endpoint sends must be read or refused, never panic.

#![no_main]

use libfuzzer_sys::fuzz_target;
use netmeter::collect::upstream::ubus::{Answer, counters_of, parse_answer, session_of};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(Answer::Data(value)) = parse_answer(text) {
        let _ = session_of(&value);
        let _ = counters_of(&value, "wan");
    }
});
