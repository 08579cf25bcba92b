//! The runner against moto on loopback (`cargo bench --bench runner`, or `make bench`):
//!
//! 1. API efficiency: one target run over a fleet of `EBSSNAP_BENCH_INSTANCES` (300) instances /
//!    `EBSSNAP_BENCH_VOLUMES` (1,000) volumes / 3 existing managed snapshots per volume, which
//!    snapshots every volume and prunes one snapshot per volume: calls per operation from the run
//!    report against the lower bound (creates + deletes + pages of Describe calls).
//! 2. Wall time: the same run against a plain sequential boto3 script doing the same job, both on
//!    the same moto in the same invocation, alternating runs.
//! 3. Memory: peak RSS of the runner (a dry run, then a real run) at this scale.
//! 4. Release binary sizes.

#[path = "common/mod.rs"]
mod common;
#[path = "../tests/it/moto.rs"]
#[allow(dead_code)]
mod moto;
use common::*;

use std::collections::BTreeMap;
use std::process::Command;
use std::time::Instant;

use aws_sdk_ec2::types::{InstanceType, ResourceType, Tag, TagSpecification};
use serde_json::{Value, json};

/// Runs a command, returning (wall seconds, stdout).
fn measured(cmd: &mut Command) -> (f64, String) {
    let t0 = Instant::now();
    let out = cmd.output().expect("run");
    let secs = t0.elapsed().as_secs_f64();
    assert!(
        out.status.success(),
        "{:?} failed: {}",
        cmd,
        String::from_utf8_lossy(&out.stderr)
    );
    (secs, String::from_utf8_lossy(&out.stdout).into())
}

async fn seed(m: &moto::Moto, instances: usize, volumes: usize) {
    let c = m.clients().await;
    let mut ids = Vec::new();
    let mut left = instances;
    while left > 0 {
        let n = left.min(50);
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
                    .tags(Tag::builder().key("Name").value("app-server").build())
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
    // Roots are one volume each; the rest are data volumes spread over the instances.
    for k in 0..volumes.saturating_sub(instances) {
        let v = c
            .ec2
            .create_volume()
            .availability_zone("us-east-1a")
            .size(10)
            .tag_specifications(
                TagSpecification::builder()
                    .resource_type(ResourceType::Volume)
                    .tags(Tag::builder().key("Role").value("data").build())
                    .build(),
            )
            .send()
            .await
            .expect("CreateVolume");
        let inst = &ids[k % ids.len()];
        c.ec2
            .attach_volume()
            .volume_id(v.volume_id().unwrap())
            .instance_id(inst)
            .device(format!(
                "/dev/sd{}",
                (b'f' + (k / ids.len()) as u8 % 20) as char
            ))
            .send()
            .await
            .expect("AttachVolume");
    }
}

fn main() {
    let instances = env_num("EBSSNAP_BENCH_INSTANCES", 300);
    let volumes = env_num("EBSSNAP_BENCH_VOLUMES", 1000);
    let rounds = env_num("EBSSNAP_BENCH_ROUNDS", 2);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let Some(m) = moto::Moto::start() else {
        eprintln!("moto_server not found: run `make deps` (make bench sets EBSSNAP_MOTO_SERVER)");
        std::process::exit(1);
    };
    let t0 = Instant::now();
    rt.block_on(seed(&m, instances, volumes));
    eprintln!(
        "seeded {instances} instances / {volumes} volumes in {:.1} s",
        t0.elapsed().as_secs_f64()
    );

    let dir = std::env::temp_dir().join(format!("ebssnap-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let policy = json!({"ebssnap": 1, "kind": "policy", "policy": "std",
                        "retention": {"days": 3650, "min_snapshots": 1, "max_snapshots": 2}});
    let target = json!({"ebssnap": 1, "kind": "target", "policy": "std", "target": "app",
                        "select": {"instance_names": ["app-*"]}});
    std::fs::write(dir.join("p.json"), policy.to_string()).unwrap();
    std::fs::write(dir.join("t.json"), target.to_string()).unwrap();
    let ebssnap = bin("ebssnap");
    let python = std::env::var("EBSSNAP_PYTHON").unwrap_or_else(|_| "python3".into());
    let baseline_script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/bench_baseline.py");
    let run_args = |key: &str, dry: bool| -> Vec<String> {
        let mut a: Vec<String> = [
            "run",
            "--input",
            dir.join("t.json").to_str().unwrap(),
            "--policy-input",
            dir.join("p.json").to_str().unwrap(),
            "--json",
            "--run-key",
            key,
            "--concurrency",
            "16",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        if dry {
            a.push("--dry-run".into());
        }
        a
    };
    let ebssnap_run = |key: &str, dry: bool| {
        let mut c = with_rss(&ebssnap, &run_args(key, dry));
        c.envs(m.env());
        rss_of(&mut c)
    };
    let baseline_run = |key: &str| {
        let mut c = Command::new(&python);
        c.args([baseline_script, &m.endpoint(), "app-*", key, "3"]);
        measured(&mut c)
    };
    if std::env::var("EBSSNAP_BENCH_MEMORY_ONLY").is_ok() {
        // Peak RSS at scale: a dry run (selection, listing, planning) and a real run.
        let (dsecs, drss, dout) = ebssnap_run("mem-dry", true);
        let (rsecs, rrss, rout) = ebssnap_run("mem-run", false);
        let (d, r): (Value, Value) = (
            serde_json::from_str(&dout).unwrap(),
            serde_json::from_str(&rout).unwrap(),
        );
        println!("## Memory at scale ({instances} instances, {volumes} volumes)\n");
        println!("| run | volumes selected | created | seconds | peak RSS |");
        println!("|---|---|---|---|---|");
        println!(
            "| dry run | {} | - | {dsecs:.1} | {:.1} MiB |",
            d["volumes_selected"],
            drss as f64 / 1024.0
        );
        println!(
            "| run | {} | {} | {rsecs:.1} | {:.1} MiB |",
            r["volumes_selected"],
            r["created"].as_array().map(|a| a.len()).unwrap_or(0),
            rrss as f64 / 1024.0
        );
        std::fs::remove_dir_all(&dir).ok();
        return;
    }
    // Three existing snapshots per volume for each side.
    for k in 0..3 {
        let _ = ebssnap_run(&format!("seed-{k}"), false);
        let _ = baseline_run(&format!("seed-{k}"));
        std::thread::sleep(std::time::Duration::from_millis(1100));
    }
    let (_, dry_rss, dry_out) = ebssnap_run("dry", true);
    let dry: Value = serde_json::from_str(&dry_out).unwrap();
    let mut ours = Vec::new();
    let mut base = Vec::new();
    let mut report = Value::Null;
    let mut run_rss = 0;
    for r in 0..rounds {
        std::thread::sleep(std::time::Duration::from_millis(1100));
        let (secs, rss, out) = ebssnap_run(&format!("round-{r}"), false);
        ours.push(secs);
        run_rss = run_rss.max(rss);
        report = serde_json::from_str(&out).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(1100));
        let (bsecs, bout) = baseline_run(&format!("round-{r}"));
        eprintln!(
            "round {r}: ebssnap {secs:.2} s, baseline {bsecs:.2} s ({})",
            bout.trim()
        );
        base.push(bsecs);
    }
    // Operations and their attempts; `throttled` (a map) is reported beside them.
    let calls: BTreeMap<String, u64> = report["api_calls"]
        .as_object()
        .into_iter()
        .flatten()
        .filter_map(|(k, v)| Some((k.clone(), v.as_u64()?)))
        .collect();
    let created = report["created"].as_array().unwrap().len() as u64;
    let deleted = report["deleted"].as_array().unwrap().len() as u64;
    let total: u64 = calls.values().sum();
    let snapshots_listed = volumes as u64 * 3;
    let lower = created
        + deleted
        + (instances as u64).div_ceil(1000)
        + (volumes as u64).div_ceil(500)
        + snapshots_listed.div_ceil(1000);
    let median = |v: &mut Vec<f64>| {
        v.sort_by(|a, b| a.partial_cmp(b).unwrap());
        v[v.len() / 2]
    };
    let (o, b) = (median(&mut ours), median(&mut base));

    println!(
        "## API efficiency ({instances} instances, {volumes} volumes, {} existing managed snapshots)\n",
        snapshots_listed
    );
    println!("| operation | calls |");
    println!("|---|---|");
    for (op, n) in &calls {
        println!("| {op} | {n} |");
    }
    println!("| **total** | **{total}** |");
    println!(
        "\nLower bound: {created} creates + {deleted} deletes + {} DescribeInstances + {} DescribeVolumes + {} DescribeSnapshots pages = {lower}. Ratio: {:.3} (target ≤ 1.05: {}).\n",
        (instances as u64).div_ceil(1000),
        (volumes as u64).div_ceil(500),
        snapshots_listed.div_ceil(1000),
        total as f64 / lower as f64,
        if total as f64 <= 1.05 * lower as f64 {
            "met"
        } else {
            "MISSED"
        }
    );
    println!(
        "A scheduled (Lambda) run also re-reads its two documents from Scheduler (2 `GetSchedule`, DESIGN §3); this run reads them from `--input` files, so the bound for the same run from Lambda is {}.\n",
        lower + 2
    );
    let latency = std::env::var("MOTO_LATENCY_MS").unwrap_or_else(|_| "0".into());
    println!(
        "## Wall time (median of {rounds} alternating rounds, same moto, {latency} ms added per request)\n"
    );
    println!("| runner | seconds |");
    println!("|---|---|");
    println!("| ebssnap (concurrency 16) | {o:.2} |");
    println!("| sequential boto3 baseline | {b:.2} |");
    println!(
        "\nRatio: {:.3} (target ≤ 0.25: {}).\n",
        o / b,
        if o / b <= 0.25 { "met" } else { "MISSED" }
    );
    println!("## Memory\n");
    println!("| run | volumes selected | peak RSS |");
    println!("|---|---|---|");
    println!(
        "| dry run | {} | {:.1} MiB |",
        dry["volumes_selected"],
        dry_rss as f64 / 1024.0
    );
    println!(
        "| run (creates and deletes) | {} | {:.1} MiB |",
        report["volumes_selected"],
        run_rss as f64 / 1024.0
    );
    println!("\n## Binary sizes (release, static)\n");
    println!("| binary | size |");
    println!("|---|---|");
    for name in ["ebssnap", "terraform-provider-ebssnap"] {
        if let Ok(meta) = std::fs::metadata(bin(name)) {
            println!("| {name} | {:.1} MB |", meta.len() as f64 / 1e6);
        }
    }
    std::fs::remove_dir_all(&dir).ok();
}
