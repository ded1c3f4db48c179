//! Bad input: every bad line gets its own clear error, the good records still come
//! out, and nothing panics.

use crate::support::*;

fn no_panic(out: &Out) {
    assert!(!out.stderr.contains("panicked"), "{}", out.stderr);
}

#[test]
fn ports_delta_garbage_lines() {
    let input = "\
U net/tor/Makefile
this is not a change list
{\"kind\":\"batch\",\"v\":1,\"id\":
File ports/net/torsocks/distinfo frobbed
U ../../etc/passwd
\u{1}
{\"kind\":\"batch\",\"v\":2}
M\tnet/curl/Makefile
";
    let out = run("ports-delta", &["-t"], input, &[]);
    no_panic(&out);
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert_eq!(out.lines(), ["net/curl", "net/tor"]);
    let err: Vec<&str> = out.stderr.lines().collect();
    assert_eq!(
        err,
        [
            "ports-delta: stdin:2: unrecognised line: this is not a change list",
            "ports-delta: stdin:3: invalid JSON: truncated line (EOF while parsing a value at line 1 column 27)",
            "ports-delta: stdin:4: unrecognised cvs rdiff line: File ports/net/torsocks/distinfo frobbed",
            "ports-delta: stdin:5: invalid path (empty, . or .. segment): ../../etc/passwd",
            "ports-delta: stdin:6: invalid path (control character): \"\\u{1}\"",
            "ports-delta: stdin:7: record version 2 is not supported (this is version 1)",
        ]
    );
}

#[test]
fn ports_delta_names_the_file() {
    let t = tempfile::tempdir().unwrap();
    let f = t.path().join("changes");
    std::fs::write(&f, "net/tor/Makefile\nbad line here\n").unwrap();
    let fs = f.to_str().unwrap();
    let out = run("ports-delta", &["-t", fs, "/nonexistent/list"], "", &[]);
    assert_eq!(out.code, 1);
    assert_eq!(out.lines(), ["net/tor"]);
    assert!(out.stderr.contains(&format!(
        "ports-delta: {fs}:2: unrecognised line: bad line here"
    )));
    assert!(out
        .stderr
        .contains("ports-delta: /nonexistent/list: No such file or directory"));
}

#[test]
fn pkgpath_expand_bad_lines() {
    let t = tempfile::tempdir().unwrap();
    let db = crate::pkgpath_expand::db(t.path());
    let input = "\
net/tor
net/tor;reboot
../etc
{\"kind\":\"port\",\"v\":1,\"pkgpath\":\"net/torsocks\"}
{\"kind\":\"port\",\"v\":1,\"pkgp
{\"kind\":\"port\",\"v\":1}
net/curl,-a,-b
devel/sdl_image
";
    let out = run(
        "pkgpath-expand",
        &["--db", db.to_str().unwrap()],
        input,
        &[],
    );
    no_panic(&out);
    assert_eq!(out.code, 1);
    let err: Vec<&str> = out.stderr.lines().collect();
    assert_eq!(
        err,
        [
            "pkgpath-expand: stdin:2: invalid pkgpath \"net/tor;reboot\": character ';' not allowed",
            "pkgpath-expand: stdin:3: invalid pkgpath \"../etc\": \".\" or \"..\" segment",
            "pkgpath-expand: stdin:5: invalid JSON: truncated line (EOF while parsing a string at line 1 column 26)",
            "pkgpath-expand: stdin:6: port record: field \"pkgpath\" is missing; passed on unexpanded",
            "pkgpath-expand: stdin:7: invalid pkgpath \"net/curl,-a,-b\": more than one subpackage",
        ]
    );
    let recs = out.records();
    let fulls: Vec<&str> = recs
        .iter()
        .filter_map(|r| r["fullpkgpath"].as_str())
        .collect();
    assert_eq!(fulls, ["net/tor", "net/torsocks", "devel/sdl_image"]);
    // The invalid ones are in the summary as error notices.
    let errors = recs
        .iter()
        .filter(|r| r["kind"] == "notice" && r["level"] == "error")
        .count();
    assert_eq!(errors, 3);
}

#[test]
fn pkgpath_expand_missing_or_wrong_database() {
    let out = run(
        "pkgpath-expand",
        &["--db", "/nonexistent/sqlports"],
        "net/tor\n",
        &[],
    );
    no_panic(&out);
    assert_eq!(out.code, 2);
    assert_eq!(out.stdout, "");
    assert!(
        out.stderr
            .starts_with("pkgpath-expand: /nonexistent/sqlports: cannot open sqlports database"),
        "{}",
        out.stderr
    );
    let t = tempfile::tempdir().unwrap();
    let junk = t.path().join("junk");
    std::fs::write(&junk, "this is not sqlite\n").unwrap();
    let out = run(
        "pkgpath-expand",
        &["--db", junk.to_str().unwrap()],
        "net/tor\n",
        &[],
    );
    assert_eq!(out.code, 2);
    assert!(
        out.stderr.contains("junk: not a sqlports database"),
        "{}",
        out.stderr
    );
    let other = t.path().join("other.db");
    let c = rusqlite::Connection::open(&other).unwrap();
    c.execute_batch("CREATE TABLE t (x);").unwrap();
    drop(c);
    let out = run(
        "pkgpath-expand",
        &["--db", other.to_str().unwrap()],
        "net/tor\n",
        &[],
    );
    assert_eq!(out.code, 2);
    assert!(
        out.stderr
            .contains("other.db: not a sqlports database (no _Paths table)"),
        "{}",
        out.stderr
    );
    // Default path named when nothing is given.
    let out = run("pkgpath-expand", &[] as &[&str], "net/tor\n", &[]);
    assert_eq!(out.code, 2);
    assert!(out.stderr.contains("/usr/local/share/sqlports"));
}

#[test]
fn closed_pipe_is_quiet() {
    let many: String = (0..50_000)
        .map(|i| format!("net/p{i}/Makefile\n"))
        .collect();
    let script = format!(
        "{} -t | head -n 1 >/dev/null; echo \"${{PIPESTATUS[0]}}\"",
        bin("ports-delta").display()
    );
    let mut cmd = std::process::Command::new("bash");
    cmd.args(["-c", &script]);
    let out = run_cmd(cmd, &many, &[]);
    assert_eq!(out.stdout.trim(), "0");
    assert_eq!(out.stderr, "");
}

/// A category alone is no pkgpath (make would build all of it), in every tool
/// that takes pkgpaths: refused, the rest goes on.
#[test]
fn a_category_alone_is_no_pkgpath_anywhere() {
    let t = tempfile::tempdir().unwrap();
    let db = crate::pkgpath_expand::db(t.path());
    let input = "devel\nnet/tor\n";
    let out = run(
        "pkgpath-expand",
        &["--db", db.to_str().unwrap(), "-t"],
        input,
        &[],
    );
    no_panic(&out);
    assert_eq!(out.code, 1);
    assert!(
        out.stderr.starts_with(
            "pkgpath-expand: stdin:1: invalid pkgpath \"devel\": a port is category/port at least\n"
        ),
        "{}",
        out.stderr
    );
    assert_eq!(out.lines(), ["net/tor"]);
    let c = crate::fixture::SampleCopy::new();
    let logs = c.dir.path().join("logs");
    let out = run(
        "build-list",
        &["--log-dir", logs.to_str().unwrap(), "-n"],
        "devel\n",
        &c.env(),
    );
    no_panic(&out);
    assert!(
        out.stderr
            .contains("invalid pkgpath \"devel\": a port is category/port at least"),
        "{}",
        out.stderr
    );
    assert!(
        !out.stdout.contains("\"fullpkgpath\":\"devel\""),
        "{}",
        out.stdout
    );
}
