#![cfg(feature = "upstream")]
//! The `fritzbox` source against a mock FRITZ!Box TR-064 on 127.0.0.1:
//! a Digest challenge (checked by the mock's own computation), then
//! `GetAddonInfos` of `urn:dslforum-org:service:WANCommonInterfaceConfig:1`
//! in FRITZ!OS's format; refusals as FRITZ!OS sends them.

use crate::mock;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use mock::{MockHttp, MockRequest, Reply};
use netmeter::account::CounterWidth;
use netmeter::clock::Moment;
use netmeter::config::Secret;
use netmeter::config::upstream::{UpstreamConfig, UpstreamKind};
use netmeter::upstream::account::UpstreamAccounts;
use netmeter::upstream::sources::{Deadline, Reading, ScrapeError, Source, source_for};

const ADDON: &str = include_str!("../fixtures/upstream/fritzbox/GetAddonInfos-tr064.xml");
const FAULT_606: &str = include_str!("../fixtures/upstream/fritzbox/fault-606.xml");
const GET_INFO: &str = include_str!("../fixtures/upstream/fritzbox/GetInfo-deviceinfo.xml");
const DEVICE_INFO: &str = "urn:dslforum-org:service:DeviceInfo:1";
const TR064: &str = "urn:dslforum-org:service:WANCommonInterfaceConfig:1";
const CONTROL: &str = "/upnp/control/wancommonifconfig1";
const USER: &str = "netmeter";
const PASSWORD: &str = "Fritz-Kiwi-8123!";
const REALM: &str = "F!Box SOAP-Auth";
const NONCE: &str = "7B4D1C9A2E5F6081";
const XML: &str = "text/xml; charset=\"utf-8\"";

/// The box's uptime as DeviceInfo GetInfo gives it; None: the user lacks
/// the right, and FRITZ!OS answers UPnP error 606.
type Uptime = Arc<Mutex<Option<u64>>>;

/// TR-064 as FRITZ!OS answers it: 401 with a Digest challenge until the
/// request carries a valid answer to it, then `body` (or DeviceInfo's).
fn tr064(
    body: Arc<Mutex<String>>,
    uptime: Uptime,
) -> impl Fn(&MockRequest) -> Reply + Send + Sync + 'static {
    move |req| {
        if req.path == "/upnp/control/deviceinfo" {
            assert_eq!(
                req.header("soapaction"),
                Some(format!("\"{DEVICE_INFO}#GetInfo\"").as_str())
            );
            if !mock::digest_valid(req, REALM, NONCE, USER, PASSWORD) {
                return Reply::status(
                    401,
                    &[("WWW-Authenticate", &mock::digest_challenge(REALM, NONCE))],
                    "",
                );
            }
            return match *uptime.lock().unwrap() {
                Some(up) => Reply::ok(XML, GET_INFO.replace(">1012345<", &format!(">{up}<"))),
                None => Reply::status(500, &[("Content-Type", XML)], FAULT_606),
            };
        }
        assert_eq!((req.method.as_str(), req.path.as_str()), ("POST", CONTROL));
        assert_eq!(req.header("content-type"), Some(XML));
        assert_eq!(
            req.header("soapaction"),
            Some(format!("\"{TR064}#GetAddonInfos\"").as_str())
        );
        assert!(
            req.body_text()
                .contains(&format!("<u:GetAddonInfos xmlns:u=\"{TR064}\"/>"))
        );
        if !mock::digest_valid(req, REALM, NONCE, USER, PASSWORD) {
            return Reply::status(
                401,
                &[
                    ("WWW-Authenticate", &mock::digest_challenge(REALM, NONCE)),
                    ("Content-Type", "text/html"),
                ],
                "<HTML><HEAD><TITLE>401 Unauthorized (ERR_NONE)</TITLE></HEAD>\
                 <BODY><H1>401 Unauthorized</H1><BR>ERR_NONE<HR><I>AVM FRITZ!Box</I></BODY></HTML>",
            );
        }
        Reply::ok(XML, body.lock().unwrap().clone())
    }
}

fn mock_box(body: &str) -> (MockHttp, Arc<Mutex<String>>) {
    let (mock, body, _) = mock_box_up(body);
    (mock, body)
}

/// As [`mock_box`], with the uptime to set (the user lacks the right at first).
fn mock_box_up(body: &str) -> (MockHttp, Arc<Mutex<String>>, Uptime) {
    let body = Arc::new(Mutex::new(body.to_owned()));
    let uptime = Uptime::default();
    let mock = MockHttp::start(tr064(body.clone(), uptime.clone()));
    (mock, body, uptime)
}

fn config(port: u16, password: &str) -> UpstreamConfig {
    let mut c = UpstreamConfig::new("isp", UpstreamKind::Fritzbox);
    c.host = Some("127.0.0.1".into());
    c.port = port;
    c.username = Some(USER.into());
    c.password = Secret::password(password);
    c
}

fn fritzbox(port: u16, password: &str) -> Box<dyn Source> {
    source_for(&config(port, password)).unwrap()
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

/// The fixture with these totals: 64-bit (None = fields absent) and 32-bit.
fn addon(sixty_four: Option<(u64, u64)>, thirty_two: (u64, u64)) -> String {
    let body = ADDON
        .replace(">1263357546<", &format!(">{}<", thirty_two.0))
        .replace(">2594113455<", &format!(">{}<", thirty_two.1));
    match sixty_four {
        Some((rx, tx)) => body
            .replace(">306893660778<", &format!(">{rx}<"))
            .replace(">19774048175<", &format!(">{tx}<")),
        None => body.lines().filter(|l| !l.contains("64>")).collect(),
    }
}

/// Errors and readings never show the password, and the box never
/// received it in clear.
fn assert_hidden(texts: &[String], mock: &MockHttp) {
    for text in texts {
        assert!(!text.contains(PASSWORD), "{text}");
    }
    for request in mock.requests() {
        assert!(!request.contains(PASSWORD), "{request:?}");
    }
}

#[test]
fn digest_auth_then_the_64_bit_totals() {
    let (mock, _) = mock_box(ADDON);
    let mut source = fritzbox(mock.port(), PASSWORD);
    let reading = scrape(&mut source).unwrap();
    let c = reading.wan.unwrap();
    assert_eq!(
        (c.rx_bytes, c.tx_bytes, c.width),
        (306_893_660_778, 19_774_048_175, CounterWidth::Bits64)
    );
    let requests: Vec<_> = mock
        .requests()
        .into_iter()
        .filter(|r| r.path == CONTROL)
        .collect();
    assert_eq!(requests.len(), 2, "a challenge, then the answered request");
    assert!(requests[0].header("authorization").is_none());
    assert!(mock::digest_valid(
        &requests[1],
        REALM,
        NONCE,
        USER,
        PASSWORD
    ));
    assert_hidden(&[format!("{reading:?}")], &mock);
}

#[test]
fn zero_or_missing_64_bit_fields_give_the_32_bit_ones() {
    let (mock, body) = mock_box(&addon(Some((0, 0)), (1_000, 2_000)));
    assert_eq!(
        wan(&mut fritzbox(mock.port(), PASSWORD)),
        (1_000, 2_000, CounterWidth::Bits32)
    );
    *body.lock().unwrap() = addon(None, (3_000, 4_000));
    assert_eq!(
        wan(&mut fritzbox(mock.port(), PASSWORD)),
        (3_000, 4_000, CounterWidth::Bits32)
    );
}

/// FRITZ!OS before 7: 32-bit fields only. Near 2^32, then small: the
/// accounting carries the total across the wrap.
#[test]
fn a_32_bit_wrap_continues_the_total() {
    let top = u64::from(u32::MAX);
    let (mock, body) = mock_box(&addon(None, (top - 10_000, 5)));
    let mut source = fritzbox(mock.port(), PASSWORD);
    let mut accounts = UpstreamAccounts::default();
    for (step, rx) in [top - 10_000, top - 100, 900].into_iter().enumerate() {
        *body.lock().unwrap() = addon(None, (rx, 5));
        let reading = scrape(&mut source).unwrap();
        assert_eq!(reading.wan.unwrap().width, CounterWidth::Bits32);
        accounts.ingest("isp", "fritzbox", at(step as u64), &reading, None);
    }
    let totals = accounts.get("isp").unwrap().wan.clone().unwrap();
    assert_eq!(totals.rx_bytes(), 9_900 + 101 + 900);
}

/// A reboot drops the 64-bit totals to small values: a reset, counted
/// from zero. A lone zero in the 64-bit fields (FRITZ!OS 7.50 sends them)
/// stays a 64-bit zero, which the accounting skips, instead of switching
/// to the smaller 32-bit fields (which would read as a reboot and back).
#[test]
fn a_reboot_is_a_reset_and_a_lone_zero_is_skipped() {
    let (mock, body) = mock_box(ADDON);
    let mut source = fritzbox(mock.port(), PASSWORD);
    let mut accounts = UpstreamAccounts::default();
    let gb = 1_000_000_000;
    let readings = [
        (Some((300 * gb, 20 * gb)), CounterWidth::Bits64),
        (Some((301 * gb, 21 * gb)), CounterWidth::Bits64),
        (Some((0, 0)), CounterWidth::Bits64),
        (Some((302 * gb, 22 * gb)), CounterWidth::Bits64),
        // The box rebooted.
        (Some((5_000, 1_000)), CounterWidth::Bits64),
    ];
    for (step, (totals, width)) in readings.into_iter().enumerate() {
        *body.lock().unwrap() = addon(totals, (123_456, 654_321));
        let reading = scrape(&mut source).unwrap();
        assert_eq!(reading.wan.unwrap().width, width, "step {step}");
        accounts.ingest("isp", "fritzbox", at(step as u64), &reading, None);
    }
    let totals = accounts.get("isp").unwrap().wan.clone().unwrap();
    assert_eq!(totals.rx_bytes(), 2 * gb + 5_000);
    assert_eq!(totals.tx_bytes(), 2 * gb + 1_000);
}

#[test]
fn a_reboot_told_by_device_info_uptime_adds_only_what_came_after() {
    // FRITZ!OS before 7: 32-bit fields, rx above 2 GiB when the box reboots.
    let (mock, body, uptime) = mock_box_up(ADDON);
    let mut source = fritzbox(mock.port(), PASSWORD);
    let mut accounts = UpstreamAccounts::default();
    let gib3 = 3u64 << 30;
    let steps = [
        (Some(1_012_345), (gib3, 900_000)),
        (Some(1_012_405), (gib3 + 5_000, 900_100)),
        (Some(70), (800, 90)),
        // No right to DeviceInfo now: the reading still counts.
        (None, (1_800, 190)),
    ];
    for (step, (up, (rx, tx))) in steps.into_iter().enumerate() {
        *body.lock().unwrap() = addon(None, (rx, tx));
        *uptime.lock().unwrap() = up;
        let reading = scrape(&mut source).unwrap();
        assert_eq!(reading.uptime_secs, up);
        accounts.ingest("isp", "fritzbox", at(step as u64), &reading, None);
    }
    let isp = accounts.get("isp").unwrap();
    let totals = isp.wan.as_ref().unwrap();
    assert_eq!(
        (totals.rx_bytes(), totals.tx_bytes()),
        (5_000 + 800 + 1_000, 100 + 90 + 100)
    );
    let reset = isp.last_reset.clone().unwrap();
    assert_eq!(reset.reason.name(), "uptime");
    assert!(
        reset.detail.contains("from 1012405 s to 70 s"),
        "{}",
        reset.detail
    );
}

#[test]
fn a_real_32_bit_wrap_from_mid_range_counts_exactly_while_uptime_carries_on() {
    // 3.5 GiB in a minute, from below 2 GiB: the uptime says no reboot.
    let (mock, body, uptime) = mock_box_up(ADDON);
    let mut source = fritzbox(mock.port(), PASSWORD);
    let mut accounts = UpstreamAccounts::default();
    let moved = 3_758_096_384u64;
    for (step, rx) in [1u64 << 30, (1 << 30) + moved - (1 << 32)]
        .into_iter()
        .enumerate()
    {
        *body.lock().unwrap() = addon(None, (rx, 5 + step as u64));
        *uptime.lock().unwrap() = Some(5_000 + 60 * step as u64);
        let reading = scrape(&mut source).unwrap();
        accounts.ingest("isp", "fritzbox", at(step as u64), &reading, None);
    }
    let isp = accounts.get("isp").unwrap();
    assert_eq!(isp.wan.as_ref().unwrap().rx_bytes(), moved);
    assert_eq!(isp.last_reset, None);
}

#[test]
fn a_wrong_password_is_an_auth_error_naming_the_options() {
    let (mock, _) = mock_box(ADDON);
    let wrong = "Wrong-Kiwi-99";
    let e = scrape(&mut fritzbox(mock.port(), wrong)).unwrap_err();
    assert!(matches!(e, ScrapeError::Auth(_)), "{e:?}");
    let text = e.to_string();
    assert!(text.contains("HTTP 401"), "{e}");
    assert!(
        text.contains("option username") && text.contains("option password"),
        "{e}"
    );
    assert!(text.contains("FRITZ!OS 7.24"), "{e}");
    assert!(!format!("{e} {e:?}").contains(wrong));
    assert!(mock.requests().iter().all(|r| !r.contains(wrong)));
    // Digest was tried once: two requests, no loop.
    assert_eq!(mock.requests().len(), 2);
}

#[test]
fn upnp_faults_401_and_606_are_auth_errors_others_protocol() {
    for (code, stage) in [(606, "auth"), (401, "auth"), (501, "protocol")] {
        let body = FAULT_606.replace("606", &code.to_string());
        let mock = MockHttp::start(move |_| Reply::status(500, &[("Content-Type", XML)], &body));
        let e = scrape(&mut fritzbox(mock.port(), PASSWORD)).unwrap_err();
        assert_eq!(e.stage(), stage, "{e}");
        assert!(e.to_string().contains(&code.to_string()), "{e}");
        if stage == "auth" {
            assert!(e.to_string().contains("7.24"), "{e}");
        }
    }
}

#[test]
fn broken_answers_and_silent_boxes() {
    let cut_at = ADDON.find("<NewAutoDisconnectTime>").unwrap();
    let cases = [
        (ADDON[..cut_at].to_owned(), "parse"),
        (
            ADDON.replace("</NewTotalBytesSent>", "</NewTotalBytesSen>"),
            "parse",
        ),
        // A garbled 64-bit field is no reason to read the 32-bit ones.
        (
            ADDON.replace("</NewX_AVM_DE_TotalBytesSent64>", "</Foo>"),
            "parse",
        ),
        ("<html>not soap</html>".to_owned(), "parse"),
        (ADDON.replace(">19774048175<", ">1e10<"), "parse"),
    ];
    let (mock, body) = mock_box(ADDON);
    let mut errors = Vec::new();
    for (text, stage) in cases {
        *body.lock().unwrap() = text;
        let e = scrape(&mut fritzbox(mock.port(), PASSWORD)).unwrap_err();
        assert_eq!(e.stage(), stage, "{e}");
        errors.push(format!("{e} {e:?}"));
    }
    let not_found = MockHttp::start(|_| Reply::status(404, &[], ""));
    let e = scrape(&mut fritzbox(not_found.port(), PASSWORD)).unwrap_err();
    assert!(e.to_string().contains("49000"), "{e}");
    errors.push(format!("{e} {e:?}"));
    for reply in [
        Reply::hang(),
        Reply::trickle(
            format!(
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{ADDON}",
                ADDON.len()
            ),
            Duration::from_millis(100),
        ),
    ] {
        let reply = Mutex::new(Some(reply));
        let m = MockHttp::start(move |_| reply.lock().unwrap().take().unwrap_or_else(Reply::close));
        let e = scrape(&mut fritzbox(m.port(), PASSWORD)).unwrap_err();
        assert_eq!(e.stage(), "timeout", "{e}");
        errors.push(format!("{e} {e:?}"));
    }
    let silent = mock::silent_listener();
    let e = scrape(&mut fritzbox(silent.port(), PASSWORD)).unwrap_err();
    assert_eq!(e.stage(), "timeout", "{e}");
    let e = scrape(&mut fritzbox(mock::closed_port(), PASSWORD)).unwrap_err();
    assert_eq!(e.stage(), "connect", "{e}");
    errors.push(format!("{e} {e:?}"));
    assert_hidden(&errors, &mock);
}

#[test]
fn without_a_password_nothing_is_sent() {
    let (mock, _) = mock_box(ADDON);
    let mut c = config(mock.port(), PASSWORD);
    c.password = None;
    let e = scrape(&mut source_for(&c).unwrap()).unwrap_err();
    assert_eq!(e.stage(), "local", "{e}");
    assert!(mock.requests().is_empty());
}
