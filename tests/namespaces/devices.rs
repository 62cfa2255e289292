//! Per-device accounting on the real kernel, in the test bed: three LAN
//! hosts behind a masquerading router with `br-lan`, known transfers, and
//! the kernel's own interface counters as ground truth.
//!
//! TCP, UDP and many small packets (so per-packet errors show), compared
//! with each host's L3 ground truth: interface bytes − 14 × packets. One
//! test turns DAD on and bounces br-lan and its ports, waits for the
//! router's probes and MLD reports, and checks that no group MAC is a device
//! in `/api/v1/devices` nor an element in the kernel's sets; another loads a
//! state file as older builds saved it (group MACs as devices) and checks
//! the daemon drops them with one log line.

use crate::testbed;

use serde_json::Value;
use std::time::{Duration, Instant};
use testbed::netmeter::{self, Daemon, Scratch};
use testbed::topology::{PORT, WAN_HOST_V4, WAN_HOST_V6};
use testbed::{Counters, Host, LanHost, Network, Topology};

pub(super) fn config(extra: &str) -> String {
    format!(
        "config netmeter 'main'\n\toption refresh_interval '1'\n\tlist lan_interface 'br-lan'\n{extra}"
    )
}

pub(super) fn network() -> Network {
    Network::build(Topology {
        lan: vec![
            LanHost::dual("laptop"),
            LanHost::dual("tv"),
            LanHost::ipv6_only("phone"),
        ],
        bridge: Some("br-lan".into()),
    })
}

/// The devices report through the daemon (never a direct reading).
pub(super) fn devices(net: &Network, d: &Daemon) -> Value {
    let out = netmeter::run(
        &net.router,
        &["devices", "--json", "-c", d.config_path().to_str().unwrap()],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "netmeter devices failed: {stderr}");
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {stderr}"))
}

pub(super) fn device<'a>(report: &'a Value, mac: &str) -> &'a Value {
    report["devices"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["mac"] == mac)
        .unwrap_or_else(|| panic!("no device {mac} in {report}"))
}

pub(super) fn mac_of(host: &Host) -> String {
    host.mac()
}

/// `netmeter check --json` in the router: (exit code, report).
pub(super) fn check(net: &Network, d: &Daemon) -> (i32, Value) {
    let out = netmeter::run(
        &net.router,
        &["check", "--json", "-c", d.config_path().to_str().unwrap()],
    );
    let report = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "check printed no JSON ({e}): {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out.status.code().unwrap(), report)
}

pub(super) fn finding<'a>(report: &'a Value, topic: &str) -> Vec<&'a Value> {
    report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["topic"] == topic)
        .collect()
}

pub(super) fn u(v: &Value, field: &str) -> u64 {
    v[field]
        .as_u64()
        .unwrap_or_else(|| panic!("{field} missing in {v}"))
}

/// Every host uploads and downloads over TCP and UDP, IPv4 where it has
/// it and IPv6 always; sizes differ per host.
pub(super) fn traffic(net: &Network) {
    for (i, host) in net.lan.iter().enumerate() {
        let n = 300_000 * (i as u64 + 1);
        let (v4, _) = net.lan_ips(i);
        if v4.is_some() {
            host.run(&format!("tcp_upload {WAN_HOST_V4} {PORT} {n}"));
            host.run(&format!("tcp_download {WAN_HOST_V4} {PORT} {}", 2 * n));
            host.run(&format!("udp_upload {WAN_HOST_V4} {PORT} 30 1200"));
            host.run(&format!("udp_download {WAN_HOST_V4} {PORT} 30 1100"));
        }
        host.run(&format!("tcp_upload {WAN_HOST_V6} {PORT} {n}"));
        host.run(&format!("tcp_download {WAN_HOST_V6} {PORT} {}", n / 2));
        host.run(&format!("udp_upload {WAN_HOST_V6} {PORT} 30 1000"));
        host.run(&format!("udp_download {WAN_HOST_V6} {PORT} 30 900"));
        // Many small packets: per-packet errors (such as the 14-byte
        // Ethernet header that egress counts) show in these; TCP over veth
        // moves 44 KB GSO packets that would hide them.
        host.run(&format!("udp_upload {WAN_HOST_V6} {PORT} 2000 64"));
        host.run(&format!("udp_download {WAN_HOST_V6} {PORT} 2000 64"));
    }
}

/// Waits until the daemon's figures include everything sent so far.
pub(super) fn settle(net: &Network, d: &Daemon) {
    d.wait_refreshed(&net.router);
}

pub(super) fn within(got: u64, truth: u64, tolerance: f64, what: &str) {
    let err = (got as f64 - truth as f64).abs() / truth as f64;
    assert!(
        err <= tolerance,
        "{what}: netmeter {got}, ground truth {truth} ({:.3}% off)",
        err * 100.0
    );
}

#[test]
fn per_device_rx_and_tx_match_each_hosts_l3_bytes_within_half_a_percent() {
    let report = accuracy_with("");
    assert!(
        finding(&report, "placement")[0]["message"]
            .as_str()
            .unwrap()
            .contains("priority -500")
    );
}

#[test]
fn the_forward_placement_matches_too_where_nothing_is_offloaded_and_says_what_it_misses() {
    let report = accuracy_with("\toption placement 'forward'\n");
    let placement = finding(&report, "placement")[0]["message"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        placement.contains("forward chain") && placement.contains("offloaded"),
        "{placement}"
    );
}

/// Runs the three-host scenario with this extra config; asserts accuracy
/// and attribution; returns `netmeter check --json`.
fn accuracy_with(extra: &str) -> Value {
    accuracy_of(extra, |_, _| {}, |_| {})
}

/// The same, with `prepare` run on the network and daemon before the
/// counters are taken, and `more` traffic after the usual mix.
pub(super) fn accuracy_of(
    extra: &str,
    prepare: impl Fn(&Network, &Daemon),
    more: impl Fn(&Network),
) -> Value {
    let net = network();
    let scratch = Scratch::new();
    let d = Daemon::start(&net.router, &scratch, &config(extra));
    prepare(&net, &d);
    let before: Vec<Counters> = net.lan.iter().map(|h| h.counters()["eth0"]).collect();
    let wan_before = net.router.counters()["wan"];
    traffic(&net);
    more(&net);
    settle(&net, &d);
    let report = devices(&net, &d);
    let wan_after = net.router.counters()["wan"];
    let (mut sum_tx, mut sum_rx) = (0, 0);
    for (i, host) in net.lan.iter().enumerate() {
        let after = host.counters()["eth0"];
        let dev = device(&report, &mac_of(host));
        within(
            u(dev, "tx_bytes"),
            after.tx_l3_bytes() - before[i].tx_l3_bytes(),
            0.005,
            &format!("{} tx", host.name),
        );
        within(
            u(dev, "rx_bytes"),
            after.rx_l3_bytes() - before[i].rx_l3_bytes(),
            0.005,
            &format!("{} rx", host.name),
        );
        sum_tx += u(dev, "tx_bytes");
        sum_rx += u(dev, "rx_bytes");
        let ips: Vec<&str> = dev["ips"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        let (v4, v6) = net.lan_ips(i);
        assert!(ips.contains(&v6.as_str()), "{ips:?} has {v6}");
        if let Some(v4) = v4 {
            assert!(ips.contains(&v4.as_str()), "{ips:?} has {v4}");
        }
    }
    for host in &net.lan {
        running_periods_are_the_history_buckets(&net, &report, &mac_of(host));
    }
    // What left through the WAN (IP bytes) was the devices' traffic.
    let wan_tx = wan_after.tx_l3_bytes() - wan_before.tx_l3_bytes();
    let wan_rx = wan_after.rx_l3_bytes() - wan_before.rx_l3_bytes();
    assert!(
        sum_tx as f64 >= 0.99 * wan_tx as f64,
        "devices sent {sum_tx} of the WAN's {wan_tx}"
    );
    assert!(
        sum_rx as f64 >= 0.99 * wan_rx as f64,
        "devices received {sum_rx} of the WAN's {wan_rx}"
    );
    assert_eq!(u(&report["unattributed"], "tx_bytes"), 0);

    // `check` agrees: placement before any flowtable, and the WAN's bytes
    // are the devices'.
    let (code, report) = check(&net, &d);
    assert_eq!((code, &report["ok"]), (0, &Value::Bool(true)), "{report}");
    let shares = finding(&report, "attribution");
    assert_eq!(shares.len(), 2, "{report}");
    for f in shares {
        let msg = f["message"].as_str().unwrap();
        let pct: f64 = msg
            .split("devices ")
            .nth(1)
            .unwrap()
            .split_whitespace()
            .nth(1)
            .unwrap()
            .trim_end_matches('%')
            .parse()
            .unwrap();
        assert!(pct >= 99.0, "{msg}");
    }
    report
}

/// Only traffic between a device and the world beyond the router counts:
/// what a host moves to a host on another LAN port (routed) or to the
/// router itself, IPv4 and IPv6, is in no device's totals. Ten times the
/// counted traffic, so any of it counted would show far beyond the margin.
#[test]
fn traffic_to_the_router_and_between_lan_ports_is_in_no_devices_totals() {
    let net = Network::with_lan_hosts(&["laptop", "tv"]);
    net.router.run(&format!("serve {PORT}"));
    let scratch = Scratch::new();
    let d = Daemon::start(
        &net.router,
        &scratch,
        "config netmeter 'main'\n\toption refresh_interval '1'\n\
         \tlist lan_interface 'lan0'\n\tlist lan_interface 'lan1'\n",
    );
    let (laptop, tv) = (&net.lan[0], &net.lan[1]);
    let before = laptop.counters()["eth0"];
    laptop.run(&format!("tcp_upload {WAN_HOST_V4} {PORT} 300000"));
    laptop.run(&format!("tcp_download {WAN_HOST_V6} {PORT} 300000"));
    let beyond = laptop.counters()["eth0"];
    // tv on lan1, and the router's own addresses on lan0.
    for local in ["10.0.2.2", "fd00:2::2", "10.0.1.1", "fd00:1::1"] {
        laptop.run(&format!("tcp_upload {local} {PORT} 800000"));
        laptop.run(&format!("tcp_download {local} {PORT} 800000"));
    }
    settle(&net, &d);
    let report = devices(&net, &d);
    let dev = device(&report, &mac_of(laptop));
    within(
        u(dev, "tx_bytes"),
        beyond.tx_l3_bytes() - before.tx_l3_bytes(),
        0.005,
        "laptop tx beyond the router",
    );
    within(
        u(dev, "rx_bytes"),
        beyond.rx_l3_bytes() - before.rx_l3_bytes(),
        0.005,
        "laptop rx beyond the router",
    );
    // tv only talked to laptop: not a device, or one with nothing counted.
    let tv_mac = mac_of(tv);
    let tv_bytes = report["devices"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["mac"] == tv_mac.as_str())
        .map_or(0, |d| u(d, "tx_bytes") + u(d, "rx_bytes"));
    assert_eq!(tv_bytes, 0, "{report}");
}

#[test]
fn a_device_whose_elements_expired_continues_its_totals_when_it_returns() {
    let net = network();
    let scratch = Scratch::new();
    // Elements live 6 s in the kernel; netmeter reads and deletes idle ones at 3 s.
    let d = Daemon::start(
        &net.router,
        &scratch,
        &config("\toption element_timeout '6'\n"),
    );
    let host = &net.lan[0];
    let before = host.counters()["eth0"];
    host.run(&format!("tcp_upload {WAN_HOST_V4} {PORT} 400000"));
    // Idle until netmeter has read the device's elements a last time and
    // they are gone from the kernel.
    let start = Instant::now();
    while !net
        .router
        .run("http_get 127.0.0.1:9750 /api/v1/status")
        .contains("\"tracked_elements\":0")
    {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "idle elements never went away:\n{}",
            d.log_text()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    host.run(&format!("tcp_upload {WAN_HOST_V4} {PORT} 300000"));
    settle(&net, &d);
    let after = host.counters()["eth0"];
    let dev = device(&devices(&net, &d), &mac_of(host)).clone();
    let (got, truth) = (
        u(&dev, "tx_bytes"),
        after.tx_l3_bytes() - before.tx_l3_bytes(),
    );
    if (got as f64 - truth as f64).abs() > 0.005 * truth as f64 {
        eprintln!("daemon log:\n{}", d.log_text());
    }
    within(got, truth, 0.005, "tx across expiry");
}

#[test]
fn a_flushed_ruleset_is_noticed_reinstalled_and_totals_never_go_back() {
    let net = network();
    let scratch = Scratch::new();
    let d = Daemon::start(&net.router, &scratch, &config(""));
    let host = &net.lan[1];
    let mac = mac_of(host);
    host.run(&format!("tcp_upload {WAN_HOST_V4} {PORT} 500000"));
    settle(&net, &d);
    let first = u(device(&devices(&net, &d), &mac), "tx_bytes");

    // A firewall restart: every table goes, the firewall puts its own back.
    net.router.run("nft_flush");
    net.router.run("masquerade wan");
    d.wait_for_log("reinstall", Duration::from_secs(5));
    assert!(
        net.router.run("nft_tables").contains("netmeter"),
        "the table is back"
    );
    let before = host.counters()["eth0"];
    host.run(&format!("tcp_upload {WAN_HOST_V4} {PORT} 200000"));
    settle(&net, &d);
    let sent = host.counters()["eth0"].tx_l3_bytes() - before.tx_l3_bytes();
    let second = u(device(&devices(&net, &d), &mac), "tx_bytes");
    assert!(second >= first, "totals never go backwards");
    within(second - first, sent, 0.005, "traffic after the reinstall");
    let status = net.router.run("http_get 127.0.0.1:9750 /api/v1/status");
    assert!(
        status.contains("\"unknown_gaps\":1"),
        "the gap is reported as unknown: {status}"
    );
}

#[test]
fn teardown_and_daemon_stop_remove_the_table_unless_keep_rules_is_set() {
    let net = network();
    for (keep, expect_table) in [("0", false), ("1", true)] {
        let scratch = Scratch::new();
        let mut d = Daemon::start(
            &net.router,
            &scratch,
            &config(&format!("\toption keep_rules '{keep}'\n")),
        );
        assert!(net.router.run("nft_tables").contains("5:netmeter"));
        d.signal(libc::SIGTERM);
        let start = Instant::now();
        while d.child.try_wait().unwrap().is_none() {
            assert!(start.elapsed() < Duration::from_secs(5));
            std::thread::sleep(Duration::from_millis(20));
        }
        assert_eq!(
            net.router.run("nft_tables").contains("netmeter"),
            expect_table,
            "keep_rules {keep}"
        );
    }
    let out = netmeter::run(&net.router, &["teardown"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!net.router.run("nft_tables").contains("netmeter"));
    // fw4's tables (here: the test bed's NAT) are never touched.
    assert!(net.router.run("nft_tables").contains("testbed_nat"));
}

#[test]
fn without_cap_net_admin_interfaces_are_still_counted_and_per_device_says_why_it_is_off() {
    let net = network();
    let scratch = Scratch::new();
    let d = Daemon::start_as(&net.router, &scratch, &config(""), false);
    d.wait_for_log("per-device accounting is off", Duration::from_secs(5));
    assert!(d.log_text().contains("CAP_NET_ADMIN"), "{}", d.log_text());
    let out = netmeter::run(
        &net.router,
        &[
            "interfaces",
            "--json",
            "-c",
            d.config_path().to_str().unwrap(),
        ],
    );
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("\"br-lan\""));
    assert!(!net.router.run("nft_tables").contains("netmeter"));
    let (code, report) = check(&net, &d);
    assert_eq!(code, 1);
    let placement = finding(&report, "placement")[0]["message"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        placement.contains("off") && placement.contains("CAP_NET_ADMIN"),
        "{placement}"
    );
}

#[test]
fn devices_prints_a_table_with_a_total_line_largest_first() {
    let net = network();
    let scratch = Scratch::new();
    let cfg = config("");
    let d = Daemon::start(&net.router, &scratch, &cfg);
    traffic(&net);
    settle(&net, &d);
    let out = netmeter::run(
        &net.router,
        &["devices", "-c", d.config_path().to_str().unwrap()],
    );
    let table = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = table.lines().collect();
    assert!(lines[0].starts_with("MAC"), "{table}");
    assert!(lines.last().unwrap().starts_with("total"), "{table}");
    // tv (host 1) moved the most (about 2.7 MB against 1.35 MB), so it comes first.
    assert!(lines[1].starts_with(&mac_of(&net.lan[1])), "{table}");
    // The netdev placement sees packets, not flows: no protocol view, said so.
    let out = netmeter::run(
        &net.router,
        &[
            "devices",
            "--by",
            "protocol",
            "-c",
            d.config_path().to_str().unwrap(),
        ],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("placement 'conntrack'"), "{stderr}");
}

#[test]
fn names_come_from_dhcp_leases_and_config_sections_and_random_macs_are_marked() {
    let net = network();
    let scratch = Scratch::new();
    let (laptop, tv) = (mac_of(&net.lan[0]), mac_of(&net.lan[1]));
    let leases = scratch.file(
        "dhcp.leases",
        &format!("1795000000 {laptop} 10.0.0.2 laptop-lease 01:{laptop}\n1795000000 {tv} 10.0.0.3 tv-lease *\n"),
    );
    let cfg = config(&format!(
        "\toption dhcp_leases '{}'\n\toption ethers '/nonexistent/ethers'\n\toption odhcpd_hosts '/nonexistent/hosts'\n\
         config device\n\toption mac '{tv}'\n\toption name 'living-room-tv'\n\toption group 'family'\n",
        leases.display()
    ));
    let d = Daemon::start(&net.router, &scratch, &cfg);
    traffic(&net);
    settle(&net, &d);
    let report = devices(&net, &d);
    assert_eq!(device(&report, &laptop)["hostname"], "laptop-lease");
    let tv_dev = device(&report, &tv);
    assert_eq!(
        tv_dev["hostname"], "living-room-tv",
        "a config section beats the lease"
    );
    assert_eq!(tv_dev["group"], "family");
    // veth MACs are random, locally administered ones, as phones' private MACs are.
    assert_eq!(tv_dev["random_mac"], true);
}

#[test]
fn devices_beyond_max_devices_are_folded_into_other() {
    let net = network();
    let scratch = Scratch::new();
    let d = Daemon::start(&net.router, &scratch, &config("\toption max_devices '1'\n"));
    let before: Vec<Counters> = net.lan.iter().map(|h| h.counters()["eth0"]).collect();
    traffic(&net);
    settle(&net, &d);
    let report = devices(&net, &d);
    assert_eq!(report["devices"].as_array().unwrap().len(), 1, "{report}");
    let other = &report["other"];
    let sent: u64 = net
        .lan
        .iter()
        .zip(&before)
        .map(|(h, b)| h.counters()["eth0"].tx_l3_bytes() - b.tx_l3_bytes())
        .sum();
    // Nothing is lost: one device plus `other` is everything the hosts sent.
    let counted = u(&report["devices"][0], "tx_bytes") + u(other, "tx_bytes");
    within(counted, sent, 0.005, "one device plus other");
    let (code, check) = check(&net, &d);
    assert_eq!(code, 1);
    assert!(
        finding(&check, "capacity")
            .iter()
            .any(|f| f["message"].as_str().unwrap().contains("other")),
        "{check}"
    );
    assert!(d.log_text().contains("max_devices"), "{}", d.log_text());
}

/// A device's `today` and `month` are its history's buckets for the
/// running day and billing month, and (the daemon having started within
/// them) all of its traffic.
fn running_periods_are_the_history_buckets(net: &Network, report: &Value, mac: &str) {
    let dev = device(report, mac);
    let (_, status) = api(net, "/api/v1/status");
    let daemon_started = status["started"]
        .as_i64()
        .unwrap_or_else(|| panic!("{status}"));
    for (field, period, start) in [
        ("today", "day", "day_start"),
        ("month", "month", "month_start"),
    ] {
        let start = report["periods"][start]
            .as_i64()
            .unwrap_or_else(|| panic!("no periods.{start}: {report}"));
        let (status, history) = api(
            net,
            &format!("/api/v1/history?device={mac}&period={period}"),
        );
        assert_eq!(status, 200, "{history}");
        let bucket = history["series"][0]["buckets"]
            .as_array()
            .unwrap_or_else(|| panic!("{history}"))
            .iter()
            .find(|b| b["start"].as_i64() == Some(start))
            .unwrap_or_else(|| panic!("no {period} bucket starting {start}: {history}"));
        for direction in ["rx_bytes", "tx_bytes"] {
            let running = u(&dev[field], direction);
            assert_eq!(
                running,
                u(bucket, direction),
                "{mac} {field} {direction}: {dev}"
            );
            if start <= daemon_started {
                assert_eq!(
                    running,
                    u(dev, direction),
                    "{mac} {field} {direction}: {dev}"
                );
            }
        }
    }
}

/// Asks the daemon's API directly: (HTTP status, JSON body).
fn api(net: &Network, path: &str) -> (u16, Value) {
    let answer = net.router.run(&format!("http_get 127.0.0.1:9750 {path}"));
    let (status, body) = answer.split_once(' ').unwrap_or((&answer, ""));
    (
        status.parse().unwrap(),
        serde_json::from_str(body).unwrap_or(Value::Null),
    )
}

/// The Ethernet group bit: multicast and broadcast MACs.
fn is_group(mac: &str) -> bool {
    u8::from_str_radix(&mac[..2], 16).unwrap() & 1 == 1
}

fn macs_in(report: &Value, list: &str) -> Vec<String> {
    report[list]
        .as_array()
        .unwrap_or_else(|| panic!("no {list} in {report}"))
        .iter()
        .map(|d| d["mac"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn multicast_and_broadcast_never_become_devices_when_a_bridged_ipv6_lan_comes_up() {
    let net = network();
    let scratch = Scratch::new();
    let d = Daemon::start(&net.router, &scratch, &config(""));
    let snmp6 = |what: &str| -> u64 { net.router.run(&format!("snmp6 {what}")).parse().unwrap() };
    let (mld, ns) = (
        snmp6("Icmp6OutMLDv2Reports"),
        snmp6("Icmp6OutNeighborSolicits"),
    );
    // Duplicate address detection on, as on a real router; then the LAN
    // comes up again. The bridge and its ports probe their link-local
    // addresses from `::`, report their groups (MLD, from `::` while the
    // address is tentative) and solicit neighbours, all for real; the hosts
    // see their links come back and do the same.
    let ports = ["lan0", "lan1", "lan2"];
    for link in ["all", "default", "br-lan"].iter().chain(&ports) {
        net.router
            .run(&format!("sysctl net/ipv6/conf/{link}/accept_dad 1"));
    }
    for host in &net.lan {
        for link in ["all", "eth0"] {
            host.run(&format!("sysctl net/ipv6/conf/{link}/accept_dad 1"));
        }
    }
    net.router
        .run("sysctl net/ipv6/conf/br-lan/keep_addr_on_down 1");
    net.router.run("down br-lan");
    for port in ports {
        net.router.run(&format!("down {port}"));
        net.router.run(&format!("up {port}"));
    }
    net.router.run("up br-lan");
    // Every link-local address probed (a DAD probe is a solicitation from
    // `::`) and groups reported.
    let start = Instant::now();
    while snmp6("Icmp6OutNeighborSolicits") < ns + 4 || snmp6("Icmp6OutMLDv2Reports") < mld + 4 {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "the LAN never probed its addresses"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // Real unicast traffic too, over both IP versions.
    let laptop = &net.lan[0];
    laptop.run(&format!("tcp_upload {WAN_HOST_V4} {PORT} 100000"));
    laptop.run(&format!("tcp_download {WAN_HOST_V6} {PORT} 100000"));
    laptop.run(&format!("udp_upload {WAN_HOST_V6} {PORT} 20 500"));
    settle(&net, &d);

    let (status, report) = api(&net, "/api/v1/devices");
    assert_eq!(status, 200, "{report}");
    let macs = macs_in(&report, "devices");
    assert!(macs.contains(&mac_of(laptop)), "the real host: {report}");
    let group: Vec<&String> = macs.iter().filter(|m| is_group(m)).collect();
    assert!(
        group.is_empty(),
        "multicast as devices: {group:?} in {report}"
    );
    // Not even an element in the kernel: the rules skip them.
    for set in ["sent4", "received4", "sent6", "received6"] {
        let elements = net.router.run(&format!("nft_elements netmeter {set}"));
        for element in elements.split(';').filter(|e| !e.is_empty()) {
            assert!(!is_group(element), "{set} has {element}");
        }
    }
}

#[test]
fn a_state_saved_with_multicast_devices_loads_without_them_and_their_history() {
    use ::netmeter::account::{DeviceTotals, UnattributedTotals};
    use ::netmeter::store::calendar::{Calendar, FixedOffset};
    use ::netmeter::store::history::RingSizes;
    use ::netmeter::store::state::State;
    use ::netmeter::store::timeline::Observed;
    use ::netmeter::store::{FileKind, encode};

    let net = network();
    let scratch = Scratch::new();
    // What an older netmeter saved on a bridged IPv6 LAN: the router's own
    // MLD reports and probes as "devices", with history.
    let real = [0x02, 0x11, 0x22, 0x33, 0x44, 0x55];
    let saved = [
        real,
        [0x33, 0x33, 0, 0, 0, 0x16],
        [0x33, 0x33, 0xff, 0, 0, 0x02],
        [0x01, 0x00, 0x5e, 0, 0, 0xfb],
        [0xff; 6],
    ];
    let now = ::netmeter::clock::unix_now();
    let mut state = State::new(16, 64);
    let totals = saved.map(|mac| DeviceTotals {
        mac: ::netmeter::mac::Mac(mac),
        rx_bytes: 5_000,
        tx_bytes: 700,
        first_seen: now - 3600,
        last_seen: now - 60,
        ..DeviceTotals::default()
    });
    state
        .devices
        .restore(Some(1), totals.to_vec(), UnattributedTotals::default());
    let cal = Calendar {
        zone: FixedOffset(0),
        month_rotate: 1,
    };
    state.timeline.update(
        &cal,
        (&RingSizes::INTERFACE_DEFAULT, &RingSizes::DEVICE_DEFAULT),
        now - 60,
        0,
        &Observed {
            interfaces: vec![],
            devices: saved
                .map(|mac| {
                    (
                        ::netmeter::mac::Mac(mac),
                        ::netmeter::rxtx::RxTx::new(5_000, 700),
                    )
                })
                .to_vec(),
        },
    );
    let file = encode(FileKind::Snapshot, 9, now - 60, &state).unwrap();
    std::fs::create_dir_all(scratch.0.join("flash")).unwrap();
    std::fs::write(scratch.0.join("flash/netmeter.state"), file).unwrap();

    let d = Daemon::start(&net.router, &scratch, &config(""));
    let log = d.log_text();
    let dropped: Vec<&str> = log.lines().filter(|l| l.contains("multicast")).collect();
    assert_eq!(dropped.len(), 1, "one line says so: {log}");
    assert!(dropped[0].contains("dropped 4 "), "and how many: {log}");
    let (_, report) = api(&net, "/api/v1/devices");
    assert_eq!(
        macs_in(&report, "devices"),
        ["02:11:22:33:44:55"],
        "{report}"
    );
    let (_, history) = api(&net, "/api/v1/history");
    let series: Vec<String> = history["series"]
        .as_array()
        .unwrap_or_else(|| panic!("{history}"))
        .iter()
        .map(|s| s["name"].as_str().unwrap_or_default().to_string())
        .collect();
    assert!(
        series.contains(&"02:11:22:33:44:55".to_string()),
        "{history}"
    );
    assert!(!series.iter().any(|s| s.starts_with("33:33")), "{history}");
    let (status, _) = api(&net, "/api/v1/history?device=33:33:00:00:00:16");
    assert_eq!(status, 404, "its history is gone too");

    // Cleaned for good: the next start has nothing to drop.
    drop(d);
    let d = Daemon::start(&net.router, &scratch, &config(""));
    assert!(!d.log_text().contains("multicast"), "{}", d.log_text());
    assert_eq!(
        macs_in(&api(&net, "/api/v1/devices").1, "devices"),
        ["02:11:22:33:44:55"]
    );
}
