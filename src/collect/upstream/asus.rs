//! `asus`: ASUS stock firmware and Asuswrt-Merlin, through the web UI's own
//! API (the same calls as the ASUS Router app): a token login, the
//! `netdev` counters, and Traffic Analyzer's per-device bytes when on.

use std::time::{Duration, Instant};

use serde_json::Value;

use super::http::{self, Request, Response};
use super::{Counters, Deadline, DeviceReading, Reading, ScrapeError, Source};
use crate::collect::links::CounterWidth;
use crate::config::{Secret, UpstreamConfig};

/// The router answers its app's user agent; a browser's gets other pages.
const USER_AGENT: &str = "asusrouter--DUTUtil-";
/// Traffic Analyzer off: ask again after this long.
const TRAFFIC_RETRY: Duration = Duration::from_secs(3600);

/// What a login answered.
#[derive(Debug, PartialEq)]
pub enum Login {
    Token(String),
    /// `error_status` and, for a lockout, `remaining_lock_time`.
    Refused(u64, Option<u64>),
}

/// A JSON number or a number in a string (the firmware writes both).
fn number(v: &Value) -> Option<u64> {
    v.as_u64().or_else(|| v.as_str()?.trim().parse().ok())
}

/// The login reply: `{"asus_token":"…"}` or `{"error_status":"3"}`.
pub fn parse_login(body: &str) -> Result<Login, ScrapeError> {
    let reply: Value = serde_json::from_str(body.trim())
        .map_err(|_| ScrapeError::Parse("the login answer is not the ASUS API's JSON".into()))?;
    if let Some(token) = reply["asus_token"].as_str().filter(|t| !t.is_empty()) {
        if token.len() > 256 || !token.bytes().all(|b| b.is_ascii_graphic() && b != b';') {
            return Err(ScrapeError::Parse(
                "the login answer's token is malformed".into(),
            ));
        }
        return Ok(Login::Token(token.to_owned()));
    }
    match number(&reply["error_status"]) {
        Some(code) => Ok(Login::Refused(code, number(&reply["remaining_lock_time"]))),
        None => Err(ScrapeError::Parse(
            "the login answer has neither asus_token nor error_status".into(),
        )),
    }
}

/// Whether an answer means the token is no longer valid: a JSON
/// `error_status` (8: logged out), or the login page instead of data.
pub fn rejected(response: &Response) -> bool {
    if matches!(response.status, 401 | 403) {
        return true;
    }
    let body = String::from_utf8_lossy(&response.body);
    body.contains("error_status") || body.contains("Main_Login.asp") || body.contains("login.cgi")
}

/// `netdev(appobj)`: hex byte counters, `INTERNET_rx`, `WIRED_tx`, ….
/// Keys repeat on some firmware; the last one wins.
pub fn parse_netdev(body: &str) -> Result<Reading, ScrapeError> {
    let reply: Value = serde_json::from_str(body.trim())
        .map_err(|e| ScrapeError::Parse(format!("the netdev answer is not JSON: {e}")))?;
    let netdev = reply["netdev"]
        .as_object()
        .ok_or_else(|| ScrapeError::Parse("the answer has no netdev object".into()))?;
    let mut reading = Reading::default();
    let mut interfaces: Vec<(String, [Option<u64>; 2])> = Vec::new();
    for (key, value) in netdev {
        let Some((name, direction)) = key.rsplit_once('_') else {
            continue;
        };
        let at = match direction {
            "rx" => 0,
            "tx" => 1,
            _ => continue,
        };
        let text = value.as_str().unwrap_or("");
        let digits = text
            .trim()
            .strip_prefix("0x")
            .or_else(|| text.trim().strip_prefix("0X"))
            .unwrap_or(text.trim());
        let bytes = u64::from_str_radix(digits, 16)
            .map_err(|_| ScrapeError::Parse(format!("netdev {key} is not a hex number")))?;
        match interfaces.iter().position(|(n, _)| n == name) {
            Some(i) => interfaces[i].1[at] = Some(bytes),
            None if interfaces.len() < crate::account::upstream::MAX_INTERFACES_PER_SOURCE => {
                let mut slot = [None; 2];
                slot[at] = Some(bytes);
                interfaces.push((name.to_owned(), slot));
            }
            None => {}
        }
    }
    for (name, [rx, tx]) in interfaces {
        let (Some(rx), Some(tx)) = (rx, tx) else {
            continue;
        };
        let counters = Counters {
            rx_bytes: rx,
            tx_bytes: tx,
            width: CounterWidth::Bits64,
        };
        if name == "INTERNET" {
            reading.wan = Some(counters);
        } else {
            reading.interfaces.push((name, counters));
        }
    }
    if reading.wan.is_none() && reading.interfaces.is_empty() {
        return Err(ScrapeError::Parse(
            "netdev has no rx/tx pairs: is this an ASUS router?".into(),
        ));
    }
    Ok(reading)
}

/// Traffic Analyzer's `array_traffic = [["MAC","tx","rx"],…];`: what each
/// device sent and received. None when the page has no such array (the
/// analyzer is off).
pub fn parse_traffic(body: &str) -> Option<Vec<DeviceReading>> {
    let start = body.find("array_traffic")?;
    let rest = &body[start..];
    let open = rest.find('[')?;
    let close = rest.find("];").map(|c| c + 1)?;
    let array: Value = serde_json::from_str(rest.get(open..close)?).ok()?;
    let rows = array.as_array()?;
    Some(
        rows.iter()
            .filter_map(|row| {
                let mac = crate::mac::parse_mac(row.get(0)?.as_str()?)?;
                Some(DeviceReading {
                    mac,
                    ip: None,
                    hostname: None,
                    rx_bytes: number(row.get(2)?)?,
                    tx_bytes: number(row.get(1)?)?,
                    width: CounterWidth::Bits64,
                })
            })
            .take(crate::account::upstream::MAX_DEVICES_PER_SOURCE)
            .collect(),
    )
}

/// The `asus` source.
pub struct Asus {
    host: String,
    port: u16,
    username: String,
    password: Option<Secret>,
    token: Option<String>,
    /// When to ask Traffic Analyzer again after it was off.
    traffic_after: Option<Instant>,
}

impl Asus {
    pub fn new(config: &UpstreamConfig, password: Option<Secret>) -> Self {
        Asus {
            host: config.host.clone().unwrap_or_default(),
            port: config.port,
            username: config.username.clone().unwrap_or_default(),
            password,
            token: None,
            traffic_after: None,
        }
    }

    fn login(&mut self, deadline: Deadline) -> Result<String, ScrapeError> {
        let password = self.password.as_ref().map(Secret::expose).unwrap_or("");
        let credentials = http::base64(format!("{}:{password}", self.username).as_bytes());
        let body = format!("login_authorization={credentials}");
        let request = Request::post("/login.cgi", body.as_bytes())
            .header("User-Agent", USER_AGENT)
            .header("Content-Type", "application/x-www-form-urlencoded");
        let response = http::send(&self.host, self.port, &request, deadline)?;
        if response.status != 200 {
            return Err(ScrapeError::Protocol(format!(
                "POST /login.cgi answered HTTP {}",
                response.status
            )));
        }
        let check = "check option username and option password";
        match parse_login(response.text()?)? {
            Login::Token(token) => Ok(token),
            Login::Refused(3, _) => Err(ScrapeError::WrongCredentials(format!(
                "the router says the credentials of '{}' are wrong (error_status 3)",
                self.username
            ))),
            Login::Refused(7, lock) => Err(ScrapeError::LockedOut {
                seconds: lock.unwrap_or(300).clamp(1, 86_400),
                detail: format!("too many failed logins (error_status 7): {check}"),
            }),
            Login::Refused(10, _) => Err(ScrapeError::Auth(
                "the router asks for a captcha (error_status 10): log in once in a browser".into(),
            )),
            Login::Refused(code, _) => Err(ScrapeError::Auth(format!(
                "the router refused the login (error_status {code}): {check}"
            ))),
        }
    }

    /// A request with the session's token, logging in (again) once when
    /// the router has forgotten it.
    fn ask(&mut self, request: Request, deadline: Deadline) -> Result<Response, ScrapeError> {
        for attempt in 0..2 {
            let token = match self.token.clone() {
                Some(t) => t,
                None => {
                    let t = self.login(deadline)?;
                    self.token = Some(t.clone());
                    t
                }
            };
            let request = request
                .clone()
                .header("User-Agent", USER_AGENT)
                .header("Cookie", format!("asus_token={token}"));
            let response = http::send(&self.host, self.port, &request, deadline)?;
            if !rejected(&response) {
                return Ok(response);
            }
            self.token = None;
            if attempt == 1 {
                return Err(ScrapeError::Auth(
                    "the router refuses a fresh token: another app or browser may have logged \
                     in meanwhile (ASUS allows one web login at a time)"
                        .into(),
                ));
            }
        }
        unreachable!("the loop returns on its second attempt")
    }
}

impl Source for Asus {
    fn scrape(&mut self, deadline: Deadline) -> Result<Reading, ScrapeError> {
        let body = b"hook=netdev(appobj);";
        let request = Request::post("/appGet.cgi", body)
            .header("Content-Type", "application/x-www-form-urlencoded");
        let response = self.ask(request, deadline)?;
        if response.status != 200 {
            return Err(ScrapeError::Protocol(format!(
                "POST /appGet.cgi answered HTTP {}",
                response.status
            )));
        }
        let mut reading = parse_netdev(response.text()?)?;
        if self.traffic_after.is_none_or(|t| Instant::now() >= t) {
            let response = self.ask(Request::get("/getTraffic.asp"), deadline)?;
            let devices = match response.status {
                200 => parse_traffic(&String::from_utf8_lossy(&response.body)),
                _ => None,
            };
            match devices {
                Some(devices) => {
                    self.traffic_after = None;
                    reading.devices = devices;
                }
                None => self.traffic_after = Some(Instant::now() + TRAFFIC_RETRY),
            }
        }
        Ok(reading)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn login_answers() {
        assert_eq!(
            parse_login(r#"{ "asus_token": "c5cd1ff0b4d54a8bbdd1cb0b1b64f6b5" }"#).unwrap(),
            Login::Token("c5cd1ff0b4d54a8bbdd1cb0b1b64f6b5".into())
        );
        assert_eq!(
            parse_login(r#"{"error_status":"3"}"#).unwrap(),
            Login::Refused(3, None)
        );
        assert_eq!(
            parse_login(r#"{"error_status":7,"remaining_lock_time":"59"}"#).unwrap(),
            Login::Refused(7, Some(59))
        );
        for bad in ["", "<html>", "{}", r#"{"asus_token":"a;b"}"#] {
            assert!(parse_login(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn netdev_hex_counters_with_repeated_keys() {
        let body = r#"{"netdev":{"INTERNET_rx":"0x1","INTERNET_tx":"0x227d6b665",
            "WIRED_rx":"0x10","WIRED_tx":"0x20","BRIDGE_rx":"0xFF","BRIDGE_tx":"ff",
            "WIRELESS0_rx":"0x0","WIRELESS0_tx":"0x0","INTERNET_rx":"0xeb9a134fe","ODD":"x"}}"#;
        let r = parse_netdev(body).unwrap();
        let wan = r.wan.unwrap();
        assert_eq!(
            (wan.rx_bytes, wan.tx_bytes),
            (0xeb9a134fe, 0x227d6b665),
            "the last key wins"
        );
        let names: Vec<_> = r.interfaces.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["BRIDGE", "WIRED", "WIRELESS0"]);
        assert_eq!(r.interfaces[0].1.tx_bytes, 255);
        for bad in [
            r#"{"netdev":{"INTERNET_rx":"0xzz","INTERNET_tx":"0x1"}}"#,
            r#"{"netdev":{}}"#,
            r#"{"other":{}}"#,
            r#"{"netdev":{"INTERNET_rx":"0x"#,
        ] {
            assert_eq!(parse_netdev(bad).unwrap_err().stage(), "parse", "{bad}");
        }
    }

    #[test]
    fn traffic_analyzer_rows() {
        let page = "var router_traffic = [\"1\",\"2\"];\n\
            array_traffic = [[\"AC:89:95:77:9A:E9\",\"996055825\",\"2194849299\"],\
            [\"bad mac\",\"1\",\"2\"],[\"00:11:22:33:44:55\",\"5\"]];\n";
        let devices = parse_traffic(page).unwrap();
        assert_eq!(devices.len(), 1);
        assert_eq!(
            (devices[0].tx_bytes, devices[0].rx_bytes),
            (996_055_825, 2_194_849_299)
        );
        assert_eq!(parse_traffic("<html>no analyzer</html>"), None);
        assert_eq!(parse_traffic("array_traffic = [[1,"), None);
    }
}
