//! What is saved: the whole state (spool copies and flash checkpoints) and
//! the commits appended to the flash journal between checkpoints.

use serde::{Deserialize, Serialize};

use super::calendar::{Calendar, UtcOffset};
use super::history::RingSizes;
use super::timeline::{OTHER, Timeline, TrackChange};
use crate::account::devices::UnattributedTotals;
use crate::account::{DeviceAccounts, DeviceTotals, InterfaceAccounts, InterfaceTotals};

/// Everything netmeter keeps across restarts and reboots.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct State {
    pub interfaces: InterfaceAccounts,
    pub devices: DeviceAccounts,
    pub timeline: Timeline,
    /// Where the flash copy stood when this state was taken, so a state
    /// loaded from the spool goes on with the same journal.
    pub flash: FlashPosition,
}

/// The flash journal's position: the checkpoint it extends and the last
/// record written to it (sequence numbers), and its size.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FlashPosition {
    pub checkpoint: u64,
    pub last_record: u64,
    pub journal_bytes: u64,
    pub checkpoint_bytes: u64,
}

impl State {
    pub fn new(max_interfaces: usize, max_devices: usize) -> Self {
        Self {
            interfaces: InterfaceAccounts::new(max_interfaces),
            devices: DeviceAccounts::new(max_devices),
            timeline: Timeline::default(),
            flash: FlashPosition::default(),
        }
    }
}

/// One journal record: everything that changed since the record (or
/// checkpoint) before it, as absolute values. Interfaces are few and
/// recorded whole, raw readings included, so counting goes on exactly
/// within a boot; devices only when they changed, without their element
/// readings (their kernel table is reinstalled on start anyway).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Commit {
    /// The checkpoint (sequence) this record extends: records of any other
    /// checkpoint are ignored.
    pub checkpoint: u64,
    pub boot_id: Option<String>,
    pub interfaces: Vec<InterfaceTotals>,
    pub interface_tracks: Vec<(String, TrackChange)>,
    /// Changed devices, `other` under the all-zero MAC; addresses left out.
    pub devices: Vec<DeviceTotals>,
    pub device_tracks: Vec<([u8; 6], TrackChange)>,
    pub unattributed: UnattributedTotals,
    pub generation: Option<u64>,
    pub high_water: u64,
}

impl Commit {
    /// The record of what changed in `state` since its last commit.
    pub fn of(state: &State) -> Self {
        let timeline = &state.timeline;
        let interface_tracks = timeline
            .interfaces
            .iter()
            .filter_map(|(name, t)| Some((name.clone(), t.change()?)))
            .collect();
        let device_tracks: Vec<([u8; 6], TrackChange)> = timeline
            .devices
            .iter()
            .filter_map(|(mac, t)| Some((*mac, t.change()?)))
            .collect();
        let devices = device_tracks
            .iter()
            .filter_map(|(mac, _)| {
                let totals = if *mac == OTHER {
                    state.devices.other()
                } else {
                    state.devices.get(mac)?
                };
                // Addresses and rates are of the moment: not worth the flash.
                Some(DeviceTotals {
                    ips: Vec::new(),
                    rx_rate: 0,
                    tx_rate: 0,
                    ..totals.clone()
                })
            })
            .collect();
        Self {
            checkpoint: state.flash.checkpoint,
            boot_id: state.interfaces.boot_id().map(str::to_owned),
            interfaces: state.interfaces.iter().cloned().collect(),
            interface_tracks,
            devices,
            device_tracks,
            unattributed: state.devices.unattributed(),
            generation: state.devices.generation(),
            high_water: timeline.high_water,
        }
    }

    /// Whether there is anything worth a record.
    pub fn is_empty(&self) -> bool {
        self.interface_tracks.is_empty() && self.device_tracks.is_empty()
    }

    /// Replays this record onto the state it followed.
    pub fn apply<Z: UtcOffset>(
        self,
        state: &mut State,
        cal: &Calendar<Z>,
        sizes: (&RingSizes, &RingSizes),
    ) {
        state.interfaces.restore(self.boot_id, self.interfaces);
        state
            .devices
            .restore(self.generation, self.devices, self.unattributed);
        for (name, change) in &self.interface_tracks {
            state.timeline.apply_interface(cal, sizes.0, name, change);
        }
        for (mac, change) in &self.device_tracks {
            state.timeline.apply_device(cal, sizes.1, *mac, change);
        }
        state.timeline.high_water = state.timeline.high_water.max(self.high_water);
    }
}
