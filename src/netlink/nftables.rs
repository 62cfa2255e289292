//! nf_tables over nfnetlink: batches that create or delete tables, chains
//! and rules. A batch is applied by the kernel atomically: all or nothing.

use super::message::{NLM_F_ACK, NLM_F_APPEND, NLM_F_CREATE, NLM_F_DUMP, NLM_F_REQUEST};
use super::{AttrIter, Malformed, Message, MessageBuilder};

const NFNL_SUBSYS_NFTABLES: u16 = 10;
const NFNL_MSG_BATCH_BEGIN: u16 = 0x10;
const NFNL_MSG_BATCH_END: u16 = 0x11;

const NFT_MSG_NEWTABLE: u16 = 0;
const NFT_MSG_GETTABLE: u16 = 1;
const NFT_MSG_DELTABLE: u16 = 2;
const NFT_MSG_NEWCHAIN: u16 = 3;
const NFT_MSG_NEWRULE: u16 = 6;
const NFT_MSG_NEWSET: u16 = 9;
const NFT_MSG_NEWSETELEM: u16 = 12;
const NFT_MSG_GETSETELEM: u16 = 13;
const NFT_MSG_DELSETELEM: u16 = 14;
const NFT_MSG_NEWOBJ: u16 = 18;
const NFT_MSG_GETOBJ: u16 = 19;
const NFT_MSG_NEWFLOWTABLE: u16 = 22;
const NFT_MSG_GETFLOWTABLE: u16 = 23;
const NFTA_OBJ_TABLE: u16 = 1;
const NFTA_OBJ_NAME: u16 = 2;
const NFTA_OBJ_TYPE: u16 = 3;
const NFTA_OBJ_DATA: u16 = 4;
const NFT_OBJECT_COUNTER: u32 = 1;
const NFTA_OBJREF_IMM_TYPE: u16 = 1;
const NFTA_OBJREF_IMM_NAME: u16 = 2;
const NFTA_IMMEDIATE_DREG: u16 = 1;
const NFTA_IMMEDIATE_DATA: u16 = 2;
const NFTA_DATA_VERDICT: u16 = 2;
const NFTA_VERDICT_CODE: u16 = 1;
const NF_ACCEPT: u32 = 1;
/// Only in the chains of a `block` quota.
const NF_DROP: u32 = 0;
const NFTA_FLOWTABLE_TABLE: u16 = 1;
const NFTA_FLOWTABLE_NAME: u16 = 2;
const NFTA_FLOWTABLE_HOOK: u16 = 3;
const NFTA_FLOWTABLE_FLAGS: u16 = 7;
const NFTA_FLOWTABLE_HOOK_NUM: u16 = 1;
const NFTA_FLOWTABLE_HOOK_PRIORITY: u16 = 2;
const NFTA_FLOWTABLE_HOOK_DEVS: u16 = 3;
const NFTA_DEVICE_NAME: u16 = 1;
const NFTA_FLOW_TABLE_NAME: u16 = 1;
/// A flowtable whose flows the NIC forwards: no software hook sees them.
pub const NF_FLOWTABLE_HW_OFFLOAD: u32 = 0x1;
/// A flowtable that keeps conntrack's byte counters of offloaded flows
/// (`flags counter`, as fw4 sets it).
pub const NF_FLOWTABLE_COUNTER: u32 = 0x2;

const NFTA_TABLE_NAME: u16 = 1;
const NFTA_CHAIN_TABLE: u16 = 1;
const NFTA_CHAIN_NAME: u16 = 3;
const NFTA_CHAIN_HOOK: u16 = 4;
const NFTA_CHAIN_POLICY: u16 = 5;
const NFTA_CHAIN_TYPE: u16 = 7;
const NFTA_HOOK_HOOKNUM: u16 = 1;
const NFTA_HOOK_PRIORITY: u16 = 2;
const NFTA_HOOK_DEV: u16 = 3;
const NFTA_RULE_TABLE: u16 = 1;
const NFTA_RULE_CHAIN: u16 = 2;
const NFTA_RULE_EXPRESSIONS: u16 = 4;
const NFTA_LIST_ELEM: u16 = 1;
const NFTA_EXPR_NAME: u16 = 1;
const NFTA_EXPR_DATA: u16 = 2;
const NFTA_META_DREG: u16 = 1;
const NFTA_META_KEY: u16 = 2;
const NFTA_CT_DREG: u16 = 1;
const NFTA_CT_KEY: u16 = 2;
const NFT_CT_STATE: u32 = 0;
const NFTA_CMP_SREG: u16 = 1;
const NFTA_CMP_OP: u16 = 2;
const NFTA_CMP_DATA: u16 = 3;
const NFTA_DATA_VALUE: u16 = 1;
const NFTA_PAYLOAD_DREG: u16 = 1;
const NFTA_PAYLOAD_BASE: u16 = 2;
const NFTA_PAYLOAD_OFFSET: u16 = 3;
const NFTA_PAYLOAD_LEN: u16 = 4;
const NFTA_BITWISE_SREG: u16 = 1;
const NFTA_BITWISE_DREG: u16 = 2;
const NFTA_BITWISE_LEN: u16 = 3;
const NFTA_BITWISE_MASK: u16 = 4;
const NFTA_BITWISE_XOR: u16 = 5;
const NFTA_LOOKUP_SET: u16 = 1;
const NFTA_LOOKUP_SREG: u16 = 2;
const NFTA_LOOKUP_FLAGS: u16 = 5;
/// `!= @set`: the rule goes on only when the key is *not* in the set.
const NFT_LOOKUP_F_INV: u32 = 1;
const NFTA_DYNSET_SET_NAME: u16 = 1;
const NFTA_DYNSET_OP: u16 = 3;
const NFTA_DYNSET_SREG_KEY: u16 = 4;
const NFTA_DYNSET_TIMEOUT: u16 = 6;
const NFTA_DYNSET_EXPR: u16 = 7;
const NFTA_SET_TABLE: u16 = 1;
const NFTA_SET_NAME: u16 = 2;
const NFTA_SET_FLAGS: u16 = 3;
const NFTA_SET_KEY_TYPE: u16 = 4;
const NFTA_SET_KEY_LEN: u16 = 5;
const NFTA_SET_DESC: u16 = 9;
const NFTA_SET_DESC_SIZE: u16 = 1;
const NFTA_SET_ID: u16 = 10;
const NFTA_SET_TIMEOUT: u16 = 11;
const NFTA_SET_ELEM_LIST_TABLE: u16 = 1;
const NFTA_SET_ELEM_LIST_SET: u16 = 2;
const NFTA_SET_ELEM_LIST_ELEMENTS: u16 = 3;
const NFTA_SET_ELEM_KEY: u16 = 1;
const NFTA_SET_ELEM_FLAGS: u16 = 3;
/// An interval set's element that ends a range (the first key past it).
const NFT_SET_ELEM_INTERVAL_END: u32 = 1;
const NFTA_SET_ELEM_EXPIRATION: u16 = 5;
const NFTA_SET_ELEM_EXPR: u16 = 7;
const NFTA_SET_ELEM_EXPRESSIONS: u16 = 11;
const NFTA_COUNTER_BYTES: u16 = 1;
const NFTA_COUNTER_PACKETS: u16 = 2;

/// Most elements `Batch::add_set_elements` puts in one message: an IPv6
/// element with its counter takes 84 bytes, and a nest holds 64 KiB.
pub const ELEMENTS_PER_MESSAGE: usize = 500;

/// Set flags (`NFT_SET_*`).
/// Elements cannot change once a rule uses the set (`flags constant`).
pub const NFT_SET_CONSTANT: u32 = 0x2;
/// Elements are ranges of keys (`flags interval`): see [`Interval`].
pub const NFT_SET_INTERVAL: u32 = 0x4;
pub const NFT_SET_TIMEOUT: u32 = 0x10;
/// A set that rules add elements to while packets pass (`dynamic`).
pub const NFT_SET_EVAL: u32 = 0x20;

/// nft's data type ids, for a set's key type (concatenations shift by 6 bits).
pub const TYPE_IPADDR: u32 = 7;
pub const TYPE_IP6ADDR: u32 = 8;
pub const TYPE_ETHERADDR: u32 = 9;

/// Concatenated key type as nft computes it: earlier fields in higher bits.
pub const fn concat_type(first: u32, second: u32) -> u32 {
    (first << 6) | second
}

/// The first 16-byte register; expressions pass data through registers.
pub const NFT_REG_1: u32 = 1;
/// The last two 16-byte registers: the same bytes as `NFT_REG32_08` to
/// `_11` and `NFT_REG32_12` to `_15`.
pub const NFT_REG_3: u32 = 3;
pub const NFT_REG_4: u32 = 4;
/// The first 4-byte register. Concatenated keys are built in consecutive
/// 4-byte registers, each field rounded up to 4 bytes. The two sizes share
/// storage: `NFT_REG_1` is `NFT_REG32_00` to `_03`, `NFT_REG_2` the next
/// four, and so on.
pub const NFT_REG32_00: u32 = 8;

/// nf_tables address families (`NFPROTO_*`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Family {
    Inet = 1,
    Ipv4 = 2,
    Netdev = 5,
    Ipv6 = 10,
}

/// Where a base chain attaches. Numbers are the kernel's hook numbers for
/// the chain's family.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Hook {
    Prerouting = 0,
    Input = 1,
    Forward = 2,
    Output = 3,
    Postrouting = 4,
}

/// Netdev-family hooks, which attach to one device.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NetdevHook {
    Ingress = 0,
    Egress = 1,
}

/// A chain the kernel calls from a hook.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BaseChain {
    /// The hook number (see [`Hook`] and [`NetdevHook`]).
    pub hook: u32,
    pub priority: i32,
    /// "filter", "nat" or "route".
    pub chain_type: &'static str,
    /// The device, for netdev chains.
    pub device: Option<String>,
}

/// `meta` keys netmeter uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MetaKey {
    /// The link-layer protocol (ETH_P_IP, ETH_P_IPV6), big-endian u16.
    Protocol = 1,
    IifName = 6,
    OifName = 7,
    /// The layer-3 family (NFPROTO_IPV4, NFPROTO_IPV6), one byte: what an
    /// `inet` table tests before an `ip`/`ip6` match.
    NfProto = 15,
    /// The transport protocol (IPPROTO_TCP, IPPROTO_UDP), one byte.
    L4Proto = 16,
}

/// Where a `payload` offset counts from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PayloadBase {
    LinkLayer = 0,
    Network = 1,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CmpOp {
    Eq = 0,
    Neq = 1,
}

/// A set to create.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SetSpec {
    pub name: String,
    /// An nft type id (e.g. `concat_type(TYPE_ETHERADDR, TYPE_IPADDR)`).
    pub key_type: u32,
    /// Key bytes, each concatenated field rounded up to 4.
    pub key_len: u32,
    pub flags: u32,
    /// Elements expire after this long without an update.
    pub timeout_ms: Option<u64>,
    /// The most elements the kernel will hold; further updates fail.
    pub size: Option<u32>,
    /// Names the set within one batch.
    pub id: u32,
}

/// The expressions a rule is built from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Expr {
    /// Load a packet's metadata into a register.
    Meta { key: MetaKey, dreg: u32 },
    /// Stop the rule unless the register compares to `data` by `op`.
    Cmp { sreg: u32, op: CmpOp, data: Vec<u8> },
    /// Load `len` bytes of the packet from `offset` past `base`.
    Payload {
        base: PayloadBase,
        offset: u32,
        len: u32,
        dreg: u32,
    },
    /// `dreg = (sreg & mask) ^ xor` over `mask.len()` bytes.
    Bitwise {
        sreg: u32,
        dreg: u32,
        mask: Vec<u8>,
        xor: Vec<u8>,
    },
    /// Stop the rule unless the key in `sreg…` is in `set` (with `invert`:
    /// unless it is *not*): `ip daddr @set`, `ip daddr != @set`.
    Lookup {
        set: String,
        sreg: u32,
        invert: bool,
    },
    /// Count into the named counter object.
    ObjrefCounter { name: String },
    /// End this chain for the packet (other chains and hooks still see it).
    Accept,
    /// The verdict drop (netmeter drops only what a `block` quota asks).
    Drop,
    /// Add the key in `sreg_key…` to `set` or refresh it, with a per-element
    /// counter: `update @set { key counter }`.
    DynsetUpdateCounter {
        set: String,
        sreg_key: u32,
        timeout_ms: Option<u64>,
    },
    /// Source NAT to the outgoing interface's address.
    Masquerade,
    /// Count packets and bytes.
    Counter,
    /// Load the packet's conntrack state into a register. A rule holding it
    /// makes the kernel track connections of the table's family in this
    /// namespace (both IPv4 and IPv6 for `inet`).
    CtState { dreg: u32 },
    /// Offload the packet's connection to the named flowtable
    /// (`flow add @name`); the kernel does it once the flow is established.
    FlowOffload { flowtable: String },
}

impl Expr {
    /// Compares an interface name as the kernel stores it: NUL-padded to IFNAMSIZ.
    pub fn ifname(name: &str) -> Vec<u8> {
        let mut b = name.as_bytes().to_vec();
        b.resize(16, 0);
        b
    }

    fn encode(&self, m: &mut MessageBuilder) {
        m.nest_start(NFTA_LIST_ELEM);
        match self {
            Expr::Meta { key, dreg } => {
                m.attr_str(NFTA_EXPR_NAME, "meta");
                m.nest_start(NFTA_EXPR_DATA);
                m.attr_be32(NFTA_META_KEY, *key as u32);
                m.attr_be32(NFTA_META_DREG, *dreg);
                m.nest_end();
            }
            Expr::Cmp { sreg, op, data } => {
                m.attr_str(NFTA_EXPR_NAME, "cmp");
                m.nest_start(NFTA_EXPR_DATA);
                m.attr_be32(NFTA_CMP_SREG, *sreg);
                m.attr_be32(NFTA_CMP_OP, *op as u32);
                m.nest_start(NFTA_CMP_DATA);
                m.attr(NFTA_DATA_VALUE, data);
                m.nest_end();
                m.nest_end();
            }
            Expr::Payload {
                base,
                offset,
                len,
                dreg,
            } => {
                m.attr_str(NFTA_EXPR_NAME, "payload");
                m.nest_start(NFTA_EXPR_DATA);
                m.attr_be32(NFTA_PAYLOAD_DREG, *dreg);
                m.attr_be32(NFTA_PAYLOAD_BASE, *base as u32);
                m.attr_be32(NFTA_PAYLOAD_OFFSET, *offset);
                m.attr_be32(NFTA_PAYLOAD_LEN, *len);
                m.nest_end();
            }
            Expr::Bitwise {
                sreg,
                dreg,
                mask,
                xor,
            } => {
                m.attr_str(NFTA_EXPR_NAME, "bitwise");
                m.nest_start(NFTA_EXPR_DATA);
                m.attr_be32(NFTA_BITWISE_SREG, *sreg);
                m.attr_be32(NFTA_BITWISE_DREG, *dreg);
                m.attr_be32(NFTA_BITWISE_LEN, mask.len() as u32);
                m.nest_start(NFTA_BITWISE_MASK);
                m.attr(NFTA_DATA_VALUE, mask);
                m.nest_end();
                m.nest_start(NFTA_BITWISE_XOR);
                m.attr(NFTA_DATA_VALUE, xor);
                m.nest_end();
                m.nest_end();
            }
            Expr::DynsetUpdateCounter {
                set,
                sreg_key,
                timeout_ms,
            } => {
                m.attr_str(NFTA_EXPR_NAME, "dynset");
                m.nest_start(NFTA_EXPR_DATA);
                m.attr_str(NFTA_DYNSET_SET_NAME, set);
                m.attr_be32(NFTA_DYNSET_OP, 1); // NFT_DYNSET_OP_UPDATE
                m.attr_be32(NFTA_DYNSET_SREG_KEY, *sreg_key);
                if let Some(t) = timeout_ms {
                    m.attr_be64(NFTA_DYNSET_TIMEOUT, *t);
                }
                m.nest_start(NFTA_DYNSET_EXPR);
                m.attr_str(NFTA_EXPR_NAME, "counter");
                m.nest_end();
                m.nest_end();
            }
            Expr::Lookup { set, sreg, invert } => {
                m.attr_str(NFTA_EXPR_NAME, "lookup");
                m.nest_start(NFTA_EXPR_DATA);
                m.attr_str(NFTA_LOOKUP_SET, set);
                m.attr_be32(NFTA_LOOKUP_SREG, *sreg);
                if *invert {
                    m.attr_be32(NFTA_LOOKUP_FLAGS, NFT_LOOKUP_F_INV);
                }
                m.nest_end();
            }
            Expr::Masquerade => {
                m.attr_str(NFTA_EXPR_NAME, "masq");
            }
            Expr::Counter => {
                m.attr_str(NFTA_EXPR_NAME, "counter");
            }
            Expr::CtState { dreg } => {
                m.attr_str(NFTA_EXPR_NAME, "ct");
                m.nest_start(NFTA_EXPR_DATA);
                m.attr_be32(NFTA_CT_KEY, NFT_CT_STATE);
                m.attr_be32(NFTA_CT_DREG, *dreg);
                m.nest_end();
            }
            Expr::FlowOffload { flowtable } => {
                m.attr_str(NFTA_EXPR_NAME, "flow_offload");
                m.nest_start(NFTA_EXPR_DATA);
                m.attr_str(NFTA_FLOW_TABLE_NAME, flowtable);
                m.nest_end();
            }
            Expr::ObjrefCounter { name } => {
                m.attr_str(NFTA_EXPR_NAME, "objref");
                m.nest_start(NFTA_EXPR_DATA);
                m.attr_be32(NFTA_OBJREF_IMM_TYPE, NFT_OBJECT_COUNTER);
                m.attr_str(NFTA_OBJREF_IMM_NAME, name);
                m.nest_end();
            }
            Expr::Accept | Expr::Drop => {
                let verdict = match self {
                    Expr::Drop => NF_DROP,
                    _ => NF_ACCEPT,
                };
                m.attr_str(NFTA_EXPR_NAME, "immediate");
                m.nest_start(NFTA_EXPR_DATA);
                m.attr_be32(NFTA_IMMEDIATE_DREG, 0); // NFT_REG_VERDICT
                m.nest_start(NFTA_IMMEDIATE_DATA);
                m.nest_start(NFTA_DATA_VERDICT);
                m.attr_be32(NFTA_VERDICT_CODE, verdict);
                m.nest_end();
                m.nest_end();
                m.nest_end();
            }
        }
        m.nest_end();
    }
}

/// One range of an interval set's keys, `start` up to but not including
/// `end`; no `end`: up to the last key (`255.255.255.255` included).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Interval {
    pub start: Vec<u8>,
    pub end: Option<Vec<u8>>,
}

/// An nf_tables transaction: messages between BATCH_BEGIN and BATCH_END.
pub struct Batch {
    messages: Vec<MessageBuilder>,
}

fn nfgenmsg(family: u8, res_id: u16) -> [u8; 4] {
    let id = res_id.to_be_bytes();
    [family, 0, id[0], id[1]]
}

fn nft_message(cmd: u16, family: Family, flags: u16) -> MessageBuilder {
    let mut m = MessageBuilder::new(
        (NFNL_SUBSYS_NFTABLES << 8) | cmd,
        NLM_F_REQUEST | NLM_F_ACK | flags,
    );
    m.header(&nfgenmsg(family as u8, 0));
    m
}

impl Default for Batch {
    fn default() -> Self {
        Self::new()
    }
}

impl Batch {
    pub fn new() -> Self {
        let mut begin = MessageBuilder::new(NFNL_MSG_BATCH_BEGIN, NLM_F_REQUEST);
        begin.header(&nfgenmsg(0, NFNL_SUBSYS_NFTABLES));
        Batch {
            messages: vec![begin],
        }
    }

    /// Creates the table, or does nothing if it exists.
    pub fn add_table(&mut self, family: Family, name: &str) -> &mut Self {
        let mut m = nft_message(NFT_MSG_NEWTABLE, family, NLM_F_CREATE);
        m.attr_str(NFTA_TABLE_NAME, name);
        self.messages.push(m);
        self
    }

    /// Deletes the table with everything in it; ENOENT if it does not exist.
    pub fn delete_table(&mut self, family: Family, name: &str) -> &mut Self {
        let mut m = nft_message(NFT_MSG_DELTABLE, family, 0);
        m.attr_str(NFTA_TABLE_NAME, name);
        self.messages.push(m);
        self
    }

    pub fn add_chain(
        &mut self,
        family: Family,
        table: &str,
        chain: &str,
        base: Option<&BaseChain>,
    ) -> &mut Self {
        let mut m = nft_message(NFT_MSG_NEWCHAIN, family, NLM_F_CREATE);
        m.attr_str(NFTA_CHAIN_TABLE, table);
        m.attr_str(NFTA_CHAIN_NAME, chain);
        if let Some(b) = base {
            m.nest_start(NFTA_CHAIN_HOOK);
            m.attr_be32(NFTA_HOOK_HOOKNUM, b.hook);
            m.attr_be32(NFTA_HOOK_PRIORITY, b.priority as u32);
            if let Some(dev) = &b.device {
                m.attr_str(NFTA_HOOK_DEV, dev);
            }
            m.nest_end();
            m.attr_be32(NFTA_CHAIN_POLICY, 1); // NF_ACCEPT: counting never drops
            m.attr_str(NFTA_CHAIN_TYPE, b.chain_type);
        }
        self.messages.push(m);
        self
    }

    pub fn add_set(&mut self, family: Family, table: &str, set: &SetSpec) -> &mut Self {
        let mut m = nft_message(NFT_MSG_NEWSET, family, NLM_F_CREATE);
        m.attr_str(NFTA_SET_TABLE, table);
        m.attr_str(NFTA_SET_NAME, &set.name);
        m.attr_be32(NFTA_SET_FLAGS, set.flags);
        m.attr_be32(NFTA_SET_KEY_TYPE, set.key_type);
        m.attr_be32(NFTA_SET_KEY_LEN, set.key_len);
        m.attr_be32(NFTA_SET_ID, set.id);
        if let Some(t) = set.timeout_ms {
            m.attr_be64(NFTA_SET_TIMEOUT, t);
        }
        if let Some(size) = set.size {
            m.nest_start(NFTA_SET_DESC);
            m.attr_be32(NFTA_SET_DESC_SIZE, size);
            m.nest_end();
        }
        self.messages.push(m);
        self
    }

    /// A flowtable (`flowtable NAME { hook ingress priority P; devices =
    /// { … }; flags … }`): what fw4 creates for flow offloading. The
    /// router's own tests use it; netmeter itself only lists flowtables.
    pub fn add_flowtable(
        &mut self,
        family: Family,
        table: &str,
        name: &str,
        priority: i32,
        devices: &[&str],
        flags: u32,
    ) -> &mut Self {
        let mut m = nft_message(NFT_MSG_NEWFLOWTABLE, family, NLM_F_CREATE);
        m.attr_str(NFTA_FLOWTABLE_TABLE, table);
        m.attr_str(NFTA_FLOWTABLE_NAME, name);
        m.nest_start(NFTA_FLOWTABLE_HOOK);
        m.attr_be32(NFTA_FLOWTABLE_HOOK_NUM, NetdevHook::Ingress as u32);
        m.attr_be32(NFTA_FLOWTABLE_HOOK_PRIORITY, priority as u32);
        m.nest_start(NFTA_FLOWTABLE_HOOK_DEVS);
        for dev in devices {
            m.attr_str(NFTA_DEVICE_NAME, dev);
        }
        m.nest_end();
        m.nest_end();
        m.attr_be32(NFTA_FLOWTABLE_FLAGS, flags);
        self.messages.push(m);
        self
    }

    /// A named counter object (`counter NAME` in nft).
    pub fn add_counter_object(&mut self, family: Family, table: &str, name: &str) -> &mut Self {
        let mut m = nft_message(NFT_MSG_NEWOBJ, family, NLM_F_CREATE);
        m.attr_str(NFTA_OBJ_TABLE, table);
        m.attr_str(NFTA_OBJ_NAME, name);
        m.attr_be32(NFTA_OBJ_TYPE, NFT_OBJECT_COUNTER);
        m.nest_start(NFTA_OBJ_DATA);
        m.nest_end();
        self.messages.push(m);
        self
    }

    /// Adds elements, each with a counter that starts from the given
    /// (bytes, packets) — `add element … { KEY counter packets P bytes B }` —
    /// through the expression list (kernels since 5.11). Several messages of
    /// at most [`ELEMENTS_PER_MESSAGE`] elements, as a nested attribute holds
    /// at most 64 KiB. The whole batch must still fit one datagram (the
    /// socket's send buffer, about 200 KiB by default): a caller with
    /// thousands of elements sends several batches.
    pub fn add_set_elements(
        &mut self,
        family: Family,
        table: &str,
        set: &str,
        elements: &[(Vec<u8>, u64, u64)],
    ) -> &mut Self {
        for chunk in elements.chunks(ELEMENTS_PER_MESSAGE) {
            let mut m = nft_message(NFT_MSG_NEWSETELEM, family, NLM_F_CREATE);
            m.attr_str(NFTA_SET_ELEM_LIST_TABLE, table);
            m.attr_str(NFTA_SET_ELEM_LIST_SET, set);
            m.nest_start(NFTA_SET_ELEM_LIST_ELEMENTS);
            for (key, bytes, packets) in chunk {
                m.nest_start(NFTA_LIST_ELEM);
                m.nest_start(NFTA_SET_ELEM_KEY);
                m.attr(NFTA_DATA_VALUE, key);
                m.nest_end();
                m.nest_start(NFTA_SET_ELEM_EXPRESSIONS);
                m.nest_start(NFTA_LIST_ELEM);
                m.attr_str(NFTA_EXPR_NAME, "counter");
                m.nest_start(NFTA_EXPR_DATA);
                m.attr_be64(NFTA_COUNTER_BYTES, *bytes);
                m.attr_be64(NFTA_COUNTER_PACKETS, *packets);
                m.nest_end();
                m.nest_end();
                m.nest_end();
                m.nest_end();
            }
            m.nest_end();
            self.messages.push(m);
        }
        self
    }

    /// Adds ranges to an interval set (`NFT_SET_INTERVAL`) as nft does for a
    /// single-field set: an element at each range's start and one flagged
    /// `NFT_SET_ELEM_INTERVAL_END` at the key after it; a key matches when
    /// the nearest element at or below it is a start. The ranges must be
    /// sorted and neither overlap nor touch (the kernel refuses overlaps).
    /// A constant set takes its elements only before a rule uses it.
    pub fn add_interval_elements(
        &mut self,
        family: Family,
        table: &str,
        set: &str,
        intervals: &[Interval],
    ) -> &mut Self {
        let mut m = nft_message(NFT_MSG_NEWSETELEM, family, NLM_F_CREATE);
        m.attr_str(NFTA_SET_ELEM_LIST_TABLE, table);
        m.attr_str(NFTA_SET_ELEM_LIST_SET, set);
        m.nest_start(NFTA_SET_ELEM_LIST_ELEMENTS);
        let mut element = |key: &[u8], flags: Option<u32>| {
            m.nest_start(NFTA_LIST_ELEM);
            m.nest_start(NFTA_SET_ELEM_KEY);
            m.attr(NFTA_DATA_VALUE, key);
            m.nest_end();
            if let Some(flags) = flags {
                m.attr_be32(NFTA_SET_ELEM_FLAGS, flags);
            }
            m.nest_end();
        };
        for interval in intervals {
            element(&interval.start, None);
            if let Some(end) = &interval.end {
                element(end, Some(NFT_SET_ELEM_INTERVAL_END));
            }
        }
        m.nest_end();
        self.messages.push(m);
        self
    }

    /// Deletes these elements (keys as the dump gave them) from a set.
    pub fn delete_set_elements(
        &mut self,
        family: Family,
        table: &str,
        set: &str,
        keys: &[Vec<u8>],
    ) -> &mut Self {
        let mut m = nft_message(NFT_MSG_DELSETELEM, family, 0);
        m.attr_str(NFTA_SET_ELEM_LIST_TABLE, table);
        m.attr_str(NFTA_SET_ELEM_LIST_SET, set);
        m.nest_start(NFTA_SET_ELEM_LIST_ELEMENTS);
        for key in keys {
            m.nest_start(NFTA_LIST_ELEM);
            m.nest_start(NFTA_SET_ELEM_KEY);
            m.attr(NFTA_DATA_VALUE, key);
            m.nest_end();
            m.nest_end();
        }
        m.nest_end();
        self.messages.push(m);
        self
    }

    /// Adds plain keys (no expressions) to a set.
    pub fn add_keys(
        &mut self,
        family: Family,
        table: &str,
        set: &str,
        keys: &[Vec<u8>],
    ) -> &mut Self {
        for chunk in keys.chunks(ELEMENTS_PER_MESSAGE) {
            let mut m = nft_message(NFT_MSG_NEWSETELEM, family, NLM_F_CREATE);
            m.attr_str(NFTA_SET_ELEM_LIST_TABLE, table);
            m.attr_str(NFTA_SET_ELEM_LIST_SET, set);
            m.nest_start(NFTA_SET_ELEM_LIST_ELEMENTS);
            for key in chunk {
                m.nest_start(NFTA_LIST_ELEM);
                m.nest_start(NFTA_SET_ELEM_KEY);
                m.attr(NFTA_DATA_VALUE, key);
                m.nest_end();
                m.nest_end();
            }
            m.nest_end();
            self.messages.push(m);
        }
        self
    }

    /// Removes every element of a set (a delete naming no element).
    pub fn flush_set(&mut self, family: Family, table: &str, set: &str) -> &mut Self {
        let mut m = nft_message(NFT_MSG_DELSETELEM, family, 0);
        m.attr_str(NFTA_SET_ELEM_LIST_TABLE, table);
        m.attr_str(NFTA_SET_ELEM_LIST_SET, set);
        self.messages.push(m);
        self
    }

    /// Appends a rule at the end of the chain.
    pub fn add_rule(
        &mut self,
        family: Family,
        table: &str,
        chain: &str,
        exprs: &[Expr],
    ) -> &mut Self {
        let mut m = nft_message(NFT_MSG_NEWRULE, family, NLM_F_CREATE | NLM_F_APPEND);
        m.attr_str(NFTA_RULE_TABLE, table);
        m.attr_str(NFTA_RULE_CHAIN, chain);
        m.nest_start(NFTA_RULE_EXPRESSIONS);
        for e in exprs {
            e.encode(&mut m);
        }
        m.nest_end();
        self.messages.push(m);
        self
    }

    /// The messages to send in one datagram, BATCH_END appended.
    pub fn finish(mut self) -> Vec<MessageBuilder> {
        let mut end = MessageBuilder::new(NFNL_MSG_BATCH_END, NLM_F_REQUEST);
        end.header(&nfgenmsg(0, NFNL_SUBSYS_NFTABLES));
        self.messages.push(end);
        self.messages
    }
}

fn dump_request(cmd: u16, family: u8) -> MessageBuilder {
    let mut m = MessageBuilder::new(
        (NFNL_SUBSYS_NFTABLES << 8) | cmd,
        NLM_F_REQUEST | NLM_F_DUMP,
    );
    m.header(&nfgenmsg(family, 0));
    m
}

fn nft_attrs<'a>(msg: &Message<'a>, cmd: u16, what: &str) -> Result<(u8, AttrIter<'a>), Malformed> {
    if msg.msg_type != (NFNL_SUBSYS_NFTABLES << 8) | cmd {
        return Err(Malformed(format!(
            "expected {what}, got type {:#x}",
            msg.msg_type
        )));
    }
    let family = *msg
        .payload
        .first()
        .ok_or_else(|| Malformed(format!("{what} shorter than nfgenmsg")))?;
    let attrs = msg
        .payload
        .get(4..)
        .ok_or_else(|| Malformed(format!("{what} shorter than nfgenmsg")))?;
    Ok((family, AttrIter::new(attrs)))
}

/// The request for every table of every family.
pub fn tables_request() -> MessageBuilder {
    dump_request(NFT_MSG_GETTABLE, 0)
}

/// A table's family number and name from a NEWTABLE message.
pub fn parse_table(msg: &Message<'_>) -> Result<(u8, String), Malformed> {
    let (family, attrs) = nft_attrs(msg, NFT_MSG_NEWTABLE, "NFT_MSG_NEWTABLE")?;
    for attr in attrs {
        let attr = attr?;
        if attr.kind == NFTA_TABLE_NAME {
            return Ok((family, attr.str()?.to_string()));
        }
    }
    Err(Malformed("table without a name".into()))
}

/// The request for every flowtable of every family.
pub fn flowtables_request() -> MessageBuilder {
    dump_request(NFT_MSG_GETFLOWTABLE, 0)
}

/// A flowtable: where it is, its flags and the devices it offloads.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Flowtable {
    pub family: u8,
    pub table: String,
    pub name: String,
    pub flags: u32,
    pub devices: Vec<String>,
}

pub fn parse_flowtable(msg: &Message<'_>) -> Result<Flowtable, Malformed> {
    let (family, attrs) = nft_attrs(msg, NFT_MSG_NEWFLOWTABLE, "NFT_MSG_NEWFLOWTABLE")?;
    let mut ft = Flowtable {
        family,
        table: String::new(),
        name: String::new(),
        flags: 0,
        devices: Vec::new(),
    };
    for attr in attrs {
        let attr = attr?;
        match attr.kind {
            NFTA_FLOWTABLE_TABLE => ft.table = attr.str()?.to_string(),
            NFTA_FLOWTABLE_NAME => ft.name = attr.str()?.to_string(),
            NFTA_FLOWTABLE_FLAGS => ft.flags = attr.be32()?,
            NFTA_FLOWTABLE_HOOK => {
                for hook in attr.nested() {
                    let hook = hook?;
                    if hook.kind == NFTA_FLOWTABLE_HOOK_DEVS {
                        for dev in hook.nested() {
                            ft.devices.push(dev?.str()?.to_string());
                        }
                    }
                }
            }
            _ => {}
        }
    }
    Ok(ft)
}

/// The request for the counter objects of one table.
pub fn counter_objects_request(family: Family, table: &str) -> MessageBuilder {
    let mut m = dump_request(NFT_MSG_GETOBJ, family as u8);
    m.attr_str(NFTA_OBJ_TABLE, table);
    m.attr_be32(NFTA_OBJ_TYPE, NFT_OBJECT_COUNTER);
    m
}

/// A named counter object: (name, bytes, packets). Other objects give None.
pub fn parse_counter_object(msg: &Message<'_>) -> Result<Option<(String, u64, u64)>, Malformed> {
    let (_, attrs) = nft_attrs(msg, NFT_MSG_NEWOBJ, "NFT_MSG_NEWOBJ")?;
    let (mut name, mut kind, mut bytes, mut packets) = (None, None, None, None);
    for attr in attrs {
        let attr = attr?;
        match attr.kind {
            NFTA_OBJ_NAME => name = Some(attr.str()?.to_string()),
            NFTA_OBJ_TYPE => kind = Some(attr.be32()?),
            NFTA_OBJ_DATA => {
                for f in attr.nested() {
                    let f = f?;
                    match f.kind {
                        NFTA_COUNTER_BYTES => bytes = Some(f.be64()?),
                        NFTA_COUNTER_PACKETS => packets = Some(f.be64()?),
                        _ => {}
                    }
                }
            }
            _ => {}
        }
    }
    if kind != Some(NFT_OBJECT_COUNTER) {
        return Ok(None);
    }
    match (name, bytes, packets) {
        (Some(n), Some(b), Some(p)) => Ok(Some((n, b, p))),
        _ => Err(Malformed(
            "counter object without name, bytes or packets".into(),
        )),
    }
}

/// The request for every element of a set, with its counter.
pub fn set_elements_request(family: Family, table: &str, set: &str) -> MessageBuilder {
    let mut m = MessageBuilder::new(
        (NFNL_SUBSYS_NFTABLES << 8) | NFT_MSG_GETSETELEM,
        NLM_F_REQUEST | NLM_F_DUMP,
    );
    m.header(&nfgenmsg(family as u8, 0));
    m.attr_str(NFTA_SET_ELEM_LIST_TABLE, table);
    m.attr_str(NFTA_SET_ELEM_LIST_SET, set);
    m
}

/// One set element: its key bytes and the counter attached to it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SetElementCounter {
    pub key: Vec<u8>,
    pub bytes: u64,
    pub packets: u64,
    /// Milliseconds until the element times out, when it has a timeout.
    pub expires_ms: Option<u64>,
}

/// Parses one NEWSETELEM message of a dump, handing each element to `each`.
/// Elements without a counter are skipped: they carry nothing to account.
pub fn parse_set_elements(
    msg: &Message<'_>,
    mut each: impl FnMut(SetElementCounter),
) -> Result<(), Malformed> {
    if msg.msg_type != (NFNL_SUBSYS_NFTABLES << 8) | NFT_MSG_NEWSETELEM {
        return Err(Malformed(format!(
            "expected NFT_MSG_NEWSETELEM, got type {:#x}",
            msg.msg_type
        )));
    }
    let attrs = msg
        .payload
        .get(4..)
        .ok_or_else(|| Malformed("set element message shorter than nfgenmsg".into()))?;
    for attr in AttrIter::new(attrs) {
        let attr = attr?;
        if attr.kind != NFTA_SET_ELEM_LIST_ELEMENTS {
            continue;
        }
        for elem in attr.nested() {
            if let Some(e) = parse_element(elem?)? {
                each(e);
            }
        }
    }
    Ok(())
}

fn parse_element(elem: super::Attr<'_>) -> Result<Option<SetElementCounter>, Malformed> {
    let mut key = None;
    let mut counter = None;
    let mut expires_ms = None;
    for attr in elem.nested() {
        let attr = attr?;
        match attr.kind {
            NFTA_SET_ELEM_KEY => {
                for data in attr.nested() {
                    let data = data?;
                    if data.kind == NFTA_DATA_VALUE {
                        key = Some(data.payload.to_vec());
                    }
                }
            }
            NFTA_SET_ELEM_EXPIRATION => expires_ms = Some(attr.be64()?),
            // Older kernels: one expression; newer: a list of them.
            NFTA_SET_ELEM_EXPR => counter = counter.or(parse_counter(attr)?),
            NFTA_SET_ELEM_EXPRESSIONS => {
                for expr in attr.nested() {
                    counter = counter.or(parse_counter(expr?)?);
                }
            }
            _ => {}
        }
    }
    let key = key.ok_or_else(|| Malformed("set element without a key".into()))?;
    Ok(counter.map(|(bytes, packets)| SetElementCounter {
        key,
        bytes,
        packets,
        expires_ms,
    }))
}

/// (bytes, packets) if the expression is a counter.
fn parse_counter(expr: super::Attr<'_>) -> Result<Option<(u64, u64)>, Malformed> {
    let mut is_counter = false;
    let (mut bytes, mut packets) = (None, None);
    for attr in expr.nested() {
        let attr = attr?;
        match attr.kind {
            NFTA_EXPR_NAME => is_counter = attr.str()? == "counter",
            NFTA_EXPR_DATA => {
                for field in attr.nested() {
                    let field = field?;
                    match field.kind {
                        NFTA_COUNTER_BYTES => bytes = Some(field.be64()?),
                        NFTA_COUNTER_PACKETS => packets = Some(field.be64()?),
                        _ => {}
                    }
                }
            }
            _ => {}
        }
    }
    if !is_counter {
        return Ok(None);
    }
    match (bytes, packets) {
        (Some(b), Some(p)) => Ok(Some((b, p))),
        _ => Err(Malformed("counter without bytes and packets".into())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::netlink::{AttrIter, MessageIter};

    #[test]
    fn a_batch_is_framed_by_begin_and_end_with_the_nftables_subsystem() {
        let mut b = Batch::new();
        b.add_table(Family::Inet, "netmeter");
        let msgs: Vec<Vec<u8>> = b.finish().into_iter().map(|m| m.finish(5)).collect();
        assert_eq!(msgs.len(), 3);
        let begin = MessageIter::new(&msgs[0]).next().unwrap().unwrap();
        assert_eq!(begin.msg_type, NFNL_MSG_BATCH_BEGIN);
        assert_eq!(
            begin.payload,
            &[0, 0, 0, 10],
            "res_id is the subsystem, big-endian"
        );
        let table = MessageIter::new(&msgs[1]).next().unwrap().unwrap();
        assert_eq!(table.msg_type, 10 << 8);
        assert_ne!(table.flags & NLM_F_ACK, 0);
        assert_eq!(table.payload[0], Family::Inet as u8);
        let name = AttrIter::new(&table.payload[4..]).next().unwrap().unwrap();
        assert_eq!(name.str().unwrap(), "netmeter");
    }

    #[test]
    fn a_flowtable_is_built_as_the_flowtable_parser_reads_it() {
        let mut b = Batch::new();
        b.add_flowtable(
            Family::Inet,
            "fw4",
            "ft",
            0,
            &["lan0", "wan"],
            NF_FLOWTABLE_COUNTER,
        );
        let msgs: Vec<Vec<u8>> = b.finish().into_iter().map(|m| m.finish(1)).collect();
        let msg = MessageIter::new(&msgs[1]).next().unwrap().unwrap();
        assert_eq!(msg.msg_type, (10 << 8) | NFT_MSG_NEWFLOWTABLE);
        assert_eq!(
            parse_flowtable(&msg).unwrap(),
            Flowtable {
                family: Family::Inet as u8,
                table: "fw4".into(),
                name: "ft".into(),
                flags: NF_FLOWTABLE_COUNTER,
                devices: vec!["lan0".into(), "wan".into()],
            }
        );
    }

    /// An attribute as the kernel reads it, written out independently of
    /// `MessageBuilder`: native-endian length and type, payload, padding.
    fn nla(kind: u16, payload: &[u8]) -> Vec<u8> {
        let mut b = ((4 + payload.len()) as u16).to_ne_bytes().to_vec();
        b.extend(kind.to_ne_bytes());
        b.extend(payload);
        b.resize(b.len().next_multiple_of(4), 0);
        b
    }

    /// A nested attribute (`NLA_F_NESTED`, 0x8000, in its type).
    fn nest(kind: u16, parts: &[Vec<u8>]) -> Vec<u8> {
        nla(kind | 0x8000, &parts.concat())
    }

    /// The attributes after nfgenmsg of the batch's only message.
    fn only_message_attrs(b: Batch) -> Vec<u8> {
        let msgs: Vec<Vec<u8>> = b.finish().into_iter().map(|m| m.finish(1)).collect();
        assert_eq!(msgs.len(), 3, "begin, one message, end");
        let msg = MessageIter::new(&msgs[1]).next().unwrap().unwrap();
        msg.payload[4..].to_vec()
    }

    #[test]
    fn a_negated_lookup_is_encoded_as_the_kernels_lookup_expression() {
        // include/uapi/linux/netfilter/nf_tables.h: NFTA_LOOKUP_SET 1,
        // NFTA_LOOKUP_SREG 2, NFTA_LOOKUP_FLAGS 5, NFT_LOOKUP_F_INV 1;
        // nft's `ip daddr != @local4` ("[ lookup reg 1 set local4 0x1 ]").
        let mut b = Batch::new();
        b.add_rule(
            Family::Netdev,
            "t",
            "c",
            &[
                Expr::Lookup {
                    set: "local4".into(),
                    sreg: NFT_REG_1,
                    invert: true,
                },
                Expr::Lookup {
                    set: "s".into(),
                    sreg: NFT_REG32_00 + 2,
                    invert: false,
                },
            ],
        );
        let lookup = |set: &[u8], sreg: u32, flags: Option<u32>| {
            let mut data = vec![nla(1, set), nla(2, &sreg.to_be_bytes())];
            data.extend(flags.map(|f| nla(5, &f.to_be_bytes())));
            nest(1, &[nla(1, b"lookup\0"), nest(2, &data)])
        };
        let expected = [
            nla(1, b"t\0"),
            nla(2, b"c\0"),
            nest(
                4,
                &[lookup(b"local4\0", 1, Some(1)), lookup(b"s\0", 10, None)],
            ),
        ]
        .concat();
        assert_eq!(only_message_attrs(b), expected);
    }

    #[test]
    fn interval_elements_are_starts_and_flagged_ends_and_the_top_range_has_no_end() {
        // NFTA_SET_ELEM_KEY 1 holding NFTA_DATA_VALUE 1; NFTA_SET_ELEM_FLAGS
        // 3 with NFT_SET_ELEM_INTERVAL_END 1: what nft sends for
        // `elements = { 10.0.1.0/24, 255.255.255.255 }` in an interval set.
        let mut b = Batch::new();
        b.add_interval_elements(
            Family::Netdev,
            "netmeter",
            "local4",
            &[
                Interval {
                    start: vec![10, 0, 1, 0],
                    end: Some(vec![10, 0, 2, 0]),
                },
                Interval {
                    start: vec![255; 4],
                    end: None,
                },
            ],
        );
        let key = |k: &[u8]| nest(1, &[nla(1, k)]);
        let expected = [
            nla(1, b"netmeter\0"),
            nla(2, b"local4\0"),
            nest(
                3,
                &[
                    nest(1, &[key(&[10, 0, 1, 0])]),
                    nest(1, &[key(&[10, 0, 2, 0]), nla(3, &1u32.to_be_bytes())]),
                    nest(1, &[key(&[255; 4])]),
                ],
            ),
        ]
        .concat();
        assert_eq!(only_message_attrs(b), expected);
    }

    #[test]
    fn an_interval_set_carries_the_interval_and_constant_flags() {
        // NFT_SET_CONSTANT 0x2 | NFT_SET_INTERVAL 0x4, as `flags constant,
        // interval`; no timeout or size attribute unless asked for.
        let mut b = Batch::new();
        b.add_set(
            Family::Netdev,
            "t",
            &SetSpec {
                name: "local6".into(),
                key_type: TYPE_IP6ADDR,
                key_len: 16,
                flags: NFT_SET_INTERVAL | NFT_SET_CONSTANT,
                timeout_ms: None,
                size: None,
                id: 7,
            },
        );
        let expected = [
            nla(1, b"t\0"),
            nla(2, b"local6\0"),
            nla(3, &6u32.to_be_bytes()),
            nla(4, &8u32.to_be_bytes()),
            nla(5, &16u32.to_be_bytes()),
            nla(10, &7u32.to_be_bytes()),
        ]
        .concat();
        assert_eq!(only_message_attrs(b), expected);
    }

    #[test]
    fn an_interface_name_compares_as_sixteen_nul_padded_bytes() {
        let b = Expr::ifname("wan");
        assert_eq!(b.len(), 16);
        assert_eq!(&b[..4], b"wan\0");
    }

    #[test]
    fn a_base_chain_carries_hook_priority_type_and_device_big_endian() {
        let mut b = Batch::new();
        let base = BaseChain {
            hook: NetdevHook::Egress as u32,
            priority: -500,
            chain_type: "filter",
            device: Some("br-lan".into()),
        };
        b.add_chain(Family::Netdev, "t", "c", Some(&base));
        let msgs: Vec<Vec<u8>> = b.finish().into_iter().map(|m| m.finish(1)).collect();
        let chain = MessageIter::new(&msgs[1]).next().unwrap().unwrap();
        let hook = AttrIter::new(&chain.payload[4..])
            .map(Result::unwrap)
            .find(|a| a.kind == NFTA_CHAIN_HOOK)
            .unwrap();
        let inner: Vec<_> = hook.nested().map(Result::unwrap).collect();
        assert_eq!(inner[0].be32().unwrap(), 1);
        assert_eq!(inner[1].be32().unwrap() as i32, -500);
        assert_eq!(inner[2].str().unwrap(), "br-lan");
    }

    fn element_message(encode: impl Fn(&mut MessageBuilder)) -> Vec<u8> {
        let mut m = MessageBuilder::new((NFNL_SUBSYS_NFTABLES << 8) | NFT_MSG_NEWSETELEM, 2);
        m.header(&nfgenmsg(Family::Netdev as u8, 0));
        m.attr_str(NFTA_SET_ELEM_LIST_TABLE, "netmeter");
        m.attr_str(NFTA_SET_ELEM_LIST_SET, "tx4");
        m.nest_start(NFTA_SET_ELEM_LIST_ELEMENTS);
        m.nest_start(NFTA_LIST_ELEM);
        m.nest_start(NFTA_SET_ELEM_KEY);
        m.attr(NFTA_DATA_VALUE, &[2, 0, 0, 0, 0, 1, 0, 0, 10, 0, 0, 2]);
        m.nest_end();
        m.attr_be64(NFTA_SET_ELEM_EXPIRATION, 59_000);
        encode(&mut m);
        m.nest_end();
        m.nest_end();
        m.finish(1)
    }

    fn counter(m: &mut MessageBuilder, bytes: u64, packets: u64) {
        m.attr_str(NFTA_EXPR_NAME, "counter");
        m.nest_start(NFTA_EXPR_DATA);
        m.attr_be64(NFTA_COUNTER_BYTES, bytes);
        m.attr_be64(NFTA_COUNTER_PACKETS, packets);
        m.nest_end();
    }

    fn parse(buf: &[u8]) -> Result<Vec<SetElementCounter>, Malformed> {
        let msg = MessageIter::new(buf).next().unwrap().unwrap();
        let mut out = Vec::new();
        parse_set_elements(&msg, |e| out.push(e))?;
        Ok(out)
    }

    #[test]
    fn element_counters_parse_from_the_single_expression_encoding() {
        let buf = element_message(|m| {
            m.nest_start(NFTA_SET_ELEM_EXPR);
            counter(m, 1500, 3);
            m.nest_end();
        });
        let e = parse(&buf).unwrap();
        assert_eq!(e.len(), 1);
        assert_eq!(
            (e[0].bytes, e[0].packets, e[0].expires_ms),
            (1500, 3, Some(59_000))
        );
        assert_eq!(e[0].key[8..], [10, 0, 0, 2]);
    }

    #[test]
    fn element_counters_parse_from_the_expression_list_encoding() {
        let buf = element_message(|m| {
            m.nest_start(NFTA_SET_ELEM_EXPRESSIONS);
            m.nest_start(NFTA_LIST_ELEM);
            m.attr_str(NFTA_EXPR_NAME, "quota");
            m.nest_end();
            m.nest_start(NFTA_LIST_ELEM);
            counter(m, u64::MAX, 7);
            m.nest_end();
            m.nest_end();
        });
        let e = parse(&buf).unwrap();
        assert_eq!((e[0].bytes, e[0].packets), (u64::MAX, 7));
    }

    #[test]
    fn elements_with_initial_counters_are_split_into_messages_and_read_back_as_dumped() {
        let elements: Vec<(Vec<u8>, u64, u64)> = (0..1001u32)
            .map(|i| {
                let mut key = vec![2, 0, 0, 0, (i >> 8) as u8, i as u8, 0, 0];
                key.extend((0x0a80_0000 + i).to_be_bytes());
                (key, 1000 * u64::from(i) + 7, u64::from(i))
            })
            .collect();
        let mut b = Batch::new();
        b.add_set_elements(Family::Netdev, "netmeter", "sent4", &elements);
        let msgs: Vec<Vec<u8>> = b.finish().into_iter().map(|m| m.finish(1)).collect();
        assert_eq!(msgs.len(), 2 + 3, "begin, 500 + 500 + 1 elements, end");
        let mut read = Vec::new();
        for buf in &msgs[1..4] {
            let msg = MessageIter::new(buf).next().unwrap().unwrap();
            assert_eq!(msg.msg_type, (10 << 8) | NFT_MSG_NEWSETELEM);
            assert_eq!(
                msg.flags & (NLM_F_ACK | NLM_F_CREATE),
                NLM_F_ACK | NLM_F_CREATE
            );
            assert_eq!(msg.payload[0], Family::Netdev as u8);
            // table, set, then the element list; each element a key and
            // an expression list holding one counter with both values.
            let top: Vec<_> = AttrIter::new(&msg.payload[4..])
                .map(Result::unwrap)
                .collect();
            assert_eq!(
                top.iter().map(|a| a.kind).collect::<Vec<_>>(),
                [
                    NFTA_SET_ELEM_LIST_TABLE,
                    NFTA_SET_ELEM_LIST_SET,
                    NFTA_SET_ELEM_LIST_ELEMENTS
                ]
            );
            assert_eq!(top[1].str().unwrap(), "sent4");
            let first = top[2].nested().next().unwrap().unwrap();
            assert_eq!(first.kind, NFTA_LIST_ELEM);
            let parts: Vec<_> = first.nested().map(Result::unwrap).collect();
            assert_eq!(
                parts.iter().map(|a| a.kind).collect::<Vec<_>>(),
                [NFTA_SET_ELEM_KEY, NFTA_SET_ELEM_EXPRESSIONS]
            );
            let expr = parts[1].nested().next().unwrap().unwrap();
            let fields: Vec<_> = expr.nested().map(Result::unwrap).collect();
            assert_eq!(fields[0].kind, NFTA_EXPR_NAME);
            assert_eq!(fields[0].str().unwrap(), "counter");
            assert_eq!(fields[1].kind, NFTA_EXPR_DATA);
            // The kernel dumps elements in this same form, so the dump
            // parser reads back exactly what was written.
            parse_set_elements(&msg, |e| read.push((e.key, e.bytes, e.packets))).unwrap();
        }
        assert_eq!(read, elements);
    }

    #[test]
    fn an_element_without_a_counter_is_skipped_and_a_half_counter_is_malformed() {
        assert!(parse(&element_message(|_| {})).unwrap().is_empty());
        let half = element_message(|m| {
            m.nest_start(NFTA_SET_ELEM_EXPR);
            m.attr_str(NFTA_EXPR_NAME, "counter");
            m.nest_start(NFTA_EXPR_DATA);
            m.attr_be64(NFTA_COUNTER_BYTES, 1);
            m.nest_end();
            m.nest_end();
        });
        assert!(parse(&half).is_err());
    }
}
