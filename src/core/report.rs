//! The run report: printed by the CLI (`--json` or a readable summary), returned by the Lambda
//! handler, and logged as one structured line.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Serialize;

use crate::core::tags::DroppedTag;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Created {
    /// `null` in a dry run.
    pub snapshot_id: Option<String>,
    pub volume_id: String,
    pub instance_id: Option<String>,
    pub device: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Skipped {
    pub volume_id: String,
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeletedSnapshot {
    pub snapshot_id: String,
    pub volume_id: String,
    pub target: String,
    pub reason: crate::core::retention::Reason,
}

/// A snapshot the planner chose but EC2 refused because an AMI uses it: skipped, not a failure.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct InUse {
    pub snapshot_id: String,
    pub volume_id: String,
    pub message: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Failure {
    pub volume_id: String,
    pub instance_id: Option<String>,
    pub device: Option<String>,
    /// Set when the failure is about an existing snapshot (a delete), not a new one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub snapshot_id: Option<String>,
    pub code: String,
    pub message: String,
    pub retryable: bool,
    /// What the failure is about when it is not a volume: `select.asg_names=web`, `selection`,
    /// `run`, a target's name (part of the ticket's `problem_key`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reference: Option<String>,
}

/// A volume snapshotted again after its previous scheduled run(s) did not snapshot it (its
/// newest restore point before this one is older than 1.5 x its schedule's interval), or, in a
/// sweep, a volume that was overdue and is healthy again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Recovered {
    pub target: String,
    pub volume_id: String,
    pub instance_id: Option<String>,
    pub device: Option<String>,
    /// The new restore point.
    pub snapshot_id: Option<String>,
    /// The restore point before it (RFC 3339).
    pub previous_at: Option<String>,
}

/// A selected volume whose newest completed snapshot is older than twice its schedule's interval.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Overdue {
    pub target: String,
    pub volume_id: String,
    pub instance_id: Option<String>,
    pub device: Option<String>,
    pub newest_snapshot_id: Option<String>,
    /// RFC 3339; `null` when the volume has no completed snapshot.
    pub newest_at: Option<String>,
    pub interval_seconds: i64,
}

/// What happened to the failure ticket of this run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TicketOutcome {
    pub event: String,
    pub dedup_key: String,
    /// The webhook URL as scheme, host and port only (tokens live in paths and queries), or
    /// the SNS topic's ARN.
    pub url: String,
    pub delivered: bool,
    pub attempts: u32,
    pub status: Option<u16>,
    pub error: Option<String>,
}

/// Attempts per operation, and the throttled ones (`{"CreateSnapshot": 1000, "throttled":
/// {"CreateSnapshot": 37}}`). Plain data: the AWS layer fills it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ApiCallCounts {
    #[serde(flatten)]
    pub calls: BTreeMap<String, u64>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub throttled: BTreeMap<String, u64>,
}

impl ApiCallCounts {
    pub fn total(&self) -> u64 {
        self.calls.values().sum()
    }

    pub fn add(&mut self, other: &ApiCallCounts) {
        for (k, v) in &other.calls {
            *self.calls.entry(k.clone()).or_insert(0) += v;
        }
        for (k, v) in &other.throttled {
            *self.throttled.entry(k.clone()).or_insert(0) += v;
        }
    }
}

/// Mutating calls whose outcome was unknown (a timeout, a connection lost after sending, a 5xx
/// other than throttling), counted per volume or snapshot, and how each was resolved: `found`
/// (a look-up showed AWS had acted), `retried` (sent again: the look-up found nothing, or the call
/// is harmless to repeat, as a delete is). docs/design.md §5 (exactly once).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Ambiguous {
    pub count: u64,
    pub found: u64,
    pub retried: u64,
}

impl Ambiguous {
    pub fn add(&mut self, other: Ambiguous) {
        self.count += other.count;
        self.found += other.found;
        self.retried += other.retried;
    }
}

/// One pair's restore test (docs/design.md §11).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RestoreTestResult {
    pub target: String,
    pub volume_id: String,
    pub snapshot_id: String,
    pub run: Option<String>,
    /// The volume the test made (deleted again at its end).
    pub restore_volume_id: Option<String>,
    pub outcome: crate::core::restore_test::Outcome,
    /// Seconds from the CreateVolume call to `available`.
    pub seconds: Option<f64>,
    /// What went wrong (failed, timed out, not deleted).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// A pass after the pair's previous test failed (a `restore.recovered` ticket).
    pub recovered: bool,
    /// The test volume is gone again (a later test or cleanup deletes it otherwise).
    pub volume_deleted: bool,
}

impl RestoreTestResult {
    pub fn failed(&self) -> bool {
        matches!(
            self.outcome,
            crate::core::restore_test::Outcome::Failed
                | crate::core::restore_test::Outcome::TimedOut
        )
    }
}

/// A volume in a sweep's coverage (`report_unprotected`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct CoverageVolume {
    pub volume_id: String,
    pub instance_id: Option<String>,
    pub device: Option<String>,
    pub name: Option<String>,
    /// Disabled targets that would select it.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub disabled_targets: Vec<String>,
    /// Newly protected volumes: their first restore point.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub snapshot_id: Option<String>,
}

/// Sweeps with `report_unprotected`: the coverage of the account and Region (every policy).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct CoverageSweep {
    pub volumes: usize,
    /// Volumes no enabled target selects: a `coverage.unprotected` ticket.
    pub unprotected: Vec<CoverageVolume>,
    pub stale_volumes: usize,
    /// The oldest "newest restore point" among selected volumes.
    pub oldest_restore_point_age_seconds: Option<i64>,
    /// Volumes whose first restore point came since the previous sweep: a `coverage.recovered`
    /// ticket resolving their `unprotected` problem.
    pub newly_protected: Vec<CoverageVolume>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Report {
    /// `run` (a target) or `sweep` (a policy).
    pub kind: &'static str,
    pub policy: String,
    pub target: Option<String>,
    pub run_key: String,
    pub dry_run: bool,
    /// The clock used for age decisions (`--now`).
    pub now: String,
    pub volumes_selected: usize,
    pub created: Vec<Created>,
    pub skipped: Vec<Skipped>,
    pub deleted: Vec<DeletedSnapshot>,
    pub kept: usize,
    pub in_use: Vec<InUse>,
    /// Snapshots found in state `error`.
    pub error_snapshots: Vec<crate::core::retention::ErrorSnapshot>,
    /// Sweeps only: volumes whose snapshots stopped coming.
    pub overdue: Vec<Overdue>,
    /// Volumes whose problem ended with this run (a `snapshot.recovered` ticket).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub recovered: Vec<Recovered>,
    pub failures: Vec<Failure>,
    pub tags_dropped: Vec<DroppedTag>,
    /// Attempts per operation (retries included), and `throttled`: those AWS refused for rate.
    pub api_calls: ApiCallCounts,
    /// Calls whose outcome was unknown, and how they were resolved.
    pub ambiguous: Ambiguous,
    pub duration_ms: u64,
    /// The failure ticket's delivery to the webhook, when one was due.
    pub ticket: Option<TicketOutcome>,
    /// The failure ticket's publication to the SNS topic (`url` is the topic ARN).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ticket_sns: Option<TicketOutcome>,
    /// The `snapshot.recovered` ticket, when one was due (informational: never fails the run).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recovery_ticket: Option<TicketOutcome>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recovery_ticket_sns: Option<TicketOutcome>,
    /// Lambda: this invocation's link in the run's continuation chain (1 = the scheduled one).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub link: Option<u32>,
    /// Lambda: the link this one handed the rest of the run to (no pruning happened here).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub continued_in_link: Option<u32>,
    /// Sweeps: expired restore volumes of the policy's restore points that were deleted (or, in
    /// a dry run, would be).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub restore_volumes_deleted: Vec<String>,
    /// Sweeps: expired restore volumes still attached (never detached): a `restore.expired`
    /// ticket.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub restore_volumes_in_use: Vec<crate::core::restore::RestoreVolume>,
    /// Sweeps with `report_unprotected`: the account's coverage.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub coverage: Option<CoverageSweep>,
    /// The `coverage.unprotected` / `coverage.recovered` tickets' delivery (webhook, then SNS;
    /// informational: never fails the sweep).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub coverage_tickets: Vec<TicketOutcome>,
    /// Target runs of a policy with copies: what happened in each copy Region (docs/design.md
    /// §13). A Region's failure never fails the run.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub copies: Vec<crate::core::copy::RegionCopies>,
    /// Target runs of a policy with a `share`: the run's restore points shared with the vault
    /// accounts (docs/design.md §13).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub share: Option<crate::core::copy::ShareOutcome>,
    /// The `copy.failed` (and `share.failed`) tickets' delivery (webhook, then SNS; informational).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub copy_tickets: Vec<TicketOutcome>,
    /// Restore tests only: one entry per pair tested (or not started).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub restore_tests: Vec<RestoreTestResult>,
    /// Things an operator should know that are not failures (e.g. an event whose document
    /// differs from the schedule's current one).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
    /// The ticket this report called for (sent or not): the Lambda's error payload carries it,
    /// so an on-failure destination receives something an engineer can act on.
    #[serde(skip)]
    pub ticket_body: Option<crate::core::ticket::Ticket>,
}

/// Lines per list in the readable summary (`--json` always has everything).
const LIST_LIMIT: usize = 20;

fn more(s: &mut String, len: usize) {
    if len > LIST_LIMIT {
        let _ = writeln!(
            s,
            "    ... and {} more (--json lists them all)",
            len - LIST_LIMIT
        );
    }
}

impl Report {
    /// A volume failed, or a due ticket could not be delivered: the run must fail so that
    /// Scheduler's retries and dead-letter queue see it.
    pub fn failed(&self) -> bool {
        !self.failures.is_empty()
            || self.restore_tests.iter().any(RestoreTestResult::failed)
            || [&self.ticket, &self.ticket_sns]
                .into_iter()
                .flatten()
                .any(|t| !t.delivered)
    }

    /// A short, readable summary for people (the CLI without `--json`).
    pub fn human(&self) -> String {
        let mut s = String::new();
        let what = match &self.target {
            Some(t) => format!("{}/{}", self.policy, t),
            None if self.kind == "restore_test" => format!("{} (restore test)", self.policy),
            None => format!("{} (sweep)", self.policy),
        };
        let dry = if self.dry_run {
            " [dry run: nothing changed]"
        } else {
            ""
        };
        let _ = writeln!(s, "ebssnap {} {what}, run {}{dry}", self.kind, self.run_key);
        if self.kind == "run" {
            let _ = writeln!(s, "  volumes selected: {}", self.volumes_selected);
        }
        let verb = if self.dry_run {
            "would create"
        } else {
            "created"
        };
        if self.kind == "run" {
            let _ = writeln!(s, "  {verb}: {}", self.created.len());
        }
        for c in self.created.iter().take(LIST_LIMIT) {
            let _ = writeln!(
                s,
                "    {} <- {} {} {}",
                c.snapshot_id.as_deref().unwrap_or("(dry run)"),
                c.volume_id,
                c.instance_id.as_deref().unwrap_or("-"),
                c.device.as_deref().unwrap_or("")
            );
        }
        more(&mut s, self.created.len());
        for k in self.skipped.iter().take(LIST_LIMIT) {
            let _ = writeln!(s, "  skipped {}: {}", k.volume_id, k.reason);
        }
        more(&mut s, self.skipped.len());
        let verb = if self.dry_run {
            "would delete"
        } else {
            "deleted"
        };
        let _ = writeln!(s, "  {verb}: {}, kept: {}", self.deleted.len(), self.kept);
        for d in self.deleted.iter().take(LIST_LIMIT) {
            let _ = writeln!(
                s,
                "    {} ({}, {})",
                d.snapshot_id,
                d.volume_id,
                d.reason.as_str()
            );
        }
        more(&mut s, self.deleted.len());
        for u in &self.in_use {
            let _ = writeln!(
                s,
                "  in use, not deleted: {} ({})",
                u.snapshot_id, u.message
            );
        }
        for e in &self.error_snapshots {
            let _ = writeln!(
                s,
                "  snapshot in state error: {} ({}, target {})",
                e.snapshot_id, e.volume_id, e.target
            );
        }
        for o in &self.overdue {
            let _ = writeln!(
                s,
                "  OVERDUE {} ({}): newest completed snapshot {}",
                o.volume_id,
                o.target,
                o.newest_at.as_deref().unwrap_or("never")
            );
        }
        for t in &self.tags_dropped {
            let _ = writeln!(
                s,
                "  tag dropped (50-tag limit): {} {} ({})",
                t.volume_id, t.key, t.source
            );
        }
        for w in &self.warnings {
            let _ = writeln!(s, "  warning: {w}");
        }
        for f in &self.failures {
            let (category, action) = crate::core::guide::guide(&f.code);
            let _ = writeln!(
                s,
                "  FAILED {} {}: {}: {}\n    {}: {action}",
                if f.volume_id.is_empty() {
                    f.reference.as_deref().unwrap_or("-")
                } else {
                    f.volume_id.as_str()
                },
                f.instance_id.as_deref().unwrap_or("-"),
                f.code,
                f.message,
                category.as_str()
            );
        }
        for r in &self.recovered {
            let _ = writeln!(
                s,
                "  recovered {} ({}): restore point {} after {}",
                r.volume_id,
                r.target,
                r.snapshot_id.as_deref().unwrap_or("-"),
                r.previous_at.as_deref().unwrap_or("none")
            );
        }
        if let Some(t) = &self.ticket {
            let what = if t.delivered {
                "delivered"
            } else {
                "NOT DELIVERED"
            };
            let _ = writeln!(
                s,
                "  ticket {} {what} to {} after {} attempt(s){} (dedup key {})",
                t.event,
                t.url,
                t.attempts,
                t.error
                    .as_ref()
                    .map(|e| format!(": {e}"))
                    .unwrap_or_default(),
                t.dedup_key
            );
        }
        for t in &self.restore_tests {
            let _ = writeln!(
                s,
                "  restore test {}/{} from {}: {:?}{}{}{}",
                t.target,
                t.volume_id,
                t.snapshot_id,
                t.outcome,
                t.seconds
                    .map(|x| format!(" in {x:.1} s"))
                    .unwrap_or_default(),
                if t.recovered { " (recovered)" } else { "" },
                t.message
                    .as_ref()
                    .map(|m| format!(": {m}"))
                    .unwrap_or_default()
            );
        }
        let a = self.ambiguous;
        if a.count > 0 {
            let _ = writeln!(
                s,
                "  {} call(s) with an unknown outcome: {} found done, {} sent again",
                a.count, a.found, a.retried
            );
        }
        let throttled: u64 = self.api_calls.throttled.values().sum();
        let _ = writeln!(
            s,
            "  {} API calls ({throttled} throttled) in {} ms",
            self.api_calls.total(),
            self.duration_ms
        );
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_lists_are_cut_in_the_readable_summary() {
        let mut r = Report {
            kind: "run",
            policy: "std".into(),
            target: Some("web".into()),
            ..Report::default()
        };
        r.created = (0..25)
            .map(|i| Created {
                snapshot_id: Some(format!("snap-{i}")),
                volume_id: format!("vol-{i}"),
                ..Created::default()
            })
            .collect();
        let text = r.human();
        assert!(text.contains("created: 25"));
        assert!(text.contains("snap-19 <- vol-19") && !text.contains("snap-20 <- vol-20"));
        assert!(text.contains("... and 5 more (--json lists them all)"));
    }
}
