//! `prometheus`: any node_exporter-style endpoint (node_exporter,
//! OpenWrt's prometheus-node-exporter-lua, …) read in the text exposition
//! format 0.0.4.

use std::collections::BTreeMap;

use super::http::{self, Request, Url};
use super::{Counters, Deadline, DeviceReading, Reading, ScrapeError, Source};
use crate::collect::links::CounterWidth;
use crate::config::UpstreamConfig;

/// Samples kept from one body; a bigger exposition is not a router's.
pub const MAX_SAMPLES: usize = 100_000;
/// Labels per sample.
const MAX_LABELS: usize = 64;

const RECEIVE: &str = "node_network_receive_bytes_total";
const TRANSMIT: &str = "node_network_transmit_bytes_total";
/// prometheus-node-exporter-lua's wifi_stations collector: the access
/// point's view (its receive is the station's upload).
const STATION_RECEIVE: &str = "wifi_station_receive_bytes_total";
const STATION_TRANSMIT: &str = "wifi_station_transmit_bytes_total";

/// One sample: name, labels in file order, value.
#[derive(Clone, Debug, PartialEq)]
pub struct Sample {
    pub name: String,
    pub labels: Vec<(String, String)>,
    pub value: f64,
}

impl Sample {
    pub fn label(&self, name: &str) -> Option<&str> {
        self.labels
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Parses a text exposition. `keep` decides by metric name which samples
/// are kept (the rest are still checked), so a big exposition costs no
/// memory beyond what is wanted.
pub fn parse(text: &str, keep: impl Fn(&str) -> bool) -> Result<Vec<Sample>, ScrapeError> {
    let mut samples = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let line = line.trim_matches(|c| c == ' ' || c == '\t' || c == '\r');
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let bad = |why: &str| ScrapeError::Parse(format!("line {}: {why}", index + 1));
        let sample = parse_line(line).map_err(bad)?;
        if keep(&sample.name) {
            if samples.len() == MAX_SAMPLES {
                return Err(ScrapeError::Parse(format!(
                    "more than {MAX_SAMPLES} wanted samples: not a router's exporter"
                )));
            }
            samples.push(sample);
        }
    }
    Ok(samples)
}

fn parse_line(line: &str) -> Result<Sample, &'static str> {
    let name_end = line
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
        .unwrap_or(line.len());
    let name = &line[..name_end];
    if name.is_empty() || name.starts_with(|c: char| c.is_ascii_digit()) {
        return Err("expected a metric name");
    }
    let mut rest = line[name_end..].trim_start_matches([' ', '\t']);
    let mut labels = Vec::new();
    if let Some(after) = rest.strip_prefix('{') {
        let (parsed, after) = parse_labels(after)?;
        labels = parsed;
        rest = after;
    }
    let mut words = rest.split([' ', '\t']).filter(|w| !w.is_empty());
    let value = words.next().ok_or("expected a value")?;
    let value = parse_value(value).ok_or("expected a number, NaN, +Inf or -Inf")?;
    if let Some(timestamp) = words.next() {
        timestamp
            .parse::<i64>()
            .map_err(|_| "expected a timestamp in milliseconds after the value")?;
    }
    if words.next().is_some() {
        return Err("unexpected text after the value");
    }
    Ok(Sample {
        name: name.to_owned(),
        labels,
        value,
    })
}

/// The label set after `{`; returns the labels and the text after `}`.
#[allow(clippy::type_complexity)]
fn parse_labels(mut text: &str) -> Result<(Vec<(String, String)>, &str), &'static str> {
    let mut labels = Vec::new();
    loop {
        text = text.trim_start_matches([' ', '\t']);
        if let Some(after) = text.strip_prefix('}') {
            return Ok((labels, after));
        }
        let end = text
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .ok_or("unclosed label set")?;
        let name = &text[..end];
        if name.is_empty() || name.starts_with(|c: char| c.is_ascii_digit()) {
            return Err("expected a label name");
        }
        text = text[end..].trim_start_matches([' ', '\t']);
        text = text
            .strip_prefix('=')
            .ok_or("expected = after a label name")?;
        text = text.trim_start_matches([' ', '\t']);
        text = text
            .strip_prefix('"')
            .ok_or("expected a quoted label value")?;
        let mut value = String::new();
        let mut chars = text.char_indices();
        let close = loop {
            match chars.next().ok_or("unclosed label value")? {
                (i, '"') => break i,
                (_, '\\') => match chars.next().ok_or("unclosed label value")?.1 {
                    '\\' => value.push('\\'),
                    '"' => value.push('"'),
                    'n' => value.push('\n'),
                    _ => return Err("unknown escape in a label value"),
                },
                (_, c) => value.push(c),
            }
        };
        if labels.len() == MAX_LABELS {
            return Err("too many labels");
        }
        labels.push((name.to_owned(), value));
        text = text[close + 1..].trim_start_matches([' ', '\t']);
        if let Some(after) = text.strip_prefix(',') {
            text = after;
        } else if text.is_empty() {
            return Err("unclosed label set");
        } else if !text.starts_with('}') {
            return Err("expected , or } after a label");
        }
    }
}

/// Go's ParseFloat as the format uses it: decimals, exponents, and the
/// special values. Hand-written: core's float parser would cost the
/// router build more than this whole exporter reader.
fn parse_value(text: &str) -> Option<f64> {
    match text {
        "NaN" => return Some(f64::NAN),
        "+Inf" | "Inf" => return Some(f64::INFINITY),
        "-Inf" => return Some(f64::NEG_INFINITY),
        _ => {}
    }
    let (negative, rest) = match text.as_bytes().first()? {
        b'-' => (true, &text[1..]),
        b'+' => (false, &text[1..]),
        _ => (false, text),
    };
    let (number, exponent) = match rest.find(['e', 'E']) {
        Some(at) => (&rest[..at], Some(&rest[at + 1..])),
        None => (rest, None),
    };
    let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if whole.is_empty() && fraction.is_empty() || !digits(whole) || !digits(fraction) {
        return None;
    }
    // Up to 38 significant digits in the mantissa; the rest only scale it.
    let mut mantissa: u128 = 0;
    let mut scale: i32 = 0;
    for (i, b) in whole.bytes().chain(fraction.bytes()).enumerate() {
        let in_fraction = i >= whole.len();
        if mantissa < 10u128.pow(37) {
            mantissa = mantissa * 10 + u128::from(b - b'0');
            scale -= i32::from(in_fraction);
        } else if !in_fraction {
            scale += 1;
        }
    }
    if let Some(exponent) = exponent {
        let (sign, e) = match exponent.as_bytes().first()? {
            b'-' => (-1, &exponent[1..]),
            b'+' => (1, &exponent[1..]),
            _ => (1, exponent),
        };
        if e.is_empty() || !digits(e) {
            return None;
        }
        let e: i32 = e.get(..e.len().min(6))?.parse().ok()?;
        scale = scale.saturating_add(sign * e);
    }
    let value = mantissa as f64 * 10f64.powi(scale.clamp(-400, 400));
    Some(if negative { -value } else { value })
}

/// A byte counter as an exporter writes it; None for NaN, infinities,
/// negatives and values beyond u64.
fn bytes(value: f64) -> Option<u64> {
    (0.0..18_446_744_073_709_551_616.0)
        .contains(&value)
        .then_some(value as u64)
}

/// The reading in a scraped exposition: `device` is the WAN, `wanted`
/// limits the other interfaces (empty: all but `lo`).
pub fn reading(
    samples: &[Sample],
    device: Option<&str>,
    wanted: &[String],
) -> Result<Reading, ScrapeError> {
    let mut interfaces: BTreeMap<&str, [Option<u64>; 2]> = BTreeMap::new();
    let mut stations: BTreeMap<[u8; 6], [u64; 2]> = BTreeMap::new();
    for s in samples {
        let Some(value) = bytes(s.value) else {
            continue;
        };
        match s.name.as_str() {
            RECEIVE | TRANSMIT => {
                let Some(dev) = s.label("device") else {
                    continue;
                };
                let slot = interfaces.entry(dev).or_default();
                slot[(s.name == TRANSMIT) as usize] = Some(value);
            }
            STATION_RECEIVE | STATION_TRANSMIT => {
                let Some(mac) = s.label("mac").and_then(crate::mac::parse_mac) else {
                    continue;
                };
                // The access point received what the station sent.
                let at = (s.name == STATION_RECEIVE) as usize;
                let slot = stations.entry(mac).or_default();
                slot[at] = slot[at].saturating_add(value);
            }
            _ => {}
        }
    }
    if interfaces.is_empty() {
        return Err(ScrapeError::Parse(format!(
            "no {RECEIVE} samples with a device label: is this a node_exporter endpoint?"
        )));
    }
    let counters = |[rx, tx]: [Option<u64>; 2]| Counters {
        rx_bytes: rx.unwrap_or(0),
        tx_bytes: tx.unwrap_or(0),
        width: CounterWidth::Bits64,
    };
    let mut reading = Reading::default();
    if let Some(device) = device {
        let wan = interfaces.remove(device).ok_or_else(|| {
            let known: Vec<&str> = interfaces.keys().copied().collect();
            ScrapeError::Parse(format!(
                "option device '{device}' is not among the exporter's devices ({})",
                known.join(", ")
            ))
        })?;
        reading.wan = Some(counters(wan));
    }
    reading.interfaces = interfaces
        .into_iter()
        .filter(|(name, _)| match wanted.is_empty() {
            true => *name != "lo",
            false => wanted.iter().any(|w| w == name),
        })
        .map(|(name, c)| (name.to_owned(), counters(c)))
        .collect();
    reading.devices = stations
        .into_iter()
        .map(|(mac, [rx, tx])| DeviceReading {
            mac,
            ip: None,
            hostname: None,
            rx_bytes: rx,
            tx_bytes: tx,
            width: CounterWidth::Bits64,
        })
        .collect();
    Ok(reading)
}

/// The `prometheus` source.
pub struct Prometheus {
    url: Result<Url, ScrapeError>,
    device: Option<String>,
    interfaces: Vec<String>,
}

impl Prometheus {
    pub fn new(config: &UpstreamConfig) -> Self {
        let url = match &config.url {
            Some(url) => http::parse_url(url),
            None => Err(ScrapeError::Local("option url is missing".into())),
        };
        Prometheus {
            url,
            device: config.device.clone(),
            interfaces: config.interfaces.clone(),
        }
    }
}

impl Source for Prometheus {
    fn scrape(&mut self, deadline: Deadline) -> Result<Reading, ScrapeError> {
        let url = self.url.as_ref().map_err(Clone::clone)?;
        let request = Request::get(&url.path).header("Accept", "text/plain");
        let response = http::send(&url.host, url.port, &request, deadline)?;
        if response.status != 200 {
            return Err(ScrapeError::Protocol(format!(
                "GET {} answered HTTP {}: check option url",
                url.path, response.status
            )));
        }
        let wanted = |name: &str| {
            matches!(
                name,
                RECEIVE | TRANSMIT | STATION_RECEIVE | STATION_TRANSMIT
            )
        };
        let samples = parse(response.text()?, wanted)?;
        reading(&samples, self.device.as_deref(), &self.interfaces)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(line: &str) -> Sample {
        let mut all = parse(line, |_| true).unwrap();
        assert_eq!(all.len(), 1, "{line}");
        all.remove(0)
    }

    fn refused(text: &str) -> String {
        match parse(text, |_| true) {
            Err(ScrapeError::Parse(why)) => why,
            other => panic!("{text:?} gave {other:?}"),
        }
    }

    #[test]
    fn samples_with_and_without_labels_timestamps_and_exponents() {
        let s = one("node_network_receive_bytes_total{device=\"eth0\"} 1.8274538496e+10");
        assert_eq!(s.value, 18_274_538_496.0);
        assert_eq!(s.label("device"), Some("eth0"));
        let s = one("up 1 1395066363000");
        assert_eq!((s.name.as_str(), s.value, s.labels.len()), ("up", 1.0, 0));
        assert_eq!(one("x{} 3").value, 3.0);
        assert_eq!(one("x{a=\"1\",} 3").labels.len(), 1, "a trailing comma");
        assert_eq!(one("x { a = \"1\" , b=\"2\" } 4").label("b"), Some("2"));
        assert_eq!(one("x 1E3").value, 1000.0);
        assert_eq!(one("x -0.5").value, -0.5);
        assert_eq!(one("metric:with:colons 7\r").value, 7.0);
    }

    #[test]
    fn label_values_unescape_and_keep_any_character() {
        let s = one(r#"m{path="C:\\dir\\",quote="say \"hi\"",nl="a\nb",brace="}{,="} 1"#);
        assert_eq!(s.label("path"), Some(r"C:\dir\"));
        assert_eq!(s.label("quote"), Some("say \"hi\""));
        assert_eq!(s.label("nl"), Some("a\nb"));
        assert_eq!(s.label("brace"), Some("}{,="));
    }

    #[test]
    fn numbers_as_go_writes_them() {
        for (text, value) in [
            ("0", 0.0),
            ("18274538496", 18_274_538_496.0),
            ("1.8274538496e+10", 18_274_538_496.0),
            ("8.1234567891e+10", 81_234_567_891.0),
            ("2.4951e-05", 2.4951e-5),
            ("-0.5", -0.5),
            (".5", 0.5),
            ("5.", 5.0),
            ("1E3", 1000.0),
            ("+7", 7.0),
            (
                "123456789012345678901234567890123456789012",
                1.2345678901234568e41,
            ),
            ("1e400", f64::INFINITY),
        ] {
            let got = parse_value(text).unwrap();
            assert!(
                got == value || (got - value).abs() <= value.abs() * 1e-15,
                "{text}: {got}"
            );
        }
        for bad in [
            "", "-", ".", "e5", "1e", "1e+", "1.2.3", "0x10", "1_000", "++1", "1e5.5", "Infinity",
        ] {
            assert_eq!(parse_value(bad), None, "{bad}");
        }
    }

    #[test]
    fn special_values() {
        assert!(one("x NaN").value.is_nan());
        assert_eq!(one("x +Inf").value, f64::INFINITY);
        assert_eq!(one("x -Inf").value, f64::NEG_INFINITY);
    }

    #[test]
    fn comments_help_type_and_blank_lines_are_skipped() {
        let text = "# HELP x a help\n# TYPE x counter\n\n   \n# just a comment\nx 1\n";
        assert_eq!(parse(text, |_| true).unwrap().len(), 1);
    }

    #[test]
    fn malformed_lines_say_which_line_and_why() {
        for (text, why) in [
            ("x", "expected a value"),
            ("{a=\"b\"} 1", "expected a metric name"),
            ("1x 1", "expected a metric name"),
            ("x{a=\"b} 1", "unclosed label value"),
            ("x{a=b} 1", "expected a quoted label value"),
            ("x{a\"b\"} 1", "expected = after a label name"),
            ("x{a=\"b\" c=\"d\"} 1", "expected , or }"),
            ("x{a=\"\\q\"} 1", "unknown escape"),
            ("x{a=\"b\"", "unclosed label set"),
            ("x{a=\"b\",", "unclosed label set"),
            ("x one", "expected a number"),
            ("x 1 2 3", "unexpected text"),
            ("x 1 soon", "expected a timestamp"),
            ("x 0x10", "expected a number"),
            ("x infinity", "expected a number"),
        ] {
            let got = refused(&format!("ok 1\n{text}\n"));
            assert!(
                got.starts_with("line 2: ") && got.contains(why),
                "{text}: {got}"
            );
        }
    }

    #[test]
    fn samples_not_wanted_are_checked_but_not_kept() {
        let text = "a 1\nb 2\na 3\n";
        let kept = parse(text, |n| n == "a").unwrap();
        assert_eq!(kept.iter().map(|s| s.value).collect::<Vec<_>>(), [1.0, 3.0]);
        assert!(parse("a 1\nb {\n", |n| n == "a").is_err());
    }

    #[test]
    fn too_many_wanted_samples_are_refused() {
        let text = "a 1\n".repeat(MAX_SAMPLES + 1);
        assert!(refused(&text).contains("more than"));
    }

    fn node(text: &str) -> Vec<Sample> {
        parse(text, |_| true).unwrap()
    }

    #[test]
    fn the_wan_device_the_other_interfaces_and_stations() {
        let samples = node(
            "node_network_receive_bytes_total{device=\"wan\"} 8.1234567890e+10\n\
             node_network_transmit_bytes_total{device=\"wan\"} 12345\n\
             node_network_receive_bytes_total{device=\"lo\"} 5\n\
             node_network_transmit_bytes_total{device=\"lo\"} 5\n\
             node_network_receive_bytes_total{device=\"br-lan\"} 10\n\
             node_network_transmit_bytes_total{device=\"br-lan\"} NaN\n\
             node_network_receive_bytes_total{device=\"eth9\"} -1\n\
             wifi_station_receive_bytes_total{ifname=\"wlan0\",mac=\"aa:bb:cc:00:00:01\"} 100\n\
             wifi_station_transmit_bytes_total{mac=\"aa:bb:cc:00:00:01\",ifname=\"wlan0\"} 900\n\
             wifi_station_transmit_bytes_total{ifname=\"wlan1\",mac=\"AA:BB:CC:00:00:01\"} 100\n",
        );
        let r = reading(&samples, Some("wan"), &[]).unwrap();
        let wan = r.wan.unwrap();
        assert_eq!((wan.rx_bytes, wan.tx_bytes), (81_234_567_890, 12_345));
        let names: Vec<&str> = r.interfaces.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            ["br-lan"],
            "lo is left out, eth9 had no usable value"
        );
        assert_eq!(r.interfaces[0].1.tx_bytes, 0, "NaN is skipped");
        let station = &r.devices[0];
        assert_eq!((station.rx_bytes, station.tx_bytes), (1000, 100));
        let only = reading(&samples, None, &["lo".into()]).unwrap();
        assert!(only.wan.is_none());
        assert_eq!(only.interfaces.len(), 1);
    }

    #[test]
    fn a_missing_wan_device_or_metric_is_explained() {
        let samples = node("node_network_receive_bytes_total{device=\"eth0\"} 1\n");
        let e = reading(&samples, Some("wan"), &[]).unwrap_err().to_string();
        assert!(
            e.contains("option device 'wan'") && e.contains("eth0"),
            "{e}"
        );
        let e = reading(&node("up 1\n"), None, &[]).unwrap_err().to_string();
        assert!(e.contains("node_network_receive_bytes_total"), "{e}");
    }
}
