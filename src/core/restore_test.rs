//! Restore tests (docs/design.md §11), the pure part: the (target, volume) pairs of a policy,
//! each with its newest completed restore point and its test history, and which pairs a test
//! run takes. The history lives on the snapshots (`ebssnap:restore-tested`,
//! `ebssnap:restore-failed`): no state store.

use std::collections::BTreeMap;

use jiff::Timestamp;
use serde::Serialize;

use super::restore::Point;

/// On a snapshot: when a restore test of it passed (RFC 3339).
pub const TAG_RESTORE_TESTED: &str = "ebssnap:restore-tested";
/// On a snapshot: when a restore test of it failed (RFC 3339).
pub const TAG_RESTORE_FAILED: &str = "ebssnap:restore-failed";
/// On a volume a restore test made: the policy under test (so a crashed test's volume is found).
pub const TAG_RESTORE_TEST: &str = "ebssnap:restore-test";

/// One (target, volume) pair of a policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pair {
    pub target: String,
    pub volume_id: String,
    /// Its newest completed restore point.
    pub newest: Option<Point>,
    /// Restore points in state `error`: never restored by a test.
    pub errors: Vec<String>,
    pub last_pass: Option<Timestamp>,
    pub last_fail: Option<Timestamp>,
}

impl Pair {
    /// When the pair was last tested, pass or fail.
    pub fn last_tested(&self) -> Option<Timestamp> {
        self.last_pass.max(self.last_fail)
    }

    /// Its newest test failed (so a pass now is a recovery).
    pub fn failing(&self) -> bool {
        match (self.last_fail, self.last_pass) {
            (Some(f), Some(p)) => f > p,
            (Some(_), None) => true,
            _ => false,
        }
    }
}

/// Groups a policy's restore points (volume pair key, point) into pairs.
pub fn pairs(points: Vec<(String, Point)>) -> Vec<Pair> {
    let mut by: BTreeMap<(String, String), Pair> = BTreeMap::new();
    for (volume, p) in points {
        let target = p.target.clone().unwrap_or_default();
        let pair = by
            .entry((target.clone(), volume.clone()))
            .or_insert_with(|| Pair {
                target,
                volume_id: volume,
                newest: None,
                errors: vec![],
                last_pass: None,
                last_fail: None,
            });
        let stamp = |k: &str| p.tags.get(k).and_then(|v| v.parse::<Timestamp>().ok());
        pair.last_pass = pair.last_pass.max(stamp(TAG_RESTORE_TESTED));
        pair.last_fail = pair.last_fail.max(stamp(TAG_RESTORE_FAILED));
        match p.state.as_str() {
            "completed" => {
                let newer = pair.newest.as_ref().is_none_or(|n| {
                    (p.start_time, &p.run, &p.snapshot_id) > (n.start_time, &n.run, &n.snapshot_id)
                });
                if newer {
                    pair.newest = Some(p);
                }
            }
            "error" => pair.errors.push(p.snapshot_id),
            _ => {}
        }
    }
    by.into_values().collect()
}

/// The pairs a test run takes: `sample` of those with a completed restore point, the ones tested
/// longest ago first (never tested before all), then by target and volume.
pub fn pick(pairs: &[Pair], sample: usize) -> Vec<&Pair> {
    let mut candidates: Vec<&Pair> = pairs.iter().filter(|p| p.newest.is_some()).collect();
    candidates.sort_by(|a, b| {
        (a.last_tested(), &a.target, &a.volume_id).cmp(&(b.last_tested(), &b.target, &b.volume_id))
    });
    candidates.truncate(sample);
    candidates
}

/// How one pair's test ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Passed,
    Failed,
    TimedOut,
    /// The run's time ran out before it started: reported, not failed.
    NotStarted,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pt(target: &str, id: &str, hours: i64, state: &str, tags: &[(&str, &str)]) -> Point {
        Point {
            snapshot_id: id.into(),
            run: Some(format!("r{hours}")),
            policy: Some("std".into()),
            target: Some(target.into()),
            state: state.into(),
            start_time: Timestamp::from_second(1_800_000_000 + hours * 3600).unwrap(),
            size_gb: 8,
            encrypted: false,
            tags: tags
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    }

    #[test]
    fn never_tested_pairs_go_first_then_the_longest_untested_and_errors_are_never_picked() {
        let pass_old = "2026-11-01T00:00:00Z";
        let pass_new = "2026-11-20T00:00:00Z";
        let fail = "2026-11-25T00:00:00Z";
        let ps = pairs(vec![
            // vol-a: tested long ago (pass), its newest point is the later one.
            (
                "vol-a".into(),
                pt(
                    "web",
                    "snap-a1",
                    1,
                    "completed",
                    &[(TAG_RESTORE_TESTED, pass_old)],
                ),
            ),
            ("vol-a".into(), pt("web", "snap-a2", 2, "completed", &[])),
            // vol-b: never tested.
            ("vol-b".into(), pt("web", "snap-b1", 1, "completed", &[])),
            // vol-c: recently failed after an older pass.
            (
                "vol-c".into(),
                pt(
                    "web",
                    "snap-c1",
                    1,
                    "completed",
                    &[(TAG_RESTORE_TESTED, pass_new)],
                ),
            ),
            (
                "vol-c".into(),
                pt(
                    "web",
                    "snap-c2",
                    2,
                    "completed",
                    &[(TAG_RESTORE_FAILED, fail)],
                ),
            ),
            // vol-d: only an error snapshot and a pending one: never picked.
            ("vol-d".into(), pt("web", "snap-d1", 1, "error", &[])),
            ("vol-d".into(), pt("web", "snap-d2", 2, "pending", &[])),
        ]);
        assert_eq!(ps.len(), 4);
        let a = ps.iter().find(|p| p.volume_id == "vol-a").unwrap();
        assert_eq!(a.newest.as_ref().unwrap().snapshot_id, "snap-a2");
        let c = ps.iter().find(|p| p.volume_id == "vol-c").unwrap();
        assert!(c.failing());
        assert!(!a.failing());
        let d = ps.iter().find(|p| p.volume_id == "vol-d").unwrap();
        assert_eq!(d.errors, ["snap-d1"]);
        let order: Vec<&str> = pick(&ps, 10).iter().map(|p| p.volume_id.as_str()).collect();
        assert_eq!(order, ["vol-b", "vol-a", "vol-c"]);
        let two: Vec<&str> = pick(&ps, 2).iter().map(|p| p.volume_id.as_str()).collect();
        assert_eq!(two, ["vol-b", "vol-a"]);
    }
}
