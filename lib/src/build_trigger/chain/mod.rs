//! The chain: read from a file, one stage a line, and run over one batch stage
//! to stage without a shell.
//!
//! Each stage runs in a process group of its own, its standard input the
//! standard output of the stage before (the batch file for the first), the
//! last one's standard output `cur/<id>.out`.  Its standard error goes to
//! `cur/<id>.<n>.<stage>.stderr`, a file build-trigger locks (flock) before the
//! stage starts: the stage holds the lock through its standard error as long as
//! any of its processes lives, which is how a build-trigger started after a
//! crash tells that the chain of the crashed one is still at work.

mod file;
mod orphans;
mod run;
mod stop;

use std::time::Duration;

pub use file::*;
pub use orphans::*;
pub use run::*;
pub use stop::*;

/// The variables every stage gets, which `${NAME}` in the chain file may name
/// although they are known only when a batch runs.
pub const BATCH_VARS: [&str; 2] = ["PORTFLOW_BATCH", "PORTFLOW_SPOOL"];

/// How often the heartbeat file is written while a chain runs.
pub const HEARTBEAT: Duration = Duration::from_secs(5);

/// Exit statuses that do not fail a batch: 0 success, 1 ran to the end but
/// something failed (a build), 3 nothing to do.
pub const OK_STATUS: [i32; 3] = [0, 1, 3];

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;
    use std::fs;

    fn vars() -> HashMap<String, String> {
        [("DEST", "signer:/build/amd64"), ("SP", "a b")]
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn expansion() {
        let v = vars();
        assert_eq!(expand("plain", &v), Ok(vec![Part::Lit("plain".into())]));
        assert_eq!(
            expand("--to=${DEST}/x", &v),
            Ok(vec![Part::Lit("--to=signer:/build/amd64/x".into())])
        );
        assert_eq!(expand("${SP}", &v), Ok(vec![Part::Lit("a b".into())]));
        assert_eq!(
            expand("log-${PORTFLOW_BATCH}.txt", &v),
            Ok(vec![
                Part::Lit("log-".into()),
                Part::Batch(0),
                Part::Lit(".txt".into())
            ])
        );
        assert_eq!(expand("$HOME$", &v), Ok(vec![Part::Lit("$HOME$".into())]));
        assert!(expand("${NOPE}", &v).unwrap_err().contains("--env NOPE="));
        assert!(expand("${DEST", &v).is_err());
        assert!(expand("${1x}", &v).is_err());
    }

    #[test]
    fn loading() {
        let t = tempfile::tempdir().unwrap();
        let f = t.path().join("chain");
        fs::write(
            &f,
            "# the chain\n\n  cat  \nenv --x=${DEST} ${PORTFLOW_BATCH}\n",
        )
        .unwrap();
        let c = Chain::load(&f, &[("DEST".into(), "d".into())]).unwrap();
        assert_eq!(c.stages.len(), 2);
        assert_eq!(c.stages[0].name, "cat");
        assert!(c.stages[0].program.is_absolute());
        assert_eq!(c.stages[1].args(&["b1", "/s"]), ["--x=d", "b1"]);
        fs::write(&f, "cat\nno-such-program-here\n").unwrap();
        let e = Chain::load(&f, &[]).unwrap_err().to_string();
        assert!(
            e.ends_with(":2: no-such-program-here: command not found in PATH"),
            "{e}"
        );
        fs::write(&f, "cat ${NOT_SET_ANYWHERE_X}\n").unwrap();
        let e = Chain::load(&f, &[]).unwrap_err().to_string();
        assert!(e.contains(":1: ${NOT_SET_ANYWHERE_X} is not set"), "{e}");
        fs::write(&f, "# nothing\n").unwrap();
        assert!(Chain::load(&f, &[]).is_err());
        fs::write(&f, "${PORTFLOW_BATCH}\n").unwrap();
        assert!(Chain::load(&f, &[]).is_err());
    }

    #[test]
    fn the_culprit() {
        let pipe = Some(Ended::Signal(signal_hook::consts::SIGPIPE));
        let e = |c| Some(Ended::Exit(c));
        assert_eq!(culprit(&[e(0), e(1), e(3)]), None);
        assert_eq!(culprit(&[e(0), e(2), e(0)]), Some(1));
        assert_eq!(culprit(&[e(0), pipe.clone(), e(2)]), Some(2));
        assert_eq!(culprit(&[pipe.clone(), e(0)]), Some(0));
        assert_eq!(culprit(&[e(75), e(4)]), Some(0));
        assert_eq!(culprit(&[e(0), Some(Ended::Signal(9))]), Some(1));
    }

    #[test]
    fn file_words() {
        assert_eq!(
            stderr_name("b.1", 2, "build-list"),
            "b.1.2.build-list.stderr"
        );
        assert_eq!(stderr_name("b", 1, "fail.sh"), "b.1.fail_sh.stderr");
    }
}
