//! rsync-list with the real rsync: to a local directory, and over ssh to a real
//! OpenSSH server started on a loopback port (see sshd.rs).  First run `sent`,
//! second run `unchanged`, a missing file `failed`, bad names rejected before rsync
//! starts (a wrapper logs every rsync run), records passed through in order.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use crate::sshd::Sshd;
use crate::support::*;

const FILES: &[(&str, &str)] = &[
    ("curl-8.9.1.tgz", "curl package\n"),
    ("debug-curl-8.9.1.tgz", "curl debug package\n"),
    ("vim-lang-9.1.0.tgz", "vim-lang package\n"),
];

/// A source directory (`<t>/packages/amd64/ftp`) holding FILES.
struct Setup {
    t: tempfile::TempDir,
    src: PathBuf,
}

impl Setup {
    fn new() -> Self {
        require("rsync", "rsync");
        let t = tempfile::tempdir().expect("tempdir");
        let src = t.path().join("packages/amd64/ftp");
        fs::create_dir_all(&src).expect("mkdir");
        for (f, text) in FILES {
            fs::write(src.join(f), text).expect("write package");
        }
        Setup { t, src }
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.t.path().join(rel)
    }

    fn s(&self, rel: &str) -> String {
        self.path(rel)
            .to_str()
            .expect("utf-8 temp path")
            .to_string()
    }

    /// A package record as collect-built writes it, for `file` in `dir`.
    fn package_in(&self, dir: &Path, file: &str) -> String {
        format!(
            r#"{{"kind":"package","v":1,"fullpkgpath":"net/curl","pkgname":"{}","file":"{file}","path":"{}","size":1,"sha256":"00","debug":false,"batch":"b1","arch":"amd64"}}"#,
            file.trim_end_matches(".tgz"),
            dir.join(file).display()
        )
    }

    fn package(&self, file: &str) -> String {
        self.package_in(&self.src, file)
    }

    /// rsync-list copying from this setup's source directory (`--source`).
    fn rl(&self, args: &[&str], stdin: &str, env: &[(&str, &str)]) -> Out {
        let src = self.src.display().to_string();
        let mut a: Vec<&str> = vec!["--source", &src];
        a.extend_from_slice(args);
        run("rsync-list", &a, stdin, env)
    }

    /// The package records of every file of FILES.
    fn packages(&self) -> Vec<String> {
        FILES.iter().map(|(f, _)| self.package(f)).collect()
    }

    /// An rsync that logs each run (`--- run`, its arguments one a line, then
    /// `--- list` and the files-from list) to `<t>/rsync.log`, then runs rsync.
    fn spy(&self) -> (String, PathBuf) {
        let log = self.path("rsync.log");
        let script = self.path("rsync-spy");
        let text = format!(
            "#!/bin/sh\n\
             {{ echo '--- run'; printf '%s\\n' \"$@\"\n\
             for a; do case $a in --files-from=*) echo '--- list'; cat \"${{a#--files-from=}}\";; esac; done\n\
             }} >>'{}'\n\
             exec rsync \"$@\"\n",
            log.display()
        );
        fs::write(&script, text).expect("write spy");
        fs::set_permissions(&script, fs::Permissions::from_mode(0o755)).expect("chmod");
        (script.to_str().expect("utf-8").to_string(), log)
    }
}

/// The runs the spy saw: (arguments, files-from list) of each.
fn runs(log: &Path) -> Vec<(Vec<String>, Vec<String>)> {
    let text = fs::read_to_string(log).unwrap_or_default();
    let mut v: Vec<(Vec<String>, Vec<String>)> = Vec::new();
    let mut in_list = false;
    for l in text.lines() {
        match l {
            "--- run" => {
                v.push((Vec::new(), Vec::new()));
                in_list = false;
            }
            "--- list" => in_list = true,
            _ => {
                if let Some((args, list)) = v.last_mut() {
                    if in_list {
                        list.push(l.to_string());
                    } else {
                        args.push(l.to_string());
                    }
                }
            }
        }
    }
    v
}

fn lines(v: &[String]) -> String {
    v.iter().map(|l| format!("{l}\n")).collect()
}

fn of_kind<'a>(records: &'a [Value], kind: &str) -> Vec<&'a Value> {
    records.iter().filter(|r| r["kind"] == kind).collect()
}

/// file -> status of the transfer records.
fn statuses(records: &[Value]) -> Vec<(String, String)> {
    of_kind(records, "transfer")
        .iter()
        .map(|r| {
            (
                r["file"].as_str().expect("file").to_string(),
                r["status"].as_str().expect("status").to_string(),
            )
        })
        .collect()
}

fn all(status: &str) -> Vec<(String, String)> {
    FILES
        .iter()
        .map(|(f, _)| (f.to_string(), status.to_string()))
        .collect()
}

/// The file names of a directory, sorted; none when it does not exist.
fn listing(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(dir)
        .into_iter()
        .flatten()
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

/// Every file of FILES is in `dir` with its contents.
fn landed(dir: &Path) {
    for (f, text) in FILES {
        assert_eq!(
            fs::read_to_string(dir.join(f)).ok().as_deref(),
            Some(*text),
            "{f} in {}",
            dir.display()
        );
    }
}

#[test]
fn local_sent_then_unchanged_records_in_order() {
    let s = Setup::new();
    let (spy, log) = s.spy();
    let dest = s.s("signer/amd64");
    fs::create_dir(s.path("signer")).unwrap(); // rsync makes the last directory only
    let mut input = vec![
        r#"{"kind":"batch","v":1,"id":"b1","created":"2026-11-21T03:00:00Z"}"#.to_string(),
        r#"{"kind":"build","v":1,"fullpkgpath":"net/curl","target":"package","status":"built","log":"/l","seconds":1}"#.to_string(),
    ];
    input.extend(s.packages());
    input.push(r#"{"kind":"mystery","v":1,"x":[1,{"y":null}]}"#.to_string());
    input.push(s.package(FILES[0].0)); // the same file again: one transfer
    let stdin = lines(&input);

    let out = s.rl(&["--rsync", &spy, &dest], &stdin, &[]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.stderr, "", "quiet on success");
    let got = out.lines();
    // Every record read first, untouched and in order; then one transfer per file.
    assert_eq!(&got[..input.len()], &input[..]);
    let own = out.records().split_off(input.len());
    assert_eq!(statuses(&own), all("sent"));
    for r in &own {
        let keys: Vec<&str> = r.as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(
            keys,
            ["kind", "v", "file", "dest", "status", "batch", "arch"]
        );
        assert_eq!(r["dest"], dest.as_str());
        assert_eq!(r["batch"], "b1");
        assert_eq!(r["arch"], "amd64");
    }
    landed(Path::new(&dest));
    assert_eq!(listing(Path::new(&dest)).len(), FILES.len());

    // One rsync run for the one source directory, never through a shell, with
    // the sorted list.
    let r = runs(&log);
    assert_eq!(r.len(), 1, "{r:?}");
    let (args, list) = &r[0];
    assert_eq!(
        list,
        &[
            "curl-8.9.1.tgz",
            "debug-curl-8.9.1.tgz",
            "vim-lang-9.1.0.tgz"
        ]
    );
    assert_eq!(args[0], "-a");
    assert_eq!(
        &args[args.len() - 3..],
        ["--", &format!("{}/", s.src.display()), &format!("{dest}/")]
    );

    // Again: nothing to send.
    let again = s.rl(&["--rsync", &spy, &dest], &stdin, &[]);
    assert_eq!(again.code, 0, "{}", again.stderr);
    assert_eq!(again.stderr, "");
    assert_eq!(statuses(&again.records()), all("unchanged"));

    // A changed file is sent again, the others are unchanged.
    fs::write(s.src.join(FILES[1].0), "rebuilt\n").unwrap();
    let third = s.rl(&[&dest], &stdin, &[]);
    assert_eq!(third.code, 0, "{}", third.stderr);
    let st = statuses(&third.records());
    assert_eq!(st[0].1, "unchanged");
    assert_eq!(st[1].1, "sent");
    assert_eq!(st[2].1, "unchanged");
    assert_eq!(
        fs::read_to_string(Path::new(&dest).join(FILES[1].0)).unwrap(),
        "rebuilt\n"
    );
}

#[test]
fn a_missing_file_fails_the_others_go() {
    let s = Setup::new();
    let dest = s.s("signer");
    fs::remove_file(s.src.join("debug-curl-8.9.1.tgz")).unwrap();
    let out = s.rl(&[&dest], &lines(&s.packages()), &[]);
    assert_eq!(out.code, 1, "{}", out.stderr);
    let records = out.records();
    let t = of_kind(&records, "transfer");
    assert_eq!(
        statuses(&records),
        [
            ("curl-8.9.1.tgz".to_string(), "sent".to_string()),
            ("debug-curl-8.9.1.tgz".into(), "failed".into()),
            ("vim-lang-9.1.0.tgz".into(), "sent".into()),
        ]
    );
    let missing = s.src.join("debug-curl-8.9.1.tgz");
    assert_eq!(
        t[1]["message"],
        format!("{}: No such file or directory", missing.display())
    );
    assert_eq!(
        out.stderr,
        format!(
            "rsync-list: {}: No such file or directory: not transferred\n",
            missing.display()
        )
    );
    assert_eq!(
        listing(Path::new(&dest)),
        ["curl-8.9.1.tgz", "vim-lang-9.1.0.tgz"]
    );

    // rsync itself fails one file (a directory in its way at the destination):
    // that file failed with rsync's message, the others still go.
    let dest2 = s.path("signer2");
    fs::create_dir_all(dest2.join("vim-lang-9.1.0.tgz/in-the-way")).unwrap();
    fs::write(s.src.join("debug-curl-8.9.1.tgz"), FILES[1].1).unwrap();
    let out = s.rl(&[dest2.to_str().unwrap()], &lines(&s.packages()), &[]);
    assert_eq!(out.code, 1, "{}", out.stderr);
    let records = out.records();
    let t = of_kind(&records, "transfer");
    assert_eq!(
        statuses(&records),
        [
            ("curl-8.9.1.tgz".to_string(), "sent".to_string()),
            ("debug-curl-8.9.1.tgz".into(), "sent".into()),
            ("vim-lang-9.1.0.tgz".into(), "failed".into()),
        ]
    );
    let m = t[2]["message"].as_str().unwrap();
    assert!(m.contains("vim-lang-9.1.0.tgz"), "{m}");
    assert_eq!(out.stderr.lines().count(), 1, "{}", out.stderr);
    assert!(
        out.stderr.starts_with(&format!(
            "rsync-list: {}: ",
            s.src.join("vim-lang-9.1.0.tgz").display()
        )),
        "{}",
        out.stderr
    );
}

#[test]
fn bad_names_are_rejected_before_rsync_runs() {
    let s = Setup::new();
    let (spy, log) = s.spy();
    let dest = s.s("signer");
    // Files that exist, so that only the names are wrong.
    fs::write(s.path("packages/evil.tgz"), "x").unwrap();
    fs::write(s.src.join("-rf.tgz"), "x").unwrap();
    fs::write(s.src.join("#c.tgz"), "x").unwrap();
    let bad = [
        format!(
            r#"{{"kind":"package","v":1,"file":"../evil.tgz","path":"{}/../evil.tgz"}}"#,
            s.src.display()
        ),
        format!(
            r#"{{"kind":"package","v":1,"file":"-rf.tgz","path":"{}/-rf.tgz"}}"#,
            s.src.display()
        ),
        format!(
            r##"{{"kind":"package","v":1,"file":"#c.tgz","path":"{}/#c.tgz"}}"##,
            s.src.display()
        ),
        format!(
            r#"{{"kind":"package","v":1,"file":"a\u0001.tgz","path":"{}/a\u0001.tgz"}}"#,
            s.src.display()
        ),
        r#"{"kind":"package","v":1,"file":"","path":"/x/"}"#.to_string(),
        format!(
            r#"{{"kind":"package","v":1,"file":"curl-8.9.1.tgz","path":"{}/other.tgz"}}"#,
            s.src.display()
        ),
        r#"{"kind":"package","v":1,"file":"curl-8.9.1.tgz","path":"relative/curl-8.9.1.tgz"}"#
            .to_string(),
        r#"{"kind":"package","v":1,"path":"/x/y.tgz"}"#.to_string(),
        r#"{"kind":"package","v":1,"file":"y.tgz","pa"#.to_string(),
    ];
    let stdin = lines(&bad);
    let out = s.rl(&["--rsync", &spy, &dest], &stdin, &[]);
    assert!(!out.stderr.contains("panicked"), "{}", out.stderr);
    assert_eq!(out.code, 1, "{}", out.stderr);
    // rsync never ran; nothing reached the destination.
    assert!(runs(&log).is_empty(), "{:?}", runs(&log));
    assert!(!Path::new(&dest).exists());
    let src = s.src.display();
    let err: Vec<&str> = out.stderr.lines().collect();
    assert_eq!(
        err,
        [
            r#"rsync-list: stdin:1: package record: invalid file name "../evil.tgz": contains '/': not transferred"#.to_string(),
            r#"rsync-list: stdin:2: package record: invalid file name "-rf.tgz": starts with '-': not transferred"#.into(),
            r##"rsync-list: stdin:3: package record: invalid file name "#c.tgz": starts with '#': not transferred"##.into(),
            r#"rsync-list: stdin:4: package record: invalid file name "a\u{1}.tgz": character '\u{1}' not allowed: not transferred"#.into(),
            r#"rsync-list: stdin:5: package record: invalid file name "": empty: not transferred"#.into(),
            r#"rsync-list: stdin:8: package record: field "file" is missing: not transferred"#.into(),
            "rsync-list: stdin:9: invalid JSON: truncated line (EOF while parsing a string at line 1 column 42)".into(),
            // Paths are checked once the input is read (the source may come
            // from make): only this host's repository is copied from.
            format!(r#"rsync-list: stdin:6: package record: path "{src}/other.tgz" is not "{src}/curl-8.9.1.tgz": only this host's repository is copied from: not transferred"#),
            format!(r#"rsync-list: stdin:7: package record: path "relative/curl-8.9.1.tgz" is not "{src}/curl-8.9.1.tgz": only this host's repository is copied from: not transferred"#),
        ]
    );
    let records = out.records();
    // The records read pass through, then one error notice per rejection.
    assert_eq!(of_kind(&records, "package").len(), 8);
    let notices = of_kind(&records, "notice");
    assert_eq!(notices.len(), 8);
    assert!(notices
        .iter()
        .all(|n| n["level"] == "error" && n["tool"] == "rsync-list"));
    assert!(of_kind(&records, "transfer").is_empty());

    // With good files among them: one run, with the good names only.
    let mut mixed = bad.to_vec();
    mixed.insert(3, s.package("curl-8.9.1.tgz"));
    let out = s.rl(&["--rsync", &spy, &dest], &lines(&mixed), &[]);
    assert_eq!(out.code, 1, "{}", out.stderr);
    let r = runs(&log);
    assert_eq!(r.len(), 1, "{r:?}");
    assert_eq!(r[0].1, ["curl-8.9.1.tgz"]);
    assert_eq!(
        listing(Path::new(&dest)),
        ["curl-8.9.1.tgz"],
        "{}\n{}",
        out.stdout,
        out.stderr
    );
    assert_eq!(
        statuses(&out.records()),
        [("curl-8.9.1.tgz".to_string(), "sent".to_string())]
    );
}

#[test]
fn text_prints_the_list_and_runs_nothing() {
    let s = Setup::new();
    let (spy, log) = s.spy();
    let input = s.t.path().join("done.jsonl");
    let mut recs = vec![r#"{"kind":"batch","v":1,"id":"b1"}"#.to_string()];
    recs.extend(s.packages().into_iter().rev());
    recs.push(s.package("curl-8.9.1.tgz"));
    recs.push(s.package("../x"));
    fs::write(&input, lines(&recs)).unwrap();
    // No DEST with -t: the operand is an input.
    let out = run(
        "rsync-list",
        &["-t", "--rsync", &spy, input.to_str().unwrap()],
        "",
        &[],
    );
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert_eq!(
        out.lines(),
        [
            "curl-8.9.1.tgz",
            "debug-curl-8.9.1.tgz",
            "vim-lang-9.1.0.tgz"
        ]
    );
    assert_eq!(out.stderr.lines().count(), 1, "{}", out.stderr);
    assert!(out
        .stderr
        .contains(":6: package record: invalid file name \"../x\""));
    assert!(runs(&log).is_empty());

    // Plain names need no --source with -t; stdin.
    let out = run(
        "rsync-list",
        &["-t"],
        "b.tgz\na.tgz\n# comment\nb.tgz\n",
        &[],
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.lines(), ["a.tgz", "b.tgz"]);
    assert_eq!(out.stderr, "");

    // The list is what rsync itself takes.
    let dest = s.s("by-hand");
    let list = s.path("files-from");
    let good = run("rsync-list", &["-t", input.to_str().unwrap()], "", &[]);
    fs::write(&list, &good.stdout).unwrap();
    let st = std::process::Command::new("rsync")
        .arg("-a")
        .arg(format!("--files-from={}", list.display()))
        .arg(format!("{}/", s.src.display()))
        .arg(&dest)
        .status()
        .expect("rsync");
    assert!(st.success());
    landed(Path::new(&dest));
}

#[test]
fn dry_run_changes_nothing() {
    let s = Setup::new();
    let dest = s.s("signer");
    let stdin = lines(&s.packages());
    let out = s.rl(&["-n", &dest], &stdin, &[]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.stderr, "");
    let records = out.records();
    assert_eq!(statuses(&records), all("sent"));
    assert!(of_kind(&records, "transfer")
        .iter()
        .all(|r| r["dry_run"] == true));
    assert!(!Path::new(&dest).exists(), "a dry run made {dest}");

    // After a real run, a dry run says unchanged.
    assert_eq!(s.rl(&[&dest], &stdin, &[]).code, 0);
    fs::write(s.src.join(FILES[2].0), "newer\n").unwrap();
    let out = s.rl(&["--dry-run", &dest], &stdin, &[]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let st = statuses(&out.records());
    assert_eq!(st[0].1, "unchanged");
    assert_eq!(st[2].1, "sent");
    assert_eq!(
        fs::read_to_string(Path::new(&dest).join(FILES[2].0)).unwrap(),
        FILES[2].1,
        "a dry run changed the file"
    );
}

#[test]
fn plain_names_with_source_and_paths_outside_it() {
    let s = Setup::new();
    let (spy, log) = s.spy();
    let dest = s.s("signer");
    let all_dir = s.path("packages/amd64/all");
    fs::create_dir_all(&all_dir).unwrap();
    fs::write(all_dir.join("nonfree-1.0.tgz"), "nonfree\n").unwrap();
    fs::write(all_dir.join("curl-8.9.1.tgz"), "another curl\n").unwrap();

    // Plain names: --source, --arch and --batch stamp them.
    let src = s.src.to_str().unwrap();
    let out = run(
        "rsync-list",
        &[
            "--rsync", &spy, "--source", src, "--arch", "i386", "--batch", "b9", &dest,
        ],
        "vim-lang-9.1.0.tgz\n  curl-8.9.1.tgz  \n",
        &[],
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    let records = out.records();
    assert_eq!(
        out.lines(),
        [
            format!(
                r#"{{"kind":"transfer","v":1,"file":"vim-lang-9.1.0.tgz","dest":"{dest}","status":"sent","batch":"b9","arch":"i386"}}"#
            ),
            format!(
                r#"{{"kind":"transfer","v":1,"file":"curl-8.9.1.tgz","dest":"{dest}","status":"sent","batch":"b9","arch":"i386"}}"#
            )
        ]
    );
    assert_eq!(records.len(), 2);

    // A record never chooses what is copied: a path outside the source
    // directory (the all/ directory, a file of the host) is refused with an
    // error notice, the rest goes.
    let _ = fs::remove_file(&log);
    let secret = s.path("secret");
    fs::write(&secret, "root only\n").unwrap();
    let input = [
        s.package("debug-curl-8.9.1.tgz"),
        s.package_in(&all_dir, "nonfree-1.0.tgz"),
        format!(
            r#"{{"kind":"package","v":1,"file":"secret","path":"{}","arch":"amd64"}}"#,
            secret.display()
        ),
        s.package("curl-8.9.1.tgz"),
        s.package_in(&all_dir, "curl-8.9.1.tgz"),
    ];
    let out = s.rl(&["--rsync", &spy, &dest], &lines(&input), &[]);
    assert_eq!(out.code, 1, "{}", out.stderr);
    let err: Vec<&str> = out.stderr.lines().collect();
    assert_eq!(err.len(), 3, "{}", out.stderr);
    for (line, e) in [2, 3, 5].iter().zip(&err) {
        assert!(
            e.starts_with(&format!("rsync-list: stdin:{line}: package record: path ")),
            "{e}"
        );
        assert!(
            e.ends_with("only this host's repository is copied from: not transferred"),
            "{e}"
        );
    }
    let r = runs(&log);
    assert_eq!(r.len(), 1, "{r:?}");
    assert_eq!(r[0].1, ["curl-8.9.1.tgz", "debug-curl-8.9.1.tgz"]);
    assert_eq!(
        statuses(&out.records()),
        [
            ("debug-curl-8.9.1.tgz".to_string(), "sent".to_string()),
            ("curl-8.9.1.tgz".into(), "unchanged".into()),
        ]
    );
    assert!(!Path::new(&dest).join("secret").exists());
    assert!(!Path::new(&dest).join("nonfree-1.0.tgz").exists());
    assert_eq!(
        fs::read_to_string(Path::new(&dest).join("curl-8.9.1.tgz")).unwrap(),
        FILES[0].1
    );
}

#[test]
fn nothing_to_transfer_usage_and_missing_rsync() {
    let s = Setup::new();
    let (spy, log) = s.spy();
    let dest = s.s("signer");
    // No package record: exit 3, the records still pass, rsync never runs.
    let other = r#"{"kind":"build","v":1,"fullpkgpath":"devel/broken","status":"failed"}"#;
    let out = s.rl(&["--rsync", &spy, &dest], &format!("{other}\n"), &[]);
    assert_eq!(out.code, 3, "{}", out.stderr);
    assert_eq!(out.lines(), [other]);
    assert!(runs(&log).is_empty());

    // Usage: exit 2, nothing read or run.
    for (args, msg) in [
        (vec![], "the following required arguments were not provided"),
        (
            vec!["--", "-x"],
            "invalid destination \"-x\": starts with '-'",
        ),
        (vec!["--arch", "a/b", "d"], "invalid MACHINE_ARCH"),
        (vec!["--batch", "../b", "d"], "invalid batch id"),
        (
            vec!["--source", "/nonexistent", "d"],
            "--source /nonexistent: not a directory",
        ),
        // Without --source the host's repository is make's: its tree must be there.
        (
            vec!["--ports-dir", "/nonexistent/ports", "d"],
            "/nonexistent/ports: ports tree",
        ),
    ] {
        let out = run("rsync-list", &args, &format!("{other}\n"), &[]);
        assert_eq!(out.code, 2, "{args:?}: {}", out.stderr);
        assert!(out.stderr.starts_with("rsync-list: "), "{}", out.stderr);
        assert!(out.stderr.contains(msg), "{args:?}: {}", out.stderr);
        assert_eq!(out.stdout, "");
    }

    // No rsync: every file failed, with the install hint; exit 1.
    let out = s.rl(
        &["--rsync", "/nonexistent/rsync", &dest],
        &lines(&s.packages()),
        &[],
    );
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert_eq!(statuses(&out.records()), all("failed"));
    let hint = "/nonexistent/rsync: not found: install it (apt-get install rsync, pkg_add rsync) or give --rsync";
    for t in of_kind(&out.records(), "transfer") {
        assert_eq!(t["message"], hint);
    }
    assert!(out.stderr.contains(hint), "{}", out.stderr);

    // rsync failing as a whole (a destination it cannot make): every file
    // failed, with rsync's own message.
    fs::write(s.path("plainfile"), "x").unwrap();
    let bad_dest = s.s("plainfile/sub");
    let out = s.rl(&[&bad_dest], &lines(&s.packages()), &[]);
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert_eq!(statuses(&out.records()), all("failed"));
    let t = out.records();
    let m = of_kind(&t, "transfer")[0]["message"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(m.starts_with("rsync failed (exit "), "{m}");
    assert!(m.contains("plainfile/sub"), "{m}");
    assert_eq!(out.stderr.lines().count(), 1, "{}", out.stderr);
}

#[test]
fn over_ssh_to_a_real_sshd() {
    let s = Setup::new();
    let sshd = Sshd::start();
    let remote = s.path("signer/amd64");
    fs::create_dir(s.path("signer")).unwrap();
    let dest = format!("{}:{}", sshd.destination(), remote.display());
    let rsh = sshd.rsh();
    let stdin = lines(&s.packages());

    let out = s.rl(&["--rsh", &rsh, &dest], &stdin, &[]);
    assert_eq!(out.code, 0, "{}\nsshd log:\n{}", out.stderr, sshd.log());
    assert_eq!(out.stderr, "");
    let records = out.records();
    assert_eq!(statuses(&records), all("sent"));
    assert!(of_kind(&records, "transfer")
        .iter()
        .all(|r| r["dest"] == dest.as_str()));
    landed(&remote);

    let again = s.rl(&["--rsh", &rsh, &dest], &stdin, &[]);
    assert_eq!(again.code, 0, "{}", again.stderr);
    assert_eq!(statuses(&again.records()), all("unchanged"));

    // Nothing listens: every file failed with ssh's message, exit 1.
    let down = s.rl(&["--rsh", &sshd.rsh_unreachable(), &dest], &stdin, &[]);
    assert_eq!(down.code, 1, "{}", down.stderr);
    assert_eq!(statuses(&down.records()), all("failed"));
    for t in of_kind(&down.records(), "transfer") {
        let m = t["message"].as_str().unwrap();
        assert!(m.starts_with("rsync failed (exit "), "{m}");
        assert!(m.contains("ssh: connect to host 127.0.0.1 port"), "{m}");
        assert!(m.contains("Connection refused"), "{m}");
    }
    assert!(
        down.stderr.contains("ssh: connect to host 127.0.0.1 port"),
        "{}",
        down.stderr
    );

    // No ssh at all: rsync says it cannot run it.
    let nossh = s.rl(&["--rsh", "/nonexistent/ssh", &dest], &stdin, &[]);
    assert_eq!(nossh.code, 1, "{}", nossh.stderr);
    assert_eq!(statuses(&nossh.records()), all("failed"));
    assert!(
        nossh.stderr.contains("/nonexistent/ssh"),
        "{}",
        nossh.stderr
    );
}

/// A destination that fills up (a tmpfs of 160 KiB, three packages of 100 KiB):
/// rsync fails part way; every file said `sent` is really there, whole, and
/// the others are `failed`.  (The tmpfs is mounted in a namespace of its own,
/// `unshare -rm`, where the run and the look at the destination happen.)
#[test]
fn a_full_disk_sends_only_what_arrived() {
    require("unshare", "util-linux");
    let s = Setup::new();
    let mut seed: u64 = 0x2545_f491_4f6c_dd1d;
    for (f, _) in FILES {
        let bytes: Vec<u8> = (0..100 * 1024)
            .map(|_| {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                seed as u8
            })
            .collect();
        fs::write(s.src.join(f), bytes).unwrap();
    }
    let dest = s.path("signer");
    fs::create_dir_all(&dest).unwrap();
    let input = s.path("input.jsonl");
    fs::write(&input, lines(&s.packages())).unwrap();
    let script = format!(
        "mount -t tmpfs -o size=160k tmpfs '{dest}' || exit 99\n\
         '{bin}' --source '{src}' '{dest}' < '{input}' > '{out}' 2> '{err}'\n\
         echo $? > '{code}'\n\
         cd '{dest}' && sha256sum -- * > '{listing}' 2>/dev/null\n\
         exit 0\n",
        dest = dest.display(),
        bin = bin("rsync-list").display(),
        src = s.src.display(),
        input = input.display(),
        out = s.path("out.jsonl").display(),
        err = s.path("err").display(),
        code = s.path("code").display(),
        listing = s.path("listing").display(),
    );
    let st = Command::new("unshare")
        .args(["-rm", "sh", "-c", &script])
        .status()
        .expect("unshare");
    assert_eq!(st.code(), Some(0), "the tmpfs could not be mounted");
    let code = fs::read_to_string(s.path("code")).unwrap();
    let err = fs::read_to_string(s.path("err")).unwrap();
    assert_eq!(code.trim(), "1", "{err}");
    let arrived: std::collections::BTreeMap<String, String> = fs::read_to_string(s.path("listing"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split_once("  "))
        .map(|(sum, f)| (f.to_string(), sum.to_string()))
        .collect();
    let out = fs::read_to_string(s.path("out.jsonl")).unwrap();
    let records: Vec<Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let st = statuses(&records);
    assert_eq!(st.len(), FILES.len(), "{out}");
    let sha = |f: &str| {
        let o = Command::new("sha256sum")
            .arg(s.src.join(f))
            .output()
            .unwrap();
        String::from_utf8_lossy(&o.stdout)
            .split_whitespace()
            .next()
            .unwrap_or_default()
            .to_string()
    };
    let mut sent = 0;
    for (f, status) in &st {
        match status.as_str() {
            "sent" => {
                sent += 1;
                assert_eq!(arrived.get(f), Some(&sha(f)), "{f} said sent: {out}\n{err}");
            }
            "failed" => assert_ne!(arrived.get(f), Some(&sha(f)), "{f} said failed"),
            other => panic!("{f}: {other}"),
        }
    }
    assert!(sent >= 1 && sent < FILES.len(), "{out}\n{err}");
    if std::env::var_os("PORTFLOW_SHOW").is_some() {
        eprintln!("{out}\n{err}");
    }
}

/// The destination forgotten, the input file taken for it (`rsync-list
/// done.jsonl`): refused, exit 2, nothing copied anywhere (rsync would make a
/// directory of that name).
#[test]
fn an_input_file_is_no_destination() {
    let s = Setup::new();
    let (spy, log) = s.spy();
    let done = s.path("done.jsonl");
    fs::write(&done, lines(&s.packages())).unwrap();
    for d in [s.s("done.jsonl"), s.s("new.jsonl"), s.s("done.jsonl/")] {
        let out = s.rl(&["--rsync", &spy, &d], &lines(&s.packages()), &[]);
        assert_eq!(out.code, 2, "{d}: {}", out.stderr);
        assert!(
            out.stderr
                .contains("the destination comes first (rsync-list DEST [FILE ...])"),
            "{}",
            out.stderr
        );
        assert_eq!(out.stdout, "");
    }
    assert!(runs(&log).is_empty());
    assert!(done.is_file() && !s.path("new.jsonl").exists());
}
