//! `netmeter sockets` against `ss -tin` for an idle TCP connection the
//! test holds open from a LAN host to the WAN host.

use crate::testbed;

use serde_json::Value;
use testbed::netmeter;
use testbed::topology::{PORT, WAN_HOST_V4};
use testbed::{Host, Network};

/// What `ss -tin` says of the connection from local port `port`: Recv-Q,
/// Send-Q, rtt and rttvar (ms), cwnd, bytes_acked, bytes_received.
fn ss_figures(host: &Host, ss: &std::path::Path, port: u16) -> Vec<String> {
    let out = host
        .command(ss)
        .args(["-tin", "state", "established"])
        .output()
        .expect("running ss");
    let text = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let at = lines
        .iter()
        .position(|l| l.contains(&format!(":{port} ")))
        .unwrap_or_else(|| panic!("no connection from port {port} in:\n{text}"));
    let head: Vec<&str> = lines[at].split_whitespace().collect();
    let info = lines[at + 1];
    let value = |key: &str| {
        info.split_whitespace()
            .find_map(|w| w.strip_prefix(key))
            .unwrap_or_else(|| panic!("no {key} in {info}"))
            .to_string()
    };
    // Without a state filter the first column is the state; with one, Recv-Q.
    let rtt = value("rtt:");
    let (rtt, rttvar) = rtt.split_once('/').unwrap();
    vec![
        head[0].to_string(),
        head[1].to_string(),
        rtt.to_string(),
        rttvar.to_string(),
        value("cwnd:"),
        value("bytes_acked:"),
        value("bytes_received:"),
    ]
}

/// netmeter's figures in ss's form (`%g` of milliseconds for rtt).
fn our_figures(report: &Value, port: u16) -> Vec<String> {
    let s = report["tcp"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["local"].as_str().unwrap().ends_with(&format!(":{port}")))
        .unwrap_or_else(|| panic!("no connection from port {port} in {report}"));
    let t = &s["tcp_info"];
    let ms = |v: &Value| {
        let text = format!("{}", v.as_u64().unwrap() as f64 / 1000.0);
        text
    };
    vec![
        s["recv_q"].to_string(),
        s["send_q"].to_string(),
        ms(&t["rtt_us"]),
        ms(&t["rttvar_us"]),
        t["snd_cwnd"].to_string(),
        t["bytes_acked"].to_string(),
        t["bytes_received"].to_string(),
    ]
}

#[test]
fn socket_figures_agree_with_ss_for_a_connection_the_test_holds_open() {
    let Some(ss) = testbed::require_tool("ss", "iproute2") else {
        return;
    };
    let net = Network::with_lan_hosts(&["a"]);
    let lan = &net.lan[0];
    let port: u16 = lan
        .run(&format!("tcp_hold {WAN_HOST_V4} {PORT} 100000"))
        .parse()
        .unwrap();
    // Idle, the connection's figures hold still: read ss, netmeter, ss until
    // the two ss readings agree, then netmeter must say the same.
    for _ in 0..10 {
        let before = ss_figures(lan, &ss, port);
        let ours = our_figures(&netmeter::json(lan, &["sockets", "--json"]), port);
        let after = ss_figures(lan, &ss, port);
        if before == after {
            assert_eq!(ours, before, "netmeter (left) and ss (right) differ");
            // bytes_acked counts the 9-byte head and the payload (and the SYN).
            let acked: u64 = ours[5].parse().unwrap();
            assert!((100_009..=100_010).contains(&acked), "{ours:?}");
            return;
        }
    }
    panic!("the connection's ss figures never held still");
}
