//! The parsers for dnsmasq's leases, /etc/ethers and hosts files read text
//! that DHCP clients partly choose: any of it must parse or be skipped,
//! never panic.

#![no_main]

use libfuzzer_sys::fuzz_target;
use netmeter::collect::identity::{Names, parse_dnsmasq_leases, parse_ethers, parse_hosts};
use netmeter::mac::Mac;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let leases = parse_dnsmasq_leases(text);
    let ethers = parse_ethers(text);
    let hosts = parse_hosts(text);
    for word in text.split_whitespace() {
        if let Ok(mac) = word.parse::<Mac>() {
            // Whatever form was accepted, the canonical one must read back the same.
            assert_eq!(mac.to_string().parse::<Mac>(), Ok(mac));
        }
    }
    let ips: Vec<_> = leases
        .iter()
        .map(|l| l.ip)
        .chain(hosts.iter().map(|h| h.0))
        .collect();
    let macs: Vec<_> = leases
        .iter()
        .filter_map(|l| l.mac)
        .chain(ethers.iter().map(|e| e.0))
        .collect();
    let names = Names::from_sources(&[], leases, ethers, hosts);
    for mac in &macs {
        let _ = names.hostname(mac, &ips);
    }
});
