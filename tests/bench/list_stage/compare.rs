//! How the shell's list and portflow's differ, and the checks on them.
//!
//! The shell's rows are canonicalised through sqlports (`Paths.Canonical`) first:
//! its `LIKE` query on the `Ports` view returns every alias too.  Each canonical
//! full pkgpath the shell found is then put in one class, by the directory its
//! query was for: the port itself, a group whose Makefile.inc changed (both
//! legitimate), a category or group whose plain Makefile changed (over-reach), or
//! none (a `LIKE` over-match: prefix, `_` wildcard, case); and apart, the ports
//! removed on the branch.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::Path;

use rusqlite::{Connection, OpenFlags};
use serde_json::Value;

use crate::world::{Truth, LIKE_TRAPS};

/// A `port` record of portflow's output.
#[derive(Default)]
pub struct PortInfo {
    /// The paths of its `changes`.
    pub changes: BTreeSet<String>,
    /// It has a `why` (reached indirectly).
    pub why: bool,
}

/// portflow's list: `ports-delta | pkgpath-expand` output.
#[derive(Default)]
pub struct Portflow {
    /// pkgpath -> what its records say.
    pub ports: BTreeMap<String, PortInfo>,
    /// fullpkgpath -> pkgpath.
    pub full: BTreeMap<String, String>,
    pub removed: BTreeSet<String>,
    /// "tool level" -> count.
    pub notices: BTreeMap<String, usize>,
}

impl Portflow {
    pub fn read(path: &Path) -> Result<Portflow, String> {
        let text = fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let mut pf = Portflow::default();
        for (n, line) in text.lines().enumerate() {
            let bad = |m: &str| format!("{}:{}: {m}: {line}", path.display(), n + 1);
            let v: Value = serde_json::from_str(line).map_err(|e| bad(&e.to_string()))?;
            let s = |k: &str| v.get(k).and_then(Value::as_str);
            match s("kind") {
                Some("port") => {
                    let pkgpath = s("pkgpath").ok_or_else(|| bad("port without pkgpath"))?;
                    let full = s("fullpkgpath").ok_or_else(|| bad("port without fullpkgpath"))?;
                    let info = pf.ports.entry(pkgpath.to_string()).or_default();
                    info.why |= v.get("why").is_some();
                    if let Some(Value::Array(cs)) = v.get("changes") {
                        for c in cs {
                            if let Some(p) = c.get("path").and_then(Value::as_str) {
                                info.changes.insert(p.to_string());
                            }
                        }
                    }
                    pf.full.insert(full.to_string(), pkgpath.to_string());
                }
                Some("removed") => {
                    let pkgpath = s("pkgpath").ok_or_else(|| bad("removed without pkgpath"))?;
                    pf.removed.insert(pkgpath.to_string());
                }
                Some("notice") => {
                    let key = format!("{} {}", s("tool").unwrap_or("?"), s("level").unwrap_or("?"));
                    *pf.notices.entry(key).or_default() += 1;
                }
                _ => return Err(bad("unexpected record")),
            }
        }
        Ok(pf)
    }
}

/// The shell's list.
pub struct Shell {
    /// The directories it queried.
    pub dirs: BTreeSet<String>,
    /// Rows printed by its sqlite3 runs.
    pub rows: usize,
    /// Canonical full pkgpath -> its port directory.
    pub full: BTreeMap<String, String>,
    /// Port directories sqlports knows.
    pub known_dirs: BTreeSet<String>,
}

impl Shell {
    pub fn read(dirs: &Path, out: &Path, db: &Path) -> Result<Shell, String> {
        let read = |p: &Path| fs::read_to_string(p).map_err(|e| format!("{}: {e}", p.display()));
        let dirs: BTreeSet<String> = read(dirs)?.lines().map(str::to_string).collect();
        let out = read(out)?;
        let conn = Connection::open_with_flags(db, OpenFlags::SQLITE_OPEN_READ_ONLY)
            .map_err(|e| format!("{}: {e}", db.display()))?;
        let e = |e: rusqlite::Error| format!("{}: {e}", db.display());
        let mut st = conn
            .prepare("SELECT Canonical, PkgPath FROM Paths WHERE FullPkgPath = ?1")
            .map_err(e)?;
        let mut full = BTreeMap::new();
        let mut rows = 0;
        for row in out.lines() {
            rows += 1;
            let (c, d): (String, String) = st
                .query_row([row], |r| Ok((r.get(0)?, r.get(1)?)))
                .map_err(|err| format!("shell row {row:?} not in Paths: {}", e(err)))?;
            full.insert(c, d);
        }
        let known_dirs = conn
            .prepare("SELECT DISTINCT PkgPath FROM Paths")
            .and_then(|mut st| {
                st.query_map([], |r| r.get::<_, String>(0))?
                    .collect::<Result<BTreeSet<_>, _>>()
            })
            .map_err(e)?;
        Ok(Shell {
            dirs,
            rows,
            full,
            known_dirs,
        })
    }
}

/// `full LIKE 'dir%'` as SQLite does it: `_` matches one character, ASCII case
/// is ignored.
pub fn like_prefix(dir: &str, full: &str) -> bool {
    let (d, f) = (dir.as_bytes(), full.as_bytes());
    d.len() <= f.len()
        && d.iter()
            .zip(f)
            .all(|(a, b)| *a == b'_' || a.eq_ignore_ascii_case(b))
}

fn ancestors(dir: &str) -> impl Iterator<Item = &str> {
    std::iter::successors(Some(dir), |d| d.rsplit_once('/').map(|(p, _)| p))
}

/// A class of differences: full pkgpaths, their ports, a few examples.
#[derive(Default)]
struct Class {
    full: BTreeSet<String>,
    ports: BTreeSet<String>,
    examples: Vec<String>,
}

impl Class {
    fn add(&mut self, full: &str, port: &str, example: impl FnOnce() -> String) {
        self.full.insert(full.to_string());
        if self.ports.insert(port.to_string()) && self.examples.len() < 4 {
            self.examples.push(example());
        }
    }

    fn line(&self, label: &str) -> String {
        let mut s = format!(
            "    {label:<44} {:>7} full pkgpaths {:>6} ports",
            num(self.full.len()),
            num(self.ports.len())
        );
        if !self.examples.is_empty() {
            s.push_str(&format!("   e.g. {}", self.examples.join(", ")));
        }
        s
    }
}

/// A number with thousands separators.
pub fn num(n: usize) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Checks, printed as they are made.
#[derive(Default)]
pub struct Checks {
    pub failed: Vec<String>,
}

impl Checks {
    pub fn check(&mut self, ok: bool, what: String) {
        println!("  {}  {what}", if ok { "ok  " } else { "FAIL" });
        if !ok {
            self.failed.push(what);
        }
    }
}

fn sample<'a>(it: impl IntoIterator<Item = &'a String>) -> String {
    let v: Vec<&str> = it.into_iter().take(4).map(String::as_str).collect();
    if v.is_empty() {
        "none".into()
    } else {
        v.join(", ")
    }
}

/// Print how the lists differ and check them.
pub fn compare(shell: &Shell, pf: &Portflow, truth: &Truth, checks: &mut Checks) {
    let mut exact = Class::default();
    let mut through_inc = Class::default();
    let mut over_reach = Class::default();
    let mut over_match = Class::default();
    let mut removed = Class::default();
    for (full, port) in &shell.full {
        if truth.removed.contains(port) {
            removed.add(full, port, || port.clone());
            continue;
        }
        let by = ancestors(port).find(|d| shell.dirs.contains(*d));
        match by {
            Some(d) if d == port => exact.add(full, port, || port.clone()),
            Some(d) if truth.inc_changed.contains(d) => {
                through_inc.add(full, port, || format!("{port} (via {d})"))
            }
            Some(d) => over_reach.add(full, port, || format!("{port} (via {d})")),
            None => {
                let via = shell
                    .dirs
                    .iter()
                    .find(|d| like_prefix(d, full))
                    .map(String::as_str)
                    .unwrap_or("?");
                over_match.add(full, port, || format!("{port} (LIKE '{via}%')"));
            }
        }
    }
    let in_pf = |c: &Class| c.full.iter().filter(|f| pf.full.contains_key(*f)).count();
    let unchanged = |c: &Class| -> Class {
        let mut u = Class::default();
        for f in &c.full {
            let port = &shell.full[f];
            if !truth.ports.contains(port) {
                u.add(f, port, || port.clone());
            }
        }
        u
    };

    // What the shell misses: portflow's full pkgpaths it does not have.
    let mut misses: BTreeMap<&str, Class> = BTreeMap::new();
    for (full, port) in &pf.full {
        if shell.full.contains_key(full) {
            continue;
        }
        let info = pf.ports.get(port);
        let direct: Vec<&String> = info
            .map(|i| {
                i.changes
                    .iter()
                    .filter(|c| c.starts_with(&format!("{port}/")))
                    .collect()
            })
            .unwrap_or_default();
        let rel = |c: &str| c[port.len() + 1..].to_string();
        let reason = if !truth.ports.contains(port) {
            "not a port to build (a portflow error)"
        } else if !shell.known_dirs.contains(port) {
            "new on the branch (not in sqlports)"
        } else if direct.is_empty() {
            "Makefile.inc sibling"
        } else if direct
            .iter()
            .any(|c| matches!(rel(c).as_str(), "Makefile" | "distinfo"))
        {
            "Makefile/distinfo changed, dropped by awk"
        } else {
            let subs: BTreeSet<String> = direct
                .iter()
                .map(|c| rel(c).split('/').next().unwrap_or("").to_string())
                .collect();
            match subs.iter().map(String::as_str).collect::<Vec<_>>()[..] {
                ["patches"] => "patches/ only",
                ["pkg"] => "pkg/ only",
                ["files"] => "files/ only",
                _ => "patches/, pkg/, files/ mixed",
            }
        };
        misses
            .entry(reason)
            .or_default()
            .add(full, port, || full.clone());
    }

    println!("how the lists differ (shell rows canonicalised through Paths.Canonical)");
    println!(
        "  shell:    {} directories, one sqlite3 each: {} rows, {} canonical full pkgpaths of {} ports",
        num(shell.dirs.len()),
        num(shell.rows),
        num(shell.full.len()),
        num(shell.full.values().collect::<BTreeSet<_>>().len())
    );
    println!(
        "  portflow: {} ports and {} removed records: {} full pkgpaths",
        num(pf.ports.len()),
        num(pf.removed.len()),
        num(pf.full.len())
    );
    let notices: Vec<String> = pf
        .notices
        .iter()
        .map(|(k, n)| format!("{k} {}", num(*n)))
        .collect();
    println!("            notices: {}", notices.join(", "));
    println!("  what the shell finds:");
    println!("{}", exact.line("the port itself"));
    println!("{}", through_inc.line("below a changed Makefile.inc"));
    println!(
        "{}",
        over_reach.line("below a changed category/group Makefile")
    );
    println!("{}", over_match.line("LIKE over-match (prefix, _, case)"));
    println!("{}", removed.line("removed on the branch"));
    let missed: usize = misses.values().map(|c| c.full.len()).sum();
    let missed_ports: usize = misses.values().map(|c| c.ports.len()).sum();
    println!(
        "  what the shell misses (in portflow only): {} full pkgpaths of {} ports",
        num(missed),
        num(missed_ports)
    );
    for (reason, class) in &misses {
        println!("{}", class.line(reason));
    }
    println!();

    println!("checks");
    // 1. Every port the shell finds legitimately, still existing, is in portflow.
    let legit: BTreeSet<&String> = exact.full.iter().chain(&through_inc.full).collect();
    let lost: Vec<&String> = legit
        .iter()
        .copied()
        .filter(|f| !pf.full.contains_key(*f))
        .collect();
    checks.check(
        lost.is_empty(),
        format!(
            "portflow holds every port the shell finds that still exists: {} of {} full pkgpaths (missing: {})",
            num(legit.len() - lost.len()),
            num(legit.len()),
            sample(lost)
        ),
    );
    // 2. None of the shell's over-matches of unchanged ports.
    let om = unchanged(&over_match);
    checks.check(
        in_pf(&om) == 0,
        format!(
            "portflow holds none of the shell's LIKE over-matches of unchanged ports: {} of {}",
            in_pf(&om),
            num(om.full.len())
        ),
    );
    let traps: Vec<&str> = LIKE_TRAPS.iter().map(|t| t.1).collect();
    let shown: Vec<&str> = traps
        .iter()
        .copied()
        .filter(|t| om.ports.contains(*t))
        .collect();
    checks.check(
        shown.len() == traps.len(),
        format!(
            "the LIKE traps are over-matched by the shell: {} of {} ({})",
            shown.len(),
            traps.len(),
            shown.join(", ")
        ),
    );
    let or = unchanged(&over_reach);
    checks.check(
        in_pf(&or) == 0,
        format!(
            "portflow holds none of the shell's category-Makefile over-reach: {} of {}",
            in_pf(&or),
            num(or.full.len())
        ),
    );
    // 3. No removed port, and a removed record for each.
    let gone: Vec<&String> = pf
        .full
        .iter()
        .filter(|(_, p)| truth.removed.contains(*p))
        .map(|(f, _)| f)
        .collect();
    checks.check(
        gone.is_empty(),
        format!(
            "portflow builds no removed port (the shell lists {} of them): {} full pkgpaths",
            num(removed.ports.len()),
            gone.len()
        ),
    );
    check_sets(
        checks,
        "removed records are the ports removed on the branch",
        &pf.removed,
        &truth.removed,
    );
    // 4. Against the generator's answer.
    let pf_ports: BTreeSet<String> = pf.ports.keys().cloned().collect();
    check_sets(
        checks,
        "portflow's ports are the changed ports (generator's answer)",
        &pf_ports,
        &truth.ports,
    );
    let pf_full: BTreeSet<String> = pf.full.keys().cloned().collect();
    check_sets(
        checks,
        "portflow's full pkgpaths are every flavor and subpackage of them",
        &pf_full,
        &truth.full,
    );
    let inc_found = truth
        .through_inc
        .iter()
        .filter(|p| pf.ports.get(*p).is_some_and(|i| i.why))
        .count();
    checks.check(
        inc_found == truth.through_inc.len(),
        format!(
            "ports reached only through a Makefile.inc say why: {} of {}",
            num(inc_found),
            num(truth.through_inc.len())
        ),
    );
}

fn check_sets(checks: &mut Checks, what: &str, got: &BTreeSet<String>, want: &BTreeSet<String>) {
    let extra: Vec<&String> = got.difference(want).collect();
    let missing: Vec<&String> = want.difference(got).collect();
    checks.check(
        extra.is_empty() && missing.is_empty(),
        format!(
            "{what}: {} (extra {}: {}; missing {}: {})",
            num(want.len()),
            extra.len(),
            sample(extra.iter().copied()),
            missing.len(),
            sample(missing.iter().copied())
        ),
    );
}
