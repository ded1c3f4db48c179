//! What the benchmarks share: finding programs, reading GNU time's peak memory,
//! printing durations and sizes.  Included by each bench with `#[path]`.

#![allow(dead_code)]

use std::path::Path;
use std::process::{Command, ExitCode, Stdio};
use std::time::Duration;

/// GNU time, for the peak memory (`-f %M`) of a child.
pub const TIME: &str = "/usr/bin/time";

pub fn in_path(program: &str) -> bool {
    std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join(program).is_file()))
        .unwrap_or(false)
}

/// The peak memory (KiB) GNU time wrote to `file` (its last non-empty line).
pub fn peak_kib(file: &Path) -> Result<u64, String> {
    let text = std::fs::read_to_string(file).map_err(|e| format!("{}: {e}", file.display()))?;
    let last = text
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("");
    last.trim()
        .parse()
        .map_err(|_| format!("{}: no peak memory in {text:?}", file.display()))
}

pub fn secs(d: Duration) -> String {
    let s = d.as_secs_f64();
    if s < 10.0 {
        format!("{s:.3} s")
    } else {
        format!("{s:.1} s")
    }
}

pub fn mib(kib: u64) -> String {
    format!("{:.1} MiB", kib as f64 / 1024.0)
}

/// The `main` of a benchmark: `--bench` (as `cargo bench` passes it) runs the real
/// sizes, its absence a small smoke run; the goals or checks missed are listed
/// and the exit is non-zero.
pub fn bench_main(name: &str, run: fn(bool) -> Result<Vec<String>, String>) -> ExitCode {
    let bench = std::env::args().skip(1).any(|a| a == "--bench");
    match run(bench) {
        Ok(failed) if failed.is_empty() => ExitCode::SUCCESS,
        Ok(failed) => {
            eprintln!("{name}: {} goal(s) or check(s) failed:", failed.len());
            for f in failed {
                eprintln!("  {f}");
            }
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("{name}: {e}");
            ExitCode::FAILURE
        }
    }
}

/// An error-mapping closure that names what failed.
pub fn err<E: std::fmt::Display>(what: impl std::fmt::Display) -> impl FnOnce(E) -> String {
    move |e| format!("{what}: {e}")
}

/// Whether GNU time is there and writes the peak memory (`-f %M -o FILE`); the
/// probe file goes in `scratch`.
pub fn gnu_time_works(scratch: &Path) -> bool {
    let probe = scratch.join("time-probe");
    Command::new(TIME)
        .args(["-f", "%M", "-o"])
        .arg(&probe)
        .arg("true")
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
        && peak_kib(&probe).is_ok()
}
