//! Failure channels beyond a plain webhook (docs/design.md §7): a webhook kept in Secrets Manager, SNS
//! (read back through an SQS subscription in moto), a missing or malformed secret, and the
//! metrics line (EMF) of the Lambda. Secret values are grepped for in every output.

use std::io::Read;
use std::process::Stdio;
use std::time::Duration;

use ebssnap::core::ticket;
use serde_json::{Value, json};

use crate::cli::Out;
use crate::docs;
use crate::lambda::{as_lambda, fake_runtime_api};
use crate::moto::Moto;
use crate::tickets::{Receiver, SECRET, failing_fleet, run_cli};

const PATH_TOKEN: &str = "T0K3N-in-the-path-5150";
const QUERY_TOKEN: &str = "QUERY-t0k3n-8128";
const POLICY_SIGNING: &str = "policy-s1gning-key-2718";

/// Calls moto's SQS with the JSON protocol (the runner never reads SQS; the test does).
fn sqs(m: &Moto, action: &str, body: Value) -> Value {
    let mut resp = ureq::post(&m.endpoint())
        .header("X-Amz-Target", &format!("AmazonSQS.{action}"))
        .header("Content-Type", "application/x-amz-json-1.0")
        .header(
            "Authorization",
            "AWS4-HMAC-SHA256 Credential=testing/20261127/us-east-1/sqs/aws4_request, SignedHeaders=host, Signature=0",
        )
        .send(body.to_string())
        .unwrap_or_else(|e| panic!("SQS {action}: {e}"));
    let text = resp.body_mut().read_to_string().unwrap();
    serde_json::from_str(&text).unwrap_or(Value::Null)
}

/// A topic with an SQS queue subscribed: (topic ARN, queue URL).
async fn topic_with_queue(m: &Moto, name: &str) -> (String, String) {
    let c = m.clients().await;
    let topic = c.sns.create_topic().name(name).send().await.unwrap();
    let topic = topic.topic_arn().unwrap().to_string();
    let q = sqs(m, "CreateQueue", json!({"QueueName": format!("{name}-q")}));
    let url = q["QueueUrl"].as_str().unwrap().to_string();
    let attrs = sqs(
        m,
        "GetQueueAttributes",
        json!({"QueueUrl": url, "AttributeNames": ["QueueArn"]}),
    );
    let arn = attrs["Attributes"]["QueueArn"]
        .as_str()
        .unwrap()
        .to_string();
    c.sns
        .subscribe()
        .topic_arn(&topic)
        .protocol("sqs")
        .endpoint(arn)
        .send()
        .await
        .unwrap();
    (topic, url)
}

/// The SNS notifications in the queue: (message = the ticket, message attributes).
fn notifications(m: &Moto, queue: &str) -> Vec<(Value, Value)> {
    let got = sqs(
        m,
        "ReceiveMessage",
        json!({"QueueUrl": queue, "MaxNumberOfMessages": 10, "WaitTimeSeconds": 0}),
    );
    got["Messages"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|msg| {
            let envelope: Value = serde_json::from_str(msg["Body"].as_str().unwrap()).unwrap();
            let ticket: Value =
                serde_json::from_str(envelope["Message"].as_str().unwrap()).unwrap();
            (ticket, envelope["MessageAttributes"].clone())
        })
        .collect()
}

async fn secret(m: &Moto, name: &str, value: &str) -> String {
    let c = m.clients().await;
    let out = c
        .secretsmanager
        .create_secret()
        .name(name)
        .secret_string(value)
        .send()
        .await
        .unwrap();
    out.arn().unwrap().to_string()
}

fn assert_hidden(out: &Out, values: &[&str]) {
    for v in values {
        assert!(
            !out.stdout.contains(v) && !out.stderr.contains(v),
            "{v} leaked:\n{}\n{}",
            out.stdout,
            out.stderr
        );
    }
}

fn failing_target() -> Value {
    docs::with_run(
        docs::target("std", "db", json!({"instance_names": ["db-*"]})),
        "2026-11-26T05:00:00Z",
    )
}

#[tokio::test]
async fn a_webhook_from_secrets_manager_gets_a_ticket_signed_with_its_own_key() {
    let Some(m) = Moto::start() else { return };
    let f = failing_fleet(&m).await;
    let r = Receiver::start(vec![]);
    let url = format!(
        "http://127.0.0.1:{}/hooks/{PATH_TOKEN}?key={QUERY_TOKEN}",
        r.port
    );
    let arn = secret(
        &m,
        "ebssnap/hook",
        &json!({"url": url, "signing_secret": POLICY_SIGNING}).to_string(),
    )
    .await;
    let mut policy = docs::policy("std", 14, 1);
    policy["notify"] = json!({"webhook_secret_arn": arn});

    let out = run_cli(&m, &f.proxy, &policy, &failing_target(), &[]);
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert_hidden(&out, &[PATH_TOKEN, QUERY_TOKEN, POLICY_SIGNING, SECRET]);
    let report = out.json();
    assert_eq!(report["ticket"]["delivered"], true, "{report}");
    assert_eq!(
        report["ticket"]["url"],
        format!("http://127.0.0.1:{}/…", r.port)
    );
    let got = r.received();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].json()["failures"][0]["volume_id"], f.data.as_str());
    // Signed with the secret's own key, not the runner's EBSSNAP_WEBHOOK_SECRET.
    let sig = got[0].header("X-Ebssnap-Signature").unwrap();
    let now = jiff::Timestamp::now().as_second();
    assert_eq!(
        ticket::verify(POLICY_SIGNING, sig, got[0].body.as_bytes(), now, 300),
        Ok(())
    );
    assert!(ticket::verify(SECRET, sig, got[0].body.as_bytes(), now, 300).is_err());
}

#[tokio::test]
async fn sns_receives_the_ticket_with_filterable_attributes() {
    let Some(m) = Moto::start() else { return };
    let f = failing_fleet(&m).await;
    let (topic, queue) = topic_with_queue(&m, "ebssnap-failures").await;
    let mut policy = docs::policy("std", 14, 1);
    policy["notify"] = json!({"sns_topic_arn": topic});

    let out = run_cli(&m, &f.proxy, &policy, &failing_target(), &[]);
    assert_eq!(out.code, 1, "{}", out.stderr);
    let report = out.json();
    assert_eq!(report["ticket_sns"]["delivered"], true, "{report}");
    assert_eq!(report["ticket_sns"]["url"], topic.as_str());
    assert!(report["ticket"].is_null(), "no webhook configured");
    let got = notifications(&m, &queue);
    assert_eq!(got.len(), 1, "one message");
    let (t, attrs) = &got[0];
    assert_eq!(t["event"], "snapshot.failed");
    assert_eq!(t["dedup_key"], "std/db/2026-11-26T05:00:00Z");
    assert_eq!(t["failures"][0]["volume_id"], f.data.as_str());
    for (k, v) in [
        ("event", "snapshot.failed"),
        ("severity", "error"),
        ("policy", "std"),
        ("target", "db"),
    ] {
        assert_eq!(attrs[k]["Value"], v, "attribute {k}: {attrs}");
        assert_eq!(attrs[k]["Type"], "String");
    }
}

#[tokio::test]
async fn a_missing_or_malformed_secret_fails_with_exit_3_and_the_ticket_still_reaches_sns() {
    let Some(m) = Moto::start() else { return };
    let f = failing_fleet(&m).await;
    let (topic, queue) = topic_with_queue(&m, "ebssnap-failures").await;

    let mut policy = docs::policy("std", 14, 1);
    policy["notify"] = json!({
        "webhook_secret_arn": "arn:aws:secretsmanager:us-east-1:123456789012:secret:ebssnap/none-AbCdEf",
        "sns_topic_arn": topic,
    });
    let out = run_cli(&m, &f.proxy, &policy, &failing_target(), &[]);
    assert_eq!(out.code, 3, "{}\n{}", out.stdout, out.stderr);
    assert!(
        out.stderr.contains("ResourceNotFoundException"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("ebssnap/none"),
        "names the secret: {}",
        out.stderr
    );
    assert_eq!(notifications(&m, &queue).len(), 1, "the ticket went to SNS");

    // A secret that is not the expected JSON: its value is never shown.
    let arn = secret(
        &m,
        "ebssnap/bad",
        &format!("https://hooks.example.com/{PATH_TOKEN}"),
    )
    .await;
    policy["notify"]["webhook_secret_arn"] = json!(arn);
    let out = run_cli(&m, &f.proxy, &policy, &failing_target(), &[]);
    assert_eq!(out.code, 3, "{}", out.stderr);
    assert!(
        out.stderr.contains("MalformedWebhookSecret"),
        "{}",
        out.stderr
    );
    assert_hidden(&out, &[PATH_TOKEN]);
    assert_eq!(notifications(&m, &queue).len(), 1);
}

#[tokio::test]
async fn every_lambda_run_writes_metrics_lines_equal_to_its_report() {
    let Some(m) = Moto::start() else { return };
    let c = m.clients().await;
    let vol = crate::fleet::volume(&c, &[("Backup", "yes")]).await;
    let mut pol = docs::policy("std", 14, 1);
    // A copy Region: each run and sweep adds one record per destination.
    pol["copies"] = json!([{"region": "us-west-2", "retention_days": 30, "min_snapshots": 1,
                            "max_snapshots": null, "kms_key_id": null, "copy_tags": true}]);
    docs::store_policy(&c, &pol).await;
    let mut event = docs::target("std", "web", json!({"volume_tags": {"Backup": "yes"}}));
    docs::store_target(&c, &event).await;
    event["invocation"] = json!({"scheduled_time": docs::recent_fire(0), "execution_id": "e-1",
                                 "attempt": "1", "schedule_arn": "arn:aws:scheduler:us-east-1:123456789012:schedule/ebssnap-std/web"});
    let (port, answers) = fake_runtime_api(vec![event, docs::with_run(pol, &docs::recent_fire(0))]);
    let mut child = as_lambda(
        std::path::Path::new(env!("CARGO_BIN_EXE_ebssnap")),
        &m,
        port,
    )
    .stdout(Stdio::piped())
    .stderr(Stdio::null())
    .spawn()
    .expect("start the bootstrap");
    let run = answers
        .recv_timeout(Duration::from_secs(60))
        .expect("run answer");
    let sweep = answers
        .recv_timeout(Duration::from_secs(60))
        .expect("sweep answer");
    let _ = child.kill();
    let mut stdout = String::new();
    let _ = child.stdout.take().unwrap().read_to_string(&mut stdout);
    let _ = child.wait();

    let lines: Vec<Value> = stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v.get("_aws").is_some())
        .collect();
    assert_eq!(
        lines.len(),
        4,
        "one line per run and sweep, and one per copy Region of each:\n{stdout}"
    );
    let (emf, report) = (&lines[0], &run.2);
    let dest = &lines[1];
    assert_eq!(dest["DestinationRegion"], "us-west-2");
    assert_eq!(
        dest["CopiesStarted"],
        report["copies"][0]["started"].as_array().unwrap().len()
    );
    assert_eq!(emf["CopiesStarted"], dest["CopiesStarted"]);
    assert_eq!(
        dest["_aws"]["CloudWatchMetrics"][0]["Dimensions"],
        json!([
            ["Policy", "DestinationRegion"],
            ["Policy", "Target", "DestinationRegion"]
        ])
    );
    let decl = &emf["_aws"]["CloudWatchMetrics"][0];
    assert_eq!(decl["Namespace"], "ebssnap");
    assert_eq!(
        decl["Dimensions"],
        json!([["Policy"], ["Policy", "Target"]])
    );
    assert_eq!(
        (emf["Policy"].clone(), emf["Target"].clone()),
        (json!("std"), json!("web"))
    );
    assert_eq!(emf["VolumesSelected"], report["volumes_selected"]);
    assert_eq!(emf["SnapshotsCreated"], 1);
    assert_eq!(report["created"][0]["volume_id"], vol.as_str());
    assert_eq!(
        emf["SnapshotsDeleted"],
        report["deleted"].as_array().unwrap().len()
    );
    assert_eq!(emf["Failures"], 0);
    assert_eq!(emf["DurationMs"], report["duration_ms"]);
    let sweep_emf = &lines[2];
    assert_eq!(lines[3]["DestinationRegion"], "us-west-2");
    assert_eq!(
        sweep_emf["_aws"]["CloudWatchMetrics"][0]["Dimensions"],
        json!([["Policy"]])
    );
    assert_eq!(
        sweep_emf["Overdue"],
        sweep.2["overdue"].as_array().unwrap().len()
    );
    assert_eq!(
        sweep_emf["ErrorSnapshots"],
        sweep.2["error_snapshots"].as_array().unwrap().len()
    );
}
