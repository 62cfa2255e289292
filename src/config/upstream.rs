//! `config upstream 'name'` sections: the routers above this one to scrape.
//!
//! What differs between protocols (name, default port and interval, how a
//! router is addressed, which credentials it needs) is one row of
//! [`SPECS`]; the option table, the checks after it and their messages
//! read the rows, so a new protocol is a variant and a row here plus its
//! client in `upstream::sources`. One option table serves every protocol;
//! which options a protocol needs is checked after the table, so a missing
//! password is reported on the section line with an example to add.
//!
//! Compiled in the full build only; the core keeps a section by name and
//! line (`upstream_absent.rs`).

use std::path::PathBuf;
use std::time::Duration;

use crate::config::Secret;
use crate::config::table::{Bad, Known, apply};
use crate::config::uci;
use crate::config::value::{
    PATH, USERNAME, absolute, boolean, describe, every, host, last, password, port, shown,
    username, whole,
};

/// The protocol an upstream router is read with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UpstreamKind {
    /// UPnP IGD WANCommonInterfaceConfig:1, no auth.
    Igd,
    /// FRITZ!Box TR-064 with Digest auth.
    Fritzbox,
    /// ASUS stock or Merlin web API.
    Asus,
    /// OpenWrt rpcd over uhttpd-mod-ubus.
    Ubus,
    /// Any Prometheus text endpoint (node_exporter style).
    Prometheus,
    /// TP-Link legacy web UI statistics.
    Tplink,
    /// SNMP v2c IF-MIB.
    Snmp,
    /// DrayTek telnet line statistics.
    Draytek,
    /// `vnstat --json` output from a URL or file.
    Vnstat,
    /// TP-Link Deco local web API (RSA login, AES-encrypted JSON): rates.
    Deco,
}

/// How a protocol's router is found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Address {
    /// `option host` (and `option port`).
    Host,
    /// `option url`; `example` is what the missing-URL message suggests.
    Url { example: &'static str },
    /// Exactly one of `option url` and `option file`.
    UrlOrFile { example: &'static str },
}

/// Which credentials a protocol needs before a scrape is worth trying.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Credentials {
    /// None: the router answers anyone on its LAN.
    None,
    /// `option username` and a password.
    Login,
    /// A password; a username only if the router asks for one.
    Password,
    /// `option community`, which has a default (`public`).
    Community,
}

impl Credentials {
    pub fn needs_username(self) -> bool {
        self == Self::Login
    }

    /// `option password` or `option password_file`.
    pub fn needs_password(self) -> bool {
        matches!(self, Self::Login | Self::Password)
    }
}

/// Everything about a protocol that the configuration needs: one row per
/// [`UpstreamKind`] in [`SPECS`].
#[derive(Clone, Copy, Debug)]
pub struct Spec {
    pub kind: UpstreamKind,
    /// The value of `option type`.
    pub name: &'static str,
    /// The port the protocol's routers answer on out of the box.
    pub port: u16,
    pub interval: Duration,
    pub address: Address,
    pub credentials: Credentials,
    /// What one counter can plausibly grow by per second, in Mbit/s: a
    /// wrap implying more is a reset (`option max_rate`).
    pub max_rate_mbit: u64,
}

/// Every protocol, in [`UpstreamKind`]'s order (checked when compiling).
pub const SPECS: [Spec; UpstreamKind::ALL.len()] = [
    Spec {
        kind: UpstreamKind::Igd,
        name: "igd",
        port: 49000,
        interval: MINUTE,
        address: Address::Host,
        credentials: Credentials::None,
        max_rate_mbit: 2500,
    },
    Spec {
        kind: UpstreamKind::Fritzbox,
        name: "fritzbox",
        port: 49000,
        interval: MINUTE,
        address: Address::Host,
        credentials: Credentials::Login,
        max_rate_mbit: 2500,
    },
    Spec {
        kind: UpstreamKind::Asus,
        name: "asus",
        port: 80,
        interval: MINUTE,
        address: Address::Host,
        credentials: Credentials::Login,
        max_rate_mbit: 10000,
    },
    Spec {
        kind: UpstreamKind::Ubus,
        name: "ubus",
        port: 80,
        interval: MINUTE,
        address: Address::Host,
        credentials: Credentials::Login,
        max_rate_mbit: 10000,
    },
    Spec {
        kind: UpstreamKind::Prometheus,
        name: "prometheus",
        port: 80,
        interval: MINUTE,
        address: Address::Url {
            example: "http://192.168.1.1:9100/metrics",
        },
        credentials: Credentials::None,
        max_rate_mbit: 100000,
    },
    Spec {
        kind: UpstreamKind::Tplink,
        name: "tplink",
        port: 80,
        // 32-bit per-host counters: poll well inside a wrap.
        interval: Duration::from_secs(30),
        address: Address::Host,
        credentials: Credentials::Login,
        max_rate_mbit: 1000,
    },
    Spec {
        kind: UpstreamKind::Snmp,
        name: "snmp",
        port: 161,
        interval: MINUTE,
        address: Address::Host,
        credentials: Credentials::Community,
        max_rate_mbit: 100000,
    },
    Spec {
        kind: UpstreamKind::Draytek,
        name: "draytek",
        port: 23,
        interval: MINUTE,
        address: Address::Host,
        credentials: Credentials::Password,
        max_rate_mbit: 2500,
    },
    Spec {
        kind: UpstreamKind::Vnstat,
        name: "vnstat",
        port: 80,
        interval: MINUTE,
        address: Address::UrlOrFile {
            example: "http://192.168.1.10/cgi-bin/vnstat.cgi",
        },
        credentials: Credentials::None,
        max_rate_mbit: 100000,
    },
    Spec {
        kind: UpstreamKind::Deco,
        name: "deco",
        port: 80,
        // Rates, not counters: the shorter the interval, the smaller the
        // integration error (docs/UPSTREAM.md).
        interval: Duration::from_secs(30),
        address: Address::Host,
        credentials: Credentials::Password,
        max_rate_mbit: 2500,
    },
];

const MINUTE: Duration = Duration::from_secs(60);

// Row i is kind i, so `spec` is an index and a missing row a build error.
const _: () = {
    let mut i = 0;
    while i < SPECS.len() {
        assert!(SPECS[i].kind as usize == i && UpstreamKind::ALL[i] as usize == i);
        i += 1;
    }
};

impl UpstreamKind {
    pub const ALL: [UpstreamKind; 10] = [
        Self::Igd,
        Self::Fritzbox,
        Self::Asus,
        Self::Ubus,
        Self::Prometheus,
        Self::Tplink,
        Self::Snmp,
        Self::Draytek,
        Self::Vnstat,
        Self::Deco,
    ];

    pub const fn spec(self) -> &'static Spec {
        &SPECS[self as usize]
    }

    pub fn name(self) -> &'static str {
        self.spec().name
    }

    fn from_name(text: &str) -> Option<Self> {
        SPECS.iter().find(|s| s.name == text).map(|s| s.kind)
    }

    /// The port the protocol's routers answer on out of the box.
    pub fn default_port(self) -> u16 {
        self.spec().port
    }

    fn default_interval(self) -> Duration {
        self.spec().interval
    }

    /// Whether the protocol gives rates that netmeter integrates into
    /// totals (estimates) rather than byte counters.
    pub fn estimates(self) -> bool {
        matches!(self, Self::Deco)
    }

    /// The protocol whose `option type` is `text`.
    pub fn named(text: &str) -> Option<Self> {
        Self::from_name(text)
    }
}

/// "igd, fritzbox, … or vnstat", for `option type`'s message.
const KIND_NAMES: &str = kind_names().as_str();

/// "60 (tplink: 30)": the usual interval, then the protocols that differ.
const INTERVAL_DEFAULTS: &str = interval_defaults().as_str();

const fn kind_names() -> Text {
    let mut text = Text::new();
    let mut i = 0;
    while i < SPECS.len() {
        if i > 0 {
            text = text.push(if i + 1 == SPECS.len() { " or " } else { ", " });
        }
        text = text.push(SPECS[i].name);
        i += 1;
    }
    text
}

const fn interval_defaults() -> Text {
    // The interval most rows have; the first such row on a tie.
    let (mut usual, mut most, mut i) = (0, 0, 0);
    while i < SPECS.len() {
        let secs = SPECS[i].interval.as_secs();
        let (mut same, mut j) = (0, 0);
        while j < SPECS.len() {
            same += (SPECS[j].interval.as_secs() == secs) as usize;
            j += 1;
        }
        if same > most {
            (usual, most) = (secs, same);
        }
        i += 1;
    }
    let mut text = Text::new().number(usual);
    let (mut others, mut i) = (0, 0);
    while i < SPECS.len() {
        let secs = SPECS[i].interval.as_secs();
        if secs != usual {
            text = text.push(if others == 0 { " (" } else { ", " });
            text = text.push(SPECS[i].name).push(": ").number(secs);
            others += 1;
        }
        i += 1;
    }
    if others > 0 {
        text = text.push(")");
    }
    text
}

/// Text made while compiling, for the option table's `&'static str`
/// fields that [`SPECS`] decides.
struct Text {
    bytes: [u8; 256],
    len: usize,
}

impl Text {
    const fn new() -> Self {
        Text {
            bytes: [0; 256],
            len: 0,
        }
    }

    /// Fails the build when the text outgrows the buffer.
    const fn push(mut self, part: &str) -> Self {
        let part = part.as_bytes();
        let mut i = 0;
        while i < part.len() {
            self.bytes[self.len] = part[i];
            self.len += 1;
            i += 1;
        }
        self
    }

    const fn number(mut self, mut n: u64) -> Self {
        let (mut reversed, mut count) = ([0u8; 20], 0);
        loop {
            reversed[count] = b'0' + (n % 10) as u8;
            count += 1;
            n /= 10;
            if n == 0 {
                break;
            }
        }
        while count > 0 {
            count -= 1;
            self.bytes[self.len] = reversed[count];
            self.len += 1;
        }
        self
    }

    const fn as_str(&self) -> &str {
        match std::str::from_utf8(self.bytes.split_at(self.len).0) {
            Ok(text) => text,
            Err(_) => panic!("not UTF-8"),
        }
    }
}

/// The TP-Link web UI generation, when detection is to be skipped.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum TplinkVariant {
    #[default]
    Auto,
    /// Cookie `Authorization=Basic base64(user:pass)` on every request.
    Basic,
    /// Cookie with the MD5 of the password and a session token in the path.
    Md5,
    /// TD-W/Archer `/cgi?1&5` STAT_ENTRY.
    Cgi,
}

/// One `config upstream` section, validated.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UpstreamConfig {
    /// The section name: how the source is named in the API, the CLI and
    /// history (`isp/wan`).
    pub name: String,
    pub kind: UpstreamKind,
    /// Host name or IP address; None for URL- or file-based sources.
    pub host: Option<String>,
    pub port: u16,
    pub username: Option<String>,
    pub password: Option<Secret>,
    /// Read when the source starts, so the secret stays out of the config.
    pub password_file: Option<PathBuf>,
    pub interval: Duration,
    /// The hard limit of one scrape, connect to last byte.
    pub timeout: Duration,
    /// A path on the router overriding the protocol's (IGD control URL,
    /// ubus endpoint).
    pub path: Option<String>,
    /// `http://host:port/path` for Prometheus and vnStat.
    pub url: Option<String>,
    /// A local file instead of a URL (vnStat).
    pub file: Option<PathBuf>,
    /// The router's WAN device by its name on the router (ubus, SNMP,
    /// Prometheus, vnStat).
    pub device: Option<String>,
    /// Further interfaces to report by name; empty means every one.
    pub interfaces: Vec<String>,
    pub community: Option<Secret>,
    pub variant: TplinkVariant,
    /// netmeter's own interfaces on the same link as the upstream WAN, for
    /// the double-NAT difference; empty means netmeter's WAN (default routes).
    pub compare_interface: Vec<String>,
    /// Whether to report the double-NAT difference at all.
    pub compare: bool,
    /// `option max_rate` in Mbit/s; None is the protocol's default.
    pub max_rate_mbit: Option<u64>,
    /// The line of the `config upstream` statement, for messages.
    pub line: usize,
}

impl UpstreamConfig {
    /// `option max_rate` or the protocol's default, in bytes per second.
    pub fn max_rate_bytes(&self) -> u64 {
        let mbit = self.max_rate_mbit.unwrap_or(self.kind.spec().max_rate_mbit);
        mbit * 125_000
    }

    /// A source of `kind` with every option at its default.
    pub fn new(name: &str, kind: UpstreamKind) -> Self {
        UpstreamConfig {
            name: name.to_owned(),
            kind,
            host: None,
            port: kind.default_port(),
            username: None,
            password: None,
            password_file: None,
            interval: kind.default_interval(),
            timeout: Duration::from_secs(10),
            path: None,
            url: None,
            file: None,
            device: None,
            interfaces: Vec::new(),
            community: None,
            variant: TplinkVariant::Auto,
            compare_interface: Vec::new(),
            compare: true,
            max_rate_mbit: None,
            line: 0,
        }
    }
}

const UPSTREAM_OPTIONS: &[Known<UpstreamConfig>] = &[
    Known {
        name: "type",
        many: false,
        expected: KIND_NAMES,
        default: "",
        set: |u, v| {
            u.kind = last(v, UpstreamKind::from_name)?;
            Ok(())
        },
    },
    Known {
        name: "host",
        many: false,
        expected: "a host name or IP address such as 192.168.178.1 or fritz.box (no http://)",
        default: "",
        set: |u, v| {
            u.host = Some(last(v, host)?);
            Ok(())
        },
    },
    Known {
        name: "port",
        many: false,
        expected: "a port from 1 to 65535",
        default: "the protocol's",
        set: |u, v| {
            u.port = last(v, port)?;
            Ok(())
        },
    },
    Known {
        name: "username",
        many: false,
        expected: USERNAME,
        default: "",
        set: |u, v| {
            u.username = Some(last(v, username)?);
            Ok(())
        },
    },
    Known {
        name: "password",
        many: false,
        expected: "a password",
        default: "",
        // A secret: the message never quotes the value.
        set: |u, v| {
            u.password = Some(password(v)?);
            Ok(())
        },
    },
    Known {
        name: "password_file",
        many: false,
        expected: PATH,
        default: "",
        set: |u, v| {
            u.password_file = Some(last(v, absolute)?);
            Ok(())
        },
    },
    Known {
        name: "interval",
        many: false,
        expected: "whole seconds from 5 to 86400",
        default: INTERVAL_DEFAULTS,
        set: |u, v| {
            u.interval = last(v, |s| whole(s, 5..=86_400).map(Duration::from_secs))?;
            Ok(())
        },
    },
    Known {
        name: "max_rate",
        many: false,
        expected: "whole Mbit/s from 1 to 1000000 (the fastest a counter can grow)",
        default: "per protocol, see docs/UPSTREAM.md",
        set: |u, v| {
            u.max_rate_mbit = Some(last(v, |s| whole(s, 1..=1_000_000))?);
            Ok(())
        },
    },
    Known {
        name: "timeout",
        many: false,
        expected: "whole seconds from 1 to 300",
        default: "10",
        set: |u, v| {
            u.timeout = last(v, |s| whole(s, 1..=300).map(Duration::from_secs))?;
            Ok(())
        },
    },
    Known {
        name: "path",
        many: false,
        expected: "a path on the router starting with /, such as /ctl/CmnIfCfg",
        default: "",
        set: |u, v| {
            u.path = Some(last(v, |s| {
                let ok = s.starts_with('/') && !s.contains(|c: char| c.is_whitespace());
                ok.then(|| s.to_owned())
            })?);
            Ok(())
        },
    },
    Known {
        name: "url",
        many: false,
        expected: "an http:// URL such as http://192.168.1.1:9100/metrics",
        default: "",
        set: |u, v| {
            let at = v.len() - 1;
            u.url = Some(url(v[at]).map_err(|why| Bad { at, why })?);
            Ok(())
        },
    },
    Known {
        name: "file",
        many: false,
        expected: PATH,
        default: "",
        set: |u, v| {
            u.file = Some(last(v, absolute)?);
            Ok(())
        },
    },
    Known {
        name: "device",
        many: false,
        expected: "the router's WAN device name, such as eth1 or pppoe-wan",
        default: "",
        set: |u, v| {
            u.device = Some(last(v, name)?);
            Ok(())
        },
    },
    Known {
        name: "interface",
        many: true,
        expected: "an interface name on the router, such as eth0",
        default: "",
        set: |u, v| {
            u.interfaces = every(v, name)?;
            Ok(())
        },
    },
    Known {
        name: "community",
        many: false,
        expected: "an SNMP community",
        default: "public",
        set: |u, v| {
            u.community = Some(password(v)?);
            Ok(())
        },
    },
    Known {
        name: "variant",
        many: false,
        expected: "auto, basic, md5 or cgi",
        default: "auto",
        set: |u, v| {
            u.variant = last(v, |s| match s {
                "auto" => Some(TplinkVariant::Auto),
                "basic" => Some(TplinkVariant::Basic),
                "md5" => Some(TplinkVariant::Md5),
                "cgi" => Some(TplinkVariant::Cgi),
                _ => None,
            })?;
            Ok(())
        },
    },
    Known {
        name: "compare_interface",
        many: true,
        expected: "a local interface name such as wan or eth1",
        default: "",
        set: |u, v| {
            u.compare_interface = every(v, name)?;
            Ok(())
        },
    },
    Known {
        name: "compare",
        many: false,
        expected: "1 or 0 (or true/false, yes/no, on/off)",
        default: "1",
        set: |u, v| {
            u.compare = last(v, boolean)?;
            Ok(())
        },
    },
];

/// A name on the router: printable, no spaces, at most 64 characters.
fn name(text: &str) -> Option<String> {
    let fits = (1..=64).contains(&text.len());
    (fits && !text.contains(|c: char| c.is_control() || c.is_whitespace())).then(|| text.to_owned())
}

/// A plain-HTTP URL; https gets its own message, since it is the likely
/// mistake.
fn url(text: &str) -> Result<String, Option<String>> {
    if text.starts_with("https://") {
        return Err(Some(
            "https:// is not supported yet: use the router's http:// address on the LAN".into(),
        ));
    }
    let rest = text.strip_prefix("http://").ok_or(None)?;
    let authority = rest.split('/').next().unwrap_or("");
    let ok = !authority.is_empty()
        && !authority.contains('@')
        && !text.contains(|c: char| c.is_control() || c.is_whitespace());
    ok.then(|| text.to_owned()).ok_or(None)
}

/// Source names become parts of history names (`isp/wan`) and URLs.
fn section_name(text: &str) -> bool {
    (1..=32).contains(&text.len()) && text.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// Reads a `config upstream` section into `sources`, pushing problems.
pub(super) fn add_section(
    sources: &mut Vec<UpstreamConfig>,
    section: &uci::Section,
    problems: &mut Vec<(usize, String)>,
) {
    let Some(source) = self::section(section, problems) else {
        return;
    };
    match sources.iter().find(|u| u.name == source.name) {
        Some(first) => problems.push((
            section.line,
            format!(
                "a second upstream section named '{}' (the first is at line {}): \
                 give each upstream router its own name",
                source.name, first.line
            ),
        )),
        None => sources.push(source),
    }
}

/// A `config upstream` section; None when it has problems, which are pushed.
fn section(section: &uci::Section, problems: &mut Vec<(usize, String)>) -> Option<UpstreamConfig> {
    let before = problems.len();
    let Some(name) = section.name.as_deref() else {
        problems.push((
            section.line,
            "an upstream section needs a name, used in the API and history: write \
             config upstream 'isp'"
                .into(),
        ));
        return None;
    };
    if !section_name(name) {
        problems.push((
            section.line,
            format!(
                "upstream name '{}': expected 1 to 32 of A-Z a-z 0-9 _, such as 'isp'",
                shown(name)
            ),
        ));
        return None;
    }
    // The type decides the defaults, so it is read first.
    let kind = section
        .options
        .iter()
        .rev()
        .find(|e| e.name == "type")
        .and_then(|e| UpstreamKind::from_name(&e.value));
    let mut source = UpstreamConfig::new(name, kind.unwrap_or(UpstreamKind::Igd));
    source.line = section.line;
    let given = apply(&mut source, UPSTREAM_OPTIONS, section, problems);
    if problems.len() != before {
        return None;
    }
    let is_given = |option: &str| {
        UPSTREAM_OPTIONS
            .iter()
            .zip(&given)
            .any(|(o, &given)| o.name == option && given)
    };
    let missing = |what: &str| {
        (
            section.line,
            format!("{} is missing {what}", describe(section)),
        )
    };
    if kind.is_none() {
        problems.push(missing(
            "option type: add a line such as option type 'fritzbox'",
        ));
        return None;
    }
    let spec = source.kind.spec();
    match spec.address {
        Address::Host if source.host.is_none() => problems.push(missing(
            "option host: add a line such as option host '192.168.1.1'",
        )),
        Address::Host => {}
        Address::Url { example } if source.url.is_none() => problems.push(missing(&format!(
            "option url: add a line such as option url '{example}'"
        ))),
        Address::Url { .. } => {}
        Address::UrlOrFile { example } => match (source.url.is_some(), source.file.is_some()) {
            (false, false) => problems.push(missing(&format!(
                "option url or option file: add a line such as option url '{example}'"
            ))),
            (true, true) => problems.push((
                section.line,
                format!(
                    "{} has both option url and option file: keep one",
                    describe(section)
                ),
            )),
            _ => {}
        },
    }
    if spec.credentials.needs_username() && source.username.is_none() {
        problems.push(missing(
            "option username: add a line such as option username 'admin'",
        ));
    }
    let needs_password = spec.credentials.needs_password();
    match (is_given("password"), is_given("password_file")) {
        (true, true) => problems.push((
            section.line,
            format!(
                "{} has both option password and option password_file: keep one",
                describe(section)
            ),
        )),
        (false, false) if needs_password => problems.push(missing(
            "option password or option password_file: add a line such as \
             option password_file '/etc/netmeter/isp.pass'",
        )),
        _ => {}
    }
    if source.timeout >= source.interval {
        problems.push((
            section.line,
            format!(
                "{}: option timeout ({} s) must be shorter than option interval ({} s)",
                describe(section),
                source.timeout.as_secs(),
                source.interval.as_secs()
            ),
        ));
    }
    (problems.len() == before).then_some(source)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::tests::{error, parse};
    use std::path::Path;

    #[test]
    fn every_kind_has_exactly_one_spec_row() {
        for kind in UpstreamKind::ALL {
            let rows = SPECS.iter().filter(|s| s.kind == kind).count();
            assert_eq!(rows, 1, "{kind:?}");
            assert_eq!(UpstreamKind::from_name(kind.name()), Some(kind));
        }
        assert_eq!(SPECS.len(), UpstreamKind::ALL.len());
    }

    #[test]
    fn texts_made_from_the_spec_rows_read_as_before() {
        assert_eq!(
            KIND_NAMES,
            "igd, fritzbox, asus, ubus, prometheus, tplink, snmp, draytek, vnstat or deco"
        );
        assert_eq!(INTERVAL_DEFAULTS, "60 (tplink: 30, deco: 30)");
        assert_eq!(Text::new().number(0).number(86_400).as_str(), "086400");
    }

    #[test]
    fn address_and_credential_messages_come_from_the_spec_rows() {
        let section = |body: &str| format!("config upstream 'u'\n{body}");
        for (body, message) in [
            (
                "\toption type 'prometheus'\n",
                "missing option url: add a line such as option url \
                 'http://192.168.1.1:9100/metrics'",
            ),
            (
                "\toption type 'vnstat'\n",
                "missing option url or option file: add a line such as option url \
                 'http://192.168.1.10/cgi-bin/vnstat.cgi'",
            ),
            (
                "\toption type 'vnstat'\n\toption url 'http://n/'\n\toption file '/tmp/v'\n",
                "has both option url and option file: keep one",
            ),
            (
                "\toption type 'ubus'\n\toption host 'r'\n\toption password 'p'\n",
                "missing option username: add a line such as option username 'admin'",
            ),
            (
                "\toption type 'draytek'\n\toption host 'r'\n",
                "missing option password or option password_file: add a line such as \
                 option password_file '/etc/netmeter/isp.pass'",
            ),
            (
                "\toption type 'deco'\n\toption host 'r'\n",
                "missing option password or option password_file",
            ),
            (
                "\toption type 'snmp'\n\toption interval 'x'\n",
                "option interval: expected whole seconds from 5 to 86400, got 'x' \
                 (default 60 (tplink: 30, deco: 30))",
            ),
        ] {
            let got = error(&section(body));
            assert!(got.contains(message), "{body:?}: {got}");
        }
        // Prometheus reads no file, and host sources no URL: neither is an error.
        parse(&section(
            "\toption type 'prometheus'\n\toption url 'http://r/m'\n\toption file '/tmp/m'\n",
        ));
        parse(&section(
            "\toption type 'snmp'\n\toption host 'r'\n\toption url 'http://r/'\n",
        ));
    }

    #[test]
    fn upstream_sections_take_their_protocol_defaults() {
        let config = parse(
            "config upstream 'isp'\n\toption type 'fritzbox'\n\toption host '192.168.178.1'\n\
             \toption username 'admin'\n\toption password 'pa ss'\n\
             config upstream 'ap'\n\toption type 'tplink'\n\toption host 'ap.lan'\n\
             \toption username 'admin'\n\toption password_file '/etc/netmeter/ap.pass'\n\
             config upstream 'nas'\n\toption type 'vnstat'\n\toption file '/tmp/vnstat.json'\n",
        );
        let [isp, ap, nas] = &config.upstream[..] else {
            panic!("{:?}", config.upstream)
        };
        assert_eq!(
            (isp.kind, isp.port, isp.interval.as_secs()),
            (UpstreamKind::Fritzbox, 49000, 60)
        );
        assert_eq!(isp.password.as_ref().map(Secret::expose), Some("pa ss"));
        assert_eq!(isp.line, 1);
        assert_eq!(
            (ap.kind, ap.port, ap.interval.as_secs()),
            (UpstreamKind::Tplink, 80, 30)
        );
        assert_eq!(
            ap.password_file.as_deref(),
            Some(Path::new("/etc/netmeter/ap.pass"))
        );
        assert_eq!(
            (nas.kind, nas.host.as_deref()),
            (UpstreamKind::Vnstat, None)
        );
        // max_rate: the protocol's own unless set, in Mbit/s.
        assert_eq!(ap.max_rate_bytes(), 1_000 * 125_000);
        assert_eq!(isp.max_rate_bytes(), 2_500 * 125_000);
    }

    #[test]
    fn max_rate_is_whole_mbit_per_second() {
        let config = parse(
            "config upstream 'nas'\n\toption type 'vnstat'\n\toption file '/tmp/v.json'\n\
             \toption max_rate '300'\n",
        );
        assert_eq!(config.upstream[0].max_rate_bytes(), 300 * 125_000);
        let got = error(
            "config upstream 'nas'\n\toption type 'vnstat'\n\toption file '/tmp/v.json'\n\
             \toption max_rate '1gbit'\n",
        );
        assert!(
            got.contains(":4: option max_rate: expected whole Mbit/s from 1 to 1000000"),
            "{got}"
        );
        let got = error(
            "config upstream 'nas'\n\toption type 'vnstat'\n\toption file '/tmp/v.json'\n\
             \toption max_rat '300'\n",
        );
        assert!(got.contains("max_rate"), "a spelling hint: {got}");
    }

    #[test]
    fn upstream_sections_say_what_is_missing() {
        for (text, message) in [
            (
                "config upstream\n\toption type 'igd'\n",
                ":1: an upstream section needs a name",
            ),
            (
                "config upstream 'a23456789012345678901234567890123'\n",
                ":1: upstream name 'a23456789012345678901234567890123': expected",
            ),
            (
                "config upstream 'isp'\n\toption host 'x'\n",
                "missing option type: add a line such as",
            ),
            (
                "config upstream 'isp'\n\toption type 'fritz'\n",
                ":2: option type: expected igd, fritzbox",
            ),
            (
                "config upstream 'isp'\n\toption type 'igd'\n",
                "missing option host",
            ),
            (
                "config upstream 'isp'\n\toption type 'asus'\n\toption host 'r'\n\toption username 'u'\n",
                "missing option password or option password_file",
            ),
            (
                "config upstream 'p'\n\toption type 'prometheus'\n\toption url 'https://r/m'\n",
                "https:// is not supported yet",
            ),
            (
                "config upstream 'p'\n\toption type 'prometheus'\n\toption url 'http://r/m'\n\
                 \toption interval '10'\n\toption timeout '10'\n",
                "option timeout (10 s) must be shorter than option interval (10 s)",
            ),
            (
                "config upstream 'a'\n\toption type 'igd'\n\toption host 'r'\n\
                 config upstream 'a'\n\toption type 'igd'\n\toption host 'r'\n",
                ":4: a second upstream section named 'a' (the first is at line 1)",
            ),
        ] {
            let got = error(text);
            assert!(got.contains(message), "{text:?}: {got}");
        }
    }

    #[test]
    fn upstream_secrets_are_never_quoted() {
        for text in [
            &format!(
                "config upstream 'a'\n\toption password '{}'\n",
                "hunter2".repeat(150)
            ),
            "config upstream 'a'\n\toption type 'snmp'\n\toption community 'hunter2' extra\n",
            "config upstream 'a'\n\toption type 'snmp'\n\toption password 'hunter2' extra\n",
        ] {
            let got = error(text);
            assert!(!got.contains("hunter2"), "{got}");
            assert!(got.contains("secret"), "{got}");
        }
    }
}
