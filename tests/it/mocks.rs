//! What moto cannot do, with SDK-level mocks: crash-consistent sets and their tag copying,
//! pagination, pending and `error` snapshots, per-volume rate limits, the deadline, sharing with
//! more accounts than one call takes.

use std::time::{Duration, Instant};

use aws_sdk_ec2::Client as Ec2;
use aws_sdk_ec2::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_ec2::operation::create_snapshot::{CreateSnapshotError, CreateSnapshotOutput};
use aws_sdk_ec2::operation::create_snapshots::CreateSnapshotsOutput;
use aws_sdk_ec2::operation::delete_snapshot::DeleteSnapshotOutput;
use aws_sdk_ec2::operation::describe_instances::DescribeInstancesOutput;
use aws_sdk_ec2::operation::describe_snapshots::DescribeSnapshotsOutput;
use aws_sdk_ec2::operation::describe_volumes::DescribeVolumesOutput;
use aws_sdk_ec2::types::{
    CopyTagsFromSource, EbsInstanceBlockDevice, Instance, InstanceBlockDeviceMapping,
    InstanceState, InstanceStateName, Reservation, Snapshot, SnapshotInfo, SnapshotState, Tag,
    Volume, VolumeAttachment, VolumeState,
};
use aws_smithy_mocks::{MockResponseInterceptor, Rule, RuleMode, create_mock_http_client, mock};
use aws_smithy_types::DateTime;
use aws_smithy_types::error::ErrorMetadata;
use ebssnap::aws::{ApiCalls, Clients};
use ebssnap::runner::{self, RunOptions};
use serde_json::json;

use crate::docs::{self, p, t};

fn creds() -> Credentials {
    Credentials::new("mock", "mock", None, None, "mock")
}

/// Clients whose EC2 answers only from `rules` (an unmatched call fails the test's run).
fn clients(rules: &[&Rule]) -> Clients {
    clients_with(rules, &[])
}

fn interceptor(rules: &[&Rule]) -> MockResponseInterceptor {
    let mut mocks = MockResponseInterceptor::new().rule_mode(RuleMode::MatchAny);
    for r in rules {
        mocks = mocks.with_rule(r);
    }
    mocks
}

/// Mocked EC2 and Scheduler; Auto Scaling and STS answer nothing.
fn clients_with(ec2_rules: &[&Rule], scheduler_rules: &[&Rule]) -> Clients {
    let calls = ApiCalls::default();
    let ec2 = Ec2::from_conf(
        aws_sdk_ec2::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("us-east-1"))
            .credentials_provider(creds())
            .http_client(create_mock_http_client())
            .interceptor(interceptor(ec2_rules))
            .interceptor(calls.clone())
            .build(),
    );
    let autoscaling = aws_sdk_autoscaling::Client::from_conf(
        aws_sdk_autoscaling::Config::builder()
            .behavior_version(aws_sdk_autoscaling::config::BehaviorVersion::latest())
            .region(aws_sdk_autoscaling::config::Region::new("us-east-1"))
            .credentials_provider(creds())
            .http_client(create_mock_http_client())
            .build(),
    );
    let scheduler = aws_sdk_scheduler::Client::from_conf(
        aws_sdk_scheduler::Config::builder()
            .behavior_version(aws_sdk_scheduler::config::BehaviorVersion::latest())
            .region(aws_sdk_scheduler::config::Region::new("us-east-1"))
            .credentials_provider(creds())
            .http_client(create_mock_http_client())
            .interceptor(interceptor(scheduler_rules))
            .interceptor(calls.clone())
            .build(),
    );
    let sts = aws_sdk_sts::Client::from_conf(
        aws_sdk_sts::Config::builder()
            .behavior_version(aws_sdk_sts::config::BehaviorVersion::latest())
            .region(aws_sdk_sts::config::Region::new("us-east-1"))
            .credentials_provider(creds())
            .http_client(create_mock_http_client())
            .build(),
    );
    let lambda = aws_sdk_lambda::Client::from_conf(
        aws_sdk_lambda::Config::builder()
            .behavior_version(aws_sdk_lambda::config::BehaviorVersion::latest())
            .region(aws_sdk_lambda::config::Region::new("us-east-1"))
            .credentials_provider(creds())
            .http_client(create_mock_http_client())
            .build(),
    );
    let secretsmanager = aws_sdk_secretsmanager::Client::from_conf(
        aws_sdk_secretsmanager::Config::builder()
            .behavior_version(aws_sdk_secretsmanager::config::BehaviorVersion::latest())
            .region(aws_sdk_secretsmanager::config::Region::new("us-east-1"))
            .credentials_provider(creds())
            .http_client(create_mock_http_client())
            .build(),
    );
    let sns = aws_sdk_sns::Client::from_conf(
        aws_sdk_sns::Config::builder()
            .behavior_version(aws_sdk_sns::config::BehaviorVersion::latest())
            .region(aws_sdk_sns::config::Region::new("us-east-1"))
            .credentials_provider(creds())
            .http_client(create_mock_http_client())
            .build(),
    );
    let dynamodb = aws_sdk_dynamodb::Client::from_conf(
        aws_sdk_dynamodb::Config::builder()
            .behavior_version(aws_sdk_dynamodb::config::BehaviorVersion::latest())
            .region(aws_sdk_dynamodb::config::Region::new("us-east-1"))
            .credentials_provider(creds())
            .http_client(create_mock_http_client())
            .build(),
    );
    let kms = aws_sdk_kms::Client::from_conf(
        aws_sdk_kms::Config::builder()
            .behavior_version(aws_sdk_kms::config::BehaviorVersion::latest())
            .region(aws_sdk_kms::config::Region::new("us-east-1"))
            .credentials_provider(creds())
            .http_client(create_mock_http_client())
            .build(),
    );
    Clients {
        dynamodb,
        kms,
        ec2_writes: ec2.clone(),
        ec2,
        autoscaling,
        scheduler,
        sts,
        lambda,
        secretsmanager,
        sns,
        calls,
        region: Some("us-east-1".into()),
    }
}

fn tag(k: &str, v: &str) -> Tag {
    Tag::builder().key(k).value(v).build()
}

fn volume(id: &str, attached: Option<(&str, &str)>, tags: &[(&str, &str)]) -> Volume {
    let mut b = Volume::builder()
        .volume_id(id)
        .size(8)
        .state(if attached.is_some() {
            VolumeState::InUse
        } else {
            VolumeState::Available
        })
        .set_tags(Some(tags.iter().map(|(k, v)| tag(k, v)).collect()));
    if let Some((i, d)) = attached {
        b = b.attachments(VolumeAttachment::builder().instance_id(i).device(d).build());
    }
    b.build()
}

/// A running instance with root device `/dev/xvda` and these (device, volume) attachments.
fn instance(id: &str, attached: &[(&str, &str)]) -> DescribeInstancesOutput {
    let mut i = Instance::builder()
        .instance_id(id)
        .root_device_name("/dev/xvda")
        .state(
            InstanceState::builder()
                .name(InstanceStateName::Running)
                .build(),
        );
    for (dev, vol) in attached {
        i = i.block_device_mappings(
            InstanceBlockDeviceMapping::builder()
                .device_name(*dev)
                .ebs(EbsInstanceBlockDevice::builder().volume_id(*vol).build())
                .build(),
        );
    }
    DescribeInstancesOutput::builder()
        .reservations(Reservation::builder().instances(i.build()).build())
        .build()
}

fn snapshot(
    id: &str,
    vol: &str,
    state: SnapshotState,
    age_days: i64,
    tags: &[(&str, &str)],
) -> Snapshot {
    Snapshot::builder()
        .snapshot_id(id)
        .volume_id(vol)
        .state(state)
        .start_time(DateTime::from_secs(
            jiff::Timestamp::now().as_second() - age_days * 86_400,
        ))
        .set_tags(Some(tags.iter().map(|(k, v)| tag(k, v)).collect()))
        .build()
}

fn managed(id: &str, vol: &str, state: SnapshotState, age_days: i64) -> Snapshot {
    snapshot(
        id,
        vol,
        state,
        age_days,
        &[
            ("ebssnap:policy", "std"),
            ("ebssnap:target", "t"),
            ("ebssnap:volume", vol),
            ("ebssnap:run", "old"),
        ],
    )
}

fn no_snapshots() -> Rule {
    mock!(Ec2::describe_snapshots).then_output(|| DescribeSnapshotsOutput::builder().build())
}

fn opts() -> RunOptions {
    RunOptions {
        run_key: Some("r1".into()),
        backoff: Duration::from_millis(5),
        ..RunOptions::default()
    }
}

#[tokio::test]
async fn crash_consistent_sets_use_create_snapshots_with_copied_volume_tags() {
    let instances = mock!(Ec2::describe_instances).then_output(|| {
        instance(
            "i-1",
            &[("/dev/xvda", "vol-root"), ("/dev/sdf", "vol-data")],
        )
    });
    // Instance i-1 has a root and a data volume; vol-free is detached and also selected.
    let volumes = mock!(Ec2::describe_volumes).then_output(|| {
        DescribeVolumesOutput::builder()
            .volumes(volume(
                "vol-root",
                Some(("i-1", "/dev/xvda")),
                &[("App", "db")],
            ))
            .volumes(volume(
                "vol-data",
                Some(("i-1", "/dev/sdf")),
                &[("App", "db")],
            ))
            .volumes(volume("vol-free", None, &[("App", "spare")]))
            .build()
    });
    let set = mock!(Ec2::create_snapshots)
        .match_requests(|r| {
            let tags: Vec<(&str, &str)> = r
                .tag_specifications()
                .iter()
                .flat_map(|s| s.tags())
                .map(|t| (t.key().unwrap_or(""), t.value().unwrap_or("")))
                .collect();
            r.copy_tags_from_source() == Some(&CopyTagsFromSource::Volume)
                && r.instance_specification().and_then(|s| s.instance_id()) == Some("i-1")
                && tags.contains(&("ebssnap:policy", "std"))
                && tags.contains(&("ebssnap:target", "t"))
                && tags.contains(&("ebssnap:run", "r1"))
                && tags.contains(&("Backup", "ebssnap"))
                && !tags.iter().any(|(k, _)| *k == "ebssnap:volume")
        })
        .then_output(|| {
            CreateSnapshotsOutput::builder()
                .snapshots(
                    SnapshotInfo::builder()
                        .snapshot_id("snap-r")
                        .volume_id("vol-root")
                        .build(),
                )
                .snapshots(
                    SnapshotInfo::builder()
                        .snapshot_id("snap-d")
                        .volume_id("vol-data")
                        .build(),
                )
                .build()
        });
    let single = mock!(Ec2::create_snapshot)
        .match_requests(|r| r.volume_id() == Some("vol-free"))
        .then_output(|| {
            CreateSnapshotOutput::builder()
                .snapshot_id("snap-f")
                .build()
        });
    let snaps = no_snapshots();
    let c = clients(&[&instances, &volumes, &set, &single, &snaps]);
    let mut pol = docs::policy("std", 14, 1);
    pol["crash_consistent"] = json!(true);
    let tgt = docs::target(
        "std",
        "t",
        json!({"instance_ids": ["i-1"], "volume_ids": ["vol-free"]}),
    );
    let r = runner::run_target(&c, &p(&pol), &t(&tgt), &opts())
        .await
        .unwrap();
    assert!(r.failures.is_empty(), "{:?}", r.failures);
    let created: Vec<(&str, &str)> = r
        .created
        .iter()
        .map(|c| (c.volume_id.as_str(), c.snapshot_id.as_deref().unwrap()))
        .collect();
    assert_eq!(
        created,
        [
            ("vol-data", "snap-d"),
            ("vol-free", "snap-f"),
            ("vol-root", "snap-r")
        ]
    );
    assert_eq!(
        set.num_calls(),
        1,
        "one CreateSnapshots for the whole instance"
    );
    assert_eq!(
        single.num_calls(),
        1,
        "CreateSnapshot for the detached volume only"
    );
}

/// docs/design.md §5: a set may only snapshot what was selected. Root excluded by `root_volumes`, one
/// data volume by tag: `CreateSnapshots` must carry `ExcludeBootVolume` and that volume's id.
#[tokio::test]
async fn crash_consistent_sets_exclude_every_attached_volume_not_selected() {
    let instances = mock!(Ec2::describe_instances).then_output(|| {
        instance(
            "i-1",
            &[
                ("/dev/xvda", "vol-root"),
                ("/dev/sdf", "vol-data"),
                ("/dev/sdg", "vol-scratch"),
            ],
        )
    });
    let volumes = mock!(Ec2::describe_volumes).then_output(|| {
        DescribeVolumesOutput::builder()
            .volumes(volume("vol-root", Some(("i-1", "/dev/xvda")), &[]))
            .volumes(volume("vol-data", Some(("i-1", "/dev/sdf")), &[]))
            .volumes(volume(
                "vol-scratch",
                Some(("i-1", "/dev/sdg")),
                &[("NoBackup", "yes")],
            ))
            .build()
    });
    let set = mock!(Ec2::create_snapshots)
        .match_requests(|r| {
            let spec = r.instance_specification();
            spec.and_then(|s| s.exclude_boot_volume()) == Some(true)
                && spec.map(|s| s.exclude_data_volume_ids())
                    == Some(&["vol-scratch".to_string()][..])
        })
        .then_output(|| {
            CreateSnapshotsOutput::builder()
                .snapshots(
                    SnapshotInfo::builder()
                        .snapshot_id("snap-d")
                        .volume_id("vol-data")
                        .build(),
                )
                .build()
        });
    let single = mock!(Ec2::create_snapshot).then_output(|| {
        CreateSnapshotOutput::builder()
            .snapshot_id("snap-x")
            .build()
    });
    let snaps = no_snapshots();
    let c = clients(&[&instances, &volumes, &set, &single, &snaps]);
    let mut pol = docs::policy("std", 14, 1);
    pol["crash_consistent"] = json!(true);
    let mut tgt = docs::target("std", "t", json!({"instance_ids": ["i-1"]}));
    tgt["exclude"] = json!({"volume_tags": {"NoBackup": "*"}, "root_volumes": true});
    let r = runner::run_target(&c, &p(&pol), &t(&tgt), &opts())
        .await
        .unwrap();
    assert!(r.failures.is_empty(), "{:?}", r.failures);
    assert_eq!(
        set.num_calls(),
        1,
        "one CreateSnapshots with both exclusions"
    );
    assert_eq!(single.num_calls(), 0);
    assert_eq!(r.created.len(), 1);
    assert_eq!(r.created[0].volume_id, "vol-data");
}

/// Issue 25 item 3: a volume restored from an ebssnap snapshot carries that snapshot's
/// `ebssnap:*` tags. `CreateSnapshots` with `CopyTagsFromSource=volume` would hand them on (the
/// emulator ignores that flag, hence mocks), and the new snapshot would join the old volume's
/// pair. Such an instance is snapshotted volume by volume, each with its own identity tags.
#[tokio::test]
async fn a_set_over_a_volume_carrying_ebssnap_tags_keeps_each_snapshot_in_its_own_pair() {
    let instances = mock!(Ec2::describe_instances).then_output(|| {
        instance(
            "i-1",
            &[("/dev/xvda", "vol-root"), ("/dev/sdf", "vol-restored")],
        )
    });
    let volumes = mock!(Ec2::describe_volumes).then_output(|| {
        DescribeVolumesOutput::builder()
            .volumes(volume(
                "vol-root",
                Some(("i-1", "/dev/xvda")),
                &[("App", "db")],
            ))
            .volumes(volume(
                "vol-restored",
                Some(("i-1", "/dev/sdf")),
                &[
                    ("App", "db"),
                    ("ebssnap:policy", "std"),
                    ("ebssnap:target", "other"),
                    ("ebssnap:volume", "vol-old"),
                    ("ebssnap:run", "2026-11-01T05:00:00Z"),
                ],
            ))
            .build()
    });
    let set = mock!(Ec2::create_snapshots).then_output(|| CreateSnapshotsOutput::builder().build());
    let own_pair = |vol: &'static str, snap: &'static str| {
        mock!(Ec2::create_snapshot)
            .match_requests(move |r| {
                let tags: Vec<(&str, &str)> = r
                    .tag_specifications()
                    .iter()
                    .flat_map(|s| s.tags())
                    .map(|t| (t.key().unwrap_or(""), t.value().unwrap_or("")))
                    .collect();
                let ebssnap: Vec<&(&str, &str)> = tags
                    .iter()
                    .filter(|(k, _)| k.starts_with("ebssnap:"))
                    .collect();
                r.volume_id() == Some(vol)
                    && ebssnap
                        == [
                            &("ebssnap:policy", "std"),
                            &("ebssnap:target", "t"),
                            &("ebssnap:run", "r1"),
                            &("ebssnap:volume", vol),
                        ]
                    && tags.contains(&("App", "db"))
            })
            .then_output(move || CreateSnapshotOutput::builder().snapshot_id(snap).build())
    };
    let root = own_pair("vol-root", "snap-r");
    let restored = own_pair("vol-restored", "snap-n");
    let snaps = no_snapshots();
    let c = clients(&[&instances, &volumes, &set, &root, &restored, &snaps]);
    let mut pol = docs::policy("std", 14, 1);
    pol["crash_consistent"] = json!(true);
    let tgt = docs::target("std", "t", json!({"instance_ids": ["i-1"]}));
    let r = runner::run_target(&c, &p(&pol), &t(&tgt), &opts())
        .await
        .unwrap();
    assert!(r.failures.is_empty(), "{:?}", r.failures);
    assert_eq!(
        set.num_calls(),
        0,
        "no set over a volume carrying ebssnap tags"
    );
    assert_eq!((root.num_calls(), restored.num_calls()), (1, 1));
}

/// With `copy_volume_tags = false` a set does not copy the volumes' tags either.
#[tokio::test]
async fn a_set_copies_volume_tags_only_when_the_policy_does() {
    let instances = mock!(Ec2::describe_instances)
        .then_output(|| instance("i-1", &[("/dev/xvda", "vol-root")]));
    let volumes = mock!(Ec2::describe_volumes).then_output(|| {
        DescribeVolumesOutput::builder()
            .volumes(volume(
                "vol-root",
                Some(("i-1", "/dev/xvda")),
                &[("App", "db")],
            ))
            .build()
    });
    let set = mock!(Ec2::create_snapshots)
        .match_requests(|r| r.copy_tags_from_source().is_none())
        .then_output(|| {
            CreateSnapshotsOutput::builder()
                .snapshots(
                    SnapshotInfo::builder()
                        .snapshot_id("snap-r")
                        .volume_id("vol-root")
                        .build(),
                )
                .build()
        });
    let snaps = no_snapshots();
    let c = clients(&[&instances, &volumes, &set, &snaps]);
    let mut pol = docs::policy("std", 14, 1);
    pol["crash_consistent"] = json!(true);
    pol["tags"]["copy_volume_tags"] = json!(false);
    let tgt = docs::target("std", "t", json!({"instance_ids": ["i-1"]}));
    let r = runner::run_target(&c, &p(&pol), &t(&tgt), &opts())
        .await
        .unwrap();
    assert!(r.failures.is_empty(), "{:?}", r.failures);
    assert_eq!(set.num_calls(), 1);
}

#[tokio::test]
async fn pages_are_followed_and_pending_snapshots_never_deleted() {
    let volumes = mock!(Ec2::describe_volumes).then_output(|| {
        DescribeVolumesOutput::builder()
            .volumes(volume("vol-1", None, &[("B", "y")]))
            .build()
    });
    // Two pages of snapshots: the first ends with a token (and holds only a pending one).
    let page1 = mock!(Ec2::describe_snapshots)
        .match_requests(|r| r.next_token().is_none())
        .then_output(|| {
            DescribeSnapshotsOutput::builder()
                .snapshots(managed("snap-pending", "vol-1", SnapshotState::Pending, 90))
                .next_token("page-2")
                .build()
        });
    let page2 = mock!(Ec2::describe_snapshots)
        .match_requests(|r| r.next_token() == Some("page-2"))
        .then_output(|| {
            DescribeSnapshotsOutput::builder()
                .snapshots(managed("snap-new", "vol-1", SnapshotState::Completed, 1))
                .snapshots(managed("snap-old", "vol-1", SnapshotState::Completed, 60))
                .snapshots(managed("snap-err", "vol-1", SnapshotState::Error, 60))
                .build()
        });
    let create = mock!(Ec2::create_snapshot).then_output(|| {
        CreateSnapshotOutput::builder()
            .snapshot_id("snap-now")
            .build()
    });
    let delete = mock!(Ec2::delete_snapshot)
        .match_requests(|r| matches!(r.snapshot_id(), Some("snap-old" | "snap-err")))
        .then_output(|| DeleteSnapshotOutput::builder().build());
    let c = clients(&[&volumes, &page1, &page2, &create, &delete]);
    let tgt = docs::target("std", "t", json!({"volume_tags": {"B": "y"}}));
    let r = runner::run_target(&c, &p(&docs::policy("std", 14, 1)), &t(&tgt), &opts())
        .await
        .unwrap();
    assert!(r.failures.is_empty(), "{:?}", r.failures);
    // Both pages read twice: by the listing of the run's own snapshots before the creations and
    // by the history listing before pruning (the mock answers both alike).
    assert_eq!(r.api_calls.calls["DescribeSnapshots"], 4, "both pages read");
    let deleted: Vec<&str> = r.deleted.iter().map(|d| d.snapshot_id.as_str()).collect();
    assert_eq!(
        deleted,
        ["snap-err", "snap-old"],
        "pending kept; error pruned by age"
    );
    let errors: Vec<&str> = r
        .error_snapshots
        .iter()
        .map(|e| e.snapshot_id.as_str())
        .collect();
    assert_eq!(errors, ["snap-err"]);
    assert_eq!(r.error_snapshots[0].volume_id, "vol-1");
    assert_eq!(
        r.kept, 3,
        "pending, the newest completed (the minimum), the new one"
    );
}

#[tokio::test]
async fn a_per_volume_rate_limit_is_retried_with_backoff() {
    let volumes = mock!(Ec2::describe_volumes).then_output(|| {
        DescribeVolumesOutput::builder()
            .volumes(volume("vol-1", None, &[("B", "y")]))
            .build()
    });
    let snaps = no_snapshots();
    let create = mock!(Ec2::create_snapshot)
        .sequence()
        .error(|| {
            CreateSnapshotError::generic(
                ErrorMetadata::builder()
                    .code("SnapshotCreationPerVolumeRateExceeded")
                    .message(
                        "The maximum per volume CreateSnapshot request rate has been exceeded.",
                    )
                    .build(),
            )
        })
        .times(2)
        .output(|| {
            CreateSnapshotOutput::builder()
                .snapshot_id("snap-1")
                .build()
        })
        .build();
    let c = clients(&[&volumes, &snaps, &create]);
    let tgt = docs::target("std", "t", json!({"volume_tags": {"B": "y"}}));
    let r = runner::run_target(&c, &p(&docs::policy("std", 14, 1)), &t(&tgt), &opts())
        .await
        .unwrap();
    assert!(r.failures.is_empty(), "{:?}", r.failures);
    assert_eq!(r.created.len(), 1);
    assert_eq!(r.api_calls.calls["CreateSnapshot"], 3);

    // With too few attempts the failure is reported with its code, as retryable.
    let create = mock!(Ec2::create_snapshot).then_error(|| {
        CreateSnapshotError::generic(
            ErrorMetadata::builder()
                .code("SnapshotCreationPerVolumeRateExceeded")
                .build(),
        )
    });
    let snaps = no_snapshots();
    let c = clients(&[&volumes, &snaps, &create]);
    let o = RunOptions {
        create_attempts: 2,
        ..opts()
    };
    let r = runner::run_target(&c, &p(&docs::policy("std", 14, 1)), &t(&tgt), &o)
        .await
        .unwrap();
    assert_eq!(r.failures.len(), 1);
    assert_eq!(r.failures[0].code, "SnapshotCreationPerVolumeRateExceeded");
    assert!(r.failures[0].retryable);
}

#[tokio::test]
async fn past_the_deadline_no_new_work_starts_and_the_rest_is_reported() {
    let volumes = mock!(Ec2::describe_volumes).then_output(|| {
        DescribeVolumesOutput::builder()
            .volumes(volume("vol-1", None, &[("B", "y")]))
            .volumes(volume("vol-2", None, &[("B", "y")]))
            .build()
    });
    let snaps = mock!(Ec2::describe_snapshots).then_output(|| {
        DescribeSnapshotsOutput::builder()
            .snapshots(managed("snap-a", "vol-1", SnapshotState::Completed, 90))
            .snapshots(managed("snap-b", "vol-1", SnapshotState::Completed, 91))
            .build()
    });
    let create = mock!(Ec2::create_snapshot)
        .then_output(|| CreateSnapshotOutput::builder().snapshot_id("x").build());
    let c = clients(&[&volumes, &snaps, &create]);
    let tgt = docs::target("std", "t", json!({"volume_tags": {"B": "y"}}));
    let o = RunOptions {
        stop_at: Some(Instant::now()),
        ..opts()
    };
    let r = runner::run_target(&c, &p(&docs::policy("std", 14, 1)), &t(&tgt), &o)
        .await
        .unwrap();
    assert_eq!(create.num_calls(), 0);
    assert!(!r.api_calls.calls.contains_key("DeleteSnapshot"));
    // Without a chain to continue in, what was not started is a failure, never a quiet skip.
    assert_eq!(r.failures.len(), 2);
    assert!(
        r.failures
            .iter()
            .all(|f| f.code == "NotStarted" && f.retryable)
    );
    assert_eq!(r.kept, 2, "the due deletion was not started");
}

#[tokio::test]
async fn a_sweep_turns_error_state_snapshots_into_a_snapshot_failed_ticket() {
    let receiver = crate::tickets::Receiver::start(vec![]);
    let target_doc = docs::target("std", "web", json!({"volume_tags": {"B": "y"}}));
    let (list, get) = web_schedule(target_doc.to_string(), true);
    let volumes = mock!(Ec2::describe_volumes).then_output(|| {
        DescribeVolumesOutput::builder()
            .volumes(volume("vol-1", None, &[("B", "y")]))
            .build()
    });
    let snaps = mock!(Ec2::describe_snapshots).then_output(|| {
        let mut err = managed("snap-err", "vol-1", SnapshotState::Error, 1);
        err.tags = Some(vec![
            tag("ebssnap:policy", "std"),
            tag("ebssnap:target", "web"),
            tag("ebssnap:volume", "vol-1"),
        ]);
        let mut ok = managed("snap-ok", "vol-1", SnapshotState::Completed, 0);
        ok.tags = err.tags.clone();
        DescribeSnapshotsOutput::builder()
            .snapshots(err)
            .snapshots(ok)
            .build()
    });
    let c = clients_with(&[&volumes, &snaps], &[&list, &get]);
    let mut pol = docs::policy("std", 14, 1);
    pol["notify"] = json!({"webhook_url": receiver.url()});
    let r = runner::sweep(&c, &p(&pol), &opts()).await.unwrap();
    assert_eq!(r.error_snapshots.len(), 1);
    assert!(
        r.overdue.is_empty(),
        "a fresh completed snapshot: not overdue"
    );
    assert_eq!(
        r.ticket.as_ref().map(|t| t.delivered),
        Some(true),
        "{:?}",
        r.ticket
    );
    let got = receiver.received();
    assert_eq!(got.len(), 1);
    let t = got[0].json();
    assert_eq!(t["event"], "snapshot.failed");
    assert_eq!(t["failures"][0]["code"], "SnapshotError");
    assert_eq!(t["failures"][0]["snapshot_id"], "snap-err");
    assert_eq!(t["failures"][0]["volume_id"], "vol-1");
    assert_eq!(t["failures"][0]["dedup_key"], "std/web/snap-err");
    assert_eq!(t["run"]["kind"], "sweep");
}

/// A sweep that finds a previously overdue volume healthy again (the gap between its two newest
/// restore points is over two intervals, the newest within two) sends `snapshot.recovered`.
/// moto cannot backdate snapshots, so the listing is mocked.
#[tokio::test]
async fn a_sweep_finds_a_previously_overdue_volume_recovered() {
    let receiver = crate::tickets::Receiver::start(vec![]);
    let input = docs::target("std", "web", json!({"volume_tags": {"B": "y"}})).to_string();
    let (list, get) = web_schedule(input, false);
    let volumes = mock!(Ec2::describe_volumes).then_output(|| {
        DescribeVolumesOutput::builder()
            .volumes(volume("vol-1", None, &[("B", "y")]))
            .volumes(volume("vol-2", None, &[("B", "y")]))
            .build()
    });
    let point = |id: &str, vol: &str, run: &str, age: i64| {
        snapshot(
            id,
            vol,
            SnapshotState::Completed,
            age,
            &[
                ("ebssnap:policy", "std"),
                ("ebssnap:target", "web"),
                ("ebssnap:volume", vol),
                ("ebssnap:run", run),
            ],
        )
    };
    let snaps = mock!(Ec2::describe_snapshots).then_output(move || {
        DescribeSnapshotsOutput::builder()
            // vol-1: a 5-day gap, then today's snapshot: it was overdue, and is back.
            .snapshots(point("snap-1-new", "vol-1", "r6", 0))
            .snapshots(point("snap-1-old", "vol-1", "r1", 5))
            // vol-2: daily snapshots: healthy all along, nothing to say.
            .snapshots(point("snap-2-new", "vol-2", "r6", 0))
            .snapshots(point("snap-2-old", "vol-2", "r5", 1))
            .build()
    });
    let c = clients_with(&[&volumes, &snaps], &[&list, &get]);
    let mut pol = docs::policy("std", 14, 1);
    pol["notify"] = json!({"webhook_url": receiver.url()});
    let r = runner::sweep(&c, &p(&pol), &opts()).await.unwrap();
    assert!(r.overdue.is_empty());
    let back: Vec<&str> = r.recovered.iter().map(|v| v.volume_id.as_str()).collect();
    assert_eq!(back, ["vol-1"]);
    let got = receiver.received();
    assert_eq!(got.len(), 1);
    let t = got[0].json();
    assert_eq!(t["event"], "snapshot.recovered");
    assert!(
        t["resolves"]
            .as_array()
            .unwrap()
            .contains(&json!("std/web/vol-1/volume"))
    );
}

/// Issue 25 item 11: the sweep that reported a volume overdue and the later sweep that finds it
/// healthy again, end to end: the `snapshot.recovered` ticket names the overdue ticket's own
/// problem key, so a ticket system closes exactly that incident.
#[tokio::test]
async fn the_recovered_ticket_resolves_the_overdue_tickets_problem() {
    let receiver = crate::tickets::Receiver::start(vec![]);
    let input = docs::target("std", "web", json!({"volume_tags": {"B": "y"}})).to_string();
    let mut pol = docs::policy("std", 14, 1);
    pol["notify"] = json!({"webhook_url": receiver.url()});
    let point = |id: &str, run: &str, age: i64| {
        snapshot(
            id,
            "vol-1",
            SnapshotState::Completed,
            age,
            &[
                ("ebssnap:policy", "std"),
                ("ebssnap:target", "web"),
                ("ebssnap:volume", "vol-1"),
                ("ebssnap:run", run),
            ],
        )
    };
    let volumes = || {
        mock!(Ec2::describe_volumes).then_output(|| {
            DescribeVolumesOutput::builder()
                .volumes(volume("vol-1", None, &[("B", "y")]))
                .build()
        })
    };
    // Sweep 1: the newest restore point is 5 days old on a daily schedule: overdue.
    let (list, get) = web_schedule(input.clone(), false);
    let (vols, old) = (
        volumes(),
        mock!(Ec2::describe_snapshots).then_output(move || {
            DescribeSnapshotsOutput::builder()
                .snapshots(point("snap-old", "r1", 5))
                .build()
        }),
    );
    let c = clients_with(&[&vols, &old], &[&list, &get]);
    let r = runner::sweep(&c, &p(&pol), &opts()).await.unwrap();
    assert_eq!(r.overdue.len(), 1, "{:?}", r.overdue);
    // Sweep 2: today's run snapshotted it again.
    let (list, get) = web_schedule(input, false);
    let (vols, back) = (
        volumes(),
        mock!(Ec2::describe_snapshots).then_output(move || {
            DescribeSnapshotsOutput::builder()
                .snapshots(point("snap-new", "r6", 0))
                .snapshots(point("snap-old", "r1", 5))
                .build()
        }),
    );
    let c = clients_with(&[&vols, &back], &[&list, &get]);
    let r = runner::sweep(&c, &p(&pol), &opts()).await.unwrap();
    assert!(r.overdue.is_empty());
    assert_eq!(r.recovered.len(), 1);

    let got = receiver.received();
    assert_eq!(got.len(), 2, "one overdue ticket, one recovery");
    let (overdue, recovered) = (got[0].json(), got[1].json());
    assert_eq!(overdue["event"], "snapshot.overdue");
    assert_eq!(recovered["event"], "snapshot.recovered");
    let problem = overdue["failures"][0]["problem_key"].clone();
    assert!(problem.is_string(), "{overdue}");
    assert!(
        recovered["resolves"].as_array().unwrap().contains(&problem),
        "{problem} not resolved by {recovered}"
    );
}

/// Scheduler answering for policy `std` with one target `web` (daily at 05:00 UTC, `input`).
fn web_schedule(input: String, with_policy: bool) -> (Rule, Rule) {
    use aws_sdk_scheduler::Client as Sched;
    use aws_sdk_scheduler::operation::get_schedule::GetScheduleOutput;
    use aws_sdk_scheduler::operation::list_schedules::ListSchedulesOutput;
    use aws_sdk_scheduler::types::{ScheduleState, ScheduleSummary, Target};

    let list = mock!(Sched::list_schedules).then_output(move || {
        let mut out = ListSchedulesOutput::builder();
        if with_policy {
            out = out.schedules(ScheduleSummary::builder().name("_policy").build());
        }
        out.schedules(ScheduleSummary::builder().name("web").build())
            .build()
            .unwrap()
    });
    let get = mock!(Sched::get_schedule)
        .match_requests(|r| r.name() == Some("web"))
        .then_output(move || {
            GetScheduleOutput::builder()
                .name("web")
                .schedule_expression("cron(0 5 * * ? *)")
                .schedule_expression_timezone("UTC")
                .state(ScheduleState::Enabled)
                .target(
                    Target::builder()
                        .arn("arn:aws:lambda:us-east-1:123456789012:function:ebssnap")
                        .role_arn("arn:aws:iam::123456789012:role/r")
                        .input(input.clone())
                        .build()
                        .unwrap(),
                )
                .build()
        });
    (list, get)
}

/// Sharing with more accounts than AWS takes in one `ModifySnapshotAttribute` (500) sends the
/// rest in further calls, each adding only `createVolumePermission`.
#[tokio::test]
async fn sharing_with_more_than_500_accounts_takes_several_calls() {
    let sizes = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen = sizes.clone();
    let share = mock!(Ec2::modify_snapshot_attribute)
        .match_requests(move |r| {
            let ok = r.snapshot_id() == Some("snap-1")
                && r.attribute()
                    == Some(&aws_sdk_ec2::types::SnapshotAttributeName::CreateVolumePermission)
                && r.operation_type() == Some(&aws_sdk_ec2::types::OperationType::Add);
            seen.lock().unwrap().push(r.user_ids().len());
            ok
        })
        .then_output(|| {
            aws_sdk_ec2::operation::modify_snapshot_attribute::ModifySnapshotAttributeOutput::builder()
                .build()
        });
    let c = clients(&[&share]);
    let accounts: Vec<String> = (0..501)
        .map(|i| format!("{:012}", 100_000_000_000u64 + i))
        .collect();
    ebssnap::aws::ec2::share_snapshot(&c.ec2_writes, "snap-1", &accounts)
        .await
        .expect("shared");
    assert_eq!(share.num_calls(), 2);
    assert_eq!(*sizes.lock().unwrap(), vec![500, 1]);
}
