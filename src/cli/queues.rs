//! `netmeter queues`: every qdisc per interface with its statistics, byte
//! queue limits and TCP small queues, read from this machine's kernel
//! (the daemon serves the same at `/api/v1/queues` for other machines).

use super::CliError;
use crate::serve::queues::{QueuesReport, read_report};
use argh::FromArgs;

/// Show queueing disciplines (qdiscs) with their drops, overlimits and
/// backlog, fq_codel and cake details, byte queue limits and TCP small
/// queues' limit.
#[derive(FromArgs)]
#[argh(subcommand, name = "queues")]
pub struct QueuesArgs {
    /// print JSON instead of a table
    #[argh(switch)]
    json: bool,
}

pub fn run(args: QueuesArgs) -> Result<(), CliError> {
    let report: QueuesReport = read_report()?;
    if args.json {
        super::print_json(&report)
    } else {
        print!("{}", render(&report));
        Ok(())
    }
}

fn render(report: &QueuesReport) -> String {
    let mut rows = Vec::new();
    let mut details = String::new();
    for i in &report.interfaces {
        for q in &i.qdiscs {
            rows.push(vec![
                i.name.clone(),
                q.kind.clone(),
                q.handle.clone(),
                q.parent.clone(),
                super::format::bytes(q.bytes),
                q.packets.to_string(),
                q.drops.to_string(),
                q.overlimits.to_string(),
                q.requeues.to_string(),
                format!("{}b {}p", q.backlog, q.qlen),
            ]);
            if let Some(f) = &q.fq_codel {
                details.push_str(&format!(
                    "{} {} fq_codel: maxpacket {} drop_overlimit {} drop_overmemory {} ecn_mark {} ce_mark {} new_flow_count {} new_flows_len {} old_flows_len {} memory_used {}\n",
                    i.name, q.handle, f.maxpacket, f.drop_overlimit, f.drop_overmemory, f.ecn_mark,
                    f.ce_mark, f.new_flow_count, f.new_flows_len, f.old_flows_len, f.memory_usage
                ));
            }
            if let Some(c) = &q.cake {
                details.push_str(&format!(
                    "{} {} cake: memory used {} of {}, capacity estimate {}\n",
                    i.name,
                    q.handle,
                    c.memory_used,
                    c.memory_limit,
                    super::format::rate(c.capacity_estimate)
                ));
                for (n, t) in c.tins.iter().enumerate() {
                    details.push_str(&format!(
                        "  tin {n}: sent {} pkts {} B, dropped {}, ecn marked {}, ack drops {}, backlog {} B, delay peak/avg/base {}/{}/{} us, flows sparse {} bulk {} unresponsive {}\n",
                        t.sent_packets, t.sent_bytes, t.dropped_packets, t.ecn_marked_packets,
                        t.ack_drops, t.backlog_bytes, t.peak_delay_us, t.avg_delay_us,
                        t.base_delay_us, t.sparse_flows, t.bulk_flows, t.unresponsive_flows
                    ));
                }
            }
        }
    }
    let mut out = super::format::table(
        &[
            "interface",
            "qdisc",
            "handle",
            "parent",
            "sent",
            "packets",
            "drops",
            "overlimits",
            "requeues",
            "backlog",
        ],
        &rows,
    );
    out.push_str(&details);
    for i in &report.interfaces {
        for b in &i.bql {
            out.push_str(&format!(
                "{} {} byte queue limit {} inflight {}\n",
                i.name, b.queue, b.limit, b.inflight
            ));
        }
    }
    if let Some(v) = report.tcp_limit_output_bytes {
        out.push_str(&format!("tcp_limit_output_bytes {v}\n"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::serve::queues::{InterfaceQueues, QdiscView};

    #[test]
    fn the_table_renders_what_the_api_sent() {
        let report = QueuesReport {
            interfaces: vec![InterfaceQueues {
                name: "wan".into(),
                ifindex: 2,
                qdiscs: vec![QdiscView {
                    kind: "htb".into(),
                    handle: "1:".into(),
                    parent: "root".into(),
                    drops: 12,
                    backlog: 3000,
                    qlen: 2,
                    ..QdiscView::default()
                }],
                bql: vec![],
            }],
            tcp_limit_output_bytes: Some(1_048_576),
        };
        let sent = crate::serve::api::json(&report);
        let read: QueuesReport = super::super::read_answer(sent.status, &sent.body).unwrap();
        let text = render(&read);
        assert!(
            text.starts_with("interface  qdisc  handle  parent"),
            "{text}"
        );
        assert!(text.contains("wan          htb      1:    root"), "{text}");
        assert!(text.contains("3000b 2p"), "{text}");
        assert!(text.ends_with("tcp_limit_output_bytes 1048576\n"), "{text}");
    }
}
