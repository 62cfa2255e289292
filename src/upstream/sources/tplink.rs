//! `tplink`: per-host byte counters from TP-Link's Traffic Statistics.
//!
//! Three web UI generations: the legacy `userRpm` pages with the
//! credentials in a cookie (`basic`), the same pages behind a login with
//! the password's MD5 and a session token in every path (`md5`), and the
//! TD-W/Archer `cgi` interface (`STAT_ENTRY`). With `option variant auto`
//! the router's start page, fetched without credentials, says which one
//! runs: no credentials are tried against the wrong generation, since
//! every wrong login counts towards the router's lockout.
//!
//! These routers allow one admin session at a time, so every scrape logs
//! out at its end; a logout the time limit cut off is made before the next
//! scrape, or on close.

use crate::mac::Mac;
use std::net::{IpAddr, Ipv4Addr};

use super::http::{self, Request, Response};
use super::{Deadline, DeviceReading, Reading, ScrapeError, Source, base64, md5};
use crate::account::CounterWidth;
use crate::config::Secret;
use crate::config::upstream::{TplinkVariant, UpstreamConfig};

/// Statistics pages followed at most (100 hosts each).
const MAX_PAGES: u32 = 64;
const PER_PAGE: u32 = 100;
/// Items read from one JavaScript array at most: a page's arrays hold a
/// few thousand; more is not a TP-Link page.
const MAX_ITEMS: usize = 100_000;
const STAT_BODY: &[u8] =
    b"[STAT_CFG#0,0,0,0,0,0#0,0,0,0,0,0]0,0\r\n[STAT_ENTRY#0,0,0,0,0,0#0,0,0,0,0,0]1,0\r\n";
const CGI_LOGOUT_BODY: &[u8] = b"[/cgi/logout#0,0,0,0,0,0#0,0,0,0,0,0]0,0\r\n";
/// The legacy UI locks its login after ten failures "for two hours".
const LOCKOUT_SECS: u64 = 2 * 60 * 60;

/// The items of `var NAME = new Array( … );` in a page: strings unquoted,
/// numbers as written. None when the page has no such array, or it is
/// cut off before its `)`.
pub fn js_array(page: &str, name: &str) -> Option<Vec<String>> {
    let needle = format!("var {name}");
    let mut search = page;
    let body = loop {
        let at = search.find(&needle)?;
        let rest = &search[at + needle.len()..];
        let after = rest.trim_start().strip_prefix('=').map(str::trim_start);
        if let Some(body) = after.and_then(|a| a.strip_prefix("new Array(")) {
            break body;
        }
        search = rest;
    };
    let mut items = Vec::new();
    let mut chars = body.chars();
    let mut current = String::new();
    let mut quoted = false;
    while let Some(c) = chars.next() {
        match c {
            '"' => quoted = !quoted,
            '\\' if quoted => current.extend(chars.next()),
            ',' if !quoted => items.push(std::mem::take(&mut current)),
            ')' if !quoted => {
                items.push(current);
                return Some(items);
            }
            c if quoted || !c.is_whitespace() => current.push(c),
            _ => {}
        }
        if items.len() > MAX_ITEMS || current.len() > 4096 {
            return None;
        }
    }
    None
}

/// `AC-89-95-77-9A-E9` (legacy pages) or `ac:89:95:77:9a:e9` (cgi).
fn mac(text: &str) -> Option<Mac> {
    text.parse().ok()
}

fn number(item: Option<&String>) -> Option<u64> {
    item?.parse().ok()
}

/// 32-bit as the firmware counts, unless a value says otherwise.
fn host(mac: Mac, ip: Option<Ipv4Addr>, bytes: u64) -> DeviceReading {
    DeviceReading {
        mac,
        ip: ip.map(IpAddr::V4),
        hostname: None,
        // One total for both directions: shown as received.
        rx_bytes: bytes,
        tx_bytes: 0,
        width: if bytes > u64::from(u32::MAX) {
            CounterWidth::Bits64
        } else {
            CounterWidth::Bits32
        },
    }
}

/// The router's uptime in `StatusRpm.htm`: in `statusPara` the seconds
/// up come just before the firmware version ("3.16.9 Build 150320 …"),
/// at index 4 on the firmware seen. None when the page has no such pair.
pub fn parse_status_uptime(page: &str) -> Option<u64> {
    let para = js_array(page, "statusPara")?;
    let firmware = para.iter().position(|item| item.contains(" Build "))?;
    para.get(firmware.checked_sub(1)?)?.trim().parse().ok()
}

/// The hosts of one `SystemStatisticRpm.htm` page. `statList` holds a row
/// per host (index, "IP", "MAC", total packets, total bytes, then current
/// packets, bytes and flood counters: 13 items, `StatRulePara[5]`), and
/// ends with `0,0`.
pub fn parse_statistics(page: &str) -> Result<Vec<DeviceReading>, ScrapeError> {
    let items = js_array(page, "statList").ok_or_else(|| {
        ScrapeError::Parse(
            "SystemStatisticRpm.htm has no complete statList: is Traffic Statistics on \
             (System Tools → Statistics)?"
                .into(),
        )
    })?;
    let rows = match items.as_slice() {
        [rows @ .., end1, end2] if end1 == "0" && end2 == "0" => rows,
        _ => {
            return Err(ScrapeError::Parse(
                "statList does not end with the firmware's 0,0: the page is cut short".into(),
            ));
        }
    };
    let width = js_array(page, "StatRulePara")
        .and_then(|p| number(p.get(5)))
        .filter(|w| (5..=64).contains(w));
    if let Some(width) = width
        && rows.len() as u64 % width != 0
    {
        return Err(ScrapeError::Parse(format!(
            "statList holds {} items, not whole rows of {width}: the page is cut short",
            rows.len()
        )));
    }
    let mut hosts = Vec::new();
    let mut i = 0;
    while i < rows.len() {
        if let Ok(ip) = rows[i].parse::<Ipv4Addr>() {
            let mac = rows.get(i + 1).and_then(|m| mac(m)).ok_or_else(|| {
                ScrapeError::Parse(format!("statList: no MAC address after {ip}"))
            })?;
            let (Some(_packets), Some(bytes)) = (number(rows.get(i + 2)), number(rows.get(i + 3)))
            else {
                return Err(ScrapeError::Parse(format!(
                    "statList: the packets and bytes of {ip} are not numbers"
                )));
            };
            hosts.push(host(mac, Some(ip), bytes));
            i += 4;
        } else if rows[i].parse::<u64>().is_ok() {
            i += 1;
        } else {
            return Err(ScrapeError::Parse(
                "statList: an item is neither a number nor an IP address".into(),
            ));
        }
    }
    Ok(hosts)
}

/// Pages of statistics, from `PageListPara` (first item), else 1; at most
/// `MAX_PAGES`.
pub fn page_count(page: &str) -> u32 {
    js_array(page, "PageListPara")
        .and_then(|p| p.first()?.parse().ok())
        .unwrap_or(1)
        .clamp(1, MAX_PAGES)
}

/// Host names by MAC from the DHCP clients page: `DHCPDynList` rows of
/// name, MAC, IP, lease time.
pub fn parse_dhcp(page: &str) -> Vec<(Mac, String)> {
    let items = js_array(page, "DHCPDynList").unwrap_or_default();
    items
        .chunks_exact(4)
        .filter_map(|row| {
            let mac = mac(&row[1])?;
            let name: String = row[0]
                .chars()
                .filter(|c| !c.is_control())
                .take(64)
                .collect();
            (!name.trim().is_empty()).then(|| (mac, name.trim().to_owned()))
        })
        .collect()
}

/// The session token in the MD5 login's answer:
/// `window.parent.location.href = "http://HOST/ABCDEFGHIJKLMNOP/userRpm/Index.htm"`.
pub fn login_token(page: &str) -> Option<String> {
    page.match_indices("/userRpm/Index.htm")
        .find_map(|(end, _)| {
            let token = page.get(end.checked_sub(16)?..end)?;
            let before = page[..end - 16].strip_suffix('/')?;
            let host_char = before.chars().next_back()?;
            (token.bytes().all(|b| b.is_ascii_uppercase())
                && (host_char.is_ascii_alphanumeric() || host_char == '.'))
                .then(|| token.to_owned())
        })
}

/// What the legacy UI's login page says (`httpAutErrorArray`): why it is
/// shown, and whether it hashes the password with MD5.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LoginPage {
    /// 0: another admin is logged in; 1: locked after ten failures; 2: the
    /// username or password is incorrect; 3: a plain login form.
    pub error: u32,
    pub md5: bool,
}

pub fn login_page(page: &str) -> Option<LoginPage> {
    let items = js_array(page, "httpAutErrorArray")?;
    Some(LoginPage {
        error: items.first()?.parse().unwrap_or(3),
        md5: items.get(1).is_some_and(|m| m == "1"),
    })
}

/// The error a login page stands for.
fn refused(login: LoginPage) -> ScrapeError {
    match login.error {
        0 => ScrapeError::Auth(
            "someone is logged in to the router's web UI (it allows one admin at a time); \
             netmeter will retry later"
                .into(),
        ),
        1 => ScrapeError::LockedOut {
            seconds: LOCKOUT_SECS,
            detail: "the router locked its web login after ten failed attempts".into(),
        },
        // Not retried: ten of these lock the owner out of the web UI for two hours.
        2 => ScrapeError::WrongCredentials(
            "the router says the username or password is incorrect (option username, option \
             password)"
                .into(),
        ),
        _ => ScrapeError::Auth(
            "the router answered with its login page: check option username, option password \
             and option variant"
                .into(),
        ),
    }
}

/// A TP-Link web UI generation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Generation {
    /// `userRpm` pages, the credentials in a cookie on every request.
    Basic,
    /// `userRpm` pages under a session token from `LoginRpm.htm`; `md5`
    /// when the cookie carries the password's MD5.
    Token { md5: bool },
    /// `POST /cgi?…` with `[STAT_ENTRY…]` bodies.
    Cgi,
}

/// The generation a router's start page, fetched without credentials,
/// belongs to.
pub fn detect(
    status: u16,
    www_authenticate: Option<&str>,
    page: &str,
) -> Result<Generation, ScrapeError> {
    let basic_auth = www_authenticate.is_some_and(|v| {
        v.get(..5)
            .is_some_and(|scheme| scheme.eq_ignore_ascii_case("basic"))
    });
    if status == 401 && basic_auth {
        return Ok(Generation::Basic);
    }
    if page.contains("cgi-bin/luci") || page.contains(";stok=") {
        return Err(ScrapeError::Protocol(
            "this is TP-Link's newer web UI (encrypted login), which the tplink source does \
             not read"
                .into(),
        ));
    }
    if let Some(login) = login_page(page) {
        return Ok(if page.contains("LoginRpm.htm") {
            Generation::Token { md5: login.md5 }
        } else {
            Generation::Basic
        });
    }
    if ["/cgi?", "$.act(", "lib.js", "mainFrame.htm"]
        .iter()
        .any(|m| page.contains(m))
    {
        return Ok(Generation::Cgi);
    }
    if page.contains("userRpm/") || page.contains("pcPassword") {
        return Ok(Generation::Basic);
    }
    Err(ScrapeError::Protocol(format!(
        "the start page (HTTP {status}) is not one of TP-Link's web UIs netmeter knows: set \
         option variant (basic, md5 or cgi)"
    )))
}

/// The `cgi` interface's STAT_ENTRY sections; only valid when the answer
/// ends with `[error]0`.
pub fn parse_cgi(body: &str) -> Result<Vec<DeviceReading>, ScrapeError> {
    let last = body.lines().rev().find(|l| !l.trim().is_empty());
    match last.and_then(|l| l.trim().strip_prefix("[error]")) {
        Some("0") => {}
        Some(code) => {
            return Err(ScrapeError::Protocol(format!(
                "the router's cgi answered error {}",
                code.chars().take(12).collect::<String>()
            )));
        }
        None => {
            return Err(ScrapeError::Parse(
                "the cgi answer does not end with [error]".into(),
            ));
        }
    }
    let mut hosts = Vec::new();
    let mut section: (Option<u32>, Option<Mac>, Option<u64>) = (None, None, None);
    for line in body.lines().map(str::trim) {
        if line.starts_with('[') {
            if let (ip, Some(mac), Some(bytes)) = std::mem::take(&mut section) {
                hosts.push(host(mac, ip.map(Ipv4Addr::from), bytes));
            }
            continue;
        }
        let Some((key, value)) = line.split_once('=') else {
            continue;
        };
        match key {
            "ipAddress" => section.0 = value.parse().ok(),
            "macAddress" => section.1 = mac(value),
            "totalBytes" => {
                section.2 =
                    Some(value.parse().map_err(|_| {
                        ScrapeError::Parse("cgi: totalBytes is not a number".into())
                    })?)
            }
            _ => {}
        }
    }
    Ok(hosts)
}

/// A router-side session this source opened and must end.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Session {
    /// `prefix` is `/TOKEN` after an MD5 login, empty for Basic.
    Legacy {
        prefix: String,
        md5: bool,
    },
    Cgi,
}

/// The `tplink` source.
pub struct Tplink {
    host: String,
    port: u16,
    username: String,
    password: Option<Secret>,
    /// Forced by option variant, or detected once.
    generation: Option<Generation>,
    /// A session the last scrape could not end in time.
    open: Option<Session>,
}

impl Tplink {
    pub fn new(config: &UpstreamConfig, password: Option<Secret>) -> Self {
        Tplink {
            host: config.host.clone().unwrap_or_default(),
            port: config.port,
            username: config.username.clone().unwrap_or_default(),
            password,
            generation: match config.variant {
                TplinkVariant::Auto => None,
                TplinkVariant::Basic => Some(Generation::Basic),
                TplinkVariant::Md5 => Some(Generation::Token { md5: true }),
                TplinkVariant::Cgi => Some(Generation::Cgi),
            },
            open: None,
        }
    }

    /// `http://HOST[:PORT]`, as a browser's Referer names the router.
    fn origin(&self) -> String {
        match self.port {
            80 => format!("http://{}", self.host),
            port => format!("http://{}:{port}", self.host),
        }
    }

    /// `username:password` (or the password's MD5) in Base64.
    fn credentials(&self, md5_password: bool) -> String {
        let password = self.password.as_ref().map(Secret::expose).unwrap_or("");
        let secret = if md5_password {
            md5::hex(password.as_bytes())
        } else {
            password.to_owned()
        };
        base64::encode(format!("{}:{secret}", self.username).as_bytes())
    }

    /// The cookie as the UI's `escape("Basic " + …)` writes it: the space
    /// and `=` escaped, `+` and `/` not.
    fn cookie(&self, md5_password: bool) -> String {
        let credentials = self.credentials(md5_password).replace('=', "%3D");
        format!("Authorization=Basic%20{credentials}")
    }

    fn send(&self, request: &Request, deadline: Deadline) -> Result<Response, ScrapeError> {
        http::send(&self.host, self.port, request, deadline)
    }

    /// One `userRpm` page as text, or the refusal it stands for. `name`
    /// (without the token) is what errors say.
    fn page(
        &self,
        (prefix, md5): (&str, bool),
        path: &str,
        name: &str,
        deadline: Deadline,
    ) -> Result<String, ScrapeError> {
        let mut request = Request::get(path)
            .header("Cookie", self.cookie(md5))
            .header(
                "Referer",
                format!("{}{prefix}/userRpm/Index.htm", self.origin()),
            );
        if prefix.is_empty() {
            // Firmware older than the cookie login asks for HTTP Basic auth.
            request = request.header(
                "Authorization",
                format!("Basic {}", self.credentials(false)),
            );
        }
        let response = self.send(&request, deadline)?;
        let text = String::from_utf8_lossy(&response.body).into_owned();
        if let Some(login) = login_page(&text) {
            return Err(refused(login));
        }
        if response.status == 401 {
            return Err(ScrapeError::Auth(
                "the router answered 401: check option username and option password".into(),
            ));
        }
        if text.contains("Authorization=;path=/") {
            return Err(ScrapeError::Auth(
                "the router ended the web session (a logout, a timeout or a reboot); netmeter \
                 logs in again at the next scrape"
                    .into(),
            ));
        }
        if !(200..300).contains(&response.status) {
            return Err(ScrapeError::Protocol(format!(
                "{name} answered HTTP {}",
                response.status
            )));
        }
        Ok(text)
    }

    /// Logs in with the MD5 (or plain) cookie: the session token.
    fn login(&self, md5: bool, deadline: Deadline) -> Result<String, ScrapeError> {
        let request = Request::get("/userRpm/LoginRpm.htm?Save=Save")
            .header("Cookie", self.cookie(md5))
            .header("Referer", format!("{}/", self.origin()));
        let response = self.send(&request, deadline)?;
        let text = String::from_utf8_lossy(&response.body);
        if let Some(token) = login_token(&text) {
            return Ok(token);
        }
        Err(match login_page(&text) {
            Some(login) => refused(login),
            None => ScrapeError::Auth(format!(
                "LoginRpm.htm (HTTP {}) gave no session token: check option username, option \
                 password and option variant",
                response.status
            )),
        })
    }

    /// The legacy UI: every statistics page, then the DHCP names.
    /// `session` is what must be ended afterwards.
    fn legacy(
        &self,
        token: Option<bool>,
        session: &mut Option<Session>,
        deadline: Deadline,
    ) -> Result<Reading, ScrapeError> {
        let (prefix, md5) = match token {
            None => (String::new(), false),
            Some(md5) => (format!("/{}", self.login(md5, deadline)?), md5),
        };
        // Set before the first page: any request may open the session.
        *session = Some(Session::Legacy {
            prefix: prefix.clone(),
            md5,
        });
        let session = (prefix.as_str(), md5);
        let mut devices: Vec<DeviceReading> = Vec::new();
        let mut pages = 1;
        let mut page = 1;
        while page <= pages {
            // Sorted by IP address, so hosts stay on their page while it is read.
            let path = format!(
                "{prefix}/userRpm/SystemStatisticRpm.htm?sortType=1&Num_per_page={PER_PAGE}&Goto_page={page}"
            );
            let text = self.page(session, &path, "SystemStatisticRpm.htm", deadline)?;
            for host in parse_statistics(&text)? {
                if !devices.iter().any(|d| d.mac == host.mac) {
                    devices.push(host);
                }
            }
            if page == 1 {
                pages = page_count(&text);
            }
            page += 1;
        }
        let dhcp = format!("{prefix}/userRpm/AssignedIpAddrListRpm.htm");
        // Names are a nicety: the counts stand without them.
        if let Ok(text) = self.page(session, &dhcp, "AssignedIpAddrListRpm.htm", deadline) {
            let names = parse_dhcp(&text);
            for d in &mut devices {
                d.hostname = names
                    .iter()
                    .find(|(m, _)| *m == d.mac)
                    .map(|(_, n)| n.clone());
            }
        }
        // The uptime too: without it reboots are told by the counters.
        let status = format!("{prefix}/userRpm/StatusRpm.htm");
        let uptime_secs = self
            .page(session, &status, "StatusRpm.htm", deadline)
            .ok()
            .and_then(|text| parse_status_uptime(&text));
        Ok(Reading {
            devices,
            uptime_secs,
            ..Reading::default()
        })
    }

    fn cgi(
        &self,
        session: &mut Option<Session>,
        deadline: Deadline,
    ) -> Result<Reading, ScrapeError> {
        *session = Some(Session::Cgi);
        let request = Request::post("/cgi?1&5", STAT_BODY)
            .header("Cookie", self.cookie(false))
            .header("Referer", format!("{}/mainFrame.htm", self.origin()))
            .header("Content-Type", "text/plain");
        let response = self.send(&request, deadline)?;
        let text = String::from_utf8_lossy(&response.body);
        let refusal = match response.status {
            200 => login_page(&text).map(refused),
            // What the cgi answers while another admin's session is open.
            500 => Some(ScrapeError::Auth(
                "the router's cgi answered 500, as it does while someone is logged in to its \
                 web UI (one admin at a time); netmeter will retry later"
                    .into(),
            )),
            401 | 403 => Some(ScrapeError::Auth(format!(
                "the router answered {}: check option username and option password",
                response.status
            ))),
            status => {
                return Err(ScrapeError::Protocol(format!(
                    "POST /cgi?1&5 answered HTTP {status}"
                )));
            }
        };
        if let Some(refusal) = refusal {
            // Refused: no session of ours to end.
            *session = None;
            return Err(refusal);
        }
        Ok(Reading {
            devices: parse_cgi(&text)?,
            ..Reading::default()
        })
    }

    /// Ends `session`; false when the router could not be told in time.
    fn logout(&self, session: &Session, deadline: Deadline) -> bool {
        let origin = self.origin();
        let result = match session {
            Session::Legacy { prefix, md5 } => {
                let path = format!("{prefix}/userRpm/LogoutRpm.htm");
                let request = Request::get(&path)
                    .header("Cookie", self.cookie(*md5))
                    .header("Referer", format!("{origin}{prefix}/userRpm/Index.htm"));
                self.send(&request, deadline)
            }
            Session::Cgi => {
                let request = Request::post("/cgi?8", CGI_LOGOUT_BODY)
                    .header("Cookie", self.cookie(false))
                    .header("Referer", format!("{origin}/mainFrame.htm"))
                    .header("Content-Type", "text/plain");
                self.send(&request, deadline)
            }
        };
        result.is_ok()
    }

    /// Asks the start page, without credentials, which UI the router runs.
    fn detect(&self, deadline: Deadline) -> Result<Generation, ScrapeError> {
        let response = self.send(&Request::get("/"), deadline)?;
        detect(
            response.status,
            response.header("WWW-Authenticate"),
            &String::from_utf8_lossy(&response.body),
        )
    }
}

impl Source for Tplink {
    fn scrape(&mut self, deadline: Deadline) -> Result<Reading, ScrapeError> {
        if let Some(open) = self.open.take()
            && !self.logout(&open, deadline)
        {
            self.open = Some(open);
        }
        let generation = match self.generation {
            Some(generation) => generation,
            None => *self.generation.insert(self.detect(deadline)?),
        };
        let mut session = None;
        let result = match generation {
            Generation::Basic => self.legacy(None, &mut session, deadline),
            Generation::Token { md5 } => self.legacy(Some(md5), &mut session, deadline),
            Generation::Cgi => self.cgi(&mut session, deadline),
        };
        // A refused login opened nothing, and its logout could end the
        // other admin's session.
        let refused = matches!(
            result,
            Err(ScrapeError::Auth(_)
                | ScrapeError::WrongCredentials(_)
                | ScrapeError::LockedOut { .. })
        );
        if let Some(session) = session.filter(|_| !refused)
            && !self.logout(&session, deadline)
        {
            self.open = Some(session);
        }
        result
    }

    fn close(&mut self, deadline: Deadline) {
        if let Some(open) = self.open.take() {
            self.logout(&open, deadline);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIXTURES: &str = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/upstream/tplink/"
    );

    fn fixture(name: &str) -> String {
        std::fs::read_to_string(format!("{FIXTURES}{name}")).unwrap()
    }

    #[test]
    fn the_statistics_page_gives_hosts_and_pages() {
        let page = fixture("SystemStatisticRpm.htm");
        let hosts = parse_statistics(&page).unwrap();
        assert_eq!(hosts.len(), 3);
        assert_eq!(hosts[0].mac, [0xac, 0x89, 0x95, 0x77, 0x9a, 0xe9]);
        assert_eq!(hosts[0].ip, Some("192.168.0.100".parse().unwrap()));
        assert_eq!(
            (hosts[0].rx_bytes, hosts[0].tx_bytes, hosts[0].width),
            (3_915_463_210, 0, CounterWidth::Bits32)
        );
        assert_eq!(hosts[2].rx_bytes, 2204);
        assert_eq!(page_count(&page), 3);
        assert_eq!(page_count("no para"), 1);
        assert_eq!(
            page_count("var PageListPara = new Array(\n9000,\n1,\n0,0 );"),
            64
        );
    }

    #[test]
    fn broken_statistics_pages_are_parse_errors() {
        let page = fixture("SystemStatisticRpm.htm");
        let cases = [
            page.replace("3915463210", "39x"),
            // Cut inside the list: no closing parenthesis.
            page[..page.find("2, \"192.168.0.101\"").unwrap()].to_owned(),
            // A row short of its 13 items.
            page.replace(", 12, 2204, 0, 0, 0, 0, 0, 0, 0, 0,", ", 12, 2204,"),
            // Closed, but without the 0,0 end.
            page.replace("0,0 );\n</SCRIPT>\n<SCRIPT language=\"javascript\" type=\"text/javascript\">\nvar PageListPara", ");\n</SCRIPT>\n<SCRIPT>\nvar PageListPara"),
            page.replace("\"AC-89-95-77-9A-E9\"", "\"nobody\""),
            "<html></html>".to_owned(),
        ];
        for case in cases {
            assert_eq!(
                parse_statistics(&case).unwrap_err().stage(),
                "parse",
                "{case}"
            );
        }
        assert_eq!(
            js_array("var statList = new Array(1, \"a", "statList"),
            None
        );
        assert_eq!(
            js_array(
                "var statListX = 1; var statList=new Array(\"a,b\", 2 );",
                "statList"
            ),
            Some(vec!["a,b".to_owned(), "2".to_owned()])
        );
        // No hosts yet: an empty list, not an error.
        let empty = "var statList = new Array(\n0,0 );";
        assert_eq!(parse_statistics(empty).unwrap(), vec![]);
    }

    #[test]
    fn the_status_page_gives_the_uptime_before_the_firmware_version() {
        let page = fixture("StatusRpm.htm");
        assert_eq!(parse_status_uptime(&page), Some(1_468_171));
        // Blanked fields (some firmware), no firmware string, or cut short.
        let blank =
            "var statusPara = new Array(\"\", \"\", \"3.13.33 Build 130506 Rel.48660n\", 0);";
        assert_eq!(parse_status_uptime(blank), None);
        assert_eq!(
            parse_status_uptime("var statusPara = new Array(1, 2, 3);"),
            None
        );
        let cut = &page[..page.find("6732336").unwrap()];
        assert_eq!(parse_status_uptime(cut), None);
    }

    #[test]
    fn dhcp_names_join_by_mac() {
        let names = parse_dhcp(&fixture("AssignedIpAddrListRpm.htm"));
        assert_eq!(names.len(), 3);
        assert_eq!(
            names[0],
            (
                Mac([0xac, 0x89, 0x95, 0x77, 0x9a, 0xe9]),
                "living-room-tv".to_owned()
            )
        );
        assert_eq!(parse_dhcp("<html>"), vec![]);
    }

    #[test]
    fn login_pages_tokens_and_detection() {
        let md5_login = fixture("login-md5.htm");
        assert_eq!(
            login_page(&md5_login),
            Some(LoginPage {
                error: 3,
                md5: true
            })
        );
        assert_eq!(
            detect(200, None, &md5_login),
            Ok(Generation::Token { md5: true })
        );
        let basic_login = fixture("login-basic.htm");
        assert_eq!(detect(200, None, &basic_login), Ok(Generation::Basic));
        assert_eq!(
            detect(200, None, &fixture("cgi-start.htm")),
            Ok(Generation::Cgi)
        );
        assert_eq!(
            detect(
                401,
                Some("Basic realm=\"TP-LINK Wireless N Router WR740N\""),
                ""
            ),
            Ok(Generation::Basic)
        );
        assert_eq!(
            detect(200, None, "<html>hello</html>").unwrap_err().stage(),
            "protocol"
        );
        assert_eq!(
            detect(200, None, "<a href=\"/cgi-bin/luci/;stok=/login\">")
                .unwrap_err()
                .stage(),
            "protocol"
        );

        let token = fixture("LoginRpm-token.htm");
        assert_eq!(login_token(&token).as_deref(), Some("HQKATSSCQLVJQNVB"));
        assert_eq!(login_token("/userRpm/Index.htm"), None);
        assert_eq!(login_token("x/qwertyuiopasdfgh/userRpm/Index.htm"), None);
        assert_eq!(
            login_token("http://h//QWERTYUIOPASDFGH/userRpm/Index.htm"),
            None
        );

        let with = |error| md5_login.replace("3, 1, \"http", &format!("{error}, 1, \"http"));
        assert!(
            matches!(refused(login_page(&with(0)).unwrap()), ScrapeError::Auth(m) if m.contains("someone is logged in"))
        );
        assert!(matches!(
            refused(login_page(&with(1)).unwrap()),
            ScrapeError::LockedOut { seconds: 7200, .. }
        ));
        assert!(matches!(
            refused(login_page(&with(2)).unwrap()),
            ScrapeError::WrongCredentials(_)
        ));
        assert!(matches!(
            refused(login_page(&with(3)).unwrap()),
            ScrapeError::Auth(_)
        ));
    }

    #[test]
    fn cgi_answers() {
        let hosts = parse_cgi(&fixture("cgi-stat.txt")).unwrap();
        assert_eq!(hosts.len(), 2);
        assert_eq!(hosts[0].ip, Some("192.168.1.100".parse().unwrap()));
        assert_eq!(hosts[0].mac, [0xbf, 0x75, 0x44, 0x4c, 0xdc, 0x9e]);
        assert_eq!(
            (hosts[0].rx_bytes, hosts[0].width),
            (651_392_471, CounterWidth::Bits32)
        );
        assert_eq!(parse_cgi("[error]9003").unwrap_err().stage(), "protocol");
        assert_eq!(
            parse_cgi("[1,0]0\ntotalBytes=1").unwrap_err().stage(),
            "parse"
        );
        assert_eq!(
            parse_cgi("[1,0,0,0,0,0]1\nmacAddress=00:11:22:33:44:55\ntotalBytes=x\n[error]0")
                .unwrap_err()
                .stage(),
            "parse"
        );
    }
}
