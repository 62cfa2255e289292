//! Quotas judged at every refresh: usage in the running period from
//! history, thresholds fired once per period (the ledger in the saved
//! state remembers them across restarts), and which MACs a `block` quota
//! drops. Pure: time, history and the devices are passed in.
//!
//! Periods: a day and a billing month are history's own buckets (the
//! router's zone, `month_rotate`); a week starts Monday 00:00 local time
//! and is the sum of its daily buckets.

use crate::config::{QuotaConfig, QuotaDirection, QuotaPeriod, QuotaTarget};
use crate::mac::Mac;
use crate::rxtx::RxTx;
use crate::serve::quota::{QuotaAlert, QuotaView};
use crate::store::calendar::{Calendar, Granularity, UtcOffset};
use crate::store::quota::{QuotaLedger, insert_sorted};
use crate::store::timeline::{Timeline, Track};

/// A device as the daemon names it now: for `option device 'NAME'` and
/// `option group`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Known {
    pub mac: Mac,
    pub name: Option<String>,
    pub group: Option<String>,
}

/// The running period of `period` at `now`: (start, exclusive end).
pub fn bounds<Z: UtcOffset>(cal: &Calendar<Z>, period: QuotaPeriod, now: i64) -> (i64, i64) {
    match period {
        QuotaPeriod::Day => {
            let day = cal.period(Granularity::Day, now);
            (
                cal.start(Granularity::Day, day),
                cal.end(Granularity::Day, day),
            )
        }
        QuotaPeriod::Week => {
            let monday = monday_of(cal.period(Granularity::Day, now));
            (
                cal.start(Granularity::Day, monday),
                cal.start(Granularity::Day, monday + 7),
            )
        }
        QuotaPeriod::Month => {
            let month = cal.period(Granularity::Month, now);
            (
                cal.start(Granularity::Month, month),
                cal.end(Granularity::Month, month),
            )
        }
    }
}

/// The Monday of a day index (local days since 1970-01-01, a Thursday).
fn monday_of(day: i64) -> i64 {
    day - (day + 3).rem_euclid(7)
}

/// A series' bytes in the running period.
fn period_bytes<Z: UtcOffset>(
    track: &Track,
    cal: &Calendar<Z>,
    period: QuotaPeriod,
    now: i64,
) -> RxTx<u64> {
    let bucket = |g: Granularity, index: i64| {
        track
            .history
            .ring(g)
            .and_then(|r| r.get(index))
            .unwrap_or(RxTx::ZERO)
    };
    match period {
        QuotaPeriod::Day => bucket(Granularity::Day, cal.period(Granularity::Day, now)),
        QuotaPeriod::Week => {
            let today = cal.period(Granularity::Day, now);
            (monday_of(today)..=today).fold(RxTx::ZERO, |sum, d| {
                sum.saturating_add(bucket(Granularity::Day, d))
            })
        }
        QuotaPeriod::Month => bucket(Granularity::Month, cal.period(Granularity::Month, now)),
    }
}

fn directed(bytes: RxTx<u64>, direction: QuotaDirection) -> u64 {
    match direction {
        QuotaDirection::Rx => bytes.rx,
        QuotaDirection::Tx => bytes.tx,
        QuotaDirection::Total => bytes.rx.saturating_add(bytes.tx),
    }
}

/// The devices a quota's target stands for now (empty for an interface
/// and for every device, which are read whole).
pub fn members(quota: &QuotaConfig, known: &[Known]) -> Vec<Mac> {
    let member = |k: &&Known| match &quota.target {
        QuotaTarget::Name(name) => k.name.as_deref() == Some(name.as_str()),
        QuotaTarget::Group(group) => k.group.as_deref() == Some(group.as_str()),
        QuotaTarget::Mac(_) | QuotaTarget::Interface(_) | QuotaTarget::All => false,
    };
    let mut macs = Vec::new();
    if let QuotaTarget::Mac(mac) = &quota.target {
        macs.push(*mac);
    }
    for k in known.iter().filter(member) {
        insert_sorted(&mut macs, k.mac);
    }
    macs
}

/// A quota's bytes in its running period.
pub fn used<Z: UtcOffset>(
    quota: &QuotaConfig,
    members: &[Mac],
    timeline: &Timeline,
    cal: &Calendar<Z>,
    now: i64,
) -> u64 {
    let of = |track: &Track| period_bytes(track, cal, quota.period, now);
    let bytes = match &quota.target {
        QuotaTarget::Interface(name) => timeline.interfaces.get(name).map_or(RxTx::ZERO, of),
        QuotaTarget::All => timeline
            .devices
            .values()
            .fold(RxTx::ZERO, |sum, t| sum.saturating_add(of(t))),
        _ => members
            .iter()
            .filter_map(|mac| timeline.devices.get(mac))
            .fold(RxTx::ZERO, |sum, t| sum.saturating_add(of(t))),
    };
    directed(bytes, quota.direction)
}

fn target(quota: &QuotaConfig) -> (String, &'static str) {
    match &quota.target {
        QuotaTarget::All => ("all".into(), "all"),
        QuotaTarget::Mac(mac) => (mac.to_string(), "device"),
        QuotaTarget::Name(name) => (name.clone(), "device"),
        QuotaTarget::Group(group) => (group.clone(), "group"),
        QuotaTarget::Interface(name) => (name.clone(), "interface"),
    }
}

/// Whether `used` reached `percent` of `limit`, exactly.
fn reached(used: u64, limit: u64, percent: u16) -> bool {
    u128::from(used) * 100 >= u128::from(limit) * u128::from(percent)
}

/// What one judgement found.
#[derive(Debug, Default)]
pub struct Judged {
    /// Thresholds newly crossed, one alert each, in config order.
    pub alerts: Vec<QuotaAlert>,
    /// Every quota's state, for the API.
    pub views: Vec<QuotaView>,
    /// The MACs whose WAN traffic is to be dropped, sorted.
    pub blocked: Vec<Mac>,
}

/// Judges every quota at `now` and records in `ledger` what fired and
/// what is blocked. A new period starts each quota's record over (fired
/// thresholds, block, lift). Records of quotas no longer configured go.
pub fn judge<Z: UtcOffset>(
    quotas: &[QuotaConfig],
    ledger: &mut QuotaLedger,
    timeline: &Timeline,
    cal: &Calendar<Z>,
    known: &[Known],
    now: u64,
) -> Judged {
    let at = i64::try_from(now).unwrap_or(i64::MAX);
    let names: Vec<&str> = quotas.iter().map(|q| q.name.as_str()).collect();
    ledger.retain(&names);
    let mut judged = Judged::default();
    for quota in quotas {
        let (start, end) = bounds(cal, quota.period, at);
        let macs = members(quota, known);
        let used = used(quota, &macs, timeline, cal, at);
        let (target, target_kind) = target(quota);
        let Some(record) = ledger.entry(&quota.name) else {
            continue;
        };
        let mut changed = false;
        if record.period_start != start {
            record.period_start = start;
            record.fired.clear();
            record.blocked.clear();
            record.lifted = false;
            changed = true;
        }
        for &threshold in &quota.thresholds {
            if reached(used, quota.limit, threshold) && insert_sorted(&mut record.fired, threshold)
            {
                changed = true;
                judged.alerts.push(QuotaAlert {
                    quota: quota.name.clone(),
                    target: target.clone(),
                    target_kind: target_kind.into(),
                    direction: quota.direction.name().into(),
                    period: quota.period.name().into(),
                    threshold,
                    used_bytes: used,
                    limit_bytes: quota.limit,
                    period_start: start,
                    period_end: end,
                    at: now,
                });
            }
        }
        if !quota.block {
            changed |= !record.blocked.is_empty();
            record.blocked.clear();
        } else if reached(used, quota.limit, 100) && !record.lifted {
            // A group's device seen for the first time joins its block.
            for &mac in &macs {
                changed |= insert_sorted(&mut record.blocked, mac);
            }
        }
        for &mac in &record.blocked {
            insert_sorted(&mut judged.blocked, mac);
        }
        judged.views.push(QuotaView {
            name: quota.name.clone(),
            target,
            target_kind: target_kind.into(),
            direction: quota.direction.name().into(),
            period: quota.period.name().into(),
            period_start: start,
            period_end: end,
            limit_bytes: quota.limit,
            used_bytes: used,
            thresholds: quota.thresholds.clone(),
            fired: record.fired.clone(),
            action: if quota.block { "block" } else { "none" }.into(),
            blocked: !record.blocked.is_empty(),
            blocked_macs: record.blocked.iter().map(Mac::to_string).collect(),
            lifted: record.lifted,
            exec: quota.exec.is_some(),
            webhook: quota.webhook.is_some(),
            mqtt: quota.mqtt,
        });
        ledger.changed |= changed;
    }
    judged
}

/// `netmeter quota reset NAME`: lifts the quota's block for the rest of
/// its period (the thresholds stay fired, so nothing fires again). False
/// when no quota of that name has a record.
pub fn lift(ledger: &mut QuotaLedger, name: &str) -> bool {
    let Some(record) = ledger.records.iter_mut().find(|r| r.name == name) else {
        return false;
    };
    record.lifted = true;
    record.blocked.clear();
    ledger.changed = true;
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::calendar::FixedOffset;
    use crate::store::history::RingSizes;
    use crate::store::timeline::Observed;

    const CAL: Calendar<FixedOffset> = Calendar {
        zone: FixedOffset(0),
        month_rotate: 1,
    };
    /// Wednesday 2026-12-02 12:00 UTC.
    const WEDNESDAY: i64 = 1_796_212_800;
    const DAY: i64 = 86_400;
    const TV: Mac = Mac([2, 0, 0, 0, 0, 1]);
    const LAPTOP: Mac = Mac([2, 0, 0, 0, 0, 2]);

    fn quota(name: &str, limit: u64) -> QuotaConfig {
        QuotaConfig {
            name: name.into(),
            target: QuotaTarget::Mac(TV),
            limit,
            thresholds: vec![80, 100],
            ..QuotaConfig::default()
        }
    }

    /// A timeline fed totals (rx, tx) for TV and the laptop at `at`.
    fn feed(timeline: &mut Timeline, at: i64, tv: (u64, u64), laptop: (u64, u64)) {
        let sizes = RingSizes::DEVICE_DEFAULT;
        timeline.update(
            &CAL,
            (&RingSizes::INTERFACE_DEFAULT, &sizes),
            at as u64,
            at as u64 * 1000,
            &Observed {
                interfaces: vec![],
                devices: vec![
                    (TV, RxTx::new(tv.0, tv.1)),
                    (LAPTOP, RxTx::new(laptop.0, laptop.1)),
                ],
            },
        );
    }

    fn fired(j: &Judged) -> Vec<(String, u16)> {
        j.alerts
            .iter()
            .map(|a| (a.quota.clone(), a.threshold))
            .collect()
    }

    #[test]
    fn a_week_starts_on_monday_and_days_and_months_are_historys_own() {
        const MONDAY: i64 = 1_795_996_800; // 2026-11-30
        assert_eq!(
            bounds(&CAL, QuotaPeriod::Week, WEDNESDAY),
            (MONDAY, MONDAY + 7 * DAY)
        );
        assert_eq!(
            bounds(&CAL, QuotaPeriod::Week, MONDAY),
            (MONDAY, MONDAY + 7 * DAY)
        );
        assert_eq!(
            bounds(&CAL, QuotaPeriod::Week, MONDAY - 1),
            (MONDAY - 7 * DAY, MONDAY)
        );
        assert_eq!(
            bounds(&CAL, QuotaPeriod::Day, WEDNESDAY),
            (WEDNESDAY - DAY / 2, WEDNESDAY + DAY / 2)
        );
        assert_eq!(
            bounds(&CAL, QuotaPeriod::Month, WEDNESDAY),
            (1_796_083_200, 1_798_761_600)
        );
        let billing = Calendar {
            zone: FixedOffset(0),
            month_rotate: 15,
        };
        let (start, _) = bounds(&billing, QuotaPeriod::Month, WEDNESDAY);
        assert_eq!(start, 1_796_083_200 - 16 * DAY, "from 2026-11-15");
    }

    #[test]
    fn each_threshold_fires_once_a_period_and_again_in_the_next() {
        let quotas = [quota("tv", 1000)];
        let mut ledger = QuotaLedger::default();
        let mut timeline = Timeline::default();
        let judge_at =
            |t: &Timeline, l: &mut QuotaLedger, at: i64| judge(&quotas, l, t, &CAL, &[], at as u64);
        feed(&mut timeline, WEDNESDAY, (0, 0), (0, 0));
        assert!(
            judge_at(&timeline, &mut ledger, WEDNESDAY)
                .alerts
                .is_empty()
        );
        feed(&mut timeline, WEDNESDAY + 10, (500, 299), (5000, 0));
        assert!(fired(&judge_at(&timeline, &mut ledger, WEDNESDAY + 10)).is_empty());
        feed(&mut timeline, WEDNESDAY + 20, (500, 300), (5000, 0));
        let j = judge_at(&timeline, &mut ledger, WEDNESDAY + 20);
        assert_eq!(fired(&j), [("tv".into(), 80)]);
        let alert = &j.alerts[0];
        assert_eq!((alert.used_bytes, alert.limit_bytes), (800, 1000));
        assert_eq!(
            (alert.target.as_str(), alert.target_kind.as_str()),
            ("02:00:00:00:00:01", "device")
        );
        assert_eq!(alert.period_start, 1_796_083_200);
        assert!(ledger.changed);
        // Past both at once after: only 100 is new.
        feed(&mut timeline, WEDNESDAY + 30, (900, 300), (5000, 0));
        assert_eq!(
            fired(&judge_at(&timeline, &mut ledger, WEDNESDAY + 30)),
            [("tv".into(), 100)]
        );
        feed(&mut timeline, WEDNESDAY + 40, (5000, 300), (5000, 0));
        assert!(
            judge_at(&timeline, &mut ledger, WEDNESDAY + 40)
                .alerts
                .is_empty()
        );
        // A restart: the ledger comes back from the state file.
        let mut restored = ledger.clone();
        restored.changed = false;
        assert!(
            judge_at(&timeline, &mut restored, WEDNESDAY + 50)
                .alerts
                .is_empty()
        );
        assert!(!restored.changed, "nothing new to save");
        // The next month: its own bucket, thresholds start over.
        let next = 1_798_761_600 + 10;
        feed(&mut timeline, next, (5000, 300), (5000, 0));
        let j = judge_at(&timeline, &mut restored, next);
        assert!(j.alerts.is_empty(), "nothing used yet this month");
        assert_eq!(j.views[0].fired, Vec::<u16>::new());
        feed(&mut timeline, next + 10, (6000, 300), (5000, 0));
        let j = judge_at(&timeline, &mut restored, next + 10);
        assert_eq!(fired(&j), [("tv".into(), 80), ("tv".into(), 100)]);
        assert_eq!(j.alerts[0].period_start, 1_798_761_600);
    }

    #[test]
    fn directions_groups_names_every_device_and_weeks_count_their_own_bytes() {
        let mut timeline = Timeline::default();
        // History rounds a closed bucket to KiB: whole KiB here.
        const K: u64 = 1024;
        feed(&mut timeline, WEDNESDAY - 3 * DAY, (0, 0), (0, 0)); // Sunday: last week
        feed(&mut timeline, WEDNESDAY - 3 * DAY + 1, (K, K), (0, 0));
        feed(&mut timeline, WEDNESDAY - 2 * DAY, (2 * K, 2 * K), (0, 0)); // Monday
        feed(&mut timeline, WEDNESDAY, (4 * K, 3 * K), (10 * K, 0)); // Wednesday
        let known = [
            Known {
                mac: TV,
                name: Some("TV".into()),
                group: Some("living".into()),
            },
            Known {
                mac: LAPTOP,
                name: Some("laptop".into()),
                group: Some("living".into()),
            },
        ];
        let with = |target, direction, period| QuotaConfig {
            target,
            direction,
            period,
            ..quota("q", 1)
        };
        let used_by = |q: &QuotaConfig| used(q, &members(q, &known), &timeline, &CAL, WEDNESDAY);
        use QuotaDirection::*;
        use QuotaPeriod::*;
        // Sunday's KiB each way is last week's.
        assert_eq!(used_by(&with(QuotaTarget::Mac(TV), Rx, Week)), 3 * K);
        assert_eq!(used_by(&with(QuotaTarget::Mac(TV), Tx, Week)), 2 * K);
        assert_eq!(used_by(&with(QuotaTarget::Mac(TV), Total, Day)), 3 * K);
        assert_eq!(
            used_by(&with(QuotaTarget::Name("TV".into()), Total, Week)),
            5 * K
        );
        assert_eq!(
            used_by(&with(QuotaTarget::Name("nobody".into()), Total, Week)),
            0
        );
        assert_eq!(
            used_by(&with(QuotaTarget::Group("living".into()), Rx, Week)),
            13 * K
        );
        // December began on Tuesday: Sunday's and Monday's bytes are November's.
        assert_eq!(used_by(&with(QuotaTarget::All, Total, Month)), 13 * K);
    }

    #[test]
    fn a_block_holds_from_the_limit_until_lifted_or_the_period_ends() {
        let quotas = [QuotaConfig {
            target: QuotaTarget::Group("kids".into()),
            block: true,
            ..quota("kids", 1000)
        }];
        let known = [Known {
            mac: TV,
            name: None,
            group: Some("kids".into()),
        }];
        let mut ledger = QuotaLedger::default();
        let mut timeline = Timeline::default();
        feed(&mut timeline, WEDNESDAY, (0, 0), (0, 0));
        feed(&mut timeline, WEDNESDAY + 1, (900, 0), (0, 0));
        let j = judge(
            &quotas,
            &mut ledger,
            &timeline,
            &CAL,
            &known,
            WEDNESDAY as u64 + 1,
        );
        assert!(j.blocked.is_empty(), "80 % warns, it does not block");
        feed(&mut timeline, WEDNESDAY + 2, (1000, 0), (0, 0));
        let j = judge(
            &quotas,
            &mut ledger,
            &timeline,
            &CAL,
            &known,
            WEDNESDAY as u64 + 2,
        );
        assert_eq!(j.blocked, [TV]);
        assert!(j.views[0].blocked);
        // A second kid's device joins the block when it shows up.
        let both = [
            known[0].clone(),
            Known {
                mac: LAPTOP,
                name: None,
                group: Some("kids".into()),
            },
        ];
        let j = judge(
            &quotas,
            &mut ledger,
            &timeline,
            &CAL,
            &both,
            WEDNESDAY as u64 + 3,
        );
        assert_eq!(j.blocked, [TV, LAPTOP]);
        assert!(lift(&mut ledger, "kids"));
        assert!(!lift(&mut ledger, "nobody"));
        let j = judge(
            &quotas,
            &mut ledger,
            &timeline,
            &CAL,
            &both,
            WEDNESDAY as u64 + 4,
        );
        assert!(
            j.blocked.is_empty() && j.views[0].lifted,
            "lifted for the rest of the month"
        );
        // The next month starts unblocked and unlifted.
        let next = 1_798_761_600;
        feed(&mut timeline, next, (1500, 0), (0, 0));
        let j = judge(&quotas, &mut ledger, &timeline, &CAL, &both, next as u64);
        assert!(j.blocked.is_empty() && !j.views[0].lifted);
        feed(&mut timeline, next + 1, (3000, 0), (0, 0));
        let j = judge(
            &quotas,
            &mut ledger,
            &timeline,
            &CAL,
            &both,
            next as u64 + 1,
        );
        assert_eq!(j.blocked, [TV, LAPTOP], "over again this month");
    }

    #[test]
    fn a_quota_without_block_never_blocks_and_removed_quotas_are_forgotten() {
        let mut ledger = QuotaLedger::default();
        let mut timeline = Timeline::default();
        feed(&mut timeline, WEDNESDAY, (0, 0), (0, 0));
        feed(&mut timeline, WEDNESDAY + 1, (5000, 0), (0, 0));
        let j = judge(
            &[quota("tv", 10)],
            &mut ledger,
            &timeline,
            &CAL,
            &[],
            WEDNESDAY as u64 + 1,
        );
        assert!(j.blocked.is_empty());
        assert_eq!(j.alerts.len(), 2);
        let j = judge(&[], &mut ledger, &timeline, &CAL, &[], WEDNESDAY as u64 + 2);
        assert!(j.views.is_empty() && ledger.records.is_empty());
    }
}
