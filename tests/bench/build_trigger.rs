//! The build-trigger latency benchmark: the time from `build-trigger submit` to
//! the first stage of the chain starting under `build-trigger watch`, over 100
//! batches one after the other, and the CPU the watcher uses while idle.
//!
//! The first stage is a sh script that writes the time it starts (`date
//! +%s%N`) and passes its input on; the time taken just before `submit` is
//! started is compared with it.  Each batch is let finish before the next is
//! submitted, so that each one finds the watcher idle, as a batch from the
//! coordinator does.  Goals: a median under 100 ms (the shell scripts it
//! replaces polled from cron three times a day), and an idle watcher that uses
//! next to no CPU: at most 0.05 s of user and system time over 10 s (its
//! utime + stime from /proc/<pid>/stat), with the default --rescan.
//!
//! `cargo bench --bench build_trigger` runs it (release build; cargo hands over
//! the path of build-trigger in CARGO_BIN_EXE_build-trigger).  It prints the
//! figures and exits non-zero when a goal is missed.  Without `--bench` (`cargo
//! test --benches`) it runs 10 batches and 2 s of idling, and checks only that
//! every batch ran.  Linux only (/proc), GNU date.

#[path = "common.rs"]
mod common;
use common::err;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const FULL_BATCHES: usize = 100;
const FULL_IDLE: Duration = Duration::from_secs(10);
const SMOKE_BATCHES: usize = 10;
const SMOKE_IDLE: Duration = Duration::from_secs(2);

/// Goal: the median latency, at most.
const MAX_MEDIAN: Duration = Duration::from_millis(100);
/// Goal: the CPU of the idle watcher over [`FULL_IDLE`], at most.
const MAX_IDLE_CPU: f64 = 0.05;

const TRIGGER: &str = env!("CARGO_BIN_EXE_build-trigger");

const STAMP: &str = "#!/bin/sh\ndate +%s%N > \"$STAMPS/$PORTFLOW_BATCH\"\nexec cat\n";

fn main() -> ExitCode {
    common::bench_main("build_trigger", run)
}

/// The watcher, killed on drop.
struct Watcher(Child);

impl Drop for Watcher {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn nanos_now() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0)
}

/// utime + stime of a process, in seconds.
fn cpu_seconds(pid: u32, tick: f64) -> Result<f64, String> {
    let p = format!("/proc/{pid}/stat");
    let text = fs::read_to_string(&p).map_err(err(&p))?;
    // The fields after the command name, which is in parentheses.
    let rest = text
        .rsplit_once(')')
        .map(|(_, r)| r)
        .ok_or_else(|| format!("{p}: no command name"))?;
    let f: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15; `rest` starts at field 3.
    let num = |i: usize| -> Result<f64, String> {
        f.get(i - 3)
            .and_then(|v| v.parse::<f64>().ok())
            .ok_or_else(|| format!("{p}: field {i}"))
    };
    Ok((num(14)? + num(15)?) / tick)
}

fn clock_tick() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
        .unwrap_or(100.0)
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

fn run(bench: bool) -> Result<Vec<String>, String> {
    let (batches, idle) = if bench {
        (FULL_BATCHES, FULL_IDLE)
    } else {
        (SMOKE_BATCHES, SMOKE_IDLE)
    };
    let tmp = tempfile::tempdir().map_err(err("tempdir"))?;
    let dir = tmp.path();
    let spool = dir.join("spool");
    let stamps = dir.join("stamps");
    fs::create_dir_all(&stamps).map_err(err(stamps.display()))?;
    let script = dir.join("stamp.sh");
    fs::write(&script, STAMP).map_err(err(script.display()))?;
    let st = Command::new("chmod")
        .arg("+x")
        .arg(&script)
        .status()
        .map_err(err("chmod"))?;
    if !st.success() {
        return Err("chmod +x stamp.sh failed".into());
    }
    let chain = dir.join("chain");
    fs::write(&chain, format!("{}\ncat\n", script.display())).map_err(err(chain.display()))?;

    let s = |p: &Path| p.display().to_string();
    let watcher = Command::new(TRIGGER)
        .args(["watch", "--spool", &s(&spool), "--chain", &s(&chain)])
        .arg("--env")
        .arg(format!("STAMPS={}", s(&stamps)))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .spawn()
        .map_err(err(TRIGGER))?;
    let watcher = Watcher(watcher);
    // Let it start: the spool's lock taken, new/ watched.
    let lock = spool.join("watch.lock");
    let start = Instant::now();
    while fs::read_to_string(&lock)
        .map(|t| t.trim().is_empty())
        .unwrap_or(true)
    {
        if start.elapsed() > Duration::from_secs(10) {
            return Err("build-trigger watch did not start".into());
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    std::thread::sleep(Duration::from_millis(200));

    let mut failed = Vec::new();
    let mut lat = Vec::with_capacity(batches);
    for i in 0..batches {
        let id = format!("bench-{i}");
        let done = spool.join("done").join(format!("{id}.jsonl"));
        let t0 = nanos_now();
        let mut sub = Command::new(TRIGGER)
            .args(["submit", "--spool", &s(&spool), "--batch", &id])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .map_err(err(TRIGGER))?;
        if let Some(mut sin) = sub.stdin.take() {
            use std::io::Write;
            let _ = sin.write_all(b"net/curl\neditors/vim,gtk2\n");
        }
        let st = sub.wait().map_err(err("wait for submit"))?;
        if !st.success() {
            return Err(format!("build-trigger submit {id}: {st}"));
        }
        let start = Instant::now();
        while !done.exists() {
            if start.elapsed() > Duration::from_secs(20) {
                return Err(format!("{id}: not done after 20 s"));
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        let stamp = stamps.join(&id);
        let t1: u128 = fs::read_to_string(&stamp)
            .map_err(err(stamp.display()))?
            .trim()
            .parse()
            .map_err(err(format!("{}: not a time", stamp.display())))?;
        lat.push(Duration::from_nanos(t1.saturating_sub(t0) as u64));
    }
    let ran = fs::read_dir(&stamps)
        .map_err(err(stamps.display()))?
        .count();
    if ran != batches {
        failed.push(format!("{ran} batches ran, not {batches}"));
    }
    lat.sort();
    let median = lat[lat.len() / 2];
    let worst = lat[lat.len() - 1];
    let p90 = lat[lat.len() * 9 / 10];
    println!(
        "build-trigger: submit to first stage over {batches} batches: median {}, 90% {}, worst {}, best {}",
        ms(median),
        ms(p90),
        ms(worst),
        ms(lat[0])
    );
    if bench && median > MAX_MEDIAN {
        failed.push(format!(
            "median latency {} over the goal of {}",
            ms(median),
            ms(MAX_MEDIAN)
        ));
    }

    // Idle: nothing queued, nothing running.
    std::thread::sleep(Duration::from_millis(500));
    let tick = clock_tick();
    let pid = watcher.0.id();
    let before = cpu_seconds(pid, tick)?;
    let t = Instant::now();
    std::thread::sleep(idle);
    let after = cpu_seconds(pid, tick)?;
    let used = after - before;
    let secs = t.elapsed().as_secs_f64();
    println!(
        "build-trigger: idle watcher: {:.3} s of CPU (user + system) over {:.1} s ({:.2}%), {:.3} s in all",
        used,
        secs,
        100.0 * used / secs,
        after
    );
    if bench && used > MAX_IDLE_CPU {
        failed.push(format!(
            "the idle watcher used {used:.3} s of CPU over {secs:.1} s (goal: at most {MAX_IDLE_CPU} s)"
        ));
    }
    let done_dir: PathBuf = spool.join("done");
    let done = fs::read_dir(&done_dir)
        .map_err(err(done_dir.display()))?
        .count();
    if done != batches {
        failed.push(format!("{done} batches in done/, not {batches}"));
    }
    drop(watcher);
    Ok(failed)
}
