//! `netmeter watch --json` in a namespace whose loopback carries only the
//! test's traffic: its deltas add up to the kernel's own difference.

use crate::testbed;

use std::io::{BufRead, BufReader};
use std::process::Stdio;
use testbed::netmeter;
use testbed::{Host, Network};

fn lo_tx(host: &Host) -> (u64, u64) {
    let c = host.counters()["lo"];
    (c.tx_bytes, c.tx_packets)
}

#[test]
fn watch_at_10_hz_for_2_s_gives_20_samples_whose_deltas_add_up_to_the_kernels_difference() {
    let net = Network::with_lan_hosts(&["a"]);
    let host = &net.lan[0];
    host.run("serve 6001");
    let before = lo_tx(host);
    let mut child = host
        .command(netmeter::binary())
        .args([
            "watch",
            "--interface",
            "l?",
            "--frequency",
            "10",
            "--time",
            "2",
            "--json",
        ])
        .stdout(Stdio::piped())
        .stdin(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut samples: Vec<serde_json::Value> = Vec::new();
    let first = lines.next().expect("a first sample").unwrap();
    samples.push(serde_json::from_str(&first).unwrap());
    // Traffic while it samples (the baseline is taken before the first line).
    host.run("udp_upload 127.0.0.1 6001 20 1000");
    for line in lines {
        samples.push(serde_json::from_str(&line.unwrap()).unwrap());
    }
    assert!(child.wait().unwrap().success());
    let after = lo_tx(host);
    assert_eq!(samples.len(), 20, "{samples:?}");
    let (mut bytes, mut packets, mut last_time) = (0, 0, 0);
    for s in &samples {
        let lo = &s["interfaces"][0];
        assert_eq!(lo["name"], "lo", "only lo matches l?: {s}");
        assert_eq!(s["interfaces"].as_array().unwrap().len(), 1);
        bytes += lo["tx_bytes_delta"].as_u64().unwrap();
        packets += lo["tx_packets_delta"].as_u64().unwrap();
        let t = s["time_us"].as_u64().unwrap();
        assert!(t > last_time, "sample times rise: {samples:?}");
        last_time = t;
    }
    let last = &samples[19]["interfaces"][0];
    assert_eq!(
        last["tx_bytes"].as_u64().unwrap(),
        after.0,
        "nothing after the last sample"
    );
    assert_eq!((bytes, packets), (after.0 - before.0, after.1 - before.1));
    assert!(packets >= 20, "the 20 datagrams were seen: {packets}");
}
