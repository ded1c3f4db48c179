//! ports-delta: from a change list to the ports that changed.
//!
//! Reads change lists (`cvs rdiff -s`, `cvs update`, `git diff --name-status`, plain
//! paths, mixed line by line) or runs the VCS itself, maps every file to the port it
//! belongs to, and emits one `port` record per changed port, `removed` records for
//! ports that are gone, and `notice` records for what the summary must show.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;

use crate::diag::{Diag, Exit, Loc};
use crate::jsonl::{self, Item, ItemRef, Output};
use crate::pkgpath::check_dir;
use crate::ports::{DirKind, PortDirs, PORT_SUBDIRS};
use crate::record::{Change, Kind, Level, Record, Status};
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

impl FileChange {
    /// The change, borrowed.
    pub fn borrowed(&self) -> FileRef<'_> {
        let c = &self.change;
        let change = ChangeRef {
            path: &c.path,
            status: c.status,
            from: c.from.as_deref(),
            to: c.to.as_deref(),
        };
        FileRef::new(change, self.known)
    }
}

/// A [`Change`] whose text is borrowed from the change list: reading a whole
/// release's change list allocates nothing per line.  The fields, their order
/// and their serialisation are those of [`Change`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
pub struct ChangeRef<'a> {
    pub path: &'a str,
    pub status: Status,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub to: Option<&'a str>,
}

impl ChangeRef<'_> {
    pub fn to_change(&self) -> Change {
        Change {
            path: self.path.to_string(),
            status: self.status,
            from: self.from.map(str::to_string),
            to: self.to.map(str::to_string),
        }
    }
}

/// A [`FileChange`] borrowed from the change list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FileRef<'a> {
    pub change: ChangeRef<'a>,
    /// False for plain paths: the line did not say what happened to the file.
    pub known: bool,
    /// The port of the file by path rules alone (a prefix of its path): found
    /// while the path is checked, in the same pass over it.
    port: &'a str,
}

impl<'a> FileRef<'a> {
    pub fn new(change: ChangeRef<'a>, known: bool) -> Self {
        FileRef {
            port: port_by_path(change.path),
            change,
            known,
        }
    }

    /// The port of the file by path rules alone: see [`port_by_path`].
    pub fn port_by_path(&self) -> &'a str {
        self.port
    }

    pub fn to_file_change(&self) -> FileChange {
        FileChange {
            change: self.change.to_change(),
            known: self.known,
        }
    }
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
    let mut v = Vec::new();
    let notice = parse_changes(line, module, &mut v)?;
    Ok(match notice {
        Some((level, msg)) => Line::Notice(level, msg),
        None if v.is_empty() => Line::Nothing,
        None => Line::Changes(v.iter().map(FileRef::to_file_change).collect()),
    })
}

/// Parse one line of a change list (see [`parse_line`]): its changes are pushed
/// on `out`, borrowing from `line`; a notice is returned.  A bad line pushes
/// nothing.
pub fn parse_changes<'a>(
    line: &'a str,
    module: &str,
    out: &mut Vec<FileRef<'a>>,
) -> Result<Option<(Level, String)>, String> {
    let line = line.trim_end_matches(['\r', '\n']);
    let strip = |p: &'a str| -> Result<(&'a str, Scan), String> {
        let p = p
            .strip_prefix(module)
            .and_then(|r| r.strip_prefix('/'))
            .unwrap_or(p);
        Ok((p, check_path(p)?))
    };
    let change = |path: &'a str, status, from, to, known| -> Result<FileRef<'a>, String> {
        let (path, scan) = strip(path)?;
        Ok(FileRef {
            change: ChangeRef {
                path,
                status,
                from,
                to,
            },
            known,
            port: &path[..scan.port],
        })
    };
    let mut one = |path: &'a str, status, from, to, known| {
        out.push(change(path, status, from, to, known)?);
        Ok(None)
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
                return Ok(None);
            }
            return Ok(Some((Level::Warning, line.to_string())));
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
                let (path, _) = strip(p)?;
                let what = match b[0] {
                    b'M' => "modified locally",
                    b'A' => "added locally, not committed",
                    b'R' => "removed locally, not committed",
                    _ => "in conflict",
                };
                Ok(Some((
                    Level::Warning,
                    format!("cvs update: {path} is {what}: the checkout needs attention"),
                )))
            }
            b'?' => Ok(None),
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
                // Both paths must be good before either is taken.
                let from = change(f[1], Status::Removed, None, None, true)?;
                let to = change(f[2], Status::Added, None, None, true)?;
                out.extend([from, to]);
                Ok(None)
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
/// characters.  What the check found out on the way comes back with it.
fn check_path(p: &str) -> Result<Scan, String> {
    if p.is_empty() {
        return Err("empty path".into());
    }
    if p.starts_with('/') {
        return Err(format!("absolute path not allowed: {p}"));
    }
    let scan = Scan::new(p);
    if scan.bad_segment {
        return Err(format!("invalid path (empty, . or .. segment): {p}"));
    }
    if scan.odd_byte && p.chars().any(char::is_control) {
        return Err(format!("invalid path (control character): {p:?}"));
    }
    Ok(scan)
}

/// What one pass over the bytes of a file's path finds: what its check needs,
/// and where its directory and its port by path rules end.  (This runs for
/// every line of a change list.)
#[derive(Debug, PartialEq)]
struct Scan {
    /// Where the file name starts (after the last `/`).
    name: usize,
    /// The length of the port directory by path rules (see [`port_by_path`]).
    port: usize,
    /// A segment is empty, `.` or `..`.
    bad_segment: bool,
    /// A byte below 0x20 or from 0x7f on: maybe a control character.
    odd_byte: bool,
}

impl Scan {
    fn new(path: &str) -> Scan {
        let b = path.as_bytes();
        // Quick passes over all bytes, in forms the compiler turns into vector
        // instructions (the odd bytes; where the `/` are, a bit each), then a
        // look at each directory name.
        let odd_byte = b.iter().fold(false, |a, &c| a | !(0x20..0x7f).contains(&c));
        let (mut slashes, mut start) = (0, 0);
        let (mut cut, mut bad_segment) = (None, false);
        let blocks = b.chunks_exact(16);
        let mut tail = [0u8; 16];
        tail[..blocks.remainder().len()].copy_from_slice(blocks.remainder());
        let bits = blocks
            .map(|block| <&[u8; 16]>::try_from(block).map_or(0, slash_bits))
            .chain([slash_bits(&tail)]);
        for (k, mut bits) in bits.enumerate() {
            while bits != 0 {
                let j = 16 * k + bits.trailing_zeros() as usize;
                bits &= bits - 1;
                // A directory ends at `j`.  Below the category, the first
                // `pkg`, `patches` or `files` cuts the port's directory off.
                let seg = &b[start..j];
                bad_segment |= matches!(seg, b"" | b"." | b"..");
                if slashes >= 2 && cut.is_none() && PORT_SUBDIRS.iter().any(|s| s.as_bytes() == seg)
                {
                    cut = Some(start - 1);
                }
                slashes += 1;
                start = j + 1;
            }
        }
        bad_segment |= matches!(&b[start..], b"" | b"." | b"..");
        Scan {
            name: start,
            port: cut.unwrap_or(start.saturating_sub(1)),
            bad_segment,
            odd_byte,
        }
    }
}

/// A bit for each `/` of a block of 16 bytes.
fn slash_bits(block: &[u8; 16]) -> u32 {
    let mut bits = 0;
    for (i, &c) in block.iter().enumerate() {
        bits |= u32::from(c == b'/') << i;
    }
    bits
}

/// The result of mapping changes to ports.  Ports and removed ports keep
/// references to their changes, borrowed from the change list like the pkgpaths
/// that are a file's directory; pkgpaths the tree named (the ports below a
/// `Makefile.inc`) are owned.
#[derive(Debug, Default, PartialEq)]
pub struct Delta<'a> {
    pub ports: HashMap<Cow<'a, str>, PortEntry<'a>>,
    pub removed: BTreeMap<Cow<'a, str>, Vec<&'a FileRef<'a>>>,
    pub notices: Vec<(Level, String)>,
    said: HashSet<String>,
}

/// The changes of one port and the reasons it was reached indirectly.
#[derive(Debug, Default, PartialEq)]
pub struct PortEntry<'a> {
    pub changes: Vec<&'a FileRef<'a>>,
    pub why: BTreeSet<String>,
}

impl<'a> Delta<'a> {
    fn port(&mut self, dir: Cow<'a, str>, changes: Vec<&'a FileRef<'a>>, why: Option<&str>) {
        let e = self.ports.entry(dir).or_default();
        if e.changes.is_empty() {
            e.changes = changes;
        } else {
            e.changes.extend(changes);
        }
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
    pub fn sorted_ports(&self) -> Vec<(&str, &PortEntry<'a>)> {
        let mut v: Vec<_> = self.ports.iter().map(|(d, e)| (&**d, e)).collect();
        v.sort_unstable_by(|a, b| a.0.cmp(b.0));
        v
    }
}

/// The changes of a port or removed port, sorted, each once.
pub fn sorted_changes<'a>(changes: &[&'a FileRef<'a>]) -> Vec<&'a ChangeRef<'a>> {
    let mut v: Vec<&ChangeRef> = changes.iter().map(|f| &f.change).collect();
    v.sort_unstable();
    v.dedup();
    v
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

/// Is the file in `infrastructure/`, which concerns every port, none in particular?
fn in_infrastructure(path: &str) -> bool {
    path.strip_prefix("infrastructure")
        .is_some_and(|r| r.is_empty() || r.starts_with('/'))
}

/// The port a file belongs to by path rules alone: its directory, cut at the first
/// `pkg`, `patches` or `files` below the category.
pub fn port_by_path(path: &str) -> &str {
    &path[..Scan::new(path).port]
}

/// Is the file an administrative file of CVS (`net/curl/CVS/Entries`)?  Never
/// part of a port; a git mirror of the CVS repository keeps them.
fn is_cvs_admin(path: &str) -> bool {
    path.starts_with("CVS/") || path.contains("/CVS/")
}

/// Is the file a module outside infrastructure/ (`lang/python/python.port.mk`)?
/// The ports that use it (`MODULES = lang/python`) are all over the tree.
fn is_module(path: &str) -> bool {
    path.ends_with(".port.mk") && !in_infrastructure(path) && !is_cvs_admin(path)
}

/// Is the file, found in group `group` (not in a port), one its ports share: a
/// file of the group's own (`distinfo`, `DESCR-main`, `Makefile.version`) or in
/// its `pkg/`, `files/` or `patches/` (`PKGDIR = ${.CURDIR}/../pkg`)?  Not the
/// group's Makefile (its SUBDIR list), not a README, not a module.
fn shared_by_group(group: &str, path: &str) -> bool {
    let rel = if group.is_empty() {
        path
    } else {
        match path.strip_prefix(group).and_then(|r| r.strip_prefix('/')) {
            Some(r) => r,
            None => return false,
        }
    };
    match rel.split_once('/') {
        None => rel != "Makefile" && !rel.starts_with("README") && !rel.ends_with(".port.mk"),
        Some((first, _)) => PORT_SUBDIRS.contains(&first),
    }
}

/// The port a removed file was in, when the change list removes that port: the
/// shallowest directory between `existing` (the nearest directory above the file
/// that is still a port or group, of kind `kind`) and the file's directory `dir`
/// whose Makefile the change list removes and that was no group (no Makefile
/// below it removed, but in `files/` or `patches/`).  Below a live port, only
/// outside its `pkg/`, `files/` and `patches/` (a group that became a port).
fn removed_port_below<'a>(
    existing: &str,
    kind: DirKind,
    dir: &'a str,
    removed_makefiles: &HashSet<&str>,
    old_groups: &HashSet<&str>,
) -> Option<&'a str> {
    let rel = if existing.is_empty() {
        dir
    } else {
        dir.strip_prefix(existing)?.strip_prefix('/')?
    };
    if kind == DirKind::Port && PORT_SUBDIRS.contains(&rel.split('/').next().unwrap_or(rel)) {
        return None;
    }
    let mut end = dir.len() - rel.len();
    for seg in rel.split('/') {
        end += seg.len();
        let m = &dir[..end];
        if removed_makefiles.contains(m) && !old_groups.contains(m) {
            return Some(m);
        }
        end += 1;
    }
    None
}

/// Is `dir`, or a directory between it and `existing` (above it), a group the
/// change list removes?
fn under_old_group(dir: &str, existing: &str, old_groups: &HashSet<&str>) -> bool {
    let mut d = dir;
    while depth(d) > depth(existing) {
        if old_groups.contains(d) {
            return true;
        }
        d = parent(d);
    }
    false
}

/// Is the file one that says something about every port or about a group's
/// ports, rather than about the port it is in?
fn is_special(path: &str) -> bool {
    in_infrastructure(path)
        || path
            .strip_suffix("Makefile.inc")
            .is_some_and(|d| d.is_empty() || d.ends_with('/'))
}

/// Changes in a row of the change list, as the path rules see them.
enum Run<'a> {
    /// Files the path rules give to one port (a change list comes sorted by
    /// path: the files of a port come together).
    Files(&'a str, Vec<&'a FileRef<'a>>),
    /// A file that says something about every port or about a group's ports
    /// (see [`is_special`]).
    Special(&'a FileRef<'a>),
}

/// The runs of a part of the change list, and the directories whose Makefile it
/// says is removed.
fn runs<'a>(part: &'a [FileRef<'a>]) -> (Vec<Run<'a>>, Vec<&'a str>) {
    let mut runs: Vec<Run> = Vec::new();
    let mut removed = Vec::new();
    for f in part {
        let c = &f.change;
        if is_cvs_admin(c.path) {
            continue;
        }
        if c.status == Status::Removed && c.path.ends_with("/Makefile") {
            removed.push(parent(c.path));
        }
        if is_special(c.path) {
            runs.push(Run::Special(f));
            continue;
        }
        match runs.last_mut() {
            Some(Run::Files(port, files)) if *port == f.port => files.push(f),
            _ => runs.push(Run::Files(f.port, vec![f])),
        }
    }
    (runs, removed)
}

/// Map file changes to ports.  With `tree` (the checkout the changes lead to), each
/// file goes to the nearest enclosing port directory; a `Makefile.inc`, and a file
/// a group's ports share (its `distinfo`, its `pkg/`), to every port below the
/// group that the SUBDIR lists reach; a port directory that is gone, or that became
/// a group or a module directory, is removed; without, path rules decide.  CVS
/// administrative files are no change.  `input` is the change list in one
/// or more parts, in order (as read in parallel).
pub fn resolve<'a>(
    input: &[&'a [FileRef<'a>]],
    mut tree: Option<&mut PortDirs>,
    excludes: &[String],
) -> Delta<'a> {
    use rayon::prelude::*;
    let mut delta = Delta::default();
    // What the path rules say, a part of the change list a thread.
    let parts: Vec<(Vec<Run>, Vec<&str>)> = input.par_iter().map(|part| runs(part)).collect();
    // Directories whose Makefile a change list says is removed: removed ports,
    // unless a Makefile below them is removed too (a removed group; a port's
    // files/Makefile aside).
    let removed_makefiles: HashSet<&str> = parts.iter().flat_map(|p| &p.1).copied().collect();
    let old_groups: HashSet<&str> = removed_makefiles
        .iter()
        .filter_map(|d| d.rsplit_once('/'))
        .filter(|(_, name)| !matches!(*name, "files" | "patches"))
        .map(|(up, _)| up)
        .collect();
    // Removed-port candidates: dir -> (changes, any known add/modify)
    let mut gone: BTreeMap<&'a str, (Vec<&'a FileRef<'a>>, bool)> = BTreeMap::new();

    if let Some(t) = tree.as_deref_mut() {
        // Nearly every file is in the port its path names, so that directory is
        // asked about first: read all of them ahead, in parallel.
        let dirs: Vec<&str> = parts
            .iter()
            .flat_map(|p| &p.0)
            .filter_map(|r| match r {
                Run::Files(port, _) => Some(*port),
                Run::Special(_) => None,
            })
            .collect();
        delta.ports.reserve(dirs.len());
        t.prefetch(dirs);
    }
    for part in input {
        for f in part.iter().filter(|f| is_module(f.change.path)) {
            let path = f.change.path;
            let dir = parent(path);
            delta.notice(
                Level::Warning,
                format!("{path} changed: a module; the ports that use it (MODULES = {dir}) are not rebuilt for it, rebuild them by hand if needed"),
            );
        }
    }

    for run in parts.into_iter().flat_map(|p| p.0) {
        let (by_path, files) = match run {
            Run::Files(port, files) => (port, files),
            Run::Special(f) => {
                let path = f.change.path;
                let dir = parent(path);
                if in_infrastructure(path) {
                    delta.notice(
                        Level::Warning,
                        format!("{path} changed: infrastructure concerns every port; nothing rebuilt for it, rebuild by hand if needed"),
                    );
                    continue;
                }
                // A Makefile.inc.
                if dir.is_empty() {
                    delta.notice(
                        Level::Warning,
                        format!("{path} changed: it concerns every port; nothing rebuilt for it"),
                    );
                    continue;
                }
                let Some(t) = tree.as_deref_mut() else {
                    delta.notice(
                        Level::Warning,
                        format!("{path} changed: the ports that include it could not be listed without a ports tree (--ports-dir)"),
                    );
                    continue;
                };
                // One in a port is the port's own file.
                let mut a = dir;
                let mut kind = t.kind(a);
                while matches!(kind, DirKind::Missing | DirKind::Plain) && !a.is_empty() {
                    a = parent(a);
                    kind = t.kind(a);
                }
                if kind == DirKind::Port {
                    delta.port(Cow::Borrowed(a), vec![f], None);
                    continue;
                }
                // Else every port the SUBDIR lists reach below it.
                let why = format!("{path} changed");
                let below = t.ports_below(dir);
                if below.is_empty() && t.kind(dir) == DirKind::Group {
                    delta.notice(
                        Level::Info,
                        format!("{path} changed: no port below {dir} is reached by the SUBDIR lists; nothing rebuilt for it"),
                    );
                }
                for p in below {
                    delta.port(Cow::Owned(p), vec![f], Some(&why));
                }
                continue;
            }
        };
        // (The files' directory has fewer than two segments exactly when the
        // port by path rules has.)
        if depth(by_path) < 2 && tree.is_none() {
            // The top or a category: not a port.
            continue;
        }
        // The port the path names, when it is one, is the files' port: without
        // a tree, unless the change list removes it; with a tree, when the tree
        // says it is a port (ports do not nest, and nothing inside a port is a
        // group, so it is the nearest port above the files).
        let is_port = match tree.as_deref_mut() {
            None => !removed_makefiles.contains(by_path),
            Some(t) => t.kind(by_path) == DirKind::Port,
        };
        if is_port {
            delta.port(Cow::Borrowed(by_path), files, None);
            continue;
        }
        let Some(t) = tree.as_deref_mut() else {
            gone.entry(by_path).or_default().0.extend(files);
            continue;
        };
        for f in files {
            let c = &f.change;
            let dir = parent(c.path);
            // Else the nearest port or group above the file; `gone` when a
            // directory on the way is missing from the checkout.
            let mut a = dir;
            let mut passed_missing = false;
            let mut kind = t.kind(a);
            while matches!(kind, DirKind::Missing | DirKind::Plain) && !a.is_empty() {
                // A directory left behind by a removed port (no `cvs up -P`), or
                // one that became a module directory, counts as gone.
                passed_missing |= kind == DirKind::Missing || removed_makefiles.contains(a);
                a = parent(a);
                kind = t.kind(a);
            }
            let alive = f.known && c.status != Status::Removed;
            // A port the change list removes (below a group, or below a group
            // that became a port).
            if let Some(m) = removed_port_below(a, kind, dir, &removed_makefiles, &old_groups) {
                let e = gone.entry(m).or_default();
                e.0.push(f);
                e.1 |= alive;
                continue;
            }
            match kind {
                DirKind::Port => delta.port(Cow::Borrowed(a), vec![f], None),
                DirKind::Group if passed_missing => {
                    // The directory is gone below a group, with no Makefile
                    // removed on the way: a removed port (or one that became a
                    // group or a module directory) by path rules, unless the
                    // change list removes a group on the way (below a removed
                    // group, a port is known by its removed Makefile: what has
                    // none is some other directory of the group).
                    let port_gone = depth(by_path) >= 2
                        && depth(by_path) >= depth(a)
                        && !under_old_group(by_path, a, &old_groups);
                    if port_gone {
                        let e = gone.entry(by_path).or_default();
                        e.0.push(f);
                        e.1 |= alive;
                    }
                }
                // A file the group's ports share.
                DirKind::Group
                    if depth(a) >= 2
                        && c.status != Status::Removed
                        && shared_by_group(a, c.path) =>
                {
                    let why = format!("{} changed", c.path);
                    for p in t.ports_below(a) {
                        delta.port(Cow::Owned(p), vec![f], Some(&why));
                    }
                }
                // A category or group file, a file in a plain directory.
                _ => {}
            }
        }
    }
    for (dir, (chs, alive)) in gone {
        if alive {
            delta.notice(
                Level::Warning,
                format!("{dir}: changed but not in the ports tree: is the checkout up to date?"),
            );
            delta.port(Cow::Borrowed(dir), chs, None);
        } else {
            delta.removed.insert(Cow::Borrowed(dir), chs);
        }
    }
    // A port changed directly that no SUBDIR list reaches (commented out of its
    // group) is listed, with a warning: make builds it when a list names it,
    // sqlports (and pkgpath-expand) may not know it.
    if let Some(t) = tree {
        let mut unhooked: Vec<&str> = delta
            .ports
            .keys()
            .map(|d| &**d)
            .filter(|d| t.kind(d) == DirKind::Port && !t.hooked(d))
            .collect();
        unhooked.sort_unstable();
        let msgs: Vec<String> = unhooked
            .into_iter()
            .map(|d| {
                format!("{d}: changed, but no SUBDIR list reaches it (not hooked into {}): listed all the same; sqlports may not know it", parent(d))
            })
            .collect();
        for m in msgs {
            delta.notice(Level::Warning, m);
        }
    }
    // Invalid directories cannot become pkgpaths; then excluded ones are left
    // out.  (Ports and removed ports in pkgpath order, so the notices come in
    // an order that does not change from run to run.)
    let mut listed: Vec<Cow<'a, str>> = delta.ports.keys().cloned().collect();
    listed.sort_unstable();
    listed.extend(delta.removed.keys().cloned());
    listed.retain(|d| match check_dir(d) {
        Ok(()) => true,
        Err(e) => {
            delta.ports.remove(d);
            delta.removed.remove(d);
            delta.notice(Level::Error, format!("{e}: not listed"));
            false
        }
    });
    if !excludes.is_empty() {
        for d in listed {
            if let Some(g) = excludes.iter().find(|g| glob::matches(g, &d)) {
                delta.ports.remove(&d);
                delta.removed.remove(&d);
                delta.notice(Level::Info, format!("{d} excluded by {g}"));
            }
        }
    }
    delta
}

/// A port or removed record as written.
struct PortOut<'a> {
    kind: Kind,
    pkgpath: &'a str,
    changes: Vec<&'a ChangeRef<'a>>,
    why: Option<String>,
}

impl PortOut<'_> {
    /// The record as one line of JSON, the fields in their documented order,
    /// byte for byte as serde_json writes it.  Written by hand: a whole
    /// release's changes make some ten megabytes of it, and serde_json spends
    /// most of its time looking for characters to escape in paths and
    /// revisions, which have none.
    fn to_line(&self) -> String {
        let mut s = String::with_capacity(self.size());
        self.write_to(&mut s);
        s
    }

    /// About the length of the line.
    fn size(&self) -> usize {
        64 + 100 * self.changes.len()
    }

    /// Append the line, without its line end, to `s`.  (The quotes around
    /// strings go with the text between them: fewer, longer appends.)
    fn write_to(&self, s: &mut String) {
        s.push_str("{\"kind\":\"");
        json_text(s, self.kind.as_str());
        s.push_str("\",\"v\":");
        s.push_str(&crate::record::VERSION.to_string());
        s.push_str(",\"pkgpath\":\"");
        json_text(s, self.pkgpath);
        s.push_str("\",\"changes\":[");
        for (k, c) in self.changes.iter().enumerate() {
            s.push_str(if k == 0 {
                "{\"path\":\""
            } else {
                ",{\"path\":\""
            });
            json_text(s, c.path);
            s.push_str(match c.status {
                Status::Modified => "\",\"status\":\"modified\"",
                Status::Added => "\",\"status\":\"added\"",
                Status::Removed => "\",\"status\":\"removed\"",
            });
            if let Some(from) = c.from {
                s.push_str(",\"from\":\"");
                json_text(s, from);
                s.push('"');
            }
            if let Some(to) = c.to {
                s.push_str(",\"to\":\"");
                json_text(s, to);
                s.push('"');
            }
            s.push('}');
        }
        s.push(']');
        if let Some(why) = &self.why {
            s.push_str(",\"why\":\"");
            json_text(s, why);
            s.push('"');
        }
        s.push('}');
    }
}

/// Append `text` as the inside of a JSON string (without the quotes).
fn json_text(out: &mut String, text: &str) {
    // serde_json escapes `"`, `\` and characters below 0x20, nothing else: a
    // text without them is copied as it is.  (A quick look, in a form the
    // compiler turns into vector instructions.)
    let plain = text
        .bytes()
        .fold(true, |ok, b| ok & (b >= 0x20) & (b != b'"') & (b != b'\\'));
    if plain {
        out.push_str(text);
    } else {
        // A string always serialises, quoted.
        let quoted = serde_json::to_string(text).unwrap_or_default();
        out.push_str(quoted.get(1..quoted.len() - 1).unwrap_or_default());
    }
}

/// Write the records of a delta: ports first, then removed ports, then notices.
pub fn write_records(delta: &Delta, out: &mut Output) -> Result<(), Error> {
    use rayon::prelude::*;
    // A whole release's changes make thousands of records, some megabytes:
    // they are made in parallel, some hundreds at a time (so that the memory
    // of one round serves the next), each round while the one before it is
    // written.  A thread makes a block of lines as one text.
    let make = |round: &[(&str, &PortEntry)]| -> Vec<String> {
        round
            .par_chunks(32)
            .map(|block| {
                let records: Vec<PortOut> = block
                    .iter()
                    .map(|(dir, e)| PortOut {
                        kind: Kind::Port,
                        pkgpath: dir,
                        changes: sorted_changes(&e.changes),
                        why: (!e.why.is_empty())
                            .then(|| e.why.iter().cloned().collect::<Vec<_>>().join("; ")),
                    })
                    .collect();
                let mut text = String::with_capacity(records.iter().map(PortOut::size).sum());
                for (k, r) in records.iter().enumerate() {
                    if k > 0 {
                        text.push('\n');
                    }
                    r.write_to(&mut text);
                }
                text
            })
            .collect()
    };
    let ports = delta.sorted_ports();
    let mut rounds = ports.chunks(512);
    let mut lines = rounds.next().map(make).unwrap_or_default();
    loop {
        let mut next = None;
        let written = rayon::in_place_scope(|s| {
            if let Some(round) = rounds.next() {
                s.spawn(|_| next = Some(make(round)));
            }
            // (The last line of a block gets its line end here.)
            lines.iter().try_for_each(|block| out.line(block))
        });
        written?;
        match next {
            Some(n) => lines = n,
            None => break,
        }
    }
    for (dir, idx) in &delta.removed {
        let r = PortOut {
            kind: Kind::Removed,
            pkgpath: dir,
            changes: sorted_changes(idx),
            why: None,
        };
        out.line(&r.to_line())?;
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
    // The change lists are read whole and the changes borrow their text from
    // them (a whole release's list is some megabytes).
    let vcs = if args.cvs.is_some() || args.git.is_some() {
        let Some(dir) = &tree_dir else {
            return Err(Error::Usage(
                "--cvs and --git need the checkout: give --ports-dir or set PORTSDIR".into(),
            ));
        };
        Some(run_vcs_diff(args, dir)?)
    } else {
        None
    };
    let inputs = match vcs {
        Some(_) => Vec::new(),
        None => read_inputs(&args.files),
    };
    // The changes, in parts.
    let mut changes: Vec<Vec<FileRef>> = Vec::new();
    let mut notices: Vec<(Level, String)> = Vec::new();
    if let Some((text, name, module)) = &vcs {
        let mut vcs_changes = Vec::new();
        let mut loc = Loc {
            file: (*name).into(),
            line: 0,
        };
        for line in text.lines() {
            loc.line += 1;
            if line.trim().is_empty() {
                continue;
            }
            match parse_changes(line, module, &mut vcs_changes) {
                Ok(Some(n)) => notices.push(n),
                Ok(None) => {}
                Err(e) => diag.error_at(&loc, e),
            }
        }
        changes.push(vcs_changes);
    }
    for Input { name, text } in &inputs {
        let data = match text {
            Ok(d) => d,
            Err(Unread::Open(msg)) => {
                diag.error(msg);
                continue;
            }
            Err(Unread::Read(e)) => {
                return Err(Error::io(
                    &**name,
                    std::io::Error::new(e.kind(), e.to_string()),
                ))
            }
        };
        let parsed = parse_input(data);
        for (line, event) in parsed.events {
            let loc = Loc {
                file: name.clone(),
                line,
            };
            match event {
                Event::Record(r) if !args.text => out.record(&r)?,
                Event::Record(_) => {}
                Event::Notice(n) => notices.push(n),
                Event::Error(e) => diag.error_at(&loc, e),
            }
        }
        changes.extend(parsed.changes);
    }

    let mut dirs = tree_dir.map(PortDirs::new);
    let parts: Vec<&[FileRef]> = changes.iter().map(Vec::as_slice).collect();
    let mut delta = resolve(&parts, dirs.as_mut(), &args.exclude);
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

/// Run the VCS of `--cvs` or `--git` on the checkout in `dir`: its output, the
/// name it goes by in messages, and the module prefix of its paths.
fn run_vcs_diff(args: &Args, dir: &Path) -> Result<(String, &'static str, String), Error> {
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
    let text = String::from_utf8(stdout)
        .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned());
    Ok((text, name, module))
}

/// Why an input was not read; reported in its turn, after the inputs before it.
enum Unread {
    /// It could not be opened: an error, and the next input is read.
    Open(String),
    /// Reading it failed: the run ends.
    Read(std::io::Error),
}

/// Every input (the FILE operands, standard input when none or `-`), read whole,
/// with its name for messages.
fn read_inputs(files: &[PathBuf]) -> Vec<Input> {
    let stdin = [PathBuf::from("-")];
    let files = if files.is_empty() { &stdin[..] } else { files };
    files
        .iter()
        .map(|path| {
            let mut data = Vec::new();
            if path.as_os_str() == "-" {
                let r = std::io::stdin().lock().read_to_end(&mut data);
                return Input {
                    name: "stdin".into(),
                    text: r.map(|_| data).map_err(Unread::Read),
                };
            }
            let text = match std::fs::File::open(path) {
                Ok(mut f) => f.read_to_end(&mut data).map(|_| data).map_err(Unread::Read),
                Err(e) => Err(Unread::Open(format!("{}: {e}", path.display()))),
            };
            Input {
                name: path.display().to_string().into(),
                text,
            }
        })
        .collect()
}

/// One input, read whole.
struct Input {
    /// Its name in messages.
    name: Arc<str>,
    text: Result<Vec<u8>, Unread>,
}

/// What one input says: its changes, and the rest line by line.
#[derive(Default)]
struct Parsed<'a> {
    /// The changes, in one or more parts (one a thread), in order.
    changes: Vec<Vec<FileRef<'a>>>,
    /// Records to pass on, notices and errors, with their line numbers, in the
    /// order of the lines.
    events: Vec<(usize, Event)>,
    /// The number of lines.
    lines: usize,
}

enum Event {
    Record(Record),
    Notice((Level, String)),
    Error(String),
}

/// Parse one input: change list lines, records (passed on as they are), blank
/// lines and `#` comments, as [`jsonl::read_lines`] and [`parse_line`] read them.
fn parse_input(data: &[u8]) -> Parsed<'_> {
    use rayon::prelude::*;
    // Parsing is most of the work left for a long list: it is shared among the
    // threads, each taking a run of whole lines, and put together in order.
    const MIN_PART: usize = 256 * 1024;
    let n = (data.len() / MIN_PART).clamp(1, rayon::current_num_threads());
    let mut parts = Vec::with_capacity(n);
    let mut rest = data;
    for left in (1..n).rev() {
        // Cut off an equal share of what is left, at the next line end.
        let mut cut = rest.len() - rest.len() / (left + 1);
        while cut < rest.len() && rest[cut - 1] != b'\n' {
            cut += 1;
        }
        let (part, r) = rest.split_at(cut);
        parts.push(part);
        rest = r;
    }
    parts.push(rest);
    let pieces: Vec<Parsed> = parts.into_par_iter().map(parse_part).collect();
    // The changes stay in their parts (putting them together would copy them).
    let mut all = Parsed::default();
    for p in pieces {
        let before = all.lines;
        all.changes.extend(p.changes);
        all.events
            .extend(p.events.into_iter().map(|(line, e)| (before + line, e)));
        all.lines += p.lines;
    }
    all
}

/// Parse a run of whole lines; their numbers count from 1.
fn parse_part(data: &[u8]) -> Parsed<'_> {
    let mut p = Parsed::default();
    // Room for a change a line as short as 32 bytes (cvs rdiff lines are some
    // 90): the Vec is not moved as it grows, and what is not used costs only
    // address space.
    let mut changes = Vec::with_capacity(data.len() / 32);
    let events = &mut p.events;
    p.lines = for_each_line(data, |n, line| {
        let Some(line) = line else {
            events.push((n, Event::Error("line is not UTF-8".into())));
            return;
        };
        match jsonl::classify(line.trim_end_matches('\r')) {
            None => {}
            Some(Err(e)) => events.push((n, Event::Error(e.to_string()))),
            Some(Ok(ItemRef::Record(r))) => events.push((n, Event::Record(r))),
            Some(Ok(ItemRef::Text(t))) => match parse_changes(t, "ports", &mut changes) {
                Ok(None) => {}
                Ok(Some(notice)) => events.push((n, Event::Notice(notice))),
                Err(e) => events.push((n, Event::Error(e))),
            },
        }
    });
    p.changes.push(changes);
    p
}

/// Call `f` with the number (from 1) and the text of each line of `data`, without
/// its `\n`; `None` for a line that is not UTF-8.  Lines end at `\n`; a last line
/// without one counts.  Returns the number of lines.
fn for_each_line<'a>(data: &'a [u8], mut f: impl FnMut(usize, Option<&'a str>)) -> usize {
    let mut n = 0;
    let mut rest = data;
    while !rest.is_empty() {
        // Check the text as a whole, the fast way; only where that fails, find
        // the line at fault.
        let (good, bad_end) = match std::str::from_utf8(rest) {
            Ok(text) => (text, None),
            Err(e) => {
                let at = e.valid_up_to();
                let start = rest[..at]
                    .iter()
                    .rposition(|&b| b == b'\n')
                    .map_or(0, |i| i + 1);
                let end = rest[at..]
                    .iter()
                    .position(|&b| b == b'\n')
                    .map_or(rest.len(), |i| at + i + 1);
                // The lines before the bad one are good: this cannot fail.
                let good = std::str::from_utf8(&rest[..start]).unwrap_or_default();
                (good, Some(end))
            }
        };
        for line in good.split_terminator('\n') {
            n += 1;
            f(n, Some(line));
        }
        let Some(end) = bad_end else { break };
        n += 1;
        f(n, None);
        rest = &rest[end..];
    }
    n
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
    fn records_are_written_as_serde_json_writes_them() {
        /// The record as serde_json writes it, the reference.
        #[derive(serde::Serialize)]
        struct Reference {
            kind: &'static str,
            v: u64,
            pkgpath: String,
            changes: Vec<Change>,
            #[serde(skip_serializing_if = "Option::is_none")]
            why: Option<String>,
        }
        let odd = "a\"b\\c\u{1}\n\t\u{7f}\u{85}é\u{1f600}/";
        let changes = [
            ChangeRef {
                path: "net/curl/Makefile",
                status: Status::Modified,
                from: Some("1.80"),
                to: Some("1.80.2.1"),
            },
            ChangeRef {
                path: odd,
                status: Status::Added,
                from: None,
                to: Some(odd),
            },
            ChangeRef {
                path: "x",
                status: Status::Removed,
                from: Some("1.1"),
                to: None,
            },
        ];
        for (kind, pkgpath, n, why) in [
            (
                Kind::Port,
                "net/curl",
                3,
                Some("lang/php/Makefile.inc changed; x"),
            ),
            (Kind::Port, odd, 1, Some(odd)),
            (Kind::Removed, "net/old", 0, None),
            (Kind::Removed, "net/old", 2, None),
        ] {
            let ours = PortOut {
                kind,
                pkgpath,
                changes: changes[..n].iter().collect(),
                why: why.map(str::to_string),
            }
            .to_line();
            let reference = serde_json::to_string(&Reference {
                kind: kind.as_str(),
                v: crate::record::VERSION,
                pkgpath: pkgpath.into(),
                changes: changes[..n].iter().map(ChangeRef::to_change).collect(),
                why: why.map(str::to_string),
            })
            .unwrap();
            assert_eq!(ours, reference);
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
        assert_eq!(port_by_path("Makefile"), "");
        assert_eq!(port_by_path("net/Makefile"), "net");
        assert_eq!(port_by_path("net/curl/pkg"), "net/curl");
        assert_eq!(port_by_path("a/b/c/d/files/pkg/x"), "a/b/c/d");
        assert_eq!(port_by_path("a/b/filesx/pkg/x"), "a/b/filesx");
        assert!(is_special("infrastructure/mk/bsd.port.mk"));
        assert!(in_infrastructure("infrastructure"));
        assert!(!in_infrastructure("infrastructures/x"));
        assert!(is_special("lang/php/Makefile.inc") && is_special("Makefile.inc"));
        assert!(!is_special("lang/php/xMakefile.inc"));
        let scan = |p: &str| {
            let s = Scan::new(p);
            (s.name, s.port, s.bad_segment, s.odd_byte)
        };
        assert_eq!(scan("Makefile"), (0, 0, false, false));
        assert_eq!(scan("net/curl/pkg/PLIST"), (13, 8, false, false));
        assert_eq!(scan("a/./b\u{85}"), (4, 3, true, true));
        // The scan by blocks of 16 bytes finds what a plain reading of the
        // path rules finds, wherever the `/` fall.
        let reference = |p: &str| {
            let segs: Vec<&str> = p.split('/').collect();
            let dirs = &segs[..segs.len() - 1];
            let cut = (2..dirs.len())
                .find(|&i| PORT_SUBDIRS.contains(&dirs[i]))
                .unwrap_or(dirs.len());
            let port = dirs[..cut].join("/");
            let name = segs[segs.len() - 1];
            (
                p.len() - name.len(),
                port.len(),
                segs.iter().any(|s| s.is_empty() || *s == "." || *s == ".."),
                p.bytes().any(|b| !(0x20..0x7f).contains(&b)),
            )
        };
        let names = [
            "a",
            "pkg",
            "files",
            "patches",
            "",
            ".",
            "..",
            "x\u{1}",
            "0123456789abcdef",
        ];
        for n in 0..5000usize {
            // Every combination of up to five names, by the digits of `n`.
            let mut k = n;
            let mut parts = Vec::new();
            loop {
                parts.push(names[k % names.len()]);
                k /= names.len();
                if k == 0 {
                    break;
                }
            }
            let p = parts.join("/");
            assert_eq!(scan(&p), reference(&p), "{p:?}");
        }
        // The port found while a line is read is the one of the path rules.
        let text = "File ports/net/icinga/core2/pkg/PLIST is new; X revision 1.1\n\
                    net/curl/files/a/b\n\
                    R100\tx11/a/patches/p\tx11/b/files/pkg/q\n";
        let mut v = Vec::new();
        for line in text.lines() {
            parse_changes(line, "ports", &mut v).unwrap();
        }
        let ports: Vec<&str> = v.iter().map(FileRef::port_by_path).collect();
        assert_eq!(ports, ["net/icinga/core2", "net/curl", "x11/a", "x11/b"]);
        for f in &v {
            assert_eq!(*f, FileRef::new(f.change, f.known));
        }
    }
}
