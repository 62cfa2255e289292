//! The core build's stand-in for the upstream slice (`mod.rs`): the same
//! names, holding nothing, so the rest of netmeter needs no `cfg` of its
//! own. A `config upstream` section is kept by name only and reported (log,
//! `check`, the API) as needing `netmeter-full`. Upstream totals saved by a
//! full build stay in the store's bytes untouched (`store::state::
//! UpstreamBytes`), so switching packages loses nothing.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::config::uci;
use crate::store::state::State;

#[path = "seen.rs"]
mod seen;
pub use seen::{DeviceFigure, NEEDS_FULL};

pub const BUILT: bool = false;

/// A `config upstream` section this build does not read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UpstreamConfig {
    pub name: String,
    pub line: usize,
}

pub fn add_section(
    sources: &mut Vec<UpstreamConfig>,
    section: &uci::Section,
    _problems: &mut Vec<(usize, String)>,
) {
    sources.push(UpstreamConfig {
        name: section.name.clone().unwrap_or_default(),
        line: section.line,
    });
}

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

pub fn series(_: &Shared) -> Vec<(String, [u64; 2])> {
    Vec::new()
}

pub fn report_json(_: &Shared) -> Result<Vec<u8>, String> {
    Err(format!("no upstream routers here: {NEEDS_FULL}"))
}

pub fn metrics_text(_: &Shared) -> String {
    String::new()
}
