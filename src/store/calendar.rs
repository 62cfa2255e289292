//! History periods in the router's local time.
//!
//! People ask "how much today", "this billing month": days and months turn
//! over at local midnight, and a billing month may start on any day
//! (`month_rotate`, like vnStat's MonthRotate). Each period gets an index,
//! consecutive periods consecutive indexes, so rings can store values
//! without storing times.
//!
//! Daylight saving: periods are taken on the local clock, so the repeated
//! hour of an autumn night falls into one hourly bucket (two hours' worth)
//! and the skipped spring hour has an empty one, as vnStat does.

use serde::{Deserialize, Serialize};

/// One rollup's period length.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Granularity {
    FiveMinute,
    Hour,
    Day,
    Month,
    Year,
}

impl Granularity {
    /// Finest first.
    pub const ALL: [Granularity; 5] = [
        Granularity::FiveMinute,
        Granularity::Hour,
        Granularity::Day,
        Granularity::Month,
        Granularity::Year,
    ];

    /// The API's name.
    pub fn name(self) -> &'static str {
        match self {
            Self::FiveMinute => "fiveminute",
            Self::Hour => "hour",
            Self::Day => "day",
            Self::Month => "month",
            Self::Year => "year",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Some(match text {
            "fiveminute" | "fiveminutes" | "5min" => Self::FiveMinute,
            "hour" | "hourly" => Self::Hour,
            "day" | "daily" => Self::Day,
            "month" | "monthly" => Self::Month,
            "year" | "yearly" => Self::Year,
            _ => return None,
        })
    }
}

/// The offset from UTC in effect at an instant, in seconds east.
pub trait UtcOffset {
    fn utc_offset(&self, unix: i64) -> i32;
}

pub struct FixedOffset(pub i32);

impl UtcOffset for FixedOffset {
    fn utc_offset(&self, _: i64) -> i32 {
        self.0
    }
}

impl<F: Fn(i64) -> i32> UtcOffset for F {
    fn utc_offset(&self, unix: i64) -> i32 {
        self(unix)
    }
}

/// The process's zone: the TZ variable (OpenWrt's /etc/TZ, see
/// `clock::adopt_router_timezone`) or /etc/localtime, as libc reads them.
pub struct SystemZone;

impl UtcOffset for SystemZone {
    fn utc_offset(&self, unix: i64) -> i32 {
        // time_t is 32 bits on some targets: stay within it there.
        #[allow(irrefutable_let_patterns)] // where it is 64 bits
        let Ok(t) = libc::time_t::try_from(unix) else {
            return 0;
        };
        // SAFETY: tm is plain data; localtime_r fills it or fails.
        let mut tm: libc::tm = unsafe { std::mem::zeroed() };
        // SAFETY: valid pointers to a time_t and a tm.
        if unsafe { libc::localtime_r(&t, &mut tm) }.is_null() {
            return 0;
        }
        i32::try_from(tm.tm_gmtoff).unwrap_or(0)
    }
}

/// Periods in one zone, with one billing-month start day.
pub struct Calendar<Z: UtcOffset> {
    pub zone: Z,
    /// 1..=28: the day a (billing) month starts.
    pub month_rotate: u8,
}

/// Beyond any date a router will see, and within i64 arithmetic everywhere.
const LIMIT: i64 = 1 << 40;

impl<Z: UtcOffset> Calendar<Z> {
    fn local(&self, unix: i64) -> i64 {
        let unix = unix.clamp(-LIMIT, LIMIT);
        unix + i64::from(self.zone.utc_offset(unix))
    }

    fn rotate(&self) -> i64 {
        i64::from(self.month_rotate.clamp(1, 28))
    }

    /// The index of the period holding `unix`.
    pub fn period(&self, g: Granularity, unix: i64) -> i64 {
        let local = self.local(unix);
        match g {
            Granularity::FiveMinute => local.div_euclid(300),
            Granularity::Hour => local.div_euclid(3600),
            Granularity::Day => local.div_euclid(86_400),
            Granularity::Month => {
                let (y, m, d) = civil_from_days(local.div_euclid(86_400));
                let index = y * 12 + i64::from(m) - 1;
                if i64::from(d) < self.rotate() {
                    index - 1
                } else {
                    index
                }
            }
            Granularity::Year => civil_from_days(local.div_euclid(86_400)).0,
        }
    }

    /// When period `index` starts (unix seconds).
    pub fn start(&self, g: Granularity, index: i64) -> i64 {
        let index = index.clamp(-LIMIT / 300, LIMIT / 300);
        let local = match g {
            Granularity::FiveMinute => index * 300,
            Granularity::Hour => index * 3600,
            Granularity::Day => index * 86_400,
            Granularity::Month => {
                let index = index.clamp(-(1 << 26), 1 << 26);
                let (y, m) = (index.div_euclid(12), index.rem_euclid(12) as u32 + 1);
                (days_from_civil(y, m, 1) + self.rotate() - 1) * 86_400
            }
            Granularity::Year => days_from_civil(index.clamp(-(1 << 26), 1 << 26), 1, 1) * 86_400,
        };
        // The offset at the start itself, found from an estimate of it.
        let guess = local - i64::from(self.zone.utc_offset(local));
        local - i64::from(self.zone.utc_offset(guess))
    }

    pub fn end(&self, g: Granularity, index: i64) -> i64 {
        self.start(g, index.saturating_add(1))
    }
}

/// Howard Hinnant's days-to-civil: (year, month 1..=12, day 1..=31).
pub fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// Howard Hinnant's civil-to-days.
pub fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;
    use Granularity::*;

    fn utc(y: i64, m: u32, d: u32, hh: i64, mm: i64) -> i64 {
        days_from_civil(y, m, d) * 86_400 + hh * 3600 + mm * 60
    }

    /// Central Europe in 2026: CEST from 29 March 01:00 UTC to 25 October 01:00 UTC.
    fn cet(unix: i64) -> i32 {
        if (utc(2026, 3, 29, 1, 0)..utc(2026, 10, 25, 1, 0)).contains(&unix) {
            7200
        } else {
            3600
        }
    }

    #[test]
    fn civil_dates_round_trip_including_leap_days() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(days_from_civil(2028, 2, 29)), (2028, 2, 29));
        assert_eq!(
            days_from_civil(2028, 3, 1) - days_from_civil(2028, 2, 28),
            2
        );
        assert_eq!(
            days_from_civil(2100, 3, 1) - days_from_civil(2100, 2, 28),
            1
        );
        for days in (-800_000..800_000).step_by(997) {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
    }

    #[test]
    fn days_and_years_turn_over_at_local_midnight() {
        let plus_one = Calendar {
            zone: FixedOffset(3600),
            month_rotate: 1,
        };
        let t = utc(2026, 12, 31, 23, 30);
        assert_eq!(plus_one.period(Year, t), 2027);
        assert_eq!(
            plus_one.start(Day, plus_one.period(Day, t)),
            utc(2026, 12, 31, 23, 0)
        );
        let utc_cal = Calendar {
            zone: FixedOffset(0),
            month_rotate: 1,
        };
        assert_eq!(utc_cal.period(Year, t), 2026);
    }

    #[test]
    fn india_hours_start_at_half_past_utc() {
        let cal = Calendar {
            zone: FixedOffset(19_800),
            month_rotate: 1,
        };
        let t = utc(2026, 6, 1, 10, 45);
        let hour = cal.period(Hour, t);
        assert_eq!(cal.start(Hour, hour), utc(2026, 6, 1, 10, 30));
        assert_eq!(cal.end(Hour, hour), utc(2026, 6, 1, 11, 30));
    }

    #[test]
    fn a_billing_month_starting_on_the_15th() {
        let cal = Calendar {
            zone: FixedOffset(0),
            month_rotate: 15,
        };
        let feb = cal.period(Month, utc(2026, 3, 14, 23, 59));
        let mar = cal.period(Month, utc(2026, 3, 15, 0, 0));
        assert_eq!(mar, feb + 1);
        assert_eq!(feb, 2026 * 12 + 1);
        assert_eq!(cal.start(Month, mar), utc(2026, 3, 15, 0, 0));
        assert_eq!(cal.start(Month, feb), utc(2026, 2, 15, 0, 0));
    }

    #[test]
    fn daylight_saving_days_are_23_and_25_hours_long() {
        let cal = Calendar {
            zone: cet,
            month_rotate: 1,
        };
        let spring = cal.period(Day, utc(2026, 3, 29, 12, 0));
        assert_eq!(cal.end(Day, spring) - cal.start(Day, spring), 23 * 3600);
        let autumn = cal.period(Day, utc(2026, 10, 25, 12, 0));
        assert_eq!(cal.end(Day, autumn) - cal.start(Day, autumn), 25 * 3600);
        assert_eq!(cal.start(Day, autumn), utc(2026, 10, 24, 22, 0));
    }

    #[test]
    fn every_instant_lies_in_its_period_and_periods_round_trip() {
        // Fixed offsets only: in a DST zone the repeated autumn hour is one
        // bucket whose start is given as its later occurrence.
        let zones: [&dyn Fn(i64) -> i32; 3] = [&|_| 0, &|_| 19_800, &|_| -36_000];
        for zone in zones {
            for rotate in [1, 15, 28] {
                let cal = Calendar {
                    zone,
                    month_rotate: rotate,
                };
                let mut t = utc(2024, 1, 1, 0, 0);
                let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
                while t < utc(2029, 1, 1, 0, 0) {
                    for g in Granularity::ALL {
                        let p = cal.period(g, t);
                        let (start, end) = (cal.start(g, p), cal.end(g, p));
                        assert!(start <= t && t < end, "{g:?} {t}: {start}..{end}");
                        assert_eq!(cal.period(g, start), p, "{g:?} start of {p}");
                        assert_eq!(cal.period(g, end), p + 1, "{g:?} after {p}");
                    }
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    t += (x % 400_000) as i64;
                }
            }
        }
    }

    #[test]
    fn extreme_times_do_not_panic() {
        let cal = Calendar {
            zone: FixedOffset(-43_200),
            month_rotate: 28,
        };
        for t in [i64::MIN, -(1 << 40), -1, 0, 1 << 40, i64::MAX] {
            for g in Granularity::ALL {
                let p = cal.period(g, t);
                let _ = cal.start(g, p);
                let _ = cal.end(g, p);
                let _ = cal.start(g, i64::MAX);
                let _ = cal.start(g, i64::MIN);
            }
        }
    }
}
