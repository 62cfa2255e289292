//! Netlink wire formats: sockets, messages, attributes. No policy lives here:
//! callers get checked views and small plain structs, and decide what they mean.

pub mod attr;
pub mod message;
pub mod nftables;
pub mod route;
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
