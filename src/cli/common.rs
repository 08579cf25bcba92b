//! What several commands share: the global flags, the flags of a run, which documents a command
//! reads, the clients, and logging.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::Arc;

use clap::{Args, ValueEnum};
use jiff::Timestamp;

use crate::aws::{Clients, ConnectOptions};
use crate::core::doc::{self, PolicyDocument, TargetDocument};
use crate::error::Error;
use crate::runner::documents;
use crate::runner::{self, RunOptions};

/// The exit codes every command documents in its help.
pub const EXIT_CODES: &str = "\
Exit codes:
  0  ok
  1  some volume (or ticket, or check) failed; every other one was still processed
  2  bad input or configuration (a flag, a file, an unknown policy or target)
  3  AWS or infrastructure error (credentials, network, throttling); may succeed on retry";

/// Flags every command takes, shown under their own heading.
#[derive(Debug, Args)]
pub struct Global {
    /// AWS Region (default: the standard AWS chain: AWS_REGION, then the profile's region)
    #[arg(
        long,
        global = true,
        env = "AWS_REGION",
        help_heading = "Global options"
    )]
    pub region: Option<String>,
    /// Named AWS profile from ~/.aws/config (SSO and credential_process profiles work)
    #[arg(long, global = true, help_heading = "Global options")]
    pub profile: Option<String>,
    /// One endpoint for every AWS service (emulators, VPC endpoints)
    #[arg(
        long,
        global = true,
        env = "AWS_ENDPOINT_URL",
        help_heading = "Global options"
    )]
    pub endpoint_url: Option<String>,
    /// Log format on stderr (the level: EBSSNAP_LOG, e.g. EBSSNAP_LOG=ebssnap=debug)
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text, help_heading = "Global options")]
    pub log_format: LogFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

/// Flags of a run or a sweep.
#[derive(Debug, Args)]
pub struct Common {
    /// Clock for age decisions (RFC 3339); never backdates anything in AWS
    #[arg(long, value_parser = parse_now)]
    pub now: Option<Timestamp>,
    /// Only read (Describe/Get) and change nothing: print what a run would create and delete,
    /// or what a sweep would delete
    #[arg(long)]
    pub dry_run: bool,
    /// Print the report as one JSON object on stdout
    #[arg(long)]
    pub json: bool,
    /// Snapshot creations and deletions in flight at once
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub concurrency: u16,
}

/// Which target's documents a command reads: from Scheduler, or from files.
#[derive(Debug, Args)]
#[group(id = "which", required = true, multiple = true)]
pub struct Which {
    /// Policy name (reads the documents from EventBridge Scheduler); needs --target
    #[arg(long, group = "which", requires = "target")]
    pub policy: Option<String>,
    /// Target name (with --policy)
    #[arg(long, requires = "policy")]
    pub target: Option<String>,
    /// Target document from a file instead of Scheduler ("-" for stdin)
    #[arg(long, group = "which", conflicts_with = "policy")]
    pub input: Option<PathBuf>,
    /// Policy document from a file (with --input); default: read it from Scheduler
    #[arg(long, requires = "input")]
    pub policy_input: Option<PathBuf>,
}

pub fn parse_now(s: &str) -> Result<Timestamp, String> {
    s.parse::<Timestamp>()
        .map_err(|e| format!("expected an RFC 3339 time such as 2026-11-26T05:00:00Z: {e}"))
}

pub fn read_file(path: &PathBuf) -> Result<String, Error> {
    if path.as_os_str() == "-" {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut s)
            .map_err(|e| Error::Input(format!("reading stdin: {e}")))?;
        return Ok(s);
    }
    std::fs::read_to_string(path)
        .map_err(|e| Error::Input(format!("reading {}: {e}", path.display())))
}

pub async fn connect(g: &Global) -> Clients {
    Clients::connect(&connect_options(g)).await
}

/// Where and as whom the global flags say to connect.
pub fn connect_options(g: &Global) -> ConnectOptions {
    ConnectOptions {
        region: g.region.clone(),
        profile: g.profile.clone(),
        endpoint_url: g.endpoint_url.clone(),
        ..Default::default()
    }
}

/// The documents of a run, and the target schedule's interval when read from Scheduler.
pub async fn documents(
    clients: &Clients,
    which: &Which,
) -> Result<(PolicyDocument, TargetDocument, Option<jiff::SignedDuration>), Error> {
    if let Some(path) = &which.input {
        let target = doc::parse_target(&read_file(path)?)
            .map_err(|e| Error::Input(format!("{}: {e}", path.display())))?;
        let policy = match &which.policy_input {
            Some(p) => doc::parse_policy(&read_file(p)?)
                .map_err(|e| Error::Input(format!("{}: {e}", p.display())))?,
            None => documents::load_policy(clients, &target.policy).await?,
        };
        return Ok((policy, target, None));
    }
    let (Some(p), Some(t)) = (&which.policy, &which.target) else {
        return Err(Error::Input(
            "give --policy and --target, or --input".into(),
        ));
    };
    let policy = documents::load_policy(clients, p).await?;
    let (target, interval) = documents::load_target(clients, p, t).await?;
    Ok((policy, target, interval))
}

/// The run options of a CLI run: the environment's, the flags, and progress on a terminal.
pub fn options(common: &Common, run_key: Option<String>) -> RunOptions {
    let progress: Option<runner::Progress> = if std::io::stderr().is_terminal() && !common.json {
        Some(Arc::new(|what: &str, done: usize, total: usize| {
            if total >= 20 && (done.is_multiple_of(10) || done == total) {
                eprint!("\r{what}: {done}/{total}");
                if done == total {
                    eprintln!();
                }
            }
        }))
    } else {
        None
    };
    RunOptions {
        now: common.now.unwrap_or_else(Timestamp::now),
        dry_run: common.dry_run,
        run_key,
        concurrency: usize::from(common.concurrency),
        progress,
        ..RunOptions::from_env()
    }
}

/// Logs go to stderr (stdout carries reports). `EBSSNAP_LOG` (or `RUST_LOG`) overrides the level.
pub fn init_logging(format: LogFormat, default_level: &str) {
    use tracing_subscriber::EnvFilter;
    let filter = std::env::var("EBSSNAP_LOG")
        .ok()
        .or_else(|| std::env::var("RUST_LOG").ok())
        .and_then(|f| EnvFilter::try_new(f).ok())
        .unwrap_or_else(|| EnvFilter::new(format!("ebssnap={default_level},warn")));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
}
