//! The last lines of a build log, as they travel in a `build` record and are
//! shown in the mail: read on the build host from the log build-list wrote,
//! bounded in lines and bytes, control characters made visible.

use std::io::{self, Read, Seek, SeekFrom};
use std::path::Path;

/// The longest log line kept; longer ones are cut, with ` [...]`.
pub const MAX_LOG_LINE: usize = 400;

/// At most this much of the end of a log is read to find its last lines.
const MAX_TAIL_BYTES: u64 = 256 * 1024;

/// The most lines a record carries.
pub const MAX_LINES: usize = 50;

/// A log line as shown: control characters other than tabs as `?`, a carriage
/// return keeping what follows it (as a terminal shows it), cut at
/// [`MAX_LOG_LINE`] bytes.
pub fn clean_line(l: &str) -> String {
    let l = l.strip_suffix('\r').unwrap_or(l);
    let l = l.rsplit('\r').next().unwrap_or(l);
    let mut s: String = l
        .chars()
        .map(|c| if c.is_control() && c != '\t' { '?' } else { c })
        .collect();
    if s.len() > MAX_LOG_LINE {
        let mut cut = MAX_LOG_LINE;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
        s.push_str(" [...]");
    }
    s
}

/// The last `n` lines of a regular file, read from its end (see [`clean_line`]).
/// Anything but a regular file (a FIFO, a device) is refused, not read.
pub fn tail(path: &Path, n: usize) -> io::Result<Vec<String>> {
    // Opened without waiting (a FIFO would block the open itself), then checked
    // by its handle: what is read is what was checked.
    let mut f = {
        use std::os::unix::fs::OpenOptionsExt;
        std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(rustix::fs::OFlags::NONBLOCK.bits() as i32)
            .open(path)?
    };
    if !f.metadata()?.is_file() {
        return Err(io::Error::other("not a regular file"));
    }
    let len = f.seek(SeekFrom::End(0))?;
    let want = len.min(MAX_TAIL_BYTES);
    f.seek(SeekFrom::Start(len - want))?;
    let mut buf = Vec::with_capacity(want as usize);
    f.take(want).read_to_end(&mut buf)?;
    let text = String::from_utf8_lossy(&buf);
    let text = text.strip_suffix('\n').unwrap_or(&text);
    if text.is_empty() {
        return Ok(Vec::new());
    }
    let mut lines: Vec<&str> = text.split('\n').collect();
    if want < len && !lines.is_empty() {
        lines.remove(0); // a part of a line
    }
    let start = lines.len().saturating_sub(n);
    Ok(lines[start..].iter().map(|l| clean_line(l)).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tails() {
        let t = tempfile::tempdir().unwrap();
        let p = t.path().join("log");
        let text: String = (1..=30).map(|i| format!("line {i}\n")).collect();
        std::fs::write(&p, &text).unwrap();
        let v = tail(&p, 20).unwrap();
        assert_eq!(v.len(), 20);
        assert_eq!(v[0], "line 11");
        assert_eq!(v[19], "line 30");
        std::fs::write(&p, "a\nprogress 10%\rprogress 100%\r\n\x1b[1mbold\tx").unwrap();
        assert_eq!(tail(&p, 20).unwrap(), ["a", "progress 100%", "?[1mbold\tx"]);
        std::fs::write(&p, "").unwrap();
        assert!(tail(&p, 20).unwrap().is_empty());
        // Much more than the part read: the cut first line is dropped.
        let big: String = (0..100_000).map(|i| format!("l{i}\n")).collect();
        std::fs::write(&p, &big).unwrap();
        let v = tail(&p, 3).unwrap();
        assert_eq!(v, ["l99997", "l99998", "l99999"]);
        assert!(tail(&t.path().join("none"), 20).is_err());
        // A FIFO is not read (it would hang): refused.
        let fifo = t.path().join("fifo");
        assert!(std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success());
        assert!(tail(&fifo, 20).is_err());
    }
}
