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
    /// Attempts per mutating call (throttling, 5xx, per-volume limits), and the first backoff
    /// after a per-volume rate limit.
    pub create_attempts: u32,
    pub backoff: Duration,
    pub progress: Option<Progress>,
    /// How failure tickets are delivered (secret, retries); the deadline comes from `deadline`.
    pub delivery: DeliveryOptions,
    /// The hard end of the run's time budget (the Lambda deadline): ticket delivery stops here.
    pub deadline: Option<Instant>,
    /// Lambda only: the continuation chain this invocation belongs to (docs/design.md §5).
    pub chain: Option<Chain>,
    /// The target schedule's interval, when the documents came from Scheduler: a volume whose
    /// previous restore point is older than 1.5 intervals has recovered (`snapshot.recovered`).
    pub interval: Option<jiff::SignedDuration>,
    /// The most links one run may use (`EBSSNAP_MAX_LINKS`, default 10, at most 15).
    pub max_links: u32,
}

/// Where a run that runs out of time continues: an asynchronous invocation of the same function.
#[derive(Debug, Clone, PartialEq)]
pub struct Chain {
    /// This function's ARN (from the invocation context).
    pub function_arn: String,
    /// This invocation's place in the chain: 1 for the scheduled invocation.
    pub link: u32,
    /// The run key of the chain, for links after the first.
    pub run_key: Option<String>,
    /// The send rates the previous link had reached, by operation (empty for link 1).
    pub rates: std::collections::BTreeMap<String, f64>,
    /// The volumes the previous link left (empty: read the whole inventory).
    pub volumes: Vec<String>,
}

impl RunOptions {
    /// The send rate the previous link of the run reached for `op`, if any.
    pub fn carried_rate(&self, op: &str) -> Option<f64> {
        self.chain.as_ref().and_then(|c| c.rates.get(op).copied())
    }
}

/// Default and bounds of `EBSSNAP_MAX_LINKS`.
pub const DEFAULT_MAX_LINKS: u32 = 10;

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            now: Timestamp::now(),
            dry_run: false,
            run_key: None,
            concurrency: 8,
            stop_at: None,
            create_attempts: 10,
            backoff: Duration::from_secs(2),
            progress: None,
            delivery: DeliveryOptions::default(),
            deadline: None,
            chain: None,
            interval: None,
            max_links: DEFAULT_MAX_LINKS,
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
        "EBSSNAP_MAX_LINKS",
        "Lambda: most invocations one run may use before unstarted volumes fail (1-15, default 10)",
    ),
    (
        "EBSSNAP_LOG",
        "log filter (else RUST_LOG; default info for JSON logs, warn for text)",
    ),
];

impl RunOptions {
    /// The options both shells share, from the runner's environment ([`ENV_SETTINGS`]).
    pub fn from_env() -> Self {
        let max_links = std::env::var("EBSSNAP_MAX_LINKS")
            .ok()
            .and_then(|v| v.parse::<u32>().ok())
            .map(|n| n.clamp(1, doc::MAX_LINKS_LIMIT))
            .unwrap_or(DEFAULT_MAX_LINKS);
        RunOptions {
            delivery: DeliveryOptions::from_env(),
            max_links,
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

/// The run key: the chain's (a continuation), else the substituted scheduled time, else
/// `--run-key`, else `manual-<UTC time>`. It
/// becomes a tag value, so it must fit EC2's limit (an event may be forged).
pub(super) fn run_key(
    invocation: Option<&doc::Invocation>,
    opts: &RunOptions,
) -> Result<String, Error> {
    let key = opts
        .chain
        .as_ref()
        .and_then(|c| c.run_key.clone())
        .or_else(|| {
            invocation
                .and_then(|i| i.scheduled_time())
                .map(String::from)
        })
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

    #[test]
    fn a_link_starts_at_the_rate_the_previous_link_reached() {
        let first = RunOptions::default();
        assert_eq!(first.carried_rate("CreateSnapshot"), None);
        let next = RunOptions {
            chain: Some(Chain {
                function_arn: "arn:aws:lambda:us-east-1:123456789012:function:f".into(),
                link: 2,
                run_key: Some("2026-11-26T05:00:00Z".into()),
                rates: [("CreateSnapshot".to_string(), 31.5)].into(),
                volumes: vec![],
            }),
            ..RunOptions::default()
        };
        assert_eq!(next.carried_rate("CreateSnapshot"), Some(31.5));
        assert_eq!(next.carried_rate("CreateSnapshots"), None);
    }
}
