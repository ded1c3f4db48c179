//! build-trigger: run the per-architecture chain over the batches dropped into a
//! spool directory (DESIGN.md section 5).
//!
//! ```text
//! spool/tmp/     writers make their files here, then rename(2) them into new/
//! spool/new/     <id>.jsonl: batches waiting
//! spool/cur/     <id>.jsonl: the batch running, with <id>.status (the heartbeat),
//!                <id>.out (the chain's output) and <id>.<n>.<stage>.stderr
//! spool/done/    <id>.jsonl: every record of the finished chain; <id>.log
//! spool/failed/  <id>.jsonl: the same for a failed chain, and a notice naming
//!                the stage and quoting its standard error
//! ```
//!
//! [`spool`] holds the layout, the locks, `submit`, `wait` and `status`;
//! [`chain`] the chain file and the running of one batch through it, stage to
//! stage without a shell; [`watch`] the loop of `watch` and `run-once`.

pub mod chain;
pub mod plan;
pub mod spool;
pub mod watch;

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::diag::{Diag, Exit};
use crate::Error;

pub const TOOL: &str = "build-trigger";

/// Where the tools are installed (`make install PREFIX=...` builds them with
/// PORTFLOW_PREFIX set): /usr/local by default.
pub const PREFIX: &str = match option_env!("PORTFLOW_PREFIX") {
    Some(p) => p,
    None => "/usr/local",
};

/// The chain file used without --chain: `PREFIX/share/portflow/chain`, which
/// `make install` installs.
pub fn default_chain() -> PathBuf {
    Path::new(PREFIX).join("share/portflow/chain")
}

/// Run the per-architecture chain over the batches of a spool directory.
#[derive(clap::Parser, Debug)]
#[command(
    name = "build-trigger",
    version,
    max_term_width = 100,
    subcommand_required = true,
    arg_required_else_help = true
)]
pub struct Args {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(clap::Subcommand, Debug)]
pub enum Command {
    /// Run the chain over every batch dropped into the spool, as they come.
    Watch(WatchArgs),
    /// Run the chain over the batches queued, then exit (for cron).
    RunOnce(RunOnceArgs),
    /// Drop a batch into the spool.
    Submit(SubmitArgs),
    /// Wait for a batch to finish and print its records.
    Wait(WaitArgs),
    /// Print the batches queued and running, as records.
    Status(StatusArgs),
    /// Stop serving the spool once the port at work is done; the batch is
    /// resumed at the next start.
    Drain(DrainArgs),
    /// Print what the spool's chain would build of a list (its build-list
    /// stage with -n, run by the watch serving the spool), nothing built.
    Plan(PlanArgs),
    /// Queue the failed entries of a finished batch again, as a batch of its
    /// own (`<batch>.retryN`); what finished is not built again.
    Retry(RetryArgs),
}

#[derive(clap::Args, Debug)]
pub struct RetryArgs {
    #[command(flatten)]
    pub spool: SpoolArg,
    /// The finished batch.
    #[arg(value_name = "BATCH")]
    pub batch: String,
    /// The failed entries to build again (full pkgpaths); all of them when
    /// none is named.
    #[arg(value_name = "PKGPATH")]
    pub pkgpaths: Vec<String>,
}

#[derive(clap::Args, Debug)]
pub struct PlanArgs {
    #[command(flatten)]
    pub spool: SpoolArg,
    /// Give up after this long (30s, 10m) when no watch answers, and exit 75.
    #[arg(long, value_name = "DURATION", default_value = "2m",
          value_parser = crate::time::parse_duration)]
    pub timeout: Duration,
    /// The list: port records or full pkgpaths, one a line; standard input when
    /// none or -.
    #[arg(value_name = "FILE")]
    pub file: Option<PathBuf>,
}

#[derive(clap::Args, Debug)]
pub struct DrainArgs {
    #[command(flatten)]
    pub spool: SpoolArg,
}

/// The spool directory, which every subcommand takes.
#[derive(clap::Args, Debug, Clone)]
pub struct SpoolArg {
    /// The spool directory; its subdirectories are made when missing.
    #[arg(long, value_name = "DIR")]
    pub spool: PathBuf,
}

/// What `watch` and `run-once` share.
#[derive(clap::Args, Debug, Clone)]
pub struct ChainArgs {
    #[command(flatten)]
    pub spool: SpoolArg,
    /// The chain file: one stage a line.
    #[arg(long, value_name = "FILE", default_value_os_t = default_chain())]
    pub chain: PathBuf,
    /// Remove the finished batches of done/ and failed/ (their records and
    /// logs) older than DAYS days.
    #[arg(long, value_name = "DAYS", default_value_t = 30)]
    pub keep_days: u32,
    /// Set a variable in the environment of the stages, and for ${KEY} in the
    /// chain file (repeatable).
    #[arg(long = "env", value_name = "KEY=VALUE", value_parser = parse_env)]
    pub env: Vec<(String, String)>,
}

#[derive(clap::Args, Debug)]
pub struct WatchArgs {
    #[command(flatten)]
    pub chain: ChainArgs,
    /// Look into new/ this often even when no event came (30s, 5m).
    #[arg(long, value_name = "DURATION", default_value = "30s",
          value_parser = crate::time::parse_duration)]
    pub rescan: Duration,
}

#[derive(clap::Args, Debug)]
pub struct RunOnceArgs {
    #[command(flatten)]
    pub chain: ChainArgs,
}

#[derive(clap::Args, Debug)]
pub struct SubmitArgs {
    #[command(flatten)]
    pub spool: SpoolArg,
    /// The batch id [default: the id of the input's batch record, or a new one].
    #[arg(long, value_name = "ID")]
    pub batch: Option<String>,
    /// The list: port records or full pkgpaths, one a line; standard input when
    /// none or -.
    #[arg(value_name = "FILE")]
    pub file: Option<PathBuf>,
}

#[derive(clap::Args, Debug)]
pub struct WaitArgs {
    #[command(flatten)]
    pub spool: SpoolArg,
    /// Give up after this long (30s, 10m, 2h) and exit 75.
    #[arg(long, value_name = "DURATION", value_parser = crate::time::parse_duration)]
    pub timeout: Option<Duration>,
    /// The batch id.
    #[arg(value_name = "BATCH")]
    pub batch: String,
}

#[derive(clap::Args, Debug)]
pub struct StatusArgs {
    #[command(flatten)]
    pub spool: SpoolArg,
    /// Also list the batches in done/ and failed/.
    #[arg(short = 'a', long = "all")]
    pub all: bool,
    /// Records (JSON Lines) even on a terminal, where a table is printed
    /// otherwise.
    #[arg(long)]
    pub json: bool,
}

pub use crate::host::parse_env;

pub fn main() -> std::process::ExitCode {
    crate::diag::tool_main(TOOL, run)
}

pub fn run(args: &Args, diag: &Diag) -> Result<Exit, Error> {
    // A watcher without a terminal (rc.d) also tells syslog.
    if matches!(args.command, Command::Watch(_) | Command::RunOnce(_))
        && !std::io::IsTerminal::is_terminal(&std::io::stderr())
    {
        diag.syslog();
    }
    match &args.command {
        Command::Watch(a) => watch::serve(&a.chain, Some(a.rescan), diag),
        Command::RunOnce(a) => watch::serve(&a.chain, None, diag),
        Command::Submit(a) => spool::submit(a, diag),
        Command::Wait(a) => spool::wait(a, diag),
        Command::Status(a) => spool::status(a, diag),
        Command::Retry(a) => spool::retry(a, diag),
        Command::Plan(a) => plan::plan(a, diag),
        Command::Drain(a) => {
            let s = spool::Spool::existing(&a.spool.spool)?;
            s.ask_drain()?;
            diag.tty_note(format_args!(
                "drain asked: the chain stops once its port is done; the next watch or run-once goes on"
            ));
            Ok(Exit::Success)
        }
    }
}
