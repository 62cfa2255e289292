//! The conntrack placement as the daemon runs it: conntrack accounting
//! turned on, the reader's dumps and events into the flow tracker, its
//! per-IP totals tied to MACs and ingested like set elements, and the
//! protocol view's growth credited per device.

use crate::account::flows::{FlowTracker, LocalNetwork};
use crate::account::protocols::{ClassTotals, ProtocolClasses};
use crate::account::{DeviceAccounts, DeviceSample, Direction, UnattributedSample};
use crate::clock::Moment;
use crate::collect::conntrack::{self, ACCT_SYSCTL, Accounting, ConntrackReader};
use crate::collect::neighbours::NeighbourMacs;
use crate::config::{Config, IpPrefix};
use crate::netlink::{NetlinkError, NetlinkSocket};
use crate::serve::api::ConntrackStatus;
use std::path::Path;

pub struct FlowCounting {
    reader: ConntrackReader,
    tracker: FlowTracker,
    net: LocalNetwork,
    classes: ProtocolClasses,
    /// Per device and class, since counting began.
    pub by_class: ClassTotals,
    pub status: ConntrackStatus,
}

impl FlowCounting {
    /// Opens the reader and makes sure conntrack counts; the caller has
    /// installed the table that makes it track both families.
    pub fn start(
        config: &Config,
        now: Moment,
        log: &mut Vec<String>,
    ) -> Result<Self, NetlinkError> {
        let reader = ConntrackReader::open()?;
        let accounting = conntrack::ensure_accounting(Path::new(ACCT_SYSCTL));
        match &accounting {
            Accounting::On => {}
            Accounting::TurnedOn => log.push(
                "conntrack accounting was off: turned it on (net.netfilter.nf_conntrack_acct=1); \
                 flows begun before keep no counters"
                    .into(),
            ),
            Accounting::Off(why) => {
                log.push(format!("per-device accounting counts nothing: {why}"))
            }
        }
        Ok(Self {
            reader,
            tracker: FlowTracker::new(config.max_flows as usize),
            net: LocalNetwork::default(),
            classes: ProtocolClasses::new(&config.protocols),
            by_class: ClassTotals::new(config.max_devices as usize, now.unix_secs),
            status: ConntrackStatus {
                accounting: match accounting {
                    Accounting::On | Accounting::TurnedOn => "on".into(),
                    Accounting::Off(why) => why,
                },
                max_flows: config.max_flows as usize,
                ..ConntrackStatus::default()
            },
        })
    }

    /// The LAN's prefixes, what is not beyond the router, and its own
    /// addresses, as of this refresh.
    pub fn set_network(
        &mut self,
        lan: Vec<IpPrefix>,
        local: Vec<IpPrefix>,
        route: &mut NetlinkSocket,
    ) {
        if let Ok(own) = conntrack::own_addresses(route) {
            self.net.own = own;
        }
        self.net.lan = lan;
        self.net.local = local;
    }

    /// The first read: flows standing now are taken as they are, so only
    /// what they carry from here on counts.
    pub fn baseline(&mut self, log: &mut Vec<String>) {
        if let Err(e) = self
            .reader
            .read(&mut self.tracker, &self.net, &self.classes)
        {
            log.push(format!("reading conntrack failed: {e}"));
        }
    }

    /// One read into the accounts. Returns the element count for the status.
    #[allow(clippy::too_many_arguments)]
    pub fn read(
        &mut self,
        now: Moment,
        generation: u64,
        idle_ms: u64,
        route: Option<&mut NetlinkSocket>,
        neighbours: &mut NeighbourMacs,
        accounts: &mut DeviceAccounts,
        log: &mut Vec<String>,
    ) {
        match self
            .reader
            .read(&mut self.tracker, &self.net, &self.classes)
        {
            Ok(notes) if notes.overrun => {
                self.status.event_overruns += 1;
                log.push(
                    "conntrack destroy events were lost (the kernel's buffer was full): flows that \
                     ended meanwhile lose their last bytes; the next dumps go on from here"
                        .into(),
                );
            }
            Ok(_) => {}
            Err(e) => {
                log.push(format!("reading conntrack failed: {e}"));
                return;
            }
        }
        let stats = self.tracker.stats;
        if stats.without_counters > 0 && self.status.flows_without_counters == 0 {
            log.push(format!(
                "{} flows carry no counters (nf_conntrack_acct was off when they began): their bytes are not counted",
                stats.without_counters
            ));
        }
        self.status.tracked_flows = stats.tracked;
        self.status.untracked_flows = stats.untracked;
        self.status.ended_unseen = stats.ended_unseen;
        self.status.flows_without_counters = stats.without_counters;
        if let Some(route) = route
            && let Err(e) = neighbours.refresh(route)
        {
            log.push(format!("cannot read the neighbour tables: {e}"));
        }
        let samples: Vec<DeviceSample> = self
            .tracker
            .totals()
            .filter_map(|(direction, ip, c)| {
                neighbours.mac(&ip).map(|mac| DeviceSample {
                    direction,
                    mac,
                    ip,
                    bytes: c.bytes,
                    packets: c.packets,
                })
            })
            .collect();
        for event in accounts.ingest(now, generation, &samples, UnattributedSample::default()) {
            if let crate::account::DeviceEvent::Overflow { mac } = event {
                log.push(format!(
                    "too many devices: {mac} is counted as 'other' (raise option max_devices)"
                ));
            }
        }
        let idle: Vec<(Direction, std::net::IpAddr)> = accounts
            .idle_elements(now, idle_ms)
            .into_iter()
            .map(|(d, _, ip)| (d, ip))
            .collect();
        if !idle.is_empty() {
            let keys = accounts.idle_elements(now, idle_ms);
            self.tracker.forget(&idle);
            accounts.forget_elements(&keys);
        }
        let grown = self.tracker.take_classes(|ip| neighbours.mac(ip));
        for (mac, class, bytes) in grown {
            self.by_class.credit(mac, self.classes.name(class), bytes);
        }
    }
}
