//! ports-delta's unit tests.

use super::*;
use crate::ports::PORT_SUBDIRS;
use crate::record::{Change, Kind, Status};

fn ch(path: &str, status: Status, from: Option<&str>, to: Option<&str>) -> Line {
    Line::Changes(vec![FileChange {
        change: Change {
            path: path.into(),
            status,
            from: from.map(Into::into),
            to: to.map(Into::into),
        },
        known: true,
    }])
}

#[test]
fn line_forms() {
    use Status::*;
    let p = |l| parse_line(l, "ports").unwrap();
    assert_eq!(
        p("File ports/net/dhcpcd/Makefile changed from revision 1.1.1.1 to 1.1.1.1.2.1"),
        ch(
            "net/dhcpcd/Makefile",
            Modified,
            Some("1.1.1.1"),
            Some("1.1.1.1.2.1")
        )
    );
    assert_eq!(
        p("File ports/editors/vim/patches/patch-new_c is new; OPENBSD_7_4 revision 1.1.2.1"),
        ch(
            "editors/vim/patches/patch-new_c",
            Added,
            None,
            Some("1.1.2.1")
        )
    );
    assert_eq!(
        p("File ports/devel/gmake/distinfo is removed; OPENBSD_7_4_BASE revision 1.1.1.1"),
        ch("devel/gmake/distinfo", Removed, Some("1.1.1.1"), None)
    );
    assert_eq!(
        p("cvs update: `devel/gmake/distinfo' is no longer in the repository"),
        ch("devel/gmake/distinfo", Removed, None, None)
    );
    assert_eq!(
        p("cvs update: warning: `x/y' is not (any longer) pertinent"),
        Line::Notice(
            Level::Warning,
            "cvs update: warning: `x/y' is not (any longer) pertinent".into()
        )
    );
    assert_eq!(p("cvs update: Updating net/curl"), Line::Nothing);
    assert_eq!(
        p("U net/curl/Makefile"),
        ch("net/curl/Makefile", Modified, None, None)
    );
    assert_eq!(
        p("P net/curl/distinfo"),
        ch("net/curl/distinfo", Modified, None, None)
    );
    assert_eq!(p("? net/curl/x.orig"), Line::Nothing);
    assert_eq!(
        p("M net/tor/Makefile"),
        Line::Notice(
            Level::Warning,
            "cvs update: net/tor/Makefile is modified locally: the checkout needs attention".into()
        )
    );
    for l in [
        "A net/new/Makefile",
        "R net/old/Makefile",
        "C net/curl/Makefile",
    ] {
        assert!(matches!(p(l), Line::Notice(Level::Warning, _)), "{l}");
    }
    assert_eq!(
        p("M\tnet/curl/Makefile"),
        ch("net/curl/Makefile", Modified, None, None)
    );
    assert_eq!(
        p("D\tnet/old/Makefile"),
        ch("net/old/Makefile", Removed, None, None)
    );
    assert_eq!(
        p("A\tnet/new/Makefile"),
        ch("net/new/Makefile", Added, None, None)
    );
    let Line::Changes(r) = p("R087\tnet/a/patches/p1\tnet/b/patches/p1") else {
        panic!()
    };
    assert_eq!(r.len(), 2);
    assert_eq!(r[0].change.status, Removed);
    assert_eq!(r[1].change.path, "net/b/patches/p1");
    let Line::Changes(r) = p("ports/net/curl/pkg/PLIST") else {
        panic!()
    };
    assert_eq!(r[0].change.path, "net/curl/pkg/PLIST");
    assert!(!r[0].known);
    for bad in [
        "hello world",
        "File ports/x frobbed",
        "X\tnet/curl/Makefile\textra\tmore",
        "../etc/passwd",
        "/etc/passwd",
        "U net/../../etc",
        "File ports//x changed from revision 1 to 2",
        "Mx\tnet/curl",
    ] {
        assert!(parse_line(bad, "ports").is_err(), "{bad:?} accepted");
    }
}

#[test]
fn records_are_written_as_serde_json_writes_them() {
    /// The record as serde_json writes it, the reference.
    #[derive(serde::Serialize)]
    struct Reference {
        kind: &'static str,
        v: u64,
        pkgpath: String,
        changes: Vec<Change>,
        #[serde(skip_serializing_if = "Option::is_none")]
        why: Option<String>,
    }
    let odd = "a\"b\\c\u{1}\n\t\u{7f}\u{85}é\u{1f600}/";
    let changes = [
        ChangeRef {
            path: "net/curl/Makefile",
            status: Status::Modified,
            from: Some("1.80"),
            to: Some("1.80.2.1"),
        },
        ChangeRef {
            path: odd,
            status: Status::Added,
            from: None,
            to: Some(odd),
        },
        ChangeRef {
            path: "x",
            status: Status::Removed,
            from: Some("1.1"),
            to: None,
        },
    ];
    for (kind, pkgpath, n, why) in [
        (
            Kind::Port,
            "net/curl",
            3,
            Some("lang/php/Makefile.inc changed; x"),
        ),
        (Kind::Port, odd, 1, Some(odd)),
        (Kind::Removed, "net/old", 0, None),
        (Kind::Removed, "net/old", 2, None),
    ] {
        let ours = PortOut {
            kind,
            pkgpath,
            changes: changes[..n].iter().collect(),
            why: why.map(str::to_string),
        }
        .to_line();
        let reference = serde_json::to_string(&Reference {
            kind: kind.as_str(),
            v: crate::record::VERSION,
            pkgpath: pkgpath.into(),
            changes: changes[..n].iter().map(ChangeRef::to_change).collect(),
            why: why.map(str::to_string),
        })
        .unwrap();
        assert_eq!(ours, reference);
    }
}

#[test]
fn path_rules() {
    assert_eq!(port_by_path("net/curl/Makefile"), "net/curl");
    assert_eq!(port_by_path("net/curl/patches/patch-a"), "net/curl");
    assert_eq!(port_by_path("net/curl/pkg/PLIST"), "net/curl");
    assert_eq!(port_by_path("net/curl/files/a/b/c"), "net/curl");
    assert_eq!(
        port_by_path("net/icinga/core2/pkg/PLIST"),
        "net/icinga/core2"
    );
    assert_eq!(port_by_path("lang/php/8.2/files/x"), "lang/php/8.2");
    assert_eq!(port_by_path("x11/files/Makefile"), "x11/files");
    assert_eq!(port_by_path("Makefile"), "");
    assert_eq!(port_by_path("net/Makefile"), "net");
    assert_eq!(port_by_path("net/curl/pkg"), "net/curl");
    assert_eq!(port_by_path("a/b/c/d/files/pkg/x"), "a/b/c/d");
    assert_eq!(port_by_path("a/b/filesx/pkg/x"), "a/b/filesx");
    assert!(is_special("infrastructure/mk/bsd.port.mk"));
    assert!(in_infrastructure("infrastructure"));
    assert!(!in_infrastructure("infrastructures/x"));
    assert!(is_special("lang/php/Makefile.inc") && is_special("Makefile.inc"));
    assert!(!is_special("lang/php/xMakefile.inc"));
    let scan = |p: &str| {
        let s = Scan::new(p);
        (s.name, s.port, s.bad_segment, s.odd_byte)
    };
    assert_eq!(scan("Makefile"), (0, 0, false, false));
    assert_eq!(scan("net/curl/pkg/PLIST"), (13, 8, false, false));
    assert_eq!(scan("a/./b\u{85}"), (4, 3, true, true));
    // The scan by blocks of 16 bytes finds what a plain reading of the
    // path rules finds, wherever the `/` fall.
    let reference = |p: &str| {
        let segs: Vec<&str> = p.split('/').collect();
        let dirs = &segs[..segs.len() - 1];
        let cut = (2..dirs.len())
            .find(|&i| PORT_SUBDIRS.contains(&dirs[i]))
            .unwrap_or(dirs.len());
        let port = dirs[..cut].join("/");
        let name = segs[segs.len() - 1];
        (
            p.len() - name.len(),
            port.len(),
            segs.iter().any(|s| s.is_empty() || *s == "." || *s == ".."),
            p.bytes().any(|b| !(0x20..0x7f).contains(&b)),
        )
    };
    let names = [
        "a",
        "pkg",
        "files",
        "patches",
        "",
        ".",
        "..",
        "x\u{1}",
        "0123456789abcdef",
    ];
    for n in 0..5000usize {
        // Every combination of up to five names, by the digits of `n`.
        let mut k = n;
        let mut parts = Vec::new();
        loop {
            parts.push(names[k % names.len()]);
            k /= names.len();
            if k == 0 {
                break;
            }
        }
        let p = parts.join("/");
        assert_eq!(scan(&p), reference(&p), "{p:?}");
    }
    // The port found while a line is read is the one of the path rules.
    let text = "File ports/net/icinga/core2/pkg/PLIST is new; X revision 1.1\n\
                net/curl/files/a/b\n\
                R100\tx11/a/patches/p\tx11/b/files/pkg/q\n";
    let mut v = Vec::new();
    for line in text.lines() {
        parse_changes(line, "ports", &mut v).unwrap();
    }
    let ports: Vec<&str> = v.iter().map(FileRef::port_by_path).collect();
    assert_eq!(ports, ["net/icinga/core2", "net/curl", "x11/a", "x11/b"]);
    for f in &v {
        assert_eq!(*f, FileRef::new(f.change, f.known));
    }
}

#[test]
fn real_changes_of_an_update() {
    let cvs_up = "? net/curl/w-curl-8.9.1\n\
                  cvs update: Updating net/curl\n\
                  U net/curl/Makefile\n\
                  P net/curl/distinfo\n\
                  M misc/plain/pkg/PLIST\n\
                  C www/nginx/Makefile\n\
                  cvs update: warning: net/old/Makefile is not (any longer) pertinent\n\
                  ? .tmp\n";
    // (M: modified in the checkout, not on the branch.)
    assert_eq!(
        real_changes(cvs_up),
        "U net/curl/Makefile\nP net/curl/distinfo\n"
    );
    // git pull's own talk is no change list: nothing (the records' changes
    // are shown instead).
    let git_pull =
        "Updating 0dce8dd..11f6e51\nFast-forward\n net/curl/Makefile | 2 +-\n 1 file changed\n";
    assert_eq!(real_changes(git_pull), "");
}
