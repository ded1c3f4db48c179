//! `watch` and `run-once`: serve a spool, one chain at a time.
//!
//! The spool's lock is held for the whole run.  A batch left in cur/ (by a
//! crash, a SIGKILL, a stop) is run again first: build-list's journal makes that
//! cheap.  Then new/ is looked into, at start, on every notify event and every
//! --rescan (events get lost, and never come over NFS), and the oldest batch
//! there is claimed by rename(2) into cur/.

use std::collections::HashSet;
use std::fs;
use std::io::IsTerminal;
use std::time::{Duration, Instant};

use crossbeam_channel::{select, unbounded};

use super::chain::{self, Chain, Outcome, Stamp, Stop};
use super::spool::{Spool, State};
use super::{ChainArgs, TOOL};
use crate::diag::{Diag, Exit};
use crate::record::{Kind, Level, Record, TransferStatus};
use crate::Error;

/// What to run next.
enum Next {
    /// A batch found in cur/.
    Resume(String),
    /// A batch just claimed from new/.
    Claimed(String),
}

/// Counts of a `run-once`.
#[derive(Default)]
struct Tally {
    done: usize,
    failed: usize,
}

/// The lock of the spool's server, or `None` when another one holds it (said
/// by `watch`, and by `run-once` on a terminal).  This start ends a drain
/// asked before it.
fn take_spool(spool: &Spool, watching: bool, diag: &Diag) -> Result<Option<fs::File>, Error> {
    let lock = match spool.lock_watch()? {
        Ok(l) => l,
        Err(pid) => {
            let who = if pid.is_empty() {
                String::new()
            } else {
                format!(" (pid {pid})")
            };
            if watching || std::io::stderr().is_terminal() {
                diag.warn(format_args!(
                    "another build-trigger{who} serves {}: not starting",
                    spool.root().display()
                ));
            }
            return Ok(None);
        }
    };
    if spool.draining() {
        let _ = fs::remove_file(spool.drain_file());
        diag.tty_note(format_args!(
            "{}: the drain asked before is over: serving the spool again",
            spool.root().display()
        ));
    }
    Ok(Some(lock))
}

/// Serve the spool: `watch` with the rescan period, `run-once` without.
pub fn serve(args: &ChainArgs, rescan: Option<Duration>, diag: &Diag) -> Result<Exit, Error> {
    // First: a SIGTERM while it starts (rc.d stopping it at once) is a stop
    // like any other, exit 0.
    let stop = Stop::install()?;
    let spool = Spool::open(&args.spool.spool)?;
    let chain = Chain::load(&args.chain, &args.env)?;
    let Some(_lock) = take_spool(&spool, rescan.is_some(), diag)? else {
        return Ok(Exit::TempFail);
    };
    let stamp = Stamp::new(&chain);
    {
        let (spool, chain, stop, diag) = (spool.clone(), chain.clone(), stop.flag(), diag.clone());
        std::thread::Builder::new()
            .name("plans".into())
            .spawn(move || super::plan::serve(spool, chain, stop, diag))
            .map_err(Error::system("start a thread"))?;
    }

    let (ev_tx, ev_rx) = unbounded::<()>();
    // Kept, so that the channel never closes when the watcher goes.
    let _keep = ev_tx.clone();
    drain_on_sigusr1(&spool, ev_tx.clone())?;
    let _watcher = match rescan {
        Some(every) => watch_new(&spool, ev_tx, every, diag),
        None => None,
    };

    let prune = |diag: &Diag| {
        if let Err(e) = spool.prune(args.keep_days) {
            diag.warn(format_args!("old batches not removed: {e}"));
        }
    };
    prune(diag);
    let mut deferred: HashSet<String> = HashSet::new();
    let mut tally = Tally::default();
    let mut last_retry = Instant::now();
    loop {
        if stop.stopped() {
            return Ok(Exit::Success);
        }
        while ev_rx.try_recv().is_ok() {}
        if spool.draining() {
            diag.warn(format_args!(
                "{}: drained: {} batch(es) in cur/ and new/ wait for the next start",
                spool.root().display(),
                spool.batches(State::Cur)?.len() + spool.batches(State::New)?.len()
            ));
            return Ok(Exit::Success);
        }
        if let Some(every) = rescan {
            if last_retry.elapsed() >= every {
                deferred.clear();
                last_retry = Instant::now();
            }
        }
        let last_scan = match next(&spool, &deferred, diag) {
            Ok(Some(work)) => {
                let (id, resumed) = match work {
                    Next::Resume(id) => (id, true),
                    Next::Claimed(id) => (id, false),
                };
                if resumed && !chain::clear_orphans(&spool, &id, &stop, diag)? {
                    deferred.insert(id);
                    continue;
                }
                let ran = one(&chain, &spool, &id, &stop, &stamp, diag);
                if matches!(ran, Ok(Some(_))) {
                    prune(diag);
                }
                match ran {
                    Ok(Some(true)) => tally.done += 1,
                    Ok(Some(false)) => tally.failed += 1,
                    // Stopped or drained: the batch stays in cur/ for the next
                    // start (the loop's first checks end the serving).
                    Ok(None) => continue,
                    Err(e) => {
                        diag.warn(format_args!(
                            "batch {id}: {e}: left in cur/, tried again later"
                        ));
                        deferred.insert(id);
                    }
                }
                continue;
            }
            Ok(None) => Instant::now(),
            Err(e) if rescan.is_some() => {
                // The spool may come back (an NFS server restarting).
                diag.warn(&e);
                Instant::now()
            }
            Err(e) => return Err(e),
        };
        let Some(every) = rescan else {
            break;
        };
        let left = every.saturating_sub(last_scan.elapsed());
        select! {
            recv(ev_rx) -> _ => {}
            recv(stop.rx) -> _ => {}
            default(left) => {}
        }
    }
    // run-once: the plans asked meanwhile are answered before it goes.
    super::plan::answer_all(&spool, &chain, diag);
    // run-once: what is left in cur/ could not be run now.
    Ok(if !deferred.is_empty() {
        Exit::TempFail
    } else if tally.failed > 0 {
        Exit::Failed
    } else if tally.done == 0 {
        Exit::NothingToDo
    } else {
        Exit::Success
    })
}

/// SIGUSR1 asks for a drain, as `build-trigger drain` does (for rc.d and
/// kill(1)): the drain file is made at once, whatever the watcher is doing,
/// and an idle watcher wakes up to it.
fn drain_on_sigusr1(spool: &Spool, wake: crossbeam_channel::Sender<()>) -> Result<(), Error> {
    let mut signals = signal_hook::iterator::Signals::new([signal_hook::consts::SIGUSR1])
        .map_err(Error::system("catch SIGUSR1"))?;
    let spool = spool.clone();
    std::thread::spawn(move || {
        for _ in signals.forever() {
            let _ = spool.ask_drain();
            let _ = wake.send(());
        }
    });
    Ok(())
}

/// notify on new/; without it (reported), only the rescans find batches.
fn watch_new(
    spool: &Spool,
    tx: crossbeam_channel::Sender<()>,
    every: Duration,
    diag: &Diag,
) -> Option<notify::RecommendedWatcher> {
    use notify::Watcher;
    let dir = spool.dir(State::New);
    let w = notify::recommended_watcher(move |ev: notify::Result<notify::Event>| {
        if super::spool::worth_a_look(&ev) {
            let _ = tx.send(());
        }
    })
    .and_then(|mut w| {
        w.watch(&dir, notify::RecursiveMode::NonRecursive)?;
        Ok(w)
    });
    match w {
        Ok(w) => Some(w),
        Err(e) => {
            diag.warn(format_args!(
                "{}: cannot watch for new batches ({e}): looking every {}",
                dir.display(),
                crate::time::show_duration(every)
            ));
            None
        }
    }
}

/// The next batch to run: one in cur/ (not deferred), else the oldest of new/,
/// claimed.
fn next(spool: &Spool, deferred: &HashSet<String>, diag: &Diag) -> Result<Option<Next>, Error> {
    for (id, _) in spool.batches(State::Cur)? {
        if deferred.contains(&id) {
            continue;
        }
        // Finished, but the crash came before cur/ was cleared.
        if [State::Done, State::Failed]
            .iter()
            .any(|&st| fs::symlink_metadata(spool.file(st, &id)).is_ok())
        {
            chain::remove_run_files(spool, &id);
            let _ = fs::remove_file(spool.file(State::Cur, &id));
            continue;
        }
        return Ok(Some(Next::Resume(id)));
    }
    for name in spool.strays(State::New) {
        if warned_strays()
            .lock()
            .is_ok_and(|mut w| w.insert(name.clone()))
        {
            diag.warn(format_args!(
                "warning: new/{name}: not a batch (a batch is <id>.jsonl): never run"
            ));
        }
    }
    for (id, _) in spool.batches(State::New)? {
        let from = spool.file(State::New, &id);
        if let Some(st) = [State::Done, State::Failed]
            .into_iter()
            .find(|&st| fs::symlink_metadata(spool.file(st, &id)).is_ok())
        {
            diag.warn(format_args!(
                "batch {id} is in new/ but already in {}/: removed from new/, not run again",
                st.as_str()
            ));
            let _ = fs::remove_file(&from);
            continue;
        }
        match fs::rename(&from, spool.file(State::Cur, &id)) {
            Ok(()) => return Ok(Some(Next::Claimed(id))),
            // Gone since the listing.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(Error::io(from, e)),
        }
    }
    Ok(None)
}

/// Run one batch from cur/ and file it in done/ or failed/: `Some(true)` done,
/// `Some(false)` failed, `None` stopped.
fn one(
    chain: &Chain,
    spool: &Spool,
    id: &str,
    stop: &Stop,
    stamp: &Stamp,
    diag: &Diag,
) -> Result<Option<bool>, Error> {
    let earlier = keep_earlier_deliveries(spool, id);
    chain::remove_run_files(spool, id);
    let run = chain::run(chain, spool, id, stop, stamp, diag)?;
    // A stage that drained (exit 75: build-list stopped once its port was
    // done) leaves the batch in cur/, as a stop does.
    let drained = spool.draining()
        && run
            .stages
            .iter()
            .any(|s| s.ended == Some(chain::Ended::Exit(75)));
    let (st, ok) = match run.outcome {
        _ if drained => return Ok(None),
        Outcome::Stopped => return Ok(None),
        Outcome::Done => (State::Done, true),
        Outcome::Failed(_) => (State::Failed, false),
    };
    let out_path = spool.dir(State::Cur).join(format!("{id}.out"));
    // What earlier, interrupted runs of this chain delivered comes first: the
    // batch's mail lists what the batch delivered, whichever run delivered it
    // (a rerun finds those files at the destination, unchanged).
    let mut body = earlier;
    body.extend(fs::read(&out_path).map_err(|e| Error::io(&out_path, e))?);
    if !body.is_empty() && !body.ends_with(b"\n") {
        body.push(b'\n');
    }
    let mut push = |r: &Record| {
        body.extend_from_slice(r.to_line().as_bytes());
        body.push(b'\n');
    };
    push(&run.record(stamp));
    let message = run.failure_message();
    if let Some(m) = &message {
        let mut n = Record::notice(TOOL, Level::Error, m.as_str());
        n.set("batch", id);
        stamp.stamp(&mut n);
        push(&n);
    }
    let log = run.log();
    if !log.is_empty() {
        spool.write_atomic(st, &format!("{id}.log"), &log)?;
    }
    spool.write_atomic(st, &format!("{id}.jsonl"), &body)?;
    chain::remove_run_files(spool, id);
    let _ = fs::remove_file(earlier_file(spool, id));
    let _ = fs::remove_file(spool.file(State::Cur, id));
    if let Some(m) = run.failure() {
        diag.warn(format_args!(
            "{m} (see {})",
            spool.file(State::Failed, id).display()
        ));
    }
    Ok(Some(ok))
}

/// `cur/<id>.delivered`: the `transfer` records of files that interrupted runs
/// of the batch's chain sent.
fn earlier_file(spool: &Spool, id: &str) -> std::path::PathBuf {
    spool.dir(State::Cur).join(format!("{id}.delivered"))
}

/// Before a run of batch `id` starts: when an earlier run of its chain left its
/// output in cur/ (it was stopped, or build-trigger crashed), keep the
/// `transfer` records of the files it sent, added to those of the runs before
/// it, in `cur/<id>.delivered`; return them all.
fn keep_earlier_deliveries(spool: &Spool, id: &str) -> Vec<u8> {
    let path = earlier_file(spool, id);
    let mut kept = fs::read(&path).unwrap_or_default();
    let out = spool.dir(State::Cur).join(format!("{id}.out"));
    if let Ok(text) = fs::read(&out) {
        let mut added = false;
        for line in text.split(|&b| b == b'\n') {
            let Ok(r) = std::str::from_utf8(line)
                .map_err(|_| ())
                .and_then(|l| Record::parse(l).map_err(|_| ()))
            else {
                continue;
            };
            if r.is(Kind::Transfer) && r.word("status") == Some(TransferStatus::Sent) {
                kept.extend_from_slice(r.to_line().as_bytes());
                kept.push(b'\n');
                added = true;
            }
        }
        if added {
            // Best effort: without it, the rerun's own records still tell.
            // (A temporary file a crash left is removed with the run's files.)
            let tmp = path.with_extension("delivered.tmp");
            let _ = crate::atomic::write_via(&tmp, &path, &kept);
        }
    }
    kept
}

/// The names of new/ already warned about: each once per process.
fn warned_strays() -> &'static std::sync::Mutex<HashSet<String>> {
    static W: std::sync::OnceLock<std::sync::Mutex<HashSet<String>>> = std::sync::OnceLock::new();
    W.get_or_init(|| std::sync::Mutex::new(HashSet::new()))
}
