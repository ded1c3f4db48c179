//! A real OpenSSH server for the tests, on a free loopback port, with its own host
//! key, a user key made here and a known_hosts file written here: nothing of the
//! host's own ssh setup is read or changed (but for /run/sshd, the privilege
//! separation directory sshd insists on, made when missing and running as root).
//!
//! ```ignore
//! let sshd = Sshd::start();                    // or Sshd::builder().env("PATH", p).start()
//! rsync-list --rsh "$(sshd.rsh())" "$(sshd.destination()):/some/dir"
//! sshd.command("build-trigger status")         // a ready ssh Command
//! ```
//!
//! The server runs as the current user (root here: `PermitRootLogin
//! prohibit-password`, `StrictModes no` for the temporary directory), public key
//! authentication only; the client config has `BatchMode yes`,
//! `StrictHostKeyChecking yes` and `IdentitiesOnly yes`, so that nothing ever
//! prompts.  The server is killed when the value is dropped.

#![allow(dead_code)]

use std::fs;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::require;

/// The server program (re-exec needs the absolute path).
pub const SSHD: &str = "/usr/sbin/sshd";
/// The loopback address the server listens on.
pub const HOST: &str = "127.0.0.1";
const INSTALL: &str = "openssh-server openssh-client";
/// How long the server may take to listen.
const START_TIMEOUT: Duration = Duration::from_secs(10);

/// A running sshd; killed on drop.
pub struct Sshd {
    child: Child,
    port: u16,
    user: String,
    ssh_config: PathBuf,
    log: PathBuf,
    // Last: removed after the server is killed.
    dir: tempfile::TempDir,
}

/// Settings of the server before it starts.
#[derive(Default)]
pub struct Builder {
    env: Vec<(String, String)>,
}

impl Builder {
    /// Set a variable in every session the server starts (sshd_config `SetEnv`),
    /// such as a PATH holding the binaries under test.
    pub fn env(mut self, name: &str, value: &str) -> Self {
        assert!(
            !name.is_empty()
                && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
                && !value.contains(['"', '\n', '\\']),
            "SetEnv {name}={value:?}: not usable in sshd_config"
        );
        self.env.push((name.into(), value.into()));
        self
    }

    /// Start the server; panics with the install hint when OpenSSH is missing,
    /// with the server's log when it does not start.
    pub fn start(self) -> Sshd {
        require_openssh();
        let dir = tempfile::Builder::new()
            .prefix("portflow-sshd.")
            .tempdir()
            .expect("tempdir");
        let p = dir.path();
        assert!(
            !p.to_string_lossy().contains([' ', '"', '\'']),
            "{}: a temporary directory usable in a --rsh value",
            p.display()
        );
        let user = current_user();
        let host_key = p.join("ssh_host_ed25519_key");
        let id = p.join("id_ed25519");
        keygen(&host_key, "portflow-test-host");
        keygen(&id, "portflow-test-user");
        let authorized = p.join("authorized_keys");
        fs::copy(p.join("id_ed25519.pub"), &authorized).expect("authorized_keys");
        privsep_dir();

        let log = p.join("sshd.log");
        let mut last_log = String::new();
        for _ in 0..5 {
            let port = free_port();
            let _ = fs::remove_file(&log);
            let config = p.join("sshd_config");
            fs::write(&config, self.sshd_config(port, &host_key, &authorized))
                .expect("write sshd_config");
            let mut child = Command::new(SSHD)
                .arg("-D")
                .arg("-f")
                .arg(&config)
                .arg("-E")
                .arg(&log)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap_or_else(|e| panic!("cannot run {SSHD}: {e}"));
            match wait_listening(&mut child, &log, port) {
                Ok(()) => {
                    let sshd = Sshd {
                        child,
                        port,
                        user,
                        ssh_config: p.join("ssh_config"),
                        log,
                        dir,
                    };
                    sshd.write_client_files(&host_key, &id);
                    return sshd;
                }
                Err(text) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    last_log = text;
                    // The port may have been taken between free_port() and the
                    // bind: try another; any other failure is final.
                    if !(last_log.contains("Address already in use")
                        || last_log.contains("Cannot bind"))
                    {
                        break;
                    }
                }
            }
        }
        panic!("{SSHD} did not start:\n{last_log}");
    }

    fn sshd_config(&self, port: u16, host_key: &Path, authorized: &Path) -> String {
        let mut c = format!(
            "Port {port}\n\
             ListenAddress {HOST}\n\
             HostKey \"{}\"\n\
             PidFile none\n\
             AuthorizedKeysFile \"{}\"\n\
             AuthenticationMethods publickey\n\
             PubkeyAuthentication yes\n\
             PasswordAuthentication no\n\
             KbdInteractiveAuthentication no\n\
             PermitRootLogin prohibit-password\n\
             StrictModes no\n\
             UsePAM no\n\
             UseDNS no\n\
             PrintMotd no\n\
             PermitUserEnvironment no\n\
             MaxStartups 100\n\
             LogLevel INFO\n\
             Subsystem sftp internal-sftp\n",
            host_key.display(),
            authorized.display(),
        );
        for (k, v) in &self.env {
            c.push_str(&format!("SetEnv {k}=\"{v}\"\n"));
        }
        c
    }
}

impl Sshd {
    /// Start a server with the default settings.
    pub fn start() -> Sshd {
        Builder::default().start()
    }

    pub fn builder() -> Builder {
        Builder::default()
    }

    /// The port the server listens on, on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The user logged in as: the current user.
    pub fn user(&self) -> &str {
        &self.user
    }

    /// The destination for ssh and rsync: `user@127.0.0.1` (append `:path` for
    /// rsync).
    pub fn destination(&self) -> String {
        format!("{}@{HOST}", self.user)
    }

    /// The generated client config: Port, User, IdentityFile, IdentitiesOnly,
    /// UserKnownHostsFile, StrictHostKeyChecking yes, BatchMode yes.
    pub fn ssh_config(&self) -> &Path {
        &self.ssh_config
    }

    /// The ssh arguments that select the config: `-F <ssh_config>`.
    pub fn ssh_args(&self) -> Vec<String> {
        vec!["-F".into(), self.ssh_config.display().to_string()]
    }

    /// The remote shell as one string, for `rsync --rsh` or `rsync-list --rsh`:
    /// `ssh -F <ssh_config>` (the path has no spaces).
    pub fn rsh(&self) -> String {
        format!("ssh -F {}", self.ssh_config.display())
    }

    /// The same remote shell towards a port where nothing listens: an unreachable
    /// host (the command line `-p` wins over the config's Port).
    pub fn rsh_unreachable(&self) -> String {
        format!("{} -p {}", self.rsh(), closed_port())
    }

    /// `ssh -F <config> user@127.0.0.1 <remote>`, ready to run; the remote
    /// command line is read by the user's shell on the server.
    pub fn command(&self, remote: &str) -> Command {
        let mut c = Command::new("ssh");
        c.args(self.ssh_args())
            .arg(self.destination())
            .arg("--")
            .arg(remote);
        c
    }

    /// The server's directory: keys, configs and its log.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// What the server logged so far (for assertion messages).
    pub fn log(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn write_client_files(&self, host_key: &Path, id: &Path) {
        let p = self.dir.path();
        let public = fs::read_to_string(host_key.with_extension("pub")).expect("host key");
        let mut words = public.split_whitespace();
        let (alg, key) = (words.next().expect("key type"), words.next().expect("key"));
        let known = p.join("known_hosts");
        fs::write(&known, format!("[{HOST}]:{} {alg} {key}\n", self.port)).expect("known_hosts");
        let config = format!(
            "Host *\n\
             \tPort {}\n\
             \tUser {}\n\
             \tIdentityFile \"{}\"\n\
             \tIdentitiesOnly yes\n\
             \tIdentityAgent none\n\
             \tUserKnownHostsFile \"{}\"\n\
             \tGlobalKnownHostsFile /dev/null\n\
             \tStrictHostKeyChecking yes\n\
             \tCheckHostIP no\n\
             \tUpdateHostKeys no\n\
             \tBatchMode yes\n\
             \tPasswordAuthentication no\n\
             \tKbdInteractiveAuthentication no\n\
             \tConnectTimeout 5\n\
             \tControlMaster no\n\
             \tControlPath none\n\
             \tLogLevel ERROR\n",
            self.port,
            self.user,
            id.display(),
            known.display(),
        );
        fs::write(&self.ssh_config, config).expect("ssh_config");
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Wait until the server says it listens; its log when it exits or times out.
fn wait_listening(child: &mut Child, log: &Path, port: u16) -> Result<(), String> {
    let want = format!("Server listening on {HOST} port {port}.");
    let deadline = Instant::now() + START_TIMEOUT;
    loop {
        let text = fs::read_to_string(log).unwrap_or_default();
        if text.contains(&want) {
            return Ok(());
        }
        match child.try_wait() {
            Ok(Some(st)) => return Err(format!("{st}\n{text}")),
            Ok(None) => {}
            Err(e) => return Err(format!("wait: {e}\n{text}")),
        }
        if Instant::now() > deadline {
            return Err(format!("not listening after {START_TIMEOUT:?}\n{text}"));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Fail, with the install hint, when OpenSSH is not installed.
pub fn require_openssh() {
    assert!(
        Path::new(SSHD).is_file(),
        "this test needs `{SSHD}`: install it with `apt-get install {INSTALL}` (or run .ci/run as root)"
    );
    require("ssh", INSTALL);
    require("ssh-keygen", INSTALL);
}

/// A loopback port nothing listens on (at the time of asking).
pub fn closed_port() -> u16 {
    free_port()
}

fn free_port() -> u16 {
    TcpListener::bind((HOST, 0))
        .and_then(|l| l.local_addr())
        .expect("a free loopback port")
        .port()
}

fn keygen(path: &Path, comment: &str) {
    let out = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", comment, "-f"])
        .arg(path)
        .stdin(Stdio::null())
        .output()
        .expect("run ssh-keygen");
    assert!(
        out.status.success(),
        "ssh-keygen: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn current_user() -> String {
    let out = Command::new("id").arg("-un").output().expect("run id -un");
    assert!(out.status.success(), "id -un failed");
    String::from_utf8(out.stdout)
        .expect("utf-8 user name")
        .trim()
        .to_string()
}

/// sshd refuses to start without its privilege separation directory, which
/// systemd makes at boot and a container lacks.
fn privsep_dir() {
    let d = Path::new("/run/sshd");
    if !d.is_dir() && current_user() == "root" {
        let _ = fs::create_dir_all(d);
        let _ = Command::new("chmod").arg("0755").arg(d).status();
    }
}

#[test]
fn sshd_runs_commands_with_its_own_keys() {
    let sshd = Sshd::builder().env("PORTFLOW_TEST", "it works").start();
    let out = sshd
        .command("echo \"$PORTFLOW_TEST\"; id -un")
        .stdin(Stdio::null())
        .output()
        .expect("run ssh");
    assert!(
        out.status.success(),
        "ssh: {}\nsshd log:\n{}",
        String::from_utf8_lossy(&out.stderr),
        sshd.log()
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        format!("it works\n{}\n", sshd.user())
    );
    // Another host key: refused, never asked about (BatchMode).
    let other = sshd.dir().join("other_key");
    keygen(&other, "other");
    let pubkey = fs::read_to_string(other.with_extension("pub")).unwrap();
    let known = sshd.dir().join("known_hosts");
    let mut words = pubkey.split_whitespace();
    let (alg, key) = (words.next().unwrap(), words.next().unwrap());
    let good = fs::read_to_string(&known).unwrap();
    fs::write(&known, format!("[{HOST}]:{} {alg} {key}\n", sshd.port())).unwrap();
    let out = sshd
        .command("true")
        .stdin(Stdio::null())
        .output()
        .expect("run ssh");
    assert_eq!(out.status.code(), Some(255));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("HOST IDENTIFICATION HAS CHANGED"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    fs::write(&known, good).unwrap();
}
