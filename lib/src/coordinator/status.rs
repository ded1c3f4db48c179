//! `build-coordinator status`: every target's spool at once, as
//! `build-trigger status` tells it there (over ssh as a run reaches the
//! host), each record stamped with its target.

use std::io::IsTerminal;
use std::time::{Duration, SystemTime};

use super::config::{Config, Target};
use super::fanout::{on_target, trigger_program};
use crate::diag::{Diag, Exit};
use crate::jsonl::Output;
use crate::record::{Kind, Level, Record};
use crate::Error;

/// How long one target may take to answer.
const TIMEOUT: Duration = Duration::from_secs(30);

pub fn status(cfg: &Config, json: bool, diag: &Diag) -> Result<Exit, Error> {
    let mut records = Vec::new();
    let mut failed = 0;
    for t in &cfg.targets {
        match ask(t, &cfg.env, TIMEOUT) {
            Ok(found) => {
                for mut r in found {
                    r.set("target", t.name.as_str());
                    records.push(r);
                }
            }
            Err(m) => {
                failed += 1;
                diag.error(format_args!("target {}: {m}", t.name));
                let mut n = Record::notice(super::TOOL, Level::Error, m);
                n.set("target", t.name.as_str());
                records.push(n);
            }
        }
    }
    let mut out = Output::stdout();
    if !json && std::io::stdout().is_terminal() {
        out.line(table(&records, SystemTime::now()).trim_end())?;
    } else {
        for r in &records {
            out.record(r)?;
        }
    }
    out.flush()?;
    Ok(diag.finish(if failed > 0 {
        Exit::Failed
    } else {
        Exit::Success
    }))
}

/// `build-trigger status --json` on target `t`, over ssh as a run reaches
/// it, within `limit`: its records, or why there are none.
pub(crate) fn ask(
    t: &Target,
    env: &[(String, String)],
    limit: Duration,
) -> Result<Vec<Record>, String> {
    let spool = t.spool.to_string_lossy().into_owned();
    let mut cmd = on_target(
        t,
        &trigger_program(t),
        &["status", "--spool", &spool, "--json"],
    );
    cmd.envs(env.iter().map(|(k, v)| (k, v)));
    // What ran: build-trigger here, ssh for a remote target.
    let prog = cmd.get_program().to_string_lossy().into_owned();
    match crate::proc::output_within(cmd, limit)? {
        (st, o, _) if st.success() => Ok(o.lines().filter_map(|l| Record::parse(l).ok()).collect()),
        (st, _, e) => Err(format!("{prog}: {st}: {}", crate::tail::short(&e, 2))),
    }
}

/// A line per batch of every target (the target's first), with what
/// `build-trigger status` shows; a target that did not answer says why.
fn table(records: &[Record], now: SystemTime) -> String {
    let mut text = String::new();
    let mut rows: Vec<Record> = Vec::new();
    for r in records {
        if r.is(Kind::Notice) {
            text.push_str(&format!(
                "{}: {}\n",
                r.str("target").unwrap_or("?"),
                r.str("message").unwrap_or("")
            ));
        } else {
            rows.push(r.clone());
        }
    }
    let batches = crate::build_trigger::spool::table(&rows, now);
    let targets: Vec<&str> = std::iter::once("TARGET")
        .chain(rows.iter().map(|r| r.str("target").unwrap_or("?")))
        .collect();
    let w = targets.iter().map(|t| t.chars().count()).max().unwrap_or(6);
    let mut t = String::new();
    for (target, line) in targets.iter().zip(batches.lines()) {
        t.push_str(&format!("{target:<w$}  {line}\n"));
    }
    t + &text
}
