//! CIDR prefixes such as `192.168.1.0/24` and `fd00::/64`.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

/// A network: `addr` with its host bits zero, `len` prefix bits.
///
/// Built by [`str::parse`] or [`IpPrefix::network_of`], which keep that
/// promise; [`IpPrefix::contains`] stays sane even for a hand-built value
/// that breaks it (a `len` beyond the address width means the whole address).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct IpPrefix {
    pub addr: IpAddr,
    pub len: u8,
}

impl IpPrefix {
    /// The network an interface address sits in, e.g. 192.168.1.1/24 →
    /// 192.168.1.0/24; None if `len` is longer than the address.
    pub fn network_of(addr: IpAddr, len: u8) -> Option<IpPrefix> {
        (len <= width(addr)).then(|| IpPrefix {
            addr: masked(addr, len),
            len,
        })
    }

    /// An IPv4 prefix never contains an IPv6 address, IPv4-mapped ones included.
    pub fn contains(&self, ip: &IpAddr) -> bool {
        let same_family = self.addr.is_ipv4() == ip.is_ipv4();
        same_family && masked(*ip, self.len) == masked(self.addr, self.len)
    }
}

fn width(addr: IpAddr) -> u8 {
    match addr {
        IpAddr::V4(_) => 32,
        IpAddr::V6(_) => 128,
    }
}

/// `addr` with all but the first `len` bits cleared.
fn masked(addr: IpAddr, len: u8) -> IpAddr {
    let len = u32::from(len);
    match addr {
        IpAddr::V4(a) => {
            let mask = u32::MAX.checked_shl(32u32.saturating_sub(len)).unwrap_or(0);
            IpAddr::V4(Ipv4Addr::from(u32::from(a) & mask))
        }
        IpAddr::V6(a) => {
            let mask = u128::MAX
                .checked_shl(128u32.saturating_sub(len))
                .unwrap_or(0);
            IpAddr::V6(Ipv6Addr::from(u128::from(a) & mask))
        }
    }
}

impl fmt::Display for IpPrefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.len)
    }
}

/// Why a text is not a prefix.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PrefixError {
    /// Not `ADDRESS/LENGTH` with a length the address family allows.
    Malformed,
    /// A host address was written where the network was meant.
    HostBitsSet { network: IpPrefix },
}

impl fmt::Display for PrefixError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PrefixError::Malformed => write!(f, "expected ADDRESS/LENGTH"),
            PrefixError::HostBitsSet { network } => {
                write!(f, "the host bits must be zero: write '{network}'")
            }
        }
    }
}

impl std::error::Error for PrefixError {}

impl FromStr for IpPrefix {
    type Err = PrefixError;

    /// The length is required: a bare address is more likely a mistake than
    /// a one-host subnet.
    fn from_str(text: &str) -> Result<IpPrefix, PrefixError> {
        let (addr, len) = text.split_once('/').ok_or(PrefixError::Malformed)?;
        let addr: IpAddr = addr.parse().map_err(|_| PrefixError::Malformed)?;
        let digits = !len.is_empty() && len.len() <= 3 && len.bytes().all(|b| b.is_ascii_digit());
        let len: u8 = match digits {
            true => len.parse().map_err(|_| PrefixError::Malformed)?,
            false => return Err(PrefixError::Malformed),
        };
        let network = IpPrefix::network_of(addr, len).ok_or(PrefixError::Malformed)?;
        match network.addr == addr {
            true => Ok(network),
            false => Err(PrefixError::HostBitsSet { network }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prefix(text: &str) -> IpPrefix {
        text.parse().unwrap()
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn networks_of_both_families_parse_and_display_as_written() {
        for text in [
            "192.168.1.0/24",
            "10.0.0.0/8",
            "0.0.0.0/0",
            "192.168.1.7/32",
            "fd00::/64",
            "2001:db8:1:2::/63",
            "::/0",
            "fe80::1/128",
        ] {
            assert_eq!(prefix(text).to_string(), text);
        }
        assert_eq!(
            prefix("fd00:0::/64"),
            IpPrefix {
                addr: ip("fd00::"),
                len: 64
            }
        );
    }

    #[test]
    fn a_host_address_is_refused_with_the_network_to_write() {
        assert_eq!(
            "192.168.1.1/24"
                .parse::<IpPrefix>()
                .unwrap_err()
                .to_string(),
            "the host bits must be zero: write '192.168.1.0/24'"
        );
        assert_eq!(
            "fd00::1/64".parse::<IpPrefix>(),
            Err(PrefixError::HostBitsSet {
                network: prefix("fd00::/64")
            })
        );
    }

    #[test]
    fn malformed_prefixes_are_refused() {
        for text in [
            "",
            "192.168.1.0",
            "192.168.1.0/",
            "192.168.1.0/33",
            "fd00::/129",
            "192.168.1.0/+8",
            "192.168.1.0/0008",
            "192.168.1/24",
            "fe80::%eth0/64",
            "/24",
            "192.168.1.0/24/1",
            "lan/24",
        ] {
            assert_eq!(
                text.parse::<IpPrefix>(),
                Err(PrefixError::Malformed),
                "{text}"
            );
        }
    }

    #[test]
    fn contains_checks_the_prefix_bits_and_the_family() {
        let lan = prefix("192.168.1.0/24");
        assert!(lan.contains(&ip("192.168.1.0")));
        assert!(lan.contains(&ip("192.168.1.255")));
        assert!(!lan.contains(&ip("192.168.2.1")));
        assert!(!lan.contains(&ip("::ffff:192.168.1.1")));
        let ula = prefix("fd00:1::/64");
        assert!(ula.contains(&ip("fd00:1::abcd")));
        assert!(!ula.contains(&ip("fd00:2::1")));
        assert!(!ula.contains(&ip("192.168.1.1")));
        assert!(prefix("0.0.0.0/0").contains(&ip("8.8.8.8")));
        assert!(prefix("::/0").contains(&ip("2001:db8::1")));
        assert!(prefix("10.1.2.3/32").contains(&ip("10.1.2.3")));
        assert!(!prefix("10.1.2.3/32").contains(&ip("10.1.2.4")));
    }

    #[test]
    fn network_of_clears_host_bits_and_rejects_overlong_lengths() {
        assert_eq!(
            IpPrefix::network_of(ip("192.168.1.77"), 24),
            Some(prefix("192.168.1.0/24"))
        );
        assert_eq!(
            IpPrefix::network_of(ip("2001:db8::77"), 64),
            Some(prefix("2001:db8::/64"))
        );
        assert_eq!(IpPrefix::network_of(ip("10.0.0.1"), 33), None);
    }

    #[test]
    fn a_hand_built_prefix_with_an_overlong_length_matches_only_its_address() {
        let odd = IpPrefix {
            addr: ip("10.0.0.1"),
            len: 200,
        };
        assert!(odd.contains(&ip("10.0.0.1")));
        assert!(!odd.contains(&ip("10.0.0.2")));
    }
}
