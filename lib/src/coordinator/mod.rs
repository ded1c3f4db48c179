//! build-coordinator: the initiator.  It updates the ports tree, makes the list
//! (`ports-delta | pkgpath-expand`), fetches the distfiles once
//! (`build-list --target fetch`), hands the batch to every target's build-trigger
//! at once, locally or over ssh, waits for all of them, each with its deadline,
//! and sends one mail through summary-mail.  Every stage is the real program,
//! started without a shell; what a batch made is kept in its directory under the
//! work directory.
//!
//! ```text
//! <work_dir>/
//!     lock            held while a run goes on; a second run exits 0 at once
//!     state.json      the fingerprint of the last delta built, the batch running
//!     update.pending  update output not yet given to a batch
//!     logs/           build-list's log directories of the prefetch
//!     outbox/         mails that could not be sent (the default outbox)
//!     <batch>/        list.jsonl, changes.txt, fetch.jsonl, fetch.log,
//!                     target/<target>.jsonl, target/<target>.log, targets.jsonl,
//!                     summary.jsonl, summary.json, mail.jsonl or mail.txt
//! ```

mod check;
pub mod config;
mod fanout;
mod list;
mod plan;
mod report;
mod state;
mod status;

use std::fs::{self, File, OpenOptions, TryLockError};
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::SystemTime;

use crate::diag::{Diag, Exit};
use crate::record::{Record, TargetStatus};
use crate::Error;

use config::Config;
use state::{Running, State};

pub const TOOL: &str = "build-coordinator";

/// How many batches one `run --loop` makes at most.
pub const MAX_LOOPS: usize = 10;

/// Coordinate one -stable build over every target: list, fetch, fan out, join,
/// mail.
#[derive(clap::Parser, Debug)]
#[command(name = "build-coordinator", version, max_term_width = 100)]
pub struct Args {
    #[command(subcommand)]
    pub command: Cmd,
}

#[derive(clap::Subcommand, Debug)]
pub enum Cmd {
    /// Update the tree, build what changed on every target, send the mail.
    Run(RunArgs),
    /// Check the configuration file, then what it names (paths, programs,
    /// sqlports, the delta's revisions, the mail, every target): a line each.
    Check(CheckArgs),
    /// Every target's spool at once (build-trigger status there, over ssh as a
    /// run reaches it): a table on a terminal, records otherwise.
    Status(StatusArgs),
}

#[derive(clap::Args, Debug)]
pub struct StatusArgs {
    /// The configuration file, portflow.conf(5).
    #[arg(long, short = 'c', value_name = "FILE", default_value = config::DEFAULT_CONFIG)]
    pub config: PathBuf,
    /// Records (JSON Lines) even on a terminal.
    #[arg(long)]
    pub json: bool,
}

#[derive(clap::Args, Debug)]
pub struct RunArgs {
    /// The configuration file, portflow.conf(5).
    #[arg(long, short = 'c', value_name = "FILE", default_value = config::DEFAULT_CONFIG)]
    pub config: PathBuf,
    /// Build even when the update brought no change.
    #[arg(long)]
    pub force: bool,
    /// Start over while the update keeps bringing changes (at most 10 batches).
    #[arg(long = "loop", conflicts_with = "dry_run")]
    pub repeat: bool,
    /// Plan only: what each target would build (each entry up-to-date or to
    /// build, as make decides there) and the distfiles to fetch; nothing is
    /// changed anywhere (the update command is not run).
    #[arg(short = 'n', long = "dry-run")]
    pub dry_run: bool,
}

#[derive(clap::Args, Debug)]
pub struct CheckArgs {
    /// The configuration file, portflow.conf(5).
    #[arg(long, short = 'c', value_name = "FILE", default_value = config::DEFAULT_CONFIG)]
    pub config: PathBuf,
    /// The file alone: nothing it names is looked at.
    #[arg(long)]
    pub file: bool,
}

pub fn main() -> std::process::ExitCode {
    crate::diag::tool_main(TOOL, run)
}

pub fn run(args: &Args, diag: &Diag) -> Result<Exit, Error> {
    match &args.command {
        Cmd::Status(a) => {
            let cfg = config::load(&a.config)?;
            status::status(&cfg, a.json, diag)
        }
        Cmd::Check(c) => {
            let cfg = config::load(&c.config)?;
            if c.file {
                return Ok(Exit::Success);
            }
            let mut out = crate::jsonl::Output::stdout();
            let mut failed = 0;
            for f in check::check(&cfg) {
                let line = match &f.found {
                    Ok(m) => format!("ok      {}: {m}", f.what),
                    Err(m) => {
                        failed += 1;
                        format!("FAILED  {}: {m}", f.what)
                    }
                };
                out.line(&line)?;
            }
            out.flush()?;
            if failed > 0 {
                diag.error(format_args!(
                    "{}: {failed} check(s) failed",
                    c.config.display()
                ));
            }
            Ok(diag.finish(Exit::Success))
        }
        Cmd::Run(r) => {
            let cfg = config::load(&r.config)?;
            let c = Coordinator::new(cfg, diag);
            if r.dry_run {
                c.plan(r.force)
            } else {
                c.run(r.force, r.repeat)
            }
        }
    }
}

/// A program of portflow: the one next to this executable, else the one on PATH.
pub fn program(name: &str) -> PathBuf {
    if let Some(dir) = std::env::current_exe()
        .ok()
        .and_then(|e| e.parent().map(Path::to_path_buf))
    {
        let p = dir.join(name);
        if p.is_file() {
            return p;
        }
    }
    PathBuf::from(name)
}

/// The exit status of one batch, and how batches combine: a lost target first,
/// then the alarm, the outbox, a failure, nothing to tell, success.
fn rank(e: Exit) -> u8 {
    match e {
        Exit::TargetLost => 6,
        Exit::NothingBuilt => 5,
        Exit::TempFail => 4,
        Exit::Failed => 3,
        Exit::Usage => 3,
        Exit::Success => 1,
        Exit::NothingToDo => 0,
    }
}

pub(crate) struct Coordinator<'a> {
    cfg: Config,
    diag: &'a Diag,
    tty: bool,
}

/// The directory of one batch.
pub(crate) struct BatchDir {
    pub id: String,
    pub dir: PathBuf,
}

impl BatchDir {
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }
}

impl<'a> Coordinator<'a> {
    fn new(cfg: Config, diag: &'a Diag) -> Self {
        Coordinator {
            cfg,
            diag,
            tty: std::io::stderr().is_terminal(),
        }
    }

    /// A command for a program run here: the configured environment added.
    pub(crate) fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut c = Command::new(program);
        c.envs(self.cfg.env.iter().map(|(k, v)| (k, v)));
        c
    }

    fn progress(&self, msg: impl std::fmt::Display) {
        self.diag.progress(msg);
    }

    /// Remove the batch directories of work_dir last changed more than
    /// `keep_days` days ago; never the one running, never a directory that is
    /// no batch's (a valid id, a list that opens with its batch record).
    fn prune(&self, st: &State) {
        let work = &self.cfg.work_dir;
        let running = st.running.as_ref().map(|r| r.id.as_str());
        for e in fs::read_dir(work).into_iter().flatten().flatten() {
            let name = e.file_name();
            let Some(id) = name.to_str() else { continue };
            if Some(id) == running || crate::host::check_batch(id).is_err() {
                continue;
            }
            let dir = e.path();
            // Its list opens with the batch record of its name.
            let is_batch = fs::symlink_metadata(&dir).is_ok_and(|m| m.is_dir())
                && fs::read_to_string(dir.join(list::LIST))
                    .ok()
                    .and_then(|t| t.lines().next().and_then(|l| Record::parse(l).ok()))
                    .is_some_and(|r| r.is(crate::record::Kind::Batch) && r.str("id") == Some(id));
            let old = fs::metadata(&dir)
                .and_then(|m| m.modified())
                .is_ok_and(|t| crate::time::older_than(t, self.cfg.keep_days));
            if is_batch && old {
                if let Err(err) = fs::remove_dir_all(&dir) {
                    self.diag.warn(format_args!(
                        "{}: old batch not removed: {err}",
                        dir.display()
                    ));
                }
            }
        }
    }

    fn run(&self, force: bool, repeat: bool) -> Result<Exit, Error> {
        let work = &self.cfg.work_dir;
        fs::create_dir_all(work).map_err(|e| Error::io(work, e))?;
        let lock_path = work.join("lock");
        let lock = crate::error::open_lock_file(&lock_path)?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                if self.tty {
                    self.diag.warn(format_args!(
                        "another run holds {}: nothing done",
                        lock_path.display()
                    ));
                }
                return Ok(Exit::Success);
            }
            Err(TryLockError::Error(e)) => return Err(Error::io(&lock_path, e)),
        }
        let _ = lock.set_len(0);
        let _ = writeln!(&lock, "{}", std::process::id());

        let mut st = State::load(work)?;
        self.prune(&st);
        let mut result: Option<Exit> = None;
        let combine = |r: &mut Option<Exit>, e: Exit| {
            *r = Some(match *r {
                Some(old) if rank(old) >= rank(e) => old,
                _ => e,
            });
        };

        // A batch a killed run left behind is finished first.
        if let Some(running) = st.running.clone() {
            let b = BatchDir {
                dir: work.join(&running.id),
                id: running.id.clone(),
            };
            if b.path(list::LIST).is_file() {
                self.diag.warn(format_args!(
                    "batch {} was not finished by an earlier run: finishing it",
                    b.id
                ));
                let (e, finished) = self.batch(&b, false)?;
                combine(&mut result, e);
                if finished {
                    st.built = Some(running.fingerprint);
                    st.running = None;
                    st.save(work)?;
                }
                if !repeat {
                    self.diag.finish(Exit::Success);
                    return Ok(e);
                }
            } else {
                st.running = None;
                st.save(work)?;
            }
        }

        let pending = work.join(list::PENDING);
        for round in 0..MAX_LOOPS {
            match self.round(&mut st, force && round == 0, &pending, round) {
                Ok(None) => break,
                Ok(Some((e, finished))) => {
                    combine(&mut result, e);
                    // A batch whose mail did not go out is finished by the
                    // next run, before anything new.
                    if !repeat || !finished {
                        break;
                    }
                }
                // The batches made so far keep their status.
                Err(e) if result.is_some() => {
                    self.diag.error(&e);
                    combine(&mut result, Exit::Failed);
                    break;
                }
                Err(e) => return Err(e),
            }
            if round + 1 == MAX_LOOPS {
                self.diag.warn(format_args!(
                    "--loop: {MAX_LOOPS} batches made; the next run goes on"
                ));
            }
        }
        Ok(match result {
            None => self.diag.finish(Exit::NothingToDo),
            Some(e) => {
                self.diag.finish(Exit::Success);
                e
            }
        })
    }

    /// Whether the delta found is one to build: with the update's output,
    /// any change; with the branch's whole delta, one not built already.
    pub(crate) fn changed(&self, delta: &list::Found, st: &State) -> bool {
        match self.cfg.delta {
            config::Delta::Update => delta.ports > 0,
            _ => delta.ports > 0 && st.built.as_deref() != Some(&delta.fingerprint),
        }
    }

    /// One round: update, list, and when something changed (or `force`), a
    /// batch.  `None` when nothing changed.
    fn round(
        &self,
        st: &mut State,
        force: bool,
        pending: &Path,
        round: usize,
    ) -> Result<Option<(Exit, bool)>, Error> {
        let work = &self.cfg.work_dir;
        if let Some(update) = &self.cfg.update {
            self.progress("updating the ports tree");
            list::update(self, update, pending)?;
        }
        self.progress("listing the changed ports");
        let delta = list::delta(self, pending)?;
        if !self.changed(&delta, st) && !force {
            // What the update said was looked at: it goes with no batch.
            let _ = fs::remove_file(pending);
            return Ok(None);
        }
        let expanded = list::expand(self, &delta.stdout)?;
        let b = self.new_batch(&delta.fingerprint, round)?;
        list::write_list(self, &b, &expanded, pending)?;
        st.running = Some(Running {
            id: b.id.clone(),
            fingerprint: delta.fingerprint.clone(),
        });
        st.save(work)?;
        let _ = fs::remove_file(pending);

        let (e, finished) = self.batch(&b, delta.failed || expanded.failed)?;
        if finished {
            st.built = Some(delta.fingerprint);
            st.running = None;
            st.save(work)?;
        }
        Ok(Some((e, finished)))
    }

    /// A new batch id and its directory: `YYYYMMDD-HHMMSS-<hash>`.
    fn new_batch(&self, fingerprint: &str, round: usize) -> Result<BatchDir, Error> {
        let base = crate::host::new_batch_id(
            SystemTime::now(),
            &[
                fingerprint.as_bytes(),
                &round.to_le_bytes(),
                &std::process::id().to_le_bytes(),
            ],
        );
        for n in 0..100 {
            let id = if n == 0 {
                base.clone()
            } else {
                format!("{base}.{n}")
            };
            let dir = self.cfg.work_dir.join(&id);
            match fs::create_dir(&dir) {
                Ok(()) => return Ok(BatchDir { id, dir }),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(Error::io(&dir, e)),
            }
        }
        Err(Error::Usage(format!(
            "{}: cannot make a batch directory",
            self.cfg.work_dir.display()
        )))
    }

    /// Prefetch, fan out, join, mail: the exit status of the batch, and whether
    /// the mail went out (sent or saved), which ends the batch.
    fn batch(&self, b: &BatchDir, list_failed: bool) -> Result<(Exit, bool), Error> {
        let mut notices: Vec<Record> = Vec::new();
        let mut failed = list_failed;
        if self.cfg.prefetch && !b.path(list::FETCH).exists() {
            self.progress(format_args!("batch {}: fetching the distfiles", b.id));
            failed |= list::prefetch(self, b, &mut notices)?;
        }
        self.progress(format_args!(
            "batch {}: handing it to {} targets",
            b.id,
            self.cfg.targets.len()
        ));
        let targets = fanout::fan_out(self, b)?;
        // On a terminal, a line per target with how it ended.
        for t in &targets {
            let took = t
                .get("seconds")
                .and_then(serde_json::Value::as_f64)
                .map(|s| {
                    crate::time::show_duration(std::time::Duration::from_secs(s.round() as u64))
                })
                .unwrap_or_default();
            self.diag.tty_note(format_args!(
                "batch {}: target {}: {} in {took}: {}",
                b.id,
                t.str("name").unwrap_or("?"),
                t.str("status").unwrap_or("?"),
                t.str("message").unwrap_or("")
            ));
        }
        self.progress(format_args!("batch {}: sending the mail", b.id));
        let mail = report::summarize(self, b, &targets, &notices)?;
        failed |= mail.failed;
        let status = |t: &Record| t.word::<TargetStatus>("status");
        failed |= targets
            .iter()
            .any(|t| status(t) == Some(TargetStatus::Failed));
        let lost = targets.iter().any(|t| {
            matches!(
                status(t),
                Some(TargetStatus::Timeout | TargetStatus::Unreachable)
            )
        });
        let e = if lost {
            Exit::TargetLost
        } else if mail.alarm {
            Exit::NothingBuilt
        } else if mail.saved {
            Exit::TempFail
        } else if failed {
            Exit::Failed
        } else if mail.nothing {
            Exit::NothingToDo
        } else {
            Exit::Success
        };
        Ok((e, mail.finished))
    }
}

/// Write a file whole or not at all.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), Error> {
    crate::atomic::write_atomic(path, bytes).map_err(|e| Error::io(path, e))
}

/// Open a file for appending, made when missing.
pub(crate) fn append(path: &Path) -> Result<File, Error> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|e| Error::io(path, e))
}
