//! build-list: build a list of full pkgpaths with one make, one `build` record per
//! entry.
//!
//! The list (port records or plain pkgpaths) is validated, deduplicated and given
//! to one `make package BULK=yes SUBDIRLIST=<file> REPORT_PROBLEM_LOGFILE=<file>`
//! (DESIGN.md section 4) in its own process group.  Its output is split at the
//! `===> <fullpkgpath>` headers into one log per entry under
//! `<log-dir>/<batch>/`; each entry gets its record as soon as the next header
//! (or make's exit) ends it, after it was appended to the batch's journal, so that
//! a rerun of the batch after a crash re-emits what finished and builds only the
//! rest.  An entry silent for `--silent-timeout` is killed with make's whole
//! process group, and make starts again over the entries after it.

pub(crate) mod batch;
mod make;
mod plan;

use std::collections::{HashMap, HashSet};
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use crate::diag::{Diag, Exit, Loc};
use crate::host::{Host, HostArgs};
use crate::jsonl::{Inputs, Item, Output};
use crate::pkgpath::PkgPath;
use crate::record::{Kind, Level, Reason, Record};
use crate::time::clock;
use crate::Error;

use batch::{Batch, Opened};

pub const TOOL: &str = "build-list";

/// The make target run over the list, and what happened to an entry.
pub use crate::record::{BuildStatus as Status, BuildTarget as Target};

/// Build a list of full pkgpaths with one make, one record per entry.
#[derive(clap::Parser, Debug)]
#[command(name = "build-list", version, max_term_width = 100)]
pub struct Args {
    /// The make target: package (build the packages) or fetch (the distfiles only).
    #[arg(long, value_enum, value_name = "TARGET", default_value_t = Target::Package)]
    pub target: Target,
    /// A port built again every run, such as databases/sqlports (repeatable); its
    /// package files are removed first.
    #[arg(long, value_name = "PKGPATH")]
    pub also: Vec<String>,
    /// Put NAME=VALUE on make's command line, for every make build-list runs
    /// (repeatable): `--make-var PKG_PATH=/var/empty --make-var FETCH_PACKAGES=`
    /// takes dependencies from the local repository only, as the -stable scripts do.
    #[arg(long = "make-var", value_name = "NAME=VALUE", value_parser = parse_make_var)]
    pub make_var: Vec<(String, String)>,
    /// Where the log directories of the batches go [default: PORTSDIR/logs/MACHINE_ARCH].
    #[arg(long, value_name = "DIR")]
    pub log_dir: Option<PathBuf>,
    /// Archive (BATCH.tar.gz) and remove the log directories of batches last
    /// written more than DAYS days ago.
    #[arg(long, value_name = "DAYS", default_value = "21")]
    pub keep_logs: u32,
    /// Kill an entry whose make prints nothing for this long (30s, 10m, 2h).
    #[arg(long, value_name = "DURATION", value_parser = crate::time::parse_duration)]
    pub silent_timeout: Option<Duration>,
    /// Dry run: print what would be built, as skipped records; run nothing.
    #[arg(short = 'n', long = "dry-run")]
    pub dry_run: bool,
    /// Print the full pkgpaths that built or were up to date, one a line, instead
    /// of records (the input of collect-built -t).
    #[arg(short = 't', long = "text")]
    pub text: bool,
    #[command(flatten)]
    pub host: HostArgs,
    /// Inputs: port records or full pkgpaths, one a line; standard input when none.
    #[arg(value_name = "FILE")]
    pub files: Vec<PathBuf>,
}

pub fn main() -> std::process::ExitCode {
    crate::diag::tool_main(TOOL, run)
}

/// The batch id made when none is given: the time, then a hash of the target,
/// the arch and the sorted entries: `20261121-101500-3f2a9c1b`.
pub fn default_batch_id(now: SystemTime, target: Target, arch: &str, entries: &[Entry]) -> String {
    let mut v: Vec<&[u8]> = entries.iter().map(|e| e.path.as_bytes()).collect();
    v.sort_unstable();
    let mut parts = vec![target.as_str().as_bytes(), arch.as_bytes()];
    parts.extend(v);
    crate::host::new_batch_id(now, &parts)
}

/// One entry of the list: a canonical full pkgpath.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    pub path: String,
    /// Named by --also: built again every run.
    pub also: bool,
}

/// The list, deduplicated, in first-seen order.
#[derive(Default)]
struct List {
    entries: Vec<Entry>,
    seen: HashSet<String>,
}

impl List {
    fn add(&mut self, path: String, also: bool) {
        if self.seen.insert(path.clone()) {
            self.entries.push(Entry { path, also });
        } else if also {
            if let Some(e) = self.entries.iter_mut().find(|e| e.path == path) {
                e.also = true;
            }
        }
    }
}

/// What the make runs share: where records go and how entries end.
pub(crate) struct Runner<'a> {
    target: Target,
    host: &'a Host,
    diag: &'a Diag,
    batch: &'a mut Batch,
    out: &'a mut Output,
    timeout: Option<Duration>,
    /// Progress on a terminal.
    ticking: bool,
    /// Entries started or finished, for the progress line.
    started: usize,
    total: usize,
    /// Set by SIGTERM, SIGINT or SIGHUP: stop make and everything it runs.
    stop: Arc<AtomicBool>,
    /// A drain was asked (see [`Drain`]): stop when the entry at work is done.
    drain: Drain,
    /// Entries failed so far, for the progress line.
    failed: usize,
    /// The entries not finished yet, and how long each took in earlier
    /// batches: the time left.
    left: HashSet<String>,
    earlier: HashMap<String, f64>,
    /// Where the entry at work is told, for `build-trigger status`.
    published: Option<PathBuf>,
}

/// The spool of the build-trigger that runs this build-list
/// (PORTFLOW_SPOOL), when it does.
fn trigger_spool() -> Option<crate::build_trigger::spool::Spool> {
    let dir =
        std::env::var_os(crate::build_trigger::chain::BATCH_VARS[1]).filter(|s| !s.is_empty())?;
    crate::build_trigger::spool::Spool::existing(Path::new(&dir)).ok()
}

/// Under build-trigger, for its batch (PORTFLOW_BATCH): where
/// `build-trigger status` reads the entry at work.
fn published_progress(id: &str) -> Option<PathBuf> {
    let batch = std::env::var(crate::build_trigger::chain::BATCH_VARS[0]).ok()?;
    (batch == id)
        .then(trigger_spool)
        .flatten()
        .map(|s| s.progress_file(id))
}

/// A drain: build-list stops once the entry at work is done, as a stop does
/// (the entry make went on to is not journaled), leaving the batch to be
/// resumed.  Asked by SIGUSR1, or by the file `drain` in the spool of the
/// build-trigger that runs it (`PORTFLOW_SPOOL`), which `build-trigger drain`
/// makes.
pub(crate) struct Drain {
    signal: Arc<AtomicBool>,
    file: Option<PathBuf>,
}

impl Drain {
    fn install() -> Result<Drain, Error> {
        let signal = Arc::new(AtomicBool::new(false));
        signal_hook::flag::register(signal_hook::consts::SIGUSR1, Arc::clone(&signal))
            .map_err(Error::system("catch SIGUSR1"))?;
        let file = trigger_spool().map(|s| s.drain_file());
        Ok(Drain { signal, file })
    }

    pub(crate) fn asked(&self) -> bool {
        self.signal.load(Ordering::Relaxed) || self.file.as_deref().is_some_and(Path::exists)
    }
}

impl Runner<'_> {
    /// An entry is done: journal its record, then write it.
    fn finish(
        &mut self,
        e: &Entry,
        status: Status,
        reason: Option<&str>,
        log: &Path,
        seconds: f64,
        scan: &make::EntryScan,
    ) -> Result<(), Error> {
        self.left.remove(&e.path);
        if status == Status::Failed {
            self.failed += 1;
        }
        let mut r = build_record(self.host, self.target, e, status, reason, log, seconds);
        if !scan.created.is_empty() {
            r.set("created", scan.created.as_slice());
        }
        if let (Status::Failed, Some(p)) = (status, scan.phase) {
            r.set("phase", p);
        }
        if status == Status::Failed {
            // The end of the log travels in the record: whoever reads it (the
            // mail, on another host) never opens a file a record names.
            match crate::tail::log_lines(log, crate::tail::MAX_LINES) {
                Ok(t) => r.set("tail", t),
                Err(err) => self.diag.error(format_args!(
                    "{}: {err}: no log tail in its record",
                    log.display()
                )),
            }
        }
        if status != Status::Skipped {
            if let Err(err) = self.batch.journal(&r) {
                self.diag.error(format_args!(
                    "{}: {err}: {} will be built again by a rerun",
                    self.batch.path(batch::JOURNAL).display(),
                    e.path
                ));
            }
        }
        report(self.diag, &r);
        self.out.record(&r)
    }

    fn finish_skipped(&mut self, e: &Entry, reason: Reason, log: &Path) -> Result<(), Error> {
        self.finish(
            e,
            Status::Skipped,
            Some(reason.as_str()),
            log,
            0.0,
            &make::EntryScan::default(),
        )
    }

    /// Tell build-trigger's status the entry at work (best effort).
    fn publish(&self, entry: &str) {
        if let Some(p) = &self.published {
            let mut r = Record::new(Kind::Spool);
            r.set("entry", entry);
            r.set("n", self.started);
            r.set("of", self.total);
            r.set("failures", self.failed);
            let _ = crate::atomic::write_atomic(p, format!("{}\n", r.to_line()).as_bytes());
        }
    }

    /// The progress line of a terminal: entry n of N, the pkgpath and its
    /// phase, how long it has been at it, the failures so far, and the time
    /// left as earlier batches took.
    fn progress(&self, entry: &str, since: Instant, phase: Option<crate::record::Phase>) {
        if !self.ticking {
            return;
        }
        let elapsed = since.elapsed().as_secs_f64();
        let mut line = format!("{} of {}: {entry}", self.started, self.total);
        if let Some(p) = phase {
            line.push_str(&format!(" ({p})"));
        }
        line.push_str(&format!(" {}", clock(elapsed)));
        if self.failed > 0 {
            line.push_str(&format!(", {} failed", self.failed));
        }
        if let Some(left) = self.time_left(entry, elapsed) {
            line.push_str(&format!(", about {} left", clock(left)));
        }
        self.diag.progress(line);
    }

    /// The time the entries not finished need, as earlier batches took them
    /// (the mean of those for one never built before); none without history.
    fn time_left(&self, current: &str, elapsed: f64) -> Option<f64> {
        if self.earlier.is_empty() {
            return None;
        }
        let mean = self.earlier.values().sum::<f64>() / self.earlier.len() as f64;
        let est = |p: &str| self.earlier.get(p).copied().unwrap_or(mean);
        let rest: f64 = self
            .left
            .iter()
            .filter(|p| p.as_str() != current)
            .map(|p| est(p))
            .sum();
        Some(rest + (est(current) - elapsed).max(0.0))
    }
}

fn build_record(
    host: &Host,
    target: Target,
    e: &Entry,
    status: Status,
    reason: Option<&str>,
    log: &Path,
    seconds: f64,
) -> Record {
    let mut r = Record::new(Kind::Build);
    r.set("fullpkgpath", e.path.as_str());
    r.set("target", target);
    r.set("status", status);
    if let Some(why) = reason {
        r.set("reason", why);
    }
    r.set("log", log.to_string_lossy().into_owned());
    r.set("seconds", (seconds * 1000.0).round() / 1000.0);
    host.stamp(&mut r);
    r
}

/// A failure or an entry left out is said on stderr too (cron mails it).
fn report(diag: &Diag, r: &Record) {
    let path = r.str("fullpkgpath").unwrap_or("");
    let reason = r.str("reason").unwrap_or("");
    let log = r.str("log").unwrap_or("");
    if r.word("status") == Some(Status::Failed) {
        diag.error(format_args!("{path}: failed ({reason}), log {log}"));
    }
}

/// A `--make-var`: `NAME=VALUE`, NAME a variable name that build-list does not
/// own (BULK, REPORT_PROBLEM_LOGFILE) and that may go on make's command line
/// (not SUBDIRLIST, FLAVOR, SUBPACKAGE or SUBDIR, which bsd.port.mk refuses
/// there), VALUE one line.
pub fn parse_make_var(s: &str) -> Result<(String, String), String> {
    let (k, v) = crate::host::parse_env(s)?;
    if crate::ports::ENV_ONLY.contains(&k.as_str()) {
        return Err(format!(
            "{k} cannot go on make's command line (bsd.port.mk refuses it there)"
        ));
    }
    if matches!(k.as_str(), "BULK" | "REPORT_PROBLEM_LOGFILE") {
        return Err(format!("{k} is build-list's own"));
    }
    if v.contains(['\n', '\0']) {
        return Err(format!("{k}: the value is more than one line"));
    }
    Ok((k, v))
}

pub fn run(args: &Args, diag: &Diag) -> Result<Exit, Error> {
    let given: Vec<(&str, PathBuf)> = args
        .make_var
        .iter()
        .map(|(k, v)| (k.as_str(), PathBuf::from(v)))
        .collect();
    let given: Vec<(&str, &PathBuf)> = given.iter().map(|(k, v)| (*k, v)).collect();
    let mut host = args.host.resolve_with(&given)?;
    let target = args.target;
    let mut also = Vec::new();
    for a in &args.also {
        match PkgPath::parse(a) {
            Ok(p) => also.push(p.to_string()),
            Err(e) => return Err(Error::Usage(format!("--also: {e}"))),
        }
    }
    let log_root = match &args.log_dir {
        Some(d) => d.clone(),
        None => args.host.ports_dir.join("logs").join(&host.arch),
    };
    let log_root = std::path::absolute(&log_root)
        .map_err(|e| Error::Usage(format!("{}: {e}", log_root.display())))?;

    let mut out = Output::stdout().flush_each(true);
    if args.text {
        out = text_view(out, diag);
    }
    let (mut list, notices) = read_list(args, &mut host, &mut out, diag)?;
    let empty = list.entries.is_empty();
    if !empty {
        for a in also {
            list.add(a, true);
        }
    }
    let entries = list.entries;
    // No batch id is made up for a run that builds nothing.
    if host.batch.is_none() && !empty {
        host.batch = Some(default_batch_id(
            SystemTime::now(),
            target,
            &host.arch,
            &entries,
        ));
    }
    for mut n in notices {
        host.stamp(&mut n);
        out.record(&n)?;
    }
    let Some(id) = host.batch.clone().filter(|_| !empty) else {
        out.flush()?;
        return Ok(diag.finish(Exit::NothingToDo));
    };
    if args.dry_run {
        dry_run(&host, target, &log_root.join(&id), &entries, &mut out, diag)?;
        out.flush()?;
        return Ok(diag.finish(Exit::Success));
    }

    // A log directory that cannot be used is a fatal error of the host's
    // setup (exit 2), not a failed port: nothing is built without a journal.
    let opened = Batch::open(&log_root, &id, diag).map_err(|e| match e {
        Error::Io { .. } => Error::Usage(format!(
            "{e}: the batch's log directory cannot be used: nothing built"
        )),
        e => e,
    })?;
    let mut batch = match opened {
        Opened::Ready(b) => b,
        Opened::Busy => return Ok(Exit::TempFail),
    };
    batch::remove_old(&log_root, args.keep_logs, &id, diag);
    let (pending, resumed) = resume(&host, target, &id, &batch, &entries, &mut out, diag)?;
    let stop = catch_stop()?;
    if target == Target::Package {
        clean_also(&host, &batch, &pending, diag);
    }

    let mut runner = Runner {
        target,
        host: &host,
        diag,
        batch: &mut batch,
        out: &mut out,
        timeout: args.silent_timeout,
        ticking: std::io::stderr().is_terminal(),
        started: resumed,
        total: entries.len(),
        stop: Arc::clone(&stop),
        drain: Drain::install()?,
        failed: 0,
        left: pending.iter().map(|e| e.path.clone()).collect(),
        earlier: if std::io::stderr().is_terminal() {
            batch::earlier_seconds(&log_root, &id, 5)
        } else {
            HashMap::new()
        },
        published: published_progress(&id),
    };
    let mut rest = &pending[..];
    while !rest.is_empty() {
        if stop.load(Ordering::Relaxed) || runner.drain.asked() {
            return Err(stopped(&runner.batch.dir, runner.drain.asked()));
        }
        let n = runner.invocation(rest)?;
        rest = &rest[n.clamp(1, rest.len())..];
    }
    out.flush()?;
    Ok(diag.finish(Exit::Success))
}

/// `-t`: the full pkgpaths built or up to date, one a line; warning and error
/// notices to stderr.
fn text_view(out: Output, diag: &Diag) -> Output {
    let diag = diag.clone();
    out.text_view(move |r| {
        crate::jsonl::notice_to_stderr(&diag, r);
        let ok = matches!(r.word("status"), Some(Status::Built | Status::UpToDate));
        (r.is(Kind::Build) && ok)
            .then(|| r.str("fullpkgpath").map(str::to_string))
            .flatten()
    })
}

/// Read the input: records pass on (a batch record gives the batch), port
/// records and plain lines make the list.  Bad entries are said and give
/// error notices, returned.
fn read_list(
    args: &Args,
    host: &mut Host,
    out: &mut Output,
    diag: &Diag,
) -> Result<(List, Vec<Record>), Error> {
    let mut list = List::default();
    let mut notices = Vec::new();
    Inputs::new(&args.files).for_each(diag, |item, loc: &Loc| {
        let given = match item {
            Item::Record(r) => {
                // Nothing is built yet: a bad batch record stops the run (exit 2).
                host.learn_batch(&r)
                    .map_err(|e| Error::Usage(format!("{loc}: {e}: nothing built")))?;
                let given = if r.is(Kind::Port) {
                    let field = if r.get("fullpkgpath").is_some() {
                        "fullpkgpath"
                    } else {
                        "pkgpath"
                    };
                    match r.require_str(field) {
                        Ok(s) => Some(s.to_string()),
                        Err(e) => {
                            diag.error_at(loc, format_args!("{e}; not built"));
                            notices.push(Record::notice(
                                TOOL,
                                Level::Error,
                                format!("{loc}: {e}: not built"),
                            ));
                            None
                        }
                    }
                } else {
                    None
                };
                out.record(&r)?;
                given
            }
            Item::Text(t) => Some(t),
        };
        if let Some(g) = given {
            match PkgPath::parse(&g) {
                Ok(p) => list.add(p.to_string(), false),
                Err(e) => {
                    diag.error_at(loc, &e);
                    notices.push(Record::notice(
                        TOOL,
                        Level::Error,
                        format!("{e}: not built"),
                    ));
                }
            }
        }
        Ok(())
    })?;
    Ok((list, notices))
}

/// `-n`: what a real run would do, nothing done: the journaled records of
/// batch directory `dir` first (a rerun of the batch writes them again), then
/// for each entry still to build a `skipped` (`dry-run`) record with its
/// `plan`, as make decides it (see [`plan`]): `build` and the package files it
/// would make, `fetch`, `up-to-date`, `ignored` or `fail`, and the distfiles
/// it would fetch.
fn dry_run(
    host: &Host,
    target: Target,
    dir: &Path,
    entries: &[Entry],
    out: &mut Output,
    diag: &Diag,
) -> Result<(), Error> {
    let done = batch::read_journal(dir, diag)?;
    let key = |e: &Entry| batch::Key::new(&e.path, target, &host.arch);
    for r in entries.iter().filter_map(|e| done.get(&key(e))) {
        report(diag, r);
        out.record(r)?;
    }
    let pending: Vec<Entry> = entries
        .iter()
        .filter(|e| !done.contains_key(&key(e)))
        .cloned()
        .collect();
    if pending.is_empty() {
        return Ok(());
    }
    let plans = plan::ask(host, target, &pending)?;
    for e in &pending {
        let log = dir.join(batch::log_name(&e.path, target));
        let mut r = build_record(
            host,
            target,
            e,
            Status::Skipped,
            Some(Reason::DryRun.as_str()),
            &log,
            0.0,
        );
        if let Some(p) = plans.get(&e.path) {
            r.set("plan", p.plan);
            if !p.packages.is_empty() {
                r.set("packages", p.packages.as_slice());
            }
            if !p.distfiles.is_empty() {
                r.set("distfiles", p.distfiles.as_slice());
            }
            if let Some(why) = &p.why {
                r.set("why", why.as_str());
            }
        }
        out.record(&r)?;
    }
    Ok(())
}

/// What finished before (a crash, a rerun of the batch) comes out again as it
/// was; the rest is to build: returned, with how many had finished.
fn resume(
    host: &Host,
    target: Target,
    id: &str,
    batch: &Batch,
    entries: &[Entry],
    out: &mut Output,
    diag: &Diag,
) -> Result<(Vec<Entry>, usize), Error> {
    let mut pending = Vec::new();
    let mut resumed = 0;
    for e in entries {
        match batch
            .done
            .get(&batch::Key::new(&e.path, target, &host.arch))
        {
            Some(r) => {
                resumed += 1;
                report(diag, r);
                out.record(r)?;
            }
            None => pending.push(e.clone()),
        }
    }
    if resumed > 0 && !pending.is_empty() {
        diag.warn(format_args!(
            "batch {id}: {resumed} of {} entries finished in an earlier run (journal {}); building the other {}",
            entries.len(),
            batch.path(batch::JOURNAL).display(),
            pending.len()
        ));
    }
    Ok((pending, resumed))
}

/// A stop (SIGTERM from build-trigger, a shutdown, ^C) stops make and all it
/// started; the entry it was at is not journaled, a rerun builds it.
fn catch_stop() -> Result<Arc<AtomicBool>, Error> {
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [
        signal_hook::consts::SIGTERM,
        signal_hook::consts::SIGINT,
        signal_hook::consts::SIGHUP,
    ] {
        signal_hook::flag::register(sig, Arc::clone(&stop))
            .map_err(Error::system("catch SIGTERM, SIGINT and SIGHUP"))?;
    }
    Ok(stop)
}

/// The error of a run stopped by a signal, or drained.
pub(crate) fn stopped(dir: &Path, drained: bool) -> Error {
    let how = if drained {
        "drained: the entries done are journaled"
    } else {
        "stopped by a signal; make and what it ran are stopped"
    };
    Error::Stopped(format!(
        "{how}: run the batch again to go on ({})",
        dir.display()
    ))
}

/// Make the --also entries about to be built really build again, as the -stable
/// scripts do: `make clean=all` over them (which removes their package files
/// wherever the host's repository keeps them, no-arch/ included).
fn clean_also(host: &Host, batch: &Batch, pending: &[Entry], diag: &Diag) {
    let also: Vec<&str> = pending
        .iter()
        .filter(|e| e.also)
        .map(|e| e.path.as_str())
        .collect();
    if also.is_empty() {
        return;
    }
    let run = || -> Result<(), Error> {
        let list = crate::ports::SubdirList::new_in(&batch.dir, &also)?;
        let problems = batch.path(batch::ALSO_PROBLEMS);
        std::fs::write(&problems, "").map_err(|e| Error::io(&problems, e))?;
        let log = batch.path(batch::MAKE_LOG);
        let log_file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .map_err(|e| Error::io(&log, e))?;
        let err_file = log_file.try_clone().map_err(|e| Error::io(&log, e))?;
        let status = host
            .tree
            .command("clean", &list, &problems, &[("clean", "all")])
            .stdin(std::process::Stdio::null())
            .stdout(log_file)
            .stderr(err_file)
            .status()
            .map_err(|e| host.tree.spawn_error(e))?;
        let text = std::fs::read_to_string(&problems).map_err(|e| Error::io(&problems, e))?;
        let failed = crate::ports::problem_entries(&text);
        if !status.success() || !failed.is_empty() {
            return Err(Error::Command {
                program: host.tree.make().to_string_lossy().into_owned(),
                message: format!(
                    "clean=all failed ({status}{}{}): see {}",
                    if failed.is_empty() { "" } else { "; " },
                    failed.join(", "),
                    log.display()
                ),
            });
        }
        Ok(())
    };
    if let Err(e) = run() {
        diag.warn(format_args!("--also: {e}: they may not be built again"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batch_ids_depend_on_the_list_not_its_order() {
        let e = |p: &str| Entry {
            path: p.into(),
            also: false,
        };
        let t = std::time::UNIX_EPOCH + Duration::from_secs(1_795_000_000);
        let a = default_batch_id(t, Target::Package, "amd64", &[e("net/curl"), e("net/tor")]);
        let b = default_batch_id(t, Target::Package, "amd64", &[e("net/tor"), e("net/curl")]);
        let c = default_batch_id(t, Target::Fetch, "amd64", &[e("net/tor"), e("net/curl")]);
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert!(a.starts_with("20261118-110640-"), "{a}");
        assert!(crate::host::check_batch(&a).is_ok());
    }
}
