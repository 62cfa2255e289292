//! Per-device accounting as the daemon runs it: netmeter's nftables table,
//! its reads, pruning of idle elements, and reinstalls after a flush.

use crate::account::{DeviceAccounts, DeviceEvent, Moment};
use crate::collect::devices::{self, Plan, ReadError};
use crate::collect::links::LinkSample;
use crate::config::Config;
use crate::netlink::socket::NETLINK_NETFILTER;
use crate::netlink::{NetlinkError, NetlinkSocket};
use serde::Serialize;

/// What `/api/v1/status` and `netmeter check` say about per-device accounting.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct PerDeviceStatus {
    pub active: bool,
    /// Where the counters sit, in words.
    pub placement: String,
    /// Why per-device accounting is off, and what to do.
    pub off_reason: Option<String>,
    /// How many times the table vanished and its traffic since the last
    /// read is unknown (neither zero nor counted twice).
    pub unknown_gaps: u32,
    /// Unix times of the last gap: the last good read and the reinstall.
    pub last_gap: Option<(u64, u64)>,
    /// Set elements read on the last refresh.
    pub tracked_elements: usize,
    /// Configured LAN devices that do not exist.
    pub missing_devices: Vec<String>,
}

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
    pub accounts: DeviceAccounts,
    pub status: PerDeviceStatus,
}

impl PerDevice {
    pub fn new(config: &Config) -> PerDevice {
        PerDevice {
            netfilter: None,
            installed: None,
            generation: 0,
            last_read_unix: 0,
            refused: false,
            accounts: DeviceAccounts::new(config.max_devices as usize),
            status: PerDeviceStatus::default(),
        }
    }

    /// The plan for the current config and interfaces, or why there is none.
    fn plan(
        config: &Config,
        route: &mut NetlinkSocket,
        links: &[LinkSample],
    ) -> Result<(Plan, Vec<String>), String> {
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
        Ok((
            Plan::new(present, &prefixes, config.max_devices as usize, timeout_ms),
            missing,
        ))
    }

    fn install(&mut self, plan: Plan, log: &mut Vec<String>) -> Result<(), NetlinkError> {
        let socket = match &mut self.netfilter {
            Some(s) => s,
            None => self
                .netfilter
                .insert(NetlinkSocket::open(NETLINK_NETFILTER)?),
        };
        devices::install(socket, &plan)?;
        self.generation += 1;
        log.push(format!(
            "per-device accounting on {}: netdev ingress (priority -500) and egress",
            plan.lan_devices.join(", ")
        ));
        self.status.active = true;
        self.status.off_reason = None;
        self.status.placement = format!(
            "netdev ingress (priority -500, before flowtables) and egress on {}",
            plan.lan_devices.join(", ")
        );
        self.installed = Some(plan);
        Ok(())
    }

    fn turn_off(&mut self, reason: String, log: &mut Vec<String>) {
        if self.status.off_reason.as_deref() != Some(&reason) {
            log.push(format!("per-device accounting is off: {reason}"));
        }
        self.status.active = false;
        self.status.placement = "off".into();
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
    ) -> Vec<String> {
        let mut log = Vec::new();
        if self.refused {
            return log;
        }
        if self.installed.is_some() {
            self.read(now, config, &mut log);
        }
        let (plan, missing) = match Self::plan(config, route, links) {
            Ok(p) => p,
            Err(reason) => {
                self.turn_off(reason, &mut log);
                return log;
            }
        };
        if missing != self.status.missing_devices && !missing.is_empty() {
            log.push(format!(
                "LAN device(s) not found, not counted: {}",
                missing.join(", ")
            ));
        }
        self.status.missing_devices = missing;
        if self.installed.as_ref() != Some(&plan) {
            if let Err(e) = self.install(plan, &mut log) {
                self.refused = e.is_permission_denied();
                self.turn_off(e.to_string(), &mut log);
            }
        }
        log
    }

    fn read(&mut self, now: Moment, config: &Config, log: &mut Vec<String>) {
        let Some(socket) = self.netfilter.as_mut() else {
            return;
        };
        match devices::read(socket) {
            Ok(reading) => {
                self.status.tracked_elements = reading.samples.len();
                for event in self.accounts.ingest(
                    now,
                    self.generation,
                    &reading.samples,
                    reading.unattributed,
                ) {
                    match event {
                        DeviceEvent::Overflow { mac } => log.push(format!(
                            "more than {} devices: {} is counted as 'other' (raise option max_devices)",
                            config.max_devices,
                            crate::mac::format_mac(&mac)
                        )),
                        DeviceEvent::ElementStateEvicted { count } => log.push(format!(
                            "too many set elements to follow ({count} dropped): their next growth may be counted twice"
                        )),
                        _ => {}
                    }
                }
                self.last_read_unix = now.unix_secs;
                let idle_ms = element_timeout(config).as_millis() as u64 / 2;
                let idle = self.accounts.idle_elements(now, idle_ms);
                if !idle.is_empty() {
                    match devices::delete_elements(socket, &idle) {
                        Ok(()) => {}
                        // Expired in the kernel meanwhile: gone either way.
                        Err(e) if e.errno() == Some(libc::ENOENT) => {}
                        Err(e) => {
                            log.push(format!("cannot remove idle devices' elements: {e}"));
                            return;
                        }
                    }
                    self.accounts.forget_elements(&idle);
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

    /// A reloaded config may have fixed what refused us.
    pub fn reconfigure(&mut self, config: &Config) {
        self.refused = false;
        self.accounts.set_max_devices(config.max_devices as usize);
    }

    /// On stop: read a last time, then remove the table unless told to keep it.
    pub fn stop(&mut self, now: Moment, config: &Config) -> Vec<String> {
        let mut log = Vec::new();
        if self.installed.is_some() {
            self.read(now, config, &mut log);
        }
        if config.keep_rules || self.installed.is_none() {
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

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
