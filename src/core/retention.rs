//! The retention planner (docs/design.md §6): a pure function of (snapshots, rules, now).
//!
//! It decides which snapshots a run deletes. Its safety rules are property-tested:
//! only snapshots owned by the account and tagged with this policy (and target, for a target
//! run) are ever candidates; pending snapshots are never deleted and never count; the minimum
//! counts *restore points* (completed snapshots with distinct `ebssnap:run` values), and the
//! newest `min_snapshots` restore points of each (target, volume) pair are always kept. A second
//! completed snapshot of the same run (two overlapping invocations both created one) is deleted
//! first, keeping the lowest snapshot id, and never at the expense of another run.

use std::collections::BTreeMap;

use jiff::{SignedDuration, Timestamp};
use serde::Serialize;

use super::doc::Rules;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SnapState {
    Pending,
    Completed,
    Error,
}

impl SnapState {
    /// EC2's state names; anything unknown is treated as pending (never deleted).
    pub fn from_ec2(s: &str) -> Self {
        match s {
            "completed" => SnapState::Completed,
            "error" => SnapState::Error,
            _ => SnapState::Pending,
        }
    }
}

/// A snapshot as the planner sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snap {
    pub id: String,
    /// Owned by this account (listed with `OwnerIds=self`).
    pub owned: bool,
    pub policy: Option<String>,
    pub target: Option<String>,
    /// The `ebssnap:volume` tag, else the snapshot's `VolumeId`.
    pub volume: String,
    /// The `ebssnap:run` tag: snapshots of one run are one restore point. `None` (a snapshot
    /// without the tag) counts as a restore point of its own.
    pub run: Option<String>,
    pub state: SnapState,
    pub start_time: Timestamp,
    /// A disaster-recovery copy (it carries `ebssnap:source-snapshot`): only a copy scope may
    /// prune it, with the copy's rules; a run or sweep of a policy of the same name in the copy's
    /// Region never does.
    pub copy: bool,
}

/// What a run may prune.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope<'a> {
    /// A target run: only this target's snapshots.
    Target { policy: &'a str, target: &'a str },
    /// A sweep: every snapshot of the policy.
    Policy { policy: &'a str },
    /// The copies of a policy's restore points in one copy Region (of one target, or all).
    Copies {
        policy: &'a str,
        target: Option<&'a str>,
    },
}

impl Scope<'_> {
    /// The one gate every candidate passes: owned, and tagged with this policy (and target).
    pub fn admits(&self, s: &Snap) -> bool {
        let (policy, target, copies) = match self {
            Scope::Target { policy, target } => (*policy, Some(*target), false),
            Scope::Policy { policy } => (*policy, None, false),
            Scope::Copies { policy, target } => (*policy, *target, true),
        };
        s.owned
            && s.copy == copies
            && s.policy.as_deref() == Some(policy)
            && s.target.is_some()
            && target.is_none_or(|t| s.target.as_deref() == Some(t))
    }
}

/// Why a snapshot is deleted or kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    /// Another completed snapshot of the same run (lower id) is kept: one restore point.
    DuplicateRun,
    Expired,
    OverMax,
    ErrorExpired,
    KeptMinimum,
    KeptYoung,
    KeptPending,
    KeptError,
}

impl Reason {
    /// The name used in reports and tables (the same as in JSON).
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::DuplicateRun => "duplicate_run",
            Reason::Expired => "expired",
            Reason::OverMax => "over_max",
            Reason::ErrorExpired => "error_expired",
            Reason::KeptMinimum => "kept_minimum",
            Reason::KeptYoung => "kept_young",
            Reason::KeptPending => "kept_pending",
            Reason::KeptError => "kept_error",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Decision {
    pub snapshot_id: String,
    pub target: String,
    pub volume_id: String,
    pub reason: Reason,
    /// When a kept snapshot becomes eligible for deletion by age (None: kept by the minimum).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<Timestamp>,
}

/// A snapshot found in state `error`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ErrorSnapshot {
    pub snapshot_id: String,
    pub target: String,
    pub volume_id: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Plan {
    pub delete: Vec<Decision>,
    pub keep: Vec<Decision>,
    /// Snapshots found in state `error` (deleted or kept), for the report and tickets.
    pub errors: Vec<ErrorSnapshot>,
}

fn days(d: u32) -> SignedDuration {
    SignedDuration::from_hours(i64::from(d) * 24)
}

/// Plans the pruning of every pair in scope.
///
/// `rules_for(target)` gives the effective rules of a target (a removed target gets the policy's);
/// `is_orphan(volume)` says whether the source volume is gone (only a sweep knows; target runs
/// pass `|_| false`).
pub fn plan(
    scope: &Scope<'_>,
    snaps: &[Snap],
    rules_for: impl Fn(&str) -> Rules,
    is_orphan: impl Fn(&str) -> bool,
    now: Timestamp,
) -> Plan {
    let mut pairs: BTreeMap<(&str, &str), Vec<&Snap>> = BTreeMap::new();
    for s in snaps.iter().filter(|s| scope.admits(s)) {
        let target = s.target.as_deref().unwrap_or_default();
        pairs
            .entry((target, s.volume.as_str()))
            .or_default()
            .push(s);
    }
    let mut out = Plan::default();
    for ((target, volume), mut group) in pairs {
        // Newest first; ties broken by id so the plan is deterministic.
        group.sort_by(|a, b| {
            b.start_time
                .cmp(&a.start_time)
                .then_with(|| b.id.cmp(&a.id))
        });
        plan_pair(
            target,
            volume,
            &group,
            &rules_for(target),
            is_orphan(volume),
            now,
            &mut out,
        );
    }
    out
}

fn plan_pair(
    target: &str,
    volume: &str,
    newest_first: &[&Snap],
    rules: &Rules,
    orphan: bool,
    now: Timestamp,
    out: &mut Plan,
) {
    let max_age = days(rules.days);
    let mut min = rules.min_snapshots as usize;
    if orphan
        && let (Some(after), Some(newest)) = (rules.orphan_delete_after_days, newest_first.first())
        && now.duration_since(newest.start_time) > days(after)
    {
        min = 0;
    }
    let max = rules
        .max_snapshots
        .map(|m| m as usize)
        .unwrap_or(usize::MAX)
        .max(min);
    let decide = |s: &Snap, reason: Reason, expires: bool| Decision {
        snapshot_id: s.id.clone(),
        target: target.to_string(),
        volume_id: volume.to_string(),
        reason,
        expires_at: expires.then(|| s.start_time + max_age),
    };
    // One restore point per run: the keeper of a run is its completed snapshot with the lowest id.
    let mut keeper: BTreeMap<&str, &str> = BTreeMap::new();
    for s in newest_first
        .iter()
        .filter(|s| s.state == SnapState::Completed)
    {
        if let Some(run) = s.run.as_deref() {
            let k = keeper.entry(run).or_insert(s.id.as_str());
            if s.id.as_str() < *k {
                *k = s.id.as_str();
            }
        }
    }
    let mut restore_points = 0usize;
    for s in newest_first {
        let old = now.duration_since(s.start_time) > max_age;
        match s.state {
            SnapState::Pending => out.keep.push(decide(s, Reason::KeptPending, false)),
            SnapState::Error => {
                out.errors.push(ErrorSnapshot {
                    snapshot_id: s.id.clone(),
                    target: target.to_string(),
                    volume_id: volume.to_string(),
                });
                if old {
                    out.delete.push(decide(s, Reason::ErrorExpired, false));
                } else {
                    out.keep.push(decide(s, Reason::KeptError, true));
                }
            }
            SnapState::Completed => {
                let duplicate = s
                    .run
                    .as_deref()
                    .and_then(|r| keeper.get(r))
                    .is_some_and(|k| *k != s.id.as_str());
                if duplicate {
                    out.delete.push(decide(s, Reason::DuplicateRun, false));
                    continue;
                }
                restore_points += 1;
                if restore_points <= min {
                    out.keep.push(decide(s, Reason::KeptMinimum, false));
                } else if restore_points > max {
                    out.delete.push(decide(s, Reason::OverMax, false));
                } else if old {
                    out.delete.push(decide(s, Reason::Expired, false));
                } else {
                    out.keep.push(decide(s, Reason::KeptYoung, true));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const NOW: i64 = 1_800_000_000;
    const DAY: i64 = 86_400;

    fn rules(days: u32, min: u32, max: Option<u32>) -> Rules {
        Rules {
            days,
            min_snapshots: min,
            max_snapshots: max,
            orphan_delete_after_days: None,
        }
    }

    fn snap(id: &str, age_days: i64, state: SnapState) -> Snap {
        Snap {
            id: id.into(),
            owned: true,
            policy: Some("std".into()),
            target: Some("web".into()),
            volume: "vol-1".into(),
            run: Some(format!("run-{id}")),
            state,
            start_time: Timestamp::from_second(NOW - age_days * DAY).unwrap(),
            copy: false,
        }
    }

    fn now() -> Timestamp {
        Timestamp::from_second(NOW).unwrap()
    }

    #[test]
    fn only_a_copy_scope_admits_copies_and_it_admits_nothing_else() {
        let own = snap("a", 1, SnapState::Completed);
        let copy = Snap {
            copy: true,
            ..snap("b", 1, SnapState::Completed)
        };
        let copies = Scope::Copies {
            policy: "std",
            target: Some("web"),
        };
        for s in [
            Scope::Target {
                policy: "std",
                target: "web",
            },
            Scope::Policy { policy: "std" },
        ] {
            assert!(s.admits(&own));
            assert!(!s.admits(&copy), "{s:?} must never prune a copy");
        }
        assert!(copies.admits(&copy));
        assert!(!copies.admits(&own));
        // A sweep in the copy Region (a policy of the same name) deletes none of the copies,
        // however old, and a copy plan keeps their minimum although no source exists.
        let old: Vec<Snap> = (0..5)
            .map(|i| Snap {
                copy: true,
                ..snap(&format!("c{i}"), 100 + i, SnapState::Completed)
            })
            .collect();
        let p = plan(
            &Scope::Policy { policy: "std" },
            &old,
            |_| rules(1, 1, None),
            |_| true,
            now(),
        );
        assert!(p.delete.is_empty());
        let p = plan(&copies, &old, |_| rules(1, 2, None), |_| false, now());
        assert_eq!(p.delete.len(), 3);
        assert_eq!(p.keep.len(), 2);
    }

    const SCOPE: Scope<'static> = Scope::Target {
        policy: "std",
        target: "web",
    };

    fn deleted(p: &Plan) -> Vec<&str> {
        let mut v: Vec<&str> = p.delete.iter().map(|d| d.snapshot_id.as_str()).collect();
        v.sort();
        v
    }

    #[test]
    fn keeps_the_minimum_whatever_the_age() {
        let s: Vec<Snap> = (0..5)
            .map(|i| snap(&format!("s{i}"), 40 + i, SnapState::Completed))
            .collect();
        let p = plan(&SCOPE, &s, |_| rules(14, 3, None), |_| false, now());
        assert_eq!(deleted(&p), ["s3", "s4"]);
        assert_eq!(p.keep.len(), 3);
        assert!(p.keep.iter().all(|k| k.reason == Reason::KeptMinimum));
    }

    #[test]
    fn young_snapshots_beyond_the_minimum_are_kept_until_they_expire() {
        let s = vec![
            snap("a", 1, SnapState::Completed),
            snap("b", 10, SnapState::Completed),
            snap("c", 20, SnapState::Completed),
        ];
        let p = plan(&SCOPE, &s, |_| rules(14, 1, None), |_| false, now());
        assert_eq!(deleted(&p), ["c"]);
        let b = p.keep.iter().find(|k| k.snapshot_id == "b").unwrap();
        assert_eq!(b.reason, Reason::KeptYoung);
        assert_eq!(
            b.expires_at,
            Some(Timestamp::from_second(NOW + 4 * DAY).unwrap())
        );
    }

    #[test]
    fn max_snapshots_caps_young_ones() {
        let s: Vec<Snap> = (0..6)
            .map(|i| snap(&format!("s{i}"), i, SnapState::Completed))
            .collect();
        let p = plan(&SCOPE, &s, |_| rules(30, 2, Some(4)), |_| false, now());
        assert_eq!(deleted(&p), ["s4", "s5"]);
        assert!(p.delete.iter().all(|d| d.reason == Reason::OverMax));
    }

    #[test]
    fn pending_and_error_do_not_count_toward_the_minimum() {
        let s = vec![
            snap("p", 50, SnapState::Pending),
            snap("e-new", 1, SnapState::Error),
            snap("e-old", 50, SnapState::Error),
            snap("c1", 40, SnapState::Completed),
            snap("c2", 41, SnapState::Completed),
        ];
        let p = plan(&SCOPE, &s, |_| rules(14, 2, None), |_| false, now());
        assert_eq!(deleted(&p), ["e-old"]);
        assert_eq!(p.errors.len(), 2);
    }

    #[test]
    fn two_snapshots_of_one_run_are_one_restore_point() {
        // Overlapping invocations of run B both created a snapshot: B and B2 are one restore
        // point, so with min 2 the older run A survives and the duplicate with the higher id goes.
        let mut s = vec![
            snap("snap-b2", 40, SnapState::Completed),
            snap("snap-b1", 40, SnapState::Completed),
            snap("snap-a", 41, SnapState::Completed),
        ];
        s[0].run = Some("B".into());
        s[1].run = Some("B".into());
        let p = plan(&SCOPE, &s, |_| rules(14, 2, None), |_| false, now());
        assert_eq!(deleted(&p), ["snap-b2"]);
        assert_eq!(p.delete[0].reason, Reason::DuplicateRun);
        let kept: Vec<&str> = p.keep.iter().map(|k| k.snapshot_id.as_str()).collect();
        assert_eq!(kept, ["snap-b1", "snap-a"]);
        // A pending snapshot of the same run is never touched, and never counts.
        s.push(snap("snap-b0", 0, SnapState::Pending));
        s[3].run = Some("B".into());
        let p = plan(&SCOPE, &s, |_| rules(14, 2, None), |_| false, now());
        assert_eq!(deleted(&p), ["snap-b2"]);
    }

    #[test]
    fn unmanaged_foreign_and_unowned_snapshots_are_never_candidates() {
        let mut other_target = snap("t", 90, SnapState::Completed);
        other_target.target = Some("db".into());
        let mut other_policy = snap("p", 90, SnapState::Completed);
        other_policy.policy = Some("gold".into());
        let mut untagged = snap("u", 90, SnapState::Completed);
        untagged.policy = None;
        untagged.target = None;
        let mut foreign = snap("f", 90, SnapState::Completed);
        foreign.owned = false;
        let s = vec![other_target, other_policy, untagged, foreign];
        let p = plan(&SCOPE, &s, |_| rules(1, 0, None), |_| false, now());
        assert!(p.delete.is_empty() && p.keep.is_empty());
        let sweep = plan(
            &Scope::Policy { policy: "std" },
            &s,
            |_| rules(1, 0, None),
            |_| false,
            now(),
        );
        assert_eq!(deleted(&sweep), ["t"]);
    }

    #[test]
    fn orphans_release_the_minimum_after_delete_after_days() {
        let s: Vec<Snap> = (0..3)
            .map(|i| snap(&format!("s{i}"), 40 + i, SnapState::Completed))
            .collect();
        let mut r = rules(14, 2, None);
        let p = plan(&SCOPE, &s, |_| r, |_| true, now());
        assert_eq!(
            deleted(&p),
            ["s2"],
            "without delete_after_days an orphan keeps its minimum"
        );
        r.orphan_delete_after_days = Some(60);
        assert_eq!(deleted(&plan(&SCOPE, &s, |_| r, |_| true, now())), ["s2"]);
        r.orphan_delete_after_days = Some(30);
        assert_eq!(
            deleted(&plan(&SCOPE, &s, |_| r, |_| true, now())),
            ["s0", "s1", "s2"]
        );
        assert_eq!(deleted(&plan(&SCOPE, &s, |_| r, |_| false, now())), ["s2"]);
    }

    #[test]
    fn pairs_are_planned_independently() {
        let mut s: Vec<Snap> = (0..3)
            .map(|i| snap(&format!("a{i}"), 40 + i, SnapState::Completed))
            .collect();
        for i in 0..3 {
            let mut x = snap(&format!("b{i}"), 40 + i, SnapState::Completed);
            x.volume = "vol-2".into();
            s.push(x);
        }
        let p = plan(&SCOPE, &s, |_| rules(14, 2, None), |_| false, now());
        assert_eq!(deleted(&p), ["a2", "b2"]);
    }

    fn arb_snap() -> impl Strategy<Value = Snap> {
        (
            0u32..40,
            any::<bool>(),
            prop_oneof![Just(None), Just(Some("std")), Just(Some("gold"))],
            prop_oneof![Just(None), Just(Some("web")), Just(Some("db"))],
            0usize..3,
            prop_oneof![
                3 => Just(SnapState::Completed),
                1 => Just(SnapState::Pending),
                1 => Just(SnapState::Error)
            ],
            0i64..(120 * DAY),
            // Few run keys, so overlapping invocations (two snapshots of one run) are common.
            prop_oneof![1 => Just(None), 6 => (0u32..8).prop_map(Some)],
        )
            .prop_map(|(n, owned, policy, target, vol, state, age, run)| Snap {
                id: format!("snap-{n:04}"),
                owned: owned || n % 3 != 0,
                policy: policy.map(String::from),
                target: target.map(String::from),
                volume: format!("vol-{vol}"),
                run: run.map(|r| format!("2026-11-{:02}T05:00:00Z", r + 1)),
                state,
                start_time: Timestamp::from_second(NOW - age).unwrap(),
                copy: false,
            })
    }

    fn arb_rules() -> impl Strategy<Value = Rules> {
        (
            1u32..60,
            0u32..6,
            proptest::option::of(1u32..8),
            proptest::option::of(1u32..90),
        )
            .prop_map(|(days, min, max, orphan)| Rules {
                days,
                min_snapshots: min,
                max_snapshots: max.map(|m| m.max(min)),
                orphan_delete_after_days: orphan,
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(10_000))]

        #[test]
        fn safety_invariants_hold(
            snaps in proptest::collection::vec(arb_snap(), 0..40),
            r in arb_rules(),
            sweep in any::<bool>(),
            orphan_vol in 0usize..4,
        ) {
            // Ids must be unique for the bookkeeping below.
            let mut seen = std::collections::BTreeSet::new();
            let snaps: Vec<Snap> = snaps.into_iter().filter(|s| seen.insert(s.id.clone())).collect();
            let scope = if sweep { Scope::Policy { policy: "std" } } else { SCOPE };
            let orphan = format!("vol-{orphan_vol}");
            let p = plan(&scope, &snaps, |_| r, |v| v == orphan, now());
            let by_id: BTreeMap<&str, &Snap> = snaps.iter().map(|s| (s.id.as_str(), s)).collect();
            let deleted: std::collections::BTreeSet<&str> =
                p.delete.iter().map(|d| d.snapshot_id.as_str()).collect();
            for id in &deleted {
                let s = by_id[id];
                // Only managed, owned snapshots of this policy (and target) are ever chosen.
                prop_assert!(s.owned);
                prop_assert_eq!(s.policy.as_deref(), Some("std"));
                prop_assert!(s.target.is_some());
                if !sweep { prop_assert_eq!(s.target.as_deref(), Some("web")); }
                // Pending is never deleted.
                prop_assert_ne!(s.state, SnapState::Pending);
                // Nothing younger than the retention is deleted, except over the max.
                let old = now().duration_since(s.start_time) > days(r.days);
                let reason = p.delete.iter().find(|d| d.snapshot_id == *id).unwrap().reason;
                prop_assert!(
                    old || reason == Reason::OverMax || reason == Reason::DuplicateRun,
                    "{id} deleted young: {reason:?}"
                );
            }
            // Per pair: the newest min completed snapshots remain (unless a released orphan).
            let mut pairs: BTreeMap<(String, String), Vec<&Snap>> = BTreeMap::new();
            for s in snaps.iter().filter(|s| scope.admits(s)) {
                pairs.entry((s.target.clone().unwrap(), s.volume.clone())).or_default().push(s);
            }
            for ((_, vol), group) in &pairs {
                let completed: Vec<&&Snap> =
                    group.iter().filter(|s| s.state == SnapState::Completed).collect();
                // Restore points: distinct runs (a snapshot without a run tag is one of its own).
                let points = |snaps: &mut dyn Iterator<Item = &&&Snap>| {
                    let mut runs = std::collections::BTreeSet::new();
                    let mut untagged = 0usize;
                    for s in snaps {
                        match &s.run { Some(r) => { runs.insert(r.clone()); } None => untagged += 1 }
                    }
                    runs.len() + untagged
                };
                let available = points(&mut completed.iter());
                let remaining_snaps: Vec<&&Snap> =
                    completed.iter().copied().filter(|s| !deleted.contains(s.id.as_str())).collect();
                let remaining = points(&mut remaining_snaps.iter());
                // At most one remaining snapshot per run: duplicates are pruned.
                let tagged: Vec<&String> = remaining_snaps.iter().filter_map(|s| s.run.as_ref()).collect();
                let distinct: std::collections::BTreeSet<&String> = tagged.iter().copied().collect();
                prop_assert_eq!(tagged.len(), distinct.len(), "two snapshots of one run remain");
                // A duplicate is deleted only in favour of its run's lowest id (which then
                // follows the rules as the run's one restore point).
                let dup_ids: std::collections::BTreeSet<&str> = p.delete.iter()
                    .filter(|d| d.reason == Reason::DuplicateRun)
                    .map(|d| d.snapshot_id.as_str())
                    .collect();
                for s in completed.iter().filter(|s| dup_ids.contains(s.id.as_str())) {
                    prop_assert!(s.run.is_some(), "{} has no run, so no duplicate", s.id);
                    prop_assert!(
                        completed.iter().any(|k| k.run == s.run && k.id < s.id
                            && !dup_ids.contains(k.id.as_str())),
                        "{} deleted as a duplicate without a keeper of its run", s.id
                    );
                }
                let newest = group.iter().map(|s| s.start_time).max().unwrap();
                let released = *vol == orphan
                    && r.orphan_delete_after_days.is_some_and(|d| now().duration_since(newest) > days(d));
                if !released {
                    prop_assert!(remaining >= available.min(r.min_snapshots as usize),
                        "{remaining} restore points remain of {available}, min {}", r.min_snapshots);
                }
                // max_snapshots holds: no more restore points remain than max (or min, if larger).
                if let Some(max) = r.max_snapshots {
                    prop_assert!(remaining <= (max.max(r.min_snapshots)) as usize);
                }
                // Anything not deleted is kept: every candidate is decided exactly once.
                for s in group {
                    let kept = p.keep.iter().filter(|k| k.snapshot_id == s.id).count();
                    let del = p.delete.iter().filter(|d| d.snapshot_id == s.id).count();
                    prop_assert_eq!(kept + del, 1);
                }
            }
        }
    }
}
