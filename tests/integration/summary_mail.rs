//! summary-mail: the mail of a batch, checked as a real SMTP server received it
//! (smtpd.rs), and the other transports, the outbox, the alarm and bad input.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{json, Value};

use crate::smtpd::{Options, Smtpd};
use crate::support::*;

/// One record line: `kind`, `v`, then the fields.
fn rec(kind: &str, fields: Value) -> String {
    let mut m = serde_json::Map::new();
    m.insert("kind".into(), kind.into());
    m.insert("v".into(), 1.into());
    if let Value::Object(f) = fields {
        m.extend(f);
    }
    format!("{}\n", Value::Object(m))
}

fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8 temp path")
}

const FROM: &str = "builder@build.example.org";
const TO1: &str = "ports@example.org";
const TO2: &str = "Stable Team <stable@example.org>";

/// The per-arch part of a batch as the chain of one build host leaves it:
/// the list records (made on the initiator, without arch), then the build
/// host's.
fn list_records() -> String {
    let mut v = String::new();
    v += &rec(
        "batch",
        json!({"id": "20261121-0300", "created": "2026-11-21T03:00:00Z", "tree": "/usr/ports",
               "source": {"vcs": "cvs", "from": "OPENBSD_7_8_BASE", "to": "OPENBSD_7_8"}}),
    );
    v += &rec(
        "port",
        json!({"pkgpath": "net/curl", "fullpkgpath": "net/curl",
               "changes": [{"path": "net/curl/Makefile", "status": "modified", "from": "1.80", "to": "1.80.2.1"},
                           {"path": "net/curl/distinfo", "status": "modified", "from": "1.40", "to": "1.40.2.1"}]}),
    );
    v += &rec(
        "port",
        json!({"pkgpath": "devel/broken", "fullpkgpath": "devel/broken",
               "changes": [{"path": "devel/broken/patches/patch-a_c", "status": "added", "to": "1.1.2.1"}]}),
    );
    v += &rec(
        "removed",
        json!({"pkgpath": "net/oldport",
               "changes": [{"path": "net/oldport/Makefile", "status": "removed", "from": "1.2"}]}),
    );
    v += &rec(
        "notice",
        json!({"tool": "ports-delta", "level": "warning",
               "message": "infrastructure/mk/bsd.port.mk changed: infrastructure concerns every port"}),
    );
    v
}

/// A log of 30 numbered lines.
fn write_log(dir: &Path) -> PathBuf {
    let p = dir.join("devel_broken.log");
    let text: String = (1..=30)
        .map(|i| format!("build log line {i:02}: cc -O2 -c broken.c\n"))
        .collect();
    std::fs::write(&p, text).expect("write log");
    p
}

/// Two architectures concatenated, and the coordinator's target records.
fn two_arch_batch(dir: &Path) -> String {
    let log = write_log(dir);
    let mut v = String::new();

    // amd64: 3 + 3, and two infrastructure packages.
    v += &list_records();
    let amd64 = [
        "curl-8.9.1.tgz",
        "debug-curl-8.9.1.tgz",
        "debug-tor-0.4.8.13.tgz",
        "debug-vim-9.1.0-gtk2.tgz",
        "quirks-7.14.tgz",
        "sqlports-7.52.tgz",
        "tor-0.4.8.13.tgz",
        "vim-9.1.0-gtk2.tgz",
    ];
    v += &rec(
        "build",
        json!({"fullpkgpath": "net/curl", "target": "package", "status": "built",
               "log": "/nonexistent/curl.log", "seconds": 12.5, "arch": "amd64"}),
    );
    // The tail travels in the record, as build-list puts it there (the 30 lines).
    let tail: Vec<String> = std::fs::read_to_string(&log)
        .expect("log")
        .lines()
        .map(str::to_string)
        .collect();
    v += &rec(
        "build",
        json!({"fullpkgpath": "devel/broken", "target": "package", "status": "failed",
               "reason": "error", "log": s(&log), "tail": tail, "seconds": 3.0, "arch": "amd64"}),
    );
    for f in amd64 {
        let a = json!({"file": f, "debug": f.starts_with("debug-"), "arch": "amd64"});
        v += &rec("package", a);
        v += &rec(
            "transfer",
            json!({"file": f, "dest": "signer:/build/amd64/", "status": "sent", "arch": "amd64"}),
        );
    }
    // Built again, but the signing host has them from an earlier batch: not
    // new to sign, only counted.
    for f in [
        "plain-1.0.tgz",
        "tor-0.4.8.12.tgz",
        "debug-tor-0.4.8.12.tgz",
    ] {
        v += &rec(
            "transfer",
            json!({"file": f, "dest": "signer:/build/amd64/", "status": "unchanged", "arch": "amd64"}),
        );
    }
    v += &rec(
        "notice",
        json!({"tool": "collect-built", "level": "error", "arch": "amd64",
               "message": "debug-foo-1.0.tgz (devel/foo): built but missing from ftp"}),
    );

    // i386: 12 + 10, one infrastructure package, one transfer that failed; its
    // failed build's log is not on this host.
    v += &list_records();
    let mut i386: Vec<String> = (1..=12).map(|i| format!("p{i:02}-1.0.tgz")).collect();
    i386.extend((1..=10).map(|i| format!("debug-p{i:02}-1.0.tgz")));
    i386.push("quirks-7.14.tgz".into());
    // A record with no tail, that names a FIFO of this host (which would hang a
    // reader): never opened.
    let fifo = dir.join("fifo");
    if !fifo.exists() {
        assert!(Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .expect("mkfifo")
            .success());
    }
    v += &rec(
        "build",
        json!({"fullpkgpath": "devel/broken", "target": "package", "status": "failed",
               "reason": "timeout", "log": s(&fifo), "arch": "i386"}),
    );
    v += &rec(
        "build",
        json!({"fullpkgpath": "net/tor", "target": "package", "status": "skipped",
               "reason": "not-reached", "log": "/nonexistent/tor.log", "arch": "i386"}),
    );
    for f in &i386 {
        v += &rec(
            "transfer",
            json!({"file": f, "dest": "signer:/build/i386/", "status": "sent", "arch": "i386"}),
        );
    }
    v += &rec(
        "transfer",
        json!({"file": "p13-1.0.tgz", "dest": "signer:/build/i386/", "status": "failed", "arch": "i386"}),
    );
    v += &rec(
        "notice",
        json!({"tool": "collect-built", "level": "info", "arch": "i386",
               "message": "nonfree-1.0.tgz (games/nonfree): may not be redistributed (ftp=no)"}),
    );

    // The coordinator.
    v += &rec(
        "target",
        json!({"name": "amd64", "arch": "amd64", "status": "done", "seconds": 100}),
    );
    v += &rec(
        "target",
        json!({"name": "sparc64", "arch": "sparc64", "status": "timeout", "seconds": 14400,
               "message": "no result before the deadline"}),
    );
    v += &rec(
        "target",
        json!({"name": "riscv64-1", "arch": "riscv64", "status": "unreachable",
               "message": "ssh: connect to host riscv64-1 port 22: Connection refused"}),
    );
    v
}

/// The start of the mail of `two_arch_batch`, exactly.
fn expected_head() -> String {
    let mut e = String::from(
        "Hello. New package(s) to sign.\n\
         \n\
         ---\n\
         amd64      3 +   3 -debug packages\n\
         i386      12 +  10 -debug packages\n\
         riscv64    0 +   0 -debug packages\n\
         sparc64    0 +   0 -debug packages\n\
         ---\n",
    );
    for f in [
        "curl-8.9.1.tgz",
        "debug-curl-8.9.1.tgz",
        "debug-tor-0.4.8.13.tgz",
        "debug-vim-9.1.0-gtk2.tgz",
        "quirks-7.14.tgz",
        "sqlports-7.52.tgz",
        "tor-0.4.8.13.tgz",
        "vim-9.1.0-gtk2.tgz",
    ] {
        e += &format!("amd64\t{f}\n");
    }
    for i in 1..=10 {
        e += &format!("i386\tdebug-p{i:02}-1.0.tgz\n");
    }
    for i in 1..=12 {
        e += &format!("i386\tp{i:02}-1.0.tgz\n");
    }
    e += "i386\tquirks-7.14.tgz\n";
    e
}

/// The lines of `body` after the line `header`, up to the next blank line.
fn section<'a>(body: &'a str, header: &str) -> Vec<&'a str> {
    body.lines()
        .skip_while(|l| *l != header)
        .skip(1)
        .take_while(|l| !l.is_empty())
        .collect()
}

/// The mail of `input`, printed.
fn print_mail(input: &str) -> Out {
    run(
        "summary-mail",
        &["--print", "--from", FROM, "--to", TO1],
        input,
        &[],
    )
}

fn mail_args<'a>(outbox: &'a Path, extra: &[&'a str]) -> Vec<&'a str> {
    let mut v = vec![
        "--from",
        FROM,
        "--to",
        TO1,
        "--to",
        TO2,
        "--outbox",
        s(outbox),
    ];
    v.extend_from_slice(extra);
    v
}

#[test]
fn summary_mail_delivered_over_smtp_as_received() {
    let t = tempfile::tempdir().unwrap();
    let smtpd = Smtpd::start();
    let outbox = t.path().join("outbox");
    let addr = smtpd.addr();
    let out = run(
        "summary-mail",
        &mail_args(&outbox, &["--smtp", &addr]),
        &two_arch_batch(t.path()),
        &[],
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.stderr, "", "cron output stays empty on success");

    let got = smtpd.messages();
    assert_eq!(got.len(), 1, "{}", smtpd.log());
    let m = &got[0];
    // Envelope and headers.
    assert_eq!(m.mail_from, FROM);
    assert_eq!(m.rcpt_tos, [TO1, "stable@example.org"]);
    assert!(!m.tls, "the test server offers no STARTTLS");
    assert_eq!(m.header("From"), Some(FROM));
    assert_eq!(
        m.header("To"),
        Some("ports@example.org, Stable Team <stable@example.org>")
    );
    assert_eq!(m.header("Subject"), Some("stable packages to sign"));
    assert_eq!(m.header("Auto-Submitted"), Some("auto-generated"));
    assert_eq!(m.header("X-Portflow-Batch"), Some("20261121-0300"));
    let date = m.header("Date").expect("Date");
    let parts: Vec<&str> = date.split(' ').collect();
    assert!(
        parts.len() == 6 && parts[0].ends_with(',') && parts[5].len() == 5,
        "Date: {date}"
    );
    let id = m.header("Message-ID").expect("Message-ID");
    assert!(
        id.starts_with('<') && id.ends_with('>') && id.contains('@'),
        "{id}"
    );
    assert_eq!(m.header("Content-Transfer-Encoding"), Some("7bit"));

    // The record of the mail, and nothing else, on stdout.
    let recs = out.records();
    assert_eq!(recs.len(), 1, "{}", out.stdout);
    assert_eq!(
        recs[0],
        json!({"kind": "mail", "v": 1,
               "to": "ports@example.org, \"Stable Team\" <stable@example.org>",
               "subject": "stable packages to sign", "status": "sent",
               "message_id": id, "batch": "20261121-0300"})
    );

    // The body: the shell's layout, counts for two arches, infrastructure
    // packages listed but not counted, the failed transfer not listed.
    let body = &m.body;
    assert!(
        body.starts_with(&expected_head()),
        "body:\n{body}\nexpected to start with:\n{}",
        expected_head()
    );
    assert!(!body.contains("\tp13-1.0.tgz\n"));
    // Files the signing host already had are counted, not listed as new.
    assert!(!body.contains("\tplain-1.0.tgz\n"));
    assert_eq!(
        section(body, "Already on the signing host, unchanged:"),
        ["amd64      2 +   1 -debug packages"]
    );
    assert_eq!(
        section(body, "Failed builds:"),
        [
            "amd64\tdevel/broken (error)",
            "i386\tdevel/broken (timeout)"
        ]
    );
    assert_eq!(
        section(body, "Not built (skipped):"),
        ["i386\tnet/tor (not-reached)"]
    );
    assert_eq!(
        section(body, "Failed transfers (not on the signing host):"),
        ["i386\tp13-1.0.tgz -> signer:/build/i386/"]
    );
    assert_eq!(
        section(body, "Targets that did not finish:"),
        [
            "sparc64: timeout after 14400 s: no result before the deadline",
            "riscv64-1 (riscv64): unreachable: ssh: connect to host riscv64-1 port 22: Connection refused",
        ]
    );
    assert_eq!(section(body, "Ports removed (not built):"), ["net/oldport"]);
    // Grouped by level, each once although both arches carried the list's.
    assert_eq!(
        section(body, "Notices:"),
        [
            "error: collect-built (amd64): debug-foo-1.0.tgz (devel/foo): built but missing from ftp",
            "warning: ports-delta: infrastructure/mk/bsd.port.mk changed: infrastructure concerns every port",
            "info: collect-built (i386): nonfree-1.0.tgz (games/nonfree): may not be redistributed (ftp=no)",
        ]
    );
    assert_eq!(
        section(body, "Changes triggering the build:"),
        [
            "A devel/broken/patches/patch-a_c (1.1.2.1)",
            "M net/curl/Makefile (1.80 -> 1.80.2.1)",
            "M net/curl/distinfo (1.40 -> 1.40.2.1)",
            "R net/oldport/Makefile (was 1.2)",
        ]
    );
    // Exactly the last 20 lines of the log, in order, under its header.
    let log = t.path().join("devel_broken.log");
    let header = format!(
        "==> amd64 devel/broken: last 20 line(s) of {}",
        log.display()
    );
    let tail = section(body, &header);
    let want: Vec<String> = (11..=30)
        .map(|i| format!("build log line {i:02}: cc -O2 -c broken.c"))
        .collect();
    assert_eq!(tail, want, "body:\n{body}");
    assert!(!body.contains("build log line 10"));
    // A log that is not there is said, not fatal.
    assert!(
        body.contains(&format!(
            "==> i386 devel/broken: no log: the record carries no log tail (log {} on the build host)",
            t.path().join("fifo").display()
        )),
        "{body}"
    );

    assert!(body.ends_with("--\nbatch 20261121-0300, cvs OPENBSD_7_8_BASE -> OPENBSD_7_8\n"));
    assert!(!outbox.exists(), "nothing saved");
}

#[test]
fn summary_mail_alarm_when_ports_changed_and_nothing_was_built() {
    let t = tempfile::tempdir().unwrap();
    let smtpd = Smtpd::start();
    let outbox = t.path().join("outbox");
    let mut input = list_records();
    input += &rec(
        "build",
        json!({"fullpkgpath": "net/curl", "target": "package", "status": "failed",
               "reason": "error", "log": "/nonexistent/curl.log", "arch": "amd64"}),
    );
    // The infrastructure packages, rebuilt every run, do not count as built.
    input += &rec(
        "build",
        json!({"fullpkgpath": "devel/quirks", "target": "package", "status": "built", "arch": "amd64"}),
    );
    input += &rec(
        "package",
        json!({"file": "quirks-7.14.tgz", "debug": false, "arch": "amd64"}),
    );
    let addr = smtpd.addr();
    let out = run(
        "summary-mail",
        &mail_args(&outbox, &["--smtp", &addr]),
        &input,
        &[],
    );
    assert_eq!(out.code, 4, "{}", out.stderr);
    let got = smtpd.messages();
    assert_eq!(got.len(), 1, "the alarm mail still goes out");
    let m = &got[0];
    assert_eq!(
        m.header("Subject"),
        Some("no package stable: nothing was built although ports changed")
    );
    assert!(
        m.body.starts_with(
            "Hello. No package was built, although 3 port(s) were listed.\n\
             See the failed builds and targets below.\n\
             (No transfer stage ran: these are the packages collected.)\n\
             \n---\n\
             amd64      0 +   0 -debug packages\n\
             ---\n\
             amd64\tquirks-7.14.tgz\n"
        ),
        "{}",
        m.body
    );
    assert_eq!(
        section(&m.body, "Failed builds:"),
        ["amd64\tnet/curl (error)"]
    );
    assert_eq!(out.records()[0]["status"], "sent");
    assert_eq!(
        out.records()[0]["subject"],
        "no package stable: nothing was built although ports changed"
    );

    // A subject of one's own for it.
    let out = run(
        "summary-mail",
        &mail_args(
            &outbox,
            &["--smtp", &addr, "--alarm-subject", "No package ?!"],
        ),
        &input,
        &[],
    );
    assert_eq!(out.code, 4, "{}", out.stderr);
    assert_eq!(smtpd.messages()[1].header("Subject"), Some("No package ?!"));
}

#[test]
fn summary_mail_nothing_to_do_sends_nothing() {
    let t = tempfile::tempdir().unwrap();
    let smtpd = Smtpd::start();
    let outbox = t.path().join("outbox");
    let addr = smtpd.addr();
    let quiet = rec(
        "batch",
        json!({"id": "b1", "created": "2026-11-21T03:00:00Z", "tree": "/usr/ports"}),
    ) + &rec(
        "notice",
        json!({"tool": "ports-delta", "level": "info", "message": "sysutils/firmware/iwm excluded"}),
    ) + &rec("removed", json!({"pkgpath": "net/oldport"}))
        + &rec(
            "target",
            json!({"name": "amd64", "arch": "amd64", "status": "done", "seconds": 1}),
        );
    for input in ["", "# nothing\n\n", quiet.as_str()] {
        let out = run(
            "summary-mail",
            &mail_args(&outbox, &["--smtp", &addr]),
            input,
            &[],
        );
        assert_eq!(out.code, 3, "{input:?}: {}", out.stderr);
        assert_eq!(out.stdout, "", "{input:?}");
        assert_eq!(out.stderr, "", "{input:?}");
    }
    assert!(smtpd.messages().is_empty());
    assert!(!outbox.exists());

    // A warning alone is worth a mail, although nothing was listed.
    let warn = rec(
        "notice",
        json!({"tool": "ports-delta", "level": "warning", "message": "checkout is behind"}),
    );
    let out = run(
        "summary-mail",
        &mail_args(&outbox, &["--smtp", &addr]),
        &warn,
        &[],
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    let m = &smtpd.messages()[0];
    assert_eq!(m.header("Subject"), Some("stable packages to sign"));
    assert!(
        m.body.starts_with("Hello. No new package to sign.\n"),
        "{}",
        m.body
    );
    assert_eq!(
        section(&m.body, "Notices:"),
        ["warning: ports-delta: checkout is behind"]
    );
}

#[test]
fn summary_mail_server_down_outbox_then_flush_exactly_once() {
    let t = tempfile::tempdir().unwrap();
    let mut smtpd = Smtpd::start();
    let outbox = t.path().join("outbox");
    let addr = smtpd.addr();
    smtpd.stop();

    // Down: the mail is saved whole, exit 75.  Twice, to see the order kept.
    let input = two_arch_batch(t.path());
    let mut saved = Vec::new();
    for subject in ["first", "second"] {
        let out = run(
            "summary-mail",
            &mail_args(&outbox, &["--smtp", &addr, "--subject", subject]),
            &input,
            &[],
        );
        assert_eq!(out.code, 75, "{}", out.stderr);
        assert!(
            out.stderr.contains(&format!("SMTP server {addr}"))
                && out.stderr.contains("summary-mail --flush"),
            "{}",
            out.stderr
        );
        let r = &out.records()[0];
        assert_eq!(r["status"], "saved");
        assert_eq!(r["subject"], subject);
        let path = PathBuf::from(r["path"].as_str().expect("path"));
        assert_eq!(path.parent(), Some(outbox.join("new").as_path()));
        let text = std::fs::read_to_string(&path).expect("the saved mail");
        assert!(text.contains(&format!("\nSubject: {subject}\n")), "{text}");
        assert!(text.contains(&expected_head()), "saved whole:\n{text}");
        assert!(text.ends_with("cvs OPENBSD_7_8_BASE -> OPENBSD_7_8\n"));
        saved.push(path);
    }
    assert_eq!(std::fs::read_dir(outbox.join("tmp")).unwrap().count(), 0);

    // Still down: nothing sent, nothing removed.
    let flush = |smtp: &str| {
        run(
            "summary-mail",
            &["--flush", "--smtp", smtp, "--outbox", s(&outbox)],
            "",
            &[],
        )
    };
    let out = flush(&addr);
    assert_eq!(out.code, 75, "{}", out.stderr);
    assert_eq!(out.stdout, "");
    assert!(saved.iter().all(|p| p.exists()));

    // Up again, on the same port: both delivered, in order, once.
    smtpd.restart();
    let out = flush(&addr);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let recs = out.records();
    assert_eq!(recs.len(), 2, "{}", out.stdout);
    let got = smtpd.messages();
    assert_eq!(got.len(), 2);
    for (i, subject) in ["first", "second"].iter().enumerate() {
        assert_eq!(got[i].header("Subject"), Some(*subject));
        assert_eq!(recs[i]["subject"], *subject);
        assert_eq!(recs[i]["status"], "sent");
        assert_eq!(recs[i]["batch"], "20261121-0300");
        assert_eq!(
            recs[i]["to"],
            "ports@example.org, \"Stable Team\" <stable@example.org>"
        );
        assert_eq!(recs[i]["message_id"], got[i].header("Message-ID").unwrap());
        assert_eq!(got[i].rcpt_tos, [TO1, "stable@example.org"]);
        assert_eq!(got[i].mail_from, FROM);
        assert!(got[i].body.starts_with(&expected_head()));
    }
    assert!(saved.iter().all(|p| !p.exists()));
    assert_eq!(std::fs::read_dir(outbox.join("new")).unwrap().count(), 0);

    // Again: nothing to send, nothing sent twice.
    let out = flush(&addr);
    assert_eq!(out.code, 3, "{}", out.stderr);
    assert_eq!(smtpd.messages().len(), 2);
}

#[test]
fn summary_mail_refused_by_the_server_is_kept() {
    let t = tempfile::tempdir().unwrap();
    let mut smtpd = Smtpd::start_with(Options {
        reject: Some("451 4.3.0 try again later".into()),
        ..Options::default()
    });
    let outbox = t.path().join("outbox");
    let addr = smtpd.addr();
    let out = run(
        "summary-mail",
        &mail_args(&outbox, &["--smtp", &addr]),
        &two_arch_batch(t.path()),
        &[],
    );
    assert_eq!(out.code, 75, "{}", out.stderr);
    assert!(out.stderr.contains("try again later"), "{}", out.stderr);
    assert_eq!(out.records()[0]["status"], "saved");
    let out = run(
        "summary-mail",
        &["--flush", "--smtp", &addr, "--outbox", s(&outbox)],
        "",
        &[],
    );
    assert_eq!(out.code, 75, "{}", out.stderr);
    assert_eq!(std::fs::read_dir(outbox.join("new")).unwrap().count(), 1);

    smtpd.restart_with(Options::default());
    let out = run(
        "summary-mail",
        &["--flush", "--smtp", &addr, "--outbox", s(&outbox)],
        "",
        &[],
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(smtpd.messages().len(), 1);
    assert_eq!(std::fs::read_dir(outbox.join("new")).unwrap().count(), 0);
}

/// A self-signed certificate for 127.0.0.1 (openssl), as `(cert, key)`.
fn certificate(dir: &Path) -> (PathBuf, PathBuf) {
    require("openssl", "openssl");
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    let out = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
        ])
        .args(["-nodes", "-days", "2", "-subj", "/CN=127.0.0.1"])
        .args(["-addext", "subjectAltName=IP:127.0.0.1"])
        .args(["-addext", "basicConstraints=critical,CA:FALSE"])
        .args(["-addext", "extendedKeyUsage=serverAuth"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .expect("run openssl");
    assert!(
        out.status.success(),
        "openssl req: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    (cert, key)
}

#[test]
fn summary_mail_starttls_when_offered() {
    let t = tempfile::tempdir().unwrap();
    let (cert, key) = certificate(t.path());
    let smtpd = Smtpd::start_with(Options {
        starttls: Some((cert.clone(), key)),
        ..Options::default()
    });
    let outbox = t.path().join("outbox");
    let addr = smtpd.addr();
    let input = two_arch_batch(t.path());
    // The certificate is trusted through SSL_CERT_FILE, as the system's roots.
    let trust = [("SSL_CERT_FILE", s(&cert))];
    let out = run(
        "summary-mail",
        &mail_args(&outbox, &["--smtp", &addr]),
        &input,
        &trust,
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    let out = run(
        "summary-mail",
        &mail_args(&outbox, &["--smtp", &addr, "--tls", "required"]),
        &input,
        &trust,
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    let out = run(
        "summary-mail",
        &mail_args(&outbox, &["--smtp", &addr, "--tls", "never"]),
        &input,
        &trust,
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    let tls: Vec<bool> = smtpd.messages().iter().map(|m| m.tls).collect();
    assert_eq!(tls, [true, true, false]);

    // A certificate that is not trusted: not sent in the clear instead, saved.
    let out = run(
        "summary-mail",
        &mail_args(&outbox, &["--smtp", &addr]),
        &input,
        &[("SSL_CERT_FILE", "/dev/null")],
    );
    assert_eq!(out.code, 75, "{}", out.stderr);
    assert_eq!(smtpd.messages().len(), 3);

    // STARTTLS required from a server that does not offer it: saved.
    let plain = Smtpd::start();
    let paddr = plain.addr();
    let out = run(
        "summary-mail",
        &mail_args(&outbox, &["--smtp", &paddr, "--tls", "required"]),
        &input,
        &trust,
    );
    assert_eq!(out.code, 75, "{}", out.stderr);
    assert!(plain.messages().is_empty());
    assert_eq!(std::fs::read_dir(outbox.join("new")).unwrap().count(), 2);
}

#[test]
fn summary_mail_maildir_print_and_json() {
    let t = tempfile::tempdir().unwrap();
    let outbox = t.path().join("outbox");
    let input = two_arch_batch(t.path());

    // --maildir: one file in new/, none left in tmp/.
    let maildir = t.path().join("Mail/portflow");
    let json_path = t.path().join("summary.json");
    let out = run(
        "summary-mail",
        &mail_args(
            &outbox,
            &["--maildir", s(&maildir), "--json", s(&json_path)],
        ),
        &input,
        &[],
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    let files: Vec<PathBuf> = std::fs::read_dir(maildir.join("new"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(files.len(), 1);
    assert_eq!(std::fs::read_dir(maildir.join("tmp")).unwrap().count(), 0);
    assert!(maildir.join("cur").is_dir());
    let r = &out.records()[0];
    assert_eq!(r["status"], "sent");
    assert_eq!(r["path"], s(&files[0]));
    let text = std::fs::read_to_string(&files[0]).unwrap();
    assert!(!text.contains('\r'), "a mail file has \\n line ends");
    let (head, body) = text.split_once("\n\n").expect("headers, blank line, body");
    assert!(
        head.contains("\nSubject: stable packages to sign\n"),
        "{head}"
    );
    assert!(head.contains(&format!(
        "Message-ID: {}",
        r["message_id"].as_str().unwrap()
    )));
    assert!(body.starts_with(&expected_head()));

    // --json: the same summary as one object, with the mail's record.
    let j: Value =
        serde_json::from_str(&std::fs::read_to_string(&json_path).unwrap()).expect("--json");
    assert_eq!(j["subject"], "stable packages to sign");
    assert_eq!(j["alarm"], false);
    assert_eq!(j["list_from"], "transfer");
    assert_eq!(j["listed"], 3);
    assert_eq!(j["infrastructure"], 3);
    assert_eq!(
        j["counts"],
        json!([{"arch": "amd64", "packages": 3, "debug": 3},
               {"arch": "i386", "packages": 12, "debug": 10},
               {"arch": "riscv64", "packages": 0, "debug": 0},
               {"arch": "sparc64", "packages": 0, "debug": 0}])
    );
    assert_eq!(j["files"].as_array().unwrap().len(), 31);
    assert_eq!(
        j["files"][0],
        json!({"arch": "amd64", "file": "curl-8.9.1.tgz", "debug": false})
    );
    assert_eq!(j["failed"][0]["tail"].as_array().unwrap().len(), 20);
    assert_eq!(
        j["failed"][1]["log_error"],
        "the record carries no log tail"
    );
    assert_eq!(j["targets"][0]["status"], "timeout");
    assert_eq!(j["notices"][0]["level"], "error");
    assert_eq!(j["changes"][1], "M net/curl/Makefile (1.80 -> 1.80.2.1)");
    assert_eq!(j["changes_from"], "records");
    assert_eq!(j["mail"]["status"], "sent");
    assert_eq!(j["mail"]["message_id"], r["message_id"]);
    assert_eq!(j["to"], json!([TO1, TO2]));

    // --print: the message itself on stdout, no record.
    let out = run(
        "summary-mail",
        &mail_args(&outbox, &["--print"]),
        &input,
        &[],
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    let (head, body) = out.stdout.split_once("\n\n").expect("a message");
    assert!(head.starts_with(&format!("From: {FROM}\n")), "{head}");
    assert!(head.contains("\nTo: ports@example.org, \"Stable Team\" <stable@example.org>\n"));
    assert!(body.starts_with(&expected_head()));
    assert!(!out.stdout.contains("\"kind\""));
    assert!(!outbox.exists());
}

#[test]
fn summary_mail_through_sendmail() {
    let t = tempfile::tempdir().unwrap();
    let outbox = t.path().join("outbox");
    let input = two_arch_batch(t.path());
    // Debian has no sendmail unless one is installed.  sendmail's interface is a
    // program that reads the message on stdin with the envelope in argv
    // (`sendmail -i -f FROM -- TO...`): this stand-in writes both down.
    let sendmail = t.path().join("sendmail");
    std::fs::write(
        &sendmail,
        "#!/bin/sh\n\
         dir=$(dirname \"$0\")\n\
         printf '%s\\n' \"$@\" > \"$dir/argv\"\n\
         cat > \"$dir/stdin\"\n\
         exit \"${SENDMAIL_EXIT:-0}\"\n",
    )
    .unwrap();
    std::fs::set_permissions(&sendmail, std::fs::Permissions::from_mode(0o755)).unwrap();
    let flag = format!("--sendmail={}", s(&sendmail));
    let out = run("summary-mail", &mail_args(&outbox, &[&flag]), &input, &[]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let argv = std::fs::read_to_string(t.path().join("argv")).unwrap();
    assert_eq!(
        argv.lines().collect::<Vec<_>>(),
        ["-i", "-f", FROM, "--", TO1, "stable@example.org"]
    );
    let msg = std::fs::read_to_string(t.path().join("stdin")).unwrap();
    assert!(!msg.contains('\r'), "sendmail gets local line ends");
    let (head, body) = msg.split_once("\n\n").unwrap();
    assert!(head.contains("\nSubject: stable packages to sign\n"));
    assert!(body.starts_with(&expected_head()));
    assert_eq!(out.records()[0]["status"], "sent");

    // The path may follow as its own word too (the operands before it).
    let batch = t.path().join("batch.jsonl");
    std::fs::write(&batch, &input).unwrap();
    let out = run(
        "summary-mail",
        &mail_args(&outbox, &[s(&batch), "--sendmail", s(&sendmail)]),
        "",
        &[],
    );
    assert_eq!(out.code, 0, "{}", out.stderr);

    // sendmail failing: saved, 75.
    let out = run(
        "summary-mail",
        &mail_args(&outbox, &[&flag]),
        &input,
        &[("SENDMAIL_EXIT", "75")],
    );
    assert_eq!(out.code, 75, "{}", out.stderr);
    assert_eq!(out.records()[0]["status"], "saved");
    // ... and flushed through it later.
    let out = run(
        "summary-mail",
        &["--flush", &flag, "--outbox", s(&outbox)],
        "",
        &[],
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.records().len(), 1);
    assert_eq!(std::fs::read_dir(outbox.join("new")).unwrap().count(), 0);

    // A sendmail that is not there: a usage error before anything is read; a
    // FILE operand taken for the program says how to write it.
    for bad in ["--sendmail=/nonexistent/sendmail", "--sendmail"] {
        let mut args = mail_args(&outbox, &[bad]);
        if bad == "--sendmail" {
            args.push(s(&batch));
        }
        let out = run("summary-mail", &args, &input, &[]);
        assert_eq!(out.code, 2, "{bad}: {}", out.stderr);
        assert!(
            out.stderr.starts_with("summary-mail: --sendmail"),
            "{}",
            out.stderr
        );
        assert_eq!(out.stdout, "");
    }
}

#[test]
fn summary_mail_changes_file_verbatim() {
    let t = tempfile::tempdir().unwrap();
    let outbox = t.path().join("outbox");
    let changes = t.path().join("cvs-up.txt");
    let text = "P net/curl/Makefile\nU net/curl/patches/patch-lib_url_c\ncvs update: `net/oldport/Makefile' is no longer in the repository\n";
    std::fs::write(&changes, text).unwrap();
    let out = run(
        "summary-mail",
        &mail_args(&outbox, &["--print", "--changes", s(&changes)]),
        &two_arch_batch(t.path()),
        &[],
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(
        section(&out.stdout, "Changes triggering the build:"),
        text.lines().collect::<Vec<_>>()
    );

    // A changes file that cannot be read: said in the mail, and exit 1.
    let out = run(
        "summary-mail",
        &mail_args(
            &outbox,
            &["--print", "--changes", "/nonexistent/cvs-up.txt"],
        ),
        &two_arch_batch(t.path()),
        &[],
    );
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(out.stderr.contains("/nonexistent/cvs-up.txt"));
    assert!(out
        .stdout
        .contains("error: summary-mail: --changes /nonexistent/cvs-up.txt"));
    assert!(out
        .stdout
        .contains("M net/curl/Makefile (1.80 -> 1.80.2.1)"));
}

#[test]
fn summary_mail_bad_input_is_reported_and_the_mail_is_whole() {
    let t = tempfile::tempdir().unwrap();
    let smtpd = Smtpd::start();
    let outbox = t.path().join("outbox");
    let addr = smtpd.addr();
    let mut input = two_arch_batch(t.path());
    let n = input.lines().count();
    input += &rec("frobnicate", json!({"what": "a kind of a later version"}));
    input += &rec("build", json!({"fullpkgpath": "net/x", "arch": "amd64"}));
    input += &rec("package", json!({"arch": "amd64", "debug": false}));
    input += &rec("transfer", json!({"file": "x-1.tgz", "status": "lost"}));
    input += &rec(
        "target",
        json!({"name": "hppa", "status": "timeout", "seconds": "long"}),
    );
    input += "net/curl\n";
    input += "{\"kind\":\"package\",\"v\":1,\"file\":\"trunc";
    let out = run(
        "summary-mail",
        &mail_args(&outbox, &["--smtp", &addr]),
        &input,
        &[],
    );
    assert_eq!(out.code, 1, "{}", out.stderr);
    let err: Vec<&str> = out.stderr.lines().collect();
    assert_eq!(
        err,
        [
            format!("summary-mail: stdin:{}: build record: field \"status\" is missing; left out of the summary", n + 2),
            format!("summary-mail: stdin:{}: package record: field \"file\" is missing; left out of the summary", n + 3),
            format!("summary-mail: stdin:{}: transfer record: field \"status\" is not sent, unchanged or failed; left out of the summary", n + 4),
            format!("summary-mail: stdin:{}: target record: field \"seconds\" is not a number; left out of the summary", n + 5),
            format!("summary-mail: stdin:{}: not a record; left out of the summary", n + 6),
            format!("summary-mail: stdin:{}: invalid JSON: truncated line (EOF while parsing a string at line 1 column 37); left out of the summary", n + 7)
                .replace("; left out of the summary", ""),
        ],
        "{}",
        out.stderr
    );
    // The mail went out whole, and says that lines were left out.
    let got = smtpd.messages();
    assert_eq!(got.len(), 1);
    let body = &got[0].body;
    assert!(body.starts_with(&expected_head()), "{body}");
    assert_eq!(
        section(body, "Notices:")[0],
        "error: summary-mail: 6 bad input line(s) or unreadable input(s) left out (see its stderr)"
    );
    assert!(
        body.ends_with("cvs OPENBSD_7_8_BASE -> OPENBSD_7_8\n"),
        "{body}"
    );
    assert!(!body.contains("hppa"));
    assert_eq!(out.records()[0]["status"], "sent");
}

#[test]
fn summary_mail_usage_errors_read_nothing() {
    let t = tempfile::tempdir().unwrap();
    let outbox = t.path().join("outbox");
    let input = two_arch_batch(t.path());
    for args in [
        vec!["--print", "--smtp", "127.0.0.1:1"],
        vec!["--print", "--to", "not an address"],
        vec!["--print", "--from", "@"],
        vec!["--smtp", "host:notaport"],
        vec!["--flush", "--print"],
        vec!["--flush", "batch.jsonl"],
        vec!["--print", "--subject", ""],
        vec!["--tls", "sometimes", "--print"],
    ] {
        let out = run(
            "summary-mail",
            &[&["--outbox", s(&outbox)], args.as_slice()].concat(),
            &input,
            &[],
        );
        assert_eq!(out.code, 2, "{args:?}: {}", out.stderr);
        assert!(out.stderr.starts_with("summary-mail: "), "{}", out.stderr);
        assert_eq!(out.stdout, "", "{args:?}");
    }
    assert!(!outbox.exists());
}

/// A record names files of the initiator as its log, with no tail: the mail
/// never holds a line of them (the tail travels in the record, made by
/// build-list on the build host).
#[test]
fn summary_mail_never_reads_a_file_a_record_names() {
    let t = tempfile::tempdir().unwrap();
    let secret = t.path().join("secret");
    std::fs::write(&secret, "root:s3cret:0:0\n").unwrap();
    let mut v = list_records();
    for (i, log) in [s(&secret), "/etc/passwd"].iter().enumerate() {
        v += &rec(
            "build",
            json!({"fullpkgpath": format!("devel/forged{i}"), "target": "package",
                   "status": "failed", "reason": "error", "log": log, "arch": "amd64"}),
        );
    }
    let out = run(
        "summary-mail",
        &[
            "--print",
            "--from",
            "builder@example.org",
            "--to",
            "p@example.org",
        ],
        &v,
        &[],
    );
    assert!(out.code == 0 || out.code == 4, "{}", out.stderr);
    assert!(!out.stdout.contains("s3cret"), "{}", out.stdout);
    assert!(!out.stdout.contains("root:"), "{}", out.stdout);
    assert_eq!(
        out.stdout
            .matches("no log: the record carries no log tail")
            .count(),
        2,
        "{}",
        out.stdout
    );
}

/// A mail the server refuses for good (5xx) never blocks the outbox: sent
/// directly, it is kept apart in `bad/`; in a flush, it is moved there and the
/// mails after it are sent.
#[test]
fn summary_mail_refused_for_good_is_kept_apart_and_the_others_go() {
    let t = tempfile::tempdir().unwrap();
    let mut smtpd = Smtpd::start_with(Options {
        reject: Some("550 5.7.1 not wanted here".into()),
        reject_containing: Some("Subject: unwanted".into()),
        ..Options::default()
    });
    let outbox = t.path().join("outbox");
    let addr = smtpd.addr();
    let input = two_arch_batch(t.path());
    // Directly: refused for good, exit 1, kept in bad/, not queued.
    let out = run(
        "summary-mail",
        &mail_args(&outbox, &["--smtp", &addr, "--subject", "unwanted"]),
        &input,
        &[],
    );
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(
        out.stderr.contains("not wanted here") && out.stderr.contains("refused for good"),
        "{}",
        out.stderr
    );
    let r = &out.records()[0];
    assert_eq!(r["status"], "rejected");
    assert_eq!(
        PathBuf::from(r["path"].as_str().unwrap()).parent(),
        Some(outbox.join("bad").as_path())
    );
    assert_eq!(std::fs::read_dir(outbox.join("new")).unwrap().count(), 0);

    // In the outbox: an unwanted mail first, a good one after it (saved while
    // the server was down).
    smtpd.stop();
    for subject in ["unwanted again", "wanted"] {
        let out = run(
            "summary-mail",
            &mail_args(&outbox, &["--smtp", &addr, "--subject", subject]),
            &input,
            &[],
        );
        assert_eq!(out.code, 75, "{}", out.stderr);
    }
    smtpd.restart_with(Options {
        reject: Some("550 5.7.1 not wanted here".into()),
        reject_containing: Some("Subject: unwanted".into()),
        ..Options::default()
    });
    let out = run(
        "summary-mail",
        &["--flush", "--smtp", &addr, "--outbox", s(&outbox)],
        "",
        &[],
    );
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(out.stderr.contains("kept apart in"), "{}", out.stderr);
    let got = smtpd.messages();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].header("Subject"), Some("wanted"));
    assert_eq!(std::fs::read_dir(outbox.join("new")).unwrap().count(), 0);
    assert_eq!(std::fs::read_dir(outbox.join("bad")).unwrap().count(), 2);
    assert_eq!(out.records().len(), 1);
    // Nothing left to send: the bad ones are not tried again.
    let again = run(
        "summary-mail",
        &["--flush", "--smtp", &addr, "--outbox", s(&outbox)],
        "",
        &[],
    );
    assert_eq!(again.code, 3, "{}", again.stderr);
}

/// No transport hangs summary-mail: a sendmail that never answers is killed at
/// the --timeout, an SMTP server that accepts and never says its banner times
/// out; both keep the mail in the outbox (75).
#[test]
fn summary_mail_never_hangs_on_a_silent_transport() {
    let t = tempfile::tempdir().unwrap();
    let input = two_arch_batch(t.path());
    let outbox = t.path().join("outbox");
    // A sendmail that sleeps (in a process of its own: its group goes too).
    let sendmail = t.path().join("sendmail");
    write_script(&sendmail, "#!/bin/sh\nsleep 300 &\nwait\n");
    let flag = format!("--sendmail={}", s(&sendmail));
    let start = std::time::Instant::now();
    let out = run(
        "summary-mail",
        &mail_args(&outbox, &[&flag, "--timeout", "2s"]),
        &input,
        &[],
    );
    assert!(start.elapsed() < std::time::Duration::from_secs(15), "hung");
    assert_eq!(out.code, 75, "{}", out.stderr);
    assert!(
        out.stderr.contains("no answer in 2s: killed"),
        "{}",
        out.stderr
    );
    assert_eq!(out.records()[0]["status"], "saved");

    // An SMTP server that accepts and says nothing.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let holder = std::thread::spawn(move || {
        let mut held = Vec::new();
        for c in listener.incoming().take(1) {
            held.push(c);
        }
        std::thread::sleep(std::time::Duration::from_secs(20));
        drop(held);
    });
    let start = std::time::Instant::now();
    let out = run(
        "summary-mail",
        &mail_args(&outbox, &["--smtp", &addr, "--timeout", "2s"]),
        &input,
        &[],
    );
    assert!(
        start.elapsed() < std::time::Duration::from_secs(15),
        "hung on the banner"
    );
    assert_eq!(out.code, 75, "{}", out.stderr);
    assert!(
        out.stderr.contains("no answer in 2s (timeout)"),
        "{}",
        out.stderr
    );
    assert_eq!(out.records()[0]["status"], "saved");
    assert_eq!(std::fs::read_dir(outbox.join("new")).unwrap().count(), 2);
    drop(holder);
}

/// An entry make will not build on a host (BROKEN, ONLY_FOR_ARCHS: build-list's
/// `ignored`, as the real tree gives it) is shown with make's reason, is no
/// bad input, and is not the "nothing built" alarm when every host ignores it.
#[test]
fn summary_mail_ignored_entries_are_shown_and_no_alarm() {
    let fasm = |arch: &str| {
        rec(
            "build",
            json!({"fullpkgpath": "lang/fasm", "target": "package", "status": "ignored",
                   "reason": "is only for i386, not amd64", "arch": arch}),
        )
    };
    let input = rec("port", json!({"pkgpath": "lang/fasm"})) + &fasm("amd64");
    let out = print_mail(&input);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.stderr, "");
    assert!(
        out.stdout.contains("Subject: stable packages to sign\n"),
        "{}",
        out.stdout
    );
    assert_eq!(
        section(&out.stdout, "Not built there (make will not build them):"),
        ["amd64\tlang/fasm (is only for i386, not amd64)"]
    );
    // Ignored on amd64, failed on i386: nothing built, the alarm.
    let input = input
        + &rec(
            "build",
            json!({"fullpkgpath": "lang/fasm", "target": "package", "status": "failed",
                   "reason": "error", "phase": "fetch", "arch": "i386", "tail": ["boom"]}),
        );
    let out = print_mail(&input);
    assert_eq!(out.code, 4, "{}", out.stderr);
    // With the phase make was in.
    assert_eq!(
        section(&out.stdout, "Failed builds:"),
        ["i386\tlang/fasm (error, in fetch)"]
    );
}

/// Clean-ups a build host could not do, and how long each target took.
#[test]
fn summary_mail_clean_failures_and_build_times() {
    let mut input = rec("port", json!({"pkgpath": "net/curl"}));
    input += &rec(
        "clean",
        json!({"action": "pkg_add", "target": "rsync--", "status": "failed",
               "message": "exit status 1: Can't find rsync--", "arch": "amd64"}),
    );
    input += &rec(
        "clean",
        json!({"action": "wipe", "target": "/usr/obj/ports", "status": "done", "arch": "amd64"}),
    );
    input += &rec(
        "package",
        json!({"file": "curl-8.9.1.tgz", "arch": "amd64"}),
    );
    input += &rec(
        "target",
        json!({"name": "amd64", "arch": "amd64", "status": "done", "seconds": 4980.2}),
    );
    input += &rec(
        "target",
        json!({"name": "i386-fast", "arch": "i386", "status": "timeout", "seconds": 36000}),
    );
    let out = print_mail(&input);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(
        section(&out.stdout, "Clean-ups that failed (build hosts):"),
        ["amd64\tpkg_add rsync--: exit status 1: Can't find rsync--"]
    );
    assert_eq!(
        section(&out.stdout, "Build times:"),
        ["amd64: done in 1h 23m", "i386-fast (i386): timeout in 10h"]
    );
}

/// With --history, a failure is NEW or STILL FAILING since the batch it first
/// failed in, and what the last batch of an arch failed and this one built is
/// listed as fixed.
#[test]
fn summary_mail_history_new_still_failing_fixed() {
    let t = tempfile::tempdir().unwrap();
    let history = t.path().join("history.json");
    let batch = |id: &str, builds: &[(&str, &str)]| {
        let mut input = rec("batch", json!({"id": id}));
        for (p, status) in builds {
            input += &rec(
                "build",
                json!({"fullpkgpath": p, "target": "package", "status": status,
                       "reason": if *status == "failed" { "error" } else { "" },
                       "arch": "amd64", "tail": []}),
            );
        }
        input += &rec("package", json!({"file": "plain-1.0.tgz", "arch": "amd64"}));
        let out = run(
            "summary-mail",
            &[
                "--print",
                "--from",
                FROM,
                "--to",
                TO1,
                "--history",
                s(&history),
            ],
            &input,
            &[],
        );
        assert_eq!(out.code, 0, "{}", out.stderr);
        out.stdout
    };
    let m1 = batch("b1", &[("net/curl", "failed"), ("misc/plain", "built")]);
    assert_eq!(
        section(&m1, "Failed builds:"),
        ["amd64\tnet/curl (error) NEW"]
    );
    let m2 = batch(
        "b2",
        &[
            ("net/curl", "failed"),
            ("devel/x", "failed"),
            ("misc/plain", "up-to-date"),
        ],
    );
    assert_eq!(
        section(&m2, "Failed builds:"),
        [
            "amd64\tnet/curl (error) STILL FAILING since batch b1",
            "amd64\tdevel/x (error) NEW"
        ]
    );
    assert!(section(&m2, "Fixed since the last batch:").is_empty());
    let m3 = batch("b3", &[("net/curl", "built"), ("devel/x", "failed")]);
    assert_eq!(
        section(&m3, "Fixed since the last batch:"),
        ["amd64\tnet/curl (failing since batch b1)"]
    );
    assert_eq!(
        section(&m3, "Failed builds:"),
        ["amd64\tdevel/x (error) STILL FAILING since batch b2"]
    );
}
