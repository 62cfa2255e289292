//! Per-device accounting as the daemon runs it: netmeter's nftables table,
//! its reads, pruning of idle elements, and reinstalls after a flush.
//!
//! `PerDevice` plans and installs the table (falling back to the forward
//! placement when the kernel refuses a netdev egress chain under `placement
//! auto`), reads it every refresh, and deletes elements idle for half the
//! element timeout only after reading them, so expiry never hides growth:
//! netmeter owns the element lifecycle and the kernel timeout (at least
//! three refresh intervals) is only a safety net. A vanished table is
//! reinstalled and the gap counted as unknown; the table is removed on stop
//! unless `keep_rules`. Without CAP_NET_ADMIN it stays off with the reason.

use super::conntrack::FlowCounting;
use crate::account::{DeviceAccounts, DeviceEvent, DeviceSample, Direction, LinkSample};
use crate::clock::Moment;
use crate::collect::conntrack as flows;
use crate::collect::devices::{self, Hooks, Plan, ReadError};
use crate::collect::neighbours::NeighbourMacs;
use crate::config::Config;
use crate::config::{IpPrefix, Placement};
use crate::netlink::nftables::{Flowtable, NF_FLOWTABLE_HW_OFFLOAD};
use crate::netlink::socket::NETLINK_NETFILTER;
use crate::netlink::{NetlinkError, NetlinkSocket};
use crate::serve::api::PerDeviceStatus;

/// The kernel must not expire an element before netmeter has read its last
/// growth: a timeout under three refresh intervals would lose traffic when a
/// refresh comes late, so it is raised to that.
pub fn element_timeout(config: &Config) -> std::time::Duration {
    config.element_timeout.max(config.refresh_interval * 3)
}

pub struct PerDevice {
    netfilter: Option<NetlinkSocket>,
    installed: Option<Plan>,
    generation: u64,
    last_read_unix: u64,
    /// Off for want of privilege: retried only on a config reload.
    refused: bool,
    /// The kernel refused a netdev egress chain (before Linux 5.16).
    no_egress: bool,
    neighbours: NeighbourMacs,
    /// The conntrack placement, when it is the one in force.
    pub flows: Option<FlowCounting>,
    /// Why `auto` chose conntrack, for the status.
    auto_reason: Option<String>,
    pub status: PerDeviceStatus,
    /// The MACs the installed table's `blocked` set holds; None: unknown
    /// (a fresh table holds none, but is filled at the next [`Self::block`]).
    blocked: Option<Vec<crate::mac::Mac>>,
}

impl PerDevice {
    pub fn new(config: &Config) -> PerDevice {
        PerDevice {
            netfilter: None,
            installed: None,
            generation: 0,
            last_read_unix: 0,
            refused: false,
            no_egress: false,
            neighbours: NeighbourMacs::new(4 * config.max_devices as usize + 64),
            flows: None,
            auto_reason: None,
            status: PerDeviceStatus::default(),
            blocked: None,
        }
    }

    /// Goes on from restored accounts: the next install must be a newer
    /// generation than any their readings belong to.
    pub fn resume(&mut self, accounts: &DeviceAccounts) {
        self.generation = self.generation.max(accounts.generation().unwrap_or(0));
    }

    /// The plan for the current config and interfaces, or why there is none;
    /// also the LAN's own prefixes.
    fn plan(
        &self,
        config: &Config,
        route: &mut NetlinkSocket,
        links: &[LinkSample],
    ) -> Result<(Plan, Vec<String>, Vec<IpPrefix>), String> {
        let (present, missing): (Vec<String>, Vec<String>) = config
            .lan_interface
            .iter()
            .cloned()
            .partition(|name| links.iter().any(|l| &l.name == name));
        if present.is_empty() {
            return Err(format!(
                "no LAN device to count on: {} does not exist; set 'list lan_interface' in the config",
                config.lan_interface.join(", ")
            ));
        }
        let prefixes = if config.lan_subnet.is_empty() {
            devices::lan_prefixes(route, links, &present).map_err(|e| e.to_string())?
        } else {
            config.lan_subnet.clone()
        };
        let timeout_ms = element_timeout(config).as_millis() as u64;
        let hooks = match config.placement {
            Placement::Netdev => Hooks::Netdev,
            Placement::Forward => Hooks::Forward,
            // Its table is the forward placement's family; the caller
            // takes only the prefixes from this plan.
            Placement::Conntrack => Hooks::Forward,
            Placement::Auto if self.no_egress => Hooks::Forward,
            Placement::Auto => Hooks::Netdev,
        };
        // Netdev hooks go on a bridge's ports; the forward chain names the
        // bridge itself (it is the packets' iif/oif there).
        let hooked = match hooks {
            Hooks::Netdev => devices::hook_devices(&present, links),
            Hooks::Forward => present,
        };
        let mut plan = Plan::new(
            hooks,
            hooked,
            &prefixes,
            config.max_devices as usize,
            timeout_ms,
        );
        plan.block = config.quotas.iter().any(|q| q.blocks());
        Ok((plan, missing, prefixes))
    }

    fn install(&mut self, plan: Plan, log: &mut Vec<String>) -> Result<(), NetlinkError> {
        let socket = match &mut self.netfilter {
            Some(s) => s,
            None => self
                .netfilter
                .insert(NetlinkSocket::open(NETLINK_NETFILTER)?),
        };
        devices::install(socket, &plan)?;
        self.blocked = None;
        self.generation += 1;
        let placement = plan.hooks.describe(&plan.lan_devices);
        log.push(format!("per-device accounting: {placement}"));
        self.status.active = true;
        self.status.off_reason = None;
        self.status.placement = placement;
        self.status.placement_kind = match plan.hooks {
            Hooks::Netdev => "netdev",
            Hooks::Forward => "forward",
        }
        .into();
        self.installed = Some(plan);
        Ok(())
    }

    /// Makes the table drop the WAN traffic of exactly `macs` (the
    /// quotas' blocks), when it changed or the table was reinstalled.
    pub fn block(&mut self, macs: &[crate::mac::Mac]) -> Vec<String> {
        let mut log = Vec::new();
        // Blocks are netmeter-full's: the core leaves their code out.
        if !cfg!(feature = "quota") {
            return log;
        }
        let Some(plan) = self.installed.as_ref() else {
            if !macs.is_empty() && self.blocked.as_deref() != Some(macs) {
                log.push(
                    "a quota blocks devices, but only netmeter's own table (the netdev or \
                     forward placement) can drop their traffic"
                        .into(),
                );
                self.blocked = Some(macs.to_vec());
            }
            return log;
        };
        if !plan.block || self.blocked.as_deref() == Some(macs) {
            return log;
        }
        let Some(socket) = self.netfilter.as_mut() else {
            return log;
        };
        match devices::set_blocked(socket, plan.hooks, macs) {
            Ok(()) => {
                let was = self.blocked.take().unwrap_or_default();
                for mac in macs.iter().filter(|m| !was.contains(m)) {
                    log.push(format!("quota: {mac} blocked: its WAN traffic is dropped"));
                }
                for mac in was.iter().filter(|m| !macs.contains(m)) {
                    log.push(format!("quota: {mac} unblocked"));
                }
                self.blocked = Some(macs.to_vec());
            }
            Err(e) => log.push(format!("cannot update the quota blocks: {e}")),
        }
        log
    }

    fn turn_off(&mut self, reason: String, log: &mut Vec<String>) {
        self.flows = None;
        self.status.conntrack = None;
        if self.status.off_reason.as_deref() != Some(&reason) {
            log.push(format!("per-device accounting is off: {reason}"));
        }
        self.status.active = false;
        self.status.placement = "off".into();
        self.status.placement_kind = "off".into();
        self.status.off_reason = Some(reason);
        self.installed = None;
    }

    /// One refresh: read the sets into the accounts, handle a vanished
    /// table, prune idle elements, follow LAN address changes. Returns log lines.
    pub fn refresh(
        &mut self,
        now: Moment,
        config: &Config,
        route: &mut NetlinkSocket,
        links: &[LinkSample],
        accounts: &mut DeviceAccounts,
    ) -> Vec<String> {
        let mut log = Vec::new();
        if self.refused {
            return log;
        }
        if self.installed.is_some() {
            self.read(now, config, Some(route), accounts, &mut log);
        } else if let Some(flows) = self.flows.as_mut() {
            let idle_ms = element_timeout(config).as_millis() as u64 / 2;
            let neighbours = &mut self.neighbours;
            flows.read(
                now,
                self.generation,
                idle_ms,
                Some(&mut *route),
                neighbours,
                accounts,
                &mut log,
            );
            self.status.tracked_elements = flows.status.tracked_flows;
            self.last_read_unix = now.unix_secs;
        }
        let (plan, missing, lan) = match self.plan(config, route, links) {
            Ok(p) => p,
            Err(reason) => {
                self.turn_off(reason, &mut log);
                return log;
            }
        };
        if self.counts_by_conntrack(config) {
            self.status.missing_devices = missing;
            self.refresh_conntrack(now, config, route, plan, lan, &mut log);
            return log;
        }
        if self.flows.take().is_some() {
            self.remove_table(&mut log);
        }
        if missing != self.status.missing_devices && !missing.is_empty() {
            log.push(format!(
                "LAN device(s) not found, not counted: {}",
                missing.join(", ")
            ));
        }
        self.status.missing_devices = missing;
        if self.installed.as_ref() != Some(&plan) {
            match self.install(plan.clone(), &mut log) {
                Ok(()) => {}
                Err(e) => match after_refusal(config.placement, plan.hooks, &e) {
                    Refusal::FallBackToForward => {
                        log.push(
                            "this kernel has no netdev egress hook (Linux 5.16+): counting in the forward \
                             chain instead, which does not see flows a flowtable offloads"
                                .into(),
                        );
                        self.no_egress = true;
                        // Planned again: the forward chain names the bridge,
                        // not its ports.
                        let fallback = match self.plan(config, route, links) {
                            Ok((fallback, _, _)) => fallback,
                            Err(reason) => {
                                self.turn_off(reason, &mut log);
                                return log;
                            }
                        };
                        if let Err(e) = self.install(fallback, &mut log) {
                            self.refused = e.is_permission_denied();
                            self.turn_off(e.to_string(), &mut log);
                        }
                    }
                    Refusal::Off { reason, retry } => {
                        self.refused = !retry;
                        self.turn_off(reason, &mut log);
                    }
                },
            }
        }
        log
    }

    fn read(
        &mut self,
        now: Moment,
        config: &Config,
        route: Option<&mut NetlinkSocket>,
        accounts: &mut DeviceAccounts,
        log: &mut Vec<String>,
    ) {
        let Some(hooks) = self.installed.as_ref().map(|p| p.hooks) else {
            return;
        };
        let Some(socket) = self.netfilter.as_mut() else {
            return;
        };
        match devices::read(socket, hooks) {
            Ok(reading) => {
                self.status.tracked_elements = reading.samples.len() + reading.by_ip.len();
                let mut samples = reading.samples;
                if !reading.by_ip.is_empty() {
                    if let Some(route) = route
                        && let Err(e) = self.neighbours.refresh(route)
                    {
                        log.push(format!("cannot read the neighbour tables: {e}"));
                    }
                    let resolved = resolve(&reading.by_ip, &mut self.neighbours, &samples);
                    samples.extend(resolved);
                }
                for event in accounts.ingest(now, self.generation, &samples, reading.unattributed) {
                    match event {
                        DeviceEvent::Overflow { mac } => log.push(format!(
                            "more than {} devices: {} is counted as 'other' (raise option max_devices)",
                            config.max_devices,
                            mac
                        )),
                        DeviceEvent::ElementStateEvicted { count } => log.push(format!(
                            "too many set elements to follow ({count} dropped): their next growth may be counted twice"
                        )),
                        _ => {}
                    }
                }
                self.last_read_unix = now.unix_secs;
                let idle_ms = element_timeout(config).as_millis() as u64 / 2;
                let idle = accounts.idle_elements(now, idle_ms);
                if !idle.is_empty() {
                    match devices::delete_elements(socket, hooks, &idle) {
                        Ok(()) => {}
                        // Expired in the kernel meanwhile: gone either way.
                        Err(e) if e.errno() == Some(libc::ENOENT) => {}
                        Err(e) => {
                            log.push(format!("cannot remove idle devices' elements: {e}"));
                            return;
                        }
                    }
                    accounts.forget_elements(&idle);
                }
            }
            Err(ReadError::TableMissing) => {
                log.push(
                    "netmeter's nftables table disappeared (a firewall restart or 'nft flush ruleset'); \
                     reinstalling it. Traffic since the last refresh is unknown."
                        .into(),
                );
                self.status.unknown_gaps += 1;
                self.status.last_gap = Some((self.last_read_unix, now.unix_secs));
                self.installed = None; // reinstalled by the caller's plan check
            }
            Err(ReadError::Netlink(e)) => {
                log.push(format!("reading per-device counters failed: {e}"))
            }
        }
    }

    /// Whether the conntrack placement is the one to use: configured, or
    /// under `auto` when a flowtable offloads to hardware (no hook sees
    /// those packets, and conntrack's counters still grow).
    fn counts_by_conntrack(&mut self, config: &Config) -> bool {
        let flowtables = match config.placement {
            Placement::Auto => self
                .netfilter_socket()
                .ok()
                .and_then(|s| devices::flowtables(s).ok())
                .unwrap_or_default(),
            _ => Vec::new(),
        };
        let why = conntrack_reason(config.placement, &flowtables);
        self.auto_reason = why.clone().filter(|_| config.placement == Placement::Auto);
        why.is_some()
    }

    fn netfilter_socket(&mut self) -> Result<&mut NetlinkSocket, NetlinkError> {
        match self.netfilter {
            Some(ref mut s) => Ok(s),
            None => Ok(self
                .netfilter
                .insert(NetlinkSocket::open(NETLINK_NETFILTER)?)),
        }
    }

    /// Starts the conntrack placement if it is not running, and keeps its
    /// view of the network and the flowtables current.
    fn refresh_conntrack(
        &mut self,
        now: Moment,
        config: &Config,
        route: &mut NetlinkSocket,
        plan: Plan,
        lan: Vec<IpPrefix>,
        log: &mut Vec<String>,
    ) {
        if self.flows.is_none() {
            if self.installed.take().is_some() {
                self.remove_table(log);
            }
            let started = self.netfilter_socket().and_then(|socket| {
                socket.batch(
                    flows::install_batch().finish(),
                    "installing netmeter's nftables table (conntrack for IPv4 and IPv6)",
                )
            });
            match started.and_then(|()| FlowCounting::start(config, now, log)) {
                Ok(mut counting) => {
                    self.generation += 1;
                    let mut placement =
                        "conntrack: the kernel's per-flow counters (offloaded flows \
                                         included where the flowtable counts)"
                            .to_string();
                    if let Some(why) = &self.auto_reason {
                        placement.push_str(&format!("; chosen by placement 'auto': {why}"));
                    }
                    log.push(format!("per-device accounting: {placement}"));
                    self.status.active = true;
                    self.status.off_reason = None;
                    self.status.placement = placement;
                    self.status.placement_kind = "conntrack".into();
                    counting.set_network(lan.clone(), plan.local_prefixes.clone(), route);
                    counting.baseline(log);
                    self.flows = Some(counting);
                }
                Err(e) => {
                    self.refused = e.is_permission_denied();
                    self.turn_off(e.to_string(), log);
                    return;
                }
            }
        } else if self
            .netfilter_socket()
            .and_then(flows::table_present)
            .is_ok_and(|present| !present)
        {
            // Conntrack kept counting; only flows the kernel did not track
            // meanwhile (IPv6 on a router that NATs only IPv4) are missed.
            log.push(
                "netmeter's nftables table disappeared (a firewall restart or 'nft flush ruleset'); \
                 reinstalling it. Conntrack kept counting meanwhile."
                    .into(),
            );
            if let Err(e) = self.netfilter_socket().and_then(|socket| {
                socket.batch(
                    flows::install_batch().finish(),
                    "reinstalling netmeter's nftables table (conntrack for IPv4 and IPv6)",
                )
            }) {
                log.push(format!("cannot reinstall netmeter's table: {e}"));
            }
        }
        let uncounted: Vec<String> = self
            .netfilter_socket()
            .ok()
            .and_then(|s| devices::flowtables(s).ok())
            .map(|all| {
                flows::uncounted_flowtables(&all)
                    .into_iter()
                    .map(flows::counter_fix)
                    .collect()
            })
            .unwrap_or_default();
        let Some(counting) = self.flows.as_mut() else {
            return;
        };
        for fix in &uncounted {
            if !counting.status.uncounted_flowtables.contains(fix) {
                log.push(fix.clone());
            }
        }
        counting.status.uncounted_flowtables = uncounted;
        counting.set_network(lan, plan.local_prefixes, route);
        self.status.conntrack = Some(counting.status.clone());
    }

    fn remove_table(&mut self, log: &mut Vec<String>) {
        if let Ok(socket) = self.netfilter_socket()
            && let Err(e) = devices::teardown(socket)
        {
            log.push(format!("cannot remove netmeter's nftables table: {e}"));
        }
    }

    /// A reloaded config may have fixed what refused us.
    pub fn reconfigure(&mut self) {
        self.refused = false;
    }

    /// On stop: read a last time, then remove the table unless told to keep it.
    pub fn stop(
        &mut self,
        now: Moment,
        config: &Config,
        accounts: &mut DeviceAccounts,
    ) -> Vec<String> {
        let mut log = Vec::new();
        if self.installed.is_some() {
            self.read(now, config, None, accounts, &mut log);
        } else if let Some(flows) = self.flows.as_mut() {
            let idle_ms = element_timeout(config).as_millis() as u64 / 2;
            flows.read(
                now,
                self.generation,
                idle_ms,
                None,
                &mut self.neighbours,
                accounts,
                &mut log,
            );
        }
        if config.keep_rules || (self.installed.is_none() && self.flows.is_none()) {
            return log;
        }
        if let Some(socket) = self.netfilter.as_mut() {
            match devices::teardown(socket) {
                Ok(_) => log.push("removed netmeter's nftables table".into()),
                Err(e) => log.push(format!("cannot remove netmeter's nftables table: {e}")),
            }
        }
        log
    }
}

/// Why the conntrack placement is the one to use, or None: configured, or
/// under `auto` when a flowtable offloads to hardware (no hook sees those
/// packets; conntrack's counters still grow).
fn conntrack_reason(placement: Placement, flowtables: &[Flowtable]) -> Option<String> {
    match placement {
        Placement::Conntrack => Some("option placement 'conntrack'".into()),
        Placement::Auto => flowtables
            .iter()
            .find(|f| f.flags & NF_FLOWTABLE_HW_OFFLOAD != 0)
            .map(|f| {
                format!(
                    "flowtable {} (table {}) offloads to hardware, where no hook sees the packets",
                    f.name, f.table
                )
            }),
        _ => None,
    }
}

/// What to do when the kernel refused netmeter's table.
#[derive(Debug, PartialEq, Eq)]
enum Refusal {
    FallBackToForward,
    /// Per-device accounting off; `retry` on later refreshes (else only
    /// after a config reload: no privilege will not fix itself).
    Off {
        reason: String,
        retry: bool,
    },
}

fn after_refusal(placement: Placement, hooks: Hooks, e: &NetlinkError) -> Refusal {
    if devices::is_egress_unsupported(e) && hooks == Hooks::Netdev {
        return match placement {
            Placement::Auto => Refusal::FallBackToForward,
            _ => Refusal::Off {
                reason: "this kernel has no netdev egress hook (Linux 5.16+), which option placement \
                         'netdev' needs: set it to 'auto' or 'forward' (the forward chain misses offloaded flows)"
                    .into(),
                retry: false,
            },
        };
    }
    Refusal::Off {
        reason: e.to_string(),
        retry: !e.is_permission_denied(),
    }
}

/// Ties traffic counted by IP alone to MACs: what the sent sets show the
/// device using, else the neighbour tables. An IP with no MAC yet is left
/// out of this read; its element's counter keeps everything, so it is
/// counted in full once the MAC is known.
pub fn resolve(
    by_ip: &[(Direction, std::net::IpAddr, u64, u64)],
    macs: &mut NeighbourMacs,
    with_mac: &[DeviceSample],
) -> Vec<DeviceSample> {
    for s in with_mac {
        macs.learn(s.ip, s.mac);
    }
    by_ip
        .iter()
        .filter_map(|&(direction, ip, bytes, packets)| {
            macs.mac(&ip).map(|mac| DeviceSample {
                direction,
                mac,
                ip,
                bytes,
                packets,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn refused(errno: i32) -> NetlinkError {
        NetlinkError::Kernel {
            context: "installing".into(),
            errno,
            detail: None,
        }
    }

    #[test]
    fn a_restored_state_makes_the_next_install_a_newer_generation() {
        use crate::account::{DeviceAccounts, UnattributedSample};
        use crate::clock::Moment;
        let mut accounts = DeviceAccounts::new(4);
        let now = Moment {
            monotonic_ms: 0,
            unix_secs: 0,
        };
        accounts.ingest(now, 7, &[], UnattributedSample::default());
        let mut per_device = PerDevice::new(&Config::default());
        per_device.resume(&accounts);
        // install() bumps before use: the kernel's fresh table is generation 8,
        // so every element restored from generation 7 counts as restarted.
        assert_eq!(per_device.generation + 1, 8);
    }

    #[test]
    fn a_kernel_without_netdev_egress_falls_back_to_forward_only_under_auto() {
        let no_egress = refused(libc::EOPNOTSUPP);
        assert_eq!(
            after_refusal(Placement::Auto, Hooks::Netdev, &no_egress),
            Refusal::FallBackToForward
        );
        let Refusal::Off { reason, retry } =
            after_refusal(Placement::Netdev, Hooks::Netdev, &no_egress)
        else {
            panic!("an explicit netdev placement must not silently become forward");
        };
        assert!(reason.contains("5.16") && reason.contains("placement") && !retry);
        // The forward placement itself refused: nothing further to fall back to.
        assert!(matches!(
            after_refusal(Placement::Auto, Hooks::Forward, &no_egress),
            Refusal::Off { .. }
        ));
    }

    #[test]
    fn no_privilege_turns_per_device_off_until_a_reload_and_other_errors_retry() {
        let eperm = after_refusal(Placement::Auto, Hooks::Netdev, &refused(libc::EPERM));
        assert!(
            matches!(eperm, Refusal::Off { retry: false, ref reason } if reason.contains("CAP_NET_ADMIN"))
        );
        assert!(matches!(
            after_refusal(Placement::Auto, Hooks::Netdev, &refused(libc::ENOENT)),
            Refusal::Off { retry: true, .. }
        ));
    }

    #[test]
    fn ip_only_traffic_takes_the_mac_the_device_was_seen_sending_from_else_stays_out() {
        let mac = crate::mac::Mac([2, 0, 0, 0, 0, 7]);
        let ip: std::net::IpAddr = "10.0.0.7".parse().unwrap();
        let other: std::net::IpAddr = "10.0.0.8".parse().unwrap();
        let sent = [DeviceSample {
            direction: Direction::Sent,
            mac,
            ip,
            bytes: 10,
            packets: 1,
        }];
        let by_ip = [
            (Direction::Received, ip, 500, 5),
            (Direction::Received, other, 9, 1),
        ];
        let mut macs = NeighbourMacs::new(8);
        let resolved = resolve(&by_ip, &mut macs, &sent);
        assert_eq!(
            resolved.len(),
            1,
            "the unknown IP waits until its MAC is known"
        );
        assert_eq!(
            (resolved[0].mac, resolved[0].bytes, resolved[0].direction),
            (mac, 500, Direction::Received)
        );
    }

    #[test]
    fn auto_counts_by_conntrack_only_when_a_flowtable_offloads_to_hardware() {
        let ft = |flags| Flowtable {
            family: 1,
            table: "fw4".into(),
            name: "ft".into(),
            flags,
            devices: vec!["lan1".into()],
        };
        let software = [ft(crate::netlink::nftables::NF_FLOWTABLE_COUNTER)];
        let hardware = [ft(NF_FLOWTABLE_HW_OFFLOAD)];
        assert_eq!(conntrack_reason(Placement::Auto, &[]), None);
        assert_eq!(conntrack_reason(Placement::Auto, &software), None);
        let why = conntrack_reason(Placement::Auto, &hardware).unwrap();
        assert!(
            why.contains("flowtable ft") && why.contains("hardware"),
            "{why}"
        );
        assert_eq!(conntrack_reason(Placement::Netdev, &hardware), None);
        assert!(conntrack_reason(Placement::Conntrack, &[]).is_some());
    }

    #[test]
    fn an_element_timeout_under_three_refreshes_is_raised_to_three_refreshes() {
        let mut config = Config {
            refresh_interval: Duration::from_secs(10),
            element_timeout: Duration::from_secs(5),
            ..Config::default()
        };
        assert_eq!(element_timeout(&config), Duration::from_secs(30));
        config.element_timeout = Duration::from_secs(3600);
        assert_eq!(element_timeout(&config), Duration::from_secs(3600));
    }
}
