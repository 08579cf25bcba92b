//! Where a run's documents come from, and which source is trusted (DESIGN §3).
//!
//! - Scheduler: the `_policy` schedule and the target's schedule hold the current documents.
//! - A Lambda event is only a *pointer*: it names the policy and target and carries the run's
//!   scheduled time. It may be hours old (Lambda's async retries, a redrive) or forged by anyone
//!   allowed to invoke the function, so the runner re-reads both documents from Scheduler and
//!   uses those; a difference is a warning; a target or policy that no longer exists does nothing.
//! - CLI `--input` files are authoritative: an operator's explicit choice.

use sha2::{Digest, Sha256};
use tracing::warn;

use crate::aws::{Clients, scheduler};
use jiff::{SignedDuration, Timestamp};

use crate::core::doc::{self, Document, PolicyDocument, TargetDocument};
use crate::core::schedule;
use crate::error::Error;

/// Loads a policy document from its `_policy` schedule; a missing one is bad input.
pub async fn load_policy(clients: &Clients, policy: &str) -> Result<PolicyDocument, Error> {
    find_policy(clients, policy).await?.ok_or_else(|| {
        Error::Input(format!(
            "unknown policy {policy:?}: schedule group {} has no {} schedule; \
             check the name or apply the ebssnap_policy first",
            scheduler::group_name(policy),
            scheduler::POLICY_SCHEDULE
        ))
    })
}

/// Loads a target document from its schedule, with the schedule's interval (when it has one);
/// a missing one is bad input.
pub async fn load_target(
    clients: &Clients,
    policy: &str,
    target: &str,
) -> Result<(TargetDocument, Option<SignedDuration>), Error> {
    find_target(clients, policy, target).await?.ok_or_else(|| {
        Error::Input(format!(
            "unknown target {policy}/{target}: no such schedule in group {}",
            scheduler::group_name(policy)
        ))
    })
}

async fn find_policy(clients: &Clients, policy: &str) -> Result<Option<PolicyDocument>, Error> {
    doc::validate_policy_name(policy).map_err(Error::Input)?;
    let Some(text) =
        scheduler::get_input(&clients.scheduler, policy, scheduler::POLICY_SCHEDULE).await?
    else {
        return Ok(None);
    };
    let p = doc::parse_policy(&text).map_err(|e| {
        Error::Input(format!(
            "schedule {}/{}: {e}",
            scheduler::group_name(policy),
            scheduler::POLICY_SCHEDULE
        ))
    })?;
    if p.policy != policy {
        return Err(Error::Input(format!(
            "schedule {}/{} holds the document of policy {:?}",
            scheduler::group_name(policy),
            scheduler::POLICY_SCHEDULE,
            p.policy
        )));
    }
    Ok(Some(p))
}

async fn find_target(
    clients: &Clients,
    policy: &str,
    target: &str,
) -> Result<Option<(TargetDocument, Option<SignedDuration>)>, Error> {
    doc::validate_policy_name(policy).map_err(Error::Input)?;
    doc::validate_target_name(target).map_err(Error::Input)?;
    let Some(spec) = scheduler::get_schedule(&clients.scheduler, policy, target).await? else {
        return Ok(None);
    };
    let interval = schedule::interval_of(&spec.expression, &spec.timezone, Timestamp::now());
    let t = doc::parse_target(&spec.input).map_err(|e| {
        Error::Input(format!(
            "schedule {}/{target}: {e}",
            scheduler::group_name(policy)
        ))
    })?;
    if t.policy != policy || t.target != target {
        return Err(Error::Input(format!(
            "schedule {}/{target} holds the document of target {}/{}",
            scheduler::group_name(policy),
            t.policy,
            t.target
        )));
    }
    Ok(Some((t, interval)))
}

/// What an event points at, resolved against Scheduler.
#[derive(Debug)]
pub enum Resolved {
    /// Run this target with these (current) documents.
    Run {
        policy: Box<PolicyDocument>,
        target: Box<TargetDocument>,
        /// The target schedule's interval (recovery detection).
        interval: Option<SignedDuration>,
        warnings: Vec<String>,
    },
    /// Sweep this policy with its current document.
    Sweep {
        policy: Box<PolicyDocument>,
        warnings: Vec<String>,
    },
    /// The policy or target no longer exists: nothing to do, and no ticket.
    Unknown { what: String, message: String },
}

/// A short fingerprint of a document's settings (its invocation left out), for log lines.
fn fingerprint<T: serde::Serialize>(doc: &T) -> String {
    let text = serde_json::to_string(doc).unwrap_or_default();
    hex::encode(Sha256::digest(text.as_bytes()))
        .chars()
        .take(12)
        .collect()
}

/// The warning when an event's document differs from the schedule's current one.
fn compare<T: serde::Serialize>(what: &str, event: &T, current: &T) -> Option<String> {
    let (e, c) = (fingerprint(event), fingerprint(current));
    (e != c).then(|| {
        format!(
            "the event's {what} document (sha256 {e}) differs from the schedule's current one \
             (sha256 {c}); using the schedule's"
        )
    })
}

/// Resolves an event (DESIGN §3, "What the runner trusts"): re-reads the documents it points at
/// from Scheduler and keeps only the event's invocation (scheduled time, execution id, ...).
pub async fn resolve_event(clients: &Clients, event: Document) -> Result<Resolved, Error> {
    match event {
        Document::Target(mut ev) => {
            let invocation = ev.invocation.take();
            let (p, t) = (ev.policy.clone(), ev.target.clone());
            let Some((mut current, interval)) = find_target(clients, &p, &t).await? else {
                return Ok(unknown(
                    format!("target {p}/{t}"),
                    format!(
                        "unknown target {p}/{t}: schedule {}/{t} does not exist (removed?); nothing done",
                        scheduler::group_name(&p)
                    ),
                ));
            };
            let Some(mut policy) = find_policy(clients, &p).await? else {
                return Ok(unknown(
                    format!("policy {p}"),
                    format!(
                        "unknown policy {p}: schedule group {} has no {} schedule; nothing done",
                        scheduler::group_name(&p),
                        scheduler::POLICY_SCHEDULE
                    ),
                ));
            };
            current.invocation = None;
            let warnings: Vec<String> = compare("target", &ev, &current).into_iter().collect();
            for w in &warnings {
                warn!(policy = %p, target = %t, "{w}");
            }
            current.invocation = invocation.clone();
            policy.invocation = None;
            Ok(Resolved::Run {
                policy: Box::new(policy),
                target: Box::new(current),
                interval,
                warnings,
            })
        }
        Document::Policy(mut ev) => {
            let invocation = ev.invocation.take();
            let p = ev.policy.clone();
            let Some(mut current) = find_policy(clients, &p).await? else {
                return Ok(unknown(
                    format!("policy {p}"),
                    format!(
                        "unknown policy {p}: schedule group {} has no {} schedule (removed?); nothing done",
                        scheduler::group_name(&p),
                        scheduler::POLICY_SCHEDULE
                    ),
                ));
            };
            current.invocation = None;
            let warnings: Vec<String> = compare("policy", &ev, &current).into_iter().collect();
            for w in &warnings {
                warn!(policy = %p, "{w}");
            }
            current.invocation = invocation;
            Ok(Resolved::Sweep {
                policy: Box::new(current),
                warnings,
            })
        }
    }
}

fn unknown(what: String, message: String) -> Resolved {
    warn!("{message}");
    Resolved::Unknown { what, message }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documents_that_differ_only_in_invocation_compare_equal() {
        let a = doc::parse_policy(
            r#"{"ebssnap":1,"kind":"policy","policy":"p","retention":{"days":3}}"#,
        )
        .unwrap();
        let b = doc::parse_policy(
            r#"{"ebssnap":1,"kind":"policy","policy":"p","retention":{"days":30}}"#,
        )
        .unwrap();
        assert_eq!(compare("policy", &a, &a.clone()), None);
        let w = compare("policy", &a, &b).unwrap();
        assert!(
            w.contains("differs") && w.contains("using the schedule's"),
            "{w}"
        );
        assert_eq!(fingerprint(&a).len(), 12);
    }
}
