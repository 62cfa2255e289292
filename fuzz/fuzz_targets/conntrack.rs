//! ctnetlink dumps and destroy events: whatever the socket delivers, the
//! parser returns flows or errors, never panics; and the flow tracker takes
//! whatever flows it is given.

#![no_main]

use libfuzzer_sys::fuzz_target;
use netmeter::account::flows::{FlowTracker, LocalNetwork};
use netmeter::account::protocols::ProtocolClasses;
use netmeter::netlink::MessageIter;
use netmeter::netlink::conntrack::{FlowMessage, parse};

fuzz_target!(|data: &[u8]| {
    let net = LocalNetwork {
        lan: vec![
            "192.168.1.0/24".parse().unwrap(),
            "fd00::/64".parse().unwrap(),
        ],
        local: vec![
            "192.168.1.0/24".parse().unwrap(),
            "fd00::/64".parse().unwrap(),
        ],
        own: vec!["192.168.1.1".parse().unwrap()],
    };
    let classes = ProtocolClasses::builtin();
    let mut tracker = FlowTracker::new(64);
    for round in 0..2 {
        tracker.begin_read();
        for msg in MessageIter::new(data).flatten() {
            match parse(&msg) {
                Ok(Some(FlowMessage::Live(f))) => tracker.live(&f, &net, &classes),
                Ok(Some(FlowMessage::Destroyed(f))) if round == 1 => {
                    tracker.destroyed(&f, &net, &classes)
                }
                _ => {}
            }
        }
        tracker.end_read();
    }
    let _ = tracker.totals().count();
    let _ = tracker.take_classes(|ip| Some(*ip));
});
