//! clean-env: bring a build host down to what a batch needs.
//!
//! The first stage of the per-arch chain `clean-env | build-list | collect-built`.
//! It passes its input through (plain pkgpaths become `port` records), then
//!
//! 1. deletes every installed package but the keep list and what the keep list
//!    depends on (`pkg_delete -IX <kept...>`),
//! 2. reinstalls the reinstall list from the local repository
//!    (`TRUSTED_PKG_PATH=${PACKAGE_REPOSITORY}/${MACHINE_ARCH}/all pkg_add <stem>--`),
//! 3. empties WRKOBJDIR, never following a symbolic link out of it,
//!
//! and writes one `clean` record per action.
//!
//! `pkg_delete -X` refuses to delete a package that a package it keeps requires: it
//! says so, exits 1 and leaves it installed.  So the packages kept are computed
//! first, as pkg_delete itself does: the keep list and, transitively, every package
//! it requires, from the `+REQUIRING` and `+REQUIRED_BY` files of the package
//! database (PKG_DBDIR).  pkg_delete is given that whole set, and what it still
//! refuses after that (a stale database) is a failure, found by asking `pkg_info
//! -q` again afterwards.
//!
//! Everything that can be checked is checked before any input is read or any pkg
//! command runs: the WRKOBJDIR safety rules, the names, the programs.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::ffi::{OsStr, OsString};
use std::fs;
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::diag::{Diag, Exit, Loc};
use crate::host::{Host, HostArgs};
use crate::jsonl::{Inputs, Item, Output};
use crate::pkgpath::PkgPath;
use crate::record::{CleanAction, CleanStatus, Kind, Level, Record};
use crate::Error;

pub const TOOL: &str = "clean-env";

/// Where the pkg tools keep the installed-package database.
pub const DEFAULT_PKG_DBDIR: &str = "/var/db/pkg";

/// Clean a build host: delete the packages a batch does not need, reinstall some,
/// empty WRKOBJDIR.
#[derive(clap::Parser, Debug)]
#[command(name = "clean-env", version, max_term_width = 100)]
pub struct Args {
    /// Show the plan as records with status dry-run; change nothing.
    #[arg(short = 'n', long = "dry-run")]
    pub dry_run: bool,
    /// Print the full pkgpaths of the input, one a line, instead of records (the
    /// input of build-list in a plain text chain).
    #[arg(short = 't', long = "text")]
    pub text: bool,
    /// Keep this package and what it depends on (stem, stem--flavor or full name);
    /// repeatable.
    #[arg(long, value_name = "PKGSTEM")]
    pub keep: Vec<String>,
    /// Reinstall this package from the local repository after the delete;
    /// repeatable.
    #[arg(long, value_name = "PKGSTEM")]
    pub reinstall: Vec<String>,
    /// The directory of the work directories, emptied, given to make too
    /// [default: make's WRKOBJDIR, from mk.conf].
    #[arg(long, env = "WRKOBJDIR", value_name = "DIR")]
    pub wrkobjdir: Option<PathBuf>,
    /// The installed-package database, passed to the pkg tools as PKG_DBDIR.
    #[arg(long, env = "PKG_DBDIR", value_name = "DIR", default_value = DEFAULT_PKG_DBDIR)]
    pub pkg_dbdir: PathBuf,
    /// The pkg_info program.
    #[arg(
        long,
        env = "PKG_INFO",
        value_name = "PROGRAM",
        default_value = "pkg_info"
    )]
    pub pkg_info: OsString,
    /// The pkg_delete program.
    #[arg(
        long,
        env = "PKG_DELETE",
        value_name = "PROGRAM",
        default_value = "pkg_delete"
    )]
    pub pkg_delete: OsString,
    /// The pkg_add program.
    #[arg(
        long,
        env = "PKG_ADD",
        value_name = "PROGRAM",
        default_value = "pkg_add"
    )]
    pub pkg_add: OsString,
    #[command(flatten)]
    pub host: HostArgs,
    /// Inputs: records or pkgpaths, one a line, passed through; standard input when
    /// none.
    #[arg(value_name = "FILE")]
    pub files: Vec<PathBuf>,
}

pub fn main() -> std::process::ExitCode {
    crate::diag::tool_main(TOOL, run)
}

// ---------------------------------------------------------------------------
// Package names

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
fn name_char(c: char) -> bool {
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
fn read_list(path: &Path) -> Result<Vec<String>, String> {
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

/// `p` made absolute against the current directory, `.` components dropped (`..`
/// are kept: they cannot be resolved without the file system).
fn absolute(p: &Path) -> PathBuf {
    std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf())
}

/// `p` with every symbolic link resolved, as far as it exists: the longest
/// existing ancestor canonicalised, the rest appended.
fn resolve(p: &Path) -> PathBuf {
    if let Ok(c) = fs::canonicalize(p) {
        return c;
    }
    match (p.parent(), p.file_name()) {
        (Some(parent), Some(name)) => resolve(parent).join(name),
        _ => p.to_path_buf(),
    }
}

/// A directory the wipe must never reach.
struct Protected {
    what: &'static str,
    path: PathBuf,
    /// May WRKOBJDIR lie inside it?  Yes for PORTSDIR (`${PORTSDIR}/pobj`).
    may_hold_wrkobjdir: bool,
}

/// What a file is, whatever path reaches it: its device and inode.  A bind
/// mount or any other alias of a directory has the same.
pub type Id = (u64, u64);

fn id_of(p: &Path) -> Option<Id> {
    use std::os::unix::fs::MetadataExt;
    fs::metadata(p).ok().map(|m| (m.dev(), m.ino()))
}

/// The identities of `p` (links resolved) and of every directory above it.
fn chain(p: &Path) -> Vec<Id> {
    resolve(p).ancestors().filter_map(id_of).collect()
}

/// WRKOBJDIR as checked: the path the wipe opens and what it must find there.
#[derive(Debug, Clone, PartialEq)]
pub struct Checked {
    /// The path with every link of its parents resolved; the directory itself
    /// is no link.
    pub path: PathBuf,
    /// Its identity when it exists.
    pub id: Option<Id>,
}

/// Check WRKOBJDIR against the rules of clean-env(1); every refusal is a usage
/// error (exit 2) found before anything is done.  `ports` is the ports tree, whose
/// own directories (categories, ports, infrastructure) are never WRKOBJDIR.
fn check_wrkobjdir(w: &Path, protected: &[Protected], ports: &Path) -> Result<Checked, Error> {
    let refuse = |why: String| {
        Err(Error::Usage(format!(
            "WRKOBJDIR {}: {why}: refusing to wipe it",
            w.display()
        )))
    };
    if !w.is_absolute() {
        return refuse("not an absolute path".into());
    }
    // Every spelling: `dir/.` and `dir/..` (which Path::components would not
    // show), `dir/` and `dir//` (which would follow a link named dir).
    let text = w.as_os_str().as_encoded_bytes();
    if text
        .split(|&b| b == b'/')
        .any(|seg| seg == b"." || seg == b"..")
    {
        return refuse("has a . or .. component".into());
    }
    let w: PathBuf = w.components().collect();
    if w.parent().is_none() {
        return refuse("is the root directory".into());
    }
    match fs::symlink_metadata(&w) {
        Ok(m) if m.file_type().is_symlink() => return refuse("is a symbolic link".into()),
        Ok(m) if !m.is_dir() => return refuse("is not a directory".into()),
        Ok(_) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return refuse(e.to_string()),
    }
    let wl = absolute(&w);
    let wc = resolve(&w);
    if wc.parent().is_none() {
        return refuse("is the root directory".into());
    }
    let w_id = id_of(&wc);
    let w_chain = chain(&wc);
    for p in protected {
        let pl = absolute(&p.path);
        let pc = resolve(&p.path);
        // By path, and by identity (a bind mount, another alias).
        let p_chain = chain(&pc);
        let contains = pl.starts_with(&wl)
            || pc.starts_with(&wc)
            || w_id.is_some_and(|i| p_chain.contains(&i));
        if contains {
            return refuse(format!(
                "contains or equals {} ({})",
                p.what,
                p.path.display()
            ));
        }
        let inside = wl.starts_with(&pl)
            || wc.starts_with(&pc)
            || id_of(&pc).is_some_and(|i| w_chain.contains(&i));
        if !p.may_hold_wrkobjdir && inside {
            return refuse(format!("is inside {} ({})", p.what, p.path.display()));
        }
    }
    // Inside the ports tree, only a directory of its own (`pobj`): not a
    // category, a port or infrastructure/, nothing with a Makefile.
    let pc = resolve(ports);
    if let Ok(rel) = wc.strip_prefix(&pc) {
        let first = rel
            .components()
            .next()
            .map(|c| c.as_os_str().to_string_lossy().into_owned());
        if let Some(first) = first {
            let mut tree = crate::ports::PortDirs::new(&pc);
            let kind = tree.kind(&first);
            if first == "infrastructure"
                || matches!(
                    kind,
                    crate::ports::DirKind::Port | crate::ports::DirKind::Group
                )
                || tree.hooked(&first)
            {
                return refuse(format!("is a directory of the ports tree ({first})"));
            }
            let mut d = pc.clone();
            for c in rel.components() {
                d.push(c);
                if d.join("Makefile").exists() {
                    return refuse(format!(
                        "is a directory of the ports tree ({} has a Makefile)",
                        d.display()
                    ));
                }
            }
        }
    }
    Ok(Checked { path: wc, id: w_id })
}

/// Empty the checked WRKOBJDIR: every entry inside it removed, the directory
/// kept.  It is opened once, from the root down, never following a link on the
/// way (a parent swapped for a link since the check is refused), and must be the
/// directory that was checked; everything is removed below that handle, links
/// removed as links, never followed.  A missing directory is empty.
pub fn wipe(dir: &Checked) -> Result<(), String> {
    use rustix::fs::{openat, Mode, OFlags, CWD};
    let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    let mut fd = match openat(CWD, "/", flags, Mode::empty()) {
        Ok(f) => f,
        Err(e) => return Err(format!("/: {e}")),
    };
    let mut so_far = PathBuf::from("/");
    for c in dir.path.components().skip(1) {
        so_far.push(c);
        match openat(&fd, c.as_os_str(), flags, Mode::empty()) {
            Ok(next) => fd = next,
            Err(rustix::io::Errno::NOENT) => return Ok(()),
            Err(rustix::io::Errno::LOOP | rustix::io::Errno::NOTDIR) => {
                return Err(format!(
                    "{}: is not a directory or is a symbolic link: not followed",
                    so_far.display()
                ))
            }
            Err(e) => return Err(format!("{}: {e}", so_far.display())),
        }
    }
    let st = rustix::fs::fstat(&fd).map_err(|e| format!("{}: {e}", dir.path.display()))?;
    if dir
        .id
        .is_some_and(|i| i != (st.st_dev as u64, st.st_ino as u64))
    {
        return Err(format!(
            "{}: is not the directory that was checked: not wiped",
            dir.path.display()
        ));
    }
    let mut errors = Vec::new();
    remove_below(&fd, &dir.path, &mut errors);
    match errors.len() {
        0 => Ok(()),
        1 => Err(errors.remove(0)),
        n => Err(format!("{} (and {} more)", errors[0], n - 1)),
    }
}

/// Remove everything in the directory open as `fd` (at `path`, for messages).
/// Subdirectories are opened below `fd` without following links; a read-only one
/// (a Go module cache) is made writable by its handle first.
fn remove_below(fd: &std::os::fd::OwnedFd, path: &Path, errors: &mut Vec<String>) {
    use rustix::fs::{openat, statat, unlinkat, AtFlags, FileType, Mode, OFlags};
    let names: Vec<std::ffi::CString> = match rustix::fs::Dir::read_from(fd) {
        Ok(mut d) => {
            let mut v = Vec::new();
            while let Some(e) = d.read() {
                match e {
                    Ok(e) => {
                        let n = e.file_name();
                        if n.to_bytes() != b"." && n.to_bytes() != b".." {
                            v.push(n.to_owned());
                        }
                    }
                    Err(e) => {
                        errors.push(format!("{}: {e}", path.display()));
                        break;
                    }
                }
            }
            v
        }
        Err(e) => {
            errors.push(format!("{}: {e}", path.display()));
            return;
        }
    };
    for name in names {
        let at = path
            .join(<std::ffi::OsStr as std::os::unix::ffi::OsStrExt>::from_bytes(name.to_bytes()));
        let st = match statat(fd, name.as_c_str(), AtFlags::SYMLINK_NOFOLLOW) {
            Ok(st) => st,
            Err(e) => {
                errors.push(format!("{}: {e}", at.display()));
                continue;
            }
        };
        if FileType::from_raw_mode(st.st_mode) == FileType::Directory {
            let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
            match openat(fd, name.as_c_str(), flags, Mode::empty()) {
                Ok(sub) => {
                    if st.st_mode & 0o700 != 0o700 {
                        let _ = rustix::fs::fchmod(
                            &sub,
                            Mode::from_raw_mode((st.st_mode | 0o700) & 0o7777),
                        );
                    }
                    remove_below(&sub, &at, errors);
                }
                Err(e) => {
                    errors.push(format!("{}: {e}", at.display()));
                    continue;
                }
            }
            if let Err(e) = unlinkat(fd, name.as_c_str(), AtFlags::REMOVEDIR) {
                errors.push(format!("{}: {e}", at.display()));
            }
        } else if let Err(e) = unlinkat(fd, name.as_c_str(), AtFlags::empty()) {
            errors.push(format!("{}: {e}", at.display()));
        }
    }
}

// ---------------------------------------------------------------------------
// The pkg programs

/// Find a program as exec would: a name with a `/` as it is, otherwise on PATH.
fn find_program(name: &OsStr) -> Option<PathBuf> {
    let executable = |p: &Path| {
        fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    };
    let p = Path::new(name);
    if name.is_empty() {
        return None;
    }
    if name.as_encoded_bytes().contains(&b'/') {
        return executable(p).then(|| p.to_path_buf());
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(p))
        .find(|c| executable(c))
}

/// The outcome of one pkg command.
struct Ran {
    ok: bool,
    status: String,
    stdout: String,
    stderr: String,
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
struct Pkg {
    info: PathBuf,
    delete: PathBuf,
    add: PathBuf,
    dbdir: PathBuf,
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

/// Everything resolved and checked before anything is done.
struct Setup {
    host: Host,
    wrkobjdir: PathBuf,
    checked: Checked,
    keep: Vec<Spec>,
    reinstall: Vec<Spec>,
    pkg: Pkg,
}

fn setup(args: &Args) -> Result<Setup, Error> {
    args.host.check()?;
    let parse = |flag: &str, v: &[String]| -> Result<Vec<Spec>, Error> {
        v.iter()
            .map(|s| Spec::parse(s).map_err(|e| Error::Usage(format!("--{flag}: {e}"))))
            .collect()
    };
    let keep = parse("keep", &args.keep)?;
    let reinstall = parse("reinstall", &args.reinstall)?;

    let program = |name: &OsString, flag: &str, var: &str| -> Result<PathBuf, Error> {
        find_program(name).ok_or_else(|| {
            Error::Usage(format!(
                "{}: program not found or not executable (set --{flag} or {var})",
                name.to_string_lossy()
            ))
        })
    };
    let pkg = Pkg {
        info: program(&args.pkg_info, "pkg-info", "PKG_INFO")?,
        delete: program(&args.pkg_delete, "pkg-delete", "PKG_DELETE")?,
        add: program(&args.pkg_add, "pkg-add", "PKG_ADD")?,
        dbdir: args.pkg_dbdir.clone(),
    };
    if !pkg.dbdir.is_absolute() {
        return Err(Error::Usage(format!(
            "{}: the package database must be an absolute path",
            pkg.dbdir.display()
        )));
    }
    if !pkg.dbdir.is_dir() {
        return Err(Error::Usage(format!(
            "{}: the package database is not a directory (set --pkg-dbdir or PKG_DBDIR)",
            pkg.dbdir.display()
        )));
    }

    // WRKOBJDIR, DISTDIR and PLIST_REPOSITORY are make's (mk.conf's), unless
    // --wrkobjdir says otherwise, for make and clean-env alike.
    let given: Vec<(&str, &PathBuf)> = args.wrkobjdir.iter().map(|w| ("WRKOBJDIR", w)).collect();
    let host = args.host.resolve_with(&given)?;
    let ports = host.tree.root().to_path_buf();

    let wrkobjdir = match &args.wrkobjdir {
        // As given (its spelling is checked: a link, `..`).
        Some(w) => w.clone(),
        None => host.dirs.wrkobjdir.clone(),
    };
    let protected = [
        Protected {
            what: "PORTSDIR",
            path: ports.clone(),
            may_hold_wrkobjdir: true,
        },
        Protected {
            what: "the package repository",
            path: host.repository.clone(),
            may_hold_wrkobjdir: false,
        },
        Protected {
            what: "DISTDIR",
            path: host.dirs.distdir.clone(),
            may_hold_wrkobjdir: false,
        },
        Protected {
            what: "PLIST_REPOSITORY",
            path: host.dirs.plist_repository.clone(),
            may_hold_wrkobjdir: false,
        },
        Protected {
            what: "the package database",
            path: pkg.dbdir.clone(),
            may_hold_wrkobjdir: false,
        },
    ];
    let checked = check_wrkobjdir(&wrkobjdir, &protected, &ports)?;
    Ok(Setup {
        host,
        wrkobjdir,
        checked,
        keep,
        reinstall,
        pkg,
    })
}

/// The input, read whole before anything is cleaned: each record and whether this
/// tool made it (and stamps it).
fn read_input(args: &Args, host: &mut Host, diag: &Diag) -> Result<Vec<(Record, bool)>, Error> {
    let mut v = Vec::new();
    Inputs::new(&args.files).for_each(diag, |item, loc: &Loc| {
        match item {
            Item::Record(r) => {
                // Nothing is done yet: a bad batch record stops the run (exit 2).
                host.learn_batch(&r)
                    .map_err(|e| Error::Usage(format!("{loc}: {e}: nothing done")))?;
                v.push((r, false));
            }
            Item::Text(t) => match PkgPath::parse(&t) {
                Ok(p) => {
                    let mut r = Record::new(Kind::Port);
                    r.set("pkgpath", p.dir());
                    r.set("fullpkgpath", p.to_string());
                    v.push((r, false));
                }
                Err(e) => {
                    diag.error_at(loc, &e);
                    v.push((
                        Record::notice(TOOL, Level::Error, format!("{e}: not built")),
                        true,
                    ));
                }
            },
        }
        Ok(())
    })?;
    Ok(v)
}

/// Writes the `clean` records and counts the failures.
struct Report<'a> {
    out: Output,
    host: &'a Host,
    diag: &'a Diag,
    dry_run: bool,
}

impl Report<'_> {
    fn record(&mut self, mut r: Record) -> Result<(), Error> {
        self.host.stamp(&mut r);
        // Flushed one by one: a person watching sees each step as it ends.
        self.out.record(&r)?;
        self.out.flush()
    }

    fn done(&mut self, action: CleanAction, target: &str) -> Result<(), Error> {
        let status = if self.dry_run {
            CleanStatus::DryRun
        } else {
            CleanStatus::Done
        };
        self.record(clean(action, target, status, None))
    }

    fn failed(&mut self, action: CleanAction, target: &str, message: &str) -> Result<(), Error> {
        self.diag
            .error(format_args!("{action} {target}: {message}"));
        self.record(clean(action, target, CleanStatus::Failed, Some(message)))
    }

    fn notice(&mut self, level: Level, message: String) -> Result<(), Error> {
        self.record(Record::notice(TOOL, level, message))
    }
}

/// A `clean` record.
fn clean(action: CleanAction, target: &str, status: CleanStatus, message: Option<&str>) -> Record {
    let mut r = Record::new(Kind::Clean);
    r.set("action", action);
    r.set("target", target);
    r.set("status", status);
    if let Some(m) = message {
        r.set("message", m);
    }
    r
}

pub fn run(args: &Args, diag: &Diag) -> Result<Exit, Error> {
    let Setup {
        mut host,
        wrkobjdir,
        checked,
        keep,
        reinstall,
        pkg,
    } = setup(args)?;
    let input = read_input(args, &mut host, diag)?;

    let mut out = Output::stdout();
    if args.text {
        let diag = diag.clone();
        out = out.text_view(move |r| {
            // Failed actions are said as they happen (Report::failed).
            crate::jsonl::notice_to_stderr(&diag, r);
            r.is(Kind::Port)
                .then(|| {
                    r.str("fullpkgpath")
                        .or(r.str("pkgpath"))
                        .map(str::to_string)
                })
                .flatten()
        });
    }
    for (mut r, mine) in input {
        if mine {
            host.stamp(&mut r);
        }
        out.record(&r)?;
    }
    let mut rep = Report {
        out,
        host: &host,
        diag,
        dry_run: args.dry_run,
    };

    delete_packages(&mut rep, &pkg, &keep)?;
    add_packages(&mut rep, &pkg, &reinstall)?;

    diag.progress(format_args!("wiping {}", wrkobjdir.display()));
    let target = wrkobjdir.display().to_string();
    if args.dry_run {
        rep.done(CleanAction::Wipe, &target)?;
    } else {
        match wipe(&checked) {
            Ok(()) => rep.done(CleanAction::Wipe, &target)?,
            Err(e) => rep.failed(CleanAction::Wipe, &target, &e)?,
        }
    }
    rep.out.flush()?;
    Ok(diag.finish(Exit::Success))
}

/// Step 1: delete every package but the kept ones.
fn delete_packages(rep: &mut Report, pkg: &Pkg, keep: &[Spec]) -> Result<(), Error> {
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
fn add_packages(rep: &mut Report, pkg: &Pkg, reinstall: &[Spec]) -> Result<(), Error> {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(split_name("vim-9.1.0-gtk2"), Some(("vim", "9.1.0", "gtk2")));
        assert_eq!(split_name("rsync-3.3.0p0"), Some(("rsync", "3.3.0p0", "")));
        assert_eq!(
            split_name("py3-zope.interface-6.4"),
            Some(("py3-zope.interface", "6.4", ""))
        );
        assert_eq!(
            split_name("debug-curl-8.9.1"),
            Some(("debug-curl", "8.9.1", ""))
        );
        assert_eq!(split_name("gtk+3-3.24.43"), Some(("gtk+3", "3.24.43", "")));
        assert_eq!(split_name("rsync"), None);
        assert!(valid_pkgname("libstdc++-13.2.0p0"));
        for bad in ["", "-rf", "../x", "a/b", "a b", "a;b", ".hidden"] {
            assert!(!valid_pkgname(bad), "{bad:?}");
        }
    }

    #[test]
    fn specs() {
        let s = |x: &str| Spec::parse(x).unwrap();
        assert!(s("rsync").matches("rsync-3.3.0p0"));
        assert!(s("rsync--").matches("rsync-3.3.0p0"));
        assert!(!s("rsync").matches("rsync-extra-1.0"));
        assert!(!s("rsync").matches("debug-rsync-3.3.0p0"));
        assert!(s("vim").matches("vim-9.1.0-gtk2"));
        assert!(s("vim--gtk2").matches("vim-9.1.0-gtk2"));
        assert!(!s("vim--gtk2").matches("vim-9.1.0"));
        assert!(s("rsync-3.3.0p0").matches("rsync-3.3.0p0"));
        assert!(!s("rsync-3.3.0p0").matches("rsync-3.3.0p1"));
        assert_eq!(s("rsync").pkg_add_arg(), "rsync--");
        assert_eq!(s("rsync--").pkg_add_arg(), "rsync--");
        assert_eq!(s("vim--gtk2").pkg_add_arg(), "vim--gtk2");
        assert_eq!(s("rsync-3.3.0p0").pkg_add_arg(), "rsync-3.3.0p0");
        for bad in ["", "-X", "a b", "rsync-1.0--x", "vim---gtk2", "vim--gtk2-"] {
            assert!(Spec::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn closure_follows_both_files() {
        let t = tempfile::tempdir().unwrap();
        let db = t.path();
        let pkg = |n: &str, req: &[&str], by: &[&str]| {
            fs::create_dir_all(db.join(n)).unwrap();
            if !req.is_empty() {
                fs::write(db.join(n).join("+REQUIRING"), req.join("\n") + "\n").unwrap();
            }
            if !by.is_empty() {
                fs::write(db.join(n).join("+REQUIRED_BY"), by.join("\n") + "\n").unwrap();
            }
        };
        pkg("rsync-3.3.0p0", &["libiconv-1.17"], &[]);
        pkg("libiconv-1.17", &["gone-1.0"], &[]);
        // Only the dependency says it: rsync requires popt.
        pkg("popt-1.19", &[], &["rsync-3.3.0p0"]);
        pkg("curl-8.9.1", &["libiconv-1.17"], &[]);
        let installed: Vec<String> = ["curl-8.9.1", "libiconv-1.17", "popt-1.19", "rsync-3.3.0p0"]
            .map(String::from)
            .to_vec();
        let kept = keep_closure(db, &installed, &[Spec::parse("rsync").unwrap()]).unwrap();
        assert_eq!(
            kept.into_iter().collect::<Vec<_>>(),
            ["libiconv-1.17", "popt-1.19", "rsync-3.3.0p0"]
        );
        assert!(keep_closure(db, &installed, &[]).unwrap().is_empty());
    }

    #[test]
    fn wrkobjdir_rules() {
        let t = tempfile::tempdir().unwrap();
        let ports = t.path().join("ports");
        fs::create_dir_all(ports.join("pobj")).unwrap();
        let prot = |what, path: PathBuf, hold| Protected {
            what,
            path,
            may_hold_wrkobjdir: hold,
        };
        let protected = [
            prot("PORTSDIR", ports.clone(), true),
            prot("DISTDIR", ports.join("distfiles"), false),
        ];
        assert!(check_wrkobjdir(&ports.join("pobj"), &protected, &ports).is_ok());
        assert!(check_wrkobjdir(&ports.join("pobj/amd64"), &protected, &ports).is_ok());
        for bad in [
            PathBuf::from("pobj"),
            PathBuf::from("/"),
            ports.clone(),
            t.path().to_path_buf(),
            ports.join("distfiles"),
            ports.join("distfiles/sub"),
            ports.join("pobj/../pobj"),
        ] {
            assert!(
                check_wrkobjdir(&bad, &protected, &ports).is_err(),
                "{bad:?}"
            );
        }
        std::os::unix::fs::symlink(&ports, t.path().join("link")).unwrap();
        assert!(check_wrkobjdir(&t.path().join("link"), &protected, &ports).is_err());
        // Through a link to the tree, the tree itself.
        fs::create_dir_all(t.path().join("other")).unwrap();
        std::os::unix::fs::symlink(t.path(), t.path().join("other/up")).unwrap();
        assert!(check_wrkobjdir(&t.path().join("other/up/ports"), &protected, &ports).is_err());
    }

    /// Between the check and the wipe a parent is swapped for a link to another
    /// tree: the wipe, which opens the checked path without following links and
    /// checks what it finds, removes nothing there.
    #[test]
    fn a_parent_swapped_for_a_link_after_the_check_is_not_followed() {
        let t = tempfile::tempdir().unwrap();
        let ports = t.path().join("ports");
        let w = t.path().join("build/pobj");
        fs::create_dir_all(w.join("sub")).unwrap();
        fs::write(w.join("sub/junk"), "junk").unwrap();
        fs::create_dir_all(&ports).unwrap();
        let protected = [Protected {
            what: "PORTSDIR",
            path: ports.clone(),
            may_hold_wrkobjdir: true,
        }];
        let checked = check_wrkobjdir(&w, &protected, &ports).unwrap();
        // The swap: build/ becomes a link to a tree with a pobj of its own.
        let precious = t.path().join("precious/pobj");
        fs::create_dir_all(&precious).unwrap();
        fs::write(precious.join("data"), "keep").unwrap();
        fs::rename(t.path().join("build"), t.path().join("build.old")).unwrap();
        std::os::unix::fs::symlink(t.path().join("precious"), t.path().join("build")).unwrap();
        let e = wipe(&checked).unwrap_err();
        assert!(e.contains("symbolic link"), "{e}");
        assert_eq!(fs::read_to_string(precious.join("data")).unwrap(), "keep");
        // Another directory put in its place (a new inode): refused too.
        fs::remove_file(t.path().join("build")).unwrap();
        fs::create_dir_all(&w).unwrap();
        fs::write(w.join("new"), "new").unwrap();
        let e = wipe(&checked).unwrap_err();
        assert!(e.contains("not the directory that was checked"), "{e}");
        assert!(w.join("new").exists());
        // The checked one, back in place: emptied, kept, links inside removed
        // as links, a read-only subdirectory emptied too.
        fs::remove_dir_all(t.path().join("build")).unwrap();
        fs::rename(t.path().join("build.old"), t.path().join("build")).unwrap();
        std::os::unix::fs::symlink(&precious, w.join("link")).unwrap();
        fs::create_dir_all(w.join("ro/deep")).unwrap();
        fs::write(w.join("ro/deep/f"), "f").unwrap();
        fs::set_permissions(w.join("ro"), fs::Permissions::from_mode(0o555)).unwrap();
        wipe(&checked).unwrap();
        assert!(w.is_dir());
        assert_eq!(fs::read_dir(&w).unwrap().count(), 0);
        assert_eq!(fs::read_to_string(precious.join("data")).unwrap(), "keep");
    }
}
