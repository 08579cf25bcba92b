//! The metrics line: one CloudWatch Embedded Metric Format (EMF) record per run and sweep, which
//! CloudWatch Logs turns into metrics without an API call (namespace `ebssnap`, dimensions
//! `Policy` and `Policy,Target`). Pure: built from the report.

use serde_json::{Value, json};

use super::report::Report;

pub const NAMESPACE: &str = "ebssnap";

/// The metric names, in the order they are declared.
pub const METRICS: &[(&str, &str)] = &[
    ("VolumesSelected", "Count"),
    ("SnapshotsCreated", "Count"),
    ("SnapshotsDeleted", "Count"),
    ("Failures", "Count"),
    ("Overdue", "Count"),
    ("ErrorSnapshots", "Count"),
    ("ThrottledCalls", "Count"),
    ("AmbiguousCalls", "Count"),
    ("AmbiguousFound", "Count"),
    ("AmbiguousRetried", "Count"),
    ("RestoreTests", "Count"),
    ("RestoreTestFailures", "Count"),
    ("RestoreSeconds", "Seconds"),
    ("UnprotectedVolumes", "Count"),
    ("StaleVolumes", "Count"),
    ("OldestRestorePointAgeSeconds", "Seconds"),
    ("CopiesStarted", "Count"),
    ("CopiesDeferred", "Count"),
    ("CopiesPending", "Count"),
    ("DurationMs", "Milliseconds"),
];

/// The figures of one run or sweep.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Figures {
    pub policy: String,
    pub target: Option<String>,
    pub kind: String,
    pub volumes_selected: usize,
    pub created: usize,
    pub deleted: usize,
    pub failures: usize,
    pub overdue: usize,
    pub error_snapshots: usize,
    pub throttled: u64,
    /// Calls with an unknown outcome, those a look-up found done, those sent again.
    pub ambiguous: u64,
    pub ambiguous_found: u64,
    pub ambiguous_retried: u64,
    /// Restore tests run (passed or failed), those that failed, and each passing one's seconds
    /// to `available` (an EMF array: CloudWatch keeps every value's statistics).
    pub restore_tests: usize,
    pub restore_failures: usize,
    pub restore_seconds: Vec<f64>,
    /// Sweeps with `report_unprotected`: unprotected and stale volumes of the account, and the
    /// oldest "newest restore point" (seconds; absent when no selected volume has one).
    pub coverage: Option<(usize, usize, Option<i64>)>,
    /// Runs of a policy with copies: copies started, deferred and pending and the volumes
    /// overdue, per copy Region (one record each, [`emf_per_destination`]; summed on the run's).
    pub destinations: Vec<Destination>,
    pub duration_ms: u64,
}

/// One copy Region's figures of a run.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Destination {
    pub region: String,
    pub started: usize,
    pub deferred: usize,
    pub pending: usize,
    pub overdue: usize,
}

/// Declared only on runs of a policy with copies.
const COPY_METRICS: [&str; 3] = ["CopiesStarted", "CopiesDeferred", "CopiesPending"];

/// Metrics declared only when the run has them (EMF takes a number or a non-empty array).
const COVERAGE_METRICS: [&str; 3] = [
    "UnprotectedVolumes",
    "StaleVolumes",
    "OldestRestorePointAgeSeconds",
];

impl Figures {
    pub fn of(r: &Report) -> Figures {
        Figures {
            policy: r.policy.clone(),
            target: r.target.clone(),
            kind: r.kind.to_string(),
            volumes_selected: r.volumes_selected,
            created: r.created.len(),
            deleted: r.deleted.len(),
            failures: r.failures.len(),
            overdue: r.overdue.len(),
            error_snapshots: r.error_snapshots.len(),
            throttled: r.api_calls.throttled.values().sum(),
            ambiguous: r.ambiguous.count,
            ambiguous_found: r.ambiguous.found,
            ambiguous_retried: r.ambiguous.retried,
            restore_tests: r
                .restore_tests
                .iter()
                .filter(|t| t.outcome != crate::core::restore_test::Outcome::NotStarted)
                .count(),
            restore_failures: r.restore_tests.iter().filter(|t| t.failed()).count(),
            restore_seconds: r.restore_tests.iter().filter_map(|t| t.seconds).collect(),
            coverage: r.coverage.as_ref().map(|c| {
                (
                    c.unprotected.len(),
                    c.stale_volumes,
                    c.oldest_restore_point_age_seconds,
                )
            }),
            destinations: r
                .copies
                .iter()
                .map(|c| Destination {
                    region: c.region.clone(),
                    started: c.started.len(),
                    deferred: c.deferred,
                    pending: c.pending,
                    overdue: c.overdue.len(),
                })
                .collect(),
            duration_ms: r.duration_ms,
        }
    }

    /// A run or sweep that failed as a whole (no report): one failure.
    pub fn failed(policy: &str, target: Option<&str>, kind: &str, duration_ms: u64) -> Figures {
        Figures {
            policy: policy.into(),
            target: target.map(String::from),
            kind: kind.into(),
            failures: 1,
            duration_ms,
            ..Figures::default()
        }
    }
}

/// The EMF record of a run's figures, at `timestamp_ms` (Unix milliseconds).
pub fn emf(f: &Figures, timestamp_ms: i64) -> Value {
    let report = f;
    let dims = if report.target.is_some() {
        json!([["Policy"], ["Policy", "Target"]])
    } else {
        json!([["Policy"]])
    };
    // A metric with no value this time (RestoreSeconds outside restore tests) is not declared:
    // EMF takes a number or a non-empty array.
    let metrics: Vec<Value> = METRICS
        .iter()
        .filter(|(name, _)| *name != "RestoreSeconds" || !f.restore_seconds.is_empty())
        .filter(|(name, _)| match (*name, f.coverage) {
            ("OldestRestorePointAgeSeconds", Some((_, _, age))) => age.is_some(),
            (n, c) => c.is_some() || !COVERAGE_METRICS.contains(&n),
        })
        .filter(|(name, _)| !f.destinations.is_empty() || !COPY_METRICS.contains(name))
        .map(|(name, unit)| json!({"Name": name, "Unit": unit}))
        .collect();
    let mut v = json!({
        "_aws": {
            "Timestamp": timestamp_ms,
            "CloudWatchMetrics": [{
                "Namespace": NAMESPACE,
                "Dimensions": dims,
                "Metrics": metrics,
            }],
        },
        "Policy": report.policy,
        "Kind": report.kind,
        "VolumesSelected": f.volumes_selected,
        "SnapshotsCreated": f.created,
        "SnapshotsDeleted": f.deleted,
        "Failures": f.failures,
        "Overdue": f.overdue,
        "ErrorSnapshots": f.error_snapshots,
        "ThrottledCalls": f.throttled,
        "AmbiguousCalls": f.ambiguous,
        "AmbiguousFound": f.ambiguous_found,
        "AmbiguousRetried": f.ambiguous_retried,
        "RestoreTests": f.restore_tests,
        "RestoreTestFailures": f.restore_failures,
        "DurationMs": f.duration_ms,
    });
    if !f.restore_seconds.is_empty() {
        v["RestoreSeconds"] = json!(f.restore_seconds);
    }
    if let Some((unprotected, stale, oldest)) = f.coverage {
        v["UnprotectedVolumes"] = json!(unprotected);
        v["StaleVolumes"] = json!(stale);
        if let Some(age) = oldest {
            v["OldestRestorePointAgeSeconds"] = json!(age);
        }
    }
    if !f.destinations.is_empty() {
        let sum = |n: fn(&Destination) -> usize| f.destinations.iter().map(n).sum::<usize>();
        v["CopiesStarted"] = json!(sum(|d| d.started));
        v["CopiesDeferred"] = json!(sum(|d| d.deferred));
        v["CopiesPending"] = json!(sum(|d| d.pending));
    }
    if let Some(t) = &report.target {
        v["Target"] = json!(t);
    }
    v
}

/// One EMF record per copy Region of a run: `CopiesStarted`, `CopiesDeferred`, `CopiesPending`
/// and `CopiesOverdue` (volumes) with the dimension `DestinationRegion` (`Policy,DestinationRegion`
/// and `Policy,Target,DestinationRegion`).
pub fn emf_per_destination(f: &Figures, timestamp_ms: i64) -> Vec<Value> {
    let dims = if f.target.is_some() {
        json!([
            ["Policy", "DestinationRegion"],
            ["Policy", "Target", "DestinationRegion"]
        ])
    } else {
        json!([["Policy", "DestinationRegion"]])
    };
    f.destinations
        .iter()
        .map(|d| {
            let mut v = json!({
                "_aws": {
                    "Timestamp": timestamp_ms,
                    "CloudWatchMetrics": [{
                        "Namespace": NAMESPACE,
                        "Dimensions": dims,
                        "Metrics": [
                            {"Name": "CopiesStarted", "Unit": "Count"},
                            {"Name": "CopiesDeferred", "Unit": "Count"},
                            {"Name": "CopiesPending", "Unit": "Count"},
                            {"Name": "CopiesOverdue", "Unit": "Count"}
                        ],
                    }],
                },
                "Policy": f.policy,
                "Kind": f.kind,
                "DestinationRegion": d.region,
                "CopiesStarted": d.started,
                "CopiesDeferred": d.deferred,
                "CopiesPending": d.pending,
                "CopiesOverdue": d.overdue,
            });
            if let Some(t) = &f.target {
                v["Target"] = json!(t);
            }
            v
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_record_declares_every_metric_and_carries_the_reports_values() {
        let mut r = Report {
            policy: "std".into(),
            target: Some("web".into()),
            kind: "run",
            volumes_selected: 3,
            duration_ms: 1234,
            ..Report::default()
        };
        r.api_calls.throttled.insert("CreateSnapshot".into(), 2);
        r.ambiguous = crate::core::report::Ambiguous {
            count: 5,
            found: 3,
            retried: 2,
        };
        let v = emf(&Figures::of(&r), 1_700_000_000_000);
        let decl = &v["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(decl["Namespace"], "ebssnap");
        assert_eq!(
            decl["Dimensions"],
            json!([["Policy"], ["Policy", "Target"]])
        );
        let absent = |n: &str| {
            n == "RestoreSeconds" || COVERAGE_METRICS.contains(&n) || COPY_METRICS.contains(&n)
        };
        for (name, _) in METRICS.iter().filter(|(n, _)| !absent(n)) {
            assert!(v.get(*name).is_some(), "{name} missing");
        }
        for name in ["RestoreSeconds", "UnprotectedVolumes", "StaleVolumes"] {
            assert!(v.get(name).is_none(), "{name}: not measured, no value");
        }
        let declared = decl["Metrics"].as_array().unwrap().len();
        assert_eq!(declared, METRICS.len() - 4 - COPY_METRICS.len());
        assert_eq!(v["VolumesSelected"], 3);
        assert_eq!(v["ThrottledCalls"], 2);
        assert_eq!(
            (v["AmbiguousCalls"].clone(), v["AmbiguousFound"].clone()),
            (json!(5), json!(3))
        );
        assert_eq!(v["AmbiguousRetried"], 2);
        assert_eq!(v["DurationMs"], 1234);
        assert_eq!(v["Target"], "web");
        let sweep = emf(&Figures::failed("std", None, "sweep", 5), 0);
        assert_eq!(sweep["Failures"], 1);
        assert_eq!(
            sweep["_aws"]["CloudWatchMetrics"][0]["Dimensions"],
            json!([["Policy"]])
        );
        assert!(sweep.get("Target").is_none());
        // A sweep with report_unprotected carries the coverage figures.
        let mut r = Report {
            policy: "std".into(),
            kind: "sweep",
            ..Report::default()
        };
        r.coverage = Some(crate::core::report::CoverageSweep {
            volumes: 9,
            unprotected: vec![Default::default(); 2],
            stale_volumes: 1,
            oldest_restore_point_age_seconds: Some(90_000),
            newly_protected: vec![],
        });
        let v = emf(&Figures::of(&r), 0);
        assert_eq!(v["UnprotectedVolumes"], 2);
        assert_eq!(v["StaleVolumes"], 1);
        assert_eq!(v["OldestRestorePointAgeSeconds"], 90_000);
        let declared: Vec<&str> = v["_aws"]["CloudWatchMetrics"][0]["Metrics"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|m| m["Name"].as_str())
            .collect();
        for name in COVERAGE_METRICS {
            assert!(declared.contains(&name), "{name} not declared");
        }
    }

    #[test]
    fn each_copy_region_has_its_own_record() {
        let mut r = Report {
            policy: "std".into(),
            target: Some("web".into()),
            kind: "run",
            ..Report::default()
        };
        for (region, deferred) in [("us-west-2", 5), ("eu-west-1", 0)] {
            r.copies.push(crate::core::copy::RegionCopies {
                region: region.into(),
                deferred,
                pending: 20 - deferred,
                overdue: if deferred > 0 {
                    vec![crate::core::copy::CopyOverdue {
                        volume_id: "vol-1".into(),
                        newest_copy_time: None,
                        age_seconds: 1,
                    }]
                } else {
                    vec![]
                },
                ..Default::default()
            });
        }
        let f = Figures::of(&r);
        assert_eq!(emf(&f, 0)["CopiesDeferred"], 5, "summed on the run's line");
        let lines = emf_per_destination(&f, 7);
        assert_eq!(lines.len(), 2);
        let west = &lines[0];
        assert_eq!(west["DestinationRegion"], "us-west-2");
        assert_eq!(
            (
                west["CopiesDeferred"].clone(),
                west["CopiesPending"].clone(),
                west["CopiesOverdue"].clone()
            ),
            (json!(5), json!(15), json!(1))
        );
        assert_eq!(west["Target"], "web");
        let decl = &west["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(
            decl["Dimensions"][1],
            json!(["Policy", "Target", "DestinationRegion"])
        );
        for m in decl["Metrics"].as_array().unwrap() {
            let name = m["Name"].as_str().unwrap();
            assert!(west.get(name).is_some(), "{name} declared without a value");
        }
        assert_eq!(lines[1]["CopiesOverdue"], 0);
        assert!(emf_per_destination(&Figures::of(&Report::default()), 0).is_empty());
    }
}
