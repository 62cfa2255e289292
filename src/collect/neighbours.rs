//! IP → MAC for traffic counted by IP alone (the forward placement): from
//! the kernel's neighbour tables and from what devices were seen sending,
//! remembered so a device keeps its MAC when its neighbour entry ages out.

use crate::mac::Mac;
use crate::netlink::route::{NeighbourMessage, neighbour_dump_request};
use crate::netlink::{NetlinkError, NetlinkSocket};
use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;

/// NUD_INCOMPLETE | NUD_FAILED: no usable MAC behind the entry.
const UNRESOLVED: u16 = 0x01 | 0x20;

pub struct NeighbourMacs {
    known: HashMap<IpAddr, Mac>,
    /// Learning order, oldest first: the one dropped when full.
    order: VecDeque<IpAddr>,
    limit: usize,
}

impl NeighbourMacs {
    pub fn new(limit: usize) -> Self {
        NeighbourMacs {
            known: HashMap::new(),
            order: VecDeque::new(),
            limit: limit.max(1),
        }
    }

    pub fn learn(&mut self, ip: IpAddr, mac: Mac) {
        if self.known.insert(ip, mac).is_none() {
            self.order.push_back(ip);
            while self.order.len() > self.limit {
                if let Some(old) = self.order.pop_front() {
                    self.known.remove(&old);
                }
            }
        }
    }

    /// Learns every resolved neighbour the kernel knows.
    pub fn refresh(&mut self, route: &mut NetlinkSocket) -> Result<(), NetlinkError> {
        let mut found = Vec::new();
        route.dump(
            neighbour_dump_request(),
            "reading the neighbour tables",
            |msg| {
                if let Some(n) = NeighbourMessage::parse(msg)?
                    && n.state & UNRESOLVED == 0
                    && let Some(mac) = n.mac
                {
                    found.push((n.ip, mac));
                }
                Ok(())
            },
        )?;
        for (ip, mac) in found {
            self.learn(ip, mac);
        }
        Ok(())
    }

    pub fn mac(&self, ip: &IpAddr) -> Option<Mac> {
        self.known.get(ip).copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_oldest_mapping_goes_when_the_limit_is_reached_and_updates_keep_their_place() {
        let mut n = NeighbourMacs::new(2);
        let ip = |i: u8| IpAddr::from([10, 0, 0, i]);
        n.learn(ip(1), Mac([1; 6]));
        n.learn(ip(2), Mac([2; 6]));
        n.learn(ip(1), Mac([9; 6]));
        assert_eq!(n.mac(&ip(1)), Some(Mac([9; 6])));
        n.learn(ip(3), Mac([3; 6]));
        assert_eq!(
            (n.mac(&ip(1)), n.mac(&ip(2)), n.mac(&ip(3))),
            (None, Some(Mac([2; 6])), Some(Mac([3; 6])))
        );
    }

    #[test]
    fn the_live_neighbour_dump_parses() {
        // Reading needs no privilege; an empty table is fine.
        let mut sock = NetlinkSocket::open(crate::netlink::socket::NETLINK_ROUTE).unwrap();
        NeighbourMacs::new(16).refresh(&mut sock).unwrap();
    }
}
