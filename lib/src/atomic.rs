//! Files written whole or not at all, and renames that survive a crash: one home
//! for every tool (the spool's batch files, the coordinator's batch directory,
//! summary-mail's outputs, the maildir and the outbox).

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::Path;

/// Sync a directory, so that a rename into it, or a file made in it, survives a
/// crash.  Best effort: a directory that cannot be opened is left as it is.
pub fn sync_dir(dir: &Path) {
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
}

/// Write `bytes` to `tmp`, a new file (never one that is there), sync it, rename
/// it to `dest`, and sync `dest`'s directory.  On failure `tmp` is removed and
/// `dest` is as it was.
pub fn write_via(tmp: &Path, dest: &Path, bytes: &[u8]) -> io::Result<()> {
    // A file already at `tmp` is someone else's: an error, left alone.
    let mut f = OpenOptions::new().write(true).create_new(true).open(tmp)?;
    let r = f
        .write_all(bytes)
        .and_then(|()| f.sync_all())
        .and_then(|()| fs::rename(tmp, dest));
    if let Err(e) = r {
        let _ = fs::remove_file(tmp);
        return Err(e);
    }
    if let Some(d) = dest.parent() {
        sync_dir(if d.as_os_str().is_empty() {
            Path::new(".")
        } else {
            d
        });
    }
    Ok(())
}

/// Write `path` whole or not at all, through a temporary file beside it.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let tmp = tempfile::Builder::new()
        .prefix(".tmp-")
        .tempfile_in(dir)?
        .into_temp_path();
    // The name is ours; write_via makes the file anew.
    let name = tmp.to_path_buf();
    tmp.close()?;
    write_via(&name, path, bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whole_or_not_at_all() {
        let t = tempfile::tempdir().unwrap();
        let p = t.path().join("f");
        write_atomic(&p, b"one").unwrap();
        write_atomic(&p, b"two").unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"two");
        // A temporary file that is there already is never written over.
        let tmp = t.path().join("tmp");
        fs::write(&tmp, "someone else's").unwrap();
        assert!(write_via(&tmp, &p, b"three").is_err());
        assert_eq!(fs::read(&p).unwrap(), b"two");
        assert_eq!(fs::read(&tmp).unwrap(), b"someone else's");
        // Nothing of ours left behind.
        let names: Vec<_> = fs::read_dir(t.path())
            .unwrap()
            .flatten()
            .map(|e| e.file_name())
            .collect();
        assert_eq!(names.len(), 2, "{names:?}");
    }
}
