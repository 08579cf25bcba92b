//! Schedule input documents (docs/design.md §3): the only input of the runner.
//!
//! The provider writes these into each schedule's `Input`; the runner reads them back. They are
//! versioned (`"ebssnap": 1`) and strict: an unknown field is an error (a typo must not silently
//! turn into a default), a newer version is a non-retryable error, and `null` means "the default"
//! so the provider can omit what the user did not set.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::limits;
use super::select::{Exclude, Select};

/// The document format this runner reads and writes.
pub const FORMAT_VERSION: u64 = 1;
/// EventBridge Scheduler's limit on a target's `Input`, in characters.
pub const MAX_INPUT_CHARS: usize = 8192;
/// Default number of completed snapshots always kept per volume.
pub const DEFAULT_MIN_SNAPSHOTS: u32 = 1;

/// Why a document was refused. Every variant is a bad-input error (exit code 2, non-retryable).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DocError {
    #[error("the document is not valid JSON: {0}")]
    Json(String),
    #[error("the document has no \"ebssnap\" format version; is this an ebssnap schedule input?")]
    MissingVersion,
    #[error(
        "the document has format version {found}, newer than this runner understands ({FORMAT_VERSION}); upgrade the runner"
    )]
    NewerVersion { found: u64 },
    #[error("the document has kind {found:?}, expected {expected:?}")]
    WrongKind {
        found: String,
        expected: &'static str,
    },
    #[error("the {kind} document is invalid: {message}")]
    Invalid { kind: &'static str, message: String },
}

/// Scheduler context attributes. Scheduler substitutes the `<aws.scheduler.*>` placeholders for
/// Lambda targets; a CLI run sees them verbatim and they then count as absent.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Invocation {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scheduled_time: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub execution_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attempt: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule_arn: Option<String>,
}

impl Invocation {
    /// The placeholders the provider writes; Scheduler replaces them at delivery.
    pub fn placeholders() -> Self {
        Invocation {
            scheduled_time: Some("<aws.scheduler.scheduled-time>".into()),
            execution_id: Some("<aws.scheduler.execution-id>".into()),
            attempt: Some("<aws.scheduler.attempt-number>".into()),
            schedule_arn: Some("<aws.scheduler.schedule-arn>".into()),
        }
    }

    /// The scheduled time when Scheduler substituted it; `None` for a placeholder or absent value.
    pub fn scheduled_time(&self) -> Option<&str> {
        substituted(&self.scheduled_time)
    }

    pub fn execution_id(&self) -> Option<&str> {
        substituted(&self.execution_id)
    }

    pub fn attempt(&self) -> Option<&str> {
        substituted(&self.attempt)
    }

    pub fn schedule_arn(&self) -> Option<&str> {
        substituted(&self.schedule_arn)
    }
}

fn is_placeholder(s: &str) -> bool {
    s.starts_with("<aws.scheduler.") && s.ends_with('>')
}

fn substituted(v: &Option<String>) -> Option<&str> {
    match v.as_deref() {
        Some(s) if !(s.is_empty() || is_placeholder(s)) => Some(s),
        _ => None,
    }
}

/// Retention settings. In a policy `days` is required; in a target every field overrides.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetentionDoc {
    #[serde(default)]
    pub days: Option<u32>,
    #[serde(default)]
    pub min_snapshots: Option<u32>,
    #[serde(default)]
    pub max_snapshots: Option<u32>,
}

/// A disaster-recovery copy of the policy's restore points in another Region (docs/design.md
/// §13): its own retention, minimum and maximum, an optional KMS key of that Region, and whether
/// the source's user tags go with it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CopyDoc {
    pub region: String,
    #[serde(default)]
    pub retention_days: Option<u32>,
    #[serde(default)]
    pub min_snapshots: Option<u32>,
    #[serde(default)]
    pub max_snapshots: Option<u32>,
    #[serde(default)]
    pub kms_key_id: Option<String>,
    #[serde(default)]
    pub copy_tags: Option<bool>,
}

/// At most this many copy Regions per policy.
pub const MAX_COPIES: usize = 5;

impl CopyDoc {
    /// The copy's rules: its own, the policy's where it has none.
    pub fn rules(&self, policy: &Rules) -> Rules {
        Rules {
            days: self.retention_days.unwrap_or(policy.days),
            min_snapshots: self.min_snapshots.unwrap_or(policy.min_snapshots),
            max_snapshots: self.max_snapshots.or(policy.max_snapshots),
            orphan_delete_after_days: None,
        }
    }

    pub fn copy_tags(&self) -> bool {
        self.copy_tags.unwrap_or(true)
    }
}

/// Accounts granted `createVolumePermission` on the policy's restore points (a vault account).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShareDoc {
    pub account_ids: Vec<String>,
}

/// A Region name's shape (`us-west-2`, `eu-central-1`, `us-gov-west-1`).
pub fn is_region_name(r: &str) -> bool {
    let parts: Vec<&str> = r.split('-').collect();
    parts.len() >= 3
        && r.len() <= 32
        && parts.iter().all(|p| {
            !p.is_empty()
                && p.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        })
        && parts
            .last()
            .is_some_and(|p| p.chars().all(|c| c.is_ascii_digit()))
}

/// Checks a policy's copies and share: at most five Regions, each once, each a Region name;
/// retention within range; a KMS key ARN in its copy's Region; 12-digit account ids.
pub fn check_copies(copies: &[CopyDoc], share: Option<&ShareDoc>) -> Result<(), String> {
    check_copy_regions(
        &copies
            .iter()
            .map(|c| {
                (
                    c.region.as_str(),
                    (c.retention_days, c.min_snapshots, c.max_snapshots),
                )
            })
            .collect::<Vec<_>>(),
    )?;
    for (i, c) in copies.iter().enumerate() {
        if let Some(k) = &c.kms_key_id {
            let parts: Vec<&str> = k.splitn(6, ':').collect();
            let ok = parts.len() == 6
                && parts[0] == "arn"
                && parts[2] == "kms"
                && (parts[5].starts_with("key/") || parts[5].starts_with("alias/"));
            if !ok {
                return Err(format!(
                    "copies[{i}].kms_key_id: {k:?} is not a KMS key ARN (arn:aws:kms:<region>:<account>:key/<id>)"
                ));
            }
            if parts[3] != c.region {
                return Err(format!(
                    "copies[{i}].kms_key_id: the key is in {}, not in the copy's Region {}",
                    parts[3], c.region
                ));
            }
        }
    }
    if let Some(s) = share {
        if s.account_ids.is_empty() {
            return Err("share.account_ids: list at least one account".into());
        }
        for (i, a) in s.account_ids.iter().enumerate() {
            if !is_account_id(a) {
                return Err(format!(
                    "share.account_ids[{i}]: {a:?} is not a 12-digit account id"
                ));
            }
        }
    }
    Ok(())
}

/// A target's copy overrides: each a Region's name, once, at most [`MAX_COPIES`], with the
/// retention's ranges.
pub fn check_copy_overrides(list: &[CopyRetentionDoc]) -> Result<(), String> {
    check_copy_regions(
        &list
            .iter()
            .map(|c| {
                (
                    c.region.as_str(),
                    (c.retention_days, c.min_snapshots, c.max_snapshots),
                )
            })
            .collect::<Vec<_>>(),
    )
}

/// `(retention_days, min_snapshots, max_snapshots)` of a copy Region.
type CopyCounts = (Option<u32>, Option<u32>, Option<u32>);

/// The checks a policy's copies and a target's overrides share: at most [`MAX_COPIES`], each a
/// Region name, each once, its counts within the retention's ranges.
fn check_copy_regions(list: &[(&str, CopyCounts)]) -> Result<(), String> {
    if list.len() > MAX_COPIES {
        return Err(format!(
            "copies: at most {MAX_COPIES} Regions, found {}",
            list.len()
        ));
    }
    for (i, (region, (days, min_snapshots, max_snapshots))) in list.iter().enumerate() {
        if !is_region_name(region) {
            return Err(format!(
                "copies[{i}].region: {region:?} is not an AWS Region name (e.g. us-west-2)"
            ));
        }
        if list[..i].iter().any(|(r, _)| r == region) {
            return Err(format!("copies[{i}].region: {region} is listed twice"));
        }
        if let Some(d) = days {
            check_days("copies.retention_days", *d).map_err(|e| format!("copies[{i}]: {e}"))?;
        }
        check_counts(&RetentionDoc {
            days: None,
            min_snapshots: *min_snapshots,
            max_snapshots: *max_snapshots,
        })
        .map_err(|e| format!("copies[{i}]: {e}"))?;
    }
    Ok(())
}

/// An AWS account id: 12 digits.
pub fn is_account_id(a: &str) -> bool {
    a.len() == 12 && a.bytes().all(|b| b.is_ascii_digit())
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TagsDoc {
    #[serde(default)]
    pub copy_volume_tags: Option<bool>,
    #[serde(default)]
    pub copy_instance_tags: Option<bool>,
    #[serde(default)]
    pub extra: Option<BTreeMap<String, String>>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OrphansDoc {
    #[serde(default)]
    pub delete_after_days: Option<u32>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NotifyDoc {
    /// A webhook URL that carries no credential (no userinfo, no query string).
    #[serde(default)]
    pub webhook_url: Option<String>,
    /// A Secrets Manager secret holding `{"url": "...", "signing_secret": "..."}`: the webhook
    /// whose URL carries a credential. Only the ARN is in the document.
    #[serde(default)]
    pub webhook_secret_arn: Option<String>,
    /// An SNS topic every ticket is also published to.
    #[serde(default)]
    pub sns_topic_arn: Option<String>,
}

/// The policy document, stored in the `_policy` schedule of the policy's group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyDocument {
    pub ebssnap: u64,
    pub kind: String,
    pub policy: String,
    pub retention: RetentionDoc,
    #[serde(default)]
    pub tags: Option<TagsDoc>,
    #[serde(default)]
    pub orphans: Option<OrphansDoc>,
    #[serde(default)]
    pub crash_consistent: Option<bool>,
    #[serde(default)]
    pub notify: Option<NotifyDoc>,
    /// The sweep computes the account's coverage and raises `coverage.unprotected` for volumes
    /// no target selects (docs/design.md §12). Written only when true.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub report_unprotected: Option<bool>,
    /// Disaster-recovery copies in other Regions (docs/design.md §13). Written only when set.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub copies: Vec<CopyDoc>,
    /// Vault accounts the restore points are shared with. Written only when set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub share: Option<ShareDoc>,
    #[serde(default)]
    pub invocation: Option<Invocation>,
}

/// The target document, stored in the target's schedule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TargetDocument {
    pub ebssnap: u64,
    pub kind: String,
    pub policy: String,
    pub target: String,
    pub select: Select,
    #[serde(default)]
    pub exclude: Option<Exclude>,
    #[serde(default)]
    pub retention: Option<RetentionDoc>,
    /// An empty selection is expected (default false: it fails the run with `EmptySelection`).
    /// Written only when set, so documents of targets that never set it stay as they were.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allow_empty: Option<bool>,
    /// The target's overrides of its policy's copy rules, per copy Region (docs/design.md §13).
    /// Written only when set.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub copies: Vec<CopyRetentionDoc>,
    #[serde(default)]
    pub invocation: Option<Invocation>,
}

/// A target's override of one copy Region's rules: unset fields keep the copy block's.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CopyRetentionDoc {
    pub region: String,
    #[serde(default)]
    pub retention_days: Option<u32>,
    #[serde(default)]
    pub min_snapshots: Option<u32>,
    #[serde(default)]
    pub max_snapshots: Option<u32>,
}

impl CopyRetentionDoc {
    /// The rules of the copies in this Region for this target: these overrides on `copy`'s.
    pub fn rules(&self, copy: Rules) -> Rules {
        Rules {
            days: self.retention_days.unwrap_or(copy.days),
            min_snapshots: self.min_snapshots.unwrap_or(copy.min_snapshots),
            max_snapshots: self.max_snapshots.or(copy.max_snapshots),
            orphan_delete_after_days: None,
        }
    }
}

/// The restore-test document, stored in the policy group's `_restore_test` schedule
/// (docs/design.md §11): how many (target, volume) pairs a test run takes and how long one
/// restore may take.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RestoreTestDocument {
    pub ebssnap: u64,
    pub kind: String,
    pub policy: String,
    pub sample: u32,
    pub timeout_minutes: u32,
    #[serde(default)]
    pub invocation: Option<Invocation>,
}

/// Bounds of a restore test's settings.
pub const RESTORE_TEST_SAMPLE: std::ops::RangeInclusive<u32> = 1..=50;
pub const RESTORE_TEST_TIMEOUT_MINUTES: std::ops::RangeInclusive<u32> = 1..=720;
pub const DEFAULT_RESTORE_TEST_SAMPLE: u32 = 2;
pub const DEFAULT_RESTORE_TEST_TIMEOUT_MINUTES: u32 = 30;

impl RestoreTestDocument {
    pub fn validate(&self) -> Result<(), DocError> {
        let bad = |message: String| DocError::Invalid {
            kind: "restore_test",
            message,
        };
        if self.kind != "restore_test" {
            return Err(DocError::WrongKind {
                found: self.kind.clone(),
                expected: "restore_test",
            });
        }
        validate_policy_name(&self.policy).map_err(|e| bad(e.to_string()))?;
        if !RESTORE_TEST_SAMPLE.contains(&self.sample) {
            return Err(bad(format!(
                "sample must be between 1 and 50, got {}",
                self.sample
            )));
        }
        if !RESTORE_TEST_TIMEOUT_MINUTES.contains(&self.timeout_minutes) {
            return Err(bad(format!(
                "timeout_minutes must be between 1 and 720, got {}",
                self.timeout_minutes
            )));
        }
        Ok(())
    }
}

/// The most links a run's continuation chain may have: Lambda stops recursive loops after about
/// 16 invocations in one chain, so stay well below.
pub const MAX_LINKS_LIMIT: u32 = 15;

/// The marker a continuation event carries beside the document (docs/design.md §5): which link of the
/// run's chain it starts (the scheduled invocation is link 1), the run key of every link, and the
/// send rate each paced operation had reached, so the next link does not re-learn the account's
/// budget (an older marker has none: the link starts at the runner's default rate).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Continuation {
    pub link: u32,
    pub run_key: String,
    /// Calls per second by operation (e.g. `CreateSnapshot`).
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub rates: std::collections::BTreeMap<String, f64>,
    /// The volumes the run has left (not started, or failed and retried), when they fit the
    /// event: the next link reads only these instead of the whole inventory, and snapshots
    /// those its target still selects. Empty: the next link reads everything (an older marker,
    /// a list too large for the event, or a selection that failed in part).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub volumes: Vec<String>,
}

/// The most volumes a continuation marker may carry (10,000 volume ids fill about 240 KB of the
/// 256 KB an asynchronous invocation accepts).
pub const MAX_CARRIED_VOLUMES: usize = 11_000;

/// Whether `id` has the shape of an EBS volume id (`vol-` and 8 or 17 hex digits).
pub fn is_volume_id(id: &str) -> bool {
    id.strip_prefix("vol-")
        .is_some_and(|h| matches!(h.len(), 8 | 17) && h.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// Splits an event into its document and its continuation marker, if it has one.
pub fn split_event(
    mut v: serde_json::Value,
) -> Result<(serde_json::Value, Option<Continuation>), DocError> {
    let Some(c) = v.as_object_mut().and_then(|o| o.remove("continuation")) else {
        return Ok((v, None));
    };
    let bad = |message: String| DocError::Invalid {
        kind: "continuation",
        message,
    };
    let c: Continuation = serde_json::from_value(c).map_err(|e| bad(e.to_string()))?;
    if c.link < 2 || c.link > MAX_LINKS_LIMIT {
        return Err(bad(format!(
            "link must be between 2 and {MAX_LINKS_LIMIT}, got {}",
            c.link
        )));
    }
    super::tags::check_run_key(&c.run_key).map_err(bad)?;
    if let Some((op, r)) = c.rates.iter().find(|(_, r)| !(r.is_finite() && **r > 0.0)) {
        return Err(bad(format!(
            "rates.{op} must be a positive number, got {r}"
        )));
    }
    if c.volumes.len() > MAX_CARRIED_VOLUMES {
        return Err(bad(format!(
            "volumes may list at most {MAX_CARRIED_VOLUMES} volumes, got {}",
            c.volumes.len()
        )));
    }
    if let Some(v) = c.volumes.iter().find(|v| !is_volume_id(v)) {
        return Err(bad(format!("volumes: {v:?} is not an EBS volume id")));
    }
    Ok((v, Some(c)))
}

/// Either document, as a Lambda event may carry (sweep for a policy, run for a target).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Document {
    Policy(PolicyDocument),
    Target(TargetDocument),
    RestoreTest(RestoreTestDocument),
}

/// Effective retention rules for one (target, volume) pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Rules {
    pub days: u32,
    pub min_snapshots: u32,
    pub max_snapshots: Option<u32>,
    /// Orphans only: release the kept minimum once the newest snapshot is older than this.
    pub orphan_delete_after_days: Option<u32>,
}

/// Tag handling, resolved from the policy document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TagSettings {
    pub copy_volume_tags: bool,
    pub copy_instance_tags: bool,
    pub extra: BTreeMap<String, String>,
}

impl PolicyDocument {
    pub fn rules(&self) -> Rules {
        Rules {
            days: self.retention.days.unwrap_or(0),
            min_snapshots: self
                .retention
                .min_snapshots
                .unwrap_or(DEFAULT_MIN_SNAPSHOTS),
            max_snapshots: self.retention.max_snapshots,
            orphan_delete_after_days: self.orphans.as_ref().and_then(|o| o.delete_after_days),
        }
    }

    pub fn tag_settings(&self) -> TagSettings {
        let t = self.tags.clone().unwrap_or_default();
        TagSettings {
            copy_volume_tags: t.copy_volume_tags.unwrap_or(true),
            copy_instance_tags: t.copy_instance_tags.unwrap_or(false),
            extra: t.extra.unwrap_or_default(),
        }
    }

    pub fn crash_consistent(&self) -> bool {
        self.crash_consistent.unwrap_or(false)
    }

    pub fn report_unprotected(&self) -> bool {
        self.report_unprotected.unwrap_or(false)
    }

    pub fn webhook_url(&self) -> Option<&str> {
        self.notify.as_ref().and_then(|n| n.webhook_url.as_deref())
    }

    pub fn webhook_secret_arn(&self) -> Option<&str> {
        self.notify
            .as_ref()
            .and_then(|n| n.webhook_secret_arn.as_deref())
    }

    pub fn sns_topic_arn(&self) -> Option<&str> {
        self.notify
            .as_ref()
            .and_then(|n| n.sns_topic_arn.as_deref())
    }

    /// Whether any failure channel is configured (else tickets are only logged).
    pub fn has_channel(&self) -> bool {
        self.webhook_url().is_some()
            || self.webhook_secret_arn().is_some()
            || self.sns_topic_arn().is_some()
    }

    /// Checks what serde cannot: required values, ranges, names, reserved tag keys.
    pub fn validate(&self) -> Result<(), DocError> {
        let bad = |message: String| DocError::Invalid {
            kind: "policy",
            message,
        };
        validate_policy_name(&self.policy).map_err(bad)?;
        match self.retention.days {
            None => return Err(bad("retention.days is required".into())),
            Some(d) => check_days("retention.days", d).map_err(bad)?,
        }
        check_counts(&self.retention).map_err(bad)?;
        if let Some(d) = self.orphans.as_ref().and_then(|o| o.delete_after_days) {
            check_days("orphans.delete_after_days", d).map_err(bad)?;
        }
        if let Some(f) = limits::check_snapshot_tags("tags.extra", &self.tag_settings().extra)
            .into_iter()
            .next()
        {
            return Err(bad(format!("tags.extra: {}", f.message)));
        }
        if let Some(n) = &self.notify {
            check_notify(n).map_err(bad)?;
        }
        check_copies(&self.copies, self.share.as_ref()).map_err(bad)?;
        check_size(&PolicyDocument {
            invocation: Some(Invocation::placeholders()),
            ..self.clone()
        })
        .map_err(bad)?;
        Ok(())
    }
}

impl TargetDocument {
    /// The target's rules: its overrides on top of the policy's.
    pub fn rules(&self, policy: &Rules) -> Rules {
        let r = self.retention.clone().unwrap_or_default();
        Rules {
            days: r.days.unwrap_or(policy.days),
            min_snapshots: r.min_snapshots.unwrap_or(policy.min_snapshots),
            max_snapshots: r.max_snapshots.or(policy.max_snapshots),
            orphan_delete_after_days: policy.orphan_delete_after_days,
        }
    }

    pub fn exclude(&self) -> Exclude {
        self.exclude.clone().unwrap_or_default()
    }

    pub fn validate(&self) -> Result<(), DocError> {
        let bad = |message: String| DocError::Invalid {
            kind: "target",
            message,
        };
        validate_policy_name(&self.policy).map_err(bad)?;
        validate_target_name(&self.target).map_err(bad)?;
        self.select.validate().map_err(bad)?;
        if let Some(e) = &self.exclude {
            e.validate().map_err(bad)?;
        }
        if let Some(r) = &self.retention {
            if let Some(d) = r.days {
                check_days("retention.days", d).map_err(bad)?;
            }
            check_counts(r).map_err(bad)?;
        }
        check_copy_overrides(&self.copies).map_err(bad)?;
        check_size(&TargetDocument {
            invocation: Some(Invocation::placeholders()),
            ..self.clone()
        })
        .map_err(bad)?;
        Ok(())
    }

    pub fn allow_empty(&self) -> bool {
        self.allow_empty.unwrap_or(false)
    }
}

/// The document as the provider stores it (with the Scheduler placeholders) must fit
/// Scheduler's `Input` limit; the runner refuses a larger one too, whatever its source.
fn check_size<T: Serialize>(doc: &T) -> Result<(), String> {
    to_input(doc).map(|_| ())
}

fn check_days(field: &'static str, d: u32) -> Result<(), String> {
    match limits::check_range(field, i64::from(d), &limits::RETENTION_DAYS) {
        Some(f) => Err(f.message),
        None => Ok(()),
    }
}

fn check_counts(r: &RetentionDoc) -> Result<(), String> {
    let findings = limits::check_counts(
        r.min_snapshots.map(i64::from),
        r.max_snapshots.map(i64::from),
    );
    match findings.into_iter().next() {
        Some(f) => Err(format!("retention.{}", f.message)),
        None => Ok(()),
    }
}

/// The failure channels: one webhook source at most. A plain URL with a credential is refused
/// at plan time only: a runner must keep running the policies an older provider wrote.
fn check_notify(n: &NotifyDoc) -> Result<(), String> {
    if n.webhook_url.is_some() && n.webhook_secret_arn.is_some() {
        return Err("notify.webhook_url and notify.webhook_secret_arn are exclusive".into());
    }
    Ok(())
}

/// A plain webhook URL is stored in the schedule (readable with `scheduler:GetSchedule`), so it
/// must not carry a credential: no userinfo, no query string, and no path of the shapes that
/// chat and ticket services put their tokens in (Slack's `/services/…`, Discord's and Teams'
/// webhook paths, a known token prefix, or a long random-looking path segment such as
/// `/webhook/<token>`).
pub fn webhook_url_without_credential(u: &str) -> Result<(), String> {
    let parsed = url::Url::parse(u).map_err(|_| "the webhook URL is not a URL".to_string())?;
    let where_ = if !parsed.username().is_empty() || parsed.password().is_some() {
        Some("userinfo")
    } else if parsed.query().is_some() {
        Some("a query string")
    } else if credential_path(parsed.host_str().unwrap_or_default(), parsed.path()) {
        Some("a path that looks like a token")
    } else {
        None
    };
    match where_ {
        Some(what) => Err(format!(
            "the webhook URL carries a credential ({what}); store the URL in a Secrets Manager \
             secret ({{\"url\": \"...\", \"signing_secret\": \"...\"}}) and set \
             failure_webhook_secret_arn instead"
        )),
        None => Ok(()),
    }
}

/// Token prefixes of well-known services (Slack, GitHub, GitLab, Stripe, AWS keys).
const TOKEN_PREFIXES: [&str; 8] = [
    "xoxb-",
    "xoxp-",
    "xapp-",
    "ghp_",
    "github_pat_",
    "glpat-",
    "sk_live_",
    "AKIA",
];

/// Whether a URL's path has the shape of a webhook that embeds its secret.
fn credential_path(host: &str, path: &str) -> bool {
    let host = host.to_ascii_lowercase();
    let known = (host == "hooks.slack.com"
        && (path.starts_with("/services/") || path.starts_with("/workflows/")))
        || ((host == "discord.com" || host == "discordapp.com")
            && path.starts_with("/api/webhooks/"))
        || host.ends_with(".webhook.office.com")
        || (host == "outlook.office.com" && path.starts_with("/webhook"))
        || host == "hooks.zapier.com"
        || (host == "chat.googleapis.com" && path.contains("/messages"));
    known
        || path
            .split('/')
            .any(|seg| TOKEN_PREFIXES.iter().any(|p| seg.starts_with(p)) || random_looking(seg))
}

/// A path segment of 20 or more token characters mixing letters and digits: what a generated
/// token looks like, and what a readable path (`/ebssnap/tickets`, `/v1/events`) does not.
fn random_looking(seg: &str) -> bool {
    seg.len() >= 20
        && seg
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        && seg.bytes().any(|b| b.is_ascii_digit())
        && seg.bytes().any(|b| b.is_ascii_alphabetic())
}

fn valid_name_chars(name: &str) -> bool {
    name.chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}

/// Policy names: 1–56 characters of `[0-9A-Za-z_.-]` (the schedule group adds `ebssnap-`).
pub fn validate_policy_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > 56 || !valid_name_chars(name) {
        return Err(format!(
            "policy name {name:?} must be 1 to 56 characters of letters, digits, '_', '.' and '-'"
        ));
    }
    Ok(())
}

/// Target names: 1–64 characters of `[0-9A-Za-z_.-]`, not starting with `_` (reserved).
pub fn validate_target_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > 64 || !valid_name_chars(name) {
        return Err(format!(
            "target name {name:?} must be 1 to 64 characters of letters, digits, '_', '.' and '-'"
        ));
    }
    if name.starts_with('_') {
        return Err(format!(
            "target name {name:?} must not start with '_' (reserved for ebssnap's own schedules)"
        ));
    }
    Ok(())
}

/// Reads the version and kind before the strict parse, so a newer document gets the
/// "upgrade the runner" error rather than a confusing unknown-field error.
fn header(v: &serde_json::Value) -> Result<String, DocError> {
    let version = match v.get("ebssnap") {
        Some(serde_json::Value::Number(n)) => n.as_u64().ok_or(DocError::MissingVersion)?,
        _ => return Err(DocError::MissingVersion),
    };
    if version > FORMAT_VERSION {
        return Err(DocError::NewerVersion { found: version });
    }
    if version != FORMAT_VERSION {
        return Err(DocError::MissingVersion);
    }
    match v.get("kind").and_then(|k| k.as_str()) {
        Some(k) => Ok(k.to_string()),
        None => Err(DocError::Invalid {
            kind: "schedule input",
            message: "missing field `kind` (\"policy\", \"target\" or \"restore_test\")".into(),
        }),
    }
}

fn strict<T: serde::de::DeserializeOwned>(
    v: serde_json::Value,
    kind: &'static str,
) -> Result<T, DocError> {
    serde_json::from_value(v).map_err(|e| DocError::Invalid {
        kind,
        message: e.to_string(),
    })
}

fn to_value(text: &str) -> Result<serde_json::Value, DocError> {
    serde_json::from_str(text).map_err(|e| DocError::Json(e.to_string()))
}

/// Parses either document (a Lambda event or a schedule's input).
pub fn parse_document(text: &str) -> Result<Document, DocError> {
    parse_value(to_value(text)?)
}

pub fn parse_value(v: serde_json::Value) -> Result<Document, DocError> {
    match header(&v)?.as_str() {
        "policy" => {
            let d: PolicyDocument = strict(v, "policy")?;
            d.validate()?;
            Ok(Document::Policy(d))
        }
        "target" => {
            let d: TargetDocument = strict(v, "target")?;
            d.validate()?;
            Ok(Document::Target(d))
        }
        "restore_test" => {
            let d: RestoreTestDocument = strict(v, "restore_test")?;
            d.validate()?;
            Ok(Document::RestoreTest(d))
        }
        other => Err(DocError::WrongKind {
            found: other.to_string(),
            expected: "policy, target or restore_test",
        }),
    }
}

fn kind_of(d: &Document) -> &'static str {
    match d {
        Document::Policy(_) => "policy",
        Document::Target(_) => "target",
        Document::RestoreTest(_) => "restore_test",
    }
}

pub fn parse_policy(text: &str) -> Result<PolicyDocument, DocError> {
    match parse_document(text)? {
        Document::Policy(p) => Ok(p),
        other => Err(DocError::WrongKind {
            found: kind_of(&other).into(),
            expected: "policy",
        }),
    }
}

pub fn parse_target(text: &str) -> Result<TargetDocument, DocError> {
    match parse_document(text)? {
        Document::Target(t) => Ok(t),
        other => Err(DocError::WrongKind {
            found: kind_of(&other).into(),
            expected: "target",
        }),
    }
}

pub fn parse_restore_test(text: &str) -> Result<RestoreTestDocument, DocError> {
    match parse_document(text)? {
        Document::RestoreTest(t) => Ok(t),
        other => Err(DocError::WrongKind {
            found: kind_of(&other).into(),
            expected: "restore_test",
        }),
    }
}

/// Serializes a document the way the provider writes it (compact), checking the input limit.
pub fn to_input<T: Serialize>(doc: &T) -> Result<String, String> {
    let text = serde_json::to_string(doc).map_err(|e| e.to_string())?;
    let chars = text.chars().count();
    if chars > MAX_INPUT_CHARS {
        return Err(format!(
            "the schedule input document is {chars} characters; EventBridge Scheduler accepts at most {MAX_INPUT_CHARS}"
        ));
    }
    Ok(text)
}

#[cfg(test)]
mod tests {
    #[test]
    fn plain_webhook_urls_with_a_credential_shape_are_refused() {
        for bad in [
            "https://user:pw@tickets.example.com/hook",
            "https://tickets.example.com/hook?token=abc",
            "https://hooks.slack.com/services/T0000/B0000/XXXXXXXX",
            "https://discord.com/api/webhooks/123/abc",
            "https://acme.webhook.office.com/webhookb2/x",
            "https://hooks.zapier.com/hooks/catch/1/abc/",
            "https://tickets.example.com/webhook/9f8e7d6c5b4a39281706f5e4",
            "https://tickets.example.com/in/xoxb-short",
            "https://tickets.example.com/in/ghp_abc",
        ] {
            let e = webhook_url_without_credential(bad).unwrap_err();
            assert!(e.contains("failure_webhook_secret_arn"), "{bad}: {e}");
            assert!(!e.contains("XXXXXXXX") && !e.contains("9f8e7d6c"), "{e}");
        }
        for good in [
            "https://tickets.example.com/ebssnap/failures",
            "https://events.example.com/v1/integrations/ebs-snapshot-failures",
            "http://127.0.0.1:8080/hook",
        ] {
            assert_eq!(webhook_url_without_credential(good), Ok(()), "{good}");
        }
    }

    use super::*;

    fn policy_json() -> &'static str {
        r#"{"ebssnap": 1, "kind": "policy", "policy": "std", "retention": {"days": 14}}"#
    }

    #[test]
    fn omitted_and_null_fields_take_defaults() {
        let p = parse_policy(policy_json()).unwrap();
        assert_eq!(p.rules().min_snapshots, 1);
        assert!(p.tag_settings().copy_volume_tags);
        assert!(!p.tag_settings().copy_instance_tags);
        let with_nulls = r#"{"ebssnap": 1, "kind": "policy", "policy": "std",
            "retention": {"days": 14, "min_snapshots": null}, "tags": null, "crash_consistent": null}"#;
        assert_eq!(parse_policy(with_nulls).unwrap().rules(), p.rules());
    }

    #[test]
    fn unknown_field_is_rejected_with_its_name() {
        let text = r#"{"ebssnap": 1, "kind": "policy", "policy": "std", "retention": {"days": 14, "dayz": 3}}"#;
        let err = parse_policy(text).unwrap_err().to_string();
        assert!(err.contains("dayz"), "{err}");
    }

    #[test]
    fn newer_version_asks_for_an_upgrade() {
        let text = r#"{"ebssnap": 2, "kind": "policy", "policy": "std", "retention": {"days": 14}, "new": 1}"#;
        assert_eq!(
            parse_policy(text).unwrap_err(),
            DocError::NewerVersion { found: 2 }
        );
        assert!(
            DocError::NewerVersion { found: 2 }
                .to_string()
                .contains("upgrade the runner")
        );
    }

    #[test]
    fn placeholders_count_as_absent() {
        let inv = Invocation::placeholders();
        assert_eq!(inv.scheduled_time(), None);
        let real = Invocation {
            scheduled_time: Some("2026-11-26T05:00:00Z".into()),
            ..inv
        };
        assert_eq!(real.scheduled_time(), Some("2026-11-26T05:00:00Z"));
    }

    #[test]
    fn target_overrides_merge_over_policy_rules() {
        let p = parse_policy(policy_json()).unwrap();
        let t = parse_target(
            r#"{"ebssnap":1,"kind":"target","policy":"std","target":"web",
                "select":{"volume_ids":["vol-1"]},"retention":{"days":30,"min_snapshots":null}}"#,
        )
        .unwrap();
        let r = t.rules(&p.rules());
        assert_eq!((r.days, r.min_snapshots, r.max_snapshots), (30, 1, None));
    }

    #[test]
    fn names_are_checked() {
        assert!(validate_target_name("_policy").is_err());
        assert!(validate_target_name(&"a".repeat(65)).is_err());
        assert!(validate_policy_name(&"a".repeat(57)).is_err());
        assert!(validate_policy_name("std.prod-1_a").is_ok());
        assert!(validate_policy_name("a b").is_err());
    }

    #[test]
    fn min_above_max_and_missing_days_are_refused() {
        let t = r#"{"ebssnap":1,"kind":"policy","policy":"p","retention":{"days":3,"min_snapshots":5,"max_snapshots":2}}"#;
        assert!(
            parse_policy(t)
                .unwrap_err()
                .to_string()
                .contains("must not exceed")
        );
        let t = r#"{"ebssnap":1,"kind":"policy","policy":"p","retention":{}}"#;
        assert!(
            parse_policy(t)
                .unwrap_err()
                .to_string()
                .contains("retention.days is required")
        );
    }

    #[test]
    fn limits_are_enforced_by_the_runner_too() {
        let long = format!(
            r#"{{"ebssnap":1,"kind":"target","policy":"p","target":"t","select":{{"volume_ids":[{}]}}}}"#,
            vec!["\"vol-0123456789abcdef0\""; 400].join(",")
        );
        let err = parse_target(&long).unwrap_err().to_string();
        assert!(err.contains("at most 8192"), "{err}");
        let value = "v".repeat(257);
        let t = format!(
            r#"{{"ebssnap":1,"kind":"policy","policy":"p","retention":{{"days":3}},"tags":{{"extra":{{"k":"{value}"}}}}}}"#
        );
        assert!(
            parse_policy(&t)
                .unwrap_err()
                .to_string()
                .contains("longer than 256 characters")
        );
        let key = "k".repeat(129);
        let t = format!(
            r#"{{"ebssnap":1,"kind":"policy","policy":"p","retention":{{"days":3}},"tags":{{"extra":{{"{key}":"v"}}}}}}"#
        );
        assert!(
            parse_policy(&t)
                .unwrap_err()
                .to_string()
                .contains("1 to 128")
        );
    }

    #[test]
    fn a_continuation_marker_sits_beside_the_document() {
        let v: serde_json::Value = serde_json::from_str(policy_json()).unwrap();
        let (doc, c) = split_event(v.clone()).unwrap();
        assert_eq!((doc, c), (v.clone(), None));
        let mut with = v.clone();
        with["continuation"] = serde_json::json!({"link": 3, "run_key": "2026-11-26T05:00:00Z"});
        let (doc, c) = split_event(with.clone()).unwrap();
        assert_eq!(doc, v);
        assert_eq!(c.unwrap().link, 3);
        with["continuation"]["link"] = serde_json::json!(16);
        assert!(
            split_event(with.clone())
                .unwrap_err()
                .to_string()
                .contains("between 2 and 15")
        );
        with["continuation"] = serde_json::json!({"link": 2, "run_key": "k", "extra": 1});
        assert!(split_event(with.clone()).is_err());
        // The previous link's send rates ride along; a marker without them is still read.
        with["continuation"] = serde_json::json!({"link": 2, "run_key": "2026-11-26T05:00:00Z",
            "rates": {"CreateSnapshot": 31.5}});
        let (_, c) = split_event(with.clone()).unwrap();
        assert_eq!(c.unwrap().rates["CreateSnapshot"], 31.5);
        with["continuation"]["rates"]["CreateSnapshot"] = serde_json::json!(0);
        assert!(
            split_event(with)
                .unwrap_err()
                .to_string()
                .contains("rates.CreateSnapshot must be a positive number")
        );
        // The run's remaining volumes ride along as volume ids, nothing else.
        let mut with = v.clone();
        with["continuation"] = serde_json::json!({"link": 2, "run_key": "2026-11-26T05:00:00Z",
            "volumes": ["vol-0123456789abcdef0", "vol-1234abcd"]});
        let (_, c) = split_event(with.clone()).unwrap();
        assert_eq!(c.unwrap().volumes.len(), 2);
        for bad in [
            "i-0123456789abcdef0",
            "vol-xyz",
            "vol-0123456789abcdef0 ",
            "",
        ] {
            with["continuation"]["volumes"] = serde_json::json!([bad]);
            assert!(
                split_event(with.clone())
                    .unwrap_err()
                    .to_string()
                    .contains("is not an EBS volume id"),
                "{bad:?}"
            );
        }
        let many: Vec<String> = (0..=MAX_CARRIED_VOLUMES)
            .map(|i| format!("vol-{i:017x}"))
            .collect();
        with["continuation"]["volumes"] = serde_json::json!(many);
        assert!(
            split_event(with)
                .unwrap_err()
                .to_string()
                .contains("at most")
        );
    }

    #[test]
    fn wrong_kind_and_missing_version() {
        assert!(matches!(
            parse_target(policy_json()).unwrap_err(),
            DocError::WrongKind { .. }
        ));
        assert_eq!(
            parse_document(r#"{"kind":"policy"}"#).unwrap_err(),
            DocError::MissingVersion
        );
        assert!(matches!(
            parse_document("{nope").unwrap_err(),
            DocError::Json(_)
        ));
    }
}
