//! The process-level mechanisms every tool shares: signalling a whole process
//! group (kill(2) on `-pgid`, through rustix: std has no killpg) and the name of
//! this host (uname(2)).

use rustix::process::{kill_process_group, test_kill_process_group, Pid, Signal};

/// The signals the tools send to the process groups they started.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sig {
    Term,
    Kill,
}

fn pid(pgid: u32) -> Option<Pid> {
    // Never 0 (the caller's own group) nor 1 (init).
    if pgid <= 1 {
        return None;
    }
    i32::try_from(pgid).ok().and_then(Pid::from_raw)
}

/// Send `sig` to process group `pgid`; false when there is no such group.
pub fn signal_group(pgid: u32, sig: Sig) -> bool {
    let Some(p) = pid(pgid) else {
        return false;
    };
    let s = match sig {
        Sig::Term => Signal::TERM,
        Sig::Kill => Signal::KILL,
    };
    kill_process_group(p, s).is_ok()
}

/// Does a process of group `pgid` live?
pub fn group_alive(pgid: u32) -> bool {
    pid(pgid).is_some_and(|p| test_kill_process_group(p).is_ok())
}

/// The name of this host (uname(2) nodename), when it has one.
pub fn hostname() -> Option<String> {
    let u = rustix::system::uname();
    let n = u.nodename().to_string_lossy().trim().to_string();
    (!n.is_empty()).then_some(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups() {
        use std::os::unix::process::CommandExt;
        let mut c = std::process::Command::new("sleep")
            .arg("30")
            .process_group(0)
            .spawn()
            .unwrap();
        let g = c.id();
        assert!(group_alive(g));
        assert!(signal_group(g, Sig::Kill));
        let _ = c.wait();
        assert!(!group_alive(g));
        assert!(!signal_group(0, Sig::Term) && !signal_group(1, Sig::Term));
        assert!(hostname().is_some());
    }
}
