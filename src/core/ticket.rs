//! Failure tickets (docs/design.md §7): the payload, its dedup keys and its signature. Pure: building a
//! ticket from a report and signing it needs no network; delivery lives in `crate::webhook`.

use hmac::{Hmac, KeyInit, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use crate::core::doc::Invocation;
use crate::core::guide::{Category, guide};

pub const EVENT_FAILED: &str = "snapshot.failed";
pub const EVENT_OVERDUE: &str = "snapshot.overdue";
pub const EVENT_RUN_FAILED: &str = "run.failed";
pub const EVENT_RECOVERED: &str = "snapshot.recovered";
pub const EVENT_RESTORE_FAILED: &str = "restore.failed";
pub const EVENT_RESTORE_RECOVERED: &str = "restore.recovered";
pub const EVENT_RESTORE_EXPIRED: &str = "restore.expired";
pub const EVENT_COVERAGE_UNPROTECTED: &str = "coverage.unprotected";
pub const EVENT_COVERAGE_RECOVERED: &str = "coverage.recovered";
pub const EVENT_COPY_FAILED: &str = "copy.failed";
pub const EVENT_COPY_OVERDUE: &str = "copy.overdue";
pub const EVENT_COPY_RECOVERED: &str = "copy.recovered";
pub const EVENT_SHARE_FAILED: &str = "share.failed";

/// The problem key of an unprotected volume (`coverage.unprotected`), which `coverage.recovered`
/// resolves.
pub fn coverage_problem_key(policy: &str, volume: &str) -> String {
    format!("{policy}/coverage/{volume}/unprotected")
}

/// Which run a ticket is about.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunInfo {
    /// `run` or `sweep`.
    pub kind: String,
    pub key: String,
    pub scheduled_time: Option<String>,
    pub execution_id: Option<String>,
    pub attempt: Option<String>,
    pub schedule_arn: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TicketFailure {
    pub volume_id: Option<String>,
    pub instance_id: Option<String>,
    pub device: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snapshot_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    pub code: String,
    pub message: String,
    /// Whether retrying the same operation later may succeed (throttling, 5xx, timeouts).
    pub retryable: bool,
    /// Stable key of this one problem, for systems that track volumes separately.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dedup_key: Option<String>,
    /// The response guide's category: `transient`, `volume`, `permission`, `configuration`,
    /// `capacity` or `unknown`.
    #[serde(default)]
    pub category: std::borrow::Cow<'static, str>,
    /// What to check or do, with the console or CLI command that shows it (the response guide's
    /// text, shared by every failure of a code rather than copied into each).
    #[serde(default)]
    pub action: std::borrow::Cow<'static, str>,
    /// The same on every run while the problem lasts:
    /// `<policy>/<target>/<volume or reference>/<category>`; a `snapshot.recovered` ticket names it.
    #[serde(default)]
    pub problem_key: String,
}

/// A volume whose problem ended, in a `snapshot.recovered` ticket.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TicketRecovered {
    pub target: String,
    pub volume_id: String,
    pub instance_id: Option<String>,
    pub device: Option<String>,
    pub snapshot_id: Option<String>,
    pub previous_at: Option<String>,
    /// The problem keys this recovery resolves (every volume-level category of this volume).
    pub problem_keys: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Summary {
    pub volumes_selected: usize,
    pub created: usize,
    pub deleted: usize,
    pub skipped: usize,
    pub failed: usize,
    pub overdue: usize,
    pub error_snapshots: usize,
    pub duration_ms: u64,
}

/// The ticket body, format version 1.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ticket {
    pub ebssnap: u64,
    pub event: String,
    /// `critical`, `error`, `warning` or `info` (see `severity` and docs/guides/tickets.md).
    pub severity: String,
    pub dedup_key: String,
    pub occurred_at: String,
    pub account: Option<String>,
    pub region: Option<String>,
    pub policy: String,
    pub target: Option<String>,
    pub run: RunInfo,
    pub failures: Vec<TicketFailure>,
    /// `snapshot.recovered` only: the volumes whose problems ended.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub recovered: Vec<TicketRecovered>,
    /// `snapshot.recovered` only: every problem key it resolves, for ticket systems that
    /// resolve by key.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resolves: Vec<String>,
    pub summary: Summary,
    pub runner_version: String,
}

impl Ticket {
    /// The ticket without its failures, recoveries and resolved keys (cheap to copy).
    pub fn header(&self) -> Ticket {
        Ticket {
            ebssnap: self.ebssnap,
            event: self.event.clone(),
            severity: self.severity.clone(),
            dedup_key: self.dedup_key.clone(),
            occurred_at: self.occurred_at.clone(),
            account: self.account.clone(),
            region: self.region.clone(),
            policy: self.policy.clone(),
            target: self.target.clone(),
            run: self.run.clone(),
            failures: Vec::new(),
            recovered: Vec::new(),
            resolves: Vec::new(),
            summary: self.summary.clone(),
            runner_version: self.runner_version.clone(),
        }
    }
}

impl RunInfo {
    /// A run's kind and key with the scheduler's context attributes that were substituted.
    pub fn of(kind: &str, key: &str, inv: Option<&Invocation>) -> RunInfo {
        RunInfo {
            kind: kind.into(),
            key: key.into(),
            scheduled_time: inv.and_then(|i| i.scheduled_time()).map(String::from),
            execution_id: inv.and_then(|i| i.execution_id()).map(String::from),
            attempt: inv.and_then(|i| i.attempt()).map(String::from),
            schedule_arn: inv.and_then(|i| i.schedule_arn()).map(String::from),
        }
    }
}

/// `<policy>/<target>/<volume or reference>/<category>`: stable while one problem lasts.
pub fn problem_key(policy: &str, target: Option<&str>, about: &str, category: Category) -> String {
    format!(
        "{policy}/{}/{about}/{}",
        target.unwrap_or("sweep"),
        category.as_str()
    )
}

/// The categories a volume-level problem can have: a recovery of the volume resolves them all
/// (the runner keeps no state, so it cannot know which one was open).
pub const VOLUME_CATEGORIES: [Category; 5] = [
    Category::Transient,
    Category::Volume,
    Category::Permission,
    Category::Capacity,
    Category::Unknown,
];

/// Fills a failure's category, action and problem key from the response guide.
pub(crate) fn annotate(
    mut f: TicketFailure,
    policy: &str,
    target: Option<&str>,
    about: &str,
) -> TicketFailure {
    let (category, action) = guide(&f.code);
    f.category = category.as_str().into();
    f.action = action.into();
    f.problem_key = problem_key(policy, f.target.as_deref().or(target), about, category);
    f
}

/// Where and when: filled by the runner.
#[derive(Debug, Clone, Default)]
pub struct Context {
    pub account: Option<String>,
    pub region: Option<String>,
    pub occurred_at: String,
    pub invocation: Option<Invocation>,
}

/// The ticket of a run that could not run at all (an AWS error before or around the snapshots).
pub fn run_failed(
    policy: &str,
    target: Option<&str>,
    run_key: &str,
    code: &str,
    message: &str,
    retryable: bool,
    ctx: &Context,
) -> Ticket {
    let kind = if target.is_some() { "run" } else { "sweep" };
    Ticket {
        ebssnap: 1,
        event: EVENT_RUN_FAILED.into(),
        severity: "critical".into(),
        dedup_key: format!("{policy}/{}/{run_key}", target.unwrap_or("sweep")),
        occurred_at: ctx.occurred_at.clone(),
        account: ctx.account.clone(),
        region: ctx.region.clone(),
        policy: policy.into(),
        target: target.map(String::from),
        run: RunInfo::of(kind, run_key, ctx.invocation.as_ref()),
        failures: vec![annotate(
            TicketFailure {
                code: code.into(),
                message: message.into(),
                retryable,
                ..Default::default()
            },
            policy,
            target,
            "run",
        )],
        summary: Summary::default(),
        runner_version: env!("CARGO_PKG_VERSION").into(),
        ..Default::default()
    }
}

/// The account id of an ARN (`arn:aws:scheduler:us-east-1:123456789012:schedule/...`).
pub fn account_of_arn(arn: &str) -> Option<String> {
    let acct = arn.split(':').nth(4)?;
    (acct.len() == 12 && acct.chars().all(|c| c.is_ascii_digit())).then(|| acct.to_string())
}

type HmacSha256 = Hmac<Sha256>;

fn mac(secret: &str, t: i64, body: &[u8]) -> Option<HmacSha256> {
    let mut m = HmacSha256::new_from_slice(secret.as_bytes()).ok()?;
    m.update(t.to_string().as_bytes());
    m.update(b".");
    m.update(body);
    Some(m)
}

/// `X-Ebssnap-Signature: t=<unix>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`.
pub fn signature(secret: &str, t: i64, body: &[u8]) -> String {
    let hex = mac(secret, t, body)
        .map(|m| hex::encode(m.finalize().into_bytes()))
        .unwrap_or_default();
    format!("t={t},v1={hex}")
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    #[error("malformed signature header (expected exactly t=<unix>,v1=<64 lower-case hex>)")]
    Malformed,
    #[error("signature does not match (wrong secret, or the body was changed)")]
    Mismatch,
    #[error("signature timestamp is {0} s away from now (replay?)")]
    Stale(i64),
}

/// Reads a signature header strictly: exactly one `t=<unix seconds>` and one `v1=<64 lower-case
/// hex digits>`, in that order, comma-separated, nothing else (no spaces, no extra fields, no
/// upper case). One signature has one spelling, so a receiver's replay cache cannot be walked
/// around by re-spelling a captured header. Gives the time and the MAC.
pub fn parse_signature(header: &str) -> Result<(i64, [u8; 32]), VerifyError> {
    let (t, v1) = header
        .strip_prefix("t=")
        .and_then(|rest| rest.split_once(",v1="))
        .ok_or(VerifyError::Malformed)?;
    let digits_only = !t.is_empty()
        && t.len() <= 12
        && t.bytes().all(|b| b.is_ascii_digit())
        && !(t.len() > 1 && t.starts_with('0'));
    let lower_hex = v1.len() == 64 && v1.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    if !(digits_only && lower_hex) {
        return Err(VerifyError::Malformed);
    }
    let t = t.parse::<i64>().map_err(|_| VerifyError::Malformed)?;
    let mut m = [0u8; 32];
    hex::decode_to_slice(v1, &mut m).map_err(|_| VerifyError::Malformed)?;
    Ok((t, m))
}

/// Verifies a signature header (read by [`parse_signature`]) in constant time; `tolerance`
/// bounds the timestamp's age.
pub fn verify(
    secret: &str,
    header: &str,
    body: &[u8],
    now: i64,
    tolerance: i64,
) -> Result<(), VerifyError> {
    let (t, v1) = parse_signature(header)?;
    let m = mac(secret, t, body).ok_or(VerifyError::Malformed)?;
    m.verify_slice(&v1).map_err(|_| VerifyError::Mismatch)?;
    if (now - t).abs() > tolerance {
        return Err(VerifyError::Stale(now - t));
    }
    Ok(())
}

/// A URL safe to log: scheme, host and port only. Tokens live in the userinfo, the query *and*
/// the path of most ticket and chat webhooks (`/services/T000/B000/XXXX`), so all three go.
pub fn redact_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(u) => match u.host_str() {
            Some(host) => match u.port() {
                Some(port) => format!("{}://{host}:{port}/…", u.scheme()),
                None => format!("{}://{host}/…", u.scheme()),
            },
            None => format!("{}:…", u.scheme()),
        },
        Err(_) => "<invalid URL>".into(),
    }
}

/// What to do with an HTTP answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    Delivered,
    Retry,
    Permanent,
}

pub fn classify(status: u16) -> Answer {
    match status {
        200..=299 => Answer::Delivered,
        408 | 429 | 500..=599 => Answer::Retry,
        // Redirects are never followed (a token could be replayed to another host).
        _ => Answer::Permanent,
    }
}

/// `Retry-After` as seconds (delta form) or an HTTP date, relative to `now` (unix seconds).
pub fn retry_after(value: &str, now: i64) -> Option<u64> {
    let v = value.trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(secs);
    }
    let t = jiff::fmt::rfc2822::parse(v).ok()?.timestamp().as_second();
    Some(u64::try_from(t - now).unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_verify_with_the_secret_only() {
        let body = br#"{"ebssnap":1}"#;
        let h = signature("s3cret", 1_800_000_000, body);
        assert!(h.starts_with("t=1800000000,v1="));
        assert_eq!(verify("s3cret", &h, body, 1_800_000_010, 300), Ok(()));
        assert_eq!(
            verify("other", &h, body, 1_800_000_010, 300),
            Err(VerifyError::Mismatch)
        );
        assert_eq!(
            verify("s3cret", &h, b"{}", 1_800_000_010, 300),
            Err(VerifyError::Mismatch)
        );
        assert_eq!(
            verify("s3cret", &h, body, 1_800_001_000, 300),
            Err(VerifyError::Stale(1000))
        );
        assert_eq!(
            verify("s3cret", "v1=zz", body, 0, 300),
            Err(VerifyError::Malformed)
        );
        // A known vector: HMAC-SHA256("key", "0.The quick brown fox").
        let want = {
            let mut m = HmacSha256::new_from_slice(b"key").unwrap();
            m.update(b"0.The quick brown fox");
            hex::encode(m.finalize().into_bytes())
        };
        assert_eq!(
            signature("key", 0, b"The quick brown fox"),
            format!("t=0,v1={want}")
        );
    }

    #[test]
    fn a_signature_has_one_spelling() {
        let body = br#"{"ebssnap":1}"#;
        let h = signature("s3cret", 1_800_000_000, body);
        let hex = h.split_once(",v1=").unwrap().1.to_string();
        assert_eq!(verify("s3cret", &h, body, 1_800_000_000, 300), Ok(()));
        for variant in [
            format!("t=1800000000, v1={hex}"),
            format!(" t=1800000000,v1={hex}"),
            format!("v1={hex},t=1800000000"),
            format!("t=1800000000,v1={}", hex.to_uppercase()),
            format!("t=1800000000,v1={hex},v1={hex}"),
            format!("t=1800000000,t=1800000000,v1={hex}"),
            format!("t=1800000000,v1={hex},v0=00"),
            format!("t=+1800000000,v1={hex}"),
            format!("t=01800000000,v1={hex}"),
            format!("t=1800000000,v1={hex}x"),
        ] {
            assert_eq!(
                verify("s3cret", &variant, body, 1_800_000_000, 300),
                Err(VerifyError::Malformed),
                "{variant}"
            );
        }
        assert_eq!(parse_signature(&h).unwrap().0, 1_800_000_000);
    }

    #[test]
    fn urls_are_redacted_for_logs() {
        assert_eq!(
            redact_url("https://user:pw@tickets.example.com/hooks/T0/B1/s3cr3t?token=abc#x"),
            "https://tickets.example.com/…"
        );
        assert_eq!(
            redact_url("http://127.0.0.1:8080/hook/s3cr3t"),
            "http://127.0.0.1:8080/…"
        );
        assert_eq!(redact_url("not a url"), "<invalid URL>");
    }

    #[test]
    fn answers_and_retry_after() {
        assert_eq!(classify(204), Answer::Delivered);
        assert_eq!(classify(429), Answer::Retry);
        assert_eq!(classify(408), Answer::Retry);
        assert_eq!(classify(503), Answer::Retry);
        assert_eq!(classify(404), Answer::Permanent);
        assert_eq!(classify(401), Answer::Permanent);
        assert_eq!(retry_after("7", 0), Some(7));
        assert_eq!(retry_after("Thu, 01 Jan 1970 00:01:40 GMT", 40), Some(60));
        assert_eq!(retry_after("soon", 0), None);
    }

    #[test]
    fn accounts_from_arns() {
        assert_eq!(
            account_of_arn("arn:aws:scheduler:us-east-1:123456789012:schedule/ebssnap-std/web")
                .as_deref(),
            Some("123456789012")
        );
        assert_eq!(account_of_arn("<aws.scheduler.schedule-arn>"), None);
    }
}
