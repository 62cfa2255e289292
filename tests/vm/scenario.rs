//! The program a VM scenario runs inside the guest (see tests/vm/main.rs and
//! tests/vm/harness.rs): built static for the guest's architecture as the
//! example `vm_scenario`, started by the guest's `/init` with the cases to
//! run, it builds the namespace test bed (this binary is its own agent),
//! drives netmeter (`NETMETER_BINARY`) and prints one
//! `NETMETER-VM-RESULT {json}` line per case: measurements only. The
//! assertions live in the host-side test, which reads them from the
//! serial console.
//!
//! A case is `FIREWALL-PLACEMENT[-FLAG…]`: FIREWALL `offload` (fw4-like:
//! masquerade, a flowtable with `counter`, `flow add @ft` in forward),
//! `uncounted` (the same flowtable without `counter`) or `plain`
//! (masquerade only); PLACEMENT netmeter's `option placement` (`auto`,
//! `netdev`, `forward`, `conntrack`). Flags: `bridge` puts the LAN ports in
//! `br-lan`; `ports` (with `bridge`) has netmeter count on the bridge's
//! ports instead of br-lan, with the LAN's subnets given; `small` moves an eighth of the traffic (slow guests);
//! `restart` then asks the API on loopback, stops the daemon (which
//! commits its state to flash), removes the spool (tmpfs, gone after a
//! reboot), starts it again and measures one more upload: totals must
//! continue.
//!
//! The case `queues` is of another kind: a shaped link that drops, with
//! fq_codel (an htb leaf, on the router's WAN) and cake (with its own
//! shaper, on the LAN port), and `netmeter queues --json` beside Debian's
//! `tc -s -j qdisc show` for every interface once the traffic has
//! stopped (`queues_case`).
//!
//! Outside a VM it does nothing unless given cases; it needs root (or
//! user namespaces) and a kernel with the features the case uses.

#[path = "../testbed/mod.rs"]
mod testbed;

use serde_json::{Value, json};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use testbed::netmeter::{self, Daemon, Scratch};
use testbed::topology::{PORT, WAN_HOST_V4, WAN_HOST_V6};
use testbed::{Counters, Host, LanHost, Network, Topology};

/// TCP bytes of the smallest transfer; host i moves (i + 1) times this
/// up and down over each IP version.
const TCP_UNIT: u64 = 8 << 20;
const UDP_DATAGRAMS: u64 = 300;

fn main() {
    let cases: Vec<String> = std::env::args().skip(1).collect();
    if cases.is_empty() {
        eprintln!(
            "vm_scenario CASE…: run inside a VM by tests/vm/main.rs (CASE e.g. offload-auto, offload-forward, plain-auto)"
        );
        return;
    }
    for case in &cases {
        let started = Instant::now();
        let mut result = match run_case(case) {
            Ok(v) => v,
            Err(e) => json!({ "error": e }),
        };
        result["case"] = json!(case);
        result["seconds"] = json!(started.elapsed().as_secs_f64());
        println!("NETMETER-VM-RESULT {result}");
    }
}

fn progress(what: &str) {
    println!("NETMETER-VM-PROGRESS {what}");
}

struct Case {
    offload: bool,
    /// The flowtable has the `counter` flag.
    counted: bool,
    placement: String,
    bridge: bool,
    small: bool,
    restart: bool,
    /// With `bridge`: netmeter counts on the bridge's ports (lan0, lan1,
    /// the LAN's subnets given), not on br-lan.
    ports: bool,
}

fn parse_case(case: &str) -> Result<Case, String> {
    let parts: Vec<&str> = case.split('-').collect();
    let (offload, counted) = match parts.first() {
        Some(&"offload") => (true, true),
        Some(&"uncounted") => (true, false),
        Some(&"plain") => (false, false),
        _ => {
            return Err(format!(
                "{case}: expected offload-…, uncounted-… or plain-…"
            ));
        }
    };
    let placement = match parts.get(1) {
        Some(p @ (&"auto" | &"netdev" | &"forward" | &"conntrack")) => p.to_string(),
        _ => {
            return Err(format!(
                "{case}: placement auto, netdev, forward or conntrack"
            ));
        }
    };
    let flags = parts.get(2..).unwrap_or_default();
    if let Some(other) = flags
        .iter()
        .find(|f| !["bridge", "small", "restart", "ports"].contains(f))
    {
        return Err(format!("{case}: unknown flag {other}"));
    }
    Ok(Case {
        offload,
        counted,
        placement,
        bridge: flags.contains(&"bridge"),
        small: flags.contains(&"small"),
        restart: flags.contains(&"restart"),
        ports: flags.contains(&"ports"),
    })
}

fn run_case(name: &str) -> Result<Value, String> {
    if name == "queues" {
        return queues_case();
    }
    let case = parse_case(name)?;
    progress(&format!("{name}: building the network"));
    let net = Network::build(Topology {
        lan: vec![LanHost::dual("laptop"), LanHost::dual("tv")],
        bridge: case.bridge.then(|| "br-lan".to_string()),
    });
    let ports: Vec<String> = (0..net.lan.len()).map(|i| format!("lan{i}")).collect();
    if case.offload {
        // fw4 lists the LAN's lower devices (bridge ports), never br-lan.
        net.router
            .call(&format!(
                "fw4_offload {},wan {}",
                ports.join(","),
                if case.counted { "counter" } else { "nocounter" }
            ))
            .map_err(|e| e.to_string())?;
    }
    let lan_interfaces: Vec<String> = if case.bridge && !case.ports {
        vec!["br-lan".into()]
    } else {
        ports.clone()
    };
    let mut config = format!(
        "config netmeter 'main'\n\toption refresh_interval '1'\n\toption placement '{}'\n",
        case.placement
    );
    for dev in &lan_interfaces {
        config.push_str(&format!("\tlist lan_interface '{dev}'\n"));
    }
    if case.bridge && case.ports {
        // Bridge ports have no addresses: the LAN's subnets are br-lan's.
        config.push_str("\tlist lan_subnet '10.0.0.0/24'\n\tlist lan_subnet 'fd00::/64'\n");
    }
    let scratch = Scratch::new();
    let d = Daemon::start_binary(&netmeter::binary(), &net.router, &scratch, &config);
    let cfg = d.config_path().to_str().unwrap().to_string();
    let before: Vec<Counters> = net.lan.iter().map(|h| h.counters()["eth0"]).collect();
    let forward_before = forward_counter(&net.router, case.offload)?;

    progress(&format!("{name}: traffic"));
    let traffic_started = Instant::now();
    let offloaded_max = traffic(&net, case.offload, case.small)?;
    let traffic_seconds = traffic_started.elapsed().as_secs_f64();
    d.wait_refreshed(&net.router);

    let report = netmeter::json(&net.router, &["devices", "--json", "-c", &cfg]);
    let check = netmeter::run(&net.router, &["check", "--json", "-c", &cfg]);
    let check_report: Value = serde_json::from_slice(&check.stdout).unwrap_or_else(
        |e| json!({ "unparsed": format!("{e}: {}", String::from_utf8_lossy(&check.stderr)) }),
    );
    let forward_after = forward_counter(&net.router, case.offload)?;
    let daemon_log = d.log_text();

    let mut hosts = Vec::new();
    for (i, host) in net.lan.iter().enumerate() {
        let after = host.counters()["eth0"];
        let mac = mac_of(host);
        let dev = report["devices"]
            .as_array()
            .and_then(|all| all.iter().find(|d| d["mac"] == mac.as_str()))
            .cloned()
            .unwrap_or(Value::Null);
        hosts.push(json!({
            "name": host.name,
            "mac": mac,
            "tx_truth": after.tx_l3_bytes() - before[i].tx_l3_bytes(),
            "rx_truth": after.rx_l3_bytes() - before[i].rx_l3_bytes(),
            "tx_packets": after.tx_packets - before[i].tx_packets,
            "rx_packets": after.rx_packets - before[i].rx_packets,
            "tx_counted": dev["tx_bytes"],
            "rx_counted": dev["rx_bytes"],
        }));
    }
    let restart = if case.restart {
        restart(&net, d, &scratch, &config, &report)?
    } else {
        Value::Null
    };
    let forward = match (forward_before, forward_after) {
        (Some(b), Some(a)) => json!({ "bytes": a.0 - b.0, "packets": a.1 - b.1 }),
        _ => Value::Null,
    };
    Ok(json!({
        "kernel": kernel_release(),
        "offload": case.offload,
        "placement": case.placement,
        "bridge": case.bridge,
        "hosts": hosts,
        "unattributed": report["unattributed"],
        "forward_chain": forward,
        "conntrack_offloaded_max": offloaded_max,
        "traffic_seconds": traffic_seconds,
        "check_exit": check.status.code(),
        "check": check_report,
        "daemon_log": daemon_log,
        "restart": restart,
    }))
}

/// The API on loopback, then a stop (the daemon commits), a start on the
/// same files, and one more upload by the first LAN host: what each
/// device had before the stop, after the start, and after the upload,
/// with the upload's ground truth.
fn restart(
    net: &Network,
    d: Daemon,
    scratch: &Scratch,
    config: &str,
    before: &Value,
) -> Result<Value, String> {
    progress("restart: API, stop, start, upload");
    let ask = |path: &str| net.router.call(&format!("http_get {} {path}", d.api));
    let status = ask("/api/v1/status").map_err(|e| e.to_string())?;
    let metrics = ask("/metrics").map_err(|e| e.to_string())?;
    let api = json!({
        "status_code": status.split(' ').next(),
        "metrics_code": metrics.split(' ').next(),
        "metrics_up": metrics.contains("netmeter_up 1"),
    });
    drop(d); // SIGTERM: a last refresh, then a commit to flash
    let flash: Vec<String> = std::fs::read_dir(scratch.0.join("flash"))
        .map(|dir| {
            dir.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    // As after a reboot: the spool lived in tmpfs, only flash is left.
    let _ = std::fs::remove_dir_all(scratch.0.join("spool"));
    let d = Daemon::start_binary(&netmeter::binary(), &net.router, scratch, config);
    let cfg = d.config_path().to_str().unwrap().to_string();
    let reloaded = netmeter::json(&net.router, &["devices", "--json", "-c", &cfg]);
    let host = &net.lan[0];
    let sent_before = host.counters()["eth0"];
    host.call(&format!("tcp_upload {WAN_HOST_V4} {PORT} {}", 2 << 20))
        .map_err(|e| e.to_string())?;
    d.wait_refreshed(&net.router);
    let after = netmeter::json(&net.router, &["devices", "--json", "-c", &cfg]);
    let sent = host.counters()["eth0"].tx_l3_bytes() - sent_before.tx_l3_bytes();
    let totals = |report: &Value| -> Value {
        report["devices"]
            .as_array()
            .map(|all| {
                all.iter()
                    .map(|d| json!({ "mac": d["mac"], "tx": d["tx_bytes"], "rx": d["rx_bytes"] }))
                    .collect()
            })
            .unwrap_or_default()
    };
    Ok(json!({
        "api": api,
        "flash_files": flash,
        "before_stop": totals(before),
        "after_start": totals(&reloaded),
        "after_upload": totals(&after),
        "upload_host_mac": mac_of(host),
        "upload_truth": sent,
        "log": d.log_text(),
    }))
}

/// Every LAN host uploads and downloads over TCP and UDP, IPv4 and IPv6.
/// While the TCP transfers run, the router's conntrack table is sampled:
/// the most entries marked `[OFFLOAD]` at once (None: no flowtable).
fn traffic(net: &Network, offload: bool, small: bool) -> Result<Option<u64>, String> {
    let (tcp_unit, datagrams) = if small {
        (TCP_UNIT / 8, UDP_DATAGRAMS / 3)
    } else {
        (TCP_UNIT, UDP_DATAGRAMS)
    };
    let done = AtomicBool::new(false);
    let mut most = 0u64;
    let mut failure = None;
    std::thread::scope(|s| {
        let sampler = s.spawn(|| {
            let mut most = 0u64;
            while offload && !done.load(Ordering::SeqCst) {
                if let Ok(answer) = net.router.call("conntrack_offloaded") {
                    let n = answer.split(',').next().unwrap_or("0");
                    most = most.max(n.parse().unwrap_or(0));
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            most
        });
        for (i, host) in net.lan.iter().enumerate() {
            let n = tcp_unit * (i as u64 + 1);
            for (wan, size) in [(WAN_HOST_V4, 1200), (WAN_HOST_V6, 1100)] {
                for line in [
                    format!("tcp_upload {wan} {PORT} {n}"),
                    format!("tcp_download {wan} {PORT} {}", 2 * n),
                    format!("udp_upload {wan} {PORT} {datagrams} {size}"),
                    format!("udp_download {wan} {PORT} {datagrams} {}", size - 100),
                ] {
                    if let Err(e) = host.call(&line) {
                        failure.get_or_insert(e.to_string());
                    }
                }
            }
        }
        done.store(true, Ordering::SeqCst);
        most = sampler.join().unwrap();
    });
    match failure {
        Some(e) => Err(e),
        None => Ok(offload.then_some(most)),
    }
}

fn forward_counter(router: &Host, offload: bool) -> Result<Option<(u64, u64)>, String> {
    if !offload {
        return Ok(None);
    }
    let answer = router.call("forward_counter").map_err(|e| e.to_string())?;
    let (b, p) = answer.split_once(',').ok_or("bad forward_counter answer")?;
    Ok(Some((
        b.parse().map_err(|e| format!("{e}"))?,
        p.parse().map_err(|e| format!("{e}"))?,
    )))
}

fn mac_of(host: &Host) -> String {
    let hex = host.run("mac eth0");
    hex.as_bytes()
        .chunks(2)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect::<Vec<_>>()
        .join(":")
}

fn kernel_release() -> String {
    std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

/// What `queues` moves through the shaped links: TCP bytes each way (ECN
/// on, so both AQMs mark as well as drop) and UDP datagrams blasted into
/// each qdisc far faster than 1 Mbit/s, so its limit overflows.
const QUEUES_TCP_BYTES: u64 = 160 << 10;
const QUEUES_DATAGRAMS: u64 = 200;

/// The router's WAN: htb 1 Mbit/s with fq_codel (limit 30 packets) as the
/// leaf; its LAN port: cake shaping to 1 Mbit/s itself, with a small
/// memory limit and the ACK filter. LAN host `a` uploads and downloads
/// over TCP with ECN while the router blasts UDP through both. When the
/// queues have drained, `tc -s -j qdisc show dev X` for every interface,
/// `netmeter queues --json`, and tc again, until the two tc readings are
/// the same (nothing moved in between): the host compares them.
fn queues_case() -> Result<Value, String> {
    let tc = testbed::require_tool("tc", "iproute2").ok_or("no tc in the guest")?;
    progress("queues: building the network");
    let net = Network::with_lan_hosts(&["a"]);
    let a = &net.lan[0];
    let run_tc = |args: &[&str]| -> Result<String, String> {
        let out = net
            .router
            .command(&tc)
            .args(args)
            .output()
            .map_err(|e| format!("tc: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "tc {args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    };
    for line in [
        "qdisc add dev wan root handle 1: htb default 10",
        "class add dev wan parent 1: classid 1:10 htb rate 1mbit",
        "qdisc add dev wan parent 1:10 handle 10: fq_codel limit 30",
        "qdisc add dev lan0 root handle 20: cake bandwidth 1mbit memlimit 32kb ack-filter",
    ] {
        run_tc(&line.split(' ').collect::<Vec<_>>())?;
    }
    // MTU-sized segments, as a router with real NICs sees them, and ECN.
    a.run("offload eth0 off");
    net.wan.run("offload eth0 off");
    a.run("sysctl net/ipv4/tcp_ecn 1");

    progress("queues: traffic");
    let started = Instant::now();
    let lan_v4 = net.lan_ips(0).0.unwrap();
    let mut failure = None;
    std::thread::scope(|s| {
        let tcp = s.spawn(|| -> Result<(), String> {
            for line in [
                format!("tcp_upload {WAN_HOST_V4} {PORT} {QUEUES_TCP_BYTES}"),
                format!("tcp_download {WAN_HOST_V4} {PORT} {QUEUES_TCP_BYTES}"),
            ] {
                a.call(&line).map_err(|e| e.to_string())?;
            }
            Ok(())
        });
        for to in [WAN_HOST_V4, lan_v4.as_str()] {
            let line = format!("udp_blast {to} {PORT} {QUEUES_DATAGRAMS} 1200");
            if let Err(e) = net.router.call(&line) {
                failure.get_or_insert(e.to_string());
            }
        }
        if let Err(e) = tcp.join().unwrap() {
            failure.get_or_insert(e);
        }
    });
    if let Some(e) = failure {
        return Err(e);
    }
    let traffic_seconds = started.elapsed().as_secs_f64();

    // Every interface here (lo, wan, lan0).
    let names: Vec<String> = net
        .router
        .run("counters")
        .split(';')
        .filter_map(|e| e.split(',').next().filter(|n| !n.is_empty()))
        .map(str::to_string)
        .collect();
    let tc_all = || -> Result<Value, String> {
        let mut all = serde_json::Map::new();
        for dev in &names {
            let text = run_tc(&["-s", "-j", "qdisc", "show", "dev", dev])?;
            let v: Value =
                serde_json::from_str(&text).map_err(|e| format!("tc's JSON ({e}): {text}"))?;
            all.insert(dev.clone(), v);
        }
        Ok(Value::Object(all))
    };
    // Drained: nothing queued anywhere.
    let drained = |tc: &Value| {
        tc.as_object().unwrap().values().all(|qs| {
            qs.as_array()
                .is_some_and(|qs| qs.iter().all(|q| q["qlen"] == 0 && q["backlog"] == 0))
        })
    };
    // The kernel's own bytes, for the parser's tests and fuzz seeds, and
    // to see why when netmeter cannot read them.
    let queues = || -> Result<Value, String> {
        let out = netmeter::run(&net.router, &["queues", "--json"]);
        if !out.status.success() {
            return Err(format!(
                "netmeter queues --json failed: {}",
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        serde_json::from_slice(&out.stdout).map_err(|e| format!("netmeter's JSON: {e}"))
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut reads = 0;
    loop {
        reads += 1;
        let before = tc_all()?;
        if !drained(&before) {
            if Instant::now() > deadline {
                return Err(format!("the queues never drained: {before}"));
            }
            std::thread::sleep(Duration::from_millis(200));
            continue;
        }
        let dump = net
            .router
            .call("qdisc_dump_hex")
            .map_err(|e| e.to_string())?;
        let ours = queues();
        let after = tc_all()?;
        if before == after {
            let mut result = json!({
                "kernel": kernel_release(),
                "traffic_seconds": traffic_seconds,
                "reads": reads,
                "tc_version": run_tc(&["-V"])?.trim(),
                "tc": after,
                "qdisc_dump_hex": dump,
            });
            match ours {
                Ok(v) => result["netmeter"] = v,
                Err(e) => result["error"] = json!(e),
            }
            return Ok(result);
        }
        if Instant::now() > deadline {
            return Err(format!(
                "the qdiscs never held still between two tc readings:\n{before}\n{after}"
            ));
        }
    }
}
