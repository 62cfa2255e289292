//! The core build's stand-in for the upstream slice (`mod.rs`): the same
//! names, holding nothing, so the rest of netmeter needs no `cfg` of its
//! own. A `config upstream` section is kept by name only
//! (`config/upstream_absent.rs`) and reported (log, `check`, the API) as
//! needing `netmeter-full`. Upstream totals saved by a full build stay in
//! the store's bytes untouched (`store::state::UpstreamBytes`), so
//! switching packages loses nothing.

use std::sync::{Arc, Mutex};
use std::time::Duration;

pub use crate::config::upstream::UpstreamConfig;
use crate::store::state::State;

#[path = "seen.rs"]
mod seen;
pub use seen::{DeviceFigure, NEEDS_FULL};

pub const BUILT: bool = false;

/// Nothing to report: `/api/v1/upstream` says why.
#[derive(Clone, Debug, Default)]
pub struct Shared {
    _none: (),
}

/// Says once, at start and reload, which sections are not read.
#[derive(Default)]
pub struct UpstreamRunner {
    _none: (),
}

impl UpstreamRunner {
    pub fn start(&mut self, sources: &[UpstreamConfig], _state: &Arc<Mutex<State>>, _: &Shared) {
        for s in sources {
            crate::log::log(format!(
                "config upstream '{}' (line {}): {NEEDS_FULL}",
                s.name, s.line
            ));
        }
    }

    pub fn signal_stop(&mut self) {}

    pub fn stop_within(&mut self, _limit: Duration) {}
}

pub fn device_figures(_: &Shared) -> Vec<DeviceFigure> {
    Vec::new()
}

pub fn series(_: &Shared) -> Vec<(String, crate::rxtx::RxTx<u64>)> {
    Vec::new()
}

pub fn report_json(_: &Shared) -> Result<Vec<u8>, String> {
    Err(format!("no upstream routers here: {NEEDS_FULL}"))
}

pub fn metrics_text(_: &Shared) -> String {
    String::new()
}
