//! nf_tables replies (set elements with counters, counter objects, tables,
//! flowtables) and the rtnetlink address and neighbour dumps: errors, never
//! panics, whatever the bytes.

#![no_main]

use libfuzzer_sys::fuzz_target;
use netmeter::netlink::nftables::{
    parse_counter_object, parse_flowtable, parse_set_elements, parse_table,
};
use netmeter::netlink::route::{AddressMessage, NeighbourMessage, RTM_NEWADDR, RTM_NEWNEIGH};
use netmeter::netlink::{Message, MessageIter};

/// nftables message types: subsystem 10 in the high byte.
const NEWTABLE: u16 = 10 << 8;
const NEWSETELEM: u16 = (10 << 8) | 12;
const NEWOBJ: u16 = (10 << 8) | 18;
const NEWFLOWTABLE: u16 = (10 << 8) | 22;

fuzz_target!(|data: &[u8]| {
    for msg in MessageIter::new(data).flatten() {
        // Read the payload as every kind of reply, whatever type it claims:
        // the type check alone would keep the fuzzer out of the parsers.
        for msg_type in [
            NEWSETELEM,
            NEWOBJ,
            NEWTABLE,
            NEWFLOWTABLE,
            RTM_NEWADDR,
            RTM_NEWNEIGH,
        ] {
            let m = Message { msg_type, ..msg };
            let mut elements = 0usize;
            let _ = parse_set_elements(&m, |e| {
                elements += 1;
                let _ = (e.key.len(), e.bytes, e.packets, e.expires_ms);
            });
            let _ = parse_counter_object(&m);
            let _ = parse_table(&m);
            let _ = parse_flowtable(&m);
            let _ = AddressMessage::parse(&m);
            let _ = NeighbourMessage::parse(&m);
        }
    }
});
