//! The core build's stand-in for the upstream slice (`mod.rs`): the same
//! names, holding nothing, so the rest of netmeter needs no `cfg` of its
//! own. A `config upstream` section is kept by name only and reported (log,
//! `check`, the API) as needing `netmeter-full`; upstream totals saved by a
//! full build are kept byte for byte, so switching packages loses nothing.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::config::Config;
use crate::config::uci;
use crate::serve::api::{ApiState, DevicesReport};
use crate::serve::http::Response;
use crate::store::state::State;

pub const BUILT: bool = false;

/// What this build tells an admin whose config names upstream routers.
const NEEDS_FULL: &str = "this netmeter is the core build, which does not read upstream \
     routers: install the netmeter-full package to scrape it";

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
    pub fn start(
        &mut self,
        sources: &[UpstreamConfig],
        _state: &Arc<Mutex<State>>,
        _api_state: &Arc<Mutex<ApiState>>,
    ) {
        for s in sources {
            crate::daemon::log(format!(
                "config upstream '{}' (line {}): {NEEDS_FULL}",
                s.name, s.line
            ));
        }
    }

    pub fn signal_stop(&mut self) {}

    pub fn stop_within(&mut self, _limit: Duration) {}
}

pub fn join_devices(_report: &mut DevicesReport, _upstream: &UpstreamAccounts) {}

pub fn answer(_state: MutexGuard<'_, ApiState>) -> Response {
    Response::error(
        404,
        "no upstream routers here: this netmeter is the core build (install netmeter-full)",
    )
}

pub fn metrics(_state: MutexGuard<'_, ApiState>) -> String {
    String::new()
}

pub fn check(config: &Config, say: &mut impl FnMut(bool, &'static str, String)) {
    for s in &config.upstream {
        say(false, "upstream", format!("'{}': {NEEDS_FULL}", s.name));
    }
}
