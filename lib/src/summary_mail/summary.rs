//! The summary of a batch: what the records say, gathered, and the text of the
//! mail that tells it.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::fmt::Write as _;

use serde::Serialize;
use serde_json::Value;

use crate::record::{Change, Record, RecordError, Status};

/// The arch shown for a record that has none.
pub const NO_ARCH: &str = "?";

/// What the records of a batch say, as they are read.
#[derive(Default)]
pub struct Gather {
    batch: Option<String>,
    source: Option<String>,
    /// Entries listed to build: full pkgpaths of port records and of package builds.
    listed: BTreeSet<String>,
    /// Every arch a record of the targets names.
    arches: BTreeSet<String>,
    /// (arch, file) -> debug
    packages: BTreeMap<(String, String), bool>,
    /// (arch, file) -> (status, dest)
    transfers: BTreeMap<(String, String), (String, Option<String>)>,
    failed: Vec<FailedBuild>,
    skipped: Vec<Skipped>,
    targets: Vec<TargetLost>,
    notices: Vec<Notice>,
    removed: BTreeSet<String>,
    changes: BTreeMap<String, Change>,
    seen: HashSet<String>,
    /// Whether anything calls for a mail.
    something: bool,
}

/// A string field that may be absent but must be a string when present.
fn opt_str<'a>(r: &'a Record, field: &'static str) -> Result<Option<&'a str>, RecordError> {
    match r.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(RecordError::Field {
            kind: r.kind().into(),
            field,
            problem: "is not a string",
        }),
    }
}

fn bad_value(r: &Record, field: &'static str, problem: &'static str) -> RecordError {
    RecordError::Field {
        kind: r.kind().into(),
        field,
        problem,
    }
}

/// One line of text for the mail: control characters become `?`.
pub fn one_line(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}

impl Gather {
    /// Take in one record.  A record of a kind the summary does not use is
    /// ignored; a record that lacks what its kind needs is an error, and is left
    /// out of the summary.
    pub fn add(&mut self, r: &Record) -> Result<(), RecordError> {
        let arch = || opt_str(r, "arch").map(|a| a.map(one_line));
        match r.kind() {
            "batch" => {
                if self.batch.is_none() {
                    self.batch = opt_str(r, "id")?.map(one_line);
                }
                if self.source.is_none() {
                    self.source = r.get("source").and_then(source_text);
                }
            }
            "port" => {
                let pkgpath = r.require_str("pkgpath")?;
                let full = opt_str(r, "fullpkgpath")?.unwrap_or(pkgpath);
                self.listed.insert(one_line(full));
                self.add_changes(r);
                self.something = true;
            }
            "removed" => {
                let pkgpath = r.require_str("pkgpath")?;
                self.removed.insert(one_line(pkgpath));
                self.add_changes(r);
            }
            "notice" => {
                let level = r.require_str("level")?;
                let message = r.require_str("message")?;
                let tool = opt_str(r, "tool")?;
                let level = match level {
                    "info" | "warning" | "error" => level,
                    _ => return Err(bad_value(r, "level", "is not info, warning or error")),
                };
                let n = Notice {
                    level: level.into(),
                    tool: tool.map(one_line),
                    arch: arch()?,
                    message: one_line(message),
                };
                if level != "info" {
                    self.something = true;
                }
                let key = format!(
                    "notice\0{}\0{:?}\0{:?}\0{}",
                    n.level, n.tool, n.arch, n.message
                );
                if self.seen.insert(key) {
                    self.notices.push(n);
                }
            }
            "build" => {
                let full = one_line(r.require_str("fullpkgpath")?);
                let status = r.require_str("status")?;
                let target = opt_str(r, "target")?.unwrap_or("package");
                let reason = opt_str(r, "reason")?.map(one_line);
                let log = opt_str(r, "log")?.map(str::to_string);
                let tail = log_tail(r)?;
                let arch = arch()?;
                if let Some(a) = &arch {
                    self.arches.insert(a.clone());
                }
                let arch = arch.unwrap_or_else(|| NO_ARCH.into());
                if target == "package" {
                    self.listed.insert(full.clone());
                }
                self.something = true;
                match status {
                    "built" | "up-to-date" => {}
                    "failed" => {
                        let key = format!("failed\0{arch}\0{full}\0{target}");
                        if self.seen.insert(key) {
                            self.failed.push(FailedBuild {
                                arch,
                                fullpkgpath: full,
                                target: one_line(target),
                                reason,
                                log,
                                tail,
                                log_error: None,
                            });
                        }
                    }
                    "skipped" => {
                        let key = format!("skipped\0{arch}\0{full}\0{target}");
                        if self.seen.insert(key) {
                            self.skipped.push(Skipped {
                                arch,
                                fullpkgpath: full,
                                target: one_line(target),
                                reason,
                            });
                        }
                    }
                    _ => {
                        return Err(bad_value(
                            r,
                            "status",
                            "is not built, up-to-date, failed or skipped",
                        ))
                    }
                }
            }
            "package" => {
                let file = one_line(r.require_str("file")?);
                let debug = match r.get("debug") {
                    None => file.starts_with("debug-"),
                    Some(Value::Bool(b)) => *b,
                    Some(_) => return Err(bad_value(r, "debug", "is not true or false")),
                };
                let arch = arch()?;
                if let Some(a) = &arch {
                    self.arches.insert(a.clone());
                }
                let arch = arch.unwrap_or_else(|| NO_ARCH.into());
                self.packages.insert((arch, file), debug);
                self.something = true;
            }
            "transfer" => {
                let file = one_line(r.require_str("file")?);
                let status = r.require_str("status")?;
                if !matches!(status, "sent" | "unchanged" | "failed") {
                    return Err(bad_value(r, "status", "is not sent, unchanged or failed"));
                }
                let dest = opt_str(r, "dest")?.map(one_line);
                let arch = arch()?;
                if let Some(a) = &arch {
                    self.arches.insert(a.clone());
                }
                let arch = arch.unwrap_or_else(|| NO_ARCH.into());
                // A file sent once is there, and this batch delivered it,
                // whatever a later try says (unchanged after a rerun of an
                // interrupted chain, failed).
                let rank = |s: &str| match s {
                    "sent" => 2,
                    "unchanged" => 1,
                    _ => 0,
                };
                let e = self
                    .transfers
                    .entry((arch, file))
                    .or_insert_with(|| (status.to_string(), dest.clone()));
                if rank(status) > rank(&e.0) {
                    *e = (status.to_string(), dest);
                }
                self.something = true;
            }
            "target" => {
                let name = one_line(r.require_str("name")?);
                let status = r.require_str("status")?;
                let tarch = opt_str(r, "arch")?.map(one_line);
                let seconds = match r.get("seconds") {
                    None => None,
                    Some(v) => Some(
                        v.as_f64()
                            .ok_or_else(|| bad_value(r, "seconds", "is not a number"))?,
                    ),
                };
                let message = opt_str(r, "message")?.map(one_line);
                if let Some(a) = &tarch {
                    self.arches.insert(a.clone());
                }
                match status {
                    "done" => {}
                    "failed" | "timeout" | "unreachable" => {
                        self.something = true;
                        let key = format!("target\0{name}\0{status}");
                        if self.seen.insert(key) {
                            self.targets.push(TargetLost {
                                name,
                                arch: tarch,
                                status: status.into(),
                                seconds,
                                message,
                            });
                        }
                    }
                    _ => {
                        return Err(bad_value(
                            r,
                            "status",
                            "is not done, failed, timeout or unreachable",
                        ))
                    }
                }
            }
            // clean, mail, and kinds this version does not know.
            _ => {}
        }
        Ok(())
    }

    fn add_changes(&mut self, r: &Record) {
        for c in r.changes() {
            self.changes.entry(c.path.clone()).or_insert(c);
        }
    }

    /// Whether the records call for a mail: ports listed, builds, packages,
    /// transfers, a warning or error notice, or a target that did not finish.
    pub fn something_to_tell(&self) -> bool {
        self.something
    }

    pub fn batch(&self) -> Option<&str> {
        self.batch.as_deref()
    }

    /// The summary: counts, lists, and the tails of the failed builds' logs.
    pub fn finish(self, opts: &Options) -> Summary {
        // The list: what reached the signing host when a transfer stage ran
        // anywhere, else what was collected.
        let list_from = if !self.transfers.is_empty() {
            ListFrom::Transfer
        } else if !self.packages.is_empty() {
            ListFrom::Package
        } else {
            ListFrom::None
        };
        let files: Vec<ArchFile> = match list_from {
            // Only what was sent: a file the signing host already had
            // (unchanged) was listed by an earlier mail, and is counted apart.
            ListFrom::Transfer => self
                .transfers
                .iter()
                .filter(|(_, (status, _))| status == "sent")
                .map(|((arch, file), _)| ArchFile {
                    arch: arch.clone(),
                    file: file.clone(),
                    debug: file.starts_with("debug-"),
                })
                .collect(),
            _ => self
                .packages
                .iter()
                .map(|((arch, file), debug)| ArchFile {
                    arch: arch.clone(),
                    file: file.clone(),
                    debug: *debug,
                })
                .collect(),
        };
        let mut unchanged: Vec<Count> = Vec::new();
        for ((arch, file), (status, _)) in &self.transfers {
            if status != "unchanged" {
                continue;
            }
            if unchanged.last().is_none_or(|c| c.arch != *arch) {
                unchanged.push(Count {
                    arch: arch.clone(),
                    packages: 0,
                    debug: 0,
                });
            }
            if let Some(c) = unchanged.last_mut() {
                if file.starts_with("debug-") {
                    c.debug += 1;
                } else {
                    c.packages += 1;
                }
            }
        }
        let failed_transfers = self
            .transfers
            .iter()
            .filter(|(_, (status, _))| status == "failed")
            .map(|((arch, file), (_, dest))| FailedTransfer {
                arch: arch.clone(),
                file: file.clone(),
                dest: dest.clone(),
            })
            .collect();

        let mut arches = self.arches.clone();
        arches.extend(files.iter().map(|f| f.arch.clone()));
        let mut counts: Vec<Count> = arches
            .into_iter()
            .map(|arch| Count {
                arch,
                packages: 0,
                debug: 0,
            })
            .collect();
        let mut infrastructure = 0;
        for f in &files {
            if opts.infrastructure.contains(stem(&f.file)) {
                infrastructure += 1;
                continue;
            }
            if let Some(c) = counts.iter_mut().find(|c| c.arch == f.arch) {
                if f.debug {
                    c.debug += 1;
                } else {
                    c.packages += 1;
                }
            }
        }
        let built = counts.iter().any(|c| c.packages + c.debug > 0);

        let mut failed = self.failed;
        for f in &mut failed {
            // The tail the build host put in the record, never a file a record
            // names: a record from a build host must not make the initiator read
            // (and mail out) its files.
            match f.tail.take() {
                Some(t) => {
                    let start = t.len().saturating_sub(opts.log_lines);
                    f.tail = Some(t[start..].to_vec());
                }
                None => f.log_error = Some("the record carries no log tail".into()),
            }
        }

        let mut notices = self.notices;
        notices.sort_by_key(|n| level_rank(&n.level));

        let (changes, changes_from) = match &opts.changes_file {
            Some(text) if !text.trim().is_empty() => (
                text.trim_end_matches(['\n', '\r'])
                    .lines()
                    .map(|l| l.trim_end_matches('\r').to_string())
                    .collect(),
                ChangesFrom::File,
            ),
            _ => (
                self.changes.values().map(change_line).collect(),
                ChangesFrom::Records,
            ),
        };

        Summary {
            batch: self.batch,
            source: self.source,
            listed: self.listed.len(),
            alarm: !self.listed.is_empty() && !built,
            list_from,
            counts,
            infrastructure,
            files,
            unchanged,
            failed_transfers,
            failed,
            skipped: self.skipped,
            targets: self.targets,
            removed: self.removed.into_iter().collect(),
            notices,
            changes,
            changes_from,
            bad_lines: 0,
        }
    }
}

fn level_rank(level: &str) -> u8 {
    match level {
        "error" => 0,
        "warning" => 1,
        _ => 2,
    }
}

/// `cvs OPENBSD_7_8_BASE -> OPENBSD_7_8` from a batch record's `source`.
fn source_text(v: &Value) -> Option<String> {
    let o = v.as_object()?;
    let get = |k: &str| o.get(k).and_then(Value::as_str).map(one_line);
    let (from, to) = (get("from")?, get("to")?);
    Some(match get("vcs") {
        Some(vcs) => format!("{vcs} {from} -> {to}"),
        None => format!("{from} -> {to}"),
    })
}

/// One change as a line: `M net/curl/Makefile (1.80 -> 1.80.2.1)`,
/// `A net/curl/patches/patch-x (1.1.2.1)`, `R net/gone/Makefile (was 1.2)`.
pub fn change_line(c: &Change) -> String {
    let path = one_line(&c.path);
    let from = c.from.as_deref().map(one_line);
    let to = c.to.as_deref().map(one_line);
    let (letter, revs) = match c.status {
        Status::Modified => (
            'M',
            match (from, to) {
                (Some(f), Some(t)) => format!(" ({f} -> {t})"),
                (None, Some(t)) => format!(" (-> {t})"),
                (Some(f), None) => format!(" ({f} ->)"),
                (None, None) => String::new(),
            },
        ),
        Status::Added => ('A', to.map(|t| format!(" ({t})")).unwrap_or_default()),
        Status::Removed => ('R', from.map(|f| format!(" (was {f})")).unwrap_or_default()),
    };
    format!("{letter} {path}{revs}")
}

/// The package stem of a file name: `quirks-7.14.tgz` -> `quirks`,
/// `debug-vim-9.1.0-gtk2.tgz` -> `vim`, `py3-foo-1.0.tgz` -> `py3-foo`.
pub fn stem(file: &str) -> &str {
    let name = file.strip_suffix(".tgz").unwrap_or(file);
    let name = name.strip_prefix("debug-").unwrap_or(name);
    let mut end = 0;
    for (i, part) in name.split('-').enumerate() {
        if i > 0 && part.starts_with(|c: char| c.is_ascii_digit()) {
            break;
        }
        end += part.len() + usize::from(i > 0);
    }
    &name[..end]
}

/// The `tail` of a `build` record: the last lines of its log, as build-list put
/// them there; each shown as [`crate::logtail::clean_line`] makes it, at most
/// [`crate::logtail::MAX_LINES`] of them.
fn log_tail(r: &Record) -> Result<Option<Vec<String>>, RecordError> {
    let Some(v) = r.get("tail") else {
        return Ok(None);
    };
    let bad = || RecordError::Field {
        kind: "build".into(),
        field: "tail",
        problem: "is not a list of lines",
    };
    let lines = v.as_array().ok_or_else(bad)?;
    let start = lines.len().saturating_sub(crate::logtail::MAX_LINES);
    lines[start..]
        .iter()
        .map(|l| l.as_str().map(crate::logtail::clean_line).ok_or_else(bad))
        .collect::<Result<Vec<_>, _>>()
        .map(Some)
}

/// How the summary is made.
pub struct Options {
    /// Package stems left out of the counts.
    pub infrastructure: BTreeSet<String>,
    /// Lines of each failed build's log shown.
    pub log_lines: usize,
    /// The text of a `--changes` file.
    pub changes_file: Option<String>,
}

/// Which records the file list comes from.
#[derive(Serialize, Debug, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum ListFrom {
    /// `transfer` records: what reached the signing host.
    Transfer,
    /// `package` records: what was collected (no transfer stage ran).
    Package,
    /// Neither.
    None,
}

#[derive(Serialize, Debug, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum ChangesFrom {
    Records,
    File,
}

#[derive(Serialize, Debug)]
pub struct Count {
    pub arch: String,
    pub packages: usize,
    pub debug: usize,
}

#[derive(Serialize, Debug)]
pub struct ArchFile {
    pub arch: String,
    pub file: String,
    pub debug: bool,
}

#[derive(Serialize, Debug)]
pub struct FailedTransfer {
    pub arch: String,
    pub file: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dest: Option<String>,
}

#[derive(Serialize, Debug)]
pub struct FailedBuild {
    pub arch: String,
    pub fullpkgpath: String,
    pub target: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log: Option<String>,
    /// The last lines of the log.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tail: Option<Vec<String>>,
    /// Why the log could not be read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log_error: Option<String>,
}

#[derive(Serialize, Debug)]
pub struct Skipped {
    pub arch: String,
    pub fullpkgpath: String,
    pub target: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

#[derive(Serialize, Debug)]
pub struct TargetLost {
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub arch: Option<String>,
    pub status: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seconds: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

#[derive(Serialize, Debug)]
pub struct Notice {
    pub level: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tool: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub arch: Option<String>,
    pub message: String,
}

/// Everything the mail tells, also written as JSON by `--json`.
#[derive(Serialize, Debug)]
pub struct Summary {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub batch: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// Full pkgpaths listed to build.
    pub listed: usize,
    /// Ports were listed but no package (other than infrastructure) was built.
    pub alarm: bool,
    pub list_from: ListFrom,
    pub counts: Vec<Count>,
    /// Files of the list left out of the counts as infrastructure packages.
    pub infrastructure: usize,
    pub files: Vec<ArchFile>,
    /// Per architecture, the files the signing host already had.
    pub unchanged: Vec<Count>,
    pub failed_transfers: Vec<FailedTransfer>,
    pub failed: Vec<FailedBuild>,
    pub skipped: Vec<Skipped>,
    pub targets: Vec<TargetLost>,
    pub removed: Vec<String>,
    pub notices: Vec<Notice>,
    pub changes: Vec<String>,
    pub changes_from: ChangesFrom,
    /// Input lines that were not valid records.
    pub bad_lines: usize,
}

impl Summary {
    /// The body of the mail, laid out as the shell's: greeting, counts between
    /// `---` lines, the `arch<TAB>file` list, then what went wrong, the notices,
    /// the changes, and the ends of the failed builds' logs.
    pub fn body(&self) -> String {
        let mut b = String::new();
        let w = &mut b;
        if self.alarm {
            let _ = writeln!(
                w,
                "Hello. No package was built, although {} port(s) were listed.",
                self.listed
            );
            let _ = writeln!(w, "See the failed builds and targets below.");
        } else if self.files.is_empty() {
            let _ = writeln!(w, "Hello. No new package to sign.");
        } else {
            let _ = writeln!(w, "Hello. New package(s) to sign.");
        }
        if self.list_from == ListFrom::Package {
            let _ = writeln!(
                w,
                "(No transfer stage ran: these are the packages collected.)"
            );
        }
        let _ = writeln!(w);

        let aw = self
            .counts
            .iter()
            .map(|c| c.arch.chars().count())
            .max()
            .unwrap_or(0)
            .max(8);
        let nw = self
            .counts
            .iter()
            .map(|c| c.packages.max(c.debug).to_string().len())
            .max()
            .unwrap_or(0)
            .max(3);
        let _ = writeln!(w, "---");
        for c in &self.counts {
            let _ = writeln!(
                w,
                "{:<aw$} {:>nw$} + {:>nw$} -debug packages",
                c.arch, c.packages, c.debug
            );
        }
        let _ = writeln!(w, "---");
        for f in &self.files {
            let _ = writeln!(w, "{}\t{}", f.arch, f.file);
        }
        if !self.unchanged.is_empty() {
            let _ = writeln!(w, "\nAlready on the signing host, unchanged:");
            for c in &self.unchanged {
                let _ = writeln!(
                    w,
                    "{:<aw$} {:>nw$} + {:>nw$} -debug packages",
                    c.arch, c.packages, c.debug
                );
            }
        }

        if !self.failed.is_empty() {
            let _ = writeln!(w, "\nFailed builds:");
            for f in &self.failed {
                let _ = writeln!(w, "{}\t{}{}", f.arch, f.fullpkgpath, build_note(f));
            }
        }
        if !self.skipped.is_empty() {
            let _ = writeln!(w, "\nNot built (skipped):");
            for s in &self.skipped {
                let why = match (&s.reason, s.target.as_str()) {
                    (Some(r), "package") => format!(" ({r})"),
                    (Some(r), t) => format!(" ({t}: {r})"),
                    (None, "package") => String::new(),
                    (None, t) => format!(" ({t})"),
                };
                let _ = writeln!(w, "{}\t{}{why}", s.arch, s.fullpkgpath);
            }
        }
        if !self.failed_transfers.is_empty() {
            let _ = writeln!(w, "\nFailed transfers (not on the signing host):");
            for t in &self.failed_transfers {
                match &t.dest {
                    Some(d) => {
                        let _ = writeln!(w, "{}\t{} -> {d}", t.arch, t.file);
                    }
                    None => {
                        let _ = writeln!(w, "{}\t{}", t.arch, t.file);
                    }
                }
            }
        }
        if !self.targets.is_empty() {
            let _ = writeln!(w, "\nTargets that did not finish:");
            for t in &self.targets {
                let mut line = t.name.clone();
                if let Some(a) = t.arch.as_ref().filter(|a| **a != t.name) {
                    let _ = write!(line, " ({a})");
                }
                let _ = write!(line, ": {}", t.status);
                if let Some(s) = t.seconds {
                    let _ = write!(line, " after {} s", s.round());
                }
                if let Some(m) = &t.message {
                    let _ = write!(line, ": {m}");
                }
                let _ = writeln!(w, "{line}");
            }
        }
        if !self.removed.is_empty() {
            let _ = writeln!(w, "\nPorts removed (not built):");
            for r in &self.removed {
                let _ = writeln!(w, "{r}");
            }
        }
        if !self.notices.is_empty() || self.bad_lines > 0 {
            let _ = writeln!(w, "\nNotices:");
            if self.bad_lines > 0 {
                let _ = writeln!(
                    w,
                    "error: summary-mail: {} bad input line(s) or unreadable input(s) left out (see its stderr)",
                    self.bad_lines
                );
            }
            for n in &self.notices {
                let mut who = String::new();
                if let Some(t) = &n.tool {
                    who.push_str(t);
                }
                if let Some(a) = &n.arch {
                    let _ = write!(who, "{}({a})", if who.is_empty() { "" } else { " " });
                }
                if who.is_empty() {
                    let _ = writeln!(w, "{}: {}", n.level, n.message);
                } else {
                    let _ = writeln!(w, "{}: {who}: {}", n.level, n.message);
                }
            }
        }
        if !self.changes.is_empty() {
            let _ = writeln!(w, "\nChanges triggering the build:");
            for c in &self.changes {
                let _ = writeln!(w, "{c}");
            }
        }
        for f in &self.failed {
            let _ = writeln!(w);
            match (&f.tail, &f.log_error) {
                (Some(t), _) => {
                    let _ = writeln!(
                        w,
                        "==> {} {}: last {} line(s) of {}",
                        f.arch,
                        f.fullpkgpath,
                        t.len(),
                        one_line(f.log.as_deref().unwrap_or(""))
                    );
                    for l in t {
                        let _ = writeln!(w, "{l}");
                    }
                }
                (None, e) => {
                    let _ = writeln!(
                        w,
                        "==> {} {}: no log: {} (log {} on the build host)",
                        f.arch,
                        f.fullpkgpath,
                        e.as_deref().unwrap_or(""),
                        one_line(f.log.as_deref().unwrap_or("?"))
                    );
                }
            }
        }
        if self.batch.is_some() || self.source.is_some() {
            let _ = writeln!(w);
            let mut line = String::from("--\n");
            if let Some(id) = &self.batch {
                let _ = write!(line, "batch {id}");
            }
            if let Some(s) = &self.source {
                let _ = write!(line, "{}{s}", if self.batch.is_some() { ", " } else { "" });
            }
            let _ = writeln!(w, "{line}");
        }
        b
    }
}

fn build_note(f: &FailedBuild) -> String {
    match (&f.reason, f.target.as_str()) {
        (Some(r), "package") => format!(" ({r})"),
        (Some(r), t) => format!(" ({t}: {r})"),
        (None, "package") => String::new(),
        (None, t) => format!(" ({t})"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stems() {
        assert_eq!(stem("quirks-7.14.tgz"), "quirks");
        assert_eq!(stem("debug-vim-9.1.0-gtk2.tgz"), "vim");
        assert_eq!(stem("py3-foo-1.0.tgz"), "py3-foo");
        assert_eq!(stem("sqlports-7.52p0.tgz"), "sqlports");
        assert_eq!(stem("vim-lang-9.1.0.tgz"), "vim-lang");
        assert_eq!(stem("weird"), "weird");
    }

    #[test]
    fn changes() {
        let c = |status, from: Option<&str>, to: Option<&str>| {
            change_line(&Change {
                path: "net/curl/Makefile".into(),
                status,
                from: from.map(Into::into),
                to: to.map(Into::into),
            })
        };
        assert_eq!(
            c(Status::Modified, Some("1.80"), Some("1.80.2.1")),
            "M net/curl/Makefile (1.80 -> 1.80.2.1)"
        );
        assert_eq!(c(Status::Modified, None, None), "M net/curl/Makefile");
        assert_eq!(
            c(Status::Added, None, Some("1.1.2.1")),
            "A net/curl/Makefile (1.1.2.1)"
        );
        assert_eq!(
            c(Status::Removed, Some("1.2"), None),
            "R net/curl/Makefile (was 1.2)"
        );
    }
}
