use super::{CliError, format};
use crate::account::DeviceAccounts;
use crate::collect::devices::{self, ReadError};
use crate::collect::identity::Names;
use crate::config::Config;
use crate::netlink::{NetlinkSocket, socket::NETLINK_NETFILTER};
use crate::serve::api::{DeviceView, DevicesReport};
use argh::FromArgs;
use std::path::PathBuf;

/// Show what every LAN device sent (tx, upload) and received (rx, download).
#[derive(FromArgs)]
#[argh(subcommand, name = "devices")]
pub struct DevicesArgs {
    /// print JSON instead of a table
    #[argh(switch)]
    json: bool,
    /// order: total (default), rx, tx or name
    #[argh(option, default = "String::from(\"total\")")]
    sort: String,
    /// break each device down: "protocol" shows its bytes by protocol
    /// class (https, dns, …; needs option placement 'conntrack')
    #[argh(option)]
    by: Option<String>,
    /// ask the daemon at this address (http://HOST:PORT)
    #[argh(option)]
    url: Option<String>,
    /// configuration file (default /etc/config/netmeter, else
    /// /etc/netmeter/netmeter.conf)
    #[argh(option, short = 'c')]
    config: Option<PathBuf>,
}

pub fn run(args: DevicesArgs) -> Result<(), CliError> {
    if !["total", "rx", "tx", "name"].contains(&args.sort.as_str()) {
        return Err(CliError::Usage(format!(
            "--sort {}: expected total, rx, tx or name",
            args.sort
        )));
    }
    let by_protocol = match args.by.as_deref() {
        None => false,
        Some("protocol") => true,
        Some(other) => {
            return Err(CliError::Usage(format!("--by {other}: expected protocol")));
        }
    };
    let config = Config::load(args.config.as_deref())?;
    let mut report: DevicesReport =
        match super::ask_daemon(&config, args.url.as_deref(), "/api/v1/devices")? {
            Some(r) => r,
            None if by_protocol => return Err(no_protocol_view("no daemon is running")),
            None => read_directly(&config)?,
        };
    if by_protocol && report.protocols_since.is_none() {
        return Err(no_protocol_view(
            "the daemon counts with the netdev or forward placement, which sees packets, not flows",
        ));
    }
    sort(&mut report.devices, &args.sort);
    if args.json {
        super::print_json(&report)
    } else if by_protocol {
        print!("{}", render_protocols(&report));
        Ok(())
    } else {
        print!("{}", render(&report));
        Ok(())
    }
}

fn no_protocol_view(why: &str) -> CliError {
    CliError::Failed(format!(
        "no protocol view: {why}. It comes from conntrack: set option placement 'conntrack' \
         (or 'auto' with hardware offload) and reload the daemon"
    ))
}

/// Each device's classes, largest first, under a line naming the device.
fn render_protocols(report: &DevicesReport) -> String {
    let mut rows = Vec::new();
    for d in &report.devices {
        let name = d.hostname.clone().unwrap_or_else(|| "-".into());
        rows.push(vec![
            d.mac.clone(),
            name,
            String::new(),
            format::bytes(d.rx_bytes),
            format::bytes(d.tx_bytes),
            format::bytes(d.rx_bytes + d.tx_bytes),
        ]);
        for p in &d.protocols {
            rows.push(vec![
                String::new(),
                String::new(),
                p.class.clone(),
                format::bytes(p.rx_bytes),
                format::bytes(p.tx_bytes),
                format::bytes(p.rx_bytes + p.tx_bytes),
            ]);
        }
    }
    let since = report
        .protocols_since
        .map(crate::store::files::utc)
        .unwrap_or_default();
    format!(
        "{}classes since {since} (device totals since first seen)\n",
        format::table(&["MAC", "hostname", "class", "rx", "tx", "total"], &rows)
    )
}

/// Without a daemon: one read of the kernel table a daemon left installed
/// (`keep_rules`), which holds totals since each element was created.
fn read_directly(config: &Config) -> Result<DevicesReport, CliError> {
    let no_table = || {
        CliError::Failed(format!(
            "no daemon is running and netmeter's nftables table is not installed: \
             start the daemon ({})",
            crate::config::System::here().start_hint()
        ))
    };
    let mut socket = NetlinkSocket::open(NETLINK_NETFILTER)?;
    let hooks = devices::installed(&mut socket)?.ok_or_else(no_table)?;
    let reading = match devices::read(&mut socket, hooks) {
        Ok(r) => r,
        Err(ReadError::TableMissing) => return Err(no_table()),
        Err(ReadError::Netlink(e)) => return Err(e.into()),
    };
    eprintln!(
        "netmeter: reading netmeter's nftables table directly (totals since each device was last seen; no rates)"
    );
    let mut accounts = DeviceAccounts::new(config.max_devices as usize);
    accounts.ingest(
        crate::clock::now(),
        1,
        &reading.samples,
        reading.unattributed,
    );
    let (names, _) = Names::load(config);
    Ok(DevicesReport::new(&accounts, &names))
}

fn sort(devices: &mut [DeviceView], key: &str) {
    match key {
        "rx" => devices.sort_by_key(|d| std::cmp::Reverse(d.rx_bytes)),
        "tx" => devices.sort_by_key(|d| std::cmp::Reverse(d.tx_bytes)),
        "name" => devices.sort_by(|a, b| {
            let name = |d: &DeviceView| d.hostname.clone().unwrap_or_else(|| d.mac.clone());
            name(a).cmp(&name(b))
        }),
        _ => devices.sort_by_key(|d| std::cmp::Reverse(d.rx_bytes + d.tx_bytes)),
    }
}

fn render(report: &DevicesReport) -> String {
    let mut rows: Vec<Vec<String>> = report
        .devices
        .iter()
        .map(|d| {
            let ips = match d.ips.len() {
                0..=2 => d.ips.join(" "),
                n => format!("{} +{}", d.ips[..2].join(" "), n - 2),
            };
            let name = d.hostname.clone().unwrap_or_else(|| "-".into());
            let name = if d.random_mac {
                format!("{name} (random MAC)")
            } else {
                name
            };
            vec![
                d.mac.clone(),
                ips,
                name,
                format::bytes(d.rx_bytes),
                format::bytes(d.tx_bytes),
                format::bytes(d.rx_bytes + d.tx_bytes),
                upstream_cell(&d.upstream),
            ]
        })
        .collect();
    // Devices only an upstream router counts: their own rows, not in the total.
    for d in &report.upstream_only {
        let name = d.hostname.clone().unwrap_or_else(|| "-".into());
        rows.push(vec![
            d.mac.clone(),
            d.ip.clone().unwrap_or_default(),
            format!("{name} (only via {})", d.source),
            "-".into(),
            "-".into(),
            "-".into(),
            format::bytes(d.rx_bytes + d.tx_bytes),
        ]);
    }
    for (label, u) in [
        ("other devices", report.other.as_ref()),
        ("unattributed", Some(&report.unattributed)),
    ] {
        if let Some(u) = u.filter(|u| u.rx_bytes + u.tx_bytes > 0) {
            rows.push(vec![
                label.into(),
                String::new(),
                String::new(),
                format::bytes(u.rx_bytes),
                format::bytes(u.tx_bytes),
                format::bytes(u.rx_bytes + u.tx_bytes),
                String::new(),
            ]);
        }
    }
    let (rx, tx) = report.devices.iter().fold(
        (report.unattributed.rx_bytes, report.unattributed.tx_bytes),
        |(rx, tx), d| (rx + d.rx_bytes, tx + d.tx_bytes),
    );
    let (rx, tx) = match &report.other {
        Some(o) => (rx + o.rx_bytes, tx + o.tx_bytes),
        None => (rx, tx),
    };
    rows.push(vec![
        "total".into(),
        String::new(),
        String::new(),
        format::bytes(rx),
        format::bytes(tx),
        format::bytes(rx + tx),
        String::new(),
    ]);
    let mut header = vec!["MAC", "IP(s)", "hostname", "rx", "tx", "total"];
    let upstream =
        report.devices.iter().any(|d| !d.upstream.is_empty()) || !report.upstream_only.is_empty();
    if upstream {
        header.push("upstream total");
    } else {
        for row in &mut rows {
            row.pop();
        }
    }
    format::table(&header, &rows)
}

/// What upstream routers counted for a device, rx + tx, by source.
fn upstream_cell(figures: &[crate::serve::api::UpstreamFigure]) -> String {
    figures
        .iter()
        .map(|f| format!("{} ({})", format::bytes(f.rx_bytes + f.tx_bytes), f.source))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(all(test, feature = "upstream"))]
mod tests {
    use super::*;
    use crate::clock::Moment;
    use crate::mac::Mac;

    fn local(mac: Mac, rx: u64) -> DeviceAccounts {
        let mut accounts = DeviceAccounts::new(8);
        let sample = crate::account::DeviceSample {
            direction: crate::account::Direction::Received,
            mac,
            ip: "10.0.0.2".parse().unwrap(),
            bytes: rx,
            packets: 1,
        };
        let now = Moment {
            monotonic_ms: 0,
            unix_secs: 1_795_000_000,
        };
        accounts.ingest(now, 1, &[sample], Default::default());
        accounts
    }

    #[test]
    fn upstream_figures_join_by_mac_and_upstream_only_devices_get_rows() {
        use crate::account::CounterWidth::Bits64;
        use crate::upstream::UpstreamAccounts;
        use crate::upstream::sources::{DeviceReading, Reading};
        let (laptop, printer) = (Mac([2, 0, 0, 0, 0, 1]), Mac([2, 0, 0, 0, 0, 2]));
        let mut upstream = UpstreamAccounts::default();
        for (step, bytes) in [(0u64, 0u64), (1, 3 << 20)] {
            let device = |mac| DeviceReading {
                mac,
                ip: None,
                hostname: Some("printer".into()),
                rx_bytes: bytes,
                tx_bytes: 0,
                width: Bits64,
            };
            let reading = Reading {
                devices: vec![device(laptop), device(printer)],
                ..Reading::default()
            };
            let now = Moment {
                monotonic_ms: step * 30_000,
                unix_secs: 1_795_000_000 + step * 30,
            };
            upstream.ingest("ap", "tplink", now, &reading, None);
        }
        let mut report = DevicesReport::new(&local(laptop, 5000), &Names::default());
        report.join_upstream(upstream.device_figures());
        assert_eq!(report.devices.len(), 1);
        let figure = &report.devices[0].upstream[0];
        assert_eq!((figure.source.as_str(), figure.rx_bytes), ("ap", 3 << 20));
        assert_eq!(report.upstream_only.len(), 1);
        assert_eq!(report.upstream_only[0].mac, "02:00:00:00:00:02");
        let text = render(&report);
        assert!(text.contains("upstream total"), "{text}");
        assert!(text.contains("3.00 MiB (ap)"), "{text}");
        assert!(text.contains("printer (only via ap)"), "{text}");
        // Not part of netmeter's own total.
        let total = text.lines().find(|l| l.starts_with("total")).unwrap();
        assert!(total.contains("4.88 KiB"), "{total}");
    }
}

#[cfg(test)]
mod from_api {
    use super::*;
    use crate::serve::api::samples;

    #[test]
    fn the_table_renders_what_the_api_sent() {
        let mut report: DevicesReport =
            super::super::through_api(samples::state(), "/api/v1/devices").unwrap();
        sort(&mut report.devices, "total");
        let text = render(&report);
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[0].starts_with("MAC"), "{text}");
        assert!(lines[0].ends_with("upstream total"), "{text}");
        assert!(lines[1].starts_with("aa:bb:cc:dd:ee:01"), "{text}");
        for needle in [
            "192.168.1.2 fd00::2 +1",
            "laptop (random MAC)",
            "1.00 GiB",
            "3.00 MiB (isp)",
            "printer (only via isp)",
            "other devices",
            "unattributed",
        ] {
            assert!(text.contains(needle), "{needle} missing:\n{text}");
        }
        let total = lines.iter().find(|l| l.starts_with("total")).unwrap();
        // Both devices, other and unattributed; not the upstream-only one.
        let cells: Vec<&str> = total.split_whitespace().collect();
        assert_eq!(
            cells,
            ["total", "1.00", "GiB", "2.00", "MiB", "1.00", "GiB"]
        );
    }
}
