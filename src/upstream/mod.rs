//! The routers above this one: one slice of the tree for everything about
//! them, compiled only with the `upstream` feature (the `netmeter-full`
//! package). `absent.rs` stands in for it in the core build with the same
//! names, holding nothing.
//!
//! Data flows through it as through the local pipeline: `sources` reads a
//! router over its own protocol, `account` turns readings into totals that
//! only grow, `runner` schedules the scrapes in the daemon, `report` and
//! `metrics` shape what the API and `/metrics` send. The `config upstream`
//! sections are read by the config layer (`config/upstream.rs`).
//!
//! The rest of netmeter reaches it through the items below (and the CLI's
//! `netmeter upstream`, `cli/upstream.rs`, through `sources` and `report`
//! too); the slice itself imports nothing that imports it back: not the
//! daemon, the server or the CLI.

pub mod account;
pub mod metrics;
pub mod report;
pub mod runner;
pub mod sources;

use std::sync::{Arc, Mutex};

use crate::store::state::State;

pub use crate::config::upstream::{UpstreamConfig, UpstreamKind};
pub use account::{UpstreamAccounts, UpstreamTotals};
pub use runner::{SourceStatus, UpstreamRunner};
pub use seen::{DeviceFigure, NEEDS_FULL};

mod seen;

/// Each source's health: the runner writes it, the API reads it.
pub type Health = Arc<Mutex<Vec<SourceStatus>>>;

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

/// Every device each source counts, for the devices report.
pub fn device_figures(upstream: &UpstreamAccounts) -> Vec<DeviceFigure> {
    let mut figures = Vec::new();
    for source in upstream.iter() {
        for d in &source.devices {
            figures.push(DeviceFigure {
                source: source.name.clone(),
                mac: d.mac,
                ip: d.ip,
                hostname: d.hostname.clone(),
                rx_bytes: d.totals.rx_bytes(),
                tx_bytes: d.totals.tx_bytes(),
                rx_rate: d.totals.rx_rate,
                tx_rate: d.totals.tx_rate,
                last_seen: d.last_seen,
            });
        }
    }
    figures
}

fn health_now(health: &Health) -> Vec<SourceStatus> {
    health.lock().unwrap_or_else(|p| p.into_inner()).clone()
}

/// `/api/v1/upstream`'s body: the sources' health and accounts. Takes the
/// saved state's lock, so the caller must hold no other.
pub fn report_json(health: &Health, state: &Mutex<State>) -> Result<Vec<u8>, String> {
    let status = health_now(health);
    let saved = state.lock().unwrap_or_else(|p| p.into_inner());
    let report = report::UpstreamReport::new(&status, &saved.upstream);
    serde_json::to_vec(&report).map_err(|e| format!("cannot encode the answer: {e}"))
}

/// The upstream families of `/metrics`; empty, without taking the saved
/// state's lock, when no source is configured.
pub fn metrics_text(health: &Health, state: &Mutex<State>) -> String {
    let status = health_now(health);
    if status.is_empty() {
        return String::new();
    }
    let saved = state.lock().unwrap_or_else(|p| p.into_inner());
    metrics::render(&report::UpstreamReport::new(&status, &saved.upstream))
}
