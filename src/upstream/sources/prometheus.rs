//! `prometheus`: any node_exporter-style endpoint (node_exporter, OpenWrt's
//! prometheus-node-exporter-ucode or -lua, …) read in the text exposition
//! format 0.0.4.

use super::http::{self, Request, Url};
use super::{Counters, Deadline, DeviceReading, Reading, ScrapeError, Source};
use crate::account::CounterWidth;
use crate::mac::Mac;
use crate::rxtx::RxTx;
use crate::upstream::UpstreamConfig;
use crate::upstream::account::{MAX_DEVICES_PER_SOURCE, MAX_INTERFACES_PER_SOURCE};

/// Samples kept from one body; a bigger exposition is not a router's.
pub const MAX_SAMPLES: usize = 100_000;
/// Labels per sample.
const MAX_LABELS: usize = 64;
/// Device names quoted when option device is not among them.
const NAMES_QUOTED: usize = 16;
/// Network devices of one exporter taken into account.
const MAX_DEVICES: usize = 1024;

const RECEIVE: &str = "node_network_receive_bytes_total";
const TRANSMIT: &str = "node_network_transmit_bytes_total";
/// Per-station bytes as nl80211 counts them, from the access point's view
/// (its receive is the station's upload). The ucode exporter's wifi
/// collector labels them {radio, ifname, mac}; the Lua exporter's
/// wifi_stations collector declares them but stock iwinfo gives it no
/// byte counts, so they stay empty there.
const STATION_RECEIVE: &str = "wifi_station_receive_bytes_total";
const STATION_TRANSMIT: &str = "wifi_station_transmit_bytes_total";
/// The Lua exporter's hostapd_stations collector ({vif, station, ssid, …}),
/// same view; read only when no wifi_station bytes are there, so a router
/// running both collectors is not counted twice.
const HOSTAPD_RECEIVE: &str = "hostapd_station_receive_bytes_total";
const HOSTAPD_TRANSMIT: &str = "hostapd_station_transmit_bytes_total";
/// The exporter host's boot time and clock (node_exporter's stat and time
/// collectors, the Lua exporter's cpu and time): their difference is its
/// uptime, both read in the same scrape so the clocks cannot disagree.
const BOOT_TIME: &str = "node_boot_time_seconds";
const TIME: &str = "node_time_seconds";

/// What [`parse`] does with the lines of one metric name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Wanted {
    /// Not read at all: the Lua exporter does not escape label values, so
    /// an SSID with a quote must not break a scrape that does not need it.
    No,
    /// Kept; a malformed line is a Parse error.
    Required,
    /// Kept when well-formed, skipped otherwise.
    Optional,
}

/// One sample: name, labels in file order, value.
#[derive(Clone, Debug, PartialEq)]
pub struct Sample<'a> {
    pub name: &'a str,
    pub labels: Vec<(&'a str, String)>,
    pub value: f64,
}

impl Sample<'_> {
    pub fn label(&self, name: &str) -> Option<&str> {
        self.labels
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Parses a text exposition. `wanted` decides by metric name which lines
/// are read; only those cost memory. Like Prometheus, a body must end with
/// a newline: one cut off mid-number would otherwise read as a smaller
/// counter, which looks like a reboot.
pub fn parse(text: &str, wanted: impl Fn(&str) -> Wanted) -> Result<Vec<Sample<'_>>, ScrapeError> {
    if !text.is_empty() && !text.ends_with('\n') {
        return Err(ScrapeError::Parse(format!(
            "line {}: the text ends mid-line (no final newline): the answer was cut off",
            text.lines().count()
        )));
    }
    let mut samples = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let line = line.trim_matches([' ', '\t', '\r']);
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let want = wanted(&line[..name_length(line)]);
        if want == Wanted::No {
            continue;
        }
        let sample = match parse_line(line) {
            Ok(sample) => sample,
            Err(why) if want == Wanted::Required => {
                return Err(ScrapeError::Parse(format!("line {}: {why}", index + 1)));
            }
            Err(_) => continue,
        };
        if samples.len() == MAX_SAMPLES {
            return Err(ScrapeError::Parse(format!(
                "more than {MAX_SAMPLES} wanted samples: not a router's exporter"
            )));
        }
        samples.push(sample);
    }
    Ok(samples)
}

/// Bytes of the metric name at the start of a line (`[a-zA-Z0-9_:]*`).
fn name_length(line: &str) -> usize {
    line.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
        .unwrap_or(line.len())
}

fn parse_line(line: &str) -> Result<Sample<'_>, &'static str> {
    let name = &line[..name_length(line)];
    if name.is_empty() || name.starts_with(|c: char| c.is_ascii_digit()) {
        return Err("expected a metric name");
    }
    let mut rest = line[name.len()..].trim_start_matches([' ', '\t']);
    let mut labels = Vec::new();
    if let Some(after) = rest.strip_prefix('{') {
        (labels, rest) = parse_labels(after)?;
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
        return Err("unexpected text after the timestamp");
    }
    Ok(Sample {
        name,
        labels,
        value,
    })
}

type Labels<'a> = Vec<(&'a str, String)>;

/// The label set after `{`; returns the labels and the text after `}`.
fn parse_labels(mut text: &str) -> Result<(Labels<'_>, &str), &'static str> {
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
                    _ => return Err("unknown escape in a label value (only \\\\, \\\" and \\n)"),
                },
                (_, c) => value.push(c),
            }
        };
        if labels.len() == MAX_LABELS {
            return Err("too many labels");
        }
        labels.push((name, value));
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
/// special values in any case. Rust's parser reads the same forms,
/// correctly rounded, but for a signed NaN, which Go refuses.
fn parse_value(text: &str) -> Option<f64> {
    let unsigned = text.strip_prefix(['+', '-']).unwrap_or(text);
    if unsigned.eq_ignore_ascii_case("nan") && unsigned.len() != text.len() {
        return None;
    }
    text.parse().ok()
}

/// A byte counter as an exporter writes it; None for NaN, infinities,
/// negatives and values beyond u64.
fn bytes(value: f64) -> Option<u64> {
    (0.0..18_446_744_073_709_551_616.0)
        .contains(&value)
        .then_some(value as u64)
}

/// Received and sent, each None until a usable value is seen: a series
/// with one missing is left out, since reporting 0 for it would look like
/// a reboot and credit the next real value in full.
type Pair = [Option<u64>; 2];

/// The reading in a scraped exposition: `device` is the WAN, `wanted`
/// limits the other interfaces (empty: all but `lo`).
pub fn reading(
    samples: &[Sample],
    device: Option<&str>,
    wanted: &[String],
) -> Result<Reading, ScrapeError> {
    // Vectors in order of appearance: an exporter lists tens of
    // interfaces, so a linear search costs nothing and keeps their order.
    let mut interfaces: Vec<(&str, Pair)> = Vec::new();
    for s in samples {
        let (RECEIVE | TRANSMIT, Some(dev)) = (s.name, s.label("device")) else {
            continue;
        };
        let at = match interfaces.iter().position(|(d, _)| *d == dev) {
            Some(at) => at,
            None if interfaces.len() < MAX_DEVICES => {
                interfaces.push((dev, [None; 2]));
                interfaces.len() - 1
            }
            None => continue,
        };
        interfaces[at].1[usize::from(s.name == TRANSMIT)] = bytes(s.value);
    }
    if interfaces.is_empty() {
        return Err(ScrapeError::Parse(format!(
            "no {RECEIVE}{{device=…}} samples: is option url the exporter's /metrics?"
        )));
    }
    let counters = |rx, tx| Counters {
        rx_bytes: rx,
        tx_bytes: tx,
        width: CounterWidth::Bits64,
    };
    let mut reading = Reading::default();
    if let Some(device) = device {
        let Some(at) = interfaces.iter().position(|(d, _)| *d == device) else {
            let mut known: Vec<&str> = interfaces
                .iter()
                .map(|(d, _)| *d)
                .take(NAMES_QUOTED)
                .collect();
            if interfaces.len() > NAMES_QUOTED {
                known.push("…");
            }
            return Err(ScrapeError::Parse(format!(
                "option device '{device}' is not among the exporter's devices ({})",
                known.join(", ")
            )));
        };
        let pair = interfaces.remove(at).1;
        let [Some(rx), Some(tx)] = pair else {
            let metric = if pair[0].is_none() { RECEIVE } else { TRANSMIT };
            return Err(ScrapeError::Parse(format!(
                "{metric}{{device=\"{device}\"}} is missing, NaN, infinite or negative"
            )));
        };
        reading.wan = Some(counters(rx, tx));
    }
    reading.interfaces = interfaces
        .into_iter()
        .filter(|(name, _)| match wanted.is_empty() {
            true => *name != "lo",
            false => wanted.iter().any(|w| w == name),
        })
        .filter_map(|(name, pair)| match pair {
            [Some(rx), Some(tx)] => Some((name.to_owned(), counters(rx, tx))),
            _ => None,
        })
        .take(MAX_INTERFACES_PER_SOURCE)
        .collect();
    reading.devices = match stations(samples, STATION_RECEIVE, STATION_TRANSMIT, "mac") {
        None => stations(samples, HOSTAPD_RECEIVE, HOSTAPD_TRANSMIT, "station").unwrap_or_default(),
        Some(devices) => devices,
    };
    reading.uptime_secs = uptime(samples);
    Ok(reading)
}

/// `node_time_seconds - node_boot_time_seconds`, when both are there and
/// make sense (finite, boot not after now).
pub fn uptime(samples: &[Sample]) -> Option<u64> {
    let value = |name| {
        samples
            .iter()
            .find(|s| s.name == name)
            .map(|s| s.value)
            .filter(|v| v.is_finite() && *v >= 0.0)
    };
    let up = value(TIME)? - value(BOOT_TIME)?;
    (up >= 0.0).then_some(up as u64)
}

/// A count that marks a side with an unusable sample.
const UNUSABLE: u64 = u64::MAX / 2;

/// The devices in one pair of station metrics, None when there is no
/// sample of them. A station on two radios (or SSIDs) is summed; one with
/// an unusable sample, or more samples on one side than the other, is
/// left out.
fn stations(
    samples: &[Sample],
    receive: &str,
    transmit: &str,
    mac_label: &str,
) -> Option<Vec<DeviceReading>> {
    // By MAC: the device's sums, and how many samples each side had.
    let mut seen: Vec<(Mac, RxTx<u64>, RxTx<u64>)> = Vec::new();
    for s in samples
        .iter()
        .filter(|s| s.name == receive || s.name == transmit)
    {
        let Some(mac) = s.label(mac_label).and_then(|m| m.parse::<Mac>().ok()) else {
            continue;
        };
        let at = match seen.iter().position(|(m, ..)| *m == mac) {
            Some(at) => at,
            None if seen.len() < MAX_DEVICES_PER_SOURCE => {
                seen.push((mac, RxTx::ZERO, RxTx::ZERO));
                seen.len() - 1
            }
            None => continue,
        };
        let (_, sums, counts) = &mut seen[at];
        // The device downloaded what the access point sent it.
        let (sum, count) = match s.name == receive {
            true => (&mut sums.tx, &mut counts.tx),
            false => (&mut sums.rx, &mut counts.rx),
        };
        match bytes(s.value) {
            Some(value) => {
                *sum = sum.saturating_add(value);
                *count += 1;
            }
            None => *count = UNUSABLE,
        }
    }
    if seen.is_empty() {
        return None;
    }
    let devices = seen
        .into_iter()
        .filter(|(_, _, counts)| counts.rx == counts.tx && counts.rx < UNUSABLE)
        .map(|(mac, RxTx { rx, tx }, _)| DeviceReading {
            mac,
            ip: None,
            hostname: None,
            rx_bytes: rx,
            tx_bytes: tx,
            width: CounterWidth::Bits64,
        })
        .collect();
    Some(devices)
}

/// Which lines a scrape reads: the interface counters must be well-formed;
/// a malformed station line only loses that station.
pub fn lines_read(name: &str) -> Wanted {
    match name {
        RECEIVE | TRANSMIT => Wanted::Required,
        BOOT_TIME | TIME => Wanted::Optional,
        STATION_RECEIVE | STATION_TRANSMIT | HOSTAPD_RECEIVE | HOSTAPD_TRANSMIT => Wanted::Optional,
        _ => Wanted::No,
    }
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
        let samples = parse(response.text()?, lines_read)?;
        reading(&samples, self.device.as_deref(), &self.interfaces)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(_: &str) -> Wanted {
        Wanted::Required
    }

    #[test]
    fn uptime_is_the_exporters_clock_less_its_boot_time() {
        let with = |text: &str| uptime(&parse(text, lines_read).unwrap());
        let base = "node_network_receive_bytes_total{device=\"wan\"} 1\n";
        assert_eq!(
            with(&format!(
                "{base}# TYPE node_boot_time_seconds gauge\nnode_boot_time_seconds 1.7949e+09\n\
                 node_time_seconds 1.7950000125e+09\n"
            )),
            Some(100_012)
        );
        // Either missing, garbled, or boot after now: no uptime.
        assert_eq!(with(&format!("{base}node_time_seconds 1.795e+09\n")), None);
        assert_eq!(
            with(&format!(
                "{base}node_boot_time_seconds x\nnode_time_seconds 5\n"
            )),
            None
        );
        assert_eq!(
            with(&format!(
                "{base}node_boot_time_seconds 9\nnode_time_seconds 5\n"
            )),
            None
        );
    }

    fn one(line: &str) -> Sample<'_> {
        let mut samples = parse(line, all).unwrap();
        assert_eq!(samples.len(), 1, "{line}");
        samples.remove(0)
    }

    fn refused(text: &str) -> String {
        match parse(text, all) {
            Err(ScrapeError::Parse(why)) => why,
            other => panic!("{text:?} gave {other:?}"),
        }
    }

    #[test]
    fn samples_with_and_without_labels_timestamps_and_exponents() {
        let s = one("node_network_receive_bytes_total{device=\"eth0\"} 1.8274538496e+10\n");
        assert_eq!(s.value, 18_274_538_496.0);
        assert_eq!(s.label("device"), Some("eth0"));
        let s = one("up 1 1395066363000\n");
        assert_eq!((s.name, s.value, s.labels.len()), ("up", 1.0, 0));
        assert_eq!(one("x{} 3\n").value, 3.0);
        assert_eq!(one("x{a=\"1\",} 3\n").labels.len(), 1, "a trailing comma");
        assert_eq!(one("x { a = \"1\" , b=\"2\" } 4\n").label("b"), Some("2"));
        assert_eq!(one("x 1E3\n").value, 1000.0);
        assert_eq!(one("x -0.5\n").value, -0.5);
        assert_eq!(one("metric:with:colons 7\r\n").value, 7.0);
    }

    /// The scenarios of prometheus/common's expfmt text_parse_test.go that
    /// a sample reader meets: whitespace anywhere, comments that look like
    /// HELP and TYPE, a value right after `}`, negative timestamps,
    /// leading zeros.
    #[test]
    fn the_tricky_cases_of_the_go_parser() {
        let text = "\n\
            minimal_metric 1.234\n\
            another_metric -3e3 103948\n\
            # Even that:\n\
            no_labels{} 3\n\
            # HELP line for non-existing metric will be ignored.\n\
            # A normal comment.\n\
            #\n\
            # TYPE name counter\n\
            name{labelname=\"val1\",basename=\"basevalue\"} NaN\n\
            name {labelname=\"val2\",basename=\"base\\\"v\\\\al\\nue\"} 0.23 1234567890\n\
            # HELP name two-line\\n doc  str\\\\ing\n\
            \n \
            # HELP  name2  \tdoc str\"ing 2\n  \
            #    TYPE    name2 gauge\n\
            name2{labelname=\"val2\"\t,basename   =   \"basevalue2\"\t\t} +Inf 54321\n\
            name2{ labelname = \"val1\" , }-Inf\n\
            decoy -1 -2\n\
            my_summary_sum{n1=\"val2\"} 08 15\n  \
            my_summary{n1=\"val1\",n2=\"val2\",quantile=\"-12.34\",} NaN\n\
            request_duration_microseconds_bucket{le=\"+Inf\"} 2693\n\
            request_duration_microseconds_sum 1.7560473e+06\n";
        let samples = parse(text, all).unwrap();
        let values: Vec<String> = samples
            .iter()
            .map(|s| format!("{}={}", s.name, s.value))
            .collect();
        assert_eq!(
            values,
            [
                "minimal_metric=1.234",
                "another_metric=-3000",
                "no_labels=3",
                "name=NaN",
                "name=0.23",
                "name2=inf",
                "name2=-inf",
                "decoy=-1",
                "my_summary_sum=8",
                "my_summary=NaN",
                "request_duration_microseconds_bucket=2693",
                "request_duration_microseconds_sum=1756047.3",
            ]
        );
        assert_eq!(samples[4].label("basename"), Some("base\"v\\al\nue"));
        assert_eq!(samples[5].label("basename"), Some("basevalue2"));
        assert_eq!(samples[6].labels, [("labelname", "val1".to_owned())]);
        assert_eq!(samples[9].label("quantile"), Some("-12.34"));
    }

    #[test]
    fn label_values_unescape_and_keep_any_character() {
        let s = one(
            "m{path=\"C:\\\\dir\\\\\",quote=\"say \\\"hi\\\"\",nl=\"a\\nb\",brace=\"}{,=\",utf=\"Küche\"} 1\n",
        );
        assert_eq!(s.label("path"), Some(r"C:\dir\"));
        assert_eq!(s.label("quote"), Some("say \"hi\""));
        assert_eq!(s.label("nl"), Some("a\nb"));
        assert_eq!(s.label("brace"), Some("}{,="));
        assert_eq!(s.label("utf"), Some("Küche"));
    }

    #[test]
    fn numbers_as_go_writes_and_reads_them() {
        // Whole numbers, as counters are: exactly Go's float.
        for (text, value) in [
            ("0", 0.0),
            ("18274538496", 18_274_538_496.0),
            ("1.8274538496e+10", 18_274_538_496.0),
            ("8.1234567891e+10", 81_234_567_891.0),
            ("1e+06", 1_000_000.0),
            ("5.", 5.0),
            ("08", 8.0),
            ("1E3", 1000.0),
            ("+7", 7.0),
            ("-3e3", -3000.0),
            // 2^53 + 2 and values past 2^63, as Go's %g prints them.
            ("9.007199254740994e+15", 9_007_199_254_740_994.0),
            ("1.2e+19", 1.2e19),
            ("1.8446744073709550e+19", 18_446_744_073_709_549_568.0),
            ("18446744073709551615", 18_446_744_073_709_551_616.0),
            (
                "123456789012345678901234567890123456789012",
                1.2345678901234568e41,
            ),
            ("1e400", f64::INFINITY),
        ] {
            assert_eq!(parse_value(text), Some(value), "{text}");
        }
        for (text, value) in [
            ("2.4951e-05", 2.4951e-5),
            ("-0.5", -0.5),
            (".5", 0.5),
            ("1.234", 1.234),
        ] {
            let got = parse_value(text).unwrap();
            assert!((got - value).abs() <= value.abs() * 1e-15, "{text}: {got}");
        }
        for (text, value) in [
            ("+Inf", f64::INFINITY),
            ("Inf", f64::INFINITY),
            ("inf", f64::INFINITY),
            ("-Inf", f64::NEG_INFINITY),
            ("-infinity", f64::NEG_INFINITY),
            ("+Infinity", f64::INFINITY),
        ] {
            assert_eq!(parse_value(text), Some(value), "{text}");
        }
        assert!(parse_value("NaN").unwrap().is_nan());
        assert!(parse_value("nan").unwrap().is_nan());
        for bad in [
            "", "-", "+", ".", "e5", "1e", "1e+", "1.2.3", "0x10", "1_000", "++1", "1e5.5",
            "Infin", "+NaN", "1,5", "١",
        ] {
            assert_eq!(parse_value(bad), None, "{bad}");
        }
    }

    #[test]
    fn comments_help_type_and_blank_lines_are_skipped() {
        let text =
            "# HELP x a help\n# TYPE x counter\n\n   \n# just a comment\nx 1\n  # indented\n";
        assert_eq!(parse(text, all).unwrap().len(), 1);
        assert!(parse("", all).unwrap().is_empty());
        assert!(parse("\n\n", all).unwrap().is_empty());
    }

    #[test]
    fn malformed_lines_say_which_line_and_why() {
        for (text, why) in [
            ("x", "expected a value"),
            ("{a=\"b\"} 1", "expected a metric name"),
            (
                "@invalidmetric{label=\"bla\"} 3.14 2",
                "expected a metric name",
            ),
            ("1x 1", "expected a metric name"),
            ("metric{@=\"bla\"} 3.14", "expected a label name"),
            (
                "metric{label+=\"bla\"} 3.14",
                "expected = after a label name",
            ),
            ("metric{label=bla} 3.14", "expected a quoted label value"),
            ("metric{label=\"bla\"+} 3.14", "expected , or }"),
            ("metric{label=\"\\t\"} 3.14", "unknown escape"),
            ("metric{label=\"new", "unclosed label value"),
            ("x{a=\"b\" c=\"d\"} 1", "expected , or }"),
            ("x{a=\"b\"", "unclosed label set"),
            ("x{a=\"b\",", "unclosed label set"),
            ("metric{label=\"bla\"} blubb", "expected a number"),
            ("metric{label=\"bla\"} 3.14 2.72", "expected a timestamp"),
            ("metric{label=\"bla\"} 3.14 2 3", "unexpected text"),
            ("x 0x10", "expected a number"),
        ] {
            let got = refused(&format!("ok 1\n{text}\n"));
            assert!(
                got.starts_with("line 2: ") && got.contains(why),
                "{text}: {got}"
            );
        }
        let labels: String = (0..=MAX_LABELS).map(|i| format!("l{i}=\"v\",")).collect();
        assert!(refused(&format!("x{{{labels}}} 1\n")).contains("too many labels"));
    }

    #[test]
    fn a_body_cut_off_mid_line_is_refused() {
        // Go's parser: "unexpected end of input stream". Read as it is,
        // the cut-off number would be a smaller counter.
        let got = refused("bla 3.14\nblubber 42");
        assert!(
            got.starts_with("line 2: ") && got.contains("cut off"),
            "{got}"
        );
        let cut = "node_network_receive_bytes_total{device=\"wan\"} 18274";
        assert!(parse(cut, lines_read).is_err());
    }

    #[test]
    fn lines_not_wanted_are_not_read_and_optional_ones_may_be_malformed() {
        let text = "a 1\nb 2\na 3\nb {\nc{x=\"unescaped \"quote\"\"} 4\nc 5\n";
        let wanted = |n: &str| match n {
            "a" => Wanted::Required,
            "c" => Wanted::Optional,
            _ => Wanted::No,
        };
        let kept = parse(text, wanted).unwrap();
        let kept: Vec<_> = kept.iter().map(|s| (s.name, s.value)).collect();
        assert_eq!(kept, [("a", 1.0), ("a", 3.0), ("c", 5.0)]);
        assert!(refused("a 1\na {\n").starts_with("line 2"));
    }

    #[test]
    fn too_many_wanted_samples_are_refused() {
        let text = "a 1\n".repeat(MAX_SAMPLES + 1);
        assert!(refused(&text).contains("more than"));
        assert_eq!(parse(&text, |_| Wanted::No).unwrap().len(), 0);
    }

    fn node(text: &str) -> Vec<Sample<'_>> {
        parse(text, lines_read).unwrap()
    }

    #[test]
    fn the_wan_device_the_other_interfaces_and_stations() {
        let samples = node(
            "node_network_receive_bytes_total{device=\"wan\"} 8.1234567890e+10\n\
             node_network_transmit_bytes_total{device=\"wan\"} 12345\n\
             node_network_receive_bytes_total{device=\"lo\"} 5\n\
             node_network_transmit_bytes_total{device=\"lo\"} 5\n\
             node_network_receive_bytes_total{device=\"br-lan\"} 10\n\
             node_network_transmit_bytes_total{device=\"br-lan\"} 20\n\
             node_network_receive_bytes_total{device=\"eth1\"} 10\n\
             node_network_transmit_bytes_total{device=\"eth1\"} NaN\n\
             node_network_receive_bytes_total{device=\"eth9\"} -1\n\
             node_network_transmit_bytes_total{device=\"eth9\"} 1\n\
             wifi_station_receive_bytes_total{ifname=\"wlan0\",mac=\"aa:bb:cc:00:00:01\"} 100\n\
             wifi_station_transmit_bytes_total{mac=\"aa:bb:cc:00:00:01\",ifname=\"wlan0\"} 900\n\
             wifi_station_receive_bytes_total{ifname=\"wlan1\",mac=\"AA:BB:CC:00:00:01\"} 7\n\
             wifi_station_transmit_bytes_total{ifname=\"wlan1\",mac=\"AA:BB:CC:00:00:01\"} 100\n\
             wifi_station_receive_bytes_total{ifname=\"wlan0\",mac=\"aa:bb:cc:00:00:02\"} +Inf\n\
             wifi_station_transmit_bytes_total{ifname=\"wlan0\",mac=\"aa:bb:cc:00:00:02\"} 1\n\
             wifi_station_transmit_bytes_total{ifname=\"wlan0\",mac=\"not-a-mac\"} 1\n",
        );
        let r = reading(&samples, Some("wan"), &[]).unwrap();
        let wan = r.wan.unwrap();
        assert_eq!((wan.rx_bytes, wan.tx_bytes), (81_234_567_890, 12_345));
        assert_eq!(wan.width, CounterWidth::Bits64);
        let names: Vec<&str> = r.interfaces.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            ["br-lan"],
            "lo left out; eth1 (NaN) and eth9 (negative) have no usable pair"
        );
        assert_eq!(r.devices.len(), 1, "the station with +Inf is left out");
        let station = &r.devices[0];
        assert_eq!(station.mac, [0xaa, 0xbb, 0xcc, 0, 0, 1]);
        // Summed over both radios; the device's own view.
        assert_eq!((station.rx_bytes, station.tx_bytes), (1000, 107));
        let only = reading(&samples, None, &["lo".into(), "wan".into()]).unwrap();
        assert!(only.wan.is_none());
        let names: Vec<&str> = only.interfaces.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            ["wan", "lo"],
            "no option device: the WAN is an interface; in the exporter's order"
        );
    }

    #[test]
    fn hostapd_stations_count_only_without_wifi_stations() {
        let base = "node_network_receive_bytes_total{device=\"eth0\"} 1\n\
                    node_network_transmit_bytes_total{device=\"eth0\"} 1\n\
                    hostapd_station_receive_bytes_total{vif=\"wlan0\",ssid=\"Home\",station=\"aa:bb:cc:00:00:03\"} 30\n\
                    hostapd_station_transmit_bytes_total{vif=\"wlan0\",ssid=\"Home\",station=\"aa:bb:cc:00:00:03\"} 300\n\
                    hostapd_station_transmit_bytes_total{vif=\"wlan1\",ssid=\"Say \"hi\"\",station=\"aa:bb:cc:00:00:04\"} 9\n";
        let r = reading(&node(base), None, &[]).unwrap();
        assert_eq!(r.devices.len(), 1, "the unescaped SSID line is skipped");
        assert_eq!((r.devices[0].rx_bytes, r.devices[0].tx_bytes), (300, 30));
        let both = format!(
            "{base}wifi_station_receive_bytes_total{{radio=\"radio0\",ifname=\"phy0-ap0\",mac=\"aa:bb:cc:00:00:03\"}} 31\n\
             wifi_station_transmit_bytes_total{{radio=\"radio0\",ifname=\"phy0-ap0\",mac=\"aa:bb:cc:00:00:03\"}} 301\n"
        );
        let r = reading(&node(&both), None, &[]).unwrap();
        assert_eq!(r.devices.len(), 1);
        assert_eq!((r.devices[0].rx_bytes, r.devices[0].tx_bytes), (301, 31));
    }

    #[test]
    fn a_missing_wan_device_or_metric_is_explained() {
        let samples = node(
            "node_network_receive_bytes_total{device=\"eth0\"} 1\n\
             node_network_transmit_bytes_total{device=\"eth0\"} 1\n",
        );
        let e = reading(&samples, Some("wan"), &[]).unwrap_err().to_string();
        assert!(
            e.contains("option device 'wan'") && e.contains("eth0"),
            "{e}"
        );
        let e = reading(&node("up 1\n"), None, &[]).unwrap_err().to_string();
        assert!(e.contains("node_network_receive_bytes_total"), "{e}");
        let nan = node(
            "node_network_receive_bytes_total{device=\"wan\"} 1\n\
             node_network_transmit_bytes_total{device=\"wan\"} NaN\n",
        );
        let e = reading(&nan, Some("wan"), &[]).unwrap_err().to_string();
        assert!(
            e.contains("node_network_transmit_bytes_total{device=\"wan\"}"),
            "{e}"
        );
        let many: String = (0..40)
            .map(|i| format!("node_network_receive_bytes_total{{device=\"veth{i:02}\"}} 1\n"))
            .collect();
        let e = reading(&node(&many), Some("wan"), &[])
            .unwrap_err()
            .to_string();
        assert!(e.contains("veth15, …)") && !e.contains("veth16"), "{e}");
    }

    #[test]
    fn byte_counts_are_finite_non_negative_and_below_2_to_the_64() {
        assert_eq!(bytes(0.0), Some(0));
        assert_eq!(bytes(18_274_538_496.0), Some(18_274_538_496));
        assert_eq!(bytes(1.5), Some(1));
        assert_eq!(
            bytes(18_446_744_073_709_549_568.0),
            Some(18_446_744_073_709_549_568)
        );
        for bad in [
            f64::NAN,
            f64::INFINITY,
            f64::NEG_INFINITY,
            -1.0,
            1.8446744073709552e19,
            1e300,
        ] {
            assert_eq!(bytes(bad), None, "{bad}");
        }
    }
}
