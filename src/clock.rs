//! Reads the clocks once, at the edge: accounting gets time passed in.

use crate::account::Moment;
use std::sync::OnceLock;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

static ORIGIN: OnceLock<Instant> = OnceLock::new();

/// Now, as accounting wants it: a monotonic reading for intervals and the
/// wall clock for first/last seen.
pub fn now() -> Moment {
    let origin = *ORIGIN.get_or_init(Instant::now);
    Moment {
        monotonic_ms: origin.elapsed().as_millis() as u64,
        unix_secs: unix_now(),
    }
}

pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}
