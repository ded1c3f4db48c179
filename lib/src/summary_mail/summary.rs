//! The summary of a batch: what the records say, gathered, and the text of the
//! mail that tells it.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::fmt::Write as _;

use serde::Serialize;
use serde_json::Value;

use crate::record::{
    BuildStatus, BuildTarget, Change, Kind, Level, Record, RecordError, Status, TargetStatus,
    TransferStatus,
};

/// The arch shown for a record that has none.
pub const NO_ARCH: &str = "?";

/// What the records of a batch say, as they are read.
#[derive(Default)]
pub struct Gather {
    batch: Option<String>,
    source: Option<String>,
    /// Entries listed to build: full pkgpaths of port records and of package builds.
    listed: BTreeSet<String>,
    /// (arch, full pkgpath) of the package builds that ended well.
    ok_builds: BTreeSet<(String, String)>,
    /// Arches with a package build record.
    built_arches: BTreeSet<String>,
    /// Entries make ignores on some host (BROKEN, ONLY_FOR_ARCHS, IGNORE) ...
    ignored_paths: BTreeSet<String>,
    /// ... and entries a host built, found up to date, failed or skipped.
    reached_paths: BTreeSet<String>,
    /// Every arch a record of the targets names.
    arches: BTreeSet<String>,
    /// (arch, file) -> debug
    packages: BTreeMap<(String, String), bool>,
    /// (arch, file) -> (status, dest)
    transfers: BTreeMap<(String, String), (TransferStatus, Option<String>)>,
    failed: Vec<FailedBuild>,
    skipped: Vec<Skipped>,
    ignored: Vec<Skipped>,
    targets: Vec<TargetLost>,
    /// `arch<TAB>action target: message` of each clean-up that failed.
    clean_failures: Vec<String>,
    /// `target: status in duration` of each target.
    times: Vec<String>,
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

/// The `arch` of a record, made one line.
fn arch_of(r: &Record) -> Result<Option<String>, RecordError> {
    opt_str(r, "arch").map(|a| a.map(one_line))
}

pub use crate::tail::one_line;

impl Gather {
    /// Take in one record.  A record of a kind the summary does not use is
    /// ignored; a record that lacks what its kind needs is an error, and is left
    /// out of the summary.
    pub fn add(&mut self, r: &Record) -> Result<(), RecordError> {
        match r.known_kind() {
            Some(Kind::Batch) => self.add_batch(r),
            Some(Kind::Port) => self.add_port(r),
            Some(Kind::Removed) => self.add_removed(r),
            Some(Kind::Notice) => self.add_notice(r),
            Some(Kind::Build) => self.add_build(r),
            Some(Kind::Package) => self.add_package(r),
            Some(Kind::Transfer) => self.add_transfer(r),
            Some(Kind::Target) => self.add_target(r),
            // clean, mail, spool, and kinds this version does not know.
            Some(Kind::Clean) => self.add_clean(r),
            Some(Kind::Mail | Kind::Spool) | None => Ok(()),
        }
    }

    /// An arch some record names: it gets a count line.
    fn arch(&mut self, r: &Record) -> Result<String, RecordError> {
        let arch = arch_of(r)?;
        if let Some(a) = &arch {
            self.arches.insert(a.clone());
        }
        Ok(arch.unwrap_or_else(|| NO_ARCH.into()))
    }

    fn add_batch(&mut self, r: &Record) -> Result<(), RecordError> {
        if self.batch.is_none() {
            self.batch = opt_str(r, "id")?.map(one_line);
        }
        if self.source.is_none() {
            self.source = r.get("source").and_then(source_text);
        }
        Ok(())
    }

    fn add_port(&mut self, r: &Record) -> Result<(), RecordError> {
        let pkgpath = r.require_str("pkgpath")?;
        let full = opt_str(r, "fullpkgpath")?.unwrap_or(pkgpath);
        self.listed.insert(one_line(full));
        self.add_changes(r);
        self.something = true;
        Ok(())
    }

    fn add_removed(&mut self, r: &Record) -> Result<(), RecordError> {
        let pkgpath = r.require_str("pkgpath")?;
        self.removed.insert(one_line(pkgpath));
        self.add_changes(r);
        Ok(())
    }

    fn add_notice(&mut self, r: &Record) -> Result<(), RecordError> {
        let level: Level = r.require_word("level")?;
        let message = r.require_str("message")?;
        let tool = opt_str(r, "tool")?;
        let n = Notice {
            level,
            tool: tool.map(one_line),
            arch: arch_of(r)?,
            message: one_line(message),
        };
        if level != Level::Info {
            self.something = true;
        }
        let key = format!(
            "notice\0{}\0{:?}\0{:?}\0{}",
            n.level, n.tool, n.arch, n.message
        );
        if self.seen.insert(key) {
            self.notices.push(n);
        }
        Ok(())
    }

    fn add_build(&mut self, r: &Record) -> Result<(), RecordError> {
        let full = one_line(r.require_str("fullpkgpath")?);
        let status: BuildStatus = r.require_word("status")?;
        let target = opt_str(r, "target")?.unwrap_or(BuildTarget::Package.as_str());
        let package = target == BuildTarget::Package.as_str();
        let reason = opt_str(r, "reason")?.map(one_line);
        let phase = opt_str(r, "phase")?.map(one_line);
        let log = opt_str(r, "log")?.map(str::to_string);
        let tail = log_tail(r)?;
        let arch = self.arch(r)?;
        if package {
            self.built_arches.insert(arch.clone());
            if matches!(status, BuildStatus::Built | BuildStatus::UpToDate) {
                self.ok_builds.insert((arch.clone(), full.clone()));
            }
            self.listed.insert(full.clone());
            if status == BuildStatus::Ignored {
                self.ignored_paths.insert(full.clone());
            } else {
                self.reached_paths.insert(full.clone());
            }
        }
        self.something = true;
        let key = format!("{status}\0{arch}\0{full}\0{target}");
        if !self.seen.insert(key) {
            return Ok(());
        }
        let target = one_line(target);
        match status {
            BuildStatus::Built | BuildStatus::UpToDate => {}
            BuildStatus::Failed => self.failed.push(FailedBuild {
                arch,
                fullpkgpath: full,
                target,
                reason,
                phase,
                since: None,
                new: None,
                log,
                tail,
                log_error: None,
            }),
            BuildStatus::Skipped | BuildStatus::Ignored => {
                let s = Skipped {
                    arch,
                    fullpkgpath: full,
                    target,
                    reason,
                };
                if status == BuildStatus::Skipped {
                    self.skipped.push(s);
                } else {
                    self.ignored.push(s);
                }
            }
        }
        Ok(())
    }

    fn add_package(&mut self, r: &Record) -> Result<(), RecordError> {
        let file = one_line(r.require_str("file")?);
        let debug = match r.get("debug") {
            None => file.starts_with("debug-"),
            Some(Value::Bool(b)) => *b,
            Some(_) => return Err(bad_value(r, "debug", "is not true or false")),
        };
        let arch = self.arch(r)?;
        self.packages.insert((arch, file), debug);
        self.something = true;
        Ok(())
    }

    fn add_transfer(&mut self, r: &Record) -> Result<(), RecordError> {
        let file = one_line(r.require_str("file")?);
        let status: TransferStatus = r.require_word("status")?;
        let dest = opt_str(r, "dest")?.map(one_line);
        let arch = self.arch(r)?;
        // A file sent once is there, and this batch delivered it, whatever a
        // later try says (unchanged after a rerun of an interrupted chain,
        // failed).
        let rank = |s: TransferStatus| match s {
            TransferStatus::Sent => 2,
            TransferStatus::Unchanged => 1,
            TransferStatus::Failed => 0,
        };
        let e = self
            .transfers
            .entry((arch, file))
            .or_insert_with(|| (status, dest.clone()));
        if rank(status) > rank(e.0) {
            *e = (status, dest);
        }
        self.something = true;
        Ok(())
    }

    /// A clean-up action that failed (clean-env): listed.
    fn add_clean(&mut self, r: &Record) -> Result<(), RecordError> {
        if r.word("status") != Some(crate::record::CleanStatus::Failed) {
            return Ok(());
        }
        let action = one_line(r.require_str("action")?);
        let target = one_line(r.require_str("target")?);
        let message = opt_str(r, "message")?.map(one_line);
        let arch = self.arch(r)?;
        self.something = true;
        let key = format!("clean\0{arch}\0{action}\0{target}");
        if self.seen.insert(key) {
            let mut line = format!("{arch}\t{action} {target}");
            if let Some(m) = message {
                line.push_str(": ");
                line.push_str(&m);
            }
            self.clean_failures.push(line);
        }
        Ok(())
    }

    fn add_target(&mut self, r: &Record) -> Result<(), RecordError> {
        let name = one_line(r.require_str("name")?);
        let status: TargetStatus = r.require_word("status")?;
        let tarch = arch_of(r)?;
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
        if let Some(s) = seconds {
            let key = format!("time\0{name}");
            if self.seen.insert(key) {
                let who = match &tarch {
                    Some(a) if *a != name => format!("{name} ({a})"),
                    _ => name.clone(),
                };
                self.times.push(format!(
                    "{who}: {status} in {}",
                    crate::time::show_duration(std::time::Duration::from_secs(s.round() as u64))
                ));
            }
        }
        if status == TargetStatus::Done {
            return Ok(());
        }
        self.something = true;
        let key = format!("target\0{name}\0{status}");
        if self.seen.insert(key) {
            self.targets.push(TargetLost {
                name,
                arch: tarch,
                status,
                seconds,
                message,
            });
        }
        Ok(())
    }

    /// The list: what reached the signing host when a transfer stage ran
    /// anywhere, else what was collected.
    fn files(&self) -> (ListFrom, Vec<ArchFile>) {
        if !self.transfers.is_empty() {
            // Only what was sent: a file the signing host already had
            // (unchanged) was listed by an earlier mail, and is counted apart.
            let files = self
                .transfers
                .iter()
                .filter(|(_, (status, _))| *status == TransferStatus::Sent)
                .map(|((arch, file), _)| ArchFile {
                    arch: arch.clone(),
                    file: file.clone(),
                    debug: file.starts_with("debug-"),
                })
                .collect();
            (ListFrom::Transfer, files)
        } else if !self.packages.is_empty() {
            let files = self
                .packages
                .iter()
                .map(|((arch, file), debug)| ArchFile {
                    arch: arch.clone(),
                    file: file.clone(),
                    debug: *debug,
                })
                .collect();
            (ListFrom::Package, files)
        } else {
            (ListFrom::None, Vec::new())
        }
    }

    /// Per arch, the files the signing host already had.
    fn unchanged(&self) -> Vec<Count> {
        let mut unchanged: Vec<Count> = Vec::new();
        for ((arch, file), (status, _)) in &self.transfers {
            if *status != TransferStatus::Unchanged {
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
        unchanged
    }

    /// A count line for every arch the records name, of the files of the
    /// list but the infrastructure packages, counted apart.
    fn counts(&self, files: &[ArchFile], opts: &Options) -> (Vec<Count>, usize) {
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
        for f in files {
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
        (counts, infrastructure)
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
        let (list_from, files) = self.files();
        let unchanged = self.unchanged();
        let failed_transfers = self
            .transfers
            .iter()
            .filter(|(_, (status, _))| *status == TransferStatus::Failed)
            .map(|((arch, file), (_, dest))| FailedTransfer {
                arch: arch.clone(),
                file: file.clone(),
                dest: dest.clone(),
            })
            .collect();
        let (counts, infrastructure) = self.counts(&files, opts);
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
        // Errors first, then warnings, then the rest.
        notices.sort_by_key(|n| std::cmp::Reverse(n.level));

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
            // An entry every host ignores is not missed.
            alarm: !built
                && self
                    .listed
                    .iter()
                    .any(|p| !self.ignored_paths.contains(p) || self.reached_paths.contains(p)),
            list_from,
            counts,
            infrastructure,
            files,
            unchanged,
            failed_transfers,
            failed,
            skipped: self.skipped,
            ignored: self.ignored,
            targets: self.targets,
            clean_failures: self.clean_failures,
            times: self.times,
            ok_builds: self.ok_builds,
            built_arches: self.built_arches,
            fixed: Vec::new(),
            removed: self.removed.into_iter().collect(),
            notices,
            changes,
            changes_from,
            bad_lines: 0,
        }
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
/// them there; each shown as [`crate::tail::clean_line`] makes it, at most
/// [`crate::tail::MAX_LINES`] of them.
fn log_tail(r: &Record) -> Result<Option<Vec<String>>, RecordError> {
    let Some(v) = r.get("tail") else {
        return Ok(None);
    };
    let bad = || RecordError::Field {
        kind: Kind::Build.as_str().into(),
        field: "tail",
        problem: "is not a list of lines",
    };
    let lines = v.as_array().ok_or_else(bad)?;
    let start = lines.len().saturating_sub(crate::tail::MAX_LINES);
    lines[start..]
        .iter()
        .map(|l| l.as_str().map(crate::tail::clean_line).ok_or_else(bad))
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
    /// Where in the build make was (fetch, checksum, depends, build, fake,
    /// package).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub phase: Option<String>,
    /// With a history: failing since this batch, and whether that is this one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub since: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub new: Option<bool>,
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
    pub status: TargetStatus,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seconds: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

#[derive(Serialize, Debug)]
pub struct Notice {
    pub level: Level,
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
    /// Entries make will not build on that host (BROKEN, ONLY_FOR_ARCHS, IGNORE).
    pub ignored: Vec<Skipped>,
    pub targets: Vec<TargetLost>,
    /// Clean-ups of a build host that failed (clean-env).
    pub clean_failures: Vec<String>,
    /// How long each target took.
    pub times: Vec<String>,
    #[serde(skip)]
    pub ok_builds: BTreeSet<(String, String)>,
    #[serde(skip)]
    pub built_arches: BTreeSet<String>,
    /// With a history: `arch<TAB>pkgpath (failing since batch B)` of what the
    /// last batch of the arch failed and this one built.
    pub fixed: Vec<String>,
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
        self.greeting(w);
        self.counts_and_files(w);
        self.what_went_wrong(w);
        self.notices(w);
        section(w, "Changes triggering the build:", &self.changes, |c| {
            c.clone()
        });
        self.log_tails(w);
        self.footer(w);
        b
    }

    fn greeting(&self, w: &mut String) {
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
    }

    /// The count lines between `---`, the list, and the count of what the
    /// signing host already had.
    fn counts_and_files(&self, w: &mut String) {
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
        let count = |c: &Count| {
            format!(
                "{:<aw$} {:>nw$} + {:>nw$} -debug packages",
                c.arch, c.packages, c.debug
            )
        };
        let _ = writeln!(w, "---");
        for c in &self.counts {
            let _ = writeln!(w, "{}", count(c));
        }
        let _ = writeln!(w, "---");
        for f in &self.files {
            let _ = writeln!(w, "{}\t{}", f.arch, f.file);
        }
        section(
            w,
            "Already on the signing host, unchanged:",
            &self.unchanged,
            count,
        );
    }

    /// Failed builds, entries not built, failed transfers, targets that did
    /// not finish, removed ports.
    fn what_went_wrong(&self, w: &mut String) {
        section(w, "Failed builds:", &self.failed, |f| {
            let why = match (&f.reason, &f.phase) {
                (Some(r), Some(p)) => Some(format!("{r}, in {p}")),
                (None, Some(p)) => Some(format!("in {p}")),
                (r, None) => r.clone(),
            };
            let history = match (&f.new, &f.since) {
                (Some(true), _) => " NEW".to_string(),
                (Some(false), Some(b)) => format!(" STILL FAILING since batch {b}"),
                _ => String::new(),
            };
            format!(
                "{}\t{}{}{history}",
                f.arch,
                f.fullpkgpath,
                note(&why, &f.target)
            )
        });
        section(w, "Fixed since the last batch:", &self.fixed, |l| l.clone());
        let not_built = |s: &Skipped| {
            format!(
                "{}\t{}{}",
                s.arch,
                s.fullpkgpath,
                note(&s.reason, &s.target)
            )
        };
        section(w, "Not built (skipped):", &self.skipped, not_built);
        section(
            w,
            "Not built there (make will not build them):",
            &self.ignored,
            not_built,
        );
        section(
            w,
            "Failed transfers (not on the signing host):",
            &self.failed_transfers,
            |t| match &t.dest {
                Some(d) => format!("{}\t{} -> {d}", t.arch, t.file),
                None => format!("{}\t{}", t.arch, t.file),
            },
        );
        section(w, "Targets that did not finish:", &self.targets, |t| {
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
            line
        });
        section(
            w,
            "Clean-ups that failed (build hosts):",
            &self.clean_failures,
            |l| l.clone(),
        );
        section(w, "Ports removed (not built):", &self.removed, |r| {
            r.clone()
        });
        section(w, "Build times:", &self.times, |l| l.clone());
    }

    fn notices(&self, w: &mut String) {
        if self.notices.is_empty() && self.bad_lines == 0 {
            return;
        }
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

    /// The end of each failed build's log, as its record carries it.
    fn log_tails(&self, w: &mut String) {
        for f in &self.failed {
            let _ = writeln!(w);
            let log = one_line(f.log.as_deref().unwrap_or("?"));
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
                        "==> {} {}: no log: {} (log {log} on the build host)",
                        f.arch,
                        f.fullpkgpath,
                        e.as_deref().unwrap_or(""),
                    );
                }
            }
        }
    }

    /// `--` and the batch and its source.
    fn footer(&self, w: &mut String) {
        if self.batch.is_none() && self.source.is_none() {
            return;
        }
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
}

/// A heading and a line for each item, after a blank line; nothing when there
/// are no items.
fn section<T>(w: &mut String, heading: &str, items: &[T], line: impl Fn(&T) -> String) {
    if items.is_empty() {
        return;
    }
    let _ = writeln!(w, "\n{heading}");
    for i in items {
        let _ = writeln!(w, "{}", line(i));
    }
}

/// ` (reason)` after an entry, with the make target when it is not `package`.
fn note(reason: &Option<String>, target: &str) -> String {
    let package = target == BuildTarget::Package.as_str();
    match (reason, package) {
        (Some(r), true) => format!(" ({r})"),
        (Some(r), false) => format!(" ({target}: {r})"),
        (None, true) => String::new(),
        (None, false) => format!(" ({target})"),
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
