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
//! The slice sits above the store and below the server: it imports config,
//! store, account, collect and the leaves, and is imported by serve, daemon
//! and cli through the items below. The layers under it need nothing of it:
//! the store keeps its totals as bytes (`UpstreamBytes`), and its accounts
//! live beside the sources' health in [`Shared`], which the API reads.

pub mod account;
pub mod metrics;
pub mod report;
pub mod runner;
pub mod sources;

use std::sync::{Arc, Mutex, MutexGuard};

pub use crate::config::upstream::{UpstreamConfig, UpstreamKind};
pub use account::{UpstreamAccounts, UpstreamTotals};
pub use runner::{SourceStatus, UpstreamRunner};
pub use seen::{DeviceFigure, NEEDS_FULL};

mod seen;

/// What the source threads share with the daemon and the API: each
/// source's health, and the accounts. Behind locks of their own, so a
/// scrape never waits for the saved state's: the runner takes the accounts'
/// lock, then the state's to save their bytes; no one takes them the other
/// way round.
#[derive(Clone, Debug, Default)]
pub struct Shared(Arc<Parts>);

#[derive(Debug, Default)]
struct Parts {
    health: Mutex<Vec<SourceStatus>>,
    /// None until the runner first starts and reads the saved ones.
    accounts: Mutex<Option<UpstreamAccounts>>,
}

impl Shared {
    /// Given health and accounts, as the runner would leave them (tests).
    pub fn new(health: Vec<SourceStatus>, accounts: UpstreamAccounts) -> Self {
        Self(Arc::new(Parts {
            health: Mutex::new(health),
            accounts: Mutex::new(Some(accounts)),
        }))
    }

    fn health(&self) -> MutexGuard<'_, Vec<SourceStatus>> {
        self.0.health.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn accounts(&self) -> MutexGuard<'_, Option<UpstreamAccounts>> {
        self.0.accounts.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The accounts as they are now (none before the runner started).
    fn accounts_now(&self) -> UpstreamAccounts {
        self.accounts().clone().unwrap_or_default()
    }
}

/// Whether this build reads upstream routers (for `netmeter version`).
pub const BUILT: bool = true;

/// Every device each source counts, for the devices report.
pub fn device_figures(shared: &Shared) -> Vec<DeviceFigure> {
    shared
        .accounts()
        .as_ref()
        .map_or_else(Vec::new, UpstreamAccounts::device_figures)
}

/// Every series with history (`isp/wan`), received and sent, for the
/// timeline.
pub fn series(shared: &Shared) -> Vec<(String, crate::rxtx::RxTx<u64>)> {
    shared.accounts().iter().flat_map(|a| a.series()).collect()
}

/// `/api/v1/upstream`'s body: the sources' health and accounts.
pub fn report_json(shared: &Shared) -> Result<Vec<u8>, String> {
    let status = shared.health().clone();
    let report = report::UpstreamReport::new(&status, &shared.accounts_now());
    serde_json::to_vec(&report).map_err(|e| format!("cannot encode the answer: {e}"))
}

/// The upstream families of `/metrics`; empty when no source is configured.
pub fn metrics_text(shared: &Shared) -> String {
    let status = shared.health().clone();
    if status.is_empty() {
        return String::new();
    }
    metrics::render(&report::UpstreamReport::new(
        &status,
        &shared.accounts_now(),
    ))
}
