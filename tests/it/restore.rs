//! `ebssnap restore`, `restore list`, `restore cleanup` end to end against moto (issue 21,
//! docs/design.md §11). Emulated: a lost CreateVolume answer, by the chaos proxy (moto ignores
//! `ClientToken`, AWS honours it); counting CreateVolume calls, by the loopback proxy.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use serde_json::{Value, json};

use crate::chaos::{ChaosProxy, Fault};
use crate::cli::{Out, ebssnap, run_keyed};
use crate::docs;
use crate::fleet;
use crate::moto::Moto;
use crate::proxy::{Action, Proxy};
use ebssnap::aws::Clients;

macro_rules! moto {
    () => {
        match Moto::start() {
            Some(m) => m,
            None => return,
        }
    };
}

const RUN1: &str = "2026-12-01T05:00:00Z";
const RUN2: &str = "2026-12-02T05:00:00Z";

/// An instance whose data volume (named "db-1 data", tagged Team=data) has two restore points of
/// policy std / target web (runs RUN1 and RUN2). Returns (instance, data volume).
async fn restorable(m: &Moto, c: &Clients) -> (String, String) {
    let (instance, _root) = fleet::instance(c, &[("Name", "db-1")]).await;
    let data = fleet::volume(c, &[("Name", "db-1 data"), ("Team", "data")]).await;
    fleet::attach(c, &data, &instance, "/dev/sdf").await;
    docs::store_policy(c, &docs::policy("std", 7, 1)).await;
    let tgt = docs::target("std", "web", json!({"volume_ids": [data]}));
    docs::store_target(c, &tgt).await;
    for run in [RUN1, RUN2] {
        run_keyed(&m.env(), "std", "web", run);
    }
    (instance, data)
}

/// Volumes tagged `ebssnap:restore-of` = `source`: id -> (state, tags, attached instance).
async fn restores_of(
    c: &Clients,
    source: &str,
) -> BTreeMap<String, (String, BTreeMap<String, String>, Option<String>)> {
    let out = c
        .ec2
        .describe_volumes()
        .filters(
            aws_sdk_ec2::types::Filter::builder()
                .name("tag:ebssnap:restore-of")
                .values(source)
                .build(),
        )
        .send()
        .await
        .expect("DescribeVolumes");
    out.volumes()
        .iter()
        .map(|v| {
            let tags = v
                .tags()
                .iter()
                .map(|t| (t.key().unwrap().to_string(), t.value().unwrap().to_string()))
                .collect();
            (
                v.volume_id().unwrap().to_string(),
                (
                    v.state().unwrap().as_str().to_string(),
                    tags,
                    v.attachments()
                        .first()
                        .and_then(|a| a.instance_id())
                        .map(String::from),
                ),
            )
        })
        .collect()
}

#[tokio::test]
async fn a_volume_comes_back_from_its_newest_restore_point_and_attaches_for_a_file_restore() {
    let m = moto!();
    let c = m.clients().await;
    let (instance, data) = restorable(&m, &c).await;
    let snaps = fleet::snapshots(&c).await;
    let of_run = |run: &str| {
        snaps
            .iter()
            .find(|(_, (v, t))| v == &data && t.get("ebssnap:run").map(String::as_str) == Some(run))
            .map(|(id, _)| id.clone())
            .unwrap()
    };

    // The default: the newest completed restore point, in the source's zone, kept 24 h.
    let out = ebssnap(&m.env(), &["restore", "--volume", &data, "--json"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let r = out.json();
    assert_eq!(r["snapshot_id"], json!(of_run(RUN2)));
    assert_eq!(r["run"], RUN2);
    assert_eq!(r["state"], "available");
    assert_eq!(r["availability_zone"], "us-east-1a");
    assert_eq!(
        (r["volume_type"].clone(), r["size_gb"].clone()),
        (json!("gp2"), json!(8))
    );
    let expires: jiff::Timestamp = r["expires"].as_str().unwrap().parse().unwrap();
    let ttl = expires - jiff::Timestamp::now();
    assert!(ttl > jiff::SignedDuration::from_hours(23), "{ttl:?}");
    let id = r["volume_id"].as_str().unwrap().to_string();
    let made = restores_of(&c, &data).await;
    let (_, tags, _) = &made[&id];
    assert_eq!(tags["ebssnap:restored-from"], of_run(RUN2));
    assert_eq!(tags["ebssnap:run"], RUN2);
    assert_eq!(tags["Team"], "data", "the snapshot's own tags are copied");
    assert_eq!(tags["Name"], format!("restore of db-1 data at {RUN2}"));
    assert!(
        !tags.contains_key("ebssnap:policy"),
        "never joins a pair: {tags:?}"
    );

    // A chosen run, attached to the instance for a single-file restore, kept 8 h.
    let out = ebssnap(
        &m.env(),
        &[
            "restore", "--volume", &data, "--run", RUN1, "--attach", &instance, "--device",
            "/dev/sdg", "--ttl", "8h",
        ],
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out.stdout.contains("restored vol-"), "{}", out.stdout);
    assert!(
        out.stdout.contains(&format!("on {instance} as /dev/sdg")),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains("next: "), "{}", out.stdout);
    let made = restores_of(&c, &data).await;
    assert_eq!(made.len(), 2);
    let attached: Vec<_> = made
        .values()
        .filter(|(_, t, _)| t["ebssnap:restored-from"] == of_run(RUN1))
        .collect();
    assert_eq!(attached.len(), 1);
    assert_eq!(attached[0].0, "in-use");
    assert_eq!(attached[0].2.as_deref(), Some(instance.as_str()));

    // Every restore volume is listed with its source and expiry.
    let list = ebssnap(&m.env(), &["restore", "list", "--json"]).json();
    let rows = list.as_array().unwrap();
    assert_eq!(rows.len(), 2);
    assert!(
        rows.iter()
            .all(|r| r["restore_of"] == json!(data) && r["fate"] == "keep")
    );
}

#[tokio::test]
async fn bad_input_creates_nothing_and_says_what_exists() {
    let m = moto!();
    let c = m.clients().await;
    let (instance, data) = restorable(&m, &c).await;
    let unprotected = fleet::volume(&c, &[]).await;
    let creates = Arc::new(AtomicU64::new(0));
    let seen = creates.clone();
    let proxy = Proxy::start(
        m.port,
        Box::new(move |_, _, body| {
            if body.contains("Action=CreateVolume&") {
                seen.fetch_add(1, Ordering::SeqCst);
            }
            Action::Forward
        }),
    );
    let env = m.env_at(&proxy.endpoint());
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            vec!["--volume", &unprotected],
            "has no ebssnap restore point",
        ),
        (
            vec!["--volume", &data, "--run", "2020-01-01T00:00:00Z"],
            "no restore point of run",
        ),
        (
            vec!["--volume", &data, "--snapshot", "snap-0000000000000000f"],
            "not a restore point",
        ),
        (
            vec!["--volume", &data, "--availability-zone", "us-east-1z"],
            "not an Availability Zone",
        ),
        (
            vec!["--volume", &data, "--size", "1"],
            "smaller than the snapshot",
        ),
        (
            vec!["--volume", &data, "--volume-type", "gp2", "--iops", "3000"],
            "takes no --iops",
        ),
        (
            vec![
                "--volume",
                &data,
                "--attach",
                &instance,
                "--device",
                "/dev/sdg",
                "--availability-zone",
                "us-east-1b",
            ],
            "a volume attaches only in its own zone",
        ),
        (
            vec![
                "--volume", &data, "--attach", &instance, "--device", "/dev/sdf",
            ],
            "is in use on",
        ),
        (
            vec!["--volume", &data, "--ttl", "soon"],
            "not a time to live",
        ),
        (vec!["--volume", &data, "--attach", &instance], "--device"),
    ];
    for (args, says) in cases {
        let mut all = vec!["restore"];
        all.extend(args.iter().copied());
        let out: Out = ebssnap(&env, &all);
        assert_eq!(out.code, 2, "{all:?}: {}", out.stderr);
        assert!(
            out.stderr.contains(says),
            "{all:?} should say {says:?}: {}",
            out.stderr
        );
    }
    // The three newest restore points are named when the choice does not exist.
    let out = ebssnap(
        &env,
        &["restore", "--volume", &data, "--run", "nope", "--json"],
    );
    let err: Value = out.json();
    assert!(
        err["error"]["message"].as_str().unwrap().contains(RUN2),
        "{err}"
    );
    assert_eq!(
        creates.load(Ordering::SeqCst),
        0,
        "bad input created a volume"
    );
    // A dry run checks everything and creates nothing either.
    let out = ebssnap(&env, &["restore", "--volume", &data, "--dry-run", "--json"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.json()["volume_id"], Value::Null);
    assert_eq!(creates.load(Ordering::SeqCst), 0);
    assert!(restores_of(&c, &data).await.is_empty());
}

#[tokio::test]
async fn a_restore_whose_answer_is_lost_leaves_one_volume() {
    let m = moto!();
    let c = m.clients().await;
    let (_, data) = restorable(&m, &c).await;
    // The first CreateVolume reaches moto, then its answer is lost.
    let proxy = ChaosProxy::start(
        m.port,
        Arc::new(|op, n| (op == "CreateVolume" && n == 1).then_some(Fault::LostAnswer)),
    );
    let out = ebssnap(
        &m.env_at(&proxy.endpoint()),
        &["restore", "--volume", &data, "--json"],
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(
        proxy.faults().values().sum::<u64>(),
        1,
        "the fault happened"
    );
    let r = out.json();
    assert_eq!(
        r["ambiguous"],
        json!({"count": 1, "found": 1, "retried": 0})
    );
    let made = restores_of(&c, &data).await;
    assert_eq!(made.len(), 1, "{made:?}");
    assert!(made.contains_key(r["volume_id"].as_str().unwrap()));
}

#[tokio::test]
async fn cleanup_deletes_expired_detached_restore_volumes_and_nothing_else() {
    let m = moto!();
    let c = m.clients().await;
    let (instance, data) = restorable(&m, &c).await;
    let restore = |extra: &[&str]| {
        let mut args = vec!["restore", "--volume", data.as_str(), "--json"];
        args.extend(extra.iter().copied());
        let out = ebssnap(&m.env(), &args);
        assert_eq!(out.code, 0, "{}", out.stderr);
        out.json()["volume_id"].as_str().unwrap().to_string()
    };
    let expired = restore(&["--ttl", "1h"]);
    let attached = restore(&["--ttl", "1h", "--attach", &instance, "--device", "/dev/sdh"]);
    let kept = restore(&["--keep"]);
    let later = restore(&["--ttl", "2d"]);
    let plain = fleet::volume(&c, &[("Name", "not a restore")]).await;
    let now = (jiff::Timestamp::now() + jiff::SignedDuration::from_hours(2)).to_string();

    let dry = ebssnap(
        &m.env(),
        &["restore", "cleanup", "--dry-run", "--now", &now, "--json"],
    );
    assert_eq!(dry.code, 0, "{}", dry.stderr);
    assert_eq!(dry.json()["deleted"][0]["volume_id"], json!(expired));
    assert_eq!(
        restores_of(&c, &data).await.len(),
        4,
        "a dry run deletes nothing"
    );

    let out = ebssnap(&m.env(), &["restore", "cleanup", "--now", &now, "--json"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let done = out.json();
    let ids = |k: &str| -> Vec<String> {
        done[k]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v["volume_id"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(ids("deleted"), [expired]);
    assert_eq!(ids("expired_in_use"), std::slice::from_ref(&attached));
    assert_eq!(done["kept"], 2);
    let left = restores_of(&c, &data).await;
    let mut left_ids: Vec<&String> = left.keys().collect();
    left_ids.sort();
    let mut want = vec![&attached, &kept, &later];
    want.sort();
    assert_eq!(left_ids, want);
    assert_eq!(left[&attached].0, "in-use", "never detached");
    // A volume without ebssnap:restore-of is never touched.
    let plain_left = c
        .ec2
        .describe_volumes()
        .volume_ids(&plain)
        .send()
        .await
        .expect("DescribeVolumes");
    assert_eq!(plain_left.volumes().len(), 1);
    let text = ebssnap(&m.env(), &["restore", "cleanup", "--now", &now]);
    assert!(text.stdout.contains("not touched"), "{}", text.stdout);
}

/// Three volumes of target web, each with restore points of two runs; policy std's webhook is
/// `receiver` when given. Returns the volumes.
async fn three_pairs(m: &Moto, c: &Clients, webhook: Option<&str>) -> Vec<String> {
    let mut vols = Vec::new();
    for i in 0..3 {
        vols.push(fleet::volume(c, &[("Backup", "yes"), ("Name", &format!("data-{i}"))]).await);
    }
    vols.sort();
    let mut pol = docs::policy("std", 7, 1);
    if let Some(url) = webhook {
        pol["notify"] = json!({"webhook_url": url});
    }
    docs::store_policy(c, &pol).await;
    let tgt = docs::target("std", "web", json!({"volume_tags": {"Backup": "yes"}}));
    docs::store_target(c, &tgt).await;
    for run in [RUN1, RUN2] {
        run_keyed(&m.env(), "std", "web", run);
    }
    vols
}

/// Snapshot id -> its restore-test tags (tested, failed).
async fn test_marks(c: &Clients) -> BTreeMap<String, (Option<String>, Option<String>)> {
    fleet::snapshots(c)
        .await
        .into_iter()
        .map(|(id, (_, t))| {
            (
                id,
                (
                    t.get("ebssnap:restore-tested").cloned(),
                    t.get("ebssnap:restore-failed").cloned(),
                ),
            )
        })
        .collect()
}

/// Volumes a restore test made that still exist.
async fn test_volumes_left(c: &Clients) -> usize {
    c.ec2
        .describe_volumes()
        .filters(
            aws_sdk_ec2::types::Filter::builder()
                .name("tag-key")
                .values("ebssnap:restore-test")
                .build(),
        )
        .send()
        .await
        .expect("DescribeVolumes")
        .volumes()
        .len()
}

#[tokio::test]
async fn restore_tests_rotate_through_pairs_mark_the_snapshots_and_leave_no_volume() {
    let m = moto!();
    let c = m.clients().await;
    let vols = three_pairs(&m, &c, None).await;
    let test = || {
        let out = ebssnap(
            &m.env(),
            &["restore-test", "--policy", "std", "--sample", "2", "--json"],
        );
        assert_eq!(out.code, 0, "{}", out.stderr);
        out.json()
    };
    let first = test();
    let tested: Vec<String> = first["restore_tests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            assert_eq!(t["outcome"], "passed", "{t}");
            assert_eq!(t["volume_deleted"], true);
            assert_eq!(t["run"], RUN2, "the newest restore point is tested");
            assert!(t["seconds"].as_f64().is_some());
            t["volume_id"].as_str().unwrap().to_string()
        })
        .collect();
    assert_eq!(tested, vols[..2], "never tested: in volume order");
    assert_eq!(test_volumes_left(&c).await, 0, "every test volume deleted");
    let marks = test_marks(&c).await;
    let passed: Vec<&String> = marks
        .iter()
        .filter(|(_, (ok, _))| ok.is_some())
        .map(|(id, _)| id)
        .collect();
    assert_eq!(passed.len(), 2, "{marks:?}");
    // The next run takes the pair never tested first, then the one tested longest ago.
    let second = test();
    let next: Vec<&str> = second["restore_tests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["volume_id"].as_str().unwrap())
        .collect();
    assert_eq!(next[0], vols[2], "{second}");
    assert_eq!(test_volumes_left(&c).await, 0);
    // A dry run tests nothing and marks nothing.
    let before = test_marks(&c).await;
    let dry = ebssnap(
        &m.env(),
        &["restore-test", "--policy", "std", "--dry-run", "--json"],
    );
    assert_eq!(dry.code, 0, "{}", dry.stderr);
    assert_eq!(dry.json()["restore_tests"][0]["outcome"], "not_started");
    assert_eq!(test_marks(&c).await, before);
}

#[tokio::test]
async fn a_failing_restore_test_raises_restore_failed_then_restore_recovered() {
    let m = moto!();
    let c = m.clients().await;
    let receiver = crate::tickets::Receiver::start(vec![]);
    let vols = three_pairs(&m, &c, Some(&receiver.url())).await;
    // EC2 refuses every CreateVolume (as for a KMS key the runner may not use).
    let proxy = Proxy::start(
        m.port,
        Box::new(|_, _, body| {
            if body.contains("Action=CreateVolume&") {
                Action::Respond(
                    400,
                    "text/xml",
                    "<Response><Errors><Error><Code>InvalidParameterValue</Code><Message>The key is not usable.</Message></Error></Errors><RequestID>r</RequestID></Response>".into(),
                )
            } else {
                Action::Forward
            }
        }),
    );
    let out = ebssnap(
        &m.env_at(&proxy.endpoint()),
        &["restore-test", "--policy", "std", "--sample", "1", "--json"],
    );
    assert_eq!(
        out.code, 1,
        "a failed restore test fails the run: {}",
        out.stderr
    );
    let r = out.json();
    assert_eq!(r["restore_tests"][0]["outcome"], "failed");
    assert_eq!(r["restore_tests"][0]["volume_id"], json!(vols[0]));
    let got = receiver.received();
    assert_eq!(got.len(), 1);
    let t = got[0].json();
    assert_eq!(t["event"], "restore.failed");
    assert_eq!(t["failures"][0]["code"], "RestoreFailed");
    assert_eq!(t["failures"][0]["category"], "restore");
    let key = format!("std/web/{}/restore", vols[0]);
    assert_eq!(t["failures"][0]["problem_key"], json!(key));
    assert!(
        t["failures"][0]["message"]
            .as_str()
            .unwrap()
            .contains("InvalidParameterValue"),
        "{t}"
    );
    let failed_marks = test_marks(&c)
        .await
        .into_values()
        .filter(|(_, f)| f.is_some())
        .count();
    assert_eq!(failed_marks, 1);
    drop(proxy);

    // Pairs 1 and 2 were never tested: they go first; then pair 0 passes and recovers.
    for _ in 0..2 {
        let out = ebssnap(
            &m.env(),
            &["restore-test", "--policy", "std", "--sample", "1", "--json"],
        );
        assert_eq!(out.code, 0, "{}", out.stderr);
    }
    assert_eq!(receiver.received().len(), 1, "passing tests send nothing");
    let out = ebssnap(
        &m.env(),
        &["restore-test", "--policy", "std", "--sample", "1", "--json"],
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    let r = out.json();
    assert_eq!(r["restore_tests"][0]["volume_id"], json!(vols[0]));
    assert_eq!(r["restore_tests"][0]["recovered"], true);
    let got = receiver.received();
    assert_eq!(got.len(), 2);
    let t = got[1].json();
    assert_eq!(t["event"], "restore.recovered");
    assert_eq!(t["resolves"], json!([key]));
    assert_eq!(test_volumes_left(&c).await, 0);
}

#[tokio::test]
async fn the_lambda_runs_a_scheduled_restore_test_and_refuses_a_forged_one() {
    let m = moto!();
    let c = m.clients().await;
    let vols = three_pairs(&m, &c, None).await;
    docs::store_restore_test(&c, "std", 2).await;
    let event = |time: &str| {
        json!({"ebssnap": 1, "kind": "restore_test", "policy": "std", "sample": 50,
               "timeout_minutes": 720, "invocation": {"scheduled_time": time}})
    };
    let fire = docs::recent_fire(0);
    let answers = crate::lambda::answers_of(&m, vec![event(&fire), event("2026-12-06T05:17:00Z")]);
    // The schedule's document decides (sample 2), not the event's (sample 50).
    let (_, kind, report) = &answers[0];
    assert_eq!(kind, "response", "{report}");
    assert_eq!(report["kind"], "restore_test");
    assert_eq!(report["run_key"], json!(fire));
    let tested = report["restore_tests"].as_array().unwrap();
    assert_eq!(tested.len(), 2, "{report}");
    assert!(tested.iter().all(|t| t["outcome"] == "passed"));
    assert_eq!(tested[0]["volume_id"], json!(vols[0]));
    assert!(
        report["warnings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|w| w.as_str().unwrap().contains("differs from the schedule's")),
        "{report}"
    );
    // A time that is no fire of the schedule: refused, nothing tested.
    assert_eq!(answers[1].2["kind"], "rejected_event", "{:?}", answers[1]);
    assert_eq!(test_volumes_left(&c).await, 0);
    let marked = test_marks(&c)
        .await
        .into_values()
        .filter(|(ok, _)| ok.is_some())
        .count();
    assert_eq!(marked, 2);
}

#[tokio::test]
async fn an_instance_comes_back_whole_at_the_newest_run_all_its_volumes_share() {
    let m = moto!();
    let c = m.clients().await;
    let (instance, data) = restorable(&m, &c).await;
    let root = fleet::volumes_of(&c, &instance)
        .await
        .into_iter()
        .find(|v| *v != data)
        .unwrap();
    // The root volume (another target) has runs 2 and 3; the data volume runs 1 and 2: run 3 is
    // not a run of the whole instance, run 2 is the newest that is.
    let only_root = docs::target("std", "root", json!({"volume_ids": [root]}));
    docs::store_target(&c, &only_root).await;
    let run3 = "2026-12-03T05:00:00Z";
    for run in [RUN2, run3] {
        run_keyed(&m.env(), "std", "root", run);
    }

    let out = ebssnap(&m.env(), &["restore", "--instance", &instance, "--json"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let all = out.json();
    let rows = all.as_array().unwrap();
    assert_eq!(rows.len(), 2, "{all}");
    let mut sources: Vec<&str> = rows
        .iter()
        .map(|r| r["restore_of"].as_str().unwrap())
        .collect();
    sources.sort();
    let mut want = vec![root.as_str(), data.as_str()];
    want.sort();
    assert_eq!(sources, want);
    assert!(
        rows.iter()
            .all(|r| r["run"] == RUN2 && r["state"] == "available"),
        "{all}"
    );

    // A run the data volume does not have: refused before anything is created.
    let before = restores_of(&c, &root).await.len() + restores_of(&c, &data).await.len();
    let out = ebssnap(
        &m.env(),
        &["restore", "--instance", &instance, "--run", run3],
    );
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(
        out.stderr.contains("no restore point of run"),
        "{}",
        out.stderr
    );
    let after = restores_of(&c, &root).await.len() + restores_of(&c, &data).await.len();
    assert_eq!(before, after, "nothing created");
}

#[tokio::test]
async fn the_policy_sweep_deletes_its_expired_restore_volumes_and_reports_attached_ones() {
    let m = moto!();
    let c = m.clients().await;
    let receiver = crate::tickets::Receiver::start(vec![]);
    let (instance, data) = restorable(&m, &c).await;
    let mut pol = docs::policy("std", 7, 1);
    pol["notify"] = json!({"webhook_url": receiver.url()});
    c.scheduler
        .delete_schedule()
        .group_name("ebssnap-std")
        .name("_policy")
        .send()
        .await
        .unwrap();
    c.scheduler
        .delete_schedule_group()
        .name("ebssnap-std")
        .send()
        .await
        .unwrap();
    docs::store_policy(&c, &pol).await;
    let restore = |extra: &[&str]| {
        let mut args = vec!["restore", "--volume", data.as_str(), "--json"];
        args.extend(extra.iter().copied());
        let out = ebssnap(&m.env(), &args);
        assert_eq!(out.code, 0, "{}", out.stderr);
        out.json()["volume_id"].as_str().unwrap().to_string()
    };
    let expired = restore(&["--ttl", "1h"]);
    let attached = restore(&["--ttl", "1h", "--attach", &instance, "--device", "/dev/sdh"]);
    let kept = restore(&["--keep"]);
    let now = (jiff::Timestamp::now() + jiff::SignedDuration::from_hours(2)).to_string();
    let out = ebssnap(
        &m.env(),
        &["sweep", "--policy", "std", "--now", &now, "--json"],
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    let r = out.json();
    assert_eq!(r["restore_volumes_deleted"], json!([expired]));
    assert_eq!(r["restore_volumes_in_use"][0]["volume_id"], json!(attached));
    let left = restores_of(&c, &data).await;
    assert!(!left.contains_key(&expired));
    assert!(left.contains_key(&attached) && left.contains_key(&kept));
    let got = receiver.received();
    let t = got
        .iter()
        .map(|g| g.json())
        .find(|t| t["event"] == "restore.expired")
        .unwrap_or_else(|| panic!("no restore.expired ticket: {:?}", got.len()));
    assert_eq!(t["severity"], "warning");
    assert_eq!(t["failures"][0]["code"], "ExpiredRestoreVolumeInUse");
    assert_eq!(t["failures"][0]["volume_id"], json!(attached));
    assert_eq!(t["failures"][0]["instance_id"], json!(instance));
}

#[tokio::test]
async fn a_re_encrypting_restore_sends_the_key_and_a_test_out_of_time_fails_nothing() {
    let m = moto!();
    let c = m.clients().await;
    let (_, data) = restorable(&m, &c).await;
    // What the CLI sends (moto does not model KMS on volumes: the request is what is checked).
    let bodies = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let seen = bodies.clone();
    let proxy = Proxy::start(
        m.port,
        Box::new(move |_, _, body| {
            if body.contains("Action=CreateVolume&") {
                seen.lock().unwrap().push(body.to_string());
            }
            Action::Forward
        }),
    );
    let key = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab";
    let out = ebssnap(
        &m.env_at(&proxy.endpoint()),
        &["restore", "--volume", &data, "--kms-key-id", key, "--json"],
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.json()["encrypted"], true);
    let sent = bodies.lock().unwrap().clone();
    assert_eq!(sent.len(), 1);
    assert!(sent[0].contains("Encrypted=true"), "{}", sent[0]);
    assert!(sent[0].contains("KmsKeyId=arn%3Aaws%3Akms"), "{}", sent[0]);
    assert!(sent[0].contains("ClientToken=ebssnap-"), "{}", sent[0]);
    drop(proxy);

    // A restore test whose run has no time left starts nothing and fails nothing.
    let pol = docs::p(&docs::policy("std", 7, 1));
    let opts = ebssnap::runner::RunOptions {
        stop_at: Some(std::time::Instant::now()),
        ..ebssnap::runner::RunOptions::default()
    };
    let r = ebssnap::runner::restore_test::restore_test(
        &c,
        &pol,
        &ebssnap::runner::restore_test::Settings {
            sample: 2,
            timeout: std::time::Duration::from_secs(60),
        },
        None,
        &opts,
    )
    .await
    .unwrap();
    assert_eq!(r.restore_tests.len(), 1, "{r:?}");
    assert_eq!(
        r.restore_tests[0].outcome,
        ebssnap::core::restore_test::Outcome::NotStarted
    );
    assert!(!r.failed());
    assert_eq!(test_volumes_left(&c).await, 0);
}
