//! `netmeter queues` against `tc -s -j qdisc` for a shaped link that
//! drops: htb with a child class and a pfifo leaf on the router's WAN.

use crate::testbed;

use serde_json::Value;
use std::collections::BTreeMap;
use testbed::netmeter::{self, Daemon, Scratch};
use testbed::topology::{PORT, WAN_HOST_V4};
use testbed::{Host, Network};

const TOKEN: &str = "queues-test-token-5d1e0a77";

const FIELDS: [&str; 7] = [
    "bytes",
    "packets",
    "drops",
    "overlimits",
    "requeues",
    "backlog",
    "qlen",
];

fn tc(host: &Host, tc: &std::path::Path, args: &[&str]) -> String {
    let out = host.command(tc).args(args).output().expect("running tc");
    assert!(
        out.status.success(),
        "tc {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// tc's qdiscs of `dev` by handle: kind, parent and the seven counters.
fn tc_qdiscs(host: &Host, tc_path: &std::path::Path, dev: &str) -> BTreeMap<String, Value> {
    let text = tc(host, tc_path, &["-s", "-j", "qdisc", "show", "dev", dev]);
    let all: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"));
    all.as_array()
        .unwrap()
        .iter()
        .map(|q| {
            let parent = if q["root"] == Value::Bool(true) {
                "root".to_string()
            } else {
                q["parent"].as_str().unwrap_or("?").to_string()
            };
            let mut v = serde_json::json!({"kind": q["kind"], "parent": parent});
            for f in FIELDS {
                v[f] = q[f].clone();
            }
            (q["handle"].as_str().unwrap().to_string(), v)
        })
        .collect()
}

/// netmeter's qdiscs of `dev` in the same shape.
fn netmeter_qdiscs(report: &Value, dev: &str) -> BTreeMap<String, Value> {
    let iface = report["interfaces"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["name"] == dev)
        .unwrap_or_else(|| panic!("{dev} missing from {report}"));
    iface["qdiscs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|q| {
            let mut v = serde_json::json!({"kind": q["kind"], "parent": q["parent"]});
            for f in FIELDS {
                v[f] = q[f].clone();
            }
            (q["handle"].as_str().unwrap().to_string(), v)
        })
        .collect()
}

/// Reads tc, netmeter, tc until both tc readings agree (nothing moved in
/// between: IPv6 housekeeping can), then netmeter must equal them.
fn assert_equals_tc(
    host: &Host,
    tc_path: &std::path::Path,
    dev: &str,
    read: impl Fn() -> Value,
) -> BTreeMap<String, Value> {
    for _ in 0..10 {
        let before = tc_qdiscs(host, tc_path, dev);
        let ours = netmeter_qdiscs(&read(), dev);
        let after = tc_qdiscs(host, tc_path, dev);
        if before == after {
            assert_eq!(ours, before, "netmeter (left) and tc (right) differ");
            return ours;
        }
    }
    panic!("{dev}'s qdiscs never held still between two tc readings");
}

fn shaped_wan(net: &Network, tc_path: &std::path::Path) {
    for args in [
        &[
            "qdisc", "add", "dev", "wan", "root", "handle", "1:", "htb", "default", "10",
        ][..],
        &[
            "class", "add", "dev", "wan", "parent", "1:", "classid", "1:10", "htb", "rate", "1mbit",
        ],
        &[
            "qdisc", "add", "dev", "wan", "parent", "1:10", "handle", "10:", "pfifo", "limit", "5",
        ],
    ] {
        tc(&net.router, tc_path, args);
    }
    // Far more than 5 packets at once through 1 Mbit/s: the pfifo drops.
    net.router
        .run(&format!("udp_blast {WAN_HOST_V4} {PORT} 300 1200"));
    // Then the queue drains (slowly on a loaded machine): the figures
    // compared are final, and whatever the pfifo held has passed.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while tc_qdiscs(&net.router, tc_path, "wan")
        .values()
        .any(|q| q["qlen"] != 0)
    {
        assert!(
            std::time::Instant::now() < deadline,
            "wan's queue never drained: {:?}",
            tc_qdiscs(&net.router, tc_path, "wan")
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

#[test]
fn queue_figures_equal_tc_after_a_shaped_link_drops() {
    let Some(tc_path) = testbed::require_tool("tc", "iproute2") else {
        return;
    };
    let net = Network::with_lan_hosts(&["a"]);
    shaped_wan(&net, &tc_path);
    let ours = assert_equals_tc(&net.router, &tc_path, "wan", || {
        netmeter::json(&net.router, &["queues", "--json"])
    });
    let (htb, pfifo) = (&ours["1:"], &ours["10:"]);
    assert_eq!(
        (htb["kind"].as_str(), htb["parent"].as_str()),
        (Some("htb"), Some("root"))
    );
    assert_eq!(
        (pfifo["kind"].as_str(), pfifo["parent"].as_str()),
        (Some("pfifo"), Some("1:10"))
    );
    assert!(
        pfifo["drops"].as_u64().unwrap() > 0,
        "the pfifo dropped: {pfifo}"
    );
    assert!(
        htb["overlimits"].as_u64().unwrap() > 0,
        "htb held packets back: {htb}"
    );
    assert!(pfifo["packets"].as_u64().unwrap() >= 5, "{pfifo}");
}

#[test]
fn the_api_and_metrics_behind_a_token_show_the_same_queues_as_tc() {
    let Some(tc_path) = testbed::require_tool("tc", "iproute2") else {
        return;
    };
    let net = Network::with_lan_hosts(&["a"]);
    shaped_wan(&net, &tc_path);
    let scratch = Scratch::new();
    let daemon = Daemon::start(
        &net.router,
        &scratch,
        &format!("config netmeter 'main'\n\toption token '{TOKEN}'\n"),
    );
    daemon.wait_refreshed(&net.router);
    let ours = assert_equals_tc(&net.router, &tc_path, "wan", || {
        let text = net
            .router
            .run(&format!("http_get 127.0.0.1:9750 /api/v1/queues {TOKEN}"));
        let body = text
            .strip_prefix("200 ")
            .unwrap_or_else(|| panic!("{text}"));
        serde_json::from_str(body).unwrap()
    });
    let drops = ours["10:"]["drops"].as_u64().unwrap();
    let metrics = net
        .router
        .run(&format!("http_get 127.0.0.1:9750 /metrics {TOKEN}"));
    let line = format!(
        "netmeter_qdisc_drops_total{{interface=\"wan\",kind=\"pfifo\",handle=\"10:\",parent=\"1:10\"}} {drops}"
    );
    assert!(metrics.contains(&line), "{line} missing from {metrics}");
}
