//! summary-mail: the one mail that tells the porters what a batch built.
//!
//! Every record of the batch is read first, from one or many architectures
//! concatenated; the mail is then composed whole, in memory (counts per arch, the
//! `arch<TAB>file` list of what reached the signing host, failed builds with the
//! end of their logs, targets that did not finish, notices, the changes), and only
//! then handed to the transport (SMTP, sendmail, a maildir, or standard output;
//! see [`crate::mail`]).  A mail the transport refuses is saved whole in the
//! outbox (exit 75); `--flush` sends the outbox later.  summary-mail is the end of
//! the chain: it does not repeat the records it read, and writes one `mail`
//! record.

mod history;
mod summary;

use std::collections::BTreeSet;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use lettre::message::header::{ContentTransferEncoding, ContentType, HeaderName, HeaderValue};
use lettre::message::{Body, Mailbox};
use lettre::Message;

use crate::diag::{Diag, Exit, Loc};
use crate::jsonl::{Inputs, Item, Output};
use crate::mail::{self, Flushed, Mail, SmtpServer, TlsMode, Transport, SENDMAIL};
use crate::record::{Kind, Level, MailStatus, Record};
use crate::Error;

pub use history::History;
pub use summary::{change_line, stem, Gather, Options, Summary};

pub const TOOL: &str = "summary-mail";

/// The subject of the shell's mail.
pub const SUBJECT: &str = "stable packages to sign";

/// The subject when ports were listed and nothing was built: the shell's words
/// first, so that existing mail filters still catch it.
pub const ALARM_SUBJECT: &str = "no package stable: nothing was built although ports changed";

/// The packages rebuilt every run, left out of the counts.
pub const INFRASTRUCTURE: &str = "quirks,updatedb,sqlports,portslist";

/// Send one mail that summarises a batch: what was built, what failed, why.
#[derive(clap::Parser, Debug)]
#[command(name = "summary-mail", version, max_term_width = 100)]
#[command(group(clap::ArgGroup::new("transport").args(["smtp", "sendmail", "maildir", "print"])))]
pub struct Args {
    /// A recipient (repeatable) [default: the user running it, at this host].
    #[arg(long, value_name = "ADDR")]
    pub to: Vec<String>,
    /// The sender [default: the user running it, at this host].
    #[arg(long, value_name = "ADDR")]
    pub from: Option<String>,
    /// The subject of the mail.
    #[arg(long, value_name = "TEXT", default_value = SUBJECT)]
    pub subject: String,
    /// The subject when ports were listed but nothing was built anywhere.
    #[arg(long, value_name = "TEXT", default_value = ALARM_SUBJECT)]
    pub alarm_subject: String,
    /// Send through this SMTP server (port 25 by default).
    #[arg(long, value_name = "HOST[:PORT]")]
    pub smtp: Option<SmtpServer>,
    /// STARTTLS on SMTP: opportunistic (when offered), required, or never.
    #[arg(long, value_enum, value_name = "WHEN", default_value = "opportunistic")]
    pub tls: TlsMode,
    /// How long the transport may take: each SMTP command, the server's banner
    /// included, or the whole sendmail run (30s, 2m).
    #[arg(long, value_name = "DURATION", default_value = "60s", value_parser = crate::time::parse_duration)]
    pub timeout: std::time::Duration,
    /// Send through a sendmail program [the default transport: /usr/sbin/sendmail].
    #[arg(long, value_name = "PATH", num_args = 0..=1, default_missing_value = SENDMAIL)]
    pub sendmail: Option<PathBuf>,
    /// Deliver into a maildir-style directory (tmp/, new/, cur/).
    #[arg(long, value_name = "DIR")]
    pub maildir: Option<PathBuf>,
    /// Print the mail on standard output instead of sending it.
    #[arg(long)]
    pub print: bool,
    /// Where a mail that could not be sent is saved [default: $HOME/.portflow/outbox].
    #[arg(long, value_name = "DIR", env = "PORTFLOW_OUTBOX")]
    pub outbox: Option<PathBuf>,
    /// Show this file (cvs update output) as the changes, verbatim.
    #[arg(long, value_name = "FILE")]
    pub changes: Option<PathBuf>,
    /// Keep the failures of each arch's last batch in FILE: a failure is then
    /// NEW or STILL FAILING since a batch, and what was fixed is listed.
    #[arg(long, value_name = "FILE")]
    pub history: Option<PathBuf>,
    /// Also write the summary to FILE as one JSON object.
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
    /// Send the mails waiting in the outbox, oldest first; read no input.
    #[arg(long, conflicts_with_all = ["files", "print", "json", "changes"])]
    pub flush: bool,
    /// Package stems left out of the counts, comma separated.
    #[arg(
        long,
        value_name = "LIST",
        value_delimiter = ',',
        default_value = INFRASTRUCTURE
    )]
    pub infrastructure: Vec<String>,
    /// Lines shown from the end of each failed build's log.
    #[arg(long, value_name = "N", default_value = "20")]
    pub log_lines: usize,
    /// Inputs: the records of the batch; standard input when none.
    #[arg(value_name = "FILE")]
    pub files: Vec<PathBuf>,
}

pub fn main() -> std::process::ExitCode {
    crate::diag::tool_main(TOOL, run)
}

/// The settings checked before anything is read.
struct Setup {
    transport: Transport,
    timeout: std::time::Duration,
    from: Mailbox,
    to: Vec<Mailbox>,
    outbox: Option<PathBuf>,
}

fn setup(args: &Args) -> Result<Setup, Error> {
    let transport = if let Some(s) = &args.smtp {
        Transport::smtp(s, args.tls)
    } else if let Some(d) = &args.maildir {
        Transport::Maildir(d.clone())
    } else if args.print {
        Transport::Print
    } else {
        Transport::Sendmail(
            args.sendmail
                .clone()
                .unwrap_or_else(|| PathBuf::from(SENDMAIL)),
        )
    };
    transport.check()?;
    let mailbox = |flag: &str, s: &str| {
        s.parse::<Mailbox>()
            .map_err(|e| Error::Usage(format!("{flag} {s:?}: not a mail address: {e}")))
    };
    let default = || {
        let user = ["LOGNAME", "USER"]
            .iter()
            .filter_map(|v| std::env::var(v).ok())
            .find(|u| !u.is_empty())
            .unwrap_or_else(|| "root".into());
        format!("{user}@{}", mail::hostname())
    };
    let from = match &args.from {
        Some(f) => mailbox("--from", f)?,
        None => mailbox("--from (default)", &default())?,
    };
    let to = if args.to.is_empty() {
        vec![mailbox("--to (default)", &default())?]
    } else {
        args.to
            .iter()
            .map(|t| mailbox("--to", t))
            .collect::<Result<_, _>>()?
    };
    for (flag, text) in [
        ("--subject", &args.subject),
        ("--alarm-subject", &args.alarm_subject),
    ] {
        if text.trim().is_empty() || text.chars().any(char::is_control) {
            return Err(Error::Usage(format!(
                "{flag}: one line of text, not {text:?}"
            )));
        }
    }
    let outbox = args.outbox.clone().or_else(|| {
        std::env::var_os("HOME")
            .filter(|h| !h.is_empty())
            .map(|h| Path::new(&h).join(".portflow/outbox"))
    });
    Ok(Setup {
        transport,
        timeout: args.timeout,
        from,
        to,
        outbox,
    })
}

pub fn run(args: &Args, diag: &Diag) -> Result<Exit, Error> {
    let setup = setup(args)?;
    if args.flush {
        return flush(&setup, diag);
    }

    // Every record first: the mail is composed whole before the transport is
    // touched.
    let mut gather = Gather::default();
    Inputs::new(&args.files).for_each(diag, |item, loc: &Loc| {
        match item {
            Item::Record(r) => {
                if let Err(e) = gather.add(&r) {
                    diag.error_at(loc, format_args!("{e}; left out of the summary"));
                }
            }
            Item::Text(_) => diag.error_at(loc, "not a record; left out of the summary"),
        }
        Ok(())
    })?;
    if !gather.something_to_tell() {
        return Ok(diag.finish(Exit::NothingToDo));
    }
    let batch = gather.batch().map(str::to_string);

    let mut summary = summarize(args, gather, diag);
    let history = match &args.history {
        Some(p) => {
            let mut h = History::load(p)?;
            h.apply(&mut summary);
            Some((p, h))
        }
        None => None,
    };
    let subject = if summary.alarm {
        &args.alarm_subject
    } else {
        &args.subject
    };
    let mail = compose(&setup, subject, &summary).map_err(Error::Usage)?;

    // The transport, then the outbox when it failed.
    let (mut record, went) = deliver(&setup, &mail, diag)?;
    let (saved, lost) = (went == Went::Saved, went == Went::Lost);
    if let (Some((p, h)), false) = (&history, lost) {
        if let Err(e) = h.save(p) {
            diag.error(format_args!("--history: {e}"));
        }
    }
    if let Some(b) = &batch {
        record.set("batch", b.as_str());
    }

    if let Some(path) = &args.json {
        let mut v = serde_json::to_value(&summary).unwrap_or_default();
        if let Some(o) = v.as_object_mut() {
            o.insert("subject".into(), subject.as_str().into());
            o.insert("from".into(), setup.from.to_string().into());
            o.insert(
                "to".into(),
                setup
                    .to
                    .iter()
                    .map(|m| m.to_string())
                    .collect::<Vec<_>>()
                    .into(),
            );
            if !lost {
                o.insert("mail".into(), record.fields().clone().into());
            }
        }
        if let Err(e) = write_atomic(path, format!("{v}\n").as_bytes()) {
            diag.error(format_args!("--json {}: {e}", path.display()));
        }
    }

    if !lost && !matches!(setup.transport, Transport::Print) {
        let mut out = Output::stdout();
        out.record(&record)?;
        out.flush()?;
    }
    Ok(if saved {
        diag.finish(Exit::Success);
        Exit::TempFail
    } else if lost {
        diag.finish(Exit::Failed)
    } else if summary.alarm {
        diag.finish(Exit::Success);
        Exit::NothingBuilt
    } else {
        diag.finish(Exit::Success)
    })
}

/// The summary of what was gathered, with the `--changes` file when it can be
/// read (an error notice when it cannot).
fn summarize(args: &Args, gather: Gather, diag: &Diag) -> Summary {
    let bad_lines = diag.errors();
    let mut changes_error = None;
    let changes_file = match &args.changes {
        None => None,
        Some(p) => match fs::read(p) {
            Ok(b) => Some(String::from_utf8_lossy(&b).into_owned()),
            Err(e) => {
                diag.error(format_args!("--changes {}: {e}", p.display()));
                changes_error = Some(format!("--changes {}: {e}", p.display()));
                None
            }
        },
    };
    let opts = Options {
        infrastructure: args
            .infrastructure
            .iter()
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .collect::<BTreeSet<_>>(),
        log_lines: args.log_lines,
        changes_file,
    };
    let mut summary = gather.finish(&opts);
    summary.bad_lines = bad_lines;
    if let Some(e) = changes_error {
        summary.notices.insert(
            0,
            summary::Notice {
                level: Level::Error,
                tool: Some(TOOL.into()),
                arch: None,
                message: format!("{e}: the changes shown are those of the records"),
            },
        );
    }
    summary
}

/// Where the mail went.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Went {
    /// Sent (or printed), or refused for good and kept apart.
    Sent,
    /// Saved in the outbox, to be flushed later.
    Saved,
    /// Neither sent nor kept.
    Lost,
}

/// Send the mail with the transport; save it in the outbox when that fails
/// for now, keep it apart when it is refused for good.  Its `mail` record.
fn deliver(setup: &Setup, mail: &Mail, diag: &Diag) -> Result<(Record, Went), Error> {
    let mut record = mail_record(mail);
    let mut went = Went::Sent;
    if matches!(setup.transport, Transport::Print) {
        // Standard output is no transport that fails: a closed pipe ends the
        // tool quietly, as everywhere.
        let mut out = std::io::stdout().lock();
        out.write_all(&mail.bytes).map_err(Error::stdout)?;
        out.flush().map_err(Error::stdout)?;
    }
    let sent = match setup.transport {
        Transport::Print => Ok(None),
        _ => setup.transport.send(mail, setup.timeout),
    };
    match sent {
        Ok(path) => mark_sent(&mut record, mail, path.as_deref()),
        Err(e) if e.permanent => {
            // Refused for good: kept apart in the outbox's bad/, never in the
            // queue it would block.
            let kept = save(setup, mail).and_then(|p| {
                let outbox = setup.outbox.as_deref().unwrap_or(Path::new("."));
                mail::set_apart(outbox, &p).map_err(|e| format!("{}: {e}", p.display()))
            });
            match kept {
                Ok(path) => {
                    diag.error(format_args!(
                        "{e}: refused for good; the mail is kept in {}",
                        path.display()
                    ));
                    record.set("status", MailStatus::Rejected);
                    record.set("message", e.message.as_str());
                    record.set("path", path.display().to_string());
                }
                Err(se) => {
                    diag.error(format_args!("{e}; and the mail could not be kept: {se}"));
                    went = Went::Lost;
                }
            }
        }
        Err(e) => match save(setup, mail) {
            Ok(path) => {
                diag.warn(format_args!(
                    "{e}: the mail is saved in {}; send it with summary-mail --flush",
                    path.display()
                ));
                record.set("status", MailStatus::Saved);
                record.set("path", path.display().to_string());
                went = Went::Saved;
            }
            Err(se) => {
                diag.error(format_args!("{e}; and the mail could not be saved: {se}"));
                went = Went::Lost;
            }
        },
    }
    Ok((record, went))
}

/// The whole message, `\n` line ends.
fn compose(setup: &Setup, subject: &str, summary: &Summary) -> Result<Mail, String> {
    let mut b = Message::builder()
        .from(setup.from.clone())
        .subject(subject)
        .message_id(None)
        .user_agent(format!(
            "portflow summary-mail {}",
            env!("CARGO_PKG_VERSION")
        ))
        .raw_header(HeaderValue::new(
            HeaderName::new_from_ascii_str("Auto-Submitted"),
            "auto-generated".into(),
        ))
        .header(ContentType::TEXT_PLAIN);
    if let Some(id) = &summary.batch {
        b = b.raw_header(HeaderValue::new(
            HeaderName::new_from_ascii_str("X-Portflow-Batch"),
            id.clone(),
        ));
    }
    for t in &setup.to {
        b = b.to(t.clone());
    }
    let message = b
        .body(body(summary.body()))
        .map_err(|e| format!("cannot compose the mail: {e}"))?;
    Ok(Mail {
        from: setup.from.email.clone(),
        to: setup.to.iter().map(|m| m.email.clone()).collect(),
        bytes: mail::lf(&message.formatted()),
    })
}

/// The body as it is when it can be (ASCII, lines within RFC 5322's 998
/// characters): `7bit`, readable in the raw message; else what lettre chooses
/// (quoted-printable or base64).
fn body(text: String) -> Body {
    let plain = text.is_ascii() && !text.contains('\0') && text.split('\n').all(|l| l.len() <= 998);
    if plain {
        Body::dangerous_pre_encoded(
            mail::crlf(text.as_bytes()),
            ContentTransferEncoding::SevenBit,
        )
    } else {
        Body::new(text)
    }
}

fn save(setup: &Setup, mail: &Mail) -> Result<PathBuf, String> {
    let dir = setup
        .outbox
        .as_ref()
        .ok_or("no --outbox given and no HOME to put one in")?;
    mail::deliver(dir, &mail.bytes).map_err(|e| format!("{}: {e}", dir.display()))
}

/// Write a file whole or not at all: a temporary file beside it, renamed.
fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    crate::atomic::write_atomic(path, bytes)
}

/// `--flush`: send the outbox, one `mail` record per mail sent.
fn flush(setup: &Setup, diag: &Diag) -> Result<Exit, Error> {
    let Some(outbox) = &setup.outbox else {
        return Err(Error::Usage(
            "--flush: no --outbox given and no HOME to find one in".into(),
        ));
    };
    let mut out = Output::stdout();
    let mut sent = 0usize;
    let mut refused = false;
    let mut rejected = false;
    let mut write_err = None;
    mail::flush(outbox, &setup.transport, setup.timeout, |f| match f {
        Flushed::Sent {
            mail, delivered, ..
        } => {
            sent += 1;
            let r = flushed_record(&mail, delivered.as_deref());
            if write_err.is_none() {
                if let Err(e) = out.record(&r) {
                    write_err = Some(e);
                }
            }
        }
        Flushed::NotRemoved { path, mail, error } => {
            sent += 1;
            diag.error(format_args!(
                "{}: sent, but cannot be removed from the outbox ({error}): remove it by hand, or it is sent again",
                path.display()
            ));
            let r = flushed_record(&mail, None);
            if write_err.is_none() {
                if let Err(e) = out.record(&r) {
                    write_err = Some(e);
                }
            }
        }
        Flushed::Refused { path, error } => {
            refused = true;
            diag.warn(format_args!(
                "{error}: {} and the mails after it stay in the outbox",
                path.display()
            ));
        }
        Flushed::Rejected { path, error, moved } => {
            rejected = true;
            match moved {
                None => diag.error(format_args!(
                    "{error}: refused for good: kept apart in {}; the others go on",
                    path.display()
                )),
                Some(m) => diag.error(format_args!(
                    "{error}: refused for good, and {} cannot be moved to bad/ ({m}): it and the mails after it stay",
                    path.display()
                )),
            }
        }
        Flushed::Bad { path, error } => {
            diag.error(format_args!(
                "{}: not a mail that can be sent ({error}); left in the outbox",
                path.display()
            ));
        }
    })?;
    if let Some(e) = write_err {
        return Err(e);
    }
    out.flush()?;
    Ok(if refused {
        diag.finish(Exit::Success);
        Exit::TempFail
    } else if rejected {
        diag.finish(Exit::Failed)
    } else if sent == 0 {
        diag.finish(Exit::NothingToDo)
    } else {
        diag.finish(Exit::Success)
    })
}

/// A `mail` record says the mail was sent: its Message-ID, and the file it was
/// delivered to (a maildir).
fn mark_sent(r: &mut Record, mail: &Mail, delivered: Option<&Path>) {
    r.set("status", MailStatus::Sent);
    if let Some(id) = mail.headers().get("message-id") {
        r.set("message_id", id);
    }
    if let Some(p) = delivered {
        r.set("path", p.display().to_string());
    }
}

fn flushed_record(mail: &Mail, delivered: Option<&Path>) -> Record {
    let mut r = mail_record(mail);
    mark_sent(&mut r, mail, delivered);
    if let Some(b) = mail.headers().get("x-portflow-batch") {
        r.set("batch", b);
    }
    r
}

/// A `mail` record's `to` and `subject`, as the message's headers say them.
fn mail_record(mail: &Mail) -> Record {
    let h = mail.headers();
    let mut r = Record::new(Kind::Mail);
    r.set(
        "to",
        h.all("to")
            .map(mail::decode_words)
            .collect::<Vec<_>>()
            .join(", "),
    );
    r.set("subject", h.text("subject").unwrap_or_default());
    r
}
