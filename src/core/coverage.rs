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
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Protected => "protected",
            Status::Stale => "stale",
            Status::Excluded => "excluded",
            Status::Unprotected => "unprotected",
        }
    }

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

/// What `--fail-on` can ask for: a status, or `untested`: a selected volume (protected or
/// stale) none of whose restore points has passed a restore test.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailOn {
    Status(Status),
    Untested,
}

impl FailOn {
    pub fn parse(s: &str) -> Option<FailOn> {
        match s {
            "untested" => Some(FailOn::Untested),
            s => Status::parse(s).map(FailOn::Status),
        }
    }

    pub fn matches(self, row: &Row) -> bool {
        match self {
            FailOn::Status(s) => row.status == s,
            FailOn::Untested => {
                matches!(row.status, Status::Protected | Status::Stale)
                    && row.last_restore_test.is_none()
            }
        }
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
    /// Matched by the selector, removed by `exclude`: volume → the rule (`root_volumes`, ...).
    pub excluded: BTreeMap<String, String>,
    /// The schedule's next fire time (None: disabled, or no fire ahead).
    pub next_run: Option<Timestamp>,
}

/// A volume of the account, as coverage shows it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VolumeInfo {
    pub volume_id: String,
    pub zone: String,
    pub volume_type: Option<String>,
    pub size_gb: i64,
    pub instance_id: Option<String>,
    pub device: Option<String>,
    pub name: Option<String>,
    pub created: Option<Timestamp>,
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

/// A target's `exclude` that removed a volume, and which of its rules.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Exclusion {
    pub target: String,
    pub rule: String,
}

/// One row of the report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Row {
    /// The account and Region the volume lives in (filled in by the caller).
    pub account: Option<String>,
    pub region: Option<String>,
    pub volume_id: String,
    pub status: Status,
    pub zone: String,
    pub volume_type: Option<String>,
    pub size_gb: i64,
    pub instance_id: Option<String>,
    pub device: Option<String>,
    pub name: Option<String>,
    /// When the volume was created.
    pub created: Option<Timestamp>,
    /// Enabled targets that select it (`policy/target`).
    pub targets: Vec<String>,
    /// Disabled targets that would select it.
    pub disabled_targets: Vec<String>,
    /// Targets whose `exclude` removed it, with the rule.
    pub excluded_by: Vec<Exclusion>,
    pub newest_restore_point: Option<String>,
    pub newest_restore_point_at: Option<Timestamp>,
    pub newest_restore_point_age_seconds: Option<i64>,
    /// When its oldest completed restore point (any target) was started.
    pub first_restore_point_at: Option<Timestamp>,
    /// Completed restore points of the volume, all targets.
    pub restore_points: usize,
    /// The newest `ebssnap:restore-tested` of its restore points.
    pub last_restore_test: Option<String>,
    /// The soonest next run of the enabled targets that select it.
    pub next_run: Option<Timestamp>,
    /// Twice the longest interval of the enabled targets that select it: a newest restore point
    /// older than this is stale (None: no enabled target, or only one-off schedules).
    pub stale_after_seconds: Option<i64>,
    /// Its disaster-recovery copies per copy Region, among the Regions the report read.
    pub copies: BTreeMap<String, RegionCopies>,
}

/// A volume's copies in one Region.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RegionCopies {
    /// Completed copies.
    pub count: usize,
    /// The newest completed copy's restore point time (`ebssnap:source-time`).
    pub newest_at: Option<Timestamp>,
}

/// A copy seen in a Region: whose restore point it copies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CopySeen {
    pub account: Option<String>,
    pub region: String,
    pub source_region: String,
    pub source_volume: String,
    pub at: Timestamp,
    pub completed: bool,
}

/// Adds to each row the copies of its volume seen in the Regions read, in the same account.
pub fn attribute_copies(rows: &mut [Row], copies: &[CopySeen]) {
    for r in rows.iter_mut() {
        let Some(region) = r.region.clone() else {
            continue;
        };
        for c in copies.iter().filter(|c| {
            c.completed
                && c.account == r.account
                && c.source_region == region
                && c.source_volume == r.volume_id
        }) {
            let e = r.copies.entry(c.region.clone()).or_default();
            e.count += 1;
            e.newest_at = e.newest_at.max(Some(c.at));
        }
    }
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
            let excluded_by: Vec<Exclusion> = targets
                .iter()
                .filter(|t| t.enabled)
                .filter_map(|t| {
                    Some(Exclusion {
                        target: t.name.clone(),
                        rule: t.excluded.get(&v.volume_id)?.clone(),
                    })
                })
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
                account: None,
                region: None,
                volume_id: v.volume_id.clone(),
                status,
                zone: v.zone.clone(),
                volume_type: v.volume_type.clone(),
                size_gb: v.size_gb,
                instance_id: v.instance_id.clone(),
                device: v.device.clone(),
                name: v.name.clone(),
                created: v.created,
                targets: enabled.iter().map(|t| t.name.clone()).collect(),
                disabled_targets: disabled.iter().map(|t| t.name.clone()).collect(),
                excluded_by,
                newest_restore_point: newest.map(|p| p.snapshot_id.clone()),
                newest_restore_point_at: newest.map(|p| p.start_time),
                newest_restore_point_age_seconds: newest
                    .map(|p| now.duration_since(p.start_time).as_secs()),
                first_restore_point_at: completed.iter().map(|p| p.start_time).min(),
                restore_points: completed.len(),
                last_restore_test: pts.iter().filter_map(|p| p.restore_tested.clone()).max(),
                next_run: enabled.iter().filter_map(|t| t.next_run).min(),
                stale_after_seconds: enabled
                    .iter()
                    .filter_map(|t| t.interval)
                    .max()
                    .map(|i| (i * 2).as_secs()),
                copies: BTreeMap::new(),
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
        let key = r.status.as_str().to_string();
        *t.volumes.entry(key.clone()).or_insert(0) += 1;
        *t.gib.entry(key).or_insert(0) += r.size_gb;
    }
    t
}

/// What a sweep with `report_unprotected` reports: the unprotected volumes, how many are stale,
/// the oldest "newest restore point" of the selected volumes, and the volumes protected since
/// `since` (the previous sweep): protected now, created before it, and with their first restore
/// point after it, so the previous sweep saw them without any (it reported them unprotected, or
/// stale). The runner keeps no state, so that is how it knows which unprotected problems ended;
/// a volume created since the previous sweep never had a ticket and gets no recovery.
pub fn sweep_summary(rows: &[Row], since: Timestamp) -> crate::core::report::CoverageSweep {
    use crate::core::report::CoverageVolume;
    let volume = |r: &Row| CoverageVolume {
        volume_id: r.volume_id.clone(),
        instance_id: r.instance_id.clone(),
        device: r.device.clone(),
        name: r.name.clone(),
        disabled_targets: r.disabled_targets.clone(),
        snapshot_id: None,
    };
    crate::core::report::CoverageSweep {
        volumes: rows.len(),
        unprotected: rows
            .iter()
            .filter(|r| r.status == Status::Unprotected)
            .map(volume)
            .collect(),
        stale_volumes: rows.iter().filter(|r| r.status == Status::Stale).count(),
        oldest_restore_point_age_seconds: rows
            .iter()
            .filter(|r| matches!(r.status, Status::Protected | Status::Stale))
            .filter_map(|r| r.newest_restore_point_age_seconds)
            .max(),
        newly_protected: rows
            .iter()
            .filter(|r| {
                r.status == Status::Protected
                    && r.created.is_some_and(|c| c <= since)
                    && r.first_restore_point_at.is_some_and(|t| t > since)
            })
            .map(|r| CoverageVolume {
                snapshot_id: r.newest_restore_point.clone(),
                ..volume(r)
            })
            .collect(),
    }
}

/// One line of an accounts file (`--accounts`): an account, the role to assume in it, and the
/// role's external id when it requires one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Account {
    pub account_id: String,
    pub role_arn: String,
    #[serde(skip)]
    pub external_id: Option<String>,
}

fn is_account_id(s: &str) -> bool {
    s.len() == 12 && s.bytes().all(|b| b.is_ascii_digit())
}

/// Parses an accounts file: one `account_id role_arn [external_id]` per line, blank lines and
/// `#` comments ignored. An error names the line and what is wrong with it.
pub fn parse_accounts(text: &str) -> Result<Vec<Account>, String> {
    let mut out: Vec<Account> = Vec::new();
    for (n, raw) in text.lines().enumerate() {
        let line = raw.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        let n = n + 1;
        let fields: Vec<&str> = line.split_whitespace().collect();
        let [account_id, role_arn, rest @ ..] = fields.as_slice() else {
            return Err(format!(
                "line {n}: expected `account_id role_arn [external_id]`, found one field"
            ));
        };
        if rest.len() > 1 {
            return Err(format!(
                "line {n}: expected `account_id role_arn [external_id]`, found {} fields",
                fields.len()
            ));
        }
        if !is_account_id(account_id) {
            return Err(format!(
                "line {n}: account id {account_id:?} is not 12 digits"
            ));
        }
        // arn:<partition>:iam::<account>:role/<path/name>
        let parts: Vec<&str> = role_arn.splitn(6, ':').collect();
        let role_ok = parts.len() == 6
            && parts[0] == "arn"
            && parts[1].starts_with("aws")
            && parts[2] == "iam"
            && parts[3].is_empty()
            && parts[5].starts_with("role/")
            && parts[5].len() > "role/".len();
        if !role_ok {
            return Err(format!(
                "line {n}: {role_arn:?} is not an IAM role ARN (arn:aws:iam::<account>:role/<name>)"
            ));
        }
        if parts[4] != *account_id {
            return Err(format!(
                "line {n}: role {role_arn} is in account {}, not {account_id}",
                parts[4]
            ));
        }
        let external_id = rest.first().map(|e| e.to_string());
        if let Some(e) = &external_id {
            let ok = (2..=1224).contains(&e.len())
                && e.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "+=,.@:/-_".contains(c));
            if !ok {
                return Err(format!(
                    "line {n}: the external id must be 2 to 1224 characters of letters, digits and +=,.@:/-_"
                ));
            }
        }
        if out.iter().any(|a| a.account_id == *account_id) {
            return Err(format!("line {n}: account {account_id} is listed twice"));
        }
        out.push(Account {
            account_id: account_id.to_string(),
            role_arn: role_arn.to_string(),
            external_id,
        });
    }
    if out.is_empty() {
        return Err(
            "no accounts: expected one `account_id role_arn [external_id]` per line".into(),
        );
    }
    Ok(out)
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
                excluded: [("vol-root".to_string(), "root_volumes".to_string())].into(),
                next_run: Some(now + SignedDuration::from_hours(4)),
            },
            TargetView {
                name: "std/off".into(),
                enabled: false,
                interval: day,
                selected: ["vol-off"].map(String::from).into(),
                excluded: BTreeMap::new(),
                next_run: None,
            },
        ];
        let points = BTreeMap::from([
            ("vol-fresh".to_string(), vec![point("std/web", 20, now)]),
            // Three intervals old: stale.
            ("vol-old".to_string(), vec![point("std/web", 72, now)]),
            // A restore point of another target does not make web's selection protected.
            ("vol-off".to_string(), vec![point("std/other", 1, now)]),
        ]);
        let mut vols: Vec<VolumeInfo> = [
            "vol-fresh",
            "vol-old",
            "vol-new",
            "vol-root",
            "vol-off",
            "vol-lone",
        ]
        .map(vol)
        .to_vec();
        vols[0].created = Some(now - SignedDuration::from_hours(30));
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
        assert_eq!(
            root.excluded_by,
            [Exclusion {
                target: "std/web".into(),
                rule: "root_volumes".into()
            }]
        );
        assert_eq!(root.next_run, None, "no enabled target selects it");
        let fresh = rows.iter().find(|r| r.volume_id == "vol-fresh").unwrap();
        assert_eq!(fresh.newest_restore_point_age_seconds, Some(20 * 3600));
        assert_eq!(fresh.next_run, Some(now + SignedDuration::from_hours(4)));
        let t = totals(&rows);
        assert_eq!(t.volumes["unprotected"], 2);
        assert_eq!(t.gib["stale"], 16);
        assert_eq!(Status::parse("stale"), Some(Status::Stale));
        // A sweep a day ago: vol-fresh's only restore point (20 h old) came after it.
        let sw = sweep_summary(&rows, now - SignedDuration::from_hours(24));
        assert_eq!(
            sw.unprotected
                .iter()
                .map(|v| v.volume_id.as_str())
                .collect::<Vec<_>>(),
            ["vol-lone", "vol-off"]
        );
        assert_eq!(sw.stale_volumes, 2);
        assert_eq!(sw.oldest_restore_point_age_seconds, Some(72 * 3600));
        assert_eq!(sw.newly_protected.len(), 1);
        assert_eq!(sw.newly_protected[0].volume_id, "vol-fresh");
        // A sweep 12 hours ago: it was already protected then.
        let sw = sweep_summary(&rows, now - SignedDuration::from_hours(12));
        assert!(sw.newly_protected.is_empty());
        // A volume created after the previous sweep never had a ticket: no recovery.
        let sw = sweep_summary(&rows, now - SignedDuration::from_hours(31));
        assert!(sw.newly_protected.is_empty());
        assert_eq!(Status::parse("nope"), None);
        // Selected volumes none of whose restore points passed a restore test.
        let untested: Vec<&str> = rows
            .iter()
            .filter(|r| FailOn::Untested.matches(r))
            .map(|r| r.volume_id.as_str())
            .collect();
        assert_eq!(untested, ["vol-fresh", "vol-new", "vol-old"]);
        assert_eq!(FailOn::parse("untested"), Some(FailOn::Untested));
        assert_eq!(FailOn::parse("stale"), Some(FailOn::Status(Status::Stale)));
        assert_eq!(FailOn::parse("tested"), None);
    }

    #[test]
    fn an_accounts_file_names_the_line_and_what_is_wrong() {
        let ok = parse_accounts(
            "# vault and prod\n111122223333 arn:aws:iam::111122223333:role/ebssnap-audit\n\n444455556666 arn:aws:iam::444455556666:role/team/audit ext-42 # prod\n",
        )
        .unwrap();
        assert_eq!(ok.len(), 2);
        assert_eq!(ok[1].external_id.as_deref(), Some("ext-42"));
        assert_eq!(ok[1].role_arn, "arn:aws:iam::444455556666:role/team/audit");
        for (text, want) in [
            ("111122223333\n", "line 1: expected"),
            (
                "\n12345 arn:aws:iam::12345:role/x\n",
                "line 2: account id \"12345\" is not 12 digits",
            ),
            (
                "111122223333 arn:aws:iam::111122223333:user/x\n",
                "is not an IAM role ARN",
            ),
            (
                "111122223333 arn:aws:iam::999999999999:role/x\n",
                "is in account 999999999999, not 111122223333",
            ),
            (
                "111122223333 arn:aws:iam::111122223333:role/x a b\n",
                "found 4 fields",
            ),
            (
                "111122223333 arn:aws:iam::111122223333:role/x e\n",
                "external id",
            ),
            (
                "111122223333 arn:aws:iam::111122223333:role/x\n111122223333 arn:aws:iam::111122223333:role/y\n",
                "line 2: account 111122223333 is listed twice",
            ),
            ("# nothing\n", "no accounts"),
        ] {
            let err = parse_accounts(text).unwrap_err();
            assert!(err.contains(want), "{text:?}: {err}");
        }
    }
}
