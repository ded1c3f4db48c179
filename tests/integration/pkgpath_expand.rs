//! pkgpath-expand against a database built by the test, checked with SQL run
//! directly on that database.

use crate::support::*;
use std::path::Path;

/// dump-vars text for ports that set the traps a LIKE query falls into.
pub const DUMP: &str = "\
editors/vim.FULLPKGNAME=vim-9.1.0
editors/vim.SUBPACKAGE=-main
editors/vim.MULTI_PACKAGES=-main -lang
editors/vim,-lang.FULLPKGNAME=vim-lang-9.1.0
editors/vim,-lang.SUBPACKAGE=-lang
editors/vim,-lang.MULTI_PACKAGES=-main -lang
editors/vim,gtk2.FULLPKGNAME=vim-9.1.0-gtk2
editors/vim,gtk2.SUBPACKAGE=-main
editors/vim,gtk2.FLAVOR=gtk2
editors/vim,gtk2.MULTI_PACKAGES=-main -lang
editors/vim,gtk2,-lang.FULLPKGNAME=vim-lang-9.1.0
editors/vim,gtk2,-lang.SUBPACKAGE=-lang
editors/vim,gtk2,-lang.FLAVOR=gtk2
editors/vim,gtk2,-lang.MULTI_PACKAGES=-main -lang
editors/vim,no_x11.FULLPKGNAME=vim-9.1.0-no_x11
editors/vim,no_x11.SUBPACKAGE=-main
editors/vim,no_x11.FLAVOR=no_x11
editors/vim,no_x11.MULTI_PACKAGES=-main
editors/vim-spell.FULLPKGNAME=vim-spell-1
net/tor.FULLPKGNAME=tor-0.4.8
net/torsocks.FULLPKGNAME=torsocks-2.4
devel/sdl_image.FULLPKGNAME=sdl-image-1.2
devel/sdlximage.FULLPKGNAME=sdlximage-1.0
devel/sdl_image2.FULLPKGNAME=sdl-image2-2.0
lang/php/8.2.FULLPKGNAME=php-8.2.1
lang/php/8.2.MULTI_PACKAGES=-main -gd
lang/php/8.2.SUBPACKAGE=-main
lang/php/8.2,-gd.FULLPKGNAME=php-gd-8.2.1
lang/php/8.2,-gd.SUBPACKAGE=-gd
lang/php/8.2,-gd.MULTI_PACKAGES=-main -gd
lang/php/8.3.FULLPKGNAME=php-8.3.1
";

pub fn db(dir: &Path) -> std::path::PathBuf {
    let db = dir.join("sqlports");
    sqlports::build(&db, DUMP).expect("build db");
    db
}

/// The reference query of openbsd-facts.md, run directly.
pub fn direct(db: &Path, dir: &str) -> Vec<String> {
    let c = rusqlite::Connection::open(db).unwrap();
    let mut st = c
        .prepare("SELECT DISTINCT Canonical FROM Paths WHERE PkgPath = ?1 ORDER BY Canonical")
        .unwrap();
    let v = st
        .query_map([dir], |r| r.get::<_, String>(0))
        .unwrap()
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    v
}

/// What the shell's LIKE query returns, to show the traps are real.
fn like(db: &Path, dir: &str) -> Vec<String> {
    let c = rusqlite::Connection::open(db).unwrap();
    let mut st = c
        .prepare(
            "SELECT DISTINCT FullPkgPath FROM Paths WHERE FullPkgPath LIKE ?1 || '%' ORDER BY 1",
        )
        .unwrap();
    let v = st
        .query_map([dir], |r| r.get::<_, String>(0))
        .unwrap()
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    v
}

#[test]
fn expansion_equals_direct_sql() {
    let t = tempfile::tempdir().unwrap();
    let db = db(t.path());
    let dbs = db.to_str().unwrap();
    for dir in [
        "editors/vim",
        "net/tor",
        "net/torsocks",
        "devel/sdl_image",
        "devel/sdlximage",
        "lang/php/8.2",
        "lang/php/8.3",
    ] {
        let out = run(
            "pkgpath-expand",
            &["-t", "--db", dbs],
            &format!("{dir}\n"),
            &[],
        );
        assert_eq!(out.code, 0, "{dir}: {}", out.stderr);
        let expected = direct(&db, dir);
        assert!(!expected.is_empty());
        assert_eq!(out.lines(), expected, "{dir}");
    }
    // The traps are real: LIKE over-matches where the exact lookup does not.
    assert!(like(&db, "net/tor").contains(&"net/torsocks".to_string()));
    assert!(like(&db, "devel/sdl_image").contains(&"devel/sdl_image2".to_string()));
    assert!(like(&db, "devel/sdl_image").len() > direct(&db, "devel/sdl_image").len());
    assert!(like(&db, "editors/vim").contains(&"editors/vim-spell".to_string()));
    let out = run(
        "pkgpath-expand",
        &["-t", "--db", dbs],
        "net/tor\ndevel/sdl_image\n",
        &[],
    );
    assert_eq!(out.lines(), ["devel/sdl_image", "net/tor"]);
    let out = run("pkgpath-expand", &["-t", "--db", dbs], "editors/vim\n", &[]);
    assert_eq!(
        out.lines(),
        [
            "editors/vim",
            "editors/vim,-lang",
            "editors/vim,gtk2",
            "editors/vim,gtk2,-lang",
            "editors/vim,no_x11"
        ]
    );
}

#[test]
fn records_carry_fields_and_merge_causes() {
    let t = tempfile::tempdir().unwrap();
    let db = db(t.path());
    let input = concat!(
        r#"{"kind":"batch","v":1,"id":"b1"}"#,
        "\n",
        r#"{"kind":"port","v":1,"pkgpath":"lang/php/8.2","changes":[{"path":"lang/php/8.2/distinfo","status":"modified"}],"extra":7}"#,
        "\n",
        r#"{"kind":"port","v":1,"pkgpath":"lang/php/8.2,-gd","changes":[{"path":"lang/php/Makefile.inc","status":"modified"}],"why":"lang/php/Makefile.inc changed"}"#,
        "\n"
    );
    let out = run(
        "pkgpath-expand",
        &["--db", db.to_str().unwrap()],
        input,
        &[],
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(
        out.stdout,
        concat!(
            r#"{"kind":"batch","v":1,"id":"b1"}"#,
            "\n",
            r#"{"kind":"port","v":1,"pkgpath":"lang/php/8.2","changes":[{"path":"lang/php/8.2/distinfo","status":"modified"}],"extra":7,"fullpkgpath":"lang/php/8.2"}"#,
            "\n",
            r#"{"kind":"port","v":1,"pkgpath":"lang/php/8.2","changes":[{"path":"lang/php/8.2/distinfo","status":"modified"},{"path":"lang/php/Makefile.inc","status":"modified"}],"extra":7,"fullpkgpath":"lang/php/8.2,-gd","why":"lang/php/Makefile.inc changed"}"#,
            "\n"
        )
    );
}

#[test]
fn full_pkgpaths_are_canonicalised_not_expanded() {
    let t = tempfile::tempdir().unwrap();
    let db = db(t.path());
    let out = run(
        "pkgpath-expand",
        &["-t", "--db", db.to_str().unwrap()],
        "editors/vim,-main\neditors/vim,-lang,gtk2\nlang/php/8.2,-gd\n",
        &[],
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(
        out.lines(),
        ["editors/vim", "editors/vim,gtk2,-lang", "lang/php/8.2,-gd"]
    );
}

#[test]
fn unknown_pkgpath_passes_with_warning() {
    let t = tempfile::tempdir().unwrap();
    let db = db(t.path());
    let out = run(
        "pkgpath-expand",
        &["--db", db.to_str().unwrap()],
        "net/brandnew\nnet/tor\n",
        &[],
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    let r = out.records();
    assert_eq!(r[0]["kind"], "notice");
    assert_eq!(r[0]["level"], "warning");
    assert!(r[0]["message"]
        .as_str()
        .unwrap()
        .starts_with("net/brandnew: not in sqlports"));
    assert_eq!(r[1]["fullpkgpath"], "net/brandnew");
    assert_eq!(r[2]["fullpkgpath"], "net/tor");
    let out = run(
        "pkgpath-expand",
        &["-t", "--db", db.to_str().unwrap()],
        "net/brandnew\n",
        &[],
    );
    assert_eq!(out.lines(), ["net/brandnew"]);
    assert!(out
        .stderr
        .contains("warning: net/brandnew: not in sqlports"));
}

#[test]
fn sqlports_from_environment() {
    let t = tempfile::tempdir().unwrap();
    let db = db(t.path());
    let out = run(
        "pkgpath-expand",
        &["-t"],
        "net/tor\n",
        &[("SQLPORTS", db.to_str().unwrap())],
    );
    assert_eq!((out.code, out.lines()), (0, vec!["net/tor"]));
    let out = run(
        "pkgpath-expand",
        &["-t"],
        "",
        &[("SQLPORTS", db.to_str().unwrap())],
    );
    assert_eq!(out.code, 3);
}

#[test]
fn expanded_records_are_not_expanded_again() {
    let t = tempfile::tempdir().unwrap();
    let db = db(t.path());
    let dbs = db.to_str().unwrap();
    let first = run("pkgpath-expand", &["--db", dbs], "editors/vim\n", &[]);
    let again = run("pkgpath-expand", &["--db", dbs], &first.stdout, &[]);
    assert_eq!(again.code, 0, "{}", again.stderr);
    assert_eq!(again.stdout, first.stdout);
    // A plain full pkgpath: `pkgpath` is the directory.
    let out = run(
        "pkgpath-expand",
        &["--db", dbs],
        "editors/vim,-lang,gtk2\n",
        &[],
    );
    assert_eq!(
        out.stdout,
        "{\"kind\":\"port\",\"v\":1,\"pkgpath\":\"editors/vim\",\"fullpkgpath\":\"editors/vim,gtk2,-lang\"}\n"
    );
}
