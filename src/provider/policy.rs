//! `ebssnap_policy`: a schedule group `ebssnap-<name>` and its `_policy` schedule, whose input is
//! the policy document (docs/design.md §2). Read recovers every attribute from AWS, so import works.

use std::collections::BTreeMap;

use super::plugin::Value;
use super::plugin::resource::{Identity, Resource};
use super::plugin::schema::Schema;
use super::plugin::schema::{IdentityAttribute, IdentitySchema};
use super::plugin::{AttributePath, Diagnostics};
use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use super::schema::{
    Computed, Optional, OptionalComputed, Required, attr, block, boolean, number, sensitive,
    string, string_list, string_map,
};
use super::values::{
    K, StrList, StrMap, V, get, k, k_list, k_map, list_value, map_value, opt, or_default,
};
use super::{Configured, Shared, aws_diag, validate};
use crate::aws::scheduler::{self, POLICY_SCHEDULE, ScheduleSpec};
use crate::core::doc::{
    self, Invocation, NotifyDoc, OrphansDoc, PolicyDocument, RetentionDoc, TagsDoc,
};
use crate::core::limits;

pub const DEFAULT_SWEEP: &str = "rate(1 day)";

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
// Attributes missing from older state (added in a later version) read as null.
#[serde(default)]
pub struct PolicyState {
    pub id: V<String>,
    pub arn: V<String>,
    pub name: V<String>,
    pub description: V<String>,
    pub retention_days: V<i64>,
    pub min_snapshots: V<i64>,
    pub max_snapshots: V<i64>,
    pub copy_volume_tags: V<bool>,
    pub copy_instance_tags: V<bool>,
    pub snapshot_tags: StrMap,
    pub crash_consistent: V<bool>,
    pub report_unprotected: V<bool>,
    pub orphan_retention_days: V<i64>,
    pub failure_webhook_url: V<String>,
    pub failure_webhook_secret_arn: V<String>,
    pub failure_sns_topic_arn: V<String>,
    pub sweep_schedule: V<String>,
    pub sweep_enabled: V<bool>,
    pub tags: StrMap,
    pub tags_all: StrMap,
    pub runner_arn: V<String>,
    pub scheduler_role_arn: V<String>,
    #[serde(with = "crate::provider::plugin::value::as_list")]
    pub restore_test: V<RestoreTestState>,
    /// `copy` blocks: never null (a list of blocks), also in state written before they existed.
    #[serde(default = "no_copies")]
    pub copy: V<Vec<CopyState>>,
    #[serde(with = "crate::provider::plugin::value::as_list")]
    pub share: V<ShareState>,
}

fn no_copies() -> V<Vec<CopyState>> {
    Value::Value(Vec::new())
}

/// A `copy` block: disaster-recovery copies of the restore points in another Region.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct CopyState {
    pub region: V<String>,
    pub retention_days: V<i64>,
    pub min_snapshots: V<i64>,
    pub max_snapshots: V<i64>,
    pub kms_key_id: V<String>,
    pub copy_tags: V<bool>,
}

impl CopyState {
    fn with_defaults(self) -> Self {
        CopyState {
            copy_tags: or_default(self.copy_tags, true),
            ..self
        }
    }

    /// The document's copy, when every value is known.
    fn to_doc(&self) -> Option<doc::CopyDoc> {
        let n = |v: &V<i64>| match v {
            Value::Null => Some(None),
            v => u32_of(v).map(Some),
        };
        Some(doc::CopyDoc {
            region: get(&self.region)?,
            retention_days: n(&self.retention_days)?,
            min_snapshots: n(&self.min_snapshots)?,
            max_snapshots: n(&self.max_snapshots)?,
            kms_key_id: match &self.kms_key_id {
                Value::Null => None,
                v => Some(get(v)?),
            },
            copy_tags: Some(get(&self.copy_tags).unwrap_or(true)),
        })
    }

    fn of_doc(d: &doc::CopyDoc) -> CopyState {
        CopyState {
            region: Value::Value(d.region.clone()),
            retention_days: opt(d.retention_days.map(i64::from)),
            min_snapshots: opt(d.min_snapshots.map(i64::from)),
            max_snapshots: opt(d.max_snapshots.map(i64::from)),
            kms_key_id: opt(d.kms_key_id.clone()),
            copy_tags: Value::Value(d.copy_tags()),
        }
    }
}

/// The `share` block: vault accounts granted `createVolumePermission` on the restore points.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ShareState {
    pub account_ids: StrList,
}

fn copy_block() -> super::plugin::schema::Block {
    block(
        "A disaster-recovery copy of the policy's restore points in another Region (up to 5 blocks, each Region once, never the provider's own). After each target run the runner copies every completed restore point not yet copied there (at most 20 pending per Region, the rest in later runs) and prunes the copies by this block's own rules; a copy is never deleted because its source is gone. Copies carry the source's ebssnap tags plus `ebssnap:source-snapshot`, `ebssnap:source-region`, `ebssnap:source-volume` and `ebssnap:source-time`. The runner's role needs `data.ebssnap_iam_policy { copy_regions = [...] }`.",
        vec![
            (
                "region",
                attr(string(), Required, "The copy Region, e.g. `us-west-2`."),
            ),
            (
                "retention_days",
                attr(
                    number(),
                    Optional,
                    "Days a copy is kept (by the age of the restore point it copies). Default: the policy's `retention_days`.",
                ),
            ),
            (
                "min_snapshots",
                attr(
                    number(),
                    Optional,
                    "Copies of each volume always kept, whatever their age. Default: the policy's.",
                ),
            ),
            (
                "max_snapshots",
                attr(
                    number(),
                    Optional,
                    "At most this many copies of each volume. Default: the policy's.",
                ),
            ),
            (
                "kms_key_id",
                attr(
                    string(),
                    Optional,
                    "ARN of a KMS key in the copy Region for copies of encrypted restore points (default: that Region's default EBS key).",
                ),
            ),
            (
                "copy_tags",
                attr(
                    boolean(),
                    OptionalComputed,
                    "Copy the source's own tags too (never `aws:` keys). Default `true`.",
                ),
            ),
        ],
        vec![],
    )
}

fn share_block() -> super::plugin::schema::Block {
    block(
        "Share the policy's restore points with vault accounts: after each target run, the runner adds `createVolumePermission` for these accounts to the run's restore points (in the policy's Region; copies are not shared). A restore point encrypted under an AWS-managed key (the default `aws/ebs` key) cannot be shared: it raises a `share.failed` ticket with code `ShareDefaultKey`. The runner's role needs `data.ebssnap_iam_policy { share_account_ids = [...] }`; the vault account also needs use of the customer-managed key.",
        vec![(
            "account_ids",
            attr(string_list(), Required, "12-digit AWS account ids."),
        )],
        vec![],
    )
}

/// The `restore_test` block: the policy's restore tests and their schedule `_restore_test`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct RestoreTestState {
    pub schedule: V<String>,
    pub timezone: V<String>,
    pub sample: V<i64>,
    pub timeout_minutes: V<i64>,
}

impl RestoreTestState {
    fn with_defaults(self) -> Self {
        RestoreTestState {
            schedule: self.schedule,
            timezone: or_default(self.timezone, "UTC".to_string()),
            sample: or_default(self.sample, i64::from(doc::DEFAULT_RESTORE_TEST_SAMPLE)),
            timeout_minutes: or_default(
                self.timeout_minutes,
                i64::from(doc::DEFAULT_RESTORE_TEST_TIMEOUT_MINUTES),
            ),
        }
    }

    fn validate(&self, diags: &mut Diagnostics) {
        let at = |name: &'static str| p("restore_test").index(0).attribute(name);
        if let Some(s) = get(&self.schedule) {
            validate::schedule_expression(diags, at("schedule"), &s);
        }
        if let Some(z) = get(&self.timezone) {
            validate::timezone(diags, at("timezone"), &z);
        }
        let wide = |r: &std::ops::RangeInclusive<u32>| i64::from(*r.start())..=i64::from(*r.end());
        if let Some(n) = get(&self.sample) {
            validate::range(
                diags,
                at("sample"),
                "sample",
                n,
                &wide(&doc::RESTORE_TEST_SAMPLE),
            );
        }
        if let Some(n) = get(&self.timeout_minutes) {
            validate::range(
                diags,
                at("timeout_minutes"),
                "timeout_minutes",
                n,
                &wide(&doc::RESTORE_TEST_TIMEOUT_MINUTES),
            );
        }
    }
}

fn restore_test_block() -> super::plugin::schema::Block {
    block(
        "Restore tests on a schedule (docs/guides/restore.md): each run restores the newest completed restore point of `sample` (target, volume) pairs, those tested longest ago first, into throwaway volumes, times them, deletes them and tags each tested snapshot `ebssnap:restore-tested` or `ebssnap:restore-failed`; a failure raises `restore.failed` on the policy's failure channels, a later pass `restore.recovered`. It becomes the schedule `_restore_test` of the policy's group. The runner's role needs the restore statements of `data.ebssnap_iam_policy`.",
        vec![
            (
                "schedule",
                attr(
                    string(),
                    Required,
                    "When tests run: `cron(...)`, `rate(...)` or `at(...)`, e.g. `cron(0 4 ? * SUN *)` (Sundays 04:00).",
                ),
            ),
            (
                "timezone",
                attr(
                    string(),
                    OptionalComputed,
                    "IANA time zone of the schedule. Default `UTC`.",
                ),
            ),
            (
                "sample",
                attr(
                    number(),
                    OptionalComputed,
                    "Pairs tested per run, 1–50. Default 2.",
                ),
            ),
            (
                "timeout_minutes",
                attr(
                    number(),
                    OptionalComputed,
                    "Minutes one restored volume may take to become available before its test fails, 1–720. Default 30.",
                ),
            ),
        ],
        vec![],
    )
}

/// The restore-test document of a (fully known) state; `None` when there is no block.
pub fn to_restore_test_doc(s: &PolicyState) -> Option<doc::RestoreTestDocument> {
    let Value::Value(t) = &s.restore_test else {
        return None;
    };
    Some(doc::RestoreTestDocument {
        ebssnap: doc::FORMAT_VERSION,
        kind: "restore_test".into(),
        policy: get(&s.name)?,
        sample: u32::try_from(get(&t.sample)?).ok()?,
        timeout_minutes: u32::try_from(get(&t.timeout_minutes)?).ok()?,
        invocation: Some(Invocation::placeholders()),
    })
}

pub fn policy_schema() -> Schema {
    Schema {
        version: 1,
        block: block(
            "A snapshot policy: how long snapshots are kept (by age **and** a minimum count per volume), which tags they carry, and where failure tickets go. It becomes the EventBridge Scheduler schedule group `ebssnap-<name>` and its schedule `_policy`, which stores the policy document and fires the daily sweep. Destroying a policy deletes the group and its schedules, never a snapshot.",
            vec![
                ("id", attr(string(), Computed, "The policy name.")),
                (
                    "runner_arn",
                    attr(string(), Computed, super::RUNNER_ARN_DOC),
                ),
                (
                    "scheduler_role_arn",
                    attr(string(), Computed, super::ROLE_ARN_DOC),
                ),
                (
                    "arn",
                    attr(string(), Computed, "ARN of the schedule group."),
                ),
                (
                    "name",
                    attr(
                        string(),
                        Required,
                        "Policy name: 1-56 characters of letters, digits, `_`, `.` and `-`. Changing it replaces the policy.",
                    ),
                ),
                (
                    "description",
                    attr(
                        string(),
                        Optional,
                        "Description, stored on the `_policy` schedule (at most 512 characters).",
                    ),
                ),
                (
                    "retention_days",
                    attr(
                        number(),
                        Required,
                        &format!(
                            "Completed snapshots older than this many days are deleted, beyond the minimum ({}-{}).",
                            limits::RETENTION_DAYS.start(),
                            limits::RETENTION_DAYS.end()
                        ),
                    ),
                ),
                (
                    "min_snapshots",
                    attr(
                        number(),
                        OptionalComputed,
                        "The newest this-many completed snapshots of each volume are always kept, whatever their age. Default `1`.",
                    ),
                ),
                (
                    "max_snapshots",
                    attr(
                        number(),
                        Optional,
                        "At most this many completed snapshots per volume are kept (not fewer than `min_snapshots`).",
                    ),
                ),
                (
                    "copy_volume_tags",
                    attr(
                        boolean(),
                        OptionalComputed,
                        "Copy each volume's tags to its snapshots (keys starting with `aws:` are skipped). Default `true`.",
                    ),
                ),
                (
                    "copy_instance_tags",
                    attr(
                        boolean(),
                        OptionalComputed,
                        "Also copy the instance's tags (volume tags win). Default `false`.",
                    ),
                ),
                (
                    "snapshot_tags",
                    attr(
                        string_map(),
                        Optional,
                        "Extra tags on every snapshot; they win over copied tags (at most 46; keys must not start with `aws:` or `ebssnap:`).",
                    ),
                ),
                (
                    "crash_consistent",
                    attr(
                        boolean(),
                        OptionalComputed,
                        "Snapshot all volumes of an instance as one crash-consistent set (`CreateSnapshots`). Default `false`.",
                    ),
                ),
                (
                    "report_unprotected",
                    attr(
                        boolean(),
                        OptionalComputed,
                        "The policy's sweep computes the coverage of the whole account and Region (every ebssnap policy's targets, docs/guides/coverage.md) and raises `coverage.unprotected` (severity `warning`, one failure per volume that no enabled target selects) on the policy's failure channels, and `coverage.recovered` once such a volume gets its first restore point; its metrics line adds `UnprotectedVolumes`, `StaleVolumes` and `OldestRestorePointAgeSeconds`. Needs the coverage statements of `data.ebssnap_iam_policy` (`report_unprotected = true` there). Default `false`.",
                    ),
                ),
                (
                    "orphan_retention_days",
                    attr(
                        number(),
                        Optional,
                        "For snapshots whose volume no longer exists: once the newest is older than this many days, the minimum is no longer kept.",
                    ),
                ),
                (
                    "failure_webhook_url",
                    sensitive(attr(
                        string(),
                        Optional,
                        "HTTPS URL that receives a failure ticket (JSON) when a snapshot fails, for URLs that carry **no credential** (it is stored in the schedule, readable with `scheduler:GetSchedule`): plan refuses userinfo or a query string — use `failure_webhook_secret_arn` for those. Plain http is accepted for loopback addresses only. At most one of the two.",
                    )),
                ),
                (
                    "failure_webhook_secret_arn",
                    attr(
                        string(),
                        Optional,
                        "ARN of a Secrets Manager secret whose value is `{\"url\": \"https://...\", \"signing_secret\": \"...\"}` (`signing_secret` optional; else the runner's `EBSSNAP_WEBHOOK_SECRET` signs): the webhook for URLs that carry a token. Only the ARN is stored; the runner reads the secret when a ticket is due and never logs or reports its values. Grant the runner access with `data.ebssnap_iam_policy`'s `webhook_secret_arns`.",
                    ),
                ),
                (
                    "failure_sns_topic_arn",
                    attr(
                        string(),
                        Optional,
                        "ARN of an SNS topic every ticket is also published to: the ticket JSON as the message, `event`, `severity`, `policy` and `target` as message attributes (for subscription filter policies); FIFO topics get the group and deduplication ids from `dedup_key`. May be combined with a webhook.",
                    ),
                ),
                (
                    "sweep_schedule",
                    attr(
                        string(),
                        OptionalComputed,
                        "When the sweep runs (prunes every target's snapshots, removed targets' and orphans'): a `cron()`, `rate()` or `at()` expression, in UTC. Default `rate(1 day)`.",
                    ),
                ),
                (
                    "sweep_enabled",
                    attr(
                        boolean(),
                        OptionalComputed,
                        "Whether the sweep schedule is enabled; when `false` the `_policy` schedule only stores the document. Default `true`.",
                    ),
                ),
                (
                    "tags",
                    attr(string_map(), Optional, "Tags on the schedule group."),
                ),
                (
                    "tags_all",
                    attr(
                        string_map(),
                        Computed,
                        "Tags on the schedule group, including the provider's `default_tags`.",
                    ),
                ),
            ],
            vec![
                (
                    "restore_test",
                    super::plugin::schema::NestedBlock::Optional(restore_test_block()),
                ),
                (
                    "copy",
                    super::plugin::schema::NestedBlock::List(copy_block()),
                ),
                (
                    "share",
                    super::plugin::schema::NestedBlock::Optional(share_block()),
                ),
            ],
        ),
    }
}

#[derive(Debug, Clone, Default)]
pub struct PolicyResource {
    pub shared: Shared,
}

fn p(name: &'static str) -> AttributePath {
    AttributePath::new(name)
}

/// Plan-time checks of one configuration (unknown values are skipped).
pub fn validate_config(c: &PolicyState, diags: &mut Diagnostics) {
    if let Some(n) = get(&c.name) {
        validate::policy_name(diags, p("name"), &n);
    }
    if let Some(d) = get(&c.description) {
        validate::description(diags, p("description"), &d);
    }
    if let Some(d) = get(&c.retention_days) {
        validate::range(
            diags,
            p("retention_days"),
            "retention_days",
            d,
            &limits::RETENTION_DAYS,
        );
    }
    if let Some(d) = get(&c.orphan_retention_days) {
        validate::range(
            diags,
            p("orphan_retention_days"),
            "orphan_retention_days",
            d,
            &limits::RETENTION_DAYS,
        );
    }
    validate::counts(diags, p, get(&c.min_snapshots), get(&c.max_snapshots));
    if let Some(t) = k_map(&c.snapshot_tags).known() {
        for f in limits::check_snapshot_tags("snapshot_tags", &t) {
            validate::finding(diags, p("snapshot_tags"), f);
        }
    }
    if let Some(u) = get(&c.failure_webhook_url) {
        validate::webhook_url(diags, p("failure_webhook_url"), &u);
        if let Err(e) = doc::webhook_url_without_credential(&u) {
            diags.error(
                "Credential in failure_webhook_url",
                format!("{e}."),
                p("failure_webhook_url"),
            );
        }
    }
    if let Some(a) = get(&c.failure_webhook_secret_arn) {
        validate::arn(
            diags,
            p("failure_webhook_secret_arn"),
            &a,
            Some("secretsmanager"),
        );
    }
    if let Some(a) = get(&c.failure_sns_topic_arn) {
        validate::arn(diags, p("failure_sns_topic_arn"), &a, Some("sns"));
    }
    if !matches!(c.failure_webhook_url, Value::Null)
        && !matches!(c.failure_webhook_secret_arn, Value::Null)
    {
        diags.error(
            "Two webhooks",
            "Set failure_webhook_url or failure_webhook_secret_arn, not both.",
            p("failure_webhook_secret_arn"),
        );
    }
    if let Some(s) = get(&c.sweep_schedule) {
        validate::schedule_expression(diags, p("sweep_schedule"), &s);
    }
    if let Some(t) = k_map(&c.tags).known() {
        validate::tags(diags, p("tags"), &t, &[limits::AWS_PREFIX]);
    }
    if let Value::Value(t) = &c.restore_test {
        t.validate(diags);
    }
    validate_copies(c, None, diags);
}

/// The copies and the share, when known: the document's rules (at most 5 Regions, each once, a
/// key in its copy's Region, 12-digit accounts), and never the provider's own Region.
fn validate_copies(c: &PolicyState, own_region: Option<&str>, diags: &mut Diagnostics) {
    let Value::Value(list) = &c.copy else {
        return;
    };
    for (i, cp) in list.iter().enumerate() {
        if let (Some(r), Some(own)) = (get(&cp.region), own_region)
            && r == own
        {
            diags.error(
                "Copy into the policy's own Region",
                format!("{r} is the provider's Region: a copy must go to another Region."),
                p("copy").index(i as i64).attribute("region"),
            );
        }
    }
    let Some(copies) = list
        .iter()
        .map(CopyState::to_doc)
        .collect::<Option<Vec<_>>>()
    else {
        return;
    };
    let share = match &c.share {
        Value::Value(sh) => match k_list(&sh.account_ids).known() {
            Some(ids) => Some(doc::ShareDoc { account_ids: ids }),
            None => return,
        },
        _ => None,
    };
    if let Err(e) = doc::check_copies(&copies, share.as_ref()) {
        let at = if e.starts_with("share") {
            p("share")
        } else {
            p("copy")
        };
        diags.error("Invalid copy or share", format!("{e}."), at);
    }
}

fn merged_tags(defaults: &BTreeMap<String, String>, tags: &StrMap) -> StrMap {
    match k_map(tags) {
        K::Unknown => Value::Unknown,
        K::Null => map_value(Some(defaults.clone())),
        K::Known(t) => {
            let mut all = defaults.clone();
            all.extend(t);
            map_value(Some(all))
        }
    }
}

/// The planned state: configuration plus defaults and computed values.
fn plan(config: &PolicyState, prior: Option<&PolicyState>, c: Option<&Configured>) -> PolicyState {
    let or = |v: &V<bool>, d: bool| match v {
        Value::Null => Value::Value(d),
        other => *other,
    };
    let same_name = prior.is_some_and(|p| p.name == config.name);
    PolicyState {
        id: config.name.clone(),
        arn: if same_name {
            prior.map(|p| p.arn.clone()).unwrap_or(Value::Unknown)
        } else {
            Value::Unknown
        },
        name: config.name.clone(),
        description: config.description.clone(),
        retention_days: config.retention_days,
        min_snapshots: match &config.min_snapshots {
            Value::Null => Value::Value(i64::from(doc::DEFAULT_MIN_SNAPSHOTS)),
            v => *v,
        },
        max_snapshots: config.max_snapshots,
        copy_volume_tags: or(&config.copy_volume_tags, true),
        copy_instance_tags: or(&config.copy_instance_tags, false),
        snapshot_tags: config.snapshot_tags.clone(),
        crash_consistent: or(&config.crash_consistent, false),
        report_unprotected: or(&config.report_unprotected, false),
        orphan_retention_days: config.orphan_retention_days,
        failure_webhook_url: config.failure_webhook_url.clone(),
        failure_webhook_secret_arn: config.failure_webhook_secret_arn.clone(),
        failure_sns_topic_arn: config.failure_sns_topic_arn.clone(),
        sweep_schedule: match &config.sweep_schedule {
            Value::Null => Value::Value(DEFAULT_SWEEP.into()),
            v => v.clone(),
        },
        sweep_enabled: or(&config.sweep_enabled, true),
        tags: config.tags.clone(),
        tags_all: merged_tags(
            &c.map(|c| c.default_tags.clone()).unwrap_or_default(),
            &config.tags,
        ),
        runner_arn: super::planned_arns(c).0,
        scheduler_role_arn: super::planned_arns(c).1,
        restore_test: config
            .restore_test
            .clone()
            .map(RestoreTestState::with_defaults),
        copy: config
            .copy
            .clone()
            .map(|l| l.into_iter().map(CopyState::with_defaults).collect()),
        share: config.share.clone(),
    }
}

fn u32_of(v: &V<i64>) -> Option<u32> {
    get(v).and_then(|n| u32::try_from(n).ok())
}

/// The policy document of a (fully known) state.
pub fn to_doc(s: &PolicyState) -> Option<PolicyDocument> {
    Some(PolicyDocument {
        ebssnap: doc::FORMAT_VERSION,
        kind: "policy".into(),
        policy: get(&s.name)?,
        retention: RetentionDoc {
            days: Some(u32_of(&s.retention_days)?),
            min_snapshots: Some(u32_of(&s.min_snapshots)?),
            max_snapshots: match &s.max_snapshots {
                Value::Null => None,
                v => Some(u32_of(v)?),
            },
        },
        tags: Some(TagsDoc {
            copy_volume_tags: Some(get(&s.copy_volume_tags)?),
            copy_instance_tags: Some(get(&s.copy_instance_tags)?),
            extra: match k_map(&s.snapshot_tags) {
                K::Unknown => return None,
                K::Null => None,
                K::Known(m) => Some(m),
            },
        }),
        orphans: match &s.orphan_retention_days {
            Value::Null => None,
            v => Some(OrphansDoc {
                delete_after_days: Some(u32_of(v)?),
            }),
        },
        crash_consistent: Some(get(&s.crash_consistent)?),
        report_unprotected: get(&s.report_unprotected)?.then_some(true),
        copies: match &s.copy {
            Value::Value(l) => l
                .iter()
                .map(CopyState::to_doc)
                .collect::<Option<Vec<_>>>()?,
            Value::Null => Vec::new(),
            Value::Unknown => return None,
        },
        share: match &s.share {
            Value::Value(sh) => Some(doc::ShareDoc {
                account_ids: k_list(&sh.account_ids).known()?,
            }),
            Value::Null => None,
            Value::Unknown => return None,
        },
        notify: {
            let (url, secret, topic) = (
                k(&s.failure_webhook_url),
                k(&s.failure_webhook_secret_arn),
                k(&s.failure_sns_topic_arn),
            );
            if url.is_unknown() || secret.is_unknown() || topic.is_unknown() {
                return None;
            }
            let n = NotifyDoc {
                webhook_url: url.known(),
                webhook_secret_arn: secret.known(),
                sns_topic_arn: topic.known(),
            };
            (n != NotifyDoc::default()).then_some(n)
        },
        invocation: Some(Invocation::placeholders()),
    })
}

/// The state AWS describes. `prior` keeps what AWS cannot tell apart (which group tags came
/// from `default_tags`).
fn from_aws(
    name: &str,
    group: &scheduler::Group,
    sched: Option<&ScheduleSpec>,
    test_sched: Option<&ScheduleSpec>,
    prior: Option<&PolicyState>,
    defaults: &BTreeMap<String, String>,
    diags: &mut Diagnostics,
) -> Option<PolicyState> {
    let prior_tags = prior.and_then(|p| k_map(&p.tags).known());
    let own: BTreeMap<String, String> = group
        .tags
        .iter()
        .filter(|(k, v)| {
            prior_tags.as_ref().is_some_and(|t| t.contains_key(*k)) || defaults.get(*k) != Some(*v)
        })
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let tags = if own.is_empty() && prior.is_none_or(|p| p.tags == Value::Null) {
        None
    } else {
        Some(own)
    };
    let mut state = PolicyState {
        id: Value::Value(name.into()),
        arn: Value::Value(group.arn.clone()),
        name: Value::Value(name.into()),
        tags: map_value(tags),
        tags_all: map_value(Some(group.tags.clone())),
        ..PolicyState::default()
    };
    // A group without its `_policy` schedule: the document attributes read as null, so the
    // next plan shows an update that writes the schedule again.
    let Some(sched) = sched else {
        return Some(state);
    };
    state.runner_arn = Value::Value(sched.target_arn.clone());
    state.scheduler_role_arn = Value::Value(sched.role_arn.clone());
    let d = match doc::parse_policy(&sched.input) {
        Ok(d) => d,
        Err(e) => {
            diags.root_error(
                format!("reading EventBridge Scheduler Schedule ({name}/{POLICY_SCHEDULE})"),
                format!("its input is not an ebssnap policy document: {e}"),
            );
            return None;
        }
    };
    let settings = d.tag_settings();
    state.description = opt(sched.description.clone());
    state.retention_days = opt(d.retention.days.map(i64::from));
    state.min_snapshots = Value::Value(i64::from(d.rules().min_snapshots));
    state.max_snapshots = opt(d.retention.max_snapshots.map(i64::from));
    state.copy_volume_tags = Value::Value(settings.copy_volume_tags);
    state.copy_instance_tags = Value::Value(settings.copy_instance_tags);
    state.snapshot_tags = map_value(d.tags.as_ref().and_then(|t| t.extra.clone()));
    state.crash_consistent = Value::Value(d.crash_consistent());
    state.report_unprotected = Value::Value(d.report_unprotected());
    state.copy = Value::Value(d.copies.iter().map(CopyState::of_doc).collect());
    state.share = match &d.share {
        Some(sh) => Value::Value(ShareState {
            account_ids: list_value(Some(sh.account_ids.clone())),
        }),
        None => Value::Null,
    };
    state.orphan_retention_days = opt(d.rules().orphan_delete_after_days.map(i64::from));
    state.failure_webhook_url = opt(d.webhook_url().map(String::from));
    state.failure_webhook_secret_arn = opt(d.webhook_secret_arn().map(String::from));
    state.failure_sns_topic_arn = opt(d.sns_topic_arn().map(String::from));
    state.sweep_schedule = Value::Value(sched.expression.clone());
    state.sweep_enabled = Value::Value(sched.enabled);
    if let Some(t) = test_sched {
        let d = match doc::parse_restore_test(&t.input) {
            Ok(d) => d,
            Err(e) => {
                diags.root_error(
                    format!(
                        "reading EventBridge Scheduler Schedule ({name}/{})",
                        scheduler::RESTORE_TEST_SCHEDULE
                    ),
                    format!("its input is not an ebssnap restore-test document: {e}"),
                );
                return None;
            }
        };
        state.restore_test = Value::Value(RestoreTestState {
            schedule: Value::Value(t.expression.clone()),
            timezone: Value::Value(t.timezone.clone()),
            sample: Value::Value(i64::from(d.sample)),
            timeout_minutes: Value::Value(i64::from(d.timeout_minutes)),
        });
    }
    Some(state)
}

/// What a policy's own schedules (`_policy`, `_restore_test`) share: no flexible window, no
/// start or end, Scheduler's default retries, no dead-letter queue.
fn policy_schedule_defaults() -> ScheduleSpec {
    ScheduleSpec {
        policy: String::new(),
        name: String::new(),
        description: None,
        expression: String::new(),
        timezone: String::new(),
        flexible_window_minutes: 0,
        start_date: None,
        end_date: None,
        enabled: true,
        target_arn: String::new(),
        role_arn: String::new(),
        input: String::new(),
        retry_attempts: scheduler::DEFAULT_ATTEMPTS,
        max_event_age_seconds: scheduler::DEFAULT_EVENT_AGE,
        dead_letter_arn: None,
        arn: None,
        created: None,
    }
}

impl PolicyResource {
    /// Reads the policy from AWS; `Ok(None)` when its group is gone.
    async fn read_aws(
        &self,
        diags: &mut Diagnostics,
        name: &str,
        prior: Option<&PolicyState>,
    ) -> Result<Option<PolicyState>, ()> {
        let c = self.shared.get(diags).ok_or(())?;
        let sched_client = &c.clients.scheduler;
        let group = match scheduler::get_group(sched_client, name).await {
            Ok(Some(g)) => g,
            Ok(None) => return Ok(None),
            Err(e) => {
                aws_diag(diags, &e);
                return Err(());
            }
        };
        let sched = scheduler::get_schedule(sched_client, name, POLICY_SCHEDULE)
            .await
            .map_err(|e| aws_diag(diags, &e))?;
        let test_sched =
            scheduler::get_schedule(sched_client, name, scheduler::RESTORE_TEST_SCHEDULE)
                .await
                .map_err(|e| aws_diag(diags, &e))?;
        from_aws(
            name,
            &group,
            sched.as_ref(),
            test_sched.as_ref(),
            prior,
            &c.default_tags,
            diags,
        )
        .map(Some)
        .ok_or(())
    }

    fn spec(
        &self,
        c: &Configured,
        s: &PolicyState,
        diags: &mut Diagnostics,
    ) -> Option<ScheduleSpec> {
        let (target_arn, role_arn) = c.target_arns(diags)?;
        let Some(d) = to_doc(s) else {
            diags.root_error_short("the policy has values that are still unknown at apply time");
            return None;
        };
        let input = match doc::to_input(&d) {
            Ok(i) => i,
            Err(e) => {
                diags.root_error("Policy document too large", e);
                return None;
            }
        };
        Some(ScheduleSpec {
            policy: get(&s.name)?,
            name: POLICY_SCHEDULE.into(),
            description: get(&s.description),
            expression: get(&s.sweep_schedule)?,
            timezone: "UTC".into(),
            enabled: get(&s.sweep_enabled)?,
            target_arn,
            role_arn,
            input,
            ..policy_schedule_defaults()
        })
    }

    /// The `_restore_test` schedule of a state with a `restore_test` block.
    fn test_spec(
        &self,
        c: &Configured,
        s: &PolicyState,
        diags: &mut Diagnostics,
    ) -> Option<Option<ScheduleSpec>> {
        let Value::Value(t) = &s.restore_test else {
            return Some(None);
        };
        let (target_arn, role_arn) = c.target_arns(diags)?;
        let Some(d) = to_restore_test_doc(s) else {
            diags.root_error_short(
                "the restore_test block has values that are still unknown at apply time",
            );
            return None;
        };
        let input = match doc::to_input(&d) {
            Ok(i) => i,
            Err(e) => {
                diags.root_error("Restore-test document too large", e);
                return None;
            }
        };
        Some(Some(ScheduleSpec {
            policy: get(&s.name)?,
            name: scheduler::RESTORE_TEST_SCHEDULE.into(),
            description: Some(format!("ebssnap restore tests of policy {}", get(&s.name)?)),
            expression: get(&t.schedule)?,
            timezone: get(&t.timezone)?,
            enabled: true,
            target_arn,
            role_arn,
            input,
            ..policy_schedule_defaults()
        }))
    }

    async fn write(
        &self,
        diags: &mut Diagnostics,
        planned: &PolicyState,
        prior: Option<&PolicyState>,
    ) -> Option<PolicyState> {
        let c = self.shared.get(diags)?;
        let name = get(&planned.name)?;
        let spec = self.spec(&c, planned, diags)?;
        let test_spec = self.test_spec(&c, planned, diags)?;
        let want_tags = k_map(&planned.tags_all).known().unwrap_or_default();
        let client = &c.clients.scheduler;
        // Create refuses an existing group (CreateScheduleGroup on an existing name may replace
        // it, deleting its schedules); an update syncs the group's tags, or recreates a group
        // deleted outside Terraform.
        let existing = match scheduler::get_group(client, &name).await {
            Ok(g) => g,
            Err(e) => {
                aws_diag(diags, &e);
                return None;
            }
        };
        if prior.is_none() && existing.is_some() {
            diags.error(
                "Policy already exists",
                format!(
                    "schedule group {} already exists: import it (`terraform import ebssnap_policy.<name> {name}`, or an import block with id = \"{name}\") instead of creating it.",
                    scheduler::group_name(&name)
                ),
                p("name"),
            );
            return None;
        }
        let result = async {
            match existing {
                Some(g) => {
                    scheduler::set_group_tags(client, &name, &g.arn, &g.tags, &want_tags).await?
                }
                None => {
                    scheduler::create_group(client, &name, &want_tags).await?;
                }
            }
            let exists = scheduler::get_schedule(client, &name, POLICY_SCHEDULE)
                .await?
                .is_some();
            scheduler::put_schedule(client, &spec, !exists).await?;
            let test = scheduler::RESTORE_TEST_SCHEDULE;
            let test_exists = scheduler::get_schedule(client, &name, test)
                .await?
                .is_some();
            match &test_spec {
                Some(t) => scheduler::put_schedule(client, t, !test_exists)
                    .await
                    .map(|_| ()),
                None if test_exists => scheduler::delete_schedule(client, &name, test).await,
                None => Ok(()),
            }
        }
        .await;
        if let Err(e) = result {
            aws_diag(diags, &e);
            return None;
        }
        match self.read_aws(diags, &name, Some(planned)).await {
            Ok(Some(mut s)) => {
                // Keep the planned (possibly sensitive) values verbatim where AWS agrees.
                s.tags = planned.tags.clone();
                Some(s)
            }
            Ok(None) => {
                diags
                    .root_error_short(format!("policy {name} vanished right after it was written"));
                None
            }
            Err(()) => None,
        }
    }
}

#[async_trait]
impl Resource for PolicyResource {
    type State = PolicyState;

    fn schema(&self) -> Schema {
        policy_schema()
    }

    fn identity_schema(&self) -> IdentitySchema {
        IdentitySchema {
            attributes: vec![IdentityAttribute {
                name: "name",
                description: "The policy's name (its schedule group is `ebssnap-<name>`).",
                required: true,
            }],
        }
    }

    fn identity(&self, state: &PolicyState) -> Option<Identity> {
        Some(Identity::from([("name".to_string(), get(&state.name)?)]))
    }

    fn import_id(&self, identity: &Identity) -> Result<String, String> {
        identity
            .get("name")
            .cloned()
            .ok_or_else(|| "the identity has no `name`".to_string())
    }

    fn list_schema(&self) -> Option<Schema> {
        Some(Schema {
            version: 0,
            block: block(
                "Every ebssnap policy of the provider's account and region (schedule groups `ebssnap-*` that hold a policy document).",
                vec![],
                vec![],
            ),
        })
    }

    async fn list(
        &self,
        diags: &mut Diagnostics,
        _config: serde_json::Value,
        limit: usize,
    ) -> Vec<PolicyState> {
        let Some(c) = self.shared.get(diags) else {
            return Vec::new();
        };
        let names = match scheduler::list_policies(&c.clients.scheduler).await {
            Ok(n) => n,
            Err(e) => {
                aws_diag(diags, &e);
                return Vec::new();
            }
        };
        let mut out = Vec::new();
        for name in names {
            if out.len() >= limit {
                break;
            }
            // A group without a policy document is not a policy: skipped. One unreadable
            // policy does not hide the others: it becomes a warning.
            let mut one = Diagnostics::default();
            match self.read_aws(&mut one, &name, None).await {
                Ok(Some(s)) if get(&s.runner_arn).is_some() => out.push(s),
                _ => {}
            }
            diags.demote_errors(one, &format!("policy {name} skipped"));
        }
        out
    }

    async fn validate(&self, diags: &mut Diagnostics, config: Self::State) {
        validate_config(&config, diags);
    }

    async fn read(&self, diags: &mut Diagnostics, state: Self::State) -> Option<Self::State> {
        let name = get(&state.name).or_else(|| get(&state.id))?;
        match self.read_aws(diags, &name, Some(&state)).await {
            Ok(Some(s)) => Some(s),
            Ok(None) | Err(()) => None,
        }
    }

    async fn plan_create(
        &self,
        diags: &mut Diagnostics,
        _proposed: Self::State,
        config: Self::State,
    ) -> Option<Self::State> {
        let c = self.shared.peek();
        let planned = plan(&config, None, c.as_deref());
        check_document(&planned, diags);
        validate_copies(
            &planned,
            c.as_ref().and_then(|c| c.clients.region.as_deref()),
            diags,
        );
        Some(planned)
    }

    async fn plan_update(
        &self,
        diags: &mut Diagnostics,
        prior: Self::State,
        _proposed: Self::State,
        config: Self::State,
    ) -> Option<(Self::State, Vec<AttributePath>)> {
        let c = self.shared.peek();
        let planned = plan(&config, Some(&prior), c.as_deref());
        check_document(&planned, diags);
        validate_copies(
            &planned,
            c.as_ref().and_then(|c| c.clients.region.as_deref()),
            diags,
        );
        let mut replace = Vec::new();
        if planned.name != prior.name {
            replace.push(p("name"));
        }
        Some((planned, replace))
    }

    async fn create(
        &self,
        diags: &mut Diagnostics,
        planned: Self::State,
        _config: Self::State,
    ) -> Option<Self::State> {
        Some(self.write(diags, &planned, None).await?)
    }

    async fn update(
        &self,
        diags: &mut Diagnostics,
        prior: Self::State,
        planned: Self::State,
        _config: Self::State,
    ) -> Option<Self::State> {
        Some(self.write(diags, &planned, Some(&prior)).await?)
    }

    async fn destroy(&self, diags: &mut Diagnostics, prior: Self::State) -> Option<()> {
        let c = self.shared.get(diags)?;
        let name = get(&prior.name)?;
        // Deleting the group deletes its schedules; snapshots are never touched.
        match scheduler::delete_group(&c.clients.scheduler, &name).await {
            Ok(()) => Some(()),
            Err(e) => {
                aws_diag(diags, &e);
                None
            }
        }
    }

    async fn import(&self, diags: &mut Diagnostics, id: String) -> Option<Self::State> {
        if let Err(e) = doc::validate_policy_name(&id) {
            diags.root_error(
                "Invalid import id",
                format!("expected POLICY (a policy name): {e}"),
            );
            return None;
        }
        match self.read_aws(diags, &id, None).await {
            Ok(Some(s)) => Some(s),
            Ok(None) => {
                diags.root_error(
                    "Cannot import non-existent remote object",
                    format!(
                        "schedule group {} does not exist",
                        scheduler::group_name(&id)
                    ),
                );
                None
            }
            Err(()) => None,
        }
    }
}

/// The document must fit in a schedule input; checked at plan time once it is known.
fn check_document(s: &PolicyState, diags: &mut Diagnostics) {
    if let Some(d) = to_doc(s)
        && let Err(e) = doc::to_input(&d)
    {
        diags.error("Policy document too large", e, p("snapshot_tags"));
    }
}
