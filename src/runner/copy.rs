//! Disaster-recovery copies (docs/design.md §13): after a target run has pruned, its completed
//! restore points are copied to each of the policy's copy Regions, and the copies there are pruned
//! by the copy's own rules. One listing per Region; at most 20 copies pending per Region (AWS's
//! limit), the rest deferred to the next run; a copy whose answer was lost is looked up by its
//! `ebssnap:source-snapshot` tag before anything is sent again. A Region that fails is reported
//! in the run's `copies`; it never fails the run.

use tracing::{info, warn};

use super::options::RunOptions;
use crate::aws::{Clients, THROTTLE_CODES, ec2};
use crate::core::copy::{self, CopyFailure, RegionCopies, Source, Started};
use crate::core::doc::{CopyDoc, PolicyDocument, TargetDocument};
use crate::core::retention::{self, Scope, SnapState};
use crate::core::tags::TAG_SOURCE_SNAPSHOT;
use crate::error::AwsError;

/// The target's snapshots in the run's Region, listed once after the run's creations, for
/// its copies and its sharing; `None` when the policy does neither.
pub async fn list_for_copies_and_share(
    clients: &Clients,
    policy: &PolicyDocument,
    target: &TargetDocument,
) -> Option<Result<Vec<ec2::ManagedSnapshot>, AwsError>> {
    if policy.copies.is_empty() && policy.share.is_none() {
        return None;
    }
    Some(
        ec2::list_managed_snapshots(&clients.ec2, &policy.policy, Some(&target.target), None).await,
    )
}

/// Copies and prunes the copies of one target's restore points (`listed`: the target's
/// snapshots in the run's Region) in every copy Region.
pub async fn copy_and_prune(
    clients: &Clients,
    policy: &PolicyDocument,
    target: &TargetDocument,
    listed: Result<&[ec2::ManagedSnapshot], &AwsError>,
    opts: &RunOptions,
) -> Vec<RegionCopies> {
    if policy.copies.is_empty() {
        return Vec::new();
    }
    let Some(source_region) = clients.region.clone() else {
        return policy
            .copies
            .iter()
            .map(|c| {
                failed(
                    c,
                    CopyFailure::region(
                        "UnknownRegion",
                        "the run's own Region is unknown: set AWS_REGION",
                    ),
                )
            })
            .collect();
    };
    let sources = match listed {
        Ok(list) => list
            .iter()
            .filter(|m| !m.tags.contains_key(TAG_SOURCE_SNAPSHOT))
            .map(|m| Source {
                volume: m.volume(),
                run: m.tag(crate::core::tags::TAG_RUN).map(String::from),
                completed: m.state == "completed",
                snapshot_id: m.id.clone(),
                start_time: m.start_time,
                encrypted: m.encrypted,
                tags: m.tags.clone(),
            })
            .collect::<Vec<_>>(),
        Err(e) => {
            return policy
                .copies
                .iter()
                .map(|c| failed(c, CopyFailure::region(e.code.clone(), e.message.clone())))
                .collect();
        }
    };
    let mut out = Vec::new();
    for c in &policy.copies {
        if c.region == source_region {
            out.push(failed(
                c,
                CopyFailure::region(
                    "CopyToOwnRegion",
                    format!("the copy Region {} is the policy's own Region", c.region),
                ),
            ));
            continue;
        }
        out.push(one_region(clients, policy, target, c, &source_region, &sources, opts).await);
    }
    out
}

fn failed(c: &CopyDoc, why: CopyFailure) -> RegionCopies {
    RegionCopies {
        region: c.region.clone(),
        failures: vec![why],
        ..RegionCopies::default()
    }
}

async fn one_region(
    clients: &Clients,
    policy: &PolicyDocument,
    target: &TargetDocument,
    c: &CopyDoc,
    source_region: &str,
    sources: &[Source],
    opts: &RunOptions,
) -> RegionCopies {
    let dest = clients.in_region(&c.region);
    let mut r = RegionCopies {
        region: c.region.clone(),
        ..RegionCopies::default()
    };
    let listed = match ec2::list_copies(&dest.ec2, &policy.policy, Some(&target.target)).await {
        Ok(l) => l,
        Err(e) => {
            warn!(region = %c.region, error = %e, "copy Region not readable");
            r.failures.push(CopyFailure::region(e.code, e.message));
            return r;
        }
    };
    let mut copies: Vec<(retention::Snap, String)> = listed
        .iter()
        .filter_map(|m| Some((m.to_snap(), m.tag(TAG_SOURCE_SNAPSHOT)?.to_string())))
        .collect();
    // A copy EBS could not complete: reported (and made again, since it does not count).
    for m in listed.iter().filter(|m| m.state == "error") {
        r.failures.push(CopyFailure {
            volume_id: Some(m.volume()),
            snapshot_id: Some(m.id.clone()),
            code: "CopyError".into(),
            message: format!(
                "copy {} of {} ended in state error",
                m.id,
                m.tag(TAG_SOURCE_SNAPSHOT).unwrap_or("?")
            ),
        });
    }
    // The copy block's rules, under the target's override for this Region.
    let rules = match target.copies.iter().find(|o| o.region == c.region) {
        Some(o) => o.rules(c.rules(&policy.rules())),
        None => c.rules(&policy.rules()),
    };
    let plan = copy::plan(
        &policy.policy,
        &target.target,
        sources,
        &copies,
        rules,
        opts.now,
    );
    r.pending = plan.pending;
    r.deferred = plan.deferred;
    r.too_old = plan.too_old;
    let description = format!(
        "ebssnap copy {}/{} from {source_region}",
        policy.policy, target.target
    );
    let before: Vec<retention::Snap> = copies.iter().map(|(s, _)| s.clone()).collect();
    let mut start = plan.start.into_iter();
    while let Some(s) = start.next() {
        if opts.dry_run {
            r.deferred += 1;
            continue;
        }
        let tags = copy::tags(&s, source_region, c.copy_tags());
        let send = || {
            ec2::copy_snapshot(
                &dest.ec2_writes,
                source_region,
                &s.snapshot_id,
                s.encrypted,
                c.kms_key_id.as_deref(),
                &description,
                &tags,
            )
        };
        let mut outcome = send().await;
        if let Err(e) = &outcome
            && e.ambiguous
        {
            // AWS may have started it: look before sending again (one copy per restore point).
            match ec2::find_copies(
                &dest.ec2,
                &policy.policy,
                std::slice::from_ref(&s.snapshot_id),
            )
            .await
            {
                Ok(found) if !found.is_empty() => {
                    r.found += 1;
                    outcome = Ok(found[0].id.clone());
                }
                Ok(_) => outcome = send().await,
                Err(e) => outcome = Err(e),
            }
        }
        match outcome {
            Ok(id) => {
                copies.push((
                    retention::Snap {
                        id: id.clone(),
                        owned: true,
                        policy: Some(policy.policy.clone()),
                        target: Some(target.target.clone()),
                        volume: s.volume.clone(),
                        run: s.run.clone(),
                        state: SnapState::Pending,
                        start_time: s.start_time,
                        copy: true,
                    },
                    s.snapshot_id.clone(),
                ));
                r.started.push(Started {
                    source_snapshot_id: s.snapshot_id.clone(),
                    copy_snapshot_id: id,
                    volume_id: s.volume.clone(),
                });
            }
            // The Region's 20 concurrent copies are taken, or EC2 asks to slow down: later.
            Err(e) if e.code == "ResourceLimitExceeded" || THROTTLE_CODES.contains(&&*e.code) => {
                r.deferred += 1 + start.len();
                break;
            }
            Err(e) => r.failures.push(CopyFailure {
                volume_id: Some(s.volume.clone()),
                snapshot_id: Some(s.snapshot_id.clone()),
                code: e.code,
                message: e.message,
            }),
        }
    }
    // The copy's own rules, over this target's copies there: never because the source went.
    let snaps: Vec<retention::Snap> = copies.into_iter().map(|(s, _)| s).collect();
    if let Some(interval) = opts.interval {
        (r.overdue, r.recovered) = copy::overdue(sources, &before, &snaps, interval, opts.now);
    }
    let prune = retention::plan(
        &Scope::Copies {
            policy: &policy.policy,
            target: Some(&target.target),
        },
        &snaps,
        |_| rules,
        |_| false,
        opts.now,
    );
    delete(&dest, prune.delete, opts.dry_run, &mut r).await;
    info!(
        region = %c.region,
        started = r.started.len(),
        deferred = r.deferred,
        pending = r.pending,
        deleted = r.deleted.len(),
        "copies"
    );
    r
}

/// A sweep's share of the copies: in each copy Region, the copies of targets that no longer
/// exist are pruned by the copy's rules (a live target's copies are its runs' to prune; a target
/// whose document cannot be read is left alone). Never because the source is gone.
pub async fn sweep_removed_targets(
    clients: &Clients,
    policy: &PolicyDocument,
    live: &[TargetDocument],
    unreadable: &std::collections::BTreeSet<String>,
    opts: &RunOptions,
) -> Vec<RegionCopies> {
    let removed = |t: Option<&String>| {
        t.is_some_and(|t| !unreadable.contains(t) && !live.iter().any(|l| &l.target == t))
    };
    let mut out = Vec::new();
    for c in &policy.copies {
        if clients.region.as_deref() == Some(c.region.as_str()) {
            continue;
        }
        let mut r = RegionCopies {
            region: c.region.clone(),
            ..RegionCopies::default()
        };
        // Pairs are planned independently: the live targets' decisions are simply not acted on.
        match plan_region(clients, policy, c, live, unreadable, opts.now).await {
            Ok((listed, plan)) => {
                r.pending = listed
                    .iter()
                    .map(|m| m.to_snap())
                    .filter(|s| removed(s.target.as_ref()) && s.state == SnapState::Pending)
                    .count();
                let deletes = plan
                    .delete
                    .into_iter()
                    .filter(|d| removed(Some(&d.target)))
                    .collect();
                delete(&clients.in_region(&c.region), deletes, opts.dry_run, &mut r).await;
            }
            Err(e) => r.failures.push(CopyFailure::region(e.code, e.message)),
        }
        out.push(r);
    }
    out
}

/// What the copy rules decide for a policy's copies in one copy Region (`ebssnap snapshots`):
/// each live target's copies by its rules there (its `copy_retention` on the block's), removed
/// targets' by the block's; the copies of `unreadable` targets are left out, as the sweep leaves
/// them. The copies as listed, and the plan.
pub async fn plan_region(
    clients: &Clients,
    policy: &PolicyDocument,
    c: &CopyDoc,
    live: &[TargetDocument],
    unreadable: &std::collections::BTreeSet<String>,
    now: jiff::Timestamp,
) -> Result<(Vec<ec2::ManagedSnapshot>, retention::Plan), AwsError> {
    let dest = clients.in_region(&c.region);
    let listed = ec2::list_copies(&dest.ec2, &policy.policy, None).await?;
    let block = c.rules(&policy.rules());
    let rules: std::collections::BTreeMap<&str, crate::core::doc::Rules> = live
        .iter()
        .map(|t| {
            let r = match t.copies.iter().find(|o| o.region == c.region) {
                Some(o) => o.rules(block),
                None => block,
            };
            (t.target.as_str(), r)
        })
        .collect();
    let snaps: Vec<retention::Snap> = listed
        .iter()
        .map(|m| m.to_snap())
        .filter(|s| !s.target.as_ref().is_some_and(|t| unreadable.contains(t)))
        .collect();
    let plan = retention::plan(
        &Scope::Copies {
            policy: &policy.policy,
            target: None,
        },
        &snaps,
        |t| rules.get(t).copied().unwrap_or(block),
        |_| false,
        now,
    );
    Ok((listed, plan))
}

/// Deletes the copies a plan lets go (a dry run only reports them); a copy already gone is
/// deleted.
async fn delete(
    dest: &Clients,
    deletes: Vec<retention::Decision>,
    dry_run: bool,
    r: &mut RegionCopies,
) {
    for d in deletes {
        if dry_run {
            r.deleted.push(d.snapshot_id);
            continue;
        }
        match ec2::delete_snapshot(&dest.ec2_writes, &d.snapshot_id).await {
            Ok(_) => r.deleted.push(d.snapshot_id),
            Err(e) => r.failures.push(CopyFailure {
                volume_id: Some(d.volume_id.clone()),
                snapshot_id: Some(d.snapshot_id.clone()),
                code: e.code,
                message: e.message,
            }),
        }
    }
}
