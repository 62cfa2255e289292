//! `/api/v1/quotas` and `netmeter quotas --json`: every quota's usage in
//! its running period, what fired, what is blocked; and [`QuotaAlert`],
//! the one document each fired threshold becomes (the webhook's body, the
//! hook's environment, the MQTT queue's entries).

#[cfg(test)]
use serde::Deserialize;
use serde::Serialize;

/// One threshold crossed by one quota in one period. Field names are a
/// contract with webhook receivers: only add.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[cfg_attr(test, derive(Deserialize))]
pub struct QuotaAlert {
    /// The `config quota` section's name.
    pub quota: String,
    /// What the quota counts, as configured: a MAC or device name, a
    /// group, an interface, or `all`.
    pub target: String,
    /// `device`, `group`, `interface` or `all`.
    pub target_kind: String,
    /// `rx`, `tx` or `total`.
    pub direction: String,
    /// `day`, `week` or `month`.
    pub period: String,
    /// Percent of the limit.
    pub threshold: u16,
    pub used_bytes: u64,
    pub limit_bytes: u64,
    /// Unix seconds: the running period's start and (exclusive) end.
    pub period_start: i64,
    pub period_end: i64,
    /// Unix seconds at which the daemon saw the threshold crossed.
    pub at: u64,
}

/// One quota in [`QuotasReport`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[cfg_attr(test, derive(Deserialize))]
pub struct QuotaView {
    pub name: String,
    pub target: String,
    pub target_kind: String,
    pub direction: String,
    pub period: String,
    pub period_start: i64,
    pub period_end: i64,
    pub limit_bytes: u64,
    /// In the running period, from history.
    pub used_bytes: u64,
    /// Configured thresholds (percent), ascending.
    pub thresholds: Vec<u16>,
    /// Thresholds fired in the running period.
    pub fired: Vec<u16>,
    /// `block` or `none`.
    pub action: String,
    /// Whether the quota drops its devices' WAN traffic now.
    pub blocked: bool,
    /// The MACs it drops.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub blocked_macs: Vec<String>,
    /// `netmeter quota reset` lifted the block for the rest of the period.
    pub lifted: bool,
    pub exec: bool,
    pub webhook: bool,
    pub mqtt: bool,
}

/// How the alert sinks are doing since the daemon started.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[cfg_attr(test, derive(Deserialize))]
pub struct AlertCounts {
    pub exec_started: u64,
    pub exec_failed: u64,
    pub webhook_delivered: u64,
    /// Given up after every retry, or dropped with the queue full.
    pub webhook_failed: u64,
}

/// `/api/v1/quotas`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[cfg_attr(test, derive(Deserialize))]
pub struct QuotasReport {
    pub quotas: Vec<QuotaView>,
    pub alerts: AlertCounts,
}
