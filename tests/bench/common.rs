//! What the benchmarks share: finding programs, reading GNU time's peak memory,
//! printing durations and sizes.  Included by each bench with `#[path]`.

#![allow(dead_code)]

use std::path::Path;
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
