//! Every AWS call of the runner goes through this module.
//!
//! Clients are built once (the Lambda builds them outside the handler) with one HTTPS stack,
//! the SDK's standard retries (throttling and 5xx, exponential backoff), explicit timeouts, and
//! an interceptor that counts every attempt per operation, and the throttled ones, for the report
//! and for the runner's pacer (`runner::pace`).

pub mod dynamo;
pub mod ec2;
pub mod iam;
pub mod kms;
pub mod lambda;
pub mod scheduler;
pub mod secrets;
pub mod sns;
pub mod sts;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region};
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::interceptors::context::{
    BeforeTransmitInterceptorContextRef, FinalizerInterceptorContextRef,
};
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

use crate::error::AwsError;

/// Where and as whom to connect. Everything else comes from the standard AWS chain.
#[derive(Debug, Clone, Default)]
pub struct ConnectOptions {
    pub region: Option<String>,
    pub profile: Option<String>,
    /// One endpoint for every service (emulators, VPC endpoints); `AWS_ENDPOINT_URL` also works.
    pub endpoint_url: Option<String>,
    /// Maximum attempts per call, including the first (default 8; `AWS_MAX_ATTEMPTS` also works).
    pub max_attempts: Option<u32>,
    /// `standard` (default) or `adaptive` (`AWS_RETRY_MODE` also works): adaptive adds the
    /// SDK's client-side rate limiting once AWS throttles.
    pub retry_mode: Option<String>,
}

pub use crate::core::report::ApiCallCounts as CallCounts;

/// Error codes of an answer that means "slow down".
pub const THROTTLE_CODES: &[&str] = &[
    "RequestLimitExceeded",
    "SnapshotCreationPerVolumeRateExceeded",
    "Throttling",
    "ThrottlingException",
    "TooManyRequestsException",
    "RequestThrottled",
];

const THROTTLED_PREFIX: &str = "throttled:";

/// Attempts per call: EC2 throttles mutating calls at a few per second after a burst, and the
/// adaptive rate limiter needs a few refusals to find the account's pace.
pub const DEFAULT_MAX_ATTEMPTS: u32 = 8;

/// Counts API attempts per operation (`CreateSnapshot`: 12). Retries count: they cost calls too.
#[derive(Debug, Clone, Default)]
pub struct ApiCalls(Arc<Mutex<BTreeMap<String, u64>>>);

impl ApiCalls {
    pub fn snapshot(&self) -> BTreeMap<String, u64> {
        self.0.lock().map(|m| m.clone()).unwrap_or_default()
    }

    /// Calls made since `before` (a previous [`ApiCalls::snapshot`]).
    pub fn since(&self, before: &BTreeMap<String, u64>) -> CallCounts {
        let mut out = CallCounts::default();
        for (k, v) in self.snapshot() {
            let d = v - before.get(&k).copied().unwrap_or(0);
            if d == 0 {
                continue;
            }
            match k.strip_prefix(THROTTLED_PREFIX) {
                Some(op) => out.throttled.insert(op.to_string(), d),
                None => out.calls.insert(k, d),
            };
        }
        out
    }

    fn add(&self, op: &str) {
        if let Ok(mut m) = self.0.lock() {
            *m.entry(op.to_string()).or_insert(0) += 1;
        }
    }

    /// Throttled attempts of `op` so far (the pacer's feedback).
    pub fn throttled(&self, op: &str) -> u64 {
        self.0
            .lock()
            .ok()
            .and_then(|m| m.get(&format!("{THROTTLED_PREFIX}{op}")).copied())
            .unwrap_or(0)
    }
}

impl Intercept for ApiCalls {
    fn name(&self) -> &'static str {
        "ebssnap::ApiCalls"
    }

    fn read_before_attempt(
        &self,
        _ctx: &BeforeTransmitInterceptorContextRef<'_>,
        _rc: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if let Some(meta) = cfg.load::<Metadata>() {
            self.add(meta.name());
        }
        Ok(())
    }

    fn read_after_attempt(
        &self,
        ctx: &FinalizerInterceptorContextRef<'_>,
        _rc: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if let (Some(meta), Some(resp)) = (cfg.load::<Metadata>(), ctx.response()) {
            let status = resp.status().as_u16();
            let throttled = status == 429
                || (status >= 400
                    && resp.body().bytes().is_some_and(|b| {
                        let text = String::from_utf8_lossy(b);
                        THROTTLE_CODES.iter().any(|c| text.contains(c))
                    }));
            if throttled {
                self.add(&format!("{THROTTLED_PREFIX}{}", meta.name()));
            }
        }
        Ok(())
    }
}

/// The AWS clients of one process, shared by every run.
#[derive(Debug, Clone)]
pub struct Clients {
    pub ec2: aws_sdk_ec2::Client,
    /// EC2 for mutating calls (create, delete): no SDK retries, so the runner paces every
    /// attempt, retries included (`runner::pace`).
    pub ec2_writes: aws_sdk_ec2::Client,
    pub autoscaling: aws_sdk_autoscaling::Client,
    pub scheduler: aws_sdk_scheduler::Client,
    pub sts: aws_sdk_sts::Client,
    pub lambda: aws_sdk_lambda::Client,
    pub secretsmanager: aws_sdk_secretsmanager::Client,
    pub sns: aws_sdk_sns::Client,
    /// ebs_snapper's configuration table (`ebssnap migrate` only).
    pub dynamodb: aws_sdk_dynamodb::Client,
    /// Sharing: whether a restore point's key is AWS-managed.
    pub kms: aws_sdk_kms::Client,
    pub calls: ApiCalls,
    pub region: Option<String>,
}

/// The SDK config loader the runner uses: one rustls HTTPS client, standard retries, timeouts.
/// Tests add static credentials to it.
pub fn config_loader(opts: &ConnectOptions) -> aws_config::ConfigLoader {
    let http = aws_smithy_http_client::Builder::new()
        .tls_provider(aws_smithy_http_client::tls::Provider::Rustls(
            aws_smithy_http_client::tls::rustls_provider::CryptoMode::Ring,
        ))
        .build_https();
    let mode = opts
        .retry_mode
        .clone()
        .or_else(|| std::env::var("AWS_RETRY_MODE").ok());
    // Standard unless asked: measured against a model of EC2's buckets, the SDK's adaptive mode
    // is many times slower than the bucket allows on runs of tens of calls (docs/benchmarks.md);
    // the runner paces its own sends instead (runner::pace).
    let retry = match mode.as_deref() {
        Some("adaptive") => RetryConfig::adaptive(),
        _ => RetryConfig::standard(),
    };
    let attempts = opts
        .max_attempts
        .or_else(|| std::env::var("AWS_MAX_ATTEMPTS").ok()?.parse().ok())
        .unwrap_or(DEFAULT_MAX_ATTEMPTS);
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .http_client(http)
        .retry_config(
            retry
                .with_max_attempts(attempts)
                .with_initial_backoff(Duration::from_millis(200))
                .with_max_backoff(Duration::from_secs(10)),
        )
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(Duration::from_secs(5))
                .read_timeout(Duration::from_secs(30))
                .operation_attempt_timeout(Duration::from_secs(40))
                .operation_timeout(Duration::from_secs(180))
                .build(),
        );
    if let Some(r) = &opts.region {
        loader = loader.region(Region::new(r.clone()));
    }
    if let Some(p) = &opts.profile {
        loader = loader.profile_name(p);
    }
    if let Some(u) = &opts.endpoint_url {
        loader = loader.endpoint_url(u);
    }
    loader
}

impl Clients {
    /// Builds the clients from the standard chain plus `opts`.
    pub async fn connect(opts: &ConnectOptions) -> Clients {
        let sdk = config_loader(opts).load().await;
        Clients::from_sdk_config(&sdk)
    }

    /// Builds the clients for `region` (default: `opts`'), as `creds` when given (an assumed
    /// role), with everything else from `opts` and the standard chain.
    pub async fn connect_as(
        opts: &ConnectOptions,
        region: Option<&str>,
        creds: Option<aws_sdk_sts::config::Credentials>,
    ) -> Clients {
        let mut loader = config_loader(opts);
        if let Some(r) = region {
            loader = loader.region(Region::new(r.to_string()));
        }
        if let Some(c) = creds {
            loader = loader.credentials_provider(c);
        }
        Clients::from_sdk_config(&loader.load().await)
    }

    /// The same clients in another Region: the same credentials, endpoint, retries and call
    /// counter (coverage of a Region from the provider).
    pub fn in_region(&self, region: &str) -> Clients {
        let r = || Region::new(region.to_string());
        Clients {
            ec2: self.ec2_in(region),
            ec2_writes: aws_sdk_ec2::Client::from_conf(
                self.ec2_writes.config().to_builder().region(r()).build(),
            ),
            autoscaling: aws_sdk_autoscaling::Client::from_conf(
                self.autoscaling.config().to_builder().region(r()).build(),
            ),
            scheduler: aws_sdk_scheduler::Client::from_conf(
                self.scheduler.config().to_builder().region(r()).build(),
            ),
            sts: aws_sdk_sts::Client::from_conf(self.sts.config().to_builder().region(r()).build()),
            lambda: aws_sdk_lambda::Client::from_conf(
                self.lambda.config().to_builder().region(r()).build(),
            ),
            secretsmanager: aws_sdk_secretsmanager::Client::from_conf(
                self.secretsmanager
                    .config()
                    .to_builder()
                    .region(r())
                    .build(),
            ),
            sns: aws_sdk_sns::Client::from_conf(self.sns.config().to_builder().region(r()).build()),
            dynamodb: aws_sdk_dynamodb::Client::from_conf(
                self.dynamodb.config().to_builder().region(r()).build(),
            ),
            kms: aws_sdk_kms::Client::from_conf(self.kms.config().to_builder().region(r()).build()),
            calls: self.calls.clone(),
            region: Some(region.to_string()),
        }
    }

    /// Builds the clients from a loaded SDK config (tests pass mocks this way).
    /// The EC2 client for another Region: the same credentials, endpoint and retries.
    pub fn ec2_in(&self, region: &str) -> aws_sdk_ec2::Client {
        aws_sdk_ec2::Client::from_conf(
            self.ec2
                .config()
                .to_builder()
                .region(Region::new(region.to_string()))
                .build(),
        )
    }

    pub fn from_sdk_config(sdk: &aws_config::SdkConfig) -> Clients {
        let calls = ApiCalls::default();
        Clients {
            ec2: aws_sdk_ec2::Client::from_conf(
                aws_sdk_ec2::config::Builder::from(sdk)
                    .interceptor(calls.clone())
                    .build(),
            ),
            ec2_writes: aws_sdk_ec2::Client::from_conf(
                aws_sdk_ec2::config::Builder::from(sdk)
                    .retry_config(RetryConfig::disabled())
                    .interceptor(calls.clone())
                    .build(),
            ),
            autoscaling: aws_sdk_autoscaling::Client::from_conf(
                aws_sdk_autoscaling::config::Builder::from(sdk)
                    .interceptor(calls.clone())
                    .build(),
            ),
            scheduler: aws_sdk_scheduler::Client::from_conf(
                aws_sdk_scheduler::config::Builder::from(sdk)
                    .interceptor(calls.clone())
                    .build(),
            ),
            sts: aws_sdk_sts::Client::from_conf(
                aws_sdk_sts::config::Builder::from(sdk)
                    .interceptor(calls.clone())
                    .build(),
            ),
            lambda: aws_sdk_lambda::Client::from_conf(
                aws_sdk_lambda::config::Builder::from(sdk)
                    .interceptor(calls.clone())
                    .build(),
            ),
            secretsmanager: aws_sdk_secretsmanager::Client::from_conf(
                aws_sdk_secretsmanager::config::Builder::from(sdk)
                    .interceptor(calls.clone())
                    .build(),
            ),
            sns: aws_sdk_sns::Client::from_conf(
                aws_sdk_sns::config::Builder::from(sdk)
                    .interceptor(calls.clone())
                    .build(),
            ),
            dynamodb: aws_sdk_dynamodb::Client::from_conf(
                aws_sdk_dynamodb::config::Builder::from(sdk)
                    .interceptor(calls.clone())
                    .build(),
            ),
            kms: aws_sdk_kms::Client::from_conf(
                aws_sdk_kms::config::Builder::from(sdk)
                    .interceptor(calls.clone())
                    .build(),
            ),
            region: sdk.region().map(|r| r.to_string()),
            calls,
        }
    }
}

/// An error and its sources, each by its `Display` (`a: b: c`): never `Debug` output.
fn display_chain(err: &dyn std::error::Error) -> String {
    let mut parts: Vec<String> = vec![err.to_string()];
    let mut next = err.source();
    while let Some(e) = next {
        let text = e.to_string();
        if parts.last() != Some(&text) {
            parts.push(text);
        }
        next = e.source();
    }
    parts.join(": ")
}

/// Turns an SDK error into an [`AwsError`] carrying the AWS code and the action.
pub fn aws_error<E, R>(action: impl Into<String>, err: SdkError<E, R>) -> AwsError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug + HttpStatus,
{
    let action = action.into();
    match &err {
        SdkError::ServiceError(se) => {
            let e = se.err();
            let code = e.code().unwrap_or("Unknown").to_string();
            let message = e.message().unwrap_or("(no message)").to_string();
            let retryable = is_retryable_code(&code);
            // An answer with a code was refused, except a server error: EC2 may have acted
            // before it failed. Throttling (503 RequestLimitExceeded) is refused before acting.
            let ambiguous = se.raw().status_code() >= 500 && !THROTTLE_CODES.contains(&&*code);
            AwsError {
                action,
                code,
                message,
                retryable,
                ambiguous,
            }
        }
        SdkError::TimeoutError(_) => AwsError {
            action,
            code: "Timeout".into(),
            message: "the request timed out".into(),
            retryable: true,
            ambiguous: true,
        },
        SdkError::DispatchFailure(_) => {
            let text = display_chain(&err);
            // Failing to connect means nothing was sent; losing the connection later may mean
            // AWS acted and the answer was lost.
            let ambiguous = !never_connected(&text);
            let mut e = unsent(action, text, |text| {
                (
                    "DispatchFailure",
                    format!("could not send the request: {text}"),
                    true,
                )
            });
            e.ambiguous = ambiguous && e.retryable;
            e
        }
        SdkError::ResponseError(_) => AwsError {
            action,
            code: "ResponseError".into(),
            message: format!("unreadable response: {}", display_chain(&err)),
            retryable: true,
            ambiguous: true,
        },
        _ => unsent(action, display_chain(&err), |text| {
            ("ClientError", text, false)
        }),
    }
}

/// The HTTP status of a raw response, so that [`aws_error`] can tell a
/// server error from a refusal.
pub trait HttpStatus {
    fn status_code(&self) -> u16;
}

impl HttpStatus for aws_smithy_runtime_api::http::Response {
    fn status_code(&self) -> u16 {
        self.status().as_u16()
    }
}

/// A dispatch failure that happened before any byte of the request left: DNS, connect.
fn never_connected(text: &str) -> bool {
    let lower = text.to_ascii_lowercase();
    [
        "connection refused",
        "dns error",
        "failed to lookup address",
        "error trying to connect",
        "tcp connect error",
        "client error (connect)",
    ]
    .iter()
    .any(|s| lower.contains(s))
}

/// An error of a request that never got an AWS answer: its cause when a person can fix it
/// ([`crate::core::advice::transport`]), else `otherwise(text)` = (code, message, retryable).
fn unsent(
    action: String,
    text: String,
    otherwise: impl FnOnce(String) -> (&'static str, String, bool),
) -> AwsError {
    match crate::core::advice::transport(&text) {
        Some(c) => AwsError {
            action,
            retryable: c.code == "EndpointUnreachable",
            code: c.code.into(),
            message: c.message,
            ambiguous: false,
        },
        None => {
            let (code, message, retryable) = otherwise(text);
            AwsError {
                action,
                code: code.into(),
                message,
                retryable,
                ambiguous: false,
            }
        }
    }
}

/// Error codes worth a later retry (after the SDK's own retries gave up).
pub fn is_retryable_code(code: &str) -> bool {
    matches!(
        code,
        "RequestLimitExceeded"
            | "SnapshotCreationPerVolumeRateExceeded"
            | "Throttling"
            | "ThrottlingException"
            | "InternalError"
            | "InternalFailure"
            | "ServiceUnavailable"
            | "Unavailable"
            | "InternalServerException"
            | "ConcurrentSnapshotLimitExceeded"
    )
}

impl Clients {
    /// This account's id (one `GetCallerIdentity`; only asked for when a ticket needs it).
    pub async fn account_id(&self) -> Option<String> {
        match self.sts.get_caller_identity().send().await {
            Ok(o) => o.account().map(String::from),
            Err(e) => {
                tracing::warn!(error = %aws_error("reading the caller identity", e), "account id unknown");
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_ec2::error::ErrorMetadata;
    use aws_sdk_ec2::operation::create_snapshot::CreateSnapshotError;
    use aws_smithy_runtime_api::client::result::{ConnectorError, SdkError};
    use aws_smithy_runtime_api::http::{Response, StatusCode};
    use aws_smithy_types::body::SdkBody;

    fn service(status: u16, code: &str) -> AwsError {
        let err = CreateSnapshotError::generic(ErrorMetadata::builder().code(code).build());
        let raw = Response::new(
            StatusCode::try_from(status).expect("status"),
            SdkBody::empty(),
        );
        aws_error("creating", SdkError::service_error(err, raw))
    }

    fn dispatch(io: std::io::Error) -> AwsError {
        let e: SdkError<CreateSnapshotError, Response> =
            SdkError::dispatch_failure(ConnectorError::io(Box::new(io)));
        aws_error("creating", e)
    }

    #[test]
    fn refusals_and_ambiguous_failures_are_told_apart() {
        // Answers with a code: refused, except server errors that are not throttling.
        assert!(!service(400, "InvalidVolume.NotFound").ambiguous);
        assert!(!service(503, "RequestLimitExceeded").ambiguous);
        assert!(!service(400, "SnapshotCreationPerVolumeRateExceeded").ambiguous);
        let e = service(500, "InternalError");
        assert!(e.ambiguous && e.retryable, "{e:?}");
        assert!(service(503, "Unavailable").ambiguous);
        // A connection lost after sending: ambiguous; never connected: refused.
        let lost = dispatch(std::io::Error::new(
            std::io::ErrorKind::ConnectionReset,
            "connection reset by peer",
        ));
        assert!(lost.ambiguous && lost.retryable, "{lost:?}");
        let refused = dispatch(std::io::Error::new(
            std::io::ErrorKind::ConnectionRefused,
            "tcp connect error: Connection refused (os error 111)",
        ));
        assert!(!refused.ambiguous, "{refused:?}");
        let timeout: SdkError<CreateSnapshotError, Response> =
            SdkError::timeout_error("operation timed out");
        assert!(aws_error("creating", timeout).ambiguous);
    }
}
