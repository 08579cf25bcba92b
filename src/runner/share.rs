//! Sharing restore points with vault accounts (docs/design.md §13): after a target run, each of
//! the run's restore points gets `createVolumePermission` for the policy's `share.account_ids`.
//! A restore point encrypted under an AWS-managed key cannot be shared (AWS refuses): it is a
//! `ShareDefaultKey` failure, never a silent skip. Each key is described once per run.

use std::collections::BTreeMap;

use tracing::{info, warn};

use super::options::RunOptions;
use crate::aws::{Clients, ec2, kms};
use crate::core::copy::{CopyFailure, DEFAULT_EBS_KEY, ShareOutcome, share_refusal};
use crate::core::doc::PolicyDocument;
use crate::core::tags::{TAG_RUN, TAG_SOURCE_SNAPSHOT};
use crate::error::AwsError;

/// Shares the restore points of run `run_key` among `listed` (the target's snapshots, listed
/// after the run's creations). `None` when the policy shares with nobody.
pub async fn share_run(
    clients: &Clients,
    policy: &PolicyDocument,
    run_key: &str,
    listed: Result<&[ec2::ManagedSnapshot], &AwsError>,
    opts: &RunOptions,
) -> Option<ShareOutcome> {
    let accounts = &policy.share.as_ref()?.account_ids;
    let mut out = ShareOutcome {
        accounts: accounts.len(),
        ..ShareOutcome::default()
    };
    if accounts.is_empty() {
        return Some(out);
    }
    let listed = match listed {
        Ok(l) => l,
        Err(e) => {
            out.failures
                .push(CopyFailure::region(e.code.clone(), e.message.clone()));
            return Some(out);
        }
    };
    let mut managed: BTreeMap<String, Result<bool, AwsError>> = BTreeMap::new();
    for s in listed
        .iter()
        .filter(|s| s.tag(TAG_RUN) == Some(run_key) && !s.tags.contains_key(TAG_SOURCE_SNAPSHOT))
    {
        if s.encrypted {
            let key = s.kms_key_id.as_deref().unwrap_or(DEFAULT_EBS_KEY);
            if !managed.contains_key(key) {
                let answer = kms::is_aws_managed(&clients.kms, key).await;
                managed.insert(key.to_string(), answer);
            }
            match &managed[key] {
                Ok(aws) => {
                    if let Some(f) = share_refusal(&s.id, &s.volume(), Some(key), *aws) {
                        out.failures.push(f);
                        continue;
                    }
                }
                Err(e) => {
                    out.failures.push(CopyFailure {
                        volume_id: Some(s.volume()),
                        snapshot_id: Some(s.id.clone()),
                        code: e.code.clone(),
                        message: e.to_string(),
                    });
                    continue;
                }
            }
        }
        if opts.dry_run {
            out.shared.push(s.id.clone());
            continue;
        }
        match ec2::share_snapshot(&clients.ec2_writes, &s.id, accounts).await {
            Ok(()) => out.shared.push(s.id.clone()),
            Err(e) => {
                warn!(snapshot = %s.id, error = %e, "not shared");
                out.failures.push(CopyFailure {
                    volume_id: Some(s.volume()),
                    snapshot_id: Some(s.id.clone()),
                    code: e.code,
                    message: e.message,
                });
            }
        }
    }
    info!(
        shared = out.shared.len(),
        failed = out.failures.len(),
        "shared"
    );
    Some(out)
}
