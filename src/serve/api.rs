//! The JSON API: the shapes the CLI's `--json` shares, and the routes.
//!
//! The token comes first (`option token`, compared in constant time; 401 with
//! `WWW-Authenticate`), then 405 with `Allow`, 400 for query parameters on
//! routes that take none, then the routes; every error is JSON, and data
//! routes answer 503 until the first refresh. The view types here
//! (`StatusView`, `InterfacesReport`, `DevicesReport`, …) are the contract:
//! the CLI decodes the daemon's answers into them and its tables are tested
//! from what `route` sends. Endpoints: `docs/API.md`; schemas:
//! `docs/openapi.json` (checked by `tests/namespaces/openapi.rs`).

use super::history;
use super::http::{self, Request, Response};
use super::metrics;
use crate::account::attribution::Attribution;
use crate::account::protocols::ClassTotals;
use crate::account::{DeviceAccounts, DeviceTotals, InterfaceTotals, UnattributedTotals};
use crate::collect::identity::Names;
use crate::config::Secret;
use crate::mac::Mac;
use crate::rxtx::RxTx;
use crate::store::calendar::{Calendar, Granularity, SystemZone, UtcOffset};
use crate::store::persist::StoreStatus;
use crate::store::state::State;
use crate::store::timeline::{ClockState, Timeline, Track};
use serde::{Deserialize, Serialize};
use std::sync::{Arc, Mutex};

/// One interface in `netmeter interfaces --json` and `/api/v1/interfaces`.
/// Field names are a contract with scripts and Home Assistant: only add.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InterfaceView {
    pub name: String,
    pub rx_bytes: u64,
    pub tx_bytes: u64,
    pub rx_packets: u64,
    pub tx_packets: u64,
    pub rx_errors: u64,
    pub tx_errors: u64,
    pub rx_dropped: u64,
    pub tx_dropped: u64,
    /// Bytes per second over the last refresh interval.
    pub rx_rate: u64,
    pub tx_rate: u64,
    /// false while the interface does not exist (its totals are kept).
    pub present: bool,
    pub first_seen: u64,
    pub last_seen: u64,
}

impl From<&InterfaceTotals> for InterfaceView {
    fn from(t: &InterfaceTotals) -> Self {
        InterfaceView {
            name: t.name.clone(),
            rx_bytes: t.rx_bytes.total(),
            tx_bytes: t.tx_bytes.total(),
            rx_packets: t.rx_packets.total(),
            tx_packets: t.tx_packets.total(),
            rx_errors: t.rx_errors.total(),
            tx_errors: t.tx_errors.total(),
            rx_dropped: t.rx_dropped.total(),
            tx_dropped: t.tx_dropped.total(),
            rx_rate: t.rx_rate,
            tx_rate: t.tx_rate,
            present: t.present,
            first_seen: t.first_seen,
            last_seen: t.last_seen,
        }
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct InterfacesReport {
    pub interfaces: Vec<InterfaceView>,
}

/// One device in `netmeter devices --json` and `/api/v1/devices`. rx is
/// what the device received (download), tx what it sent (upload), in IP
/// bytes. Field names are a contract: only add.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceView {
    pub mac: String,
    pub ips: Vec<String>,
    pub hostname: Option<String>,
    /// From a `config device` section.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// A locally administered (randomised, "private") MAC: the same phone
    /// may appear under several.
    #[serde(default)]
    pub random_mac: bool,
    pub rx_bytes: u64,
    pub tx_bytes: u64,
    pub rx_packets: u64,
    pub tx_packets: u64,
    pub rx_rate: u64,
    pub tx_rate: u64,
    pub first_seen: u64,
    pub last_seen: u64,
    /// What upstream routers counted for this device (joined by MAC).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub upstream: Vec<UpstreamFigure>,
    /// Bytes by protocol class, largest first (conntrack placement only).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub protocols: Vec<ProtocolFigure>,
    /// Bytes in the running day, from history; absent when the device's
    /// daily history is off (`device_history`) or before the daemon's
    /// first refresh.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub today: Option<PeriodFigure>,
    /// Bytes in the running billing month (`month_rotate`), likewise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub month: Option<PeriodFigure>,
}

/// A device's bytes in one running period of its history.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeriodFigure {
    pub rx_bytes: u64,
    pub tx_bytes: u64,
}

/// When the running day and billing month began (Unix seconds, by the
/// router's clock and zone): what the devices' `today` and `month` count.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunningPeriods {
    pub day_start: i64,
    pub month_start: i64,
}

/// One protocol class's bytes for a device, since `protocols_since`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProtocolFigure {
    pub class: String,
    pub rx_bytes: u64,
    pub tx_bytes: u64,
}

/// One upstream router's totals for a device netmeter counts too.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UpstreamFigure {
    /// The upstream section's name.
    pub source: String,
    pub rx_bytes: u64,
    pub tx_bytes: u64,
}

/// A device only an upstream router sees (it bypasses netmeter).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UpstreamOnlyDevice {
    pub mac: String,
    pub ip: Option<String>,
    pub hostname: Option<String>,
    pub source: String,
    pub rx_bytes: u64,
    pub tx_bytes: u64,
    pub rx_rate: u64,
    pub tx_rate: u64,
    pub last_seen: u64,
}

impl DeviceView {
    fn new(t: &DeviceTotals, names: &Names) -> DeviceView {
        DeviceView {
            mac: t.mac.to_string(),
            ips: t.ips.iter().map(|ip| ip.to_string()).collect(),
            hostname: names.hostname(&t.mac, &t.ips).map(str::to_string),
            group: names.group(&t.mac).map(str::to_string),
            random_mac: t.mac.is_locally_administered(),
            rx_bytes: t.rx_bytes,
            tx_bytes: t.tx_bytes,
            rx_packets: t.rx_packets,
            tx_packets: t.tx_packets,
            rx_rate: t.rx_rate,
            tx_rate: t.tx_rate,
            first_seen: t.first_seen,
            last_seen: t.last_seen,
            upstream: Vec::new(),
            protocols: Vec::new(),
            today: None,
            month: None,
        }
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DevicesReport {
    pub devices: Vec<DeviceView>,
    /// Traffic counted but not tied to a device: the kernel's sets were full.
    pub unattributed: UnattributedTotals,
    /// Devices beyond `max_devices`, folded together; absent when none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub other: Option<UnattributedTotals>,
    /// Devices only upstream routers count; absent when none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub upstream_only: Vec<UpstreamOnlyDevice>,
    /// Unix time the protocol view began counting; absent when the
    /// placement gives none (only conntrack does).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocols_since: Option<u64>,
    /// What the devices' `today` and `month` cover; absent when no device
    /// history is kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub periods: Option<RunningPeriods>,
}

impl DevicesReport {
    pub fn new(accounts: &DeviceAccounts, names: &Names) -> DevicesReport {
        let o = accounts.other();
        DevicesReport {
            devices: accounts
                .devices()
                .map(|t| DeviceView::new(t, names))
                .collect(),
            unattributed: accounts.unattributed(),
            other: (o.rx_bytes + o.tx_bytes > 0).then_some(UnattributedTotals {
                rx_bytes: o.rx_bytes,
                tx_bytes: o.tx_bytes,
                rx_packets: o.rx_packets,
                tx_packets: o.tx_packets,
            }),
            upstream_only: Vec::new(),
            protocols_since: None,
            periods: None,
        }
    }

    /// Each device's bytes in the running day and billing month, read from
    /// its history so they agree with `netmeter history` to the byte.
    pub fn join_periods<Z: UtcOffset>(
        &mut self,
        timeline: &Timeline,
        calendar: &Calendar<Z>,
        now_unix: i64,
    ) {
        let day = calendar.period(Granularity::Day, now_unix);
        let month = calendar.period(Granularity::Month, now_unix);
        self.periods = Some(RunningPeriods {
            day_start: calendar.start(Granularity::Day, day),
            month_start: calendar.start(Granularity::Month, month),
        });
        let figure = |track: &Track, g: Granularity, index: i64| {
            let ring = track.history.ring(g)?;
            let b = ring.get(index).unwrap_or(RxTx::ZERO);
            Some(PeriodFigure {
                rx_bytes: b.rx,
                tx_bytes: b.tx,
            })
        };
        for view in &mut self.devices {
            let Some(track) = view
                .mac
                .parse()
                .ok()
                .and_then(|mac: Mac| timeline.devices.get(&mac))
            else {
                continue;
            };
            view.today = figure(track, Granularity::Day, day);
            view.month = figure(track, Granularity::Month, month);
        }
    }

    /// The protocol view's bytes per device, largest class first.
    pub fn join_classes(&mut self, classes: &ClassTotals) {
        self.protocols_since = Some(classes.since_unix());
        for view in &mut self.devices {
            let Some(by_class) = view
                .mac
                .parse()
                .ok()
                .and_then(|mac: Mac| classes.device(&mac))
            else {
                continue;
            };
            view.protocols = by_class
                .iter()
                .map(|(class, b)| ProtocolFigure {
                    class: class.clone(),
                    rx_bytes: b.rx,
                    tx_bytes: b.tx,
                })
                .collect();
            view.protocols
                .sort_by_key(|p| std::cmp::Reverse(p.rx_bytes.saturating_add(p.tx_bytes)));
        }
    }

    /// Upstream routers' per-device figures: beside netmeter's own for the
    /// same MAC, else as devices of their own.
    pub fn join_upstream(&mut self, figures: Vec<crate::upstream::DeviceFigure>) {
        for f in figures {
            let mac = f.mac.to_string();
            match self.devices.iter_mut().find(|v| v.mac == mac) {
                Some(view) => view.upstream.push(UpstreamFigure {
                    source: f.source,
                    rx_bytes: f.rx_bytes,
                    tx_bytes: f.tx_bytes,
                }),
                None => self.upstream_only.push(UpstreamOnlyDevice {
                    mac,
                    ip: f.ip.map(|ip| ip.to_string()),
                    hostname: f.hostname,
                    source: f.source,
                    rx_bytes: f.rx_bytes,
                    tx_bytes: f.tx_bytes,
                    rx_rate: f.rx_rate,
                    tx_rate: f.tx_rate,
                    last_seen: f.last_seen,
                }),
            }
        }
    }
}

/// What `/api/v1/status` and `netmeter check` say about per-device accounting.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct PerDeviceStatus {
    pub active: bool,
    /// Where the counters sit, in words.
    pub placement: String,
    /// "netdev", "forward" or "off".
    pub placement_kind: String,
    /// Why per-device accounting is off, and what to do.
    pub off_reason: Option<String>,
    /// How many times the table vanished and its traffic since the last
    /// read is unknown (neither zero nor counted twice).
    pub unknown_gaps: u32,
    /// Unix times of the last gap: the last good read and the reinstall.
    pub last_gap: Option<(u64, u64)>,
    /// Set elements read on the last refresh.
    pub tracked_elements: usize,
    /// Configured LAN devices that do not exist.
    pub missing_devices: Vec<String>,
    /// The conntrack placement's figures; absent with the other placements.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub conntrack: Option<ConntrackStatus>,
}

/// How the conntrack placement is doing (`/api/v1/status`, `netmeter check`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ConntrackStatus {
    /// "on", or why conntrack accounting is off and how to turn it on.
    pub accounting: String,
    /// Flows followed after the last read, and the most that will be.
    pub tracked_flows: usize,
    pub max_flows: usize,
    /// Flows in the last dump not followed because `max_flows` were: each
    /// is counted whole when it ends.
    pub untracked_flows: usize,
    /// Flows gone without a destroy event since the start: their bytes
    /// since their last dump are not counted.
    pub ended_unseen: u64,
    /// Times the kernel dropped destroy events (its buffer was full).
    pub event_overruns: u64,
    /// Flows in the last dump that carry no counters.
    pub flows_without_counters: usize,
    /// Flowtables whose offloaded flows conntrack does not count, with the fix.
    pub uncounted_flowtables: Vec<String>,
}

/// What `/api/v1/status` says about the MQTT publisher's broker (the
/// full build's `serve::mqtt`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MqttStatus {
    /// host:port.
    pub broker: String,
    pub connected: bool,
    /// Unix time of the last accepted connect.
    pub last_connect: Option<u64>,
    /// Why the last attempt or session failed, with what to do.
    pub last_error: Option<String>,
    /// Sessions begun after the first.
    pub reconnects: u64,
    pub messages_published: u64,
    /// Alerts dropped because the queue was full.
    pub alerts_dropped: u64,
}

/// What the daemon publishes for the server after every refresh.
#[derive(Clone, Debug, Default)]
pub struct ApiState {
    pub started_unix: u64,
    pub refresh_interval_secs: u64,
    /// None until the first refresh: data routes answer 503 until then.
    pub last_refresh_unix: Option<u64>,
    /// Refreshes completed: lets a client wait for data newer than an event.
    pub refreshes: u64,
    pub interfaces: InterfacesReport,
    pub devices: DevicesReport,
    pub per_device: PerDeviceStatus,
    pub attribution: Option<Attribution>,
    /// The last refresh's error, if it failed.
    pub last_error: Option<String>,
    /// Spool and flash writes.
    pub store: StoreStatus,
    /// Whether history trusts the wall clock (None before the first refresh).
    pub clock: Option<ClockState>,
    /// The live state, for history queries (locked only while answering one).
    pub history: Option<Arc<Mutex<State>>>,
    /// The WAN-facing interfaces, shown first in history.
    pub wan: Vec<String>,
    /// The config's month_rotate, for history periods.
    pub month_rotate: u8,
    /// `option token`: when set, every request must present it.
    pub token: Option<Secret>,
    /// Each upstream source's health and accounts.
    pub upstream: crate::upstream::Shared,
    /// The MQTT publisher's session; None without `config mqtt`.
    pub mqtt: Option<MqttStatus>,
    /// Every quota's state, judged at each refresh with a trusted clock.
    #[cfg(feature = "quota")]
    pub quotas: super::quota::QuotasReport,
}

/// `/api/v1/status`, which `netmeter check` and `netmeter commit` read back.
/// Field names are a contract: only add. Missing fields read as defaults,
/// as the CLI read them before it had this type.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct StatusView {
    pub version: String,
    /// For `netmeter commit`, which signals the daemon; 0 when not said.
    pub pid: u32,
    pub started: u64,
    pub uptime: u64,
    pub refresh_interval: u64,
    pub last_refresh: Option<u64>,
    pub refreshes: u64,
    pub last_error: Option<String>,
    pub per_device: PerDeviceStatus,
    pub attribution: Option<Attribution>,
    pub store: StoreStatus,
    pub clock: Option<ClockState>,
    /// The optional slices of this build (`upstream`, `mqtt`, `quota`):
    /// empty in the core build, so a client knows what to ask for.
    pub features: Vec<String>,
    /// Absent without `config mqtt`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mqtt: Option<MqttStatus>,
}

impl StatusView {
    fn new(state: &ApiState, now_unix: u64) -> StatusView {
        StatusView {
            version: env!("CARGO_PKG_VERSION").to_owned(),
            pid: std::process::id(),
            started: state.started_unix,
            uptime: now_unix.saturating_sub(state.started_unix),
            refresh_interval: state.refresh_interval_secs,
            last_refresh: state.last_refresh_unix,
            refreshes: state.refreshes,
            last_error: state.last_error.clone(),
            per_device: state.per_device.clone(),
            attribution: state.attribution.clone(),
            store: state.store.clone(),
            clock: state.clock,
            features: crate::FEATURES.iter().map(|f| f.to_string()).collect(),
            mqtt: state.mqtt.clone(),
        }
    }
}

/// The one serialiser of every view the API answers with.
pub(crate) fn json<T: Serialize>(value: &T) -> Response {
    match serde_json::to_vec(value) {
        Ok(body) => Response::json(200, body),
        Err(e) => Response::error(500, &format!("cannot encode the answer: {e}")),
    }
}

/// Routes without query parameters.
const PLAIN: &[&str] = &[
    "/api/v1/status",
    "/api/v1/interfaces",
    "/api/v1/devices",
    "/api/v1/upstream",
    "/api/v1/queues",
    "/api/v1/sockets",
    "/api/v1/quotas",
    "/metrics",
];

/// For the [`PLAIN`] routes any query parameter is a 400 that names it,
/// so a typo is not silently ignored.
fn no_parameters(req: &Request) -> Result<(), Response> {
    let query = req.query.as_deref().unwrap_or("");
    match query.split('&').find(|pair| !pair.is_empty()) {
        None => Ok(()),
        Some(pair) => Err(Response::error(
            400,
            &format!(
                "unknown query parameter '{}': {} takes none",
                shorten(pair.split('=').next().unwrap_or(pair)),
                shorten(&req.path)
            ),
        )),
    }
}

/// Client text quoted in an error, cut short.
fn shorten(text: &str) -> String {
    match text.char_indices().nth(64) {
        Some((end, _)) => format!("{}…", &text[..end]),
        None => text.to_string(),
    }
}

/// The 401 challenges (RFC 6750): no usable credentials, and a wrong token.
const CHALLENGE: &[(&str, &str)] = &[("WWW-Authenticate", "Bearer realm=\"netmeter\"")];
const WRONG_TOKEN: &[(&str, &str)] = &[(
    "WWW-Authenticate",
    "Bearer realm=\"netmeter\", error=\"invalid_token\"",
)];

/// With a token configured, the request must carry `Authorization: Bearer
/// <token>`. Nothing the client sent is quoted back.
fn authorize(token: Option<&Secret>, req: &Request) -> Result<(), Response> {
    let Some(token) = token else {
        return Ok(());
    };
    let presented = req.authorization.as_deref().and_then(|h| {
        let (scheme, credentials) = h.trim().split_once(' ')?;
        scheme
            .eq_ignore_ascii_case("bearer")
            .then(|| credentials.trim())
    });
    match presented {
        Some(t) if token.matches(t.as_bytes()) => Ok(()),
        Some(_) => Err(Response::error(401, "wrong token").with_headers(WRONG_TOKEN)),
        None => Err(Response::error(
            401,
            "this API needs a token: send the header 'Authorization: Bearer <token>' with the \
             daemon's option token",
        )
        .with_headers(CHALLENGE)),
    }
}

/// Answers one request from the published state; `now_unix` is passed in.
pub fn route(state: &Mutex<ApiState>, req: &Request, now_unix: u64) -> Response {
    let state = match state.lock() {
        Ok(s) => s,
        Err(poisoned) => poisoned.into_inner(),
    };
    // The page holds no data, and must load to ask for the token.
    if let Some(page) = super::page::route(req) {
        return page;
    }
    if let Err(refused) = authorize(state.token.as_ref(), req) {
        return refused;
    }
    if req.method != "GET" && req.method != "HEAD" {
        return Response::error(405, "the API is read-only: use GET").with_headers(&[http::ALLOW]);
    }
    if PLAIN.contains(&req.path.as_str())
        && let Err(bad) = no_parameters(req)
    {
        return bad;
    }
    match req.path.as_str() {
        "/api/v1/status" => json(&StatusView::new(&state, now_unix)),
        "/api/v1/interfaces" if state.last_refresh_unix.is_none() => {
            Response::error(503, "starting: the first refresh has not finished")
        }
        "/api/v1/interfaces" => json(&state.interfaces),
        "/api/v1/devices" if state.last_refresh_unix.is_none() => {
            Response::error(503, "starting: the first refresh has not finished")
        }
        "/api/v1/devices" => json(&state.devices),
        #[cfg(not(feature = "quota"))]
        "/api/v1/quotas" => Response::error(
            404,
            &format!("no quotas here: {}", crate::config::quota::NEEDS_FULL),
        ),
        #[cfg(feature = "quota")]
        "/api/v1/quotas" if state.last_refresh_unix.is_none() => {
            Response::error(503, "starting: the first refresh has not finished")
        }
        #[cfg(feature = "quota")]
        "/api/v1/quotas" => json(&state.quotas),
        "/api/v1/history" if state.last_refresh_unix.is_none() => {
            Response::error(503, "starting: the first refresh has not finished")
        }
        "/api/v1/history" => {
            let query = match history::parse_query(req.query.as_deref()) {
                Ok(q) => q,
                Err(e) => return Response::error(400, &e),
            };
            let Some(shared) = state.history.clone() else {
                return Response::error(503, "history is not available yet");
            };
            let wan = state.wan.clone();
            let names: std::collections::HashMap<String, String> = state
                .devices
                .devices
                .iter()
                .filter_map(|d| Some((d.mac.clone(), d.hostname.clone()?)))
                .collect();
            let cal = Calendar {
                zone: SystemZone,
                month_rotate: state.month_rotate,
            };
            drop(state); // never hold both locks
            let saved = shared.lock().unwrap_or_else(|p| p.into_inner());
            let hostname = |mac: &Mac| names.get(&mac.to_string()).cloned();
            match history::report(&saved, &cal, &query, &wan, &hostname, now_unix) {
                Ok(report) => json(&report),
                Err(e) => Response::error(404, &e),
            }
        }
        "/api/v1/upstream" => {
            let upstream = state.upstream.clone();
            if state.history.is_none() {
                return Response::error(503, "starting: the state is not loaded yet");
            }
            drop(state); // never hold both locks
            match crate::upstream::report_json(&upstream) {
                Ok(body) => Response::json(200, body),
                Err(why) => Response::error(404, &why),
            }
        }
        // Read from the kernel now, outside the lock: never in the refresh loop.
        "/api/v1/queues" => {
            drop(state);
            match super::queues::read_report() {
                Ok(report) => json(&report),
                Err(e) => Response::error(500, &e.to_string()),
            }
        }
        "/api/v1/sockets" => {
            drop(state);
            match super::sockets::read_report() {
                Ok(report) => json(&report),
                Err(e) => Response::error(500, &e.to_string()),
            }
        }
        "/metrics" if state.last_refresh_unix.is_none() => {
            Response::error(503, "starting: the first refresh has not finished")
        }
        "/metrics" => {
            let mut text = metrics::render(&state);
            let upstream = state.upstream.clone();
            drop(state); // never hold both locks
            text += &crate::upstream::metrics_text(&upstream);
            // Queues as the kernel has them now; a failed read leaves them out.
            if let Ok(queues) = super::queues::read_report() {
                text += &super::queues::metrics_text(&queues);
            }
            Response::new(200, crate::exposition::CONTENT_TYPE, text.into_bytes())
        }
        _ => Response::error(404, &format!("no such endpoint: {}", shorten(&req.path))),
    }
}

/// Views with every optional field filled, for tests of the API and of the
/// CLI that reads it.
#[cfg(test)]
pub(crate) mod samples {
    use super::*;
    use crate::account::UnattributedTotals;

    pub const NOW: u64 = 1_795_000_020;

    pub fn interface(name: &str, rx_bytes: u64, present: bool) -> InterfaceView {
        InterfaceView {
            name: name.into(),
            rx_bytes,
            tx_bytes: rx_bytes / 2,
            rx_packets: 3,
            tx_packets: 4,
            rx_errors: 5,
            tx_errors: 6,
            rx_dropped: 7,
            tx_dropped: 8,
            rx_rate: 125_000,
            tx_rate: 0,
            present,
            first_seen: 1_795_000_000,
            last_seen: 1_795_000_010,
        }
    }

    pub fn device(mac: &str, hostname: Option<&str>, rx_bytes: u64) -> DeviceView {
        DeviceView {
            mac: mac.into(),
            ips: vec!["192.168.1.2".into(), "fd00::2".into(), "fd00::3".into()],
            hostname: hostname.map(str::to_owned),
            group: Some("kids".into()),
            random_mac: true,
            rx_bytes,
            tx_bytes: 1 << 20,
            rx_packets: 1,
            tx_packets: 2,
            rx_rate: 3,
            tx_rate: 4,
            first_seen: 1_795_000_000,
            last_seen: 1_795_000_010,
            upstream: vec![UpstreamFigure {
                source: "isp".into(),
                rx_bytes: 3 << 20,
                tx_bytes: 0,
            }],
            protocols: vec![ProtocolFigure {
                class: "https".into(),
                rx_bytes: 2 << 20,
                tx_bytes: 1 << 10,
            }],
            today: Some(PeriodFigure {
                rx_bytes: rx_bytes / 4,
                tx_bytes: 1 << 18,
            }),
            month: Some(PeriodFigure {
                rx_bytes: rx_bytes / 2,
                tx_bytes: 1 << 19,
            }),
        }
    }

    pub fn devices() -> DevicesReport {
        let totals = UnattributedTotals {
            tx_bytes: 1 << 10,
            tx_packets: 2,
            rx_bytes: 2 << 10,
            rx_packets: 4,
        };
        DevicesReport {
            devices: vec![
                device("aa:bb:cc:dd:ee:01", Some("laptop"), 1 << 30),
                device("aa:bb:cc:dd:ee:02", None, 1 << 20),
            ],
            unattributed: totals,
            other: Some(totals),
            upstream_only: vec![UpstreamOnlyDevice {
                mac: "aa:bb:cc:dd:ee:09".into(),
                ip: Some("192.168.178.20".into()),
                hostname: Some("printer".into()),
                source: "isp".into(),
                rx_bytes: 5 << 20,
                tx_bytes: 0,
                rx_rate: 3,
                tx_rate: 4,
                last_seen: 1_795_000_010,
            }],
            protocols_since: Some(1_795_000_000),
            periods: Some(RunningPeriods {
                day_start: 1_794_960_000,
                month_start: 1_793_577_600,
            }),
        }
    }

    /// A daemon whose last refresh and last commit failed.
    pub fn state() -> ApiState {
        ApiState {
            started_unix: 1_795_000_000,
            refresh_interval_secs: 10,
            last_refresh_unix: Some(1_795_000_010),
            refreshes: 7,
            interfaces: InterfacesReport {
                interfaces: vec![
                    interface("wan", 1 << 30, true),
                    interface("wg0", 1 << 20, false),
                ],
            },
            devices: devices(),
            per_device: PerDeviceStatus {
                active: true,
                placement: "netdev ingress and egress on br-lan".into(),
                placement_kind: "netdev".into(),
                off_reason: None,
                unknown_gaps: 2,
                last_gap: Some((1_795_000_001, 1_795_000_002)),
                tracked_elements: 12,
                missing_devices: vec!["br-guest".into()],
                conntrack: None,
            },
            attribution: Some(Attribution {
                wan: vec!["wan".into()],
                since: 1_795_000_000,
                wan_tx_bytes: 100 << 20,
                wan_rx_bytes: 200,
                device_tx_bytes: 50 << 20,
                device_rx_bytes: 190,
                tx_share: Some(0.5),
                rx_share: Some(0.95),
            }),
            last_error: Some("reading links: EINTR".into()),
            store: StoreStatus {
                spool_directory: "/var/lib/netmeter".into(),
                database_directory: "/etc/netmeter".into(),
                loaded_from: "/etc/netmeter/netmeter.state (saved …, sequence 9)".into(),
                last_spool: Some(1_795_000_005),
                last_spool_error: None,
                last_commit: Some(1_795_000_001),
                last_commit_error: Some("cannot commit to flash (read-only)".into()),
                last_checkpoint: Some(1_795_000_000),
                commits: 3,
                checkpoints: 1,
                flash_bytes_written: 12_345,
                journal_bytes: 2_000,
                checkpoint_bytes: 10_345,
            },
            clock: Some(ClockState::Behind),
            #[cfg(feature = "quota")]
            quotas: crate::serve::quota::QuotasReport {
                quotas: vec![crate::serve::quota::QuotaView {
                    name: "kids".into(),
                    target: "kids".into(),
                    target_kind: "group".into(),
                    direction: "total".into(),
                    period: "month".into(),
                    period_start: 1_793_577_600,
                    period_end: 1_796_169_600,
                    limit_bytes: 1 << 30,
                    used_bytes: 1 << 30,
                    thresholds: vec![80, 100],
                    fired: vec![80, 100],
                    action: "block".into(),
                    blocked: true,
                    blocked_macs: vec!["aa:bb:cc:dd:ee:01".into()],
                    lifted: false,
                    exec: true,
                    webhook: false,
                    mqtt: false,
                }],
                ..Default::default()
            },
            ..ApiState::default()
        }
    }

    /// `path` answered from `state`, as the daemon puts it on the wire.
    pub fn answer(state: ApiState, path: &str) -> Response {
        let (path, query) = match path.split_once('?') {
            Some((p, q)) => (p, Some(q.to_owned())),
            None => (path, None),
        };
        let req = Request {
            method: "GET".into(),
            path: path.into(),
            query,
            authorization: None,
        };
        route(&Mutex::new(state), &req, NOW)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::de::DeserializeOwned;

    fn round_trip<T: Serialize + DeserializeOwned + PartialEq + std::fmt::Debug>(view: &T) {
        let body = json(view).body;
        let back: T = serde_json::from_slice(&body).unwrap();
        assert_eq!(&back, view, "{}", String::from_utf8_lossy(&body));
    }

    #[test]
    fn every_view_reads_back_equal_to_what_was_sent() {
        let state = samples::state();
        round_trip(&state.interfaces);
        round_trip(&state.devices);
        round_trip(&DevicesReport::default());
        round_trip(&StatusView::new(&state, samples::NOW));
        round_trip(&StatusView::default());
        round_trip(&http::ErrorBody {
            error: "no such endpoint".into(),
        });
    }

    #[test]
    fn the_status_route_sends_the_status_view() {
        let state = samples::state();
        let sent = samples::answer(state.clone(), "/api/v1/status");
        assert_eq!(sent.status, 200);
        let read: StatusView = serde_json::from_slice(&sent.body).unwrap();
        assert_eq!(read, StatusView::new(&state, samples::NOW));
        assert_eq!(read.pid, std::process::id());
        assert_eq!(read.uptime, 20);
    }

    #[test]
    fn a_status_without_some_fields_reads_them_as_defaults() {
        let read: StatusView =
            serde_json::from_slice(br#"{"uptime":5,"store":{"commits":2}}"#).unwrap();
        assert_eq!((read.uptime, read.store.commits, read.pid), (5, 2, 0));
    }
}
