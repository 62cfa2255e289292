//! Per-interface counter samples from rtnetlink.

use crate::account::{CounterWidth, LinkCounters, LinkSample};

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
