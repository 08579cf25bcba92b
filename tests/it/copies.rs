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
    let west = c.ec2_in(WEST);
    let out = west
        .describe_snapshots()
        .owner_ids("self")
        .send()
        .await
        .expect("DescribeSnapshots");
    out.snapshots()
        .iter()
        .map(|s| {
            (
                s.snapshot_id().unwrap().to_string(),
                s.tags()
                    .iter()
                    .map(|t| (t.key().unwrap().to_string(), t.value().unwrap().to_string()))
                    .collect(),
            )
        })
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
    let mut pol = dr_policy(1, 30);
    pol["notify"] = json!({"webhook_url": receiver.url()});
    docs::store_policy(&c, &pol).await;
    docs::store_target(
        &c,
        &docs::target("std", "db", json!({"volume_tags": {"Backup": "yes"}})),
    )
    .await;
    let refuse = refusing_copies(&m, 0, 403, "UnauthorizedOperation");
    let out = run_json(&m.env_at(&refuse.endpoint()), "db", "r1", &[]);
    assert_eq!(out.code, 0, "a copy never fails the run: {}", out.stderr);
    let r = out.json();
    assert_eq!(r["created"].as_array().unwrap().len(), 1);
    let f = &r["copies"][0]["failures"][0];
    assert_eq!(f["code"], "UnauthorizedOperation", "{r}");
    assert_eq!(f["volume_id"], json!(vol));
    let tickets: Vec<Value> = receiver
        .received()
        .iter()
        .map(|g| serde_json::from_str(&g.body).unwrap())
        .collect();
    let t = tickets
        .iter()
        .find(|t| t["event"] == "copy.failed")
        .unwrap_or_else(|| panic!("no copy.failed: {tickets:?}"));
    assert_eq!(t["severity"], "error");
    let tf = &t["failures"][0];
    assert_eq!(tf["category"], "permission");
    assert_eq!(
        tf["problem_key"],
        json!(format!("std/db/{vol}/copy-{WEST}"))
    );
    assert_eq!(r["copy_tickets"][0]["delivered"], true, "{r}");
}
