//! `build-coordinator check`: the configuration, then the environment it
//! names, one line a check: the paths, the programs, the sqlports database,
//! the revisions of the delta, the mail transport, and each target (build-
//! trigger there, over ssh with BatchMode as a run reaches it; its spool
//! writable).

use std::io::{BufRead, BufReader};
use std::net::{TcpStream, ToSocketAddrs};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use super::config::{Config, Delta, Target, Transport};
use super::fanout::{on_target, trigger_program};
use crate::proc::find_program;

/// How long one check may take (an ssh login, an SMTP greeting).
const TIMEOUT: Duration = Duration::from_secs(30);

/// One check: what was looked at, and what was found (`Err`: what is wrong).
pub struct Finding {
    pub what: String,
    pub found: Result<String, String>,
}

fn finding(what: impl Into<String>, found: Result<String, String>) -> Finding {
    Finding {
        what: what.into(),
        found,
    }
}

/// Every check, in the order of the file.
pub fn check(cfg: &Config) -> Vec<Finding> {
    let mut v = vec![
        finding("ports_dir", ports_tree(&cfg.ports_dir)),
        finding("make", program(&cfg.make)),
    ];
    if let Some(u) = &cfg.update {
        v.push(finding("update", program(&u[0])));
    }
    match &cfg.delta {
        Delta::Cvs { base, branch } => {
            for tag in [base, branch] {
                v.push(finding(
                    format!("delta {tag}"),
                    cvs_tag(&cfg.ports_dir, tag),
                ));
            }
        }
        Delta::Git { base, branch } => {
            for rev in [base, branch] {
                v.push(finding(
                    format!("delta {rev}"),
                    git_rev(&cfg.ports_dir, rev),
                ));
            }
        }
        Delta::Update => {}
    }
    if let Some(db) = &cfg.sqlports {
        v.push(finding("sqlports", sqlports(db)));
    }
    v.push(finding("work_dir", writable(&cfg.work_dir)));
    v.push(finding("mail", transport(&cfg.mail.transport)));
    v.push(finding("mail.outbox", writable(&cfg.mail.outbox)));
    for t in &cfg.targets {
        v.extend(target(t));
    }
    v
}

fn ports_tree(dir: &Path) -> Result<String, String> {
    if !dir.is_dir() {
        return Err(format!("{}: no such directory", dir.display()));
    }
    if !dir.join("Makefile").is_file() || !dir.join("infrastructure/mk").is_dir() {
        return Err(format!(
            "{}: not a ports tree (no Makefile and infrastructure/mk)",
            dir.display()
        ));
    }
    Ok(format!("{}: a ports tree", dir.display()))
}

fn program(name: &str) -> Result<String, String> {
    match find_program(name.as_ref(), None) {
        Some(p) => Ok(format!("{name}: {}", p.display())),
        None => Err(format!("{name}: not found (PATH)")),
    }
}

/// A directory the tool can make files in, or, missing, one that can be made
/// (its nearest existing parent takes a file); nothing is left behind.
fn writable(dir: &Path) -> Result<String, String> {
    let mut d = dir;
    while !d.exists() {
        match d.parent() {
            Some(p) => d = p,
            None => break,
        }
    }
    if !d.is_dir() {
        return Err(format!(
            "{}: {} is not a directory",
            dir.display(),
            d.display()
        ));
    }
    tempfile::Builder::new()
        .prefix(".check-")
        .tempfile_in(d)
        .map_err(|e| format!("{}: cannot write in {}: {e}", dir.display(), d.display()))?;
    Ok(if d == dir {
        format!("{}: writable", dir.display())
    } else {
        format!("{}: missing, can be made in {}", dir.display(), d.display())
    })
}

fn sqlports(db: &Path) -> Result<String, String> {
    crate::sqlports::Sqlports::open(db)
        .map(|_| format!("{}: a sqlports database", db.display()))
        .map_err(|e| e.to_string())
}

/// Run `cmd` within [`TIMEOUT`]: its status, output and errors, or why not.
fn output(cmd: Command) -> Result<(std::process::ExitStatus, String, String), String> {
    crate::proc::output_within(cmd, TIMEOUT)
}

fn git_rev(dir: &Path, rev: &str) -> Result<String, String> {
    let mut c = Command::new("git");
    c.arg("-C")
        .arg(dir)
        .args(["rev-parse", "--verify", "--quiet", "--end-of-options"])
        .arg(format!("{rev}^{{commit}}"));
    let (st, out, _) = output(c)?;
    if st.success() {
        Ok(format!("git commit {}", out.trim()))
    } else {
        Err(format!("no such git revision in {}", dir.display()))
    }
}

/// A tag of the checkout's repository, as `cvs log -h Makefile` lists them.
fn cvs_tag(dir: &Path, tag: &str) -> Result<String, String> {
    let mut c = Command::new("cvs");
    c.current_dir(dir).args(["-Q", "log", "-h", "Makefile"]);
    let (st, out, err) = output(c)?;
    if !st.success() {
        return Err(format!(
            "cvs log -h Makefile in {}: {}",
            dir.display(),
            crate::tail::short(&err, 2)
        ));
    }
    let listed = out
        .lines()
        .skip_while(|l| !l.starts_with("symbolic names:"))
        .skip(1)
        .take_while(|l| l.starts_with('\t'))
        .any(|l| l.trim_start().split(':').next() == Some(tag));
    if listed {
        Ok(format!("a cvs tag of {}", dir.display()))
    } else {
        Err(format!("no such cvs tag on {}/Makefile", dir.display()))
    }
}

fn transport(t: &Transport) -> Result<String, String> {
    match t {
        Transport::Sendmail(p) => match find_program(p.as_os_str(), None) {
            Some(_) => Ok(format!("sendmail {}", p.display())),
            None => Err(format!("sendmail {}: no such program", p.display())),
        },
        Transport::Maildir(d) => writable(d).map(|m| format!("maildir {m}")),
        Transport::Print => Ok("printed".into()),
        Transport::Smtp { server, .. } => smtp(&server.host, server.port),
    }
}

/// The server greets within [`TIMEOUT`] with a 220.
fn smtp(host: &str, port: u16) -> Result<String, String> {
    let shown = crate::mail::SmtpServer {
        host: host.into(),
        port,
    }
    .to_string();
    let addrs = (host, port)
        .to_socket_addrs()
        .map_err(|e| format!("SMTP server {shown}: {e}"))?;
    let mut last = String::from("no address");
    for a in addrs {
        match TcpStream::connect_timeout(&a, TIMEOUT) {
            Ok(s) => {
                let _ = s.set_read_timeout(Some(TIMEOUT));
                let mut line = String::new();
                let _ = BufReader::new(&s).read_line(&mut line);
                return if line.starts_with("220") {
                    Ok(format!("SMTP server {shown}: {}", line.trim()))
                } else {
                    Err(format!(
                        "SMTP server {shown}: no greeting ({:?})",
                        line.trim()
                    ))
                };
            }
            Err(e) => last = e.to_string(),
        }
    }
    Err(format!("SMTP server {shown}: {last}"))
}

/// A target: build-trigger runs there (over ssh as a run reaches it), and
/// its spool can be written.
fn target(t: &Target) -> Vec<Finding> {
    let prog = trigger_program(t);
    let what = format!("target {}", t.name);
    let runs = match output(on_target(t, &prog, &["--version"])) {
        Ok((st, out, _)) if st.success() => Ok(format!(
            "{} {}",
            t.ssh
                .as_deref()
                .map_or("here:".to_string(), |d| format!("{d}:")),
            out.trim()
        )),
        Ok((st, _, err)) => Err(match &t.ssh {
            Some(d) => format!(
                "ssh {d} {}: {st}: {}",
                prog.display(),
                crate::tail::short(&err, 2)
            ),
            None => format!("{}: {st}: {}", prog.display(), crate::tail::short(&err, 2)),
        }),
        Err(e) => Err(e),
    };
    let failed = runs.is_err();
    let mut v = vec![finding(format!("{what} build-trigger"), runs)];
    let spool = if t.ssh.is_none() {
        writable(&t.spool)
    } else if failed {
        Err(format!(
            "{}: not looked at (the host is not reached)",
            t.spool.display()
        ))
    } else {
        // The spool, or its nearest existing parent, takes a file.
        let s = crate::coordinator::fanout::quote(&t.spool.to_string_lossy());
        let script = format!(
            "d={s}; while [ ! -e \"$d\" ]; do d=$(dirname \"$d\"); done; \
             [ -d \"$d\" ] && f=$(mktemp \"$d/.check-XXXXXX\") && rm -f \"$f\""
        );
        let cmd = on_target(t, Path::new("sh"), &["-c", &script]);
        match output(cmd) {
            Ok((st, _, _)) if st.success() => Ok(format!("{}: writable", t.spool.display())),
            Ok((_, _, err)) => Err(format!(
                "{}: cannot write in it: {}",
                t.spool.display(),
                crate::tail::short(&err, 2)
            )),
            Err(e) => Err(e),
        }
    };
    v.push(finding(format!("{what} spool"), spool));
    v
}
