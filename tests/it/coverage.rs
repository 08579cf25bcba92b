//! `ebssnap coverage` against moto (issue 22, first step): each volume's status.

use serde_json::{Value, json};

use crate::cli::ebssnap;
use crate::docs;
use crate::fleet;
use crate::moto::Moto;

#[tokio::test]
async fn every_volume_gets_the_status_its_targets_and_restore_points_give() {
    let Some(m) = Moto::start() else { return };
    let c = m.clients().await;
    let (web, web_root) = fleet::instance(&c, &[("Name", "web-1")]).await;
    let web_data = fleet::volume(&c, &[("Name", "web-1 data")]).await;
    fleet::attach(&c, &web_data, &web, "/dev/sdf").await;
    let tagged = fleet::volume(&c, &[("Backup", "yes")]).await;
    let never_run = fleet::volume(&c, &[("Name", "new")]).await;
    let lonely = fleet::volume(&c, &[("Name", "lonely")]).await;
    docs::store_policy(&c, &docs::policy("std", 7, 1)).await;
    let mut web_t = docs::target("std", "web", json!({"instance_names": ["web-*"]}));
    web_t["exclude"] = json!({"root_volumes": true});
    docs::store_target(&c, &web_t).await;
    docs::store_target(
        &c,
        &docs::target("std", "tagged", json!({"volume_tags": {"Backup": "yes"}})),
    )
    .await;
    docs::store_target(
        &c,
        &docs::target("std", "new", json!({"volume_ids": [never_run]})),
    )
    .await;
    for t in ["web", "tagged"] {
        let out = ebssnap(&m.env(), &["run", "--policy", "std", "--target", t]);
        assert_eq!(out.code, 0, "{}", out.stderr);
    }
    let cover = |now: &str| {
        let out = ebssnap(&m.env(), &["coverage", "--now", now, "--json"]);
        assert_eq!(out.code, 0, "{}", out.stderr);
        out.json()
    };
    let status = |r: &Value, v: &str| {
        r["volumes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|row| row["volume_id"] == json!(v))
            .map(|row| row["status"].as_str().unwrap().to_string())
            .unwrap_or_else(|| panic!("{v} missing: {r}"))
    };
    let soon = (jiff::Timestamp::now() + jiff::SignedDuration::from_hours(1)).to_string();
    let r = cover(&soon);
    assert_eq!(status(&r, &web_data), "protected");
    assert_eq!(status(&r, &tagged), "protected");
    assert_eq!(status(&r, &web_root), "excluded");
    assert_eq!(
        status(&r, &never_run),
        "stale",
        "selected, never snapshotted"
    );
    assert_eq!(status(&r, &lonely), "unprotected");
    assert_eq!(r["totals"]["volumes"]["protected"], 2, "{}", r["totals"]);
    let root_row = r["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|row| row["volume_id"] == json!(web_root))
        .unwrap();
    assert_eq!(root_row["excluded_by"], json!(["std/web"]));
    // Three days later (daily schedules): the restore points are older than two intervals.
    let later = (jiff::Timestamp::now() + jiff::SignedDuration::from_hours(72)).to_string();
    let r = cover(&later);
    assert_eq!(status(&r, &web_data), "stale");
    assert_eq!(status(&r, &tagged), "stale");

    // A CI gate, and its bad input.
    let gate = ebssnap(&m.env(), &["coverage", "--fail-on", "unprotected"]);
    assert_eq!(gate.code, 1, "{}", gate.stderr);
    assert!(
        gate.stdout.contains("UNPROTECTED (1 volume(s)"),
        "{}",
        gate.stdout
    );
    assert!(
        gate.stdout.contains("selected by no target"),
        "{}",
        gate.stdout
    );
    let bad = ebssnap(&m.env(), &["coverage", "--fail-on", "unsafe"]);
    assert_eq!(bad.code, 2, "{}", bad.stderr);
    assert!(bad.stderr.contains("not a status"), "{}", bad.stderr);
}
