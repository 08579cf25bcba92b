//! The provider through the real `terraform` CLI against moto (docs/design.md §9, layer 3): lifecycle of
//! each resource, import (command and `import {}` blocks), drift, validation with attribute paths,
//! the documents the runner reads, and schema descriptions.

use ebssnap::aws::scheduler;
use ebssnap::core::doc;
use serde_json::{Value, json};

use crate::cli::ebssnap;
use crate::fleet;
use crate::moto::Moto;
use crate::tf::{Tf, Version};

/// Plan output with runs of spaces folded, so alignment does not matter.
fn squash(s: &str) -> String {
    s.split(' ')
        .filter(|w| !w.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

macro_rules! setup {
    () => {
        setup!(Version::Default)
    };
    ($v:expr) => {{
        let Some(m) = Moto::start() else { return };
        let Some(tf) = Tf::with(Some(&m), $v) else {
            return;
        };
        (m, tf)
    }};
}

const POLICY: &str = r#"
resource "ebssnap_policy" "std" {
  name           = "std"
  description    = "standard"
  retention_days = 14
  min_snapshots  = 3
  snapshot_tags  = { Backup = "ebssnap" }
  tags           = { Team = "ops" }
}
"#;

#[tokio::test]
async fn policy_lifecycle_apply_import_update_replace_drift_destroy() {
    policy_lifecycle(Version::Default).await;
}

#[tokio::test]
async fn policy_lifecycle_on_terraform_1_15() {
    policy_lifecycle(Version::V115).await;
}

async fn policy_lifecycle(v: Version) {
    let (m, tf) = setup!(v);
    if let Version::V115 = v {
        let version = tf.run(&["version"]);
        assert!(
            version.stdout.contains("Terraform v1.15"),
            "{}",
            version.stdout
        );
    }
    let c = m.clients().await;
    tf.write(POLICY);
    tf.apply();
    tf.assert_no_changes();

    // In AWS: the group (tagged) and the _policy schedule holding the documented document.
    let group = scheduler::get_group(&c.scheduler, "std")
        .await
        .unwrap()
        .expect("group exists");
    assert_eq!(group.tags.get("Team").map(String::as_str), Some("ops"));
    let sched = scheduler::get_schedule(&c.scheduler, "std", "_policy")
        .await
        .unwrap()
        .expect("_policy exists");
    assert_eq!(sched.expression, "rate(1 day)");
    assert!(sched.enabled);
    assert_eq!(sched.description.as_deref(), Some("standard"));
    let input: Value = serde_json::from_str(&sched.input).unwrap();
    assert_eq!(
        input,
        json!({"ebssnap": 1, "kind": "policy", "policy": "std",
               "retention": {"days": 14, "min_snapshots": 3, "max_snapshots": null},
               "tags": {"copy_volume_tags": true, "copy_instance_tags": false, "extra": {"Backup": "ebssnap"}},
               "orphans": null, "crash_consistent": false, "notify": null,
               "invocation": {"scheduled_time": "<aws.scheduler.scheduled-time>",
                              "execution_id": "<aws.scheduler.execution-id>",
                              "attempt": "<aws.scheduler.attempt-number>",
                              "schedule_arn": "<aws.scheduler.schedule-arn>"}})
    );

    // Import into a fresh state: the plan is empty.
    let fresh = Tf::with(Some(&m), v).unwrap();
    fresh.write(POLICY);
    let imp = fresh.run(&["import", "ebssnap_policy.std", "std"]);
    assert_eq!(imp.code, 0, "{}{}", imp.stdout, imp.stderr);
    fresh.assert_no_changes();
    drop(fresh);

    // Update in place.
    tf.write(&POLICY.replace("retention_days = 14", "retention_days = 30"));
    let plan = tf.plan();
    assert_eq!(plan.code, 2);
    assert!(
        squash(&plan.stdout).contains("~ retention_days = 14 -> 30"),
        "{}",
        plan.stdout
    );
    assert!(
        squash(&plan.stdout).contains("1 to change"),
        "{}",
        plan.stdout
    );
    tf.apply();
    let sched = scheduler::get_schedule(&c.scheduler, "std", "_policy")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(doc::parse_policy(&sched.input).unwrap().rules().days, 30);
    tf.assert_no_changes();

    // A snapshot that must survive everything below.
    let vol = fleet::volume(&c, &[]).await;
    let snap = fleet::manual_snapshot(
        &c,
        &vol,
        &[("ebssnap:policy", "std"), ("ebssnap:target", "web")],
    )
    .await;

    // Edited outside Terraform: the plan shows the drift.
    let mut edited = scheduler::get_schedule(&c.scheduler, "std", "_policy")
        .await
        .unwrap()
        .unwrap();
    edited.input = edited.input.replace("\"days\":30", "\"days\":7");
    scheduler::put_schedule(&c.scheduler, &edited, false)
        .await
        .unwrap();
    let plan = tf.plan();
    assert_eq!(plan.code, 2);
    assert!(
        squash(&plan.stdout).contains("~ retention_days = 7 -> 30"),
        "{}",
        plan.stdout
    );
    tf.apply();

    // Deleted outside Terraform: the next plan creates it again.
    scheduler::delete_group(&c.scheduler, "std").await.unwrap();
    let plan = tf.plan();
    assert!(
        squash(&plan.stdout).contains("will be created"),
        "{}",
        plan.stdout
    );
    tf.apply();
    assert!(
        scheduler::get_schedule(&c.scheduler, "std", "_policy")
            .await
            .unwrap()
            .is_some()
    );

    // Renaming forces a replacement.
    tf.write(
        &POLICY
            .replace("name           = \"std\"", "name           = \"gold\"")
            .replace("retention_days = 14", "retention_days = 30"),
    );
    let plan = tf.plan();
    assert!(
        squash(&plan.stdout).contains("must be replaced"),
        "{}",
        plan.stdout
    );
    assert!(
        squash(&plan.stdout).contains("forces replacement"),
        "{}",
        plan.stdout
    );
    tf.apply();
    assert!(
        scheduler::get_group(&c.scheduler, "std")
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        scheduler::get_group(&c.scheduler, "gold")
            .await
            .unwrap()
            .is_some()
    );
    tf.assert_no_changes();

    // Destroy: gone from AWS, every snapshot still there.
    let out = tf.run(&["destroy", "-auto-approve"]);
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    assert!(
        scheduler::get_group(&c.scheduler, "gold")
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        fleet::snapshots(&c).await.contains_key(&snap),
        "destroy never deletes snapshots"
    );
}

const TARGET: &str = r#"
resource "ebssnap_policy" "std" {
  name           = "std"
  retention_days = 14
}
resource "ebssnap_target" "web" {
  policy   = ebssnap_policy.std.name
  name     = "web"
  schedule = "cron(0 5 * * ? *)"
  timezone = "Europe/London"
  start_date = "2030-01-01T00:00:00Z"
  select {
    instance_names = ["web-*"]
    instance_tags  = { Env = "prod" }
  }
  exclude {
    root_volumes = true
  }
  retention_days = 30
}
"#;

#[tokio::test]
async fn target_lifecycle_apply_import_update_replace_drift_destroy() {
    target_lifecycle(Version::Default).await;
}

#[tokio::test]
async fn target_lifecycle_on_terraform_1_15() {
    target_lifecycle(Version::V115).await;
}

async fn target_lifecycle(v: Version) {
    let (m, tf) = setup!(v);
    if let Version::V115 = v {
        let version = tf.run(&["version"]);
        assert!(
            version.stdout.contains("Terraform v1.15"),
            "{}",
            version.stdout
        );
    }
    let c = m.clients().await;
    tf.write(TARGET);
    tf.apply();
    tf.assert_no_changes();

    let sched = scheduler::get_schedule(&c.scheduler, "std", "web")
        .await
        .unwrap()
        .expect("schedule exists");
    assert_eq!(sched.expression, "cron(0 5 * * ? *)");
    assert_eq!(sched.timezone, "Europe/London");
    assert_eq!(
        sched.start_date.map(|t| t.to_string()).as_deref(),
        Some("2030-01-01T00:00:00Z")
    );
    assert_eq!(
        sched.target_arn,
        "arn:aws:lambda:us-east-1:123456789012:function:ebssnap"
    );
    let input: Value = serde_json::from_str(&sched.input).unwrap();
    assert_eq!(
        input,
        json!({"ebssnap": 1, "kind": "target", "policy": "std", "target": "web",
               "select": {"all_volumes": false, "asg_names": null, "instance_names": ["web-*"],
                          "instance_ids": null, "instance_tags": {"Env": "prod"},
                          "volume_ids": null, "volume_tags": null, "instance_filters": null},
               "exclude": {"volume_ids": null, "volume_tags": null, "root_volumes": true,
                           "instance_ids": null},
               "retention": {"days": 30, "min_snapshots": null, "max_snapshots": null},
               "invocation": {"scheduled_time": "<aws.scheduler.scheduled-time>",
                              "execution_id": "<aws.scheduler.execution-id>",
                              "attempt": "<aws.scheduler.attempt-number>",
                              "schedule_arn": "<aws.scheduler.schedule-arn>"}})
    );

    // Import both into a fresh state.
    let fresh = Tf::with(Some(&m), v).unwrap();
    fresh.write(TARGET);
    for (addr, id) in [
        ("ebssnap_policy.std", "std"),
        ("ebssnap_target.web", "std/web"),
    ] {
        let imp = fresh.run(&["import", addr, id]);
        assert_eq!(imp.code, 0, "{}{}", imp.stdout, imp.stderr);
    }
    fresh.assert_no_changes();
    let bad = fresh.run(&["import", "ebssnap_target.web", "std"]);
    assert_ne!(bad.code, 0);
    assert!(
        bad.stderr.contains("expected POLICY/TARGET"),
        "{}",
        bad.stderr
    );
    drop(fresh);

    // Update in place: schedule, selector, retention.
    tf.write(
        &TARGET
            .replace("cron(0 5 * * ? *)", "cron(30 2 ? * MON-FRI *)")
            .replace(
                "instance_names = [\"web-*\"]",
                "instance_names = [\"web-*\", \"api-*\"]",
            )
            .replace(
                "retention_days = 30",
                "retention_days = 45\n  allow_empty = true",
            ),
    );
    let plan = tf.plan();
    assert_eq!(plan.code, 2);
    for want in [
        "~ schedule",
        "~ retention_days = 30 -> 45",
        "~ allow_empty = false -> true",
        "+ \"api-*\"",
        "update in-place",
        "1 to change",
    ] {
        assert!(
            squash(&plan.stdout).contains(want),
            "missing {want:?} in:\n{}",
            plan.stdout
        );
    }
    tf.apply();
    let sched = scheduler::get_schedule(&c.scheduler, "std", "web")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(sched.expression, "cron(30 2 ? * MON-FRI *)");
    let d = doc::parse_target(&sched.input).unwrap();
    assert_eq!(d.select.instance_names(), ["web-*", "api-*"]);
    assert_eq!(d.allow_empty, Some(true));
    tf.assert_no_changes();

    // Edited outside Terraform: drift shows.
    let mut edited = sched.clone();
    edited.expression = "rate(1 hour)".into();
    edited.enabled = false;
    scheduler::put_schedule(&c.scheduler, &edited, false)
        .await
        .unwrap();
    let plan = tf.plan();
    assert_eq!(plan.code, 2);
    assert!(
        squash(&plan.stdout)
            .contains("~ schedule = \"rate(1 hour)\" -> \"cron(30 2 ? * MON-FRI *)\""),
        "{}",
        plan.stdout
    );
    assert!(
        squash(&plan.stdout).contains("~ enabled = false -> true"),
        "{}",
        plan.stdout
    );
    tf.apply();

    // Deleted outside Terraform: recreated.
    scheduler::delete_schedule(&c.scheduler, "std", "web")
        .await
        .unwrap();
    let plan = tf.plan();
    assert!(
        squash(&plan.stdout).contains("ebssnap_target.web will be created"),
        "{}",
        plan.stdout
    );
    tf.apply();

    // Renaming forces a replacement.
    tf.write(&TARGET.replace("name     = \"web\"", "name     = \"web2\""));
    let plan = tf.plan();
    assert!(
        squash(&plan.stdout).contains("ebssnap_target.web must be replaced"),
        "{}",
        plan.stdout
    );
    tf.apply();
    assert!(
        scheduler::get_schedule(&c.scheduler, "std", "web")
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        scheduler::get_schedule(&c.scheduler, "std", "web2")
            .await
            .unwrap()
            .is_some()
    );

    let vol = fleet::volume(&c, &[]).await;
    let snap = fleet::manual_snapshot(
        &c,
        &vol,
        &[("ebssnap:policy", "std"), ("ebssnap:target", "web2")],
    )
    .await;
    let out = tf.run(&["destroy", "-auto-approve"]);
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    assert!(
        scheduler::get_schedule(&c.scheduler, "std", "web2")
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        scheduler::get_group(&c.scheduler, "std")
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        fleet::snapshots(&c).await.contains_key(&snap),
        "destroy never deletes snapshots"
    );
}

#[tokio::test]
async fn import_blocks_generate_configuration_that_applies_without_changes() {
    let (m, tf) = setup!();
    tf.write(TARGET);
    tf.apply();
    let gen_dir = Tf::new(Some(&m)).unwrap();
    gen_dir.write(
        r#"
import {
  to = ebssnap_policy.std
  id = "std"
}
import {
  to = ebssnap_target.web
  id = "std/web"
}
"#,
    );
    let out = gen_dir.run(&["plan", "-generate-config-out=gen.tf"]);
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    assert!(
        out.stdout
            .contains("2 to import, 0 to add, 0 to change, 0 to destroy"),
        "{}",
        out.stdout
    );
    let generated = std::fs::read_to_string(gen_dir.dir.join("gen.tf")).unwrap();
    assert!(
        generated.contains("resource \"ebssnap_target\" \"web\""),
        "{generated}"
    );
    let applied = gen_dir.apply();
    assert!(
        applied
            .stdout
            .contains("2 imported, 0 added, 0 changed, 0 destroyed"),
        "{}",
        applied.stdout
    );
    gen_dir.assert_no_changes();
}

#[tokio::test]
async fn the_runner_reads_what_the_provider_wrote() {
    let (m, tf) = setup!();
    let c = m.clients().await;
    let (_, root) = fleet::instance(&c, &[("Name", "web-1"), ("Env", "prod")]).await;
    let data = fleet::volume(&c, &[("Role", "data")]).await;
    let (inst, _) = fleet::instance(&c, &[("Name", "web-2"), ("Env", "prod")]).await;
    fleet::attach(&c, &data, &inst, "/dev/sdf").await;
    tf.write(
        r#"
resource "ebssnap_policy" "std" {
  name           = "std"
  retention_days = 14
  snapshot_tags  = { Backup = "ebssnap" }
}
resource "ebssnap_target" "web" {
  policy = ebssnap_policy.std.name
  name   = "web"
  select {
    instance_names = ["web-*"]
  }
  exclude {
    root_volumes = true
  }
}
data "ebssnap_volumes" "web" {
  select {
    instance_names = ["web-*"]
  }
  exclude {
    root_volumes = true
  }
}
output "ids" {
  value = data.ebssnap_volumes.web.volume_ids
}
data "ebssnap_volumes" "missing" {
  select {
    asg_names = ["gone-asg"]
  }
}
output "missing_warnings" {
  value = data.ebssnap_volumes.missing.warnings
}
"#,
    );
    let out = tf.apply();
    let all = squash(&format!("{}{}", out.stdout, out.stderr));
    assert!(
        all.contains("Selector reference resolves to nothing") && all.contains("gone-asg"),
        "the data source warns at plan time: {all}"
    );
    assert!(
        out.stdout.contains(&format!("\"{data}\"")),
        "data source output: {}",
        out.stdout
    );
    assert!(
        !out.stdout.contains(&root),
        "root volumes are excluded: {}",
        out.stdout
    );
    let run = ebssnap(
        &m.env(),
        &["run", "--policy", "std", "--target", "web", "--json"],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let report = run.json();
    assert_eq!(report["created"].as_array().unwrap().len(), 1);
    assert_eq!(report["created"][0]["volume_id"], data.as_str());
    let snaps = fleet::snapshots(&c).await;
    let (_, tags) = snaps
        .values()
        .find(|(v, _)| *v == data)
        .expect("snapshot of the data volume");
    assert_eq!(tags["Backup"], "ebssnap");
    assert_eq!(tags["Role"], "data");
    assert_eq!(tags["ebssnap:target"], "web");
}

#[tokio::test]
async fn every_attribute_has_a_description() {
    let Some(m) = Moto::start() else { return };
    let Some(tf) = Tf::new(Some(&m)) else { return };
    tf.write("");
    let out = tf.run(&["providers", "schema", "-json"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let schema: Value = serde_json::from_str(&out.stdout).unwrap();
    let p = &schema["provider_schemas"]["registry.terraform.io/rackerlabs/ebssnap"];
    let mut missing = Vec::new();
    fn walk(path: &str, block: &Value, missing: &mut Vec<String>) {
        if block["description"].as_str().unwrap_or("").is_empty() {
            missing.push(path.to_string());
        }
        for (name, a) in block["attributes"].as_object().into_iter().flatten() {
            let d = a["description"].as_str().unwrap_or("");
            if d.is_empty() || d == "empty" {
                missing.push(format!("{path}.{name}"));
            }
        }
        for (name, b) in block["block_types"].as_object().into_iter().flatten() {
            walk(&format!("{path}.{name}"), &b["block"], missing);
        }
    }
    walk("provider", &p["provider"]["block"], &mut missing);
    for kind in ["resource_schemas", "data_source_schemas"] {
        for (name, s) in p[kind].as_object().expect(kind) {
            walk(name, &s["block"], &mut missing);
        }
    }
    assert_eq!(p["resource_schemas"].as_object().unwrap().len(), 2);
    assert!(
        missing.is_empty(),
        "attributes without a description: {missing:?}"
    );
}

#[tokio::test]
async fn provider_block_settings_endpoint_region_assume_role_and_default_tags() {
    let Some(m) = Moto::start() else { return };
    let Some(tf) = Tf::new(None) else { return };
    // No AWS_ENDPOINT_URL here: the provider block points at moto; credentials go through STS.
    std::fs::write(
        tf.dir.join("main.tf"),
        format!(
            r#"
terraform {{
  required_providers {{
    ebssnap = {{ source = "rackerlabs/ebssnap" }}
  }}
}}
provider "ebssnap" {{
  region             = "us-east-1"
  endpoint_url       = "{endpoint}"
  runner_arn         = "arn:aws:lambda:us-east-1:123456789012:function:ebssnap"
  scheduler_role_arn = "arn:aws:iam::123456789012:role/ebssnap-scheduler"
  default_tags       = {{ ManagedBy = "terraform", Team = "default" }}
  assume_role {{
    role_arn     = "arn:aws:iam::123456789012:role/deployer"
    session_name = "ebssnap-test"
  }}
}}
resource "ebssnap_policy" "std" {{
  name           = "std"
  retention_days = 7
  tags           = {{ Team = "ops" }}
}}
"#,
            endpoint = m.endpoint()
        ),
    )
    .unwrap();
    let out = tf.run(&["apply", "-auto-approve"]);
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    let c = m.clients().await;
    let group = scheduler::get_group(&c.scheduler, "std")
        .await
        .unwrap()
        .expect("group in moto");
    assert_eq!(
        group.tags.get("ManagedBy").map(String::as_str),
        Some("terraform")
    );
    assert_eq!(
        group.tags.get("Team").map(String::as_str),
        Some("ops"),
        "resource tags win"
    );
    tf.assert_no_changes();
    let show = tf.run(&["state", "show", "ebssnap_policy.std"]);
    assert!(
        squash(&show.stdout).contains("\"ManagedBy\" = \"terraform\""),
        "{}",
        show.stdout
    );
}

#[tokio::test]
async fn schedule_writes_wait_for_iam_propagation() {
    use crate::proxy::{Action, Proxy};
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    let Some(m) = Moto::start() else { return };
    let c = m.clients().await;
    c.scheduler
        .create_schedule_group()
        .name("ebssnap-std")
        .send()
        .await
        .unwrap();
    let refused = Arc::new(AtomicUsize::new(0));
    let invalid = Arc::new(AtomicUsize::new(0));
    let (n, bad_calls) = (refused.clone(), invalid.clone());
    let proxy = Proxy::start(
        m.port,
        Box::new(move |method, url, _| {
            if method == "POST" && url.starts_with("/schedules/bad") {
                bad_calls.fetch_add(1, Ordering::SeqCst);
                return Action::Respond(
                    400,
                    "application/json",
                    r#"{"__type":"ValidationException","message":"Invalid Schedule Expression nonsense."}"#.into(),
                );
            }
            if method == "POST"
                && url.starts_with("/schedules/")
                && n.fetch_add(1, Ordering::SeqCst) < 1
            {
                return Action::Respond(
                    400,
                    "application/json",
                    r#"{"__type":"ValidationException","message":"The execution role you provide must allow AWS EventBridge Scheduler to assume the role."}"#.into(),
                );
            }
            Action::Forward
        }),
    );
    let sdk = ebssnap::aws::config_loader(&ebssnap::aws::ConnectOptions {
        region: Some("us-east-1".into()),
        endpoint_url: Some(proxy.endpoint()),
        max_attempts: Some(1),
        ..Default::default()
    })
    .credentials_provider(aws_sdk_ec2::config::Credentials::new(
        "testing", "testing", None, None, "t",
    ))
    .load()
    .await;
    let via_proxy = aws_sdk_scheduler::Client::new(&sdk);
    let spec = scheduler::ScheduleSpec {
        policy: "std".into(),
        name: "web".into(),
        description: None,
        expression: "rate(1 day)".into(),
        timezone: "UTC".into(),
        flexible_window_minutes: 0,
        start_date: None,
        end_date: None,
        enabled: true,
        target_arn: "arn:aws:lambda:us-east-1:123456789012:function:ebssnap".into(),
        role_arn: "arn:aws:iam::123456789012:role/new-role".into(),
        input: "{}".into(),
        retry_attempts: 185,
        max_event_age_seconds: 86_400,
        dead_letter_arn: None,
        arn: None,
        created: None,
    };
    scheduler::put_schedule(&via_proxy, &spec, true)
        .await
        .expect("created after the role became assumable");
    assert_eq!(
        refused.load(Ordering::SeqCst),
        2,
        "one refusal, then success"
    );
    assert!(
        scheduler::get_schedule(&c.scheduler, "std", "web")
            .await
            .unwrap()
            .is_some()
    );
    // Other validation errors fail at once, with the action, the code and AWS's message.
    let bad = scheduler::ScheduleSpec {
        expression: "nonsense".into(),
        name: "bad".into(),
        ..spec
    };
    let err = scheduler::put_schedule(&via_proxy, &bad, true)
        .await
        .unwrap_err();
    assert_eq!(err.code, "ValidationException");
    assert_eq!(
        err.to_string(),
        "creating EventBridge Scheduler Schedule (std/bad): ValidationException: Invalid Schedule Expression nonsense."
    );
    assert_eq!(invalid.load(Ordering::SeqCst), 1, "not retried");
}

#[tokio::test]
async fn the_iam_policy_data_source_renders_both_roles() {
    let (_m, tf) = setup!();
    tf.write(
        r#"
data "ebssnap_iam_policy" "this" {
  policy_names = ["std"]
}
output "runner" {
  value = data.ebssnap_iam_policy.this.runner_policy_json
}
output "scheduler" {
  value = data.ebssnap_iam_policy.this.scheduler_policy_json
}
output "trust" {
  value = data.ebssnap_iam_policy.this.scheduler_assume_role_policy_json
}
"#,
    );
    tf.apply();
    let out = tf.run(&["output", "-json"]);
    let v: Value = serde_json::from_str(&out.stdout).unwrap();
    let runner: Value = serde_json::from_str(v["runner"]["value"].as_str().unwrap()).unwrap();
    let sched: Value = serde_json::from_str(v["scheduler"]["value"].as_str().unwrap()).unwrap();
    let trust: Value = serde_json::from_str(v["trust"]["value"].as_str().unwrap()).unwrap();
    let del = runner["Statement"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["Action"] == "ec2:DeleteSnapshot")
        .unwrap();
    assert_eq!(
        del["Condition"]["StringEquals"]["ec2:ResourceTag/ebssnap:policy"],
        json!(["std"])
    );
    // The provider's runner_arn is the default target of the Scheduler role.
    assert_eq!(
        sched["Statement"][0]["Resource"][0],
        "arn:aws:lambda:us-east-1:123456789012:function:ebssnap"
    );
    assert_eq!(
        trust["Statement"][0]["Principal"]["Service"],
        "scheduler.amazonaws.com"
    );
    tf.assert_no_changes();
}

#[test]
fn examples_are_terraform_fmt_clean() {
    let Some(bin) = crate::tf::terraform_binary() else {
        return;
    };
    let out = std::process::Command::new(bin)
        .args(["fmt", "-check", "-recursive", "-diff", "-no-color"])
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/examples"))
        .env("CHECKPOINT_DISABLE", "1")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "terraform fmt would change:\n{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

#[tokio::test]
async fn changing_the_providers_runner_arn_re_points_every_schedule() {
    let (m, tf) = setup!();
    let c = m.clients().await;
    tf.write(TARGET);
    tf.apply();
    let new_runner = "arn:aws:lambda:us-east-1:123456789012:function:ebssnap-v2";
    let config = std::fs::read_to_string(tf.dir.join("main.tf"))
        .unwrap()
        .replace(
            "arn:aws:lambda:us-east-1:123456789012:function:ebssnap\"",
            &format!("{new_runner}\""),
        );
    std::fs::write(tf.dir.join("main.tf"), config).unwrap();
    let plan = tf.plan();
    assert_eq!(plan.code, 2);
    let flat = squash(&plan.stdout);
    assert!(flat.contains(&format!("~ runner_arn = \"arn:aws:lambda:us-east-1:123456789012:function:ebssnap\" -> \"{new_runner}\"")), "{}", plan.stdout);
    assert!(flat.contains("2 to change"), "{}", plan.stdout);
    tf.apply();
    for name in ["_policy", "web"] {
        let s = scheduler::get_schedule(&c.scheduler, "std", name)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(s.target_arn, new_runner, "{name}");
    }
    tf.assert_no_changes();
}

#[tokio::test]
async fn values_unknown_at_plan_time_are_planned_and_applied() {
    let (m, tf) = setup!();
    let c = m.clients().await;
    let vol = fleet::volume(&c, &[]).await;
    // terraform_data's output is unknown until apply: the selector and the schedule are too.
    tf.write(&format!(
        r#"
resource "terraform_data" "later" {{
  input = {{ volume = "{vol}", hour = "3", policy = "std" }}
}}
resource "ebssnap_policy" "std" {{
  name           = terraform_data.later.output.policy
  retention_days = 14
  sweep_enabled  = false
}}
resource "ebssnap_target" "t" {{
  policy   = ebssnap_policy.std.name
  name     = "t"
  schedule = "cron(0 ${{terraform_data.later.output.hour}} * * ? *)"
  select {{
    volume_ids = [terraform_data.later.output.volume]
  }}
}}
"#
    ));
    let plan = tf.plan();
    assert_eq!(plan.code, 2);
    assert!(
        plan.stdout.contains("(known after apply)"),
        "{}",
        plan.stdout
    );
    tf.apply();
    tf.assert_no_changes();
    let s = scheduler::get_schedule(&c.scheduler, "std", "t")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(s.expression, "cron(0 3 * * ? *)");
    assert_eq!(
        doc::parse_target(&s.input).unwrap().select.volume_ids(),
        std::slice::from_ref(&vol)
    );
    let p = scheduler::get_schedule(&c.scheduler, "std", "_policy")
        .await
        .unwrap()
        .unwrap();
    assert!(
        !p.enabled,
        "sweep_enabled = false disables the _policy schedule"
    );
}

#[tokio::test]
async fn creating_over_an_existing_group_is_refused_and_points_to_import() {
    let (m, tf) = setup!();
    let c = m.clients().await;
    c.scheduler
        .create_schedule_group()
        .name("ebssnap-std")
        .send()
        .await
        .unwrap();
    tf.write(POLICY);
    let out = tf.run(&["apply", "-auto-approve"]);
    assert_ne!(out.code, 0);
    let flat = crate::tf::squash_lines(&out.stderr);
    // A provider precondition: a diagnostic on the attribute, not an invented AWS error code.
    assert!(
        flat.contains("Error: Policy already exists"),
        "{}",
        out.stderr
    );
    assert!(
        flat.contains("schedule group ebssnap-std already exists"),
        "{}",
        out.stderr
    );
    assert!(!flat.contains("ConflictException"), "{}", out.stderr);
    assert!(
        flat.contains("terraform import ebssnap_policy.<name> std"),
        "{}",
        out.stderr
    );
    assert!(flat.contains("with ebssnap_policy.std"), "{}", out.stderr);
}

#[tokio::test]
async fn a_target_of_a_missing_policy_fails_on_its_policy_attribute() {
    let (_m, tf) = setup!();
    tf.write(
        r#"
resource "ebssnap_target" "web" {
  policy = "nope"
  name   = "web"
  select {
    volume_ids = ["vol-0123456789abcdef0"]
  }
}
"#,
    );
    let out = tf.run(&["apply", "-auto-approve"]);
    assert_ne!(out.code, 0);
    let flat = crate::tf::squash_lines(&out.stderr);
    assert!(
        flat.contains("Error: Policy does not exist"),
        "{}",
        out.stderr
    );
    assert!(
        flat.contains("create the ebssnap_policy first"),
        "{}",
        out.stderr
    );
    assert!(
        !flat.contains("ResourceNotFoundException"),
        "{}",
        out.stderr
    );
}

#[tokio::test]
async fn secret_and_sns_channels_round_trip_and_no_secret_value_reaches_terraform() {
    let (m, tf) = setup!();
    let c = m.clients().await;
    let value = r#"{"url": "https://hooks.example.com/T0K3N-5150?key=QK-8128", "signing_secret": "sig-2718"}"#;
    let secret = c
        .secretsmanager
        .create_secret()
        .name("ebssnap/hook")
        .secret_string(value)
        .send()
        .await
        .unwrap();
    let arn = secret.arn().unwrap().to_string();
    let topic = c.sns.create_topic().name("failures").send().await.unwrap();
    let topic = topic.topic_arn().unwrap().to_string();
    tf.write(&format!(
        r#"
resource "ebssnap_policy" "std" {{
  name                       = "std"
  retention_days             = 14
  failure_webhook_secret_arn = "{arn}"
  failure_sns_topic_arn      = "{topic}"
}}
"#
    ));
    let applied = tf.apply();
    tf.assert_no_changes();
    let input = scheduler::get_input(&c.scheduler, "std", scheduler::POLICY_SCHEDULE)
        .await
        .unwrap()
        .unwrap();
    let d = doc::parse_policy(&input).unwrap();
    assert_eq!(d.webhook_secret_arn(), Some(arn.as_str()));
    assert_eq!(d.sns_topic_arn(), Some(topic.as_str()));
    assert_eq!(d.webhook_url(), None);

    // Import recovers both.
    let imported = Tf::new(Some(&m)).unwrap();
    imported.write(
        &std::fs::read_to_string(tf.dir.join("main.tf"))
            .unwrap()
            .replace(crate::tf::PROVIDER, ""),
    );
    let out = imported.run(&["import", "ebssnap_policy.std", "std"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    imported.assert_no_changes();

    let state = std::fs::read_to_string(tf.dir.join("terraform.tfstate")).unwrap();
    let plan = tf.run(&["plan"]);
    for leak in ["T0K3N-5150", "QK-8128", "sig-2718"] {
        for (what, text) in [
            ("state", &state),
            ("apply", &applied.stdout),
            ("plan", &plan.stdout),
            ("plan stderr", &plan.stderr),
        ] {
            assert!(!text.contains(leak), "{leak} in {what}");
        }
    }
}

#[tokio::test]
async fn a_restore_test_block_writes_its_schedule_imports_and_goes_away() {
    let (m, tf) = setup!();
    let c = m.clients().await;
    let with_block = r#"
resource "ebssnap_policy" "std" {
  name           = "std"
  retention_days = 14
  restore_test {
    schedule = "cron(0 4 ? * SUN *)"
    sample   = 3
  }
}
"#;
    tf.write(with_block);
    tf.apply();
    tf.assert_no_changes();
    let sched = scheduler::get_schedule(&c.scheduler, "std", scheduler::RESTORE_TEST_SCHEDULE)
        .await
        .unwrap()
        .expect("_restore_test exists");
    assert_eq!(sched.expression, "cron(0 4 ? * SUN *)");
    assert_eq!(sched.timezone, "UTC");
    let d = doc::parse_restore_test(&sched.input).unwrap();
    assert_eq!(
        (d.policy.as_str(), d.sample, d.timeout_minutes),
        ("std", 3, 30)
    );
    // Not a target: the runner's target listing leaves it out.
    let targets = scheduler::list_targets(&c.scheduler, "std").await.unwrap();
    assert_eq!(targets, Some(vec![]));

    // Import recovers the block.
    let fresh = Tf::new(Some(&m)).unwrap();
    fresh.write(with_block);
    let imp = fresh.run(&["import", "ebssnap_policy.std", "std"]);
    assert_eq!(imp.code, 0, "{}{}", imp.stdout, imp.stderr);
    fresh.assert_no_changes();
    drop(fresh);

    // Bad values fail the plan on the attribute.
    tf.write(&with_block.replace("sample   = 3", "sample   = 500"));
    let bad = tf.run(&["plan"]);
    assert_eq!(bad.code, 1, "{}", bad.stdout);
    assert!(
        squash(&bad.stderr).contains("sample must be between 1 and 50"),
        "{}",
        bad.stderr
    );

    // Removing the block removes the schedule, nothing else.
    tf.write(&with_block.replace(
        "  restore_test {\n    schedule = \"cron(0 4 ? * SUN *)\"\n    sample   = 3\n  }\n",
        "",
    ));
    tf.apply();
    tf.assert_no_changes();
    assert!(
        scheduler::get_schedule(&c.scheduler, "std", scheduler::RESTORE_TEST_SCHEDULE)
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        scheduler::get_schedule(&c.scheduler, "std", scheduler::POLICY_SCHEDULE)
            .await
            .unwrap()
            .is_some()
    );
}

#[tokio::test]
async fn the_restore_points_data_source_lists_newest_first_and_names_the_newest_completed() {
    let (m, tf) = setup!();
    let c = m.clients().await;
    let vol = crate::fleet::volume(&c, &[("Backup", "yes")]).await;
    crate::docs::store_policy(&c, &crate::docs::policy("std", 7, 1)).await;
    let tgt = crate::docs::target("std", "web", json!({"volume_ids": [vol]}));
    crate::docs::store_target(&c, &tgt).await;
    for run in ["2026-12-01T05:00:00Z", "2026-12-02T05:00:00Z"] {
        crate::cli::run_keyed(&m.env(), "std", "web", run);
    }
    tf.write(&format!(
        r#"
data "ebssnap_restore_points" "v" {{
  volume_id = "{vol}"
}}
data "ebssnap_restore_points" "other" {{
  volume_id = "{vol}"
  policy    = "nope"
}}
data "ebssnap_restore_points" "west" {{
  volume_id = "{vol}"
  region    = "us-west-2"
}}
output "west" {{ value = data.ebssnap_restore_points.west }}
output "region" {{ value = data.ebssnap_restore_points.v.region }}
output "newest" {{ value = data.ebssnap_restore_points.v.newest }}
output "runs" {{ value = [for p in data.ebssnap_restore_points.v.restore_points : p.run] }}
output "other" {{ value = data.ebssnap_restore_points.other.newest }}
"#
    ));
    tf.apply();
    let out = tf.run(&["output", "-json"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let v: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(
        v["runs"]["value"],
        json!(["2026-12-02T05:00:00Z", "2026-12-01T05:00:00Z"])
    );
    let newest = &v["newest"]["value"];
    assert_eq!(newest["run"], "2026-12-02T05:00:00Z");
    assert_eq!(newest["policy"], "std");
    assert_eq!(newest["state"], "completed");
    assert_eq!(newest["size_gb"], 8);
    assert!(newest["snapshot_id"].as_str().unwrap().starts_with("snap-"));
    assert!(v["other"]["value"].is_null(), "{}", v["other"]);
    // Another Region: its own (here: none); the default is the provider's.
    assert_eq!(v["region"]["value"], "us-east-1");
    let west = &v["west"]["value"];
    assert_eq!(west["region"], "us-west-2");
    assert_eq!(west["restore_points"], json!([]), "{west}");
    assert!(west["newest"].is_null());
}

#[tokio::test]
async fn a_check_block_on_the_coverage_data_source_warns_in_plan_until_every_volume_is_protected() {
    let (m, tf) = setup!();
    let c = m.clients().await;
    let kept = crate::fleet::volume(&c, &[("Backup", "yes")]).await;
    let lonely = crate::fleet::volume(&c, &[("Name", "lonely")]).await;
    crate::docs::store_policy(&c, &crate::docs::policy("std", 7, 1)).await;
    crate::docs::store_target(
        &c,
        &crate::docs::target("std", "kept", json!({"volume_ids": [kept]})),
    )
    .await;
    let out = crate::cli::ebssnap(&m.env(), &["run", "--policy", "std", "--target", "kept"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    tf.write(
        r#"
data "ebssnap_coverage" "this" {}
data "ebssnap_coverage" "west" {
  region = "us-west-2"
}
check "every_volume_protected" {
  assert {
    condition     = data.ebssnap_coverage.this.unprotected_count == 0
    error_message = "Unprotected EBS volumes: ${join(", ", data.ebssnap_coverage.this.unprotected_volume_ids)}."
  }
}
output "this" { value = data.ebssnap_coverage.this }
output "west" { value = data.ebssnap_coverage.west.volume_count }
"#,
    );
    let plan = tf.run(&["plan"]);
    assert_eq!(
        plan.code, 0,
        "a failed check warns, it does not fail the plan: {}",
        plan.stderr
    );
    let text = squash(&format!("{}{}", plan.stdout, plan.stderr));
    assert!(
        text.contains("Check block assertion failed")
            && text.contains(&format!("Unprotected EBS volumes: {lonely}.")),
        "{text}"
    );
    tf.apply();
    let out = tf.run(&["output", "-json"]);
    let v: Value = serde_json::from_str(&out.stdout).unwrap();
    let this = &v["this"]["value"];
    assert_eq!(this["protected_count"], 1, "{this}");
    assert_eq!(this["unprotected_count"], 1);
    assert_eq!(this["unprotected_volume_ids"], json!([lonely]));
    assert_eq!(this["stale_volume_ids"], json!([]));
    assert_eq!(this["volume_count"], 2);
    assert_eq!(this["id"], "123456789012/us-east-1");
    assert_eq!(v["west"]["value"], 0, "another Region has its own volumes");

    // Protect it: the next plan is quiet.
    crate::docs::store_target(
        &c,
        &crate::docs::target("std", "lonely", json!({"volume_ids": [lonely]})),
    )
    .await;
    let out = crate::cli::ebssnap(&m.env(), &["run", "--policy", "std", "--target", "lonely"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let plan = tf.run(&["plan"]);
    assert_eq!(plan.code, 0, "{}", plan.stderr);
    assert!(
        !format!("{}{}", plan.stdout, plan.stderr).contains("Check block assertion failed"),
        "{}",
        plan.stdout
    );
}

#[tokio::test]
async fn a_targets_copy_retention_becomes_its_documents_copies_and_bad_ones_fail_plan() {
    let (m, tf) = setup!();
    let c = m.clients().await;
    let config = |blocks: &str| {
        format!(
            r#"
resource "ebssnap_policy" "std" {{
  name           = "std"
  retention_days = 14
  copy {{
    region        = "us-west-2"
    min_snapshots = 3
  }}
}}
resource "ebssnap_target" "db" {{
  policy   = ebssnap_policy.std.name
  name     = "db"
  schedule = "cron(0 5 * * ? *)"
  select {{
    volume_tags = {{ Backup = "yes" }}
  }}
  {blocks}
}}
"#
        )
    };
    let good = config(
        "copy_retention {\n region = \"us-west-2\"\n retention_days = 90\n min_snapshots = 7\n }",
    );
    tf.write(&good);
    tf.apply();
    tf.assert_no_changes();
    let spec = scheduler::get_schedule(&c.scheduler, "std", "db")
        .await
        .unwrap()
        .unwrap();
    let d: Value = serde_json::from_str(&spec.input).unwrap();
    assert_eq!(
        d["copies"],
        json!([{"region": "us-west-2", "retention_days": 90, "min_snapshots": 7,
                "max_snapshots": null}])
    );
    // Import recovers the blocks: an empty plan.
    let fresh = Tf::new(Some(&m)).unwrap();
    fresh.write(&good);
    for (addr, id) in [
        ("ebssnap_policy.std", "std"),
        ("ebssnap_target.db", "std/db"),
    ] {
        let imp = fresh.run(&["import", addr, id]);
        assert_eq!(imp.code, 0, "{}{}", imp.stdout, imp.stderr);
    }
    fresh.assert_no_changes();
    drop(fresh);
    // Without the blocks the document has no `copies`.
    tf.write(&config(""));
    tf.apply();
    tf.assert_no_changes();
    let spec = scheduler::get_schedule(&c.scheduler, "std", "db")
        .await
        .unwrap()
        .unwrap();
    let d: Value = serde_json::from_str(&spec.input).unwrap();
    assert!(d.get("copies").is_none(), "{d}");
    // Bad blocks fail plan, naming the block.
    for (block, want) in [
        (
            "copy_retention {\n region = \"us-west-2\"\n }\n copy_retention {\n region = \"us-west-2\"\n }",
            "copy_retention[1].region: us-west-2 is listed twice",
        ),
        (
            "copy_retention {\n region = \"mars\"\n }",
            "\"mars\" is not an AWS Region name",
        ),
        (
            "copy_retention {\n region = \"us-west-2\"\n min_snapshots = 5\n max_snapshots = 2\n }",
            "max_snapshots",
        ),
    ] {
        tf.write(&config(block));
        let out = tf.run(&["plan"]);
        assert_eq!(out.code, 1, "{block}: {}", out.stdout);
        let err = crate::tf::squash_lines(&out.stderr);
        assert!(
            err.contains(want) && err.contains("copy_retention"),
            "{block}: {}",
            out.stderr
        );
    }
}

#[tokio::test]
async fn copy_and_share_blocks_become_the_policy_documents_copies_and_bad_ones_fail_plan() {
    let (m, tf) = setup!();
    let c = m.clients().await;
    let config = r#"
resource "ebssnap_policy" "std" {
  name           = "std"
  retention_days = 14
  copy {
    region         = "us-west-2"
    retention_days = 30
    min_snapshots  = 3
  }
  copy {
    region     = "eu-west-1"
    kms_key_id = "arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
    copy_tags  = false
  }
  share {
    account_ids = ["111122223333"]
  }
}
"#;
    tf.write(config);
    tf.apply();
    tf.assert_no_changes();
    let doc_now = || async {
        let spec = scheduler::get_schedule(&c.scheduler, "std", scheduler::POLICY_SCHEDULE)
            .await
            .unwrap()
            .unwrap();
        serde_json::from_str::<Value>(&spec.input).unwrap()
    };
    let d = doc_now().await;
    assert_eq!(
        d["copies"],
        json!([
            {"region": "us-west-2", "retention_days": 30, "min_snapshots": 3,
             "max_snapshots": null, "kms_key_id": null, "copy_tags": true},
            {"region": "eu-west-1", "retention_days": null, "min_snapshots": null,
             "max_snapshots": null,
             "kms_key_id": "arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab",
             "copy_tags": false}
        ])
    );
    assert_eq!(d["share"], json!({"account_ids": ["111122223333"]}));

    // Import recovers the blocks: an empty plan.
    let fresh = Tf::new(Some(&m)).unwrap();
    fresh.write(config);
    let imp = fresh.run(&["import", "ebssnap_policy.std", "std"]);
    assert_eq!(imp.code, 0, "{}{}", imp.stdout, imp.stderr);
    fresh.assert_no_changes();
    drop(fresh);

    // Without the blocks the document has none, and a policy that never had them plans empty.
    tf.write(
        r#"
resource "ebssnap_policy" "std" {
  name           = "std"
  retention_days = 14
}
"#,
    );
    tf.apply();
    tf.assert_no_changes();
    let d = doc_now().await;
    assert!(d.get("copies").is_none() && d.get("share").is_none(), "{d}");

    // Bad blocks fail plan, naming the block.
    for (block, want) in [
        (
            "copy {\n region = \"us-east-1\"\n }",
            "us-east-1 is the provider's Region",
        ),
        (
            "copy {\n region = \"us-west-2\"\n }\n copy {\n region = \"us-west-2\"\n }",
            "copies[1].region: us-west-2 is listed twice",
        ),
        (
            "copy {\n region = \"us-west-2\"\n kms_key_id = \"arn:aws:kms:us-east-1:123456789012:key/k\"\n }",
            "the key is in us-east-1, not in the copy's Region us-west-2",
        ),
        (
            "copy {\n region = \"mars\"\n }",
            "\"mars\" is not an AWS Region name",
        ),
        (
            "share {\n account_ids = [\"42\"]\n }",
            "\"42\" is not a 12-digit account id",
        ),
        (
            &["a-b-1", "a-b-2", "a-b-3", "a-b-4", "a-b-5", "a-b-6"]
                .map(|r| format!("copy {{\n region = \"{r}\"\n }}"))
                .join("\n"),
            "at most 5 Regions",
        ),
    ] {
        tf.write(&format!(
            "resource \"ebssnap_policy\" \"std\" {{\n name = \"std\"\n retention_days = 14\n {block}\n}}\n"
        ));
        let out = tf.run(&["plan"]);
        assert_eq!(out.code, 1, "{block}: {}", out.stdout);
        assert!(
            crate::tf::squash_lines(&out.stderr).contains(want),
            "{block}: {}",
            out.stderr
        );
    }
}
