//! Volume selection (docs/design.md §4), as a pure function over an inventory.
//!
//! The AWS layer fetches a *superset* of candidates with filtered Describe calls; this module
//! decides exactly which volumes are selected. Keeping the decision here means the rules are
//! unit-tested without AWS, and a server-side filter that matches too much can never widen a
//! selection.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use wildmatch::WildMatch;

/// At most this many entries in a tag map of the selector: EC2 resources carry at most 50 tags,
/// and each entry is one filter value of EC2's 200 per call.
pub const MAX_TAG_MATCH: usize = super::limits::MAX_TAGS;

/// Which volumes a target selects: the union of every source.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Select {
    #[serde(default)]
    pub all_volumes: Option<bool>,
    #[serde(default)]
    pub asg_names: Option<Vec<String>>,
    #[serde(default)]
    pub instance_names: Option<Vec<String>>,
    #[serde(default)]
    pub instance_ids: Option<Vec<String>>,
    #[serde(default)]
    pub instance_tags: Option<BTreeMap<String, String>>,
    #[serde(default)]
    pub volume_ids: Option<Vec<String>>,
    #[serde(default)]
    pub volume_tags: Option<BTreeMap<String, String>>,
    /// EC2 `DescribeInstances` filters, all AND-ed (values of one filter OR-ed, `*` wildcards as
    /// EC2 matches them): the instances EC2 returns for them are selected.
    #[serde(default)]
    pub instance_filters: Option<BTreeMap<String, Vec<String>>>,
}

/// EC2's limit of filter values in one Describe call (all filters together).
pub const FILTER_VALUES_PER_CALL: usize = 200;

/// The `DescribeInstances` filter names EC2 accepts (exact names), and the prefixes of the
/// families of names it accepts (`tag:<key>`, `network-interface.*`, ...).
pub const INSTANCE_FILTER_NAMES: &[&str] = &[
    "affinity",
    "architecture",
    "availability-zone",
    "boot-mode",
    "capacity-reservation-id",
    "client-token",
    "current-instance-boot-mode",
    "dns-name",
    "ebs-optimized",
    "ena-support",
    "host-id",
    "hypervisor",
    "iam-instance-profile.arn",
    "iam-instance-profile.id",
    "image-id",
    "instance-id",
    "instance-lifecycle",
    "instance-state-code",
    "instance-state-name",
    "instance-type",
    "ip-address",
    "ipv6-address",
    "kernel-id",
    "key-name",
    "launch-index",
    "launch-time",
    "monitoring-state",
    "outpost-arn",
    "owner-id",
    "placement-group-name",
    "placement-partition-number",
    "platform",
    "platform-details",
    "private-dns-name",
    "private-ip-address",
    "product-code",
    "product-code.type",
    "ramdisk-id",
    "reason",
    "requester-id",
    "reservation-id",
    "root-device-name",
    "root-device-type",
    "source-dest-check",
    "spot-instance-request-id",
    "state-reason-code",
    "state-reason-message",
    "subnet-id",
    "tag-key",
    "tag-value",
    "tenancy",
    "tpm-support",
    "usage-operation",
    "usage-operation-update-time",
    "virtualization-type",
    "vpc-id",
];
pub const INSTANCE_FILTER_PREFIXES: &[&str] = &[
    "tag:",
    "association.",
    "block-device-mapping.",
    "capacity-reservation-specification.",
    "hibernation-options.",
    "instance.group-",
    "maintenance-options.",
    "metadata-options.",
    "network-interface.",
    "network-performance-options.",
    "operator.",
    "placement-",
    "private-dns-name-options.",
    "instance-metadata-tags",
];

/// Whether `name` is a filter name `DescribeInstances` accepts.
pub fn is_instance_filter_name(name: &str) -> bool {
    INSTANCE_FILTER_NAMES.contains(&name)
        || INSTANCE_FILTER_PREFIXES
            .iter()
            .any(|p| name.starts_with(p) && name.len() > p.len())
}

/// Checks an `instance_filters` map: known names, non-empty value lists, and values that fit
/// EC2's 200 per call once the largest filter is split across calls.
pub fn check_instance_filters(filters: &BTreeMap<String, Vec<String>>) -> Result<(), String> {
    if filters.is_empty() {
        return Err("instance_filters is empty: set at least one filter".into());
    }
    for (name, values) in filters {
        if !is_instance_filter_name(name) {
            return Err(format!(
                "instance_filters: {name:?} is not a DescribeInstances filter name (e.g. \"tag:Env\", \"instance-type\", \"vpc-id\")"
            ));
        }
        if values.is_empty() || values.iter().any(|v| v.is_empty()) {
            return Err(format!(
                "instance_filters.{name} needs at least one non-empty value"
            ));
        }
    }
    // The largest filter's values are split across calls; the others repeat in each call.
    let largest = filters.values().map(Vec::len).max().unwrap_or(0);
    let rest: usize = filters.values().map(Vec::len).sum::<usize>() - largest;
    if rest + 1 > FILTER_VALUES_PER_CALL {
        return Err(format!(
            "instance_filters has {} values besides its largest filter; EC2 takes {FILTER_VALUES_PER_CALL} per call",
            rest
        ));
    }
    Ok(())
}

/// Volumes removed from the selection.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Exclude {
    #[serde(default)]
    pub volume_ids: Option<Vec<String>>,
    #[serde(default)]
    pub volume_tags: Option<BTreeMap<String, String>>,
    #[serde(default)]
    pub root_volumes: Option<bool>,
    /// Instances whose volumes are never snapshotted, whatever selected them.
    #[serde(default)]
    pub instance_ids: Option<Vec<String>>,
}

fn list(v: &Option<Vec<String>>) -> &[String] {
    v.as_deref().unwrap_or(&[])
}

fn map(v: &Option<BTreeMap<String, String>>) -> Option<&BTreeMap<String, String>> {
    v.as_ref().filter(|m| !m.is_empty())
}

impl Select {
    pub fn all(&self) -> bool {
        self.all_volumes.unwrap_or(false)
    }
    pub fn asg_names(&self) -> &[String] {
        list(&self.asg_names)
    }
    pub fn instance_names(&self) -> &[String] {
        list(&self.instance_names)
    }
    pub fn instance_ids(&self) -> &[String] {
        list(&self.instance_ids)
    }
    pub fn instance_tags(&self) -> Option<&BTreeMap<String, String>> {
        map(&self.instance_tags)
    }
    pub fn volume_ids(&self) -> &[String] {
        list(&self.volume_ids)
    }
    pub fn volume_tags(&self) -> Option<&BTreeMap<String, String>> {
        map(&self.volume_tags)
    }
    pub fn instance_filters(&self) -> Option<&BTreeMap<String, Vec<String>>> {
        self.instance_filters.as_ref().filter(|m| !m.is_empty())
    }

    /// True when some source selects instances (and so their attached volumes).
    pub fn has_instance_sources(&self) -> bool {
        !self.asg_names().is_empty()
            || !self.instance_names().is_empty()
            || !self.instance_ids().is_empty()
            || self.instance_tags().is_some()
            || self.instance_filters().is_some()
    }

    pub fn is_empty(&self) -> bool {
        !self.all()
            && !self.has_instance_sources()
            && self.volume_ids().is_empty()
            && self.volume_tags().is_none()
    }

    pub fn validate(&self) -> Result<(), String> {
        if self.is_empty() {
            return Err(
                "the selector is empty: set at least one of all_volumes, asg_names, \
                 instance_names, instance_ids, instance_tags, instance_filters, volume_ids, \
                 volume_tags"
                    .into(),
            );
        }
        for (field, values) in [
            ("asg_names", self.asg_names()),
            ("instance_names", self.instance_names()),
            ("instance_ids", self.instance_ids()),
            ("volume_ids", self.volume_ids()),
        ] {
            if values.iter().any(|v| v.trim().is_empty()) {
                return Err(format!("select.{field} contains an empty value"));
            }
        }
        for (field, m) in [
            ("instance_tags", self.instance_tags()),
            ("volume_tags", self.volume_tags()),
        ] {
            if m.is_some_and(|m| m.len() > MAX_TAG_MATCH) {
                return Err(format!(
                    "select.{field} has {} entries; at most {MAX_TAG_MATCH} (a resource carries at most 50 tags)",
                    m.map_or(0, BTreeMap::len)
                ));
            }
        }
        if let Some(f) = &self.instance_filters {
            check_instance_filters(f).map_err(|e| format!("select.{e}"))?;
        }
        for id in self.instance_ids() {
            if !id.starts_with("i-") {
                return Err(format!(
                    "select.instance_ids: {id:?} is not an instance id (i-...)"
                ));
            }
        }
        for id in self.volume_ids() {
            if !id.starts_with("vol-") {
                return Err(format!(
                    "select.volume_ids: {id:?} is not a volume id (vol-...)"
                ));
            }
        }
        Ok(())
    }
}

impl Exclude {
    pub fn volume_ids(&self) -> &[String] {
        list(&self.volume_ids)
    }
    pub fn volume_tags(&self) -> Option<&BTreeMap<String, String>> {
        map(&self.volume_tags)
    }
    pub fn root_volumes(&self) -> bool {
        self.root_volumes.unwrap_or(false)
    }
    pub fn instance_ids(&self) -> &[String] {
        list(&self.instance_ids)
    }

    pub fn validate(&self) -> Result<(), String> {
        for id in self.instance_ids() {
            if !id.starts_with("i-") {
                return Err(format!(
                    "exclude.instance_ids: {id:?} is not an instance id (i-...)"
                ));
            }
        }
        Ok(())
    }
}

/// An EC2 instance as selection needs it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Instance {
    pub id: String,
    pub state: String,
    pub tags: BTreeMap<String, String>,
    pub root_device: Option<String>,
    /// Every EBS volume attached to the instance (its block device mappings), whether or not it
    /// was described: a crash-consistent set may only be used when all of them were.
    pub volumes: Vec<String>,
}

impl Instance {
    pub fn name(&self) -> Option<&str> {
        self.tags.get("Name").map(String::as_str)
    }

    /// Instances being terminated are ignored; stopped ones are still protected.
    pub fn is_live(&self) -> bool {
        !matches!(self.state.as_str(), "terminated" | "shutting-down")
    }
}

/// An EBS volume as selection needs it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Volume {
    pub id: String,
    pub state: String,
    pub size_gb: i64,
    pub tags: BTreeMap<String, String>,
    /// The first attachment: (instance id, device).
    pub attachment: Option<(String, String)>,
    /// When the volume was created (for overdue detection of never-snapshotted volumes).
    pub created: Option<jiff::Timestamp>,
    /// Its Availability Zone and type (coverage shows them).
    pub zone: String,
    pub volume_type: Option<String>,
}

/// Everything the AWS layer found; a superset of the selection.
#[derive(Debug, Clone, Default)]
pub struct Inventory {
    pub instances: BTreeMap<String, Instance>,
    pub volumes: BTreeMap<String, Volume>,
    /// Current members of each requested Auto Scaling group (missing group: absent).
    pub asg_members: BTreeMap<String, Vec<String>>,
    /// The instances EC2 returned for the selector's `instance_filters` (EC2 evaluates them).
    pub filter_matches: BTreeSet<String>,
}

/// One selected volume, with what the snapshot description and tags need.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Selected {
    pub volume_id: String,
    pub instance_id: Option<String>,
    pub device: Option<String>,
    pub size_gb: i64,
    pub root: bool,
}

/// An explicitly named reference (`asg_names`, `instance_ids`, `volume_ids`) that resolves to
/// nothing: a failure of the run (`NotFound`), since a backup that silently covers less than
/// what was asked for is a lost restore point.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Unresolved {
    /// The selector field, e.g. `select.asg_names`.
    pub source: &'static str,
    pub value: String,
    /// Why it selects nothing, for people.
    pub reason: String,
}

impl Unresolved {
    pub fn message(&self) -> String {
        format!(
            "{} {:?} selects nothing: {}",
            self.source, self.value, self.reason
        )
    }
}

/// The named references of `sel` that resolve to nothing in `inv` (docs/design.md §4). Globs, tags and
/// filters that match nothing are no failure on their own.
pub fn unresolved(sel: &Select, inv: &Inventory) -> Vec<Unresolved> {
    let mut out = Vec::new();
    let mut add = |source, value: &str, reason: String| {
        out.push(Unresolved {
            source,
            value: value.to_string(),
            reason,
        })
    };
    for g in sel.asg_names() {
        if !inv.asg_members.contains_key(g) {
            add(
                "select.asg_names",
                g,
                "no Auto Scaling group of that name in this account and region".into(),
            );
        }
    }
    for id in sel.instance_ids() {
        match inv.instances.get(id) {
            None => add(
                "select.instance_ids",
                id,
                "no such instance (or it is terminated)".into(),
            ),
            Some(i) if !i.is_live() => add(
                "select.instance_ids",
                id,
                format!("the instance is {}", i.state),
            ),
            Some(_) => {}
        }
    }
    for id in sel.volume_ids() {
        let v = inv.volumes.get(id);
        let on = v
            .and_then(|v| v.attachment.as_ref())
            .and_then(|(i, _)| inv.instances.get(i));
        match (v, on) {
            (None, _) => add("select.volume_ids", id, "no such volume".into()),
            (Some(v), _) if matches!(v.state.as_str(), "deleting" | "deleted") => add(
                "select.volume_ids",
                id,
                format!("the volume is {}", v.state),
            ),
            (Some(_), Some(i)) if !i.is_live() => add(
                "select.volume_ids",
                id,
                format!("it is attached to instance {}, which is {}", i.id, i.state),
            ),
            _ => {}
        }
    }
    out
}

/// True when `tags` carries every entry of `want` (`"*"` = the key is present).
pub fn tags_match_all(tags: &BTreeMap<String, String>, want: &BTreeMap<String, String>) -> bool {
    want.iter().all(|(k, v)| tag_matches(tags, k, v))
}

/// True when `tags` carries at least one entry of `want`.
pub fn tags_match_any(tags: &BTreeMap<String, String>, want: &BTreeMap<String, String>) -> bool {
    want.iter().any(|(k, v)| tag_matches(tags, k, v))
}

fn tag_matches(tags: &BTreeMap<String, String>, key: &str, want: &str) -> bool {
    match tags.get(key) {
        Some(have) => want == "*" || have == want,
        None => false,
    }
}

/// A `Name` glob: `*` any run of characters, `?` one character, as EC2 tag filters use them.
pub fn name_matches(glob: &str, name: &str) -> bool {
    WildMatch::new(glob).matches(name)
}

/// Instances selected by the instance sources.
fn selected_instances<'a>(sel: &Select, inv: &'a Inventory) -> BTreeSet<&'a str> {
    let members: BTreeSet<&str> = sel
        .asg_names()
        .iter()
        .filter_map(|g| inv.asg_members.get(g))
        .flatten()
        .map(String::as_str)
        .collect();
    inv.instances
        .values()
        .filter(|i| i.is_live())
        .filter(|i| {
            members.contains(i.id.as_str())
                || sel.instance_ids().contains(&i.id)
                || i.name()
                    .is_some_and(|n| sel.instance_names().iter().any(|g| name_matches(g, n)))
                || sel
                    .instance_tags()
                    .is_some_and(|want| tags_match_all(&i.tags, want))
                || (sel.instance_filters().is_some() && inv.filter_matches.contains(&i.id))
        })
        .map(|i| i.id.as_str())
        .collect()
}

/// Applies docs/design.md §4 to an inventory. The result is sorted by volume id.
pub fn select(sel: &Select, excl: &Exclude, inv: &Inventory) -> Vec<Selected> {
    select_with_exclusions(sel, excl, inv).0
}

/// The `exclude` rule (its field name) that removes a volume the selector matched, if any.
fn exclusion_rule(v: &Volume, root: bool, excl: &Exclude) -> Option<&'static str> {
    if v.attachment
        .as_ref()
        .is_some_and(|(i, _)| excl.instance_ids().contains(i))
    {
        Some("instance_ids")
    } else if excl.volume_ids().contains(&v.id) {
        Some("volume_ids")
    } else if excl
        .volume_tags()
        .is_some_and(|t| tags_match_any(&v.tags, t))
    {
        Some("volume_tags")
    } else if root && excl.root_volumes() {
        Some("root_volumes")
    } else {
        None
    }
}

/// [`select`], plus the volumes the selector matched and `exclude` removed, each with the rule
/// that removed it (`root_volumes`, `volume_ids`, `volume_tags`, `instance_ids`): coverage's
/// `excluded` status.
pub fn select_with_exclusions(
    sel: &Select,
    excl: &Exclude,
    inv: &Inventory,
) -> (Vec<Selected>, Vec<(String, &'static str)>) {
    select_where(sel, excl, inv, false)
}

/// The part of [`select`] on an inventory still being read that later reads cannot undo: the
/// selected volumes that are described and whose instance, when attached, is described too.
/// Every one of them is in `select` of the complete inventory (sources only add, and what
/// excludes a volume is known from the volume and its instance), so a run may snapshot them
/// before the reading ends.
pub fn select_settled(sel: &Select, excl: &Exclude, inv: &Inventory) -> Vec<Selected> {
    select_where(sel, excl, inv, true).0
}

fn select_where(
    sel: &Select,
    excl: &Exclude,
    inv: &Inventory,
    settled_only: bool,
) -> (Vec<Selected>, Vec<(String, &'static str)>) {
    let instances = selected_instances(sel, inv);
    let mut out = Vec::new();
    let mut removed = Vec::new();
    for v in inv.volumes.values() {
        if matches!(v.state.as_str(), "deleting" | "deleted") {
            continue;
        }
        let attached = v
            .attachment
            .as_ref()
            .and_then(|(i, _)| inv.instances.get(i));
        if settled_only && v.attachment.is_some() && attached.is_none() {
            continue;
        }
        // A volume on an instance that is going away is ignored, whatever selected it.
        if attached.is_some_and(|i| !i.is_live()) {
            continue;
        }
        let by_instance = v
            .attachment
            .as_ref()
            .is_some_and(|(i, _)| instances.contains(i.as_str()));
        let by_volume = sel.all()
            || sel.volume_ids().contains(&v.id)
            || sel
                .volume_tags()
                .is_some_and(|want| tags_match_all(&v.tags, want));
        if !(by_instance || by_volume) {
            continue;
        }
        let root = match (&v.attachment, attached) {
            (Some((_, dev)), Some(i)) => i.root_device.as_deref() == Some(dev.as_str()),
            _ => false,
        };
        if let Some(rule) = exclusion_rule(v, root, excl) {
            removed.push((v.id.clone(), rule));
            continue;
        }
        out.push(Selected {
            volume_id: v.id.clone(),
            instance_id: v.attachment.as_ref().map(|(i, _)| i.clone()),
            device: v.attachment.as_ref().map(|(_, d)| d.clone()),
            size_gb: v.size_gb,
            root,
        });
    }
    (out, removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instance_filters_select_what_ec2_matched_and_exclude_instance_ids_wins() {
        let mut inv = inv();
        inv.filter_matches.insert("i-db1".into());
        inv.filter_matches.insert("i-dead".into());
        let sel = Select {
            instance_filters: Some(BTreeMap::from([(
                "tag:Name".to_string(),
                vec!["db-*".to_string()],
            )])),
            ..Select::default()
        };
        let got: Vec<String> = select(&sel, &Exclude::default(), &inv)
            .into_iter()
            .map(|s| s.instance_id.unwrap_or_default())
            .collect();
        assert!(!got.is_empty());
        assert!(
            got.iter().all(|i| i == "i-db1"),
            "only what EC2 matched, live: {got:?}"
        );
        let excl = Exclude {
            instance_ids: Some(vec!["i-db1".into()]),
            ..Exclude::default()
        };
        assert!(select(&sel, &excl, &inv).is_empty());
        // Without the source, filter matches select nothing.
        let other = Select {
            volume_ids: Some(vec!["vol-none".into()]),
            ..Select::default()
        };
        assert!(select(&other, &Exclude::default(), &inv).is_empty());
    }

    #[test]
    fn instance_filters_are_checked_like_ec2_would() {
        let ok = |pairs: &[(&str, &[&str])]| {
            check_instance_filters(
                &pairs
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.iter().map(|s| s.to_string()).collect()))
                    .collect(),
            )
        };
        assert!(ok(&[("tag:Env", &["prod"]), ("instance-id", &["i-1"])]).is_ok());
        assert!(ok(&[("tag:aws:autoscaling:groupName", &["web-*"])]).is_ok());
        assert!(ok(&[("network-interface.subnet-id", &["subnet-1"])]).is_ok());
        assert!(
            ok(&[("colour", &["blue"])])
                .unwrap_err()
                .contains("not a DescribeInstances filter")
        );
        assert!(ok(&[("tag:", &["x"])]).is_err());
        assert!(ok(&[("tag:Env", &[])]).is_err());
        assert!(ok(&[]).is_err());
        let many: Vec<String> = (0..150).map(|i| i.to_string()).collect();
        let f: BTreeMap<String, Vec<String>> = BTreeMap::from([
            ("instance-id".to_string(), many.clone()),
            ("tag:A".to_string(), many.clone()),
            ("tag:B".to_string(), many),
        ]);
        assert!(
            check_instance_filters(&f)
                .unwrap_err()
                .contains("200 per call")
        );
    }

    fn tags(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn inv() -> Inventory {
        let mut inv = Inventory::default();
        let mut inst = |id: &str, state: &str, t: &[(&str, &str)]| {
            inv.instances.insert(
                id.into(),
                Instance {
                    id: id.into(),
                    state: state.into(),
                    tags: tags(t),
                    root_device: Some("/dev/xvda".into()),
                    volumes: vec![],
                },
            );
        };
        inst("i-db1", "running", &[("Name", "db-1"), ("Env", "prod")]);
        inst("i-db2", "stopped", &[("Name", "db-2"), ("Env", "dev")]);
        inst("i-web1", "running", &[("Name", "web-1")]);
        inst("i-dead", "terminated", &[("Name", "db-9"), ("Env", "prod")]);
        let mut vol = |id: &str, att: Option<(&str, &str)>, t: &[(&str, &str)]| {
            inv.volumes.insert(
                id.into(),
                Volume {
                    id: id.into(),
                    state: if att.is_some() { "in-use" } else { "available" }.into(),
                    size_gb: 8,
                    tags: tags(t),
                    attachment: att.map(|(i, d)| (i.to_string(), d.to_string())),
                    ..Default::default()
                },
            );
        };
        vol("vol-db1root", Some(("i-db1", "/dev/xvda")), &[]);
        vol(
            "vol-db1data",
            Some(("i-db1", "/dev/sdf")),
            &[("NoBackup", "yes")],
        );
        vol("vol-db2root", Some(("i-db2", "/dev/xvda")), &[]);
        vol(
            "vol-web1root",
            Some(("i-web1", "/dev/xvda")),
            &[("Tier", "web")],
        );
        vol(
            "vol-dead",
            Some(("i-dead", "/dev/xvda")),
            &[("Tier", "web")],
        );
        vol("vol-free", None, &[("Tier", "web"), ("Owner", "ops")]);
        inv.asg_members
            .insert("web-asg".into(), vec!["i-web1".into(), "i-dead".into()]);
        inv
    }

    fn ids(sel: Select, excl: Exclude) -> Vec<String> {
        select(&sel, &excl, &inv())
            .into_iter()
            .map(|s| s.volume_id)
            .collect()
    }

    #[test]
    fn name_globs_select_every_attached_volume_of_live_instances() {
        let sel = Select {
            instance_names: Some(vec!["db-*".into()]),
            ..Default::default()
        };
        assert_eq!(
            ids(sel, Exclude::default()),
            ["vol-db1data", "vol-db1root", "vol-db2root"]
        );
        let sel = Select {
            instance_names: Some(vec!["db-?".into()]),
            ..Default::default()
        };
        assert_eq!(ids(sel, Exclude::default()).len(), 3);
    }

    #[test]
    fn instance_tags_are_anded_and_star_means_present() {
        let sel = Select {
            instance_tags: Some(tags(&[("Env", "prod")])),
            ..Default::default()
        };
        assert_eq!(ids(sel, Exclude::default()), ["vol-db1data", "vol-db1root"]);
        let sel = Select {
            instance_tags: Some(tags(&[("Env", "*"), ("Name", "db-2")])),
            ..Default::default()
        };
        assert_eq!(ids(sel, Exclude::default()), ["vol-db2root"]);
    }

    #[test]
    fn asg_members_ids_and_union() {
        let sel = Select {
            asg_names: Some(vec!["web-asg".into(), "missing".into()]),
            instance_ids: Some(vec!["i-db2".into()]),
            ..Default::default()
        };
        assert_eq!(
            ids(sel, Exclude::default()),
            ["vol-db2root", "vol-web1root"]
        );
    }

    #[test]
    fn volume_sources_and_all() {
        let sel = Select {
            volume_tags: Some(tags(&[("Tier", "web")])),
            ..Default::default()
        };
        assert_eq!(ids(sel, Exclude::default()), ["vol-free", "vol-web1root"]);
        let sel = Select {
            volume_ids: Some(vec!["vol-free".into()]),
            ..Default::default()
        };
        assert_eq!(ids(sel, Exclude::default()), ["vol-free"]);
        let sel = Select {
            all_volumes: Some(true),
            ..Default::default()
        };
        assert_eq!(
            ids(sel, Exclude::default()).len(),
            5,
            "all but the terminated instance's"
        );
    }

    #[test]
    fn exclusions() {
        let all = || Select {
            all_volumes: Some(true),
            ..Default::default()
        };
        let ex = Exclude {
            root_volumes: Some(true),
            ..Default::default()
        };
        assert_eq!(ids(all(), ex), ["vol-db1data", "vol-free"]);
        let ex = Exclude {
            volume_tags: Some(tags(&[("NoBackup", "*"), ("Owner", "ops")])),
            volume_ids: Some(vec!["vol-db2root".into()]),
            ..Default::default()
        };
        assert_eq!(ids(all(), ex), ["vol-db1root", "vol-web1root"]);
    }

    #[test]
    fn selected_carries_instance_and_device() {
        let sel = Select {
            volume_ids: Some(vec!["vol-db1data".into()]),
            ..Default::default()
        };
        let got = select(&sel, &Exclude::default(), &inv());
        assert_eq!(got[0].instance_id.as_deref(), Some("i-db1"));
        assert_eq!(got[0].device.as_deref(), Some("/dev/sdf"));
        assert!(!got[0].root);
    }

    #[test]
    fn named_references_that_resolve_to_nothing_are_listed() {
        let sel = Select {
            asg_names: Some(vec!["web-asg".into(), "gone-asg".into()]),
            instance_ids: Some(vec!["i-db1".into(), "i-dead".into(), "i-nope".into()]),
            volume_ids: Some(vec![
                "vol-free".into(),
                "vol-dead".into(),
                "vol-nope".into(),
            ]),
            instance_names: Some(vec!["nothing-*".into()]),
            volume_tags: Some(tags(&[("Nope", "*")])),
            ..Default::default()
        };
        let got: Vec<(&str, String)> = unresolved(&sel, &inv())
            .into_iter()
            .map(|u| (u.source, u.value))
            .collect();
        assert_eq!(
            got,
            [
                ("select.asg_names", "gone-asg".to_string()),
                ("select.instance_ids", "i-dead".to_string()),
                ("select.instance_ids", "i-nope".to_string()),
                ("select.volume_ids", "vol-dead".to_string()),
                ("select.volume_ids", "vol-nope".to_string()),
            ],
            "globs and tags that match nothing are no failure"
        );
        let u = &unresolved(&sel, &inv())[1];
        assert_eq!(
            u.message(),
            "select.instance_ids \"i-dead\" selects nothing: the instance is terminated"
        );
    }

    #[test]
    fn empty_selector_is_invalid() {
        assert!(
            Select::default()
                .validate()
                .unwrap_err()
                .contains("selector is empty")
        );
        let s = Select {
            instance_tags: Some(BTreeMap::new()),
            ..Default::default()
        };
        assert!(s.validate().is_err());
        let s = Select {
            volume_ids: Some(vec!["i-123".into()]),
            ..Default::default()
        };
        assert!(s.validate().is_err());
    }

    mod settled {
        use super::*;
        use proptest::prelude::*;

        /// (state, Name, Env, in filter matches) of an instance `i-<n>`.
        fn arb_instance() -> impl Strategy<Value = (u8, bool, bool, bool)> {
            (0u8..3, any::<bool>(), any::<bool>(), any::<bool>())
        }

        /// (attached to instance n (or none), root device, Backup tag, NoBackup tag) of a volume.
        fn arb_volume() -> impl Strategy<Value = (Option<usize>, bool, bool, bool)> {
            (
                proptest::option::of(0usize..5),
                any::<bool>(),
                any::<bool>(),
                any::<bool>(),
            )
        }

        fn build(
            instances: &[(u8, bool, bool, bool)],
            volumes: &[(Option<usize>, bool, bool, bool)],
        ) -> Inventory {
            let mut inv = Inventory::default();
            for (n, (state, web, prod, matched)) in instances.iter().enumerate() {
                let id = format!("i-{n}");
                let mut t = vec![("Name", if *web { "web-1" } else { "db-1" })];
                if *prod {
                    t.push(("Env", "prod"));
                }
                inv.instances.insert(
                    id.clone(),
                    Instance {
                        id: id.clone(),
                        state: ["running", "stopped", "terminated"][*state as usize].into(),
                        tags: tags(&t),
                        root_device: Some("/dev/xvda".into()),
                        volumes: vec![],
                    },
                );
                if *matched {
                    inv.filter_matches.insert(id);
                }
            }
            for (n, (on, root, backup, nobackup)) in volumes.iter().enumerate() {
                let id = format!("vol-{n}");
                let on = on
                    .filter(|i| *i < instances.len())
                    .map(|i| format!("i-{i}"));
                let dev = if *root { "/dev/xvda" } else { "/dev/sdf" };
                if let Some(i) = &on {
                    inv.instances.get_mut(i).unwrap().volumes.push(id.clone());
                }
                let mut t = Vec::new();
                if *backup {
                    t.push(("Backup", "yes"));
                }
                if *nobackup {
                    t.push(("NoBackup", "yes"));
                }
                inv.volumes.insert(
                    id.clone(),
                    Volume {
                        id,
                        state: if on.is_some() { "in-use" } else { "available" }.into(),
                        tags: tags(&t),
                        attachment: on.map(|i| (i, dev.to_string())),
                        ..Default::default()
                    },
                );
            }
            inv
        }

        fn selectors() -> Vec<(Select, Exclude)> {
            let web = Select {
                instance_names: Some(vec!["web-*".into()]),
                ..Default::default()
            };
            let mixed = Select {
                instance_tags: Some(tags(&[("Env", "prod")])),
                volume_tags: Some(tags(&[("Backup", "yes")])),
                volume_ids: Some(vec!["vol-3".into()]),
                instance_filters: Some(BTreeMap::from([(
                    "tag:Name".to_string(),
                    vec!["db-1".to_string()],
                )])),
                ..Default::default()
            };
            let all = Select {
                all_volumes: Some(true),
                ..Default::default()
            };
            let excl = Exclude {
                volume_tags: Some(tags(&[("NoBackup", "yes")])),
                root_volumes: Some(true),
                instance_ids: Some(vec!["i-2".into()]),
                ..Default::default()
            };
            vec![
                (web.clone(), Exclude::default()),
                (web, excl.clone()),
                (mixed.clone(), Exclude::default()),
                (mixed, excl.clone()),
                (all, excl),
            ]
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(2_000))]

            /// What a partly read inventory settles is selected, identically, once the inventory
            /// is complete (what makes pipelined creations safe), and a complete inventory
            /// settles exactly the selection.
            #[test]
            fn what_a_partial_inventory_settles_stays_selected(
                instances in proptest::collection::vec(arb_instance(), 0..5),
                volumes in proptest::collection::vec(arb_volume(), 0..8),
                read_instances in proptest::collection::vec(any::<bool>(), 5),
                read_volumes in proptest::collection::vec(any::<bool>(), 8),
                matches_read in proptest::collection::vec(any::<bool>(), 5),
            ) {
                let full = build(&instances, &volumes);
                let mut partial = full.clone();
                partial.instances.retain(|id, _| {
                    read_instances[id[2..].parse::<usize>().unwrap()]
                });
                // An instance read by another source may not be known to match the filters yet.
                partial.filter_matches.retain(|id| {
                    partial.instances.contains_key(id)
                        && matches_read[id[2..].parse::<usize>().unwrap()]
                });
                partial.volumes.retain(|id, _| read_volumes[id[4..].parse::<usize>().unwrap()]);
                for (sel, excl) in selectors() {
                    let complete = select(&sel, &excl, &full);
                    for s in select_settled(&sel, &excl, &partial) {
                        prop_assert!(complete.contains(&s), "{s:?} settled early but not selected: {complete:?}");
                    }
                    prop_assert_eq!(select_settled(&sel, &excl, &full), complete);
                }
            }
        }
    }
}
