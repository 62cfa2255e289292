#![cfg(feature = "upstream")]
//! The `asus` source against a mock ASUS router on 127.0.0.1 that answers
//! like the firmware's httpd: the app API's form login (decoded as the
//! router decodes forms), token reuse and every way a token is refused,
//! lockout, wrong credentials and captcha, `netdev` with a repeated key,
//! Traffic Analyzer on, off and missing, 32-bit wraps and reboots through
//! `upstream::account`, and broken or slow answers.

use crate::mock;

use mock::{MockHttp, MockRequest, Reply};
use netmeter::account::CounterWidth;
use netmeter::clock::Moment;
use netmeter::config::Secret;
use netmeter::config::upstream::{UpstreamConfig, UpstreamKind};
use netmeter::upstream::account::UpstreamAccounts;
use netmeter::upstream::sources::{Deadline, Reading, ScrapeError, Source, source_for};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Its base64 with the user name has both `+` and `/`, which a form
/// decoder mangles unless they are URL-encoded.
const PASSWORD: &str = "asus~Secr>t??Asus>";
/// base64("admin:asus~Secr>t??Asus>"), what login.cgi must decode.
const CREDENTIALS: &str = "YWRtaW46YXN1c35TZWNyPnQ/P0FzdXM+";
const JSON: &str = "application/json;charset=UTF-8";
/// What httpd sends instead of data to a client it has logged out.
const LOGIN_PAGE: &str =
    "<HTML><HEAD><script>top.location.href='/Main_Login.asp';</script>\n</HEAD></HTML>";
const TRAFFIC_PAGE: &str = include_str!("../fixtures/upstream/asus/getTraffic.asp");
const TRAFFIC_OFF: &str = include_str!("../fixtures/upstream/asus/getTraffic-off.asp");

/// How the router refuses a token it no longer knows.
#[derive(Clone, Copy, Debug, Default)]
enum Expiry {
    #[default]
    LoggedOut,
    Unauthorized,
    Forbidden,
    LoginPage,
}

#[derive(Clone, Copy, Debug, Default, PartialEq)]
enum Analyzer {
    On,
    /// The page exists; its array is empty output.
    #[default]
    Off,
    /// No such page (404).
    Missing,
    /// The page answers with the login page whatever the token.
    Refused,
}

#[derive(Default)]
struct Router {
    token: Option<String>,
    logins: u32,
    /// The answer every login gets, when set.
    refuse: Option<&'static str>,
    /// Refuses even the token it just gave.
    refuse_all_tokens: bool,
    expiry: Expiry,
    internet_rx: u64,
    internet_tx: u64,
    analyzer: Analyzer,
    /// `uptime()`'s seconds since boot; None: a firmware without the hook.
    uptime: Option<u64>,
    /// Traffic Analyzer's page instead of the fixture.
    traffic: Option<String>,
}

/// application/x-www-form-urlencoded as the firmware's cgi decoder reads
/// it: `%XX` and `+` as a space.
fn form_value(body: &str, name: &str) -> Option<String> {
    let raw = body.strip_prefix(name)?.strip_prefix('=')?;
    let mut out = Vec::new();
    let bytes = raw.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                out.push(u8::from_str_radix(raw.get(i + 1..i + 3)?, 16).ok()?);
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

fn refusal(expiry: Expiry) -> Reply {
    match expiry {
        Expiry::LoggedOut => Reply::ok(JSON, "{\n\"error_status\":\"8\"\n}\n"),
        Expiry::Unauthorized => Reply::status(401, &[], "Unauthorized"),
        Expiry::Forbidden => Reply::status(403, &[], "Forbidden"),
        Expiry::LoginPage => Reply::ok("text/html", LOGIN_PAGE),
    }
}

fn router(state: Arc<Mutex<Router>>) -> impl Fn(&MockRequest) -> Reply + Send + Sync + 'static {
    move |req| {
        assert_eq!(req.header("user-agent"), Some("asusrouter--DUTUtil-"));
        let mut s = state.lock().unwrap();
        if req.path == "/login.cgi" {
            assert_eq!(req.method, "POST");
            assert_eq!(
                req.header("content-type"),
                Some("application/x-www-form-urlencoded")
            );
            assert_eq!(req.header("cookie"), None, "a login carries no token");
            if let Some(refusal) = s.refuse {
                return Reply::ok(JSON, refusal);
            }
            if form_value(&req.body_text(), "login_authorization").as_deref() != Some(CREDENTIALS) {
                return Reply::ok(JSON, "{\n\"error_status\":\"3\"\n}\n");
            }
            s.logins += 1;
            let token = format!("{:032x}", 0xa5a5_0000u64 + u64::from(s.logins));
            s.token = Some(token.clone());
            return Reply::ok(JSON, format!("{{ \"asus_token\": \"{token}\" }}\n"));
        }
        if req.path == "/getTraffic.asp" && s.analyzer == Analyzer::Refused {
            return Reply::ok("text/html", LOGIN_PAGE);
        }
        let cookie = req.header("cookie").unwrap_or("");
        let known = s
            .token
            .as_ref()
            .is_some_and(|t| cookie == format!("asus_token={t}"));
        if !known || s.refuse_all_tokens {
            return refusal(s.expiry);
        }
        match req.path.as_str() {
            "/appGet.cgi" if req.body_text() == "hook=uptime();" => match s.uptime {
                Some(up) => Reply::ok(
                    JSON,
                    format!(
                        "{{\n\"uptime\":\"Sun, 07 Dec 2026 07:00:00 +0100({up} secs since boot)\"\n}}\n"
                    ),
                ),
                // httpd skips a hook it does not know.
                None => Reply::ok(JSON, "{\n}\n"),
            },
            "/appGet.cgi" => {
                assert_eq!(req.method, "POST");
                assert_eq!(req.body_text(), "hook=netdev(appobj);");
                // The firmware's layout: a stale INTERNET_rx first, the
                // current one last (the last counts).
                Reply::ok(
                    JSON,
                    format!(
                        "{{\n\"netdev\":{{ \"BRIDGE_rx\":\"0x5c1d03a7\",\"BRIDGE_tx\":\"0x1b4e7f0c2\",\
                         \"INTERNET_rx\":\"0x0\",\"INTERNET_tx\":\"{tx:#x}\",\
                         \"WIRED_rx\":\"0x10dba3c4\",\"WIRED_tx\":\"0x2b2c1e0\",\
                         \"WIRELESS0_rx\":\"0x0\",\"WIRELESS0_tx\":\"0x0\",\
                         \"WIRELESS1_rx\":\"0x4e5f6a7b\",\"WIRELESS1_tx\":\"0x2A1B2C3D4\",\
                         \"INTERNET_rx\":\"{rx:#X}\"}}\n}}\n",
                        rx = s.internet_rx,
                        tx = s.internet_tx,
                    )
                    .replace("0X", "0x"),
                )
            }
            "/getTraffic.asp" => match s.analyzer {
                Analyzer::On => {
                    Reply::ok("text/html", s.traffic.as_deref().unwrap_or(TRAFFIC_PAGE))
                }
                Analyzer::Off => Reply::ok("text/html", TRAFFIC_OFF),
                _ => Reply::status(404, &[], "<html>404 Not Found</html>"),
            },
            other => panic!("unexpected {other}"),
        }
    }
}

fn start(state: Router) -> (Arc<Mutex<Router>>, MockHttp) {
    let state = Arc::new(Mutex::new(state));
    let mock = MockHttp::start(router(state.clone()));
    (state, mock)
}

fn source(port: u16, password: &str) -> Box<dyn Source> {
    let mut c = UpstreamConfig::new("asus", UpstreamKind::Asus);
    c.host = Some("127.0.0.1".into());
    c.port = port;
    c.username = Some("admin".into());
    c.password = Secret::password(password);
    source_for(&c).unwrap()
}

fn scrape(s: &mut Box<dyn Source>) -> Result<Reading, ScrapeError> {
    s.scrape(Deadline::after(Duration::from_secs(2)))
}

fn at(step: u64) -> Moment {
    Moment {
        monotonic_ms: step * 60_000,
        unix_secs: 1_795_000_000 + step * 60,
    }
}

/// The password, or its base64, in none of the errors and readings.
fn assert_no_secret(shown: &str) {
    assert!(!shown.contains(PASSWORD), "{shown}");
    assert!(!shown.contains(CREDENTIALS), "{shown}");
    assert!(!shown.contains("YWRtaW46YXN1c35TZWNyPnQ"), "{shown}");
}

#[test]
fn two_scrapes_one_login_with_the_wan_interfaces_and_devices() {
    let (state, mock) = start(Router {
        internet_rx: 0xeb9a134fe,
        internet_tx: 0x227d6b665,
        analyzer: Analyzer::On,
        ..Router::default()
    });
    let mut s = source(mock.port(), PASSWORD);
    let first = scrape(&mut s).unwrap();
    state.lock().unwrap().internet_rx += 5_000;
    let second = scrape(&mut s).unwrap();
    assert_eq!(state.lock().unwrap().logins, 1, "the token is reused");

    let wan = first.wan.unwrap();
    assert_eq!(
        (wan.rx_bytes, wan.tx_bytes),
        (0xeb9a134fe, 0x227d6b665),
        "the repeated INTERNET_rx counts as its last value"
    );
    assert_eq!(wan.width, CounterWidth::Bits64);
    assert_eq!(second.wan.unwrap().rx_bytes, 0xeb9a134fe + 5_000);
    let names: Vec<_> = first.interfaces.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["BRIDGE", "WIRED", "WIRELESS0", "WIRELESS1"]);
    assert_eq!(first.interfaces[3].1.tx_bytes, 0x2a1b2c3d4);

    // The device's view: [mac, tx, rx] = sent, received by the device.
    assert_eq!(first.devices.len(), 3);
    let d = &first.devices[0];
    assert_eq!(d.mac, [0xac, 0x89, 0x95, 0x12, 0x34, 0x56]);
    assert_eq!((d.rx_bytes, d.tx_bytes), (3_221_225_472, 874_315_520));
    assert_eq!(d.width, CounterWidth::Bits32);
    assert_eq!(second.devices.len(), 3, "asked every scrape while on");

    let requests = mock.requests();
    let logins: Vec<_> = requests.iter().filter(|r| r.path == "/login.cgi").collect();
    assert_eq!(logins.len(), 1);
    assert_eq!(
        logins[0].body_text(),
        "login_authorization=YWRtaW46YXN1c35TZWNyPnQ%2FP0FzdXM%2B",
        "URL-encoded as a browser sends the form"
    );
    for r in &requests {
        assert!(!r.contains(PASSWORD), "never in clear: {r:?}");
        let carries_credentials = r.contains("YWRtaW46YXN1c35TZWNyPnQ");
        assert_eq!(carries_credentials, r.path == "/login.cgi", "{}", r.path);
        if r.path != "/login.cgi" {
            assert_eq!(
                r.header("cookie"),
                Some("asus_token=000000000000000000000000a5a50001")
            );
        }
    }
    assert_no_secret(&format!("{first:?} {second:?}"));
}

#[test]
fn a_refused_token_means_one_new_login_within_the_same_scrape() {
    for expiry in [
        Expiry::LoggedOut,
        Expiry::Unauthorized,
        Expiry::Forbidden,
        Expiry::LoginPage,
    ] {
        let (state, mock) = start(Router {
            internet_rx: 1_000,
            expiry,
            ..Router::default()
        });
        let mut s = source(mock.port(), PASSWORD);
        scrape(&mut s).unwrap();
        // Someone logged in elsewhere: the router forgot netmeter's token.
        state.lock().unwrap().token = None;
        let reading = scrape(&mut s).unwrap_or_else(|e| panic!("{expiry:?}: {e}"));
        assert_eq!(reading.wan.unwrap().rx_bytes, 1_000);
        assert_eq!(state.lock().unwrap().logins, 2, "{expiry:?}");
        scrape(&mut s).unwrap();
        assert_eq!(state.lock().unwrap().logins, 2, "{expiry:?}: reused again");
    }
}

#[test]
fn a_fresh_token_refused_is_an_auth_error_and_no_login_loop() {
    let (state, mock) = start(Router {
        refuse_all_tokens: true,
        ..Router::default()
    });
    let mut s = source(mock.port(), PASSWORD);
    let e = scrape(&mut s).unwrap_err();
    assert!(matches!(e, ScrapeError::Auth(_)), "{e:?}");
    assert!(e.to_string().contains("one web login at a time"), "{e}");
    assert_eq!(
        state.lock().unwrap().logins,
        1,
        "one login per scrape, not two"
    );
    assert_no_secret(&format!("{e} {e:?}"));
}

#[test]
fn wrong_credentials_stop_a_lockout_waits_and_a_captcha_asks_for_a_browser() {
    let (state, mock) = start(Router::default());
    let wrong = "Wrong-asus-pw-1";
    let e = scrape(&mut source(mock.port(), wrong)).unwrap_err();
    assert!(matches!(e, ScrapeError::WrongCredentials(_)), "{e:?}");
    assert!(e.to_string().contains("not retrying"), "{e}");
    assert!(!format!("{e} {e:?}").contains(wrong));
    assert!(
        !format!("{e} {e:?}").contains("V3JvbmctYXN1cy1wdy0x"),
        "nor its base64"
    );

    state.lock().unwrap().refuse =
        Some("{\n\"error_status\":\"7\",\"remaining_lock_time\":\"59\"\n}\n");
    let e = scrape(&mut source(mock.port(), PASSWORD)).unwrap_err();
    assert!(
        matches!(e, ScrapeError::LockedOut { seconds: 59, .. }),
        "{e:?}"
    );
    assert_no_secret(&format!("{e} {e:?}"));

    state.lock().unwrap().refuse = Some(r#"{"error_status":"10"}"#);
    let e = scrape(&mut source(mock.port(), PASSWORD)).unwrap_err();
    assert_eq!(e.stage(), "auth");
    assert!(e.to_string().contains("log in once in a browser"), "{e}");

    state.lock().unwrap().refuse = Some(r#"{"error_status":"9"}"#);
    let e = scrape(&mut source(mock.port(), PASSWORD)).unwrap_err();
    assert!(e.to_string().contains("another login"), "{e}");
    assert_no_secret(&format!("{e} {e:?}"));
    assert_eq!(state.lock().unwrap().logins, 0);
}

#[test]
fn without_traffic_analyzer_there_are_no_devices_and_the_page_waits_an_hour() {
    for analyzer in [Analyzer::Off, Analyzer::Missing, Analyzer::Refused] {
        let (state, mock) = start(Router {
            internet_rx: 1,
            analyzer,
            ..Router::default()
        });
        let mut s = source(mock.port(), PASSWORD);
        for _ in 0..3 {
            let reading = scrape(&mut s).unwrap();
            assert!(reading.devices.is_empty(), "{analyzer:?}");
            assert_eq!(reading.wan.unwrap().rx_bytes, 1);
        }
        let asked = mock
            .requests()
            .iter()
            .filter(|r| r.path == "/getTraffic.asp")
            .count();
        assert_eq!(asked, 1, "{analyzer:?}");
        assert_eq!(
            state.lock().unwrap().logins,
            1,
            "{analyzer:?}: no login for the page"
        );
    }
}

#[test]
fn an_old_router_that_wraps_at_4_gib_shows_raw_values_and_totals_go_on() {
    let (state, mock) = start(Router::default());
    let mut s = source(mock.port(), PASSWORD);
    let mut accounts = UpstreamAccounts::default();
    let readings = [0xfff0_0000u64, 0xffff_f000, 0x1000, 0x5000];
    for (step, rx) in readings.into_iter().enumerate() {
        state.lock().unwrap().internet_rx = rx;
        let reading = scrape(&mut s).unwrap();
        assert_eq!(
            reading.wan.unwrap().rx_bytes,
            rx,
            "the raw value, as the router says"
        );
        accounts.ingest("asus", "asus", at(step as u64), &reading, None);
    }
    let wan = accounts.get("asus").unwrap().wan.clone().unwrap();
    // Declared 64-bit, the drop counts as a restart from zero: the growth
    // before it and everything after it are kept; only the 4 KiB between
    // the last reading and the wrap are not seen.
    assert_eq!(wan.rx_bytes(), (0xffff_f000 - 0xfff0_0000) + 0x5000);
}

#[test]
fn a_router_reboot_counts_from_zero() {
    let (state, mock) = start(Router::default());
    let mut s = source(mock.port(), PASSWORD);
    let mut accounts = UpstreamAccounts::default();
    for (step, rx) in [10u64 << 30, (10 << 30) + 5_000, 4_000]
        .into_iter()
        .enumerate()
    {
        state.lock().unwrap().internet_rx = rx;
        if step == 2 {
            state.lock().unwrap().token = None; // a reboot forgets the session too
        }
        let reading = scrape(&mut s).unwrap();
        accounts.ingest("asus", "asus", at(step as u64), &reading, None);
    }
    let wan = accounts.get("asus").unwrap().wan.clone().unwrap();
    assert_eq!(wan.rx_bytes(), 5_000 + 4_000);
    assert_eq!(state.lock().unwrap().logins, 2);
}

/// Traffic Analyzer's page with one device (sent, received by it).
fn traffic(sent: u64, received: u64) -> String {
    format!(
        "var array_traffic = new Array();\nvar router_traffic = new Array();\n\
         array_traffic = [[\"AC:89:95:12:34:56\", \"{sent}\", \"{received}\"]];\n\
         router_traffic = [\"1893470208\", \"4019183616\"];\n"
    )
}

/// Scrapes once per `(uptime, device sent, received)` a minute apart.
fn count_devices(steps: &[(Option<u64>, u64, u64)]) -> UpstreamAccounts {
    let (state, mock) = start(Router {
        analyzer: Analyzer::On,
        internet_rx: 1 << 40,
        ..Router::default()
    });
    let mut s = source(mock.port(), PASSWORD);
    let mut accounts = UpstreamAccounts::default();
    for (step, &(uptime, sent, received)) in steps.iter().enumerate() {
        {
            let mut r = state.lock().unwrap();
            r.uptime = uptime;
            r.traffic = Some(traffic(sent, received));
            r.internet_rx += 1_000;
        }
        let reading = scrape(&mut s).unwrap();
        assert_eq!(reading.uptime_secs, uptime);
        accounts.ingest("asus", "asus", at(step as u64), &reading, None);
    }
    accounts
}

#[test]
fn a_reboot_with_a_device_above_2_gib_adds_only_what_came_after() {
    let gib3 = 3u64 << 30;
    let accounts = count_devices(&[
        (Some(90_000), 1_000, gib3),
        (Some(90_060), 1_100, gib3 + 2_000),
        // Rebooted (the WAN is counted by the modem, not reset here).
        (Some(40), 50, 700),
    ]);
    let asus = accounts.get("asus").unwrap();
    let d = &asus.devices[0].totals;
    assert_eq!((d.rx_bytes(), d.tx_bytes()), (2_000 + 700, 100 + 50));
    let reset = asus.last_reset.clone().unwrap();
    assert_eq!(reset.reason.name(), "uptime");
    assert!(
        reset.detail.contains("from 90060 s to 40 s"),
        "{}",
        reset.detail
    );
}

#[test]
fn a_real_32_bit_wrap_of_a_device_counts_exactly() {
    let top = u64::from(u32::MAX);
    // With the uptime carrying on, and on a firmware without uptime().
    for uptimes in [[Some(500), Some(560), Some(620)], [None; 3]] {
        let accounts = count_devices(&[
            (uptimes[0], 1_000, top - 9_000),
            (uptimes[1], 1_100, top - 1_000),
            (uptimes[2], 1_200, 3_000),
        ]);
        let asus = accounts.get("asus").unwrap();
        let d = &asus.devices[0].totals;
        assert_eq!(d.rx_bytes(), 8_000 + 1_001 + 3_000, "{uptimes:?}");
        assert_eq!(asus.last_reset, None);
    }
}

#[test]
fn broken_and_slow_answers() {
    let login_cases: Vec<(Reply, &str)> = vec![
        (Reply::ok("text/html", "<html>Main page</html>"), "parse"),
        (Reply::ok(JSON, "{\"asus_token\":"), "parse"),
        (Reply::status(500, &[], ""), "protocol"),
        (Reply::hang(), "timeout"),
        (
            Reply::trickle("{\"asus_token\":\"abc\"}", Duration::from_millis(200)),
            "timeout",
        ),
    ];
    for (reply, stage) in login_cases {
        let reply = Mutex::new(Some(reply));
        let mock =
            MockHttp::start(move |_| reply.lock().unwrap().take().unwrap_or_else(Reply::close));
        let e = scrape(&mut source(mock.port(), PASSWORD)).unwrap_err();
        assert_eq!(e.stage(), stage, "{e}");
        assert_no_secret(&format!("{e} {e:?}"));
    }
    // Logged in, then netdev answers broken, cut, or not at all.
    type MakeReply = fn() -> Reply;
    let netdev_cases: Vec<(MakeReply, &str)> = vec![
        (
            || Reply::ok(JSON, "{\"netdev\":{\"INTERNET_rx\":\"0x1"),
            "parse",
        ),
        (
            || {
                Reply::ok(
                    JSON,
                    r#"{"netdev":{"INTERNET_rx":"12","INTERNET_tx":"0x1"}}"#,
                )
            },
            "parse",
        ),
        (|| Reply::ok(JSON, "{}"), "parse"),
        (|| Reply::status(404, &[], "Not Found"), "protocol"),
        (Reply::hang, "timeout"),
        (
            || {
                Reply::trickle(
                    r#"{"netdev":{"INTERNET_rx":"0x1","INTERNET_tx":"0x1"}}"#,
                    Duration::from_millis(200),
                )
            },
            "timeout",
        ),
    ];
    for (netdev, stage) in netdev_cases {
        let mock = MockHttp::start(move |req| match req.path.as_str() {
            "/login.cgi" => Reply::ok(JSON, r#"{"asus_token":"t"}"#),
            _ => netdev(),
        });
        let e = scrape(&mut source(mock.port(), PASSWORD)).unwrap_err();
        assert_eq!(e.stage(), stage, "{e}");
        assert_no_secret(&format!("{e} {e:?}"));
    }
}
