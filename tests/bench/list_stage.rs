//! The list-stage benchmark: portflow's `ports-delta | pkgpath-expand` against the
//! shell list step of the -stable build scripts it replaces
//! (tests/bench/shell-list-step.sh), on a generated world: a checkout of 10,000
//! ports, the release's sqlports and 100,000 `cvs rdiff -s` lines.
//!
//! `cargo bench --bench list_stage` runs it (release build; cargo builds the two
//! tools first and hands their paths over in CARGO_BIN_EXE_*).  It prints the wall
//! times, the ratios and the peak memory, checks the goals (list stage >= 20x the
//! shell, ports-delta alone at least as fast as grep|sed|sort|awk, peak memory
//! < 100 MiB), then how the two lists differ, with checks; it exits non-zero when a
//! goal or a check fails.  Without `--bench` (`cargo test --benches`) it runs a
//! small world and enforces the checks only.  The quick measurements are repeated
//! up to 5 times (median), within 15 s each; the shell's sqlite3 loop runs once.
//! PORTFLOW_BENCH_KEEP=1 keeps the generated files.
//!
//! Needs GNU time at /usr/bin/time (peak memory, `apt-get install time`), sqlite3
//! (`apt-get install sqlite3`), sh, grep, sed, sort and awk.

#[path = "list_stage/compare.rs"]
mod compare;
#[path = "../support/sqlports.rs"]
mod sqlports;
#[path = "list_stage/world.rs"]
mod world;

#[path = "common.rs"]
mod common;
use common::{gnu_time_works, in_path, mib, peak_kib, secs, TIME};
use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use rusqlite::{params, Connection};

use compare::{num, Checks, Portflow, Shell};
use world::{Scale, World};

const SEED: u64 = 0x0000_7807_5EED_0001;

const FULL: Scale = Scale {
    ports: 10_000,
    new: 100,
    removed: 120,
    lines: 100_000,
};
const SMOKE: Scale = Scale {
    ports: 600,
    new: 8,
    removed: 8,
    lines: 6_000,
};

/// Time spent repeating one measurement, at most (then the runs made so far count).
const BUDGET: Duration = Duration::from_secs(15);

/// Goals.
const MIN_SPEEDUP: f64 = 20.0;
const MAX_RSS_KIB: u64 = 100 * 1024;

fn main() -> ExitCode {
    common::bench_main("list_stage", run)
}

/// The programs the benchmark runs.
struct Tools {
    ports_delta: PathBuf,
    pkgpath_expand: PathBuf,
    script: PathBuf,
}

fn tools(scratch: &Path) -> Result<Tools, String> {
    let mut missing = Vec::new();
    for (program, package) in [
        ("sqlite3", "sqlite3"),
        ("sh", "dash"),
        ("grep", "grep"),
        ("sed", "sed"),
        ("sort", "coreutils"),
        ("awk", "mawk"),
    ] {
        if !in_path(program) {
            missing.push(format!("{program} (apt-get install {package})"));
        }
    }
    // Peak memory comes from GNU time's %M: check that it is there and is GNU's.
    if !gnu_time_works(scratch) {
        missing.push(format!("GNU time at {TIME} (apt-get install time)"));
    }
    if !missing.is_empty() {
        return Err(format!("missing programs: {}", missing.join(", ")));
    }
    let t = Tools {
        ports_delta: PathBuf::from(env!("CARGO_BIN_EXE_ports-delta")),
        pkgpath_expand: PathBuf::from(env!("CARGO_BIN_EXE_pkgpath-expand")),
        script: Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/bench/shell-list-step.sh"),
    };
    for p in [&t.ports_delta, &t.pkgpath_expand, &t.script] {
        if !p.is_file() {
            return Err(format!(
                "{} not found: run the benchmark through `cargo bench --bench list_stage`",
                p.display()
            ));
        }
    }
    Ok(t)
}

/// The files of one run, in a temporary directory.
struct Work {
    root: PathBuf,
}

impl Work {
    fn path(&self, name: &str) -> PathBuf {
        self.root.join(name)
    }
}

fn create(p: &Path) -> Result<File, String> {
    File::create(p).map_err(|e| format!("{}: {e}", p.display()))
}

fn open(p: &Path) -> Result<File, String> {
    File::open(p).map_err(|e| format!("{}: {e}", p.display()))
}

/// `program` run under GNU time, which writes its peak memory to `mem`.
fn under_time(program: &Path, mem: &Path) -> Command {
    let mut c = Command::new(TIME);
    c.args(["-f", "%M", "-o"]).arg(mem).arg(program);
    for v in ["PORTSDIR", "SQLPORTS"] {
        c.env_remove(v);
    }
    c
}

fn spawn(c: &mut Command, what: &str) -> Result<Child, String> {
    c.spawn().map_err(|e| format!("cannot run {what}: {e}"))
}

/// Wait for a child; fail with the tail of its stderr unless it exits 0.
fn wait(mut child: Child, what: &str, stderr: &Path) -> Result<(), String> {
    let st = child
        .wait()
        .map_err(|e| format!("waiting for {what}: {e}"))?;
    if st.success() {
        return Ok(());
    }
    let err = fs::read_to_string(stderr).unwrap_or_default();
    let tail: Vec<&str> = err.lines().rev().take(5).collect();
    Err(format!(
        "{what} failed ({st}): {}",
        tail.into_iter().rev().collect::<Vec<_>>().join(" / ")
    ))
}

/// One run of portflow.
struct Sample {
    wall: Duration,
    delta_kib: u64,
    expand_kib: Option<u64>,
}

/// `ports-delta --ports-dir TREE < rdiff [| pkgpath-expand --db DB] > out`.
fn portflow(t: &Tools, w: &Work, expand: bool, tree: bool) -> Result<Sample, String> {
    let (delta_mem, expand_mem) = (w.path("ports-delta.rss"), w.path("pkgpath-expand.rss"));
    let (delta_err, expand_err) = (w.path("ports-delta.err"), w.path("pkgpath-expand.err"));
    let out = w.path(match (expand, tree) {
        (true, _) => "portflow.jsonl",
        (false, true) => "ports-delta.jsonl",
        (false, false) => "ports-delta-notree.jsonl",
    });
    let start = Instant::now();
    let mut delta = under_time(&t.ports_delta, &delta_mem);
    if tree {
        delta.arg("--ports-dir").arg(w.path("ports"));
    }
    delta
        .stdin(open(&w.path("rdiff.txt"))?)
        .stderr(create(&delta_err)?);
    if expand {
        delta.stdout(Stdio::piped());
    } else {
        delta.stdout(create(&out)?);
    }
    let mut delta = spawn(&mut delta, "ports-delta")?;
    let exp = match delta.stdout.take() {
        Some(pipe) => Some(spawn(
            under_time(&t.pkgpath_expand, &expand_mem)
                .arg("--db")
                .arg(w.path("sqlports"))
                .stdin(pipe)
                .stdout(create(&out)?)
                .stderr(create(&expand_err)?),
            "pkgpath-expand",
        )?),
        None => None,
    };
    wait(delta, "ports-delta", &delta_err)?;
    if let Some(exp) = exp {
        wait(exp, "pkgpath-expand", &expand_err)?;
    }
    let wall = start.elapsed();
    Ok(Sample {
        wall,
        delta_kib: peak_kib(&delta_mem)?,
        expand_kib: if expand {
            Some(peak_kib(&expand_mem)?)
        } else {
            None
        },
    })
}

/// One half of the shell list step: `sh shell-list-step.sh <args> < stdin > out`.
fn shell(
    t: &Tools,
    w: &Work,
    args: &[&Path],
    stdin: Option<&Path>,
    out: &str,
) -> Result<Duration, String> {
    let err = w.path("shell.err");
    let mut c = Command::new("sh");
    c.arg(&t.script)
        .args(args)
        .stdout(create(&w.path(out))?)
        .stderr(create(&err)?);
    if let Some(p) = stdin {
        c.stdin(open(p)?);
    }
    let start = Instant::now();
    let child = spawn(&mut c, "sh shell-list-step.sh")?;
    wait(child, "shell-list-step.sh", &err)?;
    Ok(start.elapsed())
}

/// Run a measurement `runs` times, or fewer when it is slow: no new run starts
/// once [`BUDGET`] went into it (a slow tool must not stretch the benchmark).
fn repeat<T>(runs: usize, mut f: impl FnMut() -> Result<T, String>) -> Result<Vec<T>, String> {
    let start = Instant::now();
    let mut v = Vec::new();
    while v.len() < runs && (v.is_empty() || start.elapsed() < BUDGET) {
        v.push(f()?);
    }
    Ok(v)
}

/// The median wall time of some runs, and how it was had.
fn median<T>(runs: &[T], wall: impl Fn(&T) -> Duration) -> (Duration, String) {
    let mut v: Vec<Duration> = runs.iter().map(wall).collect();
    v.sort();
    let of = match v.len() {
        1 => "1 run".to_string(),
        n => format!("median of {n} runs"),
    };
    (v[v.len() / 2], of)
}

/// Add the aliases to the database; return (paths, aliases) in it.
fn add_aliases(db: &Path, aliases: &[(String, String)]) -> Result<(usize, usize), String> {
    let e = |e: rusqlite::Error| format!("{}: {e}", db.display());
    let mut conn = Connection::open(db).map_err(e)?;
    let tx = conn.transaction().map_err(e)?;
    {
        let mut st = tx
            .prepare(
                "INSERT INTO _Paths (FullPkgPath, PkgPath, Canonical)
                 SELECT ?1, d.Id, c.Id FROM _Paths d, _Paths c
                  WHERE d.FullPkgPath = ?2 AND c.FullPkgPath = ?3",
            )
            .map_err(e)?;
        for (alias, canonical) in aliases {
            let dir = alias.split(',').next().unwrap_or(alias);
            let n = st.execute(params![alias, dir, canonical]).map_err(e)?;
            if n != 1 {
                return Err(format!("alias {alias}: {canonical} is not in the database"));
            }
        }
    }
    tx.commit().map_err(e)?;
    let count = |sql: &str| -> Result<usize, String> {
        conn.query_row(sql, [], |r| r.get::<_, i64>(0))
            .map(|n| n as usize)
            .map_err(e)
    };
    Ok((
        count("SELECT count(*) FROM _Paths")?,
        count("SELECT count(*) FROM _Paths WHERE Canonical <> Id")?,
    ))
}

fn run(bench: bool) -> Result<Vec<String>, String> {
    let (scale, runs) = if bench { (FULL, 5) } else { (SMOKE, 1) };
    let tmp = tempfile::Builder::new()
        .prefix("portflow-bench.")
        .tempdir()
        .map_err(|e| format!("cannot make a temporary directory: {e}"))?;
    let w = Work {
        root: tmp.path().to_path_buf(),
    };
    let _tmp = if std::env::var_os("PORTFLOW_BENCH_KEEP").is_some_and(|v| v != "0") {
        eprintln!("list_stage: keeping {}", w.root.display());
        let _ = tmp.keep();
        None
    } else {
        Some(tmp)
    };
    let t = tools(&w.root)?;

    println!(
        "portflow list-stage benchmark ({})",
        if bench {
            "cargo bench --bench list_stage"
        } else {
            "smoke run: small world, goals not enforced; `cargo bench --bench list_stage` for the real one"
        }
    );
    let truth = make_world(&w, scale)?;
    let tm = measure(&t, &w, runs)?;
    tm.print();
    let goals = tm.goals(bench);

    let pf = Portflow::read(&w.path("portflow.jsonl"))?;
    let sh = Shell::read(
        &w.path("shell-dirs.txt"),
        &w.path("shell.txt"),
        &w.path("sqlports"),
    )?;
    let mut checks = Checks::default();
    compare::compare(&sh, &pf, &truth, &mut checks);

    let mut failed = checks.failed;
    if bench {
        failed.extend(goals.failed);
    }
    Ok(failed)
}

/// Generate the world into `w`: the checkout, rdiff.txt, the sqlports database.
/// Print what it holds and return the answer.
fn make_world(w: &Work, scale: Scale) -> Result<world::Truth, String> {
    eprintln!("list_stage: generating the world ...");
    let start = Instant::now();
    let world = World::generate(SEED, scale);
    let files = world.write_checkout(&w.path("ports"))?;
    fs::write(w.path("rdiff.txt"), world.rdiff()).map_err(|e| format!("rdiff.txt: {e}"))?;
    let db_start = Instant::now();
    let dumped = sqlports::build(&w.path("sqlports"), &world.dump_vars())?;
    let db_build = db_start.elapsed();
    let (paths, aliases) = add_aliases(&w.path("sqlports"), &world.aliases())?;
    let truth = world.truth();

    println!(
        "world (seed {SEED:#x}), generated in {}",
        secs(start.elapsed())
    );
    println!("  {}", world.summary());
    println!(
        "  checkout: {} files; {} cvs rdiff -s lines",
        num(files),
        num(world.lines.len())
    );
    println!(
        "  sqlports: {} dumped paths, {} _Paths rows of which {} aliases (built in {} by tests/support/sqlports.rs)",
        num(dumped),
        num(paths),
        num(aliases),
        secs(db_build)
    );
    println!(
        "  answer: {} ports to build ({} through a Makefile.inc only), {} full pkgpaths, {} removed",
        num(truth.ports.len()),
        num(truth.through_inc.len()),
        num(truth.full.len()),
        num(truth.removed.len())
    );
    println!();
    Ok(truth)
}

/// What the runs measured.
struct Timings {
    /// grep | sed | sort | awk, and how it was had.
    text: (Duration, String),
    /// The sqlite3 loop (one run) and the directories it went over.
    sql: Duration,
    dirs: usize,
    /// ports-delta alone, with the checkout (as the list stage runs it).
    alone: (Duration, String),
    /// ports-delta alone without the checkout: path rules only, like the shell,
    /// which reads no file of the tree either.
    alone_notree: (Duration, String),
    /// ports-delta | pkgpath-expand.
    stage: (Duration, String),
    /// Peak memory, KiB.
    delta_kib: u64,
    expand_kib: u64,
}

/// Time both list steps: the quick runs repeated, the shell's sqlite3 loop once.
fn measure(t: &Tools, w: &Work, runs: usize) -> Result<Timings, String> {
    let (rdiff, db, dirs) = (
        w.path("rdiff.txt"),
        w.path("sqlports"),
        w.path("shell-dirs.txt"),
    );
    eprintln!("list_stage: timing grep|sed|sort|awk ...");
    let text = repeat(runs, || {
        shell(t, w, &[Path::new("dirs"), &rdiff], None, "shell-dirs.txt")
    })?;
    eprintln!("list_stage: timing ports-delta ...");
    let alone = repeat(runs, || portflow(t, w, false, true))?;
    eprintln!("list_stage: timing ports-delta without the checkout ...");
    let alone_notree = repeat(runs, || portflow(t, w, false, false))?;
    eprintln!("list_stage: timing ports-delta | pkgpath-expand ...");
    let stage = repeat(runs, || portflow(t, w, true, true))?;
    let ndirs = fs::read_to_string(&dirs)
        .map_err(|e| format!("{}: {e}", dirs.display()))?
        .lines()
        .count();
    eprintln!("list_stage: timing the shell's {ndirs} sqlite3 runs (the slow part, once) ...");
    let sql = shell(t, w, &[Path::new("expand"), &db], Some(&dirs), "shell.txt")?;
    Ok(Timings {
        text: median(&text, |d| *d),
        sql,
        dirs: ndirs,
        alone: median(&alone, |s| s.wall),
        alone_notree: median(&alone_notree, |s| s.wall),
        stage: median(&stage, |s| s.wall),
        delta_kib: alone
            .iter()
            .chain(&stage)
            .map(|s| s.delta_kib)
            .max()
            .unwrap_or(0),
        expand_kib: stage.iter().filter_map(|s| s.expand_kib).max().unwrap_or(0),
    })
}

impl Timings {
    fn print(&self) {
        let per = self.sql.as_secs_f64() * 1000.0 / self.dirs.max(1) as f64;
        println!("wall time");
        println!(
            "  shell     grep | sed | sort -u | awk             {:>10}   {}, {} directories",
            secs(self.text.0),
            self.text.1,
            num(self.dirs)
        );
        println!(
            "  shell     sqlite3 ... LIKE 'dir%', per directory {:>10}   1 run, {} processes, {per:.1} ms each",
            secs(self.sql),
            num(self.dirs)
        );
        println!(
            "  shell     list step, total                       {:>10}",
            secs(self.text.0 + self.sql)
        );
        println!(
            "  portflow  ports-delta alone, reading the tree    {:>10}   {}",
            secs(self.alone.0),
            self.alone.1
        );
        println!(
            "  portflow  ports-delta alone, path rules only     {:>10}   {}",
            secs(self.alone_notree.0),
            self.alone_notree.1
        );
        println!(
            "  portflow  ports-delta | pkgpath-expand           {:>10}   {}",
            secs(self.stage.0),
            self.stage.1
        );
        println!("peak memory (max RSS over the runs, GNU time %M)");
        println!("  ports-delta     {:>10}", mib(self.delta_kib));
        println!("  pkgpath-expand  {:>10}", mib(self.expand_kib));
        println!();
    }

    /// Print the ratios against the goals.
    fn goals(&self, enforced: bool) -> Checks {
        let mut goals = Checks::default();
        let speedup = (self.text.0 + self.sql).as_secs_f64() / self.stage.0.as_secs_f64();
        // Like for like: grep|sed|sort|awk reads no file of the tree, and
        // neither does ports-delta without --ports-dir.  With the tree it also
        // opens every changed port's Makefile (what finds Makefile.inc siblings
        // and removed ports); that figure is printed beside it.
        let text_ratio = self.text.0.as_secs_f64() / self.alone_notree.0.as_secs_f64();
        let tree_ratio = self.text.0.as_secs_f64() / self.alone.0.as_secs_f64();
        println!(
            "ratios and goals{}",
            if enforced {
                ""
            } else {
                " (not enforced in a smoke run)"
            }
        );
        goals.check(
            speedup >= MIN_SPEEDUP,
            format!(
                "shell list step / portflow list stage = {speedup:.1}x (goal >= {MIN_SPEEDUP}x)"
            ),
        );
        goals.check(
            text_ratio >= 1.0,
            format!(
                "grep|sed|sort|awk / ports-delta alone (path rules, no tree read, like the shell) = {text_ratio:.2}x (goal >= 1x)"
            ),
        );
        println!(
            "  info  grep|sed|sort|awk / ports-delta alone reading the checkout = {tree_ratio:.2}x (it opens the Makefile of every changed port)"
        );
        for (tool, kib) in [
            ("ports-delta", self.delta_kib),
            ("pkgpath-expand", self.expand_kib),
        ] {
            goals.check(
                kib < MAX_RSS_KIB,
                format!(
                    "peak memory of {tool}: {} (goal < {})",
                    mib(kib),
                    mib(MAX_RSS_KIB)
                ),
            );
        }
        println!();
        goals
    }
}
