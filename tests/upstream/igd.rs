#![cfg(feature = "upstream")]
//! The `igd` source against mocks on 127.0.0.1 of a FRITZ!Box's IGD
//! (`/igddesc.xml`, `GetAddonInfos` with AVM's 64-bit fields) and of
//! miniupnpd (`/rootDesc.xml`, no `GetAddonInfos`: a 500 fault, then
//! `GetTotalBytesReceived`/`Sent`), in their real formats.

use crate::mock;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use mock::{MockHttp, MockRequest, Reply};
use netmeter::account::CounterWidth;
use netmeter::clock::Moment;
use netmeter::config::upstream::{UpstreamConfig, UpstreamKind};
use netmeter::upstream::account::UpstreamAccounts;
use netmeter::upstream::sources::{Deadline, Reading, ScrapeError, Source, source_for};

const FRITZ_DESC: &str = include_str!("../fixtures/upstream/igd/igddesc-fritzbox.xml");
const MINI_DESC: &str = include_str!("../fixtures/upstream/igd/rootDesc-miniupnpd.xml");
const MINI_FAULT: &str = include_str!("../fixtures/upstream/igd/fault-invalid-action.xml");
const ADDON: &str = include_str!("../fixtures/upstream/fritzbox/GetAddonInfos.xml");
const IGD: &str = "urn:schemas-upnp-org:service:WANCommonInterfaceConfig:1";
const FRITZ_CONTROL: &str = "/igdupnp/control/WANCommonIFC1";
const MINI_CONTROL: &str = "/ctl/CmnIfCfg";
const XML: &str = "text/xml; charset=\"utf-8\"";

/// A SOAP answer as miniupnpd and FRITZ!OS write it.
fn answer(action: &str, fields: &[(&str, u64)]) -> String {
    let values: String = fields
        .iter()
        .map(|(n, v)| format!("<{n}>{v}</{n}>\n"))
        .collect();
    format!(
        "<?xml version=\"1.0\"?>\n<s:Envelope xmlns:s=\"http://schemas.xmlsoap.org/soap/envelope/\" \
         s:encodingStyle=\"http://schemas.xmlsoap.org/soap/encoding/\">\n<s:Body>\n\
         <u:{action}Response xmlns:u=\"{IGD}\">\n{values}</u:{action}Response>\n</s:Body>\n</s:Envelope>"
    )
}

fn fault(code: u32, description: &str) -> Reply {
    let body = MINI_FAULT
        .replace("401", &code.to_string())
        .replace("Invalid Action", description);
    Reply::status(500, &[("Content-Type", XML)], body)
}

/// The action a request calls, after checking the request is a proper
/// UPnP SOAP call (exact headers, envelope in the service's namespace).
fn action(req: &MockRequest) -> String {
    assert_eq!(req.method, "POST");
    assert_eq!(req.header("content-type"), Some(XML));
    let header = req.header("soapaction").expect("SOAPAction header");
    let quoted = header.strip_prefix('"').and_then(|h| h.strip_suffix('"'));
    let (service, action) = quoted.expect("quoted SOAPAction").split_once('#').unwrap();
    assert_eq!(service, IGD);
    let body = req.body_text();
    assert!(body.contains("<s:Envelope xmlns:s=\"http://schemas.xmlsoap.org/soap/envelope/\""));
    assert!(
        body.contains(&format!("<u:{action} xmlns:u=\"{service}\"")),
        "{body}"
    );
    action.to_owned()
}

fn config(port: u16) -> UpstreamConfig {
    let mut c = UpstreamConfig::new("isp", UpstreamKind::Igd);
    c.host = Some("127.0.0.1".into());
    c.port = port;
    c
}

fn source(port: u16) -> Box<dyn Source> {
    source_for(&config(port)).unwrap()
}

fn scrape(s: &mut Box<dyn Source>) -> Result<Reading, ScrapeError> {
    s.scrape(Deadline::after(Duration::from_secs(2)))
}

fn wan(s: &mut Box<dyn Source>) -> (u64, u64, CounterWidth) {
    let c = scrape(s).unwrap().wan.unwrap();
    (c.rx_bytes, c.tx_bytes, c.width)
}

fn at(step: u64) -> Moment {
    Moment {
        monotonic_ms: step * 60_000,
        unix_secs: 1_795_000_000 + step * 60,
    }
}

fn gets(mock: &MockHttp) -> Vec<String> {
    let requests = mock.requests();
    let gets = requests.iter().filter(|r| r.method == "GET");
    gets.map(|r| r.path.clone()).collect()
}

/// A FRITZ!Box's IGD with 32-bit counters only (FRITZ!OS before 7).
#[test]
fn fritzbox_layout_is_discovered_once_and_counts_across_a_wrap_and_a_reboot() {
    let counter = Arc::new([AtomicU64::new(0), AtomicU64::new(0)]);
    let value = counter.clone();
    let mock = MockHttp::start(move |req| match (req.method.as_str(), req.path.as_str()) {
        ("GET", "/igddesc.xml") => Reply::ok(XML, FRITZ_DESC),
        ("POST", FRITZ_CONTROL) => {
            assert_eq!(action(req), "GetAddonInfos");
            let fields = [
                ("NewByteSendRate", 100),
                ("NewTotalBytesSent", value[1].load(Ordering::SeqCst)),
                ("NewTotalBytesReceived", value[0].load(Ordering::SeqCst)),
            ];
            Reply::ok(XML, answer("GetAddonInfos", &fields))
        }
        _ => Reply::status(404, &[], ""),
    });
    let mut source = source(mock.port());
    let mut accounts = UpstreamAccounts::default();
    let top = u64::from(u32::MAX);
    // rx wraps while tx goes on; then both start over (the box rebooted).
    let raws = [
        (top - 3_000_000, 7_000),
        (top - 1_000, 8_000),
        (50_000, 9_000),
        (20_000, 500),
    ];
    for (step, (rx, tx)) in raws.into_iter().enumerate() {
        counter[0].store(rx, Ordering::SeqCst);
        counter[1].store(tx, Ordering::SeqCst);
        let reading = scrape(&mut source).unwrap();
        assert_eq!(reading.wan.unwrap().width, CounterWidth::Bits32);
        accounts.ingest("isp", "igd", at(step as u64), &reading, None);
    }
    let totals = accounts.get("isp").unwrap().wan.clone().unwrap();
    // Wrapped after 4 GiB (the total goes on), then the box rebooted
    // (every counter fell: a reset, the 20,000 counted).
    assert_eq!(totals.rx_bytes(), 2_999_000 + 1_001 + 50_000 + 20_000);
    assert_eq!(totals.tx_bytes(), 1_000 + 1_000 + 500);
    assert_eq!(gets(&mock), ["/igddesc.xml"], "the control URL is kept");
}

#[test]
fn fritzbox_64_bit_fields_are_preferred_unless_missing_or_zero() {
    let body = Arc::new(Mutex::new(ADDON.to_owned()));
    let served = body.clone();
    let mock = MockHttp::start(move |req| match req.path.as_str() {
        "/igddesc.xml" => Reply::ok(XML, FRITZ_DESC),
        FRITZ_CONTROL => Reply::ok(XML, served.lock().unwrap().clone()),
        _ => Reply::status(404, &[], ""),
    });
    let sixty_four = (306_893_660_778, 19_774_048_175, CounterWidth::Bits64);
    let thirty_two = (1_263_357_546, 2_594_113_455, CounterWidth::Bits32);
    assert_eq!(wan(&mut source(mock.port())), sixty_four);
    // A cable box: zeros in the 64-bit fields.
    *body.lock().unwrap() = ADDON
        .replace(">19774048175<", ">0<")
        .replace(">306893660778<", ">0<");
    assert_eq!(wan(&mut source(mock.port())), thirty_two);
    // FRITZ!OS before 7: no 64-bit fields.
    *body.lock().unwrap() = ADDON.lines().filter(|l| !l.contains("64>")).collect();
    assert_eq!(wan(&mut source(mock.port())), thirty_two);
}

#[test]
fn miniupnpd_layout_falls_back_to_get_total_bytes_and_remembers_it() {
    let mock = MockHttp::start(|req| match (req.method.as_str(), req.path.as_str()) {
        ("GET", "/rootDesc.xml") => Reply::ok(XML, MINI_DESC),
        ("POST", MINI_CONTROL) => match action(req).as_str() {
            "GetAddonInfos" => fault(401, "Invalid Action"),
            "GetTotalBytesReceived" => Reply::ok(
                XML,
                answer("GetTotalBytesReceived", &[("NewTotalBytesReceived", 7_000)]),
            ),
            "GetTotalBytesSent" => Reply::ok(
                XML,
                answer("GetTotalBytesSent", &[("NewTotalBytesSent", 3_000)]),
            ),
            other => panic!("{other}"),
        },
        _ => Reply::status(
            404,
            &[("Content-Type", "text/html")],
            "<HTML>Not Found</HTML>",
        ),
    });
    let mut source = source(mock.port());
    for _ in 0..3 {
        assert_eq!(wan(&mut source), (7_000, 3_000, CounterWidth::Bits32));
    }
    assert_eq!(gets(&mock), ["/igddesc.xml", "/rootDesc.xml"]);
    let requests = mock.requests();
    let addon = requests
        .iter()
        .filter(|r| r.body_text().contains("GetAddonInfos"));
    assert_eq!(addon.count(), 1, "the fallback is remembered");
}

/// miniupnpd with `GetStatusInfo` on its WANIPConnection (`/ctl/IPConn`):
/// counters and uptime as the test sets them.
fn miniupnpd_with_uptime(state: Arc<Mutex<(u64, u64, u64)>>) -> MockHttp {
    MockHttp::start(move |req| {
        let (rx, tx, uptime) = *state.lock().unwrap();
        match (req.method.as_str(), req.path.as_str()) {
            ("GET", "/rootDesc.xml") => Reply::ok(XML, MINI_DESC),
            ("POST", "/ctl/IPConn") => {
                let service = "urn:schemas-upnp-org:service:WANIPConnection:1";
                assert_eq!(
                    req.header("soapaction"),
                    Some(format!("\"{service}#GetStatusInfo\"").as_str())
                );
                Reply::ok(
                    XML,
                    format!(
                        "<?xml version=\"1.0\"?>\n<s:Envelope xmlns:s=\"http://schemas.xmlsoap.org/soap/envelope/\" \
                         s:encodingStyle=\"http://schemas.xmlsoap.org/soap/encoding/\"><s:Body>\
                         <u:GetStatusInfoResponse xmlns:u=\"{service}\">\
                         <NewConnectionStatus>Connected</NewConnectionStatus>\
                         <NewLastConnectionError>ERROR_NONE</NewLastConnectionError>\
                         <NewUptime>{uptime}</NewUptime></u:GetStatusInfoResponse></s:Body></s:Envelope>\r\n"
                    ),
                )
            }
            ("POST", MINI_CONTROL) => match action(req).as_str() {
                "GetAddonInfos" => fault(401, "Invalid Action"),
                "GetTotalBytesReceived" => Reply::ok(
                    XML,
                    answer("GetTotalBytesReceived", &[("NewTotalBytesReceived", rx)]),
                ),
                "GetTotalBytesSent" => Reply::ok(
                    XML,
                    answer("GetTotalBytesSent", &[("NewTotalBytesSent", tx)]),
                ),
                other => panic!("{other}"),
            },
            _ => Reply::status(404, &[], ""),
        }
    })
}

/// Scrapes once per `(rx, tx, uptime)` a minute apart.
fn count_through(steps: &[(u64, u64, u64)]) -> UpstreamAccounts {
    let state = Arc::new(Mutex::new(steps[0]));
    let mock = miniupnpd_with_uptime(state.clone());
    let mut source = source(mock.port());
    let mut accounts = UpstreamAccounts::default();
    for (step, &values) in steps.iter().enumerate() {
        *state.lock().unwrap() = values;
        let reading = scrape(&mut source).unwrap();
        assert_eq!(reading.uptime_secs, Some(values.2));
        accounts.ingest("isp", "igd", at(step as u64), &reading, None);
    }
    accounts
}

#[test]
fn a_reboot_told_by_get_status_info_uptime_adds_only_what_came_after() {
    let gib3 = 3u64 << 30;
    // rx above 2 GiB when miniupnpd's router reboots; tx was small.
    let accounts = count_through(&[
        (gib3, 4_000, 7_200),
        (gib3 + 600, 4_100, 7_260),
        (900, 4_200, 35),
    ]);
    let isp = accounts.get("isp").unwrap();
    let wan = isp.wan.as_ref().unwrap();
    assert_eq!((wan.rx_bytes(), wan.tx_bytes()), (600 + 900, 100 + 100));
    let reset = isp.last_reset.clone().unwrap();
    assert_eq!(reset.reason.name(), "uptime");
    assert!(
        reset.detail.contains("from 7260 s to 35 s"),
        "{}",
        reset.detail
    );
}

#[test]
fn a_real_32_bit_wrap_counts_exactly_while_get_status_info_uptime_carries_on() {
    let top = u64::from(u32::MAX);
    let accounts = count_through(&[
        (top - 5_000, 4_000, 100),
        (top - 1_000, 4_100, 160),
        (700, 4_200, 220),
    ]);
    let isp = accounts.get("isp").unwrap();
    assert_eq!(isp.wan.as_ref().unwrap().rx_bytes(), 4_000 + 1_001 + 700);
    assert_eq!(isp.last_reset, None);
}

/// miniupnpd without UPNP_STRICT on a 64-bit system sends 64-bit values
/// in the ui4 fields: they do not wrap at 4 GiB.
#[test]
fn miniupnpd_values_beyond_32_bits_are_64_bit_counters() {
    let mock = MockHttp::start(|req| match req.path.as_str() {
        "/rootDesc.xml" => Reply::ok(XML, MINI_DESC),
        MINI_CONTROL => match action(req).as_str() {
            "GetAddonInfos" => fault(401, "Invalid Action"),
            "GetTotalBytesReceived" => Reply::ok(
                XML,
                answer(
                    "GetTotalBytesReceived",
                    &[("NewTotalBytesReceived", 9_000_000_000)],
                ),
            ),
            _ => Reply::ok(
                XML,
                answer("GetTotalBytesSent", &[("NewTotalBytesSent", 3_000)]),
            ),
        },
        _ => Reply::status(404, &[], ""),
    });
    assert_eq!(
        wan(&mut source(mock.port())),
        (9_000_000_000, 3_000, CounterWidth::Bits64)
    );
}

#[test]
fn a_fallback_that_fails_too_names_both_faults_and_is_not_remembered() {
    let mock = MockHttp::start(|req| match action(req).as_str() {
        "GetAddonInfos" => fault(401, "Invalid Action"),
        _ => fault(501, "Action Failed"),
    });
    let mut c = config(mock.port());
    c.path = Some(MINI_CONTROL.into());
    let mut source = source_for(&c).unwrap();
    for _ in 0..2 {
        let e = scrape(&mut source).unwrap_err();
        assert_eq!(e.stage(), "protocol");
        let text = e.to_string();
        assert!(
            text.contains("401 (Invalid Action)") && text.contains("501"),
            "{e}"
        );
    }
    let requests = mock.requests();
    let addon = requests
        .iter()
        .filter(|r| r.body_text().contains("GetAddonInfos"));
    assert_eq!(addon.count(), 2, "GetAddonInfos is asked again");
}

#[test]
fn option_path_skips_discovery_and_a_404_there_names_it() {
    let mock = MockHttp::start(|req| match req.path.as_str() {
        "/custom/ctl" => Reply::ok(XML, ADDON),
        _ => Reply::status(404, &[], ""),
    });
    let mut c = config(mock.port());
    c.path = Some("/custom/ctl".into());
    let (_, _, width) = wan(&mut source_for(&c).unwrap());
    assert_eq!(width, CounterWidth::Bits64);
    c.path = Some("/wrong".into());
    let e = scrape(&mut source_for(&c).unwrap()).unwrap_err();
    assert!(
        e.to_string()
            .contains("option path /wrong answered HTTP 404"),
        "{e}"
    );
    assert!(gets(&mock).is_empty(), "no description was read");
}

/// A firmware update moved the control URL: the source looks it up again
/// within the same scrape.
#[test]
fn a_control_url_that_answers_404_is_looked_up_again() {
    let moved = Arc::new(AtomicU64::new(0));
    let flag = moved.clone();
    let mock = MockHttp::start(move |req| {
        let moved = flag.load(Ordering::SeqCst) == 1;
        match (req.path.as_str(), moved) {
            ("/igddesc.xml", false) => Reply::ok(XML, FRITZ_DESC),
            ("/igddesc.xml", true) => Reply::ok(XML, FRITZ_DESC.replace("igdupnp", "igd2upnp")),
            (FRITZ_CONTROL, false) | ("/igd2upnp/control/WANCommonIFC1", true) => {
                Reply::ok(XML, ADDON)
            }
            _ => Reply::status(404, &[], ""),
        }
    });
    let mut source = source(mock.port());
    scrape(&mut source).unwrap();
    moved.store(1, Ordering::SeqCst);
    scrape(&mut source).unwrap();
    scrape(&mut source).unwrap();
    assert_eq!(gets(&mock), ["/igddesc.xml", "/igddesc.xml"]);
    let requests = mock.requests();
    let last = requests.iter().rfind(|r| r.contains("GetAddonInfos"));
    assert_eq!(last.unwrap().path, "/igd2upnp/control/WANCommonIFC1");
}

#[test]
fn a_router_without_the_service_says_what_to_do() {
    let none = MockHttp::start(|_| Reply::status(404, &[], ""));
    let e = scrape(&mut source(none.port())).unwrap_err();
    assert_eq!(e.stage(), "protocol");
    let text = e.to_string();
    assert!(
        text.contains("/igddesc.xml (HTTP 404), /rootDesc.xml (HTTP 404)"),
        "{e}"
    );
    assert!(
        text.contains("UPnP status") && text.contains("option path"),
        "{e}"
    );
    // A description of another device: no such service.
    let other =
        MockHttp::start(|_| Reply::ok(XML, MINI_DESC.replace("WANCommonInterfaceConfig", "X")));
    let e = scrape(&mut source(other.port())).unwrap_err();
    assert!(e.to_string().contains("(no such service)"), "{e}");
}

#[test]
fn malformed_and_truncated_answers_are_parse_or_protocol_errors() {
    let cut_at = ADDON.find("<NewAutoDisconnectTime>").unwrap();
    let cases: Vec<(Reply, &str)> = vec![
        // Cut short, though framed as complete.
        (Reply::ok(XML, &ADDON[..cut_at]), "parse"),
        // Garbled markup.
        (
            Reply::ok(
                XML,
                ADDON.replace("<NewTotalBytesSent>", "<NewTotal BytesSent <"),
            ),
            "parse",
        ),
        // Not SOAP at all.
        (
            Reply::ok("text/html", "<html><body>Login</body></html>"),
            "parse",
        ),
        (Reply::ok(XML, ""), "parse"),
        (
            Reply::ok(
                XML,
                ADDON.replace(">2594113455<", ">-5<").replace("64>", "X>"),
            ),
            "parse",
        ),
        (Reply::ok(XML, b"\xff\xfe<\x00".as_slice()), "parse"),
        // The connection closed in the middle of the body.
        (
            Reply::raw(format!(
                "HTTP/1.1 200 OK\r\nContent-Type: {XML}\r\nContent-Length: {}\r\n\r\n{}",
                ADDON.len(),
                &ADDON[..cut_at]
            )),
            "protocol",
        ),
        (
            Reply::status(500, &[], "<HTML>Internal Error</HTML>"),
            "protocol",
        ),
        (Reply::close(), "protocol"),
    ];
    for (reply, stage) in cases {
        let reply = Mutex::new(Some(reply));
        let mock = MockHttp::start(move |_| reply.lock().unwrap().take().unwrap());
        let mut c = config(mock.port());
        c.path = Some(FRITZ_CONTROL.into());
        let e = scrape(&mut source_for(&c).unwrap()).unwrap_err();
        assert_eq!(e.stage(), stage, "{e}");
    }
}

#[test]
fn silent_and_trickling_routers_time_out() {
    let silent = mock::silent_listener();
    let e = scrape(&mut source(silent.port())).unwrap_err();
    assert_eq!(e.stage(), "timeout", "{e}");
    let hang = MockHttp::start(|_| Reply::hang());
    assert_eq!(
        scrape(&mut source(hang.port())).unwrap_err().stage(),
        "timeout"
    );
    let trickle = MockHttp::start(|req| match req.path.as_str() {
        "/igddesc.xml" => Reply::ok(XML, FRITZ_DESC),
        _ => {
            let head = format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n", ADDON.len());
            Reply::trickle(head + ADDON, Duration::from_millis(100))
        }
    });
    let e = scrape(&mut source(trickle.port())).unwrap_err();
    assert_eq!(e.stage(), "timeout", "{e}");
    let e = scrape(&mut source(mock::closed_port())).unwrap_err();
    assert_eq!(e.stage(), "connect", "{e}");
}
