//! The conntrack placement's reads: a dump of every flow and the destroy
//! events queued since the last one, into an `account::flows::FlowTracker`;
//! the small table that makes the kernel track IPv4 and IPv6 alike; and
//! `nf_conntrack_acct`, without which conntrack counts nothing.

use crate::account::flows::{FlowTracker, LocalNetwork};
use crate::account::protocols::ProtocolClasses;
use crate::netlink::conntrack::{self, FlowMessage, GROUP_DESTROY};
use crate::netlink::nftables::*;
use crate::netlink::route::{AddressMessage, address_dump_request};
use crate::netlink::socket::NETLINK_NETFILTER;
use crate::netlink::{NetlinkError, NetlinkSocket};
use std::net::IpAddr;
use std::path::Path;

use super::devices::TABLE;

/// Room for the destroy events of a busy refresh interval (about 300
/// bytes each in the kernel's accounting: some 14,000).
const EVENT_BUFFER: usize = 4 << 20;

pub const ACCT_SYSCTL: &str = "/proc/sys/net/netfilter/nf_conntrack_acct";

/// The sockets of the conntrack placement.
pub struct ConntrackReader {
    dump: NetlinkSocket,
    events: NetlinkSocket,
}

/// What one read noticed besides the flows.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ReadNotes {
    /// The kernel dropped destroy events (ENOBUFS): the flows that ended
    /// meanwhile lose what they carried since their last dump.
    pub overrun: bool,
}

impl ConntrackReader {
    /// Listens to destroy events first, so no flow ends unseen between
    /// this and the first dump.
    pub fn open() -> Result<Self, NetlinkError> {
        Ok(Self {
            events: NetlinkSocket::subscribe(NETLINK_NETFILTER, GROUP_DESTROY, EVENT_BUFFER)?,
            dump: NetlinkSocket::open(NETLINK_NETFILTER)?,
        })
    }

    /// One read: every live flow, then the flows that ended. On an error the
    /// read is left unfinished, and the flows it did not reach keep their
    /// state for the next one.
    pub fn read(
        &mut self,
        tracker: &mut FlowTracker,
        net: &LocalNetwork,
        classes: &ProtocolClasses,
    ) -> Result<ReadNotes, NetlinkError> {
        tracker.begin_read();
        self.dump.dump(
            conntrack::dump_request(),
            "reading conntrack's flows",
            |msg| {
                if let Some(FlowMessage::Live(flow)) = conntrack::parse(msg)? {
                    tracker.live(&flow, net, classes);
                }
                Ok(())
            },
        )?;
        let overrun = self
            .events
            .drain("reading conntrack's destroy events", |msg| {
                if let Some(FlowMessage::Destroyed(flow)) = conntrack::parse(msg)? {
                    tracker.destroyed(&flow, net, classes);
                }
                Ok(())
            })?;
        tracker.end_read();
        Ok(ReadNotes { overrun })
    }
}

/// `inet netmeter` with one rule that loads the conntrack state in the
/// forward hook: it costs one load per forwarded packet and makes the
/// kernel track both families, which a router that NATs only IPv4 would
/// otherwise not do for IPv6.
pub fn install_batch() -> Batch {
    let mut b = Batch::new();
    b.add_table(Family::Inet, TABLE);
    b.delete_table(Family::Inet, TABLE);
    b.add_table(Family::Inet, TABLE);
    let base = BaseChain {
        hook: Hook::Forward as u32,
        priority: -500,
        chain_type: "filter",
        device: None,
    };
    b.add_chain(Family::Inet, TABLE, "forward", Some(&base));
    b.add_rule(
        Family::Inet,
        TABLE,
        "forward",
        &[Expr::CtState { dreg: NFT_REG_1 }],
    );
    b
}

/// Whether `inet netmeter` is there: a firewall restart or `nft flush
/// ruleset` takes it away, and with it the tracking of IPv6 on a router
/// that NATs only IPv4.
pub fn table_present(socket: &mut NetlinkSocket) -> Result<bool, NetlinkError> {
    let mut found = false;
    socket.dump(tables_request(), "listing nftables tables", |msg| {
        let (family, name) = parse_table(msg)?;
        found |= family == Family::Inet as u8 && name == TABLE;
        Ok(())
    })?;
    Ok(found)
}

/// The router's own addresses, on every interface.
pub fn own_addresses(route: &mut NetlinkSocket) -> Result<Vec<IpAddr>, NetlinkError> {
    let mut own = Vec::new();
    route.dump(
        address_dump_request(),
        "reading the router's addresses",
        |msg| {
            own.push(AddressMessage::parse(msg)?.address);
            Ok(())
        },
    )?;
    own.sort();
    own.dedup();
    Ok(own)
}

/// The state of `nf_conntrack_acct` in this network namespace.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Accounting {
    On,
    /// It was off and netmeter turned it on.
    TurnedOn,
    /// Off, or unknown, with why and what to do.
    Off(String),
}

/// Turns conntrack accounting on when it is off and it may; flows begun
/// before keep no counters.
pub fn ensure_accounting(sysctl: &Path) -> Accounting {
    match std::fs::read_to_string(sysctl) {
        Ok(v) if v.trim() == "1" => Accounting::On,
        Ok(_) => match std::fs::write(sysctl, "1") {
            Ok(()) => Accounting::TurnedOn,
            Err(e) => Accounting::Off(format!(
                "conntrack accounting is off and netmeter cannot turn it on ({e}): run \
                 'sysctl -w net.netfilter.nf_conntrack_acct=1' as root, and add \
                 'net.netfilter.nf_conntrack_acct=1' to /etc/sysctl.d/ to keep it"
            )),
        },
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Accounting::Off(
            "conntrack is not loaded (no net.netfilter.nf_conntrack_acct): load it with \
             'modprobe nf_conntrack', or use option placement 'netdev'"
                .into(),
        ),
        Err(e) => Accounting::Off(format!(
            "cannot read {}: {e}; check conntrack accounting with 'sysctl net.netfilter.nf_conntrack_acct'",
            sysctl.display()
        )),
    }
}

/// Whether conntrack accounting is on now, without changing it.
pub fn accounting_is_on(sysctl: &Path) -> Option<bool> {
    std::fs::read_to_string(sysctl)
        .ok()
        .map(|v| v.trim() == "1")
}

/// Flowtables that move flows past conntrack's counting: those without the
/// `counter` flag keep their flows' counters frozen while offloaded.
pub fn uncounted_flowtables(flowtables: &[Flowtable]) -> Vec<&Flowtable> {
    flowtables
        .iter()
        .filter(|f| f.flags & NF_FLOWTABLE_COUNTER == 0)
        .collect()
}

/// The fix for a flowtable without `counter`.
pub fn counter_fix(ft: &Flowtable) -> String {
    let family = match ft.family {
        1 => "inet",
        2 => "ip",
        10 => "ip6",
        _ => "inet",
    };
    format!(
        "flowtable {} (table {family} {}) has no 'counter' flag, so conntrack's counters stop while \
         its flows are offloaded: add 'counter;' to its definition (nft add flowtable {family} {} {} \
         {{ counter; }}), or update firewall4 (its releases since 2024 set it)",
        ft.name, ft.table, ft.table, ft.name
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sysctl(value: Option<&str>) -> (tempdir::Dir, std::path::PathBuf) {
        let dir = tempdir::Dir::new();
        let path = dir.0.join("nf_conntrack_acct");
        if let Some(v) = value {
            std::fs::write(&path, v).unwrap();
        }
        (dir, path)
    }

    mod tempdir {
        pub struct Dir(pub std::path::PathBuf);
        impl Dir {
            pub fn new() -> Dir {
                static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
                let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let p =
                    std::env::temp_dir().join(format!("netmeter-acct-{}-{n}", std::process::id()));
                std::fs::create_dir_all(&p).unwrap();
                Dir(p)
            }
        }
        impl Drop for Dir {
            fn drop(&mut self) {
                let _ = std::fs::remove_dir_all(&self.0);
            }
        }
    }

    #[test]
    fn accounting_that_is_off_is_turned_on_and_said_so() {
        let (_d, path) = sysctl(Some("0\n"));
        assert_eq!(ensure_accounting(&path), Accounting::TurnedOn);
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "1");
        assert_eq!(ensure_accounting(&path), Accounting::On);
    }

    #[test]
    fn accounting_off_where_netmeter_may_not_write_says_how_to_turn_it_on() {
        // A read-only sysctl (mode 0444): no one may write it, root included.
        let path = Path::new("/proc/sys/kernel/ostype");
        let Accounting::Off(why) = ensure_accounting(path) else {
            panic!("a sysctl that cannot be written cannot be turned on");
        };
        assert!(
            why.contains("cannot turn it on")
                && why.contains("sysctl -w net.netfilter.nf_conntrack_acct=1")
                && why.contains("/etc/sysctl.d/"),
            "{why}"
        );
    }

    #[test]
    fn no_conntrack_at_all_says_how_to_load_it() {
        let (_d, path) = sysctl(None);
        let Accounting::Off(why) = ensure_accounting(&path) else {
            panic!("a missing sysctl is not on");
        };
        assert!(why.contains("modprobe nf_conntrack"), "{why}");
    }

    #[test]
    fn a_flowtable_without_counter_is_named_with_its_fix() {
        let ft = Flowtable {
            family: 1,
            table: "fw4".into(),
            name: "ft".into(),
            flags: NF_FLOWTABLE_HW_OFFLOAD,
            devices: vec!["lan1".into()],
        };
        let counted = Flowtable {
            flags: NF_FLOWTABLE_HW_OFFLOAD | NF_FLOWTABLE_COUNTER,
            ..ft.clone()
        };
        let all = [ft.clone(), counted];
        let uncounted = uncounted_flowtables(&all);
        assert_eq!(uncounted, vec![&ft]);
        let fix = counter_fix(uncounted[0]);
        assert!(
            fix.contains("nft add flowtable inet fw4 ft { counter; }"),
            "{fix}"
        );
    }
}
