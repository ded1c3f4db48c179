//! What a crashed build-trigger left in cur/: the stderr files its stages
//! hold, the chain still at work.

use std::fs::{self, File, TryLockError};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::build_trigger::spool::{Spool, State};
use crate::diag::Diag;
use crate::proc::{signal_group, Sig};
use crate::{Error, Record};

use super::*;

/// How long a build-trigger waits for the chain of a crashed one to go after
/// killing it.
pub(super) const ORPHAN_WAIT: Duration = Duration::from_secs(30);

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
    for ext in ["out", "status", "status.tmp", "delivered.tmp", "progress"] {
        let _ = fs::remove_file(cur.join(format!("{id}.{ext}")));
    }
}
