//! Retention planner throughput: 1,000,000 synthetic snapshots (10,000 volumes × 100), planned
//! on one core. Target: under 1 s. `cargo bench --bench planner`.

use std::hint::black_box;
use std::time::Instant;

use ebssnap::core::doc::Rules;
use ebssnap::core::retention::{Scope, Snap, SnapState, plan};
use jiff::Timestamp;

fn main() {
    let now = Timestamp::from_second(1_800_000_000).unwrap();
    let volumes = 10_000;
    let per_volume = 100;
    let mut snaps = Vec::with_capacity(volumes * per_volume);
    for v in 0..volumes {
        for i in 0..per_volume {
            snaps.push(Snap {
                id: format!("snap-{v:08}{i:04}"),
                owned: true,
                policy: Some("std".into()),
                target: Some(if v % 2 == 0 { "web" } else { "db" }.into()),
                volume: format!("vol-{v:017}"),
                run: Some(format!("run-{i}")),
                state: if i % 50 == 7 {
                    SnapState::Pending
                } else {
                    SnapState::Completed
                },
                start_time: Timestamp::from_second(1_800_000_000 - (i as i64) * 86_400).unwrap(),
                copy: false,
            });
        }
    }
    let rules = Rules {
        days: 14,
        min_snapshots: 7,
        max_snapshots: Some(60),
        orphan_delete_after_days: None,
    };
    let scope = Scope::Policy { policy: "std" };
    let mut times = Vec::new();
    let mut deleted = 0;
    for _ in 0..5 {
        let t0 = Instant::now();
        let p = plan(&scope, black_box(&snaps), |_| rules, |_| false, now);
        times.push(t0.elapsed());
        deleted = p.delete.len();
        black_box(p);
    }
    times.sort();
    let median = times[times.len() / 2];
    println!("| benchmark | snapshots | deleted | median of 5 | min | target |");
    println!("|---|---|---|---|---|---|");
    println!(
        "| retention planner (1 core) | {} | {} | {:.3} s | {:.3} s | < 1 s: {} |",
        snaps.len(),
        deleted,
        median.as_secs_f64(),
        times[0].as_secs_f64(),
        if median.as_secs_f64() < 1.0 {
            "met"
        } else {
            "MISSED"
        }
    );
}
