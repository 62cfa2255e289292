//! Per-device counters from conntrack's per-flow counters (the conntrack
//! placement).
//!
//! Each refresh brings a dump of every flow and the destroy events queued
//! since the last one (with each ended flow's final counters). A flow is
//! followed by its conntrack id and original tuple, and only its growth
//! since it was last seen is credited, so a flow that starts and ends
//! between two reads is counted whole (from its destroy event) and none
//! twice. The growth goes to the LAN device on its side of the router, in
//! per (direction, device IP) totals that only grow: `DeviceAccounts`
//! follows those as it follows set elements, and the daemon ties the IPs
//! to MACs as for the forward placement. Growth by protocol class goes
//! out per read.
//!
//! Flows that already existed when this tracker began (its first read)
//! are taken as they stand: what they carried before netmeter ran is not
//! counted, as with every placement.

use std::collections::HashMap;
use std::net::IpAddr;

use super::Direction;
use super::protocols::{ClassId, ProtocolClasses};
use crate::config::IpPrefix;
use crate::netlink::conntrack::{Counters, Flow, Tuple};
use crate::rxtx::RxTx;

/// Flows followed at most by default: a router's conntrack table holds up
/// to `nf_conntrack_max` (often 16,384 to 65,536) entries.
pub const DEFAULT_MAX_FLOWS: usize = 65_536; // option max_flows

/// Which side of the router an address is on.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LocalNetwork {
    /// The LAN's prefixes: where devices are.
    pub lan: Vec<IpPrefix>,
    /// Prefixes that are not beyond the router: the LAN's own, link-local,
    /// multicast and the like (the device placements' `local_prefixes`).
    pub local: Vec<IpPrefix>,
    /// The router's own addresses, on every interface.
    pub own: Vec<IpAddr>,
}

impl LocalNetwork {
    fn is_device(&self, ip: &IpAddr) -> bool {
        self.lan.iter().any(|p| p.contains(ip)) && !self.own.contains(ip)
    }

    fn is_beyond(&self, ip: &IpAddr) -> bool {
        !self.local.iter().any(|p| p.contains(ip)) && !self.own.contains(ip)
    }
}

/// A flow's meaning for accounting: whose it is and which way its
/// directions go.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Attributed {
    device: IpAddr,
    /// The device opened the flow: conntrack's original direction is what
    /// it sent. Otherwise (a port forward, routed inbound IPv6) the reply
    /// direction is.
    opened_by_device: bool,
    class: ClassId,
}

/// Which device a flow belongs to, if any: a LAN source talking to an
/// address beyond the router, or (reply source in the LAN) a flow from
/// beyond to a LAN device. Router-own and LAN-to-LAN flows have none.
fn attribute(flow: &Flow, net: &LocalNetwork, classes: &ProtocolClasses) -> Option<Attributed> {
    let Flow {
        original, reply, ..
    } = flow;
    let (device, opened_by_device, server) =
        if net.is_device(&original.src) && net.is_beyond(&original.dst) {
            (original.src, true, original)
        } else if net.is_device(&reply.src) && net.is_beyond(&original.src) {
            (reply.src, false, reply)
        } else {
            return None;
        };
    Some(Attributed {
        device,
        opened_by_device,
        class: classes.classify(server.protocol, server_port(server, opened_by_device)),
    })
}

/// The port that names the service: the one the device connected to, or,
/// for a flow from beyond, the device's own.
fn server_port(tuple: &Tuple, opened_by_device: bool) -> u16 {
    if opened_by_device {
        tuple.dst_port
    } else {
        tuple.src_port
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct FlowKey {
    id: u32,
    original: Tuple,
}

impl FlowKey {
    fn of(flow: &Flow) -> Self {
        Self {
            id: flow.id,
            original: flow.original,
        }
    }
}

#[derive(Clone, Copy, Debug)]
struct FlowState {
    original: Counters,
    reply: Counters,
    attributed: Option<Attributed>,
    seen: u64,
}

/// What the tracker has seen go wrong or left out, for the status.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FlowStats {
    /// Flows followed after the last read.
    pub tracked: usize,
    /// Flows in the last dump not followed because `max_flows` were: each
    /// is counted whole by its destroy event instead.
    pub untracked: usize,
    /// Flows that vanished from the dump without a destroy event (events
    /// lost): their growth since their last dump is not counted.
    pub ended_unseen: u64,
    /// Flows the kernel keeps no counters for (`nf_conntrack_acct` was off
    /// when they began), in the last dump.
    pub without_counters: usize,
}

/// Per-flow state and the per-device totals made from it.
#[derive(Debug)]
pub struct FlowTracker {
    flows: HashMap<FlowKey, FlowState>,
    max_flows: usize,
    reads: u64,
    /// Bytes and packets per (direction, device IP) since this tracker began.
    totals: HashMap<(Direction, IpAddr), Counters>,
    /// Growth per (device IP, class) not yet handed out.
    classes: HashMap<(IpAddr, ClassId), RxTx<u64>>,
    pub stats: FlowStats,
    without_counters: usize,
    untracked: usize,
}

impl FlowTracker {
    pub fn new(max_flows: usize) -> Self {
        Self {
            flows: HashMap::new(),
            max_flows,
            reads: 0,
            totals: HashMap::new(),
            classes: HashMap::new(),
            stats: FlowStats::default(),
            without_counters: 0,
            untracked: 0,
        }
    }

    /// Starts a read: the dump's flows follow, then the destroy events.
    pub fn begin_read(&mut self) {
        self.reads += 1;
        self.without_counters = 0;
        self.untracked = 0;
    }

    /// Before the first read completes, flows are taken as they stand.
    fn baselining(&self) -> bool {
        self.reads <= 1
    }

    /// A flow as the dump lists it.
    pub fn live(&mut self, flow: &Flow, net: &LocalNetwork, classes: &ProtocolClasses) {
        let (Some(original), Some(reply)) = (flow.counters_original, flow.counters_reply) else {
            self.without_counters += 1;
            return;
        };
        let stamp = self.reads;
        let baselining = self.baselining();
        let key = FlowKey::of(flow);
        if !self.flows.contains_key(&key) && self.flows.len() >= self.max_flows {
            self.untracked += 1;
            return;
        }
        let state = self.flows.entry(key).or_insert_with(|| FlowState {
            original: Counters::default(),
            reply: Counters::default(),
            attributed: attribute(flow, net, classes),
            seen: stamp,
        });
        state.seen = stamp;
        let grown = (growth(state.original, original), growth(state.reply, reply));
        state.original = original;
        state.reply = reply;
        if let (Some(a), false) = (state.attributed, baselining) {
            self.credit(a, grown.0, grown.1);
        }
    }

    /// A flow's destroy event, with its final counters.
    pub fn destroyed(&mut self, flow: &Flow, net: &LocalNetwork, classes: &ProtocolClasses) {
        let (Some(original), Some(reply)) = (flow.counters_original, flow.counters_reply) else {
            return;
        };
        let (before, attributed) = match self.flows.remove(&FlowKey::of(flow)) {
            Some(state) => ((state.original, state.reply), state.attributed),
            // Begun and ended between two reads, or never followed.
            None if self.baselining() => return,
            None => (Default::default(), attribute(flow, net, classes)),
        };
        if let Some(a) = attributed {
            self.credit(a, growth(before.0, original), growth(before.1, reply));
        }
    }

    /// Ends a read: a flow the dump lacked and no event ended is gone with
    /// whatever it carried since its last dump.
    pub fn end_read(&mut self) {
        let stamp = self.reads;
        let before = self.flows.len();
        self.flows.retain(|_, state| state.seen == stamp);
        self.stats.ended_unseen += (before - self.flows.len()) as u64;
        self.stats.tracked = self.flows.len();
        self.stats.without_counters = self.without_counters;
        self.stats.untracked = self.untracked;
    }

    fn credit(&mut self, a: Attributed, original: Counters, reply: Counters) {
        let (sent, received) = if a.opened_by_device {
            (original, reply)
        } else {
            (reply, original)
        };
        for (direction, c) in [(Direction::Sent, sent), (Direction::Received, received)] {
            if c == Counters::default() {
                continue;
            }
            let total = self.totals.entry((direction, a.device)).or_default();
            total.bytes = total.bytes.saturating_add(c.bytes);
            total.packets = total.packets.saturating_add(c.packets);
        }
        let by_class = self.classes.entry((a.device, a.class)).or_default();
        *by_class = by_class.saturating_add(RxTx::new(received.bytes, sent.bytes));
    }

    /// The totals per (direction, device IP): counters that only grow, as
    /// `DeviceAccounts` expects of set elements.
    pub fn totals(&self) -> impl Iterator<Item = (Direction, IpAddr, Counters)> + '_ {
        self.totals.iter().map(|(&(d, ip), &c)| (d, ip, c))
    }

    /// The accounts forgot these idle totals: a later flow starts them again
    /// from zero.
    pub fn forget(&mut self, keys: &[(Direction, IpAddr)]) {
        for key in keys {
            self.totals.remove(key);
        }
    }

    /// Growth by class since the last call, for the devices `owner` can name;
    /// the rest waits for a later call.
    pub fn take_classes<O: Copy>(
        &mut self,
        mut owner: impl FnMut(&IpAddr) -> Option<O>,
    ) -> Vec<(O, ClassId, RxTx<u64>)> {
        let mut out = Vec::new();
        self.classes.retain(|(ip, class), bytes| match owner(ip) {
            Some(o) => {
                out.push((o, *class, *bytes));
                false
            }
            None => true,
        });
        out
    }
}

/// Growth between two readings of one direction; a fall cannot happen to a
/// live flow's counters, so it is taken as a new start.
fn growth(before: Counters, now: Counters) -> Counters {
    if now.bytes < before.bytes || now.packets < before.packets {
        return now;
    }
    Counters {
        bytes: now.bytes - before.bytes,
        packets: now.packets - before.packets,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::netlink::conntrack::tests::flow;

    fn net() -> LocalNetwork {
        let lan: Vec<IpPrefix> = vec![
            "192.168.1.0/24".parse().unwrap(),
            "2001:db8::/64".parse().unwrap(),
        ];
        let mut local = lan.clone();
        local.push("169.254.0.0/16".parse().unwrap());
        local.push("fe80::/10".parse().unwrap());
        LocalNetwork {
            lan,
            local,
            own: vec![
                "192.168.1.1".parse().unwrap(),
                "203.0.113.2".parse().unwrap(),
            ],
        }
    }

    fn with(mut f: Flow, orig: (u64, u64), reply: (u64, u64)) -> Flow {
        f.counters_original = Some(Counters {
            bytes: orig.0,
            packets: orig.1,
        });
        f.counters_reply = Some(Counters {
            bytes: reply.0,
            packets: reply.1,
        });
        f
    }

    fn totals(t: &FlowTracker) -> Vec<(Direction, IpAddr, u64)> {
        let mut v: Vec<_> = t.totals().map(|(d, ip, c)| (d, ip, c.bytes)).collect();
        v.sort();
        v
    }

    fn read(t: &mut FlowTracker, live: &[Flow], destroyed: &[Flow]) {
        let (n, c) = (net(), ProtocolClasses::builtin());
        t.begin_read();
        for f in live {
            t.live(f, &n, &c);
        }
        for f in destroyed {
            t.destroyed(f, &n, &c);
        }
        t.end_read();
    }

    fn device() -> IpAddr {
        "192.168.1.20".parse().unwrap()
    }

    /// A TCP flow from the device, NATed to the router's WAN address, to
    /// `port` beyond, from source port `sport`.
    fn outbound(id: u32, sport: u16, port: u16) -> Flow {
        flow(
            id,
            "192.168.1.20",
            "198.51.100.9",
            "203.0.113.2",
            (sport, port),
        )
    }

    /// The device's totals: (what it sent, what it received).
    fn sent_received(sent: u64, received: u64) -> Vec<(Direction, IpAddr, u64)> {
        vec![
            (Direction::Sent, device(), sent),
            (Direction::Received, device(), received),
        ]
    }

    #[test]
    fn only_the_growth_of_a_flow_since_it_was_last_seen_counts_and_its_end_adds_the_rest() {
        let f = outbound(7, 40000, 443);
        let mut t = FlowTracker::new(16);
        read(&mut t, &[], &[]); // the first read: nothing stood yet
        read(&mut t, &[with(f, (100, 2), (5000, 4))], &[]);
        read(&mut t, &[with(f, (300, 4), (9000, 8))], &[]);
        read(&mut t, &[], &[with(f, (350, 5), (9100, 9))]);
        assert_eq!(totals(&t), sent_received(350, 9100));
        assert_eq!(t.stats.tracked, 0);
        assert_eq!(t.stats.ended_unseen, 0);
    }

    #[test]
    fn a_flow_that_begins_and_ends_between_two_reads_is_counted_whole_once() {
        let f = outbound(8, 40001, 80);
        let mut t = FlowTracker::new(16);
        read(&mut t, &[], &[]);
        read(&mut t, &[], &[with(f, (700, 7), (64_000, 50))]);
        read(&mut t, &[], &[]);
        assert_eq!(totals(&t), sent_received(700, 64_000));
    }

    #[test]
    fn flows_standing_at_the_first_read_count_only_what_they_carry_after_it() {
        let f = outbound(9, 40002, 443);
        let old = outbound(10, 40003, 443);
        let mut t = FlowTracker::new(16);
        read(
            &mut t,
            &[with(f, (1000, 1), (1000, 1))],
            &[with(old, (5, 1), (5, 1))],
        );
        assert_eq!(totals(&t), vec![]);
        read(&mut t, &[with(f, (1500, 2), (4000, 3))], &[]);
        assert_eq!(totals(&t), sent_received(500, 3000));
    }

    #[test]
    fn a_port_forwarded_flow_belongs_to_its_lan_destination_with_directions_swapped() {
        // From beyond to the router's WAN address, DNATed to 192.168.1.20:22.
        let mut f = flow(
            11,
            "198.51.100.9",
            "203.0.113.2",
            "198.51.100.9",
            (50000, 2222),
        );
        f.reply.src = device();
        f.reply.src_port = 22;
        let mut t = FlowTracker::new(16);
        read(&mut t, &[], &[]);
        read(&mut t, &[], &[with(f, (800, 8), (120_000, 90))]);
        assert_eq!(totals(&t), sent_received(120_000, 800));
        let classes = t.take_classes(|ip| Some(*ip));
        let ssh = ProtocolClasses::builtin().classify(6, 22);
        assert_eq!(classes, vec![(device(), ssh, RxTx::new(800, 120_000))]);
    }

    #[test]
    fn routed_ipv6_counts_both_ways_and_lan_to_lan_and_router_own_flows_do_not() {
        let out = flow(
            12,
            "2001:db8::20",
            "2001:db8:1::9",
            "2001:db8::20",
            (40000, 443),
        );
        let inbound = flow(
            13,
            "2001:db8:1::9",
            "2001:db8::21",
            "2001:db8:1::9",
            (40000, 22),
        );
        let lan_to_lan = flow(
            14,
            "192.168.1.20",
            "192.168.1.30",
            "192.168.1.20",
            (40000, 445),
        );
        let to_router = flow(
            15,
            "192.168.1.20",
            "192.168.1.1",
            "192.168.1.20",
            (40000, 53),
        );
        let router_out = flow(
            16,
            "203.0.113.2",
            "198.51.100.9",
            "203.0.113.2",
            (40000, 443),
        );
        let mut t = FlowTracker::new(16);
        read(&mut t, &[], &[]);
        let all =
            [out, inbound, lan_to_lan, to_router, router_out].map(|f| with(f, (10, 1), (20, 1)));
        read(&mut t, &[], &all);
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert_eq!(
            totals(&t),
            vec![
                (Direction::Sent, ip("2001:db8::20"), 10),
                (Direction::Sent, ip("2001:db8::21"), 20),
                (Direction::Received, ip("2001:db8::20"), 20),
                (Direction::Received, ip("2001:db8::21"), 10),
            ]
        );
    }

    #[test]
    fn when_full_a_new_flow_is_not_followed_but_counted_whole_when_it_ends() {
        let a = outbound(20, 40000, 443);
        let b = outbound(21, 40001, 443);
        let mut t = FlowTracker::new(1);
        read(&mut t, &[], &[]);
        read(
            &mut t,
            &[with(a, (10, 1), (10, 1)), with(b, (50, 1), (50, 1))],
            &[],
        );
        assert_eq!(t.stats.untracked, 1);
        read(
            &mut t,
            &[with(a, (10, 1), (10, 1))],
            &[with(b, (70, 2), (90, 2))],
        );
        assert_eq!(totals(&t), sent_received(80, 100));
    }

    #[test]
    fn a_flow_gone_without_its_event_is_dropped_and_counted_as_ended_unseen() {
        let f = outbound(22, 40000, 443);
        let mut t = FlowTracker::new(16);
        read(&mut t, &[], &[]);
        read(&mut t, &[with(f, (10, 1), (10, 1))], &[]);
        read(&mut t, &[], &[]);
        assert_eq!((t.stats.ended_unseen, t.stats.tracked), (1, 0));
    }

    #[test]
    fn flows_without_counters_are_counted_for_the_status_and_credit_nothing() {
        let mut f = outbound(23, 40000, 443);
        f.counters_original = None;
        f.counters_reply = None;
        let mut t = FlowTracker::new(16);
        read(&mut t, &[], &[]);
        read(&mut t, &[f], &[f]);
        assert_eq!(t.stats.without_counters, 1);
        assert_eq!(totals(&t), vec![]);
    }

    #[test]
    fn class_growth_waits_for_a_device_the_caller_can_name() {
        let f = outbound(24, 40000, 443);
        let mut t = FlowTracker::new(16);
        read(&mut t, &[], &[]);
        read(&mut t, &[], &[with(f, (10, 1), (20, 1))]);
        assert_eq!(t.take_classes(|_| None::<()>), vec![]);
        let https = ProtocolClasses::builtin().classify(6, 443);
        assert_eq!(
            t.take_classes(|_| Some(1)),
            vec![(1, https, RxTx::new(20, 10))]
        );
        assert_eq!(t.take_classes(|_| Some(1)), vec![]);
    }
}
