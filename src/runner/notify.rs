//! After a run: the failure ticket it calls for (sent to the policy's webhook, and kept in the
//! report for the Lambda's error payload), and the report as one log line.

use jiff::Timestamp;
use tracing::{info, warn};

use super::options::RunOptions;
use crate::aws::Clients;
use crate::core::doc::{self, PolicyDocument};
use crate::core::report::{Report, TicketOutcome};
use crate::core::ticket::{self, Ticket};
use crate::error::Error;
use crate::webhook::{self, DeliveryOptions};

/// Sends the ticket a finished (or failed) run calls for, records the outcome, logs the report.
pub(super) async fn finish(
    clients: &Clients,
    policy: &PolicyDocument,
    target: Option<&str>,
    run_key: &str,
    invocation: Option<&doc::Invocation>,
    opts: &RunOptions,
    result: Result<Report, Error>,
) -> Result<Report, Error> {
    let due = match &result {
        Ok(r) => {
            !r.dry_run
                && (r.failed()
                    || !r.overdue.is_empty()
                    || !r.error_snapshots.is_empty()
                    || !r.recovered.is_empty())
        }
        Err(Error::Aws(_)) => true,
        Err(_) => false,
    };
    if !due {
        if let Ok(r) = &result {
            log_report(r);
        }
        return result;
    }
    let before = clients.calls.snapshot();
    let account = match invocation
        .and_then(|i| i.schedule_arn())
        .and_then(ticket::account_of_arn)
    {
        Some(a) => Some(a),
        None => clients.account_id().await,
    };
    let ctx = ticket::Context {
        account,
        region: clients.region.clone(),
        occurred_at: Timestamp::now().to_string(),
        invocation: invocation.cloned(),
    };
    let url = policy.webhook_url();
    match result {
        Ok(mut report) => {
            if let Some(t) = ticket::from_report(&report, &ctx) {
                if let Some(url) = url {
                    report.ticket = Some(send(url, &t, opts).await);
                }
                report.ticket_body = Some(t);
            }
            if let (Some(t), Some(url)) = (ticket::recovered_from_report(&report, &ctx), url) {
                report.recovery_ticket = Some(send(url, &t, opts).await);
            }
            report.api_calls.add(&clients.calls.since(&before));
            log_report(&report);
            Ok(report)
        }
        Err(Error::Aws(e)) => {
            let t = ticket::run_failed(
                &policy.policy,
                target,
                run_key,
                &e.code,
                &e.to_string(),
                e.retryable,
                &ctx,
            );
            match url {
                Some(url) => {
                    send(url, &t, opts).await;
                }
                None => log_undelivered(&t, "no webhook configured"),
            }
            Err(Error::Aws(e))
        }
        Err(e) => Err(e),
    }
}

fn log_undelivered(t: &Ticket, why: &str) {
    let body = serde_json::to_string(t).unwrap_or_default();
    tracing::error!(event = %t.event, dedup_key = %t.dedup_key, ticket = %body, "failure ticket ({why})");
}

/// Delivers a ticket; an undelivered one is logged in full (never the secret or the URL's
/// credentials), so it is not lost.
async fn send(url: &str, t: &Ticket, opts: &RunOptions) -> TicketOutcome {
    let delivery = DeliveryOptions {
        deadline: opts.deadline.or(opts.delivery.deadline),
        ..opts.delivery.clone()
    };
    let outcome = webhook::deliver(url, t, &delivery).await;
    if outcome.delivered {
        info!(event = %t.event, dedup_key = %t.dedup_key, attempts = outcome.attempts, "ticket delivered");
    } else {
        let body = serde_json::to_string(t).unwrap_or_default();
        tracing::error!(
            url = %outcome.url,
            attempts = outcome.attempts,
            error = outcome.error.as_deref().unwrap_or(""),
            ticket = %body,
            "ticket NOT delivered"
        );
    }
    outcome
}

/// The report as one structured log line.
pub(super) fn log_report(report: &Report) {
    match serde_json::to_string(report) {
        Ok(json) => info!(report = %json, "ebssnap report"),
        Err(e) => warn!(error = %e, "could not serialize the report"),
    }
}
