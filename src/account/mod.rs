//! Raw counter samples to monotonic totals and rates.
//!
//! The kernel's counters wrap, restart with interfaces and reboots, and follow
//! ifindexes rather than the names people use; everything downstream (storage,
//! reports, quotas) wants totals that only grow. This layer is pure: time and
//! boot id come in as arguments, so every branch is testable.

pub mod attribution;
pub mod counter;
pub mod devices;
pub mod flows;
pub mod interfaces;
pub mod protocols;

pub use counter::{CounterWidth, MonotonicCounter, Observation};
pub use devices::{
    DeviceAccounts, DeviceEvent, DeviceSample, DeviceTotals, Direction, MAX_IPS_PER_DEVICE,
    UnattributedSample, UnattributedTotals,
};
pub use interfaces::{
    DEFAULT_MAX_BYTES_PER_SEC, InterfaceAccounts, InterfaceEvent, InterfaceTotals, LinkCounters,
    LinkSample,
};
