//! collect-built: from the entries that were built to the package files they made.
//!
//! The `build` records that say `built` or `up-to-date` (or plain full pkgpaths)
//! are asked for their package names with one `make show=PKGNAMES` over a
//! SUBDIRLIST; the names are mapped back to the entries through the `===>`
//! headers and deduplicated by file name; every file found in
//! `${PACKAGE_REPOSITORY}/${MACHINE_ARCH}/<from>/` gets a `package` record with its
//! size and SHA-256, computed in parallel with a fixed buffer per file.  Every
//! input record passes through first, unchanged and in order.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs::{self, File};
use std::io::{self, Read};
use std::num::NonZeroUsize;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};

use rayon::prelude::*;
use sha2::{Digest, Sha256};

use crate::diag::{Diag, Exit, Loc};
use crate::host::{Host, HostArgs};
use crate::jsonl::{Inputs, Item, Output};
use crate::pkgpath::PkgPath;
use crate::ports::{split_headers, valid_package_file, valid_pkgname};
use crate::record::{BuildStatus, BuildTarget, Kind, Level, Record};
use crate::Error;

pub const TOOL: &str = "collect-built";

/// The read buffer of one checksum: the memory a file costs, whatever its size.
const HASH_BUFFER: usize = 128 * 1024;

/// How much of a package's decompressed start is read to find its `+CONTENTS`.
const CONTENTS_LIMIT: u64 = 1024 * 1024;

pub use crate::host::Repo;

/// Find the package files the build made, with their checksums.
#[derive(clap::Parser, Debug)]
#[command(name = "collect-built", version, max_term_width = 100)]
pub struct Args {
    /// Print the package file names, one a line, sorted and unique, instead of records.
    #[arg(short = 't', long = "text")]
    pub text: bool,
    /// The directory of the repository to collect from: ftp (may be redistributed) or all.
    #[arg(long, value_enum, value_name = "DIR", default_value = "ftp")]
    pub from: Repo,
    /// Checksum threads [default: the number of CPUs].
    #[arg(short = 'j', long = "jobs", value_name = "N")]
    pub jobs: Option<NonZeroUsize>,
    /// Where build-list keeps the log directories of the batches, whose journals
    /// say what was built [default: PORTSDIR/logs/MACHINE_ARCH].
    #[arg(long, value_name = "DIR")]
    pub log_dir: Option<PathBuf>,
    #[command(flatten)]
    pub host: HostArgs,
    /// Inputs: build records or full pkgpaths, one a line; standard input when none.
    #[arg(value_name = "FILE")]
    pub files: Vec<PathBuf>,
}

pub fn main() -> std::process::ExitCode {
    crate::diag::tool_main(TOOL, run)
}

/// The entries to ask make about, in the order first seen, each once.
#[derive(Default)]
struct Entries {
    /// As given (validated), for the SUBDIRLIST and the records.
    list: Vec<String>,
    /// Canonical form -> index in `list`.
    index: HashMap<String, usize>,
}

impl Entries {
    fn add(&mut self, p: &PkgPath, given: &str) {
        let canon = p.to_string();
        if !self.index.contains_key(&canon) {
            self.index.insert(canon, self.list.len());
            self.list.push(given.to_string());
        }
    }

    /// The entry a `===>` header names: as written, or in another spelling of the
    /// same full pkgpath.
    fn find(&self, header: &str) -> Option<&str> {
        if let Some(e) = self.list.iter().find(|e| *e == header) {
            return Some(e);
        }
        let canon = PkgPath::parse(header).ok()?.to_string();
        self.index.get(&canon).map(|&i| self.list[i].as_str())
    }
}

/// One package file to collect.
struct Wanted {
    pkgname: String,
    fullpkgpath: String,
    /// The entry builds it as its own subpackage, or make said it created it:
    /// missing, it is a problem.
    owned: bool,
    /// Not a package of the list: make created it while building `fullpkgpath`,
    /// as a dependency.
    dependency: bool,
}

/// A package file that was found and read.
struct Found {
    size: u64,
    sha256: String,
}

/// The notices of a run, written after the input records.
struct Notices<'a> {
    text: bool,
    diag: &'a Diag,
    records: Vec<Record>,
}

/// How a notice is also told on stderr.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Told {
    /// A failure: reported on stderr as an error, which makes the run exit 1.
    Failure,
    /// Already reported on stderr (a bad input line).
    Already,
    /// Only a notice: on stderr with `-t` alone (records carry it otherwise).
    Notice,
}

impl Notices<'_> {
    /// A notice: a record, or with `-t` a line on stderr (info notices are left
    /// out there, so that cron output stays empty on success).
    fn add(&mut self, level: Level, msg: String, told: Told) {
        if told == Told::Failure {
            self.diag.error(&msg);
        }
        if !self.text {
            self.records.push(Record::notice(TOOL, level, msg));
        } else if told == Told::Notice && level != Level::Info {
            self.diag.warn(format_args!("{}: {msg}", level.as_str()));
        }
    }
}

/// What the input gave: the operator's own entries, the build records to
/// check (claims), and the batch.
#[derive(Default)]
struct Given {
    entries: Entries,
    /// The build records read: what they say was built, to be checked.
    claims: Vec<(Loc, PkgPath, bool)>,
    batch: Option<String>,
}

pub fn run(args: &Args, diag: &Diag) -> Result<Exit, Error> {
    // Flags are checked first; make is asked for the host's settings only after
    // the input went through, so that a make that fails loses no record.
    args.host.check()?;
    let threads = match args.jobs {
        Some(n) => n.get(),
        None => std::thread::available_parallelism().map_or(1, NonZeroUsize::get),
    };
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .map_err(|e| Error::Usage(format!("-j {threads}: cannot start the threads: {e}")))?;

    let mut out = Output::stdout();
    let mut notices = Notices {
        text: args.text,
        diag,
        records: Vec::new(),
    };
    let Given {
        mut entries,
        claims,
        batch,
    } = read_input(args, &mut out, &mut notices, diag)?;
    // Package files make said a build created, the entry it was building, and
    // whether that build ended well (then the file must be there).
    let mut created: Vec<(String, String, bool)> = Vec::new();

    let mut host = match args.host.resolve() {
        Ok(h) => h,
        Err(e @ Error::Command { .. }) => {
            notices.add(
                Level::Error,
                format!("{e}: no package collected"),
                Told::Failure,
            );
            for mut n in notices.records {
                if let Some(b) = &batch {
                    n.set_default("batch", b.as_str());
                }
                out.record(&n)?;
            }
            out.flush()?;
            return Ok(diag.finish(Exit::Failed));
        }
        Err(e) => return Err(e),
    };
    if host.batch.is_none() {
        host.batch = batch;
    }
    if !claims.is_empty() {
        let log_root = match &args.log_dir {
            Some(d) => d.clone(),
            None => args.host.ports_dir.join("logs").join(&host.arch),
        };
        check_claims(
            &claims,
            &host,
            &log_root,
            &mut entries,
            &mut created,
            &mut notices,
            diag,
        );
    }

    if entries.list.is_empty() && created.is_empty() {
        write_notices(&mut out, &host, notices.records)?;
        out.flush()?;
        return Ok(diag.finish(Exit::NothingToDo));
    }

    let asked = if entries.list.is_empty() {
        Ok(BTreeMap::new())
    } else {
        ask_pkgnames(&host, &entries, &mut notices)
    };
    let mut wanted = match asked {
        Ok(w) => w,
        Err(e) => {
            notices.add(
                Level::Error,
                format!("{e}: no package collected"),
                Told::Failure,
            );
            write_notices(&mut out, &host, notices.records)?;
            out.flush()?;
            return Ok(diag.finish(Exit::Failed));
        }
    };
    add_dependencies(&mut wanted, created);
    let present = find_files(args.from, &host, &wanted, &mut notices);

    if args.text {
        write_notices(&mut out, &host, notices.records)?;
        for (file, _, _) in &present {
            out.line(file)?;
        }
        out.flush()?;
        return Ok(diag.finish(Exit::Success));
    }
    let records = package_records(&pool, &present, &mut notices, diag);
    write_notices(&mut out, &host, notices.records)?;
    for mut r in records {
        host.stamp(&mut r);
        out.record(&r)?;
    }
    out.flush()?;
    Ok(diag.finish(Exit::Success))
}

/// Read the input: records pass on (but with `-t`), build records are
/// claims, plain lines are full pkgpaths of the operator's own.
fn read_input(
    args: &Args,
    out: &mut Output,
    notices: &mut Notices<'_>,
    diag: &Diag,
) -> Result<Given, Error> {
    let mut g = Given {
        batch: args.host.batch.clone(),
        ..Given::default()
    };
    Inputs::new(&args.files).for_each(diag, |item, loc: &Loc| {
        let given = match item {
            Item::Record(r) => {
                if !args.text {
                    out.record(&r)?;
                }
                if let Err(e) = crate::host::learn_batch(&mut g.batch, &r) {
                    diag.error_at(loc, &e);
                    notices.add(Level::Error, e.to_string(), Told::Already);
                }
                if g.batch.is_none() && r.is(Kind::Build) {
                    // build-list's records carry their batch.
                    g.batch = r
                        .str("batch")
                        .filter(|b| crate::host::check_batch(b).is_ok())
                        .map(str::to_string);
                }
                match to_collect(&r) {
                    // A build record is a claim, checked against this host's
                    // journal once the batch and the log directory are known.
                    Ok(Some((f, built))) => match PkgPath::parse(&f) {
                        Ok(p) => g.claims.push((loc.clone(), p, built)),
                        Err(e) => {
                            diag.error_at(loc, &e);
                            notices.add(Level::Error, format!("{e}: not collected"), Told::Already);
                        }
                    },
                    Ok(None) => {}
                    Err(e) => diag.error_at(loc, format_args!("{e}; not collected")),
                }
                return Ok(());
            }
            // A plain full pkgpath: the operator's own list.
            Item::Text(t) => t,
        };
        match PkgPath::parse(&given) {
            Ok(p) => g.entries.add(&p, &given),
            Err(e) => {
                diag.error_at(loc, &e);
                notices.add(Level::Error, format!("{e}: not collected"), Told::Already);
            }
        }
        Ok(())
    })?;
    Ok(g)
}

/// The wanted package files that are in the repository (`from`); a missing
/// one that should be there, or one that is not a file, is a notice.
fn find_files<'w>(
    from: Repo,
    host: &Host,
    wanted: &'w BTreeMap<String, Wanted>,
    notices: &mut Notices<'_>,
) -> Vec<(&'w String, &'w Wanted, PathBuf)> {
    let dir = host.packages(from.dir());
    let all = host.packages("all");
    let mut present = Vec::new();
    for (file, w) in wanted {
        let path = dir.join(file);
        match fs::metadata(&path) {
            Ok(m) if m.is_file() => present.push((file, w, path)),
            Ok(_) => notices.add(
                Level::Warning,
                format!("{}: not a regular file: not collected", path.display()),
                Told::Failure,
            ),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                if w.owned {
                    missing(from, &dir, &all, file, w, notices)
                }
            }
            Err(e) => notices.add(
                Level::Warning,
                format!("{}: {e}: not collected", path.display()),
                Told::Failure,
            ),
        }
    }
    present
}

/// A `package` record for each file found, its checksum made in parallel (the
/// records keep the order of `present`); a file that cannot be read is a
/// notice.
fn package_records(
    pool: &rayon::ThreadPool,
    present: &[(&String, &Wanted, PathBuf)],
    notices: &mut Notices<'_>,
    diag: &Diag,
) -> Vec<Record> {
    let done = AtomicUsize::new(0);
    let sums: Vec<Result<Found, io::Error>> = pool.install(|| {
        present
            .par_iter()
            .map(|(file, _, p)| {
                let r = checksum(p);
                let n = done.fetch_add(1, Ordering::Relaxed) + 1;
                diag.progress(format_args!("checksum {n} of {}: {file}", present.len()));
                r
            })
            .collect()
    });
    let mut records = Vec::with_capacity(present.len());
    for ((file, w, path), sum) in present.iter().zip(sums) {
        match sum {
            Ok(f) => {
                let mut r = Record::new(Kind::Package);
                r.set("fullpkgpath", w.fullpkgpath.as_str());
                r.set("pkgname", w.pkgname.as_str());
                r.set("file", file.as_str());
                r.set("path", path.display().to_string());
                r.set("size", f.size);
                r.set("sha256", f.sha256);
                r.set("debug", w.pkgname.starts_with("debug-"));
                if w.dependency {
                    r.set("dependency", true);
                }
                records.push(r);
            }
            Err(e) => notices.add(
                Level::Warning,
                format!("{}: cannot read: {e}: not collected", path.display()),
                Told::Failure,
            ),
        }
    }
    records
}

/// Check the build records read against the journal build-list keeps for the
/// batch on this host (`<log-dir>/<batch>/journal`): an entry is collected when
/// the journal says it was built or up to date, and the packages make created
/// while building it are the journal's; a record the journal does not back is
/// refused with an error notice.  What was built is what this host's build-list
/// wrote, never what a record says.
fn check_claims(
    claims: &[(Loc, PkgPath, bool)],
    host: &Host,
    log_root: &Path,
    entries: &mut Entries,
    created: &mut Vec<(String, String, bool)>,
    notices: &mut Notices<'_>,
    diag: &Diag,
) {
    let refuse = |notices: &mut Notices<'_>, loc: &Loc, msg: String| {
        diag.error_at(loc, format_args!("{msg}: not collected"));
        notices.add(Level::Error, format!("{msg}: not collected"), Told::Already);
    };
    let Some(batch) = &host.batch else {
        for (loc, p, _) in claims.iter().filter(|c| c.2) {
            refuse(
                notices,
                loc,
                format!("{p}: no batch id (--batch or a batch record) to check it against this host's journal"),
            );
        }
        return;
    };
    let dir = log_root.join(batch);
    let journal = match crate::build_list::batch::read_journal(&dir, diag) {
        Ok(j) => j,
        Err(e) => {
            for (loc, p, _) in claims.iter().filter(|c| c.2) {
                refuse(notices, loc, format!("{p}: {e}"));
            }
            return;
        }
    };
    // The journal's package builds on this arch, by canonical full pkgpath.
    let mut by_path: HashMap<String, &Record> = HashMap::new();
    for (k, r) in &journal {
        if k.target == BuildTarget::Package && k.arch == host.arch {
            if let Ok(p) = PkgPath::parse(&k.fullpkgpath) {
                by_path.insert(p.to_string(), r);
            }
        }
    }
    for (loc, p, built) in claims {
        let canon = p.to_string();
        let Some(r) = by_path.get(&canon) else {
            if !built {
                continue; // a failed entry: nothing of its own to collect
            }
            refuse(
                notices,
                loc,
                format!(
                    "{canon}: the journal of batch {batch} on this host ({}) has no build of it",
                    dir.join(crate::build_list::batch::JOURNAL).display()
                ),
            );
            continue;
        };
        for bad in created_of(r, created) {
            diag.error(format_args!("{}: {bad}", dir.display()));
        }
        match r.word("status") {
            Some(BuildStatus::Built | BuildStatus::UpToDate) if *built => entries.add(p, &canon),
            _ if !built => {}
            _ => refuse(
                notices,
                loc,
                format!(
                    "{canon}: the journal of batch {batch} says {}",
                    r.str("status").unwrap_or("nothing")
                ),
            ),
        }
    }
}

/// The package files a `build` record of the `package` target says make created
/// (its `created` field, whatever the entry's status: dependencies built before
/// an entry failed are packages too), added to `created` with the entry and
/// whether the build ended well (bsd.port.mk says `Create` before it runs
/// pkg_create: after a failure the file may not be there).  A record is input:
/// only plain package file names are taken, the rest is returned, to be
/// reported.
fn created_of(r: &Record, created: &mut Vec<(String, String, bool)>) -> Vec<String> {
    if !r.is_package_build() {
        return Vec::new();
    }
    let Some(v) = r.get("created") else {
        return Vec::new();
    };
    let Some(entry) = r.str("fullpkgpath").filter(|e| PkgPath::parse(e).is_ok()) else {
        return vec!["build record with created files but no valid fullpkgpath".into()];
    };
    let Some(list) = v.as_array() else {
        return vec!["build record field created: not a list of file names".into()];
    };
    let ok = matches!(
        r.word("status"),
        Some(BuildStatus::Built | BuildStatus::UpToDate)
    );
    let mut bad = Vec::new();
    for name in list {
        match name.as_str() {
            Some(n) if valid_package_file(n) => match created.iter_mut().find(|c| c.0 == n) {
                Some(c) => c.2 |= ok,
                None => created.push((n.to_string(), entry.to_string(), ok)),
            },
            _ => bad.push(format!("{entry}: created {name}: not a package file name")),
        }
    }
    bad
}

/// Add the packages make created that no entry of the list owns: dependencies,
/// each credited to the entry whose build made it, and its debug- twin when there
/// is one (make does not announce those).
fn add_dependencies(wanted: &mut BTreeMap<String, Wanted>, created: Vec<(String, String, bool)>) {
    for (file, entry, ok) in created {
        if let Some(w) = wanted.get_mut(&file) {
            // Named by an entry, and make made it: it must be there.
            w.owned |= ok;
            continue;
        }
        let pkgname = file.strip_suffix(".tgz").unwrap_or(&file).to_string();
        if !pkgname.starts_with("debug-") {
            wanted
                .entry(format!("debug-{file}"))
                .or_insert_with(|| Wanted {
                    pkgname: format!("debug-{pkgname}"),
                    fullpkgpath: entry.clone(),
                    owned: false,
                    dependency: true,
                });
        }
        wanted.insert(
            file,
            Wanted {
                pkgname,
                fullpkgpath: entry,
                owned: ok,
                dependency: true,
            },
        );
    }
}

/// The full pkgpath of a `build` record of the `package` target (or of no
/// target), and whether it says the entry was built (`built`, `up-to-date`) or
/// failed (its dependencies built on the way may be there).  `None` for every
/// other record, skipped and ignored builds included.
fn to_collect(r: &Record) -> Result<Option<(String, bool)>, crate::record::RecordError> {
    if !r.is_package_build() {
        return Ok(None);
    }
    let status: BuildStatus = r.require_word("status")?;
    let full = r.require_str("fullpkgpath")?;
    Ok(match status {
        BuildStatus::Built | BuildStatus::UpToDate => Some((full.to_string(), true)),
        BuildStatus::Failed => Some((full.to_string(), false)),
        BuildStatus::Skipped | BuildStatus::Ignored => None,
    })
}

/// Ask make for the package names of every entry, once: `show=PKGNAMES
/// FULLPKGNAME${SUBPACKAGE}`, which prints for each entry the packages of every
/// subpackage of its flavor, then the name of its own subpackage.  File name ->
/// what to collect, sorted by file name.  A file goes to the entry that builds
/// it as its own subpackage (its package and its debug- twin); a file no entry
/// owns goes to the first entry that named it, and is collected only if present
/// (a pseudo-flavor drops subpackages whose names PKGNAMES still lists).
fn ask_pkgnames(
    host: &Host,
    entries: &Entries,
    notices: &mut Notices<'_>,
) -> Result<BTreeMap<String, Wanted>, Error> {
    let walk = host
        .tree
        .show("PKGNAMES FULLPKGNAME${SUBPACKAGE}", &entries.list)?;
    Ok(credit(&walk.output, &walk.problems, entries, notices))
}

/// What to collect, from the output of `show="PKGNAMES FULLPKGNAME${SUBPACKAGE}"`
/// over `entries` and the entries make reported as problems (see
/// [`ask_pkgnames`]).
fn credit(
    output: &str,
    problems: &[String],
    entries: &Entries,
    notices: &mut Notices<'_>,
) -> BTreeMap<String, Wanted> {
    // Entry -> (the names make printed, its own package name).
    let mut names: HashMap<&str, (Vec<&str>, Option<&str>)> = HashMap::new();
    for (header, lines) in split_headers(output) {
        if header.is_empty() {
            continue; // anything make printed before the first header
        }
        let Some(entry) = entries.find(header) else {
            continue; // not asked about
        };
        let (Some(all), Some(own)) = (lines.first(), lines.get(1)) else {
            continue;
        };
        let e = names.entry(entry).or_default();
        e.0.extend(all.split_whitespace());
        e.1 = Some(own.trim());
    }
    let failed: HashSet<&str> = problems.iter().map(String::as_str).collect();
    let mut wanted = BTreeMap::new();
    let mut named = Vec::new();
    for entry in &entries.list {
        let Some((list, Some(own))) = names.get(entry.as_str()) else {
            let why = if failed.contains(entry.as_str()) {
                "make reported a problem with it"
            } else {
                "make printed no package names for it"
            };
            notices.add(
                Level::Warning,
                format!("{entry}: {why}: nothing collected"),
                Told::Failure,
            );
            continue;
        };
        for &name in list {
            if !valid_pkgname(name) {
                notices.add(
                    Level::Warning,
                    format!("{entry}: make show=PKGNAMES printed {name:?}, not a package name"),
                    Told::Failure,
                );
                continue;
            }
            let mine = name == *own || name.strip_prefix("debug-") == Some(*own);
            if mine {
                wanted
                    .entry(format!("{name}.tgz"))
                    .or_insert_with(|| Wanted {
                        pkgname: name.to_string(),
                        fullpkgpath: entry.clone(),
                        owned: true,
                        dependency: false,
                    });
            } else {
                named.push((name, entry));
            }
        }
    }
    for (name, entry) in named {
        wanted
            .entry(format!("{name}.tgz"))
            .or_insert_with(|| Wanted {
                pkgname: name.to_string(),
                fullpkgpath: entry.clone(),
                owned: false,
                dependency: false,
            });
    }
    wanted
}

/// Report a file that is not in the directory collected from.  With `--from ftp`
/// a package found in `all/` whose packing list says `ftp=no` may not be
/// redistributed: an info notice, not a failure.
fn missing(from: Repo, dir: &Path, all: &Path, file: &str, w: &Wanted, notices: &mut Notices<'_>) {
    let what = format!("{file} ({})", w.fullpkgpath);
    let in_all = all.join(file);
    if from == Repo::Ftp && in_all.is_file() {
        match ftp_permission(&in_all) {
            Some(false) => notices.add(
                Level::Info,
                format!(
                    "{what}: may not be redistributed (ftp=no): in {} only, not collected",
                    all.display()
                ),
                Told::Notice,
            ),
            Some(true) => notices.add(
                Level::Warning,
                format!(
                    "{what}: built, in {} but missing from {} although it may be redistributed",
                    all.display(),
                    dir.display()
                ),
                Told::Failure,
            ),
            None => notices.add(
                Level::Warning,
                format!(
                    "{what}: built, in {} but missing from {} (cannot tell whether it may be redistributed)",
                    all.display(),
                    dir.display()
                ),
                Told::Failure,
            ),
        }
        return;
    }
    notices.add(
        Level::Warning,
        format!("{what}: built but missing from {}", dir.display()),
        Told::Failure,
    );
}

/// Whether a package may be put on the ftp mirrors, from the
/// `@comment pkgpath=... ftp=yes|no` line of its `+CONTENTS` (the first member of
/// the gzip'd tar).  `None` when that cannot be told.
fn ftp_permission(package: &Path) -> Option<bool> {
    let mut child = Command::new("gzip")
        .arg("-dc")
        .arg(package)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    let mut head = Vec::new();
    let read = child
        .stdout
        .take()
        .map(|s| s.take(CONTENTS_LIMIT).read_to_end(&mut head));
    // The rest of the package is not needed.
    let _ = child.kill();
    let _ = child.wait();
    read?.ok()?;
    let contents = tar_member(&head, "+CONTENTS")?;
    let text = String::from_utf8_lossy(contents);
    text.lines()
        .filter_map(|l| l.strip_prefix("@comment "))
        .flat_map(str::split_whitespace)
        .find_map(|w| match w {
            "ftp=yes" => Some(true),
            "ftp=no" => Some(false),
            _ => None,
        })
}

/// The contents of the member `name` among the first members of a tar stream
/// (ustar, with pax or GNU long-name headers skipped).
fn tar_member<'a>(tar: &'a [u8], name: &str) -> Option<&'a [u8]> {
    let mut off = 0usize;
    for _ in 0..8 {
        let h = tar.get(off..off + 512)?;
        if h.iter().all(|&b| b == 0) {
            return None;
        }
        let end = h[..100].iter().position(|&b| b == 0).unwrap_or(100);
        let member = std::str::from_utf8(&h[..end]).ok()?;
        let size_field = std::str::from_utf8(&h[124..136]).ok()?;
        let size_field = size_field.trim_matches(|c: char| c == '\0' || c == ' ');
        let size = usize::from_str_radix(size_field, 8).ok()?;
        let data = off + 512;
        let typeflag = h[156];
        if member.trim_start_matches("./") == name && matches!(typeflag, b'0' | b'\0') {
            return tar.get(data..data.checked_add(size)?);
        }
        if !matches!(typeflag, b'x' | b'g' | b'L' | b'K') {
            return None; // +CONTENTS comes first in a package
        }
        off = data.checked_add(size.div_ceil(512) * 512)?;
    }
    None
}

/// Size and SHA-256 of a file, read through a fixed buffer.
fn checksum(path: &Path) -> Result<Found, io::Error> {
    let mut f = File::open(path)?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; HASH_BUFFER];
    let mut size = 0u64;
    loop {
        let n = match f.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        h.update(&buf[..n]);
        size += n as u64;
    }
    Ok(Found {
        size,
        sha256: hex(&h.finalize()),
    })
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for &b in bytes {
        s.push(DIGITS[usize::from(b >> 4)] as char);
        s.push(DIGITS[usize::from(b & 15)] as char);
    }
    s
}

fn write_notices(out: &mut Output, host: &Host, notices: Vec<Record>) -> Result<(), Error> {
    for mut n in notices {
        host.stamp(&mut n);
        out.record(&n)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The real make's `show="PKGNAMES FULLPKGNAME${SUBPACKAGE}"` over the real
    /// tree (tests/fixtures/real-make/pkgnames.out): every subpackage listed for
    /// every entry; a file goes to the entry whose own subpackage it is.
    #[test]
    fn credit_from_the_real_make_output() {
        let output = include_str!("../../tests/fixtures/real-make/pkgnames.out");
        let mut entries = Entries::default();
        for e in [
            "net/curl",
            "devel/quirks",
            "editors/vim,-lang",
            "x11/kde-applications/lokalize",
            "devel/fasm",
        ] {
            entries.add(&PkgPath::parse(e).unwrap(), e);
        }
        let diag = Diag::new(TOOL);
        let mut notices = Notices {
            text: false,
            diag: &diag,
            records: Vec::new(),
        };
        let wanted = credit(output, &[], &entries, &mut notices);
        let got: Vec<(&str, &str, bool)> = wanted
            .iter()
            .map(|(f, w)| (f.as_str(), w.fullpkgpath.as_str(), w.owned))
            .collect();
        assert_eq!(
            got,
            [
                ("curl-7.74.0.tgz", "net/curl", true),
                ("debug-curl-7.74.0.tgz", "net/curl", true),
                (
                    "lokalize-20.08.3.tgz",
                    "x11/kde-applications/lokalize",
                    true
                ),
                ("quirks-3.508.tgz", "devel/quirks", true),
                // vim,-lang names the main package of its flavor too: not its own.
                ("vim-8.2.2230-gtk3.tgz", "editors/vim,-lang", false),
                ("vim-lang-8.2.2230.tgz", "editors/vim,-lang", true),
            ]
        );
        // devel/fasm, not for this arch, lists no package: nothing to say.
        assert!(notices.records.is_empty(), "{:?}", notices.records);
    }

    #[test]
    fn sha256_of_known_input() {
        let t = tempfile::tempdir().unwrap();
        let p = t.path().join("f");
        fs::write(&p, b"abc").unwrap();
        let f = checksum(&p).unwrap();
        assert_eq!(f.size, 3);
        assert_eq!(
            f.sha256,
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        // More than one buffer.
        let big = vec![b'a'; HASH_BUFFER * 2 + 7];
        fs::write(&p, &big).unwrap();
        let f = checksum(&p).unwrap();
        assert_eq!(f.size, big.len() as u64);
        assert_eq!(f.sha256, hex(&Sha256::digest(&big)));
    }

    fn header(name: &str, size: usize, typeflag: u8) -> Vec<u8> {
        let mut h = vec![0u8; 512];
        h[..name.len()].copy_from_slice(name.as_bytes());
        let s = format!("{size:011o}\0");
        h[124..136].copy_from_slice(s.as_bytes());
        h[156] = typeflag;
        h
    }

    fn padded(data: &[u8]) -> Vec<u8> {
        let mut v = data.to_vec();
        v.resize(data.len().div_ceil(512) * 512, 0);
        v
    }

    #[test]
    fn contents_member() {
        let body = b"@name x-1\n@comment pkgpath=a/x ftp=no\n";
        let mut tar = header("+CONTENTS", body.len(), b'0');
        tar.extend(padded(body));
        tar.extend(vec![0u8; 1024]);
        assert_eq!(tar_member(&tar, "+CONTENTS"), Some(&body[..]));
        // After a pax header.
        let pax = b"30 path=+CONTENTS\n";
        let mut t2 = header("PaxHeaders/x", pax.len(), b'x');
        t2.extend(padded(pax));
        t2.extend(&tar);
        assert_eq!(tar_member(&t2, "+CONTENTS"), Some(&body[..]));
        // Not first: not found.
        let mut t3 = header("+DESC", 3, b'0');
        t3.extend(padded(b"abc"));
        t3.extend(&tar);
        assert_eq!(tar_member(&t3, "+CONTENTS"), None);
        // Truncated.
        assert_eq!(tar_member(&tar[..520], "+CONTENTS"), None);
    }

    #[test]
    fn pkgnames() {
        assert!(valid_pkgname("curl-8.9.1"));
        assert!(valid_pkgname("debug-vim-9.1.0-gtk2"));
        assert!(valid_pkgname("gtk+3-3.24.43"));
        for bad in ["", "../x", "a/b", ".hidden", "-x", "a b", "a\u{7f}"] {
            assert!(!valid_pkgname(bad), "{bad:?}");
        }
    }

    #[test]
    fn entries_match_headers_in_any_spelling() {
        let mut e = Entries::default();
        for s in [
            "editors/vim,-lang,gtk2",
            "net/curl",
            "editors/vim,gtk2,-lang",
        ] {
            e.add(&PkgPath::parse(s).unwrap(), s);
        }
        assert_eq!(e.list, ["editors/vim,-lang,gtk2", "net/curl"]);
        assert_eq!(e.find("net/curl"), Some("net/curl"));
        assert_eq!(
            e.find("editors/vim,gtk2,-lang"),
            Some("editors/vim,-lang,gtk2")
        );
        assert_eq!(e.find("net/tor"), None);
    }

    #[test]
    fn which_records_are_collected() {
        let r = |s: &str| Record::parse(s).unwrap();
        let c = |s: &str| to_collect(&r(s));
        assert_eq!(
            c(
                r#"{"kind":"build","v":1,"fullpkgpath":"net/curl","target":"package","status":"built"}"#
            ),
            Ok(Some(("net/curl".into(), true)))
        );
        assert_eq!(
            c(r#"{"kind":"build","v":1,"fullpkgpath":"net/curl","status":"up-to-date"}"#),
            Ok(Some(("net/curl".into(), true)))
        );
        // A failed entry: only what make created on the way (its journal says).
        assert_eq!(
            c(r#"{"kind":"build","v":1,"fullpkgpath":"net/curl","status":"failed"}"#),
            Ok(Some(("net/curl".into(), false)))
        );
        for skip in [
            r#"{"kind":"build","v":1,"fullpkgpath":"net/curl","status":"skipped"}"#,
            r#"{"kind":"build","v":1,"fullpkgpath":"net/curl","target":"fetch","status":"built"}"#,
            r#"{"kind":"port","v":1,"fullpkgpath":"net/curl"}"#,
        ] {
            assert_eq!(c(skip), Ok(None), "{skip}");
        }
        assert!(c(r#"{"kind":"build","v":1,"status":"built"}"#).is_err());
        assert!(c(r#"{"kind":"build","v":1,"fullpkgpath":"net/curl","status":"done"}"#).is_err());
    }
}
