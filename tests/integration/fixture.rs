//! The sample ports tree: a sqlports database built from its `dump-vars`, and the
//! ports-tree runner driving real bmake over it.

use std::path::{Path, PathBuf};
use std::process::Command;

use portflow::ports::{split_headers, PortDirs, PortsTree};

use crate::support::*;

/// MAKESYSPATH for bmake over the sample tree.
pub fn makesyspath() -> PathBuf {
    fixture_tree().join("infrastructure/mk")
}

/// `bmake dump-vars` over the whole sample tree.
pub fn dump_vars(tree: &Path) -> String {
    require("bmake", "bmake");
    let out = Command::new("bmake")
        .arg("dump-vars")
        .current_dir(tree)
        .env("MAKESYSPATH", tree.join("infrastructure/mk"))
        .output()
        .expect("run bmake");
    assert!(
        out.status.success(),
        "bmake dump-vars: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8")
}

/// A sqlports database of the sample tree, in `dir`.
pub fn sample_db(dir: &Path) -> PathBuf {
    let db = dir.join("sqlports");
    sqlports::build(&db, &dump_vars(&fixture_tree())).expect("build sqlports");
    db
}

use crate::pkgpath_expand::direct;

#[test]
fn sqlports_of_the_sample_tree() {
    let t = tempfile::tempdir().unwrap();
    let db = sample_db(t.path());
    let ports = PortDirs::new(fixture_tree()).ports_below("");
    assert!(ports.len() >= 20, "{ports:?}");
    assert!(!ports.iter().any(|p| p.starts_with("infrastructure")));
    // Every port of the tree expands exactly as the reference query says.
    let input: String = ports.iter().map(|p| format!("{p}\n")).collect();
    let out = run(
        "pkgpath-expand",
        &["-t", "--db", db.to_str().unwrap()],
        &input,
        &[],
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    let mut expected: Vec<String> = ports.iter().flat_map(|p| direct(&db, p)).collect();
    expected.sort();
    expected.dedup();
    assert_eq!(out.lines(), expected);
    // The shapes the sample tree is there to show.
    let one = |p: &str| {
        let o = run(
            "pkgpath-expand",
            &["-t", "--db", db.to_str().unwrap()],
            &format!("{p}\n"),
            &[],
        );
        o.stdout.lines().map(str::to_string).collect::<Vec<_>>()
    };
    assert_eq!(
        one("editors/vim"),
        [
            "editors/vim",
            "editors/vim,-lang",
            "editors/vim,gtk2",
            "editors/vim,gtk2,-lang",
            "editors/vim,gtk3",
            "editors/vim,gtk3,-lang",
            "editors/vim,no_x11"
        ]
    );
    assert_eq!(one("net/tor"), ["net/tor"]);
    assert_eq!(one("devel/sdl_image"), ["devel/sdl_image"]);
    assert_eq!(one("editors/vim,-main"), ["editors/vim"]);
}

#[test]
fn runner_show_pkgnames_over_a_subdirlist() {
    require("bmake", "bmake");
    let tree = PortsTree::new(fixture_tree(), "bmake").env("MAKESYSPATH", makesyspath());
    let out = tree
        .show(
            "PKGNAMES",
            &["net/curl", "editors/vim,gtk2", "editors/vim,no_x11,-main"],
        )
        .expect("show=PKGNAMES");
    assert!(out.problems.is_empty(), "{:?}", out.problems);
    let v = split_headers(&out.output);
    let names: Vec<(&str, Vec<&str>)> = v
        .iter()
        .map(|(e, l)| (*e, l.iter().flat_map(|x| x.split_whitespace()).collect()))
        .collect();
    assert_eq!(
        names,
        [
            ("net/curl", vec!["curl-8.9.1", "debug-curl-8.9.1"]),
            (
                "editors/vim,gtk2",
                vec!["vim-9.1.0-gtk2", "vim-lang-9.1.0", "debug-vim-9.1.0-gtk2"]
            ),
            (
                "editors/vim,no_x11,-main",
                // A pseudo-flavor is not in the package name: the same files
                // as the default flavor.
                vec!["vim-9.1.0", "debug-vim-9.1.0"]
            ),
        ]
    );
    // A make that is not there is a clear error, not a panic.
    let missing = PortsTree::new(fixture_tree(), "/nonexistent/make");
    let e = missing.show("PKGNAMES", &["net/curl"]).unwrap_err();
    assert!(e.to_string().contains("not found"), "{e}");
}

/// A copy of the sample tree with its mirror beside it (`<dir>/ports`,
/// `<dir>/mirror`), for tests that build: packages go to `<dir>/packages`, work
/// directories stay inside the copy.  Everything is removed when it is dropped.
pub struct SampleCopy {
    pub dir: tempfile::TempDir,
    /// The ports tree (PORTSDIR).
    pub tree: PathBuf,
    /// PACKAGE_REPOSITORY.
    pub repository: PathBuf,
    tree_s: String,
    repository_s: String,
    pub makesyspath_s: String,
}

impl SampleCopy {
    /// The MACHINE_ARCH the copy builds for.
    pub const ARCH: &'static str = "amd64";

    pub fn new() -> Self {
        require("bmake", "bmake");
        let dir = tempfile::tempdir().expect("tempdir");
        let tree = dir.path().join("ports");
        copy_tree(&fixture_tree(), &tree);
        copy_tree(
            &root().join("tests/fixtures/mirror"),
            &dir.path().join("mirror"),
        );
        // Leftovers of builds run inside the fixture itself.
        for d in ["pobj", "distfiles", "packages", "plist"] {
            let _ = std::fs::remove_dir_all(tree.join(d));
        }
        let repository = dir.path().join("packages");
        let s = |p: &Path| p.to_str().expect("utf-8 temp path").to_string();
        SampleCopy {
            tree_s: s(&tree),
            repository_s: s(&repository),
            makesyspath_s: s(&tree.join("infrastructure/mk")),
            dir,
            tree,
            repository,
        }
    }

    /// The environment the build-host tools need over the copy: PORTSDIR,
    /// MAKE=bmake, MAKESYSPATH, MACHINE_ARCH and PACKAGE_REPOSITORY.
    pub fn env(&self) -> Vec<(&str, &str)> {
        vec![
            ("PORTSDIR", self.tree_s.as_str()),
            ("MAKE", "bmake"),
            ("MAKESYSPATH", self.makesyspath_s.as_str()),
            ("MACHINE_ARCH", Self::ARCH),
            ("PACKAGE_REPOSITORY", self.repository_s.as_str()),
        ]
    }

    /// `${PACKAGE_REPOSITORY}/${MACHINE_ARCH}/<sub>` (`all`, `ftp`).
    pub fn packages(&self, sub: &str) -> PathBuf {
        self.repository.join(Self::ARCH).join(sub)
    }

    /// The file names in `packages(sub)`, sorted; none when it does not exist.
    pub fn files(&self, sub: &str) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(self.packages(sub))
            .into_iter()
            .flatten()
            .map(|e| {
                e.expect("read_dir")
                    .file_name()
                    .to_string_lossy()
                    .into_owned()
            })
            .collect();
        v.sort();
        v
    }

    /// Build `list` as DESIGN.md section 4 says, with bmake run directly:
    /// `env SUBDIRLIST=... REPORT_PROBLEM_LOGFILE=... bmake package BULK=yes`.
    /// Returns the entries that failed (from the problem log), in order.
    pub fn build(&self, list: &[&str]) -> Vec<String> {
        let subdirlist = self.dir.path().join("build.list");
        let problems = self.dir.path().join("build.problems");
        let _ = std::fs::remove_file(&problems);
        let text: String = list.iter().map(|e| format!("{e}\n")).collect();
        std::fs::write(&subdirlist, text).expect("write SUBDIRLIST");
        let arg = |k: &str, p: &Path| format!("{k}={}", p.display());
        let out = Command::new("bmake")
            .current_dir(&self.tree)
            .env("MAKESYSPATH", &self.makesyspath_s)
            .env("SUBDIRLIST", &subdirlist)
            .env("REPORT_PROBLEM_LOGFILE", &problems)
            .args(["package", "BULK=yes"])
            .arg(format!("MACHINE_ARCH={}", Self::ARCH))
            .arg(arg("PACKAGE_REPOSITORY", &self.repository))
            .output()
            .expect("run bmake");
        assert!(
            out.status.success(),
            "bmake package: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        std::fs::read_to_string(&problems)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.strip_suffix(" (package)").map(str::to_string))
            .collect()
    }
}

impl Default for SampleCopy {
    fn default() -> Self {
        Self::new()
    }
}
