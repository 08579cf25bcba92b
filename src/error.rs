//! The runner's error type and its mapping to exit codes and Lambda error types.

use crate::core::doc::DocError;

/// An AWS call that failed, with the AWS error code when there is one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{action}: {code}: {message}")]
pub struct AwsError {
    /// What we were doing, as a gerund phrase: `creating EBS snapshot of vol-123`.
    pub action: String,
    /// The AWS error code (`InvalidVolume.NotFound`) or a transport class (`DispatchFailure`).
    pub code: String,
    pub message: String,
    /// Worth retrying later (throttling, 5xx, timeouts, transport).
    pub retryable: bool,
    /// AWS may have acted although the call failed: the request was sent and no answer says it
    /// was refused (a timeout, a connection lost after sending, a 5xx other than throttling).
    /// A call that creates must look before it is sent again (docs/design.md §5, exactly once).
    pub ambiguous: bool,
}

/// Why a command could not complete. Per-volume failures are not errors: they are reported in
/// the run report and turn into exit code 1 after every other volume was processed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Bad input or configuration: fix the input; retrying will not help (exit 2).
    #[error("{0}")]
    Input(String),
    /// A Lambda event the runner refuses to act on (a run key its schedule could not have
    /// sent): nothing was done; answered as `rejected_event`, never a ticket.
    #[error("event rejected: {0}")]
    Rejected(String),
    /// AWS or infrastructure trouble (exit 3); may succeed on retry.
    #[error(transparent)]
    Aws(#[from] AwsError),
}

impl From<DocError> for Error {
    fn from(e: DocError) -> Self {
        Error::Input(e.to_string())
    }
}

impl Error {
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Input(_) | Error::Rejected(_) => exit::BAD_INPUT,
            Error::Aws(_) => exit::AWS,
        }
    }

    /// A short code: the AWS code (or the transport cause) for AWS errors, `BadInput` or
    /// `RejectedEvent` otherwise.
    pub fn code(&self) -> &str {
        match self {
            Error::Input(_) => "BadInput",
            Error::Rejected(_) => "RejectedEvent",
            Error::Aws(e) => &e.code,
        }
    }

    /// What a person should do about it, when that is known (docs/design.md §8).
    pub fn action(&self) -> Option<&'static str> {
        match self {
            Error::Aws(e) => crate::core::advice::action(&e.code),
            _ => None,
        }
    }

    /// The Lambda error type: Scheduler's retry policy only helps with retryable errors.
    pub fn lambda_type(&self) -> &'static str {
        match self {
            Error::Input(_) | Error::Rejected(_) => "NonRetryable",
            Error::Aws(e) if e.retryable => "Retryable",
            Error::Aws(_) => "NonRetryable",
        }
    }
}

/// Documented exit codes (docs/design.md §8).
pub mod exit {
    pub const OK: i32 = 0;
    pub const VOLUME_FAILED: i32 = 1;
    pub const BAD_INPUT: i32 = 2;
    pub const AWS: i32 = 3;
}
