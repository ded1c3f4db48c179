//! The tools over the real tree with the real make.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::process::Command;
use std::sync::{Mutex, OnceLock};

use serde_json::Value;

use crate::support::*;

/// The kit: PORTFLOW_CONFORMANCE, else `../shared/conformance` beside the checkout.
fn kit() -> PathBuf {
    let k = std::env::var_os("PORTFLOW_CONFORMANCE")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("../shared/conformance"));
    assert!(
        k.join("bin/openbsd-make").is_file() && k.join("ports-2021-01.tar.xz").is_file(),
        "the conformance kit is not in {} (set PORTFLOW_CONFORMANCE to its directory)",
        k.display()
    );
    k
}

pub fn make() -> String {
    kit().join("bin/openbsd-make").display().to_string()
}

/// The real tree and sqlports, unpacked once into target/conformance/.
pub struct Real {
    pub tree: PathBuf,
    pub sqlports: PathBuf,
}

pub fn real() -> &'static Real {
    static REAL: OnceLock<Real> = OnceLock::new();
    static LOCK: Mutex<()> = Mutex::new(());
    REAL.get_or_init(|| {
        let _g = LOCK.lock();
        require("xz", "xz-utils");
        let k = kit();
        let top = root().join("target/conformance");
        let tree = top.join("ports");
        let stamp = top.join("ports.unpacked");
        if !stamp.exists() {
            let _ = std::fs::remove_dir_all(&tree);
            std::fs::create_dir_all(&tree).expect("mkdir");
            let st = Command::new("tar")
                .arg("-xJf")
                .arg(k.join("ports-2021-01.tar.xz"))
                .arg("-C")
                .arg(&tree)
                .status()
                .expect("tar");
            assert!(st.success(), "cannot unpack the real tree");
            std::fs::write(&stamp, "").expect("stamp");
        }
        let sqlports = top.join("sqlports.db");
        if !sqlports.exists() {
            let tmp = top.join("sqlports.db.tmp");
            let out = std::fs::File::create(&tmp).expect("create");
            let st = Command::new("xz")
                .arg("-dc")
                .arg(k.join("sqlports-2021-01.db.xz"))
                .stdout(out)
                .status()
                .expect("xz");
            assert!(st.success(), "cannot unpack sqlports");
            std::fs::rename(&tmp, &sqlports).expect("rename");
        }
        Real { tree, sqlports }
    })
}

/// A build host over the real tree: its settings only in a mk.conf (MAKECONF),
/// as a porter keeps writes out of the tree.
struct Host {
    dir: tempfile::TempDir,
    mk_conf: PathBuf,
}

impl Host {
    fn new() -> Host {
        let dir = tempfile::tempdir().expect("tempdir");
        let d = dir.path();
        let mk_conf = d.join("mk.conf");
        std::fs::write(
            &mk_conf,
            format!(
                "PACKAGE_REPOSITORY={0}/packages\nWRKOBJDIR={0}/pobj\nDISTDIR={0}/distfiles\n\
                 PLIST_REPOSITORY={0}/plist\nBULK_COOKIES_DIR={0}/bulk\nLOCKDIR={0}/locks\n",
                d.display()
            ),
        )
        .expect("mk.conf");
        Host { dir, mk_conf }
    }

    fn path(&self, p: &str) -> PathBuf {
        self.dir.path().join(p)
    }

    /// The environment of the tools: the tree, the real make, MAKECONF; nothing
    /// else (no --repository, no --arch: make's values are used).
    fn env(&self) -> Vec<(String, String)> {
        vec![
            ("PORTSDIR".into(), real().tree.display().to_string()),
            ("MAKE".into(), make()),
            ("MAKECONF".into(), self.mk_conf.display().to_string()),
        ]
    }

    fn run(&self, tool: &str, args: &[&str], stdin: &str) -> Out {
        let env = self.env();
        let e: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        run(tool, args, stdin, &e)
    }

    /// The real make over a list, in PORTSDIR: `env <env> make <args>`.
    fn make(&self, list: &[&str], env: &[(&str, &str)], args: &[&str]) -> (String, Vec<String>) {
        let l = self.path("make.list");
        let p = self.path("make.problems");
        std::fs::write(
            &l,
            list.iter().map(|e| format!("{e}\n")).collect::<String>(),
        )
        .unwrap();
        let _ = std::fs::remove_file(&p);
        let mut c = Command::new(make());
        c.current_dir(&real().tree)
            .env("PORTSDIR", &real().tree)
            .env("MAKECONF", &self.mk_conf)
            .env("REPORT_PROBLEM_LOGFILE", &p)
            .args(args);
        let mut on_line = false;
        for (k, v) in env {
            if *k == "SUBDIRLIST-on-the-command-line" {
                c.arg(format!("SUBDIRLIST={}", l.display()));
                on_line = true;
            } else {
                c.env(k, v);
            }
        }
        if !on_line {
            c.env("SUBDIRLIST", &l);
        }
        let out = c.output().expect("run the real make");
        let problems = std::fs::read_to_string(&p).unwrap_or_default();
        (
            String::from_utf8_lossy(&out.stdout).into_owned()
                + &String::from_utf8_lossy(&out.stderr),
            problems.lines().map(str::to_string).collect(),
        )
    }

    /// Lay out the repository as a build host has it after building `list`: every
    /// file `make show=_PACKAGE_COOKIES` names, the real file in all/ or
    /// no-arch/, hard links elsewhere (as bsd.port.mk links them).
    fn lay_out(&self, list: &[&str]) {
        let (out, problems) = self.make(list, &[], &["show=_PACKAGE_COOKIES"]);
        assert!(problems.is_empty(), "{problems:?}\n{out}");
        let mut by_name: BTreeMap<String, Vec<PathBuf>> = BTreeMap::new();
        for w in out
            .lines()
            .filter(|l| !l.starts_with("===>"))
            .flat_map(|l| l.split_whitespace())
        {
            let p = PathBuf::from(w.replace("//", "/"));
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            by_name.entry(name).or_default().push(p);
        }
        for (name, paths) in by_name {
            // the file itself where make creates it: no-arch/ if named, else all/
            let first = paths
                .iter()
                .find(|p| p.parent().unwrap().ends_with("no-arch"))
                .or_else(|| paths.iter().find(|p| p.parent().unwrap().ends_with("all")))
                .unwrap_or(&paths[0])
                .clone();
            std::fs::create_dir_all(first.parent().unwrap()).unwrap();
            if !first.exists() {
                std::fs::write(&first, format!("package {name}\n")).unwrap();
            }
            for p in paths
                .iter()
                .filter(|p| **p != first && p.parent().unwrap().ends_with("all"))
            {
                std::fs::create_dir_all(p.parent().unwrap()).unwrap();
                if !p.exists() {
                    std::fs::hard_link(&first, p).unwrap();
                }
            }
        }
    }
}

fn of_kind<'a>(records: &'a [Value], kind: &str) -> Vec<&'a Value> {
    records.iter().filter(|r| r["kind"] == kind).collect()
}

pub fn table(point: &str, result: &str) {
    eprintln!("conformance: {point}: {result}");
}

/// The list of the build tests: up to date, no-arch, multi-packages, an entry
/// that does not exist, a port marked broken, a port that fails to build.
const LIST: &[&str] = &[
    "net/curl",
    "devel/quirks",
    "editors/vim",
    "editors/vim,-lang",
    "www/nonexistent",
    "x11/kde-applications/lokalize",
    "emulators/dosbox",
];
const PRESENT: &[&str] = &[
    "net/curl",
    "devel/quirks",
    "editors/vim",
    "editors/vim,-lang",
];

#[test]
fn subdirlist_on_the_command_line_fails_every_entry_and_portflow_puts_it_in_the_environment() {
    let h = Host::new();
    h.lay_out(PRESENT);
    let (out, problems) = h.make(
        PRESENT,
        &[("SUBDIRLIST-on-the-command-line", "")],
        &["show=PKGNAMES"],
    );
    // The fact the sample tree imitates: every entry fails.
    assert_eq!(problems.len(), PRESENT.len(), "{out}");
    assert!(out.contains("Fatal: Use 'env SUBDIRLIST="), "{out}");
    let logs = h.path("logs");
    let b = h.run(
        "build-list",
        &["--log-dir", logs.to_str().unwrap(), "--batch", "cmdline"],
        &PRESENT.join("\n"),
    );
    assert_eq!(b.code, 0, "{}", b.stderr);
    for r in of_kind(&b.records(), "build") {
        assert_eq!(r["status"], "up-to-date", "{r}");
        let log = std::fs::read_to_string(r["log"].as_str().unwrap()).unwrap();
        assert!(!log.contains("Use 'env"), "{log}");
    }
    table(
        "SUBDIRLIST in the environment",
        &format!(
            "real make on the command line: {} of {} entries failed; build-list: 0 failed",
            problems.len(),
            PRESENT.len()
        ),
    );
}

#[test]
fn build_list_and_collect_built_honour_mk_conf_and_go_on_past_bad_entries() {
    let h = Host::new();
    h.lay_out(PRESENT);
    let logs = h.path("logs");
    let b = h.run(
        "build-list",
        &["--log-dir", logs.to_str().unwrap(), "--batch", "real"],
        &LIST.join("\n"),
    );
    assert_eq!(b.code, 1, "{}", b.stderr);
    let records = b.records();
    let got: Vec<(String, String, String)> = of_kind(&records, "build")
        .iter()
        .map(|r| {
            (
                r["fullpkgpath"].as_str().unwrap().to_string(),
                r["status"].as_str().unwrap().to_string(),
                r["reason"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    let want = |p: &str, s: &str, why: &str| (p.to_string(), s.to_string(), why.to_string());
    assert_eq!(
        got,
        [
            want("net/curl", "up-to-date", ""),
            want("devel/quirks", "up-to-date", ""),
            want("editors/vim", "up-to-date", ""),
            want("editors/vim,-lang", "up-to-date", ""),
            want("www/nonexistent", "failed", "non existent"),
            want(
                "x11/kde-applications/lokalize",
                "ignored",
                "is marked as broken: Depends on Qt 5.14+"
            ),
            want("emulators/dosbox", "failed", "error"),
        ],
        "{}",
        b.stderr
    );
    for r in of_kind(&records, "build") {
        assert_eq!(r["arch"], "amd64", "make's MACHINE_ARCH: {r}");
    }
    // mk.conf's repository, linked into ftp/ by make ("Link to").
    let curl_log = std::fs::read_to_string(logs.join("real/net@curl.log")).unwrap();
    assert!(
        curl_log.contains(&format!(
            "Link to {}",
            h.path("packages/amd64/ftp/curl-7.74.0.tgz").display()
        )),
        "{curl_log}"
    );
    assert!(
        curl_log.contains("===>  Cleaning for curl-7.74.0"),
        "{curl_log}"
    );

    // collect-built: no --repository, no --arch: mk.conf's, through make.
    let c = h.run(
        "collect-built",
        &["--log-dir", logs.to_str().unwrap()],
        &b.stdout,
    );
    assert_eq!(c.code, 0, "{}", c.stderr);
    let records = c.records();
    let files: BTreeMap<String, String> = of_kind(&records, "package")
        .iter()
        .map(|r| {
            (
                r["file"].as_str().unwrap().to_string(),
                r["fullpkgpath"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let want: BTreeMap<String, String> = [
        ("curl-7.74.0.tgz", "net/curl"),
        ("debug-curl-7.74.0.tgz", "net/curl"),
        ("quirks-3.508.tgz", "devel/quirks"),
        ("vim-8.2.2230-gtk3.tgz", "editors/vim"),
        // every vim entry names vim-lang: it goes to the one it is the own
        // subpackage of
        ("vim-lang-8.2.2230.tgz", "editors/vim,-lang"),
    ]
    .iter()
    .map(|(a, b)| (a.to_string(), b.to_string()))
    .collect();
    assert_eq!(files, want, "{}", c.stdout);
    for r in of_kind(&records, "package") {
        let p = PathBuf::from(r["path"].as_str().unwrap());
        assert!(p.starts_with(h.path("packages/amd64/ftp")), "{r}");
    }
    assert!(
        of_kind(&records, "notice").is_empty(),
        "no warning for files named but never made: {}",
        c.stdout
    );
    table(
        "build-list over the real tree",
        "4 up-to-date (Link to, Cleaning for), non existent failed, BROKEN ignored with make's reason, a failing port failed, the rest went on; mk.conf honoured",
    );
    table(
        "collect-built over the real tree",
        "5 files from mk.conf's ftp/, vim-lang credited to editors/vim,-lang, quirks from no-arch/, no warning",
    );
}

#[test]
fn also_really_rebuilds_with_clean_all() {
    let h = Host::new();
    h.lay_out(&["devel/quirks", "net/curl"]);
    let noarch = h.path("packages/amd64/no-arch/quirks-3.508.tgz");
    assert!(noarch.exists());
    let logs = h.path("logs");
    let b = h.run(
        "build-list",
        &[
            "--log-dir",
            logs.to_str().unwrap(),
            "--batch",
            "also",
            "--also",
            "devel/quirks",
            // As the shipped chain runs make: dependencies from the local
            // repository only.
            "--make-var",
            "PKG_PATH=/var/empty",
            "--make-var",
            "FETCH_PACKAGES=",
        ],
        "net/curl\n",
    );
    let records = b.records();
    let builds = of_kind(&records, "build");
    assert_eq!(builds[0]["status"], "up-to-date", "{}", b.stdout);
    let make_log = std::fs::read_to_string(logs.join("also/make.log")).unwrap_or_default();
    assert!(
        make_log.contains("PKG_PATH=/var/empty FETCH_PACKAGES="),
        "{make_log}"
    );
    // make clean=all removed the no-arch package: make tried to build it again
    // (and cannot here: there is no pkg_create on Linux).
    assert!(!noarch.exists(), "quirks was not cleaned");
    assert_eq!(builds[1]["fullpkgpath"], "devel/quirks");
    assert_eq!(builds[1]["status"], "failed", "{}", b.stdout);
    table(
        "--also, --make-var",
        "make clean=all removed devel/quirks' no-arch package; make package ran again; net/curl up to date with PKG_PATH=/var/empty FETCH_PACKAGES= on the command line",
    );
}

/// `build-list -n` asks the real make what it would do (show=_PACKAGE_COOKIES
/// CHECKSUMFILES DISTDIR IGNORE): each entry's plan is what the real run then
/// does, before and after the repository holds the packages.
#[test]
fn the_plan_of_build_list_n_is_what_the_real_make_does() {
    let h = Host::new();
    let logs = h.path("logs");
    let logs = logs.to_str().unwrap();
    let plan = |batch: &str| -> Vec<Value> {
        let o = h.run(
            "build-list",
            &["-n", "--log-dir", logs, "--batch", batch],
            &LIST.join("\n"),
        );
        assert_eq!(o.code, 0, "{}", o.stderr);
        o.records()
            .into_iter()
            .filter(|r| r["kind"] == "build")
            .collect()
    };
    let words = |rs: &[Value]| -> Vec<String> {
        rs.iter()
            .map(|r| r["plan"].as_str().unwrap_or("?").to_string())
            .collect()
    };
    let before = plan("before");
    assert_eq!(
        words(&before),
        [
            "build",
            "build",
            "build",
            "up-to-date",
            "fail",
            "ignored",
            "build"
        ],
        "{before:?}"
    );
    assert_eq!(
        before[5]["why"], "is marked as broken: Depends on Qt 5.14+",
        "make's words, as make package prints them"
    );
    assert_eq!(
        before[0]["packages"],
        serde_json::json!(["curl-7.74.0.tgz", "debug-curl-7.74.0.tgz"])
    );
    assert_eq!(
        before[0]["distfiles"],
        serde_json::json!(["curl-7.74.0.tar.xz"])
    );
    // editors/vim makes the -lang package too (in no-arch/): editors/vim,-lang
    // is up to date by its turn.
    let vim = before[2]["packages"].as_array().unwrap();
    assert!(
        vim.contains(&Value::from("vim-lang-8.2.2230.tgz")),
        "{vim:?}"
    );

    h.lay_out(PRESENT);
    let after = plan("after");
    assert_eq!(
        words(&after),
        [
            "up-to-date",
            "up-to-date",
            "up-to-date",
            "up-to-date",
            "fail",
            "ignored",
            "build"
        ],
        "{after:?}"
    );
    // The real make then: up to date exactly where the plan said so, and
    // the entry to build tried (and failed: nothing builds on Linux).
    let b = h.run(
        "build-list",
        &["--log-dir", logs, "--batch", "after"],
        &LIST.join("\n"),
    );
    let real: Vec<String> = of_kind(&b.records(), "build")
        .iter()
        .map(|r| r["status"].as_str().unwrap_or("?").to_string())
        .collect();
    assert_eq!(
        real,
        [
            "up-to-date",
            "up-to-date",
            "up-to-date",
            "up-to-date",
            "failed",
            "ignored",
            "failed"
        ],
        "{}",
        b.stdout
    );
    table(
        "build-list -n",
        "the plan (package cookies, distfiles, IGNORE from make) is what the real make package then does",
    );
}

#[test]
fn clean_env_wipes_mk_conf_wrkobjdir() {
    let h = Host::new();
    std::fs::create_dir_all(h.path("pobj/curl-7.74.0")).unwrap();
    std::fs::create_dir_all(h.path("pkgdb")).unwrap();
    let standins = root().join("tests/standins");
    let env = h.env();
    let mut e: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let db = h.path("pkgdb").display().to_string();
    let (i, d, a) = (
        standins.join("pkg_info").display().to_string(),
        standins.join("pkg_delete").display().to_string(),
        standins.join("pkg_add").display().to_string(),
    );
    e.extend([
        ("PKG_DBDIR", db.as_str()),
        ("PKG_INFO", i.as_str()),
        ("PKG_DELETE", d.as_str()),
        ("PKG_ADD", a.as_str()),
    ]);
    let out = run("clean-env", &["-n"], "net/curl\n", &e);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let records = out.records();
    let cleans = of_kind(&records, "clean");
    let wipe: Vec<&&Value> = cleans.iter().filter(|r| r["action"] == "wipe").collect();
    assert_eq!(wipe.len(), 1, "{}", out.stdout);
    assert_eq!(wipe[0]["target"], h.path("pobj").display().to_string());
    assert!(h.path("pobj/curl-7.74.0").exists(), "-n touched nothing");
    table(
        "clean-env",
        "WRKOBJDIR from mk.conf (through make), not PORTSDIR/pobj",
    );
}

#[test]
fn pkgpath_expand_over_every_directory_of_the_real_sqlports() {
    require("sqlite3", "sqlite3");
    let r = real();
    let q = |sql: &str| -> Vec<String> {
        let out = Command::new("sqlite3")
            .arg(&r.sqlports)
            .arg(sql)
            .output()
            .expect("sqlite3");
        assert!(out.status.success());
        String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .map(str::to_string)
            .collect()
    };
    let dirs = q("SELECT FullPkgPath FROM _Paths WHERE Id = PkgPath ORDER BY FullPkgPath");
    // What has a port behind it: canonical paths with a _Ports row.
    let ports: BTreeSet<String> = q(
        "SELECT DISTINCT c.FullPkgPath FROM _Ports x JOIN _Paths p ON p.Id = x.FullPkgPath \
         JOIN _Paths c ON c.Id = p.Canonical",
    )
    .into_iter()
    .collect();
    let db = r.sqlports.display().to_string();
    let out = run(
        "pkgpath-expand",
        &["--db", db.as_str(), "-t"],
        &dirs.join("\n"),
        &[],
    );
    assert!(out.code == 0 || out.code == 1, "{}", out.stderr);
    let got: BTreeSet<String> = out.lines().into_iter().map(str::to_string).collect();
    // Directories sqlports knows but holds no port for are passed on as they
    // are (with a warning): those are the only paths outside `ports`.
    let extra: Vec<&String> = got.difference(&ports).collect();
    for e in &extra {
        assert!(
            dirs.contains(e),
            "{e}: expanded to a path with no port behind it"
        );
    }
    let missing: Vec<&String> = ports.difference(&got).collect();
    assert!(missing.is_empty(), "{missing:?}");
    let brotli = run(
        "pkgpath-expand",
        &["--db", db.as_str(), "-t"],
        "archivers/py-brotli\n",
        &[],
    );
    assert_eq!(brotli.lines(), ["archivers/py-brotli,python3"]);
    table(
        "pkgpath-expand over the real sqlports",
        &format!(
            "{} directories -> {} paths, every port path found, {} unknown directories passed on, archivers/py-brotli -> ,python3 only",
            dirs.len(),
            got.len(),
            extra.len()
        ),
    );
}
