//! Upstream routers' counters made monotonic, like the kernel's.
//!
//! Upstream counters are worse than local ones: many protocols declare
//! 32-bit fields polled only every minute, routers reboot unseen, and some
//! firmware reports a lone zero now and then (FRITZ!OS 7.50,
//! home-assistant/core#86661). Totals here only ever grow, and survive
//! netmeter's restarts: a router that kept counting meanwhile is read on
//! from its last raw value, so that traffic is not lost.
//!
//! Per source (config order): the WAN and interfaces as `SeriesTotals`,
//! devices by MAC (at most 4096 per source), and `Bypass`, the double-NAT
//! difference (the highest running balance of upstream minus local growth,
//! so it never goes down and clock skew does not pile up). A 32-bit drop is
//! a wrap only from the upper half, else a reboot. History series are named
//! `SOURCE/wan` and `SOURCE/IFACE`: no Linux interface name has a `/`, so
//! they clash with no local interface. The store keeps the accounts as
//! bytes (`store::state::UpstreamBytes`); `encode` and `decode` here are the
//! only code that knows their layout.

use crate::mac::Mac;
use serde::{Deserialize, Serialize};

use crate::account::{CounterWidth, DEFAULT_MAX_BYTES_PER_SEC, MonotonicCounter, Observation};
use crate::clock::Moment;
use crate::rxtx::RxTx;
use crate::store::state::UpstreamBytes;
use crate::upstream::DeviceFigure;
use crate::upstream::sources::{Counters, Reading};

/// Devices kept per source; the longest unseen go first.
pub const MAX_DEVICES_PER_SOURCE: usize = 4096;
/// Interfaces kept per source.
pub const MAX_INTERFACES_PER_SOURCE: usize = 64;

/// A 32-bit reading that went down is a wrap only when the one before was
/// in the upper half: a router that rebooted mid-range is not credited
/// with the 2–4 GiB a wrap would imply.
const WRAP_FLOOR_32: u64 = 1 << 31;

/// One upstream counter: a monotonic total that skips lone zero readings.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UpstreamCounter {
    total: u64,
    /// Wrap and reset detection on the raw readings; its own total also
    /// holds the first reading, which is not ours.
    counter: MonotonicCounter,
    /// The last reading was a zero after non-zero ones, held back: if the
    /// next one carries on from before it, it was a glitch.
    held_zero: bool,
}

impl UpstreamCounter {
    pub fn total(&self) -> u64 {
        self.total
    }

    /// Accounts one raw reading; returns what it added.
    fn observe(&mut self, raw: u64, width: CounterWidth, elapsed_secs: u64) -> u64 {
        let last = self.counter.last_raw();
        if raw == 0 && last.is_some_and(|l| l > 0) && !self.held_zero {
            self.held_zero = true;
            return 0;
        }
        self.held_zero = false;
        let plausible = DEFAULT_MAX_BYTES_PER_SEC.saturating_mul(elapsed_secs.max(1));
        let restarted = match (width, last) {
            (CounterWidth::Bits32, Some(l)) => raw < l && l < WRAP_FLOOR_32,
            _ => false,
        };
        let added = match self.counter.observe(raw, width, restarted, plausible) {
            // The router counted this before netmeter first read it: not ours to credit.
            Observation::FirstSeen(_) => 0,
            seen => seen.delta(),
        };
        self.total = self.total.saturating_add(added);
        added
    }
}

/// Received and sent totals of one series (the WAN, an interface, a device).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeriesTotals {
    pub rx: UpstreamCounter,
    pub tx: UpstreamCounter,
    /// Bytes per second over the last interval.
    pub rx_rate: u64,
    pub tx_rate: u64,
}

impl SeriesTotals {
    fn ingest(&mut self, counters: &Counters, elapsed: Option<Elapsed>) -> RxTx<u64> {
        let secs = elapsed.map_or(0, |e| e.secs);
        let added = RxTx {
            rx: self.rx.observe(counters.rx_bytes, counters.width, secs),
            tx: self.tx.observe(counters.tx_bytes, counters.width, secs),
        };
        // No interval of this run (the first reading after a start): no rate yet.
        let ms = elapsed.map_or(0, |e| e.ms);
        let rates = match ms {
            0 => RxTx::ZERO,
            ms => added.map(|a| a.saturating_mul(1000) / ms),
        };
        (self.rx_rate, self.tx_rate) = (rates.rx, rates.tx);
        added
    }

    pub fn rx_bytes(&self) -> u64 {
        self.rx.total()
    }

    pub fn tx_bytes(&self) -> u64 {
        self.tx.total()
    }
}

/// A device the upstream router counts.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UpstreamDevice {
    pub mac: Mac,
    pub ip: Option<std::net::IpAddr>,
    pub hostname: Option<String>,
    pub totals: SeriesTotals,
    /// Unix seconds of the last reading that listed it.
    pub last_seen: u64,
}

/// Traffic the upstream router's WAN carried beyond netmeter's own WAN:
/// devices that bypass this router (double NAT).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Bypass {
    pub rx_bytes: u64,
    pub tx_bytes: u64,
    pub rx_rate: u64,
    pub tx_rate: u64,
    /// Upstream minus local since counting began; may dip below zero
    /// when the two sides' counters are read a little apart.
    balance: RxTx<i64>,
}

impl Bypass {
    /// Credits one interval: `upstream` and `local` are what each side
    /// counted over the same interval. The totals follow the highest
    /// balance seen, so they never go down and skew does not pile up.
    fn credit(&mut self, upstream: RxTx<u64>, local: RxTx<u64>, elapsed_ms: u64) {
        // One direction: its balance moves by the step; returns (total, rate).
        let direction = |upstream: u64, local: u64, balance: &mut i64, total: u64| {
            let step = upstream as i128 - local as i128;
            let moved = (*balance as i128 + step).clamp(i64::MIN.into(), i64::MAX.into());
            *balance = moved as i64;
            let new_total = (moved.max(0) as u64).max(total);
            let rate = (step.max(0) as u64)
                .saturating_mul(1000)
                .checked_div(elapsed_ms)
                .unwrap_or(0);
            (new_total, rate)
        };
        (self.rx_bytes, self.rx_rate) =
            direction(upstream.rx, local.rx, &mut self.balance.rx, self.rx_bytes);
        (self.tx_bytes, self.tx_rate) =
            direction(upstream.tx, local.tx, &mut self.balance.tx, self.tx_bytes);
    }
}

/// Everything counted for one configured source.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct UpstreamTotals {
    /// The section name.
    pub name: String,
    /// The protocol's name, as configured.
    pub kind: String,
    pub wan: Option<SeriesTotals>,
    pub interfaces: Vec<(String, SeriesTotals)>,
    pub devices: Vec<UpstreamDevice>,
    pub bypass: Option<Bypass>,
    /// Line statistics of the last reading (DrayTek): of the moment, not totals.
    #[serde(skip)]
    pub line: Vec<crate::upstream::sources::LineValue>,
    /// Unix seconds of the first and last successful reading.
    pub first_seen: u64,
    pub last_seen: u64,
    /// Monotonic time of the last reading: rates need an interval of this run.
    #[serde(skip)]
    read_ms: Option<u64>,
}

/// The interval since a source's last reading.
#[derive(Clone, Copy, Debug)]
struct Elapsed {
    secs: u64,
    ms: u64,
}

/// All sources' accounts, in configuration order. Saved as the store's
/// [`UpstreamBytes`]: [`Self::encode`] and [`Self::decode`] are the only
/// place their layout is known.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct UpstreamAccounts {
    sources: Vec<UpstreamTotals>,
}

impl UpstreamAccounts {
    pub fn iter(&self) -> impl Iterator<Item = &UpstreamTotals> {
        self.sources.iter()
    }

    /// The saved form: the list of sources (postcard), as format version 2
    /// ends a state file and a journal record.
    pub fn encode(&self) -> Vec<u8> {
        postcard::to_allocvec(self).expect("encoding into memory cannot fail")
    }

    /// The accounts the store saved; an error names what is wrong.
    pub fn decode(saved: &UpstreamBytes) -> Result<Self, String> {
        postcard::from_bytes(saved.bytes())
            .map_err(|e| format!("the saved upstream totals do not decode: {e}"))
    }

    /// Every device each source counts, for the devices report.
    pub fn device_figures(&self) -> Vec<DeviceFigure> {
        let mut figures = Vec::new();
        for source in &self.sources {
            for d in &source.devices {
                figures.push(DeviceFigure {
                    source: source.name.clone(),
                    mac: d.mac,
                    ip: d.ip,
                    hostname: d.hostname.clone(),
                    rx_bytes: d.totals.rx_bytes(),
                    tx_bytes: d.totals.tx_bytes(),
                    rx_rate: d.totals.rx_rate,
                    tx_rate: d.totals.tx_rate,
                    last_seen: d.last_seen,
                });
            }
        }
        figures
    }

    /// Every series with history (`isp/wan`), rx and tx.
    pub fn series(&self) -> Vec<(String, RxTx<u64>)> {
        self.sources.iter().flat_map(|s| s.series()).collect()
    }

    pub fn is_empty(&self) -> bool {
        self.sources.is_empty()
    }

    pub fn get(&self, name: &str) -> Option<&UpstreamTotals> {
        self.sources.iter().find(|s| s.name == name)
    }

    /// Keeps the configured sources, in configuration order; a source no
    /// longer configured is dropped with its totals (its history stays).
    pub fn retain_configured<'a>(&mut self, configured: impl IntoIterator<Item = &'a str>) {
        let mut kept = Vec::new();
        for name in configured {
            let at = self.sources.iter().position(|s| s.name == name);
            kept.push(match at {
                Some(at) => self.sources.swap_remove(at),
                None => UpstreamTotals {
                    name: name.to_owned(),
                    ..UpstreamTotals::default()
                },
            });
        }
        self.sources = kept;
    }

    /// Replaces one source's totals (a journal record's copy).
    pub fn restore(&mut self, totals: UpstreamTotals) {
        match self.sources.iter_mut().find(|s| s.name == totals.name) {
            Some(slot) => *slot = totals,
            None => self.sources.push(totals),
        }
    }

    /// Accounts one successful reading of source `name`. `local_wan` is
    /// what netmeter's own WAN counted over the same interval, when the
    /// double-NAT difference is wanted.
    pub fn ingest(
        &mut self,
        name: &str,
        kind: &str,
        now: Moment,
        reading: &Reading,
        local_wan: Option<RxTx<u64>>,
    ) {
        let source = match self.sources.iter().position(|s| s.name == name) {
            Some(at) => &mut self.sources[at],
            None => {
                self.sources.push(UpstreamTotals {
                    name: name.to_owned(),
                    ..UpstreamTotals::default()
                });
                self.sources.last_mut().expect("just pushed")
            }
        };
        source.ingest(kind, now, reading, local_wan);
    }
}

impl UpstreamTotals {
    fn ingest(&mut self, kind: &str, now: Moment, reading: &Reading, local_wan: Option<RxTx<u64>>) {
        kind.clone_into(&mut self.kind);
        let elapsed = (self.last_seen > 0).then(|| Elapsed {
            secs: now.unix_secs.saturating_sub(self.last_seen),
            ms: self
                .read_ms
                .map_or(0, |ms| now.monotonic_ms.saturating_sub(ms)),
        });
        if self.first_seen == 0 {
            self.first_seen = now.unix_secs;
        }
        self.last_seen = now.unix_secs;
        self.read_ms = Some(now.monotonic_ms);
        if let Some(counters) = &reading.wan {
            let added = self.wan.get_or_insert_default().ingest(counters, elapsed);
            if let (Some(local), Some(e)) = (local_wan, elapsed) {
                self.bypass
                    .get_or_insert_default()
                    .credit(added, local, e.ms);
            }
        }
        for (name, counters) in &reading.interfaces {
            let at = match self.interfaces.iter().position(|(n, _)| n == name) {
                Some(at) => at,
                None if self.interfaces.len() < MAX_INTERFACES_PER_SOURCE => {
                    self.interfaces
                        .push((name.clone(), SeriesTotals::default()));
                    self.interfaces.len() - 1
                }
                None => continue,
            };
            self.interfaces[at].1.ingest(counters, elapsed);
        }
        for device in &reading.devices {
            let at = match self.devices.iter().position(|d| d.mac == device.mac) {
                Some(at) => at,
                None => {
                    if self.devices.len() >= MAX_DEVICES_PER_SOURCE {
                        let oldest = (0..self.devices.len())
                            .min_by_key(|&i| self.devices[i].last_seen)
                            .expect("full, so not empty");
                        self.devices.swap_remove(oldest);
                    }
                    self.devices.push(UpstreamDevice {
                        mac: device.mac,
                        ..UpstreamDevice::default()
                    });
                    self.devices.len() - 1
                }
            };
            let slot = &mut self.devices[at];
            let counters = Counters {
                rx_bytes: device.rx_bytes,
                tx_bytes: device.tx_bytes,
                width: device.width,
            };
            // A device missing from the last reading has no interval of its own.
            let own = elapsed.filter(|_| slot.last_seen != 0);
            slot.totals.ingest(&counters, own);
            slot.last_seen = now.unix_secs;
            if device.ip.is_some() {
                slot.ip = device.ip;
            }
            if device.hostname.is_some() {
                slot.hostname.clone_from(&device.hostname);
            }
        }
        // Devices the router no longer lists are idle, not moving.
        for device in &mut self.devices {
            if device.last_seen != now.unix_secs {
                device.totals.rx_rate = 0;
                device.totals.tx_rate = 0;
            }
        }
        self.line.clone_from(&reading.line);
    }

    /// History series names: `<source>/wan` and `<source>/<interface>`. A
    /// slash never occurs in a Linux interface name or a source (UCI)
    /// name, so these clash with no local interface and no other source.
    pub fn series(&self) -> impl Iterator<Item = (String, RxTx<u64>)> + '_ {
        let wan = self.wan.iter().map(|w| ("wan".to_owned(), w));
        let others = self.interfaces.iter().map(|(n, t)| (n.clone(), t));
        wan.chain(others).map(|(series, t)| {
            (
                format!("{}/{series}", self.name),
                RxTx::new(t.rx_bytes(), t.tx_bytes()),
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::upstream::sources::DeviceReading;
    use CounterWidth::{Bits32, Bits64};

    const TOP: u64 = u32::MAX as u64;

    fn at(secs: u64) -> Moment {
        Moment {
            monotonic_ms: secs * 1000,
            unix_secs: 1_760_000_000 + secs,
        }
    }

    fn wan(rx: u64, tx: u64, width: CounterWidth) -> Reading {
        Reading {
            wan: Some(Counters {
                rx_bytes: rx,
                tx_bytes: tx,
                width,
            }),
            ..Reading::default()
        }
    }

    /// Feeds `(second, rx)` readings of one width and returns the WAN's rx total.
    fn run(width: CounterWidth, readings: &[(u64, u64)]) -> u64 {
        let mut accounts = UpstreamAccounts::default();
        for &(secs, rx) in readings {
            accounts.ingest("isp", "igd", at(secs), &wan(rx, 0, width), None);
        }
        accounts
            .get("isp")
            .unwrap()
            .wan
            .as_ref()
            .unwrap()
            .rx_bytes()
    }

    #[test]
    fn the_first_reading_counts_nothing_and_growth_counts_in_full() {
        assert_eq!(run(Bits64, &[(0, 5_000_000)]), 0);
        assert_eq!(run(Bits64, &[(0, 5_000_000), (60, 7_000_000)]), 2_000_000);
    }

    #[test]
    fn a_32_bit_counter_wraps_from_near_the_top() {
        let before = TOP - 1_000;
        assert_eq!(
            run(Bits32, &[(0, before - 500), (60, before), (120, 4_000)]),
            500 + 1_001 + 4_000
        );
    }

    #[test]
    fn a_32_bit_drop_from_mid_range_is_a_reboot_not_a_wrap() {
        // A wrap would claim about 3 GiB that never flowed.
        assert_eq!(
            run(Bits32, &[(0, 1 << 30), ((60), (1 << 30) + 10), (120, 300)]),
            10 + 300
        );
    }

    #[test]
    fn a_64_bit_drop_is_a_reboot_and_counts_what_the_router_counted_since() {
        assert_eq!(
            run(Bits64, &[(0, 10 << 30), (60, (10 << 30) + 7), (120, 1_000)]),
            7 + 1_000
        );
    }

    #[test]
    fn a_lone_zero_reading_is_skipped() {
        assert_eq!(run(Bits64, &[(0, 1_000), (60, 0), (120, 1_500)]), 500);
        // Zero twice, then growth from zero: the router really started over.
        assert_eq!(run(Bits64, &[(0, 1_000), (60, 0), (120, 0), (180, 40)]), 40);
        // A single zero followed by a smaller value: a reboot seen late.
        assert_eq!(run(Bits64, &[(0, 1_000), (60, 0), (120, 300)]), 300);
    }

    #[test]
    fn a_wrap_that_would_exceed_10_gbit_per_second_is_a_reset() {
        // 4 GiB in one second is not plausible even from near the top.
        assert_eq!(run(Bits32, &[(0, TOP - 10), (1, 1 << 31)]), 1 << 31);
    }

    #[test]
    fn rates_are_bytes_per_second_over_this_runs_interval() {
        let mut accounts = UpstreamAccounts::default();
        accounts.ingest("isp", "igd", at(0), &wan(0, 0, Bits64), None);
        accounts.ingest("isp", "igd", at(10), &wan(10_000, 2_000, Bits64), None);
        let w = accounts.get("isp").unwrap().wan.clone().unwrap();
        assert_eq!((w.rx_rate, w.tx_rate), (1_000, 200));
    }

    #[test]
    fn totals_continue_after_a_restart_from_the_routers_last_raw_value() {
        let mut accounts = UpstreamAccounts::default();
        accounts.ingest("isp", "igd", at(0), &wan(1_000, 0, Bits64), None);
        accounts.ingest("isp", "igd", at(60), &wan(2_000, 0, Bits64), None);
        let bytes = postcard::to_allocvec(&accounts).unwrap();
        let mut restored: UpstreamAccounts = postcard::from_bytes(&bytes).unwrap();
        // netmeter was down for an hour; the router counted on.
        let later = Moment {
            monotonic_ms: 5,
            unix_secs: at(3660).unix_secs,
        };
        restored.ingest("isp", "igd", later, &wan(9_000, 0, Bits64), None);
        let w = restored.get("isp").unwrap().wan.clone().unwrap();
        assert_eq!(w.rx_bytes(), 8_000);
        assert_eq!(w.rx_rate, 0, "no interval of this run yet");
    }

    #[test]
    fn bypass_is_upstream_minus_local_and_never_goes_down() {
        let mut accounts = UpstreamAccounts::default();
        let mut step = |secs, up: u64, local: [u64; 2]| {
            accounts.ingest(
                "isp",
                "fritzbox",
                at(secs),
                &wan(up, up, Bits64),
                Some(RxTx::new(local[0], local[1])),
            );
            accounts
                .get("isp")
                .unwrap()
                .bypass
                .clone()
                .unwrap_or_default()
        };
        step(0, 0, [0, 0]);
        let b = step(10, 1_000, [600, 1_100]);
        assert_eq!((b.rx_bytes, b.tx_bytes), (400, 0));
        assert_eq!((b.rx_rate, b.tx_rate), (40, 0));
        // Local read a little late last time: upstream catches up now.
        let b = step(20, 1_500, [400, 300]);
        assert_eq!((b.rx_bytes, b.tx_bytes), (500, 100));
        // Skew the other way never makes a total go down.
        let b = step(30, 1_500, [200, 0]);
        assert_eq!((b.rx_bytes, b.tx_bytes), (500, 100));
        let b = step(40, 2_500, [700, 1_000]);
        assert_eq!((b.rx_bytes, b.tx_bytes), (600, 100));
    }

    #[test]
    fn devices_are_kept_by_mac_with_their_latest_names() {
        let device = |mac: u8, rx, host: Option<&str>| DeviceReading {
            mac: Mac([2, 0, 0, 0, 0, mac]),
            ip: None,
            hostname: host.map(str::to_owned),
            rx_bytes: rx,
            tx_bytes: 0,
            width: Bits32,
        };
        let mut accounts = UpstreamAccounts::default();
        let reading = |devices| Reading {
            devices,
            ..Reading::default()
        };
        accounts.ingest(
            "ap",
            "tplink",
            at(0),
            &reading(vec![device(1, 100, Some("tv"))]),
            None,
        );
        accounts.ingest(
            "ap",
            "tplink",
            at(30),
            &reading(vec![device(1, 400, None), device(2, 50, None)]),
            None,
        );
        // The router rebooted: its per-host table starts over.
        accounts.ingest("ap", "tplink", at(60), &reading(vec![]), None);
        accounts.ingest(
            "ap",
            "tplink",
            at(90),
            &reading(vec![device(1, 70, None)]),
            None,
        );
        let source = accounts.get("ap").unwrap();
        let one = &source.devices[0];
        assert_eq!(
            (one.totals.rx_bytes(), one.hostname.as_deref()),
            (300 + 70, Some("tv"))
        );
        assert_eq!(source.devices[1].totals.rx_bytes(), 0);
    }

    #[test]
    fn the_device_table_is_bounded() {
        let mut accounts = UpstreamAccounts::default();
        for round in 0..2u64 {
            let devices = (0..MAX_DEVICES_PER_SOURCE as u64)
                .map(|i| DeviceReading {
                    mac: Mac((i + round * 100_000).to_be_bytes()[2..].try_into().unwrap()),
                    ip: None,
                    hostname: None,
                    rx_bytes: 1,
                    tx_bytes: 1,
                    width: Bits64,
                })
                .collect();
            let reading = Reading {
                devices,
                ..Reading::default()
            };
            accounts.ingest("ap", "tplink", at(round * 30), &reading, None);
        }
        assert_eq!(
            accounts.get("ap").unwrap().devices.len(),
            MAX_DEVICES_PER_SOURCE
        );
    }

    #[test]
    fn configured_sources_keep_their_totals_and_order() {
        let mut accounts = UpstreamAccounts::default();
        accounts.ingest("a", "igd", at(0), &wan(1, 1, Bits64), None);
        accounts.ingest("b", "igd", at(0), &wan(1, 1, Bits64), None);
        accounts.retain_configured(["b", "c"]);
        let names: Vec<_> = accounts.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["b", "c"]);
        assert!(accounts.get("b").unwrap().wan.is_some());
    }

    #[test]
    fn series_are_named_source_slash_interface() {
        let mut accounts = UpstreamAccounts::default();
        let mut reading = wan(0, 0, Bits64);
        reading.interfaces.push((
            "WIRED".into(),
            Counters {
                rx_bytes: 0,
                tx_bytes: 0,
                width: Bits64,
            },
        ));
        accounts.ingest("isp", "asus", at(0), &reading, None);
        let names: Vec<_> = accounts
            .get("isp")
            .unwrap()
            .series()
            .map(|(n, _)| n)
            .collect();
        assert_eq!(names, ["isp/wan", "isp/WIRED"]);
    }
}
