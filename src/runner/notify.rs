//! After a run: the failure ticket it calls for (sent to the policy's webhook and/or published
//! to its SNS topic, and kept in the report for the Lambda's error payload), and the report as
//! one log line.

use jiff::Timestamp;
use tracing::info;

use super::options::RunOptions;
use crate::aws::{Clients, secrets, sns};
use crate::core::doc::{self, PolicyDocument};
use crate::core::raise;
use crate::core::report::{Report, TicketOutcome};
use crate::core::ticket::{self, Ticket};
use crate::error::{AwsError, Error};
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
                    || !r.recovered.is_empty()
                    || !r.restore_volumes_in_use.is_empty()
                    || r.restore_tests.iter().any(|t| t.recovered)
                    || r.coverage.as_ref().is_some_and(|c| {
                        !c.unprotected.is_empty() || !c.newly_protected.is_empty()
                    })
                    || r.copies.iter().any(|c| {
                        !c.failures.is_empty() || !c.overdue.is_empty() || !c.recovered.is_empty()
                    })
                    || r.share.as_ref().is_some_and(|s| !s.failures.is_empty()))
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
    // The account is what ebssnap knows, never what an event claims: the invoked function's own
    // ARN in the Lambda, the caller identity (STS) otherwise.
    let account = match opts
        .chain
        .as_ref()
        .and_then(|c| ticket::account_of_arn(&c.function_arn))
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
    let channels = resolve_channels(clients, policy).await;
    let mut channel_error = None;
    let webhook = match channels.webhook {
        Ok(w) => w,
        Err(e) => {
            tracing::error!(error = %e, "the policy's webhook secret cannot be used");
            channel_error = Some(e);
            None
        }
    };
    let sns = channels.sns.as_deref();
    let result = match result {
        Ok(mut report) => {
            if let Some(t) = raise::from_report(&report, &ctx) {
                if let Some(w) = &webhook {
                    report.ticket = Some(send(w, &t, opts).await);
                }
                if let Some(topic) = sns {
                    report.ticket_sns = Some(publish(clients, topic, &t).await);
                }
                if webhook.is_none() && sns.is_none() {
                    log_undelivered(&t, "no failure channel configured");
                }
                report.ticket_body = Some(t);
            }
            if let Some(t) = raise::recovered_from_report(&report, &ctx) {
                if let Some(w) = &webhook {
                    report.recovery_ticket = Some(send(w, &t, opts).await);
                }
                if let Some(topic) = sns {
                    report.recovery_ticket_sns = Some(publish(clients, topic, &t).await);
                }
            }
            for t in [
                raise::coverage_from_report(&report, &ctx),
                raise::coverage_recovered_from_report(&report, &ctx),
            ]
            .into_iter()
            .flatten()
            {
                if let Some(w) = &webhook {
                    report.coverage_tickets.push(send(w, &t, opts).await);
                }
                if let Some(topic) = sns {
                    report
                        .coverage_tickets
                        .push(publish(clients, topic, &t).await);
                }
                if webhook.is_none() && sns.is_none() {
                    log_undelivered(&t, "no failure channel configured");
                }
            }
            for t in [
                raise::copy_from_report(&report, &ctx),
                raise::copy_overdue_from_report(&report, &ctx),
                raise::copy_recovered_from_report(&report, &ctx),
                raise::share_from_report(&report, &ctx),
            ]
            .into_iter()
            .flatten()
            {
                if let Some(w) = &webhook {
                    report.copy_tickets.push(send(w, &t, opts).await);
                }
                if let Some(topic) = sns {
                    report.copy_tickets.push(publish(clients, topic, &t).await);
                }
                if webhook.is_none() && sns.is_none() {
                    log_undelivered(&t, "no failure channel configured");
                }
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
            if let Some(w) = &webhook {
                send(w, &t, opts).await;
            }
            if let Some(topic) = sns {
                publish(clients, topic, &t).await;
            }
            if webhook.is_none() && sns.is_none() {
                log_undelivered(&t, "no failure channel configured");
            }
            Err(Error::Aws(e))
        }
        Err(e) => Err(e),
    };
    // A webhook secret that cannot be read or used fails the run (exit 3) after the ticket went
    // to SNS, if configured: the operator must fix the secret.
    match (channel_error, result) {
        (Some(e), Ok(_)) => Err(Error::Aws(e)),
        (_, r) => r,
    }
}

/// The policy's webhook (URL and signing secret) and SNS topic. The Secrets Manager secret is
/// read here, at most once per invocation, and only when a ticket is due.
struct Channels {
    webhook: Result<Option<Webhook>, AwsError>,
    sns: Option<String>,
}

/// Where a webhook ticket goes; `Debug` never shows the URL's credential or the secret.
#[derive(Debug)]
struct Webhook {
    url: Secretive,
    signing_secret: Option<webhook::Secret>,
}

/// A webhook URL whose `Debug` is redacted to scheme, host and port.
struct Secretive(String);

impl std::fmt::Debug for Secretive {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&ticket::redact_url(&self.0))
    }
}

async fn resolve_channels(clients: &Clients, policy: &PolicyDocument) -> Channels {
    let webhook = if let Some(arn) = policy.webhook_secret_arn() {
        match secrets::get_secret_string(&clients.secretsmanager, arn).await {
            Ok(value) => match webhook::WebhookSecret::parse(&value) {
                Ok(w) => Ok(Some(Webhook {
                    url: Secretive(w.url),
                    signing_secret: w.signing_secret,
                })),
                Err(why) => Err(AwsError {
                    action: format!("reading the webhook secret {arn}"),
                    code: "MalformedWebhookSecret".into(),
                    message: why,
                    retryable: false,
                    ambiguous: false,
                }),
            },
            Err(e) => Err(e),
        }
    } else {
        Ok(policy.webhook_url().map(|u| Webhook {
            url: Secretive(u.to_string()),
            signing_secret: None,
        }))
    };
    Channels {
        webhook,
        sns: policy.sns_topic_arn().map(String::from),
    }
}

/// Publishes a ticket to SNS (the SDK retries within its standard budget); never fails, the
/// outcome says what happened.
async fn publish(clients: &Clients, topic: &str, t: &Ticket) -> TicketOutcome {
    let mut outcome = TicketOutcome {
        event: t.event.clone(),
        dedup_key: t.dedup_key.clone(),
        url: topic.to_string(),
        delivered: false,
        attempts: 1,
        status: None,
        error: None,
    };
    match sns::publish_ticket(&clients.sns, topic, t).await {
        Ok(id) => {
            outcome.delivered = true;
            info!(event = %t.event, dedup_key = %t.dedup_key, message_id = %id, "ticket published to SNS");
        }
        Err(e) => {
            let body = serde_json::to_string(t).unwrap_or_default();
            tracing::error!(topic, error = %e, ticket = %body, "ticket NOT published to SNS");
            outcome.error = Some(format!("{}: {}", e.code, e.message));
        }
    }
    outcome
}

fn log_undelivered(t: &Ticket, why: &str) {
    let body = serde_json::to_string(t).unwrap_or_default();
    tracing::error!(event = %t.event, dedup_key = %t.dedup_key, ticket = %body, "failure ticket ({why})");
}

/// Delivers a ticket to the webhook, signed with the policy's secret (else the runner's); an
/// undelivered one is logged in full (never the secret or the URL's credentials), so it is not
/// lost.
async fn send(w: &Webhook, t: &Ticket, opts: &RunOptions) -> TicketOutcome {
    let delivery = DeliveryOptions {
        deadline: opts.deadline.or(opts.delivery.deadline),
        secret: w
            .signing_secret
            .clone()
            .or_else(|| opts.delivery.secret.clone()),
        ..opts.delivery.clone()
    };
    let outcome = webhook::deliver(&w.url.0, t, &delivery).await;
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
    // Written into the log line as it is serialized: a report of 10,000 volumes is not also
    // held as a string of its own.
    info!(report = %AsJson(report), "ebssnap report");
}

/// A value's JSON as its `Display` (serialized into the formatter, no intermediate string).
struct AsJson<'a, T: serde::Serialize>(&'a T);

impl<T: serde::Serialize> std::fmt::Display for AsJson<'_, T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        struct Adapter<'a, 'b>(&'a mut std::fmt::Formatter<'b>);
        impl std::io::Write for Adapter<'_, '_> {
            fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
                // serde_json writes whole UTF-8 sequences per call.
                let text = std::str::from_utf8(buf)
                    .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))?;
                self.0.write_str(text).map_err(std::io::Error::other)?;
                Ok(buf.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        serde_json::to_writer(Adapter(f), self.0).map_err(|_| std::fmt::Error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_report_logs_as_the_same_json_without_an_own_string() {
        let r = Report {
            policy: "std".into(),
            target: Some("wéb \"quoted\"".into()),
            warnings: vec!["ünïcode ✓".into()],
            ..Report::default()
        };
        assert_eq!(AsJson(&r).to_string(), serde_json::to_string(&r).unwrap());
    }
}
