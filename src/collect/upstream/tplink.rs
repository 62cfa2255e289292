//! `tplink`: per-host statistics from TP-Link's legacy web UI (TL-WR and
//! Archer C-series: `SystemStatisticRpm.htm`, with a Basic or MD5 cookie)
//! and the TD-W/Archer `cgi` interface (`STAT_ENTRY`). These routers allow
//! one admin session at a time, so every scrape logs out at its end.

use std::net::{IpAddr, Ipv4Addr};

use super::http::{self, Request, Response};
use super::{Deadline, DeviceReading, Reading, ScrapeError, Source, md5};
use crate::collect::links::CounterWidth;
use crate::config::{Secret, UpstreamConfig, upstream::TplinkVariant};

/// Statistics pages followed at most.
const MAX_PAGES: u32 = 64;
const PER_PAGE: u32 = 100;
const STAT_BODY: &[u8] =
    b"[STAT_CFG#0,0,0,0,0,0#0,0,0,0,0,0]0,0\r\n[STAT_ENTRY#0,0,0,0,0,0#0,0,0,0,0,0]1,0\r\n";

/// The items of `var NAME = new Array( … );` in a page: strings unquoted,
/// numbers as written. None when the page has no such array.
pub fn js_array(page: &str, name: &str) -> Option<Vec<String>> {
    let start = page.find(&format!("var {name} = new Array("))?;
    let body = &page[start..];
    let open = body.find('(')? + 1;
    let mut items = Vec::new();
    let mut chars = body[open..].char_indices();
    let mut current = String::new();
    let mut quoted = false;
    while let Some((_, c)) = chars.next() {
        match c {
            '"' if !quoted => quoted = true,
            '"' => quoted = false,
            '\\' if quoted => current.extend(chars.next().map(|(_, c)| c)),
            ',' if !quoted => items.push(std::mem::take(&mut current).trim().to_owned()),
            ')' if !quoted => {
                items.push(current.trim().to_owned());
                return Some(items);
            }
            c if quoted || !c.is_whitespace() => current.push(c),
            _ => {}
        }
        if items.len() > 100_000 {
            return None;
        }
    }
    None
}

fn mac(text: &str) -> Option<[u8; 6]> {
    crate::mac::parse_mac(&text.replace('-', ":"))
}

/// The hosts of one statistics page: each is an IP and a MAC followed by
/// total packets and total bytes (an index before them on some firmware).
pub fn parse_statistics(page: &str) -> Result<Vec<DeviceReading>, ScrapeError> {
    let items = js_array(page, "statList")
        .ok_or_else(|| ScrapeError::Parse("the statistics page has no statList".into()))?;
    let mut hosts = Vec::new();
    let mut i = 0;
    while i + 3 < items.len() {
        let (Ok(ip), Some(mac)) = (items[i].parse::<Ipv4Addr>(), mac(&items[i + 1])) else {
            i += 1;
            continue;
        };
        let bytes = items[i + 3].parse::<u64>().map_err(|_| {
            ScrapeError::Parse(format!("statList: the bytes of {ip} are not a number"))
        })?;
        hosts.push(DeviceReading {
            mac,
            ip: Some(IpAddr::V4(ip)),
            hostname: None,
            // One total for both directions: shown as received.
            rx_bytes: bytes,
            tx_bytes: 0,
            width: CounterWidth::Bits32,
        });
        i += 4;
    }
    Ok(hosts)
}

/// Pages of statistics, from `PageListPara` (first item), else 1.
pub fn page_count(page: &str) -> u32 {
    js_array(page, "PageListPara")
        .and_then(|p| p.first()?.parse().ok())
        .unwrap_or(1)
        .clamp(1, MAX_PAGES)
}

/// Host names by MAC from the DHCP clients page (`DHCPDynList`: name,
/// MAC, IP, lease, …).
pub fn parse_dhcp(page: &str) -> Vec<([u8; 6], String)> {
    let items = js_array(page, "DHCPDynList").unwrap_or_default();
    items
        .windows(2)
        .filter_map(|w| {
            let mac = mac(&w[1])?;
            let name = w[0].trim();
            (!name.is_empty() && !name.bytes().all(|b| b.is_ascii_digit()) && mac != [0; 6])
                .then(|| (mac, name.chars().take(64).collect()))
        })
        .collect()
}

/// The session token in the MD5 login's answer:
/// `…/ABCDEFGHIJKLMNOP/userRpm/Index.htm`.
pub fn login_token(page: &str) -> Option<String> {
    let end = page.find("/userRpm/Index.htm")?;
    let token = &page[end.checked_sub(16)?..end];
    let before = page[..end - 16].chars().next_back()?;
    (before == '/' && token.bytes().all(|b| b.is_ascii_uppercase())).then(|| token.to_owned())
}

/// The `cgi` interface's STAT_ENTRY sections; only valid when the answer
/// ends with `[error]0`.
pub fn parse_cgi(body: &str) -> Result<Vec<DeviceReading>, ScrapeError> {
    let last = body
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("");
    match last.trim().strip_prefix("[error]") {
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
    let mut ip = None;
    let mut mac_address = None;
    let mut bytes = None;
    let mut flush =
        |ip: &mut Option<u32>, mac_address: &mut Option<[u8; 6]>, bytes: &mut Option<u64>| {
            if let (Some(mac), Some(b)) = (mac_address.take(), bytes.take()) {
                hosts.push(DeviceReading {
                    mac,
                    ip: ip.take().map(|n| IpAddr::V4(Ipv4Addr::from(n))),
                    hostname: None,
                    rx_bytes: b,
                    tx_bytes: 0,
                    width: CounterWidth::Bits32,
                });
            }
            *ip = None;
        };
    for line in body.lines() {
        let line = line.trim();
        if line.starts_with('[') {
            flush(&mut ip, &mut mac_address, &mut bytes);
            continue;
        }
        let Some((key, value)) = line.split_once('=') else {
            continue;
        };
        match key {
            "ipAddress" => ip = value.parse().ok(),
            "macAddress" => mac_address = mac(value),
            "totalBytes" => {
                bytes =
                    Some(value.parse().map_err(|_| {
                        ScrapeError::Parse("cgi: totalBytes is not a number".into())
                    })?)
            }
            _ => {}
        }
    }
    flush(&mut ip, &mut mac_address, &mut bytes);
    Ok(hosts)
}

/// A page that is the login form or a refusal rather than data.
fn refusal(page: &str) -> Option<ScrapeError> {
    let lower = page.to_ascii_lowercase();
    if lower.contains("logged in")
        || lower.contains("another user")
        || lower.contains("is managing")
    {
        return Some(ScrapeError::Auth(
            "someone is logged in to the router's web UI (it allows one admin at a time); \
             netmeter will retry"
                .into(),
        ));
    }
    (lower.contains("loginrpm") || lower.contains("login.htm") || lower.contains("password")).then(
        || {
            ScrapeError::Auth(
                "the router answered with its login page: check option username and option \
                 password (and option variant)"
                    .into(),
            )
        },
    )
}

/// The `tplink` source.
pub struct Tplink {
    host: String,
    port: u16,
    username: String,
    password: Option<Secret>,
    variant: TplinkVariant,
}

impl Tplink {
    pub fn new(config: &UpstreamConfig, password: Option<Secret>) -> Self {
        Tplink {
            host: config.host.clone().unwrap_or_default(),
            port: config.port,
            username: config.username.clone().unwrap_or_default(),
            password,
            variant: config.variant,
        }
    }

    fn cookie(&self, md5_password: bool) -> String {
        let password = self.password.as_ref().map(Secret::expose).unwrap_or("");
        let secret = if md5_password {
            md5::hex(password.as_bytes())
        } else {
            password.to_owned()
        };
        let credentials = http::base64(format!("{}:{secret}", self.username).as_bytes());
        // As the web UI's own script sets it: escape("Basic " + base64).
        format!("Authorization=Basic%20{}", credentials.replace('=', "%3D"))
    }

    fn get(
        &self,
        path: &str,
        cookie: &str,
        referer: &str,
        deadline: Deadline,
    ) -> Result<Response, ScrapeError> {
        let request = Request::get(path)
            .header("Cookie", cookie.to_owned())
            .header("Referer", referer.to_owned());
        http::send(&self.host, self.port, &request, deadline)
    }

    /// The legacy UI: every statistics page, the DHCP names; `prefix` is
    /// `/TOKEN` in the MD5 variant.
    fn legacy(
        &self,
        cookie: &str,
        prefix: &str,
        deadline: Deadline,
    ) -> Result<Reading, ScrapeError> {
        let referer = format!("http://{}{prefix}/userRpm/Index.htm", self.host);
        let mut devices = Vec::new();
        let mut pages = 1;
        let mut page = 1;
        while page <= pages {
            let path = format!(
                "{prefix}/userRpm/SystemStatisticRpm.htm?Num_per_page={PER_PAGE}&Goto_page={page}"
            );
            let response = self.get(&path, cookie, &referer, deadline)?;
            let text = String::from_utf8_lossy(&response.body);
            if response.status == 401 {
                return Err(refusal("password").expect("a login refusal"));
            }
            if !text.contains("statList") {
                return Err(refusal(&text).unwrap_or_else(|| {
                    ScrapeError::Parse(format!(
                        "{} has no statList (HTTP {}): turn on Traffic Statistics",
                        path.split('?').next().unwrap_or(""),
                        response.status
                    ))
                }));
            }
            devices.extend(parse_statistics(&text)?);
            if page == 1 {
                pages = page_count(&text);
            }
            page += 1;
        }
        let dhcp = self.get(
            &format!("{prefix}/userRpm/AssignedIpAddrListRpm.htm"),
            cookie,
            &referer,
            deadline,
        );
        if let Ok(dhcp) = dhcp {
            let names = parse_dhcp(&String::from_utf8_lossy(&dhcp.body));
            for d in &mut devices {
                d.hostname = names
                    .iter()
                    .find(|(m, _)| *m == d.mac)
                    .map(|(_, n)| n.clone());
            }
        }
        Ok(Reading {
            devices,
            ..Reading::default()
        })
    }

    fn basic(&self, deadline: Deadline) -> Result<Reading, ScrapeError> {
        let cookie = self.cookie(false);
        let result = self.legacy(&cookie, "", deadline);
        let referer = format!("http://{}/userRpm/Index.htm", self.host);
        let _ = self.get("/userRpm/LogoutRpm.htm", &cookie, &referer, deadline);
        result
    }

    fn md5(&self, deadline: Deadline) -> Result<Reading, ScrapeError> {
        let cookie = self.cookie(true);
        let referer = format!("http://{}/", self.host);
        let login = self.get(
            "/userRpm/LoginRpm.htm?Save=Save",
            &cookie,
            &referer,
            deadline,
        )?;
        let text = String::from_utf8_lossy(&login.body);
        let token = login_token(&text).ok_or_else(|| {
            refusal(&text).unwrap_or_else(|| {
                ScrapeError::Auth(
                    "the MD5 login gave no session token: check option username, option \
                     password and option variant"
                        .into(),
                )
            })
        })?;
        let prefix = format!("/{token}");
        let result = self.legacy(&cookie, &prefix, deadline);
        let referer = format!("http://{}{prefix}/userRpm/Index.htm", self.host);
        let _ = self.get(
            &format!("{prefix}/userRpm/LogoutRpm.htm"),
            &cookie,
            &referer,
            deadline,
        );
        result
    }

    fn cgi(&self, deadline: Deadline) -> Result<Reading, ScrapeError> {
        let cookie = self.cookie(false);
        let referer = format!("http://{}/", self.host);
        let request = Request::post("/cgi?1&5", STAT_BODY)
            .header("Cookie", cookie.clone())
            .header("Referer", referer.clone())
            .header("Content-Type", "text/plain");
        let response = http::send(&self.host, self.port, &request, deadline);
        let logout = Request::post("/cgi?8", b"")
            .header("Cookie", cookie)
            .header("Referer", referer);
        let _ = http::send(&self.host, self.port, &logout, deadline);
        let response = response?;
        let text = String::from_utf8_lossy(&response.body);
        if response.status != 200 {
            return Err(refusal(&text).unwrap_or_else(|| {
                ScrapeError::Protocol(format!("POST /cgi?1&5 answered HTTP {}", response.status))
            }));
        }
        Ok(Reading {
            devices: parse_cgi(&text)?,
            ..Reading::default()
        })
    }
}

impl Source for Tplink {
    fn scrape(&mut self, deadline: Deadline) -> Result<Reading, ScrapeError> {
        match self.variant {
            TplinkVariant::Basic => self.basic(deadline),
            TplinkVariant::Md5 => self.md5(deadline),
            TplinkVariant::Cgi => self.cgi(deadline),
            TplinkVariant::Auto => {
                // The first generation that answers is kept.
                let mut first = None;
                for variant in [TplinkVariant::Md5, TplinkVariant::Basic, TplinkVariant::Cgi] {
                    let result = match variant {
                        TplinkVariant::Md5 => self.md5(deadline),
                        TplinkVariant::Basic => self.basic(deadline),
                        _ => self.cgi(deadline),
                    };
                    match result {
                        Ok(reading) => {
                            self.variant = variant;
                            return Ok(reading);
                        }
                        // The router is not there at all: no point trying the others.
                        Err(
                            e @ (ScrapeError::Timeout(_)
                            | ScrapeError::Connect(_)
                            | ScrapeError::Dns(_)),
                        ) => {
                            return Err(e);
                        }
                        Err(e) => {
                            first.get_or_insert(e);
                        }
                    }
                }
                Err(first.expect("three attempts failed"))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub const STATISTICS: &str =
        include_str!("../../../tests/fixtures/upstream/tplink/SystemStatisticRpm.htm");

    #[test]
    fn the_statistics_page_gives_hosts_and_pages() {
        let hosts = parse_statistics(STATISTICS).unwrap();
        assert_eq!(hosts.len(), 3);
        assert_eq!(hosts[0].mac, [0xac, 0x89, 0x95, 0x77, 0x9a, 0xe9]);
        assert_eq!(hosts[0].ip, Some("192.168.0.100".parse().unwrap()));
        assert_eq!(
            (hosts[0].rx_bytes, hosts[0].width),
            (3_915_463_210, CounterWidth::Bits32)
        );
        assert_eq!(page_count(STATISTICS), 3);
        assert_eq!(page_count("no para"), 1);
        let broken = STATISTICS.replace("3915463210", "39x");
        assert!(parse_statistics(&broken).is_err());
        assert!(parse_statistics("<html></html>").is_err());
        assert_eq!(
            js_array("var statList = new Array(1, \"a", "statList"),
            None
        );
    }

    #[test]
    fn dhcp_names_tokens_and_cgi_answers() {
        let dhcp = "var DHCPDynList = new Array(\n\"android-4f1c\", \"2C-F0-5D-00-11-22\", \
            \"192.168.0.101\", \"01:23:45\",\n\"TV\", \"AC-89-95-77-9A-E9\", \"192.168.0.100\", \
            \"Permanent\",\n0,0 );";
        let names = parse_dhcp(dhcp);
        assert_eq!(names.len(), 2);
        assert_eq!(
            names[1],
            ([0xac, 0x89, 0x95, 0x77, 0x9a, 0xe9], "TV".to_owned())
        );
        let login = "<script>window.parent.location.href = \
            \"http://192.168.0.1/QWERTYUIOPASDFGH/userRpm/Index.htm\";</script>";
        assert_eq!(login_token(login).as_deref(), Some("QWERTYUIOPASDFGH"));
        assert_eq!(login_token("/userRpm/Index.htm"), None);
        assert_eq!(login_token("x/qwertyuiopasdfgh/userRpm/Index.htm"), None);
        let cgi = "[1,0,0,0,0,0]0\nipAddress=3232235620\nmacAddress=AC:89:95:77:9A:E9\n\
            totalPkts=100\ntotalBytes=4000000000\n[2,0,0,0,0,0]0\nipAddress=3232235621\n\
            macAddress=2C:F0:5D:00:11:22\ntotalBytes=5\n[error]0\n";
        let hosts = parse_cgi(cgi).unwrap();
        assert_eq!(hosts.len(), 2);
        assert_eq!(hosts[0].ip, Some("192.168.0.100".parse().unwrap()));
        assert_eq!(hosts[0].rx_bytes, 4_000_000_000);
        assert_eq!(parse_cgi("[error]9003").unwrap_err().stage(), "protocol");
        assert_eq!(
            parse_cgi("[1,0]0\ntotalBytes=1").unwrap_err().stage(),
            "parse"
        );
    }
}
