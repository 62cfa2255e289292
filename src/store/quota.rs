//! What the quotas remember across restarts (format version 3): per quota,
//! the period it was last judged in, the thresholds already fired in it,
//! the MACs it blocks and whether the admin lifted the block. Small (a few
//! bytes a quota), so every journal record that follows a change carries
//! it whole.

use serde::{Deserialize, Serialize};

use crate::mac::Mac;

/// Adds `item` to the sorted `list` unless it is there already; true if
/// added. The ledger's lists stay sorted this way, without a sort (whose
/// code is several KB per type).
pub fn insert_sorted<T: Ord>(list: &mut Vec<T>, item: T) -> bool {
    match list.binary_search(&item) {
        Ok(_) => false,
        Err(at) => {
            list.insert(at, item);
            true
        }
    }
}

/// Quotas remembered at most: more than any config holds.
pub const MAX_QUOTAS: usize = 256;

/// One quota's memory within its running period.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuotaRecord {
    pub name: String,
    /// Unix seconds at which the period this record belongs to began.
    pub period_start: i64,
    /// Thresholds (percent) fired in that period, ascending.
    pub fired: Vec<u16>,
    /// The devices whose WAN traffic is dropped; empty: no block.
    pub blocked: Vec<Mac>,
    /// `netmeter quota reset` lifted the block for the rest of the period.
    pub lifted: bool,
}

/// Every quota's record, by name.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuotaLedger {
    pub records: Vec<QuotaRecord>,
    /// Changed since the last commit.
    #[serde(skip)]
    pub changed: bool,
}

impl QuotaLedger {
    pub fn get(&self, name: &str) -> Option<&QuotaRecord> {
        self.records.iter().find(|r| r.name == name)
    }

    /// The record of `name`, made if missing (None when the ledger is full).
    pub fn entry(&mut self, name: &str) -> Option<&mut QuotaRecord> {
        match self.records.iter().position(|r| r.name == name) {
            Some(i) => Some(&mut self.records[i]),
            None if self.records.len() < MAX_QUOTAS => {
                self.records.push(QuotaRecord {
                    name: name.to_owned(),
                    ..QuotaRecord::default()
                });
                self.records.last_mut()
            }
            None => None,
        }
    }

    /// Drops the records of quotas the config no longer has: a quota
    /// removed and added again starts afresh.
    pub fn retain(&mut self, names: &[&str]) {
        let before = self.records.len();
        self.records.retain(|r| names.contains(&r.name.as_str()));
        if self.records.len() != before {
            self.changed = true;
        }
    }

    /// Every MAC blocked by a quota of `quotas` (sorted, once each).
    pub fn blocked(&self, quotas: &[crate::config::QuotaConfig]) -> Vec<Mac> {
        let mut macs = Vec::new();
        for r in &self.records {
            if quotas.iter().any(|q| q.blocks() && q.name == r.name) {
                for &mac in &r.blocked {
                    insert_sorted(&mut macs, mac);
                }
            }
        }
        macs
    }

    /// A journal record's copy: the whole ledger when it changed.
    pub fn committed(&self) -> Option<QuotaLedger> {
        self.changed.then(|| QuotaLedger {
            records: self.records.clone(),
            changed: false,
        })
    }
}
