#![cfg(feature = "upstream")]
//! The `prometheus` source against exporter mocks on 127.0.0.1 serving
//! the real text format of node_exporter and of OpenWrt's ucode and Lua
//! exporters: wraps and resets through the upstream accounts, and every
//! way an endpoint can fail.

use crate::mock;

use mock::{MockHttp, Reply};
use netmeter::clock::Moment;
use netmeter::config::upstream::{UpstreamConfig, UpstreamKind};
use netmeter::upstream::account::UpstreamAccounts;
use netmeter::upstream::sources::{Deadline, Reading, ScrapeError, Source, source_for};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const NODE_EXPORTER: &str = include_str!("../fixtures/upstream/prometheus/node_exporter.txt");
const UCODE: &str = include_str!("../fixtures/upstream/prometheus/ucode.txt");
const LUA: &str = include_str!("../fixtures/upstream/prometheus/lua.txt");

/// node_exporter's Content-Type; the OpenWrt exporters send the same
/// (the Lua one without the charset).
const TEXT: &str = "text/plain; version=0.0.4; charset=utf-8";

fn source(port: u16, device: Option<&str>, interfaces: &[&str]) -> Box<dyn Source> {
    let mut config = UpstreamConfig::new("up", UpstreamKind::Prometheus);
    config.url = Some(format!("http://127.0.0.1:{port}/metrics"));
    config.device = device.map(str::to_owned);
    config.interfaces = interfaces.iter().map(|s| s.to_string()).collect();
    source_for(&config).unwrap()
}

fn scrape(s: &mut Box<dyn Source>) -> Result<Reading, ScrapeError> {
    s.scrape(Deadline::after(Duration::from_secs(2)))
}

fn serve(body: &'static str) -> MockHttp {
    MockHttp::start(move |req| {
        assert_eq!(
            (req.method.as_str(), req.path.as_str()),
            ("GET", "/metrics")
        );
        assert_eq!(req.header("Accept"), Some("text/plain"));
        Reply::ok(TEXT, body)
    })
}

fn names(reading: &Reading) -> Vec<&str> {
    reading.interfaces.iter().map(|(n, _)| n.as_str()).collect()
}

#[test]
fn a_node_exporter_page_gives_the_wan_interfaces_and_stations() {
    let mock = serve(NODE_EXPORTER);
    let reading = scrape(&mut source(mock.port(), Some("pppoe-wan"), &[])).unwrap();
    let wan = reading.wan.unwrap();
    assert_eq!(
        (wan.rx_bytes, wan.tx_bytes),
        (81_234_567_891, 9_876_543_219),
        "exponent floats read exactly"
    );
    assert_eq!(names(&reading), ["eth0", "wlan0"], "lo is left out");
    assert_eq!(reading.interfaces[0].1.rx_bytes, 18_274_538_496);
    let station = &reading.devices[0];
    assert_eq!(station.mac, [0xac, 0x89, 0x95, 0x77, 0x9a, 0xe9]);
    // The access point sent the station 2 GiB: the station's download.
    assert_eq!(
        (station.rx_bytes, station.tx_bytes),
        (2_147_483_648, 104_857_600)
    );
    assert_eq!(mock.requests().len(), 1);
}

#[test]
fn the_ucode_exporter_interleaved_with_escaped_labels_and_nan_gauges() {
    let mock = serve(UCODE);
    let reading = scrape(&mut source(mock.port(), Some("wan"), &["br-lan", "lan1"])).unwrap();
    let wan = reading.wan.unwrap();
    assert_eq!(
        (wan.rx_bytes, wan.tx_bytes),
        (81_234_567_891, 9_876_543_219)
    );
    assert_eq!(names(&reading), ["lan1", "br-lan"], "list interface limits");
    let macs: Vec<[u8; 6]> = reading.devices.iter().map(|d| d.mac.0).collect();
    assert_eq!(
        macs,
        [
            [0xac, 0x89, 0x95, 0x77, 0x9a, 0xe9],
            [0xf2, 0x11, 0x22, 0x33, 0x44, 0x55]
        ]
    );
    // The phone on both radios: 2 GiB + 20 MiB down, 100 MiB + 1 MiB up.
    let phone = &reading.devices[0];
    assert_eq!(
        (phone.rx_bytes, phone.tx_bytes),
        (2_147_483_648 + 20_971_520, 104_857_600 + 1_048_576)
    );

    // Without option device every interface but lo is one, the WAN included.
    let reading = scrape(&mut source(mock.port(), None, &[])).unwrap();
    assert!(reading.wan.is_none());
    assert_eq!(
        names(&reading),
        ["lan1", "wan", "br-lan", "phy0-ap0", "phy1-ap0"],
        "in the exporter's order"
    );
}

#[test]
fn the_lua_exporter_with_unescaped_labels_and_hostapd_stations() {
    let mock = serve(LUA);
    let reading = scrape(&mut source(mock.port(), Some("pppoe-wan"), &[])).unwrap();
    let wan = reading.wan.unwrap();
    assert_eq!(
        (wan.rx_bytes, wan.tx_bytes),
        (51_234_567_890, 6_234_567_890)
    );
    assert_eq!(
        names(&reading),
        ["br-lan", "eth0", "wlan0"],
        "in the exporter's order"
    );
    // wifi_stations has no byte samples (stock iwinfo has none for Lua);
    // hostapd_stations does, and the station whose SSID has an unescaped
    // quote is lost, not the scrape.
    assert_eq!(reading.devices.len(), 1);
    let phone = &reading.devices[0];
    assert_eq!(phone.mac, [0xac, 0x89, 0x95, 0x77, 0x9a, 0xe9]);
    assert_eq!(
        (phone.rx_bytes, phone.tx_bytes),
        (2_147_483_648, 104_857_600)
    );
}

/// A page whose WAN counters are set by the test, in the given format.
fn counting_mock(value: Arc<Mutex<String>>) -> MockHttp {
    MockHttp::start(move |_| {
        let v = value.lock().unwrap().clone();
        Reply::ok(
            TEXT,
            format!(
                "# TYPE node_network_receive_bytes_total counter\n\
                 node_network_receive_bytes_total{{device=\"wan\"}} {v}\n\
                 node_network_transmit_bytes_total{{device=\"wan\"}} 1000\n"
            ),
        )
    })
}

#[test]
fn raw_values_pass_through_and_totals_go_on_through_a_reboot() {
    let value = Arc::new(Mutex::new(String::new()));
    let mock = counting_mock(value.clone());
    let mut s = source(mock.port(), Some("wan"), &[]);
    let mut accounts = UpstreamAccounts::default();
    // Go's shortest %g, as node_exporter writes counters from 1e6 on; then
    // the router reboots.
    let steps = [
        ("5e+09", 5_000_000_000u64),
        ("6.000000123e+09", 6_000_000_123),
        ("700", 700),
        ("1700", 1_700),
    ];
    for (step, (text, raw)) in steps.into_iter().enumerate() {
        *value.lock().unwrap() = text.to_owned();
        let reading = scrape(&mut s).unwrap();
        assert_eq!(
            reading.wan.unwrap().rx_bytes,
            raw,
            "{text}: raw, as the router said"
        );
        let now = Moment {
            monotonic_ms: step as u64 * 60_000,
            unix_secs: 1_795_000_000 + step as u64 * 60,
        };
        accounts.ingest("up", "prometheus", now, &reading, None);
    }
    let wan = accounts.get("up").unwrap().wan.clone().unwrap();
    assert_eq!(wan.rx_bytes(), 1_000_000_123 + 700 + 1_000);
}

#[test]
fn a_reboot_told_by_node_boot_time_seconds_adds_only_what_came_after() {
    // (rx, tx, boot time, the exporter's clock), a minute apart; the host
    // rebooted before the third reading, and its tx is at 1 GiB again.
    let page = Arc::new(Mutex::new(String::new()));
    let mock = MockHttp::start({
        let page = page.clone();
        move |_| Reply::ok(TEXT, page.lock().unwrap().clone())
    });
    let mut s = source(mock.port(), Some("wan"), &[]);
    let mut accounts = UpstreamAccounts::default();
    let gib = 1u64 << 30;
    let steps = [
        (5 * gib, gib, 1_794_000_000, 1_795_000_000.25),
        (5 * gib + 800, gib + 80, 1_794_000_000, 1_795_000_060.5),
        (600, gib + 500, 1_795_000_090, 1_795_000_120.75),
    ];
    for (step, (rx, tx, boot, time)) in steps.into_iter().enumerate() {
        *page.lock().unwrap() = format!(
            "# HELP node_boot_time_seconds Node boot time, in unixtime.\n\
             # TYPE node_boot_time_seconds gauge\n\
             node_boot_time_seconds {boot:e}\n\
             node_network_receive_bytes_total{{device=\"wan\"}} {rx:e}\n\
             node_network_transmit_bytes_total{{device=\"wan\"}} {tx:e}\n\
             # HELP node_time_seconds System time in seconds since epoch (1970).\n\
             # TYPE node_time_seconds gauge\n\
             node_time_seconds {time:e}\n"
        );
        let reading = scrape(&mut s).unwrap();
        let now = Moment {
            monotonic_ms: step as u64 * 60_000,
            unix_secs: 1_795_000_000 + step as u64 * 60,
        };
        accounts.ingest("up", "prometheus", now, &reading, None);
    }
    let up = accounts.get("up").unwrap();
    assert_eq!(up.uptime_secs, Some(30));
    let wan = up.wan.as_ref().unwrap();
    // tx climbed back above where it was: the reboot costs what it moved
    // before that point, never more than came through.
    assert_eq!((wan.rx_bytes(), wan.tx_bytes()), (800 + 600, 80 + 420));
    let reset = up.last_reset.clone().unwrap();
    assert_eq!(reset.reason.name(), "uptime");
    assert!(
        reset.detail.contains("from 1000060 s to 30 s"),
        "{}",
        reset.detail
    );
}

#[test]
fn a_counter_that_wraps_near_2_to_the_64_is_passed_on_raw() {
    // node_exporter's counters are 64-bit; what a wrap means is the
    // accounts' business: the source reports both readings as they are.
    let value = Arc::new(Mutex::new("1.8446744073709550e+19".to_owned()));
    let mock = counting_mock(value.clone());
    let mut s = source(mock.port(), Some("wan"), &[]);
    let before = scrape(&mut s).unwrap().wan.unwrap();
    assert_eq!(before.rx_bytes, 18_446_744_073_709_549_568);
    *value.lock().unwrap() = "4096".to_owned();
    let after = scrape(&mut s).unwrap().wan.unwrap();
    assert_eq!(after.rx_bytes, 4096);
    assert_eq!(after.width, netmeter::account::CounterWidth::Bits64);
}

#[test]
fn samples_that_are_no_byte_count_are_skipped_without_a_failure() {
    let mock = serve(
        "node_network_receive_bytes_total{device=\"wan\"} 1e+03\n\
         node_network_transmit_bytes_total{device=\"wan\"} 2e3\n\
         node_network_receive_bytes_total{device=\"eth1\"} NaN\n\
         node_network_transmit_bytes_total{device=\"eth1\"} 1\n\
         node_network_receive_bytes_total{device=\"eth2\"} +Inf\n\
         node_network_transmit_bytes_total{device=\"eth2\"} -Inf\n\
         node_network_receive_bytes_total{device=\"eth3\"} 3\n\
         node_network_transmit_bytes_total{device=\"eth3\"} 4 1395066363000\n",
    );
    let reading = scrape(&mut source(mock.port(), Some("wan"), &[])).unwrap();
    let wan = reading.wan.unwrap();
    assert_eq!((wan.rx_bytes, wan.tx_bytes), (1000, 2000));
    assert_eq!(names(&reading), ["eth3"]);
    // On the WAN itself it is an error that names the series.
    let e = scrape(&mut source(mock.port(), Some("eth1"), &[])).unwrap_err();
    assert_eq!(e.stage(), "parse");
    assert!(e.to_string().contains("device=\"eth1\""), "{e}");
}

#[test]
fn failures_name_what_went_wrong() {
    let cases: Vec<(Reply, &str, &str)> = vec![
        (
            Reply::status(
                404,
                &[("Content-Type", "text/plain")],
                "ERROR: File Not Found.",
            ),
            "protocol",
            "GET /metrics answered HTTP 404",
        ),
        (
            Reply::ok(TEXT, "# TYPE up gauge\nup 1\n"),
            "parse",
            "no node_network_receive_bytes_total",
        ),
        (
            Reply::ok("text/html", "<html><body>LuCI</body></html>\n"),
            "parse",
            "no node_network_receive_bytes_total",
        ),
        (
            Reply::ok(TEXT, "node_network_receive_bytes_total{device=\"wan\" 1\n"),
            "parse",
            "line 1: expected , or }",
        ),
        (
            Reply::ok(
                TEXT,
                "node_network_receive_bytes_total{device=\"wan\"} 1\n\
                 node_network_transmit_bytes_total{device=\"wan\"} 0x10\n",
            ),
            "parse",
            "line 2: expected a number",
        ),
        (
            // Cut off mid-number in a body that ends with the connection.
            Reply::raw(
                &b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\n\
                   node_network_receive_bytes_total{device=\"wan\"} 182745"[..],
            ),
            "parse",
            "cut off",
        ),
        (
            Reply::raw(&b"HTTP/1.1 200 OK\r\nContent-Length: 500\r\n\r\nnode_network_rec"[..]),
            "protocol",
            "",
        ),
        (Reply::ok(TEXT, vec![0xff, 0xfe, 0x00]), "parse", ""),
        (Reply::hang(), "timeout", ""),
        (
            Reply::trickle(
                NODE_EXPORTER.as_bytes().to_vec(),
                Duration::from_millis(200),
            ),
            "timeout",
            "",
        ),
    ];
    for (reply, stage, says) in cases {
        let reply = Mutex::new(Some(reply));
        let mock =
            MockHttp::start(move |_| reply.lock().unwrap().take().unwrap_or_else(Reply::close));
        let e = scrape(&mut source(mock.port(), Some("wan"), &[])).unwrap_err();
        assert_eq!(e.stage(), stage, "{e}");
        assert!(e.to_string().contains(says), "{e}");
    }
    let silent = mock::silent_listener();
    let e = scrape(&mut source(silent.port(), None, &[])).unwrap_err();
    assert_eq!(e.stage(), "timeout", "{e}");
    let e = scrape(&mut source(mock::closed_port(), None, &[])).unwrap_err();
    assert_eq!(e.stage(), "connect", "{e}");
}

#[test]
fn a_url_that_is_not_plain_http_is_a_clear_error_at_the_first_scrape() {
    let mut config = UpstreamConfig::new("up", UpstreamKind::Prometheus);
    config.url = Some("https://192.0.2.1:9100/metrics".into());
    let e = source_for(&config)
        .unwrap()
        .scrape(Deadline::after(Duration::from_secs(1)))
        .unwrap_err();
    assert!(e.to_string().contains("http://"), "{e}");
}
