//! Where a run's documents come from, and which source is trusted (docs/design.md §3).
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

use crate::core::doc::{
    self, Document, Invocation, PolicyDocument, RestoreTestDocument, TargetDocument,
};
use crate::core::schedule;
use crate::core::trust::{self, ScheduleFacts};
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
    Ok(find_policy_schedule(clients, policy).await?.map(|(p, _)| p))
}

/// The policy document and the facts of the `_policy` schedule that holds it.
async fn find_policy_schedule(
    clients: &Clients,
    policy: &str,
) -> Result<Option<(PolicyDocument, ScheduleFacts)>, Error> {
    doc::validate_policy_name(policy).map_err(Error::Input)?;
    let Some(spec) =
        scheduler::get_schedule(&clients.scheduler, policy, scheduler::POLICY_SCHEDULE).await?
    else {
        return Ok(None);
    };
    let p = doc::parse_policy(&spec.input).map_err(|e| {
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
    Ok(Some((p, facts(&spec))))
}

/// A policy's restore-test document and its schedule's facts; `None` when the policy has no
/// `_restore_test` schedule.
pub async fn find_restore_test_schedule(
    clients: &Clients,
    policy: &str,
) -> Result<Option<(RestoreTestDocument, ScheduleFacts)>, Error> {
    doc::validate_policy_name(policy).map_err(Error::Input)?;
    let name = scheduler::RESTORE_TEST_SCHEDULE;
    let Some(spec) = scheduler::get_schedule(&clients.scheduler, policy, name).await? else {
        return Ok(None);
    };
    let where_ = || format!("schedule {}/{name}", scheduler::group_name(policy));
    let d = doc::parse_restore_test(&spec.input)
        .map_err(|e| Error::Input(format!("{}: {e}", where_())))?;
    if d.policy != policy {
        return Err(Error::Input(format!(
            "{} holds the restore-test document of policy {:?}",
            where_(),
            d.policy
        )));
    }
    Ok(Some((d, facts(&spec))))
}

fn facts(spec: &scheduler::ScheduleSpec) -> ScheduleFacts {
    ScheduleFacts {
        expression: spec.expression.clone(),
        timezone: spec.timezone.clone(),
        flexible_window_minutes: spec.flexible_window_minutes,
        max_event_age_seconds: spec.max_event_age_seconds,
        arn: spec.arn.clone(),
    }
}

async fn find_target(
    clients: &Clients,
    policy: &str,
    target: &str,
) -> Result<Option<(TargetDocument, Option<SignedDuration>)>, Error> {
    Ok(find_target_schedule(clients, policy, target)
        .await?
        .map(|(t, i, _)| (t, i)))
}

/// The target document, its interval and the facts of the schedule that holds it.
async fn find_target_schedule(
    clients: &Clients,
    policy: &str,
    target: &str,
) -> Result<Option<(TargetDocument, Option<SignedDuration>, ScheduleFacts)>, Error> {
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
    Ok(Some((t, interval, facts(&spec))))
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
    /// Test restores of this policy with its current restore-test document.
    RestoreTest {
        policy: Box<PolicyDocument>,
        test: Box<RestoreTestDocument>,
        warnings: Vec<String>,
    },
    /// The policy or target no longer exists: nothing to do, and no ticket.
    Unknown { what: String, message: String },
    /// The event's run key is not one its schedule could have sent (forged, replayed long
    /// after, or a placeholder): nothing done, and no ticket (a forger must not page anyone).
    Rejected { what: String, reason: String },
}

/// Where an event sits in its run: Scheduler's delivery (link 1, run key from the scheduled
/// time) or a continuation (a later link, run key from the marker).
#[derive(Debug, Clone, Copy)]
pub struct Link<'a> {
    pub number: u32,
    pub run_key: Option<&'a str>,
}

impl Link<'_> {
    pub const FIRST: Link<'static> = Link {
        number: 1,
        run_key: None,
    };
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

/// Checks the event's run key against the schedule re-read from Scheduler ([`trust`]) and keeps
/// of its invocation only what matches that schedule. The scheduled time of link 1 becomes the
/// checked run key; `Err` is why the event is refused.
fn vouch(
    invocation: Option<Invocation>,
    facts: &ScheduleFacts,
    link: Link<'_>,
    now: Timestamp,
    warnings: &mut Vec<String>,
) -> Result<Option<Invocation>, String> {
    let raw = match link.run_key {
        Some(k) => Some(k),
        None => invocation
            .as_ref()
            .and_then(|i| i.scheduled_time.as_deref()),
    };
    let key = trust::check_scheduled_time(raw, facts, link.number, now)?;
    if let Some(carried) = link.run_key
        && carried != key
    {
        return Err(format!(
            "the continuation's run key {carried:?} is not a run of this schedule (its fire time is {key})"
        ));
    }
    let mut inv = invocation.unwrap_or_default();
    if link.run_key.is_none() {
        inv.scheduled_time = Some(key);
    }
    let claimed = inv.schedule_arn().map(String::from);
    let vouched = claimed.is_some() && claimed == facts.arn;
    if !vouched && (claimed.is_some() || inv.execution_id().is_some() || inv.attempt().is_some()) {
        warnings.push(format!(
            "the event's schedule ARN ({}) is not the schedule's ({}): its schedule_arn, \
             execution_id and attempt are left out of reports and tickets",
            claimed.as_deref().unwrap_or("absent"),
            facts.arn.as_deref().unwrap_or("unknown")
        ));
    }
    if !vouched {
        inv.schedule_arn = None;
        inv.execution_id = None;
        inv.attempt = None;
    }
    Ok(Some(inv))
}

/// Resolves an event (docs/design.md, "What the runner trusts"): re-reads the documents it
/// points at from Scheduler, checks its run key against that schedule and keeps only the
/// invocation facts that schedule vouches for.
pub async fn resolve_event(
    clients: &Clients,
    event: Document,
    link: Link<'_>,
    now: Timestamp,
) -> Result<Resolved, Error> {
    match event {
        Document::Target(mut ev) => {
            let invocation = ev.invocation.take();
            let (p, t) = (ev.policy.clone(), ev.target.clone());
            let Some((mut current, interval, facts)) =
                find_target_schedule(clients, &p, &t).await?
            else {
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
            let mut warnings: Vec<String> = compare("target", &ev, &current).into_iter().collect();
            current.invocation = match vouch(invocation, &facts, link, now, &mut warnings) {
                Ok(i) => i,
                Err(reason) => return Ok(rejected(format!("target {p}/{t}"), reason)),
            };
            for w in &warnings {
                warn!(policy = %p, target = %t, "{w}");
            }
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
            let Some((mut current, facts)) = find_policy_schedule(clients, &p).await? else {
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
            let mut warnings: Vec<String> = compare("policy", &ev, &current).into_iter().collect();
            current.invocation = match vouch(invocation, &facts, link, now, &mut warnings) {
                Ok(i) => i,
                Err(reason) => return Ok(rejected(format!("policy {p}"), reason)),
            };
            for w in &warnings {
                warn!(policy = %p, "{w}");
            }
            Ok(Resolved::Sweep {
                policy: Box::new(current),
                warnings,
            })
        }
        Document::RestoreTest(mut ev) => {
            let invocation = ev.invocation.take();
            let p = ev.policy.clone();
            let what = format!("restore test of policy {p}");
            let Some((mut current, facts)) = find_restore_test_schedule(clients, &p).await? else {
                return Ok(unknown(
                    what,
                    format!(
                        "policy {p} has no restore tests: schedule {}/{} does not exist (removed?); nothing done",
                        scheduler::group_name(&p),
                        scheduler::RESTORE_TEST_SCHEDULE
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
            let mut warnings: Vec<String> =
                compare("restore-test", &ev, &current).into_iter().collect();
            current.invocation = match vouch(invocation, &facts, link, now, &mut warnings) {
                Ok(i) => i,
                Err(reason) => return Ok(rejected(what, reason)),
            };
            for w in &warnings {
                warn!(policy = %p, "{w}");
            }
            policy.invocation = None;
            Ok(Resolved::RestoreTest {
                policy: Box::new(policy),
                test: Box::new(current),
                warnings,
            })
        }
    }
}

fn rejected(what: String, reason: String) -> Resolved {
    warn!(event = %what, "event rejected: {reason}; nothing done");
    Resolved::Rejected { what, reason }
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
