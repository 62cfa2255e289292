//! Reads the clocks once, at the edge: accounting gets time passed in.

use std::time::{SystemTime, UNIX_EPOCH};

/// When a dump was taken: monotonic time for intervals (immune to NTP steps),
/// wall time only for what people read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Moment {
    pub monotonic_ms: u64,
    pub unix_secs: u64,
}

/// Now, as accounting wants it: a monotonic reading for intervals and the
/// wall clock for first/last seen and history.
pub fn now() -> Moment {
    Moment {
        monotonic_ms: boot_ms(),
        unix_secs: unix_now(),
    }
}

/// Milliseconds since the kernel booted (CLOCK_BOOTTIME): shared by every
/// process of one boot, so intervals measured against a reading a previous
/// daemon saved stay right, and immune to NTP steps.
pub fn boot_ms() -> u64 {
    // SAFETY: timespec is plain data; zeroed is valid.
    let mut ts: libc::timespec = unsafe { std::mem::zeroed() };
    // SAFETY: a valid clock id and a valid pointer.
    if unsafe { libc::clock_gettime(libc::CLOCK_BOOTTIME, &mut ts) } != 0 {
        return 0; // every Linux since 2.6.39 has it
    }
    (ts.tv_sec as u64)
        .saturating_mul(1000)
        .saturating_add(ts.tv_nsec as u64 / 1_000_000)
}

/// The wall clock in microseconds, for samples people line up with other
/// tools' (`netmeter watch`).
pub fn unix_now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0)
}

pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// OpenWrt keeps the time zone as a POSIX TZ string in /etc/TZ, which
/// upstream musl (this static build's libc) does not read; without it,
/// days and months would turn over at UTC midnight. Must run while the
/// process has one thread: it sets an environment variable.
pub fn adopt_router_timezone() {
    if std::env::var_os("TZ").is_some() {
        return;
    }
    let Ok(text) = std::fs::read_to_string("/etc/TZ") else {
        return;
    };
    let tz = text.trim();
    if !tz.is_empty() && tz.len() < 256 && !tz.contains('\0') {
        // SAFETY: called first thing in main, before any thread exists.
        unsafe { std::env::set_var("TZ", tz) };
    }
}
