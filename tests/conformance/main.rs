//! The conformance suite: the tools under OpenBSD's own make, over the real
//! OpenBSD ports tree and its real sqlports database, from the conformance kit
//! (`bin/openbsd-make`, `ports-2021-01.tar.xz`, `sqlports-2021-01.db.xz`).
//!
//! The kit is found in PORTFLOW_CONFORMANCE, else in `../shared/conformance`
//! beside the checkout.  `cargo test --test conformance` runs the suite; it is
//! not part of `cargo test --workspace` (the kit is not in the repository), and
//! `.ci/run` runs it when the kit is there.  Without the kit every test fails,
//! saying where it looked: it never skips silently.
//!
//! Each test prints one line of the suite's table (`conformance: <point>: ...`).

#[path = "../integration/support.rs"]
mod support;

mod delta;
mod real;
