//! Finishing a run across invocations (docs/design.md §5). Near the Lambda deadline with volumes not yet
//! started, the run continues in an asynchronous invocation of its own function: the same event
//! (the target document, a pointer) plus a continuation marker with the next link number and the
//! run key. The next link skips what is done (the run key) and carries on; pruning happens once,
//! in the link that finishes creations. After the last allowed link, or without a chain (the CLI),
//! volumes not started are failures: a ticket, never a quiet skip.

use std::collections::BTreeMap;

use tracing::{info, warn};

use super::options::RunOptions;
use crate::aws::{Clients, lambda};
use crate::core::doc::{Continuation, MAX_CARRIED_VOLUMES, TargetDocument};
use crate::core::report::{Failure, Report, Skipped};
use crate::core::select::Selected;

/// The most an asynchronous Lambda invocation's event may hold.
pub const MAX_EVENT_BYTES: usize = 256 * 1024;

/// The event of the next link: the target document with the continuation marker beside it,
/// carrying `volumes` (the run's remaining volumes) when the event stays within
/// [`MAX_EVENT_BYTES`]; otherwise without them (the next link reads the whole inventory).
pub fn next_event(
    target: &TargetDocument,
    run_key: &str,
    link: u32,
    rates: BTreeMap<String, f64>,
    volumes: Vec<String>,
) -> Vec<u8> {
    let event = |volumes: Vec<String>| {
        let mut v = serde_json::to_value(target).unwrap_or_default();
        if let Some(o) = v.as_object_mut() {
            o.insert(
                "continuation".into(),
                serde_json::json!(Continuation {
                    link,
                    run_key: run_key.to_string(),
                    rates: rates.clone(),
                    volumes,
                }),
            );
        }
        v.to_string().into_bytes()
    };
    let carried = volumes.len();
    if carried > 0 && carried <= MAX_CARRIED_VOLUMES {
        let with = event(volumes);
        if with.len() <= MAX_EVENT_BYTES {
            return with;
        }
    }
    if carried > 0 {
        info!(
            carried,
            "the run's remaining volumes do not fit the next link's event: it reads the whole inventory"
        );
    }
    event(Vec::new())
}

/// The volumes the next link is to carry on with: those not started and those that failed here
/// (the next link retries them). None when the selection itself failed in part (`NotFound`,
/// `EmptySelection`: the next link decides those again on the whole inventory) or when the
/// target has `instance_filters` (its next link reads everything anyway).
fn carry(target: &TargetDocument, unstarted: &[Selected], failures: &[Failure]) -> Vec<String> {
    let selection_failed = failures
        .iter()
        .any(|f| f.volume_id.is_empty() || f.reference.is_some());
    if selection_failed || target.select.instance_filters().is_some() {
        return Vec::new();
    }
    let mut out: Vec<String> = unstarted
        .iter()
        .map(|s| s.volume_id.clone())
        .chain(failures.iter().map(|f| f.volume_id.clone()))
        .collect();
    out.sort();
    out.dedup();
    out
}

/// Hands the rest of the run to the next link when the chain allows it, with the send rates
/// this link reached; records the unstarted volumes as continued (true) or as failures (false:
/// this link must prune and report).
///
/// A run that has no snapshot yet (none before this link, none created in it) does not continue:
/// a continuation is accepted only for a run whose snapshots carry its key (a forged marker names
/// a run that never started), and the next link would start no better off.
#[allow(clippy::too_many_arguments)]
pub async fn hand_off(
    clients: &Clients,
    target: &TargetDocument,
    run_key: &str,
    opts: &RunOptions,
    rates: BTreeMap<String, f64>,
    unstarted: Vec<Selected>,
    run_has_snapshots: bool,
    report: &mut Report,
) -> bool {
    let why = match &opts.chain {
        Some(chain) if !run_has_snapshots && report.created.is_empty() => format!(
            "the run made no progress in link {} (no snapshot created before the deadline margin), \
             so it is not continued; raise the function's timeout",
            chain.link
        ),
        Some(chain) if chain.link < opts.max_links => {
            let next = chain.link + 1;
            let volumes = carry(target, &unstarted, &report.failures);
            let payload = next_event(target, run_key, next, rates, volumes);
            match lambda::invoke_async(&clients.lambda, &chain.function_arn, payload).await {
                Ok(()) => {
                    info!(
                        link = chain.link,
                        next,
                        left = unstarted.len(),
                        "run continues in the next invocation"
                    );
                    report.continued_in_link = Some(next);
                    // The next link re-resolves the selection and retries every volume that has
                    // no snapshot of this run yet: this link's failures are its to report.
                    for f in std::mem::take(&mut report.failures) {
                        report.skipped.push(Skipped {
                            volume_id: f.volume_id,
                            reason: format!("{}: {}; retried in link {next}", f.code, f.message),
                        });
                    }
                    report.skipped.extend(unstarted.into_iter().map(|s| Skipped {
                        volume_id: s.volume_id,
                        reason: format!("continued in link {next}: not started before this invocation's deadline"),
                    }));
                    return true;
                }
                Err(e) => {
                    warn!(code = %e.code, "could not continue the run");
                    format!(
                        "the run could not continue in another invocation ({}: {})",
                        e.code, e.message
                    )
                }
            }
        }
        Some(chain) => format!(
            "the run ran out of time in its last allowed invocation (link {} of {}; EBSSNAP_MAX_LINKS)",
            chain.link, opts.max_links
        ),
        None => "the run ran out of time".to_string(),
    };
    report
        .failures
        .extend(unstarted.into_iter().map(|s| Failure {
            volume_id: s.volume_id,
            instance_id: s.instance_id,
            device: s.device,
            snapshot_id: None,
            code: "NotStarted".into(),
            message: format!("not snapshotted: {why}; the next scheduled run covers it"),
            retryable: true,
            reference: None,
        }));
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::doc;

    #[test]
    fn the_next_event_is_the_document_plus_the_marker() {
        let t = doc::parse_target(
            r#"{"ebssnap":1,"kind":"target","policy":"p","target":"t","select":{"volume_ids":["vol-1"]},
                "invocation":{"scheduled_time":"2026-11-26T05:00:00Z"}}"#,
        )
        .unwrap();
        let rates = BTreeMap::from([("CreateSnapshot".to_string(), 31.5)]);
        let ev = next_event(
            &t,
            "2026-11-26T05:00:00Z",
            2,
            rates.clone(),
            vec!["vol-0123456789abcdef0".into()],
        );
        let ev: serde_json::Value = serde_json::from_slice(&ev).unwrap();
        assert_eq!(ev["continuation"]["rates"]["CreateSnapshot"], 31.5);
        let (d, c) = doc::split_event(ev).unwrap();
        assert_eq!(
            c,
            Some(Continuation {
                link: 2,
                run_key: "2026-11-26T05:00:00Z".into(),
                rates,
                volumes: vec!["vol-0123456789abcdef0".into()],
            })
        );
        assert_eq!(doc::parse_value(d).unwrap(), doc::Document::Target(t));
    }

    fn target(select: &str) -> TargetDocument {
        doc::parse_target(&format!(
            r#"{{"ebssnap":1,"kind":"target","policy":"p","target":"t","select":{select}}}"#
        ))
        .unwrap()
    }

    fn vols(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("vol-{i:017x}")).collect()
    }

    #[test]
    fn the_remaining_volumes_ride_along_only_when_they_fit_the_event() {
        let t = target(r#"{"volume_tags":{"Backup":"yes"}}"#);
        let marker = |ev: Vec<u8>| {
            assert!(ev.len() <= MAX_EVENT_BYTES, "{} bytes", ev.len());
            doc::split_event(serde_json::from_slice(&ev).unwrap())
                .unwrap()
                .1
                .unwrap()
        };
        let key = "2026-11-26T05:00:00Z";
        // 10,000 volume ids (about 240 KB) fit; 11,000 do not, and the event goes without them.
        let ten_k = vols(10_000);
        assert_eq!(
            marker(next_event(&t, key, 2, BTreeMap::new(), ten_k.clone())).volumes,
            ten_k
        );
        let too_many = marker(next_event(&t, key, 2, BTreeMap::new(), vols(11_000)));
        assert!(too_many.volumes.is_empty());
        assert_eq!(too_many.run_key, key);
    }

    #[test]
    fn a_failed_selection_or_instance_filters_carry_nothing() {
        let sel = |v: &str| Selected {
            volume_id: v.into(),
            instance_id: None,
            device: None,
            size_gb: 8,
            root: false,
        };
        let failed = |v: &str, reference: Option<&str>| Failure {
            volume_id: v.into(),
            instance_id: None,
            device: None,
            snapshot_id: None,
            code: "X".into(),
            message: String::new(),
            retryable: true,
            reference: reference.map(String::from),
        };
        let t = target(r#"{"volume_tags":{"Backup":"yes"}}"#);
        let unstarted = [sel("vol-2"), sel("vol-1")];
        // Unstarted and failed volumes, sorted, once each.
        assert_eq!(
            carry(
                &t,
                &unstarted,
                &[failed("vol-3", None), failed("vol-1", None)]
            ),
            ["vol-1", "vol-2", "vol-3"]
        );
        let not_found = failed("vol-9", Some("select.volume_ids=vol-9"));
        assert!(carry(&t, &unstarted, &[not_found]).is_empty());
        assert!(carry(&t, &unstarted, &[failed("", Some("selection"))]).is_empty());
        let filtered = target(r#"{"instance_filters":{"tag:Env":["prod"]}}"#);
        assert!(carry(&filtered, &unstarted, &[]).is_empty());
    }
}
