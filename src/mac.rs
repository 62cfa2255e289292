//! Ethernet MAC addresses: the key every device record is filed under, and
//! their text form, shared by the configuration and the files that name
//! devices.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// An Ethernet MAC address. Serialized as its six bytes, exactly as the bare
/// `[u8; 6]` it replaced (a newtype is transparent to postcard and JSON), so
/// state files keep their bytes; the API writes the text form instead.
#[derive(Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Mac(pub [u8; 6]);

impl Mac {
    /// The MAC of the `other` record, which folds together the devices beyond
    /// the limit: all zeros, which no device has.
    pub const OTHER: Self = Self([0; 6]);

    /// Randomised ("private") MACs set this bit, and phones rotate them, so a
    /// name tied to one may not follow the device for long.
    pub fn is_locally_administered(&self) -> bool {
        self.0[0] & 0x02 != 0
    }

    /// The Ethernet group bit: multicast (`01:00:5e:…`, `33:33:…`) and
    /// broadcast (`ff:ff:ff:ff:ff:ff`) addresses, which are never a device.
    pub fn is_group(&self) -> bool {
        self.0[0] & 0x01 != 0
    }
}

impl From<[u8; 6]> for Mac {
    fn from(bytes: [u8; 6]) -> Self {
        Self(bytes)
    }
}

/// So a MAC compares with a literal, as in tests.
impl PartialEq<[u8; 6]> for Mac {
    fn eq(&self, other: &[u8; 6]) -> bool {
        self.0 == *other
    }
}

/// Lowercase with colons: the form dnsmasq and `ip link` print.
impl fmt::Display for Mac {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let [a, b, c, d, e, g] = self.0;
        write!(f, "{a:02x}:{b:02x}:{c:02x}:{d:02x}:{e:02x}:{g:02x}")
    }
}

/// The text form, which reads better in a failed assertion than six numbers.
impl fmt::Debug for Mac {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Mac({self})")
    }
}

/// Text that is not a MAC address.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ParseMacError;

impl fmt::Display for ParseMacError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("expected a MAC address: six hex bytes separated by colons or dashes, as aa:bb:cc:dd:ee:ff")
    }
}

impl std::error::Error for ParseMacError {}

/// `aa:bb:cc:dd:ee:ff` or `aa-bb-cc-dd-ee-ff`, any case, one separator
/// throughout. Single-digit groups (`0:1b:…`) are accepted too, because
/// glibc's `ether_ntoa` writes them and `/etc/ethers` may hold its output.
impl FromStr for Mac {
    type Err = ParseMacError;

    fn from_str(s: &str) -> Result<Self, ParseMacError> {
        let separator = if s.contains(':') { ':' } else { '-' };
        let mut mac = [0u8; 6];
        let mut groups = s.split(separator);
        for byte in &mut mac {
            let group = groups.next().ok_or(ParseMacError)?;
            if !(1..=2).contains(&group.len()) || !group.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(ParseMacError);
            }
            *byte = u8::from_str_radix(group, 16).map_err(|_| ParseMacError)?;
        }
        match groups.next() {
            None => Ok(Self(mac)),
            Some(_) => Err(ParseMacError),
        }
    }
}

/// Removes the group MACs' entries from `map`; returns how many there were.
/// (Rebuilt by insertion, not `retain`: that would add kilobytes of B-tree
/// rebalancing code to the router binary.)
pub fn drop_group<V>(map: &mut BTreeMap<Mac, V>) -> usize {
    let before = map.len();
    for (mac, value) in std::mem::take(map) {
        if !mac.is_group() {
            map.insert(mac, value);
        }
    }
    before - map.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAC: Mac = Mac([0xaa, 0xbb, 0xcc, 0x0d, 0xee, 0x0f]);

    fn parse_mac(s: &str) -> Option<Mac> {
        s.parse().ok()
    }

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
    fn a_parse_error_says_what_form_is_expected() {
        let error = "aabbccddeeff".parse::<Mac>().unwrap_err().to_string();
        assert!(error.contains("aa:bb:cc:dd:ee:ff"), "{error}");
    }

    #[test]
    fn the_bytes_serialize_as_the_bare_array_did() {
        let bytes: [u8; 6] = MAC.0;
        let postcard = postcard::to_allocvec(&MAC).unwrap();
        assert_eq!(postcard, postcard::to_allocvec(&bytes).unwrap());
        assert_eq!(postcard::from_bytes::<Mac>(&postcard).unwrap(), MAC);
        let json = serde_json::to_string(&MAC).unwrap();
        assert_eq!(json, serde_json::to_string(&bytes).unwrap());
        assert_eq!(serde_json::from_str::<Mac>(&json).unwrap(), MAC);
    }

    #[test]
    fn formatting_is_lowercase_with_colons_and_round_trips() {
        assert_eq!(MAC.to_string(), "aa:bb:cc:0d:ee:0f");
        assert_eq!(parse_mac(&MAC.to_string()), Some(MAC));
    }

    #[test]
    fn the_local_bit_marks_randomised_macs() {
        assert!(Mac([0x02, 0, 0, 0, 0, 1]).is_locally_administered());
        assert!(Mac([0xda, 0xa1, 0x19, 0, 0, 1]).is_locally_administered());
        assert!(!Mac([0x00, 0x1b, 0x21, 0, 0, 1]).is_locally_administered());
        assert!(!Mac([0xa8, 0x5e, 0x45, 0, 0, 1]).is_locally_administered());
    }

    #[test]
    fn the_group_bit_marks_multicast_and_broadcast_macs() {
        for group in [
            [0x33, 0x33, 0, 0, 0, 0x16],
            [0x01, 0, 0x5e, 0, 0, 0xfb],
            [0xff; 6],
        ] {
            assert!(Mac(group).is_group(), "{group:x?}");
        }
        assert!(!Mac([0x02, 0, 0, 0, 0, 1]).is_group() && !Mac::OTHER.is_group());
    }
}
