//! `ubus`: an OpenWrt router above this one, through rpcd's JSON-RPC over
//! uhttpd-mod-ubus (`POST /ubus`): a session login, then `network.device
//! status` for the WAN device (found from `network.interface.wan`).

use serde_json::{Value, json};

use super::http::{self, Request};
use super::{Counters, Deadline, Reading, ScrapeError, Source};
use crate::account::CounterWidth;
use crate::config::Secret;
use crate::upstream::UpstreamConfig;

/// The session id rpcd takes for a login.
const NO_SESSION: &str = "00000000000000000000000000000000";
/// rpcd's "Access denied": a wrong login, a missing ACL, or an expired session.
const ACCESS_DENIED: i64 = -32002;

/// What one call gave: the data, or why not.
#[derive(Debug, PartialEq)]
pub enum Answer {
    Data(Value),
    /// The session is unknown or expired, or the ACL refuses the call.
    AccessDenied,
    /// A ubus status code other than 0 (e.g. 4 not found, 6 permission denied).
    Status(i64),
}

/// Reads a JSON-RPC reply: `{"result":[0,{…}]}`, `{"result":[code]}` or
/// `{"error":{"code":…}}`.
pub fn parse_answer(body: &str) -> Result<Answer, ScrapeError> {
    let reply: Value = serde_json::from_str(body)
        .map_err(|e| ScrapeError::Parse(format!("not a JSON-RPC answer: {e}")))?;
    if let Some(error) = reply.get("error") {
        return match error.get("code").and_then(Value::as_i64) {
            Some(ACCESS_DENIED) => Ok(Answer::AccessDenied),
            Some(code) => Err(ScrapeError::Protocol(format!(
                "the router's rpcd answered error {code}: {}",
                error.get("message").and_then(Value::as_str).unwrap_or("")
            ))),
            None => Err(ScrapeError::Parse("a JSON-RPC error without a code".into())),
        };
    }
    let result = reply
        .get("result")
        .and_then(Value::as_array)
        .ok_or_else(|| ScrapeError::Parse("a JSON-RPC answer without a result list".into()))?;
    match result.first().and_then(Value::as_i64) {
        Some(0) => Ok(Answer::Data(result.get(1).cloned().unwrap_or(Value::Null))),
        Some(6) => Ok(Answer::AccessDenied),
        Some(code) => Ok(Answer::Status(code)),
        None => Err(ScrapeError::Parse(
            "a JSON-RPC result without a status code".into(),
        )),
    }
}

/// The session id in a login's data.
pub fn session_of(data: &Value) -> Result<String, ScrapeError> {
    data.get("ubus_rpc_session")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty() && s.len() <= 64)
        .map(str::to_owned)
        .ok_or_else(|| ScrapeError::Parse("the login answer has no ubus_rpc_session".into()))
}

/// `statistics.rx_bytes/tx_bytes` of a `network.device status` answer.
pub fn counters_of(data: &Value, device: &str) -> Result<Counters, ScrapeError> {
    let stats = data.get("statistics").ok_or_else(|| {
        ScrapeError::Parse(format!(
            "network.device status of '{device}' has no statistics"
        ))
    })?;
    let field = |name: &str| {
        stats.get(name).and_then(Value::as_u64).ok_or_else(|| {
            ScrapeError::Parse(format!("the statistics of '{device}' have no {name}"))
        })
    };
    Ok(Counters {
        rx_bytes: field("rx_bytes")?,
        tx_bytes: field("tx_bytes")?,
        width: CounterWidth::Bits64,
    })
}

/// The `ubus` source.
pub struct Ubus {
    host: String,
    port: u16,
    path: String,
    username: String,
    password: Option<Secret>,
    /// `option device`, or the wan interface's l3_device once asked.
    device: Option<String>,
    configured_device: bool,
    interfaces: Vec<String>,
    session: Option<String>,
    /// The session was made in this scrape: refused, it is the ACL, not an expiry.
    fresh: bool,
    id: u64,
}

impl Ubus {
    pub fn new(config: &UpstreamConfig, password: Option<Secret>) -> Self {
        Ubus {
            host: config.host.clone().unwrap_or_default(),
            port: config.port,
            path: config.path.clone().unwrap_or_else(|| "/ubus".into()),
            username: config.username.clone().unwrap_or_default(),
            password,
            device: config.device.clone(),
            configured_device: config.device.is_some(),
            interfaces: config.interfaces.clone(),
            session: None,
            fresh: false,
            id: 0,
        }
    }

    fn call(
        &mut self,
        session: &str,
        object: &str,
        method: &str,
        args: Value,
        deadline: Deadline,
    ) -> Result<Answer, ScrapeError> {
        self.id += 1;
        let body = json!({
            "jsonrpc": "2.0",
            "id": self.id,
            "method": "call",
            "params": [session, object, method, args],
        })
        .to_string();
        let request =
            Request::post(&self.path, body.as_bytes()).header("Content-Type", "application/json");
        let response = http::send(&self.host, self.port, &request, deadline)?;
        match response.status {
            200 => parse_answer(response.text()?),
            404 => Err(ScrapeError::Protocol(format!(
                "POST {} answered 404: install uhttpd-mod-ubus on the router, or set option path",
                self.path
            ))),
            status => Err(ScrapeError::Protocol(format!(
                "POST {} answered HTTP {status}",
                self.path
            ))),
        }
    }

    fn login(&mut self, deadline: Deadline) -> Result<String, ScrapeError> {
        let password = self.password.as_ref().map(Secret::expose).unwrap_or("");
        let args = json!({"username": self.username, "password": password});
        let refused = format!(
            "the router's rpcd refused the login of '{}': check option username and option \
             password (a 'config login' in the router's /etc/config/rpcd), and that its ACL \
             in /usr/share/rpcd/acl.d/ lets the user read network.device and \
             network.interface.wan (docs/UPSTREAM.md)",
            self.username
        );
        match self.call(NO_SESSION, "session", "login", args, deadline)? {
            Answer::Data(data) => session_of(&data),
            Answer::AccessDenied => Err(ScrapeError::Auth(refused)),
            Answer::Status(code) => {
                Err(ScrapeError::Auth(format!("{refused} (ubus status {code})")))
            }
        }
    }

    /// One call in the session, logging in (again) once when refused. A
    /// refusal of a session made in this scrape is the ACL: no new login.
    fn call_in_session(
        &mut self,
        object: &str,
        method: &str,
        args: Value,
        deadline: Deadline,
    ) -> Result<Value, ScrapeError> {
        loop {
            let session = match self.session.clone() {
                Some(s) => s,
                None => {
                    let s = self.login(deadline)?;
                    self.session = Some(s.clone());
                    self.fresh = true;
                    s
                }
            };
            match self.call(&session, object, method, args.clone(), deadline)? {
                Answer::Data(data) => return Ok(data),
                Answer::AccessDenied if !self.fresh => self.session = None,
                Answer::AccessDenied => {
                    self.session = None;
                    return Err(ScrapeError::Auth(format!(
                        "the router's rpcd denies {object} {method} to '{}': grant it in the \
                         user's ACL in /usr/share/rpcd/acl.d/ (docs/UPSTREAM.md)",
                        self.username
                    )));
                }
                Answer::Status(code) => {
                    return Err(ScrapeError::Protocol(format!(
                        "ubus {object} {method} answered status {code}{}",
                        match code {
                            // netifd's answer for a device name it does not know
                            2 => " (invalid argument: no such device?)",
                            4 => " (not found)",
                            _ => "",
                        }
                    )));
                }
            }
        }
    }

    /// `system info`'s uptime, when the user's ACL grants it
    /// (docs/UPSTREAM.md); without it reboots are told by the counters.
    fn uptime(&mut self, deadline: Deadline) -> Option<u64> {
        let session = self.session.clone()?;
        match self.call(&session, "system", "info", json!({}), deadline) {
            Ok(Answer::Data(data)) => uptime_of(&data),
            _ => None,
        }
    }

    fn device_counters(
        &mut self,
        device: &str,
        deadline: Deadline,
    ) -> Result<Counters, ScrapeError> {
        let data = self.call_in_session(
            "network.device",
            "status",
            json!({"name": device}),
            deadline,
        )?;
        counters_of(&data, device)
    }
}

/// The router's uptime in a `system info` answer (procd: seconds since boot).
pub fn uptime_of(data: &Value) -> Option<u64> {
    data.get("uptime").and_then(Value::as_u64)
}

/// The WAN's layer-3 device from `network.interface.wan status`:
/// `l3_device`, which netifd writes only while the interface is up
/// (`pppoe-wan` on PPPoE; `device` would be the Ethernet port under it).
pub fn wan_device_of(data: &Value) -> Result<String, ScrapeError> {
    data.get("l3_device")
        .and_then(Value::as_str)
        .filter(|d| !d.is_empty() && d.len() <= 64)
        .map(str::to_owned)
        .ok_or_else(|| {
            ScrapeError::Protocol(
                "network.interface.wan has no l3_device: the router's wan is down, or its \
                 WAN interface has another name (set option device)"
                    .into(),
            )
        })
}

impl Source for Ubus {
    fn scrape(&mut self, deadline: Deadline) -> Result<Reading, ScrapeError> {
        self.fresh = false;
        let device = match self.device.clone() {
            Some(d) => d,
            None => {
                let data =
                    self.call_in_session("network.interface.wan", "status", json!({}), deadline)?;
                let device = wan_device_of(&data)?;
                self.device = Some(device.clone());
                device
            }
        };
        let wan = match self.device_counters(&device, deadline) {
            // The discovered device went away or changed (PPPoE
            // reconnected, wan reconfigured): ask netifd again next time.
            Err(e @ (ScrapeError::Protocol(_) | ScrapeError::Parse(_)))
                if !self.configured_device =>
            {
                self.device = None;
                return Err(e);
            }
            other => other?,
        };
        let mut reading = Reading {
            wan: Some(wan),
            ..Reading::default()
        };
        for name in self.interfaces.clone() {
            let counters = self.device_counters(&name, deadline)?;
            reading.interfaces.push((name, counters));
        }
        reading.uptime_secs = self.uptime(deadline);
        Ok(reading)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_uptime_of_system_info() {
        let info = json!({"localtime": 1795000000, "uptime": 86412, "load": [0, 0, 0],
            "memory": {"total": 128000000, "free": 60000000}});
        assert_eq!(uptime_of(&info), Some(86412));
        assert_eq!(uptime_of(&json!({"uptime": "86412"})), None);
        assert_eq!(uptime_of(&json!({})), None);
    }

    #[test]
    fn answers_in_every_shape() {
        let data = parse_answer(r#"{"jsonrpc":"2.0","id":1,"result":[0,{"a":1}]}"#).unwrap();
        assert_eq!(data, Answer::Data(json!({"a": 1})));
        assert_eq!(
            parse_answer(r#"{"jsonrpc":"2.0","id":1,"result":[0]}"#).unwrap(),
            Answer::Data(Value::Null)
        );
        assert_eq!(
            parse_answer(r#"{"result":[6]}"#).unwrap(),
            Answer::AccessDenied
        );
        assert_eq!(
            parse_answer(r#"{"result":[4]}"#).unwrap(),
            Answer::Status(4)
        );
        let denied =
            r#"{"jsonrpc":"2.0","id":1,"error":{"code":-32002,"message":"Access denied"}}"#;
        assert_eq!(parse_answer(denied).unwrap(), Answer::AccessDenied);
        for bad in [
            "",
            "[]",
            r#"{"result":"x"}"#,
            r#"{"result":[]}"#,
            r#"{"error":{}}"#,
            r#"{"result":[0,{"#,
        ] {
            assert!(parse_answer(bad).is_err(), "{bad}");
        }
        let e = parse_answer(r#"{"error":{"code":-32601,"message":"Method not found"}}"#);
        assert!(e.unwrap_err().to_string().contains("-32601"));
    }

    #[test]
    fn sessions_and_statistics() {
        let login = json!({"ubus_rpc_session": "c1ed6c7b025d0caca723a816fa61b668", "timeout": 300});
        assert_eq!(
            session_of(&login).unwrap(),
            "c1ed6c7b025d0caca723a816fa61b668"
        );
        assert!(session_of(&json!({})).is_err());
        let status = json!({"up": true, "statistics": {"rx_bytes": 81234567890u64, "tx_bytes": 5}});
        let c = counters_of(&status, "eth1").unwrap();
        assert_eq!((c.rx_bytes, c.tx_bytes), (81_234_567_890, 5));
        let e = counters_of(&json!({"statistics": {"rx_bytes": 1}}), "eth1").unwrap_err();
        assert!(e.to_string().contains("tx_bytes"), "{e}");
    }

    const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/upstream/ubus/");

    fn fixture(name: &str) -> Answer {
        parse_answer(&std::fs::read_to_string(format!("{FIXTURES}{name}")).unwrap()).unwrap()
    }

    fn data(name: &str) -> Value {
        match fixture(name) {
            Answer::Data(data) => data,
            other => panic!("{name}: {other:?}"),
        }
    }

    #[test]
    fn rpcd_answers_as_rpcd_writes_them() {
        assert_eq!(
            session_of(&data("login.json")).unwrap(),
            "8f3a1c27d9e04b6a95c2e71f0b4d6a83"
        );
        // A wrong password: the ubus status in the short form.
        assert_eq!(fixture("login-denied.json"), Answer::AccessDenied);
        // An unknown or expired session, or an ACL that does not allow the call.
        assert_eq!(fixture("access-denied.json"), Answer::AccessDenied);
        // netifd for a device name it does not know.
        assert_eq!(fixture("no-such-device.json"), Answer::Status(2));
    }

    #[test]
    fn the_wan_device_is_l3_device_and_only_while_up() {
        assert_eq!(
            wan_device_of(&data("wan-status.json")).unwrap(),
            "pppoe-wan"
        );
        // Down: netifd still names `device` (the Ethernet port under PPPoE),
        // which is not the WAN's counters.
        let e = wan_device_of(&data("wan-down.json")).unwrap_err();
        assert_eq!(e.stage(), "protocol");
        assert!(e.to_string().contains("option device"), "{e}");
        assert!(wan_device_of(&Value::Null).is_err());
        assert!(wan_device_of(&json!({"l3_device": ""})).is_err());
    }

    #[test]
    fn device_statistics_are_64_bit() {
        let c = counters_of(&data("device-status.json"), "pppoe-wan").unwrap();
        assert_eq!((c.rx_bytes, c.tx_bytes), (81_234_567_890, 7_654_321_098));
        assert_eq!(c.width, CounterWidth::Bits64);
        for bad in [
            json!({"present": false}),
            json!({"statistics": {"rx_bytes": "1", "tx_bytes": 2}}),
            json!({"statistics": {"rx_bytes": -1, "tx_bytes": 2}}),
            json!({"statistics": {"rx_bytes": 1.5, "tx_bytes": 2}}),
        ] {
            assert_eq!(
                counters_of(&bad, "wan").unwrap_err().stage(),
                "parse",
                "{bad}"
            );
        }
    }
}
