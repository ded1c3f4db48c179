//! Reading change lists: cvs rdiff -s, cvs update, git diff --name-status and
//! plain paths, line by line, every input whole.

use std::io::Read;
use std::path::PathBuf;
use std::sync::Arc;

use crate::diag::Diag;
use crate::jsonl::{self, Item, ItemRef};
use crate::ports::PORT_SUBDIRS;
use crate::record::{Change, Level, Record, Status};
use crate::Error;

use super::*;

/// One file change read from a change list.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct FileChange {
    pub change: Change,
    /// False for plain paths: the line did not say what happened to the file.
    pub known: bool,
}

impl FileChange {
    /// The change, borrowed.
    pub fn borrowed(&self) -> FileRef<'_> {
        let c = &self.change;
        let change = ChangeRef {
            path: &c.path,
            status: c.status,
            from: c.from.as_deref(),
            to: c.to.as_deref(),
        };
        FileRef::new(change, self.known)
    }
}

/// A [`Change`] whose text is borrowed from the change list: reading a whole
/// release's change list allocates nothing per line.  The fields, their order
/// and their serialisation are those of [`Change`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
pub struct ChangeRef<'a> {
    pub path: &'a str,
    pub status: Status,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub to: Option<&'a str>,
}

impl ChangeRef<'_> {
    pub fn to_change(&self) -> Change {
        Change {
            path: self.path.to_string(),
            status: self.status,
            from: self.from.map(str::to_string),
            to: self.to.map(str::to_string),
        }
    }
}

/// A [`FileChange`] borrowed from the change list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FileRef<'a> {
    pub change: ChangeRef<'a>,
    /// False for plain paths: the line did not say what happened to the file.
    pub known: bool,
    /// The port of the file by path rules alone (a prefix of its path): found
    /// while the path is checked, in the same pass over it.
    pub(super) port: &'a str,
}

impl<'a> FileRef<'a> {
    pub fn new(change: ChangeRef<'a>, known: bool) -> Self {
        FileRef {
            port: port_by_path(change.path),
            change,
            known,
        }
    }

    /// The port of the file by path rules alone: see [`port_by_path`].
    pub fn port_by_path(&self) -> &'a str {
        self.port
    }

    pub fn to_file_change(&self) -> FileChange {
        FileChange {
            change: self.change.to_change(),
            known: self.known,
        }
    }
}

/// What one line of a change list says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Line {
    Changes(Vec<FileChange>),
    /// Something the summary must show (a cvs conflict, a cvs message).
    Notice(Level, String),
    /// A line that says nothing about changes (`? file`, `cvs update: Updating x`).
    Nothing,
}

/// Parse one line of a change list.  `module` is the prefix `cvs rdiff` puts on
/// paths (`ports`).
pub fn parse_line(line: &str, module: &str) -> Result<Line, String> {
    let mut v = Vec::new();
    let notice = parse_changes(line, module, &mut v)?;
    Ok(match notice {
        Some((level, msg)) => Line::Notice(level, msg),
        None if v.is_empty() => Line::Nothing,
        None => Line::Changes(v.iter().map(FileRef::to_file_change).collect()),
    })
}

/// The lines of an update's output (`cvs up`, a change list) that are changes
/// of files, with what happened to them: what "Changes triggering the build"
/// shows.  `? file` lines, cvs's messages and conflicts (notices of their
/// own), plain paths and anything else are left out.
pub fn real_changes(text: &str) -> String {
    let mut out = String::new();
    for line in text.lines() {
        let line = line.trim_end_matches('\r');
        if let Ok(Line::Changes(v)) = parse_line(line, "ports") {
            if !v.is_empty() && v.iter().all(|c| c.known) {
                out.push_str(line);
                out.push('\n');
            }
        }
    }
    out
}

/// Parse one line of a change list (see [`parse_line`]): its changes are pushed
/// on `out`, borrowing from `line`; a notice is returned.  A bad line pushes
/// nothing.
pub fn parse_changes<'a>(
    line: &'a str,
    module: &str,
    out: &mut Vec<FileRef<'a>>,
) -> Result<Option<(Level, String)>, String> {
    let line = line.trim_end_matches(['\r', '\n']);
    let strip = |p: &'a str| -> Result<(&'a str, Scan), String> {
        let p = p
            .strip_prefix(module)
            .and_then(|r| r.strip_prefix('/'))
            .unwrap_or(p);
        Ok((p, check_path(p)?))
    };
    let change = |path: &'a str, status, from, to, known| -> Result<FileRef<'a>, String> {
        let (path, scan) = strip(path)?;
        Ok(FileRef {
            change: ChangeRef {
                path,
                status,
                from,
                to,
            },
            known,
            port: &path[..scan.port],
        })
    };
    let mut one = |path: &'a str, status, from, to, known| {
        out.push(change(path, status, from, to, known)?);
        Ok(None)
    };
    // cvs rdiff -s
    // (A path in the ports tree has no space: the first one ends it.)
    if let Some(rest) = line.strip_prefix("File ") {
        let bad = || format!("unrecognised cvs rdiff line: {line}");
        let (p, tail) = rest.split_once(' ').ok_or_else(bad)?;
        if let Some(revs) = tail.strip_prefix("changed from revision ") {
            let (from, to) = revs.split_once(' ').ok_or_else(bad)?;
            let to = to.strip_prefix("to ").ok_or_else(bad)?;
            return one(p, Status::Modified, Some(from), Some(to), true);
        }
        if let Some(r) = tail.strip_prefix("is new; ") {
            return one(p, Status::Added, None, revision(r), true);
        }
        if let Some(r) = tail.strip_prefix("is removed; ") {
            return one(p, Status::Removed, revision(r), None, true);
        }
        return Err(bad());
    }
    // cvs update: messages
    if let Some(rest) = line.strip_prefix("cvs ") {
        if let Some((_, msg)) = rest.split_once(": ") {
            if let Some(q) = msg.strip_suffix(" is no longer in the repository") {
                let p = q.trim_matches(['`', '\'', '"']);
                return one(p, Status::Removed, None, None, true);
            }
            if msg.starts_with("Updating ")
                || msg.starts_with("New directory ")
                || msg.starts_with("Diffing ")
            {
                return Ok(None);
            }
            return Ok(Some((Level::Warning, line.to_string())));
        }
    }
    // cvs update: one letter, a space, a path
    let b = line.as_bytes();
    if b.len() > 2 && b[1] == b' ' && !line[2..].contains([' ', '\t']) {
        let p = &line[2..];
        return match b[0] {
            b'U' | b'P' => one(p, Status::Modified, None, None, true),
            // Changes of the checkout itself, not of the branch: a build host
            // must not rebuild a port for them on every run, but a person must
            // hear of them.
            b'M' | b'A' | b'R' | b'C' => {
                let (path, _) = strip(p)?;
                let what = match b[0] {
                    b'M' => "modified locally",
                    b'A' => "added locally, not committed",
                    b'R' => "removed locally, not committed",
                    _ => "in conflict",
                };
                Ok(Some((
                    Level::Warning,
                    format!("cvs update: {path} is {what}: the checkout needs attention"),
                )))
            }
            b'?' => Ok(None),
            _ => Err(format!("unrecognised line: {line}")),
        };
    }
    // git diff --name-status
    if line.contains('\t') {
        let f: Vec<&str> = line.split('\t').collect();
        let st = f[0];
        let letter = st.chars().next().unwrap_or(' ');
        let score_ok = st[letter.len_utf8()..].bytes().all(|c| c.is_ascii_digit());
        if !score_ok {
            return Err(format!("unrecognised git diff line: {line}"));
        }
        return match (letter, f.len()) {
            ('M' | 'T' | 'U', 2) => one(f[1], Status::Modified, None, None, true),
            ('A', 2) => one(f[1], Status::Added, None, None, true),
            ('D', 2) => one(f[1], Status::Removed, None, None, true),
            ('R', 3) => {
                // Both paths must be good before either is taken.
                let from = change(f[1], Status::Removed, None, None, true)?;
                let to = change(f[2], Status::Added, None, None, true)?;
                out.extend([from, to]);
                Ok(None)
            }
            ('C', 3) => one(f[2], Status::Added, None, None, true),
            _ => Err(format!("unrecognised git diff line: {line}")),
        };
    }
    // a plain path
    if !line.contains(char::is_whitespace) {
        return one(line, Status::Modified, None, None, false);
    }
    Err(format!("unrecognised line: {line}"))
}

/// The revision at the end of `OPENBSD_7_8 revision 1.1.2.1`.
pub(super) fn revision(s: &str) -> Option<&str> {
    let (head, rev) = s.rsplit_once(' ')?;
    head.ends_with("revision").then_some(rev)
}

/// A file path in the tree: relative, no empty, `.` or `..` segments, no control
/// characters.  What the check found out on the way comes back with it.
pub(super) fn check_path(p: &str) -> Result<Scan, String> {
    if p.is_empty() {
        return Err("empty path".into());
    }
    if p.starts_with('/') {
        return Err(format!("absolute path not allowed: {p}"));
    }
    let scan = Scan::new(p);
    if scan.bad_segment {
        return Err(format!("invalid path (empty, . or .. segment): {p}"));
    }
    if scan.odd_byte && p.chars().any(char::is_control) {
        return Err(format!("invalid path (control character): {p:?}"));
    }
    Ok(scan)
}

/// What one pass over the bytes of a file's path finds: what its check needs,
/// and where its directory and its port by path rules end.  (This runs for
/// every line of a change list.)
#[derive(Debug, PartialEq)]
pub(super) struct Scan {
    /// Where the file name starts (after the last `/`).
    pub(super) name: usize,
    /// The length of the port directory by path rules (see [`port_by_path`]).
    pub(super) port: usize,
    /// A segment is empty, `.` or `..`.
    pub(super) bad_segment: bool,
    /// A byte below 0x20 or from 0x7f on: maybe a control character.
    pub(super) odd_byte: bool,
}

impl Scan {
    pub(super) fn new(path: &str) -> Scan {
        let b = path.as_bytes();
        // Quick passes over all bytes, in forms the compiler turns into vector
        // instructions (the odd bytes; where the `/` are, a bit each), then a
        // look at each directory name.
        let odd_byte = b.iter().fold(false, |a, &c| a | !(0x20..0x7f).contains(&c));
        let (mut slashes, mut start) = (0, 0);
        let (mut cut, mut bad_segment) = (None, false);
        let blocks = b.chunks_exact(16);
        let mut tail = [0u8; 16];
        tail[..blocks.remainder().len()].copy_from_slice(blocks.remainder());
        let bits = blocks
            .map(|block| <&[u8; 16]>::try_from(block).map_or(0, slash_bits))
            .chain([slash_bits(&tail)]);
        for (k, mut bits) in bits.enumerate() {
            while bits != 0 {
                let j = 16 * k + bits.trailing_zeros() as usize;
                bits &= bits - 1;
                // A directory ends at `j`.  Below the category, the first
                // `pkg`, `patches` or `files` cuts the port's directory off.
                let seg = &b[start..j];
                bad_segment |= matches!(seg, b"" | b"." | b"..");
                if slashes >= 2 && cut.is_none() && PORT_SUBDIRS.iter().any(|s| s.as_bytes() == seg)
                {
                    cut = Some(start - 1);
                }
                slashes += 1;
                start = j + 1;
            }
        }
        bad_segment |= matches!(&b[start..], b"" | b"." | b"..");
        Scan {
            name: start,
            port: cut.unwrap_or(start.saturating_sub(1)),
            bad_segment,
            odd_byte,
        }
    }
}

/// A bit for each `/` of a block of 16 bytes.
pub(super) fn slash_bits(block: &[u8; 16]) -> u32 {
    let mut bits = 0;
    for (i, &c) in block.iter().enumerate() {
        bits |= u32::from(c == b'/') << i;
    }
    bits
}

/// Why an input was not read; reported in its turn, after the inputs before it.
pub(super) enum Unread {
    /// It could not be opened: an error, and the next input is read.
    Open(String),
    /// Reading it failed: the run ends.
    Read(std::io::Error),
}

/// Every input (the FILE operands, standard input when none or `-`), read whole,
/// with its name for messages.
pub(super) fn read_inputs(files: &[PathBuf]) -> Vec<Input> {
    let stdin = [PathBuf::from("-")];
    let files = if files.is_empty() { &stdin[..] } else { files };
    files
        .iter()
        .map(|path| {
            let mut data = Vec::new();
            if path.as_os_str() == "-" {
                let r = std::io::stdin().lock().read_to_end(&mut data);
                return Input {
                    name: "stdin".into(),
                    text: r.map(|_| data).map_err(Unread::Read),
                };
            }
            let text = match std::fs::File::open(path) {
                Ok(mut f) => f.read_to_end(&mut data).map(|_| data).map_err(Unread::Read),
                Err(e) => Err(Unread::Open(format!("{}: {e}", path.display()))),
            };
            Input {
                name: path.display().to_string().into(),
                text,
            }
        })
        .collect()
}

/// One input, read whole.
pub(super) struct Input {
    /// Its name in messages.
    pub(super) name: Arc<str>,
    pub(super) text: Result<Vec<u8>, Unread>,
}

/// What one input says: its changes, and the rest line by line.
#[derive(Default)]
pub(super) struct Parsed<'a> {
    /// The changes, in one or more parts (one a thread), in order.
    pub(super) changes: Vec<Vec<FileRef<'a>>>,
    /// Records to pass on, notices and errors, with their line numbers, in the
    /// order of the lines.
    pub(super) events: Vec<(usize, Event)>,
    /// The number of lines.
    lines: usize,
}

pub(super) enum Event {
    Record(Record),
    Notice((Level, String)),
    Error(String),
}

/// Parse one input: change list lines, records (passed on as they are), blank
/// lines and `#` comments, as [`jsonl::read_lines`] and [`parse_line`] read them.
pub(super) fn parse_input(data: &[u8]) -> Parsed<'_> {
    use rayon::prelude::*;
    // Parsing is most of the work left for a long list: it is shared among the
    // threads, each taking a run of whole lines, and put together in order.
    const MIN_PART: usize = 256 * 1024;
    let n = (data.len() / MIN_PART).clamp(1, rayon::current_num_threads());
    let mut parts = Vec::with_capacity(n);
    let mut rest = data;
    for left in (1..n).rev() {
        // Cut off an equal share of what is left, at the next line end.
        let mut cut = rest.len() - rest.len() / (left + 1);
        while cut < rest.len() && rest[cut - 1] != b'\n' {
            cut += 1;
        }
        let (part, r) = rest.split_at(cut);
        parts.push(part);
        rest = r;
    }
    parts.push(rest);
    let pieces: Vec<Parsed> = parts.into_par_iter().map(parse_part).collect();
    // The changes stay in their parts (putting them together would copy them).
    let mut all = Parsed::default();
    for p in pieces {
        let before = all.lines;
        all.changes.extend(p.changes);
        all.events
            .extend(p.events.into_iter().map(|(line, e)| (before + line, e)));
        all.lines += p.lines;
    }
    all
}

/// Parse a run of whole lines; their numbers count from 1.
pub(super) fn parse_part(data: &[u8]) -> Parsed<'_> {
    let mut p = Parsed::default();
    // Room for a change a line as short as 32 bytes (cvs rdiff lines are some
    // 90): the Vec is not moved as it grows, and what is not used costs only
    // address space.
    let mut changes = Vec::with_capacity(data.len() / 32);
    let events = &mut p.events;
    p.lines = for_each_line(data, |n, line| {
        let Some(line) = line else {
            events.push((n, Event::Error("line is not UTF-8".into())));
            return;
        };
        match jsonl::classify(line.trim_end_matches('\r')) {
            None => {}
            Some(Err(e)) => events.push((n, Event::Error(e.to_string()))),
            Some(Ok(ItemRef::Record(r))) => events.push((n, Event::Record(r))),
            Some(Ok(ItemRef::Text(t))) => match parse_changes(t, "ports", &mut changes) {
                Ok(None) => {}
                Ok(Some(notice)) => events.push((n, Event::Notice(notice))),
                Err(e) => events.push((n, Event::Error(e))),
            },
        }
    });
    p.changes.push(changes);
    p
}

/// Call `f` with the number (from 1) and the text of each line of `data`, without
/// its `\n`; `None` for a line that is not UTF-8.  Lines end at `\n`; a last line
/// without one counts.  Returns the number of lines.
pub(super) fn for_each_line<'a>(
    data: &'a [u8],
    mut f: impl FnMut(usize, Option<&'a str>),
) -> usize {
    let mut n = 0;
    let mut rest = data;
    while !rest.is_empty() {
        // Check the text as a whole, the fast way; only where that fails, find
        // the line at fault.
        let (good, bad_end) = match std::str::from_utf8(rest) {
            Ok(text) => (text, None),
            Err(e) => {
                let at = e.valid_up_to();
                let start = rest[..at]
                    .iter()
                    .rposition(|&b| b == b'\n')
                    .map_or(0, |i| i + 1);
                let end = rest[at..]
                    .iter()
                    .position(|&b| b == b'\n')
                    .map_or(rest.len(), |i| at + i + 1);
                // The lines before the bad one are good: this cannot fail.
                let good = std::str::from_utf8(&rest[..start]).unwrap_or_default();
                (good, Some(end))
            }
        };
        for line in good.split_terminator('\n') {
            n += 1;
            f(n, Some(line));
        }
        let Some(end) = bad_end else { break };
        n += 1;
        f(n, None);
        rest = &rest[end..];
    }
    n
}

/// Parse a whole change list (for tests and the library user).
pub fn parse_all(text: impl Read, diag: &Diag) -> Result<Vec<FileChange>, Error> {
    let mut v = Vec::new();
    jsonl::read_lines("input".into(), text, diag, &mut |item, loc| {
        if let Item::Text(t) = item {
            match parse_line(&t, "ports") {
                Ok(Line::Changes(c)) => v.extend(c),
                Ok(_) => {}
                Err(e) => diag.error_at(loc, e),
            }
        }
        Ok(())
    })?;
    Ok(v)
}
