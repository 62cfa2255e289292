//! The `config netmeter` section: the daemon's own options.

use std::time::Duration;

use super::table::{Bad, Known};
use super::value::*;
use super::{Config, Placement, Secret};

/// A history length option: `name` is in coverage units (hours, days, …),
/// `per` buckets to a unit; 0 turns that rollup off.
macro_rules! history_option {
    ($name:literal, $field:ident, $ring:literal, $per:literal, $max:literal, $default:literal) => {
        Known {
            name: $name,
            many: false,
            expected: concat!("a whole number from 0 (not kept) to ", $max),
            default: $default,
            set: |c, v| {
                c.$field[$ring] = last(v, |s| whole(s, 0..=$max).map(|n| n as u32 * $per))?;
                Ok(())
            },
        }
    };
}

pub(crate) const OPTIONS: &[Known<Config>] = &[
    Known {
        name: "refresh_interval",
        many: false,
        expected: "whole seconds from 1 to 3600",
        default: "10",
        set: |c, v| {
            c.refresh_interval = last(v, |s| whole(s, 1..=3600).map(Duration::from_secs))?;
            Ok(())
        },
    },
    Known {
        name: "interface",
        many: true,
        expected: IFNAME,
        default: "",
        set: |c, v| {
            c.interface = every(v, pattern)?;
            Ok(())
        },
    },
    Known {
        name: "exclude_interface",
        many: true,
        expected: IFNAME,
        default: "lo",
        set: |c, v| {
            c.exclude_interface = every(v, pattern)?;
            Ok(())
        },
    },
    Known {
        name: "listen",
        many: true,
        expected: "IP:PORT such as 127.0.0.1:9750 or [::1]:9750",
        default: "127.0.0.1:9750",
        set: |c, v| {
            c.listen = every(v, socket)?;
            Ok(())
        },
    },
    Known {
        name: "database_directory",
        many: false,
        expected: "an absolute path starting with /",
        default: "/etc/netmeter",
        set: |c, v| {
            c.database_directory = last(v, absolute)?;
            Ok(())
        },
    },
    Known {
        name: "spool_directory",
        many: false,
        expected: PATH,
        default: "/var/lib/netmeter",
        set: |c, v| {
            c.spool_directory = last(v, absolute)?;
            Ok(())
        },
    },
    Known {
        name: "spool_interval",
        many: false,
        expected: "whole seconds from 10 to 86400",
        default: "300",
        set: |c, v| {
            c.spool_interval = last(v, |s| whole(s, 10..=86_400).map(Duration::from_secs))?;
            Ok(())
        },
    },
    Known {
        name: "commit_interval",
        many: false,
        expected: "whole seconds from 60 to 604800 (a week)",
        default: "3600",
        set: |c, v| {
            c.commit_interval = last(v, |s| whole(s, 60..=604_800).map(Duration::from_secs))?;
            Ok(())
        },
    },
    Known {
        name: "month_rotate",
        many: false,
        expected: "the day a billing month starts, 1 to 28",
        default: "1",
        set: |c, v| {
            c.month_rotate = last(v, |s| whole(s, 1..=28).map(|d| d as u8))?;
            Ok(())
        },
    },
    history_option!(
        "history_fiveminute_hours",
        interface_history,
        0,
        12,
        744,
        "48"
    ),
    history_option!("history_hourly_days", interface_history, 1, 24, 62, "7"),
    history_option!("history_daily_days", interface_history, 2, 1, 3660, "62"),
    history_option!("history_monthly_months", interface_history, 3, 1, 600, "36"),
    history_option!("history_yearly_years", interface_history, 4, 1, 100, "10"),
    history_option!("device_hourly_hours", device_history, 1, 1, 744, "72"),
    history_option!("device_daily_days", device_history, 2, 1, 3660, "62"),
    history_option!("device_monthly_months", device_history, 3, 1, 600, "24"),
    history_option!("device_yearly_years", device_history, 4, 1, 100, "10"),
    Known {
        name: "lan_interface",
        many: true,
        expected: "an interface name such as br-lan (at most 15 characters, no wildcards)",
        default: "br-lan",
        set: |c, v| {
            c.lan_interface = every(v, exact_ifname)?;
            Ok(())
        },
    },
    Known {
        name: "lan_subnet",
        many: true,
        expected: "a subnet such as 192.168.1.0/24 or fd00::/64",
        default: "",
        set: |c, v| {
            c.lan_subnet = subnets(v)?;
            Ok(())
        },
    },
    Known {
        name: "max_devices",
        many: false,
        expected: "a whole number from 1 to 65536",
        default: "1024",
        set: |c, v| {
            c.max_devices = last(v, |s| whole(s, 1..=65536)?.try_into().ok())?;
            Ok(())
        },
    },
    Known {
        name: "max_flows",
        many: false,
        expected: "a whole number from 64 to 4194304",
        default: "65536",
        set: |c, v| {
            c.max_flows = last(v, |s| whole(s, 64..=4_194_304)?.try_into().ok())?;
            Ok(())
        },
    },
    Known {
        name: "keep_rules",
        many: false,
        expected: "1 or 0 (or true/false, yes/no, on/off)",
        default: "0",
        set: |c, v| {
            c.keep_rules = last(v, boolean)?;
            Ok(())
        },
    },
    Known {
        name: "placement",
        many: false,
        expected: "auto, netdev, forward or conntrack",
        default: "auto",
        set: |c, v| {
            c.placement = last(v, |s| match s {
                "auto" => Some(Placement::Auto),
                "netdev" => Some(Placement::Netdev),
                "forward" => Some(Placement::Forward),
                "conntrack" => Some(Placement::Conntrack),
                _ => None,
            })?;
            Ok(())
        },
    },
    Known {
        name: "element_timeout",
        many: false,
        expected: "whole seconds from 2 to 604800 (a week)",
        default: "3600",
        set: |c, v| {
            c.element_timeout = last(v, |s| whole(s, 2..=604_800).map(Duration::from_secs))?;
            Ok(())
        },
    },
    Known {
        name: "dhcp_leases",
        many: false,
        expected: PATH,
        default: "/tmp/dhcp.leases",
        set: |c, v| {
            c.dhcp_leases = last(v, absolute)?;
            Ok(())
        },
    },
    Known {
        name: "odhcpd_hosts",
        many: false,
        expected: PATH,
        default: "/tmp/hosts/odhcpd",
        set: |c, v| {
            c.odhcpd_hosts = last(v, absolute)?;
            Ok(())
        },
    },
    Known {
        name: "ethers",
        many: false,
        expected: PATH,
        default: "/etc/ethers",
        set: |c, v| {
            c.ethers = last(v, absolute)?;
            Ok(())
        },
    },
    Known {
        name: "token",
        many: false,
        expected: "a bearer token",
        default: "",
        // A secret: the message never quotes the value.
        set: |c, v| {
            let at = v.len() - 1;
            c.token = Some(Secret::token(v[at]).ok_or_else(|| Bad {
                at,
                why: Some(format!(
                    "expected {} to {} characters of A-Z a-z 0-9 - . _ ~ + / (and = only at the \
                     end), such as the output of 'head -c 24 /dev/urandom | base64'; the value is \
                     not shown here because it is a secret",
                    Secret::MIN_LEN,
                    Secret::MAX_LEN
                )),
            })?);
            Ok(())
        },
    },
];
