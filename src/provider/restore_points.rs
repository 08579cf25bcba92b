//! `data "ebssnap_restore_points"`: a volume's restore points, newest first, so a module can
//! build a volume from one (`aws_ebs_volume { snapshot_id = ...newest.snapshot_id }`).

use super::plugin::Value;
use super::plugin::resource::DataSource;
use super::plugin::schema::{AttributeType, Schema};
use super::plugin::{AttributePath, Diagnostics};
use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use super::schema::{Computed, Optional, OptionalComputed, Required, attr, block, string};
use super::values::{V, get, opt};
use super::{Shared, aws_diag};
use crate::aws::ec2;
use crate::core::restore::Point;
use crate::core::restore_test::TAG_RESTORE_TESTED;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct PointInfo {
    pub snapshot_id: V<String>,
    pub policy: V<String>,
    pub target: V<String>,
    pub run: V<String>,
    pub created: V<String>,
    pub state: V<String>,
    pub size_gb: V<i64>,
    pub encrypted: V<bool>,
    pub restore_tested: V<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct RestorePointsState {
    pub id: V<String>,
    pub volume_id: V<String>,
    pub policy: V<String>,
    pub region: V<String>,
    pub restore_points: V<Vec<PointInfo>>,
    pub newest: V<PointInfo>,
}

fn point_type() -> AttributeType {
    AttributeType::Object(
        [
            ("snapshot_id", AttributeType::String),
            ("policy", AttributeType::String),
            ("target", AttributeType::String),
            ("run", AttributeType::String),
            ("created", AttributeType::String),
            ("state", AttributeType::String),
            ("size_gb", AttributeType::Number),
            ("encrypted", AttributeType::Bool),
            ("restore_tested", AttributeType::String),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect(),
    )
}

pub fn restore_points_schema() -> Schema {
    Schema {
        version: 1,
        block: block(
            "A volume's ebssnap restore points in the provider's Region, newest first: the snapshots this account owns whose source is the volume and that carry an `ebssnap:policy` tag (found by the volume's id even after it was deleted). `newest` is the newest `completed` one, to build a volume from: `aws_ebs_volume { snapshot_id = data.ebssnap_restore_points.db.newest.snapshot_id }`.",
            vec![
                ("id", attr(string(), Computed, "The volume id.")),
                (
                    "volume_id",
                    attr(string(), Required, "The source volume (`vol-...`)."),
                ),
                (
                    "policy",
                    attr(
                        string(),
                        Optional,
                        "Only restore points of this ebssnap policy.",
                    ),
                ),
                (
                    "region",
                    attr(
                        string(),
                        OptionalComputed,
                        "Region to look in (default: the provider's). A volume's restore points live in its own Region.",
                    ),
                ),
                (
                    "restore_points",
                    attr(
                        AttributeType::List(Box::new(point_type())),
                        Computed,
                        "Every restore point, newest first: `snapshot_id`, `policy`, `target`, `run` (the run key), `created` (RFC 3339), `state` (`pending`, `completed`, `error`), `size_gb`, `encrypted`, and `restore_tested` (when a restore test of it last passed, or null).",
                    ),
                ),
                (
                    "newest",
                    attr(
                        point_type(),
                        Computed,
                        "The newest `completed` restore point (null when there is none), with the same attributes.",
                    ),
                ),
            ],
            vec![],
        ),
    }
}

#[derive(Debug, Clone)]
pub struct RestorePointsDataSource {
    pub shared: Shared,
}

fn info(p: &Point) -> PointInfo {
    PointInfo {
        snapshot_id: Value::Value(p.snapshot_id.clone()),
        policy: opt(p.policy.clone()),
        target: opt(p.target.clone()),
        run: opt(p.run.clone()),
        created: Value::Value(p.start_time.to_string()),
        state: Value::Value(p.state.clone()),
        size_gb: Value::Value(p.size_gb),
        encrypted: Value::Value(p.encrypted),
        restore_tested: opt(p.tags.get(TAG_RESTORE_TESTED).cloned()),
    }
}

#[async_trait]
impl DataSource for RestorePointsDataSource {
    type State = RestorePointsState;

    fn schema(&self) -> Schema {
        restore_points_schema()
    }

    async fn validate(&self, diags: &mut Diagnostics, config: Self::State) {
        super::validate::region(diags, "region", get(&config.region).as_deref());
        if let Some(v) = get(&config.volume_id)
            && !(v.starts_with("vol-") && v.len() <= 64)
        {
            diags.error(
                "Invalid volume id",
                format!("{v:?} is not an EBS volume id (vol-...)."),
                AttributePath::new("volume_id"),
            );
        }
    }

    async fn read(&self, diags: &mut Diagnostics, config: Self::State) -> Option<Self::State> {
        let c = self.shared.get(diags)?;
        let volume = get(&config.volume_id)?;
        let policy = get(&config.policy);
        let region = get(&config.region).or_else(|| c.clients.region.clone());
        let client = match get(&config.region) {
            Some(r) => c.clients.ec2_in(&r),
            None => c.clients.ec2.clone(),
        };
        let mut points = match ec2::restore_points(&client, &volume).await {
            Ok(p) => p,
            Err(e) => {
                aws_diag(diags, &e);
                return None;
            }
        };
        points.retain(|p| policy.is_none() || p.policy == policy);
        points.sort_by(|a, b| {
            (b.start_time, &b.run, &b.snapshot_id).cmp(&(a.start_time, &a.run, &a.snapshot_id))
        });
        let newest = points.iter().find(|p| p.state == "completed").map(info);
        let mut state = config;
        state.id = Value::Value(volume);
        state.region = opt(region);
        state.restore_points = Value::Value(points.iter().map(info).collect());
        state.newest = opt(newest);
        Some(state)
    }
}
