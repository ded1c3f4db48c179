//! ports-delta on the output of real GNU cvs and git.
//!
//! The sample tree is imported into a local CVS repository, tagged
//! OPENBSD_7_8_BASE, branched OPENBSD_7_8, and changed on the branch in every way
//! a -stable commit can change the tree.  A second checkout made at the release is
//! then followed to the branch as a build host does (`cvs -q up -Pd -A -r`), and the
//! same history is made again in git.  ports-delta must give the same ports from the
//! `cvs up` output, the `cvs rdiff -s` output, the `git diff --name-status` output,
//! and from running the VCS itself (`--cvs`, `--git`).
//!
//! The -stable checkout talks to the repository through `:fork:`, the cvs client/server
//! protocol without ssh: that is what a host following anoncvs sees, and only then
//! does `cvs up` print `P` (patched) lines besides `U` ones.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::*;

const BASE: &str = "OPENBSD_7_8_BASE";
const BRANCH: &str = "OPENBSD_7_8";
const EXCLUDE: &str = "sysutils/firmware/*";

/// One change to the tree, applied the same way to the CVS and the git work tree.
enum Edit {
    /// Append text to an existing file.
    Append(&'static str, &'static str),
    /// Replace text (found exactly once) in an existing file.
    Replace(&'static str, &'static str, &'static str),
    /// A new file.
    Create(&'static str, &'static str),
    /// `mv` a file (a rename in git; remove + add in cvs).
    Rename(&'static str, &'static str),
    /// Remove every file of a port.
    RemovePort(&'static str),
}
use Edit::*;

/// The first -stable commit: every kind of change to existing ports.
const COMMIT1: &[Edit] = &[
    // a Makefile
    Append("net/curl/Makefile", "# -stable: CVE-2025-0001\n"),
    // a patch renamed (a removed file and a new file in the same port)
    Rename(
        "net/curl/patches/patch-lib_url_c",
        "net/curl/patches/patch-lib_urlapi_c",
    ),
    // distinfo only
    Append(
        "editors/vim/distinfo",
        "SIZE (vim-stable-fix.tar.gz) = 42\n",
    ),
    // patches/ only, a new file in a new directory
    Create(
        "devel/libfoo/patches/patch-foo_c",
        "Index: foo.c\n--- foo.c.orig\n+++ foo.c\n@@ -1 +1 @@\n-int foo;\n+long foo;\n",
    ),
    // pkg/ only
    Append("misc/plain/pkg/PLIST", "share/doc/plain/NEWS\n"),
    // pkg/ only, in a port nested in a group with its own Makefile.inc
    Append("net/icinga/core2/pkg/PLIST", "share/doc/icinga2/NEWS\n"),
    // the shared Makefile.inc of a group, and one of its ports too
    Append("lang/php/Makefile.inc", "# -stable: security fix\n"),
    Append(
        "lang/php/8.2/distinfo",
        "SIZE (php-8.2-stable.tar.gz) = 42\n",
    ),
    // infrastructure
    Append("infrastructure/mk/bsd.port.mk", "# -stable: errata\n"),
    // an excluded port
    Append(
        "sysutils/firmware/iwm/Makefile",
        "# -stable: new firmware\n",
    ),
];

/// The second commit: a port added, a port removed, the category Makefile, and the
/// Makefile of the first commit again (two revisions on the branch).
const COMMIT2: &[Edit] = &[
    Append("net/curl/Makefile", "# -stable: REVISION bump\n"),
    Create(
        "net/newport/Makefile",
        "COMMENT =\tport added on -stable after the release\n\n\
         V =\t\t3.1.4\nDISTNAME =\tnewport-${V}\nCATEGORIES =\tnet\n\
         HOMEPAGE =\thttps://newport.example.org/\n\
         SITES =\t\thttps://newport.example.org/releases/\n\n\
         # MIT\nPERMIT_PACKAGE =\tYes\n\nWANTLIB =\tc\n\n.include <bsd.port.mk>\n",
    ),
    Create(
        "net/newport/distinfo",
        "SHA256 (newport-3.1.4.tar.gz) = AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n\
         SIZE (newport-3.1.4.tar.gz) = 31415\n",
    ),
    Create(
        "net/newport/pkg/DESCR",
        "newport is the port the -stable branch gained after the release.\n",
    ),
    Create(
        "net/newport/pkg/PLIST",
        "@bin bin/newport\n@man man/man1/newport.1\n",
    ),
    RemovePort("net/torsocks"),
    Replace("net/Makefile", "SUBDIR += torsocks\n", ""),
    Replace(
        "net/Makefile",
        "SUBDIR += tor\n",
        "SUBDIR += newport\nSUBDIR += tor\n",
    ),
];

/// What a set of edits did to the files: paths relative to the tree.
#[derive(Default)]
struct Applied {
    added: Vec<String>,
    removed: Vec<String>,
}

fn apply(root: &Path, edits: &[Edit]) -> Applied {
    let mut a = Applied::default();
    for e in edits {
        match e {
            Append(p, text) => {
                let f = root.join(p);
                let mut s =
                    std::fs::read_to_string(&f).unwrap_or_else(|e| panic!("sample tree: {p}: {e}"));
                s.push_str(text);
                std::fs::write(&f, s).expect("write");
            }
            Replace(p, from, to) => {
                let f = root.join(p);
                let s =
                    std::fs::read_to_string(&f).unwrap_or_else(|e| panic!("sample tree: {p}: {e}"));
                assert_eq!(s.matches(from).count(), 1, "sample tree: {p}: {from:?}");
                std::fs::write(&f, s.replacen(from, to, 1)).expect("write");
            }
            Create(p, text) => {
                assert!(!root.join(p).exists(), "sample tree already has {p}");
                write_files(root, &[(p, text)]);
                a.added.push(p.to_string());
            }
            Rename(from, to) => {
                assert!(root.join(from).is_file(), "sample tree: no {from}");
                std::fs::rename(root.join(from), root.join(to)).expect("rename");
                a.removed.push(from.to_string());
                a.added.push(to.to_string());
            }
            RemovePort(dir) => {
                let files = files_below(&root.join(dir));
                assert!(!files.is_empty(), "sample tree: no port {dir}");
                for f in files {
                    std::fs::remove_file(root.join(dir).join(&f)).expect("rm");
                    a.removed.push(format!("{dir}/{f}"));
                }
                // What is left are CVS/ administrative directories (cvs up -P prunes
                // them on a checkout) or nothing (git does not keep empty directories).
                if !root.join(dir).join("CVS").exists() {
                    std::fs::remove_dir_all(root.join(dir)).expect("rm -r");
                }
            }
        }
    }
    a
}

/// Directories that hold build output or VCS data, never sources.
fn not_source(name: &str) -> bool {
    matches!(
        name,
        "CVS"
            | ".git"
            | "pobj"
            | "packages"
            | "distfiles"
            | "plist"
            | "logs"
            | "bulk"
            | "locks"
            | "target"
    )
}

/// The regular source files below `dir`, relative to it, sorted.
fn files_below(dir: &Path) -> Vec<String> {
    fn walk(dir: &Path, rel: &str, out: &mut Vec<String>) {
        let Ok(rd) = std::fs::read_dir(dir) else {
            return;
        };
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let path = if rel.is_empty() {
                name.clone()
            } else {
                format!("{rel}/{name}")
            };
            let ft = e.file_type().expect("file type");
            if ft.is_dir() {
                if !not_source(&name) {
                    walk(&e.path(), &path, out);
                }
            } else if ft.is_file() {
                out.push(path);
            }
        }
    }
    let mut v = Vec::new();
    walk(dir, "", &mut v);
    v.sort();
    v
}

/// A copy of the sample tree's sources (no build output) in `to`.
fn copy_sources(to: &Path) {
    let from = fixture_tree();
    let files = files_below(&from);
    assert!(
        files.iter().any(|f| f == "net/curl/Makefile"),
        "the sample tree in {} is incomplete",
        from.display()
    );
    for f in files {
        let dst = to.join(&f);
        std::fs::create_dir_all(dst.parent().expect("parent")).expect("mkdir");
        std::fs::copy(from.join(&f), &dst).expect("cp");
    }
}

/// Runs cvs and git with an environment that does not depend on the user's.
struct Vcs {
    home: PathBuf,
    repo: PathBuf,
}

impl Vcs {
    fn cmd(&self, program: &str, dir: &Path) -> Command {
        let mut c = Command::new(program);
        c.current_dir(dir)
            .env("HOME", &self.home)
            .env("TZ", "UTC")
            .env("LC_ALL", "C")
            .env("CVSROOT", &self.repo)
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_AUTHOR_NAME", "Porter")
            .env("GIT_AUTHOR_EMAIL", "porter@example.org")
            .env("GIT_COMMITTER_NAME", "Porter")
            .env("GIT_COMMITTER_EMAIL", "porter@example.org")
            .env("GIT_AUTHOR_DATE", "2025-10-22T12:00:00Z")
            .env("GIT_COMMITTER_DATE", "2025-10-22T12:00:00Z");
        for v in [
            "CVS_RSH",
            "CVS_SERVER",
            "CVSREAD",
            "CVSIGNORE",
            "CVSWRAPPERS",
            "CVSUMASK",
            "GIT_DIR",
            "GIT_WORK_TREE",
            "GIT_INDEX_FILE",
            "GIT_OBJECT_DIRECTORY",
            "GIT_CONFIG_GLOBAL",
        ] {
            c.env_remove(v);
        }
        c
    }

    /// Run and return stdout; fail the test with stderr otherwise.
    fn run(&self, program: &str, dir: &Path, args: &[&str]) -> String {
        let out = self
            .cmd(program, dir)
            .args(args)
            .output()
            .unwrap_or_else(|e| panic!("{program}: {e}"));
        assert!(
            out.status.success(),
            "{program} {args:?} in {}: {}\n{}",
            dir.display(),
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).expect("utf-8")
    }

    /// `cvs add` the new files (and their new directories), `cvs remove` the gone
    /// ones, commit.
    fn cvs_commit(&self, wc: &Path, a: &Applied, msg: &str) {
        let mut dirs = BTreeSet::new();
        for f in &a.added {
            let mut d = String::new();
            for seg in f
                .split('/')
                .collect::<Vec<_>>()
                .split_last()
                .expect("seg")
                .1
            {
                if !d.is_empty() {
                    d.push('/');
                }
                d.push_str(seg);
                if !wc.join(&d).join("CVS").exists() && dirs.insert(d.clone()) {
                    self.run("cvs", wc, &["-q", "add", &d]);
                }
            }
        }
        if !a.added.is_empty() {
            let mut args = vec!["-q", "add"];
            args.extend(a.added.iter().map(String::as_str));
            self.run("cvs", wc, &args);
        }
        if !a.removed.is_empty() {
            let mut args = vec!["-q", "remove"];
            args.extend(a.removed.iter().map(String::as_str));
            self.run("cvs", wc, &args);
        }
        self.run("cvs", wc, &["-q", "commit", "-m", msg]);
    }

    fn git_commit(&self, wt: &Path, msg: &str) {
        self.run("git", wt, &["add", "-A", "."]);
        self.run("git", wt, &["commit", "-q", "-m", msg]);
    }
}

/// The real outputs, and the trees they lead to.
struct History {
    _tmp: tempfile::TempDir,
    home: PathBuf,
    /// The -stable checkout, followed from the release to the branch.
    stable: PathBuf,
    /// The porter's checkout of the branch the commits were made in: never pruned.
    work: PathBuf,
    /// The git work tree, on the branch.
    git: PathBuf,
    cvs_up: String,
    rdiff: String,
    git_diff: String,
}

fn history() -> History {
    require("cvs", "cvs");
    require("git", "git");
    let tmp = tempfile::tempdir().expect("tempdir");
    let t = tmp.path().to_path_buf();
    let vcs = Vcs {
        home: t.clone(),
        repo: t.join("cvsroot"),
    };
    let repo = vcs.repo.to_str().expect("utf-8 path").to_string();

    // The release, imported and tagged; the branch made from the tag.
    vcs.run("cvs", &t, &["-d", &repo, "init"]);
    let import = t.join("import");
    copy_sources(&import);
    vcs.run(
        "cvs",
        &import,
        &[
            "-d",
            &repo,
            "-q",
            "import",
            "-I",
            "!",
            "-m",
            "OpenBSD 7.8",
            "ports",
            "OPENBSD",
            "OPENBSD_7_8_IMPORT",
        ],
    );
    vcs.run("cvs", &t, &["-d", &repo, "-q", "rtag", BASE, "ports"]);
    vcs.run(
        "cvs",
        &t,
        &["-d", &repo, "-q", "rtag", "-b", "-r", BASE, BRANCH, "ports"],
    );

    let git = t.join("git");
    let stable = t.join("stable");
    let work = t.join("work");
    let fork = format!(":fork:{repo}");
    // cvs sleeps about a second after each checkout, update and commit (for its
    // time stamps): git runs meanwhile.  The cvs commands run one at a time: one
    // that finds another's lock waits 30 seconds.
    let (git_diff, (cvs_up, rdiff)) = std::thread::scope(|s| {
        let git_diff = s.spawn(|| git_history(&vcs, &git));
        // A porter's checkout of the branch, and the -stable commits.
        vcs.run(
            "cvs",
            &t,
            &["-d", &repo, "-q", "co", "-r", BRANCH, "-d", "work", "ports"],
        );
        let a = apply(&work, COMMIT1);
        vcs.cvs_commit(&work, &a, "curl: security fix; vim, php: updates");
        let a = apply(&work, COMMIT2);
        vcs.cvs_commit(&work, &a, "import net/newport; remove net/torsocks");

        // The build host: checked out at the release, then following the branch.
        vcs.run(
            "cvs",
            &t,
            &["-d", &fork, "-q", "co", "-r", BASE, "-d", "stable", "ports"],
        );
        let cvs_up = vcs.run(
            "sh",
            &stable,
            &["-c", "cvs -q up -Pd -A -r OPENBSD_7_8 2>&1"],
        );
        let rdiff = vcs.run(
            "cvs",
            &t,
            &[
                "-d", &repo, "-q", "rdiff", "-s", "-r", BASE, "-r", BRANCH, "ports",
            ],
        );
        (git_diff.join().expect("git"), (cvs_up, rdiff))
    });

    History {
        home: t.clone(),
        _tmp: tmp,
        stable,
        work,
        git,
        cvs_up,
        rdiff,
        git_diff,
    }
}

/// The same history in git, in `git`: the `git diff --name-status` of the branch.
fn git_history(vcs: &Vcs, git: &Path) -> String {
    copy_sources(git);
    vcs.run("git", git, &["-c", "init.defaultBranch=main", "init", "-q"]);
    vcs.git_commit(git, "OpenBSD 7.8");
    vcs.run("git", git, &["tag", BASE]);
    vcs.run("git", git, &["checkout", "-q", "-b", BRANCH]);
    apply(git, COMMIT1);
    vcs.git_commit(git, "curl: security fix; vim, php: updates");
    apply(git, COMMIT2);
    vcs.git_commit(git, "import net/newport; remove net/torsocks");
    vcs.run(
        "git",
        git,
        &[
            "-c",
            "core.quotepath=off",
            "diff",
            "--name-status",
            BASE,
            BRANCH,
        ],
    )
}

/// The pkgpaths every form must give (`-t`).
const PORTS: &[&str] = &[
    "devel/libfoo",
    "editors/vim",
    "lang/php/8.2",
    "lang/php/8.3",
    "misc/plain",
    "net/curl",
    "net/icinga/core2",
    "net/newport",
];

const NOTICES: &str = r#"{"kind":"notice","v":1,"tool":"ports-delta","level":"warning","message":"infrastructure/mk/bsd.port.mk changed: infrastructure concerns every port; nothing rebuilt for it, rebuild by hand if needed"}
{"kind":"notice","v":1,"tool":"ports-delta","level":"info","message":"sysutils/firmware/iwm excluded by sysutils/firmware/*"}
"#;

/// `cvs rdiff -s` says what happened to each file and between which revisions.
const EXPECTED_RDIFF: &str = r#"{"kind":"port","v":1,"pkgpath":"devel/libfoo","changes":[{"path":"devel/libfoo/patches/patch-foo_c","status":"added","to":"1.1.2.1"}]}
{"kind":"port","v":1,"pkgpath":"editors/vim","changes":[{"path":"editors/vim/distinfo","status":"modified","from":"1.1.1.1","to":"1.1.1.1.2.1"}]}
{"kind":"port","v":1,"pkgpath":"lang/php/8.2","changes":[{"path":"lang/php/8.2/distinfo","status":"modified","from":"1.1.1.1","to":"1.1.1.1.2.1"},{"path":"lang/php/Makefile.inc","status":"modified","from":"1.1.1.1","to":"1.1.1.1.2.1"}],"why":"lang/php/Makefile.inc changed"}
{"kind":"port","v":1,"pkgpath":"lang/php/8.3","changes":[{"path":"lang/php/Makefile.inc","status":"modified","from":"1.1.1.1","to":"1.1.1.1.2.1"}],"why":"lang/php/Makefile.inc changed"}
{"kind":"port","v":1,"pkgpath":"misc/plain","changes":[{"path":"misc/plain/pkg/PLIST","status":"modified","from":"1.1.1.1","to":"1.1.1.1.2.1"}]}
{"kind":"port","v":1,"pkgpath":"net/curl","changes":[{"path":"net/curl/Makefile","status":"modified","from":"1.1.1.1","to":"1.1.1.1.2.2"},{"path":"net/curl/patches/patch-lib_url_c","status":"removed","from":"1.1.1.1"},{"path":"net/curl/patches/patch-lib_urlapi_c","status":"added","to":"1.1.2.1"}]}
{"kind":"port","v":1,"pkgpath":"net/icinga/core2","changes":[{"path":"net/icinga/core2/pkg/PLIST","status":"modified","from":"1.1.1.1","to":"1.1.1.1.2.1"}]}
{"kind":"port","v":1,"pkgpath":"net/newport","changes":[{"path":"net/newport/Makefile","status":"added","to":"1.1.2.1"},{"path":"net/newport/distinfo","status":"added","to":"1.1.2.1"},{"path":"net/newport/pkg/DESCR","status":"added","to":"1.1.2.1"},{"path":"net/newport/pkg/PLIST","status":"added","to":"1.1.2.1"}]}
{"kind":"removed","v":1,"pkgpath":"net/torsocks","changes":[{"path":"net/torsocks/Makefile","status":"removed","from":"1.1.1.1"},{"path":"net/torsocks/pkg/DESCR","status":"removed","from":"1.1.1.1"},{"path":"net/torsocks/pkg/PLIST","status":"removed","from":"1.1.1.1"}]}
"#;

/// `cvs up` has no revisions, and `U`/`P` say only that the file was updated: a file
/// new on the branch is "modified" too.
const EXPECTED_CVS_UP: &str = r#"{"kind":"port","v":1,"pkgpath":"devel/libfoo","changes":[{"path":"devel/libfoo/patches/patch-foo_c","status":"modified"}]}
{"kind":"port","v":1,"pkgpath":"editors/vim","changes":[{"path":"editors/vim/distinfo","status":"modified"}]}
{"kind":"port","v":1,"pkgpath":"lang/php/8.2","changes":[{"path":"lang/php/8.2/distinfo","status":"modified"},{"path":"lang/php/Makefile.inc","status":"modified"}],"why":"lang/php/Makefile.inc changed"}
{"kind":"port","v":1,"pkgpath":"lang/php/8.3","changes":[{"path":"lang/php/Makefile.inc","status":"modified"}],"why":"lang/php/Makefile.inc changed"}
{"kind":"port","v":1,"pkgpath":"misc/plain","changes":[{"path":"misc/plain/pkg/PLIST","status":"modified"}]}
{"kind":"port","v":1,"pkgpath":"net/curl","changes":[{"path":"net/curl/Makefile","status":"modified"},{"path":"net/curl/patches/patch-lib_url_c","status":"removed"},{"path":"net/curl/patches/patch-lib_urlapi_c","status":"modified"}]}
{"kind":"port","v":1,"pkgpath":"net/icinga/core2","changes":[{"path":"net/icinga/core2/pkg/PLIST","status":"modified"}]}
{"kind":"port","v":1,"pkgpath":"net/newport","changes":[{"path":"net/newport/Makefile","status":"modified"},{"path":"net/newport/distinfo","status":"modified"},{"path":"net/newport/pkg/DESCR","status":"modified"},{"path":"net/newport/pkg/PLIST","status":"modified"}]}
{"kind":"removed","v":1,"pkgpath":"net/torsocks","changes":[{"path":"net/torsocks/Makefile","status":"removed"},{"path":"net/torsocks/pkg/DESCR","status":"removed"},{"path":"net/torsocks/pkg/PLIST","status":"removed"}]}
"#;

/// git knows added from modified, but has no revisions; a rename is a removed and
/// an added file.
const EXPECTED_GIT: &str = r#"{"kind":"port","v":1,"pkgpath":"devel/libfoo","changes":[{"path":"devel/libfoo/patches/patch-foo_c","status":"added"}]}
{"kind":"port","v":1,"pkgpath":"editors/vim","changes":[{"path":"editors/vim/distinfo","status":"modified"}]}
{"kind":"port","v":1,"pkgpath":"lang/php/8.2","changes":[{"path":"lang/php/8.2/distinfo","status":"modified"},{"path":"lang/php/Makefile.inc","status":"modified"}],"why":"lang/php/Makefile.inc changed"}
{"kind":"port","v":1,"pkgpath":"lang/php/8.3","changes":[{"path":"lang/php/Makefile.inc","status":"modified"}],"why":"lang/php/Makefile.inc changed"}
{"kind":"port","v":1,"pkgpath":"misc/plain","changes":[{"path":"misc/plain/pkg/PLIST","status":"modified"}]}
{"kind":"port","v":1,"pkgpath":"net/curl","changes":[{"path":"net/curl/Makefile","status":"modified"},{"path":"net/curl/patches/patch-lib_url_c","status":"removed"},{"path":"net/curl/patches/patch-lib_urlapi_c","status":"added"}]}
{"kind":"port","v":1,"pkgpath":"net/icinga/core2","changes":[{"path":"net/icinga/core2/pkg/PLIST","status":"modified"}]}
{"kind":"port","v":1,"pkgpath":"net/newport","changes":[{"path":"net/newport/Makefile","status":"added"},{"path":"net/newport/distinfo","status":"added"},{"path":"net/newport/pkg/DESCR","status":"added"},{"path":"net/newport/pkg/PLIST","status":"added"}]}
{"kind":"removed","v":1,"pkgpath":"net/torsocks","changes":[{"path":"net/torsocks/Makefile","status":"removed"},{"path":"net/torsocks/pkg/DESCR","status":"removed"},{"path":"net/torsocks/pkg/PLIST","status":"removed"}]}
"#;

/// Run ports-delta on `tree` with the exclusion, `input` on stdin.
fn delta(h: &History, tree: &Path, args: &[&str], input: &str) -> Out {
    let mut a = vec!["--exclude", EXCLUDE];
    a.extend_from_slice(args);
    run(
        "ports-delta",
        &a,
        input,
        &[
            ("PORTSDIR", tree.to_str().expect("utf-8 path")),
            ("HOME", h.home.to_str().expect("utf-8 path")),
            ("TZ", "UTC"),
            ("GIT_CONFIG_NOSYSTEM", "1"),
        ],
    )
}

fn check(h: &History, what: &str, tree: &Path, args: &[&str], input: &str, expected: &str) {
    let out = delta(h, tree, args, input);
    assert_eq!(
        (out.code, out.stderr.as_str()),
        (0, ""),
        "{what}: {}",
        out.stdout
    );
    assert_eq!(out.stdout, format!("{expected}{NOTICES}"), "{what}");

    let mut t = vec!["-t"];
    t.extend_from_slice(args);
    let out = delta(h, tree, &t, input);
    assert_eq!(out.code, 0, "{what} -t: {}", out.stderr);
    assert_eq!(out.lines(), PORTS, "{what} -t");
    // The infrastructure warning still reaches the person running it; the
    // exclusion (info) does not.
    assert_eq!(
        out.stderr,
        "ports-delta: warning: infrastructure/mk/bsd.port.mk changed: infrastructure concerns \
         every port; nothing rebuilt for it, rebuild by hand if needed\n",
        "{what} -t"
    );
}

#[test]
fn real_cvs_and_git_output() {
    let h = history();

    // The forms the parser knows, so a change of format in cvs or git is noticed.
    let up: BTreeSet<&str> = h.cvs_up.lines().collect();
    for line in [
        "P net/curl/Makefile",
        "U net/curl/patches/patch-lib_urlapi_c",
        "U devel/libfoo/patches/patch-foo_c",
        "U net/newport/Makefile",
        "P infrastructure/mk/bsd.port.mk",
        "cvs update: `net/curl/patches/patch-lib_url_c' is no longer in the repository",
        "cvs update: `net/torsocks/Makefile' is no longer in the repository",
        "cvs update: `net/torsocks/pkg/PLIST' is no longer in the repository",
    ] {
        assert!(up.contains(line), "cvs up: no {line:?} in\n{}", h.cvs_up);
    }
    for line in &up {
        assert!(
            line.starts_with("U ") || line.starts_with("P ") || line.starts_with("cvs update: `"),
            "cvs up: unexpected line {line:?} in\n{}",
            h.cvs_up
        );
    }
    assert!(
        !h.stable.join("net/torsocks").exists(),
        "cvs up -P left net/torsocks"
    );
    assert!(h.stable.join("net/newport/Makefile").is_file());

    let rdiff: Vec<&str> = h.rdiff.lines().collect();
    for line in [
        "File ports/net/curl/Makefile changed from revision 1.1.1.1 to 1.1.1.1.2.2",
        "File ports/net/curl/patches/patch-lib_url_c is removed; OPENBSD_7_8_BASE revision 1.1.1.1",
        "File ports/net/curl/patches/patch-lib_urlapi_c is new; OPENBSD_7_8 revision 1.1.2.1",
        "File ports/net/Makefile changed from revision 1.1.1.1 to 1.1.1.1.2.1",
    ] {
        assert!(rdiff.contains(&line), "rdiff: no {line:?} in\n{}", h.rdiff);
    }
    assert!(
        rdiff.iter().all(|l| l.starts_with("File ports/")),
        "rdiff:\n{}",
        h.rdiff
    );

    let git: Vec<&str> = h.git_diff.lines().collect();
    for line in [
        "R100\tnet/curl/patches/patch-lib_url_c\tnet/curl/patches/patch-lib_urlapi_c",
        "M\tnet/curl/Makefile",
        "A\tdevel/libfoo/patches/patch-foo_c",
        "M\tnet/Makefile",
    ] {
        assert!(
            git.contains(&line),
            "git diff: no {line:?} in\n{}",
            h.git_diff
        );
    }

    check(&h, "cvs rdiff", &h.stable, &[], &h.rdiff, EXPECTED_RDIFF);
    check(
        &h,
        "--cvs",
        &h.stable,
        &["--cvs", "OPENBSD_7_8_BASE:OPENBSD_7_8"],
        "",
        EXPECTED_RDIFF,
    );
    check(&h, "cvs up", &h.stable, &[], &h.cvs_up, EXPECTED_CVS_UP);
    check(&h, "git diff", &h.git, &[], &h.git_diff, EXPECTED_GIT);
    check(
        &h,
        "--git",
        &h.git,
        &["--git", "OPENBSD_7_8_BASE..OPENBSD_7_8"],
        "",
        EXPECTED_GIT,
    );

    removed_port_in_unpruned_checkout(&h);
    changes_and_revisions(&h);

    if std::env::var_os("PORTFLOW_SHOW_VCS").is_some() {
        eprintln!(
            "--- cvs up\n{}--- cvs rdiff\n{}--- git diff\n{}",
            h.cvs_up, h.rdiff, h.git_diff
        );
    }
}

/// A checkout not pruned (`cvs up` or `cvs co` without `-P`, or the porter's own
/// checkout the commits were made in) keeps the directory of a removed port, with
/// nothing but CVS/ directories in it.  The port is still removed, not dropped.
fn removed_port_in_unpruned_checkout(h: &History) {
    let tree = &h.work;
    assert!(tree.join("net/torsocks/pkg/CVS").is_dir());
    assert!(!tree.join("net/torsocks/Makefile").exists());
    check(
        h,
        "cvs rdiff, unpruned",
        tree,
        &[],
        &h.rdiff,
        EXPECTED_RDIFF,
    );
    check(h, "cvs up, unpruned", tree, &[], &h.cvs_up, EXPECTED_CVS_UP);
    check(
        h,
        "--cvs, unpruned",
        tree,
        &["--cvs", "OPENBSD_7_8_BASE:OPENBSD_7_8"],
        "",
        EXPECTED_RDIFF,
    );
}

/// The mail's changes from the real `cvs up` output: its changes of files,
/// not its `?` lines nor its other messages; `build-coordinator check` finds the real tags of the CVS
/// checkout and the revisions of the git tree, and names one that is not.
fn changes_and_revisions(h: &History) {
    // (Here every line is a change: a file updated, patched, or gone from
    // the branch.)
    let real = portflow::ports_delta::real_changes(&h.cvs_up);
    assert_eq!(real, h.cvs_up);
    let with_noise = format!("? net/curl/w-curl\ncvs update: Updating net\n{}", h.cvs_up);
    assert_eq!(portflow::ports_delta::real_changes(&with_noise), h.cvs_up);
    let t = tempfile::tempdir().expect("tempdir");
    for (tree, delta, sep) in [(&h.stable, "cvs", ":"), (&h.git, "git", "..")] {
        let config = t.path().join(format!("{delta}.conf"));
        std::fs::write(
            &config,
            format!(
                "ports_dir = \"{}\"\nwork_dir = \"{}\"\n[delta]\n{delta} = \"{BASE}{sep}NO_SUCH_TAG\"\n\
                 [mail]\nprint = true\n[[target]]\nname = \"amd64\"\narch = \"amd64\"\nspool = \"{}\"\n",
                tree.display(),
                t.path().join("work").display(),
                t.path().join("spool").display()
            ),
        )
        .expect("config");
        let mut c = Command::new(crate::support::bin("build-coordinator"));
        c.args(["check", "--config"])
            .arg(&config)
            .env("HOME", &h.home)
            .env("TZ", "UTC");
        let out = c.output().expect("build-coordinator");
        let text = String::from_utf8_lossy(&out.stdout);
        assert_eq!(out.status.code(), Some(1), "{text}");
        let (ok_base, bad) = if delta == "cvs" {
            (
                format!("ok      delta {BASE}: a cvs tag of {}", tree.display()),
                format!(
                    "FAILED  delta NO_SUCH_TAG: no such cvs tag on {}/Makefile",
                    tree.display()
                ),
            )
        } else {
            (
                format!("ok      delta {BASE}: git commit "),
                format!(
                    "FAILED  delta NO_SUCH_TAG: no such git revision in {}",
                    tree.display()
                ),
            )
        };
        assert!(
            text.lines().any(|l| l.starts_with(&ok_base)),
            "{delta}: {text}"
        );
        assert!(text.lines().any(|l| l == bad), "{delta}: {text}");
    }
}
