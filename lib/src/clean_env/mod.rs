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

mod packages;
#[cfg(test)]
mod tests;
mod wrkobjdir;

use std::ffi::OsString;
use std::path::PathBuf;

use crate::diag::{Diag, Exit, Loc};
use crate::host::{Host, HostArgs};
use crate::jsonl::{Inputs, Item, Output};
use crate::pkgpath::PkgPath;
use crate::record::{CleanAction, CleanStatus, Kind, Level, Record};
use crate::Error;

pub use packages::*;
pub use wrkobjdir::*;

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
        crate::proc::find_program(name, None).ok_or_else(|| {
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
