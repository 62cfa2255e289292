//! The per-device benchmark, in one run on the real kernel, inside the
//! namespace test bed:
//!
//! 1. CPU time of one refresh (`collect::devices::read` + `ingest`) at 1,000
//!    and 10,000 devices, timed in the router namespace by the agent;
//! 2. the real daemon with 0, 1,000 and 10,000 devices in its sets: peak
//!    RSS, and CPU time of its whole refresh;
//! 3. TCP throughput through the router with 1,000 devices: no accounting,
//!    netmeter's table (and its rules before the interval sets), conntrack
//!    accounting, and YAMon-style linear per-IP rules; with the end hosts'
//!    64 KiB GSO packets and with MTU-sized ones;
//! 4. what each part of netmeter's rules costs: CPU per 1,500-byte UDP
//!    packet through variants of its table that add one part at a time,
//!    each blast paired with one from a reference host on a port without
//!    chains, which cancels most of a shared machine's drift;
//! 5. `GET /api/v1/devices` from the real daemon at 1,000 and 10,000
//!    devices: p50 and p99 latency over loopback.
//!
//! Devices are synthetic set elements (or rules) except the one LAN host
//! that moves the traffic (and the reference host, which has no chains). Not a test: `cargo bench --bench devices` runs
//! it in the release profile; under `cargo test` it only says so.
//! NETMETER_BENCH_ONLY=refresh|daemon|forwarding|rules|api runs one part;
//! NETMETER_BENCH_DAEMON=PATH runs another netmeter build as the daemon.
//! The figures and how to read them: docs/BENCHMARKS.md.

#[path = "../tests/testbed/mod.rs"]
mod testbed;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};
use testbed::netmeter::{Daemon, Scratch};
use testbed::topology::{PORT, WAN_HOST_V4, WAN_HOST_V6};
use testbed::{Host, LanHost, Network, Topology};

/// Timed refreshes per size (after 3 warm-up ones).
const REFRESH_RUNS: u64 = 30;
/// Sleep before each: the daemon's refresh, too, starts after its thread
/// slept, with caches gone cold (back to back, a refresh of 1,000 devices
/// costs ~20% less).
const REFRESH_PAUSE_MS: u64 = 100;
/// Rounds of the throughput comparison; each runs every configuration once.
const ROUNDS: usize = 7;
/// Rounds of the rule variants; pairs of blasts per round and IP version,
/// and datagrams per blast.
const RULE_ROUNDS: usize = 7;
const RULE_PAIRS: usize = 4;
const RULE_DATAGRAMS: u64 = 20_000;
/// Timed requests per size in the API part (after 5 warm-up ones).
const API_REQUESTS: u64 = 200;
/// Refreshes over which the daemon's CPU time is taken.
const DAEMON_REFRESHES: usize = 20;
/// The LAN host's side of the router and its subnets.
const LAN_PORT: &str = "lan0";
const LAN_PREFIXES: &str = "10.0.1.0/24,fd00:1::/64";
const LAN_HOST_V4: &str = "10.0.1.2";

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        println!("benches/devices.rs is a benchmark, not a test: `cargo bench --bench devices`");
        return;
    }
    let only = std::env::var("NETMETER_BENCH_ONLY").ok();
    let run = |part: &str| only.as_deref().is_none_or(|o| o == part);
    let started = Instant::now();
    let net = Network::build(Topology {
        // `reference` (on lan1, where netmeter has no chains) is the
        // baseline the rule costs are paired with.
        lan: vec![LanHost::dual("lan"), LanHost::dual("reference")],
        bridge: None,
    });
    let mut refresh = Vec::new();
    if run("refresh") {
        for n in [1_000, 10_000] {
            refresh.push((n, refresh_cpu(&net.router, n)));
        }
    }
    let mut daemon = Vec::new();
    if run("daemon") {
        for n in [0, 1_000, 10_000] {
            daemon.push(daemon_run(&net.router, n));
        }
    }
    let mut forwarding = Vec::new();
    if run("forwarding") {
        for variant in VARIANTS {
            let setups = [
                Setup::None,
                Setup::Netmeter,
                Setup::Conntrack,
                Setup::Before,
                Setup::Yamon,
            ];
            forwarding.push((variant, ROUNDS, forward(&net, &variant, &setups, ROUNDS)));
        }
    }
    let mut rules = BTreeMap::new();
    if run("rules") {
        rules = rule_costs(&net);
    }
    let mut api = Vec::new();
    if run("api") {
        for n in [1_000, 10_000] {
            api.push((n, api_latency(&net.router, n)));
        }
    }
    report(
        &refresh,
        &daemon,
        &forwarding,
        &rules,
        &api,
        started.elapsed(),
    );
}

type Kv = BTreeMap<String, f64>;

fn parse_kv(line: &str) -> Kv {
    line.split_whitespace()
        .filter_map(|w| w.split_once('='))
        .map(|(k, v)| (k.to_string(), v.parse().unwrap()))
        .collect()
}

fn progress(what: &str) {
    eprintln!("bench: {what}");
}

/// Fills netmeter's IPv4 sets with `n` devices, one element sent and one
/// received each, as a LAN of IPv4 devices talking to the world would.
fn populate(router: &Host, n: u64) {
    for set in ["sent4", "received4"] {
        router.run(&format!("nft_populate {set} {n}"));
    }
}

fn refresh_cpu(router: &Host, devices: u64) -> Kv {
    progress(&format!("refresh CPU time at {devices} devices"));
    let max = devices.max(1024);
    router.run(&format!("netmeter_install {LAN_PORT} {max} {LAN_PREFIXES}"));
    populate(router, devices);
    let kv = parse_kv(&router.run(&format!(
        "bench_refresh {REFRESH_RUNS} {max} {REFRESH_PAUSE_MS}"
    )));
    router.run("nft_delete netdev netmeter");
    assert_eq!(kv["elements"], 2.0 * devices as f64, "{kv:?}");
    assert_eq!(kv["devices"], devices as f64, "{kv:?}");
    // No traffic reaches them: bytes come from the counters' initial values.
    assert_eq!(kv["with_bytes"], devices as f64, "{kv:?}");
    kv
}

fn status(router: &Host, api: &str) -> serde_json::Value {
    let answer = router.run(&format!("http_get {api} /api/v1/status"));
    let (_, body) = answer.split_once(' ').unwrap();
    serde_json::from_str(body).unwrap()
}

fn refreshes(router: &Host, api: &str) -> u64 {
    status(router, api)["refreshes"].as_u64().unwrap()
}

fn wait_refreshes(router: &Host, api: &str, count: u64) {
    let target = refreshes(router, api) + count;
    while refreshes(router, api) < target {
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// VmHWM and VmRSS in KiB.
fn rss(pid: u32) -> (u64, u64) {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let field = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no {name} in /proc/{pid}/status"))
    };
    (field("VmHWM:"), field("VmRSS:"))
}

/// CPU time of the daemon's main thread (the one that refreshes), in ms:
/// the scheduler's own nanosecond sum (`se.sum_exec_runtime`).
fn main_thread_cpu_ms(pid: u32) -> f64 {
    let path = format!("/proc/{pid}/task/{pid}/sched");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    text.lines()
        .find_map(|l| l.strip_prefix("se.sum_exec_runtime"))
        .and_then(|v| v.trim_start_matches([' ', ':']).trim().parse().ok())
        .unwrap_or_else(|| panic!("no se.sum_exec_runtime in {path}"))
}

/// The daemon with `devices` synthetic devices in its sets.
struct DaemonRun {
    devices: u64,
    /// VmHWM and VmRSS, KiB.
    hwm: u64,
    rss: u64,
    /// CPU time of its main thread per refresh, ms: median and p90.
    cpu_median: f64,
    cpu_p90: f64,
}

/// The daemon binary: the release build, or NETMETER_BENCH_DAEMON (such as
/// the static musl build that OpenWrt ships).
fn daemon_binary() -> PathBuf {
    match std::env::var_os("NETMETER_BENCH_DAEMON") {
        Some(path) => std::fs::canonicalize(&path)
            .unwrap_or_else(|e| panic!("NETMETER_BENCH_DAEMON={path:?}: {e}")),
        None => testbed::netmeter::binary(),
    }
}

/// The daemon (refresh_interval 1, listening on 127.0.0.1:9750) with
/// `devices` synthetic devices in its sets, once it has read them all.
fn daemon_with(router: &Host, devices: u64) -> (Daemon, Scratch) {
    let scratch = Scratch::new();
    let config = format!(
        "config netmeter 'main'\n\toption refresh_interval '1'\n\toption listen '127.0.0.1:9750'\n\
         \tlist lan_interface '{LAN_PORT}'\n\toption max_devices '{}'\n",
        devices.max(1024)
    );
    let d = Daemon::start_binary(&daemon_binary(), router, &scratch, &config);
    // The daemon installed (replaced) its table at start: fill it now.
    populate(router, devices);
    let start = Instant::now();
    while status(router, &d.api)["per_device"]["tracked_elements"] != 2 * devices {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "the daemon never read the elements:\n{}",
            d.log_text()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    (d, scratch)
}

fn daemon_run(router: &Host, devices: u64) -> DaemonRun {
    progress(&format!("the daemon at {devices} devices"));
    let (d, _scratch) = daemon_with(router, devices);
    let pid = d.child.id();
    wait_refreshes(router, &d.api, 3);
    // Between two refreshes the main thread only waits: the CPU time it
    // gained from one completed refresh to the next is one refresh.
    let mut cpu = Vec::new();
    let mut last = (refreshes(router, &d.api), main_thread_cpu_ms(pid));
    while cpu.len() < DAEMON_REFRESHES {
        std::thread::sleep(Duration::from_millis(50));
        let n = refreshes(router, &d.api);
        if n != last.0 {
            let now = main_thread_cpu_ms(pid);
            if n == last.0 + 1 {
                cpu.push(now - last.1);
            }
            last = (n, now);
        }
    }
    let (cpu_median, cpu_p90) = median_p90(cpu);
    let (hwm, rss) = rss(pid);
    drop(d);
    router.run("nft_delete netdev netmeter");
    DaemonRun {
        devices,
        hwm,
        rss,
        cpu_median,
        cpu_p90,
    }
}

/// What the router runs besides conntrack and masquerade, which it runs in
/// every setup (`none` included): every flow is tracked and NATed in all.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
enum Setup {
    None,
    /// Table `netdev netmeter` with its sets and chains but only some of
    /// its rules' parts (`netmeter_variant` in tests/testbed/bench.rs).
    Hooks,
    Update,
    Protocol,
    Prefixes,
    /// netmeter's rules before the interval sets (up to e20c26f).
    Before,
    Netmeter,
    /// The conntrack placement's per-packet part: its table (`inet
    /// netmeter`, one conntrack-state load in forward) and
    /// `net.netfilter.nf_conntrack_acct=1` in the router's namespace,
    /// conntrack's per-flow counters, which that placement reads.
    Conntrack,
    Yamon,
}

impl Setup {
    fn name(self) -> &'static str {
        match self {
            Setup::None => "no accounting",
            Setup::Hooks => "  hooks, no rules",
            Setup::Update => "  + set update",
            Setup::Protocol => "  + protocol test",
            Setup::Prefixes => "  + far-end prefixes",
            Setup::Before => "netmeter before (e20c26f)",
            Setup::Netmeter => "netmeter (netdev)",
            Setup::Conntrack => "conntrack placement (acct + its table)",
            Setup::Yamon => "YAMon-style linear rules",
        }
    }

    fn variant(self) -> Option<&'static str> {
        match self {
            Setup::Hooks => Some("hooks"),
            Setup::Update => Some("update"),
            Setup::Protocol => Some("protocol"),
            Setup::Prefixes => Some("prefixes"),
            Setup::Before => Some("before"),
            _ => None,
        }
    }

    /// 999 synthetic devices; the LAN host moving the traffic is the 1,000th.
    fn install(self, router: &Host) {
        match self {
            Setup::None => {}
            Setup::Netmeter => {
                router.run(&format!("netmeter_install {LAN_PORT} 1024 {LAN_PREFIXES}"));
                populate(router, 999);
            }
            Setup::Conntrack => {
                // Per namespace; conntrack adds the counters to flows that
                // start from now on, and every transfer is a new flow.
                router.run(&format!("sysctl {CONNTRACK_ACCT} 1"));
                router.run("netmeter_conntrack_install");
            }
            Setup::Yamon => {
                router.run(&format!("yamon 999 {LAN_HOST_V4}"));
            }
            variant => {
                let name = variant.variant().unwrap();
                router.run(&format!(
                    "netmeter_variant {name} {LAN_PORT} 1024 {LAN_PREFIXES}"
                ));
                populate(router, 999);
            }
        }
    }

    fn remove(self, router: &Host) {
        match self {
            Setup::None => {}
            Setup::Conntrack => {
                router.run(&format!("sysctl {CONNTRACK_ACCT} 0"));
                router.run("nft_delete inet netmeter");
            }
            Setup::Netmeter | Setup::Before => {
                // The host's own element joined the 999 synthetic ones (and
                // in received4 too, unless it only sent UDP).
                let sent = router.run("nft_elements netmeter sent4");
                let received = router.run("nft_elements netmeter received4");
                assert_eq!(sent.matches(';').count(), 1000, "sent4: {sent}");
                let received = received.matches(';').count();
                assert!((999..=1000).contains(&received), "received4: {received}");
                router.run("nft_delete netdev netmeter");
            }
            Setup::Yamon => {
                router.run("nft_delete inet yamon");
            }
            // Without the protocol test, other packets may make elements.
            _ => {
                router.run("nft_delete netdev netmeter");
            }
        }
    }
}

const CONNTRACK_ACCT: &str = "net/netfilter/nf_conntrack_acct";

/// Per setup: (upload Gbit/s, download Gbit/s) of every round.
type Throughput = BTreeMap<Setup, Vec<Transfers>>;

/// One round of one setup: each way, Gbit/s of payload and CPU ns per
/// payload KB.
#[derive(Clone, Copy, Debug)]
struct Transfers {
    up: f64,
    down: f64,
    up_cpu: f64,
    down_cpu: f64,
}

/// How the end hosts send.
#[derive(Clone, Copy)]
struct Variant {
    label: &'static str,
    /// TSO and GSO on (veth's default): the router forwards 64 KiB packets.
    gso: bool,
    /// Payload bytes per transfer, each way.
    transfer: u64,
}

const VARIANTS: [Variant; 2] = [
    Variant {
        label: "64 KiB GSO packets (veth default)",
        gso: true,
        transfer: 1_000_000_000,
    },
    Variant {
        label: "MTU-sized packets (TSO/GSO off on the end hosts)",
        gso: false,
        transfer: 200_000_000,
    },
];

/// CPU time, ns, of everything that moves the benchmark's packets: both end
/// hosts' agents (the sender's system calls carry the router's forwarding
/// too, as veth runs the receiving side's softirq in the sender's context)
/// and the kernel's softirq threads, which take over under load. On a
/// shared machine this varies far less than wall time: other tenants'
/// load steals time from a transfer but does not add CPU to it.
fn path_cpu_ns(net: &Network, softirqd: &[u32]) -> u64 {
    let agents: u64 = [&net.lan[0], &net.wan]
        .iter()
        .map(|h| h.run("cpu").parse::<u64>().unwrap())
        .sum();
    let threads: u64 = softirqd
        .iter()
        .filter_map(|pid| std::fs::read_to_string(format!("/proc/{pid}/schedstat")).ok())
        .filter_map(|s| s.split_whitespace().next()?.parse::<u64>().ok())
        .sum();
    agents + threads
}

/// The pids of the `ksoftirqd/N` kernel threads.
fn softirq_threads() -> Vec<u32> {
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/comm"))
                .is_ok_and(|c| c.starts_with("ksoftirqd/"))
        })
        .collect()
}

/// Times one transfer: (Gbit/s of payload, CPU ns per payload KB).
fn timed(net: &Network, softirqd: &[u32], line: &str, bytes: u64) -> (f64, f64) {
    let cpu = path_cpu_ns(net, softirqd);
    let start = Instant::now();
    net.lan[0].run(line);
    let wall = start.elapsed().as_secs_f64();
    let cpu = path_cpu_ns(net, softirqd) - cpu;
    (
        bytes as f64 * 8.0 / wall / 1e9,
        cpu as f64 / (bytes as f64 / 1e3),
    )
}

fn forward(net: &Network, variant: &Variant, setups: &[Setup], rounds: usize) -> Throughput {
    let lan = &net.lan[0];
    // The baseline has no conntrack counters (the kernel's default).
    let acct = net.router.run(&format!("sysctl_get {CONNTRACK_ACCT}"));
    assert_eq!(acct, "0", "{CONNTRACK_ACCT} in the router namespace");
    let offload = if variant.gso { "on" } else { "off" };
    lan.run(&format!("offload eth0 {offload}"));
    net.wan.run(&format!("offload eth0 {offload}"));
    let bytes = variant.transfer;
    let softirqd = softirq_threads();
    let mut results = Throughput::new();
    // A first transfer warms up the path (neighbours, conntrack, TCP).
    lan.run(&format!("tcp_upload {WAN_HOST_V4} {PORT} 10000000"));
    for round in 0..rounds {
        progress(&format!(
            "forwarding, {}: round {} of {rounds}",
            variant.label,
            round + 1
        ));
        // Each round starts with the next setup, cancelling drift.
        for k in 0..setups.len() {
            let setup = setups[(round + k) % setups.len()];
            setup.install(&net.router);
            let (up, up_cpu) = timed(
                net,
                &softirqd,
                &format!("tcp_upload {WAN_HOST_V4} {PORT} {bytes}"),
                bytes,
            );
            let (down, down_cpu) = timed(
                net,
                &softirqd,
                &format!("tcp_download {WAN_HOST_V4} {PORT} {bytes}"),
                bytes,
            );
            setup.remove(&net.router);
            results.entry(setup).or_default().push(Transfers {
                up,
                down,
                up_cpu,
                down_cpu,
            });
        }
    }
    lan.run("offload eth0 on");
    net.wan.run("offload eth0 on");
    results
}

/// Per setup, each pair's (IPv4, IPv6) CPU per datagram through lan0 (the
/// setup's chains) over the same through lan1 (none).
type RuleCosts = BTreeMap<Setup, Vec<(f64, f64)>>;

/// What each part of netmeter's rules costs: UDP datagrams of 1,500-byte
/// packets to the WAN host, back to back, from the LAN host on lan0
/// (through the variant's ingress chain, the sent rules) and from the
/// reference host on lan1 (no chains) in turn, a fraction of a second
/// each, so both see the same load of this shared machine and their
/// ratio cancels it. Setups in rotated order each round.
fn rule_costs(net: &Network) -> RuleCosts {
    let setups = [
        Setup::None,
        Setup::Hooks,
        Setup::Update,
        Setup::Protocol,
        Setup::Prefixes,
        Setup::Before,
        Setup::Netmeter,
    ];
    let blast = |host: &Host, ip: &str, payload: u64| -> f64 {
        host.run(&format!("udp_blast {ip} {PORT} {RULE_DATAGRAMS} {payload}"))
            .parse()
            .unwrap()
    };
    // 1,500-byte packets: 20 + 8 or 40 + 8 bytes of headers.
    let pair =
        |ip: &str, payload: u64| blast(&net.lan[0], ip, payload) / blast(&net.lan[1], ip, payload);
    let mut costs = RuleCosts::new();
    pair(WAN_HOST_V4, 1472);
    for round in 0..RULE_ROUNDS {
        progress(&format!("rule costs: round {} of {RULE_ROUNDS}", round + 1));
        for k in 0..setups.len() {
            let setup = setups[(round + k) % setups.len()];
            setup.install(&net.router);
            for _ in 0..RULE_PAIRS {
                let v4 = pair(WAN_HOST_V4, 1472);
                let v6 = pair(WAN_HOST_V6, 1452);
                costs.entry(setup).or_default().push((v4, v6));
            }
            setup.remove(&net.router);
        }
    }
    costs
}

/// `GET /api/v1/devices` latency from the daemon with `devices` devices.
fn api_latency(router: &Host, devices: u64) -> Kv {
    progress(&format!("the API at {devices} devices"));
    let (d, _scratch) = daemon_with(router, devices);
    wait_refreshes(router, &d.api, 2);
    let kv = parse_kv(&router.run(&format!(
        "http_latency {} /api/v1/devices {API_REQUESTS}",
        d.api
    )));
    drop(d);
    router.run("nft_delete netdev netmeter");
    kv
}

fn median(v: Vec<f64>) -> f64 {
    median_p90(v).0
}

fn median_p90(mut v: Vec<f64>) -> (f64, f64) {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    let median = if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    };
    (median, v[(n * 9).div_ceil(10) - 1])
}

fn met(ok: bool) -> &'static str {
    if ok { "met" } else { "MISSED" }
}

fn report(
    refresh: &[(u64, Kv)],
    daemon: &[DaemonRun],
    forwarding: &[(Variant, usize, Throughput)],
    rules: &RuleCosts,
    api: &[(u64, Kv)],
    took: Duration,
) {
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    println!();
    println!(
        "netmeter per-device benchmark: Linux {}, {cpus} CPUs, {:.0} s",
        kernel.trim(),
        took.as_secs_f64()
    );
    if !refresh.is_empty() {
        report_refresh(refresh);
    }
    if !daemon.is_empty() {
        report_daemon(daemon);
    }
    for (variant, rounds, throughput) in forwarding {
        report_forwarding(variant, *rounds, throughput);
    }
    if !rules.is_empty() {
        report_rules(rules);
    }
    if !api.is_empty() {
        report_api(api);
    }
}

fn report_rules(rules: &RuleCosts) {
    println!();
    println!(
        "Rule costs: blasts of {RULE_DATAGRAMS} UDP datagrams (1,500-byte packets) to the WAN host, lan0 (the setup's chains) and lan1 (none) in turn, {} pairs per setup ({RULE_ROUNDS} rounds):",
        RULE_ROUNDS * RULE_PAIRS
    );
    println!("  median of lan0's CPU per packet over lan1's, relative to no accounting's:");
    println!("  {:<26} {:>8} {:>8}", "setup", "IPv4", "IPv6");
    let m = |s: &Setup| {
        let v = &rules[s];
        (
            median(v.iter().map(|r| r.0).collect()),
            median(v.iter().map(|r| r.1).collect()),
        )
    };
    let (base4, base6) = m(&Setup::None);
    for setup in rules.keys() {
        let (v4, v6) = m(setup);
        // The partial variants have IPv4 rules only.
        let v6 = if matches!(setup, Setup::Update | Setup::Protocol | Setup::Prefixes) {
            "-".to_string()
        } else {
            format!("{:.3}", v6 / base6)
        };
        println!("  {:<26} {:>8.3} {v6:>8}", setup.name(), v4 / base4);
    }
    println!(
        "  (1.050: 5 % more CPU per packet than no accounting; a CPU-bound router's throughput ratio is its inverse)"
    );
    println!("  every pair, IPv4/IPv6 (lan0 over lan1):");
    for (setup, each) in rules {
        let pairs: Vec<String> = each.iter().map(|(a, b)| format!("{a:.3}/{b:.3}")).collect();
        println!("  {:<26} {}", setup.name(), pairs.join(" "));
    }
}

fn report_api(api: &[(u64, Kv)]) {
    println!();
    println!(
        "GET /api/v1/devices from the daemon ({}), refresh_interval 1, {API_REQUESTS} requests one after another, each on a new connection over loopback, ms:",
        daemon_binary().display()
    );
    println!(
        "  {:>7} {:>10} {:>8} {:>8} {:>8}  target",
        "devices", "body bytes", "p50", "p99", "max"
    );
    for (devices, kv) in api {
        let target = if *devices == 1_000 {
            format!("p99 <= 10 ms: {}", met(kv["p99"] <= 10.0))
        } else {
            String::new()
        };
        println!(
            "  {devices:>7} {:>10} {:>8.2} {:>8.2} {:>8.2}  {target}",
            kv["bytes"], kv["p50"], kv["p99"], kv["max"]
        );
    }
}

fn report_refresh(refresh: &[(u64, Kv)]) {
    println!();
    println!(
        "Refresh (read + ingest) in the router namespace, CPU time of the thread, {REFRESH_RUNS} runs {REFRESH_PAUSE_MS} ms apart, ms:"
    );
    println!(
        "  {:>7} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8}  target",
        "devices", "elements", "median", "p90", "read", "ingest", "wall", "wall p90", "first"
    );
    for (devices, kv) in refresh {
        let target = if *devices <= 1_000 { 5.0 } else { 40.0 };
        println!(
            "  {devices:>7} {:>8} {:>8.2} {:>8.2} {:>8.2} {:>8.2} {:>8.2} {:>8.2} {:>8.2}  <= {target} ms: {}",
            kv["elements"],
            kv["cpu_med"],
            kv["cpu_p90"],
            kv["read_med"],
            kv["ingest_med"],
            kv["wall_med"],
            kv["wall_p90"],
            kv["first"],
            met(kv["cpu_med"] <= target),
        );
    }
    println!(
        "  (read and ingest: medians of each part; first: the first run, which creates every record)"
    );
}

fn report_daemon(daemon: &[DaemonRun]) {
    println!();
    println!(
        "The daemon ({}), refresh_interval 1, max_devices max(1024, devices):",
        daemon_binary().display()
    );
    println!(
        "  {:>7} {:>10} {:>10} {:>12} {:>12}  target",
        "devices", "VmHWM KiB", "VmRSS KiB", "refresh ms", "refresh p90"
    );
    for run in daemon {
        let target = if run.devices == 1_000 {
            format!("VmHWM <= 4096 KiB: {}", met(run.hwm <= 4096))
        } else {
            String::new()
        };
        println!(
            "  {:>7} {:>10} {:>10} {:>12.2} {:>12.2}  {target}",
            run.devices, run.hwm, run.rss, run.cpu_median, run.cpu_p90
        );
    }
    println!(
        "  (refresh: CPU time of the main thread per whole refresh, {DAEMON_REFRESHES} refreshes)"
    );
}

fn report_forwarding(variant: &Variant, rounds: usize, throughput: &Throughput) {
    println!();
    println!(
        "Forwarding, {}: one TCP flow of {} MB each way, 1,000 devices, {rounds} rounds, medians:",
        variant.label,
        variant.transfer / 1_000_000
    );
    println!(
        "  {:<26} {:>7} {:>9} {:>9} {:>9} | {:>7} {:>9} {:>9} {:>9}",
        "setup",
        "up Gb/s",
        "dn Gb/s",
        "up ratio",
        "dn ratio",
        "up CPU",
        "dn CPU",
        "up ratio",
        "dn ratio"
    );
    let median_of =
        |s: &Setup, f: fn(&Transfers) -> f64| median(throughput[s].iter().map(f).collect());
    let base = |f| median_of(&Setup::None, f);
    type Field = fn(&Transfers) -> f64;
    let (up, down, up_cpu, down_cpu): (Field, Field, Field, Field) =
        (|t| t.up, |t| t.down, |t| t.up_cpu, |t| t.down_cpu);
    for setup in throughput.keys() {
        let m = |f| median_of(setup, f);
        // CPU ratio: the baseline's CPU per byte over this setup's, so that
        // it reads as the throughput ratio a CPU-bound router would see.
        println!(
            "  {:<26} {:>7.2} {:>9.2} {:>9.3} {:>9.3} | {:>7.1} {:>9.1} {:>9.3} {:>9.3}",
            setup.name(),
            m(up),
            m(down),
            m(up) / base(up),
            m(down) / base(down),
            m(up_cpu),
            m(down_cpu),
            base(up_cpu) / m(up_cpu),
            base(down_cpu) / m(down_cpu),
        );
    }
    println!(
        "  (Gb/s: payload over wall time; CPU: ns of CPU per payload KB on the packets' path)"
    );
    println!("  per round, Gb/s up/down and CPU up/down:");
    for (setup, each) in throughput {
        let rounds: Vec<String> = each
            .iter()
            .map(|t| {
                format!(
                    "{:.1}/{:.1} {:.0}/{:.0}",
                    t.up, t.down, t.up_cpu, t.down_cpu
                )
            })
            .collect();
        println!("  {:<26} {}", setup.name(), rounds.join(", "));
    }
}
