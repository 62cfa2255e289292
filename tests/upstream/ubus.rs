#![cfg(feature = "upstream")]
//! The `ubus` source against a mock of rpcd behind uhttpd-mod-ubus on
//! 127.0.0.1: JSON-RPC envelopes as uhttpd and rpcd write them (`result`
//! with a ubus status, the short `[code]` form, `error` −32002), sessions
//! reused and expiring, the WAN's l3_device found, cached and found again,
//! `option device`, a wrong password, an ACL that denies, and broken or
//! slow answers.

use crate::mock;

use mock::{MockHttp, MockRequest, Reply};
use netmeter::account::CounterWidth;
use netmeter::clock::Moment;
use netmeter::config::Secret;
use netmeter::config::upstream::{UpstreamConfig, UpstreamKind};
use netmeter::upstream::account::UpstreamAccounts;
use netmeter::upstream::sources::{Deadline, Reading, ScrapeError, Source, source_for};
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const PASSWORD: &str = "s3cret-Ubus-pw";

/// How rpcd refuses a wrong password.
#[derive(Clone, Copy, Default)]
enum LoginRefusal {
    /// rpcd's UBUS_STATUS_PERMISSION_DENIED: `"result":[6]`.
    #[default]
    PermissionDenied,
    /// uhttpd's "Access denied" (the unauthenticated ACL lacks session login).
    AccessDenied,
}

/// rpcd's and netifd's state.
#[derive(Default)]
struct Rpcd {
    session: Option<String>,
    logins: u32,
    refusal: LoginRefusal,
    /// The WAN's l3_device while up; None: wan is down.
    l3_device: Option<&'static str>,
    rx: u64,
    deny_device_status: bool,
    /// procd's uptime in `system info`; None: the ACL does not grant it.
    uptime: Option<u64>,
}

fn json_reply(body: Value) -> Reply {
    Reply::ok("application/json", body.to_string())
}

fn result(id: &Value, result: Value) -> Reply {
    json_reply(json!({"jsonrpc": "2.0", "id": id, "result": result}))
}

fn access_denied(id: &Value) -> Reply {
    json_reply(json!({"jsonrpc": "2.0", "id": id,
        "error": {"code": -32002, "message": "Access denied"}}))
}

fn device_status(rx: u64) -> Value {
    json!([0, {"external": false, "present": true, "type": "Network device",
        "up": true, "carrier": true, "devtype": "ppp", "mtu": 1492,
        "statistics": {"collisions": 0, "rx_frame_errors": 0, "tx_compressed": 0,
            "multicast": 0, "rx_length_errors": 0, "tx_dropped": 0, "rx_bytes": rx,
            "rx_missed_errors": 0, "tx_errors": 0, "rx_packets": 123, "tx_packets": 45,
            "rx_errors": 0, "tx_bytes": rx / 10, "rx_dropped": 0}}])
}

fn rpcd(state: Arc<Mutex<Rpcd>>) -> impl Fn(&MockRequest) -> Reply + Send + Sync + 'static {
    move |req| {
        assert_eq!((req.method.as_str(), req.path.as_str()), ("POST", "/ubus"));
        assert_eq!(req.header("content-type"), Some("application/json"));
        let call: Value = serde_json::from_str(&req.body_text()).unwrap();
        assert_eq!(
            (&call["jsonrpc"], &call["method"]),
            (&json!("2.0"), &json!("call"))
        );
        let id = &call["id"];
        let p = &call["params"];
        let mut s = state.lock().unwrap();
        match (p[1].as_str().unwrap(), p[2].as_str().unwrap()) {
            ("session", "login") => {
                assert_eq!(p[0], "00000000000000000000000000000000");
                if p[3]["username"] != "root" || p[3]["password"] != PASSWORD {
                    return match s.refusal {
                        LoginRefusal::PermissionDenied => result(id, json!([6])),
                        LoginRefusal::AccessDenied => access_denied(id),
                    };
                }
                s.logins += 1;
                let sid = format!("{:032x}", 0x5e55_0000u64 + u64::from(s.logins));
                s.session = Some(sid.clone());
                result(
                    id,
                    json!([0, {"ubus_rpc_session": sid, "timeout": 300, "expires": 299,
                    "acls": {"access-group": {"netmeter": ["read"]},
                        "ubus": {"network.device": ["status"], "network.interface.wan": ["status"]}},
                    "data": {"username": "root"}}]),
                )
            }
            // uhttpd checks the session before rpcd or netifd see the call.
            _ if s.session.as_deref() != p[0].as_str() => access_denied(id),
            ("network.interface.wan", "status") => match s.l3_device {
                Some(l3) => result(
                    id,
                    json!([0, {"up": true, "pending": false, "available": true, "uptime": 86400,
                    "l3_device": l3, "proto": "pppoe", "device": "wan",
                    "ipv4-address": [{"address": "100.64.1.2", "mask": 32}], "data": {}}]),
                ),
                None => result(
                    id,
                    json!([0, {"up": false, "pending": true, "available": true,
                    "proto": "pppoe", "device": "wan", "data": {}}]),
                ),
            },
            ("system", "info") => match s.uptime {
                Some(uptime) => result(
                    id,
                    json!([0, {"localtime": 1_795_000_000, "uptime": uptime,
                    "load": [2048, 1024, 0], "memory": {"total": 129_000_000,
                    "free": 61_000_000, "shared": 100_000, "buffered": 5_000_000},
                    "swap": {"total": 0, "free": 0}}]),
                ),
                None => access_denied(id),
            },
            ("network.device", "status") if s.deny_device_status => access_denied(id),
            ("network.device", "status") => {
                let name = p[3]["name"].as_str().unwrap();
                let known = ["wan", "br-lan"].contains(&name) || Some(name) == s.l3_device;
                if !known {
                    return result(id, json!([2])); // netifd: UBUS_STATUS_INVALID_ARGUMENT
                }
                result(id, device_status(s.rx))
            }
            other => panic!("unexpected call {other:?}"),
        }
    }
}

fn start(state: Rpcd) -> (Arc<Mutex<Rpcd>>, MockHttp) {
    let state = Arc::new(Mutex::new(state));
    let mock = MockHttp::start(rpcd(state.clone()));
    (state, mock)
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

/// (object, method, args) of every call the mock saw.
fn calls(mock: &MockHttp) -> Vec<(String, String, Value)> {
    mock.requests()
        .iter()
        .map(|r| {
            let v: Value = serde_json::from_str(&r.body_text()).unwrap();
            let p = &v["params"];
            (
                p[1].as_str().unwrap().to_owned(),
                p[2].as_str().unwrap().to_owned(),
                p[3].clone(),
            )
        })
        .collect()
}

fn count(mock: &MockHttp, object: &str) -> usize {
    calls(mock).iter().filter(|(o, _, _)| o == object).count()
}

#[test]
fn one_login_and_one_discovery_serve_many_scrapes() {
    let (state, mock) = start(Rpcd {
        l3_device: Some("pppoe-wan"),
        rx: 81_234_567_890,
        ..Rpcd::default()
    });
    let mut source = source_for(&config(mock.port(), PASSWORD)).unwrap();
    let mut readings = Vec::new();
    for _ in 0..3 {
        readings.push(scrape(&mut source).unwrap());
        state.lock().unwrap().rx += 1_000;
    }
    assert_eq!(state.lock().unwrap().logins, 1, "the session is reused");
    assert_eq!(
        count(&mock, "network.interface.wan"),
        1,
        "l3_device is kept"
    );
    let wan = readings[0].wan.unwrap();
    assert_eq!(
        (wan.rx_bytes, wan.tx_bytes),
        (81_234_567_890, 8_123_456_789)
    );
    assert_eq!(wan.width, CounterWidth::Bits64);
    assert_eq!(readings[2].wan.unwrap().rx_bytes, 81_234_569_890);
    let devices: Vec<Value> = calls(&mock)
        .into_iter()
        .filter(|(o, _, _)| o == "network.device")
        .map(|(_, _, args)| args)
        .collect();
    assert_eq!(devices, vec![json!({"name": "pppoe-wan"}); 3]);

    let requests = mock.requests();
    let with_password: Vec<_> = requests.iter().filter(|r| r.contains(PASSWORD)).collect();
    assert_eq!(
        with_password.len(),
        1,
        "the password goes in the login only"
    );
    assert!(
        with_password[0]
            .body_text()
            .contains(r#""session","login""#)
    );
    assert!(!format!("{readings:?}").contains(PASSWORD));
}

/// Scrapes once per `(uptime, rx)` a minute apart; the WAN's rx total.
fn count_through(
    state: &Arc<Mutex<Rpcd>>,
    port: u16,
    steps: &[(Option<u64>, u64)],
) -> UpstreamAccounts {
    let mut source = source_for(&config(port, PASSWORD)).unwrap();
    let mut accounts = UpstreamAccounts::default();
    for (step, &(uptime, rx)) in steps.iter().enumerate() {
        {
            let mut s = state.lock().unwrap();
            (s.uptime, s.rx) = (uptime, rx);
        }
        let reading = scrape(&mut source).unwrap();
        assert_eq!(reading.uptime_secs, uptime);
        let now = Moment {
            monotonic_ms: step as u64 * 60_000,
            unix_secs: 1_795_000_000 + step as u64 * 60,
        };
        accounts.ingest("owrt", "ubus", now, &reading, None);
    }
    accounts
}

#[test]
fn a_reboot_told_by_system_info_uptime_adds_only_what_came_after() {
    let (state, mock) = start(Rpcd {
        l3_device: Some("pppoe-wan"),
        ..Rpcd::default()
    });
    let gib3 = 3 << 30;
    let accounts = count_through(
        &state,
        mock.port(),
        &[
            (Some(7_200), gib3),
            (Some(7_260), gib3 + 1_000),
            (Some(50), 400),
        ],
    );
    let source = accounts.get("owrt").unwrap();
    assert_eq!(source.wan.as_ref().unwrap().rx_bytes(), 1_000 + 400);
    let reset = source.last_reset.clone().expect("the reboot is recorded");
    assert_eq!(reset.reason.name(), "uptime");
    assert!(
        reset.detail.contains("from 7260 s to 50 s"),
        "{}",
        reset.detail
    );
}

#[test]
fn without_the_system_info_grant_a_reboot_is_told_by_every_counter_falling() {
    let (state, mock) = start(Rpcd {
        l3_device: Some("pppoe-wan"),
        ..Rpcd::default()
    });
    let gib3 = 3 << 30;
    let accounts = count_through(
        &state,
        mock.port(),
        &[(None, gib3), (None, gib3 + 1_000), (None, 400)],
    );
    let source = accounts.get("owrt").unwrap();
    assert_eq!(source.wan.as_ref().unwrap().rx_bytes(), 1_000 + 400);
    assert_eq!(
        source.last_reset.clone().unwrap().reason.name(),
        "all_counters_fell"
    );
    assert_eq!(
        state.lock().unwrap().logins,
        1,
        "a denied system info costs no login"
    );
}

#[test]
fn an_expired_session_means_one_new_login_within_the_same_scrape() {
    let (state, mock) = start(Rpcd {
        l3_device: Some("pppoe-wan"),
        ..Rpcd::default()
    });
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
    // 64-bit counters: past 4 GiB without a wrap; the reboot counts from zero.
    assert_eq!(wan.rx_bytes(), 1_000_000_000 + 900);
    let with_password = mock
        .requests()
        .iter()
        .filter(|r| r.contains(PASSWORD))
        .count();
    assert_eq!(with_password, 2, "only the two logins carry the password");
}

#[test]
fn the_wan_device_is_found_again_when_wan_was_down_or_the_device_went_away() {
    let (state, mock) = start(Rpcd {
        rx: 7,
        ..Rpcd::default()
    });
    let mut source = source_for(&config(mock.port(), PASSWORD)).unwrap();
    let e = scrape(&mut source).unwrap_err();
    assert_eq!(e.stage(), "protocol");
    assert!(e.to_string().contains("wan is down"), "{e}");

    state.lock().unwrap().l3_device = Some("pppoe-wan");
    assert_eq!(scrape(&mut source).unwrap().wan.unwrap().rx_bytes, 7);

    // wan reconfigured (now DHCP on its port): pppoe-wan is gone.
    state.lock().unwrap().l3_device = Some("wan");
    let e = scrape(&mut source).unwrap_err();
    assert!(e.to_string().contains("no such device"), "{e}");
    assert_eq!(scrape(&mut source).unwrap().wan.unwrap().rx_bytes, 7);
    assert_eq!(count(&mock, "network.interface.wan"), 3);
    let last = calls(&mock)
        .into_iter()
        .rfind(|(o, _, _)| o == "network.device")
        .unwrap();
    assert_eq!(last.2, json!({"name": "wan"}));
    assert_eq!(state.lock().unwrap().logins, 1);
}

#[test]
fn option_device_overrides_discovery_and_interfaces_are_read_the_same_way() {
    let (_state, mock) = start(Rpcd {
        l3_device: Some("pppoe-wan"),
        rx: 1000,
        ..Rpcd::default()
    });
    let mut c = config(mock.port(), PASSWORD);
    c.device = Some("wan".into());
    c.interfaces = vec!["br-lan".into()];
    let reading = scrape(&mut source_for(&c).unwrap()).unwrap();
    assert_eq!(reading.wan.unwrap().rx_bytes, 1000);
    assert_eq!(reading.interfaces.len(), 1);
    assert_eq!(reading.interfaces[0].0, "br-lan");
    assert_eq!(reading.interfaces[0].1.width, CounterWidth::Bits64);
    assert_eq!(count(&mock, "network.interface.wan"), 0, "never asked");

    c.device = Some("nope".into());
    let mut source = source_for(&c).unwrap();
    for _ in 0..2 {
        let e = scrape(&mut source).unwrap_err();
        assert_eq!(e.stage(), "protocol");
        assert!(e.to_string().contains("status 2"), "{e}");
    }
    assert_eq!(
        count(&mock, "network.interface.wan"),
        0,
        "a configured device is kept"
    );
}

#[test]
fn a_wrong_password_or_a_denying_acl_is_an_auth_error_that_never_shows_the_password() {
    for refusal in [LoginRefusal::PermissionDenied, LoginRefusal::AccessDenied] {
        let (state, mock) = start(Rpcd {
            refusal,
            l3_device: Some("pppoe-wan"),
            ..Rpcd::default()
        });
        let wrong = "Wrong-pw-Ubus-77";
        let e = scrape(&mut source_for(&config(mock.port(), wrong)).unwrap()).unwrap_err();
        assert!(matches!(e, ScrapeError::Auth(_)), "{e:?}");
        for named in [
            "option username",
            "option password",
            "/usr/share/rpcd/acl.d/",
        ] {
            assert!(e.to_string().contains(named), "{e}");
        }
        let shown = format!("{e} {e:?}");
        assert!(
            !shown.contains(wrong) && !shown.contains(PASSWORD),
            "{shown}"
        );
        assert_eq!(count(&mock, "session"), 1, "one login attempt per scrape");

        state.lock().unwrap().deny_device_status = true;
        let mut source = source_for(&config(mock.port(), PASSWORD)).unwrap();
        let e = scrape(&mut source).unwrap_err();
        assert_eq!(e.stage(), "auth", "{e}");
        assert!(e.to_string().contains("ACL"), "{e}");
        assert!(!format!("{e} {e:?}").contains(PASSWORD));
        assert_eq!(
            state.lock().unwrap().logins,
            1,
            "a fresh session refused is the ACL: no second login"
        );
    }
}

#[test]
fn broken_and_slow_answers() {
    let cases: Vec<(Reply, &str)> = vec![
        (Reply::status(404, &[], "Not Found"), "protocol"),
        (Reply::status(500, &[], ""), "protocol"),
        (
            Reply::ok("application/json", "{\"jsonrpc\":\"2.0\",\"result\":[0,{"),
            "parse",
        ),
        (
            Reply::ok("application/json", r#"{"jsonrpc":"2.0","id":1}"#),
            "parse",
        ),
        (
            Reply::ok(
                "application/json",
                r#"{"jsonrpc":"2.0","id":1,"result":[0,{}]}"#,
            ),
            "parse",
        ),
        (Reply::ok("text/html", "<html>login</html>"), "parse"),
        (
            Reply::ok(
                "application/json",
                r#"{"jsonrpc":"2.0","id":1,"error":{"code":-32700,"message":"Parse error"}}"#,
            ),
            "protocol",
        ),
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
        assert!(!format!("{e} {e:?}").contains(PASSWORD));
    }
    // Logged in, then the device's status cut short, or never sent.
    let login = r#"{"jsonrpc":"2.0","id":1,"result":[0,{"ubus_rpc_session":"0123456789abcdef0123456789abcdef"}]}"#;
    for (status, stage) in [
        (
            Reply::ok(
                "application/json",
                r#"{"jsonrpc":"2.0","id":2,"result":[0,{"statistics":{"rx_bytes":1"#,
            ),
            "parse",
        ),
        (Reply::hang(), "timeout"),
    ] {
        let status = Mutex::new(Some(status));
        let mock = MockHttp::start(move |req| {
            if req.body_text().contains(r#""login""#) {
                Reply::ok("application/json", login)
            } else {
                status.lock().unwrap().take().unwrap_or_else(Reply::close)
            }
        });
        let mut c = config(mock.port(), PASSWORD);
        c.device = Some("wan".into());
        let e = scrape(&mut source_for(&c).unwrap()).unwrap_err();
        assert_eq!(e.stage(), stage, "{e}");
    }
}
