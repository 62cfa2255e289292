//! Proof on real kernels, in throwaway VMs (tests/vm/harness.rs boots
//! them; tests/vm/scenario.rs runs inside).
//!
//! The offload scenario boots Debian's x86_64 kernel, which has software
//! flow offloading (this machine's kernel may not), and in it the test
//! bed's network: two dual-stack LAN hosts ⇄ router ⇄ WAN host, with
//! fw4-like rules on the router — masquerade, a flowtable with `counter`
//! on the LAN ports and the WAN, `flow add @ft` for TCP and UDP in the
//! forward chain. Known TCP and UDP transfers both ways over IPv4 and
//! IPv6; netmeter must match each host's IP-layer bytes within 0.5 %
//! while the flows really are offloaded, and with `placement 'forward'`
//! it must miss them and `netmeter check` must say so. With `placement
//! 'conntrack'` it must match too (the flowtable's `counter` keeps
//! conntrack's counters growing), and with a flowtable without `counter`
//! `netmeter check` must exit 1 naming it and the fix.
//!
//! The mipsel scenario boots Debian's mipsel `4kc-malta` kernel on qemu's
//! Malta board with a 24Kc CPU and runs the mipsel router build there
//! (nightly build-std, panic=immediate-abort, cargo-zigbuild): netmeter
//! installs its netdev tables, counts the same kind of traffic within
//! 0.5 %, answers its API and /metrics on loopback, and after a stop
//! (commit) and a start from flash alone its totals continue exactly.
//!
//! The queues scenario boots Debian's x86_64 kernel, which has fq_codel
//! (built in) and `sch_cake` (this machine's has neither), with Debian's
//! `tc` in the initramfs: on a shaped link that drops (fq_codel under htb
//! on the router's WAN, cake shaping its LAN port), every qdisc's figures
//! in `netmeter queues --json` must equal `tc -s -j qdisc show`'s, the
//! kind-specific statistics of fq_codel and cake (per tin) too, and every
//! statistic tc prints for them must be one netmeter gives.
//!
//! The VM tests boot a kernel (about a minute with the first build), so
//! they are ignored by plain `cargo test`: `cargo test --test vm --
//! --ignored` runs them, and so does `.ci/run`, where a missing qemu or
//! kernel package is a failure (CI=true); elsewhere they skip loudly.

mod harness;

use harness::{Arch, Cpio, Vm};
use serde_json::Value;
use std::collections::BTreeMap;
use std::time::Duration;

/// Per-device error allowed against the hosts' L3 ground truth.
const TOLERANCE: f64 = 0.005;

/// What the offload scenario loads in the guest (dependencies follow).
const OFFLOAD_MODULES: &[&str] = &[
    "veth",
    "bridge",
    "nf_tables",
    "nft_objref",
    "nft_chain_nat",
    "nft_masq",
    "nf_flow_table_inet",
    "nft_flow_offload",
    // The conntrack placement: its table's ct expression, and ctnetlink.
    "nft_ct",
    "nf_conntrack_netlink",
];

fn u(v: &Value, field: &str) -> u64 {
    v[field]
        .as_u64()
        .unwrap_or_else(|| panic!("{field} missing in {v}"))
}

/// Relative error of netmeter's figure against the truth.
fn error(counted: u64, truth: u64) -> f64 {
    (counted as f64 - truth as f64).abs() / truth.max(1) as f64
}

/// Each host's tx and rx as (what, counted, truth, error).
fn per_device(result: &Value) -> Vec<(String, u64, u64, f64)> {
    let mut out = Vec::new();
    for host in result["hosts"].as_array().expect("hosts") {
        for dir in ["tx", "rx"] {
            let counted = host[format!("{dir}_counted")].as_u64().unwrap_or(0);
            let truth = u(host, &format!("{dir}_truth"));
            out.push((
                format!("{} {dir}", host["name"].as_str().unwrap()),
                counted,
                truth,
                error(counted, truth),
            ));
        }
    }
    out
}

/// What makes a case's per-device counts wrong: none when every device's
/// tx and rx lie within `TOLERANCE` of the truth.
fn accuracy_failures(result: &Value) -> Vec<String> {
    per_device(result)
        .into_iter()
        .filter(|(_, _, _, err)| *err > TOLERANCE)
        .map(|(what, counted, truth, err)| {
            format!(
                "{what}: netmeter {counted}, ground truth {truth} ({:.3}% off)",
                err * 100.0
            )
        })
        .collect()
}

fn assert_accurate(result: &Value) {
    let failures = accuracy_failures(result);
    assert!(
        failures.is_empty(),
        "{}: per-device counts off by more than {}%:\n  {}\ndaemon log:\n{}",
        result["case"],
        TOLERANCE * 100.0,
        failures.join("\n  "),
        result["daemon_log"].as_str().unwrap_or("")
    );
}

/// The flows went through the flowtable: the forward chain saw almost
/// none of the bytes, and conntrack marked flows `[OFFLOAD]`.
fn assert_offloaded(result: &Value) {
    let moved: u64 = per_device(result)
        .iter()
        .map(|(_, _, truth, _)| truth)
        .sum();
    let forwarded = u(&result["forward_chain"], "bytes");
    assert!(
        (forwarded as f64) < 0.01 * moved as f64,
        "{}: the forward chain saw {forwarded} of {moved} bytes: flows were not offloaded",
        result["case"]
    );
    let offloaded = u(result, "conntrack_offloaded_max");
    assert!(
        offloaded >= 1,
        "{}: conntrack never showed an [OFFLOAD] entry during the transfers",
        result["case"]
    );
}

fn findings<'a>(result: &'a Value, topic: &str) -> Vec<&'a Value> {
    result["check"]["findings"]
        .as_array()
        .unwrap_or_else(|| panic!("no check report in {}", result["check"]))
        .iter()
        .filter(|f| f["topic"] == topic)
        .collect()
}

fn summary(result: &Value) -> String {
    let mut s = format!(
        "{} (kernel {}, {:.1} s, traffic {:.1} s):",
        result["case"].as_str().unwrap(),
        result["kernel"].as_str().unwrap_or("?"),
        result["seconds"].as_f64().unwrap_or(0.0),
        result["traffic_seconds"].as_f64().unwrap_or(0.0),
    );
    for (what, counted, truth, err) in per_device(result) {
        s.push_str(&format!(
            "\n    {what:10} truth {truth:>11} netmeter {counted:>11} error {:.4}%",
            err * 100.0
        ));
    }
    if !result["forward_chain"].is_null() {
        s.push_str(&format!(
            "\n    forward chain {} bytes / {} packets; most [OFFLOAD] conntrack entries at once: {}",
            result["forward_chain"]["bytes"],
            result["forward_chain"]["packets"],
            result["conntrack_offloaded_max"]
        ));
    }
    s
}

#[test]
#[ignore = "boots a VM: cargo test --test vm -- --ignored (CI runs it)"]
fn offloaded_flows_are_counted_per_device_within_half_a_percent_on_a_debian_kernel() {
    let cases = [
        "offload-auto",
        "offload-forward",
        "plain-auto",
        "offload-auto-bridge",
        "offload-auto-bridge-ports",
        "offload-conntrack",
        "uncounted-conntrack",
    ];
    let vm = Vm {
        arch: Arch::X86_64,
        modules: OFFLOAD_MODULES,
        programs: &[],
        cases: &cases,
        limit: Duration::from_secs(600),
    };
    let run = match vm.run() {
        Ok(run) => run,
        Err(why) => return harness::unavailable("offload scenario", why),
    };
    eprintln!(
        "booted {} ({}); timings {:?}",
        run.kernel_package,
        run.log_path.display(),
        run.timings
    );
    for case in cases {
        case_result(&run, case);
    }

    // Netdev placement (what `auto` picks on 5.16+): exact while offloaded.
    let auto = run.result("offload-auto");
    assert_offloaded(auto);
    assert_accurate(auto);
    let offload = findings(auto, "offload");
    assert!(
        offload.iter().all(|f| f["ok"] == true)
            && offload[0]["message"]
                .as_str()
                .unwrap()
                .contains("offloaded flows are counted"),
        "{offload:?}"
    );
    assert_eq!(auto["check_exit"], 0, "check: {}", auto["check"]);

    // The forward chain never sees offloaded packets: netmeter's counts
    // there are far off, and `check` says why.
    let forward = run.result("offload-forward");
    assert_offloaded(forward);
    let counted: u64 = per_device(forward).iter().map(|d| d.1).sum();
    let truth: u64 = per_device(forward).iter().map(|d| d.2).sum();
    assert!(
        (counted as f64) < 0.5 * truth as f64,
        "forward placement counted {counted} of {truth} bytes although flows were offloaded"
    );
    assert!(!accuracy_failures(forward).is_empty());
    let warning = findings(forward, "offload");
    assert!(
        warning.iter().any(|f| f["ok"] == false
            && f["message"].as_str().unwrap().contains("forward chain")
            && f["message"]
                .as_str()
                .unwrap()
                .contains("offloaded packets skip")),
        "check must warn that offloaded traffic is invisible: {warning:?}"
    );
    assert_eq!(forward["check_exit"], 1, "check: {}", forward["check"]);

    // Without a flowtable, the same traffic (the baseline).
    let plain = run.result("plain-auto");
    assert!(plain["forward_chain"].is_null());
    assert_accurate(plain);

    // OpenWrt's usual LAN: the ports in br-lan, `lan_interface br-lan`,
    // and fw4's flowtable on the ports (it lists lower devices). Offloaded
    // packets go port ⇄ WAN and never pass br-lan's own hooks, so netmeter
    // counts on the ports (collect::devices::hook_devices): exact, and
    // check is content. (Before that, 99.9 % of these bytes were missed.)
    let bridged = run.result("offload-auto-bridge");
    assert_offloaded(bridged);
    assert_accurate(bridged);
    assert_eq!(bridged["check_exit"], 0, "check: {}", bridged["check"]);

    // The ports listed by hand, with the LAN's subnets given: the same.
    let on_ports = run.result("offload-auto-bridge-ports");
    assert_offloaded(on_ports);
    assert_accurate(on_ports);
    assert_eq!(on_ports["check_exit"], 0, "check: {}", on_ports["check"]);

    // The conntrack placement reads conntrack's per-flow counters, which a
    // flowtable with `counter` keeps growing while it forwards: exact.
    let conntrack = run.result("offload-conntrack");
    assert_offloaded(conntrack);
    assert_accurate(conntrack);
    assert_eq!(conntrack["check_exit"], 0, "check: {}", conntrack["check"]);
    let placement = findings(conntrack, "placement");
    assert!(
        placement[0]["message"]
            .as_str()
            .unwrap()
            .starts_with("conntrack"),
        "{placement:?}"
    );

    // Without `counter` the offloaded flows' counters stop: netmeter counts
    // far too little, and check names the flowtable and the fix.
    let uncounted = run.result("uncounted-conntrack");
    assert_offloaded(uncounted);
    let counted: u64 = per_device(uncounted).iter().map(|d| d.1).sum();
    let truth: u64 = per_device(uncounted).iter().map(|d| d.2).sum();
    assert!(
        (counted as f64) < 0.5 * truth as f64,
        "conntrack counted {counted} of {truth} bytes through a flowtable without counter"
    );
    let named = findings(uncounted, "offload");
    assert!(
        named.iter().any(|f| f["ok"] == false
            && f["message"].as_str().unwrap().contains("no 'counter' flag")
            && f["message"].as_str().unwrap().contains("counter;")),
        "check must name the flowtable without counter and the fix: {named:?}"
    );
    assert_eq!(uncounted["check_exit"], 1, "check: {}", uncounted["check"]);
}

/// A case's verdict, which must carry no error; its summary goes to stderr.
fn case_result<'a>(run: &'a harness::Run, case: &str) -> &'a Value {
    let result = run.result(case);
    assert!(
        result["error"].is_null(),
        "{case} failed in the guest: {}\nconsole:\n{}",
        result["error"],
        run.log
    );
    eprintln!("{}", summary(result));
    result
}

/// What the router scenario loads in the guest (dependencies follow).
const ROUTER_MODULES: &[&str] = &[
    "veth",
    "nf_tables",
    "nft_objref",
    "nft_chain_nat",
    "nft_masq",
];

/// One device's (tx, rx) totals in a `restart` list.
fn totals(list: &Value, mac: &str) -> (u64, u64) {
    let d = list
        .as_array()
        .and_then(|all| all.iter().find(|d| d["mac"] == mac))
        .unwrap_or_else(|| panic!("no {mac} in {list}"));
    (u(d, "tx"), u(d, "rx"))
}

#[test]
#[ignore = "boots a VM: cargo test --test vm -- --ignored (CI runs it)"]
fn the_mipsel_router_build_counts_persists_and_answers_on_a_mips_kernel() {
    let case = "plain-auto-small-restart";
    let vm = Vm {
        arch: Arch::Mipsel,
        modules: ROUTER_MODULES,
        programs: &[],
        cases: &[case],
        limit: Duration::from_secs(900),
    };
    let run = match vm.run() {
        Ok(run) => run,
        Err(why) => return harness::unavailable("mipsel scenario", why),
    };
    eprintln!(
        "booted {} ({}); timings {:?}",
        run.kernel_package,
        run.log_path.display(),
        run.timings
    );
    let result = case_result(&run, case);
    // Its tables installed at netdev ingress/egress, and exact.
    let placement = findings(result, "placement");
    assert!(
        placement[0]["message"]
            .as_str()
            .unwrap()
            .contains("priority -500"),
        "{placement:?}"
    );
    assert_accurate(result);
    assert_eq!(result["check_exit"], 0, "check: {}", result["check"]);

    // The API on loopback, the state on flash, and totals that continue
    // across a stop and a start.
    let restart = &result["restart"];
    assert_eq!(restart["api"]["status_code"], "200", "{restart}");
    assert_eq!(restart["api"]["metrics_code"], "200", "{restart}");
    assert_eq!(restart["api"]["metrics_up"], true, "{restart}");
    let flash: Vec<&str> = restart["flash_files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f.as_str().unwrap())
        .collect();
    assert!(flash.contains(&"netmeter.state"), "flash holds {flash:?}");
    let log = restart["log"].as_str().unwrap();
    assert!(
        log.contains("loaded") && log.contains("flash"),
        "the restarted daemon loaded its state from flash:\n{log}"
    );
    for host in result["hosts"].as_array().unwrap() {
        let mac = host["mac"].as_str().unwrap();
        assert_eq!(
            totals(&restart["after_start"], mac),
            totals(&restart["before_stop"], mac),
            "{mac}: totals after the restart"
        );
    }
    let mac = restart["upload_host_mac"].as_str().unwrap();
    let grew = totals(&restart["after_upload"], mac).0 - totals(&restart["after_start"], mac).0;
    let truth = u(restart, "upload_truth");
    assert!(
        error(grew, truth) <= TOLERANCE,
        "after the restart netmeter counted {grew} of an upload of {truth} bytes\n{}",
        restart["log"]
    );
}

#[test]
fn module_dependencies_come_from_modinfo_and_load_first() {
    let dir = std::env::temp_dir().join(format!("netmeter-vm-modules-{}", std::process::id()));
    let sub = dir.join("kernel/net/netfilter");
    std::fs::create_dir_all(&sub).unwrap();
    let module = |name: &str, info: &str| {
        let mut ko = b"\x7fELF junk depends=not-this\0".to_vec();
        ko.extend_from_slice(format!("\0name={name}\0{info}\0vermagic=6.1\0").as_bytes());
        std::fs::write(sub.join(format!("{name}.ko")), ko).unwrap();
    };
    module("nf_tables", "depends=nfnetlink,libcrc32c");
    module("nfnetlink", "depends=");
    // A soft dependency on an algorithm: crc32c_generic provides crc32c.
    module("libcrc32c", "softdep=pre: crc32c post: nothing\0depends=");
    module("crc32c_generic", "depends=");
    module("nft_flow_offload", "depends=nf_tables,nf_flow_table");
    module("nf_flow_table", "depends=nf_tables");
    let order = harness::load_order(&dir, &["nft_flow_offload", "nf_tables"]).unwrap();
    let names: Vec<String> = order
        .iter()
        .map(|p| p.file_stem().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        names,
        [
            "nfnetlink",
            "crc32c_generic",
            "libcrc32c",
            "nf_tables",
            "nf_flow_table",
            "nft_flow_offload"
        ]
    );
    assert!(harness::load_order(&dir, &["veth"]).is_err());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn the_initramfs_is_a_newc_archive_with_padding_and_a_trailer() {
    let mut cpio = Cpio::new();
    cpio.dir("bin");
    cpio.file("bin/x", b"hello", 0o755);
    cpio.symlink("bin/sh", "busybox");
    let out = cpio.finish();
    assert_eq!(out.len() % 4, 0);
    assert!(out.starts_with(b"070701"));
    // The file entry: header, "bin/x\0" padded to 4, then its data.
    let at = out
        .windows(6)
        .position(|w| w == b"bin/x\0")
        .expect("file name");
    let header = &out[at - 110..at];
    let field = |i: usize| {
        u32::from_str_radix(
            std::str::from_utf8(&header[6 + 8 * i..14 + 8 * i]).unwrap(),
            16,
        )
        .unwrap()
    };
    assert_eq!(field(1), 0o100_755, "mode");
    assert_eq!(field(6), 5, "size");
    assert_eq!(field(11), 6, "name size with its NUL");
    let data_at = (at + 6).next_multiple_of(4);
    assert_eq!(&out[data_at..data_at + 5], b"hello");
    assert!(
        out.windows(11).any(|w| w == b"TRAILER!!!\0"),
        "ends with the trailer"
    );

    // The kernel makes no missing directory: each parent comes first, once.
    let mut cpio = Cpio::new();
    cpio.file("usr/lib/x/libz.so.1", b"z", 0o644);
    cpio.file("usr/lib/x/libc.so.6", b"c", 0o644);
    cpio.dir("usr");
    let out = cpio.finish();
    let at = |name: &str| {
        let name = format!("{name}\0");
        let found: Vec<usize> = out
            .windows(name.len())
            .enumerate()
            .filter(|(_, w)| *w == name.as_bytes())
            .map(|(i, _)| i)
            .collect();
        assert_eq!(found.len(), 1, "{name} once");
        found[0]
    };
    assert!(at("usr") < at("usr/lib") && at("usr/lib") < at("usr/lib/x"));
    assert!(at("usr/lib/x") < at("usr/lib/x/libz.so.1"));
}

#[test]
fn the_dynamic_loader_and_needed_libraries_are_read_from_an_elf_file() {
    // This test program itself: dynamically linked on a glibc host.
    let exe = std::fs::read(std::env::current_exe().unwrap()).unwrap();
    let elf = harness::ElfDynamic::read(&exe).unwrap();
    if cfg!(all(target_env = "gnu", target_arch = "x86_64")) {
        assert_eq!(elf.interp.as_deref(), Some("/lib64/ld-linux-x86-64.so.2"));
        assert!(elf.needed.iter().any(|n| n == "libc.so.6"), "{elf:?}");
    }
    assert!(harness::ElfDynamic::read(b"#!/bin/sh\n").is_err());
    assert!(harness::ElfDynamic::read(&exe[..40]).is_err(), "truncated");
}

#[test]
fn apt_depends_give_real_packages_in_order_without_virtual_ones() {
    let text = "iproute2\n |Depends: debconf\n  Depends: <debconf-2.0>\n    cdebconf\n    debconf\n  \
                Depends: libbpf1\n  PreDepends: libc6:any\n  Depends: libc6\n  Conflicts: <arpd>\n";
    assert_eq!(
        harness::parse_depends(text),
        ["debconf", "libbpf1", "libc6"]
    );
}

#[test]
fn paths_in_an_unpacked_package_follow_its_symbolic_links() {
    let root = std::env::temp_dir().join(format!("netmeter-vm-links-{}", std::process::id()));
    let lib = root.join("lib/x86_64-linux-gnu");
    std::fs::create_dir_all(&lib).unwrap();
    std::fs::create_dir_all(root.join("lib64")).unwrap();
    std::fs::write(lib.join("libbpf.so.1.1.0"), b"elf").unwrap();
    std::os::unix::fs::symlink("libbpf.so.1.1.0", lib.join("libbpf.so.1")).unwrap();
    // Absolute, as libc6's /lib64/ld-linux-x86-64.so.2: taken from the root.
    std::fs::write(lib.join("ld.so"), b"ld").unwrap();
    std::os::unix::fs::symlink("/lib/x86_64-linux-gnu/ld.so", root.join("lib64/ld.so")).unwrap();
    std::os::unix::fs::symlink("../lib/x86_64-linux-gnu/ld.so", root.join("lib64/up")).unwrap();
    let resolve = |p: &str| harness::resolve_in(&root, p);
    assert_eq!(
        resolve("lib/x86_64-linux-gnu/libbpf.so.1"),
        Some(lib.join("libbpf.so.1.1.0"))
    );
    assert_eq!(resolve("/lib64/ld.so"), Some(lib.join("ld.so")));
    assert_eq!(resolve("lib64/up"), Some(lib.join("ld.so")));
    assert_eq!(resolve("lib64/missing"), None);
    assert_eq!(resolve("lib64"), None, "a directory is not a file");
    std::fs::remove_dir_all(&root).unwrap();
}

/// What the queues scenario loads: the router's modules and the qdiscs
/// (Debian builds fq_codel in: it is the default qdisc there).
const QUEUE_MODULES: &[&str] = &[
    "veth",
    "nf_tables",
    "nft_objref",
    "nft_chain_nat",
    "nft_masq",
    "sch_htb",
    "sch_cake",
];

/// The generic figures of every qdisc (TCA_STATS2), named alike in both.
const QDISC_FIELDS: [&str; 7] = [
    "bytes",
    "packets",
    "drops",
    "overlimits",
    "requeues",
    "backlog",
    "qlen",
];

/// What tc prints of a qdisc besides its statistics.
const TC_NOT_STATISTICS: [&str; 5] = ["kind", "handle", "parent", "root", "refcnt"];

/// (netmeter's name, tc's name, whether tc prints it when it is 0).
type Pairs = &'static [(&'static str, &'static str, bool)];

/// fq_codel (`struct tc_fq_codel_qd_stats`): tc leaves ce_mark,
/// memory_used and drop_overmemory out while they are 0.
const FQ_CODEL_PAIRS: Pairs = &[
    ("maxpacket", "maxpacket", true),
    ("drop_overlimit", "drop_overlimit", true),
    ("new_flow_count", "new_flow_count", true),
    ("ecn_mark", "ecn_mark", true),
    ("ce_mark", "ce_mark", false),
    ("memory_usage", "memory_used", false),
    ("drop_overmemory", "drop_overmemory", false),
    ("new_flows_len", "new_flows_len", true),
    ("old_flows_len", "old_flows_len", true),
];

/// cake's qdisc-wide statistics.
const CAKE_PAIRS: Pairs = &[
    ("capacity_estimate", "capacity_estimate", true),
    ("memory_limit", "memory_limit", true),
    ("memory_used", "memory_used", true),
    ("avg_hdr_offset", "avg_hdr_offset", true),
    ("min_network_size", "min_network_size", true),
    ("max_network_size", "max_network_size", true),
    ("min_adj_size", "min_adj_size", true),
    ("max_adj_size", "max_adj_size", true),
];

/// One cake tin. netmeter's `dropped_bytes` tc does not print (no kernel
/// sends it).
const CAKE_TIN_PAIRS: Pairs = &[
    ("threshold_rate", "threshold_rate", true),
    ("sent_bytes", "sent_bytes", true),
    ("backlog_bytes", "backlog_bytes", true),
    ("target_us", "target_us", true),
    ("interval_us", "interval_us", true),
    ("peak_delay_us", "peak_delay_us", true),
    ("avg_delay_us", "avg_delay_us", true),
    ("base_delay_us", "base_delay_us", true),
    ("sent_packets", "sent_packets", true),
    ("way_indirect_hits", "way_indirect_hits", true),
    ("way_misses", "way_misses", true),
    ("way_collisions", "way_collisions", true),
    ("dropped_packets", "drops", true),
    ("ecn_marked_packets", "ecn_mark", true),
    ("ack_drops", "ack_drops", true),
    ("sparse_flows", "sparse_flows", true),
    ("bulk_flows", "bulk_flows", true),
    ("unresponsive_flows", "unresponsive_flows", true),
    ("max_pkt_len", "max_pkt_len", true),
    ("flow_quantum", "flow_quantum", true),
];

/// Where `ours` (netmeter's object) and `tc` (tc's) differ on `pairs`, and
/// what tc prints that no pair covers (`known`: tc's names that are not
/// statistics of this object), each as a line naming `what`.
fn compare_pairs(
    what: &str,
    ours: &Value,
    tc: &Value,
    pairs: Pairs,
    known: &[&str],
    out: &mut Vec<String>,
) {
    for (mine, theirs, always) in pairs {
        let their = match tc.get(theirs) {
            Some(v) => v.clone(),
            None if !always => Value::from(0),
            None => {
                out.push(format!("{what}: tc printed no {theirs}"));
                continue;
            }
        };
        if ours.get(mine) != Some(&their) {
            out.push(format!(
                "{what}: {mine} is {} in netmeter, tc's {theirs} is {their}",
                ours.get(mine).unwrap_or(&Value::Null)
            ));
        }
    }
    for key in tc.as_object().map(|o| o.keys()).into_iter().flatten() {
        if !known.contains(&key.as_str()) && !pairs.iter().any(|p| p.1 == key) {
            out.push(format!(
                "{what}: tc prints {key} ({}), which netmeter does not give",
                tc[key]
            ));
        }
    }
}

/// Every difference between netmeter's queues and tc's, for every
/// interface tc was asked about; empty when they are equal.
fn queue_differences(result: &Value) -> Vec<String> {
    let mut out = Vec::new();
    let tc_all = result["tc"].as_object().expect("tc readings");
    for (dev, tc_list) in tc_all {
        let Some(iface) = result["netmeter"]["interfaces"]
            .as_array()
            .and_then(|all| all.iter().find(|i| i["name"] == dev.as_str()))
        else {
            out.push(format!("{dev}: not in netmeter's report"));
            continue;
        };
        let by_handle = |list: &Value| -> BTreeMap<String, Value> {
            list.as_array()
                .into_iter()
                .flatten()
                .map(|q| (q["handle"].as_str().unwrap_or("?").to_string(), q.clone()))
                .collect()
        };
        let (theirs, ours) = (by_handle(tc_list), by_handle(&iface["qdiscs"]));
        if theirs.keys().ne(ours.keys()) {
            out.push(format!(
                "{dev}: tc's qdiscs {:?}, netmeter's {:?}",
                theirs.keys().collect::<Vec<_>>(),
                ours.keys().collect::<Vec<_>>()
            ));
        }
        for (handle, tc) in &theirs {
            let Some(q) = ours.get(handle) else { continue };
            let what = format!("{dev} {} {handle}", tc["kind"].as_str().unwrap_or("?"));
            let parent = if tc["root"] == true {
                Value::from("root")
            } else {
                tc["parent"].clone()
            };
            if q["kind"] != tc["kind"] || q["parent"] != parent {
                out.push(format!(
                    "{what}: netmeter says {} under {}, tc {} under {parent}",
                    q["kind"], q["parent"], tc["kind"]
                ));
            }
            let mut known: Vec<&str> = TC_NOT_STATISTICS.to_vec();
            known.extend(QDISC_FIELDS);
            known.push("options");
            for f in QDISC_FIELDS {
                if q[f] != tc[f] {
                    out.push(format!(
                        "{what}: {f} is {} in netmeter, {} in tc",
                        q[f], tc[f]
                    ));
                }
            }
            match tc["kind"].as_str() {
                Some("fq_codel") => {
                    compare_pairs(&what, &q["fq_codel"], tc, FQ_CODEL_PAIRS, &known, &mut out)
                }
                Some("cake") => {
                    known.push("tins");
                    compare_pairs(&what, &q["cake"], tc, CAKE_PAIRS, &known, &mut out);
                    let (our_tins, tc_tins) = (&q["cake"]["tins"], &tc["tins"]);
                    let (n, m) = (
                        our_tins.as_array().map_or(0, Vec::len),
                        tc_tins.as_array().map_or(0, Vec::len),
                    );
                    if n != m {
                        out.push(format!("{what}: {n} tins in netmeter, {m} in tc"));
                    }
                    for i in 0..n.min(m) {
                        compare_pairs(
                            &format!("{what} tin {i}"),
                            &our_tins[i],
                            &tc_tins[i],
                            CAKE_TIN_PAIRS,
                            &[],
                            &mut out,
                        );
                    }
                }
                _ => {}
            }
        }
    }
    out
}

/// The qdisc of `kind` on `dev` in tc's reading.
fn tc_qdisc<'a>(result: &'a Value, dev: &str, kind: &str) -> &'a Value {
    result["tc"][dev]
        .as_array()
        .and_then(|all| all.iter().find(|q| q["kind"] == kind))
        .unwrap_or_else(|| panic!("no {kind} on {dev} in {}", result["tc"]))
}

#[test]
#[ignore = "boots a VM: cargo test --test vm -- --ignored (CI runs it)"]
fn fq_codel_and_cake_statistics_equal_what_tc_prints_on_a_debian_kernel() {
    let case = "queues";
    let vm = Vm {
        arch: Arch::X86_64,
        modules: QUEUE_MODULES,
        programs: &[("iproute2", "sbin/tc")],
        cases: &[case],
        limit: Duration::from_secs(600),
    };
    let run = match vm.run() {
        Ok(run) => run,
        Err(why) => return harness::unavailable("queues scenario", why),
    };
    eprintln!(
        "booted {} ({}); timings {:?}",
        run.kernel_package,
        run.log_path.display(),
        run.timings
    );
    let result = run.result(case);
    // The guest's raw qdisc dump, kept beside the console log.
    let dump = run.log_path.with_file_name("qdisc_dump.bin");
    if let Some(hex) = result["qdisc_dump_hex"].as_str() {
        let bytes: Vec<u8> = (0..hex.len() / 2)
            .map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).unwrap())
            .collect();
        std::fs::write(&dump, bytes).unwrap();
    }
    assert!(
        result["error"].is_null(),
        "{case} failed in the guest: {}\nthe kernel's qdisc dump: {}\nconsole:\n{}",
        result["error"],
        dump.display(),
        run.log
    );
    let fq_codel = tc_qdisc(result, "wan", "fq_codel");
    let cake = tc_qdisc(result, "lan0", "cake");
    eprintln!(
        "{case} (kernel {}, {}, {:.1} s, traffic {:.1} s, {} tc readings):\n    fq_codel {fq_codel}\n    cake {cake}",
        result["kernel"].as_str().unwrap_or("?"),
        result["tc_version"].as_str().unwrap_or("?"),
        result["seconds"].as_f64().unwrap_or(0.0),
        result["traffic_seconds"].as_f64().unwrap_or(0.0),
        result["reads"],
    );
    let differences = queue_differences(result);
    assert!(
        differences.is_empty(),
        "netmeter's queues differ from tc's:\n  {}\ntc: {}\nnetmeter: {}",
        differences.join("\n  "),
        result["tc"],
        result["netmeter"]
    );
    // The link was shaped and overflowed, so the figures compared are
    // not all zeros: both qdiscs dropped, fq_codel saw flows come and go,
    // and cake's best-effort tin sent and dropped.
    assert!(u(fq_codel, "drops") > 0, "fq_codel dropped: {fq_codel}");
    assert!(u(fq_codel, "drop_overlimit") > 0, "{fq_codel}");
    assert!(u(fq_codel, "new_flow_count") > 0, "{fq_codel}");
    assert!(u(cake, "drops") > 0, "cake dropped: {cake}");
    let tins = cake["tins"].as_array().expect("cake's tins");
    assert!(
        tins.iter()
            .any(|t| u(t, "drops") > 0 && u(t, "sent_packets") > 0),
        "{cake}"
    );
    assert!(u(tc_qdisc(result, "wan", "htb"), "overlimits") > 0);
    // The TCP transfers negotiated ECN: the AQMs marked as well as dropped.
    let marks = u(fq_codel, "ecn_mark") + tins.iter().map(|t| u(t, "ecn_mark")).sum::<u64>();
    assert!(marks > 0, "no ECN marks: {fq_codel} {cake}");
}
