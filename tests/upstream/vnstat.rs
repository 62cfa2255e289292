#![cfg(feature = "upstream")]
//! The `vnstat` source from a URL (a vnstat-json.cgi mock on 127.0.0.1)
//! and from a file.

use crate::mock;

use mock::{MockHttp, Reply};
use netmeter::clock::Moment;
use netmeter::config::upstream::{UpstreamConfig, UpstreamKind};
use netmeter::upstream::account::UpstreamAccounts;
use netmeter::upstream::sources::{Deadline, Reading, ScrapeError, source_for};
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

const V2_10: &str = include_str!("../fixtures/upstream/vnstat/vnstat-2.10.json");
const V2_6: &str = include_str!("../fixtures/upstream/vnstat/vnstat-2.6.json");
const V1: &str = include_str!("../fixtures/upstream/vnstat/vnstat-1.18.json");

fn config(url: Option<String>, file: Option<PathBuf>, device: &str) -> UpstreamConfig {
    let mut c = UpstreamConfig::new("nas", UpstreamKind::Vnstat);
    c.url = url;
    c.file = file;
    c.device = Some(device.into());
    c
}

fn scrape(c: &UpstreamConfig) -> Result<Reading, ScrapeError> {
    source_for(c)?.scrape(Deadline::after(Duration::from_secs(2)))
}

/// A directory of this test's own under the system's temp directory.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        let dir =
            std::env::temp_dir().join(format!("netmeter-vnstat-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn from_vnstat_json_cgi() {
    let mock = MockHttp::start(|req| {
        assert_eq!(req.path, "/cgi-bin/vnstat-json.cgi");
        assert_eq!(req.header("Accept"), Some("application/json"));
        // The CGI's answer through uhttpd: chunked.
        Reply::chunked(
            "application/json",
            &[&V2_6.as_bytes()[..1000], &V2_6.as_bytes()[1000..]],
        )
    });
    let url = format!("http://127.0.0.1:{}/cgi-bin/vnstat-json.cgi", mock.port());
    let reading = scrape(&config(Some(url), None, "eth0")).unwrap();
    let wan = reading.wan.unwrap();
    assert_eq!(
        (wan.rx_bytes, wan.tx_bytes),
        (14_240_639_268, 10_335_243_710)
    );
    let names: Vec<_> = reading.interfaces.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["docker0"], "lo left out");

    let mut c = config(
        Some(format!(
            "http://127.0.0.1:{}/cgi-bin/vnstat-json.cgi",
            mock.port()
        )),
        None,
        "eth0",
    );
    c.interfaces = vec!["lo".into()];
    let reading = scrape(&c).unwrap();
    let names: Vec<_> = reading.interfaces.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["lo"], "list interface limits");
}

#[test]
fn from_a_file_with_a_reset_database_between_reads() {
    let dir = TempDir::new("file");
    let file = dir.0.join("vnstat.json");
    let c = config(None, Some(file.clone()), "enp3s0");
    std::fs::write(&file, V2_10).unwrap();
    let reading = scrape(&c).unwrap();
    assert_eq!(reading.wan.unwrap().tx_bytes, 123_456_789_012);

    // vnStat's database was reset (a new install): the raw reading shows
    // it, and the totals go on from there.
    let mut accounts = UpstreamAccounts::default();
    for (step, text) in [V2_10.to_owned(), V2_10.replace("987654321098", "4096")]
        .iter()
        .enumerate()
    {
        std::fs::write(&file, text).unwrap();
        let reading = scrape(&c).unwrap();
        if step == 1 {
            assert_eq!(reading.wan.unwrap().rx_bytes, 4096);
        }
        let now = Moment {
            monotonic_ms: step as u64 * 60_000,
            unix_secs: 1_795_000_000 + step as u64 * 60,
        };
        accounts.ingest("nas", "vnstat", now, &reading, None);
    }
    let wan = accounts.get("nas").unwrap().wan.clone().unwrap();
    assert_eq!(wan.rx_bytes(), 4096);
    // Only rx fell, and 64-bit: no wrap fits, so a reset by option max_rate.
    let reset = accounts.get("nas").unwrap().last_reset.clone().unwrap();
    assert_eq!(reset.reason.name(), "max_rate");
}

#[test]
fn a_database_reset_with_every_counter_falling_is_a_reboot_and_adds_only_what_came_after() {
    let dir = TempDir::new("reset");
    let file = dir.0.join("vnstat.json");
    let c = config(None, Some(file.clone()), "enp3s0");
    let mut accounts = UpstreamAccounts::default();
    let grown = V2_10
        .replace("987654321098", "987654322098")
        .replace("123456789012", "123456789512");
    // The whole database: wg0 starts over too.
    let reset = V2_10
        .replace("987654321098", "3000")
        .replace("123456789012", "700")
        .replace(r#""rx":100,"tx":200"#, r#""rx":10,"tx":20"#);
    for (step, text) in [V2_10.to_owned(), grown, reset].iter().enumerate() {
        std::fs::write(&file, text).unwrap();
        let reading = scrape(&c).unwrap();
        assert_eq!(reading.uptime_secs, None, "vnStat has no uptime");
        let now = Moment {
            monotonic_ms: step as u64 * 60_000,
            unix_secs: 1_795_000_000 + step as u64 * 60,
        };
        accounts.ingest("nas", "vnstat", now, &reading, None);
    }
    let nas = accounts.get("nas").unwrap();
    let wan = nas.wan.as_ref().unwrap();
    assert_eq!((wan.rx_bytes(), wan.tx_bytes()), (1_000 + 3_000, 500 + 700));
    let reset = nas.last_reset.clone().unwrap();
    assert_eq!(reset.reason.name(), "all_counters_fell");
}

#[test]
fn files_that_cannot_be_read_are_local_errors_and_bad_content_parse_errors() {
    let dir = TempDir::new("bad");
    let local = |path: PathBuf, says: &str| {
        let e = scrape(&config(None, Some(path), "enp3s0")).unwrap_err();
        assert_eq!(e.stage(), "local", "{e}");
        assert!(e.to_string().contains(says), "{e}");
    };
    local(dir.0.join("missing.json"), "missing.json");
    local(dir.0.clone(), "not a regular file");
    let big = dir.0.join("big.json");
    let padded = format!("{V2_10}{}", " ".repeat(8 << 20));
    std::fs::write(&big, padded).unwrap();
    local(big, "over 8 MiB");

    let parse = |content: &[u8], says: &str| {
        let path = dir.0.join("content.json");
        std::fs::write(&path, content).unwrap();
        let e = scrape(&config(None, Some(path), "enp3s0")).unwrap_err();
        assert_eq!(e.stage(), "parse", "{e}");
        assert!(e.to_string().contains(says), "{e}");
    };
    parse(V1.as_bytes(), "upgrade vnStat");
    parse(b"\xff\xfe{}", "not UTF-8");
    parse(
        &V2_10.as_bytes()[..V2_10.len() / 2],
        "not vnstat --json output",
    );
}

#[test]
fn failures_over_http_name_what_went_wrong() {
    let cases: Vec<(Reply, &str, &str)> = vec![
        (
            Reply::status(
                404,
                &[("Content-Type", "text/plain")],
                "Unknown interface.\n",
            ),
            "protocol",
            "GET /cgi-bin/vnstat-json.cgi/eth9 answered HTTP 404",
        ),
        (
            Reply::status(
                500,
                &[("Content-Type", "text/plain")],
                "Failed to read vnStat data.\n",
            ),
            "protocol",
            "HTTP 500",
        ),
        (
            Reply::ok("text/plain", "Database is empty.\n"),
            "parse",
            "it begins: 'Database is empty.'",
        ),
        (
            Reply::ok("application/json", &V2_10[..V2_10.len() / 2]),
            "parse",
            "not vnstat --json output",
        ),
        (
            Reply::ok("application/json", V1),
            "parse",
            "jsonversion '1'",
        ),
        (Reply::hang(), "timeout", ""),
        (
            Reply::trickle(V2_10, Duration::from_millis(200)),
            "timeout",
            "",
        ),
    ];
    for (reply, stage, says) in cases {
        let reply = Mutex::new(Some(reply));
        let mock =
            MockHttp::start(move |_| reply.lock().unwrap().take().unwrap_or_else(Reply::close));
        let url = format!(
            "http://127.0.0.1:{}/cgi-bin/vnstat-json.cgi/eth9",
            mock.port()
        );
        let e = scrape(&config(Some(url), None, "eth9")).unwrap_err();
        assert_eq!(e.stage(), stage, "{e}");
        assert!(e.to_string().contains(says), "{e}");
    }
    let silent = mock::silent_listener();
    let url = format!("http://127.0.0.1:{}/vnstat.json", silent.port());
    let e = scrape(&config(Some(url), None, "eth0")).unwrap_err();
    assert_eq!(e.stage(), "timeout", "{e}");
    let url = format!("http://127.0.0.1:{}/vnstat.json", mock::closed_port());
    let e = scrape(&config(Some(url), None, "eth0")).unwrap_err();
    assert_eq!(e.stage(), "connect", "{e}");
}
