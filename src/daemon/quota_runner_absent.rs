//! The core build's stand-in for `quota_runner.rs`: the same names, doing
//! nothing but saying, at start and reload, which `config quota` sections
//! need netmeter-full. The quotas' ledger in the saved state is kept as a
//! full build left it.

use super::log;
use crate::config::Config;
use crate::config::quota::NEEDS_FULL;
use crate::mac::Mac;
use crate::serve::api::ApiState;
use crate::store::quota::QuotaLedger;
use crate::store::state::State;

#[derive(Default)]
pub struct QuotaRunner {
    _none: (),
}

impl QuotaRunner {
    pub fn announce(&self, config: &Config) {
        for q in &config.quotas {
            log(format!(
                "config quota '{}' (line {}): {NEEDS_FULL}",
                q.name, q.line
            ));
        }
    }

    pub fn refresh(
        &mut self,
        _: &Config,
        _: &mut State,
        _: &mut ApiState,
        _: bool,
        _: u64,
    ) -> &[Mac] {
        &[]
    }

    pub fn take_mqtt(&mut self) -> Vec<(String, Vec<u8>)> {
        Vec::new()
    }
}

pub fn take_resets(_: &Config, _: &mut QuotaLedger) -> Vec<String> {
    vec![format!("quota reset requested: {NEEDS_FULL}")]
}
