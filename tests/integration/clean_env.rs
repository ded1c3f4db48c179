//! clean-env against the stand-in pkg tools of tests/standins/ (POSIX sh over a
//! package database in a temporary PKG_DBDIR, laid out as the real one): the keep
//! list and its dependencies, reinstalls from a temporary repository, the dry run,
//! every WRKOBJDIR refusal, symbolic links inside WRKOBJDIR, records passed
//! through in order, bad input.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{json, Value};

use crate::support::*;

/// What clean-env and the stand-ins read from the environment, cleared before each
/// run so that the test's own environment cannot leak in.
const ENV: &[&str] = &[
    "WRKOBJDIR",
    "PKG_DBDIR",
    "PKG_INFO",
    "PKG_DELETE",
    "PKG_ADD",
    "DISTDIR",
    "PLIST_REPOSITORY",
    "TRUSTED_PKG_PATH",
    "PKG_PATH",
];

fn standin(name: &str) -> PathBuf {
    let p = root().join("tests/standins").join(name);
    let mode = fs::metadata(&p)
        .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
        .permissions()
        .mode();
    assert!(mode & 0o111 != 0, "{} is not executable", p.display());
    p
}

/// A build host in a temporary directory: a ports tree (`ports/`, WRKOBJDIR
/// `ports/pobj`, repository `ports/packages`), a package database `pkgdb/`.
struct Host {
    _t: tempfile::TempDir,
    top: PathBuf,
    ports: PathBuf,
    db: PathBuf,
    wrk: PathBuf,
    all: PathBuf,
}

impl Host {
    fn new() -> Host {
        let t = tempfile::tempdir().expect("tempdir");
        // Canonical, so that the paths in the records are the ones compared.
        let top = fs::canonicalize(t.path()).expect("canonicalize");
        let ports = top.join("ports");
        let db = top.join("pkgdb");
        let wrk = ports.join("pobj");
        let all = ports.join("packages/amd64/all");
        for d in [&ports, &db, &all] {
            fs::create_dir_all(d).expect("mkdir");
        }
        Host {
            _t: t,
            top,
            ports,
            db,
            wrk,
            all,
        }
    }

    /// Register an installed package and what it requires, as the pkg tools do:
    /// `+REQUIRING` in its directory, `+REQUIRED_BY` in those of its dependencies.
    fn install(&self, name: &str, requires: &[&str]) {
        let d = self.db.join(name);
        fs::create_dir_all(&d).expect("mkdir");
        fs::write(d.join("+CONTENTS"), format!("@name {name}\n")).expect("write");
        for r in requires {
            append(&d.join("+REQUIRING"), r);
            fs::create_dir_all(self.db.join(r)).expect("mkdir");
            append(&self.db.join(r).join("+REQUIRED_BY"), name);
        }
    }

    fn installed(&self) -> Vec<String> {
        let mut v: Vec<String> = fs::read_dir(&self.db)
            .expect("read db")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    /// Fake package files in `${PACKAGE_REPOSITORY}/amd64/all`.
    fn repo(&self, files: &[&str]) {
        for f in files {
            fs::write(self.all.join(f), format!("fake package {f}\n")).expect("write");
        }
    }

    /// Some work directories under WRKOBJDIR.
    fn work(&self) {
        write_files(
            &self.wrk,
            &[
                ("curl-8.9.1/build-amd64/lib/url.o", "obj\n"),
                ("curl-8.9.1/.configure_done", ""),
                ("locks/net-curl.lock", "1234\n"),
            ],
        );
    }

    /// The clean-env command with the stand-ins, this host's tree and database
    /// (PKG_DBDIR).
    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(bin("clean-env"));
        for v in ENV {
            c.env_remove(v);
        }
        // make answers for the host's settings: bmake with the sample tree's
        // mk files over this host's (empty) tree, so the defaults are
        // ports/pobj, ports/packages, ports/distfiles, ports/plist.
        require("bmake", "bmake");
        c.args(["--make", "bmake"])
            .env("MAKESYSPATH", crate::fixture::makesyspath())
            .env_remove("MAKECONF")
            .env_remove("PACKAGE_REPOSITORY")
            .env_remove("MACHINE_ARCH");
        c.env("PKG_INFO", standin("pkg_info"))
            .env("PKG_DELETE", standin("pkg_delete"))
            .env("PKG_ADD", standin("pkg_add"))
            .arg("--ports-dir")
            .arg(&self.ports)
            .env("PKG_DBDIR", &self.db)
            .args(["--arch", "amd64"])
            .args(args);
        c
    }

    fn run(&self, args: &[&str], stdin: &str, env: &[(&str, &str)]) -> Out {
        run_cmd(self.cmd(args), stdin, env)
    }

    fn path(&self, rel: &str) -> String {
        self.top.join(rel).display().to_string()
    }
}

fn append(file: &Path, line: &str) {
    let mut text = fs::read_to_string(file).unwrap_or_default();
    text.push_str(line);
    text.push('\n');
    fs::write(file, text).expect("write");
}

/// Every entry below `dir`: path -> what it is (directory, file and contents, link
/// and target, mode), read without following links.
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, String> {
    let mut m = BTreeMap::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in fs::read_dir(&d).expect("read_dir") {
            let p = e.expect("entry").path();
            let md = fs::symlink_metadata(&p).expect("lstat");
            let mode = md.permissions().mode() & 0o7777;
            let what = if md.file_type().is_symlink() {
                format!("link -> {}", fs::read_link(&p).expect("readlink").display())
            } else if md.is_dir() {
                todo.push(p.clone());
                format!("dir {mode:o}")
            } else {
                format!("file {mode:o} {:?}", fs::read(&p).expect("read"))
            };
            m.insert(p, what);
        }
    }
    m
}

/// The `clean` records of an output, as (action, target, status).
fn cleans(out: &Out) -> Vec<(String, String, String)> {
    out.records()
        .iter()
        .filter(|r| r["kind"] == "clean")
        .map(|r| {
            (
                r["action"].as_str().unwrap_or("?").to_string(),
                r["target"].as_str().unwrap_or("?").to_string(),
                r["status"].as_str().unwrap_or("?").to_string(),
            )
        })
        .collect()
}

fn c(action: &str, target: &str, status: &str) -> (String, String, String) {
    (action.into(), target.into(), status.into())
}

/// A host with a keep list's worth of dependencies: rsync requires libiconv and
/// popt, sqlports requires sqlite3, vim,gtk2 requires gtk+3, and the rest must go.
fn busy_host() -> Host {
    let h = Host::new();
    h.install("rsync-3.3.0p0", &["libiconv-1.17", "popt-1.19"]);
    h.install("debug-rsync-3.3.0p0", &[]);
    h.install("sqlports-7.52", &["sqlite3-3.46.0"]);
    h.install("sqlite3-3.46.0", &[]);
    h.install("gettext-runtime-0.22.5", &["libiconv-1.17"]);
    h.install("curl-8.9.1", &["nghttp2-1.62.1", "gettext-runtime-0.22.5"]);
    h.install("nghttp2-1.62.1", &[]);
    h.install("vim-9.1.0-gtk2", &["gtk+3-3.24.43"]);
    h.install("gtk+3-3.24.43", &["gettext-runtime-0.22.5"]);
    h.install("vim-9.1.0", &[]);
    h.install("quirks-7.49", &[]);
    h.install("tcl-8.6.14", &[]);
    h.repo(&["quirks-7.49.tgz", "quirks-7.50.tgz", "rsync-3.3.0p0.tgz"]);
    h.work();
    h
}

const KEEP: &[&str] = &[
    "--keep",
    "rsync",
    "--keep",
    "sqlports--",
    "--keep",
    "vim--gtk2",
    "--reinstall",
    "quirks",
];

/// What is left on the busy host after KEEP.
const LEFT: &[&str] = &[
    "gettext-runtime-0.22.5",
    "gtk+3-3.24.43",
    "libiconv-1.17",
    "popt-1.19",
    "quirks-7.50",
    "rsync-3.3.0p0",
    "sqlite3-3.46.0",
    "sqlports-7.52",
    "vim-9.1.0-gtk2",
];

/// What KEEP deletes on the busy host, in pkg_info order.
const DELETED: &[&str] = &[
    "curl-8.9.1",
    "debug-rsync-3.3.0p0",
    "nghttp2-1.62.1",
    "quirks-7.49",
    "tcl-8.6.14",
    "vim-9.1.0",
];

#[test]
fn keep_list_and_its_dependencies_stay_the_rest_goes() {
    let h = busy_host();
    let input = "{\"kind\":\"batch\",\"v\":1,\"id\":\"20261121-amd64\"}\n\
                 {\"kind\":\"port\",\"v\":1,\"pkgpath\":\"net/curl\",\"fullpkgpath\":\"net/curl\"}\n";
    let out = h.run(KEEP, input, &[]);
    assert_eq!((out.code, out.stderr.as_str()), (0, ""), "{out:?}");
    assert_eq!(h.installed(), LEFT);
    // The dependency of a kept package that another, deleted package also
    // required, survives and no longer names the deleted one.
    assert_eq!(
        fs::read_to_string(h.db.join("gettext-runtime-0.22.5/+REQUIRED_BY")).unwrap(),
        "gtk+3-3.24.43\n"
    );
    let lines = out.lines();
    assert_eq!(lines[..2], input.lines().collect::<Vec<_>>()[..]);
    let mut want: Vec<_> = DELETED.iter().map(|p| c("pkg_delete", p, "done")).collect();
    want.push(c("pkg_add", "quirks--", "done"));
    want.push(c("wipe", &h.path("ports/pobj"), "done"));
    assert_eq!(cleans(&out), want);
    for r in &out.records()[2..] {
        assert_eq!(r["arch"], "amd64", "{r}");
        assert_eq!(r["batch"], "20261121-amd64", "{r}");
        assert!(r.get("message").is_none(), "{r}");
    }
    // WRKOBJDIR is empty, and still there.
    assert!(h.wrk.is_dir());
    assert_eq!(fs::read_dir(&h.wrk).unwrap().count(), 0);
    // The repository is untouched.
    assert_eq!(fs::read_dir(&h.all).unwrap().count(), 3);
}

#[test]
fn the_standin_refuses_dependencies_of_kept_packages_like_pkg_delete() {
    // Why clean-env gives pkg_delete the whole kept set: told to keep only rsync,
    // pkg_delete refuses to delete what rsync requires, and exits 1.
    let h = busy_host();
    let out = run_cmd(
        {
            let mut c = Command::new(standin("pkg_delete"));
            c.args(["-IX", "rsync--"]).env("PKG_DBDIR", &h.db);
            c
        },
        "",
        &[],
    );
    assert_eq!(out.code, 1, "{out:?}");
    assert!(
        out.stderr
            .contains("can't delete libiconv-1.17 without deleting rsync-3.3.0p0"),
        "{}",
        out.stderr
    );
    assert_eq!(
        h.installed(),
        ["libiconv-1.17", "popt-1.19", "rsync-3.3.0p0"]
    );
}

#[test]
fn a_refusal_pkg_delete_still_makes_is_a_failure() {
    // A stale database: libold says gone requires it, but gone is not installed.
    // pkg_delete refuses libold; clean-env reports it, deletes the rest and goes on.
    let h = Host::new();
    h.install("curl-8.9.1", &[]);
    h.install("libold-1.0", &[]);
    fs::write(h.db.join("libold-1.0/+REQUIRED_BY"), "gone-2.0\n").unwrap();
    h.install("tcl-8.6.14", &[]);
    h.work();
    let out = h.run(&[], "", &[]);
    assert_eq!(out.code, 1, "{out:?}");
    assert_eq!(h.installed(), ["libold-1.0"]);
    assert_eq!(
        cleans(&out),
        [
            c("pkg_delete", "curl-8.9.1", "done"),
            c("pkg_delete", "libold-1.0", "failed"),
            c("pkg_delete", "tcl-8.6.14", "done"),
            c("wipe", &h.path("ports/pobj"), "done"),
        ]
    );
    let recs = out.records();
    let msg = recs[1]["message"].as_str().unwrap();
    assert_eq!(
        msg,
        "still installed after pkg_delete (exit status 1): libold-1.0 depends on non-existent gone-2.0 / can't delete libold-1.0 without deleting gone-2.0"
    );
    assert_eq!(
        out.stderr,
        format!("clean-env: pkg_delete libold-1.0: {msg}\n")
    );
    assert_eq!(fs::read_dir(&h.wrk).unwrap().count(), 0);
}

#[test]
fn one_failing_pkg_add_does_not_stop_the_others() {
    let h = Host::new();
    h.repo(&["quirks-7.50.tgz", "rsync-3.3.0p0.tgz", "vim-9.1.0-gtk2.tgz"]);
    // The flag wins over PKG_DBDIR.
    let db = h.db.to_str().unwrap();
    let out = h.run(
        &[
            "--pkg-dbdir",
            db,
            "--reinstall",
            "nothere",
            "--reinstall",
            "quirks--",
            "--reinstall",
            "rsync-3.3.0p0",
            "--reinstall",
            "vim--gtk2",
        ],
        "",
        &[("PKG_DBDIR", "/nonexistent")],
    );
    assert_eq!(out.code, 1, "{out:?}");
    assert_eq!(
        cleans(&out),
        [
            c("pkg_add", "nothere--", "failed"),
            c("pkg_add", "quirks--", "done"),
            c("pkg_add", "rsync-3.3.0p0", "done"),
            c("pkg_add", "vim--gtk2", "done"),
            c("wipe", &h.path("ports/pobj"), "done"),
        ]
    );
    assert_eq!(
        out.records()[0]["message"],
        "exit status 1: Can't find nothere--"
    );
    assert_eq!(
        out.stderr,
        "clean-env: pkg_add nothere--: exit status 1: Can't find nothere--\n"
    );
    assert_eq!(
        h.installed(),
        ["quirks-7.50", "rsync-3.3.0p0", "vim-9.1.0-gtk2"]
    );
    // WRKOBJDIR did not exist: nothing to empty, and it is not made.
    assert!(!h.wrk.exists());
}

#[test]
fn dry_run_shows_the_plan_and_touches_nothing() {
    let h = busy_host();
    let before = snapshot(&h.top);
    let args: Vec<&str> = ["-n"].iter().chain(KEEP).copied().collect();
    let out = h.run(&args, "net/curl\n", &[]);
    assert_eq!((out.code, out.stderr.as_str()), (0, ""), "{out:?}");
    assert_eq!(snapshot(&h.top), before, "the dry run changed something");
    let mut want: Vec<_> = DELETED
        .iter()
        .map(|p| c("pkg_delete", p, "dry-run"))
        .collect();
    want.push(c("pkg_add", "quirks--", "dry-run"));
    want.push(c("wipe", &h.path("ports/pobj"), "dry-run"));
    assert_eq!(cleans(&out), want);
    assert_eq!(
        out.records()[0],
        json!({"kind":"port","v":1,"pkgpath":"net/curl","fullpkgpath":"net/curl"})
    );
    // The plan is what the real run then does.
    let real = h.run(KEEP, "", &[]);
    assert_eq!(real.code, 0, "{real:?}");
    let done: Vec<_> = cleans(&real)
        .into_iter()
        .map(|(a, t, _)| c(&a, &t, "dry-run"))
        .collect();
    assert_eq!(done, want);
}

/// A refused run: the arguments, the environment, what stderr says.
type Refusal = (Vec<String>, Vec<(&'static str, String)>, &'static str);

#[test]
fn unsafe_wrkobjdir_is_refused_and_nothing_is_touched() {
    let h = busy_host();
    let outside = h.top.join("outside");
    write_files(&outside, &[("keep.txt", "keep\n"), ("repo/x.tgz", "x\n")]);
    symlink(&h.wrk, h.top.join("pobj-link")).unwrap();
    fs::create_dir_all(h.top.join("other")).unwrap();
    symlink(&h.top, h.top.join("other/up")).unwrap();
    write_files(
        &h.ports,
        &[
            ("Makefile", &group_mk(&["net"])),
            ("net/Makefile", &group_mk(&["curl"])),
            ("net/curl/Makefile", PORT_MK),
            ("net/curl/w/keep.txt", "keep\n"),
            ("infrastructure/mk/bsd.port.mk", "# mk\n"),
            ("mine/port/Makefile", PORT_MK),
        ],
    );
    let p = |rel: &str| h.path(rel);
    let cases: Vec<Refusal> = vec![
        (
            vec!["--wrkobjdir".into(), "ports/pobj".into()],
            vec![],
            "not an absolute path",
        ),
        (
            vec!["--wrkobjdir".into(), "/".into()],
            vec![],
            "is the root directory",
        ),
        (
            vec!["--wrkobjdir".into(), p("ports")],
            vec![],
            "contains or equals PORTSDIR",
        ),
        (
            vec!["--wrkobjdir".into(), p("")],
            vec![],
            "contains or equals PORTSDIR",
        ),
        (
            vec![],
            vec![("WRKOBJDIR", p("ports"))],
            "contains or equals PORTSDIR",
        ),
        (
            vec!["--wrkobjdir".into(), p("other/up/ports")],
            vec![],
            "contains or equals PORTSDIR",
        ),
        (
            vec!["--wrkobjdir".into(), p("ports/packages")],
            vec![],
            "contains or equals the package repository",
        ),
        (
            vec![
                "--wrkobjdir".into(),
                p("outside"),
                "--repository".into(),
                p("outside/repo"),
            ],
            vec![],
            "contains or equals the package repository",
        ),
        (
            vec!["--wrkobjdir".into(), p("ports/packages/amd64")],
            vec![],
            "is inside the package repository",
        ),
        (
            vec!["--wrkobjdir".into(), p("ports/distfiles")],
            vec![],
            "contains or equals DISTDIR",
        ),
        (
            vec!["--wrkobjdir".into(), p("outside")],
            vec![("DISTDIR", p("outside"))],
            "contains or equals DISTDIR",
        ),
        (
            vec!["--wrkobjdir".into(), p("outside")],
            vec![("DISTDIR", p("outside/keep.txt"))],
            "contains or equals DISTDIR",
        ),
        (
            vec!["--wrkobjdir".into(), p("ports/plist")],
            vec![],
            "contains or equals PLIST_REPOSITORY",
        ),
        (
            vec!["--wrkobjdir".into(), p("outside")],
            vec![("PLIST_REPOSITORY", p("outside/amd64"))],
            "contains or equals PLIST_REPOSITORY",
        ),
        (
            vec!["--wrkobjdir".into(), p("pkgdb")],
            vec![],
            "contains or equals the package database",
        ),
        (
            vec!["--wrkobjdir".into(), p("pobj-link")],
            vec![],
            "is a symbolic link",
        ),
        (
            vec!["-n".into(), "--wrkobjdir".into(), p("pobj-link")],
            vec![],
            "is a symbolic link",
        ),
        // Every spelling of the link: a trailing slash would follow it.
        (
            vec!["--wrkobjdir".into(), p("pobj-link/")],
            vec![],
            "is a symbolic link",
        ),
        (
            vec!["--wrkobjdir".into(), p("pobj-link//")],
            vec![],
            "is a symbolic link",
        ),
        (
            vec!["--wrkobjdir".into(), p("pobj-link/.")],
            vec![],
            "has a . or .. component",
        ),
        // A category of the tree, or a directory below one, is no WRKOBJDIR,
        // although the tree may hold WRKOBJDIR (ports/pobj).
        (
            vec!["--wrkobjdir".into(), p("ports/net")],
            vec![],
            "is a directory of the ports tree (net)",
        ),
        (
            vec!["--wrkobjdir".into(), p("ports/net/curl/w")],
            vec![],
            "is a directory of the ports tree (net)",
        ),
        (
            vec!["--wrkobjdir".into(), p("ports/infrastructure")],
            vec![],
            "is a directory of the ports tree (infrastructure)",
        ),
        (
            vec!["--wrkobjdir".into(), p("ports/mine/port")],
            vec![],
            "has a Makefile",
        ),
        (
            vec!["--wrkobjdir".into(), p("ports/pobj/../distfiles")],
            vec![],
            "has a . or .. component",
        ),
        (
            vec!["--wrkobjdir".into(), p("outside/keep.txt")],
            vec![],
            "is not a directory",
        ),
        // Usage errors are refused the same way.
        (
            vec!["--keep=-rf".into()],
            vec![],
            "--keep: invalid package \"-rf\"",
        ),
        (
            vec!["--reinstall".into(), "rsync;reboot".into()],
            vec![],
            "--reinstall: invalid package",
        ),
        (
            vec![],
            vec![("PKG_DELETE", p("nonexistent/pkg_delete"))],
            "pkg_delete: program not found or not executable",
        ),
        (
            vec!["--pkg-dbdir".into(), p("nonexistent")],
            vec![],
            "the package database is not a directory",
        ),
    ];
    let before = snapshot(&h.top);
    for (args, env, want) in &cases {
        let mut a: Vec<&str> = KEEP.to_vec();
        a.extend(args.iter().map(String::as_str));
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let out = h.run(&a, "net/curl\n", &env);
        let what = format!("{args:?} {env:?}");
        assert_eq!(out.code, 2, "{what}: {out:?}");
        assert_eq!(out.stdout, "", "{what}");
        assert!(
            out.stderr.starts_with("clean-env: ") && out.stderr.contains(want),
            "{what}: {}",
            out.stderr
        );
        assert_eq!(out.stderr.lines().count(), 1, "{what}: {}", out.stderr);
        assert_eq!(snapshot(&h.top), before, "{what}: something was touched");
    }
    // And the refusals name the directory.
    let out = h.run(&["--wrkobjdir", &p("ports")], "", &[]);
    assert_eq!(
        out.stderr,
        format!(
            "clean-env: WRKOBJDIR {}: contains or equals PORTSDIR ({}): refusing to wipe it\n",
            p("ports"),
            p("ports")
        )
    );
}

#[test]
fn symbolic_links_inside_wrkobjdir_are_removed_not_followed() {
    let h = Host::new();
    let outside = h.top.join("outside");
    write_files(
        &outside,
        &[("keep.txt", "keep\n"), ("deep/also.txt", "also\n")],
    );
    let w = &h.wrk;
    write_files(
        w,
        &[
            ("port-1.0/build/file.o", "o\n"),
            ("port-1.0/sub/deeper/x", "x\n"),
            ("ro/inner/file", "ro\n"),
        ],
    );
    symlink(&outside, w.join("to-outside-dir")).unwrap();
    symlink(outside.join("keep.txt"), w.join("to-outside-file")).unwrap();
    symlink(&outside, w.join("port-1.0/sub/deeper/up")).unwrap();
    symlink(outside.join("deep"), w.join("port-1.0/deep-link")).unwrap();
    symlink("/nonexistent/dangling", w.join("dangling")).unwrap();
    // Read-only directories, as a Go module cache leaves them.
    for d in ["ro/inner", "ro"] {
        fs::set_permissions(w.join(d), fs::Permissions::from_mode(0o555)).unwrap();
    }
    let before = snapshot(&outside);
    let out = h.run(&[], "", &[]);
    assert_eq!((out.code, out.stderr.as_str()), (0, ""), "{out:?}");
    assert_eq!(cleans(&out), [c("wipe", &h.path("ports/pobj"), "done")]);
    assert_eq!(snapshot(&outside), before, "a link was followed out");
    assert!(w.is_dir());
    assert_eq!(snapshot(w), BTreeMap::new());
}

#[test]
fn records_pass_through_untouched_and_in_order() {
    let h = Host::new();
    h.install("tcl-8.6.14", &[]);
    let first = "\
{\"kind\":\"batch\",\"v\":1,\"id\":\"b-42\",\"created\":\"2026-11-21T10:00:00Z\",\"tree\":\"/usr/ports\"}
# the list
{\"kind\":\"port\",\"v\":1,\"pkgpath\":\"net/curl\",\"changes\":[{\"path\":\"net/curl/Makefile\",\"status\":\"modified\",\"from\":\"1.80\",\"to\":\"1.80.2.1\"}],\"fullpkgpath\":\"net/curl\"}

{\"zz\":[1,{\"b\":2,\"a\":1}],\"kind\":\"mystery\",\"v\":1,\"arch\":\"sparc64\"}
";
    let second = "\
  editors/vim,-lang,gtk2  
net/tor
{\"kind\":\"notice\",\"v\":1,\"tool\":\"pkgpath-expand\",\"level\":\"warning\",\"message\":\"net/new: not in sqlports\"}
";
    let want_passed = [
        "{\"kind\":\"batch\",\"v\":1,\"id\":\"b-42\",\"created\":\"2026-11-21T10:00:00Z\",\"tree\":\"/usr/ports\"}",
        "{\"kind\":\"port\",\"v\":1,\"pkgpath\":\"net/curl\",\"changes\":[{\"path\":\"net/curl/Makefile\",\"status\":\"modified\",\"from\":\"1.80\",\"to\":\"1.80.2.1\"}],\"fullpkgpath\":\"net/curl\"}",
        "{\"zz\":[1,{\"b\":2,\"a\":1}],\"kind\":\"mystery\",\"v\":1,\"arch\":\"sparc64\"}",
        "{\"kind\":\"port\",\"v\":1,\"pkgpath\":\"editors/vim\",\"fullpkgpath\":\"editors/vim,gtk2,-lang\"}",
        "{\"kind\":\"port\",\"v\":1,\"pkgpath\":\"net/tor\",\"fullpkgpath\":\"net/tor\"}",
        "{\"kind\":\"notice\",\"v\":1,\"tool\":\"pkgpath-expand\",\"level\":\"warning\",\"message\":\"net/new: not in sqlports\"}",
    ];
    let check = |out: &Out| {
        assert_eq!((out.code, out.stderr.as_str()), (0, ""), "{out:?}");
        let lines = out.lines();
        assert_eq!(lines[..want_passed.len()], want_passed[..]);
        let rest: Vec<Value> = out.records()[want_passed.len()..].to_vec();
        assert_eq!(
            rest,
            [
                json!({"kind":"clean","v":1,"action":"pkg_delete","target":"tcl-8.6.14","status":"done","batch":"b-42","arch":"amd64"}),
                json!({"kind":"clean","v":1,"action":"wipe","target":h.path("ports/pobj"),"status":"done","batch":"b-42","arch":"amd64"}),
            ]
        );
    };
    // On standard input...
    let out = h.run(&[], &format!("{first}{second}"), &[]);
    check(&out);
    // ... and from files, one after the other.
    h.install("tcl-8.6.14", &[]);
    let f1 = h.top.join("one.jsonl");
    let f2 = h.top.join("two.txt");
    fs::write(&f1, first).unwrap();
    fs::write(&f2, second).unwrap();
    let out = h.run(&[f1.to_str().unwrap(), f2.to_str().unwrap()], "", &[]);
    check(&out);
    // --batch wins over the batch record.
    h.install("tcl-8.6.14", &[]);
    let out = h.run(&["--batch", "given"], first, &[]);
    assert_eq!(out.records().last().unwrap()["batch"], "given");
}

#[test]
fn bad_input_is_reported_and_the_rest_goes_on() {
    let h = Host::new();
    h.install("tcl-8.6.14", &[]);
    let input = "\
{\"kind\":\"port\",\"v\":1,\"pkgp
net/tor;reboot
net/curl
../etc
{\"kind\":\"port\",\"v\":2}
-rf
editors/vim
";
    let out = h.run(&["--batch", "b-1"], input, &[]);
    assert!(!out.stderr.contains("panicked"), "{}", out.stderr);
    assert_eq!(out.code, 1, "{out:?}");
    let err: Vec<&str> = out.stderr.lines().collect();
    assert_eq!(
        err,
        [
            "clean-env: stdin:1: invalid JSON: truncated line (EOF while parsing a string at line 1 column 26)",
            "clean-env: stdin:2: invalid pkgpath \"net/tor;reboot\": character ';' not allowed",
            "clean-env: stdin:4: invalid pkgpath \"../etc\": \".\" or \"..\" segment",
            "clean-env: stdin:5: record version 2 is not supported (this is version 1)",
            "clean-env: stdin:6: invalid pkgpath \"-rf\": segment starts with \"-\"",
        ]
    );
    let recs = out.records();
    let notice = |m: &str| json!({"kind":"notice","v":1,"tool":"clean-env","level":"error","message":m,"batch":"b-1","arch":"amd64"});
    assert_eq!(
        recs,
        [
            notice("invalid pkgpath \"net/tor;reboot\": character ';' not allowed: not built"),
            json!({"kind":"port","v":1,"pkgpath":"net/curl","fullpkgpath":"net/curl"}),
            notice("invalid pkgpath \"../etc\": \".\" or \"..\" segment: not built"),
            notice("invalid pkgpath \"-rf\": segment starts with \"-\": not built"),
            json!({"kind":"port","v":1,"pkgpath":"editors/vim","fullpkgpath":"editors/vim"}),
            json!({"kind":"clean","v":1,"action":"pkg_delete","target":"tcl-8.6.14","status":"done","batch":"b-1","arch":"amd64"}),
            json!({"kind":"clean","v":1,"action":"wipe","target":h.path("ports/pobj"),"status":"done","batch":"b-1","arch":"amd64"}),
        ]
    );
    // The host was still cleaned.
    assert!(h.installed().is_empty());
}

#[test]
fn the_pkg_tools_are_found_on_path_by_default() {
    let h = Host::new();
    h.install("tcl-8.6.14", &[]);
    h.repo(&["quirks-7.50.tgz"]);
    let path = format!(
        "{}:{}",
        root().join("tests/standins").display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut cmd = h.cmd(&["--reinstall", "quirks"]);
    for v in ["PKG_INFO", "PKG_DELETE", "PKG_ADD"] {
        cmd.env_remove(v);
    }
    let out = run_cmd(cmd, "", &[("PATH", &path)]);
    assert_eq!((out.code, out.stderr.as_str()), (0, ""), "{out:?}");
    assert_eq!(h.installed(), ["quirks-7.50"]);
    // Without them on PATH: a usage error, before anything is done.
    h.install("tcl-8.6.14", &[]);
    let mut cmd = h.cmd(&[]);
    cmd.env_remove("PKG_INFO");
    let out = run_cmd(cmd, "", &[("PATH", "/nonexistent")]);
    assert_eq!(out.code, 2, "{out:?}");
    assert_eq!(
        out.stderr,
        "clean-env: pkg_info: program not found or not executable (set --pkg-info or PKG_INFO)\n"
    );
    assert_eq!(h.installed(), ["quirks-7.50", "tcl-8.6.14"]);
}

#[test]
fn a_failing_pkg_info_deletes_nothing_and_the_rest_is_done() {
    let h = Host::new();
    h.install("tcl-8.6.14", &[]);
    h.repo(&["quirks-7.50.tgz"]);
    h.work();
    let out = h.run(&["--reinstall", "quirks"], "", &[("PKG_INFO", "false")]);
    assert_eq!(out.code, 1, "{out:?}");
    let msg = "pkg_info -q failed (exit status 1): no output: no package deleted";
    assert_eq!(out.stderr, format!("clean-env: {msg}\n"));
    assert_eq!(
        out.records(),
        [
            json!({"kind":"notice","v":1,"tool":"clean-env","level":"error","message":msg,"arch":"amd64"}),
            json!({"kind":"clean","v":1,"action":"pkg_add","target":"quirks--","status":"done","arch":"amd64"}),
            json!({"kind":"clean","v":1,"action":"wipe","target":h.path("ports/pobj"),"status":"done","arch":"amd64"}),
        ]
    );
    assert_eq!(h.installed(), ["quirks-7.50", "tcl-8.6.14"]);
}

/// A bind mount is the directory it shows, whatever its path: WRKOBJDIR on an
/// alias of DISTDIR or of the tree is refused like the directory itself.  (The
/// mounts are made in a namespace of their own, `unshare -rm`, so that none is
/// left behind.)
#[test]
fn an_alias_by_bind_mount_is_refused() {
    require("unshare", "util-linux");
    let h = busy_host();
    let outside = h.top.join("outside");
    for d in ["alias-distfiles", "alias-tree", "alias-pkgdb"] {
        fs::create_dir_all(outside.join(d)).unwrap();
    }
    fs::create_dir_all(h.ports.join("distfiles")).unwrap();
    write_files(&h.ports.join("distfiles"), &[("curl-8.9.1.tar.gz", "x\n")]);
    let before = snapshot(&h.top);
    for (source, alias, wrkobjdir, want) in [
        (
            h.ports.join("distfiles"),
            outside.join("alias-distfiles"),
            outside.join("alias-distfiles"),
            "contains or equals DISTDIR",
        ),
        (
            h.ports.clone(),
            outside.join("alias-tree"),
            outside.join("alias-tree/distfiles"),
            "contains or equals DISTDIR",
        ),
        (
            h.ports.clone(),
            outside.join("alias-tree"),
            outside.join("alias-tree"),
            "contains or equals PORTSDIR",
        ),
        (
            h.db.clone(),
            outside.join("alias-pkgdb"),
            outside.join("alias-pkgdb"),
            "contains or equals the package database",
        ),
    ] {
        let c = h.cmd(&["--wrkobjdir", wrkobjdir.to_str().unwrap()]);
        let mut u = Command::new("unshare");
        u.args([
            "-rm",
            "sh",
            "-c",
            "mount --bind \"$1\" \"$2\" || exit 99; shift 2; exec \"$@\"",
            "sh",
        ])
        .arg(&source)
        .arg(&alias)
        .arg(c.get_program())
        .args(c.get_args());
        for (k, v) in c.get_envs() {
            match v {
                Some(v) => u.env(k, v),
                None => u.env_remove(k),
            };
        }
        let out = run_cmd(u, "net/curl\n", &[]);
        assert_ne!(out.code, 99, "mount --bind failed: {}", out.stderr);
        assert_eq!(out.code, 2, "{wrkobjdir:?}: {out:?}");
        assert!(out.stderr.contains(want), "{wrkobjdir:?}: {}", out.stderr);
        assert_eq!(
            snapshot(&h.top),
            before,
            "{wrkobjdir:?}: something was touched"
        );
    }
}
