//! `ebssnap snapshots`: a policy's managed snapshots and what the next sweep decides for each,
//! then its disaster-recovery copies in each copy Region and what the copy rules decide.

use clap::Args;
use jiff::Timestamp;
use serde::Serialize;

use super::common::{Global, connect, parse_now};
use super::output::{emit, outln, print_json};
use crate::aws::Clients;
use crate::core::retention;
use crate::error::{Error, exit};
use crate::runner::{self, documents};

pub const EXAMPLES: &str = "\
Examples:
  # Every managed snapshot of policy std, and when each expires
  ebssnap snapshots --policy std
  # Only target web's, as JSON
  ebssnap snapshots --policy std --target web --json
  # What would be due for deletion a month from now
  ebssnap snapshots --policy std --now 2027-01-06T00:00:00Z
  # Only the restore points in the policy's Region (not its copies elsewhere)
  ebssnap snapshots --policy std --no-copies";

#[derive(Debug, Args)]
pub struct SnapshotsArgs {
    /// Policy whose managed snapshots to list
    #[arg(long)]
    pub policy: String,
    /// Only this target's snapshots
    #[arg(long)]
    pub target: Option<String>,
    /// Clock for the expiry decisions (RFC 3339; default: now)
    #[arg(long, value_parser = parse_now)]
    pub now: Option<Timestamp>,
    /// Print the rows as a JSON array on stdout
    #[arg(long)]
    pub json: bool,
    /// Leave out the copies in the policy's copy Regions
    #[arg(long)]
    pub no_copies: bool,
}

pub async fn exec(g: &Global, a: &SnapshotsArgs) -> Result<i32, Error> {
    let clients = connect(g).await;
    snapshots(
        &clients,
        &a.policy,
        a.target.as_deref(),
        a.now.unwrap_or_else(Timestamp::now),
        a.json,
        !a.no_copies,
    )
    .await
}

#[derive(Serialize)]
struct SnapshotRow {
    /// The Region it lives in: the policy's, or a copy Region.
    region: String,
    snapshot_id: String,
    target: Option<String>,
    volume_id: String,
    state: String,
    start_time: Timestamp,
    /// keep reason or the reason it is due for deletion (`target_unreadable`: a target whose
    /// document cannot be read, never pruned)
    status: &'static str,
    /// when it becomes eligible for deletion by age (null: kept by the minimum or due now)
    expires_at: Option<Timestamp>,
    /// A copy: the restore point it copies (in `ebssnap:source-region`).
    #[serde(skip_serializing_if = "Option::is_none")]
    source_snapshot_id: Option<String>,
}

/// The managed snapshots of a policy with what the next sweep decides for each: the sweep's own
/// plan (orphans, removed targets and unreadable targets included), not a second opinion.
async fn snapshots(
    clients: &Clients,
    policy: &str,
    target: Option<&str>,
    now: Timestamp,
    json: bool,
    copies: bool,
) -> Result<i32, Error> {
    let pdoc = documents::load_policy(clients, policy).await?;
    let planned = runner::sweep::plan(clients, &pdoc, now).await?;
    let here = clients.region.clone().unwrap_or_default();
    let decided: std::collections::BTreeMap<&str, &retention::Decision> = planned
        .plan
        .keep
        .iter()
        .chain(planned.plan.delete.iter())
        .map(|d| (d.snapshot_id.as_str(), d))
        .collect();
    let mut rows: Vec<SnapshotRow> = planned
        .snapshots
        .iter()
        .filter(|s| target.is_none_or(|t| s.tag(crate::core::tags::TAG_TARGET) == Some(t)))
        .filter_map(|s| {
            let snap_target = s.tag(crate::core::tags::TAG_TARGET).map(String::from);
            let (status, expires_at) = match decided.get(s.id.as_str()) {
                Some(d) => (d.reason.as_str(), d.expires_at),
                None if snap_target
                    .as_ref()
                    .is_some_and(|t| planned.unreadable.contains(t)) =>
                {
                    ("target_unreadable", None)
                }
                None => return None,
            };
            Some(row(&here, s, snap_target, status, expires_at))
        })
        .collect();
    let mut warnings: Vec<String> = planned.failures.iter().map(|f| f.message.clone()).collect();
    let live: Vec<crate::core::doc::TargetDocument> =
        planned.live.iter().map(|(_, t)| t.clone()).collect();
    for c in pdoc.copies.iter().filter(|_| copies) {
        match runner::copy::plan_region(clients, &pdoc, c, &live, &planned.unreadable, now).await {
            Ok((listed, plan)) => {
                let decided: std::collections::BTreeMap<&str, &retention::Decision> = plan
                    .keep
                    .iter()
                    .chain(plan.delete.iter())
                    .map(|d| (d.snapshot_id.as_str(), d))
                    .collect();
                rows.extend(
                    listed
                        .iter()
                        .filter(|s| {
                            target.is_none_or(|t| s.tag(crate::core::tags::TAG_TARGET) == Some(t))
                        })
                        .map(|s| {
                            let snap_target =
                                s.tag(crate::core::tags::TAG_TARGET).map(String::from);
                            let (status, expires_at) = match decided.get(s.id.as_str()) {
                                Some(d) => (d.reason.as_str(), d.expires_at),
                                None => ("target_unreadable", None),
                            };
                            row(&c.region, s, snap_target, status, expires_at)
                        }),
                );
            }
            Err(e) => warnings.push(format!("copies in {} not listed: {e}", c.region)),
        }
    }
    // The policy's Region first, then each copy Region; within one, by target and volume,
    // newest first.
    let order = |r: &SnapshotRow| r.region != here;
    rows.sort_by(|a, b| {
        (order(a), &a.region, &a.target, &a.volume_id, b.start_time).cmp(&(
            order(b),
            &b.region,
            &b.target,
            &b.volume_id,
            a.start_time,
        ))
    });
    if json {
        print_json(&rows);
    } else {
        let mut buf = String::new();
        outln!(
            buf,
            "{:<14} {:<24} {:<12} {:<24} {:<10} {:<21} {:<17} EXPIRES",
            "REGION",
            "SNAPSHOT",
            "TARGET",
            "VOLUME",
            "STATE",
            "STARTED",
            "STATUS"
        );
        for r in &rows {
            outln!(
                buf,
                "{:<14} {:<24} {:<12} {:<24} {:<10} {:<21} {:<17} {}",
                r.region,
                r.snapshot_id,
                r.target.as_deref().unwrap_or("-"),
                r.volume_id,
                r.state,
                r.start_time.strftime("%Y-%m-%dT%H:%M:%SZ"),
                r.status,
                r.expires_at
                    .map(|t| t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string())
                    .unwrap_or_else(|| "-".into())
            );
        }
        let copied = rows
            .iter()
            .filter(|r| r.source_snapshot_id.is_some())
            .count();
        outln!(
            buf,
            "{} managed snapshot(s) of policy {policy}, {copied} of them copies in other Regions",
            rows.len()
        );
        for w in &warnings {
            outln!(buf, "warning: {w}");
        }
        emit(&buf);
    }
    if json {
        for w in &warnings {
            tracing::warn!("{w}");
        }
    }
    Ok(exit::OK)
}

fn row(
    region: &str,
    s: &crate::aws::ec2::ManagedSnapshot,
    target: Option<String>,
    status: &'static str,
    expires_at: Option<Timestamp>,
) -> SnapshotRow {
    SnapshotRow {
        region: region.to_string(),
        snapshot_id: s.id.clone(),
        target,
        volume_id: s.volume(),
        state: s.state.clone(),
        start_time: s.start_time,
        status,
        expires_at,
        source_snapshot_id: s
            .tag(crate::core::tags::TAG_SOURCE_SNAPSHOT)
            .map(String::from),
    }
}
