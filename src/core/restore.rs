//! Restores (docs/design.md §11), the pure part: which restore point, what volume, which tags,
//! and which restore volumes a cleanup may delete. No AWS types: the AWS layer fills these
//! structs and the runner acts on the answers.

use std::collections::BTreeMap;

use jiff::{SignedDuration, Timestamp};
use serde::Serialize;

/// The source volume a restore volume was made for.
pub const TAG_RESTORE_OF: &str = "ebssnap:restore-of";
/// The snapshot a restore volume was made from.
pub const TAG_RESTORED_FROM: &str = "ebssnap:restored-from";
/// When a restore volume may be deleted (RFC 3339); absent with `--keep`.
pub const TAG_EXPIRES: &str = "ebssnap:expires";
/// The policy whose restore point a restore volume came from: that policy's sweeps delete it
/// once expired (and the runner's IAM document scopes `DeleteVolume` to it).
pub const TAG_RESTORE_POLICY: &str = "ebssnap:restore-policy";
/// The idempotency token of the request that made a restore volume: a retry after a lost answer
/// finds the volume by it.
pub const TAG_REQUEST: &str = "ebssnap:request";

/// How long a restore volume lives by default.
pub const DEFAULT_TTL: SignedDuration = SignedDuration::from_hours(24);

/// A restore point as the AWS layer lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Point {
    pub snapshot_id: String,
    pub run: Option<String>,
    pub policy: Option<String>,
    pub target: Option<String>,
    pub state: String,
    pub start_time: Timestamp,
    pub size_gb: i64,
    pub encrypted: bool,
    pub tags: BTreeMap<String, String>,
}

/// Which restore point to restore.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Choice {
    /// The newest completed one.
    Newest,
    /// The one of this run key.
    Run(String),
    /// This snapshot.
    Snapshot(String),
    /// The newest completed one started before this time.
    Before(Timestamp),
}

/// Picks the restore point `choice` names among `points` (any order). The error says what
/// exists: the three newest restore points.
pub fn choose<'a>(points: &'a [Point], choice: &Choice, volume: &str) -> Result<&'a Point, String> {
    let mut newest: Vec<&Point> = points.iter().collect();
    // Newest first; within one second, the later run (run keys are RFC 3339 times).
    newest.sort_by(|a, b| {
        (b.start_time, &b.run, &b.snapshot_id).cmp(&(a.start_time, &a.run, &a.snapshot_id))
    });
    let completed = |p: &&&Point| p.state == "completed";
    let found = match choice {
        Choice::Newest => newest.iter().find(completed).copied(),
        Choice::Run(run) => newest
            .iter()
            .find(|p| p.run.as_deref() == Some(run.as_str()))
            .copied(),
        Choice::Snapshot(id) => newest.iter().find(|p| p.snapshot_id == *id).copied(),
        Choice::Before(t) => newest
            .iter()
            .filter(|p| p.start_time < *t)
            .find(completed)
            .copied(),
    };
    let what = match choice {
        Choice::Newest => "no completed restore point".to_string(),
        Choice::Run(r) => format!("no restore point of run {r}"),
        Choice::Snapshot(s) => {
            format!("{s} is not a restore point of {volume} this account owns")
        }
        Choice::Before(t) => format!("no completed restore point before {t}"),
    };
    let exists = || {
        if newest.is_empty() {
            format!("{volume} has no ebssnap restore point in this Region")
        } else {
            let list: Vec<String> = newest
                .iter()
                .take(3)
                .map(|p| {
                    format!(
                        "{} (run {}, {}, {})",
                        p.snapshot_id,
                        p.run.as_deref().unwrap_or("-"),
                        p.start_time.strftime("%Y-%m-%dT%H:%M:%SZ"),
                        p.state
                    )
                })
                .collect();
            format!("the newest restore points of {volume}: {}", list.join(", "))
        }
    };
    match found {
        Some(p) if p.state != "completed" => Err(format!(
            "{} is {}, not completed: it cannot be restored yet; {}",
            p.snapshot_id,
            p.state,
            exists()
        )),
        Some(p) => Ok(p),
        None => Err(format!("{what}; {}", exists())),
    }
}

/// The newest run key every volume has a completed restore point of: `(volume, its runs)`.
pub fn common_newest_run(
    per_volume: &[(String, std::collections::BTreeSet<String>)],
) -> Result<String, String> {
    let mut common: Option<std::collections::BTreeSet<String>> = None;
    for (_, runs) in per_volume {
        common = Some(match common {
            None => runs.clone(),
            Some(c) => c.intersection(runs).cloned().collect(),
        });
    }
    // Run keys are RFC 3339 times (or manual keys): the greatest is the newest scheduled one.
    match common.and_then(|c| c.into_iter().next_back()) {
        Some(r) => Ok(r),
        None => {
            let missing: Vec<String> = per_volume
                .iter()
                .map(|(v, runs)| match runs.iter().next_back() {
                    Some(r) => format!("{v} (newest run {r})"),
                    None => format!("{v} (no completed restore point)"),
                })
                .collect();
            Err(format!(
                "no run has a completed restore point of every volume of the instance: {}; \
                 restore the volumes one by one with --volume",
                missing.join(", ")
            ))
        }
    }
}

/// Parses a time to live: a number and a unit, `m` (minutes), `h` (hours) or `d` (days):
/// `90m`, `8h`, `2d`. At least a minute, at most 365 days.
pub fn parse_ttl(s: &str) -> Result<SignedDuration, String> {
    let bad = || format!("{s:?} is not a time to live: use a number and m, h or d (90m, 8h, 2d)");
    let s = s.trim();
    let (num, unit) = s.split_at(s.len().saturating_sub(1));
    let n: i64 = num.parse().map_err(|_| bad())?;
    let minutes = match unit {
        "m" => n,
        "h" => n.checked_mul(60).ok_or_else(bad)?,
        "d" => n.checked_mul(24 * 60).ok_or_else(bad)?,
        _ => return Err(bad()),
    };
    if !(1..=365 * 24 * 60).contains(&minutes) {
        return Err(format!(
            "{s:?}: a time to live is between 1 minute and 365 days"
        ));
    }
    Ok(SignedDuration::from_mins(minutes))
}

/// EBS volume types and the ranges AWS documents for them (size in GiB, IOPS, MiB/s).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TypeLimits {
    pub name: &'static str,
    pub size: (i64, i64),
    /// IOPS that may be set (None: the type takes none).
    pub iops: Option<(i64, i64)>,
    /// Throughput that may be set (gp3 only).
    pub throughput: Option<(i64, i64)>,
}

pub const VOLUME_TYPES: &[TypeLimits] = &[
    TypeLimits {
        name: "gp3",
        size: (1, 65_536),
        iops: Some((3_000, 80_000)),
        throughput: Some((125, 2_000)),
    },
    TypeLimits {
        name: "gp2",
        size: (1, 16_384),
        iops: None,
        throughput: None,
    },
    TypeLimits {
        name: "io1",
        size: (4, 16_384),
        iops: Some((100, 64_000)),
        throughput: None,
    },
    TypeLimits {
        name: "io2",
        size: (4, 65_536),
        iops: Some((100, 256_000)),
        throughput: None,
    },
    TypeLimits {
        name: "st1",
        size: (125, 16_384),
        iops: None,
        throughput: None,
    },
    TypeLimits {
        name: "sc1",
        size: (125, 16_384),
        iops: None,
        throughput: None,
    },
    TypeLimits {
        name: "standard",
        size: (1, 1_024),
        iops: None,
        throughput: None,
    },
];

/// The new volume's shape.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Shape {
    pub volume_type: String,
    pub size_gb: i64,
    pub iops: Option<i64>,
    pub throughput: Option<i64>,
}

/// The source volume's shape, when it still exists.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SourceShape {
    pub volume_type: Option<String>,
    pub iops: Option<i64>,
    pub throughput: Option<i64>,
}

/// What the flags ask for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ShapeFlags {
    pub volume_type: Option<String>,
    pub size_gb: Option<i64>,
    pub iops: Option<i64>,
    pub throughput: Option<i64>,
}

/// The new volume's shape: the flags, else the source volume's type, IOPS and throughput (when
/// it exists and the type is the same), else gp3; the snapshot's size unless larger is asked for.
/// Checked against the type's ranges before anything is created.
pub fn shape(flags: &ShapeFlags, source: &SourceShape, snapshot_gb: i64) -> Result<Shape, String> {
    let volume_type = flags
        .volume_type
        .clone()
        .or_else(|| source.volume_type.clone())
        .unwrap_or_else(|| "gp3".into());
    let Some(limits) = VOLUME_TYPES.iter().find(|t| t.name == volume_type) else {
        let names: Vec<&str> = VOLUME_TYPES.iter().map(|t| t.name).collect();
        return Err(format!(
            "unknown volume type {volume_type:?}: one of {}",
            names.join(", ")
        ));
    };
    let size_gb = flags.size_gb.unwrap_or(snapshot_gb);
    if size_gb < snapshot_gb {
        return Err(format!(
            "--size {size_gb} GiB is smaller than the snapshot ({snapshot_gb} GiB): a volume \
             restored from a snapshot is at least as large as the snapshot"
        ));
    }
    if size_gb < limits.size.0 || size_gb > limits.size.1 {
        return Err(format!(
            "a {volume_type} volume is {}–{} GiB, not {size_gb}",
            limits.size.0, limits.size.1
        ));
    }
    let same_type = source.volume_type.as_deref() == Some(volume_type.as_str());
    let pick = |flag: Option<i64>, src: Option<i64>, range: Option<(i64, i64)>, what: &str| match (
        flag, range,
    ) {
        (Some(v), Some((lo, hi))) if v < lo || v > hi => Err(format!(
            "--{what} {v} is outside {lo}–{hi} for a {volume_type} volume"
        )),
        (Some(v), Some(_)) => Ok(Some(v)),
        (Some(_), None) => Err(format!("a {volume_type} volume takes no --{what}")),
        (None, Some((lo, hi))) => Ok(src.filter(|_| same_type).filter(|v| (lo..=hi).contains(v))),
        (None, None) => Ok(None),
    };
    let iops = pick(flags.iops, source.iops, limits.iops, "iops")?;
    // io1/io2 need IOPS: the source's, else the type's lowest.
    let iops = match (volume_type.as_str(), iops) {
        ("io1" | "io2", None) => limits.iops.map(|r| r.0),
        (_, v) => v,
    };
    let throughput = pick(
        flags.throughput,
        source.throughput,
        limits.throughput,
        "throughput",
    )?;
    Ok(Shape {
        volume_type,
        size_gb,
        iops,
        throughput,
    })
}

/// The tags of a restore volume, applied at creation: the snapshot's own tags (without `aws:`
/// and `ebssnap:` keys, and without its `Name`), then the restore's. At most 50.
pub fn tags(
    point: &Point,
    source_volume: &str,
    source_name: Option<&str>,
    expires: Option<Timestamp>,
    request: &str,
) -> Vec<(String, String)> {
    let run = point.run.as_deref().unwrap_or("-");
    let name = format!(
        "restore of {} at {run}",
        source_name.unwrap_or(source_volume)
    );
    let mut own = vec![
        (TAG_RESTORE_OF.to_string(), source_volume.to_string()),
        (TAG_RESTORED_FROM.to_string(), point.snapshot_id.clone()),
        (TAG_REQUEST.to_string(), request.to_string()),
        ("Name".to_string(), name.chars().take(256).collect()),
    ];
    if let Some(r) = &point.run {
        own.push((super::tags::TAG_RUN.to_string(), r.clone()));
    }
    if let Some(p) = &point.policy {
        own.push((TAG_RESTORE_POLICY.to_string(), p.clone()));
    }
    if let Some(t) = expires {
        own.push((TAG_EXPIRES.to_string(), t.to_string()));
    }
    let copied = point
        .tags
        .iter()
        .filter(|(k, _)| {
            !k.starts_with("aws:") && !super::tags::is_ebssnap_key(k) && k.as_str() != "Name"
        })
        .map(|(k, v)| (k.clone(), v.clone()))
        .take(50 - own.len());
    let mut out: Vec<(String, String)> = copied.collect();
    out.extend(own);
    out
}

/// A volume ebssnap restored, as the AWS layer lists it (volumes tagged `ebssnap:restore-of`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RestoreVolume {
    pub volume_id: String,
    pub state: String,
    pub availability_zone: String,
    pub size_gb: i64,
    pub restore_of: String,
    pub restored_from: Option<String>,
    pub run: Option<String>,
    pub expires: Option<String>,
    pub attached_to: Option<String>,
    pub created: Option<Timestamp>,
}

/// What a cleanup does with one restore volume.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Fate {
    /// Not expired, or kept (`--keep`: no expiry).
    Keep,
    /// Expired and `available`: deleted.
    Delete,
    /// Expired but attached (or in any state but `available`): never detached, reported.
    ExpiredInUse,
    /// Its `ebssnap:expires` does not parse: kept, reported.
    BadExpiry,
}

/// The fate of a restore volume at `now`.
pub fn fate(v: &RestoreVolume, now: Timestamp) -> Fate {
    let Some(expires) = &v.expires else {
        return Fate::Keep;
    };
    let Ok(at) = expires.parse::<Timestamp>() else {
        return Fate::BadExpiry;
    };
    if at > now {
        Fate::Keep
    } else if v.state == "available" && v.attached_to.is_none() {
        Fate::Delete
    } else {
        Fate::ExpiredInUse
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn point(id: &str, run: &str, hours_ago: i64, state: &str) -> Point {
        Point {
            snapshot_id: id.into(),
            run: Some(run.into()),
            policy: Some("std".into()),
            target: Some("web".into()),
            state: state.into(),
            start_time: Timestamp::from_second(1_800_000_000 - hours_ago * 3600).unwrap(),
            size_gb: 8,
            encrypted: false,
            tags: BTreeMap::new(),
        }
    }

    #[test]
    fn the_newest_completed_point_is_the_default_and_errors_name_what_exists() {
        let pts = vec![
            point("snap-old", "r1", 48, "completed"),
            point("snap-mid", "r2", 24, "completed"),
            point("snap-new", "r3", 1, "pending"),
        ];
        assert_eq!(
            choose(&pts, &Choice::Newest, "vol-1").unwrap().snapshot_id,
            "snap-mid"
        );
        assert_eq!(
            choose(&pts, &Choice::Run("r1".into()), "vol-1")
                .unwrap()
                .snapshot_id,
            "snap-old"
        );
        let before = Timestamp::from_second(1_800_000_000 - 30 * 3600).unwrap();
        assert_eq!(
            choose(&pts, &Choice::Before(before), "vol-1")
                .unwrap()
                .snapshot_id,
            "snap-old"
        );
        let pending = choose(&pts, &Choice::Snapshot("snap-new".into()), "vol-1").unwrap_err();
        assert!(pending.contains("pending, not completed"), "{pending}");
        let missing = choose(&pts, &Choice::Run("nope".into()), "vol-1").unwrap_err();
        assert!(
            missing.contains("no restore point of run nope"),
            "{missing}"
        );
        assert!(
            missing.contains("snap-new (run r3") && missing.contains("snap-old"),
            "{missing}"
        );
        let none = choose(&[], &Choice::Newest, "vol-1").unwrap_err();
        assert!(
            none.contains("vol-1 has no ebssnap restore point"),
            "{none}"
        );
    }

    #[test]
    fn an_instance_restores_at_the_newest_run_all_its_volumes_share() {
        let set = |rs: &[&str]| rs.iter().map(|r| r.to_string()).collect();
        let vols = vec![
            ("vol-root".to_string(), set(&["r1", "r2", "r3"])),
            ("vol-data".to_string(), set(&["r1", "r2"])),
        ];
        assert_eq!(common_newest_run(&vols), Ok("r2".into()));
        let none = vec![
            ("vol-root".to_string(), set(&["r3"])),
            ("vol-data".to_string(), set(&[])),
        ];
        let e = common_newest_run(&none).unwrap_err();
        assert!(e.contains("vol-data (no completed restore point)"), "{e}");
        assert!(e.contains("vol-root (newest run r3)"), "{e}");
    }

    #[test]
    fn ttls_parse_with_a_unit_and_within_bounds() {
        assert_eq!(parse_ttl("90m"), Ok(SignedDuration::from_mins(90)));
        assert_eq!(parse_ttl("8h"), Ok(SignedDuration::from_hours(8)));
        assert_eq!(parse_ttl("2d"), Ok(SignedDuration::from_hours(48)));
        for bad in ["", "h", "8", "8x", "-1h", "0m", "400d", "1.5h"] {
            assert!(parse_ttl(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_shape_follows_flags_then_the_source_then_gp3_within_the_types_ranges() {
        let none = SourceShape::default();
        let s = shape(&ShapeFlags::default(), &none, 8).unwrap();
        assert_eq!(
            (s.volume_type.as_str(), s.size_gb, s.iops),
            ("gp3", 8, None)
        );
        let src = SourceShape {
            volume_type: Some("io2".into()),
            iops: Some(5000),
            throughput: None,
        };
        let s = shape(&ShapeFlags::default(), &src, 8).unwrap();
        assert_eq!((s.volume_type.as_str(), s.iops), ("io2", Some(5000)));
        // Another type: the source's IOPS do not carry over; io1 gets its lowest.
        let f = ShapeFlags {
            volume_type: Some("io1".into()),
            ..Default::default()
        };
        assert_eq!(shape(&f, &src, 8).unwrap().iops, Some(100));
        let small = ShapeFlags {
            size_gb: Some(4),
            ..Default::default()
        };
        assert!(
            shape(&small, &none, 8)
                .unwrap_err()
                .contains("smaller than the snapshot")
        );
        let iops_gp2 = ShapeFlags {
            volume_type: Some("gp2".into()),
            iops: Some(3000),
            ..Default::default()
        };
        assert!(
            shape(&iops_gp2, &none, 8)
                .unwrap_err()
                .contains("takes no --iops")
        );
        let slow = ShapeFlags {
            throughput: Some(50),
            ..Default::default()
        };
        assert!(
            shape(&slow, &none, 8)
                .unwrap_err()
                .contains("outside 125–2000")
        );
        let st1 = ShapeFlags {
            volume_type: Some("st1".into()),
            ..Default::default()
        };
        assert!(shape(&st1, &none, 8).unwrap_err().contains("125–16384 GiB"));
        assert!(
            shape(
                &ShapeFlags {
                    volume_type: Some("gp9".into()),
                    ..Default::default()
                },
                &none,
                8
            )
            .is_err()
        );
    }

    #[test]
    fn restore_tags_copy_user_tags_and_name_the_restore() {
        let mut p = point("snap-1", "2026-12-01T05:00:00Z", 1, "completed");
        p.tags = BTreeMap::from([
            ("Team".into(), "data".into()),
            ("Name".into(), "db-1 data".into()),
            ("aws:backup".into(), "x".into()),
            ("ebssnap:policy".into(), "std".into()),
        ]);
        let t: BTreeMap<String, String> = tags(&p, "vol-1", Some("db-1 data"), None, "tok")
            .into_iter()
            .collect();
        assert_eq!(t["Team"], "data");
        assert_eq!(t["Name"], "restore of db-1 data at 2026-12-01T05:00:00Z");
        assert_eq!(t[TAG_RESTORE_OF], "vol-1");
        assert_eq!(t[TAG_RESTORED_FROM], "snap-1");
        assert_eq!(t[TAG_REQUEST], "tok");
        assert_eq!(t["ebssnap:run"], "2026-12-01T05:00:00Z");
        assert_eq!(t[TAG_RESTORE_POLICY], "std");
        assert!(!t.contains_key("aws:backup") && !t.contains_key("ebssnap:policy"));
        assert!(!t.contains_key(TAG_EXPIRES), "--keep: no expiry");
    }

    #[test]
    fn cleanup_deletes_only_expired_available_volumes() {
        let now = Timestamp::from_second(1_800_000_000).unwrap();
        let v = |state: &str, expires: Option<&str>, attached: Option<&str>| RestoreVolume {
            volume_id: "vol-r".into(),
            state: state.into(),
            availability_zone: "us-east-1a".into(),
            size_gb: 8,
            restore_of: "vol-1".into(),
            restored_from: None,
            run: None,
            expires: expires.map(String::from),
            attached_to: attached.map(String::from),
            created: None,
        };
        let past = "2027-06-01T00:00:00Z";
        let gone = (now - SignedDuration::from_hours(1)).to_string();
        assert_eq!(fate(&v("available", Some(&gone), None), now), Fate::Delete);
        assert_eq!(fate(&v("available", Some(past), None), now), Fate::Keep);
        assert_eq!(fate(&v("available", None, None), now), Fate::Keep);
        assert_eq!(
            fate(&v("in-use", Some(&gone), Some("i-1")), now),
            Fate::ExpiredInUse
        );
        assert_eq!(
            fate(&v("available", Some("soon"), None), now),
            Fate::BadExpiry
        );
    }
}
