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
//! so it never goes down and clock skew does not pile up).
//!
//! A counter that fell either wrapped or started over. Each reading is
//! judged as a whole first (`Verdict`): the router's uptime going back
//! (or shorter than the time since the last reading) is a reboot; without
//! an uptime, every counter that had counted falling at once is one. A
//! reboot never wraps. Otherwise a fall is a wrap only when the growth it
//! implies fits `option max_rate` over the interval; a device the router
//! had stopped listing, or a fall after a held zero, started over; a lone
//! counter (nothing to compare with, no uptime) wraps only from the upper
//! half of 32 bits. Each decision is logged once per reading and the
//! latest reset is kept for the API (`last_reset`). History series are named
//! `SOURCE/wan` and `SOURCE/IFACE`: no Linux interface name has a `/`, so
//! they clash with no local interface. The store keeps the accounts as
//! bytes (`store::state::UpstreamBytes`); `encode` and `decode` here are the
//! only code that knows their layout.

use crate::mac::Mac;
use serde::{Deserialize, Serialize};

use crate::account::{CounterWidth, DEFAULT_MAX_BYTES_PER_SEC, MonotonicCounter, Observation};
use crate::clock::Moment;
use crate::config::upstream::UpstreamKind;
use crate::rxtx::RxTx;
use crate::store::state::UpstreamBytes;
use crate::upstream::DeviceFigure;
use crate::upstream::sources::{Counters, Reading};

/// Devices kept per source; the longest unseen go first.
pub const MAX_DEVICES_PER_SOURCE: usize = 4096;
/// Interfaces kept per source.
pub const MAX_INTERFACES_PER_SOURCE: usize = 64;

/// A lone 32-bit counter (no uptime, no other counter to compare with)
/// that went down is a wrap only when the reading before was in the
/// upper half: a router that rebooted mid-range is not credited with the
/// 2–4 GiB a wrap would imply.
const WRAP_FLOOR_32: u64 = 1 << 31;

/// Decisions named per log line at most; the rest are counted.
const NAMED_PER_LINE: usize = 3;

/// Why counters were taken to have started over rather than wrapped.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ResetReason {
    /// The router's uptime went back, or is shorter than the time since
    /// the last reading: it rebooted.
    Uptime,
    /// No uptime, and every counter that had counted fell in one reading.
    AllFell,
    /// One counter fell, and a wrap would mean more than `max_rate`.
    MaxRate,
    /// A device the router had stopped listing came back lower.
    Relisted,
    /// A zero was held back as a glitch, and the next reading was lower.
    ZeroThenLower,
    /// A lone 32-bit counter fell from its lower half.
    LowerHalf,
}

impl ResetReason {
    /// The API's name for it (`last_reset.reason`).
    pub fn name(self) -> &'static str {
        match self {
            Self::Uptime => "uptime",
            Self::AllFell => "all_counters_fell",
            Self::MaxRate => "max_rate",
            Self::Relisted => "relisted",
            Self::ZeroThenLower => "zero_then_lower",
            Self::LowerHalf => "lower_half",
        }
    }
}

/// The latest reset of a source, for `/api/v1/upstream`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResetNote {
    /// Unix seconds of the reading.
    pub at: u64,
    pub reason: ResetReason,
    /// What was seen, for a person: "uptime went back from 86400 s to 40 s".
    pub detail: String,
}

/// How one reading of a source is judged as a whole, before its counters.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Verdict {
    /// The router restarted: counters that fell started over.
    Rebooted(ResetReason, String),
    /// The uptime says the router did not restart: a fall may be a wrap.
    Vouched,
    /// No uptime and not every counter fell; `lone`: at most one counter
    /// had counted, so falls cannot be compared.
    Unknown { lone: bool },
}

/// What one counter needs to judge a fall.
#[derive(Clone, Copy, Debug)]
struct Judge<'a> {
    verdict: &'a Verdict,
    /// The most a counter can grow by over this interval.
    plausible: u64,
    /// Listed again after missing from the last reading.
    relisted: bool,
}

/// One counter's decision worth telling.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Outcome {
    Counted,
    Wrapped,
    Reset(ResetReason),
}

/// The decisions of one reading, gathered so each kind is logged once.
#[derive(Debug, Default)]
struct Notes {
    wraps: Vec<String>,
    resets: Vec<(ResetReason, String)>,
}

impl Notes {
    fn note(&mut self, label: &str, direction: &str, outcome: Outcome, last: u64, raw: u64) {
        match outcome {
            Outcome::Counted => {}
            Outcome::Wrapped => self
                .wraps
                .push(format!("{label} {direction} {last} -> {raw}")),
            Outcome::Reset(reason) => self
                .resets
                .push((reason, format!("{label} {direction} {last} -> {raw}"))),
        }
    }
}

/// "a, b, c and 4 more".
fn listed(items: &[String]) -> String {
    let mut text = items[..items.len().min(NAMED_PER_LINE)].join(", ");
    if items.len() > NAMED_PER_LINE {
        text.push_str(&format!(" and {} more", items.len() - NAMED_PER_LINE));
    }
    text
}

/// The width's raw value, as [`MonotonicCounter`] sees it.
fn masked(raw: u64, width: CounterWidth) -> u64 {
    match width {
        CounterWidth::Bits32 => raw & u64::from(u32::MAX),
        CounterWidth::Bits64 => raw,
    }
}

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

    /// Accounts one raw reading; returns what it added and how it was
    /// explained.
    fn observe(&mut self, raw: u64, width: CounterWidth, judge: Judge<'_>) -> (u64, Outcome) {
        let raw = masked(raw, width);
        let last = self.counter.last_raw();
        let rebooted = match judge.verdict {
            Verdict::Rebooted(reason, _) => Some(*reason),
            _ => None,
        };
        // After a reboot a zero is real; otherwise a lone one may be a glitch.
        if rebooted.is_none() && raw == 0 && last.is_some_and(|l| l > 0) && !self.held_zero {
            self.held_zero = true;
            return (0, Outcome::Counted);
        }
        let was_held = std::mem::take(&mut self.held_zero);
        let fell = last.is_some_and(|l| raw < l);
        let lone = matches!(judge.verdict, Verdict::Unknown { lone: true });
        let known = if !fell {
            None
        } else if let Some(reason) = rebooted {
            Some(reason)
        } else if judge.relisted {
            Some(ResetReason::Relisted)
        } else if was_held {
            Some(ResetReason::ZeroThenLower)
        } else if lone && width == CounterWidth::Bits32 && last.is_some_and(|l| l < WRAP_FLOOR_32) {
            Some(ResetReason::LowerHalf)
        } else {
            None
        };
        let seen = self
            .counter
            .observe(raw, width, known.is_some(), judge.plausible);
        let (added, outcome) = match seen {
            // The router counted this before netmeter first read it: not ours to credit.
            Observation::FirstSeen(_) => (0, Outcome::Counted),
            Observation::Delta(d) => (d, Outcome::Counted),
            Observation::Wrapped(d) => (d, Outcome::Wrapped),
            Observation::Reset(d) => (d, Outcome::Reset(known.unwrap_or(ResetReason::MaxRate))),
        };
        self.total = self.total.saturating_add(added);
        (added, outcome)
    }

    /// The last raw reading (a held-back zero is not one).
    fn last_raw(&self) -> Option<u64> {
        self.counter.last_raw()
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
    fn ingest(
        &mut self,
        counters: &Counters,
        elapsed: Option<Elapsed>,
        judge: Judge<'_>,
        label: &str,
        notes: &mut Notes,
    ) -> RxTx<u64> {
        let last = (self.rx.last_raw(), self.tx.last_raw());
        let (rx, rx_outcome) = self.rx.observe(counters.rx_bytes, counters.width, judge);
        let (tx, tx_outcome) = self.tx.observe(counters.tx_bytes, counters.width, judge);
        let width = counters.width;
        notes.note(
            label,
            "rx",
            rx_outcome,
            last.0.unwrap_or(0),
            masked(counters.rx_bytes, width),
        );
        notes.note(
            label,
            "tx",
            tx_outcome,
            last.1.unwrap_or(0),
            masked(counters.tx_bytes, width),
        );
        let added = RxTx { rx, tx };
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
    /// The router's uptime at the last reading that gave one. Saved after
    /// the sources (see [`UpstreamAccounts::encode`]), not in this layout.
    #[serde(skip)]
    pub uptime_secs: Option<u64>,
    /// The latest reset decided, saved like `uptime_secs`.
    #[serde(skip)]
    pub last_reset: Option<ResetNote>,
}

/// What each source saves after the list (see [`UpstreamAccounts::encode`]).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
struct Extras {
    uptime_secs: Option<u64>,
    last_reset: Option<ResetNote>,
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
    /// ends a state file and a journal record, then, when any source has
    /// one, each source's uptime and latest reset (`Extras`). Appended
    /// rather than in the list so files written before read as they were,
    /// and an older netmeter reads these (postcard ignores what follows).
    pub fn encode(&self) -> Vec<u8> {
        let mut bytes = postcard::to_allocvec(self).expect("encoding into memory cannot fail");
        let extras: Vec<Extras> = self
            .sources
            .iter()
            .map(|s| Extras {
                uptime_secs: s.uptime_secs,
                last_reset: s.last_reset.clone(),
            })
            .collect();
        if extras.iter().any(|e| *e != Extras::default()) {
            bytes.extend(postcard::to_allocvec(&extras).expect("encoding into memory cannot fail"));
        }
        bytes
    }

    /// The accounts the store saved; an error names what is wrong.
    pub fn decode(saved: &UpstreamBytes) -> Result<Self, String> {
        let bad = |e: postcard::Error| format!("the saved upstream totals do not decode: {e}");
        let (mut accounts, rest): (Self, _) =
            postcard::take_from_bytes(saved.bytes()).map_err(bad)?;
        if !rest.is_empty() {
            let extras: Vec<Extras> = postcard::from_bytes(rest).map_err(bad)?;
            for (source, extra) in accounts.sources.iter_mut().zip(extras) {
                source.uptime_secs = extra.uptime_secs;
                source.last_reset = extra.last_reset;
            }
        }
        Ok(accounts)
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

    /// Accounts one successful reading of source `name` with the
    /// protocol's default `max_rate`; see [`Self::ingest_limited`].
    pub fn ingest(
        &mut self,
        name: &str,
        kind: &str,
        now: Moment,
        reading: &Reading,
        local_wan: Option<RxTx<u64>>,
    ) -> Vec<String> {
        let max_rate = UpstreamKind::named(kind).map_or(DEFAULT_MAX_BYTES_PER_SEC, |k| {
            k.spec().max_rate_mbit * 125_000
        });
        self.ingest_limited(name, kind, now, reading, local_wan, max_rate)
    }

    /// Accounts one successful reading of source `name`. `local_wan` is
    /// what netmeter's own WAN counted over the same interval, when the
    /// double-NAT difference is wanted; `max_rate` (bytes per second) is
    /// the most a counter can grow by, which tells wraps from resets.
    /// Returns the decisions worth logging, one line each.
    pub fn ingest_limited(
        &mut self,
        name: &str,
        kind: &str,
        now: Moment,
        reading: &Reading,
        local_wan: Option<RxTx<u64>>,
        max_rate: u64,
    ) -> Vec<String> {
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
        source.ingest(kind, now, reading, local_wan, max_rate)
    }
}

impl UpstreamTotals {
    fn ingest(
        &mut self,
        kind: &str,
        now: Moment,
        reading: &Reading,
        local_wan: Option<RxTx<u64>>,
        max_rate: u64,
    ) -> Vec<String> {
        kind.clone_into(&mut self.kind);
        let elapsed = (self.last_seen > 0).then(|| Elapsed {
            secs: now.unix_secs.saturating_sub(self.last_seen),
            ms: self
                .read_ms
                .map_or(0, |ms| now.monotonic_ms.saturating_sub(ms)),
        });
        let verdict = self.verdict(reading, elapsed);
        let previous = self.last_seen;
        let plausible = max_rate.saturating_mul(elapsed.map_or(0, |e| e.secs).max(1));
        let judge = Judge {
            verdict: &verdict,
            plausible,
            relisted: false,
        };
        let mut notes = Notes::default();
        if self.first_seen == 0 {
            self.first_seen = now.unix_secs;
        }
        self.last_seen = now.unix_secs;
        self.read_ms = Some(now.monotonic_ms);
        if reading.uptime_secs.is_some() {
            self.uptime_secs = reading.uptime_secs;
        }
        if let Some(counters) = &reading.wan {
            let added = self
                .wan
                .get_or_insert_default()
                .ingest(counters, elapsed, judge, "wan", &mut notes);
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
            let label = format!("interface {name}");
            self.interfaces[at]
                .1
                .ingest(counters, elapsed, judge, &label, &mut notes);
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
            // A device missing from the last reading has no interval of its
            // own, and the router started its counters over when it left.
            let own = elapsed.filter(|_| slot.last_seen != 0);
            let judge = Judge {
                relisted: slot.last_seen != previous,
                ..judge
            };
            let label = format!("device {}", device.mac);
            slot.totals
                .ingest(&counters, own, judge, &label, &mut notes);
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
        self.decided(now.unix_secs, &verdict, notes)
    }

    /// Judges a reading as a whole: a reboot by the uptime or, without
    /// one, by every counter that had counted falling at once.
    fn verdict(&self, reading: &Reading, elapsed: Option<Elapsed>) -> Verdict {
        if let Some(up) = reading.uptime_secs {
            if let Some(before) = self.uptime_secs.filter(|&b| up < b) {
                return Verdict::Rebooted(
                    ResetReason::Uptime,
                    format!("the router's uptime went back from {before} s to {up} s"),
                );
            }
            // Up for less than the time since the last reading (netmeter
            // was down, or the router was back before the next reading),
            // with slack for the two clocks.
            if let Some(e) = elapsed {
                let expected = self.uptime_secs.unwrap_or(0).saturating_add(e.secs);
                let slack = 60 + e.secs / 50;
                if up.saturating_add(slack) < expected {
                    return Verdict::Rebooted(
                        ResetReason::Uptime,
                        format!(
                            "the router has been up {up} s, less than the {} s since the last \
                             reading",
                            e.secs
                        ),
                    );
                }
            }
            return Verdict::Vouched;
        }
        // Every counter seen before and now, with its last raw value.
        let mut pairs: Vec<(Option<u64>, u64)> = Vec::new();
        let mut add = |totals: &SeriesTotals, c: &Counters| {
            pairs.push((totals.rx.last_raw(), masked(c.rx_bytes, c.width)));
            pairs.push((totals.tx.last_raw(), masked(c.tx_bytes, c.width)));
        };
        if let (Some(totals), Some(c)) = (&self.wan, &reading.wan) {
            add(totals, c);
        }
        for (name, c) in &reading.interfaces {
            if let Some((_, totals)) = self.interfaces.iter().find(|(n, _)| n == name) {
                add(totals, c);
            }
        }
        for d in &reading.devices {
            let listed = self
                .devices
                .iter()
                .find(|s| s.mac == d.mac && s.last_seen == self.last_seen && s.last_seen != 0);
            if let Some(slot) = listed {
                let c = Counters {
                    rx_bytes: d.rx_bytes,
                    tx_bytes: d.tx_bytes,
                    width: d.width,
                };
                add(&slot.totals, &c);
            }
        }
        let counted: Vec<(u64, u64)> = pairs
            .into_iter()
            .filter_map(|(last, raw)| last.filter(|&l| l > 0).map(|l| (l, raw)))
            .collect();
        let fell = counted.iter().filter(|&&(l, r)| 0 < r && r < l).count();
        let zero = counted.iter().filter(|&&(_, r)| r == 0).count();
        // All zero is left to the zero-glitch rule: FRITZ!OS sends that alone.
        if counted.len() >= 2 && fell > 0 && fell + zero == counted.len() {
            return Verdict::Rebooted(
                ResetReason::AllFell,
                format!(
                    "all {} counters that had counted fell in one reading",
                    counted.len()
                ),
            );
        }
        Verdict::Unknown {
            lone: counted.len() < 2,
        }
    }

    /// The log lines for a reading's decisions; keeps the latest reset.
    fn decided(&mut self, at: u64, verdict: &Verdict, notes: Notes) -> Vec<String> {
        let mut lines = Vec::new();
        if let Verdict::Rebooted(reason, why) = verdict {
            let fell: Vec<String> = notes.resets.iter().map(|(_, c)| c.clone()).collect();
            let counters = match fell.len() {
                0 => "no counter fell".to_owned(),
                _ => format!("started over: {}", listed(&fell)),
            };
            // "restart": an igd or snmp uptime is the connection's or the
            // agent's, which can restart without the router.
            lines.push(format!("restart seen ({why}): {counters}"));
            self.last_reset = Some(ResetNote {
                at,
                reason: *reason,
                detail: why.clone(),
            });
        } else if !notes.resets.is_empty() {
            let each: Vec<String> = notes
                .resets
                .iter()
                .map(|(reason, c)| format!("{c} ({})", reason.name()))
                .collect();
            lines.push(format!(
                "counters started over, not wrapped: {}",
                listed(&each)
            ));
            let (reason, counter) = &notes.resets[0];
            let why = match reason {
                ResetReason::MaxRate => "a wrap would mean more than option max_rate",
                ResetReason::Relisted => "the router had stopped listing the device",
                ResetReason::ZeroThenLower => "a zero, then a lower reading",
                ResetReason::LowerHalf => "a lone 32-bit counter fell from its lower half",
                ResetReason::Uptime | ResetReason::AllFell => "the router restarted",
            };
            self.last_reset = Some(ResetNote {
                at,
                reason: *reason,
                detail: format!("{counter}: {why}"),
            });
        }
        if !notes.wraps.is_empty() {
            lines.push(format!("32-bit counters wrapped: {}", listed(&notes.wraps)));
        }
        lines
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

    /// A reading of a WAN and one device, both directions 32-bit, with
    /// the router's uptime when given.
    fn router(uptime: Option<u64>, wan: [u64; 2], host: [u64; 2]) -> Reading {
        Reading {
            wan: Some(Counters {
                rx_bytes: wan[0],
                tx_bytes: wan[1],
                width: Bits32,
            }),
            devices: vec![DeviceReading {
                mac: Mac([2, 0, 0, 0, 0, 1]),
                ip: None,
                hostname: None,
                rx_bytes: host[0],
                tx_bytes: host[1],
                width: Bits32,
            }],
            uptime_secs: uptime,
            ..Reading::default()
        }
    }

    fn host_rx(accounts: &UpstreamAccounts) -> u64 {
        accounts.get("ap").unwrap().devices[0].totals.rx_bytes()
    }

    const HIGH: u64 = 3 << 30;

    #[test]
    fn uptime_going_back_is_a_reboot_even_from_above_2_gib() {
        let mut accounts = UpstreamAccounts::default();
        accounts.ingest(
            "ap",
            "igd",
            at(0),
            &router(Some(900), [HIGH, 10], [HIGH, 10]),
            None,
        );
        let logged = accounts.ingest(
            "ap",
            "igd",
            at(60),
            &router(Some(40), [500, 20], [700, 20]),
            None,
        );
        assert_eq!(
            host_rx(&accounts),
            700,
            "what the host moved since the reboot"
        );
        let source = accounts.get("ap").unwrap();
        let reset = source.last_reset.clone().unwrap();
        assert_eq!(
            (reset.at, reset.reason),
            (at(60).unix_secs, ResetReason::Uptime)
        );
        assert!(
            reset.detail.contains("from 900 s to 40 s"),
            "{}",
            reset.detail
        );
        assert_eq!(source.uptime_secs, Some(40));
        assert_eq!(logged.len(), 1, "{logged:?}");
        assert!(
            logged[0].starts_with("restart seen (the router's uptime"),
            "{logged:?}"
        );
        assert!(logged[0].contains("started over: wan rx"), "{logged:?}");
    }

    #[test]
    fn an_uptime_shorter_than_the_time_since_the_last_reading_is_a_reboot() {
        // Up 30 s at the second reading, an hour after the first: it rebooted
        // meanwhile, though 30 s is more than the 10 s seen before.
        let mut accounts = UpstreamAccounts::default();
        accounts.ingest(
            "ap",
            "igd",
            at(0),
            &router(Some(10), [HIGH, 10], [HIGH, 10]),
            None,
        );
        accounts.ingest(
            "ap",
            "igd",
            at(3600),
            &router(Some(30), [500, 5], [700, 5]),
            None,
        );
        assert_eq!(host_rx(&accounts), 700);
        let reset = accounts.get("ap").unwrap().last_reset.clone().unwrap();
        assert!(
            reset.detail.contains("less than the 3600 s"),
            "{}",
            reset.detail
        );
    }

    #[test]
    fn an_uptime_that_carries_on_lets_a_lone_fall_from_mid_range_be_a_wrap() {
        let mut accounts = UpstreamAccounts::default();
        accounts.ingest(
            "ap",
            "igd",
            at(0),
            &router(Some(100), [1 << 30, 0], [5, 0]),
            None,
        );
        accounts.ingest(
            "ap",
            "igd",
            at(60),
            &router(Some(160), [1_000, 0], [5, 0]),
            None,
        );
        let wan = accounts.get("ap").unwrap().wan.clone().unwrap();
        assert_eq!(wan.rx_bytes(), TOP + 1 - (1 << 30) + 1_000);
        assert_eq!(accounts.get("ap").unwrap().last_reset, None);
    }

    #[test]
    fn without_uptime_every_counter_falling_at_once_is_a_reboot() {
        let mut accounts = UpstreamAccounts::default();
        accounts.ingest(
            "ap",
            "tplink",
            at(0),
            &router(None, [HIGH, HIGH], [HIGH, 4_000]),
            None,
        );
        // tx of the WAN reads zero: a reboot's counters may.
        accounts.ingest(
            "ap",
            "tplink",
            at(30),
            &router(None, [100, 0], [300, 50]),
            None,
        );
        assert_eq!(host_rx(&accounts), 300);
        let reset = accounts.get("ap").unwrap().last_reset.clone().unwrap();
        assert_eq!(reset.reason, ResetReason::AllFell);
        assert!(reset.detail.contains("all 4 counters"), "{}", reset.detail);
    }

    #[test]
    fn without_uptime_one_counter_falling_while_others_grow_is_a_wrap() {
        let mut accounts = UpstreamAccounts::default();
        accounts.ingest(
            "ap",
            "tplink",
            at(0),
            &router(None, [10, 10], [TOP - 99, 10]),
            None,
        );
        let logged = accounts.ingest(
            "ap",
            "tplink",
            at(30),
            &router(None, [20, 20], [400, 20]),
            None,
        );
        assert_eq!(host_rx(&accounts), 100 + 400);
        assert_eq!(accounts.get("ap").unwrap().last_reset, None);
        assert_eq!(logged.len(), 1, "{logged:?}");
        assert!(
            logged[0].starts_with("32-bit counters wrapped: device 02:00:00:00:00:01 rx"),
            "{logged:?}"
        );
    }

    #[test]
    fn a_wrap_beyond_max_rate_is_a_reset() {
        // 4 GiB in 30 s is over 1 Gbit/s (tplink's default), under 10 Gbit/s.
        let readings = [
            router(None, [10, 10], [5, 10]),
            router(None, [20, 20], [4, 20]),
        ];
        let mut limited = UpstreamAccounts::default();
        let mut fast = UpstreamAccounts::default();
        for (i, r) in readings.iter().enumerate() {
            let now = at(i as u64 * 30);
            limited.ingest_limited("ap", "tplink", now, r, None, 125_000_000);
            fast.ingest_limited("ap", "tplink", now, r, None, 1_250_000_000);
        }
        assert_eq!(host_rx(&limited), 4);
        let reset = limited.get("ap").unwrap().last_reset.clone().unwrap();
        assert_eq!(reset.reason, ResetReason::MaxRate);
        assert!(reset.detail.contains("max_rate"), "{}", reset.detail);
        assert_eq!(
            host_rx(&fast),
            TOP - 5 + 1 + 4,
            "at 10 Gbit/s it could have wrapped"
        );
    }

    #[test]
    fn a_device_listed_again_lower_started_over() {
        let mut accounts = UpstreamAccounts::default();
        accounts.ingest(
            "ap",
            "tplink",
            at(0),
            &router(None, [10, 10], [HIGH, 10]),
            None,
        );
        let mut gone = router(None, [20, 20], [0, 0]);
        gone.devices.clear();
        accounts.ingest("ap", "tplink", at(30), &gone, None);
        accounts.ingest(
            "ap",
            "tplink",
            at(60),
            &router(None, [30, 30], [700, 5]),
            None,
        );
        assert_eq!(host_rx(&accounts), 700);
        let reset = accounts.get("ap").unwrap().last_reset.clone().unwrap();
        assert_eq!(reset.reason, ResetReason::Relisted);
    }

    #[test]
    fn a_held_zero_then_a_lower_reading_started_over_even_for_32_bits() {
        assert_eq!(run(Bits32, &[(0, HIGH), (60, 0), (120, 300)]), 300);
    }

    #[test]
    fn uptime_and_the_latest_reset_survive_a_save() {
        let mut accounts = UpstreamAccounts::default();
        accounts.ingest(
            "ap",
            "igd",
            at(0),
            &router(Some(900), [HIGH, 10], [HIGH, 10]),
            None,
        );
        accounts.ingest(
            "ap",
            "igd",
            at(60),
            &router(Some(40), [500, 20], [700, 20]),
            None,
        );
        let mut saved = UpstreamBytes::default();
        saved.replace(accounts.encode());
        let back = UpstreamAccounts::decode(&saved).unwrap();
        let (was, is) = (accounts.get("ap").unwrap(), back.get("ap").unwrap());
        assert_eq!(is.uptime_secs, Some(40));
        assert_eq!(is.last_reset, was.last_reset);
        assert!(is.last_reset.is_some());
        assert_eq!(is.devices, was.devices);
        // Without either, the bytes are what they were before these existed.
        let mut plain = UpstreamAccounts::default();
        plain.ingest("isp", "igd", at(0), &wan(1, 1, Bits64), None);
        assert_eq!(plain.encode(), postcard::to_allocvec(&plain).unwrap());
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
