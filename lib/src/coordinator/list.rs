//! The list stage on the initiator: the update command, `ports-delta`,
//! `pkgpath-expand`, the batch's list file, and the prefetch with
//! `build-list --target fetch`.

use std::fs::{self, File};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::Path;
use std::process::{Command, ExitStatus, Stdio};

use serde_json::json;
use sha2::{Digest, Sha256};

use super::config::Delta;
use super::{append, program, BatchDir, Coordinator};
use crate::diag::Exit;
use crate::record::{BuildTarget, Kind, Level, Record};
use crate::Error;

/// The update output not yet given to a batch, in the work directory.
pub const PENDING: &str = "update.pending";
/// The batch record and the list, in the batch directory.
pub const LIST: &str = "list.jsonl";
/// The update output of the batch: the changes shown in the mail.
pub const CHANGES: &str = "changes.txt";
/// The records of the prefetch, and its standard error.
pub const FETCH: &str = "fetch.jsonl";
pub const FETCH_LOG: &str = "fetch.log";

fn command_error(program: &str, message: impl Into<String>) -> Error {
    Error::Command {
        program: program.into(),
        message: message.into(),
    }
}

fn spawn_error(program: &Path, e: std::io::Error) -> Error {
    command_error(
        &program.display().to_string(),
        format!("cannot run it: {e}"),
    )
}

/// Run the update command in the ports tree; its standard output and error go,
/// interleaved, to the end of `pending`.
pub fn update(c: &Coordinator<'_>, argv: &[String], pending: &Path) -> Result<(), Error> {
    let out = append(pending)?;
    let start = out
        .metadata()
        .map(|m| m.len())
        .map_err(|e| Error::io(pending, e))?;
    let err = out.try_clone().map_err(|e| Error::io(pending, e))?;
    let status = c
        .command(&argv[0])
        .args(&argv[1..])
        .current_dir(&c.cfg.ports_dir)
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .status()
        .map_err(|e| command_error(&argv[0], format!("update: cannot run it: {e}")))?;
    if status.success() {
        return Ok(());
    }
    let mut text = String::new();
    if let Ok(mut f) = File::open(pending) {
        if f.seek(SeekFrom::Start(start)).is_ok() {
            let mut b = Vec::new();
            let _ = f.read_to_end(&mut b);
            text = String::from_utf8_lossy(&b).into_owned();
        }
    }
    Err(command_error(
        &argv[0],
        format!(
            "update failed ({status}): {}; nothing built",
            crate::tail::short(&text, 3)
        ),
    ))
}

/// What ports-delta found.
pub struct Found {
    /// Its records.
    pub stdout: Vec<u8>,
    /// How many port and removed records.
    pub ports: usize,
    /// Of the port and removed records (and the branch head, with git).
    pub fingerprint: String,
    /// It reported bad input lines (exit 1).
    pub failed: bool,
}

/// Run a program with `input` on its standard input; its standard output read
/// whole, its standard error the coordinator's.
fn run_filter(
    mut cmd: Command,
    program: &Path,
    input: Option<&[u8]>,
) -> Result<(ExitStatus, Vec<u8>), Error> {
    cmd.stdin(if input.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    })
    .stdout(Stdio::piped());
    let mut child = cmd.spawn().map_err(|e| spawn_error(program, e))?;
    let writer = match (child.stdin.take(), input) {
        (Some(mut sin), Some(data)) => {
            let data = data.to_vec();
            Some(std::thread::spawn(move || {
                let _ = sin.write_all(&data);
            }))
        }
        _ => None,
    };
    let out = child
        .wait_with_output()
        .map_err(|e| spawn_error(program, e))?;
    if let Some(w) = writer {
        let _ = w.join();
    }
    Ok((out.status, out.stdout))
}

/// The usual reading of a filter's exit status: 0 and 3 are fine, 1 is a
/// failure reported on its standard error, 2 a configuration error.
fn check_status(name: &str, status: ExitStatus) -> Result<bool, Error> {
    match status.code() {
        Some(0) | Some(3) => Ok(false),
        Some(1) => Ok(true),
        Some(2) => Err(Error::Usage(format!(
            "{name} refused the configuration (see its message above); nothing built"
        ))),
        _ => Err(command_error(
            name,
            format!("failed ({status}); nothing built"),
        )),
    }
}

/// `ports-delta` over the delta source.
pub fn delta(c: &Coordinator<'_>, pending: &Path) -> Result<Found, Error> {
    let prog = program("ports-delta");
    let mut cmd = c.command(&prog);
    cmd.arg("--ports-dir").arg(&c.cfg.ports_dir);
    for e in &c.cfg.exclude {
        cmd.arg("--exclude").arg(e);
    }
    match &c.cfg.delta {
        Delta::Cvs { base, branch } => {
            cmd.arg("--cvs").arg(format!("{base}:{branch}"));
        }
        Delta::Git { base, branch } => {
            cmd.arg("--git").arg(format!("{base}..{branch}"));
        }
        // No update output yet: no change (nothing is made: `run -n`
        // changes nothing).
        Delta::Update if pending.exists() => {
            cmd.arg(pending);
        }
        Delta::Update => {
            cmd.arg("/dev/null");
        }
    }
    let (status, stdout) = run_filter(cmd, &prog, None)?;
    let failed = check_status("ports-delta", status)?;
    let mut h = Sha256::new();
    let mut ports = 0;
    for line in stdout.split(|&b| b == b'\n') {
        let Ok(r) = std::str::from_utf8(line)
            .map_err(|_| ())
            .and_then(|l| Record::parse(l).map_err(|_| ()))
        else {
            continue;
        };
        if r.is(Kind::Port) || r.is(Kind::Removed) {
            ports += 1;
            h.update(line);
            h.update(b"\n");
        }
    }
    if let Delta::Git { branch, .. } = &c.cfg.delta {
        // git's delta has no revisions: a second commit to a file already
        // changed would not change it.
        if let Ok(out) = c
            .command("git")
            .arg("rev-parse")
            .arg("--verify")
            .arg("-q")
            .arg(format!("{branch}^{{commit}}"))
            .current_dir(&c.cfg.ports_dir)
            .stdin(Stdio::null())
            .stderr(Stdio::null())
            .output()
        {
            h.update(&out.stdout);
        }
    }
    let fingerprint = h.finalize().iter().map(|b| format!("{b:02x}")).collect();
    Ok(Found {
        stdout,
        ports,
        fingerprint,
        failed,
    })
}

/// What pkgpath-expand made of the delta.
pub struct Expanded {
    pub stdout: Vec<u8>,
    pub failed: bool,
}

/// `pkgpath-expand` over ports-delta's records.
pub fn expand(c: &Coordinator<'_>, delta: &[u8]) -> Result<Expanded, Error> {
    let prog = program("pkgpath-expand");
    let mut cmd = c.command(&prog);
    if let Some(db) = &c.cfg.sqlports {
        cmd.arg("--db").arg(db);
    }
    let (status, stdout) = run_filter(cmd, &prog, Some(delta))?;
    let failed = check_status("pkgpath-expand", status)?;
    Ok(Expanded { stdout, failed })
}

/// The batch directory's list (a `batch` record, then the list) and changes.
pub fn write_list(
    c: &Coordinator<'_>,
    b: &BatchDir,
    expanded: &Expanded,
    pending: &Path,
) -> Result<(), Error> {
    let mut batch = Record::new(Kind::Batch);
    batch.set("id", b.id.as_str());
    batch.set(
        "created",
        crate::time::utc_stamp(std::time::SystemTime::now()),
    );
    batch.set("tree", c.cfg.ports_dir.display().to_string());
    match &c.cfg.delta {
        Delta::Cvs { base, branch } => {
            batch.set("source", json!({"vcs": "cvs", "from": base, "to": branch}))
        }
        Delta::Git { base, branch } => {
            batch.set("source", json!({"vcs": "git", "from": base, "to": branch}))
        }
        Delta::Update => {}
    }
    let mut text = batch.to_line().into_bytes();
    text.push(b'\n');
    text.extend_from_slice(&expanded.stdout);
    if !text.ends_with(b"\n") {
        text.push(b'\n');
    }
    super::write_atomic(&b.path(LIST), &text)?;
    // The changes of files only: not the `?` lines nor the messages of cvs up.
    let output = fs::read(pending).unwrap_or_default();
    let changes = crate::ports_delta::real_changes(&String::from_utf8_lossy(&output));
    super::write_atomic(&b.path(CHANGES), changes.as_bytes())
}

/// `build-list --target fetch` on this host's tree, its logs in the work
/// directory: the prefetch, and its plan (`run -n`).
pub fn fetch_command(c: &Coordinator<'_>, prog: &Path) -> Command {
    let mut cmd = c.command(prog);
    cmd.arg("--target")
        .arg(BuildTarget::Fetch.as_str())
        .arg("--log-dir")
        .arg(c.cfg.work_dir.join("logs"))
        .arg("--ports-dir")
        .arg(&c.cfg.ports_dir)
        .arg("--make")
        .arg(&c.cfg.make);
    cmd
}

/// `build-list --target fetch` over the list, on this host's tree: its records
/// to fetch.jsonl, its standard error to fetch.log.  True when something failed.
pub fn prefetch(
    c: &Coordinator<'_>,
    b: &BatchDir,
    notices: &mut Vec<Record>,
) -> Result<bool, Error> {
    let prog = program("build-list");
    // The records go to a file of their own name until the prefetch is over,
    // then to fetch.jsonl: a run killed during the prefetch leaves no
    // fetch.jsonl, and the next run does it again (build-list's journal of the
    // batch skips what was fetched).
    let out_path = b.path(&format!("{FETCH}.part"));
    let log_path = b.path(FETCH_LOG);
    let out = File::create(&out_path).map_err(|e| Error::io(&out_path, e))?;
    let log = File::create(&log_path).map_err(|e| Error::io(&log_path, e))?;
    let list = File::open(b.path(LIST)).map_err(|e| Error::io(b.path(LIST), e))?;
    let status = fetch_command(c, &prog)
        .arg("--batch")
        .arg(&b.id)
        .stdin(list)
        .stdout(out)
        .stderr(log)
        .status();
    if status.is_ok() {
        fs::rename(&out_path, b.path(FETCH)).map_err(|e| Error::io(b.path(FETCH), e))?;
    }
    let problem = match status {
        Ok(s) if matches!(s.code(), Some(0) | Some(3)) => return Ok(false),
        // Failed fetches: in the records, which go to the summary.
        Ok(s) if s.code() == Some(Exit::Failed as i32) => return Ok(true),
        Ok(s) => {
            let text = fs::read_to_string(&log_path).unwrap_or_default();
            format!(
                "build-list --target fetch failed ({s}): {}",
                crate::tail::short(&text, 3)
            )
        }
        Err(e) => format!("{}: cannot run it: {e}", prog.display()),
    };
    c.diag.warn(format_args!("batch {}: {problem}", b.id));
    let mut n = Record::notice(super::TOOL, Level::Error, format!("prefetch: {problem}"));
    n.set("batch", b.id.as_str());
    notices.push(n);
    Ok(true)
}
