//! When and where state is written, and which copy is loaded.
//!
//! - Spool (`spool_directory`, tmpfs on OpenWrt): the whole state every
//!   `spool_interval`, atomically, the previous copy kept. Survives a daemon
//!   crash; costs no flash.
//! - Flash (`database_directory`): a checkpoint of the whole state, plus a
//!   journal of commits appended every `commit_interval`, on stop and on
//!   `netmeter commit`. Each commit records only what changed, so an hour's
//!   commit is a few KB where a checkpoint would be hundreds. A checkpoint is
//!   written again once the journal has grown to twice the checkpoint (so
//!   the daily volume is about 1.5 times the journal's), after a damaged
//!   file, and on the first commit.
//! - Load: the newest valid of the spool copies and of each flash
//!   checkpoint with its journal replayed. Every file carries its sequence
//!   number; the highest wins.
//!
//! Order makes crashes harmless: a checkpoint first appends a last record to
//! the old journal, so the previous checkpoint plus that journal (kept as
//! `.prev`) is the new checkpoint again; the journal is then rotated. A
//! commit is appended to flash before the spool copy that says it happened.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::calendar::{Calendar, UtcOffset};
use super::files::{self, FileError, sibling, utc};
use super::format::{self, Decoded, FileKind, FormatError};
use super::history::RingSizes;
use super::state::{Commit, State};

pub const SPOOL_FILE: &str = "netmeter.spool";
pub const CHECKPOINT_FILE: &str = "netmeter.state";
pub const JOURNAL_FILE: &str = "netmeter.journal";

/// A checkpoint is written once the journal is this many times its size:
/// then flash takes the journal plus half as much again in checkpoints,
/// and a load replays at most a couple of days of records.
const JOURNAL_PER_CHECKPOINT: u64 = 2;

/// Why a spool copy or a commit was not written.
#[derive(Debug)]
pub enum StoreError {
    /// The state does not fit the file format.
    Encode(FormatError),
    /// A file in the directory that `option` names could not be written.
    Io {
        option: &'static str,
        file: FileError,
    },
}

impl StoreError {
    fn io(option: &'static str) -> impl Fn(FileError) -> StoreError {
        move |file| StoreError::Io { option, file }
    }

    /// What failed, naming the file, the operation and the OS error.
    pub fn cause(&self) -> String {
        match self {
            StoreError::Encode(e) => format!("cannot encode the state: {e}"),
            StoreError::Io { file, .. } => file.to_string(),
        }
    }

    /// What the admin can do about it: the OS error decides.
    pub fn advice(&self) -> String {
        let (option, errno) = match self {
            StoreError::Encode(_) => {
                return "lower option max_devices or the history lengths".into();
            }
            StoreError::Io { option, file } => (option, file.errno()),
        };
        match errno {
            Some(libc::ENOSPC | libc::EDQUOT) => format!(
                "free space on the overlay (or the filesystem {option} is on) \
                 or point option {option} at a bigger one"
            ),
            Some(libc::EROFS) => format!(
                "the filesystem is read-only: remount it read-write (an overlay turns \
                 read-only when its flash is damaged) or point option {option} at a \
                 writable directory"
            ),
            Some(libc::EIO) => format!(
                "the medium failed (worn-out flash, a failing USB stick): see dmesg, \
                 and point option {option} at a healthy one"
            ),
            _ => format!("fix that, or point option {option} at a writable directory"),
        }
    }
}

impl std::fmt::Display for StoreError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}; {}", self.cause(), self.advice())
    }
}

/// How the last writes went, for `netmeter check` and the status API.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct StoreStatus {
    pub spool_directory: PathBuf,
    pub database_directory: PathBuf,
    /// Where the state came from at start, or why nothing was.
    pub loaded_from: String,
    pub last_spool: Option<u64>,
    pub last_spool_error: Option<String>,
    pub last_commit: Option<u64>,
    pub last_commit_error: Option<String>,
    pub last_checkpoint: Option<u64>,
    /// Commits attempted since start (a client waits for it to grow).
    pub commits: u64,
    /// Checkpoints written since start.
    pub checkpoints: u64,
    /// Bytes written to the database directory since start.
    pub flash_bytes_written: u64,
    pub journal_bytes: u64,
    pub checkpoint_bytes: u64,
}

/// Files on disk for one daemon. Pure file policy: the caller decides when.
pub struct Store {
    spool: PathBuf,
    flash: PathBuf,
    /// Look, don't touch: bad files stay where they are (the CLI reading
    /// saved state while no daemon runs).
    read_only: bool,
    /// The highest sequence used or seen.
    sequence: u64,
    /// The next commit must be a checkpoint (first commit, damage found,
    /// the journal's position unknown).
    checkpoint_due: bool,
    pub status: StoreStatus,
}

/// A state found on disk, with the sequence it stands at.
struct Candidate {
    state: State,
    sequence: u64,
    from: String,
}

impl Store {
    pub fn new(spool: &Path, flash: &Path) -> Self {
        Self {
            spool: spool.to_path_buf(),
            flash: flash.to_path_buf(),
            read_only: false,
            sequence: 0,
            checkpoint_due: true,
            status: StoreStatus {
                spool_directory: spool.to_path_buf(),
                database_directory: flash.to_path_buf(),
                ..StoreStatus::default()
            },
        }
    }

    pub fn read_only(mut self) -> Self {
        self.read_only = true;
        self
    }

    /// The newest valid state, with log lines for everything not used.
    /// Bad files are moved aside (never deleted); nothing found is a first start.
    pub fn load<Z: UtcOffset>(
        &mut self,
        cal: &Calendar<Z>,
        sizes: (&RingSizes, &RingSizes),
    ) -> (Option<State>, Vec<String>) {
        let mut log = Vec::new();
        let mut candidates = Vec::new();
        let now = crate::clock::unix_now();
        let spool = self.spool.join(SPOOL_FILE);
        for path in [spool.clone(), sibling(&spool, ".prev")] {
            if let Some(d) = read_snapshot(&path, now, self.read_only, &mut log) {
                self.sequence = self.sequence.max(d.sequence);
                candidates.push(Candidate {
                    from: describe(&path, &d),
                    sequence: d.sequence,
                    state: d.payload,
                });
            }
        }
        let checkpoint = self.flash.join(CHECKPOINT_FILE);
        let journal_path = self.flash.join(JOURNAL_FILE);
        let journals = [
            read_journal(&journal_path, self.read_only),
            read_journal(&sibling(&journal_path, ".prev"), self.read_only),
        ];
        for journal in &journals {
            log.extend(journal.problem.clone());
        }
        // Where flash stands: the current checkpoint and the last record of
        // the current journal that extends it. Appends may go on only there.
        let mut tip = None;
        for (n, path) in [checkpoint.clone(), sibling(&checkpoint, ".prev")]
            .into_iter()
            .enumerate()
        {
            let Some(d) = read_snapshot(&path, now, self.read_only, &mut log) else {
                continue;
            };
            let mut from = describe(&path, &d);
            let (mut state, base) = (d.payload, d.sequence);
            let mut sequence = base;
            for (j, journal) in journals.iter().enumerate() {
                let mine: Vec<&(u64, u64, Commit)> = journal
                    .records
                    .iter()
                    .filter(|(_, _, c)| c.checkpoint == base)
                    .collect();
                if mine.is_empty() {
                    continue;
                }
                for (record_sequence, end, commit) in &mine {
                    if *record_sequence <= sequence {
                        continue; // contained in what came before
                    }
                    commit.clone().apply(&mut state, cal, sizes);
                    sequence = *record_sequence;
                    state.flash.last_record = sequence;
                    state.flash.journal_bytes = *end;
                }
                from = format!(
                    "{from} + {} commit(s) from {}",
                    mine.len(),
                    journal.path.display()
                );
                if n == 0 && j == 0 && journal.problem.is_none() {
                    tip = Some((base, sequence));
                }
                break;
            }
            if n == 0
                && tip.is_none()
                && journals[0].records.is_empty()
                && journals[0].problem.is_none()
            {
                tip = Some((base, sequence)); // a checkpoint with no journal yet
            }
            self.sequence = self.sequence.max(sequence);
            candidates.push(Candidate {
                state,
                sequence,
                from,
            });
        }
        for journal in &journals {
            if let Some((s, _, _)) = journal.records.last() {
                self.sequence = self.sequence.max(*s);
            }
        }
        let Some(best) = candidates.into_iter().max_by_key(|c| c.sequence) else {
            self.status.loaded_from = "nothing saved yet: starting from zero".into();
            log.push(format!(
                "no saved state in {} or {}: starting from zero",
                self.spool.display(),
                self.flash.display()
            ));
            return (None, log);
        };
        // The journal goes on only where the chosen state says flash stands;
        // anything else (flash older, damaged, or elsewhere) starts afresh.
        let position = (best.state.flash.checkpoint, best.state.flash.last_record);
        self.checkpoint_due = tip != Some(position);
        self.status.loaded_from = best.from.clone();
        self.status.journal_bytes = best.state.flash.journal_bytes;
        self.status.checkpoint_bytes = best.state.flash.checkpoint_bytes;
        log.push(format!("loaded {}", best.from));
        let mut state = best.state;
        let dropped = state.drop_group_devices();
        if dropped > 0 {
            log.push(format!(
                "dropped {dropped} saved device(s) with a multicast or broadcast MAC and their \
                 history: those are never devices (older versions counted the router's own \
                 multicast)"
            ));
            self.checkpoint_due = true; // so flash forgets them too
        }
        (Some(state), log)
    }

    fn next_sequence(&mut self) -> u64 {
        self.sequence += 1;
        self.sequence
    }

    /// The whole state to the spool.
    pub fn spool(&mut self, state: &State, now_unix: u64) -> Result<(), StoreError> {
        let sequence = self.next_sequence();
        let result = format::encode(FileKind::Snapshot, sequence, now_unix, state)
            .map_err(StoreError::Encode)
            .and_then(|bytes| {
                files::save(&self.spool, SPOOL_FILE, &bytes).map_err(StoreError::io(SPOOL))
            });
        match &result {
            Ok(()) => {
                self.status.last_spool = Some(now_unix);
                self.status.last_spool_error = None;
            }
            Err(e) => self.status.last_spool_error = Some(spool_error(e)),
        }
        result
    }

    /// Commits to flash: a journal record of what changed, or a checkpoint
    /// when one is due. On success the state's changes are marked committed.
    /// On failure (no space, read-only) the old files stay as they were and
    /// the next commit retries with a checkpoint.
    pub fn commit(&mut self, state: &mut State, now_unix: u64) -> Result<(), StoreError> {
        let grown =
            state.flash.journal_bytes >= JOURNAL_PER_CHECKPOINT * state.flash.checkpoint_bytes;
        self.status.commits += 1;
        let result = if self.checkpoint_due || grown {
            self.checkpoint(state, now_unix)
        } else {
            self.append(state, now_unix)
        };
        match &result {
            Ok(()) => {
                state.timeline.mark_committed();
                state.upstream.mark_committed();
                state.quotas.changed = false;
                self.status.last_commit = Some(now_unix);
                self.status.last_commit_error = None;
            }
            Err(e) => {
                self.checkpoint_due = true;
                self.status.last_commit_error = Some(flash_error(e));
            }
        }
        self.status.journal_bytes = state.flash.journal_bytes;
        self.status.checkpoint_bytes = state.flash.checkpoint_bytes;
        result
    }

    fn append(&mut self, state: &mut State, now_unix: u64) -> Result<(), StoreError> {
        let commit = Commit::of(state);
        if commit.is_empty() {
            return Ok(());
        }
        let sequence = self.next_sequence();
        let bytes = format::encode(FileKind::Journal, sequence, now_unix, &commit)
            .map_err(StoreError::Encode)?;
        let written = files::append(&self.flash, JOURNAL_FILE, &bytes);
        // Counted even when it failed: it may have reached the flash in part.
        self.status.flash_bytes_written += bytes.len() as u64;
        written.map_err(StoreError::io(FLASH))?;
        state.flash.last_record = sequence;
        state.flash.journal_bytes += bytes.len() as u64;
        Ok(())
    }

    fn checkpoint(&mut self, state: &mut State, now_unix: u64) -> Result<(), StoreError> {
        // The old checkpoint plus its journal must equal the new one, for
        // when the new one turns out damaged.
        if !self.checkpoint_due && state.flash.checkpoint != 0 {
            self.append(state, now_unix)?;
        }
        let sequence = self.next_sequence();
        let before = state.flash;
        state.flash.checkpoint = sequence;
        state.flash.last_record = sequence;
        state.flash.journal_bytes = 0;
        let encoded = format::encode(FileKind::Snapshot, sequence, now_unix, &*state);
        let first = !sibling(&self.flash.join(CHECKPOINT_FILE), ".prev").exists();
        let result = encoded.map_err(StoreError::Encode).and_then(|bytes| {
            // The very first checkpoint is saved twice, so that it, too, has
            // a previous generation (the same state; its journal fits both).
            for _ in 0..if first { 2 } else { 1 } {
                self.status.flash_bytes_written += bytes.len() as u64;
                files::save(&self.flash, CHECKPOINT_FILE, &bytes).map_err(StoreError::io(FLASH))?;
            }
            Ok(bytes.len() as u64)
        });
        match result {
            Ok(len) => {
                state.flash.checkpoint_bytes = len;
                // A journal of the older checkpoint stays as .prev, with it.
                if let Err(e) = files::rotate(&self.flash, JOURNAL_FILE) {
                    // Harmless to loading (its records name the old
                    // checkpoint), but appends must not follow them.
                    self.checkpoint_due = true;
                    return Err(StoreError::io(FLASH)(e));
                }
                self.checkpoint_due = false;
                self.status.last_checkpoint = Some(now_unix);
                self.status.checkpoints += 1;
                Ok(())
            }
            Err(e) => {
                state.flash = before;
                Err(e)
            }
        }
    }
}

/// A snapshot file's valid contents; a bad file is moved aside and logged.
fn read_snapshot(
    path: &Path,
    now: u64,
    read_only: bool,
    log: &mut Vec<String>,
) -> Option<Decoded<State>> {
    let bytes = match files::read_bounded(path) {
        Ok(Some(bytes)) => bytes,
        Ok(None) => return None,
        Err(e) => {
            log.push(format!(
                "{}: cannot read: {e}; left in place",
                path.display()
            ));
            return None;
        }
    };
    match format::decode::<State>(&bytes, FileKind::Snapshot) {
        Ok(d) => Some(d),
        Err(e) => {
            let moved = if read_only {
                "left in place".to_owned()
            } else {
                files::move_aside(path, now)
            };
            log.push(format!("{}: {e}; {moved}", path.display()));
            None
        }
    }
}

fn describe(path: &Path, d: &Decoded<State>) -> String {
    format!(
        "{} (saved {}, sequence {})",
        path.display(),
        utc(d.saved_unix),
        d.sequence
    )
}

/// A journal's valid records (sequence, end offset, record) up to the
/// first invalid one, and what was wrong after them.
struct Journal {
    path: PathBuf,
    records: Vec<(u64, u64, Commit)>,
    problem: Option<String>,
}

fn read_journal(path: &Path, read_only: bool) -> Journal {
    let mut journal = Journal {
        path: path.to_path_buf(),
        records: Vec::new(),
        problem: None,
    };
    let bytes = match files::read_bounded(path) {
        Ok(Some(bytes)) => bytes,
        Ok(None) => return journal,
        Err(e) => {
            journal.problem = Some(format!("{}: cannot read: {e}", path.display()));
            return journal;
        }
    };
    let mut at = 0;
    while at < bytes.len() {
        match format::decode_first::<Commit>(&bytes[at..], FileKind::Journal) {
            Ok((record, used)) => {
                at += used;
                journal
                    .records
                    .push((record.sequence, at as u64, record.payload));
            }
            Err(e) => {
                let left = bytes.len() - at;
                journal.problem = Some(if matches!(e, FormatError::Truncated { .. }) {
                    format!(
                        "{}: the last {left} bytes are a commit a crash or power cut \
                         interrupted; ignored",
                        path.display()
                    )
                } else {
                    format!(
                        "{}: {e} at byte {at}; the {left} bytes from there are ignored ({})",
                        path.display(),
                        if read_only {
                            "left in place".to_owned()
                        } else {
                            files::copy_aside(path)
                        }
                    )
                });
                break;
            }
        }
    }
    journal
}

/// The options naming the two directories, for advice.
const SPOOL: &str = "spool_directory";
const FLASH: &str = "database_directory";

fn spool_error(e: &StoreError) -> String {
    format!(
        "cannot write the spool copy ({}): a crash now loses data since the last commit; {}",
        e.cause(),
        e.advice()
    )
}

fn flash_error(e: &StoreError) -> String {
    format!(
        "cannot commit to flash ({}): counting goes on in RAM and the old files are kept; {}",
        e.cause(),
        e.advice()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::account::{DeviceSample, Direction, UnattributedSample};
    use crate::clock::Moment;
    use crate::mac::Mac;
    use crate::rxtx::RxTx;
    use crate::store::calendar::FixedOffset;
    use crate::store::timeline::Observed;
    use std::net::{IpAddr, Ipv4Addr};

    const CAL: Calendar<FixedOffset> = Calendar {
        zone: FixedOffset(3600),
        month_rotate: 1,
    };
    const SIZES: (&RingSizes, &RingSizes) =
        (&RingSizes::INTERFACE_DEFAULT, &RingSizes::DEVICE_DEFAULT);
    const T0: u64 = 1_790_000_000;

    fn scratch(tag: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("netmeter-persist-{}-{tag}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    /// One refresh in which device `n` has sent and received `bytes` in all.
    fn refresh(state: &mut State, at: u64, bytes: u64) {
        let now = Moment {
            monotonic_ms: at * 1000,
            unix_secs: at,
        };
        let samples: Vec<DeviceSample> = (0..3u8)
            .flat_map(|n| {
                [Direction::Sent, Direction::Received].map(|direction| DeviceSample {
                    direction,
                    mac: Mac([2, 0, 0, 0, 0, n]),
                    ip: IpAddr::V4(Ipv4Addr::new(10, 0, 0, n)),
                    bytes: bytes * u64::from(n + 1),
                    packets: bytes / 100,
                })
            })
            .collect();
        state
            .devices
            .ingest(now, 1, &samples, UnattributedSample::default());
        let devices = state
            .devices
            .devices()
            .map(|d| (d.mac, RxTx::new(d.rx_bytes, d.tx_bytes)))
            .collect();
        state.timeline.update(
            &CAL,
            SIZES,
            at,
            at * 1000,
            &Observed {
                interfaces: vec![("wan", RxTx::new(bytes * 7, bytes * 3))],
                devices,
            },
        );
    }

    /// Per device: rx, tx and the daily buckets.
    type Summary = Vec<(u64, u64, Vec<(i64, RxTx<u64>)>)>;

    fn summary(state: &State) -> Summary {
        state
            .devices
            .devices()
            .map(|d| {
                let track = &state.timeline.devices[&d.mac];
                let hours = track
                    .history
                    .ring(crate::store::calendar::Granularity::Day)
                    .unwrap()
                    .buckets()
                    .collect();
                (d.rx_bytes, d.tx_bytes, hours)
            })
            .collect()
    }

    fn load(spool: &Path, flash: &Path) -> (Option<State>, Vec<String>, bool) {
        let mut store = Store::new(spool, flash).read_only();
        let (state, log) = store.load(&CAL, SIZES);
        (state, log, store.checkpoint_due)
    }

    #[test]
    fn a_checkpoint_and_its_journal_give_back_the_state_and_appends_continue() {
        let dir = scratch("replay");
        let (spool, flash) = (dir.join("spool"), dir.join("flash"));
        let mut store = Store::new(&spool, &flash);
        let mut state = State::new(16, 16);
        refresh(&mut state, T0, 1000);
        store.commit(&mut state, T0).unwrap();
        assert_eq!(store.status.checkpoints, 1);
        for hour in 1..5 {
            refresh(&mut state, T0 + hour * 3600, 1000 + hour * 5_000_000);
            store.commit(&mut state, T0 + hour * 3600).unwrap();
        }
        assert_eq!(store.status.checkpoints, 1, "records, not checkpoints");
        // Flash alone (a reboot emptied the spool) is the state exactly.
        let (loaded, log, due) = load(&dir.join("nothing"), &flash);
        let loaded = loaded.unwrap();
        assert_eq!(summary(&loaded), summary(&state), "{log:?}");
        assert!(!due, "the journal goes on where it stood: {log:?}");
        assert!(log.iter().any(|l| l.contains("+ 4 commit(s)")), "{log:?}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn devices_with_group_macs_saved_by_older_builds_are_dropped_with_their_history_on_load() {
        let dir = scratch("group");
        let (spool, flash) = (dir.join("spool"), dir.join("flash"));
        let mut store = Store::new(&spool, &flash);
        let mut state = State::new(16, 16);
        // What an older build saved: multicast and broadcast MACs as
        // devices with history, in the checkpoint and in the journal.
        let mut save_group = |state: &mut State, mac: Mac, at: u64| {
            let (generation, unattributed) =
                (state.devices.generation(), state.devices.unattributed());
            let totals = crate::account::DeviceTotals {
                mac,
                rx_bytes: 2_688,
                ..Default::default()
            };
            state
                .devices
                .restore(generation, vec![totals], unattributed);
            refresh(state, at, at - T0 + 1000);
            store.commit(state, at).unwrap();
        };
        save_group(&mut state, Mac([0x33, 0x33, 0, 0, 0, 0x16]), T0);
        save_group(&mut state, Mac([0xff; 6]), T0 + 3600);
        assert_eq!(store.status.checkpoints, 1, "the second is in the journal");
        assert_eq!(state.timeline.devices.len(), 5);
        let real = summary(&state)[..3].to_vec(); // group MACs sort last

        let (loaded, log, due) = load(&dir.join("none"), &flash);
        let loaded = loaded.unwrap();
        assert_eq!(summary(&loaded), real, "{log:?}");
        assert_eq!(loaded.timeline.devices.len(), 3, "their history is gone");
        let said: Vec<_> = log.iter().filter(|l| l.contains("multicast")).collect();
        assert_eq!(said.len(), 1, "{log:?}");
        assert!(said[0].starts_with("dropped 2 "), "{log:?}");
        assert!(due, "the next commit is a checkpoint without them");

        // That checkpoint made, nothing is left to drop.
        let mut store = Store::new(&spool, &flash);
        let mut state = store.load(&CAL, SIZES).0.unwrap();
        store.commit(&mut state, T0 + 7200).unwrap();
        let (loaded, log, _) = load(&dir.join("none"), &flash);
        assert_eq!(summary(&loaded.unwrap()), real);
        assert!(!log.iter().any(|l| l.contains("multicast")), "{log:?}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn every_truncation_and_bit_flip_of_the_newest_checkpoint_falls_back_to_the_previous() {
        let dir = scratch("damage");
        let (spool, flash) = (dir.join("spool"), dir.join("flash"));
        let mut store = Store::new(&spool, &flash);
        let mut state = State::new(16, 16);
        // Hourly commits until the journal outgrew the first checkpoint.
        let mut hour = 0;
        while store.status.checkpoints < 2 {
            let at = T0 + hour * 3600;
            refresh(&mut state, at, 1000 + hour * 9_000_000);
            store.commit(&mut state, at).unwrap();
            hour += 1;
            assert!(hour < 10_000);
        }
        let expected = summary(&state);
        let newest = flash.join(CHECKPOINT_FILE);
        let good = std::fs::read(&newest).unwrap();
        let spool_none = dir.join("none");
        let damaged = |bytes: &[u8]| {
            std::fs::write(&newest, bytes).unwrap();
            let (loaded, log, due) = load(&spool_none, &flash);
            let loaded = loaded.unwrap_or_else(|| panic!("nothing loaded: {log:?}"));
            // The older checkpoint plus its journal is the newer one again.
            assert_eq!(summary(&loaded), expected, "{log:?}");
            assert!(due, "appends must not follow a damaged checkpoint");
        };
        for len in 0..good.len() {
            damaged(&good[..len]);
        }
        for bit in 0..good.len() * 8 {
            let mut bytes = good.clone();
            bytes[bit / 8] ^= 1 << (bit % 8);
            damaged(&bytes);
        }
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn after_a_reboot_totals_continue_from_the_saved_state_and_nothing_is_counted_twice() {
        use crate::account::{CounterWidth, LinkCounters, LinkSample};
        let link = |rx: u64| LinkSample {
            ifindex: 2,
            name: "wan".into(),
            width: CounterWidth::Bits64,
            header_bytes: 14,
            master: None,
            counters: LinkCounters {
                rx_bytes: rx,
                ..LinkCounters::default()
            },
        };
        let dir = scratch("reboot");
        let (spool, flash) = (dir.join("spool"), dir.join("flash"));
        let mut store = Store::new(&spool, &flash);
        let mut state = State::new(16, 16);
        let at = |unix: u64| Moment {
            monotonic_ms: (unix - T0) * 1000,
            unix_secs: unix,
        };
        state.interfaces.ingest(at(T0), "boot-a", &[link(1_000)]);
        state
            .interfaces
            .ingest(at(T0 + 10), "boot-a", &[link(5_000)]);
        store.commit(&mut state, T0 + 10).unwrap();
        // Power cut: the spool (tmpfs) is gone, the kernel counts from zero.
        let (loaded, log, _) = load(&dir.join("tmpfs-after-reboot"), &flash);
        let mut state = loaded.unwrap_or_else(|| panic!("{log:?}"));
        assert_eq!(state.interfaces.get("wan").unwrap().rx_bytes.total(), 5_000);
        let events = state
            .interfaces
            .ingest(at(T0 + 100), "boot-b", &[link(300)]);
        assert!(events.contains(&crate::account::InterfaceEvent::BootChanged));
        assert_eq!(
            state.interfaces.get("wan").unwrap().rx_bytes.total(),
            5_300,
            "the saved 5,000 and the new boot's 300, nothing twice"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn even_the_first_checkpoint_has_a_previous_generation_its_journal_extends() {
        let dir = scratch("first");
        let (spool, flash) = (dir.join("spool"), dir.join("flash"));
        let mut store = Store::new(&spool, &flash);
        let mut state = State::new(16, 16);
        refresh(&mut state, T0, 1000);
        store.commit(&mut state, T0).unwrap();
        refresh(&mut state, T0 + 3600, 7_000_000);
        store.commit(&mut state, T0 + 3600).unwrap();
        assert_eq!(store.status.checkpoints, 1);
        let newest = flash.join(CHECKPOINT_FILE);
        let mut bytes = std::fs::read(&newest).unwrap();
        bytes[40] ^= 1;
        std::fs::write(&newest, &bytes).unwrap();
        let (loaded, log, _) = load(&dir.join("none"), &flash);
        assert_eq!(summary(&loaded.unwrap()), summary(&state), "{log:?}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_journal_cut_anywhere_keeps_the_whole_records_before_the_cut() {
        let dir = scratch("torn");
        let (spool, flash) = (dir.join("spool"), dir.join("flash"));
        let mut store = Store::new(&spool, &flash);
        let mut state = State::new(16, 16);
        refresh(&mut state, T0, 1000);
        store.commit(&mut state, T0).unwrap();
        let mut after_each = vec![(0, summary(&state))];
        for hour in 1..4 {
            refresh(&mut state, T0 + hour * 3600, hour * 3_000_000);
            store.commit(&mut state, T0 + hour * 3600).unwrap();
            after_each.push((state.flash.journal_bytes, summary(&state)));
        }
        let journal = flash.join(JOURNAL_FILE);
        let full = std::fs::read(&journal).unwrap();
        for len in 0..=full.len() {
            std::fs::write(&journal, &full[..len]).unwrap();
            let (loaded, log, due) = load(&dir.join("none"), &flash);
            let want = after_each
                .iter()
                .rev()
                .find(|(end, _)| *end as usize <= len)
                .unwrap();
            assert_eq!(summary(&loaded.unwrap()), want.1, "cut at {len}: {log:?}");
            let torn = !after_each.iter().any(|(end, _)| *end as usize == len);
            assert_eq!(due, torn, "cut at {len}: a torn tail forces a checkpoint");
        }
        let _ = std::fs::remove_dir_all(&dir);
    }

    fn io_error(errno: i32) -> StoreError {
        StoreError::Io {
            option: FLASH,
            file: FileError {
                op: files::Op::Write,
                path: "/overlay/netmeter/netmeter.state.tmp".into(),
                source: std::io::Error::from_raw_os_error(errno),
            },
        }
    }

    #[test]
    fn each_os_error_gets_its_own_advice_naming_the_option() {
        let erofs = io_error(libc::EROFS).to_string();
        assert!(
            erofs.starts_with(
                "cannot write /overlay/netmeter/netmeter.state.tmp: Read-only file system"
            ),
            "{erofs}"
        );
        assert!(erofs.contains("remount it read-write"), "{erofs}");
        assert!(!erofs.contains("free space"), "{erofs}");
        let enospc = io_error(libc::ENOSPC).to_string();
        assert!(enospc.contains("free space on the overlay"), "{enospc}");
        assert!(!enospc.contains("read-only"), "{enospc}");
        let eio = io_error(libc::EIO).to_string();
        assert!(eio.contains("the medium failed"), "{eio}");
        for e in [erofs, enospc, eio, io_error(libc::EACCES).to_string()] {
            assert!(e.contains("option database_directory"), "{e}");
        }
    }

    #[test]
    fn a_full_flash_is_reported_with_the_file_and_advice_to_free_space() {
        let (spool, flash) = (scratch("full-spool"), scratch("full-flash"));
        std::fs::create_dir_all(&flash).unwrap();
        std::os::unix::fs::symlink("/dev/full", flash.join("netmeter.state.tmp")).unwrap();
        let mut store = Store::new(&spool, &flash);
        let mut state = State::new(8, 8);
        refresh(&mut state, T0, 1000);
        let e = store.commit(&mut state, T0).unwrap_err();
        assert!(matches!(&e, StoreError::Io { file, .. } if file.errno() == Some(libc::ENOSPC)));
        let logged = store.status.last_commit_error.clone().unwrap();
        assert!(
            logged.starts_with(&format!(
                "cannot commit to flash (cannot write {}: No space left on device",
                flash.join("netmeter.state.tmp").display()
            )),
            "{logged}"
        );
        assert!(
            logged.contains("counting goes on in RAM") && logged.contains("free space"),
            "{logged}"
        );
        store.spool(&state, T0).unwrap();
        let _ = std::fs::remove_dir_all(&spool);
        let _ = std::fs::remove_dir_all(&flash);
    }
}
