//! Per-device totals from the kernel's per-element counters.
//!
//! The kernel counts each (direction, MAC, IP) in an nftables set element
//! whose counter only grows while the element exists. Elements come and go
//! (netmeter prunes idle ones after reading them, the kernel expires them, a
//! firewall restart flushes them all) and return from zero, so every element
//! is followed from read to read and its growth credited to its MAC.
//!
//! Reads must be complete: an element missing from a read is taken to be gone
//! and, if it returns, to have started over. The caller must also bump the
//! generation whenever the table was (re)installed, a reboot included.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use super::counter::MonotonicCounter;
use crate::account::CounterWidth;
use crate::clock::Moment;
use crate::mac::Mac;
use crate::rxtx::RxTx;

/// Addresses kept per device: IPv6 privacy addresses rotate.
pub const MAX_IPS_PER_DEVICE: usize = 16;

/// Element states kept beyond 8 per device, for devices with many addresses.
const ELEMENT_STATE_SLACK: usize = 1024;

/// From the device's point of view.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Direction {
    /// Upload: counted as tx.
    Sent,
    /// Download: counted as rx.
    Received,
}

/// One set element as read from the kernel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DeviceSample {
    pub direction: Direction,
    pub mac: Mac,
    pub ip: IpAddr,
    pub bytes: u64,
    pub packets: u64,
}

/// The kernel's raw counters of traffic it could not attribute (its set was
/// full); they too start over with a new generation.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct UnattributedSample {
    pub tx_bytes: u64,
    pub tx_packets: u64,
    pub rx_bytes: u64,
    pub rx_packets: u64,
}

/// Monotonic totals of the unattributed counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnattributedTotals {
    pub tx_bytes: u64,
    pub tx_packets: u64,
    pub rx_bytes: u64,
    pub rx_packets: u64,
}

/// Everything counted for one MAC.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceTotals {
    pub mac: Mac,
    /// Addresses that carried its traffic, most recently first, at most
    /// `MAX_IPS_PER_DEVICE`.
    pub ips: Vec<IpAddr>,
    pub rx_bytes: u64,
    pub tx_bytes: u64,
    pub rx_packets: u64,
    pub tx_packets: u64,
    /// Bytes per second over the last interval.
    pub rx_rate: u64,
    pub tx_rate: u64,
    /// Unix seconds; for `other`, 0 until something was folded into it.
    pub first_seen: u64,
    /// Unix seconds: the last read in which a counter grew (or the first sight).
    pub last_seen: u64,
}

/// What an ingest noticed, for the caller to log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DeviceEvent {
    NewDevice {
        mac: Mac,
    },
    /// The first time this MAC's traffic was folded into `other`.
    Overflow {
        mac: Mac,
    },
    TableRestarted {
        generation: u64,
    },
    /// More elements than the state cap: the least recently changed states
    /// were dropped, so those elements will be counted again in full.
    ElementStateEvicted {
        count: usize,
    },
}

/// One line for the log.
impl fmt::Display for DeviceEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NewDevice { mac } => write!(f, "new device {mac}"),
            Self::Overflow { mac } => {
                write!(f, "{mac} counted under other: device limit reached")
            }
            Self::TableRestarted { generation } => write!(
                f,
                "device table reinstalled (generation {generation}): all counters restarted"
            ),
            Self::ElementStateEvicted { count } => write!(
                f,
                "{count} element states evicted: their traffic may be counted twice"
            ),
        }
    }
}

/// A set element's identity.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
struct ElementKey {
    direction: Direction,
    mac: Mac,
    ip: IpAddr,
}

impl ElementKey {
    fn of(sample: &DeviceSample) -> Self {
        Self {
            direction: sample.direction,
            mac: sample.mac,
            ip: sample.ip,
        }
    }
}

/// The last reading of one element.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct ElementState {
    bytes: MonotonicCounter,
    packets: MonotonicCounter,
    /// Monotonic time its counters last grew (or it was first seen).
    changed_ms: u64,
    /// The read that last carried it: elements a read lacks are gone.
    #[serde(skip)]
    seen: u64,
}

impl ElementState {
    fn new(now: Moment) -> Self {
        Self {
            bytes: MonotonicCounter::new(),
            packets: MonotonicCounter::new(),
            changed_ms: now.monotonic_ms,
            seen: 0,
        }
    }

    /// The growth (bytes, packets) since the last reading. With no plausible
    /// wrap, a fall is a reset: the element was re-created between reads.
    fn observe(&mut self, sample: &DeviceSample, now: Moment, restarted: bool) -> (u64, u64) {
        let width = CounterWidth::Bits64;
        let bytes = self.bytes.observe(sample.bytes, width, restarted, 0);
        let packets = self.packets.observe(sample.packets, width, restarted, 0);
        let grown = (bytes.delta(), packets.delta());
        // A time from before a reboot would keep the element from ever looking idle.
        if grown != (0, 0) || self.changed_ms > now.monotonic_ms {
            self.changed_ms = now.monotonic_ms;
        }
        grown
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
struct UnattributedCounters {
    tx_bytes: MonotonicCounter,
    tx_packets: MonotonicCounter,
    rx_bytes: MonotonicCounter,
    rx_packets: MonotonicCounter,
}

impl UnattributedCounters {
    fn observe(&mut self, raw: UnattributedSample, restarted: bool) {
        let width = CounterWidth::Bits64;
        self.tx_bytes.observe(raw.tx_bytes, width, restarted, 0);
        self.tx_packets.observe(raw.tx_packets, width, restarted, 0);
        self.rx_bytes.observe(raw.rx_bytes, width, restarted, 0);
        self.rx_packets.observe(raw.rx_packets, width, restarted, 0);
    }
}

/// Where an element's growth is credited.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
enum Owner {
    Device(Mac),
    Other,
}

/// Totals for every MAC seen, bounded for a router's memory. Serializable
/// whole, element states and generation included, so a restarted daemon
/// carries on by delta while the kernel table survives.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct DeviceAccounts {
    #[serde(with = "by_mac")]
    devices: BTreeMap<Mac, DeviceTotals>,
    other: DeviceTotals,
    /// Hashed, not ordered: every read touches every element, and this is
    /// half of a refresh's time at 10,000 devices.
    #[serde(with = "pairs")]
    elements: HashMap<ElementKey, ElementState>,
    /// Reads so far in this process, to stamp elements with.
    #[serde(skip)]
    reads: u64,
    /// MACs already reported as folded into `other`, with the monotonic time
    /// they last were; bounded like the element states.
    #[serde(with = "pairs")]
    overflowed: BTreeMap<Mac, u64>,
    unattributed: UnattributedCounters,
    generation: Option<u64>,
    read_ms: Option<u64>,
    max_devices: usize,
}

impl DeviceAccounts {
    /// `max_devices` bounds the device records kept, e.g. 256.
    pub fn new(max_devices: usize) -> Self {
        Self {
            devices: BTreeMap::new(),
            other: DeviceTotals::default(),
            elements: HashMap::new(),
            reads: 0,
            overflowed: BTreeMap::new(),
            unattributed: UnattributedCounters::default(),
            generation: None,
            read_ms: None,
            max_devices,
        }
    }

    /// One read of the kernel's sets. `generation` changes whenever the kernel
    /// table was (re)installed: every element then restarted from zero.
    /// `samples` must be the whole read: missing elements are taken to be gone.
    pub fn ingest(
        &mut self,
        now: Moment,
        generation: u64,
        samples: &[DeviceSample],
        unattributed: UnattributedSample,
    ) -> Vec<DeviceEvent> {
        let mut events = Vec::new();
        let restarted = self.generation.is_some_and(|g| g != generation);
        self.generation = Some(generation);
        if restarted {
            events.push(DeviceEvent::TableRestarted { generation });
        }
        let elapsed_ms = self
            .read_ms
            .and_then(|then| now.monotonic_ms.checked_sub(then));
        self.reads += 1;
        let stamp = self.reads;
        let mut interval: HashMap<Owner, RxTx<u64>> = HashMap::new();
        // A group MAC (multicast, broadcast) is never a device, whatever
        // reported it: netmeter's own rules skip them already.
        for sample in samples {
            if sample.mac.is_group() {
                continue;
            }
            let state = self
                .elements
                .entry(ElementKey::of(sample))
                .or_insert_with(|| ElementState::new(now));
            if state.seen == stamp {
                continue; // a key twice in one read: the first is as good as any
            }
            state.seen = stamp;
            let (bytes, packets) = state.observe(sample, now, restarted);
            let owner = self.owner(sample.mac, now, &mut events);
            let moved = interval.entry(owner).or_default();
            let moved = match sample.direction {
                Direction::Sent => &mut moved.tx,
                Direction::Received => &mut moved.rx,
            };
            *moved = moved.saturating_add(bytes);
            let totals = match owner {
                Owner::Device(mac) => self.devices.get_mut(&mac),
                Owner::Other => Some(&mut self.other),
            };
            if let Some(totals) = totals {
                totals.credit(sample, bytes, packets, now, owner != Owner::Other);
            }
        }
        // An element missing from the read is gone; its traffic is already counted.
        self.elements.retain(|_, state| state.seen == stamp);
        self.unattributed.observe(unattributed, restarted);
        for (mac, totals) in &mut self.devices {
            totals.set_rates(interval.get(&Owner::Device(*mac)), elapsed_ms);
        }
        self.other
            .set_rates(interval.get(&Owner::Other), elapsed_ms);
        self.trim_elements(&mut events);
        self.read_ms = Some(now.monotonic_ms);
        events
    }

    /// Elements whose counters have not grown for at least `idle_ms`, for
    /// netmeter to delete from the kernel once it has read them.
    pub fn idle_elements(&self, now: Moment, idle_ms: u64) -> Vec<(Direction, Mac, IpAddr)> {
        let mut idle: Vec<_> = self
            .elements
            .iter()
            .filter(|(_, state)| now.monotonic_ms.saturating_sub(state.changed_ms) >= idle_ms)
            .map(|(key, _)| (key.direction, key.mac, key.ip))
            .collect();
        idle.sort_unstable(); // the map is hashed; callers and logs get a stable order
        idle
    }

    /// The caller deleted these from the kernel: a later element with the same
    /// key starts from zero. Pass only elements actually deleted, or one still
    /// there will be counted again in full.
    pub fn forget_elements(&mut self, keys: &[(Direction, Mac, IpAddr)]) {
        for &(direction, mac, ip) in keys {
            self.elements.remove(&ElementKey { direction, mac, ip });
        }
    }

    /// Ordered by MAC, so output and storage are stable.
    pub fn devices(&self) -> impl Iterator<Item = &DeviceTotals> {
        self.devices.values()
    }

    pub fn get(&self, mac: &Mac) -> Option<&DeviceTotals> {
        self.devices.get(mac)
    }

    /// Traffic of devices beyond `max_devices`, folded together (mac all zero, ips empty).
    pub fn other(&self) -> &DeviceTotals {
        &self.other
    }

    pub fn unattributed(&self) -> UnattributedTotals {
        let u = &self.unattributed;
        UnattributedTotals {
            tx_bytes: u.tx_bytes.total(),
            tx_packets: u.tx_packets.total(),
            rx_bytes: u.rx_bytes.total(),
            rx_packets: u.rx_packets.total(),
        }
    }

    /// The table generation the element readings belong to.
    pub fn generation(&self) -> Option<u64> {
        self.generation
    }

    /// Totals read back from a journal (a MAC of all zeros is `other`). The
    /// kernel table is reinstalled after a restore, so element readings are
    /// dropped: the new table's elements count from zero.
    pub fn restore(
        &mut self,
        generation: Option<u64>,
        devices: Vec<DeviceTotals>,
        unattributed: UnattributedTotals,
    ) {
        for mut totals in devices {
            if totals.mac == Mac::OTHER {
                self.other = totals;
                continue;
            }
            if totals.ips.is_empty()
                && let Some(known) = self.devices.get(&totals.mac)
            {
                totals.ips.clone_from(&known.ips);
            }
            self.devices.insert(totals.mac, totals);
        }
        self.unattributed = UnattributedCounters {
            tx_bytes: MonotonicCounter::carried(unattributed.tx_bytes),
            tx_packets: MonotonicCounter::carried(unattributed.tx_packets),
            rx_bytes: MonotonicCounter::carried(unattributed.rx_bytes),
            rx_packets: MonotonicCounter::carried(unattributed.rx_packets),
        };
        self.elements.clear();
        self.generation = generation.max(self.generation);
    }

    /// Drops the records of group MACs (multicast, broadcast), which older
    /// versions took for devices; returns how many there were.
    /// (Their element states, if any, go at the next ingest, which skips them.)
    pub fn drop_group_macs(&mut self) -> usize {
        crate::mac::drop_group(&mut self.devices)
    }

    /// A config reload. Shrinking keeps every existing record; new MACs go to
    /// `other` until the count is below the limit again.
    pub fn set_max_devices(&mut self, n: usize) {
        self.max_devices = n;
    }

    /// Element states kept: beyond the kernel's set size in any sane setup.
    fn element_cap(&self) -> usize {
        self.max_devices
            .max(self.devices.len())
            .saturating_mul(8)
            .saturating_add(ELEMENT_STATE_SLACK)
    }

    /// The record `mac`'s growth goes to, created while there is room.
    fn owner(&mut self, mac: Mac, now: Moment, events: &mut Vec<DeviceEvent>) -> Owner {
        if self.devices.contains_key(&mac) {
            return Owner::Device(mac);
        }
        if self.devices.len() < self.max_devices {
            self.overflowed.remove(&mac);
            self.devices.insert(mac, DeviceTotals::new(mac, now));
            events.push(DeviceEvent::NewDevice { mac });
            return Owner::Device(mac);
        }
        if self.other.first_seen == 0 {
            (self.other.first_seen, self.other.last_seen) = (now.unix_secs, now.unix_secs);
        }
        if self.overflowed.insert(mac, now.monotonic_ms).is_none() {
            events.push(DeviceEvent::Overflow { mac });
            if self.overflowed.len() > self.element_cap() {
                // Forgetting a MAC only means reporting it again.
                let stalest = self.overflowed.iter().min_by_key(|&(_, &ms)| ms);
                if let Some((&stalest, _)) = stalest {
                    self.overflowed.remove(&stalest);
                }
            }
        }
        Owner::Other
    }

    /// Beyond the cap, drop the states that changed longest ago. Such an
    /// element, if still in the kernel, is counted in full once more when next
    /// read: the only way this module can count traffic twice.
    fn trim_elements(&mut self, events: &mut Vec<DeviceEvent>) {
        let excess = self.elements.len().saturating_sub(self.element_cap());
        if excess == 0 {
            return;
        }
        let mut by_age: Vec<(u64, ElementKey)> = self
            .elements
            .iter()
            .map(|(key, state)| (state.changed_ms, *key))
            .collect();
        by_age.sort_unstable();
        for (_, key) in &by_age[..excess] {
            self.elements.remove(key);
        }
        events.push(DeviceEvent::ElementStateEvicted { count: excess });
    }
}

impl DeviceTotals {
    fn new(mac: Mac, now: Moment) -> Self {
        Self {
            mac,
            first_seen: now.unix_secs,
            last_seen: now.unix_secs,
            ..Self::default()
        }
    }

    fn credit(
        &mut self,
        sample: &DeviceSample,
        bytes: u64,
        packets: u64,
        now: Moment,
        keeps_ips: bool,
    ) {
        let (total_bytes, total_packets) = match sample.direction {
            Direction::Sent => (&mut self.tx_bytes, &mut self.tx_packets),
            Direction::Received => (&mut self.rx_bytes, &mut self.rx_packets),
        };
        *total_bytes = total_bytes.saturating_add(bytes);
        *total_packets = total_packets.saturating_add(packets);
        let grew = bytes > 0 || packets > 0;
        if grew {
            self.last_seen = now.unix_secs;
        }
        // Ordered by activity: an address moves up when it carries traffic, so
        // the quiet ones at the bottom are the ones to go.
        if keeps_ips && grew {
            self.ips.retain(|ip| *ip != sample.ip);
            self.ips.insert(0, sample.ip);
            self.ips.truncate(MAX_IPS_PER_DEVICE);
        }
    }

    /// Any growth over a known, non-zero interval is a rate: elements are read
    /// every interval, so even a new one's whole counter grew within it.
    fn set_rates(&mut self, moved: Option<&RxTx<u64>>, elapsed_ms: Option<u64>) {
        let RxTx { rx, tx } = moved.copied().unwrap_or_default();
        let rate = |bytes: u64| match elapsed_ms {
            Some(ms) if ms > 0 => {
                u64::try_from(u128::from(bytes) * 1000 / u128::from(ms)).unwrap_or(u64::MAX)
            }
            _ => 0,
        };
        (self.tx_rate, self.rx_rate) = (rate(tx), rate(rx));
    }
}

/// A map whose keys JSON cannot use as object keys, stored as a list of
/// pairs; any map type that iterates and collects pairs.
mod pairs {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub fn serialize<'a, M, K, V, S>(map: &'a M, serializer: S) -> Result<S::Ok, S::Error>
    where
        &'a M: IntoIterator<Item = (&'a K, &'a V)>,
        K: Serialize + 'a,
        V: Serialize + 'a,
        S: Serializer,
    {
        serializer.collect_seq(map)
    }

    pub fn deserialize<'de, M, K, V, D>(deserializer: D) -> Result<M, D::Error>
    where
        M: FromIterator<(K, V)>,
        K: Deserialize<'de>,
        V: Deserialize<'de>,
        D: Deserializer<'de>,
    {
        Ok(Vec::<(K, V)>::deserialize(deserializer)?
            .into_iter()
            .collect())
    }
}

/// Device records stored as a list, each carrying its own MAC.
mod by_mac {
    use std::collections::BTreeMap;

    use serde::{Deserialize, Deserializer, Serializer};

    use super::DeviceTotals;
    use crate::mac::Mac;

    pub fn serialize<S: Serializer>(
        map: &BTreeMap<Mac, DeviceTotals>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(map.values())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<BTreeMap<Mac, DeviceTotals>, D::Error> {
        Ok(Vec::<DeviceTotals>::deserialize(deserializer)?
            .into_iter()
            .map(|t| (t.mac, t))
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::Direction::{Received, Sent};
    use super::*;

    impl crate::store::format::Payload for DeviceAccounts {}
    use std::collections::BTreeSet;
    use std::net::{Ipv4Addr, Ipv6Addr};

    const GEN: u64 = 1;
    const NOTHING: UnattributedSample = UnattributedSample {
        tx_bytes: 0,
        tx_packets: 0,
        rx_bytes: 0,
        rx_packets: 0,
    };

    fn at(ms: u64) -> Moment {
        Moment {
            monotonic_ms: ms,
            unix_secs: 1_700_000_000 + ms / 1000,
        }
    }

    fn mac(n: u8) -> Mac {
        Mac([2, 0, 0, 0, 0, n])
    }

    fn v4(n: u8) -> IpAddr {
        IpAddr::V4(Ipv4Addr::new(192, 168, 1, n))
    }

    fn v6(n: u16) -> IpAddr {
        IpAddr::V6(Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, n))
    }

    fn element(direction: Direction, m: u8, ip: IpAddr, bytes: u64, packets: u64) -> DeviceSample {
        DeviceSample {
            direction,
            mac: mac(m),
            ip,
            bytes,
            packets,
        }
    }

    fn sent(m: u8, ip: u8, bytes: u64) -> DeviceSample {
        element(Sent, m, v4(ip), bytes, bytes / 100)
    }

    fn received(m: u8, ip: u8, bytes: u64) -> DeviceSample {
        element(Received, m, v4(ip), bytes, bytes / 100)
    }

    /// Ingest, returning the events as log lines.
    fn feed(
        a: &mut DeviceAccounts,
        ms: u64,
        generation: u64,
        read: &[DeviceSample],
    ) -> Vec<String> {
        a.ingest(at(ms), generation, read, NOTHING)
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    /// rx bytes, tx bytes, rx packets, tx packets.
    fn totals(t: &DeviceTotals) -> [u64; 4] {
        [t.rx_bytes, t.tx_bytes, t.rx_packets, t.tx_packets]
    }

    fn device(a: &DeviceAccounts, m: u8) -> &DeviceTotals {
        a.get(&mac(m)).expect("tracked")
    }

    #[test]
    fn a_new_element_counts_everything_its_counter_holds() {
        let mut a = DeviceAccounts::new(8);
        let events = feed(&mut a, 5_000, GEN, &[sent(1, 10, 1_000)]);
        assert_eq!(events, ["new device 02:00:00:00:00:01"]);
        let d = device(&a, 1);
        assert_eq!(totals(d), [0, 1_000, 0, 10]);
        assert_eq!((d.first_seen, d.last_seen), (1_700_000_005, 1_700_000_005));
        assert_eq!(d.ips, [v4(10)]);
    }

    #[test]
    fn multicast_and_broadcast_macs_never_become_devices_nor_go_to_other() {
        let mut a = DeviceAccounts::new(1);
        let group = |mac: Mac, ip: &str| DeviceSample {
            mac,
            ip: ip.parse().unwrap(),
            ..received(0, 0, 2_688)
        };
        let read = [
            group(Mac([0x33, 0x33, 0, 0, 0, 0x16]), "ff02::16"),
            group(Mac([0x33, 0x33, 0xff, 0, 0, 2]), "ff02::1:ff00:2"),
            group(Mac([0x01, 0, 0x5e, 0, 0, 0xfb]), "224.0.0.251"),
            group(Mac([0xff; 6]), "255.255.255.255"),
            sent(1, 10, 100),
        ];
        assert_eq!(
            feed(&mut a, 0, GEN, &read),
            ["new device 02:00:00:00:00:01"]
        );
        feed(&mut a, 1_000, GEN, &read);
        let macs: Vec<_> = a.devices().map(|d| d.mac).collect();
        assert_eq!(macs, [mac(1)]);
        assert_eq!(totals(a.other()), [0; 4], "not folded into other either");
        assert_eq!(a.idle_elements(at(9_000), 1), [(Sent, mac(1), v4(10))]);
    }

    #[test]
    fn group_macs_restored_from_an_older_state_are_dropped_on_request() {
        let mut a = DeviceAccounts::new(8);
        feed(&mut a, 0, GEN, &[sent(1, 10, 100)]);
        let saved = |mac| DeviceTotals {
            mac,
            rx_bytes: 72,
            ..DeviceTotals::default()
        };
        let group = [Mac([0x33, 0x33, 0, 0, 0, 0x16]), Mac([0xff; 6])];
        a.restore(
            Some(GEN),
            group.map(saved).to_vec(),
            UnattributedTotals::default(),
        );
        assert_eq!(a.devices().count(), 3);
        assert_eq!(a.drop_group_macs(), 2);
        assert_eq!(a.devices().map(|d| d.mac).collect::<Vec<_>>(), [mac(1)]);
        assert_eq!(device(&a, 1).tx_bytes, 100);
        assert_eq!(a.drop_group_macs(), 0);
    }

    #[test]
    fn sent_traffic_is_upload_and_received_traffic_is_download() {
        let mut a = DeviceAccounts::new(8);
        feed(&mut a, 0, GEN, &[sent(1, 10, 300), received(1, 10, 5_000)]);
        assert_eq!(totals(device(&a, 1)), [5_000, 300, 50, 3]);
    }

    #[test]
    fn a_growing_element_adds_its_growth() {
        let mut a = DeviceAccounts::new(8);
        feed(&mut a, 0, GEN, &[sent(1, 10, 1_000)]);
        assert!(feed(&mut a, 1_000, GEN, &[sent(1, 10, 1_500)]).is_empty());
        feed(&mut a, 2_000, GEN, &[sent(1, 10, 1_500)]);
        assert_eq!(totals(device(&a, 1)), [0, 1_500, 0, 15]);
    }

    #[test]
    fn an_element_missing_from_a_read_starts_from_zero_when_it_returns() {
        let mut a = DeviceAccounts::new(8);
        feed(&mut a, 0, GEN, &[sent(1, 10, 1_000)]);
        feed(&mut a, 1_000, GEN, &[]);
        feed(&mut a, 2_000, GEN, &[sent(1, 10, 1_200)]);
        assert_eq!(totals(device(&a, 1)), [0, 2_200, 0, 22]);
    }

    #[test]
    fn a_new_generation_restarts_every_element_and_is_reported_once() {
        let mut a = DeviceAccounts::new(8);
        let events = feed(&mut a, 0, GEN, &[sent(1, 10, 1_000), received(1, 10, 200)]);
        assert_eq!(events.len(), 1, "the first generation is only recorded");
        let events = feed(&mut a, 1_000, 2, &[sent(1, 10, 1_500), received(1, 10, 50)]);
        assert_eq!(
            events,
            ["device table reinstalled (generation 2): all counters restarted"]
        );
        assert_eq!(totals(device(&a, 1)), [250, 2_500, 2, 25]);
        assert!(feed(&mut a, 2_000, 2, &[sent(1, 10, 1_600)]).is_empty());
        assert_eq!(device(&a, 1).tx_bytes, 2_600);
    }

    #[test]
    fn a_counter_that_falls_within_a_generation_counts_as_a_new_element() {
        let mut a = DeviceAccounts::new(8);
        feed(&mut a, 0, GEN, &[element(Sent, 1, v4(10), 1_000, 10)]);
        feed(&mut a, 1_000, GEN, &[element(Sent, 1, v4(10), 300, 3)]);
        assert_eq!(totals(device(&a, 1)), [0, 1_300, 0, 13]);
        feed(&mut a, 2_000, GEN, &[element(Sent, 1, v4(10), 350, 4)]);
        assert_eq!(totals(device(&a, 1)), [0, 1_350, 0, 14]);
    }

    #[test]
    fn a_key_twice_in_one_read_counts_once() {
        let mut a = DeviceAccounts::new(8);
        feed(&mut a, 0, GEN, &[sent(1, 10, 100), sent(1, 10, 100)]);
        assert_eq!(device(&a, 1).tx_bytes, 100);
        feed(&mut a, 1_000, 2, &[sent(1, 10, 100), sent(1, 10, 100)]);
        assert_eq!(device(&a, 1).tx_bytes, 200);
    }

    #[test]
    fn all_elements_of_a_mac_add_up_to_one_device() {
        let mut a = DeviceAccounts::new(8);
        let read = [
            sent(1, 10, 100),
            received(1, 10, 1_000),
            element(Sent, 1, v6(1), 20, 1),
            element(Received, 1, v6(1), 300, 2),
            sent(2, 20, 7),
        ];
        feed(&mut a, 0, GEN, &read);
        assert_eq!(totals(device(&a, 1)), [1_300, 120, 12, 2]);
        assert_eq!(device(&a, 1).ips, [v6(1), v4(10)]);
        assert_eq!(totals(device(&a, 2)), [0, 7, 0, 0]);
        let macs: Vec<_> = a.devices().map(|d| d.mac).collect();
        assert_eq!(macs, [mac(1), mac(2)], "ordered by MAC");
    }

    #[test]
    fn a_devices_addresses_are_kept_most_recently_active_first_and_at_most_sixteen() {
        let mut a = DeviceAccounts::new(8);
        let mut read: Vec<_> = (1..=20).map(|ip| sent(1, ip, 100)).collect();
        feed(&mut a, 0, GEN, &read);
        let expect: Vec<_> = (5..=20).rev().map(v4).collect();
        assert_eq!(device(&a, 1).ips, expect);
        feed(&mut a, 1_000, GEN, &read);
        assert_eq!(device(&a, 1).ips, expect, "quiet addresses stay put");
        read[2].bytes = 150;
        feed(&mut a, 2_000, GEN, &read);
        let expect: Vec<_> = [v4(3)].into_iter().chain((6..=20).rev().map(v4)).collect();
        assert_eq!(device(&a, 1).ips, expect);
        read[19].bytes = 150;
        feed(&mut a, 3_000, GEN, &read);
        assert_eq!(device(&a, 1).ips[..3], [v4(20), v4(3), v4(19)]);
    }

    #[test]
    fn devices_beyond_the_limit_are_folded_into_other_and_reported_once() {
        let mut a = DeviceAccounts::new(2);
        let mut read = [
            sent(1, 10, 0),
            sent(2, 20, 0),
            sent(3, 30, 500),
            received(3, 31, 7_000),
        ];
        let events = feed(&mut a, 0, GEN, &read);
        assert_eq!(
            events,
            [
                "new device 02:00:00:00:00:01",
                "new device 02:00:00:00:00:02",
                "02:00:00:00:00:03 counted under other: device limit reached",
            ]
        );
        assert!(a.get(&mac(3)).is_none());
        assert_eq!(a.devices().count(), 2);
        let other = a.other();
        assert_eq!(totals(other), [7_000, 500, 70, 5]);
        assert_eq!((other.mac, other.ips.len()), (Mac::OTHER, 0));
        assert_eq!(other.first_seen, 1_700_000_000);
        read[2].bytes = 800;
        assert!(feed(&mut a, 1_000, GEN, &read).is_empty());
        assert_eq!(a.other().tx_bytes, 800);
    }

    #[test]
    fn shrinking_the_limit_keeps_existing_devices_and_sends_newcomers_to_other() {
        let mut a = DeviceAccounts::new(3);
        feed(
            &mut a,
            0,
            GEN,
            &[sent(1, 1, 10), sent(2, 2, 10), sent(3, 3, 10)],
        );
        a.set_max_devices(1);
        let read = [
            sent(1, 1, 20),
            sent(2, 2, 30),
            sent(3, 3, 40),
            sent(4, 4, 5),
        ];
        let events = feed(&mut a, 1_000, GEN, &read);
        assert_eq!(
            events,
            ["02:00:00:00:00:04 counted under other: device limit reached"]
        );
        let tx: Vec<_> = a.devices().map(|d| d.tx_bytes).collect();
        assert_eq!(tx, [20, 30, 40]);
        assert_eq!(a.other().tx_bytes, 5);
    }

    #[test]
    fn the_folded_macs_remembered_are_bounded_and_a_forgotten_one_is_reported_again() {
        let mut a = DeviceAccounts::new(0);
        let folded = |i: u16, bytes| DeviceSample {
            mac: Mac([2, 0, 0, 0, (i >> 8) as u8, i as u8]),
            ..sent(0, 1, bytes)
        };
        // As many elements as MACs: their states overflow their own cap too.
        let read: Vec<_> = (0..1_025).map(|i| folded(i, 0)).collect();
        let events = feed(&mut a, 0, GEN, &read);
        assert_eq!(events.len(), 1_025 + 1);
        assert_eq!(a.other().tx_bytes, 0);
        let events = feed(&mut a, 1_000, GEN, &[folded(0, 10)]);
        assert_eq!(
            events,
            ["02:00:00:00:00:00 counted under other: device limit reached"]
        );
        assert!(feed(&mut a, 2_000, GEN, &[folded(1_024, 10)]).is_empty());
        assert_eq!(a.other().tx_bytes, 20);
    }

    #[test]
    fn a_folded_mac_gets_its_own_record_once_the_limit_allows() {
        let mut a = DeviceAccounts::new(1);
        feed(&mut a, 0, GEN, &[sent(1, 1, 10), sent(2, 2, 100)]);
        a.set_max_devices(2);
        let events = feed(&mut a, 1_000, GEN, &[sent(1, 1, 10), sent(2, 2, 150)]);
        assert_eq!(events, ["new device 02:00:00:00:00:02"]);
        assert_eq!(device(&a, 2).tx_bytes, 50);
        assert_eq!(device(&a, 2).first_seen, 1_700_000_001);
        assert_eq!(a.other().tx_bytes, 100);
    }

    #[test]
    fn rates_are_bytes_per_second_since_the_previous_read() {
        let mut a = DeviceAccounts::new(8);
        feed(&mut a, 0, GEN, &[sent(1, 1, 1_000), received(1, 1, 0)]);
        feed(
            &mut a,
            2_000,
            GEN,
            &[sent(1, 1, 5_000), received(1, 1, 300)],
        );
        let d = device(&a, 1);
        assert_eq!((d.tx_rate, d.rx_rate), (2_000, 150));
        // Elements are read every interval, so a new one's whole counter is recent.
        feed(&mut a, 2_500, GEN, &[sent(1, 1, 5_000), sent(1, 2, 1_000)]);
        assert_eq!(device(&a, 1).tx_rate, 2_000);
    }

    #[test]
    fn no_rate_is_claimed_on_the_first_read_or_when_no_time_passed() {
        let mut a = DeviceAccounts::new(8);
        feed(&mut a, 1_000, GEN, &[sent(1, 1, 1_000)]);
        assert_eq!(device(&a, 1).tx_rate, 0);
        feed(&mut a, 1_000, GEN, &[sent(1, 1, 9_000)]);
        assert_eq!(device(&a, 1).tx_rate, 0);
        assert_eq!(device(&a, 1).tx_bytes, 9_000);
    }

    #[test]
    fn a_device_without_traffic_this_interval_has_no_rate() {
        let mut a = DeviceAccounts::new(1);
        feed(&mut a, 0, GEN, &[sent(1, 1, 0), sent(2, 2, 0)]);
        feed(&mut a, 1_000, GEN, &[sent(1, 1, 1_000), sent(2, 2, 3_000)]);
        assert_eq!((device(&a, 1).tx_rate, a.other().tx_rate), (1_000, 3_000));
        feed(&mut a, 2_000, GEN, &[sent(1, 1, 1_000)]);
        assert_eq!((device(&a, 1).tx_rate, a.other().tx_rate), (0, 0));
        feed(&mut a, 3_000, GEN, &[]);
        assert_eq!(device(&a, 1).tx_rate, 0);
    }

    #[test]
    fn last_seen_moves_only_when_a_counter_grows() {
        let mut a = DeviceAccounts::new(8);
        feed(&mut a, 0, GEN, &[element(Sent, 1, v4(1), 100, 1)]);
        feed(&mut a, 5_000, GEN, &[element(Sent, 1, v4(1), 100, 1)]);
        assert_eq!(device(&a, 1).last_seen, 1_700_000_000);
        feed(&mut a, 9_000, GEN, &[element(Sent, 1, v4(1), 100, 2)]);
        let d = device(&a, 1);
        assert_eq!((d.first_seen, d.last_seen), (1_700_000_000, 1_700_000_009));
    }

    #[test]
    fn unattributed_counters_are_totalled_across_restarts() {
        let raw = |tx_bytes, tx_packets, rx_bytes, rx_packets| UnattributedSample {
            tx_bytes,
            tx_packets,
            rx_bytes,
            rx_packets,
        };
        let total = |a: &DeviceAccounts| {
            let u = a.unattributed();
            [u.tx_bytes, u.tx_packets, u.rx_bytes, u.rx_packets]
        };
        let mut a = DeviceAccounts::new(8);
        a.ingest(at(0), GEN, &[], raw(100, 1, 200, 2));
        assert_eq!(total(&a), [100, 1, 200, 2]);
        a.ingest(at(1_000), GEN, &[], raw(150, 2, 250, 3));
        assert_eq!(total(&a), [150, 2, 250, 3]);
        a.ingest(at(2_000), 2, &[], raw(160, 1, 20, 1));
        assert_eq!(total(&a), [310, 3, 270, 4], "a new generation adds raw");
        a.ingest(at(3_000), 2, &[], raw(5, 1, 5, 1));
        assert_eq!(total(&a), [315, 3, 275, 4], "a fall adds raw");
    }

    #[test]
    fn idle_elements_are_those_that_have_not_grown_for_the_idle_time() {
        let mut a = DeviceAccounts::new(8);
        feed(&mut a, 0, GEN, &[sent(1, 10, 100), sent(1, 11, 100)]);
        feed(&mut a, 5_000, GEN, &[sent(1, 10, 200), sent(1, 11, 100)]);
        feed(
            &mut a,
            8_000,
            GEN,
            &[sent(1, 10, 200), sent(1, 11, 100), sent(1, 12, 0)],
        );
        assert_eq!(a.idle_elements(at(8_999), 9_000), []);
        assert_eq!(a.idle_elements(at(9_000), 9_000), [(Sent, mac(1), v4(11))]);
        assert_eq!(a.idle_elements(at(17_000), 9_000).len(), 3);
    }

    #[test]
    fn forgotten_elements_start_from_zero_when_they_return() {
        let mut a = DeviceAccounts::new(8);
        feed(&mut a, 0, GEN, &[sent(1, 10, 1_000), sent(1, 11, 1_000)]);
        let idle = a.idle_elements(at(60_000), 60_000);
        a.forget_elements(&idle[..1]);
        a.forget_elements(&[(Received, mac(9), v4(9))]);
        feed(
            &mut a,
            61_000,
            GEN,
            &[sent(1, 10, 1_200), sent(1, 11, 1_200)],
        );
        assert_eq!(device(&a, 1).tx_bytes, 2_000 + 1_200 + 200);
    }

    #[test]
    fn element_states_beyond_the_cap_are_evicted_least_recently_changed_first() {
        // The cap for one device: 8 + 1024. Evicted states are counted again in
        // full when next read: the one documented way to count twice.
        let mut a = DeviceAccounts::new(1);
        let mut read: Vec<_> = (0..1_040).map(|i| element(Sent, 1, v6(i), 10, 1)).collect();
        let events = feed(&mut a, 0, GEN, &read);
        assert_eq!(
            events[1],
            "8 element states evicted: their traffic may be counted twice"
        );
        assert_eq!(device(&a, 1).tx_bytes, 10_400);
        read[1_039].bytes = 15;
        let events = a.ingest(at(1_000), GEN, &read, NOTHING);
        assert_eq!(events, [DeviceEvent::ElementStateEvicted { count: 8 }]);
        assert_eq!(device(&a, 1).tx_bytes, 10_400 + 80 + 5);
        // Kept: the 8 states just re-created and the one that grew; evicted: the next 8.
        let idle = a.idle_elements(at(1_000), 1);
        assert_eq!(idle.len(), 1_040 - 8 - 8 - 1);
        assert_eq!(idle[0], (Sent, mac(1), v6(16)));
        assert_eq!(idle[idle.len() - 1], (Sent, mac(1), v6(1_038)));
    }

    #[test]
    fn accounts_survive_being_stored_and_loaded() {
        let mut a = DeviceAccounts::new(1);
        feed(&mut a, 0, GEN, &[sent(1, 1, 1_000), sent(2, 2, 50)]);
        let stored = serde_json::to_string(&a).unwrap();
        let mut loaded: DeviceAccounts = serde_json::from_str(&stored).unwrap();
        assert_eq!(loaded.get(&mac(1)), a.get(&mac(1)));
        let read = [sent(1, 1, 3_000), sent(2, 2, 80)];
        assert!(feed(&mut loaded, 1_000, GEN, &read).is_empty());
        assert_eq!(device(&loaded, 1).tx_bytes, 3_000);
        assert_eq!(device(&loaded, 1).tx_rate, 2_000);
        assert_eq!(loaded.other().tx_bytes, 80);
    }

    #[test]
    fn accounts_survive_a_state_file_round_trip() {
        use crate::store::format::{FileKind, decode, encode};
        let mut a = DeviceAccounts::new(1);
        feed(&mut a, 0, GEN, &[sent(1, 1, 1_000), sent(2, 2, 50)]);
        let file = encode(FileKind::Snapshot, 1, 0, &a).unwrap();
        let mut loaded: DeviceAccounts = decode(&file, FileKind::Snapshot).unwrap().payload;
        assert_eq!(loaded.get(&mac(1)), a.get(&mac(1)));
        let read = [sent(1, 1, 3_000), sent(2, 2, 80)];
        assert!(feed(&mut loaded, 1_000, GEN, &read).is_empty());
        assert_eq!(device(&loaded, 1).tx_bytes, 3_000);
        assert_eq!(loaded.other().tx_bytes, 80);
    }

    /// Deterministic pseudo-random numbers without a dependency.
    struct XorShift(u64);

    impl XorShift {
        fn below(&mut self, n: u64) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0 % n.max(1)
        }

        fn percent(&mut self, p: u64) -> bool {
            self.below(100) < p
        }
    }

    type Key = (Direction, Mac, IpAddr);

    /// A kernel whose elements grow, expire, are re-created and flushed at random.
    #[derive(Default)]
    struct FakeKernel {
        elements: BTreeMap<Key, [u64; 2]>,
        /// Raw values at the last read.
        read: BTreeMap<Key, [u64; 2]>,
        /// Expired since the last read: back no sooner than after the next one,
        /// or nothing could tell the new element from the old.
        expired: BTreeSet<Key>,
        unattributed: [u64; 4],
        generation: u64,
        /// Everything counted since the start: device bytes, packets; unattributed.
        injected: [u64; 2],
        injected_unattributed: [u64; 4],
    }

    impl FakeKernel {
        /// Traffic between two reads.
        fn traffic(&mut self, rng: &mut XorShift) {
            for (key, raw) in &mut self.elements {
                let last = self.read.get(key).copied().unwrap_or_default();
                let roll = rng.below(100);
                if roll < 40 {
                    let grow = [rng.below(1 << 20), rng.below(1_000)];
                    for i in 0..2 {
                        raw[i] += grow[i];
                        self.injected[i] += grow[i];
                    }
                } else if roll < 42 && *raw == last && last[0] > 0 && last[1] > 0 {
                    // Deleted and re-created in place, counting less than before.
                    *raw = [rng.below(last[0]), rng.below(last[1])];
                    self.injected[0] += raw[0];
                    self.injected[1] += raw[1];
                }
            }
            for _ in 0..rng.below(4) {
                let direction = if rng.percent(50) { Sent } else { Received };
                let m = mac(rng.below(24) as u8);
                let i = rng.below(20) as u16;
                let ip = if i < 4 { v4(i as u8) } else { v6(i) };
                let key = (direction, m, ip);
                if self.elements.contains_key(&key) || self.expired.contains(&key) {
                    continue;
                }
                let raw = [rng.below(1 << 16), rng.below(100)];
                self.injected[0] += raw[0];
                self.injected[1] += raw[1];
                self.elements.insert(key, raw);
            }
            for i in 0..4 {
                let grow = rng.below(1_000);
                self.unattributed[i] += grow;
                self.injected_unattributed[i] += grow;
            }
        }

        fn dump(&self) -> Vec<DeviceSample> {
            self.elements
                .iter()
                .map(|(&(direction, mac, ip), &[bytes, packets])| DeviceSample {
                    direction,
                    mac,
                    ip,
                    bytes,
                    packets,
                })
                .collect()
        }

        fn unattributed(&self) -> UnattributedSample {
            let [tx_bytes, tx_packets, rx_bytes, rx_packets] = self.unattributed;
            UnattributedSample {
                tx_bytes,
                tx_packets,
                rx_bytes,
                rx_packets,
            }
        }

        /// The table reinstalled: everything starts over from zero, and some
        /// elements are back at once, some counting more than before.
        fn flush(&mut self, rng: &mut XorShift) {
            self.generation += 1;
            self.expired.clear();
            for (key, raw) in std::mem::take(&mut self.elements) {
                if rng.percent(30) {
                    let back = [raw[0] + rng.below(1 << 16), raw[1] + rng.below(100)];
                    self.injected[0] += back[0];
                    self.injected[1] += back[1];
                    self.elements.insert(key, back);
                }
            }
            for i in 0..4 {
                let back = self.unattributed[i] + rng.below(1_000);
                self.unattributed[i] = if rng.percent(50) { back } else { 0 };
                self.injected_unattributed[i] += self.unattributed[i];
            }
        }

        fn after_read(&mut self) {
            self.read = self.elements.clone();
            self.expired.clear();
        }
    }

    #[test]
    fn totals_never_decrease_and_add_up_to_exactly_the_traffic_injected() {
        let mut rng = XorShift(0x2545_f491_4f6c_dd1d);
        let mut kernel = FakeKernel::default();
        let mut a = DeviceAccounts::new(8);
        let (mut ms, mut highest_limit, mut forgotten) = (0, 8, 0);
        let mut kinds = BTreeSet::new();
        let mut before: BTreeMap<Mac, [u64; 4]> = BTreeMap::new();
        let (mut other_before, mut unattributed_before) = ([0; 4], [0; 4]);
        for _ in 0..20_000 {
            kernel.traffic(&mut rng);
            ms += rng.below(4_000);
            let events = a.ingest(
                at(ms),
                kernel.generation,
                &kernel.dump(),
                kernel.unattributed(),
            );
            kernel.after_read();
            for event in &events {
                let kind = format!("{event:?}");
                kinds.insert(kind.split(' ').next().unwrap().to_owned());
                assert!(!matches!(event, DeviceEvent::ElementStateEvicted { .. }));
            }

            let after: BTreeMap<Mac, [u64; 4]> = a.devices().map(|d| (d.mac, totals(d))).collect();
            assert!(after.len() <= highest_limit);
            for (m, floor) in &before {
                let now = after.get(m).expect("device records are never dropped");
                assert!(now.iter().zip(floor).all(|(n, f)| n >= f), "went back");
            }
            let other = totals(a.other());
            assert!(other.iter().zip(other_before).all(|(n, f)| *n >= f));
            let u = a.unattributed();
            let unattributed = [u.tx_bytes, u.tx_packets, u.rx_bytes, u.rx_packets];
            assert!(
                unattributed
                    .iter()
                    .zip(unattributed_before)
                    .all(|(n, f)| *n >= f)
            );
            assert_eq!(unattributed, kernel.injected_unattributed);
            let grand = after.values().chain([&other]).fold([0, 0], |sum, t| {
                [sum[0] + t[0] + t[1], sum[1] + t[2] + t[3]]
            });
            assert_eq!(grand, kernel.injected, "lost or double counted");
            assert!(a.devices().all(|d| d.ips.len() <= MAX_IPS_PER_DEVICE));
            (before, other_before, unattributed_before) = (after, other, unattributed);

            // Between reads: netmeter prunes, the kernel expires and flushes.
            if rng.percent(20) {
                let idle = a.idle_elements(at(ms), 8_000);
                let deleted: Vec<_> = idle.into_iter().filter(|_| rng.percent(80)).collect();
                for key in &deleted {
                    kernel.elements.remove(key);
                }
                forgotten += deleted.len();
                a.forget_elements(&deleted);
            }
            let expiring: Vec<Key> = kernel
                .elements
                .keys()
                .copied()
                .filter(|_| rng.percent(3))
                .collect();
            for key in expiring {
                kernel.elements.remove(&key);
                kernel.expired.insert(key);
            }
            if rng.percent(1) {
                kernel.flush(&mut rng);
            }
            if rng.percent(1) {
                let limit = 4 + rng.below(9) as usize;
                highest_limit = highest_limit.max(limit);
                a.set_max_devices(limit);
            }
        }
        assert!(forgotten > 0, "never pruned");
        for kind in ["NewDevice", "Overflow", "TableRestarted"] {
            assert!(kinds.contains(kind), "never exercised {kind}");
        }
    }
}
