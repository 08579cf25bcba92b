//! The `ebssnap` binary end to end against moto: flags, exit codes, reports.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use ebssnap::runner::{self, RunOptions};
use jiff::{SignedDuration, Timestamp};
use serde_json::{Value, json};

use crate::docs::{self, p, t};
use crate::fleet;
use crate::moto::Moto;
use crate::proxy::{Action, Proxy, ec2_call};

macro_rules! moto {
    () => {
        match Moto::start() {
            Some(m) => m,
            None => return,
        }
    };
}

pub struct Out {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Out {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| {
            panic!("stdout is not JSON ({e}): {}\n{}", self.stdout, self.stderr)
        })
    }
}

pub fn ebssnap(env: &[(&str, String)], args: &[&str]) -> Out {
    let out = Command::new(env!("CARGO_BIN_EXE_ebssnap"))
        .env_remove("AWS_PROFILE")
        .env_remove("AWS_LAMBDA_RUNTIME_API")
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .args(args)
        .output()
        .expect("run ebssnap");
    Out {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into(),
        stderr: String::from_utf8_lossy(&out.stderr).into(),
    }
}

/// `ebssnap run --policy P --target T --run-key K`: one run with a chosen key; asserts exit 0.
pub fn run_keyed(env: &[(&str, String)], policy: &str, target: &str, key: &str) -> Out {
    let out = ebssnap(
        env,
        &[
            "run",
            "--policy",
            policy,
            "--target",
            target,
            "--run-key",
            key,
        ],
    );
    assert_eq!(out.code, 0, "run {policy}/{target} {key}: {}", out.stderr);
    out
}

fn write(dir: &Path, name: &str, v: &Value) -> String {
    let path = dir.join(name);
    std::fs::write(&path, v.to_string()).unwrap();
    path.display().to_string()
}

pub fn tempdir() -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!(
        "ebssnap-it-{}-{}",
        std::process::id(),
        Timestamp::now().as_nanosecond()
    ));
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn ids(v: &Value, list: &str, field: &str) -> BTreeSet<String> {
    v[list]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x[field].as_str().unwrap_or("null").to_string())
        .collect()
}

/// The retention acceptance: 40 days later, with 14 days / min 3, exactly the older snapshots go,
/// 3 remain per volume, and nothing that is not ours is touched.
#[tokio::test]
async fn forty_days_later_prunes_exactly_the_expected_snapshots() {
    let m = moto!();
    let c = m.clients().await;
    let va = fleet::volume(&c, &[("Backup", "yes")]).await;
    let vb = fleet::volume(&c, &[("Backup", "yes")]).await;
    let pol = docs::policy("std", 14, 3);
    let tgt = docs::target("std", "ret", json!({"volume_tags": {"Backup": "yes"}}));
    let run = |key: &'static str| {
        let (c, pol, tgt) = (&c, &pol, &tgt);
        async move {
            let o = RunOptions {
                run_key: Some(key.into()),
                ..RunOptions::default()
            };
            let r = runner::run_target(c, &p(pol), &t(tgt), &o).await.unwrap();
            assert_eq!(r.created.len(), 2);
            r.created
                .into_iter()
                .map(|x| x.snapshot_id.unwrap())
                .collect::<Vec<_>>()
        }
    };
    // Older batch (to be deleted), then a newer one (the 3 kept), a second apart.
    let mut old: BTreeSet<String> = BTreeSet::new();
    old.extend(run("r1").await);
    old.extend(run("r2").await);
    // Snapshots that are not ours to touch, all old enough to be pruned if they were.
    let untagged = fleet::manual_snapshot(&c, &va, &[]).await;
    let snapper = fleet::manual_snapshot(&c, &va, &[("DeleteOn", "2026-01-01")]).await;
    let other_policy = fleet::manual_snapshot(
        &c,
        &va,
        &[
            ("ebssnap:policy", "gold"),
            ("ebssnap:target", "ret"),
            ("ebssnap:volume", va.as_str()),
        ],
    )
    .await;
    let other_target = fleet::manual_snapshot(
        &c,
        &va,
        &[
            ("ebssnap:policy", "std"),
            ("ebssnap:target", "db"),
            ("ebssnap:volume", va.as_str()),
        ],
    )
    .await;
    // A managed snapshot that an AMI uses: the planner picks it, EC2 refuses, it is reported.
    let (inst, _) = fleet::instance(&c, &[("Name", "ami-src")]).await;
    let image = c
        .ec2
        .create_image()
        .instance_id(&inst)
        .name("golden-image")
        .send()
        .await
        .unwrap();
    let image_id = image.image_id().unwrap().to_string();
    let all = fleet::snapshots(&c).await;
    let ami_snap = all
        .keys()
        .find(|id| {
            !old.contains(*id) && ![&untagged, &snapper, &other_policy, &other_target].contains(id)
        })
        .unwrap()
        .clone();
    fleet::tag(
        &c,
        &ami_snap,
        &[
            ("ebssnap:policy", "std"),
            ("ebssnap:target", "ret"),
            ("ebssnap:volume", va.as_str()),
            ("ebssnap:run", "r0"),
        ],
    )
    .await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let mut kept: BTreeSet<String> = BTreeSet::new();
    kept.extend(run("r3").await);
    kept.extend(run("r4").await);
    kept.extend(run("r5").await);

    let dir = tempdir();
    let tf = write(&dir, "target.json", &tgt);
    let pf = write(&dir, "policy.json", &pol);
    let later = (Timestamp::now() + SignedDuration::from_hours(24 * 40)).to_string();
    let before = fleet::snapshots(&c).await;

    // Dry run first: the same plan, and only read calls.
    let dry = ebssnap(
        &m.env(),
        &[
            "run",
            "--input",
            &tf,
            "--policy-input",
            &pf,
            "--now",
            &later,
            "--run-key",
            "r6",
            "--dry-run",
            "--json",
        ],
    );
    assert_eq!(dry.code, 0, "{}", dry.stderr);
    let dj = dry.json();
    assert_eq!(dj["dry_run"], true);
    for op in dj["api_calls"].as_object().unwrap().keys() {
        assert!(
            op.starts_with("Describe") || op.starts_with("Get") || op.starts_with("List"),
            "dry run called {op}"
        );
    }
    assert_eq!(
        ids(&dj, "created", "snapshot_id"),
        BTreeSet::from(["null".to_string()])
    );
    assert_eq!(dj["created"].as_array().unwrap().len(), 2);
    let mut would = old.clone();
    would.insert(ami_snap.clone());
    assert_eq!(ids(&dj, "deleted", "snapshot_id"), would);
    assert_eq!(
        fleet::snapshots(&c).await,
        before,
        "a dry run changes nothing"
    );

    // The real run.
    let out = ebssnap(
        &m.env(),
        &[
            "run",
            "--input",
            &tf,
            "--policy-input",
            &pf,
            "--now",
            &later,
            "--run-key",
            "r6",
            "--json",
        ],
    );
    assert_eq!(
        out.code, 0,
        "an AMI-referenced snapshot is not a failure: {}",
        out.stderr
    );
    let j = out.json();
    assert_eq!(
        ids(&j, "deleted", "snapshot_id"),
        old,
        "exactly the older batch is deleted"
    );
    assert_eq!(
        ids(&j, "in_use", "snapshot_id"),
        BTreeSet::from([ami_snap.clone()])
    );
    assert!(
        j["in_use"][0]["message"]
            .as_str()
            .unwrap()
            .contains(&image_id)
    );
    assert_eq!(j["failures"].as_array().unwrap().len(), 0);
    assert_eq!(j["api_calls"]["CreateSnapshot"], 2);
    assert_eq!(j["api_calls"]["DeleteSnapshot"], 5);
    let after = fleet::snapshots(&c).await;
    for id in &kept {
        assert!(after.contains_key(id), "kept snapshot {id} was deleted");
    }
    for id in [&untagged, &snapper, &other_policy, &other_target, &ami_snap] {
        assert!(
            after.contains_key(id),
            "foreign or in-use snapshot {id} was deleted"
        );
    }
    for vol in [&va, &vb] {
        let remaining = after
            .values()
            .filter(|(_, tags)| {
                tags.get("ebssnap:target").map(String::as_str) == Some("ret")
                    && tags.get("ebssnap:policy").map(String::as_str) == Some("std")
                    && tags.get("ebssnap:volume") == Some(vol)
                    && tags
                        .get("ebssnap:run")
                        .is_some_and(|r| ["r3", "r4", "r5"].contains(&r.as_str()))
            })
            .count();
        assert_eq!(remaining, 3, "3 snapshots remain for {vol}");
    }

    // The listing shows when each remaining snapshot expires (or that the minimum keeps it).
    docs::store_policy(&c, &pol).await;
    docs::store_target(&c, &tgt).await;
    let list = ebssnap(&m.env(), &["snapshots", "--policy", "std", "--json"]);
    assert_eq!(list.code, 0, "{}", list.stderr);
    let rows = list.json();
    let rows = rows.as_array().unwrap();
    let ret: Vec<&Value> = rows.iter().filter(|r| r["target"] == "ret").collect();
    assert_eq!(
        ret.len(),
        9,
        "3 kept + 1 new per volume + the AMI one: {rows:?}"
    );
    assert!(
        ret.iter()
            .any(|r| r["status"] == "kept_minimum" && r["expires_at"].is_null())
    );
    assert!(
        ret.iter()
            .any(|r| r["status"] == "kept_young" && r["expires_at"].is_string())
    );
    // The other target's snapshot belongs to the policy too (a removed target: policy rules).
    assert_eq!(rows.iter().filter(|r| r["target"] == "db").count(), 1);
    assert_eq!(rows.len(), 10);
    std::fs::remove_dir_all(dir).ok();
}

#[tokio::test]
async fn documents_from_scheduler_run_and_volumes_preview() {
    let m = moto!();
    let c = m.clients().await;
    let (_, root) = fleet::instance(&c, &[("Name", "web-1")]).await;
    let pol = docs::policy("std", 14, 1);
    let tgt = docs::target("std", "web", json!({"instance_names": ["web-*"]}));
    docs::store_policy(&c, &pol).await;
    docs::store_target(&c, &tgt).await;

    let v = ebssnap(
        &m.env(),
        &["volumes", "--policy", "std", "--target", "web", "--json"],
    );
    assert_eq!(v.code, 0, "{}", v.stderr);
    assert_eq!(v.json()["volumes"][0]["volume_id"], root.as_str());
    assert_eq!(v.json()["volumes"][0]["root"], true);
    assert_eq!(v.json()["warnings"], json!([]));

    let human = ebssnap(&m.env(), &["run", "--policy", "std", "--target", "web"]);
    assert_eq!(human.code, 0, "{}", human.stderr);
    assert!(human.stdout.contains("created: 1"), "{}", human.stdout);
    assert!(human.stdout.contains(&root));

    // A closed stdout (`ebssnap volumes | head -0`) is not a crash.
    let mut child = Command::new(env!("CARGO_BIN_EXE_ebssnap"))
        .envs(m.env())
        .args(["volumes", "--policy", "std", "--target", "web"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let sweep = ebssnap(&m.env(), &["sweep", "--policy", "std", "--json"]);
    assert_eq!(sweep.code, 0, "{}", sweep.stderr);
    assert_eq!(sweep.json()["kind"], "sweep");
    assert_eq!(sweep.json()["kept"], 1);
}

#[tokio::test]
async fn bad_input_exits_2_naming_the_problem_and_changes_nothing() {
    let m = moto!();
    let c = m.clients().await;
    fleet::volume(&c, &[("Backup", "yes")]).await;
    let dir = tempdir();
    let pol = write(&dir, "policy.json", &docs::policy("std", 14, 1));
    let good = docs::target("std", "t", json!({"volume_tags": {"Backup": "yes"}}));
    let mut unknown = good.clone();
    unknown["select"]["volume_tagz"] = json!({"a": "b"});
    let mut newer = good.clone();
    newer["ebssnap"] = json!(2);
    let empty = docs::target("std", "t", json!({"volume_ids": []}));
    std::fs::write(dir.join("malformed.json"), "{\"ebssnap\": 1, ").unwrap();
    let cases: Vec<(String, &str)> = vec![
        (
            dir.join("malformed.json").display().to_string(),
            "not valid JSON",
        ),
        (write(&dir, "unknown.json", &unknown), "volume_tagz"),
        (write(&dir, "newer.json", &newer), "upgrade the runner"),
        (write(&dir, "empty.json", &empty), "selector is empty"),
    ];
    for (file, want) in &cases {
        let out = ebssnap(
            &m.env(),
            &["run", "--input", file, "--policy-input", &pol, "--json"],
        );
        assert_eq!(out.code, 2, "{file}: {}", out.stderr);
        assert!(
            out.stderr.contains(want),
            "{file}: expected {want:?} in {}",
            out.stderr
        );
    }
    // Unknown policy: named, with what to do.
    let out = ebssnap(&m.env(), &["run", "--policy", "nope", "--target", "t"]);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(
        out.stderr.contains("unknown policy \"nope\""),
        "{}",
        out.stderr
    );
    let tf = write(&dir, "good.json", &good);
    let out = ebssnap(&m.env(), &["run", "--input", &tf]);
    assert_eq!(
        out.code, 2,
        "the policy std was never applied: {}",
        out.stderr
    );
    // A bad flag is bad input too.
    let out = ebssnap(&m.env(), &["run", "--input", &tf, "--now", "yesterday"]);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(fleet::snapshots(&c).await.is_empty(), "nothing was created");
    std::fs::remove_dir_all(dir).ok();
}

#[tokio::test]
async fn a_volume_deleted_during_the_run_exits_1_after_the_others_are_snapshotted() {
    let m = moto!();
    let c = m.clients().await;
    let a = fleet::volume(&c, &[("Backup", "yes")]).await;
    let gone = fleet::volume(&c, &[("Backup", "yes")]).await;
    let b = fleet::volume(&c, &[("Backup", "yes")]).await;
    // The proxy deletes `gone` in moto when the runner asks to snapshot it.
    let moto_port = m.port;
    let victim = gone.clone();
    let proxy = Proxy::start(
        moto_port,
        Box::new(move |_, _, body| {
            if body.contains("Action=CreateSnapshot")
                && body.contains(&format!("VolumeId={victim}"))
            {
                let (status, text) =
                    ec2_call(moto_port, &format!("Action=DeleteVolume&VolumeId={victim}"));
                assert_eq!(status, 200, "{text}");
            }
            Action::Forward
        }),
    );
    let out = run_backup_yes_through(&m, &proxy);
    assert_eq!(out.code, 1, "{}", out.stderr);
    let j = out.json();
    assert_eq!(ids(&j, "created", "volume_id"), BTreeSet::from([a, b]));
    assert_eq!(j["failures"].as_array().unwrap().len(), 1);
    assert_eq!(j["failures"][0]["volume_id"], gone.as_str());
    assert_eq!(j["failures"][0]["code"], "InvalidVolume.NotFound");
}

/// Runs a target selecting `Backup=yes` volumes with the CLI, through `proxy` in front of moto.
fn run_backup_yes_through(m: &Moto, proxy: &Proxy) -> Out {
    let dir = tempdir();
    let target = docs::target("std", "t", json!({"volume_tags": {"Backup": "yes"}}));
    let tf = write(&dir, "t.json", &target);
    let pf = write(&dir, "p.json", &docs::policy("std", 14, 1));
    let mut env = m.env();
    env[0].1 = proxy.endpoint();
    let out = ebssnap(
        &env,
        &["run", "--input", &tf, "--policy-input", &pf, "--json"],
    );
    std::fs::remove_dir_all(dir).ok();
    out
}

#[tokio::test]
async fn throttled_creates_are_retried_and_counted() {
    let m = moto!();
    let c = m.clients().await;
    fleet::volume(&c, &[("Backup", "yes")]).await;
    let throttled = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let n = throttled.clone();
    let proxy = Proxy::start(
        m.port,
        Box::new(move |_, _, body| {
            if body.contains("Action=CreateSnapshot")
                && n.fetch_add(1, std::sync::atomic::Ordering::SeqCst) < 2
            {
                return Action::Respond(
                    503,
                    "text/xml",
                    "<Response><Errors><Error><Code>RequestLimitExceeded</Code><Message>Request limit exceeded.</Message></Error></Errors><RequestID>x</RequestID></Response>".into(),
                );
            }
            Action::Forward
        }),
    );
    let out = run_backup_yes_through(&m, &proxy);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let j = out.json();
    assert_eq!(j["created"].as_array().unwrap().len(), 1);
    assert_eq!(
        j["api_calls"]["CreateSnapshot"], 3,
        "two throttled attempts, then success"
    );
    assert_eq!(j["api_calls"]["throttled"]["CreateSnapshot"], 2);
}

/// `ebssnap snapshots` shows the sweep's own plan: an orphan whose minimum is released is due,
/// and a target whose document cannot be read is never pruned (the listing used to recompute
/// both differently); then the sweep deletes exactly what was listed as due.
#[tokio::test]
async fn snapshots_lists_exactly_what_the_sweep_decides() {
    let m = moto!();
    let c = m.clients().await;
    let gone = fleet::volume(&c, &[("Backup", "yes")]).await;
    let other = fleet::volume(&c, &[]).await;
    let mut pol = docs::policy("std", 1, 1);
    pol["orphans"] = json!({"delete_after_days": 2});
    docs::store_policy(&c, &pol).await;
    docs::store_target(
        &c,
        &docs::target("std", "web", json!({"volume_tags": {"Backup": "yes"}})),
    )
    .await;
    let out = ebssnap(
        &m.env(),
        &["run", "--policy", "std", "--target", "web", "--json"],
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    c.ec2.delete_volume().volume_id(&gone).send().await.unwrap();
    let broken_snap = fleet::manual_snapshot(
        &c,
        &other,
        &[
            ("ebssnap:policy", "std"),
            ("ebssnap:target", "broken"),
            ("ebssnap:volume", &other),
            ("ebssnap:run", "r0"),
        ],
    )
    .await;
    let mut broken = docs::target("std", "broken", json!({"volume_ids": [other]}));
    broken["select"]["volume_tagz"] = json!({});
    docs::store_target(&c, &broken).await;

    let later = (Timestamp::now() + SignedDuration::from_hours(3 * 24)).to_string();
    let list = ebssnap(
        &m.env(),
        &["snapshots", "--policy", "std", "--now", &later, "--json"],
    );
    assert_eq!(list.code, 0, "{}", list.stderr);
    let rows = list.json();
    let status = |id: &str| {
        rows.as_array()
            .unwrap()
            .iter()
            .find(|r| r["snapshot_id"] == id)
            .map(|r| r["status"].as_str().unwrap().to_string())
    };
    let orphan_snap = out.json()["created"][0]["snapshot_id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(status(&orphan_snap).as_deref(), Some("expired"), "{rows}");
    assert_eq!(
        status(&broken_snap).as_deref(),
        Some("target_unreadable"),
        "{rows}"
    );
    let sweep = ebssnap(
        &m.env(),
        &["sweep", "--policy", "std", "--now", &later, "--json"],
    );
    let deleted = ids(&sweep.json(), "deleted", "snapshot_id");
    assert_eq!(deleted, BTreeSet::from([orphan_snap]));
    assert!(fleet::snapshots(&c).await.contains_key(&broken_snap));
}

/// Issue 26 item 4: errors that stop a command say what to do, in one line each, never as Rust
/// `Debug` output; with `--json` stdout carries `{"error": {"code", "message", "action"}}`; the
/// exit code stays 3. Real SDK errors: no credentials, no Region, a closed port, a 403 from a
/// loopback stand-in for Scheduler.
#[test]
fn errors_say_what_to_do_with_and_without_json() {
    let denied = crate::proxy::Proxy::start(
        9,
        Box::new(|_, _, _| {
            crate::proxy::Action::Respond(
                403,
                "application/json",
                r#"{"__type":"AccessDeniedException","Message":"User: arn:aws:iam::123456789012:user/x is not authorized to perform: scheduler:GetSchedule"}"#.into(),
            )
        }),
    );
    let home = std::env::temp_dir().join(format!("ebssnap-nohome-{}", std::process::id()));
    let keys = [("AWS_ACCESS_KEY_ID", "x"), ("AWS_SECRET_ACCESS_KEY", "y")];
    /// (what, environment, expected code, a word of the expected action)
    type Case<'a> = (&'a str, Vec<(&'a str, String)>, &'a str, &'a str);
    let cases: Vec<Case> = vec![
        (
            "no credentials",
            vec![("AWS_REGION", "us-east-1".into())],
            "NoCredentials",
            "aws sso login",
        ),
        (
            "no region",
            keys.iter().map(|(k, v)| (*k, v.to_string())).collect(),
            "NoRegion",
            "--region",
        ),
        (
            "closed port",
            keys.iter()
                .map(|(k, v)| (*k, v.to_string()))
                .chain([
                    ("AWS_REGION", "us-east-1".to_string()),
                    ("AWS_ENDPOINT_URL", "http://127.0.0.1:9".to_string()),
                ])
                .collect(),
            "EndpointUnreachable",
            "AWS_ENDPOINT_URL",
        ),
        (
            "access denied",
            keys.iter()
                .map(|(k, v)| (*k, v.to_string()))
                .chain([
                    ("AWS_REGION", "us-east-1".to_string()),
                    ("AWS_ENDPOINT_URL", denied.endpoint()),
                ])
                .collect(),
            "AccessDeniedException",
            "ebssnap_iam_policy",
        ),
    ];
    for (what, env, code, hint) in cases {
        for json in [false, true] {
            let mut cmd = Command::new(env!("CARGO_BIN_EXE_ebssnap"));
            cmd.env_clear()
                .env("PATH", std::env::var("PATH").unwrap_or_default())
                .env("HOME", &home)
                .env("AWS_EC2_METADATA_DISABLED", "true")
                .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
                .args(["volumes", "--policy", "std", "--target", "web"]);
            if json {
                cmd.arg("--json");
            }
            let out = cmd.output().expect("run ebssnap");
            let (stdout, stderr) = (
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr),
            );
            assert_eq!(out.status.code(), Some(3), "{what}: {stderr}");
            for debug in ["DispatchFailure(", "ConnectorError", "Some(", " { "] {
                assert!(!stderr.contains(debug), "{what}: Debug output: {stderr}");
            }
            let first = stderr.lines().next().unwrap_or_default();
            assert!(
                first.starts_with("ebssnap: error: ") && first.contains(code),
                "{what}: {stderr}"
            );
            assert!(
                stderr
                    .lines()
                    .nth(1)
                    .is_some_and(|l| l.contains("what to do:") && l.contains(hint)),
                "{what}: {stderr}"
            );
            if json {
                let v: Value = serde_json::from_str(&stdout)
                    .unwrap_or_else(|e| panic!("{what}: {e}: {stdout}"));
                assert_eq!(v["error"]["code"], code, "{what}: {v}");
                assert!(
                    v["error"]["action"]
                        .as_str()
                        .is_some_and(|a| a.contains(hint)),
                    "{v}"
                );
                assert!(
                    v["error"]["message"]
                        .as_str()
                        .is_some_and(|m| m.contains(code)),
                    "{v}"
                );
            } else {
                assert!(stdout.is_empty(), "{what}: {stdout}");
            }
        }
    }
}
