//! The `ubus` source against a mock of rpcd behind uhttpd-mod-ubus on
//! 127.0.0.1: JSON-RPC envelopes as rpcd writes them, sessions that
//! expire, a wrong password, an ACL that denies, and broken answers.

mod mock;

use mock::{MockHttp, MockRequest, Reply};
use netmeter::account::Moment;
use netmeter::account::upstream::UpstreamAccounts;
use netmeter::collect::upstream::{Deadline, Reading, ScrapeError, Source, source_for};
use netmeter::config::{Secret, UpstreamConfig, UpstreamKind};
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const PASSWORD: &str = "s3cret-Ubus-pw";

/// rpcd's state: the valid session, logins seen, the WAN's counters.
#[derive(Default)]
struct Rpcd {
    session: Option<String>,
    logins: u32,
    rx: u64,
    deny_device_status: bool,
}

fn reply(id: &Value, result: Value) -> Reply {
    Reply::ok(
        "application/json",
        json!({"jsonrpc": "2.0", "id": id, "result": result}).to_string(),
    )
}

fn rpcd(state: Arc<Mutex<Rpcd>>) -> impl Fn(&MockRequest) -> Reply + Send + Sync + 'static {
    move |req| {
        assert_eq!((req.method.as_str(), req.path.as_str()), ("POST", "/ubus"));
        let call: Value = serde_json::from_str(&req.body_text()).unwrap();
        let id = &call["id"];
        let p = &call["params"];
        let mut s = state.lock().unwrap();
        match (p[1].as_str().unwrap(), p[2].as_str().unwrap()) {
            ("session", "login") => {
                assert_eq!(p[0], "00000000000000000000000000000000");
                if p[3]["username"] != "root" || p[3]["password"] != PASSWORD {
                    return Reply::ok(
                        "application/json",
                        json!({"jsonrpc": "2.0", "id": id,
                               "error": {"code": -32002, "message": "Access denied"}})
                        .to_string(),
                    );
                }
                s.logins += 1;
                let sid = format!("{:032x}", s.logins);
                s.session = Some(sid.clone());
                reply(
                    id,
                    json!([0, {"ubus_rpc_session": sid, "timeout": 300, "expires": 300,
                    "acls": {}, "data": {"username": "root"}}]),
                )
            }
            _ if s.session.as_deref() != p[0].as_str() => Reply::ok(
                "application/json",
                json!({"jsonrpc": "2.0", "id": id,
                       "error": {"code": -32002, "message": "Access denied"}})
                .to_string(),
            ),
            ("network.interface.wan", "status") => reply(
                id,
                json!([0, {"up": true, "pending": false, "available": true, "uptime": 86400,
                    "l3_device": "pppoe-wan", "proto": "pppoe", "device": "eth1",
                    "ipv4-address": [{"address": "100.64.1.2", "mask": 32}]}]),
            ),
            ("network.device", "status") if s.deny_device_status => reply(id, json!([6])),
            ("network.device", "status") => {
                let name = p[3]["name"].as_str().unwrap();
                if name == "nope" {
                    return reply(id, json!([4]));
                }
                reply(
                    id,
                    json!([0, {"external": false, "present": true, "type": "Network device",
                    "up": true, "carrier": true, "mtu": 1492,
                    "statistics": {"collisions": 0, "rx_frame_errors": 0, "tx_compressed": 0,
                        "multicast": 0, "rx_bytes": s.rx, "tx_bytes": s.rx / 10,
                        "rx_packets": 123, "tx_packets": 45, "rx_errors": 0, "tx_errors": 0}}]),
                )
            }
            other => panic!("unexpected call {other:?}"),
        }
    }
}

fn config(port: u16, password: &str) -> UpstreamConfig {
    let mut c = UpstreamConfig::new("owrt", UpstreamKind::Ubus);
    c.host = Some("127.0.0.1".into());
    c.port = port;
    c.username = Some("root".into());
    c.password = Secret::password(password);
    c
}

fn scrape(s: &mut Box<dyn Source>) -> Result<Reading, ScrapeError> {
    s.scrape(Deadline::after(Duration::from_secs(2)))
}

#[test]
fn logs_in_once_finds_the_wan_device_and_logs_in_again_when_the_session_expires() {
    let state = Arc::new(Mutex::new(Rpcd {
        rx: 4_000_000_000,
        ..Rpcd::default()
    }));
    let mock = MockHttp::start(rpcd(state.clone()));
    let mut source = source_for(&config(mock.port(), PASSWORD)).unwrap();
    let mut accounts = UpstreamAccounts::default();
    for (step, rx) in [4_000_000_000u64, 4_500_000_000, 5_000_000_000, 900]
        .into_iter()
        .enumerate()
    {
        state.lock().unwrap().rx = rx;
        if step == 2 {
            state.lock().unwrap().session = None; // expired after 300 s idle
        }
        let reading = scrape(&mut source).unwrap();
        let now = Moment {
            monotonic_ms: step as u64 * 60_000,
            unix_secs: 1_795_000_000 + step as u64 * 60,
        };
        accounts.ingest("owrt", "ubus", now, &reading, None);
    }
    assert_eq!(
        state.lock().unwrap().logins,
        2,
        "one login, one after the expiry"
    );
    let wan = accounts.get("owrt").unwrap().wan.clone().unwrap();
    // 64-bit counters: beyond 4 GiB without a wrap; the reboot counts from zero.
    assert_eq!(wan.rx_bytes(), 1_000_000_000 + 900);
    let requests = mock.requests();
    let asked: Vec<String> = requests
        .iter()
        .map(|r| {
            serde_json::from_str::<Value>(&r.body_text()).unwrap()["params"][3]["name"].to_string()
        })
        .collect();
    assert!(
        asked.iter().any(|n| n == "\"pppoe-wan\""),
        "the l3_device was read: {asked:?}"
    );
    let with_password: Vec<_> = requests.iter().filter(|r| r.contains(PASSWORD)).collect();
    assert_eq!(
        with_password.len(),
        2,
        "the password goes in the logins only"
    );
    assert!(
        with_password
            .iter()
            .all(|r| r.body_text().contains("\"login\""))
    );
}

#[test]
fn option_device_and_further_interfaces() {
    let state = Arc::new(Mutex::new(Rpcd {
        rx: 1000,
        ..Rpcd::default()
    }));
    let mock = MockHttp::start(rpcd(state));
    let mut c = config(mock.port(), PASSWORD);
    c.device = Some("eth1".into());
    c.interfaces = vec!["br-lan".into()];
    let reading = scrape(&mut source_for(&c).unwrap()).unwrap();
    assert_eq!(reading.wan.unwrap().rx_bytes, 1000);
    assert_eq!(reading.interfaces[0].0, "br-lan");
    let calls: Vec<Value> = mock
        .requests()
        .iter()
        .map(|r| serde_json::from_str::<Value>(&r.body_text()).unwrap()["params"][1].clone())
        .collect();
    assert!(
        !calls.contains(&json!("network.interface.wan")),
        "{calls:?}"
    );
    c.device = Some("nope".into());
    let e = scrape(&mut source_for(&c).unwrap()).unwrap_err();
    assert!(e.to_string().contains("status 4 (not found)"), "{e}");
}

#[test]
fn a_wrong_password_or_a_denying_acl_is_an_auth_error_that_never_shows_the_password() {
    let state = Arc::new(Mutex::new(Rpcd::default()));
    let mock = MockHttp::start(rpcd(state.clone()));
    let wrong = "Wrong-pw-Ubus-77";
    let e = scrape(&mut source_for(&config(mock.port(), wrong)).unwrap()).unwrap_err();
    assert_eq!(e.stage(), "auth", "{e}");
    assert!(e.to_string().contains("option password"), "{e}");
    let shown = format!("{e} {e:?}");
    assert!(
        !shown.contains(wrong) && !shown.contains(PASSWORD),
        "{shown}"
    );

    state.lock().unwrap().deny_device_status = true;
    let e = scrape(&mut source_for(&config(mock.port(), PASSWORD)).unwrap()).unwrap_err();
    assert_eq!(e.stage(), "auth", "{e}");
    assert!(e.to_string().contains("ACL"), "{e}");
}

#[test]
fn broken_and_slow_answers() {
    let cases: Vec<(Reply, &str)> = vec![
        (Reply::status(404, &[], "Not Found"), "protocol"),
        (
            Reply::ok("application/json", "{\"jsonrpc\":\"2.0\",\"result\":[0,{"),
            "parse",
        ),
        (Reply::ok("text/html", "<html>login</html>"), "parse"),
        (Reply::hang(), "timeout"),
        (
            Reply::trickle(
                r#"{"jsonrpc":"2.0","id":1,"result":[0,{"ubus_rpc_session":"x"}]}"#,
                Duration::from_millis(200),
            ),
            "timeout",
        ),
    ];
    for (reply, stage) in cases {
        let reply = Mutex::new(Some(reply));
        let mock =
            MockHttp::start(move |_| reply.lock().unwrap().take().unwrap_or_else(Reply::close));
        let e = scrape(&mut source_for(&config(mock.port(), PASSWORD)).unwrap()).unwrap_err();
        assert_eq!(e.stage(), stage, "{e}");
        assert!(!format!("{e:?}").contains(PASSWORD));
    }
}
