use super::{CliError, format};
use crate::account::InterfaceAccounts;
use crate::collect::links::{read_boot_id, read_links};
use crate::config::Config;
use crate::netlink::{NetlinkSocket, socket::NETLINK_ROUTE};
use crate::serve::api::{InterfaceView, InterfacesReport};
use argh::FromArgs;
use std::path::PathBuf;
use std::time::Duration;

/// Show per-interface totals and current rates.
#[derive(FromArgs)]
#[argh(subcommand, name = "interfaces")]
pub struct InterfacesArgs {
    /// print JSON instead of a table
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

/// How long a direct reading measures rates over.
const DIRECT_RATE_WINDOW: Duration = Duration::from_secs(1);

pub fn run(args: InterfacesArgs) -> Result<(), CliError> {
    let config = Config::load(args.config.as_deref())?;
    let report: InterfacesReport = match super::ask_daemon(
        &config,
        args.url.as_deref(),
        "/api/v1/interfaces",
    )? {
        Some(report) => report,
        None => {
            eprintln!(
                "netmeter: reading the kernel directly (totals since each interface was created, rates over {} s)",
                DIRECT_RATE_WINDOW.as_secs()
            );
            read_directly(&config)?
        }
    };
    if args.json {
        super::print_json(&report)
    } else {
        print!("{}", render(&report.interfaces));
        Ok(())
    }
}

/// Two link dumps `DIRECT_RATE_WINDOW` apart, through the same accounting
/// the daemon uses.
fn read_directly(config: &Config) -> Result<InterfacesReport, CliError> {
    let mut socket = NetlinkSocket::open(NETLINK_ROUTE)?;
    let boot_id = read_boot_id().unwrap_or_default();
    let mut accounts = InterfaceAccounts::new(crate::account::interfaces::MAX_INTERFACES);
    for round in 0..2 {
        if round == 1 {
            std::thread::sleep(DIRECT_RATE_WINDOW);
        }
        let mut samples = read_links(&mut socket)?;
        samples.retain(|s| config.tracks_interface(&s.name));
        accounts.ingest(crate::clock::now(), &boot_id, &samples);
    }
    Ok(InterfacesReport {
        interfaces: accounts.iter().map(InterfaceView::from).collect(),
    })
}

fn render(interfaces: &[InterfaceView]) -> String {
    let rows: Vec<Vec<String>> = interfaces
        .iter()
        .map(|i| {
            let name = if i.present {
                i.name.clone()
            } else {
                format!("{} (gone)", i.name)
            };
            vec![
                name,
                format::bytes(i.rx_bytes),
                format::bytes(i.tx_bytes),
                format::bytes(i.rx_bytes.saturating_add(i.tx_bytes)),
                format::rate(i.rx_rate),
                format::rate(i.tx_rate),
            ]
        })
        .collect();
    format::table(
        &["interface", "rx", "tx", "total", "rx rate", "tx rate"],
        &rows,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::serve::api::samples;

    #[test]
    fn the_table_renders_what_the_api_sent() {
        let report: InterfacesReport =
            super::super::through_api(samples::state(), "/api/v1/interfaces").unwrap();
        let text = render(&report.interfaces);
        for needle in [
            "interface         rx          tx     total      rx rate  tx rate\n",
            "wan         1.00 GiB  512.00 MiB  1.50 GiB  1.00 Mbit/s  0 bit/s\n",
            "wg0 (gone)  1.00 MiB  512.00 KiB  1.50 MiB  1.00 Mbit/s  0 bit/s\n",
        ] {
            assert!(text.contains(needle), "{needle} missing:\n{text}");
        }
    }
}
