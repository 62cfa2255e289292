//! The routers above this one: one slice of the tree for everything about
//! them, compiled only with the `upstream` feature (the `netmeter-full`
//! package). `absent.rs` stands in for it in the core build with the same
//! names, holding nothing.
//!
//! Data flows through it as through the local pipeline: `sources` reads a
//! router over its own protocol, `account` turns readings into totals that
//! only grow, `runner` schedules the scrapes in the daemon, `report` and
//! `metrics` answer the API and `/metrics`, `cli` prints `netmeter
//! upstream`; `config` reads the `config upstream` sections.
//!
//! The rest of netmeter reaches it only through the items below.

pub mod account;
pub mod cli;
pub mod config;
pub mod metrics;
pub mod report;
pub mod runner;
pub mod sources;

use std::sync::MutexGuard;

use crate::config::uci;
use crate::serve::api::{ApiState, DevicesReport, UpstreamFigure, UpstreamOnlyDevice};
use crate::serve::http::Response;

pub use account::{UpstreamAccounts, UpstreamTotals};
pub use cli::{UpstreamArgs, check, run};
pub use config::UpstreamConfig;
pub use runner::{SourceStatus, UpstreamRunner};

/// Each source's health, as the runner publishes it for the API.
pub type Health = Vec<SourceStatus>;

/// A journal record's part: every source whole when any changed, else
/// nothing.
pub type Committed = Vec<UpstreamTotals>;

/// What the saved state keeps of upstream bytes it cannot decode: in this
/// build nothing, since it decodes them all (see `absent.rs`).
pub trait Tail {
    fn keep_tail(&mut self, _tail: &[u8]) -> bool {
        false
    }
    fn tail(&self) -> &[u8] {
        &[]
    }
}

impl Tail for UpstreamAccounts {}
impl Tail for Committed {}

/// Whether this build reads upstream routers (for `netmeter version`).
pub const BUILT: bool = true;

/// Reads a `config upstream` section into `sources`, pushing problems.
pub fn add_section(
    sources: &mut Vec<UpstreamConfig>,
    section: &uci::Section,
    problems: &mut Vec<(usize, String)>,
) {
    let Some(source) = config::section(section, problems) else {
        return;
    };
    match sources.iter().find(|u| u.name == source.name) {
        Some(first) => problems.push((
            section.line,
            format!(
                "a second upstream section named '{}' (the first is at line {}): \
                 give each upstream router its own name",
                source.name, first.line
            ),
        )),
        None => sources.push(source),
    }
}

/// Upstream routers' per-device figures: beside netmeter's own for the
/// same MAC, else as devices of their own.
pub fn join_devices(report: &mut DevicesReport, upstream: &UpstreamAccounts) {
    for source in upstream.iter() {
        for d in &source.devices {
            let mac = crate::mac::format_mac(&d.mac);
            let (rx_bytes, tx_bytes) = (d.totals.rx_bytes(), d.totals.tx_bytes());
            match report.devices.iter_mut().find(|v| v.mac == mac) {
                Some(view) => view.upstream.push(UpstreamFigure {
                    source: source.name.clone(),
                    rx_bytes,
                    tx_bytes,
                }),
                None => report.upstream_only.push(UpstreamOnlyDevice {
                    mac,
                    ip: d.ip.map(|ip| ip.to_string()),
                    hostname: d.hostname.clone(),
                    source: source.name.clone(),
                    rx_bytes,
                    tx_bytes,
                    rx_rate: d.totals.rx_rate,
                    tx_rate: d.totals.tx_rate,
                    last_seen: d.last_seen,
                }),
            }
        }
    }
}

/// The sources' health and accounts. Releases the published state before
/// locking the saved one: never both locks at once.
fn upstream_report(state: MutexGuard<'_, ApiState>) -> Option<report::UpstreamReport> {
    let status = state.upstream.clone();
    let shared = state.history.clone()?;
    drop(state);
    let saved = shared.lock().unwrap_or_else(|p| p.into_inner());
    Some(report::UpstreamReport::new(&status, &saved.upstream))
}

/// `/api/v1/upstream`.
pub fn answer(state: MutexGuard<'_, ApiState>) -> Response {
    match upstream_report(state) {
        Some(report) => crate::serve::api::json(&report),
        None => Response::error(503, "starting: the state is not loaded yet"),
    }
}

/// The upstream families of `/metrics`; empty without sources.
pub fn metrics(state: MutexGuard<'_, ApiState>) -> String {
    if state.upstream.is_empty() {
        return String::new();
    }
    upstream_report(state).map_or_else(String::new, |r| metrics::render(&r))
}
