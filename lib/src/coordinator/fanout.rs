//! Fan out and join: `build-trigger submit`, then `build-trigger wait`, on every
//! target at once, each in a thread of its own, locally or over ssh.  The join
//! selects over the targets' results and their deadlines (crossbeam); a target
//! past its deadline is given up (its wait is killed) and gets a `timeout`
//! record, so that one hung host never holds the mail back.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{at, bounded, Receiver, Select};

use super::config::{Target, BUILD_TRIGGER};
use super::{append, program, BatchDir, Coordinator};
use crate::record::{BuildStatus, Kind, Level, Record, SpoolState, TargetStatus};
use crate::Error;

/// ssh's exit status when it could not connect or lost the connection.
const SSH_FAILED: i32 = 255;
/// build-trigger wait's exit status when its own --timeout expired.
const WAIT_TIMEOUT: i32 = 75;
/// How often a submit is tried when ssh cannot connect.
const SUBMIT_TRIES: usize = 3;
/// The pause before ssh is tried again.
const RETRY_PAUSE: Duration = Duration::from_secs(3);
/// How often a running child is looked at.
const POLL: Duration = Duration::from_millis(50);
/// What the remote wait's own --timeout adds to the deadline left, so that the
/// coordinator's deadline ends it first and the remote one ends it anyway.
const REMOTE_SLACK: u64 = 5;

/// How a target ended.
#[derive(Debug)]
struct Ended {
    status: TargetStatus,
    message: String,
}

/// What a target's thread shares with the join.
struct Shared {
    /// Set by the join at the deadline: kill the child and stop.
    cancel: AtomicBool,
    /// The last ssh failed to connect (the target is unreachable so far).
    unreachable: AtomicBool,
    /// What `build-trigger status` last said of the batch there, for the live
    /// view (a terminal only).
    seen: std::sync::Mutex<String>,
}

/// The directory of the targets' files in the batch directory: a target's name
/// never meets the batch's own files (a target named `targets`, `list` or
/// `fetch`).
pub const TARGET_DIR: &str = "target";

/// The records file and log of a target: `target/<name>.jsonl`, `.log`.
pub fn records_file(b: &BatchDir, name: &str) -> PathBuf {
    b.path(TARGET_DIR).join(format!("{name}.jsonl"))
}

pub fn log_file(b: &BatchDir, name: &str) -> PathBuf {
    b.path(TARGET_DIR).join(format!("{name}.log"))
}

/// A target's thread as the join sees it: when it started, what it shares,
/// where its result comes.
struct Started {
    start: Instant,
    shared: Arc<Shared>,
    rx: Receiver<Ended>,
    handle: std::thread::JoinHandle<()>,
}

/// Every target at once; returns one `target` record per target, in the order
/// of the configuration, also written to targets.jsonl.
pub fn fan_out(c: &Coordinator<'_>, b: &BatchDir) -> Result<Vec<Record>, Error> {
    let dir = b.path(TARGET_DIR);
    std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
    let started = c
        .cfg
        .targets
        .iter()
        .map(|t| start_target(c, b, t))
        .collect::<Result<Vec<_>, _>>()?;
    let results = join(c, b, &started);
    for s in started {
        let _ = s.handle.join();
    }
    let mut records = Vec::with_capacity(results.len());
    let mut text = String::new();
    for (t, (ended, secs)) in c.cfg.targets.iter().zip(results) {
        let rec = target_record(c, b, t, ended, secs);
        text.push_str(&rec.to_line());
        text.push('\n');
        records.push(rec);
    }
    super::write_atomic(&b.path("targets.jsonl"), text.as_bytes())?;
    Ok(records)
}

/// Hand the batch to target `t` in a thread of its own.
fn start_target(c: &Coordinator<'_>, b: &BatchDir, t: &Target) -> Result<Started, Error> {
    let (tx, rx) = bounded::<Ended>(1);
    let shared = Arc::new(Shared {
        cancel: AtomicBool::new(false),
        unreachable: AtomicBool::new(false),
        seen: std::sync::Mutex::new(String::new()),
    });
    let start = Instant::now();
    let job = Job {
        target: t.clone(),
        batch: b.id.clone(),
        list: b.path(super::list::LIST),
        records: records_file(b, &t.name),
        log: log_file(b, &t.name),
        program: trigger_program(t),
        env: c.cfg.env.clone(),
        start,
        deadline: start + t.deadline,
        shared: shared.clone(),
    };
    let handle = std::thread::Builder::new()
        .name(format!("target {}", t.name))
        .spawn(move || {
            let ended = job.run();
            let _ = tx.send(ended);
        })
        .map_err(Error::system("start a thread"))?;
    Ok(Started {
        start,
        shared,
        rx,
        handle,
    })
}

/// The join: each target's result or its deadline, whichever comes first;
/// with the seconds it took.
fn join(c: &Coordinator<'_>, b: &BatchDir, started: &[Started]) -> Vec<(Ended, f64)> {
    let n = started.len();
    let timers: Vec<Receiver<Instant>> = c
        .cfg
        .targets
        .iter()
        .zip(started)
        .map(|(t, s)| at(s.start + t.deadline))
        .collect();
    let mut results: Vec<Option<(Ended, f64)>> = (0..n).map(|_| None).collect();
    let mut sel = Select::new();
    // Operation index -> (target, is_deadline)
    let mut ops = Vec::with_capacity(2 * n);
    for (i, s) in started.iter().enumerate() {
        ops.push((i, false, sel.recv(&s.rx)));
        ops.push((i, true, sel.recv(&timers[i])));
    }
    let mut left = n;
    let over = Arc::new(AtomicBool::new(false));
    if c.tty {
        watch_targets(c, b, started, &over);
    }
    while left > 0 {
        if c.tty {
            live_view(c, b, started, &results);
        }
        let op = if c.tty {
            match sel.select_timeout(VIEW_EVERY) {
                Ok(op) => op,
                Err(_) => continue,
            }
        } else {
            sel.select()
        };
        let idx = op.index();
        let Some(&(i, is_deadline, _)) = ops.iter().find(|o| o.2 == idx) else {
            continue;
        };
        let s = &started[i];
        let ended = if is_deadline {
            let _ = op.recv(&timers[i]);
            past_deadline(&c.cfg.targets[i], &s.shared)
        } else {
            op.recv(&s.rx).unwrap_or_else(|_| Ended {
                status: TargetStatus::Failed,
                message: "the target's thread ended without a result".into(),
            })
        };
        // Both operations of the target are done with.
        for o in ops.iter().filter(|o| o.0 == i) {
            sel.remove(o.2);
        }
        ops.retain(|o| o.0 != i);
        results[i] = Some((ended, s.start.elapsed().as_secs_f64()));
        left -= 1;
    }
    over.store(true, Ordering::SeqCst);
    results
        .into_iter()
        .map(|r| {
            r.unwrap_or((
                Ended {
                    status: TargetStatus::Failed,
                    message: "no result".into(),
                },
                0.0,
            ))
        })
        .collect()
}

/// How often the live view is drawn again.
const VIEW_EVERY: Duration = Duration::from_secs(1);
/// How often each target is asked what it is at, for the live view.
const LOOK_EVERY: Duration = Duration::from_secs(3);
/// How long one such look may take.
const LOOK_LIMIT: Duration = Duration::from_secs(20);

/// On a terminal: ask every target still at work what its batch is at
/// (`build-trigger status`, over ssh as the run reaches it), every few
/// seconds, until `over`; in a thread of its own.
fn watch_targets(c: &Coordinator<'_>, b: &BatchDir, started: &[Started], over: &Arc<AtomicBool>) {
    let jobs: Vec<(Target, Arc<Shared>)> = c
        .cfg
        .targets
        .iter()
        .cloned()
        .zip(started.iter().map(|s| Arc::clone(&s.shared)))
        .collect();
    let (env, id, over) = (c.cfg.env.clone(), b.id.clone(), Arc::clone(over));
    let _ = std::thread::Builder::new()
        .name("live view".into())
        .spawn(move || {
            while !over.load(Ordering::SeqCst) {
                for (t, shared) in &jobs {
                    if over.load(Ordering::SeqCst) || shared.cancel.load(Ordering::SeqCst) {
                        continue;
                    }
                    let seen = look(t, &env, &id);
                    if let Ok(mut s) = shared.seen.lock() {
                        *s = seen;
                    }
                }
                let until = Instant::now() + LOOK_EVERY;
                while Instant::now() < until && !over.load(Ordering::SeqCst) {
                    std::thread::sleep(POLL * 4);
                }
            }
        });
}

/// What `build-trigger status` says of batch `id` on target `t`: the stage
/// at work, entry n of N and the failures so far; queued; or why it said
/// nothing.  One line: it comes from the build host.
fn look(t: &Target, env: &[(String, String)], id: &str) -> String {
    let found = match super::status::ask(t, env, LOOK_LIMIT) {
        Ok(found) => found,
        Err(m) => return crate::tail::one_line(&m),
    };
    let Some(r) = found
        .into_iter()
        .find(|r| r.is(Kind::Spool) && r.str("batch") == Some(id))
    else {
        return String::new();
    };
    let mut v = match r.word::<SpoolState>("state") {
        Some(SpoolState::New) => "queued".to_string(),
        _ => r.str("stage").unwrap_or("starting").to_string(),
    };
    if let (Some(e), Some(n), Some(of)) = (r.str("entry"), r.get("n"), r.get("of")) {
        v.push_str(&format!(" {n}/{of} {e}"));
    }
    if let Some(f) = r.get("failures").and_then(serde_json::Value::as_u64) {
        if f > 0 {
            v.push_str(&format!(", {f} failed"));
        }
    }
    if r.get("running").and_then(serde_json::Value::as_bool) == Some(false) {
        v.push_str(" (no build-trigger serves the spool)");
    }
    crate::tail::one_line(&v)
}

/// The live view: a line per target, what it is at and the time to its
/// deadline, or how it ended.
fn live_view(
    c: &Coordinator<'_>,
    b: &BatchDir,
    started: &[Started],
    results: &[Option<(Ended, f64)>],
) {
    let done = results.iter().filter(|r| r.is_some()).count();
    let mut lines = vec![format!(
        "{}: batch {}: {done} of {} targets done",
        super::TOOL,
        b.id,
        results.len()
    )];
    let w = c
        .cfg
        .targets
        .iter()
        .map(|t| t.name.as_str().chars().count())
        .max()
        .unwrap_or(0);
    for ((t, s), r) in c.cfg.targets.iter().zip(started).zip(results) {
        let what = match r {
            Some((e, secs)) => format!(
                "{} in {}",
                e.status,
                crate::time::show_duration(Duration::from_secs(secs.round() as u64))
            ),
            None => {
                let left = (s.start + t.deadline).saturating_duration_since(Instant::now());
                let seen = s.shared.seen.lock().map(|g| g.clone()).unwrap_or_default();
                let seen = if seen.is_empty() {
                    "waiting".into()
                } else {
                    seen
                };
                format!(
                    "{seen}; deadline in {}",
                    crate::time::clock(left.as_secs_f64())
                )
            }
        };
        lines.push(format!("  {:<w$}  {what}", t.name.as_str()));
    }
    c.diag.progress_lines(&lines);
}

/// A target given up at its deadline: its thread is told to stop; it was
/// unreachable when ssh never got through.
fn past_deadline(t: &Target, shared: &Shared) -> Ended {
    shared.cancel.store(true, Ordering::SeqCst);
    let d = crate::time::show_duration(t.deadline);
    if shared.unreachable.load(Ordering::SeqCst) {
        Ended {
            status: TargetStatus::Unreachable,
            message: format!(
                "ssh could not reach {} until the deadline ({d})",
                t.ssh.as_deref().unwrap_or("the host")
            ),
        }
    } else {
        Ended {
            status: TargetStatus::Timeout,
            message: format!("no result within the deadline ({d}); given up"),
        }
    }
}

/// The `target` record of how a target ended; said on stderr unless done.
fn target_record(c: &Coordinator<'_>, b: &BatchDir, t: &Target, ended: Ended, secs: f64) -> Record {
    let mut rec = Record::new(Kind::Target);
    rec.set("name", t.name.as_str());
    rec.set("arch", t.arch.as_str());
    rec.set("status", ended.status);
    rec.set("seconds", (secs * 1000.0).round() / 1000.0);
    rec.set("message", ended.message);
    rec.set("batch", b.id.as_str());
    if let Some(dest) = &t.ssh {
        rec.set("host", dest.as_str());
    }
    if ended.status != TargetStatus::Done {
        c.diag.warn(format_args!(
            "batch {}: target {}: {}: {}",
            b.id,
            t.name,
            ended.status,
            rec.str("message").unwrap_or("")
        ));
    }
    rec
}

/// One target's work, in its thread.
struct Job {
    target: Target,
    batch: String,
    list: PathBuf,
    records: PathBuf,
    log: PathBuf,
    program: PathBuf,
    env: Vec<(String, String)>,
    start: Instant,
    deadline: Instant,
    shared: Arc<Shared>,
}

/// How a child ended.
enum Child {
    Exited(ExitStatus),
    Cancelled,
    NotStarted(std::io::Error),
}

impl Job {
    fn cancelled(&self) -> bool {
        self.shared.cancel.load(Ordering::SeqCst)
    }

    fn run(&self) -> Ended {
        let via = match &self.target.ssh {
            Some(d) => format!("ssh {d}"),
            None => "locally".into(),
        };
        // submit
        let mut tries = 0;
        loop {
            tries += 1;
            let words = ["submit", "--spool", &self.spool(), "--batch", &self.batch];
            let stdin = match File::open(&self.list) {
                Ok(f) => Stdio::from(f),
                Err(e) => {
                    return ended(
                        TargetStatus::Failed,
                        format!("{}: {e}", self.list.display()),
                    )
                }
            };
            let (child, text) = self.run_child(&words, stdin, None);
            match child {
                Child::Cancelled => return ended(TargetStatus::Timeout, "cancelled"),
                Child::NotStarted(e) => {
                    return ended(TargetStatus::Failed, format!("cannot run {via}: {e}"))
                }
                Child::Exited(s) if s.success() => {
                    self.shared.unreachable.store(false, Ordering::SeqCst);
                    break;
                }
                Child::Exited(s) if self.is_ssh_failure(s) => {
                    self.shared.unreachable.store(true, Ordering::SeqCst);
                    if tries >= SUBMIT_TRIES || !self.pause() {
                        return ended(
                            TargetStatus::Unreachable,
                            format!("submit: ssh failed ({s}): {}", crate::tail::short(&text, 2)),
                        );
                    }
                }
                Child::Exited(s) => {
                    return ended(
                        TargetStatus::Failed,
                        format!("submit failed ({s}): {}", crate::tail::short(&text, 2)),
                    )
                }
            }
        }
        // wait, again after a lost connection, until the deadline
        loop {
            let left = self.deadline.saturating_duration_since(Instant::now());
            let timeout = format!("{}s", left.as_secs() + REMOTE_SLACK);
            let words = [
                "wait",
                "--spool",
                &self.spool(),
                "--timeout",
                &timeout,
                &self.batch,
            ];
            let out = match File::create(&self.records) {
                Ok(f) => f,
                Err(e) => {
                    return ended(
                        TargetStatus::Failed,
                        format!("{}: {e}", self.records.display()),
                    )
                }
            };
            let (child, text) = self.run_child(&words, Stdio::null(), Some(out));
            match child {
                Child::Cancelled => return ended(TargetStatus::Timeout, "cancelled"),
                Child::NotStarted(e) => {
                    return ended(TargetStatus::Failed, format!("cannot run {via}: {e}"))
                }
                Child::Exited(s) if s.success() => {
                    self.shared.unreachable.store(false, Ordering::SeqCst);
                    return ended(TargetStatus::Done, self.done_message());
                }
                Child::Exited(s) if self.is_ssh_failure(s) => {
                    self.shared.unreachable.store(true, Ordering::SeqCst);
                    if !self.pause() {
                        return ended(
                            TargetStatus::Unreachable,
                            format!("wait: ssh failed ({s}): {}", crate::tail::short(&text, 2)),
                        );
                    }
                }
                Child::Exited(s) if s.code() == Some(WAIT_TIMEOUT) => {
                    return ended(TargetStatus::Timeout, "build-trigger wait timed out");
                }
                Child::Exited(s) if s.code() == Some(1) => {
                    self.shared.unreachable.store(false, Ordering::SeqCst);
                    return ended(TargetStatus::Failed, self.failed_message(&text));
                }
                Child::Exited(s) => {
                    return ended(
                        TargetStatus::Failed,
                        format!("wait failed ({s}): {}", crate::tail::short(&text, 2)),
                    )
                }
            }
        }
    }

    fn spool(&self) -> String {
        self.target.spool.to_string_lossy().into_owned()
    }

    fn is_ssh_failure(&self, s: ExitStatus) -> bool {
        self.target.ssh.is_some() && s.code() == Some(SSH_FAILED)
    }

    /// Sleep before ssh is tried again; false when there is no time for that.
    fn pause(&self) -> bool {
        let until = Instant::now() + RETRY_PAUSE;
        if until + Duration::from_secs(1) >= self.deadline {
            return false;
        }
        while Instant::now() < until {
            if self.cancelled() {
                return false;
            }
            std::thread::sleep(POLL);
        }
        true
    }

    /// The command for build-trigger with `words` (see [`on_target`]).
    fn command(&self, words: &[&str]) -> Command {
        let mut c = on_target(&self.target, &self.program, words);
        c.envs(self.env.iter().map(|(k, v)| (k, v)));
        c
    }

    /// Run build-trigger: stdout to the file given, or appended to the target's
    /// log with its stderr.  Returns how it ended and what
    /// it wrote to the log.
    fn run_child(&self, words: &[&str], stdin: Stdio, stdout: Option<File>) -> (Child, String) {
        let mut log = match append(&self.log) {
            Ok(f) => f,
            Err(e) => {
                return (
                    Child::NotStarted(std::io::Error::other(e.to_string())),
                    String::new(),
                )
            }
        };
        let from = log.metadata().map(|m| m.len()).unwrap_or(0);
        let cmd = self.command(words);
        let shown: Vec<String> = std::iter::once(cmd.get_program())
            .chain(cmd.get_args())
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        let _ = writeln!(
            log,
            "# {:.1}s: {}",
            self.start.elapsed().as_secs_f64(),
            shown.join(" ")
        );
        let err = match log.try_clone() {
            Ok(f) => f,
            Err(e) => return (Child::NotStarted(e), String::new()),
        };
        let piped = stdout.is_none();
        let stdout = match stdout {
            Some(f) => Stdio::from(f),
            None => Stdio::piped(),
        };
        let mut cmd = cmd;
        let spawned = cmd.stdin(stdin).stdout(stdout).stderr(err).spawn();
        let mut child = match spawned {
            Ok(c) => crate::proc::Supervised::new(c, false),
            Err(e) => return (Child::NotStarted(e), String::new()),
        };
        // A piped stdout (submit's batch record) is copied to the log.
        let copier = if piped {
            child.child_mut().stdout.take().map(|mut so| {
                let mut log2 = log.try_clone().ok();
                std::thread::spawn(move || {
                    let mut b = Vec::new();
                    let _ = so.read_to_end(&mut b);
                    if let Some(l) = log2.as_mut() {
                        let _ = l.write_all(&b);
                    }
                })
            })
        } else {
            None
        };
        let ended = match child.wait_until(None, || self.cancelled()) {
            Ok(Some(s)) => Child::Exited(s),
            Ok(None) => Child::Cancelled,
            Err(e) => {
                child.kill();
                let _ = child.wait();
                Child::NotStarted(e)
            }
        };
        if let Some(h) = copier {
            let _ = h.join();
        }
        let text = read_from(&self.log, from);
        (ended, text)
    }

    /// `done`: what the records say was built.
    fn done_message(&self) -> String {
        let text = std::fs::read_to_string(&self.records).unwrap_or_default();
        let (mut built, mut failed, mut packages) = (0, 0, 0);
        for r in text.lines().filter_map(|l| Record::parse(l).ok()) {
            if r.is_package_build() {
                match r.word("status") {
                    Some(BuildStatus::Built) => built += 1,
                    Some(BuildStatus::Failed) => failed += 1,
                    _ => {}
                }
            } else if r.is(Kind::Package) {
                packages += 1;
            }
        }
        format!("{built} built, {failed} failed, {packages} package files")
    }

    /// `failed`: the error notice of the chain, or the end of wait's stderr.
    fn failed_message(&self, stderr: &str) -> String {
        let text = std::fs::read_to_string(&self.records).unwrap_or_default();
        let notice = text
            .lines()
            .rev()
            .filter_map(|l| Record::parse(l).ok())
            .find(|r| r.is(Kind::Notice) && r.word("level") == Some(Level::Error))
            .and_then(|r| r.str("message").map(str::to_string));
        match notice {
            Some(m) => format!("the chain failed: {m}"),
            None => format!("the chain failed: {}", crate::tail::short(stderr, 2)),
        }
    }
}

fn ended(status: TargetStatus, message: impl Into<String>) -> Ended {
    Ended {
        status,
        message: message.into(),
    }
}

fn read_from(path: &Path, from: u64) -> String {
    let mut b = Vec::new();
    if let Ok(mut f) = File::open(path) {
        if f.seek(SeekFrom::Start(from)).is_ok() {
            let _ = f.read_to_end(&mut b);
        }
    }
    String::from_utf8_lossy(&b)
        .lines()
        .filter(|l| !l.starts_with("# "))
        .collect::<Vec<_>>()
        .join("\n")
}

/// A word for the remote shell: as it is when it holds only characters no
/// shell treats specially, else in single quotes.
/// The build-trigger program of a target: the one configured, else
/// `build-trigger` on the target's PATH over ssh, else the one beside this
/// program.
pub(crate) fn trigger_program(t: &Target) -> PathBuf {
    match (&t.ssh, &t.build_trigger) {
        (_, Some(p)) => PathBuf::from(p),
        (Some(_), None) => PathBuf::from(BUILD_TRIGGER),
        (None, None) => program(BUILD_TRIGGER),
    }
}

/// `program words...` run for target `t`: here, or over ssh (BatchMode, the
/// target's options) as one remote command line of checked, quoted words.
pub(crate) fn on_target(t: &Target, program: &Path, words: &[&str]) -> Command {
    match &t.ssh {
        None => {
            let mut c = Command::new(program);
            c.args(words);
            c
        }
        Some(dest) => {
            let mut line = quote(&program.to_string_lossy());
            for w in words {
                line.push(' ');
                line.push_str(&quote(w));
            }
            let mut c = Command::new("ssh");
            // First: ssh takes the first value given for an option.
            c.args(["-o", "BatchMode=yes"])
                .args(&t.ssh_options)
                .arg(dest)
                .arg("--")
                .arg(line);
            c
        }
    }
}

pub fn quote(w: &str) -> String {
    let plain = !w.is_empty()
        && w.bytes().all(|b| {
            b.is_ascii_alphanumeric()
                || matches!(
                    b,
                    b'_' | b'-' | b'.' | b'/' | b':' | b'=' | b'+' | b',' | b'@' | b'%'
                )
        });
    if plain {
        w.to_string()
    } else {
        format!("'{}'", w.replace('\'', "'\\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A target's files never meet the batch's own, whatever its name.
    #[test]
    fn target_files_are_apart() {
        let b = BatchDir {
            id: "b".into(),
            dir: PathBuf::from("/w/b"),
        };
        let own = [
            super::super::list::LIST,
            super::super::list::FETCH,
            "targets.jsonl",
            super::super::report::SUMMARY,
            super::super::report::MAIL_RECORD,
            "fetch.log",
        ];
        for name in ["targets", "list", "fetch", "summary", "mail", "amd64"] {
            for f in [records_file(&b, name), log_file(&b, name)] {
                assert!(f.starts_with("/w/b/target/"), "{}", f.display());
                assert!(!own.iter().any(|o| b.path(o) == f), "{}", f.display());
            }
        }
    }

    #[test]
    fn quoting() {
        assert_eq!(quote("/var/spool/portflow"), "/var/spool/portflow");
        assert_eq!(
            quote("20261121-101500-3f2a9c1b"),
            "20261121-101500-3f2a9c1b"
        );
        assert_eq!(quote("/a b"), "'/a b'");
        assert_eq!(quote("it's;rm"), "'it'\\''s;rm'");
        assert_eq!(quote(""), "''");
        assert_eq!(quote("$(x)"), "'$(x)'");
    }
}
