//! The AWS Lambda shell (custom runtime, `bootstrap`). The event is the schedule's input
//! document, but only as a *pointer* (docs/design.md §3): the documents it names are re-read from
//! Scheduler ([`crate::runner::documents::resolve_event`]); a target document runs the target, a policy
//! document sweeps the policy, a restore-test document tests restores of the policy (and answers
//! success even when a test fails: its tickets say so, and a retry would test other pairs), and
//! an event naming something that no longer exists does nothing.
//!
//! Clients are built once per process, outside the handler; options come from the environment
//! exactly as the CLI's do ([`RunOptions::from_env`]), plus the invocation's deadline. Errors are
//! typed: `NonRetryable` for bad input, `Retryable` for AWS trouble and for runs where a volume
//! failed. Scheduler invokes Lambda asynchronously, so a function error goes to Lambda's own
//! retries and then to the function's on-failure destination: the error message is JSON carrying
//! the failure ticket, so that destination's message is actionable.

use std::time::{Duration, Instant, SystemTime};

use lambda_runtime::{Diagnostic, LambdaEvent, service_fn};
use serde_json::{Value, json};

use crate::aws::{Clients, ConnectOptions};
use crate::core::report::Report;
use crate::core::{doc, metrics};
use crate::error::Error;
use crate::runner::documents::{self, Resolved};
use crate::runner::{self, Chain, RunOptions};

/// Stop starting new work this long before the Lambda deadline.
const DEADLINE_MARGIN: Duration = Duration::from_secs(20);
/// Ticket delivery stops this long before the deadline, so the function can still answer.
const ANSWER_MARGIN: Duration = Duration::from_secs(2);
/// Lambda passes at most 256 KB of an error to an on-failure destination: keep well below.
const MAX_ERROR_BYTES: usize = 200_000;

/// Serves invocations until the runtime stops us.
pub async fn serve() -> Result<(), lambda_runtime::Error> {
    let clients = Clients::connect(&ConnectOptions::default()).await;
    let clients = &clients;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        let arn = event.context.invoked_function_arn.clone();
        let arn = (!arn.is_empty()).then_some(arn);
        handle(
            clients,
            event.payload,
            event.context.deadline(),
            arn.as_deref(),
        )
        .await
    }))
    .await
}

fn diagnostic(error_type: &str, message: String) -> Diagnostic {
    Diagnostic {
        error_type: error_type.into(),
        error_message: message,
    }
}

fn before(deadline: SystemTime, margin: Duration) -> Option<Instant> {
    let left = deadline
        .duration_since(SystemTime::now())
        .unwrap_or_default();
    Some(Instant::now() + left.saturating_sub(margin))
}

/// The run options of one invocation: the environment's, and the invocation's deadline.
pub fn options(deadline: SystemTime) -> RunOptions {
    RunOptions {
        stop_at: before(deadline, DEADLINE_MARGIN),
        deadline: before(deadline, ANSWER_MARGIN),
        ..RunOptions::from_env()
    }
}

/// The error message of a failed run: JSON with a summary and the (redacted) ticket, cut to
/// fit what Lambda hands to an on-failure destination.
fn failure_message(report: &Report) -> String {
    /// Serialized straight from the report (a failed run at 10,000 volumes carries thousands of
    /// failures: no intermediate JSON tree).
    #[derive(serde::Serialize)]
    struct Message<'a> {
        message: String,
        ticket: Option<&'a crate::core::ticket::Ticket>,
        delivery: &'a Option<crate::core::report::TicketOutcome>,
        link: Option<u32>,
        api_calls: &'a crate::core::report::ApiCallCounts,
        #[serde(skip_serializing_if = "Option::is_none")]
        failures_truncated: Option<Value>,
    }
    let what = match &report.target {
        Some(t) => format!("{}/{}", report.policy, t),
        None => format!("{} (sweep)", report.policy),
    };
    let mut message = Message {
        message: format!(
            "{} failure(s) in {what}, run {}",
            report.failures.len(),
            report.run_key
        ),
        ticket: report.ticket_body.as_ref(),
        delivery: &report.ticket,
        link: report.link,
        api_calls: &report.api_calls,
        failures_truncated: None,
    };
    // Measured before it is written: a message over the limit (thousands of failures) is never
    // built whole, and the ticket is never copied whole.
    let fits = json_len(&message) <= MAX_ERROR_BYTES;
    let Some(t) = report.ticket_body.as_ref().filter(|_| !fits) else {
        return serde_json::to_string(&message).unwrap_or_default();
    };
    let short = crate::core::ticket::Ticket {
        failures: t.failures.iter().take(50).cloned().collect(),
        ..t.header()
    };
    message.ticket = Some(&short);
    message.failures_truncated =
        Some(json!({"shown": short.failures.len(), "total": t.failures.len()}));
    serde_json::to_string(&message).unwrap_or_default()
}

/// The length of `v`'s JSON, counted as it is written, without keeping it.
fn json_len<T: serde::Serialize>(v: &T) -> usize {
    struct Count(usize);
    impl std::io::Write for Count {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0 += buf.len();
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut c = Count(0);
    match serde_json::to_writer(&mut c, v) {
        Ok(()) => c.0,
        Err(_) => usize::MAX,
    }
}

/// A successful invocation's answer, serialized by the runtime straight from the report.
#[derive(Debug, serde::Serialize)]
#[serde(untagged)]
pub enum Answer {
    Report(Box<Report>),
    /// Nothing done: the event named a policy or target that no longer exists
    /// (`unknown_target`), or it was refused (`rejected_event`).
    Unknown(Value),
}

/// What an invocation came to.
enum Outcome {
    Report(Box<Report>),
    /// The event named a policy or target that no longer exists.
    Unknown {
        what: String,
        message: String,
    },
    /// The event's run key is not one its schedule could have sent: nothing done.
    Rejected {
        what: String,
        reason: String,
    },
}

async fn run(
    clients: &Clients,
    payload: Value,
    deadline: SystemTime,
    function_arn: Option<&str>,
) -> Result<Outcome, Error> {
    let (payload, continuation) = doc::split_event(payload)?;
    let event = doc::parse_value(payload)?;
    let mut opts = options(deadline);
    opts.chain = function_arn.map(|arn| Chain {
        function_arn: arn.to_string(),
        link: continuation.as_ref().map_or(1, |c| c.link),
        run_key: continuation.as_ref().map(|c| c.run_key.clone()),
        rates: continuation
            .as_ref()
            .map(|c| c.rates.clone())
            .unwrap_or_default(),
        volumes: continuation
            .as_ref()
            .map(|c| c.volumes.clone())
            .unwrap_or_default(),
    });
    if continuation.is_some() && opts.chain.is_none() {
        return Err(Error::Input(
            "a continuation event needs the invoked function's ARN".into(),
        ));
    }
    let link = documents::Link {
        number: continuation.as_ref().map_or(1, |c| c.link),
        run_key: continuation.as_ref().map(|c| c.run_key.as_str()),
    };
    let resolved = documents::resolve_event(clients, event, link, opts.now).await?;
    if let Resolved::Run { interval, .. } = &resolved {
        opts.interval = *interval;
    }
    let opts = &opts;
    let started = Instant::now();
    // Every run and sweep writes its metrics line, also when it fails as a whole.
    let failed = |policy: &str, target: Option<&str>, kind: &str| {
        let ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        emit_metrics(&metrics::Figures::failed(policy, target, kind, ms));
    };
    let report = match resolved {
        Resolved::Run {
            policy,
            target,
            interval: _,
            warnings,
        } => match runner::run_target(clients, &policy, &target, opts).await {
            Ok(r) => with_warnings(r, warnings),
            Err(Error::Rejected(reason)) => {
                let what = format!("target {}/{}", policy.policy, target.target);
                tracing::warn!(event = %what, "event rejected: {reason}; nothing done");
                return Ok(Outcome::Rejected { what, reason });
            }
            Err(e) => {
                failed(&policy.policy, Some(&target.target), "run");
                return Err(e);
            }
        },
        Resolved::Sweep { policy, warnings } => match runner::sweep(clients, &policy, opts).await {
            Ok(r) => with_warnings(r, warnings),
            Err(e) => {
                failed(&policy.policy, None, "sweep");
                return Err(e);
            }
        },
        Resolved::RestoreTest {
            policy,
            test,
            warnings,
        } => {
            let settings = runner::restore_test::Settings {
                sample: test.sample as usize,
                timeout: Duration::from_secs(u64::from(test.timeout_minutes) * 60),
            };
            match runner::restore_test::restore_test(
                clients,
                &policy,
                &settings,
                test.invocation.as_ref(),
                opts,
            )
            .await
            {
                Ok(r) => with_warnings(r, warnings),
                Err(e) => {
                    failed(&policy.policy, None, "restore_test");
                    return Err(e);
                }
            }
        }
        Resolved::Unknown { what, message } => return Ok(Outcome::Unknown { what, message }),
        Resolved::Rejected { what, reason } => return Ok(Outcome::Rejected { what, reason }),
    };
    // A link that handed the run on reports again at the end of the chain.
    if report.continued_in_link.is_none() {
        emit_metrics(&metrics::Figures::of(&report));
    }
    Ok(Outcome::Report(Box::new(report)))
}

/// Writes the CloudWatch Embedded Metric Format line: a bare JSON object on stdout, which
/// CloudWatch Logs turns into metrics (the Lambda only; the CLI's stdout is its report).
fn emit_metrics(f: &metrics::Figures) {
    let ms = jiff::Timestamp::now().as_millisecond();
    println!("{}", metrics::emf(f, ms));
    for line in metrics::emf_per_destination(f, ms) {
        println!("{line}");
    }
}

/// Handles one event; public so tests can drive it without a Runtime API. `function_arn` is
/// the invoked function's (where a run that runs out of time continues).
pub async fn handle(
    clients: &Clients,
    payload: Value,
    deadline: SystemTime,
    function_arn: Option<&str>,
) -> Result<Answer, Diagnostic> {
    match run(clients, payload, deadline, function_arn).await {
        // Nothing to do: success, so Lambda does not retry it, and no ticket.
        Ok(Outcome::Unknown { what, message }) => Ok(Answer::Unknown(json!({
            "kind": "unknown_target",
            "unknown": what,
            "message": message,
        }))),
        // Refused: success (a retry would be refused too), no ticket, logged.
        Ok(Outcome::Rejected { what, reason }) => Ok(Answer::Unknown(json!({
            "kind": "rejected_event",
            "event": what,
            "reason": reason,
        }))),
        // A restore test's failures are its tickets; an error would make Lambda run the test
        // again on other pairs.
        Ok(Outcome::Report(report)) if report.failed() && report.kind != "restore_test" => {
            Err(diagnostic("Retryable", failure_message(&report)))
        }
        Ok(Outcome::Report(report)) => Ok(Answer::Report(report)),
        Err(e) => Err(diagnostic(e.lambda_type(), e.to_string())),
    }
}

fn with_warnings(mut r: Report, warnings: Vec<String>) -> Report {
    r.warnings.extend(warnings);
    r
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::ticket::{Ticket, TicketFailure};

    fn failed_report(n: usize) -> Report {
        let failure = TicketFailure {
            volume_id: Some("vol-0a1b2c3d4e5f60718".into()),
            code: "NotStarted".into(),
            message: "the run ended before this volume was started".into(),
            action: "x".repeat(200).into(),
            ..Default::default()
        };
        Report {
            policy: "std".into(),
            target: Some("web".into()),
            run_key: "r1".into(),
            ticket_body: Some(Ticket {
                event: "snapshot.failed".into(),
                failures: vec![failure; n],
                ..Default::default()
            }),
            ..Report::default()
        }
    }

    #[test]
    fn a_failure_message_carries_the_whole_ticket_when_it_fits_and_50_failures_when_not() {
        let small: Value = serde_json::from_str(&failure_message(&failed_report(3))).unwrap();
        assert_eq!(small["ticket"]["failures"].as_array().unwrap().len(), 3);
        assert!(small.get("failures_truncated").is_none());
        let text = failure_message(&failed_report(7_230));
        assert!(text.len() <= MAX_ERROR_BYTES, "{} bytes", text.len());
        let big: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(big["ticket"]["failures"].as_array().unwrap().len(), 50);
        assert_eq!(
            big["failures_truncated"],
            json!({"shown": 50, "total": 7230})
        );
        assert_eq!(big["ticket"]["event"], "snapshot.failed");
    }

    #[test]
    fn json_len_counts_what_serde_json_writes() {
        let r = failed_report(10);
        assert_eq!(
            json_len(&r.ticket_body),
            serde_json::to_string(&r.ticket_body).unwrap().len()
        );
    }
}
