//! Per-interface counter samples from rtnetlink.

/// How many bits a raw counter has before it wraps to zero.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum CounterWidth {
    Bits32,
    Bits64,
}

impl CounterWidth {
    /// The number of distinct values: a counter of this width wraps at `modulus()`.
    pub fn modulus(self) -> u128 {
        match self {
            CounterWidth::Bits32 => 1u128 << 32,
            CounterWidth::Bits64 => 1u128 << 64,
        }
    }
}

/// The kernel's counters of one interface as read at one moment.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LinkCounters {
    pub rx_bytes: u64,
    pub tx_bytes: u64,
    pub rx_packets: u64,
    pub tx_packets: u64,
    pub rx_errors: u64,
    pub tx_errors: u64,
    pub rx_dropped: u64,
    pub tx_dropped: u64,
}

/// One interface as seen in one link dump.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LinkSample {
    /// The kernel's interface index: stays with the interface across renames,
    /// changes when an interface is deleted and created again.
    pub ifindex: u32,
    pub name: String,
    /// 64 when the kernel gave IFLA_STATS64, 32 for the old IFLA_STATS.
    pub width: CounterWidth,
    pub counters: LinkCounters,
}
