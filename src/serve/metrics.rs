//! `/metrics`: the published state in Prometheus' text exposition format
//! 0.0.4, written at request time. Every family has its HELP and TYPE line
//! once, followed by all its samples.
//!
//! The byte and packet totals are netmeter's monotonic accounts, so they
//! are counters in Prometheus' sense: they never go backwards while the
//! kernel's counters wrap, reset, or interfaces come and go.

use super::api::{ApiState, DeviceView, InterfaceView};
use crate::exposition::{Labels, head, sample};

type Field<T> = fn(&T) -> u64;

/// Name, HELP text and value of the families with a sample per interface.
const INTERFACE_FAMILIES: [(&str, &str, Field<InterfaceView>); 4] = [
    (
        "netmeter_interface_receive_bytes_total",
        "Bytes the interface received, as the kernel counts them (link layer included).",
        |i| i.rx_bytes,
    ),
    (
        "netmeter_interface_transmit_bytes_total",
        "Bytes the interface sent, as the kernel counts them (link layer included).",
        |i| i.tx_bytes,
    ),
    (
        "netmeter_interface_receive_packets_total",
        "Packets the interface received.",
        |i| i.rx_packets,
    ),
    (
        "netmeter_interface_transmit_packets_total",
        "Packets the interface sent.",
        |i| i.tx_packets,
    ),
];

/// The same for the families with a sample per device.
const DEVICE_FAMILIES: [(&str, &str, Field<DeviceView>); 4] = [
    (
        "netmeter_device_receive_bytes_total",
        "IP bytes the LAN device received from beyond the router (its download).",
        |d| d.rx_bytes,
    ),
    (
        "netmeter_device_transmit_bytes_total",
        "IP bytes the LAN device sent beyond the router (its upload).",
        |d| d.tx_bytes,
    ),
    (
        "netmeter_device_receive_packets_total",
        "Packets the LAN device received from beyond the router.",
        |d| d.rx_packets,
    ),
    (
        "netmeter_device_transmit_packets_total",
        "Packets the LAN device sent beyond the router.",
        |d| d.tx_packets,
    ),
];

/// The exposition of `state`. Called only once the first refresh is done.
pub fn render(state: &ApiState) -> String {
    let interfaces = &state.interfaces.interfaces;
    let devices = &state.devices.devices;
    let mut text = String::with_capacity(2048 + 160 * (interfaces.len() + 2 * devices.len()));
    let out = &mut text;
    let version = env!("CARGO_PKG_VERSION");
    let single: [(&str, &str, &str, Labels, u64); 5] = [
        (
            "netmeter_build_info",
            "gauge",
            "netmeter's version; always 1.",
            &[("version", version)],
            1,
        ),
        (
            "netmeter_up",
            "gauge",
            "1 when the last refresh read the kernel's counters, 0 when it failed (the totals \
             are then those of the refresh before).",
            &[],
            state.last_error.is_none() as u64,
        ),
        (
            "netmeter_refreshes_total",
            "counter",
            "Refreshes completed since the daemon started.",
            &[],
            state.refreshes,
        ),
        (
            "netmeter_last_refresh_timestamp_seconds",
            "gauge",
            "Unix time of the last completed refresh.",
            &[],
            state.last_refresh_unix.unwrap_or(0),
        ),
        (
            "netmeter_per_device_active",
            "gauge",
            "1 when per-device accounting runs; /api/v1/status says why when it does not.",
            &[],
            state.per_device.active as u64,
        ),
    ];
    for (name, kind, help, labels, value) in single {
        head(out, name, kind, help);
        sample(out, name, labels, value);
    }
    for (name, help, value) in INTERFACE_FAMILIES {
        head(out, name, "counter", help);
        for i in interfaces {
            sample(out, name, &[("interface", &i.name)], value(i));
        }
    }
    // Which interfaces carry the default route, so a dashboard needs no
    // WAN name (wan, pppoe-wan, eth0.2, … differ by router).
    let name = "netmeter_interface_wan";
    head(
        out,
        name,
        "gauge",
        "1 for each interface netmeter takes for a WAN (it carries a default route).",
    );
    for wan in &state.wan {
        sample(out, name, &[("interface", wan)], 1);
    }
    for (name, help, value) in DEVICE_FAMILIES {
        head(out, name, "counter", help);
        for d in devices {
            let hostname = d.hostname.as_deref().unwrap_or("");
            sample(
                out,
                name,
                &[("mac", &d.mac), ("hostname", hostname)],
                value(d),
            );
        }
    }
    // Only where a placement gives a protocol view (conntrack).
    if state.devices.protocols_since.is_some() {
        for (name, help, rx) in PROTOCOL_FAMILIES {
            head(out, name, "counter", help);
            for d in devices {
                let hostname = d.hostname.as_deref().unwrap_or("");
                for p in &d.protocols {
                    let labels = [
                        ("mac", d.mac.as_str()),
                        ("hostname", hostname),
                        ("class", &p.class),
                    ];
                    sample(out, name, &labels, if rx { p.rx_bytes } else { p.tx_bytes });
                }
            }
        }
    }
    #[cfg(feature = "quota")]
    quota_families(out, &state.quotas.quotas);
    text
}

/// Only with quotas: a gauge each, as usage starts over every period.
#[cfg(feature = "quota")]
fn quota_families(out: &mut String, quotas: &[crate::serve::quota::QuotaView]) {
    if !quotas.is_empty() {
        for (name, help, value) in QUOTA_FAMILIES {
            head(out, name, "gauge", help);
            for q in quotas {
                sample(out, name, &[("quota", &q.name)], value(q));
            }
        }
    }
}

/// One sample per quota.
#[cfg(feature = "quota")]
const QUOTA_FAMILIES: [(&str, &str, Field<crate::serve::quota::QuotaView>); 3] = [
    (
        "netmeter_quota_used_bytes",
        "Bytes the quota counted in its running period (day, week or billing month).",
        |q| q.used_bytes,
    ),
    (
        "netmeter_quota_limit_bytes",
        "The quota's limit in bytes.",
        |q| q.limit_bytes,
    ),
    (
        "netmeter_quota_blocked",
        "1 while the quota drops its devices' WAN traffic.",
        |q| q.blocked as u64,
    ),
];

/// The protocol view per device: (name, help, rx rather than tx).
const PROTOCOL_FAMILIES: [(&str, &str, bool); 2] = [
    (
        "netmeter_device_protocol_receive_bytes_total",
        "IP bytes the LAN device received, by protocol class (conntrack placement), since the daemon started.",
        true,
    ),
    (
        "netmeter_device_protocol_transmit_bytes_total",
        "IP bytes the LAN device sent, by protocol class (conntrack placement), since the daemon started.",
        false,
    ),
];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::serve::api::{DevicesReport, InterfacesReport};

    fn interface(name: &str, rx: u64, tx: u64) -> InterfaceView {
        InterfaceView {
            name: name.into(),
            rx_bytes: rx,
            tx_bytes: tx,
            rx_packets: rx / 100,
            tx_packets: tx / 100,
            rx_errors: 0,
            tx_errors: 0,
            rx_dropped: 0,
            tx_dropped: 0,
            rx_rate: 5,
            tx_rate: 6,
            present: true,
            first_seen: 1_795_000_000,
            last_seen: 1_795_000_010,
        }
    }

    fn device(mac: &str, hostname: Option<&str>, rx: u64, tx: u64) -> DeviceView {
        DeviceView {
            mac: mac.into(),
            ips: vec!["10.0.0.2".into()],
            hostname: hostname.map(str::to_string),
            group: None,
            random_mac: false,
            rx_bytes: rx,
            tx_bytes: tx,
            rx_packets: 3,
            tx_packets: 4,
            rx_rate: 0,
            tx_rate: 0,
            first_seen: 1_795_000_000,
            last_seen: 1_795_000_010,
            upstream: Default::default(),
            protocols: Default::default(),
            today: None,
            month: None,
        }
    }

    fn small_state() -> ApiState {
        let mut state = ApiState {
            started_unix: 1_795_000_000,
            refresh_interval_secs: 10,
            last_refresh_unix: Some(1_795_000_010),
            refreshes: 2,
            interfaces: InterfacesReport {
                interfaces: vec![interface("wan", 1200, 3400), interface("br-lan", 500, 700)],
            },
            devices: DevicesReport {
                devices: vec![
                    device("aa:bb:cc:dd:ee:01", Some("laptop"), 1000, 2000),
                    device("aa:bb:cc:dd:ee:02", None, 10, 20),
                ],
                ..DevicesReport::default()
            },
            wan: vec!["wan".into()],
            ..ApiState::default()
        };
        state.per_device.active = true;
        state
    }

    #[test]
    #[cfg(feature = "quota")]
    fn quotas_are_exposed_with_a_quota_label_only_where_there_are_some() {
        let mut state = small_state();
        assert!(!render(&state).contains("netmeter_quota"));
        state.quotas.quotas = vec![crate::serve::quota::QuotaView {
            name: "kids".into(),
            target: "kids".into(),
            target_kind: "group".into(),
            direction: "total".into(),
            period: "month".into(),
            period_start: 0,
            period_end: 1,
            limit_bytes: 1000,
            used_bytes: 1200,
            thresholds: vec![100],
            fired: vec![100],
            action: "block".into(),
            blocked: true,
            blocked_macs: vec![],
            lifted: false,
            exec: false,
            webhook: false,
            mqtt: false,
        }];
        let text = render(&state);
        for line in [
            "# TYPE netmeter_quota_used_bytes gauge\n",
            "netmeter_quota_used_bytes{quota=\"kids\"} 1200\n",
            "netmeter_quota_limit_bytes{quota=\"kids\"} 1000\n",
            "netmeter_quota_blocked{quota=\"kids\"} 1\n",
        ] {
            assert!(text.contains(line), "{line} in {text}");
        }
    }

    #[test]
    fn the_protocol_view_is_exposed_per_device_and_class_only_where_there_is_one() {
        let mut state = small_state();
        assert!(!render(&state).contains("netmeter_device_protocol"));
        state.devices.protocols_since = Some(1_795_000_000);
        state.devices.devices[0].protocols = vec![crate::serve::api::ProtocolFigure {
            class: "https".into(),
            rx_bytes: 900,
            tx_bytes: 80,
        }];
        let text = render(&state);
        assert!(text.contains(
            "netmeter_device_protocol_receive_bytes_total{mac=\"aa:bb:cc:dd:ee:01\",hostname=\"laptop\",class=\"https\"} 900\n"
        ), "{text}");
        assert!(text.contains(
            "netmeter_device_protocol_transmit_bytes_total{mac=\"aa:bb:cc:dd:ee:01\",hostname=\"laptop\",class=\"https\"} 80\n"
        ), "{text}");
    }

    #[test]
    fn a_small_state_renders_exactly_so() {
        let version = env!("CARGO_PKG_VERSION");
        let expected = format!(
            r#"# HELP netmeter_build_info netmeter's version; always 1.
# TYPE netmeter_build_info gauge
netmeter_build_info{{version="{version}"}} 1
# HELP netmeter_up 1 when the last refresh read the kernel's counters, 0 when it failed (the totals are then those of the refresh before).
# TYPE netmeter_up gauge
netmeter_up 1
# HELP netmeter_refreshes_total Refreshes completed since the daemon started.
# TYPE netmeter_refreshes_total counter
netmeter_refreshes_total 2
# HELP netmeter_last_refresh_timestamp_seconds Unix time of the last completed refresh.
# TYPE netmeter_last_refresh_timestamp_seconds gauge
netmeter_last_refresh_timestamp_seconds 1795000010
# HELP netmeter_per_device_active 1 when per-device accounting runs; /api/v1/status says why when it does not.
# TYPE netmeter_per_device_active gauge
netmeter_per_device_active 1
# HELP netmeter_interface_receive_bytes_total Bytes the interface received, as the kernel counts them (link layer included).
# TYPE netmeter_interface_receive_bytes_total counter
netmeter_interface_receive_bytes_total{{interface="wan"}} 1200
netmeter_interface_receive_bytes_total{{interface="br-lan"}} 500
# HELP netmeter_interface_transmit_bytes_total Bytes the interface sent, as the kernel counts them (link layer included).
# TYPE netmeter_interface_transmit_bytes_total counter
netmeter_interface_transmit_bytes_total{{interface="wan"}} 3400
netmeter_interface_transmit_bytes_total{{interface="br-lan"}} 700
# HELP netmeter_interface_receive_packets_total Packets the interface received.
# TYPE netmeter_interface_receive_packets_total counter
netmeter_interface_receive_packets_total{{interface="wan"}} 12
netmeter_interface_receive_packets_total{{interface="br-lan"}} 5
# HELP netmeter_interface_transmit_packets_total Packets the interface sent.
# TYPE netmeter_interface_transmit_packets_total counter
netmeter_interface_transmit_packets_total{{interface="wan"}} 34
netmeter_interface_transmit_packets_total{{interface="br-lan"}} 7
# HELP netmeter_interface_wan 1 for each interface netmeter takes for a WAN (it carries a default route).
# TYPE netmeter_interface_wan gauge
netmeter_interface_wan{{interface="wan"}} 1
# HELP netmeter_device_receive_bytes_total IP bytes the LAN device received from beyond the router (its download).
# TYPE netmeter_device_receive_bytes_total counter
netmeter_device_receive_bytes_total{{mac="aa:bb:cc:dd:ee:01",hostname="laptop"}} 1000
netmeter_device_receive_bytes_total{{mac="aa:bb:cc:dd:ee:02",hostname=""}} 10
# HELP netmeter_device_transmit_bytes_total IP bytes the LAN device sent beyond the router (its upload).
# TYPE netmeter_device_transmit_bytes_total counter
netmeter_device_transmit_bytes_total{{mac="aa:bb:cc:dd:ee:01",hostname="laptop"}} 2000
netmeter_device_transmit_bytes_total{{mac="aa:bb:cc:dd:ee:02",hostname=""}} 20
# HELP netmeter_device_receive_packets_total Packets the LAN device received from beyond the router.
# TYPE netmeter_device_receive_packets_total counter
netmeter_device_receive_packets_total{{mac="aa:bb:cc:dd:ee:01",hostname="laptop"}} 3
netmeter_device_receive_packets_total{{mac="aa:bb:cc:dd:ee:02",hostname=""}} 3
# HELP netmeter_device_transmit_packets_total Packets the LAN device sent beyond the router.
# TYPE netmeter_device_transmit_packets_total counter
netmeter_device_transmit_packets_total{{mac="aa:bb:cc:dd:ee:01",hostname="laptop"}} 4
netmeter_device_transmit_packets_total{{mac="aa:bb:cc:dd:ee:02",hostname=""}} 4
"#
        );
        let got = render(&small_state());
        if got != expected {
            for (g, e) in got.lines().zip(expected.lines()) {
                assert_eq!(g, e);
            }
            assert_eq!(got, expected);
        }
    }

    #[test]
    fn label_values_escape_backslash_quote_and_newline() {
        let mut state = small_state();
        state.devices.devices[0].hostname = Some("Bob's \"tv\"\\\nroom".into());
        let text = render(&state);
        assert!(
            text.contains(
                r#"netmeter_device_receive_bytes_total{mac="aa:bb:cc:dd:ee:01",hostname="Bob's \"tv\"\\\nroom"} 1000"#
            ),
            "{text}"
        );
        // Escaped, every sample stays on one line.
        assert_eq!(text.lines().filter(|l| l.contains("Bob's")).count(), 4);
    }

    #[test]
    fn each_family_has_help_and_type_once_with_all_its_samples_after() {
        let text = render(&small_state());
        let mut seen: Vec<String> = Vec::new();
        let mut current: Option<String> = None;
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# HELP ") {
                let name = rest.split(' ').next().unwrap().to_string();
                assert!(!seen.contains(&name), "{name} described twice");
                seen.push(name.clone());
                current = Some(name);
            } else if let Some(rest) = line.strip_prefix("# TYPE ") {
                let mut words = rest.split(' ');
                assert_eq!(words.next().map(str::to_string), current, "{line}");
                let kind = words.next().unwrap();
                assert!(kind == "counter" || kind == "gauge", "{line}");
                assert_eq!(
                    rest.ends_with("_total counter"),
                    rest.contains("_total "),
                    "counters and only counters end in _total: {line}"
                );
            } else {
                let name = line.split(['{', ' ']).next().unwrap();
                assert_eq!(Some(name), current.as_deref(), "{line} outside its family");
                assert!(line.rsplit(' ').next().unwrap().parse::<u64>().is_ok());
            }
        }
        assert_eq!(seen.len(), 14);
        assert!(text.ends_with('\n'));
    }

    #[test]
    fn no_devices_still_describes_every_family_and_a_failed_refresh_is_up_0() {
        let mut state = small_state();
        state.devices = DevicesReport::default();
        state.per_device.active = false;
        state.last_error = Some("netlink: EPERM".into());
        let text = render(&state);
        assert!(text.contains("# TYPE netmeter_device_receive_bytes_total counter\n"));
        assert!(!text.contains("netmeter_device_receive_bytes_total{"));
        assert!(text.contains("\nnetmeter_up 0\n"));
        assert!(text.contains("\nnetmeter_per_device_active 0\n"));
    }
}
