//! What is saved: the whole state (spool copies and flash checkpoints) and
//! the commits appended to the flash journal between checkpoints.

use serde::{Deserialize, Serialize};

use super::calendar::{Calendar, UtcOffset};
use super::format::Payload;
use super::history::RingSizes;
use super::quota::QuotaLedger;
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
    /// The quotas' memory (format version 3: the trailer, after the
    /// upstream bytes a core build keeps unread).
    #[serde(skip)]
    pub quotas: QuotaLedger,
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
    const TRAILER: bool = true;
    fn trailer(&self) -> Vec<u8> {
        postcard::to_extend(&self.quotas, Vec::new()).unwrap_or_else(|_| vec![0])
    }
    fn keep_trailer(&mut self, trailer: &[u8]) -> bool {
        match postcard::from_bytes(trailer) {
            Ok(quotas) => {
                self.quotas = quotas;
                true
            }
            Err(_) => false,
        }
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
    const TRAILER: bool = true;
    fn trailer(&self) -> Vec<u8> {
        postcard::to_extend(&self.quotas, Vec::new()).unwrap_or_else(|_| vec![0])
    }
    fn keep_trailer(&mut self, trailer: &[u8]) -> bool {
        match postcard::from_bytes(trailer) {
            Ok(quotas) => {
                self.quotas = quotas;
                true
            }
            Err(_) => false,
        }
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
            quotas: QuotaLedger::default(),
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
    /// The quotas' whole ledger when it changed (format version 3, the
    /// trailer).
    #[serde(skip)]
    pub quotas: Option<QuotaLedger>,
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
            quotas: state.quotas.committed(),
        }
    }

    /// Whether there is anything worth a record.
    pub fn is_empty(&self) -> bool {
        self.interface_tracks.is_empty()
            && self.device_tracks.is_empty()
            && self.upstream.is_empty()
            && self.quotas.is_none()
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
        if let Some(quotas) = self.quotas {
            state.quotas = quotas;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::format::{FileKind, decode, encode};

    /// The empty quota ledger's trailer and its length: what version 3
    /// added at the end of an empty state or record.
    const EMPTY_TRAILER: [u8; 5] = [0, 1, 0, 0, 0];

    /// A file of an older `version` of `file` (today's encoding of a state
    /// without quotas): the trailer dropped and, for version 1, the
    /// upstream list's byte too, with version, length and checksum to match.
    pub(crate) fn as_version(file: &[u8], version: u16) -> Vec<u8> {
        let body = &file[..file.len() - 4];
        assert_eq!(
            &body[body.len() - 5..],
            EMPTY_TRAILER,
            "an empty ledger ends it"
        );
        let mut old = body[..body.len() - 5].to_vec();
        if version == 1 {
            assert_eq!(old.pop(), Some(0), "an empty upstream list ends the fields");
        }
        old[4..6].copy_from_slice(&version.to_le_bytes());
        let len = (old.len() - 28) as u32;
        old[24..28].copy_from_slice(&len.to_le_bytes());
        let crc = crate::store::crc32::hash(&old);
        old.extend_from_slice(&crc.to_le_bytes());
        old
    }

    fn as_version_1(file: &[u8]) -> Vec<u8> {
        as_version(file, 1)
    }

    #[test]
    fn version_2_states_and_records_load_with_an_empty_quota_ledger() {
        let state = State::new(4, 4);
        let file = encode(FileKind::Snapshot, 7, 0, &state).unwrap();
        let old = decode::<State>(&as_version(&file, 2), FileKind::Snapshot).unwrap();
        assert_eq!(old.version, 2);
        assert_eq!(old.payload.quotas, QuotaLedger::default());
        assert_eq!(
            encode(FileKind::Snapshot, 7, 0, &old.payload).unwrap(),
            file
        );
        let commit = Commit::of(&state);
        let file = encode(FileKind::Journal, 8, 0, &commit).unwrap();
        let old = decode::<Commit>(&as_version(&file, 2), FileKind::Journal).unwrap();
        assert_eq!((old.version, old.payload), (2, commit));
    }

    #[test]
    fn the_quota_ledger_survives_a_checkpoint_and_a_journal_record() {
        use crate::store::quota::QuotaRecord;
        let mut state = State::new(4, 4);
        state.quotas.records.push(QuotaRecord {
            name: "kids".into(),
            period_start: 1_796_000_000,
            fired: vec![80, 100],
            blocked: vec!["02:00:00:00:00:01".parse().unwrap()],
            lifted: false,
        });
        // Bytes a core build keeps unread come before the trailer.
        state.upstream.update(vec![1, 2, 3]);
        let file = encode(FileKind::Snapshot, 7, 0, &state).unwrap();
        let back = decode::<State>(&file, FileKind::Snapshot).unwrap().payload;
        assert_eq!(back.quotas, state.quotas);
        assert_eq!(back.upstream.bytes(), [1, 2, 3]);

        assert!(
            Commit::of(&state).quotas.is_none(),
            "unchanged: not recorded"
        );
        state.quotas.changed = true;
        let record = Commit::of(&state);
        assert!(!record.is_empty());
        let file = encode(FileKind::Journal, 8, 0, &record).unwrap();
        let record = decode::<Commit>(&file, FileKind::Journal).unwrap().payload;
        let mut replayed = State::new(4, 4);
        let cal = Calendar {
            zone: crate::store::calendar::FixedOffset(0),
            month_rotate: 1,
        };
        let sizes = RingSizes::DEVICE_DEFAULT;
        record.apply(&mut replayed, &cal, (&sizes, &sizes));
        assert_eq!(replayed.quotas.records, state.quotas.records);
    }

    #[test]
    fn a_damaged_trailer_is_refused() {
        let state = State::new(4, 4);
        let mut file = encode(FileKind::Snapshot, 7, 0, &state).unwrap();
        let len_at = file.len() - 8;
        file[len_at] = 200; // a trailer longer than the payload
        let crc_at = file.len() - 4;
        let crc = crate::store::crc32::hash(&file[..crc_at]);
        file[crc_at..].copy_from_slice(&crc.to_le_bytes());
        assert!(matches!(
            decode::<State>(&file, FileKind::Snapshot),
            Err(crate::store::format::FormatError::PayloadTrailing { .. })
        ));
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
