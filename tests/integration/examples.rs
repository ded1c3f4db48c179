//! The examples of the manual pages, run.
//!
//! Every `.Bd -literal` block of an EXAMPLES section is in [`TABLE`]: run on a
//! sandbox host as written, or checked by the program that reads it (a
//! configuration, a chain, an rc.d script, a crontab line).  A block missing
//! from the table, or an entry of the table with no block, fails the test: a
//! new example is run too.
//!
//! The sandbox is an OpenBSD build host in a temporary directory, portflow
//! installed in its /usr/local by `make install-files`: the sample
//! tree where /usr/ports is (a CVS checkout of the -stable branch, whose
//! repository has the release tag and the branch), `make` is BSD make
//! (bmake), the pkg tools are the stand-ins over a package database, and the
//! paths of the examples are mapped into it ([`Host::subst`]).  A command
//! runs with `sh -c` in the work directory; the output the example shows must
//! come out, numbers, digests and ids aside, `...` standing for anything.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::*;

/// One example block.
#[derive(Debug)]
struct Block {
    page: String,
    n: usize,
    text: String,
}

/// The blocks of the EXAMPLES sections, roff escapes undone.
fn blocks() -> Vec<Block> {
    let mut v = Vec::new();
    let mut pages: Vec<PathBuf> = ["man1", "man5", "man7"]
        .iter()
        .flat_map(|s| {
            fs::read_dir(root().join("man").join(s))
                .into_iter()
                .flatten()
        })
        .flatten()
        .map(|e| e.path())
        .collect();
    pages.sort();
    for p in pages {
        let name = p.file_name().unwrap().to_string_lossy().into_owned();
        let text = fs::read_to_string(&p).expect("page");
        let (mut in_examples, mut block, mut n) = (false, None::<String>, 0);
        for l in text.lines() {
            if l.starts_with(".Sh ") {
                in_examples = l == ".Sh EXAMPLES";
            } else if in_examples && l.starts_with(".Bd -literal") {
                block = Some(String::new());
            } else if l == ".Ed" {
                if let Some(b) = block.take() {
                    v.push(Block {
                        page: name.clone(),
                        n,
                        text: b,
                    });
                    n += 1;
                }
            } else if let Some(b) = block.as_mut() {
                b.push_str(&l.replace("\\e", "\\").replace("\\&", ""));
                b.push('\n');
            }
        }
    }
    v
}

/// What is done with an example.
enum How {
    /// Run its commands on the sandbox after the setup; the output shown must
    /// come out.
    Run(fn(&mut Host)),
    /// The same, on a terminal (script(1)).
    Tty(fn(&mut Host)),
    /// Run, then a look at what it did.
    RunThen(fn(&mut Host), fn(&Host)),
    /// A crontab(5) line: its command runs after the setup, with no
    /// terminal, and says nothing (cron mails what it says).
    Cron(fn(&mut Host)),
    /// A file the example shows, checked by the program that reads it.
    File(fn(&Host, &str)),
    /// The output of a command over the text of the page's example
    /// `.0`: each line it shows comes out.
    Follows(usize, fn(&Host, &str) -> Out),
}

const TABLE: &[(&str, usize, How)] = &[
    ("build-coordinator.1", 0, How::Run(farm_old_sqlports)),
    ("build-coordinator.1", 1, How::Cron(farm)),
    ("build-coordinator.1", 2, How::Run(farm_i386_down)),
    ("build-coordinator.1", 3, How::Run(farm)),
    ("build-coordinator.1", 4, How::Run(farm)),
    ("build-list.1", 0, How::Run(with_list)),
    ("build-list.1", 1, How::Run(with_list)),
    ("build-list.1", 2, How::Run(with_list)),
    ("build-list.1", 3, How::Run(nothing)),
    ("build-trigger.1", 0, How::RunThen(slow_at_work, drained)),
    (
        "build-trigger.1",
        1,
        How::RunThen(curl_failed, retry_mailed),
    ),
    ("build-trigger.1", 2, How::File(rc_script)),
    ("build-trigger.1", 3, How::Cron(queued_for_cron)),
    ("build-trigger.1", 4, How::Run(listed_batch)),
    ("build-trigger.1", 5, How::Tty(queued)),
    ("build-trigger.1", 6, How::Run(queued)),
    ("build-trigger.1", 7, How::File(chain_file)),
    ("clean-env.1", 0, How::Run(nothing)),
    ("clean-env.1", 1, How::Run(with_list)),
    ("clean-env.1", 2, How::Run(curl_installed)),
    ("clean-env.1", 3, How::Run(with_result)),
    ("collect-built.1", 0, How::Run(with_list)),
    ("collect-built.1", 1, How::Run(with_done)),
    ("collect-built.1", 2, How::Run(curl_built)),
    ("collect-built.1", 3, How::Run(with_done)),
    ("pkgpath-expand.1", 0, How::Run(nothing)),
    ("pkgpath-expand.1", 1, How::Run(nothing)),
    ("pkgpath-expand.1", 2, How::Run(nothing)),
    ("pkgpath-expand.1", 3, How::Run(stable_db)),
    ("pkgpath-expand.1", 4, How::Run(nothing)),
    ("ports-delta.1", 0, How::Run(nothing)),
    ("ports-delta.1", 1, How::Run(nothing)),
    ("ports-delta.1", 2, How::Run(git_checkout)),
    ("ports-delta.1", 3, How::Run(nothing)),
    ("ports-delta.1", 4, How::Run(nothing)),
    ("ports-delta.1", 5, How::Run(nothing)),
    ("ports-delta.1", 6, How::Run(nothing)),
    ("rsync-list.1", 0, How::Run(with_list)),
    ("rsync-list.1", 1, How::Run(curl_built)),
    ("rsync-list.1", 2, How::Run(curl_built)),
    ("rsync-list.1", 3, How::Run(with_done)),
    ("rsync-list.1", 4, How::Run(with_done)),
    (
        "summary-mail.1",
        0,
        How::RunThen(smtp_localhost, mailed_to_porters),
    ),
    ("summary-mail.1", 1, How::Cron(nothing)),
    ("summary-mail.1", 2, How::Run(with_done)),
    ("summary-mail.1", 3, How::Run(with_done)),
    ("portflow-records.5", 0, How::File(rdiff_output)),
    ("portflow-records.5", 1, How::Follows(0, delta_of)),
    ("portflow-records.5", 2, How::Follows(1, expand_first)),
    ("portflow-records.5", 3, How::File(brand_new)),
    ("portflow-records.5", 4, How::Run(with_list)),
    ("portflow.conf.5", 0, How::File(coordinator_config)),
    ("portflow.conf.5", 1, How::File(watch_line)),
    ("portflow.conf.5", 2, How::File(coordinator_config)),
];

/// The sandbox host.
struct Host {
    _t: tempfile::TempDir,
    w: PathBuf,
    env: Vec<(String, String)>,
    /// Programs left running by a setup (a watcher), killed with the host.
    bg: Vec<std::process::Child>,
    /// The commands run with the sandbox's /usr/local and /usr/sbin (where
    /// `make install` put portflow, where sendmail is), in a mount
    /// namespace of their own.
    ns: bool,
    /// The commands run in a network namespace of their own where the test
    /// SMTP server listens on localhost:25 (it keeps its mails in smtp/).
    smtp: bool,
}

impl Drop for Host {
    fn drop(&mut self) {
        for c in &mut self.bg {
            let _ = Command::new("kill")
                .args(["-KILL", "--", &format!("-{}", c.id())])
                .status();
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Runs `$4` with the test SMTP server (`$1 $2`, mails in `$3`) listening on
/// localhost:25 of a network namespace of its own.
const SMTP_WRAPPER: &str = r#"
ip link set lo up || exit 99
d=$3
mkdir -p "$d" && rm -f "$d/in" && mkfifo "$d/in" || exit 99
"$1" "$2" --port 25 --dir "$d" < "$d/in" > "$d/server.out" 2>&1 &
pid=$!
exec 3> "$d/in"
i=0
until grep -q READY "$d/server.out"; do
    i=$((i + 1)); [ $i -gt 200 ] && { cat "$d/server.out" >&2; exit 98; }
    sleep 0.1
done
sh -c "$4"; rc=$?
exec 3>&-
kill $pid 2>/dev/null; wait $pid 2>/dev/null
exit $rc
"#;

const BASE: &str = "OPENBSD_7_8_BASE";
const BRANCH: &str = "OPENBSD_7_8";

impl Host {
    /// A sandbox of its own: a copy of `tpl`, made once for all the
    /// examples.  (The checkout's CVS/Root names the template's repository,
    /// which the examples only read.)
    fn copy(tpl: &Host) -> Host {
        let t = tempfile::tempdir().expect("tempdir");
        let w = t.path().join("host");
        let st = Command::new("cp")
            .arg("-a")
            .arg(&tpl.w)
            .arg(&w)
            .status()
            .expect("cp");
        assert!(st.success());
        let old = tpl.w.display().to_string();
        let new = w.display().to_string();
        let env = tpl
            .env
            .iter()
            .map(|(k, v)| {
                let v = if k == "CVSROOT" {
                    v.clone()
                } else {
                    v.replace(&old, &new)
                };
                (k.clone(), v)
            })
            .collect();
        Host {
            _t: t,
            w,
            env,
            bg: Vec::new(),
            ns: false,
            smtp: false,
        }
    }

    fn make() -> Host {
        require("bmake", "bmake");
        require("cvs", "cvs");
        require("rsync", "rsync");
        require("jq", "jq");
        let t = tempfile::tempdir().expect("tempdir");
        let w = t.path().to_path_buf();
        for d in [
            "bin",
            "tmp",
            "work",
            "db",
            "spool",
            "sign",
            "log",
            "Mail",
            "home",
            "signer/build",
        ] {
            fs::create_dir_all(w.join(d)).expect("mkdir");
        }
        write_script(&w.join("bin/make"), "#!/bin/sh\nexec bmake \"$@\"\n");
        // The programs as `make install` puts them (install-files: the ones
        // this suite was built with), in /usr/local of the sandbox.
        let built = bin("ports-delta");
        let profile_dir = built.parent().expect("profile dir");
        let out = Command::new("make")
            .arg("install-files")
            .arg(format!("PREFIX={}", w.join("usr/local").display()))
            .arg(format!(
                "TARGET_DIR={}",
                profile_dir.parent().expect("target dir").display()
            ))
            .arg(format!(
                "PROFILE={}",
                profile_dir.file_name().unwrap().to_string_lossy()
            ))
            .current_dir(root())
            .output()
            .expect("make install-files");
        assert!(
            out.status.success(),
            "make install-files: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let bindir = w.join("usr/local/bin");
        let standins = root().join("tests/standins");
        let path = format!(
            "{}:{}:{}",
            w.join("bin").display(),
            bindir.display(),
            std::env::var("PATH").unwrap_or_default()
        );
        let s = |p: PathBuf| p.display().to_string();
        let env = vec![
            ("PATH".into(), path),
            ("HOME".into(), s(w.join("home"))),
            ("TZ".into(), "UTC".into()),
            ("LC_ALL".into(), "C".into()),
            ("CVSROOT".into(), s(w.join("cvs"))),
            ("PORTSDIR".into(), s(w.join("ports"))),
            ("MAKESYSPATH".into(), s(w.join("ports/infrastructure/mk"))),
            ("MACHINE_ARCH".into(), "amd64".into()),
            ("SQLPORTS".into(), s(w.join("db/sqlports"))),
            ("PKG_INFO".into(), s(standins.join("pkg_info"))),
            ("PKG_DELETE".into(), s(standins.join("pkg_delete"))),
            ("PKG_ADD".into(), s(standins.join("pkg_add"))),
            ("PKG_DBDIR".into(), s(w.join("pkgdb"))),
        ];
        let h = Host {
            _t: t,
            w,
            env,
            bg: Vec::new(),
            ns: false,
            smtp: false,
        };
        h.cvs_tree();
        let db = crate::fixture::sample_db(&h.w.join("db"));
        fs::rename(db, h.w.join("db/sqlports")).expect("sqlports");
        write_files(
            &h.w.join("pkgdb"),
            &[
                ("rsync-3.2.7/+CONTENTS", "@name rsync-3.2.7\n"),
                ("quirks-7.49/+CONTENTS", "@name quirks-7.49\n"),
            ],
        );
        h
    }

    /// The sample tree imported into CVS (module `ports`), tagged at the
    /// release, branched, changed on the branch; /usr/ports is a checkout of
    /// the branch, the mirror beside it.
    fn cvs_tree(&self) {
        let src = self.w.join("import");
        copy_dir(&fixture_tree(), &src);
        copy_dir(
            &root().join("tests/fixtures/mirror"),
            &self.w.join("mirror"),
        );
        for d in ["pobj", "distfiles", "packages", "plist", "logs"] {
            let _ = fs::remove_dir_all(src.join(d));
        }
        self.ok("cvs", &self.w, &["-q", "init"]);
        self.ok(
            "cvs",
            &src,
            &["-q", "import", "-m", "ports", "ports", "OpenBSD", "release"],
        );
        self.ok("cvs", &self.w, &["-q", "rtag", BASE, "ports"]);
        self.ok(
            "cvs",
            &self.w,
            &["-q", "rtag", "-b", "-r", BASE, BRANCH, "ports"],
        );
        self.ok("cvs", &self.w, &["-q", "checkout", "-r", BRANCH, "ports"]);
        let ports = self.w.join("ports");
        for (f, add) in [
            ("net/curl/Makefile", "# -stable: security fix\n"),
            ("lang/php/Makefile.inc", "# -stable: security fix\n"),
        ] {
            let p = ports.join(f);
            let mut text = fs::read_to_string(&p).expect("read");
            text.push_str(add);
            fs::write(&p, text).expect("write");
        }
        self.ok("cvs", &ports, &["-q", "commit", "-m", "-stable fixes"]);
    }

    fn ok(&self, program: &str, dir: &Path, args: &[&str]) {
        let out = Command::new(program)
            .args(args)
            .current_dir(dir)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .output()
            .expect(program);
        assert!(
            out.status.success(),
            "{program} {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// The example's paths, on the sandbox (in one pass: a path put in is
    /// never looked at again).
    fn subst(&self, s: &str) -> String {
        const MAP: [(&str, &str); 13] = [
            ("/usr/ports", "ports"),
            ("/etc/portflow.conf", "portflow.conf"),
            ("/etc/portflow/chain", "chain"),
            ("/usr/bin/make", "bin/make"),
            ("/var/mail/", "Mail/"),
            // The signing host: a directory (rsync copies there as over ssh).
            ("signer:/", "signer/"),
            ("signer@sign.example.org:/", "signer/"),
            ("/tmp/", "tmp/"),
            ("/var/spool/portflow", "spool"),
            ("/var/spool/sign", "sign"),
            ("/var/db/", "db/"),
            ("/var/log/portflow", "log"),
            ("~/Mail", "Mail"),
        ];
        let w = self.w.display().to_string();
        let mut out = String::new();
        let mut rest = s;
        'outer: while !rest.is_empty() {
            for (from, to) in MAP {
                if let Some(r) = rest.strip_prefix(from) {
                    out.push_str(&format!("{w}/{to}"));
                    rest = r;
                    continue 'outer;
                }
            }
            let c = rest.chars().next().unwrap_or_default();
            out.push(c);
            rest = &rest[c.len_utf8()..];
        }
        out
    }

    /// Run one command line as the sandbox's shell does.
    fn sh(&self, line: &str) -> Out {
        self.sh_in(line, "")
    }

    /// The same, `input` on its standard input.
    fn sh_in(&self, line: &str, input: &str) -> Out {
        use std::io::Write;
        let mut cmd = if self.ns {
            let mut c = Command::new("unshare");
            c.args([
                "-rm",
                "sh",
                "-c",
                "mount --bind \"$0\" /usr/local && mount --bind \"$1\" /usr/sbin || exit 99; \
                 exec sh -c \"$2\"",
            ])
            .arg(self.w.join("usr/local"))
            .arg(self.w.join("usr/sbin"))
            .arg(line);
            c
        } else if self.smtp {
            let mut c = Command::new("unshare");
            c.args(["-rn", "sh", "-c", SMTP_WRAPPER, "sh"])
                .arg(crate::smtpd::PYTHON)
                .arg(root().join("tests/integration/smtpd.py"))
                .arg(self.w.join("smtp"))
                .arg(line);
            c
        } else {
            let mut c = Command::new("sh");
            c.arg("-c").arg(line);
            c
        };
        let mut child = cmd
            .current_dir(self.w.join("work"))
            .env_clear()
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("sh");
        if let Some(mut i) = child.stdin.take() {
            let _ = i.write_all(input.as_bytes());
        }
        let out = child.wait_with_output().expect("sh");
        Out {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// Start `build-trigger watch` on the sandbox's spool `spool` (a name
    /// under it) with `chain`, and `more` arguments; killed with the host.
    fn watch(&mut self, spool: &str, chain: &str, more: &[String]) {
        use std::os::unix::process::CommandExt;
        let child = Command::new("build-trigger")
            .args(["watch", "--rescan", "1s", "--spool"])
            .arg(self.w.join(spool))
            .arg("--chain")
            .arg(self.w.join(chain))
            .args(more)
            .current_dir(self.w.join("work"))
            .env_clear()
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(fs::File::create(self.w.join(format!("watch-{spool}.log"))).expect("log"))
            .process_group(0)
            .spawn()
            .expect("build-trigger watch");
        self.bg.push(child);
    }

    /// What the watchers said.
    fn watch_logs(&self) -> String {
        fs::read_dir(&self.w)
            .into_iter()
            .flatten()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().starts_with("watch-"))
            .map(|e| fs::read_to_string(e.path()).unwrap_or_default())
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// Run a setup command in the work directory, its paths mapped as the
    /// examples' are; it must succeed (0 or 1).
    fn setup(&self, line: &str) {
        let out = self.sh(&self.subst(line));
        assert!(matches!(out.code, 0 | 1), "setup {line}: {out:?}");
    }
}

fn copy_dir(from: &Path, to: &Path) {
    let st = Command::new("cp")
        .arg("-R")
        .arg(from)
        .arg(to)
        .status()
        .expect("cp");
    assert!(st.success());
}

// Setups.

fn nothing(_: &mut Host) {}

/// list.jsonl: the list stage's output for the branch.
fn with_list(h: &mut Host) {
    h.setup(&format!(
        "ports-delta --cvs {BASE}:{BRANCH} | pkgpath-expand > list.jsonl"
    ));
}

/// result.jsonl: a chain's output.
fn with_result(h: &mut Host) {
    with_list(h);
    h.setup("clean-env --keep rsync < list.jsonl | build-list | collect-built > result.jsonl");
}

/// done.jsonl and built.jsonl: a chain's output, its transfers to a signing
/// directory.
fn with_done(h: &mut Host) {
    with_list(h);
    h.setup(
        "clean-env --keep rsync < list.jsonl | build-list > built.jsonl && \
         collect-built < built.jsonl | rsync-list /var/spool/sign/amd64 > done.jsonl",
    );
}

/// /usr/ports a git clone instead: the release tagged, the -stable branch
/// with the same fixes, origin/OPENBSD_7_8 known.
fn git_checkout(h: &mut Host) {
    require("git", "git");
    let git = |dir: &str, args: &str| {
        h.setup(&format!(
            "cd ../{dir} && git -c user.name=Porter -c user.email=porter@example.org {args}"
        ))
    };
    fs::rename(h.w.join("ports"), h.w.join("cvsports")).expect("mv");
    copy_dir(&h.w.join("import"), &h.w.join("origin"));
    git("origin", "init -q -b main");
    git("origin", "add -A .");
    git("origin", "commit -q -m release");
    git("origin", &format!("tag {BASE}"));
    git("origin", &format!("checkout -q -b {BRANCH}"));
    h.setup(
        "cd ../origin && echo '# -stable: security fix' >> net/curl/Makefile && \
         echo '# -stable: security fix' >> lang/php/Makefile.inc",
    );
    git("origin", "commit -q -a -m fixes");
    git("work", &format!("clone -q -b {BRANCH} ../origin ../ports"));
}

/// A farm: /etc/portflow.conf with two targets, amd64 and i386, each a
/// spool served by its watcher (its own WRKOBJDIR, the tree and the
/// repository shared), the update and the delta in CVS, mail to a maildir.
fn farm(h: &mut Host) {
    farm_of(
        h,
        &[("amd64", "10m", true), ("i386", "10m", true)],
        "sqlports",
    );
}

/// The farm with i386's host down: nobody serves its spool, and its
/// deadline is short.
fn farm_i386_down(h: &mut Host) {
    farm_of(
        h,
        &[("amd64", "10m", true), ("i386", "5s", false)],
        "sqlports",
    );
}

/// The farm, its work directory and maildir made, its sqlports an old file
/// that is no database.
fn farm_old_sqlports(h: &mut Host) {
    for d in ["db/portflow/outbox", "Mail/portflow"] {
        fs::create_dir_all(h.w.join(d)).expect("mkdir");
    }
    fs::write(h.w.join("db/sqlports-old"), "sqlports 7.30, as a text\n").expect("old");
    farm_of(
        h,
        &[("amd64", "10m", true), ("i386", "10m", true)],
        "sqlports-old",
    );
}

/// A farm of `(arch, deadline, served)` targets, its sqlports `db/<sqlports>`.
fn farm_of(h: &mut Host, targets: &[(&str, &str, bool)], sqlports: &str) {
    let w = h.w.display().to_string();
    fs::write(h.w.join("farm-chain"), "build-list\ncollect-built\n").expect("chain");
    let mut text = String::new();
    for (arch, deadline, served) in targets {
        text.push_str(&format!(
            "\n[[target]]\nname = \"{arch}\"\narch = \"{arch}\"\n\
             spool = \"{w}/spool-{arch}\"\ndeadline = \"{deadline}\"\n"
        ));
        fs::create_dir_all(h.w.join(format!("spool-{arch}/new"))).expect("spool");
        if *served {
            h.watch(
                &format!("spool-{arch}"),
                "farm-chain",
                &[
                    "--env".into(),
                    format!("MACHINE_ARCH={arch}"),
                    "--env".into(),
                    format!("WRKOBJDIR={w}/pobj-{arch}"),
                ],
            );
        }
    }
    fs::write(
        h.w.join("portflow.conf"),
        format!(
            "ports_dir = \"{w}/ports\"\nmake = \"make\"\n\
             update = [\"cvs\", \"-q\", \"up\", \"-Pd\", \"-A\", \"-r\", \"{BRANCH}\"]\n\
             sqlports = \"{w}/db/{sqlports}\"\nwork_dir = \"{w}/db/portflow\"\n\
             [delta]\ncvs = \"{BASE}:{BRANCH}\"\n\
             [mail]\nto = [\"stable-porters@example.org\"]\nmaildir = \"{w}/Mail/portflow\"\n\
             {text}"
        ),
    )
    .expect("config");
}

/// A batch at work on devel/slow (3 s), misc/plain after it.
fn slow_at_work(h: &mut Host) {
    h.setup(
        "printf 'devel/slow\\nmisc/plain\\n' | \
         build-trigger submit --spool /var/spool/portflow --batch dr1 > /dev/null",
    );
    fs::write(h.w.join("chain"), "build-list\n").expect("chain");
    h.watch("spool", "chain", &["--env".into(), "SLOW_SECONDS=3".into()]);
    let log = h.w.join("ports/logs/amd64/dr1/devel@slow.log");
    let start = std::time::Instant::now();
    while !fs::read_to_string(&log).is_ok_and(|t| t.contains("slow: second 1")) {
        assert!(
            start.elapsed() < std::time::Duration::from_secs(60),
            "devel/slow did not start: {}",
            h.watch_logs()
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

/// The watcher drained: it ended once devel/slow was built; the batch waits
/// in cur/ for the next start, misc/plain not built.
fn drained(h: &Host) {
    let start = std::time::Instant::now();
    let journal = h.w.join("ports/logs/amd64/dr1/journal");
    while !fs::read_to_string(&journal).is_ok_and(|t| t.contains("devel/slow")) {
        assert!(
            start.elapsed() < std::time::Duration::from_secs(30),
            "devel/slow not finished: {}",
            h.watch_logs()
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    // The watcher is gone once the drain is done: status says the batch is
    // not served.
    let mut st = String::new();
    while start.elapsed() < std::time::Duration::from_secs(30) {
        st = h.sh("build-trigger status --json --spool ../spool").stdout;
        if st.contains("\"running\":false") {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    assert!(st.contains("\"batch\":\"dr1\",\"state\":\"cur\""), "{st}");
    assert!(st.contains("\"running\":false"), "{st}\n{}", h.watch_logs());
    let journal = fs::read_to_string(&journal).unwrap_or_default();
    assert!(!journal.contains("misc/plain"), "{journal}");
}

/// list.jsonl as the list stage writes it for a batch: its batch record
/// first; a watcher serving the spool.
fn listed_batch(h: &mut Host) {
    with_list(h);
    h.setup(
        "{ echo '{\"kind\":\"batch\",\"v\":1,\"id\":\"20261121-101500-3f2a9c1b\"}'; \
           cat list.jsonl; } > batch.jsonl && mv batch.jsonl list.jsonl",
    );
    fs::write(h.w.join("chain"), "build-list\ncollect-built\n").expect("chain");
    h.watch("spool", "chain", &[]);
}

fn curl_built(h: &mut Host) {
    h.setup("echo net/curl | build-list > built.jsonl");
}

fn curl_installed(h: &mut Host) {
    write_files(
        &h.w.join("pkgdb"),
        &[("curl-8.9.1/+CONTENTS", "@name curl-8.9.1\n")],
    );
}

/// A batch at work, at its third entry (devel/slow, which takes a minute),
/// under a watcher, and one queued.
fn queued(h: &mut Host) {
    h.setup(
        "printf 'misc/plain\\nnet/tor\\ndevel/slow\\n' | \
         build-trigger submit --spool /var/spool/portflow --batch 20261121-101500-3f2a9c1b",
    );
    h.setup(
        "echo net/curl | build-trigger submit --spool /var/spool/portflow --batch 20261121-113000-77c01d2e",
    );
    fs::write(h.w.join("chain"), "build-list\n").expect("chain");
    h.watch(
        "spool",
        "chain",
        &["--env".into(), "SLOW_SECONDS=120".into()],
    );
    let start = std::time::Instant::now();
    while !h
        .sh("build-trigger status --json --spool ../spool")
        .stdout
        .contains("\"entry\":\"devel/slow\"")
    {
        assert!(
            start.elapsed() < std::time::Duration::from_secs(60),
            "the batch did not reach devel/slow: {}",
            h.watch_logs()
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
}

/// A batch queued, and the chain of the build host where its crontab has it.
fn queued_for_cron(h: &mut Host) {
    h.setup("echo misc/plain | build-trigger submit --spool /var/spool/portflow > /dev/null");
    fs::write(h.w.join("chain"), "build-list\ncollect-built\n").expect("chain");
}

/// Batch 20261121-101500-3f2a9c1b finished with net/curl failed (its
/// distfile was missing from the mirror, which has it again now), its watcher
/// still serving the spool; a sendmail in /usr/sbin that keeps the mail.
fn curl_failed(h: &mut Host) {
    let dist = h.w.join("mirror/curl-8.9.1.tar.gz");
    let aside = h.w.join("curl-8.9.1.tar.gz");
    fs::rename(&dist, &aside).expect("mv");
    h.setup(
        "printf 'net/curl\\nmisc/plain\\n' | \
         build-trigger submit --spool /var/spool/portflow --batch 20261121-101500-3f2a9c1b > /dev/null",
    );
    fs::write(h.w.join("chain"), "build-list\ncollect-built\n").expect("chain");
    h.watch("spool", "chain", &[]);
    let done = h.w.join("spool/done/20261121-101500-3f2a9c1b.jsonl");
    let start = std::time::Instant::now();
    while !done.exists() {
        assert!(
            start.elapsed() < std::time::Duration::from_secs(60),
            "the batch did not finish: {}",
            h.watch_logs()
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    let records = fs::read_to_string(&done).expect("done");
    assert!(
        records
            .contains("\"fullpkgpath\":\"net/curl\",\"target\":\"package\",\"status\":\"failed\""),
        "{records}"
    );
    fs::rename(&aside, &dist).expect("mv back");
    fs::create_dir_all(h.w.join("usr/sbin")).expect("mkdir");
    write_script(
        &h.w.join("usr/sbin/sendmail"),
        &format!("#!/bin/sh\ncat > '{}'\n", h.w.join("Mail/sent").display()),
    );
    h.ns = true;
}

/// A finished batch where the example has it (`spool/done/`), the target
/// records, the update's output; an SMTP server on localhost:25.
fn smtp_localhost(h: &mut Host) {
    crate::smtpd::require_aiosmtpd();
    require("ip", "iproute2");
    with_done(h);
    fs::create_dir_all(h.w.join("work/spool/done")).expect("mkdir");
    fs::copy(
        h.w.join("work/done.jsonl"),
        h.w.join("work/spool/done/20261121-0300.jsonl"),
    )
    .expect("copy");
    fs::write(
        h.w.join("work/targets.jsonl"),
        "{\"kind\":\"target\",\"v\":1,\"name\":\"amd64\",\"arch\":\"amd64\",\"status\":\"done\",\"seconds\":812.5,\"message\":\"\"}\n",
    )
    .expect("targets");
    fs::write(h.w.join("log/cvs-up.txt"), "P net/curl/Makefile\n").expect("changes");
    h.smtp = true;
}

/// The mail reached the SMTP server, to the porters, with the packages.
fn mailed_to_porters(h: &Host) {
    let mails: Vec<String> = fs::read_dir(h.w.join("smtp"))
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.path().extension().is_some_and(|x| x == "eml"))
        .map(|e| fs::read_to_string(e.path()).unwrap_or_default())
        .collect();
    assert_eq!(mails.len(), 1, "{mails:?}");
    assert!(
        mails[0].contains("ports-stable@example.org"),
        "{}",
        mails[0]
    );
    assert!(mails[0].contains("curl-8.9.1.tgz"), "{}", mails[0]);
    let log = fs::read_to_string(h.w.join("log/mail.jsonl")).expect("mail.jsonl");
    assert!(log.contains("\"status\":\"sent\""), "{log}");
}

/// The retry built net/curl, and its mail went out through sendmail.
fn retry_mailed(h: &Host) {
    let mail = fs::read_to_string(h.w.join("Mail/sent")).expect("a mail through sendmail");
    assert!(mail.contains("porters@example.org"), "{mail}");
    assert!(mail.contains("curl-8.9.1.tgz"), "{mail}");
}

/// A sqlports database of the -stable tree where the example has it.
fn stable_db(h: &mut Host) {
    with_list(h);
    let _ = fs::copy(h.w.join("db/sqlports"), h.w.join("db/sqlports-stable"));
}

fn chain_file(h: &Host, text: &str) {
    let p = h.w.join("chain");
    fs::write(&p, text).expect("write chain");
    // build-trigger loads it (run-once on an empty spool: nothing to run).
    let out = h.sh(&format!(
        "build-trigger run-once --spool {} --chain {} --env MACHINE_ARCH=amd64",
        h.w.join("spool").display(),
        p.display()
    ));
    assert_eq!(out.code, 3, "{out:?}");
}

/// An rc.d(8) script: its daemon started as rc.subr starts it (with
/// /usr/local the sandbox's, where `make install` put portflow and the
/// default chain: a mount namespace of its own), then a batch submitted to
/// its spool is built and its package reaches the signing directory.
fn rc_script(h: &Host, text: &str) {
    require("unshare", "util-linux");
    let settings: String = text
        .lines()
        .take_while(|l| !l.contains("rc.subr"))
        .filter(|l| !l.starts_with("#!"))
        .map(|l| format!("{l}\n"))
        .collect();
    fs::write(h.w.join("rc.settings"), settings).expect("settings");
    let line = h.sh(". ../rc.settings && printf '%s' \"$daemon $daemon_flags\"");
    assert_eq!(line.code, 0, "{line:?}");
    let cmd = h.subst(&line.stdout);
    daemon_builds(h, &cmd, "signer/var/stable/amd64/plain-1.0.tgz");
}

/// A build host's watcher, as written in portflow.conf(5).
fn watch_line(h: &Host, text: &str) {
    let cmd = text
        .lines()
        .map(|l| l.trim_start_matches("# ").trim_end_matches('\\').trim())
        .collect::<Vec<_>>()
        .join(" ");
    daemon_builds(h, &h.subst(&cmd), "signer/var/stable/i386/plain-1.0.tgz");
}

/// Start `cmd`, a watcher, with /usr/local the sandbox's (where `make
/// install` put portflow and the default chain: a mount namespace of its
/// own); a batch submitted to its spool is built and the package reaches
/// `delivered` (under the sandbox).
fn daemon_builds(h: &Host, cmd: &str, delivered: &str) {
    use std::os::unix::process::CommandExt;
    require("unshare", "util-linux");
    fs::create_dir_all(h.w.join("signer/var/stable")).expect("mkdir");
    let mut child = Command::new("unshare")
        .args([
            "-rm",
            "sh",
            "-c",
            "mount --bind \"$0\" /usr/local || exit 99; exec $1",
        ])
        .arg(h.w.join("usr/local"))
        .arg(cmd)
        .current_dir(h.w.join("work"))
        .env_clear()
        .envs(h.env.iter().map(|(k, v)| (k, v)))
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(fs::File::create(h.w.join("daemon.log")).expect("log"))
        .process_group(0)
        .spawn()
        .expect("unshare");
    let kill = |c: &mut std::process::Child| {
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", c.id())])
            .status();
        let _ = c.wait();
    };
    h.setup(
        "echo misc/plain | build-trigger submit --spool /var/spool/portflow --batch d1 > /dev/null",
    );
    let start = std::time::Instant::now();
    while !h.w.join("spool/done/d1.jsonl").exists() && !h.w.join("spool/failed/d1.jsonl").exists() {
        if start.elapsed() > std::time::Duration::from_secs(60)
            || child.try_wait().ok().flatten().is_some()
        {
            kill(&mut child);
            panic!(
                "{cmd}: the batch did not finish: {}",
                fs::read_to_string(h.w.join("daemon.log")).unwrap_or_default()
            );
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    kill(&mut child);
    let done = fs::read_to_string(h.w.join("spool/done/d1.jsonl"));
    assert!(
        done.is_ok(),
        "{cmd}: {}",
        fs::read_to_string(h.w.join("spool/failed/d1.jsonl")).unwrap_or_default()
    );
    assert!(
        h.w.join(delivered).exists(),
        "{cmd}: {delivered} not delivered: {}",
        done.unwrap_or_default()
    );
}

/// The records page's change list, as ports-delta reads it there.
fn delta_of(h: &Host, text: &str) -> Out {
    h.sh_in(
        "ports-delta --exclude 'sysutils/firmware/*' --ports-dir ../ports",
        text,
    )
}

fn rdiff_output(h: &Host, text: &str) {
    let out = delta_of(h, text);
    assert!(matches!(out.code, 0 | 1), "{out:?}");
}

/// The first port record of a text, through pkgpath-expand.
fn expand_first(h: &Host, text: &str) -> Out {
    let first = text
        .lines()
        .find(|l| l.contains("\"kind\":\"port\""))
        .expect("a port record");
    h.sh_in("pkgpath-expand", &format!("{first}\n"))
}

/// A port the release's sqlports does not know, through pkgpath-expand.
fn brand_new(h: &Host, text: &str) {
    let out = h.sh_in(
        "pkgpath-expand",
        "{\"kind\":\"port\",\"v\":1,\"pkgpath\":\"net/brandnew\"}\n",
    );
    let printed: Vec<&str> = out.stdout.lines().collect();
    for want in text.lines() {
        assert!(printed.iter().any(|p| shows(want, p)), "{want}\n{out:?}");
    }
}

fn coordinator_config(h: &Host, text: &str) {
    let p = h.w.join("portflow.conf");
    fs::write(&p, text).expect("write config");
    let out = h.sh(&format!(
        "build-coordinator check --file -c {}",
        p.display()
    ));
    assert_eq!(out.code, 0, "{text}\n{out:?}");
}

// Running a block.

/// The commands of a block (`$ ` or `# ` lines, with their continuation
/// lines) and the lines it shows as their output (folded lines joined).
fn split(text: &str) -> (Vec<String>, Vec<String>) {
    let (mut cmds, mut shown) = (Vec::<String>::new(), Vec::<String>::new());
    // The line before goes on into this one: in a command, in shown output.
    let (mut in_cmd, mut folded) = (false, false);
    for l in text.lines() {
        let t = l.trim_end();
        if in_cmd {
            if let Some(c) = cmds.last_mut() {
                c.push('\n');
                c.push_str(l);
            }
            in_cmd = t.ends_with('\\') || t.ends_with('|');
            continue;
        }
        if let Some(c) = l.strip_prefix("$ ").or_else(|| l.strip_prefix("# ")) {
            cmds.push(c.to_string());
            in_cmd = t.ends_with('\\') || t.ends_with('|');
            folded = false;
            continue;
        }
        let piece = t.strip_suffix('\\');
        let text = piece.unwrap_or(t);
        match shown.last_mut() {
            Some(s) if folded => s.push_str(text.trim_start()),
            _ => shown.push(text.to_string()),
        }
        folded = piece.is_some();
    }
    (cmds, shown)
}

/// A line as compared, what differs from run to run made alike: times
/// (`2026-11-21T10:15:01Z`), long digit and hex runs (batch ids, digests),
/// numbers of records (`"seconds":41.503`), durations (`3s`).  Versions and
/// names stay as they are.
fn norm(s: &str) -> String {
    let c: Vec<char> = s.chars().collect();
    let mut out = String::new();
    let mut i = 0;
    let digits = |from: usize| c[from..].iter().take_while(|x| x.is_ascii_digit()).count();
    while i < c.len() {
        // 2026-11-21T10:15:01Z
        let stamp = "0000-00-00T00:00:00Z";
        if i + stamp.len() <= c.len()
            && c[i..i + stamp.len()]
                .iter()
                .zip(stamp.chars())
                .all(|(x, p)| {
                    if p == '0' {
                        x.is_ascii_digit()
                    } else {
                        *x == p
                    }
                })
        {
            out.push('T');
            i += stamp.len();
            continue;
        }
        let hex = c[i..]
            .iter()
            .take_while(|x| x.is_ascii_hexdigit() && !x.is_ascii_uppercase())
            .count();
        if hex >= 8 {
            out.push('H');
            i += hex;
            continue;
        }
        let n = digits(i);
        if n >= 6 {
            out.push('D');
            i += n;
            continue;
        }
        let after_key = i >= 2 && c[i - 1] == ':' && c[i - 2] == '"';
        if n > 0 && after_key {
            // A number of a record: 41.503
            out.push('N');
            i += n;
            while i < c.len() && (c[i] == '.' || c[i].is_ascii_digit()) {
                i += 1;
            }
            continue;
        }
        let unit = c.get(i + n).copied();
        let next = c.get(i + n + 1).copied();
        let starts = i == 0 || !c[i - 1].is_ascii_alphanumeric();
        if n > 0
            && starts
            && matches!(unit, Some('s' | 'm' | 'h'))
            && next.is_none_or(|x| !x.is_ascii_alphanumeric())
        {
            // A duration, whatever its unit: 3s, 10h
            out.push_str("DUR");
            i += n + 1;
            continue;
        }
        out.push(c[i]);
        i += 1;
    }
    out
}

/// `pattern` (with `...` for anything) matches `s`.
fn matches(pattern: &str, s: &str) -> bool {
    let parts: Vec<&str> = pattern.split("...").collect();
    if parts.len() == 1 {
        return pattern == s;
    }
    let mut rest = s;
    for (i, p) in parts.iter().enumerate() {
        if i == 0 {
            match rest.strip_prefix(p) {
                Some(r) => rest = r,
                None => return false,
            }
        } else if i + 1 == parts.len() {
            return rest.ends_with(p);
        } else {
            match rest.find(p) {
                Some(at) => rest = &rest[at + p.len()..],
                None => return false,
            }
        }
    }
    true
}

/// A printed line is what the example shows: a record whose fields include
/// those shown, with their values (numbers, digests and ids aside); other
/// lines alike, `...` standing for anything.
fn shows(want: &str, printed: &str) -> bool {
    if let (Ok(serde_json::Value::Object(w)), Ok(serde_json::Value::Object(p))) = (
        serde_json::from_str::<serde_json::Value>(want),
        serde_json::from_str::<serde_json::Value>(printed),
    ) {
        return w.iter().all(|(k, v)| {
            p.get(k).is_some_and(|pv| {
                // The host's name is the sandbox's; numbers (seconds, sizes,
                // pids) differ from run to run.
                k == "host"
                    || (v.is_number() && pv.is_number())
                    || matches(&norm(&v.to_string()), &norm(&pv.to_string()))
            })
        });
    }
    matches(&norm(want), &norm(printed))
}

fn run_block(
    tpl: &Host,
    b: &Block,
    setup: fn(&mut Host),
    then: Option<fn(&Host)>,
    tty: bool,
) -> Result<(), String> {
    let mut h = Host::copy(tpl);
    setup(&mut h);
    let (cmds, shown) = split(&b.text);
    if cmds.is_empty() {
        return Err("no command in it".into());
    }
    // One shell session, as a person types the lines: what a line sets
    // (a variable, the directory) holds for the next; each line's exit
    // status is kept.
    let codes = h.w.join("codes");
    let mut session = String::new();
    for c in &cmds {
        session.push_str(&h.subst(c));
        session.push_str(&format!("\necho \"$?\" >> '{}'\n", codes.display()));
    }
    let script = h.w.join("session.sh");
    fs::write(&script, session).expect("session");
    let line = if tty {
        format!("script -qec 'sh {}' /dev/null", script.display())
    } else {
        format!("sh {}", script.display())
    };
    let out = h.sh(&line);
    let codes: Vec<i32> = fs::read_to_string(&codes)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .collect();
    if codes.len() != cmds.len() || out.stderr.contains("Fatal:") {
        return Err(format!("the session ended early: {out:?}"));
    }
    for (c, code) in cmds.iter().zip(&codes) {
        if matches!(code, 2 | 126 | 127) {
            return Err(format!("`{c}`: exit {code}: {}", out.stderr));
        }
    }
    let all = format!("{}{}", out.stdout, out.stderr);
    let printed: Vec<&str> = all.lines().map(|l| l.trim_end_matches('\r')).collect();
    for want in shown.iter().filter(|l| !l.trim().is_empty()) {
        let want = h.subst(want);
        if !printed.iter().any(|p| shows(&want, p)) {
            return Err(format!(
                "shown, not printed: {want}\nprinted:\n{}",
                printed.join("\n")
            ));
        }
    }
    if let Some(then) = then {
        then(&h);
    }
    Ok(())
}

#[test]
fn every_example_of_the_manual_is_in_the_table() {
    let blocks = blocks();
    let mut problems = Vec::new();
    for b in &blocks {
        if !TABLE.iter().any(|(p, n, _)| *p == b.page && *n == b.n) {
            problems.push(format!(
                "{} example {}: not in the table of tests/integration/examples.rs:\n{}",
                b.page, b.n, b.text
            ));
        }
    }
    for (p, n, _) in TABLE {
        if !blocks.iter().any(|b| b.page == *p && b.n == *n) {
            problems.push(format!("{p} example {n}: in the table, not in the page"));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// The examples of the two daemons' pages (their farms and watchers take
/// the longest), run.
#[test]
fn the_examples_of_the_daemons_work_as_written() {
    examples_of(|p| matches!(p, "build-coordinator.1" | "build-trigger.1"));
}

/// The examples of the filters' pages and the file formats, run or checked.
#[test]
fn the_examples_of_the_filters_work_as_written() {
    examples_of(|p| !matches!(p, "build-coordinator.1" | "build-trigger.1"));
}

/// The examples of the pages `pick` takes: run, or checked.
fn examples_of(pick: fn(&str) -> bool) {
    let blocks = blocks();
    let tpl = Host::make();
    let mut failed = Vec::new();
    let mut ran = 0;
    for (page, n, how) in TABLE.iter().filter(|(p, _, _)| pick(p)) {
        let Some(b) = blocks.iter().find(|b| b.page == *page && b.n == *n) else {
            continue;
        };
        match how {
            How::Cron(setup) => {
                ran += 1;
                let mut h = Host::copy(&tpl);
                setup(&mut h);
                let line = b.text.trim();
                let cmd = line.splitn(6, ' ').nth(5).unwrap_or("");
                let out = h.sh(&h.subst(cmd));
                if matches!(out.code, 2 | 126 | 127)
                    || !out.stderr.is_empty()
                    || !out.stdout.is_empty()
                {
                    failed.push(format!(
                        "{page} example {n}: `{cmd}`: cron gets mail: {out:?}"
                    ));
                }
            }
            How::Run(setup) | How::Tty(setup) | How::RunThen(setup, _) => {
                ran += 1;
                let tty = matches!(how, How::Tty(_));
                let then = match how {
                    How::RunThen(_, t) => Some(*t),
                    _ => None,
                };
                if let Err(e) = run_block(&tpl, b, *setup, then, tty) {
                    failed.push(format!("{page} example {n}:\n{}\n=> {e}", b.text));
                }
            }
            How::File(check) => {
                ran += 1;
                let h = Host::copy(&tpl);
                check(&h, &b.text);
            }
            How::Follows(from, run) => {
                ran += 1;
                let input = blocks
                    .iter()
                    .find(|x| x.page == *page && x.n == *from)
                    .map(|x| x.text.as_str())
                    .unwrap_or_default();
                let h = Host::copy(&tpl);
                let out = run(&h, input);
                let printed: Vec<&str> = out.stdout.lines().collect();
                for want in b.text.lines().filter(|l| !l.trim().is_empty()) {
                    if !printed.iter().any(|p| shows(want, p)) {
                        failed.push(format!(
                            "{page} example {n} (from example {from}): shown, not printed: {want}\nprinted:\n{}{}",
                            out.stdout, out.stderr
                        ));
                    }
                }
            }
        }
    }
    assert!(failed.is_empty(), "{}", failed.join("\n\n"));
    assert!(ran > 0);
}
