//! `ebssnap coverage`: which volumes are protected, stale, excluded or unprotected, in one
//! account and Region or across accounts and Regions (docs/guides/coverage.md).

use std::path::PathBuf;

use clap::Args;
use jiff::Timestamp;

use super::common::{Global, connect, connect_options, parse_now, read_file};
use super::output::{emit, outln, print_json};
use crate::core::coverage::{FailOn, Status, parse_accounts};
use crate::core::coverage_page;
use crate::error::{Error, exit};
use crate::runner::coverage::{self, CoverageReport, Request};

pub const EXAMPLES: &str = "\
Examples:
  # Every volume of the account and Region, by status, with totals
  ebssnap coverage
  # Only policy std's targets, as JSON
  ebssnap coverage --policy std --json
  # A CI gate: exit 1 when any volume is unprotected or stale
  ebssnap coverage --fail-on unprotected --fail-on stale
  # ... or when a selected volume's restore points were never restore-tested
  ebssnap coverage --fail-on untested
  # Every account of a file (one `account_id role_arn [external_id]` per line) in two Regions,
  # as one self-contained HTML page
  ebssnap coverage --accounts accounts.txt --regions us-east-1,eu-west-1 --html coverage.html";

#[derive(Debug, Args)]
pub struct CoverageArgs {
    /// Only these policies' targets and restore points (repeatable; default: every policy)
    #[arg(long)]
    pub policy: Vec<String>,
    /// Read these Regions (comma-separated or repeated; default: --region's)
    #[arg(long, value_delimiter = ',')]
    pub regions: Vec<String>,
    /// Read every account of this file, through its role: one `account_id role_arn
    /// [external_id]` per line, `#` comments (default: the caller's own account)
    #[arg(long, value_name = "FILE")]
    pub accounts: Option<PathBuf>,
    /// Clock for the age decisions (RFC 3339; default: now)
    #[arg(long, value_parser = parse_now)]
    pub now: Option<Timestamp>,
    /// Exit 1 when any volume has this status: protected, stale, excluded or unprotected; or
    /// `untested`: a selected volume none of whose restore points passed a restore test
    /// (repeatable)
    #[arg(long, value_parser = parse_fail_on)]
    pub fail_on: Vec<FailOn>,
    /// Print the report as one JSON object on stdout (schema: docs/coverage.schema.json)
    #[arg(long)]
    pub json: bool,
    /// Also write the report as one self-contained HTML page (totals, a chart of restore-point
    /// ages, a sortable and filterable table)
    #[arg(long, value_name = "FILE")]
    pub html: Option<PathBuf>,
}

fn parse_fail_on(s: &str) -> Result<FailOn, String> {
    FailOn::parse(s).ok_or_else(|| {
        format!("{s:?} is not a status: protected, stale, excluded, unprotected or untested")
    })
}

pub async fn exec(g: &Global, a: &CoverageArgs) -> Result<i32, Error> {
    let accounts = match &a.accounts {
        Some(path) => parse_accounts(&read_file(path)?)
            .map_err(|e| Error::Input(format!("{}: {e}", path.display())))?,
        None => Vec::new(),
    };
    let clients = connect(g).await;
    let req = Request {
        policies: a.policy.clone(),
        regions: a.regions.clone(),
        accounts,
        now: a.now,
    };
    let r = coverage::report(&connect_options(g), &clients, &req).await?;
    if let Some(path) = &a.html {
        let value = serde_json::to_value(&r)
            .map_err(|e| Error::Input(format!("serializing the report: {e}")))?;
        std::fs::write(path, coverage_page::render(&value))
            .map_err(|e| Error::Input(format!("writing {}: {e}", path.display())))?;
    }
    if a.json {
        print_json(&r);
    } else {
        emit(&table(&r, a.html.as_ref()));
    }
    let failing = r
        .volumes
        .iter()
        .any(|v| a.fail_on.iter().any(|f| f.matches(v)));
    let unread = r.scopes.iter().any(|s| s.error.is_some());
    Ok(if failing {
        exit::VOLUME_FAILED
    } else if unread {
        exit::AWS
    } else {
        exit::OK
    })
}

fn where_(account: &Option<String>, region: &Option<String>) -> String {
    format!(
        "{}/{}",
        account.as_deref().unwrap_or("?"),
        region.as_deref().unwrap_or("?")
    )
}

/// The report as text: per status, its volumes, with totals; then what could not be read.
fn table(r: &CoverageReport, html: Option<&PathBuf>) -> String {
    let mut buf = String::new();
    let several = r.scopes.len() > 1;
    let targets: usize = r.scopes.iter().map(|s| s.targets.len()).sum();
    let scope = if several {
        format!("{} account/Region scope(s)", r.scopes.len())
    } else {
        r.scopes
            .first()
            .map(|s| {
                format!(
                    "account {} in {}",
                    s.account.as_deref().unwrap_or("?"),
                    s.region.as_deref().unwrap_or("?")
                )
            })
            .unwrap_or_default()
    };
    outln!(
        buf,
        "coverage of {scope}, {} volume(s), {targets} target(s)",
        r.volumes.len()
    );
    for status in [
        Status::Unprotected,
        Status::Stale,
        Status::Excluded,
        Status::Protected,
    ] {
        let rows: Vec<_> = r.with_status(status).collect();
        if rows.is_empty() {
            continue;
        }
        let gib: i64 = rows.iter().map(|v| v.size_gb).sum();
        outln!(
            buf,
            "\n{} ({} volume(s), {gib} GiB)",
            status.as_str().to_uppercase(),
            rows.len()
        );
        for v in rows {
            let why = match status {
                Status::Excluded => format!(
                    "excluded by {}",
                    v.excluded_by
                        .iter()
                        .map(|e| format!("{} ({})", e.target, e.rule))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
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
            let place = if several {
                format!("{}  ", where_(&v.account, &v.region))
            } else {
                String::new()
            };
            let on = match (&v.instance_id, &v.device) {
                (Some(i), Some(d)) => format!("{i}:{d}"),
                (Some(i), None) => i.clone(),
                _ => "-".into(),
            };
            outln!(
                buf,
                "  {place}{:<22} {:>6} GiB  {:<30} {:<16} {:<30} {age}",
                v.volume_id,
                v.size_gb,
                on,
                v.name.as_deref().unwrap_or("-"),
                why
            );
        }
    }
    for s in &r.scopes {
        if let Some(e) = &s.error {
            outln!(
                buf,
                "\nNOT READ {}{}: {e}",
                where_(&s.account, &s.region),
                s.role_arn
                    .as_ref()
                    .map(|a| format!(" (role {a})"))
                    .unwrap_or_default()
            );
        }
        for w in &s.warnings {
            outln!(buf, "warning: {}: {w}", where_(&s.account, &s.region));
        }
    }
    if let Some(p) = html {
        outln!(buf, "\nwrote {}", p.display());
    }
    buf
}
