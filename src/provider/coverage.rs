//! `data "ebssnap_coverage"`: how many volumes of the account and Region are protected, stale,
//! excluded or unprotected (docs/guides/coverage.md), for a root module's `check` block.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use super::plugin::resource::DataSource;
use super::plugin::schema::Schema;
use super::plugin::{AttributePath, Diagnostics, Value};
use super::schema::{
    Computed, Optional, OptionalComputed, attr, block, number, string, string_list,
};
use super::values::{V, get, opt};
use super::{Shared, aws_diag};
use crate::core::coverage::Status;
use crate::error::Error;
use crate::runner::coverage;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct CoverageState {
    pub id: V<String>,
    pub region: V<String>,
    pub policies: V<Vec<String>>,
    pub account: V<String>,
    pub volume_count: V<i64>,
    pub protected_count: V<i64>,
    pub stale_count: V<i64>,
    pub excluded_count: V<i64>,
    pub unprotected_count: V<i64>,
    pub unprotected_volume_ids: V<Vec<String>>,
    pub stale_volume_ids: V<Vec<String>>,
}

pub fn coverage_schema() -> Schema {
    let count = |status: &str, when: &str| {
        attr(
            number(),
            Computed,
            &format!("Volumes whose status is `{status}`: {when}."),
        )
    };
    Schema {
        version: 1,
        block: block(
            "The coverage of the account and Region at plan time: every volume is `protected` (an enabled target selects it and its newest restore point is younger than twice that target's interval), `stale` (selected, but no restore point that recent), `excluded` (removed by a target's `exclude`) or `unprotected` (selected by nothing, or only by disabled targets), decided by the runner's own selection code. Use it in a `check` block so that `terraform plan` warns when a volume is unprotected. Reads only (`ec2:Describe*`, `autoscaling:DescribeAutoScalingGroups`, `scheduler:List*`/`GetSchedule`).",
            vec![
                ("id", attr(string(), Computed, "`<account>/<region>`.")),
                (
                    "region",
                    attr(
                        string(),
                        OptionalComputed,
                        "Region to read (default: the provider's).",
                    ),
                ),
                (
                    "policies",
                    attr(
                        string_list(),
                        Optional,
                        "Only these policies' targets and restore points (default: every ebssnap policy of the account and Region).",
                    ),
                ),
                ("account", attr(string(), Computed, "The account read.")),
                (
                    "volume_count",
                    attr(
                        number(),
                        Computed,
                        "Every volume of the account and Region.",
                    ),
                ),
                (
                    "protected_count",
                    count(
                        "protected",
                        "an enabled target selects it and its newest restore point is younger than twice that target's interval",
                    ),
                ),
                (
                    "stale_count",
                    count(
                        "stale",
                        "selected, but no restore point that recent, or none yet",
                    ),
                ),
                (
                    "excluded_count",
                    count(
                        "excluded",
                        "a target's selector matches it and its `exclude` removes it",
                    ),
                ),
                (
                    "unprotected_count",
                    count("unprotected", "no target selects it, or only disabled ones"),
                ),
                (
                    "unprotected_volume_ids",
                    attr(
                        string_list(),
                        Computed,
                        "The unprotected volumes' ids, sorted.",
                    ),
                ),
                (
                    "stale_volume_ids",
                    attr(string_list(), Computed, "The stale volumes' ids, sorted."),
                ),
            ],
            vec![],
        ),
    }
}

#[derive(Debug, Clone)]
pub struct CoverageDataSource {
    pub shared: Shared,
}

#[async_trait]
impl DataSource for CoverageDataSource {
    type State = CoverageState;

    fn schema(&self) -> Schema {
        coverage_schema()
    }

    async fn validate(&self, diags: &mut Diagnostics, config: Self::State) {
        super::validate::region(diags, "region", get(&config.region).as_deref());
    }

    async fn read(&self, diags: &mut Diagnostics, config: Self::State) -> Option<Self::State> {
        let c = self.shared.get(diags)?;
        let clients = match get(&config.region) {
            Some(r) => c.clients.in_region(&r),
            None => c.clients.clone(),
        };
        let policies = get(&config.policies).unwrap_or_default();
        let (scope, rows) = match coverage::scope(&clients, &policies, jiff::Timestamp::now()).await
        {
            Ok(r) => r,
            Err(Error::Aws(e)) => {
                aws_diag(diags, &e);
                return None;
            }
            Err(e) => {
                diags.root_error_short(format!("Reading the coverage: {e}"));
                return None;
            }
        };
        let count = |s: Status| rows.iter().filter(|r| r.status == s).count() as i64;
        let ids = |s: Status| {
            let mut v: Vec<String> = rows
                .iter()
                .filter(|r| r.status == s)
                .map(|r| r.volume_id.clone())
                .collect();
            v.sort();
            v
        };
        let mut state = config;
        state.id = Value::Value(format!(
            "{}/{}",
            scope.account.as_deref().unwrap_or("unknown"),
            scope.region.as_deref().unwrap_or("unknown")
        ));
        state.region = opt(scope.region.clone());
        state.account = opt(scope.account.clone());
        state.volume_count = Value::Value(rows.len() as i64);
        state.protected_count = Value::Value(count(Status::Protected));
        state.stale_count = Value::Value(count(Status::Stale));
        state.excluded_count = Value::Value(count(Status::Excluded));
        state.unprotected_count = Value::Value(count(Status::Unprotected));
        state.unprotected_volume_ids = Value::Value(ids(Status::Unprotected));
        state.stale_volume_ids = Value::Value(ids(Status::Stale));
        for w in &scope.warnings {
            diags.warning(
                "ebssnap coverage",
                w.clone(),
                AttributePath::new("policies"),
            );
        }
        Some(state)
    }
}
