//! `ebssnap_target`: one schedule `ebssnap-<policy>/<name>` whose input is the target document:
//! the selector, the retention overrides and the Scheduler context placeholders (docs/design.md §2, §3).

use super::plugin::Value;
use super::plugin::resource::{Identity, Resource};
use super::plugin::schema::{IdentityAttribute, IdentitySchema};
use super::plugin::schema::{NestedBlock, Schema};
use super::plugin::value::decode_json;
use super::plugin::{AttributePath, Diagnostics};
use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use super::schema::{
    Computed, Optional, OptionalComputed, Required, attr, block, boolean, exclude_block, number,
    select_block, string,
};
use super::selector::{ExcludeState, SelectState};
use super::values::{V, get, opt};
use super::{Configured, Shared, aws_diag, validate};
use crate::aws::scheduler::{self, ScheduleSpec};
use crate::core::doc::{self, Invocation, RetentionDoc, TargetDocument};
use crate::core::limits;

/// Scheduler's flexible time window, in minutes (a provider-only setting).
const FLEXIBLE_WINDOW_MINUTES: std::ops::RangeInclusive<i64> = 0..=1440;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
// Attributes missing from older state (added in a later version) read as null.
#[serde(default)]
pub struct TargetState {
    pub id: V<String>,
    pub arn: V<String>,
    pub policy: V<String>,
    pub name: V<String>,
    pub description: V<String>,
    pub schedule: V<String>,
    pub timezone: V<String>,
    pub flexible_window_minutes: V<i64>,
    pub start_date: V<String>,
    pub end_date: V<String>,
    pub enabled: V<bool>,
    pub select: V<SelectState>,
    #[serde(with = "crate::provider::plugin::value::as_list")]
    pub exclude: V<ExcludeState>,
    pub allow_empty: V<bool>,
    pub retention_days: V<i64>,
    pub min_snapshots: V<i64>,
    pub max_snapshots: V<i64>,
    pub retry_attempts: V<i64>,
    pub max_event_age_seconds: V<i64>,
    pub dead_letter_queue_arn: V<String>,
    pub runner_arn: V<String>,
    pub scheduler_role_arn: V<String>,
    /// `copy_retention` blocks: never null (a list of blocks), also in state written before
    /// they existed.
    #[serde(default = "no_overrides")]
    pub copy_retention: V<Vec<CopyRetentionState>>,
}

fn no_overrides() -> V<Vec<CopyRetentionState>> {
    Value::Value(Vec::new())
}

/// A `copy_retention` block: this target's rules for its copies in one of the policy's copy
/// Regions.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct CopyRetentionState {
    pub region: V<String>,
    pub retention_days: V<i64>,
    pub min_snapshots: V<i64>,
    pub max_snapshots: V<i64>,
}

impl CopyRetentionState {
    /// The document's override, when every value is known.
    fn to_doc(&self) -> Option<doc::CopyRetentionDoc> {
        Some(doc::CopyRetentionDoc {
            region: get(&self.region)?,
            retention_days: u32_opt(&self.retention_days).ok()?,
            min_snapshots: u32_opt(&self.min_snapshots).ok()?,
            max_snapshots: u32_opt(&self.max_snapshots).ok()?,
        })
    }

    fn of_doc(d: &doc::CopyRetentionDoc) -> CopyRetentionState {
        CopyRetentionState {
            region: Value::Value(d.region.clone()),
            retention_days: opt(d.retention_days.map(i64::from)),
            min_snapshots: opt(d.min_snapshots.map(i64::from)),
            max_snapshots: opt(d.max_snapshots.map(i64::from)),
        }
    }
}

fn copy_retention_block() -> super::plugin::schema::Block {
    block(
        "Overrides the rules of this target's copies in one of its policy's copy Regions (a `copy` block of the policy), as `retention_days`, `min_snapshots` and `max_snapshots` override the policy's rules for the target's own restore points. At most 5 blocks, each Region once. A Region the policy does not copy to is ignored by the runner, with a warning in the run's report.",
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
                    "Days this target's copies there are kept. Default: the `copy` block's.",
                ),
            ),
            (
                "min_snapshots",
                attr(
                    number(),
                    Optional,
                    "Copies of each volume always kept there. Default: the `copy` block's.",
                ),
            ),
            (
                "max_snapshots",
                attr(
                    number(),
                    Optional,
                    "At most this many copies of each volume there. Default: the `copy` block's.",
                ),
            ),
        ],
        vec![],
    )
}

/// The `config {}` of `list "ebssnap_target"`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
struct TargetListConfig {
    policy: V<String>,
}

pub fn target_schema() -> Schema {
    Schema {
        version: 1,
        block: block(
            "A snapshot target: which volumes of a policy are snapshotted, and when. It becomes the EventBridge Scheduler schedule `ebssnap-<policy>/<name>`, whose input is the target document the runner reads. Destroying a target deletes its schedule, never a snapshot; the policy's sweep prunes what it left.",
            vec![
                ("id", attr(string(), Computed, "`<policy>/<name>`.")),
                (
                    "runner_arn",
                    attr(string(), Computed, super::RUNNER_ARN_DOC),
                ),
                (
                    "scheduler_role_arn",
                    attr(string(), Computed, super::ROLE_ARN_DOC),
                ),
                ("arn", attr(string(), Computed, "ARN of the schedule.")),
                (
                    "policy",
                    attr(
                        string(),
                        Required,
                        "Name of the `ebssnap_policy` this target belongs to. Changing it replaces the target.",
                    ),
                ),
                (
                    "name",
                    attr(
                        string(),
                        Required,
                        "Target name: 1-64 characters of letters, digits, `_`, `.` and `-`, not starting with `_`. Changing it replaces the target.",
                    ),
                ),
                (
                    "description",
                    attr(
                        string(),
                        Optional,
                        "Description of the schedule (at most 512 characters).",
                    ),
                ),
                (
                    "schedule",
                    attr(
                        string(),
                        OptionalComputed,
                        "When to snapshot: `cron(minutes hours day-of-month month day-of-week year)`, `rate(value unit)` or `at(yyyy-mm-ddThh:mm:ss)`. Default: the provider's `default_schedule`.",
                    ),
                ),
                (
                    "timezone",
                    attr(
                        string(),
                        OptionalComputed,
                        "IANA time zone of the schedule. Default: the provider's `default_timezone`.",
                    ),
                ),
                (
                    "flexible_window_minutes",
                    attr(
                        number(),
                        OptionalComputed,
                        "Let Scheduler start up to this many minutes late to spread load (1-1440); `0` turns it off. Default `0`.",
                    ),
                ),
                (
                    "start_date",
                    attr(
                        string(),
                        Optional,
                        "RFC 3339 time before which the schedule does not fire.",
                    ),
                ),
                (
                    "end_date",
                    attr(
                        string(),
                        Optional,
                        "RFC 3339 time after which the schedule does not fire (after `start_date`).",
                    ),
                ),
                (
                    "enabled",
                    attr(
                        boolean(),
                        OptionalComputed,
                        "Whether the schedule fires. Default `true`.",
                    ),
                ),
                (
                    "allow_empty",
                    attr(
                        boolean(),
                        OptionalComputed,
                        "Whether an empty selection is expected. When `false` (the default), a run whose selector matches no volume fails with `EmptySelection` and raises a failure ticket; an `asg_names`, `instance_ids` or `volume_ids` entry that resolves to nothing fails the run with `NotFound` either way.",
                    ),
                ),
                (
                    "retention_days",
                    attr(
                        number(),
                        Optional,
                        "Overrides the policy's `retention_days` for this target.",
                    ),
                ),
                (
                    "min_snapshots",
                    attr(
                        number(),
                        Optional,
                        "Overrides the policy's `min_snapshots` for this target.",
                    ),
                ),
                (
                    "max_snapshots",
                    attr(
                        number(),
                        Optional,
                        "Overrides the policy's `max_snapshots` for this target.",
                    ),
                ),
                (
                    "retry_attempts",
                    attr(
                        number(),
                        OptionalComputed,
                        &format!(
                            "How often Scheduler retries a failed invocation of the runner ({}-{}). Default `{}`.",
                            limits::RETRY_ATTEMPTS.start(),
                            limits::RETRY_ATTEMPTS.end(),
                            limits::DEFAULT_RETRY_ATTEMPTS
                        ),
                    ),
                ),
                (
                    "max_event_age_seconds",
                    attr(
                        number(),
                        OptionalComputed,
                        &format!(
                            "How long Scheduler keeps retrying an invocation ({}-{}). Default `{}`.",
                            limits::MAX_EVENT_AGE_SECONDS.start(),
                            limits::MAX_EVENT_AGE_SECONDS.end(),
                            limits::DEFAULT_MAX_EVENT_AGE_SECONDS
                        ),
                    ),
                ),
                (
                    "dead_letter_queue_arn",
                    attr(
                        string(),
                        Optional,
                        "SQS queue ARN that receives invocations Scheduler gave up on.",
                    ),
                ),
            ],
            vec![
                ("select", NestedBlock::Single(select_block())),
                ("exclude", NestedBlock::Optional(exclude_block())),
                ("copy_retention", NestedBlock::List(copy_retention_block())),
            ],
        ),
    }
}

#[derive(Debug, Clone, Default)]
pub struct TargetResource {
    pub shared: Shared,
}

fn p(name: &'static str) -> AttributePath {
    AttributePath::new(name)
}

pub fn format_id(policy: &str, target: &str) -> String {
    format!("{policy}/{target}")
}

/// Parses an import id `POLICY/TARGET`.
pub fn parse_id(id: &str) -> Result<(String, String), String> {
    match id.split_once('/') {
        Some((pol, t)) if !pol.is_empty() && !t.is_empty() && !t.contains('/') => {
            doc::validate_policy_name(pol)?;
            doc::validate_target_name(t)?;
            Ok((pol.into(), t.into()))
        }
        _ => Err(format!(
            "unexpected id {id:?}: expected POLICY/TARGET, e.g. std/web"
        )),
    }
}

pub fn validate_config(c: &TargetState, diags: &mut Diagnostics) {
    if let Some(v) = get(&c.policy) {
        validate::policy_name(diags, p("policy"), &v);
    }
    if let Some(v) = get(&c.name) {
        validate::target_name(diags, p("name"), &v);
    }
    if let Some(v) = get(&c.description) {
        validate::description(diags, p("description"), &v);
    }
    if let Some(v) = get(&c.schedule) {
        validate::schedule_expression(diags, p("schedule"), &v);
    }
    if let Some(v) = get(&c.timezone) {
        validate::timezone(diags, p("timezone"), &v);
    }
    if let Some(v) = get(&c.flexible_window_minutes) {
        validate::range(
            diags,
            p("flexible_window_minutes"),
            "flexible_window_minutes",
            v,
            &FLEXIBLE_WINDOW_MINUTES,
        );
    }
    let start = get(&c.start_date).and_then(|v| validate::rfc3339(diags, p("start_date"), &v));
    let end = get(&c.end_date).and_then(|v| validate::rfc3339(diags, p("end_date"), &v));
    if let (Some(s), Some(e)) = (start, end)
        && e <= s
    {
        diags.error(
            "end_date before start_date",
            format!("end_date ({e}) must be after start_date ({s})."),
            p("end_date"),
        );
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
    validate::counts(diags, p, get(&c.min_snapshots), get(&c.max_snapshots));
    if let Value::Value(list) = &c.copy_retention
        && let Some(overrides) = list
            .iter()
            .map(CopyRetentionState::to_doc)
            .collect::<Option<Vec<_>>>()
        && let Err(e) = doc::check_copy_overrides(&overrides)
    {
        let at = match e.split_once(']') {
            Some((head, _)) => match head.strip_prefix("copies[").map(str::parse::<i64>) {
                Some(Ok(i)) => p("copy_retention").index(i),
                _ => p("copy_retention"),
            },
            None => p("copy_retention"),
        };
        diags.error(
            "Invalid copy_retention",
            format!("{}.", e.replacen("copies", "copy_retention", 1)),
            at,
        );
    }
    if let Some(v) = get(&c.retry_attempts) {
        validate::range(
            diags,
            p("retry_attempts"),
            "retry_attempts",
            v,
            &limits::RETRY_ATTEMPTS,
        );
    }
    if let Some(v) = get(&c.max_event_age_seconds) {
        validate::range(
            diags,
            p("max_event_age_seconds"),
            "max_event_age_seconds",
            v,
            &limits::MAX_EVENT_AGE_SECONDS,
        );
    }
    if let Some(v) = get(&c.dead_letter_queue_arn) {
        validate::arn(diags, p("dead_letter_queue_arn"), &v, Some("sqs"));
    }
    if let Value::Value(sel) = &c.select {
        sel.validate(&p("select"), diags);
    }
    if let Value::Value(ex) = &c.exclude {
        ex.validate(&p("exclude").index(0), diags);
    }
    if let Some(d) = to_doc(c)
        && let Err(e) = doc::to_input(&d)
    {
        diags.error(
            "Target document too large",
            format!("{e}: select fewer sources (e.g. tags instead of long id lists)."),
            p("select"),
        );
    }
}

fn default_i(v: &V<i64>, d: i64) -> V<i64> {
    match v {
        Value::Null => Value::Value(d),
        v => *v,
    }
}

fn plan(config: &TargetState, prior: Option<&TargetState>, c: Option<&Configured>) -> TargetState {
    let same = prior.is_some_and(|p| p.policy == config.policy && p.name == config.name);
    let id = match (get(&config.policy), get(&config.name)) {
        (Some(pol), Some(n)) => Value::Value(format_id(&pol, &n)),
        _ => Value::Unknown,
    };
    let from_provider = |v: &V<String>, d: Option<String>| match v {
        Value::Null => d.map(Value::Value).unwrap_or(Value::Unknown),
        v => v.clone(),
    };
    TargetState {
        id,
        arn: if same {
            prior.map(|p| p.arn.clone()).unwrap_or(Value::Unknown)
        } else {
            Value::Unknown
        },
        policy: config.policy.clone(),
        name: config.name.clone(),
        description: config.description.clone(),
        schedule: from_provider(&config.schedule, c.map(|c| c.default_schedule.clone())),
        timezone: from_provider(&config.timezone, c.map(|c| c.default_timezone.clone())),
        flexible_window_minutes: default_i(&config.flexible_window_minutes, 0),
        start_date: config.start_date.clone(),
        end_date: config.end_date.clone(),
        enabled: match &config.enabled {
            Value::Null => Value::Value(true),
            v => *v,
        },
        select: config.select.clone().map(SelectState::with_defaults),
        exclude: config.exclude.clone().map(ExcludeState::with_defaults),
        allow_empty: match &config.allow_empty {
            Value::Null => Value::Value(false),
            v => *v,
        },
        retention_days: config.retention_days,
        min_snapshots: config.min_snapshots,
        max_snapshots: config.max_snapshots,
        retry_attempts: default_i(&config.retry_attempts, limits::DEFAULT_RETRY_ATTEMPTS),
        max_event_age_seconds: default_i(
            &config.max_event_age_seconds,
            limits::DEFAULT_MAX_EVENT_AGE_SECONDS,
        ),
        dead_letter_queue_arn: config.dead_letter_queue_arn.clone(),
        runner_arn: super::planned_arns(c).0,
        scheduler_role_arn: super::planned_arns(c).1,
        copy_retention: config.copy_retention.clone(),
    }
}

fn u32_opt(v: &V<i64>) -> Result<Option<u32>, ()> {
    match v {
        Value::Null => Ok(None),
        Value::Unknown => Err(()),
        Value::Value(n) => u32::try_from(*n).map(Some).map_err(|_| ()),
    }
}

/// The target document of a state, or `None` while something in it is unknown.
pub fn to_doc(s: &TargetState) -> Option<TargetDocument> {
    let select = match &s.select {
        Value::Value(sel) => sel.clone().with_defaults().to_doc()?,
        _ => return None,
    };
    let exclude = match &s.exclude {
        Value::Value(e) => Some(e.clone().with_defaults().to_doc()?),
        Value::Null => None,
        Value::Unknown => return None,
    };
    let r = RetentionDoc {
        days: u32_opt(&s.retention_days).ok()?,
        min_snapshots: u32_opt(&s.min_snapshots).ok()?,
        max_snapshots: u32_opt(&s.max_snapshots).ok()?,
    };
    let retention = (r != RetentionDoc::default()).then_some(r);
    Some(TargetDocument {
        ebssnap: doc::FORMAT_VERSION,
        kind: "target".into(),
        policy: get(&s.policy)?,
        target: get(&s.name)?,
        select,
        exclude,
        retention,
        allow_empty: match s.allow_empty {
            Value::Value(true) => Some(true),
            Value::Value(false) | Value::Null => None,
            Value::Unknown => return None,
        },
        copies: match &s.copy_retention {
            Value::Value(l) => l
                .iter()
                .map(CopyRetentionState::to_doc)
                .collect::<Option<Vec<_>>>()?,
            Value::Null => Vec::new(),
            Value::Unknown => return None,
        },
        invocation: Some(Invocation::placeholders()),
    })
}

/// A date as the user wrote it when it is the same instant as AWS's, else AWS's in RFC 3339.
/// A configured date in the past that AWS does not hold is kept: it was not sent (see `write`).
fn date_state(aws: Option<jiff::Timestamp>, prior: Option<&V<String>>) -> V<String> {
    let Some(t) = aws else {
        return match prior {
            Some(Value::Value(s))
                if s.parse::<jiff::Timestamp>()
                    .is_ok_and(|p| p <= jiff::Timestamp::now()) =>
            {
                Value::Value(s.clone())
            }
            _ => Value::Null,
        };
    };
    if let Some(Value::Value(s)) = prior
        && s.parse::<jiff::Timestamp>()
            .is_ok_and(|p| p.as_second() == t.as_second())
    {
        return Value::Value(s.clone());
    }
    Value::Value(t.to_string())
}

fn from_aws(
    spec: &ScheduleSpec,
    prior: Option<&TargetState>,
    diags: &mut Diagnostics,
) -> Option<TargetState> {
    let d = match doc::parse_target(&spec.input) {
        Ok(d) => d,
        Err(e) => {
            diags.root_error(
                format!(
                    "reading EventBridge Scheduler Schedule ({}/{})",
                    spec.policy, spec.name
                ),
                format!("its input is not an ebssnap target document: {e}"),
            );
            return None;
        }
    };
    let r = d.retention.clone().unwrap_or_default();
    Some(TargetState {
        id: Value::Value(format_id(&spec.policy, &spec.name)),
        arn: opt(spec.arn.clone()),
        policy: Value::Value(spec.policy.clone()),
        name: Value::Value(spec.name.clone()),
        description: opt(spec.description.clone()),
        schedule: Value::Value(spec.expression.clone()),
        timezone: Value::Value(spec.timezone.clone()),
        flexible_window_minutes: Value::Value(i64::from(spec.flexible_window_minutes)),
        start_date: date_state(spec.start_date, prior.map(|p| &p.start_date)),
        end_date: date_state(spec.end_date, prior.map(|p| &p.end_date)),
        enabled: Value::Value(spec.enabled),
        select: Value::Value(SelectState::from_doc(&d.select)),
        exclude: opt(d.exclude.as_ref().map(ExcludeState::from_doc)),
        allow_empty: Value::Value(d.allow_empty()),
        retention_days: opt(r.days.map(i64::from)),
        min_snapshots: opt(r.min_snapshots.map(i64::from)),
        max_snapshots: opt(r.max_snapshots.map(i64::from)),
        retry_attempts: Value::Value(i64::from(spec.retry_attempts)),
        max_event_age_seconds: Value::Value(i64::from(spec.max_event_age_seconds)),
        dead_letter_queue_arn: opt(spec.dead_letter_arn.clone()),
        runner_arn: Value::Value(spec.target_arn.clone()),
        scheduler_role_arn: Value::Value(spec.role_arn.clone()),
        copy_retention: Value::Value(d.copies.iter().map(CopyRetentionState::of_doc).collect()),
    })
}

impl TargetResource {
    async fn read_aws(
        &self,
        diags: &mut Diagnostics,
        policy: &str,
        name: &str,
        prior: Option<&TargetState>,
    ) -> Result<Option<TargetState>, ()> {
        let c = self.shared.get(diags).ok_or(())?;
        match scheduler::get_schedule(&c.clients.scheduler, policy, name).await {
            Ok(Some(spec)) => from_aws(&spec, prior, diags).map(Some).ok_or(()),
            Ok(None) => Ok(None),
            Err(e) => {
                aws_diag(diags, &e);
                Err(())
            }
        }
    }

    async fn write(
        &self,
        diags: &mut Diagnostics,
        s: &TargetState,
        create: bool,
    ) -> Option<TargetState> {
        let c = self.shared.get(diags)?;
        let (target_arn, role_arn) = c.target_arns(diags)?;
        let (policy, name) = (get(&s.policy)?, get(&s.name)?);
        let Some(d) = to_doc(s) else {
            diags.root_error_short("the target has values that are still unknown at apply time");
            return None;
        };
        let input = match doc::to_input(&d) {
            Ok(i) => i,
            Err(e) => {
                diags.error("Target document too large", e, p("select"));
                return None;
            }
        };
        let date = |v: &V<String>| get(v).and_then(|x| x.parse::<jiff::Timestamp>().ok());
        // Scheduler refuses a start date more than 5 minutes in the past, on create and on every
        // update. A past start date changes nothing (the schedule is active), so it is not sent;
        // read keeps the configured value (see `date_state`).
        let now = jiff::Timestamp::now();
        let start_date = date(&s.start_date).filter(|t| *t > now);
        let spec = ScheduleSpec {
            policy: policy.clone(),
            name: name.clone(),
            description: get(&s.description),
            expression: get(&s.schedule)?,
            timezone: get(&s.timezone)?,
            flexible_window_minutes: i32::try_from(get(&s.flexible_window_minutes)?).ok()?,
            start_date,
            end_date: date(&s.end_date),
            enabled: get(&s.enabled)?,
            target_arn,
            role_arn,
            input,
            retry_attempts: i32::try_from(get(&s.retry_attempts)?).ok()?,
            max_event_age_seconds: i32::try_from(get(&s.max_event_age_seconds)?).ok()?,
            dead_letter_arn: get(&s.dead_letter_queue_arn),
            arn: None,
            created: None,
        };
        let client = &c.clients.scheduler;
        match scheduler::get_group(client, &policy).await {
            Ok(Some(_)) => {}
            Ok(None) => {
                diags.error(
                    "Policy does not exist",
                    format!(
                        "policy {policy:?} does not exist (no schedule group {}): create the ebssnap_policy first, e.g. policy = ebssnap_policy.<name>.name",
                        scheduler::group_name(&policy)
                    ),
                    p("policy"),
                );
                return None;
            }
            Err(e) => {
                aws_diag(diags, &e);
                return None;
            }
        }
        let result = async {
            let exists = scheduler::get_schedule(client, &policy, &name)
                .await?
                .is_some();
            scheduler::put_schedule(client, &spec, create || !exists).await
        }
        .await;
        if let Err(e) = result {
            aws_diag(diags, &e);
            return None;
        }
        match self.read_aws(diags, &policy, &name, Some(s)).await {
            Ok(Some(state)) => Some(state),
            Ok(None) => {
                diags.root_error_short(format!(
                    "target {policy}/{name} vanished right after it was written"
                ));
                None
            }
            Err(()) => None,
        }
    }
}

#[async_trait]
impl Resource for TargetResource {
    type State = TargetState;

    fn schema(&self) -> Schema {
        target_schema()
    }

    fn identity_schema(&self) -> IdentitySchema {
        IdentitySchema {
            attributes: vec![
                IdentityAttribute {
                    name: "policy",
                    description: "The name of the policy the target belongs to.",
                    required: true,
                },
                IdentityAttribute {
                    name: "name",
                    description: "The target's name within its policy.",
                    required: true,
                },
            ],
        }
    }

    fn identity(&self, state: &TargetState) -> Option<Identity> {
        Some(Identity::from([
            ("policy".to_string(), get(&state.policy)?),
            ("name".to_string(), get(&state.name)?),
        ]))
    }

    fn import_id(&self, identity: &Identity) -> Result<String, String> {
        match (identity.get("policy"), identity.get("name")) {
            (Some(p), Some(n)) => Ok(format_id(p, n)),
            _ => Err("the identity needs both `policy` and `name`".into()),
        }
    }

    fn list_schema(&self) -> Option<Schema> {
        Some(Schema {
            version: 0,
            block: block(
                "Every ebssnap target of the provider's account and region, or of one policy.",
                vec![(
                    "policy",
                    attr(
                        string(),
                        Optional,
                        "Only the targets of this policy. Default: every policy's.",
                    ),
                )],
                vec![],
            ),
        })
    }

    async fn validate_list(&self, diags: &mut Diagnostics, config: serde_json::Value) {
        match decode_json::<TargetListConfig>(config) {
            Ok(c) => {
                if let Some(v) = get(&c.policy) {
                    validate::policy_name(diags, p("policy"), &v);
                }
            }
            Err(e) => diags.root_error("Invalid list configuration", e),
        }
    }

    async fn list(
        &self,
        diags: &mut Diagnostics,
        config: serde_json::Value,
        limit: usize,
    ) -> Vec<TargetState> {
        let Some(c) = self.shared.get(diags) else {
            return Vec::new();
        };
        let only = match decode_json::<TargetListConfig>(config) {
            Ok(cfg) => get(&cfg.policy),
            Err(e) => {
                diags.root_error("Invalid list configuration", e);
                return Vec::new();
            }
        };
        let policies = match only {
            Some(p) => vec![p],
            None => match scheduler::list_policies(&c.clients.scheduler).await {
                Ok(n) => n,
                Err(e) => {
                    aws_diag(diags, &e);
                    return Vec::new();
                }
            },
        };
        let mut out = Vec::new();
        for policy in policies {
            let names = match scheduler::list_targets(&c.clients.scheduler, &policy).await {
                Ok(n) => n.unwrap_or_default(),
                Err(e) => {
                    aws_diag(diags, &e);
                    return out;
                }
            };
            for name in names {
                if out.len() >= limit {
                    return out;
                }
                if doc::validate_target_name(&name).is_err() {
                    continue;
                }
                let mut one = Diagnostics::default();
                if let Ok(Some(s)) = self.read_aws(&mut one, &policy, &name, None).await {
                    out.push(s);
                }
                diags.demote_errors(one, &format!("target {policy}/{name} skipped"));
            }
        }
        out
    }

    async fn validate(&self, diags: &mut Diagnostics, config: Self::State) {
        validate_config(&config, diags);
    }

    async fn read(&self, diags: &mut Diagnostics, state: Self::State) -> Option<Self::State> {
        let (policy, name) = (get(&state.policy)?, get(&state.name)?);
        match self.read_aws(diags, &policy, &name, Some(&state)).await {
            Ok(Some(s)) => Some(s),
            Ok(None) | Err(()) => None,
        }
    }

    async fn plan_create(
        &self,
        _diags: &mut Diagnostics,
        _proposed: Self::State,
        config: Self::State,
    ) -> Option<Self::State> {
        let c = self.shared.peek();
        Some(plan(&config, None, c.as_deref()))
    }

    async fn plan_update(
        &self,
        _diags: &mut Diagnostics,
        prior: Self::State,
        _proposed: Self::State,
        config: Self::State,
    ) -> Option<(Self::State, Vec<AttributePath>)> {
        let c = self.shared.peek();
        let planned = plan(&config, Some(&prior), c.as_deref());
        let mut replace = Vec::new();
        if planned.policy != prior.policy {
            replace.push(p("policy"));
        }
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
        Some(self.write(diags, &planned, true).await?)
    }

    async fn update(
        &self,
        diags: &mut Diagnostics,
        _prior: Self::State,
        planned: Self::State,
        _config: Self::State,
    ) -> Option<Self::State> {
        Some(self.write(diags, &planned, false).await?)
    }

    async fn destroy(&self, diags: &mut Diagnostics, prior: Self::State) -> Option<()> {
        let c = self.shared.get(diags)?;
        let (policy, name) = (get(&prior.policy)?, get(&prior.name)?);
        match scheduler::delete_schedule(&c.clients.scheduler, &policy, &name).await {
            Ok(()) => Some(()),
            Err(e) => {
                aws_diag(diags, &e);
                None
            }
        }
    }

    async fn import(&self, diags: &mut Diagnostics, id: String) -> Option<Self::State> {
        let (policy, name) = match parse_id(&id) {
            Ok(x) => x,
            Err(e) => {
                diags.root_error("Invalid import id", e);
                return None;
            }
        };
        match self.read_aws(diags, &policy, &name, None).await {
            Ok(Some(s)) => Some(s),
            Ok(None) => {
                diags.root_error(
                    "Cannot import non-existent remote object",
                    format!("schedule {policy}/{name} does not exist"),
                );
                None
            }
            Err(()) => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn import_ids() {
        assert_eq!(parse_id("std/web").unwrap(), ("std".into(), "web".into()));
        for bad in ["std", "std/", "/web", "std/web/x", "std/_policy"] {
            assert!(parse_id(bad).is_err(), "{bad}");
        }
        assert!(
            parse_id("std")
                .unwrap_err()
                .contains("expected POLICY/TARGET")
        );
    }
}

#[cfg(test)]
mod upgrade_tests {
    use crate::provider::plugin::Diagnostics;
    use crate::provider::plugin::value;

    /// State written by an older provider lacks attributes added since: it upgrades with them
    /// null instead of failing (Terraform calls UpgradeResourceState on every plan).
    #[test]
    fn state_without_newer_attributes_upgrades_with_them_null() {
        let reg = crate::provider::registry();
        let old_target = br#"{"id":"std/web","arn":"arn","policy":"std","name":"web","description":null,
            "schedule":"cron(0 5 * * ? *)","timezone":"UTC","flexible_window_minutes":0,"start_date":null,
            "end_date":null,"enabled":true,
            "select":{"all_volumes":false,"asg_names":null,"instance_names":["web-*"],"instance_ids":null,
                      "instance_tags":null,"volume_ids":null,"volume_tags":null},
            "exclude":[{"volume_ids":null,"volume_tags":null,"root_volumes":true}],
            "allow_empty":false,"retention_days":null,"min_snapshots":null,"max_snapshots":null,
            "retry_attempts":185,"max_event_age_seconds":86400,"dead_letter_queue_arn":null,
            "runner_arn":"r","scheduler_role_arn":"s"}"#;
        let mut d = Diagnostics::default();
        let up = reg.resources["ebssnap_target"].upgrade(&mut d, 1, old_target);
        assert!(!d.has_errors(), "{:?}", d.items);
        let tree = value::decode_tree(up.as_ref()).unwrap();
        assert!(tree["select"]["instance_filters"].is_null());
        assert!(tree["exclude"][0]["instance_ids"].is_null());
        assert_eq!(
            tree["select"]["instance_names"],
            serde_json::json!(["web-*"])
        );

        let old_policy = br#"{"id":"std","arn":"a","name":"std","description":null,"retention_days":14,
            "min_snapshots":1,"max_snapshots":null,"copy_volume_tags":true,"copy_instance_tags":false,
            "snapshot_tags":null,"crash_consistent":false,"orphan_retention_days":null,
            "failure_webhook_url":null,"sweep_schedule":"rate(1 day)","sweep_enabled":true,
            "tags":null,"tags_all":null,"runner_arn":"r","scheduler_role_arn":"s"}"#;
        let up = reg.resources["ebssnap_policy"].upgrade(&mut d, 1, old_policy);
        assert!(!d.has_errors(), "{:?}", d.items);
        let tree = value::decode_tree(up.as_ref()).unwrap();
        assert!(tree["failure_webhook_secret_arn"].is_null());
        assert!(tree["failure_sns_topic_arn"].is_null());
    }
}
