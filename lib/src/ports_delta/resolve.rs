//! From changed files to changed ports, as make's SUBDIR walk has them: ports
//! below a changed Makefile.inc or group file, removed and new ports, notices.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use crate::glob;
use crate::pkgpath::check_dir;
use crate::ports::{DirKind, PortDirs, PORT_SUBDIRS};
use crate::record::{Level, Status};

use super::*;

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

pub(super) fn parent(p: &str) -> &str {
    p.rsplit_once('/').map(|(d, _)| d).unwrap_or("")
}

pub(super) fn depth(d: &str) -> usize {
    if d.is_empty() {
        0
    } else {
        d.split('/').count()
    }
}

/// Is the file in `infrastructure/`, which concerns every port, none in particular?
pub(super) fn in_infrastructure(path: &str) -> bool {
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
pub(super) fn is_cvs_admin(path: &str) -> bool {
    path.starts_with("CVS/") || path.contains("/CVS/")
}

/// Is the file a module outside infrastructure/ (`lang/python/python.port.mk`)?
/// The ports that use it (`MODULES = lang/python`) are all over the tree.
pub(super) fn is_module(path: &str) -> bool {
    path.ends_with(".port.mk") && !in_infrastructure(path) && !is_cvs_admin(path)
}

/// Is the file, found in group `group` (not in a port), one its ports share: a
/// file of the group's own (`distinfo`, `DESCR-main`, `Makefile.version`) or in
/// its `pkg/`, `files/` or `patches/` (`PKGDIR = ${.CURDIR}/../pkg`)?  Not the
/// group's Makefile (its SUBDIR list), not a README, not a module.
pub(super) fn shared_by_group(group: &str, path: &str) -> bool {
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
pub(super) fn removed_port_below<'a>(
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
pub(super) fn under_old_group(dir: &str, existing: &str, old_groups: &HashSet<&str>) -> bool {
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
pub(super) fn is_special(path: &str) -> bool {
    in_infrastructure(path)
        || path
            .strip_suffix("Makefile.inc")
            .is_some_and(|d| d.is_empty() || d.ends_with('/'))
}

/// Changes in a row of the change list, as the path rules see them.
pub(super) enum Run<'a> {
    /// Files the path rules give to one port (a change list comes sorted by
    /// path: the files of a port come together).
    Files(&'a str, Vec<&'a FileRef<'a>>),
    /// A file that says something about every port or about a group's ports
    /// (see [`is_special`]).
    Special(&'a FileRef<'a>),
}

/// The runs of a part of the change list, and the directories whose Makefile it
/// says is removed.
pub(super) fn runs<'a>(part: &'a [FileRef<'a>]) -> (Vec<Run<'a>>, Vec<&'a str>) {
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
    tree: Option<&mut PortDirs>,
    excludes: &[String],
) -> Delta<'a> {
    use rayon::prelude::*;
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
    let mut r = Resolver {
        delta: Delta::default(),
        tree,
        removed_makefiles: &removed_makefiles,
        old_groups: &old_groups,
        gone: BTreeMap::new(),
    };
    r.prefetch(&parts);
    r.modules(input);
    for run in parts.into_iter().flat_map(|p| p.0) {
        match run {
            Run::Files(port, files) => r.files(port, files),
            Run::Special(f) => r.special(f),
        }
    }
    let Resolver {
        mut delta,
        tree,
        gone,
        ..
    } = r;
    settle_gone(&mut delta, gone);
    if let Some(t) = tree {
        notice_unhooked(&mut delta, t);
    }
    leave_out(&mut delta, excludes);
    delta
}

/// The mapping of runs of files to ports, as it goes.
struct Resolver<'a, 's, 't> {
    delta: Delta<'a>,
    tree: Option<&'t mut PortDirs>,
    removed_makefiles: &'s HashSet<&'a str>,
    old_groups: &'s HashSet<&'a str>,
    /// Removed-port candidates: dir -> (changes, any known add/modify)
    gone: BTreeMap<&'a str, (Vec<&'a FileRef<'a>>, bool)>,
}

impl<'a> Resolver<'a, '_, '_> {
    /// Nearly every file is in the port its path names, so that directory is
    /// asked about first: all of them read ahead, in parallel.
    fn prefetch(&mut self, parts: &[(Vec<Run<'a>>, Vec<&'a str>)]) {
        let Some(t) = self.tree.as_deref_mut() else {
            return;
        };
        let dirs: Vec<&str> = parts
            .iter()
            .flat_map(|p| &p.0)
            .filter_map(|r| match r {
                Run::Files(port, _) => Some(*port),
                Run::Special(_) => None,
            })
            .collect();
        self.delta.ports.reserve(dirs.len());
        t.prefetch(dirs);
    }

    /// A changed module: a warning, nothing rebuilt for it.
    fn modules(&mut self, input: &[&'a [FileRef<'a>]]) {
        for part in input {
            for f in part.iter().filter(|f| is_module(f.change.path)) {
                let path = f.change.path;
                let dir = parent(path);
                self.delta.notice(
                    Level::Warning,
                    format!("{path} changed: a module; the ports that use it (MODULES = {dir}) are not rebuilt for it, rebuild them by hand if needed"),
                );
            }
        }
    }

    /// An infrastructure file (a warning) or a Makefile.inc: the port it is
    /// in, else every port the SUBDIR lists reach below it.
    fn special(&mut self, f: &'a FileRef<'a>) {
        let path = f.change.path;
        let dir = parent(path);
        let delta = &mut self.delta;
        if in_infrastructure(path) {
            delta.notice(
                Level::Warning,
                format!("{path} changed: infrastructure concerns every port; nothing rebuilt for it, rebuild by hand if needed"),
            );
            return;
        }
        // A Makefile.inc.
        if dir.is_empty() {
            delta.notice(
                Level::Warning,
                format!("{path} changed: it concerns every port; nothing rebuilt for it"),
            );
            return;
        }
        let Some(t) = self.tree.as_deref_mut() else {
            delta.notice(
                Level::Warning,
                format!("{path} changed: the ports that include it could not be listed without a ports tree (--ports-dir)"),
            );
            return;
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
            return;
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
    }

    /// Files the path rules give to the port `by_path`.
    fn files(&mut self, by_path: &'a str, files: Vec<&'a FileRef<'a>>) {
        // (The files' directory has fewer than two segments exactly when the
        // port by path rules has.)
        if depth(by_path) < 2 && self.tree.is_none() {
            // The top or a category: not a port.
            return;
        }
        // The port the path names, when it is one, is the files' port: without
        // a tree, unless the change list removes it; with a tree, when the tree
        // says it is a port (ports do not nest, and nothing inside a port is a
        // group, so it is the nearest port above the files).
        let is_port = match self.tree.as_deref_mut() {
            None => !self.removed_makefiles.contains(by_path),
            Some(t) => t.kind(by_path) == DirKind::Port,
        };
        if is_port {
            self.delta.port(Cow::Borrowed(by_path), files, None);
        } else if self.tree.is_none() {
            self.gone.entry(by_path).or_default().0.extend(files);
        } else {
            for f in files {
                self.file(by_path, f);
            }
        }
    }

    /// A file whose port by path rules is no port of the tree: the nearest
    /// port or group above it says what it is.
    fn file(&mut self, by_path: &'a str, f: &'a FileRef<'a>) {
        let Some(t) = self.tree.as_deref_mut() else {
            return;
        };
        let c = &f.change;
        let dir = parent(c.path);
        // The nearest port or group above the file; `gone` when a directory on
        // the way is missing from the checkout.
        let mut a = dir;
        let mut passed_missing = false;
        let mut kind = t.kind(a);
        while matches!(kind, DirKind::Missing | DirKind::Plain) && !a.is_empty() {
            // A directory left behind by a removed port (no `cvs up -P`), or
            // one that became a module directory, counts as gone.
            passed_missing |= kind == DirKind::Missing || self.removed_makefiles.contains(a);
            a = parent(a);
            kind = t.kind(a);
        }
        let alive = f.known && c.status != Status::Removed;
        // A port the change list removes (below a group, or below a group
        // that became a port).
        if let Some(m) = removed_port_below(a, kind, dir, self.removed_makefiles, self.old_groups) {
            let e = self.gone.entry(m).or_default();
            e.0.push(f);
            e.1 |= alive;
            return;
        }
        match kind {
            DirKind::Port => self.delta.port(Cow::Borrowed(a), vec![f], None),
            DirKind::Group if passed_missing => {
                // The directory is gone below a group, with no Makefile
                // removed on the way: a removed port (or one that became a
                // group or a module directory) by path rules, unless the
                // change list removes a group on the way (below a removed
                // group, a port is known by its removed Makefile: what has
                // none is some other directory of the group).
                let port_gone = depth(by_path) >= 2
                    && depth(by_path) >= depth(a)
                    && !under_old_group(by_path, a, self.old_groups);
                if port_gone {
                    let e = self.gone.entry(by_path).or_default();
                    e.0.push(f);
                    e.1 |= alive;
                }
            }
            // A file the group's ports share.
            DirKind::Group
                if depth(a) >= 2 && c.status != Status::Removed && shared_by_group(a, c.path) =>
            {
                let why = format!("{} changed", c.path);
                for p in t.ports_below(a) {
                    self.delta.port(Cow::Owned(p), vec![f], Some(&why));
                }
            }
            // A category or group file, a file in a plain directory.
            _ => {}
        }
    }
}

/// Directories gone from the checkout: removed ports, unless a change to
/// them is an add or a modification (then the checkout is behind: listed,
/// with a warning).
fn settle_gone<'a>(delta: &mut Delta<'a>, gone: BTreeMap<&'a str, (Vec<&'a FileRef<'a>>, bool)>) {
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
}

/// A port changed directly that no SUBDIR list reaches (commented out of its
/// group) is listed, with a warning: make builds it when a list names it,
/// sqlports (and pkgpath-expand) may not know it.
fn notice_unhooked(delta: &mut Delta<'_>, t: &mut PortDirs) {
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

/// Invalid directories cannot become pkgpaths; then excluded ones are left
/// out.  (Ports and removed ports in pkgpath order, so the notices come in an
/// order that does not change from run to run.)
fn leave_out(delta: &mut Delta<'_>, excludes: &[String]) {
    let mut listed: Vec<Cow<'_, str>> = delta.ports.keys().cloned().collect();
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
}
