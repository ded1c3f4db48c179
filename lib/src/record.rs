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
}

impl Record {
    /// A new record of `kind`, version 1.
    pub fn new(kind: &str) -> Self {
        let mut m = Map::new();
        m.insert("kind".into(), Value::from(kind));
        m.insert("v".into(), Value::from(VERSION));
        Record(m)
    }

    /// A `notice` record (things the summary must show).
    pub fn notice(tool: &str, level: Level, message: impl Into<String>) -> Self {
        let mut r = Record::new("notice");
        r.set("tool", tool);
        r.set("level", level.as_str());
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

    pub fn kind(&self) -> &str {
        self.0.get("kind").and_then(Value::as_str).unwrap_or("")
    }

    pub fn is(&self, kind: &str) -> bool {
        self.kind() == kind
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

/// `notice` levels.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Level {
    Info,
    Warning,
    Error,
}

impl Level {
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Info => "info",
            Level::Warning => "warning",
            Level::Error => "error",
        }
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
        let mut r = Record::new("port");
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
