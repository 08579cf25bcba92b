//! `ebssnap snapshots`: a policy's managed snapshots and what the next sweep decides for each.

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
  ebssnap snapshots --policy std --now 2027-01-06T00:00:00Z";

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
}

pub async fn exec(g: &Global, a: &SnapshotsArgs) -> Result<i32, Error> {
    let clients = connect(g).await;
    snapshots(
        &clients,
        &a.policy,
        a.target.as_deref(),
        a.now.unwrap_or_else(Timestamp::now),
        a.json,
    )
    .await
}

#[derive(Serialize)]
struct SnapshotRow {
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
}

/// The managed snapshots of a policy with what the next sweep decides for each: the sweep's own
/// plan (orphans, removed targets and unreadable targets included), not a second opinion.
async fn snapshots(
    clients: &Clients,
    policy: &str,
    target: Option<&str>,
    now: Timestamp,
    json: bool,
) -> Result<i32, Error> {
    let pdoc = documents::load_policy(clients, policy).await?;
    let planned = runner::sweep::plan(clients, &pdoc, now).await?;
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
            Some(SnapshotRow {
                snapshot_id: s.id.clone(),
                target: snap_target,
                volume_id: s.volume(),
                state: s.state.clone(),
                start_time: s.start_time,
                status,
                expires_at,
            })
        })
        .collect();
    rows.sort_by(|a, b| {
        (&a.target, &a.volume_id, b.start_time).cmp(&(&b.target, &b.volume_id, a.start_time))
    });
    if json {
        print_json(&rows);
    } else {
        let mut buf = String::new();
        outln!(
            buf,
            "{:<24} {:<12} {:<24} {:<10} {:<21} {:<17} EXPIRES",
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
                "{:<24} {:<12} {:<24} {:<10} {:<21} {:<17} {}",
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
        outln!(buf, "{} managed snapshot(s) of policy {policy}", rows.len());
        for f in &planned.failures {
            outln!(buf, "warning: {}", f.message);
        }
        emit(&buf);
    }
    Ok(exit::OK)
}
