//! nf_tables over nfnetlink: batches that create or delete tables, chains
//! and rules. A batch is applied by the kernel atomically: all or nothing.

use super::MessageBuilder;
use super::message::{NLM_F_ACK, NLM_F_APPEND, NLM_F_CREATE, NLM_F_REQUEST};

const NFNL_SUBSYS_NFTABLES: u16 = 10;
const NFNL_MSG_BATCH_BEGIN: u16 = 0x10;
const NFNL_MSG_BATCH_END: u16 = 0x11;

const NFT_MSG_NEWTABLE: u16 = 0;
const NFT_MSG_DELTABLE: u16 = 2;
const NFT_MSG_NEWCHAIN: u16 = 3;
const NFT_MSG_NEWRULE: u16 = 6;

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
const NFTA_CMP_SREG: u16 = 1;
const NFTA_CMP_OP: u16 = 2;
const NFTA_CMP_DATA: u16 = 3;
const NFTA_DATA_VALUE: u16 = 1;

/// The first 16-byte register; expressions pass data through registers.
pub const NFT_REG_1: u32 = 1;

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
    IifName = 6,
    OifName = 7,
}

/// The expressions a rule is built from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Expr {
    /// Load a packet's metadata into a register.
    Meta { key: MetaKey, dreg: u32 },
    /// Stop the rule unless the register equals `data`.
    CmpEq { sreg: u32, data: Vec<u8> },
    /// Source NAT to the outgoing interface's address.
    Masquerade,
    /// Count packets and bytes.
    Counter,
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
            Expr::CmpEq { sreg, data } => {
                m.attr_str(NFTA_EXPR_NAME, "cmp");
                m.nest_start(NFTA_EXPR_DATA);
                m.attr_be32(NFTA_CMP_SREG, *sreg);
                m.attr_be32(NFTA_CMP_OP, 0); // NFT_CMP_EQ
                m.nest_start(NFTA_CMP_DATA);
                m.attr(NFTA_DATA_VALUE, data);
                m.nest_end();
                m.nest_end();
            }
            Expr::Masquerade => {
                m.attr_str(NFTA_EXPR_NAME, "masq");
            }
            Expr::Counter => {
                m.attr_str(NFTA_EXPR_NAME, "counter");
            }
        }
        m.nest_end();
    }
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
}
