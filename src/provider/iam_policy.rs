//! `data "ebssnap_iam_policy"`: the IAM policy documents the runner's execution role and the
//! Scheduler role need, generated from the runner's own table of AWS operations.

use super::plugin::Value;
use super::plugin::resource::DataSource;
use super::plugin::schema::Schema;
use super::plugin::{AttributePath, Diagnostics};
use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use super::schema::{
    Computed, Optional, OptionalComputed, Required, attr, block, boolean, string, string_list,
};
use super::values::{StrList, V, get, k_list};
use super::{Shared, validate};
use crate::aws::iam;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
// Attributes missing from older state (added in a later version) read as null.
#[serde(default)]
pub struct IamPolicyState {
    pub id: V<String>,
    pub runner_arn: V<String>,
    pub policy_names: StrList,
    pub webhook_secret_arns: StrList,
    pub kms_key_arns: StrList,
    pub sns_topic_arns: StrList,
    pub report_unprotected: V<bool>,
    pub copy_regions: StrList,
    pub copy_kms_key_arns: StrList,
    pub share_account_ids: StrList,
    pub partition: V<String>,
    pub runner_policy_json: V<String>,
    pub scheduler_policy_json: V<String>,
    pub runner_assume_role_policy_json: V<String>,
    pub scheduler_assume_role_policy_json: V<String>,
    pub operator_policy_json: V<String>,
}

pub fn iam_policy_schema() -> Schema {
    Schema {
        version: 1,
        block: block(
            "Least-privilege IAM policy documents for an ebssnap deployment: the runner Lambda's execution role (exactly the EC2, Auto Scaling and Scheduler actions the runner calls; `DeleteSnapshot` only on snapshots tagged `ebssnap:policy`), and the role EventBridge Scheduler assumes (`lambda:InvokeFunction` on the runner), with their trust policies.",
            vec![
                ("id", attr(string(), Computed, "A digest of the inputs.")),
                (
                    "runner_arn",
                    attr(
                        string(),
                        OptionalComputed,
                        "ARN of the runner Lambda function: the Scheduler role may invoke only it, the runner may invoke only itself (continuations) and write only its log group, and both are scoped to its Region and account. Default: the provider's `runner_arn`; one of the two is required.",
                    ),
                ),
                (
                    "policy_names",
                    attr(
                        string_list(),
                        Required,
                        "Names of the `ebssnap_policy` resources this runner serves: it may create snapshots only when tagging them `ebssnap:policy` = one of these, delete only snapshots so tagged, and read only their schedule groups; Scheduler may assume its role only for those groups.",
                    ),
                ),
                (
                    "webhook_secret_arns",
                    attr(
                        string_list(),
                        Optional,
                        "Secrets Manager secrets of the policies' `failure_webhook_secret_arn`: the runner may `secretsmanager:GetSecretValue` exactly these. Default: none.",
                    ),
                ),
                (
                    "kms_key_arns",
                    attr(
                        string_list(),
                        Optional,
                        "Customer-managed KMS keys those secrets are encrypted with: `kms:Decrypt` through Secrets Manager only. Not needed for the AWS-managed key. Default: none.",
                    ),
                ),
                (
                    "sns_topic_arns",
                    attr(
                        string_list(),
                        Optional,
                        "SNS topics of the policies' `failure_sns_topic_arn`: the runner may `sns:Publish` to exactly these. Default: none.",
                    ),
                ),
                (
                    "report_unprotected",
                    attr(
                        boolean(),
                        Optional,
                        "Set when a policy sets `report_unprotected`: its sweep computes the account's coverage over every ebssnap policy, so the runner may also list the schedule groups and read every `ebssnap-*` group's schedules (read only). Default `false`.",
                    ),
                ),
                (
                    "copy_regions",
                    attr(
                        string_list(),
                        Optional,
                        "Regions the policies copy their restore points to (disaster-recovery copies): the runner may `ec2:CopySnapshot` into them only when tagging the copy `ebssnap:policy` = one of `policy_names`, and delete there only snapshots so tagged. Default: none.",
                    ),
                ),
                (
                    "copy_kms_key_arns",
                    attr(
                        string_list(),
                        Optional,
                        "The `kms_key_id` keys of the `copy` blocks: EBS may use them for the runner (`kms:CreateGrant` for AWS resources, `Decrypt`, `Encrypt`, `ReEncrypt*`, `GenerateDataKeyWithoutPlaintext`, `DescribeKey`), only through EC2 in the runner's and the copy Regions (`kms:ViaService`). Default: none.",
                    ),
                ),
                (
                    "share_account_ids",
                    attr(
                        string_list(),
                        Optional,
                        "The `account_ids` of the policies' `share` blocks (vault accounts): the runner may add exactly these accounts to `createVolumePermission` of the policies' restore points (`ec2:ModifySnapshotAttribute`), and `kms:DescribeKey` the account's keys in its Region (AWS refuses to share a restore point under an AWS-managed key; the runner checks first). Default: none.",
                    ),
                ),
                (
                    "partition",
                    attr(
                        string(),
                        OptionalComputed,
                        "AWS partition of the ARNs. Default `aws`.",
                    ),
                ),
                (
                    "runner_policy_json",
                    attr(
                        string(),
                        Computed,
                        "Policy of the runner's execution role (JSON).",
                    ),
                ),
                (
                    "scheduler_policy_json",
                    attr(
                        string(),
                        Computed,
                        "Policy of the role EventBridge Scheduler assumes (JSON).",
                    ),
                ),
                (
                    "runner_assume_role_policy_json",
                    attr(
                        string(),
                        Computed,
                        "Trust policy of the runner's role (`lambda.amazonaws.com`).",
                    ),
                ),
                (
                    "scheduler_assume_role_policy_json",
                    attr(
                        string(),
                        Computed,
                        "Trust policy of the Scheduler role (`scheduler.amazonaws.com`).",
                    ),
                ),
                (
                    "operator_policy_json",
                    attr(
                        string(),
                        Computed,
                        "Policy for people and pipelines who restore (`ebssnap restore` with `--attach`, `restore list`, `restore cleanup`, `restore-test` by hand): create volumes only from the policies' snapshots and tagged `ebssnap:restore-of`, attach and delete only such volumes.",
                    ),
                ),
            ],
            vec![],
        ),
    }
}

#[derive(Debug, Clone)]
pub struct IamPolicyDataSource {
    pub shared: Shared,
}

#[async_trait]
impl DataSource for IamPolicyDataSource {
    type State = IamPolicyState;

    fn schema(&self) -> Schema {
        iam_policy_schema()
    }

    async fn validate(&self, diags: &mut Diagnostics, c: Self::State) {
        if let Some(a) = get(&c.runner_arn)
            && a != "*"
        {
            validate::arn(diags, AttributePath::new("runner_arn"), &a, Some("lambda"));
            if iam::FunctionArn::parse(&a).is_none() {
                diags.error(
                    "Invalid runner ARN",
                    format!("{a:?} is not a Lambda function ARN (arn:aws:lambda:<region>:<account>:function:<name>)"),
                    AttributePath::new("runner_arn"),
                );
            }
        }
        for (attr_name, list, service) in [
            (
                "webhook_secret_arns",
                &c.webhook_secret_arns,
                "secretsmanager",
            ),
            ("kms_key_arns", &c.kms_key_arns, "kms"),
            ("sns_topic_arns", &c.sns_topic_arns, "sns"),
            ("copy_kms_key_arns", &c.copy_kms_key_arns, "kms"),
        ] {
            for (i, a) in k_list(list).known().unwrap_or_default().iter().enumerate() {
                validate::arn(
                    diags,
                    AttributePath::new(attr_name).index(i as i64),
                    a,
                    Some(service),
                );
            }
        }
        for (i, a) in k_list(&c.share_account_ids)
            .known()
            .unwrap_or_default()
            .iter()
            .enumerate()
        {
            if !crate::core::doc::is_account_id(a) {
                diags.error(
                    "Invalid account id",
                    format!("{a:?} is not a 12-digit AWS account id: list the vault accounts of the policies' share blocks."),
                    AttributePath::new("share_account_ids").index(i as i64),
                );
            }
        }
        if let Some(names) = k_list(&c.policy_names).known() {
            for (i, n) in names.iter().enumerate() {
                if let Err(e) = crate::core::doc::validate_policy_name(n) {
                    diags.error(
                        "Invalid policy name",
                        e,
                        AttributePath::new("policy_names").index(i as i64),
                    );
                }
            }
        }
    }

    async fn read(&self, diags: &mut Diagnostics, c: Self::State) -> Option<Self::State> {
        let provider_runner = self.shared.peek().and_then(|p| p.runner_arn.clone());
        let Some(runner_arn) = get(&c.runner_arn)
            .or(provider_runner)
            .filter(|a| iam::FunctionArn::parse(a).is_some())
        else {
            diags.error(
                "Runner function unknown",
                "Set runner_arn (the ARN of the runner Lambda function, e.g. aws_lambda_function.runner.arn) here or in the provider block: the policies are scoped to that function, its Region and account.",
                AttributePath::new("runner_arn"),
            );
            return None;
        };
        let policies = k_list(&c.policy_names).known().unwrap_or_default();
        if policies.is_empty() {
            diags.error(
                "No policy names",
                "List the ebssnap_policy names this runner serves in policy_names, e.g. [ebssnap_policy.std.name].",
                AttributePath::new("policy_names"),
            );
            return None;
        }
        let scope = iam::Scope {
            partition: get(&c.partition).unwrap_or_else(|| "aws".into()),
            policies,
            runner_arn,
            webhook_secret_arns: k_list(&c.webhook_secret_arns).known().unwrap_or_default(),
            kms_key_arns: k_list(&c.kms_key_arns).known().unwrap_or_default(),
            sns_topic_arns: k_list(&c.sns_topic_arns).known().unwrap_or_default(),
            report_unprotected: get(&c.report_unprotected).unwrap_or(false),
            copy_regions: k_list(&c.copy_regions).known().unwrap_or_default(),
            copy_kms_key_arns: k_list(&c.copy_kms_key_arns).known().unwrap_or_default(),
            share_account_ids: k_list(&c.share_account_ids).known().unwrap_or_default(),
        };
        let json = |v: serde_json::Value| {
            serde_json::to_string(&v)
                .ok()
                .map(Value::Value)
                .unwrap_or(Value::Null)
        };
        let mut s = c;
        s.partition = Value::Value(scope.partition.clone());
        s.runner_arn = Value::Value(scope.runner_arn.clone());
        s.runner_policy_json = json(iam::runner_policy(&scope));
        s.scheduler_policy_json = json(iam::scheduler_policy(&scope));
        s.runner_assume_role_policy_json = json(iam::assume_role_policy("lambda.amazonaws.com"));
        s.scheduler_assume_role_policy_json = json(iam::scheduler_assume_role_policy(&scope));
        s.operator_policy_json = json(iam::operator_policy(&scope));
        s.id = Value::Value(format!(
            "{}:{}:{}",
            scope.partition,
            scope.runner_arn,
            scope.policies.join(",")
        ));
        Some(s)
    }
}
