//! EventBridge Scheduler: where the policy and target documents live (DESIGN §2).

use super::aws_error;
use crate::error::AwsError;

/// The schedule that stores a policy's document and fires its sweep.
pub const POLICY_SCHEDULE: &str = "_policy";

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
                    .filter(|n| *n != POLICY_SCHEDULE)
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
