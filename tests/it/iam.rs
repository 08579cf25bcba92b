//! The IAM drift test: the runner's policy is generated from `core::iam::RUNNER_OPERATIONS`;
//! this scenario exercises every code path that calls AWS and checks that the operations counted
//! by the SDK interceptor are exactly that table. Adding an SDK call without listing it fails here.

use std::collections::BTreeSet;

use ebssnap::aws::iam;
use ebssnap::runner::{self, RunOptions};
use jiff::{SignedDuration, Timestamp};
use serde_json::json;

use crate::docs::{self, p, t};
use crate::fleet;
use crate::moto::Moto;
use crate::tickets::Receiver;

#[tokio::test]
async fn the_runner_calls_exactly_the_operations_its_iam_policy_allows() {
    let Some(m) = Moto::start() else { return };
    let c = m.clients().await;
    let web_instances = fleet::asg(&c, "web-prod", 2).await;
    let (inst, _) = fleet::instance(&c, &[("Name", "db-1")]).await;
    let receiver = Receiver::start(vec![]);
    let mut called: BTreeSet<String> = BTreeSet::new();
    let mut note =
        |r: &ebssnap::core::report::Report| called.extend(r.api_calls.calls.keys().cloned());

    // Tickets go to a webhook kept in Secrets Manager and to an SNS topic.
    let secret = c
        .secretsmanager
        .create_secret()
        .name("ebssnap/hook")
        .secret_string(json!({"url": receiver.url()}).to_string())
        .send()
        .await
        .unwrap();
    let secret_arn = secret.arn().unwrap().to_string();
    let topic = c.sns.create_topic().name("failures").send().await.unwrap();
    let topic_arn = topic.topic_arn().unwrap().to_string();
    let mut pol = docs::policy("std", 7, 1);
    pol["notify"] = json!({"webhook_secret_arn": secret_arn, "sns_topic_arn": topic_arn});
    docs::store_policy(&c, &pol).await;
    let web = docs::target("std", "web", json!({"asg_names": ["web-prod"]}));
    docs::store_target(&c, &web).await;
    let o = |key: &str| RunOptions {
        run_key: Some(key.into()),
        ..RunOptions::default()
    };
    note(
        &runner::run_target(&c, &p(&pol), &t(&web), &o("r1"))
            .await
            .unwrap(),
    );
    let later = RunOptions {
        now: Timestamp::now() + SignedDuration::from_hours(24 * 30),
        ..o("r2")
    };
    // 30 days later: prunes (DeleteSnapshot), and the sweep finds the target overdue (a ticket,
    // whose account comes from GetCallerIdentity).
    note(
        &runner::run_target(&c, &p(&pol), &t(&web), &later)
            .await
            .unwrap(),
    );
    let sweep = runner::sweep(&c, &p(&pol), &later).await.unwrap();
    assert!(
        sweep.ticket.as_ref().is_some_and(|t| t.delivered),
        "{:?}",
        sweep.ticket
    );
    assert!(
        sweep.ticket_sns.as_ref().is_some_and(|t| t.delivered),
        "{:?}",
        sweep.ticket_sns
    );
    note(&sweep);

    // A run out of time continues in an invocation of its own function (a fake Invoke endpoint).
    let queue = crate::lambda::Queue::default();
    let (invoke_port, invoked) = crate::lambda::fake_invoke_endpoint(queue);
    let lc = crate::moto::with_lambda_at(
        m.clients().await,
        &format!("http://127.0.0.1:{invoke_port}"),
    )
    .await;
    // The run has begun (one volume snapshotted under its key): a link that made progress
    // continues, a run that never started does not.
    let first = fleet::volumes_of(&c, &web_instances[0]).await;
    let mut one = web.clone();
    one["select"] = json!({"volume_ids": [first[0]]});
    runner::run_target(&lc, &p(&pol), &t(&one), &o("r3"))
        .await
        .unwrap();
    let out_of_time = RunOptions {
        stop_at: Some(std::time::Instant::now()),
        chain: Some(runner::Chain {
            function_arn: crate::lambda::FUNCTION_ARN.into(),
            link: 1,
            run_key: None,
            rates: Default::default(),
            volumes: vec![],
        }),
        ..o("r3")
    };
    let r = runner::run_target(&lc, &p(&pol), &t(&web), &out_of_time)
        .await
        .unwrap();
    assert_eq!(r.continued_in_link, Some(2));
    assert_eq!(invoked.lock().unwrap().len(), 1);
    note(&r);

    // Crash-consistent sets.
    let mut cc = docs::policy("cc", 7, 1);
    cc["crash_consistent"] = json!(true);
    let db = docs::target("cc", "db", json!({"instance_ids": [inst]}));
    note(
        &runner::run_target(&c, &p(&cc), &t(&db), &o("r1"))
            .await
            .unwrap(),
    );

    // A restore test: a volume from a restore point, deleted again, the snapshot tagged.
    let tested = runner::restore_test::restore_test(
        &c,
        &p(&pol),
        &runner::restore_test::Settings {
            sample: 1,
            timeout: std::time::Duration::from_secs(60),
        },
        None,
        &o("rt"),
    )
    .await
    .unwrap();
    assert_eq!(tested.restore_tests.len(), 1, "{tested:?}");
    note(&tested);

    // A policy with a copy Region: the run copies its restore points there.
    let mut dr = docs::policy("dr", 7, 1);
    dr["copies"] = json!([{"region": "us-west-2", "retention_days": 30, "min_snapshots": 2,
                           "max_snapshots": null, "kms_key_id": null, "copy_tags": true}]);
    let dr_t = docs::target("dr", "db", json!({"instance_ids": [inst]}));
    let copied = runner::run_target(&c, &p(&dr), &t(&dr_t), &o("r1"))
        .await
        .unwrap();
    assert!(
        copied.copies.iter().any(|r| !r.started.is_empty()),
        "{copied:?}"
    );
    note(&copied);

    // A policy that shares with a vault account: an encrypted restore point's key is described
    // first (moto's default EBS key is customer-managed, so it is shared).
    let sealed = fleet::encrypted_volume(&c, &[]).await;
    let mut vault = docs::policy("vault", 7, 1);
    vault["share"] = json!({"account_ids": ["111122223333"]});
    let vault_t = docs::target("vault", "db", json!({"volume_ids": [sealed]}));
    let shared = runner::run_target(&c, &p(&vault), &t(&vault_t), &o("r1"))
        .await
        .unwrap();
    assert!(
        shared.share.as_ref().is_some_and(|s| s.shared.len() == 1),
        "{shared:?}"
    );
    note(&shared);

    // A sweep with report_unprotected reads every policy's schedules for the coverage.
    let mut watch = pol.clone();
    watch["report_unprotected"] = json!(true);
    let watched = runner::sweep(&c, &p(&watch), &o("cov")).await.unwrap();
    assert!(
        watched.coverage.as_ref().is_some_and(|c| c.volumes > 0),
        "{watched:?}"
    );
    note(&watched);

    for op in &called {
        if let Err(e) = iam::action_for(op) {
            panic!("{e}: add it (and its IAM action) to RUNNER_OPERATIONS");
        }
    }
    let table: BTreeSet<String> = iam::RUNNER_OPERATIONS
        .iter()
        .map(|(op, _)| op.to_string())
        .collect();
    assert_eq!(
        called, table,
        "operations called vs. the IAM table (an unused entry grants too much)"
    );
    let allowed = iam::actions(&iam::runner_policy(&iam::Scope {
        webhook_secret_arns: vec![secret_arn.clone()],
        sns_topic_arns: vec![topic_arn.clone()],
        report_unprotected: true,
        copy_regions: vec!["us-west-2".into()],
        share_account_ids: vec!["111122223333".into()],
        ..iam::Scope::default()
    }));
    for op in &called {
        if let Ok(Some(action)) = iam::action_for(op) {
            assert!(
                allowed.contains(action),
                "{op} needs {action}, which the policy lacks"
            );
        }
    }
}

/// Runs `parliament` (installed by `make deps`) on one policy document through
/// tests/parliament_check.py (which also says why it wraps parliament); returns its findings.
fn parliament(policy: &serde_json::Value) -> Option<Vec<String>> {
    let python = std::env::var("EBSSNAP_PYTHON").ok();
    let Some(python) = python.filter(|p| std::path::Path::new(p).exists()) else {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "EBSSNAP_PYTHON (with parliament) is required under CI=true: run `make deps`"
        );
        eprintln!("skipped: EBSSNAP_PYTHON not set (run `make deps`)");
        return None;
    };
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/parliament_check.py");
    let out = std::process::Command::new(&python)
        .arg(script)
        .arg(policy.to_string())
        .stdin(std::process::Stdio::null())
        .output()
        .expect("run parliament");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !stderr.contains("ModuleNotFoundError"),
        "parliament is not installed in {python}: run `make deps`\n{stderr}"
    );
    assert!(
        !stderr.contains("Traceback"),
        "parliament failed:\n{stderr}"
    );
    Some(
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(String::from)
            .collect(),
    )
}

/// Issue 25 item 6: the identity policies `data.ebssnap_iam_policy` renders have no finding under
/// `parliament` (with its community auditors). The trust policies are not identity policies
/// (no `Resource`), which parliament cannot audit: they are checked by the unit tests of
/// `aws::iam` (service principal, `aws:SourceAccount`, `aws:SourceArn`).
#[test]
fn every_rendered_policy_passes_parliament() {
    let runner = "arn:aws:lambda:us-east-1:123456789012:function:ebssnap";
    let scope = iam::Scope {
        policies: vec!["std".into(), "gold".into()],
        runner_arn: runner.into(),
        webhook_secret_arns: vec![
            "arn:aws:secretsmanager:us-east-1:123456789012:secret:ebssnap/hook-AbCdEf".into(),
        ],
        kms_key_arns: vec![
            "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab".into(),
        ],
        sns_topic_arns: vec!["arn:aws:sns:us-east-1:123456789012:ebssnap-failures".into()],
        report_unprotected: true,
        copy_regions: vec!["us-west-2".into(), "eu-west-1".into()],
        copy_kms_key_arns: vec![
            "arn:aws:kms:us-west-2:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab".into(),
        ],
        share_account_ids: vec!["111122223333".into(), "444455556666".into()],
        ..iam::Scope::default()
    };
    for (name, doc) in [
        ("runner", iam::runner_policy(&scope)),
        ("scheduler", iam::scheduler_policy(&scope)),
        ("operator", iam::operator_policy(&scope)),
    ] {
        let Some(findings) = parliament(&doc) else {
            return;
        };
        assert!(
            findings.is_empty(),
            "parliament findings in the {name} policy:\n{}\n{doc:#}",
            findings.join("\n")
        );
    }
    // A CreateGrant without the AWS-resource condition is still a finding.
    let grant = serde_json::json!({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "kms:CreateGrant",
         "Resource": "arn:aws:kms:us-west-2:123456789012:key/k"}]});
    assert!(!parliament(&grant).unwrap_or_default().is_empty());
    // So is sharing snapshots with any account.
    let share = serde_json::json!({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "ec2:ModifySnapshotAttribute",
         "Resource": "arn:aws:ec2:us-east-1::snapshot/*",
         "Condition": {"StringEquals": {"ec2:Attribute": "createVolumePermission"}}}]});
    assert!(!parliament(&share).unwrap_or_default().is_empty());
    // The check can fail: a delete on every snapshot is a finding.
    let loose = serde_json::json!({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "ec2:DeleteSnapshot", "Resource": "*"}]});
    assert!(!parliament(&loose).unwrap_or_default().is_empty());
}
