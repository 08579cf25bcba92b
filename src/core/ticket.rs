//! Failure tickets (DESIGN §7): the payload, its dedup keys and its signature. Pure: building a
//! ticket from a report and signing it needs no network; delivery lives in `crate::webhook`.

use hmac::{Hmac, KeyInit, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use crate::core::doc::Invocation;
use crate::core::guide::{Category, guide};
use crate::core::report::Report;

pub const EVENT_FAILED: &str = "snapshot.failed";
pub const EVENT_OVERDUE: &str = "snapshot.overdue";
pub const EVENT_RUN_FAILED: &str = "run.failed";
pub const EVENT_RECOVERED: &str = "snapshot.recovered";

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
    pub category: String,
    /// What to check or do, with the console or CLI command that shows it.
    #[serde(default)]
    pub action: String,
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
    /// `critical`, `error`, `warning` or `info` (see `severity` and docs/tickets.md).
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
fn annotate(
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

fn run_info(report: &Report, inv: Option<&Invocation>) -> RunInfo {
    RunInfo {
        kind: report.kind.to_string(),
        key: report.run_key.clone(),
        scheduled_time: inv.and_then(|i| i.scheduled_time()).map(String::from),
        execution_id: inv.and_then(|i| i.execution_id()).map(String::from),
        attempt: inv.and_then(|i| i.attempt()).map(String::from),
        schedule_arn: inv.and_then(|i| i.schedule_arn()).map(String::from),
    }
}

fn summary(r: &Report) -> Summary {
    Summary {
        volumes_selected: r.volumes_selected,
        created: r.created.len(),
        deleted: r.deleted.len(),
        skipped: r.skipped.len(),
        failed: r.failures.len(),
        overdue: r.overdue.len(),
        error_snapshots: r.error_snapshots.len(),
        duration_ms: r.duration_ms,
    }
}

/// The day of a timestamp string (`2026-11-26T05:00:00Z` → `2026-11-26`).
fn day(ts: &str) -> &str {
    ts.get(..10).unwrap_or(ts)
}

/// The ticket a report calls for, if any: failed volumes (a run or a sweep), snapshots found in
/// state `error`, or overdue volumes (a sweep). One ticket per run or sweep.
pub fn from_report(report: &Report, ctx: &Context) -> Option<Ticket> {
    let mut failures: Vec<TicketFailure> = report
        .failures
        .iter()
        .map(|f| TicketFailure {
            volume_id: (!f.volume_id.is_empty()).then(|| f.volume_id.clone()),
            instance_id: f.instance_id.clone(),
            device: f.device.clone(),
            snapshot_id: f.snapshot_id.clone(),
            target: None,
            code: f.code.clone(),
            message: f.message.clone(),
            retryable: f.retryable,
            ..Default::default()
        })
        .zip(report.failures.iter())
        .map(|(t, f)| {
            let about = match (&f.reference, f.volume_id.as_str()) {
                (Some(r), _) => r.clone(),
                (None, "") => f.instance_id.clone().unwrap_or_else(|| "run".into()),
                (None, v) => v.to_string(),
            };
            annotate(t, &report.policy, report.target.as_deref(), &about)
        })
        .collect();
    for e in &report.error_snapshots {
        let f = TicketFailure {
            volume_id: Some(e.volume_id.clone()),
            instance_id: None,
            device: None,
            snapshot_id: Some(e.snapshot_id.clone()),
            target: Some(e.target.clone()),
            code: "SnapshotError".into(),
            message: format!(
                "snapshot {} of {} ended in state error",
                e.snapshot_id, e.volume_id
            ),
            retryable: true,
            dedup_key: Some(format!("{}/{}/{}", report.policy, e.target, e.snapshot_id)),
            ..Default::default()
        };
        failures.push(annotate(f, &report.policy, None, &e.volume_id));
    }
    let failed = !failures.is_empty();
    for o in &report.overdue {
        let f = TicketFailure {
            volume_id: Some(o.volume_id.clone()),
            instance_id: o.instance_id.clone(),
            device: o.device.clone(),
            snapshot_id: o.newest_snapshot_id.clone(),
            target: Some(o.target.clone()),
            code: "Overdue".into(),
            message: match &o.newest_at {
                Some(at) => format!(
                    "newest completed snapshot: {at}, older than twice the schedule's interval ({} s)",
                    o.interval_seconds
                ),
                None => format!(
                    "no completed snapshot, though the volume and the schedule are older than twice its interval ({} s)",
                    o.interval_seconds
                ),
            },
            retryable: true,
            dedup_key: Some(format!(
                "{}/{}/{}/{}",
                report.policy,
                o.target,
                o.volume_id,
                day(&ctx.occurred_at)
            )),
            ..Default::default()
        };
        failures.push(annotate(f, &report.policy, None, &o.volume_id));
    }
    if failures.is_empty() {
        return None;
    }
    let event = if failed { EVENT_FAILED } else { EVENT_OVERDUE };
    let severity = severity(report, &failures);
    let dedup_key = match (&report.target, report.kind) {
        (Some(t), _) => format!("{}/{}/{}", report.policy, t, report.run_key),
        (None, _) => format!(
            "{}/sweep/{}/{}",
            report.policy,
            event,
            day(&ctx.occurred_at)
        ),
    };
    Some(Ticket {
        ebssnap: 1,
        event: event.into(),
        severity: severity.into(),
        dedup_key,
        occurred_at: ctx.occurred_at.clone(),
        account: ctx.account.clone(),
        region: ctx.region.clone(),
        policy: report.policy.clone(),
        target: report.target.clone(),
        run: run_info(report, ctx.invocation.as_ref()),
        failures,
        summary: summary(report),
        runner_version: env!("CARGO_PKG_VERSION").into(),
        ..Default::default()
    })
}

/// Severity that means something:
/// - `critical`: a volume has had no completed snapshot for more than two intervals (overdue),
///   or the whole target failed (nothing was created and something failed, or the selection
///   itself failed);
/// - `error`: a volume failed for a reason a person must look at;
/// - `warning`: every failure is transient, so the next run is expected to fix it.
///
/// (`info` is for `snapshot.recovered`.)
fn severity(report: &Report, failures: &[TicketFailure]) -> &'static str {
    let whole_target = report.kind == "run"
        && report.created.is_empty()
        && (report.volumes_selected == 0 || !report.failures.is_empty());
    let selection = report.failures.iter().any(|f| f.code == "EmptySelection");
    if !report.overdue.is_empty() || (whole_target && !report.failures.is_empty()) || selection {
        "critical"
    } else if failures
        .iter()
        .all(|f| f.category == Category::Transient.as_str())
    {
        "warning"
    } else {
        "error"
    }
}

/// The `snapshot.recovered` ticket a report calls for, if any volume recovered.
pub fn recovered_from_report(report: &Report, ctx: &Context) -> Option<Ticket> {
    if report.recovered.is_empty() {
        return None;
    }
    let recovered: Vec<TicketRecovered> = report
        .recovered
        .iter()
        .map(|r| TicketRecovered {
            problem_keys: VOLUME_CATEGORIES
                .iter()
                .map(|c| problem_key(&report.policy, Some(&r.target), &r.volume_id, *c))
                .collect(),
            target: r.target.clone(),
            volume_id: r.volume_id.clone(),
            instance_id: r.instance_id.clone(),
            device: r.device.clone(),
            snapshot_id: r.snapshot_id.clone(),
            previous_at: r.previous_at.clone(),
        })
        .collect();
    let resolves = recovered
        .iter()
        .flat_map(|r| r.problem_keys.iter().cloned())
        .collect();
    let dedup_key = match &report.target {
        Some(t) => format!("{}/{}/{}/recovered", report.policy, t, report.run_key),
        None => format!(
            "{}/sweep/{}/{}",
            report.policy,
            EVENT_RECOVERED,
            day(&ctx.occurred_at)
        ),
    };
    Some(Ticket {
        ebssnap: 1,
        event: EVENT_RECOVERED.into(),
        severity: "info".into(),
        dedup_key,
        occurred_at: ctx.occurred_at.clone(),
        account: ctx.account.clone(),
        region: ctx.region.clone(),
        policy: report.policy.clone(),
        target: report.target.clone(),
        run: run_info(report, ctx.invocation.as_ref()),
        failures: vec![],
        recovered,
        resolves,
        summary: summary(report),
        runner_version: env!("CARGO_PKG_VERSION").into(),
    })
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
        run: RunInfo {
            kind: kind.into(),
            key: run_key.into(),
            scheduled_time: ctx
                .invocation
                .as_ref()
                .and_then(|i| i.scheduled_time())
                .map(String::from),
            execution_id: ctx
                .invocation
                .as_ref()
                .and_then(|i| i.execution_id())
                .map(String::from),
            attempt: ctx
                .invocation
                .as_ref()
                .and_then(|i| i.attempt())
                .map(String::from),
            schedule_arn: ctx
                .invocation
                .as_ref()
                .and_then(|i| i.schedule_arn())
                .map(String::from),
        },
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
    #[error("malformed signature header (expected t=<unix>,v1=<hex>)")]
    Malformed,
    #[error("signature does not match (wrong secret, or the body was changed)")]
    Mismatch,
    #[error("signature timestamp is {0} s away from now (replay?)")]
    Stale(i64),
}

/// Verifies a signature header in constant time; `tolerance` bounds the timestamp's age.
pub fn verify(
    secret: &str,
    header: &str,
    body: &[u8],
    now: i64,
    tolerance: i64,
) -> Result<(), VerifyError> {
    let mut t = None;
    let mut v1 = None;
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", v)) => t = v.parse::<i64>().ok(),
            Some(("v1", v)) => v1 = hex::decode(v).ok(),
            _ => {}
        }
    }
    let (Some(t), Some(v1)) = (t, v1) else {
        return Err(VerifyError::Malformed);
    };
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
