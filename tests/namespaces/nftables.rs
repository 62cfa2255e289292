//! netmeter's nf_tables client against the real kernel: counter sets keyed
//! by (MAC, IP) on a LAN port's netdev ingress and egress hooks.

use crate::testbed;

use std::collections::BTreeMap;
use testbed::Network;
use testbed::topology::{PORT, WAN_HOST_V4, WAN_HOST_V6};

/// key hex → (bytes, packets)
fn elements(net: &Network, set: &str) -> BTreeMap<String, (u64, u64)> {
    net.router
        .run(&format!("nft_elements probe {set}"))
        .split(';')
        .filter(|s| !s.is_empty())
        .map(|e| {
            let f: Vec<&str> = e.split(',').collect();
            (
                f[0].to_string(),
                (f[1].parse().unwrap(), f[2].parse().unwrap()),
            )
        })
        .collect()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn set_element_counters_on_ingress_and_egress_match_the_hosts_l3_bytes() {
    let net = Network::with_lan_hosts(&["laptop"]);
    let lan = &net.lan[0];
    net.router.run("nft_count_by_mac_ip lan0");
    let before = lan.counters()["eth0"];
    lan.run(&format!("tcp_upload {WAN_HOST_V4} {PORT} 400000"));
    lan.run(&format!("tcp_download {WAN_HOST_V4} {PORT} 900000"));
    lan.run(&format!("tcp_upload {WAN_HOST_V6} {PORT} 300000"));
    lan.run(&format!("udp_download {WAN_HOST_V6} {PORT} 20 1000"));
    // Closing packets may still be on their way: read the host, the sets and
    // the host again until nothing moved in between.
    let mut tries = 0;
    let (after, tx4, rx4, tx6, rx6) = loop {
        tries += 1;
        assert!(tries <= 100, "the LAN host's link never went quiet");
        let first = lan.counters()["eth0"];
        let sets = (
            elements(&net, "tx4"),
            elements(&net, "rx4"),
            elements(&net, "tx6"),
            elements(&net, "rx6"),
        );
        if lan.counters()["eth0"] == first {
            break (first, sets.0, sets.1, sets.2, sets.3);
        }
    };
    // The key is the MAC (6 bytes + 2 of padding) then the address.
    let mac = lan.run("mac eth0");
    let key4 = format!("{mac}0000{}", hex(&[10, 0, 1, 2]));
    let v6: std::net::Ipv6Addr = "fd00:1::2".parse().unwrap();
    let key6 = format!("{mac}0000{}", hex(&v6.octets()));
    assert!(tx4.contains_key(&key4), "tx4 {tx4:?} lacks {key4}");
    assert!(tx6.contains_key(&key6), "tx6 {tx6:?} lacks {key6}");

    // Everything the host sent passed lan0's ingress; everything it received,
    // lan0's egress (which counts the 14-byte Ethernet header too). Link-local
    // IPv6 (neighbour discovery) is keyed by its own address, so the sum over
    // all elements is what matches the interface.
    let sum =
        |m: &BTreeMap<String, (u64, u64)>| m.values().fold((0, 0), |a, v| (a.0 + v.0, a.1 + v.1));
    let (tx_b, tx_p) = (sum(&tx4).0 + sum(&tx6).0, sum(&tx4).1 + sum(&tx6).1);
    let (rx_b, rx_p) = (sum(&rx4).0 + sum(&rx6).0, sum(&rx4).1 + sum(&rx6).1);
    let sent_l3 = after.tx_l3_bytes() - before.tx_l3_bytes();
    let sent_p = after.tx_packets - before.tx_packets;
    let got_l3 = after.rx_l3_bytes() - before.rx_l3_bytes();
    let got_p = after.rx_packets - before.rx_packets;
    // The interface also carried ARP, which is not IP and is not counted:
    // every packet the sets miss must be one 28-byte ARP message.
    let arp = |l3: u64, p: u64, set_b: u64, set_p: u64| {
        assert!(
            p >= set_p && p - set_p <= 4,
            "sets saw {set_p} of {p} packets"
        );
        assert_eq!(
            l3 - set_b,
            28 * (p - set_p),
            "only ARP is missing ({l3} vs {set_b} bytes)"
        );
    };
    arp(sent_l3, sent_p, tx_b, tx_p);
    // Egress counts the 14-byte Ethernet header too.
    arp(got_l3, got_p, rx_b - 14 * rx_p, rx_p);
    assert!(tx_b > 700_000 && rx_b > 900_000);
}
