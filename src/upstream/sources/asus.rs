//! `asus`: ASUS stock firmware and Asuswrt-Merlin, through the web UI's own
//! API (the same calls as the ASUS Router app): a token login, the
//! `netdev` counters, and Traffic Analyzer's per-device bytes when on.

use std::time::{Duration, Instant};

use serde_json::Value;

use super::http::{self, Request, Response};
use super::{Counters, Deadline, DeviceReading, Reading, ScrapeError, Source, base64};
use crate::account::CounterWidth;
use crate::config::Secret;
use crate::upstream::UpstreamConfig;

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

/// The firmware starts some answers with a UTF-8 byte order mark.
fn without_bom(body: &str) -> &str {
    body.strip_prefix('\u{feff}').unwrap_or(body).trim()
}

/// The login reply: `{"asus_token":"…"}` or `{"error_status":"3"}`.
pub fn parse_login(body: &str) -> Result<Login, ScrapeError> {
    let reply: Value = serde_json::from_str(without_bom(body))
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

/// Whether an answer means the token is no longer valid: 401/403, a JSON
/// `error_status` (8: logged out), or the login page instead of data.
pub fn rejected(response: &Response) -> bool {
    if matches!(response.status, 401 | 403) {
        return true;
    }
    let body = String::from_utf8_lossy(&response.body);
    body.contains("error_status") || body.contains("Main_Login.asp") || body.contains("login.cgi")
}

/// A netdev counter: `0x` and 1 to 16 hex digits, either case. Without
/// the `0x` it is refused: "1024" could be decimal, and a wrong number
/// is worse than an error.
fn hex(text: &str) -> Option<u64> {
    let digits = text
        .strip_prefix("0x")
        .or_else(|| text.strip_prefix("0X"))?;
    if !(1..=16).contains(&digits.len()) || !digits.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    u64::from_str_radix(digits, 16).ok()
}

/// Interface names as the router writes them (`INTERNET`, `WIRELESS0`):
/// anything else is not an interface name and is skipped.
fn interface_name(name: &str) -> bool {
    (1..=32).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
}

/// `netdev(appobj)`: hex byte counters, as the app API writes them,
/// `{"netdev":{"INTERNET_rx":"0x…","INTERNET_tx":"0x…",…}}` (the web UI's
/// object form, `netdev = { 'INTERNET':{rx:0x…}, … }`, is not read:
/// `appGet.cgi` with this user agent never sends it). A key that repeats counts as its last
/// value. `INTERNET` is the WAN; every other name is an
/// interface, named as the router names it (upper case).
pub fn parse_netdev(body: &str) -> Result<Reading, ScrapeError> {
    let body = without_bom(body);
    let json = serde_json::from_str::<Value>(body);
    // (interface, 0 rx / 1 tx, the value's text), in the answer's order.
    let mut fields: Vec<(&str, usize, &str)> = Vec::new();
    match &json {
        Ok(reply) => {
            let netdev = reply["netdev"]
                .as_object()
                .ok_or_else(|| ScrapeError::Parse("the answer has no netdev object".into()))?;
            // serde_json keeps a repeated key's last value.
            for (key, value) in netdev {
                if let Some((name, direction)) = key.rsplit_once('_')
                    && let Some(at) = ["rx", "tx"].iter().position(|d| *d == direction)
                {
                    fields.push((name, at, value.as_str().unwrap_or("")));
                }
            }
        }
        Err(e) => {
            return Err(ScrapeError::Parse(format!(
                "the netdev answer is not JSON: {e}"
            )));
        }
    }
    let mut interfaces: Vec<(String, [Option<u64>; 2])> = Vec::new();
    for (name, at, text) in fields {
        let bytes = hex(text.trim()).ok_or_else(|| {
            ScrapeError::Parse(format!(
                "netdev {name}_{} is not a 0x hex number",
                ["rx", "tx"][at]
            ))
        })?;
        if !interface_name(name) {
            continue;
        }
        // A repeated name counts as its last value.
        match interfaces.iter().position(|(n, _)| n == name) {
            Some(i) => interfaces[i].1[at] = Some(bytes),
            None if interfaces.len() < crate::upstream::account::MAX_INTERFACES_PER_SOURCE => {
                let mut slot = [None; 2];
                slot[at] = Some(bytes);
                interfaces.push((name.to_owned(), slot));
            }
            None => {}
        }
    }
    let mut reading = Reading::default();
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

/// `uptime()`: `{"uptime":"Thu, 09 Feb 2023 22:05:18 +0800(15411660 secs
/// since boot)"}`, the router's clock then its uptime; None without one.
pub fn parse_uptime(body: &str) -> Option<u64> {
    let reply: Value = serde_json::from_str(without_bom(body)).ok()?;
    let text = reply.get("uptime")?.as_str()?;
    let (_, tail) = text.rsplit_once('(')?;
    let secs = tail.strip_suffix(" secs since boot)")?;
    secs.parse().ok()
}

/// Traffic Analyzer's `array_traffic = [["MAC","tx","rx"],…];`: per device,
/// bytes the device sent (tx, its upload) and received (rx, its download),
/// as ASUS's own pages read them. None when the page has no such array
/// (the analyzer is off: `array_traffic = ;`). The counters are 32-bit:
/// ASUS's own page adds 2^32 when one goes down.
pub fn parse_traffic(body: &str) -> Option<Vec<DeviceReading>> {
    // `var array_traffic = new Array();` comes first; the data is the
    // assignment of an array literal.
    let mut rest = body;
    let array = loop {
        let at = rest.find("array_traffic")?;
        rest = &rest[at + "array_traffic".len()..];
        if let Some(value) = rest.trim_start().strip_prefix('=')
            && value.trim_start().starts_with('[')
        {
            break value.trim_start();
        }
    };
    // Up to the statement's end; `router_traffic` follows.
    let rows: Value = serde_json::from_str(array.get(..array.find("];")? + 1)?).ok()?;
    Some(
        rows.as_array()?
            .iter()
            .filter_map(|row| {
                let mac = row.get(0)?.as_str()?.parse::<crate::mac::Mac>().ok()?;
                Some(DeviceReading {
                    mac,
                    ip: None,
                    hostname: None,
                    rx_bytes: number(row.get(2)?)?,
                    tx_bytes: number(row.get(1)?)?,
                    width: CounterWidth::Bits32,
                })
            })
            .take(crate::upstream::account::MAX_DEVICES_PER_SOURCE)
            .collect(),
    )
}

/// The login form's body, URL-encoded as the browser sends it: the
/// router's form decoder turns a bare `+` of the base64 into a space,
/// and the login would fail as wrong credentials.
fn login_body(username: &str, password: &str) -> String {
    let credentials = base64::encode(format!("{username}:{password}").as_bytes());
    let mut body = String::from("login_authorization=");
    for c in credentials.chars() {
        match c {
            '+' => body.push_str("%2B"),
            '/' => body.push_str("%2F"),
            '=' => body.push_str("%3D"),
            c => body.push(c),
        }
    }
    body
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
        let body = login_body(&self.username, password);
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
            Login::Refused(9, _) => Err(ScrapeError::Auth(
                "another login is active on the router (error_status 9): ASUS allows one web \
                 login at a time; log out of the browser or app"
                    .into(),
            )),
            Login::Refused(10, _) => Err(ScrapeError::Auth(
                "the router asks for a captcha (error_status 10): log in once in a browser".into(),
            )),
            Login::Refused(code, _) => Err(ScrapeError::Auth(format!(
                "the router refused the login (error_status {code}): {check}"
            ))),
        }
    }

    /// One request with the session's token and the app's user agent.
    fn send(
        &self,
        request: &Request,
        token: &str,
        deadline: Deadline,
    ) -> Result<Response, ScrapeError> {
        let request = request
            .clone()
            .header("User-Agent", USER_AGENT)
            .header("Cookie", format!("asus_token={token}"));
        http::send(&self.host, self.port, &request, deadline)
    }

    /// A request with the session's token, logging in (again) once when
    /// the router has forgotten it.
    fn ask(&mut self, request: &Request, deadline: Deadline) -> Result<Response, ScrapeError> {
        let reused = self.token.is_some();
        let token = match self.token.clone() {
            Some(t) => t,
            None => self.login(deadline)?,
        };
        self.token = Some(token.clone());
        let response = self.send(request, &token, deadline)?;
        if !rejected(&response) {
            return Ok(response);
        }
        self.token = None;
        let refused = "the router refuses a fresh token: another app or browser may have \
                       logged in meanwhile (ASUS allows one web login at a time)";
        if !reused {
            return Err(ScrapeError::Auth(refused.into()));
        }
        let token = self.login(deadline)?;
        self.token = Some(token.clone());
        let response = self.send(request, &token, deadline)?;
        if rejected(&response) {
            self.token = None;
            return Err(ScrapeError::Auth(refused.into()));
        }
        Ok(response)
    }

    /// Traffic Analyzer's devices, or None when the page is missing or
    /// has no data. The token was accepted a moment ago, so a refusal here
    /// means the page is not offered: no new login for it.
    fn devices(&mut self, deadline: Deadline) -> Result<Option<Vec<DeviceReading>>, ScrapeError> {
        let Some(token) = self.token.clone() else {
            return Ok(None);
        };
        let response = self.send(&Request::get("/getTraffic.asp"), &token, deadline)?;
        if response.status != 200 || rejected(&response) {
            return Ok(None);
        }
        Ok(parse_traffic(&String::from_utf8_lossy(&response.body)))
    }

    /// The router's uptime (`hook=uptime();`), asked apart from netdev so
    /// a firmware that answers it oddly loses only the uptime; with the
    /// token just accepted, no new login for it.
    fn uptime(&mut self, deadline: Deadline) -> Option<u64> {
        let token = self.token.clone()?;
        let request = Request::post("/appGet.cgi", b"hook=uptime();")
            .header("Content-Type", "application/x-www-form-urlencoded");
        let response = self.send(&request, &token, deadline).ok()?;
        if response.status != 200 || rejected(&response) {
            return None;
        }
        parse_uptime(response.text().ok()?)
    }
}

impl Source for Asus {
    fn scrape(&mut self, deadline: Deadline) -> Result<Reading, ScrapeError> {
        let request = Request::post("/appGet.cgi", b"hook=netdev(appobj);")
            .header("Content-Type", "application/x-www-form-urlencoded");
        let response = self.ask(&request, deadline)?;
        if response.status != 200 {
            return Err(ScrapeError::Protocol(format!(
                "POST /appGet.cgi answered HTTP {}",
                response.status
            )));
        }
        let mut reading = parse_netdev(response.text()?)?;
        if self.traffic_after.is_none_or(|t| Instant::now() >= t) {
            match self.devices(deadline)? {
                Some(devices) => {
                    self.traffic_after = None;
                    reading.devices = devices;
                }
                None => self.traffic_after = Some(Instant::now() + TRAFFIC_RETRY),
            }
        }
        reading.uptime_secs = self.uptime(deadline);
        Ok(reading)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/upstream/asus/");

    fn fixture(name: &str) -> String {
        std::fs::read_to_string(format!("{FIXTURES}{name}")).unwrap()
    }

    #[test]
    fn the_uptime_hook_gives_seconds_since_boot() {
        let answer =
            "{\n\"uptime\":\"Thu, 09 Feb 2023 22:05:18 +0800(15411660 secs since boot)\"\n}\n";
        assert_eq!(parse_uptime(answer), Some(15_411_660));
        for bad in [
            "{}",
            "{\"uptime\":\"Thu, 09 Feb 2023 22:05:18 +0800\"}",
            "{\"uptime\":\"(x secs since boot)\"}",
            "{\"uptime\":\"(15411660 secs since",
            "<html>",
        ] {
            assert_eq!(parse_uptime(bad), None, "{bad}");
        }
    }

    #[test]
    fn the_login_body_is_url_encoded_like_the_browsers() {
        // base64("admin:>>>???") = "YWRtaW46Pj4+Pz8/": a bare + would arrive as a space.
        assert_eq!(
            login_body("admin", ">>>???"),
            "login_authorization=YWRtaW46Pj4%2BPz8%2F"
        );
        assert_eq!(
            login_body("admin", "pw"),
            "login_authorization=YWRtaW46cHc%3D"
        );
    }

    #[test]
    fn login_answers() {
        assert_eq!(
            parse_login(&fixture("login.json")).unwrap(),
            Login::Token("c5cd1ff0b4d54a8bbdd1cb0b1b64f6b5".into())
        );
        assert_eq!(
            parse_login(r#"{"error_status":"3"}"#).unwrap(),
            Login::Refused(3, None)
        );
        assert_eq!(
            parse_login(&fixture("login-locked.json")).unwrap(),
            Login::Refused(7, Some(59))
        );
        assert_eq!(
            parse_login(r#"{"error_status":7,"remaining_lock_time":120}"#).unwrap(),
            Login::Refused(7, Some(120))
        );
        for bad in [
            "",
            "<html>",
            "{}",
            r#"{"asus_token":"a;b"}"#,
            r#"{"asus_token":"#,
        ] {
            assert_eq!(parse_login(bad).unwrap_err().stage(), "parse", "{bad}");
        }
    }

    #[test]
    fn netdev_hex_counters_with_a_repeated_key() {
        let r = parse_netdev(&fixture("netdev.json")).unwrap();
        let wan = r.wan.unwrap();
        // INTERNET_rx comes twice, "0x0" then "0xEB9A134FE": the last wins.
        assert_eq!((wan.rx_bytes, wan.tx_bytes), (0xeb9a134fe, 0x227d6b665));
        assert_eq!(wan.width, CounterWidth::Bits64);
        let names: Vec<_> = r.interfaces.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            ["BRIDGE", "INTERNET1", "WIRED", "WIRELESS0", "WIRELESS1"]
        );
        assert_eq!(r.interfaces[2].1.rx_bytes, 0x1c0ffee12, "beyond 32 bits");
    }

    #[test]
    fn the_web_uis_object_form_is_refused_with_a_parse_error() {
        let e = parse_netdev(&fixture("netdev-object.txt")).unwrap_err();
        assert_eq!(e.stage(), "parse", "{e}");
    }

    #[test]
    fn netdev_hex_is_0x_and_digits_in_either_case() {
        let one = |v: &str| {
            parse_netdev(&format!(
                r#"{{"netdev":{{"INTERNET_rx":"{v}","INTERNET_tx":"0x0"}}}}"#
            ))
            .map(|r| r.wan.unwrap().rx_bytes)
        };
        assert_eq!(one("0xff").unwrap(), 255);
        assert_eq!(one("0XFF").unwrap(), 255);
        assert_eq!(one("0xFfFfFfFfFfFfFfFf").unwrap(), u64::MAX);
        for bad in [
            "ff",
            "1024",
            "0x",
            "0x+f",
            "0x 1",
            "0xg",
            "0x1ffffffffffffffff",
            "",
            "-0x1",
        ] {
            let e = one(bad).unwrap_err();
            assert_eq!(e.stage(), "parse", "{bad}");
            assert!(e.to_string().contains("INTERNET_rx"), "{e}");
        }
        let number = r#"{"netdev":{"INTERNET_rx":16,"INTERNET_tx":"0x0"}}"#;
        assert_eq!(parse_netdev(number).unwrap_err().stage(), "parse");
    }

    #[test]
    fn netdev_refuses_what_is_not_netdev() {
        for bad in [
            r#"{"netdev":{}}"#,
            r#"{"other":{}}"#,
            r#"{"netdev":{"INTERNET_rx":"0x1"#,
            r#"{"netdev":{"INTERNET_rx":"0x1"}}"#,
            "netdev = { 'INTERNET':{rx:0x1,tx:0x2",
            "netdev = { INTERNET:{rx:0x1,tx:0x2} }",
            "netdev = { 'INTERNET':{rx:0x1;tx:0x2} }",
            "<html><script>location.href='Main_Login.asp'</script></html>",
            "",
        ] {
            assert_eq!(parse_netdev(bad).unwrap_err().stage(), "parse", "{bad}");
        }
        // Names that are no interface names are skipped, not reported.
        let odd =
            r#"{"netdev":{"INTERNET_rx":"0x1","INTERNET_tx":"0x2","a b_rx":"0x1","a b_tx":"0x1"}}"#;
        assert!(parse_netdev(odd).unwrap().interfaces.is_empty());
    }

    #[test]
    fn traffic_analyzer_rows_are_the_devices_view() {
        let devices = parse_traffic(&fixture("getTraffic.asp")).unwrap();
        assert_eq!(devices.len(), 3);
        let first = &devices[0];
        assert_eq!(first.mac, [0xac, 0x89, 0x95, 0x12, 0x34, 0x56]);
        // [mac, tx, rx]: sent by the device (its upload), then received (its download).
        assert_eq!(
            (first.tx_bytes, first.rx_bytes),
            (874_315_520, 3_221_225_472)
        );
        assert_eq!(first.width, CounterWidth::Bits32);
    }

    #[test]
    fn traffic_analyzer_off_or_broken_is_no_devices() {
        assert_eq!(parse_traffic(&fixture("getTraffic-off.asp")), None);
        assert_eq!(parse_traffic("<html>404 Not Found</html>"), None);
        assert_eq!(parse_traffic("array_traffic = [[1,"), None);
        assert_eq!(parse_traffic("array_traffic = "), None);
        assert_eq!(parse_traffic("array_traffic = [];"), Some(vec![]));
        // Rows that are not [MAC, number, number] are skipped.
        let page = r#"array_traffic = [["bad mac","1","2"],["00:11:22:33:44:55","5"],
            ["00:11:22:33:44:66","x","2"],["00:11:22:33:44:77",7,"8"]];"#;
        let devices = parse_traffic(page).unwrap();
        assert_eq!(devices.len(), 1);
        assert_eq!((devices[0].tx_bytes, devices[0].rx_bytes), (7, 8));
    }
}
