//! The packages of a build host: names as the pkg tools read them, the keep
//! list's closure from the package database, the pkg tools run, the delete and
//! the reinstall.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::ffi::OsStr;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::record::{CleanAction, Level};
use crate::Error;

use super::*;

/// Split a package name as the pkg tools do: the version is the first
/// `-`-separated part that starts with a digit, the flavors follow it.
/// `vim-9.1.0-gtk2` gives `("vim", "9.1.0", "gtk2")`; `None` without a version.
pub fn split_name(name: &str) -> Option<(&str, &str, &str)> {
    let b = name.as_bytes();
    name.match_indices('-').find_map(|(i, _)| {
        if i == 0 || !b.get(i + 1).is_some_and(u8::is_ascii_digit) {
            return None;
        }
        let rest = &name[i + 1..];
        let (version, flavors) = rest.split_once('-').unwrap_or((rest, ""));
        Some((&name[..i], version, flavors))
    })
}

/// The characters of package names, stems and flavors.
pub(super) fn name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '+' | '-')
}

/// A package name as `pkg_info -q` prints it: safe to use as an argument and as a
/// file name in the package database.
pub fn valid_pkgname(name: &str) -> bool {
    name.len() <= 255
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name.chars().all(name_char)
}

/// A package named on the command line by `--keep` or `--reinstall`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Spec {
    /// A full package name (`rsync-3.3.0p0`): exactly that package.
    Name(String),
    /// A stem (`rsync`, `rsync--`): every version and flavor of it; with a flavor
    /// (`vim--gtk2`): that flavor only.
    Stem {
        stem: String,
        flavor: Option<String>,
    },
}

impl Spec {
    pub fn parse(s: &str) -> Result<Spec, String> {
        if !valid_pkgname(s) {
            return Err(format!(
                "invalid package {s:?}: letters, digits, . _ + - only, starting with a letter or digit"
            ));
        }
        if let Some((stem, flavor)) = s.split_once("--") {
            if split_name(stem).is_some() || flavor.starts_with('-') || flavor.ends_with('-') {
                return Err(format!("invalid package {s:?}: stem--flavor expected"));
            }
            return Ok(Spec::Stem {
                stem: stem.to_string(),
                flavor: (!flavor.is_empty()).then(|| flavor.to_string()),
            });
        }
        if split_name(s).is_some() {
            Ok(Spec::Name(s.to_string()))
        } else {
            Ok(Spec::Stem {
                stem: s.to_string(),
                flavor: None,
            })
        }
    }

    /// Does the installed package `name` match?
    pub fn matches(&self, name: &str) -> bool {
        match self {
            Spec::Name(n) => n == name,
            Spec::Stem { stem, flavor } => match split_name(name) {
                Some((s, _, f)) => s == stem && flavor.as_deref().is_none_or(|want| want == f),
                None => false,
            },
        }
    }

    /// The argument pkg_add gets: `stem--`, `stem--flavor` or the full name.
    pub fn pkg_add_arg(&self) -> String {
        match self {
            Spec::Name(n) => n.clone(),
            Spec::Stem { stem, flavor } => format!("{stem}--{}", flavor.as_deref().unwrap_or("")),
        }
    }
}

// ---------------------------------------------------------------------------
// The package database

/// The names in one of the `+REQUIRING` / `+REQUIRED_BY` files of a package, as
/// the pkg tools read them: one a line, trailing white space and blank lines
/// ignored.  A missing file is an empty list.
pub(super) fn read_list(path: &Path) -> Result<Vec<String>, String> {
    match fs::read(path) {
        Ok(b) => Ok(String::from_utf8_lossy(&b)
            .lines()
            .map(|l| l.trim_end().to_string())
            .filter(|l| !l.is_empty())
            .collect()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(format!("{}: {e}", path.display())),
    }
}

/// The packages to keep: those the keep list names and, transitively, every
/// installed package they require.  An edge `a requires b` is taken from
/// `a/+REQUIRING` and from `b/+REQUIRED_BY`, whichever has it, as pkg_delete
/// refuses on either.
pub fn keep_closure(
    db: &Path,
    installed: &[String],
    keep: &[Spec],
) -> Result<BTreeSet<String>, String> {
    let inst: HashSet<&str> = installed.iter().map(String::as_str).collect();
    let mut requires: HashMap<String, Vec<String>> = HashMap::new();
    for p in installed {
        for d in read_list(&db.join(p).join("+REQUIRING"))? {
            requires.entry(p.clone()).or_default().push(d);
        }
        for r in read_list(&db.join(p).join("+REQUIRED_BY"))? {
            requires.entry(r).or_default().push(p.clone());
        }
    }
    let mut kept: BTreeSet<String> = BTreeSet::new();
    let mut todo: Vec<String> = installed
        .iter()
        .filter(|p| keep.iter().any(|k| k.matches(p)))
        .cloned()
        .collect();
    while let Some(p) = todo.pop() {
        if !kept.insert(p.clone()) {
            continue;
        }
        for d in requires.get(&p).into_iter().flatten() {
            if inst.contains(d.as_str()) && !kept.contains(d) {
                todo.push(d.clone());
            }
        }
    }
    Ok(kept)
}

// ---------------------------------------------------------------------------
// Paths

/// The outcome of one pkg command.
pub(super) struct Ran {
    pub(super) ok: bool,
    pub(super) status: String,
    pub(super) stdout: String,
    pub(super) stderr: String,
}

impl Ran {
    /// The last lines of its diagnostics, for a message.
    fn tail(&self) -> String {
        let text = if self.stderr.trim().is_empty() {
            &self.stdout
        } else {
            &self.stderr
        };
        match crate::tail::short(text, 3) {
            t if t.is_empty() => "no output".into(),
            t => t,
        }
    }
}

/// The pkg tools and the environment they run in.
pub(super) struct Pkg {
    pub(super) info: PathBuf,
    pub(super) delete: PathBuf,
    pub(super) add: PathBuf,
    pub(super) dbdir: PathBuf,
}

impl Pkg {
    /// Run one pkg program: no shell, no stdin, its output captured.
    fn run(&self, program: &Path, args: &[&str], env: &[(&str, &OsStr)]) -> Result<Ran, String> {
        let out = Command::new(program)
            .args(args)
            .env("PKG_DBDIR", &self.dbdir)
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("{}: {e}", program.display()))?;
        Ok(Ran {
            ok: out.status.success(),
            status: match out.status.code() {
                Some(c) => format!("exit status {c}"),
                None => out.status.to_string(),
            },
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        })
    }

    /// `pkg_info -q`: the installed packages.
    fn installed(&self) -> Result<Vec<String>, String> {
        let r = self.run(&self.info, &["-q"], &[])?;
        if !r.ok {
            return Err(format!("pkg_info -q failed ({}): {}", r.status, r.tail()));
        }
        let mut v = Vec::new();
        for l in r.stdout.lines().map(str::trim).filter(|l| !l.is_empty()) {
            if !valid_pkgname(l) {
                return Err(format!("pkg_info -q printed an invalid package name {l:?}"));
            }
            v.push(l.to_string());
        }
        Ok(v)
    }
}

// ---------------------------------------------------------------------------
// The run

/// Step 1: delete every package but the kept ones.
pub(super) fn delete_packages(rep: &mut Report, pkg: &Pkg, keep: &[Spec]) -> Result<(), Error> {
    rep.diag.progress("reading the installed packages");
    let plan = pkg.installed().and_then(|installed| {
        let kept = keep_closure(&pkg.dbdir, &installed, keep)?;
        let delete: Vec<String> = installed
            .into_iter()
            .filter(|p| !kept.contains(p))
            .collect();
        Ok((kept, delete))
    });
    let (kept, delete) = match plan {
        Ok(p) => p,
        Err(e) => {
            rep.diag.error(format_args!("{e}: no package deleted"));
            return rep.notice(Level::Error, format!("{e}: no package deleted"));
        }
    };
    if delete.is_empty() {
        return Ok(());
    }
    if rep.dry_run {
        for p in &delete {
            rep.done(CleanAction::PkgDelete, p)?;
        }
        return Ok(());
    }
    rep.diag
        .progress(format_args!("deleting {} packages", delete.len()));
    let mut args = vec!["-IX"];
    args.extend(kept.iter().map(String::as_str));
    let ran = pkg.run(&pkg.delete, &args, &[]);
    // What is still installed says what was deleted, whatever pkg_delete said.
    let after = pkg.installed();
    let (ran, after) = match (ran, after) {
        (Ok(r), Ok(a)) => (r, a.into_iter().collect::<HashSet<_>>()),
        (Err(e), _) | (_, Err(e)) => {
            for p in &delete {
                rep.failed(CleanAction::PkgDelete, p, &e)?;
            }
            return Ok(());
        }
    };
    let mut all_gone = true;
    for p in &delete {
        if !after.contains(p) {
            rep.done(CleanAction::PkgDelete, p)?;
            continue;
        }
        all_gone = false;
        // pkg_delete names the package it refused: "can't delete p without
        // deleting q", "p depends on non-existent q".
        let said: Vec<&str> = ran
            .stderr
            .lines()
            .chain(ran.stdout.lines())
            .map(str::trim)
            .filter(|l| l.split_whitespace().any(|w| w == p))
            .collect();
        let said = if said.is_empty() {
            ran.tail()
        } else {
            said.join(" / ")
        };
        let msg = format!("still installed after pkg_delete ({}): {said}", ran.status);
        rep.failed(CleanAction::PkgDelete, p, &msg)?;
    }
    if !ran.ok && all_gone {
        rep.diag.warn(format_args!(
            "pkg_delete: {} although every package was deleted: {}",
            ran.status,
            ran.tail()
        ));
    }
    Ok(())
}

/// Step 2: reinstall from the local repository, one pkg_add per package so that
/// one that fails does not stop the others.
pub(super) fn add_packages(rep: &mut Report, pkg: &Pkg, reinstall: &[Spec]) -> Result<(), Error> {
    let trusted = rep.host.packages("all");
    for spec in reinstall {
        let arg = spec.pkg_add_arg();
        if rep.dry_run {
            rep.done(CleanAction::PkgAdd, &arg)?;
            continue;
        }
        rep.diag.progress(format_args!("pkg_add {arg}"));
        match pkg.run(
            &pkg.add,
            &["-I", &arg],
            &[("TRUSTED_PKG_PATH", trusted.as_os_str())],
        ) {
            Ok(r) if r.ok => rep.done(CleanAction::PkgAdd, &arg)?,
            Ok(r) => rep.failed(
                CleanAction::PkgAdd,
                &arg,
                &format!("{}: {}", r.status, r.tail()),
            )?,
            Err(e) => rep.failed(CleanAction::PkgAdd, &arg, &e)?,
        }
    }
    Ok(())
}
