//! What the build-host tools (clean-env, build-list, collect-built) share: the
//! ports tree, the make program, the host's settings as make will use them (the
//! package repository, MACHINE_ARCH, WRKOBJDIR, ...: mk.conf, unless a flag says
//! otherwise), the batch id, and the stamping of the records they make.

use std::ffi::OsString;
use std::path::PathBuf;

use crate::ports::PortsTree;
use crate::record::Kind;
use crate::{Error, Record};

/// The flags every build-host tool takes.
#[derive(clap::Args, Debug, Clone)]
pub struct HostArgs {
    /// The ports tree.
    #[arg(
        long,
        env = "PORTSDIR",
        value_name = "DIR",
        default_value = "/usr/ports"
    )]
    pub ports_dir: PathBuf,
    /// The make program.
    #[arg(long, env = "MAKE", value_name = "PROGRAM", default_value = "make")]
    pub make: OsString,
    /// The package repository, given to make too [default: make's
    /// PACKAGE_REPOSITORY, from mk.conf].
    #[arg(long, env = "PACKAGE_REPOSITORY", value_name = "DIR")]
    pub repository: Option<PathBuf>,
    /// MACHINE_ARCH of the packages, given to make too [default: make's].
    #[arg(long, env = "MACHINE_ARCH", value_name = "ARCH")]
    pub arch: Option<String>,
    /// The batch id stamped on the records made.
    #[arg(long, value_name = "ID")]
    pub batch: Option<String>,
}

/// Which directory of the package repository a tool reads the package files
/// from (collect-built, rsync-list).
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Repo {
    /// `ftp/`: the packages that may be redistributed.
    Ftp,
    /// `all/`: every package.
    All,
}

impl Repo {
    pub fn dir(self) -> &'static str {
        match self {
            Repo::Ftp => "ftp",
            Repo::All => "all",
        }
    }
}

/// The settings resolved from [`HostArgs`].
#[derive(Debug, Clone)]
pub struct Host {
    pub tree: PortsTree,
    pub repository: PathBuf,
    pub arch: String,
    pub batch: Option<String>,
    /// The other directories make uses on this host.
    pub dirs: Dirs,
}

/// The directories of a build host, as make will use them.
#[derive(Debug, Clone)]
pub struct Dirs {
    pub wrkobjdir: PathBuf,
    pub distdir: PathBuf,
    pub plist_repository: PathBuf,
    pub bulk_cookies_dir: PathBuf,
    pub lockdir: PathBuf,
}

/// The variables asked of make, in the order [`HostArgs::resolve_with`] reads them.
const SETTINGS: &[&str] = &[
    "PACKAGE_REPOSITORY",
    "MACHINE_ARCH",
    "WRKOBJDIR",
    "DISTDIR",
    "PLIST_REPOSITORY",
    "BULK_COOKIES_DIR",
    "LOCKDIR",
];

impl HostArgs {
    /// Check the flags alone, without asking make (exit 2 when one is wrong).
    pub fn check(&self) -> Result<(), Error> {
        PortsTree::open(&self.ports_dir, self.make.clone())?;
        if let Some(a) = &self.arch {
            check_arch(a)?;
        }
        if let Some(b) = &self.batch {
            check_batch(b)?;
        }
        Ok(())
    }

    /// Check and resolve the settings (exit 2 when one is wrong).
    pub fn resolve(&self) -> Result<Host, Error> {
        self.resolve_with(&[])
    }

    /// Resolve the settings, with more explicit values from the tool's own flags
    /// (clean-env's --wrkobjdir): each goes on make's command line, and make is
    /// asked once for what it will use.  The tree must exist, the directories be
    /// absolute and the arch a plain word.
    pub fn resolve_with(&self, given: &[(&str, &PathBuf)]) -> Result<Host, Error> {
        let mut tree = PortsTree::open(&self.ports_dir, self.make.clone())?;
        if let Some(r) = &self.repository {
            tree = tree.set("PACKAGE_REPOSITORY", r);
        }
        if let Some(a) = &self.arch {
            check_arch(a)?;
            tree = tree.set("MACHINE_ARCH", a);
        }
        for (k, v) in given {
            tree = tree.set(k, *v);
        }
        let values = tree.settings(SETTINGS)?;
        let dir = |i: usize| -> Result<PathBuf, Error> {
            let p = PathBuf::from(&values[i]);
            if p.is_absolute() {
                Ok(p)
            } else {
                Err(Error::Usage(format!(
                    "{}={:?}: make's value is not an absolute path (set it in mk.conf or by its flag)",
                    SETTINGS[i], values[i]
                )))
            }
        };
        let repository = dir(0)?;
        let arch = values[1].clone();
        let dirs = Dirs {
            wrkobjdir: dir(2)?,
            distdir: dir(3)?,
            plist_repository: dir(4)?,
            bulk_cookies_dir: dir(5)?,
            lockdir: dir(6)?,
        };
        check_arch(&arch)?;
        if let Some(b) = &self.batch {
            check_batch(b)?;
        }
        Ok(Host {
            tree,
            repository,
            arch,
            batch: self.batch.clone(),
            dirs,
        })
    }
}

/// Learn the batch id from a `batch` record when none is known yet.  A batch
/// record without a valid id is an error, returned: its batch is never replaced
/// by another in silence.
pub fn learn_batch(batch: &mut Option<String>, r: &Record) -> Result<(), Error> {
    if batch.is_none() && r.is(Kind::Batch) {
        match r.str("id") {
            Some(id) => {
                check_batch(id)?;
                *batch = Some(id.to_string());
            }
            None => return Err(Error::Usage("batch record without an id".into())),
        }
    }
    Ok(())
}

/// MACHINE_ARCH: a plain word (amd64, aarch64, ...).
fn check_arch(arch: &str) -> Result<(), Error> {
    if arch.is_empty()
        || arch.len() > 32
        || !arch
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    {
        return Err(Error::Usage(format!("invalid MACHINE_ARCH {arch:?}")));
    }
    Ok(())
}

/// A batch id: a file name (it names log directories and spool files).
/// A new batch id, the one way every tool makes them: the UTC time, then a
/// hash (FNV-1a, stable across builds and platforms) of what tells the batch
/// apart: `20261121-101500-3f2a9c1b`.  Always valid for [`check_batch`].
pub fn new_batch_id(now: std::time::SystemTime, parts: &[&[u8]]) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for p in parts {
        for &b in p.iter().chain(std::iter::once(&0)) {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    format!(
        "{}-{:08x}",
        crate::time::compact_stamp(now),
        (h ^ (h >> 32)) as u32
    )
}

pub fn check_batch(id: &str) -> Result<(), Error> {
    let ok = !id.is_empty()
        && id.len() <= 128
        && !id.starts_with(['.', '-'])
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b'+'));
    if ok {
        Ok(())
    } else {
        Err(Error::Usage(format!(
            "invalid batch id {id:?}: letters, digits, . _ - + only"
        )))
    }
}

impl Host {
    /// `${PACKAGE_REPOSITORY}/${MACHINE_ARCH}/<sub>` (`all`, `ftp`).
    pub fn packages(&self, sub: &str) -> PathBuf {
        self.repository.join(&self.arch).join(sub)
    }

    /// Learn the batch id from a `batch` record on the input when no --batch was
    /// given.
    pub fn learn_batch(&mut self, r: &Record) -> Result<(), Error> {
        learn_batch(&mut self.batch, r)
    }

    /// Stamp `arch`, and `batch` when known, on a record this tool made.
    pub fn stamp(&self, r: &mut Record) {
        if let Some(b) = &self.batch {
            r.set_default("batch", b.as_str());
        }
        r.set_default("arch", self.arch.as_str());
    }
}

/// `KEY=VALUE`, KEY a shell variable name.
pub fn parse_env(s: &str) -> Result<(String, String), String> {
    let Some((k, v)) = s.split_once('=') else {
        return Err(format!("{s:?} is not KEY=VALUE"));
    };
    crate::names::VarName::parse(k)?;
    Ok((k.to_string(), v.to_string()))
}
