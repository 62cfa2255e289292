//! Queue statistics, read on request: every qdisc of this namespace
//! (rtnetlink), byte queue limits per transmit queue (sysfs) and TCP small
//! queues' limit (procfs). Nothing here is in the refresh loop.

use crate::netlink::qdisc::{QdiscMessage, qdisc_dump_request};
use crate::netlink::{NetlinkError, NetlinkSocket};
use std::path::Path;

/// Most transmit queues read per interface: a 64-queue NIC is the largest
/// a router has; the rest are left out.
pub const MAX_TX_QUEUES: usize = 64;
/// Most qdiscs kept from one dump (htb trees with hundreds of classes are
/// classes, not qdiscs; this bounds a pathological one).
pub const MAX_QDISCS: usize = 4096;

/// Every qdisc, in the kernel's order.
pub fn read_qdiscs(socket: &mut NetlinkSocket) -> Result<Vec<QdiscMessage>, NetlinkError> {
    let mut all = Vec::new();
    socket.dump(qdisc_dump_request(), "reading qdisc statistics", |msg| {
        if all.len() < MAX_QDISCS {
            all.push(QdiscMessage::parse(msg)?);
        }
        Ok(())
    })?;
    Ok(all)
}

/// One transmit queue's byte queue limit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Bql {
    pub queue: String,
    pub limit: u64,
    pub inflight: u64,
}

/// The byte queue limits of interface `name` under `sys` (`/sys` normally).
/// sysfs shows the network namespace it was mounted in, which may not be
/// the caller's: unless its `ifindex` is `ifindex`, nothing is read.
pub fn read_bql(sys: &Path, name: &str, ifindex: u32) -> Vec<Bql> {
    let dev = sys.join("class/net").join(name);
    let read = |p: &Path| -> Option<u64> {
        let mut text = String::new();
        use std::io::Read;
        std::fs::File::open(p)
            .ok()?
            .take(64)
            .read_to_string(&mut text)
            .ok()?;
        text.trim().parse().ok()
    };
    if name.contains('/')
        || name.starts_with('.')
        || read(&dev.join("ifindex")) != Some(ifindex as u64)
    {
        return Vec::new();
    }
    let Ok(entries) = std::fs::read_dir(dev.join("queues")) else {
        return Vec::new();
    };
    let mut queues: Vec<String> = entries
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.starts_with("tx-"))
        .collect();
    queues.sort_by_key(|q| q[3..].parse::<u32>().unwrap_or(u32::MAX));
    queues.truncate(MAX_TX_QUEUES);
    queues
        .into_iter()
        .filter_map(|q| {
            let dir = dev.join("queues").join(&q).join("byte_queue_limits");
            Some(Bql {
                limit: read(&dir.join("limit"))?,
                inflight: read(&dir.join("inflight"))?,
                queue: q,
            })
        })
        .collect()
}

/// `net.ipv4.tcp_limit_output_bytes` of this namespace (TCP small queues:
/// the most a TCP socket keeps queued below it in qdiscs and the device).
pub fn tcp_limit_output_bytes() -> Option<u64> {
    std::fs::read_to_string("/proc/sys/net/ipv4/tcp_limit_output_bytes")
        .ok()?
        .trim()
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree(dir: &Path, ifindex: &str, queues: &[(&str, &str, &str)]) {
        let dev = dir.join("class/net/eth0");
        std::fs::create_dir_all(&dev).unwrap();
        std::fs::write(dev.join("ifindex"), ifindex).unwrap();
        for (q, limit, inflight) in queues {
            let bql = dev.join("queues").join(q).join("byte_queue_limits");
            std::fs::create_dir_all(&bql).unwrap();
            std::fs::write(bql.join("limit"), limit).unwrap();
            std::fs::write(bql.join("inflight"), inflight).unwrap();
        }
        std::fs::create_dir_all(dev.join("queues/rx-0")).unwrap();
    }

    fn scratch(name: &str) -> std::path::PathBuf {
        let d = std::env::temp_dir().join(format!("netmeter-bql-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        d
    }

    #[test]
    fn byte_queue_limits_are_read_per_transmit_queue_in_numeric_order() {
        let d = scratch("order");
        tree(
            &d,
            "3\n",
            &[("tx-10", "300\n", "0\n"), ("tx-2", "1514\n", "42\n")],
        );
        let got = read_bql(&d, "eth0", 3);
        std::fs::remove_dir_all(&d).unwrap();
        assert_eq!(
            got,
            vec![
                Bql {
                    queue: "tx-2".into(),
                    limit: 1514,
                    inflight: 42
                },
                Bql {
                    queue: "tx-10".into(),
                    limit: 300,
                    inflight: 0
                },
            ]
        );
    }

    #[test]
    fn another_namespaces_sysfs_or_a_strange_name_gives_no_limits() {
        let d = scratch("ns");
        tree(&d, "3\n", &[("tx-0", "1514\n", "0\n")]);
        let (other, bad) = (read_bql(&d, "eth0", 9), read_bql(&d, "../net/eth0", 3));
        std::fs::remove_dir_all(&d).unwrap();
        assert!(other.is_empty() && bad.is_empty());
    }
}
