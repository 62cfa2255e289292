//! `/api/v1/upstream` and `netmeter upstream --json`: each upstream
//! router's health, counters and devices, and the double-NAT difference.

use serde::{Deserialize, Serialize};

use crate::config::upstream::UpstreamKind;
use crate::upstream::account::{SeriesTotals, UpstreamAccounts, UpstreamTotals};
use crate::upstream::runner::SourceStatus;
use crate::upstream::sources::LineKind;

/// Field names are a contract with scripts: only add. The CLI decodes
/// what the daemon sent with these same types, missing fields as defaults.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct UpstreamReport {
    pub sources: Vec<SourceView>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SourceView {
    pub name: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub ok: bool,
    pub last_success: Option<u64>,
    pub last_error: Option<String>,
    /// dns, connect, timeout, protocol, auth, parse or local.
    pub error_stage: Option<String>,
    pub next_attempt: Option<u64>,
    /// Stopped until the configuration changes (wrong credentials).
    pub stopped: bool,
    /// The byte figures are integrated from the router's rates (deco), not
    /// counted: estimates within the error docs/UPSTREAM.md states.
    pub estimated: bool,
    /// The router's Internet side, from the router's view: rx = download.
    pub wan: Option<TrafficView>,
    pub interfaces: Vec<NamedTraffic>,
    pub devices: Vec<UpstreamDeviceView>,
    /// Traffic the upstream WAN carried beyond netmeter's own WAN: devices
    /// that bypass netmeter (double NAT).
    pub bypass: Option<TrafficView>,
    /// Line statistics (DrayTek), as of the last reading.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub line: Vec<LineView>,
    /// The router's uptime at the last reading, where the protocol gives it.
    pub uptime: Option<u64>,
    /// The latest time counters were taken to have started over, and why.
    pub last_reset: Option<ResetView>,
}

/// A reset decision: `reason` is uptime, all_counters_fell, max_rate,
/// relisted, zero_then_lower or lower_half.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ResetView {
    pub at: u64,
    pub reason: String,
    pub detail: String,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct TrafficView {
    pub rx_bytes: u64,
    pub tx_bytes: u64,
    pub rx_rate: u64,
    pub tx_rate: u64,
}

impl From<&SeriesTotals> for TrafficView {
    fn from(t: &SeriesTotals) -> Self {
        TrafficView {
            rx_bytes: t.rx_bytes(),
            tx_bytes: t.tx_bytes(),
            rx_rate: t.rx_rate,
            tx_rate: t.tx_rate,
        }
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NamedTraffic {
    pub name: String,
    #[serde(flatten)]
    pub traffic: TrafficView,
}

/// rx is what the device downloaded, as for netmeter's own devices.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct UpstreamDeviceView {
    pub mac: String,
    pub ip: Option<String>,
    pub hostname: Option<String>,
    pub rx_bytes: u64,
    pub tx_bytes: u64,
    pub rx_rate: u64,
    pub tx_rate: u64,
    pub last_seen: u64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LineView {
    pub name: String,
    /// "near" or "far" end of the line, where the statistic has two.
    pub end: Option<String>,
    pub value: f64,
    /// "counter" (only grows) or "gauge".
    pub kind: String,
}

impl UpstreamReport {
    /// Status and accounts joined by source name, in configuration order.
    pub fn new(status: &[SourceStatus], accounts: &UpstreamAccounts) -> Self {
        let sources = status
            .iter()
            .map(|s| {
                let mut view = SourceView {
                    name: s.name.clone(),
                    kind: s.kind.clone(),
                    ok: s.ok,
                    last_success: s.last_success,
                    last_error: s.last_error.clone(),
                    error_stage: s.error_stage.clone(),
                    next_attempt: s.next_attempt,
                    stopped: s.stopped,
                    estimated: UpstreamKind::named(&s.kind).is_some_and(UpstreamKind::estimates),
                    ..SourceView::default()
                };
                if let Some(t) = accounts.get(&s.name) {
                    fill(&mut view, t);
                }
                view
            })
            .collect();
        UpstreamReport { sources }
    }
}

fn fill(view: &mut SourceView, t: &UpstreamTotals) {
    view.uptime = t.uptime_secs;
    view.last_reset = t.last_reset.as_ref().map(|r| ResetView {
        at: r.at,
        reason: r.reason.name().to_owned(),
        detail: r.detail.clone(),
    });
    view.wan = t.wan.as_ref().map(TrafficView::from);
    view.interfaces = t
        .interfaces
        .iter()
        .map(|(name, totals)| NamedTraffic {
            name: name.clone(),
            traffic: totals.into(),
        })
        .collect();
    view.devices = t
        .devices
        .iter()
        .map(|d| UpstreamDeviceView {
            mac: d.mac.to_string(),
            ip: d.ip.map(|ip| ip.to_string()),
            hostname: d.hostname.clone(),
            rx_bytes: d.totals.rx_bytes(),
            tx_bytes: d.totals.tx_bytes(),
            rx_rate: d.totals.rx_rate,
            tx_rate: d.totals.tx_rate,
            last_seen: d.last_seen,
        })
        .collect();
    view.bypass = t.bypass.as_ref().map(|b| TrafficView {
        rx_bytes: b.rx_bytes,
        tx_bytes: b.tx_bytes,
        rx_rate: b.rx_rate,
        tx_rate: b.tx_rate,
    });
    view.line = t
        .line
        .iter()
        .map(|l| LineView {
            name: l.name.clone(),
            end: l.end.map(str::to_owned),
            value: l.value,
            kind: match l.kind {
                LineKind::Counter => "counter",
                LineKind::Gauge => "gauge",
            }
            .into(),
        })
        .collect();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_report_reads_back_equal_to_what_was_sent() {
        let traffic = TrafficView {
            rx_bytes: 1,
            tx_bytes: 2,
            rx_rate: 3,
            tx_rate: 4,
        };
        let report = UpstreamReport {
            sources: vec![
                SourceView {
                    name: "isp".into(),
                    kind: "draytek".into(),
                    ok: true,
                    last_success: Some(1_795_000_000),
                    last_error: Some("timeout: no answer within 5 s".into()),
                    error_stage: Some("timeout".into()),
                    next_attempt: Some(1_795_000_060),
                    stopped: true,
                    estimated: true,
                    wan: Some(traffic),
                    interfaces: vec![NamedTraffic {
                        name: "WIRED".into(),
                        traffic,
                    }],
                    devices: vec![UpstreamDeviceView {
                        mac: "02:00:00:00:00:09".into(),
                        ip: Some("192.168.1.9".into()),
                        hostname: Some("nas".into()),
                        rx_bytes: 5,
                        tx_bytes: 6,
                        rx_rate: 7,
                        tx_rate: 8,
                        last_seen: 1_795_000_000,
                    }],
                    bypass: Some(traffic),
                    line: vec![LineView {
                        name: "crc".into(),
                        end: Some("near".into()),
                        value: 12.5,
                        kind: "counter".into(),
                    }],
                    uptime: Some(86_400),
                    last_reset: Some(ResetView {
                        at: 1_795_000_000,
                        reason: "uptime".into(),
                        detail: "the router's uptime went back from 86400 s to 40 s".into(),
                    }),
                },
                SourceView::default(),
            ],
        };
        let body = serde_json::to_vec(&report).unwrap();
        assert_eq!(
            serde_json::from_slice::<UpstreamReport>(&body).unwrap(),
            report
        );
    }
}
