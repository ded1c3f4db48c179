//! build-coordinator end to end, every program real: a git history of the sample
//! tree (a release tag, a -stable branch, commits on it), the list stage, the
//! prefetch, three targets (one on a local spool, two on build hosts behind
//! their own OpenSSH servers), each with its own ports tree, package
//! repository, package database and `build-trigger watch`, the chain rsyncing
//! to a signing directory, and one mail received by a real SMTP server.  Then a
//! build host killed in the middle of a batch, a run with nothing new, the
//! lock, and bad configuration files.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::smtpd::Smtpd;
use crate::sshd::Sshd;
use crate::support::*;

const BASE: &str = "OPENBSD_7_8_BASE";
const BRANCH: &str = "OPENBSD_7_8";

/// The deadline of the target whose host is killed.
const SHORT_DEADLINE: u64 = 8;

fn s(p: &Path) -> String {
    p.to_str().expect("utf-8 temp path").to_string()
}

fn bindir() -> PathBuf {
    bin("build-coordinator")
        .parent()
        .expect("bin dir")
        .to_path_buf()
}

/// PATH with the binaries under test first.
fn test_path() -> String {
    format!(
        "{}:{}",
        bindir().display(),
        std::env::var("PATH").unwrap_or_else(|_| "/usr/bin:/bin".into())
    )
}

/// git with an environment of its own.
fn git(home: &Path, dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .args(args)
        .current_dir(dir)
        .env("HOME", home)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_AUTHOR_NAME", "Porter")
        .env("GIT_AUTHOR_EMAIL", "porter@example.org")
        .env("GIT_COMMITTER_NAME", "Porter")
        .env("GIT_COMMITTER_EMAIL", "porter@example.org")
        .env_remove("GIT_DIR")
        .env_remove("GIT_WORK_TREE")
        .output()
        .unwrap_or_else(|e| panic!("git: {e}"));
    assert!(
        out.status.success(),
        "git {args:?} in {}: {}",
        dir.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn append(file: &Path, text: &str) {
    let mut s = fs::read_to_string(file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
    s.push_str(text);
    fs::write(file, s).expect("write");
}

/// A porter's repository of the sample tree: the release tagged, the branch
/// made from it with one -stable commit (curl, plain).
fn origin(t: &Path) -> PathBuf {
    let o = t.join("origin");
    copy_tree(&fixture_tree(), &o);
    for d in ["pobj", "distfiles", "packages", "plist", "logs"] {
        let _ = fs::remove_dir_all(o.join(d));
    }
    git(t, &o, &["-c", "init.defaultBranch=main", "init", "-q"]);
    git(t, &o, &["add", "-A", "."]);
    git(t, &o, &["commit", "-q", "-m", "OpenBSD 7.8"]);
    git(t, &o, &["tag", BASE]);
    git(t, &o, &["checkout", "-q", "-b", BRANCH]);
    append(&o.join("net/curl/Makefile"), "# -stable: CVE-2025-0001\n");
    append(&o.join("misc/plain/pkg/PLIST"), "share/doc/plain/NEWS\n");
    git(
        t,
        &o,
        &[
            "commit",
            "-q",
            "-a",
            "-m",
            "curl: security fix; plain: PLIST",
        ],
    );
    o
}

/// A clone of the origin: at the release (the initiator, which the update
/// brings to the branch) or on the branch (a build host).
fn clone(t: &Path, origin: &Path, to: &Path, at_release: bool) {
    git(t, t, &["clone", "-q", &s(origin), &s(to)]);
    if at_release {
        git(t, to, &["checkout", "-q", "-B", BRANCH, BASE]);
    } else {
        git(t, to, &["checkout", "-q", BRANCH]);
    }
}

/// A build-trigger watch started by the test, in a process group of its own
/// (killed whole, chain included, on drop or by `kill`).
struct Watcher {
    child: Option<Child>,
    log: PathBuf,
}

impl Watcher {
    fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = Command::new("kill")
                .args(["-s", "KILL", "--", &format!("-{}", c.id())])
                .stderr(Stdio::null())
                .status();
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    fn log(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        self.kill();
    }
}

/// One build host: its own ports tree, package repository, package database,
/// spool and watcher; `ssh` when it is reached over ssh.
struct Host {
    arch: &'static str,
    dir: PathBuf,
    watcher: Watcher,
    sshd: Option<Sshd>,
}

impl Host {
    fn tree(&self) -> PathBuf {
        self.dir.join("ports")
    }

    fn spool(&self) -> PathBuf {
        self.dir.join("spool")
    }

    /// The `devel@slow.log` of any batch of this host's build-list.
    fn slow_log_exists(&self) -> bool {
        let logs = self.tree().join("logs").join(self.arch);
        fs::read_dir(&logs)
            .into_iter()
            .flatten()
            .flatten()
            .any(|e| e.path().join("devel@slow.log").exists())
    }
}

struct World {
    t: tempfile::TempDir,
    origin: PathBuf,
    init: PathBuf,
    signing: PathBuf,
    distdir: PathBuf,
    work: PathBuf,
    hosts: Vec<Host>,
    smtpd: Smtpd,
    config: PathBuf,
}

fn standin(name: &str) -> String {
    s(&root().join("tests/standins").join(name))
}

/// Start the watcher of a host: `build-trigger watch` with the chain and the
/// host's settings as --env.
fn start_watcher(
    t: &Path,
    dir: &Path,
    arch: &str,
    slow: u32,
    signing: &Path,
    distdir: &Path,
) -> Watcher {
    use std::os::unix::process::CommandExt;
    let tree = dir.join("ports");
    let chain = t.join("chain");
    let dbdir = dir.join("pkgdb");
    let sign = signing.join(arch);
    fs::create_dir_all(&sign).expect("mkdir signing");
    let settings = [
        ("PORTSDIR", s(&tree)),
        ("MAKE", "bmake".into()),
        ("MAKESYSPATH", s(&tree.join("infrastructure/mk"))),
        ("MACHINE_ARCH", arch.into()),
        ("PACKAGE_REPOSITORY", s(&dir.join("packages"))),
        ("DISTDIR", s(distdir)),
        ("FETCH_MIRROR", s(&root().join("tests/fixtures/mirror"))),
        ("PKG_INFO", standin("pkg_info")),
        ("PKG_DELETE", standin("pkg_delete")),
        ("PKG_ADD", standin("pkg_add")),
        ("PKG_DBDIR", s(&dbdir)),
        ("SIGNING_DEST", format!("{}/", s(&sign))),
        ("SLOW_SECONDS", slow.to_string()),
    ];
    let log = dir.join("watch.log");
    let mut cmd = Command::new(bin("build-trigger"));
    cmd.arg("watch")
        .arg("--spool")
        .arg(dir.join("spool"))
        .arg("--chain")
        .arg(&chain)
        .arg("--rescan")
        .arg("1s");
    for (k, v) in &settings {
        cmd.arg("--env").arg(format!("{k}={v}"));
    }
    for v in [
        "PORTSDIR",
        "SQLPORTS",
        "MAKE",
        "PACKAGE_REPOSITORY",
        "MACHINE_ARCH",
    ] {
        cmd.env_remove(v);
    }
    let child = cmd
        .env("PATH", test_path())
        .stdin(Stdio::null())
        .stdout(fs::File::create(dir.join("watch.out")).expect("watch.out"))
        .stderr(fs::File::create(&log).expect("watch.log"))
        .process_group(0)
        .spawn()
        .expect("run build-trigger watch");
    Watcher {
        child: Some(child),
        log,
    }
}

impl World {
    fn new() -> World {
        require("bmake", "bmake");
        require("git", "git");
        require("rsync", "rsync");
        let t = tempfile::tempdir().expect("tempdir");
        let tp = t.path().to_path_buf();
        let origin = origin(&tp);
        let init = tp.join("init");
        fs::create_dir_all(&init).expect("mkdir");
        clone(&tp, &origin, &init.join("ports"), true);
        let db = crate::fixture::sample_db(&init);
        let signing = tp.join("signing");
        let distdir = tp.join("distfiles");
        let work = tp.join("work");
        fs::write(
            tp.join("chain"),
            "# the per-architecture chain of the test\n\
             clean-env --keep rsync\n\
             build-list\n\
             collect-built\n\
             rsync-list ${SIGNING_DEST}\n",
        )
        .expect("write chain");

        // Three hosts: amd64 on a local spool, i386 and aarch64 behind sshd.
        // aarch64 is slow: its host is the one killed in the middle.
        let mut hosts = Vec::new();
        for (arch, ssh, slow) in [
            ("amd64", false, 1),
            ("i386", true, 1),
            ("aarch64", true, 300),
        ] {
            let dir = tp.join(format!("host-{arch}"));
            fs::create_dir_all(&dir).expect("mkdir host");
            clone(&tp, &origin, &dir.join("ports"), false);
            write_files(
                &dir.join("pkgdb"),
                &[
                    ("rsync-3.2.7/+CONTENTS", "@name rsync-3.2.7\n"),
                    ("oldjunk-1.0/+CONTENTS", "@name oldjunk-1.0\n"),
                ],
            );
            let watcher = start_watcher(&tp, &dir, arch, slow, &signing, &distdir);
            let sshd = ssh.then(|| Sshd::builder().env("PATH", &test_path()).start());
            hosts.push(Host {
                arch,
                dir,
                watcher,
                sshd,
            });
        }
        let smtpd = Smtpd::start();

        let mut targets = String::new();
        for h in &hosts {
            targets.push_str(&format!(
                "\n[[target]]\nname = \"{a}\"\narch = \"{a}\"\nspool = \"{}\"\n",
                s(&h.spool()),
                a = h.arch
            ));
            match &h.sshd {
                None => targets.push_str("deadline = \"2m\"\n"),
                Some(sshd) => {
                    // The host killed later gets its short deadline then.
                    let deadline = if h.arch == "aarch64" {
                        "\"2m\" # aarch64"
                    } else {
                        "\"2m\""
                    };
                    let opts: Vec<String> =
                        sshd.ssh_args().iter().map(|a| format!("\"{a}\"")).collect();
                    targets.push_str(&format!(
                        "ssh = \"{}\"\nssh_options = [{}]\ndeadline = {deadline}\n",
                        sshd.destination(),
                        opts.join(", ")
                    ));
                }
            }
        }
        let config = tp.join("portflow.conf");
        fs::write(
            &config,
            format!(
                "# the coordinator of the test\n\
                 ports_dir = \"{ports}\"\n\
                 make = \"bmake\"\n\
                 update = [\"git\", \"pull\", \"-q\", \"--ff-only\", \"origin\", \"{BRANCH}\"]\n\
                 sqlports = \"{db}\"\n\
                 exclude = [\"sysutils/firmware/*\"]\n\
                 work_dir = \"{work}\"\n\
                 \n\
                 [delta]\n\
                 git = \"{BASE}..{BRANCH}\"\n\
                 \n\
                 [env]\n\
                 HOME = \"{home}\"\n\
                 GIT_CONFIG_NOSYSTEM = \"1\"\n\
                 MAKESYSPATH = \"{ports}/infrastructure/mk\"\n\
                 MACHINE_ARCH = \"amd64\"\n\
                 DISTDIR = \"{distdir}\"\n\
                 FETCH_MIRROR = \"{mirror}\"\n\
                 \n\
                 [mail]\n\
                 to = [\"porters@example.org\"]\n\
                 from = \"builder@example.org\"\n\
                 smtp = \"{smtp}\"\n\
                 tls = \"never\"\n\
                 {targets}",
                ports = s(&init.join("ports")),
                db = s(&db),
                work = s(&work),
                home = s(&tp),
                distdir = s(&distdir),
                mirror = s(&root().join("tests/fixtures/mirror")),
                smtp = smtpd.addr(),
            ),
        )
        .expect("write config");
        World {
            origin,
            init,
            signing,
            distdir,
            work,
            hosts,
            smtpd,
            config,
            t,
        }
    }

    fn coordinator(&self, extra: &[&str]) -> Command {
        let mut c = Command::new(bin("build-coordinator"));
        c.arg("run").arg("--config").arg(&self.config).args(extra);
        for v in [
            "PORTSDIR",
            "SQLPORTS",
            "MAKE",
            "PACKAGE_REPOSITORY",
            "MACHINE_ARCH",
        ] {
            c.env_remove(v);
        }
        c.env("PATH", test_path());
        c
    }

    /// The build hosts follow the branch in their own trees.
    fn hosts_follow(&self) {
        for h in &self.hosts {
            git(
                self.t.path(),
                &h.tree(),
                &["pull", "-q", "--ff-only", "origin", BRANCH],
            );
        }
    }

    fn signed(&self, arch: &str) -> Vec<String> {
        let mut v: Vec<String> = fs::read_dir(self.signing.join(arch))
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    /// The batch directories, oldest first.
    fn batches(&self) -> Vec<PathBuf> {
        let mut v: Vec<PathBuf> = fs::read_dir(&self.work)
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.join("list.jsonl").is_file())
            .collect();
        v.sort();
        v
    }

    fn diagnostics(&self) -> String {
        let mut d = String::new();
        for h in &self.hosts {
            d.push_str(&format!("--- watch {}:\n{}\n", h.arch, h.watcher.log()));
            if let Some(sshd) = &h.sshd {
                d.push_str(&format!("--- sshd {}:\n{}\n", h.arch, sshd.log()));
            }
        }
        for b in self.batches() {
            for e in fs::read_dir(&b).into_iter().flatten().flatten() {
                let p = e.path();
                if p.extension().is_some_and(|x| x == "log") {
                    d.push_str(&format!(
                        "--- {}:\n{}\n",
                        p.display(),
                        fs::read_to_string(&p).unwrap_or_default()
                    ));
                }
            }
        }
        d.push_str(&format!("--- smtpd:\n{}\n", self.smtpd.log()));
        d
    }
}

fn records(path: &Path) -> Vec<Value> {
    fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l:?}: {e}")))
        .collect()
}

/// Wait for a child, killing it after `limit`.
fn wait_for(mut child: Child, limit: Duration) -> (i32, String, String) {
    let start = Instant::now();
    loop {
        match child.try_wait().expect("try_wait") {
            Some(_) => break,
            None if start.elapsed() > limit => {
                let _ = child.kill();
                break;
            }
            None => std::thread::sleep(Duration::from_millis(50)),
        }
    }
    let out = child.wait_with_output().expect("wait");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn spawn(mut c: Command) -> Child {
    c.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run build-coordinator")
}

#[test]
fn three_targets_one_mail_then_a_host_dies() {
    let mut w = World::new();
    // libfoo: curl's dependency, built on the way, outside the list.
    let files = [
        "curl-8.9.1.tgz",
        "debug-curl-8.9.1.tgz",
        "libfoo-1.0.tgz",
        "plain-1.0.tgz",
    ];

    // 1. The branch has a commit the initiator has not seen: every target
    //    builds curl and plain, the packages reach the signing directories, one
    //    mail lists them all.
    let (code, out, err) = wait_for(spawn(w.coordinator(&[])), Duration::from_secs(120));
    assert_eq!(
        (code, err.as_str()),
        (0, ""),
        "first run\n{}",
        w.diagnostics()
    );
    assert_eq!(out, "", "quiet on success");
    for h in &w.hosts {
        assert_eq!(w.signed(h.arch), files, "{} signing dir", h.arch);
    }
    let mails = w.smtpd.messages();
    assert_eq!(mails.len(), 1, "{}", w.diagnostics());
    let m = &mails[0];
    assert_eq!(m.header("Subject"), Some("stable packages to sign"));
    assert_eq!(m.rcpt_tos, ["porters@example.org"]);
    for h in &w.hosts {
        for f in files {
            assert!(
                m.body.contains(&format!("{}\t{f}\n", h.arch)),
                "{} {f} not in the mail:\n{}",
                h.arch,
                m.body
            );
        }
    }
    assert!(m.body.contains("net/curl/Makefile"), "{}", m.body);
    // What the batch directory keeps.
    let b = &w.batches()[0];
    let list = records(&b.join("list.jsonl"));
    assert_eq!(list[0]["kind"], "batch");
    assert_eq!(list[0]["source"]["from"], BASE);
    let id = list[0]["id"].as_str().expect("batch id").to_string();
    assert_eq!(
        m.header("X-Portflow-Batch"),
        Some(id.as_str()),
        "the mail names the batch"
    );
    let listed: Vec<&str> = list
        .iter()
        .filter(|r| r["kind"] == "port")
        .filter_map(|r| r["fullpkgpath"].as_str())
        .collect();
    assert_eq!(listed, ["misc/plain", "net/curl"]);
    // The prefetch fetched curl's distfile once, into the shared DISTDIR.
    let fetch = records(&b.join("fetch.jsonl"));
    assert!(
        fetch
            .iter()
            .any(|r| r["kind"] == "build" && r["target"] == "fetch" && r["status"] == "built"),
        "{fetch:?}"
    );
    assert!(w.distdir.join("curl-8.9.1.tar.gz").is_file());
    let targets = records(&b.join("targets.jsonl"));
    assert_eq!(targets.len(), 3);
    for (t, h) in targets.iter().zip(&w.hosts) {
        assert_eq!(t["name"], h.arch);
        assert_eq!(t["status"], "done", "{t}");
        assert_eq!(t["batch"], id.as_str());
    }
    for h in &w.hosts {
        let recs = records(&b.join(format!("target/{}.jsonl", h.arch)));
        let sent = recs
            .iter()
            .filter(|r| r["kind"] == "transfer" && r["status"] == "sent")
            .count();
        assert_eq!(sent, files.len(), "{}: {recs:?}", h.arch);
    }
    let mail = records(&b.join("mail.jsonl"));
    // The failures of each arch's batch are kept for the next mail.
    let history: Value =
        serde_json::from_str(&fs::read_to_string(w.work.join("history.json")).expect("history"))
            .expect("history JSON");
    for h in &w.hosts {
        assert!(history["arches"][h.arch].is_object(), "{history}");
    }
    assert_eq!(mail[0]["status"], "sent");
    assert!(b.join("summary.jsonl").is_file() && b.join("summary.json").is_file());

    // 2. Another commit, to devel/slow; the build hosts follow the branch.  The
    //    aarch64 host is killed (its sshd and its build-trigger, chain
    //    included) while devel/slow builds there: the coordinator gives it up at
    //    its deadline and the others' packages and the mail arrive.
    append(
        &w.origin.join("devel/slow/Makefile"),
        "# -stable: REVISION bump\n",
    );
    git(
        w.t.path(),
        &w.origin,
        &["commit", "-q", "-a", "-m", "slow: bump"],
    );
    w.hosts_follow();
    let text = fs::read_to_string(&w.config).expect("read config");
    let short = format!("\"{SHORT_DEADLINE}s\" # aarch64");
    assert!(text.contains("\"2m\" # aarch64"));
    fs::write(&w.config, text.replace("\"2m\" # aarch64", &short)).expect("write config");
    let started = Instant::now();
    let child = spawn(w.coordinator(&[]));
    let victim = w
        .hosts
        .iter()
        .position(|h| h.arch == "aarch64")
        .expect("aarch64");
    // Killed while devel/slow builds there (a loaded machine may not get that
    // far before the deadline: then it is killed at the deadline).
    while !w.hosts[victim].slow_log_exists()
        && started.elapsed() < Duration::from_secs(SHORT_DEADLINE)
    {
        std::thread::sleep(Duration::from_millis(100));
    }
    w.hosts[victim].watcher.kill();
    drop(w.hosts[victim].sshd.take());
    let (code, _out, err) = wait_for(child, Duration::from_secs(120));
    let took = started.elapsed();
    assert_eq!(code, 5, "second run: {err}\n{}", w.diagnostics());
    assert!(
        took < Duration::from_secs(SHORT_DEADLINE + 15),
        "the lost host held the run for {took:?}"
    );
    assert!(err.contains("target aarch64"), "{err}");
    for arch in ["amd64", "i386"] {
        assert!(
            w.signed(arch).contains(&"slow-1.0.tgz".to_string()),
            "{arch}"
        );
    }
    assert!(!w.signed("aarch64").contains(&"slow-1.0.tgz".to_string()));
    let mails = w.smtpd.messages();
    assert_eq!(mails.len(), 2, "{}", w.diagnostics());
    let m = &mails[1];
    if std::env::var_os("PORTFLOW_SHOW_MAIL").is_some() {
        for m in &mails {
            eprintln!("{}", String::from_utf8_lossy(&m.raw));
        }
        eprintln!("second run's stderr:\n{err}");
    }
    for arch in ["amd64", "i386"] {
        assert!(
            m.body.contains(&format!("{arch}\tslow-1.0.tgz\n")),
            "{}",
            m.body
        );
    }
    assert!(!m.body.contains("aarch64\tslow-1.0.tgz"), "{}", m.body);
    assert!(
        m.body.contains("Targets that did not finish:"),
        "{}",
        m.body
    );
    let lost = m
        .lines()
        .into_iter()
        .find(|l| l.starts_with("aarch64: "))
        .unwrap_or_else(|| panic!("no line for aarch64 in\n{}", m.body))
        .to_string();
    assert!(
        lost.starts_with("aarch64: timeout") || lost.starts_with("aarch64: unreachable"),
        "{lost}"
    );
    let b = w.batches().last().expect("second batch").clone();
    let targets = records(&b.join("targets.jsonl"));
    let statuses: Vec<&str> = targets
        .iter()
        .filter_map(|t| t["status"].as_str())
        .collect();
    assert_eq!(statuses[..2], ["done", "done"], "{targets:?}");
    assert!(
        matches!(statuses[2], "timeout" | "unreachable"),
        "{targets:?}"
    );
    assert!(
        targets[2]["seconds"].as_f64().unwrap_or(0.0) <= SHORT_DEADLINE as f64 + 1.0,
        "{targets:?}"
    );

    // 3. Nothing new on the branch: exit 3, no mail, no batch.
    let batches = w.batches().len();
    let (code, out, err) = wait_for(spawn(w.coordinator(&[])), Duration::from_secs(60));
    assert_eq!((code, out.as_str(), err.as_str()), (3, "", ""), "third run");
    assert_eq!(w.smtpd.messages().len(), 2);
    assert_eq!(w.batches().len(), batches);
    let _ = &w.init;
}

/// A configuration file with a local target and a maildir, in `t`.
fn small_config(t: &Path, update: &str, extra: &str) -> PathBuf {
    let config = t.join("portflow.conf");
    fs::write(
        &config,
        format!(
            "ports_dir = \"{}\"\n\
             update = {update}\n\
             work_dir = \"{}\"\n\
             {extra}\
             [mail]\n\
             maildir = \"{}\"\n\
             \n\
             [[target]]\n\
             name = \"amd64\"\n\
             arch = \"amd64\"\n\
             spool = \"{}\"\n\
             deadline = \"10s\"\n",
            s(&fixture_tree()),
            s(&t.join("work")),
            s(&t.join("mail")),
            s(&t.join("spool")),
        ),
    )
    .expect("write config");
    config
}

fn coordinator(args: &[&str]) -> Out {
    let mut c = Command::new(bin("build-coordinator"));
    c.args(args).env("PATH", test_path());
    run_cmd(c, "", &[])
}

#[test]
fn nothing_changed_exits_3_without_mail() {
    let t = tempfile::tempdir().expect("tempdir");
    // The update brings nothing (prints nothing), and the delta is its output.
    let config = small_config(t.path(), "[\"true\"]", "");
    let out = coordinator(&["run", "--config", &s(&config)]);
    assert_eq!(
        (out.code, out.stdout.as_str(), out.stderr.as_str()),
        (3, "", "")
    );
    assert!(!t.path().join("mail").exists(), "a mail was sent");
    assert!(!t.path().join("spool").exists(), "a batch was submitted");
    // No batch directory was made.
    let entries: Vec<String> = fs::read_dir(t.path().join("work"))
        .expect("work dir")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        entries
            .iter()
            .all(|e| ["lock", "state.json"].contains(&e.as_str())),
        "{entries:?}"
    );
}

#[test]
fn a_second_run_while_one_runs_exits_quietly() {
    let t = tempfile::tempdir().expect("tempdir");
    // An update that would fail: it must not run at all.
    let config = small_config(t.path(), "[\"false\"]", "");
    fs::create_dir_all(t.path().join("work")).expect("mkdir");
    let lock = fs::File::create(t.path().join("work/lock")).expect("lock file");
    lock.lock().expect("lock");
    let out = coordinator(&["run", "--config", &s(&config)]);
    assert_eq!(
        (out.code, out.stdout.as_str(), out.stderr.as_str()),
        (0, "", "")
    );
    assert!(!t.path().join("work/state.json").exists());
    lock.unlock().expect("unlock");
    // Without the lock held, the same run does run, and the update fails.
    let out = coordinator(&["run", "--config", &s(&config)]);
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(out.stderr.contains("update failed"), "{}", out.stderr);
}

#[test]
fn bad_configuration_names_file_and_line() {
    let t = tempfile::tempdir().expect("tempdir");
    let good = small_config(t.path(), "[\"true\"]", "");
    let out = coordinator(&["check", "--config", &s(&good)]);
    assert_eq!((out.code, out.stderr.as_str()), (0, ""));

    let text = fs::read_to_string(&good).expect("read");
    let cases: &[(&str, usize, &str)] = &[
        // an unknown key, in a target (after the deadline, line 11)
        ("deadline = \"10s\"\n", 12, "unknown field `colour`"),
        // a bad value
        ("deadline = \"10s\"", 11, "deadline: invalid duration"),
        // a relative path
        ("work_dir = \"/", 3, "work_dir must be an absolute path"),
    ];
    for (i, (find, line, says)) in cases.iter().enumerate() {
        let bad_text = match i {
            0 => text.replace(find, "deadline = \"10s\"\ncolour = \"blue\"\n"),
            1 => text.replace(find, "deadline = \"ten seconds\""),
            _ => text.replace(find, "work_dir = \""),
        };
        assert_ne!(bad_text, text);
        let bad = t.path().join(format!("bad{i}.conf"));
        fs::write(&bad, bad_text).expect("write");
        for cmd in ["run", "check"] {
            let out = coordinator(&[cmd, "--config", &s(&bad)]);
            let want = format!("build-coordinator: {}:{line}: ", bad.display());
            assert_eq!(out.code, 2, "{cmd} {i}: {}", out.stderr);
            assert!(
                out.stderr.starts_with(&want) && out.stderr.contains(says),
                "{cmd} {i}: {:?} does not start with {want:?} and say {says:?}",
                out.stderr
            );
            assert_eq!(out.stderr.lines().count(), 1, "{}", out.stderr);
        }
    }
    // Nothing was done: no work directory.
    assert!(!t.path().join("work").exists());
    // A missing file.
    let out = coordinator(&["run", "--config", &s(&t.path().join("nope.conf"))]);
    assert_eq!(out.code, 2, "{}", out.stderr);
}

#[test]
fn a_killed_run_is_finished_by_the_next() {
    let t = tempfile::tempdir().expect("tempdir");
    let tp = t.path();
    let db = crate::fixture::sample_db(tp);
    // The update "brings" net/curl; the delta is its output; no prefetch (the
    // tree is the fixture itself).
    let config = small_config(
        tp,
        "[\"echo\", \"P net/curl/Makefile\"]",
        &format!("sqlports = \"{}\"\nprefetch = false\n", s(&db)),
    );
    // Nothing runs the spool yet: the coordinator hands the batch over and
    // waits; it is killed while it waits.
    let child = spawn({
        let mut c = Command::new(bin("build-coordinator"));
        c.args(["run", "--config", &s(&config)])
            .env("PATH", test_path());
        c
    });
    let queued = tp.join("spool/new");
    let start = Instant::now();
    let id = loop {
        let found = fs::read_dir(&queued)
            .into_iter()
            .flatten()
            .flatten()
            .find_map(|e| {
                e.file_name()
                    .to_string_lossy()
                    .strip_suffix(".jsonl")
                    .map(str::to_string)
            });
        if let Some(id) = found {
            break id;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "no batch submitted"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut child = child;
    child.kill().expect("kill the coordinator");
    let _ = child.wait();
    assert!(!tp.join("mail").exists());

    // The build host runs its queue (a chain that passes the records on) ...
    let chain = tp.join("chain");
    fs::write(&chain, "cat\n").expect("write chain");
    let out = run(
        "build-trigger",
        &[
            "run-once",
            "--spool",
            &s(&tp.join("spool")),
            "--chain",
            &s(&chain),
        ],
        "",
        &[("PATH", &test_path())],
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    // ... and the next run finishes the batch it finds unfinished, without an
    // update: the same batch id, one mail (nothing was built: exit 4), here
    // printed on the standard output.
    let print = tp.join("print.conf");
    let text = fs::read_to_string(&config).expect("read config");
    let maildir = format!("maildir = \"{}\"", s(&tp.join("mail")));
    assert!(text.contains(&maildir));
    fs::write(&print, text.replace(&maildir, "print = true")).expect("write config");
    let out = coordinator(&["run", "--config", &s(&print)]);
    assert_eq!(out.code, 4, "{}", out.stderr);
    assert!(
        out.stderr.contains(&format!("batch {id} was not finished")),
        "{}",
        out.stderr
    );
    assert!(
        out.stdout.contains(&format!("X-Portflow-Batch: {id}\n")),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("Subject: no package stable"),
        "{}",
        out.stdout
    );
    assert_eq!(out.stdout.matches("\nSubject: ").count(), 1, "one mail");
    let kept = fs::read_to_string(tp.join("work").join(&id).join("mail.txt")).expect("mail.txt");
    assert_eq!(kept, out.stdout);
    let targets = records(&tp.join("work").join(&id).join("targets.jsonl"));
    assert_eq!(targets[0]["status"], "done", "{targets:?}");
    let state: Value =
        serde_json::from_str(&fs::read_to_string(tp.join("work/state.json")).expect("state"))
            .expect("state json");
    assert!(state["running"].is_null(), "{state}");
}

#[test]
fn loop_goes_on_while_the_update_brings_changes() {
    use std::os::unix::process::CommandExt;
    let t = tempfile::tempdir().expect("tempdir");
    let tp = t.path();
    let db = crate::fixture::sample_db(tp);
    // An update that brings a change twice, then nothing.
    let count = tp.join("count");
    let update = format!(
        "[\"sh\", \"-c\", \"n=$(cat {c} 2>/dev/null || echo 0); echo $((n + 1)) > {c}; \
         if [ $n -lt 2 ]; then echo 'P net/curl/Makefile'; fi\"]",
        c = s(&count)
    );
    let config = small_config(
        tp,
        &update,
        &format!("sqlports = \"{}\"\nprefetch = false\n", s(&db)),
    );
    let chain = tp.join("chain");
    fs::write(&chain, "cat\n").expect("write chain");
    let child = Command::new(bin("build-trigger"))
        .arg("watch")
        .arg("--spool")
        .arg(tp.join("spool"))
        .arg("--chain")
        .arg(&chain)
        .env("PATH", test_path())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .expect("run build-trigger watch");
    let _watcher = Watcher {
        child: Some(child),
        log: tp.join("none"),
    };
    let mails = |tp: &Path| {
        fs::read_dir(tp.join("mail/new"))
            .map(|d| d.count())
            .unwrap_or(0)
    };
    let batches = |tp: &Path| {
        fs::read_dir(tp.join("work"))
            .into_iter()
            .flatten()
            .flatten()
            .filter(|e| e.path().join("list.jsonl").is_file())
            .count()
    };

    // Two batches, then the third update brings nothing; nothing is built
    // (the chain only passes the records on): the alarm, exit 4, twice.
    let out = coordinator(&["run", "--loop", "--config", &s(&config)]);
    assert_eq!(out.code, 4, "{}", out.stderr);
    assert_eq!(out.stderr, "");
    assert_eq!(fs::read_to_string(&count).expect("count").trim(), "3");
    assert_eq!((batches(tp), mails(tp)), (2, 2));

    // Nothing changed: exit 3.  With --force the (empty) list goes out all the
    // same; with nothing to tell, no mail: exit 3 again, one batch more.
    let out = coordinator(&["run", "--config", &s(&config)]);
    assert_eq!((out.code, out.stderr.as_str()), (3, ""));
    assert_eq!((batches(tp), mails(tp)), (2, 2));
    let out = coordinator(&["run", "--force", "--config", &s(&config)]);
    assert_eq!((out.code, out.stderr.as_str()), (3, ""));
    assert_eq!((batches(tp), mails(tp)), (3, 2));
}

/// The coordinator killed while sendmail delivers the batch's mail: the next
/// run finishes the batch without sending it again (it may have gone out); it
/// keeps the mail in the batch directory and says so.
#[test]
fn a_mail_handed_over_when_the_run_died_is_never_sent_twice() {
    let t = tempfile::tempdir().expect("tempdir");
    let tp = t.path();
    let db = crate::fixture::sample_db(tp);
    // A sendmail that delivers (one line per mail), then kills the coordinator
    // (the parent of its parent, summary-mail) before it answers.
    let deliveries = tp.join("deliveries");
    let sendmail = tp.join("sendmail");
    write_script(
        &sendmail,
        &format!(
            "#!/bin/sh\ncat > /dev/null\necho delivered >> '{}'\n\
             coordinator=$(awk '{{print $4}}' /proc/$PPID/stat)\n\
             [ -e '{}' ] || {{ touch '{}'; kill -KILL \"$coordinator\"; }}\n\
             exit 0\n",
            s(&deliveries),
            s(&tp.join("killed")),
            s(&tp.join("killed"))
        ),
    );
    let config = small_config(
        tp,
        "[\"echo\", \"P net/curl/Makefile\"]",
        &format!("sqlports = \"{}\"\nprefetch = false\n", s(&db)),
    );
    let text = fs::read_to_string(&config).expect("read config");
    let maildir = format!("maildir = \"{}\"", s(&tp.join("mail")));
    fs::write(
        &config,
        text.replace(&maildir, &format!("sendmail = \"{}\"", s(&sendmail))),
    )
    .expect("write config");
    // The build host: a watcher whose chain passes the records on.
    let chain = tp.join("chain");
    fs::write(&chain, "cat\n").expect("write chain");
    let mut watch = Command::new(bin("build-trigger"))
        .args([
            "watch",
            "--spool",
            &s(&tp.join("spool")),
            "--chain",
            &s(&chain),
        ])
        .env("PATH", test_path())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("build-trigger watch");
    let first = wait_for(
        spawn({
            let mut c = Command::new(bin("build-coordinator"));
            c.args(["run", "--config", &s(&config)])
                .env("PATH", test_path());
            c
        }),
        Duration::from_secs(60),
    );
    assert!(tp.join("killed").exists(), "sendmail never ran: {first:?}");
    assert_eq!(
        fs::read_to_string(&deliveries).unwrap_or_default(),
        "delivered\n"
    );
    // The next run finishes the batch: no second delivery.
    let out = coordinator(&["run", "--config", &s(&config)]);
    let _ = watch.kill();
    let _ = watch.wait();
    // (Here nothing was built, the chain only passes records: exit 4 says
    // that first.)
    assert!(matches!(out.code, 1 | 4), "{}", out.stderr);
    assert!(
        out.stderr.contains(
            "stopped while it handed the mail over; it may have been sent: not sent again"
        ),
        "{}",
        out.stderr
    );
    assert_eq!(
        fs::read_to_string(&deliveries).unwrap_or_default(),
        "delivered\n"
    );
    let batch = the_batch(tp);
    let kept: Vec<_> = fs::read_dir(batch.join("mail.unsent/new"))
        .expect("the mail kept")
        .collect();
    assert_eq!(kept.len(), 1);
    assert!(!batch.join("mail.handover").exists());
    assert!(batch.join("mail.jsonl").is_file());
}

/// The coordinator and its prefetch killed outright (a reboot): the next run
/// fetches again, for the prefetch was never done, instead of taking what the
/// killed run left for its result.
#[test]
fn a_prefetch_killed_with_the_run_is_done_by_the_next() {
    use std::os::unix::process::CommandExt;
    let t = tempfile::tempdir().expect("tempdir");
    let tp = t.path();
    let db = crate::fixture::sample_db(tp);
    // make, as the real one but that the first fetch waits (and says its pid).
    let mark = tp.join("fetching");
    let make = tp.join("make");
    write_script(
        &make,
        &format!(
            "#!/bin/sh\ncase \" $* \" in *\" fetch \"*)\n\
             [ -e '{m}' ] || {{ echo $$ > '{m}'; exec sleep 60; }};;\nesac\nexec bmake \"$@\"\n",
            m = s(&mark)
        ),
    );
    let distdir = tp.join("distfiles");
    let config = small_config(
        tp,
        "[\"echo\", \"P net/curl/Makefile\"]",
        &format!(
            "sqlports = \"{}\"\nmake = \"{}\"\n[env]\nMAKESYSPATH = \"{}\"\n\
             MACHINE_ARCH = \"amd64\"\nDISTDIR = \"{}\"\nFETCH_MIRROR = \"{}\"\n",
            s(&db),
            s(&make),
            s(&fixture_tree().join("infrastructure/mk")),
            s(&distdir),
            s(&root().join("tests/fixtures/mirror")),
        ),
    );
    // No build host answers: the second run gives the target up soon.
    let text = fs::read_to_string(&config).expect("read config");
    fs::write(
        &config,
        text.replace("deadline = \"10s\"", "deadline = \"1s\""),
    )
    .expect("write config");
    let mut first = Command::new(bin("build-coordinator"));
    first
        .args(["run", "--config", &s(&config)])
        .env("PATH", test_path())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0);
    let mut first = first.spawn().expect("build-coordinator");
    let start = Instant::now();
    while !mark.exists() {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "the prefetch never started"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(200));
    // Everything dies: the run's group, and the make build-list ran in a group
    // of its own.
    let kill = |target: String| {
        Command::new("kill")
            .args(["-s", "KILL", "--", &target])
            .status()
            .expect("kill")
    };
    kill(format!("-{}", first.id()));
    let _ = first.wait();
    let sleeper = fs::read_to_string(&mark).expect("pid").trim().to_string();
    kill(sleeper);
    let batch = the_batch(tp);
    assert!(
        !batch.join("fetch.jsonl").exists(),
        "a prefetch not over left its result"
    );
    // The next run: the prefetch again (the distfile fetched), then the batch.
    let out = coordinator(&["run", "--config", &s(&config)]);
    assert!(
        out.stderr.contains("was not finished by an earlier run"),
        "{}",
        out.stderr
    );
    let fetched = records(&batch.join("fetch.jsonl"));
    assert!(
        fetched.iter().any(|r| r["kind"] == "build"
            && r["target"] == "fetch"
            && r["fullpkgpath"] == "net/curl"
            && r["status"] == "built"),
        "{fetched:?}\n{}",
        out.stderr
    );
    assert!(distdir.join("curl-8.9.1.tar.gz").is_file());
}

/// A deadline past any clock is a configuration error, not a panic; targets
/// named like the batch's own files (`targets`, `list`) keep their records apart.
#[test]
fn huge_deadlines_are_refused_and_target_names_never_collide() {
    let t = tempfile::tempdir().expect("tempdir");
    let tp = t.path();
    let db = crate::fixture::sample_db(tp);
    let config = small_config(
        tp,
        "[\"echo\", \"P net/curl/Makefile\"]",
        &format!("sqlports = \"{}\"\nprefetch = false\n", s(&db)),
    );
    let text = fs::read_to_string(&config).expect("read config");
    let huge = tp.join("huge.conf");
    fs::write(
        &huge,
        text.replace("deadline = \"10s\"", "deadline = \"99999999999d\""),
    )
    .unwrap();
    let out = coordinator(&["check", "--config", &s(&huge)]);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(out.stderr.contains("too long"), "{}", out.stderr);
    // Two targets named `targets` and `list`, nobody serving their spools: both
    // time out, and the batch's own files are whole.
    let named = tp.join("named.conf");
    let body = text
        .replace("name = \"amd64\"", "name = \"targets\"")
        .replace("deadline = \"10s\"", "deadline = \"2s\"");
    fs::write(
        &named,
        format!(
            "{body}\n[[target]]\nname = \"list\"\narch = \"amd64\"\nspool = \"{}\"\ndeadline = \"2s\"\n",
            s(&tp.join("spool2"))
        ),
    )
    .unwrap();
    let out = coordinator(&["run", "--config", &s(&named)]);
    assert_eq!(out.code, 5, "{}", out.stderr);
    let batch = the_batch(tp);
    let targets = records(&batch.join("targets.jsonl"));
    assert_eq!(targets.len(), 2, "{targets:?}");
    assert!(targets
        .iter()
        .all(|r| r["kind"] == "target" && r["status"] == "timeout"));
    let list = records(&batch.join("list.jsonl"));
    assert_eq!(list[0]["kind"], "batch");
    assert!(list.iter().any(|r| r["kind"] == "port"));
    assert!(batch.join("target/targets.log").is_file());
    assert!(batch.join("target/list.log").is_file());
}

/// The directory of the one batch a small_config run made.
fn the_batch(tp: &Path) -> PathBuf {
    fs::read_dir(tp.join("work"))
        .expect("work")
        .flatten()
        .map(|e| e.path())
        .find(|p| p.join("list.jsonl").is_file())
        .expect("the batch directory")
}

/// `check` looks at what the file names, a line each: a missing path, a file
/// that is no sqlports database, a revision the tree does not have, a build
/// host ssh cannot reach, a spool that cannot be written are each found and
/// named; what is right says ok; exit 1.
#[test]
fn check_finds_and_names_each_problem() {
    require("git", "git");
    require("ssh", "openssh-client");
    let t = tempfile::tempdir().expect("tempdir");
    let tp = t.path();
    // A ports tree in git, with the release tag only.
    let tree = tp.join("ports");
    let st = Command::new("cp")
        .arg("-a")
        .arg(fixture_tree())
        .arg(&tree)
        .status()
        .expect("cp");
    assert!(st.success());
    git(tp, &tree, &["init", "-q", "-b", "main"]);
    git(tp, &tree, &["add", "-A"]);
    git(tp, &tree, &["commit", "-q", "-m", "release"]);
    git(tp, &tree, &["tag", BASE]);
    let not_sqlports = tp.join("sqlports");
    fs::write(&not_sqlports, "not a database\n").expect("write");
    let afile = tp.join("afile");
    fs::write(&afile, "x").expect("write");
    // A port nothing listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let config = tp.join("portflow.conf");
    let text = format!(
        "ports_dir = \"{tree}\"\nmake = \"/nonexistent/make\"\nsqlports = \"{db}\"\n\
         work_dir = \"{work}\"\n\n[delta]\ngit = \"{BASE}..NO_SUCH_BRANCH\"\n\n\
         [mail]\nmaildir = \"{mail}\"\n\n\
         [[target]]\nname = \"good\"\narch = \"amd64\"\nspool = \"{good}\"\n\n\
         [[target]]\nname = \"full\"\narch = \"amd64\"\nspool = \"{bad}\"\n\n\
         [[target]]\nname = \"far\"\narch = \"i386\"\nspool = \"/var/spool/portflow\"\n\
         ssh = \"builder@127.0.0.1\"\nssh_options = [\"-p\", \"{port}\", \"-o\", \"ConnectTimeout=5\", \
         \"-o\", \"StrictHostKeyChecking=no\", \"-o\", \"UserKnownHostsFile=/dev/null\"]\n",
        tree = s(&tree),
        db = s(&not_sqlports),
        work = s(&tp.join("work")),
        mail = s(&tp.join("mail")),
        good = s(&tp.join("spool")),
        bad = s(&afile.join("spool")),
    );
    fs::write(&config, &text).expect("write config");
    let out = coordinator(&["check", "--config", &s(&config)]);
    assert_eq!(out.code, 1, "{}\n{}", out.stdout, out.stderr);
    let line = |what: &str| {
        out.stdout
            .lines()
            .find(|l| l[8..].starts_with(&format!("{what}: ")))
            .unwrap_or_else(|| panic!("no line for {what}:\n{}", out.stdout))
            .to_string()
    };
    for (what, ok, says) in [
        ("ports_dir", true, "a ports tree"),
        ("make", false, "/nonexistent/make: not found"),
        (&format!("delta {BASE}")[..], true, "git commit"),
        ("delta NO_SUCH_BRANCH", false, "no such git revision"),
        ("sqlports", false, "not a sqlports database"),
        ("work_dir", true, "missing, can be made in"),
        ("target good build-trigger", true, "build-trigger"),
        ("target good spool", true, "can be made"),
        ("target full spool", false, "is not a directory"),
        ("target far build-trigger", false, "ssh builder@127.0.0.1"),
        ("target far spool", false, "not looked at"),
    ] {
        let l = line(what);
        assert_eq!(l.starts_with("ok      "), ok, "{l}");
        assert_eq!(l.starts_with("FAILED  "), !ok, "{l}");
        assert!(l.contains(says), "{l}");
    }
    assert!(
        out.stderr.starts_with(&format!(
            "build-coordinator: {}: 6 check(s) failed",
            s(&config)
        )),
        "{}",
        out.stderr
    );
    // Nothing was made.
    assert!(!tp.join("work").exists() && !tp.join("spool").exists() && !tp.join("mail").exists());
    // A missing ports tree.
    let missing = text.replace(&s(&tree), "/nonexistent/ports");
    fs::write(&config, missing).expect("write config");
    let out = coordinator(&["check", "--config", &s(&config)]);
    assert_eq!(out.code, 1);
    assert!(
        out.stdout
            .contains("FAILED  ports_dir: /nonexistent/ports: no such directory"),
        "{}",
        out.stdout
    );
}

/// Batch directories of work_dir older than keep_days are removed at the
/// start of a run; newer ones, and directories that are no batch's, stay.
#[test]
fn old_batch_directories_are_pruned() {
    let t = tempfile::tempdir().expect("tempdir");
    let tp = t.path();
    let config = small_config(tp, "[\"true\"]", "keep_days = 30\n");
    let work = tp.join("work");
    let list = |id: &str| format!("{{\"kind\":\"batch\",\"v\":1,\"id\":\"{id}\"}}\nnet/curl\n");
    write_files(
        &work,
        &[
            (
                "20251001-000000-aaaaaaaa/list.jsonl",
                &list("20251001-000000-aaaaaaaa"),
            ),
            (
                "20261201-000000-bbbbbbbb/list.jsonl",
                &list("20261201-000000-bbbbbbbb"),
            ),
            // Not a batch's: its list names another.
            ("notes/list.jsonl", &list("x")),
        ],
    );
    for d in ["20251001-000000-aaaaaaaa", "notes"] {
        let st = Command::new("touch")
            .args(["-d", "40 days ago"])
            .arg(work.join(d))
            .status()
            .expect("touch");
        assert!(st.success());
    }
    let out = coordinator(&["run", "--config", &s(&config)]);
    assert_eq!(out.code, 3, "{}", out.stderr);
    assert!(!work.join("20251001-000000-aaaaaaaa").exists());
    assert!(work.join("20261201-000000-bbbbbbbb/list.jsonl").is_file());
    assert!(work.join("notes/list.jsonl").is_file());
}

/// `status`: every target's spool at once, each record stamped with its
/// target; a target whose spool cannot be read is an error notice; a table on
/// a terminal.
#[test]
fn status_of_every_target() {
    require("script", "bsdutils");
    let t = tempfile::tempdir().expect("tempdir");
    let tp = t.path();
    let config = small_config(tp, "[\"true\"]", "");
    let text = fs::read_to_string(&config).unwrap()
        + &format!(
            "\n[[target]]\nname = \"i386\"\narch = \"i386\"\nspool = \"{}\"\n",
            s(&tp.join("nospool"))
        );
    fs::write(&config, text).unwrap();
    let spool = tp.join("spool");
    let sub = run(
        "build-trigger",
        &["submit", "--spool", &s(&spool), "--batch", "q1"],
        "net/curl\n",
        &[],
    );
    assert_eq!(sub.code, 0, "{}", sub.stderr);
    let out = coordinator(&["status", "--config", &s(&config)]);
    assert_eq!(out.code, 1, "{}", out.stderr);
    let recs = records_of(&out.stdout);
    assert_eq!(recs.len(), 2, "{}", out.stdout);
    assert_eq!(
        (
            &recs[0]["kind"],
            &recs[0]["batch"],
            &recs[0]["state"],
            &recs[0]["target"]
        ),
        (
            &json!("spool"),
            &json!("q1"),
            &json!("new"),
            &json!("amd64")
        )
    );
    assert_eq!(recs[1]["kind"], "notice");
    assert_eq!(recs[1]["target"], "i386");
    assert!(
        recs[1]["message"].as_str().unwrap().contains("not a spool"),
        "{}",
        out.stdout
    );
    assert!(
        out.stderr.contains("build-coordinator: target i386: "),
        "{}",
        out.stderr
    );
    // On a terminal: a table.
    let cmd = format!(
        "PATH='{}' '{}' status --config '{}'",
        test_path(),
        bin("build-coordinator").display(),
        s(&config)
    );
    let (_, screen) = on_a_terminal(&cmd);
    let lines: Vec<&str> = screen.lines().collect();
    // (The error line, on stderr, shares the terminal.)
    let head = lines
        .iter()
        .position(|l| l.starts_with("TARGET  BATCH"))
        .unwrap_or_else(|| panic!("no table:\n{screen}"));
    assert!(lines[head + 1].starts_with("amd64   q1 "), "{screen}");
    assert!(lines[head + 2].starts_with("i386: "), "{screen}");
}

fn records_of(text: &str) -> Vec<Value> {
    text.lines()
        .map(|l| serde_json::from_str(l).expect("a record"))
        .collect()
}

/// On a terminal, a run ends with a line per target: how it ended, in how
/// long, and why.
#[test]
fn a_run_on_a_terminal_ends_with_a_line_per_target() {
    require("script", "bsdutils");
    let t = tempfile::tempdir().expect("tempdir");
    let tp = t.path();
    let db = crate::fixture::sample_db(tp);
    let config = small_config(
        tp,
        "[\"echo\", \"P net/curl/Makefile\"]",
        &format!("sqlports = \"{}\"\nprefetch = false\n", s(&db)),
    );
    // No build host serves the spool: the target is given up at its deadline.
    let text = fs::read_to_string(&config).unwrap();
    fs::write(
        &config,
        text.replace("deadline = \"10s\"", "deadline = \"1s\""),
    )
    .unwrap();
    let cmd = format!(
        "PATH='{}' '{}' run --config '{}'",
        test_path(),
        bin("build-coordinator").display(),
        s(&config)
    );
    let (_, screen) = on_a_terminal(&cmd);
    assert!(
        screen
            .lines()
            .any(|l| l.contains(": target amd64: timeout in 1s: no result within the deadline")),
        "{screen}"
    );
}

/// `(target, [(plan, entry)])` of `run -n`'s report.
fn planned(text: &str) -> Vec<(String, Vec<(String, String)>)> {
    let mut v: Vec<(String, Vec<(String, String)>)> = Vec::new();
    for l in text.lines() {
        if let Some(rest) = l.strip_prefix("target ") {
            let name = rest.split_whitespace().next().unwrap_or("?");
            v.push((name.to_string(), Vec::new()));
        } else if let (Some(entry), Some((_, list))) = (l.strip_prefix("  "), v.last_mut()) {
            let w: Vec<&str> = entry.split_whitespace().collect();
            if w.len() >= 2 {
                list.push((w[0].to_string(), w[1].to_string()));
            }
        }
    }
    v
}

/// `run -n` lists per target exactly what the real run then builds, and the
/// distfiles the prefetch then fetches; it changes nothing anywhere.
#[test]
fn run_n_lists_exactly_what_the_run_then_builds() {
    let w = World::new();
    // -n does not run the update: the plan is of the tree as it is, here
    // brought to the branch by hand.
    git(
        w.t.path(),
        &w.init.join("ports"),
        &["pull", "-q", "--ff-only", "origin", BRANCH],
    );
    let before_work = fs::read_dir(&w.work).map(|d| d.count()).unwrap_or(0);
    let (code, out, err) = wait_for(spawn(w.coordinator(&["-n"])), Duration::from_secs(120));
    assert_eq!(code, 0, "{out}\n{err}\n{}", w.diagnostics());
    assert!(
        out.contains("distfiles to fetch: 2 (plain-1.0.tar.gz curl-8.9.1.tar.gz)"),
        "{out}"
    );
    let plan = planned(&out);
    assert_eq!(plan.len(), 3, "{out}");
    for (name, entries) in &plan {
        let to_build: Vec<&str> = entries
            .iter()
            .filter(|(p, _)| p == "build")
            .map(|(_, e)| e.as_str())
            .collect();
        assert_eq!(to_build, ["misc/plain", "net/curl"], "{name}: {out}");
    }
    assert!(
        out.contains("curl-8.9.1.tgz debug-curl-8.9.1.tgz"),
        "the package files: {out}"
    );
    // Nothing changed anywhere: no batch, no state, nothing queued, fetched,
    // built or mailed.
    assert_eq!(
        fs::read_dir(&w.work).map(|d| d.count()).unwrap_or(0),
        before_work
    );
    assert!(w.batches().is_empty());
    assert!(!w.distdir.join("curl-8.9.1.tar.gz").exists());
    for h in &w.hosts {
        for sub in ["new", "cur", "done", "failed", "plan"] {
            let n = fs::read_dir(h.spool().join(sub))
                .map(|d| d.count())
                .unwrap_or(0);
            assert_eq!(n, 0, "{} {sub}/", h.arch);
        }
        assert!(!h.dir.join("packages").exists(), "{}", h.arch);
    }
    assert!(w.smtpd.messages().is_empty());

    // The real run builds exactly that on every target.
    let (code, _, err) = wait_for(spawn(w.coordinator(&[])), Duration::from_secs(180));
    assert_eq!(code, 0, "{err}\n{}", w.diagnostics());
    let b = &w.batches()[0];
    for (name, entries) in &plan {
        let built: Vec<String> = records(&b.join(format!("target/{name}.jsonl")))
            .iter()
            .filter(|r| r["kind"] == "build" && r["target"] == "package")
            .filter(|r| r["status"] == "built")
            .filter_map(|r| r["fullpkgpath"].as_str().map(String::from))
            .collect();
        let planned: Vec<String> = entries
            .iter()
            .filter(|(p, _)| p == "build")
            .map(|(_, e)| e.clone())
            .collect();
        assert_eq!(built, planned, "{name}");
    }
    let fetched: Vec<String> = records(&b.join("fetch.jsonl"))
        .iter()
        .filter(|r| r["kind"] == "build" && r["status"] == "built")
        .filter_map(|r| r["fullpkgpath"].as_str().map(String::from))
        .collect();
    assert_eq!(fetched, ["misc/plain", "net/curl"]);
    for f in ["plain-1.0.tar.gz", "curl-8.9.1.tar.gz"] {
        assert!(w.distdir.join(f).is_file(), "{f}");
    }

    // Built: the delta needs --force now, and everything is up to date.
    let (code, out, _) = wait_for(spawn(w.coordinator(&["-n"])), Duration::from_secs(60));
    assert_eq!(code, 3, "{out}");
    assert!(out.contains("built already"), "{out}");
    let (code, out, err) = wait_for(
        spawn(w.coordinator(&["-n", "--force"])),
        Duration::from_secs(120),
    );
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(out.contains("distfiles to fetch: 0"), "{out}");
    for (name, entries) in planned(&out) {
        assert!(
            !entries.is_empty() && entries.iter().all(|(p, _)| p == "up-to-date"),
            "{name}: {out}"
        );
    }
}

/// The live view in a real terminal (tmux): a line per target with the stage
/// at work, entry n of N and the time to its deadline, or how it ended; at the
/// end a line per target, and no live line left.
#[test]
fn the_live_view_of_every_target_in_a_terminal() {
    require("tmux", "tmux");
    let t = tempfile::tempdir().expect("tempdir");
    let tp = t.path();
    let db = crate::fixture::sample_db(tp);
    let mut watchers = Vec::new();
    let mut targets = String::new();
    let copies: Vec<crate::fixture::SampleCopy> =
        (0..2).map(|_| crate::fixture::SampleCopy::new()).collect();
    let chain = tp.join("chain");
    fs::write(&chain, "build-list\ncollect-built\n").expect("write chain");
    for (c, (arch, slow)) in copies.iter().zip([("amd64", "1"), ("i386", "8")]) {
        let spool = tp.join(format!("spool-{arch}"));
        let mut cmd = Command::new(bin("build-trigger"));
        cmd.args(["watch", "--rescan", "1s", "--spool"])
            .arg(&spool)
            .arg("--chain")
            .arg(&chain);
        for (k, v) in c.env() {
            let v = if k == "MACHINE_ARCH" { arch } else { v };
            cmd.arg("--env").arg(format!("{k}={v}"));
        }
        cmd.arg("--env").arg(format!("SLOW_SECONDS={slow}"));
        let log = tp.join(format!("watch-{arch}.log"));
        watchers.push(Watcher {
            child: Some(
                cmd.env("PATH", test_path())
                    .stdin(Stdio::null())
                    .stdout(Stdio::null())
                    .stderr(fs::File::create(&log).expect("log"))
                    .spawn()
                    .expect("watch"),
            ),
            log,
        });
        targets.push_str(&format!(
            "\n[[target]]\nname = \"{arch}\"\narch = \"{arch}\"\nspool = \"{}\"\ndeadline = \"5m\"\n",
            s(&spool)
        ));
    }
    let config = tp.join("portflow.conf");
    fs::write(
        &config,
        format!(
            "ports_dir = \"{}\"\nupdate = [\"echo\", \"P devel/slow/Makefile\"]\n\
             work_dir = \"{}\"\nsqlports = \"{}\"\nprefetch = false\n\
             [mail]\nmaildir = \"{}\"\n{targets}",
            s(&fixture_tree()),
            s(&tp.join("work")),
            s(&db),
            s(&tp.join("mail")),
        ),
    )
    .expect("write config");
    let script = tp.join("live.sh");
    write_script(
        &script,
        &format!(
            "#!/bin/sh\nexport PATH='{}'\n'{}' run --config '{}' > '{}'\necho \"exit $?\"\nsleep 60\n",
            test_path(),
            bin("build-coordinator").display(),
            s(&config),
            s(&tp.join("out"))
        ),
    );
    let term = Terminal::start(tp, &script, 120);
    // A moment: amd64 is done, i386 builds devel/slow.
    let seen = term.until(Duration::from_secs(60), |s| {
        s.contains("1 of 2 targets done") && s.contains("build-list 1/1 devel/slow")
    });
    let logs = || {
        watchers
            .iter()
            .map(|w| w.log())
            .collect::<Vec<_>>()
            .join("\n---\n")
    };
    let lines: Vec<&str> = seen.lines().filter(|l| !l.trim().is_empty()).collect();
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("build-coordinator: batch ")
                && l.ends_with(": 1 of 2 targets done")),
        "{seen}\n{}",
        logs()
    );
    let amd64 = lines
        .iter()
        .find(|l| l.starts_with("  amd64 "))
        .expect(&seen);
    assert!(amd64.contains("  done in "), "{seen}");
    let i386 = lines
        .iter()
        .find(|l| l.starts_with("  i386 "))
        .expect(&seen);
    assert!(
        i386.contains("build-list 1/1 devel/slow; deadline in 4:5"),
        "{seen}"
    );
    // The end: a line per target, the live lines gone.
    let end = term.until(Duration::from_secs(60), |s| s.contains("exit "));
    drop(term);
    let lines: Vec<&str> = end.lines().filter(|l| !l.trim().is_empty()).collect();
    for arch in ["amd64", "i386"] {
        assert!(
            lines
                .iter()
                .any(|l| l.starts_with("build-coordinator: batch ")
                    && l.contains(&format!(": target {arch}: done in "))),
            "{end}"
        );
    }
    assert!(lines.contains(&"exit 0"), "{end}\n{}", logs());
    assert!(
        lines
            .iter()
            .all(|l| !l.contains("targets done") && !l.contains("deadline in")),
        "a live line was left:\n{end}"
    );
}
