//! The collect-built benchmark: checksums of 2 GiB of package files by
//! `collect-built` (rayon, one thread per CPU) against single-process `sha256sum`
//! over the same files, in one run.
//!
//! `cargo bench --bench collect_built` runs it (release build; cargo hands over the
//! tool's path in CARGO_BIN_EXE_collect-built).  It writes 400 package files of
//! 5 MiB of pseudo-random bytes (2 GiB, in a temporary directory under TMPDIR or
//! /tmp, removed at the end; PORTFLOW_BENCH_KEEP=1 keeps it) and a stand-in ports
//! tree: an empty directory and a `make` that answers `show=PKGNAMES` with a
//! `===> <entry>` header and one package name per SUBDIRLIST entry, as
//! bsd.port.subdir.mk does.  The comparison is about hashing, so the stand-in is
//! fair: both sides read the same files.
//!
//! Every file is read once first, so that both sides find them in the page cache.
//! Then, three rounds, each: `sha256sum` over the 400 files; `collect-built` over
//! the 400 `build` records (records, with checksums); `collect-built -j 1`; and
//! `collect-built -t` (names only, no checksums).  The best wall time of each is
//! compared.  Goals: collect-built at least 1.5 times faster than sha256sum (on
//! the 2 cores of the project's machines), and a peak memory (max RSS) under
//! 32 MiB while it reads 2 GiB.  Checks: every digest equals sha256sum's, every
//! size is right, `-t` prints the sorted names.  It exits non-zero when a goal or
//! a check fails.  Without `--bench` (`cargo test --benches`) it runs 8 files of
//! 1 MiB and enforces the checks only.
//!
//! Needs GNU time at /usr/bin/time (peak memory, `apt-get install time`) and
//! sha256sum (coreutils).

#[path = "common.rs"]
mod common;
use common::{gnu_time_works, in_path, mib, peak_kib, secs, TIME};
use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

const SEED: u64 = 0x00C0_11EC_7B17_0003;
const ARCH: &str = "amd64";

/// Goals.
const MIN_SPEEDUP: f64 = 1.5;
const MAX_RSS_KIB: u64 = 32 * 1024;

struct Scale {
    files: usize,
    size: usize,
    rounds: usize,
}

const FULL: Scale = Scale {
    files: 400,
    size: 5 * 1024 * 1024,
    rounds: 3,
};
const SMOKE: Scale = Scale {
    files: 8,
    size: 1024 * 1024,
    rounds: 1,
};

fn main() -> ExitCode {
    common::bench_main("collect_built", run)
}

fn check_programs(scratch: &Path) -> Result<PathBuf, String> {
    let mut missing = Vec::new();
    if !in_path("sha256sum") {
        missing.push("sha256sum (apt-get install coreutils)".to_string());
    }
    if !in_path("sh") {
        missing.push("sh (apt-get install dash)".to_string());
    }
    if !gnu_time_works(scratch) {
        missing.push(format!("GNU time at {TIME} (apt-get install time)"));
    }
    if !missing.is_empty() {
        return Err(format!("missing programs: {}", missing.join(", ")));
    }
    let tool = PathBuf::from(env!("CARGO_BIN_EXE_collect-built"));
    if !tool.is_file() {
        return Err(format!(
            "{} not found: run the benchmark through `cargo bench --bench collect_built`",
            tool.display()
        ));
    }
    Ok(tool)
}

/// xoshiro256**: fast pseudo-random bytes, so that the files do not compress and
/// the generation does not dominate the run.
struct Rng([u64; 4]);

impl Rng {
    fn new(seed: u64) -> Self {
        // splitmix64 to fill the state.
        let mut x = seed;
        let mut next = || {
            x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = x;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^ (z >> 31)
        };
        Rng([next(), next(), next(), next()])
    }

    fn next(&mut self) -> u64 {
        let s = &mut self.0;
        let r = s[1].wrapping_mul(5).rotate_left(7).wrapping_mul(9);
        let t = s[1] << 17;
        s[2] ^= s[0];
        s[3] ^= s[1];
        s[1] ^= s[2];
        s[0] ^= s[3];
        s[2] ^= t;
        s[3] = s[3].rotate_left(45);
        r
    }

    fn fill(&mut self, buf: &mut [u8]) {
        for chunk in buf.chunks_mut(8) {
            let v = self.next().to_le_bytes();
            chunk.copy_from_slice(&v[..chunk.len()]);
        }
    }
}

/// The stand-in for make.  Asked for the host's settings (`-C / -f -
/// show=...`, as dpb asks), it prints each variable's command-line value, or a
/// path below /nonexistent; asked `show=PKGNAMES FULLPKGNAME${SUBPACKAGE}` over
/// the SUBDIRLIST of its environment, of `bench/pNNNN` entries, it prints
/// `===> bench/pNNNN` and `pNNNN-1.0` twice (the flavor's packages, then the
/// entry's own).
const FAKE_MAKE: &str = r#"#!/bin/sh
settings=no show=
for a; do
	case $a in
	-C|/|-f|-) settings=yes ;;
	show=*) show=${a#show=} ;;
	*=*) eval "given_${a%%=*}=\${a#*=}" ;;
	*) echo "fake make: unexpected argument $a" >&2; exit 1 ;;
	esac
done
if [ $settings = yes ]; then
	cat >/dev/null
	for v in $show; do
		eval "x=\${given_$v:-/nonexistent/$v}"
		echo "$x"
	done
	exit 0
fi
[ -n "${SUBDIRLIST:-}" ] || { echo "fake make: no SUBDIRLIST" >&2; exit 1; }
while IFS= read -r e; do
	case $e in ''|'#'*) continue ;; esac
	echo "===> $e"
	echo "${e##*/}-1.0"
	echo "${e##*/}-1.0"
done <"$SUBDIRLIST"
"#;

/// The world of one run.
struct World {
    root: PathBuf,
    ftp: PathBuf,
    names: Vec<String>,
    bytes: u64,
}

impl World {
    fn path(&self, name: &str) -> PathBuf {
        self.root.join(name)
    }
}

fn write_file(p: &Path, data: &[u8]) -> Result<(), String> {
    let mut f = File::create(p).map_err(|e| format!("{}: {e}", p.display()))?;
    f.write_all(data)
        .map_err(|e| format!("{}: {e} (is there room for the files?)", p.display()))
}

fn generate(root: &Path, scale: &Scale) -> Result<World, String> {
    let ftp = root.join("packages").join(ARCH).join("ftp");
    fs::create_dir_all(&ftp).map_err(|e| format!("{}: {e}", ftp.display()))?;
    fs::create_dir_all(root.join("ports")).map_err(|e| format!("ports: {e}"))?;
    let make = root.join("make");
    write_file(&make, FAKE_MAKE.as_bytes())?;
    let st = Command::new("chmod")
        .arg("+x")
        .arg(&make)
        .status()
        .map_err(|e| format!("chmod: {e}"))?;
    if !st.success() {
        return Err(format!("chmod +x {}: {st}", make.display()));
    }
    let mut rng = Rng::new(SEED);
    let mut buf = vec![0u8; scale.size];
    let mut names = Vec::with_capacity(scale.files);
    let mut records = String::new();
    for i in 0..scale.files {
        let name = format!("p{i:04}-1.0.tgz");
        rng.fill(&mut buf);
        write_file(&ftp.join(&name), &buf)?;
        records.push_str(&format!(
            "{{\"kind\":\"build\",\"v\":1,\"fullpkgpath\":\"bench/p{i:04}\",\"target\":\"package\",\"status\":\"built\",\"seconds\":1,\"batch\":\"bench\",\"arch\":\"{ARCH}\"}}\n"
        ));
        names.push(name);
    }
    // As build-list leaves them: the records, and its journal of the batch on
    // the host (PORTSDIR/logs/ARCH/<batch>/journal), which collect-built checks
    // the records against.
    let journal = root.join("ports/logs").join(ARCH).join("bench");
    fs::create_dir_all(&journal).map_err(|e| format!("{}: {e}", journal.display()))?;
    write_file(&journal.join("journal"), records.as_bytes())?;
    write_file(&root.join("build.jsonl"), records.as_bytes())?;
    Ok(World {
        root: root.to_path_buf(),
        ftp,
        names,
        bytes: (scale.files * scale.size) as u64,
    })
}

/// Read every file once, so that every timed run finds them in the page cache.
fn warm_up(w: &World) -> Result<(), String> {
    let mut buf = vec![0u8; 1024 * 1024];
    for n in &w.names {
        let p = w.ftp.join(n);
        let mut f = File::open(&p).map_err(|e| format!("{}: {e}", p.display()))?;
        loop {
            match f.read(&mut buf) {
                Ok(0) => break,
                Ok(_) => {}
                Err(e) => return Err(format!("{}: {e}", p.display())),
            }
        }
    }
    Ok(())
}

/// One timed run: wall time, peak memory, stdout.
struct Sample {
    wall: Duration,
    kib: u64,
    stdout: String,
}

/// Run `program args...` under GNU time in `dir`, stdin from `stdin`.
fn timed(
    w: &World,
    what: &str,
    program: &Path,
    args: &[&str],
    dir: &Path,
    stdin: Option<&Path>,
) -> Result<Sample, String> {
    let mem = w.path(&format!("{what}.rss"));
    let out = w.path(&format!("{what}.out"));
    let err = w.path(&format!("{what}.err"));
    let file = |p: &Path| File::create(p).map_err(|e| format!("{}: {e}", p.display()));
    let mut c = Command::new(TIME);
    c.args(["-f", "%M", "-o"])
        .arg(&mem)
        .arg(program)
        .args(args)
        .current_dir(dir)
        .stdout(file(&out)?)
        .stderr(file(&err)?);
    for v in ["PORTSDIR", "MAKE", "PACKAGE_REPOSITORY", "MACHINE_ARCH"] {
        c.env_remove(v);
    }
    match stdin {
        Some(p) => c.stdin(File::open(p).map_err(|e| format!("{}: {e}", p.display()))?),
        None => c.stdin(Stdio::null()),
    };
    let start = Instant::now();
    let st = c
        .status()
        .map_err(|e| format!("cannot run {}: {e}", program.display()))?;
    let wall = start.elapsed();
    if !st.success() {
        let e = fs::read_to_string(&err).unwrap_or_default();
        let tail: Vec<&str> = e.lines().rev().take(5).collect();
        return Err(format!(
            "{what} failed ({st}): {}",
            tail.into_iter().rev().collect::<Vec<_>>().join(" / ")
        ));
    }
    let stdout = fs::read_to_string(&out).map_err(|e| format!("{}: {e}", out.display()))?;
    Ok(Sample {
        wall,
        kib: peak_kib(&mem)?,
        stdout,
    })
}

fn rate(bytes: u64, d: Duration) -> String {
    format!(
        "{:.0} MiB/s",
        bytes as f64 / (1024.0 * 1024.0) / d.as_secs_f64().max(1e-9)
    )
}

/// Best of the samples (wall time) and the highest peak memory.
fn best(v: &[Sample]) -> (Duration, u64) {
    let wall = v.iter().map(|s| s.wall).min().unwrap_or_default();
    let kib = v.iter().map(|s| s.kib).max().unwrap_or(0);
    (wall, kib)
}

fn run(bench: bool) -> Result<Vec<String>, String> {
    let scale = if bench { FULL } else { SMOKE };
    let tmp = tempfile::Builder::new()
        .prefix("portflow-bench-collect.")
        .tempdir()
        .map_err(|e| format!("cannot make a temporary directory: {e}"))?;
    let root = tmp.path().to_path_buf();
    let _tmp = if std::env::var_os("PORTFLOW_BENCH_KEEP").is_some_and(|v| v != "0") {
        eprintln!("collect_built: keeping {}", root.display());
        let _ = tmp.keep();
        None
    } else {
        Some(tmp)
    };
    let tool = check_programs(&root)?;
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());

    eprintln!(
        "collect_built: writing {} files of {} MiB in {} ...",
        scale.files,
        scale.size / (1024 * 1024),
        root.display()
    );
    let start = Instant::now();
    let w = generate(&root, &scale)?;
    let generated = start.elapsed();
    let start = Instant::now();
    warm_up(&w)?;
    let warmed = start.elapsed();

    println!(
        "portflow collect-built benchmark ({})",
        if bench {
            "cargo bench --bench collect_built"
        } else {
            "smoke run: 8 small files, goals not enforced; `cargo bench --bench collect_built` for the real one"
        }
    );
    println!(
        "files: {} package files of {} bytes, {} MiB in all, on disk under {} (removed at the end)",
        scale.files,
        scale.size,
        w.bytes / (1024 * 1024),
        root.display()
    );
    println!(
        "  written in {} ({}), read once to warm the page cache in {} ({})",
        secs(generated),
        rate(w.bytes, generated),
        secs(warmed),
        rate(w.bytes, warmed)
    );
    println!("cpus: {cpus}");
    println!();

    let repo = w.path("packages");
    let ports = w.path("ports");
    let make = w.path("make");
    let list = w.path("build.jsonl");
    let common: Vec<String> = vec![
        "--ports-dir".into(),
        ports.display().to_string(),
        "--make".into(),
        make.display().to_string(),
        "--repository".into(),
        repo.display().to_string(),
        "--arch".into(),
        ARCH.into(),
    ];
    let with = |extra: &[&str]| -> Vec<String> {
        let mut v = common.clone();
        v.extend(extra.iter().map(|s| s.to_string()));
        v
    };
    let args_records = with(&[]);
    let args_j1 = with(&["-j", "1"]);
    let args_text = with(&["-t"]);
    let a_rec: Vec<&str> = args_records.iter().map(String::as_str).collect();
    let a_j1: Vec<&str> = args_j1.iter().map(String::as_str).collect();
    let a_text: Vec<&str> = args_text.iter().map(String::as_str).collect();
    let (mut sums, mut recs, mut j1, mut text) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let sha256sum = PathBuf::from("sha256sum");
    let names: Vec<&str> = w.names.iter().map(String::as_str).collect();
    eprintln!(
        "collect_built: timing sha256sum, collect-built, collect-built -j 1, collect-built -t ({} round{}) ...",
        scale.rounds,
        if scale.rounds > 1 { "s" } else { "" }
    );
    for _ in 0..scale.rounds {
        sums.push(timed(&w, "sha256sum", &sha256sum, &names, &w.ftp, None)?);
        recs.push(timed(
            &w,
            "collect-built",
            &tool,
            &a_rec,
            &root,
            Some(&list),
        )?);
        j1.push(timed(
            &w,
            "collect-built-j1",
            &tool,
            &a_j1,
            &root,
            Some(&list),
        )?);
        text.push(timed(
            &w,
            "collect-built-t",
            &tool,
            &a_text,
            &root,
            Some(&list),
        )?);
    }

    // Checks: the same digests as sha256sum, the right sizes, the names.
    let mut failed = Vec::new();
    let mut expected: BTreeMap<&str, &str> = BTreeMap::new();
    for l in sums[0].stdout.lines() {
        match l.split_once("  ") {
            Some((sum, name)) => {
                expected.insert(name, sum);
            }
            None => failed.push(format!("check: sha256sum printed {l:?}")),
        }
    }
    let mut got: BTreeMap<String, String> = BTreeMap::new();
    for s in recs.iter().chain(&j1) {
        let mut packages = 0;
        for l in s.stdout.lines() {
            let v: serde_json::Value = match serde_json::from_str(l) {
                Ok(v) => v,
                Err(e) => {
                    failed.push(format!("check: bad output line {l:?}: {e}"));
                    continue;
                }
            };
            if v["kind"] != "package" {
                continue;
            }
            packages += 1;
            let file = v["file"].as_str().unwrap_or_default().to_string();
            let sum = v["sha256"].as_str().unwrap_or_default().to_string();
            if v["size"].as_u64() != Some(scale.size as u64) {
                failed.push(format!("check: {file}: size {} in {l}", v["size"]));
            }
            if let Some(prev) = got.insert(file.clone(), sum.clone()) {
                if prev != sum {
                    failed.push(format!("check: {file}: two digests, {prev} and {sum}"));
                }
            }
        }
        if packages != scale.files {
            failed.push(format!(
                "check: {packages} package records, not {}",
                scale.files
            ));
        }
    }
    let expected_owned: BTreeMap<String, String> = expected
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    if got != expected_owned {
        let differ = expected_owned
            .iter()
            .filter(|(k, v)| got.get(*k) != Some(*v))
            .count();
        failed.push(format!(
            "check: {differ} of {} digests differ from sha256sum's ({} files in collect-built's output)",
            expected.len(),
            got.len()
        ));
    }
    for s in &recs {
        if s.stdout.lines().count() != scale.files * 2 {
            failed.push(format!(
                "check: {} output lines, not {} (the input records, then the packages)",
                s.stdout.lines().count(),
                scale.files * 2
            ));
        }
    }
    let mut sorted = w.names.clone();
    sorted.sort();
    for s in &text {
        let lines: Vec<&str> = s.stdout.lines().collect();
        if lines != sorted {
            failed.push(format!(
                "check: -t printed {} lines, not the {} sorted names",
                lines.len(),
                sorted.len()
            ));
        }
    }

    // Figures.
    let (t_sum, k_sum) = best(&sums);
    let (t_rec, k_rec) = best(&recs);
    let (t_j1, k_j1) = best(&j1);
    let (t_text, k_text) = best(&text);
    let ratio = t_sum.as_secs_f64() / t_rec.as_secs_f64().max(1e-9);
    println!(
        "best wall time of {} round{}, peak memory (max RSS):",
        scale.rounds,
        if scale.rounds > 1 { "s" } else { "" }
    );
    println!(
        "  sha256sum (one process)         {:>9}  {:>10}  {:>9}",
        secs(t_sum),
        rate(w.bytes, t_sum),
        mib(k_sum)
    );
    println!(
        "  collect-built (-j {cpus}, records)  {:>9}  {:>10}  {:>9}",
        secs(t_rec),
        rate(w.bytes, t_rec),
        mib(k_rec)
    );
    println!(
        "  collect-built -j 1              {:>9}  {:>10}  {:>9}",
        secs(t_j1),
        rate(w.bytes, t_j1),
        mib(k_j1)
    );
    println!(
        "  collect-built -t (no checksums) {:>9}  {:>10}  {:>9}",
        secs(t_text),
        "",
        mib(k_text)
    );
    let all = |v: &[Sample]| {
        v.iter()
            .map(|s| format!("{:.3}", s.wall.as_secs_f64()))
            .collect::<Vec<_>>()
            .join(" ")
    };
    println!(
        "  every round (s): sha256sum {}; collect-built {}; -j 1 {}; -t {}",
        all(&sums),
        all(&recs),
        all(&j1),
        all(&text)
    );
    println!();
    println!(
        "collect-built vs sha256sum: {ratio:.2}x faster (goal >= {MIN_SPEEDUP}x on 2 cores){}",
        if cpus == 2 {
            String::new()
        } else {
            format!(" -- this machine has {cpus} cpus")
        }
    );
    println!(
        "collect-built -j 1 vs sha256sum: {:.2}x",
        t_sum.as_secs_f64() / t_j1.as_secs_f64().max(1e-9)
    );
    println!(
        "collect-built peak memory: {} (goal < {}) while reading {} MiB",
        mib(k_rec.max(k_j1)),
        mib(MAX_RSS_KIB),
        w.bytes / (1024 * 1024)
    );
    println!(
        "checks: {}",
        if failed.is_empty() {
            format!(
                "ok ({} digests equal sha256sum's, sizes right, -t sorted)",
                expected.len()
            )
        } else {
            format!("{} failed", failed.len())
        }
    );
    if bench {
        if ratio < MIN_SPEEDUP {
            failed.push(format!(
                "goal: collect-built is {ratio:.2}x faster than sha256sum, not >= {MIN_SPEEDUP}x"
            ));
        }
        if k_rec.max(k_j1) >= MAX_RSS_KIB {
            failed.push(format!(
                "goal: collect-built peak memory {} >= {}",
                mib(k_rec.max(k_j1)),
                mib(MAX_RSS_KIB)
            ));
        }
    }
    Ok(failed)
}
