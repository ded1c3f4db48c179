//! The version-1 records of portflow-records(5).
//!
//! A record is kept as the JSON object it was read as: fields a tool does not know
//! stay where they were, and records of kinds a tool does not know pass through as
//! they are.  Tools read the fields they own through the accessors here and add
//! fields at the end.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// The record format version this code reads and writes.
pub const VERSION: u64 = 1;

/// One record: a JSON object with at least `"kind"` and `"v":1`.
#[derive(Clone, Debug, PartialEq)]
pub struct Record(Map<String, Value>);

/// Why a JSON line is not a record.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum RecordError {
    #[error("invalid JSON: {0}")]
    Json(String),
    #[error("not a JSON object")]
    NotObject,
    #[error("record has no \"kind\"")]
    NoKind,
    #[error("record has no \"v\"")]
    NoVersion,
    #[error("record version {0} is not supported (this is version 1)")]
    Version(String),
    #[error("{kind} record: field \"{field}\" {problem}")]
    Field {
        kind: String,
        field: &'static str,
        problem: &'static str,
    },
    #[error("{kind} record: field \"{field}\" is not {words}")]
    NotAWord {
        kind: String,
        field: &'static str,
        /// The words it may be, `built, up-to-date, failed, skipped or ignored`.
        words: String,
    },
}

impl Record {
    /// A new record of `kind`, version 1.
    pub fn new(kind: Kind) -> Self {
        let mut m = Map::new();
        m.insert("kind".into(), Value::from(kind));
        m.insert("v".into(), Value::from(VERSION));
        Record(m)
    }

    /// A `notice` record (things the summary must show).
    pub fn notice(tool: &str, level: Level, message: impl Into<String>) -> Self {
        let mut r = Record::new(Kind::Notice);
        r.set("tool", tool);
        r.set("level", level);
        r.set("message", message.into());
        r
    }

    /// Parse one line of JSON into a record, checking `kind` and `v`.
    pub fn parse(line: &str) -> Result<Self, RecordError> {
        let v: Value = serde_json::from_str(line).map_err(|e| {
            if e.is_eof() {
                RecordError::Json(format!("truncated line ({e})"))
            } else {
                RecordError::Json(e.to_string())
            }
        })?;
        let Value::Object(m) = v else {
            return Err(RecordError::NotObject);
        };
        match m.get("kind") {
            Some(Value::String(_)) => {}
            _ => return Err(RecordError::NoKind),
        }
        match m.get("v") {
            None => return Err(RecordError::NoVersion),
            Some(v) if v.as_u64() == Some(VERSION) => {}
            Some(v) => return Err(RecordError::Version(v.to_string())),
        }
        Ok(Record(m))
    }

    /// The record as one line of JSON, without the newline.
    pub fn to_line(&self) -> String {
        // A Map of Values always serialises.
        serde_json::to_string(&self.0).unwrap_or_default()
    }

    /// The kind as written, known or not.
    pub fn kind(&self) -> &str {
        self.0.get("kind").and_then(Value::as_str).unwrap_or("")
    }

    /// A `build` record of the `package` target (a record without a target is
    /// one).
    pub fn is_package_build(&self) -> bool {
        self.is(Kind::Build)
            && self
                .str("target")
                .is_none_or(|t| t == BuildTarget::Package.as_str())
    }

    /// The kind, when it is one of portflow-records(5).
    pub fn known_kind(&self) -> Option<Kind> {
        Kind::parse(self.kind())
    }

    pub fn is(&self, kind: Kind) -> bool {
        self.kind() == kind.as_str()
    }

    /// A field holding a word of the vocabulary; `None` when it is missing, not
    /// a string, or not one of the words.
    pub fn word<W: Word>(&self, field: &str) -> Option<W> {
        self.str(field).and_then(W::parse_word)
    }

    pub fn get(&self, field: &str) -> Option<&Value> {
        self.0.get(field)
    }

    pub fn str(&self, field: &str) -> Option<&str> {
        self.0.get(field).and_then(Value::as_str)
    }

    /// A string field the record's kind requires.
    pub fn require_str(&self, field: &'static str) -> Result<&str, RecordError> {
        match self.0.get(field) {
            Some(Value::String(s)) => Ok(s),
            None => Err(RecordError::Field {
                kind: self.kind().into(),
                field,
                problem: "is missing",
            }),
            Some(_) => Err(RecordError::Field {
                kind: self.kind().into(),
                field,
                problem: "is not a string",
            }),
        }
    }

    /// A field the record's kind requires, holding a word of the vocabulary.
    pub fn require_word<W: Word>(&self, field: &'static str) -> Result<W, RecordError> {
        W::parse_word(self.require_str(field)?).ok_or_else(|| RecordError::NotAWord {
            kind: self.kind().into(),
            field,
            words: one_of(W::words()),
        })
    }

    /// Set a field: in place when it exists, at the end when it does not.
    pub fn set(&mut self, field: &str, value: impl Into<Value>) {
        self.0.insert(field.into(), value.into());
    }

    /// Set a field only when the record does not have it.
    pub fn set_default(&mut self, field: &str, value: impl Into<Value>) {
        if !self.0.contains_key(field) {
            self.0.insert(field.into(), value.into());
        }
    }

    pub fn remove(&mut self, field: &str) -> Option<Value> {
        self.0.shift_remove(field)
    }

    pub fn fields(&self) -> &Map<String, Value> {
        &self.0
    }

    /// The `changes` of a port record; entries that are not changes are skipped.
    pub fn changes(&self) -> Vec<Change> {
        match self.0.get("changes") {
            Some(Value::Array(a)) => a
                .iter()
                .filter_map(|c| serde_json::from_value(c.clone()).ok())
                .collect(),
            _ => Vec::new(),
        }
    }

    pub fn set_changes(&mut self, changes: &[Change]) {
        let v = changes
            .iter()
            .map(|c| serde_json::to_value(c).unwrap_or(Value::Null))
            .collect::<Vec<_>>();
        self.set("changes", Value::Array(v));
    }
}

/// A word of the vocabulary, read from a record's field.
pub trait Word: Sized + Copy {
    fn parse_word(s: &str) -> Option<Self>;
    /// Every spelling, in the order of the manual.
    fn words() -> &'static [&'static str];
}

/// `a, b or c`.
fn one_of(words: &[&str]) -> String {
    match words.split_last() {
        None => String::new(),
        Some((last, [])) => (*last).to_string(),
        Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
    }
}

/// The words of the record vocabulary: an enum per field of fixed values, its
/// spelling in the records, and back.
macro_rules! words {
    ($(#[$m:meta])* pub enum $name:ident { $($(#[$vm:meta])* $var:ident = $s:literal,)+ }) => {
        $(#[$m])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        pub enum $name {
            $($(#[$vm])* #[serde(rename = $s)] $var,)+
        }

        impl $name {
            /// Every word, in the order of the manual.
            pub const ALL: &'static [$name] = &[$($name::$var),+];

            /// As it is spelled in the records.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$var => $s,)+
                }
            }

            /// The word spelled `s`, if it is one.
            pub fn parse(s: &str) -> Option<Self> {
                match s {
                    $($s => Some($name::$var),)+
                    _ => None,
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl Word for $name {
            fn parse_word(s: &str) -> Option<Self> {
                $name::parse(s)
            }

            fn words() -> &'static [&'static str] {
                &[$($s),+]
            }
        }

        impl From<$name> for Value {
            fn from(w: $name) -> Value {
                Value::from(w.as_str())
            }
        }
    };
}

words! {
    /// The kinds of record of portflow-records(5).
    pub enum Kind {
        Batch = "batch",
        Port = "port",
        Removed = "removed",
        Notice = "notice",
        Clean = "clean",
        Build = "build",
        Package = "package",
        Transfer = "transfer",
        Target = "target",
        Mail = "mail",
        /// build-trigger's state of a batch in its spool (`status`).
        Spool = "spool",
    }
}

words! {
    /// `notice` levels.
    pub enum Level {
        Info = "info",
        Warning = "warning",
        Error = "error",
    }
}

words! {
    /// What clean-env did (`clean` records' `action`).
    pub enum CleanAction {
        PkgDelete = "pkg_delete",
        PkgAdd = "pkg_add",
        Wipe = "wipe",
    }
}

words! {
    /// How a `clean` action went.
    pub enum CleanStatus {
        Done = "done",
        DryRun = "dry-run",
        Failed = "failed",
    }
}

words! {
    /// The make target of a `build` record (`package` when it has none).
    #[derive(clap::ValueEnum)]
    pub enum BuildTarget {
        /// `make package BULK=yes`: build the packages.
        Package = "package",
        /// `make fetch`: fetch the distfiles only.
        Fetch = "fetch",
    }
}

words! {
    /// What happened to an entry of build-list.
    pub enum BuildStatus {
        Built = "built",
        UpToDate = "up-to-date",
        Failed = "failed",
        Skipped = "skipped",
        /// make will not build it here (BROKEN, ONLY_FOR_ARCHS, IGNORE): the
        /// reason is make's.
        Ignored = "ignored",
    }
}

words! {
    /// Why an entry failed or was skipped (a `build` record's `reason`; for an
    /// ignored entry, the reason is make's own words).
    pub enum Reason {
        /// make reported it in REPORT_PROBLEM_LOGFILE.
        Error = "error",
        /// It printed nothing for too long and was killed.
        Timeout = "timeout",
        /// make itself stopped in it.
        Make = "make",
        /// Its directory is not in the ports tree.
        NonExistent = "non existent",
        /// make stopped before it or could not be started.
        NotReached = "not-reached",
        /// A dry run: nothing was built.
        DryRun = "dry-run",
    }
}

words! {
    /// What a run would do with an entry: the `plan` of a dry run's `build`
    /// record (`build-list -n`), as make decides it.
    pub enum Plan {
        /// A package file of its flavor is missing: make would build it.
        Build = "build",
        /// A distfile is missing from DISTDIR: `make fetch` would fetch it.
        Fetch = "fetch",
        /// Every file make would make is there: nothing would be done.
        UpToDate = "up-to-date",
        /// make will not build it here (IGNORE): `why` has make's words.
        Ignored = "ignored",
        /// make cannot even look at it (no such port, a broken Makefile): it
        /// would fail.
        Fail = "fail",
    }
}

words! {
    /// Where in the build of an entry make was when it failed (a failed
    /// `build` record's `phase`), from the lines bsd.port.mk prints.
    pub enum Phase {
        Fetch = "fetch",
        Checksum = "checksum",
        Depends = "depends",
        /// Extract, patch, configure, build.
        Build = "build",
        Fake = "fake",
        Package = "package",
    }
}

words! {
    /// What happened to a file rsync-list handed to rsync.
    pub enum TransferStatus {
        Sent = "sent",
        Unchanged = "unchanged",
        Failed = "failed",
    }
}

words! {
    /// How a target of the coordinator ended.
    pub enum TargetStatus {
        Done = "done",
        Failed = "failed",
        Timeout = "timeout",
        Unreachable = "unreachable",
    }
}

words! {
    /// Where a batch is in a spool: its directory, and the `state` of its
    /// `spool` record.
    pub enum SpoolState {
        /// Being written, not yet a batch.
        Tmp = "tmp",
        New = "new",
        Cur = "cur",
        Done = "done",
        Failed = "failed",
    }
}

words! {
    /// What became of a mail.
    pub enum MailStatus {
        Sent = "sent",
        Saved = "saved",
        /// Refused for good by the server (5xx): kept apart, never retried.
        Rejected = "rejected",
    }
}

/// What happened to a file between two revisions.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Modified,
    Added,
    Removed,
}

/// One entry of a port record's `changes`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Change {
    pub path: String,
    pub status: Status,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_fields_keep_their_place() {
        let line = r#"{"zz":1,"kind":"port","v":1,"aa":[1,2],"pkgpath":"net/curl"}"#;
        let mut r = Record::parse(line).unwrap();
        r.set("pkgpath", "net/wget");
        r.set("fullpkgpath", "net/wget");
        assert_eq!(
            r.to_line(),
            r#"{"zz":1,"kind":"port","v":1,"aa":[1,2],"pkgpath":"net/wget","fullpkgpath":"net/wget"}"#
        );
    }

    #[test]
    fn bad_records() {
        assert!(matches!(
            Record::parse(r#"{"kind":"port","v":1,"pkg"#),
            Err(RecordError::Json(m)) if m.starts_with("truncated")
        ));
        assert_eq!(Record::parse("[1]"), Err(RecordError::NotObject));
        assert_eq!(Record::parse(r#"{"v":1}"#), Err(RecordError::NoKind));
        assert_eq!(
            Record::parse(r#"{"kind":"x"}"#),
            Err(RecordError::NoVersion)
        );
        assert!(matches!(
            Record::parse(r#"{"kind":"x","v":2}"#),
            Err(RecordError::Version(_))
        ));
    }

    #[test]
    fn changes_round_trip() {
        let mut r = Record::new(Kind::Port);
        let c = Change {
            path: "net/curl/Makefile".into(),
            status: Status::Modified,
            from: Some("1.80".into()),
            to: Some("1.80.2.1".into()),
        };
        r.set_changes(std::slice::from_ref(&c));
        assert_eq!(
            r.to_line(),
            r#"{"kind":"port","v":1,"changes":[{"path":"net/curl/Makefile","status":"modified","from":"1.80","to":"1.80.2.1"}]}"#
        );
        assert_eq!(r.changes(), vec![c]);
    }
}
