//! The test bed itself: namespaces, NAT, IPv6, exact transfers, cleanup.

use crate::testbed;

use testbed::topology::{PORT, ROUTER_WAN_V4, WAN_HOST_V4, WAN_HOST_V6};
use testbed::{LanHost, Network, Topology};

#[test]
fn lan_hosts_reach_the_wan_host_through_masquerade_and_routed_ipv6() {
    let net = Network::with_lan_hosts(&["laptop"]);
    let lan = &net.lan[0];
    assert_eq!(
        lan.run(&format!("tcp_upload {WAN_HOST_V4} {PORT} 100000")),
        "100000"
    );
    assert_eq!(
        lan.run(&format!("tcp_download {WAN_HOST_V4} {PORT} 250000")),
        "250000"
    );
    assert_eq!(
        lan.run(&format!("tcp_upload {WAN_HOST_V6} {PORT} 5000")),
        "5000"
    );
    assert_eq!(net.wan.run("received"), "105000");
    // The WAN host saw IPv4 traffic from the router's address only (NAT),
    // and IPv6 traffic from the LAN host's own address (routed).
    let peers = net.wan.run("peers");
    assert!(peers.contains(ROUTER_WAN_V4), "peers: {peers}");
    assert!(
        !peers.contains("10.0."),
        "no LAN IPv4 address leaks past NAT: {peers}"
    );
    assert!(peers.contains("fd00:1::2"), "peers: {peers}");
}

#[test]
fn udp_downloads_come_back_through_nat_and_uploads_are_counted() {
    let net = Network::with_lan_hosts(&["phone"]);
    let lan = &net.lan[0];
    assert_eq!(
        lan.run(&format!("udp_upload {WAN_HOST_V4} {PORT} 20 1000")),
        "20"
    );
    let got: u64 = lan
        .run(&format!("udp_download {WAN_HOST_V4} {PORT} 20 1200"))
        .parse()
        .unwrap();
    assert!(got >= 18, "only {got} of 20 datagrams came back");
    // UDP over veth between namespaces does not lose datagrams at this pace.
    std::thread::sleep(std::time::Duration::from_millis(200));
    assert_eq!(net.wan.run("received"), "20000");
}

#[test]
fn interface_counters_are_read_inside_each_namespace() {
    let net = Network::build(Topology {
        lan: vec![LanHost::dual("a"), LanHost::ipv6_only("b")],
        bridge: Some("br-lan".into()),
    });
    let before = net.lan[1].counters()["eth0"];
    net.lan[1].run(&format!("tcp_upload {WAN_HOST_V6} {PORT} 300000"));
    let after = net.lan[1].counters()["eth0"];
    assert!(after.tx_bytes - before.tx_bytes > 300000);
    assert!(after.tx_l3_bytes() - before.tx_l3_bytes() > 300000);
    let router = net.router.counters();
    for name in ["lo", "wan", "br-lan", "lan0", "lan1"] {
        assert!(router.contains_key(name), "router has {name}: {router:?}");
    }
    assert!(
        !net.lan[0].counters().contains_key("wan"),
        "namespaces are separate"
    );
    // An IPv6-only host has no IPv4 path out.
    assert!(
        net.lan[1]
            .call(&format!("tcp_upload {WAN_HOST_V4} {PORT} 10"))
            .is_err()
    );
}

#[test]
fn dropping_the_network_ends_every_namespace_process() {
    let net = Network::with_lan_hosts(&["x"]);
    let pids = [net.router.pid(), net.wan.pid(), net.lan[0].pid()];
    drop(net);
    for pid in pids {
        assert!(
            !std::path::Path::new(&format!("/proc/{pid}")).exists()
                || std::fs::read_to_string(format!("/proc/{pid}/stat"))
                    .unwrap_or_default()
                    .contains(" Z "),
            "agent {pid} still running"
        );
    }
}
