//! Classes of traffic for the protocol view: the L4 protocol and the
//! server's port, through a small built-in table and the admin's own
//! `config protocol` sections (checked first).

use std::collections::BTreeMap;

use crate::config::ProtocolClass;
use crate::config::protocol::BUILTIN_CLASSES;
use crate::mac::Mac;
use crate::rxtx::RxTx;

const TCP: u8 = 6;
const UDP: u8 = 17;
const ICMP: u8 = 1;
const ICMPV6: u8 = 58;

/// The built-in table: (class, protocol, server ports).
const BUILTIN: &[(&str, u8, &[u16])] = &[
    ("https", TCP, &[443]),
    ("quic", UDP, &[443]),
    ("http", TCP, &[80, 8080]),
    ("dns", UDP, &[53]),
    ("dns", TCP, &[53]),
    ("dns-over-tls", TCP, &[853]),
    ("ssh", TCP, &[22]),
    ("ntp", UDP, &[123]),
    ("mail", TCP, &[25, 110, 143, 465, 587, 993, 995]),
    ("vpn", UDP, &[500, 1194, 4500, 51820]),
    ("vpn", TCP, &[1194]),
];

/// What is not in any class.
pub const OTHER: &str = "other";

/// An index into `ProtocolClasses::names`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ClassId(u16);

/// The classes in force: names, and how a flow finds its one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProtocolClasses {
    names: Vec<String>,
    /// The admin's sections, in file order, with their class.
    custom: Vec<(ProtocolClass, ClassId)>,
    /// Each built-in class's id (after renames), in `BUILTIN_CLASSES` order.
    builtin: Vec<ClassId>,
    other: ClassId,
}

impl ProtocolClasses {
    pub fn builtin() -> Self {
        Self::new(&[])
    }

    pub fn new(custom: &[ProtocolClass]) -> Self {
        let mut names: Vec<String> = Vec::new();
        let mut id_of = |name: &str| -> ClassId {
            let at = names.iter().position(|n| n == name).unwrap_or_else(|| {
                names.push(name.to_string());
                names.len() - 1
            });
            ClassId(at as u16)
        };
        let custom: Vec<_> = custom.iter().map(|c| (c.clone(), id_of(&c.name))).collect();
        let builtin = BUILTIN_CLASSES
            .iter()
            .map(|b| {
                let renamed = custom
                    .iter()
                    .find(|(c, _)| c.classes.iter().any(|n| n == b));
                match renamed {
                    Some((_, id)) => *id,
                    None => id_of(b),
                }
            })
            .collect();
        let other = id_of(OTHER);
        Self {
            names,
            custom,
            builtin,
            other,
        }
    }

    /// The class of traffic to `port` (the server's) over `protocol`.
    pub fn classify(&self, protocol: u8, port: u16) -> ClassId {
        if let Some((_, id)) = self
            .custom
            .iter()
            .find(|(c, _)| c.ports.iter().any(|r| r.contains(protocol, port)))
        {
            return *id;
        }
        let name = match protocol {
            ICMP | ICMPV6 => Some("icmp"),
            _ => BUILTIN
                .iter()
                .find(|(_, p, ports)| *p == protocol && ports.contains(&port))
                .map(|(name, _, _)| *name),
        };
        match name.and_then(|n| BUILTIN_CLASSES.iter().position(|b| *b == n)) {
            Some(at) => self.builtin[at],
            None => self.other,
        }
    }

    pub fn name(&self, id: ClassId) -> &str {
        self.names.get(id.0 as usize).map_or(OTHER, String::as_str)
    }
}

/// Bytes per device and class (rx what the device received), since
/// `since_unix`. Kept in memory only: the saved state and the history keep
/// each device's totals, not its classes.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ClassTotals {
    by_device: BTreeMap<Mac, BTreeMap<String, RxTx<u64>>>,
    max_devices: usize,
    since_unix: u64,
}

impl ClassTotals {
    pub fn new(max_devices: usize, since_unix: u64) -> Self {
        Self {
            by_device: BTreeMap::new(),
            max_devices,
            since_unix,
        }
    }

    /// Beyond `max_devices`, a new device's classes go to `Mac::OTHER`, as
    /// its totals go to `other`.
    pub fn credit(&mut self, mac: Mac, class: &str, bytes: RxTx<u64>) {
        let mac = if self.by_device.contains_key(&mac) || self.by_device.len() < self.max_devices {
            mac
        } else {
            Mac::OTHER
        };
        let total = self
            .by_device
            .entry(mac)
            .or_default()
            .entry(class.to_string())
            .or_default();
        *total = total.saturating_add(bytes);
    }

    /// One device's classes, by name.
    pub fn device(&self, mac: &Mac) -> Option<&BTreeMap<String, RxTx<u64>>> {
        self.by_device.get(mac)
    }

    pub fn devices(&self) -> impl Iterator<Item = (&Mac, &BTreeMap<String, RxTx<u64>>)> {
        self.by_device.iter()
    }

    pub fn since_unix(&self) -> u64 {
        self.since_unix
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::PortRange;

    #[test]
    fn well_known_ports_land_in_their_class_and_the_rest_in_other() {
        let c = ProtocolClasses::builtin();
        let name = |p, port| c.name(c.classify(p, port)).to_string();
        assert_eq!(name(TCP, 443), "https");
        assert_eq!(name(UDP, 443), "quic");
        assert_eq!(name(UDP, 53), "dns");
        assert_eq!(name(TCP, 53), "dns");
        assert_eq!(name(TCP, 853), "dns-over-tls");
        assert_eq!(name(TCP, 22), "ssh");
        assert_eq!(name(UDP, 123), "ntp");
        assert_eq!(name(ICMP, 0), "icmp");
        assert_eq!(name(ICMPV6, 0), "icmp");
        assert_eq!(name(TCP, 9), "other");
        assert_eq!(name(UDP, 22), "other");
    }

    #[test]
    fn class_totals_add_up_per_device_and_fold_devices_beyond_the_limit() {
        let (a, b) = (Mac([2, 0, 0, 0, 0, 1]), Mac([2, 0, 0, 0, 0, 2]));
        let mut t = ClassTotals::new(1, 100);
        t.credit(a, "https", RxTx::new(10, 1));
        t.credit(a, "https", RxTx::new(5, 2));
        t.credit(b, "dns", RxTx::new(7, 7));
        assert_eq!(t.device(&a).unwrap()["https"], RxTx::new(15, 3));
        assert_eq!(t.device(&b), None);
        assert_eq!(t.device(&Mac::OTHER).unwrap()["dns"], RxTx::new(7, 7));
    }

    #[test]
    fn every_builtin_row_names_a_declared_class() {
        for (name, _, _) in BUILTIN {
            assert!(BUILTIN_CLASSES.contains(name), "{name}");
        }
    }

    #[test]
    fn the_admins_classes_win_and_can_rename_builtin_ones() {
        let custom = [
            ProtocolClass {
                name: "plex".into(),
                ports: vec![PortRange {
                    protocol: TCP,
                    first: 32400,
                    last: 32400,
                }],
                classes: vec![],
            },
            ProtocolClass {
                name: "web".into(),
                ports: vec![PortRange {
                    protocol: TCP,
                    first: 8443,
                    last: 8443,
                }],
                classes: vec!["http".into(), "https".into()],
            },
        ];
        let c = ProtocolClasses::new(&custom);
        let name = |p, port| c.name(c.classify(p, port)).to_string();
        assert_eq!(name(TCP, 32400), "plex");
        assert_eq!(name(TCP, 443), "web");
        assert_eq!(name(TCP, 80), "web");
        assert_eq!(name(TCP, 8443), "web");
        assert_eq!(name(UDP, 443), "quic");
        assert_eq!(name(TCP, 1), "other");
    }
}
