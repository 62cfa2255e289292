//! The quotas in the daemon's loop (feature `quota`, netmeter-full; the
//! core mounts `quota_runner_absent.rs`): judged at every refresh with a
//! trusted clock (`quota.rs`), fired to their sinks (`alerts.rs`), and
//! the MACs to block handed back to the per-device table.

use super::alerts::Alerts;
use super::quota;
use crate::config::Config;
use crate::mac::Mac;
use crate::serve::api::ApiState;
use crate::store::calendar;
use crate::store::quota::{MAX_QUOTAS, QuotaLedger};
use crate::store::state::State;

/// Where `netmeter quota reset NAME` leaves its request (a file named
/// NAME) before it sends SIGUSR2: under the spool directory, which only
/// the daemon's user may write, so only the router's admin lifts a block.
pub const RESET_DIRECTORY: &str = "quota-reset";

/// The quotas' side of the daemon between refreshes.
#[derive(Default)]
pub struct QuotaRunner {
    alerts: Alerts,
    /// What the quotas block, as last judged (kept while the clock is not
    /// trusted).
    blocked: Vec<Mac>,
}

impl QuotaRunner {
    /// Nothing to say at start or reload: every section was validated.
    pub fn announce(&self, _config: &Config) {}

    /// Judges every quota (only a trusted clock says which period it is:
    /// a router booting at 1970 must not start every quota over), fires
    /// what crossed a threshold, and fills the API's report. Returns the
    /// MACs whose WAN traffic is to be dropped.
    pub fn refresh(
        &mut self,
        config: &Config,
        state: &mut State,
        api: &mut ApiState,
        trusted_clock: bool,
        now_unix: u64,
    ) -> &[Mac] {
        if trusted_clock {
            let known: Vec<quota::Known> = api
                .devices
                .devices
                .iter()
                .filter_map(|d| {
                    Some(quota::Known {
                        mac: d.mac.parse().ok()?,
                        name: d.hostname.clone(),
                        group: d.group.clone(),
                    })
                })
                .collect();
            let judged = quota::judge(
                &config.quotas,
                &mut state.quotas,
                &state.timeline,
                &calendar(config),
                &known,
                now_unix,
            );
            for alert in &judged.alerts {
                if let Some(q) = config.quotas.iter().find(|q| q.name == alert.quota) {
                    self.alerts.dispatch(q, alert);
                }
            }
            api.quotas.quotas = judged.views;
            self.blocked = judged.blocked;
        } else {
            // Unjudged, the saved blocks hold (a restart at boot).
            self.blocked = state.quotas.blocked(&config.quotas);
        }
        self.alerts.reap();
        api.quotas.alerts = self.alerts.counts();
        &self.blocked
    }

    /// The alerts for the MQTT publisher since the last call, oldest
    /// first: (quota, JSON payload).
    pub fn take_mqtt(&mut self) -> Vec<(String, Vec<u8>)> {
        self.alerts
            .take_mqtt()
            .into_iter()
            .map(|a| {
                let payload = serde_json::to_vec(&a).unwrap_or_default();
                (a.quota, payload)
            })
            .collect()
    }
}

/// Lifts the quotas whose reset was requested and removes the requests.
pub fn take_resets(config: &Config, ledger: &mut QuotaLedger) -> Vec<String> {
    let dir = config.spool_directory.join(RESET_DIRECTORY);
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return vec![format!(
            "quota reset requested, but {} is missing",
            dir.display()
        )];
    };
    let mut lines = Vec::new();
    for entry in entries.flatten().take(MAX_QUOTAS) {
        let name = entry.file_name().to_string_lossy().into_owned();
        let _ = std::fs::remove_file(entry.path());
        if !config.quotas.iter().any(|q| q.name == name) {
            lines.push(format!("quota reset: no quota named '{name}'"));
        } else if quota::lift(ledger, &name) {
            lines.push(format!(
                "quota {name}: reset, its block is lifted until the period ends"
            ));
        } else {
            lines.push(format!(
                "quota {name}: reset, but it has not been judged yet"
            ));
        }
    }
    lines
}
