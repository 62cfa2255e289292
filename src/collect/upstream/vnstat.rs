//! `vnstat`: the totals of servers behind the gateway from `vnstat --json`
//! (jsonversion 2), served over HTTP (vnStat's `vnstat-json.cgi`, any web
//! server) or read from a file the server copies over.

use std::io::Read;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_json::Value;

use super::http::{self, Request, Url};
use super::{Counters, Deadline, Reading, ScrapeError, Source};
use crate::account::upstream::MAX_INTERFACES_PER_SOURCE;
use crate::collect::links::CounterWidth;
use crate::config::UpstreamConfig;

/// A file larger than this is refused. A full `vnstat --json` is about
/// 100 KB per interface with vnStat's default retention.
pub const MAX_FILE: u64 = 8 << 20;

// Typed, so the history arrays (nearly all of a document) are skipped
// while parsing: read into a serde_json::Value, a document takes about 15
// times its size in memory, too much for a router at the size cap.
// Unknown fields are ignored; name and traffic are optional so that a
// jsonversion 1 document reaches the version check.
#[derive(Deserialize)]
struct Document {
    jsonversion: Option<Value>,
    #[serde(default)]
    interfaces: Vec<Interface>,
}

#[derive(Deserialize)]
struct Interface {
    name: Option<String>,
    traffic: Option<Traffic>,
}

#[derive(Deserialize)]
struct Traffic {
    total: Option<Total>,
}

#[derive(Deserialize)]
struct Total {
    rx: u64,
    tx: u64,
}

/// Each interface's all-time totals (bytes): `device` is the WAN, `wanted`
/// limits the others (empty: all but `lo`).
pub fn parse(text: &str, device: Option<&str>, wanted: &[String]) -> Result<Reading, ScrapeError> {
    let doc: Document = serde_json::from_str(text).map_err(|e| {
        ScrapeError::Parse(match text.trim_start().starts_with('{') {
            true => format!("not vnstat --json output: {e}"),
            false => format!("not vnstat --json output; it begins: {}", opening(text)),
        })
    })?;
    let version = match &doc.jsonversion {
        Some(Value::String(v)) => v.clone(),
        Some(v) => v.to_string(),
        None => String::new(),
    };
    if version != "2" {
        return Err(ScrapeError::Parse(format!(
            "jsonversion '{version}': netmeter reads vnStat 2.x output (jsonversion 2, in bytes); \
             upgrade vnStat on that host"
        )));
    }
    let mut interfaces = Vec::new();
    for i in &doc.interfaces {
        let total = i.traffic.as_ref().and_then(|t| t.total.as_ref());
        let (Some(name), Some(total)) = (&i.name, total) else {
            return Err(ScrapeError::Parse(
                "not vnstat --json output: an interface without name or traffic.total".into(),
            ));
        };
        let counters = Counters {
            rx_bytes: total.rx,
            tx_bytes: total.tx,
            width: CounterWidth::Bits64,
        };
        interfaces.push((name.as_str(), counters));
    }
    let mut reading = Reading::default();
    if let Some(device) = device {
        let wan = interfaces
            .iter()
            .find(|(n, _)| *n == device)
            .ok_or_else(|| {
                let known: Vec<&str> = interfaces.iter().map(|(n, _)| *n).collect();
                ScrapeError::Parse(format!(
                    "option device '{device}' is not among vnStat's interfaces ({})",
                    known.join(", ")
                ))
            })?;
        reading.wan = Some(wan.1);
    }
    reading.interfaces = interfaces
        .into_iter()
        .filter(|(n, _)| Some(*n) != device)
        .filter(|(n, _)| match wanted.is_empty() {
            true => *n != "lo",
            false => wanted.iter().any(|w| w == n),
        })
        .take(MAX_INTERFACES_PER_SOURCE)
        .map(|(n, c)| (n.to_owned(), c))
        .collect();
    if reading.wan.is_none() && reading.interfaces.is_empty() {
        return Err(ScrapeError::Parse(
            "vnStat's output has no interface to report: check list interface".into(),
        ));
    }
    Ok(reading)
}

/// The first line of an answer that is not JSON (vnstat-json.cgi says
/// "Database is empty." with status 200), short and printable.
fn opening(text: &str) -> String {
    let line = text.trim_start().lines().next().unwrap_or("");
    let mut shown: String = line
        .chars()
        .take(60)
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if line.chars().nth(60).is_some() {
        shown.push('…');
    }
    format!("'{shown}'")
}

enum Origin {
    Url(Url),
    File(PathBuf),
}

/// The `vnstat` source.
pub struct Vnstat {
    origin: Result<Origin, ScrapeError>,
    device: Option<String>,
    interfaces: Vec<String>,
}

impl Vnstat {
    pub fn new(config: &UpstreamConfig) -> Self {
        let origin = match (&config.url, &config.file) {
            (Some(url), _) => http::parse_url(url).map(Origin::Url),
            (None, Some(file)) => Ok(Origin::File(file.clone())),
            (None, None) => Err(ScrapeError::Local(
                "option url or option file is missing".into(),
            )),
        };
        Vnstat {
            origin,
            device: config.device.clone(),
            interfaces: config.interfaces.clone(),
        }
    }
}

impl Source for Vnstat {
    fn scrape(&mut self, deadline: Deadline) -> Result<Reading, ScrapeError> {
        let text = match self.origin.as_ref().map_err(Clone::clone)? {
            Origin::Url(url) => {
                let request = Request::get(&url.path).header("Accept", "application/json");
                let response = http::send(&url.host, url.port, &request, deadline)?;
                if response.status != 200 {
                    return Err(ScrapeError::Protocol(format!(
                        "GET {} answered HTTP {}: check option url",
                        url.path, response.status
                    )));
                }
                response.text()?.to_owned()
            }
            Origin::File(path) => read_file(path)?,
        };
        parse(&text, self.device.as_deref(), &self.interfaces)
    }
}

/// The file, size-capped. Only a regular file: a FIFO or a device could
/// block the scrape past its time limit.
fn read_file(path: &Path) -> Result<String, ScrapeError> {
    let local = |e: std::io::Error| {
        ScrapeError::Local(format!("cannot read option file {}: {e}", path.display()))
    };
    let file = std::fs::File::open(path).map_err(local)?;
    if !file.metadata().map_err(local)?.is_file() {
        return Err(ScrapeError::Local(format!(
            "option file {} is not a regular file",
            path.display()
        )));
    }
    let mut bytes = Vec::new();
    file.take(MAX_FILE + 1)
        .read_to_end(&mut bytes)
        .map_err(local)?;
    if bytes.len() as u64 > MAX_FILE {
        return Err(ScrapeError::Local(format!(
            "option file {} is over {} MiB: not vnstat --json output",
            path.display(),
            MAX_FILE >> 20
        )));
    }
    String::from_utf8(bytes).map_err(|_| {
        ScrapeError::Parse(format!(
            "option file {} is not UTF-8: not vnstat --json output",
            path.display()
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const V2: &str = include_str!("../../../tests/fixtures/upstream/vnstat/vnstat-2.10.json");
    /// vnStat 2.6 (no timestamps yet), `vnstat --json` in mode a.
    const V2_6: &str = include_str!("../../../tests/fixtures/upstream/vnstat/vnstat-2.6.json");
    /// vnStat 1.18's `vnstat --json`: totals in KiB, the name under "id".
    const V1: &str = include_str!("../../../tests/fixtures/upstream/vnstat/vnstat-1.18.json");

    #[test]
    fn totals_per_interface_with_the_wan_picked_by_name() {
        let r = parse(V2, Some("enp3s0"), &[]).unwrap();
        let wan = r.wan.unwrap();
        assert_eq!(
            (wan.rx_bytes, wan.tx_bytes),
            (987_654_321_098, 123_456_789_012)
        );
        assert_eq!(wan.width, CounterWidth::Bits64);
        let names: Vec<_> = r.interfaces.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["wg0"]);
        let r = parse(V2, None, &["lo".into()]).unwrap();
        assert_eq!((r.wan, r.interfaces.len()), (None, 1));
        let r = parse(V2, None, &[]).unwrap();
        let names: Vec<_> = r.interfaces.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["enp3s0", "wg0"], "no option device: all but lo");
    }

    #[test]
    fn vnstat_2_6_output_without_timestamps() {
        let r = parse(V2_6, Some("eth0"), &[]).unwrap();
        let wan = r.wan.unwrap();
        assert_eq!(
            (wan.rx_bytes, wan.tx_bytes),
            (14_240_639_268, 10_335_243_710)
        );
        let names: Vec<_> = r.interfaces.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["docker0"]);
    }

    #[test]
    fn jsonversion_1_is_refused_with_the_way_out() {
        let e = parse(V1, None, &[]).unwrap_err();
        assert_eq!(e.stage(), "parse");
        assert!(
            e.to_string().contains("jsonversion '1'") && e.to_string().contains("upgrade vnStat"),
            "{e}"
        );
    }

    #[test]
    fn other_versions_and_shapes_are_refused_with_the_reason() {
        for (text, says) in [
            (r#"{"interfaces":[]}"#, "jsonversion ''"),
            (r#"{"jsonversion":"3","interfaces":[]}"#, "jsonversion '3'"),
            (r#"{"jsonversion":2,"interfaces":[]}"#, "no interface"),
            (r#"{"jsonversion":"2"}"#, "no interface"),
            (
                r#"{"jsonversion":"2","interfaces":[{"name":"x"}]}"#,
                "without name or traffic.total",
            ),
            (
                r#"{"jsonversion":"2","interfaces":[{"name":"x","traffic":{"day":[]}}]}"#,
                "without name or traffic.total",
            ),
            (
                r#"{"jsonversion":"2","interfaces":[{"name":"x","traffic":{"total":{"rx":-1,"tx":0}}}]}"#,
                "invalid value",
            ),
            (
                r#"{"jsonversion":"2","interfaces":[{"name":"x","traffic":{"total":{"rx":1.5,"tx":0}}}]}"#,
                "invalid type",
            ),
            (
                r#"{"jsonversion":"2","interfaces":[{"name":"x","traffic":{"total":{"rx":18446744073709551616,"tx":0}}}]}"#,
                "not vnstat",
            ),
            (
                r#"{"jsonversion":"2","interfaces":[{"name":"x","traffic":{"total":{"tx":0}}}]}"#,
                "missing field `rx`",
            ),
            ("{\"jsonversion\":\"2\",\"interfaces\":[", "not vnstat"),
            (&V2[..V2.len() - 3], "EOF while parsing"),
            ("", "not vnstat --json output; it begins: ''"),
            ("Database is empty.\n", "it begins: 'Database is empty.'"),
            ("<html>\n<body>", "it begins: '<html>'"),
            ("[1,2]", "it begins: '[1,2]'"),
        ] {
            let e = parse(text, None, &[]).unwrap_err();
            assert!(e.to_string().contains(says), "{text}: {e}");
            assert_eq!(e.stage(), "parse");
        }
        let e = parse(V2, Some("eth0"), &[]).unwrap_err().to_string();
        assert!(e.contains("'eth0'") && e.contains("enp3s0"), "{e}");
        let long = "x".repeat(100);
        let e = parse(&long, None, &[]).unwrap_err().to_string();
        assert!(e.contains(&format!("'{}…'", "x".repeat(60))), "{e}");
    }

    #[test]
    fn an_alias_vnstat_did_not_escape_breaks_the_json_and_says_where() {
        // vnStat prints name and alias with %s: a quote in an alias makes
        // the document invalid.
        let broken = V2.replace(r#""alias":"vpn""#, r#""alias":"the "vpn"""#);
        let e = parse(&broken, None, &[]).unwrap_err().to_string();
        assert!(
            e.contains("not vnstat --json output") && e.contains("line"),
            "{e}"
        );
    }

    #[test]
    fn interfaces_are_bounded() {
        let many: Vec<String> = (0..MAX_INTERFACES_PER_SOURCE + 10)
            .map(|i| format!(r#"{{"name":"veth{i}","traffic":{{"total":{{"rx":1,"tx":2}}}}}}"#))
            .collect();
        let text = format!(r#"{{"jsonversion":"2","interfaces":[{}]}}"#, many.join(","));
        let r = parse(&text, Some("veth70"), &[]).unwrap();
        assert!(r.wan.is_some());
        assert_eq!(r.interfaces.len(), MAX_INTERFACES_PER_SOURCE);
    }
}
