//! Executing a retention plan: deletions with bounded concurrency (or only the report of them in
//! a dry run). `NotFound` is success, `InUse` (an AMI) is reported and kept, anything else fails.

use futures::StreamExt;

use super::exactly_once::Tally;
use super::options::RunOptions;
use super::pace::{NOT_STARTED, Pacer, Repeat, START_RATE, paced};
use crate::aws::Clients;
use crate::aws::ec2::{self, Deleted};
use crate::core::report::{DeletedSnapshot, Failure, InUse, Report};
use crate::core::retention;

/// Executes a retention plan (or only reports it in a dry run).
pub(super) async fn prune(
    clients: &Clients,
    plan: retention::Plan,
    opts: &RunOptions,
    report: &mut Report,
) {
    report.kept += plan.keep.len();
    report.error_snapshots.extend(plan.errors);
    if opts.dry_run {
        report
            .deleted
            .extend(plan.delete.into_iter().map(|d| DeletedSnapshot {
                snapshot_id: d.snapshot_id,
                volume_id: d.volume_id,
                target: d.target,
                reason: d.reason,
            }));
        return;
    }
    let total = plan.delete.len();
    let pacer = &Pacer::new("DeleteSnapshot", &clients.calls, START_RATE);
    let tally = &Tally::default();
    let mut results = futures::stream::iter(plan.delete)
        .map(|d| async move {
            if opts.out_of_time() {
                return (d, None);
            }
            let r = paced(pacer, opts, &d.snapshot_id, Repeat::Harmless(tally), || {
                ec2::delete_snapshot(&clients.ec2_writes, &d.snapshot_id)
            })
            .await;
            (d, Some(r))
        })
        .buffer_unordered(opts.concurrency.max(1));
    let mut n = 0;
    while let Some((d, r)) = results.next().await {
        n += 1;
        opts.tick("deletions", n, total);
        match r {
            None => report.kept += 1,
            // Not sent: the run's time ran out. Kept; the next prune decides again.
            Some(Err(e)) if e.code == NOT_STARTED => report.kept += 1,
            Some(Ok(Deleted::Deleted | Deleted::Gone)) => report.deleted.push(DeletedSnapshot {
                snapshot_id: d.snapshot_id,
                volume_id: d.volume_id,
                target: d.target,
                reason: d.reason,
            }),
            Some(Ok(Deleted::InUse(message))) => {
                report.kept += 1;
                report.in_use.push(InUse {
                    snapshot_id: d.snapshot_id,
                    volume_id: d.volume_id,
                    message,
                });
            }
            Some(Err(e)) => {
                report.kept += 1;
                report.failures.push(Failure {
                    volume_id: d.volume_id,
                    instance_id: None,
                    device: None,
                    snapshot_id: Some(d.snapshot_id),
                    code: e.code,
                    message: e.message,
                    retryable: e.retryable,
                    reference: None,
                });
            }
        }
    }
    report.ambiguous.add(tally.total());
    report
        .deleted
        .sort_by(|a, b| a.snapshot_id.cmp(&b.snapshot_id));
}
