//! The error type shared by every tool.

use std::path::PathBuf;

use crate::diag::Exit;

/// Errors that stop a tool.  Errors about one input line are not errors of this
/// type: they are reported through [`crate::Diag`] and the tool goes on.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Bad usage or configuration; nothing was done (exit 2).
    #[error("{0}")]
    Usage(String),
    /// A file could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// Standard output was closed by the reader: a quiet exit 0.
    #[error("broken pipe")]
    BrokenPipe,
    /// Writing standard output failed for another reason.
    #[error("stdout: {0}")]
    Stdout(#[source] std::io::Error),
    /// A database could not be used; the message names the file (exit 2).
    #[error("{}: {message}", path.display())]
    Database { path: PathBuf, message: String },
    /// A child program could not be started or failed.
    #[error("{program}: {message}")]
    Command { program: String, message: String },
    /// The system refused a resource the tool needs (a pipe, a thread, a
    /// signal handler).
    #[error("cannot {what}: {source}")]
    System {
        what: &'static str,
        #[source]
        source: std::io::Error,
    },
    /// A file the tool keeps is not what it wrote (exit 1): it is not used, and
    /// the message says what to do.
    #[error("{}: {message}", path.display())]
    Corrupt { path: PathBuf, message: String },
    /// Stopped by a signal (SIGTERM, SIGINT, SIGHUP), with everything it
    /// started; the work can be resumed (exit 75, try again later).
    #[error("{0}")]
    Stopped(String),
}

impl Error {
    /// The system refused `what` (`make a pipe`, `start a thread`).
    pub fn system(what: &'static str) -> impl FnOnce(std::io::Error) -> Self {
        move |source| Error::System { what, source }
    }

    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }

    /// The exit status a tool ends with when this error stops it.
    pub fn exit(&self) -> Exit {
        match self {
            Error::Usage(_) | Error::Database { .. } => Exit::Usage,
            Error::BrokenPipe => Exit::Success,
            Error::Io { .. }
            | Error::Stdout(_)
            | Error::Command { .. }
            | Error::System { .. }
            | Error::Corrupt { .. } => Exit::Failed,
            Error::Stopped(_) => Exit::TempFail,
        }
    }

    /// Classify a write error on standard output.
    pub fn stdout(e: std::io::Error) -> Self {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            Error::BrokenPipe
        } else {
            Error::Stdout(e)
        }
    }
}

/// Open (creating it when missing, never truncating) a file used as a lock with
/// `File::lock`: its contents are the lock holder's business.
pub fn open_lock_file(path: &std::path::Path) -> Result<std::fs::File, Error> {
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .map_err(|e| Error::io(path, e))
}
