//! fw4-like flow offloading for kernels that have it (the VM scenarios,
//! tests/vm/): a flowtable with `counter` and `flow add @ft` in an inet
//! forward chain, as OpenWrt's firewall installs them with
//! `option flow_offloading '1'`; and the evidence that flows were
//! offloaded (the forward chain's counter, conntrack's `[OFFLOAD]`).

use netmeter::netlink::NetlinkSocket;
use netmeter::netlink::nftables::*;
use netmeter::netlink::socket::NETLINK_NETFILTER;

const TABLE: &str = "fw4";
/// The counter every packet through the forward chain passes.
pub const FORWARD_COUNTER: &str = "forwarded";

/// `table inet fw4 { flowtable ft { hook ingress priority 0; devices =
/// { DEVICES }; flags counter; } chain forward { type filter hook forward
/// priority 0; counter name forwarded; meta l4proto { tcp, udp } flow add
/// @ft; } }` — `devices` comma-separated. `counted` false leaves out
/// `flags counter` (firewall4 before 2024): offloaded flows then stop
/// growing conntrack's counters.
pub fn install(devices: &str, counted: bool) -> Result<(), String> {
    let devices: Vec<&str> = devices.split(',').filter(|d| !d.is_empty()).collect();
    let mut b = Batch::new();
    b.add_table(Family::Inet, TABLE)
        .add_flowtable(
            Family::Inet,
            TABLE,
            "ft",
            0,
            &devices,
            if counted { NF_FLOWTABLE_COUNTER } else { 0 },
        )
        .add_counter_object(Family::Inet, TABLE, FORWARD_COUNTER)
        .add_chain(
            Family::Inet,
            TABLE,
            "forward",
            Some(&BaseChain {
                hook: Hook::Forward as u32,
                priority: 0,
                chain_type: "filter",
                device: None,
            }),
        )
        .add_rule(
            Family::Inet,
            TABLE,
            "forward",
            &[Expr::ObjrefCounter {
                name: FORWARD_COUNTER.into(),
            }],
        );
    for proto in [libc::IPPROTO_TCP as u8, libc::IPPROTO_UDP as u8] {
        b.add_rule(
            Family::Inet,
            TABLE,
            "forward",
            &[
                Expr::Meta {
                    key: MetaKey::L4Proto,
                    dreg: NFT_REG_1,
                },
                Expr::Cmp {
                    sreg: NFT_REG_1,
                    op: CmpOp::Eq,
                    data: vec![proto],
                },
                Expr::FlowOffload {
                    flowtable: "ft".into(),
                },
            ],
        );
    }
    NetlinkSocket::open(NETLINK_NETFILTER)
        .and_then(|mut s| s.batch(b.finish(), "installing fw4-like flow offloading"))
        .map_err(|e| e.to_string())
}

/// The forward chain's counter as `bytes,packets`.
pub fn forward_counter() -> Result<String, String> {
    let mut found = None;
    let mut sock = NetlinkSocket::open(NETLINK_NETFILTER).map_err(|e| e.to_string())?;
    sock.dump(
        counter_objects_request(Family::Inet, TABLE),
        "reading fw4's counters",
        |msg| {
            match parse_counter_object(msg)? {
                Some((name, bytes, packets)) if name == FORWARD_COUNTER => {
                    found = Some(format!("{bytes},{packets}"));
                }
                _ => {}
            }
            Ok(())
        },
    )
    .map_err(|e| e.to_string())?;
    found.ok_or_else(|| format!("no counter {FORWARD_COUNTER}"))
}

/// How many of this namespace's conntrack entries are offloaded now
/// (`[OFFLOAD]` in /proc/net/nf_conntrack), and how many there are.
pub fn conntrack_offloaded() -> Result<String, String> {
    let text = std::fs::read_to_string("/proc/self/net/nf_conntrack")
        .map_err(|e| format!("/proc/net/nf_conntrack: {e}"))?;
    let total = text.lines().count();
    let offloaded = text.lines().filter(|l| l.contains("[OFFLOAD]")).count();
    Ok(format!("{offloaded},{total}"))
}
