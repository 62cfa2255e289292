//! History for every interface and device: the growth of their totals,
//! credited to rollup buckets at the wall-clock time it was seen.
//!
//! The totals (account/) are the truth; history is derived from how much
//! they grew between refreshes, so nothing here can make a total wrong.
//!
//! Wall time is not trusted blindly. Routers without a real-time clock boot
//! at 1970 or at a stale time and NTP steps the clock later; crediting then
//! would scatter traffic into 1970 or into periods already closed. So:
//! - before `TRUSTED_FROM` (2025-01-01) the clock is "not set": growth is
//!   held, per series, and credited at the first trusted refresh;
//! - more than `BACKWARD_TOLERANCE` behind the newest time ever credited
//!   (a stale boot time, a step back) it is "behind": held the same way,
//!   until the clock catches up or has stayed behind for `ACCEPT_AFTER_MS`
//!   of boot time, after which the new clock is taken as a deliberate
//!   change and held growth goes to its current period;
//! - forward steps are ordinary: the rings advance (zero buckets between).
//!
//! Held growth is never dropped; the totals include it all along.

use crate::mac::Mac;
use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::calendar::{Calendar, Granularity, UtcOffset};
use super::history::{RingSizes, SeriesHistory};
use crate::rxtx::RxTx;

/// 2025-01-01T00:00:00Z: any clock before it was never set.
pub const TRUSTED_FROM: u64 = 1_735_689_600;
/// NTP corrections and small manual steps back are credited as they come.
pub const BACKWARD_TOLERANCE: u64 = 600;
/// A clock behind for this long (boot time) was set back on purpose.
pub const ACCEPT_AFTER_MS: u64 = 3_600_000;

/// What the wall clock is worth at a refresh.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ClockState {
    Trusted,
    /// Before 2025: never set since boot.
    NotSet,
    /// Behind the newest time already credited.
    Behind,
}

/// One series' history and what of its totals it has seen.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Track {
    pub history: SeriesHistory,
    /// Byte totals (rx, tx) accounted for, credited or held.
    pub seen: RxTx<u64>,
    /// Growth waiting for a trusted clock.
    pub held: RxTx<u64>,
    /// Changed since the last commit (growth seen).
    pub changed: bool,
    /// The earliest finest-ring period credited since the last commit.
    pub dirty_from: Option<i64>,
}

impl Track {
    fn new(sizes: &RingSizes, seen: RxTx<u64>) -> Self {
        Self {
            history: SeriesHistory::new(sizes),
            seen,
            held: RxTx::ZERO,
            changed: false,
            dirty_from: None,
        }
    }

    /// The finest kept rollup, which a commit records bucket by bucket.
    pub fn finest(&self) -> Option<Granularity> {
        Granularity::ALL
            .into_iter()
            .find(|g| self.history.ring(*g).is_some())
    }

    /// Takes the series' current totals; returns false if the credit was too
    /// old for some ring (only after the clock was set far back).
    fn observe<Z: UtcOffset>(
        &mut self,
        cal: &Calendar<Z>,
        totals: RxTx<u64>,
        at: Option<i64>,
    ) -> bool {
        // Totals only grow; a smaller one (a restore from an older file) is
        // taken as the new base without crediting anything.
        let grown = totals.saturating_sub(self.seen);
        if totals != self.seen {
            self.changed = true;
        }
        self.seen = totals;
        self.held = self.held.saturating_add(grown);
        match at {
            Some(unix) if self.held != RxTx::ZERO => {
                let RxTx { rx, tx } = std::mem::take(&mut self.held);
                if let Some(g) = self.finest() {
                    let period = cal.period(g, unix);
                    self.dirty_from = Some(self.dirty_from.map_or(period, |d| d.min(period)));
                }
                self.history.credit(cal, unix, rx, tx)
            }
            _ => true,
        }
    }
}

/// Every series' history, bounded: one track per interface the accounts
/// keep and per device they keep (plus `other`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Timeline {
    pub interfaces: BTreeMap<String, Track>,
    pub devices: BTreeMap<Mac, Track>,
    /// The newest wall time credited (unix seconds).
    pub high_water: u64,
    /// Boot-clock ms since which the clock has been behind; not kept across
    /// restarts (a restart starts the hour over, which only delays).
    #[serde(skip)]
    behind_since_ms: Option<u64>,
}

/// The series one refresh reports: current byte totals (rx, tx).
pub struct Observed<'a> {
    pub interfaces: Vec<(&'a str, RxTx<u64>)>,
    pub devices: Vec<(Mac, RxTx<u64>)>,
}

impl Timeline {
    /// Judges the clock and credits every series' growth since the last call.
    /// Series missing from `observed` are dropped (the accounts evicted them);
    /// new ones are created with `sizes`, crediting all their total: growth
    /// the accounts saw for the first time happened since the last refresh.
    pub fn update<Z: UtcOffset>(
        &mut self,
        cal: &Calendar<Z>,
        sizes: (&RingSizes, &RingSizes),
        now_unix: u64,
        boot_ms: u64,
        observed: &Observed,
    ) -> ClockState {
        let clock = self.judge(now_unix, boot_ms);
        let at = (clock == ClockState::Trusted).then_some(now_unix as i64);
        if at.is_some() {
            self.high_water = self.high_water.max(now_unix);
        }
        let mut interfaces = BTreeMap::new();
        for &(name, totals) in &observed.interfaces {
            let mut track = self
                .interfaces
                .remove(name)
                .unwrap_or_else(|| Track::new(sizes.0, RxTx::ZERO));
            track.observe(cal, totals, at);
            interfaces.insert(name.to_owned(), track);
        }
        self.interfaces = interfaces;
        let mut devices = BTreeMap::new();
        for &(mac, totals) in &observed.devices {
            let mut track = self
                .devices
                .remove(&mac)
                .unwrap_or_else(|| Track::new(sizes.1, RxTx::ZERO));
            track.observe(cal, totals, at);
            devices.insert(mac, track);
        }
        self.devices = devices;
        clock
    }

    fn judge(&mut self, now_unix: u64, boot_ms: u64) -> ClockState {
        if now_unix < TRUSTED_FROM {
            self.behind_since_ms = None;
            return ClockState::NotSet;
        }
        if now_unix.saturating_add(BACKWARD_TOLERANCE) >= self.high_water {
            self.behind_since_ms = None;
            return ClockState::Trusted;
        }
        let since = *self.behind_since_ms.get_or_insert(boot_ms);
        if boot_ms.saturating_sub(since) >= ACCEPT_AFTER_MS {
            self.behind_since_ms = None;
            self.high_water = now_unix;
            return ClockState::Trusted;
        }
        ClockState::Behind
    }

    /// An interface renamed: its history goes with its totals.
    pub fn rename_interface(&mut self, from: &str, to: &str) {
        if let Some(track) = self.interfaces.remove(from) {
            self.interfaces.insert(to.to_owned(), track);
        }
    }

    /// New history lengths from a config reload: shorter rings lose their
    /// oldest buckets, longer ones fill up from now on.
    pub fn resize(&mut self, interface: &RingSizes, device: &RingSizes) {
        for track in self.interfaces.values_mut() {
            track.history.resize(interface);
        }
        for track in self.devices.values_mut() {
            track.history.resize(device);
        }
    }

    /// After a commit recorded every change.
    pub fn mark_committed(&mut self) {
        for track in self
            .interfaces
            .values_mut()
            .chain(self.devices.values_mut())
        {
            track.changed = false;
            track.dirty_from = None;
        }
    }
}

/// One track's change since the last commit, as the journal records it:
/// absolute values, so replaying it onto the state it followed repeats it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrackChange {
    pub seen: RxTx<u64>,
    pub held: RxTx<u64>,
    /// The finest ring's buckets from the first one changed to the newest.
    pub finest: Option<(Granularity, i64, Vec<RxTx<u64>>)>,
}

impl Track {
    /// What a commit records of this track, if it changed.
    pub fn change(&self) -> Option<TrackChange> {
        if !self.changed && self.dirty_from.is_none() {
            return None;
        }
        let finest = match (self.finest(), self.dirty_from) {
            (Some(g), Some(from)) => self.history.ring(g).and_then(|ring| {
                let values: Vec<RxTx<u64>> = ring
                    .buckets()
                    .filter(|(index, _)| *index >= from)
                    .map(|(_, v)| v)
                    .collect();
                let first = ring.newest()? + 1 - values.len() as i64;
                Some((g, first, values))
            }),
            _ => None,
        };
        Some(TrackChange {
            seen: self.seen,
            held: self.held,
            finest,
        })
    }

    /// Replays a recorded change: the finest buckets take the recorded
    /// values, and what they grew by is credited to the coarser rings too.
    pub fn apply<Z: UtcOffset>(&mut self, cal: &Calendar<Z>, change: &TrackChange) {
        if let Some((g, first, values)) = &change.finest {
            for (offset, value) in values.iter().enumerate() {
                let index = first.saturating_add(offset as i64);
                let old = self
                    .history
                    .ring(*g)
                    .and_then(|r| r.get(index))
                    .unwrap_or_default();
                let grown = value.saturating_sub(old);
                if grown != RxTx::ZERO {
                    self.history
                        .credit(cal, cal.start(*g, index), grown.rx, grown.tx);
                }
            }
        }
        self.seen = change.seen;
        self.held = change.held;
    }
}

impl Timeline {
    /// A recorded track change for a series, creating the series if new.
    pub fn apply_interface<Z: UtcOffset>(
        &mut self,
        cal: &Calendar<Z>,
        sizes: &RingSizes,
        name: &str,
        change: &TrackChange,
    ) {
        self.interfaces
            .entry(name.to_owned())
            .or_insert_with(|| Track::new(sizes, RxTx::ZERO))
            .apply(cal, change);
    }

    pub fn apply_device<Z: UtcOffset>(
        &mut self,
        cal: &Calendar<Z>,
        sizes: &RingSizes,
        mac: Mac,
        change: &TrackChange,
    ) {
        self.devices
            .entry(mac)
            .or_insert_with(|| Track::new(sizes, RxTx::ZERO))
            .apply(cal, change);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::calendar::FixedOffset;

    const CAL: Calendar<FixedOffset> = Calendar {
        zone: FixedOffset(0),
        month_rotate: 1,
    };
    const SIZES: (&RingSizes, &RingSizes) =
        (&RingSizes::INTERFACE_DEFAULT, &RingSizes::DEVICE_DEFAULT);
    /// 2026-11-22 12:00 UTC.
    const NOON: u64 = 1_795_348_800;
    /// Closed buckets are kept in KiB: whole ones keep these exact.
    const K: u64 = 1024;

    fn observe(t: &mut Timeline, unix: u64, boot_ms: u64, total: u64) -> ClockState {
        t.update(
            &CAL,
            SIZES,
            unix,
            boot_ms,
            &Observed {
                interfaces: vec![("wan", RxTx::new(total, 0))],
                devices: vec![],
            },
        )
    }

    fn days(t: &Timeline) -> Vec<(i64, u64)> {
        t.interfaces["wan"]
            .history
            .ring(Granularity::Day)
            .unwrap()
            .buckets()
            .map(|(i, RxTx { rx, .. })| (i, rx))
            .collect()
    }

    fn day_of(unix: u64) -> i64 {
        CAL.period(Granularity::Day, unix as i64)
    }

    #[test]
    fn a_clock_not_yet_set_holds_history_until_ntp_and_nothing_lands_in_1970() {
        let mut t = Timeline::default();
        // A router without RTC boots at 1970; traffic flows before NTP.
        assert_eq!(observe(&mut t, 5, 1_000, 1_000), ClockState::NotSet);
        assert_eq!(observe(&mut t, 65, 61_000, 5_000), ClockState::NotSet);
        assert_eq!(t.interfaces["wan"].held, RxTx::new(5_000, 0));
        assert!(days(&t).is_empty(), "nothing in 1970");
        // NTP steps the clock to today: all of it goes to today.
        assert_eq!(observe(&mut t, NOON, 121_000, 6_000), ClockState::Trusted);
        assert_eq!(days(&t), vec![(day_of(NOON), 6_000)]);
        assert_eq!(t.interfaces["wan"].held, RxTx::new(0, 0));
    }

    #[test]
    fn a_stale_boot_time_behind_saved_history_is_held_until_the_clock_catches_up() {
        let mut t = Timeline::default();
        observe(&mut t, NOON, 0, 1_000);
        // Reboot: the clock starts at last night's file timestamp.
        let stale = NOON - 15 * 3600;
        assert_eq!(observe(&mut t, stale, 10_000, 3_000), ClockState::Behind);
        assert_eq!(days(&t), vec![(day_of(NOON), 1_000)]);
        // Within the tolerance of the newest time: credited again.
        assert_eq!(
            observe(&mut t, NOON - 300, 20_000, 4_000),
            ClockState::Trusted
        );
        assert_eq!(days(&t), vec![(day_of(NOON), 4_000)]);
    }

    #[test]
    fn a_clock_set_back_on_purpose_is_accepted_after_an_hour_without_losing_bytes() {
        let mut t = Timeline::default();
        let later = NOON + 3 * 86_400;
        observe(&mut t, later, 0, K);
        let back = NOON; // three days back, and it stays there
        assert_eq!(observe(&mut t, back, 1_000, 2 * K), ClockState::Behind);
        assert_eq!(
            observe(&mut t, back + 1800, 1_800_000, 3 * K),
            ClockState::Behind
        );
        assert_eq!(
            observe(&mut t, back + 3600, 3_601_000, 4 * K),
            ClockState::Trusted
        );
        let total: u64 = days(&t).iter().map(|(_, rx)| rx).sum();
        assert_eq!(total, 4 * K, "every byte is somewhere");
        assert!(days(&t).contains(&(day_of(back), 3 * K)), "{:?}", days(&t));
    }

    #[test]
    fn a_forward_step_leaves_empty_days_between() {
        let mut t = Timeline::default();
        observe(&mut t, NOON, 0, K);
        observe(&mut t, NOON + 2 * 86_400, 10_000, 2 * K);
        assert_eq!(
            days(&t),
            vec![
                (day_of(NOON), K),
                (day_of(NOON) + 1, 0),
                (day_of(NOON) + 2, K)
            ]
        );
    }

    #[test]
    fn a_renamed_interface_keeps_its_history_and_nothing_is_credited_twice() {
        let mut t = Timeline::default();
        observe(&mut t, NOON, 0, 1_000);
        t.rename_interface("wan", "wan0");
        t.update(
            &CAL,
            SIZES,
            NOON + 60,
            60_000,
            &Observed {
                interfaces: vec![("wan0", RxTx::new(1_200, 0))],
                devices: vec![],
            },
        );
        let ring = t.interfaces["wan0"].history.ring(Granularity::Day).unwrap();
        assert_eq!(ring.get(day_of(NOON)), Some(RxTx::new(1_200, 0)));
        assert!(!t.interfaces.contains_key("wan"));
    }
}
