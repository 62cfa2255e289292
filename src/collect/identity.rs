//! Names for the devices on the LAN: the admin's `config device` sections,
//! `/etc/ethers`, and what the DHCP servers (dnsmasq, odhcpd) learnt.
//!
//! Those files are written by other programs, with hostnames the clients
//! chose themselves, so the parsers never fail: a bad line is skipped and
//! the rest used. Each source is capped at [`MAX_ENTRIES`] entries and each
//! file at [`MAX_FILE_BYTES`], so a flood of leases cannot exhaust a
//! router's memory.

use crate::mac::Mac;
use std::collections::HashMap;
use std::fs::File;
use std::io::{self, Read};
use std::net::IpAddr;
use std::path::Path;

use crate::config::{Config, DeviceName};

/// Entries kept per source; later lines are ignored.
pub const MAX_ENTRIES: usize = 65_536;
/// Bytes read per file; the rest is ignored.
pub const MAX_FILE_BYTES: u64 = 16 << 20;
/// The longest DNS name; anything longer is not a hostname.
const MAX_NAME_BYTES: usize = 253;

/// One line of dnsmasq's lease file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Lease {
    /// None for DHCPv6 leases, which dnsmasq records by DUID, and for
    /// hardware other than Ethernet.
    pub mac: Option<Mac>,
    pub ip: IpAddr,
    /// None when the client sent none (dnsmasq writes `*`).
    pub hostname: Option<String>,
}

/// dnsmasq's `/tmp/dhcp.leases`: `EXPIRY MAC IP HOSTNAME CLIENTID` lines,
/// then, after a `duid SERVER-DUID` line, DHCPv6 leases as
/// `EXPIRY IAID IPV6 HOSTNAME CLIENTID`.
pub fn parse_dnsmasq_leases(text: &str) -> Vec<Lease> {
    let mut leases = Vec::new();
    let mut dhcpv6 = false;
    for line in text.lines() {
        if leases.len() == MAX_ENTRIES {
            break;
        }
        let mut fields = line.split_whitespace();
        let Some(expiry) = fields.next() else {
            continue;
        };
        if expiry == "duid" {
            dhcpv6 = true;
            continue;
        }
        let (Some(id), Some(ip)) = (fields.next(), fields.next()) else {
            continue;
        };
        let Ok(ip) = ip.parse() else {
            continue;
        };
        if !expiry.bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        leases.push(Lease {
            mac: if dhcpv6 { None } else { id.parse().ok() },
            ip,
            hostname: fields.next().and_then(name),
        });
    }
    leases
}

/// `/etc/ethers`: `MAC NAME` lines, `#` comments. A line whose second
/// column is an IP address gives no name and is skipped.
pub fn parse_ethers(text: &str) -> Vec<(Mac, String)> {
    text.lines()
        .filter_map(|line| {
            let mut fields = uncommented(line).split_whitespace();
            let mac = fields.next()?.parse().ok()?;
            let second = fields.next()?;
            if second.parse::<IpAddr>().is_ok() {
                return None;
            }
            Some((mac, name(second)?))
        })
        .take(MAX_ENTRIES)
        .collect()
}

/// A hosts file such as odhcpd's `/tmp/hosts/odhcpd`: `IP NAME [ALIAS...]`
/// lines, `#` comments. The first name is kept as written; odhcpd writes
/// `laptop.lan laptop` when the LAN has a domain, so it is the long form.
pub fn parse_hosts(text: &str) -> Vec<(IpAddr, String)> {
    text.lines()
        .filter_map(|line| {
            let mut fields = uncommented(line).split_whitespace();
            let ip = fields.next()?.parse().ok()?;
            Some((ip, name(fields.next()?)?))
        })
        .take(MAX_ENTRIES)
        .collect()
}

fn uncommented(line: &str) -> &str {
    line.split_once('#').map_or(line, |(before, _)| before)
}

/// A hostname worth showing: not dnsmasq's `*` placeholder, not absurdly
/// long, nothing that could upset a terminal.
fn name(word: &str) -> Option<String> {
    let plausible = word != "*" && word.len() <= MAX_NAME_BYTES;
    (plausible && !word.contains(char::is_control)).then(|| word.to_owned())
}

/// Every name known for the LAN's devices, looked up by MAC and address.
#[derive(Clone, Debug, Default)]
pub struct Names {
    configured: HashMap<Mac, DeviceName>,
    ethers: HashMap<Mac, String>,
    leased: HashMap<Mac, String>,
    by_ip: HashMap<IpAddr, String>,
}

impl Names {
    /// Reads the files the configuration names. A missing file is normal
    /// (no DHCPv6 means no odhcpd file) and silent; any other failure to
    /// read one is returned as a warning, worded the same each time so a
    /// caller reloading often can log a change only once.
    pub fn load(config: &Config) -> (Names, Vec<String>) {
        let mut warnings = Vec::new();
        let leases = parse_dnsmasq_leases(&read(&config.dhcp_leases, &mut warnings));
        let ethers = parse_ethers(&read(&config.ethers, &mut warnings));
        let hosts = parse_hosts(&read(&config.odhcpd_hosts, &mut warnings));
        let sources = [
            (&config.dhcp_leases, leases.len()),
            (&config.ethers, ethers.len()),
            (&config.odhcpd_hosts, hosts.len()),
        ];
        for (path, count) in sources {
            if count == MAX_ENTRIES {
                warnings.push(format!(
                    "{}: using only the first {MAX_ENTRIES} entries",
                    path.display()
                ));
            }
        }
        let names = Names::from_sources(&config.devices, leases, ethers, hosts);
        (names, warnings)
    }

    /// Within one source the first entry for a MAC or address wins; a lease
    /// wins over a hosts entry for the same address.
    pub fn from_sources(
        devices: &[DeviceName],
        leases: Vec<Lease>,
        ethers: Vec<(Mac, String)>,
        hosts: Vec<(IpAddr, String)>,
    ) -> Names {
        let mut names = Names::default();
        for device in devices {
            names
                .configured
                .entry(device.mac)
                .or_insert_with(|| device.clone());
        }
        for (mac, name) in ethers {
            names.ethers.entry(mac).or_insert(name);
        }
        for lease in leases {
            let Some(hostname) = lease.hostname else {
                continue;
            };
            if let Some(mac) = lease.mac {
                names.leased.entry(mac).or_insert_with(|| hostname.clone());
            }
            names.by_ip.entry(lease.ip).or_insert(hostname);
        }
        for (ip, name) in hosts {
            names.by_ip.entry(ip).or_insert(name);
        }
        names
    }

    /// The admin's own name first, then `/etc/ethers`, then the DHCP lease
    /// for the MAC, then a lease or hosts entry for the first of `ips` that
    /// has one (DHCPv6 leases are known only by address).
    pub fn hostname(&self, mac: &Mac, ips: &[IpAddr]) -> Option<&str> {
        let by_mac = self
            .configured
            .get(mac)
            .map(|d| &d.name)
            .or_else(|| self.ethers.get(mac))
            .or_else(|| self.leased.get(mac));
        by_mac
            .or_else(|| ips.iter().find_map(|ip| self.by_ip.get(ip)))
            .map(String::as_str)
    }

    /// Only `config device` sections give groups.
    pub fn group(&self, mac: &Mac) -> Option<&str> {
        self.configured.get(mac)?.group.as_deref()
    }
}

/// The file's text, or none when it cannot be read; invalid UTF-8 is
/// replaced, so one odd hostname costs one line, not the file.
fn read(path: &Path, warnings: &mut Vec<String>) -> String {
    let mut bytes = Vec::new();
    let result = File::open(path).and_then(|f| f.take(MAX_FILE_BYTES + 1).read_to_end(&mut bytes));
    match result {
        Ok(_) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => return String::new(),
        Err(e) => {
            warnings.push(format!(
                "cannot read {}: {e}: device names from it are missing until it is readable",
                path.display()
            ));
            return String::new();
        }
    }
    if u64::try_from(bytes.len()).unwrap_or(u64::MAX) > MAX_FILE_BYTES {
        warnings.push(format!(
            "{}: larger than {} MiB, reading only the start",
            path.display(),
            MAX_FILE_BYTES >> 20
        ));
        // Drop the partial last line rather than misread it.
        let end = bytes.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
        bytes.truncate(end);
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    const LAPTOP: Mac = Mac([0x00, 0x1b, 0x21, 0x3a, 0x4b, 0x5c]);
    const PHONE: Mac = Mac([0xda, 0xa1, 0x19, 0x00, 0x00, 0x01]);

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    fn lease(mac: Option<Mac>, addr: &str, hostname: Option<&str>) -> Lease {
        Lease {
            mac,
            ip: ip(addr),
            hostname: hostname.map(String::from),
        }
    }

    const LEASES: &str = "\
1716400000 00:1b:21:3a:4b:5c 192.168.1.10 laptop 01:00:1b:21:3a:4b:5c
0 da:a1:19:00:00:01 192.168.1.11 * *
1716400000 06-00:1b:21:3a:4b:5c 192.168.1.12 printer *
duid 00:01:00:01:2d:3e:4f:50:00:1b:21:00:00:01
1716400000 12345678 fd00::10 laptop 00:01:00:01:aa:bb
1716400000 T87654321 fd00::11 * 00:04:aa:bb
";

    #[test]
    fn dnsmasq_leases_give_v4_leases_by_mac_and_v6_leases_by_address() {
        assert_eq!(
            parse_dnsmasq_leases(LEASES),
            [
                lease(Some(LAPTOP), "192.168.1.10", Some("laptop")),
                lease(Some(PHONE), "192.168.1.11", None),
                lease(None, "192.168.1.12", Some("printer")),
                lease(None, "fd00::10", Some("laptop")),
                lease(None, "fd00::11", None),
            ]
        );
    }

    #[test]
    fn bad_lease_lines_are_skipped_and_the_rest_kept() {
        let text = "\
garbage
1716400000 00:1b:21:3a:4b:5c
1716400000 00:1b:21:3a:4b:5c not-an-ip laptop *
soon 00:1b:21:3a:4b:5c 192.168.1.10 laptop *
\r
1716400000 00:1b:21:3a:4b:5c 192.168.1.10 lap\u{1b}[2Jtop *\r
1716400000 zz:1b:21:3a:4b:5c 192.168.1.13 tv
";
        assert_eq!(
            parse_dnsmasq_leases(text),
            [
                lease(Some(LAPTOP), "192.168.1.10", None),
                lease(None, "192.168.1.13", Some("tv")),
            ]
        );
    }

    #[test]
    fn ethers_keeps_names_and_skips_addresses_comments_and_bad_macs() {
        let text = "\
# static names
00:1b:21:3a:4b:5c laptop   # the work one
DA-A1-19-00-00-01\tphone
00:1b:21:3a:4b:5d 192.168.1.20
not-a-mac tv
00:1b:21:3a:4b:5e
  #00:1b:21:3a:4b:5f hidden
";
        assert_eq!(
            parse_ethers(text),
            [(LAPTOP, "laptop".into()), (PHONE, "phone".into())]
        );
    }

    #[test]
    fn hosts_files_give_the_first_name_as_written() {
        let text = "\
# odhcpd
fd00::10\tlaptop.lan\tlaptop
192.168.1.11\tphone
fe80::1%br-lan\tlinklocal
192.168.1.300 bad
192.168.1.12
::1 localhost # comment
";
        assert_eq!(
            parse_hosts(text),
            [
                (ip("fd00::10"), "laptop.lan".into()),
                (ip("192.168.1.11"), "phone".into()),
                (ip("::1"), "localhost".into()),
            ]
        );
    }

    #[test]
    fn overlong_names_are_not_names() {
        let long = "a".repeat(MAX_NAME_BYTES + 1);
        let text = format!("0 00:1b:21:3a:4b:5c 192.168.1.10 {long} *\n");
        assert_eq!(parse_dnsmasq_leases(&text)[0].hostname, None);
        assert!(parse_hosts(&format!("192.168.1.10 {long}")).is_empty());
        let fits = "a".repeat(MAX_NAME_BYTES);
        assert_eq!(parse_hosts(&format!("192.168.1.10 {fits}")).len(), 1);
    }

    #[test]
    fn each_source_stops_at_the_entry_cap() {
        let lines = MAX_ENTRIES + 10;
        let leases: String = (0..lines)
            .map(|i| {
                format!(
                    "0 00:1b:21:3a:4b:5c 10.0.{}.{} h *\n",
                    i / 256 % 256,
                    i % 256
                )
            })
            .collect();
        assert_eq!(parse_dnsmasq_leases(&leases).len(), MAX_ENTRIES);
        assert_eq!(
            parse_ethers(&"00:1b:21:3a:4b:5c x\n".repeat(lines)).len(),
            MAX_ENTRIES
        );
        assert_eq!(
            parse_hosts(&"10.0.0.1 x\n".repeat(lines)).len(),
            MAX_ENTRIES
        );
    }

    fn device(mac: Mac, name: &str, group: Option<&str>) -> DeviceName {
        DeviceName {
            mac,
            name: name.into(),
            group: group.map(String::from),
        }
    }

    #[test]
    fn names_follow_config_then_ethers_then_lease_then_address() {
        let other = Mac([0x00, 0x1b, 0x21, 0, 0, 9]);
        let names = Names::from_sources(
            &[device(LAPTOP, "Work laptop", Some("office"))],
            vec![
                lease(Some(LAPTOP), "192.168.1.10", Some("dhcp-laptop")),
                lease(Some(PHONE), "192.168.1.11", Some("dhcp-phone")),
                lease(None, "fd00::12", Some("v6-only")),
            ],
            vec![
                (LAPTOP, "ethers-laptop".into()),
                (other, "ethers-other".into()),
            ],
            vec![
                (ip("fd00::12"), "hosts-shadowed".into()),
                (ip("fd00::13"), "hosts-only".into()),
            ],
        );
        assert_eq!(names.hostname(&LAPTOP, &[]), Some("Work laptop"));
        assert_eq!(
            names.hostname(&other, &[ip("fd00::12")]),
            Some("ethers-other")
        );
        assert_eq!(
            names.hostname(&PHONE, &[ip("fd00::12")]),
            Some("dhcp-phone")
        );
        let nobody = Mac([0x02, 0, 0, 0, 0, 1]);
        assert_eq!(
            names.hostname(&nobody, &[ip("10.9.9.9"), ip("fd00::13"), ip("fd00::12")]),
            Some("hosts-only")
        );
        assert_eq!(names.hostname(&nobody, &[ip("fd00::12")]), Some("v6-only"));
        assert_eq!(names.hostname(&nobody, &[ip("10.9.9.9")]), None);
        assert_eq!(names.group(&LAPTOP), Some("office"));
        assert_eq!(names.group(&PHONE), None);
    }

    #[test]
    fn within_a_source_the_first_entry_wins() {
        let names = Names::from_sources(
            &[],
            vec![
                lease(Some(LAPTOP), "192.168.1.10", None),
                lease(Some(LAPTOP), "192.168.1.10", Some("first")),
                lease(Some(LAPTOP), "192.168.1.20", Some("second")),
            ],
            vec![(PHONE, "one".into()), (PHONE, "two".into())],
            vec![],
        );
        assert_eq!(names.hostname(&LAPTOP, &[]), Some("first"));
        assert_eq!(names.hostname(&PHONE, &[]), Some("one"));
        assert_eq!(
            names.hostname(&Mac::OTHER, &[ip("192.168.1.20")]),
            Some("second")
        );
    }

    fn scratch(tag: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("netmeter-identity-{}-{tag}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn load_reads_the_configured_files_and_is_silent_about_missing_ones() {
        let dir = scratch("load");
        std::fs::write(dir.join("leases"), LEASES).unwrap();
        std::fs::write(dir.join("ethers"), b"da:a1:19:00:00:01 phone\n\xff\xfe\n").unwrap();
        let config = Config {
            dhcp_leases: dir.join("leases"),
            ethers: dir.join("ethers"),
            odhcpd_hosts: dir.join("missing"),
            devices: vec![device(LAPTOP, "mine", Some("kids"))],
            ..Config::default()
        };
        let (names, warnings) = Names::load(&config);
        assert_eq!(warnings, Vec::<String>::new());
        assert_eq!(names.hostname(&LAPTOP, &[]), Some("mine"));
        assert_eq!(names.hostname(&PHONE, &[]), Some("phone"));
        assert_eq!(
            names.hostname(&Mac::OTHER, &[ip("fd00::10")]),
            Some("laptop")
        );
        assert_eq!(names.group(&LAPTOP), Some("kids"));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn an_unreadable_file_is_a_warning_naming_it_and_the_rest_still_load() {
        let dir = scratch("unreadable");
        std::fs::write(dir.join("hosts"), "fd00::10 laptop\n").unwrap();
        let config = Config {
            dhcp_leases: dir.clone(),
            ethers: dir.join("missing"),
            odhcpd_hosts: dir.join("hosts"),
            ..Config::default()
        };
        let (names, warnings) = Names::load(&config);
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(
            warnings[0].starts_with(&format!("cannot read {}: ", dir.display())),
            "{warnings:?}"
        );
        assert_eq!(
            names.hostname(&Mac::OTHER, &[ip("fd00::10")]),
            Some("laptop")
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_file_past_the_size_cap_is_cut_at_a_line_and_warned_about() {
        let dir = scratch("big");
        let path = dir.join("hosts");
        let line = "192.168.1.10 laptop\n";
        let copies = usize::try_from(MAX_FILE_BYTES).unwrap() / line.len() + 2;
        std::fs::write(&path, line.repeat(copies)).unwrap();
        let mut warnings = Vec::new();
        let text = read(&path, &mut warnings);
        assert!(u64::try_from(text.len()).unwrap() <= MAX_FILE_BYTES);
        assert!(text.ends_with(line));
        assert_eq!(
            warnings,
            [format!(
                "{}: larger than 16 MiB, reading only the start",
                path.display()
            )]
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
