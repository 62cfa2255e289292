//! netmeter: per-device and per-interface bandwidth accounting for the gateway router.
//!
//! Layers follow the data: `netlink` (wire formats only) → `collect` (samples)
//! → `account` (monotonic totals, rates) → `serve` (HTTP API); `cli` and
//! `config` sit beside them, `daemon` runs the loop; `net` is the outgoing
//! side (resolve, connect, the HTTP client) for the CLI and the upstream
//! slice.

pub mod account;
pub mod cli;
pub mod clock;
pub mod collect;
pub mod config;
pub mod daemon;
pub mod exposition;
pub mod log;
pub mod mac;
pub mod net;
pub mod netlink;
pub mod rxtx;
pub mod serve;
pub mod store;
#[cfg(feature = "upstream")]
pub mod upstream;
#[cfg(not(feature = "upstream"))]
#[path = "upstream/absent.rs"]
pub mod upstream;

/// The optional slices this build has (cargo features), as `netmeter
/// version` and `/api/v1/status` say them: empty in the core build.
pub const FEATURES: &[&str] = &[
    #[cfg(feature = "upstream")]
    "upstream",
    #[cfg(feature = "mqtt")]
    "mqtt",
    #[cfg(feature = "quota")]
    "quota",
];
