//! Plans: what the spool's chain would build, asked through the spool, so that
//! a shared spool and one reached over ssh answer alike, from the build host's
//! own tree, mk.conf and repository.
//!
//! ```text
//! spool/plan/<id>.jsonl   a request: a batch file (batch record, then the list)
//! spool/plan/<id>.work    the request being answered (claimed by rename(2))
//! spool/plan/<id>.out     the answer: build-list -n's records for it
//! ```
//!
//! Files left behind (an answer nobody came for) go after a day.
//!
//! `build-trigger plan` drops a request (tmp/, then rename(2)) and waits for
//! the answer; the `watch` or `run-once` serving the spool answers each
//! request at once, even while a batch runs, by running its own chain's
//! build-list stage with `-n` over it: the request is only ever a list, what
//! runs is the chain the watcher was started with, and a dry run changes
//! nothing.

use std::fs;
use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use super::chain::{Chain, OK_STATUS};
use super::spool::{batch_file, drop_locked, read_input, DirEvents, Spool, State};
use super::{PlanArgs, TOOL};
use crate::diag::{Diag, Exit};
use crate::host::check_batch;
use crate::record::{Level, Record};
use crate::Error;

/// The spool's directory of plan requests and answers.
pub const PLAN_DIR: &str = "plan";
/// The stage of the chain a plan runs (with -n).
const PLANNER: &str = "build-list";
/// How long one plan may take (make over the list, nothing built).
const PLAN_LIMIT: Duration = Duration::from_secs(600);
/// How often the server and the client look when no event came.
const POLL: Duration = Duration::from_secs(1);

impl Spool {
    pub fn plan_dir(&self) -> PathBuf {
        self.root().join(PLAN_DIR)
    }

    fn plan_request(&self, id: &str) -> PathBuf {
        self.plan_dir().join(format!("{id}.jsonl"))
    }

    fn plan_claimed(&self, id: &str) -> PathBuf {
        self.plan_dir().join(format!("{id}.work"))
    }

    fn plan_answer(&self, id: &str) -> PathBuf {
        self.plan_dir().join(format!("{id}.out"))
    }

    /// The requests waiting for an answer, oldest first.
    fn plan_requests(&self) -> Vec<String> {
        let mut v: Vec<(SystemTime, String)> = fs::read_dir(self.plan_dir())
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| {
                let name = e.file_name().into_string().ok()?;
                let id = name.strip_suffix(".jsonl")?.to_string();
                let m = e.metadata().ok().filter(|m| m.is_file())?;
                (check_batch(&id).is_ok() && !self.plan_answer(&id).exists())
                    .then(|| (m.modified().unwrap_or(SystemTime::UNIX_EPOCH), id))
            })
            .collect();
        v.sort();
        v.into_iter().map(|(_, id)| id).collect()
    }
}

/// `build-trigger plan`: drop the request, wait for the answer, print it.
pub fn plan(a: &PlanArgs, diag: &Diag) -> Result<Exit, Error> {
    let spool = Spool::existing(&a.spool.spool)?;
    let input = read_input(a.file.as_deref())?;
    let (rec, body) = batch_file(&input, None, SystemTime::now())?;
    let id = rec.str("id").unwrap_or_default().to_string();
    fs::create_dir_all(spool.plan_dir()).map_err(|e| Error::io(spool.plan_dir(), e))?;
    let req = spool.plan_request(&id);
    let asked = drop_locked(&spool, &req, &body, || {
        [&req, &spool.plan_claimed(&id), &spool.plan_answer(&id)]
            .iter()
            .any(|p| p.exists())
            .then_some(())
    })?;
    if asked.is_some() {
        return Err(Error::Usage(format!(
            "a plan of batch {id} is asked already ({})",
            req.display()
        )));
    }
    let answer = spool.plan_answer(&id);
    let events = DirEvents::on(&[spool.plan_dir()]);
    let rx = &events.rx;
    let deadline = Instant::now() + a.timeout;
    loop {
        if let Ok(text) = fs::read(&answer) {
            let _ = fs::remove_file(&answer);
            let mut out = std::io::stdout().lock();
            out.write_all(&text).map_err(Error::stdout)?;
            out.flush().map_err(Error::stdout)?;
            return Ok(Exit::Success);
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            // Nobody answered: the request goes, no stale plan is left.
            let _ = fs::remove_file(spool.plan_request(&id));
            diag.error(format_args!(
                "{}: no answer in {}: no build-trigger watch serves the spool?",
                spool.root().display(),
                crate::time::show_duration(a.timeout)
            ));
            return Ok(Exit::TempFail);
        }
        let _ = rx.recv_timeout(POLL.min(left));
    }
}

/// Answer every request waiting; remove what is left of old ones.
pub fn answer_all(spool: &Spool, chain: &Chain, diag: &Diag) {
    for id in spool.plan_requests() {
        if let Err(e) = answer(spool, chain, &id) {
            diag.warn(format_args!("plan {id}: {e}"));
        }
    }
    for e in fs::read_dir(spool.plan_dir())
        .into_iter()
        .flatten()
        .flatten()
    {
        let old = e
            .metadata()
            .and_then(|m| m.modified())
            .is_ok_and(|t| crate::time::older_than(t, 1));
        if old {
            let _ = fs::remove_file(e.path());
        }
    }
}

/// Answer the plan requests of the spool as they come, until `stop`: in a
/// thread of its own beside the batches.
pub fn serve(spool: Spool, chain: Chain, stop: Arc<AtomicBool>, diag: Diag) {
    let events = DirEvents::on(&[spool.plan_dir()]);
    let rx = &events.rx;
    while !stop.load(Ordering::SeqCst) {
        answer_all(&spool, &chain, &diag);
        let _ = rx.recv_timeout(POLL);
        while rx.try_recv().is_ok() {}
    }
}

/// Answer one request: the chain's build-list stage with -n over it, its
/// records, and a notice when it could not say.
fn answer(spool: &Spool, chain: &Chain, id: &str) -> Result<(), Error> {
    let req = spool.plan_claimed(id);
    match fs::rename(spool.plan_request(id), &req) {
        Ok(()) => {}
        // Another server answers it, or the asker gave up.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(Error::io(spool.plan_request(id), e)),
    }
    let root = spool.root().to_string_lossy().into_owned();
    let mut body = Vec::new();
    let problem = match chain.stages.iter().find(|s| s.name == PLANNER) {
        None => Some(format!(
            "the chain {} has no {PLANNER} stage: nothing to plan with",
            chain.path.display()
        )),
        Some(stage) => {
            // -n first: whatever the stage's own arguments, a plan builds
            // nothing.
            let mut cmd = chain.command(stage, id, &root, &["-n"]);
            cmd.arg(&req);
            match crate::proc::output_within(cmd, PLAN_LIMIT) {
                Ok((st, out, err)) => {
                    body.extend_from_slice(out.as_bytes());
                    (!st.code().is_some_and(|c| OK_STATUS.contains(&c))).then(|| {
                        format!(
                            "{PLANNER} -n failed ({st}): {}",
                            crate::tail::short(&err, 3)
                        )
                    })
                }
                Err(e) => Some(e),
            }
        }
    };
    if let Some(m) = problem {
        if !body.is_empty() && !body.ends_with(b"\n") {
            body.push(b'\n');
        }
        let mut n = Record::notice(TOOL, Level::Error, format!("plan: {m}"));
        n.set("batch", id);
        body.extend_from_slice(n.to_line().as_bytes());
        body.push(b'\n');
    }
    let dest = spool.plan_answer(id);
    let tmp = spool
        .dir(State::Tmp)
        .join(format!("{id}.{}.answer", std::process::id()));
    // The request goes first: the asker finds nothing left once answered.
    let _ = fs::remove_file(&req);
    crate::atomic::write_via(&tmp, &dest, &body).map_err(|e| Error::io(&dest, e))
}
