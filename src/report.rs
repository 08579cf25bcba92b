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
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
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
    pub error_snapshots: Vec<String>,
    pub failures: Vec<Failure>,
    pub tags_dropped: Vec<DroppedTag>,
    pub api_calls: BTreeMap<String, u64>,
    pub duration_ms: u64,
}

impl Report {
    pub fn failed(&self) -> bool {
        !self.failures.is_empty()
    }

    /// A short, readable summary for people (the CLI without `--json`).
    pub fn human(&self) -> String {
        let mut s = String::new();
        let what = match &self.target {
            Some(t) => format!("{}/{}", self.policy, t),
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
        for c in &self.created {
            let _ = writeln!(
                s,
                "    {} <- {} {} {}",
                c.snapshot_id.as_deref().unwrap_or("(dry run)"),
                c.volume_id,
                c.instance_id.as_deref().unwrap_or("-"),
                c.device.as_deref().unwrap_or("")
            );
        }
        for k in &self.skipped {
            let _ = writeln!(s, "  skipped {}: {}", k.volume_id, k.reason);
        }
        let verb = if self.dry_run {
            "would delete"
        } else {
            "deleted"
        };
        let _ = writeln!(s, "  {verb}: {}, kept: {}", self.deleted.len(), self.kept);
        for d in &self.deleted {
            let _ = writeln!(
                s,
                "    {} ({}, {})",
                d.snapshot_id,
                d.volume_id,
                d.reason.as_str()
            );
        }
        for u in &self.in_use {
            let _ = writeln!(
                s,
                "  in use, not deleted: {} ({})",
                u.snapshot_id, u.message
            );
        }
        if !self.error_snapshots.is_empty() {
            let _ = writeln!(
                s,
                "  snapshots in state error: {}",
                self.error_snapshots.join(", ")
            );
        }
        for t in &self.tags_dropped {
            let _ = writeln!(
                s,
                "  tag dropped (50-tag limit): {} {} ({})",
                t.volume_id, t.key, t.source
            );
        }
        for f in &self.failures {
            let _ = writeln!(
                s,
                "  FAILED {} {}: {}: {}",
                f.volume_id,
                f.instance_id.as_deref().unwrap_or("-"),
                f.code,
                f.message
            );
        }
        let calls: u64 = self.api_calls.values().sum();
        let _ = writeln!(s, "  {calls} API calls in {} ms", self.duration_ms);
        s
    }
}
