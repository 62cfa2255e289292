//! The `igd` and `fritzbox` sources against mocks of a FRITZ!Box (IGD
//! description, SOAP, TR-064 with Digest auth) and of miniupnpd, on
//! 127.0.0.1.

mod mock;

use mock::{MockHttp, MockRequest, Reply};
use netmeter::account::Moment;
use netmeter::account::upstream::UpstreamAccounts;
use netmeter::collect::links::CounterWidth;
use netmeter::collect::upstream::{Deadline, Reading, ScrapeError, Source, source_for};
use netmeter::config::{Secret, UpstreamConfig, UpstreamKind};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const FRITZ_DESC: &str = include_str!("fixtures/upstream/igd/igddesc-fritzbox.xml");
const MINI_DESC: &str = include_str!("fixtures/upstream/igd/rootDesc-miniupnpd.xml");
const ADDON: &str = include_str!("fixtures/upstream/fritzbox/GetAddonInfos.xml");
const IGD: &str = "urn:schemas-upnp-org:service:WANCommonInterfaceConfig:1";
const TR064: &str = "urn:dslforum-org:service:WANCommonInterfaceConfig:1";
const PASSWORD: &str = "fritz-Secret-4711";
const REALM: &str = "F!Box SOAP-Auth";
const NONCE: &str = "5E1A5B3A0F7C2D11";
const XML: &str = "text/xml; charset=\"utf-8\"";

fn response(action: &str, fields: &[(&str, u64)]) -> String {
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
    Reply::status(
        500,
        &[("Content-Type", XML)],
        format!(
            "<?xml version=\"1.0\"?>\n<s:Envelope xmlns:s=\"http://schemas.xmlsoap.org/soap/envelope/\" \
             s:encodingStyle=\"http://schemas.xmlsoap.org/soap/encoding/\"><s:Body><s:Fault>\
             <faultcode>s:Client</faultcode><faultstring>UPnPError</faultstring><detail>\
             <UPnPError xmlns=\"urn:schemas-upnp-org:control-1-0\"><errorCode>{code}</errorCode>\
             <errorDescription>{description}</errorDescription></UPnPError></detail></s:Fault>\
             </s:Body></s:Envelope>"
        ),
    )
}

fn action(req: &MockRequest, service: &str) -> String {
    let header = req
        .header("soapaction")
        .unwrap()
        .trim_matches('"')
        .to_owned();
    let (svc, action) = header.split_once('#').unwrap();
    assert_eq!(svc, service);
    assert!(
        req.body_text()
            .contains(&format!("<u:{action} xmlns:u=\"{service}\""))
    );
    assert!(req.header("content-type").unwrap().starts_with("text/xml"));
    action.to_owned()
}

fn config(kind: UpstreamKind, port: u16) -> UpstreamConfig {
    let mut c = UpstreamConfig::new("isp", kind);
    c.host = Some("127.0.0.1".into());
    c.port = port;
    c
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

/// A FRITZ!Box's IGD with 32-bit counters only (an older FRITZ!OS).
#[test]
fn igd_on_a_fritzbox_discovers_the_control_url_and_counts_across_a_32_bit_wrap() {
    let counter = Arc::new(Mutex::new(0u64));
    let value = counter.clone();
    let mock = MockHttp::start(move |req| match (req.method.as_str(), req.path.as_str()) {
        ("GET", "/igddesc.xml") => Reply::ok(XML, FRITZ_DESC),
        ("POST", "/igdupnp/control/WANCommonIFC1") => {
            assert_eq!(action(req, IGD), "GetAddonInfos");
            let v = *value.lock().unwrap();
            Reply::ok(
                XML,
                response(
                    "GetAddonInfos",
                    &[
                        ("NewByteSendRate", 100),
                        ("NewTotalBytesSent", v / 2),
                        ("NewTotalBytesReceived", v),
                    ],
                ),
            )
        }
        _ => Reply::status(404, &[], ""),
    });
    let mut source = source_for(&config(UpstreamKind::Igd, mock.port())).unwrap();
    let mut accounts = UpstreamAccounts::default();
    let top = u64::from(u32::MAX);
    for (step, raw) in [top - 3_000_000, top - 1_000, 50_000, 20_000]
        .into_iter()
        .enumerate()
    {
        *counter.lock().unwrap() = raw;
        let reading = scrape(&mut source).unwrap();
        assert_eq!(reading.wan.unwrap().width, CounterWidth::Bits32);
        accounts.ingest("isp", "igd", at(step as u64), &reading, None);
    }
    let wan = accounts.get("isp").unwrap().wan.clone().unwrap();
    // Wrapped after 4 GiB, then the box rebooted (50,000 → 20,000, from mid-range: a reset).
    assert_eq!(wan.rx_bytes(), 2_999_000 + 1_001 + 50_000 + 20_000);
    let descriptions = mock.requests().iter().filter(|r| r.method == "GET").count();
    assert_eq!(descriptions, 1, "the control URL is found once and kept");
}

#[test]
fn igd_on_miniupnpd_falls_back_to_get_total_bytes() {
    let mock = MockHttp::start(|req| match (req.method.as_str(), req.path.as_str()) {
        ("GET", "/rootDesc.xml") => Reply::ok(XML, MINI_DESC),
        ("POST", "/ctl/CmnIfCfg") => match action(req, IGD).as_str() {
            "GetAddonInfos" => fault(401, "Invalid Action"),
            "GetTotalBytesReceived" => Reply::ok(
                XML,
                response("GetTotalBytesReceived", &[("NewTotalBytesReceived", 7_000)]),
            ),
            "GetTotalBytesSent" => Reply::ok(
                XML,
                response("GetTotalBytesSent", &[("NewTotalBytesSent", 3_000)]),
            ),
            other => panic!("{other}"),
        },
        _ => Reply::status(404, &[], "Not Found"),
    });
    let mut source = source_for(&config(UpstreamKind::Igd, mock.port())).unwrap();
    for _ in 0..2 {
        let wan = scrape(&mut source).unwrap().wan.unwrap();
        assert_eq!(
            (wan.rx_bytes, wan.tx_bytes, wan.width),
            (7_000, 3_000, CounterWidth::Bits32)
        );
    }
    let addon = mock
        .requests()
        .iter()
        .filter(|r| r.body_text().contains("GetAddonInfos"))
        .count();
    assert_eq!(addon, 1, "the fallback is remembered");

    // option path skips discovery.
    let mut c = config(UpstreamKind::Igd, mock.port());
    c.path = Some("/ctl/CmnIfCfg".into());
    let before = mock.requests().len();
    scrape(&mut source_for(&c).unwrap()).unwrap();
    assert!(mock.requests()[before..].iter().all(|r| r.method == "POST"));

    // A router without the service says what to do.
    let none = MockHttp::start(|_| Reply::status(404, &[], ""));
    let e = scrape(&mut source_for(&config(UpstreamKind::Igd, none.port())).unwrap()).unwrap_err();
    assert!(e.to_string().contains("option path"), "{e}");
}

fn fritzbox(port: u16, password: &str) -> Box<dyn Source> {
    let mut c = config(UpstreamKind::Fritzbox, port);
    c.username = Some("netmeter".into());
    c.password = Secret::password(password);
    source_for(&c).unwrap()
}

/// TR-064 as FRITZ!OS answers it: a Digest challenge, then the answer.
fn tr064(body: Arc<Mutex<String>>) -> impl Fn(&MockRequest) -> Reply + Send + Sync + 'static {
    move |req| {
        assert_eq!(req.path, "/upnp/control/wancommonifconfig1");
        if !mock::digest_valid(req, REALM, NONCE, "netmeter", PASSWORD) {
            return Reply::status(
                401,
                &[("WWW-Authenticate", &mock::digest_challenge(REALM, NONCE))],
                "<HTML><HEAD><TITLE>401 Unauthorized (ERR_NONE)</TITLE></HEAD></HTML>",
            );
        }
        assert_eq!(action(req, TR064), "GetAddonInfos");
        Reply::ok(XML, body.lock().unwrap().clone())
    }
}

#[test]
fn fritzbox_prefers_the_64_bit_fields_behind_digest_auth() {
    let body = Arc::new(Mutex::new(ADDON.to_owned()));
    let mock = MockHttp::start(tr064(body.clone()));
    let mut source = fritzbox(mock.port(), PASSWORD);
    let wan = scrape(&mut source).unwrap().wan.unwrap();
    assert_eq!(
        (wan.rx_bytes, wan.tx_bytes, wan.width),
        (306_893_660_778, 19_774_048_175, CounterWidth::Bits64)
    );
    // Zero 64-bit fields (some cable boxes): the 32-bit ones.
    *body.lock().unwrap() = ADDON
        .replace("19774048175", "0")
        .replace("306893660778", "0");
    let wan = scrape(&mut source).unwrap().wan.unwrap();
    assert_eq!(
        (wan.rx_bytes, wan.width),
        (1_263_357_546, CounterWidth::Bits32)
    );
    // FRITZ!OS before 7: no 64-bit fields at all.
    *body.lock().unwrap() = ADDON
        .lines()
        .filter(|l| !l.contains("TotalBytesSent64") && !l.contains("Received64"))
        .collect();
    assert_eq!(
        scrape(&mut source).unwrap().wan.unwrap().width,
        CounterWidth::Bits32
    );
    assert!(
        mock.requests().iter().all(|r| !r.contains(PASSWORD)),
        "Digest never sends the password"
    );
}

#[test]
fn fritzbox_wrong_password_and_broken_answers() {
    let body = Arc::new(Mutex::new(ADDON.to_owned()));
    let mock = MockHttp::start(tr064(body.clone()));
    let wrong = "Wrong-fritz-99";
    let e = scrape(&mut fritzbox(mock.port(), wrong)).unwrap_err();
    assert_eq!(e.stage(), "auth", "{e}");
    assert!(
        e.to_string().contains("option username") && e.to_string().contains("7.24"),
        "{e}"
    );
    assert!(!format!("{e} {e:?}").contains(wrong));

    *body.lock().unwrap() = ADDON[..ADDON.len() / 2].to_owned();
    assert_eq!(
        scrape(&mut fritzbox(mock.port(), PASSWORD))
            .unwrap_err()
            .stage(),
        "parse"
    );
    *body.lock().unwrap() = "<html>not soap</html>".into();
    assert_eq!(
        scrape(&mut fritzbox(mock.port(), PASSWORD))
            .unwrap_err()
            .stage(),
        "parse"
    );

    for reply in [
        Reply::hang(),
        Reply::trickle(ADDON, Duration::from_millis(200)),
    ] {
        let reply = Mutex::new(Some(reply));
        let m = MockHttp::start(move |_| reply.lock().unwrap().take().unwrap_or_else(Reply::close));
        let e = scrape(&mut fritzbox(m.port(), PASSWORD)).unwrap_err();
        assert_eq!(e.stage(), "timeout", "{e}");
    }
    let e = scrape(&mut fritzbox(mock::closed_port(), PASSWORD)).unwrap_err();
    assert_eq!(e.stage(), "connect", "{e}");
}

#[test]
fn fritzbox_upnp_auth_faults_are_auth_errors() {
    let mock = MockHttp::start(|_| fault(606, "Action Not Authorized"));
    let e = scrape(&mut fritzbox(mock.port(), PASSWORD)).unwrap_err();
    assert_eq!(e.stage(), "auth", "{e}");
}
