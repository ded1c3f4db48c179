//! The record vocabulary lives in one place: record kinds and the words of
//! their status fields are the enums of lib/src/record.rs, and the library
//! spells none of them as a string literal anywhere else (its tests aside).

use std::path::Path;

use crate::support::root;

/// Kinds and status words that are no field name of any record.  (`batch`,
/// `target`, `mail`, `spool`, `clean`, `error` are also field names, keys or
/// make targets, and may be spelled.)
const WORDS: &[&str] = &[
    "port",
    "removed",
    "notice",
    "build",
    "package",
    "transfer",
    "info",
    "warning",
    "pkg_delete",
    "pkg_add",
    "wipe",
    "done",
    "dry-run",
    "failed",
    "fetch",
    "built",
    "up-to-date",
    "skipped",
    "ignored",
    "sent",
    "unchanged",
    "timeout",
    "unreachable",
    "saved",
    "rejected",
    "not-reached",
    "non existent",
];

/// The lines of `text` outside `#[cfg(test)]` modules that spell one of the
/// words as a string literal, but in a clap attribute (a flag's name, a
/// program's default).
fn spelled(text: &str) -> Vec<(usize, String)> {
    let mut hits = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim_start().starts_with("#[cfg(test)]") {
            break;
        }
        let code = line.trim_start();
        if code.starts_with("//")
            || code.contains("long = \"")
            || code.contains("default_value = \"")
        {
            continue;
        }
        if WORDS.iter().any(|w| line.contains(&format!("\"{w}\""))) {
            hits.push((i + 1, line.trim().to_string()));
        }
    }
    hits
}

fn walk(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for e in std::fs::read_dir(dir).expect("read lib/src").flatten() {
        let p = e.path();
        if p.is_dir() {
            walk(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

#[test]
fn record_words_are_spelled_only_in_the_record_module() {
    // The check itself finds a literal.
    assert_eq!(
        spelled("    r.set(\"status\", \"built\");\n#[cfg(test)]\n\"sent\"\n"),
        [(1, "r.set(\"status\", \"built\");".to_string())]
    );
    let mut files = Vec::new();
    walk(&root().join("lib/src"), &mut files);
    assert!(files.len() > 20, "{files:?}");
    let mut found = Vec::new();
    for f in files {
        let name = f.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if name == "record.rs" || name == "tests.rs" {
            continue;
        }
        let text = std::fs::read_to_string(&f).expect("read source");
        for (n, l) in spelled(&text) {
            found.push(format!("{}:{n}: {l}", f.display()));
        }
    }
    assert!(
        found.is_empty(),
        "record words spelled outside lib/src/record.rs (use its enums):\n{}",
        found.join("\n")
    );
}
