//! The IAM policies ebssnap needs, generated from the one table of the AWS operations the runner
//! calls, so the policy cannot drift from the code (a test compares this table with the
//! operations counted in the emulator tests).

use serde_json::{Value, json};

/// Every AWS operation the runner calls, with the IAM action it needs. `None`: no permission is
/// needed (`GetCallerIdentity` always works).
pub const RUNNER_OPERATIONS: &[(&str, Option<&str>)] = &[
    ("DescribeInstances", Some("ec2:DescribeInstances")),
    ("DescribeVolumes", Some("ec2:DescribeVolumes")),
    ("DescribeSnapshots", Some("ec2:DescribeSnapshots")),
    ("CreateSnapshot", Some("ec2:CreateSnapshot")),
    ("CreateSnapshots", Some("ec2:CreateSnapshots")),
    ("DeleteSnapshot", Some("ec2:DeleteSnapshot")),
    // Disaster-recovery copies into the policies' copy Regions (docs/design.md §13).
    ("CopySnapshot", Some("ec2:CopySnapshot")),
    // Sharing restore points with vault accounts, unless their key is AWS-managed.
    (
        "ModifySnapshotAttribute",
        Some("ec2:ModifySnapshotAttribute"),
    ),
    ("DescribeKey", Some("kms:DescribeKey")),
    // Restore tests: a volume from a restore point, deleted again; the outcome tagged on the
    // snapshot.
    (
        "DescribeAvailabilityZones",
        Some("ec2:DescribeAvailabilityZones"),
    ),
    ("CreateVolume", Some("ec2:CreateVolume")),
    ("DeleteVolume", Some("ec2:DeleteVolume")),
    ("CreateTags", Some("ec2:CreateTags")),
    (
        "DescribeAutoScalingGroups",
        Some("autoscaling:DescribeAutoScalingGroups"),
    ),
    ("GetSchedule", Some("scheduler:GetSchedule")),
    ("ListSchedules", Some("scheduler:ListSchedules")),
    // `report_unprotected`: the sweep reads every ebssnap policy's targets for the coverage.
    ("ListScheduleGroups", Some("scheduler:ListScheduleGroups")),
    // A run near the Lambda deadline continues in an invocation of its own function.
    ("Invoke", Some("lambda:InvokeFunction")),
    // Failure channels: a policy's webhook secret, a policy's SNS topic.
    ("GetSecretValue", Some("secretsmanager:GetSecretValue")),
    ("Publish", Some("sns:Publish")),
    ("GetCallerIdentity", None),
];

/// The IAM action of an operation the runner calls; `Err` for an operation the table lacks.
pub fn action_for(operation: &str) -> Result<Option<&'static str>, String> {
    RUNNER_OPERATIONS
        .iter()
        .find(|(op, _)| *op == operation)
        .map(|(_, a)| *a)
        .ok_or_else(|| format!("the runner calls {operation}, which src/core/iam.rs does not list"))
}

/// What the policies are scoped to.
#[derive(Debug, Clone)]
pub struct Scope {
    pub partition: String,
    /// Policy names whose snapshots and schedules the runner may touch (`*` = all).
    pub policies: Vec<String>,
    /// The runner Lambda function's ARN, for the Scheduler role (`*` = any).
    pub runner_arn: String,
    /// Secrets Manager secrets of the policies' webhooks (`secretsmanager:GetSecretValue` on
    /// exactly these; none: no statement).
    pub webhook_secret_arns: Vec<String>,
    /// KMS keys those secrets are encrypted with, when not the AWS-managed key (`kms:Decrypt`).
    pub kms_key_arns: Vec<String>,
    /// SNS topics of the policies' failure channel (`sns:Publish` on exactly these).
    pub sns_topic_arns: Vec<String>,
    /// A policy sets `report_unprotected`: its sweep reads every ebssnap policy's schedules
    /// (read-only) to compute the account's coverage.
    pub report_unprotected: bool,
    /// The policies' copy Regions: the runner may copy restore points into them (tagged with
    /// one of the policies), and delete there only snapshots so tagged.
    pub copy_regions: Vec<String>,
    /// KMS keys of the copies (`kms_key_id` of `copy` blocks): EBS uses them on the runner's
    /// behalf (grants, data keys), only through EC2 in the runner's and the copy Regions.
    pub copy_kms_key_arns: Vec<String>,
    /// Vault accounts of the policies' `share` blocks: the runner may add exactly these to
    /// `createVolumePermission` of the policies' restore points, and describe the account's keys
    /// (is a restore point's key AWS-managed?).
    pub share_account_ids: Vec<String>,
}

impl Default for Scope {
    fn default() -> Self {
        Scope {
            partition: "aws".into(),
            policies: vec!["*".into()],
            runner_arn: "*".into(),
            webhook_secret_arns: Vec::new(),
            kms_key_arns: Vec::new(),
            sns_topic_arns: Vec::new(),
            report_unprotected: false,
            copy_regions: Vec::new(),
            copy_kms_key_arns: Vec::new(),
            share_account_ids: Vec::new(),
        }
    }
}

fn action(op: &str) -> &'static str {
    action_for(op).ok().flatten().unwrap_or("")
}

/// The parts of a Lambda function ARN (`arn:<partition>:lambda:<region>:<account>:function:<name>`,
/// optionally with a qualifier).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FunctionArn {
    pub region: String,
    pub account: String,
    pub name: String,
}

impl FunctionArn {
    pub fn parse(arn: &str) -> Option<FunctionArn> {
        let parts: Vec<&str> = arn.split(':').collect();
        match parts.as_slice() {
            ["arn", _, "lambda", region, account, "function", name, ..]
                if !region.is_empty() && account.len() == 12 && !name.is_empty() =>
            {
                Some(FunctionArn {
                    region: region.to_string(),
                    account: account.to_string(),
                    name: name.to_string(),
                })
            }
            _ => None,
        }
    }
}

impl Scope {
    /// The runner function, when `runner_arn` names one.
    fn function(&self) -> Option<FunctionArn> {
        FunctionArn::parse(&self.runner_arn)
    }

    /// (region, account) the runner lives in, `*` when unknown.
    fn place(&self) -> (String, String) {
        self.function()
            .map_or(("*".into(), "*".into()), |f| (f.region, f.account))
    }

    /// The function and its versions and aliases (`*` when unknown).
    fn function_resources(&self) -> Value {
        if self.function().is_some() {
            json!([self.runner_arn.clone(), format!("{}:*", self.runner_arn)])
        } else {
            json!("*")
        }
    }

    /// A condition on tag values: exact names, or any value when the scope is all policies.
    fn tag_condition(&self, key: &str) -> Value {
        if self.policies.iter().any(|p| p.contains('*')) {
            json!({"StringLike": {key: self.policies.clone()}})
        } else {
            json!({"StringEquals": {key: self.policies.clone()}})
        }
    }
}

/// The runner's execution-role policy: read the fleet; create snapshots only when the request
/// tags them with one of the policies; delete only snapshots tagged with one of the policies;
/// for restore tests, create volumes only from those snapshots and only tagged
/// `ebssnap:restore-test` with one of the policies, delete only such volumes, and add to the
/// policies' snapshots only the tags `ebssnap:restore-tested` and `ebssnap:restore-failed`; read
/// the policies' schedules; invoke only its own function; write only its own log group.
pub fn runner_policy(s: &Scope) -> Value {
    let p = &s.partition;
    let (region, account) = s.place();
    let schedule_arns: Vec<String> = s
        .policies
        .iter()
        .map(|n| format!("arn:{p}:scheduler:{region}:{account}:schedule/ebssnap-{n}/*"))
        .collect();
    let log_group = match s.function() {
        Some(f) => format!(
            "arn:{p}:logs:{}:{}:log-group:/aws/lambda/{}:*",
            f.region, f.account, f.name
        ),
        None => format!("arn:{p}:logs:*:*:log-group:/aws/lambda/*:*"),
    };
    let mut policy = json!({
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "ReadFleet",
                "Effect": "Allow",
                "Action": [
                    action("DescribeInstances"),
                    action("DescribeVolumes"),
                    action("DescribeSnapshots"),
                    action("DescribeAutoScalingGroups"),
                    action("DescribeAvailabilityZones")
                ],
                "Resource": "*"
            },
            {
                "Sid": "SnapshotVolumes",
                "Effect": "Allow",
                "Action": [action("CreateSnapshot"), action("CreateSnapshots")],
                "Resource": [
                    format!("arn:{p}:ec2:{region}:{account}:volume/*"),
                    format!("arn:{p}:ec2:{region}:{account}:instance/*")
                ]
            },
            {
                "Sid": "CreateOnlyPolicyTaggedSnapshots",
                "Effect": "Allow",
                "Action": [action("CreateSnapshot"), action("CreateSnapshots")],
                "Resource": format!("arn:{p}:ec2:{region}::snapshot/*"),
                "Condition": s.tag_condition("aws:RequestTag/ebssnap:policy")
            },
            {
                "Sid": "TagSnapshotsAtCreation",
                "Effect": "Allow",
                "Action": "ec2:CreateTags",
                "Resource": format!("arn:{p}:ec2:{region}::snapshot/*"),
                "Condition": {"StringEquals": {"ec2:CreateAction": ["CreateSnapshot", "CreateSnapshots"]}}
            },
            {
                "Sid": "DeleteOnlyPolicySnapshots",
                "Effect": "Allow",
                "Action": action("DeleteSnapshot"),
                "Resource": format!("arn:{p}:ec2:{region}::snapshot/*"),
                "Condition": s.tag_condition("ec2:ResourceTag/ebssnap:policy")
            },
            {
                "Sid": "RestoreTestsFromPolicySnapshots",
                "Effect": "Allow",
                "Action": action("CreateVolume"),
                "Resource": format!("arn:{p}:ec2:{region}::snapshot/*"),
                "Condition": s.tag_condition("aws:ResourceTag/ebssnap:policy")
            },
            {
                "Sid": "CreateOnlyRestoreTestVolumes",
                "Effect": "Allow",
                "Action": action("CreateVolume"),
                "Resource": format!("arn:{p}:ec2:{region}:{account}:volume/*"),
                "Condition": s.tag_condition("aws:RequestTag/ebssnap:restore-test")
            },
            {
                "Sid": "TagVolumesAtCreation",
                "Effect": "Allow",
                "Action": action("CreateTags"),
                "Resource": format!("arn:{p}:ec2:{region}:{account}:volume/*"),
                "Condition": {"StringEquals": {"ec2:CreateAction": "CreateVolume"}}
            },
            {
                "Sid": "DeleteOnlyRestoreTestVolumes",
                "Effect": "Allow",
                "Action": action("DeleteVolume"),
                "Resource": format!("arn:{p}:ec2:{region}:{account}:volume/*"),
                "Condition": s.tag_condition("ec2:ResourceTag/ebssnap:restore-test")
            },
            {
                "Sid": "DeleteExpiredRestoreVolumes",
                "Effect": "Allow",
                "Action": action("DeleteVolume"),
                "Resource": format!("arn:{p}:ec2:{region}:{account}:volume/*"),
                "Condition": s.tag_condition("ec2:ResourceTag/ebssnap:restore-policy")
            },
            mark_tested_snapshots(s, json!(format!("arn:{p}:ec2:{region}::snapshot/*"))),
            {
                "Sid": "ReadPolicyDocuments",
                "Effect": "Allow",
                "Action": action("GetSchedule"),
                "Resource": schedule_arns
            },
            {
                "Sid": "ContinueRunsInItself",
                "Effect": "Allow",
                "Action": action("Invoke"),
                "Resource": s.function_resources()
            },
            {
                "Sid": "ListSchedules",
                "Effect": "Allow",
                "Action": action("ListSchedules"),
                "Resource": "*"
            },
            {
                "Sid": "OwnLogGroup",
                "Effect": "Allow",
                "Action": ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"],
                "Resource": log_group
            }
        ]
    });
    let mut extra = Vec::new();
    if !s.webhook_secret_arns.is_empty() {
        extra.push(json!({
            "Sid": "ReadWebhookSecrets",
            "Effect": "Allow",
            "Action": action("GetSecretValue"),
            "Resource": s.webhook_secret_arns
        }));
    }
    if !s.kms_key_arns.is_empty() {
        extra.push(json!({
            "Sid": "DecryptWebhookSecrets",
            "Effect": "Allow",
            "Action": "kms:Decrypt",
            "Resource": s.kms_key_arns,
            "Condition": {"StringLike": {"kms:ViaService": "secretsmanager.*.amazonaws.com"}}
        }));
    }
    if !s.sns_topic_arns.is_empty() {
        extra.push(json!({
            "Sid": "PublishTickets",
            "Effect": "Allow",
            "Action": action("Publish"),
            "Resource": s.sns_topic_arns
        }));
    }
    if !s.copy_regions.is_empty() {
        let snapshots: Vec<String> = s
            .copy_regions
            .iter()
            .map(|r| format!("arn:{p}:ec2:{r}::snapshot/*"))
            .collect();
        let mut copy_resources = snapshots.clone();
        // The source restore points, in the runner's own Region.
        copy_resources.push(format!("arn:{p}:ec2:{region}::snapshot/*"));
        extra.push(json!({
            "Sid": "CopyOnlyPolicyTaggedSnapshots",
            "Effect": "Allow",
            "Action": action("CopySnapshot"),
            "Resource": copy_resources,
            "Condition": s.tag_condition("aws:RequestTag/ebssnap:policy")
        }));
        extra.push(json!({
            "Sid": "TagCopiesAtCreation",
            "Effect": "Allow",
            "Action": "ec2:CreateTags",
            "Resource": snapshots.clone(),
            "Condition": {"StringEquals": {"ec2:CreateAction": "CopySnapshot"}}
        }));
        extra.push(json!({
            "Sid": "DeleteOnlyPolicyCopies",
            "Effect": "Allow",
            "Action": action("DeleteSnapshot"),
            "Resource": snapshots,
            "Condition": s.tag_condition("ec2:ResourceTag/ebssnap:policy")
        }));
    }
    if !s.copy_kms_key_arns.is_empty() {
        let mut via: Vec<String> = s
            .copy_regions
            .iter()
            .map(|r| format!("ec2.{r}.amazonaws.com"))
            .collect();
        if region != "*" {
            via.push(format!("ec2.{region}.amazonaws.com"));
        }
        if via.is_empty() {
            via.push("ec2.*.amazonaws.com".into());
        }
        extra.push(json!({
            "Sid": "EncryptCopiesThroughEbs",
            "Effect": "Allow",
            "Action": [
                "kms:Decrypt",
                "kms:DescribeKey",
                "kms:Encrypt",
                "kms:GenerateDataKeyWithoutPlaintext",
                "kms:ReEncryptFrom",
                "kms:ReEncryptTo"
            ],
            "Resource": s.copy_kms_key_arns,
            "Condition": {"StringLike": {"kms:ViaService": via.clone()}}
        }));
        extra.push(json!({
            "Sid": "GrantEbsTheCopyKeys",
            "Effect": "Allow",
            "Action": "kms:CreateGrant",
            "Resource": s.copy_kms_key_arns,
            "Condition": {
                "StringLike": {"kms:ViaService": via},
                "Bool": {"kms:GrantIsForAWSResource": "true"}
            }
        }));
    }
    if !s.share_account_ids.is_empty() {
        extra.push(json!({
            "Sid": "ShareOnlyPolicySnapshotsWithVaults",
            "Effect": "Allow",
            "Action": action("ModifySnapshotAttribute"),
            "Resource": format!("arn:{p}:ec2:{region}::snapshot/*"),
            "Condition": merge_conditions(
                s.tag_condition("ec2:ResourceTag/ebssnap:policy"),
                json!({"StringEquals": {
                    "ec2:Attribute": "createVolumePermission",
                    "ec2:Add/userId": s.share_account_ids
                }})
            )
        }));
        extra.push(json!({
            "Sid": "DescribeRestorePointKeys",
            "Effect": "Allow",
            "Action": action("DescribeKey"),
            "Resource": format!("arn:{p}:kms:{region}:{account}:key/*")
        }));
    }
    if s.report_unprotected {
        extra.push(json!({
            "Sid": "ListEveryPolicyForCoverage",
            "Effect": "Allow",
            "Action": action("ListScheduleGroups"),
            "Resource": "*"
        }));
        extra.push(json!({
            "Sid": "ReadEveryPolicyForCoverage",
            "Effect": "Allow",
            "Action": action("GetSchedule"),
            "Resource": format!("arn:{p}:scheduler:{region}:{account}:schedule/ebssnap-*/*")
        }));
    }
    if let Some(list) = policy["Statement"].as_array_mut() {
        list.extend(extra);
    }
    policy
}

/// The policy of a person (or pipeline) who restores with `ebssnap restore` (`--attach`,
/// `list`, `cleanup`) and runs `ebssnap restore-test` by hand: read the fleet and the policies'
/// documents; create volumes only from the policies' snapshots and only tagged
/// `ebssnap:restore-of`; attach, and delete, only volumes carrying that tag; add to the
/// policies' snapshots only the two restore-test tag keys.
pub fn operator_policy(s: &Scope) -> Value {
    let p = &s.partition;
    let (region, account) = s.place();
    // Restores happen in the runner's Region and, from the copies, in each copy Region.
    let mut regions = vec![region.clone()];
    regions.extend(s.copy_regions.iter().filter(|r| **r != region).cloned());
    let in_regions = |what: &str| -> Vec<String> {
        regions
            .iter()
            .map(|r| match what {
                "snapshot" => format!("arn:{p}:ec2:{r}::snapshot/*"),
                _ => format!("arn:{p}:ec2:{r}:{account}:{what}/*"),
            })
            .collect()
    };
    let volumes = in_regions("volume");
    let snapshots = in_regions("snapshot");
    let schedule_arns: Vec<String> = s
        .policies
        .iter()
        .map(|n| format!("arn:{p}:scheduler:{region}:{account}:schedule/ebssnap-{n}/*"))
        .collect();
    let restore_volume = json!({"Null": {"ec2:ResourceTag/ebssnap:restore-of": "false"}});
    json!({
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "ReadFleet",
                "Effect": "Allow",
                "Action": [
                    "ec2:DescribeInstances",
                    "ec2:DescribeVolumes",
                    "ec2:DescribeSnapshots",
                    "ec2:DescribeAvailabilityZones"
                ],
                "Resource": "*"
            },
            {
                "Sid": "ReadPolicyDocuments",
                "Effect": "Allow",
                "Action": "scheduler:GetSchedule",
                "Resource": schedule_arns
            },
            {
                "Sid": "RestoreFromPolicySnapshots",
                "Effect": "Allow",
                "Action": "ec2:CreateVolume",
                "Resource": snapshots.clone(),
                "Condition": s.tag_condition("aws:ResourceTag/ebssnap:policy")
            },
            {
                "Sid": "CreateOnlyRestoreVolumes",
                "Effect": "Allow",
                "Action": "ec2:CreateVolume",
                "Resource": volumes.clone(),
                "Condition": {"Null": {"aws:RequestTag/ebssnap:restore-of": "false"}}
            },
            {
                "Sid": "TagVolumesAtCreation",
                "Effect": "Allow",
                "Action": "ec2:CreateTags",
                "Resource": volumes.clone(),
                "Condition": {"StringEquals": {"ec2:CreateAction": "CreateVolume"}}
            },
            {
                "Sid": "AttachOnlyRestoreVolumes",
                "Effect": "Allow",
                "Action": "ec2:AttachVolume",
                "Resource": volumes.clone(),
                "Condition": restore_volume.clone()
            },
            {
                "Sid": "AttachToInstances",
                "Effect": "Allow",
                "Action": "ec2:AttachVolume",
                "Resource": in_regions("instance")
            },
            {
                "Sid": "DeleteOnlyRestoreVolumes",
                "Effect": "Allow",
                "Action": "ec2:DeleteVolume",
                "Resource": volumes,
                "Condition": restore_volume
            },
            mark_tested_snapshots(s, json!(snapshots))
        ]
    })
}

/// Adding a restore test's outcome to the policies' snapshots: only the two test tag keys.
fn mark_tested_snapshots(s: &Scope, snapshots: Value) -> Value {
    json!({
        "Sid": "MarkTestedSnapshots",
        "Effect": "Allow",
        "Action": action("CreateTags"),
        "Resource": snapshots,
        "Condition": merge_conditions(
            s.tag_condition("ec2:ResourceTag/ebssnap:policy"),
            json!({"ForAllValues:StringEquals": {"aws:TagKeys": [
                crate::core::restore_test::TAG_RESTORE_TESTED,
                crate::core::restore_test::TAG_RESTORE_FAILED
            ]}})
        )
    })
}

/// Two IAM condition blocks as one (both must hold).
fn merge_conditions(a: Value, b: Value) -> Value {
    let mut out = a;
    if let (Some(o), Some(more)) = (out.as_object_mut(), b.as_object()) {
        for (op, keys) in more {
            // One operator in both (`StringEquals`): its keys together.
            match (
                o.get_mut(op).and_then(Value::as_object_mut),
                keys.as_object(),
            ) {
                (Some(have), Some(add)) => {
                    have.extend(add.iter().map(|(k, v)| (k.clone(), v.clone())));
                }
                _ => {
                    o.insert(op.clone(), keys.clone());
                }
            }
        }
    }
    out
}

/// The policy of the role EventBridge Scheduler assumes: invoke the runner, nothing else.
pub fn scheduler_policy(s: &Scope) -> Value {
    json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Sid": "InvokeRunner",
            "Effect": "Allow",
            "Action": "lambda:InvokeFunction",
            "Resource": s.function_resources()
        }]
    })
}

/// Trust policy letting `service` (`scheduler.amazonaws.com`, `lambda.amazonaws.com`) assume a role.
pub fn assume_role_policy(service: &str) -> Value {
    json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Effect": "Allow",
            "Principal": {"Service": service},
            "Action": "sts:AssumeRole"
        }]
    })
}

/// Trust policy of the Scheduler role: only Scheduler, only for the schedule groups of these
/// policies in the runner's account (the confused-deputy conditions `aws:SourceAccount` and
/// `aws:SourceArn`; Scheduler sets the source ARN to the schedule group's).
pub fn scheduler_assume_role_policy(s: &Scope) -> Value {
    let mut policy = assume_role_policy("scheduler.amazonaws.com");
    if let Some(f) = s.function() {
        let groups: Vec<String> = s
            .policies
            .iter()
            .map(|n| {
                format!(
                    "arn:{}:scheduler:{}:{}:schedule-group/ebssnap-{n}",
                    s.partition, f.region, f.account
                )
            })
            .collect();
        policy["Statement"][0]["Condition"] = json!({
            "StringEquals": {"aws:SourceAccount": f.account},
            "ArnLike": {"aws:SourceArn": groups}
        });
    }
    policy
}

/// Every IAM action a policy document allows.
pub fn actions(policy: &Value) -> std::collections::BTreeSet<String> {
    let mut out = std::collections::BTreeSet::new();
    for st in policy["Statement"].as_array().into_iter().flatten() {
        match &st["Action"] {
            Value::String(a) => {
                out.insert(a.clone());
            }
            Value::Array(list) => {
                out.extend(list.iter().filter_map(|a| a.as_str().map(String::from)))
            }
            _ => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The statement `id` of a policy document.
    fn statement(p: &Value, id: &str) -> Value {
        p["Statement"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["Sid"] == id)
            .cloned()
            .unwrap_or_else(|| panic!("{id} missing: {p:#}"))
    }

    #[test]
    fn the_runner_policy_allows_exactly_the_table_plus_tagging_and_logs() {
        let scope = Scope {
            webhook_secret_arns: vec![
                "arn:aws:secretsmanager:us-east-1:1:secret:hook-AbCdEf".into(),
            ],
            kms_key_arns: vec!["arn:aws:kms:us-east-1:1:key/k".into()],
            sns_topic_arns: vec!["arn:aws:sns:us-east-1:1:failures".into()],
            report_unprotected: true,
            copy_regions: vec!["us-west-2".into()],
            share_account_ids: vec!["111122223333".into()],
            ..Scope::default()
        };
        let got = actions(&runner_policy(&scope));
        let mut want: std::collections::BTreeSet<String> = RUNNER_OPERATIONS
            .iter()
            .filter_map(|(_, a)| a.map(String::from))
            .collect();
        want.extend(
            [
                "ec2:CreateTags",
                "logs:CreateLogGroup",
                "logs:CreateLogStream",
                "logs:PutLogEvents",
                "kms:Decrypt",
            ]
            .map(String::from),
        );
        assert_eq!(got, want);
        // Without secrets or topics, no statement grants them.
        let bare = actions(&runner_policy(&Scope::default()));
        for a in [
            "ec2:CopySnapshot",
            "ec2:ModifySnapshotAttribute",
            "kms:DescribeKey",
            "scheduler:ListScheduleGroups",
            "secretsmanager:GetSecretValue",
            "kms:Decrypt",
            "sns:Publish",
        ] {
            assert!(!bare.contains(a), "{a}");
        }
    }

    #[test]
    fn copies_are_created_tagged_deleted_only_when_tagged_and_keys_used_only_through_ec2() {
        let p = runner_policy(&Scope {
            policies: vec!["std".into()],
            runner_arn: "arn:aws:lambda:us-east-1:123456789012:function:ebssnap".into(),
            copy_regions: vec!["us-west-2".into()],
            copy_kms_key_arns: vec!["arn:aws:kms:us-west-2:123456789012:key/k".into()],
            ..Scope::default()
        });
        let sid = |id: &str| statement(&p, id);
        let copy = sid("CopyOnlyPolicyTaggedSnapshots");
        assert_eq!(
            copy["Condition"],
            json!({"StringEquals": {"aws:RequestTag/ebssnap:policy": ["std"]}})
        );
        assert_eq!(
            copy["Resource"],
            json!([
                "arn:aws:ec2:us-west-2::snapshot/*",
                "arn:aws:ec2:us-east-1::snapshot/*"
            ])
        );
        assert_eq!(
            sid("DeleteOnlyPolicyCopies")["Resource"],
            json!(["arn:aws:ec2:us-west-2::snapshot/*"])
        );
        assert_eq!(
            sid("TagCopiesAtCreation")["Condition"],
            json!({"StringEquals": {"ec2:CreateAction": "CopySnapshot"}})
        );
        let grant = sid("GrantEbsTheCopyKeys");
        assert_eq!(
            grant["Condition"]["Bool"],
            json!({"kms:GrantIsForAWSResource": "true"})
        );
        assert_eq!(
            grant["Condition"]["StringLike"]["kms:ViaService"],
            json!(["ec2.us-west-2.amazonaws.com", "ec2.us-east-1.amazonaws.com"])
        );
        assert_eq!(
            sid("EncryptCopiesThroughEbs")["Resource"],
            json!(["arn:aws:kms:us-west-2:123456789012:key/k"])
        );
    }

    #[test]
    fn restore_tests_touch_only_their_own_volumes_and_two_snapshot_tags() {
        let p = runner_policy(&Scope {
            policies: vec!["std".into()],
            ..Scope::default()
        });
        let sid = |id: &str| {
            p["Statement"]
                .as_array()
                .unwrap()
                .iter()
                .find(|s| s["Sid"] == id)
                .cloned()
                .unwrap_or_else(|| panic!("{id} missing"))
        };
        let del = sid("DeleteOnlyRestoreTestVolumes");
        assert_eq!(
            del["Condition"]["StringEquals"]["ec2:ResourceTag/ebssnap:restore-test"],
            json!(["std"])
        );
        let create = sid("CreateOnlyRestoreTestVolumes");
        assert_eq!(
            create["Condition"]["StringEquals"]["aws:RequestTag/ebssnap:restore-test"],
            json!(["std"])
        );
        let from = sid("RestoreTestsFromPolicySnapshots");
        assert_eq!(
            from["Condition"]["StringEquals"]["aws:ResourceTag/ebssnap:policy"],
            json!(["std"])
        );
        let mark = sid("MarkTestedSnapshots");
        assert_eq!(
            mark["Condition"]["ForAllValues:StringEquals"]["aws:TagKeys"],
            json!(["ebssnap:restore-tested", "ebssnap:restore-failed"])
        );
        assert_eq!(
            mark["Condition"]["StringEquals"]["ec2:ResourceTag/ebssnap:policy"],
            json!(["std"])
        );
    }

    #[test]
    fn the_operator_restores_attaches_and_deletes_only_restore_volumes() {
        let p = operator_policy(&Scope {
            policies: vec!["std".into()],
            ..Scope::default()
        });
        let st = p["Statement"].as_array().unwrap();
        let by = |id: &str| st.iter().find(|s| s["Sid"] == id).cloned().unwrap();
        for id in ["AttachOnlyRestoreVolumes", "DeleteOnlyRestoreVolumes"] {
            assert_eq!(
                by(id)["Condition"]["Null"]["ec2:ResourceTag/ebssnap:restore-of"],
                "false",
                "{id}"
            );
        }
        assert_eq!(
            by("CreateOnlyRestoreVolumes")["Condition"]["Null"]["aws:RequestTag/ebssnap:restore-of"],
            "false"
        );
        let acts = actions(&p);
        assert!(acts.contains("ec2:AttachVolume") && !acts.contains("ec2:DeleteSnapshot"));
    }

    #[test]
    fn the_operator_restores_in_the_copy_regions_too() {
        let p = operator_policy(&Scope {
            policies: vec!["std".into()],
            runner_arn: "arn:aws:lambda:us-east-1:123456789012:function:ebssnap".into(),
            copy_regions: vec!["us-west-2".into()],
            ..Scope::default()
        });
        let st = p["Statement"].as_array().unwrap();
        let by = |id: &str| st.iter().find(|s| s["Sid"] == id).cloned().unwrap();
        assert_eq!(
            by("RestoreFromPolicySnapshots")["Resource"],
            json!([
                "arn:aws:ec2:us-east-1::snapshot/*",
                "arn:aws:ec2:us-west-2::snapshot/*"
            ])
        );
        assert_eq!(
            by("DeleteOnlyRestoreVolumes")["Resource"][1],
            "arn:aws:ec2:us-west-2:123456789012:volume/*"
        );
    }

    #[test]
    fn sharing_adds_only_the_vault_accounts_on_policy_snapshots() {
        let p = runner_policy(&Scope {
            policies: vec!["std".into()],
            share_account_ids: vec!["111122223333".into()],
            ..Scope::default()
        });
        let st = p["Statement"].as_array().unwrap();
        let share = st
            .iter()
            .find(|s| s["Sid"] == "ShareOnlyPolicySnapshotsWithVaults")
            .unwrap();
        let eq = &share["Condition"]["StringEquals"];
        assert_eq!(eq["ec2:ResourceTag/ebssnap:policy"], json!(["std"]));
        assert_eq!(eq["ec2:Attribute"], "createVolumePermission");
        assert_eq!(eq["ec2:Add/userId"], json!(["111122223333"]));
    }

    #[test]
    fn deletes_are_limited_to_ebssnap_snapshots_of_the_policies() {
        let p = runner_policy(&Scope {
            policies: vec!["std".into(), "gold".into()],
            ..Scope::default()
        });
        let del = p["Statement"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["Action"] == "ec2:DeleteSnapshot")
            .unwrap();
        assert_eq!(
            del["Condition"]["StringEquals"]["ec2:ResourceTag/ebssnap:policy"],
            json!(["std", "gold"])
        );
        let create = p["Statement"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["Sid"] == "CreateOnlyPolicyTaggedSnapshots")
            .unwrap();
        assert_eq!(
            create["Condition"]["StringEquals"]["aws:RequestTag/ebssnap:policy"],
            json!(["std", "gold"])
        );
        let read = p["Statement"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["Sid"] == "ReadPolicyDocuments")
            .unwrap();
        assert!(
            read["Resource"]
                .as_array()
                .unwrap()
                .iter()
                .any(|r| r == "arn:aws:scheduler:*:*:schedule/ebssnap-std/*")
        );
    }

    #[test]
    fn the_scheduler_role_only_invokes_the_runner() {
        let arn = "arn:aws:lambda:us-east-1:123456789012:function:ebssnap";
        let p = scheduler_policy(&Scope {
            runner_arn: arn.into(),
            ..Scope::default()
        });
        assert_eq!(actions(&p), ["lambda:InvokeFunction".to_string()].into());
        assert_eq!(
            p["Statement"][0]["Resource"],
            json!([arn, format!("{arn}:*")])
        );
        assert!(action_for("RunInstances").is_err());
    }

    #[test]
    fn a_known_runner_scopes_invoke_logs_schedules_and_the_trust_policy() {
        let arn = "arn:aws:lambda:eu-west-1:123456789012:function:ebssnap-runner";
        let s = Scope {
            policies: vec!["std".into()],
            runner_arn: arn.into(),
            ..Scope::default()
        };
        let p = runner_policy(&s);
        let by_sid = |sid: &str| {
            p["Statement"]
                .as_array()
                .unwrap()
                .iter()
                .find(|st| st["Sid"] == sid)
                .cloned()
                .unwrap_or_else(|| panic!("{sid}"))
        };
        assert_eq!(
            by_sid("ContinueRunsInItself")["Resource"],
            json!([arn, format!("{arn}:*")])
        );
        assert_eq!(
            by_sid("OwnLogGroup")["Resource"],
            "arn:aws:logs:eu-west-1:123456789012:log-group:/aws/lambda/ebssnap-runner:*"
        );
        assert_eq!(
            by_sid("ReadPolicyDocuments")["Resource"],
            json!(["arn:aws:scheduler:eu-west-1:123456789012:schedule/ebssnap-std/*"])
        );
        let trust = scheduler_assume_role_policy(&s);
        let c = &trust["Statement"][0]["Condition"];
        assert_eq!(c["StringEquals"]["aws:SourceAccount"], "123456789012");
        assert_eq!(
            c["ArnLike"]["aws:SourceArn"],
            json!(["arn:aws:scheduler:eu-west-1:123456789012:schedule-group/ebssnap-std"])
        );
        assert_eq!(FunctionArn::parse("*"), None);
        assert_eq!(
            FunctionArn::parse(&format!("{arn}:live")).map(|f| f.name),
            Some("ebssnap-runner".into())
        );
    }
}
