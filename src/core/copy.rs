//! Disaster-recovery copies (docs/design.md §13), the pure part: which restore points a run
//! copies to a Region, how many it may start, and the tags a copy carries. Copies are found by
//! their `ebssnap:source-*` tags, never by `VolumeId` (AWS gives a copy an arbitrary one).

use std::collections::{BTreeMap, BTreeSet};

use jiff::{SignedDuration, Timestamp};
use serde::Serialize;

use crate::core::doc::Rules;
use crate::core::retention::{self, Scope, Snap, SnapState};
use crate::core::tags::{
    TAG_SOURCE_REGION, TAG_SOURCE_SNAPSHOT, TAG_SOURCE_TIME, TAG_SOURCE_VOLUME, TAG_VOLUME,
};

/// AWS runs at most 20 copies into one Region at a time (not adjustable).
pub const MAX_PENDING_COPIES: usize = 20;

/// At most 50 tags on an EBS snapshot.
const MAX_TAGS: usize = 50;

/// Tags of the source that stay with it: a restore test tested the source, not the copy.
const SOURCE_ONLY: [&str; 2] = ["ebssnap:restore-tested", "ebssnap:restore-failed"];

/// A restore point in the source Region that a copy may be made of.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    pub snapshot_id: String,
    /// The pair's volume (`ebssnap:volume`, else `VolumeId`).
    pub volume: String,
    pub run: Option<String>,
    pub start_time: Timestamp,
    pub completed: bool,
    pub encrypted: bool,
    pub tags: BTreeMap<String, String>,
}

/// What one run does in one copy Region.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CopyPlan {
    /// Restore points to copy now, newest first.
    pub start: Vec<Source>,
    /// Restore points left for a later run (the 20 pending copies AWS allows are taken).
    pub deferred: usize,
    /// Copies into the Region still pending when the run looked.
    pub pending: usize,
    /// Restore points not copied because the copy's rules would delete the copy at once.
    pub too_old: usize,
}

/// Which of `sources` (one target's restore points) to copy into a Region holding `copies` (the
/// target's copies there, as the planner sees them, and the source snapshot each copies):
/// completed restore points without a copy (a copy in state `error` does not count), newest
/// first, except those the copy's `rules` would delete at once; at most 20 − pending start now.
pub fn plan(
    policy: &str,
    target: &str,
    sources: &[Source],
    copies: &[(Snap, String)],
    rules: Rules,
    now: Timestamp,
) -> CopyPlan {
    let pending = copies
        .iter()
        .filter(|(c, _)| c.state == SnapState::Pending)
        .count();
    let copied: BTreeSet<&str> = copies
        .iter()
        .filter(|(c, _)| c.state != SnapState::Error)
        .map(|(_, src)| src.as_str())
        .collect();
    let mut wanted: Vec<&Source> = sources
        .iter()
        .filter(|s| s.completed && !copied.contains(s.snapshot_id.as_str()))
        .collect();
    // The copies as they would be with every wanted one made: what the copy's rules delete at
    // once is not worth copying.
    let mut after: Vec<Snap> = copies.iter().map(|(c, _)| c.clone()).collect();
    after.extend(wanted.iter().map(|s| Snap {
        id: format!("wanted:{}", s.snapshot_id),
        owned: true,
        policy: Some(policy.to_string()),
        target: Some(target.to_string()),
        volume: s.volume.clone(),
        run: s.run.clone(),
        state: SnapState::Completed,
        start_time: s.start_time,
        copy: true,
    }));
    let doomed: BTreeSet<String> = retention::plan(
        &Scope::Copies {
            policy,
            target: Some(target),
        },
        &after,
        |_| rules,
        // Copies are backups in their own right: never deleted because the source went.
        |_| false,
        now,
    )
    .delete
    .into_iter()
    .map(|d| d.snapshot_id)
    .collect();
    let before = wanted.len();
    wanted.retain(|s| !doomed.contains(&format!("wanted:{}", s.snapshot_id)));
    let too_old = before - wanted.len();
    // Fair across volumes: first each pair's newest restore point without a copy, pairs whose
    // newest copy is oldest (or that have none) first; then the older ones. A target of more
    // volumes than a run may start still gets every volume copied, in turn.
    let mut newest_copy: BTreeMap<&str, Timestamp> = BTreeMap::new();
    for (c, _) in copies.iter().filter(|(c, _)| c.state != SnapState::Error) {
        let e = newest_copy.entry(c.volume.as_str()).or_insert(c.start_time);
        *e = (*e).max(c.start_time);
    }
    wanted.sort_by(|a, b| (b.start_time, &b.snapshot_id).cmp(&(a.start_time, &a.snapshot_id)));
    let mut rank: BTreeMap<&str, usize> = BTreeMap::new();
    let mut keyed: Vec<(usize, Option<Timestamp>, &Source)> = wanted
        .into_iter()
        .map(|s| {
            let r = rank.entry(s.volume.as_str()).or_insert(0);
            *r += 1;
            (*r, newest_copy.get(s.volume.as_str()).copied(), s)
        })
        .collect();
    // Stable: within equal keys, newest first as sorted above.
    keyed.sort_by_key(|k| (k.0, k.1));
    let mut wanted: Vec<&Source> = keyed.into_iter().map(|(_, _, s)| s).collect();

    let room = MAX_PENDING_COPIES.saturating_sub(pending);
    let deferred = wanted.len().saturating_sub(room);
    wanted.truncate(room);
    CopyPlan {
        start: wanted.into_iter().cloned().collect(),
        deferred,
        pending,
        too_old,
    }
}

/// The tags a copy is created with: the source's ebssnap tags (not its restore-test history),
/// `ebssnap:volume` = the source volume, the four `ebssnap:source-*` tags, and, with
/// `user_tags`, the source's other tags (never `aws:` keys), up to EBS's 50.
pub fn tags(source: &Source, source_region: &str, user_tags: bool) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = source
        .tags
        .iter()
        .filter(|(k, _)| k.starts_with("ebssnap:") && !SOURCE_ONLY.contains(&k.as_str()))
        .filter(|(k, _)| *k != TAG_VOLUME)
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    out.push((TAG_VOLUME.into(), source.volume.clone()));
    out.push((TAG_SOURCE_SNAPSHOT.into(), source.snapshot_id.clone()));
    out.push((TAG_SOURCE_REGION.into(), source_region.into()));
    out.push((TAG_SOURCE_VOLUME.into(), source.volume.clone()));
    out.push((TAG_SOURCE_TIME.into(), source.start_time.to_string()));
    if user_tags {
        for (k, v) in &source.tags {
            if out.len() >= MAX_TAGS {
                break;
            }
            if !k.starts_with("ebssnap:") && !k.starts_with("aws:") {
                out.push((k.clone(), v.clone()));
            }
        }
    }
    out
}

/// What a run did in one copy Region (the report's `copies`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RegionCopies {
    pub region: String,
    /// Copies started: (source snapshot, copy).
    pub started: Vec<Started>,
    pub deferred: usize,
    pub pending: usize,
    pub too_old: usize,
    /// Copies deleted by the copy's rules.
    pub deleted: Vec<String>,
    /// Calls whose answer was lost and whose copy a look-up found.
    pub found: usize,
    /// What went wrong: the Region's copies wait for the next run (a `copy.failed` ticket).
    pub failures: Vec<CopyFailure>,
    /// Volumes whose newest copy here is too old (a `copy.overdue` ticket).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub overdue: Vec<CopyOverdue>,
    /// Volumes overdue here before this run's copies and no longer (a `copy.recovered` ticket).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub recovered: Vec<String>,
}

/// A copy that failed: a `CopySnapshot` AWS refused (other than for its quota), a copy that ended
/// in state `error`, or a Region that could not be used (no volume).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CopyFailure {
    /// The source volume (none: the whole Region).
    pub volume_id: Option<String>,
    /// The source restore point, or the copy in state `error`.
    pub snapshot_id: Option<String>,
    pub code: String,
    pub message: String,
}

impl CopyFailure {
    pub fn region(code: impl Into<String>, message: impl Into<String>) -> CopyFailure {
        CopyFailure {
            volume_id: None,
            snapshot_id: None,
            code: code.into(),
            message: message.into(),
        }
    }
}

/// A volume whose newest copy in a Region is older than twice the target's interval plus 24 h
/// (a `copy.overdue` ticket).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CopyOverdue {
    pub volume_id: String,
    /// The newest copy's restore-point time; none: never copied.
    pub newest_copy_time: Option<String>,
    /// Since the newest copy's restore point (never copied: since the volume's oldest completed
    /// restore point, when it could first have been copied).
    pub age_seconds: i64,
}

/// How old a volume's newest copy may be: twice the target's interval plus 24 h (copies follow
/// the restore points they copy by one run at least, and take hours across Regions).
pub fn copy_stale_after(interval: SignedDuration) -> SignedDuration {
    interval * 2 + SignedDuration::from_hours(24)
}

/// The volumes of `sources` overdue in a Region with `after` (its copies once this run's have
/// started), and those that were overdue with `before` (its copies when the run looked) but are
/// no longer (a `copy.recovered`). Stateless: a later run that sees the same copies says the same.
/// Copies in state `error` do not count; a volume without a completed restore point is never due.
pub fn overdue(
    sources: &[Source],
    before: &[Snap],
    after: &[Snap],
    interval: SignedDuration,
    now: Timestamp,
) -> (Vec<CopyOverdue>, Vec<String>) {
    let limit = copy_stale_after(interval);
    let mut since: BTreeMap<&str, Timestamp> = BTreeMap::new();
    for s in sources.iter().filter(|s| s.completed) {
        let e = since.entry(s.volume.as_str()).or_insert(s.start_time);
        *e = (*e).min(s.start_time);
    }
    let newest = |copies: &[Snap], volume: &str| {
        copies
            .iter()
            .filter(|c| c.volume == volume && c.state != SnapState::Error)
            .map(|c| c.start_time)
            .max()
    };
    let due = |copies: &[Snap], volume: &str, first: Timestamp| {
        let newest = newest(copies, volume);
        let age = now.duration_since(newest.unwrap_or(first));
        (age > limit).then_some((newest, age))
    };
    let mut late = Vec::new();
    let mut recovered = Vec::new();
    for (volume, first) in since {
        match due(after, volume, first) {
            Some((newest, age)) => late.push(CopyOverdue {
                volume_id: volume.to_string(),
                newest_copy_time: newest.map(|t| t.to_string()),
                age_seconds: age.as_secs(),
            }),
            None if due(before, volume, first).is_some() => recovered.push(volume.to_string()),
            None => {}
        }
    }
    (late, recovered)
}

/// The key EBS uses when a snapshot is encrypted and names none (only emulators answer so).
pub const DEFAULT_EBS_KEY: &str = "alias/aws/ebs";

/// How a run shared its restore points with the vault accounts (the report's `share`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ShareOutcome {
    /// The accounts granted `createVolumePermission`.
    pub accounts: usize,
    /// The run's restore points shared (a dry run: those it would share).
    pub shared: Vec<String>,
    /// Restore points not shared (`ShareDefaultKey`: encrypted under an AWS-managed key): a
    /// `share.failed` ticket.
    pub failures: Vec<CopyFailure>,
}

/// Why a restore point cannot be shared, before asking AWS: encrypted under an AWS-managed key
/// (`aws_managed` of its key), which AWS refuses to share. `None`: share it.
pub fn share_refusal(
    snapshot_id: &str,
    volume: &str,
    key: Option<&str>,
    aws_managed: bool,
) -> Option<CopyFailure> {
    aws_managed.then(|| CopyFailure {
        volume_id: Some(volume.to_string()),
        snapshot_id: Some(snapshot_id.to_string()),
        code: "ShareDefaultKey".into(),
        message: format!(
            "restore point {snapshot_id} is encrypted under the AWS-managed key {}, which AWS does not share",
            key.unwrap_or(DEFAULT_EBS_KEY)
        ),
    })
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Started {
    pub source_snapshot_id: String,
    pub copy_snapshot_id: String,
    pub volume_id: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::SignedDuration;

    fn now() -> Timestamp {
        Timestamp::from_second(1_800_000_000).unwrap()
    }

    fn source(id: &str, vol: &str, days_ago: i64, completed: bool) -> Source {
        Source {
            snapshot_id: id.into(),
            volume: vol.into(),
            run: Some(format!("run-{days_ago}")),
            start_time: now() - SignedDuration::from_hours(24 * days_ago),
            completed,
            encrypted: false,
            tags: BTreeMap::from([
                ("ebssnap:policy".into(), "std".into()),
                ("ebssnap:target".into(), "web".into()),
                ("ebssnap:run".into(), format!("run-{days_ago}")),
                (
                    "ebssnap:restore-tested".into(),
                    "2026-01-01T00:00:00Z".into(),
                ),
                ("Team".into(), "db".into()),
                ("aws:backup".into(), "x".into()),
            ]),
        }
    }

    fn copy_of(s: &Source, state: SnapState) -> (Snap, String) {
        (
            Snap {
                id: format!("copy-{}", s.snapshot_id),
                owned: true,
                policy: Some("std".into()),
                target: Some("web".into()),
                volume: s.volume.clone(),
                run: s.run.clone(),
                state,
                start_time: s.start_time,
                copy: true,
            },
            s.snapshot_id.clone(),
        )
    }

    fn rules(days: u32, min: u32) -> Rules {
        Rules {
            days,
            min_snapshots: min,
            max_snapshots: None,
            orphan_delete_after_days: None,
        }
    }

    #[test]
    fn completed_uncopied_restore_points_are_copied_newest_first_within_twenty_pending() {
        let mut sources: Vec<Source> = (0..25)
            .map(|d| source(&format!("snap-{d:02}"), "vol-1", d, true))
            .collect();
        sources.push(source("snap-pending", "vol-1", 0, false));
        let p = plan("std", "web", &sources, &[], rules(30, 1), now());
        assert_eq!(p.start.len(), 20);
        assert_eq!(p.deferred, 5);
        assert_eq!(p.start[0].snapshot_id, "snap-00", "newest first");
        assert!(p.start.iter().all(|s| s.completed));
        // Three copies pending: 17 more may start; copied ones are not copied again.
        let copies = vec![
            copy_of(&sources[0], SnapState::Pending),
            copy_of(&sources[1], SnapState::Pending),
            copy_of(&sources[2], SnapState::Pending),
            copy_of(&sources[3], SnapState::Completed),
            copy_of(&sources[4], SnapState::Error),
        ];
        let p = plan("std", "web", &sources, &copies, rules(30, 1), now());
        assert_eq!(p.pending, 3);
        assert_eq!(p.start.len(), 17);
        assert_eq!(p.deferred, 21 - 17);
        assert!(
            p.start.iter().any(|s| s.snapshot_id == "snap-04"),
            "a copy in state error is made again"
        );
        assert!(!p.start.iter().any(|s| s.snapshot_id == "snap-03"));
    }

    #[test]
    fn a_restore_point_the_copy_rules_would_delete_at_once_is_not_copied() {
        let sources = vec![
            source("snap-new", "vol-1", 1, true),
            source("snap-old", "vol-1", 40, true),
        ];
        // 7 days, keep 1: the 40-day-old one would go at once (the new one is the minimum).
        let p = plan("std", "web", &sources, &[], rules(7, 1), now());
        assert_eq!(
            p.start
                .iter()
                .map(|s| s.snapshot_id.as_str())
                .collect::<Vec<_>>(),
            ["snap-new"]
        );
        assert_eq!(p.too_old, 1);
        // Keep 2: the old one is part of the minimum, so it is copied.
        let p = plan("std", "web", &sources, &[], rules(7, 2), now());
        assert_eq!(p.start.len(), 2);
    }

    #[test]
    fn a_copy_carries_the_source_tags_but_not_its_test_history_nor_aws_keys() {
        let s = source("snap-1", "vol-1", 1, true);
        let t: BTreeMap<String, String> = tags(&s, "us-east-1", true).into_iter().collect();
        assert_eq!(t["ebssnap:policy"], "std");
        assert_eq!(t["ebssnap:source-snapshot"], "snap-1");
        assert_eq!(t["ebssnap:source-region"], "us-east-1");
        assert_eq!(t["ebssnap:source-volume"], "vol-1");
        assert_eq!(t["ebssnap:volume"], "vol-1");
        assert_eq!(t["Team"], "db");
        assert!(!t.contains_key("ebssnap:restore-tested"));
        assert!(!t.contains_key("aws:backup"));
        let t: BTreeMap<String, String> = tags(&s, "us-east-1", false).into_iter().collect();
        assert!(!t.contains_key("Team"), "copy_tags = false");
    }

    #[test]
    fn bad_copies_and_shares_name_the_field() {
        use crate::core::doc::{CopyDoc, ShareDoc, check_copies};
        let c = |r: &str| CopyDoc {
            region: r.into(),
            ..CopyDoc::default()
        };
        assert!(check_copies(&[c("us-west-2"), c("eu-west-1")], None).is_ok());
        for (copies, share, want) in [
            (
                vec![c("us-west-2"), c("us-west-2")],
                None,
                "copies[1].region: us-west-2 is listed twice",
            ),
            (vec![c("mars")], None, "is not an AWS Region name"),
            (
                ["a-b-1", "a-b-2", "a-b-3", "a-b-4", "a-b-5", "a-b-6"]
                    .map(c)
                    .to_vec(),
                None,
                "at most 5 Regions",
            ),
            (
                vec![CopyDoc {
                    kms_key_id: Some("arn:aws:kms:us-east-1:111122223333:key/k".into()),
                    ..c("us-west-2")
                }],
                None,
                "the key is in us-east-1, not in the copy's Region us-west-2",
            ),
            (
                vec![CopyDoc {
                    min_snapshots: Some(3),
                    max_snapshots: Some(2),
                    ..c("us-west-2")
                }],
                None,
                "copies[0]: retention.min_snapshots",
            ),
            (
                vec![],
                Some(ShareDoc {
                    account_ids: vec!["1234".into()],
                }),
                "share.account_ids[0]: \"1234\" is not a 12-digit account id",
            ),
        ] {
            let err = check_copies(&copies, share.as_ref()).unwrap_err();
            assert!(err.contains(want), "{err}");
        }
    }

    #[test]
    fn every_volume_gets_its_turn_when_a_run_has_more_than_twenty() {
        // 25 volumes, one new restore point each; volumes 0..20 were copied last run.
        let sources: Vec<Source> = (0..25)
            .map(|v| source(&format!("snap-{v:02}"), &format!("vol-{v:02}"), 0, true))
            .collect();
        let old: Vec<Source> = (0..20)
            .map(|v| source(&format!("old-{v:02}"), &format!("vol-{v:02}"), 1, true))
            .collect();
        let copies: Vec<(Snap, String)> = old
            .iter()
            .map(|s| copy_of(s, SnapState::Completed))
            .collect();
        let p = plan("std", "web", &sources, &copies, rules(30, 1), now());
        let mut first: Vec<&str> = p.start[..5].iter().map(|s| s.volume.as_str()).collect();
        first.sort();
        assert_eq!(
            first,
            ["vol-20", "vol-21", "vol-22", "vol-23", "vol-24"],
            "never copied first"
        );
        assert_eq!(p.start.len(), 20);
    }

    #[test]
    fn a_volume_is_overdue_when_its_newest_copy_is_older_than_two_intervals_and_a_day() {
        let day = SignedDuration::from_hours(24);
        let sources = vec![
            source("s-5", "vol-1", 5, true),
            source("s-0", "vol-1", 0, true),
            source("n-0", "vol-2", 0, true),
            source("p-0", "vol-3", 0, false),
        ];
        let four_days_old = copy_of(&sources[0], SnapState::Completed).0;
        // vol-1: newest copy 5 days old (limit 3 days); vol-2: never copied, first restore point
        // today; vol-3: nothing completed yet.
        let (late, back) = overdue(
            &sources,
            std::slice::from_ref(&four_days_old),
            std::slice::from_ref(&four_days_old),
            day,
            now(),
        );
        assert_eq!(back, Vec::<String>::new());
        assert_eq!(late.len(), 1);
        assert_eq!(late[0].volume_id, "vol-1");
        assert_eq!(late[0].age_seconds, 5 * 86_400);
        // The run copies today's restore point: vol-1 is back.
        let fresh = copy_of(&sources[1], SnapState::Pending).0;
        let (late, back) = overdue(
            &sources,
            std::slice::from_ref(&four_days_old),
            &[four_days_old.clone(), fresh],
            day,
            now(),
        );
        assert!(late.is_empty());
        assert_eq!(back, ["vol-1"]);
        // A copy in state error does not count.
        let broken = copy_of(&sources[1], SnapState::Error).0;
        let (late, _) = overdue(&sources, &[], &[four_days_old, broken], day, now());
        assert_eq!(late.len(), 1);
        // Never copied: due from the volume's oldest completed restore point.
        let (late, _) = overdue(&sources[2..], &[], &[], day, now() + day * 4);
        assert_eq!(late[0].volume_id, "vol-2");
        assert_eq!(late[0].newest_copy_time, None);
    }

    use proptest::prelude::*;

    fn arb_copy() -> impl Strategy<Value = Snap> {
        (0usize..3, 0i64..60, 0usize..6, 0u8..10, any::<bool>()).prop_map(
            |(vol, days, run, state, copy)| Snap {
                id: String::new(),
                owned: true,
                policy: Some("std".into()),
                target: Some("web".into()),
                volume: format!("vol-{vol}"),
                run: Some(format!("run-{run}-{days}")),
                state: match state {
                    0 => SnapState::Pending,
                    1 => SnapState::Error,
                    _ => SnapState::Completed,
                },
                start_time: now() - SignedDuration::from_hours(24 * days),
                copy,
            },
        )
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(5_000))]

        /// Copies are kept by their own rules after the source volume and all its restore points
        /// are gone: the newest `min_snapshots` completed copies of each volume stay, nothing
        /// younger than the retention goes, nothing pending goes, and the copy scope never
        /// touches a snapshot that is not a copy. With no source left, nothing is copied.
        #[test]
        fn copies_keep_their_minimum_after_the_source_is_gone(
            snaps in proptest::collection::vec(arb_copy(), 0..30),
            days in 1u32..40,
            min in 0u32..5,
        ) {
            let snaps: Vec<Snap> = snaps
                .into_iter()
                .enumerate()
                .map(|(i, s)| Snap { id: format!("snap-{i:03}"), ..s })
                .collect();
            let r = rules(days, min);
            let scope = Scope::Copies { policy: "std", target: Some("web") };
            let p = retention::plan(&scope, &snaps, |_| r, |_| false, now());
            let deleted: BTreeSet<&str> = p.delete.iter().map(|d| d.snapshot_id.as_str()).collect();
            for d in &p.delete {
                let s = snaps.iter().find(|s| s.id == d.snapshot_id).unwrap();
                prop_assert!(s.copy, "{} is not a copy", s.id);
                prop_assert_ne!(s.state, SnapState::Pending);
                // Young copies go only as a second copy of one run.
                prop_assert!(
                    d.reason == retention::Reason::DuplicateRun
                        || now().duration_since(s.start_time) > SignedDuration::from_hours(24 * i64::from(days)),
                    "{} deleted young: {:?}", s.id, d.reason
                );
            }
            for vol in 0..3 {
                let volume = format!("vol-{vol}");
                let points: Vec<&Snap> = snaps
                    .iter()
                    .filter(|s| s.copy && s.volume == volume && s.state == SnapState::Completed)
                    .collect();
                let runs = |keep: &dyn Fn(&Snap) -> bool| {
                    points.iter().filter(|s| keep(s)).map(|s| s.run.clone()).collect::<BTreeSet<_>>().len()
                };
                let available = runs(&|_| true);
                let remaining = runs(&|s| !deleted.contains(s.id.as_str()));
                prop_assert!(
                    remaining >= available.min(min as usize),
                    "{volume}: {remaining} restore points left of {available}, minimum {min}"
                );
            }
            let copies: Vec<(Snap, String)> =
                snaps.iter().filter(|s| s.copy).map(|s| (s.clone(), format!("src-{}", s.id))).collect();
            let none = plan("std", "web", &[], &copies, r, now());
            prop_assert!(none.start.is_empty());
        }
    }
}
