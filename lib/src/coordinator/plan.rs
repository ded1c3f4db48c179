//! `build-coordinator run -n`: what a run would do, nothing changed anywhere.
//!
//! The delta and the list are made as a run makes them (the update command is
//! not run), the prefetch is planned with `build-list --target fetch -n` here,
//! and every target is asked at once with `build-trigger plan` (over ssh as a
//! run reaches it), which its watch answers with its own chain's build-list
//! stage run with -n: each entry marked as make there decides it.  No lock,
//! no state, no batch directory, nothing submitted.

use std::io::Write;
use std::process::Stdio;
use std::time::{Duration, SystemTime};

use super::config::Target;
use super::fanout::{on_target, trigger_program};
use super::{list, program, Coordinator};
use crate::diag::Exit;
use crate::record::{BuildStatus, Kind, Level, Plan, Record};
use crate::tail::one_line;
use crate::Error;

/// How long a target may take to answer a plan at most (its deadline when
/// shorter).
const PLAN_TIMEOUT: Duration = Duration::from_secs(120);
/// What ssh and the start of build-trigger may add to that.
const SLACK: Duration = Duration::from_secs(30);

/// What one target said.
struct Answer {
    records: Vec<Record>,
    /// Why it said nothing.
    problem: Option<String>,
}

impl Coordinator<'_> {
    pub(crate) fn plan(&self, force: bool) -> Result<Exit, Error> {
        let work = &self.cfg.work_dir;
        let pending = work.join(list::PENDING);
        if self.cfg.update.is_some() {
            self.diag.tty_note(format_args!(
                "-n: the update command is not run: the plan is of the tree as it is"
            ));
        }
        self.progress("listing the changed ports");
        let delta = list::delta(self, &pending)?;
        let st = super::state::State::load(work)?;
        let mut out = crate::jsonl::Output::stdout();
        if !self.changed(&delta, &st) && !force {
            out.line(if delta.ports == 0 {
                "nothing changed: no batch (--force makes one anyway)"
            } else {
                "the delta was built already: no batch (--force builds it again)"
            })?;
            out.flush()?;
            return Ok(self.diag.finish(Exit::NothingToDo));
        }
        let expanded = list::expand(self, &delta.stdout)?;
        let id =
            crate::host::new_batch_id(SystemTime::now(), &[delta.fingerprint.as_bytes(), b"plan"]);
        let mut head = Record::new(Kind::Batch);
        head.set("id", id.as_str());
        let mut text = head.to_line().into_bytes();
        text.push(b'\n');
        text.extend_from_slice(&expanded.stdout);
        let entries = text
            .split(|&b| b == b'\n')
            .filter_map(|l| std::str::from_utf8(l).ok())
            .filter_map(|l| Record::parse(l).ok())
            .filter(|r| r.is(Kind::Port))
            .count();
        out.line(&format!(
            "plan of a batch: {} port(s) changed, {entries} entr{} in the list, {} target(s)",
            delta.ports,
            if entries == 1 { "y" } else { "ies" },
            self.cfg.targets.len()
        ))?;
        if self.cfg.prefetch {
            self.progress("planning the prefetch");
            let fetch = self.plan_fetch(&text);
            match &fetch.problem {
                Some(m) => out.line(&format!("prefetch: {m}"))?,
                None => {
                    let mut files: Vec<String> = Vec::new();
                    for f in fetch
                        .records
                        .iter()
                        .filter(|r| r.word("plan") == Some(Plan::Fetch))
                        .flat_map(|r| strings(r, "distfiles"))
                    {
                        if !files.contains(&f) {
                            files.push(f);
                        }
                    }
                    out.line(&format!(
                        "distfiles to fetch: {}{}",
                        files.len(),
                        if files.is_empty() {
                            String::new()
                        } else {
                            format!(" ({})", files.join(" "))
                        }
                    ))?;
                }
            }
        }
        self.progress(format_args!(
            "asking {} target(s) for their plan",
            self.cfg.targets.len()
        ));
        let answers: Vec<Answer> = std::thread::scope(|s| {
            let handles: Vec<_> = self
                .cfg
                .targets
                .iter()
                .map(|t| {
                    let text = &text;
                    s.spawn(move || self.ask(t, text))
                })
                .collect();
            handles
                .into_iter()
                .map(|h| {
                    h.join().unwrap_or_else(|_| Answer {
                        records: Vec::new(),
                        problem: Some("the target's thread failed".into()),
                    })
                })
                .collect()
        });
        let mut lost = false;
        for (t, a) in self.cfg.targets.iter().zip(&answers) {
            out.line(&format!("target {} ({}):", t.name, t.arch))?;
            if let Some(m) = &a.problem {
                lost = true;
                self.diag
                    .error(format_args!("target {}: no plan: {m}", t.name));
                out.line(&format!("  no plan: {m}"))?;
            }
            for line in entry_lines(&a.records) {
                out.line(&line)?;
            }
        }
        out.flush()?;
        let failed = delta.failed || expanded.failed;
        Ok(self.diag.finish(if lost {
            Exit::TargetLost
        } else if failed {
            Exit::Failed
        } else {
            Exit::Success
        }))
    }

    /// `build-list --target fetch -n` over the list, on this host's tree.
    fn plan_fetch(&self, list: &[u8]) -> Answer {
        let mut cmd = list::fetch_command(self, &program("build-list"));
        cmd.arg("-n");
        self.answer(cmd, list, PLAN_TIMEOUT)
    }

    /// `build-trigger plan` on target `t`.
    fn ask(&self, t: &Target, list: &[u8]) -> Answer {
        let limit = t.deadline.min(PLAN_TIMEOUT);
        let spool = t.spool.to_string_lossy().into_owned();
        let timeout = format!("{}s", limit.as_secs().max(1));
        let mut cmd = on_target(
            t,
            &trigger_program(t),
            &["plan", "--spool", &spool, "--timeout", &timeout],
        );
        cmd.envs(self.cfg.env.iter().map(|(k, v)| (k, v)));
        self.answer(cmd, list, limit + SLACK)
    }

    /// Run a planner with the list on its standard input: its records, or why
    /// there are none.
    fn answer(&self, cmd: std::process::Command, list: &[u8], limit: Duration) -> Answer {
        let fail = |m: String| Answer {
            records: Vec::new(),
            problem: Some(m),
        };
        let input = match tempfile::tempfile() {
            Ok(mut f) => {
                use std::io::Seek;
                if let Err(e) = f.write_all(list).and_then(|_| f.rewind()) {
                    return fail(format!("a temporary file: {e}"));
                }
                f
            }
            Err(e) => return fail(format!("a temporary file: {e}")),
        };
        match crate::proc::output_within_from(cmd, Stdio::from(input), limit) {
            Ok((st, out, err)) => {
                let records: Vec<Record> =
                    out.lines().filter_map(|l| Record::parse(l).ok()).collect();
                let ok = matches!(st.code(), Some(0 | 1 | 3));
                Answer {
                    records,
                    problem: (!ok).then(|| format!("{st}: {}", crate::tail::short(&err, 2))),
                }
            }
            Err(m) => fail(m),
        }
    }
}

/// The strings of an array field, each made one line: the records come from
/// a build host, and what they say goes to a terminal.
fn strings(r: &Record, field: &str) -> Vec<String> {
    r.get(field)
        .and_then(serde_json::Value::as_array)
        .map(|a| a.iter().filter_map(|v| v.as_str().map(one_line)).collect())
        .unwrap_or_default()
}

/// A string field made one line.
fn text(r: &Record, field: &str) -> String {
    one_line(r.str(field).unwrap_or(""))
}

/// A line per entry of a target's plan: what make would do, the entry, and
/// the package files it would make or why not; error notices after them.
fn entry_lines(records: &[Record]) -> Vec<String> {
    let builds: Vec<&Record> = records.iter().filter(|r| r.is(Kind::Build)).collect();
    let w = builds
        .iter()
        .map(|r| text(r, "fullpkgpath").chars().count())
        .max()
        .unwrap_or(0);
    let mut v = Vec::new();
    for r in builds {
        let plan = r.word::<Plan>("plan");
        let what = match (plan, r.word::<BuildStatus>("status")) {
            (Some(p), _) => p.as_str(),
            // Journaled already: a rerun of that batch shows what it did.
            (None, Some(s)) => s.as_str(),
            (None, None) => "?",
        };
        let detail = match plan {
            Some(Plan::Build) => strings(r, "packages").join(" "),
            Some(Plan::Ignored | Plan::Fail) => text(r, "why"),
            _ => String::new(),
        };
        let line = format!("  {what:<10}  {:<w$}  {detail}", text(r, "fullpkgpath"));
        v.push(line.trim_end().to_string());
    }
    for n in records.iter().filter(|r| r.is(Kind::Notice)) {
        if n.word::<Level>("level") == Some(Level::Error) {
            v.push(format!("  notice: {}", text(n, "message")));
        }
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A build host's answer reaches the terminal one line per entry, its
    /// control characters (escape sequences) made visible.
    #[test]
    fn what_a_build_host_says_is_shown_as_text() {
        let lines = [
            r#"{"kind":"build","v":1,"fullpkgpath":"net/curl","status":"skipped","plan":"build","packages":["curl-8.9.1.tgz","x\u001b[2Jy.tgz"]}"#,
            r#"{"kind":"build","v":1,"fullpkgpath":"devel/marked","status":"skipped","plan":"ignored","why":"broken\nrm -rf /"}"#,
            r#"{"kind":"build","v":1,"fullpkgpath":"misc/plain","status":"built"}"#,
            r#"{"kind":"notice","v":1,"tool":"build-list","level":"error","message":"bad\u0007"}"#,
        ];
        let records: Vec<Record> = lines.iter().map(|l| Record::parse(l).unwrap()).collect();
        assert_eq!(
            entry_lines(&records),
            [
                "  build       net/curl      curl-8.9.1.tgz x?[2Jy.tgz",
                "  ignored     devel/marked  broken?rm -rf /",
                "  built       misc/plain",
                "  notice: bad?",
            ]
        );
    }
}
