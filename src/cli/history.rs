use super::{CliError, format};
use crate::config::Config;
use crate::mac::Mac;
use crate::rxtx::RxTx;
use crate::serve::history::{self, BucketView, HistoryQuery, HistoryReport, Series, SeriesReport};
use crate::store::calendar::{Granularity, SystemZone, UtcOffset};
use crate::store::persist::Store;
use argh::FromArgs;
use std::path::PathBuf;

/// Show traffic per period, like vnStat: an interface, a device (MAC or
/// name), or without one the WAN interfaces and the busiest devices.
#[derive(FromArgs)]
#[argh(subcommand, name = "history")]
pub struct HistoryArgs {
    /// interface name, device MAC or device name
    #[argh(positional)]
    series: Option<String>,
    /// five-minute periods
    #[argh(switch)]
    fiveminute: bool,
    /// hourly periods
    #[argh(switch)]
    hourly: bool,
    /// daily periods (the default)
    #[argh(switch)]
    daily: bool,
    /// monthly periods
    #[argh(switch)]
    monthly: bool,
    /// yearly periods
    #[argh(switch)]
    yearly: bool,
    /// periods shown, newest last (default 24 five-minute or hourly, 30
    /// daily, 12 monthly, every year); 0 shows all kept
    #[argh(option)]
    limit: Option<usize>,
    /// print JSON instead of tables
    #[argh(switch)]
    json: bool,
    /// print CSV for a spreadsheet: one row per series and period, with the
    /// period's start in local time and as Unix time (every period kept,
    /// unless --limit)
    #[argh(switch)]
    csv: bool,
    /// ask the daemon at this address (http://HOST:PORT)
    #[argh(option)]
    url: Option<String>,
    /// configuration file (default /etc/config/netmeter, else
    /// /etc/netmeter/netmeter.conf)
    #[argh(option, short = 'c')]
    config: Option<PathBuf>,
}

pub fn run(args: HistoryArgs) -> Result<(), CliError> {
    let picked: Vec<Granularity> = [
        (args.fiveminute, Granularity::FiveMinute),
        (args.hourly, Granularity::Hour),
        (args.daily, Granularity::Day),
        (args.monthly, Granularity::Month),
        (args.yearly, Granularity::Year),
    ]
    .into_iter()
    .filter_map(|(on, g)| on.then_some(g))
    .collect();
    let period = match picked[..] {
        [] => Granularity::Day,
        [g] => g,
        _ => {
            return Err(CliError::Usage(
                "give one of --fiveminute, --hourly, --daily, --monthly, --yearly".into(),
            ));
        }
    };
    if args.json && args.csv {
        return Err(CliError::Usage("give one of --json and --csv".into()));
    }
    let config = Config::load(args.config.as_deref())?;
    let mut path = format!("/api/v1/history?period={}", period.name());
    if let Some(series) = &args.series {
        path.push_str(&format!("&name={}", percent_encode(series)));
    }
    let report = match super::ask_daemon::<HistoryReport>(&config, args.url.as_deref(), &path)? {
        Some(r) => r,
        None => read_saved(&config, args.series.as_deref(), period)?,
    };
    if args.json {
        return super::print_json(&report);
    }
    if args.csv {
        print!("{}", csv(&report, args.limit.unwrap_or(0), &SystemZone));
        return Ok(());
    }
    let limit = args.limit.unwrap_or(match period {
        Granularity::FiveMinute | Granularity::Hour => 24,
        Granularity::Day => 30,
        Granularity::Month => 12,
        Granularity::Year => 0,
    });
    if report.series.is_empty() {
        println!("no history yet");
    }
    for (i, series) in report.series.iter().enumerate() {
        if i > 0 {
            println!();
        }
        print!("{}", render(series, period, report.now, limit, &SystemZone));
    }
    Ok(())
}

fn percent_encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b':' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Without a daemon: the newest saved state, read without touching the files.
fn read_saved(
    config: &Config,
    series: Option<&str>,
    period: Granularity,
) -> Result<HistoryReport, CliError> {
    let cal = crate::store::calendar(config);
    let sizes = crate::store::history_sizes(config);
    let mut store = Store::new(&config.spool_directory, &config.database_directory).read_only();
    let (state, problems) = store.load(&cal, sizes.pair());
    for p in problems {
        eprintln!("netmeter: {p}");
    }
    let state = state.ok_or_else(|| {
        CliError::Failed(format!(
            "no daemon is running and no saved state is in {} or {}",
            config.spool_directory.display(),
            config.database_directory.display()
        ))
    })?;
    eprintln!(
        "netmeter: no daemon answers: showing the state saved in {}",
        store.status.loaded_from
    );
    let query = HistoryQuery {
        series: series.map(|s| Series::Any(s.to_owned())),
        period,
    };
    let (names, _) = crate::collect::identity::Names::load(config);
    let wan = wan_now().unwrap_or_default();
    let hostname = |mac: &Mac| names.hostname(mac, &[]).map(str::to_owned);
    history::report(
        &state,
        &cal,
        &query,
        &wan,
        &hostname,
        crate::clock::unix_now(),
    )
    .map_err(CliError::Failed)
}

/// The WAN interfaces by today's default routes, for the summary.
fn wan_now() -> Option<Vec<String>> {
    use crate::netlink::{NetlinkSocket, socket::NETLINK_ROUTE};
    let mut socket = NetlinkSocket::open(NETLINK_ROUTE).ok()?;
    let links = crate::collect::links::read_links(&mut socket).ok()?;
    crate::collect::links::wan_interfaces(&mut socket, &links).ok()
}

fn render(
    series: &SeriesReport,
    period: Granularity,
    now: u64,
    limit: usize,
    zone: &dyn UtcOffset,
) -> String {
    let title = match &series.hostname {
        Some(h) => format!("{} ({h})", series.name),
        None => series.name.clone(),
    };
    let mut out = format!("{title}  {} traffic\n", adjective(period));
    let skip = if limit == 0 {
        0
    } else {
        series.buckets.len().saturating_sub(limit)
    };
    let shown = &series.buckets[skip..];
    if shown.is_empty() {
        out.push_str("  no data for this period length (see the history_* options)\n");
        return out;
    }
    let mut rows: Vec<Vec<String>> = shown
        .iter()
        .map(|b| {
            let elapsed = (now as i64).clamp(b.start, b.end) - b.start;
            vec![
                label(b.start, period, zone),
                format::bytes(b.rx_bytes),
                format::bytes(b.tx_bytes),
                format::bytes(b.rx_bytes.saturating_add(b.tx_bytes)),
                average(b, elapsed),
            ]
        })
        .collect();
    if let Some(current) = shown.last()
        && matches!(period, Granularity::Day | Granularity::Month)
        && let Some(RxTx { rx, tx }) = estimate(current, now)
    {
        rows.push(vec![
            "estimated".into(),
            format::bytes(rx),
            format::bytes(tx),
            format::bytes(rx.saturating_add(tx)),
            String::new(),
        ]);
    }
    out.push_str(&format::table(
        &[period_heading(period), "rx", "tx", "total", "avg. rate"],
        &rows,
    ));
    out
}

/// The CSV header: history keeps bytes only (no packets), per direction.
const CSV_HEADER: &str = "series,kind,hostname,period_start_local,period_start_unix,period_end_unix,rx_bytes,tx_bytes,total_bytes\n";

/// Every series' periods as CSV (RFC 4180: fields with a comma, quote or
/// line break are quoted), the last `limit` of each (0: all).
fn csv(report: &HistoryReport, limit: usize, zone: &dyn UtcOffset) -> String {
    let mut out = String::from(CSV_HEADER);
    for s in &report.series {
        let skip = if limit == 0 {
            0
        } else {
            s.buckets.len().saturating_sub(limit)
        };
        for b in &s.buckets[skip..] {
            let fields = [
                s.name.clone(),
                s.kind.clone(),
                s.hostname.clone().unwrap_or_default(),
                local_time(b.start, zone),
                b.start.to_string(),
                b.end.to_string(),
                b.rx_bytes.to_string(),
                b.tx_bytes.to_string(),
                b.rx_bytes.saturating_add(b.tx_bytes).to_string(),
            ];
            let quoted: Vec<String> = fields.iter().map(|f| csv_field(f)).collect();
            out.push_str(&quoted.join(","));
            out.push('\n');
        }
    }
    out
}

fn csv_field(f: &str) -> String {
    if f.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", f.replace('"', "\"\""))
    } else {
        f.to_string()
    }
}

/// `2026-11-22 14:05:00` in the router's local time: what spreadsheets read.
fn local_time(t: i64, zone: &dyn UtcOffset) -> String {
    let local = t.saturating_add(i64::from(zone.utc_offset(t)));
    let (days, secs) = (local.div_euclid(86_400), local.rem_euclid(86_400));
    let (y, m, d) = crate::store::calendar::civil_from_days(days);
    let (hh, mm, ss) = (secs / 3600, secs % 3600 / 60, secs % 60);
    format!("{y:04}-{m:02}-{d:02} {hh:02}:{mm:02}:{ss:02}")
}

fn adjective(period: Granularity) -> &'static str {
    match period {
        Granularity::FiveMinute => "five-minute",
        Granularity::Hour => "hourly",
        Granularity::Day => "daily",
        Granularity::Month => "monthly",
        Granularity::Year => "yearly",
    }
}

fn period_heading(period: Granularity) -> &'static str {
    match period {
        Granularity::FiveMinute | Granularity::Hour => "time",
        Granularity::Day => "day",
        Granularity::Month => "month",
        Granularity::Year => "year",
    }
}

fn average(b: &BucketView, elapsed: i64) -> String {
    if elapsed <= 0 {
        return String::new();
    }
    format::rate(b.rx_bytes.saturating_add(b.tx_bytes) / elapsed as u64)
}

/// The running period's totals at its current pace, as vnStat estimates;
/// None until an hour of it has passed (too early to say anything).
fn estimate(b: &BucketView, now: u64) -> Option<RxTx<u64>> {
    let now = now as i64;
    if now <= b.start || now >= b.end {
        return None;
    }
    let (elapsed, length) = ((now - b.start) as u128, (b.end - b.start) as u128);
    if elapsed < 3600 {
        return None;
    }
    let scale = |v: u64| (u128::from(v) * length / elapsed).min(u128::from(u64::MAX)) as u64;
    Some(RxTx::new(scale(b.rx_bytes), scale(b.tx_bytes)))
}

/// The period's start in local time: `2026-11-22 14:05`, `2026-11-22`,
/// `2026-11`, `2026`.
fn label(start: i64, period: Granularity, zone: &dyn UtcOffset) -> String {
    let local = start.saturating_add(i64::from(zone.utc_offset(start)));
    let (days, secs) = (local.div_euclid(86_400), local.rem_euclid(86_400));
    let (y, m, d) = crate::store::calendar::civil_from_days(days);
    let (hh, mm) = (secs / 3600, secs % 3600 / 60);
    match period {
        Granularity::FiveMinute | Granularity::Hour => {
            format!("{y:04}-{m:02}-{d:02} {hh:02}:{mm:02}")
        }
        Granularity::Day => format!("{y:04}-{m:02}-{d:02}"),
        // A billing month (month_rotate) starts mid-month: show the date.
        Granularity::Month if d != 1 => format!("{y:04}-{m:02}-{d:02}"),
        Granularity::Month => format!("{y:04}-{m:02}"),
        Granularity::Year => format!("{y:04}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::calendar::FixedOffset;

    fn bucket(start: i64, end: i64, rx: u64, tx: u64) -> BucketView {
        BucketView {
            start,
            end,
            rx_bytes: rx,
            tx_bytes: tx,
        }
    }

    #[test]
    fn labels_are_local_time() {
        // 2026-11-22 23:30 UTC is the 23rd at +01:00.
        let t = 1_795_390_200;
        assert_eq!(label(t, Granularity::Day, &FixedOffset(0)), "2026-11-22");
        assert_eq!(label(t, Granularity::Day, &FixedOffset(3600)), "2026-11-23");
        assert_eq!(
            label(t, Granularity::Hour, &FixedOffset(19_800)),
            "2026-11-23 05:00"
        );
        assert_eq!(label(t, Granularity::Year, &FixedOffset(0)), "2026");
    }

    #[test]
    fn a_day_is_estimated_at_its_pace_after_an_hour() {
        let day = bucket(0, 86_400, 1000, 100);
        assert_eq!(estimate(&day, 1800), None);
        assert_eq!(estimate(&day, 21_600), Some(RxTx::new(4000, 400)));
        assert_eq!(estimate(&day, 86_400), None);
    }

    #[test]
    fn a_table_has_one_row_per_period_and_an_estimate() {
        let series = SeriesReport {
            name: "wan".into(),
            kind: "interface".into(),
            hostname: None,
            buckets: vec![
                bucket(0, 86_400, 1 << 30, 1 << 20),
                bucket(86_400, 172_800, 1 << 20, 0),
            ],
        };
        let text = render(
            &series,
            Granularity::Day,
            86_400 + 43_200,
            0,
            &FixedOffset(0),
        );
        assert!(text.starts_with("wan  daily traffic\n"), "{text}");
        assert!(text.contains("1970-01-01"), "{text}");
        assert!(text.contains("1970-01-02"), "{text}");
        assert!(text.contains("estimated"), "{text}");
        assert!(text.contains("2.00 MiB"), "{text}");
        let one = render(
            &series,
            Granularity::Day,
            86_400 + 43_200,
            1,
            &FixedOffset(0),
        );
        assert!(!one.contains("1970-01-01"), "{one}");
    }

    #[test]
    fn the_table_renders_what_the_api_sent() {
        let report = HistoryReport {
            period: "day".into(),
            now: 86_400 + 43_200,
            series: vec![SeriesReport {
                name: "aa:bb:cc:dd:ee:01".into(),
                kind: "device".into(),
                hostname: Some("laptop".into()),
                buckets: vec![bucket(0, 86_400, 1 << 30, 1 << 20)],
            }],
        };
        let sent = crate::serve::api::json(&report);
        let read: HistoryReport = super::super::read_answer(sent.status, &sent.body).unwrap();
        let text = render(
            &read.series[0],
            Granularity::Day,
            read.now,
            0,
            &FixedOffset(0),
        );
        assert!(
            text.starts_with("aa:bb:cc:dd:ee:01 (laptop)  daily traffic\n"),
            "{text}"
        );
        assert!(
            text.contains("1970-01-01  1.00 GiB  1.00 MiB  1.00 GiB"),
            "{text}"
        );
    }

    #[test]
    fn a_refused_query_shows_the_daemons_reason() {
        let state = crate::serve::api::samples::state();
        let e = super::super::through_api::<HistoryReport>(state, "/api/v1/history?period=week")
            .unwrap_err();
        assert!(
            e.to_string().ends_with(
                "answered: unknown period 'week': use fiveminute, hour, day, month or year"
            ),
            "{e}"
        );
    }

    #[test]
    fn csv_has_local_and_unix_start_and_quotes_what_needs_it() {
        let report = HistoryReport {
            period: "day".into(),
            now: 0,
            series: vec![SeriesReport {
                name: "aa:bb:cc:dd:ee:01".into(),
                kind: "device".into(),
                hostname: Some("Kid's \"pc\", upstairs".into()),
                buckets: vec![bucket(0, 86_400, 1000, 24), bucket(86_400, 172_800, 5, 6)],
            }],
        };
        let text = csv(&report, 0, &FixedOffset(3600));
        assert_eq!(
            text,
            format!(
                "{CSV_HEADER}\
                 aa:bb:cc:dd:ee:01,device,\"Kid's \"\"pc\"\", upstairs\",1970-01-01 01:00:00,0,86400,1000,24,1024\n\
                 aa:bb:cc:dd:ee:01,device,\"Kid's \"\"pc\"\", upstairs\",1970-01-02 01:00:00,86400,172800,5,6,11\n"
            )
        );
        assert_eq!(csv(&report, 1, &FixedOffset(0)).lines().count(), 2);
    }

    #[test]
    fn names_are_escaped_for_the_query() {
        assert_eq!(percent_encode("Kid's pc"), "Kid%27s%20pc");
    }
}
