//! The configuration file of build-coordinator, portflow.conf(5): TOML, every
//! key known (an unknown key is an error), every problem reported as
//! `FILE:LINE: message` and exit 2 before anything is done.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use lettre::message::Mailbox;
use serde::Deserialize;
use toml::Spanned;

use crate::mail::{SmtpServer, TlsMode};
use crate::names::{Arch, Revision, SshDest, TargetName, VarName};
use crate::time::parse_duration;
use crate::Error;

/// The default configuration file.
pub const DEFAULT_CONFIG: &str = "/etc/portflow.conf";
/// The default ports tree.
pub const DEFAULT_PORTS_DIR: &str = "/usr/ports";
/// The default deadline of a target.
pub const DEFAULT_DEADLINE: &str = "12h";
/// How many days the batch directories of work_dir are kept.
pub const DEFAULT_KEEP_DAYS: u32 = 30;
/// The build-trigger program run on a target when none is configured.
pub const BUILD_TRIGGER: &str = "build-trigger";

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    ports_dir: Option<Spanned<String>>,
    make: Option<Spanned<String>>,
    update: Option<Spanned<Vec<String>>>,
    delta: Option<Spanned<RawDelta>>,
    sqlports: Option<Spanned<String>>,
    #[serde(default)]
    exclude: Vec<Spanned<String>>,
    work_dir: Spanned<String>,
    prefetch: Option<bool>,
    keep_days: Option<u32>,
    #[serde(default)]
    env: BTreeMap<Spanned<String>, Spanned<String>>,
    mail: Option<Spanned<RawMail>>,
    #[serde(default)]
    target: Vec<Spanned<RawTarget>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDelta {
    cvs: Option<String>,
    git: Option<String>,
    update: Option<bool>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMail {
    #[serde(default)]
    to: Vec<Spanned<String>>,
    from: Option<Spanned<String>>,
    subject: Option<Spanned<String>>,
    alarm_subject: Option<Spanned<String>>,
    smtp: Option<Spanned<String>>,
    tls: Option<Spanned<String>>,
    sendmail: Option<Spanned<String>>,
    maildir: Option<Spanned<String>>,
    print: Option<Spanned<bool>>,
    outbox: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTarget {
    name: Spanned<String>,
    arch: Spanned<String>,
    spool: Spanned<String>,
    ssh: Option<Spanned<String>>,
    ssh_options: Option<Spanned<Vec<String>>>,
    build_trigger: Option<Spanned<String>>,
    deadline: Option<Spanned<String>>,
}

/// Where the list of changed ports comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Delta {
    /// `ports-delta --cvs BASE:BRANCH`: the whole delta of the branch.
    Cvs { base: Revision, branch: Revision },
    /// `ports-delta --git BASE..BRANCH`: the whole delta of the branch.
    Git { base: Revision, branch: Revision },
    /// The output of the update command itself (`cvs up`): what it changed.
    Update,
}

/// How the mail goes out: the transport flags of summary-mail.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Transport {
    Smtp { server: SmtpServer, tls: TlsMode },
    Sendmail(PathBuf),
    Maildir(PathBuf),
    Print,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mail {
    pub to: Vec<String>,
    pub from: Option<String>,
    pub subject: Option<String>,
    pub alarm_subject: Option<String>,
    pub transport: Transport,
    pub outbox: PathBuf,
}

/// One target: an architecture and the build host (or shared spool) that
/// builds it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    pub name: TargetName,
    pub arch: Arch,
    pub spool: PathBuf,
    /// The ssh destination, when the spool is on another host.
    pub ssh: Option<SshDest>,
    pub ssh_options: Vec<String>,
    /// The build-trigger program: on the target's host with ssh, here without.
    pub build_trigger: Option<String>,
    pub deadline: Duration,
}

/// The checked configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    pub file: PathBuf,
    pub ports_dir: PathBuf,
    pub make: String,
    pub update: Option<Vec<String>>,
    pub delta: Delta,
    pub sqlports: Option<PathBuf>,
    pub exclude: Vec<String>,
    pub work_dir: PathBuf,
    pub prefetch: bool,
    /// Batch directories of work_dir older than this many days are removed.
    pub keep_days: u32,
    pub env: Vec<(String, String)>,
    pub mail: Mail,
    pub targets: Vec<Target>,
}

/// Reports `FILE:LINE: message` for a place in the text.
struct At<'a> {
    file: &'a Path,
    text: &'a str,
}

impl At<'_> {
    fn line(&self, offset: usize) -> usize {
        let end = offset.min(self.text.len());
        self.text.as_bytes()[..end]
            .iter()
            .filter(|&&b| b == b'\n')
            .count()
            + 1
    }

    fn err<T>(&self, span: &Spanned<T>, msg: impl std::fmt::Display) -> Error {
        self.err_at(span.span().start, msg)
    }

    fn err_at(&self, offset: usize, msg: impl std::fmt::Display) -> Error {
        Error::Usage(format!(
            "{}:{}: {msg}",
            self.file.display(),
            self.line(offset)
        ))
    }
}

/// Read and check a configuration file (exit 2 on any problem).
pub fn load(file: &Path) -> Result<Config, Error> {
    let bytes =
        std::fs::read(file).map_err(|e| Error::Usage(format!("{}: {e}", file.display())))?;
    let text = String::from_utf8(bytes)
        .map_err(|_| Error::Usage(format!("{}: not UTF-8 text", file.display())))?;
    parse(file, &text)
}

/// Check the text of a configuration file; `file` names it in messages.
pub fn parse(file: &Path, text: &str) -> Result<Config, Error> {
    let at = At { file, text };
    let raw: Raw = toml::from_str(text).map_err(|e| {
        let line = e.span().map(|s| at.line(s.start)).unwrap_or(1);
        let msg = e.message().trim().replace('\n', "; ");
        Error::Usage(format!("{}:{line}: {msg}", file.display()))
    })?;

    let abs = |s: &Spanned<String>, what: &str| abs_path(&at, s, what);

    let ports_dir = match &raw.ports_dir {
        Some(p) => abs(p, "ports_dir")?,
        None => PathBuf::from(DEFAULT_PORTS_DIR),
    };
    let make = match &raw.make {
        Some(m) if m.get_ref().trim().is_empty() => {
            return Err(at.err(m, "make: the make program, not an empty string"))
        }
        Some(m) => m.get_ref().clone(),
        None => crate::ports::DEFAULT_MAKE.to_string(),
    };
    let update = match &raw.update {
        None => None,
        Some(u) => {
            if u.get_ref().is_empty() || u.get_ref()[0].is_empty() {
                return Err(at.err(
                    u,
                    "update: a command and its arguments, such as [\"cvs\", \"-q\", \"up\", \"-Pd\", \"-A\", \"-r\", \"OPENBSD_7_8\"]",
                ));
            }
            if u.get_ref().iter().any(|a| a.contains('\0')) {
                return Err(at.err(u, "update: an argument holds a NUL character"));
            }
            Some(u.get_ref().clone())
        }
    };
    let delta = delta(&at, raw.delta.as_ref(), update.is_some())?;
    let sqlports = match &raw.sqlports {
        Some(s) => Some(abs(s, "sqlports")?),
        None => None,
    };
    let mut exclude = Vec::new();
    for e in &raw.exclude {
        let g = e.get_ref();
        if g.trim().is_empty() || g.chars().any(char::is_control) {
            return Err(at.err(
                e,
                format!("exclude: a glob such as \"sysutils/firmware/*\", not {g:?}"),
            ));
        }
        exclude.push(g.clone());
    }
    let work_dir = abs(&raw.work_dir, "work_dir")?;
    let env = env(&at, &raw.env)?;

    let mail = mail(&at, raw.mail.as_ref(), &work_dir)?;

    if raw.target.is_empty() {
        return Err(at.err_at(
            text.len(),
            "no [[target]]: at least one target builds the list",
        ));
    }
    let mut names = HashSet::new();
    let targets = raw
        .target
        .iter()
        .map(|t| target(&at, t, &mut names))
        .collect::<Result<Vec<_>, _>>()?;

    Ok(Config {
        file: file.to_path_buf(),
        ports_dir,
        make,
        update,
        delta,
        sqlports,
        exclude,
        work_dir,
        prefetch: raw.prefetch.unwrap_or(true),
        keep_days: raw.keep_days.unwrap_or(DEFAULT_KEEP_DAYS),
        env,
        mail,
        targets,
    })
}

/// Where the delta comes from: `[delta]`, or the update command's output.
fn delta(at: &At<'_>, raw: Option<&Spanned<RawDelta>>, has_update: bool) -> Result<Delta, Error> {
    Ok(match raw {
        None => {
            if !has_update {
                return Err(at.err_at(
                    0,
                    "no [delta] and no update command: nothing tells what changed",
                ));
            }
            Delta::Update
        }
        Some(d) => {
            let r = d.get_ref();
            let n = [r.cvs.is_some(), r.git.is_some(), r.update.is_some()]
                .iter()
                .filter(|x| **x)
                .count();
            if n != 1 {
                return Err(at.err(
                    d,
                    "[delta] takes exactly one of cvs = \"BASE:BRANCH\", git = \"BASE..BRANCH\" or update = true",
                ));
            }
            if let Some(c) = &r.cvs {
                match revisions(c.split_once(':')) {
                    Some((base, branch)) => Delta::Cvs { base, branch },
                    None => {
                        return Err(at.err(
                            d,
                            format!("delta.cvs: BASE:BRANCH, such as \"OPENBSD_7_8_BASE:OPENBSD_7_8\", not {c:?}"),
                        ))
                    }
                }
            } else if let Some(g) = &r.git {
                match revisions(g.split_once("..")) {
                    Some((base, branch)) => Delta::Git { base, branch },
                    None => {
                        return Err(at.err(
                            d,
                            format!("delta.git: BASE..BRANCH, such as \"OPENBSD_7_8_BASE..OPENBSD_7_8\", not {g:?}"),
                        ))
                    }
                }
            } else if r.update == Some(true) {
                if !has_update {
                    return Err(at.err(d, "delta.update needs an update command"));
                }
                Delta::Update
            } else {
                return Err(at.err(d, "delta.update = false: say where the delta comes from"));
            }
        }
    })
}

/// `[env]`: variable names and values without NUL.
fn env(
    at: &At<'_>,
    raw: &BTreeMap<Spanned<String>, Spanned<String>>,
) -> Result<Vec<(String, String)>, Error> {
    let mut env = Vec::new();
    for (k, v) in raw {
        let name = k.get_ref();
        if VarName::parse(name).is_err() {
            return Err(at.err(k, format!("env: {name:?} is not a variable name")));
        }
        if v.get_ref().contains('\0') {
            return Err(at.err(v, format!("env.{name}: the value holds a NUL character")));
        }
        env.push((name.clone(), v.get_ref().clone()));
    }
    Ok(env)
}

/// One `[[target]]`; its name not one of `names`, which it joins.
fn target(
    at: &At<'_>,
    t: &Spanned<RawTarget>,
    names: &mut HashSet<TargetName>,
) -> Result<Target, Error> {
    let abs = |s: &Spanned<String>, what: &str| abs_path(at, s, what);
    let r = t.get_ref();
    let name = TargetName::parse(r.name.get_ref()).map_err(|e| at.err(&r.name, e))?;
    if !names.insert(name.clone()) {
        return Err(at.err(&r.name, format!("target name {:?} is used twice", &*name)));
    }
    let arch = Arch::parse(r.arch.get_ref()).map_err(|e| at.err(&r.arch, e))?;
    let spool = abs(&r.spool, "spool")?;
    let ssh = match &r.ssh {
        None => None,
        Some(d) => Some(SshDest::parse(d.get_ref()).map_err(|e| at.err(d, e))?),
    };
    let ssh_options = match &r.ssh_options {
        None => Vec::new(),
        Some(o) => {
            if ssh.is_none() {
                return Err(at.err(o, "ssh_options without ssh: the target is local"));
            }
            if o.get_ref().iter().any(|a| a.contains('\0')) {
                return Err(at.err(o, "ssh_options: an argument holds a NUL character"));
            }
            o.get_ref().clone()
        }
    };
    let build_trigger = match &r.build_trigger {
        None => None,
        Some(b) => {
            let p = b.get_ref();
            if p.trim().is_empty() || p.chars().any(char::is_control) {
                return Err(at.err(b, format!("build_trigger: a program, not {p:?}")));
            }
            Some(p.clone())
        }
    };
    let deadline = match &r.deadline {
        None => parse_duration(DEFAULT_DEADLINE).map_err(|e| at.err(t, e))?,
        Some(d) => parse_duration(d.get_ref()).map_err(|e| at.err(d, format!("deadline: {e}")))?,
    };
    Ok(Target {
        name,
        arch,
        spool,
        ssh,
        ssh_options,
        build_trigger,
        deadline,
    })
}

fn mail(at: &At<'_>, raw: Option<&Spanned<RawMail>>, work_dir: &Path) -> Result<Mail, Error> {
    let abs = |s: &Spanned<String>, what: &str| abs_path(at, s, what);
    let Some(m) = raw else {
        return Ok(Mail {
            to: Vec::new(),
            from: None,
            subject: None,
            alarm_subject: None,
            transport: Transport::Sendmail(PathBuf::from(crate::mail::SENDMAIL)),
            outbox: work_dir.join("outbox"),
        });
    };
    let r = m.get_ref();
    let address = |a: &Spanned<String>, what: &str| -> Result<String, Error> {
        a.get_ref()
            .parse::<Mailbox>()
            .map(|_| a.get_ref().clone())
            .map_err(|e| {
                at.err(
                    a,
                    format!("mail.{what} {:?}: not a mail address: {e}", a.get_ref()),
                )
            })
    };
    let to =
        r.to.iter()
            .map(|a| address(a, "to"))
            .collect::<Result<Vec<_>, _>>()?;
    let from = r.from.as_ref().map(|a| address(a, "from")).transpose()?;
    let line = |s: &Option<Spanned<String>>, what: &str| -> Result<Option<String>, Error> {
        match s {
            None => Ok(None),
            Some(t)
                if t.get_ref().trim().is_empty() || t.get_ref().chars().any(char::is_control) =>
            {
                Err(at.err(t, format!("mail.{what}: one line of text")))
            }
            Some(t) => Ok(Some(t.get_ref().clone())),
        }
    };
    let subject = line(&r.subject, "subject")?;
    let alarm_subject = line(&r.alarm_subject, "alarm_subject")?;
    let n = [
        r.smtp.is_some(),
        r.sendmail.is_some(),
        r.maildir.is_some(),
        r.print.as_ref().is_some_and(|p| *p.get_ref()),
    ]
    .iter()
    .filter(|x| **x)
    .count();
    if n > 1 {
        return Err(at.err(
            m,
            "[mail] takes one transport: smtp, sendmail, maildir or print",
        ));
    }
    if let Some(t) = &r.tls {
        if r.smtp.is_none() {
            return Err(at.err(t, "mail.tls is for smtp"));
        }
    }
    let tls = match &r.tls {
        None => TlsMode::Opportunistic,
        Some(t) => t
            .get_ref()
            .parse()
            .map_err(|e| at.err(t, format!("mail.tls: {e}")))?,
    };
    let transport = if let Some(s) = &r.smtp {
        let server = s
            .get_ref()
            .parse()
            .map_err(|e| at.err(s, format!("mail.smtp: {e}")))?;
        Transport::Smtp { server, tls }
    } else if let Some(s) = &r.sendmail {
        Transport::Sendmail(abs(s, "mail.sendmail")?)
    } else if let Some(d) = &r.maildir {
        Transport::Maildir(abs(d, "mail.maildir")?)
    } else if r.print.as_ref().is_some_and(|p| *p.get_ref()) {
        Transport::Print
    } else {
        Transport::Sendmail(PathBuf::from(crate::mail::SENDMAIL))
    };
    let outbox = match &r.outbox {
        Some(o) => abs(o, "mail.outbox")?,
        None => work_dir.join("outbox"),
    };
    Ok(Mail {
        to,
        from,
        subject,
        alarm_subject,
        transport,
        outbox,
    })
}

/// An absolute path without control characters.
fn abs_path(at: &At<'_>, s: &Spanned<String>, what: &str) -> Result<PathBuf, Error> {
    let p = s.get_ref();
    if p.is_empty() || !p.starts_with('/') {
        return Err(at.err(s, format!("{what} must be an absolute path, not {p:?}")));
    }
    if p.chars().any(char::is_control) {
        return Err(at.err(s, format!("{what}: a path without control characters")));
    }
    Ok(PathBuf::from(p))
}

/// Two revisions, `BASE` and `BRANCH`, each a valid one.
fn revisions(pair: Option<(&str, &str)>) -> Option<(Revision, Revision)> {
    let (b, t) = pair?;
    Some((Revision::parse(b).ok()?, Revision::parse(t).ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
ports_dir = "/usr/ports"
make = "make"
update = ["cvs", "-q", "up", "-Pd", "-A", "-r", "OPENBSD_7_8"]
sqlports = "/usr/local/share/sqlports"
exclude = ["sysutils/firmware/*"]
work_dir = "/var/db/portflow"

[delta]
cvs = "OPENBSD_7_8_BASE:OPENBSD_7_8"

[env]
DISTDIR = "/usr/ports/distfiles"

[mail]
to = ["porters@example.org"]
from = "builder@example.org"
smtp = "mail.example.org:25"

[[target]]
name = "amd64"
arch = "amd64"
spool = "/var/spool/portflow"
deadline = "10h"

[[target]]
name = "i386"
arch = "i386"
spool = "/var/spool/portflow"
ssh = "builder@i386.example.org"
ssh_options = ["-i", "/root/.ssh/id_portflow"]
"#;

    fn err(text: &str) -> String {
        parse(Path::new("p.conf"), text).unwrap_err().to_string()
    }

    #[test]
    fn a_good_file() {
        let c = parse(Path::new("p.conf"), GOOD).unwrap();
        assert_eq!(
            c.delta,
            Delta::Cvs {
                base: "OPENBSD_7_8_BASE".parse().unwrap(),
                branch: "OPENBSD_7_8".parse().unwrap()
            }
        );
        assert_eq!(c.targets.len(), 2);
        assert_eq!(c.targets[0].deadline, Duration::from_secs(36_000));
        assert_eq!(c.targets[1].deadline, Duration::from_secs(12 * 3600));
        assert_eq!(
            c.targets[1].ssh.as_deref(),
            Some("builder@i386.example.org")
        );
        assert_eq!(c.mail.outbox, PathBuf::from("/var/db/portflow/outbox"));
        assert!(c.prefetch);
        assert_eq!(
            c.mail.transport,
            Transport::Smtp {
                server: "mail.example.org:25".parse().unwrap(),
                tls: TlsMode::Opportunistic
            }
        );
    }

    /// The server is read as summary-mail reads its --smtp (one type), and
    /// handed on in a form it reads back the same.
    #[test]
    fn smtp_as_summary_mail_reads_it() {
        for (given, shown) in [
            ("::1", "[::1]:25"),
            ("[::1]:2525", "[::1]:2525"),
            ("mail", "mail:25"),
        ] {
            let c = parse(
                Path::new("p.conf"),
                &GOOD.replace("mail.example.org:25", given),
            )
            .unwrap();
            let Transport::Smtp { server, .. } = &c.mail.transport else {
                panic!("not smtp")
            };
            assert_eq!(server.to_string(), shown);
            assert_eq!(server, &given.parse::<SmtpServer>().unwrap());
        }
        let e = err(&GOOD.replace("mail.example.org:25", "mail:0"));
        assert!(
            e.starts_with("p.conf:18: mail.smtp: HOST or HOST:PORT"),
            "{e}"
        );
    }

    #[test]
    fn errors_name_the_line() {
        let e = err(&GOOD.replace("deadline = \"10h\"", "deadline = \"10h\"\ncolour = 1"));
        assert!(e.starts_with("p.conf:25: "), "{e}");
        assert!(e.contains("colour"), "{e}");
        let e = err(&GOOD.replace("name = \"i386\"", "name = \"amd64\""));
        assert!(e.starts_with("p.conf:27: ") && e.contains("twice"), "{e}");
        let e = err(&GOOD.replace("\"10h\"", "\"ten hours\""));
        assert!(e.starts_with("p.conf:24: deadline"), "{e}");
        // A deadline past any clock: refused, not a panic later.
        let e = err(&GOOD.replace("\"10h\"", "\"99999999999d\""));
        assert!(
            e.starts_with("p.conf:24: deadline") && e.contains("too long"),
            "{e}"
        );
        let e = err(&GOOD.replace("/var/spool/portflow\"\ndeadline", "spool\"\ndeadline"));
        assert!(e.starts_with("p.conf:23: spool must be an absolute"), "{e}");
        let e = err(&GOOD.replace("smtp = ", "print = true\nsmtp = "));
        assert!(e.contains("one transport"), "{e}");
        let e = err(&GOOD.replace("builder@example.org", "not an address"));
        assert!(e.starts_with("p.conf:17: mail.from"), "{e}");
        let e = err("work_dir = \"/w\"\nupdate = [\"cvs\"]\n");
        assert!(e.contains("no [[target]]"), "{e}");
        let e = err("work_dir = 3\n");
        assert!(e.starts_with("p.conf:1: "), "{e}");
        let e = err(&GOOD.replace("cvs = \"OPENBSD", "git = \"a..b\"\ncvs = \"OPENBSD"));
        assert!(e.contains("exactly one"), "{e}");
        let e = err(&GOOD.replace("ssh = \"builder@i386.example.org\"\n", ""));
        assert!(e.contains("ssh_options without ssh"), "{e}");
    }
}
