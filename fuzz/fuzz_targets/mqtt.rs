//! What a broker sends back (CONNACK, PUBLISH, SUBACK, PINGRESP, and
//! anything else): decoding must end in a packet, "need more", or an
//! error, never a panic, and never claim more bytes than it was given.
//! A decoded PUBLISH, written again as netmeter writes one, reads back
//! the same.

#![no_main]

use libfuzzer_sys::fuzz_target;
use netmeter::net::mqtt::{Packet, decode, publish};

fuzz_target!(|data: &[u8]| {
    let mut rest = data;
    while let Ok(Some((packet, used))) = decode(rest) {
        assert!(used >= 2 && used <= rest.len());
        if let Packet::Publish {
            topic,
            payload,
            retain,
            ..
        } = &packet
        {
            if topic.len() <= u16::MAX as usize {
                let again = publish(topic, payload, *retain);
                let (back, n) = decode(&again).unwrap().unwrap();
                assert_eq!(n, again.len());
                assert_eq!(
                    back,
                    Packet::Publish {
                        topic: topic.clone(),
                        payload: payload.clone(),
                        qos: 0,
                        retain: *retain,
                        packet_id: None,
                    }
                );
            }
        }
        rest = &rest[used..];
    }
});
