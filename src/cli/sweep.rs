//! `ebssnap sweep`: what a policy's `_policy` schedule runs — prune every snapshot of the policy.

use clap::Args;

use super::common::{Common, Global, connect, options};
use super::output::finish;
use crate::error::Error;
use crate::runner::{self, documents};

pub const EXAMPLES: &str = "\
Examples:
  # What would the sweep of policy std delete? (reads only; a sweep never creates)
  ebssnap sweep --policy std --dry-run
  # Sweep now, as if it were a week from now (age decisions only)
  ebssnap sweep --policy std --now 2026-12-13T00:00:00Z --dry-run";

#[derive(Debug, Args)]
pub struct SweepArgs {
    /// Policy to sweep (its targets, the snapshots of removed targets, and orphans)
    #[arg(long)]
    pub policy: String,
    #[command(flatten)]
    pub common: Common,
}

pub async fn exec(g: &Global, a: &SweepArgs) -> Result<i32, Error> {
    let clients = connect(g).await;
    let doc = documents::load_policy(&clients, &a.policy).await?;
    let report = runner::sweep(&clients, &doc, &options(&a.common, None)).await?;
    Ok(finish(&report, a.common.json))
}
