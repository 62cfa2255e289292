use super::{CliError, format};
use crate::collect::upstream::{Deadline, Reading, source_for};
use crate::config::{Config, UpstreamConfig};
use crate::serve::upstream::{
    NamedTraffic, SourceView, TrafficView, UpstreamDeviceView, UpstreamReport,
};
use argh::FromArgs;
use std::path::PathBuf;

/// Show the upstream routers' counters, devices and health.
#[derive(FromArgs)]
#[argh(subcommand, name = "upstream")]
pub struct UpstreamArgs {
    /// print JSON instead of tables
    #[argh(switch)]
    json: bool,
    /// ask the daemon at this address (http://HOST:PORT) instead of the
    /// configured listen address
    #[argh(option)]
    url: Option<String>,
    /// configuration file (default /etc/config/netmeter)
    #[argh(option, short = 'c')]
    config: Option<PathBuf>,
}

pub fn run(args: UpstreamArgs) -> Result<(), CliError> {
    let config = Config::load(args.config.as_deref())?;
    let report: UpstreamReport = match super::ask_daemon(
        &config,
        args.url.as_deref(),
        "/api/v1/upstream",
    )? {
        Some(report) => report,
        None => {
            if !config.upstream.is_empty() {
                eprintln!(
                    "netmeter: reading each upstream router once (its own counters since it started)"
                );
            }
            read_directly(&config)
        }
    };
    if args.json {
        super::print_json(&report)
    } else if report.sources.is_empty() {
        println!(
            "no upstream routers configured: add a 'config upstream' section (see docs/UPSTREAM.md)"
        );
        Ok(())
    } else {
        print!("{}", render(&report));
        Ok(())
    }
}

/// Each source scraped once: the router's raw counters.
fn read_directly(config: &Config) -> UpstreamReport {
    let sources = config
        .upstream
        .iter()
        .map(|source| {
            let mut view = SourceView {
                name: source.name.clone(),
                kind: source.kind.name().to_owned(),
                ..SourceView::default()
            };
            match scrape_once(source) {
                Ok(reading) => {
                    view.ok = true;
                    view.last_success = Some(crate::clock::unix_now());
                    raw_view(&mut view, &reading);
                }
                Err(e) => {
                    view.error_stage = Some(e.stage().to_owned());
                    view.last_error = Some(e.to_string());
                }
            }
            view
        })
        .collect();
    UpstreamReport { sources }
}

/// One scrape with the source's own time limit, session closed after.
pub(super) fn scrape_once(
    source: &UpstreamConfig,
) -> Result<Reading, crate::collect::upstream::ScrapeError> {
    let mut client = source_for(source)?;
    let result = client.scrape(Deadline::after(source.timeout));
    client.close(Deadline::after(source.timeout));
    result
}

fn raw_view(view: &mut SourceView, reading: &Reading) {
    let traffic = |rx, tx| TrafficView {
        rx_bytes: rx,
        tx_bytes: tx,
        ..TrafficView::default()
    };
    view.wan = reading.wan.map(|c| traffic(c.rx_bytes, c.tx_bytes));
    view.interfaces = reading
        .interfaces
        .iter()
        .map(|(name, c)| NamedTraffic {
            name: name.clone(),
            traffic: traffic(c.rx_bytes, c.tx_bytes),
        })
        .collect();
    view.devices = reading
        .devices
        .iter()
        .map(|d| UpstreamDeviceView {
            mac: crate::mac::format_mac(&d.mac),
            ip: d.ip.map(|ip| ip.to_string()),
            hostname: d.hostname.clone(),
            rx_bytes: d.rx_bytes,
            tx_bytes: d.tx_bytes,
            ..UpstreamDeviceView::default()
        })
        .collect();
}

fn render(report: &UpstreamReport) -> String {
    let mut out = String::new();
    let traffic_cells = |t: &TrafficView| {
        vec![
            format::bytes(t.rx_bytes),
            format::bytes(t.tx_bytes),
            format::rate(t.rx_rate),
            format::rate(t.tx_rate),
        ]
    };
    let mut rows = Vec::new();
    for s in &report.sources {
        let status = match (&s.last_error, s.stopped) {
            (None, _) if s.ok => "ok".to_owned(),
            (None, _) => "waiting".to_owned(),
            (Some(_), true) => "stopped".to_owned(),
            (Some(_), false) => s.error_stage.clone().unwrap_or_else(|| "error".into()),
        };
        let series = s
            .wan
            .iter()
            .map(|t| ("wan".to_owned(), *t))
            .chain(s.bypass.iter().map(|t| ("bypass".to_owned(), *t)))
            .chain(s.interfaces.iter().map(|i| (i.name.clone(), i.traffic)));
        let mut first = true;
        for (name, t) in series {
            let (source, kind, state) = match first {
                true => (s.name.clone(), s.kind.clone(), status.clone()),
                false => Default::default(),
            };
            first = false;
            let mut row = vec![source, kind, state, name];
            row.extend(traffic_cells(&t));
            rows.push(row);
        }
        if first {
            rows.push(vec![s.name.clone(), s.kind.clone(), status, "-".into()]);
        }
    }
    out += &format::table(
        &[
            "source", "type", "status", "series", "rx", "tx", "rx rate", "tx rate",
        ],
        &rows,
    );
    for s in &report.sources {
        if let Some(e) = &s.last_error {
            out += &format!("{}: {e}\n", s.name);
        }
    }
    for s in report.sources.iter().filter(|s| !s.devices.is_empty()) {
        let rows: Vec<Vec<String>> = s
            .devices
            .iter()
            .map(|d| {
                vec![
                    d.hostname.clone().unwrap_or_else(|| "-".into()),
                    d.mac.clone(),
                    d.ip.clone().unwrap_or_else(|| "-".into()),
                    format::bytes(d.rx_bytes),
                    format::bytes(d.tx_bytes),
                    format::rate(d.rx_rate),
                    format::rate(d.tx_rate),
                ]
            })
            .collect();
        out += &format!("\ndevices seen by {}:\n", s.name);
        out += &format::table(
            &["device", "mac", "ip", "rx", "tx", "rx rate", "tx rate"],
            &rows,
        );
    }
    for s in report.sources.iter().filter(|s| !s.line.is_empty()) {
        out += &format!("\nline of {}:\n", s.name);
        let rows: Vec<Vec<String>> = s
            .line
            .iter()
            .map(|l| {
                vec![
                    l.name.clone(),
                    l.end.clone().unwrap_or_default(),
                    format!("{}", l.value),
                    l.kind.clone(),
                ]
            })
            .collect();
        out += &format::table(&["statistic", "end", "value", "kind"], &rows);
    }
    out
}
