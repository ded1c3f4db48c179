//! The synthetic world of the list-stage benchmark, all from one seed: a ports
//! checkout of the -stable branch, the release's `make dump-vars` text (for the
//! sqlports database), the `cvs rdiff -s` delta between the two, and the answer a
//! correct list stage must give.
//!
//! What it holds, on purpose:
//! - nested groups (`lang/php/8.2` under `lang/php`, `net/icinga/core2`), some with a
//!   `Makefile.inc`, changed while a port below changed too (the shell drops the
//!   group and misses the siblings) or alone (the shell keeps the group);
//! - names that trap `LIKE 'dir%'`: `net/tor` + `net/torsocks` (prefix),
//!   `devel/sdl_image` + `devel/sdlximage` (`_` is a wildcard), `math/R` +
//!   `math/rkward` (case is ignored), `textproc/p5-Text-CSV` + `p5-Text-CSV_XS`;
//! - flavors, pseudo-flavors and multi-packages for a good share of the ports, and
//!   aliases (`dir,<default flavor>`, `dir,b,a`) beside the canonical paths;
//! - every kind of change: Makefile, distinfo, patches/, pkg/ or files/ only,
//!   `Makefile.inc`, category Makefiles, infrastructure, ports removed on the
//!   branch (gone from the checkout) and ports new on the branch (not in sqlports);
//! - ports that ship a `files/Makefile` (copied into WRKSRC by the port, not a
//!   port Makefile), a few of them changed there, alone or with the port Makefile.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::fs;
use std::path::Path;

/// The branch and the release it comes from.
pub const BRANCH: &str = "OPENBSD_7_8";
pub const BASE: &str = "OPENBSD_7_8_BASE";

/// A small deterministic PRNG (SplitMix64): the same seed gives the same world.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (`n` > 0).
    pub fn below(&mut self, n: usize) -> usize {
        assert!(n > 0, "Rng::below(0)");
        (self.next_u64() % n as u64) as usize
    }

    /// A number in `lo..=hi`.
    pub fn between(&mut self, lo: usize, hi: usize) -> usize {
        lo + self.below(hi - lo + 1)
    }

    /// True `p` times in a hundred.
    pub fn percent(&mut self, p: usize) -> bool {
        self.below(100) < p
    }

    pub fn pick<'a, T>(&mut self, v: &'a [T]) -> &'a T {
        &v[self.below(v.len())]
    }

    /// An index into `weights`, drawn in proportion to them.
    pub fn weighted(&mut self, weights: &[usize]) -> usize {
        let mut r = self.below(weights.iter().sum());
        for (i, w) in weights.iter().enumerate() {
            if r < *w {
                return i;
            }
            r -= w;
        }
        weights.len() - 1
    }
}

/// How big a world to make.
#[derive(Clone, Copy, Debug)]
pub struct Scale {
    /// Ports in the checkout (ports new on the branch included).
    pub ports: usize,
    /// Of those, ports new on the branch (not in the release's sqlports).
    pub new: usize,
    /// Ports removed on the branch (in sqlports, gone from the checkout).
    pub removed: usize,
    /// `cvs rdiff -s` lines to make (at least).
    pub lines: usize,
}

impl Scale {
    /// A size relative to 10,000 ports, at least `min`.
    fn of(&self, at_10k: usize, min: usize) -> usize {
        (at_10k * self.ports / 10_000).max(min)
    }
}

/// Where a port exists.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Origin {
    /// In the release's sqlports and in the checkout.
    Release,
    /// Added on the branch: in the checkout only.
    New,
    /// Removed on the branch: in the release's sqlports only.
    Removed,
}

/// What happened to a port on the branch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Touch {
    Untouched,
    /// Makefile and distinfo (an update), often patches and pkg/ too.
    Update,
    /// Makefile (a REVISION bump) and patches.
    Bump,
    PatchesOnly,
    PkgOnly,
    FilesOnly,
    DistinfoOnly,
    /// New or removed on the branch: every file.
    Whole,
}

/// A port of the world.
#[derive(Debug)]
pub struct Port {
    pub dir: String,
    pub origin: Origin,
    /// FLAVORS, pseudo-flavors (`no_*`) included.
    pub flavors: Vec<&'static str>,
    /// FLAVOR ?= this by default.
    pub default_flavor: Option<&'static str>,
    /// A two-flavor combination that is also dumped (sorted).
    pub pair: Option<(&'static str, &'static str)>,
    /// MULTI_PACKAGES, the main one first; empty for a single package.
    pub subpackages: Vec<&'static str>,
    /// Files of the port in the checkout, relative to its directory.
    pub files: BTreeSet<String>,
    pub touch: Touch,
    /// It ships a files/Makefile (not a port Makefile) that the branch changes.
    pub files_makefile_changed: bool,
    /// A counter for unique patch names.
    patch_seq: usize,
}

impl Port {
    fn new(dir: String) -> Self {
        Port {
            dir,
            origin: Origin::Release,
            flavors: Vec::new(),
            default_flavor: None,
            pair: None,
            subpackages: Vec::new(),
            files: BTreeSet::new(),
            touch: Touch::Untouched,
            files_makefile_changed: false,
            patch_seq: 0,
        }
    }

    fn name(&self) -> &str {
        self.dir.rsplit('/').next().unwrap_or(&self.dir)
    }

    fn new_patch_name(&mut self, rng: &mut Rng) -> String {
        const DIRS: &[&str] = &["src", "lib", "include", "tools", "build", "third_party"];
        const EXT: &[&str] = &["c", "h", "cc", "py", "in", "am", "mk"];
        self.patch_seq += 1;
        format!(
            "patches/patch-{}_file{}_{}",
            rng.pick(DIRS),
            self.patch_seq,
            rng.pick(EXT)
        )
    }

    fn files_under(&self, sub: &str) -> Vec<String> {
        self.files
            .iter()
            .filter(|f| f.starts_with(sub))
            .cloned()
            .collect()
    }

    /// The full pkgpaths the port's dump-vars gives, canonical, with the variables
    /// of each: `(fullpkgpath, FLAVOR, SUBPACKAGE, PSEUDO_FLAVOR)`.
    fn dumped(&self) -> Vec<(String, String, &'static str, String)> {
        let mut combos: Vec<Vec<&'static str>> = vec![Vec::new()];
        for f in &self.flavors {
            if Some(*f) != self.default_flavor {
                combos.push(vec![f]);
            }
        }
        if let Some((a, b)) = self.pair {
            combos.push(vec![a, b]);
        }
        let mut out = Vec::new();
        for combo in combos {
            let pseudo: Vec<&str> = combo
                .iter()
                .copied()
                .filter(|f| f.starts_with("no_"))
                .collect();
            let flavor = if combo.is_empty() {
                self.default_flavor.unwrap_or("").to_string()
            } else {
                combo.join(" ")
            };
            let mut base = self.dir.clone();
            for f in &combo {
                base.push(',');
                base.push_str(f);
            }
            if self.subpackages.is_empty() {
                out.push((base, flavor, "", pseudo.join(" ")));
                continue;
            }
            for (i, s) in self.subpackages.iter().enumerate() {
                // The no_x11 pseudo-flavor removes the -gui subpackage.
                if *s == "-gui" && pseudo.contains(&"no_x11") {
                    continue;
                }
                let full = if i == 0 {
                    base.clone()
                } else {
                    format!("{base},{s}")
                };
                out.push((full, flavor.clone(), *s, pseudo.join(" ")));
            }
        }
        out
    }
}

/// One line of `cvs rdiff -s`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct RdiffLine {
    pub path: String,
    pub what: What,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum What {
    Changed { from: String, to: String },
    New { rev: String },
    Removed { rev: String },
}

impl RdiffLine {
    fn write(&self, out: &mut String) {
        let p = &self.path;
        // Writing to a String cannot fail.
        let _ = match &self.what {
            What::Changed { from, to } => {
                writeln!(out, "File ports/{p} changed from revision {from} to {to}")
            }
            What::New { rev } => writeln!(out, "File ports/{p} is new; {BRANCH} revision {rev}"),
            What::Removed { rev } => {
                writeln!(out, "File ports/{p} is removed; {BASE} revision {rev}")
            }
        };
    }
}

/// A directory holding ports that is not a port itself: a category or a group.
#[derive(Debug)]
pub struct Group {
    pub dir: String,
    pub makefile_inc: bool,
    /// The branch changed its Makefile.inc.
    pub inc_changed: bool,
}

/// The whole world.
pub struct World {
    pub scale: Scale,
    pub ports: Vec<Port>,
    /// Groups below a category (`lang/php`); categories are implied by the ports.
    pub groups: Vec<Group>,
    pub lines: Vec<RdiffLine>,
}

/// The answer a correct list stage gives.
pub struct Truth {
    /// Ports to build (their directories).
    pub ports: BTreeSet<String>,
    /// Ports removed on the branch.
    pub removed: BTreeSet<String>,
    /// Every full pkgpath to build, canonical; a port sqlports does not know
    /// stands for itself.
    pub full: BTreeSet<String>,
    /// Ports reached only through a Makefile.inc.
    pub through_inc: BTreeSet<String>,
    /// Directories whose Makefile.inc changed.
    pub inc_changed: BTreeSet<String>,
}

const CATEGORIES: &[(&str, usize)] = &[
    ("archivers", 2),
    ("astro", 1),
    ("audio", 5),
    ("benchmarks", 1),
    ("biology", 1),
    ("cad", 1),
    ("comms", 2),
    ("converters", 2),
    ("databases", 5),
    ("devel", 25),
    ("editors", 2),
    ("education", 1),
    ("emulators", 2),
    ("fonts", 3),
    ("games", 5),
    ("geo", 2),
    ("graphics", 6),
    ("inputmethods", 1),
    ("japanese", 1),
    ("lang", 3),
    ("mail", 3),
    ("math", 4),
    ("misc", 3),
    ("multimedia", 3),
    ("net", 10),
    ("news", 1),
    ("print", 2),
    ("productivity", 2),
    ("security", 5),
    ("shells", 1),
    ("sysutils", 8),
    ("telephony", 1),
    ("textproc", 10),
    ("www", 12),
    ("x11", 8),
];

const SYLLABLES: &[&str] = &[
    "ba", "be", "bo", "ca", "co", "cu", "da", "de", "di", "fa", "fe", "fi", "ga", "go", "ha", "he",
    "jo", "ka", "ki", "la", "le", "li", "lo", "ma", "me", "mi", "mo", "na", "ne", "no", "pa", "pe",
    "pi", "po", "ra", "re", "ri", "ro", "sa", "se", "si", "so", "ta", "te", "ti", "to", "va", "ve",
    "vi", "wa", "xa", "xo", "za", "zo", "lib", "net", "x", "ex", "gl", "sdl", "tk", "ng", "ql",
    "db",
];

const PREFIXES: &[(&str, usize)] = &[
    ("", 60),
    ("p5-", 12),
    ("py-", 12),
    ("ruby-", 5),
    ("go-", 3),
    ("rust-", 2),
    ("lib", 6),
];

const SUFFIXES: &[(&str, usize)] = &[
    ("", 70),
    ("d", 5),
    ("-utils", 4),
    ("-tools", 3),
    ("2", 4),
    ("3", 3),
    ("-ng", 2),
    ("_ext", 2),
    ("+", 1),
    ("-gtk", 2),
    ("-qt", 2),
    ("mm", 2),
];

const FLAVORS: &[&str] = &[
    "no_x11", "gtk3", "qt6", "lite", "static", "ldap", "mysql", "pgsql", "sasl", "no_ldap",
];
const SUBPACKAGES: &[&str] = &[
    "-lib", "-docs", "-gui", "-server", "-client", "-lang", "-tools", "-data", "-python",
];
const PHP_SUBPACKAGES: &[&str] = &[
    "-main",
    "-bz2",
    "-curl",
    "-dba",
    "-gd",
    "-gmp",
    "-imap",
    "-intl",
    "-ldap",
    "-mysqli",
    "-odbc",
    "-pcntl",
    "-pdo_mysql",
    "-pdo_pgsql",
    "-pdo_sqlite",
    "-pgsql",
    "-pspell",
    "-shmop",
    "-snmp",
    "-soap",
    "-sodium",
    "-tidy",
    "-xsl",
    "-zip",
];

const INFRASTRUCTURE: &[&str] = &[
    "infrastructure/mk/bsd.port.mk",
    "infrastructure/mk/bsd.port.subdir.mk",
    "infrastructure/mk/bsd.port.arch.mk",
    "infrastructure/mk/arch-defines.mk",
    "infrastructure/bin/dpb",
    "infrastructure/bin/portcheck",
    "infrastructure/db/user.list",
    "infrastructure/lib/DPB/Core.pm",
    "infrastructure/templates/Makefile.template",
];

/// Ports whose names trap `LIKE 'dir%'`: (changed, unchanged but matched).
pub const LIKE_TRAPS: &[(&str, &str)] = &[
    ("net/tor", "net/torsocks"),
    ("devel/sdl_image", "devel/sdlximage"),
    ("math/R", "math/rkward"),
    ("textproc/p5-Text-CSV", "textproc/p5-Text-CSV_XS"),
];

/// A group: directory, ports at 10,000 (fixed names when given), Makefile.inc,
/// Makefile.inc changed, ports below it changed too.
struct GroupSpec {
    dir: &'static str,
    names: &'static [&'static str],
    random_at_10k: usize,
    makefile_inc: bool,
    inc_changed: bool,
    /// Percent of its ports changed directly.
    changed_percent: usize,
}

const GROUPS: &[GroupSpec] = &[
    GroupSpec {
        dir: "lang/php",
        names: &["8.1", "8.2", "8.3", "8.4"],
        random_at_10k: 0,
        makefile_inc: true,
        inc_changed: true,
        changed_percent: 0, // lang/php/8.2 is changed by hand below
    },
    GroupSpec {
        dir: "net/icinga",
        names: &["core2", "web2"],
        random_at_10k: 0,
        makefile_inc: false,
        inc_changed: false,
        changed_percent: 0, // net/icinga/core2 is changed by hand below
    },
    GroupSpec {
        dir: "lang/python",
        names: &["3.12", "3.13"],
        random_at_10k: 0,
        makefile_inc: true,
        inc_changed: true,
        changed_percent: 0,
    },
    GroupSpec {
        dir: "lang/ruby",
        names: &["3.3", "3.4"],
        random_at_10k: 0,
        makefile_inc: true,
        inc_changed: false,
        changed_percent: 50,
    },
    GroupSpec {
        dir: "lang/gcc",
        names: &["11", "14"],
        random_at_10k: 0,
        makefile_inc: true,
        inc_changed: false,
        changed_percent: 50,
    },
    GroupSpec {
        dir: "devel/kf6",
        names: &[],
        random_at_10k: 70,
        makefile_inc: true,
        inc_changed: true,
        changed_percent: 10,
    },
    GroupSpec {
        dir: "x11/kde-applications",
        names: &[],
        random_at_10k: 150,
        makefile_inc: true,
        inc_changed: false,
        changed_percent: 40,
    },
    GroupSpec {
        dir: "x11/xfce4",
        names: &[],
        random_at_10k: 40,
        makefile_inc: true,
        inc_changed: true,
        changed_percent: 15,
    },
    GroupSpec {
        dir: "x11/gnome",
        names: &[],
        random_at_10k: 100,
        makefile_inc: false,
        inc_changed: false,
        changed_percent: 60,
    },
];

fn parent(p: &str) -> &str {
    p.rsplit_once('/').map(|(d, _)| d).unwrap_or("")
}

fn base_rev(rng: &mut Rng) -> String {
    format!("1.{}", rng.between(1, 60))
}

impl World {
    pub fn generate(seed: u64, scale: Scale) -> World {
        let mut rng = Rng::new(seed);
        let mut w = World {
            scale,
            ports: Vec::new(),
            groups: Vec::new(),
            lines: Vec::new(),
        };
        let mut taken: BTreeSet<String> = BTreeSet::new();
        // Fixed ports first: groups and traps.
        for g in GROUPS {
            w.groups.push(Group {
                dir: g.dir.to_string(),
                makefile_inc: g.makefile_inc,
                inc_changed: g.inc_changed,
            });
            for n in g.names {
                let dir = format!("{}/{n}", g.dir);
                taken.insert(dir.clone());
                w.ports.push(Port::new(dir));
            }
            for _ in 0..scale.of(g.random_at_10k, if g.random_at_10k > 0 { 4 } else { 0 }) {
                let dir = unique_name(&mut rng, g.dir, &taken);
                taken.insert(dir.clone());
                w.ports.push(Port::new(dir));
            }
        }
        for (a, b) in LIKE_TRAPS {
            for d in [a, b] {
                taken.insert(d.to_string());
                w.ports.push(Port::new(d.to_string()));
            }
        }
        let fixed = w.ports.len();
        let weights: Vec<usize> = CATEGORIES.iter().map(|c| c.1).collect();
        while w.ports.len() < scale.ports + scale.removed {
            let cat = CATEGORIES[rng.weighted(&weights)].0;
            let dir = unique_name(&mut rng, cat, &taken);
            taken.insert(dir.clone());
            w.ports.push(Port::new(dir));
        }
        // The last random ports are removed on the branch, others new on it.
        let total = w.ports.len();
        for p in &mut w.ports[total - scale.removed..] {
            p.origin = Origin::Removed;
        }
        let mut made_new = 0;
        while made_new < scale.new {
            let i = rng.between(fixed, total - scale.removed - 1);
            if w.ports[i].origin == Origin::Release {
                w.ports[i].origin = Origin::New;
                made_new += 1;
            }
        }
        // Ports removed inside groups too (`x11/gnome/<gone>`).
        for g in ["x11/gnome", "x11/kde-applications"] {
            let dir = unique_name(&mut rng, g, &taken);
            taken.insert(dir.clone());
            let mut p = Port::new(dir);
            p.origin = Origin::Removed;
            w.ports.push(p);
        }
        for p in &mut w.ports {
            shape(p, &mut rng);
            base_files(p, &mut rng);
        }
        w.choose_touches(&mut rng);
        w.make_lines(&mut rng);
        w.lines.sort();
        w
    }

    fn group_of(&self, dir: &str) -> Option<&Group> {
        let mut d = parent(dir);
        while !d.is_empty() {
            if let Some(g) = self.groups.iter().find(|g| g.dir == d) {
                return Some(g);
            }
            d = parent(d);
        }
        None
    }

    fn choose_touches(&mut self, rng: &mut Rng) {
        const KINDS: &[(Touch, usize)] = &[
            (Touch::Untouched, 12),
            (Touch::Update, 42),
            (Touch::Bump, 26),
            (Touch::PatchesOnly, 6),
            (Touch::PkgOnly, 5),
            (Touch::FilesOnly, 4),
            (Touch::DistinfoOnly, 1),
        ];
        let weights: Vec<usize> = KINDS.iter().map(|k| k.1).collect();
        let trap_changed: BTreeSet<&str> = LIKE_TRAPS.iter().map(|t| t.0).collect();
        let trap_unchanged: BTreeSet<&str> = LIKE_TRAPS.iter().map(|t| t.1).collect();
        let group_percent = |dir: &str| {
            GROUPS
                .iter()
                .find(|g| parent(dir) == g.dir)
                .map(|g| g.changed_percent)
        };
        for i in 0..self.ports.len() {
            let p = &self.ports[i];
            let touch = match p.origin {
                Origin::New | Origin::Removed => Touch::Whole,
                Origin::Release => {
                    let d = p.dir.as_str();
                    if trap_changed.contains(d) || d == "lang/php/8.2" || d == "net/icinga/core2" {
                        Touch::Update
                    } else if trap_unchanged.contains(d) {
                        Touch::Untouched
                    } else if let Some(pc) = group_percent(d) {
                        if rng.percent(pc) {
                            KINDS[1 + rng.weighted(&weights[1..])].0
                        } else {
                            Touch::Untouched
                        }
                    } else {
                        KINDS[rng.weighted(&weights)].0
                    }
                }
            };
            let p = &mut self.ports[i];
            p.touch = touch;
            if touch == Touch::FilesOnly && p.files_under("files/").is_empty() {
                p.files.insert("files/rc.d.in".into());
            }
        }
        // Ports that ship their own files/Makefile: most untouched or touched
        // elsewhere, a few with only files/ changed, one updated together with it.
        let candidates: Vec<usize> = (0..self.ports.len())
            .filter(|&i| {
                let p = &self.ports[i];
                p.origin == Origin::Release
                    && self.group_of(&p.dir).is_none()
                    && !trap_changed.contains(p.dir.as_str())
                    && !trap_unchanged.contains(p.dir.as_str())
            })
            .collect();
        let n = self.scale.of(40, 4);
        for k in 0..n {
            let i = candidates[rng.below(candidates.len())];
            let p = &mut self.ports[i];
            p.files.insert("files/Makefile".into());
            p.touch = match k {
                0 | 1 => Touch::FilesOnly,
                2 => Touch::Update,
                _ => p.touch,
            };
            p.files_makefile_changed |= k < 3;
        }
    }

    fn make_lines(&mut self, rng: &mut Rng) {
        let mut lines: Vec<RdiffLine> = Vec::new();
        // Directories that gained or lost a port: their Makefile changes.
        let mut touched_dirs: BTreeSet<String> = BTreeSet::new();
        for p in &mut self.ports {
            if p.touch == Touch::Whole {
                touched_dirs.insert(parent(&p.dir).to_string());
            }
            port_lines(p, rng, &mut lines);
        }
        for g in &self.groups {
            if g.inc_changed {
                lines.push(changed(format!("{}/Makefile.inc", g.dir), rng));
            }
        }
        // A few category Makefiles edited by hand (a comment, a SUBDIR order).
        for _ in 0..3 {
            touched_dirs.insert(rng.pick(CATEGORIES).0.to_string());
        }
        for d in &touched_dirs {
            lines.push(changed(format!("{d}/Makefile"), rng));
        }
        for f in INFRASTRUCTURE {
            lines.push(changed(f.to_string(), rng));
        }
        // Fill up with patches: most of them on a few big ports (browsers and
        // friends carry hundreds), the rest spread.
        let eligible: Vec<usize> = (0..self.ports.len())
            .filter(|&i| {
                let p = &self.ports[i];
                p.origin == Origin::Release
                    && matches!(p.touch, Touch::Update | Touch::Bump | Touch::PatchesOnly)
            })
            .collect();
        let big: Vec<usize> = eligible
            .iter()
            .copied()
            .filter(|_| rng.percent(3))
            .collect();
        while lines.len() < self.scale.lines && !eligible.is_empty() {
            let i = if !big.is_empty() && rng.percent(70) {
                *rng.pick(&big)
            } else {
                *rng.pick(&eligible)
            };
            let p = &mut self.ports[i];
            let f = p.new_patch_name(rng);
            let path = format!("{}/{f}", p.dir);
            match rng.below(10) {
                // A patch of the release changed on the branch.
                0..=5 => {
                    lines.push(changed(path, rng));
                    p.files.insert(f);
                }
                // A patch of the release dropped on the branch.
                6 => lines.push(removed(path, rng)),
                _ => {
                    lines.push(added(path));
                    p.files.insert(f);
                }
            }
        }
        self.lines = lines;
    }

    /// The `cvs rdiff -s` output.
    pub fn rdiff(&self) -> String {
        let mut s = String::with_capacity(self.lines.len() * 90);
        for l in &self.lines {
            l.write(&mut s);
        }
        s
    }

    /// The release's `make dump-vars` output, for tests/support/sqlports.rs.
    pub fn dump_vars(&self) -> String {
        let mut s = String::new();
        for p in self.ports.iter().filter(|p| p.origin != Origin::New) {
            let multi = p.subpackages.join(" ");
            let stem = p.name().to_lowercase();
            for (full, flavor, sub, pseudo) in p.dumped() {
                let fl: String = flavor
                    .split_whitespace()
                    .filter(|f| !f.starts_with("no_"))
                    .map(|f| format!("-{f}"))
                    .collect();
                let substem = match sub {
                    "" | "-main" => stem.clone(),
                    s => format!("{stem}{s}"),
                };
                let _ = writeln!(s, "{full}.COMMENT=synthetic port {}", p.dir);
                let _ = writeln!(s, "{full}.FULLPKGNAME={substem}-1.0{fl}");
                let _ = writeln!(s, "{full}.PKGSTEM={substem}");
                let _ = writeln!(s, "{full}.PKGSPEC={substem}-*");
                let _ = writeln!(s, "{full}.FLAVOR={flavor}");
                let _ = writeln!(s, "{full}.PSEUDO_FLAVOR={pseudo}");
                if !multi.is_empty() {
                    let _ = writeln!(s, "{full}.MULTI_PACKAGES={multi}");
                    let _ = writeln!(s, "{full}.SUBPACKAGE={sub}");
                }
            }
        }
        s
    }

    /// Aliases sqlports keeps beside the canonical paths: `(alias, canonical)`.
    pub fn aliases(&self) -> Vec<(String, String)> {
        let mut v = Vec::new();
        for p in self.ports.iter().filter(|p| p.origin != Origin::New) {
            if let Some(f) = p.default_flavor {
                v.push((format!("{},{f}", p.dir), p.dir.clone()));
                for (i, s) in p.subpackages.iter().enumerate() {
                    let canonical = if i == 0 {
                        p.dir.clone()
                    } else {
                        format!("{},{s}", p.dir)
                    };
                    v.push((format!("{},{f},{s}", p.dir), canonical));
                }
            }
            if let Some((a, b)) = p.pair {
                v.push((format!("{},{b},{a}", p.dir), format!("{},{a},{b}", p.dir)));
            }
        }
        v
    }

    /// Write the checkout under `root`.
    pub fn write_checkout(&self, root: &Path) -> Result<usize, String> {
        let mut files = 0;
        let write = |rel: &str, text: &str| -> Result<(), String> {
            if rel.starts_with('/') {
                return Err(format!("{rel}: not a path in the checkout"));
            }
            let path = root.join(rel);
            if let Some(d) = path.parent() {
                fs::create_dir_all(d).map_err(|e| format!("{}: {e}", d.display()))?;
            }
            fs::write(&path, text).map_err(|e| format!("{}: {e}", path.display()))
        };
        // Directories holding ports: the top, categories, groups.
        let mut subdirs: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for p in self.ports.iter().filter(|p| p.origin != Origin::Removed) {
            let mut child = p.dir.as_str();
            loop {
                let d = parent(child);
                let name = &child[if d.is_empty() { 0 } else { d.len() + 1 }..];
                subdirs
                    .entry(d.to_string())
                    .or_default()
                    .insert(name.to_string());
                if d.is_empty() {
                    break;
                }
                child = d;
            }
        }
        for (d, names) in &subdirs {
            let mut text = String::new();
            if !d.is_empty() {
                let _ = writeln!(text, "# $OpenBSD: Makefile,v 1.1 synthetic $\n");
            }
            for n in names {
                let _ = writeln!(text, "     SUBDIR += {n}");
            }
            text.push_str("\n.include <bsd.port.subdir.mk>\n");
            // (The top's is `Makefile`: `/Makefile` would be the file system's.)
            let makefile = if d.is_empty() {
                "Makefile".to_string()
            } else {
                format!("{d}/Makefile")
            };
            write(&makefile, &text)?;
            files += 1;
        }
        for g in self.groups.iter().filter(|g| g.makefile_inc) {
            write(
                &format!("{}/Makefile.inc", g.dir),
                &format!(
                    "# settings common to the ports under {}\nV ?= 1\nSITES ?= https://example.org/\n",
                    g.dir
                ),
            )?;
            files += 1;
        }
        for f in INFRASTRUCTURE {
            write(f, "# synthetic infrastructure file\n")?;
            files += 1;
        }
        for p in self.ports.iter().filter(|p| p.origin != Origin::Removed) {
            for f in &p.files {
                write(&format!("{}/{f}", p.dir), &port_file(p, f))?;
                files += 1;
            }
        }
        Ok(files)
    }

    /// The answer: what a correct list stage finds in this world.
    pub fn truth(&self) -> Truth {
        let mut t = Truth {
            ports: BTreeSet::new(),
            removed: BTreeSet::new(),
            full: BTreeSet::new(),
            through_inc: BTreeSet::new(),
            inc_changed: self
                .groups
                .iter()
                .filter(|g| g.inc_changed)
                .map(|g| g.dir.clone())
                .collect(),
        };
        for p in &self.ports {
            if p.origin == Origin::Removed {
                t.removed.insert(p.dir.clone());
                continue;
            }
            let below_inc = t
                .inc_changed
                .iter()
                .any(|g| p.dir.starts_with(&format!("{g}/")));
            if p.touch == Touch::Untouched && !below_inc {
                continue;
            }
            if p.touch == Touch::Untouched {
                t.through_inc.insert(p.dir.clone());
            }
            t.ports.insert(p.dir.clone());
            match p.origin {
                Origin::New => {
                    t.full.insert(p.dir.clone());
                }
                _ => t.full.extend(p.dumped().into_iter().map(|d| d.0)),
            }
        }
        t
    }

    /// Counts for the report.
    pub fn summary(&self) -> String {
        let count = |o: Origin| self.ports.iter().filter(|p| p.origin == o).count();
        let multi = self
            .ports
            .iter()
            .filter(|p| !p.subpackages.is_empty())
            .count();
        let flavored = self.ports.iter().filter(|p| !p.flavors.is_empty()).count();
        format!(
            "{} ports in the checkout ({} new on the branch), {} removed; {} with flavors, {} multi-packages",
            count(Origin::Release) + count(Origin::New),
            count(Origin::New),
            count(Origin::Removed),
            flavored,
            multi
        )
    }
}

fn changed(path: String, rng: &mut Rng) -> RdiffLine {
    let from = base_rev(rng);
    let to = format!("{from}.2.{}", rng.between(1, 4));
    RdiffLine {
        path,
        what: What::Changed { from, to },
    }
}

fn added(path: String) -> RdiffLine {
    RdiffLine {
        path,
        what: What::New {
            rev: "1.1.2.1".into(),
        },
    }
}

fn removed(path: String, rng: &mut Rng) -> RdiffLine {
    RdiffLine {
        path,
        what: What::Removed { rev: base_rev(rng) },
    }
}

/// The rdiff lines of one port, by what happened to it; the port's files follow.
fn port_lines(p: &mut Port, rng: &mut Rng, lines: &mut Vec<RdiffLine>) {
    let dir = p.dir.clone();
    let at = |f: &str| format!("{dir}/{f}");
    match p.touch {
        Touch::Untouched => {}
        Touch::Whole => {
            for f in &p.files {
                lines.push(if p.origin == Origin::New {
                    added(at(f))
                } else {
                    removed(at(f), rng)
                });
            }
        }
        Touch::Update => {
            lines.push(changed(at("Makefile"), rng));
            lines.push(changed(at("distinfo"), rng));
            let n = rng.between(0, 3);
            patch_lines(p, rng, lines, n);
            if rng.percent(40) {
                let plists = p.files_under("pkg/PLIST");
                lines.push(changed(at(rng.pick::<String>(&plists)), rng));
            }
            if p.files_makefile_changed {
                lines.push(changed(at("files/Makefile"), rng));
            }
        }
        Touch::Bump => {
            lines.push(changed(at("Makefile"), rng));
            let n = rng.between(1, 2);
            patch_lines(p, rng, lines, n);
        }
        Touch::PatchesOnly => {
            let n = rng.between(1, 3);
            patch_lines(p, rng, lines, n);
        }
        Touch::PkgOnly => {
            let pkg = p.files_under("pkg/");
            for _ in 0..rng.between(1, 2) {
                lines.push(changed(at(rng.pick::<String>(&pkg)), rng));
            }
        }
        Touch::FilesOnly => {
            if p.files_makefile_changed {
                lines.push(changed(at("files/Makefile"), rng));
            } else {
                let files: Vec<String> = p
                    .files_under("files/")
                    .into_iter()
                    .filter(|f| f != "files/Makefile")
                    .collect();
                lines.push(changed(at(rng.pick::<String>(&files)), rng));
            }
        }
        Touch::DistinfoOnly => lines.push(changed(at("distinfo"), rng)),
    }
}

/// `n` patch changes: changed, removed (gone from the checkout) or new.
fn patch_lines(p: &mut Port, rng: &mut Rng, lines: &mut Vec<RdiffLine>, n: usize) {
    let dir = p.dir.clone();
    let path = |f: &str| format!("{dir}/{f}");
    for _ in 0..n {
        let existing = p.files_under("patches/");
        match rng.below(10) {
            0..=5 if !existing.is_empty() => {
                let f = rng.pick::<String>(&existing);
                lines.push(changed(path(f), rng));
            }
            6 if !existing.is_empty() => {
                let f = rng.pick(&existing).clone();
                lines.push(removed(path(&f), rng));
                p.files.remove(&f);
            }
            _ => {
                let f = p.new_patch_name(rng);
                lines.push(added(path(&f)));
                p.files.insert(f);
            }
        }
    }
}

/// A new directory name under `under`, not yet taken and not one of the traps.
fn unique_name(rng: &mut Rng, under: &str, taken: &BTreeSet<String>) -> String {
    let pw: Vec<usize> = PREFIXES.iter().map(|p| p.1).collect();
    let sw: Vec<usize> = SUFFIXES.iter().map(|p| p.1).collect();
    loop {
        let prefix = PREFIXES[rng.weighted(&pw)].0;
        let mut name = String::from(prefix);
        let n = rng.between(1, 3);
        for i in 0..n {
            let s = rng.pick(SYLLABLES);
            if prefix == "p5-" && i > 0 {
                // Perl modules keep their capitals: p5-Text-CSV.
                name.push('-');
                let mut c = s.chars();
                if let Some(f) = c.next() {
                    name.push(f.to_ascii_uppercase());
                    name.push_str(c.as_str());
                }
            } else {
                name.push_str(s);
            }
        }
        name.push_str(SUFFIXES[rng.weighted(&sw)].0);
        let dir = format!("{under}/{name}");
        if !taken.contains(&dir) && !LIKE_TRAPS.iter().any(|(a, b)| dir == *a || dir == *b) {
            return dir;
        }
    }
}

/// Flavors and subpackages.
fn shape(p: &mut Port, rng: &mut Rng) {
    if p.dir.starts_with("lang/php/") {
        p.subpackages = PHP_SUBPACKAGES.to_vec();
        return;
    }
    if rng.percent(25) {
        let n = rng.between(1, 3);
        while p.flavors.len() < n {
            let f = *rng.pick(FLAVORS);
            if !p.flavors.contains(&f) {
                p.flavors.push(f);
            }
        }
        let real: Vec<&'static str> = p
            .flavors
            .iter()
            .copied()
            .filter(|f| !f.starts_with("no_"))
            .collect();
        if !real.is_empty() && rng.percent(30) {
            p.default_flavor = Some(*rng.pick(&real));
        }
        let rest: Vec<&'static str> = p
            .flavors
            .iter()
            .copied()
            .filter(|f| Some(*f) != p.default_flavor)
            .collect();
        if rest.len() >= 2 && rng.percent(40) {
            let (a, b) = (rest[0].min(rest[1]), rest[0].max(rest[1]));
            p.pair = Some((a, b));
        }
    }
    if rng.percent(30) {
        p.subpackages.push("-main");
        let n = rng.between(1, 4);
        while p.subpackages.len() <= n {
            let s = *rng.pick(SUBPACKAGES);
            if !p.subpackages.contains(&s) {
                p.subpackages.push(s);
            }
        }
    }
}

/// The files of a port in the release.
fn base_files(p: &mut Port, rng: &mut Rng) {
    p.files.insert("Makefile".into());
    p.files.insert("distinfo".into());
    if p.subpackages.is_empty() {
        p.files.insert("pkg/DESCR".into());
        p.files.insert("pkg/PLIST".into());
    } else {
        for s in &p.subpackages {
            p.files.insert(format!("pkg/DESCR{s}"));
            p.files.insert(format!("pkg/PLIST{s}"));
        }
    }
    if rng.percent(5) {
        p.files.insert("pkg/README".into());
    }
    for _ in 0..rng.between(0, 4) {
        let f = p.new_patch_name(rng);
        p.files.insert(f);
    }
    if rng.percent(12) {
        p.files.insert(format!("files/{}.rc", p.name()));
        if rng.percent(30) {
            p.files.insert("files/config.sample".into());
        }
    }
}

/// The text of one file of a port.
fn port_file(p: &Port, f: &str) -> String {
    match f {
        "Makefile" => {
            let mut s = String::new();
            let cat = p.dir.split('/').next().unwrap_or("misc");
            let _ = writeln!(s, "COMMENT =\tsynthetic port {}\n", p.dir);
            let _ = writeln!(s, "DISTNAME =\t{}-1.0", p.name().to_lowercase());
            let _ = writeln!(s, "CATEGORIES =\t{cat}\n");
            if !p.flavors.is_empty() {
                let _ = writeln!(s, "FLAVORS =\t{}", p.flavors.join(" "));
                let _ = writeln!(s, "FLAVOR ?=\t{}\n", p.default_flavor.unwrap_or(""));
            }
            if !p.subpackages.is_empty() {
                let _ = writeln!(s, "MULTI_PACKAGES =\t{}\n", p.subpackages.join(" "));
            }
            s.push_str(".include <bsd.port.mk>\n");
            s
        }
        "distinfo" => {
            let n = p.name().to_lowercase();
            format!("SHA256 ({n}-1.0.tar.gz) = c3ludGhldGlj\nSIZE ({n}-1.0.tar.gz) = 12345\n")
        }
        // A port's own Makefile for its sources, copied into WRKSRC: not a port.
        "files/Makefile" => format!(
            "PROG =\t{}\nSRCS =\tmain.c\n\n.include <bsd.prog.mk>\n",
            p.name()
        ),
        f if f.starts_with("patches/") => {
            format!("Index: x\n--- x.orig\n+++ x\n@@ -1 +1 @@\n-{f}\n+{f} fixed\n")
        }
        f => format!("{} {f}\n", p.dir),
    }
}
