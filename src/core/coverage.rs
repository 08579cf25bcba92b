//! Coverage (docs/design.md §12), the pure part: given every volume, what each target selects
//! (and excludes), and the restore points, the status of each volume.

use std::collections::{BTreeMap, BTreeSet};

use jiff::{SignedDuration, Timestamp};
use serde::Serialize;

/// A volume's protection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Selected by an enabled target, and its newest completed restore point of that target is
    /// younger than twice the target's interval.
    Protected,
    /// Selected, but no restore point that recent (or none yet).
    Stale,
    /// Matched by a selector and removed by that target's `exclude`.
    Excluded,
    /// Selected by nothing, or only by disabled targets.
    Unprotected,
}

impl Status {
    pub fn parse(s: &str) -> Option<Status> {
        Some(match s {
            "protected" => Status::Protected,
            "stale" => Status::Stale,
            "excluded" => Status::Excluded,
            "unprotected" => Status::Unprotected,
            _ => return None,
        })
    }
}

/// What one target does, evaluated on the account's inventory.
#[derive(Debug, Clone, Default)]
pub struct TargetView {
    /// `policy/target`.
    pub name: String,
    pub enabled: bool,
    /// The schedule's interval (None: a one-off `at()`).
    pub interval: Option<SignedDuration>,
    pub selected: BTreeSet<String>,
    /// Matched by the selector, removed by `exclude`.
    pub excluded: BTreeSet<String>,
}

/// A volume of the account, as coverage shows it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VolumeInfo {
    pub volume_id: String,
    pub size_gb: i64,
    pub instance_id: Option<String>,
    pub device: Option<String>,
    pub name: Option<String>,
}

/// A completed or pending restore point, for coverage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PointInfo {
    /// `policy/target`.
    pub target: String,
    pub snapshot_id: String,
    pub start_time: Timestamp,
    pub completed: bool,
    /// `ebssnap:restore-tested`, when present.
    pub restore_tested: Option<String>,
}

/// One row of the report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Row {
    pub volume_id: String,
    pub status: Status,
    pub size_gb: i64,
    pub instance_id: Option<String>,
    pub device: Option<String>,
    pub name: Option<String>,
    /// Enabled targets that select it (`policy/target`).
    pub targets: Vec<String>,
    /// Disabled targets that would select it.
    pub disabled_targets: Vec<String>,
    /// Targets whose `exclude` removed it.
    pub excluded_by: Vec<String>,
    pub newest_restore_point: Option<String>,
    pub newest_restore_point_at: Option<Timestamp>,
    pub newest_restore_point_age_seconds: Option<i64>,
    /// Completed restore points of the volume, all targets.
    pub restore_points: usize,
    /// The newest `ebssnap:restore-tested` of its restore points.
    pub last_restore_test: Option<String>,
}

/// The status of every volume at `now`.
pub fn classify(
    volumes: &[VolumeInfo],
    targets: &[TargetView],
    points: &BTreeMap<String, Vec<PointInfo>>,
    now: Timestamp,
) -> Vec<Row> {
    let none = Vec::new();
    let mut rows: Vec<Row> = volumes
        .iter()
        .map(|v| {
            let pts = points.get(&v.volume_id).unwrap_or(&none);
            let completed: Vec<&PointInfo> = pts.iter().filter(|p| p.completed).collect();
            let newest = completed.iter().max_by_key(|p| p.start_time);
            let selecting: Vec<&TargetView> = targets
                .iter()
                .filter(|t| t.selected.contains(&v.volume_id))
                .collect();
            let (enabled, disabled): (Vec<&TargetView>, Vec<&TargetView>) =
                selecting.into_iter().partition(|t| t.enabled);
            let excluded_by: Vec<String> = targets
                .iter()
                .filter(|t| t.enabled && t.excluded.contains(&v.volume_id))
                .map(|t| t.name.clone())
                .collect();
            let fresh = |t: &TargetView| {
                let newest_of_target = completed
                    .iter()
                    .filter(|p| p.target == t.name)
                    .map(|p| p.start_time)
                    .max();
                match (newest_of_target, t.interval) {
                    (Some(at), Some(i)) => now.duration_since(at) < i * 2,
                    // A one-off schedule: protected once it has a restore point.
                    (Some(_), None) => true,
                    (None, _) => false,
                }
            };
            let status = if !enabled.is_empty() {
                if enabled.iter().any(|t| fresh(t)) {
                    Status::Protected
                } else {
                    Status::Stale
                }
            } else if !excluded_by.is_empty() {
                Status::Excluded
            } else {
                Status::Unprotected
            };
            Row {
                volume_id: v.volume_id.clone(),
                status,
                size_gb: v.size_gb,
                instance_id: v.instance_id.clone(),
                device: v.device.clone(),
                name: v.name.clone(),
                targets: enabled.iter().map(|t| t.name.clone()).collect(),
                disabled_targets: disabled.iter().map(|t| t.name.clone()).collect(),
                excluded_by,
                newest_restore_point: newest.map(|p| p.snapshot_id.clone()),
                newest_restore_point_at: newest.map(|p| p.start_time),
                newest_restore_point_age_seconds: newest
                    .map(|p| now.duration_since(p.start_time).as_secs()),
                restore_points: completed.len(),
                last_restore_test: pts.iter().filter_map(|p| p.restore_tested.clone()).max(),
            }
        })
        .collect();
    rows.sort_by(|a, b| (a.status, &a.volume_id).cmp(&(b.status, &b.volume_id)));
    rows
}

/// Volumes and GiB per status.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Totals {
    pub volumes: BTreeMap<String, usize>,
    pub gib: BTreeMap<String, i64>,
}

pub fn totals(rows: &[Row]) -> Totals {
    let mut t = Totals::default();
    for r in rows {
        let key = serde_json::to_value(r.status)
            .ok()
            .and_then(|v| v.as_str().map(String::from))
            .unwrap_or_default();
        *t.volumes.entry(key.clone()).or_insert(0) += 1;
        *t.gib.entry(key).or_insert(0) += r.size_gb;
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vol(id: &str) -> VolumeInfo {
        VolumeInfo {
            volume_id: id.into(),
            size_gb: 8,
            ..Default::default()
        }
    }

    fn point(target: &str, hours_ago: i64, now: Timestamp) -> PointInfo {
        PointInfo {
            target: target.into(),
            snapshot_id: format!("snap-{hours_ago}"),
            start_time: now - SignedDuration::from_hours(hours_ago),
            completed: true,
            restore_tested: None,
        }
    }

    #[test]
    fn each_volume_gets_the_status_its_targets_and_restore_points_give() {
        let now = Timestamp::from_second(1_800_000_000).unwrap();
        let day = Some(SignedDuration::from_hours(24));
        let targets = vec![
            TargetView {
                name: "std/web".into(),
                enabled: true,
                interval: day,
                selected: ["vol-fresh", "vol-old", "vol-new"].map(String::from).into(),
                excluded: ["vol-root"].map(String::from).into(),
            },
            TargetView {
                name: "std/off".into(),
                enabled: false,
                interval: day,
                selected: ["vol-off"].map(String::from).into(),
                excluded: BTreeSet::new(),
            },
        ];
        let points = BTreeMap::from([
            ("vol-fresh".to_string(), vec![point("std/web", 20, now)]),
            // Three intervals old: stale.
            ("vol-old".to_string(), vec![point("std/web", 72, now)]),
            // A restore point of another target does not make web's selection protected.
            ("vol-off".to_string(), vec![point("std/other", 1, now)]),
        ]);
        let vols: Vec<VolumeInfo> = [
            "vol-fresh",
            "vol-old",
            "vol-new",
            "vol-root",
            "vol-off",
            "vol-lone",
        ]
        .map(vol)
        .to_vec();
        let rows = classify(&vols, &targets, &points, now);
        let status: BTreeMap<&str, Status> = rows
            .iter()
            .map(|r| (r.volume_id.as_str(), r.status))
            .collect();
        assert_eq!(status["vol-fresh"], Status::Protected);
        assert_eq!(status["vol-old"], Status::Stale);
        assert_eq!(status["vol-new"], Status::Stale, "no restore point yet");
        assert_eq!(status["vol-root"], Status::Excluded);
        assert_eq!(
            status["vol-off"],
            Status::Unprotected,
            "only a disabled target"
        );
        assert_eq!(status["vol-lone"], Status::Unprotected);
        let off = rows.iter().find(|r| r.volume_id == "vol-off").unwrap();
        assert_eq!(off.disabled_targets, ["std/off"]);
        let root = rows.iter().find(|r| r.volume_id == "vol-root").unwrap();
        assert_eq!(root.excluded_by, ["std/web"]);
        let fresh = rows.iter().find(|r| r.volume_id == "vol-fresh").unwrap();
        assert_eq!(fresh.newest_restore_point_age_seconds, Some(20 * 3600));
        let t = totals(&rows);
        assert_eq!(t.volumes["unprotected"], 2);
        assert_eq!(t.gib["stale"], 16);
        assert_eq!(Status::parse("stale"), Some(Status::Stale));
        assert_eq!(Status::parse("nope"), None);
    }
}
