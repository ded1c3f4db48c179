//! The process-level mechanisms every tool shares: signalling a whole process
//! group (kill(2) on `-pgid`, through rustix: std has no killpg), children
//! waited for with a deadline and killed with their group, and the name of
//! this host (uname(2)).

use std::io;
use std::process::{Child, ExitStatus};
use std::time::{Duration, Instant};

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

/// A child the tool waits for and kills when it gives up on it: with its whole
/// process group when it was started as the leader of one
/// (`Command::process_group(0)`).  Dropped before it was reaped (an error on
/// the way out), it is killed and reaped: nothing it started is left behind.
#[derive(Debug)]
pub struct Supervised {
    child: Child,
    group: bool,
    reaped: Option<ExitStatus>,
}

/// How often [`Supervised::wait_until`] looks.
const POLL: Duration = Duration::from_millis(20);

impl Supervised {
    /// Supervise `child`; `group`: it leads a process group of its own.
    pub fn new(child: Child, group: bool) -> Self {
        Supervised {
            child,
            group,
            reaped: None,
        }
    }

    /// Its process id (and group id when it leads one).
    pub fn id(&self) -> u32 {
        self.child.id()
    }

    /// The child, for its standard streams.
    pub fn child_mut(&mut self) -> &mut Child {
        &mut self.child
    }

    pub fn try_wait(&mut self) -> io::Result<Option<ExitStatus>> {
        if self.reaped.is_none() {
            self.reaped = self.child.try_wait()?;
        }
        Ok(self.reaped)
    }

    pub fn wait(&mut self) -> io::Result<ExitStatus> {
        match self.reaped {
            Some(s) => Ok(s),
            None => {
                let s = self.child.wait()?;
                self.reaped = Some(s);
                Ok(s)
            }
        }
    }

    /// Kill it, with its group.  Only while it is not reaped: until then its
    /// id cannot belong to another process or group.
    pub fn kill(&mut self) {
        if self.reaped.is_none() {
            if self.group {
                signal_group(self.id(), Sig::Kill);
            }
            let _ = self.child.kill();
        }
    }

    /// Wait until it exits (`Some`), or until `deadline` passes or `give_up`
    /// says so: then it is killed and reaped, and the answer is `None`.
    pub fn wait_until(
        &mut self,
        deadline: Option<Instant>,
        give_up: impl Fn() -> bool,
    ) -> io::Result<Option<ExitStatus>> {
        loop {
            if let Some(s) = self.try_wait()? {
                return Ok(Some(s));
            }
            if give_up() || deadline.is_some_and(|d| Instant::now() >= d) {
                self.kill();
                self.wait()?;
                return Ok(None);
            }
            let pause = match deadline {
                Some(d) => POLL.min(d.saturating_duration_since(Instant::now())),
                None => POLL,
            };
            std::thread::sleep(pause);
        }
    }
}

impl Drop for Supervised {
    fn drop(&mut self) {
        if self.reaped.is_none() {
            self.kill();
            let _ = self.child.wait();
        }
    }
}

/// Run `cmd` (no standard input; its output and errors read whole) in a
/// process group of its own, within `timeout` (past it, killed with its
/// group): how it ended, its standard output and error; or why it could not
/// be run, or that it did not answer.
pub fn output_within(
    cmd: std::process::Command,
    timeout: Duration,
) -> Result<(ExitStatus, String, String), String> {
    output_within_from(cmd, std::process::Stdio::null(), timeout)
}

/// [`output_within`], its standard input `stdin`.
pub fn output_within_from(
    mut cmd: std::process::Command,
    stdin: std::process::Stdio,
    timeout: Duration,
) -> Result<(ExitStatus, String, String), String> {
    use std::io::Read;
    use std::os::unix::process::CommandExt;
    use std::process::Stdio;
    let prog = cmd.get_program().to_string_lossy().into_owned();
    let child = cmd
        .stdin(stdin)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .map_err(|e| format!("{prog}: cannot run it: {e}"))?;
    let mut child = Supervised::new(child, true);
    fn reader<R: Read + Send + 'static>(r: Option<R>) -> std::thread::JoinHandle<String> {
        std::thread::spawn(move || {
            let mut s = String::new();
            if let Some(mut r) = r {
                let _ = r.read_to_string(&mut s);
            }
            s
        })
    }
    let out = reader(child.child_mut().stdout.take());
    let err = reader(child.child_mut().stderr.take());
    let st = child
        .wait_until(Some(Instant::now() + timeout), || false)
        .map_err(|e| format!("{prog}: {e}"))?;
    let (o, e) = (
        out.join().unwrap_or_default(),
        err.join().unwrap_or_default(),
    );
    match st {
        Some(st) => Ok((st, o, e)),
        None => Err(format!(
            "{prog}: no answer in {}s: killed",
            timeout.as_secs()
        )),
    }
}

/// An executable regular file.
pub fn executable(p: &std::path::Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// A program as exec(3) finds it: a name with a `/` is that file; a bare name
/// is looked for in the directories of `path` (a PATH value; the process's
/// PATH when `None`, `/usr/bin:/bin` without one), an empty one being `.`.
pub fn find_program(
    name: &std::ffi::OsStr,
    path: Option<&std::ffi::OsStr>,
) -> Option<std::path::PathBuf> {
    use std::path::Path;
    if name.is_empty() {
        return None;
    }
    let p = Path::new(name);
    if name.as_encoded_bytes().contains(&b'/') {
        return executable(p).then(|| p.to_path_buf());
    }
    let env = std::env::var_os("PATH");
    let dirs = path
        .or(env.as_deref())
        .unwrap_or(std::ffi::OsStr::new("/usr/bin:/bin"));
    std::env::split_paths(dirs)
        .map(|d| {
            if d.as_os_str().is_empty() {
                Path::new(".").join(p)
            } else {
                d.join(p)
            }
        })
        .find(|c| executable(c))
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

    #[test]
    fn supervised() {
        use std::os::unix::process::CommandExt;
        let t = tempfile::tempdir().unwrap();
        let pidfile = t.path().join("pid");
        let spawn = |secs: &str| {
            std::process::Command::new("sh")
                .arg("-c")
                .arg(format!(
                    "sleep {secs} & echo $! > '{}'; wait",
                    pidfile.display()
                ))
                .process_group(0)
                .spawn()
                .unwrap()
        };
        // The sleep the shell started is gone (or a zombie nobody reaped yet).
        let gone = || {
            std::thread::sleep(Duration::from_millis(100));
            let pid = std::fs::read_to_string(&pidfile).unwrap();
            match std::fs::read_to_string(format!("/proc/{}/stat", pid.trim())) {
                Err(_) => true,
                Ok(stat) => stat
                    .rsplit(')')
                    .next()
                    .is_some_and(|rest| rest.trim_start().starts_with(['Z', 'X'])),
            }
        };
        let started = |s: &Supervised| {
            while !pidfile.exists() {
                std::thread::sleep(Duration::from_millis(10));
            }
            s.id()
        };
        // Past its deadline: killed with its group (the sleep it started too).
        let mut s = Supervised::new(spawn("30"), true);
        started(&s);
        let start = Instant::now();
        let deadline = Some(start + Duration::from_millis(200));
        assert_eq!(s.wait_until(deadline, || false).unwrap(), None);
        assert!(start.elapsed() < Duration::from_secs(5));
        assert!(gone());
        // Given up on by the caller.
        std::fs::remove_file(&pidfile).unwrap();
        let mut s = Supervised::new(spawn("30"), true);
        started(&s);
        assert_eq!(s.wait_until(None, || true).unwrap(), None);
        assert!(gone());
        // One that ends in time.
        let mut s = Supervised::new(spawn("0"), true);
        let st = s.wait_until(Some(Instant::now() + Duration::from_secs(30)), || false);
        assert!(st.unwrap().is_some_and(|st| st.success()));
        // Dropped unreaped: killed with its group.
        std::fs::remove_file(&pidfile).unwrap();
        let s = Supervised::new(spawn("30"), true);
        started(&s);
        drop(s);
        assert!(gone());
    }
}
