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
pub mod state;
pub mod timeline;

pub use files::{LoadOutcome, load, save};
pub use format::{CURRENT_VERSION, Decoded, FileKind, FormatError, decode, encode};
