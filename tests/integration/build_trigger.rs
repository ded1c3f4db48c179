//! build-trigger driving real chains: small sh stages for the spool protocol
//! (claim, done/failed, resume, SIGTERM, the lock, load), and the real
//! clean-env | build-list | collect-built over a copy of the sample tree for a
//! SIGKILL in the middle of a batch.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

use serde_json::{json, Value};

use crate::fixture::SampleCopy;
use crate::support::*;

fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

/// A spool, a directory of stage scripts and a log of the runs, in a temporary
/// directory.
struct World {
    dir: tempfile::TempDir,
    spool: PathBuf,
    /// Every run of `record.sh` appends `<batch> <TAG>` here.
    runs: PathBuf,
}

/// `record.sh`: logs its run, then passes its input on.
const RECORD: &str = "#!/bin/sh\necho \"$PORTFLOW_BATCH $TAG\" >> \"$RUNS\"\nexec cat\n";
/// `stage.sh CODE`: passes its input on, says so on stderr, exits CODE (or is
/// killed with `kill`, or sleeps with `sleep N` first).
const STAGE: &str = "#!/bin/sh
cat
if [ \"$1\" = sleep ]; then echo \"stage.sh: sleeping $2\" >&2; sleep \"$2\"; exit 0; fi
i=1
while [ $i -le 15 ]; do echo \"stage.sh: line $i\" >&2; i=$((i + 1)); done
if [ \"$1\" = kill ]; then kill -KILL $$; fi
exit \"$1\"
";

impl World {
    fn new() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let spool = dir.path().join("spool");
        let runs = dir.path().join("runs");
        for (name, text) in [("record.sh", RECORD), ("stage.sh", STAGE)] {
            let p = dir.path().join(name);
            std::fs::write(&p, text).expect("write script");
            let st = Command::new("chmod")
                .arg("+x")
                .arg(&p)
                .status()
                .expect("chmod");
            assert!(st.success());
        }
        World { dir, spool, runs }
    }

    /// Write a chain file of these lines (`@` stands for the script directory).
    fn chain(&self, name: &str, lines: &[&str]) -> String {
        let p = self.dir.path().join(name);
        let dir = self.dir.path().display().to_string();
        let text: String = lines
            .iter()
            .map(|l| format!("{}\n", l.replace('@', &dir)))
            .collect();
        std::fs::write(&p, format!("# {name}\n{text}")).expect("write chain");
        p.display().to_string()
    }

    fn args(&self, sub: &str, more: &[&str]) -> Vec<String> {
        let mut v = vec![sub.to_string(), "--spool".into(), s(&self.spool).into()];
        v.extend(more.iter().map(|m| m.to_string()));
        v
    }

    fn submit(&self, batch: &str, input: &str) -> Out {
        run(
            "build-trigger",
            &self.args("submit", &["--batch", batch]),
            input,
            &[],
        )
    }

    fn runs(&self) -> Vec<String> {
        std::fs::read_to_string(&self.runs)
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    }

    fn files(&self, sub: &str) -> BTreeSet<String> {
        std::fs::read_dir(self.spool.join(sub))
            .into_iter()
            .flatten()
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect()
    }

    /// The chain of a build host over the sample tree: clean-env, build-list,
    /// collect-built.
    fn build_chain(&self) -> String {
        self.chain(
            "chain",
            &["clean-env --keep rsync", "build-list", "collect-built"],
        )
    }

    fn watch(&self, chain: &str, more: &[&str], env: &[(&str, &str)]) -> Watch {
        let mut a = self.args("watch", &["--chain", chain]);
        a.extend(more.iter().map(|m| m.to_string()));
        Watch::start(
            &a,
            env,
            &self.dir.path().join(format!("watch.{}.err", now_ns())),
        )
    }
}

fn now_ns() -> u128 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0)
}

/// A running `build-trigger watch`, its stderr in a file; killed on drop.
struct Watch {
    child: Child,
    stderr: PathBuf,
}

impl Watch {
    fn start(args: &[String], env: &[(&str, &str)], stderr: &Path) -> Self {
        let err = std::fs::File::create(stderr).expect("stderr file");
        let mut cmd = Command::new(bin("build-trigger"));
        cmd.args(args)
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(err);
        let child = cmd.spawn().expect("start build-trigger watch");
        Watch {
            child,
            stderr: stderr.to_path_buf(),
        }
    }

    fn pid(&self) -> String {
        self.child.id().to_string()
    }

    /// SIGTERM, then its exit status (it must end within 15 s).  Sent once
    /// the watcher catches SIGTERM (Linux: SigCgt in /proc/PID/status), so
    /// that a watcher that has only just started is not killed before it
    /// could catch it.
    fn term(&mut self) -> i32 {
        let catching = || {
            std::fs::read_to_string(format!("/proc/{}/status", self.pid()))
                .ok()
                .and_then(|t| {
                    t.lines()
                        .find_map(|l| l.strip_prefix("SigCgt:"))
                        .and_then(|m| u64::from_str_radix(m.trim(), 16).ok())
                })
                .is_some_and(|m| m & (1 << (15 - 1)) != 0)
        };
        let start = Instant::now();
        while !catching() && start.elapsed() < Duration::from_secs(10) {
            std::thread::sleep(Duration::from_millis(10));
        }
        assert!(signal("TERM", &self.pid()), "kill -TERM");
        let start = Instant::now();
        loop {
            if let Some(st) = self.child.try_wait().expect("wait") {
                return st.code().unwrap_or(-1);
            }
            assert!(
                start.elapsed() < Duration::from_secs(15),
                "build-trigger watch did not stop on SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `kill -s SIG -- target`; whether it worked (with `0`: whether it lives).
fn signal(sig: &str, target: &str) -> bool {
    Command::new("kill")
        .args(["-s", sig, "--", target])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn wait_until(what: &str, limit: Duration, mut f: impl FnMut() -> bool) {
    let start = Instant::now();
    while !f() {
        assert!(start.elapsed() < limit, "waited {limit:?} for {what}");
        std::thread::sleep(Duration::from_millis(25));
    }
}

/// The lines of a batch's result: records, and plain lines as strings.
fn records(text: &str) -> Vec<Value> {
    text.lines()
        .map(|l| {
            if l.starts_with('{') {
                serde_json::from_str(l).unwrap_or_else(|e| panic!("{l:?}: {e}"))
            } else {
                Value::from(l)
            }
        })
        .collect()
}

/// Wait until no process of these groups is left (a killed process may stay
/// a zombie a moment, until init reaps it).
fn groups_gone(pgids: &[String]) {
    for p in pgids {
        wait_until(
            &format!("process group {p} to go"),
            Duration::from_secs(10),
            || !signal("0", &format!("-{p}")),
        );
    }
}

fn read_records(p: &Path) -> Vec<Value> {
    records(&std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display())))
}

fn of_kind<'a>(recs: &'a [Value], kind: &str) -> Vec<&'a Value> {
    recs.iter().filter(|r| r["kind"] == kind).collect()
}

#[test]
fn submit_then_watch_runs_the_chain_once() {
    let w = World::new();
    let chain = w.chain("chain", &["cat", "@/record.sh ${TAG}", "cat"]);
    let runs = s(&w.runs).to_string();
    let mut watch = w.watch(
        &chain,
        &["--env", "TAG=amd64", "--env", &format!("RUNS={runs}")],
        &[],
    );
    let input = "{\"kind\":\"batch\",\"v\":1,\"id\":\"b1\",\"tree\":\"/usr/ports\"}\n\
                 {\"kind\":\"port\",\"v\":1,\"pkgpath\":\"net/curl\",\"fullpkgpath\":\"net/curl\"}\n\
                 editors/vim,gtk2\n";
    let sub = run("build-trigger", &w.args("submit", &[]), input, &[]);
    assert_eq!(sub.code, 0, "{}", sub.stderr);
    let rec = &sub.records()[0];
    assert_eq!(rec["kind"], "batch");
    assert_eq!(rec["id"], "b1");
    assert_eq!(rec["tree"], "/usr/ports");
    assert!(rec["created"].as_str().is_some_and(|c| c.ends_with('Z')));
    assert!(sub.stderr.is_empty(), "{}", sub.stderr);

    let waited = run(
        "build-trigger",
        &w.args("wait", &["--timeout", "20s", "b1"]),
        "",
        &[],
    );
    assert_eq!(waited.code, 0, "{}", waited.stderr);
    let recs = records(&waited.stdout);
    // The batch file went through the chain: the batch record first, as
    // submitted, then the list, then build-trigger's own record.
    assert_eq!(recs[0], *rec);
    assert_eq!(recs[1]["pkgpath"], "net/curl");
    assert_eq!(waited.lines()[2], "editors/vim,gtk2");
    let last = &recs[3];
    assert_eq!(last["kind"], "spool");
    assert_eq!(last["batch"], "b1");
    assert_eq!(last["state"], "done");
    let stages: Vec<(&str, i64)> = last["stages"]
        .as_array()
        .expect("stages")
        .iter()
        .map(|s| {
            (
                s["stage"].as_str().unwrap_or("?"),
                s["exit"].as_i64().unwrap_or(-1),
            )
        })
        .collect();
    assert_eq!(stages, [("cat", 0), ("record.sh", 0), ("cat", 0)]);
    assert_eq!(recs.len(), 4);
    // Atomically in done/, nothing left in cur/, no log without stderr.
    assert_eq!(
        std::fs::read_to_string(w.spool.join("done/b1.jsonl")).expect("done"),
        waited.stdout
    );
    // (cur/ is cleared right after the result is in done/.)
    wait_until("cur/ cleared", Duration::from_secs(5), || {
        w.files("cur").is_empty()
    });
    assert_eq!(w.files("done"), BTreeSet::from(["b1.jsonl".to_string()]));

    // The same batch again: accepted quietly, not run again.
    let again = w.submit("b1", "net/tor\n");
    assert_eq!(again.code, 0, "{}", again.stderr);
    assert_eq!(again.records()[0]["id"], "b1");
    assert!(w.files("new").is_empty());
    // A batch with no id of its own gets one, and runs.
    let fresh = run("build-trigger", &w.args("submit", &[]), "net/tor\n", &[]);
    assert_eq!(fresh.code, 0, "{}", fresh.stderr);
    let id = fresh.records()[0]["id"].as_str().expect("id").to_string();
    let done = run(
        "build-trigger",
        &w.args("wait", &["--timeout", "20s", &id]),
        "",
        &[],
    );
    assert_eq!(done.code, 0, "{}", done.stderr);
    assert_eq!(w.runs(), ["b1 amd64".to_string(), format!("{id} amd64")]);

    assert_eq!(watch.term(), 0);
    // Quiet on success, as cron wants.
    assert_eq!(watch.stderr(), "");
}

#[test]
fn a_failing_stage_fails_the_batch_and_is_named() {
    let w = World::new();
    // 1 (a build failed) and 3 (nothing to do) do not fail a batch.
    let fine = w.chain("fine", &["@/stage.sh 1", "@/stage.sh 3", "cat"]);
    assert_eq!(w.submit("ok1", "net/curl\n").code, 0);
    let once = run(
        "build-trigger",
        &w.args("run-once", &["--chain", &fine]),
        "",
        &[],
    );
    assert_eq!(once.code, 0, "{}", once.stderr);
    assert!(once.stderr.is_empty(), "{}", once.stderr);
    assert!(w.spool.join("done/ok1.jsonl").is_file());
    // Their stderr is kept beside the result, not in it.
    let log = std::fs::read_to_string(w.spool.join("done/ok1.log")).expect("log");
    assert!(
        log.starts_with("==> 1 stage.sh: exit status 1\nstage.sh: line 1\n"),
        "{log}"
    );
    assert!(log.contains("==> 2 stage.sh: exit status 3\n"), "{log}");

    let cases: &[(&str, &str, &str)] = &[
        ("f2", "@/stage.sh 2", "exit status 2"),
        ("f75", "@/stage.sh 75", "exit status 75"),
        ("fsig", "@/stage.sh kill", "killed by signal 9 (SIGKILL)"),
    ];
    for (id, stage, how) in cases {
        let chain = w.chain(&format!("chain-{id}"), &["cat", stage, "cat"]);
        assert_eq!(w.submit(id, "net/curl\n").code, 0);
        let once = run(
            "build-trigger",
            &w.args("run-once", &["--chain", &chain]),
            "",
            &[],
        );
        assert_eq!(once.code, 1, "{id}: {}", once.stderr);
        let headline = format!("batch {id}: stage 2 of 3, stage.sh, failed: {how}");
        assert!(
            once.stderr
                .starts_with(&format!("build-trigger: {headline} (see ")),
            "{}",
            once.stderr
        );
        let waited = run("build-trigger", &w.args("wait", &[id]), "", &[]);
        assert_eq!(waited.code, 1, "{id}: {}", waited.stderr);
        let recs = records(&waited.stdout);
        // What the chain wrote first, then the spool record, then the notice.
        assert_eq!(recs[0]["id"], *id);
        assert_eq!(waited.lines()[1], "net/curl");
        let spool = &recs[recs.len() - 2];
        assert_eq!(spool["state"], "failed");
        assert_eq!(spool["stage"], "stage.sh");
        let notice = &recs[recs.len() - 1];
        assert_eq!(notice["kind"], "notice");
        assert_eq!(notice["tool"], "build-trigger");
        assert_eq!(notice["level"], "error");
        assert_eq!(notice["batch"], *id);
        let m = notice["message"].as_str().expect("message");
        assert!(m.starts_with(&headline), "{m}");
        // The tail of its stderr: the last lines, not the first.
        assert!(m.ends_with("stage.sh: line 14\nstage.sh: line 15"), "{m}");
        assert!(!m.contains("line 5\n"), "{m}");
        assert_eq!(
            std::fs::read_to_string(w.spool.join(format!("failed/{id}.jsonl"))).expect("failed"),
            waited.stdout
        );
    }
    assert!(w.files("cur").is_empty(), "{:?}", w.files("cur"));
    // Nothing queued: nothing to do.
    let idle = run(
        "build-trigger",
        &w.args("run-once", &["--chain", &fine]),
        "",
        &[],
    );
    assert_eq!(idle.code, 3, "{}", idle.stderr);
}

#[test]
fn watch_resumes_a_batch_left_in_cur() {
    let w = World::new();
    let chain = w.chain("chain", &["@/record.sh", "cat"]);
    let runs = format!("RUNS={}", s(&w.runs));
    // As a crash leaves it: the batch, its heartbeat, a stage's stderr.
    write_files(
        &w.spool,
        &[
            ("cur/r1.jsonl", "{\"kind\":\"batch\",\"v\":1,\"id\":\"r1\"}\nnet/curl\n"),
            (
                "cur/r1.status",
                "{\"kind\":\"spool\",\"v\":1,\"batch\":\"r1\",\"state\":\"cur\",\"stages\":[{\"stage\":\"record.sh\",\"pid\":999999}]}\n",
            ),
            ("cur/r1.1.record_sh.stderr", "from the crashed run\n"),
            ("new/n1.jsonl", "{\"kind\":\"batch\",\"v\":1,\"id\":\"n1\"}\n"),
        ],
    );
    let mut watch = w.watch(&chain, &["--env", &runs], &[]);
    wait_until("n1 done", Duration::from_secs(20), || {
        w.spool.join("done/n1.jsonl").exists()
    });
    // The batch in cur/ first, then the queue.
    assert_eq!(w.runs(), ["r1 ", "n1 "]);
    let recs = read_records(&w.spool.join("done/r1.jsonl"));
    assert_eq!(recs[0]["id"], "r1");
    assert_eq!(recs[2]["state"], "done");
    assert!(!w.spool.join("done/r1.log").exists());
    assert_eq!(watch.term(), 0);
    assert!(w.files("cur").is_empty(), "{:?}", w.files("cur"));
    assert_eq!(watch.stderr(), "");
}

/// The pids of the stages in a heartbeat file.
fn stage_pids(status: &Value) -> Vec<String> {
    status["stages"]
        .as_array()
        .expect("stages")
        .iter()
        .filter_map(|s| s["pid"].as_u64())
        .map(|p| p.to_string())
        .collect()
}

#[test]
fn sigterm_leaves_the_batch_resumable_and_status_tells() {
    let w = World::new();
    let slow = w.chain("slow", &["cat", "@/record.sh", "@/stage.sh sleep 60"]);
    let fast = w.chain("fast", &["cat"]);
    let runs = format!("RUNS={}", s(&w.runs));
    // Nothing serves the spool yet: status shows the queue, wait times out.
    assert_eq!(w.submit("q1", "net/curl\n").code, 0);
    assert_eq!(w.submit("q2", "net/tor\n").code, 0);
    let st = run("build-trigger", &w.args("status", &[]), "", &[]);
    assert_eq!(st.code, 0, "{}", st.stderr);
    let recs = records(&st.stdout);
    let queued: Vec<(&str, &str)> = recs
        .iter()
        .map(|r| {
            (
                r["batch"].as_str().unwrap_or("?"),
                r["state"].as_str().unwrap_or("?"),
            )
        })
        .collect();
    assert_eq!(queued, [("q1", "new"), ("q2", "new")]);
    assert!(recs
        .iter()
        .all(|r| r["kind"] == "spool" && r["since"].is_string()));
    let start = Instant::now();
    let timed = run(
        "build-trigger",
        &w.args("wait", &["--timeout", "1s", "q1"]),
        "",
        &[],
    );
    assert_eq!(timed.code, 75, "{}", timed.stderr);
    assert!(timed.stdout.is_empty());
    assert!(start.elapsed() >= Duration::from_secs(1));

    let mut watch = w.watch(&slow, &["--env", &runs], &[]);
    let status_file = w.spool.join("cur/q1.status");
    wait_until("q1 at its sleeping stage", Duration::from_secs(20), || {
        std::fs::read_to_string(&status_file)
            .ok()
            .and_then(|t| serde_json::from_str::<Value>(t.trim()).ok())
            .is_some_and(|r| r["stage"] == "stage.sh")
    });
    // Running, and one server a spool: a second one is turned away.
    let st = run("build-trigger", &w.args("status", &[]), "", &[]);
    let recs = records(&st.stdout);
    assert_eq!(recs[0]["batch"], "q1");
    assert_eq!(recs[0]["state"], "cur");
    assert_eq!(recs[0]["running"], true);
    assert_eq!(recs[0]["stage"], "stage.sh");
    assert!(recs[0]["pid"].is_u64());
    assert!(recs[0]["heartbeat"]
        .as_str()
        .is_some_and(|h| h.ends_with('Z')));
    assert_eq!(recs[1]["batch"], "q2");
    assert_eq!(recs[1]["state"], "new");
    let other = run(
        "build-trigger",
        &w.args("run-once", &["--chain", &fast]),
        "",
        &[],
    );
    assert_eq!(other.code, 75, "{}", other.stderr);
    let second = run(
        "build-trigger",
        &w.args("watch", &["--chain", &fast]),
        "",
        &[],
    );
    assert_eq!(second.code, 75, "{}", second.stderr);
    assert!(
        second.stderr.contains(&format!(
            "another build-trigger (pid {}) serves",
            watch.pid()
        )),
        "{}",
        second.stderr
    );

    // SIGTERM: the chain is stopped, the batch stays in cur/, exit 0.
    let heartbeat: Value = serde_json::from_str(
        std::fs::read_to_string(&status_file)
            .expect("status")
            .trim(),
    )
    .expect("status record");
    let pids = stage_pids(&heartbeat);
    assert_eq!(pids.len(), 3);
    let t = Instant::now();
    assert_eq!(watch.term(), 0, "{}", watch.stderr());
    assert!(t.elapsed() < Duration::from_secs(8), "{:?}", t.elapsed());
    groups_gone(&pids);
    assert!(w.spool.join("cur/q1.jsonl").is_file());
    assert!(w.spool.join("new/q2.jsonl").is_file());
    let st = run("build-trigger", &w.args("status", &[]), "", &[]);
    assert_eq!(st.records()[0]["running"], false);

    // The next start runs it again, then the queue.
    let once = run(
        "build-trigger",
        &w.args("run-once", &["--chain", &fast]),
        "",
        &[],
    );
    assert_eq!(once.code, 0, "{}", once.stderr);
    let recs = read_records(&w.spool.join("done/q1.jsonl"));
    assert_eq!(recs[0]["id"], "q1");
    assert!(w.spool.join("done/q2.jsonl").is_file());
    assert!(w.files("cur").is_empty(), "{:?}", w.files("cur"));
    let all = run("build-trigger", &w.args("status", &["--all"]), "", &[]);
    let states: BTreeMap<String, String> = all
        .records()
        .iter()
        .map(|r| {
            (
                r["batch"].as_str().unwrap_or("?").into(),
                r["state"].as_str().unwrap_or("?").into(),
            )
        })
        .collect();
    assert_eq!(
        states,
        BTreeMap::from([("q1".into(), "done".into()), ("q2".into(), "done".into())])
    );
}

#[test]
fn load_200_batches_from_4_processes_each_run_once() {
    let w = World::new();
    let chain = w.chain("chain", &["@/record.sh", "cat"]);
    let runs = format!("RUNS={}", s(&w.runs));
    // Never to be picked up: a half-written file in tmp/, a .tmp name in new/.
    write_files(
        &w.spool,
        &[
            (
                "tmp/half.jsonl",
                "{\"kind\":\"batch\",\"v\":1,\"id\":\"half\"}\nnet/cu",
            ),
            (
                "new/late.jsonl.tmp",
                "{\"kind\":\"batch\",\"v\":1,\"id\":\"late\"}\n",
            ),
        ],
    );
    let mut watch = w.watch(&chain, &["--env", &runs], &[]);
    let spool = s(&w.spool).to_string();
    let submitters: Vec<_> = (0..4)
        .map(|t| {
            let spool = spool.clone();
            std::thread::spawn(move || {
                let mut bad = Vec::new();
                for i in 0..50 {
                    // Every tenth one also submits a batch of another thread.
                    let mut ids = vec![format!("load-{t}-{i}")];
                    if i % 10 == 0 {
                        ids.push(format!("load-{}-{i}", (t + 1) % 4));
                    }
                    for id in ids {
                        let o = run(
                            "build-trigger",
                            &["submit", "--spool", &spool, "--batch", &id],
                            "net/curl\n",
                            &[],
                        );
                        if o.code != 0 {
                            bad.push(format!("{id}: {} {}", o.code, o.stderr));
                        }
                    }
                }
                bad
            })
        })
        .collect();
    for h in submitters {
        let bad = h.join().expect("submitter");
        assert!(bad.is_empty(), "{bad:?}");
    }
    wait_until("200 batches done", Duration::from_secs(45), || {
        w.files("done").len() >= 200
    });
    assert_eq!(watch.term(), 0);
    let expected: BTreeSet<String> = (0..4)
        .flat_map(|t| (0..50).map(move |i| format!("load-{t}-{i}")))
        .collect();
    let done: BTreeSet<String> = w
        .files("done")
        .iter()
        .map(|f| f.strip_suffix(".jsonl").unwrap_or(f).to_string())
        .collect();
    assert_eq!(done, expected);
    // Each run exactly once, by the chain's own log.
    let mut ran = w.runs();
    assert_eq!(ran.len(), 200, "{} runs", ran.len());
    ran.sort();
    ran.dedup();
    assert_eq!(ran.len(), 200);
    assert!(w.files("failed").is_empty());
    assert!(w.files("cur").is_empty(), "{:?}", w.files("cur"));
    assert_eq!(
        w.files("new"),
        BTreeSet::from(["late.jsonl.tmp".to_string()])
    );
    assert!(w.files("tmp").contains("half.jsonl"));
    // The stray name in new/ is said, once, and never taken.
    assert_eq!(
        watch.stderr(),
        "build-trigger: warning: new/late.jsonl.tmp: not a batch (a batch is <id>.jsonl): never run\n"
    );
}

#[test]
fn usage_errors_exit_2() {
    let w = World::new();
    let missing = w.dir.path().join("no-such-chain");
    let cases: Vec<Vec<String>> = vec![
        w.args("watch", &["--chain", s(&missing)]),
        w.args("run-once", &["--chain", "/etc/hostname", "--env", "1X=y"]),
        w.args("submit", &["--batch", "../etc"]),
        w.args("wait", &["bad/id"]),
        w.args("wait", &["--timeout", "0s", "b1"]),
        // Durations past any clock, a batch id too long for a file name.
        w.args("wait", &["--timeout", "18446744073709551615", "b1"]),
        w.args("wait", &["--timeout", "99999999999d", "b1"]),
        w.args("submit", &["--batch", &"b".repeat(2000)]),
        vec!["frobnicate".into()],
    ];
    for a in &cases {
        let o = run("build-trigger", a, "", &[]);
        assert_eq!(o.code, 2, "{a:?}: {}", o.stderr);
        assert!(
            o.stderr.starts_with("build-trigger: "),
            "{a:?}: {}",
            o.stderr
        );
    }
    let bad = w.chain("bad", &["cat", "cat ${NOT_SET_IN_THIS_TEST}"]);
    let o = run(
        "build-trigger",
        &w.args("run-once", &["--chain", &bad]),
        "",
        &[],
    );
    assert_eq!(o.code, 2, "{}", o.stderr);
    assert!(
        o.stderr.contains(
            "bad:3: ${NOT_SET_IN_THIS_TEST} is not set: give --env NOT_SET_IN_THIS_TEST=VALUE"
        ),
        "{}",
        o.stderr
    );
    // The batch record's id is used when --batch is not given, and checked.
    let o = run(
        "build-trigger",
        &w.args("submit", &[]),
        "{\"kind\":\"batch\",\"v\":1,\"id\":\"a b\"}\n",
        &[],
    );
    assert_eq!(o.code, 2, "{}", o.stderr);
    assert!(w.files("new").is_empty());
}

// The real chain.

fn standin(name: &str) -> String {
    root()
        .join("tests/standins")
        .join(name)
        .display()
        .to_string()
}

/// The environment of a build host's real chain over the sample copy: the
/// tools on PATH, the pkg stand-ins over a package database holding rsync.
/// (MACHINE_ARCH comes from the watcher's --env, as on a host.)
fn chain_env(c: &SampleCopy) -> Vec<(String, String)> {
    let db = c.dir.path().join("pkgdb");
    write_files(&db, &[("rsync-3.2.7/+CONTENTS", "@name rsync-3.2.7\n")]);
    let bindir = bin("clean-env").parent().expect("bin dir").to_path_buf();
    let path = format!(
        "{}:{}",
        bindir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut env: Vec<(String, String)> = c
        .env()
        .into_iter()
        .filter(|(k, _)| *k != "MACHINE_ARCH")
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    for (k, v) in [
        ("PATH", path),
        ("PKG_INFO", standin("pkg_info")),
        ("PKG_DELETE", standin("pkg_delete")),
        ("PKG_ADD", standin("pkg_add")),
        ("PKG_DBDIR", s(&db).to_string()),
    ] {
        env.push((k.to_string(), v));
    }
    env
}

fn borrowed(env: &[(String, String)]) -> Vec<(&str, &str)> {
    env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect()
}

#[test]
fn sigkill_mid_batch_then_restart_finishes_without_rebuilding() {
    let c = SampleCopy::new();
    let w = World::new();
    let chain = w.build_chain();
    let owned = chain_env(&c);
    let env = borrowed(&owned);
    // The target's settings as --env.
    let settings = ["--env", "MACHINE_ARCH=amd64", "--env", "SLOW_SECONDS=4"];

    let input = "{\"kind\":\"batch\",\"v\":1,\"id\":\"kill9\"}\n\
                 misc/plain\nnet/tor\ndevel/slow\nnet/torsocks\n";
    let mut first = w.watch(&chain, &settings, &env);
    let sub = run("build-trigger", &w.args("submit", &[]), input, &[]);
    assert_eq!(sub.code, 0, "{}", sub.stderr);
    let logs = c.tree.join("logs/amd64/kill9");
    wait_until("devel/slow building", Duration::from_secs(30), || {
        std::fs::read_to_string(logs.join("devel@slow.log"))
            .is_ok_and(|t| t.contains("slow: second 1 of 4"))
    });
    let heartbeat: Value = serde_json::from_str(
        std::fs::read_to_string(w.spool.join("cur/kill9.status"))
            .expect("status")
            .trim(),
    )
    .expect("status record");
    let pids = stage_pids(&heartbeat);
    assert_eq!(pids.len(), 3, "{heartbeat}");
    // SIGKILL: no chance to clean up; the chain goes on without it.
    first.child.kill().expect("kill -9");
    let _ = first.child.wait();
    let finished = mtimes(&c.packages("all"));
    assert!(finished.contains_key("plain-1.0.tgz"), "{finished:?}");
    assert!(finished.contains_key("tor-0.4.8.12.tgz"), "{finished:?}");
    assert!(!finished.contains_key("slow-1.0.tgz"));
    let journal_before = std::fs::read_to_string(logs.join("journal")).expect("journal");
    let mut second = w.watch(&chain, &settings, &env);
    let waited = run(
        "build-trigger",
        &w.args("wait", &["--timeout", "60s", "kill9"]),
        "",
        &[],
    );
    assert_eq!(waited.code, 0, "{}\n{}", waited.stdout, second.stderr());
    assert_eq!(second.term(), 0);
    let err = second.stderr();
    assert!(
        err.contains("build-trigger: batch kill9: the chain of an earlier run is still at work (process groups "),
        "{err}"
    );
    groups_gone(&pids);

    let recs = records(&waited.stdout);
    let builds: Vec<(String, String)> = of_kind(&recs, "build")
        .iter()
        .map(|r| {
            (
                r["fullpkgpath"].as_str().unwrap_or("?").to_string(),
                r["status"].as_str().unwrap_or("?").to_string(),
            )
        })
        .collect();
    let built = |p: &str| (p.to_string(), "built".to_string());
    assert_eq!(
        builds,
        [
            built("misc/plain"),
            built("net/tor"),
            built("devel/slow"),
            built("net/torsocks")
        ]
    );
    // The entries finished before the kill come from build-list's journal: the
    // same records, their packages not built again.
    let journaled = records(&journal_before);
    for j in journaled.iter().filter(|r| r["kind"] == "build") {
        assert!(recs.contains(j), "{j} not re-emitted as journaled");
    }
    assert!(journaled.len() >= 2, "{journal_before}");
    let now = mtimes(&c.packages("all"));
    for (f, t) in &finished {
        assert_eq!(now[f], *t, "{f} was built again");
    }
    assert!(now.contains_key("slow-1.0.tgz"));
    // collect-built saw the whole batch.
    let files: BTreeSet<&str> = of_kind(&recs, "package")
        .iter()
        .filter_map(|r| r["file"].as_str())
        .collect();
    for f in ["plain-1.0.tgz", "tor-0.4.8.12.tgz", "slow-1.0.tgz"] {
        assert!(files.contains(f), "{f} not in {files:?}");
    }
    let clean = of_kind(&recs, "clean");
    assert!(clean
        .iter()
        .all(|r| r["batch"] == "kill9" && r["arch"] == "amd64"));
    let last = recs.last().expect("records");
    assert_eq!(last["kind"], "spool");
    assert_eq!(last["state"], "done");
    assert_eq!(last["arch"], "amd64");
    let stages: Vec<&str> = last["stages"]
        .as_array()
        .expect("stages")
        .iter()
        .filter_map(|s| s["stage"].as_str())
        .collect();
    assert_eq!(stages, ["clean-env", "build-list", "collect-built"]);
    assert!(w.files("cur").is_empty(), "{:?}", w.files("cur"));
}

/// A chain interrupted after it delivered files (build-trigger killed, its chain
/// stopped): the rerun finds them at the destination, `unchanged`, yet the
/// batch's records keep the earlier run's `sent` transfers, so that its mail
/// lists what the batch delivered and raises no "nothing built" alarm.
#[test]
fn a_rerun_keeps_what_the_interrupted_run_delivered() {
    let w = World::new();
    let rerun = w.dir.path().join("rerun.sh");
    let unchanged = |f: &str| {
        format!(
            r#"{{"kind":"transfer","v":1,"file":"{f}","dest":"signer:/s/amd64","status":"unchanged","batch":"r1","arch":"amd64"}}"#
        )
    };
    let sent = |f: &str| {
        format!(
            r#"{{"kind":"transfer","v":1,"file":"{f}","dest":"signer:/s/amd64","status":"sent","batch":"r1","arch":"amd64"}}"#
        )
    };
    write_script(
        &rerun,
        &format!(
            "#!/bin/sh\ncat\necho '{}'\necho '{}'\n",
            unchanged("curl-8.9.1.tgz"),
            unchanged("tor-0.4.8.12.tgz")
        ),
    );
    let chain = w.chain("chain", &["cat", "@/rerun.sh"]);
    // As the interrupted run left it: the batch, and the output of its last
    // stage so far (one file sent, then the chain was killed).
    let batch = "{\"kind\":\"batch\",\"v\":1,\"id\":\"r1\"}\n{\"kind\":\"port\",\"v\":1,\"pkgpath\":\"net/curl\",\"fullpkgpath\":\"net/curl\"}\n";
    write_files(
        &w.spool,
        &[
            ("cur/r1.jsonl", batch),
            (
                "cur/r1.out",
                &format!(
                    "{batch}{}\n{{\"kind\":\"transfer\",\"v\":1,\"file\":\"x",
                    sent("curl-8.9.1.tgz")
                ),
            ),
        ],
    );
    let mut watch = w.watch(&chain, &[], &[]);
    wait_until("r1 done", Duration::from_secs(20), || {
        w.spool.join("done/r1.jsonl").exists()
    });
    assert_eq!(watch.term(), 0);
    let recs = read_records(&w.spool.join("done/r1.jsonl"));
    let transfers: Vec<(String, String)> = recs
        .iter()
        .filter(|r| r["kind"] == "transfer")
        .map(|r| {
            (
                r["file"].as_str().unwrap().to_string(),
                r["status"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        transfers,
        [
            ("curl-8.9.1.tgz".to_string(), "sent".to_string()),
            ("curl-8.9.1.tgz".into(), "unchanged".into()),
            ("tor-0.4.8.12.tgz".into(), "unchanged".into()),
        ]
    );
    assert!(w.files("cur").is_empty(), "{:?}", w.files("cur"));
    // The mail lists curl, delivered by the batch, and not tor.
    let text = std::fs::read_to_string(w.spool.join("done/r1.jsonl")).unwrap();
    let mail = run(
        "summary-mail",
        &[
            "--print",
            "--from",
            "b@example.org",
            "--to",
            "p@example.org",
        ],
        &text,
        &[],
    );
    assert_eq!(mail.code, 0, "{}", mail.stderr);
    assert!(
        mail.stdout.contains("amd64\tcurl-8.9.1.tgz\n"),
        "{}",
        mail.stdout
    );
    assert!(!mail.stdout.contains("tor-0.4.8.12.tgz"), "{}", mail.stdout);
    assert!(!mail.stdout.contains("nothing"), "{}", mail.stdout);
}

/// Fault injection: 30 batches through the real chain (clean-env, build-list,
/// collect-built, rsync-list to a signing directory of the batch's own), the
/// build-trigger killed with SIGKILL at a random moment of each and started
/// again.  For every batch, the files its mail lists as sent are exactly the
/// files that reached its signing directory, whichever run delivered them.
/// Five build hosts (each its own tree, spool and signing directory) take
/// six batches each, side by side.
#[test]
fn thirty_random_kills_every_mail_matches_the_signing_directory() {
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    // When each batch's first build-trigger is killed, in milliseconds.
    let kills: Vec<u64> = (0..30).map(|_| next() % 1800).collect();
    let killed_mid_chain: usize = std::thread::scope(|scope| {
        let hosts: Vec<_> = kills
            .chunks(6)
            .enumerate()
            .map(|(h, kills)| scope.spawn(move || kill_batches(h * 6, kills)))
            .collect();
        hosts
            .into_iter()
            .map(|h| h.join().expect("a host's batches"))
            .sum()
    });
    // The kills fell in the middle of chains, not only before or after.
    assert!(
        killed_mid_chain >= 10,
        "only {killed_mid_chain} kills mid-chain"
    );
}

/// One build host of the fault injection: batches `k<first>`... each killed
/// after the given milliseconds; how many kills fell mid-chain.
fn kill_batches(first: usize, kills: &[u64]) -> usize {
    let c = SampleCopy::new();
    let w = World::new();
    let sign = w.dir.path().join("sign");
    std::fs::create_dir_all(&sign).unwrap();
    let chain = w.chain(
        "chain",
        &[
            "clean-env --keep rsync",
            // devel/slow built again every batch: a chain of a second or two.
            "build-list --also devel/slow",
            "collect-built",
            "rsync-list @/sign/${PORTFLOW_BATCH}",
        ],
    );
    let owned = chain_env(&c);
    let env = borrowed(&owned);
    let settings = ["--env", "MACHINE_ARCH=amd64", "--env", "SLOW_SECONDS=1"];
    let mut killed_mid_chain = 0;
    for (i, ms) in kills.iter().enumerate() {
        let id = format!("k{:02}", first + i);
        let input =
            format!("{{\"kind\":\"batch\",\"v\":1,\"id\":\"{id}\"}}\nmisc/plain\nnet/tor\n");
        let mut first = w.watch(&chain, &settings, &env);
        let sub = run("build-trigger", &w.args("submit", &[]), &input, &[]);
        assert_eq!(sub.code, 0, "{}", sub.stderr);
        std::thread::sleep(Duration::from_millis(*ms));
        if w.spool.join(format!("cur/{id}.jsonl")).exists() {
            killed_mid_chain += 1;
        }
        first.child.kill().expect("kill -9");
        let _ = first.child.wait();
        let mut second = w.watch(&chain, &settings, &env);
        let waited = run(
            "build-trigger",
            &w.args("wait", &["--timeout", "60s", &id]),
            "",
            &[],
        );
        assert_eq!(
            waited.code,
            0,
            "{id}: {}\n{}",
            waited.stdout,
            second.stderr()
        );
        assert_eq!(second.term(), 0);
        let mail = run(
            "summary-mail",
            &[
                "--print",
                "--from",
                "b@example.org",
                "--to",
                "p@example.org",
            ],
            &waited.stdout,
            &[],
        );
        assert!(
            mail.code == 0,
            "{id}: {}\n{}\nrecords:\n{}\nsecond:\n{}",
            mail.stderr,
            mail.stdout,
            waited.stdout,
            second.stderr()
        );
        let listed: std::collections::BTreeSet<String> = mail
            .stdout
            .lines()
            .filter_map(|l| l.strip_prefix("amd64\t"))
            .filter(|f| f.ends_with(".tgz"))
            .map(str::to_string)
            .collect();
        let arrived: std::collections::BTreeSet<String> = std::fs::read_dir(sign.join(&id))
            .map(|rd| {
                rd.flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        assert!(!arrived.is_empty(), "{id}: nothing arrived");
        assert_eq!(
            listed, arrived,
            "{id}: the mail and the signing directory differ\n{}",
            mail.stdout
        );
    }
    killed_mid_chain
}

/// Files in new/ that are not batches are never run, and are said: by
/// `status` (a warning notice) and by the watcher (a warning, once).
#[test]
fn strays_in_new_are_reported() {
    let w = World::new();
    let chain = w.chain("chain", &["cat"]);
    write_files(
        &w.spool,
        &[
            ("new/notes.txt", "hello\n"),
            ("new/-x.jsonl", "{}\n"),
            (
                "new/ok1.jsonl",
                "{\"kind\":\"batch\",\"v\":1,\"id\":\"ok1\"}\n",
            ),
        ],
    );
    let st = run("build-trigger", &w.args("status", &[]), "", &[]);
    assert_eq!(st.code, 0, "{}", st.stderr);
    let recs = records(&st.stdout);
    let notices: Vec<&str> = of_kind(&recs, "notice")
        .iter()
        .map(|n| n["message"].as_str().unwrap())
        .collect();
    assert_eq!(notices.len(), 2, "{}", st.stdout);
    assert!(notices
        .iter()
        .any(|m| m.starts_with("new/notes.txt: not a batch")));
    assert!(notices
        .iter()
        .any(|m| m.starts_with("new/-x.jsonl: not a batch")));
    assert_eq!(st.stderr.lines().count(), 2, "{}", st.stderr);
    let once = run(
        "build-trigger",
        &w.args("run-once", &["--chain", &chain]),
        "",
        &[],
    );
    assert_eq!(once.code, 0, "{}", once.stderr);
    assert!(
        once.stderr.contains("new/notes.txt: not a batch"),
        "{}",
        once.stderr
    );
    assert_eq!(
        once.stderr.matches("new/notes.txt").count(),
        1,
        "{}",
        once.stderr
    );
    assert!(w.spool.join("done/ok1.jsonl").exists());
    assert!(
        w.spool.join("new/notes.txt").exists(),
        "a stray is left alone"
    );
}

/// SIGTERM to build-trigger stops everything its chain started: build-list
/// stops the make it runs in a process group of its own, so that nothing of
/// the build goes on after a stop; the batch stays in cur/ for the next run.
#[test]
fn sigterm_stops_the_make_of_the_chain_too() {
    let c = SampleCopy::new();
    let w = World::new();
    let chain = w.chain("chain", &["build-list", "collect-built"]);
    let owned = chain_env(&c);
    let env = borrowed(&owned);
    let settings = ["--env", "MACHINE_ARCH=amd64", "--env", "SLOW_SECONDS=60"];
    let input = "{\"kind\":\"batch\",\"v\":1,\"id\":\"term\"}\ndevel/slow\n";
    let mut watch = w.watch(&chain, &settings, &env);
    assert_eq!(
        run("build-trigger", &w.args("submit", &[]), input, &[]).code,
        0
    );
    let logs = c.tree.join("logs/amd64/term");
    wait_until("devel/slow building", Duration::from_secs(30), || {
        std::fs::read_to_string(logs.join("devel@slow.log"))
            .is_ok_and(|t| t.contains("slow: second 1 of 60"))
    });
    let make_group = std::fs::read_to_string(logs.join("make.pid"))
        .expect("make.pid")
        .trim()
        .to_string();
    assert_eq!(watch.term(), 0);
    groups_gone(&[make_group]);
    assert!(
        w.spool.join("cur/term.jsonl").exists(),
        "the batch stays in cur/"
    );
    let slow = std::fs::read_to_string(logs.join("devel@slow.log")).unwrap();
    assert!(
        slow.contains("build-list: stopped by a signal: killing make"),
        "{slow}"
    );
}

/// `status` and `wait` never make a spool: a mistyped one is an error that
/// names it, and nothing is left behind.
#[test]
fn status_and_wait_never_make_a_spool() {
    let t = tempfile::tempdir().expect("tempdir");
    let typo = t.path().join("spoool");
    let spool = typo.display().to_string();
    for args in [
        vec!["status", "--spool", &spool],
        vec!["wait", "--spool", &spool, "--timeout", "1s", "b1"],
    ] {
        let out = run("build-trigger", &args, "", &[]);
        assert_eq!(out.code, 2, "{args:?}: {}", out.stderr);
        assert!(
            out.stderr
                .starts_with(&format!("build-trigger: --spool {spool}: not a spool")),
            "{}",
            out.stderr
        );
        assert!(!typo.exists(), "{args:?} made {spool}");
    }
    // A directory that is not a spool either.
    std::fs::create_dir(&typo).unwrap();
    let out = run("build-trigger", &["status", "--spool", &spool], "", &[]);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert_eq!(std::fs::read_dir(&typo).unwrap().count(), 0);
}

/// `status` on a terminal (a pty, as `script` gives one) is a table; with
/// `--json`, or into a pipe, it is records.
#[test]
fn status_is_a_table_on_a_terminal() {
    require("script", "bsdutils");
    let w = World::new();
    let sub = run(
        "build-trigger",
        &w.args("submit", &["--batch", "tb1"]),
        "net/curl\n",
        &[],
    );
    assert_eq!(sub.code, 0, "{}", sub.stderr);
    let on_tty = |extra: &str| {
        let cmd = format!(
            "'{}' status --spool '{}' {extra}",
            bin("build-trigger").display(),
            w.spool.display()
        );
        let (ok, screen) = on_a_terminal(&cmd);
        assert!(ok, "{screen}");
        screen
    };
    let table = on_tty("");
    let lines: Vec<&str> = table.lines().collect();
    assert!(
        lines[0].starts_with("BATCH") && lines[0].ends_with("HEARTBEAT"),
        "{table}"
    );
    assert!(
        lines[1].starts_with("tb1  ") && lines[1].contains(" new "),
        "{table}"
    );
    let json = on_tty("--json");
    assert!(json.starts_with("{\"kind\":\"spool\""), "{json}");
    let piped = run("build-trigger", &w.args("status", &[]), "", &[]);
    assert!(
        piped.stdout.starts_with("{\"kind\":\"spool\""),
        "{}",
        piped.stdout
    );
}

/// Drain: asked while devel/slow builds (`build-trigger drain`, and SIGUSR1
/// the second time), the port finishes, the rest waits in cur/, the watcher
/// exits 0; the next start finishes the batch and builds no port twice.
#[test]
fn a_drain_lets_the_port_at_work_finish_and_the_rest_wait() {
    let c = SampleCopy::new();
    let w = World::new();
    let chain = w.build_chain();
    let owned = chain_env(&c);
    let env = borrowed(&owned);
    let settings = ["--env", "MACHINE_ARCH=amd64", "--env", "SLOW_SECONDS=3"];
    let input = "{\"kind\":\"batch\",\"v\":1,\"id\":\"dr1\"}\ndevel/slow\nmisc/plain\nnet/tor\n";
    assert_eq!(
        run("build-trigger", &w.args("submit", &[]), input, &[]).code,
        0
    );
    let logs = c.tree.join("logs/amd64/dr1");
    let journal = || std::fs::read_to_string(logs.join("journal")).unwrap_or_default();
    let mut watch = w.watch(&chain, &settings, &env);
    wait_until("devel/slow building", Duration::from_secs(30), || {
        std::fs::read_to_string(logs.join("devel@slow.log"))
            .is_ok_and(|t| t.contains("slow: second 1 of 3"))
    });
    // status tells the entry at work, as build-list publishes it.
    let st = run("build-trigger", &w.args("status", &[]), "", &[]);
    let at = &records(&st.stdout)[0];
    assert_eq!(
        (&at["batch"], &at["entry"], &at["n"], &at["of"]),
        (&json!("dr1"), &json!("devel/slow"), &json!(1), &json!(3)),
        "{}\n{:?}",
        st.stdout,
        w.files("cur")
    );
    let drain = run("build-trigger", &w.args("drain", &[]), "", &[]);
    assert_eq!(drain.code, 0, "{}", drain.stderr);
    let start = Instant::now();
    let code = loop {
        if let Some(st) = watch.child.try_wait().expect("wait") {
            break st.code().unwrap_or(-1);
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "the watcher did not drain:\n{}",
            watch.stderr()
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(code, 0, "{}", watch.stderr());
    assert!(watch.stderr().contains("drained"), "{}", watch.stderr());
    // devel/slow finished, once; the others wait; the batch is in cur/.
    let j = journal();
    assert_eq!(
        j.matches("\"fullpkgpath\":\"devel/slow\"").count(),
        1,
        "{j}"
    );
    assert!(j.contains("\"status\":\"built\""), "{j}");
    assert!(!j.contains("misc/plain") && !j.contains("net/tor"), "{j}");
    assert!(w.spool.join("cur/dr1.jsonl").exists());
    assert!(!w.spool.join("done/dr1.jsonl").exists());
    let slow_log = std::fs::read_to_string(logs.join("devel@slow.log")).unwrap();
    assert!(slow_log.contains("slow: second 3 of 3"), "{slow_log}");

    // The next start ends the drain and finishes the batch: devel/slow comes
    // from the journal, not built again.
    let mut again = w.watch(&chain, &settings, &env);
    wait_until("dr1 done", Duration::from_secs(60), || {
        w.spool.join("done/dr1.jsonl").exists()
    });
    assert_eq!(
        std::fs::read_to_string(logs.join("devel@slow.log")).unwrap(),
        slow_log,
        "devel/slow was built again"
    );
    let j = journal();
    for p in ["devel/slow", "misc/plain", "net/tor"] {
        assert_eq!(
            j.matches(&format!("\"fullpkgpath\":\"{p}\"")).count(),
            1,
            "{p}: {j}"
        );
    }
    let done = std::fs::read_to_string(w.spool.join("done/dr1.jsonl")).unwrap();
    assert!(done.contains("\"file\":\"slow-1.0.tgz\""), "{done}");
    assert!(done.contains("\"file\":\"plain-1.0.tgz\""), "{done}");
    assert!(!w.spool.join("drain").exists());
    // (The batch's files leave cur/ just after its records reach done/.)
    wait_until("cur/ empty", Duration::from_secs(10), || {
        w.files("cur").is_empty()
    });

    // SIGUSR1 (rc.d, kill) asks the same.
    assert!(signal("USR1", &again.pid()), "kill -USR1");
    let start = Instant::now();
    while again.child.try_wait().expect("wait").is_none() {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "no drain on SIGUSR1"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(again.stderr().contains("drained"), "{}", again.stderr());
}

/// Retry: the failed entries of a finished batch, queued again as a batch of
/// their own; a port fixed after it failed is built, nothing else is.
#[test]
fn retry_builds_the_fixed_port_and_nothing_else() {
    let c = SampleCopy::new();
    let w = World::new();
    let chain = w.build_chain();
    let owned = chain_env(&c);
    let env = borrowed(&owned);
    let once = |w: &World| {
        let out = run(
            "build-trigger",
            &w.args(
                "run-once",
                &["--chain", &chain, "--env", "MACHINE_ARCH=amd64"],
            ),
            "",
            &env,
        );
        assert!(matches!(out.code, 0 | 1), "{}", out.stderr);
    };
    let input = "{\"kind\":\"batch\",\"v\":1,\"id\":\"rt1\"}\nmisc/plain\ndevel/broken\n";
    assert_eq!(
        run("build-trigger", &w.args("submit", &[]), input, &[]).code,
        0
    );
    once(&w);
    let first = std::fs::read_to_string(w.spool.join("done/rt1.jsonl")).expect("done/rt1");
    assert!(
        first.contains(
            "\"fullpkgpath\":\"devel/broken\",\"target\":\"package\",\"status\":\"failed\""
        ),
        "{first}"
    );
    let plain = c.packages("all").join("plain-1.0.tgz");
    let plain_built = std::fs::metadata(&plain)
        .expect("plain built")
        .modified()
        .unwrap();

    // Only failed entries are retried.
    let bad = run(
        "build-trigger",
        &w.args("retry", &["rt1", "misc/plain"]),
        "",
        &[],
    );
    assert_eq!(bad.code, 2, "{}", bad.stderr);
    assert!(
        bad.stderr
            .contains("misc/plain: not a failed entry of batch rt1 (failed: devel/broken)"),
        "{}",
        bad.stderr
    );
    // The port is fixed; the retry builds it.
    std::fs::write(
        c.tree.join("devel/broken/Makefile"),
        "COMMENT =\tsample port, fixed\n\nDISTNAME =\tbroken-1.0\nDISTFILES =\n\n\
         PERMIT_PACKAGE =\tYes\n\n.include <bsd.port.mk>\n\ndo-build:\n\t@echo fixed\n",
    )
    .unwrap();
    let retry = run("build-trigger", &w.args("retry", &["rt1"]), "", &[]);
    assert_eq!(retry.code, 0, "{}", retry.stderr);
    let rec = &records(&retry.stdout)[0];
    assert_eq!(rec["id"], "rt1.retry1");
    assert_eq!(rec["retry_of"], "rt1");
    once(&w);
    let again =
        std::fs::read_to_string(w.spool.join("done/rt1.retry1.jsonl")).expect("done/rt1.retry1");
    let builds: Vec<(String, String)> = records(&again)
        .iter()
        .filter(|r| r["kind"] == "build")
        .map(|r| {
            (
                r["fullpkgpath"].as_str().unwrap_or("").to_string(),
                r["status"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    assert_eq!(builds, [("devel/broken".to_string(), "built".to_string())]);
    assert!(again.contains("\"file\":\"broken-1.0.tgz\""), "{again}");
    assert_eq!(
        std::fs::metadata(&plain).unwrap().modified().unwrap(),
        plain_built,
        "misc/plain was built again"
    );
    // Nothing failed in the retry: nothing to retry of it.
    let none = run("build-trigger", &w.args("retry", &["rt1.retry1"]), "", &[]);
    assert_eq!(none.code, 3, "{}", none.stderr);
}

/// Finished batches older than --keep-days are removed from done/ and
/// failed/ (records and logs) when the spool is served; newer ones stay.
#[test]
fn old_finished_batches_are_pruned() {
    let w = World::new();
    let chain = w.chain("chain", &["cat"]);
    let batch = |id: &str| format!("{{\"kind\":\"batch\",\"v\":1,\"id\":\"{id}\"}}\n");
    write_files(
        &w.spool,
        &[
            ("done/old1.jsonl", &batch("old1")),
            ("done/old1.log", "==> 1 cat: exit status 0\n"),
            ("failed/old2.jsonl", &batch("old2")),
            ("done/new1.jsonl", &batch("new1")),
            ("new/q1.jsonl", &batch("q1")),
        ],
    );
    for f in ["done/old1.jsonl", "done/old1.log", "failed/old2.jsonl"] {
        let st = Command::new("touch")
            .args(["-d", "40 days ago"])
            .arg(w.spool.join(f))
            .status()
            .expect("touch");
        assert!(st.success());
    }
    let out = run(
        "build-trigger",
        &w.args("run-once", &["--chain", &chain, "--keep-days", "30"]),
        "",
        &[],
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    let done: Vec<String> = w.files("done").into_iter().collect();
    assert_eq!(done, ["new1.jsonl", "q1.jsonl"]);
    assert!(w.files("failed").is_empty(), "{:?}", w.files("failed"));
}

/// Without a terminal (rc.d), build-trigger's messages also go to syslog,
/// facility daemon, as `build-trigger[pid]: message` (to the socket of a
/// syslogd the test plays).
#[test]
fn without_a_terminal_messages_go_to_syslog_too() {
    let w = World::new();
    let sock = w.dir.path().join("log");
    let log = std::os::unix::net::UnixDatagram::bind(&sock).expect("bind the log socket");
    log.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let chain = w.chain("chain", &["cat", "@/stage.sh 2"]);
    assert_eq!(w.submit("sl1", "net/curl\n").code, 0);
    let sock_s = sock.display().to_string();
    let out = run(
        "build-trigger",
        &w.args("run-once", &["--chain", &chain]),
        "",
        &[("PORTFLOW_SYSLOG_SOCKET", sock_s.as_str())],
    );
    assert_eq!(out.code, 1, "{}", out.stderr);
    let mut buf = [0u8; 4096];
    let n = log.recv(&mut buf).expect("a message on the log socket");
    let msg = String::from_utf8_lossy(&buf[..n]);
    // daemon.warning: <28>
    assert!(msg.starts_with("<28>build-trigger["), "{msg}");
    assert!(
        msg.contains("]: batch sl1: stage 2 of 2, stage.sh, failed"),
        "{msg}"
    );
    // The same on stderr.
    assert!(
        out.stderr
            .contains("batch sl1: stage 2 of 2, stage.sh, failed"),
        "{}",
        out.stderr
    );
}

/// `plan`: the watch serving the spool answers at once, even while a batch
/// builds, with its own chain's build-list -n; nothing is built; no watch, no
/// answer (75) and no request left behind.
#[test]
fn a_plan_is_answered_while_a_batch_builds() {
    let c = SampleCopy::new();
    let w = World::new();
    let chain = w.build_chain();
    let owned = chain_env(&c);
    let env = borrowed(&owned);
    // No spool yet: an error naming it, nothing made.
    let none = run("build-trigger", &w.args("plan", &[]), "net/curl\n", &[]);
    assert_eq!(none.code, 2, "{}", none.stderr);
    assert!(none.stderr.contains("not a spool"), "{}", none.stderr);
    assert!(!w.spool.exists());

    let input = "{\"kind\":\"batch\",\"v\":1,\"id\":\"pl1\"}\ndevel/slow\n";
    assert_eq!(
        run("build-trigger", &w.args("submit", &[]), input, &[]).code,
        0
    );
    // Nobody serves the spool: no answer.
    let t = Instant::now();
    let lone = run(
        "build-trigger",
        &w.args("plan", &["--timeout", "2s"]),
        "net/curl\n",
        &[],
    );
    assert_eq!(lone.code, 75, "{}", lone.stderr);
    assert!(t.elapsed() < Duration::from_secs(10));
    assert!(lone.stderr.contains("no answer in 2s"), "{}", lone.stderr);
    assert!(w.files("plan").is_empty(), "{:?}", w.files("plan"));

    let settings = ["--env", "MACHINE_ARCH=amd64", "--env", "SLOW_SECONDS=20"];
    let logs = c.tree.join("logs/amd64/pl1");
    let mut watch = w.watch(&chain, &settings, &env);
    wait_until("devel/slow building", Duration::from_secs(30), || {
        std::fs::read_to_string(logs.join("devel@slow.log"))
            .is_ok_and(|t| t.contains("slow: second 1 of 20"))
    });
    let t = Instant::now();
    let plan = run(
        "build-trigger",
        &w.args("plan", &[]),
        "net/curl\nmisc/plain\ndevel/marked\n",
        &[],
    );
    assert_eq!(plan.code, 0, "{}", plan.stderr);
    assert!(
        t.elapsed() < Duration::from_secs(10),
        "the plan waited for the batch"
    );
    let got: Vec<(String, String)> = of_kind(&records(&plan.stdout), "build")
        .iter()
        .map(|r| {
            (
                r["fullpkgpath"].as_str().unwrap_or("?").to_string(),
                r["plan"].as_str().unwrap_or("?").to_string(),
            )
        })
        .collect();
    let p = |a: &str, b: &str| (a.to_string(), b.to_string());
    assert_eq!(
        got,
        [
            p("net/curl", "build"),
            p("misc/plain", "build"),
            p("devel/marked", "ignored")
        ],
        "{}",
        plan.stdout
    );
    assert!(w.files("plan").is_empty(), "{:?}", w.files("plan"));
    assert!(!c.files("all").contains(&"curl-8.9.1.tgz".to_string()));
    // The batch was not disturbed.
    assert!(w.files("cur").contains("pl1.jsonl"), "{:?}", w.files("cur"));
    assert_eq!(watch.term(), 0, "{}", watch.stderr());
}
