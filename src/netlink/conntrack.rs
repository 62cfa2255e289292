//! ctnetlink (`NFNL_SUBSYS_CTNETLINK`): dumps of the conntrack table and
//! its destroy events, parsed into plain flows with their two tuples and
//! per-direction counters. What a flow means for a device is decided in
//! `account::flows`, not here.

use super::attr::AttrIter;
use super::message::{Message, NLM_F_DUMP, NLM_F_REQUEST};
use super::{Attr, Malformed, MessageBuilder};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

const NFNL_SUBSYS_CTNETLINK: u16 = 1;
const IPCTNL_MSG_CT_NEW: u16 = 0;
const IPCTNL_MSG_CT_GET: u16 = 1;
const IPCTNL_MSG_CT_DELETE: u16 = 2;

/// The multicast group of destroy events (`NFNLGRP_CONNTRACK_DESTROY`).
pub const GROUP_DESTROY: u32 = 3;

const CTA_TUPLE_ORIG: u16 = 1;
const CTA_TUPLE_REPLY: u16 = 2;
const CTA_STATUS: u16 = 3;
const CTA_COUNTERS_ORIG: u16 = 9;
const CTA_COUNTERS_REPLY: u16 = 10;
const CTA_ID: u16 = 12;

const CTA_TUPLE_IP: u16 = 1;
const CTA_TUPLE_PROTO: u16 = 2;

const CTA_IP_V4_SRC: u16 = 1;
const CTA_IP_V4_DST: u16 = 2;
const CTA_IP_V6_SRC: u16 = 3;
const CTA_IP_V6_DST: u16 = 4;

const CTA_PROTO_NUM: u16 = 1;
const CTA_PROTO_SRC_PORT: u16 = 2;
const CTA_PROTO_DST_PORT: u16 = 3;

const CTA_COUNTERS_PACKETS: u16 = 1;
const CTA_COUNTERS_BYTES: u16 = 2;
const CTA_COUNTERS32_PACKETS: u16 = 3;
const CTA_COUNTERS32_BYTES: u16 = 4;

/// `IPS_OFFLOAD`: a flowtable forwards this flow.
pub const STATUS_OFFLOAD: u32 = 1 << 14;
/// `IPS_HW_OFFLOAD`: the hardware forwards it.
pub const STATUS_HW_OFFLOAD: u32 = 1 << 15;

/// One direction of a flow as conntrack keys it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Tuple {
    pub src: IpAddr,
    pub dst: IpAddr,
    /// The L4 protocol number (6 TCP, 17 UDP, 1 ICMP, 58 ICMPv6, …).
    pub protocol: u8,
    /// Ports for TCP, UDP, SCTP, DCCP, UDP-Lite; 0 for the others.
    pub src_port: u16,
    pub dst_port: u16,
}

/// What conntrack counted in one direction since the flow began.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    pub bytes: u64,
    pub packets: u64,
}

/// One conntrack entry. The counters are absent when the kernel keeps
/// none (`nf_conntrack_acct` was off when the flow began).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Flow {
    pub id: u32,
    pub original: Tuple,
    pub reply: Tuple,
    pub status: u32,
    pub counters_original: Option<Counters>,
    pub counters_reply: Option<Counters>,
}

/// A flow as a dump lists it, or as its destroy event ends it (with its
/// final counters).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FlowMessage {
    Live(Flow),
    Destroyed(Flow),
}

/// The request for every flow of every family (`AF_UNSPEC`).
pub fn dump_request() -> MessageBuilder {
    let mut m = MessageBuilder::new(
        (NFNL_SUBSYS_CTNETLINK << 8) | IPCTNL_MSG_CT_GET,
        NLM_F_REQUEST | NLM_F_DUMP,
    );
    m.header(&[0, 0, 0, 0]); // nfgenmsg: family, version 0, res_id 0
    m
}

/// A dump reply or an event. Other ctnetlink messages (expectations, stats)
/// give `None`.
pub fn parse(msg: &Message<'_>) -> Result<Option<FlowMessage>, Malformed> {
    if msg.msg_type >> 8 != NFNL_SUBSYS_CTNETLINK {
        return Ok(None);
    }
    let destroyed = match msg.msg_type & 0xff {
        IPCTNL_MSG_CT_NEW => false,
        IPCTNL_MSG_CT_DELETE => true,
        _ => return Ok(None),
    };
    let attrs = msg
        .payload
        .get(4..)
        .ok_or_else(|| Malformed("conntrack message shorter than nfgenmsg".into()))?;
    let (mut id, mut status) = (None, 0);
    let (mut original, mut reply) = (None, None);
    let (mut counters_original, mut counters_reply) = (None, None);
    for attr in AttrIter::new(attrs) {
        let attr = attr?;
        match attr.kind {
            CTA_TUPLE_ORIG => original = Some(tuple(&attr)?),
            CTA_TUPLE_REPLY => reply = Some(tuple(&attr)?),
            CTA_STATUS => status = attr.be32()?,
            CTA_COUNTERS_ORIG => counters_original = Some(counters(&attr)?),
            CTA_COUNTERS_REPLY => counters_reply = Some(counters(&attr)?),
            CTA_ID => id = Some(attr.be32()?),
            _ => {}
        }
    }
    let missing = |what: &str| Malformed(format!("conntrack entry without {what}"));
    let flow = Flow {
        id: id.ok_or_else(|| missing("CTA_ID"))?,
        original: original.ok_or_else(|| missing("CTA_TUPLE_ORIG"))?,
        reply: reply.ok_or_else(|| missing("CTA_TUPLE_REPLY"))?,
        status,
        counters_original,
        counters_reply,
    };
    Ok(Some(if destroyed {
        FlowMessage::Destroyed(flow)
    } else {
        FlowMessage::Live(flow)
    }))
}

fn tuple(attr: &Attr<'_>) -> Result<Tuple, Malformed> {
    let (mut src, mut dst) = (None, None);
    let (mut protocol, mut src_port, mut dst_port) = (None, 0, 0);
    for part in attr.nested() {
        let part = part?;
        match part.kind {
            CTA_TUPLE_IP => {
                for ip in part.nested() {
                    let ip = ip?;
                    match ip.kind {
                        CTA_IP_V4_SRC => src = Some(v4(&ip)?),
                        CTA_IP_V4_DST => dst = Some(v4(&ip)?),
                        CTA_IP_V6_SRC => src = Some(v6(&ip)?),
                        CTA_IP_V6_DST => dst = Some(v6(&ip)?),
                        _ => {}
                    }
                }
            }
            CTA_TUPLE_PROTO => {
                for p in part.nested() {
                    let p = p?;
                    match p.kind {
                        CTA_PROTO_NUM => protocol = Some(p.u8()?),
                        CTA_PROTO_SRC_PORT => src_port = be16(&p)?,
                        CTA_PROTO_DST_PORT => dst_port = be16(&p)?,
                        _ => {}
                    }
                }
            }
            _ => {}
        }
    }
    let missing = |what: &str| Malformed(format!("conntrack tuple without {what}"));
    let (src, dst) = (
        src.ok_or_else(|| missing("a source address"))?,
        dst.ok_or_else(|| missing("a destination address"))?,
    );
    if src.is_ipv4() != dst.is_ipv4() {
        return Err(Malformed(
            "conntrack tuple mixes IPv4 and IPv6 addresses".into(),
        ));
    }
    Ok(Tuple {
        src,
        dst,
        protocol: protocol.ok_or_else(|| missing("a protocol number"))?,
        src_port,
        dst_port,
    })
}

fn counters(attr: &Attr<'_>) -> Result<Counters, Malformed> {
    let mut c = Counters::default();
    for part in attr.nested() {
        let part = part?;
        match part.kind {
            CTA_COUNTERS_PACKETS => c.packets = part.be64()?,
            CTA_COUNTERS_BYTES => c.bytes = part.be64()?,
            CTA_COUNTERS32_PACKETS => c.packets = part.be32()?.into(),
            CTA_COUNTERS32_BYTES => c.bytes = part.be32()?.into(),
            _ => {}
        }
    }
    Ok(c)
}

fn v4(attr: &Attr<'_>) -> Result<IpAddr, Malformed> {
    let b: [u8; 4] = exact(attr, "an IPv4 address")?;
    Ok(IpAddr::V4(Ipv4Addr::from(b)))
}

fn v6(attr: &Attr<'_>) -> Result<IpAddr, Malformed> {
    let b: [u8; 16] = exact(attr, "an IPv6 address")?;
    Ok(IpAddr::V6(Ipv6Addr::from(b)))
}

fn be16(attr: &Attr<'_>) -> Result<u16, Malformed> {
    Ok(u16::from_be_bytes(exact(attr, "a port")?))
}

fn exact<const N: usize>(attr: &Attr<'_>, what: &str) -> Result<[u8; N], Malformed> {
    attr.payload.try_into().map_err(|_| {
        Malformed(format!(
            "conntrack attribute {} holds {} bytes, {what} needs {N}",
            attr.kind,
            attr.payload.len()
        ))
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::netlink::MessageIter;

    /// A ctnetlink message as the kernel writes one, for tests here and in
    /// the accounting layer.
    pub(crate) fn encode(flow: &Flow, destroyed: bool) -> Vec<u8> {
        let cmd = if destroyed {
            IPCTNL_MSG_CT_DELETE
        } else {
            IPCTNL_MSG_CT_NEW
        };
        let mut m = MessageBuilder::new((NFNL_SUBSYS_CTNETLINK << 8) | cmd, 0);
        let family = if flow.original.src.is_ipv4() { 2 } else { 10 };
        m.header(&[family, 0, 0, 0]);
        for (kind, t) in [
            (CTA_TUPLE_ORIG, &flow.original),
            (CTA_TUPLE_REPLY, &flow.reply),
        ] {
            m.nest_start(kind | crate::netlink::attr::NLA_F_NESTED);
            m.nest_start(CTA_TUPLE_IP | crate::netlink::attr::NLA_F_NESTED);
            match (t.src, t.dst) {
                (IpAddr::V4(s), IpAddr::V4(d)) => {
                    m.attr(CTA_IP_V4_SRC, &s.octets());
                    m.attr(CTA_IP_V4_DST, &d.octets());
                }
                (IpAddr::V6(s), IpAddr::V6(d)) => {
                    m.attr(CTA_IP_V6_SRC, &s.octets());
                    m.attr(CTA_IP_V6_DST, &d.octets());
                }
                _ => unreachable!("test flows are of one family"),
            }
            m.nest_end();
            m.nest_start(CTA_TUPLE_PROTO | crate::netlink::attr::NLA_F_NESTED);
            m.attr_u8(CTA_PROTO_NUM, t.protocol);
            m.attr(CTA_PROTO_SRC_PORT, &t.src_port.to_be_bytes());
            m.attr(CTA_PROTO_DST_PORT, &t.dst_port.to_be_bytes());
            m.nest_end();
            m.nest_end();
        }
        m.attr_be32(CTA_STATUS, flow.status);
        for (kind, c) in [
            (CTA_COUNTERS_ORIG, flow.counters_original),
            (CTA_COUNTERS_REPLY, flow.counters_reply),
        ] {
            if let Some(c) = c {
                m.nest_start(kind | crate::netlink::attr::NLA_F_NESTED);
                m.attr_be64(CTA_COUNTERS_PACKETS, c.packets);
                m.attr_be64(CTA_COUNTERS_BYTES, c.bytes);
                m.nest_end();
            }
        }
        m.attr_be32(CTA_ID, flow.id);
        m.finish(1)
    }

    pub(crate) fn flow(id: u32, src: &str, dst: &str, reply_dst: &str, ports: (u16, u16)) -> Flow {
        let (src, dst, reply_dst): (IpAddr, IpAddr, IpAddr) = (
            src.parse().unwrap(),
            dst.parse().unwrap(),
            reply_dst.parse().unwrap(),
        );
        Flow {
            id,
            original: Tuple {
                src,
                dst,
                protocol: 6,
                src_port: ports.0,
                dst_port: ports.1,
            },
            reply: Tuple {
                src: dst,
                dst: reply_dst,
                protocol: 6,
                src_port: ports.1,
                dst_port: ports.0,
            },
            status: 0,
            counters_original: Some(Counters {
                bytes: 1500,
                packets: 3,
            }),
            counters_reply: Some(Counters {
                bytes: 90_000,
                packets: 62,
            }),
        }
    }

    fn parse_one(bytes: &[u8]) -> Result<Option<FlowMessage>, Malformed> {
        let msg = MessageIter::new(bytes).next().unwrap().unwrap();
        parse(&msg)
    }

    #[test]
    fn a_natted_ipv4_flow_and_its_destroy_event_read_back_whole() {
        let f = flow(
            7,
            "192.168.1.20",
            "198.51.100.9",
            "203.0.113.2",
            (40000, 443),
        );
        assert_eq!(
            parse_one(&encode(&f, false)),
            Ok(Some(FlowMessage::Live(f)))
        );
        assert_eq!(
            parse_one(&encode(&f, true)),
            Ok(Some(FlowMessage::Destroyed(f)))
        );
    }

    #[test]
    fn an_ipv6_flow_without_accounting_has_no_counters() {
        let mut f = flow(
            9,
            "2001:db8::20",
            "2001:db8:1::9",
            "2001:db8::20",
            (5353, 53),
        );
        f.original.protocol = 17;
        f.reply.protocol = 17;
        f.counters_original = None;
        f.counters_reply = None;
        assert_eq!(
            parse_one(&encode(&f, false)),
            Ok(Some(FlowMessage::Live(f)))
        );
    }

    #[test]
    fn the_dump_request_asks_ctnetlink_for_every_family() {
        let bytes = dump_request().finish(5);
        let msg = MessageIter::new(&bytes).next().unwrap().unwrap();
        assert_eq!(msg.msg_type, (1 << 8) | 1);
        assert_eq!(msg.flags, NLM_F_REQUEST | NLM_F_DUMP);
        assert_eq!(msg.payload, &[0, 0, 0, 0]);
    }

    #[test]
    fn truncated_and_foreign_messages_are_errors_or_ignored_never_panics() {
        let f = flow(
            7,
            "192.168.1.20",
            "198.51.100.9",
            "203.0.113.2",
            (40000, 443),
        );
        let bytes = encode(&f, false);
        for cut in 16..bytes.len() {
            let mut b = bytes[..cut].to_vec();
            b[0..4].copy_from_slice(&(cut as u32).to_ne_bytes());
            if let Some(Ok(msg)) = MessageIter::new(&b).next() {
                let _ = parse(&msg); // an error or a flow, never a panic
            }
        }
        let mut other = bytes.clone();
        other[4] = 0; // message type 0x100 | 0 → 0x0000: not ctnetlink
        other[5] = 0;
        assert_eq!(parse_one(&other), Ok(None));
    }

    #[test]
    fn a_tuple_without_addresses_is_malformed() {
        let mut m = MessageBuilder::new((NFNL_SUBSYS_CTNETLINK << 8) | IPCTNL_MSG_CT_NEW, 0);
        m.header(&[2, 0, 0, 0]);
        m.nest_start(CTA_TUPLE_ORIG);
        m.nest_end();
        m.attr_be32(CTA_ID, 1);
        let err = parse_one(&m.finish(1)).unwrap_err();
        assert!(err.0.contains("source address"), "{err}");
    }
}
