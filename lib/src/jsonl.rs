//! Reading and writing JSON Lines, with plain text lines accepted on input.
//!
//! Input: one record a line; a line that does not start with `{` is a plain text
//! item (a pkgpath, a file name, ...); blank lines and `#` comments are skipped.  A
//! bad line is reported as `tool: file:line: message` and reading goes on.
//!
//! Output: records or text lines on stdout; a closed pipe ends the tool quietly.

use std::fs::File;
use std::io::{self, BufRead, BufReader, BufWriter, Read, Write};
use std::path::PathBuf;
use std::sync::Arc;

use crate::diag::{Diag, Loc};
use crate::record::{Kind, Level};
use crate::{Error, Record};

/// One input item.
#[derive(Debug, Clone, PartialEq)]
pub enum Item {
    Record(Record),
    Text(String),
}

/// The inputs of a filter: named files, or stdin when none (or `-`) is named.
pub struct Inputs {
    files: Vec<PathBuf>,
}

impl Inputs {
    pub fn new(files: &[PathBuf]) -> Self {
        Inputs {
            files: if files.is_empty() {
                vec![PathBuf::from("-")]
            } else {
                files.to_vec()
            },
        }
    }

    /// Read every line of every input, calling `f` with each item.  Lines that are
    /// not valid are reported through `diag`; an input that cannot be opened is
    /// reported and skipped.  `f` may stop the reading with an error.
    pub fn for_each(
        &self,
        diag: &Diag,
        mut f: impl FnMut(Item, &Loc) -> Result<(), Error>,
    ) -> Result<(), Error> {
        for path in &self.files {
            let (name, reader): (Arc<str>, Box<dyn Read>) = if path.as_os_str() == "-" {
                ("stdin".into(), Box::new(io::stdin().lock()))
            } else {
                match File::open(path) {
                    Ok(f) => (path.display().to_string().into(), Box::new(f)),
                    Err(e) => {
                        diag.error(format_args!("{}: {}", path.display(), e));
                        continue;
                    }
                }
            };
            read_lines(name, reader, diag, &mut f)?;
        }
        Ok(())
    }
}

/// Read lines from one reader (see [`Inputs::for_each`]).
pub fn read_lines(
    name: Arc<str>,
    reader: impl Read,
    diag: &Diag,
    f: &mut impl FnMut(Item, &Loc) -> Result<(), Error>,
) -> Result<(), Error> {
    let mut r = BufReader::with_capacity(64 * 1024, reader);
    let mut buf = Vec::with_capacity(256);
    let mut loc = Loc {
        file: name,
        line: 0,
    };
    loop {
        buf.clear();
        let n = r
            .read_until(b'\n', &mut buf)
            .map_err(|e| Error::io(&*loc.file, e))?;
        if n == 0 {
            return Ok(());
        }
        loc.line += 1;
        let Ok(line) = std::str::from_utf8(&buf) else {
            diag.error_at(&loc, "line is not UTF-8");
            continue;
        };
        let line = line.trim_end_matches(['\n', '\r']);
        if let Some(item) = parse_line(line, &loc, diag) {
            f(item, &loc)?;
        }
    }
}

/// One line to an item; `None` for skipped and bad lines (the latter reported).
pub fn parse_line(line: &str, loc: &Loc, diag: &Diag) -> Option<Item> {
    match classify(line)? {
        Ok(ItemRef::Record(r)) => Some(Item::Record(r)),
        Ok(ItemRef::Text(t)) => Some(Item::Text(t.to_string())),
        Err(e) => {
            diag.error_at(loc, e);
            None
        }
    }
}

/// One input item, the text borrowed from its line.
#[derive(Debug, Clone, PartialEq)]
pub enum ItemRef<'a> {
    Record(Record),
    Text(&'a str),
}

/// What one line is, by the rules of [`parse_line`], without reporting anything
/// (for readers that report later, or in another order): `None` for blank lines
/// and comments, an error for a bad record.
pub fn classify(line: &str) -> Option<Result<ItemRef<'_>, crate::record::RecordError>> {
    let t = line.trim();
    if t.is_empty() || t.starts_with('#') {
        return None;
    }
    Some(if t.starts_with('{') {
        Record::parse(t).map(ItemRef::Record)
    } else {
        Ok(ItemRef::Text(t))
    })
}

/// The `-t` form of a tool's output: the one line a script wants from a record,
/// or nothing.
pub type TextView = Box<dyn Fn(&Record) -> Option<String>>;

/// Where a tool writes its records (or text lines).
pub struct Output {
    out: BufWriter<Box<dyn Write>>,
    flush_each: bool,
    view: Option<TextView>,
}

impl Output {
    /// Standard output, block-buffered.
    pub fn stdout() -> Self {
        Output::new(Box::new(io::stdout()))
    }

    pub fn new(w: Box<dyn Write>) -> Self {
        Output {
            out: BufWriter::with_capacity(64 * 1024, w),
            flush_each: false,
            view: None,
        }
    }

    /// Plain text out (`-t`): every record goes through `view`, which gives the
    /// line to print for it, if any.
    pub fn text_view(mut self, view: impl Fn(&Record) -> Option<String> + 'static) -> Self {
        self.view = Some(Box::new(view));
        self
    }

    /// Flush after every line, for tools whose records come slowly (builds).
    pub fn flush_each(mut self, yes: bool) -> Self {
        self.flush_each = yes;
        self
    }

    pub fn record(&mut self, r: &Record) -> Result<(), Error> {
        match &self.view {
            None => self.line(&r.to_line()),
            Some(view) => match view(r) {
                Some(l) => self.line(&l),
                None => Ok(()),
            },
        }
    }

    /// Write any serialisable value as one JSON line (records this tool makes, in
    /// their documented field order, without building a `Record` first).
    pub fn serialize<T: serde::Serialize>(&mut self, v: &T) -> Result<(), Error> {
        serde_json::to_writer(&mut self.out, v).map_err(|e| match e.io_error_kind() {
            Some(_) => Error::stdout(std::io::Error::from(e)),
            None => Error::Stdout(std::io::Error::other(e)),
        })?;
        self.out.write_all(b"\n").map_err(Error::stdout)?;
        if self.flush_each {
            self.flush()?;
        }
        Ok(())
    }

    pub fn line(&mut self, s: &str) -> Result<(), Error> {
        self.out.write_all(s.as_bytes()).map_err(Error::stdout)?;
        self.out.write_all(b"\n").map_err(Error::stdout)?;
        if self.flush_each {
            self.flush()?;
        }
        Ok(())
    }

    pub fn flush(&mut self) -> Result<(), Error> {
        self.out.flush().map_err(Error::stdout)
    }
}

impl Drop for Output {
    fn drop(&mut self) {
        let _ = self.out.flush();
    }
}

/// In a `-t` view: a warning or error notice goes to stderr as
/// `tool: level: message`, since it has no place in the text.
pub fn notice_to_stderr(diag: &Diag, r: &Record) {
    let level = r.word::<Level>("level");
    if let (true, Some(level @ (Level::Warning | Level::Error))) = (r.is(Kind::Notice), level) {
        diag.warn(format_args!("{level}: {}", r.str("message").unwrap_or("")));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn items(input: &str) -> (Vec<(Item, usize)>, usize) {
        let diag = Diag::new("test");
        let mut v = Vec::new();
        read_lines("t".into(), input.as_bytes(), &diag, &mut |i, l| {
            v.push((i, l.line));
            Ok(())
        })
        .unwrap();
        (v, diag.errors())
    }

    #[test]
    fn mixed_lines() {
        let (v, errors) = items(
            "# comment\n\nnet/curl\n{\"kind\":\"x\",\"v\":1}\n{\"kind\":\"port\",\"v\":1,\"pk\n  editors/vim,gtk2  \r\nlast",
        );
        assert_eq!(errors, 1);
        assert_eq!(v.len(), 4);
        assert_eq!(v[0], (Item::Text("net/curl".into()), 3));
        assert!(matches!(&v[1], (Item::Record(r), 4) if r.kind() == "x"));
        assert_eq!(v[2], (Item::Text("editors/vim,gtk2".into()), 6));
        assert_eq!(v[3], (Item::Text("last".into()), 7));
    }

    #[test]
    fn not_utf8_is_reported() {
        let diag = Diag::new("test");
        let mut n = 0;
        read_lines(
            "t".into(),
            &b"\xff\xfe\nnet/curl\n"[..],
            &diag,
            &mut |_, _| {
                n += 1;
                Ok(())
            },
        )
        .unwrap();
        assert_eq!((n, diag.errors()), (1, 1));
    }
}
