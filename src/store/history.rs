//! Rollup rings: a fixed number of consecutive periods per granularity,
//! oldest dropped as new ones begin, so memory stays bounded however long
//! netmeter runs.
//!
//! Not `heapless`: ring sizes come from the config at run time, and a
//! heapless capacity is a compile-time constant (a compile-time maximum
//! would reserve the maximum for every device). A `VecDeque` that never
//! grows past the configured capacity is just as bounded.
//!
//! Closed buckets are kept to the nearest KiB, in RAM as on disk, so a
//! restart never changes one; the running bucket and every total are exact
//! to the byte. That halves what a full history takes to store (varints of
//! KiB instead of bytes) and is invisible at the units anyone reads
//! history in.

use std::collections::VecDeque;

use serde::de::{self, Deserializer, SeqAccess, Visitor};
use serde::ser::{SerializeTuple, Serializer};
use serde::{Deserialize, Serialize};

use super::calendar::{Calendar, Granularity, UtcOffset};

/// Buckets kept per granularity; 0 = that rollup is not kept.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RingSizes {
    pub five_minute: u32,
    pub hour: u32,
    pub day: u32,
    pub month: u32,
    pub year: u32,
}

impl RingSizes {
    /// 48 h of five minutes, 7 days of hours, 62 days, 36 months, 10 years.
    pub const INTERFACE_DEFAULT: RingSizes = RingSizes {
        five_minute: 576,
        hour: 168,
        day: 62,
        month: 36,
        year: 10,
    };
    /// 72 hours, 62 days, 24 months, 10 years.
    pub const DEVICE_DEFAULT: RingSizes = RingSizes {
        five_minute: 0,
        hour: 72,
        day: 62,
        month: 24,
        year: 10,
    };

    pub fn get(&self, g: Granularity) -> u32 {
        match g {
            Granularity::FiveMinute => self.five_minute,
            Granularity::Hour => self.hour,
            Granularity::Day => self.day,
            Granularity::Month => self.month,
            Granularity::Year => self.year,
        }
    }
}

/// A decoded ring larger than this is refused: no config allows it.
const MAX_CAPACITY: u32 = 1_000_000;

/// Consecutive periods' (rx, tx) bytes, oldest first.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ring {
    capacity: u32,
    /// The index of the last bucket.
    newest: i64,
    values: VecDeque<[u64; 2]>,
}

fn round_kib(v: u64) -> u64 {
    v.saturating_add(512) / 1024 * 1024
}

impl Ring {
    pub fn new(capacity: u32) -> Self {
        Self {
            capacity,
            newest: 0,
            values: VecDeque::new(),
        }
    }

    pub fn capacity(&self) -> u32 {
        self.capacity
    }

    pub fn newest(&self) -> Option<i64> {
        (!self.values.is_empty()).then_some(self.newest)
    }

    fn oldest(&self) -> i64 {
        self.newest - (self.values.len() as i64 - 1)
    }

    /// Adds to the bucket of period `index`, starting newer ones as needed.
    /// False if it is older than every bucket kept (it is dropped).
    pub fn credit(&mut self, index: i64, rx: u64, tx: u64) -> bool {
        if self.capacity == 0 {
            return true;
        }
        if self.values.is_empty() {
            self.newest = index;
            self.values.push_back([rx, tx]);
            return true;
        }
        if index > self.newest {
            self.close_newest();
            let gap = index.saturating_sub(self.newest);
            if gap >= i64::from(self.capacity) {
                self.values.clear();
            } else {
                for _ in 1..gap {
                    self.values.push_back([0, 0]);
                }
            }
            self.values.push_back([rx, tx]);
            self.newest = index;
            while self.values.len() > self.capacity as usize {
                self.values.pop_front();
            }
            return true;
        }
        if index < self.oldest() {
            return false;
        }
        let at = (index - self.oldest()) as usize;
        let v = &mut self.values[at];
        v[0] = v[0].saturating_add(rx);
        v[1] = v[1].saturating_add(tx);
        true
    }

    fn close_newest(&mut self) {
        if let Some(v) = self.values.back_mut() {
            *v = [round_kib(v[0]), round_kib(v[1])];
        }
    }

    /// (index, [rx, tx]) oldest first, empty periods included.
    pub fn buckets(&self) -> impl Iterator<Item = (i64, [u64; 2])> + '_ {
        let oldest = self.oldest();
        self.values
            .iter()
            .enumerate()
            .map(move |(i, v)| (oldest + i as i64, *v))
    }

    pub fn get(&self, index: i64) -> Option<[u64; 2]> {
        if self.values.is_empty() || index > self.newest || index < self.oldest() {
            return None;
        }
        self.values.get((index - self.oldest()) as usize).copied()
    }

    /// Shrinking drops the oldest buckets.
    pub fn resize(&mut self, capacity: u32) {
        self.capacity = capacity;
        while self.values.len() > capacity as usize {
            self.values.pop_front();
        }
        self.values.shrink_to(capacity as usize);
    }
}

/// capacity, newest, count, then the values flat: closed buckets in KiB,
/// the newest in bytes. Postcard makes each a varint.
impl Serialize for Ring {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let n = self.values.len();
        let mut t = serializer.serialize_tuple(3 + 2 * n)?;
        t.serialize_element(&self.capacity)?;
        t.serialize_element(&self.newest)?;
        t.serialize_element(&(n as u32))?;
        for (i, v) in self.values.iter().enumerate() {
            for x in v {
                if i + 1 == n {
                    t.serialize_element(x)?;
                } else {
                    t.serialize_element(&(round_kib(*x) / 1024))?;
                }
            }
        }
        t.end()
    }
}

impl<'de> Deserialize<'de> for Ring {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct RingVisitor;
        impl<'de> Visitor<'de> for RingVisitor {
            type Value = Ring;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a history ring")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Ring, A::Error> {
                let missing = || de::Error::custom("history ring cut short");
                let capacity: u32 = seq.next_element()?.ok_or_else(missing)?;
                let newest: i64 = seq.next_element()?.ok_or_else(missing)?;
                let n: u32 = seq.next_element()?.ok_or_else(missing)?;
                if capacity > MAX_CAPACITY || n > capacity {
                    return Err(de::Error::custom(format!(
                        "history ring of {n} buckets in a capacity of {capacity}"
                    )));
                }
                let mut values = VecDeque::with_capacity(n as usize);
                for i in 0..n {
                    let mut v = [0u64; 2];
                    for x in &mut v {
                        let raw: u64 = seq.next_element()?.ok_or_else(missing)?;
                        *x = if i + 1 == n {
                            raw
                        } else {
                            raw.saturating_mul(1024)
                        };
                    }
                    values.push_back(v);
                }
                Ok(Ring {
                    capacity,
                    newest,
                    values,
                })
            }
        }
        // Postcard reads a tuple's length from the type; ours depends on a
        // field, so it is read as a long tuple and stops early.
        deserializer.deserialize_tuple(usize::MAX, RingVisitor)
    }
}

/// Every kept rollup of one interface or device.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeriesHistory {
    rings: [Option<Ring>; 5],
}

fn slot(g: Granularity) -> usize {
    g as usize
}

impl SeriesHistory {
    pub fn new(sizes: &RingSizes) -> Self {
        let mut h = Self::default();
        h.resize(sizes);
        h
    }

    pub fn ring(&self, g: Granularity) -> Option<&Ring> {
        self.rings[slot(g)].as_ref()
    }

    /// Credits every ring at the period holding `unix`; false if some ring
    /// had to drop it as too old.
    pub fn credit<Z: UtcOffset>(&mut self, cal: &Calendar<Z>, unix: i64, rx: u64, tx: u64) -> bool {
        let mut kept = true;
        for g in Granularity::ALL {
            if let Some(ring) = &mut self.rings[slot(g)] {
                kept &= ring.credit(cal.period(g, unix), rx, tx);
            }
        }
        kept
    }

    /// Adds and removes rings, and resizes the rest.
    pub fn resize(&mut self, sizes: &RingSizes) {
        for g in Granularity::ALL {
            let capacity = sizes.get(g);
            let ring = &mut self.rings[slot(g)];
            match (capacity, ring.as_mut()) {
                (0, _) => *ring = None,
                (c, Some(r)) => r.resize(c),
                (c, None) => *ring = Some(Ring::new(c)),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::calendar::FixedOffset;

    fn values(r: &Ring) -> Vec<(i64, [u64; 2])> {
        r.buckets().collect()
    }

    #[test]
    fn gaps_are_empty_buckets_and_the_oldest_go_beyond_capacity() {
        let mut r = Ring::new(4);
        assert!(r.credit(10, 5, 1));
        assert!(r.credit(12, 2048, 0));
        assert_eq!(
            values(&r),
            vec![(10, [0, 0]), (11, [0, 0]), (12, [2048, 0])]
        );
        assert!(r.credit(14, 1, 1));
        assert_eq!(r.newest(), Some(14));
        assert_eq!(values(&r).first().unwrap().0, 11);
        assert_eq!(values(&r).len(), 4);
        // Back in time within the span: its own bucket; beyond: dropped.
        assert!(r.credit(12, 1024, 0));
        assert_eq!(r.get(12), Some([3072, 0]));
        assert!(!r.credit(10, 1, 1));
        // A jump beyond capacity starts over without walking the gap.
        assert!(r.credit(i64::MAX / 2, 7, 7));
        assert_eq!(values(&r), vec![(i64::MAX / 2, [7, 7])]);
    }

    #[test]
    fn closed_buckets_round_to_the_nearest_kib_and_the_running_one_is_exact() {
        let mut r = Ring::new(8);
        r.credit(0, 1536, 1535);
        r.credit(1, 100, 3);
        assert_eq!(r.get(0), Some([2048, 1024]));
        assert_eq!(r.get(1), Some([100, 3]));
    }

    #[test]
    fn memory_stays_bounded_however_long_it_runs() {
        let mut r = Ring::new(576);
        for i in 0..1_000_000 {
            r.credit(i / 3, 1, 1);
        }
        assert_eq!(r.values.len(), 576);
        assert!(r.values.capacity() <= 2 * 576, "{}", r.values.capacity());
    }

    #[test]
    fn rings_round_trip_through_postcard_and_hostile_input_is_refused() {
        let mut h = SeriesHistory::new(&RingSizes::DEVICE_DEFAULT);
        let cal = Calendar {
            zone: FixedOffset(3600),
            month_rotate: 1,
        };
        for i in 0..500 {
            h.credit(&cal, 1_790_000_000 + i * 1800, 1_000_003 * i as u64, 7);
        }
        let bytes = postcard::to_allocvec(&h).unwrap();
        let back: SeriesHistory = postcard::from_bytes(&bytes).unwrap();
        assert_eq!(back, h);

        let hostile = postcard::to_allocvec(&(5u32, 0i64, 6u32)).unwrap();
        assert!(postcard::from_bytes::<Ring>(&hostile).is_err());
        let huge = postcard::to_allocvec(&(u32::MAX, 0i64, 1u32, 1u64, 1u64)).unwrap();
        assert!(postcard::from_bytes::<Ring>(&huge).is_err());
        let short = postcard::to_allocvec(&(4u32, 0i64, 2u32, 1u64)).unwrap();
        assert!(postcard::from_bytes::<Ring>(&short).is_err());
    }

    /// A device's full default history, every bucket filled, at a given
    /// daily volume (rx; tx a tenth), varied by a fixed pseudo-random walk.
    pub(crate) fn full_device_history(bytes_per_day: u64) -> SeriesHistory {
        let mut h = SeriesHistory::new(&RingSizes::DEVICE_DEFAULT);
        let mut x: u64 = 0x2545_F491_4F6C_DD1D;
        let mut vary = |v: u64| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            v / 2 + x % v.max(1)
        };
        let per_hour = bytes_per_day / 24;
        for (g, n, each) in [
            (Granularity::Year, 10, per_hour * 24 * 365),
            (Granularity::Month, 24, per_hour * 24 * 30),
            (Granularity::Day, 62, per_hour * 24),
            (Granularity::Hour, 72, per_hour),
        ] {
            let ring = h.rings[slot(g)].as_mut().unwrap();
            for i in 0..n {
                let rx = vary(each);
                ring.credit(1000 + i, rx, vary(each / 10));
            }
        }
        h
    }

    #[test]
    fn a_full_device_history_stores_in_under_a_kilobyte_at_100_mb_a_day() {
        for (label, per_day) in [("100 MB/day", 100_000_000u64), ("1 GB/day", 1_000_000_000)] {
            let bytes = postcard::to_allocvec(&full_device_history(per_day))
                .unwrap()
                .len();
            eprintln!("full default device history at {label}: {bytes} bytes");
            if per_day == 100_000_000 {
                assert!(bytes <= 1000, "{bytes} bytes");
            }
        }
    }
}
