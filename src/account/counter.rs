//! One kernel counter made monotonic.
//!
//! Kernel counters wrap (a 32-bit byte counter every few seconds at gigabit
//! rates) and start over when an interface or the kernel does, yet the totals
//! people are billed and warned against must only ever grow.

use serde::{Deserialize, Serialize};

/// How many bits a raw counter has before it wraps to zero.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum CounterWidth {
    Bits32,
    Bits64,
}

impl CounterWidth {
    /// The number of distinct values: a counter of this width wraps at `modulus()`.
    pub fn modulus(self) -> u128 {
        match self {
            CounterWidth::Bits32 => 1u128 << 32,
            CounterWidth::Bits64 => 1u128 << 64,
        }
    }
}

/// A running total fed by successive raw readings of one kernel counter.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MonotonicCounter {
    total: u64,
    last_raw: Option<u64>,
}

/// How a reading was explained; each variant carries what it added to the total.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Observation {
    /// No earlier reading: all the source counted since it started is new to us.
    FirstSeen(u64),
    /// Ordinary growth.
    Delta(u64),
    /// The raw value passed its width's maximum and started over.
    Wrapped(u64),
    /// The source started over from zero, known to the caller or inferred.
    Reset(u64),
}

impl Observation {
    /// What this reading added to the total.
    pub fn delta(self) -> u64 {
        match self {
            Observation::FirstSeen(d)
            | Observation::Delta(d)
            | Observation::Wrapped(d)
            | Observation::Reset(d) => d,
        }
    }
}

impl MonotonicCounter {
    pub fn new() -> Self {
        Self::default()
    }

    /// A total carried over from storage, with no reading to continue from:
    /// the source's next reading counts in full (it restarted meanwhile).
    pub fn carried(total: u64) -> Self {
        Self {
            total,
            last_raw: None,
        }
    }

    pub fn total(&self) -> u64 {
        self.total
    }

    pub fn last_raw(&self) -> Option<u64> {
        self.last_raw
    }

    /// Account one raw reading.
    ///
    /// `restarted`: the source is known to have restarted from zero since the
    /// last observation (kernel boot id changed, interface re-created).
    /// `plausible_max`: the largest delta believable over this interval
    /// (max rate × elapsed), used only to tell a wrap from a reset.
    pub fn observe(
        &mut self,
        raw: u64,
        width: CounterWidth,
        restarted: bool,
        plausible_max: u64,
    ) -> Observation {
        // A 32-bit source cannot have produced the upper bits; treat them as noise.
        let raw = match width {
            CounterWidth::Bits32 => raw & u64::from(u32::MAX),
            CounterWidth::Bits64 => raw,
        };
        let seen = match self.last_raw {
            None => Observation::FirstSeen(raw),
            Some(_) if restarted => Observation::Reset(raw),
            Some(last) if raw >= last => Observation::Delta(raw - last),
            Some(last) => {
                // A wrap explains a decrease only if the traffic it implies was
                // possible; a last reading beyond the width (the width changed)
                // cannot have wrapped at all.
                let wrap = width
                    .modulus()
                    .checked_sub(u128::from(last))
                    .map(|to_wrap| to_wrap + u128::from(raw))
                    .and_then(|candidate| u64::try_from(candidate).ok())
                    .filter(|&candidate| candidate <= plausible_max);
                match wrap {
                    Some(candidate) => Observation::Wrapped(candidate),
                    None => Observation::Reset(raw),
                }
            }
        };
        self.total = self.total.saturating_add(seen.delta());
        self.last_raw = Some(raw);
        seen
    }

    /// Carry on from `other`'s source while keeping both totals: a renamed
    /// interface landing on a name that already has history.
    pub fn absorb(&mut self, other: MonotonicCounter) {
        self.total = self.total.saturating_add(other.total);
        self.last_raw = other.last_raw;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use CounterWidth::{Bits32, Bits64};

    fn seen_at(raw: u64, width: CounterWidth) -> MonotonicCounter {
        let mut counter = MonotonicCounter::new();
        counter.observe(raw, width, false, 0);
        counter
    }

    #[test]
    fn a_counter_never_seen_counts_its_first_reading_in_full() {
        let mut counter = MonotonicCounter::new();
        assert_eq!((counter.total(), counter.last_raw()), (0, None));
        assert_eq!(
            counter.observe(500, Bits64, false, 0),
            Observation::FirstSeen(500)
        );
        assert_eq!((counter.total(), counter.last_raw()), (500, Some(500)));
    }

    #[test]
    fn a_first_reading_is_first_seen_even_when_flagged_as_restarted() {
        let mut counter = MonotonicCounter::new();
        assert_eq!(
            counter.observe(7, Bits64, true, 0),
            Observation::FirstSeen(7)
        );
    }

    #[test]
    fn a_rising_counter_adds_the_difference() {
        let mut counter = seen_at(100, Bits64);
        assert_eq!(
            counter.observe(250, Bits64, false, 0),
            Observation::Delta(150)
        );
        assert_eq!(
            counter.observe(250, Bits64, false, 0),
            Observation::Delta(0)
        );
        assert_eq!((counter.total(), counter.last_raw()), (250, Some(250)));
    }

    #[test]
    fn a_32_bit_counter_that_wraps_continues_its_total() {
        let mut counter = seen_at(u64::from(u32::MAX) - 9, Bits32);
        assert_eq!(
            counter.observe(20, Bits32, false, 1_000),
            Observation::Wrapped(30)
        );
        assert_eq!(counter.total(), u64::from(u32::MAX) - 9 + 30);
        assert_eq!(counter.last_raw(), Some(20));
    }

    #[test]
    fn a_64_bit_counter_that_wraps_continues_its_total() {
        let mut counter = seen_at(u64::MAX - 4, Bits64);
        assert_eq!(
            counter.observe(5, Bits64, false, 100),
            Observation::Wrapped(10)
        );
        assert_eq!(counter.total(), u64::MAX);
    }

    #[test]
    fn a_decrease_too_large_to_be_a_wrap_is_a_reset() {
        let mut counter = seen_at(1_000, Bits32);
        let wrap = (1u64 << 32) - 1_000 + 40;
        assert_eq!(
            counter.observe(40, Bits32, false, wrap - 1),
            Observation::Reset(40)
        );
        assert_eq!(counter.total(), 1_040);
        let mut counter = seen_at(1_000, Bits32);
        assert_eq!(
            counter.observe(40, Bits32, false, wrap),
            Observation::Wrapped(wrap)
        );
    }

    #[test]
    fn a_known_restart_counts_the_new_reading_in_full_even_if_it_is_higher() {
        let mut counter = seen_at(100, Bits64);
        assert_eq!(
            counter.observe(300, Bits64, true, 0),
            Observation::Reset(300)
        );
        assert_eq!((counter.total(), counter.last_raw()), (400, Some(300)));
    }

    #[test]
    fn a_32_bit_counter_ignores_bits_above_32() {
        let mut counter = seen_at((1 << 32) | 10, Bits32);
        assert_eq!(counter.last_raw(), Some(10));
        assert_eq!(
            counter.observe((5 << 32) | 15, Bits32, false, 0),
            Observation::Delta(5)
        );
        assert_eq!(counter.total(), 15);
    }

    #[test]
    fn a_reading_left_by_a_wider_counter_resets_instead_of_panicking() {
        let mut counter = seen_at(1 << 40, Bits64);
        assert_eq!(
            counter.observe(10, Bits32, false, u64::MAX),
            Observation::Reset(10)
        );
    }

    #[test]
    fn totals_saturate_instead_of_overflowing() {
        let mut counter = seen_at(u64::MAX - 1, Bits64);
        counter.observe(u64::MAX, Bits64, true, 0);
        assert_eq!(counter.total(), u64::MAX);
        counter.observe(3, Bits64, false, u64::MAX);
        assert_eq!(counter.total(), u64::MAX);
    }

    #[test]
    fn absorbing_keeps_both_totals_and_follows_the_other_source() {
        let mut earlier = seen_at(100, Bits64);
        let mut renamed = seen_at(40, Bits64);
        renamed.observe(50, Bits64, false, 0);
        earlier.absorb(renamed);
        assert_eq!((earlier.total(), earlier.last_raw()), (150, Some(50)));
        assert_eq!(earlier.observe(55, Bits64, false, 0), Observation::Delta(5));
    }

    #[test]
    fn a_counter_survives_being_stored_and_loaded() {
        let counter = seen_at(42, Bits64);
        let stored = serde_json::to_string(&counter).unwrap();
        let loaded: MonotonicCounter = serde_json::from_str(&stored).unwrap();
        assert_eq!(loaded, counter);
    }
}
