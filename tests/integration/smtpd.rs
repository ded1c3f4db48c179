//! A real SMTP server for the tests, on a loopback port: Debian's python3-aiosmtpd
//! running `tests/integration/smtpd.py` under `/usr/bin/python3` (not the
//! python3 first on PATH, which may lack the module).
//!
//! ```ignore
//! let mut smtpd = Smtpd::start();              // a free port on 127.0.0.1
//! run("summary-mail", &["--smtp", &smtpd.addr(), ...], input, &[]);
//! let m = &smtpd.messages()[0];                // every message received, in order
//! assert_eq!(m.header("Subject"), Some("stable packages to sign"));
//! smtpd.stop();                                // connections now refused
//! smtpd.restart();                             // the same port, the same messages
//! ```
//!
//! Each message is written by the server, before it answers 250 to the DATA, as
//! `<id>.eml` (the DATA as received) and `<id>.json` (envelope, TLS, headers and
//! the decoded text body, parsed by Python's `email` package) in its directory;
//! the ids sort in arrival order, across restarts.  The server is killed when the
//! [`Smtpd`] is dropped, and exits by itself when the test process goes away (it
//! watches its standard input).

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Debian's python, which has Debian's python3-aiosmtpd.
pub const PYTHON: &str = "/usr/bin/python3";

/// How long a start may take.
const START_TIMEOUT: Duration = Duration::from_secs(20);

/// Fail (never skip) when the server cannot run here.
pub fn require_aiosmtpd() {
    let ok = Command::new(PYTHON)
        .args(["-c", "import aiosmtpd"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        ok,
        "the test SMTP server needs Debian's python3 with aiosmtpd: \
         install it with `apt-get install python3-aiosmtpd` (or run .ci/run as root)"
    );
}

fn script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/integration/smtpd.py")
}

/// How the server behaves.
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// Offer STARTTLS with this certificate (PEM) and key (PEM).
    pub starttls: Option<(PathBuf, PathBuf)>,
    /// Answer every DATA with this reply, such as `451 4.3.0 try again later`,
    /// and keep nothing.
    pub reject: Option<String>,
    /// With `reject`, only the messages that hold this text.
    pub reject_containing: Option<String>,
}

/// One message as the server received it.
#[derive(Debug, Clone)]
pub struct Received {
    /// The file name stem; sorts in arrival order.
    pub id: String,
    /// The envelope sender (`MAIL FROM`).
    pub mail_from: String,
    /// The envelope recipients (`RCPT TO`).
    pub rcpt_tos: Vec<String>,
    /// The parameters of `MAIL FROM` (`BODY=8BITMIME`, ...).
    pub mail_options: Vec<String>,
    /// The name the client gave in EHLO.
    pub helo: String,
    /// Whether the session was encrypted with STARTTLS.
    pub tls: bool,
    /// The header fields, in order, unfolded and decoded.
    pub headers: Vec<(String, String)>,
    /// The body, transfer encoding undone; empty for a multipart message.
    pub body: String,
    /// The message exactly as received.
    pub raw: Vec<u8>,
}

impl Received {
    /// The first header field of that name (any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Every header field of that name, in order.
    pub fn headers_named(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// The body's lines.
    pub fn lines(&self) -> Vec<&str> {
        self.body.lines().collect()
    }
}

/// A running test SMTP server (see the module documentation).
pub struct Smtpd {
    child: Option<Child>,
    port: u16,
    dir: tempfile::TempDir,
    received: PathBuf,
    opts: Options,
}

impl Smtpd {
    /// Start on a free port of 127.0.0.1.
    pub fn start() -> Smtpd {
        Smtpd::start_with(Options::default())
    }

    pub fn start_with(opts: Options) -> Smtpd {
        require_aiosmtpd();
        let dir = tempfile::tempdir().expect("tempdir for the SMTP server");
        let mut s = Smtpd {
            child: None,
            port: 0,
            received: dir.path().join("received"),
            dir,
            opts,
        };
        s.spawn(0);
        s
    }

    /// The port it listens on (the same after a restart).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `127.0.0.1:<port>`, as `--smtp` takes it.
    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The directory the messages are written to.
    pub fn dir(&self) -> &Path {
        &self.received
    }

    pub fn is_running(&mut self) -> bool {
        match &mut self.child {
            Some(c) => matches!(c.try_wait(), Ok(None)),
            None => false,
        }
    }

    /// Stop the server: connections to its port are refused from now on.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Start it again on the same port, with the same messages and options.
    pub fn restart(&mut self) {
        self.stop();
        self.spawn(self.port);
    }

    /// Start it again on the same port with other options.
    pub fn restart_with(&mut self, opts: Options) {
        self.stop();
        self.opts = opts;
        self.spawn(self.port);
    }

    fn spawn(&mut self, port: u16) {
        let log = self.dir.path().join("smtpd.stderr");
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            let mut cmd = Command::new(PYTHON);
            cmd.arg(script())
                .args(["--host", "127.0.0.1", "--port", &port.to_string()])
                .arg("--dir")
                .arg(&self.received);
            if let Some((cert, key)) = &self.opts.starttls {
                cmd.arg("--starttls").arg(cert).arg(key);
            }
            if let Some(r) = &self.opts.reject {
                cmd.args(["--reject", r]);
            }
            if let Some(c) = &self.opts.reject_containing {
                cmd.args(["--reject-containing", c]);
            }
            let stderr = std::fs::File::create(&log).expect("create the server's log");
            let mut child = cmd
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(stderr)
                .spawn()
                .unwrap_or_else(|e| panic!("cannot run {PYTHON}: {e}"));
            let out = child.stdout.take().expect("stdout");
            let (tx, rx) = mpsc::channel();
            std::thread::spawn(move || {
                let mut line = String::new();
                let _ = BufReader::new(out).read_line(&mut line);
                let _ = tx.send(line);
            });
            let line = rx
                .recv_timeout(deadline.saturating_duration_since(Instant::now()))
                .unwrap_or_default();
            if let Some(p) = line.trim().strip_prefix("READY ") {
                self.port = p.parse().expect("the port the server printed");
                self.child = Some(child);
                return;
            }
            let _ = child.kill();
            let _ = child.wait();
            let err = std::fs::read_to_string(&log).unwrap_or_default();
            // The port of a server just stopped may take a moment to be free.
            if port != 0 && err.contains("in use") && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(100));
                continue;
            }
            panic!("the test SMTP server did not start (port {port}):\n{err}");
        }
    }

    /// Every message received so far, in arrival order.
    pub fn messages(&self) -> Vec<Received> {
        let dir = &self.received;
        let mut ids: Vec<String> = std::fs::read_dir(dir)
            .into_iter()
            .flatten()
            .filter_map(|e| {
                let name = e.ok()?.file_name().to_string_lossy().into_owned();
                name.strip_suffix(".json").map(str::to_string)
            })
            .filter(|n| !n.starts_with('.'))
            .collect();
        ids.sort();
        ids.into_iter()
            .map(|id| {
                let json = std::fs::read_to_string(dir.join(format!("{id}.json")))
                    .expect("read a received message's .json");
                let v: serde_json::Value = serde_json::from_str(&json).expect("parse its .json");
                if let Some(e) = v["error"].as_str() {
                    panic!("the server could not parse message {id}: {e}");
                }
                let strs = |k: &str| -> Vec<String> {
                    v[k].as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(|s| s.as_str().map(str::to_string))
                        .collect()
                };
                Received {
                    raw: std::fs::read(dir.join(format!("{id}.eml"))).expect("read its .eml"),
                    mail_from: v["mail_from"].as_str().unwrap_or_default().to_string(),
                    rcpt_tos: strs("rcpt_tos"),
                    mail_options: strs("mail_options"),
                    helo: v["helo"].as_str().unwrap_or_default().to_string(),
                    tls: v["tls"].as_bool().unwrap_or(false),
                    headers: v["headers"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(|h| {
                            Some((h[0].as_str()?.to_string(), h[1].as_str()?.to_string()))
                        })
                        .collect(),
                    body: v["body"].as_str().unwrap_or_default().to_string(),
                    id,
                }
            })
            .collect()
    }

    /// What the server wrote on its standard error (tracebacks, aiosmtpd's log).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("smtpd.stderr")).unwrap_or_default()
    }
}

impl Drop for Smtpd {
    fn drop(&mut self) {
        self.stop();
    }
}

#[test]
fn smtpd_receives_stops_and_restarts_on_its_port() {
    use std::io::Write;
    use std::net::TcpStream;

    let mut s = Smtpd::start();
    let port = s.port();
    assert!(port > 0);
    // A minimal SMTP session by hand.
    let mut c = TcpStream::connect(s.addr()).expect("connect");
    c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut r = BufReader::new(c.try_clone().unwrap());
    // One reply: lines up to the one whose code is followed by a space.
    let mut reply = || {
        let mut all = String::new();
        loop {
            let mut line = String::new();
            r.read_line(&mut line).expect("read a reply");
            all.push_str(&line);
            if line.len() < 4 || line.as_bytes()[3] != b'-' {
                return all;
            }
        }
    };
    assert!(reply().starts_with("220"));
    for (cmd, code) in [
        ("EHLO test.example\r\n", "250"),
        ("MAIL FROM:<a@example.org>\r\n", "250"),
        ("RCPT TO:<b@example.org>\r\n", "250"),
        ("DATA\r\n", "354"),
        (
            "From: a@example.org\r\nTo: b@example.org\r\nSubject: hi\r\n\r\nline one\r\n..dot\r\n.\r\n",
            "250",
        ),
    ] {
        c.write_all(cmd.as_bytes()).unwrap();
        let got = reply();
        assert!(got.starts_with(code), "{cmd:?} -> {got:?}");
    }
    let _ = c.write_all(b"QUIT\r\n");
    drop(c);
    let m = s.messages();
    assert_eq!(m.len(), 1, "{}", s.log());
    assert_eq!(m[0].mail_from, "a@example.org");
    assert_eq!(m[0].rcpt_tos, ["b@example.org"]);
    assert_eq!(m[0].helo, "test.example");
    assert!(!m[0].tls);
    assert_eq!(m[0].header("subject"), Some("hi"));
    assert_eq!(m[0].lines(), ["line one", ".dot"]);
    assert!(m[0].raw.ends_with(b".dot\r\n"));

    s.stop();
    assert!(!s.is_running());
    assert!(TcpStream::connect(("127.0.0.1", port)).is_err());
    s.restart();
    assert_eq!(s.port(), port);
    assert!(TcpStream::connect(("127.0.0.1", port)).is_ok());
    assert_eq!(s.messages().len(), 1, "messages survive a restart");
}
