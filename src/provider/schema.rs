//! Schema builders: every attribute gets its type, constraint and description in one line, and
//! the description is what the generated docs show.

use super::plugin::schema::{
    Attribute, AttributeConstraint, AttributeType, Block, Description, NestedBlock,
};

pub use AttributeConstraint::{Computed, Optional, OptionalComputed, Required};

pub fn string() -> AttributeType {
    AttributeType::String
}
pub fn number() -> AttributeType {
    AttributeType::Number
}
pub fn boolean() -> AttributeType {
    AttributeType::Bool
}
pub fn string_list() -> AttributeType {
    AttributeType::List(Box::new(AttributeType::String))
}
pub fn string_map() -> AttributeType {
    AttributeType::Map(Box::new(AttributeType::String))
}

pub fn attr(
    attr_type: AttributeType,
    constraint: AttributeConstraint,
    description: &str,
) -> Attribute {
    Attribute {
        attr_type,
        constraint,
        description: Description::markdown(description),
        sensitive: false,
        deprecated: false,
        nested: None,
    }
}

pub fn sensitive(mut a: Attribute) -> Attribute {
    a.sensitive = true;
    a
}

pub fn block(
    description: &str,
    attributes: Vec<(&str, Attribute)>,
    blocks: Vec<(&str, NestedBlock)>,
) -> Block {
    Block {
        version: 1,
        description: Description::markdown(description),
        attributes: attributes
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect(),
        blocks: blocks
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect(),
        deprecated: false,
    }
}

/// The `select` block shared by `ebssnap_target` and `data.ebssnap_volumes`.
pub fn select_block() -> Block {
    block(
        "Which volumes: the union of every source set here (at least one). Instance sources select \
         every volume attached to the instance; instances that are terminated or shutting down are \
         ignored, stopped ones are included.",
        vec![
            (
                "all_volumes",
                attr(
                    boolean(),
                    OptionalComputed,
                    "Select every EBS volume of the account and region. Default `false`.",
                ),
            ),
            (
                "asg_names",
                attr(
                    string_list(),
                    Optional,
                    "Auto Scaling group names; their instances at run time are selected.",
                ),
            ),
            (
                "instance_names",
                attr(
                    string_list(),
                    Optional,
                    "Globs (`*`, `?`) matched against the instances' `Name` tag.",
                ),
            ),
            (
                "instance_ids",
                attr(string_list(), Optional, "Instance ids (`i-...`)."),
            ),
            (
                "instance_tags",
                attr(
                    string_map(),
                    Optional,
                    "Instances carrying **all** these tags; the value `\"*\"` means the key is present.",
                ),
            ),
            (
                "volume_ids",
                attr(string_list(), Optional, "Volume ids (`vol-...`)."),
            ),
            (
                "volume_tags",
                attr(
                    string_map(),
                    Optional,
                    "Volumes carrying **all** these tags; the value `\"*\"` means the key is present.",
                ),
            ),
            (
                "instance_filters",
                attr(
                    AttributeType::Map(Box::new(string_list())),
                    Optional,
                    "EC2 `DescribeInstances` filters, **all** AND-ed (the values of one filter are OR-ed; `*` and `?` wildcards as EC2 matches them), e.g. `{ \"tag:Env\" = [\"prod\"], \"tag:Name\" = [\"legacy_*\"], \"instance-type\" = [\"r5.*\"] }`: the instances EC2 returns are selected (terminated ones never). Any filter name `DescribeInstances` accepts; at most 200 values besides the largest filter's (which is split across calls).",
                ),
            ),
        ],
        vec![],
    )
}

/// The `exclude` block shared by `ebssnap_target` and `data.ebssnap_volumes`.
pub fn exclude_block() -> Block {
    block(
        "Volumes removed from the selection.",
        vec![
            (
                "volume_ids",
                attr(string_list(), Optional, "Volume ids never snapshotted."),
            ),
            (
                "volume_tags",
                attr(
                    string_map(),
                    Optional,
                    "Volumes carrying **any** of these tags are excluded; `\"*\"` means the key is present.",
                ),
            ),
            (
                "root_volumes",
                attr(
                    boolean(),
                    OptionalComputed,
                    "Exclude the instances' root volumes. Default `false`.",
                ),
            ),
            (
                "instance_ids",
                attr(
                    string_list(),
                    Optional,
                    "Instances (`i-...`) whose volumes are never snapshotted, whatever selected them.",
                ),
            ),
        ],
        vec![],
    )
}
