//! build-list over a copy of the sample tree with real bmake: what it builds and
//! says, the journal across a kill -9, the silent timeout, fetch, bad input.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

use serde_json::Value;

use crate::fixture::SampleCopy;
use crate::support::*;

/// `(fullpkgpath, status, reason)` of the build records, in order.
fn builds(records: &[Value]) -> Vec<(String, String, String)> {
    records
        .iter()
        .filter(|r| r["kind"] == "build")
        .map(|r| {
            (
                r["fullpkgpath"].as_str().unwrap_or("?").to_string(),
                r["status"].as_str().unwrap_or("?").to_string(),
                r["reason"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect()
}

fn b(path: &str, status: &str, reason: &str) -> (String, String, String) {
    (path.into(), status.into(), reason.into())
}

fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

/// The flags that point build-list at the copy (MAKESYSPATH comes from env()).
fn flags(c: &SampleCopy, logs: &Path) -> Vec<String> {
    vec![
        "--ports-dir".into(),
        s(&c.tree).into(),
        "--make".into(),
        "bmake".into(),
        "--arch".into(),
        "amd64".into(),
        "--repository".into(),
        s(&c.repository).into(),
        "--log-dir".into(),
        s(logs).into(),
    ]
}

fn with(mut v: Vec<String>, more: &[&str]) -> Vec<String> {
    v.extend(more.iter().map(|x| x.to_string()));
    v
}

/// The env of the copy, without the settings the flags give.
fn makesyspath(c: &SampleCopy) -> Vec<(&str, &str)> {
    c.env()
        .into_iter()
        .filter(|(k, _)| *k == "MAKESYSPATH")
        .collect()
}

fn journal_lines(dir: &Path) -> Vec<Value> {
    std::fs::read_to_string(dir.join("journal"))
        .expect("journal")
        .lines()
        .map(|l| serde_json::from_str(l).expect("journal line"))
        .collect()
}

/// How many makes the batch ran (make.log has one line per start).
fn make_runs(dir: &Path) -> usize {
    std::fs::read_to_string(dir.join("make.log"))
        .unwrap_or_default()
        .lines()
        .filter(|l| l.starts_with("build-list: ") && l.contains(": in "))
        .count()
}

#[test]
fn builds_a_list_and_says_exactly_what_happened() {
    let c = SampleCopy::new();
    let logs = c.dir.path().join("logs");
    // An old batch's logs, to be removed, and a young one, to stay.
    for (name, age_days) in [("old-batch", 30), ("young-batch", 2)] {
        let d = logs.join(name);
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(d.join("lock"), "").unwrap();
        std::fs::write(d.join("journal"), "").unwrap();
        std::fs::File::options()
            .write(true)
            .open(d.join("journal"))
            .unwrap()
            .set_modified(SystemTime::now() - Duration::from_secs(age_days * 86_400))
            .unwrap();
    }
    let input = r#"{"kind":"batch","v":1,"id":"b1","created":"2026-11-21T10:00:00Z"}
{"kind":"port","v":1,"pkgpath":"net/curl","fullpkgpath":"net/curl","changes":[{"path":"net/curl/Makefile","status":"modified"}]}
{"kind":"port","v":1,"pkgpath":"editors/vim","fullpkgpath":"editors/vim,gtk2"}
{"kind":"port","v":1,"pkgpath":"editors/vim","fullpkgpath":"editors/vim,gtk2,-lang"}
{"kind":"notice","v":1,"tool":"ports-delta","level":"info","message":"kept as is"}
games/nonfree
devel/broken
{"kind":"port","v":1,"pkgpath":"lang/php/8.2","fullpkgpath":"lang/php/8.2,-gd"}
net/tor;reboot
misc/plain
net/curl
"#;
    let args = with(flags(&c, &logs), &["--also", "devel/quirks"]);
    let out = run("build-list", &args, input, &makesyspath(&c));
    assert_eq!(out.code, 1, "{}", out.stderr);
    let recs = out.records();
    // Every input record first, unchanged, in order.
    let input_records: Vec<Value> = input
        .lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(recs[..input_records.len()], input_records[..]);
    let rest = &recs[input_records.len()..];
    assert_eq!(rest[0]["kind"], "notice");
    assert_eq!(rest[0]["level"], "error");
    assert!(
        rest[0]["message"]
            .as_str()
            .unwrap()
            .contains("\"net/tor;reboot\""),
        "{}",
        rest[0]
    );
    assert_eq!(
        builds(rest),
        [
            b("net/curl", "built", ""),
            b("editors/vim,gtk2", "built", ""),
            // vim,gtk2 wrote vim-lang: nothing left to do for -lang.
            b("editors/vim,gtk2,-lang", "up-to-date", ""),
            b("games/nonfree", "built", ""),
            b("devel/broken", "failed", "error"),
            b("lang/php/8.2,-gd", "built", ""),
            b("misc/plain", "built", ""),
            b("devel/quirks", "built", ""),
        ]
    );
    // What make said each entry created: its packages, and a dependency built
    // on the way (debug twins are silent).
    let created = |e: &str| {
        rest.iter()
            .find(|r| r["fullpkgpath"] == e)
            .map(|r| r["created"].clone())
            .unwrap_or_default()
    };
    assert_eq!(
        created("net/curl"),
        serde_json::json!(["libfoo-1.0.tgz", "curl-8.9.1.tgz"])
    );
    assert_eq!(created("editors/vim,gtk2,-lang"), Value::Null);
    // A failed entry's record carries the end of its log (the mail shows it; no
    // one reads a file a record names).
    let broken = rest
        .iter()
        .find(|r| r["fullpkgpath"] == "devel/broken")
        .expect("devel/broken");
    let tail = broken["tail"].as_array().expect("a tail");
    assert!(
        tail.iter().any(|l| l
            .as_str()
            .unwrap_or("")
            .contains("broken: this port never builds")),
        "{broken}"
    );
    assert!(rest
        .iter()
        .filter(|r| r["status"] != "failed")
        .all(|r| r.get("tail").is_none()));
    let dir = logs.join("b1");
    for r in rest {
        assert_eq!(r["batch"], "b1", "{r}");
        assert_eq!(r["arch"], "amd64", "{r}");
        if r["kind"] == "build" {
            assert_eq!(r["target"], "package");
            assert!(r["seconds"].as_f64().is_some_and(|s| s >= 0.0), "{r}");
            let log = PathBuf::from(r["log"].as_str().unwrap());
            assert_eq!(log.parent(), Some(dir.as_path()));
            let text = std::fs::read_to_string(&log).unwrap();
            let first = text.lines().next().unwrap_or("");
            assert_eq!(
                first,
                format!("===> {}", r["fullpkgpath"].as_str().unwrap())
            );
        }
    }
    // What the tree really produced: debug packages, both subpackages of
    // php -gd, the dependency, nonfree in all/ only.
    assert_eq!(
        c.files("ftp"),
        [
            "curl-8.9.1.tgz",
            "debug-curl-8.9.1.tgz",
            "debug-vim-9.1.0-gtk2.tgz",
            "libfoo-1.0.tgz",
            "php-8.2.20.tgz",
            "php-gd-8.2.20.tgz",
            "plain-1.0.tgz",
            "quirks-7.14.tgz",
            "vim-9.1.0-gtk2.tgz",
            "vim-lang-9.1.0.tgz",
        ]
    );
    assert!(c.files("all").contains(&"nonfree-1.0.tgz".to_string()));
    assert!(!c.files("ftp").contains(&"nonfree-1.0.tgz".to_string()));
    // The logs hold each entry's own output.
    let log = |name: &str| std::fs::read_to_string(dir.join(name)).unwrap();
    let curl = log("net@curl.log");
    assert!(curl.contains("===>  Verifying dependency devel/libfoo for curl-8.9.1"));
    // As OpenBSD's make says it: once for a package and its debug package.
    assert!(curl.contains("===>  Building package for curl-8.9.1\nCreate "));
    assert!(!curl.contains("===> editors/vim"), "{curl}");
    assert_eq!(
        log("editors@vim,gtk2,-lang.log"),
        // nothing left to build: a bulk build cleans, as OpenBSD's make does
        "===> editors/vim,gtk2,-lang\n===>  Cleaning for vim-9.1.0-gtk2\n"
    );
    let broken = log("devel@broken.log");
    assert!(
        broken.contains("broken: this port never builds"),
        "{broken}"
    );
    assert!(broken.contains("*** Error code 1"), "{broken}");
    // (Not another entry's output: no php header or build in it; the word alone
    // may be in a temporary directory's random name.)
    assert!(
        !broken.contains("===> lang/php") && !broken.contains("for php-"),
        "{broken}"
    );
    // The invalid pkgpath never reached make.
    for e in std::fs::read_dir(&dir).unwrap() {
        let text = std::fs::read(e.unwrap().path()).unwrap();
        assert!(!String::from_utf8_lossy(&text).contains("reboot"));
    }
    assert_eq!(make_runs(&dir), 1);
    // A failed entry says where make was: its do-build failed.
    let failed: Vec<&Value> = rest
        .iter()
        .filter(|r| r["kind"] == "build" && r["status"] == "failed")
        .collect();
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert_eq!(failed[0]["phase"], "build", "{:?}", failed[0]);
    assert!(rest
        .iter()
        .filter(|r| r["status"] != "failed")
        .all(|r| r.get("phase").is_none()));
    // The journal: every finished entry once, as written.
    let journal = journal_lines(&dir);
    let written: Vec<&Value> = rest.iter().filter(|r| r["kind"] == "build").collect();
    assert_eq!(journal.iter().collect::<Vec<_>>(), written);
    // stderr: the bad line and the failure, nothing else.
    let err: Vec<&str> = out.stderr.lines().collect();
    assert_eq!(err.len(), 2, "{}", out.stderr);
    assert!(err[0].starts_with("build-list: stdin:9: invalid pkgpath \"net/tor;reboot\""));
    assert_eq!(
        err[1],
        format!(
            "build-list: devel/broken: failed (error), log {}",
            dir.join("devel@broken.log").display()
        )
    );
    // Old logs went, young ones stayed.
    assert!(!logs.join("old-batch").exists());
    assert!(logs.join("young-batch").exists());
    // The old one is archived, as the -stable scripts do.
    let listed = Command::new("tar")
        .arg("-tzf")
        .arg(logs.join("old-batch.tar.gz"))
        .output()
        .expect("tar");
    assert!(listed.status.success());
    let names = String::from_utf8_lossy(&listed.stdout);
    assert!(names.lines().any(|l| l == "old-batch/journal"), "{names}");

    // The same list again, as a new batch: nothing is built but the --also port.
    let before = mtimes(&c.packages("all"));
    let args2 = with(
        flags(&c, &logs),
        &["--also", "devel/quirks", "--batch", "b2"],
    );
    let again = run("build-list", &args2, input, &makesyspath(&c));
    assert_eq!(again.code, 1, "{}", again.stderr);
    assert_eq!(
        builds(&again.records()),
        [
            b("net/curl", "up-to-date", ""),
            b("editors/vim,gtk2", "up-to-date", ""),
            b("editors/vim,gtk2,-lang", "up-to-date", ""),
            b("games/nonfree", "up-to-date", ""),
            b("devel/broken", "failed", "error"),
            b("lang/php/8.2,-gd", "up-to-date", ""),
            b("misc/plain", "up-to-date", ""),
            b("devel/quirks", "built", ""),
        ]
    );
    assert!(again
        .records()
        .iter()
        .all(|r| r["kind"] != "build" || r["batch"] == "b2"));
    let after = mtimes(&c.packages("all"));
    assert_eq!(
        before.keys().collect::<Vec<_>>(),
        after.keys().collect::<Vec<_>>()
    );
    for (f, t) in &before {
        if f.starts_with("quirks-") {
            assert!(after[f] > *t, "{f}: the --also port was not built again");
        } else {
            assert_eq!(after[f], *t, "{f} was rebuilt");
        }
    }

    // The same batch once more: everything from the journal, make not run.
    let third = run("build-list", &args2, input, &makesyspath(&c));
    assert_eq!(third.code, 1, "{}", third.stderr);
    assert_eq!(third.stdout, again.stdout);
    assert_eq!(make_runs(&logs.join("b2")), 1);
    assert_eq!(after, mtimes(&c.packages("all")));
}

/// A child build-list whose records are read as they come.
struct Running {
    child: std::process::Child,
    lines: std::sync::mpsc::Receiver<String>,
    seen: Vec<String>,
}

impl Running {
    fn start(args: &[String], input: &str, env: &[(&str, &str)]) -> Self {
        let mut cmd = Command::new(bin("build-list"));
        cmd.args(args);
        for v in ["PORTSDIR", "MAKE", "PACKAGE_REPOSITORY", "MACHINE_ARCH"] {
            cmd.env_remove(v);
        }
        cmd.envs(env.iter().copied());
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("run build-list");
        {
            use std::io::Write;
            let mut sin = child.stdin.take().expect("stdin");
            sin.write_all(input.as_bytes()).expect("write stdin");
        }
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for l in BufReader::new(stdout).lines() {
                let Ok(l) = l else { break };
                if tx.send(l).is_err() {
                    break;
                }
            }
        });
        Running {
            child,
            lines: rx,
            seen: Vec::new(),
        }
    }

    /// Wait until `n` records were written.
    fn wait_records(&mut self, n: usize, limit: Duration) {
        let start = Instant::now();
        while self.seen.len() < n {
            let left = limit.saturating_sub(start.elapsed());
            match self.lines.recv_timeout(left) {
                Ok(l) => self.seen.push(l),
                Err(_) => panic!(
                    "only {} records after {limit:?}: {:?}",
                    self.seen.len(),
                    self.seen
                ),
            }
        }
    }
}

/// Wait until a file holds `text`.
fn wait_for_text(file: &Path, text: &str, limit: Duration) {
    let start = Instant::now();
    while !std::fs::read_to_string(file).is_ok_and(|t| t.contains(text)) {
        assert!(
            start.elapsed() < limit,
            "{} never said {text:?}",
            file.display()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Whether any process of a process group is alive.
fn group_alive(pgid: &str) -> bool {
    Command::new("kill")
        .args(["-s", "0", "--", &format!("-{pgid}")])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

#[test]
fn kill_9_in_the_middle_then_the_rerun_finishes_the_batch() {
    let c = SampleCopy::new();
    let logs = c.dir.path().join("logs");
    let dir = logs.join("crash");
    let input = "misc/plain\nnet/tor\ndevel/slow\nnet/torsocks\ngames/nonfree\n";
    let args = with(flags(&c, &logs), &["--batch", "crash"]);
    let mut env = makesyspath(&c);
    env.push(("SLOW_SECONDS", "6"));

    let mut first = Running::start(&args, input, &env);
    first.wait_records(2, Duration::from_secs(20));
    wait_for_text(
        &dir.join("devel@slow.log"),
        "slow: second 2 of 6",
        Duration::from_secs(20),
    );
    let pgid = std::fs::read_to_string(dir.join("make.pid")).expect("make.pid");
    let pgid = pgid.trim().to_string();
    // kill -9 of build-list alone: its make goes on in its own group, as after
    // a crash of the tool.
    first.child.kill().expect("kill -9");
    let _ = first.child.wait();
    let before: Vec<Value> = first
        .seen
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(
        builds(&before),
        [b("misc/plain", "built", ""), b("net/tor", "built", "")]
    );
    let finished = mtimes(&c.packages("all"));
    assert!(finished.contains_key("tor-0.4.8.12.tgz"));
    assert!(!finished.contains_key("slow-1.0.tgz"));

    // The rerun of the batch: what finished comes from the journal, the rest is
    // built, with the old make out of the way first.
    let again = run("build-list", &args, input, &env);
    assert_eq!(again.code, 0, "{}", again.stderr);
    assert!(
        again
            .stderr
            .contains("batch crash: 2 of 5 entries finished in an earlier run"),
        "{}",
        again.stderr
    );
    let recs = again.records();
    assert_eq!(
        builds(&recs),
        [
            b("misc/plain", "built", ""),
            b("net/tor", "built", ""),
            b("devel/slow", "built", ""),
            b("net/torsocks", "built", ""),
            b("games/nonfree", "built", ""),
        ]
    );
    // Re-emitted as journaled, not built again.
    assert_eq!(recs[..2], before[..]);
    let now = mtimes(&c.packages("all"));
    for (f, t) in &finished {
        assert_eq!(now[f], *t, "{f} was built again");
    }
    assert!(now.contains_key("slow-1.0.tgz"));
    assert!(!group_alive(&pgid), "the crashed run's make is still alive");
    // The journal: every entry exactly once.
    let mut journaled: Vec<String> = journal_lines(&dir)
        .iter()
        .map(|r| r["fullpkgpath"].as_str().unwrap().to_string())
        .collect();
    journaled.sort();
    assert_eq!(
        journaled,
        [
            "devel/slow",
            "games/nonfree",
            "misc/plain",
            "net/tor",
            "net/torsocks"
        ]
    );
    // One build of slow in its log, from start to end.
    let slow = std::fs::read_to_string(dir.join("devel@slow.log")).unwrap();
    assert_eq!(slow.matches("===> devel/slow\n").count(), 1, "{slow}");
    assert_eq!(slow.matches("slow: second 1 of 6").count(), 1, "{slow}");
    assert!(slow.contains("slow: second 6 of 6"), "{slow}");
}

#[test]
fn the_rerun_kills_a_crashed_runs_silent_make() {
    let c = SampleCopy::new();
    let logs = c.dir.path().join("logs");
    let dir = logs.join("orphan");
    let input = "devel/hang\nmisc/plain\n";
    let args = with(
        flags(&c, &logs),
        &["--batch", "orphan", "--silent-timeout", "2s"],
    );
    let mut env = makesyspath(&c);
    env.push(("HANG_SECONDS", "3572"));
    // The first run would kill hang itself only after an hour.
    let first_args = with(
        flags(&c, &logs),
        &["--batch", "orphan", "--silent-timeout", "1h"],
    );
    let mut first = Running::start(&first_args, input, &env);
    wait_for_text(
        &dir.join("devel@hang.log"),
        "===>  Building for hang-1.0",
        Duration::from_secs(20),
    );
    let pgid = std::fs::read_to_string(dir.join("make.pid")).expect("make.pid");
    let pgid = pgid.trim().to_string();
    first.child.kill().expect("kill -9");
    let _ = first.child.wait();
    // Silent, the orphaned make does not even notice that its reader is gone.
    std::thread::sleep(Duration::from_millis(300));
    assert!(group_alive(&pgid), "the orphaned make is gone already");
    let again = run("build-list", &args, input, &env);
    assert_eq!(again.code, 1, "{}", again.stderr);
    assert!(
        again.stderr.contains(&format!(
            "build-list: batch orphan: the make of an earlier run is still at work (process group {pgid}): killing it"
        )),
        "{}",
        again.stderr
    );
    assert!(!group_alive(&pgid), "the orphaned make survived");
    assert_eq!(
        builds(&again.records()),
        [
            b("devel/hang", "failed", "timeout"),
            b("misc/plain", "built", ""),
        ]
    );
}

#[test]
fn a_hung_port_is_killed_and_the_batch_goes_on() {
    let c = SampleCopy::new();
    let logs = c.dir.path().join("logs");
    let dir = logs.join("h1");
    let args = with(
        flags(&c, &logs),
        &["--batch", "h1", "--silent-timeout", "2s"],
    );
    let mut env = makesyspath(&c);
    env.push(("HANG_SECONDS", "3571"));
    let start = Instant::now();
    let out = run(
        "build-list",
        &args,
        "misc/plain\ndevel/hang\nnet/tor\n",
        &env,
    );
    let took = start.elapsed();
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(took < Duration::from_secs(20), "took {took:?}");
    assert_eq!(
        builds(&out.records()),
        [
            b("misc/plain", "built", ""),
            b("devel/hang", "failed", "timeout"),
            b("net/tor", "built", ""),
        ]
    );
    let hang = out
        .records()
        .into_iter()
        .find(|r| r["fullpkgpath"] == "devel/hang")
        .unwrap();
    let secs = hang["seconds"].as_f64().unwrap();
    assert!((2.0..10.0).contains(&secs), "{hang}");
    let log = std::fs::read_to_string(dir.join("devel@hang.log")).unwrap();
    assert!(log.starts_with("===> devel/hang\n"), "{log}");
    assert!(
        log.contains("build-list: no output for 2s: killing make"),
        "{log}"
    );
    assert_eq!(
        out.stderr.trim(),
        format!(
            "build-list: devel/hang: failed (timeout), log {}",
            dir.join("devel@hang.log").display()
        )
    );
    // The whole group went, the sleep too.
    let ps = Command::new("ps")
        .args(["-eo", "args"])
        .output()
        .expect("ps");
    assert!(
        !String::from_utf8_lossy(&ps.stdout).contains("sleep 3571"),
        "devel/hang's sleep survived"
    );
    assert_eq!(make_runs(&dir), 2);
}

#[test]
fn fetch_fills_distdir() {
    let c = SampleCopy::new();
    let logs = c.dir.path().join("logs");
    let distdir = c.tree.join("distfiles");
    let args = with(flags(&c, &logs), &["--target", "fetch", "--batch", "f1"]);
    let input = "net/curl\neditors/vim,gtk2\ndevel/libfoo\nmisc/plain\n";
    let out = run("build-list", &args, input, &makesyspath(&c));
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.stderr, "");
    let recs = out.records();
    assert_eq!(
        builds(&recs),
        [
            b("net/curl", "built", ""),
            b("editors/vim,gtk2", "built", ""),
            b("devel/libfoo", "up-to-date", ""),
            b("misc/plain", "built", ""),
        ]
    );
    assert!(recs.iter().all(|r| r["target"] == "fetch"));
    assert!(recs[0]["log"]
        .as_str()
        .unwrap()
        .ends_with("/f1/net@curl.fetch.log"));
    let mut files: Vec<String> = std::fs::read_dir(&distdir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    files.sort();
    assert_eq!(
        files,
        ["curl-8.9.1.tar.gz", "plain-1.0.tar.gz", "vim-9.1.0.tar.gz"]
    );
    for f in &files {
        assert_eq!(
            std::fs::read(distdir.join(f)).unwrap(),
            std::fs::read(c.dir.path().join("mirror").join(f)).unwrap()
        );
    }
    assert!(!c.repository.exists(), "fetch built packages");
    // Fetched already: a new batch finds everything there.
    let args2 = with(flags(&c, &logs), &["--target", "fetch", "--batch", "f2"]);
    let again = run("build-list", &args2, input, &makesyspath(&c));
    assert_eq!(again.code, 0, "{}", again.stderr);
    assert!(builds(&again.records())
        .iter()
        .all(|(_, st, _)| st == "up-to-date"));
}

#[test]
fn dry_run_builds_nothing() {
    let c = SampleCopy::new();
    let logs = c.dir.path().join("logs");
    let args = with(
        flags(&c, &logs),
        &["-n", "--batch", "d1", "--also", "devel/quirks"],
    );
    let out = run(
        "build-list",
        &args,
        "net/curl\nnet/curl\n",
        &makesyspath(&c),
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(
        builds(&out.records()),
        [
            b("net/curl", "skipped", "dry-run"),
            b("devel/quirks", "skipped", "dry-run"),
        ]
    );
    assert!(!logs.exists());
    assert!(!c.repository.exists());
    // A batch that finished an entry: the dry run shows its record as journaled.
    let real = run(
        "build-list",
        &with(flags(&c, &logs), &["--batch", "d2"]),
        "misc/plain\n",
        &makesyspath(&c),
    );
    assert_eq!(real.code, 0, "{}", real.stderr);
    let before = std::fs::read_to_string(logs.join("d2/journal")).unwrap();
    let dry = run(
        "build-list",
        &with(flags(&c, &logs), &["-n", "--batch", "d2"]),
        "net/tor\nmisc/plain\n",
        &makesyspath(&c),
    );
    assert_eq!(dry.code, 0, "{}", dry.stderr);
    assert_eq!(dry.stdout.lines().next(), real.stdout.lines().next());
    assert_eq!(
        builds(&dry.records()),
        [
            b("misc/plain", "built", ""),
            b("net/tor", "skipped", "dry-run"),
        ]
    );
    assert_eq!(
        std::fs::read_to_string(logs.join("d2/journal")).unwrap(),
        before
    );
    assert!(!c.files("all").contains(&"tor-0.4.8.12.tgz".to_string()));
}

/// `(fullpkgpath, plan)` of a dry run's records.
fn plans(records: &[Value]) -> Vec<(String, String)> {
    records
        .iter()
        .filter(|r| r["kind"] == "build")
        .map(|r| {
            (
                r["fullpkgpath"].as_str().unwrap_or("?").to_string(),
                r["plan"].as_str().unwrap_or("?").to_string(),
            )
        })
        .collect()
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

/// `-n` says, for each entry, what make then does: build (with the package
/// files it makes), up-to-date, ignored, fail; and what `make fetch` fetches.
#[test]
fn the_plan_is_what_make_then_does() {
    let c = SampleCopy::new();
    let logs = c.dir.path().join("logs");
    let env = makesyspath(&c);
    // Already built: misc/plain (up to date from then on).
    c.build(&["misc/plain"]);
    let list = "net/curl\neditors/vim,gtk2,-lang\ngames/nonfree\nmisc/plain\n\
                devel/marked\nnope/gone\ndevel/broken\n";
    let fetch = run(
        "build-list",
        &with(flags(&c, &logs), &["-n", "--target", "fetch"]),
        list,
        &env,
    );
    assert_eq!(fetch.code, 0, "{}", fetch.stderr);
    let f = fetch.records();
    let to_fetch: Vec<(String, Vec<String>)> = f
        .iter()
        .filter(|r| r["plan"] == "fetch")
        .map(|r| {
            (
                r["fullpkgpath"].as_str().unwrap().to_string(),
                strings(&r["distfiles"]),
            )
        })
        .collect();
    assert_eq!(
        to_fetch,
        [
            (
                "net/curl".to_string(),
                vec!["curl-8.9.1.tar.gz".to_string()]
            ),
            (
                "editors/vim,gtk2,-lang".into(),
                vec!["vim-9.1.0.tar.gz".into()]
            ),
        ],
        "{}",
        fetch.stdout
    );

    let dry = run("build-list", &with(flags(&c, &logs), &["-n"]), list, &env);
    assert_eq!(dry.code, 0, "{}", dry.stderr);
    let d = dry.records();
    let p = |s: &str, plan: &str| (s.to_string(), plan.to_string());
    assert_eq!(
        plans(&d),
        [
            p("net/curl", "build"),
            p("editors/vim,gtk2,-lang", "build"),
            p("games/nonfree", "build"),
            p("misc/plain", "up-to-date"),
            p("devel/marked", "ignored"),
            p("nope/gone", "fail"),
            p("devel/broken", "build"),
        ],
        "{}",
        dry.stdout
    );
    assert!(builds(&d)
        .iter()
        .all(|(_, st, why)| st == "skipped" && why == "dry-run"));
    assert_eq!(
        strings(&d[0]["packages"]),
        ["curl-8.9.1.tgz", "debug-curl-8.9.1.tgz"]
    );
    assert_eq!(
        strings(&d[1]["packages"]),
        [
            "vim-9.1.0-gtk2.tgz",
            "vim-lang-9.1.0.tgz",
            "debug-vim-9.1.0-gtk2.tgz"
        ]
    );
    assert!(d[4]["why"]
        .as_str()
        .unwrap_or("")
        .contains("needs a newer compiler"));
    assert!(!logs.exists(), "a dry run writes no log");

    // The real run: exactly the planned entries are built (or fail trying),
    // the others not; each planned package file is made.
    let real = run("build-list", &flags(&c, &logs), list, &env);
    assert_eq!(real.code, 1, "{}", real.stderr);
    let r = builds(&real.records());
    let planned: Vec<String> = plans(&d)
        .into_iter()
        .filter(|(_, plan)| plan == "build")
        .map(|(e, _)| e)
        .collect();
    let worked: Vec<String> = r
        .iter()
        .filter(|(e, st, _)| st == "built" || (st == "failed" && e != "nope/gone"))
        .map(|(e, _, _)| e.clone())
        .collect();
    assert_eq!(planned, worked, "{}", real.stdout);
    let all = c.files("all");
    for rec in d.iter().filter(|x| x["plan"] == "build") {
        for f in strings(&rec["packages"]) {
            let broken = rec["fullpkgpath"] == "devel/broken";
            assert_eq!(all.contains(&f), !broken, "{f}");
        }
    }
    // After it, everything built is up to date (a plan of a new batch: that
    // of the batch just run shows its journal).
    let again = run(
        "build-list",
        &with(flags(&c, &logs), &["-n", "--batch", "later"]),
        list,
        &env,
    );
    assert_eq!(
        plans(&again.records()),
        [
            p("net/curl", "up-to-date"),
            p("editors/vim,gtk2,-lang", "up-to-date"),
            p("games/nonfree", "up-to-date"),
            p("misc/plain", "up-to-date"),
            p("devel/marked", "ignored"),
            p("nope/gone", "fail"),
            p("devel/broken", "build"),
        ]
    );
}

#[test]
fn nothing_to_build_and_bad_usage() {
    let c = SampleCopy::new();
    let logs = c.dir.path().join("logs");
    let env = makesyspath(&c);
    // Only bad entries: reported, make never runs.
    let out = run(
        "build-list",
        &flags(&c, &logs),
        "net/$(reboot)\n../etc\n{\"kind\":\"port\",\"v\":1}\n",
        &env,
    );
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert_eq!(out.stderr.lines().count(), 3, "{}", out.stderr);
    assert!(builds(&out.records()).is_empty());
    // No batch id is made up for a run that builds nothing.
    assert!(out
        .records()
        .iter()
        .filter(|r| r["kind"] == "notice")
        .all(|r| r.get("batch").is_none() && r["arch"] == "amd64"));
    assert_eq!(
        out.records()
            .iter()
            .filter(|r| r["kind"] == "notice")
            .count(),
        3
    );
    assert!(!logs.exists());
    // An empty list: nothing to do.
    let out = run("build-list", &flags(&c, &logs), "# nothing\n\n", &env);
    assert_eq!(out.code, 3, "{}", out.stderr);
    assert_eq!(out.stdout, "");
    assert!(!logs.exists());
    // Usage errors.
    for bad in [
        &["--silent-timeout", "soon"][..],
        &["--silent-timeout", "0s"],
        &["--also", "../etc"],
        &["--target", "install"],
        &["--batch", "../x"],
    ] {
        let out = run(
            "build-list",
            &with(flags(&c, &logs), bad),
            "net/curl\n",
            &env,
        );
        assert_eq!(out.code, 2, "{bad:?}: {}", out.stderr);
        assert!(out.stderr.starts_with("build-list: "), "{}", out.stderr);
        assert_eq!(out.stdout, "");
    }
    assert!(!logs.exists());
    // A batch record whose id is not a batch id: an error, never replaced by a
    // new id in silence; nothing built.
    for bad in [
        r#"{"kind":"batch","v":1,"id":"../../etc"}"#,
        r#"{"kind":"batch","v":1}"#,
    ] {
        let out = run(
            "build-list",
            &flags(&c, &logs),
            &format!("{bad}\nmisc/plain\n"),
            &env,
        );
        assert_eq!(out.code, 2, "{bad}: {}", out.stderr);
        assert!(
            out.stderr.starts_with("build-list: stdin:1: ") && out.stderr.contains("nothing built"),
            "{}",
            out.stderr
        );
        assert!(!logs.exists());
    }
    // A log directory that cannot be used (a file in its way): a fatal error of
    // the setup, exit 2 (build-trigger fails the batch), not "a port failed";
    // nothing built.
    let blocked = c.dir.path().join("blocked");
    std::fs::write(&blocked, "a file\n").unwrap();
    let before = c.files("all");
    let out = run(
        "build-list",
        &with(flags(&c, &blocked.join("logs")), &["--batch", "b"]),
        "misc/plain\n",
        &env,
    );
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(
        out.stderr
            .contains("the batch's log directory cannot be used: nothing built"),
        "{}",
        out.stderr
    );
    assert_eq!(out.stdout, "");
    assert_eq!(c.files("all"), before);
}

/// The sample tree behaves as the real one where portflow depends on it: the
/// host's settings come from mk.conf (MAKECONF) through make, an entry that does
/// not exist fails with make's words while the rest goes on, a BROKEN port is
/// ignored with make's reason, SUBDIRLIST on make's command line fails every
/// entry, and collect-built finds the packages in mk.conf's repository, the
/// PKG_ARCH=* ones made in no-arch/.
#[test]
fn mk_conf_non_existent_and_ignored_entries_as_on_openbsd() {
    let c = SampleCopy::new();
    let top = c.dir.path();
    let mk_conf = top.join("mk.conf");
    std::fs::write(
        &mk_conf,
        format!(
            "PACKAGE_REPOSITORY={0}/repo\nWRKOBJDIR={0}/work\nDISTDIR={0}/dist\n",
            top.display()
        ),
    )
    .unwrap();
    let logs = top.join("logs");
    let env = [
        ("PORTSDIR", s(&c.tree)),
        ("MAKE", "bmake"),
        ("MAKESYSPATH", c.makesyspath_s.as_str()),
        ("MAKECONF", s(&mk_conf)),
    ];
    let list = "misc/plain\nwww/nonexistent\ndevel/marked\ndevel/quirks\n";
    let out = run(
        "build-list",
        &["--log-dir", s(&logs), "--batch", "mk"],
        list,
        &env,
    );
    assert_eq!(out.code, 1, "{}", out.stderr);
    let got: Vec<(String, String, String)> = out
        .records()
        .iter()
        .map(|r| {
            (
                r["fullpkgpath"].as_str().unwrap().into(),
                r["status"].as_str().unwrap().into(),
                r["reason"].as_str().unwrap_or("").into(),
            )
        })
        .collect();
    let w = |a: &str, b: &str, c: &str| (a.to_string(), b.to_string(), c.to_string());
    assert_eq!(
        got,
        [
            w("misc/plain", "built", ""),
            w("www/nonexistent", "failed", "non existent"),
            w(
                "devel/marked",
                "ignored",
                "is marked as broken: needs a newer compiler"
            ),
            w("devel/quirks", "built", ""),
        ]
    );
    assert_eq!(
        std::fs::read_to_string(logs.join("mk/www@nonexistent.log")).unwrap(),
        ">> Broken dependency: www/nonexistent non existent \n"
    );
    // mk.conf's repository, nothing in the tree's default one.
    let repo = top.join("repo/amd64");
    assert!(repo.join("ftp/plain-1.0.tgz").is_file());
    assert!(repo.join("no-arch/quirks-7.14.tgz").is_file());
    assert!(repo.join("all/quirks-7.14.tgz").is_file());
    assert!(!c.tree.join("packages").exists());
    assert!(!c.repository.exists());
    // collect-built asks make where the packages are.
    let col = run(
        "collect-built",
        &["-t", "--log-dir", logs.to_str().unwrap()],
        &out.stdout,
        &env,
    );
    assert_eq!(col.code, 0, "{}", col.stderr);
    assert_eq!(col.lines(), ["plain-1.0.tgz", "quirks-7.14.tgz"]);

    // SUBDIRLIST on make's command line: every entry fails, as on OpenBSD.
    let l = top.join("cmdline.list");
    let p = top.join("cmdline.problems");
    std::fs::write(&l, "misc/plain\nnet/curl\n").unwrap();
    let o = Command::new("bmake")
        .current_dir(&c.tree)
        .env("MAKESYSPATH", &c.makesyspath_s)
        .env("MAKECONF", &mk_conf)
        .env("REPORT_PROBLEM_LOGFILE", &p)
        .arg("show=PKGNAMES")
        .arg(format!("SUBDIRLIST={}", l.display()))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("Fatal: Use 'env SUBDIRLIST="), "{err}");
    assert_eq!(
        std::fs::read_to_string(&p).unwrap(),
        "misc/plain (show)\nnet/curl (show)\n"
    );
}

/// `--make-var` goes on make's command line for every make build-list runs (the
/// settings query, clean=all of --also, the build); what bsd.port.mk refuses
/// there, or what is build-list's own, is a usage error.
#[test]
fn make_vars_go_on_every_command_line() {
    let c = SampleCopy::new();
    let logs = c.dir.path().join("logs");
    let calls = c.dir.path().join("calls");
    let spy = c.dir.path().join("make-spy");
    write_script(
        &spy,
        &format!(
            "#!/bin/sh\necho \"$*\" >>'{}'\nexec bmake \"$@\"\n",
            calls.display()
        ),
    );
    let mut args = flags(&c, &logs);
    let i = args.iter().position(|a| a == "bmake").unwrap();
    args[i] = s(&spy).into();
    let args = with(
        args,
        &[
            "--make-var",
            "PKG_PATH=/var/empty",
            "--make-var",
            "FETCH_PACKAGES=",
            "--also",
            "devel/quirks",
        ],
    );
    let out = run("build-list", &args, "misc/plain\n", &makesyspath(&c));
    assert_eq!(out.code, 0, "{}", out.stderr);
    let text = std::fs::read_to_string(&calls).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    // The settings query, clean=all, the build: each with both.
    assert_eq!(lines.len(), 3, "{text}");
    for l in &lines {
        assert!(
            l.contains("PKG_PATH=/var/empty") && l.contains("FETCH_PACKAGES="),
            "{l}"
        );
    }
    assert!(lines[1].contains("clean=all"), "{text}");
    assert!(lines[2].starts_with("package"), "{text}");
    for bad in [
        "SUBDIRLIST=/tmp/l",
        "BULK=no",
        "FLAVOR=x",
        "novalue",
        "1X=y",
    ] {
        let out = run(
            "build-list",
            &with(flags(&c, &logs), &["--make-var", bad]),
            "misc/plain\n",
            &makesyspath(&c),
        );
        assert_eq!(out.code, 2, "{bad}: {}", out.stderr);
        assert!(out.stderr.starts_with("build-list: "), "{}", out.stderr);
    }
}

/// SIGTERM to build-list (a shutdown, build-trigger stopping its chain) stops
/// make and everything it runs, though make is in a process group of its own;
/// the entry it was at is not journaled, and the rerun builds it.
#[test]
fn sigterm_stops_make_too_and_the_rerun_goes_on() {
    let c = SampleCopy::new();
    let logs = c.dir.path().join("logs");
    let dir = logs.join("term");
    let input = "misc/plain\ndevel/slow\nnet/tor\n";
    let args = with(flags(&c, &logs), &["--batch", "term"]);
    let mut env = makesyspath(&c);
    env.push(("SLOW_SECONDS", "30"));

    let mut first = Running::start(&args, input, &env);
    first.wait_records(1, Duration::from_secs(20));
    wait_for_text(
        &dir.join("devel@slow.log"),
        "slow: second 2 of 30",
        Duration::from_secs(20),
    );
    let pgid = std::fs::read_to_string(dir.join("make.pid")).expect("make.pid");
    let pgid = pgid.trim().to_string();
    assert!(group_alive(&pgid));
    let started = Instant::now();
    let st = Command::new("kill")
        .args(["-s", "TERM", &first.child.id().to_string()])
        .status()
        .expect("kill");
    assert!(st.success());
    let status = first.child.wait().expect("wait");
    assert_eq!(status.code(), Some(75), "exit status of a stop");
    assert!(started.elapsed() < Duration::from_secs(15), "slow to stop");
    // Nothing of make is left (killed processes take a moment to go).
    let gone = Instant::now();
    while group_alive(&pgid) {
        assert!(
            gone.elapsed() < Duration::from_secs(5),
            "make still runs after build-list stopped"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let slow = std::fs::read_to_string(dir.join("devel@slow.log")).unwrap();
    assert!(
        slow.contains("build-list: stopped by a signal: killing make"),
        "{slow}"
    );
    let journaled: Vec<String> = journal_lines(&dir)
        .iter()
        .map(|r| r["fullpkgpath"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(journaled, ["misc/plain"]);

    // The rerun builds what was not finished.
    env.retain(|(k, _)| *k != "SLOW_SECONDS");
    env.push(("SLOW_SECONDS", "1"));
    let again = run("build-list", &args, input, &env);
    assert_eq!(again.code, 0, "{}", again.stderr);
    assert_eq!(
        builds(&again.records()),
        [
            b("misc/plain", "built", ""),
            b("devel/slow", "built", ""),
            b("net/tor", "built", ""),
        ]
    );
}

/// The live view, in a real terminal (tmux): entry n of N, the pkgpath and
/// its phase, the time at it, the failures so far and the time left as an
/// earlier batch took; an error on its own line, never glued to it; under
/// cron (no terminal), nothing on stderr when all is well.
#[test]
fn the_live_view_in_a_terminal_and_nothing_under_cron() {
    require("tmux", "tmux");
    let c = SampleCopy::new();
    let logs = c.dir.path().join("logs");
    let mut env = makesyspath(&c);
    env.push(("SLOW_SECONDS", "2"));
    // An earlier batch, not on a terminal: nothing on stderr.
    let earlier = run(
        "build-list",
        &with(
            flags(&c, &logs),
            &["--batch", "earlier", "--also", "devel/slow"],
        ),
        "misc/plain\n",
        &env,
    );
    assert_eq!(earlier.code, 0, "{}", earlier.stderr);
    assert_eq!(earlier.stderr, "", "cron gets nothing when all is well");

    // The next batch in a terminal: devel/slow (built again: --also), then
    // devel/broken, which fails.
    let tmp = c.dir.path();
    let script = tmp.join("live.sh");
    let mut text = String::from("#!/bin/sh\n");
    for (k, v) in &env {
        text.push_str(&format!("export {k}='{v}'\n"));
    }
    let args: Vec<String> = with(
        flags(&c, &logs),
        &["--batch", "live", "--also", "devel/slow"],
    )
    .iter()
    .map(|a| format!("'{a}'"))
    .collect();
    text.push_str(&format!(
        "printf 'misc/plain\\ndevel/broken\\n' | '{}' {} > '{}'\necho \"exit $?\"\nsleep 60\n",
        bin("build-list").display(),
        args.join(" "),
        tmp.join("out.jsonl").display()
    ));
    write_script(&script, &text);
    let term = Terminal::start(tmp, &script, 150);
    let seen = term.until(Duration::from_secs(30), |s| {
        s.contains("devel/slow (build)")
    });
    let line = seen
        .lines()
        .find(|l| l.contains("devel/slow (build)"))
        .unwrap_or_else(|| panic!("no live line:\n{seen}"))
        .to_string();
    assert!(
        line.starts_with("build-list: 3 of 3: devel/slow (build) 0:0"),
        "{line}"
    );
    // devel/broken failed before it; devel/slow took 2 s in the earlier batch.
    assert!(line.contains(", 1 failed, about 0:0"), "{line}");
    assert!(line.trim_end().ends_with(" left"), "{line}");
    // The end: the failure on a line of its own, the progress line gone.
    let end = term.until(Duration::from_secs(30), |s| s.contains("exit "));
    drop(term);
    let lines: Vec<&str> = end.lines().filter(|l| !l.trim().is_empty()).collect();
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("build-list: devel/broken: failed (error), log ")),
        "{end}"
    );
    assert!(lines.contains(&"exit 1"), "{end}");
    assert!(
        lines.iter().all(|l| !l.contains(" of 3: ")),
        "a progress line was left:\n{end}"
    );
}
