//! A run of the chain over one batch: the stages started without a shell,
//! their ends gathered, the heartbeat written, a stop obeyed.

use std::fs::{self, File};
use std::io;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::time::{Duration, Instant, SystemTime};

use crossbeam_channel::{select, tick, unbounded, Receiver, Sender};
use serde_json::{json, Value};

use crate::build_trigger::spool::{spool_record, Spool, State};
use crate::diag::Diag;
use crate::proc::{signal_group, Sig};
use crate::{Error, Record};

use super::*;

/// How long stages have after SIGTERM before SIGKILL.
pub(super) const STOP_GRACE: Duration = Duration::from_secs(5);

/// How much of a failed stage's standard error the notice quotes.
pub(super) const TAIL_LINES: usize = 10;
pub(super) const TAIL_BYTES: usize = 2000;

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

pub(super) fn signal_name(s: i32) -> &'static str {
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

/// Stage ends, as the threads waiting for them send them.
type Ends = (
    Sender<(usize, io::Result<ExitStatus>)>,
    Receiver<(usize, io::Result<ExitStatus>)>,
);

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
    let clock = Instant::now();
    let mut run = Run {
        id: id.to_string(),
        stages: Vec::new(),
        started: SystemTime::now(),
        seconds: 0.0,
        outcome: Outcome::Done,
    };
    let ends: Ends = unbounded();
    let spawned_all = start_stages(&mut run, chain, spool, &ends)?;
    let rx = &ends.1;
    if let Err(e) = run.write_status(spool, stamp) {
        diag.warn(format_args!("{}: {e}", run.status_path(spool).display()));
    }
    let mut live = run.stages.iter().filter(|s| s.pid.is_some()).count();
    if !spawned_all {
        // A stage could not start: the batch failed; the ones before it go.
        kill_live(&mut run, rx, &mut live, false);
    }
    let heartbeat = tick(HEARTBEAT);
    while live > 0 {
        if stop.stopped() {
            kill_live(&mut run, rx, &mut live, true);
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

/// Start the stages, each reading the one before, the first the batch file,
/// the last writing `cur/<id>.out`; a thread waits for each.  False when one
/// could not be started (those after it are not).  `Err` when a file of cur/
/// cannot be made: then the stages started are killed.
fn start_stages(run: &mut Run, chain: &Chain, spool: &Spool, ends: &Ends) -> Result<bool, Error> {
    let id = run.id.clone();
    let cur = spool.dir(State::Cur);
    let input_path = spool.file(State::Cur, &id);
    let input = File::open(&input_path).map_err(|e| Error::io(&input_path, e))?;
    let out_path = cur.join(format!("{id}.out"));
    let out = File::create(&out_path).map_err(|e| Error::io(&out_path, e))?;
    let root = spool.root().to_string_lossy().into_owned();
    let n = chain.stages.len();
    let mut prev = Some(Stdio::from(input));
    for (i, st) in chain.stages.iter().enumerate() {
        let err_path = cur.join(stderr_name(&id, i + 1, &st.name));
        let last = (i + 1 == n).then_some((&out, out_path.as_path()));
        let (err, child_err, stdout) = match stage_files(&err_path, last) {
            Ok(f) => f,
            Err(e) => {
                // The stages started must not go on without us.
                let mut live = run.stages.iter().filter(|s| s.pid.is_some()).count();
                drop(prev.take());
                kill_live(run, &ends.1, &mut live, false);
                return Err(e);
            }
        };
        let mut cmd = chain.command(st, &id, &root, &[]);
        cmd.stdin(prev.take().unwrap_or_else(Stdio::null))
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
                let tx = ends.0.clone();
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
                let _ = fs::write(
                    &err_path,
                    format!("{}: {msg}\n", crate::build_trigger::TOOL),
                );
                run.stages.push(StageRun {
                    name: st.name.clone(),
                    pid: None,
                    ended: Some(Ended::NotRun(msg)),
                    stderr: err_path,
                    _lock: None,
                });
                return Ok(false);
            }
        }
    }
    Ok(true)
}

/// A stage's files: its stderr file, locked by us, and the stage's handle on
/// it; its standard output, `out` for the last stage, else a pipe.
fn stage_files(
    err_path: &Path,
    last: Option<(&File, &Path)>,
) -> Result<(File, File, Stdio), Error> {
    let err = File::create(err_path).map_err(|e| Error::io(err_path, e))?;
    err.lock()
        .and_then(|()| err.try_clone())
        .map_err(|e| Error::io(err_path, e))
        .and_then(|child_err| {
            let stdout = match last {
                Some((out, path)) => Stdio::from(out.try_clone().map_err(|e| Error::io(path, e))?),
                None => Stdio::piped(),
            };
            Ok((err, child_err, stdout))
        })
}

pub(super) fn ended(run: &mut Run, i: usize, r: io::Result<ExitStatus>, live: &mut usize) {
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
pub(super) fn kill_live(
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
