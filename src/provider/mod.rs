//! The Terraform provider `ebssnap` (protocol 6, on our own [`plugin`] layer): `ebssnap_policy`
//! and `ebssnap_target` (resources with identity, listable by `terraform query`), the
//! `ebssnap_volumes` and `ebssnap_iam_policy` data sources, and the functions of [`functions`].
//! It writes the schedule input documents of the core into EventBridge Scheduler; the runner reads
//! them back. It never prints to stdout (Terraform's handshake channel); it logs with `tracing`.

pub mod coverage;
pub mod docs;
pub mod functions;
pub mod iam_policy;
pub mod plugin;
pub mod policy;
pub mod restore_points;
pub mod schema;
pub mod selector;
pub mod target;
pub mod validate;
pub mod values;
pub mod volumes;

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use self::plugin::resource::Provider;
use self::plugin::schema::{NestedBlock, Schema};
use self::plugin::server::Registry;
use self::plugin::{AttributePath, Diagnostics, Value};

use self::schema::{Optional, attr, block, string, string_map};
use self::values::{StrMap, V, get, k_map};
use crate::aws::{Clients, ConnectOptions, config_loader};

/// The provider's registry source address.
pub const SOURCE: &str = "registry.terraform.io/rackerlabs/ebssnap";
pub const DEFAULT_SCHEDULE: &str = "cron(0 5 * * ? *)";
pub const DEFAULT_TIMEZONE: &str = "UTC";

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
// Attributes missing from older state (added in a later version) read as null.
#[serde(default)]
pub struct AssumeRole {
    pub role_arn: V<String>,
    pub session_name: V<String>,
    pub external_id: V<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
// Attributes missing from older state (added in a later version) read as null.
#[serde(default)]
pub struct ProviderConfig {
    pub region: V<String>,
    pub profile: V<String>,
    #[serde(with = "plugin::value::as_list")]
    pub assume_role: V<AssumeRole>,
    pub endpoint_url: V<String>,
    pub runner_arn: V<String>,
    pub scheduler_role_arn: V<String>,
    pub default_tags: StrMap,
    pub default_schedule: V<String>,
    pub default_timezone: V<String>,
}

/// What `configure` produced, shared with every resource.
#[derive(Debug)]
pub struct Configured {
    pub clients: Clients,
    pub runner_arn: Option<String>,
    pub scheduler_role_arn: Option<String>,
    pub default_tags: BTreeMap<String, String>,
    pub default_schedule: String,
    pub default_timezone: String,
}

impl Configured {
    /// The ARNs a schedule's target needs; an error naming what to set when one is missing.
    pub fn target_arns(&self, diags: &mut Diagnostics) -> Option<(String, String)> {
        let runner = self.runner_arn.clone();
        let role = self.scheduler_role_arn.clone();
        if runner.is_none() {
            diags.root_error(
                "Missing runner_arn",
                "Set runner_arn in the provider \"ebssnap\" block (or EBSSNAP_RUNNER_ARN): the ARN of the ebssnap runner Lambda function the schedules invoke.",
            );
        }
        if role.is_none() {
            diags.root_error(
                "Missing scheduler_role_arn",
                "Set scheduler_role_arn in the provider \"ebssnap\" block (or EBSSNAP_SCHEDULER_ROLE_ARN): the IAM role EventBridge Scheduler assumes to invoke the runner.",
            );
        }
        Some((runner?, role?))
    }
}

/// The ARNs a schedule should invoke with, as planned values: unknown until the provider is
/// configured, null when it has none (create then fails with a message naming the setting).
pub fn planned_arns(c: Option<&Configured>) -> (V<String>, V<String>) {
    match c {
        None => (Value::Unknown, Value::Unknown),
        Some(c) => (
            values::opt(c.runner_arn.clone()),
            values::opt(c.scheduler_role_arn.clone()),
        ),
    }
}

pub const RUNNER_ARN_DOC: &str = "The runner Lambda function this schedule invokes: the provider's `runner_arn` when it was last applied. Changing the provider's `runner_arn` plans an update that re-points the schedule.";
pub const ROLE_ARN_DOC: &str = "The role EventBridge Scheduler assumes for this schedule: the provider's `scheduler_role_arn` when it was last applied.";

/// Resources hold this handle to the provider's configuration, filled by `configure`.
#[derive(Debug, Clone, Default)]
pub struct Shared(Arc<RwLock<Option<Arc<Configured>>>>);

impl Shared {
    pub fn get(&self, diags: &mut Diagnostics) -> Option<Arc<Configured>> {
        let got = self.0.read().ok().and_then(|g| g.clone());
        if got.is_none() {
            diags.root_error_short("The ebssnap provider is not configured yet");
        }
        got
    }

    /// The configuration if `configure` already ran (validation may run before it).
    pub fn peek(&self) -> Option<Arc<Configured>> {
        self.0.read().ok().and_then(|g| g.clone())
    }

    fn set(&self, c: Configured) {
        if let Ok(mut g) = self.0.write() {
            *g = Some(Arc::new(c));
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct EbssnapProvider {
    shared: Shared,
}

pub fn provider_schema() -> Schema {
    Schema {
        version: 1,
        block: block(
            "The ebssnap provider manages scheduled EBS snapshots: `ebssnap_policy` (retention, tags, failure webhook) and `ebssnap_target` (which volumes, and when) become EventBridge Scheduler schedules that invoke the ebssnap runner. Credentials come from the standard AWS chain.",
            vec![
                (
                    "region",
                    attr(
                        string(),
                        Optional,
                        "AWS region. Default: the standard AWS chain (`AWS_REGION`, profile).",
                    ),
                ),
                (
                    "profile",
                    attr(
                        string(),
                        Optional,
                        "Named profile of the shared AWS config and credentials files.",
                    ),
                ),
                (
                    "endpoint_url",
                    attr(
                        string(),
                        Optional,
                        "One endpoint URL for every AWS service (emulators, VPC endpoints). `AWS_ENDPOINT_URL` is also honoured.",
                    ),
                ),
                (
                    "runner_arn",
                    attr(
                        string(),
                        Optional,
                        "ARN of the ebssnap runner Lambda function the schedules invoke. Default: `EBSSNAP_RUNNER_ARN`. Required to create or update schedules.",
                    ),
                ),
                (
                    "scheduler_role_arn",
                    attr(
                        string(),
                        Optional,
                        "ARN of the IAM role EventBridge Scheduler assumes to invoke the runner. Default: `EBSSNAP_SCHEDULER_ROLE_ARN`.",
                    ),
                ),
                (
                    "default_tags",
                    attr(
                        string_map(),
                        Optional,
                        "Tags added to every policy's schedule group (a policy's own `tags` win).",
                    ),
                ),
                (
                    "default_schedule",
                    attr(
                        string(),
                        Optional,
                        "Schedule of targets that set none. Default `cron(0 5 * * ? *)`.",
                    ),
                ),
                (
                    "default_timezone",
                    attr(
                        string(),
                        Optional,
                        "IANA time zone of targets that set none. Default `UTC`.",
                    ),
                ),
            ],
            vec![(
                "assume_role",
                NestedBlock::Optional(block(
                    "Assume this IAM role (through STS) with the base credentials.",
                    vec![
                        (
                            "role_arn",
                            attr(string(), schema::Required, "ARN of the role to assume."),
                        ),
                        (
                            "session_name",
                            attr(
                                string(),
                                Optional,
                                "Session name. Default `ebssnap-terraform`.",
                            ),
                        ),
                        (
                            "external_id",
                            attr(
                                string(),
                                Optional,
                                "External id required by the role's trust policy.",
                            ),
                        ),
                    ],
                    vec![],
                )),
            )],
        ),
    }
}

fn env_or(v: &V<String>, var: &str) -> Option<String> {
    get(v).or_else(|| std::env::var(var).ok().filter(|s| !s.is_empty()))
}

#[async_trait]
impl Provider for EbssnapProvider {
    type Config = ProviderConfig;

    fn schema(&self) -> Schema {
        provider_schema()
    }

    async fn validate(&self, diags: &mut Diagnostics, c: ProviderConfig) {
        if let Some(v) = get(&c.endpoint_url) {
            validate::endpoint_url(diags, AttributePath::new("endpoint_url"), &v);
        }
        for (name, v) in [
            ("runner_arn", &c.runner_arn),
            ("scheduler_role_arn", &c.scheduler_role_arn),
        ] {
            if let Some(v) = get(v) {
                let service = if name == "runner_arn" {
                    "lambda"
                } else {
                    "iam"
                };
                validate::arn(diags, AttributePath::new(name), &v, Some(service));
            }
        }
        if let Some(v) = get(&c.default_schedule) {
            validate::schedule_expression(diags, AttributePath::new("default_schedule"), &v);
        }
        if let Some(v) = get(&c.default_timezone) {
            validate::timezone(diags, AttributePath::new("default_timezone"), &v);
        }
        if let Some(t) = k_map(&c.default_tags).known() {
            validate::tags(
                diags,
                AttributePath::new("default_tags"),
                &t,
                &[crate::core::limits::AWS_PREFIX],
            );
        }
        if let Value::Value(ar) = &c.assume_role
            && let Some(v) = get(&ar.role_arn)
        {
            validate::arn(
                diags,
                AttributePath::new("assume_role")
                    .index(0)
                    .attribute("role_arn"),
                &v,
                Some("iam"),
            );
        }
    }

    async fn configure(&self, diags: &mut Diagnostics, _tf_version: String, c: ProviderConfig) {
        let opts = ConnectOptions {
            region: get(&c.region),
            profile: get(&c.profile),
            endpoint_url: get(&c.endpoint_url),
            max_attempts: None,
            // Schedule writes are few; the runner's adaptive pacing is for EC2 at scale.
            retry_mode: Some("standard".into()),
        };
        let mut sdk = config_loader(&opts).load().await;
        if let Value::Value(ar) = &c.assume_role
            && let Some(role) = get(&ar.role_arn)
        {
            let mut b = aws_config::sts::AssumeRoleProvider::builder(role)
                .session_name(get(&ar.session_name).unwrap_or_else(|| "ebssnap-terraform".into()));
            if let Some(x) = get(&ar.external_id) {
                b = b.external_id(x);
            }
            let creds = b.configure(&sdk).build().await;
            sdk = config_loader(&opts)
                .credentials_provider(creds)
                .load()
                .await;
        }
        if sdk.region().is_none() {
            diags.root_error(
                "No AWS region",
                "Set region in the provider \"ebssnap\" block, or AWS_REGION / a profile's region.",
            );
            return;
        }
        self.shared.set(Configured {
            clients: Clients::from_sdk_config(&sdk),
            runner_arn: env_or(&c.runner_arn, "EBSSNAP_RUNNER_ARN"),
            scheduler_role_arn: env_or(&c.scheduler_role_arn, "EBSSNAP_SCHEDULER_ROLE_ARN"),
            default_tags: k_map(&c.default_tags).known().unwrap_or_default(),
            default_schedule: get(&c.default_schedule).unwrap_or_else(|| DEFAULT_SCHEDULE.into()),
            default_timezone: get(&c.default_timezone).unwrap_or_else(|| DEFAULT_TIMEZONE.into()),
        });
    }
}

/// Everything the provider serves, by type name.
pub fn registry() -> Registry {
    let shared = Shared::default();
    let provider = EbssnapProvider {
        shared: shared.clone(),
    };
    let mut resources: BTreeMap<String, Arc<dyn plugin::resource::DynResource>> = BTreeMap::new();
    resources.insert(
        "ebssnap_policy".into(),
        Arc::new(policy::PolicyResource {
            shared: shared.clone(),
        }),
    );
    resources.insert(
        "ebssnap_target".into(),
        Arc::new(target::TargetResource {
            shared: shared.clone(),
        }),
    );
    let mut data_sources: BTreeMap<String, Arc<dyn plugin::resource::DynDataSource>> =
        BTreeMap::new();
    data_sources.insert(
        "ebssnap_volumes".into(),
        Arc::new(volumes::VolumesDataSource {
            shared: shared.clone(),
        }),
    );
    data_sources.insert(
        "ebssnap_coverage".into(),
        Arc::new(coverage::CoverageDataSource {
            shared: shared.clone(),
        }),
    );
    data_sources.insert(
        "ebssnap_restore_points".into(),
        Arc::new(restore_points::RestorePointsDataSource {
            shared: shared.clone(),
        }),
    );
    data_sources.insert(
        "ebssnap_iam_policy".into(),
        Arc::new(iam_policy::IamPolicyDataSource { shared }),
    );
    Registry {
        provider: Arc::new(provider),
        resources,
        data_sources,
        functions: functions::all(),
    }
}

/// Serves the provider to Terraform (the plugin handshake goes to stdout; nothing else does).
pub async fn serve() -> Result<(), String> {
    plugin::go_plugin::serve(registry()).await
}

/// Reports an AWS error as a diagnostic (summary = the action, detail = code and message).
pub fn aws_diag(diags: &mut Diagnostics, e: &crate::error::AwsError) {
    diags.root_error(e.action.clone(), format!("{}: {}", e.code, e.message));
}
