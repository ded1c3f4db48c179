//! `--history FILE`: the failed entries of the last batch of each arch, so
//! that a mail tells a failure that is NEW from one STILL FAILING since an
//! earlier batch, and lists the entries FIXED since the last batch.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::summary::Summary;
use crate::Error;

/// The history file.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct History {
    pub v: u32,
    /// arch -> its last batch
    #[serde(default)]
    pub arches: BTreeMap<String, Last>,
}

/// The last batch of an arch, and what failed in it.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub struct Last {
    pub batch: String,
    /// full pkgpath -> the batch it first failed in
    #[serde(default)]
    pub failed: BTreeMap<String, String>,
}

impl History {
    /// The history in `path`; none yet is an empty one.
    pub fn load(path: &Path) -> Result<History, Error> {
        match std::fs::read(path) {
            Ok(b) => serde_json::from_slice(&b).map_err(|e| Error::Corrupt {
                path: path.to_path_buf(),
                message: format!("not a history file ({e}): remove it to start afresh"),
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(History {
                v: 1,
                ..History::default()
            }),
            Err(e) => Err(Error::io(path, e)),
        }
    }

    /// Tell each failure of `s` NEW or STILL FAILING since a batch, list the
    /// entries FIXED since the last batch of their arch; then this batch is
    /// the last of every arch it built on.
    pub fn apply(&mut self, s: &mut Summary) {
        let batch = s.batch.clone().unwrap_or_else(|| "?".into());
        let mut now: BTreeMap<String, Last> = BTreeMap::new();
        for a in &s.built_arches {
            now.insert(
                a.clone(),
                Last {
                    batch: batch.clone(),
                    failed: BTreeMap::new(),
                },
            );
        }
        for f in &mut s.failed {
            let before = self
                .arches
                .get(&f.arch)
                .and_then(|l| l.failed.get(&f.fullpkgpath))
                .cloned();
            f.since = Some(before.clone().unwrap_or_else(|| batch.clone()));
            f.new = Some(before.is_none());
            if let Some(l) = now.get_mut(&f.arch) {
                l.failed.insert(
                    f.fullpkgpath.clone(),
                    before.unwrap_or_else(|| batch.clone()),
                );
            }
        }
        for (arch, last) in &self.arches {
            for (path, since) in &last.failed {
                if s.ok_builds.contains(&(arch.clone(), path.clone())) {
                    s.fixed
                        .push(format!("{arch}\t{path} (failing since batch {since})"));
                }
            }
        }
        for (arch, last) in now {
            self.arches.insert(arch, last);
        }
        self.v = 1;
    }

    pub fn save(&self, path: &Path) -> Result<(), Error> {
        let text = serde_json::to_string(self).unwrap_or_default() + "\n";
        crate::atomic::write_atomic(path, text.as_bytes()).map_err(|e| Error::io(path, e))
    }
}
