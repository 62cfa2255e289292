#![cfg(feature = "upstream")]
//! Upstream routers through a real daemon: the WAN namespace plays the
//! upstream router (a node_exporter-style endpoint whose WAN counters
//! mirror its real link to netmeter, plus bytes of devices that bypass
//! netmeter), so the double-NAT difference is checked against real kernel
//! counters on both sides. A second "router" accepts and never answers:
//! local refreshes go on meanwhile. Totals and history survive a restart.

use crate::testbed;

use serde_json::Value;
use std::time::{Duration, Instant};
use testbed::netmeter::{Daemon, Scratch};
use testbed::topology::{LanHost, PORT, Topology, WAN_HOST_V4};
use testbed::{Host, Network};

const EXPORTER: u16 = 9100;
const SILENT: u16 = 9101;
/// What devices beside netmeter moved through the upstream router.
const BYPASS_RX: u64 = 5_000_000;
const BYPASS_TX: u64 = 1_000_000;
/// The scrape's own answer travels after the upstream router counted it,
/// so the two sides differ by about one answer at any moment (and answers
/// differ in length by a few digits), either way.
const SKEW: u64 = 16_384;

fn config() -> String {
    format!(
        "config netmeter 'main'\n\toption refresh_interval '1'\n\toption listen '127.0.0.1:9750'\n\
         \tlist lan_interface 'lan0'\n\
         config upstream 'isp'\n\toption type 'prometheus'\n\
         \toption url 'http://{WAN_HOST_V4}:{EXPORTER}/metrics'\n\toption device 'isp0'\n\
         \toption interval '5'\n\toption timeout '2'\n\
         config upstream 'hung'\n\toption type 'prometheus'\n\
         \toption url 'http://{WAN_HOST_V4}:{SILENT}/metrics'\n\
         \toption interval '120'\n\toption timeout '100'\n"
    )
}

fn get(router: &Host, d: &Daemon, path: &str) -> (String, String) {
    let answer = router.run(&format!("http_get {} {path}", d.api));
    let (status, body) = answer.split_once(' ').unwrap();
    (status.to_owned(), body.to_owned())
}

fn upstream(router: &Host, d: &Daemon) -> Value {
    let (status, body) = get(router, d, "/api/v1/upstream");
    assert_eq!(status, "200", "{body}");
    serde_json::from_str(&body).unwrap()
}

fn source<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["sources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == name)
        .unwrap_or_else(|| panic!("no source {name}: {report}"))
}

/// Waits until the exporter has answered `n` more scrapes, then for the
/// daemon to have ingested the last (the answer is counted before it is sent).
fn wait_for_scrapes(net: &Network, d: &Daemon, n: usize) {
    let target = net.wan.run("scrapes").parse::<usize>().unwrap() + n;
    let start = Instant::now();
    while net.wan.run("scrapes").parse::<usize>().unwrap() < target {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "the upstream router was not scraped:\n{}",
            d.log_text()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    d.wait_refreshed(&net.router);
}

#[test]
fn double_nat_difference_history_and_a_hung_router_through_a_real_daemon() {
    let net = Network::build(Topology {
        lan: vec![LanHost::dual("laptop")],
        bridge: None,
    });
    net.wan.run(&format!("exporter {EXPORTER}"));
    net.wan.run(&format!("silent {SILENT}"));
    let scratch = Scratch::new();
    let d = Daemon::start(&net.router, &scratch, &config());
    wait_for_scrapes(&net, &d, 1);
    let laptop = &net.lan[0];
    laptop.run(&format!("tcp_download {WAN_HOST_V4} {PORT} 2000000"));
    laptop.run(&format!("tcp_upload {WAN_HOST_V4} {PORT} 700000"));
    net.wan.run(&format!("bypass {BYPASS_RX} {BYPASS_TX}"));
    wait_for_scrapes(&net, &d, 2);

    let report = upstream(&net.router, &d);
    let isp = source(&report, "isp");
    assert_eq!(isp["ok"], true, "{isp}");
    assert_eq!(isp["type"], "prometheus");
    let wan = &isp["wan"];
    let rx = wan["rx_bytes"].as_u64().unwrap();
    let tx = wan["tx_bytes"].as_u64().unwrap();
    assert!(rx >= 2_000_000 + BYPASS_RX, "{isp}");
    assert!(tx >= 700_000 + BYPASS_TX, "{isp}");
    let bypass = &isp["bypass"];
    for (field, expected) in [("rx_bytes", BYPASS_RX), ("tx_bytes", BYPASS_TX)] {
        let got = bypass[field].as_u64().unwrap();
        assert!(
            got.abs_diff(expected) <= SKEW,
            "bypass {field} {got}, expected {expected} (± {SKEW} of skew): {isp}"
        );
    }
    let names: Vec<&str> = isp["interfaces"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        ["eth0"],
        "the WAN is option device, the rest interfaces"
    );

    // The hung router holds its scrape for 100 s; local refreshes go on.
    let start = Instant::now();
    while net.wan.run("silent_accepted") == "0" {
        assert!(start.elapsed() < Duration::from_secs(30), "never connected");
        std::thread::sleep(Duration::from_millis(50));
    }
    let before = d.refreshes(&net.router);
    d.wait_for_refreshes(&net.router, before + 3);
    let hung = source(&upstream(&net.router, &d), "hung").clone();
    assert!(
        hung["last_success"].is_null() && hung["last_error"].is_null(),
        "three local refreshes passed while the hung scrape was outstanding: {hung}"
    );

    let (status, body) = get(
        &net.router,
        &d,
        "/api/v1/history?interface=isp/wan&period=hour",
    );
    assert_eq!(status, "200", "{body}");
    let history: Value = serde_json::from_str(&body).unwrap();
    let buckets = history["series"][0]["buckets"].as_array().unwrap();
    let credited: u64 = buckets
        .iter()
        .map(|b| b["rx_bytes"].as_u64().unwrap())
        .sum();
    // Ended hours are kept rounded to the KiB (store/history.rs), and a
    // scrape may land between the two requests.
    let closed = buckets.len() as u64 - 1;
    let rx_after = source(&upstream(&net.router, &d), "isp")["wan"]["rx_bytes"]
        .as_u64()
        .unwrap();
    assert!(
        (rx.saturating_sub(512 * closed)..=rx_after + 512 * closed).contains(&credited),
        "history holds the upstream WAN's growth ({rx}..{rx_after}): {history}"
    );

    let (status, metrics) = get(&net.router, &d, "/metrics");
    assert_eq!(status, "200");
    for line in [
        "netmeter_upstream_up{source=\"isp\",type=\"prometheus\"} 1",
        "netmeter_upstream_up{source=\"hung\",type=\"prometheus\"} 0",
        "netmeter_upstream_receive_bytes_total{source=\"isp\",series=\"bypass\"}",
    ] {
        assert!(metrics.contains(line), "{line} missing: {metrics}");
    }

    // A restart (which must not wait out the hung scrape for long) keeps
    // the totals, and the router's counting meanwhile is not lost.
    drop(d);
    laptop.run(&format!("tcp_download {WAN_HOST_V4} {PORT} 1000000"));
    let d = Daemon::start(&net.router, &scratch, &config());
    wait_for_scrapes(&net, &d, 2);
    let again = source(&upstream(&net.router, &d), "isp").clone();
    let rx_again = again["wan"]["rx_bytes"].as_u64().unwrap();
    assert!(
        rx_again >= rx + 1_000_000,
        "totals go on across a restart, with what the router counted meanwhile: {rx} then {again}"
    );
}

/// A password no output may contain.
const SECRET: &str = "hunter2-Secret-9f8e";

/// One source of every protocol, each pointed at something that fails it
/// in its own way (an exporter that is not that router, a silent port, a
/// closed port), every one with the password set.
fn failing_sources() -> String {
    let mut text = format!(
        "config netmeter 'main'\n\toption refresh_interval '1'\n\toption listen '127.0.0.1:9750'\n\
         \tlist lan_interface 'lan0'\n\toption token 'tok-{SECRET}'\n"
    );
    let targets = [
        ("fritzbox", EXPORTER),
        ("asus", EXPORTER),
        ("ubus", EXPORTER),
        ("tplink", EXPORTER),
        ("snmp", EXPORTER),
        ("draytek", EXPORTER),
        ("igd", SILENT),
    ];
    for (kind, port) in targets {
        text += &format!(
            "config upstream '{kind}'\n\toption type '{kind}'\n\toption host '{WAN_HOST_V4}'\n\
             \toption port '{port}'\n\toption username 'admin'\n\toption password '{SECRET}'\n\
             \toption interval '5'\n\toption timeout '2'\n"
        );
    }
    text += &format!(
        "config upstream 'snmpcommunity'\n\toption type 'snmp'\n\toption host '{WAN_HOST_V4}'\n\
         \toption community '{SECRET}'\n\toption interval '5'\n\toption timeout '2'\n\
         config upstream 'tplink_md5'\n\toption type 'tplink'\n\toption variant 'md5'\n\
         \toption host '{WAN_HOST_V4}'\n\toption port '{EXPORTER}'\n\toption username 'admin'\n\
         \toption password '{SECRET}'\n\toption interval '5'\n\toption timeout '2'\n\
         config upstream 'closed'\n\toption type 'ubus'\n\toption host '{WAN_HOST_V4}'\n\
         \toption port '1'\n\toption username 'admin'\n\toption password '{SECRET}'\n\
         \toption interval '5'\n\toption timeout '2'\n"
    );
    text
}

#[test]
fn passwords_appear_in_no_output_log_or_answer() {
    let net = Network::build(Topology {
        lan: vec![LanHost::dual("laptop")],
        bridge: None,
    });
    net.wan.run(&format!("exporter {EXPORTER}"));
    net.wan.run(&format!("silent {SILENT}"));
    let scratch = Scratch::new();
    let config = failing_sources();
    let path = scratch.file(
        "check.conf",
        &testbed::netmeter::with_scratch_directories(&config, &scratch),
    );
    let path = path.to_str().unwrap();

    // Without a daemon: check and upstream scrape each source once.
    let mut seen = String::new();
    for args in [
        vec!["check", "-c", path],
        vec!["upstream", "-c", path],
        vec!["upstream", "--json", "-c", path],
    ] {
        let out = testbed::netmeter::run(&net.router, &args);
        seen += &String::from_utf8_lossy(&out.stdout);
        seen += &String::from_utf8_lossy(&out.stderr);
    }
    for kind in [
        "fritzbox",
        "asus",
        "ubus",
        "tplink",
        "snmp",
        "snmpcommunity",
        "igd",
        "closed",
    ] {
        assert!(
            seen.contains(&format!("'{kind}'")) || seen.contains(&format!("\"{kind}\"")),
            "{kind} was not reported: {seen}"
        );
    }
    assert!(seen.contains("upstream"), "{seen}");

    // With a daemon: its log, every answer.
    let d = Daemon::start(&net.router, &scratch, &config);
    let start = Instant::now();
    loop {
        let report = get_with_token(&net.router, &d, "/api/v1/upstream");
        let failed = report["sources"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|s| s["last_error"].is_string())
            .count();
        if failed == 10 {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "sources did not all fail: {report}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    for path in [
        "/api/v1/upstream",
        "/api/v1/status",
        "/metrics",
        "/api/v1/devices",
    ] {
        let token = d.token.clone().unwrap();
        let answer = net
            .router
            .run(&format!("http_get {} {path} {token}", d.api));
        assert!(answer.starts_with("200 "), "{path}: {answer}");
        seen += &answer;
    }
    seen += &d.log_text();
    let secret_matches = seen.matches(SECRET).count();
    let token_matches = seen.matches(&format!("tok-{SECRET}")).count();
    assert_eq!(
        secret_matches, token_matches,
        "a password appears in the output:\n{seen}"
    );
    assert_eq!(token_matches, 0, "the token appears in the output:\n{seen}");
}

fn get_with_token(router: &Host, d: &Daemon, path: &str) -> Value {
    let token = d.token.clone().unwrap();
    let answer = router.run(&format!("http_get {} {path} {token}", d.api));
    let (status, body) = answer.split_once(' ').unwrap();
    assert_eq!(status, "200", "{body}");
    serde_json::from_str(body).unwrap()
}
