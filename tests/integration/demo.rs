//! The README's first command, `pipelines/demo`, run from a clean checkout of
//! the repository, with the binaries the suite was built with: it must end
//! with the mail.

use std::process::Command;

use crate::support::*;

#[test]
fn the_readme_demo_ends_with_the_mail() {
    require("git", "git");
    require("bmake", "bmake");
    require("rsync", "rsync");
    let t = tempfile::tempdir().expect("tempdir");
    // A clean checkout of what is committed.
    let checkout = clean_checkout(t.path());
    // The README says exactly this command.
    let readme = std::fs::read_to_string(checkout.join("README.md")).expect("README");
    let first = readme
        .lines()
        .find(|l| l.starts_with("pipelines/demo"))
        .expect("the README names pipelines/demo");
    assert!(
        readme.find(first) < readme.find("bash .ci/run"),
        "the demo is the README's first command"
    );
    let demo = t.path().join("demo");
    // The binaries this test suite was built with (cargo test --workspace
    // builds the examples too); the demo's own `cargo build` is run by .ci/run.
    let bindir = bin("build-coordinator")
        .parent()
        .expect("the binaries' directory")
        .to_path_buf();
    assert!(
        bindir.join("examples/make-sqlports").is_file(),
        "{}/examples/make-sqlports is not built: run cargo test --workspace \
         (or cargo build --example make-sqlports)",
        bindir.display()
    );
    let mut cmd = Command::new(checkout.join("pipelines/demo"));
    cmd.arg(&demo)
        .current_dir(&checkout)
        .env("PORTFLOW_BINDIR", &bindir);
    let out = run_cmd(cmd, "", &[]);
    assert_eq!(out.code, 0, "demo failed:\n{}\n{}", out.stdout, out.stderr);
    let mail = &out.stdout;
    assert!(mail.contains("Subject: stable packages to sign"), "{mail}");
    for arch in ["amd64", "i386"] {
        // The -stable fix bumped curl's REVISION: a new package name.
        for f in [
            "curl-8.9.1p0.tgz",
            "debug-curl-8.9.1p0.tgz",
            "plain-1.0.tgz",
        ] {
            assert!(
                mail.contains(&format!("{arch}\t{f}\n")),
                "{arch} {f}:\n{mail}"
            );
            assert!(
                demo.join("signing").join(arch).join(f).is_file(),
                "{arch}/{f}"
            );
        }
    }
    assert!(mail.contains("Changes triggering the build:"), "{mail}");
    // It ends with the mail and says where everything is.
    assert!(mail.contains("the mail (printed above):"), "{mail}");
    assert!(mail.trim_end().ends_with("mail.txt"), "{mail}");
}
