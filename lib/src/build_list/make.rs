//! One make over a part of the list: started in its own process group, its
//! output (stdout and stderr through one pipe) read as it comes and split at the
//! `===> <fullpkgpath>` headers into the entries' logs, killed when silent too
//! long.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{self, BufWriter, Read, Seek, SeekFrom, Write};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use super::batch::{self, log_name};
use super::{Entry, Runner, Status};
use crate::ports::{broken_dependency, created_package, header, SubdirList};
use crate::proc::Supervised;
use crate::record::{BuildTarget, Phase, Reason};
use crate::Error;

/// How long the output pipe may stay open after make exited (a process make
/// started in the background still holding it) before build-list goes on.
const EXIT_GRACE: Duration = Duration::from_secs(2);

/// How long build-list waits for the output of a killed make to end.
const KILL_GRACE: Duration = Duration::from_secs(10);

/// Read the pipe in a thread and hand the chunks over as they come.
fn reader(mut pipe: io::PipeReader) -> Receiver<Vec<u8>> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            match pipe.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    if tx.send(buf[..n].to_vec()).is_err() {
                        break;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => break,
            }
        }
    });
    rx
}

/// The entry make is at.
struct Current {
    index: usize,
    log: Option<BufWriter<File>>,
    log_path: PathBuf,
    start: Instant,
    /// What its output said so far.
    scan: EntryScan,
}

/// What the output of one entry says, line by line.
#[derive(Debug, Default, PartialEq)]
pub(crate) struct EntryScan {
    /// Its output showed a package written (or a distfile fetched).
    did_work: bool,
    /// make said it will not build it here, and why.
    ignored: Option<String>,
    /// The package files its output says were made (`Create <path>`), its
    /// dependencies' included, by file name.
    pub(crate) created: Vec<String>,
    /// The phase the last of bsd.port.mk's lines named.
    pub(crate) phase: Option<Phase>,
}

/// The phase a line of bsd.port.mk starts (`===>  Building for curl-8.9.1`,
/// `>> Fetch http://...`, `>> Checksum mismatch for ...`).
pub(crate) fn phase_of(line: &str) -> Option<Phase> {
    const MARKS: &[(&str, Phase)] = &[
        ("===>  Checking files for ", Phase::Fetch),
        (">> Fetch ", Phase::Fetch),
        (">> (SHA256) ", Phase::Checksum),
        (">> Checksum mismatch", Phase::Checksum),
        (">> No checksum", Phase::Checksum),
        ("===>  Verifying dependency ", Phase::Depends),
        ("===>  Verifying install for ", Phase::Depends),
        ("===>  Extracting for ", Phase::Build),
        ("===>  Patching for ", Phase::Build),
        ("===>  Configuring for ", Phase::Build),
        ("===>  Building for ", Phase::Build),
        ("===>  Faking installation for ", Phase::Fake),
        ("===>  Building package for ", Phase::Package),
    ];
    if line.starts_with("===>  ") && line.contains(" depends on: ") {
        return Some(Phase::Depends);
    }
    MARKS
        .iter()
        .find(|(m, _)| line.starts_with(m))
        .map(|(_, p)| *p)
}

impl EntryScan {
    /// One line of the entry's output, without its line end.  `work_line` starts
    /// the line that says make did the work (`===>  Building package for `).
    pub(crate) fn see(&mut self, text: &[u8], work_line: &[u8]) {
        let line = std::str::from_utf8(text).ok();
        if let Some(p) = line.and_then(phase_of) {
            self.phase = Some(p);
        }
        if text.starts_with(work_line) {
            self.did_work = true;
        } else if let Some(name) = line.and_then(created_package) {
            if !self.created.iter().any(|n| n == name) {
                self.created.push(name.to_string());
            }
        } else if self.ignored.is_none() {
            self.ignored = line.and_then(ignored).map(str::to_string);
        }
    }

    /// How the entry ended, when make finished it without a problem.
    pub(crate) fn outcome(&self) -> (Status, Option<&str>) {
        outcome(self.did_work, self.ignored.as_deref())
    }
}

/// The lines of one make's output and where they go.
struct Split<'e> {
    entries: &'e [Entry],
    index: HashMap<&'e str, usize>,
    /// The first entry not yet reached.
    next: usize,
    cur: Option<Current>,
    carry: Vec<u8>,
    make_log: Option<File>,
    /// The line that tells that an entry did the work.
    work_line: &'static [u8],
}

/// `REPORT_PROBLEM_LOGFILE` as make appends to it, `<fullpkgpath> (<target>)`
/// a line, read as it grows.  make runs ahead of the reading of its output:
/// a look for one entry may find the lines of entries after it, which are
/// kept for their turn.
pub(crate) struct Problems {
    path: std::path::PathBuf,
    /// How far the file is read.
    offset: u64,
    /// Entries reported and not yet asked about.
    seen: std::collections::HashSet<String>,
}

impl Problems {
    pub(crate) fn new(path: &std::path::Path) -> Problems {
        Problems {
            path: path.to_path_buf(),
            offset: 0,
            seen: Default::default(),
        }
    }

    /// Whether make reported `entry`: the lines appended since the last look
    /// read (whole lines only; a line being written is read next time), then
    /// the entry looked for among all those not asked about yet.
    pub(crate) fn reported(&mut self, entry: &str) -> bool {
        if let Ok(mut f) = File::open(&self.path) {
            let mut text = Vec::new();
            if f.seek(SeekFrom::Start(self.offset)).is_ok() && f.read_to_end(&mut text).is_ok() {
                if let Some(end) = text.iter().rposition(|&b| b == b'\n') {
                    self.offset += end as u64 + 1;
                    self.seen
                        .extend(crate::ports::problem_entries(&String::from_utf8_lossy(
                            &text[..end],
                        )));
                }
            }
        }
        self.seen.remove(entry)
    }
}

/// How an entry that make finished without a problem ended.
fn outcome(did_work: bool, ignored: Option<&str>) -> (Status, Option<&str>) {
    match (did_work, ignored) {
        (true, _) => (Status::Built, None),
        (false, Some(why)) => (Status::Ignored, Some(why)),
        (false, None) => (Status::UpToDate, None),
    }
}

/// make's reason in the line it prints for a port it will not build here:
/// `===>  go-1.15.2   is only for aarch64 amd64, not sparc64 (x86_64) .` or
/// `===>  lokalize-20.08.3  is marked as broken: Depends on Qt 5.14+ .`
/// (bsd.port.mk: `===>  ${FULLPKGNAME} ${IGNORE}.`).
pub(crate) fn ignored(line: &str) -> Option<&str> {
    const WHY: &[&str] = &[
        "is marked as broken",
        "is only for ",
        "is not for ",
        "is an interactive port",
        "requires ",
        "comes with OpenBSD",
    ];
    let rest = line.strip_prefix("===>  ")?;
    let (_, why) = rest.trim_start().split_once(' ')?;
    let why = why.trim();
    let why = why.strip_suffix('.').unwrap_or(why).trim_end();
    let plain = why.trim_start_matches("-- ");
    WHY.iter()
        .any(|w| plain.starts_with(w) || (why.starts_with("-- ") && plain.contains(w)))
        .then_some(why)
}

impl<'e> Split<'e> {
    fn new(entries: &'e [Entry], make_log: File, target: BuildTarget) -> Self {
        Split {
            entries,
            index: entries
                .iter()
                .enumerate()
                .map(|(i, e)| (e.path.as_str(), i))
                .collect(),
            next: 0,
            cur: None,
            carry: Vec::new(),
            make_log: Some(make_log),
            work_line: match target {
                BuildTarget::Package => b"===>  Building package for ",
                BuildTarget::Fetch => b">> Fetch ",
            },
        }
    }
}

/// make's output, in chunks, as a thread reads it.
type Output = Receiver<Vec<u8>>;

/// How one make went, as build-list watched it.
#[derive(Default)]
struct Watch {
    /// It printed nothing for the silent timeout, and was killed.
    timed_out: bool,
    /// A signal asked build-list to stop: make was killed.
    stopping: bool,
    exited_at: Option<Instant>,
    killed_at: Option<Instant>,
}

impl Runner<'_> {
    /// Run one make over `entries`; emit a record for every entry it finished.
    /// Returns how many entries, from the start, are done with: the caller starts
    /// make again over the rest (after a timeout, or a make that died in an entry).
    pub(super) fn invocation(&mut self, entries: &[Entry]) -> Result<usize, Error> {
        let paths: Vec<&str> = entries.iter().map(|e| e.path.as_str()).collect();
        let list = SubdirList::new_in(&self.batch.dir, &paths)?;
        let problems = self.batch.path(batch::PROBLEMS);
        File::create(&problems).map_err(|e| Error::io(&problems, e))?;
        let make_log_path = self.batch.path(batch::MAKE_LOG);
        let mut make_log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&make_log_path)
            .map_err(|e| Error::io(&make_log_path, e))?;
        let Some((mut make, rx)) = self.start_make(&list, &problems, &mut make_log)? else {
            for e in entries {
                self.finish_skipped(e, Reason::NotReached, &make_log_path)?;
            }
            return Ok(entries.len());
        };
        let mut split = Split::new(entries, make_log, self.target);
        let mut reported = Problems::new(&problems);
        let watch = self.follow(&mut make, &rx, &mut split, &mut reported)?;
        let status = make.wait().map_err(|e| self.wait_error(e))?;
        self.batch.clear_make_pid();
        if watch.stopping {
            // The entry make was at is not finished: no record, not journaled.
            if let Some(mut c) = split.cur.take() {
                self.close_log(&mut c);
            }
            return Err(super::stopped(&self.batch.dir, self.drain.asked()));
        }
        if let Some(f) = split.make_log.as_mut() {
            let _ = writeln!(
                f,
                "build-list: {}: make: {}",
                crate::time::utc_stamp(std::time::SystemTime::now()),
                status
            );
        }
        self.conclude(&mut split, status, watch.timed_out, &mut reported)
    }

    fn wait_error(&self, e: io::Error) -> Error {
        Error::Command {
            program: self.host.tree.make().to_string_lossy().into_owned(),
            message: format!("cannot wait for make: {e}"),
        }
    }

    /// Start make over the list, in a process group of its own, its output
    /// (standard output and error, one pipe) read by a thread; the command is
    /// written to make.log.  `None` when it could not be started (said).
    fn start_make(
        &mut self,
        list: &SubdirList,
        problems: &std::path::Path,
        make_log: &mut File,
    ) -> Result<Option<(Supervised, Output)>, Error> {
        // The host's settings are mk.conf's (or the user's flags, which the
        // tree carries): nothing of build-list's own goes to make but BULK.
        let mut vars: Vec<(&str, &str)> = Vec::new();
        if self.target == BuildTarget::Package {
            vars.push(("BULK", "yes"));
        }
        let (pipe_r, pipe_w) = io::pipe().map_err(Error::system("make a pipe"))?;
        let stdin = self
            .batch
            .make_stdin()
            .map_err(|e| Error::io(self.batch.path(batch::MAKE_LOCK), e))?;
        let w2 = pipe_w.try_clone().map_err(Error::system("dup a pipe"))?;
        let mut cmd = self
            .host
            .tree
            .command(self.target.as_str(), list, problems, &vars);
        cmd.stdin(Stdio::from(stdin))
            .stdout(Stdio::from(w2))
            .stderr(Stdio::from(pipe_w))
            .process_group(0);
        // As it runs: the list variables of its environment, then the command.
        let shown = cmd
            .get_envs()
            .filter(|(k, _)| *k == "SUBDIRLIST" || *k == "REPORT_PROBLEM_LOGFILE")
            .filter_map(|(k, v)| Some(format!("{}={} ", k.to_string_lossy(), v?.to_string_lossy())))
            .collect::<String>()
            + &std::iter::once(cmd.get_program())
                .chain(cmd.get_args())
                .map(|a| a.to_string_lossy())
                .collect::<Vec<_>>()
                .join(" ");
        let _ = writeln!(
            make_log,
            "build-list: {}: in {}: env {shown}",
            crate::time::utc_stamp(std::time::SystemTime::now()),
            self.host.tree.root().display()
        );
        let spawned = cmd.spawn();
        // Our ends of the pipe must go, or the reader never sees the end.
        drop(cmd);
        let child = match spawned {
            Ok(c) => c,
            Err(e) => {
                let err = self.host.tree.spawn_error(e);
                let _ = writeln!(make_log, "build-list: {err}");
                self.diag.error(&err);
                return Ok(None);
            }
        };
        // Dropped before it was waited for (an error on the way out, a closed
        // stdout), make is killed with its group: a build nobody reads must
        // not go on.
        let make = Supervised::new(child, true);
        if let Err(e) = self.batch.set_make_pid(make.id()) {
            self.diag.warn(format_args!(
                "{}: {e}",
                self.batch.path(batch::MAKE_PID).display()
            ));
        }
        Ok(Some((make, reader(pipe_r))))
    }

    /// Read make's output to its end, entry by entry; kill make when it stays
    /// silent for the timeout or a signal asks build-list to stop; give up a
    /// pipe that processes make left behind hold.
    fn follow(
        &mut self,
        make: &mut Supervised,
        rx: &Output,
        split: &mut Split,
        problems: &mut Problems,
    ) -> Result<Watch, Error> {
        let make_log_path = self.batch.path(batch::MAKE_LOG);
        let tick = Duration::from_millis(if self.ticking { 500 } else { 1000 });
        let mut last_output = Instant::now();
        let mut w = Watch::default();
        loop {
            let mut wait = tick;
            if let (Some(t), false) = (self.timeout, w.timed_out) {
                wait = wait.min(t.saturating_sub(last_output.elapsed()));
            }
            match rx.recv_timeout(wait) {
                Ok(chunk) => {
                    last_output = Instant::now();
                    self.take(split, &chunk, problems)?;
                }
                Err(RecvTimeoutError::Disconnected) => break,
                Err(RecvTimeoutError::Timeout) => {}
            }
            if w.exited_at.is_none() && make.try_wait().map_err(|e| self.wait_error(e))?.is_some() {
                w.exited_at = Some(Instant::now());
            }
            // Output still coming (or still queued) is read to the end; only a
            // pipe that stays quiet is given up.
            let quiet = last_output.elapsed();
            if w.exited_at.is_some_and(|t| t.elapsed() > EXIT_GRACE) && quiet > EXIT_GRACE {
                self.diag.warn(format_args!(
                    "processes make started still hold its output after it exited: not waiting for them (see {})",
                    make_log_path.display()
                ));
                break;
            }
            if w.killed_at.is_some_and(|t| {
                t.elapsed() > KILL_GRACE && (quiet > EXIT_GRACE || t.elapsed() > 6 * KILL_GRACE)
            }) {
                self.diag.warn(format_args!(
                    "processes of the killed make still hold its output: not waiting for them (see {})",
                    make_log_path.display()
                ));
                break;
            }
            if let (Some(t), false, None) = (self.timeout, w.timed_out, w.exited_at) {
                if quiet >= t {
                    w.timed_out = true;
                    w.killed_at = Some(Instant::now());
                    if !split.carry.is_empty() {
                        let mut l = std::mem::take(&mut split.carry);
                        l.push(b'\n');
                        self.write(split, &l);
                    }
                    let note = format!(
                        "build-list: no output for {}: killing make (process group {})\n",
                        crate::time::show_duration(t),
                        make.id()
                    );
                    self.note(split, note.as_bytes());
                    make.kill();
                }
            }
            if !w.stopping && self.stop.load(std::sync::atomic::Ordering::Relaxed) {
                w.stopping = true;
                w.killed_at.get_or_insert_with(Instant::now);
                let why = if self.drain.asked() {
                    "drained"
                } else {
                    "stopped by a signal"
                };
                let note = format!(
                    "build-list: {why}: killing make (process group {})\n",
                    make.id()
                );
                self.note(split, note.as_bytes());
                make.kill();
            }
            if let Some(c) = &split.cur {
                self.progress(&split.entries[c.index].path, c.start, c.scan.phase);
            }
        }
        if !split.carry.is_empty() {
            let mut line = std::mem::take(&mut split.carry);
            line.push(b'\n');
            self.line(split, &line, problems)?;
        }
        Ok(w)
    }

    /// After make: the record of the entry it was at when it ended (failed
    /// when it was killed, reported a problem or stopped in it), or of the
    /// entries it never reached.  Returns how many entries are done with.
    fn conclude(
        &mut self,
        split: &mut Split,
        status: std::process::ExitStatus,
        timed_out: bool,
        problems: &mut Problems,
    ) -> Result<usize, Error> {
        let entries = split.entries;
        let make_log_path = self.batch.path(batch::MAKE_LOG);
        let Some(mut cur) = split.cur.take() else {
            // make never reached the first entry.
            if timed_out {
                // Silent from the start: the first entry is what it was at.
                let e = &entries[0];
                let path = self.batch.path(&log_name(&e.path, self.target));
                let _ = std::fs::write(
                    &path,
                    format!(
                        "build-list: make printed nothing for {}: killed\n",
                        self.timeout
                            .map(crate::time::show_duration)
                            .unwrap_or_default()
                    ),
                );
                self.finish(
                    e,
                    Status::Failed,
                    Some(Reason::Timeout.as_str()),
                    &path,
                    0.0,
                    &EntryScan::default(),
                )?;
                return Ok(1);
            }
            self.diag.error(format_args!(
                "make stopped before the first entry ({status}): see {}",
                make_log_path.display()
            ));
            for e in entries {
                self.finish_skipped(e, Reason::NotReached, &make_log_path)?;
            }
            return Ok(entries.len());
        };
        let e = &entries[cur.index];
        let scan = std::mem::take(&mut cur.scan);
        let (st, reason) = if timed_out {
            (Status::Failed, Some(Reason::Timeout.as_str()))
        } else if problems.reported(&e.path) {
            (Status::Failed, Some(Reason::Error.as_str()))
        } else if !status.success() {
            (Status::Failed, Some(Reason::Make.as_str()))
        } else {
            scan.outcome()
        };
        if st == Status::Failed && reason == Some(Reason::Make.as_str()) {
            if let Some(log) = cur.log.as_mut() {
                let _ = writeln!(log, "build-list: make stopped in this entry: {status}");
            }
        }
        let seconds = cur.start.elapsed().as_secs_f64();
        self.close_log(&mut cur);
        self.finish(e, st, reason, &cur.log_path, seconds, &scan)?;
        if timed_out || !status.success() {
            return Ok(cur.index + 1);
        }
        // make ended well but did not reach these: should not happen.
        for e in &entries[cur.index + 1..] {
            self.diag.error(format_args!(
                "{}: make ended without reaching it: see {}",
                e.path,
                make_log_path.display()
            ));
            self.finish_skipped(e, Reason::NotReached, &make_log_path)?;
        }
        Ok(entries.len())
    }

    /// Take a chunk of output: split it into lines and hand them on.
    fn take(
        &mut self,
        split: &mut Split,
        chunk: &[u8],
        problems: &mut Problems,
    ) -> Result<(), Error> {
        let mut rest = chunk;
        while let Some(nl) = rest.iter().position(|&b| b == b'\n') {
            let (line, tail) = rest.split_at(nl + 1);
            rest = tail;
            if split.carry.is_empty() {
                self.line(split, line, problems)?;
            } else {
                let mut l = std::mem::take(&mut split.carry);
                l.extend_from_slice(line);
                self.line(split, &l, problems)?;
            }
        }
        if !rest.is_empty() {
            split.carry.extend_from_slice(rest);
            // A line that never ends (a progress meter) still goes to the log.
            if split.carry.len() > 64 * 1024 {
                let l = std::mem::take(&mut split.carry);
                self.write(split, &l);
            }
        }
        if let Some(c) = split.cur.as_mut() {
            if let Some(log) = c.log.as_mut() {
                let _ = log.flush();
            }
        }
        Ok(())
    }

    /// One line of make's output, with its newline.
    fn line(
        &mut self,
        split: &mut Split,
        line: &[u8],
        problems: &mut Problems,
    ) -> Result<(), Error> {
        let text = line.strip_suffix(b"\n").unwrap_or(line);
        let text = text.strip_suffix(b"\r").unwrap_or(text);
        let found = std::str::from_utf8(text)
            .ok()
            .and_then(header)
            .and_then(|h| split.index.get(h).copied())
            .filter(|&i| i >= split.next);
        // An entry whose directory does not exist: make prints this instead of
        // a header, reports it in the problem log, and goes on.
        let broken = std::str::from_utf8(text)
            .ok()
            .and_then(broken_dependency)
            .and_then(|b| split.index.get(b).copied())
            .filter(|&i| i >= split.next);
        if let Some(i) = broken {
            self.end_current(split, problems)?;
            self.not_reached(split, i)?;
            let e = &split.entries[i];
            let log_path = self.batch.path(&log_name(&e.path, self.target));
            if let Err(err) = std::fs::write(&log_path, line) {
                self.diag
                    .error(format_args!("{}: {err}", log_path.display()));
            }
            // Its problem-log line is taken, so that no later entry does.
            problems.reported(&e.path);
            self.finish(
                e,
                Status::Failed,
                Some(Reason::NonExistent.as_str()),
                &log_path,
                0.0,
                &EntryScan::default(),
            )?;
            return Ok(());
        }
        let Some(i) = found else {
            if let Some(c) = split.cur.as_mut() {
                c.scan.see(text, split.work_line);
            }
            self.write(split, line);
            return Ok(());
        };
        // A new entry: the one before is done.
        self.end_current(split, problems)?;
        self.not_reached(split, i)?;
        if self.drain.asked() && !self.stop.load(std::sync::atomic::Ordering::Relaxed) {
            // Drained: stopped as by a signal, now that an entry is done; the
            // one make went on to is not journaled, a rerun builds it.
            self.diag.warn(format_args!(
                "drained: stopping before {} ({} of {} entries done)",
                split.entries[i].path, self.started, self.total
            ));
            self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        }
        split.next = i + 1;
        let e = &split.entries[i];
        let log_path = self.batch.path(&log_name(&e.path, self.target));
        let log = match File::create(&log_path) {
            Ok(f) => Some(BufWriter::with_capacity(16 * 1024, f)),
            Err(err) => {
                self.diag
                    .error(format_args!("{}: {err}", log_path.display()));
                None
            }
        };
        split.cur = Some(Current {
            index: i,
            log,
            log_path,
            start: Instant::now(),
            scan: EntryScan::default(),
        });
        self.started += 1;
        self.publish(&e.path);
        self.progress(&e.path, Instant::now(), None);
        self.write(split, line);
        Ok(())
    }

    /// The entry make was at is done: its record.
    fn end_current(&mut self, split: &mut Split, problems: &mut Problems) -> Result<(), Error> {
        if let Some(mut c) = split.cur.take() {
            let e = &split.entries[c.index];
            let scan = std::mem::take(&mut c.scan);
            let (st, reason) = if problems.reported(&e.path) {
                (Status::Failed, Some(Reason::Error.as_str()))
            } else {
                scan.outcome()
            };
            let seconds = c.start.elapsed().as_secs_f64();
            self.close_log(&mut c);
            self.finish(e, st, reason, &c.log_path, seconds, &scan)?;
        }
        Ok(())
    }

    /// make went past the entries before `i` without a word: skipped.
    fn not_reached(&mut self, split: &mut Split, i: usize) -> Result<(), Error> {
        let make_log_path = self.batch.path(batch::MAKE_LOG);
        for e in &split.entries[split.next..i] {
            self.diag.error(format_args!(
                "{}: make went past it: see {}",
                e.path,
                make_log_path.display()
            ));
            self.finish_skipped(e, Reason::NotReached, &make_log_path)?;
        }
        split.next = split.next.max(i + 1);
        Ok(())
    }

    /// Write output to the current entry's log, or to make.log before the first.
    fn write(&self, split: &mut Split, bytes: &[u8]) {
        let r = match split.cur.as_mut() {
            Some(c) => match c.log.as_mut() {
                Some(l) => l.write_all(bytes),
                None => Ok(()),
            },
            None => match split.make_log.as_mut() {
                Some(f) => f.write_all(bytes),
                None => Ok(()),
            },
        };
        if let Err(e) = r {
            if let Some(c) = split.cur.as_mut() {
                self.diag
                    .error(format_args!("{}: {e}", c.log_path.display()));
                c.log = None;
            } else {
                split.make_log = None;
            }
        }
    }

    /// A line of build-list's own in the current log.
    fn note(&self, split: &mut Split, text: &[u8]) {
        self.write(split, text);
        if let Some(c) = split.cur.as_mut() {
            if let Some(l) = c.log.as_mut() {
                let _ = l.flush();
            }
        }
    }

    fn close_log(&self, c: &mut Current) {
        if let Some(mut l) = c.log.take() {
            if let Err(e) = l.flush() {
                self.diag
                    .error(format_args!("{}: {e}", c.log_path.display()));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phases() {
        for (line, phase) in [
            ("===>  Checking files for curl-7.74.0", Some(Phase::Fetch)),
            (
                ">> Fetch https://curl.se/download/curl-7.74.0.tar.xz",
                Some(Phase::Fetch),
            ),
            (">> (SHA256) curl-7.74.0.tar.xz: OK", Some(Phase::Checksum)),
            (
                ">> Checksum mismatch for curl-7.74.0.tar.xz. (sha256)",
                Some(Phase::Checksum),
            ),
            (
                "===>  curl-7.74.0 depends on: nghttp2-* -> nghttp2-1.42.0",
                Some(Phase::Depends),
            ),
            (
                "===>  Verifying install for nghttp2-* in www/nghttp2",
                Some(Phase::Depends),
            ),
            ("===>  Extracting for curl-7.74.0", Some(Phase::Build)),
            ("===>  Configuring for curl-7.74.0", Some(Phase::Build)),
            ("===>  Building for curl-7.74.0", Some(Phase::Build)),
            (
                "===>  Faking installation for curl-7.74.0",
                Some(Phase::Fake),
            ),
            (
                "===>  Building package for curl-7.74.0",
                Some(Phase::Package),
            ),
            ("===> net/curl", None),
            ("cc -O2 -c lib/url.c", None),
        ] {
            assert_eq!(phase_of(line), phase, "{line}");
        }
    }
    use crate::ports::{broken_dependency, header, problem_entries};

    /// Split recorded output at its `===> <entry>` headers and scan each entry as
    /// build-list does: (entry, outcome, created), and the non existent entries.
    fn scan(
        output: &str,
    ) -> (
        Vec<(String, Status, Option<String>, Vec<String>)>,
        Vec<String>,
    ) {
        let mut v: Vec<(String, EntryScan)> = Vec::new();
        let mut broken = Vec::new();
        for line in output.lines() {
            if let Some(h) = header(line) {
                v.push((h.to_string(), EntryScan::default()));
            } else if let Some(b) = broken_dependency(line) {
                broken.push(b.to_string());
            } else if let Some((_, s)) = v.last_mut() {
                s.see(line.as_bytes(), b"===>  Building package for ");
            }
        }
        let v = v
            .into_iter()
            .map(|(e, s)| {
                let (st, why) = s.outcome();
                let why = why.map(str::to_string);
                (e, st, why, s.created.clone())
            })
            .collect();
        (v, broken)
    }

    /// What OpenBSD's make printed over the real tree (tests/fixtures/real-make):
    /// packages present (`Link to`, `Cleaning for`), present with bulk cookies
    /// (`is up to date`), a BROKEN port, a port for another arch, a directory
    /// that does not exist.
    #[test]
    fn the_real_make_output() {
        let want = vec![
            ("net/curl".to_string(), Status::UpToDate, None, vec![]),
            ("devel/quirks".to_string(), Status::UpToDate, None, vec![]),
            (
                "editors/vim,-lang".to_string(),
                Status::UpToDate,
                None,
                vec![],
            ),
            (
                "x11/kde-applications/lokalize".to_string(),
                Status::Ignored,
                Some("is marked as broken: Depends on Qt 5.14+".to_string()),
                vec![],
            ),
            (
                "devel/fasm".to_string(),
                Status::Ignored,
                Some("is only for i386, not amd64 (x86_64)".to_string()),
                vec![],
            ),
        ];
        for (name, text) in [
            (
                "package",
                include_str!("../../../tests/fixtures/real-make/package.out"),
            ),
            (
                "package-again",
                include_str!("../../../tests/fixtures/real-make/package-again.out"),
            ),
        ] {
            let (entries, broken) = scan(text);
            assert_eq!(entries, want, "{name}");
            assert_eq!(broken, ["www/nonexistent"], "{name}");
        }
        // The problem log names the non existent entry, and only it.
        let problems = include_str!("../../../tests/fixtures/real-make/package.problems");
        assert_eq!(problem_entries(problems), ["www/nonexistent"]);
        assert!(reported_in(problems, "www/nonexistent"));
        assert!(!reported_in(problems, "net/curl"));
    }

    /// A build's output as bsd.port.mk prints it (its lines 2141-2142 in the
    /// tree of the kit): `===>  Building package for` and `Create <cookie>`, once
    /// per subpackage, dependencies built on the way included.
    #[test]
    fn a_build_with_a_dependency() {
        let out = "===> net/curl\n\
                   ===>  Verifying install for libfoo in devel/libfoo\n\
                   ===>  Building package for libfoo-1.0\n\
                   Create /build/packages/amd64/all/libfoo-1.0.tgz\n\
                   ===>  Building package for curl-7.74.0\n\
                   Create /build/packages/amd64/all/curl-7.74.0.tgz\n\
                   Create /build/packages/amd64/all/../../etc/x\n\
                   Link to /build/packages/amd64/ftp/curl-7.74.0.tgz\n";
        let (entries, _) = scan(out);
        assert_eq!(
            entries,
            [(
                "net/curl".to_string(),
                Status::Built,
                None,
                vec!["libfoo-1.0.tgz".to_string(), "curl-7.74.0.tgz".to_string()]
            )]
        );
    }

    fn reported_in(problems: &str, entry: &str) -> bool {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("problems");
        std::fs::write(&p, problems).unwrap();
        Problems::new(&p).reported(entry)
    }

    /// make runs ahead of the reading of its output: the look for one entry
    /// finds the line of a later one, which is still there at its turn.
    #[test]
    fn a_problem_read_early_is_kept_for_its_entry() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("problems");
        std::fs::write(&p, "nope/gone (package)\ndevel/broken (package)\n").unwrap();
        let mut problems = Problems::new(&p);
        assert!(problems.reported("nope/gone"));
        assert!(!problems.reported("misc/plain"));
        assert!(problems.reported("devel/broken"));
        assert!(!problems.reported("devel/broken"), "taken once");
        let mut f = std::fs::OpenOptions::new().append(true).open(&p).unwrap();
        std::io::Write::write_all(&mut f, b"net/tor (package)\nnet/cu").unwrap();
        assert!(problems.reported("net/tor"));
        assert!(!problems.reported("net/curl"), "a line being written");
    }
}
