//! Coverage (docs/design.md §12): which volumes of the account are protected, stale, excluded or
//! unprotected. One pass over the account's instances, volumes, Auto Scaling groups and managed
//! snapshots, shared by every target; each target's selector is evaluated on it with the runner's
//! own selection code (a target with `instance_filters` costs one filtered call of its own).

use std::collections::{BTreeMap, BTreeSet};

use jiff::Timestamp;
use serde::Serialize;

use crate::aws::{Clients, ec2, scheduler};
use crate::core::coverage::{self, PointInfo, Row, TargetView, Totals, VolumeInfo};
use crate::core::restore_test::TAG_RESTORE_TESTED;
use crate::core::select::{self, Select};
use crate::core::{doc, schedule};
use crate::error::Error;

/// A target as the report shows it.
#[derive(Debug, Clone, Serialize)]
pub struct TargetRow {
    pub target: String,
    pub enabled: bool,
    pub schedule: String,
    pub interval_seconds: Option<i64>,
    pub selected: usize,
    pub excluded: usize,
}

/// The coverage report of one account and Region (format version 1).
#[derive(Debug, Clone, Serialize)]
pub struct CoverageReport {
    pub ebssnap: u64,
    pub kind: &'static str,
    pub account: Option<String>,
    pub region: Option<String>,
    pub now: Timestamp,
    pub totals: Totals,
    pub targets: Vec<TargetRow>,
    pub volumes: Vec<Row>,
    pub warnings: Vec<String>,
}

/// The coverage of the account and Region `clients` reach, for the ebssnap policies named in
/// `policies` (all of them when empty).
pub async fn coverage(
    clients: &Clients,
    policies: &[String],
    now: Timestamp,
) -> Result<CoverageReport, Error> {
    let mut warnings = Vec::new();
    let names = if policies.is_empty() {
        scheduler::list_policies(&clients.scheduler).await?
    } else {
        policies.to_vec()
    };
    // Every target document, with its schedule.
    let mut docs = Vec::new();
    for p in &names {
        let Some(targets) = scheduler::list_targets(&clients.scheduler, p).await? else {
            warnings.push(format!(
                "policy {p}: no schedule group {}",
                scheduler::group_name(p)
            ));
            continue;
        };
        for t in targets {
            let Some(spec) = scheduler::get_schedule(&clients.scheduler, p, &t).await? else {
                continue;
            };
            match doc::parse_target(&spec.input) {
                Ok(d) => docs.push((d, spec)),
                Err(e) => warnings.push(format!("target {p}/{t}: unreadable document ({e}): its volumes count as selected by nothing")),
            }
        }
    }
    // One inventory for all: every instance and volume, and the union of the ASGs named.
    let asgs: BTreeSet<String> = docs
        .iter()
        .flat_map(|(d, _)| d.select.asg_names().iter().cloned())
        .collect();
    let all = Select {
        all_volumes: Some(true),
        asg_names: (!asgs.is_empty()).then(|| asgs.into_iter().collect()),
        ..Select::default()
    };
    let mut inv = ec2::fetch_inventory(&clients.ec2, &clients.autoscaling, &all).await?;
    let mut views = Vec::new();
    let mut rows_t = Vec::new();
    for (d, spec) in &docs {
        inv.filter_matches = match d.select.instance_filters() {
            Some(f) => ec2::instance_filter_matches(&clients.ec2, f).await?,
            None => BTreeSet::new(),
        };
        let chosen: BTreeSet<String> = select::select(&d.select, &d.exclude(), &inv)
            .into_iter()
            .map(|s| s.volume_id)
            .collect();
        let matched: BTreeSet<String> = select::select(&d.select, &Default::default(), &inv)
            .into_iter()
            .map(|s| s.volume_id)
            .collect();
        let excluded: BTreeSet<String> = matched.difference(&chosen).cloned().collect();
        let name = format!("{}/{}", d.policy, d.target);
        let interval = schedule::interval_of(&spec.expression, &spec.timezone, now);
        rows_t.push(TargetRow {
            target: name.clone(),
            enabled: spec.enabled,
            schedule: spec.expression.clone(),
            interval_seconds: interval.map(|i| i.as_secs()),
            selected: chosen.len(),
            excluded: excluded.len(),
        });
        views.push(TargetView {
            name,
            enabled: spec.enabled,
            interval,
            selected: chosen,
            excluded,
        });
    }
    let mut points: BTreeMap<String, Vec<PointInfo>> = BTreeMap::new();
    for (volume, p) in ec2::managed_points(&clients.ec2).await? {
        let (Some(pol), Some(tgt)) = (p.policy.clone(), p.target.clone()) else {
            continue;
        };
        if !policies.is_empty() && !policies.contains(&pol) {
            continue;
        }
        points.entry(volume).or_default().push(PointInfo {
            target: format!("{pol}/{tgt}"),
            snapshot_id: p.snapshot_id,
            start_time: p.start_time,
            completed: p.state == "completed",
            restore_tested: p.tags.get(TAG_RESTORE_TESTED).cloned(),
        });
    }
    let volumes: Vec<VolumeInfo> = inv
        .volumes
        .values()
        .filter(|v| !matches!(v.state.as_str(), "deleting" | "deleted"))
        .map(|v| VolumeInfo {
            volume_id: v.id.clone(),
            size_gb: v.size_gb,
            instance_id: v.attachment.as_ref().map(|(i, _)| i.clone()),
            device: v.attachment.as_ref().map(|(_, d)| d.clone()),
            name: v.tags.get("Name").cloned(),
        })
        .collect();
    let rows = coverage::classify(&volumes, &views, &points, now);
    Ok(CoverageReport {
        ebssnap: 1,
        kind: "coverage",
        account: clients.account_id().await,
        region: clients.region.clone(),
        now,
        totals: coverage::totals(&rows),
        targets: rows_t,
        volumes: rows,
        warnings,
    })
}
