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
    /// (target, volume) pairs to test, those tested longest ago first (default: the policy's
    /// restore_test block, else 2)
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=50))]
    pub sample: Option<u32>,
    /// Minutes one restored volume may take to become available before the test fails
    /// (default: the policy's restore_test block, else 30)
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=720))]
    pub timeout_minutes: Option<u32>,
    #[command(flatten)]
    pub common: Common,
}

pub async fn exec(g: &Global, a: &RestoreTestArgs) -> Result<i32, Error> {
    let clients = connect(g).await;
    let doc = documents::load_policy(&clients, &a.policy).await?;
    let block = documents::find_restore_test_schedule(&clients, &a.policy)
        .await?
        .map(|(d, _)| d);
    let sample = a
        .sample
        .or(block.as_ref().map(|b| b.sample))
        .unwrap_or(crate::core::doc::DEFAULT_RESTORE_TEST_SAMPLE);
    let minutes = a
        .timeout_minutes
        .or(block.as_ref().map(|b| b.timeout_minutes))
        .unwrap_or(crate::core::doc::DEFAULT_RESTORE_TEST_TIMEOUT_MINUTES);
    let settings = Settings {
        sample: sample as usize,
        timeout: Duration::from_secs(u64::from(minutes) * 60),
    };
    let report =
        restore_test::restore_test(&clients, &doc, &settings, None, &options(&a.common, None))
            .await?;
    Ok(finish(&report, a.common.json))
}
