//! `netmeter interfaces` against the kernel's own counters, in the test bed.

use crate::testbed;

use serde_json::Value;
use std::collections::BTreeMap;
use testbed::netmeter::{self, Daemon, Scratch};
use testbed::topology::{PORT, WAN_HOST_V4, WAN_HOST_V6};
use testbed::{Counters, Host, Network};

const FIELDS: [&str; 8] = [
    "rx_bytes",
    "tx_bytes",
    "rx_packets",
    "tx_packets",
    "rx_errors",
    "tx_errors",
    "rx_dropped",
    "tx_dropped",
];

fn field(c: &Counters, name: &str) -> u64 {
    match name {
        "rx_bytes" => c.rx_bytes,
        "tx_bytes" => c.tx_bytes,
        "rx_packets" => c.rx_packets,
        "tx_packets" => c.tx_packets,
        "rx_errors" => c.rx_errors,
        "tx_errors" => c.tx_errors,
        "rx_dropped" => c.rx_dropped,
        "tx_dropped" => c.tx_dropped,
        _ => unreachable!(),
    }
}

fn by_name(report: &Value) -> BTreeMap<String, Value> {
    report["interfaces"]
        .as_array()
        .expect("an interfaces array")
        .iter()
        .map(|i| (i["name"].as_str().unwrap().to_string(), i.clone()))
        .collect()
}

/// Reads the kernel, then netmeter, then the kernel again: every netmeter
/// figure must lie between the two kernel readings (traffic such as the
/// CLI's own loopback request may happen in between). `offset` is added
/// to the kernel's figures (totals carried over from earlier incarnations).
fn assert_bracketed(
    host: &Host,
    read: impl FnOnce() -> Value,
    names: &[&str],
    offset: &BTreeMap<String, Counters>,
) -> BTreeMap<String, Value> {
    let before = host.counters();
    let report = by_name(&read());
    let after = host.counters();
    for name in names {
        let got = report
            .get(*name)
            .unwrap_or_else(|| panic!("{name} missing from {report:?}"));
        let zero = Counters::default();
        let off = offset.get(*name).unwrap_or(&zero);
        for f in FIELDS {
            let v = got[f]
                .as_u64()
                .unwrap_or_else(|| panic!("{name}.{f} not a number"));
            let (lo, hi) = (
                field(&before[*name], f) + field(off, f),
                field(&after[*name], f) + field(off, f),
            );
            assert!(
                lo <= v && v <= hi,
                "{name}.{f}: netmeter {v}, kernel between {lo} and {hi}"
            );
        }
    }
    report
}

fn transfers_both_ways(net: &Network) {
    for (i, lan) in net.lan.iter().enumerate() {
        let n = 200_000 + i as u64 * 50_000;
        lan.run(&format!("tcp_upload {WAN_HOST_V4} {PORT} {n}"));
        lan.run(&format!("tcp_download {WAN_HOST_V4} {PORT} {}", 3 * n));
        lan.run(&format!("tcp_upload {WAN_HOST_V6} {PORT} {}", n / 2));
        lan.run(&format!("udp_upload {WAN_HOST_V4} {PORT} 10 1200"));
        lan.run(&format!("udp_download {WAN_HOST_V6} {PORT} 10 1000"));
    }
}

const ALL_INTERFACES: &str =
    "config netmeter 'main'\n\tlist interface '*'\n\toption refresh_interval '1'\n";

#[test]
fn direct_reading_agrees_with_the_kernel_for_lo_and_every_veth_after_transfers_both_ways() {
    let net = Network::with_lan_hosts(&["laptop", "tv"]);
    transfers_both_ways(&net);
    let scratch = Scratch::new();
    let cfg = scratch.file("all.conf", ALL_INTERFACES);
    let cfg = cfg.to_str().unwrap();
    let report = assert_bracketed(
        &net.router,
        || netmeter::json(&net.router, &["interfaces", "--json", "-c", cfg]),
        &["lo", "lan0", "lan1", "wan"],
        &BTreeMap::new(),
    );
    assert!(
        report["wan"]["tx_bytes"].as_u64().unwrap() > 450_000,
        "the uploads crossed the WAN"
    );
    assert!(
        report["lan0"]["tx_bytes"].as_u64().unwrap() > 600_000,
        "the downloads reached lan0"
    );
    // The same on a LAN host, whose eth0 is the far end of the router's lan0.
    assert_bracketed(
        &net.lan[0],
        || netmeter::json(&net.lan[0], &["interfaces", "--json", "-c", cfg]),
        &["lo", "eth0"],
        &BTreeMap::new(),
    );
}

#[test]
fn the_default_config_leaves_out_loopback_and_the_table_is_human_readable() {
    let net = Network::with_lan_hosts(&["a"]);
    let scratch = Scratch::new();
    let cfg = scratch.file("default.conf", "config netmeter 'main'\n");
    let report = by_name(&netmeter::json(
        &net.router,
        &["interfaces", "--json", "-c", cfg.to_str().unwrap()],
    ));
    assert!(!report.contains_key("lo"));
    assert!(report.contains_key("wan") && report.contains_key("lan0"));
    let out = netmeter::run(&net.router, &["interfaces", "-c", cfg.to_str().unwrap()]);
    let table = String::from_utf8(out.stdout).unwrap();
    assert!(table.starts_with("interface"), "{table}");
    assert!(table.contains("wan") && table.contains("bit/s"), "{table}");
    let notice = String::from_utf8(out.stderr).unwrap();
    assert!(
        notice.contains("reading the kernel directly"),
        "says it found no daemon: {notice}"
    );
}

/// Waits for two daemon refreshes after this point (the router's API).
fn wait_refreshes(net: &Network, d: &Daemon) {
    d.wait_refreshed(&net.router);
}

fn daemon_report(host: &Host, d: &Daemon) -> Value {
    let out = netmeter::run(
        host,
        &[
            "interfaces",
            "--json",
            "-c",
            d.config_path().to_str().unwrap(),
        ],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !stderr.contains("directly"),
        "the CLI must ask the daemon: {stderr}"
    );
    assert!(out.status.success(), "{stderr}");
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Creates router `probe0` ⇄ LAN host `p0` with IPv4 only (IPv6 off, so
/// no background multicast adds to the counters) and sends traffic over it.
fn probe_link(net: &Network, name: &str, upload: u64) {
    let lan = &net.lan[0];
    net.router.run(&format!("veth {name} p0 {}", lan.pid()));
    net.router
        .run(&format!("sysctl net/ipv6/conf/{name}/disable_ipv6 1"));
    lan.run("sysctl net/ipv6/conf/p0/disable_ipv6 1");
    net.router.run(&format!("up {name}"));
    lan.run("up p0");
    net.router.run(&format!("addr {name} 10.9.0.1/24"));
    lan.run("addr p0 10.9.0.2/24");
    net.router
        .run(&format!("tcp_upload 10.9.0.2 {PORT} {upload}"));
}

#[test]
fn the_daemon_agrees_with_the_kernel_and_keeps_totals_across_recreation_and_rename() {
    let net = Network::with_lan_hosts(&["laptop", "tv"]);
    let scratch = Scratch::new();
    let daemon = Daemon::start(&net.router, &scratch, ALL_INTERFACES);
    transfers_both_ways(&net);
    probe_link(&net, "probe0", 100_000);
    wait_refreshes(&net, &daemon);
    let names = ["lo", "lan0", "lan1", "wan", "probe0"];
    assert_bracketed(
        &net.router,
        || {
            wait_refreshes(&net, &daemon);
            daemon_report(&net.router, &daemon)
        },
        &names,
        &BTreeMap::new(),
    );
    let first = net.router.counters()["probe0"];

    // Delete and create again under the same name: totals continue.
    net.router.run("del probe0");
    wait_refreshes(&net, &daemon);
    let gone = &by_name(&daemon_report(&net.router, &daemon))["probe0"];
    assert_eq!(
        gone["present"], false,
        "a deleted interface is kept, marked absent"
    );
    assert_eq!(gone["tx_bytes"].as_u64(), Some(first.tx_bytes));
    probe_link(&net, "probe0", 70_000);
    let offset = BTreeMap::from([("probe0".to_string(), first)]);
    assert_bracketed(
        &net.router,
        || {
            wait_refreshes(&net, &daemon);
            daemon_report(&net.router, &daemon)
        },
        &["probe0"],
        &offset,
    );

    // Rename: the totals follow the interface to its new name.
    net.router.run("rename probe0 probe1");
    net.router.run(&format!("tcp_upload 10.9.0.2 {PORT} 30000"));
    let offset = BTreeMap::from([("probe1".to_string(), first)]);
    let report = assert_bracketed(
        &net.router,
        || {
            wait_refreshes(&net, &daemon);
            daemon_report(&net.router, &daemon)
        },
        &["probe1"],
        &offset,
    );
    assert!(
        !report.contains_key("probe0"),
        "the old name's totals moved: {report:?}"
    );
    let log = daemon.log_text();
    assert!(
        log.contains("probe0") && log.contains("probe1"),
        "the daemon logs the rename:\n{log}"
    );
}
