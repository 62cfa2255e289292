//! How much of the WAN's traffic the per-device counters account for: the
//! figure `netmeter check` judges placement by.

use crate::account::{DeviceAccounts, InterfaceAccounts, LinkSample};
use serde::{Deserialize, Serialize};

/// IP bytes over the WAN interfaces and over all devices since `since`.
/// The router's own traffic (DNS forwarding, NTP, updates) crosses the WAN
/// without being any device's, so 100 % is not expected; far below it is a
/// placement problem.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Attribution {
    pub wan: Vec<String>,
    pub since: u64,
    pub wan_tx_bytes: u64,
    pub wan_rx_bytes: u64,
    pub device_tx_bytes: u64,
    pub device_rx_bytes: u64,
    /// device_tx / wan_tx (uploads); None while the WAN carried nothing.
    pub tx_share: Option<f64>,
    pub rx_share: Option<f64>,
}

#[derive(Default)]
pub struct AttributionTracker {
    baseline: Option<(Vec<String>, u64, [u64; 4])>,
}

/// (wan tx, wan rx, device tx, device rx) in IP bytes, as totals so far.
fn totals(
    wan: &[String],
    interfaces: &InterfaceAccounts,
    links: &[LinkSample],
    devices: &DeviceAccounts,
) -> [u64; 4] {
    let (mut wan_tx, mut wan_rx) = (0u64, 0u64);
    for name in wan {
        let Some(t) = interfaces.get(name) else {
            continue;
        };
        let header = links
            .iter()
            .find(|l| &l.name == name)
            .map_or(0, |l| l.header_bytes as u64);
        wan_tx += t
            .tx_bytes
            .total()
            .saturating_sub(header * t.tx_packets.total());
        wan_rx += t
            .rx_bytes
            .total()
            .saturating_sub(header * t.rx_packets.total());
    }
    let (mut dev_tx, mut dev_rx) = (devices.other().tx_bytes, devices.other().rx_bytes);
    for d in devices.devices() {
        dev_tx += d.tx_bytes;
        dev_rx += d.rx_bytes;
    }
    [wan_tx, wan_rx, dev_tx, dev_rx]
}

impl AttributionTracker {
    /// Called after every refresh; starts over when per-device counting
    /// (re)starts or the WAN interfaces change.
    pub fn update(
        &mut self,
        now_unix: u64,
        active: bool,
        wan: Vec<String>,
        interfaces: &InterfaceAccounts,
        links: &[LinkSample],
        devices: &DeviceAccounts,
    ) -> Option<Attribution> {
        if !active || wan.is_empty() {
            self.baseline = None;
            return None;
        }
        let now = totals(&wan, interfaces, links, devices);
        let (base_wan, since, base) = match &self.baseline {
            Some((w, since, base)) if *w == wan => (w.clone(), *since, *base),
            _ => {
                self.baseline = Some((wan.clone(), now_unix, now));
                (wan, now_unix, now)
            }
        };
        let d: Vec<u64> = now
            .iter()
            .zip(base)
            .map(|(n, b)| n.saturating_sub(b))
            .collect();
        let share = |dev: u64, wan: u64| (wan > 0).then(|| dev as f64 / wan as f64);
        Some(Attribution {
            wan: base_wan,
            since,
            wan_tx_bytes: d[0],
            wan_rx_bytes: d[1],
            device_tx_bytes: d[2],
            device_rx_bytes: d[3],
            tx_share: share(d[2], d[0]),
            rx_share: share(d[3], d[1]),
        })
    }
}
