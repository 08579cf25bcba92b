//! A policy sweep (docs/design.md §5): prune every pair of the policy (removed targets and orphans
//! included), report snapshots in state `error`, and find overdue volumes.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;

use jiff::Timestamp;
use tracing::{Instrument, info_span};

use super::notify::finish;
use super::options::{RunOptions, run_key};
use super::prune::prune;
use crate::aws::ec2::{self, ManagedSnapshot};
use crate::aws::scheduler::ScheduleSpec;
use crate::aws::{Clients, scheduler};
use crate::core::doc::{self, PolicyDocument, Rules, TargetDocument};
use crate::core::report::{Failure, Overdue, Recovered, Report};
use crate::core::retention::{self, Scope};
use crate::core::schedule;
use crate::core::select;
use crate::core::tags;
use crate::error::Error;

/// Sweeps a policy: prunes every pair (removed targets and orphans included) and reports
/// snapshots in state `error` (docs/design.md §5).
pub async fn sweep(
    clients: &Clients,
    policy: &PolicyDocument,
    opts: &RunOptions,
) -> Result<Report, Error> {
    let started = Instant::now();
    let calls_before = clients.calls.snapshot();
    policy.validate()?;
    let run_key = run_key(policy.invocation.as_ref(), opts)?;
    let span = info_span!("sweep", policy = %policy.policy, run = %run_key);
    let result = sweep_in_span(
        clients,
        policy,
        opts,
        run_key.clone(),
        started,
        calls_before,
    )
    .instrument(span)
    .await;
    finish(
        clients,
        policy,
        None,
        &run_key,
        policy.invocation.as_ref(),
        opts,
        result,
    )
    .await
}

async fn sweep_in_span(
    clients: &Clients,
    policy: &PolicyDocument,
    opts: &RunOptions,
    run_key: String,
    started: Instant,
    calls_before: BTreeMap<String, u64>,
) -> Result<Report, Error> {
    let mut report = Report {
        kind: "sweep",
        policy: policy.policy.clone(),
        target: None,
        run_key,
        dry_run: opts.dry_run,
        now: opts.now.to_string(),
        ..Report::default()
    };
    let planned = plan(clients, policy, opts.now).await?;
    report.failures.extend(planned.failures);
    prune(clients, planned.plan, opts, &mut report).await;
    for (spec, target) in &planned.live {
        let (late, back) = overdue(clients, spec, target, &planned.snapshots, opts.now).await?;
        report.overdue.extend(late);
        report.recovered.extend(back);
    }
    // Copies of removed targets, by the copy's rules (live and unreadable targets excluded).
    let live: Vec<TargetDocument> = planned.live.iter().map(|(_, t)| t.clone()).collect();
    report.copies =
        super::copy::sweep_removed_targets(clients, policy, &live, &planned.unreadable, opts).await;
    super::restore::sweep_restore_volumes(clients, &policy.policy, opts, &mut report).await?;
    if policy.report_unprotected() {
        report.coverage =
            Some(super::coverage::for_sweep(clients, &policy.policy, opts.now).await?);
    }
    report.api_calls = clients.calls.since(&calls_before);
    report.duration_ms = started.elapsed().as_millis() as u64;
    Ok(report)
}

/// What a sweep decides, before it acts: `ebssnap snapshots` shows exactly this.
#[derive(Debug)]
pub struct SweepPlan {
    /// The retention plan over every pair of the policy.
    pub plan: retention::Plan,
    /// Every managed snapshot of the policy, as listed.
    pub snapshots: Vec<ManagedSnapshot>,
    /// Live targets with their schedules (for overdue detection).
    pub live: Vec<(ScheduleSpec, TargetDocument)>,
    /// Targets whose document cannot be read: their snapshots are not pruned at all.
    pub unreadable: BTreeSet<String>,
    /// One `InvalidTargetDocument` failure per unreadable target.
    pub failures: Vec<Failure>,
}

/// Plans a sweep: live targets' pairs with their own rules, removed targets' and orphans' with
/// the policy's; a target whose document cannot be read is left out, since the policy's rules
/// might be shorter than its own.
pub async fn plan(
    clients: &Clients,
    policy: &PolicyDocument,
    now: Timestamp,
) -> Result<SweepPlan, Error> {
    let policy_rules = policy.rules();
    let names = scheduler::list_targets(&clients.scheduler, &policy.policy)
        .await?
        .unwrap_or_default();
    let mut rules: BTreeMap<String, Rules> = BTreeMap::new();
    let mut live: Vec<(ScheduleSpec, TargetDocument)> = Vec::new();
    let mut unreadable = BTreeSet::new();
    let mut failures = Vec::new();
    for name in names {
        let read = scheduler::get_schedule(&clients.scheduler, &policy.policy, &name).await?;
        let parsed = read
            .map(|spec| doc::parse_target(&spec.input).map(|d| (spec, d)))
            .transpose();
        match parsed {
            Ok(Some((spec, t))) => {
                rules.insert(name, t.rules(&policy_rules));
                live.push((spec, t));
            }
            // Deleted between the listing and now: its snapshots follow the policy's rules.
            Ok(None) => {}
            Err(e) => {
                failures.push(Failure {
                    volume_id: String::new(),
                    instance_id: None,
                    device: None,
                    snapshot_id: None,
                    code: "InvalidTargetDocument".into(),
                    message: format!("target {name} not pruned: {e}"),
                    retryable: false,
                    reference: Some(name.clone()),
                });
                unreadable.insert(name);
            }
        }
    }
    let snapshots = ec2::list_managed_snapshots(&clients.ec2, &policy.policy, None, None).await?;
    let snaps: Vec<retention::Snap> = snapshots
        .iter()
        .map(ManagedSnapshot::to_snap)
        .filter(|s| !s.target.as_ref().is_some_and(|t| unreadable.contains(t)))
        .collect();
    let volumes: BTreeSet<String> = snaps.iter().map(|s| s.volume.clone()).collect();
    let volumes: Vec<String> = volumes.into_iter().collect();
    let alive = ec2::existing_volumes(&clients.ec2, &volumes).await?;
    let plan = retention::plan(
        &Scope::Policy {
            policy: &policy.policy,
        },
        &snaps,
        |t| rules.get(t).copied().unwrap_or(policy_rules),
        |v| !alive.contains(v),
        now,
    );
    Ok(SweepPlan {
        plan,
        snapshots,
        live,
        unreadable,
        failures,
    })
}

/// The selected volumes of a live target whose newest completed snapshot is older than twice the
/// schedule's interval (or that never got one, once the schedule and the volume are that old).
/// Also returns the volumes that were overdue and are healthy again: the gap between their two
/// newest restore points is over two intervals, and the newest is within two intervals.
async fn overdue(
    clients: &Clients,
    spec: &ScheduleSpec,
    target: &TargetDocument,
    snapshots: &[ManagedSnapshot],
    now: Timestamp,
) -> Result<(Vec<Overdue>, Vec<Recovered>), Error> {
    let active = spec.enabled
        && spec.start_date.is_none_or(|t| t <= now)
        && spec.end_date.is_none_or(|t| t > now);
    let Some(interval) = schedule::interval_of(&spec.expression, &spec.timezone, now) else {
        return Ok((vec![], vec![]));
    };
    if !active {
        return Ok((vec![], vec![]));
    }
    let due_before = now - interval * 2;
    let inv = ec2::fetch_inventory(&clients.ec2, &clients.autoscaling, &target.select).await?;
    // The two newest completed restore points of each volume (distinct runs).
    let mut points: BTreeMap<String, Vec<&ManagedSnapshot>> = BTreeMap::new();
    for s in snapshots.iter().filter(|s| {
        s.tag(tags::TAG_TARGET) == Some(target.target.as_str()) && s.state == "completed"
    }) {
        points.entry(s.volume()).or_default().push(s);
    }
    for v in points.values_mut() {
        v.sort_by_key(|s| std::cmp::Reverse(s.start_time));
        v.dedup_by(|a, b| {
            a.tag(tags::TAG_RUN).is_some() && a.tag(tags::TAG_RUN) == b.tag(tags::TAG_RUN)
        });
    }
    let (mut out, mut back) = (Vec::new(), Vec::new());
    for sel in select::select(&target.select, &target.exclude(), &inv) {
        let newest = points
            .get(&sel.volume_id)
            .map(Vec::as_slice)
            .unwrap_or_default();
        let last = newest.first();
        let late = match last {
            Some(s) => s.start_time < due_before,
            None => {
                let created = inv.volumes.get(&sel.volume_id).and_then(|v| v.created);
                spec.created.is_some_and(|t| t < due_before)
                    && created.is_some_and(|t| t < due_before)
            }
        };
        if late {
            out.push(Overdue {
                target: target.target.clone(),
                volume_id: sel.volume_id,
                instance_id: sel.instance_id,
                device: sel.device,
                newest_snapshot_id: last.map(|s| s.id.clone()),
                newest_at: last.map(|s| s.start_time.to_string()),
                interval_seconds: interval.as_secs(),
            });
        } else if let [n1, n2, ..] = newest
            && n1.start_time.duration_since(n2.start_time) > interval * 2
        {
            back.push(Recovered {
                target: target.target.clone(),
                volume_id: sel.volume_id,
                instance_id: sel.instance_id,
                device: sel.device,
                snapshot_id: Some(n1.id.clone()),
                previous_at: Some(n2.start_time.to_string()),
            });
        }
    }
    Ok((out, back))
}
