//! `make install` from a clean checkout (GNU make and BSD make): the programs,
//! the manual, the default chain and the examples where the README and the
//! pages say; the example configuration of portflow.conf(5) is the installed
//! one and is a good configuration as written; `make uninstall` takes it all.

use std::path::Path;
use std::process::Command;

use crate::support::*;

const PROGRAMS: [&str; 9] = [
    "ports-delta",
    "pkgpath-expand",
    "clean-env",
    "build-list",
    "collect-built",
    "rsync-list",
    "summary-mail",
    "build-trigger",
    "build-coordinator",
];

/// The files under `dir`, relative, sorted.
fn files(dir: &Path) -> Vec<String> {
    let mut v = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                v.push(p.strip_prefix(dir).unwrap().display().to_string());
            }
        }
    }
    v.sort();
    v
}

#[test]
fn make_install_and_uninstall_from_a_clean_checkout() {
    require("git", "git");
    require("make", "make");
    require("bmake", "bmake");
    let t = tempfile::tempdir().expect("tempdir");
    let checkout = clean_checkout(t.path());
    // The binaries this suite was built with: install-files runs no cargo.
    let built = bin("build-coordinator");
    let profile_dir = built.parent().expect("profile dir");
    let target_dir = profile_dir.parent().expect("target dir");
    let profile = profile_dir.file_name().unwrap().to_str().unwrap();
    for make in ["make", "bmake"] {
        let prefix = t.path().join(format!("prefix-{make}"));
        let out = Command::new(make)
            .arg("install-files")
            .arg(format!("PREFIX={}", prefix.display()))
            .arg(format!("TARGET_DIR={}", target_dir.display()))
            .arg(format!("PROFILE={profile}"))
            .current_dir(&checkout)
            .output()
            .expect("make");
        assert!(
            out.status.success(),
            "{make} install-files: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let mut want: Vec<String> = PROGRAMS.iter().map(|p| format!("bin/{p}")).collect();
        want.extend(PROGRAMS.iter().map(|p| format!("man/man1/{p}.1")));
        want.extend(
            [
                "man/man5/portflow-records.5",
                "man/man5/portflow.conf.5",
                "man/man7/portflow.7",
                "share/portflow/chain",
                "share/examples/portflow/portflow.conf",
                "share/examples/portflow/build_trigger",
            ]
            .map(String::from),
        );
        want.sort();
        assert_eq!(files(&prefix), want, "{make}");
        for p in PROGRAMS {
            let v = Command::new(prefix.join("bin").join(p))
                .arg("--version")
                .output()
                .expect("installed program");
            assert!(v.status.success(), "{p}");
        }
        assert_eq!(
            std::fs::read(prefix.join("share/portflow/chain")).unwrap(),
            std::fs::read(checkout.join("pipelines/chain")).unwrap()
        );
        // The example of portflow.conf(5), as written there, is the file
        // installed, and a good configuration.
        let page = std::fs::read_to_string(prefix.join("man/man5/portflow.conf.5")).unwrap();
        let start = page
            .find("# build-coordinator run --loop, from cron")
            .expect("the example in the page");
        let example = &page[start..start + page[start..].find("\n.Ed").unwrap() + 1];
        let conf = prefix.join("share/examples/portflow/portflow.conf");
        let installed = std::fs::read_to_string(&conf).unwrap();
        assert!(installed.ends_with(example), "{installed}");
        let check = Command::new(prefix.join("bin/build-coordinator"))
            .args(["check", "--file", "--config"])
            .arg(&conf)
            .output()
            .expect("build-coordinator check");
        assert!(
            check.status.success(),
            "{}",
            String::from_utf8_lossy(&check.stderr)
        );
        let out = Command::new(make)
            .arg("uninstall")
            .arg(format!("PREFIX={}", prefix.display()))
            .current_dir(&checkout)
            .output()
            .expect("make uninstall");
        assert!(out.status.success(), "{make} uninstall");
        assert_eq!(files(&prefix), Vec::<String>::new(), "{make} uninstall");
    }
}
