#![cfg(feature = "upstream")]
//! The `tplink` source against a mock TP-Link router on 127.0.0.1 that
//! answers in the real firmware's markup: the legacy web UI with the
//! Basic cookie or the MD5 login and its session token (cookie, token
//! path and Referer checked on every request), paged statistics, the DHCP
//! client list, the login page's refusals (another admin, wrong password,
//! lockout), and the TD-W `cgi` interface.

use crate::mock;

use mock::{MockHttp, MockRequest, Reply, silent_listener};
use netmeter::clock::Moment;
use netmeter::config::Secret;
use netmeter::config::upstream::TplinkVariant;
use netmeter::config::upstream::{UpstreamConfig, UpstreamKind};
use netmeter::upstream::account::UpstreamAccounts;
use netmeter::upstream::sources::{Deadline, Reading, ScrapeError, Source, md5, source_for};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const PASSWORD: &str = "tp-Secret-841";
const TOKEN: &str = "HQKATSSCQLVJQNVB";
const HTML: &str = "text/html";
const FIXTURES: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/upstream/tplink/"
);
const STAT_BODY: &str =
    "[STAT_CFG#0,0,0,0,0,0#0,0,0,0,0,0]0,0\r\n[STAT_ENTRY#0,0,0,0,0,0#0,0,0,0,0,0]1,0\r\n";
const CGI_LOGOUT_BODY: &str = "[/cgi/logout#0,0,0,0,0,0#0,0,0,0,0,0]0,0\r\n";
const TV: &str = "AC-89-95-77-9A-E9";

fn fixture(name: &str) -> String {
    std::fs::read_to_string(format!("{FIXTURES}{name}")).unwrap()
}

fn b64(text: &str) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for c in text.as_bytes().chunks(3) {
        let n = c
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, &b)| n | u32::from(b) << (16 - 8 * i));
        for i in 0..4 {
            out.push(if i <= c.len() {
                T[(n >> (18 - 6 * i) & 63) as usize] as char
            } else {
                '='
            });
        }
    }
    out
}

/// The cookie the router's own login script sets:
/// `"Authorization=" + escape("Basic " + Base64Encoding(user + ":" + pw))`.
fn ui_cookie(secret: &str) -> String {
    let escaped = b64(&format!("admin:{secret}")).replace('=', "%3D");
    format!("Authorization=Basic%20{escaped}")
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Generation {
    Basic,
    Md5,
    Cgi,
}

/// The router's state: hosts (IP, MAC, 32-bit byte counter), who is
/// logged in, failed logins.
struct Router {
    generation: Generation,
    hosts: Vec<(String, String, u64)>,
    names: Vec<(String, String)>,
    other_admin: bool,
    ours_logged_in: bool,
    failures: u32,
    /// Replaces the statistics page, for broken answers.
    statistics: Option<Box<dyn Fn() -> Reply + Send>>,
    /// The status page's uptime; None: the page is missing.
    uptime: Option<u64>,
}

impl Router {
    fn new(generation: Generation) -> Router {
        Router {
            generation,
            hosts: vec![],
            names: vec![],
            other_admin: false,
            ours_logged_in: false,
            failures: 0,
            statistics: None,
            uptime: None,
        }
    }
}

/// The login page as the firmware sends it, with `httpAutErrorArray[0]`
/// set: 0 another admin, 1 locked, 2 wrong password, 3 plain.
fn login_page(generation: Generation, error: u32) -> String {
    match generation {
        Generation::Basic => {
            fixture("login-basic.htm").replace("(\n3,\n", &format!("(\n{error},\n"))
        }
        _ => fixture("login-md5.htm").replace("(\n3, 1,", &format!("(\n{error}, 1,")),
    }
}

/// `SystemStatisticRpm.htm` in the firmware's markup: a 13-item row per
/// host, `StatRulePara`, `PageListPara`.
fn statistics_page(hosts: &[(String, String, u64)], per_page: usize, page: usize) -> String {
    let pages = hosts.len().div_ceil(per_page).max(1);
    let shown: Vec<_> = hosts
        .iter()
        .enumerate()
        .skip((page - 1) * per_page)
        .take(per_page)
        .collect();
    let rows: String = shown
        .iter()
        .map(|(i, (ip, mac, bytes))| {
            format!(
                "{}, \"{ip}\", \"{mac}\", {}, {}, 3, 1800, 0, 0, 0, 0, 0, 0,\n",
                i + 1,
                bytes / 1000 + 1,
                bytes & 0xffff_ffff
            )
        })
        .collect();
    format!(
        "<META http-equiv=Content-Type content=\"text/html; charset=iso-8859-1\">\n<HTML>\n\
         <HEAD><TITLE>TL-WR841N</TITLE></HEAD>\n<BODY><CENTER>\
         <FORM action=\"SystemStatisticRpm.htm\" enctype=\"multipart/form-data\" method=\"get\">\n\
         <SCRIPT language=\"javascript\" type=\"text/javascript\">\nvar StatRulePara = new Array(\n\
         1,\n10,\n1,\n{per_page},\n{},\n13,\n0,0 );\n</SCRIPT>\n\
         <SCRIPT language=\"javascript\" type=\"text/javascript\">\nvar statList = new Array(\n\
         {rows}0,0 );\n</SCRIPT>\n\
         <SCRIPT language=\"javascript\" type=\"text/javascript\">\nvar PageListPara = new Array(\n\
         {pages},\n{page},\n0,0 );\n</SCRIPT>\n</FORM></CENTER></BODY></HTML>\n",
        shown.len()
    )
}

fn dhcp_page(names: &[(String, String)]) -> String {
    let rows: String = names
        .iter()
        .map(|(name, mac)| format!("\"{name}\", \"{mac}\", \"192.168.0.9\", \"Permanent\",\n"))
        .collect();
    format!(
        "<HTML><HEAD><SCRIPT language=\"javascript\" type=\"text/javascript\">\n\
         var DHCPDynList = new Array(\n{rows}0,0 );\n</SCRIPT></HEAD><BODY></BODY></HTML>"
    )
}

/// The query value of `key`.
fn query<'a>(path: &'a str, key: &str) -> Option<&'a str> {
    let (_, query) = path.split_once('?')?;
    query
        .split('&')
        .find_map(|kv| kv.strip_prefix(key)?.strip_prefix('='))
}

fn handler(router: Arc<Mutex<Router>>) -> impl Fn(&MockRequest) -> Reply + Send + Sync + 'static {
    move |req| {
        let mut r = router.lock().unwrap();
        let origin = format!(
            "http://127.0.0.1:{}",
            req.header("host")
                .and_then(|h| h.rsplit(':').next())
                .unwrap_or("")
        );
        let generation = r.generation;
        if req.path == "/" {
            assert!(
                req.header("cookie").is_none(),
                "detection sends no credentials"
            );
            assert!(req.header("authorization").is_none());
            return match generation {
                Generation::Cgi => Reply::ok(HTML, fixture("cgi-start.htm")),
                g => Reply::ok(HTML, login_page(g, if r.other_admin { 0 } else { 3 })),
            };
        }
        if generation == Generation::Cgi {
            if req.method != "POST"
                || req.header("referer") != Some(format!("{origin}/mainFrame.htm").as_str())
            {
                return Reply::status(403, &[], "");
            }
            if req.header("cookie") != Some(ui_cookie(PASSWORD).as_str()) {
                return Reply::status(401, &[("Content-Type", HTML)], "<html>401</html>");
            }
            return match (req.path.as_str(), req.body_text().as_str()) {
                ("/cgi?1&5", STAT_BODY) if r.other_admin => Reply::status(
                    500,
                    &[("Content-Type", HTML)],
                    "<html><head><title>500 Internal Server Error</title></head><body><center>\
                     <h1>500 Internal Server Error</h1></center></body></html>",
                ),
                ("/cgi?1&5", STAT_BODY) => match r.statistics.as_ref() {
                    Some(reply) => reply(),
                    None => {
                        r.ours_logged_in = true;
                        Reply::ok("text/plain", fixture("cgi-stat.txt"))
                    }
                },
                ("/cgi?8", CGI_LOGOUT_BODY) => {
                    r.ours_logged_in = false;
                    Reply::ok("text/plain", "[error]0\r\n")
                }
                _ => Reply::ok("text/plain", "[error]9003\r\n"),
            };
        }
        let md5 = generation == Generation::Md5;
        let right = ui_cookie(&if md5 {
            md5::hex(PASSWORD.as_bytes())
        } else {
            PASSWORD.to_owned()
        });
        let cookie_ok = req.header("cookie") == Some(right.as_str());
        if r.failures >= 10 {
            return Reply::ok(HTML, login_page(generation, 1));
        }
        if md5 && req.path == "/userRpm/LoginRpm.htm?Save=Save" {
            assert_eq!(req.header("referer"), Some(format!("{origin}/").as_str()));
            if !cookie_ok {
                r.failures += 1;
                return Reply::ok(HTML, login_page(generation, 2));
            }
            if r.other_admin {
                return Reply::ok(HTML, login_page(generation, 0));
            }
            r.ours_logged_in = true;
            return Reply::ok(
                HTML,
                fixture("LoginRpm-token.htm").replace("192.168.0.1", &origin[7..]),
            );
        }
        let prefix = if md5 {
            format!("/{TOKEN}")
        } else {
            String::new()
        };
        let Some(path) = req.path.strip_prefix(&prefix) else {
            return Reply::status(404, &[], "");
        };
        if req.header("referer") != Some(format!("{origin}{prefix}/userRpm/Index.htm").as_str()) {
            return Reply::ok(
                HTML,
                "<html>You have no authority to access this router!</html>",
            );
        }
        if !cookie_ok {
            r.failures += 1;
            return Reply::ok(HTML, login_page(generation, 2));
        }
        if r.other_admin {
            return Reply::ok(HTML, login_page(generation, 0));
        }
        if md5 && !r.ours_logged_in {
            // The session is gone: the page clears the cookie and goes to the login.
            return Reply::ok(
                HTML,
                "<html><head><script type=\"text/javascript\">document.cookie=\"Authorization=;path=/\";\
                 window.parent.location.href=\"/\";</script></head></html>",
            );
        }
        r.ours_logged_in = true;
        let page = path.split('?').next().unwrap();
        match page {
            "/userRpm/SystemStatisticRpm.htm" => {
                if let Some(reply) = r.statistics.as_ref() {
                    return reply();
                }
                let per_page: usize = query(path, "Num_per_page").unwrap().parse().unwrap();
                let goto: usize = query(path, "Goto_page").unwrap().parse().unwrap();
                Reply::ok(HTML, statistics_page(&r.hosts, per_page, goto))
            }
            "/userRpm/AssignedIpAddrListRpm.htm" => Reply::ok(HTML, dhcp_page(&r.names)),
            "/userRpm/StatusRpm.htm" => match r.uptime {
                Some(up) => Reply::ok(
                    HTML,
                    fixture("StatusRpm.htm").replace("\n1468171,", &format!("\n{up},")),
                ),
                None => Reply::status(404, &[], ""),
            },
            "/userRpm/LogoutRpm.htm" => {
                r.ours_logged_in = false;
                Reply::ok(HTML, login_page(generation, 3))
            }
            _ => Reply::status(404, &[], ""),
        }
    }
}

fn source(port: u16, variant: TplinkVariant, password: &str) -> Box<dyn Source> {
    let mut c = UpstreamConfig::new("ap", UpstreamKind::Tplink);
    c.host = Some("127.0.0.1".into());
    c.port = port;
    c.username = Some("admin".into());
    c.password = Secret::password(password);
    c.variant = variant;
    source_for(&c).unwrap()
}

fn scrape(s: &mut Box<dyn Source>) -> Result<Reading, ScrapeError> {
    s.scrape(Deadline::after(Duration::from_secs(2)))
}

/// No secret in what an admin sees of an error.
fn assert_clean(e: &ScrapeError) {
    let text = format!("{e} {e:?}");
    for secret in [PASSWORD, TOKEN, &md5::hex(PASSWORD.as_bytes())] {
        assert!(!text.contains(secret), "{text}");
    }
}

fn hosts(n: usize) -> Vec<(String, String, u64)> {
    (0..n)
        .map(|i| {
            (
                format!("192.168.{}.{}", i / 200, i % 200 + 2),
                format!("00-1D-0F-00-{:02X}-{:02X}", i / 256, i % 256),
                1_000 * (i as u64 + 1),
            )
        })
        .collect()
}

fn paths(mock: &MockHttp) -> Vec<String> {
    mock.requests().into_iter().map(|r| r.path).collect()
}

#[test]
fn both_cookie_variants_read_three_pages_join_names_and_log_out() {
    for generation in [Generation::Basic, Generation::Md5] {
        let router = Arc::new(Mutex::new(Router::new(generation)));
        {
            let mut r = router.lock().unwrap();
            r.hosts = hosts(250);
            r.names = vec![
                ("living-room-tv".into(), "00-1D-0F-00-00-00".into()),
                ("nas".into(), "00-1D-0F-00-00-F9".into()),
            ];
        }
        let mock = MockHttp::start(handler(router.clone()));
        let variant = match generation {
            Generation::Basic => TplinkVariant::Basic,
            _ => TplinkVariant::Md5,
        };
        let mut s = source(mock.port(), variant, PASSWORD);
        for _ in 0..2 {
            let reading = scrape(&mut s).unwrap();
            assert_eq!(reading.devices.len(), 250, "three pages: 100, 100, 50");
            let tv = &reading.devices[0];
            assert_eq!(tv.hostname.as_deref(), Some("living-room-tv"));
            assert_eq!((tv.rx_bytes, tv.tx_bytes), (1_000, 0));
            assert_eq!(reading.devices[249].hostname.as_deref(), Some("nas"));
            assert_eq!(reading.devices[249].rx_bytes, 250_000);
            assert_eq!(reading.devices[1].hostname, None);
            assert!(!router.lock().unwrap().ours_logged_in, "logged out");
        }
        let prefix = if generation == Generation::Md5 {
            format!("/{TOKEN}")
        } else {
            String::new()
        };
        let mut one_scrape: Vec<String> = (1..=3)
            .map(|p| {
                format!(
                    "{prefix}/userRpm/SystemStatisticRpm.htm?sortType=1&Num_per_page=100&Goto_page={p}"
                )
            })
            .collect();
        one_scrape.push(format!("{prefix}/userRpm/AssignedIpAddrListRpm.htm"));
        one_scrape.push(format!("{prefix}/userRpm/StatusRpm.htm"));
        one_scrape.push(format!("{prefix}/userRpm/LogoutRpm.htm"));
        if generation == Generation::Md5 {
            one_scrape.insert(0, "/userRpm/LoginRpm.htm?Save=Save".into());
        }
        assert_eq!(paths(&mock), [one_scrape.clone(), one_scrape].concat());
        for request in mock.requests() {
            let cookie = request.header("cookie").unwrap();
            assert!(cookie.ends_with("%3D"), "escaped as the UI does: {cookie}");
            if generation == Generation::Md5 {
                assert!(!request.contains(PASSWORD), "MD5 never sends it in clear");
                assert!(!request.contains(&b64(&format!("admin:{PASSWORD}"))));
            }
        }
    }
}

/// Scrapes a legacy router once per `(uptime, counters of two hosts)`,
/// 30 s apart.
fn count_hosts(steps: &[(Option<u64>, [u64; 2])]) -> UpstreamAccounts {
    let router = Arc::new(Mutex::new(Router::new(Generation::Md5)));
    let mock = MockHttp::start(handler(router.clone()));
    let mut s = source(mock.port(), TplinkVariant::Md5, PASSWORD);
    let mut accounts = UpstreamAccounts::default();
    for (step, &(uptime, counters)) in steps.iter().enumerate() {
        {
            let mut r = router.lock().unwrap();
            r.uptime = uptime;
            r.hosts = hosts(2);
            for (host, value) in r.hosts.iter_mut().zip(counters) {
                host.2 = value;
            }
        }
        let reading = scrape(&mut s).unwrap();
        assert_eq!(reading.uptime_secs, uptime);
        let now = Moment {
            monotonic_ms: step as u64 * 30_000,
            unix_secs: 1_795_000_000 + step as u64 * 30,
        };
        accounts.ingest("ap", "tplink", now, &reading, None);
    }
    accounts
}

fn host_totals(accounts: &UpstreamAccounts) -> Vec<u64> {
    let ap = accounts.get("ap").unwrap();
    ap.devices.iter().map(|d| d.totals.rx_bytes()).collect()
}

#[test]
fn a_reboot_with_a_host_above_2_gib_adds_only_what_came_after() {
    let gib3 = 3u64 << 30;
    // Told by the status page's uptime, and without it by both hosts falling.
    for uptimes in [[Some(86_400), Some(86_430), Some(20)], [None; 3]] {
        let accounts = count_hosts(&[
            (uptimes[0], [gib3, 5_000]),
            (uptimes[1], [gib3 + 700, 5_100]),
            (uptimes[2], [300, 40]),
        ]);
        assert_eq!(host_totals(&accounts), [700 + 300, 100 + 40], "{uptimes:?}");
        let reason = match uptimes[0] {
            Some(_) => "uptime",
            None => "all_counters_fell",
        };
        let reset = accounts.get("ap").unwrap().last_reset.clone().unwrap();
        assert_eq!(reset.reason.name(), reason);
    }
}

#[test]
fn a_real_32_bit_wrap_of_a_host_counts_exactly() {
    let top = u64::from(u32::MAX);
    for uptimes in [[Some(100), Some(130), Some(160)], [None; 3]] {
        let accounts = count_hosts(&[
            (uptimes[0], [top - 9_000, 5_000]),
            (uptimes[1], [top - 1_000, 5_100]),
            (uptimes[2], [2_000, 5_200]),
        ]);
        assert_eq!(
            host_totals(&accounts),
            [8_000 + 1_001 + 2_000, 200],
            "{uptimes:?}"
        );
        assert_eq!(accounts.get("ap").unwrap().last_reset, None);
    }
}

#[test]
fn auto_detects_the_generation_once_from_the_start_page() {
    for generation in [Generation::Basic, Generation::Md5, Generation::Cgi] {
        let router = Arc::new(Mutex::new(Router::new(generation)));
        router.lock().unwrap().hosts = hosts(3);
        let mock = MockHttp::start(handler(router.clone()));
        let mut s = source(mock.port(), TplinkVariant::Auto, PASSWORD);
        let expected = if generation == Generation::Cgi { 2 } else { 3 };
        assert_eq!(scrape(&mut s).unwrap().devices.len(), expected);
        assert_eq!(scrape(&mut s).unwrap().devices.len(), expected);
        let paths = paths(&mock);
        assert_eq!(paths[0], "/", "{generation:?}");
        assert_eq!(paths.iter().filter(|p| *p == "/").count(), 1, "remembered");
        let logout = match generation {
            Generation::Basic => "/userRpm/LogoutRpm.htm".to_owned(),
            Generation::Md5 => format!("/{TOKEN}/userRpm/LogoutRpm.htm"),
            Generation::Cgi => "/cgi?8".to_owned(),
        };
        assert_eq!(paths.iter().filter(|p| **p == logout).count(), 2);
        assert_eq!(paths.last(), Some(&logout));
        if generation != Generation::Basic {
            assert!(mock.requests().iter().all(|r| !r.contains(PASSWORD)));
        }
    }
    // A web server that is no TP-Link: no credentials sent, a clear error.
    let other = MockHttp::start(|_| Reply::ok(HTML, "<html><body>It works!</body></html>"));
    let e = scrape(&mut source(other.port(), TplinkVariant::Auto, PASSWORD)).unwrap_err();
    assert_eq!(e.stage(), "protocol", "{e}");
    assert!(e.to_string().contains("option variant"), "{e}");
    assert_eq!(paths(&other), ["/"]);
}

#[test]
fn the_cgi_variant_checks_error_0_and_logs_out() {
    let router = Arc::new(Mutex::new(Router::new(Generation::Cgi)));
    let mock = MockHttp::start(handler(router.clone()));
    let mut s = source(mock.port(), TplinkVariant::Cgi, PASSWORD);
    let reading = scrape(&mut s).unwrap();
    assert_eq!(reading.devices.len(), 2);
    assert_eq!(
        reading.devices[0].ip,
        Some("192.168.1.100".parse().unwrap())
    );
    assert_eq!(reading.devices[0].rx_bytes, 651_392_471);
    assert_eq!(paths(&mock), ["/cgi?1&5", "/cgi?8"]);

    router.lock().unwrap().statistics =
        Some(Box::new(|| Reply::ok("text/plain", "[error]71017\r\n")));
    let e = scrape(&mut s).unwrap_err();
    assert_eq!(e.stage(), "protocol", "{e}");
    assert!(e.to_string().contains("71017"), "{e}");
    assert_eq!(
        paths(&mock).last().unwrap(),
        "/cgi?8",
        "logged out after a failure too"
    );

    router.lock().unwrap().statistics = Some(Box::new(|| {
        Reply::ok(
            "text/plain",
            "[1,0,0,0,0,0]1\r\nipAddress=1\r\nmacAddress=00:11:22:33:44:55\r\n",
        )
    }));
    let e = scrape(&mut s).unwrap_err();
    assert_eq!(e.stage(), "parse", "no [error] line: {e}");

    // Another admin's session: the cgi answers 500; no logout that could end theirs.
    let mut r = router.lock().unwrap();
    r.statistics = None;
    r.other_admin = true;
    drop(r);
    let before = mock.requests().len();
    let e = scrape(&mut s).unwrap_err();
    assert_eq!(e.stage(), "auth", "{e}");
    assert!(e.to_string().contains("someone is logged in"), "{e}");
    assert_eq!(paths(&mock)[before..], ["/cgi?1&5"]);
    assert_clean(&e);
}

#[test]
fn a_second_admin_session_is_refused_and_left_alone() {
    for (generation, variant) in [
        (Generation::Basic, TplinkVariant::Basic),
        (Generation::Md5, TplinkVariant::Md5),
    ] {
        let router = Arc::new(Mutex::new(Router::new(generation)));
        router.lock().unwrap().other_admin = true;
        let mock = MockHttp::start(handler(router.clone()));
        let mut s = source(mock.port(), variant, PASSWORD);
        let e = scrape(&mut s).unwrap_err();
        assert!(matches!(e, ScrapeError::Auth(_)), "{e:?}");
        let text = e.to_string();
        assert!(
            text.contains("someone is logged in to the router's web UI"),
            "{text}"
        );
        assert!(text.contains("retry"), "{text}");
        assert_clean(&e);
        assert!(
            paths(&mock).iter().all(|p| !p.contains("Logout")),
            "a logout could end the other admin's session"
        );
        // They log out; the next scrape gets in.
        router.lock().unwrap().other_admin = false;
        router.lock().unwrap().hosts = hosts(1);
        assert_eq!(scrape(&mut s).unwrap().devices.len(), 1);
    }
}

#[test]
fn wrong_passwords_stop_and_a_locked_login_waits() {
    for (generation, variant) in [
        (Generation::Basic, TplinkVariant::Basic),
        (Generation::Md5, TplinkVariant::Md5),
    ] {
        let router = Arc::new(Mutex::new(Router::new(generation)));
        let mock = MockHttp::start(handler(router.clone()));
        let wrong = "Wrong-tp-pw-5";
        let mut s = source(mock.port(), variant, wrong);
        let e = scrape(&mut s).unwrap_err();
        assert!(matches!(e, ScrapeError::WrongCredentials(_)), "{e:?}");
        assert!(e.to_string().contains("option password"), "{e}");
        assert!(!format!("{e} {e:?}").contains(wrong));
        assert!(paths(&mock).iter().all(|p| !p.contains("Logout")));
        // Ten failures (another client's, say): the router locks its login.
        router.lock().unwrap().failures = 10;
        let e = scrape(&mut source(mock.port(), variant, PASSWORD)).unwrap_err();
        assert!(
            matches!(e, ScrapeError::LockedOut { seconds: 7200, .. }),
            "{e:?}"
        );
        assert_clean(&e);
    }
}

#[test]
fn malformed_pages_are_parse_errors_and_the_session_still_ends() {
    let full = statistics_page(&hosts(3), 100, 1);
    let cut_row = full.replace(", 3, 1800, 0, 0, 0, 0, 0, 0,\n0,0 );", ",\n0,0 );");
    let cut_page = full[..full.find("\"192.168.0.3\"").unwrap()].to_owned();
    let bad_bytes = full.replace(", 3000, 3, 1800", ", 3k, 3, 1800");
    let cases = [
        cut_row,
        cut_page,
        bad_bytes,
        "<html><body>Statistics</body></html>".to_owned(),
        "\u{0}\u{1}garbage".to_owned(),
    ];
    for generation in [Generation::Basic, Generation::Md5] {
        for case in &cases {
            let router = Arc::new(Mutex::new(Router::new(generation)));
            let page = case.clone();
            router.lock().unwrap().statistics =
                Some(Box::new(move || Reply::ok(HTML, page.clone())));
            let mock = MockHttp::start(handler(router.clone()));
            let variant = match generation {
                Generation::Basic => TplinkVariant::Basic,
                _ => TplinkVariant::Md5,
            };
            let e = scrape(&mut source(mock.port(), variant, PASSWORD)).unwrap_err();
            assert_eq!(e.stage(), "parse", "{e}");
            assert_clean(&e);
            assert!(
                paths(&mock)
                    .last()
                    .unwrap()
                    .ends_with("/userRpm/LogoutRpm.htm")
            );
            assert!(!router.lock().unwrap().ours_logged_in);
        }
    }
}

#[test]
fn wraps_and_reboots_of_the_32_bit_host_counters_give_monotonic_totals() {
    let router = Arc::new(Mutex::new(Router::new(Generation::Md5)));
    let mock = MockHttp::start(handler(router.clone()));
    let mut s = source(mock.port(), TplinkVariant::Md5, PASSWORD);
    let mut accounts = UpstreamAccounts::default();
    let top = u64::from(u32::MAX);
    let nas = "00-1D-0F-12-34-56";
    // The TV near the top wraps; then the router reboots: its table
    // empties, then the hosts come back counting from small values.
    let steps: [&[(&str, &str, u64)]; 6] = [
        &[
            ("192.168.0.100", TV, top - 10_000),
            ("192.168.0.102", nas, 1_000_000),
        ],
        &[
            ("192.168.0.100", TV, top - 1_000),
            ("192.168.0.102", nas, 1_500_000),
        ],
        &[
            ("192.168.0.100", TV, 5_000),
            ("192.168.0.102", nas, 2_000_000),
        ],
        &[],
        &[("192.168.0.100", TV, 700)],
        &[("192.168.0.100", TV, 1_700), ("192.168.0.102", nas, 300)],
    ];
    for (step, hosts) in steps.into_iter().enumerate() {
        router.lock().unwrap().hosts = hosts
            .iter()
            .map(|(ip, mac, b)| (ip.to_string(), mac.to_string(), *b))
            .collect();
        let reading = scrape(&mut s).unwrap();
        assert_eq!(reading.devices.len(), hosts.len());
        let now = Moment {
            monotonic_ms: step as u64 * 30_000,
            unix_secs: 1_795_000_000 + step as u64 * 30,
        };
        accounts.ingest("ap", "tplink", now, &reading, None);
    }
    let devices = &accounts.get("ap").unwrap().devices;
    let total = |mac: [u8; 6]| {
        devices
            .iter()
            .find(|d| d.mac == mac)
            .unwrap()
            .totals
            .rx_bytes()
    };
    // The first reading is the router's past, not credited; 2^32 − (top −
    // 1,000) = 1,001 up to the wrap.
    assert_eq!(
        total([0xac, 0x89, 0x95, 0x77, 0x9a, 0xe9]),
        9_000 + 1_001 + 5_000 + 700 + 1_000
    );
    assert_eq!(
        total([0x00, 0x1d, 0x0f, 0x12, 0x34, 0x56]),
        500_000 + 500_000 + 300
    );
}

#[test]
fn silent_and_trickling_routers_time_out_and_the_session_ends_next_time() {
    let silent = silent_listener();
    let e = scrape(&mut source(silent.port(), TplinkVariant::Md5, PASSWORD)).unwrap_err();
    assert_eq!(e.stage(), "timeout", "{e}");
    let e = scrape(&mut source(silent.port(), TplinkVariant::Auto, PASSWORD)).unwrap_err();
    assert_eq!(e.stage(), "timeout", "{e}");

    let router = Arc::new(Mutex::new(Router::new(Generation::Md5)));
    {
        let mut r = router.lock().unwrap();
        r.hosts = hosts(2);
        let page = statistics_page(&r.hosts, 100, 1);
        r.statistics = Some(Box::new(move || {
            Reply::trickle(
                format!("HTTP/1.1 200 OK\r\nContent-Type: text/html\r\n\r\n{page}"),
                Duration::from_millis(20),
            )
        }));
    }
    let mock = MockHttp::start(handler(router.clone()));
    let mut s = source(mock.port(), TplinkVariant::Md5, PASSWORD);
    let e = s
        .scrape(Deadline::after(Duration::from_secs(1)))
        .unwrap_err();
    assert_eq!(e.stage(), "timeout", "{e}");
    assert_clean(&e);
    assert!(
        router.lock().unwrap().ours_logged_in,
        "no time was left to log out"
    );
    router.lock().unwrap().statistics = None;
    let before = mock.requests().len();
    assert_eq!(scrape(&mut s).unwrap().devices.len(), 2);
    let after = paths(&mock)[before..].to_vec();
    assert_eq!(
        after[0],
        format!("/{TOKEN}/userRpm/LogoutRpm.htm"),
        "the old session first"
    );
    assert_eq!(after[1], "/userRpm/LoginRpm.htm?Save=Save");

    // close() ends a session a scrape left open. The hang eats what the
    // login and the status page leave of the deadline: 2 s, so a busy
    // machine still logs in first (CI's unprivileged pass did not in 0.5 s).
    router.lock().unwrap().statistics = Some(Box::new(Reply::hang));
    let e = s
        .scrape(Deadline::after(Duration::from_secs(2)))
        .unwrap_err();
    assert_eq!(e.stage(), "timeout", "{e}");
    assert!(router.lock().unwrap().ours_logged_in);
    s.close(Deadline::after(Duration::from_secs(2)));
    assert!(!router.lock().unwrap().ours_logged_in);
    assert!(
        paths(&mock)
            .last()
            .unwrap()
            .ends_with("/userRpm/LogoutRpm.htm")
    );
}
