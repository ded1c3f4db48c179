//! The interface to the ports tree (DESIGN.md section 4).
//!
//! portflow drives the tree only through the commands a porter types in PORTSDIR:
//! `make <target> SUBDIRLIST=<file> ...`.  The list always goes through a temporary
//! file, never through a shell string.  It also answers, from the files of the
//! checkout, which directories are ports: a directory with a Makefile that is not a
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
}

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

    /// The command `make <target> SUBDIRLIST=<list> <vars...>` in PORTSDIR, ready
    /// to be given stdio and spawned.  Every variable is one argument: nothing goes
    /// through a shell.
    pub fn command(&self, target: &str, list: &SubdirList, vars: &[(&str, &str)]) -> Command {
        let mut c = Command::new(&self.make);
        c.current_dir(&self.root).arg(target);
        c.envs(self.env.iter().map(|(k, v)| (k, v)));
        let mut arg = OsString::from("SUBDIRLIST=");
        arg.push(list.path());
        c.arg(arg);
        for (k, v) in vars {
            c.arg(format!("{k}={v}"));
        }
        c
    }

    /// Run `make show=<var>` over `entries` and return its stdout.
    pub fn show<S: AsRef<str>>(&self, var: &str, entries: &[S]) -> Result<String, Error> {
        let list = SubdirList::new(entries)?;
        let out = self
            .command(&format!("show={var}"), &list, &[])
            .stdin(std::process::Stdio::null())
            .output()
            .map_err(|e| self.spawn_error(e))?;
        if !out.status.success() {
            let err = String::from_utf8_lossy(&out.stderr);
            let tail: Vec<&str> = err.lines().rev().take(5).collect();
            return Err(Error::Command {
                program: self.make.to_string_lossy().into_owned(),
                message: format!(
                    "show={var} failed ({}): {}",
                    out.status,
                    tail.into_iter().rev().collect::<Vec<_>>().join(" / ")
                ),
            });
        }
        String::from_utf8(out.stdout).map_err(|_| Error::Command {
            program: self.make.to_string_lossy().into_owned(),
            message: format!("show={var}: output is not UTF-8"),
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
    /// A port: it has a port Makefile.
    Port,
    /// The top, a category or a group of ports (`lang/php`): a Makefile that
    /// includes `bsd.port.subdir.mk`.
    Group,
    /// A directory without a Makefile: inside a port (`pkg/`, `patches/`) or a group
    /// without its own Makefile.
    Plain,
    /// Not in the checkout.
    Missing,
}

/// Subdirectories of a port that never hold ports.
pub const PORT_SUBDIRS: &[&str] = &["pkg", "patches", "files"];

/// Directories the walk below a group skips.
fn skip_dir(name: &str) -> bool {
    matches!(
        name,
        "CVS" | ".git" | ".svn" | "pobj" | "distfiles" | "packages" | "plist"
    ) || PORT_SUBDIRS.contains(&name)
}

/// Classifies directories of a checkout, each read once.
pub struct PortDirs {
    root: PathBuf,
    cache: HashMap<String, DirKind>,
}

impl PortDirs {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        PortDirs {
            root: root.into(),
            cache: HashMap::new(),
        }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The kind of `dir` (relative to the root; `""` is the root).
    pub fn kind(&mut self, dir: &str) -> DirKind {
        if let Some(k) = self.cache.get(dir) {
            return *k;
        }
        let mut k = self.read_kind(dir);
        if k == DirKind::Port {
            // Ports do not nest: a Makefile inside a port (`files/Makefile`)
            // does not make its directory a port.
            let mut a = dir;
            while let Some((up, _)) = a.rsplit_once('/') {
                if self.kind(up) == DirKind::Port {
                    k = DirKind::Plain;
                    break;
                }
                a = up;
            }
        }
        self.cache.insert(dir.to_string(), k);
        k
    }

    fn read_kind(&self, dir: &str) -> DirKind {
        let path = self.root.join(dir);
        if !path.is_dir() {
            return DirKind::Missing;
        }
        if dir.is_empty() {
            return DirKind::Group;
        }
        match fs::read(path.join("Makefile")) {
            Ok(text) => {
                if contains(&text, b"bsd.port.subdir.mk") {
                    DirKind::Group
                } else {
                    DirKind::Port
                }
            }
            Err(_) => DirKind::Plain,
        }
    }

    /// Every port at or below `dir`, sorted.
    pub fn ports_below(&mut self, dir: &str) -> Vec<String> {
        let mut out = Vec::new();
        let mut stack = vec![dir.to_string()];
        while let Some(d) = stack.pop() {
            match self.kind(&d) {
                DirKind::Port => out.push(d.clone()),
                DirKind::Missing => continue,
                DirKind::Group | DirKind::Plain => {}
            }
            let Ok(rd) = fs::read_dir(self.root.join(&d)) else {
                continue;
            };
            for e in rd.flatten() {
                let Ok(ft) = e.file_type() else { continue };
                if !ft.is_dir() {
                    continue;
                }
                let Some(name) = e.file_name().to_str().map(str::to_string) else {
                    continue;
                };
                if skip_dir(&name) || name.starts_with('.') {
                    continue;
                }
                stack.push(if d.is_empty() {
                    name
                } else {
                    format!("{d}/{name}")
                });
            }
        }
        out.sort();
        out
    }
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
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
        mk("lang", "SUBDIR += php\n.include <bsd.port.subdir.mk>\n");
        mk("lang/php", "SUBDIR += 8.2\n.include <bsd.port.subdir.mk>\n");
        mk("lang/php/8.2", ".include <bsd.port.mk>\n");
        mk("lang/php/8.3", ".include <bsd.port.mk>\n");
        fs::create_dir_all(t.path().join("lang/php/8.3/pkg")).unwrap();
        mk("lang/php/8.3/files/odd", ".include <bsd.port.mk>\n");
        mk("lang/php/8.3/files", "all:\n\techo not a port\n");
        let mut d = PortDirs::new(t.path());
        assert_eq!(d.kind("lang"), DirKind::Group);
        assert_eq!(d.kind("lang/php"), DirKind::Group);
        assert_eq!(d.kind("lang/php/8.2"), DirKind::Port);
        assert_eq!(d.kind("lang/php/8.4"), DirKind::Missing);
        assert_eq!(d.kind(""), DirKind::Group);
        assert_eq!(d.kind("lang/php/8.3/pkg"), DirKind::Plain);
        assert_eq!(d.kind("lang/php/8.3/files"), DirKind::Plain);
        assert_eq!(d.kind("lang/php/8.3/files/odd"), DirKind::Plain);
        assert_eq!(d.ports_below("lang"), vec!["lang/php/8.2", "lang/php/8.3"]);
        assert_eq!(d.ports_below("lang/php/8.2"), vec!["lang/php/8.2"]);
    }
}
