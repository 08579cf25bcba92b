//! How a run behaves ([`RunOptions`]), read from the environment the same way by both shells,
//! and the run key.

use std::sync::Arc;
use std::time::{Duration, Instant};

use jiff::Timestamp;

use crate::core::doc;
use crate::core::tags;
use crate::error::Error;
use crate::webhook::DeliveryOptions;

/// Progress of a long run, for a terminal.
pub type Progress = Arc<dyn Fn(&str, usize, usize) + Send + Sync>;

/// How a run behaves; the defaults suit the Lambda.
#[derive(Clone)]
pub struct RunOptions {
    /// The clock for age decisions (`--now`); never used to backdate anything in AWS.
    pub now: Timestamp,
    /// Only Describe/Get calls; report what would be created and deleted.
    pub dry_run: bool,
    /// Run key when the document carries no substituted scheduled time.
    pub run_key: Option<String>,
    /// Snapshot creations and deletions in flight at once.
    pub concurrency: usize,
    /// Stop starting new work after this instant (the Lambda deadline minus a margin).
    pub stop_at: Option<Instant>,
    /// Attempts for a volume that hits a per-volume rate limit, and the first backoff.
    pub create_attempts: u32,
    pub backoff: Duration,
    pub progress: Option<Progress>,
    /// How failure tickets are delivered (secret, retries); the deadline comes from `deadline`.
    pub delivery: DeliveryOptions,
    /// The hard end of the run's time budget (the Lambda deadline): ticket delivery stops here.
    pub deadline: Option<Instant>,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            now: Timestamp::now(),
            dry_run: false,
            run_key: None,
            concurrency: 8,
            stop_at: None,
            create_attempts: 4,
            backoff: Duration::from_secs(2),
            progress: None,
            delivery: DeliveryOptions::default(),
            deadline: None,
        }
    }
}

/// Every environment variable the runner reads, with what it sets. The CLI and the Lambda build
/// their options from the same function ([`RunOptions::from_env`]), so both read all of them.
pub const ENV_SETTINGS: &[(&str, &str)] = &[
    (
        "EBSSNAP_WEBHOOK_SECRET",
        "fallback signing secret for failure tickets",
    ),
    (
        "EBSSNAP_WEBHOOK_ATTEMPTS",
        "delivery attempts per ticket (1-20, default 5)",
    ),
    (
        "EBSSNAP_WEBHOOK_BACKOFF_MS",
        "first backoff between delivery attempts (default 1000)",
    ),
    (
        "EBSSNAP_LOG",
        "log filter (else RUST_LOG; default info for JSON logs, warn for text)",
    ),
];

impl RunOptions {
    /// The options both shells share, from the runner's environment ([`ENV_SETTINGS`]).
    pub fn from_env() -> Self {
        RunOptions {
            delivery: DeliveryOptions::from_env(),
            ..RunOptions::default()
        }
    }

    pub(super) fn out_of_time(&self) -> bool {
        self.stop_at.is_some_and(|t| Instant::now() >= t)
    }

    pub(super) fn tick(&self, what: &str, done: usize, total: usize) {
        if let Some(p) = &self.progress {
            p(what, done, total);
        }
    }
}

/// The run key: the substituted scheduled time, else `--run-key`, else `manual-<UTC time>`. It
/// becomes a tag value, so it must fit EC2's limit (an event may be forged).
pub(super) fn run_key(
    invocation: Option<&doc::Invocation>,
    opts: &RunOptions,
) -> Result<String, Error> {
    let key = invocation
        .and_then(|i| i.scheduled_time())
        .map(String::from)
        .or_else(|| opts.run_key.clone())
        .unwrap_or_else(|| format!("manual-{}", Timestamp::now().strftime("%Y%m%dT%H%M%SZ")));
    tags::check_run_key(&key).map_err(Error::Input)?;
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_run_key_is_the_scheduled_time_then_the_flag_then_manual() {
        let opts = RunOptions {
            run_key: Some("nightly".into()),
            ..RunOptions::default()
        };
        let inv = doc::Invocation {
            scheduled_time: Some("2026-11-26T05:00:00Z".into()),
            ..Default::default()
        };
        assert_eq!(run_key(Some(&inv), &opts).unwrap(), "2026-11-26T05:00:00Z");
        let placeholders = doc::Invocation::placeholders();
        assert_eq!(run_key(Some(&placeholders), &opts).unwrap(), "nightly");
        assert!(
            run_key(None, &RunOptions::default())
                .unwrap()
                .starts_with("manual-")
        );
        let forged = doc::Invocation {
            scheduled_time: Some("x".repeat(300)),
            ..Default::default()
        };
        assert!(matches!(
            run_key(Some(&forged), &opts),
            Err(Error::Input(_))
        ));
    }
}
