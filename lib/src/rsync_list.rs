//! rsync-list: copy the package files of a batch to the signing host with rsync.
//!
//! The `package` records (or plain file names) name files of one source
//! directory: `--source`, else the host's repository as make has it (a record's
//! `path` is checked against it, never followed).  One files-from list is written
//! and the real rsync is run once, never through a shell:
//!
//! ```text
//! rsync -a --copy-links --files-from=LIST --out-format='%i %b %n' [--dry-run]
//!     [--rsh=CMD] -- SRC/ DEST/
//! ```
//!
//! rsync's own per-file output (`%i`, logged at the end of each file's transfer
//! because `%b` is asked for) tells which files it sent; the others are unchanged.
//! One `transfer` record per file follows the input records, which pass through
//! first, unchanged and in order.  Bad file names are rejected before rsync runs.

use std::collections::{BTreeSet, HashMap, HashSet, VecDeque};
use std::ffi::OsString;
use std::fs;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};

use crate::diag::{Diag, Exit, Loc};
use crate::host::{check_batch, HostArgs, Repo};
use crate::jsonl::{Inputs, Item, Output};
use crate::record::{Kind, Level, Record, RecordError, TransferStatus};
use crate::Error;

pub const TOOL: &str = "rsync-list";

/// How many lines of rsync's standard error a failure message quotes.
const TAIL_LINES: usize = 5;
/// How long such a message may be, in bytes.
const TAIL_BYTES: usize = 1000;
/// How much of rsync's standard error is kept to find the files it names.
const STDERR_KEPT: usize = 4 << 20;

/// Copy the package files of a batch to the signing host with rsync.
#[derive(clap::Parser, Debug)]
#[command(name = "rsync-list", version, max_term_width = 100)]
pub struct Args {
    /// Print the files-from list (the file names, sorted and unique) and run nothing;
    /// every operand is then an input.
    #[arg(short = 't', long = "text")]
    pub text: bool,
    /// Run rsync with --dry-run: the records say what would be sent.
    #[arg(short = 'n', long = "dry-run")]
    pub dry_run: bool,
    /// The remote shell for a host:path destination, given to rsync as --rsh.
    #[arg(long, value_name = "CMD")]
    pub rsh: Option<String>,
    /// The rsync program.
    #[arg(long, value_name = "PATH", default_value = "rsync")]
    pub rsync: OsString,
    /// The directory the files are copied from [default: the host's repository,
    /// PACKAGE_REPOSITORY/MACHINE_ARCH/ftp, as make has it].
    #[arg(long, value_name = "DIR")]
    pub source: Option<PathBuf>,
    /// The directory of the host's repository to copy from: ftp (may be
    /// redistributed) or all; without --source.
    #[arg(long, value_enum, value_name = "DIR", default_value = "ftp")]
    pub from: Repo,
    /// Where the batches' log directories are, in which rsync-list journals what
    /// it delivered [default: PORTSDIR/logs/MACHINE_ARCH, without --source].
    #[arg(long, value_name = "DIR")]
    pub log_dir: Option<PathBuf>,
    #[command(flatten)]
    pub host: HostArgs,
    /// Where to copy to: a directory, or host:path over the remote shell.
    #[arg(value_name = "DEST", required_unless_present = "text")]
    pub dest: Option<String>,
    /// Inputs: package records or file names, one a line; standard input when none.
    #[arg(value_name = "FILE")]
    pub files: Vec<PathBuf>,
}

pub fn main() -> std::process::ExitCode {
    crate::diag::tool_main(TOOL, run)
}

/// What happened to one file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    Sent,
    Unchanged,
    Failed(String),
}

impl Outcome {
    fn status(&self) -> TransferStatus {
        match self {
            Outcome::Sent => TransferStatus::Sent,
            Outcome::Unchanged => TransferStatus::Unchanged,
            Outcome::Failed(_) => TransferStatus::Failed,
        }
    }
}

/// One file to transfer.
struct Entry {
    file: String,
    arch: Option<String>,
    batch: Option<String>,
}

/// The files to transfer, each once, in the order first read.
#[derive(Default)]
struct Plan {
    entries: Vec<Entry>,
    names: HashSet<String>,
}

impl Plan {
    /// Add a file; the same name again is the same file (one source).
    fn add(&mut self, file: &str, arch: Option<String>, batch: Option<String>) {
        if self.names.insert(file.to_string()) {
            self.entries.push(Entry {
                file: file.to_string(),
                arch,
                batch,
            });
        }
    }
}

/// Why a file name cannot go into a files-from list; `None` when it can.  Only a
/// plain file name of printable ASCII is accepted: no `/`, nothing rsync or a
/// shell would read another way (a leading `-`, `.`, or the `#` and `;` that start
/// a files-from comment), no white space or control characters.
pub fn check_file_name(name: &str) -> Option<String> {
    let why = if name.is_empty() {
        "empty".to_string()
    } else if name.contains('/') {
        "contains '/'".to_string()
    } else if let Some(c) = name.chars().next().filter(|c| ".-#;".contains(*c)) {
        format!("starts with '{c}'")
    } else if let Some(c) = name.chars().find(|c| !c.is_ascii_graphic() || *c == '\\') {
        format!("character {c:?} not allowed")
    } else {
        return None;
    };
    Some(format!("invalid file name {name:?}: {why}"))
}

/// The file name of a `package` record, and its `path` when it has one.  The
/// name is what is copied; the path only says where collect-built found it, and
/// is checked against this host's own repository, never followed.
fn package_file(r: &Record) -> Result<(String, Option<String>), String> {
    let field = |e: RecordError| e.to_string();
    let file = r.require_str("file").map_err(field)?;
    if let Some(why) = check_file_name(file) {
        return Err(format!("package record: {why}"));
    }
    let path = match r.get("path") {
        None => None,
        Some(v) => Some(
            v.as_str()
                .ok_or_else(|| "package record: path is not a string".to_string())?
                .to_string(),
        ),
    };
    Ok((file.to_string(), path))
}

/// A file to transfer, as read, before the source directory is known.
struct Pending {
    loc: Loc,
    file: String,
    path: Option<String>,
    arch: Option<String>,
    batch: Option<String>,
}

/// A string field of a record, when it is a string.
fn str_field(r: &Record, field: &str) -> Option<String> {
    r.str(field).map(str::to_string)
}

/// The settings checked before any input is read (exit 2 when wrong).
struct Settings {
    dest: Option<String>,
    source: Option<PathBuf>,
    arch: Option<String>,
    batch: Option<String>,
    inputs: Vec<PathBuf>,
}

fn settings(args: &Args) -> Result<Settings, Error> {
    if let Some(a) = &args.host.arch {
        let ok = !a.is_empty()
            && a.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        if !ok {
            return Err(Error::Usage(format!("invalid MACHINE_ARCH {a:?}")));
        }
    }
    if let Some(b) = &args.host.batch {
        check_batch(b)?;
    }
    let mut inputs = args.files.clone();
    let mut dest = None;
    if args.text {
        // No destination: every operand is an input.
        if let Some(d) = &args.dest {
            inputs.insert(0, PathBuf::from(d));
        }
    } else {
        let d = args.dest.clone().unwrap_or_default();
        if d.is_empty() {
            return Err(Error::Usage("the destination DEST is missing".into()));
        }
        if d.starts_with('-') {
            return Err(Error::Usage(format!(
                "invalid destination {d:?}: starts with '-'"
            )));
        }
        if d.chars().any(char::is_control) {
            return Err(Error::Usage(format!(
                "invalid destination {d:?}: control character"
            )));
        }
        if let Some(why) = not_a_destination(&d) {
            return Err(Error::Usage(format!(
                "destination {d:?} {why}: the destination comes first (rsync-list DEST [FILE ...])"
            )));
        }
        dest = Some(d);
    }
    let source = match &args.source {
        Some(s) if !args.text => {
            if !s.is_dir() {
                return Err(Error::Usage(format!(
                    "--source {}: not a directory",
                    s.display()
                )));
            }
            // Absolute, so that rsync never takes it for host:path.
            Some(std::path::absolute(s).map_err(|e| Error::io(s, e))?)
        }
        Some(s) => Some(s.clone()),
        None => None,
    };
    if args.source.is_none() && !args.text {
        // The repository comes from the host: its tree and make must be there.
        args.host.check()?;
    }
    Ok(Settings {
        dest,
        source,
        arch: args.host.arch.clone(),
        batch: args.host.batch.clone(),
        inputs,
    })
}

/// A rejected input: an error on stderr, a notice in the records (but with
/// `-t`).
fn reject(diag: &Diag, text: bool, loc: &Loc, msg: String, notices: &mut Vec<Record>) {
    diag.error_at(loc, format_args!("{msg}: not transferred"));
    if !text {
        notices.push(Record::notice(
            TOOL,
            Level::Error,
            format!("{msg}: not transferred"),
        ));
    }
}

pub fn run(args: &Args, diag: &Diag) -> Result<Exit, Error> {
    let mut set = settings(args)?;
    let mut out = Output::stdout();
    let text = args.text;
    let Given {
        pending,
        mut notices,
        batch,
    } = read_input(&set, text, &mut out, diag)?;
    if set.batch.is_none() {
        set.batch = batch;
    }

    // Where the files are: --source, else this host's repository as make has it
    // (after the input went through, so that a make that fails loses no record).
    let mut log_root = args.log_dir.clone();
    let source = match &set.source {
        Some(s) => s.clone(),
        None if text => PathBuf::new(),
        None => match args.host.resolve() {
            Ok(h) => {
                log_root.get_or_insert_with(|| args.host.ports_dir.join("logs").join(&h.arch));
                h.packages(args.from.dir())
            }
            Err(e @ Error::Command { .. }) => {
                let m = format!("{e}: the repository is unknown: nothing transferred");
                diag.error(&m);
                notices.push(Record::notice(TOOL, Level::Error, m));
                for n in &mut notices {
                    stamp(n, None, None, &set);
                }
                for n in &notices {
                    out.record(n)?;
                }
                out.flush()?;
                return Ok(diag.finish(Exit::Failed));
            }
            Err(e) => return Err(e),
        },
    };
    let mut plan = Plan::default();
    for p in pending {
        if let (Some(path), false) = (&p.path, text) {
            // A record says where collect-built found the file; a path anywhere
            // else is refused: a record never chooses what is copied.
            if Path::new(path) != source.join(&p.file) {
                reject(
                    diag,
                    text,
                    &p.loc,
                    format!(
                        "package record: path {path:?} is not {:?}: only this host's repository is copied from",
                        source.join(&p.file).display().to_string()
                    ),
                    &mut notices,
                );
                continue;
            }
        }
        plan.add(&p.file, p.arch, p.batch);
    }
    let finished = if plan.entries.is_empty() {
        Exit::NothingToDo
    } else {
        Exit::Success
    };
    if text {
        let names: BTreeSet<&str> = plan.entries.iter().map(|e| e.file.as_str()).collect();
        for n in names {
            out.line(n)?;
        }
        out.flush()?;
        return Ok(diag.finish(finished));
    }

    let dest = set.dest.clone().unwrap_or_default();
    // The batch's journal of deliveries, when there is a batch and a log
    // directory: what an earlier, interrupted run of the batch delivered is
    // `sent` again (the rerun finds it unchanged), never lost from the mail.
    let mut journal = match (&log_root, &set.batch, args.dry_run) {
        (Some(root), Some(b), false) => match Delivered::open(&root.join(b)) {
            Ok(j) => Some(j),
            Err(e) => {
                diag.warn(format_args!(
                    "warning: {e}: what this run delivers is not journaled"
                ));
                None
            }
        },
        _ => None,
    };
    let outcomes = send(args, &source, &dest, &plan, journal.as_mut(), diag);
    if let Some(j) = journal.as_mut() {
        j.sync(diag);
    }

    for n in &mut notices {
        stamp(n, None, None, &set);
    }
    for n in &notices {
        out.record(n)?;
    }
    for (e, o) in plan.entries.iter().zip(outcomes) {
        let o = o.unwrap_or_else(|| Outcome::Failed("not transferred".into()));
        let mut r = Record::new(Kind::Transfer);
        r.set("file", e.file.as_str());
        r.set("dest", dest.as_str());
        r.set("status", o.status());
        if let Outcome::Failed(m) = &o {
            r.set("message", m.as_str());
        }
        if args.dry_run {
            r.set("dry_run", true);
        }
        stamp(&mut r, e.batch.as_deref(), e.arch.as_deref(), &set);
        out.record(&r)?;
    }
    out.flush()?;
    Ok(diag.finish(finished))
}

/// What the input gave.
struct Given {
    /// The files to send, to be checked against the source.
    pending: Vec<Pending>,
    /// Of what was refused.
    notices: Vec<Record>,
    /// The batch the records name.
    batch: Option<String>,
}

/// Read the input: records pass on (but with `-t`), package records and plain
/// file names are the files to send, checked.  Returns them, the notices of
/// what was refused, and the batch the records name.
fn read_input(set: &Settings, text: bool, out: &mut Output, diag: &Diag) -> Result<Given, Error> {
    let mut pending: Vec<Pending> = Vec::new();
    let mut notices: Vec<Record> = Vec::new();
    let mut learned_batch: Option<String> = None;
    Inputs::new(&set.inputs).for_each(diag, |item, loc: &Loc| {
        match item {
            Item::Record(r) => {
                if !text {
                    out.record(&r)?;
                }
                if let Err(e) = crate::host::learn_batch(&mut learned_batch, &r) {
                    reject(diag, text, loc, e.to_string(), &mut notices);
                }
                if !r.is(Kind::Package) {
                    return Ok(());
                }
                match package_file(&r) {
                    Ok((file, path)) => pending.push(Pending {
                        loc: loc.clone(),
                        file,
                        path,
                        arch: str_field(&r, "arch"),
                        batch: str_field(&r, "batch"),
                    }),
                    Err(m) => reject(diag, text, loc, m, &mut notices),
                }
            }
            Item::Text(name) => {
                if let Some(why) = check_file_name(&name) {
                    reject(diag, text, loc, why, &mut notices);
                    return Ok(());
                }
                pending.push(Pending {
                    loc: loc.clone(),
                    file: name,
                    path: None,
                    arch: None,
                    batch: None,
                });
            }
        }
        Ok(())
    })?;
    Ok(Given {
        pending,
        notices,
        batch: learned_batch,
    })
}

/// Send the files of the plan that are in `source` (the others fail now) with
/// one rsync; what each became, in the plan's order.
fn send(
    args: &Args,
    source: &Path,
    dest: &str,
    plan: &Plan,
    journal: Option<&mut Delivered>,
    diag: &Diag,
) -> Vec<Option<Outcome>> {
    let mut outcomes: Vec<Option<Outcome>> = vec![None; plan.entries.len()];
    let mut names: Vec<(usize, &str)> = Vec::new();
    for (i, e) in plan.entries.iter().enumerate() {
        let path = source.join(&e.file);
        match fs::metadata(&path) {
            Ok(m) if m.is_file() => names.push((i, &e.file)),
            Ok(_) => {
                let m = format!("{}: not a regular file", path.display());
                diag.error(format_args!("{m}: not transferred"));
                outcomes[i] = Some(Outcome::Failed(m));
            }
            Err(err) => {
                let m = format!("{}: {}", path.display(), io_message(&err));
                diag.error(format_args!("{m}: not transferred"));
                outcomes[i] = Some(Outcome::Failed(m));
            }
        }
    }
    if names.is_empty() {
        return outcomes;
    }
    let list: Vec<&str> = names.iter().map(|(_, n)| *n).collect();
    let earlier = journal
        .as_ref()
        .map(|j| j.earlier.clone())
        .unwrap_or_default();
    let dest = dest.to_string();
    let got = transfer(args, source, &dest, &list, diag, journal);
    for ((i, n), o) in names.iter().zip(got) {
        // Unchanged, but delivered by an earlier run of this batch.
        let o = match o {
            Outcome::Unchanged if earlier.contains(&(dest.clone(), n.to_string())) => Outcome::Sent,
            o => o,
        };
        outcomes[*i] = Some(o);
    }
    outcomes
}

/// Stamp `batch` and `arch`: those of the package record, else the settings.
fn stamp(r: &mut Record, batch: Option<&str>, arch: Option<&str>, set: &Settings) {
    if let Some(b) = batch.or(set.batch.as_deref()) {
        r.set_default("batch", b);
    }
    if let Some(a) = arch.or(set.arch.as_deref()) {
        r.set_default("arch", a);
    }
}

/// An I/O error as a person reads it, without Rust's `(os error N)`.
fn io_message(e: &io::Error) -> String {
    let s = e.to_string();
    match s.find(" (os error ") {
        Some(i) => s[..i].to_string(),
        None => s,
    }
}

/// One line of rsync's `--out-format='%i %b %n'` output: whether the file was
/// sent (`<`, `>`, `c`, `h`) or only looked at (`.`), and its name.  Directory
/// lines and rsync's own messages are `None`.
fn parse_item(line: &str) -> Option<(bool, &str)> {
    let mut it = line.splitn(3, ' ');
    let code = it.next()?.as_bytes();
    let bytes = it.next()?;
    let name = it.next()?;
    if code.len() < 2
        || code[1] != b'f'
        || bytes.is_empty()
        || !bytes
            .bytes()
            .all(|b| b.is_ascii_digit() || b == b',' || b == b'.')
    {
        return None;
    }
    match code[0] {
        b'<' | b'>' | b'c' | b'h' => Some((true, name)),
        b'.' => Some((false, name)),
        _ => None,
    }
}

/// Whether an rsync error line is about `file`: a word of it, or the last part
/// of a path in it, is the file or rsync's temporary `.<file>.XXXXXX`.
fn names_file(line: &str, file: &str) -> bool {
    line.split(|c: char| c.is_whitespace() || c == '"' || c == '\'')
        .map(|w| w.trim_end_matches([':', ',']))
        .map(|w| w.rsplit('/').next().unwrap_or(w))
        .any(|w| {
            w == file
                || w.strip_prefix('.')
                    .and_then(|t| t.strip_prefix(file))
                    .is_some_and(|rest| rest.starts_with('.'))
        })
}

/// The lines of a program's output, read to the end: the first `keep` bytes of
/// them, and the last few lines in any case.
fn read_lines(r: impl Read, keep: usize) -> Vec<String> {
    let mut r = BufReader::new(r);
    let mut lines = Vec::new();
    let mut late: VecDeque<String> = VecDeque::new();
    let mut kept = 0;
    let mut buf = Vec::new();
    loop {
        buf.clear();
        match r.read_until(b'\n', &mut buf) {
            Ok(0) => break,
            Ok(n) => {
                let l = String::from_utf8_lossy(&buf);
                let l = l.trim_end_matches(['\n', '\r']).to_string();
                if kept < keep {
                    kept += n;
                    lines.push(l);
                } else {
                    if late.len() == TAIL_LINES {
                        late.pop_front();
                    }
                    late.push_back(l);
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => break,
        }
    }
    lines.extend(late);
    lines
}

/// The last lines of a program's standard error, as one line.
fn tail(stderr: &[String]) -> String {
    crate::tail::text(&stderr.join("\n"), TAIL_LINES, "; ", TAIL_BYTES)
}

fn describe(status: ExitStatus) -> String {
    match status.code() {
        Some(c) => format!("exit {c}"),
        None => {
            #[cfg(unix)]
            {
                use std::os::unix::process::ExitStatusExt;
                if let Some(s) = status.signal() {
                    return format!("killed by signal {s}");
                }
            }
            status.to_string()
        }
    }
}

/// Why a local DEST is surely an input file given where the destination goes
/// (`rsync-list done.jsonl`, the destination forgotten): an existing file
/// that is no directory, or a name of records.  rsync would make a directory
/// of that name and copy the packages into it.
fn not_a_destination(d: &str) -> Option<&'static str> {
    // host:path is remote: nothing to look at here.
    let local = !d.split('/').next().unwrap_or("").contains(':');
    if !local {
        return None;
    }
    let p = Path::new(d);
    if fs::metadata(p).is_ok_and(|m| !m.is_dir()) {
        return Some("is a file, not a directory");
    }
    let name = d.trim_end_matches('/');
    if name.ends_with(".jsonl") || name.ends_with(".json") {
        return Some("is a name of records, not a directory");
    }
    None
}

/// DEST as a directory for rsync: with a trailing `/`, or else rsync copies a
/// list of one file to a DEST that does not exist as that file.  `host:` (the
/// remote home directory) stays as it is.
fn dest_dir(dest: &str) -> String {
    if dest.ends_with(['/', ':']) {
        dest.to_string()
    } else {
        format!("{dest}/")
    }
}

/// What one rsync said: how it ended, each file it named (sent, or only
/// looked at), the lines of its standard error.
struct Rsynced {
    status: std::process::ExitStatus,
    reported: HashMap<String, bool>,
    errlines: Vec<String>,
}

/// Run rsync once for the files `names` of `src`; their outcomes, in order.
fn transfer(
    args: &Args,
    src: &Path,
    dest: &str,
    names: &[&str],
    diag: &Diag,
    journal: Option<&mut Delivered>,
) -> Vec<Outcome> {
    let r = match rsync(args, src, dest, names, diag, journal) {
        Ok(r) => r,
        Err(m) => {
            diag.error(format_args!(
                "{} to {dest}: {m}: {} file(s) not transferred",
                src.display(),
                names.len()
            ));
            return names.iter().map(|_| Outcome::Failed(m.clone())).collect();
        }
    };
    if r.status.success() {
        return names.iter().map(|n| r.outcome(n)).collect();
    }
    failed(args, src, dest, names, &r, diag)
}

impl Rsynced {
    /// What rsync said of a file: sent, or there already.
    fn outcome(&self, name: &str) -> Outcome {
        match self.reported.get(name) {
            Some(true) => Outcome::Sent,
            _ => Outcome::Unchanged,
        }
    }
}

/// Run rsync over the files, reading what it says as it goes (each file sent
/// goes to the journal at once).  `Err` when it could not be run.
fn rsync(
    args: &Args,
    src: &Path,
    dest: &str,
    names: &[&str],
    diag: &Diag,
    mut journal: Option<&mut Delivered>,
) -> Result<Rsynced, String> {
    let program = args.rsync.to_string_lossy().into_owned();
    let list = files_from(names)?;
    let more: &[&str] = if args.dry_run { &["--dry-run"] } else { &[] };
    let mut cmd = rsync_command(args, src, dest, list.path(), more);
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());

    diag.progress(format_args!(
        "rsync {} file(s) from {} to {dest}",
        names.len(),
        src.display()
    ));
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Err(format!(
                "{program}: not found: install it (apt-get install rsync, pkg_add rsync) or give --rsync"
            ))
        }
        Err(e) => return Err(format!("{program}: cannot run: {}", io_message(&e))),
    };
    // Both pipes are read to the end, whatever comes, so that rsync never blocks.
    let stderr = child
        .stderr
        .take()
        .map(|e| std::thread::spawn(move || read_lines(e, STDERR_KEPT)));
    // File name -> sent (true) or looked at (false), from rsync's own lines.
    let mut reported: HashMap<String, bool> = HashMap::new();
    if let Some(o) = child.stdout.take() {
        let mut r = BufReader::new(o);
        let mut buf = Vec::new();
        loop {
            buf.clear();
            match r.read_until(b'\n', &mut buf) {
                Ok(0) => break,
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => break,
            }
            let line = String::from_utf8_lossy(&buf);
            if let Some((sent, name)) = parse_item(line.trim_end_matches(['\n', '\r'])) {
                if sent {
                    diag.progress(format_args!("sent {name} to {dest}"));
                    if let Some(j) = journal.as_deref_mut() {
                        j.add(dest, name, diag);
                    }
                }
                *reported.entry(name.to_string()).or_default() |= sent;
            }
        }
    }
    let status = child.wait();
    let errlines = stderr.and_then(|t| t.join().ok()).unwrap_or_default();
    let status = status.map_err(|e| format!("{program}: {}", io_message(&e)))?;
    Ok(Rsynced {
        status,
        reported,
        errlines,
    })
}

/// rsync failed: a file an error line names failed with that line; on a
/// partial transfer (exit 23, 24) the others are as rsync said, otherwise
/// what it did not report failed; what it said it sent is checked at the
/// destination.
fn failed(
    args: &Args,
    src: &Path,
    dest: &str,
    names: &[&str],
    r: &Rsynced,
    diag: &Diag,
) -> Vec<Outcome> {
    let program = args.rsync.to_string_lossy();
    let named: HashMap<&str, &str> = names
        .iter()
        .filter_map(|n| {
            r.errlines
                .iter()
                .find(|l| names_file(l, n))
                .map(|l| (*n, l.trim()))
        })
        .collect();
    let mut whole = format!(
        "{program} failed ({}): {}",
        describe(r.status),
        tail(&r.errlines)
    );
    if r.errlines.iter().any(|l| l.contains("Failed to exec ssh")) {
        whole.push_str(" (install ssh: apt-get install openssh-client, or give --rsh)");
    }
    let partial = matches!(r.status.code(), Some(23 | 24)) && !named.is_empty();
    let mut outcomes: Vec<Outcome> = names
        .iter()
        .map(|n| {
            if let Some(l) = named.get(n) {
                diag.error(format_args!(
                    "{}: {l}: not transferred",
                    src.join(n).display()
                ));
                Outcome::Failed(l.to_string())
            } else if r.reported.contains_key(*n) || partial {
                r.outcome(n)
            } else {
                Outcome::Failed(whole.clone())
            }
        })
        .collect();
    if !args.dry_run {
        check_arrived(args, src, dest, names, &mut outcomes, &whole, diag);
    }
    let lost = outcomes
        .iter()
        .filter(|o| matches!(o, Outcome::Failed(m) if *m == whole))
        .count();
    if lost > 0 {
        diag.error(format_args!(
            "{} to {dest}: {whole}: {lost} file(s) not transferred",
            src.display()
        ));
    } else if named.is_empty() {
        // Every file was reported, yet rsync failed: still say so.
        diag.error(format_args!("{} to {dest}: {whole}", src.display()));
    }
    outcomes
}

/// rsync names a file when it is done with it, yet a failure after that (a
/// full disk when it renames its temporary file) can lose it: what rsync said
/// it sent is checked against what is at the destination.
fn check_arrived(
    args: &Args,
    src: &Path,
    dest: &str,
    names: &[&str],
    outcomes: &mut [Outcome],
    whole: &str,
    diag: &Diag,
) {
    let said: Vec<&str> = names
        .iter()
        .zip(outcomes.iter())
        .filter(|(_, o)| !matches!(o, Outcome::Failed(_)))
        .map(|(n, _)| *n)
        .collect();
    if said.is_empty() {
        return;
    }
    match differing(args, src, dest, &said) {
        Ok(missing) => {
            for (n, o) in names.iter().zip(outcomes.iter_mut()) {
                if missing.contains(*n) && !matches!(o, Outcome::Failed(_)) {
                    let m = format!("not at the destination after {whole}");
                    diag.error(format_args!(
                        "{}: {m}: not transferred",
                        src.join(n).display()
                    ));
                    *o = Outcome::Failed(m);
                }
            }
        }
        Err(e) => {
            for (n, o) in names.iter().zip(outcomes.iter_mut()) {
                if said.contains(n) {
                    *o =
                        Outcome::Failed(format!("{whole}; whether it arrived cannot be told: {e}"));
                }
            }
        }
    }
}

/// The journal of what the runs of a batch delivered, `<log-dir>/<batch>/
/// delivered`: a line `<dest> TAB <file>` for each file rsync named as sent,
/// appended as rsync names it (a run killed on the way keeps what it sent).
struct Delivered {
    path: PathBuf,
    file: fs::File,
    /// What earlier runs wrote: (dest, file).
    earlier: HashSet<(String, String)>,
}

impl Delivered {
    fn open(dir: &Path) -> Result<Delivered, String> {
        let path = dir.join("delivered");
        fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let text = match fs::read(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(format!("{}: {e}", path.display())),
        };
        let earlier = String::from_utf8_lossy(&text)
            .lines()
            .filter_map(|l| l.split_once('\t'))
            .map(|(d, f)| (d.to_string(), f.to_string()))
            .collect();
        let file = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(|e| format!("{}: {e}", path.display()))?;
        Ok(Delivered {
            path,
            file,
            earlier,
        })
    }

    fn add(&mut self, dest: &str, file: &str, diag: &Diag) {
        if dest.contains(['\t', '\n']) {
            return;
        }
        if let Err(e) = writeln!(self.file, "{dest}\t{file}") {
            diag.warn(format_args!("warning: {}: {e}", self.path.display()));
        }
    }

    fn sync(&mut self, diag: &Diag) {
        if let Err(e) = self.file.sync_all() {
            diag.warn(format_args!("warning: {}: {e}", self.path.display()));
        }
    }
}

/// A files-from list of `names`, sorted as rsync's manual advises, in a
/// temporary file removed when dropped.
fn files_from(names: &[&str]) -> Result<tempfile::NamedTempFile, String> {
    let mut sorted = names.to_vec();
    sorted.sort_unstable();
    tempfile::Builder::new()
        .prefix("rsync-list.")
        .suffix(".files")
        .tempfile()
        .and_then(|mut f| {
            for n in &sorted {
                writeln!(f, "{n}")?;
            }
            f.flush()?;
            Ok(f)
        })
        .map_err(|e| format!("cannot write the files-from list: {e}"))
}

/// `rsync -a --copy-links --files-from=LIST --out-format='%i %b %n' [MORE]
/// [--rsh=CMD] -- SRC/ DEST/`.
fn rsync_command(args: &Args, src: &Path, dest: &str, list: &Path, more: &[&str]) -> Command {
    let mut srcarg = src.as_os_str().to_owned();
    if !src.as_os_str().as_encoded_bytes().ends_with(b"/") {
        srcarg.push("/");
    }
    let mut from = OsString::from("--files-from=");
    from.push(list);
    let mut cmd = Command::new(&args.rsync);
    cmd.arg("-a")
        .arg("--copy-links")
        .arg(from)
        .arg("--out-format=%i %b %n")
        .args(more);
    if let Some(rsh) = &args.rsh {
        cmd.arg(format!("--rsh={rsh}"));
    }
    cmd.arg("--").arg(&srcarg).arg(dest_dir(dest));
    cmd
}

/// Which of `names` are not at the destination as they are in `src`: a dry run
/// of rsync comparing checksums names every file it would still send.
fn differing(
    args: &Args,
    src: &Path,
    dest: &str,
    names: &[&str],
) -> Result<HashSet<String>, String> {
    let list = files_from(names)?;
    let out = rsync_command(args, src, dest, list.path(), &["--dry-run", "--checksum"])
        .stdin(Stdio::null())
        .output()
        .map_err(|e| io_message(&e))?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        let lines: Vec<String> = err.lines().map(str::to_string).collect();
        return Err(format!(
            "rsync --dry-run --checksum: {}: {}",
            describe(out.status),
            tail(&lines)
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(parse_item)
        .filter(|(sent, _)| *sent)
        .map(|(_, n)| n.to_string())
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names() {
        for ok in [
            "curl-8.9.1.tgz",
            "debug-vim-9.1.0-gtk2.tgz",
            "gtk+3-3.24.tgz",
            "a..b",
        ] {
            assert_eq!(check_file_name(ok), None, "{ok}");
        }
        for (bad, why) in [
            ("", "empty"),
            ("a/b.tgz", "contains '/'"),
            ("..", "starts with '.'"),
            (".hidden", "starts with '.'"),
            ("-rf.tgz", "starts with '-'"),
            ("#x.tgz", "starts with '#'"),
            (";x.tgz", "starts with ';'"),
            ("a b.tgz", "character ' ' not allowed"),
            ("a\u{1}.tgz", "character '\\u{1}' not allowed"),
            ("caf\u{e9}.tgz", "character 'é' not allowed"),
        ] {
            let m = check_file_name(bad).unwrap_or_default();
            assert!(m.ends_with(why), "{bad:?}: {m}");
        }
    }

    #[test]
    fn package_records() {
        let r = |s: &str| Record::parse(s).unwrap();
        // The name is taken; the path only carried along, to be checked.
        assert_eq!(
            package_file(&r(
                r#"{"kind":"package","v":1,"file":"a.tgz","path":"/p/amd64/ftp/a.tgz"}"#
            )),
            Ok(("a.tgz".into(), Some("/p/amd64/ftp/a.tgz".into())))
        );
        assert_eq!(
            package_file(&r(r#"{"kind":"package","v":1,"file":"a.tgz"}"#)),
            Ok(("a.tgz".into(), None))
        );
        for (bad, why) in [
            (
                r#"{"kind":"package","v":1,"path":"/p/a.tgz"}"#,
                "field \"file\" is missing",
            ),
            (
                r#"{"kind":"package","v":1,"file":"a.tgz","path":7}"#,
                "path is not a string",
            ),
            (
                r#"{"kind":"package","v":1,"file":"..","path":"/p/.."}"#,
                "invalid file name \"..\": starts with '.'",
            ),
        ] {
            let e = package_file(&r(bad)).unwrap_err();
            assert!(e.contains(why), "{bad}: {e}");
        }
    }

    #[test]
    fn rsync_lines() {
        assert_eq!(parse_item(">f+++++++++ 45 a.tgz"), Some((true, "a.tgz")));
        assert_eq!(parse_item("<f.st...... 1,024 a.tgz"), Some((true, "a.tgz")));
        assert_eq!(parse_item(".f...p..... 0 b.tgz"), Some((false, "b.tgz")));
        assert_eq!(parse_item("cd+++++++++ 0 ./"), None);
        assert_eq!(parse_item("created directory /x/y"), None);
        assert_eq!(parse_item("*deleting x"), None);
    }

    #[test]
    fn error_lines_name_files() {
        let l = r#"rsync: [receiver] mkstemp "/d/.curl-8.9.1.tgz.Ab12Cd" failed: Permission denied (13)"#;
        assert!(names_file(l, "curl-8.9.1.tgz"));
        assert!(!names_file(l, "debug-curl-8.9.1.tgz"));
        let l = r#"rsync: [sender] link_stat "/s/debug-curl-8.9.1.tgz" failed: No such file"#;
        assert!(names_file(l, "debug-curl-8.9.1.tgz"));
        assert!(!names_file(l, "curl-8.9.1.tgz"));
        assert!(!names_file("rsync error: code 23", "a.tgz"));
    }

    #[test]
    fn destinations() {
        assert_eq!(dest_dir("/a/b"), "/a/b/");
        assert_eq!(dest_dir("/a/b/"), "/a/b/");
        assert_eq!(dest_dir("signer:/build"), "signer:/build/");
        assert_eq!(dest_dir("signer:"), "signer:");
    }

    #[test]
    fn long_output_is_read_to_the_end() {
        let text: String = (0..1000).map(|i| format!("line {i}\n")).collect();
        let lines = read_lines(text.as_bytes(), 100);
        assert_eq!(lines.len(), 14 + TAIL_LINES); // 10 of 7 bytes, 4 of 8
        assert_eq!(lines[0], "line 0");
        assert_eq!(lines.last().map(String::as_str), Some("line 999"));
    }
}
