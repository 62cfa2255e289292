//! The `config quota` sections: caps on what a device, a group, an
//! interface or every device moves in a day, a week or a billing month,
//! and what happens at each threshold.
//!
//! ```text
//! config quota 'kids'
//!     option group 'kids'            # or option device (MAC or name), option interface, or none: every device
//!     option direction 'total'       # rx | tx | total
//!     option period 'month'          # day | week (from Monday) | month (the billing month of month_rotate)
//!     option limit '50G'             # G = 10^9 bytes; GiB = 2^30
//!     list threshold '80'            # percent of the limit; default 100
//!     list threshold '100'
//!     option exec '/usr/bin/quota-alert'
//!     option webhook 'http://192.168.1.5:8123/api/webhook/quota'
//!     option mqtt '1'
//!     option action 'block'          # drop the devices' WAN traffic at 100 % until the period ends
//! ```
//!
//! Values are parsed here (`parse_bytes` is fuzzed); what a quota does
//! with them is the daemon's (`daemon/quota.rs`).

use std::path::PathBuf;

use super::table::{Bad, Known, apply};
use super::uci;
use super::value::{absolute, boolean, describe, exact_ifname, label, last};
use crate::mac::Mac;

/// What a quota counts.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum QuotaTarget {
    /// Every device, `other` included.
    #[default]
    All,
    /// One device, by MAC.
    Mac(Mac),
    /// One device, by the name netmeter shows for it (a `config device`
    /// name, /etc/ethers, a DHCP lease); resolved at every refresh.
    Name(String),
    /// Every device of a `config device` group.
    Group(String),
    /// A tracked interface (its rx and tx as the interface sees them).
    Interface(String),
}

/// Which bytes count, from the device's (or interface's) side.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum QuotaDirection {
    /// Received: download.
    Rx,
    /// Sent: upload.
    Tx,
    #[default]
    Total,
}

/// The period a quota's usage starts over in.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum QuotaPeriod {
    Day,
    /// Monday 00:00 local time to the next Monday.
    Week,
    /// The billing month (`month_rotate`).
    #[default]
    Month,
}

impl QuotaPeriod {
    pub fn name(self) -> &'static str {
        match self {
            QuotaPeriod::Day => "day",
            QuotaPeriod::Week => "week",
            QuotaPeriod::Month => "month",
        }
    }
}

impl QuotaDirection {
    pub fn name(self) -> &'static str {
        match self {
            QuotaDirection::Rx => "rx",
            QuotaDirection::Tx => "tx",
            QuotaDirection::Total => "total",
        }
    }
}

/// One `config quota 'NAME'` section, validated.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct QuotaConfig {
    /// The section's name (a UCI identifier: letters, digits, `_`).
    pub name: String,
    pub target: QuotaTarget,
    pub direction: QuotaDirection,
    pub period: QuotaPeriod,
    /// Bytes; at least 1.
    pub limit: u64,
    /// Percent of the limit, ascending, no duplicates; `[100]` by default.
    pub thresholds: Vec<u16>,
    /// A program run (no shell) at each threshold.
    pub exec: Option<PathBuf>,
    /// An `http://` URL a JSON document is POSTed to at each threshold.
    pub webhook: Option<String>,
    /// Publish each threshold to the `config mqtt` broker.
    pub mqtt: bool,
    /// `option action 'block'`: drop the devices' WAN traffic from 100 %
    /// until the period ends or `netmeter quota reset`.
    pub block: bool,
}

impl QuotaConfig {
    /// Whether it may block (`option action 'block'`).
    pub fn blocks(&self) -> bool {
        self.block
    }
}

/// Highest threshold accepted: ten times the limit.
pub const MAX_THRESHOLD: u16 = 1000;
/// Thresholds per quota.
pub const MAX_THRESHOLDS: usize = 16;

/// Why a byte count does not parse.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SizeError {
    Empty,
    /// Not digits (with at most one `.` and up to 3 decimals) then a unit.
    Malformed,
    UnknownUnit(String),
    Zero,
    TooLarge,
}

impl std::fmt::Display for SizeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SizeError::Empty => f.write_str("no value"),
            SizeError::Malformed => {
                f.write_str("not a number with an optional unit such as 50G or 1.5TiB")
            }
            SizeError::UnknownUnit(u) => write!(
                f,
                "unknown unit '{u}': use K, M, G, T (powers of 1000; KB, MB, GB, TB the same) \
                 or KiB, MiB, GiB, TiB (powers of 1024)"
            ),
            SizeError::Zero => f.write_str("a limit of 0 bytes blocks from the start"),
            SizeError::TooLarge => f.write_str("more than 2^64 bytes"),
        }
    }
}

/// Bytes from `50G`-style text: a whole number, or one with up to three
/// decimals, and a unit. Decimal units as ISPs sell plans (`K`/`KB` 10^3,
/// `M`/`MB` 10^6, `G`/`GB` 10^9, `T`/`TB` 10^12, any case), binary ones
/// spelt out (`KiB`, `MiB`, `GiB`, `TiB`: 2^10 … 2^40); `B` or nothing is
/// bytes. A space between number and unit is allowed.
pub fn parse_bytes(text: &str) -> Result<u64, SizeError> {
    let text = text.trim();
    if text.is_empty() {
        return Err(SizeError::Empty);
    }
    let split = text
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let unit = unit.trim_start();
    let (whole, fraction) = match number.split_once('.') {
        Some((w, f)) => (w, f),
        None => (number, ""),
    };
    if whole.is_empty() || fraction.len() > 3 || fraction.contains('.') {
        return Err(SizeError::Malformed);
    }
    if number.ends_with('.') {
        return Err(SizeError::Malformed);
    }
    let multiplier: u128 = match unit.to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" => 1_000,
        "m" | "mb" => 1_000_000,
        "g" | "gb" => 1_000_000_000,
        "t" | "tb" => 1_000_000_000_000,
        "kib" => 1 << 10,
        "mib" => 1 << 20,
        "gib" => 1 << 30,
        "tib" => 1 << 40,
        _ => return Err(SizeError::UnknownUnit(unit.chars().take(8).collect())),
    };
    let digits = |s: &str| -> Result<u128, SizeError> {
        if s.len() > 30 {
            return Err(SizeError::TooLarge);
        }
        s.parse::<u128>().map_err(|_| SizeError::Malformed)
    };
    let whole = digits(whole)?;
    let scale = 10u128.pow(fraction.len() as u32);
    let fraction = if fraction.is_empty() {
        0
    } else {
        digits(fraction)?
    };
    let bytes = (whole * scale + fraction)
        .checked_mul(multiplier)
        .ok_or(SizeError::TooLarge)?
        / scale;
    match u64::try_from(bytes) {
        Ok(0) => Err(SizeError::Zero),
        Ok(n) => Ok(n),
        Err(_) => Err(SizeError::TooLarge),
    }
}

/// A threshold: whole percent, 1..=MAX_THRESHOLD, `%` allowed.
pub fn parse_threshold(text: &str) -> Option<u16> {
    let text = text.trim();
    let text = text.strip_suffix('%').unwrap_or(text).trim_end();
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) || text.len() > 5 {
        return None;
    }
    let n: u16 = text.parse().ok()?;
    (1..=MAX_THRESHOLD).contains(&n).then_some(n)
}

/// What `option device` holds: a MAC when it reads as one, else a name.
fn device_target(text: &str) -> Option<QuotaTarget> {
    match text.trim().parse::<Mac>() {
        Ok(mac) => Some(QuotaTarget::Mac(mac)),
        Err(_) => label(text).map(QuotaTarget::Name),
    }
}

/// Which of device, group and interface set the target (the last wins
/// in `apply`; two are a mistake the section check reports).
#[derive(Default)]
struct Draft {
    quota: QuotaConfig,
    targets: Vec<&'static str>,
    limit_error: Option<SizeError>,
}

const QUOTA_OPTIONS: &[Known<Draft>] = &[
    Known {
        name: "device",
        many: false,
        expected: "a MAC address (aa:bb:cc:dd:ee:ff) or a device's name, 1 to 64 characters",
        default: "",
        set: |d, v| {
            d.quota.target = last(v, device_target)?;
            d.targets.push("device");
            Ok(())
        },
    },
    Known {
        name: "group",
        many: false,
        expected: "a group of config device sections, 1 to 64 characters",
        default: "",
        set: |d, v| {
            d.quota.target = QuotaTarget::Group(last(v, label)?);
            d.targets.push("group");
            Ok(())
        },
    },
    Known {
        name: "interface",
        many: false,
        expected: "an interface name such as wan or eth1 (no globs)",
        default: "",
        set: |d, v| {
            d.quota.target = QuotaTarget::Interface(last(v, exact_ifname)?);
            d.targets.push("interface");
            Ok(())
        },
    },
    Known {
        name: "direction",
        many: false,
        expected: "rx (download), tx (upload) or total",
        default: "total",
        set: |d, v| {
            d.quota.direction = last(v, |s| match s.trim() {
                "rx" => Some(QuotaDirection::Rx),
                "tx" => Some(QuotaDirection::Tx),
                "total" => Some(QuotaDirection::Total),
                _ => None,
            })?;
            Ok(())
        },
    },
    Known {
        name: "period",
        many: false,
        expected: "day, week (from Monday) or month (the billing month of month_rotate)",
        default: "month",
        set: |d, v| {
            d.quota.period = last(v, |s| match s.trim() {
                "day" => Some(QuotaPeriod::Day),
                "week" => Some(QuotaPeriod::Week),
                "month" => Some(QuotaPeriod::Month),
                _ => None,
            })?;
            Ok(())
        },
    },
    Known {
        name: "limit",
        many: false,
        expected: "a size such as 50G (10^9 bytes), 500M or 20GiB (2^30 bytes)",
        default: "",
        set: |d, v| {
            let at = v.len() - 1;
            match parse_bytes(v[at]) {
                Ok(n) => {
                    d.quota.limit = n;
                    Ok(())
                }
                Err(e) => {
                    let why = format!(
                        "expected a size such as 50G (10^9 bytes), 500M or 20GiB (2^30 bytes), \
                         got '{}': {e}",
                        super::value::shown(v[at])
                    );
                    d.limit_error = Some(e);
                    Err(Bad { at, why: Some(why) })
                }
            }
        },
    },
    Known {
        name: "threshold",
        many: true,
        expected: "a percentage of the limit from 1 to 1000, such as 80",
        default: "100",
        set: |d, v| {
            let mut t = super::value::every(v, parse_threshold)?;
            if t.len() > MAX_THRESHOLDS {
                return Err(Bad {
                    at: MAX_THRESHOLDS,
                    why: Some(format!("at most {MAX_THRESHOLDS} thresholds per quota")),
                });
            }
            t.sort_unstable();
            t.dedup();
            d.quota.thresholds = t;
            Ok(())
        },
    },
    Known {
        name: "exec",
        many: false,
        expected: "the absolute path of a program (run without a shell)",
        default: "",
        set: |d, v| {
            d.quota.exec = Some(last(v, absolute)?);
            Ok(())
        },
    },
    Known {
        name: "webhook",
        many: false,
        expected: "an http:// URL such as http://192.168.1.5:8123/api/webhook/quota",
        default: "",
        set: |d, v| {
            let at = v.len() - 1;
            match crate::net::http::parse_url(v[at].trim()) {
                Ok(_) => {
                    d.quota.webhook = Some(v[at].trim().to_owned());
                    Ok(())
                }
                Err(e) => Err(Bad {
                    at,
                    why: Some(e.to_string()),
                }),
            }
        },
    },
    Known {
        name: "mqtt",
        many: false,
        expected: "1 or 0 (publish each threshold to the config mqtt broker)",
        default: "0",
        set: |d, v| {
            d.quota.mqtt = last(v, boolean)?;
            Ok(())
        },
    },
    Known {
        name: "action",
        many: false,
        expected: "block (drop the devices' WAN traffic at 100 % until the period ends) or none",
        default: "none",
        set: |d, v| {
            d.quota.block = last(v, |s| match s.trim() {
                "block" => Some(true),
                "none" => Some(false),
                _ => None,
            })?;
            Ok(())
        },
    },
];

/// A `config quota` section; None when it has problems, which are pushed.
pub(crate) fn quota(
    section: &uci::Section,
    problems: &mut Vec<(usize, String)>,
) -> Option<QuotaConfig> {
    let before = problems.len();
    let Some(name) = section.name.clone() else {
        problems.push((
            section.line,
            "a quota section needs a name, for alerts and 'netmeter quota reset': \
             config quota 'kids'"
                .into(),
        ));
        return None;
    };
    let mut draft = Draft {
        quota: QuotaConfig {
            name,
            thresholds: vec![100],
            ..QuotaConfig::default()
        },
        ..Draft::default()
    };
    apply(&mut draft, QUOTA_OPTIONS, section, problems);
    if problems.len() != before {
        return None;
    }
    let line_of = |option: &str| {
        section
            .options
            .iter()
            .rev()
            .find(|e| e.name == option)
            .map_or(section.line, |e| e.line)
    };
    let quota = draft.quota;
    if draft.targets.len() > 1 {
        problems.push((
            line_of(draft.targets[1]),
            format!(
                "{} sets both option {} and option {}: a quota counts one of them \
                 (one section per device, group or interface)",
                describe(section),
                draft.targets[0],
                draft.targets[1]
            ),
        ));
    } else if quota.limit == 0 {
        problems.push((
            section.line,
            format!(
                "{} is missing option limit: add a line such as option limit '50G'",
                describe(section)
            ),
        ));
    } else if quota.block && matches!(quota.target, QuotaTarget::All | QuotaTarget::Interface(_)) {
        problems.push((
            line_of("action"),
            format!(
                "option action 'block' drops a device's WAN traffic, so {} needs option device \
                 or option group (blocking every device or an interface would cut off the LAN)",
                describe(section)
            ),
        ));
    }
    (problems.len() == before).then_some(quota)
}

/// What a quota needs of the rest of the config: its period's history
/// buckets (a week is summed from the daily ones), and a broker for
/// `option mqtt '1'`.
pub(super) fn problems(
    config: &super::Config,
    sections: &[uci::Section],
    problems: &mut Vec<(usize, String)>,
) {
    // The line of a quota's option (the last, as it wins), else 1.
    let line_of = |quota: &QuotaConfig, option: &str| {
        sections
            .iter()
            .find(|s| s.kind == "quota" && s.name.as_deref() == Some(&quota.name))
            .and_then(|s| s.options.iter().rev().find(|e| e.name == option))
            .map_or(1, |e| e.line)
    };
    for quota in &config.quotas {
        if quota.mqtt && config.mqtt.is_none() {
            problems.push((
                line_of(quota, "mqtt"),
                format!(
                    "quota '{}' has option mqtt '1', but no config mqtt section names a broker: \
                     add one (README, Home Assistant over MQTT) or remove the option",
                    quota.name
                ),
            ));
        }
        let interface = matches!(quota.target, QuotaTarget::Interface(_));
        let (sizes, prefix) = if interface {
            (&config.interface_history, "history")
        } else {
            (&config.device_history, "device")
        };
        let (index, needed, option) = match quota.period {
            QuotaPeriod::Day => (2, 1, "daily_days"),
            QuotaPeriod::Week => (2, 7, "daily_days"),
            QuotaPeriod::Month => (3, 1, "monthly_months"),
        };
        if sizes[index] < needed {
            let option = format!("{prefix}_{option}");
            problems.push((
                line_of(quota, "period"),
                format!(
                    "quota '{}' counts by the {} from history, which option {option} '{}' \
                     turns off: set option {option} to at least {needed}",
                    quota.name,
                    quota.period.name(),
                    sizes[index]
                ),
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::tests::{error, parse};

    #[test]
    fn sizes_take_decimal_units_and_spelt_out_binary_ones() {
        assert_eq!(parse_bytes("50G"), Ok(50_000_000_000));
        assert_eq!(parse_bytes("50GB"), Ok(50_000_000_000));
        assert_eq!(parse_bytes("50gb"), Ok(50_000_000_000));
        assert_eq!(parse_bytes("20GiB"), Ok(20 << 30));
        assert_eq!(parse_bytes("1.5T"), Ok(1_500_000_000_000));
        assert_eq!(parse_bytes("1.5 MiB"), Ok(3 << 19));
        assert_eq!(parse_bytes("123"), Ok(123));
        assert_eq!(parse_bytes("123B"), Ok(123));
        assert_eq!(parse_bytes("0.001K"), Ok(1));
        assert_eq!(parse_bytes(""), Err(SizeError::Empty));
        assert_eq!(parse_bytes("0G"), Err(SizeError::Zero));
        assert_eq!(parse_bytes("G"), Err(SizeError::Malformed));
        assert_eq!(parse_bytes("1.2345G"), Err(SizeError::Malformed));
        assert_eq!(parse_bytes("1..2G"), Err(SizeError::Malformed));
        assert_eq!(parse_bytes("5."), Err(SizeError::Malformed));
        assert_eq!(parse_bytes("-5G"), Err(SizeError::Malformed));
        assert_eq!(
            parse_bytes("5Gb/s"),
            Err(SizeError::UnknownUnit("Gb/s".into()))
        );
        assert_eq!(parse_bytes("99999999999T"), Err(SizeError::TooLarge));
        assert_eq!(
            parse_bytes("18446744073709551615"),
            Ok(18_446_744_073_709_551_615)
        );
        assert_eq!(
            parse_bytes("18446744073709551616"),
            Err(SizeError::TooLarge)
        );
    }

    #[test]
    fn thresholds_are_whole_percentages_up_to_ten_times_the_limit() {
        assert_eq!(parse_threshold("80"), Some(80));
        assert_eq!(parse_threshold("80%"), Some(80));
        assert_eq!(parse_threshold("1000"), Some(1000));
        for bad in ["0", "1001", "80.5", "-1", "", "%", "99999999"] {
            assert_eq!(parse_threshold(bad), None, "{bad}");
        }
    }

    #[test]
    fn a_quota_section_reads_every_option() {
        let c = parse(
            "config quota 'kids'\n\toption group 'kids'\n\toption direction 'rx'\n\
             \toption period 'week'\n\toption limit '10GiB'\n\tlist threshold '100'\n\
             \tlist threshold '80'\n\toption exec '/bin/alert'\n\
             \toption webhook 'http://127.0.0.1:8000/hook'\n\toption mqtt '1'\n\
             \toption action 'block'\n\
             config mqtt 'ha'\n\toption host '127.0.0.1'\n",
        );
        assert_eq!(
            c.quotas,
            [QuotaConfig {
                name: "kids".into(),
                target: QuotaTarget::Group("kids".into()),
                direction: QuotaDirection::Rx,
                period: QuotaPeriod::Week,
                limit: 10 << 30,
                thresholds: vec![80, 100],
                exec: Some("/bin/alert".into()),
                webhook: Some("http://127.0.0.1:8000/hook".into()),
                mqtt: true,
                block: true,
            }]
        );
        let c = parse("config quota 'all'\n\toption limit '1T'\n");
        assert_eq!(c.quotas[0].target, QuotaTarget::All);
        assert_eq!(c.quotas[0].thresholds, [100]);
        assert_eq!(c.quotas[0].period, QuotaPeriod::Month);
        assert!(!c.quotas[0].block, "never blocks unless asked");
        let c =
            parse("config quota 'tv'\n\toption device 'aa-bb-cc-dd-ee-ff'\n\toption limit '1G'\n");
        assert_eq!(
            c.quotas[0].target,
            QuotaTarget::Mac("aa:bb:cc:dd:ee:ff".parse().unwrap())
        );
        let c = parse("config quota 'tv'\n\toption device 'Living room TV'\n\toption limit '1G'\n");
        assert_eq!(
            c.quotas[0].target,
            QuotaTarget::Name("Living room TV".into())
        );
    }

    #[test]
    fn bad_quota_sections_name_the_line_and_the_fix() {
        let e = error("config quota\n\toption limit '1G'\n");
        assert!(
            e.contains(":1:") && e.contains("config quota 'kids'"),
            "{e}"
        );
        let e = error("config quota 'q'\n\toption direction 'up'\n");
        assert!(e.contains(":2:") && e.contains("rx (download)"), "{e}");
        let e = error("config quota 'q'\n");
        assert!(e.contains(":1:") && e.contains("option limit '50G'"), "{e}");
        let e = error("config quota 'q'\n\toption limit '5Gbit'\n");
        assert!(
            e.contains(":2:") && e.contains("unknown unit 'Gbit'") && e.contains("GiB"),
            "{e}"
        );
        let e = error("config quota 'q'\n\toption limit '1G'\n\tlist threshold '150.5'\n");
        assert!(e.contains(":3:") && e.contains("from 1 to 1000"), "{e}");
        let e = error(
            "config quota 'q'\n\toption limit '1G'\n\toption device 'tv'\n\toption group 'kids'\n",
        );
        assert!(
            e.contains(":4:") && e.contains("both option device and option group"),
            "{e}"
        );
        let e = error("config quota 'q'\n\toption limit '1G'\n\toption action 'block'\n");
        assert!(
            e.contains(":3:") && e.contains("needs option device or option group"),
            "{e}"
        );
        let e = error("config quota 'q'\n\toption limit '1G'\n\toption action 'drop'\n");
        assert!(e.contains(":3:") && e.contains("block"), "{e}");
        let e = error("config quota 'q'\n\toption limit '1G'\n\toption webhook 'https://x/y'\n");
        assert!(e.contains(":3:") && e.contains("only http://"), "{e}");
        let e = error("config quota 'q'\n\toption limit '1G'\n\toption exec 'alert.sh'\n");
        assert!(e.contains(":3:") && e.contains("absolute path"), "{e}");
        let e = error("config quota 'q'\n\toption limit '1G'\n\toption treshold '80'\n");
        assert!(e.contains("did you mean 'threshold'"), "{e}");
        let e = error("config qota 'q'\n");
        assert!(e.contains("did you mean 'quota'"), "{e}");
        let e =
            error("config quota 'q'\n\toption limit '1G'\nconfig quota 'q'\n\toption limit '2G'\n");
        assert!(e.contains(":3:") && e.contains("line 1"), "{e}");
        let e = error("config quota 'q'\n\toption limit '1G'\n\toption mqtt '1'\n");
        assert!(
            e.contains(":3:") && e.contains("no config mqtt section names a broker"),
            "{e}"
        );
    }
}
