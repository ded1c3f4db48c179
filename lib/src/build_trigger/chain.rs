//! The chain: read from a file, one stage a line, and run over one batch stage
//! to stage without a shell.
//!
//! Each stage runs in a process group of its own, its standard input the
//! standard output of the stage before (the batch file for the first), the
//! last one's standard output `cur/<id>.out`.  Its standard error goes to
//! `cur/<id>.<n>.<stage>.stderr`, a file build-trigger locks (flock) before the
//! stage starts: the stage holds the lock through its standard error as long as
//! any of its processes lives, which is how a build-trigger started after a
//! crash tells that the chain of the crashed one is still at work.

use std::collections::HashMap;
use std::fs::{self, File, TryLockError};
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use crossbeam_channel::{select, tick, unbounded, Receiver, Sender};
use serde_json::{json, Value};

use super::spool::{spool_record, Spool, State};
use crate::diag::Diag;
use crate::proc::{signal_group, Sig};
use crate::{Error, Record};

/// The variables every stage gets, which `${NAME}` in the chain file may name
/// although they are known only when a batch runs.
pub const BATCH_VARS: [&str; 2] = ["PORTFLOW_BATCH", "PORTFLOW_SPOOL"];

/// How often the heartbeat file is written while a chain runs.
pub const HEARTBEAT: Duration = Duration::from_secs(5);
/// How long stages have after SIGTERM before SIGKILL.
const STOP_GRACE: Duration = Duration::from_secs(5);
/// How long a build-trigger waits for the chain of a crashed one to go after
/// killing it.
const ORPHAN_WAIT: Duration = Duration::from_secs(30);
/// How much of a failed stage's standard error the notice quotes.
const TAIL_LINES: usize = 10;
const TAIL_BYTES: usize = 2000;

/// Exit statuses that do not fail a batch: 0 success, 1 ran to the end but
/// something failed (a build), 3 nothing to do.
pub const OK_STATUS: [i32; 3] = [0, 1, 3];

#[derive(Debug, Clone, PartialEq)]
enum Part {
    Lit(String),
    /// One of [`BATCH_VARS`].
    Batch(usize),
}

/// One stage of the chain.
#[derive(Debug, Clone)]
pub struct Stage {
    /// The program's file name, as the records and file names say it.
    pub name: String,
    pub program: PathBuf,
    args: Vec<Vec<Part>>,
}

impl Stage {
    fn args(&self, vals: &[&str; 2]) -> Vec<String> {
        self.args
            .iter()
            .map(|w| {
                w.iter()
                    .map(|p| match p {
                        Part::Lit(s) => s.as_str(),
                        Part::Batch(i) => vals[*i],
                    })
                    .collect()
            })
            .collect()
    }
}

/// A loaded chain file.
#[derive(Debug, Clone)]
pub struct Chain {
    pub path: PathBuf,
    pub stages: Vec<Stage>,
    /// The --env settings, given to every stage over the inherited environment.
    pub env: Vec<(String, String)>,
}

/// Replace `${NAME}` in one word.
fn expand(word: &str, vars: &HashMap<String, String>) -> Result<Vec<Part>, String> {
    let mut parts = Vec::new();
    let mut lit = String::new();
    let mut rest = word;
    while let Some(i) = rest.find("${") {
        lit.push_str(&rest[..i]);
        let after = &rest[i + 2..];
        let Some(end) = after.find('}') else {
            return Err(format!("{word}: ${{ without }}"));
        };
        let name = &after[..end];
        if crate::names::VarName::parse(name).is_err() {
            return Err(format!("{word}: ${{{name}}} is not a variable name"));
        }
        if let Some(b) = BATCH_VARS.iter().position(|v| *v == name) {
            if !lit.is_empty() {
                parts.push(Part::Lit(std::mem::take(&mut lit)));
            }
            parts.push(Part::Batch(b));
        } else {
            match vars.get(name) {
                Some(v) => lit.push_str(v),
                None => return Err(format!("${{{name}}} is not set: give --env {name}=VALUE")),
            }
        }
        rest = &after[end + 1..];
    }
    lit.push_str(rest);
    if !lit.is_empty() || parts.is_empty() {
        parts.push(Part::Lit(lit));
    }
    Ok(parts)
}

fn executable(p: &Path) -> bool {
    fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// The program of a stage: a path, or a name looked up in the stages' PATH.
fn resolve(prog: &str, path: Option<&str>) -> Result<PathBuf, String> {
    if prog.contains('/') {
        let p = std::path::absolute(prog).map_err(|e| format!("{prog}: {e}"))?;
        return if executable(&p) {
            Ok(p)
        } else {
            Err(format!("{prog}: not an executable file"))
        };
    }
    for d in path.unwrap_or("/usr/bin:/bin").split(':') {
        let p = Path::new(if d.is_empty() { "." } else { d }).join(prog);
        if executable(&p) {
            return std::path::absolute(&p).map_err(|e| format!("{}: {e}", p.display()));
        }
    }
    Err(format!("{prog}: command not found in PATH"))
}

/// A stage name fit for a file name: no `.` (which separates the parts of
/// `<id>.<n>.<stage>.stderr`), no `/`.
fn file_word(name: &str) -> String {
    let w: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '+') {
                c
            } else {
                '_'
            }
        })
        .collect();
    if w.is_empty() {
        "stage".into()
    } else {
        w
    }
}

impl Chain {
    /// Read a chain file: one stage a line, a program and its arguments split on
    /// white space, `#` comments and blank lines skipped, `${NAME}` replaced from
    /// the --env settings over the inherited environment.  Errors are usage
    /// errors naming the file and line.
    pub fn load(path: &Path, settings: &[(String, String)]) -> Result<Chain, Error> {
        let bad = |line: usize, m: String| Error::Usage(format!("{}:{line}: {m}", path.display()));
        let text = fs::read(path).map_err(|e| Error::Usage(format!("{}: {e}", path.display())))?;
        let text = String::from_utf8(text)
            .map_err(|_| Error::Usage(format!("{}: not UTF-8", path.display())))?;
        let mut vars: HashMap<String, String> = std::env::vars_os()
            .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
            .collect();
        for (k, v) in settings {
            vars.insert(k.clone(), v.clone());
        }
        let mut stages = Vec::new();
        for (i, line) in text.lines().enumerate() {
            let t = line.trim();
            if t.is_empty() || t.starts_with('#') {
                continue;
            }
            let mut words = Vec::new();
            for w in t.split_whitespace() {
                words.push(expand(w, &vars).map_err(|m| bad(i + 1, m))?);
            }
            let prog = match words.remove(0).as_slice() {
                [Part::Lit(p)] => p.clone(),
                _ => {
                    return Err(bad(
                        i + 1,
                        "the program cannot come from ${PORTFLOW_BATCH} or ${PORTFLOW_SPOOL}"
                            .into(),
                    ))
                }
            };
            if prog.is_empty() {
                return Err(bad(i + 1, "the program is an empty word".into()));
            }
            let program =
                resolve(&prog, vars.get("PATH").map(String::as_str)).map_err(|m| bad(i + 1, m))?;
            let name = Path::new(&prog)
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or(prog);
            stages.push(Stage {
                name,
                program,
                args: words,
            });
        }
        if stages.is_empty() {
            return Err(Error::Usage(format!("{}: no stage", path.display())));
        }
        Ok(Chain {
            path: path.to_path_buf(),
            stages,
            env: settings.to_vec(),
        })
    }

    /// The value of a variable for the stages: --env, then the inherited one.
    pub fn var(&self, name: &str) -> Option<String> {
        self.env
            .iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .or_else(|| std::env::var(name).ok())
    }
}

/// `cur/<id>.<n>.<stage>.stderr`, n counted from 1.
pub fn stderr_name(id: &str, n: usize, stage: &str) -> String {
    format!("{id}.{n}.{}.stderr", file_word(stage))
}

/// The stderr files of batch `id` in cur/, with their stage number.
pub fn stderr_files(spool: &Spool, id: &str) -> Vec<(usize, PathBuf)> {
    let dir = spool.dir(State::Cur);
    let prefix = format!("{id}.");
    let mut v = Vec::new();
    for e in fs::read_dir(&dir).into_iter().flatten().flatten() {
        let name = e.file_name();
        let Some(mid) = name
            .to_str()
            .and_then(|n| n.strip_prefix(&prefix))
            .and_then(|n| n.strip_suffix(".stderr"))
        else {
            continue;
        };
        let Some((n, stage)) = mid.split_once('.') else {
            continue;
        };
        if stage.contains('.') || stage.is_empty() {
            continue;
        }
        if let Ok(n) = n.parse::<usize>() {
            v.push((n, e.path()));
        }
    }
    v.sort();
    v
}

/// How a stage ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Ended {
    Exit(i32),
    Signal(i32),
    /// It could not be started (or waited for).
    NotRun(String),
}

impl Ended {
    fn from_status(s: ExitStatus) -> Self {
        match (s.code(), s.signal()) {
            (Some(c), _) => Ended::Exit(c),
            (None, Some(sig)) => Ended::Signal(sig),
            _ => Ended::NotRun(format!("{s}")),
        }
    }

    pub fn ok(&self) -> bool {
        matches!(self, Ended::Exit(c) if OK_STATUS.contains(c))
    }

    pub fn describe(&self) -> String {
        match self {
            Ended::Exit(c) => format!("exit status {c}"),
            Ended::Signal(s) => format!("killed by signal {s}{}", signal_name(*s)),
            Ended::NotRun(m) => format!("not run: {m}"),
        }
    }
}

fn signal_name(s: i32) -> &'static str {
    use signal_hook::consts::*;
    match s {
        SIGHUP => " (SIGHUP)",
        SIGINT => " (SIGINT)",
        SIGQUIT => " (SIGQUIT)",
        SIGABRT => " (SIGABRT)",
        SIGKILL => " (SIGKILL)",
        SIGSEGV => " (SIGSEGV)",
        SIGPIPE => " (SIGPIPE)",
        SIGTERM => " (SIGTERM)",
        SIGBUS => " (SIGBUS)",
        _ => "",
    }
}

/// One stage of a run.
#[derive(Debug)]
pub struct StageRun {
    pub name: String,
    pub pid: Option<u32>,
    pub ended: Option<Ended>,
    pub stderr: PathBuf,
    /// Our handle on the stderr file, locked.
    _lock: Option<File>,
}

impl StageRun {
    fn entry(&self) -> Value {
        let mut m = serde_json::Map::new();
        m.insert("stage".into(), json!(self.name));
        if let Some(p) = self.pid {
            m.insert("pid".into(), json!(p));
        }
        match &self.ended {
            Some(Ended::Exit(c)) => {
                m.insert("exit".into(), json!(c));
            }
            Some(Ended::Signal(s)) => {
                m.insert("signal".into(), json!(s));
            }
            Some(Ended::NotRun(msg)) => {
                m.insert("error".into(), json!(msg));
            }
            None => {}
        }
        Value::Object(m)
    }
}

/// How a run of the chain went.
#[derive(Debug, PartialEq)]
pub enum Outcome {
    Done,
    /// The stage (index) that failed the batch.
    Failed(usize),
    /// Stopped by SIGTERM or SIGINT: the batch stays in cur/.
    Stopped,
}

/// A run of the chain over one batch.
#[derive(Debug)]
pub struct Run {
    pub id: String,
    pub stages: Vec<StageRun>,
    pub started: SystemTime,
    pub seconds: f64,
    pub outcome: Outcome,
}

/// A stop asked by SIGTERM or SIGINT: a flag, and a channel that wakes whoever
/// waits.
pub struct Stop {
    flag: Arc<AtomicBool>,
    pub rx: Receiver<()>,
    _tx: Sender<()>,
}

impl Stop {
    /// Catch SIGTERM and SIGINT from now on.
    pub fn install() -> Result<Stop, Error> {
        use signal_hook::consts::{SIGINT, SIGTERM};
        let mut signals = signal_hook::iterator::Signals::new([SIGTERM, SIGINT])
            .map_err(Error::system("catch SIGTERM and SIGINT"))?;
        let flag = Arc::new(AtomicBool::new(false));
        let (tx, rx) = unbounded();
        let (f, t) = (flag.clone(), tx.clone());
        std::thread::spawn(move || {
            for _ in signals.forever() {
                f.store(true, Ordering::SeqCst);
                let _ = t.send(());
            }
        });
        Ok(Stop { flag, rx, _tx: tx })
    }

    /// A stop that never comes (for tests).
    pub fn never() -> Stop {
        let (tx, rx) = unbounded();
        Stop {
            flag: Arc::new(AtomicBool::new(false)),
            rx,
            _tx: tx,
        }
    }

    pub fn stopped(&self) -> bool {
        self.flag.load(Ordering::SeqCst)
    }
}

/// What the records of a spool stamp: MACHINE_ARCH of the stages, this host.
#[derive(Debug, Clone, Default)]
pub struct Stamp {
    pub arch: Option<String>,
    pub host: Option<String>,
}

impl Stamp {
    pub fn new(chain: &Chain) -> Stamp {
        let host = crate::proc::hostname();
        Stamp {
            arch: chain.var("MACHINE_ARCH").filter(|a| !a.is_empty()),
            host,
        }
    }

    pub fn stamp(&self, r: &mut Record) {
        if let Some(a) = &self.arch {
            r.set_default("arch", a.as_str());
        }
        if let Some(h) = &self.host {
            r.set_default("host", h.as_str());
        }
    }
}

impl Run {
    /// The stage a heartbeat names: the first one still running (the data has
    /// gone through those before it), else the last one.
    fn at_work(&self) -> Option<&StageRun> {
        self.stages
            .iter()
            .find(|s| s.ended.is_none() && s.pid.is_some())
    }

    fn stages_value(&self) -> Value {
        Value::Array(self.stages.iter().map(StageRun::entry).collect())
    }

    fn status_path(&self, spool: &Spool) -> PathBuf {
        spool.dir(State::Cur).join(format!("{}.status", self.id))
    }

    /// The heartbeat: `cur/<id>.status`, a `spool` record, written atomically.
    fn write_status(&self, spool: &Spool, stamp: &Stamp) -> io::Result<()> {
        let mut r = spool_record(&self.id, State::Cur);
        r.set("since", crate::time::utc_stamp(self.started));
        if let Some(s) = self.at_work() {
            r.set("stage", s.name.as_str());
            if let Some(p) = s.pid {
                r.set("pid", p);
            }
        }
        r.set("heartbeat", crate::time::utc_stamp(SystemTime::now()));
        r.set("stages", self.stages_value());
        stamp.stamp(&mut r);
        let mut line = r.to_line();
        line.push('\n');
        // Its temporary file has a name of the batch, which remove_run_files
        // knows: a crash never leaves a stray in cur/.
        let dest = self.status_path(spool);
        let tmp = spool
            .dir(State::Cur)
            .join(format!("{}.status.tmp", self.id));
        crate::atomic::write_via(&tmp, &dest, line.as_bytes())
    }

    /// The `spool` record that ends the batch's file in done/ or failed/.
    pub fn record(&self, stamp: &Stamp) -> Record {
        let st = match self.outcome {
            Outcome::Done => State::Done,
            Outcome::Failed(_) => State::Failed,
            Outcome::Stopped => State::Cur,
        };
        let mut r = spool_record(&self.id, st);
        r.set("since", crate::time::utc_stamp(SystemTime::now()));
        if let Outcome::Failed(i) = self.outcome {
            r.set("stage", self.stages[i].name.as_str());
        }
        r.set("stages", self.stages_value());
        r.set("seconds", (self.seconds * 1000.0).round() / 1000.0);
        stamp.stamp(&mut r);
        r
    }

    /// What failed a failed batch: the stage and how it ended, one line.
    pub fn failure(&self) -> Option<String> {
        let Outcome::Failed(i) = self.outcome else {
            return None;
        };
        let s = &self.stages[i];
        let how = s
            .ended
            .as_ref()
            .map(Ended::describe)
            .unwrap_or_else(|| "did not end".into());
        Some(format!(
            "batch {}: stage {} of {}, {}, failed: {how}",
            self.id,
            i + 1,
            self.stages.len(),
            s.name
        ))
    }

    /// The message of the notice of a failed batch: [`Run::failure`] and the
    /// end of the stage's standard error.
    pub fn failure_message(&self) -> Option<String> {
        let Outcome::Failed(i) = self.outcome else {
            return None;
        };
        let mut m = self.failure()?;
        let tail = crate::tail::file(&self.stages[i].stderr, TAIL_LINES, "\n", TAIL_BYTES);
        if tail.is_empty() {
            m.push_str("; its standard error is empty");
        } else {
            m.push_str("; its standard error ends:\n");
            m.push_str(&tail);
        }
        Some(m)
    }

    /// Every stage's standard error, for `<id>.log` in done/ or failed/; empty
    /// when no stage wrote any.
    pub fn log(&self) -> Vec<u8> {
        let mut any = false;
        let mut v = Vec::new();
        for (i, s) in self.stages.iter().enumerate() {
            let text = fs::read(&s.stderr).unwrap_or_default();
            any |= !text.is_empty();
            let how = s
                .ended
                .as_ref()
                .map(Ended::describe)
                .unwrap_or_else(|| "did not end".into());
            v.extend_from_slice(format!("==> {} {}: {how}\n", i + 1, s.name).as_bytes());
            v.extend_from_slice(&text);
            if !text.is_empty() && !text.ends_with(b"\n") {
                v.push(b'\n');
            }
        }
        if any {
            v
        } else {
            Vec::new()
        }
    }
}

/// Which stage failed the batch: among those whose status fails it, the first
/// one not killed by SIGPIPE (a stage after it stopped reading: the one to
/// blame comes later), else the first.
pub fn culprit(ended: &[Option<Ended>]) -> Option<usize> {
    let bad = |e: &Option<Ended>| !e.as_ref().is_some_and(Ended::ok);
    let sigpipe = signal_hook::consts::SIGPIPE;
    ended
        .iter()
        .position(|e| bad(e) && *e != Some(Ended::Signal(sigpipe)))
        .or_else(|| ended.iter().position(bad))
}

/// Run the chain over batch `id`, whose file is in cur/.  `Err` for a problem
/// of the spool (a file of cur/ that cannot be made): the batch stays in cur/.
pub fn run(
    chain: &Chain,
    spool: &Spool,
    id: &str,
    stop: &Stop,
    stamp: &Stamp,
    diag: &Diag,
) -> Result<Run, Error> {
    let cur = spool.dir(State::Cur);
    let input_path = spool.file(State::Cur, id);
    let input = File::open(&input_path).map_err(|e| Error::io(&input_path, e))?;
    let out_path = cur.join(format!("{id}.out"));
    let out = File::create(&out_path).map_err(|e| Error::io(&out_path, e))?;
    let root = spool.root().to_string_lossy().into_owned();
    let vals = [id, root.as_str()];

    let started = SystemTime::now();
    let clock = Instant::now();
    let mut run = Run {
        id: id.to_string(),
        stages: Vec::new(),
        started,
        seconds: 0.0,
        outcome: Outcome::Done,
    };
    let (tx, rx) = unbounded::<(usize, io::Result<ExitStatus>)>();
    let n = chain.stages.len();
    let mut prev = Some(Stdio::from(input));
    for (i, st) in chain.stages.iter().enumerate() {
        let err_path = cur.join(stderr_name(id, i + 1, &st.name));
        let files = File::create(&err_path)
            .and_then(|err| {
                err.lock()?;
                let child_err = err.try_clone()?;
                Ok((err, child_err))
            })
            .map_err(|e| Error::io(&err_path, e))
            .and_then(|(err, child_err)| {
                let stdout = if i + 1 == n {
                    Stdio::from(out.try_clone().map_err(|e| Error::io(&out_path, e))?)
                } else {
                    Stdio::piped()
                };
                Ok((err, child_err, stdout))
            });
        let (err, child_err, stdout) = match files {
            Ok(f) => f,
            Err(e) => {
                // The stages started must not go on without us.
                let mut live = run.stages.iter().filter(|s| s.pid.is_some()).count();
                drop(prev.take());
                kill_live(&mut run, &rx, &mut live, false);
                return Err(e);
            }
        };
        let mut cmd = Command::new(&st.program);
        cmd.args(st.args(&vals))
            .envs(chain.env.iter().map(|(k, v)| (k, v)))
            .env(BATCH_VARS[0], id)
            .env(BATCH_VARS[1], &root)
            .stdin(prev.take().unwrap_or_else(Stdio::null))
            .stdout(stdout)
            .stderr(Stdio::from(child_err))
            .process_group(0);
        let spawned = cmd.spawn();
        // Our copies of the pipe ends must go, or a stage never sees the end.
        drop(cmd);
        match spawned {
            Ok(mut child) => {
                prev = child.stdout.take().map(Stdio::from);
                let pid = child.id();
                let tx = tx.clone();
                std::thread::spawn(move || {
                    let r = child.wait();
                    let _ = tx.send((i, r));
                });
                run.stages.push(StageRun {
                    name: st.name.clone(),
                    pid: Some(pid),
                    ended: None,
                    stderr: err_path,
                    _lock: Some(err),
                });
            }
            Err(e) => {
                let msg = format!("{}: {e}", st.program.display());
                let _ = fs::write(&err_path, format!("{}: {msg}\n", super::TOOL));
                run.stages.push(StageRun {
                    name: st.name.clone(),
                    pid: None,
                    ended: Some(Ended::NotRun(msg)),
                    stderr: err_path,
                    _lock: None,
                });
                break;
            }
        }
    }
    drop(prev);
    drop(out);
    let spawned_all = run.stages.len() == n && run.stages.iter().all(|s| s.pid.is_some());
    if let Err(e) = run.write_status(spool, stamp) {
        diag.warn(format_args!("{}: {e}", run.status_path(spool).display()));
    }
    let mut live = run.stages.iter().filter(|s| s.pid.is_some()).count();
    if !spawned_all {
        // A stage could not start: the batch failed; the ones before it go.
        kill_live(&mut run, &rx, &mut live, false);
    }
    let heartbeat = tick(HEARTBEAT);
    while live > 0 {
        if stop.stopped() {
            kill_live(&mut run, &rx, &mut live, true);
            run.seconds = clock.elapsed().as_secs_f64();
            run.outcome = Outcome::Stopped;
            let _ = run.write_status(spool, stamp);
            return Ok(run);
        }
        select! {
            recv(rx) -> m => {
                if let Ok((i, r)) = m {
                    ended(&mut run, i, r, &mut live);
                    let _ = run.write_status(spool, stamp);
                }
            }
            recv(stop.rx) -> _ => {}
            recv(heartbeat) -> _ => {
                if let Err(e) = run.write_status(spool, stamp) {
                    diag.warn(format_args!("{}: {e}", run.status_path(spool).display()));
                }
            }
        }
    }
    run.seconds = clock.elapsed().as_secs_f64();
    let ends: Vec<Option<Ended>> = run.stages.iter().map(|s| s.ended.clone()).collect();
    // Stages never started (after one that could not be) fail nothing more.
    run.outcome = match culprit(&ends) {
        Some(i) => Outcome::Failed(i),
        None if spawned_all => Outcome::Done,
        None => Outcome::Failed(run.stages.len().saturating_sub(1)),
    };
    Ok(run)
}

fn ended(run: &mut Run, i: usize, r: io::Result<ExitStatus>, live: &mut usize) {
    if let Some(s) = run.stages.get_mut(i) {
        if s.ended.is_none() {
            s.ended = Some(match r {
                Ok(st) => Ended::from_status(st),
                Err(e) => Ended::NotRun(format!("cannot wait for it: {e}")),
            });
            *live = live.saturating_sub(1);
        }
    }
}

/// End the stages still running: SIGTERM to their process groups first when
/// `gently`, SIGKILL to what is left after [`STOP_GRACE`].
fn kill_live(
    run: &mut Run,
    rx: &Receiver<(usize, io::Result<ExitStatus>)>,
    live: &mut usize,
    gently: bool,
) {
    let signal_live = |run: &Run, sig: Sig| {
        for s in run.stages.iter().filter(|s| s.ended.is_none()) {
            if let Some(p) = s.pid {
                signal_group(p, sig);
            }
        }
    };
    if gently {
        signal_live(run, Sig::Term);
        let deadline = Instant::now() + STOP_GRACE;
        while *live > 0 {
            match rx.recv_deadline(deadline) {
                Ok((i, r)) => ended(run, i, r, live),
                Err(_) => break,
            }
        }
    }
    if *live > 0 {
        signal_live(run, Sig::Kill);
    }
    while *live > 0 {
        match rx.recv_timeout(Duration::from_secs(10)) {
            Ok((i, r)) => ended(run, i, r, live),
            Err(_) => break,
        }
    }
}

/// Before batch `id` runs again from cur/: make sure no stage of an earlier
/// run (a build-trigger killed with SIGKILL, a crash) is still at work, killing
/// the process groups its heartbeat file names.  False when they still hold
/// the batch after [`ORPHAN_WAIT`] (reported).
pub fn clear_orphans(spool: &Spool, id: &str, stop: &Stop, diag: &Diag) -> Result<bool, Error> {
    let held = |files: &[(usize, PathBuf)]| -> Vec<usize> {
        files
            .iter()
            .filter(|(_, p)| {
                File::open(p).is_ok_and(|f| matches!(f.try_lock(), Err(TryLockError::WouldBlock)))
            })
            .map(|(n, _)| *n)
            .collect()
    };
    let files = stderr_files(spool, id);
    let busy = held(&files);
    if busy.is_empty() {
        return Ok(true);
    }
    let status = spool.dir(State::Cur).join(format!("{id}.status"));
    let pids: Vec<Option<u64>> = fs::read_to_string(&status)
        .ok()
        .and_then(|t| Record::parse(t.trim()).ok())
        .and_then(|r| r.get("stages").and_then(Value::as_array).cloned())
        .map(|a| a.iter().map(|s| s["pid"].as_u64()).collect())
        .unwrap_or_default();
    let groups: Vec<u32> = busy
        .iter()
        .filter_map(|n| pids.get(n - 1).copied().flatten())
        .filter_map(|p| u32::try_from(p).ok())
        .collect();
    if groups.is_empty() {
        diag.warn(format_args!(
            "batch {id}: processes of an earlier run of its chain still hold it; waiting for them"
        ));
    } else {
        let shown: Vec<String> = groups.iter().map(u32::to_string).collect();
        diag.warn(format_args!(
            "batch {id}: the chain of an earlier run is still at work (process groups {}): killing it",
            shown.join(", ")
        ));
        // The lock being held means a process of that stage lives, so the
        // group is still its own.
        for g in groups {
            signal_group(g, Sig::Kill);
        }
    }
    let start = Instant::now();
    loop {
        if held(&files).is_empty() {
            return Ok(true);
        }
        if stop.stopped() {
            return Ok(false);
        }
        if start.elapsed() > ORPHAN_WAIT {
            diag.warn(format_args!(
                "batch {id}: processes of an earlier run of its chain still hold {} after {}s; trying again later",
                spool.dir(State::Cur).display(),
                ORPHAN_WAIT.as_secs()
            ));
            return Ok(false);
        }
        let _ = stop.rx.recv_timeout(Duration::from_millis(100));
    }
}

/// Remove the files of batch `id` in cur/ but the batch file itself.
pub fn remove_run_files(spool: &Spool, id: &str) {
    let cur = spool.dir(State::Cur);
    for (_, p) in stderr_files(spool, id) {
        let _ = fs::remove_file(p);
    }
    for ext in ["out", "status", "status.tmp", "delivered.tmp"] {
        let _ = fs::remove_file(cur.join(format!("{id}.{ext}")));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars() -> HashMap<String, String> {
        [("DEST", "signer:/build/amd64"), ("SP", "a b")]
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn expansion() {
        let v = vars();
        assert_eq!(expand("plain", &v), Ok(vec![Part::Lit("plain".into())]));
        assert_eq!(
            expand("--to=${DEST}/x", &v),
            Ok(vec![Part::Lit("--to=signer:/build/amd64/x".into())])
        );
        assert_eq!(expand("${SP}", &v), Ok(vec![Part::Lit("a b".into())]));
        assert_eq!(
            expand("log-${PORTFLOW_BATCH}.txt", &v),
            Ok(vec![
                Part::Lit("log-".into()),
                Part::Batch(0),
                Part::Lit(".txt".into())
            ])
        );
        assert_eq!(expand("$HOME$", &v), Ok(vec![Part::Lit("$HOME$".into())]));
        assert!(expand("${NOPE}", &v).unwrap_err().contains("--env NOPE="));
        assert!(expand("${DEST", &v).is_err());
        assert!(expand("${1x}", &v).is_err());
    }

    #[test]
    fn loading() {
        let t = tempfile::tempdir().unwrap();
        let f = t.path().join("chain");
        fs::write(
            &f,
            "# the chain\n\n  cat  \nenv --x=${DEST} ${PORTFLOW_BATCH}\n",
        )
        .unwrap();
        let c = Chain::load(&f, &[("DEST".into(), "d".into())]).unwrap();
        assert_eq!(c.stages.len(), 2);
        assert_eq!(c.stages[0].name, "cat");
        assert!(c.stages[0].program.is_absolute());
        assert_eq!(c.stages[1].args(&["b1", "/s"]), ["--x=d", "b1"]);
        fs::write(&f, "cat\nno-such-program-here\n").unwrap();
        let e = Chain::load(&f, &[]).unwrap_err().to_string();
        assert!(
            e.ends_with(":2: no-such-program-here: command not found in PATH"),
            "{e}"
        );
        fs::write(&f, "cat ${NOT_SET_ANYWHERE_X}\n").unwrap();
        let e = Chain::load(&f, &[]).unwrap_err().to_string();
        assert!(e.contains(":1: ${NOT_SET_ANYWHERE_X} is not set"), "{e}");
        fs::write(&f, "# nothing\n").unwrap();
        assert!(Chain::load(&f, &[]).is_err());
        fs::write(&f, "${PORTFLOW_BATCH}\n").unwrap();
        assert!(Chain::load(&f, &[]).is_err());
    }

    #[test]
    fn the_culprit() {
        let pipe = Some(Ended::Signal(signal_hook::consts::SIGPIPE));
        let e = |c| Some(Ended::Exit(c));
        assert_eq!(culprit(&[e(0), e(1), e(3)]), None);
        assert_eq!(culprit(&[e(0), e(2), e(0)]), Some(1));
        assert_eq!(culprit(&[e(0), pipe.clone(), e(2)]), Some(2));
        assert_eq!(culprit(&[pipe.clone(), e(0)]), Some(0));
        assert_eq!(culprit(&[e(75), e(4)]), Some(0));
        assert_eq!(culprit(&[e(0), Some(Ended::Signal(9))]), Some(1));
    }

    #[test]
    fn file_words() {
        assert_eq!(
            stderr_name("b.1", 2, "build-list"),
            "b.1.2.build-list.stderr"
        );
        assert_eq!(stderr_name("b", 1, "fail.sh"), "b.1.fail_sh.stderr");
    }
}
