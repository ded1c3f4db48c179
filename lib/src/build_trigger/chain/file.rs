//! The chain file: one stage a line, `${NAME}` expanded, programs found.

use std::collections::HashMap;
use std::fs::{self};
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::Error;

use super::*;

#[derive(Debug, Clone, PartialEq)]
pub(super) enum Part {
    Lit(String),
    /// One of [`BATCH_VARS`].
    Batch(usize),
}

/// One stage of the chain.
#[derive(Debug, Clone)]
pub struct Stage {
    /// The program's file name, as the records and file names say it.
    pub name: String,
    pub program: PathBuf,
    args: Vec<Vec<Part>>,
}

impl Stage {
    pub(super) fn args(&self, vals: &[&str; 2]) -> Vec<String> {
        self.args
            .iter()
            .map(|w| {
                w.iter()
                    .map(|p| match p {
                        Part::Lit(s) => s.as_str(),
                        Part::Batch(i) => vals[*i],
                    })
                    .collect()
            })
            .collect()
    }
}

/// A loaded chain file.
#[derive(Debug, Clone)]
pub struct Chain {
    pub path: PathBuf,
    pub stages: Vec<Stage>,
    /// The --env settings, given to every stage over the inherited environment.
    pub env: Vec<(String, String)>,
}

/// Replace `${NAME}` in one word.
pub(super) fn expand(word: &str, vars: &HashMap<String, String>) -> Result<Vec<Part>, String> {
    let mut parts = Vec::new();
    let mut lit = String::new();
    let mut rest = word;
    while let Some(i) = rest.find("${") {
        lit.push_str(&rest[..i]);
        let after = &rest[i + 2..];
        let Some(end) = after.find('}') else {
            return Err(format!("{word}: ${{ without }}"));
        };
        let name = &after[..end];
        if crate::names::VarName::parse(name).is_err() {
            return Err(format!("{word}: ${{{name}}} is not a variable name"));
        }
        if let Some(b) = BATCH_VARS.iter().position(|v| *v == name) {
            if !lit.is_empty() {
                parts.push(Part::Lit(std::mem::take(&mut lit)));
            }
            parts.push(Part::Batch(b));
        } else {
            match vars.get(name) {
                Some(v) => lit.push_str(v),
                None => return Err(format!("${{{name}}} is not set: give --env {name}=VALUE")),
            }
        }
        rest = &after[end + 1..];
    }
    lit.push_str(rest);
    if !lit.is_empty() || parts.is_empty() {
        parts.push(Part::Lit(lit));
    }
    Ok(parts)
}

/// The program of a stage: a path, or a name looked up in the stages' PATH.
pub(super) fn resolve(prog: &str, path: Option<&str>) -> Result<PathBuf, String> {
    match crate::proc::find_program(
        prog.as_ref(),
        Some(path.unwrap_or("/usr/bin:/bin").as_ref()),
    ) {
        Some(p) => std::path::absolute(&p).map_err(|e| format!("{}: {e}", p.display())),
        None if prog.contains('/') => Err(format!("{prog}: not an executable file")),
        None => Err(format!("{prog}: command not found in PATH")),
    }
}

/// A stage name fit for a file name: no `.` (which separates the parts of
/// `<id>.<n>.<stage>.stderr`), no `/`.
pub(super) fn file_word(name: &str) -> String {
    let w: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '+') {
                c
            } else {
                '_'
            }
        })
        .collect();
    if w.is_empty() {
        "stage".into()
    } else {
        w
    }
}

impl Chain {
    /// Read a chain file: one stage a line, a program and its arguments split on
    /// white space, `#` comments and blank lines skipped, `${NAME}` replaced from
    /// the --env settings over the inherited environment.  Errors are usage
    /// errors naming the file and line.
    pub fn load(path: &Path, settings: &[(String, String)]) -> Result<Chain, Error> {
        let bad = |line: usize, m: String| Error::Usage(format!("{}:{line}: {m}", path.display()));
        let text = fs::read(path).map_err(|e| Error::Usage(format!("{}: {e}", path.display())))?;
        let text = String::from_utf8(text)
            .map_err(|_| Error::Usage(format!("{}: not UTF-8", path.display())))?;
        let mut vars: HashMap<String, String> = std::env::vars_os()
            .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
            .collect();
        for (k, v) in settings {
            vars.insert(k.clone(), v.clone());
        }
        let mut stages = Vec::new();
        for (i, line) in text.lines().enumerate() {
            let t = line.trim();
            if t.is_empty() || t.starts_with('#') {
                continue;
            }
            let mut words = Vec::new();
            for w in t.split_whitespace() {
                words.push(expand(w, &vars).map_err(|m| bad(i + 1, m))?);
            }
            let prog = match words.remove(0).as_slice() {
                [Part::Lit(p)] => p.clone(),
                _ => {
                    return Err(bad(
                        i + 1,
                        "the program cannot come from ${PORTFLOW_BATCH} or ${PORTFLOW_SPOOL}"
                            .into(),
                    ))
                }
            };
            if prog.is_empty() {
                return Err(bad(i + 1, "the program is an empty word".into()));
            }
            let program =
                resolve(&prog, vars.get("PATH").map(String::as_str)).map_err(|m| bad(i + 1, m))?;
            let name = Path::new(&prog)
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or(prog);
            stages.push(Stage {
                name,
                program,
                args: words,
            });
        }
        if stages.is_empty() {
            return Err(Error::Usage(format!("{}: no stage", path.display())));
        }
        Ok(Chain {
            path: path.to_path_buf(),
            stages,
            env: settings.to_vec(),
        })
    }

    /// The command of stage `st` for batch `id` of the spool at `root`: its
    /// program, `first` (before the stage's own arguments), its arguments,
    /// the --env settings and the batch's variables in its environment.
    pub fn command(&self, st: &Stage, id: &str, root: &str, first: &[&str]) -> Command {
        let mut cmd = Command::new(&st.program);
        cmd.args(first)
            .args(st.args(&[id, root]))
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .env(BATCH_VARS[0], id)
            .env(BATCH_VARS[1], root);
        cmd
    }

    /// The value of a variable for the stages: --env, then the inherited one.
    pub fn var(&self, name: &str) -> Option<String> {
        self.env
            .iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .or_else(|| std::env::var(name).ok())
    }
}

/// `cur/<id>.<n>.<stage>.stderr`, n counted from 1.
pub fn stderr_name(id: &str, n: usize, stage: &str) -> String {
    format!("{id}.{n}.{}.stderr", file_word(stage))
}
