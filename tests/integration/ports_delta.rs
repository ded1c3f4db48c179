//! ports-delta on a small tree made by the test (the VCS tests use the sample tree).

use crate::support::*;

/// A checkout: groups, nested groups, a Makefile.inc, ports, infrastructure.
fn tree() -> tempfile::TempDir {
    let t = tempfile::tempdir().expect("tempdir");
    write_files(
        t.path(),
        &[
            ("Makefile", GROUP_MK),
            ("infrastructure/mk/bsd.port.mk", "# mk\n"),
            ("net/Makefile", GROUP_MK),
            ("net/curl/Makefile", PORT_MK),
            ("net/curl/distinfo", ""),
            ("net/curl/patches/patch-a", ""),
            ("net/tor/Makefile", PORT_MK),
            ("net/torsocks/Makefile", PORT_MK),
            ("net/newport/Makefile", PORT_MK),
            ("net/icinga/Makefile", GROUP_MK),
            ("net/icinga/core2/Makefile", PORT_MK),
            ("net/icinga/core2/pkg/PLIST", ""),
            ("lang/Makefile", GROUP_MK),
            ("lang/php/Makefile", GROUP_MK),
            ("lang/php/Makefile.inc", "V=8\n"),
            ("lang/php/8.2/Makefile", PORT_MK),
            ("lang/php/8.3/Makefile", PORT_MK),
            ("lang/php/8.3/files/x", ""),
            ("sysutils/Makefile", GROUP_MK),
            ("sysutils/firmware/Makefile", GROUP_MK),
            ("sysutils/firmware/iwm/Makefile", PORT_MK),
        ],
    );
    t
}

const RDIFF: &str = "\
File ports/net/curl/Makefile changed from revision 1.80 to 1.80.2.1
File ports/net/curl/patches/patch-b is new; OPENBSD_7_8 revision 1.1.2.1
File ports/lang/php/Makefile.inc changed from revision 1.5 to 1.5.2.1
File ports/lang/php/8.2/distinfo changed from revision 1.3 to 1.3.2.1
File ports/net/Makefile changed from revision 1.9 to 1.9.2.1
File ports/infrastructure/mk/bsd.port.mk changed from revision 1.1 to 1.1.2.1
File ports/sysutils/firmware/iwm/distinfo changed from revision 1.2 to 1.2.2.1
File ports/net/oldport/Makefile is removed; OPENBSD_7_8_BASE revision 1.2
File ports/net/oldport/pkg/PLIST is removed; OPENBSD_7_8_BASE revision 1.1
File ports/net/newport/Makefile is new; OPENBSD_7_8 revision 1.1.2.1
File ports/net/icinga/core2/pkg/PLIST changed from revision 1.4 to 1.4.2.1
";

const EXPECTED: &str = r#"{"kind":"port","v":1,"pkgpath":"lang/php/8.2","changes":[{"path":"lang/php/8.2/distinfo","status":"modified","from":"1.3","to":"1.3.2.1"},{"path":"lang/php/Makefile.inc","status":"modified","from":"1.5","to":"1.5.2.1"}],"why":"lang/php/Makefile.inc changed"}
{"kind":"port","v":1,"pkgpath":"lang/php/8.3","changes":[{"path":"lang/php/Makefile.inc","status":"modified","from":"1.5","to":"1.5.2.1"}],"why":"lang/php/Makefile.inc changed"}
{"kind":"port","v":1,"pkgpath":"net/curl","changes":[{"path":"net/curl/Makefile","status":"modified","from":"1.80","to":"1.80.2.1"},{"path":"net/curl/patches/patch-b","status":"added","to":"1.1.2.1"}]}
{"kind":"port","v":1,"pkgpath":"net/icinga/core2","changes":[{"path":"net/icinga/core2/pkg/PLIST","status":"modified","from":"1.4","to":"1.4.2.1"}]}
{"kind":"port","v":1,"pkgpath":"net/newport","changes":[{"path":"net/newport/Makefile","status":"added","to":"1.1.2.1"}]}
{"kind":"removed","v":1,"pkgpath":"net/oldport","changes":[{"path":"net/oldport/Makefile","status":"removed","from":"1.2"},{"path":"net/oldport/pkg/PLIST","status":"removed","from":"1.1"}]}
{"kind":"notice","v":1,"tool":"ports-delta","level":"warning","message":"infrastructure/mk/bsd.port.mk changed: infrastructure concerns every port; nothing rebuilt for it, rebuild by hand if needed"}
{"kind":"notice","v":1,"tool":"ports-delta","level":"info","message":"sysutils/firmware/iwm excluded by sysutils/firmware/*"}
"#;

#[test]
fn rdiff_with_tree_exact() {
    let t = tree();
    let out = run(
        "ports-delta",
        &["--exclude", "sysutils/firmware/*"],
        RDIFF,
        &[("PORTSDIR", t.path().to_str().unwrap())],
    );
    assert_eq!(out.stderr, "");
    assert_eq!(out.code, 0);
    assert_eq!(out.stdout, EXPECTED);
}

#[test]
fn text_output_and_ports_dir_flag() {
    let t = tree();
    let out = run(
        "ports-delta",
        &[
            "-t",
            "--ports-dir",
            t.path().to_str().unwrap(),
            "--exclude",
            "sysutils/firmware/*",
        ],
        RDIFF,
        &[],
    );
    assert_eq!(out.code, 0);
    assert_eq!(
        out.lines(),
        [
            "lang/php/8.2",
            "lang/php/8.3",
            "net/curl",
            "net/icinga/core2",
            "net/newport"
        ]
    );
    // Warnings still reach a person; info notices (exclusions) do not.
    assert!(out
        .stderr
        .contains("warning: infrastructure/mk/bsd.port.mk changed"));
    assert!(!out.stderr.contains("excluded"));
}

#[test]
fn without_tree_path_rules_and_notice() {
    let out = run("ports-delta", &["-t"], RDIFF, &[]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    // Path rules: no sibling expansion, the removed port is found by its Makefile.
    assert_eq!(
        out.lines(),
        [
            "lang/php/8.2",
            "net/curl",
            "net/icinga/core2",
            "net/newport",
            "sysutils/firmware/iwm"
        ]
    );
    assert!(
        out.stderr.contains("lang/php/Makefile.inc changed: the ports that include it could not be listed without a ports tree"),
        "{}",
        out.stderr
    );
    let rec = run("ports-delta", &[] as &[&str], RDIFF, &[]);
    let removed: Vec<_> = rec
        .records()
        .into_iter()
        .filter(|r| r["kind"] == "removed")
        .collect();
    assert_eq!(removed.len(), 1);
    assert_eq!(removed[0]["pkgpath"], "net/oldport");
}

#[test]
fn makefile_inc_with_child_also_changed_still_lists_siblings() {
    let t = tree();
    let input = "lang/php/8.3/files/x\nlang/php/Makefile.inc\n";
    let out = run(
        "ports-delta",
        &["-t"],
        input,
        &[("PORTSDIR", t.path().to_str().unwrap())],
    );
    assert_eq!(out.lines(), ["lang/php/8.2", "lang/php/8.3"]);
}

#[test]
fn records_pass_through_first_in_order() {
    let t = tree();
    let input = "{\"kind\":\"batch\",\"v\":1,\"id\":\"b1\",\"x\":{\"y\":1}}\nU net/tor/Makefile\n{\"kind\":\"mystery\",\"v\":1}\n";
    let out = run(
        "ports-delta",
        &[] as &[&str],
        input,
        &[("PORTSDIR", t.path().to_str().unwrap())],
    );
    assert_eq!(out.code, 0);
    let lines = out.lines();
    assert_eq!(
        lines[0],
        "{\"kind\":\"batch\",\"v\":1,\"id\":\"b1\",\"x\":{\"y\":1}}"
    );
    assert_eq!(lines[1], "{\"kind\":\"mystery\",\"v\":1}");
    assert!(lines[2].contains("\"pkgpath\":\"net/tor\""));
    assert_eq!(lines.len(), 3);
}

#[test]
fn nothing_changed_is_exit_3() {
    let t = tree();
    let env = [("PORTSDIR", t.path().to_str().unwrap())];
    let out = run("ports-delta", &["-t"], "", &env);
    assert_eq!(
        (out.code, out.stdout.as_str(), out.stderr.as_str()),
        (3, "", "")
    );
    // A category Makefile alone changes no port.
    let out = run("ports-delta", &["-t"], "U net/Makefile\n", &env);
    assert_eq!((out.code, out.stdout.as_str()), (3, ""));
}

#[test]
fn stale_checkout_is_said() {
    let t = tree();
    // Added on the branch, but the checkout does not have it.
    let out = run(
        "ports-delta",
        &[] as &[&str],
        "A\tnet/ghost/Makefile\n",
        &[("PORTSDIR", t.path().to_str().unwrap())],
    );
    assert_eq!(out.code, 0);
    let r = out.records();
    assert_eq!(r[0]["kind"], "port");
    assert_eq!(r[0]["pkgpath"], "net/ghost");
    assert_eq!(r[1]["kind"], "notice");
    assert!(r[1]["message"]
        .as_str()
        .unwrap()
        .contains("is the checkout up to date?"));
}

#[test]
fn usage_errors_exit_2() {
    let out = run(
        "ports-delta",
        &["--ports-dir", "/nonexistent/ports"],
        "",
        &[],
    );
    assert_eq!(out.code, 2);
    assert!(out
        .stderr
        .starts_with("ports-delta: /nonexistent/ports: ports tree not found"));
    let out = run("ports-delta", &["--cvs", "A:B"], "", &[]);
    assert_eq!(out.code, 2);
    assert!(
        out.stderr.contains("--cvs and --git need the checkout"),
        "{}",
        out.stderr
    );
    let t = tree();
    let out = run(
        "ports-delta",
        &["--git", "-x..y", "--ports-dir", t.path().to_str().unwrap()],
        "",
        &[],
    );
    assert_eq!(out.code, 2);
    let out = run("ports-delta", &["--bogus"], "", &[]);
    assert_eq!(out.code, 2);
}

#[test]
fn removed_port_with_leftover_directory() {
    // `cvs up` without -P leaves the removed port's empty directory behind.
    let t = tree();
    std::fs::create_dir_all(t.path().join("net/oldport/pkg")).unwrap();
    let out = run(
        "ports-delta",
        &[] as &[&str],
        "cvs update: `net/oldport/Makefile' is no longer in the repository\n\
         cvs update: `net/oldport/pkg/PLIST' is no longer in the repository\n",
        &[("PORTSDIR", t.path().to_str().unwrap())],
    );
    assert_eq!(out.code, 3, "{}", out.stderr);
    assert_eq!(
        out.stdout,
        "{\"kind\":\"removed\",\"v\":1,\"pkgpath\":\"net/oldport\",\"changes\":[{\"path\":\"net/oldport/Makefile\",\"status\":\"removed\"},{\"path\":\"net/oldport/pkg/PLIST\",\"status\":\"removed\"}]}\n"
    );
}

#[test]
fn a_directory_that_is_no_pkgpath_is_an_error() {
    let out = run(
        "ports-delta",
        &[] as &[&str],
        "net/cu;rl/Makefile\nnet/tor/Makefile\n",
        &[],
    );
    assert_eq!(out.code, 1);
    assert_eq!(
        out.stderr,
        "ports-delta: invalid pkgpath \"net/cu;rl\": character ';' not allowed: not listed\n"
    );
    let r = out.records();
    assert_eq!(r[0]["pkgpath"], "net/tor");
    assert_eq!(r[1]["level"], "error");
}
