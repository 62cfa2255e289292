//! Persistent state and history: rollup rings in local-time periods
//! (`calendar`, `history`, `timeline`), the versioned, checksummed file
//! format (`format`, `crc32`), atomic files (`files`), and the spool,
//! journal and checkpoint policy (`state`, `persist`).

pub mod calendar;
pub mod crc32;
pub mod files;
pub mod format;
pub mod history;
pub mod persist;
pub mod quota;
pub mod state;
pub mod timeline;

pub use files::{LoadOutcome, load, save};
pub use format::{CURRENT_VERSION, Decoded, FileKind, FormatError, decode, encode};

use crate::config::Config;
use calendar::{Calendar, SystemZone};
use history::RingSizes;

/// History lengths: per interface, per device.
pub struct HistorySizes(pub RingSizes, pub RingSizes);

impl HistorySizes {
    pub fn pair(&self) -> (&RingSizes, &RingSizes) {
        (&self.0, &self.1)
    }
}

pub fn history_sizes(config: &Config) -> HistorySizes {
    let sizes = |[five_minute, hour, day, month, year]: [u32; 5]| RingSizes {
        five_minute,
        hour,
        day,
        month,
        year,
    };
    HistorySizes(
        sizes(config.interface_history),
        sizes(config.device_history),
    )
}

/// The calendar history uses: the router's zone, the billing month.
pub fn calendar(config: &Config) -> Calendar<SystemZone> {
    Calendar {
        zone: SystemZone,
        month_rotate: config.month_rotate,
    }
}
