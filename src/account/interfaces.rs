//! Per-interface totals that outlive the kernel's view of interfaces.
//!
//! People think of "wan" or "br-lan", not of ifindex 7, while netifd deletes,
//! re-creates and renames interfaces and the router reboots, each time starting
//! the kernel's counters over. So totals follow the name, and every way a
//! counter can start over is detected here and bridged.
//!
//! A re-created interface (same name, new ifindex) continues its totals from
//! a restarted counter; a renamed one (same ifindex, new name) carries them
//! to the new name; a new boot id restarts every counter; an absent
//! interface keeps its totals (`present = false`); at most
//! [`MAX_INTERFACES`] records, absent ones evicted first. A drop whose wrap
//! fits 10 Gbit/s over the interval is a wrap, else a reset. The events
//! returned are for the daemon to log.

/// Interfaces tracked at most; absent ones are evicted first.
pub const MAX_INTERFACES: usize = 256;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde::{Deserialize, Serialize};

use super::counter::{MonotonicCounter, Observation};
use crate::account::counter::CounterWidth;
use crate::clock::Moment;

/// 10 Gbit/s: above any router port, so genuine wraps are not taken for resets.
pub const DEFAULT_MAX_BYTES_PER_SEC: u64 = 1_250_000_000;

/// The smallest Ethernet frame turns a byte-rate bound into a packet-rate bound.
const MIN_FRAME_BYTES: u64 = 64;

/// The kernel's counters of one interface as read at one moment.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LinkCounters {
    pub rx_bytes: u64,
    pub tx_bytes: u64,
    pub rx_packets: u64,
    pub tx_packets: u64,
    pub rx_errors: u64,
    pub tx_errors: u64,
    pub rx_dropped: u64,
    pub tx_dropped: u64,
}

/// One interface as seen in one link dump.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LinkSample {
    /// The kernel's interface index: stays with the interface across renames,
    /// changes when an interface is deleted and created again.
    pub ifindex: u32,
    pub name: String,
    /// 64 when the kernel gave IFLA_STATS64, 32 for the old IFLA_STATS.
    pub width: CounterWidth,
    /// Link-layer header bytes each packet's count includes (14 on
    /// Ethernet-like links, 0 on PPP, WireGuard, tunnels): IP bytes are
    /// bytes − this × packets.
    pub header_bytes: u8,
    /// The bridge this interface is a port of (its ifindex).
    pub master: Option<u32>,
    pub counters: LinkCounters,
}

/// Everything counted under one interface name.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct InterfaceTotals {
    pub name: String,
    pub ifindex: u32,
    pub present: bool,
    pub rx_bytes: MonotonicCounter,
    pub tx_bytes: MonotonicCounter,
    pub rx_packets: MonotonicCounter,
    pub tx_packets: MonotonicCounter,
    pub rx_errors: MonotonicCounter,
    pub tx_errors: MonotonicCounter,
    pub rx_dropped: MonotonicCounter,
    pub tx_dropped: MonotonicCounter,
    /// Bytes per second over the last interval.
    pub rx_rate: u64,
    pub tx_rate: u64,
    /// Unix seconds.
    pub first_seen: u64,
    pub last_seen: u64,
    /// Monotonic time of the last reading, which a returning interface's
    /// interval starts from.
    read_ms: Option<u64>,
    /// The last reading predates a reboot: its raw values and ifindex mean nothing now.
    #[serde(default)]
    stale_boot: bool,
}

/// What an ingest noticed, for the caller to log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum InterfaceEvent {
    /// A name absent from the previous dump, new or back with its counters intact.
    Appeared {
        name: String,
        ifindex: u32,
    },
    Renamed {
        from: String,
        to: String,
        ifindex: u32,
    },
    /// The name came back with counters started over (new ifindex, or a reboot while absent).
    Recreated {
        name: String,
        old_ifindex: u32,
        new_ifindex: u32,
    },
    Vanished {
        name: String,
    },
    Wrapped {
        name: String,
        counter: &'static str,
    },
    /// A counter fell for no known reason and is assumed to have restarted.
    Reset {
        name: String,
        counter: &'static str,
    },
    BootChanged,
    /// This record was dropped to stay within the limit (or, for a newcomer, never kept).
    Evicted {
        name: String,
    },
}

/// One line for the log.
impl fmt::Display for InterfaceEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Appeared { name, ifindex } => write!(f, "{name} appeared (ifindex {ifindex})"),
            Self::Renamed { from, to, ifindex } => {
                write!(f, "{from} renamed to {to} (ifindex {ifindex})")
            }
            Self::Recreated {
                name,
                old_ifindex,
                new_ifindex,
            } => {
                write!(
                    f,
                    "{name} re-created (ifindex {old_ifindex} -> {new_ifindex})"
                )
            }
            Self::Vanished { name } => write!(f, "{name} vanished"),
            Self::Wrapped { name, counter } => write!(f, "{name} {counter} wrapped"),
            Self::Reset { name, counter } => write!(f, "{name} {counter} reset"),
            Self::BootChanged => write!(f, "kernel boot id changed: all counters restarted"),
            Self::Evicted { name } => write!(f, "{name} evicted: interface limit reached"),
        }
    }
}

/// Totals for every interface name seen, bounded for a router's memory.
/// Serializable whole (records, boot id, settings) so a restarted daemon
/// carries on within the same boot without recounting.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct InterfaceAccounts {
    records: BTreeMap<String, InterfaceTotals>,
    boot_id: Option<String>,
    limit: usize,
    max_bytes_per_sec: u64,
}

impl InterfaceAccounts {
    /// `limit` bounds the number of names tracked, e.g. 256.
    pub fn new(limit: usize) -> Self {
        Self {
            records: BTreeMap::new(),
            boot_id: None,
            limit,
            max_bytes_per_sec: DEFAULT_MAX_BYTES_PER_SEC,
        }
    }

    /// The fastest believable traffic: a lower bound makes 32-bit wraps on
    /// slow links distinguishable from resets over longer intervals.
    pub fn with_max_bytes_per_sec(mut self, max_bytes_per_sec: u64) -> Self {
        self.max_bytes_per_sec = max_bytes_per_sec;
        self
    }

    /// One link dump. `boot_id` is /proc/sys/kernel/random/boot_id as read by
    /// the caller; an empty one (unreadable) is ignored rather than taken for a reboot.
    pub fn ingest(
        &mut self,
        now: Moment,
        boot_id: &str,
        samples: &[LinkSample],
    ) -> Vec<InterfaceEvent> {
        let mut events = Vec::new();
        let boot_changed = self.note_boot(boot_id);
        if boot_changed {
            events.push(InterfaceEvent::BootChanged);
        }
        let in_dump: BTreeSet<&str> = samples.iter().map(|s| s.name.as_str()).collect();
        let mut handled = BTreeSet::new();
        let mut newcomers = Vec::new();
        for sample in samples {
            if !handled.insert(sample.name.as_str()) {
                continue; // a name twice in one dump: the first is as good as any
            }
            // Ifindexes are reused after a reboot, so they identify nothing across one.
            let renamed_from = (!boot_changed)
                .then(|| self.rename_source(sample, &in_dump))
                .flatten();
            if let Some(from) = renamed_from {
                self.rename(&from, sample, now, &mut events);
            } else if self.records.contains_key(&sample.name) {
                self.refresh(sample, now, boot_changed, &mut events);
            } else {
                newcomers.push(sample);
            }
        }
        for record in self.records.values_mut() {
            if in_dump.contains(record.name.as_str()) {
                continue;
            }
            if record.present {
                record.present = false;
                record.rx_rate = 0;
                record.tx_rate = 0;
                events.push(InterfaceEvent::Vanished {
                    name: record.name.clone(),
                });
            }
            record.stale_boot |= boot_changed;
        }
        // Last, so that eviction only ever picks records this dump did not renew.
        for sample in newcomers {
            self.admit(sample, now, &mut events);
        }
        events
    }

    /// Records read back from a journal: each replaces the record of its
    /// name, readings included, so counting continues from that moment.
    pub fn restore(&mut self, boot_id: Option<String>, records: Vec<InterfaceTotals>) {
        if boot_id.is_some() {
            self.boot_id = boot_id;
        }
        for record in records {
            self.records.insert(record.name.clone(), record);
        }
    }

    /// The kernel boot the raw readings belong to.
    pub fn boot_id(&self) -> Option<&str> {
        self.boot_id.as_deref()
    }

    pub fn get(&self, name: &str) -> Option<&InterfaceTotals> {
        self.records.get(name)
    }

    /// Ordered by name, so output and storage are stable.
    pub fn iter(&self) -> impl Iterator<Item = &InterfaceTotals> {
        self.records.values()
    }

    fn note_boot(&mut self, boot_id: &str) -> bool {
        let boot_id = boot_id.trim();
        if boot_id.is_empty() || self.boot_id.as_deref() == Some(boot_id) {
            return false;
        }
        let changed = self.boot_id.is_some();
        self.boot_id = Some(boot_id.to_owned());
        changed
    }

    /// The name `sample`'s ifindex was last seen under, if that interface is
    /// gone from this dump (otherwise both exist and nothing was renamed).
    /// Relies on the kernel handing out ifindexes cyclically within a boot.
    fn rename_source(&self, sample: &LinkSample, in_dump: &BTreeSet<&str>) -> Option<String> {
        let continues = |r: &InterfaceTotals| r.ifindex == sample.ifindex && !r.stale_boot;
        if self.records.get(&sample.name).is_some_and(continues) {
            return None;
        }
        self.records
            .values()
            .filter(|r| continues(r) && r.name != sample.name)
            .filter(|r| !in_dump.contains(r.name.as_str()))
            .max_by_key(|r| r.last_seen)
            .map(|r| r.name.clone())
    }

    fn rename(
        &mut self,
        from: &str,
        sample: &LinkSample,
        now: Moment,
        events: &mut Vec<InterfaceEvent>,
    ) {
        let Some(mut moved) = self.records.remove(from) else {
            return;
        };
        events.push(InterfaceEvent::Renamed {
            from: moved.name.clone(),
            to: sample.name.clone(),
            ifindex: sample.ifindex,
        });
        moved.name.clone_from(&sample.name);
        let mut record = match self.records.remove(&sample.name) {
            Some(mut earlier) => {
                earlier.absorb(moved);
                earlier
            }
            None => moved,
        };
        record.observe(sample, now, false, self.max_bytes_per_sec, events);
        self.records.insert(sample.name.clone(), record);
    }

    fn refresh(
        &mut self,
        sample: &LinkSample,
        now: Moment,
        boot_changed: bool,
        events: &mut Vec<InterfaceEvent>,
    ) {
        let Some(record) = self.records.get_mut(&sample.name) else {
            return;
        };
        let new_ifindex = record.ifindex != sample.ifindex;
        let restarted = boot_changed || record.stale_boot || new_ifindex;
        // After a reboot every present interface is "recreated"; BootChanged says it once.
        if !record.present || (new_ifindex && !boot_changed) {
            events.push(if restarted {
                InterfaceEvent::Recreated {
                    name: sample.name.clone(),
                    old_ifindex: record.ifindex,
                    new_ifindex: sample.ifindex,
                }
            } else {
                InterfaceEvent::Appeared {
                    name: sample.name.clone(),
                    ifindex: sample.ifindex,
                }
            });
        }
        record.ifindex = sample.ifindex;
        record.observe(sample, now, restarted, self.max_bytes_per_sec, events);
    }

    fn admit(&mut self, sample: &LinkSample, now: Moment, events: &mut Vec<InterfaceEvent>) {
        while self.records.len() >= self.limit {
            let oldest_absent = self
                .records
                .values()
                .filter(|r| !r.present)
                .min_by_key(|r| r.last_seen)
                .map(|r| r.name.clone());
            let Some(name) = oldest_absent else {
                events.push(InterfaceEvent::Evicted {
                    name: sample.name.clone(),
                });
                return;
            };
            self.records.remove(&name);
            events.push(InterfaceEvent::Evicted { name });
        }
        let mut record = InterfaceTotals::new(sample, now);
        record.observe(sample, now, false, self.max_bytes_per_sec, events);
        events.push(InterfaceEvent::Appeared {
            name: sample.name.clone(),
            ifindex: sample.ifindex,
        });
        self.records.insert(sample.name.clone(), record);
    }
}

impl InterfaceTotals {
    fn new(sample: &LinkSample, now: Moment) -> Self {
        Self {
            name: sample.name.clone(),
            ifindex: sample.ifindex,
            first_seen: now.unix_secs,
            last_seen: now.unix_secs,
            ..Self::default()
        }
    }

    /// Every counter with its name, for code that treats them alike (storage, export).
    pub fn counters(&self) -> [(&'static str, &MonotonicCounter); 8] {
        [
            ("rx_bytes", &self.rx_bytes),
            ("tx_bytes", &self.tx_bytes),
            ("rx_packets", &self.rx_packets),
            ("tx_packets", &self.tx_packets),
            ("rx_errors", &self.rx_errors),
            ("tx_errors", &self.tx_errors),
            ("rx_dropped", &self.rx_dropped),
            ("tx_dropped", &self.tx_dropped),
        ]
    }

    /// Same order as `counters`; the first two count bytes, the rest packets.
    fn counters_mut(&mut self) -> [(&'static str, &mut MonotonicCounter); 8] {
        [
            ("rx_bytes", &mut self.rx_bytes),
            ("tx_bytes", &mut self.tx_bytes),
            ("rx_packets", &mut self.rx_packets),
            ("tx_packets", &mut self.tx_packets),
            ("rx_errors", &mut self.rx_errors),
            ("tx_errors", &mut self.tx_errors),
            ("rx_dropped", &mut self.rx_dropped),
            ("tx_dropped", &mut self.tx_dropped),
        ]
    }

    /// Merge a renamed interface into this name's history, continuing from its readings.
    fn absorb(&mut self, other: InterfaceTotals) {
        for ((_, mine), (_, theirs)) in self.counters_mut().into_iter().zip(other.counters()) {
            mine.absorb(*theirs);
        }
        self.ifindex = other.ifindex;
        self.first_seen = self.first_seen.min(other.first_seen);
        self.read_ms = other.read_ms;
        self.stale_boot = other.stale_boot;
    }

    fn observe(
        &mut self,
        sample: &LinkSample,
        now: Moment,
        restarted: bool,
        max_bytes_per_sec: u64,
        events: &mut Vec<InterfaceEvent>,
    ) {
        let elapsed_ms = self
            .read_ms
            .and_then(|then| now.monotonic_ms.checked_sub(then));
        let byte_bound = plausible(max_bytes_per_sec, elapsed_ms);
        let packet_bound = plausible(max_bytes_per_sec / MIN_FRAME_BYTES, elapsed_ms);
        let raw = raw_values(&sample.counters);
        let mut counters = self.counters_mut();
        let seen: [Observation; 8] = std::array::from_fn(|i| {
            let (label, counter) = &mut counters[i];
            let bound = if i < 2 { byte_bound } else { packet_bound };
            let seen = counter.observe(raw[i], sample.width, restarted, bound);
            let name = sample.name.clone();
            match seen {
                Observation::Wrapped(_) => events.push(InterfaceEvent::Wrapped {
                    name,
                    counter: label,
                }),
                Observation::Reset(_) if !restarted => events.push(InterfaceEvent::Reset {
                    name,
                    counter: label,
                }),
                _ => {}
            }
            seen
        });
        self.rx_rate = rate(seen[0], elapsed_ms);
        self.tx_rate = rate(seen[1], elapsed_ms);
        self.present = true;
        self.stale_boot = false;
        self.last_seen = now.unix_secs;
        self.read_ms = Some(now.monotonic_ms);
    }
}

fn raw_values(c: &LinkCounters) -> [u64; 8] {
    [
        c.rx_bytes,
        c.tx_bytes,
        c.rx_packets,
        c.tx_packets,
        c.rx_errors,
        c.tx_errors,
        c.rx_dropped,
        c.tx_dropped,
    ]
}

/// With no known interval nothing is plausible, so any decrease is a reset.
fn plausible(per_sec: u64, elapsed_ms: Option<u64>) -> u64 {
    elapsed_ms.map_or(0, |ms| {
        u64::try_from(u128::from(per_sec) * u128::from(ms) / 1000).unwrap_or(u64::MAX)
    })
}

/// Only growth measured across a known interval is a rate; a reset's delta
/// covers an unknown stretch of time.
fn rate(seen: Observation, elapsed_ms: Option<u64>) -> u64 {
    match (seen, elapsed_ms) {
        (Observation::Delta(d) | Observation::Wrapped(d), Some(ms)) if ms > 0 => {
            u64::try_from(u128::from(d) * 1000 / u128::from(ms)).unwrap_or(u64::MAX)
        }
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::InterfaceEvent::{Evicted, Renamed};
    use super::*;

    impl crate::store::format::Payload for InterfaceAccounts {}
    use crate::account::CounterWidth;

    const BOOT: &str = "7a3c0e1e-0b4f-4a53-9f0e-2d8f9f2c1a01\n";
    const REBOOT: &str = "0d9e5a44-1c2b-4e7f-8a6d-3b1c2d4e5f60\n";

    fn at(ms: u64) -> Moment {
        let unix_secs = 1_700_000_000 + ms / 1000;
        Moment {
            monotonic_ms: ms,
            unix_secs,
        }
    }

    fn link(name: &str, ifindex: u32, rx: u64, tx: u64) -> LinkSample {
        let (name, width) = (name.to_owned(), CounterWidth::Bits64);
        let counters = LinkCounters {
            rx_bytes: rx,
            tx_bytes: tx,
            ..LinkCounters::default()
        };
        LinkSample {
            header_bytes: 14,
            ifindex,
            name,
            width,
            master: None,
            counters,
        }
    }

    /// Ingest, returning the events as log lines.
    fn feed(a: &mut InterfaceAccounts, ms: u64, boot: &str, dump: &[LinkSample]) -> Vec<String> {
        a.ingest(at(ms), boot, dump)
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    /// rx and tx byte totals, rx and tx rates.
    fn bytes(a: &InterfaceAccounts, name: &str) -> [u64; 4] {
        let t = a.get(name).expect("tracked");
        [t.rx_bytes.total(), t.tx_bytes.total(), t.rx_rate, t.tx_rate]
    }

    #[test]
    fn a_new_interface_counts_what_the_kernel_counted_before_it_was_seen() {
        let mut a = InterfaceAccounts::new(8);
        let events = feed(&mut a, 5_000, BOOT, &[link("wan", 3, 1_000, 200)]);
        assert_eq!(events, ["wan appeared (ifindex 3)"]);
        assert_eq!(bytes(&a, "wan"), [1_000, 200, 0, 0]);
        let wan = a.get("wan").unwrap();
        assert_eq!(
            (wan.present, wan.first_seen, wan.last_seen),
            (true, 1_700_000_005, 1_700_000_005)
        );
    }

    #[test]
    fn rates_are_bytes_per_second_over_the_interval() {
        let mut a = InterfaceAccounts::new(8);
        feed(&mut a, 0, BOOT, &[link("wan", 3, 1_000, 0)]);
        assert!(feed(&mut a, 2_000, BOOT, &[link("wan", 3, 5_000, 300)]).is_empty());
        assert_eq!(bytes(&a, "wan"), [5_000, 300, 2_000, 150]);
    }

    #[test]
    fn no_rate_is_claimed_when_no_time_passed() {
        let mut a = InterfaceAccounts::new(8);
        feed(&mut a, 1_000, BOOT, &[link("wan", 3, 1_000, 0)]);
        feed(&mut a, 1_000, BOOT, &[link("wan", 3, 9_000, 0)]);
        assert_eq!(bytes(&a, "wan"), [9_000, 0, 0, 0]);
    }

    #[test]
    fn a_32_bit_wrap_within_the_plausible_rate_continues_the_total() {
        let mut a = InterfaceAccounts::new(8);
        let mut dump = [link("lan", 2, u64::from(u32::MAX) - 999, 0)];
        dump[0].width = CounterWidth::Bits32;
        feed(&mut a, 0, BOOT, &dump);
        dump[0].counters.rx_bytes = 1_000;
        assert_eq!(feed(&mut a, 1_000, BOOT, &dump), ["lan rx_bytes wrapped"]);
        assert_eq!(bytes(&a, "lan"), [(1 << 32) + 1_000, 0, 2_000, 0]);
    }

    #[test]
    fn a_fall_faster_than_the_maximum_rate_could_explain_is_a_reset() {
        let mut a = InterfaceAccounts::new(8).with_max_bytes_per_sec(1_000);
        feed(&mut a, 0, BOOT, &[link("wan", 3, 50_000, 0)]);
        let events = feed(&mut a, 1_000, BOOT, &[link("wan", 3, 700, 0)]);
        assert_eq!(events, ["wan rx_bytes reset"]);
        assert_eq!(bytes(&a, "wan"), [50_700, 0, 0, 0]);
    }

    #[test]
    fn packets_may_wrap_no_faster_than_minimum_size_frames_allow() {
        let mut a = InterfaceAccounts::new(8).with_max_bytes_per_sec(64_000);
        let mut dump = [link("lan", 2, 0, 0)];
        dump[0].width = CounterWidth::Bits32;
        dump[0].counters.rx_packets = u64::from(u32::MAX) - 499;
        dump[0].counters.tx_packets = u64::from(u32::MAX) - 1_499;
        feed(&mut a, 0, BOOT, &dump);
        (dump[0].counters.rx_packets, dump[0].counters.tx_packets) = (500, 500);
        let events = feed(&mut a, 1_000, BOOT, &dump);
        assert_eq!(events, ["lan rx_packets wrapped", "lan tx_packets reset"]);
    }

    #[test]
    fn an_interface_recreated_under_the_same_name_continues_its_totals() {
        let mut a = InterfaceAccounts::new(8);
        feed(&mut a, 0, BOOT, &[link("wg0", 9, 8_000, 4_000)]);
        let events = feed(&mut a, 1_000, BOOT, &[link("wg0", 12, 9_000, 100)]);
        assert_eq!(events, ["wg0 re-created (ifindex 9 -> 12)"]);
        assert_eq!(bytes(&a, "wg0"), [17_000, 4_100, 0, 0]);
        assert_eq!(a.get("wg0").unwrap().ifindex, 12);
    }

    #[test]
    fn a_renamed_interface_takes_its_totals_to_the_new_name() {
        let mut a = InterfaceAccounts::new(8);
        feed(&mut a, 0, BOOT, &[link("eth1", 4, 1_000, 10)]);
        let events = feed(&mut a, 1_000, BOOT, &[link("wan", 4, 1_500, 20)]);
        assert_eq!(events, ["eth1 renamed to wan (ifindex 4)"]);
        assert!(a.get("eth1").is_none());
        assert_eq!(bytes(&a, "wan"), [1_500, 20, 500, 10]);
    }

    #[test]
    fn a_rename_onto_a_stale_name_adds_both_totals_and_keeps_the_earlier_first_seen() {
        let mut a = InterfaceAccounts::new(8);
        feed(&mut a, 0, BOOT, &[link("wan", 3, 700, 70)]);
        feed(&mut a, 10_000, BOOT, &[link("eth1", 4, 1_000, 10)]);
        let events = feed(&mut a, 11_000, BOOT, &[link("wan", 4, 1_200, 30)]);
        assert_eq!(events, ["eth1 renamed to wan (ifindex 4)"]);
        assert_eq!(bytes(&a, "wan"), [700 + 1_200, 70 + 30, 200, 20]);
        let wan = a.get("wan").unwrap();
        assert_eq!(
            (wan.first_seen, wan.ifindex, a.iter().count()),
            (1_700_000_000, 4, 1)
        );
    }

    #[test]
    fn no_rename_is_assumed_while_the_old_name_is_still_in_the_dump() {
        let mut a = InterfaceAccounts::new(8);
        feed(&mut a, 0, BOOT, &[link("eth1", 4, 1_000, 0)]);
        let events = feed(
            &mut a,
            1_000,
            BOOT,
            &[link("wan", 4, 1_100, 0), link("eth1", 5, 10, 0)],
        );
        assert_eq!(
            events,
            [
                "eth1 re-created (ifindex 4 -> 5)",
                "wan appeared (ifindex 4)"
            ]
        );
        assert_eq!(bytes(&a, "eth1"), [1_010, 0, 0, 0]);
    }

    #[test]
    fn a_changed_boot_id_restarts_every_counter_once() {
        let mut a = InterfaceAccounts::new(8);
        let first = feed(
            &mut a,
            0,
            BOOT,
            &[link("wan", 3, 5_000, 0), link("lan", 2, 0, 900)],
        );
        assert_eq!(first.len(), 2, "the first boot id is only recorded");
        let dump = [link("wan", 2, 6_000, 0), link("lan", 3, 0, 100)];
        let events = feed(&mut a, 1_000, REBOOT, &dump);
        assert_eq!(events, ["kernel boot id changed: all counters restarted"]);
        assert_eq!(bytes(&a, "wan"), [11_000, 0, 0, 0]);
        assert_eq!(bytes(&a, "lan"), [0, 1_000, 0, 0]);
        assert!(feed(&mut a, 2_000, REBOOT, &dump).is_empty());
        assert_eq!(bytes(&a, "wan")[0], 11_000);
    }

    #[test]
    fn an_unreadable_boot_id_is_not_taken_for_a_reboot() {
        let mut a = InterfaceAccounts::new(8);
        feed(&mut a, 0, BOOT, &[link("wan", 3, 5_000, 0)]);
        assert!(feed(&mut a, 1_000, "", &[link("wan", 3, 6_000, 0)]).is_empty());
        assert!(feed(&mut a, 2_000, BOOT, &[link("wan", 3, 7_000, 0)]).is_empty());
        assert_eq!(bytes(&a, "wan")[0], 7_000);
    }

    #[test]
    fn a_missing_interface_keeps_its_totals_and_vanishes_once() {
        let mut a = InterfaceAccounts::new(8);
        feed(&mut a, 0, BOOT, &[link("wan", 3, 0, 0)]);
        feed(&mut a, 1_000, BOOT, &[link("wan", 3, 4_000, 0)]);
        assert_eq!(feed(&mut a, 2_000, BOOT, &[]), ["wan vanished"]);
        assert!(feed(&mut a, 3_000, BOOT, &[]).is_empty());
        assert_eq!(bytes(&a, "wan"), [4_000, 0, 0, 0]);
        let wan = a.get("wan").unwrap();
        assert_eq!((wan.present, wan.last_seen), (false, 1_700_000_001));
    }

    #[test]
    fn an_interface_back_with_the_same_ifindex_continues_by_delta() {
        let mut a = InterfaceAccounts::new(8);
        feed(&mut a, 0, BOOT, &[link("wan", 3, 1_000, 0)]);
        feed(&mut a, 1_000, BOOT, &[]);
        let events = feed(&mut a, 4_000, BOOT, &[link("wan", 3, 7_000, 0)]);
        assert_eq!(events, ["wan appeared (ifindex 3)"]);
        assert_eq!(
            bytes(&a, "wan"),
            [7_000, 0, 1_500, 0],
            "rate over its own 4 s"
        );
    }

    #[test]
    fn an_interface_absent_across_a_reboot_restarts_when_it_returns() {
        let mut a = InterfaceAccounts::new(8);
        feed(
            &mut a,
            0,
            BOOT,
            &[link("wan", 3, 1_000, 0), link("lan", 2, 0, 0)],
        );
        feed(&mut a, 1_000, REBOOT, &[link("lan", 3, 0, 0)]);
        let events = feed(
            &mut a,
            2_000,
            REBOOT,
            &[link("lan", 3, 0, 0), link("wan", 3, 5_000, 0)],
        );
        assert_eq!(events, ["wan re-created (ifindex 3 -> 3)"]);
        assert_eq!(bytes(&a, "wan"), [6_000, 0, 0, 0]);
    }

    #[test]
    fn the_absent_interface_seen_longest_ago_is_evicted_at_the_limit() {
        let mut a = InterfaceAccounts::new(2);
        feed(&mut a, 0, BOOT, &[link("a", 1, 0, 0), link("b", 2, 0, 0)]);
        feed(&mut a, 1_000, BOOT, &[link("b", 2, 0, 0)]);
        let events = feed(&mut a, 2_000, BOOT, &[link("c", 3, 0, 0)]);
        assert_eq!(
            events,
            [
                "b vanished",
                "a evicted: interface limit reached",
                "c appeared (ifindex 3)"
            ]
        );
        let names: Vec<_> = a.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(names, ["b", "c"]);
    }

    #[test]
    fn a_newcomer_is_turned_away_when_every_tracked_interface_is_present() {
        let mut a = InterfaceAccounts::new(2);
        let dump = [link("a", 1, 0, 0), link("b", 2, 0, 0), link("c", 3, 0, 0)];
        let events = feed(&mut a, 0, BOOT, &dump);
        assert_eq!(events[2], "c evicted: interface limit reached");
        assert!(a.get("c").is_none());
        assert_eq!(a.iter().count(), 2);
    }

    #[test]
    fn iteration_is_ordered_by_name() {
        let mut a = InterfaceAccounts::new(8);
        feed(
            &mut a,
            0,
            BOOT,
            &[
                link("wan", 3, 0, 0),
                link("br-lan", 5, 0, 0),
                link("lo", 1, 0, 0),
            ],
        );
        let names: Vec<_> = a.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(names, ["br-lan", "lo", "wan"]);
    }

    #[test]
    fn accounts_survive_being_stored_and_loaded() {
        let mut a = InterfaceAccounts::new(8);
        feed(&mut a, 0, BOOT, &[link("wan", 3, 1_000, 0)]);
        let stored = serde_json::to_string(&a).unwrap();
        let mut loaded: InterfaceAccounts = serde_json::from_str(&stored).unwrap();
        assert!(feed(&mut loaded, 1_000, BOOT, &[link("wan", 3, 3_000, 0)]).is_empty());
        assert_eq!(bytes(&loaded, "wan"), [3_000, 0, 2_000, 0]);
    }

    #[test]
    fn accounts_survive_a_state_file_round_trip() {
        use crate::store::format::{FileKind, decode, encode};
        let mut a = InterfaceAccounts::new(8);
        feed(&mut a, 0, BOOT, &[link("wan", 3, 1_000, 0)]);
        let file = encode(FileKind::Snapshot, 1, 0, &a).unwrap();
        let mut loaded: InterfaceAccounts = decode(&file, FileKind::Snapshot).unwrap().payload;
        assert!(feed(&mut loaded, 1_000, BOOT, &[link("wan", 3, 3_000, 0)]).is_empty());
        assert_eq!(bytes(&loaded, "wan"), [3_000, 0, 2_000, 0]);
    }

    /// Deterministic pseudo-random numbers without a dependency.
    struct XorShift(u64);

    impl XorShift {
        fn below(&mut self, n: usize) -> usize {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            (self.0 % n as u64) as usize
        }
    }

    /// A kernel that renames, deletes, re-creates, reboots and resets at random.
    struct FakeKernel {
        links: Vec<LinkSample>,
        boot: u32,
        last_ifindex: u32,
    }

    impl FakeKernel {
        fn step(&mut self, rng: &mut XorShift, names: &[String]) {
            let free: Vec<&String> = names
                .iter()
                .filter(|n| self.links.iter().all(|l| &l.name != *n))
                .collect();
            let free = free
                .get(rng.below(free.len().max(1)))
                .map(|n| n.to_string());
            let i = rng.below(self.links.len().max(1));
            let live = i < self.links.len();
            match (rng.below(100), free) {
                (0..2, _) => {
                    (self.boot, self.last_ifindex) = (self.boot + 1, 0);
                    self.links.retain(|_| rng.below(4) > 0);
                    (0..self.links.len()).for_each(|i| self.recreate(i));
                }
                (2..8, _) if live => drop(self.links.remove(i)),
                (8..16, Some(name)) => {
                    let mut l = link(&name, 0, 0, 0);
                    l.width = [CounterWidth::Bits32, CounterWidth::Bits64][rng.below(2)];
                    self.links.push(l);
                    self.recreate(self.links.len() - 1);
                }
                (16..24, Some(name)) if live => self.links[i].name = name,
                (24..28, _) if live => self.recreate(i),
                (28..31, _) if live => self.links[i].counters.tx_bytes = rng.below(1_000) as u64,
                _ => {}
            }
            for l in &mut self.links {
                let c = &mut l.counters;
                for raw in [
                    &mut c.rx_bytes,
                    &mut c.tx_bytes,
                    &mut c.rx_packets,
                    &mut c.rx_dropped,
                ] {
                    *raw = raw.wrapping_add(rng.below(1 << 31) as u64);
                    if l.width == CounterWidth::Bits32 {
                        *raw &= u64::from(u32::MAX);
                    }
                }
            }
        }

        /// A fresh ifindex (never reused within a boot) and counters from zero.
        fn recreate(&mut self, i: usize) {
            self.last_ifindex += 1;
            (self.links[i].ifindex, self.links[i].counters) =
                (self.last_ifindex, LinkCounters::default());
        }
    }

    #[test]
    fn totals_never_go_backwards_whatever_the_kernel_does() {
        let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
        let names: Vec<String> = (0..12).map(|i| format!("if{i}")).collect();
        let mut kernel = FakeKernel {
            links: Vec::new(),
            boot: 0,
            last_ifindex: 0,
        };
        let mut a = InterfaceAccounts::new(8).with_max_bytes_per_sec(1_000_000_000);
        let (mut ms, mut kinds, mut before) = (0, BTreeSet::new(), BTreeMap::<_, [u64; 8]>::new());
        for _ in 0..20_000 {
            kernel.step(&mut rng, &names);
            ms += rng.below(4_000) as u64;
            let dump: Vec<LinkSample> = kernel
                .links
                .iter()
                .filter(|_| rng.below(10) > 0)
                .cloned()
                .collect();
            let events = a.ingest(at(ms), &format!("boot-{}", kernel.boot), &dump);

            // Follow records through renames and evictions; each must end at or above its floor.
            let mut floor = before;
            for event in &events {
                kinds.insert(
                    format!("{event:?}")
                        .split([' ', '{'])
                        .next()
                        .unwrap()
                        .to_owned(),
                );
                match event {
                    Renamed { from, to, .. } => {
                        let moved = floor.remove(from).expect("renamed from a tracked name");
                        let into: &mut [u64; 8] = floor.entry(to.clone()).or_default();
                        for (total, add) in into.iter_mut().zip(moved) {
                            *total = total.saturating_add(add);
                        }
                    }
                    Evicted { name } => drop(floor.remove(name)),
                    _ => {}
                }
            }
            let after: BTreeMap<String, [u64; 8]> = a
                .iter()
                .map(|t| (t.name.clone(), t.counters().map(|(_, c)| c.total())))
                .collect();
            assert!(after.len() <= 8);
            for (name, floor) in &floor {
                let now = after
                    .get(name)
                    .unwrap_or_else(|| panic!("{name} lost: {events:?}"));
                assert!(
                    now.iter().zip(floor).all(|(n, f)| n >= f),
                    "{name} went back: {events:?}"
                );
            }
            before = after;
        }
        for kind in
            "Appeared Renamed Recreated Vanished Wrapped Reset BootChanged Evicted".split(' ')
        {
            assert!(kinds.contains(kind), "never exercised {kind}");
        }
    }
}
