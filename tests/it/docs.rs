//! Building documents and storing them in Scheduler the way the provider does.

use aws_sdk_scheduler::types::{FlexibleTimeWindow, FlexibleTimeWindowMode, ScheduleState, Target};
use ebssnap::aws::Clients;
use ebssnap::core::doc::{self, PolicyDocument, TargetDocument};
use serde_json::{Value, json};

pub fn policy(name: &str, days: u32, min: u32) -> Value {
    json!({"ebssnap": 1, "kind": "policy", "policy": name,
           "retention": {"days": days, "min_snapshots": min, "max_snapshots": null},
           "tags": {"copy_volume_tags": true, "copy_instance_tags": false, "extra": {"Backup": "ebssnap"}}})
}

pub fn target(policy: &str, name: &str, select: Value) -> Value {
    json!({"ebssnap": 1, "kind": "target", "policy": policy, "target": name, "select": select})
}

/// The `n`-th most recent fire time (0 = the latest) of the schedule `store_target` writes
/// (`cron(0 5 * * ? *)`, UTC): a scheduled time the Lambda accepts from that schedule.
pub fn recent_fire(n: usize) -> String {
    let expr = ebssnap::core::schedule::parse(TARGET_SCHEDULE).expect("valid expression");
    let now = jiff::Timestamp::now();
    let from = now - jiff::SignedDuration::from_hours(24 * (n as i64 + 2));
    let fires: Vec<jiff::Timestamp> =
        ebssnap::core::schedule::next_fires(&expr, &jiff::tz::TimeZone::UTC, from, n + 4)
            .into_iter()
            .filter(|t| *t <= now)
            .collect();
    fires[fires.len() - 1 - n]
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

/// The schedule expression of every target `store_target` writes.
pub const TARGET_SCHEDULE: &str = "cron(0 5 * * ? *)";

pub fn with_run(mut doc: Value, scheduled_time: &str) -> Value {
    doc["invocation"] = json!({"scheduled_time": scheduled_time});
    doc
}

pub fn p(v: &Value) -> PolicyDocument {
    doc::parse_policy(&v.to_string()).expect("valid policy document")
}

pub fn t(v: &Value) -> TargetDocument {
    doc::parse_target(&v.to_string()).expect("valid target document")
}

/// Creates the group `ebssnap-<policy>` with its `_policy` schedule, as the provider does.
pub async fn store_policy(c: &Clients, doc: &Value) {
    store_policy_every(c, doc, "rate(1 day)").await;
}

/// A policy whose sweep schedule (`_policy`) is `expr`.
pub async fn store_policy_every(c: &Clients, doc: &Value, expr: &str) {
    let name = doc["policy"].as_str().unwrap();
    c.scheduler
        .create_schedule_group()
        .name(format!("ebssnap-{name}"))
        .send()
        .await
        .expect("CreateScheduleGroup");
    store(c, name, "_policy", doc, expr).await;
}

pub async fn store_target(c: &Clients, doc: &Value) {
    let p = doc["policy"].as_str().unwrap();
    let name = doc["target"].as_str().unwrap();
    store(c, p, name, doc, TARGET_SCHEDULE).await;
}

/// A target whose schedule is disabled (`enabled = false`).
pub async fn store_target_disabled(c: &Clients, doc: &Value) {
    let p = doc["policy"].as_str().unwrap();
    let name = doc["target"].as_str().unwrap();
    store_in_state(c, p, name, doc, TARGET_SCHEDULE, ScheduleState::Disabled).await;
}

/// A policy's `_restore_test` schedule (on the targets' schedule, so `recent_fire` dates work).
pub async fn store_restore_test(c: &Clients, policy: &str, sample: u32) {
    let d = json!({"ebssnap": 1, "kind": "restore_test", "policy": policy, "sample": sample,
                   "timeout_minutes": 5});
    store(c, policy, "_restore_test", &d, TARGET_SCHEDULE).await;
}

async fn store(c: &Clients, policy: &str, name: &str, doc: &Value, expr: &str) {
    store_in_state(c, policy, name, doc, expr, ScheduleState::Enabled).await;
}

async fn store_in_state(
    c: &Clients,
    policy: &str,
    name: &str,
    doc: &Value,
    expr: &str,
    state: ScheduleState,
) {
    c.scheduler
        .create_schedule()
        .group_name(format!("ebssnap-{policy}"))
        .name(name)
        .schedule_expression(expr)
        .state(state)
        .flexible_time_window(
            FlexibleTimeWindow::builder()
                .mode(FlexibleTimeWindowMode::Off)
                .build()
                .unwrap(),
        )
        .target(
            Target::builder()
                .arn("arn:aws:lambda:us-east-1:123456789012:function:ebssnap")
                .role_arn("arn:aws:iam::123456789012:role/ebssnap-scheduler")
                .input(doc.to_string())
                .build()
                .unwrap(),
        )
        .send()
        .await
        .expect("CreateSchedule");
}
