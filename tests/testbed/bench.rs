//! Agent commands for the per-device benchmark (`benches/devices.rs`):
//! netmeter's table filled with synthetic devices, the YAMon-style linear
//! rule chain it is compared with, segmentation offload switched off, and
//! the refresh timed where it runs.

use netmeter::account::{DeviceAccounts, Direction};
use netmeter::collect::devices::{self, Hooks, Plan};
use netmeter::config::IpPrefix;
use netmeter::netlink::NetlinkSocket;
use netmeter::netlink::nftables::*;
use netmeter::netlink::socket::NETLINK_NETFILTER;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Instant;

type R<T = ()> = Result<T, String>;

fn netfilter() -> R<NetlinkSocket> {
    NetlinkSocket::open(NETLINK_NETFILTER).map_err(|e| e.to_string())
}

/// Elements (or rules) per batch: one batch is one datagram, which must fit
/// the socket's send buffer (about 200 KiB).
const PER_BATCH: usize = 1000;

/// Synthetic device `i`: a locally administered unicast MAC and an address
/// in 10.128.0.0/9 or fd99::/64, neither of which the test bed uses.
pub fn device(i: u32) -> ([u8; 6], Ipv4Addr, Ipv6Addr) {
    let [_, a, b, c] = i.to_be_bytes();
    (
        [0x02, 0x4e, 0x4d, a, b, c],
        Ipv4Addr::from(u32::from(Ipv4Addr::new(10, 128, 0, 0)) + i),
        Ipv6Addr::from(u128::from(Ipv6Addr::new(0xfd99, 0, 0, 0, 0, 0, 0, 0)) + u128::from(i)),
    )
}

fn plan(devs: &str, max_devices: u64, prefixes: &str) -> R<Plan> {
    let prefixes: Vec<IpPrefix> = prefixes
        .split(',')
        .map(|p| p.parse().map_err(|e| format!("{p}: {e:?}")))
        .collect::<R<_>>()?;
    Ok(Plan::new(
        Hooks::Netdev,
        devs.split(',').map(String::from).collect(),
        &prefixes,
        max_devices as usize,
        3_600_000,
    ))
}

/// netmeter's own table, as the daemon installs it, on `devs` (comma
/// separated) with `prefixes` (comma separated) as the LAN.
pub fn netmeter_install(devs: &str, max_devices: u64, prefixes: &str) -> R {
    let plan = plan(devs, max_devices, prefixes)?;
    devices::install(&mut netfilter()?, &plan).map_err(|e| e.to_string())
}

/// The conntrack placement's table, as the daemon installs it (`inet
/// netmeter`: one conntrack-state load in forward, so both families are
/// tracked).
pub fn netmeter_conntrack_install() -> R {
    netfilter()?
        .batch(
            netmeter::collect::conntrack::install_batch().finish(),
            "installing the conntrack placement's table",
        )
        .map_err(|e| e.to_string())
}

/// netmeter's table with its sets and chains but other rules in the
/// chains, to price each part of a rule (`benches/devices.rs`, part
/// `rules`). Each variant adds to the one before:
/// - `hooks`: no rules, the netdev ingress and egress hooks alone;
/// - `update`: the set update alone (`update @sent4 { ether saddr . ip
///   saddr counter }`, the key loaded from the packet) and `accept`;
/// - `protocol`: the `meta protocol ip` test before it;
/// - `prefixes`: the far end tested against each local prefix, one load,
///   mask and compare per prefix;
/// - `before`: the rules netmeter built before its interval sets (up to
///   e20c26f): also the device's own address against each never-a-device
///   prefix, the MAC's group bit, and the rule for a full set; IPv6 too.
///
/// The first four have IPv4 rules only: the benchmark's traffic is IPv4.
pub fn netmeter_variant(variant: &str, devs: &str, max_devices: u64, prefixes: &str) -> R {
    let level = match variant {
        "hooks" => 0,
        "update" => 1,
        "protocol" => 2,
        "prefixes" => 3,
        "before" => 4,
        other => return Err(format!("unknown rule variant {other}")),
    };
    let plan = plan(devs, max_devices, prefixes)?;
    let rules = |plan: &Plan, _: &str, direction: Direction, v6: bool, set: &str| {
        if level == 0 || (v6 && level < 4) {
            return Vec::new();
        }
        earlier_rules(plan, direction, v6, set, level)
    };
    let batch = devices::install_batch_with(&plan, &rules);
    netfilter()?
        .batch(batch.finish(), "installing a variant of netmeter's table")
        .map_err(|e| e.to_string())
}

/// Addresses that are never a device's, as `collect::devices` has them.
const NOT_A_DEVICE: [&str; 5] = [
    "0.0.0.0/32",
    "224.0.0.0/4",
    "255.255.255.255/32",
    "::/128",
    "ff00::/8",
];

/// `addr field & mask != network` for each prefix of this family, each
/// from its own load: how netmeter's rules left out the local prefixes
/// before its interval sets.
fn outside(prefixes: &[IpPrefix], v6: bool, offset: u32) -> Vec<Expr> {
    let len = if v6 { 16 } else { 4 };
    let mut exprs = Vec::new();
    for prefix in prefixes.iter().filter(|p| p.addr.is_ipv6() == v6) {
        let (net, bits) = match prefix.addr {
            IpAddr::V4(a) => (a.octets().to_vec(), 32u32),
            IpAddr::V6(a) => (a.octets().to_vec(), 128u32),
        };
        let mut mask = vec![0u8; net.len()];
        for bit in 0..u32::from(prefix.len).min(bits) {
            mask[(bit / 8) as usize] |= 0x80 >> (bit % 8);
        }
        exprs.extend([
            Expr::Payload {
                base: PayloadBase::Network,
                offset,
                len,
                dreg: NFT_REG_1,
            },
            Expr::Bitwise {
                sreg: NFT_REG_1,
                dreg: NFT_REG_1,
                mask,
                xor: vec![0; len as usize],
            },
            Expr::Cmp {
                sreg: NFT_REG_1,
                op: CmpOp::Neq,
                data: net,
            },
        ]);
    }
    exprs
}

/// The netdev rules as netmeter built them up to e20c26f (level 4), or
/// the first parts of them (levels 1–3, see `netmeter_variant`).
fn earlier_rules(
    plan: &Plan,
    direction: Direction,
    v6: bool,
    set: &str,
    level: u8,
) -> Vec<Vec<Expr>> {
    // (MAC in the link-layer header, device's IP, the far end's IP).
    let (mac_at, own_at, far_at) = match (direction, v6) {
        (Direction::Sent, false) => (6, 12, 16),
        (Direction::Received, false) => (0, 16, 12),
        (Direction::Sent, true) => (6, 8, 24),
        (Direction::Received, true) => (0, 24, 8),
    };
    let proto: [u8; 2] = if v6 { [0x86, 0xdd] } else { [0x08, 0x00] };
    let mut matched = Vec::new();
    if level >= 2 {
        matched.extend([
            Expr::Meta {
                key: MetaKey::Protocol,
                dreg: NFT_REG_1,
            },
            Expr::Cmp {
                sreg: NFT_REG_1,
                op: CmpOp::Eq,
                data: proto.to_vec(),
            },
        ]);
    }
    if level >= 3 {
        matched.extend(outside(&plan.local_prefixes, v6, far_at));
    }
    if level >= 4 {
        let not_a_device: Vec<IpPrefix> = NOT_A_DEVICE.iter().map(|p| p.parse().unwrap()).collect();
        matched.extend(outside(&not_a_device, v6, own_at));
        matched.extend([
            Expr::Payload {
                base: PayloadBase::LinkLayer,
                offset: mac_at,
                len: 1,
                dreg: NFT_REG_1,
            },
            Expr::Bitwise {
                sreg: NFT_REG_1,
                dreg: NFT_REG_1,
                mask: vec![1],
                xor: vec![0],
            },
            Expr::Cmp {
                sreg: NFT_REG_1,
                op: CmpOp::Eq,
                data: vec![0],
            },
        ]);
    }
    let mut count = matched.clone();
    count.extend([
        Expr::Payload {
            base: PayloadBase::LinkLayer,
            offset: mac_at,
            len: 6,
            dreg: NFT_REG32_00,
        },
        Expr::Payload {
            base: PayloadBase::Network,
            offset: own_at,
            len: if v6 { 16 } else { 4 },
            dreg: NFT_REG32_00 + 2,
        },
        Expr::DynsetUpdateCounter {
            set: set.to_string(),
            sreg_key: NFT_REG32_00,
            timeout_ms: None,
        },
        Expr::Accept,
    ]);
    if level < 4 {
        return vec![count];
    }
    let unattributed = match direction {
        Direction::Sent => "unattributed_sent",
        Direction::Received => "unattributed_received",
    };
    matched.push(Expr::ObjrefCounter {
        name: unattributed.to_string(),
    });
    vec![count, matched]
}

/// Fills netmeter's set `set` (sent4, received4, sent6, received6) with
/// devices `0..count`, each element's counter starting at `1000 × (i+1)`
/// bytes and `i+1` packets.
pub fn nft_populate(set: &str, count: u64) -> R<String> {
    let v6 = set.ends_with('6');
    let elements: Vec<(Vec<u8>, u64, u64)> = (0..count as u32)
        .map(|i| {
            let (mac, v4, v6addr) = device(i);
            let mut key = mac.to_vec();
            key.extend([0, 0]);
            if v6 {
                key.extend(v6addr.octets());
            } else {
                key.extend(v4.octets());
            }
            let packets = u64::from(i) + 1;
            (key, 1000 * packets, packets)
        })
        .collect();
    let mut socket = netfilter()?;
    for chunk in elements.chunks(PER_BATCH) {
        let mut b = Batch::new();
        b.add_set_elements(Family::Netdev, devices::TABLE, set, chunk);
        socket
            .batch(
                b.finish(),
                &format!("adding {} elements to {set}", chunk.len()),
            )
            .map_err(|e| e.to_string())?;
    }
    Ok(count.to_string())
}

/// Deletes a table (`inet`, `ip`, `netdev`, `ip6`); no error if it is absent.
pub fn nft_delete(family: &str, table: &str) -> R {
    let family = match family {
        "inet" => Family::Inet,
        "ip" => Family::Ipv4,
        "netdev" => Family::Netdev,
        "ip6" => Family::Ipv6,
        other => return Err(format!("unknown family {other}")),
    };
    let mut b = Batch::new();
    b.delete_table(family, table);
    match netfilter()?.batch(b.finish(), &format!("deleting table {table}")) {
        Err(e) if e.errno() != Some(libc::ENOENT) => Err(e.to_string()),
        _ => Ok(()),
    }
}

/// The YAMon way: table `inet yamon`, a forward chain with one linear
/// `ip saddr A counter` rule per device, then one `ip daddr A counter` per
/// device, for `others` synthetic devices; `own`'s two rules come last, as
/// YAMon appends a newly seen device. Every forwarded packet is compared
/// with every rule.
pub fn yamon(others: u64, own: &str) -> R {
    let own: Ipv4Addr = own.parse().map_err(|e| format!("{own}: {e}"))?;
    const TABLE: &str = "yamon";
    const CHAIN: &str = "forward";
    let rule = |offset: u32, ip: Ipv4Addr| {
        vec![
            Expr::Meta {
                key: MetaKey::NfProto,
                dreg: NFT_REG_1,
            },
            Expr::Cmp {
                sreg: NFT_REG_1,
                op: CmpOp::Eq,
                data: vec![Family::Ipv4 as u8],
            },
            Expr::Payload {
                base: PayloadBase::Network,
                offset,
                len: 4,
                dreg: NFT_REG_1,
            },
            Expr::Cmp {
                sreg: NFT_REG_1,
                op: CmpOp::Eq,
                data: ip.octets().to_vec(),
            },
            Expr::Counter,
        ]
    };
    let others: Vec<Ipv4Addr> = (0..others as u32).map(|i| device(i).1).collect();
    let mut rules: Vec<Vec<Expr>> = others.iter().map(|ip| rule(12, *ip)).collect();
    rules.extend(others.iter().map(|ip| rule(16, *ip)));
    rules.push(rule(12, own));
    rules.push(rule(16, own));

    let mut socket = netfilter()?;
    let mut b = Batch::new();
    b.add_table(Family::Inet, TABLE);
    b.add_chain(
        Family::Inet,
        TABLE,
        CHAIN,
        Some(&BaseChain {
            hook: Hook::Forward as u32,
            priority: 0,
            chain_type: "filter",
            device: None,
        }),
    );
    // A rule is about 250 bytes: a quarter of the element batch size.
    for chunk in rules.chunks(PER_BATCH / 4) {
        for r in chunk {
            b.add_rule(Family::Inet, TABLE, CHAIN, r);
        }
        socket
            .batch(b.finish(), "installing the YAMon-style rules")
            .map_err(|e| e.to_string())?;
        b = Batch::new();
    }
    Ok(())
}

fn thread_cpu_ns() -> u64 {
    // SAFETY: timespec is plain data, filled in by the call.
    let mut ts: libc::timespec = unsafe { std::mem::zeroed() };
    // SAFETY: a valid clock id and pointer.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// (median, p90) of nanosecond figures, in milliseconds.
fn median_p90(mut v: Vec<u64>) -> (f64, f64) {
    v.sort_unstable();
    let ms = |ns: u64| ns as f64 / 1e6;
    let n = v.len();
    let median = if n % 2 == 1 {
        ms(v[n / 2])
    } else {
        (ms(v[n / 2 - 1]) + ms(v[n / 2])) / 2.0
    };
    let p90 = ms(v[(n * 9).div_ceil(10) - 1]);
    (median, p90)
}

/// What the daemon does with its sets each refresh: `collect::devices::read`
/// then `DeviceAccounts::ingest`, `runs` times after 3 warm-up runs (the
/// first creates every record), each after a pause of `pause_ms`. Answers
/// CPU time of this thread (user + system, so the kernel's dump is
/// included) and wall time as `key=value …`, in milliseconds.
pub fn bench_refresh(runs: u64, max_devices: u64, pause_ms: u64) -> R<String> {
    const WARM_UP: u64 = 3;
    let mut socket = netfilter()?;
    let mut accounts = DeviceAccounts::new(max_devices as usize);
    let (mut cpu, mut read, mut ingest, mut wall) = (vec![], vec![], vec![], vec![]);
    let (mut elements, mut first_ns) = (0, 0);
    for run in 0..WARM_UP + runs {
        std::thread::sleep(std::time::Duration::from_millis(pause_ms));
        let (w0, c0) = (Instant::now(), thread_cpu_ns());
        let reading = devices::read(&mut socket, Hooks::Netdev).map_err(|e| e.to_string())?;
        let c1 = thread_cpu_ns();
        let events = accounts.ingest(
            netmeter::clock::now(),
            1,
            &reading.samples,
            reading.unattributed,
        );
        let (c2, w2) = (thread_cpu_ns(), w0.elapsed().as_nanos() as u64);
        std::hint::black_box(events);
        elements = reading.samples.len();
        if run == 0 {
            first_ns = c2 - c0;
        }
        if run >= WARM_UP {
            cpu.push(c2 - c0);
            read.push(c1 - c0);
            ingest.push(c2 - c1);
            wall.push(w2);
        }
    }
    let devices = accounts.devices().count();
    let sent = accounts.devices().filter(|d| d.tx_bytes > 0).count();
    let (cpu_med, cpu_p90) = median_p90(cpu);
    let (wall_med, wall_p90) = median_p90(wall);
    let first = first_ns as f64 / 1e6;
    Ok(format!(
        "elements={elements} devices={devices} with_bytes={sent} cpu_med={cpu_med:.3} cpu_p90={cpu_p90:.3} \
         read_med={:.3} ingest_med={:.3} wall_med={wall_med:.3} wall_p90={wall_p90:.3} first={first:.3}",
        median_p90(read).0,
        median_p90(ingest).0,
    ))
}

/// `count` GETs of `path` at `addr`, one after another, each on a new
/// connection as the CLI makes them, after 5 not timed: wall time of each,
/// connect to the last body byte. Every answer must be a 200. Answers
/// `p50=… p99=… max=…` in milliseconds and the body's `bytes=…`.
pub fn http_latency(addr: &str, path: &str, count: u64) -> R<String> {
    const WARM_UP: u64 = 5;
    let addr: std::net::SocketAddr = addr.parse().map_err(|e| format!("{addr}: {e}"))?;
    let mut times = Vec::new();
    let mut bytes = 0;
    for i in 0..WARM_UP + count {
        let start = Instant::now();
        let (status, body) =
            netmeter::serve::client::get(addr, path, None, std::time::Duration::from_secs(30))
                .map_err(|e| format!("{path}: {e}"))?;
        let took = start.elapsed().as_nanos() as u64;
        if status != 200 {
            return Err(format!(
                "{path}: {status} {}",
                String::from_utf8_lossy(&body)
            ));
        }
        bytes = body.len();
        if i >= WARM_UP {
            times.push(took);
        }
    }
    times.sort_unstable();
    let ms = |ns: u64| ns as f64 / 1e6;
    let p99 = times[(times.len() * 99).div_ceil(100) - 1];
    Ok(format!(
        "p50={:.3} p99={:.3} max={:.3} bytes={bytes}",
        median_p90(times.clone()).0,
        ms(p99),
        ms(*times.last().unwrap()),
    ))
}

/// CPU time, ns, the `ksoftirqd/N` threads have run: they take over the
/// network's softirq work from the sender under load.
fn softirq_threads_ns() -> u64 {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return 0;
    };
    dir.flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/comm"))
                .is_ok_and(|c| c.starts_with("ksoftirqd/"))
        })
        .filter_map(|pid| std::fs::read_to_string(format!("/proc/{pid}/schedstat")).ok())
        .filter_map(|s| s.split_whitespace().next()?.parse::<u64>().ok())
        .sum()
}

/// Sends `count` UDP datagrams of `size` bytes to `addr` back to back and
/// answers the CPU time per datagram, ns: this thread's (its system calls
/// carry each datagram through the router and into the far host's socket,
/// as veth runs the receiving side's softirq in the sender's context) plus
/// the softirq threads'. One packet's whole path, with no TCP dynamics
/// (acknowledgements, windows) to vary with the machine's load.
pub fn udp_blast(addr: &str, port: u16, count: u64, size: usize) -> R<String> {
    let ip: IpAddr = addr.parse().map_err(|e| format!("{addr}: {e}"))?;
    let bind = if ip.is_ipv4() { "0.0.0.0:0" } else { "[::]:0" };
    let s = std::net::UdpSocket::bind(bind).map_err(|e| e.to_string())?;
    s.connect((ip, port)).map_err(|e| e.to_string())?;
    let mut payload = vec![b'u'; size.max(1)];
    payload[0] = b'U';
    let (cpu, softirq) = (thread_cpu_ns(), softirq_threads_ns());
    for _ in 0..count {
        s.send(&payload).map_err(|e| e.to_string())?;
    }
    let ns = thread_cpu_ns() - cpu + (softirq_threads_ns() - softirq);
    Ok(format!("{:.1}", ns as f64 / count as f64))
}

/// Turns TCP segmentation and generic segmentation offload on or off on a
/// device here (the legacy ethtool ioctl). Off on both end hosts, the
/// router forwards MTU-sized packets instead of 64 KiB GSO packets, as a
/// router with real NICs and no GRO would.
pub fn offload(dev: &str, on: bool) -> R {
    const SIOCETHTOOL: libc::c_ulong = 0x8946;
    const ETHTOOL_STSO: u32 = 0x1f;
    const ETHTOOL_SGSO: u32 = 0x24;
    #[repr(C)]
    struct EthtoolValue {
        cmd: u32,
        data: u32,
    }
    #[repr(C)]
    struct IfReq {
        name: [u8; 16],
        data: *mut EthtoolValue,
        _pad: [u8; 16],
    }
    if dev.len() >= 16 {
        return Err(format!("{dev}: name too long"));
    }
    // SAFETY: a plain socket call.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error().to_string());
    }
    let mut result = Ok(());
    for cmd in [ETHTOOL_STSO, ETHTOOL_SGSO] {
        let mut value = EthtoolValue {
            cmd,
            data: u32::from(on),
        };
        let mut req = IfReq {
            name: [0; 16],
            data: &mut value,
            _pad: [0; 16],
        };
        req.name[..dev.len()].copy_from_slice(dev.as_bytes());
        // SAFETY: SIOCETHTOOL takes an ifreq whose data points at the
        // command; both outlive the call.
        if unsafe { libc::ioctl(fd, SIOCETHTOOL as _, &mut req) } < 0 {
            result = Err(format!(
                "ethtool {cmd:#x} on {dev}: {}",
                std::io::Error::last_os_error()
            ));
            break;
        }
    }
    // SAFETY: our own descriptor.
    unsafe { libc::close(fd) };
    result
}
