//! `netmeter sockets`: the router's own established TCP connections (rtt,
//! cwnd, retransmits, bytes) and UDP sockets with their queues, as
//! `ss -tinu` shows them, read from the kernel on request.

use super::CliError;
use crate::serve::sockets::{SocketsReport, read_report};
use argh::FromArgs;

/// Show this machine's TCP connections and UDP sockets with their queues,
/// round-trip times and congestion windows.
#[derive(FromArgs)]
#[argh(subcommand, name = "sockets")]
pub struct SocketsArgs {
    /// print JSON instead of a table
    #[argh(switch)]
    json: bool,
}

pub fn run(args: SocketsArgs) -> Result<(), CliError> {
    let report: SocketsReport = read_report()?;
    if args.json {
        super::print_json(&report)
    } else {
        print!("{}", render(&report));
        Ok(())
    }
}

fn ms(us: u32) -> String {
    format!("{:.3}", us as f64 / 1000.0)
}

fn render(report: &SocketsReport) -> String {
    let tcp: Vec<Vec<String>> = report
        .tcp
        .iter()
        .map(|s| {
            let t = s.tcp_info.unwrap_or_default();
            vec![
                s.local.clone(),
                s.remote.clone(),
                s.recv_q.to_string(),
                s.send_q.to_string(),
                format!("{}/{}", ms(t.rtt_us), ms(t.rttvar_us)),
                t.snd_cwnd.to_string(),
                format!("{}/{}", t.retransmits, t.total_retrans),
                t.bytes_acked.map_or("-".into(), |v| v.to_string()),
                t.bytes_received.map_or("-".into(), |v| v.to_string()),
            ]
        })
        .collect();
    let udp: Vec<Vec<String>> = report
        .udp
        .iter()
        .map(|s| {
            vec![
                s.local.clone(),
                s.remote.clone(),
                s.recv_q.to_string(),
                s.send_q.to_string(),
            ]
        })
        .collect();
    let mut out = format!("TCP (established): {}\n", report.tcp.len());
    out.push_str(&super::format::table(
        &[
            "local",
            "remote",
            "recv-q",
            "send-q",
            "rtt/var ms",
            "cwnd",
            "retrans",
            "acked",
            "received",
        ],
        &tcp,
    ));
    out.push_str(&format!("\nUDP: {}\n", report.udp.len()));
    out.push_str(&super::format::table(
        &["local", "remote", "recv-q", "send-q"],
        &udp,
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::netlink::sock_diag::TcpInfo;
    use crate::serve::sockets::SocketView;

    #[test]
    fn the_table_renders_what_the_api_sent() {
        let report = SocketsReport {
            tcp: vec![SocketView {
                local: "127.0.0.1:22".into(),
                remote: "127.0.0.1:40000".into(),
                recv_q: 0,
                send_q: 36,
                tcp_info: Some(TcpInfo {
                    rtt_us: 1250,
                    rttvar_us: 500,
                    snd_cwnd: 10,
                    bytes_acked: Some(4096),
                    bytes_received: Some(100),
                    ..TcpInfo::default()
                }),
                ..SocketView::default()
            }],
            udp: vec![],
        };
        let sent = crate::serve::api::json(&report);
        let read: SocketsReport = super::super::read_answer(sent.status, &sent.body).unwrap();
        let text = render(&read);
        assert!(text.starts_with("TCP (established): 1\n"), "{text}");
        assert!(text.contains("1.250/0.500"), "{text}");
        assert!(text.contains("4096"), "{text}");
        assert!(text.contains("UDP: 0\n"), "{text}");
    }
}
