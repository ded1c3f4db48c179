//! WRKOBJDIR: checked against the directories the wipe must never reach,
//! then emptied below one handle, never following a symbolic link.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use crate::Error;

/// `p` made absolute against the current directory, `.` components dropped (`..`
/// are kept: they cannot be resolved without the file system).
pub(super) fn absolute(p: &Path) -> PathBuf {
    std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf())
}

/// `p` with every symbolic link resolved, as far as it exists: the longest
/// existing ancestor canonicalised, the rest appended.
pub(super) fn resolve(p: &Path) -> PathBuf {
    if let Ok(c) = fs::canonicalize(p) {
        return c;
    }
    match (p.parent(), p.file_name()) {
        (Some(parent), Some(name)) => resolve(parent).join(name),
        _ => p.to_path_buf(),
    }
}

/// A directory the wipe must never reach.
pub(super) struct Protected {
    pub(super) what: &'static str,
    pub(super) path: PathBuf,
    /// May WRKOBJDIR lie inside it?  Yes for PORTSDIR (`${PORTSDIR}/pobj`).
    pub(super) may_hold_wrkobjdir: bool,
}

/// What a file is, whatever path reaches it: its device and inode.  A bind
/// mount or any other alias of a directory has the same.
pub type Id = (u64, u64);

pub(super) fn id_of(p: &Path) -> Option<Id> {
    use std::os::unix::fs::MetadataExt;
    fs::metadata(p).ok().map(|m| (m.dev(), m.ino()))
}

/// The identities of `p` (links resolved) and of every directory above it.
pub(super) fn chain(p: &Path) -> Vec<Id> {
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
pub(super) fn check_wrkobjdir(
    w: &Path,
    protected: &[Protected],
    ports: &Path,
) -> Result<Checked, Error> {
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
pub(super) fn remove_below(fd: &std::os::fd::OwnedFd, path: &Path, errors: &mut Vec<String>) {
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
