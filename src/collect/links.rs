//! Per-interface counter samples from rtnetlink.

/// How many bits a raw counter has before it wraps to zero.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum CounterWidth {
    Bits32,
    Bits64,
}

impl CounterWidth {
    /// The number of distinct values: a counter of this width wraps at `modulus()`.
    pub fn modulus(self) -> u128 {
        match self {
            CounterWidth::Bits32 => 1u128 << 32,
            CounterWidth::Bits64 => 1u128 << 64,
        }
    }
}

/// The kernel's counters of one interface as read at one moment.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LinkCounters {
    pub rx_bytes: u64,
    pub tx_bytes: u64,
    pub rx_packets: u64,
    pub tx_packets: u64,
    pub rx_errors: u64,
    pub tx_errors: u64,
    pub rx_dropped: u64,
    pub tx_dropped: u64,
}

/// One interface as seen in one link dump.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LinkSample {
    /// The kernel's interface index: stays with the interface across renames,
    /// changes when an interface is deleted and created again.
    pub ifindex: u32,
    pub name: String,
    /// 64 when the kernel gave IFLA_STATS64, 32 for the old IFLA_STATS.
    pub width: CounterWidth,
    /// Link-layer header bytes each packet's count includes (14 on
    /// Ethernet-like links, 0 on PPP, WireGuard, tunnels): IP bytes are
    /// bytes − this × packets.
    pub header_bytes: u8,
    /// The bridge this interface is a port of (its ifindex).
    pub master: Option<u32>,
    pub counters: LinkCounters,
}

impl From<crate::netlink::route::LinkStats> for LinkCounters {
    fn from(s: crate::netlink::route::LinkStats) -> Self {
        LinkCounters {
            rx_bytes: s.rx_bytes,
            tx_bytes: s.tx_bytes,
            rx_packets: s.rx_packets,
            tx_packets: s.tx_packets,
            rx_errors: s.rx_errors,
            tx_errors: s.tx_errors,
            rx_dropped: s.rx_dropped,
            tx_dropped: s.tx_dropped,
        }
    }
}

/// Reads every interface of this network namespace with its counters.
/// A dump that raced with a link change is read again (at most 3 times).
pub fn read_links(
    socket: &mut crate::netlink::NetlinkSocket,
) -> Result<Vec<LinkSample>, crate::netlink::NetlinkError> {
    use crate::netlink::NetlinkError;
    use crate::netlink::route::{ARPHRD_ETHER, LinkMessage, LinkStatsWidth, link_dump_request};
    let mut attempt = 0;
    loop {
        let mut samples = Vec::new();
        let result = socket.dump(link_dump_request(), "reading interface counters", |msg| {
            let link = LinkMessage::parse(msg)?;
            let (width, counters) = match link.stats {
                Some(LinkStatsWidth::Bits64(s)) => (CounterWidth::Bits64, s.into()),
                Some(LinkStatsWidth::Bits32(s)) => (CounterWidth::Bits32, s.into()),
                None => return Ok(()), // a link without statistics has nothing to count
            };
            samples.push(LinkSample {
                ifindex: link.index,
                name: link.name,
                width,
                header_bytes: if link.link_type == ARPHRD_ETHER {
                    14
                } else {
                    0
                },
                master: link.master,
                counters,
            });
            Ok(())
        });
        match result {
            Ok(()) => return Ok(samples),
            Err(NetlinkError::Interrupted { .. }) if attempt < 2 => attempt += 1,
            Err(e) => return Err(e),
        }
    }
}

/// The interfaces of the default routes (IPv4 and IPv6, main table): the
/// WAN side, as far as this router is concerned.
pub fn wan_interfaces(
    socket: &mut crate::netlink::NetlinkSocket,
    links: &[LinkSample],
) -> Result<Vec<String>, crate::netlink::NetlinkError> {
    use crate::netlink::route::{RouteMessage, route_dump_request};
    let mut names = Vec::new();
    socket.dump(route_dump_request(), "reading the default routes", |msg| {
        let route = RouteMessage::parse(msg)?;
        if route.dst_len == 0
            && route.table == 254
            && let Some(link) = route
                .oif
                .and_then(|oif| links.iter().find(|l| l.ifindex == oif))
            && !names.contains(&link.name)
        {
            names.push(link.name.clone());
        }
        Ok(())
    })?;
    Ok(names)
}

/// The kernel's boot id: when it changes, every kernel counter restarted at zero.
pub fn read_boot_id() -> std::io::Result<String> {
    Ok(std::fs::read_to_string("/proc/sys/kernel/random/boot_id")?
        .trim()
        .to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::netlink::{NetlinkSocket, socket::NETLINK_ROUTE};

    #[test]
    fn the_live_link_dump_includes_loopback_with_64_bit_counters() {
        // Every network namespace has `lo`; reading it needs no privilege.
        let mut sock = NetlinkSocket::open(NETLINK_ROUTE).unwrap();
        let links = read_links(&mut sock).unwrap();
        let lo = links
            .iter()
            .find(|l| l.name == "lo")
            .expect("lo in the dump");
        assert_eq!(lo.ifindex, 1);
        assert_eq!(lo.width, CounterWidth::Bits64);
        assert!(!read_boot_id().unwrap().is_empty());
    }
}
