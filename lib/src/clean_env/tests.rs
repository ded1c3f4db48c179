//! clean-env's unit tests.

use super::*;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;

#[test]
fn names() {
    assert_eq!(split_name("vim-9.1.0-gtk2"), Some(("vim", "9.1.0", "gtk2")));
    assert_eq!(split_name("rsync-3.3.0p0"), Some(("rsync", "3.3.0p0", "")));
    assert_eq!(
        split_name("py3-zope.interface-6.4"),
        Some(("py3-zope.interface", "6.4", ""))
    );
    assert_eq!(
        split_name("debug-curl-8.9.1"),
        Some(("debug-curl", "8.9.1", ""))
    );
    assert_eq!(split_name("gtk+3-3.24.43"), Some(("gtk+3", "3.24.43", "")));
    assert_eq!(split_name("rsync"), None);
    assert!(valid_pkgname("libstdc++-13.2.0p0"));
    for bad in ["", "-rf", "../x", "a/b", "a b", "a;b", ".hidden"] {
        assert!(!valid_pkgname(bad), "{bad:?}");
    }
}

#[test]
fn specs() {
    let s = |x: &str| Spec::parse(x).unwrap();
    assert!(s("rsync").matches("rsync-3.3.0p0"));
    assert!(s("rsync--").matches("rsync-3.3.0p0"));
    assert!(!s("rsync").matches("rsync-extra-1.0"));
    assert!(!s("rsync").matches("debug-rsync-3.3.0p0"));
    assert!(s("vim").matches("vim-9.1.0-gtk2"));
    assert!(s("vim--gtk2").matches("vim-9.1.0-gtk2"));
    assert!(!s("vim--gtk2").matches("vim-9.1.0"));
    assert!(s("rsync-3.3.0p0").matches("rsync-3.3.0p0"));
    assert!(!s("rsync-3.3.0p0").matches("rsync-3.3.0p1"));
    assert_eq!(s("rsync").pkg_add_arg(), "rsync--");
    assert_eq!(s("rsync--").pkg_add_arg(), "rsync--");
    assert_eq!(s("vim--gtk2").pkg_add_arg(), "vim--gtk2");
    assert_eq!(s("rsync-3.3.0p0").pkg_add_arg(), "rsync-3.3.0p0");
    for bad in ["", "-X", "a b", "rsync-1.0--x", "vim---gtk2", "vim--gtk2-"] {
        assert!(Spec::parse(bad).is_err(), "{bad:?}");
    }
}

#[test]
fn closure_follows_both_files() {
    let t = tempfile::tempdir().unwrap();
    let db = t.path();
    let pkg = |n: &str, req: &[&str], by: &[&str]| {
        fs::create_dir_all(db.join(n)).unwrap();
        if !req.is_empty() {
            fs::write(db.join(n).join("+REQUIRING"), req.join("\n") + "\n").unwrap();
        }
        if !by.is_empty() {
            fs::write(db.join(n).join("+REQUIRED_BY"), by.join("\n") + "\n").unwrap();
        }
    };
    pkg("rsync-3.3.0p0", &["libiconv-1.17"], &[]);
    pkg("libiconv-1.17", &["gone-1.0"], &[]);
    // Only the dependency says it: rsync requires popt.
    pkg("popt-1.19", &[], &["rsync-3.3.0p0"]);
    pkg("curl-8.9.1", &["libiconv-1.17"], &[]);
    let installed: Vec<String> = ["curl-8.9.1", "libiconv-1.17", "popt-1.19", "rsync-3.3.0p0"]
        .map(String::from)
        .to_vec();
    let kept = keep_closure(db, &installed, &[Spec::parse("rsync").unwrap()]).unwrap();
    assert_eq!(
        kept.into_iter().collect::<Vec<_>>(),
        ["libiconv-1.17", "popt-1.19", "rsync-3.3.0p0"]
    );
    assert!(keep_closure(db, &installed, &[]).unwrap().is_empty());
}

#[test]
fn wrkobjdir_rules() {
    let t = tempfile::tempdir().unwrap();
    let ports = t.path().join("ports");
    fs::create_dir_all(ports.join("pobj")).unwrap();
    let prot = |what, path: PathBuf, hold| Protected {
        what,
        path,
        may_hold_wrkobjdir: hold,
    };
    let protected = [
        prot("PORTSDIR", ports.clone(), true),
        prot("DISTDIR", ports.join("distfiles"), false),
    ];
    assert!(check_wrkobjdir(&ports.join("pobj"), &protected, &ports).is_ok());
    assert!(check_wrkobjdir(&ports.join("pobj/amd64"), &protected, &ports).is_ok());
    for bad in [
        PathBuf::from("pobj"),
        PathBuf::from("/"),
        ports.clone(),
        t.path().to_path_buf(),
        ports.join("distfiles"),
        ports.join("distfiles/sub"),
        ports.join("pobj/../pobj"),
    ] {
        assert!(
            check_wrkobjdir(&bad, &protected, &ports).is_err(),
            "{bad:?}"
        );
    }
    std::os::unix::fs::symlink(&ports, t.path().join("link")).unwrap();
    assert!(check_wrkobjdir(&t.path().join("link"), &protected, &ports).is_err());
    // Through a link to the tree, the tree itself.
    fs::create_dir_all(t.path().join("other")).unwrap();
    std::os::unix::fs::symlink(t.path(), t.path().join("other/up")).unwrap();
    assert!(check_wrkobjdir(&t.path().join("other/up/ports"), &protected, &ports).is_err());
}

/// Between the check and the wipe a parent is swapped for a link to another
/// tree: the wipe, which opens the checked path without following links and
/// checks what it finds, removes nothing there.
#[test]
fn a_parent_swapped_for_a_link_after_the_check_is_not_followed() {
    let t = tempfile::tempdir().unwrap();
    let ports = t.path().join("ports");
    let w = t.path().join("build/pobj");
    fs::create_dir_all(w.join("sub")).unwrap();
    fs::write(w.join("sub/junk"), "junk").unwrap();
    fs::create_dir_all(&ports).unwrap();
    let protected = [Protected {
        what: "PORTSDIR",
        path: ports.clone(),
        may_hold_wrkobjdir: true,
    }];
    let checked = check_wrkobjdir(&w, &protected, &ports).unwrap();
    // The swap: build/ becomes a link to a tree with a pobj of its own.
    let precious = t.path().join("precious/pobj");
    fs::create_dir_all(&precious).unwrap();
    fs::write(precious.join("data"), "keep").unwrap();
    fs::rename(t.path().join("build"), t.path().join("build.old")).unwrap();
    std::os::unix::fs::symlink(t.path().join("precious"), t.path().join("build")).unwrap();
    let e = wipe(&checked).unwrap_err();
    assert!(e.contains("symbolic link"), "{e}");
    assert_eq!(fs::read_to_string(precious.join("data")).unwrap(), "keep");
    // Another directory put in its place (a new inode): refused too.
    fs::remove_file(t.path().join("build")).unwrap();
    fs::create_dir_all(&w).unwrap();
    fs::write(w.join("new"), "new").unwrap();
    let e = wipe(&checked).unwrap_err();
    assert!(e.contains("not the directory that was checked"), "{e}");
    assert!(w.join("new").exists());
    // The checked one, back in place: emptied, kept, links inside removed
    // as links, a read-only subdirectory emptied too.
    fs::remove_dir_all(t.path().join("build")).unwrap();
    fs::rename(t.path().join("build.old"), t.path().join("build")).unwrap();
    std::os::unix::fs::symlink(&precious, w.join("link")).unwrap();
    fs::create_dir_all(w.join("ro/deep")).unwrap();
    fs::write(w.join("ro/deep/f"), "f").unwrap();
    fs::set_permissions(w.join("ro"), fs::Permissions::from_mode(0o555)).unwrap();
    wipe(&checked).unwrap();
    assert!(w.is_dir());
    assert_eq!(fs::read_dir(&w).unwrap().count(), 0);
    assert_eq!(fs::read_to_string(precious.join("data")).unwrap(), "keep");
}
