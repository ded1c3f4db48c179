//! The log directory of one batch: per-entry logs, the journal, the locks.
//!
//! ```text
//! <log-dir>/<batch>/
//!     journal          one `build` record per finished entry, appended and fsync'd
//!     lock             held (flock) by the build-list running the batch
//!     make.lock        held by that build-list and, through its standard input, by
//!                      every process of the make it started
//!     make.pid         the process group of the make running, while it runs
//!     problems         REPORT_PROBLEM_LOGFILE of the make running
//!     make.log         the make commands, their exit status, output before the
//!                      first entry
//!     <entry>.log      one log per entry (`<entry>.fetch.log` for --target fetch)
//! ```
//!
//! `make.lock` is how a rerun after a crash tells that the make of the crashed run
//! is still alive: a killed build-list leaves its make running (it is in its own
//! process group), and that make keeps the lock through its standard input until
//! its last process is gone.

use std::collections::HashMap;
use std::fs::{self, File, OpenOptions, TryLockError};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use crate::diag::Diag;
use crate::record::{BuildTarget, Kind};
use crate::{Error, Record};

/// How long a rerun waits for the processes of a crashed run's make to go after
/// killing them.
const ORPHAN_WAIT: Duration = Duration::from_secs(30);

pub const JOURNAL: &str = "journal";
pub const LOCK: &str = "lock";
pub const MAKE_LOCK: &str = "make.lock";
pub const MAKE_PID: &str = "make.pid";
pub const PROBLEMS: &str = "problems";
/// The problem log of the `make clean=all` over the --also entries.
pub const ALSO_PROBLEMS: &str = "problems.also";
pub const MAKE_LOG: &str = "make.log";

/// What identifies a journaled entry.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Key {
    pub fullpkgpath: String,
    pub target: BuildTarget,
    pub arch: String,
}

impl Key {
    pub fn new(fullpkgpath: &str, target: BuildTarget, arch: &str) -> Self {
        Key {
            fullpkgpath: fullpkgpath.into(),
            target,
            arch: arch.into(),
        }
    }

    /// The key of a `build` record; `None` when it lacks a field.
    pub fn of(r: &Record) -> Option<Key> {
        Some(Key::new(
            r.str("fullpkgpath")?,
            r.word("target")?,
            r.str("arch")?,
        ))
    }
}

/// The log file name of an entry: the full pkgpath with each `/` made `@` (which
/// no pkgpath holds, so that two entries never share a log), then `.log`, or
/// `.fetch.log` for the fetch target.
pub fn log_name(fullpkgpath: &str, target: BuildTarget) -> String {
    // `@` is a pkgpath character too (x11/kde/i18n3/sr@Latn): it is written
    // `%40` (no pkgpath holds a `%`), so that no two entries share a log.
    let mut s = fullpkgpath.replace('@', "%40").replace('/', "@");
    if target != BuildTarget::Package {
        s.push('.');
        s.push_str(target.as_str());
    }
    s.push_str(".log");
    s
}

/// Read the journal of a batch directory: the records by key.  Lines that are not
/// records (the torn last line of a crash) are reported and ignored: their entries
/// are built again.
pub fn read_journal(dir: &Path, diag: &Diag) -> Result<HashMap<Key, Record>, Error> {
    let path = dir.join(JOURNAL);
    let text = match fs::read(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(HashMap::new()),
        Err(e) => return Err(Error::io(path, e)),
    };
    let mut done = HashMap::new();
    for (i, line) in text.split(|&b| b == b'\n').enumerate() {
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let rec = std::str::from_utf8(line)
            .map_err(|e| e.to_string())
            .and_then(|l| Record::parse(l).map_err(|e| e.to_string()));
        match rec {
            Ok(r) if r.is(Kind::Build) => match Key::of(&r) {
                Some(k) => {
                    done.insert(k, r);
                }
                None => diag.warn(format_args!(
                    "{}:{}: build record without fullpkgpath, a known target or arch: ignored",
                    path.display(),
                    i + 1
                )),
            },
            Ok(_) => {}
            Err(e) => diag.warn(format_args!(
                "{}:{}: {e}: ignored, the entry is built again",
                path.display(),
                i + 1
            )),
        }
    }
    Ok(done)
}

/// The open log directory of the running batch, locked.
pub struct Batch {
    pub dir: PathBuf,
    /// Held while this process runs the batch.
    _lock: File,
    /// Held by this process, and by every make it starts (as its stdin).
    make_lock: File,
    journal: File,
    pub done: HashMap<Key, Record>,
}

fn open_rw(path: &Path) -> Result<File, Error> {
    crate::error::open_lock_file(path)
}

/// The outcome of opening a batch.
pub enum Opened {
    Ready(Batch),
    /// The processes of an earlier make still hold the batch; reported.
    Busy,
}

impl Batch {
    /// Make (or reopen) the log directory of batch `id` under `root`, lock it,
    /// make sure no make of an earlier run of the batch is still at work (killing
    /// it), and read its journal.
    pub fn open(root: &Path, id: &str, diag: &Diag) -> Result<Opened, Error> {
        let dir = root.join(id);
        fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;

        let lock = open_rw(&dir.join(LOCK))?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                diag.warn(format_args!(
                    "batch {id}: another build-list is running it; waiting for it to finish"
                ));
                lock.lock().map_err(|e| Error::io(dir.join(LOCK), e))?;
            }
            Err(TryLockError::Error(e)) => return Err(Error::io(dir.join(LOCK), e)),
        }

        let make_lock = open_rw(&dir.join(MAKE_LOCK))?;
        // Empty: it is make's standard input.
        make_lock
            .set_len(0)
            .map_err(|e| Error::io(dir.join(MAKE_LOCK), e))?;
        match make_lock.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                if !take_from_orphan(&dir, &make_lock, id, diag)? {
                    return Ok(Opened::Busy);
                }
            }
            Err(TryLockError::Error(e)) => return Err(Error::io(dir.join(MAKE_LOCK), e)),
        }
        let _ = fs::remove_file(dir.join(MAKE_PID));

        let done = read_journal(&dir, diag)?;
        let jpath = dir.join(JOURNAL);
        let mut journal = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(&jpath)
            .map_err(|e| Error::io(&jpath, e))?;
        // A crash may have torn the last line: end it, so that the next record
        // starts on a line of its own.
        let len = journal.metadata().map_err(|e| Error::io(&jpath, e))?.len();
        if len > 0 {
            let mut last = [0u8; 1];
            journal
                .seek(SeekFrom::Start(len - 1))
                .and_then(|_| journal.read_exact(&mut last))
                .map_err(|e| Error::io(&jpath, e))?;
            if last[0] != b'\n' {
                journal
                    .write_all(b"\n")
                    .and_then(|_| journal.sync_data())
                    .map_err(|e| Error::io(&jpath, e))?;
            }
        } else {
            // The new journal's directory entry, for the age of the batch.
            crate::atomic::sync_dir(&dir);
        }
        Ok(Opened::Ready(Batch {
            dir,
            _lock: lock,
            make_lock,
            journal,
            done,
        }))
    }

    /// Append a record to the journal and wait until it is on disk.
    pub fn journal(&mut self, r: &Record) -> io::Result<()> {
        let mut line = r.to_line();
        line.push('\n');
        self.journal.write_all(line.as_bytes())?;
        self.journal.sync_data()
    }

    /// A new handle on make.lock, to be make's standard input: every process of
    /// that make holds the lock while it lives.
    pub fn make_stdin(&self) -> io::Result<File> {
        self.make_lock.try_clone()
    }

    /// Remember the process group of the make running (for a rerun after a crash).
    pub fn set_make_pid(&self, pid: u32) -> io::Result<()> {
        // The batch is ours (its lock): a temporary file a crash left goes.
        let tmp = self.dir.join(format!("{MAKE_PID}.tmp"));
        let _ = fs::remove_file(&tmp);
        crate::atomic::write_via(
            &tmp,
            &self.dir.join(MAKE_PID),
            format!("{pid}\n").as_bytes(),
        )
    }

    pub fn clear_make_pid(&self) {
        let _ = fs::remove_file(self.dir.join(MAKE_PID));
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }
}

/// make.lock is held although no build-list runs the batch: a crashed run's make
/// is still at work.  Kill its process group (its id is in make.pid) and wait for
/// the lock.  False when the lock could not be had (reported).
fn take_from_orphan(dir: &Path, make_lock: &File, id: &str, diag: &Diag) -> Result<bool, Error> {
    let pgid = fs::read_to_string(dir.join(MAKE_PID))
        .ok()
        .and_then(|s| s.trim().parse::<u32>().ok())
        .filter(|&p| p > 1);
    match pgid {
        Some(p) => {
            diag.warn(format_args!(
                "batch {id}: the make of an earlier run is still at work (process group {p}): killing it"
            ));
            // The lock being held means a process of that make lives, so the
            // group id is still its own.
            crate::proc::signal_group(p, crate::proc::Sig::Kill);
        }
        None => diag.warn(format_args!(
            "batch {id}: processes of an earlier run's make still hold {}; waiting for them",
            dir.join(MAKE_LOCK).display()
        )),
    }
    let start = Instant::now();
    loop {
        match make_lock.try_lock() {
            Ok(()) => return Ok(true),
            Err(TryLockError::WouldBlock) => {}
            Err(TryLockError::Error(e)) => return Err(Error::io(dir.join(MAKE_LOCK), e)),
        }
        if start.elapsed() > ORPHAN_WAIT {
            diag.error(format_args!(
                "batch {id}: processes of an earlier run's make still hold {} after {}s; try again later",
                dir.join(MAKE_LOCK).display(),
                ORPHAN_WAIT.as_secs()
            ));
            return Ok(false);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// How long each entry took to build (`built` records) in the journals of the
/// last `n` batches under `root` but `current`, the newest first: the time
/// left a terminal is shown.  Unreadable journals and lines are passed over.
pub fn earlier_seconds(root: &Path, current: &str, n: usize) -> HashMap<String, f64> {
    let mut dirs: Vec<(SystemTime, PathBuf)> = fs::read_dir(root)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.file_name().to_str() != Some(current))
        .filter_map(|e| {
            let j = e.path().join(JOURNAL);
            let t = fs::metadata(&j).and_then(|m| m.modified()).ok()?;
            Some((t, j))
        })
        .collect();
    dirs.sort_by_key(|d| std::cmp::Reverse(d.0));
    let mut seconds = HashMap::new();
    for (_, j) in dirs.into_iter().take(n) {
        let Ok(text) = fs::read_to_string(&j) else {
            continue;
        };
        for r in text.lines().filter_map(|l| Record::parse(l).ok()) {
            if r.is(Kind::Build) && r.word("status") == Some(crate::record::BuildStatus::Built) {
                if let (Some(p), Some(s)) = (
                    r.str("fullpkgpath"),
                    r.get("seconds").and_then(|v| v.as_f64()),
                ) {
                    seconds.entry(p.to_string()).or_insert(s);
                }
            }
        }
    }
    seconds
}

/// `tar -czf <root>/<name>.tar.gz -C <root> <name>`, through a temporary
/// name: an archive that is there is whole.
fn archive(root: &Path, name: &std::ffi::OsStr) -> Result<(), String> {
    let mut dest = name.to_os_string();
    dest.push(".tar.gz");
    let dest = root.join(dest);
    let mut part = dest.clone().into_os_string();
    part.push(".part");
    let part = PathBuf::from(part);
    let out = std::process::Command::new("tar")
        .arg("-czf")
        .arg(&part)
        .arg("-C")
        .arg(root)
        .arg(name)
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(|e| format!("tar: {e}"))?;
    if !out.status.success() {
        let _ = fs::remove_file(&part);
        return Err(format!(
            "tar: {}: {}",
            out.status,
            crate::tail::short(&String::from_utf8_lossy(&out.stderr), 2)
        ));
    }
    fs::rename(&part, &dest).map_err(|e| format!("{}: {e}", dest.display()))?;
    crate::atomic::sync_dir(root);
    Ok(())
}

/// Remove the log directories under `root` of batches whose journal was last
/// written more than `days` days ago; never `current`, never one whose build-list
/// still runs, never a directory without a journal and a lock file (not ours).
pub fn remove_old(root: &Path, days: u32, current: &str, diag: &Diag) {
    let Ok(rd) = fs::read_dir(root) else {
        return;
    };
    for e in rd.flatten() {
        if e.file_name().to_str() == Some(current) {
            continue;
        }
        let dir = e.path();
        match fs::symlink_metadata(&dir) {
            Ok(m) if m.is_dir() => {}
            _ => continue,
        }
        let journal = match fs::symlink_metadata(dir.join(JOURNAL)) {
            Ok(m) if m.is_file() => m,
            _ => continue,
        };
        if !journal
            .modified()
            .is_ok_and(|t| crate::time::older_than(t, days))
        {
            continue;
        }
        match fs::symlink_metadata(dir.join(LOCK)) {
            Ok(m) if m.is_file() => {}
            _ => continue,
        }
        let Ok(lock) = OpenOptions::new().read(true).open(dir.join(LOCK)) else {
            continue;
        };
        if lock.try_lock().is_err() {
            continue;
        }
        // Archived first, as the -stable scripts do: <root>/<batch>.tar.gz.
        if let Err(err) = archive(root, &e.file_name()) {
            diag.warn(format_args!(
                "{}: old batch logs not archived ({err}): kept",
                dir.display()
            ));
            continue;
        }
        if let Err(err) = fs::remove_dir_all(&dir) {
            diag.warn(format_args!(
                "{}: cannot remove old batch logs: {err}",
                dir.display()
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_names_never_collide() {
        assert_eq!(log_name("net/curl", BuildTarget::Package), "net@curl.log");
        assert_eq!(
            log_name("editors/vim,gtk2,-lang", BuildTarget::Package),
            "editors@vim,gtk2,-lang.log"
        );
        assert_eq!(
            log_name("net/curl", BuildTarget::Fetch),
            "net@curl.fetch.log"
        );
        assert_ne!(
            log_name("devel/sdl_image", BuildTarget::Package),
            log_name("devel/sdl/image", BuildTarget::Package)
        );
        assert_eq!(
            log_name("x11/kde/i18n3/sr@Latn", BuildTarget::Package),
            "x11@kde@i18n3@sr%40Latn.log"
        );
        assert_ne!(
            log_name("x11/sr@Latn", BuildTarget::Package),
            log_name("x11/sr/Latn", BuildTarget::Package)
        );
    }

    #[test]
    fn journal_survives_a_torn_line() {
        let t = tempfile::tempdir().unwrap();
        let diag = Diag::new("test");
        let dir = t.path().join("b1");
        fs::create_dir_all(&dir).unwrap();
        fs::write(
            dir.join(JOURNAL),
            "{\"kind\":\"build\",\"v\":1,\"fullpkgpath\":\"net/curl\",\"target\":\"package\",\"status\":\"built\",\"arch\":\"amd64\"}\n{\"kind\":\"build\",\"v\":1,\"fullpk",
        )
        .unwrap();
        let Opened::Ready(mut b) = Batch::open(t.path(), "b1", &diag).unwrap() else {
            panic!("busy")
        };
        assert_eq!(b.done.len(), 1);
        let mut r = Record::new(Kind::Build);
        r.set("fullpkgpath", "net/tor");
        r.set("target", BuildTarget::Package);
        r.set("arch", "amd64");
        b.journal(&r).unwrap();
        drop(b);
        let done = read_journal(&dir, &diag).unwrap();
        assert_eq!(done.len(), 2);
        assert!(done.contains_key(&Key::new("net/tor", BuildTarget::Package, "amd64")));
    }

    #[test]
    fn old_batches_go_young_and_foreign_ones_stay() {
        let t = tempfile::tempdir().unwrap();
        let diag = Diag::new("test");
        let old = SystemTime::now() - Duration::from_secs(30 * 86_400);
        for b in ["old", "young", "current"] {
            fs::create_dir_all(t.path().join(b)).unwrap();
            fs::write(t.path().join(b).join(JOURNAL), "").unwrap();
            fs::write(t.path().join(b).join(LOCK), "").unwrap();
        }
        fs::create_dir_all(t.path().join("foreign")).unwrap();
        fs::write(t.path().join("foreign/journal"), "").unwrap();
        for b in ["old", "current", "foreign"] {
            File::options()
                .write(true)
                .open(t.path().join(b).join(JOURNAL))
                .unwrap()
                .set_modified(old)
                .unwrap();
        }
        remove_old(t.path(), 21, "current", &diag);
        let mut left: Vec<String> = fs::read_dir(t.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        // The old one's logs are archived beside.
        assert_eq!(left, ["current", "foreign", "old.tar.gz", "young"]);
    }
}
