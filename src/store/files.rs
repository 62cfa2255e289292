//! State files on disk: atomic saves that keep the previous generation, and
//! a load that takes the newest valid file from any directory (the tmpfs
//! spool and the flash copy) and moves bad ones aside.
//!
//! `save` writes `name.tmp`, fsyncs, renames `name` to `name.prev` and the
//! new file into place, and fsyncs the directory (created if missing; files
//! 0600). Reads are bounded and refuse anything but regular files; a bad
//! file is renamed `<file>.bad-<unix seconds>`, never deleted. Failures are
//! `FileError`s with the operation, the path and the OS error, from which
//! `persist::StoreError` gives its advice.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use super::format::{self, Decoded, FileKind};

/// A file operation the system refused: which, on what, and the OS error.
#[derive(Debug)]
pub struct FileError {
    pub op: Op,
    pub path: PathBuf,
    pub source: io::Error,
}

/// What was being done when the system refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    CreateDirectory,
    Write,
    Rename,
    Append,
    Sync,
}

impl FileError {
    /// The OS error number, for advice that depends on it.
    pub fn errno(&self) -> Option<i32> {
        self.source.raw_os_error()
    }
}

impl std::fmt::Display for FileError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let op = match self.op {
            Op::CreateDirectory => "create",
            Op::Write => "write",
            Op::Rename => "rename",
            Op::Append => "append to",
            Op::Sync => "sync",
        };
        write!(f, "cannot {op} {}: {}", self.path.display(), self.source)
    }
}

/// Files above this are not read at all: a 64 MB router must not try.
const MAX_FILE_LEN: u64 = format::MAX_PAYLOAD_LEN as u64 + 64;

/// Writes `dir/name` so that a crash or power cut at any moment leaves
/// either the old or the new file complete: `name.tmp` is written and
/// synced, the old `name` becomes `name.prev`, `name.tmp` becomes `name`,
/// and the directory is synced. Creates `dir` (the tmpfs spool is empty
/// after a boot). On an error before the renames (ENOSPC, a read-only
/// filesystem) `name.tmp` is removed and the old files stay as they were.
/// Errors name the path and the operation.
pub fn save(dir: &Path, name: &str, bytes: &[u8]) -> Result<(), FileError> {
    let path = dir.join(name);
    let tmp = sibling(&path, ".tmp");
    let prev = sibling(&path, ".prev");
    fs::create_dir_all(dir).map_err(|e| at(Op::CreateDirectory, dir, e))?;
    if let Err(e) = write_synced(&tmp, bytes) {
        let _ = fs::remove_file(&tmp);
        return Err(at(Op::Write, &tmp, e));
    }
    let had_old = match fs::rename(&path, &prev) {
        Ok(()) => true,
        Err(e) if e.kind() == io::ErrorKind::NotFound => false,
        Err(e) => {
            let _ = fs::remove_file(&tmp);
            return Err(at(Op::Rename, &path, e));
        }
    };
    if let Err(e) = fs::rename(&tmp, &path) {
        if had_old {
            let _ = fs::rename(&prev, &path);
        }
        let _ = fs::remove_file(&tmp);
        return Err(at(Op::Rename, &path, e));
    }
    // Without it the renames may not survive a power cut; the files are
    // already in place, so there is nothing to undo.
    sync_directory(dir)
}

fn sync_directory(dir: &Path) -> Result<(), FileError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| at(Op::Sync, dir, e))
}

/// What `load` found.
#[derive(Debug)]
pub struct LoadOutcome<T> {
    /// The newest valid file, if any.
    pub loaded: Option<(PathBuf, Decoded<T>)>,
    /// One line per file that could not be used, for the log.
    pub problems: Vec<String>,
}

/// Looks at `name` and `name.prev` in every directory and takes the valid
/// one with the highest sequence (on a tie, the earlier directory and
/// `name` before `name.prev`). Every invalid file is renamed to
/// `<file>.bad-<unix seconds>`: never deleted (it is the user's data, and a
/// file from a newer netmeter is still good to that netmeter), and out of
/// the way of the next save's rotation. Missing directories and files are
/// a first start, not a problem.
pub fn load<T: format::Payload>(dirs: &[&Path], name: &str, kind: FileKind) -> LoadOutcome<T> {
    let now = crate::clock::unix_now();
    let mut loaded: Option<(PathBuf, Decoded<T>)> = None;
    // (file, what is wrong with it, where it went)
    let mut bad: Vec<(PathBuf, String, String)> = Vec::new();
    for dir in dirs {
        let path = dir.join(name);
        for candidate in [sibling(&path, ""), sibling(&path, ".prev")] {
            let bytes = match read_bounded(&candidate) {
                Ok(Some(bytes)) => bytes,
                Ok(None) => continue,
                Err(e) => {
                    // Unreadable is not invalid: leave it where it is.
                    bad.push((
                        candidate,
                        format!("cannot read: {e}"),
                        "left in place".into(),
                    ));
                    continue;
                }
            };
            match format::decode::<T>(&bytes, kind) {
                Ok(decoded) => {
                    if loaded
                        .as_ref()
                        .is_none_or(|(_, best)| decoded.sequence > best.sequence)
                    {
                        loaded = Some((candidate, decoded));
                    }
                }
                Err(e) => {
                    let moved = move_aside(&candidate, now);
                    bad.push((candidate, e.to_string(), moved));
                }
            }
        }
    }
    let using = match &loaded {
        Some((path, d)) => format!(
            "using {} (saved {}, sequence {})",
            path.display(),
            utc(d.saved_unix),
            d.sequence
        ),
        None => "no valid state left: starting from zero".into(),
    };
    let problems = bad
        .into_iter()
        .map(|(path, what, moved)| format!("{}: {what}; {moved}; {using}", path.display()))
        .collect();
    LoadOutcome { loaded, problems }
}

/// Appends `bytes` to `dir/name` and syncs it (and the directory, when the
/// file is new). An append a crash cuts short leaves a torn last record,
/// which readers detect by its checksum and length.
pub fn append(dir: &Path, name: &str, bytes: &[u8]) -> Result<(), FileError> {
    let path = dir.join(name);
    fs::create_dir_all(dir).map_err(|e| at(Op::CreateDirectory, dir, e))?;
    let existed = path.exists();
    let mut file = OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o600)
        .open(&path)
        .map_err(|e| at(Op::Append, &path, e))?;
    file.write_all(bytes)
        .and_then(|()| file.sync_all())
        .map_err(|e| at(Op::Append, &path, e))?;
    if !existed {
        sync_directory(dir)?;
    }
    Ok(())
}

/// Renames `dir/name` to `dir/name.prev` (replacing it), if it exists.
pub fn rotate(dir: &Path, name: &str) -> Result<(), FileError> {
    let path = dir.join(name);
    match fs::rename(&path, sibling(&path, ".prev")) {
        Ok(()) => sync_directory(dir),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(at(Op::Rename, &path, e)),
    }
}

/// Keeps a copy of a damaged file as `<file>.bad-<now>` and says where,
/// for files netmeter goes on using (the journal's valid start).
pub fn copy_aside(path: &Path) -> String {
    let target = free_name(&sibling(
        path,
        &format!(".bad-{}", crate::clock::unix_now()),
    ));
    match fs::copy(path, &target) {
        Ok(_) => format!("a copy is in {}", target.display()),
        Err(e) => format!("could not keep a copy ({e})"),
    }
}

fn write_synced(path: &Path, bytes: &[u8]) -> io::Result<()> {
    // 0600: the state lists the household's devices.
    let mut file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

/// The file's bytes; `None` when it does not exist. Reads at most
/// `MAX_FILE_LEN` + 1 bytes whatever the file claims (a device or a file
/// still growing must not exhaust memory), and refuses what is not a
/// regular file.
pub fn read_bounded(path: &Path) -> io::Result<Option<Vec<u8>>> {
    use std::io::Read;
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    if !file.metadata()?.is_file() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "not a regular file",
        ));
    }
    let mut bytes = Vec::new();
    file.take(MAX_FILE_LEN + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > MAX_FILE_LEN {
        // Reported through the format's own check.
        return Ok(Some(too_large_marker()));
    }
    Ok(Some(bytes))
}

/// A header that `decode` refuses as too large, standing in for a file too
/// large to read.
fn too_large_marker() -> Vec<u8> {
    let mut bytes = Vec::with_capacity(28);
    bytes.extend_from_slice(&format::MAGIC);
    bytes.extend_from_slice(&format::CURRENT_VERSION.to_le_bytes());
    bytes.extend_from_slice(&[0; 20]);
    bytes.extend_from_slice(&u32::MAX.to_le_bytes());
    bytes
}

/// Renames a bad file to `<file>.bad-<now>` (or `.bad-<now>-<n>` if taken)
/// and says where it went.
pub fn move_aside(path: &Path, now: u64) -> String {
    let target = free_name(&sibling(path, &format!(".bad-{now}")));
    match fs::rename(path, &target) {
        Ok(()) => format!("moved to {}", target.display()),
        Err(e) => format!("could not move it aside ({e}); left in place"),
    }
}

/// `base`, or `base-<n>` for the first n not taken.
fn free_name(base: &Path) -> PathBuf {
    let mut target = base.to_path_buf();
    let mut n = 0u32;
    while fs::symlink_metadata(&target).is_ok() && n < u32::MAX {
        n += 1;
        target = sibling(base, &format!("-{n}"));
    }
    target
}

pub fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

fn at(op: Op, path: &Path, source: io::Error) -> FileError {
    FileError {
        op,
        path: path.to_path_buf(),
        source,
    }
}

/// `2026-11-19 08:53:20 UTC`: routers log in UTC and have no tz database.
pub fn utc(unix: u64) -> String {
    let secs = unix % 86_400;
    let (year, month, day) = super::calendar::civil_from_days((unix / 86_400) as i64);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02} UTC",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::format::encode;
    use crate::store::format::tests::{Sample, sample};

    /// A fresh directory under the system temp dir, removed on drop.
    struct TempDir(PathBuf);

    impl TempDir {
        fn new(tag: &str) -> Self {
            use std::sync::atomic::{AtomicUsize, Ordering};
            static NEXT: AtomicUsize = AtomicUsize::new(0);
            let n = NEXT.fetch_add(1, Ordering::Relaxed);
            let path = std::env::temp_dir()
                .join(format!("netmeter-store-{tag}-{}-{n}", std::process::id()));
            let _ = fs::remove_dir_all(&path);
            fs::create_dir_all(&path).unwrap();
            Self(path)
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    fn file(sequence: u64, bytes: u64) -> Vec<u8> {
        encode(FileKind::Snapshot, sequence, 1_795_000_000, &sample(bytes)).unwrap()
    }

    fn load_sample(dirs: &[&Path]) -> LoadOutcome<Sample> {
        load(dirs, "state", FileKind::Snapshot)
    }

    fn names(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        names
    }

    fn bad_files(dir: &Path) -> Vec<PathBuf> {
        fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.to_string_lossy().contains(".bad-"))
            .collect()
    }

    #[test]
    fn saving_twice_keeps_the_previous_generation() {
        let d = TempDir::new("twice");
        save(&d.0, "state", &file(1, 100)).unwrap();
        save(&d.0, "state", &file(2, 200)).unwrap();
        assert_eq!(names(&d.0), ["state", "state.prev"]);
        assert_eq!(fs::read(d.0.join("state")).unwrap(), file(2, 200));
        assert_eq!(fs::read(d.0.join("state.prev")).unwrap(), file(1, 100));
        let out = load_sample(&[&d.0]);
        let (path, decoded) = out.loaded.unwrap();
        assert_eq!((path, decoded.sequence), (d.0.join("state"), 2));
        assert!(out.problems.is_empty(), "{:?}", out.problems);
    }

    #[test]
    fn a_save_creates_a_missing_directory() {
        let d = TempDir::new("mkdir");
        let spool = d.0.join("var/lib/netmeter");
        save(&spool, "state", &file(1, 1)).unwrap();
        assert_eq!(names(&spool), ["state"]);
    }

    #[test]
    fn missing_directories_and_files_are_a_quiet_first_start() {
        let d = TempDir::new("first");
        let missing = d.0.join("nowhere");
        let out = load_sample(&[&d.0, &missing]);
        assert!(out.loaded.is_none());
        assert!(out.problems.is_empty(), "{:?}", out.problems);
    }

    #[test]
    fn the_newest_sequence_wins_across_directories_either_way() {
        let spool = TempDir::new("spool");
        let flash = TempDir::new("flash");
        save(&flash.0, "state", &file(5, 500)).unwrap();
        save(&spool.0, "state", &file(9, 900)).unwrap();
        let (path, d) = load_sample(&[&spool.0, &flash.0]).loaded.unwrap();
        assert_eq!((path, d.payload.bytes), (spool.0.join("state"), 900));
        let (path, _) = load_sample(&[&flash.0, &spool.0]).loaded.unwrap();
        assert_eq!(path, spool.0.join("state"));

        // A reboot emptied the spool; flash then moved on past an old spool.
        save(&flash.0, "state", &file(12, 1200)).unwrap();
        let (path, d) = load_sample(&[&spool.0, &flash.0]).loaded.unwrap();
        assert_eq!((path, d.payload.bytes), (flash.0.join("state"), 1200));
    }

    #[test]
    fn a_file_cut_at_every_offset_falls_back_to_the_previous_generation() {
        let d = TempDir::new("cut");
        let newest = file(2, 200);
        for end in 0..newest.len() {
            for f in fs::read_dir(&d.0).unwrap() {
                fs::remove_file(f.unwrap().path()).unwrap();
            }
            save(&d.0, "state", &file(1, 100)).unwrap();
            save(&d.0, "state", &newest).unwrap();
            fs::write(d.0.join("state"), &newest[..end]).unwrap();
            let out = load_sample(&[&d.0]);
            let (path, decoded) = out.loaded.expect("the previous generation");
            assert_eq!(path, d.0.join("state.prev"), "cut at {end}");
            assert_eq!(decoded.payload.bytes, 100);
            assert_eq!(out.problems.len(), 1, "cut at {end}: {:?}", out.problems);
            let bad = bad_files(&d.0);
            assert_eq!(bad.len(), 1, "cut at {end}");
            assert_eq!(fs::read(&bad[0]).unwrap(), &newest[..end]);
        }
    }

    #[test]
    fn every_single_bit_flip_falls_back_to_the_previous_generation() {
        let d = TempDir::new("flip");
        let (old, newest) = (file(1, 100), file(2, 200));
        fs::write(d.0.join("state.prev"), &old).unwrap();
        for bit in 0..newest.len() * 8 {
            let mut flipped = newest.clone();
            flipped[bit / 8] ^= 1 << (bit % 8);
            fs::write(d.0.join("state"), &flipped).unwrap();
            let out = load_sample(&[&d.0]);
            let (path, decoded) = out.loaded.expect("the previous generation");
            assert_eq!(path, d.0.join("state.prev"), "bit {bit}");
            assert_eq!(decoded.sequence, 1);
            assert_eq!(out.problems.len(), 1, "bit {bit}");
            // Moved aside, not deleted; cleared so the names stay few.
            let bad = bad_files(&d.0);
            assert_eq!(bad.len(), 1, "bit {bit}");
            assert_eq!(fs::read(&bad[0]).unwrap(), flipped);
            fs::remove_file(&bad[0]).unwrap();
        }
    }

    #[test]
    fn a_bad_file_is_moved_aside_with_one_clear_line() {
        let flash = TempDir::new("clear-flash");
        let spool = TempDir::new("clear-spool");
        save(&spool.0, "state", &file(3, 300)).unwrap();
        let mut damaged = file(4, 400);
        damaged[40] ^= 1;
        fs::write(flash.0.join("state"), &damaged).unwrap();
        let out = load_sample(&[&flash.0, &spool.0]);
        assert_eq!(out.loaded.unwrap().1.sequence, 3);
        let bad = bad_files(&flash.0);
        assert_eq!(bad.len(), 1);
        assert_eq!(fs::read(&bad[0]).unwrap(), damaged);
        let line = &out.problems[0];
        let expected_start = format!(
            "{}: damaged (checksum mismatch: stored ",
            flash.0.join("state").display()
        );
        assert!(line.starts_with(&expected_start), "{line}");
        let expected_end = format!(
            "; moved to {}; using {} (saved 2026-11-18 11:06:40 UTC, sequence 3)",
            bad[0].display(),
            spool.0.join("state").display()
        );
        assert!(line.ends_with(&expected_end), "{line}");
    }

    #[test]
    fn empty_foreign_and_newer_files_are_reported_and_kept() {
        let d = TempDir::new("odd");
        let mut newer = file(8, 800);
        newer[4..6].copy_from_slice(&4u16.to_le_bytes());
        let end = newer.len() - 4;
        let crc = crate::store::crc32::hash(&newer[..end]);
        newer[end..].copy_from_slice(&crc.to_le_bytes());
        for (content, says) in [
            (Vec::new(), "empty file"),
            (
                b"hello, I am a text file\n".to_vec(),
                "not a netmeter state file",
            ),
            (
                newer,
                "written by a newer netmeter (format 4, this one reads up to 3)",
            ),
        ] {
            fs::write(d.0.join("state"), &content).unwrap();
            let out = load_sample(&[&d.0]);
            assert!(out.loaded.is_none());
            assert!(out.problems[0].contains(says), "{:?}", out.problems);
            assert!(out.problems[0].ends_with("no valid state left: starting from zero"));
            assert!(!d.0.join("state").exists());
        }
        // Three moved aside within a second or so, none overwritten.
        assert_eq!(bad_files(&d.0).len(), 3);
    }

    #[test]
    fn a_save_that_cannot_write_leaves_the_existing_files_untouched() {
        let d = TempDir::new("readonly");
        save(&d.0, "state", &file(1, 100)).unwrap();
        save(&d.0, "state", &file(2, 200)).unwrap();
        let blocker = d.0.join("not-a-dir");
        fs::write(&blocker, b"a regular file").unwrap();

        let e = save(&blocker.join("sub"), "state", &file(3, 300)).unwrap_err();
        assert!(e.to_string().contains("not-a-dir"), "{e}");

        // The target's tmp name taken by a directory: the write itself fails.
        fs::create_dir(d.0.join("state.tmp")).unwrap();
        let e = save(&d.0, "state", &file(3, 300)).unwrap_err();
        assert!(e.to_string().contains("state.tmp"), "{e}");
        fs::remove_dir(d.0.join("state.tmp")).unwrap();

        assert_eq!(names(&d.0), ["not-a-dir", "state", "state.prev"]);
        assert_eq!(fs::read(d.0.join("state")).unwrap(), file(2, 200));
        assert_eq!(fs::read(d.0.join("state.prev")).unwrap(), file(1, 100));
    }

    #[test]
    fn utc_dates_are_civil_dates() {
        assert_eq!(utc(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(utc(951_782_400), "2000-02-29 00:00:00 UTC");
        assert_eq!(utc(1_795_000_000), "2026-11-18 11:06:40 UTC");
    }
}
