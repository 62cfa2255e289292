//! Periods in local time: which five minutes, hour, day, billing month or
//! year an instant belongs to, as consecutive integer indexes, and back.
//!
//! People read traffic by their own clock and their ISP bills by local
//! months, so periods follow the zone's local time (as vnStat does), not
//! UTC. The zone is only asked "what offset was in effect at this instant",
//! which is all `localtime_r` gives cheaply and all a test needs to fake.
//!
//! Local seconds (`unix + offset`) are cut into periods; dates use Howard
//! Hinnant's `days_from_civil` / `civil_from_days` (proleptic Gregorian,
//! exact for negative years), so no time crate is needed. Every function is
//! total: arithmetic saturates, so no `i64` input panics.
//!
//! Around DST changes local time is not monotonic. A period start that the
//! clock skips (spring forward) maps to the first instant after the gap, and
//! one the clock shows twice (fall back) to its first occurrence, so
//! `start(period(t)) <= t` holds for every period that contains its own
//! boundaries. Five-minute periods of a repeated hour occur twice; the rings
//! credit the second pass into the buckets of the first.

use serde::{Deserialize, Serialize};

const SECONDS_PER_DAY: i64 = 86_400;

/// Years beyond this cannot be represented in `i64` seconds anyway; clamping
/// keeps the date arithmetic free of overflow.
const MAX_YEAR: i64 = 1_000_000_000_000;

/// Wider than any real UTC offset change, so probing this far before and
/// after an instant finds the offsets on both sides of a transition.
const TRANSITION_PROBE: i64 = SECONDS_PER_DAY;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Granularity {
    FiveMinute,
    Hour,
    Day,
    Month,
    Year,
}

impl Granularity {
    /// Finest first; also the order of the rings in a `SeriesHistory`,
    /// and so on disk: never reorder.
    pub const ALL: [Granularity; 5] = [
        Granularity::FiveMinute,
        Granularity::Hour,
        Granularity::Day,
        Granularity::Month,
        Granularity::Year,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Granularity::FiveMinute => "fiveminute",
            Granularity::Hour => "hour",
            Granularity::Day => "day",
            Granularity::Month => "month",
            Granularity::Year => "year",
        }
    }

    /// Accepts the names from `name` and the spellings people type
    /// ("5min", "daily", …), in any ASCII case.
    pub fn parse(text: &str) -> Option<Self> {
        const NAMES: [(&str, Granularity); 11] = [
            ("fiveminute", Granularity::FiveMinute),
            ("fiveminutes", Granularity::FiveMinute),
            ("5min", Granularity::FiveMinute),
            ("hour", Granularity::Hour),
            ("hourly", Granularity::Hour),
            ("day", Granularity::Day),
            ("daily", Granularity::Day),
            ("month", Granularity::Month),
            ("monthly", Granularity::Month),
            ("year", Granularity::Year),
            ("yearly", Granularity::Year),
        ];
        NAMES
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case(text))
            .map(|&(_, g)| g)
    }

    pub(crate) fn index(self) -> usize {
        self as usize
    }
}

/// A time zone as far as accounting needs one.
pub trait UtcOffset {
    /// Seconds east of UTC in effect at `unix`.
    fn utc_offset(&self, unix: i64) -> i32;
}

/// A zone without DST (and UTC itself as `FixedOffset(0)`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FixedOffset(pub i32);

impl UtcOffset for FixedOffset {
    fn utc_offset(&self, _unix: i64) -> i32 {
        self.0
    }
}

/// The router's zone through the C library: musl reads the POSIX rule in
/// the `TZ` variable, so no zoneinfo files are needed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SystemZone;

impl UtcOffset for SystemZone {
    fn utc_offset(&self, unix: i64) -> i32 {
        // SAFETY: `timespec` and `tm` are plain data for which all zeroes is
        // valid, and `localtime_r` writes only into `tm`. The seconds go
        // through `timespec` so the code does not name `time_t`, whose width
        // differs between targets: clamped where it is 32 bits.
        let mut at: libc::timespec = unsafe { std::mem::zeroed() };
        at.tv_sec = if std::mem::size_of_val(&at.tv_sec) < 8 {
            unix.clamp(i32::MIN.into(), i32::MAX.into())
        } else {
            unix
        } as _;
        let mut tm: libc::tm = unsafe { std::mem::zeroed() };
        let result = unsafe { libc::localtime_r(&at.tv_sec, &mut tm) };
        if result.is_null() {
            // Out of the C library's range (a year beyond `int`): UTC is as
            // good an answer as any there.
            return 0;
        }
        i32::try_from(tm.tm_gmtoff).unwrap_or(0)
    }
}

/// Rules given as a function, e.g. a DST rule in tests.
impl<F: Fn(i64) -> i32> UtcOffset for F {
    fn utc_offset(&self, unix: i64) -> i32 {
        self(unix)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Calendar<Z: UtcOffset> {
    pub zone: Z,
    /// The day of the month a billing month starts (vnStat's MonthRotate),
    /// 1..=28 so every month has it; 1 means calendar months. Values out of
    /// range are clamped.
    pub month_rotate: u8,
}

impl<Z: UtcOffset> Calendar<Z> {
    /// The period containing `unix`; consecutive periods have consecutive
    /// indexes, so rings can address buckets by index arithmetic.
    pub fn period(&self, g: Granularity, unix: i64) -> i64 {
        let local = self.local(unix);
        match g {
            Granularity::FiveMinute => local.div_euclid(300),
            Granularity::Hour => local.div_euclid(3600),
            Granularity::Day => local.div_euclid(SECONDS_PER_DAY),
            Granularity::Month => {
                let (year, month, day) = civil_from_days(local.div_euclid(SECONDS_PER_DAY));
                let index = year * 12 + (month - 1);
                if day < self.rotate() {
                    index - 1
                } else {
                    index
                }
            }
            Granularity::Year => civil_from_days(local.div_euclid(SECONDS_PER_DAY)).0,
        }
    }

    /// Unix seconds at which period `index` starts by the local clock.
    pub fn start(&self, g: Granularity, index: i64) -> i64 {
        let local = match g {
            Granularity::FiveMinute => index.saturating_mul(300),
            Granularity::Hour => index.saturating_mul(3600),
            Granularity::Day => index.saturating_mul(SECONDS_PER_DAY),
            Granularity::Month => {
                let year = index.div_euclid(12);
                let month = index.rem_euclid(12) + 1;
                days_from_civil(year, month, self.rotate()).saturating_mul(SECONDS_PER_DAY)
            }
            Granularity::Year => days_from_civil(index, 1, 1).saturating_mul(SECONDS_PER_DAY),
        };
        self.first_instant_at(local)
    }

    /// Exclusive: the start of the next period.
    pub fn end(&self, g: Granularity, index: i64) -> i64 {
        self.start(g, index.saturating_add(1))
    }

    fn rotate(&self) -> i64 {
        i64::from(self.month_rotate.clamp(1, 28))
    }

    fn offset(&self, unix: i64) -> i64 {
        i64::from(self.zone.utc_offset(unix))
    }

    fn local(&self, unix: i64) -> i64 {
        unix.saturating_add(self.offset(unix))
    }

    /// The first instant at which the local clock shows `local` or later
    /// (around it: far away, local time is monotonic anyway).
    fn first_instant_at(&self, local: i64) -> i64 {
        let guess = local.saturating_sub(self.offset(local));
        let offsets = [
            self.offset(guess.saturating_sub(TRANSITION_PROBE)),
            self.offset(guess),
            self.offset(guess.saturating_add(TRANSITION_PROBE)),
        ];
        // Each offset gives a candidate; it is real if that offset is in
        // effect there. Two real ones: a repeated time, take the first.
        let candidates = offsets.map(|offset| local.saturating_sub(offset));
        let earliest_real = candidates
            .iter()
            .copied()
            .filter(|&c| self.local(c) == local)
            .min();
        if let Some(found) = earliest_real {
            return found;
        }
        // None real: the clock skips `local`; find where it jumps past it.
        let mut before = candidates.iter().copied().min().unwrap_or(guess);
        let mut after = candidates.iter().copied().max().unwrap_or(guess);
        if self.local(before) >= local || self.local(after) < local {
            // Not a simple gap (a zone function that is not piecewise
            // constant); any consistent answer will do.
            return local.saturating_sub(self.offset(guess));
        }
        while after - before > 1 {
            let middle = before + (after - before) / 2;
            if self.local(middle) >= local {
                after = middle;
            } else {
                before = middle;
            }
        }
        after
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Hinnant).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = year.clamp(-MAX_YEAR, MAX_YEAR) - i64::from(month <= 2);
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let month_from_march = if month > 2 { month - 3 } else { month + 9 };
    let day_of_year = (153 * month_from_march + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// (year, month 1..=12, day 1..=31) of days since 1970-01-01 (Hinnant).
/// Exact for any day count `i64` seconds can express.
pub fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let days = days.clamp(i64::MIN / 2, i64::MAX / 2) + 719_468;
    let era = days.div_euclid(146_097);
    let day_of_era = days - era * 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_from_march = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_from_march + 2) / 5 + 1;
    let month = if month_from_march < 10 {
        month_from_march + 3
    } else {
        month_from_march - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;
    use Granularity::*;

    const UTC: Calendar<FixedOffset> = Calendar {
        zone: FixedOffset(0),
        month_rotate: 1,
    };

    /// 2026-03-29 01:00 UTC and 2026-10-25 01:00 UTC.
    const CET_SPRING_2026: i64 = 1_774_746_000;
    const CET_FALL_2026: i64 = 1_792_890_000;

    /// Central European Time for any year: CEST from the last Sunday of
    /// March 01:00 UTC to the last Sunday of October 01:00 UTC.
    fn cet(unix: i64) -> i32 {
        let (year, _, _) = civil_from_days(unix.div_euclid(SECONDS_PER_DAY));
        let last_sunday = |month| {
            let day = days_from_civil(year, month, 31);
            // 1970-01-01 was a Thursday; 0 is Sunday.
            day - (day + 4).rem_euclid(7)
        };
        let spring = last_sunday(3) * SECONDS_PER_DAY + 3600;
        let fall = last_sunday(10) * SECONDS_PER_DAY + 3600;
        if (spring..fall).contains(&unix) {
            7200
        } else {
            3600
        }
    }

    /// US Pacific since 2007: second Sunday of March 10:00 UTC (02:00 PST)
    /// to the first Sunday of November 09:00 UTC (02:00 PDT).
    fn pacific(unix: i64) -> i32 {
        let (year, _, _) = civil_from_days(unix.div_euclid(SECONDS_PER_DAY));
        let nth_sunday = |month, n: i64| {
            let first = days_from_civil(year, month, 1);
            first + (7 - (first + 4).rem_euclid(7)) % 7 + 7 * (n - 1)
        };
        let spring = nth_sunday(3, 2) * SECONDS_PER_DAY + 10 * 3600;
        let fall = nth_sunday(11, 1) * SECONDS_PER_DAY + 9 * 3600;
        if (spring..fall).contains(&unix) {
            -7 * 3600
        } else {
            -8 * 3600
        }
    }

    fn utc(year: i64, month: i64, day: i64, hour: i64, minute: i64) -> i64 {
        days_from_civil(year, month, day) * SECONDS_PER_DAY + hour * 3600 + minute * 60
    }

    /// splitmix64: deterministic, no rand crate.
    fn next(state: &mut u64) -> u64 {
        *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = *state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    #[test]
    fn names_round_trip_and_aliases_parse() {
        for g in Granularity::ALL {
            assert_eq!(Granularity::parse(g.name()), Some(g));
        }
        assert_eq!(Granularity::parse("5min"), Some(FiveMinute));
        assert_eq!(Granularity::parse("FiveMinutes"), Some(FiveMinute));
        assert_eq!(Granularity::parse("hourly"), Some(Hour));
        assert_eq!(Granularity::parse("daily"), Some(Day));
        assert_eq!(Granularity::parse("monthly"), Some(Month));
        assert_eq!(Granularity::parse("yearly"), Some(Year));
        assert_eq!(Granularity::parse("weekly"), None);
        assert_eq!(Granularity::parse(""), None);
        assert!(Granularity::ALL.windows(2).all(|w| w[0] < w[1]));
        for (i, g) in Granularity::ALL.iter().enumerate() {
            assert_eq!(g.index(), i);
        }
    }

    #[test]
    fn civil_conversions_match_known_dates() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
        assert_eq!(days_from_civil(0, 3, 1), -719_468);
        assert_eq!(days_from_civil(1969, 12, 31), -1);
        assert_eq!(utc(2026, 3, 29, 1, 0), CET_SPRING_2026);
        assert_eq!(utc(2026, 10, 25, 1, 0), CET_FALL_2026);
        assert_eq!(utc(2028, 2, 29, 0, 0), 1_835_395_200);
        assert_eq!(civil_from_days(-1), (1969, 12, 31));
        assert_eq!(civil_from_days(-719_468), (0, 3, 1));
        assert_eq!(civil_from_days(-719_469), (0, 2, 29));
        assert_eq!(
            civil_from_days(days_from_civil(-4713, 11, 24)),
            (-4713, 11, 24)
        );
        // Every day of ±2,700 years: round trip, and each day follows the
        // one before it.
        let mut previous = civil_from_days(-1_000_001);
        for day in -1_000_000..1_000_000 {
            let (y, m, d) = civil_from_days(day);
            assert_eq!(days_from_civil(y, m, d), day);
            let follows = if d == 1 {
                let (py, pm, pd) = previous;
                pd >= 28 && (m == pm % 12 + 1) && (y == py + i64::from(m == 1))
            } else {
                (y, m, d - 1) == previous
            };
            assert!(follows, "{previous:?} then {:?}", (y, m, d));
            previous = (y, m, d);
        }
        // Sparse round trips far out, across many 400-year eras.
        for day in (-400_000_000_000..400_000_000_000).step_by(99_999_989) {
            let (y, m, d) = civil_from_days(day);
            assert_eq!(days_from_civil(y, m, d), day);
        }
    }

    #[test]
    fn utc_periods() {
        assert_eq!(UTC.period(Day, 0), 0);
        assert_eq!(UTC.period(Day, -1), -1);
        assert_eq!(UTC.period(FiveMinute, -1), -1);
        assert_eq!(UTC.period(Hour, 3599), 0);
        assert_eq!(UTC.period(Hour, 3600), 1);
        assert_eq!(UTC.period(Month, 0), 1970 * 12);
        assert_eq!(UTC.period(Month, -1), 1969 * 12 + 11);
        assert_eq!(UTC.period(Year, -1), 1969);
        let march = 2026 * 12 + 2;
        assert_eq!(UTC.start(Month, march), 1_772_323_200);
        assert_eq!(UTC.end(Month, march), utc(2026, 4, 1, 0, 0));
        assert_eq!(UTC.start(Year, 2026), 1_767_225_600);
        assert_eq!(UTC.start(Year, 1969), -365 * SECONDS_PER_DAY);
    }

    #[test]
    fn india_hours_turn_at_half_past_utc() {
        let india = Calendar {
            zone: FixedOffset(5 * 3600 + 1800),
            month_rotate: 1,
        };
        let t = utc(2026, 1, 1, 0, 29) + 59;
        assert_eq!(india.period(Hour, t) + 1, india.period(Hour, t + 1));
        let hour = india.period(Hour, t);
        assert_eq!(india.start(Hour, hour + 1), t + 1);
        assert_eq!(india.start(Hour, hour).rem_euclid(3600), 1800);
        // The local day 2026-01-01 starts at 18:30 UTC the day before.
        let day = india.period(Day, t);
        assert_eq!(day, days_from_civil(2026, 1, 1));
        assert_eq!(india.start(Day, day), utc(2025, 12, 31, 18, 30));
        assert_eq!(india.period(Year, utc(2025, 12, 31, 18, 30)), 2026);
        assert_eq!(india.period(Year, utc(2025, 12, 31, 18, 29)), 2025);
    }

    #[test]
    fn dst_days_are_23_and_25_hours_long() {
        let cal = Calendar {
            zone: cet,
            month_rotate: 1,
        };
        assert_eq!(cet(CET_SPRING_2026 - 1), 3600);
        assert_eq!(cet(CET_SPRING_2026), 7200);
        assert_eq!(cet(CET_FALL_2026 - 1), 7200);
        assert_eq!(cet(CET_FALL_2026), 3600);

        let spring = cal.period(Day, CET_SPRING_2026);
        assert_eq!(spring, days_from_civil(2026, 3, 29));
        assert_eq!(cal.start(Day, spring), utc(2026, 3, 28, 23, 0));
        assert_eq!(cal.end(Day, spring) - cal.start(Day, spring), 23 * 3600);
        let fall = cal.period(Day, CET_FALL_2026);
        assert_eq!(cal.start(Day, fall), utc(2026, 10, 24, 22, 0));
        assert_eq!(cal.end(Day, fall) - cal.start(Day, fall), 25 * 3600);

        // Spring: 02:00 local never happens; that hour is empty and the
        // next starts at the transition.
        let two_am = cal.period(Hour, CET_SPRING_2026 - 1) + 1;
        assert_eq!(cal.start(Hour, two_am), CET_SPRING_2026);
        assert_eq!(cal.end(Hour, two_am), CET_SPRING_2026);
        assert_eq!(cal.period(Hour, CET_SPRING_2026), two_am + 1);
        // A five-minute period inside the gap, too.
        assert_eq!(cal.start(FiveMinute, two_am * 12 + 6), CET_SPRING_2026);

        // Fall: 02:00–03:00 local happens twice; that hour is two long.
        let repeated = cal.period(Hour, CET_FALL_2026);
        assert_eq!(cal.period(Hour, CET_FALL_2026 - 1800), repeated);
        assert_eq!(cal.period(Hour, CET_FALL_2026 + 1800), repeated);
        assert_eq!(cal.start(Hour, repeated), CET_FALL_2026 - 3600);
        assert_eq!(cal.end(Hour, repeated), CET_FALL_2026 + 3600);
        // Five-minute periods of the repeated hour map to their first pass.
        let five = cal.period(FiveMinute, CET_FALL_2026);
        assert_eq!(cal.start(FiveMinute, five), CET_FALL_2026 - 3600);
        assert_eq!(cal.period(FiveMinute, CET_FALL_2026 - 3600), five);
    }

    #[test]
    fn billing_month_starts_on_rotate_day() {
        for offset in [0, 3600, -5 * 3600] {
            let cal = Calendar {
                zone: FixedOffset(offset),
                month_rotate: 15,
            };
            let local_midnight = |y, m, d| utc(y, m, d, 0, 0) - i64::from(offset);
            let february = 2026 * 12 + 1;
            let march = 2026 * 12 + 2;
            assert_eq!(
                cal.period(Month, local_midnight(2026, 3, 14) + 43_200),
                february
            );
            assert_eq!(cal.period(Month, local_midnight(2026, 3, 15) - 1), february);
            assert_eq!(cal.period(Month, local_midnight(2026, 3, 15)), march);
            assert_eq!(cal.start(Month, march), local_midnight(2026, 3, 15));
            assert_eq!(cal.end(Month, march), local_midnight(2026, 4, 15));
            // January 1–14 belongs to December's billing month, but not to
            // the previous year: years ignore the rotate day.
            let new_year = local_midnight(2026, 1, 1);
            assert_eq!(cal.period(Month, new_year), 2025 * 12 + 11);
            assert_eq!(cal.period(Year, new_year), 2026);
        }
        // Out-of-range rotate days are clamped, not trusted.
        let zero = Calendar {
            zone: FixedOffset(0),
            month_rotate: 0,
        };
        let big = Calendar {
            zone: FixedOffset(0),
            month_rotate: 31,
        };
        let t = utc(2026, 2, 28, 12, 0);
        assert_eq!(zero.period(Month, t), UTC.period(Month, t));
        assert_eq!(big.period(Month, t), 2026 * 12 + 1);
        assert_eq!(big.start(Month, 2026 * 12 + 1), utc(2026, 2, 28, 0, 0));
    }

    #[test]
    fn leap_years() {
        let leap_day = utc(2028, 2, 29, 12, 0);
        let day = UTC.period(Day, leap_day);
        assert_eq!(UTC.start(Day, day), utc(2028, 2, 29, 0, 0));
        assert_eq!(UTC.start(Day, day + 1), utc(2028, 3, 1, 0, 0));
        assert_eq!(UTC.period(Month, leap_day), 2028 * 12 + 1);
        let february = |year: i64| UTC.end(Month, year * 12 + 1) - UTC.start(Month, year * 12 + 1);
        assert_eq!(february(2028), 29 * SECONDS_PER_DAY);
        assert_eq!(february(2026), 28 * SECONDS_PER_DAY);
        assert_eq!(february(2000), 29 * SECONDS_PER_DAY);
        assert_eq!(february(2100), 28 * SECONDS_PER_DAY);
        assert_eq!(february(-4), 29 * SECONDS_PER_DAY);
        assert_eq!(
            UTC.end(Year, 2028) - UTC.start(Year, 2028),
            366 * SECONDS_PER_DAY
        );
        assert_eq!(
            UTC.end(Year, 2027) - UTC.start(Year, 2027),
            365 * SECONDS_PER_DAY
        );
    }

    #[test]
    fn year_turns_by_local_time() {
        let t = utc(2026, 12, 31, 23, 30);
        let berlin = Calendar {
            zone: FixedOffset(3600),
            month_rotate: 1,
        };
        assert_eq!(berlin.period(Year, t), 2027);
        assert_eq!(berlin.period(Month, t), 2027 * 12);
        assert_eq!(berlin.period(Day, t), days_from_civil(2027, 1, 1));
        assert_eq!(berlin.start(Year, 2027), utc(2026, 12, 31, 23, 0));
        assert_eq!(UTC.period(Year, t), 2026);
        assert_eq!(UTC.period(Month, t), 2026 * 12 + 11);
        let new_york = Calendar {
            zone: FixedOffset(-5 * 3600),
            month_rotate: 1,
        };
        assert_eq!(new_york.period(Year, utc(2027, 1, 1, 4, 59)), 2026);
        assert_eq!(new_york.period(Year, utc(2027, 1, 1, 5, 0)), 2027);
    }

    fn sweep<Z: UtcOffset>(cal: &Calendar<Z>, from: i64, to: i64, samples: usize, seed: u64) {
        let mut state = seed;
        let span = u64::try_from(to - from).unwrap();
        for _ in 0..samples {
            let t = from + i64::try_from(next(&mut state) % span).unwrap();
            for g in Granularity::ALL {
                let i = cal.period(g, t);
                let (start, end) = (cal.start(g, i), cal.end(g, i));
                assert_eq!(cal.period(g, start), i, "{g:?} t={t}");
                assert!(end > start, "{g:?} t={t}");
                assert!(cal.period(g, end) > i, "{g:?} t={t}");
                // The only exception: a five-minute period's second pass
                // through a repeated hour (see the module doc).
                let repeated = cal.offset(t - 3600) > cal.offset(t);
                if !(g == FiveMinute && repeated) {
                    assert!(start <= t && t < end, "{g:?} t={t} [{start}, {end})");
                }
            }
        }
    }

    #[test]
    fn start_and_period_agree_across_years_and_zones() {
        let from = utc(2020, 1, 1, 0, 0);
        let to = utc(2032, 1, 1, 0, 0);
        for rotate in [1, 2, 15, 28] {
            let seed = u64::from(rotate);
            sweep(
                &Calendar {
                    zone: FixedOffset(0),
                    month_rotate: rotate,
                },
                from,
                to,
                3000,
                seed,
            );
            for offset in [5 * 3600 + 1800, -(9 * 3600 + 1800), 14 * 3600, -12 * 3600] {
                let cal = Calendar {
                    zone: FixedOffset(offset),
                    month_rotate: rotate,
                };
                sweep(&cal, from, to, 3000, seed + 7);
            }
            for zone in [cet as fn(i64) -> i32, pacific] {
                let cal = Calendar {
                    zone,
                    month_rotate: rotate,
                };
                sweep(&cal, from, to, 5000, seed + 13);
                // And densely around every transition.
                for year in 2020..2032 {
                    for month in [3, 10, 11] {
                        let first = utc(year, month, 1, 0, 0);
                        sweep(&cal, first, first + 35 * SECONDS_PER_DAY, 300, seed + 17);
                    }
                }
            }
        }
        // Every second around both 2026 transitions.
        let cal = Calendar {
            zone: cet,
            month_rotate: 1,
        };
        for center in [CET_SPRING_2026, CET_FALL_2026] {
            for t in center - 7300..center + 7300 {
                for g in [Hour, Day, Month, Year] {
                    let i = cal.period(g, t);
                    assert!(cal.start(g, i) <= t && t < cal.end(g, i), "{g:?} {t}");
                }
            }
        }
    }

    #[test]
    fn extreme_inputs_do_not_panic() {
        let mut values = vec![
            i64::MIN,
            i64::MIN + 1,
            i64::MAX,
            i64::MAX - 1,
            -1_000_000_000_000,
            1_000_000_000_000,
            0,
            -1,
            i64::from(i32::MIN),
            i64::from(i32::MAX) + 1,
        ];
        let mut state = 42;
        for _ in 0..200 {
            values.push(next(&mut state) as i64);
            values.push((next(&mut state) % 2_000_000_000_000) as i64 - 1_000_000_000_000);
        }
        let weird = |unix: i64| if unix % 2 == 0 { i32::MAX } else { i32::MIN };
        for rotate in [0, 1, 28, 255] {
            let fixed = [
                FixedOffset(0),
                FixedOffset(14 * 3600),
                FixedOffset(-12 * 3600),
                FixedOffset(i32::MAX),
                FixedOffset(i32::MIN),
            ];
            for zone in fixed {
                exercise(
                    &Calendar {
                        zone,
                        month_rotate: rotate,
                    },
                    &values,
                );
            }
            exercise(
                &Calendar {
                    zone: cet,
                    month_rotate: rotate,
                },
                &values,
            );
            exercise(
                &Calendar {
                    zone: weird,
                    month_rotate: rotate,
                },
                &values,
            );
            exercise(
                &Calendar {
                    zone: SystemZone,
                    month_rotate: rotate,
                },
                &values,
            );
        }
        // Within ±1e12 seconds (±31,000 years) the invariants still hold.
        for zone in [FixedOffset(0), FixedOffset(-(3 * 3600 + 1800))] {
            let cal = Calendar {
                zone,
                month_rotate: 15,
            };
            for &t in values
                .iter()
                .filter(|t| t.unsigned_abs() <= 1_000_000_000_000)
            {
                for g in Granularity::ALL {
                    let i = cal.period(g, t);
                    assert!(cal.start(g, i) <= t && t < cal.end(g, i), "{g:?} {t}");
                    assert_eq!(cal.period(g, cal.start(g, i)), i, "{g:?} {t}");
                }
            }
        }
    }

    fn exercise<Z: UtcOffset>(cal: &Calendar<Z>, values: &[i64]) {
        for &v in values {
            for g in Granularity::ALL {
                let i = cal.period(g, v);
                let _ = cal.start(g, i);
                let _ = cal.start(g, v);
                let _ = cal.end(g, v);
            }
        }
    }

    #[test]
    fn system_zone_gives_a_plausible_offset() {
        for t in [
            0,
            1_767_225_600,
            CET_FALL_2026,
            -1_000_000_000_000,
            i64::MAX,
        ] {
            let offset = SystemZone.utc_offset(t);
            assert!(offset.abs() <= 26 * 3600, "{offset} at {t}");
        }
    }
}
