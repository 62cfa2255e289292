//! `/api/v1/queues` and `netmeter queues`: per interface, every qdisc with
//! its statistics, byte queue limits, and TCP small queues' limit. Read from
//! the kernel when asked, never in the refresh loop.

use crate::collect::queues::{read_bql, read_qdiscs, tcp_limit_output_bytes};
use crate::netlink::qdisc::{
    AppStats, CakeStats, FqCodelStats, QdiscMessage, TC_H_INGRESS, TC_H_ROOT,
};
use crate::netlink::{NetlinkError, NetlinkSocket, socket::NETLINK_ROUTE};
#[cfg(test)]
use serde::Deserialize;
use serde::Serialize;

/// The whole answer. Field names are a contract: only add.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[cfg_attr(test, derive(Deserialize))]
pub struct QueuesReport {
    pub interfaces: Vec<InterfaceQueues>,
    /// `net.ipv4.tcp_limit_output_bytes` (TCP small queues), when readable.
    pub tcp_limit_output_bytes: Option<u64>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[cfg_attr(test, derive(Deserialize))]
pub struct InterfaceQueues {
    pub name: String,
    pub ifindex: u32,
    pub qdiscs: Vec<QdiscView>,
    /// Byte queue limits per transmit queue (empty where the driver has none
    /// or sysfs belongs to another network namespace).
    pub bql: Vec<BqlView>,
}

/// One qdisc, its handle and parent written as `tc` writes them.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[cfg_attr(test, derive(Deserialize))]
pub struct QdiscView {
    pub kind: String,
    /// `"1:"`: the major number in hex.
    pub handle: String,
    /// `"root"`, `"ingress"` or `"1:10"`.
    pub parent: String,
    pub bytes: u64,
    pub packets: u64,
    pub drops: u64,
    pub overlimits: u64,
    pub requeues: u64,
    pub backlog: u64,
    pub qlen: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fq_codel: Option<FqCodelStats>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cake: Option<CakeStats>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[cfg_attr(test, derive(Deserialize))]
pub struct BqlView {
    pub queue: String,
    pub limit: u64,
    pub inflight: u64,
}

/// A tc handle (`major:minor`, hex) as `tc` prints it.
pub fn tc_handle(h: u32) -> String {
    match h {
        TC_H_ROOT => "root".into(),
        TC_H_INGRESS => "ingress".into(),
        h if h & 0xffff == 0 => format!("{:x}:", h >> 16),
        h => format!("{:x}:{:x}", h >> 16, h & 0xffff),
    }
}

impl From<QdiscMessage> for QdiscView {
    fn from(q: QdiscMessage) -> Self {
        let (fq_codel, cake) = match q.app {
            Some(AppStats::FqCodel(s)) => (Some(s), None),
            Some(AppStats::Cake(c)) => (None, Some(c)),
            None => (None, None),
        };
        QdiscView {
            kind: q.kind,
            handle: tc_handle(q.handle),
            parent: tc_handle(q.parent),
            bytes: q.bytes,
            packets: q.packets,
            drops: q.drops.into(),
            overlimits: q.overlimits.into(),
            requeues: q.requeues.into(),
            backlog: q.backlog.into(),
            qlen: q.qlen.into(),
            fq_codel,
            cake,
        }
    }
}

/// Reads this namespace's queues now.
pub fn read_report() -> Result<QueuesReport, NetlinkError> {
    let mut socket = NetlinkSocket::open(NETLINK_ROUTE)?;
    let links = crate::collect::links::read_links(&mut socket)?;
    let qdiscs = read_qdiscs(&mut socket)?;
    let sys = std::path::Path::new("/sys");
    let interfaces = links
        .iter()
        .map(|l| InterfaceQueues {
            name: l.name.clone(),
            ifindex: l.ifindex,
            qdiscs: qdiscs
                .iter()
                .filter(|q| q.index == l.ifindex)
                .cloned()
                .map(QdiscView::from)
                .collect(),
            bql: read_bql(sys, &l.name, l.ifindex)
                .into_iter()
                .map(|b| BqlView {
                    queue: b.queue,
                    limit: b.limit,
                    inflight: b.inflight,
                })
                .collect(),
        })
        .collect();
    Ok(QueuesReport {
        interfaces,
        tcp_limit_output_bytes: tcp_limit_output_bytes(),
    })
}

/// The qdisc counter families for `/metrics`: (name, help, value).
type Family = (&'static str, &'static str, fn(&QdiscView) -> u64);
const QDISC_FAMILIES: [Family; 5] = [
    ("netmeter_qdisc_bytes_total", "Bytes the qdisc sent.", |q| {
        q.bytes
    }),
    (
        "netmeter_qdisc_packets_total",
        "Packets the qdisc sent.",
        |q| q.packets,
    ),
    (
        "netmeter_qdisc_drops_total",
        "Packets the qdisc dropped.",
        |q| q.drops,
    ),
    (
        "netmeter_qdisc_overlimits_total",
        "Times the qdisc was over its limit (a shaper delaying or dropping).",
        |q| q.overlimits,
    ),
    (
        "netmeter_qdisc_requeues_total",
        "Packets the qdisc requeued.",
        |q| q.requeues,
    ),
];
const QDISC_GAUGES: [Family; 2] = [
    (
        "netmeter_qdisc_backlog_bytes",
        "Bytes queued in the qdisc now.",
        |q| q.backlog,
    ),
    (
        "netmeter_qdisc_queue_packets",
        "Packets queued in the qdisc now.",
        |q| q.qlen,
    ),
];

/// The queues as Prometheus text (appended to `/metrics`).
pub fn metrics_text(report: &QueuesReport) -> String {
    use crate::exposition::{head, sample};
    let mut text = String::new();
    let out = &mut text;
    for (families, kind) in [
        (&QDISC_FAMILIES[..], "counter"),
        (&QDISC_GAUGES[..], "gauge"),
    ] {
        for (name, help, value) in families {
            head(out, name, kind, help);
            for i in &report.interfaces {
                for q in &i.qdiscs {
                    let labels = [
                        ("interface", i.name.as_str()),
                        ("kind", q.kind.as_str()),
                        ("handle", q.handle.as_str()),
                        ("parent", q.parent.as_str()),
                    ];
                    sample(out, name, &labels, value(q));
                }
            }
        }
    }
    if let Some(v) = report.tcp_limit_output_bytes {
        let name = "netmeter_tcp_limit_output_bytes";
        head(
            out,
            name,
            "gauge",
            "net.ipv4.tcp_limit_output_bytes (TCP small queues).",
        );
        sample(out, name, &[], v);
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handles_read_as_tc_writes_them() {
        assert_eq!(tc_handle(0x0001_0000), "1:");
        assert_eq!(tc_handle(0x0001_000a), "1:a");
        assert_eq!(tc_handle(0x8001_0000), "8001:");
        assert_eq!(tc_handle(TC_H_ROOT), "root");
        assert_eq!(tc_handle(TC_H_INGRESS), "ingress");
    }

    #[test]
    fn metrics_label_each_qdisc_by_interface_kind_handle_and_parent() {
        let report = QueuesReport {
            interfaces: vec![InterfaceQueues {
                name: "wan".into(),
                ifindex: 2,
                qdiscs: vec![QdiscView {
                    kind: "pfifo".into(),
                    handle: "10:".into(),
                    parent: "1:1".into(),
                    drops: 7,
                    ..QdiscView::default()
                }],
                bql: vec![],
            }],
            tcp_limit_output_bytes: Some(1048576),
        };
        let text = metrics_text(&report);
        assert!(
            text.contains(
                "netmeter_qdisc_drops_total{interface=\"wan\",kind=\"pfifo\",handle=\"10:\",parent=\"1:1\"} 7\n"
            ),
            "{text}"
        );
        assert!(
            text.contains("netmeter_tcp_limit_output_bytes 1048576\n"),
            "{text}"
        );
    }

    /// The kind-specific statistics have no qdisc on this machine's kernel
    /// for the API test to check against the document: their fields must
    /// be exactly the schemas' (all required, nothing else).
    #[test]
    fn fq_codel_and_cake_fields_are_the_documents_schemas() {
        let doc: serde_json::Value =
            serde_json::from_str(include_str!("../../docs/openapi.json")).unwrap();
        let cake = CakeStats {
            tins: vec![Default::default()],
            ..CakeStats::default()
        };
        let tin = serde_json::to_value(cake.tins[0]).unwrap();
        for (schema, value) in [
            (
                "FqCodelStats",
                serde_json::to_value(FqCodelStats::default()).unwrap(),
            ),
            ("CakeStats", serde_json::to_value(&cake).unwrap()),
            ("CakeTin", tin),
        ] {
            let s = &doc["components"]["schemas"][schema];
            let names = |v: &serde_json::Value| -> Vec<String> {
                let mut n: Vec<String> = match v {
                    serde_json::Value::Object(o) => o.keys().cloned().collect(),
                    serde_json::Value::Array(a) => {
                        a.iter().map(|x| x.as_str().unwrap().to_string()).collect()
                    }
                    _ => panic!("{schema}: {v}"),
                };
                n.sort();
                n
            };
            assert_eq!(
                names(&value),
                names(&s["properties"]),
                "{schema} properties"
            );
            assert_eq!(names(&value), names(&s["required"]), "{schema} required");
            assert_eq!(s["additionalProperties"], false, "{schema}");
        }
    }
}
