//! The core build's stand-in for `upstream.rs`: a `config upstream`
//! section is kept by name and line, never validated, so the daemon, the
//! API and `check` can say it needs `netmeter-full`.

use crate::config::uci;

/// A `config upstream` section this build does not read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UpstreamConfig {
    pub name: String,
    pub line: usize,
}

pub(super) fn add_section(
    sources: &mut Vec<UpstreamConfig>,
    section: &uci::Section,
    _problems: &mut Vec<(usize, String)>,
) {
    sources.push(UpstreamConfig {
        name: section.name.clone().unwrap_or_default(),
        line: section.line,
    });
}
