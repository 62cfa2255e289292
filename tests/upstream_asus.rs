//! The `asus` source against a mock ASUS router on 127.0.0.1: the app
//! API's login, token reuse and expiry, lockout and wrong credentials,
//! `netdev` with repeated keys, and Traffic Analyzer on and off.

mod mock;

use mock::{MockHttp, MockRequest, Reply};
use netmeter::account::Moment;
use netmeter::account::upstream::UpstreamAccounts;
use netmeter::collect::upstream::{Deadline, Reading, ScrapeError, Source, source_for};
use netmeter::config::{Secret, UpstreamConfig, UpstreamKind};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const PASSWORD: &str = "asus-Secret-2024";
/// base64("admin:asus-Secret-2024"), what login.cgi receives.
const CREDENTIALS: &str = "YWRtaW46YXN1cy1TZWNyZXQtMjAyNA==";
const JSON: &str = "application/json;charset=UTF-8";

#[derive(Default)]
struct Router {
    token: Option<String>,
    logins: u32,
    /// error_status the next login gets, when set.
    refuse: Option<&'static str>,
    internet_rx: u64,
    analyzer: bool,
}

fn router(state: Arc<Mutex<Router>>) -> impl Fn(&MockRequest) -> Reply + Send + Sync + 'static {
    move |req| {
        assert_eq!(req.header("user-agent"), Some("asusrouter--DUTUtil-"));
        let mut s = state.lock().unwrap();
        if req.path == "/login.cgi" {
            assert_eq!(req.method, "POST");
            if let Some(refusal) = s.refuse {
                return Reply::ok(JSON, refusal);
            }
            if req.body_text() != format!("login_authorization={CREDENTIALS}") {
                return Reply::ok(JSON, r#"{"error_status":"3"}"#);
            }
            s.logins += 1;
            let token = format!("{:032x}", 0xa5a5_0000 + s.logins);
            s.token = Some(token.clone());
            return Reply::ok(JSON, format!("{{ \"asus_token\": \"{token}\" }}"));
        }
        let cookie = req.header("cookie").unwrap_or("");
        if s.token
            .as_ref()
            .is_none_or(|t| cookie != format!("asus_token={t}"))
        {
            return Reply::ok(JSON, r#"{"error_status":"8"}"#);
        }
        match req.path.as_str() {
            "/appGet.cgi" => {
                assert_eq!(req.body_text(), "hook=netdev(appobj);");
                // A stale INTERNET_rx first: the firmware repeats keys, the last counts.
                Reply::ok(
                    JSON,
                    format!(
                        "{{\n\"netdev\":{{\"INTERNET_rx\":\"0x0\",\"INTERNET_tx\":\"0x227d6b665\",\
                         \"WIRED_rx\":\"0x10dba3c4\",\"WIRED_tx\":\"0x2b2c1e0\",\
                         \"WIRELESS0_rx\":\"0x0\",\"WIRELESS0_tx\":\"0x0\",\
                         \"INTERNET_rx\":\"{:#x}\"}}\n}}",
                        s.internet_rx
                    ),
                )
            }
            "/getTraffic.asp" if s.analyzer => Reply::ok(
                "text/html",
                "\nvar router_traffic = [\"94839294\",\"38475932\"];\n\
                 array_traffic = [[\"AC:89:95:77:9A:E9\",\"996055825\",\"2194849299\"],\
                 [\"2C:F0:5D:00:11:22\",\"12345\",\"67890\"]];\n",
            ),
            "/getTraffic.asp" => Reply::status(404, &[], "<html>404 Not Found</html>"),
            other => panic!("unexpected {other}"),
        }
    }
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

#[test]
fn logs_in_rarely_reads_netdev_and_devices_and_counts_across_a_reboot() {
    let state = Arc::new(Mutex::new(Router {
        internet_rx: 0xeb9a134fe,
        analyzer: true,
        ..Router::default()
    }));
    let mock = MockHttp::start(router(state.clone()));
    let mut s = source(mock.port(), PASSWORD);
    let mut accounts = UpstreamAccounts::default();
    for (step, rx) in [
        0xeb9a134feu64,
        0xeb9a134fe + 5_000,
        0xeb9a134fe + 9_000,
        4_000,
    ]
    .into_iter()
    .enumerate()
    {
        state.lock().unwrap().internet_rx = rx;
        if step == 2 {
            state.lock().unwrap().token = None; // the router forgot the session
        }
        let reading = scrape(&mut s).unwrap();
        if step == 0 {
            let names: Vec<_> = reading.interfaces.iter().map(|(n, _)| n.as_str()).collect();
            assert_eq!(names, ["WIRED", "WIRELESS0"]);
            let tv = &reading.devices[0];
            assert_eq!((tv.rx_bytes, tv.tx_bytes), (2_194_849_299, 996_055_825));
            assert_eq!(reading.devices.len(), 2);
        }
        let now = Moment {
            monotonic_ms: step as u64 * 60_000,
            unix_secs: 1_795_000_000 + step as u64 * 60,
        };
        accounts.ingest("asus", "asus", now, &reading, None);
    }
    assert_eq!(
        state.lock().unwrap().logins,
        2,
        "one login, one after the token expired"
    );
    let wan = accounts.get("asus").unwrap().wan.clone().unwrap();
    assert_eq!(wan.rx_bytes(), 9_000 + 4_000, "a reboot counts from zero");
    let requests = mock.requests();
    assert!(
        requests.iter().all(|r| !r.contains(PASSWORD)),
        "never in clear"
    );
    let with_credentials = requests.iter().filter(|r| r.contains(CREDENTIALS)).count();
    assert_eq!(with_credentials, 2, "only the logins carry the credentials");
}

#[test]
fn without_traffic_analyzer_there_are_no_devices_and_the_page_is_not_asked_again_soon() {
    let state = Arc::new(Mutex::new(Router {
        internet_rx: 1,
        ..Router::default()
    }));
    let mock = MockHttp::start(router(state));
    let mut s = source(mock.port(), PASSWORD);
    for _ in 0..3 {
        assert!(scrape(&mut s).unwrap().devices.is_empty());
    }
    let asked = mock
        .requests()
        .iter()
        .filter(|r| r.path == "/getTraffic.asp")
        .count();
    assert_eq!(asked, 1);
}

#[test]
fn wrong_credentials_stop_and_a_lockout_waits() {
    let state = Arc::new(Mutex::new(Router::default()));
    let mock = MockHttp::start(router(state.clone()));
    let wrong = "Wrong-asus-pw-1";
    let e = scrape(&mut source(mock.port(), wrong)).unwrap_err();
    assert!(matches!(e, ScrapeError::WrongCredentials(_)), "{e:?}");
    assert!(e.to_string().contains("not retrying"), "{e}");
    assert!(!format!("{e} {e:?}").contains(wrong));

    state.lock().unwrap().refuse = Some(r#"{"error_status":"7","remaining_lock_time":"59"}"#);
    let e = scrape(&mut source(mock.port(), PASSWORD)).unwrap_err();
    assert!(
        matches!(e, ScrapeError::LockedOut { seconds: 59, .. }),
        "{e:?}"
    );
    state.lock().unwrap().refuse = Some(r#"{"error_status":"10"}"#);
    let e = scrape(&mut source(mock.port(), PASSWORD)).unwrap_err();
    assert!(e.to_string().contains("captcha"), "{e}");
}

#[test]
fn broken_and_slow_answers() {
    let cases: Vec<(Reply, &str)> = vec![
        (Reply::ok("text/html", "<html>Main page</html>"), "parse"),
        (Reply::ok(JSON, "{\"asus_token\":"), "parse"),
        (Reply::status(500, &[], ""), "protocol"),
        (Reply::hang(), "timeout"),
        (
            Reply::trickle("{\"asus_token\":\"abc\"}", Duration::from_millis(200)),
            "timeout",
        ),
    ];
    for (reply, stage) in cases {
        let reply = Mutex::new(Some(reply));
        let mock =
            MockHttp::start(move |_| reply.lock().unwrap().take().unwrap_or_else(Reply::close));
        let e = scrape(&mut source(mock.port(), PASSWORD)).unwrap_err();
        assert_eq!(e.stage(), stage, "{e}");
    }
    // Logged in, then a cut netdev answer.
    let mock = MockHttp::start(|req| match req.path.as_str() {
        "/login.cgi" => Reply::ok(JSON, r#"{"asus_token":"t"}"#),
        _ => Reply::ok(JSON, "{\"netdev\":{\"INTERNET_rx\":\"0x1"),
    });
    assert_eq!(
        scrape(&mut source(mock.port(), PASSWORD))
            .unwrap_err()
            .stage(),
        "parse"
    );
}
