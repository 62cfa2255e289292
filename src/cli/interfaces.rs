use super::{CliError, format};
use crate::account::InterfaceAccounts;
use crate::collect::links::{read_boot_id, read_links};
use crate::config::Config;
use crate::netlink::{NetlinkSocket, socket::NETLINK_ROUTE};
use crate::serve::api::{InterfaceView, InterfacesReport};
use crate::serve::client::{self, ClientError};
use argh::FromArgs;
use std::net::SocketAddr;
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
    /// configuration file (default /etc/config/netmeter)
    #[argh(option, short = 'c')]
    config: Option<PathBuf>,
}

/// How long a direct reading measures rates over.
const DIRECT_RATE_WINDOW: Duration = Duration::from_secs(1);

pub fn run(args: InterfacesArgs) -> Result<(), CliError> {
    let config = Config::load(args.config.as_deref())?;
    let report = match &args.url {
        Some(url) => {
            let addr = client::parse_url(url).map_err(CliError::Usage)?;
            ask_daemon(addr).map_err(|e| CliError::Runtime(e.to_string()))?
        }
        None => match config.listen.first().map(|a| loopback_for(*a)) {
            Some(addr) => match ask_daemon(addr) {
                Ok(r) => r,
                Err(ClientError::NoDaemon(why)) => {
                    eprintln!(
                        "netmeter: {why}; reading the kernel directly \
                         (totals since each interface was created, rates over {} s)",
                        DIRECT_RATE_WINDOW.as_secs()
                    );
                    read_directly(&config)?
                }
                Err(e) => return Err(CliError::Runtime(e.to_string())),
            },
            None => read_directly(&config)?,
        },
    };
    if args.json {
        let text = serde_json::to_string(&report).map_err(|e| CliError::Runtime(e.to_string()))?;
        println!("{text}");
    } else {
        print!("{}", render(&report.interfaces));
    }
    Ok(())
}

/// A daemon listening on every address is asked on loopback.
fn loopback_for(addr: SocketAddr) -> SocketAddr {
    match addr {
        SocketAddr::V4(a) if a.ip().is_unspecified() => {
            SocketAddr::from(([127, 0, 0, 1], a.port()))
        }
        SocketAddr::V6(a) if a.ip().is_unspecified() => {
            SocketAddr::from((std::net::Ipv6Addr::LOCALHOST, a.port()))
        }
        a => a,
    }
}

fn ask_daemon(addr: SocketAddr) -> Result<InterfacesReport, ClientError> {
    let (status, body) = client::get(addr, "/api/v1/interfaces", Duration::from_secs(3))?;
    if status != 200 {
        let msg = serde_json::from_slice::<serde_json::Value>(&body)
            .ok()
            .and_then(|v| v.get("error")?.as_str().map(str::to_string))
            .unwrap_or_else(|| format!("HTTP {status}"));
        return Err(ClientError::Failed(format!(
            "the daemon at {addr} answered: {msg}"
        )));
    }
    serde_json::from_slice(&body)
        .map_err(|e| ClientError::Failed(format!("the daemon at {addr} sent unreadable JSON: {e}")))
}

/// Two link dumps `DIRECT_RATE_WINDOW` apart, through the same accounting
/// the daemon uses.
fn read_directly(config: &Config) -> Result<InterfacesReport, CliError> {
    let runtime = |e: crate::netlink::NetlinkError| CliError::Runtime(e.to_string());
    let mut socket = NetlinkSocket::open(NETLINK_ROUTE).map_err(runtime)?;
    let boot_id = read_boot_id().unwrap_or_default();
    let mut accounts = InterfaceAccounts::new(crate::daemon::MAX_INTERFACES);
    for round in 0..2 {
        if round == 1 {
            std::thread::sleep(DIRECT_RATE_WINDOW);
        }
        let mut samples = read_links(&mut socket).map_err(runtime)?;
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
