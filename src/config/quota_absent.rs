//! The core build's stand-in for `quota.rs`: a `config quota` section is
//! kept by name and line, never validated, so the daemon and `check` can
//! say it needs `netmeter-full`. What a full build's quotas remember stays
//! in the saved state untouched (`store::quota::QuotaLedger`).

use crate::config::uci;

/// What the core build says of a `config quota` section it keeps but does
/// not act on.
pub const NEEDS_FULL: &str = "this netmeter is the core build, which has no quotas: \
     install the netmeter-full package for caps, alerts and blocks";

/// A `config quota` section this build does not read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QuotaConfig {
    pub name: String,
    pub line: usize,
}

impl QuotaConfig {
    /// Never: the core blocks nothing.
    pub fn blocks(&self) -> bool {
        false
    }
}

/// Keeps the section's name; a nameless one is as wrong as in the full
/// build, since switching packages must need no config edit.
pub(crate) fn quota(
    section: &uci::Section,
    problems: &mut Vec<(usize, String)>,
) -> Option<QuotaConfig> {
    let Some(name) = section.name.clone() else {
        problems.push((
            section.line,
            "a quota section needs a name, for alerts and 'netmeter quota reset': \
             config quota 'kids'"
                .into(),
        ));
        return None;
    };
    Some(QuotaConfig {
        name,
        line: section.line,
    })
}

pub(super) fn problems(
    _config: &super::Config,
    _sections: &[uci::Section],
    _problems: &mut Vec<(usize, String)>,
) {
}
