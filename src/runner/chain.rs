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
use crate::core::doc::{Continuation, TargetDocument};
use crate::core::report::{Failure, Report, Skipped};
use crate::core::select::Selected;

/// The event of the next link: the target document with the continuation marker beside it.
pub fn next_event(
    target: &TargetDocument,
    run_key: &str,
    link: u32,
    rates: BTreeMap<String, f64>,
) -> serde_json::Value {
    let mut v = serde_json::to_value(target).unwrap_or_default();
    if let Some(o) = v.as_object_mut() {
        o.insert(
            "continuation".into(),
            serde_json::json!(Continuation {
                link,
                run_key: run_key.to_string(),
                rates,
            }),
        );
    }
    v
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
            let payload = next_event(target, run_key, next, rates)
                .to_string()
                .into_bytes();
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
        let ev = next_event(&t, "2026-11-26T05:00:00Z", 2, rates.clone());
        assert_eq!(ev["continuation"]["rates"]["CreateSnapshot"], 31.5);
        let (d, c) = doc::split_event(ev).unwrap();
        assert_eq!(
            c,
            Some(Continuation {
                link: 2,
                run_key: "2026-11-26T05:00:00Z".into(),
                rates,
            })
        );
        assert_eq!(doc::parse_value(d).unwrap(), doc::Document::Target(t));
    }
}
