//! The runner at account scale against a model of EC2's limits (`make bench-scale`).
//!
//! moto runs behind `tests/ec2_limits.py`: per-API token buckets for `CreateSnapshot`,
//! `CreateSnapshots` and `DeleteSnapshot` (burst + refill, time-scaled so that a run's floor is
//! about `EBSSNAP_SCALE_FLOOR_S` seconds, default 60 s per 2,000 volumes) answering
//! `RequestLimitExceeded` as EC2 does. The release `ebssnap` binary runs as a Lambda function
//! against a fake Runtime API whose every invocation has `EBSSNAP_SCALE_LINK_S` seconds of work
//! (default 25 s per 60 s of floor; plus the runner's 20 s margin), and a
//! fake Lambda `Invoke` endpoint that queues continuation events, so a run uses as many links as
//! it needs. For each fleet (`EBSSNAP_SCALE_SIZES`, e.g. `2000x1,2000x5,10000x1,10000x5` =
//! volumes x volumes per instance) it measures a per-volume run, a crash-consistent run and the
//! old behaviour (one invocation, `EBSSNAP_MAX_LINKS=1`), and prints a Markdown table:
//! links, wall time against the floor (the time the bucket alone allows for the run's creations),
//! the span of the accepted creations in the model (first to last), API calls and throttled
//! attempts, volumes snapshotted exactly once and missed, peak RSS.
//! `EBSSNAP_SCALE_MODES` picks rows (see `wanted`).

#[path = "common/mod.rs"]
mod common;
#[path = "../tests/it/moto.rs"]
#[allow(dead_code)]
mod moto;
use common::*;

use std::collections::{BTreeMap, VecDeque};
use std::process::{Command, Stdio};
use std::sync::{Arc, Condvar, Mutex, mpsc};
use std::time::{Duration, Instant};

use aws_sdk_ec2::types::{Filter, InstanceType, ResourceType, Tag, TagSpecification};
use aws_sdk_scheduler::types::{FlexibleTimeWindow, FlexibleTimeWindowMode, ScheduleState, Target};
use futures::StreamExt;
use serde_json::{Value, json};

const BURST: f64 = 100.0;
const FUNCTION_ARN: &str = "arn:aws:lambda:us-east-1:123456789012:function:ebssnap";

/// Events for the fake function: the Runtime API hands them out, the Invoke endpoint adds.
#[derive(Clone, Default)]
struct Queue(Arc<(Mutex<VecDeque<Value>>, Condvar)>);

impl Queue {
    fn push(&self, v: Value) {
        self.0.0.lock().unwrap().push_back(v);
        self.0.1.notify_all();
    }
    fn next(&self, wait: Duration) -> Option<Value> {
        let q = self.0.0.lock().unwrap();
        let (mut q, _) = self
            .0
            .1
            .wait_timeout_while(q, wait, |q| q.is_empty())
            .unwrap();
        q.pop_front()
    }
}

/// The fake Runtime API (deadline `deadline_ms` per invocation) and Invoke endpoint.
fn fake_lambda(queue: Queue, deadline_ms: i64) -> (u16, u16, mpsc::Receiver<(String, Value)>) {
    let runtime = tiny_http::Server::http("127.0.0.1:0").unwrap();
    let runtime_port = runtime.server_addr().to_ip().unwrap().port();
    let invoke = tiny_http::Server::http("127.0.0.1:0").unwrap();
    let invoke_port = invoke.server_addr().to_ip().unwrap().port();
    let (tx, rx) = mpsc::channel();
    let q = queue.clone();
    std::thread::spawn(move || {
        let mut n = 0;
        for mut req in runtime.incoming_requests() {
            let url = req.url().to_string();
            if url.ends_with("/invocation/next") {
                let Some(ev) = q.next(Duration::from_secs(600)) else {
                    continue;
                };
                let deadline = jiff::Timestamp::now().as_millisecond() + deadline_ms;
                let h = |k: &str, v: &str| tiny_http::Header::from_bytes(k, v).unwrap();
                n += 1;
                let _ = req.respond(
                    tiny_http::Response::from_string(ev.to_string())
                        .with_header(h("Lambda-Runtime-Aws-Request-Id", &format!("req-{n}")))
                        .with_header(h("Lambda-Runtime-Deadline-Ms", &deadline.to_string()))
                        .with_header(h("Lambda-Runtime-Invoked-Function-Arn", FUNCTION_ARN)),
                );
            } else if let Some(rest) = url.strip_prefix("/2018-06-01/runtime/invocation/") {
                let mut body = String::new();
                let _ = req.as_reader().read_to_string(&mut body);
                let kind = rest.split('/').nth(1).unwrap_or("").to_string();
                let v = serde_json::from_str(&body).unwrap_or(Value::String(body));
                let _ = tx.send((kind, v));
                let _ = req.respond(tiny_http::Response::from_string("{}").with_status_code(202));
            }
        }
    });
    std::thread::spawn(move || {
        for mut req in invoke.incoming_requests() {
            let mut body = String::new();
            let _ = req.as_reader().read_to_string(&mut body);
            if let Ok(v) = serde_json::from_str(&body) {
                queue.push(v);
            }
            let _ = req.respond(tiny_http::Response::from_string("").with_status_code(202));
        }
    });
    (runtime_port, invoke_port, rx)
}

async fn seed(c: &ebssnap::aws::Clients, volumes: usize, per_instance: usize) -> usize {
    let instances = volumes / per_instance;
    let mut ids = Vec::new();
    let mut left = instances;
    while left > 0 {
        let n = left.min(100);
        let out = c
            .ec2
            .run_instances()
            .image_id("ami-12345678")
            .instance_type(InstanceType::T3Micro)
            .min_count(n as i32)
            .max_count(n as i32)
            .tag_specifications(
                TagSpecification::builder()
                    .resource_type(ResourceType::Instance)
                    .tags(Tag::builder().key("Name").value("bench-node").build())
                    .build(),
            )
            .send()
            .await
            .expect("RunInstances");
        ids.extend(
            out.instances()
                .iter()
                .map(|i| i.instance_id().unwrap().to_string()),
        );
        left -= n;
    }
    let data: Vec<(String, usize)> = ids
        .iter()
        .flat_map(|i| (1..per_instance).map(move |k| (i.clone(), k)))
        .collect();
    futures::stream::iter(data)
        .map(|(inst, k)| async move {
            let v = c
                .ec2
                .create_volume()
                .availability_zone("us-east-1a")
                .size(10)
                .send()
                .await
                .expect("CreateVolume");
            c.ec2
                .attach_volume()
                .volume_id(v.volume_id().unwrap())
                .instance_id(inst)
                .device(format!("/dev/sd{}", (b'e' + k as u8) as char))
                .send()
                .await
                .expect("AttachVolume");
        })
        .buffer_unordered(8)
        .collect::<Vec<_>>()
        .await;
    instances
}

async fn store(c: &ebssnap::aws::Clients, group: &str, name: &str, doc: &Value) {
    c.scheduler
        .create_schedule()
        .group_name(group)
        .name(name)
        .schedule_expression("rate(1 day)")
        .state(ScheduleState::Enabled)
        .flexible_time_window(
            FlexibleTimeWindow::builder()
                .mode(FlexibleTimeWindowMode::Off)
                .build()
                .unwrap(),
        )
        .target(
            Target::builder()
                .arn(FUNCTION_ARN)
                .role_arn("arn:aws:iam::123456789012:role/ebssnap-scheduler")
                .input(doc.to_string())
                .build()
                .unwrap(),
        )
        .send()
        .await
        .expect("CreateSchedule");
}

/// Stores policy `name` (crash-consistent or not) with one target `all` over every instance.
async fn policy(c: &ebssnap::aws::Clients, name: &str, crash_consistent: bool) -> Value {
    let group = format!("ebssnap-{name}");
    c.scheduler
        .create_schedule_group()
        .name(&group)
        .send()
        .await
        .expect("CreateScheduleGroup");
    let p = json!({"ebssnap": 1, "kind": "policy", "policy": name, "crash_consistent": crash_consistent,
                   "retention": {"days": 3650, "min_snapshots": 10}});
    store(c, &group, "_policy", &p).await;
    let t = json!({"ebssnap": 1, "kind": "target", "policy": name, "target": "all",
                   "select": {"instance_names": ["bench-*"]}});
    store(c, &group, "all", &t).await;
    t
}

struct Outcome {
    links: usize,
    wall: f64,
    calls: u64,
    throttled: u64,
    once: usize,
    missed: usize,
    duplicates: usize,
    rss_mib: f64,
    /// Seconds from the first to the last accepted creation call (the model's clock).
    span: f64,
}

/// The first and the last accepted `action` in the model, in seconds since its reset.
fn creation_span(m: &moto::Moto, action: &str) -> (f64, f64) {
    ureq::get(&format!("{}/ec2-limits/stats", m.endpoint()))
        .call()
        .ok()
        .and_then(|mut r| r.body_mut().read_to_string().ok())
        .and_then(|b| serde_json::from_str::<Value>(&b).ok())
        .and_then(|v| {
            let s = v["span"][action].as_array()?.clone();
            Some((s.first()?.as_f64()?, s.get(1)?.as_f64()?))
        })
        .unwrap_or_default()
}

/// `field` (`VmHWM`, `VmRSS`) of process `pid`, in KiB.
fn status_kib(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

/// Samples the RSS of `pid` every 100 ms until `stop`: (largest KiB, seconds after `t0` it was
/// seen), to place the peak among the phases of the function's log.
fn watch_rss(
    pid: u32,
    t0: Instant,
    stop: Arc<std::sync::atomic::AtomicBool>,
) -> std::thread::JoinHandle<(u64, f64)> {
    std::thread::spawn(move || {
        let mut peak = (0, 0.0);
        while !stop.load(std::sync::atomic::Ordering::Relaxed) {
            let kib = status_kib(pid, "VmRSS");
            if kib > peak.0 {
                peak = (kib, t0.elapsed().as_secs_f64());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        peak
    })
}

/// One run of `target` as Scheduler would start it, through as many links as it takes.
fn run_chain(
    m: &moto::Moto,
    target: &Value,
    run_key: &str,
    max_links: u32,
    link_s: f64,
) -> (usize, f64, u64, u64, f64) {
    let queue = Queue::default();
    let mut event = target.clone();
    event["invocation"] = json!({"scheduled_time": run_key});
    let (runtime, invoke, answers) = fake_lambda(queue.clone(), ((20.0 + link_s) * 1000.0) as i64);
    let mut child = Command::new(bin("ebssnap"))
        .env_clear()
        .envs(m.env())
        .env("AWS_LAMBDA_RUNTIME_API", format!("127.0.0.1:{runtime}"))
        .env(
            "AWS_ENDPOINT_URL_LAMBDA",
            format!("http://127.0.0.1:{invoke}"),
        )
        .env("AWS_LAMBDA_FUNCTION_NAME", "ebssnap")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256")
        .env("AWS_LAMBDA_LOG_GROUP_NAME", "/aws/lambda/ebssnap")
        .env("AWS_LAMBDA_LOG_STREAM_NAME", "bench")
        .env("EBSSNAP_MAX_LINKS", max_links.to_string())
        // EBSSNAP_SCALE_LOG=info keeps the phase timings and every creation in the log.
        .env(
            "EBSSNAP_LOG",
            std::env::var("EBSSNAP_SCALE_LOG").unwrap_or_else(|_| "warn".into()),
        )
        .stdout(Stdio::null())
        .stderr(
            std::fs::File::create(std::env::temp_dir().join("ebssnap-scale-function.log"))
                .map(Stdio::from)
                .unwrap_or_else(|_| Stdio::null()),
        )
        .spawn()
        .expect("start the function");
    let t0 = Instant::now();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let watcher = watch_rss(child.id(), t0, stop.clone());
    queue.push(event);
    let (mut links, mut calls, mut throttled) = (0, 0u64, 0u64);
    loop {
        let (kind, v) = answers
            .recv_timeout(Duration::from_secs_f64(link_s + 20.0 + 300.0))
            .expect("an answer from the function (its log: $TMPDIR/ebssnap-scale-function.log)");
        links += 1;
        // A failed link's error message is JSON with the ticket and the run's api_calls.
        let report = if kind == "response" {
            v.clone()
        } else {
            serde_json::from_str::<Value>(v["errorMessage"].as_str().unwrap_or("{}"))
                .unwrap_or_default()
        };
        for (k, n) in report["api_calls"].as_object().into_iter().flatten() {
            match n.as_u64() {
                Some(n) => calls += n,
                None if k == "throttled" => {
                    throttled += n
                        .as_object()
                        .into_iter()
                        .flatten()
                        .filter_map(|(_, x)| x.as_u64())
                        .sum::<u64>()
                }
                None => {}
            }
        }
        if kind != "response" || v["continued_in_link"].is_null() {
            break;
        }
    }
    let wall = t0.elapsed().as_secs_f64();
    let rss = status_kib(child.id(), "VmHWM") as f64 / 1024.0;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    if let Ok((kib, at)) = watcher.join() {
        eprintln!(
            "  largest sampled RSS {:.1} MiB at {at:.1} s",
            kib as f64 / 1024.0
        );
    }
    let _ = child.kill();
    let _ = child.wait();
    (links, wall, calls, throttled, rss)
}

/// Snapshots of `run_key` per volume.
async fn per_volume(c: &ebssnap::aws::Clients, run_key: &str) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    let mut pages = c
        .ec2
        .describe_snapshots()
        .owner_ids("self")
        .filters(
            Filter::builder()
                .name("tag:ebssnap:run")
                .values(run_key)
                .build(),
        )
        .into_paginator()
        .send();
    while let Some(p) = pages.next().await {
        for s in p.expect("DescribeSnapshots").snapshots() {
            *out.entry(s.volume_id().unwrap_or("").to_string())
                .or_insert(0) += 1;
        }
    }
    out
}

/// `EBSSNAP_SCALE_MODES=1,2` runs only those rows of each fleet (1 = per volume, 2 = one long
/// link, 3 = crash-consistent, 4 = old behaviour, 5 = every creation refused); default all.
fn wanted(index: usize) -> bool {
    match std::env::var("EBSSNAP_SCALE_MODES") {
        Ok(m) if !m.trim().is_empty() => m
            .split(',')
            .any(|x| x.trim().parse::<usize>().ok() == Some(index + 1)),
        _ => true,
    }
}

fn main() {
    let sizes = std::env::var("EBSSNAP_SCALE_SIZES")
        .unwrap_or_else(|_| "2000x1,2000x5,10000x1,10000x5".into());
    let rt = tokio::runtime::Runtime::new().unwrap();
    println!(
        "| volumes | per instance | mode | links | wall s | floor s | wall / floor | creating s | API calls | throttled | snapshotted once | missed | peak RSS |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|---|");
    for size in sizes.split(',') {
        let (v, k) = size.split_once('x').expect("sizes like 2000x5");
        let (volumes, per_instance): (usize, usize) = (v.parse().unwrap(), k.parse().unwrap());
        // The per-volume run's floor: 60 s per 2,000 volumes by default (moto, one Python
        // process, serves about 35 creations a second at 10,000 volumes; a shorter floor would
        // measure moto, not the runner).
        let floor_target = env_num(
            "EBSSNAP_SCALE_FLOOR_S",
            60.0 * (volumes as f64 / 2000.0).max(1.0),
        );
        let rate = ((volumes as f64 - BURST) / floor_target).max(1.0);
        // SAFETY: single-threaded here; the moto child reads these at start.
        unsafe {
            std::env::set_var(
                "EC2_LIMITS",
                format!(
                    "CreateSnapshot={BURST}:{rate:.2},CreateSnapshots={BURST}:{rate:.2},DeleteSnapshot={BURST}:{rate:.2}"
                ),
            );
            std::env::set_var("EC2_VOLUME_INTERVAL_S", "15");
        }
        let Some(m) = moto::Moto::start() else {
            eprintln!("moto_server not found: run `make bench-scale`");
            std::process::exit(1);
        };
        let c = rt.block_on(m.clients());
        let t0 = Instant::now();
        let instances = rt.block_on(seed(&c, volumes, per_instance));
        eprintln!(
            "{size}: seeded {instances} instances / {volumes} volumes in {:.0} s (bucket {BURST} burst, {rate:.1}/s)",
            t0.elapsed().as_secs_f64()
        );
        let per_vol = rt.block_on(policy(&c, "pv", false));
        let sets = rt.block_on(policy(&c, "cc", true));
        // Links of 25 s per 60 s of floor by default: a run needs 3 to 4 links.
        let link_s = env_num("EBSSNAP_SCALE_LINK_S", floor_target * 25.0 / 60.0);
        // The pacer alone: one invocation long enough for the whole run (no link restarts).
        let long = 4.0 * floor_target;
        let modes: [(&str, &Value, u32, f64, usize); 5] = [
            ("per volume", &per_vol, 10, link_s, volumes),
            ("per volume, one long link", &per_vol, 1, long, volumes),
            ("crash-consistent sets", &sets, 10, link_s, instances),
            ("old: one invocation", &per_vol, 1, link_s, volumes),
            // The failing run: every CreateSnapshot refused (UnauthorizedOperation), so the
            // report and the ticket hold one failure per volume.
            ("every creation refused", &per_vol, 10, link_s, volumes),
        ];
        for (i, (mode, target, max_links, link, creations)) in modes.into_iter().enumerate() {
            let action = if i == 2 {
                "CreateSnapshots"
            } else {
                "CreateSnapshot"
            };
            if !wanted(i) {
                continue;
            }
            let _ = ureq::post(&format!("{}/ec2-limits/reset", m.endpoint())).send_empty();
            if i == 4 {
                let _ = ureq::post(&format!(
                    "{}/ec2-limits/refuse?action=CreateSnapshot",
                    m.endpoint()
                ))
                .send_empty();
            }
            // A recent scheduled time (the runner refuses an event older than its schedule can
            // deliver), later for each row: the rows of a fleet run in order.
            let run_key = (jiff::Timestamp::now()
                - jiff::SignedDuration::from_hours(10 - i as i64))
            .strftime("%Y-%m-%dT%H:%M:%SZ")
            .to_string();
            let (links, wall, calls, throttled, rss) =
                run_chain(&m, target, &run_key, max_links, link);
            let counts = rt.block_on(per_volume(&c, &run_key));
            let o = Outcome {
                links,
                wall,
                calls,
                throttled,
                once: counts.values().filter(|n| **n == 1).count(),
                duplicates: counts.values().filter(|n| **n > 1).count(),
                missed: volumes - counts.len(),
                rss_mib: rss,
                span: 0.0,
            };
            let (first, last) = creation_span(&m, action);
            let o = Outcome {
                span: last - first,
                ..o
            };
            eprintln!(
                "{size} {mode}: first creation at {first:.1} s, last at {last:.1} s, answered at {wall:.1} s",
                wall = o.wall
            );
            let floor = ((creations as f64 - BURST).max(0.0)) / rate;
            println!(
                "| {volumes} | {per_instance} | {mode} | {} | {:.1} | {floor:.1} | {:.2} | {:.1} | {} | {} ({:.1}%) | {}{} | {} | {:.1} MiB |",
                o.links,
                o.wall,
                o.wall / floor.max(0.001),
                o.span,
                o.calls,
                o.throttled,
                100.0 * o.throttled as f64 / o.calls.max(1) as f64,
                o.once,
                if o.duplicates > 0 {
                    format!(" ({} DUPLICATED)", o.duplicates)
                } else {
                    String::new()
                },
                o.missed,
                o.rss_mib
            );
        }
    }
}
