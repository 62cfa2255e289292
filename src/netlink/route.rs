//! rtnetlink: link messages (`ifinfomsg` + IFLA_* attributes) and the fixed
//! headers of address and route messages.

use super::message::{NLM_F_DUMP, NLM_F_REQUEST};
use super::{AttrIter, Malformed, Message, MessageBuilder};
use crate::mac::Mac;

pub const RTM_NEWLINK: u16 = 16;
pub const RTM_DELLINK: u16 = 17;
pub const RTM_GETLINK: u16 = 18;
pub const RTM_SETLINK: u16 = 19;
pub const RTM_NEWADDR: u16 = 20;
pub const RTM_NEWROUTE: u16 = 24;
pub const RTM_GETROUTE: u16 = 26;
pub const RTM_NEWNEIGH: u16 = 28;
pub const RTM_GETNEIGH: u16 = 30;
pub const RTM_GETADDR: u16 = 22;
pub const NDA_DST: u16 = 1;
pub const NDA_LLADDR: u16 = 2;

pub const IFLA_ADDRESS: u16 = 1;
pub const IFLA_IFNAME: u16 = 3;
pub const IFLA_MTU: u16 = 4;
pub const IFLA_MASTER: u16 = 10;
pub const IFLA_STATS: u16 = 7;
/// The bridge (or bond) a port is enslaved to, by ifindex.
pub const IFLA_OPERSTATE: u16 = 16;
pub const IFLA_LINKINFO: u16 = 18;
pub const IFLA_NET_NS_PID: u16 = 19;
pub const IFLA_STATS64: u16 = 23;
pub const IFLA_INFO_KIND: u16 = 1;
pub const IFLA_INFO_DATA: u16 = 2;
pub const VETH_INFO_PEER: u16 = 1;

pub const IFA_ADDRESS: u16 = 1;
pub const IFA_LOCAL: u16 = 2;
pub const IFA_FLAGS: u16 = 8;
pub const IFA_F_NODAD: u32 = 0x02;

pub const RTA_DST: u16 = 1;
pub const RTA_OIF: u16 = 4;
pub const RTA_GATEWAY: u16 = 5;
pub const RTA_TABLE: u16 = 15;
/// `ifi_type` of Ethernet-like links (Ethernet, veth, bridges, VLANs).
pub const ARPHRD_ETHER: u16 = 1;

pub const IFF_UP: u32 = 0x1;
const IFINFOMSG_LEN: usize = 16;

/// `struct ifinfomsg`: family, device type, index, flags and the mask of
/// flags to change.
pub fn ifinfomsg(index: u32, flags: u32, change: u32) -> [u8; IFINFOMSG_LEN] {
    let mut h = [0u8; IFINFOMSG_LEN];
    h[4..8].copy_from_slice(&index.to_ne_bytes());
    h[8..12].copy_from_slice(&flags.to_ne_bytes());
    h[12..16].copy_from_slice(&change.to_ne_bytes());
    h
}

/// `struct ifaddrmsg`.
pub fn ifaddrmsg(family: u8, prefix_len: u8, index: u32) -> [u8; 8] {
    let mut h = [0u8; 8];
    h[0] = family;
    h[1] = prefix_len;
    h[4..8].copy_from_slice(&index.to_ne_bytes());
    h
}

/// `struct rtmsg` for a unicast route in the main table.
pub fn rtmsg(family: u8, dst_len: u8) -> [u8; 12] {
    [
        family, dst_len, 0, 0, 254, /* RT_TABLE_MAIN */
        3,   /* RTPROT_BOOT */
        0,   /* RT_SCOPE_UNIVERSE */
        1,   /* RTN_UNICAST */
        0, 0, 0, 0,
    ]
}

/// The request for every link in this network namespace, with statistics.
pub fn link_dump_request() -> MessageBuilder {
    let mut m = MessageBuilder::new(RTM_GETLINK, NLM_F_REQUEST | NLM_F_DUMP);
    m.header(&ifinfomsg(0, 0, 0));
    m
}

/// The first eight counters of `rtnl_link_stats64` / `rtnl_link_stats`,
/// the ones netmeter accounts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LinkStats {
    pub rx_packets: u64,
    pub tx_packets: u64,
    pub rx_bytes: u64,
    pub tx_bytes: u64,
    pub rx_errors: u64,
    pub tx_errors: u64,
    pub rx_dropped: u64,
    pub tx_dropped: u64,
}

impl LinkStats {
    fn from_fields(f: [u64; 8]) -> Self {
        LinkStats {
            rx_packets: f[0],
            tx_packets: f[1],
            rx_bytes: f[2],
            tx_bytes: f[3],
            rx_errors: f[4],
            tx_errors: f[5],
            rx_dropped: f[6],
            tx_dropped: f[7],
        }
    }

    fn parse64(b: &[u8]) -> Result<Self, Malformed> {
        if b.len() < 64 {
            return Err(Malformed(format!("IFLA_STATS64 of {} bytes", b.len())));
        }
        let mut f = [0u64; 8];
        for (i, v) in f.iter_mut().enumerate() {
            *v = u64::from_ne_bytes(b[i * 8..i * 8 + 8].try_into().unwrap());
        }
        Ok(Self::from_fields(f))
    }

    fn parse32(b: &[u8]) -> Result<Self, Malformed> {
        if b.len() < 32 {
            return Err(Malformed(format!("IFLA_STATS of {} bytes", b.len())));
        }
        let mut f = [0u64; 8];
        for (i, v) in f.iter_mut().enumerate() {
            *v = u32::from_ne_bytes(b[i * 4..i * 4 + 4].try_into().unwrap()) as u64;
        }
        Ok(Self::from_fields(f))
    }
}

/// The statistics a link message carried: 64-bit when the kernel gave
/// IFLA_STATS64 (every kernel since 2.6.35), else the 32-bit IFLA_STATS.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LinkStatsWidth {
    Bits64(LinkStats),
    Bits32(LinkStats),
}

/// One RTM_NEWLINK message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LinkMessage {
    pub index: u32,
    /// The link type (`ARPHRD_*`): says which link-layer header it counts.
    pub link_type: u16,
    pub flags: u32,
    pub name: String,
    pub mac: Option<Vec<u8>>,
    pub mtu: Option<u32>,
    pub oper_state: Option<u8>,
    /// The bridge (or bond) this interface is a port of.
    pub master: Option<u32>,
    pub stats: Option<LinkStatsWidth>,
}

impl LinkMessage {
    /// Parses an RTM_NEWLINK message; other types are an error.
    pub fn parse(msg: &Message<'_>) -> Result<LinkMessage, Malformed> {
        if msg.msg_type != RTM_NEWLINK {
            return Err(Malformed(format!(
                "expected RTM_NEWLINK, got type {}",
                msg.msg_type
            )));
        }
        Self::parse_payload(msg.payload)
    }

    /// Parses the bytes after the netlink header.
    pub fn parse_payload(payload: &[u8]) -> Result<LinkMessage, Malformed> {
        let h = payload.get(..IFINFOMSG_LEN).ok_or_else(|| {
            Malformed(format!(
                "link message of {} bytes, shorter than ifinfomsg",
                payload.len()
            ))
        })?;
        let link_type = u16::from_ne_bytes([h[2], h[3]]);
        let index = u32::from_ne_bytes(h[4..8].try_into().unwrap());
        let flags = u32::from_ne_bytes(h[8..12].try_into().unwrap());
        let mut link = LinkMessage {
            index,
            link_type,
            flags,
            name: String::new(),
            mac: None,
            mtu: None,
            oper_state: None,
            master: None,
            stats: None,
        };
        let mut stats32 = None;
        for attr in AttrIter::new(&payload[IFINFOMSG_LEN..]) {
            let attr = attr?;
            match attr.kind {
                IFLA_IFNAME => link.name = attr.str()?.to_string(),
                IFLA_ADDRESS => link.mac = Some(attr.payload.to_vec()),
                IFLA_MTU => link.mtu = Some(attr.u32()?),
                IFLA_MASTER => link.master = Some(attr.u32()?),
                IFLA_OPERSTATE => link.oper_state = Some(attr.u8()?),
                IFLA_STATS64 => {
                    link.stats = Some(LinkStatsWidth::Bits64(LinkStats::parse64(attr.payload)?))
                }
                IFLA_STATS => stats32 = Some(LinkStats::parse32(attr.payload)?),
                _ => {}
            }
        }
        if link.stats.is_none() {
            link.stats = stats32.map(LinkStatsWidth::Bits32);
        }
        if link.name.is_empty() {
            return Err(Malformed(format!("link {index} has no IFLA_IFNAME")));
        }
        Ok(link)
    }
}

/// The request for every address of this namespace.
pub fn address_dump_request() -> MessageBuilder {
    let mut m = MessageBuilder::new(RTM_GETADDR, NLM_F_REQUEST | NLM_F_DUMP);
    m.header(&ifaddrmsg(0, 0, 0));
    m
}

/// One RTM_NEWADDR message: an address and its prefix on an interface.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AddressMessage {
    pub index: u32,
    pub prefix_len: u8,
    pub address: std::net::IpAddr,
}

fn ip_from(bytes: &[u8]) -> Option<std::net::IpAddr> {
    match bytes.len() {
        4 => Some(std::net::IpAddr::from(<[u8; 4]>::try_from(bytes).ok()?)),
        16 => Some(std::net::IpAddr::from(<[u8; 16]>::try_from(bytes).ok()?)),
        _ => None,
    }
}

impl AddressMessage {
    pub fn parse(msg: &Message<'_>) -> Result<AddressMessage, Malformed> {
        let h = msg
            .payload
            .get(..8)
            .ok_or_else(|| Malformed("address message shorter than ifaddrmsg".into()))?;
        let (prefix_len, index) = (h[1], u32::from_ne_bytes(h[4..8].try_into().unwrap()));
        // IFA_LOCAL is the interface's own address on point-to-point links;
        // elsewhere only IFA_ADDRESS is sent.
        let (mut address, mut local) = (None, None);
        for attr in AttrIter::new(&msg.payload[8..]) {
            let attr = attr?;
            match attr.kind {
                IFA_ADDRESS => address = ip_from(attr.payload),
                IFA_LOCAL => local = ip_from(attr.payload),
                _ => {}
            }
        }
        let address = local
            .or(address)
            .ok_or_else(|| Malformed(format!("address on link {index} without IFA_ADDRESS")))?;
        Ok(AddressMessage {
            index,
            prefix_len,
            address,
        })
    }
}

/// The request for every route of every table.
pub fn route_dump_request() -> MessageBuilder {
    let mut m = MessageBuilder::new(RTM_GETROUTE, NLM_F_REQUEST | NLM_F_DUMP);
    m.header(&[0u8; 12]); // struct rtmsg, family AF_UNSPEC
    m
}

/// The parts of a route netmeter uses to find the WAN side.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RouteMessage {
    pub family: u8,
    pub dst_len: u8,
    pub table: u32,
    /// The outgoing interface, when the route has one (not multipath).
    pub oif: Option<u32>,
}

impl RouteMessage {
    pub fn parse(msg: &Message<'_>) -> Result<RouteMessage, Malformed> {
        let h = msg
            .payload
            .get(..12)
            .ok_or_else(|| Malformed("route message shorter than rtmsg".into()))?;
        let mut route = RouteMessage {
            family: h[0],
            dst_len: h[1],
            table: h[4] as u32,
            oif: None,
        };
        for attr in AttrIter::new(&msg.payload[12..]) {
            let attr = attr?;
            match attr.kind {
                RTA_OIF => route.oif = Some(attr.u32()?),
                RTA_TABLE => route.table = attr.u32()?,
                _ => {}
            }
        }
        Ok(route)
    }
}

/// The request for the neighbour (ARP and NDP) tables.
pub fn neighbour_dump_request() -> MessageBuilder {
    let mut m = MessageBuilder::new(RTM_GETNEIGH, NLM_F_REQUEST | NLM_F_DUMP);
    m.header(&[0u8; 12]); // struct ndmsg, family AF_UNSPEC
    m
}

/// One neighbour entry: an IP address and the MAC behind it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NeighbourMessage {
    pub index: u32,
    /// NUD_* state bits (NUD_FAILED = 0x20 means the MAC is not known).
    pub state: u16,
    pub ip: std::net::IpAddr,
    pub mac: Option<Mac>,
}

impl NeighbourMessage {
    /// Parses RTM_NEWNEIGH; entries without an IP (bridge FDB) give None.
    pub fn parse(msg: &Message<'_>) -> Result<Option<NeighbourMessage>, Malformed> {
        let h = msg
            .payload
            .get(..12)
            .ok_or_else(|| Malformed("neighbour message shorter than ndmsg".into()))?;
        let index = u32::from_ne_bytes(h[4..8].try_into().unwrap());
        let state = u16::from_ne_bytes([h[8], h[9]]);
        let (mut ip, mut mac) = (None, None);
        for attr in AttrIter::new(&msg.payload[12..]) {
            let attr = attr?;
            match attr.kind {
                NDA_DST => ip = ip_from(attr.payload),
                NDA_LLADDR => mac = <[u8; 6]>::try_from(attr.payload).ok().map(Mac),
                _ => {}
            }
        }
        Ok(ip.map(|ip| NeighbourMessage {
            index,
            state,
            ip,
            mac,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::netlink::MessageIter;

    fn stats64(values: [u64; 8]) -> Vec<u8> {
        let mut b: Vec<u8> = values.iter().flat_map(|v| v.to_ne_bytes()).collect();
        b.resize(200, 0); // the kernel's struct has more fields after these
        b
    }

    fn link(index: u32, name: &str, extra: impl FnOnce(&mut MessageBuilder)) -> Vec<u8> {
        let mut m = MessageBuilder::new(RTM_NEWLINK, 2);
        m.header(&ifinfomsg(index, IFF_UP, 0));
        m.attr_str(IFLA_IFNAME, name);
        extra(&mut m);
        m.finish(1)
    }

    fn parse(buf: &[u8]) -> Result<LinkMessage, Malformed> {
        LinkMessage::parse(&MessageIter::new(buf).next().unwrap().unwrap())
    }

    #[test]
    fn a_link_with_stats64_yields_name_index_and_all_eight_counters() {
        let buf = link(7, "br-lan", |m| {
            m.attr(IFLA_ADDRESS, &[2, 0, 0, 0, 0, 1]);
            m.attr_u32(IFLA_MTU, 1500);
            m.attr(IFLA_STATS64, &stats64([1, 2, 3, 4, 5, 6, 7, 1 << 40]));
        });
        let l = parse(&buf).unwrap();
        assert_eq!((l.index, l.name.as_str(), l.mtu), (7, "br-lan", Some(1500)));
        assert_eq!(l.mac.as_deref(), Some(&[2, 0, 0, 0, 0, 1][..]));
        let expected = LinkStats {
            rx_packets: 1,
            tx_packets: 2,
            rx_bytes: 3,
            tx_bytes: 4,
            rx_errors: 5,
            tx_errors: 6,
            rx_dropped: 7,
            tx_dropped: 1 << 40,
        };
        assert_eq!(l.stats, Some(LinkStatsWidth::Bits64(expected)));
    }

    #[test]
    fn a_bridge_port_names_its_bridge_by_ifindex() {
        let port = parse(&link(4, "lan0", |m| {
            m.attr_u32(IFLA_MASTER, 3);
        }))
        .unwrap();
        assert_eq!(port.master, Some(3));
        assert_eq!(parse(&link(3, "br-lan", |_| {})).unwrap().master, None);
    }

    #[test]
    fn stats64_wins_over_the_32_bit_stats_whatever_their_order() {
        let mut s32: Vec<u8> = (1u32..=8).flat_map(|v| v.to_ne_bytes()).collect();
        s32.resize(96, 0);
        let buf = link(1, "eth0", |m| {
            m.attr(IFLA_STATS64, &stats64([9; 8]));
            m.attr(IFLA_STATS, &s32);
        });
        assert!(
            matches!(parse(&buf).unwrap().stats, Some(LinkStatsWidth::Bits64(s)) if s.rx_bytes == 9)
        );
        let only32 = link(1, "eth0", |m| {
            m.attr(IFLA_STATS, &s32);
        });
        assert!(
            matches!(parse(&only32).unwrap().stats, Some(LinkStatsWidth::Bits32(s)) if s.rx_bytes == 3)
        );
    }

    #[test]
    fn truncated_stats_or_a_missing_name_are_malformed() {
        let short = link(1, "eth0", |m| {
            m.attr(IFLA_STATS64, &[0; 40]);
        });
        assert!(parse(&short).is_err());
        let mut m = MessageBuilder::new(RTM_NEWLINK, 0);
        m.header(&ifinfomsg(3, 0, 0));
        assert!(parse(&m.finish(1)).is_err());
        assert!(LinkMessage::parse_payload(&[0; 10]).is_err());
    }
}
