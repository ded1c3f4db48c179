//! The library behind the portflow tools.
//!
//! Every binary in `tools/` is a thin `main` over one module here.  Shared code lives
//! in one place: [`record`] (the version-1 records), [`jsonl`] (reading and writing
//! JSON Lines and plain text lines), [`pkgpath`] (parsing and canonical form),
//! [`ports`] (the interface to the ports tree), [`sqlports`] (the sqlports database),
//! [`diag`] (diagnostics and exit status).

pub mod atomic;
pub mod diag;
pub mod error;
pub mod glob;
pub mod host;
pub mod jsonl;
pub mod mail;
pub mod names;
pub mod pkgpath;
pub mod ports;
pub mod proc;
pub mod record;
pub mod sqlports;
pub mod tail;
pub mod time;

pub mod build_list;
pub mod build_trigger;
pub mod clean_env;
pub mod collect_built;
pub mod coordinator;
pub mod pkgpath_expand;
pub mod ports_delta;
pub mod rsync_list;
pub mod summary_mail;

pub use diag::{Diag, Exit, Loc};
pub use error::Error;
pub use record::Record;
