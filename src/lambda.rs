//! The AWS Lambda shell (custom runtime, `bootstrap`). The event is the schedule input document
//! itself: a target document runs the target, a policy document sweeps the policy.
//!
//! Clients are built once per process, outside the handler. Errors are typed so that
//! Scheduler's retry policy is meaningful: `NonRetryable` for bad input (retrying cannot help),
//! `Retryable` for AWS trouble and for runs where a volume failed (a retry only redoes what is
//! missing, thanks to the run key).

use std::time::{Duration, Instant, SystemTime};

use lambda_runtime::{Diagnostic, LambdaEvent, service_fn};
use serde_json::Value;

use crate::aws::{Clients, ConnectOptions};
use crate::core::doc::{self, Document};
use crate::engine::{self, RunOptions};
use crate::error::Error;

/// Stop starting new work this long before the Lambda deadline.
const DEADLINE_MARGIN: Duration = Duration::from_secs(20);

/// Serves invocations until the runtime stops us.
pub async fn serve() -> Result<(), lambda_runtime::Error> {
    let clients = Clients::connect(&ConnectOptions::default()).await;
    let clients = &clients;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        handle(clients, event.payload, event.context.deadline()).await
    }))
    .await
}

fn diagnostic(error_type: &str, message: String) -> Diagnostic {
    Diagnostic {
        error_type: error_type.into(),
        error_message: message,
    }
}

fn stop_at(deadline: SystemTime) -> Option<Instant> {
    let left = deadline.duration_since(SystemTime::now()).ok()?;
    Some(Instant::now() + left.saturating_sub(DEADLINE_MARGIN))
}

/// Handles one event; public so tests can drive it without a Runtime API.
pub async fn handle(
    clients: &Clients,
    payload: Value,
    deadline: SystemTime,
) -> Result<Value, Diagnostic> {
    let opts = RunOptions {
        stop_at: stop_at(deadline),
        ..RunOptions::default()
    };
    let result = async {
        match doc::parse_value(payload)? {
            Document::Target(target) => {
                let policy = engine::load_policy(clients, &target.policy).await?;
                engine::run_target(clients, &policy, &target, &opts).await
            }
            Document::Policy(policy) => engine::sweep(clients, &policy, &opts).await,
        }
    }
    .await;
    match result {
        Ok(report) if report.failed() => Err(diagnostic(
            "Retryable",
            format!(
                "{} volume(s) failed: {}",
                report.failures.len(),
                serde_json::to_string(&report).unwrap_or_default()
            ),
        )),
        Ok(report) => serde_json::to_value(&report).map_err(|e| {
            diagnostic(
                "NonRetryable",
                format!("could not serialize the report: {e}"),
            )
        }),
        Err(e @ Error::Input(_)) | Err(e @ Error::Aws(_)) => {
            Err(diagnostic(e.lambda_type(), e.to_string()))
        }
    }
}
