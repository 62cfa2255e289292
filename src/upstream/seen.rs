//! What the rest of netmeter sees of the upstream routers' devices, in
//! either build (the core build has none).

use crate::mac::Mac;

/// One device as one upstream router counts it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeviceFigure {
    /// The upstream section's name.
    pub source: String,
    pub mac: Mac,
    pub ip: Option<std::net::IpAddr>,
    pub hostname: Option<String>,
    pub rx_bytes: u64,
    pub tx_bytes: u64,
    pub rx_rate: u64,
    pub tx_rate: u64,
    pub last_seen: u64,
}

/// Why `/api/v1/upstream` is empty in the core build, and what to do.
pub const NEEDS_FULL: &str = "this netmeter is the core build, which does not read upstream \
     routers: install the netmeter-full package for them";
