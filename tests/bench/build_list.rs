//! The build-list overhead benchmark: build-list over a list of 2,000 up-to-date
//! ports against plain `env SUBDIRLIST=... make package BULK=yes` over the same list,
//! on a generated tree that uses the sample tree's infrastructure/ (bmake).
//!
//! Nothing is built: every package is there (a package file that exists is up to
//! date, as with OpenBSD's make), so the time
//! is make walking the list (a sub-make per entry, the up-to-date check) plus, for
//! build-list, what it adds: reading make's output through a pipe, one log file
//! and one synced journal line per entry, a record per entry on stdout.  The goal:
//! build-list takes at most 1.25 times the time of plain make (it runs one make
//! over the whole list, never one per entry).
//!
//! `cargo bench --bench build_list` runs it (release build; cargo hands over the
//! path of build-list in CARGO_BIN_EXE_build-list).  It prints the wall times, the
//! ratio and the peak memory, checks that every entry was up to date and that
//! build-list ran make once, and exits non-zero when the goal or a check fails.
//! Without `--bench` (`cargo test --benches`) it runs 100 ports once and enforces
//! the checks only.  PORTFLOW_BENCH_KEEP=1 keeps the generated files.
//!
//! Needs bmake (`apt-get install bmake`) and GNU time at /usr/bin/time
//! (`apt-get install time`).

#[path = "common.rs"]
mod common;
use common::{err, in_path, mib, secs, TIME};
use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant, SystemTime};

const FULL_PORTS: usize = 2_000;
const FULL_RUNS: usize = 3;
const SMOKE_PORTS: usize = 100;
const PORTS_PER_CATEGORY: usize = 100;
const ARCH: &str = "amd64";

/// Goal: build-list's wall time over plain make's, at most.
const MAX_RATIO: f64 = 1.25;

fn main() -> ExitCode {
    common::bench_main("build_list", run)
}

fn write(p: &Path, text: &str) -> Result<(), String> {
    if let Some(d) = p.parent() {
        fs::create_dir_all(d).map_err(err(d.display()))?;
    }
    fs::write(p, text).map_err(err(p.display()))
}

fn create(p: &Path) -> Result<File, String> {
    File::create(p).map_err(err(p.display()))
}

/// Set the modification time of a file or directory.
fn touch(p: &Path, t: SystemTime) -> Result<(), String> {
    File::open(p)
        .and_then(|f| f.set_modified(t))
        .map_err(err(p.display()))
}

/// Copy a directory tree (cp -a).
fn copy_tree(from: &Path, to: &Path) -> Result<(), String> {
    let st = Command::new("cp")
        .arg("-a")
        .arg(from)
        .arg(to)
        .status()
        .map_err(err("cp"))?;
    if st.success() {
        Ok(())
    } else {
        Err(format!("cp -a {} {} failed", from.display(), to.display()))
    }
}

/// The generated world: a tree of `n` trivial ports, their packages up to date.
struct World {
    root: PathBuf,
    tree: PathBuf,
    repository: PathBuf,
    list: PathBuf,
    n: usize,
}

const GROUP_MK: &str = "SUBDIR =\n.include <bsd.port.subdir.mk>\n";

impl World {
    fn generate(root: &Path, n: usize) -> Result<World, String> {
        let tree = root.join("ports");
        let repository = root.join("packages");
        let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/ports");
        fs::create_dir_all(&tree).map_err(err(tree.display()))?;
        copy_tree(
            &fixture.join("infrastructure"),
            &tree.join("infrastructure"),
        )?;
        write(&tree.join("Makefile"), GROUP_MK)?;
        let all = repository.join(ARCH).join("all");
        let ftp = repository.join(ARCH).join("ftp");
        fs::create_dir_all(&all).map_err(err(all.display()))?;
        fs::create_dir_all(&ftp).map_err(err(ftp.display()))?;
        // The ports are a day older than their packages.
        let old = SystemTime::now() - Duration::from_secs(86_400);
        let mut list = String::new();
        let mut categories = Vec::new();
        for i in 0..n {
            let cat = format!("bench{:02}", i / PORTS_PER_CATEGORY);
            if i % PORTS_PER_CATEGORY == 0 {
                write(&tree.join(&cat).join("Makefile"), GROUP_MK)?;
                categories.push(tree.join(&cat));
            }
            let name = format!("p{i:04}");
            let dir = tree.join(&cat).join(&name);
            write(
                &dir.join("Makefile"),
                &format!(
                    "COMMENT =\tbenchmark port {i}\n\nDISTNAME =\t{name}-1.0\nDISTFILES =\n\nPERMIT_PACKAGE =\tYes\n\n.include <bsd.port.mk>\n"
                ),
            )?;
            write(
                &dir.join("pkg/PLIST"),
                &format!("share/doc/{name}/\nshare/doc/{name}/README\n"),
            )?;
            write(
                &dir.join("pkg/DESCR"),
                "A port that only exists to be listed.\n",
            )?;
            for p in [
                dir.join("Makefile"),
                dir.join("pkg/PLIST"),
                dir.join("pkg/DESCR"),
                dir.join("pkg"),
                dir.clone(),
            ] {
                touch(&p, old)?;
            }
            // The package: up to date by the tree's rule (it exists; the port is
            // older all the same, as on a host), linked into ftp/ as make would.
            let pkg = all.join(format!("{name}-1.0.tgz"));
            write(&pkg, &format!("{name}-1.0 package stand-in\n"))?;
            fs::hard_link(&pkg, ftp.join(format!("{name}-1.0.tgz"))).map_err(err(pkg.display()))?;
            list.push_str(&format!("{cat}/{name}\n"));
        }
        for c in categories {
            touch(&c, old)?;
        }
        let list_path = root.join("list");
        write(&list_path, &list)?;
        Ok(World {
            root: root.to_path_buf(),
            tree,
            repository,
            list: list_path,
            n,
        })
    }

    fn makesyspath(&self) -> PathBuf {
        self.tree.join("infrastructure/mk")
    }
}

/// What GNU time wrote with `-f "%M %U %S" -o file` (its last line): the peak
/// memory in KiB and the CPU time (user + system, the command and every process
/// it waited for).
fn usage(file: &Path) -> Result<(u64, Duration), String> {
    let text = fs::read_to_string(file).map_err(err(file.display()))?;
    let last = text
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("");
    let bad = || format!("{}: no usage figures in {text:?}", file.display());
    let mut f = last.split_whitespace();
    let kib: u64 = f.next().and_then(|x| x.parse().ok()).ok_or_else(bad)?;
    let mut cpu = 0.0f64;
    for _ in 0..2 {
        cpu += f
            .next()
            .and_then(|x| x.parse::<f64>().ok())
            .ok_or_else(bad)?;
    }
    Ok((kib, Duration::from_secs_f64(cpu.max(0.0))))
}

/// A command run under GNU time, in the tree, with the environment cleared of
/// what the tools read.
fn timed(w: &World, program: &Path, mem: &Path) -> Command {
    let mut c = Command::new(TIME);
    c.args(["-f", "%M %U %S", "-o"]).arg(mem).arg(program);
    for v in [
        "PORTSDIR",
        "MAKE",
        "PACKAGE_REPOSITORY",
        "MACHINE_ARCH",
        "MAKEFLAGS",
        "MFLAGS",
    ] {
        c.env_remove(v);
    }
    c.env("MAKESYSPATH", w.makesyspath());
    c.current_dir(&w.tree);
    c
}

struct Sample {
    wall: Duration,
    cpu: Duration,
    kib: u64,
}

fn wait_ok(mut c: Command, what: &str, stderr: &Path) -> Result<Duration, String> {
    let start = Instant::now();
    let st = c.status().map_err(err(format!("cannot run {what}")))?;
    let wall = start.elapsed();
    if st.success() {
        return Ok(wall);
    }
    let text = fs::read_to_string(stderr).unwrap_or_default();
    let tail: Vec<&str> = text.lines().rev().take(5).collect();
    Err(format!(
        "{what} failed ({st}): {}",
        tail.into_iter().rev().collect::<Vec<_>>().join(" / ")
    ))
}

/// `env SUBDIRLIST=list REPORT_PROBLEM_LOGFILE=... make package BULK=yes > log 2>&1`
fn plain_make(w: &World, run: usize) -> Result<Sample, String> {
    let mem = w.root.join(format!("make-{run}.rss"));
    let log = w.root.join(format!("make-{run}.log"));
    let problems = w.root.join(format!("make-{run}.problems"));
    let out = create(&log)?;
    let err2 = out.try_clone().map_err(err(log.display()))?;
    let mut c = timed(w, Path::new("bmake"), &mem);
    c.env("SUBDIRLIST", &w.list)
        .env("REPORT_PROBLEM_LOGFILE", &problems)
        .arg("package")
        .arg("BULK=yes")
        .arg(format!("PACKAGE_REPOSITORY={}", w.repository.display()))
        .arg(format!("MACHINE_ARCH={ARCH}"))
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err2);
    let wall = wait_ok(c, "bmake package", &log)?;
    let (kib, cpu) = usage(&mem)?;
    Ok(Sample { wall, cpu, kib })
}

/// `build-list --batch bench-<run> ... list > records 2> errors`
fn build_list(w: &World, program: &Path, run: usize) -> Result<Sample, String> {
    let mem = w.root.join(format!("build-list-{run}.rss"));
    let records = w.root.join(format!("build-list-{run}.jsonl"));
    let errors = w.root.join(format!("build-list-{run}.err"));
    let mut c = timed(w, program, &mem);
    c.arg("--ports-dir")
        .arg(&w.tree)
        .args(["--make", "bmake", "--arch", ARCH])
        .arg("--repository")
        .arg(&w.repository)
        .arg("--log-dir")
        .arg(w.root.join("logs"))
        .arg("--batch")
        .arg(format!("bench-{run}"))
        .arg(&w.list)
        .stdin(Stdio::null())
        .stdout(create(&records)?)
        .stderr(create(&errors)?);
    let wall = wait_ok(c, "build-list", &errors)?;
    let (kib, cpu) = usage(&mem)?;
    Ok(Sample { wall, cpu, kib })
}

/// build-list alone: make replaced by a script that prints the output plain make
/// printed in run 1, at once.  What build-list itself costs per entry, without
/// the noise of make's own time.
fn build_list_alone(w: &World, program: &Path) -> Result<Sample, String> {
    let script = w.root.join("recorded-make");
    write(
        &script,
        &format!(
            // The host's settings are asked of the real make; the walk is the
            // recording.
            "#!/bin/sh\ncase \"$*\" in *show=*) exec bmake \"$@\";; esac\nexec cat {}\n",
            w.root.join("make-1.log").display()
        ),
    )?;
    let st = Command::new("chmod")
        .arg("+x")
        .arg(&script)
        .status()
        .map_err(err("chmod"))?;
    if !st.success() {
        return Err(format!("chmod +x {} failed", script.display()));
    }
    let mem = w.root.join("alone.rss");
    let errors = w.root.join("alone.err");
    let mut c = timed(w, program, &mem);
    c.arg("--ports-dir")
        .arg(&w.tree)
        .arg("--make")
        .arg(&script)
        .args(["--arch", ARCH])
        .arg("--repository")
        .arg(&w.repository)
        .arg("--log-dir")
        .arg(w.root.join("logs"))
        .args(["--batch", "alone"])
        .arg(&w.list)
        .stdin(Stdio::null())
        .stdout(create(&w.root.join("alone.jsonl"))?)
        .stderr(create(&errors)?);
    let wall = wait_ok(c, "build-list over a recorded output", &errors)?;
    let (kib, cpu) = usage(&mem)?;
    Ok(Sample { wall, cpu, kib })
}

/// What a run must show: plain make walked every entry and built nothing;
/// build-list wrote one up-to-date record per entry and ran make once.
fn check(w: &World, run: usize, failed: &mut Vec<String>) -> Result<(), String> {
    let log = fs::read_to_string(w.root.join(format!("make-{run}.log")))
        .map_err(err(format!("make-{run}.log")))?;
    // Entry headers, `===> <fullpkgpath>` (not `===>  Cleaning for ...`).
    let headers = log
        .lines()
        .filter(|l| {
            l.strip_prefix("===> ")
                .is_some_and(|r| !r.is_empty() && !r.contains(' '))
        })
        .count();
    if headers != w.n {
        failed.push(format!(
            "plain make run {run}: {headers} entries of {}",
            w.n
        ));
    }
    if log.contains("Building package") {
        failed.push(format!(
            "plain make run {run} built packages: the world is not up to date"
        ));
    }
    let records = fs::read_to_string(w.root.join(format!("build-list-{run}.jsonl")))
        .map_err(err(format!("build-list-{run}.jsonl")))?;
    let up = records
        .lines()
        .filter(|l| l.contains("\"kind\":\"build\"") && l.contains("\"status\":\"up-to-date\""))
        .count();
    let all = records.lines().count();
    if up != w.n || all != w.n {
        failed.push(format!(
            "build-list run {run}: {up} up-to-date records of {all}, expected {}",
            w.n
        ));
    }
    let errors =
        fs::read_to_string(w.root.join(format!("build-list-{run}.err"))).unwrap_or_default();
    if !errors.is_empty() {
        failed.push(format!("build-list run {run} wrote on stderr: {errors}"));
    }
    let batch = w.root.join("logs").join(format!("bench-{run}"));
    let makes = fs::read_to_string(batch.join("make.log"))
        .unwrap_or_default()
        .lines()
        .filter(|l| l.starts_with("build-list: ") && l.contains(": in "))
        .count();
    if makes != 1 {
        failed.push(format!(
            "build-list run {run} ran make {makes} times, not once"
        ));
    }
    let journal = fs::read_to_string(batch.join("journal")).unwrap_or_default();
    if journal.lines().count() != w.n {
        failed.push(format!(
            "build-list run {run}: {} journal lines, expected {}",
            journal.lines().count(),
            w.n
        ));
    }
    Ok(())
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn run(bench: bool) -> Result<Vec<String>, String> {
    let (n, runs) = if bench {
        (FULL_PORTS, FULL_RUNS)
    } else {
        (SMOKE_PORTS, 1)
    };
    let mut missing = Vec::new();
    if !in_path("bmake") {
        missing.push("bmake (apt-get install bmake)".to_string());
    }
    let gnu_time = Command::new(TIME)
        .args(["-f", "%M %U %S", "true"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !gnu_time {
        missing.push(format!("GNU time at {TIME} (apt-get install time)"));
    }
    if !missing.is_empty() {
        return Err(format!("missing programs: {}", missing.join(", ")));
    }
    let program = PathBuf::from(env!("CARGO_BIN_EXE_build-list"));
    if !program.is_file() {
        return Err(format!(
            "{} not found: run the benchmark through `cargo bench --bench build_list`",
            program.display()
        ));
    }

    let tmp = tempfile::Builder::new()
        .prefix("portflow-bench.")
        .tempdir()
        .map_err(err("cannot make a temporary directory"))?;
    let root = tmp.path().to_path_buf();
    let _tmp = if std::env::var_os("PORTFLOW_BENCH_KEEP").is_some_and(|v| v != "0") {
        eprintln!("build_list: keeping {}", root.display());
        let _ = tmp.keep();
        None
    } else {
        Some(tmp)
    };

    eprintln!("build_list: generating {n} up-to-date ports ...");
    let start = Instant::now();
    let w = World::generate(&root, n)?;
    let generated = start.elapsed();
    println!(
        "portflow build-list overhead benchmark ({})",
        if bench {
            "cargo bench --bench build_list"
        } else {
            "smoke run: 100 ports, goal not enforced; `cargo bench --bench build_list` for the real one"
        }
    );
    println!(
        "world: {n} trivial ports with up-to-date packages, on the sample tree's infrastructure/mk (bmake), generated in {}",
        secs(generated)
    );

    // A first walk, untimed: the page cache, and make's own first-run work.
    eprintln!("build_list: warming up (plain make, untimed) ...");
    plain_make(&w, 0)?;
    let mut failed = Vec::new();
    let (mut plain, mut ours) = (Vec::new(), Vec::new());
    let (mut plain_cpu, mut ours_cpu) = (Vec::new(), Vec::new());
    let (mut plain_kib, mut ours_kib) = (0, 0);
    for run in 1..=runs {
        eprintln!("build_list: run {run} of {runs} ...");
        // Alternate which goes first.
        let (p, o) = if run % 2 == 1 {
            let p = plain_make(&w, run)?;
            (p, build_list(&w, &program, run)?)
        } else {
            let o = build_list(&w, &program, run)?;
            (plain_make(&w, run)?, o)
        };
        check(&w, run, &mut failed)?;
        println!(
            "  run {run}: plain make {} (cpu {}), build-list {} (cpu {})",
            secs(p.wall),
            secs(p.cpu),
            secs(o.wall),
            secs(o.cpu)
        );
        plain_cpu.push(p.cpu);
        ours_cpu.push(o.cpu);
        plain_kib = plain_kib.max(p.kib);
        ours_kib = ours_kib.max(o.kib);
        plain.push(p.wall);
        ours.push(o.wall);
    }
    let alone = build_list_alone(&w, &program)?;
    let records = fs::read_to_string(w.root.join("alone.jsonl")).map_err(err("alone.jsonl"))?;
    if records.lines().count() != n {
        failed.push(format!(
            "build-list over the recorded output wrote {} records, not {n}",
            records.lines().count()
        ));
    }
    let (p, o) = (median(plain), median(ours));
    let ratio = o.as_secs_f64() / p.as_secs_f64();
    println!();
    println!("median of {runs} run{}:", if runs > 1 { "s" } else { "" });
    println!(
        "  plain env SUBDIRLIST=... make package BULK=yes : {} ({:.2} ms per entry)",
        secs(p),
        p.as_secs_f64() * 1000.0 / n as f64
    );
    println!(
        "  build-list (one make, logs, journal)        : {} ({:.2} ms per entry)",
        secs(o),
        o.as_secs_f64() * 1000.0 / n as f64
    );
    println!(
        "  ratio build-list / plain make: {ratio:.3} (goal <= {MAX_RATIO}); overhead {:.1} ms in all",
        (o.as_secs_f64() - p.as_secs_f64()) * 1000.0
    );
    let (pc, oc) = (median(plain_cpu), median(ours_cpu));
    println!(
        "  cpu time (user + system, make's processes included): plain make {}, build-list {}, ratio {:.3}",
        secs(pc),
        secs(oc),
        oc.as_secs_f64() / pc.as_secs_f64().max(1e-9)
    );
    println!(
        "  build-list alone, make replaced by `cat` of run 1's output: {} wall, {} cpu ({:.3} ms wall per entry: pipe, split, log file, synced journal line, record), peak {}",
        secs(alone.wall),
        secs(alone.cpu),
        alone.wall.as_secs_f64() * 1000.0 / n as f64,
        mib(alone.kib)
    );
    println!(
        "  peak memory (largest process of the run, GNU time %M): plain make {}, build-list {}",
        mib(plain_kib),
        mib(ours_kib)
    );
    if bench && ratio > MAX_RATIO {
        failed.push(format!(
            "build-list took {ratio:.3} times the time of plain make (goal <= {MAX_RATIO})"
        ));
    }
    Ok(failed)
}
