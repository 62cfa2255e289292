//! The `prometheus` source against a node_exporter-style mock on
//! 127.0.0.1: the real text format, wraps and resets through the upstream
//! accounts, and every way an endpoint can fail.

mod mock;

use mock::{MockHttp, Reply};
use netmeter::account::Moment;
use netmeter::account::upstream::UpstreamAccounts;
use netmeter::collect::upstream::{Deadline, ScrapeError, Source, source_for};
use netmeter::config::{UpstreamConfig, UpstreamKind};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const FIXTURE: &str = include_str!("fixtures/upstream/prometheus/node_exporter.txt");

fn source(port: u16, device: Option<&str>) -> Box<dyn Source> {
    let mut config = UpstreamConfig::new("up", UpstreamKind::Prometheus);
    config.url = Some(format!("http://127.0.0.1:{port}/metrics"));
    config.device = device.map(str::to_owned);
    source_for(&config).unwrap()
}

fn scrape(s: &mut Box<dyn Source>) -> Result<netmeter::collect::upstream::Reading, ScrapeError> {
    s.scrape(Deadline::after(Duration::from_secs(2)))
}

const TEXT: &str = "text/plain; version=0.0.4; charset=utf-8";

#[test]
fn a_node_exporter_page_gives_the_wan_interfaces_and_stations() {
    let mock = MockHttp::start(|req| {
        assert_eq!(
            (req.method.as_str(), req.path.as_str()),
            ("GET", "/metrics")
        );
        Reply::ok(TEXT, FIXTURE)
    });
    let reading = scrape(&mut source(mock.port(), Some("pppoe-wan"))).unwrap();
    let wan = reading.wan.unwrap();
    assert_eq!(
        (wan.rx_bytes, wan.tx_bytes),
        (81_234_567_891, 9_876_543_219)
    );
    let names: Vec<_> = reading.interfaces.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["eth0", "wlan0"]);
    assert_eq!(reading.interfaces[0].1.rx_bytes, 18_274_538_496);
    let station = &reading.devices[0];
    assert_eq!(station.mac, [0xac, 0x89, 0x95, 0x77, 0x9a, 0xe9]);
    // The access point sent the station 2 GiB: the station's download.
    assert_eq!(
        (station.rx_bytes, station.tx_bytes),
        (2_147_483_648, 104_857_600)
    );
}

#[test]
fn totals_go_on_through_a_router_reboot() {
    let value = Arc::new(Mutex::new(5_000_000_000u64));
    let page = value.clone();
    let mock = MockHttp::start(move |_| {
        let v = *page.lock().unwrap();
        Reply::ok(
            TEXT,
            format!(
                "node_network_receive_bytes_total{{device=\"wan\"}} {v}\n\
                 node_network_transmit_bytes_total{{device=\"wan\"}} {}\n",
                v / 10
            ),
        )
    });
    let mut s = source(mock.port(), Some("wan"));
    let mut accounts = UpstreamAccounts::default();
    for (step, raw) in [5_000_000_000u64, 6_000_000_000, 700, 1_700]
        .into_iter()
        .enumerate()
    {
        *value.lock().unwrap() = raw;
        let reading = scrape(&mut s).unwrap();
        let now = Moment {
            monotonic_ms: step as u64 * 60_000,
            unix_secs: 1_795_000_000 + step as u64 * 60,
        };
        accounts.ingest("up", "prometheus", now, &reading, None);
    }
    let wan = accounts.get("up").unwrap().wan.clone().unwrap();
    assert_eq!(wan.rx_bytes(), 1_000_000_000 + 700 + 1_000);
}

#[test]
fn failures_name_what_went_wrong() {
    let cases: Vec<(Reply, &str)> = vec![
        (Reply::status(404, &[], "not found"), "protocol"),
        (Reply::ok(TEXT, "up 1\n"), "parse"),
        (
            Reply::ok(TEXT, "node_network_receive_bytes_total{device=\"wan\" 1\n"),
            "parse",
        ),
        (
            Reply::raw(b"HTTP/1.1 200 OK\r\nContent-Length: 500\r\n\r\nnode_network_rec".to_vec()),
            "protocol",
        ),
        (Reply::ok(TEXT, vec![0xff, 0xfe, 0x00]), "parse"),
        (Reply::hang(), "timeout"),
        (
            Reply::trickle(FIXTURE.as_bytes().to_vec(), Duration::from_millis(200)),
            "timeout",
        ),
    ];
    for (reply, stage) in cases {
        let reply = Mutex::new(Some(reply));
        let mock =
            MockHttp::start(move |_| reply.lock().unwrap().take().unwrap_or_else(Reply::close));
        let e = scrape(&mut source(mock.port(), Some("wan"))).unwrap_err();
        assert_eq!(e.stage(), stage, "{e}");
    }
    let silent = mock::silent_listener();
    let e = scrape(&mut source(silent.port(), None)).unwrap_err();
    assert_eq!(e.stage(), "timeout", "{e}");
    let e = scrape(&mut source(mock::closed_port(), None)).unwrap_err();
    assert_eq!(e.stage(), "connect", "{e}");
}
