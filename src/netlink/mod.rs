//! Netlink wire formats: sockets, messages, attributes. No policy lives here:
//! callers get checked views and small plain structs, and decide what they mean.
//!
//! `message.rs`: `nlmsghdr`, `MessageIter`, NLMSG_ERROR with the extended
//! ack's text. `attr.rs`: `AttrIter` with checked reads, `MessageBuilder`
//! with nesting. `socket.rs`: `NetlinkSocket` on `netlink-sys` (`dump`,
//! `request`, `batch`; a 5 s reply timeout; a batch refused at its BEGIN
//! marker, no privilege, ends the wait at once), `NetlinkError` whose text
//! names the request and the fix for EPERM. `route.rs`: links, addresses,
//! routes and neighbours. `nftables.rs`: `Batch` (tables, base chains, rules
//! from `Expr`, sets, counter objects, elements added with counters that
//! start from given values) and dumps of set elements (both kernel
//! encodings of their counters), counter objects, tables and flowtables.
//! `conntrack.rs`: ctnetlink dumps and destroy events as `Flow`s (both
//! tuples, status, per-direction counters). `qdisc.rs`: RTM_NEWQDISC with
//! TCA_STATS2 (basic, queue) and fq_codel's and cake's statistics.
//! `sock_diag.rs`: inet_diag socket dumps with `tcp_info`.
//! A malformed buffer is a `Malformed` error, never a panic (fuzzed).

pub mod attr;
pub mod conntrack;
pub mod message;
pub mod nftables;
pub mod qdisc;
pub mod route;
pub mod sock_diag;
pub mod socket;

pub use attr::{Attr, AttrIter, MessageBuilder};
pub use message::{Message, MessageIter};
pub use socket::{NetlinkError, NetlinkSocket};

/// Why a byte buffer is not the netlink data it claims to be.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Malformed(pub String);

impl std::fmt::Display for Malformed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "malformed netlink data: {}", self.0)
    }
}

impl std::error::Error for Malformed {}

/// Netlink pads every message and attribute to 4 bytes.
pub(crate) const fn align4(len: usize) -> usize {
    (len + 3) & !3
}
