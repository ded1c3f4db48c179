//! The interface to the ports tree (DESIGN.md section 4).
//!
//! portflow drives the tree only through the commands a porter types in PORTSDIR:
//! `env SUBDIRLIST=<file> REPORT_PROBLEM_LOGFILE=<file> make <target>`.  SUBDIRLIST
//! goes in make's environment, never on its command line (OpenBSD's bsd.port.mk
//! fails every port then), and every walk has a problem log, so that one bad entry
//! never stops the others.  The list always goes through a temporary file, never
//! through a shell string.  The host's own settings (PACKAGE_REPOSITORY, WRKOBJDIR,
//! ... from /etc/mk.conf or MAKECONF) are asked of make, the way dpb(1) asks:
//! `make -C / -f - show=...` over a makefile with `DUMMY_PACKAGE=Yes` that includes
//! `<bsd.port.mk>`.  Only a value the user gave explicitly goes on make's command
//! line ([`PortsTree::set`]).  It also answers, from the files of the checkout,
//! which directories are ports: a directory with a Makefile that is not a
//! `bsd.port.subdir.mk` (category or group) Makefile.

use std::collections::HashMap;
use std::ffi::OsString;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::Error;

/// The default make program (`make` on OpenBSD; the tests use `bmake`).
pub const DEFAULT_MAKE: &str = "make";

/// A ports tree and the make program that drives it.
#[derive(Debug, Clone)]
pub struct PortsTree {
    root: PathBuf,
    make: OsString,
    env: Vec<(OsString, OsString)>,
    /// `VAR=value` on make's command line: only what the user gave explicitly.
    overrides: Vec<(String, OsString)>,
}

/// What a walk over a list printed, and the entries it reported as problems.
#[derive(Debug, Default)]
pub struct Walk {
    /// Standard output.
    pub output: String,
    /// The entries of REPORT_PROBLEM_LOGFILE, as written in the list.
    pub problems: Vec<String>,
}

/// The entries of a REPORT_PROBLEM_LOGFILE: `<fullpkgpath> (<target>)` lines.
pub fn problem_entries(text: &str) -> Vec<String> {
    text.lines()
        .filter_map(|l| {
            let e = l.rsplit_once(" (").map_or(l, |(p, _)| p).trim();
            (!e.is_empty()).then(|| e.to_string())
        })
        .collect()
}

/// The variables make must never get on its command line: OpenBSD's bsd.port.mk
/// fails every port when one of them is there.
pub const ENV_ONLY: &[&str] = &["SUBDIRLIST", "FLAVOR", "SUBPACKAGE", "SUBDIR"];

/// A SUBDIRLIST file: one fullpkgpath a line, removed when dropped.
pub struct SubdirList {
    file: tempfile::NamedTempFile,
}

impl SubdirList {
    /// Write `entries` to a new temporary file.  The entries must be validated
    /// pkgpaths: a line break in one would make two entries.
    pub fn new<S: AsRef<str>>(entries: &[S]) -> Result<Self, Error> {
        Self::new_in(&std::env::temp_dir(), entries)
    }

    /// Like [`SubdirList::new`], with the file in `dir` (a log directory, where
    /// a killed run's list stays beside its logs).
    pub fn new_in<S: AsRef<str>>(dir: &Path, entries: &[S]) -> Result<Self, Error> {
        let mut file = tempfile::Builder::new()
            .prefix("portflow-subdirlist.")
            .tempfile_in(dir)
            .map_err(|e| Error::io(dir, e))?;
        let mut text = String::new();
        for e in entries {
            text.push_str(e.as_ref());
            text.push('\n');
        }
        file.write_all(text.as_bytes())
            .and_then(|_| file.flush())
            .map_err(|e| Error::io(file.path(), e))?;
        Ok(SubdirList { file })
    }

    pub fn path(&self) -> &Path {
        self.file.path()
    }
}

impl PortsTree {
    pub fn new(root: impl Into<PathBuf>, make: impl Into<OsString>) -> Self {
        PortsTree {
            root: root.into(),
            make: make.into(),
            env: Vec::new(),
            overrides: Vec::new(),
        }
    }

    /// Give make `var=value` on its command line, for every command: a value the
    /// user gave explicitly (a flag), which wins over mk.conf for make as for the
    /// tool.  Never one of [`ENV_ONLY`].
    pub fn set(mut self, var: &str, value: impl Into<OsString>) -> Self {
        debug_assert!(!ENV_ONLY.contains(&var));
        let value = value.into();
        self.overrides.retain(|(k, _)| k != var);
        self.overrides.push((var.to_string(), value));
        self
    }

    /// The value given to make on its command line for `var`, if any.
    pub fn given(&self, var: &str) -> Option<&OsString> {
        self.overrides
            .iter()
            .find_map(|(k, v)| (k == var).then_some(v))
    }

    /// The values make uses for `vars` on this host (mk.conf and the
    /// explicit values included), asked the way dpb(1) asks them: `make -C / -f -
    /// show="<vars>"` over `DUMMY_PACKAGE=Yes` and `.include <bsd.port.mk>`.
    pub fn settings(&self, vars: &[&str]) -> Result<Vec<String>, Error> {
        let mut c = self.base_command();
        c.current_dir("/")
            .args(["-C", "/", "-f", "-"])
            .arg(format!("show={}", vars.join(" ")))
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        self.add_overrides(&mut c);
        let mut child = c.spawn().map_err(|e| self.spawn_error(e))?;
        if let Some(mut stdin) = child.stdin.take() {
            // A make that exits early closes the pipe: its status tells why.
            let _ = stdin.write_all(b"DUMMY_PACKAGE=Yes\n.include <bsd.port.mk>\n");
        }
        let out = child.wait_with_output().map_err(|e| self.spawn_error(e))?;
        let text = String::from_utf8_lossy(&out.stdout);
        let lines: Vec<String> = text.lines().map(|l| l.trim().to_string()).collect();
        if !out.status.success() || lines.len() != vars.len() {
            return Err(Error::Command {
                program: self.make.to_string_lossy().into_owned(),
                message: format!(
                    "cannot ask make for the host's settings ({}) in {}: {}: {}",
                    vars.join(" "),
                    self.root.display(),
                    out.status,
                    crate::tail::short(&String::from_utf8_lossy(&out.stderr), 3)
                ),
            });
        }
        Ok(lines)
    }

    /// make, with the environment of every command: PORTSDIR and the extra
    /// variables.
    fn base_command(&self) -> Command {
        let mut c = Command::new(&self.make);
        c.env("PORTSDIR", &self.root);
        c.envs(self.env.iter().map(|(k, v)| (k, v)));
        c
    }

    fn add_overrides(&self, c: &mut Command) {
        for (k, v) in &self.overrides {
            let mut a = OsString::from(k);
            a.push("=");
            a.push(v);
            c.arg(a);
        }
    }

    /// Add a variable to make's environment (MAKESYSPATH for bmake, say).
    pub fn env(mut self, key: impl Into<OsString>, value: impl Into<OsString>) -> Self {
        self.env.push((key.into(), value.into()));
        self
    }

    /// Check that `root` is a ports tree directory (exit 2 otherwise).
    pub fn open(root: impl Into<PathBuf>, make: impl Into<OsString>) -> Result<Self, Error> {
        let root = root.into();
        match fs::metadata(&root) {
            Ok(m) if m.is_dir() => {}
            Ok(_) => {
                return Err(Error::Usage(format!(
                    "{}: ports tree is not a directory",
                    root.display()
                )))
            }
            Err(e) => return Err(Error::Usage(format!("{}: ports tree: {e}", root.display()))),
        }
        Ok(PortsTree::new(root, make))
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn make(&self) -> &OsString {
        &self.make
    }

    /// The command `env SUBDIRLIST=<list> REPORT_PROBLEM_LOGFILE=<problems> make
    /// <target> <vars...>` in PORTSDIR, ready to be given stdio and spawned.  Every
    /// variable is one argument: nothing goes through a shell.  `vars` are
    /// make's command-line variables (BULK=yes, clean=all), never one of
    /// [`ENV_ONLY`]; the user's explicit values follow them.
    pub fn command(
        &self,
        target: &str,
        list: &SubdirList,
        problems: &Path,
        vars: &[(&str, &str)],
    ) -> Command {
        let mut c = self.base_command();
        c.current_dir(&self.root)
            .env("SUBDIRLIST", list.path())
            .env("REPORT_PROBLEM_LOGFILE", problems)
            .arg(target);
        for (k, v) in vars {
            debug_assert!(!ENV_ONLY.contains(k));
            c.arg(format!("{k}={v}"));
        }
        self.add_overrides(&mut c);
        c
    }

    /// Run `make show=<var>` over `entries` with a problem log: its stdout, and
    /// the entries it reported (an entry that does not exist, a Makefile that
    /// fails), while the others go on.
    pub fn show<S: AsRef<str>>(&self, var: &str, entries: &[S]) -> Result<Walk, Error> {
        let list = SubdirList::new(entries)?;
        let problems = tempfile::Builder::new()
            .prefix("portflow-problems.")
            .tempfile()
            .map_err(|e| Error::io(std::env::temp_dir(), e))?;
        let out = self
            .command(&format!("show={var}"), &list, problems.path(), &[])
            .stdin(std::process::Stdio::null())
            .output()
            .map_err(|e| self.spawn_error(e))?;
        if !out.status.success() {
            return Err(Error::Command {
                program: self.make.to_string_lossy().into_owned(),
                message: format!(
                    "show={var} failed ({}): {}",
                    out.status,
                    crate::tail::short(&String::from_utf8_lossy(&out.stderr), 5)
                ),
            });
        }
        let output = String::from_utf8(out.stdout).map_err(|_| Error::Command {
            program: self.make.to_string_lossy().into_owned(),
            message: format!("show={var}: output is not UTF-8"),
        })?;
        let text =
            fs::read_to_string(problems.path()).map_err(|e| Error::io(problems.path(), e))?;
        Ok(Walk {
            output,
            problems: problem_entries(&text),
        })
    }

    /// The error for a make program that could not be started.
    pub fn spawn_error(&self, e: std::io::Error) -> Error {
        let make = self.make.to_string_lossy().into_owned();
        let message = if e.kind() == std::io::ErrorKind::NotFound {
            format!("not found: {e} (set --make or MAKE; on Debian: apt-get install bmake)")
        } else {
            e.to_string()
        };
        Error::Command {
            program: make,
            message,
        }
    }
}

/// The entry of a `>> Broken dependency: <entry> non existent` line: make's
/// words for an entry whose directory does not exist (it prints no header).
pub fn broken_dependency(line: &str) -> Option<&str> {
    let e = line
        .strip_prefix(">> Broken dependency: ")?
        .trim_end()
        .strip_suffix(" non existent")?;
    (!e.is_empty()).then_some(e)
}

/// The package file a `Create <path>` line of make's output names (bsd.port.mk
/// prints one for each package file it makes, dependencies built on the way
/// included): its file name, when it is one a repository can hold
/// (`curl-8.9.1.tgz`); `None` for any other line.
pub fn created_package(line: &str) -> Option<&str> {
    let path = line.strip_prefix("Create ")?.trim_end();
    let name = path.rsplit('/').next()?;
    valid_package_file(name).then_some(name)
}

/// A package file name: `<pkgname>.tgz` (see [`valid_pkgname`]).
pub fn valid_package_file(name: &str) -> bool {
    name.strip_suffix(".tgz").is_some_and(valid_pkgname)
}

/// A package name usable as a file name in the repository: printable, no `/`,
/// not hidden, no leading `-`.
pub fn valid_pkgname(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with(['.', '-'])
        && name
            .bytes()
            .all(|b| b.is_ascii_graphic() && b != b'/' && b != b'\\')
}

/// Split the output of a recursive target at its `===> <fullpkgpath>` headers:
/// `(entry, lines after it)`.  Lines before the first header go under `""`.
pub fn split_headers(output: &str) -> Vec<(&str, Vec<&str>)> {
    let mut v: Vec<(&str, Vec<&str>)> = Vec::new();
    for line in output.lines() {
        if let Some(e) = header(line) {
            v.push((e, Vec::new()));
        } else {
            match v.last_mut() {
                Some((_, lines)) => lines.push(line),
                None => v.push(("", vec![line])),
            }
        }
    }
    v
}

/// The fullpkgpath of a `===> <fullpkgpath>` line.
pub fn header(line: &str) -> Option<&str> {
    let e = line.strip_prefix("===> ")?.trim();
    (!e.is_empty() && !e.contains(' ')).then_some(e)
}

/// What a directory of the checkout is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DirKind {
    /// A port: its Makefile includes `bsd.port.mk`, no port is above it, and
    /// either the SUBDIR list of its group names it (see [`PortDirs::hooked`]) or
    /// it sits in a group under a name that is not `pkg`, `patches` or `files`
    /// (a port commented out of its category: make builds it when a list names
    /// it).  A port Makefile anywhere else (`tests/`, a stray `pkg/Makefile`) makes
    /// no port.
    Port,
    /// The top, a category or a group of ports (`lang/php`): a Makefile that
    /// includes `bsd.port.subdir.mk`.
    Group,
    /// Anything else that exists: inside a port (`pkg/`, `patches/`), a directory
    /// without a Makefile, a Makefile of another kind.
    Plain,
    /// Not in the checkout.
    Missing,
}

/// Subdirectories of a port that never hold ports.
pub const PORT_SUBDIRS: &[&str] = &["pkg", "patches", "files"];

/// What the files say a directory is, before the nesting and SUBDIR rules.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Read {
    /// A port Makefile.
    Port,
    /// A group Makefile and the names its SUBDIR lists, sorted.
    Group(Vec<String>),
    Plain,
    Missing,
}

/// Classifies directories of a checkout, each read once.
pub struct PortDirs {
    root: PathBuf,
    /// The kind of a directory and whether the SUBDIR lists reach it from the top.
    cache: HashMap<String, (DirKind, bool)>,
    /// The names the SUBDIR list of a group holds, sorted.
    subdirs: HashMap<String, Vec<String>>,
    /// Holds the Makefile being read.
    buf: Vec<u8>,
}

impl PortDirs {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        PortDirs {
            root: root.into(),
            cache: HashMap::new(),
            subdirs: HashMap::new(),
            buf: Vec::new(),
        }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The kind of `dir` (relative to the root; `""` is the root).
    pub fn kind(&mut self, dir: &str) -> DirKind {
        self.entry(dir).0
    }

    /// Do the SUBDIR lists reach `dir` from the top of the tree, the way make's
    /// walk over the whole tree (and sqlports) does?  Each group on the way names
    /// the next directory in its SUBDIR (`SUBDIR += vim,gtk2` names `vim`).
    pub fn hooked(&mut self, dir: &str) -> bool {
        self.entry(dir).1
    }

    fn entry(&mut self, dir: &str) -> (DirKind, bool) {
        if let Some(e) = self.cache.get(dir) {
            return *e;
        }
        let r = read_kind(&self.root, dir, &mut self.buf);
        self.settle(dir, r)
    }

    /// Apply the nesting and SUBDIR rules to what the files say `dir` is, and
    /// remember it.
    fn settle(&mut self, dir: &str, r: Read) -> (DirKind, bool) {
        let mut k = match r {
            Read::Port => DirKind::Port,
            Read::Group(names) => {
                self.subdirs.insert(dir.to_string(), names);
                DirKind::Group
            }
            Read::Plain => DirKind::Plain,
            Read::Missing => DirKind::Missing,
        };
        let mut hooked = dir.is_empty() && k == DirKind::Group;
        if !dir.is_empty() && matches!(k, DirKind::Port | DirKind::Group) {
            // Ports do not nest: a Makefile inside a port (`files/Makefile`)
            // makes its directory neither a port nor a group.  (So the port of a
            // file is its nearest port directory, even where a directory on the
            // way holds some Makefile.)
            let mut a = dir;
            while let Some((up, _)) = a.rsplit_once('/') {
                if self.kind(up) == DirKind::Port {
                    k = DirKind::Plain;
                    break;
                }
                a = up;
            }
        }
        if !dir.is_empty() && matches!(k, DirKind::Port | DirKind::Group) {
            let (up, name) = dir.rsplit_once('/').unwrap_or(("", dir));
            let (up_kind, up_hooked) = self.entry(up);
            let in_group = up_kind == DirKind::Group;
            hooked = in_group
                && up_hooked
                && self
                    .subdirs
                    .get(up)
                    .is_some_and(|s| s.binary_search_by(|n| n.as_str().cmp(name)).is_ok());
            // A port Makefile no SUBDIR names: a port commented out of its
            // group, or no port at all (`tests/x`, a group's `pkg/`, the top).
            if k == DirKind::Port
                && !hooked
                && !(in_group && !up.is_empty() && !PORT_SUBDIRS.contains(&name))
            {
                k = DirKind::Plain;
            }
        }
        self.cache.insert(dir.to_string(), (k, hooked));
        (k, hooked)
    }

    /// Read ahead what each of `dirs` is, the files in parallel: reading the
    /// Makefiles of thousands of ports is most of the work of mapping a whole
    /// release's changes to ports, and it needs only the file system.
    /// [`PortDirs::kind`] then answers from memory.
    pub fn prefetch<'d>(&mut self, dirs: impl IntoIterator<Item = &'d str>) {
        use rayon::prelude::*;
        let mut todo: Vec<&str> = dirs
            .into_iter()
            .filter(|d| !self.cache.contains_key(*d))
            .collect();
        // A directory before those below it: the nesting rule asks about it.
        // (A stable sort: a change list comes nearly sorted already, and then
        // it is about one pass.)
        todo.sort();
        todo.dedup();
        let root = &self.root;
        let kinds: Vec<Read> = todo
            .par_iter()
            .map_init(Vec::new, |buf, d| read_kind(root, d, buf))
            .collect();
        self.cache.reserve(todo.len());
        for (d, k) in todo.into_iter().zip(kinds) {
            if !self.cache.contains_key(d) {
                self.settle(d, k);
            }
        }
    }

    /// The ports the SUBDIR lists reach at or below `dir`, sorted: `dir` itself
    /// when it is such a port, the ports its SUBDIR lists reach when it is a group
    /// the top reaches, none otherwise.  Exactly the ports make's walk over the
    /// tree visits below `dir`.
    pub fn ports_below(&mut self, dir: &str) -> Vec<String> {
        let mut out = Vec::new();
        if !self.hooked(dir) {
            return out;
        }
        // A level of the tree at a time, its directories read ahead together.
        let mut level = vec![dir.to_string()];
        while !level.is_empty() {
            self.prefetch(level.iter().map(String::as_str));
            let mut next = Vec::new();
            for d in level {
                match self.entry(&d) {
                    (DirKind::Port, true) => out.push(d),
                    (DirKind::Group, true) => {
                        for name in self.subdirs.get(&d).into_iter().flatten() {
                            next.push(if d.is_empty() {
                                name.clone()
                            } else {
                                format!("{d}/{name}")
                            });
                        }
                    }
                    _ => {}
                }
            }
            level = next;
        }
        out.sort();
        out
    }
}

/// What the files say `dir` is.  Most directories asked about are ports, so this
/// opens `<dir>/Makefile` first and asks whether the directory exists only when
/// that fails: one open and two reads for a port, where a stat first would cost a
/// system call more.  `buf` holds the Makefile.
fn read_kind(root: &Path, dir: &str, buf: &mut Vec<u8>) -> Read {
    let mut makefile = PathBuf::with_capacity(root.as_os_str().len() + dir.len() + 10);
    makefile.push(root);
    if !dir.is_empty() {
        makefile.push(dir);
    }
    makefile.push("Makefile");
    match fs::File::open(&makefile) {
        Ok(f) => match read_all(f, buf) {
            Ok(text) => match included(text) {
                Included::Subdir => Read::Group(subdir_names(text)),
                Included::Port => Read::Port,
                Included::Neither => Read::Plain,
            },
            // A Makefile that cannot be read (a directory, say) is no Makefile.
            Err(_) => Read::Plain,
        },
        // No Makefile (or none that opens): a plain directory, or none at all.
        Err(_) if makefile.parent().is_some_and(Path::is_dir) => Read::Plain,
        Err(_) => Read::Missing,
    }
}

#[derive(Debug, PartialEq)]
enum Included {
    Port,
    Subdir,
    Neither,
}

/// Which of `bsd.port.subdir.mk` and `bsd.port.mk` a Makefile includes: on an
/// `.include` line (`.include`, `.  include`, `.sinclude`, `.-include`), not in a
/// comment (lang/gcc's group Makefile names bsd.port.mk(5) in one).
fn included(text: &[u8]) -> Included {
    const NEEDLE: &[u8] = b"bsd.port.";
    let mut found = Included::Neither;
    let mut from = 0;
    while let Some(at) = find(&text[from..], NEEDLE).map(|i| i + from) {
        from = at + NEEDLE.len();
        let start = text[..at]
            .iter()
            .rposition(|&b| b == b'\n')
            .map_or(0, |i| i + 1);
        let line = text[start..at].trim_ascii_start();
        let Some(directive) = line.strip_prefix(b".") else {
            continue;
        };
        let directive = directive.trim_ascii_start();
        if !(directive.starts_with(b"include")
            || directive.starts_with(b"sinclude")
            || directive.starts_with(b"-include"))
        {
            continue;
        }
        let rest = &text[from..];
        if rest.starts_with(b"subdir.mk") {
            return Included::Subdir;
        }
        if rest.starts_with(b"mk") && !rest.get(2).is_some_and(|b| b.is_ascii_alphanumeric()) {
            found = Included::Port;
        }
    }
    found
}

/// The directory names the SUBDIR assignments of a group Makefile hold (`=` and
/// `+=`, in every branch of its conditionals; `!=` runs a command, as the top
/// Makefile does for SUBDIRLIST), without flavors, sorted and unique.
fn subdir_names(text: &[u8]) -> Vec<String> {
    let mut names = Vec::new();
    for line in text.split(|&b| b == b'\n') {
        let line = line.trim_ascii_start();
        let Some(rest) = line.strip_prefix(b"SUBDIR") else {
            continue;
        };
        let rest = rest.trim_ascii_start();
        let value = match rest {
            [b'=', v @ ..] => v,
            [b'+', b'=', v @ ..] => v,
            _ => continue,
        };
        let value = match value.iter().position(|&b| b == b'#') {
            Some(i) => &value[..i],
            None => value,
        };
        for word in value.split(|b| b.is_ascii_whitespace()) {
            let dir = word.split(|&b| b == b',').next().unwrap_or_default();
            if dir.is_empty() || dir.contains(&b'/') || dir.contains(&b'$') {
                continue;
            }
            if let Ok(s) = std::str::from_utf8(dir) {
                names.push(s.to_string());
            }
        }
    }
    names.sort_unstable();
    names.dedup();
    names
}

/// Read `f` to its end into `buf`.  (`Read::read_to_end` on a `File` asks for the
/// file's size and position first: two system calls more per Makefile.)
fn read_all(mut f: fs::File, buf: &mut Vec<u8>) -> std::io::Result<&[u8]> {
    use std::io::Read;
    if buf.len() < 16 * 1024 {
        buf.resize(16 * 1024, 0);
    }
    let mut n = 0;
    loop {
        if n == buf.len() {
            buf.resize(2 * n, 0);
        }
        match f.read(&mut buf[n..]) {
            Ok(0) => return Ok(&buf[..n]),
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

/// Where `needle` first occurs in `hay`.
fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    let first = *needle.first()?;
    hay.windows(needle.len())
        .position(|w| w[0] == first && w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers() {
        let out =
            "junk\n===> net/curl\nnet-curl-1 debug-curl-1\n===> editors/vim,-lang\n===> x\na\nb\n";
        let v = split_headers(out);
        assert_eq!(
            v,
            vec![
                ("", vec!["junk"]),
                ("net/curl", vec!["net-curl-1 debug-curl-1"]),
                ("editors/vim,-lang", vec![]),
                ("x", vec!["a", "b"]),
            ]
        );
        assert_eq!(header("===>  Building package for curl-1"), None);
    }

    #[test]
    fn dirs() {
        let t = tempfile::tempdir().unwrap();
        let mk = |d: &str, text: &str| {
            fs::create_dir_all(t.path().join(d)).unwrap();
            fs::write(t.path().join(d).join("Makefile"), text).unwrap();
        };
        mk(
            "",
            ".if defined(SUBDIRLIST)\nSUBDIR != sed -e 's,#.*,,' ${SUBDIRLIST}\n\
             .else\nSUBDIR += lang\nSUBDIR+=devel # tools\n.endif\n\
             .include <bsd.port.subdir.mk>\n",
        );
        mk("tests", "SUBDIR += portbump\n.include <bsd.subdir.mk>\n");
        mk("tests/portbump", ".include <bsd.port.mk>\n");
        mk("base", ".include <bsd.port.mk>\n");
        mk("lang", "SUBDIR += php\n.include <bsd.port.subdir.mk>\n");
        mk(
            "lang/php",
            "# see bsd.port.mk(5)\nSUBDIR =\nSUBDIR += 8.2,fpm\n#SUBDIR += 8.3\n\
             .  include <bsd.port.subdir.mk>\n",
        );
        mk("lang/php/8.2", "COMMENT = x\n.include <bsd.port.mk>\n");
        mk("lang/php/8.3", ".include <bsd.port.mk>\n");
        fs::create_dir_all(t.path().join("lang/php/8.3/pkg")).unwrap();
        mk("lang/php/pkg", ".include <bsd.port.mk>\n");
        mk("lang/php/8.3/files/odd", ".include <bsd.port.mk>\n");
        mk("lang/php/8.3/files", "all:\n\techo not a port\n");
        mk(
            "lang/php/8.3/files/grp",
            "SUBDIR += x\n.include <bsd.port.subdir.mk>\n",
        );
        mk("lang/notes", "# not bsd.port.mk\nall:\n");
        mk(
            "devel",
            "SUBDIR += buildbot\n.include <bsd.port.subdir.mk>\n",
        );
        mk(
            "devel/buildbot",
            "SUBDIR += core\nSUBDIR += pkg\n.include <bsd.port.subdir.mk>\n",
        );
        mk("devel/buildbot/pkg", "PART = pkg\n.include <bsd.port.mk>\n");
        mk("devel/buildbot/core", ".include <bsd.port.mk>\n");
        let mut d = PortDirs::new(t.path());
        // Read ahead or not, the answers are the same.
        let mut ahead = PortDirs::new(t.path());
        let all = [
            "lang/php/8.3/files/grp",
            "lang/php/8.3/files/odd",
            "lang/php/8.3/files",
            "lang/php/8.3/pkg",
            "",
            "lang/php/8.4",
            "lang/php/8.2",
            "lang/php/pkg",
            "lang/php",
            "lang/notes",
            "lang",
            "tests/portbump",
            "base",
            "devel/buildbot/pkg",
        ];
        ahead.prefetch(all);
        for dir in all {
            let mut fresh = PortDirs::new(t.path());
            assert_eq!(ahead.kind(dir), fresh.kind(dir), "{dir}");
            assert_eq!(ahead.hooked(dir), fresh.hooked(dir), "{dir}");
        }
        use DirKind::*;
        let want = [
            ("", Group, true),
            ("lang", Group, true),
            ("lang/php", Group, true),
            ("lang/php/8.2", Port, true),
            // Commented out of its group: a port, not reached.
            ("lang/php/8.3", Port, false),
            ("lang/php/8.4", Missing, false),
            ("lang/php/pkg", Plain, false),
            ("lang/php/8.3/pkg", Plain, false),
            ("lang/php/8.3/files", Plain, false),
            ("lang/php/8.3/files/odd", Plain, false),
            ("lang/php/8.3/files/grp", Plain, false),
            ("lang/notes", Plain, false),
            ("tests", Plain, false),
            ("tests/portbump", Plain, false),
            ("base", Plain, false),
            ("devel/buildbot", Group, true),
            ("devel/buildbot/pkg", Port, true),
        ];
        for (dir, kind, hooked) in want {
            assert_eq!((d.kind(dir), d.hooked(dir)), (kind, hooked), "{dir}");
        }
        assert_eq!(d.ports_below("lang"), vec!["lang/php/8.2"]);
        assert_eq!(d.ports_below("lang/php/8.2"), vec!["lang/php/8.2"]);
        assert_eq!(d.ports_below("lang/php/8.3"), Vec::<String>::new());
        assert_eq!(
            d.ports_below(""),
            vec!["devel/buildbot/core", "devel/buildbot/pkg", "lang/php/8.2"]
        );
    }

    #[test]
    fn makefile_reading() {
        assert_eq!(included(b".include <bsd.port.mk>\n"), Included::Port);
        assert_eq!(
            included(b"# bsd.port.mk(5)\n.include <bsd.port.subdir.mk>"),
            Included::Subdir
        );
        assert_eq!(included(b"# see bsd.port.mk\nall:\n"), Included::Neither);
        assert_eq!(included(b".include <bsd.port.mkx>\n"), Included::Neither);
        assert_eq!(included(b".sinclude \"bsd.port.mk\""), Included::Port);
        assert_eq!(
            included(b"\t.\tinclude <bsd.subdir.mk>\n"),
            Included::Neither
        );
        assert_eq!(
            subdir_names(b"SUBDIR =\n  SUBDIR += b,flav a # c\nSUBDIR != ls\nSUBDIR += $i x/y\nSUBDIRLIST=z\n"),
            vec!["a", "b"]
        );
    }
}
