//! Ethernet MAC addresses as text, shared by the configuration and the
//! files that name devices.

use std::collections::BTreeMap;

/// `aa:bb:cc:dd:ee:ff` or `aa-bb-cc-dd-ee-ff`, any case, one separator
/// throughout. Single-digit groups (`0:1b:…`) are accepted too, because
/// glibc's `ether_ntoa` writes them and `/etc/ethers` may hold its output.
pub fn parse_mac(s: &str) -> Option<[u8; 6]> {
    let separator = if s.contains(':') { ':' } else { '-' };
    let mut mac = [0u8; 6];
    let mut groups = s.split(separator);
    for byte in &mut mac {
        let group = groups.next()?;
        if !(1..=2).contains(&group.len()) || !group.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        *byte = u8::from_str_radix(group, 16).ok()?;
    }
    groups.next().is_none().then_some(mac)
}

/// Lowercase with colons: the form dnsmasq and `ip link` print.
pub fn format_mac(mac: &[u8; 6]) -> String {
    let [a, b, c, d, e, f] = mac;
    format!("{a:02x}:{b:02x}:{c:02x}:{d:02x}:{e:02x}:{f:02x}")
}

/// Randomised ("private") MACs set this bit, and phones rotate them, so a
/// name tied to one may not follow the device for long.
pub fn is_locally_administered(mac: &[u8; 6]) -> bool {
    mac[0] & 0x02 != 0
}

/// The Ethernet group bit: multicast (`01:00:5e:…`, `33:33:…`) and
/// broadcast (`ff:ff:ff:ff:ff:ff`) addresses, which are never a device.
pub fn is_group(mac: &[u8; 6]) -> bool {
    mac[0] & 0x01 != 0
}

/// Removes the group MACs' entries from `map`; returns how many there were.
/// (Rebuilt by insertion, not `retain`: that would add kilobytes of B-tree
/// rebalancing code to the router binary.)
pub fn drop_group<V>(map: &mut BTreeMap<[u8; 6], V>) -> usize {
    let before = map.len();
    for (mac, value) in std::mem::take(map) {
        if !is_group(&mac) {
            map.insert(mac, value);
        }
    }
    before - map.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAC: [u8; 6] = [0xaa, 0xbb, 0xcc, 0x0d, 0xee, 0x0f];

    #[test]
    fn colons_dashes_and_any_case_parse_to_the_same_mac() {
        for text in ["aa:bb:cc:0d:ee:0f", "AA-BB-CC-0D-EE-0F", "Aa:bB:cc:d:ee:f"] {
            assert_eq!(parse_mac(text), Some(MAC), "{text}");
        }
    }

    #[test]
    fn malformed_macs_are_rejected() {
        for text in [
            "",
            "aa:bb:cc:dd:ee",
            "aa:bb:cc:dd:ee:ff:00",
            "aa:bb-cc:dd:ee:ff",
            "aa:bb:cc:dd:ee:fff",
            "aa:bb:cc:dd::ff",
            "aabbccddeeff",
            "gg:bb:cc:dd:ee:ff",
            "+a:bb:cc:dd:ee:ff",
            " aa:bb:cc:dd:ee:ff",
            "01-aa:bb:cc:dd:ee:ff",
            "é:bb:cc:dd:ee:ff",
        ] {
            assert_eq!(parse_mac(text), None, "{text:?}");
        }
    }

    #[test]
    fn formatting_is_lowercase_with_colons_and_round_trips() {
        assert_eq!(format_mac(&MAC), "aa:bb:cc:0d:ee:0f");
        assert_eq!(parse_mac(&format_mac(&MAC)), Some(MAC));
    }

    #[test]
    fn the_local_bit_marks_randomised_macs() {
        assert!(is_locally_administered(&[0x02, 0, 0, 0, 0, 1]));
        assert!(is_locally_administered(&[0xda, 0xa1, 0x19, 0, 0, 1]));
        assert!(!is_locally_administered(&[0x00, 0x1b, 0x21, 0, 0, 1]));
        assert!(!is_locally_administered(&[0xa8, 0x5e, 0x45, 0, 0, 1]));
    }

    #[test]
    fn the_group_bit_marks_multicast_and_broadcast_macs() {
        for group in [
            [0x33, 0x33, 0, 0, 0, 0x16],
            [0x01, 0, 0x5e, 0, 0, 0xfb],
            [0xff; 6],
        ] {
            assert!(is_group(&group), "{group:x?}");
        }
        assert!(!is_group(&[0x02, 0, 0, 0, 0, 1]) && !is_group(&[0; 6]));
    }
}
