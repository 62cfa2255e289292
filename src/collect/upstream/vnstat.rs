//! `vnstat`: the totals of servers behind the gateway from `vnstat --json`
//! (jsonversion 2), served over HTTP (vnStat's CGI, any web server) or
//! read from a file the server copies over.

use std::io::Read;
use std::path::PathBuf;

use serde_json::Value;

use super::http::{self, Request, Url};
use super::{Counters, Deadline, Reading, ScrapeError, Source};
use crate::collect::links::CounterWidth;
use crate::config::UpstreamConfig;

/// A vnStat document with years of history is a few hundred KB.
pub const MAX_FILE: u64 = 8 << 20;

/// Each interface's all-time totals (bytes): `device` is the WAN, `wanted`
/// limits the others (empty: all but `lo`).
pub fn parse(text: &str, device: Option<&str>, wanted: &[String]) -> Result<Reading, ScrapeError> {
    // Read as a JSON value: the parser is already in the binary for ubus
    // and the CLI, where typed decoding would add its own code.
    let doc: Value = serde_json::from_str(text)
        .map_err(|e| ScrapeError::Parse(format!("not vnstat --json output: {e}")))?;
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
                "not vnstat --json output: an interface without name or traffic.total.rx/tx".into(),
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
        .take(crate::account::upstream::MAX_INTERFACES_PER_SOURCE)
        .map(|(n, c)| (n.to_owned(), c))
        .collect();
    if reading.wan.is_none() && reading.interfaces.is_empty() {
        return Err(ScrapeError::Parse(
            "vnStat's output has no interface to report: check list interface".into(),
        ));
    }
    Ok(reading)
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
                let response = http::send(&url.host, url.port, &Request::get(&url.path), deadline)?;
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

fn read_file(path: &PathBuf) -> Result<String, ScrapeError> {
    let local = |e: std::io::Error| {
        ScrapeError::Local(format!("cannot read option file {}: {e}", path.display()))
    };
    let file = std::fs::File::open(path).map_err(local)?;
    let mut text = String::new();
    file.take(MAX_FILE + 1)
        .read_to_string(&mut text)
        .map_err(local)?;
    if text.len() as u64 > MAX_FILE {
        return Err(ScrapeError::Local(format!(
            "option file {} is over {} MiB: not vnstat --json output",
            path.display(),
            MAX_FILE >> 20
        )));
    }
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    const V2: &str = r#"{"vnstatversion":"2.10","jsonversion":"2","interfaces":[
        {"name":"enp3s0","alias":"","created":{"date":{"year":2023,"month":1,"day":5},"timestamp":1672876800},
         "updated":{"date":{"year":2026,"month":11,"day":22},"time":{"hour":9,"minute":55},"timestamp":1795341300},
         "traffic":{"total":{"rx":987654321098,"tx":123456789012},
           "fiveminute":[{"id":1,"date":{"year":2026,"month":11,"day":22},"time":{"hour":9,"minute":50},"timestamp":1795341000,"rx":1024,"tx":2048}],
           "day":[{"id":2,"date":{"year":2026,"month":11,"day":22},"timestamp":1795305600,"rx":52428800,"tx":10485760}]}},
        {"name":"lo","alias":"","traffic":{"total":{"rx":5,"tx":5}}},
        {"name":"wg0","alias":"vpn","traffic":{"total":{"rx":100,"tx":200}}}]}"#;

    #[test]
    fn totals_per_interface_with_the_wan_picked_by_name() {
        let r = parse(V2, Some("enp3s0"), &[]).unwrap();
        let wan = r.wan.unwrap();
        assert_eq!(
            (wan.rx_bytes, wan.tx_bytes),
            (987_654_321_098, 123_456_789_012)
        );
        let names: Vec<_> = r.interfaces.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["wg0"]);
        let r = parse(V2, None, &["lo".into()]).unwrap();
        assert_eq!((r.wan, r.interfaces.len()), (None, 1));
    }

    #[test]
    fn other_versions_and_shapes_are_refused_with_the_reason() {
        for (text, says) in [
            (r#"{"jsonversion":"1","interfaces":[]}"#, "upgrade vnStat"),
            (r#"{"interfaces":[]}"#, "jsonversion ''"),
            (r#"{"jsonversion":2,"interfaces":[]}"#, "no interface"),
            (
                r#"{"jsonversion":"2","interfaces":[{"name":"x"}]}"#,
                "not vnstat --json",
            ),
            (
                r#"{"jsonversion":"2","interfaces":[{"name":"x","traffic":{"total":{"rx":-1,"tx":0}}}]}"#,
                "not vnstat",
            ),
            ("{\"jsonversion\":\"2\",\"interfaces\":[", "not vnstat"),
            ("<html>", "not vnstat"),
        ] {
            let e = parse(text, None, &[]).unwrap_err();
            assert!(e.to_string().contains(says), "{text}: {e}");
            assert_eq!(e.stage(), "parse");
        }
        let e = parse(V2, Some("eth0"), &[]).unwrap_err().to_string();
        assert!(e.contains("'eth0'") && e.contains("enp3s0"), "{e}");
    }
}
