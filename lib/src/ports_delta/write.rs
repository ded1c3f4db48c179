//! The records, written as serde_json writes them, only faster.

use crate::jsonl::Output;
use crate::record::{Kind, Record, Status};
use crate::Error;

use super::*;

/// A port or removed record as written.
pub(super) struct PortOut<'a> {
    pub(super) kind: Kind,
    pub(super) pkgpath: &'a str,
    pub(super) changes: Vec<&'a ChangeRef<'a>>,
    pub(super) why: Option<String>,
}

impl PortOut<'_> {
    /// The record as one line of JSON, the fields in their documented order,
    /// byte for byte as serde_json writes it.  Written by hand: a whole
    /// release's changes make some ten megabytes of it, and serde_json spends
    /// most of its time looking for characters to escape in paths and
    /// revisions, which have none.
    pub(super) fn to_line(&self) -> String {
        let mut s = String::with_capacity(self.size());
        self.write_to(&mut s);
        s
    }

    /// About the length of the line.
    fn size(&self) -> usize {
        64 + 100 * self.changes.len()
    }

    /// Append the line, without its line end, to `s`.  (The quotes around
    /// strings go with the text between them: fewer, longer appends.)
    fn write_to(&self, s: &mut String) {
        s.push_str("{\"kind\":\"");
        json_text(s, self.kind.as_str());
        s.push_str("\",\"v\":");
        s.push_str(&crate::record::VERSION.to_string());
        s.push_str(",\"pkgpath\":\"");
        json_text(s, self.pkgpath);
        s.push_str("\",\"changes\":[");
        for (k, c) in self.changes.iter().enumerate() {
            s.push_str(if k == 0 {
                "{\"path\":\""
            } else {
                ",{\"path\":\""
            });
            json_text(s, c.path);
            s.push_str(match c.status {
                Status::Modified => "\",\"status\":\"modified\"",
                Status::Added => "\",\"status\":\"added\"",
                Status::Removed => "\",\"status\":\"removed\"",
            });
            if let Some(from) = c.from {
                s.push_str(",\"from\":\"");
                json_text(s, from);
                s.push('"');
            }
            if let Some(to) = c.to {
                s.push_str(",\"to\":\"");
                json_text(s, to);
                s.push('"');
            }
            s.push('}');
        }
        s.push(']');
        if let Some(why) = &self.why {
            s.push_str(",\"why\":\"");
            json_text(s, why);
            s.push('"');
        }
        s.push('}');
    }
}

/// Append `text` as the inside of a JSON string (without the quotes).
pub(super) fn json_text(out: &mut String, text: &str) {
    // serde_json escapes `"`, `\` and characters below 0x20, nothing else: a
    // text without them is copied as it is.  (A quick look, in a form the
    // compiler turns into vector instructions.)
    let plain = text
        .bytes()
        .fold(true, |ok, b| ok & (b >= 0x20) & (b != b'"') & (b != b'\\'));
    if plain {
        out.push_str(text);
    } else {
        // A string always serialises, quoted.
        let quoted = serde_json::to_string(text).unwrap_or_default();
        out.push_str(quoted.get(1..quoted.len() - 1).unwrap_or_default());
    }
}

/// Write the records of a delta: ports first, then removed ports, then notices.
pub fn write_records(delta: &Delta, out: &mut Output) -> Result<(), Error> {
    use rayon::prelude::*;
    // A whole release's changes make thousands of records, some megabytes:
    // they are made in parallel, some hundreds at a time (so that the memory
    // of one round serves the next), each round while the one before it is
    // written.  A thread makes a block of lines as one text.
    let make = |round: &[(&str, &PortEntry)]| -> Vec<String> {
        round
            .par_chunks(32)
            .map(|block| {
                let records: Vec<PortOut> = block
                    .iter()
                    .map(|(dir, e)| PortOut {
                        kind: Kind::Port,
                        pkgpath: dir,
                        changes: sorted_changes(&e.changes),
                        why: (!e.why.is_empty())
                            .then(|| e.why.iter().cloned().collect::<Vec<_>>().join("; ")),
                    })
                    .collect();
                let mut text = String::with_capacity(records.iter().map(PortOut::size).sum());
                for (k, r) in records.iter().enumerate() {
                    if k > 0 {
                        text.push('\n');
                    }
                    r.write_to(&mut text);
                }
                text
            })
            .collect()
    };
    let ports = delta.sorted_ports();
    let mut rounds = ports.chunks(512);
    let mut lines = rounds.next().map(make).unwrap_or_default();
    loop {
        let mut next = None;
        let written = rayon::in_place_scope(|s| {
            if let Some(round) = rounds.next() {
                s.spawn(|_| next = Some(make(round)));
            }
            // (The last line of a block gets its line end here.)
            lines.iter().try_for_each(|block| out.line(block))
        });
        written?;
        match next {
            Some(n) => lines = n,
            None => break,
        }
    }
    for (dir, idx) in &delta.removed {
        let r = PortOut {
            kind: Kind::Removed,
            pkgpath: dir,
            changes: sorted_changes(idx),
            why: None,
        };
        out.line(&r.to_line())?;
    }
    for (level, msg) in &delta.notices {
        out.record(&Record::notice(TOOL, *level, msg.as_str()))?;
    }
    Ok(())
}
