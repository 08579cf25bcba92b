//! EventBridge Scheduler: where the policy and target documents live (docs/design.md §2).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use aws_sdk_scheduler::types::{
    DeadLetterConfig, FlexibleTimeWindow, FlexibleTimeWindowMode, RetryPolicy, ScheduleState, Tag,
    Target,
};
use aws_smithy_types::DateTime;

use super::aws_error;
use crate::error::AwsError;

/// Scheduler's retry defaults (`core::limits`), in the SDK's type.
pub const DEFAULT_ATTEMPTS: i32 = crate::core::limits::DEFAULT_RETRY_ATTEMPTS as i32;
pub const DEFAULT_EVENT_AGE: i32 = crate::core::limits::DEFAULT_MAX_EVENT_AGE_SECONDS as i32;

/// The schedule that stores a policy's document and fires its sweep.
pub const POLICY_SCHEDULE: &str = "_policy";
/// The schedule of a policy's restore tests (only when the policy has a `restore_test` block).
pub const RESTORE_TEST_SCHEDULE: &str = "_restore_test";

/// Whether a schedule of a policy's group is one of the policy's own (not a target's): target
/// names cannot start with `_`.
pub fn is_policy_schedule(name: &str) -> bool {
    name == POLICY_SCHEDULE || name == RESTORE_TEST_SCHEDULE
}

/// A policy's schedule group: `ebssnap-<policy>`.
pub fn group_name(policy: &str) -> String {
    format!("ebssnap-{policy}")
}

/// The `Input` of schedule `name` in the policy's group; `None` when the schedule (or group)
/// does not exist.
pub async fn get_input(
    client: &aws_sdk_scheduler::Client,
    policy: &str,
    name: &str,
) -> Result<Option<String>, AwsError> {
    let res = client
        .get_schedule()
        .group_name(group_name(policy))
        .name(name)
        .send()
        .await;
    match res {
        Ok(out) => Ok(out.target().and_then(|t| t.input()).map(String::from)),
        Err(e) => {
            let e = aws_error(
                format!("reading EventBridge Scheduler Schedule ({policy}/{name})"),
                e,
            );
            if e.code == "ResourceNotFoundException" {
                Ok(None)
            } else {
                Err(e)
            }
        }
    }
}

/// The names of a policy's target schedules (every schedule of the group but `_policy`).
pub async fn list_targets(
    client: &aws_sdk_scheduler::Client,
    policy: &str,
) -> Result<Option<Vec<String>>, AwsError> {
    let mut pages = client
        .list_schedules()
        .group_name(group_name(policy))
        .max_results(100)
        .into_paginator()
        .send();
    let mut names = Vec::new();
    while let Some(page) = pages.next().await {
        match page {
            Ok(p) => names.extend(
                p.schedules()
                    .iter()
                    .filter_map(|s| s.name())
                    .filter(|n| !is_policy_schedule(n))
                    .map(String::from),
            ),
            Err(e) => {
                let e = aws_error(
                    format!("listing EventBridge Scheduler Schedules ({policy})"),
                    e,
                );
                if e.code == "ResourceNotFoundException" {
                    return Ok(None);
                }
                return Err(e);
            }
        }
    }
    Ok(Some(names))
}

/// The names of every policy in the account and region: schedule groups named `ebssnap-<name>`
/// whose `<name>` is a valid policy name (other groups are not ebssnap's).
pub async fn list_policies(client: &aws_sdk_scheduler::Client) -> Result<Vec<String>, AwsError> {
    let mut pages = client
        .list_schedule_groups()
        .name_prefix(group_name(""))
        .max_results(100)
        .into_paginator()
        .send();
    let mut names = Vec::new();
    while let Some(page) = pages.next().await {
        let p = page.map_err(|e| aws_error("listing EventBridge Scheduler Schedule Groups", e))?;
        names.extend(
            p.schedule_groups()
                .iter()
                .filter_map(|g| g.name())
                .filter_map(|n| n.strip_prefix(&group_name("")))
                .filter(|n| crate::core::doc::validate_policy_name(n).is_ok())
                .map(String::from),
        );
    }
    names.sort();
    Ok(names)
}

// ---- Management of groups and schedules (the Terraform provider's side) ----

/// How long create/update retry while a new IAM role cannot be assumed yet.
pub const IAM_PROPAGATION: Duration = Duration::from_secs(120);

/// A schedule group as the policy resource sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Group {
    pub arn: String,
    pub tags: BTreeMap<String, String>,
}

/// Everything ebssnap sets on a schedule (docs/design.md §2).
#[derive(Debug, Clone, PartialEq)]
pub struct ScheduleSpec {
    pub policy: String,
    pub name: String,
    pub description: Option<String>,
    pub expression: String,
    pub timezone: String,
    /// 0 = off.
    pub flexible_window_minutes: i32,
    pub start_date: Option<jiff::Timestamp>,
    pub end_date: Option<jiff::Timestamp>,
    pub enabled: bool,
    pub target_arn: String,
    pub role_arn: String,
    pub input: String,
    pub retry_attempts: i32,
    pub max_event_age_seconds: i32,
    pub dead_letter_arn: Option<String>,
    /// Set when read from AWS.
    pub arn: Option<String>,
    /// When the schedule was created (read from AWS).
    pub created: Option<jiff::Timestamp>,
}

fn not_found(e: &AwsError) -> bool {
    e.code == "ResourceNotFoundException"
}

fn to_dt(t: jiff::Timestamp) -> DateTime {
    DateTime::from_secs(t.as_second())
}

fn from_dt(d: &DateTime) -> Option<jiff::Timestamp> {
    jiff::Timestamp::from_second(d.secs()).ok()
}

pub async fn get_group(
    client: &aws_sdk_scheduler::Client,
    policy: &str,
) -> Result<Option<Group>, AwsError> {
    let name = group_name(policy);
    let out = match client.get_schedule_group().name(&name).send().await {
        Ok(o) => o,
        Err(e) => {
            let e = aws_error(
                format!("reading EventBridge Scheduler Schedule Group ({name})"),
                e,
            );
            return if not_found(&e) { Ok(None) } else { Err(e) };
        }
    };
    let arn = out.arn().unwrap_or_default().to_string();
    let tags = client
        .list_tags_for_resource()
        .resource_arn(&arn)
        .send()
        .await
        .map_err(|e| {
            aws_error(
                format!("listing tags of EventBridge Scheduler Schedule Group ({name})"),
                e,
            )
        })?
        .tags()
        .iter()
        .map(|t| (t.key().to_string(), t.value().to_string()))
        .collect();
    Ok(Some(Group { arn, tags }))
}

fn sdk_tags(tags: &BTreeMap<String, String>) -> Result<Vec<Tag>, AwsError> {
    tags.iter()
        .map(|(k, v)| {
            Tag::builder()
                .key(k)
                .value(v)
                .build()
                .map_err(|e| AwsError {
                    action: "building tags".into(),
                    code: "InvalidTag".into(),
                    message: e.to_string(),
                    retryable: false,
                    ambiguous: false,
                })
        })
        .collect()
}

/// Creates a policy's group. The caller checks first that none exists: `CreateScheduleGroup` on
/// an existing name may replace it (moto does), which would delete every schedule in it.
pub async fn create_group(
    client: &aws_sdk_scheduler::Client,
    policy: &str,
    tags: &BTreeMap<String, String>,
) -> Result<String, AwsError> {
    let name = group_name(policy);
    let action = format!("creating EventBridge Scheduler Schedule Group ({name})");
    let out = client
        .create_schedule_group()
        .name(&name)
        .set_tags((!tags.is_empty()).then(|| sdk_tags(tags)).transpose()?)
        .send()
        .await
        .map_err(|e| aws_error(action, e))?;
    Ok(out.schedule_group_arn().to_string())
}

/// Makes the group's tags equal `want`.
pub async fn set_group_tags(
    client: &aws_sdk_scheduler::Client,
    policy: &str,
    arn: &str,
    have: &BTreeMap<String, String>,
    want: &BTreeMap<String, String>,
) -> Result<(), AwsError> {
    let name = group_name(policy);
    let remove: Vec<String> = have
        .keys()
        .filter(|k| !want.contains_key(*k))
        .cloned()
        .collect();
    if !remove.is_empty() {
        client
            .untag_resource()
            .resource_arn(arn)
            .set_tag_keys(Some(remove))
            .send()
            .await
            .map_err(|e| {
                aws_error(
                    format!("untagging EventBridge Scheduler Schedule Group ({name})"),
                    e,
                )
            })?;
    }
    let add: BTreeMap<String, String> = want
        .iter()
        .filter(|(k, v)| have.get(*k) != Some(*v))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    if !add.is_empty() {
        client
            .tag_resource()
            .resource_arn(arn)
            .set_tags(Some(sdk_tags(&add)?))
            .send()
            .await
            .map_err(|e| {
                aws_error(
                    format!("tagging EventBridge Scheduler Schedule Group ({name})"),
                    e,
                )
            })?;
    }
    Ok(())
}

/// Deletes a policy's group (and every schedule in it). Missing is success.
pub async fn delete_group(
    client: &aws_sdk_scheduler::Client,
    policy: &str,
) -> Result<(), AwsError> {
    let name = group_name(policy);
    match client.delete_schedule_group().name(&name).send().await {
        Ok(_) => Ok(()),
        Err(e) => {
            let e = aws_error(
                format!("deleting EventBridge Scheduler Schedule Group ({name})"),
                e,
            );
            if not_found(&e) { Ok(()) } else { Err(e) }
        }
    }
}

/// Reads a schedule in full; `None` when it (or its group) does not exist.
pub async fn get_schedule(
    client: &aws_sdk_scheduler::Client,
    policy: &str,
    name: &str,
) -> Result<Option<ScheduleSpec>, AwsError> {
    let out = match client
        .get_schedule()
        .group_name(group_name(policy))
        .name(name)
        .send()
        .await
    {
        Ok(o) => o,
        Err(e) => {
            let e = aws_error(
                format!("reading EventBridge Scheduler Schedule ({policy}/{name})"),
                e,
            );
            return if not_found(&e) { Ok(None) } else { Err(e) };
        }
    };
    let target = out.target();
    let retry = target.and_then(|t| t.retry_policy());
    let window = out.flexible_time_window();
    Ok(Some(ScheduleSpec {
        policy: policy.to_string(),
        name: name.to_string(),
        description: out
            .description()
            .filter(|d| !d.is_empty())
            .map(String::from),
        expression: out.schedule_expression().unwrap_or_default().to_string(),
        timezone: out
            .schedule_expression_timezone()
            .unwrap_or("UTC")
            .to_string(),
        flexible_window_minutes: match window {
            Some(w) if w.mode() == &FlexibleTimeWindowMode::Flexible => {
                w.maximum_window_in_minutes().unwrap_or(0)
            }
            _ => 0,
        },
        start_date: out.start_date().and_then(from_dt),
        end_date: out.end_date().and_then(from_dt),
        enabled: out.state() != Some(&ScheduleState::Disabled),
        target_arn: target.map(|t| t.arn().to_string()).unwrap_or_default(),
        role_arn: target.map(|t| t.role_arn().to_string()).unwrap_or_default(),
        input: target
            .and_then(|t| t.input())
            .unwrap_or_default()
            .to_string(),
        retry_attempts: retry
            .and_then(|r| r.maximum_retry_attempts())
            .unwrap_or(DEFAULT_ATTEMPTS),
        max_event_age_seconds: retry
            .and_then(|r| r.maximum_event_age_in_seconds())
            .unwrap_or(DEFAULT_EVENT_AGE),
        dead_letter_arn: target
            .and_then(|t| t.dead_letter_config())
            .and_then(|d| d.arn())
            .map(String::from),
        arn: out.arn().map(String::from),
        created: out.creation_date().and_then(from_dt),
    }))
}

fn build_target(s: &ScheduleSpec) -> Result<Target, AwsError> {
    let mut t = Target::builder()
        .arn(&s.target_arn)
        .role_arn(&s.role_arn)
        .input(&s.input)
        .retry_policy(
            RetryPolicy::builder()
                .maximum_retry_attempts(s.retry_attempts)
                .maximum_event_age_in_seconds(s.max_event_age_seconds)
                .build(),
        );
    if let Some(d) = &s.dead_letter_arn {
        t = t.dead_letter_config(DeadLetterConfig::builder().arn(d).build());
    }
    t.build().map_err(|e| AwsError {
        action: format!("building the target of schedule {}/{}", s.policy, s.name),
        code: "InvalidTarget".into(),
        message: e.to_string(),
        retryable: false,
        ambiguous: false,
    })
}

fn window(s: &ScheduleSpec) -> Result<FlexibleTimeWindow, AwsError> {
    let b = if s.flexible_window_minutes > 0 {
        FlexibleTimeWindow::builder()
            .mode(FlexibleTimeWindowMode::Flexible)
            .maximum_window_in_minutes(s.flexible_window_minutes)
    } else {
        FlexibleTimeWindow::builder().mode(FlexibleTimeWindowMode::Off)
    };
    b.build().map_err(|e| AwsError {
        action: "building the flexible time window".into(),
        code: "InvalidWindow".into(),
        message: e.to_string(),
        retryable: false,
        ambiguous: false,
    })
}

/// The ValidationException Scheduler returns while a freshly created role cannot be assumed.
fn iam_not_ready(e: &AwsError) -> bool {
    e.code == "ValidationException" && {
        let m = e.message.to_ascii_lowercase();
        m.contains("assume") || m.contains("execution role")
    }
}

/// Creates (`create = true`) or updates a schedule, sending every field (UpdateSchedule replaces
/// them all). Retries for up to two minutes while the execution role is not assumable yet.
pub async fn put_schedule(
    client: &aws_sdk_scheduler::Client,
    s: &ScheduleSpec,
    create: bool,
) -> Result<String, AwsError> {
    let verb = if create { "creating" } else { "updating" };
    let action = format!(
        "{verb} EventBridge Scheduler Schedule ({}/{})",
        s.policy, s.name
    );
    let state = if s.enabled {
        ScheduleState::Enabled
    } else {
        ScheduleState::Disabled
    };
    let started = Instant::now();
    let mut wait = Duration::from_secs(2);
    loop {
        // CreateSchedule and UpdateSchedule take the same fields on different builder types.
        macro_rules! send_with_fields {
            ($builder:expr) => {
                $builder
                    .group_name(group_name(&s.policy))
                    .name(&s.name)
                    .set_description(s.description.clone())
                    .schedule_expression(&s.expression)
                    .schedule_expression_timezone(&s.timezone)
                    .flexible_time_window(window(s)?)
                    .set_start_date(s.start_date.map(to_dt))
                    .set_end_date(s.end_date.map(to_dt))
                    .state(state.clone())
                    .target(build_target(s)?)
                    .send()
                    .await
                    .map(|o| o.schedule_arn().to_string())
                    .map_err(|e| aws_error(action.clone(), e))
            };
        }
        let result = if create {
            send_with_fields!(client.create_schedule())
        } else {
            send_with_fields!(client.update_schedule())
        };
        match result {
            Err(e) if iam_not_ready(&e) && started.elapsed() + wait < IAM_PROPAGATION => {
                tracing::warn!(error = %e, "execution role not assumable yet; retrying");
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(Duration::from_secs(20));
            }
            other => return other,
        }
    }
}

/// Deletes a schedule. Missing is success.
pub async fn delete_schedule(
    client: &aws_sdk_scheduler::Client,
    policy: &str,
    name: &str,
) -> Result<(), AwsError> {
    match client
        .delete_schedule()
        .group_name(group_name(policy))
        .name(name)
        .send()
        .await
    {
        Ok(_) => Ok(()),
        Err(e) => {
            let e = aws_error(
                format!("deleting EventBridge Scheduler Schedule ({policy}/{name})"),
                e,
            );
            if not_found(&e) { Ok(()) } else { Err(e) }
        }
    }
}
