//! Restore tests (docs/design.md §11): restore a rotating sample of a policy's restore points
//! into throwaway volumes, time them, delete them, and write the outcome on the tested snapshot.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use jiff::{SignedDuration, Timestamp};
use tracing::{Instrument, info, info_span, warn};

use super::notify::finish;
use super::options::RunOptions;
use super::restore::{create_once, request_token, restore_volume, source_shape, wait_for};
use crate::aws::Clients;
use crate::aws::ec2::{self, NewVolume};
use crate::core::doc::{Invocation, PolicyDocument};
use crate::core::report::{Ambiguous, Report, RestoreTestResult};
use crate::core::restore::{self, Fate, ShapeFlags};
use crate::core::restore_test::{
    self, Outcome, Pair, TAG_RESTORE_FAILED, TAG_RESTORE_TEST, TAG_RESTORE_TESTED,
};
use crate::error::Error;

/// How a test run behaves (the `restore_test` block of a policy, or the CLI's flags).
#[derive(Debug, Clone, Copy)]
pub struct Settings {
    /// Pairs tested per run.
    pub sample: usize,
    /// How long one restore may take to become `available` before it counts as failed.
    pub timeout: Duration,
}

/// A test volume outlives a crashed test by at most this past its timeout: then a later test
/// (or `ebssnap restore cleanup`) deletes it.
const LEFTOVER_GRACE: SignedDuration = SignedDuration::from_hours(1);

/// Runs one restore test of `policy` and raises its tickets (`restore.failed`,
/// `restore.recovered`) on the policy's channels.
pub async fn restore_test(
    clients: &Clients,
    policy: &PolicyDocument,
    settings: &Settings,
    invocation: Option<&Invocation>,
    opts: &RunOptions,
) -> Result<Report, Error> {
    let run_key = invocation
        .and_then(|i| i.scheduled_time())
        .map(String::from)
        .unwrap_or_else(|| {
            opts.now
                .round(jiff::Unit::Second)
                .unwrap_or(opts.now)
                .to_string()
        });
    let span = info_span!("restore_test", policy = %policy.policy, run = %run_key);
    let result = test(clients, policy, settings, &run_key, opts)
        .instrument(span)
        .await;
    finish(clients, policy, None, &run_key, invocation, opts, result).await
}

async fn test(
    clients: &Clients,
    policy: &PolicyDocument,
    settings: &Settings,
    run_key: &str,
    opts: &RunOptions,
) -> Result<Report, Error> {
    let started = Instant::now();
    let calls_before = clients.calls.snapshot();
    let mut report = Report {
        kind: "restore_test",
        policy: policy.policy.clone(),
        run_key: run_key.to_string(),
        dry_run: opts.dry_run,
        now: opts.now.to_string(),
        ..Report::default()
    };
    // A crashed test's volume: deleted once past its expiry, if nothing uses it.
    for v in ec2::restore_test_volumes(&clients.ec2, &policy.policy).await? {
        let v = restore_volume(v);
        match restore::fate(&v, opts.now) {
            Fate::Delete if !opts.dry_run => {
                if let Err(e) = ec2::delete_volume(&clients.ec2_writes, &v.volume_id).await {
                    report.warnings.push(format!(
                        "a leftover test volume {} was not deleted: {e}",
                        v.volume_id
                    ));
                } else {
                    report
                        .warnings
                        .push(format!("deleted the leftover test volume {}", v.volume_id));
                }
            }
            Fate::ExpiredInUse => report.warnings.push(format!(
                "the test volume {} is past its expiry but {}: not touched",
                v.volume_id, v.state
            )),
            _ => {}
        }
    }
    let pairs = restore_test::pairs(ec2::policy_points(&clients.ec2, &policy.policy).await?);
    for p in pairs.iter().filter(|p| !p.errors.is_empty()) {
        report.warnings.push(format!(
            "{}/{}: restore point(s) in state error, never tested: {}",
            p.target,
            p.volume_id,
            p.errors.join(", ")
        ));
    }
    let chosen = restore_test::pick(&pairs, settings.sample);
    report.volumes_selected = chosen.len();
    let zones = ec2::availability_zones(&clients.ec2).await?;
    let fallback_zone = zones.iter().find(|(_, up)| *up).map(|(z, _)| z.clone());
    let mut ambiguous = Ambiguous::default();
    for pair in chosen {
        let result = if opts.out_of_time() {
            not_started(pair)
        } else if opts.dry_run {
            RestoreTestResult {
                message: Some("dry run: would restore and delete".into()),
                ..not_started(pair)
            }
        } else {
            test_pair(
                clients,
                policy,
                pair,
                settings,
                fallback_zone.as_deref(),
                opts,
                &mut ambiguous,
            )
            .await
        };
        info!(
            target = %result.target,
            volume = %result.volume_id,
            outcome = ?result.outcome,
            seconds = result.seconds,
            "restore test"
        );
        report.restore_tests.push(result);
    }
    report.ambiguous.add(ambiguous);
    report.api_calls = clients.calls.since(&calls_before);
    report.duration_ms = started.elapsed().as_millis() as u64;
    Ok(report)
}

fn not_started(pair: &Pair) -> RestoreTestResult {
    let p = pair.newest.as_ref();
    RestoreTestResult {
        target: pair.target.clone(),
        volume_id: pair.volume_id.clone(),
        snapshot_id: p.map(|p| p.snapshot_id.clone()).unwrap_or_default(),
        run: p.and_then(|p| p.run.clone()),
        restore_volume_id: None,
        outcome: Outcome::NotStarted,
        seconds: None,
        message: None,
        recovered: false,
        volume_deleted: false,
    }
}

/// Restores a pair's newest completed restore point, waits for `available`, deletes the volume
/// and tags the snapshot with the outcome.
async fn test_pair(
    clients: &Clients,
    policy: &PolicyDocument,
    pair: &Pair,
    settings: &Settings,
    fallback_zone: Option<&str>,
    opts: &RunOptions,
    ambiguous: &mut Ambiguous,
) -> RestoreTestResult {
    let mut out = not_started(pair);
    let Some(point) = pair.newest.as_ref() else {
        return out;
    };
    let fail = |mut out: RestoreTestResult, outcome: Outcome, message: String| {
        out.outcome = outcome;
        out.message = Some(message);
        out
    };
    let source = match ec2::describe_volume(&clients.ec2, &pair.volume_id).await {
        Ok(s) => s,
        Err(e) => return fail(out, Outcome::Failed, e.to_string()),
    };
    let Some(zone) = source
        .as_ref()
        .map(|s| s.zone.clone())
        .or(fallback_zone.map(String::from))
    else {
        return fail(
            out,
            Outcome::Failed,
            "no Availability Zone is available".into(),
        );
    };
    let source_shape = source_shape(source.as_ref());
    let shape = match restore::shape(&ShapeFlags::default(), &source_shape, point.size_gb) {
        Ok(s) => s,
        Err(e) => return fail(out, Outcome::Failed, e),
    };
    let token = request_token(&pair.volume_id, opts.now);
    let now = Timestamp::now();
    let expires = now.round(jiff::Unit::Second).unwrap_or(now)
        + SignedDuration::try_from(settings.timeout).unwrap_or(SignedDuration::ZERO)
        + LEFTOVER_GRACE;
    let mut tags = restore::tags(point, &pair.volume_id, None, Some(expires), &token);
    tags.push((TAG_RESTORE_TEST.to_string(), policy.policy.clone()));
    let new = NewVolume {
        snapshot_id: &point.snapshot_id,
        zone: &zone,
        shape: &shape,
        encrypted: point.encrypted,
        kms_key_id: None,
        tags: &tags,
        token: &token,
    };
    let t0 = Instant::now();
    let made = create_once(clients, &new, ambiguous).await;
    let id = match made {
        Ok(id) => id,
        Err(e) => {
            out = fail(out, Outcome::Failed, e.to_string());
            mark(clients, point, false, &mut out).await;
            return out;
        }
    };
    out.restore_volume_id = Some(id.clone());
    // The wait is bounded by the test's timeout and the run's time.
    let left = opts
        .stop_at
        .map(|t| t.saturating_duration_since(Instant::now()))
        .unwrap_or(settings.timeout);
    let waited = wait_for(clients, &id, "available", settings.timeout.min(left)).await;
    match waited {
        Ok(_) => {
            out.outcome = Outcome::Passed;
            out.seconds = Some(t0.elapsed().as_secs_f64());
            out.recovered = pair.failing();
        }
        Err(Error::Aws(e)) if e.code == "Timeout" => {
            out = fail(
                out,
                Outcome::TimedOut,
                format!(
                    "the restore volume was not available within {} s",
                    settings.timeout.min(left).as_secs()
                ),
            );
        }
        Err(e) => out = fail(out, Outcome::Failed, e.to_string()),
    }
    match ec2::delete_volume(&clients.ec2_writes, &id).await {
        Ok(()) => out.volume_deleted = true,
        Err(e) => {
            warn!(volume = %id, error = %e, "the test volume was not deleted; a later test deletes it once expired");
            let m = out.message.take();
            out.message = Some(
                [
                    m,
                    Some(format!("the test volume {id} was not deleted: {e}")),
                ]
                .into_iter()
                .flatten()
                .collect::<Vec<_>>()
                .join("; "),
            );
        }
    }
    let passed = out.outcome == Outcome::Passed;
    mark(clients, point, passed, &mut out).await;
    out
}

/// Writes the outcome on the tested snapshot: the only tags ebssnap adds to an existing one.
async fn mark(
    clients: &Clients,
    point: &restore::Point,
    passed: bool,
    out: &mut RestoreTestResult,
) {
    let key = if passed {
        TAG_RESTORE_TESTED
    } else {
        TAG_RESTORE_FAILED
    };
    let now = Timestamp::now()
        .round(jiff::Unit::Second)
        .unwrap_or_else(|_| Timestamp::now());
    let tags = BTreeMap::from([(key.to_string(), now.to_string())]);
    if let Err(e) = ec2::tag_snapshot(&clients.ec2_writes, &point.snapshot_id, &tags).await {
        warn!(snapshot = %point.snapshot_id, error = %e, "the test's outcome was not written on the snapshot");
        let m = out.message.take();
        out.message = Some(
            [
                m,
                Some(format!(
                    "the outcome was not written on {}: {e}",
                    point.snapshot_id
                )),
            ]
            .into_iter()
            .flatten()
            .collect::<Vec<_>>()
            .join("; "),
        );
    }
}
