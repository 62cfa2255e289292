//! The conntrack placement on the real kernel, in the test bed (conntrack,
//! no flowtable): per-device totals from conntrack's per-flow counters
//! against each host's own L3 bytes, with short flows that begin and end
//! between two refreshes, long ones that span many, ICMP, IPv4 NAT and
//! routed IPv6; `nf_conntrack_acct` off at the start and turned on; and
//! the protocol view's classes from known server ports.

use super::devices::{
    accuracy_of, check, config, device, devices, finding, mac_of, network, u, within,
};
use crate::testbed;

use serde_json::Value;
use std::time::Duration;
use testbed::netmeter::{Daemon, Scratch};
use testbed::topology::{PORT, WAN_HOST_V4, WAN_HOST_V6};
use testbed::{Counters, Network};

/// Ends a closed flow's conntrack entry within about a second (the
/// router's namespace only), so the short flows below end between reads.
fn short_conntrack_timeouts(net: &Network) {
    for name in [
        "tcp_timeout_time_wait",
        "tcp_timeout_close",
        "tcp_timeout_close_wait",
        "tcp_timeout_fin_wait",
        "tcp_timeout_last_ack",
        "udp_timeout",
        "udp_timeout_stream",
        "icmp_timeout",
        "icmpv6_timeout",
    ] {
        net.router
            .run(&format!("sysctl net/netfilter/nf_conntrack_{name} 1"));
    }
}

const CONNTRACK: &str = "\toption placement 'conntrack'\n\toption refresh_interval '3'\n";

#[test]
fn conntrack_counts_each_device_within_half_a_percent_with_short_and_long_flows_and_icmp() {
    let report = accuracy_of(
        CONNTRACK,
        |net, d| {
            short_conntrack_timeouts(net);
            d.wait_for_log("per-device accounting: conntrack", Duration::from_secs(10));
        },
        |net| {
            let (laptop, tv, phone) = (&net.lan[0], &net.lan[1], &net.lan[2]);
            // Long flows: 8 s each, over several 3 s refreshes.
            laptop.run(&format!("tcp_paced {WAN_HOST_V4} {PORT} 3000000 8"));
            phone.run(&format!("tcp_paced {WAN_HOST_V6} {PORT} 2000000 8"));
            // Short flows: 150 + 150 connections, most begun and ended
            // between two reads (their entries end a second after close).
            tv.run(&format!("tcp_flows {WAN_HOST_V4} {PORT} 150 3000"));
            phone.run(&format!("tcp_flows {WAN_HOST_V6} {PORT} 150 2000"));
            laptop.run(&format!("icmp_echo {WAN_HOST_V4} 100 1000"));
            tv.run(&format!("icmp_echo {WAN_HOST_V6} 100 800"));
            // Let the last entries end and be read.
            std::thread::sleep(Duration::from_secs(3));
        },
    );
    let placement = finding(&report, "placement")[0]["message"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(placement.starts_with("conntrack"), "{placement}");
    let conntrack = finding(&report, "conntrack");
    assert!(conntrack.iter().all(|f| f["ok"] == true), "{report}");
}

#[test]
fn conntrack_accounting_off_at_the_start_is_turned_on_and_said_so() {
    let net = network();
    net.router.run("sysctl net/netfilter/nf_conntrack_acct 0");
    let scratch = Scratch::new();
    let d = Daemon::start(&net.router, &scratch, &config(CONNTRACK));
    d.wait_for_log("turned it on", Duration::from_secs(10));
    assert!(
        d.log_text().contains("nf_conntrack_acct=1"),
        "{}",
        d.log_text()
    );
    let (_, report) = check(&net, &d);
    let findings = finding(&report, "conntrack");
    assert!(
        findings
            .iter()
            .any(|f| f["ok"] == true && f["message"].as_str().unwrap().contains("accounting is on")),
        "{report}"
    );
}

/// A firewall restart takes `inet netmeter` away, and with it the tracking
/// of IPv6 (the test bed NATs only IPv4): it is put back, and an IPv6
/// upload after it is counted in full.
#[test]
fn a_flushed_ruleset_under_conntrack_is_reinstalled_and_ipv6_is_counted_after_it() {
    let net = network();
    let scratch = Scratch::new();
    let d = Daemon::start(&net.router, &scratch, &config(CONNTRACK));
    d.wait_for_log("per-device accounting: conntrack", Duration::from_secs(10));
    net.router.run("nft_flush");
    net.router.run("masquerade wan");
    d.wait_for_log(
        "reinstalling it. Conntrack kept counting",
        Duration::from_secs(10),
    );
    assert!(
        net.router.run("nft_tables").contains("netmeter"),
        "the table is back"
    );
    let phone = &net.lan[2];
    let mac = mac_of(phone);
    d.wait_refreshed(&net.router);
    let before_host = phone.counters()["eth0"];
    // Not a device yet if it has sent nothing beyond the router.
    let tx_of = |report: &Value| {
        report["devices"]
            .as_array()
            .and_then(|all| all.iter().find(|v| v["mac"] == mac.as_str()))
            .map_or(0, |v| u(v, "tx_bytes"))
    };
    let before = tx_of(&devices(&net, &d));
    phone.run(&format!("tcp_upload {WAN_HOST_V6} {PORT} 400000"));
    // The flow ends and its destroy event is read.
    std::thread::sleep(Duration::from_secs(1));
    d.wait_refreshed(&net.router);
    d.wait_refreshed(&net.router);
    let sent = phone.counters()["eth0"].tx_l3_bytes() - before_host.tx_l3_bytes();
    let counted = tx_of(&devices(&net, &d)) - before;
    within(
        counted,
        sent,
        0.005,
        "the phone's IPv6 upload after the reinstall",
    );
}

/// The class's (rx, tx) for a device in `netmeter devices --json`.
fn class_bytes(dev: &Value, class: &str) -> (u64, u64) {
    dev["protocols"]
        .as_array()
        .unwrap_or_else(|| panic!("no protocols in {dev}"))
        .iter()
        .find(|p| p["class"] == class)
        .map(|p| (u(p, "rx_bytes"), u(p, "tx_bytes")))
        .unwrap_or_else(|| panic!("no class {class} in {dev}"))
}

#[test]
fn flows_to_443_53_22_and_an_unknown_port_land_in_https_dns_ssh_and_other() {
    let net = network();
    for port in [443, 53, 22, 7777] {
        net.wan.run(&format!("serve {port}"));
    }
    let scratch = Scratch::new();
    let d = Daemon::start(&net.router, &scratch, &config(CONNTRACK));
    d.wait_for_log("per-device accounting: conntrack", Duration::from_secs(10));
    let laptop = &net.lan[0];
    // One class at a time, each with the host's own counters around it.
    let mut truth: Vec<(&str, Counters, Counters)> = Vec::new();
    for (class, traffic) in [
        ("https", format!("tcp_upload {WAN_HOST_V4} 443 400000")),
        ("dns", format!("udp_upload {WAN_HOST_V4} 53 400 500")),
        ("ssh", format!("tcp_download {WAN_HOST_V6} 22 600000")),
        ("other", format!("tcp_upload {WAN_HOST_V6} 7777 300000")),
    ] {
        let before = laptop.counters()["eth0"];
        laptop.run(&traffic);
        truth.push((class, before, laptop.counters()["eth0"]));
    }
    d.wait_refreshed(&net.router);
    real_dump_parses(&net);
    let report = devices(&net, &d);
    assert!(report["protocols_since"].is_u64(), "{report}");
    let dev = device(&report, &mac_of(laptop));
    let out = testbed::netmeter::run(
        &net.router,
        &[
            "devices",
            "--by",
            "protocol",
            "-c",
            d.config_path().to_str().unwrap(),
        ],
    );
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for class in ["https", "dns", "ssh", "other"] {
        assert!(
            table
                .lines()
                .any(|l| l.split_whitespace().next() == Some(class)),
            "{table}"
        );
    }
    for (class, before, after) in truth {
        let (rx, tx) = class_bytes(dev, class);
        let truth_rx = after.rx_l3_bytes() - before.rx_l3_bytes();
        let truth_tx = after.tx_l3_bytes() - before.tx_l3_bytes();
        within(
            rx + tx,
            truth_rx + truth_tx,
            0.005,
            &format!("{class} rx + tx"),
        );
        // The small direction (ACKs, or nothing for the UDP upload) is a few
        // KB at most: the host's counters also hold what is in no flow (its
        // neighbour solicitations, the router's advertisements), a few
        // hundred bytes, so it gets 1 KiB of slack.
        for (what, got, truth) in [("rx", rx, truth_rx), ("tx", tx, truth_tx)] {
            let off = got.abs_diff(truth);
            assert!(
                off as f64 <= (0.005 * truth as f64).max(1024.0),
                "{class} {what}: netmeter {got}, ground truth {truth}"
            );
        }
    }
}

/// A dump as this kernel sends it parses into the flows just made; with
/// NETMETER_SAVE_SEEDS=DIR it is also saved there (how the fuzz target's
/// `real_dump_*` seeds were made).
fn real_dump_parses(net: &Network) {
    use netmeter::netlink::MessageIter;
    use netmeter::netlink::conntrack::{FlowMessage, parse};
    let hex = net.router.run("conntrack_dump_hex");
    let bytes: Vec<u8> = (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
        .collect();
    let ports: Vec<u16> = MessageIter::new(&bytes)
        .map(|m| m.expect("a well-formed message"))
        .filter_map(|m| match parse(&m).expect("a flow the parser reads") {
            Some(FlowMessage::Live(f)) => Some(f.original.dst_port),
            _ => None,
        })
        .collect();
    for port in [443, 53, 22, 7777] {
        assert!(ports.contains(&port), "no flow to port {port} in {ports:?}");
    }
    if let Ok(dir) = std::env::var("NETMETER_SAVE_SEEDS") {
        std::fs::write(format!("{dir}/real_dump_protocols.bin"), &bytes).unwrap();
    }
}
