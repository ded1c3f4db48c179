//! ports-delta: from a change list to the ports that changed.
//!
//! Reads change lists (`cvs rdiff -s`, `cvs update`, `git diff --name-status`, plain
//! paths, mixed line by line) or runs the VCS itself, maps every file to the port it
//! belongs to, and emits one `port` record per changed port, `removed` records for
//! ports that are gone, and `notice` records for what the summary must show.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::diag::{Diag, Exit, Loc};
use crate::jsonl::{self, Inputs, Item, Output};
use crate::pkgpath::check_dir;
use crate::ports::{DirKind, PortDirs, PORT_SUBDIRS};
use crate::record::{Change, Level, Record, Status};
use crate::{glob, Error};

pub const TOOL: &str = "ports-delta";

/// List the ports changed between two revisions of the ports tree.
#[derive(clap::Parser, Debug)]
#[command(name = "ports-delta", version, max_term_width = 100)]
pub struct Args {
    /// Print the changed pkgpaths, one a line, sorted and unique, instead of records.
    #[arg(short = 't', long = "text")]
    pub text: bool,
    /// The ports tree (the -stable checkout) used to map files to ports.
    #[arg(long, env = "PORTSDIR", value_name = "DIR")]
    pub ports_dir: Option<PathBuf>,
    /// Leave out the ports matching this shell glob (repeatable), with a notice.
    #[arg(long, value_name = "GLOB")]
    pub exclude: Vec<String>,
    /// Run `cvs -q rdiff -s -r BASE -r BRANCH` on the checkout in --ports-dir.
    #[arg(long, value_name = "BASE:BRANCH", conflicts_with_all = ["git", "files"])]
    pub cvs: Option<String>,
    /// Run `git diff --name-status BASE BRANCH` in --ports-dir.
    #[arg(long, value_name = "BASE..BRANCH", conflicts_with = "files")]
    pub git: Option<String>,
    /// Change lists to read; standard input when none is given.
    #[arg(value_name = "FILE")]
    pub files: Vec<PathBuf>,
}

pub fn main() -> std::process::ExitCode {
    let args: Args = crate::diag::parse_args(TOOL);
    let diag = Diag::new(TOOL);
    let r = run(&args, &diag);
    diag.exit(r)
}

/// One file change read from a change list.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct FileChange {
    pub change: Change,
    /// False for plain paths: the line did not say what happened to the file.
    pub known: bool,
}

/// What one line of a change list says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Line {
    Changes(Vec<FileChange>),
    /// Something the summary must show (a cvs conflict, a cvs message).
    Notice(Level, String),
    /// A line that says nothing about changes (`? file`, `cvs update: Updating x`).
    Nothing,
}

/// Parse one line of a change list.  `module` is the prefix `cvs rdiff` puts on
/// paths (`ports`).
pub fn parse_line(line: &str, module: &str) -> Result<Line, String> {
    let line = line.trim_end_matches(['\r', '\n']);
    let strip = |p: &str| -> Result<String, String> {
        let p = p
            .strip_prefix(module)
            .and_then(|r| r.strip_prefix('/'))
            .unwrap_or(p);
        check_path(p)?;
        Ok(p.to_string())
    };
    let one = |path: &str, status, from: Option<&str>, to: Option<&str>, known| {
        Ok(Line::Changes(vec![FileChange {
            change: Change {
                path: strip(path)?,
                status,
                from: from.map(str::to_string),
                to: to.map(str::to_string),
            },
            known,
        }]))
    };
    // cvs rdiff -s
    // (A path in the ports tree has no space: the first one ends it.)
    if let Some(rest) = line.strip_prefix("File ") {
        let bad = || format!("unrecognised cvs rdiff line: {line}");
        let (p, tail) = rest.split_once(' ').ok_or_else(bad)?;
        if let Some(revs) = tail.strip_prefix("changed from revision ") {
            let (from, to) = revs.split_once(' ').ok_or_else(bad)?;
            let to = to.strip_prefix("to ").ok_or_else(bad)?;
            return one(p, Status::Modified, Some(from), Some(to), true);
        }
        if let Some(r) = tail.strip_prefix("is new; ") {
            return one(p, Status::Added, None, revision(r), true);
        }
        if let Some(r) = tail.strip_prefix("is removed; ") {
            return one(p, Status::Removed, revision(r), None, true);
        }
        return Err(bad());
    }
    // cvs update: messages
    if let Some(rest) = line.strip_prefix("cvs ") {
        if let Some((_, msg)) = rest.split_once(": ") {
            if let Some(q) = msg.strip_suffix(" is no longer in the repository") {
                let p = q.trim_matches(['`', '\'', '"']);
                return one(p, Status::Removed, None, None, true);
            }
            if msg.starts_with("Updating ")
                || msg.starts_with("New directory ")
                || msg.starts_with("Diffing ")
            {
                return Ok(Line::Nothing);
            }
            return Ok(Line::Notice(Level::Warning, line.to_string()));
        }
    }
    // cvs update: one letter, a space, a path
    let b = line.as_bytes();
    if b.len() > 2 && b[1] == b' ' && !line[2..].contains([' ', '\t']) {
        let p = &line[2..];
        return match b[0] {
            b'U' | b'P' => one(p, Status::Modified, None, None, true),
            // Changes of the checkout itself, not of the branch: a build host
            // must not rebuild a port for them on every run, but a person must
            // hear of them.
            b'M' | b'A' | b'R' | b'C' => {
                let path = strip(p)?;
                let what = match b[0] {
                    b'M' => "modified locally",
                    b'A' => "added locally, not committed",
                    b'R' => "removed locally, not committed",
                    _ => "in conflict",
                };
                Ok(Line::Notice(
                    Level::Warning,
                    format!("cvs update: {path} is {what}: the checkout needs attention"),
                ))
            }
            b'?' => Ok(Line::Nothing),
            _ => Err(format!("unrecognised line: {line}")),
        };
    }
    // git diff --name-status
    if line.contains('\t') {
        let f: Vec<&str> = line.split('\t').collect();
        let st = f[0];
        let letter = st.chars().next().unwrap_or(' ');
        let score_ok = st[letter.len_utf8()..].bytes().all(|c| c.is_ascii_digit());
        if !score_ok {
            return Err(format!("unrecognised git diff line: {line}"));
        }
        return match (letter, f.len()) {
            ('M' | 'T' | 'U', 2) => one(f[1], Status::Modified, None, None, true),
            ('A', 2) => one(f[1], Status::Added, None, None, true),
            ('D', 2) => one(f[1], Status::Removed, None, None, true),
            ('R', 3) => {
                let mut v = Vec::new();
                for (p, s) in [(f[1], Status::Removed), (f[2], Status::Added)] {
                    if let Line::Changes(c) = one(p, s, None, None, true)? {
                        v.extend(c);
                    }
                }
                Ok(Line::Changes(v))
            }
            ('C', 3) => one(f[2], Status::Added, None, None, true),
            _ => Err(format!("unrecognised git diff line: {line}")),
        };
    }
    // a plain path
    if !line.contains(char::is_whitespace) {
        return one(line, Status::Modified, None, None, false);
    }
    Err(format!("unrecognised line: {line}"))
}

/// The revision at the end of `OPENBSD_7_8 revision 1.1.2.1`.
fn revision(s: &str) -> Option<&str> {
    let (head, rev) = s.rsplit_once(' ')?;
    head.ends_with("revision").then_some(rev)
}

/// A file path in the tree: relative, no empty, `.` or `..` segments, no control
/// characters.
fn check_path(p: &str) -> Result<(), String> {
    if p.is_empty() {
        return Err("empty path".into());
    }
    if p.starts_with('/') {
        return Err(format!("absolute path not allowed: {p}"));
    }
    if p.split('/').any(|s| s.is_empty() || s == "." || s == "..") {
        return Err(format!("invalid path (empty, . or .. segment): {p}"));
    }
    if p.bytes().any(|b| b < 0x20 || b == 0x7f) || p.chars().any(char::is_control) {
        return Err(format!("invalid path (control character): {p:?}"));
    }
    Ok(())
}

/// The result of mapping changes to ports.  Ports and removed ports refer to
/// their changes by index into `changes`, each change kept once.
#[derive(Debug, Default, PartialEq)]
pub struct Delta {
    pub changes: Vec<Change>,
    pub ports: std::collections::HashMap<String, PortEntry>,
    pub removed: BTreeMap<String, Vec<usize>>,
    pub notices: Vec<(Level, String)>,
    said: std::collections::HashSet<String>,
}

/// The changes of one port and the reasons it was reached indirectly.
#[derive(Debug, Default, PartialEq)]
pub struct PortEntry {
    pub changes: Vec<usize>,
    pub why: BTreeSet<String>,
}

impl Delta {
    fn port(&mut self, dir: &str, change: usize, why: Option<&str>) {
        let e = match self.ports.get_mut(dir) {
            Some(e) => e,
            None => self.ports.entry(dir.to_string()).or_default(),
        };
        e.changes.push(change);
        if let Some(w) = why {
            if !e.why.contains(w) {
                e.why.insert(w.to_string());
            }
        }
    }

    fn notice(&mut self, level: Level, msg: String) {
        if self.said.insert(msg.clone()) {
            self.notices.push((level, msg));
        }
    }

    /// The ports, sorted by pkgpath.
    pub fn sorted_ports(&self) -> Vec<(&String, &PortEntry)> {
        let mut v: Vec<_> = self.ports.iter().collect();
        v.sort_unstable_by(|a, b| a.0.cmp(b.0));
        v
    }

    /// The changes of a port or removed port, sorted, each once.
    pub fn changes_of<'a>(&'a self, idx: &[usize]) -> Vec<&'a Change> {
        let mut v: Vec<&Change> = idx.iter().map(|&i| &self.changes[i]).collect();
        v.sort();
        v.dedup();
        v
    }
}

fn parent(p: &str) -> &str {
    p.rsplit_once('/').map(|(d, _)| d).unwrap_or("")
}

fn depth(d: &str) -> usize {
    if d.is_empty() {
        0
    } else {
        d.split('/').count()
    }
}

/// The port a file belongs to by path rules alone: its directory, cut at the first
/// `pkg`, `patches` or `files` below the category.
pub fn port_by_path(path: &str) -> String {
    let d = parent(path);
    let segs: Vec<&str> = d.split('/').collect();
    let cut = segs
        .iter()
        .enumerate()
        .skip(2)
        .find(|(_, s)| PORT_SUBDIRS.contains(s))
        .map(|(i, _)| i)
        .unwrap_or(segs.len());
    segs[..cut].join("/")
}

/// Map file changes to ports.  With `tree` (the checkout the changes lead to), each
/// file goes to the nearest enclosing port directory and a `Makefile.inc` to every
/// port below it; without, path rules decide.
pub fn resolve(
    input: Vec<FileChange>,
    mut tree: Option<&mut PortDirs>,
    excludes: &[String],
) -> Delta {
    let mut delta = Delta::default();
    let mut changes = Vec::with_capacity(input.len());
    let mut known = Vec::with_capacity(input.len());
    for fc in input {
        changes.push(fc.change);
        known.push(fc.known);
    }
    // Directories whose Makefile a change list says is removed: removed ports.
    let removed_makefiles: BTreeSet<String> = changes
        .iter()
        .filter(|c| c.status == Status::Removed && c.path.ends_with("/Makefile"))
        .map(|c| parent(&c.path).to_string())
        .collect();
    // Removed-port candidates: dir -> (changes, any known add/modify)
    let mut gone: BTreeMap<String, (Vec<usize>, bool)> = BTreeMap::new();

    for (i, c) in changes.iter().enumerate() {
        let path = c.path.as_str();
        let name = path.rsplit('/').next().unwrap_or(path);
        let dir = parent(path);
        if path.split('/').next() == Some("infrastructure") {
            delta.notice(
                Level::Warning,
                format!("{path} changed: infrastructure concerns every port; nothing rebuilt for it, rebuild by hand if needed"),
            );
            continue;
        }
        if name == "Makefile.inc" {
            if dir.is_empty() {
                delta.notice(
                    Level::Warning,
                    format!("{path} changed: it concerns every port; nothing rebuilt for it"),
                );
                continue;
            }
            match tree.as_deref_mut() {
                Some(t) => {
                    let why = format!("{path} changed");
                    for p in t.ports_below(dir) {
                        delta.port(&p, i, Some(&why));
                    }
                }
                None => delta.notice(
                    Level::Warning,
                    format!("{path} changed: the ports that include it could not be listed without a ports tree (--ports-dir)"),
                ),
            }
            continue;
        }
        if depth(dir) < 2 && tree.is_none() {
            // The top or a category: not a port.
            continue;
        }
        match tree.as_deref_mut() {
            None => {
                let p = port_by_path(path);
                if removed_makefiles.contains(p.as_str()) {
                    gone.entry(p).or_default().0.push(i);
                } else {
                    delta.port(&p, i, None);
                }
            }
            Some(t) => {
                // The nearest port or group above the file; `gone` when a
                // directory on the way is missing from the checkout.
                let mut a = dir;
                let mut passed_missing = false;
                let mut kind = t.kind(a);
                while matches!(kind, DirKind::Missing | DirKind::Plain) && !a.is_empty() {
                    // A directory left behind by a removed port (no `cvs up -P`)
                    // counts as gone.
                    passed_missing |= kind == DirKind::Missing || removed_makefiles.contains(a);
                    a = parent(a);
                    kind = t.kind(a);
                }
                match kind {
                    DirKind::Port => delta.port(a, i, None),
                    // A category or group file, or a file in a plain directory.
                    _ if !passed_missing => {}
                    _ => {
                        // The directory is gone below a group: a removed port.
                        // The deepest directory below the group whose Makefile
                        // the change list removes, else path rules.
                        let mut cand = None;
                        let mut m = dir;
                        while depth(m) > depth(a) {
                            if removed_makefiles.contains(m) {
                                cand = Some(m.to_string());
                                break;
                            }
                            m = parent(m);
                        }
                        let cand = cand.unwrap_or_else(|| port_by_path(path));
                        if depth(&cand) == 0 {
                            continue;
                        }
                        let e = gone.entry(cand).or_default();
                        e.0.push(i);
                        e.1 |= known[i] && c.status != Status::Removed;
                    }
                }
            }
        }
    }
    for (dir, (chs, alive)) in gone {
        if alive {
            delta.notice(
                Level::Warning,
                format!("{dir}: changed but not in the ports tree: is the checkout up to date?"),
            );
            for i in chs {
                delta.port(&dir, i, None);
            }
        } else {
            delta.removed.insert(dir, chs);
        }
    }
    delta.changes = changes;
    // Invalid directories cannot become pkgpaths.
    let bad: Vec<String> = delta
        .ports
        .keys()
        .chain(delta.removed.keys())
        .filter(|d| check_dir(d).is_err())
        .cloned()
        .collect();
    for d in bad {
        if let Err(e) = check_dir(&d) {
            delta.notice(Level::Error, format!("{e}: not listed"));
        }
        delta.ports.remove(&d);
        delta.removed.remove(&d);
    }
    if !excludes.is_empty() {
        let ex = |d: &str| excludes.iter().find(|g| glob::matches(g, d)).cloned();
        let mut drop = Vec::new();
        for d in delta.ports.keys().chain(delta.removed.keys()) {
            if let Some(g) = ex(d) {
                drop.push((d.clone(), g));
            }
        }
        for (d, g) in drop {
            delta.ports.remove(&d);
            delta.removed.remove(&d);
            delta.notice(Level::Info, format!("{d} excluded by {g}"));
        }
    }
    delta
}

/// A port or removed record as written: the fields in their documented order.
#[derive(serde::Serialize)]
struct PortOut<'a> {
    kind: &'static str,
    v: u64,
    pkgpath: &'a str,
    changes: Vec<&'a Change>,
    #[serde(skip_serializing_if = "Option::is_none")]
    why: Option<String>,
}

/// Write the records of a delta: ports first, then removed ports, then notices.
pub fn write_records(delta: &Delta, out: &mut Output) -> Result<(), Error> {
    for (dir, e) in delta.sorted_ports() {
        out.serialize(&PortOut {
            kind: "port",
            v: crate::record::VERSION,
            pkgpath: dir,
            changes: delta.changes_of(&e.changes),
            why: (!e.why.is_empty()).then(|| e.why.iter().cloned().collect::<Vec<_>>().join("; ")),
        })?;
    }
    for (dir, idx) in &delta.removed {
        out.serialize(&PortOut {
            kind: "removed",
            v: crate::record::VERSION,
            pkgpath: dir,
            changes: delta.changes_of(idx),
            why: None,
        })?;
    }
    for (level, msg) in &delta.notices {
        out.record(&Record::notice(TOOL, *level, msg.as_str()))?;
    }
    Ok(())
}

/// Read `<dir>/CVS/<file>`, trimmed.
fn cvs_admin(dir: &Path, file: &str) -> Option<String> {
    std::fs::read_to_string(dir.join("CVS").join(file))
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
}

/// A revision or tag given on the command line: no leading `-`, no white space.
fn check_rev(what: &str, r: &str) -> Result<(), Error> {
    if r.is_empty() || r.starts_with('-') || r.contains(char::is_whitespace) {
        return Err(Error::Usage(format!("invalid {what} {r:?}")));
    }
    Ok(())
}

/// Run a VCS command and return its stdout, or fail with its stderr.
fn run_vcs(mut cmd: Command, what: &str) -> Result<Vec<u8>, Error> {
    let program = cmd.get_program().to_string_lossy().into_owned();
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .map_err(|e| Error::Command {
            program: program.clone(),
            message: if e.kind() == std::io::ErrorKind::NotFound {
                format!("not found: {e} (on Debian: apt-get install {program})")
            } else {
                e.to_string()
            },
        })?;
    // cvs rdiff exits 1 when there are differences; only a message on stderr with
    // no output, or an exit above 1, is a failure.
    let code = out.status.code().unwrap_or(-1);
    let failed = match program.as_str() {
        "cvs" => !(code == 0 || (code == 1 && out.stderr.is_empty())),
        _ => code != 0,
    };
    if failed {
        let err = String::from_utf8_lossy(&out.stderr);
        let tail: Vec<&str> = err.lines().rev().take(3).collect();
        return Err(Error::Command {
            program,
            message: format!(
                "{what} failed ({}): {}",
                out.status,
                tail.into_iter().rev().collect::<Vec<_>>().join(" / ")
            ),
        });
    }
    Ok(out.stdout)
}

pub fn run(args: &Args, diag: &Diag) -> Result<Exit, Error> {
    let tree_dir = match &args.ports_dir {
        Some(d) => {
            if !d.is_dir() {
                return Err(Error::Usage(format!(
                    "{}: ports tree not found (--ports-dir or PORTSDIR)",
                    d.display()
                )));
            }
            Some(d.clone())
        }
        None => None,
    };
    let mut out = Output::stdout();
    let mut changes: Vec<FileChange> = Vec::new();
    let mut notices: Vec<(Level, String)> = Vec::new();
    let mut take = |line: &str, module: &str, loc: &Loc, diag: &Diag| match parse_line(line, module)
    {
        Ok(Line::Changes(v)) => {
            for c in v {
                changes.push(c);
            }
        }
        Ok(Line::Notice(l, m)) => notices.push((l, m)),
        Ok(Line::Nothing) => {}
        Err(e) => diag.error_at(loc, e),
    };

    if args.cvs.is_some() || args.git.is_some() {
        let Some(dir) = &tree_dir else {
            return Err(Error::Usage(
                "--cvs and --git need the checkout: give --ports-dir or set PORTSDIR".into(),
            ));
        };
        let (stdout, name, module) = if let Some(spec) = &args.cvs {
            let (base, branch) = spec
                .split_once(':')
                .ok_or_else(|| Error::Usage(format!("--cvs {spec:?}: expected BASE:BRANCH")))?;
            check_rev("cvs tag", base)?;
            check_rev("cvs tag", branch)?;
            let module = cvs_admin(dir, "Repository")
                .map(|m| m.rsplit('/').next().unwrap_or(&m).to_string())
                .unwrap_or_else(|| "ports".into());
            let mut cmd = Command::new("cvs");
            cmd.current_dir(dir);
            if let Some(root) = cvs_admin(dir, "Root") {
                cmd.arg("-d").arg(root);
            }
            cmd.args(["-q", "rdiff", "-s", "-r", base, "-r", branch, &module]);
            (run_vcs(cmd, "cvs rdiff")?, "cvs rdiff", module)
        } else {
            let spec = args.git.as_deref().unwrap_or_default();
            let (base, branch) = spec
                .split_once("..")
                .ok_or_else(|| Error::Usage(format!("--git {spec:?}: expected BASE..BRANCH")))?;
            check_rev("git revision", base)?;
            check_rev("git revision", branch)?;
            let mut cmd = Command::new("git");
            cmd.arg("-C")
                .arg(dir)
                .args([
                    "-c",
                    "core.quotepath=off",
                    "diff",
                    "--name-status",
                    "--no-color",
                ])
                .args([base, branch, "--"]);
            (run_vcs(cmd, "git diff")?, "git diff", "ports".to_string())
        };
        let text = String::from_utf8_lossy(&stdout);
        let mut loc = Loc {
            file: name.into(),
            line: 0,
        };
        for line in text.lines() {
            loc.line += 1;
            if line.trim().is_empty() {
                continue;
            }
            take(line, &module, &loc, diag);
        }
    } else {
        Inputs::new(&args.files).for_each(diag, |item, loc| {
            match item {
                Item::Record(r) => {
                    if !args.text {
                        out.record(&r)?;
                    }
                }
                Item::Text(t) => take(&t, "ports", loc, diag),
            }
            Ok(())
        })?;
    }

    let mut dirs = tree_dir.map(PortDirs::new);
    let mut delta = resolve(changes, dirs.as_mut(), &args.exclude);
    let mut all = notices;
    all.append(&mut delta.notices);
    delta.notices = all;

    // A directory that cannot be a pkgpath is an error of the input.
    for (level, msg) in &delta.notices {
        if *level == Level::Error {
            diag.error(msg);
        }
    }
    if args.text {
        for (d, _) in delta.sorted_ports() {
            out.line(d)?;
        }
        for (level, msg) in &delta.notices {
            if *level == Level::Warning {
                diag.warn(format_args!("{}: {msg}", level.as_str()));
            }
        }
    } else {
        write_records(&delta, &mut out)?;
    }
    out.flush()?;
    Ok(diag.finish(if delta.ports.is_empty() {
        Exit::NothingToDo
    } else {
        Exit::Success
    }))
}

/// Parse a whole change list (for tests and the library user).
pub fn parse_all(text: impl Read, diag: &Diag) -> Result<Vec<FileChange>, Error> {
    let mut v = Vec::new();
    jsonl::read_lines("input".into(), text, diag, &mut |item, loc| {
        if let Item::Text(t) = item {
            match parse_line(&t, "ports") {
                Ok(Line::Changes(c)) => v.extend(c),
                Ok(_) => {}
                Err(e) => diag.error_at(loc, e),
            }
        }
        Ok(())
    })?;
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ch(path: &str, status: Status, from: Option<&str>, to: Option<&str>) -> Line {
        Line::Changes(vec![FileChange {
            change: Change {
                path: path.into(),
                status,
                from: from.map(Into::into),
                to: to.map(Into::into),
            },
            known: true,
        }])
    }

    #[test]
    fn line_forms() {
        use Status::*;
        let p = |l| parse_line(l, "ports").unwrap();
        assert_eq!(
            p("File ports/net/dhcpcd/Makefile changed from revision 1.1.1.1 to 1.1.1.1.2.1"),
            ch(
                "net/dhcpcd/Makefile",
                Modified,
                Some("1.1.1.1"),
                Some("1.1.1.1.2.1")
            )
        );
        assert_eq!(
            p("File ports/editors/vim/patches/patch-new_c is new; OPENBSD_7_4 revision 1.1.2.1"),
            ch(
                "editors/vim/patches/patch-new_c",
                Added,
                None,
                Some("1.1.2.1")
            )
        );
        assert_eq!(
            p("File ports/devel/gmake/distinfo is removed; OPENBSD_7_4_BASE revision 1.1.1.1"),
            ch("devel/gmake/distinfo", Removed, Some("1.1.1.1"), None)
        );
        assert_eq!(
            p("cvs update: `devel/gmake/distinfo' is no longer in the repository"),
            ch("devel/gmake/distinfo", Removed, None, None)
        );
        assert_eq!(
            p("cvs update: warning: `x/y' is not (any longer) pertinent"),
            Line::Notice(
                Level::Warning,
                "cvs update: warning: `x/y' is not (any longer) pertinent".into()
            )
        );
        assert_eq!(p("cvs update: Updating net/curl"), Line::Nothing);
        assert_eq!(
            p("U net/curl/Makefile"),
            ch("net/curl/Makefile", Modified, None, None)
        );
        assert_eq!(
            p("P net/curl/distinfo"),
            ch("net/curl/distinfo", Modified, None, None)
        );
        assert_eq!(p("? net/curl/x.orig"), Line::Nothing);
        assert_eq!(
            p("M net/tor/Makefile"),
            Line::Notice(
                Level::Warning,
                "cvs update: net/tor/Makefile is modified locally: the checkout needs attention"
                    .into()
            )
        );
        for l in [
            "A net/new/Makefile",
            "R net/old/Makefile",
            "C net/curl/Makefile",
        ] {
            assert!(matches!(p(l), Line::Notice(Level::Warning, _)), "{l}");
        }
        assert_eq!(
            p("M\tnet/curl/Makefile"),
            ch("net/curl/Makefile", Modified, None, None)
        );
        assert_eq!(
            p("D\tnet/old/Makefile"),
            ch("net/old/Makefile", Removed, None, None)
        );
        assert_eq!(
            p("A\tnet/new/Makefile"),
            ch("net/new/Makefile", Added, None, None)
        );
        let Line::Changes(r) = p("R087\tnet/a/patches/p1\tnet/b/patches/p1") else {
            panic!()
        };
        assert_eq!(r.len(), 2);
        assert_eq!(r[0].change.status, Removed);
        assert_eq!(r[1].change.path, "net/b/patches/p1");
        let Line::Changes(r) = p("ports/net/curl/pkg/PLIST") else {
            panic!()
        };
        assert_eq!(r[0].change.path, "net/curl/pkg/PLIST");
        assert!(!r[0].known);
        for bad in [
            "hello world",
            "File ports/x frobbed",
            "X\tnet/curl/Makefile\textra\tmore",
            "../etc/passwd",
            "/etc/passwd",
            "U net/../../etc",
            "File ports//x changed from revision 1 to 2",
            "Mx\tnet/curl",
        ] {
            assert!(parse_line(bad, "ports").is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn path_rules() {
        assert_eq!(port_by_path("net/curl/Makefile"), "net/curl");
        assert_eq!(port_by_path("net/curl/patches/patch-a"), "net/curl");
        assert_eq!(port_by_path("net/curl/pkg/PLIST"), "net/curl");
        assert_eq!(port_by_path("net/curl/files/a/b/c"), "net/curl");
        assert_eq!(
            port_by_path("net/icinga/core2/pkg/PLIST"),
            "net/icinga/core2"
        );
        assert_eq!(port_by_path("lang/php/8.2/files/x"), "lang/php/8.2");
        assert_eq!(port_by_path("x11/files/Makefile"), "x11/files");
    }
}
