//! What the build-host tools (clean-env, build-list, collect-built) share: the
//! ports tree, the make program, the package repository, MACHINE_ARCH and the
//! batch id, from flags or the environment, and the stamping of the records they
//! make.

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::Command;

use crate::ports::PortsTree;
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
    /// The package repository [default: PORTSDIR/packages].
    #[arg(long, env = "PACKAGE_REPOSITORY", value_name = "DIR")]
    pub repository: Option<PathBuf>,
    /// MACHINE_ARCH of the packages [default: the output of `uname -p`].
    #[arg(long, env = "MACHINE_ARCH", value_name = "ARCH")]
    pub arch: Option<String>,
    /// The batch id stamped on the records made.
    #[arg(long, value_name = "ID")]
    pub batch: Option<String>,
}

/// The settings resolved from [`HostArgs`].
#[derive(Debug, Clone)]
pub struct Host {
    pub tree: PortsTree,
    pub repository: PathBuf,
    pub arch: String,
    pub batch: Option<String>,
}

impl HostArgs {
    /// Check and resolve the settings: the tree must exist and the arch be a plain
    /// word (exit 2 otherwise).
    pub fn resolve(&self) -> Result<Host, Error> {
        let tree = PortsTree::open(&self.ports_dir, self.make.clone())?;
        let repository = self
            .repository
            .clone()
            .unwrap_or_else(|| self.ports_dir.join("packages"));
        if !repository.is_absolute() {
            return Err(Error::Usage(format!(
                "{}: the package repository must be an absolute path",
                repository.display()
            )));
        }
        let arch = match &self.arch {
            Some(a) => a.clone(),
            None => machine_arch()?,
        };
        if arch.is_empty()
            || !arch
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        {
            return Err(Error::Usage(format!("invalid MACHINE_ARCH {arch:?}")));
        }
        if let Some(b) = &self.batch {
            check_batch(b)?;
        }
        Ok(Host {
            tree,
            repository,
            arch,
            batch: self.batch.clone(),
        })
    }
}

/// A batch id: a file name (it names log directories and spool files).
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

/// MACHINE_ARCH of this host: `uname -p` (amd64, aarch64, ... on OpenBSD).
fn machine_arch() -> Result<String, Error> {
    let out = Command::new("uname")
        .arg("-p")
        .output()
        .map_err(|e| Error::Command {
            program: "uname".into(),
            message: e.to_string(),
        })?;
    let a = String::from_utf8_lossy(&out.stdout).trim().to_string();
    if !out.status.success() || a.is_empty() || a == "unknown" {
        return Err(Error::Usage(
            "cannot tell MACHINE_ARCH from uname -p: give --arch or MACHINE_ARCH".into(),
        ));
    }
    Ok(a)
}

impl Host {
    /// `${PACKAGE_REPOSITORY}/${MACHINE_ARCH}/<sub>` (`all`, `ftp`).
    pub fn packages(&self, sub: &str) -> PathBuf {
        self.repository.join(&self.arch).join(sub)
    }

    /// Learn the batch id from a `batch` record on the input when no --batch was
    /// given.
    pub fn learn_batch(&mut self, r: &Record) {
        if self.batch.is_none() && r.is("batch") {
            if let Some(id) = r.str("id").filter(|id| check_batch(id).is_ok()) {
                self.batch = Some(id.to_string());
            }
        }
    }

    /// Stamp `arch`, and `batch` when known, on a record this tool made.
    pub fn stamp(&self, r: &mut Record) {
        if let Some(b) = &self.batch {
            r.set_default("batch", b.as_str());
        }
        r.set_default("arch", self.arch.as_str());
    }
}
