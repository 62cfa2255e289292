use super::CliError;
use crate::collect::devices;
use crate::netlink::{NetlinkSocket, socket::NETLINK_NETFILTER};
use argh::FromArgs;

/// Remove everything netmeter installed in the firewall (its own nftables
/// table; no other table is touched). A running daemon installs it again.
#[derive(FromArgs)]
#[argh(subcommand, name = "teardown")]
pub struct TeardownArgs {}

pub fn run(_: TeardownArgs) -> Result<(), CliError> {
    let mut socket = NetlinkSocket::open(NETLINK_NETFILTER)?;
    if devices::teardown(&mut socket)? {
        println!("removed netmeter's nftables table");
    } else {
        println!("nothing to remove: netmeter's nftables table is not installed");
    }
    Ok(())
}
