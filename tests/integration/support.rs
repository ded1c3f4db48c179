//! Helpers shared by the integration tests.

#![allow(dead_code)]

use std::ffi::OsStr;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

#[path = "../support/sqlports.rs"]
pub mod sqlports;

/// The path of one of the project's binaries.
pub fn bin(name: &str) -> PathBuf {
    PathBuf::from(match name {
        "ports-delta" => env!("CARGO_BIN_EXE_ports-delta"),
        "pkgpath-expand" => env!("CARGO_BIN_EXE_pkgpath-expand"),
        "build-list" => env!("CARGO_BIN_EXE_build-list"),
        "clean-env" => env!("CARGO_BIN_EXE_clean-env"),
        "collect-built" => env!("CARGO_BIN_EXE_collect-built"),
        "rsync-list" => env!("CARGO_BIN_EXE_rsync-list"),
        "summary-mail" => env!("CARGO_BIN_EXE_summary-mail"),
        "build-coordinator" => env!("CARGO_BIN_EXE_build-coordinator"),
        "build-trigger" => env!("CARGO_BIN_EXE_build-trigger"),
        other => panic!("no binary {other}"),
    })
}

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The sample ports tree.
pub fn fixture_tree() -> PathBuf {
    root().join("tests/fixtures/ports")
}

/// A clean checkout of what is committed, as a user clones it: `dir/portflow`.
pub fn clean_checkout(dir: &Path) -> PathBuf {
    let checkout = dir.join("portflow");
    let st = Command::new("git")
        .args(["clone", "-q"])
        .arg(root())
        .arg(&checkout)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .status()
        .expect("git clone");
    assert!(st.success(), "git clone failed");
    checkout
}

/// Fail (never skip) when a program the test needs is missing.
pub fn require(program: &str, debian_package: &str) {
    let found = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join(program).is_file()))
        .unwrap_or(false);
    assert!(
        found,
        "this test needs `{program}`: install it with `apt-get install {debian_package}` (or run .ci/run as root)"
    );
}

#[derive(Debug)]
pub struct Out {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Out {
    pub fn lines(&self) -> Vec<&str> {
        self.stdout.lines().collect()
    }

    pub fn records(&self) -> Vec<serde_json::Value> {
        self.stdout
            .lines()
            .map(|l| {
                serde_json::from_str(l).unwrap_or_else(|e| panic!("bad output line {l:?}: {e}"))
            })
            .collect()
    }
}

/// Run a command with `stdin` as its input; the environment is cleared of the
/// variables the tools read, then `env` is applied.
pub fn run_cmd(mut cmd: Command, stdin: &str, env: &[(&str, &str)]) -> Out {
    for v in [
        "PORTSDIR",
        "SQLPORTS",
        "MAKE",
        "PACKAGE_REPOSITORY",
        "MACHINE_ARCH",
    ] {
        cmd.env_remove(v);
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {:?}: {e}", cmd.get_program()));
    let mut sin = child.stdin.take().expect("stdin");
    let input = stdin.as_bytes().to_vec();
    let writer = std::thread::spawn(move || {
        let _ = sin.write_all(&input);
    });
    let out = child.wait_with_output().expect("wait");
    let _ = writer.join();
    Out {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Run one of the project's binaries.
pub fn run<S: AsRef<OsStr>>(name: &str, args: &[S], stdin: &str, env: &[(&str, &str)]) -> Out {
    let mut cmd = Command::new(bin(name));
    cmd.args(args);
    run_cmd(cmd, stdin, env)
}

/// Make a directory tree: `(path, contents)` files, parents created.
pub fn write_files(root: &Path, files: &[(&str, &str)]) {
    for (p, text) in files {
        let f = root.join(p);
        std::fs::create_dir_all(f.parent().expect("parent")).expect("mkdir");
        std::fs::write(&f, text).expect("write");
    }
}

/// Write an executable script (a test's helper program: a spy, a hostile
/// sendmail, a make that waits).
pub fn write_script(path: &Path, text: &str) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, text).expect("write script");
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
}

/// A port Makefile and a group Makefile (its SUBDIR list naming `subdirs`), as
/// the sample tree writes them.
pub const PORT_MK: &str = "COMMENT = test\n.include <bsd.port.mk>\n";
pub fn group_mk(subdirs: &[&str]) -> String {
    let mut s = String::from("SUBDIR =\n");
    for d in subdirs {
        s.push_str(&format!("SUBDIR += {d}\n"));
    }
    s.push_str(".include <bsd.port.subdir.mk>\n");
    s
}

/// Copy a directory tree (cp -a).
pub fn copy_tree(from: &Path, to: &Path) {
    let st = Command::new("cp")
        .arg("-a")
        .arg(from)
        .arg(to)
        .status()
        .expect("cp");
    assert!(st.success(), "cp -a {} {}", from.display(), to.display());
}

/// The modification times of the files of a directory (none when it is missing).
pub fn mtimes(dir: &Path) -> std::collections::BTreeMap<String, std::time::SystemTime> {
    std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .map(|e| {
            let e = e.expect("read_dir");
            let m = e.metadata().expect("metadata").modified().expect("mtime");
            (e.file_name().to_string_lossy().into_owned(), m)
        })
        .collect()
}

/// A terminal for a test: a tmux server of its own running `script`, in a
/// window of `width` columns; killed when dropped.
pub struct Terminal {
    sock: PathBuf,
}

impl Terminal {
    pub fn start(dir: &Path, script: &Path, width: u16) -> Terminal {
        require("tmux", "tmux");
        let t = Terminal {
            sock: dir.join("tmux.sock"),
        };
        let started = t.tmux(&[
            "new-session",
            "-d",
            "-s",
            "live",
            "-x",
            &width.to_string(),
            "-y",
            "20",
            &script.display().to_string(),
        ]);
        assert!(
            started.status.success(),
            "{}",
            String::from_utf8_lossy(&started.stderr)
        );
        t
    }

    fn tmux(&self, args: &[&str]) -> std::process::Output {
        Command::new("tmux")
            .arg("-S")
            .arg(&self.sock)
            .args(args)
            .output()
            .expect("tmux")
    }

    /// What the window shows.
    pub fn screen(&self) -> String {
        String::from_utf8_lossy(&self.tmux(&["capture-pane", "-p", "-t", "live"]).stdout)
            .into_owned()
    }

    /// The screen once `done` holds of it, or after `limit`.
    pub fn until(&self, limit: std::time::Duration, done: impl Fn(&str) -> bool) -> String {
        let start = std::time::Instant::now();
        loop {
            let s = self.screen();
            if done(&s) || start.elapsed() >= limit {
                return s;
            }
            std::thread::sleep(std::time::Duration::from_millis(200));
        }
    }
}

impl Drop for Terminal {
    fn drop(&mut self) {
        let _ = self.tmux(&["kill-server"]);
    }
}

/// What a shell command line prints on a terminal (script(1)): its standard
/// output and error as the screen has them, carriage returns dropped; and
/// whether it succeeded.
pub fn on_a_terminal(cmd: &str) -> (bool, String) {
    require("script", "bsdutils");
    let out = Command::new("script")
        .args(["-qec", cmd, "/dev/null"])
        .output()
        .expect("script");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).replace('\r', ""),
    )
}
