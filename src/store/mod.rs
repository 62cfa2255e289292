//! Persistent state: the versioned, checksummed file format (`format`) and
//! the atomic, generation-keeping file handling (`files`). Not used by the
//! daemon yet.

pub mod crc32;
pub mod files;
pub mod format;

pub use files::{LoadOutcome, load, save};
pub use format::{CURRENT_VERSION, Decoded, FileKind, FormatError, decode, encode};
