//! The core build's stand-in for the upstream slice (`mod.rs`): the same
//! names, holding nothing, so the rest of netmeter needs no `cfg` of its
//! own. A `config upstream` section is kept by name only
//! (`config/upstream_absent.rs`) and reported (log, `check`, the API) as
//! needing `netmeter-full`; upstream totals saved by a full build are kept
//! byte for byte, so switching packages loses nothing.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

pub use crate::config::upstream::UpstreamConfig;
use crate::store::state::State;

#[path = "seen.rs"]
mod seen;
pub use seen::{DeviceFigure, NEEDS_FULL};

pub const BUILT: bool = false;

/// The upstream totals of a saved state (the list that ends the payload)
/// as the full build wrote them; `[0]`, an empty list, when there are none.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct UpstreamAccounts {
    kept: Vec<u8>,
}

/// A journal record's copy, kept the same way.
pub type Committed = UpstreamAccounts;

/// The encoding of an empty list.
const NONE: &[u8] = &[0];

/// No bytes inside the fields: the kept ones follow them ([`Tail`]).
impl Serialize for UpstreamAccounts {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_unit()
    }
}

impl<'de> Deserialize<'de> for UpstreamAccounts {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        <()>::deserialize(d)?;
        Ok(Self::default())
    }
}

pub trait Tail {
    fn keep_tail(&mut self, tail: &[u8]) -> bool;
    fn tail(&self) -> &[u8];
}

impl Tail for UpstreamAccounts {
    fn keep_tail(&mut self, tail: &[u8]) -> bool {
        match tail {
            NONE => self.kept.clear(),
            _ => tail.clone_into(&mut self.kept),
        }
        true
    }

    fn tail(&self) -> &[u8] {
        if self.kept.is_empty() {
            NONE
        } else {
            &self.kept
        }
    }
}

impl UpstreamAccounts {
    /// Nothing changes here: a record never carries a copy.
    pub fn committed(&self) -> Committed {
        Self::default()
    }

    /// A full build's record holds every source whole: it replaces the
    /// kept copy.
    pub fn replay(&mut self, committed: Committed) {
        if !committed.is_empty() {
            self.kept = committed.kept;
        }
    }

    pub fn is_empty(&self) -> bool {
        self.tail() == NONE
    }

    pub fn series(&self) -> Vec<(String, [u64; 2])> {
        Vec::new()
    }

    pub fn mark_committed(&mut self) {}
}

/// Nothing to report: `/api/v1/upstream` says why.
#[derive(Clone, Debug, Default)]
pub struct Health {
    _none: (),
}

/// Says once, at start and reload, which sections are not read.
#[derive(Default)]
pub struct UpstreamRunner {
    _none: (),
}

impl UpstreamRunner {
    pub fn start(&mut self, sources: &[UpstreamConfig], _state: &Arc<Mutex<State>>, _: &Health) {
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

pub fn device_figures(_upstream: &UpstreamAccounts) -> Vec<DeviceFigure> {
    Vec::new()
}

pub fn report_json(_: &Health, _: &Mutex<State>) -> Result<Vec<u8>, String> {
    Err(format!("no upstream routers here: {NEEDS_FULL}"))
}

pub fn metrics_text(_: &Health, _: &Mutex<State>) -> String {
    String::new()
}
