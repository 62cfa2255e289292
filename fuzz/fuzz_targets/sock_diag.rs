//! sock_diag dumps (inet_diag_msg with tcp_info) must parse to a value or
//! an error, never panic.

#![no_main]

use libfuzzer_sys::fuzz_target;
use netmeter::netlink::MessageIter;
use netmeter::netlink::sock_diag::{SocketMessage, TcpInfo};

fuzz_target!(|data: &[u8]| {
    for msg in MessageIter::new(data).flatten() {
        let _ = SocketMessage::parse(&msg);
    }
    let _ = SocketMessage::parse_payload(data);
    let _ = TcpInfo::parse(data);
});
