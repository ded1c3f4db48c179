//! Diagnostics (`tool: file:line: message` on stderr) and exit status.

use std::fmt;
use std::io::{IsTerminal, Write};
use std::process::ExitCode;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use crate::Error;

/// Exit status of every tool (DESIGN.md section 6).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Exit {
    /// Success.
    Success = 0,
    /// Ran to the end, but something failed (a build, a transfer, a bad record).
    Failed = 1,
    /// Usage or configuration error; nothing was done.
    Usage = 2,
    /// Nothing to do (no change found, empty list).
    NothingToDo = 3,
    /// Nothing was built although ports changed.
    NothingBuilt = 4,
    /// A target timed out or was unreachable.
    TargetLost = 5,
    /// Temporary failure, retry later.
    TempFail = 75,
}

impl From<Exit> for ExitCode {
    fn from(e: Exit) -> ExitCode {
        ExitCode::from(e as u8)
    }
}

/// Where an input line came from: a file name (`stdin` for standard input) and a
/// line number counted from 1.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Loc {
    pub file: Arc<str>,
    pub line: usize,
}

impl fmt::Display for Loc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.file, self.line)
    }
}

/// Reports problems on stderr as `tool: file:line: message` and remembers whether
/// any was reported, so that the tool can exit 1 at the end.  Every message of
/// a tool goes through here: none lands glued onto a progress line.  Clones
/// share the count (a text view, a thread).
#[derive(Debug, Clone)]
pub struct Diag(Arc<Shared>);

#[derive(Debug)]
struct Shared {
    tool: &'static str,
    errors: AtomicUsize,
    /// stderr is a terminal: progress is shown.
    tty: bool,
    /// How many progress lines are on the terminal (the last one without its
    /// newline).
    on_line: AtomicUsize,
    /// The syslog socket every message also goes to (see [`Diag::syslog`]).
    syslog: std::sync::OnceLock<std::os::unix::net::UnixDatagram>,
}

/// The syslog socket: `/dev/log`, or the one PORTFLOW_SYSLOG_SOCKET names.
pub const SYSLOG_SOCKET: &str = "/dev/log";

/// How grave a message is, for syslog (facility daemon).
#[derive(Clone, Copy)]
enum Grade {
    Err = 3,
    Warning = 4,
}

impl Diag {
    pub fn new(tool: &'static str) -> Self {
        Diag(Arc::new(Shared {
            tool,
            errors: AtomicUsize::new(0),
            tty: std::io::stderr().is_terminal(),
            on_line: AtomicUsize::new(0),
            syslog: std::sync::OnceLock::new(),
        }))
    }

    /// From now on every message also goes to syslog(3), facility daemon, as
    /// `tool[pid]: message` (for a daemon that has no terminal: rc.d(8)).
    /// Nothing happens when there is no syslog socket.
    pub fn syslog(&self) {
        let path =
            std::env::var_os("PORTFLOW_SYSLOG_SOCKET").unwrap_or_else(|| SYSLOG_SOCKET.into());
        if let Ok(s) = std::os::unix::net::UnixDatagram::unbound() {
            if s.connect(&path).is_ok() {
                let _ = self.0.syslog.set(s);
            }
        }
    }

    pub fn tool(&self) -> &'static str {
        self.0.tool
    }

    /// `tool: message` on a line of its own, and to syslog when it is on.
    fn say(&self, grade: Grade, msg: fmt::Arguments<'_>) {
        if let Some(s) = self.0.syslog.get() {
            let pri = 3 * 8 + grade as u8;
            let line = format!("<{pri}>{}[{}]: {msg}", self.0.tool, std::process::id());
            let _ = s.send(line.as_bytes());
        }
        let mut e = std::io::stderr().lock();
        self.clear(&mut e);
        let _ = writeln!(e, "{}: {}", self.0.tool, msg);
    }

    /// Take the progress lines off the terminal.
    fn clear(&self, e: &mut impl Write) {
        let n = self.0.on_line.swap(0, Ordering::Relaxed);
        if n > 0 {
            let _ = write!(e, "\r\x1b[K");
            for _ in 1..n {
                let _ = write!(e, "\x1b[1A\x1b[K");
            }
        }
    }

    /// An error about one input line: reported, counted, and the tool goes on.
    pub fn error_at(&self, loc: &Loc, msg: impl fmt::Display) {
        self.0.errors.fetch_add(1, Ordering::Relaxed);
        self.say(Grade::Err, format_args!("{loc}: {msg}"));
    }

    /// An error not tied to a line: reported and counted.
    pub fn error(&self, msg: impl fmt::Display) {
        self.0.errors.fetch_add(1, Ordering::Relaxed);
        self.say(Grade::Err, format_args!("{msg}"));
    }

    /// A warning: reported, not counted.
    pub fn warn(&self, msg: impl fmt::Display) {
        self.say(Grade::Warning, format_args!("{msg}"));
    }

    /// Said to a person at a terminal only; nothing under cron.
    pub fn tty_note(&self, msg: impl fmt::Display) {
        if self.0.tty {
            self.say(Grade::Warning, format_args!("{msg}"));
        }
    }

    /// Progress for a person at a terminal, on one line that the next message
    /// replaces; nothing under cron.
    pub fn progress(&self, msg: impl fmt::Display) {
        self.progress_lines(&[format!("{}: {}", self.0.tool, msg)]);
    }

    /// Progress on several lines (a line per target), which the next progress
    /// or message replaces; each is cut to the terminal's width, so that none
    /// wraps.  Nothing under cron.
    pub fn progress_lines(&self, lines: &[String]) {
        if !self.0.tty {
            return;
        }
        let width = rustix::termios::tcgetwinsize(std::io::stderr())
            .map(|w| usize::from(w.ws_col))
            .ok()
            .filter(|&w| w > 0)
            .unwrap_or(80);
        let mut e = std::io::stderr().lock();
        self.clear(&mut e);
        let mut text = String::new();
        for (i, l) in lines.iter().enumerate() {
            if i > 0 {
                text.push('\n');
            }
            // One column left free: a full line would wrap on some terminals.
            text.extend(l.chars().take(width.saturating_sub(1)));
        }
        let _ = write!(e, "{text}");
        let _ = e.flush();
        self.0.on_line.store(lines.len(), Ordering::Relaxed);
    }

    pub fn errors(&self) -> usize {
        self.0.errors.load(Ordering::Relaxed)
    }

    /// The exit status for a run that got to the end: `Failed` when any error was
    /// reported, `otherwise` when not.
    pub fn finish(&self, otherwise: Exit) -> Exit {
        self.clear(&mut std::io::stderr().lock());
        if self.errors() > 0 {
            Exit::Failed
        } else {
            otherwise
        }
    }

    /// Turn the result of a tool's run into its exit code, reporting a fatal error.
    pub fn exit(&self, result: Result<Exit, Error>) -> ExitCode {
        match result {
            Ok(code) => code.into(),
            Err(Error::BrokenPipe) => Exit::Success.into(),
            Err(e) => {
                self.say(Grade::Err, format_args!("{e}"));
                e.exit().into()
            }
        }
    }
}

/// Parse a tool's command line.  `--help` and `--version` print and exit 0; a usage
/// error is reported as `tool: message` with the usage line, and exits 2.
pub fn parse_args<A: clap::Parser>(tool: &str) -> A {
    match A::try_parse() {
        Ok(a) => a,
        Err(e) if !e.use_stderr() => {
            let _ = e.print();
            std::process::exit(0)
        }
        Err(e) => {
            let text = e.render().to_string();
            let text = text.strip_prefix("error: ").unwrap_or(&text);
            eprint!("{tool}: {text}");
            std::process::exit(Exit::Usage as i32)
        }
    }
}

/// The `main` of every tool: parse the command line, run, report a fatal error,
/// and turn the result into the exit status.
pub fn tool_main<A: clap::Parser>(
    tool: &'static str,
    run: fn(&A, &Diag) -> Result<Exit, Error>,
) -> ExitCode {
    let args: A = parse_args(tool);
    let diag = Diag::new(tool);
    let r = run(&args, &diag);
    diag.exit(r)
}
