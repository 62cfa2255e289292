//! The storage benchmark: what persistence writes to flash, and how large
//! the state is, with 250 devices and the default settings.
//!
//! 1. Snapshot size: 250 devices with every default history bucket filled
//!    (10 years of hourly credits), plus 5 interfaces likewise; the encoded
//!    state per device, and the history share of it.
//! 2. Flash volume: 8 simulated days at a 10 s refresh rate compressed to
//!    one credit per five minutes, the default spool (5 min, tmpfs) and
//!    commit (1 h) intervals, through the real `Store` on real files; bytes
//!    written to the database directory per day once a checkpoint exists,
//!    and the size of one hourly journal record.
//!
//! Traffic: each device's daily volume is fixed, spread log-uniformly from
//! 1 MB to 5 GB across the 250 (a few heavy devices, many light ones), with
//! a day/night swing. Not a test: `cargo bench --bench store`.

use netmeter::account::{DeviceSample, Direction, UnattributedSample};
use netmeter::clock::Moment;
use netmeter::mac::Mac;
use netmeter::rxtx::RxTx;
use netmeter::store::calendar::{Calendar, FixedOffset};
use netmeter::store::history::RingSizes;
use netmeter::store::persist::Store;
use netmeter::store::state::State;
use netmeter::store::timeline::Observed;
use std::net::{IpAddr, Ipv4Addr};

const DEVICES: usize = 250;
const INTERFACES: [&str; 5] = ["wan", "br-lan", "lan1", "lan2", "wlan0"];
const SIZES: (&RingSizes, &RingSizes) = (&RingSizes::INTERFACE_DEFAULT, &RingSizes::DEVICE_DEFAULT);
/// 2026-01-01T00:00:00Z
const START: u64 = 1_767_225_600;

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        println!("benches/store.rs is a benchmark, not a test: `cargo bench --bench store`");
        return;
    }
    snapshot_size();
    flash_volume();
}

/// Bytes per day of device `i`: log-uniform from 1 MB to 5 GB.
fn daily(i: usize) -> u64 {
    let f = i as f64 / (DEVICES - 1) as f64;
    (1e6 * (5e3f64).powf(f)) as u64
}

/// Share of a day's traffic in hour `h` (0..24): busy evenings, quiet nights.
fn hourly_share(h: u64) -> f64 {
    let x = (h as f64 - 20.0) / 24.0 * std::f64::consts::TAU;
    (1.0 + 0.8 * x.cos()) / 24.0
}

fn mac(i: usize) -> Mac {
    Mac([0x02, 0, 0, 0, (i >> 8) as u8, i as u8])
}

/// One accounts read with every device's cumulative totals, so the state
/// carries real device records and element readings.
fn ingest_devices(state: &mut State, now: Moment, totals: &[[u64; 2]]) {
    let samples: Vec<DeviceSample> = totals
        .iter()
        .enumerate()
        .flat_map(|(i, [rx, tx])| {
            let ip = IpAddr::V4(Ipv4Addr::new(192, 168, (i >> 8) as u8, i as u8));
            [
                DeviceSample {
                    direction: Direction::Received,
                    mac: mac(i),
                    ip,
                    bytes: *rx,
                    packets: rx / 1000,
                },
                DeviceSample {
                    direction: Direction::Sent,
                    mac: mac(i),
                    ip,
                    bytes: *tx,
                    packets: tx / 1000,
                },
            ]
        })
        .collect();
    state
        .devices
        .ingest(now, 1, &samples, UnattributedSample::default());
}

fn device_totals(state: &State) -> Vec<(Mac, RxTx<u64>)> {
    state
        .devices
        .devices()
        .map(|d| (d.mac, RxTx::new(d.rx_bytes, d.tx_bytes)))
        .collect()
}

/// Runs the traffic model from `from` for `hours`, one credit per `step`
/// seconds; calls `each_hour` after every simulated hour.
fn simulate(
    state: &mut State,
    totals: &mut [[u64; 2]],
    interface_totals: &mut [[u64; 2]],
    from: u64,
    hours: u64,
    step: u64,
    mut each_hour: impl FnMut(&mut State, u64),
) {
    let cal = Calendar {
        zone: FixedOffset(3600),
        month_rotate: 1,
    };
    let steps_per_hour = 3600 / step;
    for hour in 0..hours {
        let share = hourly_share((from / 3600 + hour) % 24);
        for s in 0..steps_per_hour {
            let now = from + hour * 3600 + (s + 1) * step;
            let mut all = [0u64; 2];
            for (i, t) in totals.iter_mut().enumerate() {
                let moved = (daily(i) as f64 * share / steps_per_hour as f64) as u64;
                t[0] += moved;
                t[1] += moved / 10;
                all[0] += moved;
                all[1] += moved / 10;
            }
            for t in interface_totals.iter_mut() {
                t[0] += all[0];
                t[1] += all[1];
            }
            let moment = Moment {
                monotonic_ms: now * 1000,
                unix_secs: now,
            };
            ingest_devices(state, moment, totals);
            let devices = device_totals(state);
            let interfaces: Vec<(&str, RxTx<u64>)> = INTERFACES
                .iter()
                .zip(interface_totals.iter())
                .map(|(n, t)| (*n, RxTx::new(t[0], t[1])))
                .collect();
            state.timeline.update(
                &cal,
                SIZES,
                now,
                now * 1000,
                &Observed {
                    interfaces,
                    devices,
                },
            );
        }
        each_hour(state, from + (hour + 1) * 3600);
    }
}

fn snapshot_size() {
    let mut state = State::new(256, 1024);
    let mut totals = vec![[0u64; 2]; DEVICES];
    let mut interfaces = vec![[0u64; 2]; INTERFACES.len()];
    // Ten years and a month of hourly credits fill every default ring.
    let hours = 24 * (3653 + 31);
    let started = std::time::Instant::now();
    simulate(
        &mut state,
        &mut totals,
        &mut interfaces,
        START - hours * 3600,
        hours,
        3600,
        |_, _| {},
    );
    let whole = postcard::to_allocvec(&state).unwrap().len();
    let history: usize = state
        .timeline
        .devices
        .values()
        .map(|t| postcard::to_allocvec(&t.history).unwrap().len())
        .sum();
    let interface_history: usize = state
        .timeline
        .interfaces
        .values()
        .map(|t| postcard::to_allocvec(&t.history).unwrap().len())
        .sum();
    println!(
        "snapshot with full default history ({:.1} s to build):",
        started.elapsed().as_secs_f64()
    );
    println!(
        "  whole state, {DEVICES} devices + {} interfaces: {whole} bytes",
        INTERFACES.len()
    );
    println!(
        "  per device, everything but interface history: {} bytes",
        (whole - interface_history) / DEVICES
    );
    println!("  per device, history alone: {} bytes", history / DEVICES);
    println!(
        "  per interface, history alone: {} bytes",
        interface_history / INTERFACES.len()
    );
}

fn flash_volume() {
    let dir = std::env::temp_dir().join(format!("netmeter-bench-store-{}", std::process::id()));
    let (spool, flash) = (dir.join("spool"), dir.join("flash"));
    let mut store = Store::new(&spool, &flash);
    let mut state = State::new(256, 1024);
    let mut totals = vec![[0u64; 2]; DEVICES];
    let mut interfaces = vec![[0u64; 2]; INTERFACES.len()];
    let days = 8;
    let mut per_day = Vec::new();
    let mut day_start_bytes = 0;
    let mut records = Vec::new();
    simulate(
        &mut state,
        &mut totals,
        &mut interfaces,
        START,
        days * 24,
        300,
        |state, now| {
            let journal_before = store.status.journal_bytes;
            let checkpoints = store.status.checkpoints;
            store.commit(state, now).unwrap();
            store.spool(state, now).unwrap();
            if store.status.checkpoints == checkpoints {
                records.push(store.status.journal_bytes - journal_before);
            }
            if (now - START) % 86_400 == 0 {
                per_day.push(store.status.flash_bytes_written - day_start_bytes);
                day_start_bytes = store.status.flash_bytes_written;
            }
        },
    );
    records.sort_unstable();
    let steady = &per_day[1..];
    let mean = steady.iter().sum::<u64>() / steady.len() as u64;
    println!("flash writes, {DEVICES} devices, commit every hour:");
    println!("  bytes per day, day by day: {per_day:?}");
    println!(
        "  mean of days 2..{days}: {mean} bytes/day ({:.0} KB); checkpoints written: {}, last {} bytes",
        mean as f64 / 1000.0,
        store.status.checkpoints,
        store.status.checkpoint_bytes
    );
    println!(
        "  journal record: median {} bytes, max {}",
        records[records.len() / 2],
        records.last().unwrap()
    );
    let spool_size = std::fs::metadata(spool.join("netmeter.spool"))
        .unwrap()
        .len();
    println!("  spool copy (tmpfs, every 5 min): {spool_size} bytes");
    let _ = std::fs::remove_dir_all(&dir);
}
