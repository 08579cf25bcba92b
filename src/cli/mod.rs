//! The `ebssnap` command line (docs/guides/runner.md, "The CLI"). A thin shell: one file per command,
//! each with its flags, help examples and `exec`; this file only parses and dispatches.

mod adopt;
mod common;
mod coverage;
mod migrate;
mod output;
mod restore;
mod restore_test;
mod run;
mod snapshots;
mod sweep;
mod volumes;
mod webhook;

use clap::{Parser, Subcommand};

pub use common::{EXIT_CODES, Global, LogFormat, init_logging};

use crate::error::Error;

#[derive(Debug, Parser)]
#[command(
    name = "ebssnap",
    version,
    about = "Scheduled EBS snapshots: the ebssnap runner",
    long_about = "Scheduled EBS snapshots: the ebssnap runner.\n\n\
        Runs what the ebssnap Terraform provider schedules (a target's snapshots, a policy's \
        sweep), by hand or as an AWS Lambda function (when AWS_LAMBDA_RUNTIME_API is set), and \
        shows what a selector matches and what each snapshot's future is.",
    after_help = EXIT_CODES,
    after_long_help = concat!(
        "Examples:\n",
        "  ebssnap volumes --policy std --target web      # what target web selects now\n",
        "  ebssnap run --policy std --target web --dry-run\n",
        "  ebssnap snapshots --policy std                 # restore points and when each expires\n",
        "  ebssnap restore --volume vol-0abc123 --dry-run # a volume back from its newest restore point\n",
        "\n",
        "Environment: AWS_REGION, AWS_PROFILE, AWS_ENDPOINT_URL; NO_COLOR; and the runner's own\n",
        "settings, listed in docs/guides/runner.md (the log filter, the fallback signing secret, ...).\n",
        "\n",
        "Exit codes:\n",
        "  0  ok\n",
        "  1  some volume (or ticket, or check) failed; every other one was still processed\n",
        "  2  bad input or configuration (a flag, a file, an unknown policy or target)\n",
        "  3  AWS or infrastructure error (credentials, network, throttling); may succeed on retry",
    )
)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Snapshot a target's volumes now and prune its expired snapshots
    #[command(after_help = format!("{}\n\n{EXIT_CODES}", run::EXAMPLES))]
    Run(run::RunArgs),
    /// Prune every snapshot of a policy (removed targets and orphans included), as its
    /// `_policy` schedule does
    #[command(after_help = format!("{}\n\n{EXIT_CODES}", sweep::EXAMPLES))]
    Sweep(sweep::SweepArgs),
    /// Show the volumes a target's selector matches now
    #[command(after_help = format!("{}\n\n{EXIT_CODES}", volumes::EXAMPLES))]
    Volumes(volumes::VolumesArgs),
    /// Failure tickets: send a sample, or receive and verify them locally
    #[command(after_help = format!("{}\n\n{EXIT_CODES}", webhook::EXAMPLES))]
    Webhook(webhook::WebhookArgs),
    /// Take over ebs_snapper's snapshots (DeleteOn) of the volumes a target selects, so the
    /// policy's retention and minimum apply to them. Lists them unless --yes; never deletes
    #[command(after_help = format!("{}\n\n{EXIT_CODES}", adopt::EXAMPLES))]
    Adopt(adopt::AdoptArgs),
    /// Move to ebssnap from another tool
    #[command(after_help = format!("{}\n\n{EXIT_CODES}", migrate::EXAMPLES))]
    Migrate(migrate::MigrateArgs),
    /// List a policy's managed snapshots and when each expires
    #[command(after_help = format!("{}\n\n{EXIT_CODES}", snapshots::EXAMPLES))]
    Snapshots(snapshots::SnapshotsArgs),
    /// Restore a volume from a restore point (list and clean up the volumes restores made)
    Restore(Box<restore::RestoreArgs>),
    /// Which volumes of the account are protected, stale, excluded or unprotected
    #[command(after_help = format!("{}\n\n{EXIT_CODES}", coverage::EXAMPLES))]
    Coverage(coverage::CoverageArgs),
    /// Test restores now: restore a sample of a policy's restore points, time them, delete the
    /// volumes, and tag each tested snapshot with the outcome
    #[command(after_help = format!("{}\n\n{EXIT_CODES}", restore_test::EXAMPLES))]
    RestoreTest(restore_test::RestoreTestArgs),
}

/// Runs the CLI and returns the process exit code.
pub async fn main(cli: Cli) -> i32 {
    match dispatch(&cli).await {
        Ok(code) => code,
        Err(e) => {
            report_error(&e, cli.command.json());
            e.exit_code()
        }
    }
}

/// An error that stopped a command: one line on stderr, then what to do when that is known;
/// with `--json`, also `{"error": {"code", "message", "action"}}` on stdout (the exit code is
/// the same).
fn report_error(e: &Error, json: bool) {
    eprintln!("ebssnap: error: {e}");
    if let Some(action) = e.action() {
        eprintln!("  what to do: {action}");
    }
    if json {
        output::print_json(&serde_json::json!({
            "error": {"code": e.code(), "message": e.to_string(), "action": e.action()}
        }));
    }
}

impl Command {
    /// Whether the command was asked for JSON output.
    fn json(&self) -> bool {
        match self {
            Command::Run(a) => a.common.json,
            Command::Sweep(a) => a.common.json,
            Command::Volumes(a) => a.json,
            Command::Adopt(a) => a.json,
            Command::Snapshots(a) => a.json,
            Command::Restore(a) => a.json(),
            Command::RestoreTest(a) => a.common.json,
            Command::Coverage(a) => a.json,
            Command::Webhook(_) | Command::Migrate(_) => false,
        }
    }
}

async fn dispatch(cli: &Cli) -> Result<i32, Error> {
    let g = &cli.global;
    match &cli.command {
        Command::Run(a) => run::exec(g, a).await,
        Command::Sweep(a) => sweep::exec(g, a).await,
        Command::Volumes(a) => volumes::exec(g, a).await,
        Command::Webhook(a) => webhook::exec(g, a).await,
        Command::Adopt(a) => adopt::exec(g, a).await,
        Command::Migrate(a) => migrate::exec(g, a).await,
        Command::Snapshots(a) => snapshots::exec(g, a).await,
        Command::Restore(a) => restore::exec(g, a).await,
        Command::RestoreTest(a) => restore_test::exec(g, a).await,
        Command::Coverage(a) => coverage::exec(g, a).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    /// Every command explains itself (issue 26 item 5): a description, help on every flag, and
    /// on every command that runs something, examples and the exit codes.
    fn problems(cmd: &clap::Command, path: &str, out: &mut Vec<String>) {
        if cmd
            .get_about()
            .is_none_or(|a| a.to_string().trim().is_empty())
        {
            out.push(format!("{path}: no description"));
        }
        for arg in cmd.get_arguments() {
            let id = arg.get_id().as_str();
            if matches!(id, "help" | "version") {
                continue;
            }
            let help = arg
                .get_help()
                .or(arg.get_long_help())
                .map(|h| h.to_string())
                .unwrap_or_default();
            if help.trim().is_empty() {
                out.push(format!("{path} --{id}: no help text"));
            }
        }
        let subs: Vec<&clap::Command> = cmd.get_subcommands().collect();
        if subs.is_empty() {
            let after = cmd
                .get_after_help()
                .map(|h| h.to_string())
                .unwrap_or_default();
            let examples = after
                .lines()
                .filter(|l| l.starts_with("  ") && !l.trim_start().starts_with('#'))
                .filter(|l| l.contains("ebssnap "))
                .count();
            if !after.contains("Examples:") || examples < 2 {
                out.push(format!("{path}: fewer than two examples"));
            }
            if !after.contains("Exit codes:") {
                out.push(format!("{path}: no exit codes"));
            }
        }
        for s in subs {
            problems(s, &format!("{path} {}", s.get_name()), out);
        }
    }

    #[test]
    fn every_command_and_flag_explains_itself() {
        let cli = Cli::command();
        let mut out = Vec::new();
        for s in cli.get_subcommands() {
            problems(s, &format!("ebssnap {}", s.get_name()), &mut out);
        }
        assert!(out.is_empty(), "{}", out.join("\n"));
        // The check can fail: a flag without help is found.
        let bare = clap::Command::new("x")
            .about("x")
            .arg(clap::Arg::new("flag").long("flag"));
        let mut found = Vec::new();
        problems(&bare, "x", &mut found);
        assert!(
            found.iter().any(|p| p.contains("--flag: no help")),
            "{found:?}"
        );
    }
}
