//! `<work_dir>/state.json`: what the last batch built, and the batch running.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::Error;

pub const STATE: &str = "state.json";

/// A batch handed to the targets whose mail has not gone out yet.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Running {
    pub id: String,
    pub fingerprint: String,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct State {
    /// The fingerprint of the delta of the last batch whose mail went out.
    #[serde(default)]
    pub built: Option<String>,
    #[serde(default)]
    pub running: Option<Running>,
}

impl State {
    /// The state of a work directory; none yet is the empty state.  A state file
    /// that cannot be read is an error (exit 1): a run must not forget a batch.
    pub fn load(work: &Path) -> Result<State, Error> {
        let path = work.join(STATE);
        match std::fs::read(&path) {
            Ok(b) => serde_json::from_slice(&b).map_err(|e| Error::Corrupt {
                message: format!("not a state file ({e}): remove it to start afresh"),
                path,
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(State::default()),
            Err(e) => Err(Error::io(path, e)),
        }
    }

    pub fn save(&self, work: &Path) -> Result<(), Error> {
        let text = serde_json::to_string(self).unwrap_or_default();
        super::write_atomic(&work.join(STATE), format!("{text}\n").as_bytes())
    }
}
