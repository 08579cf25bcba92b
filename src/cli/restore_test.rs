//! `ebssnap restore-test`: one restore test of a policy by hand, as its `_restore_test` schedule
//! runs it (docs/guides/restore.md).

use std::time::Duration;

use clap::Args;

use super::common::{Common, Global, connect, options};
use super::output::finish;
use crate::error::Error;
use crate::runner::documents;
use crate::runner::restore_test::{self, Settings};

pub const EXAMPLES: &str = "\
Examples:
  # Which pairs of policy std the next test would take (creates nothing)
  ebssnap restore-test --policy std --dry-run
  # Test 5 pairs now, each allowed 45 minutes to become available
  ebssnap restore-test --policy std --sample 5 --timeout-minutes 45 --json";

#[derive(Debug, Args)]
pub struct RestoreTestArgs {
    /// Policy whose restore points to test
    #[arg(long)]
    pub policy: String,
    /// (target, volume) pairs to test: those tested longest ago (never tested first)
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u16).range(1..=50))]
    pub sample: u16,
    /// Minutes one restored volume may take to become available before the test fails
    #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=720))]
    pub timeout_minutes: u64,
    #[command(flatten)]
    pub common: Common,
}

pub async fn exec(g: &Global, a: &RestoreTestArgs) -> Result<i32, Error> {
    let clients = connect(g).await;
    let doc = documents::load_policy(&clients, &a.policy).await?;
    let settings = Settings {
        sample: usize::from(a.sample),
        timeout: Duration::from_secs(a.timeout_minutes * 60),
    };
    let report =
        restore_test::restore_test(&clients, &doc, &settings, None, &options(&a.common, None))
            .await?;
    Ok(finish(&report, a.common.json))
}
