//! Disaster-recovery copies against moto (issue 23, first step): copies appear once per restore
//! point and Region with the source tags, at most 20 are started per Region and run, a lost
//! answer gives one copy, copies are kept by their own rules after the source is gone, and a
//! policy of the same name in the copy Region never prunes them.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::{Value, json};

use crate::chaos::{ChaosProxy, Fault};
use crate::cli::{ebssnap, run_keyed};
use crate::docs;
use crate::fleet;
use crate::moto::Moto;

const WEST: &str = "us-west-2";

fn dr_policy(min: u32, days: u32) -> Value {
    let mut p = docs::policy("std", 7, 1);
    p["copies"] = json!([{"region": WEST, "retention_days": days, "min_snapshots": min,
                          "max_snapshots": null, "kms_key_id": null, "copy_tags": true}]);
    p
}

/// Every snapshot in the copy Region: id → tags.
async fn west_snapshots(c: &ebssnap::aws::Clients) -> BTreeMap<String, BTreeMap<String, String>> {
    fleet::snapshots_in(&c.ec2_in(WEST))
        .await
        .into_iter()
        .map(|(id, (_, tags))| (id, tags))
        .collect()
}

/// A proxy that lets `after` `CopySnapshot` calls through, then answers each with EC2's error
/// `code` (HTTP `status`).
fn refusing_copies(m: &Moto, after: usize, status: u16, code: &'static str) -> crate::proxy::Proxy {
    let n = std::sync::atomic::AtomicUsize::new(0);
    crate::proxy::Proxy::start(
        m.port,
        Box::new(move |_, _, body| {
            if body.contains("Action=CopySnapshot&")
                && n.fetch_add(1, std::sync::atomic::Ordering::SeqCst) >= after
            {
                crate::proxy::Action::Respond(
                    status,
                    "text/xml",
                    format!(
                        "<Response><Errors><Error><Code>{code}</Code><Message>refused by the test</Message></Error></Errors><RequestID>x</RequestID></Response>"
                    ),
                )
            } else {
                crate::proxy::Action::Forward
            }
        }),
    )
}

/// Stores `pol` with the webhook of `receiver` and target std/db (volumes tagged `Backup=yes`).
async fn store_notified(
    c: &ebssnap::aws::Clients,
    mut pol: Value,
    receiver: &crate::tickets::Receiver,
) {
    pol["notify"] = json!({"webhook_url": receiver.url()});
    docs::store_policy(c, &pol).await;
    docs::store_target(
        c,
        &docs::target("std", "db", json!({"volume_tags": {"Backup": "yes"}})),
    )
    .await;
}

/// The tickets `receiver` got, of `event`.
fn tickets_of(receiver: &crate::tickets::Receiver, event: &str) -> Vec<Value> {
    receiver
        .received()
        .iter()
        .map(|g| serde_json::from_str::<Value>(&g.body).unwrap())
        .filter(|t| t["event"] == event)
        .collect()
}

/// `ebssnap run --policy std --target <target> --run-key <key> --json` with `extra` flags.
fn run_json(env: &[(&str, String)], target: &str, key: &str, extra: &[&str]) -> crate::cli::Out {
    let mut args = vec![
        "run",
        "--policy",
        "std",
        "--target",
        target,
        "--run-key",
        key,
        "--json",
    ];
    args.extend_from_slice(extra);
    ebssnap(env, &args)
}

fn copies_report(out: &crate::cli::Out) -> Value {
    let r = out.json();
    r["copies"][0].clone()
}

#[tokio::test]
async fn restore_points_are_copied_once_per_region_with_their_tags_and_kept_by_their_own_rules() {
    let Some(m) = Moto::start() else { return };
    let c = m.clients().await;
    let vol = fleet::volume(&c, &[("Backup", "yes"), ("Team", "db")]).await;
    docs::store_policy(&c, &dr_policy(2, 1)).await;
    let mut t = docs::target("std", "db", json!({"volume_tags": {"Backup": "yes"}}));
    t["allow_empty"] = json!(true);
    docs::store_target(&c, &t).await;
    let run = |key: &str| {
        // moto stamps snapshots to the second: runs a second apart have distinct ages.
        std::thread::sleep(std::time::Duration::from_millis(1100));
        let out = run_json(&m.env(), "db", key, &[]);
        assert_eq!(out.code, 0, "{}", out.stderr);
        out
    };
    let r1 = copies_report(&run("r1"));
    assert_eq!(r1["region"], WEST);
    assert_eq!(r1["started"].as_array().unwrap().len(), 1, "{r1}");
    let west = west_snapshots(&c).await;
    assert_eq!(west.len(), 1);
    let (copy_id, tags) = west.iter().next().unwrap();
    assert_eq!(r1["started"][0]["copy_snapshot_id"], json!(copy_id));
    assert_eq!(tags["ebssnap:policy"], "std");
    assert_eq!(tags["ebssnap:target"], "db");
    assert_eq!(tags["ebssnap:run"], "r1");
    assert_eq!(tags["ebssnap:source-region"], "us-east-1");
    assert_eq!(tags["ebssnap:source-volume"], vol);
    assert_eq!(tags["ebssnap:volume"], vol);
    assert_eq!(tags["Team"], "db", "copy_tags");
    assert_eq!(
        tags["ebssnap:source-snapshot"],
        r1["started"][0]["source_snapshot_id"].as_str().unwrap()
    );

    // The next run copies only its own restore point; two more make four copies.
    for key in ["r2", "r3", "r4"] {
        let r = copies_report(&run(key));
        assert_eq!(r["started"].as_array().unwrap().len(), 1, "{key}: {r}");
    }
    let west = west_snapshots(&c).await;
    assert_eq!(west.len(), 4);
    let sources: std::collections::BTreeSet<&String> = west
        .values()
        .map(|t| &t["ebssnap:source-snapshot"])
        .collect();
    assert_eq!(sources.len(), 4, "one copy per restore point");

    // The source volume and every source snapshot go; 30 days later the copies keep their
    // minimum (2), never deleted because the source is gone.
    for (id, _) in fleet::snapshots(&c).await {
        c.ec2
            .delete_snapshot()
            .snapshot_id(id)
            .send()
            .await
            .unwrap();
    }
    c.ec2.delete_volume().volume_id(&vol).send().await.unwrap();
    let later = (jiff::Timestamp::now() + jiff::SignedDuration::from_hours(24 * 30)).to_string();
    let out = run_json(&m.env(), "db", "r5", &["--now", &later]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let r5 = copies_report(&out);
    assert_eq!(r5["deleted"].as_array().unwrap().len(), 2, "{r5}");
    let west = west_snapshots(&c).await;
    let runs: Vec<&String> = west.values().map(|t| &t["ebssnap:run"]).collect();
    assert_eq!(west.len(), 2, "the minimum stays: {runs:?}");
    assert!(runs.iter().any(|r| *r == "r4") && runs.iter().any(|r| *r == "r3"));

    // A policy of the same name in the copy Region prunes its own snapshots, never the copies.
    let cw = crate::moto::clients_at(&m.endpoint()).await.in_region(WEST);
    docs::store_policy(&cw, &docs::policy("std", 1, 1)).await;
    let mut west_env = m.env();
    for (k, v) in west_env.iter_mut() {
        if *k == "AWS_REGION" {
            *v = WEST.into();
        }
    }
    let out = ebssnap(
        &west_env,
        &["sweep", "--policy", "std", "--now", &later, "--json"],
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.json()["deleted"], json!([]), "{}", out.stdout);
    assert_eq!(west_snapshots(&c).await.len(), 2);
}

#[tokio::test]
async fn at_most_twenty_copies_start_per_region_and_the_rest_follow_in_later_runs() {
    let Some(m) = Moto::start() else { return };
    let c = m.clients().await;
    for _ in 0..25 {
        fleet::volume(&c, &[("Backup", "yes")]).await;
    }
    docs::store_policy(&c, &dr_policy(3, 30)).await;
    docs::store_target(
        &c,
        &docs::target("std", "fleet", json!({"volume_tags": {"Backup": "yes"}})),
    )
    .await;
    let out = run_json(&m.env(), "fleet", "r1", &[]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let r = copies_report(&out);
    assert_eq!(r["started"].as_array().unwrap().len(), 20, "{r}");
    assert_eq!(r["deferred"], 5);

    // AWS refuses the 11th copy of the next run (its 20 concurrent copies are taken): later,
    // not a failure.
    let refuse = refusing_copies(&m, 10, 400, "ResourceLimitExceeded");
    let out = run_json(&m.env_at(&refuse.endpoint()), "fleet", "r2", &[]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let r = copies_report(&out);
    assert_eq!(r["started"].as_array().unwrap().len(), 10, "{r}");
    assert_eq!(r["failures"], json!([]), "deferred, not failed: {r}");
    // 25 new restore points and the 5 deferred ones wanted, 20 planned, 10 refused.
    assert_eq!(r["deferred"], 30 - 10, "{r}");
    drop(refuse);

    // Later runs take turns: the volumes left out are copied first, no restore point twice,
    // and after them every volume has a copy of its newest restore point or the one before.
    for key in ["r3", "r4"] {
        run_keyed(&m.env(), "std", "fleet", key);
    }
    let west = west_snapshots(&c).await;
    let mut per_source: BTreeMap<String, usize> = BTreeMap::new();
    let mut per_volume: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for t in west.values() {
        *per_source
            .entry(t["ebssnap:source-snapshot"].clone())
            .or_insert(0) += 1;
        per_volume
            .entry(t["ebssnap:source-volume"].clone())
            .or_default()
            .push(t["ebssnap:run"].clone());
    }
    assert!(per_source.values().all(|n| *n == 1), "{per_source:?}");
    assert_eq!(
        per_volume.len(),
        25,
        "every volume has copies: {per_volume:?}"
    );
    assert!(
        per_volume
            .values()
            .all(|runs| runs.iter().any(|r| r == "r4" || r == "r3")),
        "{per_volume:?}"
    );
    assert_eq!(west.len(), 20 + 10 + 20 + 20);
}

#[tokio::test]
async fn a_copy_whose_answer_was_lost_is_found_by_its_tag_not_made_twice() {
    let Some(m) = Moto::start() else { return };
    let c = m.clients().await;
    fleet::volume(&c, &[("Backup", "yes")]).await;
    docs::store_policy(&c, &dr_policy(1, 30)).await;
    docs::store_target(
        &c,
        &docs::target("std", "db", json!({"volume_tags": {"Backup": "yes"}})),
    )
    .await;
    let proxy = ChaosProxy::start(
        m.port,
        Arc::new(|op, n| (op == "CopySnapshot" && n == 1).then_some(Fault::LostAnswer)),
    );
    let out = run_json(&m.env_at(&proxy.endpoint()), "db", "r1", &[]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(
        proxy.faults().values().sum::<u64>(),
        1,
        "the fault happened"
    );
    let r = copies_report(&out);
    assert_eq!(r["found"], 1, "{r}");
    assert_eq!(r["started"].as_array().unwrap().len(), 1);
    assert_eq!(west_snapshots(&c).await.len(), 1, "one copy");
}

#[tokio::test]
async fn the_sweep_prunes_the_copies_of_a_removed_target_by_the_copy_rules() {
    let Some(m) = Moto::start() else { return };
    let c = m.clients().await;
    fleet::volume(&c, &[("Backup", "yes")]).await;
    docs::store_policy(&c, &dr_policy(1, 1)).await;
    docs::store_target(
        &c,
        &docs::target("std", "db", json!({"volume_tags": {"Backup": "yes"}})),
    )
    .await;
    for key in ["r1", "r2", "r3"] {
        std::thread::sleep(std::time::Duration::from_millis(1100));
        run_keyed(&m.env(), "std", "db", key);
    }
    assert_eq!(west_snapshots(&c).await.len(), 3);
    let later = (jiff::Timestamp::now() + jiff::SignedDuration::from_hours(24 * 30)).to_string();
    // While the target exists, its copies are its runs' to prune: the sweep leaves them.
    let out = ebssnap(
        &m.env(),
        &["sweep", "--policy", "std", "--now", &later, "--json"],
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(copies_report(&out)["deleted"], json!([]));
    c.scheduler
        .delete_schedule()
        .group_name("ebssnap-std")
        .name("db")
        .send()
        .await
        .unwrap();
    let out = ebssnap(
        &m.env(),
        &["sweep", "--policy", "std", "--now", &later, "--json"],
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    let r = copies_report(&out);
    assert_eq!(r["deleted"].as_array().unwrap().len(), 2, "{r}");
    let west = west_snapshots(&c).await;
    assert_eq!(west.len(), 1, "the minimum stays");
    assert_eq!(west.values().next().unwrap()["ebssnap:run"], "r3");
}

#[tokio::test]
async fn a_refused_copy_raises_copy_failed_and_the_run_still_succeeds() {
    let Some(m) = Moto::start() else { return };
    let c = m.clients().await;
    let receiver = crate::tickets::Receiver::start(vec![]);
    let vol = fleet::volume(&c, &[("Backup", "yes")]).await;
    store_notified(&c, dr_policy(1, 30), &receiver).await;
    let refuse = refusing_copies(&m, 0, 403, "UnauthorizedOperation");
    let out = run_json(&m.env_at(&refuse.endpoint()), "db", "r1", &[]);
    assert_eq!(out.code, 0, "a copy never fails the run: {}", out.stderr);
    let r = out.json();
    assert_eq!(r["created"].as_array().unwrap().len(), 1);
    let f = &r["copies"][0]["failures"][0];
    assert_eq!(f["code"], "UnauthorizedOperation", "{r}");
    assert_eq!(f["volume_id"], json!(vol));
    let tickets = tickets_of(&receiver, "copy.failed");
    let t = tickets
        .first()
        .unwrap_or_else(|| panic!("no copy.failed: {:?}", receiver.received()));
    assert_eq!(t["severity"], "error");
    let tf = &t["failures"][0];
    assert_eq!(tf["category"], "permission");
    assert_eq!(
        tf["problem_key"],
        json!(format!("std/db/{vol}/copy-{WEST}"))
    );
    assert_eq!(r["copy_tickets"][0]["delivered"], true, "{r}");
}

/// A proxy that answers KMS `DescribeKey` as AWS does for its own default EBS key (moto creates
/// `aws/ebs` as a customer-managed key) and records every request body.
fn aws_managed_keys(m: &Moto) -> (crate::proxy::Proxy, Arc<std::sync::Mutex<Vec<String>>>) {
    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    let log = seen.clone();
    let proxy = crate::proxy::Proxy::start(
        m.port,
        Box::new(move |_, _, body| {
            log.lock().unwrap().push(body.to_string());
            if body.starts_with("{\"KeyId\"") {
                crate::proxy::Action::Respond(
                    200,
                    "application/x-amz-json-1.1",
                    json!({"KeyMetadata": {
                        "KeyId": "0d5d0c8c-0000-4000-8000-000000000ebs",
                        "Arn": "arn:aws:kms:us-east-1:123456789012:key/0d5d0c8c-0000-4000-8000-000000000ebs",
                        "AWSAccountId": "123456789012",
                        "KeyManager": "AWS",
                        "KeyState": "Enabled"}})
                    .to_string(),
                )
            } else {
                crate::proxy::Action::Forward
            }
        }),
    );
    (proxy, seen)
}

const VAULT: &str = "111122223333";

/// Who may create volumes from `snapshot`.
async fn shared_with(c: &ebssnap::aws::Clients, snapshot: &str) -> Vec<String> {
    let out = c
        .ec2
        .describe_snapshot_attribute()
        .snapshot_id(snapshot)
        .attribute(aws_sdk_ec2::types::SnapshotAttributeName::CreateVolumePermission)
        .send()
        .await
        .expect("DescribeSnapshotAttribute");
    out.create_volume_permissions()
        .iter()
        .filter_map(|p| p.user_id().map(String::from))
        .collect()
}

#[tokio::test]
async fn restore_points_are_shared_with_the_vault_except_under_an_aws_managed_key() {
    let Some(m) = Moto::start() else { return };
    let c = m.clients().await;
    let receiver = crate::tickets::Receiver::start(vec![]);
    let plain = fleet::volume(&c, &[("Backup", "yes")]).await;
    let sealed = fleet::encrypted_volume(&c, &[("Backup", "yes")]).await;
    let mut pol = docs::policy("std", 7, 1);
    pol["share"] = json!({"account_ids": [VAULT]});
    store_notified(&c, pol, &receiver).await;
    let (proxy, seen) = aws_managed_keys(&m);
    let out = run_json(&m.env_at(&proxy.endpoint()), "db", "r1", &[]);
    assert_eq!(out.code, 0, "sharing never fails the run: {}", out.stderr);
    let r = out.json();
    let snap_of = |vol: &str| {
        r["created"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["volume_id"] == json!(vol))
            .and_then(|c| c["snapshot_id"].as_str())
            .unwrap_or_else(|| panic!("no restore point of {vol}: {r}"))
            .to_string()
    };
    let (plain_snap, sealed_snap) = (snap_of(&plain), snap_of(&sealed));
    assert_eq!(r["share"]["shared"], json!([plain_snap]), "{r}");
    let f = &r["share"]["failures"][0];
    assert_eq!(f["code"], "ShareDefaultKey", "{r}");
    assert_eq!(f["snapshot_id"], json!(sealed_snap));
    assert_eq!(shared_with(&c, &plain_snap).await, vec![VAULT.to_string()]);
    assert!(shared_with(&c, &sealed_snap).await.is_empty(), "not shared");
    let describes = seen
        .lock()
        .unwrap()
        .iter()
        .filter(|b| b.starts_with("{\"KeyId\""))
        .count();
    assert_eq!(describes, 1, "one DescribeKey per key per run");
    let tickets = tickets_of(&receiver, "share.failed");
    let t = tickets
        .first()
        .unwrap_or_else(|| panic!("no share.failed: {:?}", receiver.received()));
    let tf = &t["failures"][0];
    assert_eq!(tf["category"], "configuration");
    assert!(
        tf["action"].as_str().unwrap().contains("customer-managed"),
        "{tf}"
    );
    assert_eq!(tf["problem_key"], json!(format!("std/db/{sealed}/share")));
}

#[tokio::test]
async fn an_encrypted_restore_point_is_copied_encrypted_under_the_copy_key() {
    let Some(m) = Moto::start() else { return };
    let c = m.clients().await;
    fleet::encrypted_volume(&c, &[("Backup", "yes")]).await;
    let key = "arn:aws:kms:us-west-2:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab";
    let mut pol = dr_policy(1, 30);
    pol["copies"][0]["kms_key_id"] = json!(key);
    docs::store_policy(&c, &pol).await;
    docs::store_target(
        &c,
        &docs::target("std", "db", json!({"volume_tags": {"Backup": "yes"}})),
    )
    .await;
    let (proxy, seen) = aws_managed_keys(&m);
    let out = run_json(&m.env_at(&proxy.endpoint()), "db", "r1", &[]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(copies_report(&out)["started"].as_array().unwrap().len(), 1);
    // The emulator returns an unencrypted copy without a key: what counts is what was sent.
    let sent: Vec<String> = seen
        .lock()
        .unwrap()
        .iter()
        .filter(|b| b.contains("Action=CopySnapshot&"))
        .cloned()
        .collect();
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert!(sent[0].contains("Encrypted=true"), "{}", sent[0]);
    let encoded = key.replace(':', "%3A").replace('/', "%2F");
    assert!(
        sent[0].contains(&format!("KmsKeyId={encoded}")),
        "{}",
        sent[0]
    );
}

/// Seeds, in the copy Region, a copy of `volume`'s restore point of `days_ago` days ago made by an
/// earlier run of std/db (moto stamps snapshots now: the copy's age is its `ebssnap:source-time`).
async fn seed_old_copy(c: &ebssnap::aws::Clients, volume: &str, days_ago: i64) -> String {
    let west = c.ec2_in(WEST);
    let wv = west
        .create_volume()
        .availability_zone("us-west-2a")
        .size(8)
        .send()
        .await
        .expect("CreateVolume")
        .volume_id()
        .unwrap()
        .to_string();
    let time = jiff::Timestamp::now() - jiff::SignedDuration::from_hours(24 * days_ago);
    let mut spec = aws_sdk_ec2::types::TagSpecification::builder()
        .resource_type(aws_sdk_ec2::types::ResourceType::Snapshot);
    for (k, v) in [
        ("ebssnap:policy", "std"),
        ("ebssnap:target", "db"),
        ("ebssnap:run", "old"),
        ("ebssnap:volume", volume),
        ("ebssnap:source-volume", volume),
        ("ebssnap:source-snapshot", "snap-0000000000000000a"),
        ("ebssnap:source-region", "us-east-1"),
        ("ebssnap:source-time", &time.to_string()),
    ] {
        spec = spec.tags(aws_sdk_ec2::types::Tag::builder().key(k).value(v).build());
    }
    west.create_snapshot()
        .volume_id(wv)
        .tag_specifications(spec.build())
        .send()
        .await
        .expect("CreateSnapshot")
        .snapshot_id()
        .unwrap()
        .to_string()
}

#[tokio::test]
async fn copies_that_fall_behind_raise_copy_overdue_and_copy_recovered_once_they_catch_up() {
    let Some(m) = Moto::start() else { return };
    let c = m.clients().await;
    let receiver = crate::tickets::Receiver::start(vec![]);
    let vol = fleet::volume(&c, &[("Backup", "yes")]).await;
    store_notified(&c, dr_policy(3, 30), &receiver).await;
    // The newest copy is 4 days old; the target runs daily: the limit is 2 days + 24 h.
    seed_old_copy(&c, &vol, 4).await;
    let tickets = |event: &str| tickets_of(&receiver, event);
    // Copies refused: still overdue after the run.
    let refuse = refusing_copies(&m, 0, 403, "UnauthorizedOperation");
    let out = run_json(&m.env_at(&refuse.endpoint()), "db", "r1", &[]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let r = copies_report(&out);
    assert_eq!(r["overdue"][0]["volume_id"], json!(vol), "{r}");
    assert!(r["overdue"][0]["age_seconds"].as_i64().unwrap() > 3 * 86_400);
    let late = tickets("copy.overdue");
    assert_eq!(late.len(), 1, "{:?}", receiver.received());
    let f = &late[0]["failures"][0];
    assert_eq!(f["code"], "CopyOverdue");
    assert_eq!(f["category"], "capacity");
    let key = format!("std/db/{vol}/copy-{WEST}");
    assert_eq!(f["problem_key"], json!(key));
    assert!(tickets("copy.recovered").is_empty());
    drop(refuse);
    // Copies go through: the volume is within its limit again, and the problem is resolved.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let out = run_json(&m.env(), "db", "r2", &[]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let r = copies_report(&out);
    assert!(r.get("overdue").is_none(), "{r}");
    assert_eq!(r["recovered"], json!([vol]), "{r}");
    let back = tickets("copy.recovered");
    assert_eq!(back.len(), 1);
    assert_eq!(back[0]["severity"], "info");
    assert_eq!(back[0]["resolves"], json!([key]));
    assert_eq!(tickets("copy.overdue").len(), 1, "no new overdue ticket");
    // A third run sees the same copies: nothing to recover, nothing overdue.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let out = run_json(&m.env(), "db", "r3", &[]);
    let r = copies_report(&out);
    assert!(r.get("recovered").is_none(), "{r}");
    assert_eq!(tickets("copy.recovered").len(), 1);
}

#[tokio::test]
async fn a_targets_copy_retention_overrides_the_copy_block_for_its_copies() {
    let Some(m) = Moto::start() else { return };
    let c = m.clients().await;
    fleet::volume(&c, &[("Backup", "yes")]).await;
    // The copy block keeps 3 copies for 30 days; the target keeps 1 for 1 day.
    docs::store_policy(&c, &dr_policy(3, 30)).await;
    let mut t = docs::target("std", "db", json!({"volume_tags": {"Backup": "yes"}}));
    t["copies"] = json!([
        {"region": WEST, "retention_days": 1, "min_snapshots": 1, "max_snapshots": null},
        {"region": "eu-west-1", "retention_days": 1, "min_snapshots": null, "max_snapshots": null}
    ]);
    docs::store_target(&c, &t).await;
    for key in ["r1", "r2", "r3"] {
        std::thread::sleep(std::time::Duration::from_millis(1100));
        let out = run_json(&m.env(), "db", key, &[]);
        assert_eq!(out.code, 0, "{}", out.stderr);
    }
    assert_eq!(west_snapshots(&c).await.len(), 3);
    let later = (jiff::Timestamp::now() + jiff::SignedDuration::from_hours(24 * 10)).to_string();
    // `ebssnap snapshots` lists the copies per Region with what the target's rules decide.
    let listed = ebssnap(
        &m.env(),
        &["snapshots", "--policy", "std", "--now", &later, "--json"],
    );
    assert_eq!(listed.code, 0, "{}", listed.stderr);
    let rows = listed.json();
    let west_rows: Vec<&Value> = rows
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["region"] == WEST)
        .collect();
    assert_eq!(west_rows.len(), 3, "{rows}");
    assert!(
        west_rows
            .iter()
            .all(|r| r["source_snapshot_id"].is_string())
    );
    let mut statuses: Vec<&str> = west_rows
        .iter()
        .map(|r| r["status"].as_str().unwrap())
        .collect();
    statuses.sort();
    assert_eq!(statuses, ["expired", "expired", "kept_minimum"], "{rows}");
    assert_eq!(
        rows.as_array().unwrap()[0]["region"],
        "us-east-1",
        "the policy's Region first"
    );
    let out = run_json(&m.env(), "db", "r4", &["--now", &later]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let r = out.json();
    // Under the block's rules (3 kept for 30 days) nothing would go: the target's rules delete
    // all but the newest completed copy (and the new, pending one).
    assert_eq!(
        r["copies"][0]["deleted"].as_array().unwrap().len(),
        2,
        "{r}"
    );
    assert!(
        r["warnings"].as_array().unwrap().iter().any(|w| w
            .as_str()
            .unwrap()
            .contains("copy_retention for eu-west-1 is ignored")),
        "{r}"
    );
}
