//! The `select` and `exclude` blocks: state shapes, plan-time validation, and the mapping to and
//! from the selector of the target document (the core's `Select`/`Exclude`).

use super::plugin::Value;
use super::plugin::{AttributePath, Diagnostics};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

use super::values::{
    K, StrList, StrMap, V, k, k_list, k_map, list_value, map_value, opt, or_default,
};
use crate::core::select::{Exclude, Select};

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
// Attributes missing from older state (added in a later version) read as null.
#[serde(default)]
pub struct SelectState {
    pub all_volumes: V<bool>,
    pub asg_names: StrList,
    pub instance_names: StrList,
    pub instance_ids: StrList,
    pub instance_tags: StrMap,
    pub volume_ids: StrList,
    pub volume_tags: StrMap,
    pub instance_filters: FilterMap,
}

/// `instance_filters`: filter name → values.
pub type FilterMap = V<BTreeMap<String, StrList>>;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
// Attributes missing from older state (added in a later version) read as null.
#[serde(default)]
pub struct ExcludeState {
    pub volume_ids: StrList,
    pub volume_tags: StrMap,
    pub root_volumes: V<bool>,
    pub instance_ids: StrList,
}

/// A filter map as plan logic needs it (unknown if any part is).
fn k_filters(v: &FilterMap) -> K<BTreeMap<String, Vec<String>>> {
    match v {
        Value::Value(m) => {
            let mut out = BTreeMap::new();
            for (name, values) in m {
                match k_list(values) {
                    K::Known(l) => {
                        out.insert(name.clone(), l);
                    }
                    K::Null => {}
                    K::Unknown => return K::Unknown,
                }
            }
            K::Known(out)
        }
        Value::Null => K::Null,
        Value::Unknown => K::Unknown,
    }
}

fn filters_value(v: Option<BTreeMap<String, Vec<String>>>) -> FilterMap {
    match v {
        Some(m) => Value::Value(
            m.into_iter()
                .map(|(k, l)| (k, list_value(Some(l))))
                .collect(),
        ),
        None => Value::Null,
    }
}

fn opt_k<T>(v: K<T>) -> Result<Option<T>, ()> {
    match v {
        K::Known(t) => Ok(Some(t)),
        K::Null => Ok(None),
        K::Unknown => Err(()),
    }
}

impl SelectState {
    pub fn with_defaults(mut self) -> Self {
        self.all_volumes = or_default(self.all_volumes, false);
        self
    }

    /// The document selector, or `None` while part of it is unknown.
    pub fn to_doc(&self) -> Option<Select> {
        Some(Select {
            all_volumes: opt_k(k(&self.all_volumes)).ok()?,
            asg_names: opt_k(k_list(&self.asg_names)).ok()?,
            instance_names: opt_k(k_list(&self.instance_names)).ok()?,
            instance_ids: opt_k(k_list(&self.instance_ids)).ok()?,
            instance_tags: opt_k(k_map(&self.instance_tags)).ok()?,
            volume_ids: opt_k(k_list(&self.volume_ids)).ok()?,
            volume_tags: opt_k(k_map(&self.volume_tags)).ok()?,
            instance_filters: opt_k(k_filters(&self.instance_filters)).ok()?,
        })
    }

    pub fn from_doc(s: &Select) -> Self {
        SelectState {
            all_volumes: Value::Value(s.all_volumes.unwrap_or(false)),
            asg_names: list_value(s.asg_names.clone()),
            instance_names: list_value(s.instance_names.clone()),
            instance_ids: list_value(s.instance_ids.clone()),
            instance_tags: map_value(s.instance_tags.clone()),
            volume_ids: list_value(s.volume_ids.clone()),
            volume_tags: map_value(s.volume_tags.clone()),
            instance_filters: filters_value(s.instance_filters.clone()),
        }
    }

    /// Checks each known value; the empty-selector check needs every source known.
    pub fn validate(&self, at: &AttributePath, diags: &mut Diagnostics) {
        let lists = [
            ("asg_names", &self.asg_names, ""),
            ("instance_names", &self.instance_names, ""),
            ("instance_ids", &self.instance_ids, "i-"),
            ("volume_ids", &self.volume_ids, "vol-"),
        ];
        for (name, list, prefix) in lists {
            check_ids(at, name, list, prefix, diags);
        }
        for (name, map) in [
            ("instance_tags", &self.instance_tags),
            ("volume_tags", &self.volume_tags),
        ] {
            check_tag_keys(at, name, map, diags);
        }
        if let K::Known(f) = k_filters(&self.instance_filters)
            && let Err(e) = crate::core::select::check_instance_filters(&f)
        {
            diags.error(
                "Invalid instance_filters",
                format!("{e}."),
                at.clone().attribute("instance_filters"),
            );
        }
        if let Some(sel) = self.to_doc()
            && sel.is_empty()
        {
            diags.error(
                    "Empty selector",
                    "The select block selects nothing: set at least one of all_volumes = true, asg_names, \
                     instance_names, instance_ids, instance_tags, instance_filters, volume_ids or volume_tags.",
                    at.clone(),
                );
        }
    }
}

impl ExcludeState {
    pub fn with_defaults(mut self) -> Self {
        self.root_volumes = or_default(self.root_volumes, false);
        self
    }

    pub fn to_doc(&self) -> Option<Exclude> {
        Some(Exclude {
            volume_ids: opt_k(k_list(&self.volume_ids)).ok()?,
            volume_tags: opt_k(k_map(&self.volume_tags)).ok()?,
            root_volumes: opt_k(k(&self.root_volumes)).ok()?,
            instance_ids: opt_k(k_list(&self.instance_ids)).ok()?,
        })
    }

    pub fn from_doc(e: &Exclude) -> Self {
        ExcludeState {
            volume_ids: list_value(e.volume_ids.clone()),
            volume_tags: map_value(e.volume_tags.clone()),
            root_volumes: opt(Some(e.root_volumes.unwrap_or(false))),
            instance_ids: list_value(e.instance_ids.clone()),
        }
    }

    pub fn validate(&self, at: &AttributePath, diags: &mut Diagnostics) {
        check_ids(at, "volume_ids", &self.volume_ids, "vol-", diags);
        check_ids(at, "instance_ids", &self.instance_ids, "i-", diags);
        check_tag_keys(at, "volume_tags", &self.volume_tags, diags);
    }
}

fn check_ids(
    at: &AttributePath,
    name: &'static str,
    list: &StrList,
    prefix: &str,
    diags: &mut Diagnostics,
) {
    let Value::Value(items) = list else { return };
    for (i, item) in items.iter().enumerate() {
        let Value::Value(s) = item else { continue };
        let path = at.clone().attribute(name).index(i as i64);
        if s.trim().is_empty() {
            diags.error(
                "Empty value",
                format!("{name} must not contain empty strings."),
                path,
            );
        } else if !prefix.is_empty() && !s.starts_with(prefix) {
            diags.error(
                "Invalid id",
                format!("{s:?} is not a valid id for {name}: it must start with {prefix:?}."),
                path,
            );
        }
    }
}

fn check_tag_keys(at: &AttributePath, name: &'static str, map: &StrMap, diags: &mut Diagnostics) {
    let Value::Value(items) = map else { return };
    for key in items.keys() {
        if key.is_empty() || key.chars().count() > 128 {
            diags.error(
                "Invalid tag key",
                format!("{name}: tag keys must be 1 to 128 characters, got {key:?}."),
                at.clone().attribute(name),
            );
        }
    }
}
