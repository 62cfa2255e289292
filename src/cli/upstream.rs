use super::{CliError, format};
use crate::config::Config;
use crate::upstream::UpstreamConfig;
use crate::upstream::report::{
    NamedTraffic, SourceView, TrafficView, UpstreamDeviceView, UpstreamReport,
};
use crate::upstream::sources::{Deadline, Reading, source_for};
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
    /// configuration file (default /etc/config/netmeter, else
    /// /etc/netmeter/netmeter.conf)
    #[argh(option, short = 'c')]
    config: Option<PathBuf>,
}

pub fn run(args: UpstreamArgs) -> Result<(), CliError> {
    let config = Config::load(args.config.as_deref())?;
    let asked = super::ask_daemon(&config, args.url.as_deref(), "/api/v1/upstream")?;
    let report: UpstreamReport = match asked {
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
                estimated: source.kind.estimates(),
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
fn scrape_once(source: &UpstreamConfig) -> Result<Reading, crate::upstream::sources::ScrapeError> {
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
            mac: d.mac.to_string(),
            ip: d.ip.map(|ip| ip.to_string()),
            hostname: d.hostname.clone(),
            rx_bytes: d.rx_bytes,
            tx_bytes: d.tx_bytes,
            ..UpstreamDeviceView::default()
        })
        .collect();
}

fn render(report: &UpstreamReport) -> String {
    let sources = &report.sources;
    let mut out = String::new();
    let mut rows = Vec::new();
    for s in sources {
        let status = match (&s.last_error, s.stopped, s.ok) {
            (None, _, true) => "ok",
            (None, _, false) => "waiting",
            (Some(_), true, _) => "stopped",
            (Some(_), false, _) => s.error_stage.as_deref().unwrap_or("error"),
        };
        let mut series: Vec<(&str, TrafficView)> = Vec::new();
        series.extend(s.wan.map(|t| ("wan", t)));
        series.extend(s.bypass.map(|t| ("bypass", t)));
        series.extend(s.interfaces.iter().map(|i| (i.name.as_str(), i.traffic)));
        let head = [s.name.clone(), s.kind.clone(), status.to_owned()];
        if series.is_empty() {
            rows.push(head.iter().cloned().chain(["-".to_owned()]).collect());
        }
        for (i, (name, t)) in series.into_iter().enumerate() {
            let mut row: Vec<String> = match i {
                0 => head.to_vec(),
                _ => vec![String::new(); 3],
            };
            row.push(name.to_owned());
            row.push(format::bytes(t.rx_bytes));
            row.push(format::bytes(t.tx_bytes));
            row.push(format::rate(t.rx_rate));
            row.push(format::rate(t.tx_rate));
            rows.push(row);
        }
    }
    out += &format::table(
        &[
            "source", "type", "status", "series", "rx", "tx", "rx rate", "tx rate",
        ],
        &rows,
    );
    for s in sources {
        if let Some(e) = &s.last_error {
            out += &format!("{}: {e}\n", s.name);
        }
        // A reset is why a total grew less than the router's counter fell.
        if let Some(r) = &s.last_reset {
            out += &format!(
                "{}: counters last started over ({}): {}\n",
                s.name, r.reason, r.detail
            );
        }
    }
    for s in sources.iter().filter(|s| !s.devices.is_empty()) {
        let or_dash = |v: &Option<String>| v.clone().unwrap_or_else(|| "-".into());
        let rows: Vec<Vec<String>> = s
            .devices
            .iter()
            .map(|d| {
                vec![
                    or_dash(&d.hostname),
                    d.mac.clone(),
                    or_dash(&d.ip),
                    format::bytes(d.rx_bytes),
                    format::bytes(d.tx_bytes),
                    format::rate(d.rx_rate),
                    format::rate(d.tx_rate),
                ]
            })
            .collect();
        out += &format!("\ndevices seen by {}:\n", s.name);
        if s.estimated {
            out += "(rx and tx are estimates: the router's rates integrated over time, \
                    from the second reading on; see docs/UPSTREAM.md)\n";
        }
        out += &format::table(
            &["device", "mac", "ip", "rx", "tx", "rx rate", "tx rate"],
            &rows,
        );
    }
    for s in sources.iter().filter(|s| !s.line.is_empty()) {
        out += &format!("\nline of {}:\n", s.name);
        let rows: Vec<Vec<String>> = s
            .line
            .iter()
            .map(|l| {
                let end = l.end.clone().unwrap_or_default();
                vec![l.name.clone(), end, l.value.to_string(), l.kind.clone()]
            })
            .collect();
        out += &format::table(&["statistic", "end", "value", "kind"], &rows);
    }
    out
}

/// Each upstream source scraped once, now: which stage failed, if any.
pub fn check(config: &Config, say: &mut impl FnMut(bool, &'static str, String)) {
    for source in &config.upstream {
        let name = format!("'{}' ({})", source.name, source.kind.name());
        match scrape_once(source) {
            Ok(reading) => {
                let mut parts = Vec::new();
                if let Some(w) = reading.wan {
                    parts.push(format!(
                        "WAN counters {} rx / {} tx",
                        format::bytes(w.rx_bytes),
                        format::bytes(w.tx_bytes)
                    ));
                }
                if !reading.interfaces.is_empty() {
                    parts.push(format!("{} interfaces", reading.interfaces.len()));
                }
                if !reading.devices.is_empty() {
                    parts.push(format!("{} devices", reading.devices.len()));
                }
                if !reading.line.is_empty() {
                    parts.push(format!("{} line statistics", reading.line.len()));
                }
                if parts.is_empty() {
                    parts.push("answered, but with no counters".into());
                }
                say(true, "upstream", format!("{name}: {}", parts.join(", ")));
            }
            Err(e) => say(false, "upstream", format!("{name}: {e}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::upstream::report::LineView;

    #[test]
    fn tables_of_sources_devices_and_line_statistics() {
        let traffic = |rx_bytes, tx_bytes, rx_rate| TrafficView {
            rx_bytes,
            tx_bytes,
            rx_rate,
            tx_rate: 0,
        };
        let report = UpstreamReport {
            sources: vec![
                SourceView {
                    name: "isp".into(),
                    kind: "fritzbox".into(),
                    ok: true,
                    wan: Some(traffic(1 << 30, 1024, 125_000)),
                    bypass: Some(traffic(2048, 0, 0)),
                    uptime: Some(40),
                    last_reset: Some(crate::upstream::report::ResetView {
                        at: 1_795_000_000,
                        reason: "uptime".into(),
                        detail: "the router's uptime went back from 900 s to 40 s".into(),
                    }),
                    ..SourceView::default()
                },
                SourceView {
                    name: "ap".into(),
                    kind: "deco".into(),
                    estimated: true,
                    stopped: true,
                    error_stage: Some("auth".into()),
                    last_error: Some("wrong credentials: …".into()),
                    devices: vec![UpstreamDeviceView {
                        mac: "ac:89:95:77:9a:e9".into(),
                        hostname: Some("tv".into()),
                        rx_bytes: 5,
                        tx_bytes: 6,
                        ..UpstreamDeviceView::default()
                    }],
                    ..SourceView::default()
                },
                SourceView {
                    name: "dsl".into(),
                    kind: "draytek".into(),
                    ok: true,
                    line: vec![LineView {
                        name: "crc".into(),
                        end: Some("near".into()),
                        value: 12.5,
                        kind: "counter".into(),
                    }],
                    ..SourceView::default()
                },
            ],
        };
        // What the daemon sends is what the table reads: through the API's
        // own JSON, so a renamed field fails here.
        let sent = crate::serve::api::json(&report);
        let report: UpstreamReport = super::super::read_answer(sent.status, &sent.body).unwrap();
        let text = render(&report);
        for needle in [
            "isp     fritzbox       ok     wan",
            "1.00 GiB",
            "1.00 Mbit/s",
            "bypass",
            "ap          deco  stopped",
            "rx and tx are estimates",
            "ap: wrong credentials",
            "isp: counters last started over (uptime): the router's uptime went back from 900 s \
             to 40 s",
            "devices seen by ap:",
            "tv",
            "line of dsl:",
            "crc",
            "12.5",
        ] {
            assert!(text.contains(needle), "{needle} missing:\n{text}");
        }
    }
}
