//! The `config protocol` sections: classes of traffic for the protocol view
//! (conntrack placement), added to or renaming the built-in ones.
//!
//! ```text
//! config protocol 'plex'
//!     list port 'tcp/32400'
//! config protocol 'web'          # http and https shown as one class
//!     list class 'http'
//!     list class 'https'
//! ```

use super::table::{Bad, Known, apply};
use super::uci;
use super::value::{describe, every, label};

/// A port or range of one L4 protocol: `tcp/443`, `udp/5000-5100`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PortRange {
    /// 6 TCP, 17 UDP.
    pub protocol: u8,
    pub first: u16,
    pub last: u16,
}

impl PortRange {
    pub fn contains(&self, protocol: u8, port: u16) -> bool {
        self.protocol == protocol && (self.first..=self.last).contains(&port)
    }
}

/// One `config protocol 'NAME'` section.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ProtocolClass {
    /// The section's name: the class shown.
    pub name: String,
    /// Server ports that belong to it, before any built-in class.
    pub ports: Vec<PortRange>,
    /// Built-in classes shown under this name instead.
    pub classes: Vec<String>,
}

const PORT: &str = "a protocol and server port or range: tcp/443, udp/5000-5100";

fn port_range(text: &str) -> Option<PortRange> {
    let (protocol, ports) = text.trim().split_once('/')?;
    let protocol = match protocol {
        "tcp" => 6,
        "udp" => 17,
        _ => return None,
    };
    let (first, last) = match ports.split_once('-') {
        Some((a, b)) => (a.parse().ok()?, b.parse().ok()?),
        None => {
            let p = ports.parse().ok()?;
            (p, p)
        }
    };
    (first >= 1 && first <= last).then_some(PortRange {
        protocol,
        first,
        last,
    })
}

const PROTOCOL_OPTIONS: &[Known<ProtocolClass>] = &[
    Known {
        name: "port",
        many: true,
        expected: PORT,
        default: "",
        set: |c, v| {
            c.ports = every(v, port_range)?;
            Ok(())
        },
    },
    Known {
        name: "class",
        many: true,
        expected: "the name of a built-in class (https, quic, http, dns, dns-over-tls, ssh, ntp, mail, vpn, icmp)",
        default: "",
        set: |c, v| {
            c.classes = every(v, label)?;
            if let Some(at) = v
                .iter()
                .position(|name| !BUILTIN_CLASSES.contains(&name.trim()))
            {
                return Err(Bad {
                    at,
                    why: Some(format!(
                        "'{}' is not a built-in class: built-in ones are {}",
                        v[at].trim(),
                        BUILTIN_CLASSES.join(", ")
                    )),
                });
            }
            Ok(())
        },
    },
];

/// The built-in classes' names, as `account::protocols` defines them.
pub const BUILTIN_CLASSES: &[&str] = &[
    "https",
    "quic",
    "http",
    "dns",
    "dns-over-tls",
    "ssh",
    "ntp",
    "mail",
    "vpn",
    "icmp",
];

/// A `config protocol` section; None when it has problems, which are pushed.
pub(crate) fn protocol(
    section: &uci::Section,
    problems: &mut Vec<(usize, String)>,
) -> Option<ProtocolClass> {
    let before = problems.len();
    let Some(name) = section.name.as_deref().and_then(label) else {
        problems.push((
            section.line,
            "a protocol section needs a name, the class it shows: config protocol 'plex'".into(),
        ));
        return None;
    };
    let mut class = ProtocolClass {
        name,
        ..ProtocolClass::default()
    };
    apply(&mut class, PROTOCOL_OPTIONS, section, problems);
    if problems.len() == before && class.ports.is_empty() && class.classes.is_empty() {
        problems.push((
            section.line,
            format!(
                "{} names no traffic: add a line such as list port 'tcp/32400' or list class 'https'",
                describe(section)
            ),
        ));
    }
    (problems.len() == before).then_some(class)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::tests::{error, parse};

    #[test]
    fn protocol_sections_parse_and_bad_ones_name_the_line_and_the_fix() {
        let c = parse(
            "config protocol 'plex'\n\tlist port 'tcp/32400'\n\tlist port 'udp/32410-32414'\n",
        );
        assert_eq!(c.protocols[0].name, "plex");
        assert_eq!(c.protocols[0].ports.len(), 2);
        assert!(error("config protocol\n\tlist port 'tcp/1'\n").contains("needs a name"));
        assert!(error("config protocol 'x'\n").contains("names no traffic"));
        let bad = error("config protocol 'x'\n\tlist port 'tcp/0'\n");
        assert!(bad.contains(":2:") && bad.contains("tcp/443"), "{bad}");
        let unknown = error("config protocol 'x'\n\tlist class 'torrent'\n");
        assert!(
            unknown.contains("not a built-in class") && unknown.contains("https"),
            "{unknown}"
        );
    }

    #[test]
    fn ports_and_ranges_of_tcp_and_udp_parse_and_others_do_not() {
        assert_eq!(
            port_range("tcp/443"),
            Some(PortRange {
                protocol: 6,
                first: 443,
                last: 443
            })
        );
        assert_eq!(
            port_range("udp/5000-5100"),
            Some(PortRange {
                protocol: 17,
                first: 5000,
                last: 5100
            })
        );
        for bad in ["icmp/1", "tcp/0", "tcp/9-3", "tcp", "tcp/70000", "443"] {
            assert_eq!(port_range(bad), None, "{bad}");
        }
    }
}
