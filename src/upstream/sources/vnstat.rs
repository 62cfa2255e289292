//! `vnstat`: the totals of servers behind the gateway from `vnstat --json`
//! (jsonversion 2), served over HTTP (vnStat's `vnstat-json.cgi`, any web
//! server) or read from a file the server copies over.

use std::io::Read;
use std::path::{Path, PathBuf};

use serde_json::Value;

use super::http::{self, Request, Url};
use super::{Counters, Deadline, Reading, ScrapeError, Source};
use crate::account::CounterWidth;
use crate::upstream::UpstreamConfig;
use crate::upstream::account::MAX_INTERFACES_PER_SOURCE;

/// A file larger than this is refused. A full `vnstat --json` is about
/// 100 KB per interface with vnStat's default retention.
pub const MAX_FILE: u64 = 8 << 20;

/// Each interface's all-time totals (bytes): `device` is the WAN, `wanted`
/// limits the others (empty: all but `lo`).
pub fn parse(text: &str, device: Option<&str>, wanted: &[String]) -> Result<Reading, ScrapeError> {
    // A serde_json::Value takes about 15 times its text in memory, so the
    // history is dropped first (a year of five-minute entries is MBs on a
    // 64 MB router). Typed decoding would skip it too, at 14 KB of code
    // (measured when one binary had to fit 1 MiB); the scan is 1 KB and
    // keeps the memory bound, so it stays.
    let doc: Value = serde_json::from_str(&without_history(text)).map_err(|e| {
        ScrapeError::Parse(match text.trim_start().starts_with('{') {
            true => format!("not vnstat --json output: {e}"),
            false => format!("not vnstat --json output; it begins: {}", opening(text)),
        })
    })?;
    if !doc.is_object() {
        return Err(ScrapeError::Parse(format!(
            "not vnstat --json output; it begins: {}",
            opening(text)
        )));
    }
    let version = match &doc["jsonversion"] {
        Value::String(v) => v.clone(),
        Value::Null => String::new(),
        v => v.to_string(),
    };
    if version != "2" {
        return Err(ScrapeError::Parse(format!(
            "jsonversion '{version}': netmeter reads vnStat 2.x output (jsonversion 2, in bytes); \
             upgrade vnStat on that host"
        )));
    }
    let mut interfaces = Vec::new();
    for i in doc["interfaces"].as_array().map_or(&[][..], Vec::as_slice) {
        let total = &i["traffic"]["total"];
        let (Some(name), Some(rx), Some(tx)) = (
            i["name"].as_str(),
            total["rx"].as_u64(),
            total["tx"].as_u64(),
        ) else {
            return Err(ScrapeError::Parse(
                "not vnstat --json output: an interface without name or traffic.total.rx/tx \
                 (whole bytes)"
                    .into(),
            ));
        };
        let counters = Counters {
            rx_bytes: rx,
            tx_bytes: tx,
            width: CounterWidth::Bits64,
        };
        interfaces.push((name, counters));
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

/// Nesting depth (objects and arrays) of an interface's history arrays:
/// document, interfaces, interface, traffic, then the array.
const HISTORY_DEPTH: usize = 5;

/// The text with every array from [`HISTORY_DEPTH`] down emptied
/// (`"fiveminute":[]`): an interface's history, nearly all of a document,
/// of which only the totals are read. Strings are followed so a bracket
/// in an alias counts for nothing; whatever is left is checked by the
/// JSON parser, and a cut-off document stays cut off.
fn without_history(text: &str) -> String {
    let mut kept = String::with_capacity(text.len().min(64 << 10));
    let mut depth = 0usize;
    let mut emptying: Option<usize> = None;
    let (mut in_string, mut escaped) = (false, false);
    let mut from = 0;
    for (at, b) in text.bytes().enumerate() {
        if in_string {
            (in_string, escaped) = match (escaped, b) {
                (true, _) => (true, false),
                (false, b'\\') => (true, true),
                (false, b'"') => (false, false),
                _ => (true, false),
            };
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'{' | b'[' => {
                depth += 1;
                if b == b'[' && depth >= HISTORY_DEPTH && emptying.is_none() {
                    kept.push_str(&text[from..=at]);
                    emptying = Some(depth);
                }
            }
            b'}' | b']' => {
                if emptying == Some(depth) {
                    emptying = None;
                    from = at;
                }
                depth = depth.saturating_sub(1);
            }
            _ => {}
        }
    }
    if emptying.is_none() {
        kept.push_str(&text[from..]);
    }
    kept
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
                "without name or traffic.total",
            ),
            (
                r#"{"jsonversion":"2","interfaces":[{"name":"x","traffic":{"total":{"rx":1.5,"tx":0}}}]}"#,
                "without name or traffic.total",
            ),
            (
                r#"{"jsonversion":"2","interfaces":[{"name":"x","traffic":{"total":{"rx":18446744073709551616,"tx":0}}}]}"#,
                "not vnstat",
            ),
            (
                r#"{"jsonversion":"2","interfaces":[{"name":"x","traffic":{"total":{"tx":0}}}]}"#,
                "without name or traffic.total",
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
    fn the_history_is_dropped_before_parsing() {
        let reduced = without_history(V2_6);
        assert!(reduced.len() < V2_6.len() / 4, "{reduced}");
        assert!(reduced.contains(r#""total":{"rx":14240639268,"tx":10335243710},"fiveminute":[],"hour":[],"day":[],"month":[],"year":[],"top":[]}"#), "{reduced}");
        assert!(reduced.contains(r#""created":{"date":{"year":2022,"month":5,"day":19}}"#));
        // Brackets and escaped quotes inside strings count for nothing.
        let tricky = r#"{"jsonversion":"2","interfaces":[{"name":"e[0]","alias":"a\"]}[\\","traffic":{"total":{"rx":1,"tx":2},"day":[{"id":1,"note":"]]"},[[]]]}}]}"#;
        assert_eq!(
            without_history(tricky),
            r#"{"jsonversion":"2","interfaces":[{"name":"e[0]","alias":"a\"]}[\\","traffic":{"total":{"rx":1,"tx":2},"day":[]}}]}"#
        );
        assert_eq!(
            parse(tricky, Some("e[0]"), &[])
                .unwrap()
                .wan
                .unwrap()
                .tx_bytes,
            2
        );
        // Megabytes of history, as with FiveMinuteHours -1, become a few bytes.
        let entry = r#"{"id":1,"date":{"year":2026,"month":11,"day":22},"time":{"hour":9,"minute":50},"timestamp":1795341000,"rx":1048576,"tx":2097152},"#;
        let big = format!(
            r#"{{"jsonversion":"2","interfaces":[{{"name":"eth0","traffic":{{"total":{{"rx":5,"tx":6}},"fiveminute":[{}{{}}]}}}}]}}"#,
            entry.repeat(30_000)
        );
        assert!(big.len() > 3 << 20);
        assert!(without_history(&big).len() < 120);
        assert_eq!(
            parse(&big, Some("eth0"), &[])
                .unwrap()
                .wan
                .unwrap()
                .rx_bytes,
            5
        );
        // Cut off inside the history: still cut off.
        let cut = &big[..big.len() / 2];
        assert!(without_history(cut).ends_with("\"fiveminute\":["));
        assert!(
            parse(cut, None, &[])
                .unwrap_err()
                .to_string()
                .contains("EOF")
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
