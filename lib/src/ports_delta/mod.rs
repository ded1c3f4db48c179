//! ports-delta: from a change list to the ports that changed.
//!
//! Reads change lists (`cvs rdiff -s`, `cvs update`, `git diff --name-status`, plain
//! paths, mixed line by line) or runs the VCS itself, maps every file to the port it
//! belongs to, and emits one `port` record per changed port, `removed` records for
//! ports that are gone, and `notice` records for what the summary must show.

mod parse;
mod resolve;
#[cfg(test)]
mod tests;
mod vcs;
mod write;

use std::path::PathBuf;

use crate::diag::{Diag, Exit, Loc};
use crate::jsonl::Output;
use crate::ports::PortDirs;
use crate::record::Level;
use crate::Error;

pub use parse::*;
pub use resolve::*;
use vcs::*;
pub use write::*;

pub const TOOL: &str = "ports-delta";

/// List the ports changed between two revisions of the ports tree.
#[derive(clap::Parser, Debug)]
#[command(name = "ports-delta", version, max_term_width = 100)]
pub struct Args {
    /// Print the changed pkgpaths, one a line, sorted and unique, instead of records.
    #[arg(short = 't', long = "text")]
    pub text: bool,
    /// The ports tree (the -stable checkout) used to map files to ports.
    #[arg(long, env = "PORTSDIR", value_name = "DIR")]
    pub ports_dir: Option<PathBuf>,
    /// Leave out the ports matching this shell glob (repeatable), with a notice.
    #[arg(long, value_name = "GLOB")]
    pub exclude: Vec<String>,
    /// Run `cvs -q rdiff -s -r BASE -r BRANCH` on the checkout in --ports-dir.
    #[arg(long, value_name = "BASE:BRANCH", conflicts_with_all = ["git", "files"])]
    pub cvs: Option<String>,
    /// Run `git diff --name-status BASE BRANCH` in --ports-dir.
    #[arg(long, value_name = "BASE..BRANCH", conflicts_with = "files")]
    pub git: Option<String>,
    /// Change lists to read; standard input when none is given.
    #[arg(value_name = "FILE")]
    pub files: Vec<PathBuf>,
}

pub fn main() -> std::process::ExitCode {
    let args: Args = crate::diag::parse_args(TOOL);
    let diag = Diag::new(TOOL);
    let r = run(&args, &diag);
    diag.exit(r)
}

pub fn run(args: &Args, diag: &Diag) -> Result<Exit, Error> {
    let tree_dir = match &args.ports_dir {
        Some(d) => {
            if !d.is_dir() {
                return Err(Error::Usage(format!(
                    "{}: ports tree not found (--ports-dir or PORTSDIR)",
                    d.display()
                )));
            }
            Some(d.clone())
        }
        None => None,
    };
    let mut out = Output::stdout();
    // The change lists are read whole and the changes borrow their text from
    // them (a whole release's list is some megabytes).
    let vcs = if args.cvs.is_some() || args.git.is_some() {
        let Some(dir) = &tree_dir else {
            return Err(Error::Usage(
                "--cvs and --git need the checkout: give --ports-dir or set PORTSDIR".into(),
            ));
        };
        Some(run_vcs_diff(args, dir)?)
    } else {
        None
    };
    let inputs = match vcs {
        Some(_) => Vec::new(),
        None => read_inputs(&args.files),
    };
    // The changes, in parts.
    let mut changes: Vec<Vec<FileRef>> = Vec::new();
    let mut notices: Vec<(Level, String)> = Vec::new();
    if let Some((text, name, module)) = &vcs {
        let mut vcs_changes = Vec::new();
        let mut loc = Loc {
            file: (*name).into(),
            line: 0,
        };
        for line in text.lines() {
            loc.line += 1;
            if line.trim().is_empty() {
                continue;
            }
            match parse_changes(line, module, &mut vcs_changes) {
                Ok(Some(n)) => notices.push(n),
                Ok(None) => {}
                Err(e) => diag.error_at(&loc, e),
            }
        }
        changes.push(vcs_changes);
    }
    for Input { name, text } in &inputs {
        let data = match text {
            Ok(d) => d,
            Err(Unread::Open(msg)) => {
                diag.error(msg);
                continue;
            }
            Err(Unread::Read(e)) => {
                return Err(Error::io(
                    &**name,
                    std::io::Error::new(e.kind(), e.to_string()),
                ))
            }
        };
        let parsed = parse_input(data);
        for (line, event) in parsed.events {
            let loc = Loc {
                file: name.clone(),
                line,
            };
            match event {
                Event::Record(r) if !args.text => out.record(&r)?,
                Event::Record(_) => {}
                Event::Notice(n) => notices.push(n),
                Event::Error(e) => diag.error_at(&loc, e),
            }
        }
        changes.extend(parsed.changes);
    }

    let mut dirs = tree_dir.map(PortDirs::new);
    let parts: Vec<&[FileRef]> = changes.iter().map(Vec::as_slice).collect();
    let mut delta = resolve(&parts, dirs.as_mut(), &args.exclude);
    let mut all = notices;
    all.append(&mut delta.notices);
    delta.notices = all;

    // A directory that cannot be a pkgpath is an error of the input.
    for (level, msg) in &delta.notices {
        if *level == Level::Error {
            diag.error(msg);
        }
    }
    if args.text {
        for (d, _) in delta.sorted_ports() {
            out.line(d)?;
        }
        for (level, msg) in &delta.notices {
            if *level == Level::Warning {
                diag.warn(format_args!("{}: {msg}", level.as_str()));
            }
        }
    } else {
        write_records(&delta, &mut out)?;
    }
    out.flush()?;
    Ok(diag.finish(if delta.ports.is_empty() {
        Exit::NothingToDo
    } else {
        Exit::Success
    }))
}
