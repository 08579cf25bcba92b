//! Golden documents: the examples of docs/design.md §3 parse, and serialize back to the same JSON.

use ebssnap::core::doc::{self, Document};
use serde_json::Value;

fn golden(name: &str) -> String {
    let path = format!("{}/tests/golden/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

#[test]
fn policy_document_round_trips() {
    let text = golden("policy.json");
    let Document::Policy(p) = doc::parse_document(&text).unwrap() else {
        panic!("not a policy")
    };
    assert_eq!(p.rules().days, 14);
    assert_eq!(p.rules().min_snapshots, 7);
    assert_eq!(
        p.webhook_url(),
        Some("https://tickets.example.com/hooks/ebs")
    );
    assert_eq!(
        p.invocation.as_ref().unwrap().scheduled_time(),
        None,
        "placeholders are not a time"
    );
    let back: Value = serde_json::to_value(&p).unwrap();
    assert_eq!(back, serde_json::from_str::<Value>(&text).unwrap());
}

#[test]
fn target_document_round_trips() {
    let text = golden("target.json");
    let Document::Target(t) = doc::parse_document(&text).unwrap() else {
        panic!("not a target")
    };
    assert_eq!(t.select.asg_names(), ["web-prod"]);
    assert_eq!(t.exclude().volume_tags().unwrap()["NoBackup"], "*");
    let back: Value = serde_json::to_value(&t).unwrap();
    assert_eq!(back, serde_json::from_str::<Value>(&text).unwrap());
    assert!(doc::to_input(&t).unwrap().len() < doc::MAX_INPUT_CHARS);
}

#[test]
fn minimal_documents_are_accepted() {
    for name in ["policy-minimal.json", "target-minimal.json"] {
        doc::parse_document(&golden(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
    }
}

#[test]
fn bad_documents_are_refused_with_the_reason() {
    let cases = [
        ("bad-unknown-field.json", "unknown field `selectt`"),
        ("bad-newer-version.json", "upgrade the runner"),
        ("bad-empty-selector.json", "selector is empty"),
    ];
    for (name, want) in cases {
        let err = doc::parse_document(&golden(name)).unwrap_err().to_string();
        assert!(err.contains(want), "{name}: {err}");
    }
}

#[test]
fn the_runner_examples_are_valid_documents() {
    for name in ["policy.json", "target.json"] {
        let path = format!("{}/examples/runner/{name}", env!("CARGO_MANIFEST_DIR"));
        let text = std::fs::read_to_string(&path).unwrap();
        doc::parse_document(&text).unwrap_or_else(|e| panic!("{path}: {e}"));
    }
}

#[test]
fn registry_docs_are_current() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut stale = Vec::new();
    for (rel, want) in ebssnap::provider::docs::render_all(root) {
        let have = std::fs::read_to_string(root.join(&rel)).unwrap_or_default();
        if have != want {
            stale.push(rel.display().to_string());
        }
    }
    assert!(
        stale.is_empty(),
        "generated docs are stale: {stale:?}; run `make docs` and commit"
    );
}

#[test]
fn registry_manifest_declares_protocol_6() {
    let path = format!(
        "{}/terraform-registry-manifest.json",
        env!("CARGO_MANIFEST_DIR")
    );
    let v: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    assert_eq!(
        v,
        serde_json::json!({"version": 1, "metadata": {"protocol_versions": ["6.0"]}})
    );
}

mod tickets {
    use ebssnap::core::doc::Invocation;
    use ebssnap::core::raise;
    use ebssnap::core::report::{Created, Failure, Overdue, Recovered, Report};
    use ebssnap::core::retention::ErrorSnapshot;
    use ebssnap::core::ticket::{self, Context, Ticket};
    use serde_json::Value;

    fn ctx() -> Context {
        Context {
            account: Some("123456789012".into()),
            region: Some("us-east-1".into()),
            occurred_at: "2026-11-26T05:01:12Z".into(),
            invocation: Some(Invocation {
                scheduled_time: Some("2026-11-26T05:00:00Z".into()),
                execution_id: Some("6d0f5a7e-2b1c-4c4e-9d1e-1f2a3b4c5d6e".into()),
                attempt: Some("1".into()),
                schedule_arn: Some(
                    "arn:aws:scheduler:us-east-1:123456789012:schedule/ebssnap-std/web".into(),
                ),
            }),
        }
    }

    fn examples() -> Vec<(&'static str, Ticket)> {
        let mut run = Report {
            kind: "run",
            policy: "std".into(),
            target: Some("web".into()),
            run_key: "2026-11-26T05:00:00Z".into(),
            volumes_selected: 3,
            duration_ms: 842,
            ..Report::default()
        };
        run.failures.push(Failure {
            volume_id: "vol-0a1b2c3d4e5f60718".into(),
            instance_id: Some("i-0123456789abcdef0".into()),
            device: Some("/dev/sdf".into()),
            snapshot_id: None,
            code: "IncorrectState".into(),
            message: "The volume is in an incorrect state.".into(),
            retryable: false,
            reference: None,
        });
        let mut sweep = Report {
            kind: "sweep",
            policy: "std".into(),
            run_key: "2026-11-26T00:00:00Z".into(),
            duration_ms: 1312,
            ..Report::default()
        };
        sweep.overdue.push(Overdue {
            target: "web".into(),
            volume_id: "vol-0a1b2c3d4e5f60718".into(),
            instance_id: Some("i-0123456789abcdef0".into()),
            device: Some("/dev/sdf".into()),
            newest_snapshot_id: Some("snap-0f1e2d3c4b5a69788".into()),
            newest_at: Some("2026-11-23T05:00:41Z".into()),
            interval_seconds: 86_400,
        });
        let mut errored = Report {
            kind: "sweep",
            policy: "std".into(),
            run_key: "2026-11-26T00:00:00Z".into(),
            ..Report::default()
        };
        errored.error_snapshots.push(ErrorSnapshot {
            snapshot_id: "snap-0badc0ffee0000001".into(),
            target: "web".into(),
            volume_id: "vol-0a1b2c3d4e5f60718".into(),
        });
        let mut sweep_ctx = ctx();
        sweep_ctx.invocation = None;
        let mut back = Report {
            kind: "run",
            policy: "std".into(),
            target: Some("web".into()),
            run_key: "2026-11-26T05:00:00Z".into(),
            volumes_selected: 1,
            duration_ms: 530,
            ..Report::default()
        };
        back.created.push(Created {
            snapshot_id: Some("snap-0123456789abcdef0".into()),
            volume_id: "vol-0a1b2c3d4e5f60718".into(),
            instance_id: Some("i-0123456789abcdef0".into()),
            device: Some("/dev/sdf".into()),
        });
        back.recovered.push(Recovered {
            target: "web".into(),
            volume_id: "vol-0a1b2c3d4e5f60718".into(),
            instance_id: Some("i-0123456789abcdef0".into()),
            device: Some("/dev/sdf".into()),
            snapshot_id: Some("snap-0123456789abcdef0".into()),
            previous_at: Some("2026-11-24T05:00:37Z".into()),
        });
        let test_result =
            |outcome, recovered, message: Option<&str>| ebssnap::core::report::RestoreTestResult {
                target: "web".into(),
                volume_id: "vol-0a1b2c3d4e5f60718".into(),
                snapshot_id: "snap-0123456789abcdef0".into(),
                run: Some("2026-11-26T05:00:00Z".into()),
                restore_volume_id: None,
                outcome,
                seconds: None,
                message: message.map(String::from),
                recovered,
                volume_deleted: true,
            };
        let restore_failed = Report {
            kind: "restore_test",
            policy: "std".into(),
            run_key: "2026-11-29T04:00:00Z".into(),
            volumes_selected: 2,
            duration_ms: 48_212,
            restore_tests: vec![test_result(
                ebssnap::core::restore_test::Outcome::Failed,
                false,
                Some(
                    "creating a volume from snap-0123456789abcdef0: KMSKeyNotAccessibleFault: The KMS key is not accessible.",
                ),
            )],
            ..Report::default()
        };
        let restore_back = Report {
            restore_tests: vec![test_result(
                ebssnap::core::restore_test::Outcome::Passed,
                true,
                None,
            )],
            run_key: "2026-12-06T04:00:00Z".into(),
            ..restore_failed.clone()
        };
        let mut expired = Report {
            kind: "sweep",
            policy: "std".into(),
            run_key: "2026-11-26T00:00:00Z".into(),
            ..Report::default()
        };
        expired
            .restore_volumes_in_use
            .push(ebssnap::core::restore::RestoreVolume {
                volume_id: "vol-0feedface00000001".into(),
                state: "in-use".into(),
                availability_zone: "us-east-1a".into(),
                size_gb: 8,
                restore_of: "vol-0a1b2c3d4e5f60718".into(),
                restored_from: Some("snap-0123456789abcdef0".into()),
                run: Some("2026-11-24T05:00:00Z".into()),
                expires: Some("2026-11-25T09:30:00Z".into()),
                attached_to: Some("i-0123456789abcdef0".into()),
                created: None,
            });
        let mut test_ctx = ctx();
        test_ctx.invocation = None;
        let lonely = ebssnap::core::report::CoverageVolume {
            volume_id: "vol-0c0ffee000000001".into(),
            instance_id: Some("i-0123456789abcdef0".into()),
            device: Some("/dev/sdg".into()),
            name: Some("web-1 scratch".into()),
            disabled_targets: vec![],
            snapshot_id: None,
        };
        let unprotected = Report {
            kind: "sweep",
            policy: "std".into(),
            run_key: "2026-11-26T00:00:00Z".into(),
            coverage: Some(ebssnap::core::report::CoverageSweep {
                volumes: 42,
                unprotected: vec![
                    lonely.clone(),
                    ebssnap::core::report::CoverageVolume {
                        volume_id: "vol-0c0ffee000000002".into(),
                        instance_id: None,
                        device: None,
                        name: Some("reports".into()),
                        disabled_targets: vec!["std/reports".into()],
                        snapshot_id: None,
                    },
                ],
                stale_volumes: 0,
                oldest_restore_point_age_seconds: Some(86_400),
                newly_protected: vec![],
            }),
            ..Report::default()
        };
        let covered = Report {
            run_key: "2026-11-27T00:00:00Z".into(),
            coverage: Some(ebssnap::core::report::CoverageSweep {
                volumes: 42,
                unprotected: vec![],
                stale_volumes: 0,
                oldest_restore_point_age_seconds: Some(86_400),
                newly_protected: vec![ebssnap::core::report::CoverageVolume {
                    snapshot_id: Some("snap-0123456789abcdef0".into()),
                    ..lonely
                }],
            }),
            ..unprotected.clone()
        };
        let mut copy_failed = Report {
            kind: "run",
            policy: "std".into(),
            target: Some("web".into()),
            run_key: "2026-11-26T05:00:00Z".into(),
            volumes_selected: 2,
            duration_ms: 2_310,
            ..Report::default()
        };
        copy_failed.copies.push(ebssnap::core::copy::RegionCopies {
            region: "us-west-2".into(),
            failures: vec![ebssnap::core::copy::CopyFailure {
                volume_id: Some("vol-0a1b2c3d4e5f60718".into()),
                snapshot_id: Some("snap-0123456789abcdef0".into()),
                code: "UnauthorizedOperation".into(),
                message: "You are not authorized to perform this operation.".into(),
            }],
            ..Default::default()
        });
        let mut copy_overdue = Report {
            copies: vec![],
            ..copy_failed.clone()
        };
        copy_overdue.copies.push(ebssnap::core::copy::RegionCopies {
            region: "us-west-2".into(),
            overdue: vec![ebssnap::core::copy::CopyOverdue {
                volume_id: "vol-0a1b2c3d4e5f60718".into(),
                newest_copy_time: Some("2026-11-22T05:00:12Z".into()),
                age_seconds: 345_588,
            }],
            ..Default::default()
        });
        let mut copy_recovered = Report {
            copies: vec![],
            ..copy_failed.clone()
        };
        copy_recovered
            .copies
            .push(ebssnap::core::copy::RegionCopies {
                region: "us-west-2".into(),
                recovered: vec!["vol-0a1b2c3d4e5f60718".into()],
                ..Default::default()
            });
        let share_failed = Report {
            copies: vec![],
            share: Some(ebssnap::core::copy::ShareOutcome {
                accounts: 1,
                shared: vec!["snap-0fedcba9876543210".into()],
                failures: vec![ebssnap::core::copy::CopyFailure {
                    volume_id: Some("vol-0a1b2c3d4e5f60718".into()),
                    snapshot_id: Some("snap-0123456789abcdef0".into()),
                    code: "ShareDefaultKey".into(),
                    message: "restore point snap-0123456789abcdef0 is encrypted under the AWS-managed key arn:aws:kms:us-east-1:123456789012:key/0d5d0c8c-1111-4000-8000-000000000ebs, which AWS does not share".into(),
                }],
            }),
            ..copy_failed.clone()
        };
        vec![
            (
                "snapshot.failed.json",
                raise::from_report(&run, &ctx()).unwrap(),
            ),
            (
                "snapshot.overdue.json",
                raise::from_report(&sweep, &sweep_ctx).unwrap(),
            ),
            (
                "snapshot.failed-sweep.json",
                raise::from_report(&errored, &sweep_ctx).unwrap(),
            ),
            (
                "run.failed.json",
                ticket::run_failed(
                    "std",
                    Some("web"),
                    "2026-11-26T05:00:00Z",
                    "UnauthorizedOperation",
                    "describing EC2 instances: UnauthorizedOperation: You are not authorized to perform this operation.",
                    false,
                    &ctx(),
                ),
            ),
            (
                "snapshot.recovered.json",
                raise::recovered_from_report(&back, &ctx()).unwrap(),
            ),
            (
                "restore.failed.json",
                raise::from_report(&restore_failed, &test_ctx).unwrap(),
            ),
            (
                "restore.recovered.json",
                raise::recovered_from_report(&restore_back, &test_ctx).unwrap(),
            ),
            (
                "restore.expired.json",
                raise::from_report(&expired, &test_ctx).unwrap(),
            ),
            (
                "coverage.unprotected.json",
                raise::coverage_from_report(&unprotected, &test_ctx).unwrap(),
            ),
            (
                "copy.failed.json",
                raise::copy_from_report(&copy_failed, &ctx()).unwrap(),
            ),
            (
                "copy.overdue.json",
                raise::copy_overdue_from_report(&copy_overdue, &ctx()).unwrap(),
            ),
            (
                "copy.recovered.json",
                raise::copy_recovered_from_report(&copy_recovered, &ctx()).unwrap(),
            ),
            (
                "share.failed.json",
                raise::share_from_report(&share_failed, &ctx()).unwrap(),
            ),
            (
                "coverage.recovered.json",
                raise::coverage_recovered_from_report(&covered, &test_ctx).unwrap(),
            ),
        ]
    }

    fn dir() -> std::path::PathBuf {
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/tickets")
    }

    /// The example payloads in docs/tickets/ are exactly what the runner builds
    /// (`EBSSNAP_BLESS=1` rewrites them).
    #[test]
    fn ticket_examples_are_golden() {
        for (name, mut t) in examples() {
            t.runner_version = "0.1.0".into();
            let want = serde_json::to_string_pretty(&t).unwrap() + "\n";
            let path = dir().join(name);
            if std::env::var("EBSSNAP_BLESS").is_ok() {
                std::fs::write(&path, &want).unwrap();
            }
            let have = std::fs::read_to_string(&path).unwrap_or_default();
            assert_eq!(
                have, want,
                "{name} is stale; rerun with EBSSNAP_BLESS=1 and review the diff"
            );
        }
    }

    /// Every example uses exactly the fields the JSON Schema declares, with its required ones.
    #[test]
    fn ticket_examples_match_the_schema() {
        let schema: Value = serde_json::from_str(
            &std::fs::read_to_string(dir().join("ticket.schema.json")).unwrap(),
        )
        .unwrap();
        fn check(obj: &Value, schema: &Value, at: &str) {
            let props = schema["properties"].as_object().unwrap();
            let o = obj
                .as_object()
                .unwrap_or_else(|| panic!("{at} is not an object"));
            for k in o.keys() {
                assert!(props.contains_key(k), "{at}.{k} is not in the schema");
            }
            for r in schema["required"].as_array().unwrap() {
                assert!(
                    o.contains_key(r.as_str().unwrap()),
                    "{at} misses required {r}"
                );
            }
        }
        for (name, t) in examples() {
            let v = serde_json::to_value(&t).unwrap();
            check(&v, &schema, name);
            check(&v["run"], &schema["properties"]["run"], name);
            check(&v["summary"], &schema["properties"]["summary"], name);
            for f in v["failures"].as_array().unwrap() {
                check(f, &schema["properties"]["failures"]["items"], name);
            }
            for r in v["recovered"].as_array().into_iter().flatten() {
                check(r, &schema["properties"]["recovered"]["items"], name);
            }
            let severities = schema["properties"]["severity"]["enum"].as_array().unwrap();
            assert!(
                severities.contains(&v["severity"]),
                "{name}: {}",
                v["severity"]
            );
            let events: Vec<&str> = schema["properties"]["event"]["enum"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| e.as_str().unwrap())
                .collect();
            assert!(events.contains(&v["event"].as_str().unwrap()));
        }
    }

    /// docs/guides/tickets.md's response guide is the table in `core::guide` (`EBSSNAP_BLESS=1` rewrites it).
    #[test]
    fn the_response_guide_in_the_docs_is_current() {
        let path = dir().parent().unwrap().join("guides/tickets.md");
        let text = std::fs::read_to_string(&path).unwrap();
        let (start, end) = ("<!-- guide:start -->\n", "<!-- guide:end -->");
        let a = text.find(start).expect("guide:start marker") + start.len();
        let b = text.find(end).expect("guide:end marker");
        let want = ebssnap::core::guide::markdown_table();
        if std::env::var("EBSSNAP_BLESS").is_ok() {
            std::fs::write(&path, format!("{}{want}{}", &text[..a], &text[b..])).unwrap();
            return;
        }
        assert_eq!(
            &text[a..b],
            want,
            "docs/guides/tickets.md's guide is stale: rerun with EBSSNAP_BLESS=1"
        );
    }

    /// The same problem on two runs has the same problem key; each failure has a category and
    /// an action; severities follow the rules in docs/guides/tickets.md.
    #[test]
    fn problem_keys_are_stable_and_severities_mean_something() {
        let run = |key: &str, code: &str| {
            let mut r = Report {
                kind: "run",
                policy: "std".into(),
                target: Some("web".into()),
                run_key: key.into(),
                volumes_selected: 2,
                ..Report::default()
            };
            r.created.push(Created {
                snapshot_id: Some("snap-1".into()),
                volume_id: "vol-ok".into(),
                ..Default::default()
            });
            r.failures.push(Failure {
                volume_id: "vol-1".into(),
                instance_id: None,
                device: None,
                snapshot_id: None,
                code: code.into(),
                message: "m".into(),
                retryable: false,
                reference: None,
            });
            raise::from_report(&r, &ctx()).unwrap()
        };
        let a = run("2026-11-26T05:00:00Z", "IncorrectState");
        let b = run("2026-11-27T05:00:00Z", "IncorrectState");
        assert_ne!(
            a.dedup_key, b.dedup_key,
            "a run's dedup key changes per run"
        );
        assert_eq!(a.failures[0].problem_key, "std/web/vol-1/volume");
        assert_eq!(a.failures[0].problem_key, b.failures[0].problem_key);
        assert_eq!(a.severity, "error");
        assert!(a.failures[0].action.contains("describe-volumes"));
        for (code, category, severity) in [
            ("RequestLimitExceeded", "transient", "warning"),
            ("IncorrectState", "volume", "error"),
            ("UnauthorizedOperation", "permission", "error"),
            ("SnapshotLimitExceeded", "capacity", "error"),
            ("NotFound", "configuration", "error"),
            ("BrandNewCode", "unknown", "error"),
        ] {
            let t = run("k", code);
            assert_eq!(t.failures[0].category, category, "{code}");
            assert_eq!(t.severity, severity, "{code}");
        }
        // Nothing created: the whole target failed.
        let mut none = Report {
            kind: "run",
            policy: "std".into(),
            target: Some("web".into()),
            volumes_selected: 1,
            ..Report::default()
        };
        none.failures.push(Failure {
            volume_id: "vol-1".into(),
            instance_id: None,
            device: None,
            snapshot_id: None,
            code: "RequestLimitExceeded".into(),
            message: "m".into(),
            retryable: true,
            reference: None,
        });
        assert_eq!(
            raise::from_report(&none, &ctx()).unwrap().severity,
            "critical"
        );
    }

    #[test]
    fn run_tickets_of_the_same_scheduled_time_share_a_dedup_key() {
        let a = &examples()[0].1;
        let mut later = ctx();
        later.occurred_at = "2026-11-26T05:09:30Z".into();
        let mut report = Report {
            kind: "run",
            policy: "std".into(),
            target: Some("web".into()),
            run_key: "2026-11-26T05:00:00Z".into(),
            ..Report::default()
        };
        report.failures.push(Failure {
            volume_id: "vol-x".into(),
            instance_id: None,
            device: None,
            snapshot_id: None,
            code: "X".into(),
            message: "x".into(),
            retryable: true,
            reference: None,
        });
        assert_eq!(
            raise::from_report(&report, &later).unwrap().dedup_key,
            a.dedup_key
        );
        report.failures.clear();
        assert!(
            raise::from_report(&report, &later).is_none(),
            "nothing failed: no ticket"
        );
    }
}
