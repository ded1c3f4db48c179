//! The last lines of a text or a file, bounded in lines and bytes: a build
//! log's as they travel in a `build` record and are shown in the mail (control
//! characters made visible), and a program's diagnostics quoted in a message.

use std::io::{self, Read, Seek, SeekFrom};
use std::path::Path;

/// The longest log line kept; longer ones are cut, with ` [...]`.
pub const MAX_LOG_LINE: usize = 400;

/// At most this much of the end of a log is read to find its last lines.
const MAX_TAIL_BYTES: u64 = 256 * 1024;

/// The most lines a record carries.
pub const MAX_LINES: usize = 50;

/// One line of text from a record, for a mail or a terminal: control
/// characters (escape sequences, newlines) become `?`.
pub fn one_line(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}

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

/// The end of a regular file, at most `max` bytes of it, and whether that is
/// less than the whole file (its first line is then a part of a line).
/// Anything but a regular file (a FIFO, a device) is refused, not read.
fn read_end(path: &Path, max: u64) -> io::Result<(Vec<u8>, bool)> {
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
    let want = len.min(max);
    f.seek(SeekFrom::Start(len - want))?;
    let mut buf = Vec::with_capacity(want as usize);
    f.take(want).read_to_end(&mut buf)?;
    Ok((buf, want < len))
}

/// The last `n` lines of a log file, read from its end, each as
/// [`clean_line`] makes it.
pub fn log_lines(path: &Path, n: usize) -> io::Result<Vec<String>> {
    let (buf, cut) = read_end(path, MAX_TAIL_BYTES)?;
    let text = String::from_utf8_lossy(&buf);
    let text = text.strip_suffix('\n').unwrap_or(&text);
    if text.is_empty() {
        return Ok(Vec::new());
    }
    let mut lines: Vec<&str> = text.split('\n').collect();
    if cut && !lines.is_empty() {
        lines.remove(0); // a part of a line
    }
    let start = lines.len().saturating_sub(n);
    Ok(lines[start..].iter().map(|l| clean_line(l)).collect())
}

/// The last `n` lines of a text that are not blank, trimmed, joined with
/// `sep`; when that is longer than `max` bytes, its end, after `...`.
pub fn text(text: &str, n: usize, sep: &str, max: usize) -> String {
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    let mut s = lines[lines.len().saturating_sub(n)..].join(sep);
    if s.len() > max {
        let mut cut = s.len() - max;
        while !s.is_char_boundary(cut) {
            cut += 1;
        }
        s = format!("...{}", &s[cut..]);
    }
    s
}

/// The last `n` non-blank lines of a program's output, joined with ` / `, for
/// a one-line message.
pub fn short(t: &str, n: usize) -> String {
    text(t, n, " / ", usize::MAX)
}

/// [`text`] of the end of a file (its last `4 * max` bytes); empty when it
/// cannot be read.
pub fn file(path: &Path, n: usize, sep: &str, max: usize) -> String {
    match read_end(path, 4 * max as u64) {
        Ok((buf, cut)) => {
            let t = String::from_utf8_lossy(&buf);
            let t = match (cut, t.split_once('\n')) {
                (true, Some((_, rest))) => rest,
                _ => &t,
            };
            text(t, n, sep, max)
        }
        Err(_) => String::new(),
    }
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
        let v = log_lines(&p, 20).unwrap();
        assert_eq!(v.len(), 20);
        assert_eq!(v[0], "line 11");
        assert_eq!(v[19], "line 30");
        std::fs::write(&p, "a\nprogress 10%\rprogress 100%\r\n\x1b[1mbold\tx").unwrap();
        assert_eq!(
            log_lines(&p, 20).unwrap(),
            ["a", "progress 100%", "?[1mbold\tx"]
        );
        std::fs::write(&p, "").unwrap();
        assert!(log_lines(&p, 20).unwrap().is_empty());
        // Much more than the part read: the cut first line is dropped.
        let big: String = (0..100_000).map(|i| format!("l{i}\n")).collect();
        std::fs::write(&p, &big).unwrap();
        let v = log_lines(&p, 3).unwrap();
        assert_eq!(v, ["l99997", "l99998", "l99999"]);
        assert!(log_lines(&t.path().join("none"), 20).is_err());
        // A FIFO is not read (it would hang): refused.
        let fifo = t.path().join("fifo");
        assert!(std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success());
        assert!(log_lines(&fifo, 20).is_err());
        assert_eq!(file(&fifo, 10, "\n", 2000), "");
    }

    #[test]
    fn texts_and_files() {
        let lines: String = (1..=8).map(|i| format!("line {i}\n\n")).collect();
        assert_eq!(
            text(&lines, 5, "; ", 2000),
            "line 4; line 5; line 6; line 7; line 8"
        );
        assert_eq!(text("  a \n\n b\n", 3, " / ", 100), "a / b");
        let long = "é".repeat(2000);
        let t = text(&long, 10, "; ", 2000);
        assert!(t.starts_with("...é") && t.len() <= 2000 + 4, "{t}");

        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("e");
        let body: String = (1..=30).map(|i| format!("line {i}\n")).collect();
        std::fs::write(&p, body).unwrap();
        let s = file(&p, 10, "\n", 2000);
        assert!(s.starts_with("line 21\n") && s.ends_with("line 30"), "{s}");
        std::fs::write(&p, "x".repeat(10_000)).unwrap();
        assert!(file(&p, 10, "\n", 2000).len() <= 2000 + 3);
        assert_eq!(file(&d.path().join("none"), 10, "\n", 2000), "");
    }
}
