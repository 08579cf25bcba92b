//! `data "ebssnap_iam_policy"`: the IAM policy documents the runner's execution role and the
//! Scheduler role need, generated from the runner's own table of AWS operations.

use super::plugin::Value;
use super::plugin::resource::DataSource;
use super::plugin::schema::Schema;
use super::plugin::{AttributePath, Diagnostics};
use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use super::schema::{Computed, Optional, OptionalComputed, attr, block, string, string_list};
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
    pub partition: V<String>,
    pub runner_policy_json: V<String>,
    pub scheduler_policy_json: V<String>,
    pub runner_assume_role_policy_json: V<String>,
    pub scheduler_assume_role_policy_json: V<String>,
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
                        "ARN of the runner Lambda function the Scheduler role may invoke. Default: the provider's `runner_arn`, else `*`.",
                    ),
                ),
                (
                    "policy_names",
                    attr(
                        string_list(),
                        Optional,
                        "Policies whose snapshots and schedules the runner may touch. Default: all (`*`).",
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
        }
        for (attr_name, list, service) in [
            (
                "webhook_secret_arns",
                &c.webhook_secret_arns,
                "secretsmanager",
            ),
            ("kms_key_arns", &c.kms_key_arns, "kms"),
            ("sns_topic_arns", &c.sns_topic_arns, "sns"),
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
        if let Some(names) = k_list(&c.policy_names).known() {
            for (i, n) in names.iter().enumerate() {
                if n != "*"
                    && let Err(e) = crate::core::doc::validate_policy_name(n)
                {
                    diags.error(
                        "Invalid policy name",
                        e,
                        AttributePath::new("policy_names").index(i as i64),
                    );
                }
            }
        }
    }

    async fn read(&self, _diags: &mut Diagnostics, c: Self::State) -> Option<Self::State> {
        let provider_runner = self.shared.peek().and_then(|p| p.runner_arn.clone());
        let scope = iam::Scope {
            partition: get(&c.partition).unwrap_or_else(|| "aws".into()),
            policies: k_list(&c.policy_names)
                .known()
                .filter(|v| !v.is_empty())
                .unwrap_or_else(|| vec!["*".into()]),
            runner_arn: get(&c.runner_arn)
                .or(provider_runner)
                .unwrap_or_else(|| "*".into()),
            webhook_secret_arns: k_list(&c.webhook_secret_arns).known().unwrap_or_default(),
            kms_key_arns: k_list(&c.kms_key_arns).known().unwrap_or_default(),
            sns_topic_arns: k_list(&c.sns_topic_arns).known().unwrap_or_default(),
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
        s.scheduler_assume_role_policy_json =
            json(iam::assume_role_policy("scheduler.amazonaws.com"));
        s.id = Value::Value(format!(
            "{}:{}:{}",
            scope.partition,
            scope.runner_arn,
            scope.policies.join(",")
        ));
        Some(s)
    }
}
