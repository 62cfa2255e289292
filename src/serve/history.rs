//! History as the API and `netmeter history` show it: one period's buckets
//! of one interface or device, or of the WAN interfaces and top devices.

use crate::mac::Mac;
use serde::{Deserialize, Serialize};

use crate::store::calendar::{Calendar, Granularity, UtcOffset};
use crate::store::state::State;
use crate::store::timeline::Track;

/// Devices shown when no series is asked for.
pub const TOP_DEVICES: usize = 5;

/// `/api/v1/history` and `netmeter history --json`. Only add fields.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryReport {
    pub period: String,
    /// When the report was made (unix seconds), for estimates.
    pub now: u64,
    pub series: Vec<SeriesReport>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeriesReport {
    /// The interface name, or the device's MAC ("other" for devices beyond
    /// max_devices).
    pub name: String,
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
    /// Oldest first; the last one is the running period.
    pub buckets: Vec<BucketView>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BucketView {
    /// Unix seconds; periods are in the router's local time.
    pub start: i64,
    pub end: i64,
    pub rx_bytes: u64,
    pub tx_bytes: u64,
}

/// What to report.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HistoryQuery {
    pub series: Option<Series>,
    pub period: Granularity,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Series {
    Interface(String),
    /// A MAC address, or a device's name to look up.
    Device(String),
    /// An interface of that name, else a device (`netmeter history NAME`).
    Any(String),
}

/// `interface=NAME` or `device=MAC|NAME`, and `period=fiveminute|hour|day|month|year`
/// (default day). Errors say what to write instead.
pub fn parse_query(query: Option<&str>) -> Result<HistoryQuery, String> {
    let mut out = HistoryQuery {
        series: None,
        period: Granularity::Day,
    };
    for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        let value = super::http::decode_component(value)?;
        match key {
            "interface" | "device" | "name" if out.series.is_some() => {
                return Err("give one of interface=, device= or name=, once".into());
            }
            "name" => out.series = Some(Series::Any(value)),
            "interface" => out.series = Some(Series::Interface(value)),
            "device" => out.series = Some(Series::Device(value)),
            "period" => {
                out.period = Granularity::parse(&value).ok_or_else(|| {
                    format!("unknown period '{value}': use fiveminute, hour, day, month or year")
                })?
            }
            _ => {
                return Err(format!(
                    "unknown parameter '{key}': use interface=, device= (or name=) and period="
                ));
            }
        }
    }
    Ok(out)
}

/// Builds the report. `wan` names the WAN interfaces (shown without a
/// series); `hostname` names a MAC. Err is a "not found" message.
pub fn report<Z: UtcOffset>(
    state: &State,
    cal: &Calendar<Z>,
    query: &HistoryQuery,
    wan: &[String],
    hostname: &dyn Fn(&Mac) -> Option<String>,
    now: u64,
) -> Result<HistoryReport, String> {
    let g = query.period;
    let timeline = &state.timeline;
    let interface = |name: &str| {
        timeline
            .interfaces
            .get(name)
            .map(|t| series(cal, g, name.to_owned(), "interface", None, t))
    };
    let device = |mac: &Mac| {
        timeline.devices.get(mac).map(|t| {
            let name = if *mac == Mac::OTHER {
                "other".to_owned()
            } else {
                mac.to_string()
            };
            series(cal, g, name, "device", hostname(mac), t)
        })
    };
    let series = match &query.series {
        Some(Series::Interface(name)) => vec![interface(name).ok_or_else(|| {
            format!("no history for interface '{name}': see netmeter interfaces for the names")
        })?],
        Some(Series::Any(wanted)) if timeline.interfaces.contains_key(wanted) => {
            vec![interface(wanted).ok_or_else(String::new)?]
        }
        Some(Series::Device(wanted) | Series::Any(wanted)) => {
            let mac =
                if wanted == "other" {
                    Some(Mac::OTHER)
                } else {
                    wanted.parse().ok().or_else(|| {
                        timeline.devices.keys().copied().find(|mac| {
                            hostname(mac).is_some_and(|h| h.eq_ignore_ascii_case(wanted))
                        })
                    })
                };
            vec![mac.and_then(|m| device(&m)).ok_or_else(|| {
                format!(
                    "no history for '{wanted}': give an interface from netmeter interfaces, \
                     or a MAC or name from netmeter devices"
                )
            })?]
        }
        None => {
            let mut out: Vec<SeriesReport> = wan.iter().filter_map(|n| interface(n)).collect();
            let mut devices: Vec<SeriesReport> =
                timeline.devices.keys().filter_map(device).collect();
            let newest = |s: &SeriesReport| {
                s.buckets
                    .last()
                    .map_or(0, |b| b.rx_bytes.saturating_add(b.tx_bytes))
            };
            devices.sort_by_key(|s| std::cmp::Reverse(newest(s)));
            devices.truncate(TOP_DEVICES);
            out.extend(devices);
            out
        }
    };
    Ok(HistoryReport {
        period: g.name().to_owned(),
        now,
        series,
    })
}

fn series<Z: UtcOffset>(
    cal: &Calendar<Z>,
    g: Granularity,
    name: String,
    kind: &str,
    hostname: Option<String>,
    track: &Track,
) -> SeriesReport {
    let buckets = track
        .history
        .ring(g)
        .map(|ring| {
            ring.buckets()
                .map(|(index, crate::rxtx::RxTx { rx, tx })| BucketView {
                    start: cal.start(g, index),
                    end: cal.end(g, index),
                    rx_bytes: rx,
                    tx_bytes: tx,
                })
                .collect()
        })
        .unwrap_or_default();
    SeriesReport {
        name,
        kind: kind.to_owned(),
        hostname,
        buckets,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_report_reads_back_equal_to_what_was_sent() {
        let bucket = |start, rx_bytes| BucketView {
            start,
            end: start + 86_400,
            rx_bytes,
            tx_bytes: 7,
        };
        let report = HistoryReport {
            period: "day".into(),
            now: 1_795_000_000,
            series: vec![
                SeriesReport {
                    name: "wan".into(),
                    kind: "interface".into(),
                    hostname: None,
                    buckets: vec![bucket(0, 1), bucket(86_400, 2)],
                },
                SeriesReport {
                    name: "aa:bb:cc:dd:ee:01".into(),
                    kind: "device".into(),
                    hostname: Some("laptop".into()),
                    buckets: Vec::new(),
                },
            ],
        };
        let body = crate::serve::api::json(&report).body;
        assert_eq!(
            serde_json::from_slice::<HistoryReport>(&body).unwrap(),
            report
        );
    }

    #[test]
    fn queries_parse_with_defaults_and_errors_say_what_to_write() {
        assert_eq!(
            parse_query(Some("interface=br-lan&period=hour")).unwrap(),
            HistoryQuery {
                series: Some(Series::Interface("br-lan".into())),
                period: Granularity::Hour
            }
        );
        assert_eq!(
            parse_query(Some("device=Kid%27s+laptop")).unwrap().series,
            Some(Series::Device("Kid's laptop".into()))
        );
        assert_eq!(parse_query(None).unwrap().period, Granularity::Day);
        assert!(
            parse_query(Some("period=week"))
                .unwrap_err()
                .contains("fiveminute")
        );
        assert!(
            parse_query(Some("colour=red"))
                .unwrap_err()
                .contains("interface=")
        );
        assert!(parse_query(Some("interface=a&device=b")).is_err());
        assert!(parse_query(Some("device=%zz")).is_err());
        assert!(parse_query(Some("device=%C3")).is_err());
    }
}
