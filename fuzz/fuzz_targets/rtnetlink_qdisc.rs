//! Qdisc dumps (RTM_NEWQDISC with TCA_STATS2, fq_codel's and cake's
//! application statistics) must parse to a value or an error, never panic.

#![no_main]

use libfuzzer_sys::fuzz_target;
use netmeter::netlink::MessageIter;
use netmeter::netlink::qdisc::QdiscMessage;

fuzz_target!(|data: &[u8]| {
    for msg in MessageIter::new(data).flatten() {
        let _ = QdiscMessage::parse(&msg);
        let _ = QdiscMessage::parse_payload(msg.payload);
    }
    let _ = QdiscMessage::parse_payload(data);
    // The kind decides how TCA_STATS_APP is read: try the kinds that have one.
    for kind in [&b"fq_codel\0"[..], b"cake\0"] {
        let mut buf = vec![0u8; 20];
        let len = (4 + kind.len()) as u16;
        buf.extend_from_slice(&len.to_ne_bytes());
        buf.extend_from_slice(&1u16.to_ne_bytes());
        buf.extend_from_slice(kind);
        buf.resize(buf.len().div_ceil(4) * 4, 0);
        let stats_len = (8 + data.len()).min(u16::MAX as usize) as u16;
        buf.extend_from_slice(&stats_len.to_ne_bytes());
        buf.extend_from_slice(&7u16.to_ne_bytes()); // TCA_STATS2
        let app_len = (4 + data.len()).min(u16::MAX as usize) as u16;
        buf.extend_from_slice(&app_len.to_ne_bytes());
        buf.extend_from_slice(&4u16.to_ne_bytes()); // TCA_STATS_APP
        buf.extend_from_slice(data);
        let _ = QdiscMessage::parse_payload(&buf);
    }
});
