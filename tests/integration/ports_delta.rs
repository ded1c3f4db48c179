//! ports-delta on a small tree made by the test (the VCS tests use the sample tree).

use crate::support::*;

/// A checkout: groups, nested groups, a Makefile.inc, ports, infrastructure.
fn tree() -> tempfile::TempDir {
    let t = tempfile::tempdir().expect("tempdir");
    write_files(
        t.path(),
        &[
            ("Makefile", &group_mk(&["lang", "net", "sysutils"])),
            ("infrastructure/mk/bsd.port.mk", "# mk\n"),
            (
                "net/Makefile",
                &group_mk(&["curl", "icinga", "newport", "tor", "torsocks"]),
            ),
            ("net/curl/Makefile", PORT_MK),
            ("net/curl/distinfo", ""),
            ("net/curl/patches/patch-a", ""),
            ("net/tor/Makefile", PORT_MK),
            ("net/torsocks/Makefile", PORT_MK),
            ("net/newport/Makefile", PORT_MK),
            ("net/icinga/Makefile", &group_mk(&["core2"])),
            ("net/icinga/core2/Makefile", PORT_MK),
            ("net/icinga/core2/pkg/PLIST", ""),
            ("lang/Makefile", &group_mk(&["php"])),
            ("lang/php/Makefile", &group_mk(&["8.2", "8.3"])),
            ("lang/php/Makefile.inc", "V=8\n"),
            ("lang/php/8.2/Makefile", PORT_MK),
            ("lang/php/8.3/Makefile", PORT_MK),
            ("lang/php/8.3/files/x", ""),
            ("sysutils/Makefile", &group_mk(&["firmware"])),
            ("sysutils/firmware/Makefile", &group_mk(&["iwm"])),
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

/// A checkout shaped like the real tree where it is odd: the top Makefile's
/// SUBDIR in a conditional, `tests/`, a port named `pkg` in a group, a port
/// commented out of its group, a group's shared distinfo and pkg/, a module, a
/// port that became a group, a group that became a port, a group removed whole.
fn real_shapes() -> tempfile::TempDir {
    let t = tempfile::tempdir().expect("tempdir");
    write_files(
        t.path(),
        &[
            (
                "Makefile",
                ".if defined(SUBDIRLIST)\nSUBDIR != sed -e 's,#.*,,' ${SUBDIRLIST}\n.else\n\
                 SUBDIR += audio\nSUBDIR += devel\nSUBDIR += lang\nSUBDIR += sysutils\n\
                 SUBDIR += www\nSUBDIR += x11\n.endif\n.include <bsd.port.subdir.mk>\n",
            ),
            (
                "tests/Makefile",
                "SUBDIR += portbump\n.include <bsd.subdir.mk>\n",
            ),
            ("tests/portbump/Makefile", PORT_MK),
            ("audio/Makefile", &group_mk(&["audacious"])),
            (
                "audio/audacious/Makefile",
                &group_mk(&["player", "plugins"]),
            ),
            ("audio/audacious/Makefile.inc", "V = 4\n"),
            ("audio/audacious/player/Makefile", PORT_MK),
            ("audio/audacious/plugins/Makefile", PORT_MK),
            ("devel/Makefile", &group_mk(&["py-buildbot"])),
            (
                "devel/py-buildbot/Makefile",
                &group_mk(&["buildbot", "pkg"]),
            ),
            ("devel/py-buildbot/buildbot/Makefile", PORT_MK),
            ("devel/py-buildbot/pkg/Makefile", PORT_MK),
            ("devel/py-buildbot/pkg/pkg/PLIST", ""),
            ("lang/Makefile", &group_mk(&["python"])),
            ("lang/python/Makefile", &group_mk(&["3.8"])),
            ("lang/python/python.port.mk", "# module\n"),
            ("lang/python/3.8/Makefile", PORT_MK),
            ("sysutils/Makefile", &group_mk(&["terraform"])),
            ("sysutils/terraform/Makefile", PORT_MK),
            ("sysutils/terraform/pkg/DESCR", ""),
            ("www/Makefile", &group_mk(&["firefox-i18n"])),
            ("www/firefox-i18n/Makefile", &group_mk(&["de", "en-GB"])),
            ("www/firefox-i18n/distinfo", ""),
            ("www/firefox-i18n/pkg/PLIST", ""),
            ("www/firefox-i18n/pkg/Makefile", PORT_MK),
            ("www/firefox-i18n/de/Makefile", PORT_MK),
            ("www/firefox-i18n/en-GB/Makefile", PORT_MK),
            ("x11/Makefile", &group_mk(&["kde-applications"])),
            (
                "x11/kde-applications/Makefile",
                "SUBDIR += kate\n#SUBDIR += kblog\n.include <bsd.port.subdir.mk>\n",
            ),
            ("x11/kde-applications/kate/Makefile", PORT_MK),
            ("x11/kde-applications/kblog/Makefile", PORT_MK),
            ("x11/kde-old/Makefile", &group_mk(&["x"])),
            ("x11/kde-old/Makefile.inc", ""),
            ("x11/kde-old/x/Makefile", PORT_MK),
        ],
    );
    t
}

const REAL_SHAPES: &str = "\
M\tCVS/Entries
M\taudio/audacious/Makefile
A\taudio/audacious/Makefile.inc
M\taudio/audacious/CVS/Entries
D\taudio/audacious/distinfo
D\taudio/audacious/pkg/DESCR
D\taudio/audacious/pkg/PLIST
A\taudio/audacious/player/Makefile
A\taudio/audacious/plugins/Makefile
M\tdevel/py-buildbot/pkg/pkg/PLIST
M\tlang/python/3.8/Makefile
M\tlang/python/python.port.mk
M\tsysutils/terraform/Makefile
A\tsysutils/terraform/pkg/DESCR
D\tsysutils/terraform/provider-aws/Makefile
D\tsysutils/terraform/provider-aws/distinfo
M\ttests/portbump/Makefile
M\twww/firefox-i18n/distinfo
M\twww/firefox-i18n/pkg/Makefile
M\tx11/kde-applications/kblog/Makefile
M\tx11/kde-old/Makefile.inc
D\tx11/kde/Makefile
D\tx11/kde/Makefile.inc
D\tx11/kde/base3/Makefile
D\tx11/kde/base3/files/Makefile
D\tx11/kde/base3/pkg/PLIST
D\tx11/kde/i18n3/Makefile
D\tx11/kde/i18n3/sr@Latn/Makefile
D\tx11/kde/i18n3/sr@Latn/pkg/PLIST
D\tx11/kde/patches-3.5/patch-a
";

#[test]
fn ports_are_what_the_subdir_lists_reach() {
    let t = real_shapes();
    let out = run(
        "ports-delta",
        &[] as &[&str],
        REAL_SHAPES,
        &[("PORTSDIR", t.path().to_str().unwrap())],
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    let r = out.records();
    let of = |kind: &str| -> Vec<String> {
        r.iter()
            .filter(|x| x["kind"] == kind)
            .map(|x| x["pkgpath"].as_str().unwrap_or_default().to_string())
            .collect()
    };
    assert_eq!(
        of("port"),
        [
            "audio/audacious/player",
            "audio/audacious/plugins",
            "devel/py-buildbot/pkg",
            "lang/python/3.8",
            "sysutils/terraform",
            "www/firefox-i18n/de",
            "www/firefox-i18n/en-GB",
            "x11/kde-applications/kblog",
        ]
    );
    // The port that became a group, the port below the group that became a
    // port, the ports of the removed group; not the groups, not files/.
    assert_eq!(
        of("removed"),
        [
            "audio/audacious",
            "sysutils/terraform/provider-aws",
            "x11/kde/base3",
            "x11/kde/i18n3/sr@Latn",
        ]
    );
    let de = r
        .iter()
        .find(|x| x["pkgpath"] == "www/firefox-i18n/de")
        .unwrap();
    assert_eq!(
        de["why"],
        "www/firefox-i18n/distinfo changed; www/firefox-i18n/pkg/Makefile changed"
    );
    let player = r
        .iter()
        .find(|x| x["pkgpath"] == "audio/audacious/player")
        .unwrap();
    assert_eq!(player["why"], "audio/audacious/Makefile.inc changed");
    let terraform = r
        .iter()
        .find(|x| x["pkgpath"] == "sysutils/terraform")
        .unwrap();
    assert_eq!(terraform["changes"].as_array().unwrap().len(), 2);
    let notices: Vec<(String, String)> = r
        .iter()
        .filter(|x| x["kind"] == "notice")
        .map(|x| {
            (
                x["level"].as_str().unwrap().to_string(),
                x["message"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        notices,
        [
            ("warning".to_string(), "lang/python/python.port.mk changed: a module; the ports that use it (MODULES = lang/python) are not rebuilt for it, rebuild them by hand if needed".to_string()),
            ("info".to_string(), "x11/kde-old/Makefile.inc changed: no port below x11/kde-old is reached by the SUBDIR lists; nothing rebuilt for it".to_string()),
            ("warning".to_string(), "x11/kde-applications/kblog: changed, but no SUBDIR list reaches it (not hooked into x11/kde-applications): listed all the same; sqlports may not know it".to_string()),
        ]
    );
}
