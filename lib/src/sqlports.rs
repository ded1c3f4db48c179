//! Read access to the sqlports database (sqlports(5)).
//!
//! Only exact lookups: `_Paths` rows whose bare directory (`PkgPath`) is the
//! directory asked for, and the `Canonical` row of a full pkgpath.  No `LIKE`:
//! `_` and `%` in port names are literal, and `net/tor` never finds `net/torsocks`.

use std::path::{Path, PathBuf};

use rusqlite::{Connection, OpenFlags, OptionalExtension};

use crate::Error;

/// The default database of the sqlports package.
pub const DEFAULT_DB: &str = "/usr/local/share/sqlports";

pub struct Sqlports {
    path: PathBuf,
    conn: Connection,
}

impl Sqlports {
    /// Open `path` read-only and check that it is a sqlports database.  A missing
    /// file or another kind of file is a configuration error naming it.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, Error> {
        let path = path.as_ref().to_path_buf();
        let fail = |message: String| Error::Database {
            path: path.clone(),
            message,
        };
        match std::fs::metadata(&path) {
            Ok(m) if m.is_file() => {}
            Ok(_) => return Err(fail("not a file (is it the sqlports database?)".into())),
            Err(e) => {
                return Err(fail(format!(
                    "cannot open sqlports database: {e} (set --db or SQLPORTS; pkg_add sqlports)"
                )))
            }
        }
        let conn = Connection::open_with_flags(
            &path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(|e| fail(format!("cannot open sqlports database: {e}")))?;
        let db = Sqlports { path, conn };
        db.check()?;
        Ok(db)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn check(&self) -> Result<(), Error> {
        let fail = |message: String| Error::Database {
            path: self.path.clone(),
            message,
        };
        let found: Result<i64, _> = self.conn.query_row(
            "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = '_Paths'",
            [],
            |r| r.get(0),
        );
        match found {
            Ok(1) => {}
            Ok(_) => return Err(fail("not a sqlports database (no _Paths table)".into())),
            Err(e) => return Err(fail(format!("not a sqlports database: {e}"))),
        }
        // The columns this module reads.
        self.conn
            .prepare("SELECT Id, FullPkgPath, PkgPath, Canonical FROM _Paths LIMIT 0")
            .map_err(|e| fail(format!("not a sqlports database: _Paths: {e}")))?;
        Ok(())
    }

    fn db_error(&self, e: rusqlite::Error) -> Error {
        Error::Database {
            path: self.path.clone(),
            message: e.to_string(),
        }
    }

    /// Every canonical full pkgpath of the port in `dir` that has a port behind it
    /// (a `_Ports` row), sorted; empty when the database does not know the
    /// directory.
    pub fn expand(&self, dir: &str) -> Result<Vec<String>, Error> {
        let mut st = self
            .conn
            .prepare_cached(
                // Every path of a port is its directory or starts with
                // `<dir>,`: the range over the unique FullPkgPath index finds
                // them without a scan (sqlports has no index on PkgPath), and
                // the PkgPath test keeps the lookup exact.
                "SELECT DISTINCT c.FullPkgPath
                   FROM _Paths d
                   JOIN _Paths p ON p.PkgPath = d.Id
                   JOIN _Paths c ON c.Id = p.Canonical
                  WHERE d.FullPkgPath = ?1
                    AND (p.FullPkgPath = ?1
                         OR (p.FullPkgPath >= ?1 || ',' AND p.FullPkgPath < ?1 || '-'))
                    -- only paths with a port behind them, as the Ports view:
                    -- the bare directory of a port whose FLAVOR is fixed
                    -- (archivers/py-brotli) is none, its `,python3` path is
                    AND EXISTS (SELECT 1 FROM _Ports x WHERE x.FullPkgPath = c.Id)
                  ORDER BY c.FullPkgPath",
            )
            .map_err(|e| self.db_error(e))?;
        let rows = st
            .query_map([dir], |r| r.get::<_, String>(0))
            .map_err(|e| self.db_error(e))?;
        rows.collect::<Result<Vec<_>, _>>()
            .map_err(|e| self.db_error(e))
    }

    /// The canonical form of a full pkgpath the database knows.
    pub fn canonical(&self, fullpkgpath: &str) -> Result<Option<String>, Error> {
        let mut st = self
            .conn
            .prepare_cached(
                "SELECT c.FullPkgPath FROM _Paths p JOIN _Paths c ON c.Id = p.Canonical
                  WHERE p.FullPkgPath = ?1",
            )
            .map_err(|e| self.db_error(e))?;
        st.query_row([fullpkgpath], |r| r.get::<_, String>(0))
            .optional()
            .map_err(|e| self.db_error(e))
    }
}
