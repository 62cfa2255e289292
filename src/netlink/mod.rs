//! Netlink wire formats: sockets, messages, attributes. No policy.
