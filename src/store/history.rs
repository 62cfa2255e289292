//! Traffic history: per series (an interface or a device) one ring of
//! consecutive periods per granularity, each a fixed number of buckets of
//! (rx bytes, tx bytes).
//!
//! Memory is bounded by configuration, not by uptime: a ring never holds
//! more than its capacity, grows its buffer only as buckets arrive (a device
//! seen once costs almost nothing) and never reserves beyond its capacity.
//! We deliberately do not use `heapless`: its capacities are compile-time
//! constants, while ours come from the configuration at run time, and a
//! compile-time maximum would reserve that maximum for every device.
//!
//! Closed buckets are kept to the nearest KiB; the running bucket and all
//! totals are exact. A bucket is rounded (half up) when the ring moves past
//! it, in RAM too, so what is stored and what is shown never differ and a
//! restart never changes a closed bucket. Stored as KiB, each closed value
//! is ten bits, mostly one varint byte, shorter: a full device history at
//! 100 MB a day encodes in about 880 bytes.

use std::collections::VecDeque;
use std::fmt;

use serde::de::{self, DeserializeSeed, SeqAccess, Visitor};
use serde::ser::{SerializeSeq, SerializeTuple};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::calendar::{Calendar, Granularity, UtcOffset};
use crate::rxtx::RxTx;

/// The largest ring a file may declare (or a configuration may ask for):
/// 16 MB of buckets, so a hostile file cannot make a 64 MB router allocate
/// more, and ten years of five-minute buckets still fit.
pub const MAX_CAPACITY: u32 = 1_000_000;

/// Buckets per granularity; 0 means that ring is not kept.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RingSizes {
    pub five_minute: u32,
    pub hour: u32,
    pub day: u32,
    pub month: u32,
    pub year: u32,
}

impl RingSizes {
    /// 48 hours of five minutes, 7 days of hours, 62 days, 36 months,
    /// 10 years: interfaces are few, so they get the fine rings.
    pub const INTERFACE_DEFAULT: RingSizes = RingSizes {
        five_minute: 576,
        hour: 168,
        day: 62,
        month: 36,
        year: 10,
    };

    /// Devices are many: no five-minute ring, 3 days of hours.
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

/// A fixed-capacity ring of consecutive periods, oldest first.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ring {
    capacity: u32,
    /// Period index of the last bucket; 0 while the ring is empty, so equal
    /// contents compare equal.
    newest: i64,
    values: VecDeque<RxTx<u64>>,
}

impl Ring {
    /// Allocates nothing until the first credit. Capacities over
    /// `MAX_CAPACITY` are clamped so every ring can be loaded again.
    pub fn new(capacity: u32) -> Self {
        Ring {
            capacity: capacity.min(MAX_CAPACITY),
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

    pub fn get(&self, index: i64) -> Option<RxTx<u64>> {
        let back = usize::try_from(self.newest()?.checked_sub(index)?).ok()?;
        let position = self.values.len().checked_sub(back + 1)?;
        self.values.get(position).copied()
    }

    /// Oldest to newest, gaps included as zero buckets.
    pub fn buckets(&self) -> impl Iterator<Item = (i64, RxTx<u64>)> + '_ {
        // Never overflows: decoding and crediting keep every bucket's index
        // representable.
        let oldest = self.newest - (self.values.len() as i64 - 1).max(0);
        self.values
            .iter()
            .enumerate()
            .map(move |(i, v)| (oldest + i as i64, *v))
    }

    /// Adds traffic to period `index`. Returns false, crediting nothing,
    /// when the period is out of reach (`capacity` periods or more before
    /// the newest): the caller counts it as dropped. A clock that steps
    /// back by less than that lands in the older bucket.
    pub fn credit(&mut self, index: i64, rx: u64, tx: u64) -> bool {
        if self.capacity == 0 {
            return true;
        }
        let Some(newest) = self.newest() else {
            self.push(RxTx::new(rx, tx));
            self.newest = index;
            return true;
        };
        if index > newest {
            let gap = index.abs_diff(newest);
            if gap >= u64::from(self.capacity) {
                // Nothing held is within the new span: start afresh rather
                // than walk a gap of any length.
                self.values.clear();
            } else {
                if let Some(last) = self.values.back_mut() {
                    *last = round_to_kib(*last);
                }
                for _ in 1..gap {
                    self.push(RxTx::ZERO);
                }
            }
            self.push(RxTx::new(rx, tx));
            self.newest = index;
            return true;
        }
        let back = newest.abs_diff(index);
        if back >= u64::from(self.capacity) {
            return false;
        }
        // `back < capacity <= MAX_CAPACITY`, so these conversions hold.
        let back = back as usize;
        while self.values.len() <= back {
            // Before the oldest held bucket but within reach: the ring
            // was not full yet.
            reserve_one(&mut self.values, self.capacity as usize);
            self.values.push_front(RxTx::ZERO);
        }
        let position = self.values.len() - 1 - back;
        let bucket = &mut self.values[position];
        *bucket = bucket.saturating_add(RxTx::new(rx, tx));
        if back > 0 {
            // A late credit to a closed bucket: keep it closed-shaped.
            *bucket = round_to_kib(*bucket);
        }
        true
    }

    /// Shrinking drops the oldest buckets and frees their memory.
    pub fn resize(&mut self, capacity: u32) {
        self.capacity = capacity.min(MAX_CAPACITY);
        let capacity = self.capacity as usize;
        while self.values.len() > capacity {
            self.values.pop_front();
        }
        if self.values.is_empty() {
            self.values = VecDeque::new();
            self.newest = 0;
        } else if self.values.capacity() > capacity {
            self.values.shrink_to(capacity);
        }
    }

    fn push(&mut self, value: RxTx<u64>) {
        push_bounded(&mut self.values, self.capacity as usize, value);
    }
}

/// Appends, dropping the oldest beyond `capacity`, and grows the buffer
/// geometrically but never past `capacity` (`VecDeque`'s own doubling
/// would reserve up to twice it).
fn push_bounded(values: &mut VecDeque<RxTx<u64>>, capacity: usize, value: RxTx<u64>) {
    while values.len() >= capacity.max(1) {
        values.pop_front();
    }
    reserve_one(values, capacity);
    values.push_back(value);
}

/// Room for one more bucket in a ring of `capacity` that holds fewer.
fn reserve_one(values: &mut VecDeque<RxTx<u64>>, capacity: usize) {
    if values.len() == values.capacity() {
        let wanted = (values.len() * 2)
            .max(4)
            .min(capacity.max(values.len() + 1));
        values.reserve_exact(wanted - values.len());
    }
}

/// Nearest multiple of 1024, half up.
fn round_to_kib(bucket: RxTx<u64>) -> RxTx<u64> {
    bucket.map(|bytes| bytes.saturating_add(512) / 1024 * 1024)
}

/// Encoded as (capacity, newest, \[buckets\]): closed buckets in KiB, the
/// newest in bytes. Under postcard every number is a varint (`newest`
/// zigzagged), so a ring costs a few bytes of header and 2–5 bytes a value.
impl Serialize for Ring {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut tuple = serializer.serialize_tuple(3)?;
        tuple.serialize_element(&self.capacity)?;
        tuple.serialize_element(&self.newest)?;
        tuple.serialize_element(&StoredBuckets(&self.values))?;
        tuple.end()
    }
}

struct StoredBuckets<'a>(&'a VecDeque<RxTx<u64>>);

impl Serialize for StoredBuckets<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let last = self.0.len().saturating_sub(1);
        let mut seq = serializer.serialize_seq(Some(self.0.len()))?;
        for (i, bucket) in self.0.iter().enumerate() {
            let stored = if i == last {
                *bucket
            } else {
                bucket.map(|bytes| bytes / 1024)
            };
            seq.serialize_element(&stored)?;
        }
        seq.end()
    }
}

impl<'de> Deserialize<'de> for Ring {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_tuple(3, RingVisitor)
    }
}

struct RingVisitor;

impl<'de> Visitor<'de> for RingVisitor {
    type Value = Ring;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a history ring (capacity, newest period, buckets)")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Ring, A::Error> {
        let capacity: u32 = seq
            .next_element()?
            .ok_or_else(|| de::Error::invalid_length(0, &self))?;
        if capacity > MAX_CAPACITY {
            return Err(de::Error::custom(format_args!(
                "history ring of {capacity} buckets (at most {MAX_CAPACITY})"
            )));
        }
        let newest: i64 = seq
            .next_element()?
            .ok_or_else(|| de::Error::invalid_length(1, &self))?;
        let values = seq
            .next_element_seed(BucketsSeed { capacity })?
            .ok_or_else(|| de::Error::invalid_length(2, &self))?;
        let consistent = match values.len() {
            0 => newest == 0,
            len => newest.checked_sub(len as i64 - 1).is_some(),
        };
        if !consistent {
            return Err(de::Error::custom(format_args!(
                "history ring of {} buckets ending at period {newest}",
                values.len()
            )));
        }
        Ok(Ring {
            capacity,
            newest,
            values,
        })
    }
}

/// Reads the buckets, refusing more than `capacity` before allocating for
/// them.
struct BucketsSeed {
    capacity: u32,
}

impl<'de> DeserializeSeed<'de> for BucketsSeed {
    type Value = VecDeque<RxTx<u64>>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for BucketsSeed {
    type Value = VecDeque<RxTx<u64>>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "at most {} history buckets", self.capacity)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let capacity = self.capacity as usize;
        if let Some(len) = seq.size_hint().filter(|&len| len > capacity) {
            return Err(de::Error::invalid_length(len, &self));
        }
        let mut values = VecDeque::new();
        // The last bucket read is the newest, stored exact; every one
        // before it is closed, stored in KiB.
        let mut pending: Option<RxTx<u64>> = None;
        let mut count = 0usize;
        while let Some(stored) = seq.next_element::<RxTx<u64>>()? {
            count += 1;
            if count > capacity {
                return Err(de::Error::invalid_length(count, &self));
            }
            if let Some(kib) = pending.replace(stored) {
                let RxTx {
                    rx: Some(rx),
                    tx: Some(tx),
                } = kib.map(|k| k.checked_mul(1024))
                else {
                    return Err(de::Error::custom("closed history bucket over 2^64 bytes"));
                };
                push_bounded(&mut values, capacity, RxTx::new(rx, tx));
            }
        }
        if let Some(newest) = pending {
            push_bounded(&mut values, capacity, newest);
        }
        Ok(values)
    }
}

/// The rings of one interface or device, indexed by `Granularity`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeriesHistory {
    rings: [Option<Ring>; 5],
}

impl SeriesHistory {
    pub fn new(sizes: &RingSizes) -> Self {
        SeriesHistory {
            rings: Granularity::ALL.map(|g| match sizes.get(g) {
                0 => None,
                capacity => Some(Ring::new(capacity)),
            }),
        }
    }

    /// Credits the traffic to the period containing `unix` in every ring.
    /// False if any ring no longer holds that period (the caller counts
    /// the traffic as dropped); the rings that do hold it are credited.
    pub fn credit<Z: UtcOffset>(
        &mut self,
        calendar: &Calendar<Z>,
        unix: i64,
        rx: u64,
        tx: u64,
    ) -> bool {
        let mut kept = true;
        for g in Granularity::ALL {
            if let Some(ring) = &mut self.rings[g.index()] {
                kept &= ring.credit(calendar.period(g, unix), rx, tx);
            }
        }
        kept
    }

    pub fn ring(&self, g: Granularity) -> Option<&Ring> {
        self.rings[g.index()].as_ref()
    }

    /// Follows a configuration change: rings sized 0 are dropped, new ones
    /// start empty, the others keep their newest buckets.
    pub fn resize(&mut self, sizes: &RingSizes) {
        for g in Granularity::ALL {
            let slot = &mut self.rings[g.index()];
            match (sizes.get(g), slot.as_mut()) {
                (0, _) => *slot = None,
                (capacity, Some(ring)) => ring.resize(capacity),
                (capacity, None) => *slot = Some(Ring::new(capacity)),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rxtx::RxTx;
    use crate::store::calendar::FixedOffset;

    const UTC: Calendar<FixedOffset> = Calendar {
        zone: FixedOffset(0),
        month_rotate: 1,
    };

    /// splitmix64: deterministic, no rand crate.
    fn next(state: &mut u64) -> u64 {
        *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = *state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn contents(ring: &Ring) -> Vec<(i64, [u64; 2])> {
        ring.buckets().map(|(i, v)| (i, [v.rx, v.tx])).collect()
    }

    #[test]
    fn sizes_by_granularity() {
        let sizes = RingSizes::INTERFACE_DEFAULT;
        let all = Granularity::ALL.map(|g| sizes.get(g));
        assert_eq!(all, [576, 168, 62, 36, 10]);
        let device = Granularity::ALL.map(|g| RingSizes::DEVICE_DEFAULT.get(g));
        assert_eq!(device, [0, 72, 62, 24, 10]);
    }

    #[test]
    fn fills_gaps_with_zero_buckets() {
        let mut ring = Ring::new(8);
        assert_eq!(ring.newest(), None);
        assert!(ring.credit(10, 4096, 1024));
        assert!(ring.credit(13, 5, 6));
        assert_eq!(
            contents(&ring),
            [(10, [4096, 1024]), (11, [0, 0]), (12, [0, 0]), (13, [5, 6])]
        );
        assert_eq!(ring.newest(), Some(13));
        assert_eq!(ring.get(11), Some(RxTx::new(0, 0)));
        assert_eq!(ring.get(13), Some(RxTx::new(5, 6)));
        assert_eq!(ring.get(9), None);
        assert_eq!(ring.get(14), None);
        assert_eq!(ring.get(i64::MIN), None);
        assert_eq!(ring.get(i64::MAX), None);
    }

    #[test]
    fn drops_the_oldest_beyond_capacity() {
        let mut ring = Ring::new(4);
        for index in 10..=15 {
            assert!(ring.credit(index, index as u64 * 1024, 0));
        }
        let indexes: Vec<i64> = ring.buckets().map(|(i, _)| i).collect();
        assert_eq!(indexes, [12, 13, 14, 15]);
        // A gap of capacity − 1 keeps the newest old bucket.
        assert!(ring.credit(18, 0, 0));
        let indexes: Vec<i64> = ring.buckets().map(|(i, _)| i).collect();
        assert_eq!(indexes, [15, 16, 17, 18]);
        assert_eq!(ring.get(15), Some(RxTx::new(15 * 1024, 0)));
    }

    #[test]
    fn a_gap_of_capacity_or_more_starts_afresh() {
        let mut ring = Ring::new(4);
        ring.credit(10, 1, 1);
        ring.credit(14, 2, 2);
        assert_eq!(contents(&ring), [(14, [2, 2])]);
        // Extreme gaps take no time.
        let mut ring = Ring::new(MAX_CAPACITY);
        assert!(ring.credit(i64::MIN, 1, 1));
        assert!(ring.credit(i64::MAX, 2, 2));
        assert_eq!(contents(&ring), [(i64::MAX, [2, 2])]);
        assert!(!ring.credit(i64::MIN, 1, 1));
    }

    #[test]
    fn too_old_credits_are_refused() {
        let mut ring = Ring::new(4);
        for index in 10..=13 {
            ring.credit(index, 1024, 1024);
        }
        let before = ring.clone();
        assert!(!ring.credit(9, 5, 5));
        assert!(!ring.credit(i64::MIN, 5, 5));
        assert_eq!(ring, before);
    }

    #[test]
    fn a_ring_not_yet_full_reaches_back_to_its_capacity() {
        let mut ring = Ring::new(8);
        ring.credit(12, 1024, 0);
        ring.credit(13, 1, 0);
        assert!(ring.credit(8, 2048, 0));
        assert_eq!(
            contents(&ring),
            [
                (8, [2048, 0]),
                (9, [0, 0]),
                (10, [0, 0]),
                (11, [0, 0]),
                (12, [1024, 0]),
                (13, [1, 0])
            ]
        );
        assert!(!ring.credit(5, 1, 0));
        assert!(ring.credit(6, 1, 0));
        assert_eq!(ring.buckets().count(), 8);
        assert_eq!(ring.get(6), Some(RxTx::new(0, 0)));
        assert!(ring.values.capacity() <= 16);
    }

    #[test]
    fn stepping_back_within_the_span_lands_in_the_older_bucket() {
        let mut ring = Ring::new(4);
        ring.credit(11, 1024, 0);
        ring.credit(13, 7, 0);
        assert!(ring.credit(11, 2048, 100));
        assert_eq!(ring.get(11), Some(RxTx::new(3072, 0)));
        assert_eq!(ring.newest(), Some(13));
        // Closed buckets stay in whole KiB, the running one exact.
        assert!(ring.credit(12, 600, 0));
        assert_eq!(ring.get(12), Some(RxTx::new(1024, 0)));
        assert!(ring.credit(13, 1, 0));
        assert_eq!(ring.get(13), Some(RxTx::new(8, 0)));
        assert!(ring.credit(10, 0, 0));
        assert!(!ring.credit(9, 0, 0));
    }

    #[test]
    fn closed_buckets_round_to_the_nearest_kib() {
        let mut ring = Ring::new(8);
        ring.credit(1, 512, 511);
        ring.credit(2, 1536, 1535);
        ring.credit(3, 1_000_000_007, 3);
        assert_eq!(ring.get(1), Some(RxTx::new(1024, 0)));
        assert_eq!(ring.get(2), Some(RxTx::new(2048, 1024)));
        // The running bucket is exact to the byte.
        assert_eq!(ring.get(3), Some(RxTx::new(1_000_000_007, 3)));
        ring.credit(4, 0, 0);
        assert_eq!(ring.get(3), Some(RxTx::new(1_000_000_512, 0)));
        // Saturation, then rounding, never overflows.
        ring.credit(4, u64::MAX, u64::MAX);
        ring.credit(4, 1, 1);
        ring.credit(5, 0, 0);
        assert_eq!(
            ring.get(4),
            Some(RxTx::new(u64::MAX / 1024 * 1024, u64::MAX / 1024 * 1024))
        );
        let bytes = postcard::to_allocvec(&ring).unwrap();
        assert_eq!(postcard::from_bytes::<Ring>(&bytes).unwrap(), ring);
    }

    #[test]
    fn memory_stays_bounded() {
        let unused = Ring::new(576);
        assert_eq!(unused.values.capacity(), 0);
        let mut state = 7;
        for capacity in [1, 3, 576] {
            let mut ring = Ring::new(capacity);
            let mut index = 0i64;
            for _ in 0..1_000_000 {
                let r = next(&mut state);
                // Mostly forward by 0–2, sometimes back a little.
                index += (r % 4) as i64 - i64::from(r % 97 == 0) * 5;
                ring.credit(index, r >> 40, r >> 50);
                assert!(ring.values.len() <= capacity as usize);
            }
            // `push_bounded` reserves exactly; allow the allocator's say.
            assert!(ring.values.capacity() <= 2 * capacity as usize);
            assert_eq!(ring.values.len(), capacity as usize);
        }
    }

    #[test]
    fn resize_keeps_the_newest() {
        let mut ring = Ring::new(10);
        for index in 0..10 {
            ring.credit(index, 1024 * index as u64, 0);
        }
        ring.resize(3);
        assert_eq!(ring.capacity(), 3);
        let indexes: Vec<i64> = ring.buckets().map(|(i, _)| i).collect();
        assert_eq!(indexes, [7, 8, 9]);
        assert!(ring.values.capacity() <= 6);
        assert!(!ring.credit(6, 1, 1));
        ring.resize(5);
        ring.credit(11, 0, 0);
        assert_eq!(ring.buckets().count(), 5);
        ring.resize(0);
        assert_eq!(ring.newest(), None);
        assert!(ring.credit(12, 1, 1));
        assert_eq!(ring.newest(), None);
        assert_eq!(ring, Ring::new(0));
    }

    #[test]
    fn postcard_round_trip() {
        let mut state = 99;
        for capacity in [0, 1, 2, 62, 576] {
            let mut ring = Ring::new(capacity);
            let empty = postcard::to_allocvec(&ring).unwrap();
            assert_eq!(postcard::from_bytes::<Ring>(&empty).unwrap(), ring);
            let mut index = -40i64;
            for _ in 0..2000 {
                let r = next(&mut state);
                index += (r % 3) as i64;
                ring.credit(index, r >> 30, r >> 45);
            }
            let bytes = postcard::to_allocvec(&ring).unwrap();
            let decoded: Ring = postcard::from_bytes(&bytes).unwrap();
            assert_eq!(decoded, ring);
            assert_eq!(contents(&decoded), contents(&ring));
        }
    }

    #[test]
    fn encoding_is_pinned() {
        let mut ring = Ring::new(4);
        ring.credit(5, 2048, 1024);
        ring.credit(6, 7, 300);
        // capacity 4, newest 6 (zigzag 12), 2 buckets, [2, 1] KiB, [7, 300]
        // bytes (300 = varint ac 02).
        let bytes = postcard::to_allocvec(&ring).unwrap();
        assert_eq!(bytes, [4, 12, 2, 2, 1, 7, 0xac, 0x02]);
        let negative = Ring {
            capacity: 1,
            newest: -1,
            values: VecDeque::from([RxTx::ZERO]),
        };
        assert_eq!(postcard::to_allocvec(&negative).unwrap(), [1, 1, 1, 0, 0]);
    }

    #[test]
    fn hostile_encodings_are_errors() {
        let bad: [&[u8]; 9] = [
            // 3 buckets in a ring of 2.
            &[2, 0, 3, 1, 1, 1, 1, 1, 1],
            // A capacity over MAX_CAPACITY (2,000,000 = 80 89 7a).
            &[0x80, 0x89, 0x7a, 0, 0],
            // u32::MAX capacity, then a huge bucket count.
            &[
                0xff, 0xff, 0xff, 0xff, 0x0f, 0, 0xff, 0xff, 0xff, 0xff, 0x0f,
            ],
            // Buckets in a ring of 0.
            &[0, 0, 1, 1, 1],
            // A closed bucket of u64::MAX KiB.
            &[
                2, 2, 2, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01, 0, 0, 0,
            ],
            // An empty ring claiming a newest period.
            &[4, 2, 0],
            // Two buckets ending at i64::MIN (zigzag u64::MAX).
            &[
                4, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01, 2, 0, 0, 0, 0,
            ],
            // Truncated.
            &[4, 12, 2, 2, 1, 7],
            // A huge bucket count in a small ring.
            &[4, 0, 0xff, 0xff, 0xff, 0xff, 0x0f, 0, 0],
        ];
        for bytes in bad {
            assert!(postcard::from_bytes::<Ring>(bytes).is_err(), "{bytes:?}");
        }
        // One bucket at i64::MIN is fine.
        let edge = [
            4, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01, 1, 0, 0,
        ];
        let ring: Ring = postcard::from_bytes(&edge).unwrap();
        assert_eq!(ring.newest(), Some(i64::MIN));
    }

    #[test]
    fn random_bytes_never_panic() {
        let mut history = SeriesHistory::new(&RingSizes::INTERFACE_DEFAULT);
        let mut state = 5;
        for hour in 0..100 {
            history.credit(&UTC, hour * 3600, next(&mut state) >> 40, 1);
        }
        let valid = postcard::to_allocvec(&history).unwrap();
        for _ in 0..20_000 {
            let mut bytes = valid.clone();
            for _ in 0..1 + next(&mut state) % 4 {
                let at = (next(&mut state) % bytes.len() as u64) as usize;
                bytes[at] = next(&mut state) as u8;
            }
            bytes.truncate(1 + (next(&mut state) % bytes.len() as u64) as usize);
            let _ = postcard::from_bytes::<SeriesHistory>(&bytes);
            let noise: Vec<u8> = (0..next(&mut state) % 64)
                .map(|_| next(&mut state) as u8)
                .collect();
            let _ = postcard::from_bytes::<Ring>(&noise);
        }
    }

    #[test]
    fn series_credits_every_kept_ring() {
        let mut history = SeriesHistory::new(&RingSizes::DEVICE_DEFAULT);
        assert!(history.ring(Granularity::FiveMinute).is_none());
        let t = 1_767_225_600; // 2026-01-01 00:00 UTC
        assert!(history.credit(&UTC, t, 1000, 10));
        assert!(history.credit(&UTC, t + 7200, 24, 0));
        let hour = history.ring(Granularity::Hour).unwrap();
        assert_eq!(hour.newest(), Some(t / 3600 + 2));
        assert_eq!(hour.get(t / 3600), Some(RxTx::new(1024, 0)));
        let day = history.ring(Granularity::Day).unwrap();
        assert_eq!(day.get(t / 86_400), Some(RxTx::new(1024, 10)));
        assert_eq!(
            history.ring(Granularity::Month).unwrap().newest(),
            Some(2026 * 12)
        );
        assert_eq!(
            history.ring(Granularity::Year).unwrap().newest(),
            Some(2026)
        );

        // Four days back: too old for the hour ring, still credited to the
        // day, month and year rings.
        assert!(!history.credit(&UTC, t - 4 * 86_400, 2048, 0));
        assert_eq!(
            history.ring(Granularity::Day).unwrap().get(t / 86_400 - 4),
            Some(RxTx::new(2048, 0))
        );
        assert_eq!(
            history.ring(Granularity::Year).unwrap().get(2025),
            Some(RxTx::new(2048, 0))
        );
    }

    #[test]
    fn series_resize_adds_and_removes_rings() {
        let mut history = SeriesHistory::new(&RingSizes::DEVICE_DEFAULT);
        for hour in 0..100 {
            history.credit(&UTC, hour * 3600, 1024, 0);
        }
        history.resize(&RingSizes::INTERFACE_DEFAULT);
        assert_eq!(
            history.ring(Granularity::FiveMinute).map(Ring::newest),
            Some(None)
        );
        assert_eq!(history.ring(Granularity::Hour).unwrap().capacity(), 168);
        assert_eq!(
            history.ring(Granularity::Hour).unwrap().buckets().count(),
            72
        );
        let smaller = RingSizes {
            five_minute: 0,
            hour: 24,
            day: 2,
            month: 0,
            year: 10,
        };
        history.resize(&smaller);
        assert!(history.ring(Granularity::FiveMinute).is_none());
        assert!(history.ring(Granularity::Month).is_none());
        let hour = history.ring(Granularity::Hour).unwrap();
        assert_eq!(hour.buckets().count(), 24);
        assert_eq!(hour.newest(), Some(99));
        assert_eq!(history.ring(Granularity::Day).unwrap().buckets().count(), 2);
        let bytes = postcard::to_allocvec(&history).unwrap();
        assert_eq!(
            postcard::from_bytes::<SeriesHistory>(&bytes).unwrap(),
            history
        );
    }

    /// Ten and a half years of a device's traffic, an hourly credit with
    /// ±50% variation (tx a tenth of rx), and in the last three days one
    /// every five minutes.
    fn filled(sizes: &RingSizes, bytes_per_day: u64, seed: u64) -> SeriesHistory {
        let mut history = SeriesHistory::new(sizes);
        let mut state = seed;
        let start = 1_451_606_400; // 2016-01-01
        let end = 1_781_481_600; // 2026-06-15
        let per_hour = bytes_per_day / 24;
        let mut t = start;
        while t < end {
            let step = if end - t <= 3 * 86_400 { 300 } else { 3600 };
            let share = per_hour * step as u64 / 3600;
            let rx = share / 2 + next(&mut state) % share.max(1);
            let tx = share / 20 + next(&mut state) % (share / 10).max(1);
            assert!(history.credit(&UTC, t, rx, tx));
            t += step;
        }
        history
    }

    #[test]
    fn encoded_size_of_a_full_device_history() {
        let device = filled(&RingSizes::DEVICE_DEFAULT, 100_000_000, 1);
        for g in Granularity::ALL {
            let expected = RingSizes::DEVICE_DEFAULT.get(g) as usize;
            let held = device.ring(g).map_or(0, |ring| ring.buckets().count());
            assert_eq!(held, expected, "{g:?} is full");
        }
        let month = device.ring(Granularity::Month).unwrap();
        let (_, RxTx { rx, .. }) = month.buckets().next().unwrap();
        assert!((2_500_000_000..3_500_000_000).contains(&rx), "{rx}");
        let size = postcard::to_allocvec(&device).unwrap().len();
        println!("full device history (DEVICE_DEFAULT), 100 MB/day: {size} bytes");
        assert!(size <= 1000, "{size} bytes");

        let busy = filled(&RingSizes::DEVICE_DEFAULT, 1_000_000_000, 2);
        let size = postcard::to_allocvec(&busy).unwrap().len();
        println!("full device history (DEVICE_DEFAULT), 1 GB/day: {size} bytes");
        assert!(size <= 1200, "{size} bytes");

        let interface = filled(&RingSizes::INTERFACE_DEFAULT, 10_000_000_000, 3);
        let size = postcard::to_allocvec(&interface).unwrap().len();
        println!("full interface history (INTERFACE_DEFAULT), 10 GB/day: {size} bytes");
        let decoded: SeriesHistory =
            postcard::from_bytes(&postcard::to_allocvec(&interface).unwrap()).unwrap();
        assert_eq!(decoded, interface);
    }
}
