//! Sending a mail that is already composed: over SMTP, through a sendmail program,
//! into a maildir-style directory, or to standard output; and the outbox, where a
//! mail the transport refused waits, whole, until [`flush`] sends it.
//!
//! A message is kept as RFC 5322 bytes with `\n` line ends, as a mail file on disk
//! is; it gets `\r\n` line ends on the SMTP wire only.  SMTP and sendmail go
//! through lettre; the maildir and the outbox are written here: one file per
//! message, written in `tmp/` then renamed into `new/`.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use lettre::address::Envelope;
use lettre::message::{Mailbox, Mailboxes};
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::{Address, SmtpTransport, Transport as _};

use crate::Error;

/// The sendmail program of OpenBSD (and of most Unix systems).
pub const SENDMAIL: &str = "/usr/sbin/sendmail";

/// How long a transport may take by default: one SMTP command (the banner
/// included) waiting for the server, or a whole sendmail run.
pub const MAIL_TIMEOUT: Duration = Duration::from_secs(60);

/// When an SMTP connection is encrypted with STARTTLS.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum TlsMode {
    /// Use STARTTLS when the server offers it, plain text when it does not.
    Opportunistic,
    /// Fail unless the server offers STARTTLS.
    Required,
    /// Never use STARTTLS.
    Never,
}

impl TlsMode {
    pub fn as_str(self) -> &'static str {
        match self {
            TlsMode::Opportunistic => "opportunistic",
            TlsMode::Required => "required",
            TlsMode::Never => "never",
        }
    }
}

impl std::str::FromStr for TlsMode {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        [TlsMode::Opportunistic, TlsMode::Required, TlsMode::Never]
            .into_iter()
            .find(|m| m.as_str() == s)
            .ok_or_else(|| "opportunistic, required or never".to_string())
    }
}

/// An SMTP server: `HOST[:PORT]`, port 25 by default, an IPv6 address in
/// brackets when a port follows (`[::1]:2525`; `::1` alone is port 25).  The
/// one reading of it, for summary-mail's flag and portflow.conf(5) alike.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SmtpServer {
    pub host: String,
    pub port: u16,
}

impl std::str::FromStr for SmtpServer {
    type Err = String;

    fn from_str(spec: &str) -> Result<Self, String> {
        let bad = || format!("HOST or HOST:PORT, not {spec:?}");
        let (host, port) = if let Some(rest) = spec.strip_prefix('[') {
            let (h, after) = rest.split_once(']').ok_or_else(bad)?;
            match after {
                "" => (h, None),
                p => (h, Some(p.strip_prefix(':').ok_or_else(bad)?)),
            }
        } else if spec.matches(':').count() == 1 {
            let (h, p) = spec.split_once(':').ok_or_else(bad)?;
            (h, Some(p))
        } else {
            (spec, None)
        };
        let port = match port {
            None => 25,
            Some(p) => p.parse::<u16>().ok().filter(|&p| p > 0).ok_or_else(bad)?,
        };
        if host.is_empty()
            || host
                .chars()
                .any(|c| c.is_whitespace() || c.is_control() || c == '/')
        {
            return Err(bad());
        }
        Ok(SmtpServer {
            host: host.to_string(),
            port,
        })
    }
}

impl std::fmt::Display for SmtpServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

/// Where a mail goes.
#[derive(Clone, Debug)]
pub enum Transport {
    /// An SMTP server.
    Smtp {
        host: String,
        port: u16,
        tls: TlsMode,
    },
    /// A sendmail program, run as `sendmail -i -f FROM -- TO...`.
    Sendmail(PathBuf),
    /// A maildir-style directory: `tmp/`, `new/`, `cur/`.
    Maildir(PathBuf),
    /// Standard output.
    Print,
}

impl Transport {
    /// `HOST[:PORT]` (port 25 by default; an IPv6 address in brackets when a
    /// port follows: `[::1]:2525`).
    pub fn smtp(server: &SmtpServer, tls: TlsMode) -> Transport {
        Transport::Smtp {
            host: server.host.clone(),
            port: server.port,
            tls,
        }
    }

    /// Check what can be checked before anything is read: the sendmail program
    /// exists and may be run.
    pub fn check(&self) -> Result<(), Error> {
        if let Transport::Sendmail(p) = self {
            if crate::proc::find_program(p.as_os_str(), None).is_none() {
                return Err(Error::Usage(format!(
                    "--sendmail {}: no such program (write --sendmail=PATH, or the FILE operands before --sendmail)",
                    p.display()
                )));
            }
        }
        Ok(())
    }

    /// A short description for messages: `SMTP server host:25`.
    pub fn describe(&self) -> String {
        match self {
            Transport::Smtp { host, port, .. } => format!("SMTP server {host}:{port}"),
            Transport::Sendmail(p) => p.display().to_string(),
            Transport::Maildir(d) => format!("maildir {}", d.display()),
            Transport::Print => "standard output".into(),
        }
    }

    /// Hand one message over.  `Ok` means it was accepted (the SMTP server said
    /// 250 to the data, sendmail exited 0, the file is in `new/`); the path is the
    /// file delivered into a maildir.
    pub fn send(&self, mail: &Mail, timeout: Duration) -> Result<Option<PathBuf>, SendError> {
        self.send_inner(mail, timeout)
            .map_err(|(message, permanent)| SendError { message, permanent })
    }

    fn send_inner(
        &self,
        mail: &Mail,
        timeout: Duration,
    ) -> Result<Option<PathBuf>, (String, bool)> {
        let transient = |m: String| (m, false);
        let envelope = Envelope::new(Some(mail.from.clone()), mail.to.clone())
            .map_err(|e| (format!("bad envelope: {e}"), true))?;
        match self {
            Transport::Smtp { host, port, tls } => {
                let tls = match tls {
                    TlsMode::Never => Tls::None,
                    mode => {
                        let p = TlsParameters::new(host.clone())
                            .map_err(|e| transient(format!("TLS for {host}: {e}")))?;
                        if *mode == TlsMode::Required {
                            Tls::Required(p)
                        } else {
                            Tls::Opportunistic(p)
                        }
                    }
                };
                let t = SmtpTransport::builder_dangerous(host.as_str())
                    .port(*port)
                    .tls(tls)
                    .timeout(Some(timeout))
                    .build();
                // lettre ends the data with "\r\n.\r\n" whatever its last
                // line: the message's own last line end would be a blank line.
                let wire = crlf(&mail.bytes);
                let wire = wire.strip_suffix(b"\r\n").unwrap_or(&wire);
                // A 5xx answer is for good: sending it again changes nothing.
                t.send_raw(&envelope, wire).map(|_| None).map_err(|e| {
                    let chain = error_chain(&e);
                    // A read that waited the whole timeout (the banner that
                    // never came, a command never answered) says EAGAIN.
                    let timed_out = e.is_timeout()
                        || ["(os error 11)", "(os error 110)", "timed out"]
                            .iter()
                            .any(|t| chain.contains(t));
                    let m = if timed_out {
                        format!(
                            "{}: no answer in {}s (timeout): {chain}",
                            self.describe(),
                            timeout.as_secs()
                        )
                    } else {
                        format!("{}: {chain}", self.describe())
                    };
                    (m, e.is_permanent())
                })
            }
            Transport::Sendmail(p) => sendmail(p, &envelope, &mail.bytes, timeout)
                .map(|()| None)
                .map_err(transient),
            Transport::Maildir(d) => deliver(d, &mail.bytes)
                .map(Some)
                .map_err(|e| transient(format!("{}: {e}", d.display()))),
            Transport::Print => {
                let mut out = io::stdout().lock();
                out.write_all(&mail.bytes)
                    .and_then(|()| out.flush())
                    .map(|()| None)
                    .map_err(|e| transient(format!("stdout: {e}")))
            }
        }
    }
}

/// Run `sendmail -i -f FROM -- TO...` with the message on its standard input,
/// within `timeout` (a sendmail that never answers is killed, with its process
/// group, and the message stays for later).
fn sendmail(p: &Path, envelope: &Envelope, bytes: &[u8], timeout: Duration) -> Result<(), String> {
    use std::os::unix::process::CommandExt;
    use std::process::{Command, Stdio};
    let mut cmd = Command::new(p);
    cmd.arg("-i");
    if let Some(from) = envelope.from() {
        cmd.arg("-f").arg(from);
    }
    cmd.arg("--");
    for to in envelope.to() {
        cmd.arg(to);
    }
    let child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .map_err(|e| format!("{}: cannot run it: {e}", p.display()))?;
    let mut child = crate::proc::Supervised::new(child, true);
    // Written and read by threads: a sendmail that does not read, or writes
    // much, never blocks the wait below.
    let input = child.child_mut().stdin.take().map(|mut w| {
        let data = bytes.to_vec();
        std::thread::spawn(move || {
            let _ = w.write_all(&data);
        })
    });
    let errors = child.child_mut().stderr.take().map(|r| {
        std::thread::spawn(move || {
            let mut v = Vec::new();
            let _ = io::Read::read_to_end(&mut io::Read::take(r, 64 * 1024), &mut v);
            v
        })
    });
    let deadline = std::time::Instant::now() + timeout;
    let status = match child.wait_until(Some(deadline), || false) {
        Ok(Some(st)) => st,
        Ok(None) => {
            return Err(format!(
                "{}: no answer in {}s: killed",
                p.display(),
                timeout.as_secs()
            ))
        }
        Err(e) => return Err(format!("{}: {e}", p.display())),
    };
    if let Some(t) = input {
        let _ = t.join();
    }
    let err = errors.and_then(|t| t.join().ok()).unwrap_or_default();
    if status.success() {
        return Ok(());
    }
    let text = String::from_utf8_lossy(&err);
    let text = text.trim();
    Err(if text.is_empty() {
        format!(
            "{}: failed ({status}), with nothing on its standard error",
            p.display()
        )
    } else {
        format!("{}: failed ({status}): {text}", p.display())
    })
}

/// Why a transport did not take a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SendError {
    pub message: String,
    /// Refused for good (an SMTP 5xx answer, a bad envelope): trying again
    /// changes nothing.
    pub permanent: bool,
}

impl std::fmt::Display for SendError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

/// Where an outbox keeps the messages refused for good, apart from those
/// waiting: `<outbox>/bad/`.
pub fn bad_dir(outbox: &Path) -> PathBuf {
    outbox.join("bad")
}

/// Move a message of the outbox to its `bad/` directory; the new path.
pub fn set_apart(outbox: &Path, path: &Path) -> io::Result<PathBuf> {
    let dir = bad_dir(outbox);
    fs::create_dir_all(&dir)?;
    let to = dir.join(path.file_name().unwrap_or_default());
    fs::rename(path, &to)?;
    Ok(to)
}

/// An error and its sources, joined by `: `.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let t = c.to_string();
        if !s.contains(&t) {
            s.push_str(": ");
            s.push_str(&t);
        }
        cur = c.source();
    }
    s
}

/// One composed message and its envelope.
#[derive(Clone, Debug)]
pub struct Mail {
    pub from: Address,
    pub to: Vec<Address>,
    /// The whole message, RFC 5322, `\n` line ends.
    pub bytes: Vec<u8>,
}

impl Mail {
    /// A message read back from a file: its envelope from its `From:` and `To:`
    /// (and `Cc:`) headers, as `sendmail -t` would.
    pub fn parse(bytes: Vec<u8>) -> Result<Mail, String> {
        let h = Headers::parse(&bytes);
        let from = h
            .get("from")
            .ok_or("no From: header")?
            .parse::<Mailbox>()
            .map_err(|e| format!("From: {e}"))?
            .email;
        let mut to = Vec::new();
        for name in ["to", "cc"] {
            for v in h.all(name) {
                let list = Mailboxes::from_str(v).map_err(|e| format!("{name}: {e}"))?;
                to.extend(list.into_iter().map(|m| m.email));
            }
        }
        if to.is_empty() {
            return Err("no To: header".into());
        }
        Ok(Mail { from, to, bytes })
    }

    pub fn headers(&self) -> Headers {
        Headers::parse(&self.bytes)
    }
}

/// The header fields of a message, unfolded, in order.
#[derive(Debug, Default)]
pub struct Headers(Vec<(String, String)>);

impl Headers {
    pub fn parse(bytes: &[u8]) -> Headers {
        let text = String::from_utf8_lossy(bytes);
        let mut v: Vec<(String, String)> = Vec::new();
        for line in text.split('\n') {
            let line = line.strip_suffix('\r').unwrap_or(line);
            if line.is_empty() {
                break;
            }
            if line.starts_with([' ', '\t']) {
                if let Some(last) = v.last_mut() {
                    last.1.push(' ');
                    last.1.push_str(line.trim());
                }
                continue;
            }
            if let Some((k, val)) = line.split_once(':') {
                v.push((k.trim().to_string(), val.trim().to_string()));
            }
        }
        Headers(v)
    }

    /// The first field of that name (any case), undecoded.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.0
            .iter()
            .filter(move |(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// A field with its RFC 2047 encoded words decoded (`Subject:`).
    pub fn text(&self, name: &str) -> Option<String> {
        self.get(name).map(decode_words)
    }
}

/// `\n` line ends to `\r\n`, for the SMTP wire.
pub fn crlf(bytes: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(bytes.len() + bytes.len() / 40);
    let mut prev = 0u8;
    for &b in bytes {
        if b == b'\n' && prev != b'\r' {
            v.push(b'\r');
        }
        v.push(b);
        prev = b;
    }
    v
}

/// `\r\n` line ends to `\n`, for files and sendmail.
pub fn lf(bytes: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\r' && bytes.get(i + 1) == Some(&b'\n') {
            i += 1;
            continue;
        }
        v.push(bytes[i]);
        i += 1;
    }
    v
}

/// Decode the RFC 2047 encoded words (`=?utf-8?b?...?=`, `=?utf-8?q?...?=`) of a
/// header field; anything it cannot decode is left as it is.
pub fn decode_words(s: &str) -> String {
    let mut out = String::new();
    let mut rest = s;
    let mut last_was_word = false;
    while let Some(start) = rest.find("=?") {
        let (before, from) = rest.split_at(start);
        let decoded = from[2..].split_once('?').and_then(|(charset, r)| {
            let (enc, r) = r.split_once('?')?;
            let (text, after) = r.split_once("?=")?;
            if !charset.eq_ignore_ascii_case("utf-8") && !charset.eq_ignore_ascii_case("us-ascii") {
                return None;
            }
            let bytes = match enc {
                "b" | "B" => base64_decode(text)?,
                "q" | "Q" => q_decode(text)?,
                _ => return None,
            };
            Some((String::from_utf8(bytes).ok()?, after))
        });
        match decoded {
            Some((text, after)) => {
                // White space between two encoded words is not part of the text.
                if !(last_was_word && before.trim().is_empty()) {
                    out.push_str(before);
                }
                out.push_str(&text);
                rest = after;
                last_was_word = true;
            }
            None => {
                out.push_str(before);
                out.push_str("=?");
                rest = &from[2..];
                last_was_word = false;
            }
        }
    }
    out.push_str(rest);
    out
}

fn base64_decode(s: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    let mut acc = 0u32;
    let mut bits = 0;
    for c in s.bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            b'=' => break,
            _ => return None,
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Some(out)
}

fn q_decode(s: &str) -> Option<Vec<u8>> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'_' => out.push(b' '),
            b'=' => {
                let hex = std::str::from_utf8(b.get(i + 1..i + 3)?).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 2;
            }
            c => out.push(c),
        }
        i += 1;
    }
    Some(out)
}

/// The name of this host (uname(2)), for message ids, file names and the
/// default address; `localhost` when it cannot be told.
pub fn hostname() -> &'static str {
    static NAME: OnceLock<String> = OnceLock::new();
    NAME.get_or_init(|| crate::proc::hostname().unwrap_or_else(|| "localhost".into()))
}

/// A file name unique to this process and moment, which sorts in the order the
/// files were made: `<seconds>.M<microseconds>P<pid>Q<n>.<host>` as maildir(5)
/// suggests, with fixed-width numbers.
fn unique_name() -> String {
    static N: AtomicUsize = AtomicUsize::new(0);
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let n = N.fetch_add(1, Ordering::Relaxed);
    let host: String = hostname()
        .chars()
        .map(|c| {
            if c == '/' || c == ':' || c.is_control() {
                '_'
            } else {
                c
            }
        })
        .collect();
    format!(
        "{:010}.M{:06}P{}Q{n:04}.{host}",
        now.as_secs(),
        now.subsec_micros(),
        std::process::id()
    )
}

/// Write one message into a maildir-style directory: into `tmp/`, synced, then
/// renamed into `new/`.  The directories are made when missing.  Returns the
/// path in `new/`.
pub fn deliver(dir: &Path, bytes: &[u8]) -> io::Result<PathBuf> {
    for sub in ["tmp", "new", "cur"] {
        fs::create_dir_all(dir.join(sub))?;
    }
    let name = unique_name();
    let tmp = dir.join("tmp").join(&name);
    let new = dir.join("new").join(&name);
    crate::atomic::write_via(&tmp, &new, bytes)?;
    Ok(new)
}

/// The messages waiting in an outbox, oldest first.
pub fn waiting(outbox: &Path) -> io::Result<Vec<PathBuf>> {
    let new = outbox.join("new");
    let mut v = Vec::new();
    let entries = match fs::read_dir(&new) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(v),
        Err(e) => return Err(e),
    };
    for e in entries {
        let e = e?;
        let name = e.file_name();
        if name.to_string_lossy().starts_with('.') {
            continue;
        }
        if e.file_type().is_ok_and(|t| t.is_file()) {
            v.push(e.path());
        }
    }
    v.sort();
    Ok(v)
}

/// What became of one message of the outbox in [`flush`].
#[derive(Debug)]
pub enum Flushed {
    /// Accepted by the transport and removed from the outbox.
    Sent {
        path: PathBuf,
        mail: Mail,
        delivered: Option<PathBuf>,
    },
    /// Accepted, but it could not be removed: it would be sent again.
    NotRemoved {
        path: PathBuf,
        mail: Mail,
        error: io::Error,
    },
    /// The transport refused it: it stays, and so do the messages after it.
    Refused { path: PathBuf, error: String },
    /// The transport refused it for good: it is moved to `bad/` (its new path),
    /// and the flush goes on with the others.
    Rejected {
        path: PathBuf,
        error: String,
        moved: Option<io::Error>,
    },
    /// It cannot be read or is not a message: it stays, the flush goes on.
    Bad { path: PathBuf, error: String },
}

/// Send what the outbox holds, oldest first, removing each message the transport
/// accepted.  The first refusal ends the flush, so that messages keep their order
/// and a server that is down is not asked once per message.  One flush at a time
/// per outbox (a lock in it); `report` is called after each message.
pub fn flush(
    outbox: &Path,
    transport: &Transport,
    timeout: Duration,
    mut report: impl FnMut(Flushed),
) -> Result<(), Error> {
    fs::create_dir_all(outbox).map_err(|e| Error::io(outbox, e))?;
    let lock_path = outbox.join(".flush.lock");
    let lock = crate::error::open_lock_file(&lock_path)?;
    lock.lock().map_err(|e| Error::io(&lock_path, e))?;
    let files = waiting(outbox).map_err(|e| Error::io(outbox.join("new"), e))?;
    for path in files {
        let bytes = match fs::read(&path) {
            Ok(b) => b,
            // Another flush got there first (without the lock: by hand).
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => {
                report(Flushed::Bad {
                    path,
                    error: e.to_string(),
                });
                continue;
            }
        };
        let mail = match Mail::parse(lf(&bytes)) {
            Ok(m) => m,
            Err(error) => {
                report(Flushed::Bad { path, error });
                continue;
            }
        };
        match transport.send(&mail, timeout) {
            Ok(delivered) => match fs::remove_file(&path) {
                Ok(()) => report(Flushed::Sent {
                    path,
                    mail,
                    delivered,
                }),
                Err(error) => report(Flushed::NotRemoved { path, mail, error }),
            },
            Err(e) if e.permanent => match set_apart(outbox, &path) {
                Ok(to) => report(Flushed::Rejected {
                    path: to,
                    error: e.message,
                    moved: None,
                }),
                Err(m) => {
                    report(Flushed::Rejected {
                        path,
                        error: e.message,
                        moved: Some(m),
                    });
                    break;
                }
            },
            Err(e) => {
                report(Flushed::Refused {
                    path,
                    error: e.message,
                });
                break;
            }
        }
    }
    drop(lock);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn smtp_specs() {
        let hp = |s: &str| s.parse::<SmtpServer>().ok().map(|s| (s.host, s.port));
        assert_eq!(hp("mail"), Some(("mail".into(), 25)));
        assert_eq!(hp("127.0.0.1:2525"), Some(("127.0.0.1".into(), 2525)));
        assert_eq!(hp("[::1]:2525"), Some(("::1".into(), 2525)));
        assert_eq!(hp("[::1]"), Some(("::1".into(), 25)));
        assert_eq!(hp("::1"), Some(("::1".into(), 25)));
        // Written back as read.
        for s in ["mail:25", "[::1]:2525", "127.0.0.1:2525"] {
            assert_eq!(s.parse::<SmtpServer>().unwrap().to_string(), s);
        }
        assert_eq!("::1".parse::<SmtpServer>().unwrap().to_string(), "[::1]:25");
        assert_eq!("opportunistic".parse(), Ok(TlsMode::Opportunistic));
        assert!("sometimes".parse::<TlsMode>().is_err());
        for bad in [
            "",
            ":25",
            "mail:",
            "mail:0",
            "mail:99999",
            "[::1]x",
            "a b:25",
        ] {
            assert_eq!(hp(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn line_ends() {
        assert_eq!(crlf(b"a\nb\r\nc\n"), b"a\r\nb\r\nc\r\n");
        assert_eq!(lf(b"a\r\nb\nc\r\n\r"), b"a\nb\nc\n\r");
    }

    #[test]
    fn headers_and_envelope() {
        let m = b"From: Ports <ports@example.org>\nTo: a@example.org,\n  \"B, C\" <b@example.org>\nSubject: =?utf-8?b?c3RhYmxl?= =?utf-8?q?_p=C3=A4ckages?= x\n\nbody\nTo: no@example.org\n";
        let mail = Mail::parse(m.to_vec()).unwrap();
        assert_eq!(mail.from.to_string(), "ports@example.org");
        let to: Vec<String> = mail.to.iter().map(|a| a.to_string()).collect();
        assert_eq!(to, ["a@example.org", "b@example.org"]);
        assert_eq!(
            mail.headers().text("subject").as_deref(),
            Some("stable päckages x")
        );
        assert!(Mail::parse(b"To: a@example.org\n\n".to_vec()).is_err());
        assert!(Mail::parse(b"From: a@example.org\n\n".to_vec()).is_err());
        assert_eq!(decode_words("=?x?y?z"), "=?x?y?z");
        assert_eq!(decode_words("plain"), "plain");
    }

    #[test]
    fn maildir_and_outbox_order() {
        let t = tempfile::tempdir().unwrap();
        let a = deliver(t.path(), b"one\n").unwrap();
        let b = deliver(t.path(), b"two\n").unwrap();
        assert!(a.starts_with(t.path().join("new")));
        assert_eq!(waiting(t.path()).unwrap(), [a, b]);
        assert_eq!(fs::read_dir(t.path().join("tmp")).unwrap().count(), 0);
        assert!(waiting(&t.path().join("none")).unwrap().is_empty());
    }
}
