//! Any datagram an SNMP agent (or anyone) sends must decode or be
//! refused, never panic; what decodes re-encodes to something that
//! decodes the same.

#![no_main]

use libfuzzer_sys::fuzz_target;
use netmeter::account::CounterWidth;
use netmeter::upstream::sources::ber::{decode, encode};
use netmeter::upstream::sources::snmp::{reading, uptime};

fuzz_target!(|data: &[u8]| {
    if let Ok(m) = decode(data) {
        assert_eq!(decode(&encode(&m)).unwrap(), m);
        let column: Vec<_> = m
            .bindings
            .iter()
            .map(|(o, v)| (*o.last().unwrap(), v.clone()))
            .collect();
        let _ = uptime(&column);
        let _ = reading(
            &column,
            (&column, &column),
            CounterWidth::Bits64,
            Some("wan"),
            &[],
        );
    }
});
