use super::{CliError, format};
use crate::config::Config;
use crate::upstream::UpstreamConfig;
use crate::upstream::report::{
    NamedTraffic, SourceView, TrafficView, UpstreamDeviceView, UpstreamReport,
};
use crate::upstream::sources::{Deadline, Reading, source_for};
use argh::FromArgs;
use serde_json::Value;
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
    // Untyped: the table reads a few fields, and typed decoding of the
    // whole report costs the router's flash more than it is worth.
    let report: Value = match super::ask_daemon(&config, args.url.as_deref(), "/api/v1/upstream")? {
        Some(report) => report,
        None => {
            if !config.upstream.is_empty() {
                eprintln!(
                    "netmeter: reading each upstream router once (its own counters since it started)"
                );
            }
            // Through the text the API would send: a value serializer of
            // its own would cost the router build more than the detour.
            serde_json::to_vec(&read_directly(&config))
                .and_then(|bytes| serde_json::from_slice(&bytes))
                .map_err(|e| CliError::Runtime(e.to_string()))?
        }
    };
    if args.json {
        super::print_json(&report)
    } else if report["sources"].as_array().is_none_or(Vec::is_empty) {
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
            mac: crate::mac::format_mac(&d.mac),
            ip: d.ip.map(|ip| ip.to_string()),
            hostname: d.hostname.clone(),
            rx_bytes: d.rx_bytes,
            tx_bytes: d.tx_bytes,
            ..UpstreamDeviceView::default()
        })
        .collect();
}

fn render(report: &Value) -> String {
    let empty = Vec::new();
    let list = |v: &Value| v.as_array().unwrap_or(&empty).clone();
    let text = |v: &Value| v.as_str().unwrap_or("").to_owned();
    let num = |v: &Value| v.as_u64().unwrap_or(0);
    let sources = list(&report["sources"]);
    let mut out = String::new();
    let mut rows = Vec::new();
    for s in &sources {
        let status = match (
            s["last_error"].is_string(),
            s["stopped"] == true,
            s["ok"] == true,
        ) {
            (false, _, true) => "ok".to_owned(),
            (false, _, false) => "waiting".to_owned(),
            (true, true, _) => "stopped".to_owned(),
            (true, false, _) => s["error_stage"].as_str().unwrap_or("error").to_owned(),
        };
        let mut series: Vec<(String, &Value)> = Vec::new();
        for (name, t) in [("wan", &s["wan"]), ("bypass", &s["bypass"])] {
            if t.is_object() {
                series.push((name.to_owned(), t));
            }
        }
        for i in s["interfaces"].as_array().unwrap_or(&empty) {
            series.push((text(&i["name"]), i));
        }
        let head = [text(&s["name"]), text(&s["type"]), status];
        if series.is_empty() {
            rows.push(head.iter().cloned().chain(["-".to_owned()]).collect());
        }
        for (i, (name, t)) in series.into_iter().enumerate() {
            let mut row: Vec<String> = match i {
                0 => head.to_vec(),
                _ => vec![String::new(); 3],
            };
            row.push(name);
            row.push(format::bytes(num(&t["rx_bytes"])));
            row.push(format::bytes(num(&t["tx_bytes"])));
            row.push(format::rate(num(&t["rx_rate"])));
            row.push(format::rate(num(&t["tx_rate"])));
            rows.push(row);
        }
    }
    out += &format::table(
        &[
            "source", "type", "status", "series", "rx", "tx", "rx rate", "tx rate",
        ],
        &rows,
    );
    for s in &sources {
        if let Some(e) = s["last_error"].as_str() {
            out += &format!("{}: {e}\n", text(&s["name"]));
        }
    }
    for s in &sources {
        let devices = list(&s["devices"]);
        if devices.is_empty() {
            continue;
        }
        let rows: Vec<Vec<String>> = devices
            .iter()
            .map(|d| {
                let or_dash = |v: &Value| v.as_str().unwrap_or("-").to_owned();
                vec![
                    or_dash(&d["hostname"]),
                    text(&d["mac"]),
                    or_dash(&d["ip"]),
                    format::bytes(num(&d["rx_bytes"])),
                    format::bytes(num(&d["tx_bytes"])),
                    format::rate(num(&d["rx_rate"])),
                    format::rate(num(&d["tx_rate"])),
                ]
            })
            .collect();
        out += &format!("\ndevices seen by {}:\n", text(&s["name"]));
        out += &format::table(
            &["device", "mac", "ip", "rx", "tx", "rx rate", "tx rate"],
            &rows,
        );
    }
    for s in &sources {
        let line = list(&s["line"]);
        if line.is_empty() {
            continue;
        }
        out += &format!("\nline of {}:\n", text(&s["name"]));
        let rows: Vec<Vec<String>> = line
            .iter()
            .map(|l| {
                let value = l["value"].as_f64().map_or("-".into(), |v| v.to_string());
                vec![text(&l["name"]), text(&l["end"]), value, text(&l["kind"])]
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

    #[test]
    fn tables_of_sources_devices_and_line_statistics() {
        let report = serde_json::json!({"sources": [
            {"name": "isp", "type": "fritzbox", "ok": true, "last_error": null, "stopped": false,
             "wan": {"rx_bytes": 1073741824u64, "tx_bytes": 1024, "rx_rate": 125000, "tx_rate": 0},
             "bypass": {"rx_bytes": 2048, "tx_bytes": 0, "rx_rate": 0, "tx_rate": 0},
             "interfaces": [], "devices": []},
            {"name": "ap", "type": "tplink", "ok": false, "stopped": true, "error_stage": "auth",
             "last_error": "wrong credentials: …", "wan": null, "bypass": null, "interfaces": [],
             "devices": [{"mac": "ac:89:95:77:9a:e9", "ip": null, "hostname": "tv",
                          "rx_bytes": 5, "tx_bytes": 6, "rx_rate": 0, "tx_rate": 0}]},
            {"name": "dsl", "type": "draytek", "ok": true, "last_error": null, "wan": null,
             "bypass": null, "interfaces": [], "devices": [],
             "line": [{"name": "crc", "end": "near", "value": 12.0, "kind": "counter"}]}
        ]});
        let text = render(&report);
        for needle in [
            "isp     fritzbox       ok     wan",
            "1.00 GiB",
            "1.00 Mbit/s",
            "bypass",
            "ap        tplink  stopped",
            "ap: wrong credentials",
            "devices seen by ap:",
            "tv",
            "line of dsl:",
            "crc",
        ] {
            assert!(text.contains(needle), "{needle} missing:\n{text}");
        }
    }
}
