//! pkgpath-expand: from port directories to every full pkgpath to build.
//!
//! Each `port` record (or plain pkgpath line) is replaced by one record per
//! canonical full pkgpath of the port, found by exact lookups in sqlports.  A full
//! pkgpath on input is canonicalised, not expanded; a pkgpath sqlports does not
//! know passes through unexpanded with a warning; the same full pkgpath reached
//! twice comes out once, with both causes.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;

use serde_json::Value;

use crate::diag::{Diag, Exit, Loc};
use crate::jsonl::{Inputs, Item, Output};
use crate::pkgpath::PkgPath;
use crate::record::{Kind, Level, Record};
use crate::sqlports::{Sqlports, DEFAULT_DB};
use crate::Error;

pub const TOOL: &str = "pkgpath-expand";

/// Expand pkgpaths to every flavor and subpackage through sqlports.
#[derive(clap::Parser, Debug)]
#[command(name = "pkgpath-expand", version, max_term_width = 100)]
pub struct Args {
    /// Print the full pkgpaths, one a line, sorted and unique, instead of records.
    #[arg(short = 't', long = "text")]
    pub text: bool,
    /// The sqlports database.
    #[arg(long, env = "SQLPORTS", value_name = "FILE", default_value = DEFAULT_DB)]
    pub db: PathBuf,
    /// Inputs: port records or pkgpaths, one a line; standard input when none.
    #[arg(value_name = "FILE")]
    pub files: Vec<PathBuf>,
}

pub fn main() -> std::process::ExitCode {
    crate::diag::tool_main(TOOL, run)
}

/// The expanded port records, deduplicated by full pkgpath, in first-seen order.
/// They are held as JSON lines: a port with many changes and flavors would
/// otherwise hold a tree of values per flavor.  A full pkgpath reached again
/// (rare) is parsed back, merged and written anew.
#[derive(Default)]
struct Expanded {
    lines: Vec<String>,
    index: HashMap<String, usize>,
}

impl Expanded {
    fn add(&mut self, r: &Record, full: String) {
        match self.index.get(&full) {
            Some(&i) => {
                if let Ok(mut held) = Record::parse(&self.lines[i]) {
                    merge(&mut held, r);
                    self.lines[i] = held.to_line();
                }
            }
            None => {
                self.index.insert(full, self.lines.len());
                self.lines.push(r.to_line());
            }
        }
    }
}

/// Merge the causes of `b` into `a`: its changes (each once) and its `why`.
fn merge(a: &mut Record, b: &Record) {
    if let Some(Value::Array(bc)) = b.get("changes") {
        let mut ac = match a.get("changes") {
            Some(Value::Array(v)) => v.clone(),
            _ => Vec::new(),
        };
        for c in bc {
            if !ac.contains(c) {
                ac.push(c.clone());
            }
        }
        a.set("changes", Value::Array(ac));
    }
    if let Some(bw) = b.str("why") {
        let mut parts: Vec<String> = a
            .str("why")
            .map(|w| w.split("; ").map(str::to_string).collect())
            .unwrap_or_default();
        for w in bw.split("; ") {
            if !parts.iter().any(|p| p == w) {
                parts.push(w.to_string());
            }
        }
        a.set("why", parts.join("; "));
    }
    // A cause with no reason (a direct change) wins over an indirect one only in
    // `changes`; `why` keeps every indirect reason.
}

pub fn run(args: &Args, diag: &Diag) -> Result<Exit, Error> {
    let db = Sqlports::open(&args.db)?;
    let mut out = Output::stdout();
    let mut expanded = Expanded::default();
    let mut notices_seen = HashSet::new();

    let mut notice = |out: &mut Output, level: Level, msg: String| -> Result<(), Error> {
        if !notices_seen.insert(msg.clone()) {
            return Ok(());
        }
        if args.text {
            diag.warn(format_args!("{}: {msg}", level.as_str()));
            Ok(())
        } else {
            out.record(&Record::notice(TOOL, level, msg))
        }
    };

    Inputs::new(&args.files).for_each(diag, |item, loc: &Loc| {
        // `given`: the pkgpath to expand; `full`: true when the record already
        // names a full pkgpath (expanded before), which is only canonicalised.
        let (rec, given, full) = match item {
            Item::Record(r) if r.is(Kind::Port) => {
                let field = if r.get("fullpkgpath").is_some() {
                    "fullpkgpath"
                } else {
                    "pkgpath"
                };
                match r.require_str(field) {
                    Ok(s) => {
                        let s = s.to_string();
                        (r, s, field == "fullpkgpath")
                    }
                    Err(e) => {
                        diag.error_at(loc, format_args!("{e}; passed on unexpanded"));
                        if !args.text {
                            out.record(&r)?;
                        }
                        return Ok(());
                    }
                }
            }
            Item::Record(r) => {
                if !args.text {
                    out.record(&r)?;
                }
                return Ok(());
            }
            Item::Text(t) => (Record::new(Kind::Port), t, false),
        };
        let p = match PkgPath::parse(&given) {
            Ok(p) => p,
            Err(e) => {
                diag.error_at(loc, &e);
                return notice(&mut out, Level::Error, format!("{e}: not built"));
            }
        };
        let mut rec = rec;
        rec.set_default("pkgpath", p.dir());
        if p.is_bare() && !full {
            let fulls = db.expand(p.dir())?;
            if fulls.is_empty() {
                notice(
                    &mut out,
                    Level::Warning,
                    format!(
                        "{}: not in sqlports (new on -stable?): passed on unexpanded, still to be built",
                        p.dir()
                    ),
                )?;
                let mut r = rec;
                r.set("fullpkgpath", p.dir());
                expanded.add(&r, p.dir().to_string());
            } else {
                let mut r = rec;
                for f in fulls {
                    r.set("fullpkgpath", f.as_str());
                    expanded.add(&r, f);
                }
            }
        } else {
            // A full pkgpath (or one expanded before): canonicalised only.
            let norm = p.to_string();
            let full = match db.canonical(&norm)? {
                Some(c) => c,
                None => {
                    notice(
                        &mut out,
                        Level::Warning,
                        format!("{norm}: not in sqlports: passed on as given, still to be built"),
                    )?;
                    norm
                }
            };
            let mut r = rec;
            r.set("fullpkgpath", full.as_str());
            expanded.add(&r, full);
        }
        Ok(())
    })?;

    if args.text {
        let mut v: Vec<&String> = expanded.index.keys().collect();
        v.sort();
        for f in v {
            out.line(f)?;
        }
    } else {
        for l in &expanded.lines {
            out.line(l)?;
        }
    }
    out.flush()?;
    Ok(diag.finish(if expanded.lines.is_empty() {
        Exit::NothingToDo
    } else {
        Exit::Success
    }))
}
