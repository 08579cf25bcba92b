//! `ebssnap coverage` at account scale (`make bench-coverage`, docs/benchmarks.md): 10,000
//! volumes (one root volume per instance) and 200 targets in four policies, half the volumes with
//! a restore point, against moto behind `tests/ec2_limits.py` (which pages `DescribeInstances`,
//! `DescribeVolumes` and `DescribeSnapshots` as EC2 does; no rate limits are configured, since
//! coverage only reads). Measures the release binary's wall time, peak RSS and API calls per
//! operation over `EBSSNAP_BENCH_ROUNDS` runs (default 3). Targets: 60 s, < 128 MiB, calls <=
//! pages + targets + a small constant.

#[path = "common/mod.rs"]
mod common;
#[path = "../tests/it/moto.rs"]
#[allow(dead_code)]
mod moto;
use common::*;

use std::time::Instant;

use aws_sdk_ec2::types::{InstanceType, ResourceType, Tag, TagSpecification};
use aws_sdk_scheduler::types::{FlexibleTimeWindow, FlexibleTimeWindowMode, ScheduleState, Target};
use futures::StreamExt;
use serde_json::{Value, json};

const POLICIES: usize = 4;

fn tag(k: &str, v: &str) -> Tag {
    Tag::builder().key(k).value(v).build()
}

/// `groups` batches of 100 instances named `node-<b>`, whose root volumes carry `Team=t<b>`;
/// then one restore point for every other volume, tagged as a run of the target that selects
/// it by name.
async fn seed(c: &ebssnap::aws::Clients, groups: usize) -> usize {
    for b in 0..groups {
        c.ec2
            .run_instances()
            .image_id("ami-12345678")
            .instance_type(InstanceType::T3Micro)
            .min_count(100)
            .max_count(100)
            .tag_specifications(
                TagSpecification::builder()
                    .resource_type(ResourceType::Instance)
                    .tags(tag("Name", &format!("node-{b}")))
                    .build(),
            )
            .tag_specifications(
                TagSpecification::builder()
                    .resource_type(ResourceType::Volume)
                    .tags(tag("Team", &format!("t{b}")))
                    .build(),
            )
            .send()
            .await
            .expect("RunInstances");
    }
    let mut vols = Vec::new();
    let mut pages = c.ec2.describe_volumes().into_paginator().send();
    while let Some(p) = pages.next().await {
        for v in p.expect("DescribeVolumes").volumes() {
            let team = v
                .tags()
                .iter()
                .find(|t| t.key() == Some("Team"))
                .and_then(|t| t.value())
                .unwrap_or("t0")
                .to_string();
            vols.push((v.volume_id().unwrap().to_string(), team));
        }
    }
    let n = vols.len();
    let run = (jiff::Timestamp::now() - jiff::SignedDuration::from_hours(6)).to_string();
    futures::stream::iter(vols.into_iter().step_by(2))
        .for_each_concurrent(8, |(v, team)| {
            let run = run.clone();
            async move {
                let b: usize = team.trim_start_matches('t').parse().unwrap_or(0);
                c.ec2
                    .create_snapshot()
                    .volume_id(&v)
                    .tag_specifications(
                        TagSpecification::builder()
                            .resource_type(ResourceType::Snapshot)
                            .tags(tag("ebssnap:policy", &format!("p{}", b % POLICIES)))
                            .tags(tag("ebssnap:target", &format!("name-{b}")))
                            .tags(tag("ebssnap:run", &run))
                            .build(),
                    )
                    .send()
                    .await
                    .expect("CreateSnapshot");
            }
        })
        .await;
    n
}

/// 200 targets: per group one by instance name (every tenth excluding root volumes, so those
/// volumes are `excluded` there) and one by volume tag (every 20th by `instance_filters`
/// instead), spread over four policies.
async fn targets(c: &ebssnap::aws::Clients, groups: usize) -> usize {
    let mut docs = Vec::new();
    for b in 0..groups {
        let p = format!("p{}", b % POLICIES);
        let mut by_name = json!({"ebssnap": 1, "kind": "target", "policy": p,
            "target": format!("name-{b}"), "select": {"instance_names": [format!("node-{b}")]}});
        if b % 10 == 0 {
            by_name["exclude"] = json!({"root_volumes": true});
        }
        docs.push(by_name);
        let select = if b % 20 == 0 {
            json!({"instance_filters": {"tag:Name": [format!("node-{b}")]}})
        } else {
            json!({"volume_tags": {"Team": format!("t{b}")}})
        };
        docs.push(json!({"ebssnap": 1, "kind": "target", "policy": p,
            "target": format!("other-{b}"), "select": select}));
    }
    for p in 0..POLICIES {
        c.scheduler
            .create_schedule_group()
            .name(format!("ebssnap-p{p}"))
            .send()
            .await
            .expect("CreateScheduleGroup");
    }
    for d in &docs {
        c.scheduler
            .create_schedule()
            .group_name(format!("ebssnap-{}", d["policy"].as_str().unwrap()))
            .name(d["target"].as_str().unwrap())
            .schedule_expression("cron(0 5 * * ? *)")
            .state(ScheduleState::Enabled)
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
                    .input(d.to_string())
                    .build()
                    .unwrap(),
            )
            .send()
            .await
            .expect("CreateSchedule");
    }
    docs.len()
}

fn main() {
    let groups = env_num("EBSSNAP_BENCH_GROUPS", 100);
    let rounds = env_num("EBSSNAP_BENCH_ROUNDS", 3);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let Some(m) = moto::Moto::start() else {
        eprintln!("moto_server not found: run `make deps` (make bench-coverage sets it)");
        std::process::exit(1);
    };
    let c = rt.block_on(m.clients());
    let t0 = Instant::now();
    let volumes = rt.block_on(seed(&c, groups));
    let ntargets = rt.block_on(targets(&c, groups));
    eprintln!(
        "seeded {volumes} volumes, {ntargets} targets in {:.1} s",
        t0.elapsed().as_secs_f64()
    );
    let mut runs = Vec::new();
    let mut last = Value::Null;
    for _ in 0..rounds {
        let mut cmd = with_rss(&bin("ebssnap"), &["coverage".into(), "--json".into()]);
        cmd.envs(m.env());
        let (secs, rss, stdout) = rss_of(&mut cmd);
        last = serde_json::from_str(&stdout).expect("coverage JSON");
        runs.push((secs, rss));
    }
    runs.sort_by(|a, b| a.0.total_cmp(&b.0));
    let (median, _) = runs[runs.len() / 2];
    let peak = runs.iter().map(|r| r.1).max().unwrap_or(0) as f64 / 1024.0;
    let calls = &last["scopes"][0]["api_calls"];
    let total: u64 = calls
        .as_object()
        .map(|o| o.values().filter_map(Value::as_u64).sum())
        .unwrap_or(0);
    println!("## Coverage at scale ({volumes} volumes, {ntargets} targets, {POLICIES} policies)\n");
    println!(
        "| volumes | targets | median of {rounds} | peak RSS | API calls | per operation | totals |"
    );
    println!("|---|---|---|---|---|---|---|");
    println!(
        "| {volumes} | {ntargets} | {median:.1} s | {peak:.1} MiB | {total} | `{}` | `{}` |",
        calls, last["totals"]["volumes"]
    );
}
