//! What is saved: the whole state (spool copies and flash checkpoints) and
//! the commits appended to the flash journal between checkpoints.

use serde::{Deserialize, Serialize};

use super::calendar::{Calendar, UtcOffset};
use super::format::Payload;
use super::history::RingSizes;
use super::timeline::{Timeline, TrackChange};
use crate::account::devices::UnattributedTotals;
use crate::account::{DeviceAccounts, DeviceTotals, InterfaceAccounts, InterfaceTotals};
use crate::mac::{Mac, drop_group};

/// The encoding of an empty list: the upstream totals a version 1 file
/// never had.
const NO_UPSTREAM: &[u8] = &[0];

/// Everything netmeter keeps across restarts and reboots.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct State {
    pub interfaces: InterfaceAccounts,
    pub devices: DeviceAccounts,
    pub timeline: Timeline,
    /// Where the flash copy stood when this state was taken, so a state
    /// loaded from the spool goes on with the same journal.
    pub flash: FlashPosition,
    /// Upstream routers' totals (format version 2).
    pub upstream: UpstreamBytes,
}

/// The upstream routers' totals as saved: bytes that only the upstream
/// slice reads and writes (`upstream::UpstreamAccounts`), so the store
/// needs nothing of the slice, and a build without it (the core) keeps a
/// full build's totals as they are. They end both payloads, after the
/// fields, as the list of sources the slice encodes; `[0]` (an empty list)
/// when there are none.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct UpstreamBytes {
    bytes: Vec<u8>,
    /// New totals since the last commit.
    changed: bool,
}

/// No bytes inside the fields: they follow them ([`Payload::tail`]).
impl Serialize for UpstreamBytes {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_unit()
    }
}

impl<'de> Deserialize<'de> for UpstreamBytes {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        <()>::deserialize(d)?;
        Ok(Self::default())
    }
}

impl UpstreamBytes {
    /// The encoded list of sources, `[0]` when there is none.
    pub fn bytes(&self) -> &[u8] {
        if self.bytes.is_empty() {
            NO_UPSTREAM
        } else {
            &self.bytes
        }
    }

    /// New totals after a reading: the next commit records them.
    pub fn update(&mut self, bytes: Vec<u8>) {
        self.replace(bytes);
        self.changed = true;
    }

    /// The same totals in another shape (sources dropped or added by a
    /// reload): saved with the next checkpoint, not worth a record.
    pub fn replace(&mut self, bytes: Vec<u8>) {
        self.bytes = match bytes[..] {
            [0] => Vec::new(),
            _ => bytes,
        };
    }

    pub fn is_empty(&self) -> bool {
        self.bytes() == NO_UPSTREAM
    }

    /// A journal record's copy: every source whole when any changed, else
    /// nothing.
    pub fn committed(&self) -> Self {
        match self.changed {
            true => Self {
                bytes: self.bytes.clone(),
                changed: false,
            },
            false => Self::default(),
        }
    }

    /// A record's copy holds every source whole: it replaces these.
    pub fn replay(&mut self, committed: Self) {
        if !committed.is_empty() {
            self.bytes = committed.bytes;
        }
    }

    pub fn mark_committed(&mut self) {
        self.changed = false;
    }
}

impl Payload for State {
    const V1_SUFFIX: &'static [u8] = NO_UPSTREAM;
    fn keep_tail(&mut self, tail: &[u8]) -> bool {
        self.upstream.replace(tail.to_vec());
        true
    }
    fn tail(&self) -> &[u8] {
        self.upstream.bytes()
    }
}

impl Payload for Commit {
    const V1_SUFFIX: &'static [u8] = NO_UPSTREAM;
    fn keep_tail(&mut self, tail: &[u8]) -> bool {
        self.upstream.replace(tail.to_vec());
        true
    }
    fn tail(&self) -> &[u8] {
        self.upstream.bytes()
    }
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
            upstream: UpstreamBytes::default(),
        }
    }
}

impl State {
    /// Multicast and broadcast MACs are never devices, but older builds
    /// saved some (on a bridged IPv6 LAN the router's own MLD reports and
    /// DAD probes, sent from `::` to `33:33:…`): drops their records and
    /// history. Their bytes were never a device's, so they go nowhere.
    /// Returns how many MACs were dropped.
    pub fn drop_group_devices(&mut self) -> usize {
        let tracks = drop_group(&mut self.timeline.devices);
        self.devices.drop_group_macs().max(tracks)
    }
}

/// One journal record: everything that changed since the record (or
/// checkpoint) before it, as absolute values. Interfaces are few and
/// recorded whole, raw readings included, so counting goes on exactly
/// within a boot; devices only when they changed, without their element
/// readings (their kernel table is reinstalled on start anyway).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Commit {
    /// The checkpoint (sequence) this record extends: records of any other
    /// checkpoint are ignored.
    pub checkpoint: u64,
    pub boot_id: Option<String>,
    pub interfaces: Vec<InterfaceTotals>,
    pub interface_tracks: Vec<(String, TrackChange)>,
    /// Changed devices, `other` under the all-zero MAC; addresses left out.
    pub devices: Vec<DeviceTotals>,
    pub device_tracks: Vec<(Mac, TrackChange)>,
    pub unattributed: UnattributedTotals,
    pub generation: Option<u64>,
    pub high_water: u64,
    /// Every upstream source whole, when any changed (format version 2):
    /// they are few, and their raw readings let counting go on exactly.
    pub upstream: UpstreamBytes,
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
        let device_tracks: Vec<(Mac, TrackChange)> = timeline
            .devices
            .iter()
            .filter_map(|(mac, t)| Some((*mac, t.change()?)))
            .collect();
        let devices = device_tracks
            .iter()
            .filter_map(|(mac, _)| {
                let totals = if *mac == Mac::OTHER {
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
            upstream: state.upstream.committed(),
        }
    }

    /// Whether there is anything worth a record.
    pub fn is_empty(&self) -> bool {
        self.interface_tracks.is_empty()
            && self.device_tracks.is_empty()
            && self.upstream.is_empty()
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
        state.upstream.replay(self.upstream);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::format::{FileKind, decode, encode};

    /// A version 1 file of `payload`: today's encoding without the upstream
    /// list's byte at the end, with version, length and checksum to match.
    fn as_version_1(file: &[u8]) -> Vec<u8> {
        let mut v1 = file[..file.len() - 5].to_vec();
        assert_eq!(
            file[file.len() - 5],
            0,
            "an empty upstream list ends the payload"
        );
        v1[4..6].copy_from_slice(&1u16.to_le_bytes());
        let len = (v1.len() - 28) as u32;
        v1[24..28].copy_from_slice(&len.to_le_bytes());
        let crc = crate::store::crc32::hash(&v1);
        v1.extend_from_slice(&crc.to_le_bytes());
        v1
    }

    #[test]
    fn version_1_states_and_records_load_with_no_upstream_totals() {
        let state = State::new(4, 4);
        let file = encode(FileKind::Snapshot, 7, 0, &state).unwrap();
        let old: State = decode(&as_version_1(&file), FileKind::Snapshot)
            .unwrap()
            .payload;
        assert_eq!(encode(FileKind::Snapshot, 7, 0, &old).unwrap(), file);

        let commit = Commit::of(&state);
        let file = encode(FileKind::Journal, 8, 0, &commit).unwrap();
        let old = decode::<Commit>(&as_version_1(&file), FileKind::Journal).unwrap();
        assert_eq!((old.version, old.payload), (1, commit));
    }
}
