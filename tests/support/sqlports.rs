//! Build a sqlports-compatible database from `make dump-vars` output.
//!
//! Shared by the integration tests (which run `bmake dump-vars` over the sample tree
//! in tests/fixtures/ports) and the benchmarks (which generate dump-vars text for a
//! large synthetic tree).  The schema is tests/fixtures/sqlports-schema.sql, a copy
//! of the subset of the sqlports schema portflow reads.
//!
//! dump-vars lines are `<fullpkgpath>.<VAR>=<value>`, the fullpkgpath in canonical
//! form (the main subpackage written without `,-main`).  For each dumped path the
//! database gets a `_Paths` row (PkgPath the bare directory, Canonical itself), an
//! alias `<path>,-<main>` for the main subpackage of a multi-package port (Canonical
//! the path), `_Ports`, `_Flavors`, `_Multi` and `_Depends` rows.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::Path;

use rusqlite::{params, Connection, OptionalExtension};

pub const SCHEMA: &str = include_str!("../fixtures/sqlports-schema.sql");

/// Parsed dump-vars: path -> VAR -> value, paths in first-seen order.
pub fn parse_dump(text: &str) -> Vec<(String, BTreeMap<String, String>)> {
    let mut order: Vec<(String, BTreeMap<String, String>)> = Vec::new();
    let mut index: BTreeMap<String, usize> = BTreeMap::new();
    for line in text.lines() {
        let Some((left, value)) = line.split_once('=') else {
            continue;
        };
        let Some((path, var)) = left.rsplit_once('.') else {
            continue;
        };
        if path.is_empty()
            || var.is_empty()
            || !var
                .bytes()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')
        {
            continue;
        }
        let i = *index.entry(path.to_string()).or_insert_with(|| {
            order.push((path.to_string(), BTreeMap::new()));
            order.len() - 1
        });
        order[i].1.insert(var.to_string(), value.trim().to_string());
    }
    order
}

fn dir_of(path: &str) -> &str {
    path.split(',').next().unwrap_or(path)
}

struct Builder<'a> {
    conn: &'a Connection,
}

impl Builder<'_> {
    /// The id of a path row, inserted (canonical to itself) when missing.
    fn path_id(&self, full: &str) -> rusqlite::Result<i64> {
        if let Some(id) = self
            .conn
            .query_row(
                "SELECT Id FROM _Paths WHERE FullPkgPath = ?1",
                [full],
                |r| r.get(0),
            )
            .optional()?
        {
            return Ok(id);
        }
        let dir = dir_of(full);
        let dir_id = if dir == full {
            None
        } else {
            Some(self.path_id(dir)?)
        };
        self.conn.execute(
            "INSERT INTO _Paths (FullPkgPath, PkgPath, Canonical) VALUES (?1, 0, 0)",
            [full],
        )?;
        let id = self.conn.last_insert_rowid();
        self.conn.execute(
            "UPDATE _Paths SET PkgPath = ?1, Canonical = ?2 WHERE Id = ?2",
            params![dir_id.unwrap_or(id), id],
        )?;
        Ok(id)
    }

    fn alias(&self, alias: &str, canonical: i64) -> rusqlite::Result<()> {
        let id = self.path_id(alias)?;
        self.conn.execute(
            "UPDATE _Paths SET Canonical = ?1 WHERE Id = ?2",
            params![canonical, id],
        )?;
        Ok(())
    }

    fn keyword(&self, value: &str) -> rusqlite::Result<i64> {
        self.conn.execute(
            "INSERT OR IGNORE INTO _Keywords (Value) VALUES (?1)",
            [value],
        )?;
        self.conn.query_row(
            "SELECT KeyRef FROM _Keywords WHERE Value = ?1",
            [value],
            |r| r.get(0),
        )
    }
}

/// Create `db` from dump-vars text.  Fails when the text holds no path.
pub fn build(db: &Path, dump: &str) -> Result<usize, String> {
    let entries = parse_dump(dump);
    let dumped: std::collections::HashSet<&str> = entries.iter().map(|(p, _)| p.as_str()).collect();
    if entries.is_empty() {
        return Err("dump-vars output holds no pkgpath".into());
    }
    let _ = std::fs::remove_file(db);
    let mut conn = Connection::open(db).map_err(|e| format!("{}: {e}", db.display()))?;
    let e = |e: rusqlite::Error| e.to_string();
    conn.execute_batch("PRAGMA foreign_keys=OFF;").map_err(e)?;
    conn.execute_batch(SCHEMA.replace("PRAGMA foreign_keys=ON;", "").as_str())
        .map_err(e)?;
    let tx = conn.transaction().map_err(e)?;
    {
        let b = Builder { conn: &tx };
        tx.execute(
            "INSERT INTO Meta (SchemaVersion, Hash, CreationDate) VALUES ('7.0', '', datetime('now'))",
            [],
        )
        .map_err(e)?;
        for (path, vars) in &entries {
            let id = b.path_id(path).map_err(e)?;
            let get = |k: &str| vars.get(k).cloned().unwrap_or_default();
            tx.execute(
                "INSERT OR REPLACE INTO _Ports (FullPkgPath, COMMENT, FULLPKGNAME, PKGNAME, PKGSPEC, PKGSTEM, PSEUDO_FLAVOR, SUBPACKAGE)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                params![
                    id,
                    get("COMMENT"),
                    get("FULLPKGNAME"),
                    get("FULLPKGNAME"),
                    get("PKGSPEC"),
                    get("PKGSTEM"),
                    get("PSEUDO_FLAVOR"),
                    get("SUBPACKAGE")
                ],
            )
            .map_err(e)?;
            for (n, f) in get("FLAVOR").split_whitespace().enumerate() {
                let k = b.keyword(f).map_err(e)?;
                tx.execute(
                    "INSERT OR IGNORE INTO _Flavors (FullPkgPath, Value, N) VALUES (?1, ?2, ?3)",
                    params![id, k, n as i64],
                )
                .map_err(e)?;
            }
            let multi: Vec<String> = get("MULTI_PACKAGES")
                .split_whitespace()
                .map(str::to_string)
                .collect();
            let sub = get("SUBPACKAGE");
            if multi.len() > 1 && !sub.is_empty() && sub == multi[0] {
                // The main subpackage: `path,-main` is an alias of `path`.
                b.alias(&format!("{path},{sub}"), id).map_err(e)?;
                // Its _Multi rows: every subpackage of this flavor that was dumped.
                let flavorless = path.clone();
                for s in &multi {
                    let sp = if *s == multi[0] {
                        flavorless.clone()
                    } else {
                        format!("{flavorless},{s}")
                    };
                    if dumped.contains(sp.as_str()) {
                        let sid = b.path_id(&sp).map_err(e)?;
                        tx.execute(
                            "INSERT OR IGNORE INTO _Multi (FullPkgPath, Value, SubPkgPath) VALUES (?1, ?2, ?3)",
                            params![id, s, sid],
                        )
                        .map_err(e)?;
                    }
                }
            }
            for (ty, var) in [(0, "LIB_DEPENDS"), (1, "RUN_DEPENDS"), (2, "BUILD_DEPENDS")] {
                for (n, dep) in get(var).split_whitespace().enumerate() {
                    let dpath = dep.rsplit(':').next().unwrap_or(dep);
                    let did = b.path_id(dpath).map_err(e)?;
                    tx.execute(
                        "INSERT INTO _Depends (FullPkgPath, FullDepends, PkgSpec, Rest, DependsPath, Type, N)
                         VALUES (?1, ?2, ?3, '', ?4, ?5, ?6)",
                        params![id, dep, dep.split_once(':').map(|x| x.0).unwrap_or(""), did, ty, n as i64],
                    )
                    .map_err(e)?;
                }
            }
        }
    }
    tx.commit().map_err(e)?;
    Ok(entries.len())
}
