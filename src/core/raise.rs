//! Which ticket a run's report raises (docs/guides/tickets.md): failures, overdue volumes and `error`
//! snapshots become one `snapshot.*` ticket, and volumes that came back one `snapshot.recovered`.
//! The ticket's format, its signature and the ticket of a run that could not run at all are in
//! [`crate::core::ticket`], below both this module and the report.

use crate::core::copy::CopyFailure;
use crate::core::guide::Category;
use crate::core::report::Report;
use crate::core::ticket::*;

fn summary(r: &Report) -> Summary {
    Summary {
        volumes_selected: r.volumes_selected,
        created: r.created.len(),
        deleted: r.deleted.len(),
        skipped: r.skipped.len(),
        failed: r.failures.len() + r.restore_tests.iter().filter(|t| t.failed()).count(),
        overdue: r.overdue.len(),
        error_snapshots: r.error_snapshots.len(),
        duration_ms: r.duration_ms,
    }
}

/// The day of a timestamp string (`2026-11-26T05:00:00Z` → `2026-11-26`).
fn day(ts: &str) -> &str {
    ts.get(..10).unwrap_or(ts)
}

/// The ticket a report calls for, if any: failed volumes (a run or a sweep), snapshots found in
/// state `error`, or overdue volumes (a sweep). One ticket per run or sweep.
pub fn from_report(report: &Report, ctx: &Context) -> Option<Ticket> {
    let mut failures: Vec<TicketFailure> = report
        .failures
        .iter()
        .map(|f| TicketFailure {
            volume_id: (!f.volume_id.is_empty()).then(|| f.volume_id.clone()),
            instance_id: f.instance_id.clone(),
            device: f.device.clone(),
            snapshot_id: f.snapshot_id.clone(),
            target: None,
            code: f.code.clone(),
            message: f.message.clone(),
            retryable: f.retryable,
            ..Default::default()
        })
        .zip(report.failures.iter())
        .map(|(t, f)| {
            let about = match (&f.reference, f.volume_id.as_str()) {
                (Some(r), _) => r.clone(),
                (None, "") => f.instance_id.clone().unwrap_or_else(|| "run".into()),
                (None, v) => v.to_string(),
            };
            annotate(t, &report.policy, report.target.as_deref(), &about)
        })
        .collect();
    for e in &report.error_snapshots {
        let f = TicketFailure {
            volume_id: Some(e.volume_id.clone()),
            instance_id: None,
            device: None,
            snapshot_id: Some(e.snapshot_id.clone()),
            target: Some(e.target.clone()),
            code: "SnapshotError".into(),
            message: format!(
                "snapshot {} of {} ended in state error",
                e.snapshot_id, e.volume_id
            ),
            retryable: true,
            dedup_key: Some(format!("{}/{}/{}", report.policy, e.target, e.snapshot_id)),
            ..Default::default()
        };
        failures.push(annotate(f, &report.policy, None, &e.volume_id));
    }
    let failed = !failures.is_empty();
    for o in &report.overdue {
        let f = TicketFailure {
            volume_id: Some(o.volume_id.clone()),
            instance_id: o.instance_id.clone(),
            device: o.device.clone(),
            snapshot_id: o.newest_snapshot_id.clone(),
            target: Some(o.target.clone()),
            code: "Overdue".into(),
            message: match &o.newest_at {
                Some(at) => format!(
                    "newest completed snapshot: {at}, older than twice the schedule's interval ({} s)",
                    o.interval_seconds
                ),
                None => format!(
                    "no completed snapshot, though the volume and the schedule are older than twice its interval ({} s)",
                    o.interval_seconds
                ),
            },
            retryable: true,
            dedup_key: Some(format!(
                "{}/{}/{}/{}",
                report.policy,
                o.target,
                o.volume_id,
                day(&ctx.occurred_at)
            )),
            ..Default::default()
        };
        failures.push(annotate(f, &report.policy, None, &o.volume_id));
    }
    for r in report.restore_tests.iter().filter(|r| r.failed()) {
        let timed_out = r.outcome == crate::core::restore_test::Outcome::TimedOut;
        let f = TicketFailure {
            volume_id: Some(r.volume_id.clone()),
            instance_id: None,
            device: None,
            snapshot_id: Some(r.snapshot_id.clone()),
            target: Some(r.target.clone()),
            code: if timed_out {
                "RestoreTimeout"
            } else {
                "RestoreFailed"
            }
            .into(),
            message: r.message.clone().unwrap_or_default(),
            retryable: timed_out,
            dedup_key: Some(format!(
                "{}/{}/{}/restore/{}",
                report.policy,
                r.target,
                r.volume_id,
                day(&ctx.occurred_at)
            )),
            ..Default::default()
        };
        failures.push(annotate(f, &report.policy, None, &r.volume_id));
    }
    let expired_only = failures.is_empty() && !report.restore_volumes_in_use.is_empty();
    for v in &report.restore_volumes_in_use {
        let f = TicketFailure {
            volume_id: Some(v.volume_id.clone()),
            instance_id: v.attached_to.clone(),
            device: None,
            snapshot_id: v.restored_from.clone(),
            target: None,
            code: "ExpiredRestoreVolumeInUse".into(),
            message: format!(
                "restore volume {} (of {}) expired at {} but is {}{}: not deleted, never detached",
                v.volume_id,
                v.restore_of,
                v.expires.as_deref().unwrap_or("-"),
                v.state,
                v.attached_to
                    .as_ref()
                    .map(|i| format!(" on {i}"))
                    .unwrap_or_default()
            ),
            retryable: false,
            dedup_key: Some(format!(
                "{}/restore/{}/{}",
                report.policy,
                v.volume_id,
                day(&ctx.occurred_at)
            )),
            ..Default::default()
        };
        failures.push(annotate(f, &report.policy, None, &v.volume_id));
    }
    if failures.is_empty() {
        return None;
    }
    let event = if report.kind == "restore_test" {
        EVENT_RESTORE_FAILED
    } else if expired_only {
        EVENT_RESTORE_EXPIRED
    } else if failed {
        EVENT_FAILED
    } else {
        EVENT_OVERDUE
    };
    let severity = severity(report, &failures);
    let dedup_key = match (&report.target, report.kind) {
        (Some(t), _) => format!("{}/{}/{}", report.policy, t, report.run_key),
        (None, "restore_test") => format!("{}/restore_test/{}", report.policy, report.run_key),
        (None, _) => format!(
            "{}/sweep/{}/{}",
            report.policy,
            event,
            day(&ctx.occurred_at)
        ),
    };
    Some(failure_ticket(
        report, ctx, event, severity, dedup_key, failures,
    ))
}

/// Severity that means something:
/// - `critical`: a volume has had no completed snapshot for more than two intervals (overdue),
///   or the whole target failed (nothing was created and something failed, or the selection
///   itself failed);
/// - `error`: a volume failed for a reason a person must look at;
/// - `warning`: every failure is transient, so the next run is expected to fix it.
///
/// (`info` is for `snapshot.recovered`.)
fn severity(report: &Report, failures: &[TicketFailure]) -> &'static str {
    let whole_target = report.kind == "run"
        && report.created.is_empty()
        && (report.volumes_selected == 0 || !report.failures.is_empty());
    let selection = report.failures.iter().any(|f| f.code == "EmptySelection");
    if failures
        .iter()
        .all(|f| f.code == "ExpiredRestoreVolumeInUse")
    {
        return "warning";
    }
    if !report.overdue.is_empty() || (whole_target && !report.failures.is_empty()) || selection {
        "critical"
    } else if failures
        .iter()
        .all(|f| f.category == Category::Transient.as_str())
    {
        "warning"
    } else {
        "error"
    }
}

/// The `snapshot.recovered` ticket a report calls for, if any volume recovered.
pub fn recovered_from_report(report: &Report, ctx: &Context) -> Option<Ticket> {
    if report.kind == "restore_test" {
        return restore_recovered(report, ctx);
    }
    if report.recovered.is_empty() {
        return None;
    }
    let recovered: Vec<TicketRecovered> = report
        .recovered
        .iter()
        .map(|r| TicketRecovered {
            problem_keys: VOLUME_CATEGORIES
                .iter()
                .map(|c| problem_key(&report.policy, Some(&r.target), &r.volume_id, *c))
                .collect(),
            target: r.target.clone(),
            volume_id: r.volume_id.clone(),
            instance_id: r.instance_id.clone(),
            device: r.device.clone(),
            snapshot_id: r.snapshot_id.clone(),
            previous_at: r.previous_at.clone(),
        })
        .collect();
    let dedup_key = match &report.target {
        Some(t) => format!("{}/{}/{}/recovered", report.policy, t, report.run_key),
        None => format!(
            "{}/sweep/{}/{}",
            report.policy,
            EVENT_RECOVERED,
            day(&ctx.occurred_at)
        ),
    };
    Some(recovery_ticket(
        report,
        ctx,
        EVENT_RECOVERED,
        dedup_key,
        recovered,
    ))
}

/// An `info` ticket naming the volumes whose problems ended and the problem keys it resolves.
fn recovery_ticket(
    report: &Report,
    ctx: &Context,
    event: &str,
    dedup_key: String,
    recovered: Vec<TicketRecovered>,
) -> Ticket {
    let resolves = recovered
        .iter()
        .flat_map(|r| r.problem_keys.iter().cloned())
        .collect();
    Ticket {
        ebssnap: 1,
        event: event.into(),
        severity: "info".into(),
        dedup_key,
        occurred_at: ctx.occurred_at.clone(),
        account: ctx.account.clone(),
        region: ctx.region.clone(),
        policy: report.policy.clone(),
        target: report.target.clone(),
        run: RunInfo::of(report.kind, &report.run_key, ctx.invocation.as_ref()),
        failures: vec![],
        recovered,
        resolves,
        summary: summary(report),
        runner_version: env!("CARGO_PKG_VERSION").into(),
    }
}

/// The `restore.recovered` ticket of a restore test whose pairs passed after failing.
fn restore_recovered(report: &Report, ctx: &Context) -> Option<Ticket> {
    let recovered: Vec<TicketRecovered> = report
        .restore_tests
        .iter()
        .filter(|r| r.recovered)
        .map(|r| TicketRecovered {
            problem_keys: vec![problem_key(
                &report.policy,
                Some(&r.target),
                &r.volume_id,
                Category::Restore,
            )],
            target: r.target.clone(),
            volume_id: r.volume_id.clone(),
            instance_id: None,
            device: None,
            snapshot_id: Some(r.snapshot_id.clone()),
            previous_at: None,
        })
        .collect();
    if recovered.is_empty() {
        return None;
    }
    Some(recovery_ticket(
        report,
        ctx,
        EVENT_RESTORE_RECOVERED,
        format!(
            "{}/restore_test/{}/recovered",
            report.policy, report.run_key
        ),
        recovered,
    ))
}

/// The `coverage.unprotected` ticket of a sweep with `report_unprotected` (severity `warning`):
/// one failure per volume no enabled target selects.
pub fn coverage_from_report(report: &Report, ctx: &Context) -> Option<Ticket> {
    let cov = report.coverage.as_ref()?;
    if cov.unprotected.is_empty() {
        return None;
    }
    let failures = cov
        .unprotected
        .iter()
        .map(|v| {
            let mut f = annotate(
                TicketFailure {
                    volume_id: Some(v.volume_id.clone()),
                    instance_id: v.instance_id.clone(),
                    device: v.device.clone(),
                    code: "Unprotected".into(),
                    message: if v.disabled_targets.is_empty() {
                        format!(
                            "volume {}{} is selected by no ebssnap target",
                            v.volume_id,
                            v.name
                                .as_ref()
                                .map(|n| format!(" ({n})"))
                                .unwrap_or_default()
                        )
                    } else {
                        format!(
                            "volume {} is selected only by disabled targets: {}",
                            v.volume_id,
                            v.disabled_targets.join(", ")
                        )
                    },
                    retryable: false,
                    dedup_key: Some(coverage_problem_key(&report.policy, &v.volume_id)),
                    ..Default::default()
                },
                &report.policy,
                None,
                &v.volume_id,
            );
            f.problem_key = coverage_problem_key(&report.policy, &v.volume_id);
            f
        })
        .collect();
    Some(failure_ticket(
        report,
        ctx,
        EVENT_COVERAGE_UNPROTECTED,
        "warning",
        format!(
            "{}/sweep/{}/{}",
            report.policy,
            EVENT_COVERAGE_UNPROTECTED,
            day(&ctx.occurred_at)
        ),
        failures,
    ))
}

/// The `coverage.recovered` ticket: volumes whose first restore point came since the previous
/// sweep, resolving their `<policy>/coverage/<volume>/unprotected` problems.
pub fn coverage_recovered_from_report(report: &Report, ctx: &Context) -> Option<Ticket> {
    let cov = report.coverage.as_ref()?;
    if cov.newly_protected.is_empty() {
        return None;
    }
    let recovered: Vec<TicketRecovered> = cov
        .newly_protected
        .iter()
        .map(|v| TicketRecovered {
            target: String::new(),
            volume_id: v.volume_id.clone(),
            instance_id: v.instance_id.clone(),
            device: v.device.clone(),
            snapshot_id: v.snapshot_id.clone(),
            previous_at: None,
            problem_keys: vec![coverage_problem_key(&report.policy, &v.volume_id)],
        })
        .collect();
    Some(recovery_ticket(
        report,
        ctx,
        EVENT_COVERAGE_RECOVERED,
        format!(
            "{}/sweep/{}/{}",
            report.policy,
            EVENT_COVERAGE_RECOVERED,
            day(&ctx.occurred_at)
        ),
        recovered,
    ))
}

/// The `copy.failed` ticket of a run (or sweep) whose copies failed in some Region: one failure
/// per restore point or Region, `problem_key` `<policy>/<target>/<volume or Region>/copy-<region>`.
/// Informational for the run: copies never fail it.
pub fn copy_from_report(report: &Report, ctx: &Context) -> Option<Ticket> {
    let failures = report.copies.iter().flat_map(|r| {
        r.failures.iter().map(move |f| {
            let about = f.volume_id.clone().unwrap_or_else(|| r.region.clone());
            (
                about,
                copy_problem(&r.region),
                format!("copy to {}", r.region),
                f.clone(),
            )
        })
    });
    dr_ticket(report, ctx, EVENT_COPY_FAILED, failures)
}

/// The problem of a volume's copies in `region` (`copy.failed`, `copy.overdue`, resolved by
/// `copy.recovered`).
fn copy_problem(region: &str) -> String {
    format!("copy-{region}")
}

/// The `copy.overdue` ticket of a run that found volumes whose newest copy in a Region is older
/// than twice the target's interval plus 24 h (`CopyOverdue`), with the same problem keys as
/// `copy.failed`. Informational for the run.
pub fn copy_overdue_from_report(report: &Report, ctx: &Context) -> Option<Ticket> {
    let failures = report.copies.iter().flat_map(|r| {
        r.overdue.iter().map(move |o| {
            let newest = match &o.newest_copy_time {
                Some(t) => format!("its newest copy there is of the restore point of {t}"),
                None => "it has no copy there".to_string(),
            };
            let failure = CopyFailure {
                volume_id: Some(o.volume_id.clone()),
                snapshot_id: None,
                code: "CopyOverdue".into(),
                message: format!(
                    "{newest}, {} h old, past the target's limit (twice its interval plus 24 h)",
                    o.age_seconds / 3600
                ),
            };
            let what = format!("copies in {}", r.region);
            (o.volume_id.clone(), copy_problem(&r.region), what, failure)
        })
    });
    dr_ticket(report, ctx, EVENT_COPY_OVERDUE, failures)
}

/// The `copy.recovered` ticket of a run whose copies brought volumes back within their limit in
/// a Region; it resolves their `<policy>/<target>/<volume>/copy-<region>` problems.
pub fn copy_recovered_from_report(report: &Report, ctx: &Context) -> Option<Ticket> {
    let target = report.target.clone()?;
    let recovered: Vec<TicketRecovered> = report
        .copies
        .iter()
        .flat_map(|r| r.recovered.iter().map(move |v| (r, v)))
        .map(|(r, v)| TicketRecovered {
            problem_keys: vec![format!(
                "{}/{target}/{v}/{}",
                report.policy,
                copy_problem(&r.region)
            )],
            target: target.clone(),
            volume_id: v.clone(),
            ..Default::default()
        })
        .collect();
    if recovered.is_empty() {
        return None;
    }
    Some(recovery_ticket(
        report,
        ctx,
        EVENT_COPY_RECOVERED,
        format!(
            "{}/{target}/{EVENT_COPY_RECOVERED}/{}",
            report.policy, report.run_key
        ),
        recovered,
    ))
}

/// The `share.failed` ticket of a run whose restore points could not all be shared with the
/// vault accounts: `problem_key` `<policy>/<target>/<volume or Region>/share`. Informational.
pub fn share_from_report(report: &Report, ctx: &Context) -> Option<Ticket> {
    let region = ctx.region.clone().unwrap_or_else(|| "region".into());
    let failures = report.share.iter().flat_map(|s| {
        let region = region.clone();
        s.failures.iter().map(move |f| {
            let about = f.volume_id.clone().unwrap_or_else(|| region.clone());
            (about, "share".to_string(), "share".to_string(), f.clone())
        })
    });
    dr_ticket(report, ctx, EVENT_SHARE_FAILED, failures)
}

/// A ticket of disaster-recovery failures (copies, sharing): each is `(about, problem, what,
/// failure)`, its problem key `<policy>/<target>/<about>/<problem>`, its message prefixed by
/// `what`. Severity `error`; `None` without failures.
fn dr_ticket(
    report: &Report,
    ctx: &Context,
    event: &str,
    failures: impl Iterator<Item = (String, String, String, CopyFailure)>,
) -> Option<Ticket> {
    let target = report.target.as_deref().unwrap_or("sweep");
    let failures: Vec<TicketFailure> = failures
        .map(|(about, problem, what, f)| {
            let mut t = annotate(
                TicketFailure {
                    volume_id: f.volume_id,
                    snapshot_id: f.snapshot_id,
                    target: Some(target.to_string()),
                    code: f.code.clone(),
                    message: format!("{what}: {}", f.message),
                    retryable: crate::core::guide::guide(&f.code).0 == Category::Transient,
                    dedup_key: Some(format!(
                        "{}/{target}/{about}/{problem}/{}",
                        report.policy,
                        day(&ctx.occurred_at)
                    )),
                    ..Default::default()
                },
                &report.policy,
                Some(target),
                &about,
            );
            t.problem_key = format!("{}/{target}/{about}/{problem}", report.policy);
            t
        })
        .collect();
    if failures.is_empty() {
        return None;
    }
    Some(failure_ticket(
        report,
        ctx,
        event,
        "error",
        format!("{}/{target}/{event}/{}", report.policy, report.run_key),
        failures,
    ))
}

/// A ticket of failures (`info` tickets are [`recovery_ticket`]'s).
fn failure_ticket(
    report: &Report,
    ctx: &Context,
    event: &str,
    severity: &str,
    dedup_key: String,
    failures: Vec<TicketFailure>,
) -> Ticket {
    Ticket {
        ebssnap: 1,
        event: event.into(),
        severity: severity.into(),
        dedup_key,
        occurred_at: ctx.occurred_at.clone(),
        account: ctx.account.clone(),
        region: ctx.region.clone(),
        policy: report.policy.clone(),
        target: report.target.clone(),
        run: RunInfo::of(report.kind, &report.run_key, ctx.invocation.as_ref()),
        failures,
        summary: summary(report),
        runner_version: env!("CARGO_PKG_VERSION").into(),
        ..Default::default()
    }
}
