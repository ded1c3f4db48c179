//! `build-list -n`: what a run would do with each entry, as make decides it.
//!
//! One `make show="_PACKAGE_COOKIES CHECKSUMFILES DISTDIR IGNORE"` over the
//! list (SUBDIRLIST in the environment, as every walk) tells, per entry, the
//! files `make package` makes and the distfiles `make fetch` makes.  In
//! OpenBSD's bsd.port.mk both are targets without prerequisites: make builds
//! when a package file is missing, fetches when a distfile is missing, and
//! does nothing else; the plan looks for exactly those files, in the order
//! of the list: what an entry makes (the packages of its flavor, its
//! distfiles) is there for the entries after it.  (Dependencies make builds
//! on the way are not foreseen: an entry that is also a dependency of one
//! before it is planned as a build, and found up to date by its turn.)

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use super::{Entry, Target};
use crate::host::Host;
use crate::record::Plan;
use crate::Error;

/// What make is asked, one line each, after every entry's header.
const VARS: [&str; 4] = ["_PACKAGE_COOKIES", "CHECKSUMFILES", "DISTDIR", "IGNORE"];

/// The directory of the links into ftp/ (never built, only linked).
const FTP: &str = "ftp";
/// Where bsd.port.mk makes the packages of PKG_ARCH=* subpackages (NO_ARCH),
/// linked into all/.
const NO_ARCH: &str = "no-arch";

/// What a run would do with one entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct EntryPlan {
    pub plan: Plan,
    /// The package files make would write (file names), for `build`.
    pub packages: Vec<String>,
    /// The distfiles missing from DISTDIR (relative to it).
    pub distfiles: Vec<String>,
    /// make's words for an ignored entry, or why it would fail.
    pub why: Option<String>,
}

/// Ask make about every entry: a plan for each, by full pkgpath.
pub(crate) fn ask(
    host: &Host,
    target: Target,
    entries: &[Entry],
) -> Result<HashMap<String, EntryPlan>, Error> {
    let paths: Vec<&str> = entries.iter().map(|e| e.path.as_str()).collect();
    let walk = host.tree.show(&VARS.join(" "), &paths)?;
    let mut shown: HashMap<&str, Vec<&str>> = HashMap::new();
    for (entry, lines) in crate::ports::split_headers(&walk.output) {
        if !entry.is_empty() {
            shown.insert(entry, lines);
        }
    }
    let mut plans = HashMap::new();
    // The package files the entries before make: an entry whose missing
    // files they all make is up to date by its turn (lang/php/8.2,-gd after
    // lang/php/8.2).
    let mut made: HashSet<PathBuf> = HashSet::new();
    for e in entries {
        let reported = walk.problems.iter().any(|p| p == &e.path);
        let plan = match shown.get(e.path.as_str()) {
            Some(lines) if !reported && lines.len() >= VARS.len() => decide(
                target, e.also, lines[0], lines[1], lines[2], lines[3], &mut made,
            ),
            _ => EntryPlan {
                plan: Plan::Fail,
                packages: Vec::new(),
                distfiles: Vec::new(),
                why: Some("make cannot show it (no such port, or its Makefile fails)".into()),
            },
        };
        plans.insert(e.path.clone(), plan);
    }
    Ok(plans)
}

/// The plan of an entry from what make showed: its package cookies, its
/// checksum files, DISTDIR and IGNORE.
fn decide(
    target: Target,
    also: bool,
    cookies: &str,
    checksum_files: &str,
    distdir: &str,
    ignore: &str,
    made: &mut HashSet<PathBuf>,
) -> EntryPlan {
    let distdir = Path::new(distdir.trim());
    let distfiles: Vec<String> = checksum_files
        .split_whitespace()
        .filter(|f| {
            let p = distdir.join(f);
            std::fs::symlink_metadata(&p).is_err() && !made.contains(&p)
        })
        .map(str::to_string)
        .collect();
    let ignore = sh_words(ignore);
    if !ignore.is_empty() {
        return EntryPlan {
            plan: Plan::Ignored,
            packages: Vec::new(),
            distfiles: Vec::new(),
            why: Some(ignore),
        };
    }
    let files = package_files(cookies);
    let (plan, packages) = match target {
        Target::Fetch if distfiles.is_empty() => (Plan::UpToDate, Vec::new()),
        Target::Fetch => (Plan::Fetch, Vec::new()),
        Target::Package => {
            // An --also entry is cleaned (clean=all) and built again.
            let missing: Vec<&Path> = files
                .iter()
                .copied()
                .filter(|p| also || (std::fs::symlink_metadata(p).is_err() && !made.contains(*p)))
                .collect();
            made.extend(missing.iter().map(|p| p.to_path_buf()));
            let missing: Vec<String> = missing
                .iter()
                .filter_map(|p| p.file_name().and_then(|n| n.to_str()).map(str::to_string))
                .collect();
            if missing.is_empty() {
                (Plan::UpToDate, missing)
            } else {
                (Plan::Build, missing)
            }
        }
    };
    // make fetches only on its way to a build; what it fetches is there for
    // the entries after.
    let distfiles = if plan == Plan::UpToDate {
        Vec::new()
    } else {
        distfiles
    };
    made.extend(distfiles.iter().map(|f| distdir.join(f)));
    EntryPlan {
        plan,
        packages,
        distfiles,
        why: None,
    }
}

/// IGNORE as make's message has it: bsd.port.mk keeps it as quoted words
/// (`"is marked as broken: Depends\ on\ Qt\ 5.14+"`) and prints it inside a
/// double-quoted string of its own, which its quotes end: the words come out
/// unquoted, their backslashes taken by the shell.
fn sh_words(v: &str) -> String {
    let mut out = String::new();
    let mut chars = v.trim().chars();
    while let Some(c) = chars.next() {
        match c {
            '"' => {}
            '\\' => out.extend(chars.next()),
            _ => out.push(c),
        }
    }
    out.trim().to_string()
}

/// The package files among the cookies, those make builds (the others are
/// links it makes to them): for each file name, the one in no-arch/ if there
/// is one, else the one outside ftp/.
fn package_files(cookies: &str) -> Vec<&Path> {
    let mut by_name: Vec<(&str, &Path)> = Vec::new();
    for c in cookies.split_whitespace() {
        let p = Path::new(c);
        let (Some(name), Some(dir)) = (
            p.file_name().and_then(|n| n.to_str()),
            p.parent()
                .and_then(|d| d.file_name())
                .and_then(|d| d.to_str()),
        ) else {
            continue;
        };
        if dir == FTP {
            continue;
        }
        match by_name.iter_mut().find(|(n, _)| *n == name) {
            Some(slot) => {
                if dir == NO_ARCH {
                    slot.1 = p;
                }
            }
            None => by_name.push((name, p)),
        }
    }
    by_name.into_iter().map(|(_, p)| p).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// As the real make shows them (OpenBSD make over the ports tree of
    /// January 2021, editors/vim,gtk2,-lang): the all/ link of the no-arch
    /// -lang package comes with a double slash.
    const VIM: &str = "/r/amd64/all/vim-8.2.2230-gtk2.tgz /r/amd64/ftp/vim-8.2.2230-gtk2.tgz \
        /r/amd64/all//vim-lang-8.2.2230.tgz /r/amd64/no-arch/vim-lang-8.2.2230.tgz \
        /r/amd64/ftp/vim-lang-8.2.2230.tgz";

    #[test]
    fn ignore_as_make_says_it() {
        // What the real make shows for x11/kde-applications/lokalize.
        assert_eq!(
            sh_words(r#""is marked as broken: Depends\ on\ Qt\ 5.14+""#),
            "is marked as broken: Depends on Qt 5.14+"
        );
        assert_eq!(sh_words(""), "");
        assert_eq!(
            sh_words(r#""is only for amd64, not i386" "is an interactive port""#),
            "is only for amd64, not i386 is an interactive port"
        );
    }

    #[test]
    fn the_files_make_builds_are_not_the_links() {
        let f: Vec<_> = package_files(VIM)
            .iter()
            .map(|p| p.display().to_string())
            .collect();
        assert_eq!(
            f,
            [
                "/r/amd64/all/vim-8.2.2230-gtk2.tgz",
                "/r/amd64/no-arch/vim-lang-8.2.2230.tgz"
            ]
        );
    }

    #[test]
    fn missing_files_decide() {
        let t = tempfile::tempdir().unwrap();
        let d = t.path();
        std::fs::create_dir_all(d.join("amd64/all")).unwrap();
        std::fs::create_dir_all(d.join("dist")).unwrap();
        let cookies = format!(
            "{0}/amd64/all/a-1.tgz {0}/amd64/ftp/a-1.tgz {0}/amd64/all/debug-a-1.tgz",
            d.display()
        );
        let dist = d.join("dist");
        let dist = dist.to_str().unwrap();
        let p = decide(
            Target::Package,
            false,
            &cookies,
            "a-1.tar.gz ",
            dist,
            "",
            &mut HashSet::new(),
        );
        assert_eq!(p.plan, Plan::Build);
        assert_eq!(p.packages, ["a-1.tgz", "debug-a-1.tgz"]);
        assert_eq!(p.distfiles, ["a-1.tar.gz"]);
        std::fs::write(d.join("amd64/all/a-1.tgz"), "").unwrap();
        std::fs::write(d.join("amd64/all/debug-a-1.tgz"), "").unwrap();
        std::fs::write(d.join("dist/a-1.tar.gz"), "").unwrap();
        let p = decide(
            Target::Package,
            false,
            &cookies,
            "a-1.tar.gz",
            dist,
            "",
            &mut HashSet::new(),
        );
        assert_eq!(p.plan, Plan::UpToDate, "the ftp/ link alone is no build");
        let p = decide(
            Target::Package,
            true,
            &cookies,
            "a-1.tar.gz",
            dist,
            "",
            &mut HashSet::new(),
        );
        assert_eq!(p.plan, Plan::Build, "--also builds again");
        assert_eq!(
            decide(
                Target::Fetch,
                false,
                &cookies,
                "a-1.tar.gz b.zip",
                dist,
                "",
                &mut HashSet::new()
            )
            .plan,
            Plan::Fetch
        );
        let p = decide(
            Target::Package,
            false,
            "",
            "",
            dist,
            "\"is marked as broken: no\"",
            &mut HashSet::new(),
        );
        assert_eq!(p.plan, Plan::Ignored);
        assert_eq!(p.why.as_deref(), Some("is marked as broken: no"));
    }
}
