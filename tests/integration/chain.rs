//! The per-architecture chain as one shell pipeline, the way a build host runs
//! it: `clean-env | build-list | collect-built [| rsync-list | summary-mail]`,
//! real bmake over a copy of the sample tree, the pkg tool stand-ins.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::fixture::SampleCopy;
use crate::support::*;

fn standin(name: &str) -> String {
    root()
        .join("tests/standins")
        .join(name)
        .display()
        .to_string()
}

/// The files in ftp/ made by this run: the sample copy is pre-seeded with the
/// dependency devel/libfoo, as a -stable host's repository holds the release's
/// packages.
fn seed(s: &SampleCopy) -> Vec<String> {
    assert!(s.build(&["devel/libfoo"]).is_empty());
    s.files("ftp")
}

fn new_files(s: &SampleCopy, seeded: &[String]) -> Vec<String> {
    s.files("ftp")
        .into_iter()
        .filter(|f| !seeded.contains(f))
        .collect()
}

/// A package database with one package to keep and one to delete.
fn pkg_db(dir: &Path) -> PathBuf {
    let db = dir.join("pkgdb");
    write_files(
        &db,
        &[
            ("rsync-3.2.7/+CONTENTS", "@name rsync-3.2.7\n"),
            ("oldjunk-1.0/+CONTENTS", "@name oldjunk-1.0\n"),
        ],
    );
    db
}

const INPUT: &str = "{\"kind\":\"batch\",\"v\":1,\"id\":\"chain-1\"}\n\
net/curl\n\
editors/vim,gtk2\n\
games/nonfree\n\
devel/broken\n";

/// Run `pipeline` (the stages, joined by `|`) under bash with pipefail; returns
/// the output and every stage's exit status.
fn pipeline(s: &SampleCopy, db: &Path, stages: &[String]) -> (Out, Vec<i32>) {
    let bindir = bin("clean-env").parent().expect("bin dir").to_path_buf();
    let path = format!(
        "{}:{}",
        bindir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let status = s.dir.path().join("pipestatus");
    let script = format!(
        "set -o pipefail\n{}\necho \"${{PIPESTATUS[@]}}\" > {}\n",
        stages.join(" |\n"),
        status.display()
    );
    let mut cmd = Command::new("bash");
    cmd.arg("-c").arg(script);
    let mut env = s.env();
    let pi = standin("pkg_info");
    let pd = standin("pkg_delete");
    let pa = standin("pkg_add");
    let dbs = db.display().to_string();
    env.extend([
        ("PATH", path.as_str()),
        ("PKG_INFO", pi.as_str()),
        ("PKG_DELETE", pd.as_str()),
        ("PKG_ADD", pa.as_str()),
        ("PKG_DBDIR", dbs.as_str()),
    ]);
    let out = run_cmd(cmd, INPUT, &env);
    let st = std::fs::read_to_string(&status).unwrap_or_default();
    let codes = st
        .split_whitespace()
        .map(|c| c.parse().expect("exit status"))
        .collect();
    (out, codes)
}

/// The files in the signing directory, sorted.
fn signed(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .expect("signing dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

fn kinds(recs: &[serde_json::Value], kind: &str) -> Vec<serde_json::Value> {
    recs.iter().filter(|r| r["kind"] == kind).cloned().collect()
}

#[test]
fn clean_build_collect_as_one_pipeline() {
    let s = SampleCopy::new();
    let seeded = seed(&s);
    let db = pkg_db(s.dir.path());
    std::fs::create_dir_all(s.tree.join("pobj/stale-1.0")).expect("mkdir");
    let (out, codes) = pipeline(
        &s,
        &db,
        &[
            "clean-env --keep rsync".into(),
            "build-list".into(),
            "collect-built".into(),
        ],
    );
    // build-list says a build failed (devel/broken); the others succeed.
    assert_eq!(codes, [0, 1, 0], "{}", out.stderr);
    let recs = out.records();
    // Nothing lost: the batch record went through all three stages first.
    assert_eq!(
        recs[0],
        serde_json::json!({"kind":"batch","v":1,"id":"chain-1"})
    );
    // clean-env: the junk package deleted, rsync kept, WRKOBJDIR emptied.
    let clean = kinds(&recs, "clean");
    assert!(clean
        .iter()
        .any(|r| r["action"] == "pkg_delete" && r["status"] == "done"));
    assert!(clean
        .iter()
        .all(|r| r["batch"] == "chain-1" && r["arch"] == "amd64"));
    assert!(db.join("rsync-3.2.7").is_dir());
    assert!(!db.join("oldjunk-1.0").exists());
    assert!(!s.tree.join("pobj/stale-1.0").exists());
    // build-list: every entry once, the failing one failed, the rest built.
    let builds: Vec<(String, String)> = kinds(&recs, "build")
        .iter()
        .map(|r| {
            (
                r["fullpkgpath"].as_str().unwrap_or("").to_string(),
                r["status"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    let mut b = builds.clone();
    b.sort();
    assert_eq!(
        b,
        [
            ("devel/broken".to_string(), "failed".to_string()),
            ("editors/vim,gtk2".into(), "built".into()),
            ("games/nonfree".into(), "built".into()),
            ("net/curl".into(), "built".into()),
        ],
        "{builds:?}"
    );
    // collect-built: exactly the files the tree put in ftp/, checksums right.
    let pkgs = kinds(&recs, "package");
    let mut files: Vec<String> = pkgs
        .iter()
        .map(|r| r["file"].as_str().unwrap_or("").to_string())
        .collect();
    files.sort();
    assert_eq!(files, new_files(&s, &seeded));
    assert!(!files.iter().any(|f| f.starts_with("nonfree")));
    for p in &pkgs {
        let path = p["path"].as_str().expect("path");
        let sum = Command::new("sha256sum")
            .arg(path)
            .output()
            .expect("sha256sum");
        let sum = String::from_utf8_lossy(&sum.stdout);
        assert_eq!(p["sha256"].as_str(), sum.split_whitespace().next());
        assert_eq!(p["batch"], "chain-1");
    }
}

#[test]
fn the_whole_chain_to_the_mail() {
    let s = SampleCopy::new();
    let seeded = seed(&s);
    let db = pkg_db(s.dir.path());
    let signing = s.dir.path().join("signing");
    std::fs::create_dir_all(&signing).expect("mkdir");
    let (out, codes) = pipeline(
        &s,
        &db,
        &[
            "clean-env --keep rsync".into(),
            "build-list".into(),
            "collect-built".into(),
            format!("rsync-list {}", signing.display()),
            "summary-mail --print --from builder@example.org --to porters@example.org".into(),
        ],
    );
    assert_eq!(codes, [0, 1, 0, 0, 0], "{}", out.stderr);
    // Every redistributable package reached the signing host.
    let sent = signed(&signing);
    assert_eq!(sent, new_files(&s, &seeded));
    // The mail tells the porters.
    let mail = out.stdout;
    if std::env::var_os("PORTFLOW_SHOW_MAIL").is_some() {
        eprintln!("{mail}");
    }
    assert!(mail.contains("Subject: stable packages to sign"), "{mail}");
    assert!(mail.contains("To: porters@example.org"), "{mail}");
    for f in &sent {
        assert!(
            mail.contains(&format!("amd64\t{f}\n")),
            "{f} not in\n{mail}"
        );
    }
    let debug = sent.iter().filter(|f| f.starts_with("debug-")).count();
    let count = format!(
        "amd64    {:>3} + {:>3} -debug packages",
        sent.len() - debug,
        debug
    );
    assert!(mail.contains(&count), "{count:?} not in\n{mail}");
    assert!(mail.contains("devel/broken"), "{mail}");
}

#[test]
fn the_plain_text_chain() {
    // For scripts: plain lists from stage to stage, -t everywhere.
    let s = SampleCopy::new();
    let seeded = seed(&s);
    let db = pkg_db(s.dir.path());
    let (out, codes) = pipeline(
        &s,
        &db,
        &[
            "clean-env -t --keep rsync".into(),
            "build-list -t --batch text-1".into(),
            "collect-built -t".into(),
        ],
    );
    assert_eq!(codes, [0, 1, 0], "{}", out.stderr);
    assert_eq!(out.lines(), new_files(&s, &seeded));
    // The failure is on stderr, where cron mails it.
    assert!(
        out.stderr.contains("build-list: devel/broken: failed"),
        "{}",
        out.stderr
    );
}

/// The chain file portflow ships (pipelines/chain), stage for stage: the
/// firmware and rsync kept, sqlports, quirks and updatedb built again, every
/// package built reaching the signing host.
#[test]
fn the_shipped_chain_file() {
    let s = SampleCopy::new();
    let seeded = seed(&s);
    let db = pkg_db(s.dir.path());
    write_files(
        &db,
        &[
            (
                "intel-firmware-20230808/+CONTENTS",
                "@name intel-firmware-20230808\n",
            ),
            (
                "vmm-firmware-1.16.3/+CONTENTS",
                "@name vmm-firmware-1.16.3\n",
            ),
        ],
    );
    let signing = s.dir.path().join("signing");
    std::fs::create_dir_all(&signing).expect("mkdir");
    let text = std::fs::read_to_string(root().join("pipelines/chain")).expect("pipelines/chain");
    let stages: Vec<String> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| l.replace("${SIGNING_DEST}", &signing.display().to_string()))
        .collect();
    assert_eq!(stages.len(), 4, "{stages:?}");
    let (out, codes) = pipeline(&s, &db, &stages);
    assert_eq!(codes, [0, 1, 0, 0], "{}", out.stderr);
    for kept in [
        "intel-firmware-20230808",
        "vmm-firmware-1.16.3",
        "rsync-3.2.7",
    ] {
        assert!(db.join(kept).is_dir(), "{kept} deleted");
    }
    assert!(!db.join("oldjunk-1.0").exists());
    let recs = out.records();
    let built: Vec<String> = kinds(&recs, "build")
        .iter()
        .filter(|r| r["status"] == "built")
        .map(|r| r["fullpkgpath"].as_str().unwrap_or_default().to_string())
        .collect();
    for p in ["databases/sqlports", "devel/quirks", "databases/updatedb"] {
        assert!(built.contains(&p.to_string()), "{p} not built: {built:?}");
    }
    let sent = signed(&signing);
    assert_eq!(sent, new_files(&s, &seeded));
}

/// pipelines/build-host.sh, the chain by hand, as its header says to run it:
/// every clean action done (no reinstall that cannot work), the new packages
/// at the destination, the mail printed lists them.
#[test]
fn the_build_host_script() {
    let s = SampleCopy::new();
    let seeded = seed(&s);
    let db = pkg_db(s.dir.path());
    let signing = s.dir.path().join("signing");
    std::fs::create_dir_all(&signing).expect("mkdir");
    let list = s.dir.path().join("list.jsonl");
    std::fs::write(&list, INPUT).expect("list");
    let script = root().join("pipelines/build-host.sh");
    let stage = format!(
        "cd '{}' && sh '{}' '{}' '{}'",
        s.dir.path().display(),
        script.display(),
        list.display(),
        signing.display()
    );
    let (out, codes) = pipeline(&s, &db, &[stage]);
    assert_eq!(codes, [0], "{}\n{}", out.stdout, out.stderr);
    let done = std::fs::read_to_string(s.dir.path().join("done.jsonl")).expect("done.jsonl");
    let cleans: Vec<&str> = done
        .lines()
        .filter(|l| l.contains("\"kind\":\"clean\""))
        .collect();
    assert!(!cleans.is_empty());
    assert!(
        cleans.iter().all(|l| l.contains("\"status\":\"done\"")),
        "{cleans:?}"
    );
    let sent = signed(&signing);
    assert_eq!(sent, new_files(&s, &seeded));
    for f in &sent {
        assert!(
            out.stdout.contains(&format!("\t{f}\n")),
            "{f}:\n{}",
            out.stdout
        );
    }
}
