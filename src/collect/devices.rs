//! netmeter's own nftables table: per-device counter sets on the LAN
//! devices' netdev hooks, and reading them back as samples.
//!
//! Placement (see docs/ARCHITECTURE.md): for every LAN device, a netdev
//! *ingress* chain at priority −500 counts what each device sent, keyed by
//! `ether saddr . ip saddr`, and a netdev *egress* chain counts what it
//! received, keyed by `ether daddr . ip daddr`. Ingress runs before any
//! software flowtable (priority ≥ −500 would not), and egress sees every
//! packet the router puts on the wire, so offloaded flows are counted.
//! Where the kernel has no netdev egress hook (before Linux 5.16), or when
//! configured, the *forward* placement counts in an inet forward chain
//! instead: sent keyed by MAC and IP, received by IP alone (the MAC is
//! found through the neighbour table). It does not see flows a flowtable
//! offloads, and `netmeter check` says so.
//! Only traffic between a LAN device and the world beyond the router is
//! counted: destinations (sent) and sources (received) in the LAN's own
//! prefixes, link-local, multicast and unspecified are left out — so
//! traffic to the router itself and routed LAN-to-LAN traffic are not in
//! the totals. Multicast and broadcast are never devices: the device's own
//! side must not be a group MAC (`01:…`, `33:33:…`, `ff:ff:…`) nor a
//! multicast, broadcast or unspecified IP, so the router's MLD reports and
//! DAD probes (sent from `::`) and multicast forwarded from the WAN (IPTV)
//! make no element at all.
//!
//! Each rule loads every address it tests once and tests it from its
//! register (the device's address and MAC straight into the registers of
//! the set's key); what each part costs per packet is measured by `cargo
//! bench --bench devices` (docs/BENCHMARKS.md: constant interval sets of
//! the prefixes, one lookup each, measured no cheaper there).

use crate::account::{DeviceSample, Direction, UnattributedSample};
use crate::config::IpPrefix;
use crate::mac::Mac;

use crate::netlink::nftables::*;
use crate::netlink::route::{AddressMessage, address_dump_request};
use crate::netlink::{NetlinkError, NetlinkSocket};
use std::net::IpAddr;

pub const TABLE: &str = "netmeter";
/// The MACs whose WAN traffic a `block` quota drops.
pub const BLOCKED: &str = "blocked";
/// The block chains run before the counting ones: dropped bytes are not usage.
const BLOCK_PRIORITY: i32 = -510;
/// Ethernet header bytes an egress counter includes and ingress does not.
const L2_HEADER: u64 = 14;

/// The four sets: (name, direction, IP version).
const SETS: [(&str, Direction, u8); 4] = [
    ("sent4", Direction::Sent, 4),
    ("received4", Direction::Received, 4),
    ("sent6", Direction::Sent, 6),
    ("received6", Direction::Received, 6),
];
const UNATTRIBUTED_SENT: &str = "unattributed_sent";
const UNATTRIBUTED_RECEIVED: &str = "unattributed_received";
/// Addresses that are never a device's: unspecified, multicast, broadcast.
const NOT_A_DEVICE: [&str; 5] = [
    "0.0.0.0/32",
    "224.0.0.0/4",
    "255.255.255.255/32",
    "::/128",
    "ff00::/8",
];

/// Which hooks hold the counters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Hooks {
    /// Netdev ingress (priority −500) and egress on each LAN device.
    Netdev,
    /// The inet forward chain: misses offloaded flows.
    Forward,
}

impl Hooks {
    fn family(self) -> Family {
        match self {
            Hooks::Netdev => Family::Netdev,
            Hooks::Forward => Family::Inet,
        }
    }

    /// Whether the received sets are keyed by MAC as well as IP: at the
    /// forward hook the outgoing Ethernet header does not exist yet.
    fn received_has_mac(self) -> bool {
        self == Hooks::Netdev
    }

    pub fn describe(self, devices: &[String]) -> String {
        match self {
            Hooks::Netdev => format!(
                "netdev ingress (priority -500, before flowtables) and egress on {}",
                devices.join(", ")
            ),
            Hooks::Forward => format!(
                "forward chain on {}: flows offloaded by a flowtable are not seen",
                devices.join(", ")
            ),
        }
    }
}

/// What to install: derived from the config and the LAN's addresses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Plan {
    pub hooks: Hooks,
    pub lan_devices: Vec<String>,
    /// Prefixes that are "not beyond the router": the LAN's own, plus
    /// link-local and `NOT_A_DEVICE` (always added).
    pub local_prefixes: Vec<IpPrefix>,
    /// Most elements per set; a full set's traffic goes to `unattributed`.
    pub set_size: u32,
    /// Kernel timeout of an idle element: a safety net only, as netmeter
    /// deletes idle elements itself (at half this) after reading them.
    pub element_timeout_ms: u64,
    /// A quota has `option action 'block'`: the table gets the `blocked`
    /// set of MACs and the chains that drop their WAN traffic.
    pub block: bool,
}

impl Plan {
    pub fn new(
        hooks: Hooks,
        lan_devices: Vec<String>,
        lan_prefixes: &[IpPrefix],
        max_devices: usize,
        element_timeout_ms: u64,
    ) -> Plan {
        let mut local: Vec<IpPrefix> = lan_prefixes.to_vec();
        local.extend(
            ["169.254.0.0/16", "fe80::/10"]
                .iter()
                .chain(&NOT_A_DEVICE)
                .map(builtin),
        );
        local.sort_by_key(|p| (p.addr, p.len));
        local.dedup();
        Plan {
            hooks,
            lan_devices,
            local_prefixes: local,
            // Several addresses per device (IPv6 privacy addresses), capped.
            set_size: (max_devices.saturating_mul(4)).clamp(64, 1 << 20) as u32,
            element_timeout_ms,
            block: false,
        }
    }
}

fn builtin(prefix: &&str) -> IpPrefix {
    prefix.parse().expect("a valid built-in prefix")
}

fn prefix_bytes(prefix: &IpPrefix) -> (Vec<u8>, Vec<u8>) {
    let len = prefix.len;
    let (bytes, bits) = match prefix.addr {
        IpAddr::V4(a) => (a.octets().to_vec(), 32u32),
        IpAddr::V6(a) => (a.octets().to_vec(), 128u32),
    };
    let mut mask = vec![0u8; bytes.len()];
    for bit in 0..(len as u32).min(bits) {
        mask[(bit / 8) as usize] |= 0x80 >> (bit % 8);
    }
    (bytes, mask)
}

/// `reg & mask != network` for each prefix of this family, the address
/// already loaded into `reg` (once, not per prefix): the rule continues
/// only for addresses in none of them. The masked copy goes to `scratch`.
fn outside(prefixes: &[IpPrefix], v6: bool, reg: u32, scratch: u32) -> Vec<Expr> {
    let mut exprs = Vec::new();
    for prefix in prefixes.iter().filter(|p| p.addr.is_ipv6() == v6) {
        let (net, mask) = prefix_bytes(prefix);
        exprs.push(Expr::Bitwise {
            sreg: reg,
            dreg: scratch,
            xor: vec![0; mask.len()],
            mask,
        });
        exprs.push(Expr::Cmp {
            sreg: scratch,
            op: CmpOp::Neq,
            data: net,
        });
    }
    exprs
}

/// Offsets of what a rule keys on: (MAC in the link-layer header, device's
/// IP in the network header, the far end's IP).
fn offsets(direction: Direction, v6: bool) -> (u32, u32, u32) {
    match (direction, v6) {
        (Direction::Sent, false) => (6, 12, 16),
        (Direction::Received, false) => (0, 16, 12),
        (Direction::Sent, true) => (6, 8, 24),
        (Direction::Received, true) => (0, 24, 8),
    }
}

fn chain_name(direction: Direction, device: &str) -> String {
    match direction {
        Direction::Sent => format!("sent_{device}"),
        Direction::Received => format!("received_{device}"),
    }
}

/// Builds the whole table as one batch: added, deleted and added again, so
/// it replaces any previous copy atomically whether or not one existed.
pub fn install_batch(plan: &Plan) -> Batch {
    install_batch_with(plan, &rules)
}

/// The rules of one chain for one IP version, given the plan, the LAN
/// device, the direction, whether IPv6 and the counting set's name.
pub type RuleBuilder<'a> = dyn Fn(&Plan, &str, Direction, bool, &str) -> Vec<Vec<Expr>> + 'a;

/// The table with its sets and chains, each chain holding what `rules`
/// builds: netmeter's own rules in [`install_batch`]; the benchmark
/// (`benches/devices.rs`) passes variants to measure what each part costs.
pub fn install_batch_with(plan: &Plan, rules: &RuleBuilder<'_>) -> Batch {
    let family = plan.hooks.family();
    let mut b = Batch::new();
    b.add_table(family, TABLE);
    b.delete_table(family, TABLE);
    b.add_table(family, TABLE);
    for (id, (name, direction, version)) in SETS.iter().enumerate() {
        let (ty, len) = if *version == 4 {
            (TYPE_IPADDR, 4)
        } else {
            (TYPE_IP6ADDR, 16)
        };
        let with_mac = *direction == Direction::Sent || plan.hooks.received_has_mac();
        b.add_set(
            family,
            TABLE,
            &SetSpec {
                name: name.to_string(),
                key_type: if with_mac {
                    concat_type(TYPE_ETHERADDR, ty)
                } else {
                    ty
                },
                key_len: if with_mac { 8 + len } else { len },
                flags: NFT_SET_TIMEOUT | NFT_SET_EVAL,
                timeout_ms: Some(plan.element_timeout_ms),
                size: Some(plan.set_size),
                id: id as u32 + 1,
            },
        );
    }
    // Blocks are netmeter-full's: the core leaves their code out.
    if cfg!(feature = "quota") && plan.block {
        add_block(&mut b, plan);
    }
    b.add_counter_object(family, TABLE, UNATTRIBUTED_SENT);
    b.add_counter_object(family, TABLE, UNATTRIBUTED_RECEIVED);
    if plan.hooks == Hooks::Forward {
        let base = BaseChain {
            hook: Hook::Forward as u32,
            priority: -500,
            chain_type: "filter",
            device: None,
        };
        b.add_chain(family, TABLE, "forward", Some(&base));
    }
    for device in &plan.lan_devices {
        for direction in [Direction::Sent, Direction::Received] {
            let chain = match plan.hooks {
                Hooks::Netdev => {
                    let chain = chain_name(direction, device);
                    let hook = match direction {
                        Direction::Sent => NetdevHook::Ingress,
                        Direction::Received => NetdevHook::Egress,
                    };
                    b.add_chain(
                        family,
                        TABLE,
                        &chain,
                        Some(&BaseChain {
                            hook: hook as u32,
                            priority: -500,
                            chain_type: "filter",
                            device: Some(device.clone()),
                        }),
                    );
                    chain
                }
                Hooks::Forward => "forward".to_string(),
            };
            for (set, _, version) in SETS.iter().filter(|s| s.1 == direction) {
                for rule in rules(plan, device, direction, *version == 6, set) {
                    b.add_rule(family, TABLE, &chain, &rule);
                }
            }
        }
    }
    b
}

/// The `blocked` set and, per LAN device, chains that drop what a blocked
/// MAC sends beyond the LAN's own prefixes (netdev ingress, or forward)
/// and, at netdev egress, what comes to it from beyond them. Traffic to
/// the router's LAN addresses and within the LAN goes on.
fn add_block(b: &mut Batch, plan: &Plan) {
    let family = plan.hooks.family();
    b.add_set(
        family,
        TABLE,
        &SetSpec {
            name: BLOCKED.into(),
            key_type: TYPE_ETHERADDR,
            key_len: 6,
            flags: 0,
            timeout_ms: None,
            size: Some(crate::store::quota::MAX_QUOTAS as u32 * 64),
            id: 10,
        },
    );
    let directions: &[Direction] = match plan.hooks {
        Hooks::Netdev => &[Direction::Sent, Direction::Received],
        // The forward chain has no MAC for what goes to a device.
        Hooks::Forward => &[Direction::Sent],
    };
    for device in &plan.lan_devices {
        for &direction in directions {
            let chain = format!("block_{}", chain_name(direction, device));
            let hook = match (plan.hooks, direction) {
                (Hooks::Forward, _) => Hook::Forward as u32,
                (Hooks::Netdev, Direction::Sent) => NetdevHook::Ingress as u32,
                (Hooks::Netdev, Direction::Received) => NetdevHook::Egress as u32,
            };
            b.add_chain(
                family,
                TABLE,
                &chain,
                Some(&BaseChain {
                    hook,
                    priority: BLOCK_PRIORITY,
                    chain_type: "filter",
                    device: (plan.hooks == Hooks::Netdev).then(|| device.clone()),
                }),
            );
            for v6 in [false, true] {
                b.add_rule(
                    family,
                    TABLE,
                    &chain,
                    &block_rule(plan, device, direction, v6),
                );
            }
        }
    }
}

/// Drop when the device's MAC is in `blocked` and the far end is beyond
/// the LAN.
fn block_rule(plan: &Plan, device: &str, direction: Direction, v6: bool) -> Vec<Expr> {
    let (mac_at, _, far_at) = offsets(direction, v6);
    let proto: [u8; 2] = if v6 { [0x86, 0xdd] } else { [0x08, 0x00] };
    const SCRATCH: u32 = NFT_REG_4;
    const MASKED: u32 = NFT_REG_3;
    let mut rule = Vec::new();
    if plan.hooks == Hooks::Forward {
        rule.push(Expr::Meta {
            key: MetaKey::IifName,
            dreg: SCRATCH,
        });
        rule.push(Expr::Cmp {
            sreg: SCRATCH,
            op: CmpOp::Eq,
            data: Expr::ifname(device),
        });
    }
    rule.extend([
        Expr::Meta {
            key: MetaKey::Protocol,
            dreg: SCRATCH,
        },
        Expr::Cmp {
            sreg: SCRATCH,
            op: CmpOp::Eq,
            data: proto.to_vec(),
        },
        Expr::Payload {
            base: PayloadBase::LinkLayer,
            offset: mac_at,
            len: 6,
            dreg: NFT_REG_1,
        },
        Expr::Lookup {
            set: BLOCKED.into(),
            sreg: NFT_REG_1,
            invert: false,
        },
        Expr::Payload {
            base: PayloadBase::Network,
            offset: far_at,
            len: if v6 { 16 } else { 4 },
            dreg: SCRATCH,
        },
    ]);
    rule.extend(outside(&plan.local_prefixes, v6, SCRATCH, MASKED));
    rule.push(Expr::Drop);
    rule
}

/// Makes the `blocked` set hold exactly `macs`, in one batch.
pub fn set_blocked(
    socket: &mut NetlinkSocket,
    hooks: Hooks,
    macs: &[Mac],
) -> Result<(), NetlinkError> {
    let family = hooks.family();
    let mut b = Batch::new();
    b.flush_set(family, TABLE, BLOCKED);
    let keys: Vec<Vec<u8>> = macs.iter().map(|m| m.0.to_vec()).collect();
    if !keys.is_empty() {
        b.add_keys(family, TABLE, BLOCKED, &keys);
    }
    socket.batch(b.finish(), "updating the MACs a quota blocks")
}

/// Two rules per chain and IP version: the counting rule and, after it,
/// the rule reached only when the set was full (its traffic goes to the
/// unattributed counter). Every address is loaded once and tested from its
/// register: the far end against each local prefix first (traffic to the
/// router itself ends there), the device's own address — loaded straight
/// into the set key's registers — against each never-a-device prefix, then
/// the group bit of the MAC, loaded once into the key too. For IPv4 every
/// mask and compare is one of nf_tables' inline fast-path expressions.
fn rules(plan: &Plan, device: &str, direction: Direction, v6: bool, set: &str) -> Vec<Vec<Expr>> {
    let (mac_at, own_at, far_at) = offsets(direction, v6);
    let addr_len = if v6 { 16 } else { 4 };
    let proto: [u8; 2] = if v6 { [0x86, 0xdd] } else { [0x08, 0x00] };
    let with_mac = direction == Direction::Sent || plan.hooks.received_has_mac();
    // The key: the MAC (6 bytes and 2 of padding) then the address, or
    // the address alone.
    let ip_reg = if with_mac {
        NFT_REG32_00 + 2
    } else {
        NFT_REG32_00
    };
    // Tests use registers past the key's (`NFT_REG32_00` to `_05`, which
    // `NFT_REG_1` and `NFT_REG_2` share): the far end's address in one,
    // masked copies in the other.
    const SCRATCH: u32 = NFT_REG_4;
    const MASKED: u32 = NFT_REG_3;
    let not_a_device: Vec<IpPrefix> = NOT_A_DEVICE.iter().map(builtin).collect();
    let mut matched = Vec::new();
    if plan.hooks == Hooks::Forward {
        // One chain for every LAN device: match the device by name.
        let key = match direction {
            Direction::Sent => MetaKey::IifName,
            Direction::Received => MetaKey::OifName,
        };
        matched.push(Expr::Meta { key, dreg: SCRATCH });
        matched.push(Expr::Cmp {
            sreg: SCRATCH,
            op: CmpOp::Eq,
            data: Expr::ifname(device),
        });
    }
    matched.extend([
        Expr::Meta {
            key: MetaKey::Protocol,
            dreg: SCRATCH,
        },
        Expr::Cmp {
            sreg: SCRATCH,
            op: CmpOp::Eq,
            data: proto.to_vec(),
        },
        Expr::Payload {
            base: PayloadBase::Network,
            offset: far_at,
            len: addr_len,
            dreg: SCRATCH,
        },
    ]);
    matched.extend(outside(&plan.local_prefixes, v6, SCRATCH, MASKED));
    matched.push(Expr::Payload {
        base: PayloadBase::Network,
        offset: own_at,
        len: addr_len,
        dreg: ip_reg,
    });
    matched.extend(outside(&not_a_device, v6, ip_reg, MASKED));
    if with_mac {
        matched.extend([
            Expr::Payload {
                base: PayloadBase::LinkLayer,
                offset: mac_at,
                len: 6,
                dreg: NFT_REG32_00,
            },
            // The Ethernet group bit: multicast and broadcast MACs.
            Expr::Bitwise {
                sreg: NFT_REG32_00,
                dreg: SCRATCH,
                mask: vec![1],
                xor: vec![0],
            },
            Expr::Cmp {
                sreg: SCRATCH,
                op: CmpOp::Eq,
                data: vec![0],
            },
        ]);
    }
    let mut count = matched.clone();
    count.extend([
        Expr::DynsetUpdateCounter {
            set: set.to_string(),
            sreg_key: NFT_REG32_00,
            timeout_ms: None,
        },
        Expr::Accept,
    ]);
    let unattributed = match direction {
        Direction::Sent => UNATTRIBUTED_SENT,
        Direction::Received => UNATTRIBUTED_RECEIVED,
    };
    matched.push(Expr::ObjrefCounter {
        name: unattributed.to_string(),
    });
    vec![count, matched]
}

/// Installs (or atomically replaces) netmeter's table.
pub fn install(socket: &mut NetlinkSocket, plan: &Plan) -> Result<(), NetlinkError> {
    socket.batch(
        install_batch(plan).finish(),
        &format!(
            "installing netmeter's nftables table on {}",
            plan.lan_devices.join(", ")
        ),
    )
}

/// Removes netmeter's table(s), whichever placement made them; false when
/// there was none.
pub fn teardown(socket: &mut NetlinkSocket) -> Result<bool, NetlinkError> {
    let mut removed = false;
    for hooks in [Hooks::Netdev, Hooks::Forward] {
        let mut b = Batch::new();
        b.delete_table(hooks.family(), TABLE);
        match socket.batch(b.finish(), "removing netmeter's nftables table") {
            Ok(()) => removed = true,
            Err(e) if e.errno() == Some(libc::ENOENT) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(removed)
}

/// One read of every set and the unattributed counters.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Reading {
    pub samples: Vec<DeviceSample>,
    /// Forward placement: received traffic keyed by IP alone, for the
    /// caller to tie to a MAC (direction, IP, bytes, packets).
    pub by_ip: Vec<(Direction, IpAddr, u64, u64)>,
    pub unattributed: UnattributedSample,
}

#[derive(Debug)]
pub enum ReadError {
    /// The table is gone (firewall restart, `nft flush ruleset`).
    TableMissing,
    Netlink(NetlinkError),
}

impl std::fmt::Display for ReadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReadError::TableMissing => write!(f, "netmeter's nftables table is missing"),
            ReadError::Netlink(e) => write!(f, "{e}"),
        }
    }
}

fn missing_or(e: NetlinkError) -> ReadError {
    if e.errno() == Some(libc::ENOENT) {
        ReadError::TableMissing
    } else {
        ReadError::Netlink(e)
    }
}

/// The address of an IP-only key.
fn decode_ip_key(key: &[u8]) -> Option<IpAddr> {
    match key.len() {
        4 => Some(IpAddr::from(<[u8; 4]>::try_from(key).ok()?)),
        16 => Some(IpAddr::from(<[u8; 16]>::try_from(key).ok()?)),
        _ => None,
    }
}

/// The (MAC, IP) in a set key: 6 bytes of MAC, 2 of padding, the address.
fn decode_key(key: &[u8]) -> Option<(Mac, IpAddr)> {
    let mac = Mac(key.get(..6)?.try_into().ok()?);
    let ip = match key.len() {
        12 => IpAddr::from(<[u8; 4]>::try_from(&key[8..12]).ok()?),
        24 => IpAddr::from(<[u8; 16]>::try_from(&key[8..24]).ok()?),
        _ => return None,
    };
    Some((mac, ip))
}

fn encode_key(mac: &Mac, ip: &IpAddr) -> Vec<u8> {
    let mut key = mac.0.to_vec();
    key.extend([0, 0]);
    match ip {
        IpAddr::V4(a) => key.extend(a.octets()),
        IpAddr::V6(a) => key.extend(a.octets()),
    }
    key
}

/// Reads every set. Received counts at netdev egress include the Ethernet
/// header: it is taken off here, so every figure is IP-layer bytes.
pub fn read(socket: &mut NetlinkSocket, hooks: Hooks) -> Result<Reading, ReadError> {
    let family = hooks.family();
    let l2 = |direction: Direction| match (hooks, direction) {
        (Hooks::Netdev, Direction::Received) => L2_HEADER,
        _ => 0,
    };
    let mut reading = Reading::default();
    for (set, direction, _) in SETS {
        let (samples, by_ip) = (&mut reading.samples, &mut reading.by_ip);
        let with_mac = direction == Direction::Sent || hooks.received_has_mac();
        socket
            .dump(
                set_elements_request(family, TABLE, set),
                &format!("reading set {set}"),
                |msg| {
                    parse_set_elements(msg, |e| {
                        let bytes = e.bytes.saturating_sub(l2(direction) * e.packets);
                        if with_mac {
                            if let Some((mac, ip)) = decode_key(&e.key) {
                                samples.push(DeviceSample {
                                    direction,
                                    mac,
                                    ip,
                                    bytes,
                                    packets: e.packets,
                                });
                            }
                        } else if let Some(ip) = decode_ip_key(&e.key) {
                            by_ip.push((direction, ip, bytes, e.packets));
                        }
                    })
                },
            )
            .map_err(missing_or)?;
    }
    let u = &mut reading.unattributed;
    socket
        .dump(
            counter_objects_request(family, TABLE),
            "reading the unattributed counters",
            |msg| {
                if let Some((name, bytes, packets)) = parse_counter_object(msg)? {
                    match name.as_str() {
                        UNATTRIBUTED_SENT => (u.tx_bytes, u.tx_packets) = (bytes, packets),
                        UNATTRIBUTED_RECEIVED => {
                            let l2 = l2(Direction::Received);
                            (u.rx_bytes, u.rx_packets) =
                                (bytes.saturating_sub(l2 * packets), packets)
                        }
                        _ => {}
                    }
                }
                Ok(())
            },
        )
        .map_err(missing_or)?;
    Ok(reading)
}

/// Deletes elements netmeter has read for the last time (idle devices).
pub fn delete_elements(
    socket: &mut NetlinkSocket,
    hooks: Hooks,
    keys: &[(Direction, Mac, IpAddr)],
) -> Result<(), NetlinkError> {
    let mut b = Batch::new();
    for (set, direction, version) in SETS {
        let with_mac = direction == Direction::Sent || hooks.received_has_mac();
        let mut of_set: Vec<Vec<u8>> = keys
            .iter()
            .filter(|(d, _, ip)| *d == direction && (ip.is_ipv4() == (version == 4)))
            .map(|(_, mac, ip)| {
                let key = encode_key(mac, ip);
                if with_mac { key } else { key[8..].to_vec() }
            })
            .collect();
        // Several devices may share an IP-only key; delete it once.
        of_set.sort();
        of_set.dedup();
        if !of_set.is_empty() {
            b.delete_set_elements(hooks.family(), TABLE, set, &of_set);
        }
    }
    socket.batch(b.finish(), "deleting idle devices' set elements")
}

/// Which placement's table is installed, if any.
pub fn installed(socket: &mut NetlinkSocket) -> Result<Option<Hooks>, NetlinkError> {
    let mut found = None;
    socket.dump(tables_request(), "listing nftables tables", |msg| {
        let (family, name) = parse_table(msg)?;
        if name == TABLE {
            for hooks in [Hooks::Netdev, Hooks::Forward] {
                if family == hooks.family() as u8 {
                    found = Some(hooks);
                }
            }
        }
        Ok(())
    })?;
    Ok(found)
}

/// Whether the kernel refused a netdev egress chain: Linux before 5.16.
pub fn is_egress_unsupported(e: &NetlinkError) -> bool {
    e.errno() == Some(libc::EOPNOTSUPP)
}

/// Every flowtable on the router (flow offloading), from any table.
pub fn flowtables(socket: &mut NetlinkSocket) -> Result<Vec<Flowtable>, NetlinkError> {
    let mut all = Vec::new();
    socket.dump(flowtables_request(), "listing flowtables", |msg| {
        all.push(parse_flowtable(msg)?);
        Ok(())
    })?;
    Ok(all)
}

/// The prefixes of the addresses on these devices (the LAN's subnets).
/// The devices the netdev hooks go on: a bridge's ports rather than the
/// bridge. A software flowtable is bound to the ports (fw4 lists them), so
/// offloaded packets go port ⇄ WAN and never pass the bridge's own hooks;
/// the ports see them, and every bridged packet crosses exactly one port
/// in each direction. A bridge without ports is hooked itself.
pub fn hook_devices(lan: &[String], links: &[crate::account::LinkSample]) -> Vec<String> {
    let mut hooked = Vec::new();
    for name in lan {
        let Some(bridge) = links.iter().find(|l| &l.name == name) else {
            continue;
        };
        let mut ports: Vec<String> = links
            .iter()
            .filter(|l| l.master == Some(bridge.ifindex))
            .map(|l| l.name.clone())
            .collect();
        ports.sort();
        if ports.is_empty() {
            ports.push(name.clone());
        }
        for port in ports {
            if !hooked.contains(&port) {
                hooked.push(port);
            }
        }
    }
    hooked
}

pub fn lan_prefixes(
    route: &mut NetlinkSocket,
    links: &[crate::account::LinkSample],
    devices: &[String],
) -> Result<Vec<IpPrefix>, NetlinkError> {
    let indexes: Vec<u32> = links
        .iter()
        .filter(|l| devices.contains(&l.name))
        .map(|l| l.ifindex)
        .collect();
    let mut prefixes = Vec::new();
    route.dump(
        address_dump_request(),
        "reading the LAN's addresses",
        |msg| {
            let a = AddressMessage::parse(msg)?;
            if indexes.contains(&a.index)
                && let Some(p) = IpPrefix::network_of(a.address, a.prefix_len)
            {
                prefixes.push(p);
            }
            Ok(())
        },
    )?;
    prefixes.sort_by_key(|p| (p.addr, p.len));
    prefixes.dedup();
    Ok(prefixes)
}

#[cfg(test)]
mod bridge_tests {
    use super::hook_devices;
    use crate::account::{CounterWidth, LinkCounters, LinkSample};

    fn link(name: &str, ifindex: u32, master: Option<u32>) -> LinkSample {
        LinkSample {
            ifindex,
            name: name.into(),
            width: CounterWidth::Bits64,
            header_bytes: 14,
            master,
            counters: LinkCounters::default(),
        }
    }

    #[test]
    fn a_bridge_is_counted_on_its_ports_and_a_plain_device_on_itself() {
        let links = [
            link("br-lan", 5, None),
            link("lan2", 7, Some(5)),
            link("lan1", 6, Some(5)),
            link("wlan0", 8, Some(5)),
            link("eth1", 9, None),
            link("br-guest", 10, None),
            link("wan", 2, None),
        ];
        let lan = |names: &[&str]| names.iter().map(|n| n.to_string()).collect::<Vec<_>>();
        assert_eq!(
            hook_devices(&lan(&["br-lan", "eth1"]), &links),
            ["lan1", "lan2", "wlan0", "eth1"]
        );
        // An empty bridge is hooked itself; a missing name is skipped.
        assert_eq!(
            hook_devices(&lan(&["br-guest", "nope"]), &links),
            ["br-guest"]
        );
        // A port listed as well as its bridge is hooked once.
        assert_eq!(
            hook_devices(&lan(&["lan1", "br-lan"]), &links),
            ["lan1", "lan2", "wlan0"]
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_round_trip_for_both_address_families() {
        let mac = Mac([2, 1, 2, 3, 4, 5]);
        for ip in ["10.0.0.2", "fd00::1:2"] {
            let ip: IpAddr = ip.parse().unwrap();
            assert_eq!(decode_key(&encode_key(&mac, &ip)), Some((mac, ip)));
        }
        assert_eq!(decode_key(&[0; 7]), None);
    }

    fn prefixes(list: &[&str]) -> Vec<IpPrefix> {
        list.iter().map(|p| p.parse().unwrap()).collect()
    }

    #[test]
    fn prefixes_become_network_and_mask_bytes() {
        let (net, mask) = prefix_bytes(&"fe80::/10".parse().unwrap());
        assert_eq!(
            (net[0], net[1], mask[0], mask[1], mask[2]),
            (0xfe, 0x80, 0xff, 0xc0, 0)
        );
    }

    /// The 4-byte words a register names, `NFT_REG32_00` being word 0:
    /// the 16-byte registers share them (`NFT_REG_1` is words 0 to 3).
    fn words(reg: u32, len: u32) -> std::ops::Range<u32> {
        let first = if reg <= NFT_REG_4 {
            (reg - 1) * 4
        } else {
            reg - NFT_REG32_00
        };
        first..first + len.div_ceil(4)
    }

    #[test]
    fn no_test_overwrites_the_key_once_it_is_loaded() {
        for hooks in [Hooks::Netdev, Hooks::Forward] {
            let plan = Plan::new(
                hooks,
                vec!["lan0".into()],
                &prefixes(&["10.0.1.0/24"]),
                64,
                1,
            );
            for (set, direction, version) in SETS {
                let v6 = version == 6;
                let [count, overflow] = &rules(&plan, "lan0", direction, v6, set)[..] else {
                    panic!("two rules");
                };
                assert_eq!(count.last(), Some(&Expr::Accept));
                assert_eq!(
                    &count[..overflow.len() - 1],
                    &overflow[..overflow.len() - 1]
                );
                let Some(Expr::DynsetUpdateCounter { sreg_key, .. }) = count.iter().rev().nth(1)
                else {
                    panic!("{set}: no update before accept");
                };
                let key_len = match (direction == Direction::Sent || hooks == Hooks::Netdev, v6) {
                    (true, false) => 12,
                    (true, true) => 24,
                    (false, false) => 4,
                    (false, true) => 16,
                };
                let key = words(*sreg_key, key_len);
                // Each word of the key is written by one load, and no
                // other expression writes any of them.
                let mut written = Vec::new();
                for e in count {
                    let (dreg, len) = match e {
                        Expr::Meta {
                            key: MetaKey::Protocol,
                            dreg,
                        } => (*dreg, 2),
                        Expr::Meta { dreg, .. } => (*dreg, 16),
                        Expr::Payload { dreg, len, .. } => (*dreg, *len),
                        Expr::Bitwise { dreg, mask, .. } => (*dreg, mask.len() as u32),
                        _ => continue,
                    };
                    let w = words(dreg, len);
                    let in_key = w.clone().filter(|w| key.contains(w)).count();
                    if in_key > 0 {
                        assert!(
                            matches!(e, Expr::Payload { .. }) && in_key == w.len(),
                            "{set} ({hooks:?}): {e:?} writes into the key"
                        );
                        assert!(
                            w.clone().all(|w| !written.contains(&w)),
                            "{set}: {e:?} rewrites the key"
                        );
                        written.extend(w);
                    }
                }
                written.sort();
                assert_eq!(written, key.collect::<Vec<_>>(), "{set} ({hooks:?})");
            }
        }
    }

    #[test]
    fn the_plan_always_leaves_out_link_local_and_multicast() {
        let plan = Plan::new(
            Hooks::Netdev,
            vec!["br-lan".into()],
            &["192.168.1.0/24".parse().unwrap()],
            1024,
            3_600_000,
        );
        let has = |p: &str| plan.local_prefixes.contains(&p.parse().unwrap());
        assert!(has("192.168.1.0/24") && has("224.0.0.0/4") && has("fe80::/10") && has("ff00::/8"));
        assert!(has("0.0.0.0/32") && has("::/128"), "unspecified sources");
        assert_eq!(plan.set_size, 4096);
    }
}
