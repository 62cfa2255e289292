//! The `tplink` source against a mock of the legacy web UI (Basic and MD5
//! cookies, the token path, paged statistics, DHCP names) and of the
//! TD-W `cgi` interface, on 127.0.0.1.

mod mock;

use mock::{MockHttp, MockRequest, Reply};
use netmeter::account::Moment;
use netmeter::account::upstream::UpstreamAccounts;
use netmeter::collect::upstream::{Deadline, Reading, ScrapeError, Source, md5, source_for};
use netmeter::config::upstream::TplinkVariant;
use netmeter::config::{Secret, UpstreamConfig, UpstreamKind};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const PASSWORD: &str = "tp-Secret-841";
const TOKEN: &str = "QWERTYUIOPASDFGH";
const HTML: &str = "text/html";

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

/// The router: hosts' 32-bit byte counters (by page of two), and who is
/// logged in.
struct Router {
    md5: bool,
    hosts: Vec<(&'static str, &'static str, u64)>,
    other_admin: bool,
}

fn statistics_page(hosts: &[(&str, &str, u64)], page: usize) -> String {
    let pages = hosts.len().div_ceil(2).max(1);
    let rows: String = hosts
        .iter()
        .enumerate()
        .skip((page - 1) * 2)
        .take(2)
        .map(|(i, (ip, mac, bytes))| {
            format!(
                "{}, \"{ip}\", \"{mac}\", 100, {}, 0, 0, 0, 0, 0, 0, 0, 0,\n",
                i + 1,
                bytes & 0xffff_ffff
            )
        })
        .collect();
    format!(
        "<HTML><SCRIPT language=\"javascript\" type=\"text/javascript\">\nvar statList = new Array(\n{rows}0,0 );\n</SCRIPT>\n\
         <SCRIPT language=\"javascript\" type=\"text/javascript\">\nvar PageListPara = new Array(\n{pages},\n{page},\n0,0 );\n</SCRIPT></HTML>"
    )
}

fn handler(
    router: Arc<Mutex<Router>>,
    port: u16,
) -> impl Fn(&MockRequest) -> Reply + Send + Sync + 'static {
    let _ = port;
    move |req| {
        let r = router.lock().unwrap();
        let secret = if r.md5 {
            md5::hex(PASSWORD.as_bytes())
        } else {
            PASSWORD.to_owned()
        };
        // What the UI's script sets: escape("Basic " + base64), so '=' is %3D.
        let cookie = format!(
            "Authorization=Basic%20{}",
            b64(&format!("admin:{secret}")).replace('=', "%3D")
        );
        if req.header("cookie") != Some(cookie.as_str()) {
            return Reply::ok(
                HTML,
                "<html><script>var loginRpm = 1;</script>password</html>",
            );
        }
        let prefix = if r.md5 {
            format!("/{TOKEN}")
        } else {
            String::new()
        };
        if r.md5 && req.path == "/userRpm/LoginRpm.htm?Save=Save" {
            if r.other_admin {
                return Reply::ok(HTML, "<html>Another user is logged in to the router</html>");
            }
            return Reply::ok(
                HTML,
                format!(
                    "<script>window.parent.location.href = \"http://127.0.0.1/{TOKEN}/userRpm/Index.htm\";</script>"
                ),
            );
        }
        let Some(path) = req.path.strip_prefix(&prefix) else {
            return Reply::status(404, &[], "");
        };
        let referer = req.header("referer").unwrap_or("");
        assert!(
            referer.ends_with(&format!("{prefix}/userRpm/Index.htm")),
            "{referer}"
        );
        if !r.md5 && r.other_admin {
            return Reply::ok(HTML, "<html>Another user is logged in to the router</html>");
        }
        if let Some(query) = path.strip_prefix("/userRpm/SystemStatisticRpm.htm?") {
            assert!(query.starts_with("Num_per_page=100&Goto_page="));
            let page: usize = query.rsplit('=').next().unwrap().parse().unwrap();
            return Reply::ok(HTML, statistics_page(&r.hosts, page));
        }
        match path {
            "/userRpm/AssignedIpAddrListRpm.htm" => Reply::ok(
                HTML,
                "<SCRIPT>\nvar DHCPDynList = new Array(\n\"living-room-tv\", \"AC-89-95-77-9A-E9\", \"192.168.0.100\", \"Permanent\",\n0,0 );\n</SCRIPT>",
            ),
            "/userRpm/LogoutRpm.htm" => Reply::ok(HTML, "<html>logged out</html>"),
            other => panic!("unexpected {other}"),
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

const TV: &str = "AC-89-95-77-9A-E9";

#[test]
fn both_cookie_variants_page_through_hosts_and_log_out_every_time() {
    for md5 in [false, true] {
        let router = Arc::new(Mutex::new(Router {
            md5,
            hosts: vec![
                ("192.168.0.100", TV, 1_000),
                ("192.168.0.101", "2C-F0-5D-00-11-22", 2_000),
                ("192.168.0.102", "00-1D-0F-12-34-56", 3_000),
                ("192.168.0.103", "00-1D-0F-12-34-57", 4_000),
                ("192.168.0.104", "00-1D-0F-12-34-58", 5_000),
            ],
            other_admin: false,
        }));
        let mock = MockHttp::start(handler(router.clone(), 0));
        let variant = if md5 {
            TplinkVariant::Md5
        } else {
            TplinkVariant::Basic
        };
        for variant in [variant, TplinkVariant::Auto] {
            let mut s = source(mock.port(), variant, PASSWORD);
            let reading = scrape(&mut s).unwrap();
            assert_eq!(reading.devices.len(), 5, "three pages of two");
            assert_eq!(
                reading.devices[0].hostname.as_deref(),
                Some("living-room-tv")
            );
            assert_eq!(reading.devices[4].rx_bytes, 5_000);
        }
        let requests = mock.requests();
        let logouts = requests
            .iter()
            .filter(|r| r.path.ends_with("/userRpm/LogoutRpm.htm"))
            .count();
        assert!(logouts >= 2, "a logout after every scrape");
        assert!(requests.last().unwrap().path.ends_with("LogoutRpm.htm"));
        if md5 {
            assert!(
                requests.iter().all(|r| !r.contains(PASSWORD)),
                "MD5 never sends it in clear"
            );
        }
    }
}

#[test]
fn wraps_and_reboots_of_the_routers_32_bit_host_counters() {
    let router = Arc::new(Mutex::new(Router {
        md5: false,
        hosts: vec![],
        other_admin: false,
    }));
    let mock = MockHttp::start(handler(router.clone(), 0));
    let mut s = source(mock.port(), TplinkVariant::Basic, PASSWORD);
    let mut accounts = UpstreamAccounts::default();
    let top = u64::from(u32::MAX);
    // The TV: near the top, wraps, then the router reboots (the table empties, then refills).
    let steps: [Vec<(&'static str, &'static str, u64)>; 5] = [
        vec![("192.168.0.100", TV, top - 10_000)],
        vec![("192.168.0.100", TV, top - 1_000)],
        vec![("192.168.0.100", TV, 5_000)],
        vec![],
        vec![("192.168.0.100", TV, 700)],
    ];
    for (step, hosts) in steps.into_iter().enumerate() {
        router.lock().unwrap().hosts = hosts;
        let reading = scrape(&mut s).unwrap();
        let now = Moment {
            monotonic_ms: step as u64 * 30_000,
            unix_secs: 1_795_000_000 + step as u64 * 30,
        };
        accounts.ingest("ap", "tplink", now, &reading, None);
    }
    let tv = &accounts.get("ap").unwrap().devices[0];
    // 2^32 − (top − 1,000) = 1,001 to the wrap.
    assert_eq!(tv.totals.rx_bytes(), 9_000 + 1_001 + 5_000 + 700);
}

#[test]
fn refusals_wrong_passwords_and_broken_pages() {
    let router = Arc::new(Mutex::new(Router {
        md5: true,
        hosts: vec![],
        other_admin: true,
    }));
    let mock = MockHttp::start(handler(router.clone(), 0));
    let e = scrape(&mut source(mock.port(), TplinkVariant::Md5, PASSWORD)).unwrap_err();
    assert_eq!(e.stage(), "auth");
    assert!(e.to_string().contains("one admin at a time"), "{e}");
    router.lock().unwrap().other_admin = false;
    let wrong = "Wrong-tp-pw-5";
    let e = scrape(&mut source(mock.port(), TplinkVariant::Md5, wrong)).unwrap_err();
    assert_eq!(e.stage(), "auth", "{e}");
    assert!(e.to_string().contains("option password"), "{e}");
    assert!(!format!("{e} {e:?}").contains(wrong));

    let cases: Vec<(Reply, &str)> = vec![
        (
            Reply::ok(
                HTML,
                "var statList = new Array(\n1, \"192.168.0.100\", \"AC-89-95-77-9A-E9\", 5, 12x",
            ),
            "parse",
        ),
        (
            Reply::ok(HTML, "<html>Statistics is disabled</html>"),
            "parse",
        ),
        (Reply::hang(), "timeout"),
        (
            Reply::trickle(
                statistics_page(&[("192.168.0.100", TV, 1)], 1),
                Duration::from_millis(200),
            ),
            "timeout",
        ),
    ];
    for (reply, stage) in cases {
        let reply = Mutex::new(Some(reply));
        let m = MockHttp::start(move |_| {
            reply
                .lock()
                .unwrap()
                .take()
                .unwrap_or_else(|| Reply::ok(HTML, ""))
        });
        let e = scrape(&mut source(m.port(), TplinkVariant::Basic, PASSWORD)).unwrap_err();
        assert_eq!(e.stage(), stage, "{e}");
    }
}

#[test]
fn the_cgi_variant_reads_stat_entries_and_logs_out() {
    let mock = MockHttp::start(|req| match req.path.as_str() {
        "/cgi?1&5" => {
            assert!(
                req.body_text()
                    .starts_with("[STAT_CFG#0,0,0,0,0,0#0,0,0,0,0,0]0,0\r\n")
            );
            Reply::ok(
                "text/plain",
                "[1,0,0,0,0,0]0\nipAddress=3232235620\nmacAddress=AC:89:95:77:9A:E9\ntotalPkts=10\n\
                 totalBytes=123456\n[2,0,0,0,0,0]0\nipAddress=3232235621\nmacAddress=2C:F0:5D:00:11:22\n\
                 totalPkts=1\ntotalBytes=99\n[error]0\n",
            )
        }
        "/cgi?8" => Reply::ok("text/plain", "[error]0\n"),
        other => panic!("{other}"),
    });
    let reading = scrape(&mut source(mock.port(), TplinkVariant::Cgi, PASSWORD)).unwrap();
    assert_eq!(reading.devices.len(), 2);
    assert_eq!(reading.devices[0].rx_bytes, 123_456);
    assert_eq!(mock.requests().last().unwrap().path, "/cgi?8");
    let failing = MockHttp::start(|req| match req.path.as_str() {
        "/cgi?1&5" => Reply::ok("text/plain", "[error]71017\n"),
        _ => Reply::ok("text/plain", "[error]0\n"),
    });
    let e = scrape(&mut source(failing.port(), TplinkVariant::Cgi, PASSWORD)).unwrap_err();
    assert_eq!(e.stage(), "protocol", "{e}");
    assert_eq!(
        failing.requests().last().unwrap().path,
        "/cgi?8",
        "logged out after a failure too"
    );
}
