//! Build a sqlports-compatible database from `make dump-vars` output, for the
//! demo and for trying the tools on a tree that has no sqlports package (the
//! sample ports tree, a Linux machine).  The same code builds the test and
//! benchmark databases (tests/support/sqlports.rs).
//!
//!     cd tests/fixtures/ports && MAKESYSPATH=$PWD/infrastructure/mk bmake dump-vars |
//!         cargo run --example make-sqlports -- /tmp/sqlports

#[path = "../tests/support/sqlports.rs"]
mod sqlports;

use std::io::Read;
use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [db] = args.as_slice() else {
        eprintln!("usage: make-sqlports DB < dump-vars-output");
        return ExitCode::from(2);
    };
    let mut dump = String::new();
    if let Err(e) = std::io::stdin().read_to_string(&mut dump) {
        eprintln!("make-sqlports: stdin: {e}");
        return ExitCode::from(1);
    }
    match sqlports::build(std::path::Path::new(db), &dump) {
        Ok(n) => {
            eprintln!("make-sqlports: {db}: {n} paths");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("make-sqlports: {db}: {e}");
            ExitCode::from(1)
        }
    }
}
