//! `netmeter watch`: per-interface counters and rates sampled N times a
//! second for a given time, straight from the kernel (netstatspy's
//! sampling), as a table or JSON lines.

use super::CliError;
use crate::account::LinkSample;
use crate::collect::links::read_links;
use crate::netlink::{NetlinkSocket, socket::NETLINK_ROUTE};
use argh::FromArgs;
use serde::Serialize;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// Sample interface counters several times a second (from the kernel,
/// no daemon needed).
#[derive(FromArgs)]
#[argh(subcommand, name = "watch")]
pub struct WatchArgs {
    /// only interfaces whose name matches this shell glob (default all)
    #[argh(option)]
    interface: Option<String>,
    /// samples per second, 1 to 100 (default 1)
    #[argh(option, default = "1")]
    frequency: u32,
    /// seconds to sample for, at most 86400 (default: until interrupted)
    #[argh(option)]
    time: Option<u32>,
    /// print one JSON object a sample instead of a table
    #[argh(switch)]
    json: bool,
}

/// One sample: when it was read, and every matching interface. Times are
/// integers (microseconds): no float parser or printer in the core build.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct WatchSample {
    /// Unix time of the reading, in microseconds.
    pub time_us: u64,
    /// Microseconds since the first reading (the baseline before sample 1).
    pub elapsed_us: u64,
    pub interfaces: Vec<WatchInterface>,
}

/// Counters as the kernel has them, and their growth since the reading
/// before (the baseline for the first sample; 0 for an interface first
/// seen now, or whose counters went down).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct WatchInterface {
    pub name: String,
    pub rx_bytes: u64,
    pub tx_bytes: u64,
    pub rx_packets: u64,
    pub tx_packets: u64,
    pub rx_bytes_delta: u64,
    pub tx_bytes_delta: u64,
    pub rx_packets_delta: u64,
    pub tx_packets_delta: u64,
    /// Bytes a second over the interval since the reading before.
    pub rx_rate: u64,
    pub tx_rate: u64,
}

const MAX_FREQUENCY: u32 = 100;
const MAX_TIME: u32 = 86_400;

pub fn run(args: WatchArgs) -> Result<(), CliError> {
    if !(1..=MAX_FREQUENCY).contains(&args.frequency) {
        return Err(CliError::Usage(format!(
            "--frequency {} is out of range: give 1 to {MAX_FREQUENCY} samples a second",
            args.frequency
        )));
    }
    let count = match args.time {
        Some(t) if !(1..=MAX_TIME).contains(&t) => {
            return Err(CliError::Usage(format!(
                "--time {t} is out of range: give 1 to {MAX_TIME} seconds"
            )));
        }
        Some(t) => Some(u64::from(t) * u64::from(args.frequency)),
        None => None,
    };
    let period_us = 1_000_000 / u64::from(args.frequency);
    let mut socket = NetlinkSocket::open(NETLINK_ROUTE)?;
    let read = |socket: &mut NetlinkSocket| -> Result<Vec<LinkSample>, CliError> {
        let mut links = read_links(socket)?;
        if let Some(glob) = &args.interface {
            links.retain(|l| crate::config::glob::glob_match(glob, &l.name));
        }
        Ok(links)
    };
    let start = Instant::now();
    let mut before = by_name(read(&mut socket)?);
    let mut before_at = start;
    if before.is_empty() {
        return Err(CliError::Failed(match &args.interface {
            Some(g) => format!("no interface matches '{g}' (see `ip link`)"),
            None => "the kernel lists no interfaces".into(),
        }));
    }
    let mut out = std::io::stdout().lock();
    use std::io::Write;
    let mut n = 0u64;
    while count.is_none_or(|c| n < c) {
        n += 1;
        // Each sample at its own slot from the start: no drift.
        let due = start + Duration::from_micros(period_us * n);
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
        let links = read(&mut socket)?;
        let at = Instant::now();
        let sample = WatchSample {
            time_us: crate::clock::unix_now_us(),
            elapsed_us: at.duration_since(start).as_micros() as u64,
            interfaces: deltas(&before, &links, at.duration_since(before_at)),
        };
        before = by_name(links);
        before_at = at;
        let text = if args.json {
            serde_json::to_string(&sample).map_err(CliError::Encode)? + "\n"
        } else {
            render(&sample, n == 1)
        };
        // A closed pipe (`| head`) ends the watch quietly.
        if out
            .write_all(text.as_bytes())
            .and_then(|_| out.flush())
            .is_err()
        {
            return Ok(());
        }
    }
    Ok(())
}

fn by_name(links: Vec<LinkSample>) -> BTreeMap<String, LinkSample> {
    links.into_iter().map(|l| (l.name.clone(), l)).collect()
}

/// Each interface's growth since `before`, and its rates over `interval`.
fn deltas(
    before: &BTreeMap<String, LinkSample>,
    now: &[LinkSample],
    interval: Duration,
) -> Vec<WatchInterface> {
    let us = interval.as_micros().max(1) as u64;
    now.iter()
        .map(|l| {
            let c = &l.counters;
            let d = |f: fn(&crate::account::LinkCounters) -> u64| match before.get(&l.name) {
                Some(b) if b.ifindex == l.ifindex => f(c).saturating_sub(f(&b.counters)),
                _ => 0,
            };
            let (rx_bd, tx_bd) = (d(|c| c.rx_bytes), d(|c| c.tx_bytes));
            let rate = |v: u64| (u128::from(v) * 1_000_000 / u128::from(us)) as u64;
            WatchInterface {
                name: l.name.clone(),
                rx_bytes: c.rx_bytes,
                tx_bytes: c.tx_bytes,
                rx_packets: c.rx_packets,
                tx_packets: c.tx_packets,
                rx_bytes_delta: rx_bd,
                tx_bytes_delta: tx_bd,
                rx_packets_delta: d(|c| c.rx_packets),
                tx_packets_delta: d(|c| c.tx_packets),
                rx_rate: rate(rx_bd),
                tx_rate: rate(tx_bd),
            }
        })
        .collect()
}

/// One line per interface: the time, name, rates and growth.
fn render(sample: &WatchSample, header: bool) -> String {
    let mut out = String::new();
    if header {
        out.push_str(&format!(
            "{:>12}  {:<12} {:>14} {:>14} {:>10} {:>10}\n",
            "elapsed s", "interface", "rx rate", "tx rate", "rx bytes", "tx bytes"
        ));
    }
    for i in &sample.interfaces {
        out.push_str(&format!(
            "{:>8}.{:03}  {:<12} {:>14} {:>14} {:>10} {:>10}\n",
            sample.elapsed_us / 1_000_000,
            sample.elapsed_us / 1000 % 1000,
            i.name,
            super::format::rate(i.rx_rate),
            super::format::rate(i.tx_rate),
            i.rx_bytes_delta,
            i.tx_bytes_delta
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::account::{CounterWidth, LinkCounters};

    fn link(name: &str, ifindex: u32, rx: u64) -> LinkSample {
        LinkSample {
            ifindex,
            name: name.into(),
            width: CounterWidth::Bits64,
            header_bytes: 14,
            master: None,
            counters: LinkCounters {
                rx_bytes: rx,
                rx_packets: rx / 100,
                ..LinkCounters::default()
            },
        }
    }

    #[test]
    fn deltas_and_rates_are_since_the_reading_before() {
        let before = by_name(vec![link("wan", 2, 1000)]);
        let got = deltas(&before, &[link("wan", 2, 6000)], Duration::from_millis(500));
        assert_eq!((got[0].rx_bytes, got[0].rx_bytes_delta), (6000, 5000));
        assert_eq!((got[0].rx_packets_delta, got[0].rx_rate), (50, 10_000));
    }

    #[test]
    fn a_new_recreated_or_reset_interface_grows_by_nothing() {
        let before = by_name(vec![link("wan", 2, 1000), link("wg0", 5, 900)]);
        let now = [link("wan", 2, 10), link("wg0", 6, 5000), link("lan0", 3, 7)];
        let got = deltas(&before, &now, Duration::from_secs(1));
        assert!(got.iter().all(|i| i.rx_bytes_delta == 0), "{got:?}");
    }
}
