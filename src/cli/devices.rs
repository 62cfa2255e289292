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
    /// ask the daemon at this address (http://HOST:PORT)
    #[argh(option)]
    url: Option<String>,
    /// configuration file (default /etc/config/netmeter)
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
    let config = Config::load(args.config.as_deref())?;
    let mut report: DevicesReport =
        match super::ask_daemon(&config, args.url.as_deref(), "/api/v1/devices")? {
            Some(r) => r,
            None => read_directly(&config)?,
        };
    sort(&mut report.devices, &args.sort);
    if args.json {
        super::print_json(&report)
    } else {
        print!("{}", render(&report));
        Ok(())
    }
}

/// Without a daemon: one read of the kernel table a daemon left installed
/// (`keep_rules`), which holds totals since each element was created.
fn read_directly(config: &Config) -> Result<DevicesReport, CliError> {
    let runtime = |e: crate::netlink::NetlinkError| CliError::Runtime(e.to_string());
    let mut socket = NetlinkSocket::open(NETLINK_NETFILTER).map_err(runtime)?;
    let hooks = devices::installed(&mut socket)
        .map_err(runtime)?
        .ok_or_else(|| {
            CliError::Runtime(
                "no daemon is running and netmeter's nftables table is not installed: \
             start the daemon (service netmeter start)"
                    .into(),
            )
        })?;
    let reading = match devices::read(&mut socket, hooks) {
        Ok(r) => r,
        Err(ReadError::TableMissing) => {
            return Err(CliError::Runtime(
                "no daemon is running and netmeter's nftables table is not installed: \
                 start the daemon (service netmeter start)"
                    .into(),
            ));
        }
        Err(ReadError::Netlink(e)) => return Err(runtime(e)),
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
            ]
        })
        .collect();
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
    ]);
    format::table(&["MAC", "IP(s)", "hostname", "rx", "tx", "total"], &rows)
}
