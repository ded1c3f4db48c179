//! The summary: every record of the batch, concatenated once each, into the real
//! summary-mail with the configured transport.

use std::collections::HashSet;
use std::fs;
use std::io::Write;
use std::process::Stdio;

use super::config::Transport;
use super::fanout::records_file;
use super::{list, program, BatchDir, Coordinator};
use crate::record::{BuildStatus, Kind, Record, TargetStatus, TransferStatus};
use crate::Error;

pub const SUMMARY: &str = "summary.jsonl";
pub const SUMMARY_JSON: &str = "summary.json";
pub const MAIL_RECORD: &str = "mail.jsonl";
pub const MAIL_TEXT: &str = "mail.txt";
/// Written before summary-mail is given the mail, removed once its record is
/// kept: found without `mail.jsonl`, a run stopped while the mail was handed
/// over, and it may have gone out.
pub const HANDOVER: &str = "mail.handover";
/// The failures of each arch's last batch (summary-mail --history): NEW,
/// STILL FAILING, fixed.
pub const HISTORY: &str = "history.json";
/// Where the mail of such a batch is put instead of being sent again.
pub const UNSENT: &str = "mail.unsent";

/// What the mail step says.
#[derive(Debug, Default)]
pub struct Mailed {
    /// The mail went out or was saved in the outbox: the batch is over.
    pub finished: bool,
    /// It was saved in the outbox (summary-mail exit 75).
    pub saved: bool,
    /// Ports were listed and nothing was built anywhere.
    pub alarm: bool,
    /// Nothing to tell: no mail.
    pub nothing: bool,
    /// A record said a build or transfer failed, a line was bad, or the mail
    /// could not be sent nor saved.
    pub failed: bool,
}

/// Every record of the batch once, in `summary.jsonl`, then the mail: the real
/// summary-mail over it, with the configured transport.
pub fn summarize(
    c: &Coordinator<'_>,
    b: &BatchDir,
    targets: &[Record],
    notices: &[Record],
) -> Result<Mailed, Error> {
    let mut m = Mailed::default();
    let summary = b.path(SUMMARY);
    let text = gather(c, b, targets, notices, &mut m);
    super::write_atomic(&summary, text.as_bytes())?;

    // A mail an interrupted run was handing over may have gone out: it is never
    // sent twice; it is kept in the batch directory for a person to look at.
    let interrupted = b.path(HANDOVER).exists() && !b.path(MAIL_RECORD).exists();
    let transport = if interrupted {
        c.diag.error(format_args!(
            "batch {}: an earlier run stopped while it handed the mail over; it may have been sent: not sent again, kept in {} (send it by hand if it did not arrive)",
            b.id,
            b.path(UNSENT).display()
        ));
        Transport::Maildir(b.path(UNSENT))
    } else {
        c.cfg.mail.transport.clone()
    };
    let prog = program("summary-mail");
    let mut cmd = mail_command(c, b, &prog, &transport);
    let print = matches!(transport, Transport::Print);
    if !print && !interrupted {
        super::write_atomic(
            &b.path(HANDOVER),
            format!("{}\n", crate::time::utc_stamp(std::time::SystemTime::now())).as_bytes(),
        )?;
    }
    let out = cmd
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| Error::Command {
            program: prog.display().to_string(),
            message: format!("cannot run it: {e}"),
        })?;
    if print {
        super::write_atomic(&b.path(MAIL_TEXT), &out.stdout)?;
        let mut so = std::io::stdout().lock();
        so.write_all(&out.stdout)
            .and_then(|_| so.flush())
            .map_err(Error::stdout)?;
    } else if !out.stdout.is_empty() {
        super::write_atomic(&b.path(MAIL_RECORD), &out.stdout)?;
    }
    if interrupted {
        // Kept, not sent: the batch is over, and the run says it needs a look.
        m.failed = true;
    }
    let _ = fs::remove_file(b.path(HANDOVER));
    m.alarm = fs::read(b.path(SUMMARY_JSON))
        .ok()
        .and_then(|t| serde_json::from_slice::<serde_json::Value>(&t).ok())
        .and_then(|v| v.get("alarm").and_then(|a| a.as_bool()))
        .unwrap_or(false);
    let said_mail = print
        || String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| Record::parse(l).ok())
            .any(|r| r.is(Kind::Mail));
    match out.status.code() {
        Some(0) => m.finished = true,
        Some(3) => {
            m.nothing = true;
            m.finished = true;
        }
        Some(4) => {
            m.alarm = true;
            m.finished = true;
        }
        Some(75) => {
            m.saved = true;
            m.finished = true;
        }
        _ => {
            m.failed = true;
            // Bad lines but the mail out: over all the same.
            m.finished = said_mail && out.status.code() == Some(1);
            c.diag.warn(format_args!(
                "batch {}: summary-mail failed ({}); the records are in {}",
                b.id,
                out.status,
                summary.display()
            ));
        }
    }
    Ok(m)
}

/// The records of the batch, each line once: the list, the prefetch, the
/// records of every target that finished, the notices and the target
/// records.  A failed build or transfer, or a bad line, marks `m` failed.
fn gather(
    c: &Coordinator<'_>,
    b: &BatchDir,
    targets: &[Record],
    notices: &[Record],
    m: &mut Mailed,
) -> String {
    let mut seen: HashSet<String> = HashSet::new();
    let mut text = String::new();
    let mut add = |line: &str, from: &str, m: &mut Mailed| {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || seen.contains(line) {
            return;
        }
        match Record::parse(line) {
            Ok(r) => {
                let failed = match r.known_kind() {
                    Some(Kind::Build) => r.word("status") == Some(BuildStatus::Failed),
                    Some(Kind::Transfer) => r.word("status") == Some(TransferStatus::Failed),
                    _ => false,
                };
                m.failed |= failed;
                seen.insert(line.to_string());
                text.push_str(line);
                text.push('\n');
            }
            Err(e) => {
                c.diag.warn(format_args!(
                    "batch {}: {from}: {e}: left out of the summary",
                    b.id
                ));
                m.failed = true;
            }
        }
    };
    let mut files = vec![(b.path(list::LIST), list::LIST.to_string())];
    files.push((b.path(list::FETCH), list::FETCH.to_string()));
    for t in targets {
        // The records of a target that finished, done or failed.
        if matches!(
            t.word("status"),
            Some(TargetStatus::Done | TargetStatus::Failed)
        ) {
            let name = t.str("name").unwrap_or_default();
            files.push((records_file(b, name), format!("target/{name}.jsonl")));
        }
    }
    for (path, name) in &files {
        if let Ok(t) = fs::read_to_string(path) {
            for l in t.lines() {
                add(l, name, m);
            }
        }
    }
    for r in notices.iter().chain(targets) {
        add(&r.to_line(), "build-coordinator", m);
    }
    text
}

/// summary-mail as the configuration says (the transport given), over
/// `summary.jsonl`, its summary to `summary.json`.
fn mail_command(
    c: &Coordinator<'_>,
    b: &BatchDir,
    prog: &std::path::Path,
    transport: &Transport,
) -> std::process::Command {
    let mail = &c.cfg.mail;
    let mut cmd = c.command(prog);
    for t in &mail.to {
        cmd.arg("--to").arg(t);
    }
    if let Some(f) = &mail.from {
        cmd.arg("--from").arg(f);
    }
    if let Some(s) = &mail.subject {
        cmd.arg("--subject").arg(s);
    }
    if let Some(s) = &mail.alarm_subject {
        cmd.arg("--alarm-subject").arg(s);
    }
    match transport {
        Transport::Smtp { server, tls } => {
            cmd.arg("--smtp")
                .arg(server.to_string())
                .arg("--tls")
                .arg(tls.as_str());
        }
        Transport::Sendmail(p) => {
            cmd.arg(format!("--sendmail={}", p.display()));
        }
        Transport::Maildir(d) => {
            cmd.arg("--maildir").arg(d);
        }
        Transport::Print => {
            cmd.arg("--print");
        }
    }
    cmd.arg("--outbox").arg(&mail.outbox);
    cmd.arg("--history").arg(c.cfg.work_dir.join(HISTORY));
    let changes = b.path(list::CHANGES);
    if fs::metadata(&changes).is_ok_and(|m| m.len() > 0) {
        cmd.arg("--changes").arg(&changes);
    }
    let json = b.path(SUMMARY_JSON);
    let _ = fs::remove_file(&json);
    cmd.arg("--json").arg(&json).arg(b.path(SUMMARY));
    cmd
}
