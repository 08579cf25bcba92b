//! The runner against moto: selection, tags, idempotency, retention, failures, dry run, sweep.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use ebssnap::aws::ec2::fetch_inventory;
use ebssnap::core::select::select;
use ebssnap::runner::{self, RunOptions};
use jiff::{SignedDuration, Timestamp};
use serde_json::{Value, json};

use crate::docs::{self, p, t};
use crate::fleet::{self, Fleet};
use crate::moto::Moto;

macro_rules! moto {
    () => {
        match Moto::start() {
            Some(m) => m,
            None => return,
        }
    };
}

async fn selected(m: &Moto, select_json: Value) -> BTreeSet<String> {
    let c = m.clients().await;
    let doc = t(&docs::target("std", "sel", select_json));
    let inv = fetch_inventory(&c.ec2, &c.autoscaling, &doc.select)
        .await
        .expect("inventory");
    select(&doc.select, &doc.exclude(), &inv)
        .into_iter()
        .map(|s| s.volume_id)
        .collect()
}

fn set(ids: &[&String]) -> BTreeSet<String> {
    ids.iter().map(|s| s.to_string()).collect()
}

#[tokio::test]
async fn each_selection_source_and_exclusion_picks_exactly_the_expected_volumes() {
    let m = moto!();
    let c = m.clients().await;
    let f: Fleet = fleet::seed(&c).await;
    let asg: Vec<&String> = f.asg_volumes.iter().collect();
    assert_eq!(asg.len(), 2, "each ASG member has a root volume");

    // Auto Scaling group: its current members' volumes.
    assert_eq!(
        selected(&m, json!({"asg_names": ["web-prod"]})).await,
        set(&asg)
    );
    // Name globs: live instances only (db-9 is terminated); stopped db-2 is included.
    assert_eq!(
        selected(&m, json!({"instance_names": ["db-*"]})).await,
        set(&[&f.db1_root, &f.db1_data, &f.db2_root])
    );
    assert_eq!(
        selected(&m, json!({"instance_names": ["web-?"]})).await,
        set(&[&f.web_root])
    );
    // Instance ids (the terminated one is ignored).
    assert_eq!(
        selected(&m, json!({"instance_ids": [f.db2, f.dead]})).await,
        set(&[&f.db2_root])
    );
    // Instance tags: AND within the map, "*" = key present.
    assert_eq!(
        selected(&m, json!({"instance_tags": {"Env": "prod"}})).await,
        set(&[&f.db1_root, &f.db1_data, &f.web_root])
    );
    assert_eq!(
        selected(&m, json!({"instance_tags": {"Env": "prod", "Team": "*"}})).await,
        set(&[&f.db1_root, &f.db1_data])
    );
    // Volume ids and volume tags, attached or detached.
    assert_eq!(
        selected(&m, json!({"volume_ids": [f.free_plain, f.db1_data]})).await,
        set(&[&f.free_plain, &f.db1_data])
    );
    assert_eq!(
        selected(&m, json!({"volume_tags": {"Tier": "web"}})).await,
        set(&[&f.free_tagged, &f.dead_volume])
    );
    // Union across sources.
    assert_eq!(
        selected(
            &m,
            json!({"asg_names": ["web-prod"], "volume_ids": [f.free_plain]})
        )
        .await,
        set(&[asg[0], asg[1], &f.free_plain])
    );
    // Everything in the account.
    let all = selected(&m, json!({"all_volumes": true})).await;
    let mut want = vec![
        &f.db1_root,
        &f.db1_data,
        &f.db2_root,
        &f.web_root,
        &f.dead_volume,
        &f.free_tagged,
        &f.free_plain,
    ];
    want.extend(asg.iter().copied());
    assert_eq!(all, set(&want));

    // Exclusions: by id, by tag (any listed tag), root volumes.
    let base = json!({"instance_names": ["db-*"]});
    let excl = |e: Value| {
        let mut d = docs::target("std", "sel", base.clone());
        d["exclude"] = e;
        d
    };
    let run = |d: Value| {
        let m = &m;
        async move {
            let c = m.clients().await;
            let doc = t(&d);
            let inv = fetch_inventory(&c.ec2, &c.autoscaling, &doc.select)
                .await
                .unwrap();
            select(&doc.select, &doc.exclude(), &inv)
                .into_iter()
                .map(|s| s.volume_id)
                .collect::<BTreeSet<_>>()
        }
    };
    assert_eq!(
        run(excl(json!({"volume_ids": [f.db2_root]}))).await,
        set(&[&f.db1_root, &f.db1_data])
    );
    assert_eq!(
        run(excl(
            json!({"volume_tags": {"NoBackup": "*", "Other": "x"}})
        ))
        .await,
        set(&[&f.db1_root, &f.db2_root])
    );
    assert_eq!(
        run(excl(json!({"root_volumes": true}))).await,
        set(&[&f.db1_data])
    );
    let _ = (&f.db1, &f.db2, &f.web, &f.asg_members);
}

fn opts(run_key: &str) -> RunOptions {
    RunOptions {
        run_key: Some(run_key.into()),
        backoff: Duration::from_millis(10),
        ..RunOptions::default()
    }
}

#[tokio::test]
async fn snapshot_tags_are_the_expected_merge_and_dropped_tags_are_reported() {
    let m = moto!();
    let c = m.clients().await;
    let big = fleet::volume(&c, &[]).await;
    let many: Vec<(String, String)> = (0..47)
        .map(|i| (format!("k{i:02}"), format!("v{i}")))
        .collect();
    let many_ref: Vec<(&str, &str)> = many.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    fleet::tag(&c, &big, &many_ref).await;
    fleet::tag(&c, &big, &[("aws:cloudformation:stack-name", "stack")]).await; // 48 tags in all
    let small = fleet::volume(
        &c,
        &[
            ("App", "shop"),
            ("ebssnap:policy", "forged"),
            ("aws:x", "y"),
        ],
    )
    .await;

    let pol = docs::policy("std", 14, 3);
    let tgt = docs::target("std", "tags", json!({"volume_ids": [big, small]}));
    let r = runner::run_target(&c, &p(&pol), &t(&tgt), &opts("r1"))
        .await
        .unwrap();
    assert!(r.failures.is_empty(), "{:?}", r.failures);
    assert_eq!(r.created.len(), 2);

    let snaps = fleet::snapshots(&c).await;
    let tags_of = |vol: &str| {
        snaps
            .values()
            .find(|(v, _)| v == vol)
            .map(|(_, t)| t.clone())
            .unwrap()
    };
    let small_tags = tags_of(&small);
    let want: BTreeMap<String, String> = [
        ("ebssnap:policy", "std"),
        ("ebssnap:target", "tags"),
        ("ebssnap:run", "r1"),
        ("ebssnap:volume", small.as_str()),
        ("Backup", "ebssnap"),
        ("App", "shop"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    assert_eq!(
        small_tags, want,
        "aws: skipped, ebssnap: never copied or overwritten"
    );

    // 4 ebssnap + 1 extra + 47 copyable = 52: the last two copied keys are dropped.
    let big_tags = tags_of(&big);
    assert_eq!(big_tags.len(), 50);
    assert_eq!(big_tags["ebssnap:volume"], big);
    assert!(!big_tags.contains_key("aws:cloudformation:stack-name"));
    let dropped: Vec<&str> = r.tags_dropped.iter().map(|d| d.key.as_str()).collect();
    assert_eq!(dropped, ["k45", "k46"]);
    assert!(
        r.tags_dropped
            .iter()
            .all(|d| d.volume_id == big && d.source == "volume")
    );
}

#[tokio::test]
async fn the_same_run_key_twice_creates_nothing_the_second_time() {
    let m = moto!();
    let c = m.clients().await;
    let (_, _) = fleet::instance(&c, &[("Name", "app-1")]).await;
    let (_, _) = fleet::instance(&c, &[("Name", "app-2")]).await;
    let pol = p(&docs::policy("std", 14, 3));
    let tgt = t(&docs::with_run(
        docs::target("std", "app", json!({"instance_names": ["app-*"]})),
        "2026-11-26T05:00:00Z",
    ));
    let first = runner::run_target(&c, &pol, &tgt, &RunOptions::default())
        .await
        .unwrap();
    assert_eq!(
        first.run_key, "2026-11-26T05:00:00Z",
        "the scheduled time is the run key"
    );
    assert_eq!(first.created.len(), 2);
    let second = runner::run_target(&c, &pol, &tgt, &RunOptions::default())
        .await
        .unwrap();
    assert!(second.created.is_empty());
    assert_eq!(second.skipped.len(), 2);
    assert!(second.skipped[0].reason.contains("already snapshotted"));
    assert!(!second.api_calls.calls.contains_key("CreateSnapshot"));
    assert_eq!(fleet::snapshots(&c).await.len(), 2);
}

#[tokio::test]
async fn sweep_prunes_removed_targets_and_orphans_and_keeps_live_targets() {
    let m = moto!();
    let c = m.clients().await;
    let live = fleet::volume(&c, &[("Keep", "me")]).await;
    let doomed = fleet::volume(&c, &[("Gone", "soon")]).await;
    let mut pol = docs::policy("std", 7, 2);
    pol["orphans"] = json!({"delete_after_days": 30});
    docs::store_policy(&c, &pol).await;
    let live_t = docs::target("std", "live", json!({"volume_ids": [live]}));
    docs::store_target(&c, &live_t).await;
    let old_t = docs::target("std", "old", json!({"volume_ids": [doomed]}));
    for key in ["r1", "r2", "r3"] {
        runner::run_target(&c, &p(&pol), &t(&live_t), &opts(key))
            .await
            .unwrap();
        runner::run_target(&c, &p(&pol), &t(&old_t), &opts(key))
            .await
            .unwrap();
    }
    c.ec2
        .delete_volume()
        .volume_id(&doomed)
        .send()
        .await
        .unwrap();
    let later = RunOptions {
        now: Timestamp::now() + SignedDuration::from_hours(24 * 40),
        ..opts("sweep")
    };
    let r = runner::sweep(&c, &p(&pol), &later).await.unwrap();
    // live target: 3 old snapshots, min 2 kept -> 1 deleted; orphaned "old" target: the newest
    // is older than 30 days -> the minimum is released -> all 3 deleted.
    let by_vol = |v: &str| r.deleted.iter().filter(|d| d.volume_id == v).count();
    assert_eq!(by_vol(&live), 1, "{:?}", r.deleted);
    assert_eq!(by_vol(&doomed), 3, "{:?}", r.deleted);
    assert_eq!(fleet::snapshots(&c).await.len(), 2);
    assert!(r.failures.is_empty());
}
