//! The runner's library: a target run and a policy sweep (docs/design.md §5), over the AWS layer and
//! the core. The CLI and the Lambda are thin shells over these functions.
//!
//! - [`coverage`]: which volumes of the account are protected, stale, excluded, unprotected.
//! - [`documents`]: where a run's documents come from and which source is trusted.
//! - [`options`]: how a run behaves, from the environment (both shells), and the run key.
//! - [`target`]: a target run: selection failures, jobs (volumes or crash-consistent sets),
//!   creation with retries, then pruning.
//! - [`chain`]: finishing a run across Lambda invocations near the deadline.
//! - [`pipeline`]: which volumes a link can start snapshotting while the inventory is read.
//! - [`exactly_once`]: creations whose answer was lost are looked up before they are sent again.
//! - [`history`]: the target's history listed for pruning beside the creations of the link that prunes.
//! - [`pace`]: pacing mutating EC2 calls to the account's budget (AIMD on throttles).
//! - [`prune`]: executing a retention plan.
//! - [`restore`]: restores, the restore volumes ebssnap made, and their cleanup.
//! - [`restore_test`]: restore tests of a rotating sample of a policy's restore points.
//! - [`copy`]: disaster-recovery copies of a target's restore points in other Regions.
//! - [`share`]: a run's restore points shared with the policy's vault accounts.
//! - [`sweep`]: a policy sweep, its plan (shared with `ebssnap snapshots`), overdue detection.
//! - [`notify`]: the failure ticket a finished run calls for, and the report's log line.
//!
//! Per-volume failures are recorded and every other volume still processed; only errors that
//! stop the whole run (bad input, an AWS call the run cannot do without) are `Err`.

pub mod chain;
pub mod copy;
pub mod coverage;
pub mod documents;
mod exactly_once;
mod history;
mod notify;
pub mod options;
pub mod pace;
mod pipeline;
mod prune;
pub mod restore;
pub mod restore_test;
mod share;
pub mod sweep;
pub mod target;

pub use options::{Chain, ENV_SETTINGS, Progress, RunOptions};
pub use sweep::sweep;
pub use target::run_target;
