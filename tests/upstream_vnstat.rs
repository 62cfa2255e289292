//! The `vnstat` source from a URL (mock on 127.0.0.1) and from a file.

mod mock;

use mock::{MockHttp, Reply};
use netmeter::account::Moment;
use netmeter::account::upstream::UpstreamAccounts;
use netmeter::collect::upstream::{Deadline, Reading, ScrapeError, source_for};
use netmeter::config::{UpstreamConfig, UpstreamKind};
use std::sync::Mutex;
use std::time::Duration;

const FIXTURE: &str = include_str!("fixtures/upstream/vnstat/vnstat-2.10.json");

fn config(url: Option<String>, file: Option<std::path::PathBuf>) -> UpstreamConfig {
    let mut c = UpstreamConfig::new("nas", UpstreamKind::Vnstat);
    c.url = url;
    c.file = file;
    c.device = Some("enp3s0".into());
    c
}

fn scrape(c: &UpstreamConfig) -> Result<Reading, ScrapeError> {
    source_for(c)?.scrape(Deadline::after(Duration::from_secs(2)))
}

#[test]
fn from_a_url_and_from_a_file() {
    let mock = MockHttp::start(|req| {
        assert_eq!(req.path, "/cgi-bin/vnstat.cgi?json");
        Reply::ok("application/json", FIXTURE)
    });
    let url = format!("http://127.0.0.1:{}/cgi-bin/vnstat.cgi?json", mock.port());
    let reading = scrape(&config(Some(url), None)).unwrap();
    assert_eq!(reading.wan.unwrap().rx_bytes, 987_654_321_098);

    let dir = std::env::temp_dir().join(format!("netmeter-vnstat-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("vnstat.json");
    std::fs::write(&file, FIXTURE).unwrap();
    let reading = scrape(&config(None, Some(file.clone()))).unwrap();
    assert_eq!(reading.wan.unwrap().tx_bytes, 123_456_789_012);

    // vnStat's database was reset (a new install): totals go on from there.
    let mut accounts = UpstreamAccounts::default();
    for (step, text) in [FIXTURE.to_owned(), FIXTURE.replace("987654321098", "4096")]
        .iter()
        .enumerate()
    {
        std::fs::write(&file, text).unwrap();
        let now = Moment {
            monotonic_ms: step as u64 * 60_000,
            unix_secs: 1_795_000_000 + step as u64 * 60,
        };
        accounts.ingest(
            "nas",
            "vnstat",
            now,
            &scrape(&config(None, Some(file.clone()))).unwrap(),
            None,
        );
    }
    assert_eq!(
        accounts
            .get("nas")
            .unwrap()
            .wan
            .as_ref()
            .unwrap()
            .rx_bytes(),
        4096
    );

    let e = scrape(&config(None, Some(dir.join("missing.json")))).unwrap_err();
    assert_eq!(e.stage(), "local", "{e}");
    assert!(e.to_string().contains("missing.json"), "{e}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn failures_name_what_went_wrong() {
    let cases: Vec<(Reply, &str)> = vec![
        (Reply::status(404, &[], "no such page"), "protocol"),
        (
            Reply::ok("application/json", &FIXTURE[..FIXTURE.len() / 2]),
            "parse",
        ),
        (
            Reply::ok("application/json", r#"{"jsonversion":"1","interfaces":[]}"#),
            "parse",
        ),
        (Reply::hang(), "timeout"),
        (
            Reply::trickle(FIXTURE, Duration::from_millis(200)),
            "timeout",
        ),
    ];
    for (reply, stage) in cases {
        let reply = Mutex::new(Some(reply));
        let mock =
            MockHttp::start(move |_| reply.lock().unwrap().take().unwrap_or_else(Reply::close));
        let url = format!("http://127.0.0.1:{}/vnstat.json", mock.port());
        let e = scrape(&config(Some(url), None)).unwrap_err();
        assert_eq!(e.stage(), stage, "{e}");
    }
}
