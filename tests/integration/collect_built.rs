//! collect-built over a copy of the sample tree built by real bmake: the file set
//! equals what the tree produced, checksums equal sha256sum's, records pass
//! through in order, failed entries are never asked about, bad input is reported
//! while the good entries are still collected.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use crate::fixture::SampleCopy;
use crate::support::*;

/// Flavors, multi-packages, debug packages, a non-redistributable port, a port
/// and its dependency (net/curl needs devel/libfoo) and a failing port.
const LIST: &[&str] = &[
    "net/curl",
    "devel/libfoo",
    "editors/vim",
    "editors/vim,gtk2",
    "editors/vim,-lang",
    "editors/vim,gtk2,-lang",
    "editors/vim,no_x11",
    "lang/php/8.2",
    "lang/php/8.2,-gd",
    "games/nonfree",
    "devel/broken",
    "misc/plain",
];

/// The sample copy with LIST built; devel/broken is the one failure.
fn built() -> SampleCopy {
    let s = SampleCopy::new();
    let failed = s.build(LIST);
    assert_eq!(failed, ["devel/broken"]);
    s
}

/// `build` records for LIST as build-list writes them for batch b1, also
/// written where build-list keeps them on the host, its journal
/// (`PORTSDIR/logs/amd64/b1/journal`): collect-built takes only what the
/// journal backs.
fn journaled(s: &SampleCopy, failed: &[&str]) -> Vec<String> {
    let lines: Vec<String> = LIST
        .iter()
        .map(|e| {
            let status = if failed.contains(e) { "failed" } else { "built" };
            format!(
                r#"{{"kind":"build","v":1,"fullpkgpath":"{e}","target":"package","status":"{status}","log":"/var/log/portflow/b1/{}.log","seconds":1,"batch":"b1","arch":"amd64"}}"#,
                e.replace('/', "_")
            )
        })
        .collect();
    let dir = s.tree.join("logs/amd64/b1");
    std::fs::create_dir_all(&dir).expect("mkdir");
    let text: String = lines.iter().map(|l| format!("{l}\n")).collect();
    std::fs::write(dir.join("journal"), text).expect("journal");
    lines
}

/// A make that logs each SUBDIRLIST it is given in its environment (`--- call`,
/// then the list) to `<dir>/make.log`, then runs bmake.  (On the command line,
/// SUBDIRLIST makes every port fail, as OpenBSD's bsd.port.mk does.)
fn spy(dir: &Path) -> (PathBuf, PathBuf) {
    let log = dir.join("make.log");
    let script = dir.join("make-spy");
    let text = format!(
        "#!/bin/sh\nif [ -n \"${{SUBDIRLIST:-}}\" ]; then {{ echo '--- call'; cat \"$SUBDIRLIST\"; }} >>'{}'; fi\nexec bmake \"$@\"\n",
        log.display()
    );
    std::fs::write(&script, text).expect("write spy");
    let st = Command::new("chmod")
        .arg("+x")
        .arg(&script)
        .status()
        .expect("chmod");
    assert!(st.success());
    (script, log)
}

/// The calls the spy saw: one list of entries per make call.
fn calls(log: &Path) -> Vec<Vec<String>> {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let mut v: Vec<Vec<String>> = Vec::new();
    for l in text.lines() {
        if l == "--- call" {
            v.push(Vec::new());
        } else if let Some(c) = v.last_mut() {
            c.push(l.to_string());
        }
    }
    v
}

/// `sha256sum` of every file of a directory: file name -> hex digest.
fn sha256sum(dir: &Path) -> BTreeMap<String, String> {
    require("sha256sum", "coreutils");
    let files: Vec<String> = std::fs::read_dir(dir)
        .expect("read_dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    let out = Command::new("sha256sum")
        .current_dir(dir)
        .args(&files)
        .output()
        .expect("sha256sum");
    assert!(out.status.success());
    String::from_utf8(out.stdout)
        .expect("utf-8")
        .lines()
        .map(|l| {
            let (sum, name) = l.split_once("  ").expect("sha256sum line");
            (name.to_string(), sum.to_string())
        })
        .collect()
}

fn of_kind<'a>(records: &'a [Value], kind: &str) -> Vec<&'a Value> {
    records.iter().filter(|r| r["kind"] == kind).collect()
}

fn files_of(packages: &[&Value]) -> Vec<String> {
    packages
        .iter()
        .map(|r| r["file"].as_str().expect("file").to_string())
        .collect()
}

/// Check every package record against the file it names in `dir`.
fn check_packages(packages: &[&Value], dir: &Path) {
    let sums = sha256sum(dir);
    for r in packages {
        let file = r["file"].as_str().expect("file");
        let path = dir.join(file);
        assert_eq!(r["path"], path.to_str().expect("utf-8"), "{r}");
        assert_eq!(
            r["pkgname"].as_str().map(|n| format!("{n}.tgz")).as_deref(),
            Some(file)
        );
        let len = std::fs::metadata(&path).expect("metadata").len();
        assert_eq!(r["size"].as_u64(), Some(len), "{r}");
        assert_eq!(
            r["sha256"].as_str(),
            sums.get(file).map(String::as_str),
            "{r}"
        );
        assert_eq!(r["debug"], Value::Bool(file.starts_with("debug-")), "{r}");
        assert_eq!(r["arch"], "amd64", "{r}");
    }
}

#[test]
fn collects_exactly_what_the_tree_put_in_ftp() {
    let s = built();
    let (make, log) = spy(s.dir.path());
    let mut input = vec![
        r#"{"kind":"batch","v":1,"id":"b1","created":"2026-11-21T03:00:00Z"}"#.to_string(),
        r#"{"kind":"port","v":1,"pkgpath":"net/curl","fullpkgpath":"net/curl","zz":[1,{"a":null}]}"#
            .to_string(),
        r#"{"kind":"clean","v":1,"action":"wipe","target":"/usr/obj/ports","status":"done"}"#
            .to_string(),
    ];
    input.extend(journaled(&s, &["devel/broken"]));
    // The fetch prefetch of the initiator is no package build.
    input.push(
        r#"{"kind":"build","v":1,"fullpkgpath":"devel/sdl_image","target":"fetch","status":"built"}"#
            .to_string(),
    );
    input.push(r#"{"kind":"mystery","v":1,"x":"y"}"#.to_string());
    let stdin: String = input.iter().map(|l| format!("{l}\n")).collect();
    let mut env = s.env();
    let make_s = make.to_str().expect("utf-8");
    env.push(("MAKE", make_s));

    let out = run("collect-built", &[] as &[&str], &stdin, &env);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.stderr, "");
    let lines = out.lines();
    // Every input record first, untouched and in order.
    assert_eq!(&lines[..input.len()], &input[..]);
    let own = out.records().split_off(input.len());
    let packages = of_kind(&own, "package");
    assert_eq!(packages.len() + of_kind(&own, "notice").len(), own.len());

    // Exactly the files the tree produced in ftp/, sorted by file name.
    let ftp = s.files("ftp");
    assert!(ftp.contains(&"vim-lang-9.1.0.tgz".to_string()), "{ftp:?}");
    assert!(!ftp.contains(&"nonfree-1.0.tgz".to_string()), "{ftp:?}");
    assert_eq!(files_of(&packages), ftp);
    check_packages(&packages, &s.packages("ftp"));
    let by_file: BTreeMap<&str, &str> = packages
        .iter()
        .map(|r| {
            (
                r["file"].as_str().unwrap(),
                r["fullpkgpath"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(by_file["curl-8.9.1.tgz"], "net/curl");
    assert_eq!(by_file["debug-curl-8.9.1.tgz"], "net/curl");
    assert_eq!(by_file["libfoo-1.0.tgz"], "devel/libfoo");
    // A file several entries name goes to the first of them.
    assert_eq!(by_file["vim-lang-9.1.0.tgz"], "editors/vim");
    assert_eq!(by_file["vim-9.1.0-gtk2.tgz"], "editors/vim,gtk2");
    assert_eq!(by_file["php-gd-8.2.20.tgz"], "lang/php/8.2");
    for r in &packages {
        assert_eq!(r["batch"], "b1", "{r}");
        let keys: Vec<&str> = r.as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(
            keys,
            [
                "kind",
                "v",
                "fullpkgpath",
                "pkgname",
                "file",
                "path",
                "size",
                "sha256",
                "debug",
                "batch",
                "arch"
            ]
        );
    }
    // The package that may not be redistributed: an info notice, no failure.
    let notices = of_kind(&own, "notice");
    assert_eq!(notices.len(), 1, "{notices:?}");
    assert_eq!(notices[0]["level"], "info");
    assert_eq!(notices[0]["tool"], "collect-built");
    assert!(
        notices[0]["message"]
            .as_str()
            .unwrap()
            .starts_with("nonfree-1.0.tgz (games/nonfree): may not be redistributed"),
        "{}",
        notices[0]
    );

    // make was asked once, for the entries that built, and never for devel/broken.
    let c = calls(&log);
    assert_eq!(c.len(), 1, "{c:?}");
    let asked: Vec<&str> = LIST
        .iter()
        .copied()
        .filter(|e| *e != "devel/broken")
        .collect();
    assert_eq!(c[0], asked);

    // The same output whatever the number of threads.
    for j in ["1", "3"] {
        let again = run("collect-built", &["-j", j], &stdin, &env);
        assert_eq!(again.code, 0, "{}", again.stderr);
        assert_eq!(again.stdout, out.stdout, "-j {j}");
    }
}

#[test]
fn from_all_and_text() {
    let s = built();
    let env = s.env();
    let stdin: String = journaled(&s, &["devel/broken"])
        .iter()
        .map(|l| format!("{l}\n"))
        .collect();

    let out = run("collect-built", &["--from", "all"], &stdin, &env);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let records = out.records();
    let packages = of_kind(&records, "package");
    let all = s.files("all");
    assert!(all.contains(&"nonfree-1.0.tgz".to_string()), "{all:?}");
    assert_eq!(files_of(&packages), all);
    check_packages(&packages, &s.packages("all"));
    assert!(of_kind(&records, "notice").is_empty(), "{}", out.stdout);

    // -t: the file names only, as the shell step printed them, of the files
    // present; no records, and nothing on stderr.
    let text = run("collect-built", &["-t"], &stdin, &env);
    assert_eq!(text.code, 0, "{}", text.stderr);
    assert_eq!(text.stderr, "");
    assert_eq!(text.lines(), s.files("ftp"));
    let list = s.dir.path().join("built.list");
    let built: String = LIST
        .iter()
        .filter(|e| **e != "devel/broken")
        .map(|e| format!("{e}\n"))
        .collect();
    std::fs::write(&list, built).unwrap();
    let shell = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "env SUBDIRLIST={} bmake show=PKGNAMES | grep -v '^===>' | tr ' ' '\\n' | sed 's/$/.tgz/' | LC_ALL=C sort -u",
            list.display()
        ))
        .current_dir(&s.tree)
        .env("MAKESYSPATH", s.tree.join("infrastructure/mk"))
        .output()
        .expect("sh");
    assert!(shell.status.success());
    let ftp = s.files("ftp");
    let shell_files: Vec<&str> = std::str::from_utf8(&shell.stdout)
        .unwrap()
        .lines()
        .filter(|f| ftp.iter().any(|x| x == f))
        .collect();
    assert_eq!(text.lines(), shell_files);
    let text_all = run("collect-built", &["-t", "--from", "all"], &stdin, &env);
    assert_eq!(text_all.lines(), all);
}

#[test]
fn a_missing_package_is_a_warning_and_exit_1() {
    let s = built();
    let env = s.env();
    // debug-curl is gone altogether; curl is in all/ but its ftp/ link is gone.
    for sub in ["ftp", "all"] {
        std::fs::remove_file(s.packages(sub).join("debug-curl-8.9.1.tgz")).unwrap();
    }
    std::fs::remove_file(s.packages("ftp").join("curl-8.9.1.tgz")).unwrap();
    let stdin: String = journaled(&s, &["devel/broken"])
        .iter()
        .map(|l| format!("{l}\n"))
        .collect();
    let out = run("collect-built", &[] as &[&str], &stdin, &env);
    assert_eq!(out.code, 1, "{}", out.stderr);
    let records = out.records();
    let packages = of_kind(&records, "package");
    assert_eq!(files_of(&packages), s.files("ftp"));
    assert!(!files_of(&packages).iter().any(|f| f.contains("curl-")));
    check_packages(&packages, &s.packages("ftp"));
    let warnings: Vec<&str> = of_kind(&records, "notice")
        .iter()
        .filter(|n| n["level"] == "warning")
        .map(|n| n["message"].as_str().unwrap())
        .collect();
    let ftp = s.packages("ftp");
    let all = s.packages("all");
    assert_eq!(
        warnings,
        [
            format!(
                "curl-8.9.1.tgz (net/curl): built, in {} but missing from {} although it may be redistributed",
                all.display(),
                ftp.display()
            ),
            format!(
                "debug-curl-8.9.1.tgz (net/curl): built but missing from {}",
                ftp.display()
            ),
        ]
    );
    for w in &warnings {
        assert!(
            out.stderr.contains(&format!("collect-built: {w}")),
            "{}",
            out.stderr
        );
    }
    // The same in text mode: the names present, the problems on stderr.
    let text = run("collect-built", &["-t"], &stdin, &env);
    assert_eq!(text.code, 1);
    assert_eq!(text.lines(), s.files("ftp"));
    assert_eq!(text.stderr.lines().count(), 2, "{}", text.stderr);
}

#[test]
fn plain_fullpkgpaths_and_bad_input() {
    let s = built();
    let (make, log) = spy(s.dir.path());
    let mut env = s.env();
    let make_s = make.to_str().unwrap();
    env.push(("MAKE", make_s));
    let input = "\
# fullpkgpaths, one a line
net/curl
net/curl;reboot
{\"kind\":\"build\",\"v\":1,\"fullpkgpath\":\"editors/vim,gtk2\",\"status\":\"up-to-date\"}
{\"kind\":\"build\",\"v\":1,\"fullpkgpath\":\"lang/php/8.2\",\"st
../etc

{\"kind\":\"build\",\"v\":1,\"status\":\"built\"}
{\"kind\":\"build\",\"v\":1,\"fullpkgpath\":\"misc/plain\",\"status\":\"done\"}
{\"kind\":\"build\",\"v\":1,\"fullpkgpath\":\"$(reboot)\",\"status\":\"built\"}
  devel/libfoo  
net/curl
";
    let out = run("collect-built", &[] as &[&str], input, &env);
    assert!(!out.stderr.contains("panicked"), "{}", out.stderr);
    assert_eq!(out.code, 1, "{}", out.stderr);
    let err: Vec<&str> = out.stderr.lines().collect();
    assert_eq!(
        err,
        [
            "collect-built: stdin:3: invalid pkgpath \"net/curl;reboot\": character ';' not allowed",
            "collect-built: stdin:5: invalid JSON: truncated line (EOF while parsing a string at line 1 column 54)",
            "collect-built: stdin:6: invalid pkgpath \"../etc\": \".\" or \"..\" segment",
            "collect-built: stdin:8: build record: field \"fullpkgpath\" is missing; not collected",
            "collect-built: stdin:9: build record: field \"status\" is not built, up-to-date, failed, skipped or ignored; not collected",
            "collect-built: stdin:10: invalid pkgpath \"$(reboot)\": character '$' not allowed",
            // A build record no journal of this host backs (no batch here).
            "collect-built: stdin:4: editors/vim,gtk2: no batch id (--batch or a batch record) to check it against this host's journal: not collected",
        ]
    );
    // The good entries were asked about, once each, and nothing else.
    assert_eq!(calls(&log), [vec!["net/curl", "devel/libfoo"]]);
    let records = out.records();
    // The records read (the valid ones) come first, in order.
    let kinds: Vec<&str> = records
        .iter()
        .map(|r| r["kind"].as_str().unwrap())
        .collect();
    assert_eq!(&kinds[..4], ["build", "build", "build", "build"]);
    let errors: Vec<&str> = of_kind(&records, "notice")
        .iter()
        .filter(|n| n["level"] == "error")
        .map(|n| n["message"].as_str().unwrap())
        .collect();
    assert_eq!(errors.len(), 4, "{errors:?}");
    assert!(errors[0].starts_with("invalid pkgpath \"net/curl;reboot\""));
    let mut expected = vec!["curl-8.9.1.tgz", "debug-curl-8.9.1.tgz", "libfoo-1.0.tgz"];
    expected.sort();
    assert_eq!(files_of(&of_kind(&records, "package")), expected);
    check_packages(&of_kind(&records, "package"), &s.packages("ftp"));
}

#[test]
fn nothing_to_collect_asks_nothing() {
    // No build needed: nothing is asked of the tree.
    let s = SampleCopy::new();
    let (make, log) = spy(s.dir.path());
    let mut env = s.env();
    let make_s = make.to_str().unwrap();
    env.push(("MAKE", make_s));
    let input = "\
{\"kind\":\"build\",\"v\":1,\"fullpkgpath\":\"devel/broken\",\"target\":\"package\",\"status\":\"failed\"}
{\"kind\":\"build\",\"v\":1,\"fullpkgpath\":\"devel/hang\",\"target\":\"package\",\"status\":\"skipped\"}
{\"kind\":\"notice\",\"v\":1,\"tool\":\"build-list\",\"level\":\"warning\",\"message\":\"x\"}
";
    let out = run("collect-built", &[] as &[&str], input, &env);
    assert_eq!(out.code, 3, "{}", out.stderr);
    assert_eq!(out.stdout, input);
    assert_eq!(out.stderr, "");
    assert!(calls(&log).is_empty());
    let text = run("collect-built", &["-t"], input, &env);
    assert_eq!((text.code, text.stdout.as_str()), (3, ""));
    let empty = run("collect-built", &[] as &[&str], "", &env);
    assert_eq!((empty.code, empty.stdout.as_str()), (3, ""));
}

#[test]
fn make_that_fails_loses_no_record() {
    let s = SampleCopy::new();
    let mut env = s.env();
    env.push(("MAKE", "/nonexistent/make"));
    let input = "{\"kind\":\"batch\",\"v\":1,\"id\":\"b2\"}\nnet/curl\n";
    let out = run("collect-built", &[] as &[&str], input, &env);
    assert_eq!(out.code, 1, "{}", out.stderr);
    let records = out.records();
    assert_eq!(records[0]["kind"], "batch");
    let n = of_kind(&records, "notice");
    assert_eq!(n.len(), 1, "{}", out.stdout);
    assert_eq!(n[0]["level"], "error");
    assert_eq!(n[0]["batch"], "b2");
    let msg = n[0]["message"].as_str().unwrap();
    assert!(
        msg.contains("not found") && msg.ends_with("no package collected"),
        "{msg}"
    );
    assert!(
        out.stderr
            .contains("collect-built: /nonexistent/make: not found"),
        "{}",
        out.stderr
    );
    assert!(of_kind(&records, "package").is_empty());
}

#[test]
fn usage_errors_exit_2() {
    let s = SampleCopy::new();
    let env = s.env();
    for args in [
        &["--from", "cdrom"][..],
        &["-j", "0"],
        &["-j", "many"],
        &["--ports-dir", "/nonexistent/ports"],
        &["--repository", "relative/packages"],
        &["--arch", "amd64/../x"],
        &["--batch", "../b"],
    ] {
        let out = run("collect-built", args, "net/curl\n", &env);
        assert_eq!(out.code, 2, "{args:?}: {}", out.stderr);
        assert_eq!(out.stdout, "", "{args:?}");
        assert!(
            out.stderr.starts_with("collect-built: "),
            "{args:?}: {}",
            out.stderr
        );
    }
}

/// A dependency build-list's make created outside the list (devel/libfoo for
/// net/curl) is collected, marked as such, from the `created` of the build
/// records; a `created` that is no package file name is refused.
#[test]
fn dependencies_a_batch_built_outside_the_list_are_collected() {
    let s = SampleCopy::new();
    let logs = s.dir.path().join("logs");
    let env = s.env();
    let list = "net/curl\neditors/vim,gtk2\n";
    let built = run(
        "build-list",
        &["--log-dir", logs.to_str().expect("utf-8")],
        list,
        &env,
    );
    assert_eq!(built.code, 0, "{}", built.stderr);
    let curl = built
        .records()
        .into_iter()
        .find(|r| r["fullpkgpath"] == "net/curl")
        .expect("a record for net/curl");
    // What make said it created, dependency first (debug twins are silent).
    assert_eq!(
        curl["created"],
        serde_json::json!(["libfoo-1.0.tgz", "curl-8.9.1.tgz"])
    );
    let log_dir = ["--log-dir", logs.to_str().expect("utf-8")];
    let out = run("collect-built", &log_dir, &built.stdout, &env);
    assert_eq!((out.code, out.stderr.as_str()), (0, ""), "{}", out.stdout);
    let recs = out.records();
    let packages = of_kind(&recs, "package");
    assert_eq!(files_of(&packages), s.files("ftp"));
    check_packages(&packages, &s.packages("ftp"));
    let deps: Vec<(&str, &str)> = packages
        .iter()
        .filter(|r| r["dependency"] == true)
        .map(|r| {
            (
                r["file"].as_str().unwrap(),
                r["fullpkgpath"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(deps, [("libfoo-1.0.tgz", "net/curl")]);

    // A record is input: what was built and created is what this host's
    // journal of the batch says.  A forged record claiming a build the journal
    // does not hold, with created files of its choosing, collects nothing.
    let batch = curl["batch"].as_str().expect("batch");
    let forged = format!(
        r#"{{"kind":"build","v":1,"fullpkgpath":"misc/plain","target":"package","status":"built","batch":"{batch}","arch":"amd64","created":["../../etc/passwd.tgz","plain-1.0.tgz"]}}"#
    );
    let mut args = vec!["-t"];
    args.extend(log_dir);
    let out = run("collect-built", &args, &format!("{forged}\n"), &env);
    assert_eq!(out.code, 1);
    assert!(
        out.stderr.contains(&format!(
            "misc/plain: the journal of batch {batch} on this host"
        )) && out.stderr.contains("has no build of it: not collected"),
        "{}",
        out.stderr
    );
    assert_eq!(out.stdout, "");
}
