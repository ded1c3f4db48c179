//! The spool directory: its layout and locks, and the subcommands that only look
//! at it or drop a file into it (`submit`, `wait`, `status`).
//!
//! A batch moves new/ → cur/ → done/ or failed/, each step making the next file
//! before the last one goes, so that at every moment it is in at least one of
//! them: a look through the four in that order never misses it.

use std::fs::{self, DirBuilder, File, TryLockError};
use std::io::{self, IsTerminal, Read, Write};
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::diag::{Diag, Exit};
use crate::host::check_batch;
use crate::jsonl::Output;
use crate::pkgpath::PkgPath;
use crate::record::{Kind, Record};
use crate::Error;

use super::{RetryArgs, StatusArgs, SubmitArgs, WaitArgs};

/// The lock held by the `watch` or `run-once` serving the spool.
pub const WATCH_LOCK: &str = "watch.lock";
/// The lock `submit` holds while it looks for the batch and drops it.
pub const SUBMIT_LOCK: &str = "submit.lock";

/// How long `watch` tries for the spool's lock before it says another one holds
/// it (a `status` holds it for a moment).
const LOCK_TRIES: Duration = Duration::from_secs(2);
/// The file that asks the chain of a spool to drain.
pub const DRAIN_FILE: &str = "drain";

/// How often `wait` looks when no event came.
const WAIT_POLL: Duration = Duration::from_secs(1);

/// Where a batch is: a directory of the spool, and the `state` of its `spool`
/// record.
pub use crate::record::SpoolState as State;

impl State {
    /// The order a batch goes through them.
    pub const LIFE: [State; 4] = [State::New, State::Cur, State::Done, State::Failed];
}

/// An open spool directory (its subdirectories made).
#[derive(Debug, Clone)]
pub struct Spool {
    root: PathBuf,
}

fn mkdir(p: &Path) -> Result<(), Error> {
    DirBuilder::new()
        .recursive(true)
        .mode(0o755)
        .create(p)
        .map_err(|e| Error::io(p, e))
}

impl Spool {
    /// Open the spool at `dir`, making it and its subdirectories when missing.
    pub fn open(dir: &Path) -> Result<Spool, Error> {
        if dir.as_os_str().is_empty() {
            return Err(Error::Usage("--spool: an empty path".into()));
        }
        let root = std::path::absolute(dir).map_err(|e| Error::io(dir, e))?;
        let s = Spool { root };
        mkdir(&s.root)?;
        for st in [
            State::Tmp,
            State::New,
            State::Cur,
            State::Done,
            State::Failed,
        ] {
            mkdir(&s.dir(st))?;
        }
        mkdir(&s.plan_dir())?;
        Ok(s)
    }

    /// A spool that is there (`status`, `wait`): none is made; a path that is
    /// not one is an error naming it.
    pub fn existing(dir: &Path) -> Result<Spool, Error> {
        if dir.as_os_str().is_empty() {
            return Err(Error::Usage("--spool: an empty path".into()));
        }
        let root = std::path::absolute(dir).map_err(|e| Error::io(dir, e))?;
        let s = Spool { root };
        // new/ tells a spool; the rest of it is made when missing.
        if !s.dir(State::New).is_dir() {
            return Err(Error::Usage(format!(
                "--spool {}: not a spool (no new/ in it): watch, run-once or submit makes one",
                dir.display()
            )));
        }
        for st in State::LIFE {
            mkdir(&s.dir(st))?;
        }
        Ok(s)
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The file that asks the spool's chain to drain (see `build-trigger
    /// drain`): build-list stops once the port at work is done.
    pub fn drain_file(&self) -> PathBuf {
        self.root.join(DRAIN_FILE)
    }

    /// `cur/<id>.progress`: the entry build-list is at in batch `id`.
    pub fn progress_file(&self, id: &str) -> PathBuf {
        self.dir(State::Cur).join(format!("{id}.progress"))
    }

    pub fn draining(&self) -> bool {
        self.drain_file().exists()
    }

    /// Ask for a drain.
    pub fn ask_drain(&self) -> Result<(), Error> {
        let p = self.drain_file();
        crate::atomic::write_atomic(
            &p,
            format!("{}\n", crate::time::utc_stamp(SystemTime::now())).as_bytes(),
        )
        .map_err(|e| Error::io(&p, e))
    }

    pub fn dir(&self, st: State) -> PathBuf {
        self.root.join(st.as_str())
    }

    /// `<state>/<id>.jsonl`.
    pub fn file(&self, st: State, id: &str) -> PathBuf {
        self.dir(st).join(format!("{id}.jsonl"))
    }

    /// Where batch `id` is, looking in the order it moves.
    pub fn state_of(&self, id: &str) -> Option<State> {
        State::LIFE
            .into_iter()
            .find(|&st| fs::symlink_metadata(self.file(st, id)).is_ok())
    }

    /// The names in a directory that are no batch: not `<id>.jsonl` with a
    /// valid id, or not a regular file.  They are never run; `status` and the
    /// watcher say so.
    pub fn strays(&self, st: State) -> Vec<String> {
        let dir = self.dir(st);
        let mut v: Vec<String> = fs::read_dir(&dir)
            .into_iter()
            .flatten()
            .flatten()
            .filter(|e| {
                let name = e.file_name();
                let ok = name
                    .to_str()
                    .and_then(|n| n.strip_suffix(".jsonl"))
                    .is_some_and(|id| check_batch(id).is_ok())
                    && e.file_type().is_ok_and(|t| t.is_file());
                !ok
            })
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    /// The batches of a directory: the `<id>.jsonl` files with a valid id, by
    /// modification time (the order they were submitted), then by name.
    pub fn batches(&self, st: State) -> Result<Vec<(String, SystemTime)>, Error> {
        let dir = self.dir(st);
        let rd = fs::read_dir(&dir).map_err(|e| Error::io(&dir, e))?;
        let mut v = Vec::new();
        for e in rd {
            let e = e.map_err(|e| Error::io(&dir, e))?;
            let name = e.file_name();
            let Some(id) = name.to_str().and_then(|n| n.strip_suffix(".jsonl")) else {
                continue;
            };
            if check_batch(id).is_err() {
                continue;
            }
            // Gone since the listing (claimed, finished): not there.
            let Ok(m) = e.metadata() else { continue };
            if !m.is_file() {
                continue;
            }
            v.push((id.to_string(), m.modified().unwrap_or(UNIX_EPOCH)));
        }
        v.sort_by(|a, b| a.1.cmp(&b.1).then_with(|| a.0.cmp(&b.0)));
        Ok(v)
    }

    /// Remove the batches of done/ and failed/ (`<id>.jsonl`, `<id>.log`)
    /// finished more than `days` days ago; how many.
    pub fn prune(&self, days: u32) -> Result<usize, Error> {
        let mut n = 0;
        for st in [State::Done, State::Failed] {
            for (id, t) in self.batches(st)? {
                if !crate::time::older_than(t, days) {
                    continue;
                }
                for name in [format!("{id}.jsonl"), format!("{id}.log")] {
                    let p = self.dir(st).join(name);
                    match fs::remove_file(&p) {
                        Ok(()) => {}
                        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                        Err(e) => return Err(Error::io(&p, e)),
                    }
                }
                n += 1;
            }
        }
        Ok(n)
    }

    fn open_lock(&self, name: &str) -> Result<(File, PathBuf), Error> {
        let p = self.root.join(name);
        let f = crate::error::open_lock_file(&p)?;
        Ok((f, p))
    }

    /// Take the lock of the process serving the spool (`watch`, `run-once`);
    /// `Err(pid)` when another one holds it (its pid, as it wrote it).
    pub fn lock_watch(&self) -> Result<Result<File, String>, Error> {
        let (mut f, p) = self.open_lock(WATCH_LOCK)?;
        let start = Instant::now();
        loop {
            match f.try_lock() {
                Ok(()) => break,
                Err(TryLockError::WouldBlock) if start.elapsed() < LOCK_TRIES => {
                    std::thread::sleep(Duration::from_millis(50));
                }
                Err(TryLockError::WouldBlock) => {
                    let mut pid = String::new();
                    let _ = f.read_to_string(&mut pid);
                    return Ok(Err(pid.trim().to_string()));
                }
                Err(TryLockError::Error(e)) => return Err(Error::io(&p, e)),
            }
        }
        // For a person looking: who holds it.
        let _ = f
            .set_len(0)
            .and_then(|_| f.write_all(format!("{}\n", std::process::id()).as_bytes()));
        Ok(Ok(f))
    }

    /// Whether a `watch` or `run-once` serves the spool now.
    pub fn served(&self) -> bool {
        let p = self.root.join(WATCH_LOCK);
        let Ok(f) = File::open(&p) else {
            return false;
        };
        matches!(f.try_lock_shared(), Err(TryLockError::WouldBlock))
    }

    /// Write `<state>/<name>` atomically: to tmp/ first, synced, then renamed.
    pub fn write_atomic(&self, st: State, name: &str, body: &[u8]) -> Result<(), Error> {
        let tmp =
            self.dir(State::Tmp)
                .join(format!("{name}.{}.{}", std::process::id(), st.as_str()));
        let dest = self.dir(st).join(name);
        // A stale one of an earlier process with our pid goes first.
        let _ = fs::remove_file(&tmp);
        crate::atomic::write_via(&tmp, &dest, body).map_err(|e| Error::io(dest, e))
    }
}

/// Whether a notify event may mean a new file: not the opening or reading of
/// the directory or its files (the looking itself would wake the looker).
/// The changes worth a look in some directories, a `()` each on `rx`; with
/// no notify, none come, and the reader's poll still finds what it looks
/// for.
pub struct DirEvents {
    pub rx: crossbeam_channel::Receiver<()>,
    /// Kept, so that the channel never closes when the watcher goes.
    _tx: crossbeam_channel::Sender<()>,
    _watcher: Option<notify::RecommendedWatcher>,
}

impl DirEvents {
    pub fn on(dirs: &[PathBuf]) -> DirEvents {
        use notify::Watcher;
        let (tx, rx) = crossbeam_channel::unbounded::<()>();
        let send = tx.clone();
        let watcher = notify::recommended_watcher(move |ev: notify::Result<notify::Event>| {
            if worth_a_look(&ev) {
                let _ = send.send(());
            }
        })
        .ok()
        .map(|mut w| {
            for d in dirs {
                let _ = w.watch(d, notify::RecursiveMode::NonRecursive);
            }
            w
        });
        DirEvents {
            rx,
            _tx: tx,
            _watcher: watcher,
        }
    }
}

pub fn worth_a_look(ev: &notify::Result<notify::Event>) -> bool {
    !matches!(ev, Ok(e) if matches!(e.kind, notify::EventKind::Access(_)))
}

pub use crate::atomic::sync_dir;

/// A `spool` record: the state of one batch.
pub fn spool_record(id: &str, st: State) -> Record {
    let mut r = Record::new(Kind::Spool);
    r.set("batch", id);
    r.set("state", st.as_str());
    r
}

/// A new batch id: the time, then a hash of the list, the process and the
/// nanoseconds: `20261121-101500-3f2a9c1b`.
pub fn new_id(now: SystemTime, list: &[u8]) -> String {
    let nanos = now
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    crate::host::new_batch_id(
        now,
        &[
            list,
            &std::process::id().to_le_bytes(),
            &nanos.to_le_bytes(),
        ],
    )
}

/// The batch file for a list: its `batch` record first (the first one of the
/// input, or a new one), with `id` and `created`, then every other line as it
/// was.  Returns the record and the file's text.
pub fn batch_file(
    input: &[u8],
    batch: Option<&str>,
    now: SystemTime,
) -> Result<(Record, Vec<u8>), Error> {
    let mut found: Option<(usize, Record)> = None;
    let mut lines: Vec<&[u8]> = input.split(|&b| b == b'\n').collect();
    if lines.last().is_some_and(|l| l.is_empty()) {
        lines.pop();
    }
    for (i, l) in lines.iter().enumerate() {
        let Ok(t) = std::str::from_utf8(l) else {
            continue;
        };
        let t = t.trim();
        if !t.starts_with('{') {
            continue;
        }
        if let Ok(r) = Record::parse(t) {
            if r.is(Kind::Batch) {
                found = Some((i, r));
                break;
            }
        }
    }
    let (skip, mut rec) = match found {
        Some((i, r)) => (Some(i), r),
        None => (None, Record::new(Kind::Batch)),
    };
    let id = match batch {
        Some(b) => b.to_string(),
        None => match rec.get("id") {
            Some(v) => match v.as_str() {
                Some(s) => s.to_string(),
                None => return Err(Error::Usage("the batch record's id is not a string".into())),
            },
            None => new_id(now, input),
        },
    };
    check_batch(&id)?;
    rec.set("id", id.as_str());
    rec.set_default("created", crate::time::utc_stamp(now));
    let mut body = rec.to_line().into_bytes();
    body.push(b'\n');
    for (i, l) in lines.iter().enumerate() {
        if Some(i) == skip {
            continue;
        }
        body.extend_from_slice(l);
        body.push(b'\n');
    }
    Ok((rec, body))
}

pub fn submit(a: &SubmitArgs, diag: &Diag) -> Result<Exit, Error> {
    if let Some(b) = &a.batch {
        check_batch(b)?;
    }
    let input = read_input(a.file.as_deref())?;
    let spool = Spool::open(&a.spool.spool)?;
    let (rec, body) = batch_file(&input, a.batch.as_deref(), SystemTime::now())?;
    let id = rec.str("id").unwrap_or_default().to_string();

    if let Some(st) = drop_in(&spool, &id, &body)? {
        if io::stderr().is_terminal() {
            diag.warn(format_args!(
                "batch {id} is already in {}/: not submitted again",
                st.as_str()
            ));
        }
    }
    let mut out = Output::stdout();
    out.record(&rec)?;
    out.flush()?;
    Ok(Exit::Success)
}

/// Put batch `id` (its file `body`) into new/, atomically, under the submit
/// lock; when a batch of that id is in the spool already, nothing is done and
/// its state is returned.
fn drop_in(spool: &Spool, id: &str, body: &[u8]) -> Result<Option<State>, Error> {
    drop_locked(spool, &spool.file(State::New, id), body, || {
        spool.state_of(id)
    })
}

/// Write `body` to `dest` through tmp/ under the submit lock, unless `taken`
/// finds something that stops it (then returned, nothing written).
pub(super) fn drop_locked<T>(
    spool: &Spool,
    dest: &Path,
    body: &[u8],
    taken: impl FnOnce() -> Option<T>,
) -> Result<Option<T>, Error> {
    let (lock, lock_path) = spool.open_lock(SUBMIT_LOCK)?;
    lock.lock().map_err(|e| Error::io(&lock_path, e))?;
    if let Some(t) = taken() {
        return Ok(Some(t));
    }
    let name = dest
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = spool
        .dir(State::Tmp)
        .join(format!("{name}.{}", std::process::id()));
    let _ = fs::remove_file(&tmp);
    crate::atomic::write_via(&tmp, dest, body).map_err(|e| Error::io(dest, e))?;
    Ok(None)
}

/// `retry`: a new batch, `<id>.retryN`, of the failed entries of finished
/// batch `id` (those named, or all), queued like a submitted one; what
/// finished is not built again.  Prints its batch record.
pub fn retry(a: &RetryArgs, diag: &Diag) -> Result<Exit, Error> {
    check_batch(&a.batch)?;
    let spool = Spool::existing(&a.spool.spool)?;
    let id = a.batch.as_str();
    let st = match spool.state_of(id) {
        Some(st @ (State::Done | State::Failed)) => st,
        Some(st) => {
            return Err(Error::Usage(format!(
                "batch {id} is in {}/: not finished, nothing to retry yet",
                st.as_str()
            )))
        }
        None => {
            return Err(Error::Usage(format!(
                "no batch {id} in {}",
                spool.root().display()
            )))
        }
    };
    let path = spool.file(st, id);
    let text = fs::read_to_string(&path).map_err(|e| Error::io(&path, e))?;
    let mut failed: Vec<String> = Vec::new();
    for r in text.lines().filter_map(|l| Record::parse(l).ok()) {
        if r.is_package_build() && r.word("status") == Some(crate::record::BuildStatus::Failed) {
            if let Some(p) = r.str("fullpkgpath").and_then(|p| PkgPath::parse(p).ok()) {
                let p = p.to_string();
                if !failed.contains(&p) {
                    failed.push(p);
                }
            }
        }
    }
    let mut chosen = Vec::new();
    for given in &a.pkgpaths {
        let p = PkgPath::parse(given)
            .map_err(|e| Error::Usage(e.to_string()))?
            .to_string();
        if !failed.contains(&p) {
            return Err(Error::Usage(format!(
                "{given}: not a failed entry of batch {id} (failed: {})",
                if failed.is_empty() {
                    "none".to_string()
                } else {
                    failed.join(", ")
                }
            )));
        }
        if !chosen.contains(&p) {
            chosen.push(p);
        }
    }
    if a.pkgpaths.is_empty() {
        chosen = failed;
    }
    if chosen.is_empty() {
        diag.tty_note(format_args!(
            "batch {id}: no failed entry: nothing to retry"
        ));
        return Ok(Exit::NothingToDo);
    }
    let new = (1..)
        .map(|n| format!("{id}.retry{n}"))
        .find(|n| spool.state_of(n).is_none())
        .unwrap_or_default();
    check_batch(&new)?;
    let mut head = Record::new(Kind::Batch);
    head.set("id", new.as_str());
    head.set("retry_of", id);
    let input = format!("{}\n{}\n", head.to_line(), chosen.join("\n"));
    let (rec, body) = batch_file(input.as_bytes(), None, SystemTime::now())?;
    drop_in(&spool, &new, &body)?;
    let mut out = Output::stdout();
    out.record(&rec)?;
    out.flush()?;
    Ok(Exit::Success)
}

/// The list of `submit` and `plan`: the file, or standard input when none or
/// `-`.
pub(super) fn read_input(file: Option<&Path>) -> Result<Vec<u8>, Error> {
    match file {
        Some(p) if p.as_os_str() != "-" => fs::read(p).map_err(|e| Error::io(p, e)),
        _ => read_stdin(),
    }
}

fn read_stdin() -> Result<Vec<u8>, Error> {
    let mut v = Vec::new();
    io::stdin()
        .lock()
        .read_to_end(&mut v)
        .map_err(|e| Error::io("stdin", e))?;
    Ok(v)
}

/// Copy a finished batch's file to stdout.
fn print_file(p: &Path) -> Result<(), Error> {
    let body = fs::read(p).map_err(|e| Error::io(p, e))?;
    let mut out = io::stdout().lock();
    out.write_all(&body).map_err(Error::stdout)?;
    out.flush().map_err(Error::stdout)
}

pub fn wait(a: &WaitArgs, diag: &Diag) -> Result<Exit, Error> {
    check_batch(&a.batch)?;
    let spool = Spool::existing(&a.spool.spool)?;
    let id = a.batch.as_str();
    let deadline = a.timeout.map(|t| Instant::now() + t);
    let events = DirEvents::on(&[spool.dir(State::Done), spool.dir(State::Failed)]);
    let rx = &events.rx;
    loop {
        for (st, code) in [(State::Done, Exit::Success), (State::Failed, Exit::Failed)] {
            let p = spool.file(st, id);
            if fs::symlink_metadata(&p).is_ok() {
                print_file(&p)?;
                return Ok(code);
            }
        }
        let mut pause = WAIT_POLL;
        if let (Some(d), Some(t)) = (deadline, a.timeout) {
            let left = d.saturating_duration_since(Instant::now());
            if left.is_zero() {
                diag.tty_note(format_args!(
                    "batch {id}: not finished after {}",
                    crate::time::show_duration(t)
                ));
                return Ok(Exit::TempFail);
            }
            pause = pause.min(left);
        }
        let _ = rx.recv_timeout(pause);
        while rx.try_recv().is_ok() {}
    }
}

/// The `spool` record of a batch in cur/: its heartbeat file, or what little
/// is known without one.
fn cur_record(spool: &Spool, id: &str, mtime: SystemTime) -> Record {
    let p = spool.dir(State::Cur).join(format!("{id}.status"));
    let mut r = fs::read_to_string(&p)
        .ok()
        .and_then(|t| Record::parse(t.trim()).ok())
        .filter(|r| r.is(Kind::Spool) && r.str("batch") == Some(id))
        .unwrap_or_else(|| {
            let mut r = spool_record(id, State::Cur);
            r.set("since", crate::time::utc_stamp(mtime));
            r
        });
    r.set("state", State::Cur.as_str());
    // The entry build-list is at (cur/<id>.progress, which it writes).
    if let Some(p) = fs::read_to_string(spool.progress_file(id))
        .ok()
        .and_then(|t| Record::parse(t.trim()).ok())
    {
        for k in ["entry", "n", "of", "failures"] {
            if let Some(v) = p.get(k) {
                r.set(k, v.clone());
            }
        }
    }
    r
}

pub fn status(a: &StatusArgs, diag: &Diag) -> Result<Exit, Error> {
    let spool = Spool::existing(&a.spool.spool)?;
    let served = spool.served();
    let mut records = Vec::new();
    for name in spool.strays(State::New) {
        let m = format!(
            "new/{name}: not a batch (a batch is <id>.jsonl, the id of letters, digits, . _ - +): never run"
        );
        diag.warn(format_args!("warning: {m}"));
        records.push(Record::notice(
            super::TOOL,
            crate::record::Level::Warning,
            m,
        ));
    }
    for (id, t) in spool.batches(State::Cur)? {
        let mut r = cur_record(&spool, &id, t);
        // Placed after the heartbeat's fields, before `stages`.
        let stages = r.remove("stages");
        let seconds = r.remove("seconds");
        let arch = r.remove("arch");
        let host = r.remove("host");
        r.set("running", served);
        for (k, v) in [
            ("stages", stages),
            ("seconds", seconds),
            ("arch", arch),
            ("host", host),
        ] {
            if let Some(v) = v {
                r.set(k, v);
            }
        }
        records.push(r);
    }
    let mut states = vec![State::New];
    if a.all {
        states.extend([State::Done, State::Failed]);
    }
    for st in states {
        for (id, t) in spool.batches(st)? {
            let mut r = spool_record(&id, st);
            r.set("since", crate::time::utc_stamp(t));
            records.push(r);
        }
    }
    let mut out = Output::stdout();
    if !a.json && io::stdout().is_terminal() {
        out.line(table(&records, SystemTime::now()).trim_end())?;
    } else {
        for r in &records {
            out.record(r)?;
        }
    }
    out.flush()?;
    Ok(Exit::Success)
}

/// `status` for a person: a line per batch, its state (a batch in cur/ that
/// no build-trigger serves is `stopped`), the stage at work, when it started
/// and how old its heartbeat is.
pub fn table(records: &[Record], now: SystemTime) -> String {
    let mut rows = vec![[
        "BATCH".to_string(),
        "STATE".into(),
        "STAGE".into(),
        "ENTRY".into(),
        "SINCE".into(),
        "HEARTBEAT".into(),
    ]];
    for r in records.iter().filter(|r| r.is(Kind::Spool)) {
        let s = |f: &str| r.str(f).unwrap_or("-").to_string();
        let mut state = s("state");
        if r.get("running").and_then(serde_json::Value::as_bool) == Some(false) {
            state.push_str(" (stopped)");
        }
        let heartbeat = r
            .str("heartbeat")
            .and_then(|h| humantime::parse_rfc3339(h).ok())
            .map(|t| {
                let age = now.duration_since(t).unwrap_or_default();
                format!(
                    "{} ago",
                    crate::time::show_duration(Duration::from_secs(age.as_secs()))
                )
            })
            .unwrap_or_else(|| "-".into());
        let entry = match (r.str("entry"), r.get("n"), r.get("of")) {
            (Some(e), Some(n), Some(of)) => {
                let failed = r
                    .get("failures")
                    .and_then(serde_json::Value::as_u64)
                    .unwrap_or(0);
                let mut c = format!("{n}/{of} {e}");
                if failed > 0 {
                    c.push_str(&format!(" ({failed} failed)"));
                }
                c
            }
            _ => "-".into(),
        };
        rows.push([s("batch"), state, s("stage"), entry, s("since"), heartbeat]);
    }
    let width = |i: usize| rows.iter().map(|r| r[i].chars().count()).max().unwrap_or(0);
    let widths: Vec<usize> = (0..6).map(width).collect();
    let mut text = String::new();
    for row in &rows {
        let mut line = String::new();
        for (i, cell) in row.iter().enumerate() {
            if i + 1 == row.len() {
                line.push_str(cell);
            } else {
                line.push_str(&format!("{cell:<w$}  ", w = widths[i]));
            }
        }
        text.push_str(line.trim_end());
        text.push('\n');
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_table() {
        let now = UNIX_EPOCH + Duration::from_secs(1_795_000_100);
        let recs: Vec<Record> = [
            r#"{"kind":"spool","v":1,"batch":"b1","state":"cur","since":"2026-11-18T11:06:00Z","stage":"build-list","heartbeat":"2026-11-18T11:08:10Z","running":true,"entry":"net/curl","n":3,"of":12,"failures":1}"#,
            r#"{"kind":"spool","v":1,"batch":"b-longer-2","state":"cur","since":"2026-11-18T11:00:00Z","running":false}"#,
            r#"{"kind":"notice","v":1,"tool":"build-trigger","level":"warning","message":"x"}"#,
            r#"{"kind":"spool","v":1,"batch":"b3","state":"new","since":"2026-11-18T11:07:00Z"}"#,
        ]
        .iter()
        .map(|l| Record::parse(l).unwrap())
        .collect();
        assert_eq!(
            table(&recs, now),
            "BATCH       STATE          STAGE       ENTRY                     SINCE                 HEARTBEAT\n\
             b1          cur            build-list  3/12 net/curl (1 failed)  2026-11-18T11:06:00Z  10s ago\n\
             b-longer-2  cur (stopped)  -           -                         2026-11-18T11:00:00Z  -\n\
             b3          new            -           -                         2026-11-18T11:07:00Z  -\n"
        );
    }

    #[test]
    fn ids_are_valid_and_differ() {
        let t = UNIX_EPOCH + Duration::from_secs(1_795_000_000);
        let a = new_id(t, b"net/curl\n");
        let b = new_id(t, b"net/tor\n");
        assert!(a.starts_with("20261118-110640-"), "{a}");
        assert_eq!(a.len(), "20261118-110640-".len() + 8);
        assert_ne!(a, b);
        assert!(check_batch(&a).is_ok());
    }

    #[test]
    fn the_batch_record_goes_first() {
        let t = UNIX_EPOCH + Duration::from_secs(1_795_000_000);
        let input =
            b"net/curl\n{\"kind\":\"batch\",\"v\":1,\"id\":\"b1\",\"x\":1}\n{bad\n\nnet/tor";
        let (r, body) = batch_file(input, None, t).unwrap();
        assert_eq!(r.str("id"), Some("b1"));
        assert_eq!(
            String::from_utf8(body).unwrap(),
            "{\"kind\":\"batch\",\"v\":1,\"id\":\"b1\",\"x\":1,\"created\":\"2026-11-18T11:06:40Z\"}\nnet/curl\n{bad\n\nnet/tor\n"
        );
        // --batch wins over the record's id.
        let (r, _) = batch_file(input, Some("b2"), t).unwrap();
        assert_eq!(r.str("id"), Some("b2"));
        // No record: a new one.
        let (r, body) = batch_file(b"net/curl\n", Some("b3"), t).unwrap();
        assert_eq!(
            String::from_utf8(body).unwrap(),
            "{\"kind\":\"batch\",\"v\":1,\"id\":\"b3\",\"created\":\"2026-11-18T11:06:40Z\"}\nnet/curl\n"
        );
        assert_eq!(r.str("created"), Some("2026-11-18T11:06:40Z"));
        // Empty input: the record alone.
        let (_, body) = batch_file(b"", Some("b4"), t).unwrap();
        assert_eq!(body.iter().filter(|&&b| b == b'\n').count(), 1);
        assert!(batch_file(b"{\"kind\":\"batch\",\"v\":1,\"id\":\"../x\"}\n", None, t).is_err());
        assert!(batch_file(b"{\"kind\":\"batch\",\"v\":1,\"id\":3}\n", None, t).is_err());
    }
}
