//! `ebssnap coverage`: which volumes of the account are protected, stale, excluded or
//! unprotected (docs/guides/coverage.md).

use clap::Args;
use jiff::Timestamp;

use super::common::{Global, connect, parse_now};
use super::output::{emit, outln, print_json};
use crate::core::coverage::Status;
use crate::error::{Error, exit};
use crate::runner::coverage;

pub const EXAMPLES: &str = "\
Examples:
  # Every volume of the account and Region, by status, with totals
  ebssnap coverage
  # Only policy std's targets, as JSON
  ebssnap coverage --policy std --json
  # A CI gate: exit 1 when any volume is unprotected
  ebssnap coverage --fail-on unprotected";

#[derive(Debug, Args)]
pub struct CoverageArgs {
    /// Only these policies' targets and restore points (repeatable; default: every policy)
    #[arg(long)]
    pub policy: Vec<String>,
    /// Clock for the age decisions (RFC 3339; default: now)
    #[arg(long, value_parser = parse_now)]
    pub now: Option<Timestamp>,
    /// Exit 1 when any volume has this status: protected, stale, excluded or unprotected
    #[arg(long, value_parser = parse_status)]
    pub fail_on: Vec<Status>,
    /// Print the report as one JSON object on stdout
    #[arg(long)]
    pub json: bool,
}

fn parse_status(s: &str) -> Result<Status, String> {
    Status::parse(s)
        .ok_or_else(|| format!("{s:?} is not a status: protected, stale, excluded or unprotected"))
}

fn label(s: Status) -> &'static str {
    match s {
        Status::Protected => "protected",
        Status::Stale => "stale",
        Status::Excluded => "excluded",
        Status::Unprotected => "unprotected",
    }
}

pub async fn exec(g: &Global, a: &CoverageArgs) -> Result<i32, Error> {
    let clients = connect(g).await;
    let now = a.now.unwrap_or_else(Timestamp::now);
    let r = coverage::coverage(&clients, &a.policy, now).await?;
    if a.json {
        print_json(&r);
    } else {
        let mut buf = String::new();
        outln!(
            buf,
            "coverage of account {} in {}, {} volume(s), {} target(s)",
            r.account.as_deref().unwrap_or("?"),
            r.region.as_deref().unwrap_or("?"),
            r.volumes.len(),
            r.targets.len()
        );
        for status in [
            Status::Unprotected,
            Status::Stale,
            Status::Excluded,
            Status::Protected,
        ] {
            let rows: Vec<_> = r.volumes.iter().filter(|v| v.status == status).collect();
            if rows.is_empty() {
                continue;
            }
            let gib: i64 = rows.iter().map(|v| v.size_gb).sum();
            outln!(
                buf,
                "\n{} ({} volume(s), {gib} GiB)",
                label(status).to_uppercase(),
                rows.len()
            );
            for v in rows {
                let why = match status {
                    Status::Excluded => format!("excluded by {}", v.excluded_by.join(", ")),
                    Status::Unprotected if !v.disabled_targets.is_empty() => {
                        format!("only disabled targets: {}", v.disabled_targets.join(", "))
                    }
                    Status::Unprotected => "selected by no target".into(),
                    _ => v.targets.join(", "),
                };
                let age = v
                    .newest_restore_point_age_seconds
                    .map(|s| format!("newest restore point {:.1} h old", s as f64 / 3600.0))
                    .unwrap_or_else(|| "no restore point".into());
                outln!(
                    buf,
                    "  {:<22} {:>6} GiB  {:<20} {:<30} {age}",
                    v.volume_id,
                    v.size_gb,
                    v.name.as_deref().unwrap_or("-"),
                    why
                );
            }
        }
        for w in &r.warnings {
            outln!(buf, "warning: {w}");
        }
        emit(&buf);
    }
    let failing = r.volumes.iter().any(|v| a.fail_on.contains(&v.status));
    Ok(if failing {
        exit::VOLUME_FAILED
    } else {
        exit::OK
    })
}
