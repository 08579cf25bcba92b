//! `data "ebssnap_volumes"`: what a selector matches right now (the runner's own selection code),
//! so a plan can show which volumes a target will protect.

use std::collections::BTreeMap;

use super::plugin::Value;
use super::plugin::resource::DataSource;
use super::plugin::schema::{AttributeType, NestedBlock, Schema};
use super::plugin::{AttributePath, Diagnostics};
use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use super::schema::{Computed, attr, block, exclude_block, select_block, string, string_list};
use super::selector::{ExcludeState, SelectState};
use super::values::{StrList, StrMap, V, list_value, map_value, opt};
use super::{Shared, aws_diag};
use crate::aws::ec2;
use crate::core::select;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
// Attributes missing from older state (added in a later version) read as null.
#[serde(default)]
pub struct VolumeInfo {
    pub volume_id: V<String>,
    pub instance_id: V<String>,
    pub device: V<String>,
    pub size_gb: V<i64>,
    pub tags: StrMap,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
// Attributes missing from older state (added in a later version) read as null.
#[serde(default)]
pub struct VolumesState {
    pub id: V<String>,
    pub select: V<SelectState>,
    #[serde(with = "crate::provider::plugin::value::as_list")]
    pub exclude: V<ExcludeState>,
    pub volume_ids: StrList,
    pub volumes: V<Vec<VolumeInfo>>,
    pub warnings: StrList,
}

pub fn volumes_schema() -> Schema {
    let volume = AttributeType::Object(
        [
            ("volume_id", AttributeType::String),
            ("instance_id", AttributeType::String),
            ("device", AttributeType::String),
            ("size_gb", AttributeType::Number),
            ("tags", AttributeType::Map(Box::new(AttributeType::String))),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect(),
    );
    Schema {
        version: 1,
        block: block(
            "The EBS volumes a selector matches right now, with the same rules the runner applies at run time: a plan-time preview of an `ebssnap_target`'s `select` and `exclude` blocks.",
            vec![
                (
                    "id",
                    attr(
                        string(),
                        Computed,
                        "`<count>:<volume ids>` of the selection, cut to 200 characters.",
                    ),
                ),
                (
                    "volume_ids",
                    attr(
                        string_list(),
                        Computed,
                        "Ids of the selected volumes, sorted.",
                    ),
                ),
                (
                    "warnings",
                    attr(
                        string_list(),
                        Computed,
                        "Named references of the selector that resolve to nothing right now (an `asg_names`, `instance_ids` or `volume_ids` entry that does not exist or is terminated). A run of a target with this selector fails with `NotFound` for each; `terraform plan` also shows them as warnings.",
                    ),
                ),
                (
                    "volumes",
                    attr(
                        AttributeType::List(Box::new(volume)),
                        Computed,
                        "The selected volumes: `volume_id`, `instance_id` (null when detached), `device`, `size_gb` and `tags`.",
                    ),
                ),
            ],
            vec![
                ("select", NestedBlock::Single(select_block())),
                ("exclude", NestedBlock::Optional(exclude_block())),
            ],
        ),
    }
}

#[derive(Debug, Clone)]
pub struct VolumesDataSource {
    pub shared: Shared,
}

#[async_trait]
impl DataSource for VolumesDataSource {
    type State = VolumesState;

    fn schema(&self) -> Schema {
        volumes_schema()
    }

    async fn validate(&self, diags: &mut Diagnostics, config: Self::State) {
        if let Value::Value(s) = &config.select {
            s.validate(&AttributePath::new("select"), diags);
        }
        if let Value::Value(e) = &config.exclude {
            e.validate(&AttributePath::new("exclude").index(0), diags);
        }
    }

    async fn read(&self, diags: &mut Diagnostics, config: Self::State) -> Option<Self::State> {
        let c = self.shared.get(diags)?;
        let sel = match &config.select {
            Value::Value(s) => s.clone().with_defaults().to_doc()?,
            _ => return None,
        };
        let excl = match &config.exclude {
            Value::Value(e) => e.clone().with_defaults().to_doc()?,
            _ => Default::default(),
        };
        let inv = match ec2::fetch_inventory(&c.clients.ec2, &c.clients.autoscaling, &sel).await {
            Ok(i) => i,
            Err(e) => {
                aws_diag(diags, &e);
                return None;
            }
        };
        let chosen = select::select(&sel, &excl, &inv);
        let warnings: Vec<String> = select::unresolved(&sel, &inv)
            .iter()
            .map(select::Unresolved::message)
            .collect();
        for w in &warnings {
            diags.warning(
                "Selector reference resolves to nothing",
                format!("{w}; a run of a target with this selector fails with NotFound."),
                AttributePath::new("select"),
            );
        }
        let ids: Vec<String> = chosen.iter().map(|s| s.volume_id.clone()).collect();
        let volumes = chosen
            .into_iter()
            .map(|s| VolumeInfo {
                tags: map_value(Some(
                    inv.volumes
                        .get(&s.volume_id)
                        .map(|v| v.tags.clone())
                        .unwrap_or_else(BTreeMap::new),
                )),
                volume_id: Value::Value(s.volume_id),
                instance_id: opt(s.instance_id),
                device: opt(s.device),
                size_gb: Value::Value(s.size_gb),
            })
            .collect();
        let mut state = config;
        state.select = state.select.map(SelectState::with_defaults);
        state.exclude = state.exclude.map(ExcludeState::with_defaults);
        state.id = Value::Value(
            format!("{}:{}", ids.len(), ids.join(","))
                .chars()
                .take(200)
                .collect(),
        );
        state.volume_ids = list_value(Some(ids));
        state.volumes = Value::Value(volumes);
        state.warnings = list_value(Some(warnings));
        Some(state)
    }
}
