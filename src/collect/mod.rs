//! What the kernel and the router's files say, read: interface counters,
//! netmeter's per-device counters, neighbours and device names.
//!
//! `links.rs` turns a link dump into `account::LinkSample`s (64-bit when the
//! kernel gives IFLA_STATS64, else 32-bit; an interrupted dump is retried)
//! and finds the WAN (default routes' interfaces); `devices.rs` installs
//! netmeter's own nftables table and reads its per-device counters back;
//! `neighbours.rs` maps IP to MAC for the forward placement; `identity.rs`
//! names devices. Samples are the account layer's types: collect imports
//! account, never the other way.

pub mod conntrack;
pub mod devices;
pub mod identity;
pub mod links;
pub mod neighbours;
pub mod queues;
pub mod sockets;
