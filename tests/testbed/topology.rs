//! The standard network: LAN hosts ⇄ router ⇄ WAN host, with IPv4
//! masquerade on the router's WAN side and routed IPv6.
//!
//! ```text
//!  lan0 ns (eth0 10.0.1.2, fd00:1::2) ── lan0 ┐
//!  lan1 ns (eth0 10.0.2.2, fd00:2::2) ── lan1 ┤ router ns ── wan ── wan ns (eth0 203.0.113.1, 2001:db8::1)
//!                                             ┘  (203.0.113.2, 2001:db8::2)
//! ```
//! With `bridge`, the router's LAN veths are enslaved to that bridge and
//! LAN host i gets 10.0.0.(i+2) / fd00::(i+2) on one subnet instead.

use super::Host;

/// One LAN host of the network.
#[derive(Clone, Debug)]
pub struct LanHost {
    pub name: String,
    /// false: IPv6 only.
    pub ipv4: bool,
}

impl LanHost {
    pub fn dual(name: &str) -> Self {
        LanHost {
            name: name.into(),
            ipv4: true,
        }
    }
    pub fn ipv6_only(name: &str) -> Self {
        LanHost {
            name: name.into(),
            ipv4: false,
        }
    }
}

#[derive(Clone, Debug, Default)]
pub struct Topology {
    pub lan: Vec<LanHost>,
    /// Put the router's LAN ports in a bridge of this name (OpenWrt's `br-lan`).
    pub bridge: Option<String>,
}

pub const WAN_HOST_V4: &str = "203.0.113.1";
pub const WAN_HOST_V6: &str = "2001:db8::1";
pub const ROUTER_WAN_V4: &str = "203.0.113.2";
pub const ROUTER_WAN_V6: &str = "2001:db8::2";
/// The port every host's traffic server listens on.
pub const PORT: u16 = 5001;

/// A built network. Dropping it kills every agent, and with them the namespaces.
pub struct Network {
    pub router: Host,
    pub wan: Host,
    pub lan: Vec<Host>,
    lan_specs: Vec<LanHost>,
    bridged: bool,
}

impl Network {
    pub fn build(topology: Topology) -> Network {
        super::require_namespaces();
        let router = Host::spawn("router", None).expect("starting the router namespace");
        let wan = Host::spawn("wan", Some(&router)).expect("starting the WAN namespace");
        let lan: Vec<Host> = topology
            .lan
            .iter()
            .map(|h| Host::spawn(&h.name, Some(&router)).expect("starting a LAN namespace"))
            .collect();
        for host in std::iter::once(&router).chain(&lan).chain([&wan]) {
            // Addresses work at once (no DAD) and no router solicitations add noise.
            for scope in ["all", "default"] {
                host.run(&format!("sysctl net/ipv6/conf/{scope}/accept_dad 0"));
                host.run(&format!(
                    "sysctl net/ipv6/conf/{scope}/router_solicitations 0"
                ));
            }
        }
        router.run("sysctl net/ipv4/ip_forward 1");
        router.run("sysctl net/ipv6/conf/all/forwarding 1");

        router.run(&format!("veth wan eth0 {}", wan.pid()));
        router.run("up wan");
        router.run(&format!("addr wan {ROUTER_WAN_V4}/24"));
        router.run(&format!("addr wan {ROUTER_WAN_V6}/64"));
        wan.run("up eth0");
        wan.run(&format!("addr eth0 {WAN_HOST_V4}/24"));
        wan.run(&format!("addr eth0 {WAN_HOST_V6}/64"));
        // The WAN host knows no route to the LAN's IPv4: only masquerade
        // brings answers back. IPv6 is routed, as an ISP would.
        wan.run(&format!("route fd00::/16 {ROUTER_WAN_V6}"));
        // Like any gateway, the router's default routes point out of its WAN.
        router.run(&format!("route default {WAN_HOST_V4}"));
        router.run(&format!("route default {WAN_HOST_V6}"));
        router.run("masquerade wan");

        if let Some(br) = &topology.bridge {
            router.run(&format!("bridge {br}"));
            router.run(&format!("up {br}"));
            router.run(&format!("addr {br} 10.0.0.1/24"));
            router.run(&format!("addr {br} fd00::1/64"));
        }
        for (i, (host, spec)) in lan.iter().zip(&topology.lan).enumerate() {
            let port = format!("lan{i}");
            router.run(&format!("veth {port} eth0 {}", host.pid()));
            if let Some(br) = &topology.bridge {
                router.run(&format!("master {port} {br}"));
            } else {
                router.run(&format!("addr {port} 10.0.{}.1/24", i + 1));
                router.run(&format!("addr {port} fd00:{}::1/64", i + 1));
            }
            router.run(&format!("up {port}"));
            host.run("up eth0");
            let (v4, v6, gw4, gw6) = lan_addresses(i, topology.bridge.is_some());
            if spec.ipv4 {
                host.run(&format!("addr eth0 {v4}/24"));
                host.run(&format!("route default {gw4}"));
            }
            host.run(&format!("addr eth0 {v6}/64"));
            host.run(&format!("route default {gw6}"));
        }
        for host in std::iter::once(&wan).chain(&lan) {
            host.run(&format!("serve {PORT}"));
        }
        Network {
            router,
            wan,
            lan,
            lan_specs: topology.lan,
            bridged: topology.bridge.is_some(),
        }
    }

    /// The standard network with dual-stack LAN hosts of these names.
    pub fn with_lan_hosts(names: &[&str]) -> Network {
        Network::build(Topology {
            lan: names.iter().map(|n| LanHost::dual(n)).collect(),
            bridge: None,
        })
    }

    pub fn lan_host(&self, name: &str) -> &Host {
        self.lan
            .iter()
            .find(|h| h.name == name)
            .expect("no such LAN host")
    }

    /// LAN host `i`'s (IPv4, IPv6) address; IPv4 is None for IPv6-only hosts.
    pub fn lan_ips(&self, i: usize) -> (Option<String>, String) {
        let (v4, v6, _, _) = lan_addresses(i, self.bridged);
        (self.lan_specs[i].ipv4.then_some(v4), v6)
    }
}

fn lan_addresses(i: usize, bridged: bool) -> (String, String, String, String) {
    if bridged {
        (
            format!("10.0.0.{}", i + 2),
            format!("fd00::{}", i + 2),
            "10.0.0.1".into(),
            "fd00::1".into(),
        )
    } else {
        (
            format!("10.0.{}.2", i + 1),
            format!("fd00:{}::2", i + 1),
            format!("10.0.{}.1", i + 1),
            format!("fd00:{}::1", i + 1),
        )
    }
}
