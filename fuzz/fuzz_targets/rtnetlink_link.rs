//! Whatever the kernel (or anything else on the socket) sends, netlink
//! message and attribute parsing must return errors, never panic.

#![no_main]

use libfuzzer_sys::fuzz_target;
use netmeter::netlink::route::LinkMessage;
use netmeter::netlink::{AttrIter, MessageIter};

/// Reads every attribute every way it can be read, nested ones included.
fn walk_attrs(iter: AttrIter<'_>, depth: u32) {
    for attr in iter.flatten() {
        let _ = attr.str();
        let _ = attr.u32();
        let _ = attr.be64();
        // A nest holds at most 64 KiB, so depth is bounded by the input;
        // cap it anyway so a deep input cannot exhaust the stack.
        if depth < 32 {
            walk_attrs(attr.nested(), depth + 1);
        }
    }
}

fuzz_target!(|data: &[u8]| {
    for msg in MessageIter::new(data).flatten() {
        let _ = LinkMessage::parse(&msg);
        let _ = msg.error_code();
        // The attributes after a link message's 16-byte ifinfomsg.
        walk_attrs(AttrIter::new(msg.payload.get(16..).unwrap_or(&[])), 0);
    }
    let _ = LinkMessage::parse_payload(data);
    walk_attrs(AttrIter::new(data), 0);
});
