//! ports-delta over real history of the ports tree (tests/conformance/data), against
//! what the real make says the tree's ports are.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command;
use std::sync::OnceLock;

use crate::real::{make, real, table};
use crate::support::*;

/// The ports make's walk over the whole tree reaches (`make show=PKGPATH` at the
/// top, no SUBDIRLIST, with a problem log): the PKGPATH each prints, and the
/// entries it reaches whose Makefile fails with this make (reported in the log).
fn hooked() -> &'static BTreeSet<String> {
    static HOOKED: OnceLock<BTreeSet<String>> = OnceLock::new();
    HOOKED.get_or_init(|| {
        let r = real();
        let dir = tempfile::tempdir().expect("tempdir");
        let problems = dir.path().join("problems");
        let out = Command::new(make())
            .current_dir(&r.tree)
            .env("PORTSDIR", &r.tree)
            .env("REPORT_PROBLEM_LOGFILE", &problems)
            .env_remove("SUBDIRLIST")
            .arg("show=PKGPATH")
            .output()
            .expect("run the real make");
        let text = String::from_utf8_lossy(&out.stdout);
        let lines: Vec<&str> = text.lines().collect();
        let mut ports = BTreeSet::new();
        for w in lines.windows(2) {
            if w[0].starts_with("===> ") && !w[1].is_empty() && !w[1].starts_with("===> ") {
                ports.insert(w[1].trim().to_string());
            }
        }
        let log = std::fs::read_to_string(&problems).unwrap_or_default();
        for l in log.lines() {
            let e = l.split(' ').next().unwrap_or_default();
            let d = e.split(',').next().unwrap_or_default();
            if r.tree.join(d).join("Makefile").is_file() {
                ports.insert(d.to_string());
            }
        }
        assert!(
            ports.len() > 9000,
            "make's walk found {} ports",
            ports.len()
        );
        ports
    })
}

fn unxz(p: &Path) -> String {
    let out = Command::new("xz").arg("-dc").arg(p).output().expect("xz");
    assert!(out.status.success(), "xz -dc {}", p.display());
    String::from_utf8(out.stdout).expect("utf-8")
}

fn data(name: &str) -> String {
    unxz(&root().join("tests/conformance/data").join(name))
}

/// Does the Makefile of `dir` in the tree include `what` (an `.include` line)?
fn includes(tree: &Path, dir: &str, what: &str) -> bool {
    std::fs::read_to_string(tree.join(dir).join("Makefile")).is_ok_and(|t| {
        t.lines().any(|l| {
            let l = l.trim_start();
            l.starts_with('.') && l.contains("include") && l.contains(&format!("{what}>"))
        })
    })
}

/// What ports-delta must say of a range, worked out from make's walk, the tree and
/// what the directories were at the base, by the rules of ports-delta(1).
struct Expected {
    ports: BTreeSet<String>,
    removed: BTreeSet<String>,
}

fn expected(name_status: &str, before: &str) -> Expected {
    let tree = &real().tree;
    let hooked = hooked();
    let below = |g: &str| -> BTreeSet<String> {
        hooked
            .range(format!("{g}/")..)
            .take_while(|p| p.starts_with(&format!("{g}/")))
            .cloned()
            .collect()
    };
    let changes: Vec<(&str, &str)> = name_status
        .lines()
        .filter_map(|l| l.split_once('\t'))
        .filter(|(_, p)| !p.starts_with("CVS/") && !p.contains("/CVS/"))
        .collect();
    let mut ports = BTreeSet::new();
    for (status, path) in &changes {
        let (dir, name) = path.rsplit_once('/').unwrap_or(("", path));
        // A file in a port (ports do not nest: any port above it).
        let mut d = dir;
        let mut port = None;
        while !d.is_empty() {
            if hooked.contains(d) {
                port = Some(d);
            }
            d = d.rsplit_once('/').map_or("", |x| x.0);
        }
        if let Some(p) = port {
            ports.insert(p.to_string());
            continue;
        }
        if name == "Makefile.inc" {
            ports.extend(below(dir));
            continue;
        }
        if *status == "D" {
            continue;
        }
        // A file the nearest group above it shares with the ports below.
        let mut g = dir;
        while g.contains('/') && !includes(tree, g, "bsd.port.subdir.mk") {
            g = g.rsplit_once('/').map_or("", |x| x.0);
        }
        if !g.contains('/') {
            continue;
        }
        let rel = &path[g.len() + 1..];
        let shared = match rel.split_once('/') {
            None => {
                name != "Makefile" && !name.starts_with("README") && !name.ends_with(".port.mk")
            }
            Some((first, _)) => ["pkg", "files", "patches"].contains(&first),
        };
        if shared {
            ports.extend(below(g));
        }
    }
    // Removed: a port at the base whose directory is no port now, and that the
    // range touched.
    let touched: BTreeSet<&str> = changes
        .iter()
        .flat_map(|(_, p)| {
            let mut v = Vec::new();
            let mut d = *p;
            while let Some((up, _)) = d.rsplit_once('/') {
                v.push(up);
                d = up;
            }
            v
        })
        .collect();
    let removed = before
        .lines()
        .filter_map(|l| l.strip_prefix("port "))
        .filter(|d| touched.contains(d))
        .filter(|d| !hooked.contains(*d) && !includes(tree, d, "bsd.port.mk"))
        .map(str::to_string)
        .collect();
    Expected { ports, removed }
}

fn range(name: &str) {
    let r = real();
    let ns = data(&format!("{name}.name-status.xz"));
    let before = data(&format!("{name}.before.xz"));
    let want = expected(&ns, &before);
    let tree = r.tree.display().to_string();
    let out = run("ports-delta", &["--ports-dir", tree.as_str()], &ns, &[]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let records = out.records();
    let mut got: BTreeMap<&str, BTreeSet<String>> = BTreeMap::new();
    let mut unhooked = BTreeSet::new();
    for rec in &records {
        let kind = rec["kind"].as_str().unwrap_or_default();
        if kind == "notice" {
            let m = rec["message"].as_str().unwrap_or_default();
            if m.contains("no SUBDIR list reaches it") {
                unhooked.insert(m.split(':').next().unwrap_or_default().to_string());
            }
            continue;
        }
        let p = rec["pkgpath"].as_str().unwrap_or_default().to_string();
        got.entry(kind).or_default().insert(p);
    }
    let ports = got.remove("port").unwrap_or_default();
    let removed = got.remove("removed").unwrap_or_default();
    // A port no SUBDIR reaches is listed with a warning, and it is a port as the
    // real make sees it.
    for u in &unhooked {
        assert!(ports.contains(u) && !hooked().contains(u), "{u}");
        let o = Command::new(make())
            .current_dir(r.tree.join(u))
            .env("PORTSDIR", &r.tree)
            .arg("show=PKGPATH")
            .output()
            .expect("make");
        assert_eq!(String::from_utf8_lossy(&o.stdout).trim(), u.as_str(), "{u}");
    }
    let listed: BTreeSet<String> = ports.difference(&unhooked).cloned().collect();
    let missing: Vec<_> = want.ports.difference(&listed).collect();
    let extra: Vec<_> = listed.difference(&want.ports).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "{name}: ports missing {missing:?}, not ports {extra:?}"
    );
    let missing: Vec<_> = want.removed.difference(&removed).collect();
    let extra: Vec<_> = removed.difference(&want.removed).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "{name}: removed missing {missing:?}, not removed ports {extra:?}"
    );
    table(
        &format!("ports-delta over real history ({name})"),
        &format!(
            "{} name-status lines -> {} ports as make's walk has them, {} commented out of their group (with a warning), {} removed ports as the base had them",
            ns.lines().count(),
            listed.len(),
            unhooked.len(),
            removed.len()
        ),
    );
}

#[test]
fn ports_delta_over_a_week_of_real_history() {
    range("week");
}

#[test]
fn ports_delta_over_a_year_of_real_history() {
    let r = real();
    range("year");
    // The shapes the year holds, one by one.
    let ns = data("year.name-status.xz");
    let tree = r.tree.display().to_string();
    let out = run("ports-delta", &["--ports-dir", tree.as_str()], &ns, &[]);
    let records = out.records();
    let kind_of = |p: &str| -> Vec<String> {
        records
            .iter()
            .filter(|x| x["pkgpath"] == p)
            .map(|x| x["kind"].as_str().unwrap_or_default().to_string())
            .collect()
    };
    // A port that became a group (audio/audacious, games/uqm), a group that
    // became a port (sysutils/terraform) and a port below it, a group removed
    // whole (x11/kde) and a port of it, a port named pkg in its group.
    for (p, k) in [
        ("audio/audacious", "removed"),
        ("audio/audacious/player", "port"),
        ("games/uqm", "removed"),
        ("sysutils/terraform", "port"),
        ("sysutils/terraform/provider-aws", "removed"),
        ("x11/kde/i18n3/sr@Latn", "removed"),
        ("devel/py-buildbot/pkg", "port"),
        ("x11/kde-applications/kblog", "port"),
    ] {
        assert_eq!(kind_of(p), [k], "{p}");
    }
    for p in ["x11/kde", "x11/kde/i18n3", "x11/kde4"] {
        assert_eq!(kind_of(p), Vec::<String>::new(), "{p}");
    }
    let modules = records
        .iter()
        .filter(|x| {
            x["kind"] == "notice"
                && x["message"]
                    .as_str()
                    .is_some_and(|m| m.starts_with("lang/python/python.port.mk changed: a module"))
        })
        .count();
    assert_eq!(modules, 1);
}
