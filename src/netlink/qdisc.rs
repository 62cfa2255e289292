//! rtnetlink queueing disciplines: RTM_NEWQDISC (`tcmsg` + TCA_* attributes)
//! with the generic statistics of TCA_STATS2 (basic, queue) and the
//! kind-specific application statistics of fq_codel and cake.

use super::message::{NLM_F_DUMP, NLM_F_REQUEST};
use super::{AttrIter, Malformed, Message, MessageBuilder};
#[cfg(test)]
use serde::Deserialize;
use serde::Serialize;

pub const RTM_NEWQDISC: u16 = 36;
pub const RTM_GETQDISC: u16 = 38;

const TCMSG_LEN: usize = 20;
const TCA_KIND: u16 = 1;
const TCA_STATS2: u16 = 7;
const TCA_STATS_BASIC: u16 = 1;
const TCA_STATS_QUEUE: u16 = 3;
const TCA_STATS_APP: u16 = 4;
/// 64-bit packet count (kernels from 5.5; `gnet_stats_basic` holds 32 bits).
const TCA_STATS_PKT64: u16 = 8;

/// `TC_H_ROOT`: the parent of a root qdisc.
pub const TC_H_ROOT: u32 = 0xffff_ffff;
/// `TC_H_INGRESS`: the parent of the ingress and clsact qdiscs.
pub const TC_H_INGRESS: u32 = 0xffff_fff1;

/// The request for every qdisc of every interface in this namespace.
pub fn qdisc_dump_request() -> MessageBuilder {
    let mut m = MessageBuilder::new(RTM_GETQDISC, NLM_F_REQUEST | NLM_F_DUMP);
    m.header(&[0u8; TCMSG_LEN]);
    m
}

/// fq_codel's qdisc-wide statistics (`struct tc_fq_codel_qd_stats`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[cfg_attr(test, derive(Deserialize))]
pub struct FqCodelStats {
    pub maxpacket: u32,
    pub drop_overlimit: u32,
    pub ecn_mark: u32,
    pub new_flow_count: u32,
    pub new_flows_len: u32,
    pub old_flows_len: u32,
    pub ce_mark: u32,
    pub memory_usage: u32,
    pub drop_overmemory: u32,
}

/// One cake tin (priority class). `max_pkt_len` and `flow_quantum` are
/// named as `tc -j` names them (the kernel's MAX_SKBLEN, FLOW_QUANTUM).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[cfg_attr(test, derive(Deserialize))]
pub struct CakeTin {
    pub threshold_rate: u64,
    pub sent_packets: u32,
    pub sent_bytes: u64,
    pub dropped_packets: u32,
    /// Always 0: no kernel sends TCA_CAKE_TIN_STATS_DROPPED_BYTES64 (cake
    /// reports dropped packets only); kept as the API has it.
    pub dropped_bytes: u64,
    pub ecn_marked_packets: u32,
    pub ack_drops: u32,
    pub backlog_bytes: u32,
    pub target_us: u32,
    pub interval_us: u32,
    pub peak_delay_us: u32,
    pub avg_delay_us: u32,
    pub base_delay_us: u32,
    pub sparse_flows: u32,
    pub bulk_flows: u32,
    pub unresponsive_flows: u32,
    pub way_indirect_hits: u32,
    pub way_misses: u32,
    pub way_collisions: u32,
    pub max_pkt_len: u32,
    pub flow_quantum: u32,
}

/// cake's statistics (nested TCA_CAKE_STATS_* attributes). The packet
/// sizes cake has seen (network layer, and adjusted for its overhead
/// settings) and the average network header offset are named as `tc -j`
/// names them (the kernel's MIN_NETLEN … AVG_NETOFF).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[cfg_attr(test, derive(Deserialize))]
pub struct CakeStats {
    pub capacity_estimate: u64,
    pub memory_limit: u32,
    pub memory_used: u32,
    pub avg_hdr_offset: u32,
    pub min_network_size: u32,
    pub max_network_size: u32,
    pub min_adj_size: u32,
    pub max_adj_size: u32,
    pub tins: Vec<CakeTin>,
}

/// The kind-specific statistics netmeter reads.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AppStats {
    FqCodel(FqCodelStats),
    Cake(CakeStats),
}

/// One RTM_NEWQDISC message.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct QdiscMessage {
    pub index: u32,
    pub handle: u32,
    pub parent: u32,
    pub kind: String,
    pub bytes: u64,
    pub packets: u64,
    pub qlen: u32,
    pub backlog: u32,
    pub drops: u32,
    pub requeues: u32,
    pub overlimits: u32,
    pub app: Option<AppStats>,
}

fn u32_at(b: &[u8], offset: usize) -> Option<u32> {
    Some(u32::from_ne_bytes(
        b.get(offset..offset + 4)?.try_into().ok()?,
    ))
}

impl QdiscMessage {
    /// Parses an RTM_NEWQDISC message; other types are an error.
    pub fn parse(msg: &Message<'_>) -> Result<QdiscMessage, Malformed> {
        if msg.msg_type != RTM_NEWQDISC {
            return Err(Malformed(format!(
                "expected RTM_NEWQDISC, got type {}",
                msg.msg_type
            )));
        }
        Self::parse_payload(msg.payload)
    }

    /// Parses the bytes after the netlink header.
    pub fn parse_payload(payload: &[u8]) -> Result<QdiscMessage, Malformed> {
        let h = payload.get(..TCMSG_LEN).ok_or_else(|| {
            Malformed(format!(
                "qdisc message of {} bytes, shorter than tcmsg",
                payload.len()
            ))
        })?;
        let mut q = QdiscMessage {
            index: u32_at(h, 4).unwrap_or(0),
            handle: u32_at(h, 8).unwrap_or(0),
            parent: u32_at(h, 12).unwrap_or(0),
            ..QdiscMessage::default()
        };
        let mut app = None;
        let mut pkt64 = None;
        for attr in AttrIter::new(&payload[TCMSG_LEN..]) {
            let attr = attr?;
            match attr.kind {
                TCA_KIND => q.kind = attr.str()?.to_string(),
                TCA_STATS2 => {
                    for s in attr.nested() {
                        let s = s?;
                        match s.kind {
                            TCA_STATS_BASIC => {
                                let b = s.payload;
                                if b.len() < 12 {
                                    return Err(Malformed(format!(
                                        "TCA_STATS_BASIC of {} bytes",
                                        b.len()
                                    )));
                                }
                                q.bytes = u64::from_ne_bytes(b[..8].try_into().unwrap());
                                q.packets = u32_at(b, 8).unwrap_or(0) as u64;
                            }
                            TCA_STATS_PKT64 => pkt64 = Some(s.u64()?),
                            TCA_STATS_QUEUE => {
                                let b = s.payload;
                                if b.len() < 20 {
                                    return Err(Malformed(format!(
                                        "TCA_STATS_QUEUE of {} bytes",
                                        b.len()
                                    )));
                                }
                                let f = |i: usize| u32_at(b, i * 4).unwrap_or(0);
                                (q.qlen, q.backlog, q.drops, q.requeues, q.overlimits) =
                                    (f(0), f(1), f(2), f(3), f(4));
                            }
                            TCA_STATS_APP => app = Some(s.payload),
                            _ => {}
                        }
                    }
                }
                _ => {}
            }
        }
        if let Some(p) = pkt64 {
            q.packets = p;
        }
        if q.kind.is_empty() {
            return Err(Malformed(format!(
                "qdisc {:x}: on link {} has no TCA_KIND",
                q.handle >> 16,
                q.index
            )));
        }
        q.app = match (q.kind.as_str(), app) {
            ("fq_codel", Some(b)) => parse_fq_codel(b)?.map(AppStats::FqCodel),
            ("cake", Some(b)) => Some(AppStats::Cake(parse_cake(b)?)),
            _ => None,
        };
        Ok(q)
    }
}

/// `struct tc_fq_codel_xstats`: a type (0 = qdisc, 1 = class) and, for the
/// qdisc, `tc_fq_codel_qd_stats`. Class statistics give None.
fn parse_fq_codel(b: &[u8]) -> Result<Option<FqCodelStats>, Malformed> {
    let kind = u32_at(b, 0).ok_or_else(|| Malformed("fq_codel xstats without a type".into()))?;
    if kind != 0 {
        return Ok(None);
    }
    // The first seven fields are in every kernel since 3.5; the memory
    // fields since 4.12.
    if b.len() < 4 + 7 * 4 {
        return Err(Malformed(format!("fq_codel xstats of {} bytes", b.len())));
    }
    let f = |i: usize| u32_at(b, 4 + i * 4).unwrap_or(0);
    Ok(Some(FqCodelStats {
        maxpacket: f(0),
        drop_overlimit: f(1),
        ecn_mark: f(2),
        new_flow_count: f(3),
        new_flows_len: f(4),
        old_flows_len: f(5),
        ce_mark: f(6),
        memory_usage: f(7),
        drop_overmemory: f(8),
    }))
}

/// `enum { __TCA_CAKE_STATS_INVALID, TCA_CAKE_STATS_PAD, … }` in
/// `linux/pkt_sched.h`: the first real attribute is 2.
mod cake_stats {
    pub const CAPACITY_ESTIMATE64: u16 = 2;
    pub const MEMORY_LIMIT: u16 = 3;
    pub const MEMORY_USED: u16 = 4;
    pub const AVG_NETOFF: u16 = 5;
    pub const MIN_NETLEN: u16 = 6;
    pub const MAX_NETLEN: u16 = 7;
    pub const MIN_ADJLEN: u16 = 8;
    pub const MAX_ADJLEN: u16 = 9;
    pub const TIN_STATS: u16 = 10;
}

/// `enum { __TCA_CAKE_TIN_STATS_INVALID, TCA_CAKE_TIN_STATS_PAD, … }`.
mod cake_tin {
    pub const SENT_PACKETS: u16 = 2;
    pub const SENT_BYTES64: u16 = 3;
    pub const DROPPED_PACKETS: u16 = 4;
    pub const DROPPED_BYTES64: u16 = 5;
    pub const ACKS_DROPPED_PACKETS: u16 = 6;
    pub const ECN_MARKED_PACKETS: u16 = 8;
    pub const BACKLOG_BYTES: u16 = 11;
    pub const THRESHOLD_RATE64: u16 = 12;
    pub const TARGET_US: u16 = 13;
    pub const INTERVAL_US: u16 = 14;
    pub const WAY_INDIRECT_HITS: u16 = 15;
    pub const WAY_MISSES: u16 = 16;
    pub const WAY_COLLISIONS: u16 = 17;
    pub const PEAK_DELAY_US: u16 = 18;
    pub const AVG_DELAY_US: u16 = 19;
    pub const BASE_DELAY_US: u16 = 20;
    pub const SPARSE_FLOWS: u16 = 21;
    pub const BULK_FLOWS: u16 = 22;
    pub const UNRESPONSIVE_FLOWS: u16 = 23;
    pub const MAX_SKBLEN: u16 = 24;
    pub const FLOW_QUANTUM: u16 = 25;
}

fn parse_cake(b: &[u8]) -> Result<CakeStats, Malformed> {
    use cake_stats::*;
    let mut c = CakeStats::default();
    for a in AttrIter::new(b) {
        let a = a?;
        match a.kind {
            CAPACITY_ESTIMATE64 => c.capacity_estimate = a.u64()?,
            MEMORY_LIMIT => c.memory_limit = a.u32()?,
            MEMORY_USED => c.memory_used = a.u32()?,
            AVG_NETOFF => c.avg_hdr_offset = a.u32()?,
            MIN_NETLEN => c.min_network_size = a.u32()?,
            MAX_NETLEN => c.max_network_size = a.u32()?,
            MIN_ADJLEN => c.min_adj_size = a.u32()?,
            MAX_ADJLEN => c.max_adj_size = a.u32()?,
            TIN_STATS => {
                for tin in a.nested() {
                    let tin = tin?;
                    // A tin count comes from the qdisc's configuration (at
                    // most 8, diffserv8): more is not cake.
                    if c.tins.len() == 8 {
                        return Err(Malformed("cake reports more than 8 tins".into()));
                    }
                    c.tins.push(parse_cake_tin(tin.payload)?);
                }
            }
            _ => {}
        }
    }
    Ok(c)
}

fn parse_cake_tin(b: &[u8]) -> Result<CakeTin, Malformed> {
    use cake_tin::*;
    let mut t = CakeTin::default();
    for f in AttrIter::new(b) {
        let f = f?;
        match f.kind {
            SENT_PACKETS => t.sent_packets = f.u32()?,
            SENT_BYTES64 => t.sent_bytes = f.u64()?,
            DROPPED_PACKETS => t.dropped_packets = f.u32()?,
            DROPPED_BYTES64 => t.dropped_bytes = f.u64()?,
            ACKS_DROPPED_PACKETS => t.ack_drops = f.u32()?,
            ECN_MARKED_PACKETS => t.ecn_marked_packets = f.u32()?,
            BACKLOG_BYTES => t.backlog_bytes = f.u32()?,
            THRESHOLD_RATE64 => t.threshold_rate = f.u64()?,
            TARGET_US => t.target_us = f.u32()?,
            INTERVAL_US => t.interval_us = f.u32()?,
            WAY_INDIRECT_HITS => t.way_indirect_hits = f.u32()?,
            WAY_MISSES => t.way_misses = f.u32()?,
            WAY_COLLISIONS => t.way_collisions = f.u32()?,
            PEAK_DELAY_US => t.peak_delay_us = f.u32()?,
            AVG_DELAY_US => t.avg_delay_us = f.u32()?,
            BASE_DELAY_US => t.base_delay_us = f.u32()?,
            SPARSE_FLOWS => t.sparse_flows = f.u32()?,
            BULK_FLOWS => t.bulk_flows = f.u32()?,
            UNRESPONSIVE_FLOWS => t.unresponsive_flows = f.u32()?,
            MAX_SKBLEN => t.max_pkt_len = f.u32()?,
            FLOW_QUANTUM => t.flow_quantum = f.u32()?,
            _ => {}
        }
    }
    Ok(t)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::netlink::MessageIter;

    fn tcmsg(index: u32, handle: u32, parent: u32) -> [u8; TCMSG_LEN] {
        let mut h = [0u8; TCMSG_LEN];
        h[4..8].copy_from_slice(&index.to_ne_bytes());
        h[8..12].copy_from_slice(&handle.to_ne_bytes());
        h[12..16].copy_from_slice(&parent.to_ne_bytes());
        h
    }

    fn qdisc(kind: &str, app: Option<&[u8]>) -> Vec<u8> {
        let mut m = MessageBuilder::new(RTM_NEWQDISC, 2);
        m.header(&tcmsg(3, 0x8001_0000, TC_H_ROOT));
        m.attr_str(TCA_KIND, kind);
        m.nest_start(TCA_STATS2);
        let mut basic = Vec::new();
        basic.extend_from_slice(&123_456u64.to_ne_bytes());
        basic.extend_from_slice(&789u32.to_ne_bytes());
        basic.extend_from_slice(&[0; 4]);
        m.attr(TCA_STATS_BASIC, &basic);
        let queue: Vec<u8> = [5u32, 1500, 42, 2, 99]
            .iter()
            .flat_map(|v| v.to_ne_bytes())
            .collect();
        m.attr(TCA_STATS_QUEUE, &queue);
        if let Some(app) = app {
            m.attr(TCA_STATS_APP, app);
        }
        m.nest_end();
        m.finish(1)
    }

    fn parse(buf: &[u8]) -> Result<QdiscMessage, Malformed> {
        QdiscMessage::parse(&MessageIter::new(buf).next().unwrap().unwrap())
    }

    #[test]
    fn a_qdisc_gives_kind_handle_parent_and_its_basic_and_queue_statistics() {
        let q = parse(&qdisc("pfifo", None)).unwrap();
        assert_eq!((q.index, q.handle, q.parent), (3, 0x8001_0000, TC_H_ROOT));
        assert_eq!(q.kind, "pfifo");
        assert_eq!((q.bytes, q.packets), (123_456, 789));
        assert_eq!(
            (q.qlen, q.backlog, q.drops, q.requeues, q.overlimits),
            (5, 1500, 42, 2, 99)
        );
        assert_eq!(q.app, None);
    }

    #[test]
    fn fq_codel_application_statistics_are_read_for_the_qdisc() {
        let mut app = 0u32.to_ne_bytes().to_vec();
        app.extend((1u32..=9).flat_map(|v| v.to_ne_bytes()));
        let q = parse(&qdisc("fq_codel", Some(&app))).unwrap();
        let Some(AppStats::FqCodel(s)) = q.app else {
            panic!("{:?}", q.app)
        };
        assert_eq!(
            (s.maxpacket, s.drop_overlimit, s.drop_overmemory),
            (1, 2, 9)
        );
        assert!(parse(&qdisc("fq_codel", Some(&[0; 8]))).is_err());
    }

    #[test]
    fn cake_statistics_are_read_per_tin() {
        let mut m = MessageBuilder::new(0, 0);
        m.attr_u32(cake_stats::MEMORY_USED, 4096);
        m.attr_u32(cake_stats::MAX_NETLEN, 1514);
        m.nest_start(cake_stats::TIN_STATS);
        for i in 1..=3u32 {
            m.nest_start(i as u16);
            m.attr_u32(cake_tin::SENT_PACKETS, 10 * i);
            m.attr(cake_tin::SENT_BYTES64, &(1000 * i as u64).to_ne_bytes());
            m.attr_u32(cake_tin::DROPPED_PACKETS, i);
            m.attr_u32(cake_tin::AVG_DELAY_US, 500);
            m.attr_u32(cake_tin::FLOW_QUANTUM, 300);
            m.nest_end();
        }
        m.nest_end();
        let bytes = m.finish(0);
        let q = parse(&qdisc("cake", Some(&bytes[16..]))).unwrap();
        let Some(AppStats::Cake(c)) = q.app else {
            panic!("{:?}", q.app)
        };
        assert_eq!((c.memory_used, c.max_network_size), (4096, 1514));
        assert_eq!(c.tins.len(), 3);
        assert_eq!(c.tins[0].flow_quantum, 300);
        assert_eq!(
            (
                c.tins[2].sent_packets,
                c.tins[2].sent_bytes,
                c.tins[2].dropped_packets,
                c.tins[2].avg_delay_us
            ),
            (30, 3000, 3, 500)
        );
    }

    #[test]
    fn a_real_dump_of_fq_codel_under_htb_and_cake_reads_as_tc_printed_it() {
        // tests/vm's queues scenario on Debian's 6.1.0-57-amd64 (the fuzz
        // seed): htb with an fq_codel leaf on wan, cake on lan0, after
        // traffic that dropped; the figures are what `tc -s -j qdisc`
        // (iproute2 6.1.0) printed for the same state.
        let dump = include_bytes!("../../fuzz/seeds/rtnetlink_qdisc/fq_codel_cake_dump.bin");
        let qdiscs: Vec<QdiscMessage> = MessageIter::new(dump)
            .map(|m| m.unwrap())
            .filter(|m| m.msg_type == RTM_NEWQDISC)
            .map(|m| QdiscMessage::parse(&m).unwrap())
            .collect();
        let kinds: Vec<&str> = qdiscs.iter().map(|q| q.kind.as_str()).collect();
        assert_eq!(kinds, ["noqueue", "htb", "fq_codel", "cake"]);
        let fq = &qdiscs[2];
        assert_eq!((fq.handle, fq.parent), (0x0010_0000, 0x0001_0010));
        assert_eq!((fq.bytes, fq.packets, fq.drops), (206_142, 260, 179));
        assert_eq!(
            fq.app,
            Some(AppStats::FqCodel(FqCodelStats {
                maxpacket: 1514,
                drop_overlimit: 176,
                ecn_mark: 15,
                new_flow_count: 9,
                new_flows_len: 0,
                old_flows_len: 1,
                ce_mark: 0,
                memory_usage: 0,
                drop_overmemory: 0,
            }))
        );
        let cake = &qdiscs[3];
        assert_eq!((cake.handle, cake.parent), (0x0020_0000, TC_H_ROOT));
        assert_eq!(
            (cake.bytes, cake.packets, cake.drops, cake.overlimits),
            (197_451, 223, 188, 587)
        );
        let Some(AppStats::Cake(c)) = &cake.app else {
            panic!("{:?}", cake.app)
        };
        assert_eq!(
            (c.capacity_estimate, c.memory_limit, c.memory_used),
            (125_000, 32_768, 35_464)
        );
        assert_eq!(
            (
                c.avg_hdr_offset,
                c.min_network_size,
                c.max_network_size,
                c.min_adj_size,
                c.max_adj_size
            ),
            (11, 42, 1514, 42, 1514)
        );
        assert_eq!(c.tins.len(), 3, "diffserv3");
        assert_eq!(
            c.tins[1],
            CakeTin {
                threshold_rate: 125_000,
                sent_packets: 410,
                sent_bytes: 431_993,
                dropped_packets: 188,
                dropped_bytes: 0, // the kernel never sends it
                ecn_marked_packets: 7,
                ack_drops: 0,
                backlog_bytes: 0,
                target_us: 18_168,
                interval_us: 113_168,
                peak_delay_us: 100_331,
                avg_delay_us: 22_233,
                base_delay_us: 15_637,
                sparse_flows: 0,
                bulk_flows: 1,
                unresponsive_flows: 1,
                way_indirect_hits: 0,
                way_misses: 4,
                way_collisions: 0,
                max_pkt_len: 1514,
                flow_quantum: 300,
            }
        );
        assert_eq!(
            (c.tins[0].threshold_rate, c.tins[0].target_us),
            (7812, 290_706)
        );
        assert_eq!(
            (
                c.tins[2].sent_packets,
                c.tins[2].sent_bytes,
                c.tins[2].max_pkt_len
            ),
            (1, 42, 42)
        );
    }

    #[test]
    fn a_real_dump_of_htb_and_a_pfifo_leaf_parses() {
        // `tc qdisc add dev v0 root handle 1: htb default 10; tc class add
        // … classid 1:10 htb rate 1mbit; tc qdisc add … parent 1:10 handle
        // 10: pfifo limit 5`, dumped on Linux 6.18 (the fuzz seed).
        let dump = include_bytes!("../../fuzz/seeds/rtnetlink_qdisc/htb_pfifo_dump.bin");
        let qdiscs: Vec<QdiscMessage> = MessageIter::new(dump)
            .map(|m| m.unwrap())
            .filter(|m| m.msg_type == RTM_NEWQDISC)
            .map(|m| QdiscMessage::parse(&m).unwrap())
            .collect();
        let htb = qdiscs.iter().find(|q| q.kind == "htb").unwrap();
        let pfifo = qdiscs.iter().find(|q| q.kind == "pfifo").unwrap();
        assert_eq!((htb.handle, htb.parent), (0x0001_0000, TC_H_ROOT));
        assert_eq!((pfifo.handle, pfifo.parent), (0x0010_0000, 0x0001_0010));
    }

    #[test]
    fn a_short_header_or_truncated_statistics_are_malformed() {
        assert!(QdiscMessage::parse_payload(&[0; 8]).is_err());
        let mut m = MessageBuilder::new(RTM_NEWQDISC, 0);
        m.header(&tcmsg(1, 0, TC_H_ROOT));
        m.attr_str(TCA_KIND, "htb");
        m.nest_start(TCA_STATS2);
        m.attr(TCA_STATS_QUEUE, &[0; 12]);
        m.nest_end();
        assert!(parse(&m.finish(1)).is_err());
        let mut m = MessageBuilder::new(RTM_NEWQDISC, 0);
        m.header(&tcmsg(1, 0, TC_H_ROOT));
        assert!(parse(&m.finish(1)).is_err(), "no kind");
    }
}
