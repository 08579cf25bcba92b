//! Coverage (docs/design.md §12): which volumes are protected, stale, excluded or unprotected, in
//! one account and Region or in many (assumed roles × Regions). Per account and Region: one pass
//! over the instances, volumes, Auto Scaling groups and managed snapshots, shared by every target;
//! each target's selector is evaluated on it with the runner's own selection code (a target with
//! `instance_filters` costs one filtered call of its own).

use std::collections::{BTreeMap, BTreeSet};

use futures::StreamExt;
use jiff::Timestamp;
use serde::Serialize;

use crate::aws::{CallCounts, Clients, ConnectOptions, ec2, scheduler, sts};
use crate::core::coverage::{
    self, Account, CopySeen, PointInfo, Row, Status, TargetView, Totals, VolumeInfo,
};
use crate::core::restore_test::TAG_RESTORE_TESTED;
use crate::core::select::{self, Select};
use crate::core::tags::{TAG_SOURCE_REGION, TAG_SOURCE_TIME, TAG_SOURCE_VOLUME};
use crate::core::{doc, schedule};
use crate::error::Error;

/// The session name of every assumed role (CloudTrail shows it).
pub const SESSION_NAME: &str = "ebssnap-coverage";

/// Accounts and Regions read at the same time.
pub const PARALLEL: usize = 4;

/// A target as the report shows it.
#[derive(Debug, Clone, Serialize)]
pub struct TargetRow {
    pub target: String,
    pub enabled: bool,
    pub schedule: String,
    pub timezone: String,
    pub interval_seconds: Option<i64>,
    pub next_run: Option<Timestamp>,
    pub selected: usize,
    pub excluded: usize,
}

/// One account and Region of the report: what was read there, or why it could not be.
#[derive(Debug, Clone, Serialize)]
pub struct Scope {
    pub account: Option<String>,
    pub region: Option<String>,
    /// The role assumed to read it (`--accounts`).
    pub role_arn: Option<String>,
    /// Why this account or Region could not be read (its volumes are then missing from the
    /// report): the AWS code and message.
    pub error: Option<String>,
    pub volumes: usize,
    pub targets: Vec<TargetRow>,
    pub warnings: Vec<String>,
    /// AWS API attempts per operation for this scope.
    pub api_calls: CallCounts,
    /// Disaster-recovery copies kept in this scope (attributed to their source volumes' rows).
    #[serde(skip)]
    pub copies_seen: Vec<CopySeen>,
}

/// The coverage report (format version 1; docs/coverage.schema.json).
#[derive(Debug, Clone, Serialize)]
pub struct CoverageReport {
    pub ebssnap: u64,
    pub kind: &'static str,
    pub now: Timestamp,
    pub totals: Totals,
    pub scopes: Vec<Scope>,
    pub volumes: Vec<Row>,
}

impl CoverageReport {
    pub fn with_status(&self, s: Status) -> impl Iterator<Item = &Row> {
        self.volumes.iter().filter(move |v| v.status == s)
    }
}

/// What to report on.
#[derive(Debug, Clone, Default)]
pub struct Request {
    /// Only these policies (all when empty).
    pub policies: Vec<String>,
    /// These Regions (default: the connection's).
    pub regions: Vec<String>,
    /// Accounts reached through assumed roles (default: the caller's own account).
    pub accounts: Vec<Account>,
    pub now: Option<Timestamp>,
}

/// The coverage of every (account, Region) of `req`, reading a bounded number at a time. An
/// account whose role cannot be assumed, or a Region that cannot be read, is a scope with its
/// error; only unknown Regions (bad flags) are an error of the whole report.
pub async fn report(
    opts: &ConnectOptions,
    base: &Clients,
    req: &Request,
) -> Result<CoverageReport, Error> {
    let now = req.now.unwrap_or_else(Timestamp::now);
    let regions: Vec<Option<String>> = if req.regions.is_empty() {
        vec![base.region.clone()]
    } else {
        let known = ec2::region_names(&base.ec2).await?;
        let unknown: Vec<&String> = req.regions.iter().filter(|r| !known.contains(*r)).collect();
        if !unknown.is_empty() {
            return Err(Error::Input(format!(
                "--regions: {} {} not a Region of this partition (known: {})",
                unknown
                    .iter()
                    .map(|r| r.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
                if unknown.len() == 1 { "is" } else { "are" },
                known.into_iter().collect::<Vec<_>>().join(", ")
            )));
        }
        req.regions.iter().cloned().map(Some).collect()
    };
    // Who: the caller's own account, or each account's assumed role (in file order).
    type Who = (
        Option<Account>,
        Result<Option<aws_sdk_sts::config::Credentials>, String>,
    );
    let mut who: Vec<Who> = Vec::new();
    if req.accounts.is_empty() {
        who.push((None, Ok(None)));
    } else {
        for a in &req.accounts {
            let creds = sts::assume_role(
                &base.sts,
                &a.role_arn,
                a.external_id.as_deref(),
                SESSION_NAME,
            )
            .await
            .map(Some)
            .map_err(|e| e.to_string());
            who.push((Some(a.clone()), creds));
        }
    }
    let mut jobs = Vec::new();
    for (account, creds) in &who {
        for region in &regions {
            jobs.push((account.clone(), creds.clone(), region.clone()));
        }
    }
    let results: Vec<(Scope, Vec<Row>)> = futures::stream::iter(jobs)
        .map(|(account, creds, region)| async move {
            let role_arn = account.as_ref().map(|a| a.role_arn.clone());
            let account_id = account.as_ref().map(|a| a.account_id.clone());
            let creds = match creds {
                Ok(c) => c,
                Err(e) => {
                    return (failed_scope(account_id, region, role_arn, e), Vec::new());
                }
            };
            let clients = if account.is_none() && region == base.region {
                base.clone()
            } else {
                Clients::connect_as(opts, region.as_deref(), creds).await
            };
            let before = clients.calls.snapshot();
            match scope(&clients, &req.policies, now).await {
                Ok((mut s, rows)) => {
                    s.role_arn = role_arn;
                    s.account = s.account.or(account_id);
                    s.api_calls = clients.calls.since(&before);
                    (s, rows)
                }
                Err(e) => {
                    let mut s = failed_scope(account_id, region, role_arn, e.to_string());
                    s.api_calls = clients.calls.since(&before);
                    (s, Vec::new())
                }
            }
        })
        .buffered(PARALLEL)
        .collect()
        .await;
    let mut scopes = Vec::new();
    let mut volumes = Vec::new();
    for (s, rows) in results {
        scopes.push(s);
        volumes.extend(rows);
    }
    // Copies kept in one Region belong to rows of another Region of the same account.
    let seen: Vec<CopySeen> = scopes
        .iter()
        .flat_map(|s| s.copies_seen.iter().cloned())
        .collect();
    coverage::attribute_copies(&mut volumes, &seen);
    volumes.sort_by(|a, b| {
        (a.status, &a.account, &a.region, &a.volume_id).cmp(&(
            b.status,
            &b.account,
            &b.region,
            &b.volume_id,
        ))
    });
    Ok(CoverageReport {
        ebssnap: 1,
        kind: "coverage",
        now,
        totals: coverage::totals(&volumes),
        scopes,
        volumes,
    })
}

fn failed_scope(
    account: Option<String>,
    region: Option<String>,
    role_arn: Option<String>,
    error: String,
) -> Scope {
    Scope {
        account,
        region,
        role_arn,
        error: Some(error),
        volumes: 0,
        targets: Vec::new(),
        warnings: Vec::new(),
        api_calls: CallCounts::default(),
        copies_seen: Vec::new(),
    }
}

/// The coverage of the one account and Region `clients` reach, for the ebssnap policies named
/// in `policies` (all of them when empty).
pub async fn scope(
    clients: &Clients,
    policies: &[String],
    now: Timestamp,
) -> Result<(Scope, Vec<Row>), Error> {
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
        let (chosen, removed) = select::select_with_exclusions(&d.select, &d.exclude(), &inv);
        let chosen: BTreeSet<String> = chosen.into_iter().map(|s| s.volume_id).collect();
        let excluded: BTreeMap<String, String> = removed
            .into_iter()
            .map(|(v, rule)| (v, rule.to_string()))
            .collect();
        let name = format!("{}/{}", d.policy, d.target);
        let interval = schedule::interval_of(&spec.expression, &spec.timezone, now);
        let next_run = spec
            .enabled
            .then(|| next_fire(&spec.expression, &spec.timezone, now))
            .flatten();
        rows_t.push(TargetRow {
            target: name.clone(),
            enabled: spec.enabled,
            schedule: spec.expression.clone(),
            timezone: spec.timezone.clone(),
            interval_seconds: interval.map(|i| i.as_secs()),
            next_run,
            selected: chosen.len(),
            excluded: excluded.len(),
        });
        views.push(TargetView {
            name,
            enabled: spec.enabled,
            interval,
            selected: chosen,
            excluded,
            next_run,
        });
    }
    let mut points: BTreeMap<String, Vec<PointInfo>> = BTreeMap::new();
    let mut copies_seen = Vec::new();
    for (volume, p) in ec2::managed_points(&clients.ec2).await? {
        // A copy kept here of a restore point of another Region: that Region's row shows it.
        if let (Some(src_region), Some(region)) =
            (p.tags.get(TAG_SOURCE_REGION), clients.region.as_ref())
        {
            copies_seen.push(CopySeen {
                account: None,
                region: region.clone(),
                source_region: src_region.clone(),
                source_volume: p.tags.get(TAG_SOURCE_VOLUME).cloned().unwrap_or(volume),
                at: p
                    .tags
                    .get(TAG_SOURCE_TIME)
                    .and_then(|t| t.parse().ok())
                    .unwrap_or(p.start_time),
                completed: p.state == "completed",
            });
            continue;
        }
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
            zone: v.zone.clone(),
            volume_type: v.volume_type.clone(),
            size_gb: v.size_gb,
            instance_id: v.attachment.as_ref().map(|(i, _)| i.clone()),
            device: v.attachment.as_ref().map(|(_, d)| d.clone()),
            name: v.tags.get("Name").cloned(),
            created: v.created,
        })
        .collect();
    let account = clients.account_id().await;
    for c in &mut copies_seen {
        c.account = account.clone();
    }
    let mut rows = coverage::classify(&volumes, &views, &points, now);
    for r in &mut rows {
        r.account = account.clone();
        r.region = clients.region.clone();
    }
    Ok((
        Scope {
            account,
            region: clients.region.clone(),
            role_arn: None,
            error: None,
            volumes: rows.len(),
            targets: rows_t,
            warnings,
            api_calls: CallCounts::default(),
            copies_seen,
        },
        rows,
    ))
}

/// A schedule's next fire time after `now`.
fn next_fire(expression: &str, timezone: &str, now: Timestamp) -> Option<Timestamp> {
    let expr = schedule::parse(expression).ok()?;
    let tz = jiff::tz::TimeZone::get(timezone).ok()?;
    schedule::next_fires(&expr, &tz, now, 1).into_iter().next()
}

/// Without a readable `_policy` schedule, a sweep is taken to run daily.
const DEFAULT_SWEEP_INTERVAL: jiff::SignedDuration = jiff::SignedDuration::from_hours(24);

/// A sweep's coverage (`report_unprotected`): the account and Region's coverage over every
/// policy, and which volumes became protected since the previous sweep of `policy` (one sweep
/// interval ago).
pub async fn for_sweep(
    clients: &Clients,
    policy: &str,
    now: Timestamp,
) -> Result<crate::core::report::CoverageSweep, Error> {
    let interval = scheduler::get_schedule(&clients.scheduler, policy, scheduler::POLICY_SCHEDULE)
        .await?
        .and_then(|s| schedule::interval_of(&s.expression, &s.timezone, now))
        .unwrap_or(DEFAULT_SWEEP_INTERVAL);
    let (_, rows) = scope(clients, &[], now).await?;
    Ok(coverage::sweep_summary(&rows, now - interval))
}
