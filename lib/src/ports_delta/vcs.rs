//! Running cvs or git on the checkout for `--cvs` and `--git`.

use std::path::Path;
use std::process::{Command, Stdio};

use crate::Error;

use super::*;

/// Read `<dir>/CVS/<file>`, trimmed.
pub(super) fn cvs_admin(dir: &Path, file: &str) -> Option<String> {
    std::fs::read_to_string(dir.join("CVS").join(file))
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
}

/// A revision or tag given on the command line, as [`crate::names::Revision`]
/// takes it.
pub(super) fn check_rev(what: &str, r: &str) -> Result<(), Error> {
    crate::names::Revision::parse(r)
        .map(|_| ())
        .map_err(|_| Error::Usage(format!("invalid {what} {r:?}")))
}

/// Run a VCS command and return its stdout, or fail with its stderr.
pub(super) fn run_vcs(mut cmd: Command, what: &str) -> Result<Vec<u8>, Error> {
    let program = cmd.get_program().to_string_lossy().into_owned();
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .map_err(|e| Error::Command {
            program: program.clone(),
            message: if e.kind() == std::io::ErrorKind::NotFound {
                format!("not found: {e} (on Debian: apt-get install {program})")
            } else {
                e.to_string()
            },
        })?;
    // cvs rdiff exits 1 when there are differences; only a message on stderr with
    // no output, or an exit above 1, is a failure.
    let code = out.status.code().unwrap_or(-1);
    let failed = match program.as_str() {
        "cvs" => !(code == 0 || (code == 1 && out.stderr.is_empty())),
        _ => code != 0,
    };
    if failed {
        return Err(Error::Command {
            program,
            message: format!(
                "{what} failed ({}): {}",
                out.status,
                crate::tail::short(&String::from_utf8_lossy(&out.stderr), 3)
            ),
        });
    }
    Ok(out.stdout)
}

/// Run the VCS of `--cvs` or `--git` on the checkout in `dir`: its output, the
/// name it goes by in messages, and the module prefix of its paths.
pub(super) fn run_vcs_diff(
    args: &Args,
    dir: &Path,
) -> Result<(String, &'static str, String), Error> {
    let (stdout, name, module) = if let Some(spec) = &args.cvs {
        let (base, branch) = spec
            .split_once(':')
            .ok_or_else(|| Error::Usage(format!("--cvs {spec:?}: expected BASE:BRANCH")))?;
        check_rev("cvs tag", base)?;
        check_rev("cvs tag", branch)?;
        let module = cvs_admin(dir, "Repository")
            .map(|m| m.rsplit('/').next().unwrap_or(&m).to_string())
            .unwrap_or_else(|| "ports".into());
        let mut cmd = Command::new("cvs");
        cmd.current_dir(dir);
        if let Some(root) = cvs_admin(dir, "Root") {
            cmd.arg("-d").arg(root);
        }
        cmd.args(["-q", "rdiff", "-s", "-r", base, "-r", branch, &module]);
        (run_vcs(cmd, "cvs rdiff")?, "cvs rdiff", module)
    } else {
        let spec = args.git.as_deref().unwrap_or_default();
        let (base, branch) = spec
            .split_once("..")
            .ok_or_else(|| Error::Usage(format!("--git {spec:?}: expected BASE..BRANCH")))?;
        check_rev("git revision", base)?;
        check_rev("git revision", branch)?;
        let mut cmd = Command::new("git");
        cmd.arg("-C")
            .arg(dir)
            .args([
                "-c",
                "core.quotepath=off",
                "diff",
                "--name-status",
                "--no-color",
            ])
            .args([base, branch, "--"]);
        (run_vcs(cmd, "git diff")?, "git diff", "ports".to_string())
    };
    let text = String::from_utf8(stdout)
        .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned());
    Ok((text, name, module))
}
