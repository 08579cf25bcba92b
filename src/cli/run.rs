//! `ebssnap run`: snapshot a target's volumes now and prune its expired snapshots.

use clap::Args;

use super::common::{Common, Global, Which, connect, documents, options};
use super::output::finish;
use crate::error::Error;
use crate::runner::{self, RunOptions};

pub const EXAMPLES: &str = "\
Examples:
  # What would a run of target web of policy std create and delete? (reads only)
  ebssnap run --policy std --target web --dry-run
  # Run it now; the report as JSON
  ebssnap run --policy std --target web --json
  # Run documents from files (e.g. written by `terraform show`), with a run key of your own
  ebssnap run --input web.json --policy-input std.json --run-key before-upgrade";

#[derive(Debug, Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub which: Which,
    #[command(flatten)]
    pub common: Common,
    /// Run key when the document has no scheduled time (default: manual-<UTC time>)
    #[arg(long)]
    pub run_key: Option<String>,
}

pub async fn exec(g: &Global, a: &RunArgs) -> Result<i32, Error> {
    let clients = connect(g).await;
    let (policy, target, interval) = documents(&clients, &a.which).await?;
    let opts = RunOptions {
        interval,
        ..options(&a.common, a.run_key.clone())
    };
    let report = runner::run_target(&clients, &policy, &target, &opts).await?;
    Ok(finish(&report, a.common.json))
}
