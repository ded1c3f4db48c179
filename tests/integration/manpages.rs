//! The manual pages: one for every binary, in step with its clap command, the
//! record page in step with the records the tools write, and every page clean under
//! `mandoc -Tlint` and `groff -ww`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use clap::CommandFactory;
use serde_json::Value;

use crate::support::*;

/// How a tool's clap command is obtained.
type CommandFn = fn() -> clap::Command;

/// Every binary and its clap command.  A new tool is one line here (and its page).
const TOOLS: &[(&str, CommandFn)] = &[
    ("ports-delta", portflow::ports_delta::Args::command),
    ("pkgpath-expand", portflow::pkgpath_expand::Args::command),
    ("build-list", portflow::build_list::Args::command),
    ("clean-env", portflow::clean_env::Args::command),
    ("collect-built", portflow::collect_built::Args::command),
    ("rsync-list", portflow::rsync_list::Args::command),
    ("summary-mail", portflow::summary_mail::Args::command),
    ("build-coordinator", portflow::coordinator::Args::command),
    ("build-trigger", portflow::build_trigger::Args::command),
];

/// The record kinds of DESIGN.md section 3 and their fields: each kind needs a
/// `.Ss` subsection in portflow-records(5) with an `.It Cm <field>` for each field.
const KINDS: &[(&str, &[&str])] = &[
    ("batch", &["id", "created", "tree", "source"]),
    ("port", &["pkgpath", "fullpkgpath", "changes", "why"]),
    ("removed", &["pkgpath"]),
    ("notice", &["tool", "level", "message"]),
    ("clean", &["action", "target", "status"]),
    (
        "build",
        &["fullpkgpath", "target", "status", "log", "seconds"],
    ),
    (
        "package",
        &[
            "fullpkgpath",
            "pkgname",
            "file",
            "path",
            "size",
            "sha256",
            "debug",
        ],
    ),
    ("transfer", &["file", "dest", "status"]),
    ("target", &["name", "arch", "status", "seconds", "message"]),
    ("mail", &["to", "subject", "status", "message_id", "path"]),
    (
        "spool",
        &[
            "state",
            "since",
            "stage",
            "pid",
            "heartbeat",
            "running",
            "stages",
            "seconds",
        ],
    ),
];

/// Fields every record may have, documented in the general part of the page.
const COMMON_FIELDS: &[&str] = &["kind", "v", "batch", "arch", "host"];

/// Sections every tool page has.
const TOOL_SECTIONS: &[&str] = &[
    "NAME",
    "SYNOPSIS",
    "DESCRIPTION",
    "EXIT STATUS",
    "EXAMPLES",
    "SEE ALSO",
];

const RECORDS_PAGE: &str = "man/man5/portflow-records.5";

/// The `[[bin]]` names of the root Cargo.toml.
fn bins() -> Vec<String> {
    let text = std::fs::read_to_string(root().join("Cargo.toml")).expect("read Cargo.toml");
    let mut v = Vec::new();
    let mut in_bin = false;
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with('[') {
            in_bin = line == "[[bin]]";
            continue;
        }
        if !in_bin {
            continue;
        }
        if let Some((k, val)) = line.split_once('=') {
            if k.trim() == "name" {
                let name = val.split('"').nth(1).unwrap_or_else(|| val.trim());
                v.push(name.to_string());
            }
        }
    }
    assert!(!v.is_empty(), "no [[bin]] found in Cargo.toml");
    v
}

/// Every page under man/.
fn pages() -> Vec<PathBuf> {
    let mut v = Vec::new();
    let Ok(dirs) = std::fs::read_dir(root().join("man")) else {
        return v;
    };
    for d in dirs.flatten() {
        let name = d.file_name().to_string_lossy().into_owned();
        let Some(sec) = name.strip_prefix("man") else {
            continue;
        };
        for f in std::fs::read_dir(d.path()).into_iter().flatten().flatten() {
            let fname = f.file_name().to_string_lossy().into_owned();
            if fname.rsplit_once('.').map(|(_, s)| s) == Some(sec) {
                v.push(f.path());
            }
        }
    }
    v.sort();
    v
}

fn read_page(rel: &str) -> String {
    let p = root().join(rel);
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{rel}: {e}: the page is missing"))
}

/// The arguments of a macro line, quotes honoured: `.It Fl a Ar "x y"` gives
/// `["It", "Fl", "a", "Ar", "x y"]`.
fn macro_args(line: &str) -> Vec<String> {
    let Some(rest) = line.strip_prefix('.') else {
        return Vec::new();
    };
    let mut v = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    let mut any = false;
    for c in rest.chars() {
        match c {
            '"' => {
                quoted = !quoted;
                any = true;
            }
            ' ' | '\t' if !quoted => {
                if any {
                    v.push(std::mem::take(&mut cur));
                    any = false;
                }
            }
            c => {
                cur.push(c);
                any = true;
            }
        }
    }
    if any {
        v.push(cur);
    }
    v
}

/// A callable mdoc macro name (`Ar`, `Ns`, `Op`, ...), not a flag.
fn is_macro(tok: &str) -> bool {
    let b = tok.as_bytes();
    (2..=3).contains(&b.len())
        && b[0].is_ascii_uppercase()
        && b[1..].iter().all(|c| c.is_ascii_lowercase())
}

/// An option as the page or clap names it: `-t` or `--text`.
type Opt = String;

/// The options named by `Fl` on one macro line, in order, with whether an `Ar`
/// follows each.
fn line_flags(line: &str) -> Vec<(Opt, bool)> {
    let a = macro_args(line);
    let mut v: Vec<(Opt, bool)> = Vec::new();
    let mut i = 0;
    while i < a.len() {
        if a[i] == "Fl" {
            i += 1;
            let mut names = Vec::new();
            while i < a.len() && !is_macro(&a[i]) {
                let t = a[i].trim_start_matches("\\&");
                if let Some(long) = t.strip_prefix('-') {
                    if !long.is_empty() {
                        names.push(format!("--{long}"));
                    }
                } else if !t.is_empty() && t.chars().all(|c| c.is_ascii_alphanumeric()) {
                    names.extend(t.chars().map(|c| format!("-{c}")));
                } else {
                    break;
                }
                i += 1;
            }
            let arg = a.get(i).is_some_and(|t| t == "Ar");
            v.extend(names.into_iter().map(|n| (n, arg)));
        } else {
            i += 1;
        }
    }
    v
}

/// The lines of each `.Sh` section, by name.
fn sections(text: &str) -> BTreeMap<String, Vec<&str>> {
    let mut m: BTreeMap<String, Vec<&str>> = BTreeMap::new();
    let mut cur = String::new();
    for line in text.lines() {
        if let Some(name) = line.strip_prefix(".Sh ") {
            cur = name.trim().trim_matches('"').to_string();
            m.entry(cur.clone()).or_default();
        } else if !cur.is_empty() {
            m.entry(cur.clone()).or_default().push(line);
        }
    }
    m
}

/// The lines of each `.Ss` subsection, by the words of its title.
fn subsections<'a>(lines: &[&'a str]) -> Vec<(Vec<String>, Vec<&'a str>)> {
    let mut v: Vec<(Vec<String>, Vec<&'a str>)> = Vec::new();
    for line in lines {
        if line.starts_with(".Ss ") {
            let words = macro_args(line).into_iter().skip(1).collect();
            v.push((words, Vec::new()));
        } else if let Some(last) = v.last_mut() {
            last.1.push(line);
        }
    }
    v
}

/// The first arguments of the `.It Cm <name>` lines of a part of a page.
fn cm_items(lines: &[&str]) -> BTreeSet<String> {
    lines
        .iter()
        .filter_map(|l| {
            let a = macro_args(l);
            (a.len() >= 3 && a[0] == "It" && a[1] == "Cm").then(|| a[2].clone())
        })
        .collect()
}

/// What the page must say about one clap argument.
struct ClapOpt {
    names: Vec<Opt>,
    takes_value: bool,
    env: Option<String>,
    defaults: Vec<String>,
}

/// The options of a command and of all its subcommands, with the subcommand names.
fn clap_options(mut cmd: clap::Command) -> (Vec<ClapOpt>, BTreeSet<String>) {
    cmd.build();
    let mut opts = Vec::new();
    let mut subs = BTreeSet::new();
    fn walk(cmd: &clap::Command, opts: &mut Vec<ClapOpt>, subs: &mut BTreeSet<String>) {
        for a in cmd.get_arguments() {
            if a.is_positional() || a.is_hide_set() {
                continue;
            }
            let mut names = Vec::new();
            if let Some(s) = a.get_short() {
                names.push(format!("-{s}"));
            }
            if let Some(l) = a.get_long() {
                names.push(format!("--{l}"));
            }
            if names.is_empty() || opts.iter().any(|o: &ClapOpt| o.names == names) {
                continue;
            }
            let takes_value = a.get_action().takes_values();
            opts.push(ClapOpt {
                names,
                takes_value,
                env: a.get_env().map(|e| e.to_string_lossy().into_owned()),
                defaults: a
                    .get_default_values()
                    .iter()
                    .map(|d| d.to_string_lossy().into_owned())
                    // A flag's "false" is not worth saying.
                    .filter(|d| takes_value && !d.is_empty())
                    .collect(),
            });
        }
        for s in cmd.get_subcommands() {
            if s.is_hide_set() || s.get_name() == "help" {
                continue;
            }
            subs.insert(s.get_name().to_string());
            walk(s, opts, subs);
        }
    }
    walk(&cmd, &mut opts, &mut subs);
    (opts, subs)
}

/// Options clap adds by itself; a page need not document them.
fn is_builtin(o: &ClapOpt) -> bool {
    o.names
        .iter()
        .all(|n| ["-h", "--help", "-V", "--version"].contains(&n.as_str()))
}

/// The problems of one tool page, empty when it is in step with `cmd`.
fn check_tool_page(name: &str, cmd: clap::Command) -> Vec<String> {
    let rel = format!("man/man1/{name}.1");
    let Ok(text) = std::fs::read_to_string(root().join(&rel)) else {
        return vec![format!("{rel}: missing: every [[bin]] needs a page")];
    };
    let mut bad = Vec::new();
    let mut say = |m: String| bad.push(format!("{rel}: {m}"));
    let secs = sections(&text);

    let dt = text.lines().find_map(|l| l.strip_prefix(".Dt "));
    match dt.map(|d| macro_args(&format!(".{d}"))) {
        Some(a) if a.len() >= 2 && a[0].eq_ignore_ascii_case(name) && a[1] == "1" => {}
        other => say(format!(
            ".Dt must be `.Dt {} 1`, not {other:?}",
            name.to_uppercase()
        )),
    }
    let nm = secs
        .get("NAME")
        .and_then(|l| l.iter().find_map(|l| l.strip_prefix(".Nm ")));
    if nm.map(str::trim) != Some(name) {
        say(format!("NAME must start with `.Nm {name}`, not {nm:?}"));
    }
    for s in TOOL_SECTIONS {
        if !secs.contains_key(*s) {
            say(format!("no {s} section"));
        }
    }

    let (opts, subs) = clap_options(cmd);
    let empty = Vec::new();
    let synopsis = secs.get("SYNOPSIS").unwrap_or(&empty);
    let description = secs.get("DESCRIPTION").unwrap_or(&empty);
    let flags_in =
        |lines: &[&str]| -> Vec<(Opt, bool)> { lines.iter().flat_map(|l| line_flags(l)).collect() };
    let syn_flags: BTreeSet<Opt> = flags_in(synopsis).into_iter().map(|f| f.0).collect();
    // The options list: `.It` lines naming flags.
    let items: Vec<Vec<(Opt, bool)>> = description
        .iter()
        .filter(|l| l.starts_with(".It "))
        .map(|l| line_flags(l))
        .filter(|f| !f.is_empty())
        .collect();

    let known: BTreeSet<&str> = opts
        .iter()
        .flat_map(|o| o.names.iter().map(String::as_str))
        .collect();
    for o in opts.iter().filter(|o| !is_builtin(o)) {
        let shown = o.names.join(", ");
        if !o.names.iter().any(|n| syn_flags.contains(n)) {
            say(format!("SYNOPSIS lacks {shown} (`.Op Fl ...`)"));
        }
        match items
            .iter()
            .find(|it| o.names.iter().any(|n| it.iter().any(|f| f.0 == *n)))
        {
            None => say(format!(
                "DESCRIPTION lacks an `.It Fl ...` entry for {shown}"
            )),
            Some(it) => {
                for n in &o.names {
                    if !it.iter().any(|f| f.0 == *n) {
                        say(format!("the `.It` entry of {shown} does not name {n}"));
                    }
                }
                let has_arg = it.iter().any(|f| f.1);
                if has_arg != o.takes_value {
                    say(format!(
                        "the `.It` entry of {shown} {} `Ar` but the option {} a value",
                        if has_arg { "has" } else { "lacks" },
                        if o.takes_value { "takes" } else { "takes no" }
                    ));
                }
            }
        }
        if let Some(env) = &o.env {
            let documented = secs.get("ENVIRONMENT").is_some_and(|l| {
                l.iter().any(|l| {
                    let a = macro_args(l);
                    a.len() >= 3 && a[0] == "It" && a[1] == "Ev" && a[2] == *env
                })
            });
            if !documented {
                say(format!("ENVIRONMENT lacks `.It Ev {env}` ({shown})"));
            }
        }
        for d in &o.defaults {
            if !text.contains(d.as_str()) {
                say(format!("the default of {shown}, {d}, is not mentioned"));
            }
        }
    }
    let documented: BTreeSet<Opt> = flags_in(synopsis)
        .into_iter()
        .chain(flags_in(description))
        .map(|f| f.0)
        .collect();
    for f in &documented {
        if !known.contains(f.as_str()) {
            say(format!("documents {f}, which the command does not have"));
        }
    }
    for s in &subs {
        let found = synopsis.iter().any(|l| {
            let a = macro_args(l);
            a.windows(2).any(|w| w[0] == "Cm" && w[1] == *s)
        });
        if !found {
            say(format!("SYNOPSIS lacks the subcommand `Cm {s}`"));
        }
    }
    bad
}

#[test]
fn every_tool_has_a_page_in_step_with_its_options() {
    let bins = bins();
    let mut bad = Vec::new();
    for b in &bins {
        if !TOOLS.iter().any(|(n, _)| n == b) {
            bad.push(format!(
                "[[bin]] {b} is not in TOOLS in tests/integration/manpages.rs: add its line"
            ));
        }
    }
    for (name, cmd) in TOOLS {
        if !bins.iter().any(|b| b == name) {
            bad.push(format!("TOOLS names {name}, which is not a [[bin]]"));
        }
        let cmd = cmd();
        if cmd.get_name() != *name {
            bad.push(format!(
                "TOOLS: the command of {name} is named {}",
                cmd.get_name()
            ));
        }
        bad.extend(check_tool_page(name, cmd));
    }
    for p in pages() {
        let rel = p.strip_prefix(root()).unwrap_or(&p).display().to_string();
        if let Some(stem) = rel
            .strip_prefix("man/man1/")
            .and_then(|f| f.strip_suffix(".1"))
        {
            if !bins.iter().any(|b| b == stem) {
                bad.push(format!("{rel}: no [[bin]] {stem}: a page for no tool"));
            }
        }
    }
    assert!(
        bad.is_empty(),
        "manual pages out of step:\n{}",
        bad.join("\n")
    );
}

/// Collect the fields of the records in `out`: kind -> fields, and the fields of
/// `changes` entries.
fn fields_of(stdout: &str, kinds: &mut BTreeMap<String, BTreeSet<String>>) {
    for line in stdout.lines() {
        let v: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{line:?}: {e}"));
        let Value::Object(m) = v else {
            panic!("not an object: {line}")
        };
        let kind = m["kind"].as_str().expect("kind").to_string();
        for (k, val) in &m {
            kinds.entry(kind.clone()).or_default().insert(k.clone());
            if let Value::Array(entries) = val {
                for c in entries.iter().filter_map(Value::as_object) {
                    let sub = kinds.entry(format!("{kind}.{k}")).or_default();
                    sub.extend(c.keys().cloned());
                }
            }
        }
    }
}

#[test]
fn records_page_documents_every_kind_and_field() {
    let text = read_page(RECORDS_PAGE);
    let mut bad = Vec::new();
    let dt = text.lines().find(|l| l.starts_with(".Dt "));
    if dt != Some(".Dt PORTFLOW-RECORDS 5") {
        bad.push(format!(".Dt must be `.Dt PORTFLOW-RECORDS 5`, not {dt:?}"));
    }
    let secs = sections(&text);
    let empty = Vec::new();
    let desc = secs.get("DESCRIPTION").unwrap_or(&empty);
    let subs = subsections(desc);
    let section_of = |kind: &str| {
        subs.iter()
            .find(|(title, _)| title.iter().any(|w| w == kind))
            .map(|(_, lines)| lines.clone())
    };
    // The general part: everything before the first kind's subsection.
    let general: Vec<&str> = desc
        .iter()
        .take_while(|l| {
            !l.starts_with(".Ss ")
                || !KINDS
                    .iter()
                    .any(|(k, _)| macro_args(l).iter().skip(1).any(|w| w == k))
        })
        .copied()
        .collect();
    let general_text = general.join("\n");
    for f in COMMON_FIELDS {
        if !general_text.contains(&format!("Cm {f}")) {
            bad.push(format!("the general rules do not document the field {f}"));
        }
    }

    // What the tools write today.
    let tree = tempfile::tempdir().expect("tempdir");
    write_files(
        tree.path(),
        &[
            ("Makefile", &group_mk(&["lang", "net"])),
            ("infrastructure/mk/bsd.port.mk", "# mk\n"),
            ("lang/Makefile", &group_mk(&["php"])),
            ("lang/php/Makefile", &group_mk(&["8.2"])),
            ("lang/php/Makefile.inc", "V=8\n"),
            ("lang/php/8.2/Makefile", PORT_MK),
            ("net/Makefile", &group_mk(&["tor"])),
            ("net/tor/Makefile", PORT_MK),
        ],
    );
    let input = "\
File ports/lang/php/Makefile.inc changed from revision 1.5 to 1.5.2.1
File ports/net/tor/Makefile changed from revision 1.80 to 1.80.2.1
File ports/net/gone/Makefile is removed; OPENBSD_7_8_BASE revision 1.2
File ports/infrastructure/mk/bsd.port.mk changed from revision 1.1 to 1.1.2.1
";
    let delta = run(
        "ports-delta",
        &["--ports-dir", tree.path().to_str().expect("utf-8 path")],
        input,
        &[],
    );
    assert_eq!(delta.code, 0, "{}", delta.stderr);
    let db = crate::pkgpath_expand::db(tree.path());
    let expand = run(
        "pkgpath-expand",
        &["--db", db.to_str().expect("utf-8 path")],
        &format!("{}net/brandnew\n", delta.stdout),
        &[],
    );
    assert_eq!(expand.code, 0, "{}", expand.stderr);
    let mut written = BTreeMap::new();
    fields_of(&delta.stdout, &mut written);
    fields_of(&expand.stdout, &mut written);
    for k in ["port", "removed", "notice", "port.changes"] {
        assert!(written.contains_key(k), "the run wrote no {k}: {written:?}");
    }

    let items_of: BTreeMap<&str, BTreeSet<String>> = KINDS
        .iter()
        .filter_map(|(k, _)| Some((*k, cm_items(&section_of(k)?))))
        .collect();
    for (kind, fields) in KINDS {
        let Some(lines) = section_of(kind) else {
            bad.push(format!("no `.Ss` subsection for the kind {kind}"));
            continue;
        };
        let items = cm_items(&lines);
        let from_tools = written.get(*kind).into_iter().flatten();
        for f in fields
            .iter()
            .map(|f| f.to_string())
            .chain(from_tools.cloned())
        {
            if COMMON_FIELDS.contains(&f.as_str()) {
                continue;
            }
            if !items.contains(&f) {
                bad.push(format!("{kind}: the field {f} has no `.It Cm {f}`"));
            }
        }
        for (sub, subfields) in written
            .iter()
            .filter_map(|(k, v)| Some((k.strip_prefix(&format!("{kind}."))?, v)))
        {
            // Entries may be described once, where another kind has the same field
            // (`removed` records' changes are "as in a port record").
            for f in subfields {
                let somewhere = items_of
                    .values()
                    .any(|it| it.contains(sub) && it.contains(f));
                if !items.contains(f) && !somewhere {
                    bad.push(format!(
                        "{kind}: {sub} entries: the field {f} has no `.It Cm {f}`"
                    ));
                }
            }
        }
    }
    for kind in written.keys().filter(|k| !k.contains('.')) {
        if !KINDS.iter().any(|(k, _)| k == kind) {
            bad.push(format!(
                "the tools write the kind {kind}, which KINDS lacks"
            ));
        }
    }
    assert!(bad.is_empty(), "{RECORDS_PAGE}:\n{}", bad.join("\n"));
}

fn run_checker(program: &str, args: &[&str], page: &Path) -> std::process::Output {
    Command::new(program)
        .args(args)
        .arg(page)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {program}: {e}"))
}

#[test]
fn pages_are_clean_under_mandoc_and_groff() {
    require("mandoc", "mandoc");
    require("groff", "groff");
    let pages = pages();
    assert!(
        pages.len() >= 3,
        "man/ holds only {pages:?}: where are the pages?"
    );
    let mut bad = Vec::new();
    for p in &pages {
        let rel = p.strip_prefix(root()).unwrap_or(p).display().to_string();
        let out = run_checker("mandoc", &["-Tlint", "-W", "warning"], p);
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        if !out.status.success() || !text.trim().is_empty() {
            bad.push(format!(
                "mandoc -Tlint -W warning {rel} ({}):\n{text}",
                out.status
            ));
        }
        let out = run_checker("groff", &["-ww", "-mdoc", "-Tutf8", "-z"], p);
        let err = String::from_utf8_lossy(&out.stderr);
        if !out.status.success() || !err.trim().is_empty() {
            bad.push(format!(
                "groff -ww -mdoc -Tutf8 -z {rel} ({}):\n{err}",
                out.status
            ));
        }
    }
    assert!(bad.is_empty(), "{}", bad.join("\n"));
}
