//! EC2 and Auto Scaling calls, as intents: "fetch what this selector may match", "list this
//! policy's snapshots", "create a snapshot with these tags", "delete this snapshot".
//!
//! Describe calls are filtered server-side (a superset of the selection; the pure core decides),
//! paginated, and batched at EC2's 200 values per filter, so the number of calls grows with pages,
//! not with volumes.

use std::collections::{BTreeMap, BTreeSet};

use aws_sdk_ec2::types::{
    Filter, InstanceSpecification, ResourceType, Snapshot, Tag, TagSpecification,
};
use jiff::Timestamp;

use super::aws_error;
use crate::core::migrate::OldSnapshot;
use crate::core::restore::{Point, Shape, TAG_REQUEST, TAG_RESTORE_OF};
use crate::core::restore_test::TAG_RESTORE_TEST;
use crate::core::retention::{Snap, SnapState};
use crate::core::select::{FILTER_VALUES_PER_CALL, Instance, Inventory, Select, Volume};
use crate::core::tags::{
    TAG_POLICY, TAG_RUN, TAG_SOURCE_SNAPSHOT, TAG_SOURCE_TIME, TAG_SOURCE_VOLUME, TAG_TARGET,
    TAG_VOLUME,
};
use crate::error::AwsError;

/// Auto Scaling accepts at most 100 group names per DescribeAutoScalingGroups.
const ASG_BATCH: usize = 50;
const LIVE_STATES: [&str; 4] = ["pending", "running", "stopping", "stopped"];

/// How many values a batched filter may carry next to `fixed` (the other filters of the call).
fn batch_size(fixed: &[Filter]) -> usize {
    let used: usize = fixed.iter().map(|f| f.values().len()).sum();
    FILTER_VALUES_PER_CALL.saturating_sub(used).max(1)
}

/// Describe calls for `values` batched under the per-call limit, each with the `fixed` filters.
fn batches(fixed: &[Filter], name: &str, values: &[String]) -> Vec<Vec<Filter>> {
    values
        .chunks(batch_size(fixed))
        .map(|chunk| {
            let mut f = fixed.to_vec();
            f.push(filter(name, chunk));
            f
        })
        .collect()
}

fn filter(name: &str, values: &[String]) -> Filter {
    Filter::builder()
        .name(name)
        .set_values(Some(values.to_vec()))
        .build()
}

fn tag_filters(want: &BTreeMap<String, String>) -> Vec<Filter> {
    want.iter()
        .map(|(k, v)| {
            if v == "*" {
                filter("tag-key", std::slice::from_ref(k))
            } else {
                filter(&format!("tag:{k}"), std::slice::from_ref(v))
            }
        })
        .collect()
}

fn tag_map(tags: &[Tag]) -> BTreeMap<String, String> {
    tags.iter()
        .filter_map(|t| {
            Some((
                t.key()?.to_string(),
                t.value().unwrap_or_default().to_string(),
            ))
        })
        .collect()
}

/// Describes instances matching `filters` (ANDed), page by page, into `inv`.
/// The calls that evaluate `instance_filters` (AND-ed; the live states added unless the user
/// filters on state): the largest filter's values are split so that no call carries more than
/// EC2's 200 values. The union of the calls is exactly the AND of the filters.
fn instance_filter_calls(f: &BTreeMap<String, Vec<String>>, live: &[Filter]) -> Vec<Vec<Filter>> {
    let mut fixed: Vec<Filter> = if f.contains_key("instance-state-name") {
        Vec::new()
    } else {
        live.to_vec()
    };
    let largest = f
        .iter()
        .max_by_key(|(_, v)| v.len())
        .map(|(k, _)| k.clone())
        .unwrap_or_default();
    for (name, values) in f {
        if *name != largest {
            fixed.push(filter(name, values));
        }
    }
    batches(&fixed, &largest, &f[&largest])
}

/// The inventory as it is read, for a caller that acts on it while the reading goes on (the
/// target run's pipelined creations, docs/design.md §5): called after each page of instances
/// (with that page's attached volumes) and once more when the inventory is complete (`true`).
/// Returning `false` stops the reading.
pub type PageSink<'s> = dyn FnMut(&Inventory, bool) -> bool + Send + 's;

/// An instance's state name (`running`, `stopped`, ...), empty when EC2 gave none.
fn instance_state(i: &aws_sdk_ec2::types::Instance) -> String {
    i.state()
        .and_then(|s| s.name())
        .map(|n| n.as_str().to_string())
        .unwrap_or_default()
}

fn instance_of(i: &aws_sdk_ec2::types::Instance) -> Option<Instance> {
    Some(Instance {
        id: i.instance_id()?.to_string(),
        state: instance_state(i),
        tags: tag_map(i.tags()),
        root_device: i.root_device_name().map(String::from),
        volumes: i
            .block_device_mappings()
            .iter()
            .filter_map(|b| b.ebs()?.volume_id().map(String::from))
            .collect(),
    })
}

/// Reads an inventory; with a sink, page by page with each page's volumes right after it.
struct Reader<'a, 's> {
    ec2: &'a aws_sdk_ec2::Client,
    inv: Inventory,
    sink: Option<&'a mut PageSink<'s>>,
    /// Instances whose attached volumes were read.
    volumes_read: BTreeSet<String>,
    stopped: bool,
}

/// Instances per `DescribeInstances` page when the reading feeds creations: a page of 200 starts
/// the first creation sooner than one of 1,000 and a page's instance descriptions, held while it
/// is converted, take a fifth of the memory; the cost is more calls to a read API whose budget is
/// far larger than the mutating ones'.
const PIPELINED_PAGE: i32 = 200;

impl<'a, 's> Reader<'a, 's> {
    fn new(ec2: &'a aws_sdk_ec2::Client, sink: Option<&'a mut PageSink<'s>>) -> Self {
        Reader {
            ec2,
            inv: Inventory::default(),
            sink,
            volumes_read: BTreeSet::new(),
            stopped: false,
        }
    }

    /// Describes instances matching `filters` (ANDed), page by page. `matches`: they are what EC2
    /// matched for `instance_filters`. With a sink and `with_volumes`, each page's attached
    /// volumes are read before the sink sees the page.
    async fn instances(
        &mut self,
        filters: Vec<Filter>,
        matches: bool,
        with_volumes: bool,
    ) -> Result<(), AwsError> {
        if self.stopped {
            return Ok(());
        }
        let mut pages = self
            .ec2
            .describe_instances()
            .set_filters(Some(filters))
            .max_results(if self.sink.is_some() {
                PIPELINED_PAGE
            } else {
                1000
            })
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| aws_error("describing EC2 instances", e))?;
            let mut found = Vec::new();
            for i in page.reservations().iter().flat_map(|r| r.instances()) {
                let Some(i) = instance_of(i) else { continue };
                found.push(i.id.clone());
                self.inv.instances.insert(i.id.clone(), i);
            }
            if matches {
                self.inv.filter_matches.extend(found.iter().cloned());
            }
            if self.sink.is_none() || !with_volumes {
                continue;
            }
            let unread: Vec<String> = found
                .into_iter()
                .filter(|i| self.volumes_read.insert(i.clone()))
                .collect();
            for filters in batches(&[], "attachment.instance-id", &unread) {
                describe_volumes(self.ec2, filters, &mut self.inv).await?;
            }
            if !self.emit(false) {
                return Ok(());
            }
        }
        Ok(())
    }

    /// Shows the inventory so far to the sink; false once it asked to stop.
    fn emit(&mut self, complete: bool) -> bool {
        if let Some(sink) = self.sink.as_mut() {
            self.stopped |= !sink(&self.inv, complete);
        }
        !self.stopped
    }
}

async fn describe_volumes(
    ec2: &aws_sdk_ec2::Client,
    filters: Vec<Filter>,
    inv: &mut Inventory,
) -> Result<(), AwsError> {
    let mut pages = ec2
        .describe_volumes()
        .set_filters(Some(filters))
        .max_results(500)
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| aws_error("describing EBS volumes", e))?;
        for v in page.volumes() {
            let Some(id) = v.volume_id() else { continue };
            let attachment = v.attachments().iter().find_map(|a| {
                Some((
                    a.instance_id()?.to_string(),
                    a.device().unwrap_or_default().to_string(),
                ))
            });
            inv.volumes.insert(
                id.to_string(),
                Volume {
                    id: id.to_string(),
                    state: v
                        .state()
                        .map(|s| s.as_str().to_string())
                        .unwrap_or_default(),
                    size_gb: v.size().map(i64::from).unwrap_or_default(),
                    tags: tag_map(v.tags()),
                    attachment,
                    created: v
                        .create_time()
                        .and_then(|t| Timestamp::new(t.secs(), t.subsec_nanos() as i32).ok()),
                    zone: v.availability_zone().unwrap_or_default().to_string(),
                    volume_type: v.volume_type().map(|t| t.as_str().to_string()),
                },
            );
        }
    }
    Ok(())
}

async fn describe_asgs(
    asg: &aws_sdk_autoscaling::Client,
    names: &[String],
    inv: &mut Inventory,
) -> Result<(), AwsError> {
    for batch in names.chunks(ASG_BATCH) {
        let mut pages = asg
            .describe_auto_scaling_groups()
            .set_auto_scaling_group_names(Some(batch.to_vec()))
            .max_records(100)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| aws_error("describing Auto Scaling groups", e))?;
            for g in page.auto_scaling_groups() {
                let Some(name) = g.auto_scaling_group_name() else {
                    continue;
                };
                let members = g
                    .instances()
                    .iter()
                    .filter_map(|i| i.instance_id().map(String::from))
                    .collect();
                inv.asg_members.insert(name.to_string(), members);
            }
        }
    }
    Ok(())
}

/// Fetches a superset of what `sel` may select, with as few Describe calls as the sources allow.
pub async fn fetch_inventory(
    ec2: &aws_sdk_ec2::Client,
    asg: &aws_sdk_autoscaling::Client,
    sel: &Select,
) -> Result<Inventory, AwsError> {
    read_inventory(ec2, asg, sel, None).await
}

/// [`fetch_inventory`], showing the inventory to `sink` as it is read: after each page of
/// instances with that page's attached volumes (so what the page selects can be acted on while
/// later pages are read), and once complete. Instance sources come first, then volume sources.
/// With a sink, attached volumes are read per page (the same volumes, in more calls of fewer
/// values), and `all_volumes` reads every volume once more at the end for the unattached ones.
/// A sink that answers `false` ends the reading early with what was read.
pub async fn read_inventory(
    ec2: &aws_sdk_ec2::Client,
    asg: &aws_sdk_autoscaling::Client,
    sel: &Select,
    sink: Option<&mut PageSink<'_>>,
) -> Result<Inventory, AwsError> {
    let mut r = Reader::new(ec2, sink);
    let live = [filter(
        "instance-state-name",
        &LIVE_STATES.map(String::from),
    )];
    if !sel.asg_names().is_empty() {
        describe_asgs(asg, sel.asg_names(), &mut r.inv).await?;
    }
    if sel.all() {
        // Everything: one paginated call each, no per-source calls needed.
        r.instances(vec![], false, true).await?;
        if !r.stopped {
            describe_volumes(ec2, vec![], &mut r.inv).await?;
            r.emit(true);
        }
        return Ok(r.inv);
    }
    let mut ids: BTreeSet<String> = sel.instance_ids().iter().cloned().collect();
    ids.extend(r.inv.asg_members.values().flatten().cloned());
    let ids: Vec<String> = ids.into_iter().collect();
    for filters in batches(&live, "instance-id", &ids) {
        r.instances(filters, false, true).await?;
    }
    for filters in batches(&live, "tag:Name", sel.instance_names()) {
        r.instances(filters, false, true).await?;
    }
    if let Some(want) = sel.instance_tags() {
        let mut filters = live.to_vec();
        filters.extend(tag_filters(want));
        r.instances(filters, false, true).await?;
    }
    if let Some(f) = sel.instance_filters() {
        for filters in instance_filter_calls(f, &live) {
            r.instances(filters, true, true).await?;
        }
    }
    if r.stopped {
        return Ok(r.inv);
    }
    let unread: Vec<String> = r
        .inv
        .instances
        .keys()
        .filter(|i| !r.volumes_read.contains(*i))
        .cloned()
        .collect();
    for filters in batches(&[], "attachment.instance-id", &unread) {
        describe_volumes(ec2, filters, &mut r.inv).await?;
    }
    for filters in batches(&[], "volume-id", sel.volume_ids()) {
        describe_volumes(ec2, filters, &mut r.inv).await?;
    }
    if let Some(want) = sel.volume_tags() {
        describe_volumes(ec2, tag_filters(want), &mut r.inv).await?;
    }
    // Volumes selected by volume sources may sit on instances we have not seen: their state,
    // root device and tags matter.
    let unknown: BTreeSet<String> = r
        .inv
        .volumes
        .values()
        .filter_map(|v| v.attachment.as_ref().map(|(i, _)| i.clone()))
        .filter(|i| !r.inv.instances.contains_key(i))
        .collect();
    let unknown: Vec<String> = unknown.into_iter().collect();
    for filters in batches(&[], "instance-id", &unknown) {
        r.instances(filters, false, false).await?;
    }
    r.emit(true);
    Ok(r.inv)
}

/// The inventory of a continuing link that carries the run's remaining volumes
/// (docs/design.md §5): those volumes by id (200 per call; a volume that no longer exists is not
/// returned), the instances they are attached to (in any state: a terminating one still
/// unselects its volumes), with `siblings` every volume attached to those instances (a
/// crash-consistent set excludes the others by id), and the selector's Auto Scaling groups
/// (membership selects). Shown to `sink` after each batch of 200 volumes and once complete.
pub async fn read_listed_volumes(
    ec2: &aws_sdk_ec2::Client,
    asg: &aws_sdk_autoscaling::Client,
    sel: &Select,
    volume_ids: &[String],
    siblings: bool,
    sink: Option<&mut PageSink<'_>>,
) -> Result<Inventory, AwsError> {
    let mut r = Reader::new(ec2, sink);
    if !sel.asg_names().is_empty() {
        describe_asgs(asg, sel.asg_names(), &mut r.inv).await?;
    }
    for chunk in volume_ids.chunks(FILTER_VALUES_PER_CALL) {
        describe_volumes(ec2, vec![filter("volume-id", chunk)], &mut r.inv).await?;
        let unknown: BTreeSet<String> = chunk
            .iter()
            .filter_map(|v| r.inv.volumes.get(v)?.attachment.as_ref())
            .map(|(i, _)| i.clone())
            .filter(|i| !r.inv.instances.contains_key(i))
            .collect();
        let unknown: Vec<String> = unknown.into_iter().collect();
        for filters in batches(&[], "instance-id", &unknown) {
            r.instances(filters, false, siblings).await?;
        }
        if !r.emit(false) {
            return Ok(r.inv);
        }
    }
    r.emit(true);
    Ok(r.inv)
}

/// A snapshot ebssnap manages (tagged `ebssnap:policy`), as listed from EC2.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManagedSnapshot {
    pub id: String,
    pub volume_id: Option<String>,
    pub state: String,
    pub start_time: Timestamp,
    pub tags: BTreeMap<String, String>,
    pub encrypted: bool,
    /// The key of an encrypted snapshot.
    pub kms_key_id: Option<String>,
}

impl ManagedSnapshot {
    fn from_sdk(s: &Snapshot) -> Option<Self> {
        let start = s.start_time()?;
        Some(ManagedSnapshot {
            id: s.snapshot_id()?.to_string(),
            volume_id: s.volume_id().map(String::from),
            state: s
                .state()
                .map(|x| x.as_str().to_string())
                .unwrap_or_default(),
            start_time: Timestamp::new(start.secs(), start.subsec_nanos() as i32).ok()?,
            tags: tag_map(s.tags()),
            encrypted: s.encrypted().unwrap_or(false),
            kms_key_id: s.kms_key_id().map(String::from),
        })
    }

    pub fn tag(&self, key: &str) -> Option<&str> {
        self.tags.get(key).map(String::as_str)
    }

    /// The (target, volume) pair key: the `ebssnap:volume` tag, else EC2's `VolumeId`
    /// (crash-consistent sets carry the shared ebssnap tags only).
    pub fn volume(&self) -> String {
        self.tag(TAG_VOLUME)
            .map(String::from)
            .or_else(|| self.volume_id.clone())
            .unwrap_or_default()
    }

    /// The planner's view. Listed with `OwnerIds=self`, so owned.
    pub fn to_snap(&self) -> Snap {
        Snap {
            id: self.id.clone(),
            owned: true,
            policy: self.tag(TAG_POLICY).map(String::from),
            target: self.tag(TAG_TARGET).map(String::from),
            volume: self.volume(),
            run: self.tag(TAG_RUN).map(String::from),
            state: SnapState::from_ec2(&self.state),
            // A copy is as old as the restore point it copies.
            start_time: self
                .tag(TAG_SOURCE_TIME)
                .and_then(|t| t.parse().ok())
                .unwrap_or(self.start_time),
            copy: self.tags.contains_key(TAG_SOURCE_SNAPSHOT),
        }
    }
}

/// Lists this account's snapshots of a policy (and target; and of one run, by its run key), in
/// one paginated call.
pub async fn list_managed_snapshots(
    ec2: &aws_sdk_ec2::Client,
    policy: &str,
    target: Option<&str>,
    run_key: Option<&str>,
) -> Result<Vec<ManagedSnapshot>, AwsError> {
    let mut filters = vec![filter(&format!("tag:{TAG_POLICY}"), &[policy.to_string()])];
    if let Some(t) = target {
        filters.push(filter(&format!("tag:{TAG_TARGET}"), &[t.to_string()]));
    }
    if let Some(r) = run_key {
        filters.push(filter(&format!("tag:{TAG_RUN}"), &[r.to_string()]));
    }
    own_snapshots(
        ec2,
        filters,
        &format!("listing EBS snapshots of policy {policy}"),
        ManagedSnapshot::from_sdk,
    )
    .await
}

/// The snapshots of one run of a target taken of `volume_ids`: how a creation whose answer was
/// lost is resolved (docs/design.md §5, exactly once). One filtered call per 197 volumes: the
/// look-ups of a whole wave of creations share it. Matched on `VolumeId`, which both a single
/// snapshot and a member of a crash-consistent set carry (a set has no `ebssnap:volume` tag).
pub async fn find_run_snapshots(
    ec2: &aws_sdk_ec2::Client,
    policy: &str,
    target: &str,
    run_key: &str,
    volume_ids: &[String],
) -> Result<Vec<ManagedSnapshot>, AwsError> {
    let fixed = [
        filter(&format!("tag:{TAG_POLICY}"), &[policy.to_string()]),
        filter(&format!("tag:{TAG_TARGET}"), &[target.to_string()]),
        filter(&format!("tag:{TAG_RUN}"), &[run_key.to_string()]),
    ];
    let mut out = Vec::new();
    for filters in batches(&fixed, "volume-id", volume_ids) {
        let found = own_snapshots(
            ec2,
            filters,
            &format!("looking up the snapshots of run {run_key} of {policy}/{target}"),
            ManagedSnapshot::from_sdk,
        )
        .await?;
        out.extend(found);
    }
    Ok(out)
}

/// Whether a snapshot of the account carries this run of a target: pages of at most 5, until the
/// first match (a filtered page may be empty and still have a next one).
pub async fn run_has_snapshot(
    ec2: &aws_sdk_ec2::Client,
    policy: &str,
    target: &str,
    run_key: &str,
) -> Result<bool, AwsError> {
    let filters = vec![
        filter(&format!("tag:{TAG_POLICY}"), &[policy.to_string()]),
        filter(&format!("tag:{TAG_TARGET}"), &[target.to_string()]),
        filter(&format!("tag:{TAG_RUN}"), &[run_key.to_string()]),
    ];
    let mut pages = ec2
        .describe_snapshots()
        .owner_ids("self")
        .set_filters(Some(filters))
        .max_results(5)
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| {
            aws_error(
                format!("looking up a snapshot of run {run_key} of {policy}/{target}"),
                e,
            )
        })?;
        if !page.snapshots().is_empty() {
            return Ok(true);
        }
    }
    Ok(false)
}

/// What `keep` makes of every snapshot of the account matching `filters` (paginated
/// DescribeSnapshots), page by page: only one page of the SDK's snapshots is held at a time.
async fn own_snapshots<T>(
    ec2: &aws_sdk_ec2::Client,
    filters: Vec<Filter>,
    action: &str,
    keep: impl Fn(&Snapshot) -> Option<T>,
) -> Result<Vec<T>, AwsError> {
    let mut pages = ec2
        .describe_snapshots()
        .owner_ids("self")
        .set_filters(Some(filters))
        .max_results(1000)
        .into_paginator()
        .send();
    let mut out = Vec::new();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| aws_error(action, e))?;
        out.extend(page.snapshots().iter().filter_map(&keep));
    }
    Ok(out)
}

/// The account's own snapshots of `volume_ids` that carry a `DeleteOn` tag (ebs_snapper's).
pub async fn list_delete_on_snapshots(
    ec2: &aws_sdk_ec2::Client,
    volume_ids: &[String],
) -> Result<Vec<OldSnapshot>, AwsError> {
    let fixed = [filter("tag-key", &["DeleteOn".to_string()])];
    let mut out = Vec::new();
    for filters in batches(&fixed, "volume-id", volume_ids) {
        let old = own_snapshots(ec2, filters, "listing DeleteOn snapshots", |s| {
            Some(OldSnapshot {
                id: s.snapshot_id()?.to_string(),
                volume_id: s.volume_id().map(String::from),
                description: s.description().unwrap_or_default().to_string(),
                start_time: Timestamp::from_second(s.start_time()?.secs()).ok()?,
                tags: tag_map(s.tags()),
            })
        })
        .await?;
        out.extend(old);
    }
    out.sort_by(|a, b| a.id.cmp(&b.id));
    Ok(out)
}

/// Adds `tags` to one snapshot (nothing else about it changes).
pub async fn tag_snapshot(
    ec2: &aws_sdk_ec2::Client,
    snapshot_id: &str,
    tags: &BTreeMap<String, String>,
) -> Result<(), AwsError> {
    ec2.create_tags()
        .resources(snapshot_id)
        .set_tags(Some(
            tags.iter()
                .map(|(k, v)| Tag::builder().key(k).value(v).build())
                .collect(),
        ))
        .send()
        .await
        .map_err(|e| aws_error(format!("tagging EBS snapshot {snapshot_id}"), e))?;
    Ok(())
}

/// Which of `ids` still exist (for orphan detection in a sweep).
pub async fn existing_volumes(
    ec2: &aws_sdk_ec2::Client,
    ids: &[String],
) -> Result<BTreeSet<String>, AwsError> {
    let mut inv = Inventory::default();
    for filters in batches(&[], "volume-id", ids) {
        describe_volumes(ec2, filters, &mut inv).await?;
    }
    Ok(inv.volumes.into_keys().collect())
}

fn tag_spec(tags: &[(String, String)]) -> TagSpecification {
    TagSpecification::builder()
        .resource_type(ResourceType::Snapshot)
        .set_tags(Some(
            tags.iter()
                .map(|(k, v)| Tag::builder().key(k).value(v).build())
                .collect(),
        ))
        .build()
}

/// Creates one snapshot with its whole tag set applied at creation.
pub async fn create_snapshot(
    ec2: &aws_sdk_ec2::Client,
    volume_id: &str,
    description: &str,
    tags: &[(String, String)],
) -> Result<String, AwsError> {
    let out = ec2
        .create_snapshot()
        .volume_id(volume_id)
        .description(description)
        .tag_specifications(tag_spec(tags))
        .send()
        .await
        .map_err(|e| aws_error(format!("creating EBS snapshot of {volume_id}"), e))?;
    out.snapshot_id.ok_or_else(|| AwsError {
        action: format!("creating EBS snapshot of {volume_id}"),
        code: "MissingSnapshotId".into(),
        message: "CreateSnapshot answered without a snapshot id".into(),
        retryable: false,
        ambiguous: false,
    })
}

/// Creates a crash-consistent set of an instance's volumes; `tags` are the shared ebssnap tags,
/// and with `copy_volume_tags` EC2 copies each volume's own tags (`CopyTagsFromSource=volume`).
/// Returns (snapshot, volume).
pub async fn create_snapshots(
    ec2: &aws_sdk_ec2::Client,
    instance_id: &str,
    exclude_boot: bool,
    exclude_data_volumes: &[String],
    description: &str,
    tags: &[(String, String)],
    copy_volume_tags: bool,
) -> Result<Vec<(String, String)>, AwsError> {
    let spec = InstanceSpecification::builder()
        .instance_id(instance_id)
        .exclude_boot_volume(exclude_boot)
        .set_exclude_data_volume_ids(
            (!exclude_data_volumes.is_empty()).then(|| exclude_data_volumes.to_vec()),
        )
        .build();
    let out = ec2
        .create_snapshots()
        .instance_specification(spec)
        .description(description)
        .set_copy_tags_from_source(
            copy_volume_tags.then_some(aws_sdk_ec2::types::CopyTagsFromSource::Volume),
        )
        .tag_specifications(tag_spec(tags))
        .send()
        .await
        .map_err(|e| aws_error(format!("creating EBS snapshot set of {instance_id}"), e))?;
    Ok(out
        .snapshots()
        .iter()
        .filter_map(|s| Some((s.snapshot_id()?.to_string(), s.volume_id()?.to_string())))
        .collect())
}

/// How a delete ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Deleted {
    Deleted,
    /// Already gone: counts as success.
    Gone,
    /// Referenced by an AMI (`InvalidSnapshot.InUse`): skipped and reported.
    InUse(String),
}

pub async fn delete_snapshot(
    ec2: &aws_sdk_ec2::Client,
    snapshot_id: &str,
) -> Result<Deleted, AwsError> {
    match ec2.delete_snapshot().snapshot_id(snapshot_id).send().await {
        Ok(_) => Ok(Deleted::Deleted),
        Err(e) => {
            let e = aws_error(format!("deleting EBS snapshot {snapshot_id}"), e);
            match e.code.as_str() {
                "InvalidSnapshot.NotFound" => Ok(Deleted::Gone),
                "InvalidSnapshot.InUse" => Ok(Deleted::InUse(e.message)),
                _ => Err(e),
            }
        }
    }
}

// ---- Disaster-recovery copies (docs/design.md §13) ----

/// A policy's copies (of one target, or all) in the Region `ec2` reaches, in one paginated call:
/// found by their tags
/// (`ebssnap:source-snapshot` present), never by `VolumeId`.
pub async fn list_copies(
    ec2: &aws_sdk_ec2::Client,
    policy: &str,
    target: Option<&str>,
) -> Result<Vec<ManagedSnapshot>, AwsError> {
    let mut filters = vec![
        filter(&format!("tag:{TAG_POLICY}"), &[policy.to_string()]),
        filter("tag-key", &[TAG_SOURCE_SNAPSHOT.to_string()]),
    ];
    if let Some(t) = target {
        filters.push(filter(&format!("tag:{TAG_TARGET}"), &[t.to_string()]));
    }
    own_snapshots(
        ec2,
        filters,
        &format!("listing the copies of policy {policy}"),
        ManagedSnapshot::from_sdk,
    )
    .await
}

/// The copies of these source snapshots (a copy whose answer was lost is looked up this way
/// before anything is sent again): one filtered call per 197 sources.
pub async fn find_copies(
    ec2: &aws_sdk_ec2::Client,
    policy: &str,
    sources: &[String],
) -> Result<Vec<ManagedSnapshot>, AwsError> {
    let mut out = Vec::new();
    for chunk in sources.chunks(197) {
        out.extend(
            own_snapshots(
                ec2,
                vec![
                    filter(&format!("tag:{TAG_POLICY}"), &[policy.to_string()]),
                    filter(&format!("tag:{TAG_SOURCE_SNAPSHOT}"), chunk),
                ],
                "looking up copies by their source snapshot",
                ManagedSnapshot::from_sdk,
            )
            .await?,
        );
    }
    Ok(out)
}

/// Starts a copy of `source_id` (in `source_region`) into the Region `ec2` reaches, tagged at
/// creation. An encrypted source gives an encrypted copy, under `kms_key_id` when set (else the
/// Region's default EBS key).
pub async fn copy_snapshot(
    ec2: &aws_sdk_ec2::Client,
    source_region: &str,
    source_id: &str,
    encrypted: bool,
    kms_key_id: Option<&str>,
    description: &str,
    tags: &[(String, String)],
) -> Result<String, AwsError> {
    let action = format!("copying EBS snapshot {source_id} from {source_region}");
    let out = ec2
        .copy_snapshot()
        .source_region(source_region)
        .source_snapshot_id(source_id)
        .description(description)
        .set_encrypted(encrypted.then_some(true))
        .set_kms_key_id(kms_key_id.filter(|_| encrypted).map(String::from))
        .tag_specifications(tag_spec(tags))
        .send()
        .await
        .map_err(|e| aws_error(&action, e))?;
    out.snapshot_id.ok_or_else(|| AwsError {
        action,
        code: "MissingSnapshotId".into(),
        message: "CopySnapshot answered without a snapshot id".into(),
        retryable: false,
        ambiguous: false,
    })
}

/// AWS takes at most 500 account changes per `ModifySnapshotAttribute`.
const MAX_PERMISSION_CHANGES: usize = 500;

/// Grants `createVolumePermission` on `snapshot_id` to `account_ids` (adding an account that
/// already has it changes nothing), at most 500 accounts a call.
pub async fn share_snapshot(
    ec2: &aws_sdk_ec2::Client,
    snapshot_id: &str,
    account_ids: &[String],
) -> Result<(), AwsError> {
    for chunk in account_ids.chunks(MAX_PERMISSION_CHANGES) {
        ec2.modify_snapshot_attribute()
            .snapshot_id(snapshot_id)
            .attribute(aws_sdk_ec2::types::SnapshotAttributeName::CreateVolumePermission)
            .operation_type(aws_sdk_ec2::types::OperationType::Add)
            .set_user_ids(Some(chunk.to_vec()))
            .send()
            .await
            .map_err(|e| aws_error(format!("sharing EBS snapshot {snapshot_id}"), e))?;
    }
    Ok(())
}

// ---- Restores (docs/design.md §11) ----

fn ts(t: Option<&aws_sdk_ec2::primitives::DateTime>) -> Option<Timestamp> {
    t.and_then(|t| Timestamp::new(t.secs(), t.subsec_nanos() as i32).ok())
}

/// A managed snapshot as a restore point, with its pair's volume (the `ebssnap:volume` tag, else
/// `VolumeId`).
fn point_of(s: &Snapshot) -> Option<(String, Point)> {
    let m = ManagedSnapshot::from_sdk(s)?;
    let point = Point {
        snapshot_id: m.id.clone(),
        run: m.tag(TAG_RUN).map(String::from),
        policy: m.tag(TAG_POLICY).map(String::from),
        target: m.tag(TAG_TARGET).map(String::from),
        state: m.state.clone(),
        start_time: m.start_time,
        size_gb: s.volume_size().map(i64::from).unwrap_or_default(),
        encrypted: s.encrypted().unwrap_or(false),
        tags: m.tags.clone(),
    };
    Some((m.volume(), point))
}

/// The account's ebssnap restore points of `volume_id` in this Region: its own snapshots with a
/// `volume-id` of that volume and an `ebssnap:policy` tag (a crash-consistent set's members carry
/// no `ebssnap:volume` tag, their `VolumeId` is the pair key), and the disaster-recovery copies
/// of its restore points kept here, found by `ebssnap:source-volume` (AWS gives a copy an
/// arbitrary `VolumeId`). Two calls.
pub async fn restore_points(
    ec2: &aws_sdk_ec2::Client,
    volume_id: &str,
) -> Result<Vec<Point>, AwsError> {
    let action = format!("listing the restore points of {volume_id}");
    let of_volume = |s: &Snapshot| point_of(s).filter(|(v, _)| v == volume_id).map(|(_, p)| p);
    let mut points = own_snapshots(
        ec2,
        vec![
            filter("volume-id", &[volume_id.to_string()]),
            filter("tag-key", &[TAG_POLICY.to_string()]),
        ],
        &action,
        of_volume,
    )
    .await?;
    let copies = own_snapshots(
        ec2,
        vec![
            filter(
                &format!("tag:{TAG_SOURCE_VOLUME}"),
                &[volume_id.to_string()],
            ),
            filter("tag-key", &[TAG_POLICY.to_string()]),
        ],
        &action,
        of_volume,
    )
    .await?;
    for c in copies {
        if !points.iter().any(|p| p.snapshot_id == c.snapshot_id) {
            points.push(c);
        }
    }
    Ok(points)
}

/// Every ebssnap restore point of the account in this Region, with its pair's volume (one
/// paginated call: coverage).
pub async fn managed_points(ec2: &aws_sdk_ec2::Client) -> Result<Vec<(String, Point)>, AwsError> {
    own_snapshots(
        ec2,
        vec![filter("tag-key", &[TAG_POLICY.to_string()])],
        "listing the account's ebssnap restore points",
        point_of,
    )
    .await
}

/// The instances an `instance_filters` selector matches (its AND-ed filters, split as a run
/// splits them), for evaluating that one selector on a shared inventory.
pub async fn instance_filter_matches(
    ec2: &aws_sdk_ec2::Client,
    filters: &BTreeMap<String, Vec<String>>,
) -> Result<BTreeSet<String>, AwsError> {
    let live = [filter(
        "instance-state-name",
        &LIVE_STATES.map(String::from),
    )];
    let mut r = Reader::new(ec2, None);
    for f in instance_filter_calls(filters, &live) {
        r.instances(f, true, false).await?;
    }
    Ok(r.inv.filter_matches)
}

/// Every restore point of a policy, with its pair's volume (one paginated call).
pub async fn policy_points(
    ec2: &aws_sdk_ec2::Client,
    policy: &str,
) -> Result<Vec<(String, Point)>, AwsError> {
    own_snapshots(
        ec2,
        vec![filter(&format!("tag:{TAG_POLICY}"), &[policy.to_string()])],
        &format!("listing the restore points of policy {policy}"),
        point_of,
    )
    .await
}

/// Restore volumes made from a policy's restore points (tagged `ebssnap:restore-policy`).
pub async fn restore_volumes_of_policy(
    ec2: &aws_sdk_ec2::Client,
    policy: &str,
) -> Result<Vec<VolumeFacts>, AwsError> {
    volumes_where(
        ec2,
        vec![filter(
            &format!("tag:{}", crate::core::restore::TAG_RESTORE_POLICY),
            &[policy.to_string()],
        )],
        &format!("listing the restore volumes of policy {policy}"),
    )
    .await
}

/// Volumes a policy's restore tests made (tagged `ebssnap:restore-test` = the policy).
pub async fn restore_test_volumes(
    ec2: &aws_sdk_ec2::Client,
    policy: &str,
) -> Result<Vec<VolumeFacts>, AwsError> {
    volumes_where(
        ec2,
        vec![filter(
            &format!("tag:{TAG_RESTORE_TEST}"),
            &[policy.to_string()],
        )],
        &format!("listing the restore-test volumes of policy {policy}"),
    )
    .await
}

/// A volume as a restore needs it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VolumeFacts {
    pub id: String,
    pub state: String,
    pub zone: String,
    pub size_gb: i64,
    pub volume_type: Option<String>,
    pub iops: Option<i64>,
    pub throughput: Option<i64>,
    pub tags: BTreeMap<String, String>,
    /// (instance, device) when attached.
    pub attachment: Option<(String, String)>,
    pub created: Option<Timestamp>,
}

fn volume_facts(v: &aws_sdk_ec2::types::Volume) -> Option<VolumeFacts> {
    Some(VolumeFacts {
        id: v.volume_id()?.to_string(),
        state: v
            .state()
            .map(|s| s.as_str().to_string())
            .unwrap_or_default(),
        zone: v.availability_zone().unwrap_or_default().to_string(),
        size_gb: v.size().map(i64::from).unwrap_or_default(),
        volume_type: v.volume_type().map(|t| t.as_str().to_string()),
        iops: v.iops().map(i64::from),
        throughput: v.throughput().map(i64::from),
        tags: tag_map(v.tags()),
        attachment: v.attachments().iter().find_map(|a| {
            Some((
                a.instance_id()?.to_string(),
                a.device().unwrap_or_default().to_string(),
            ))
        }),
        created: ts(v.create_time()),
    })
}

/// Volumes matching `filters` (paginated).
async fn volumes_where(
    ec2: &aws_sdk_ec2::Client,
    filters: Vec<Filter>,
    action: &str,
) -> Result<Vec<VolumeFacts>, AwsError> {
    let mut pages = ec2
        .describe_volumes()
        .set_filters(Some(filters))
        .max_results(500)
        .into_paginator()
        .send();
    let mut out = Vec::new();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| aws_error(action, e))?;
        out.extend(page.volumes().iter().filter_map(volume_facts));
    }
    Ok(out)
}

/// One volume, or None when it does not exist (a filter, so a missing id is no error).
pub async fn describe_volume(
    ec2: &aws_sdk_ec2::Client,
    volume_id: &str,
) -> Result<Option<VolumeFacts>, AwsError> {
    let found = volumes_where(
        ec2,
        vec![filter("volume-id", &[volume_id.to_string()])],
        &format!("describing EBS volume {volume_id}"),
    )
    .await?;
    Ok(found.into_iter().next())
}

/// The volume a restore request made, found by its `ebssnap:request` tag.
pub async fn volume_of_request(
    ec2: &aws_sdk_ec2::Client,
    token: &str,
) -> Result<Option<VolumeFacts>, AwsError> {
    let found = volumes_where(
        ec2,
        vec![filter(&format!("tag:{TAG_REQUEST}"), &[token.to_string()])],
        "looking up a restore volume by its request token",
    )
    .await?;
    Ok(found.into_iter().next())
}

/// Every volume ebssnap restored (tagged `ebssnap:restore-of`) in this Region.
pub async fn restore_volumes(ec2: &aws_sdk_ec2::Client) -> Result<Vec<VolumeFacts>, AwsError> {
    volumes_where(
        ec2,
        vec![filter("tag-key", &[TAG_RESTORE_OF.to_string()])],
        "listing restore volumes",
    )
    .await
}

/// An instance as a restore with `--attach` needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstanceFacts {
    pub id: String,
    pub state: String,
    pub zone: String,
    /// (device, volume) of every attached EBS volume.
    pub devices: Vec<(String, String)>,
}

/// One instance, or None when it does not exist.
pub async fn describe_instance(
    ec2: &aws_sdk_ec2::Client,
    instance_id: &str,
) -> Result<Option<InstanceFacts>, AwsError> {
    let out = ec2
        .describe_instances()
        .filters(filter("instance-id", &[instance_id.to_string()]))
        .send()
        .await
        .map_err(|e| aws_error(format!("describing instance {instance_id}"), e))?;
    let found = out
        .reservations()
        .iter()
        .flat_map(|r| r.instances())
        .find_map(|i| {
            Some(InstanceFacts {
                id: i.instance_id()?.to_string(),
                state: instance_state(i),
                zone: i
                    .placement()
                    .and_then(|p| p.availability_zone())
                    .unwrap_or_default()
                    .to_string(),
                devices: i
                    .block_device_mappings()
                    .iter()
                    .filter_map(|b| {
                        Some((
                            b.device_name()?.to_string(),
                            b.ebs()
                                .and_then(|e| e.volume_id())
                                .unwrap_or_default()
                                .to_string(),
                        ))
                    })
                    .collect(),
            })
        });
    Ok(found)
}

/// The Region's Availability Zones and whether each is `available`.
pub async fn availability_zones(
    ec2: &aws_sdk_ec2::Client,
) -> Result<Vec<(String, bool)>, AwsError> {
    let out = ec2
        .describe_availability_zones()
        .send()
        .await
        .map_err(|e| aws_error("describing Availability Zones", e))?;
    Ok(out
        .availability_zones()
        .iter()
        .filter_map(|z| {
            Some((
                z.zone_name()?.to_string(),
                z.state().map(|s| s.as_str()) == Some("available"),
            ))
        })
        .collect())
}

/// Every Region of the partition, opted in or not (`DescribeRegions` with `AllRegions`).
pub async fn region_names(ec2: &aws_sdk_ec2::Client) -> Result<BTreeSet<String>, AwsError> {
    let out = ec2
        .describe_regions()
        .all_regions(true)
        .send()
        .await
        .map_err(|e| aws_error("listing the Regions", e))?;
    Ok(out
        .regions()
        .iter()
        .filter_map(|r| r.region_name().map(String::from))
        .collect())
}

/// What CreateVolume is asked for.
#[derive(Debug, Clone)]
pub struct NewVolume<'a> {
    pub snapshot_id: &'a str,
    pub zone: &'a str,
    pub shape: &'a Shape,
    pub encrypted: bool,
    pub kms_key_id: Option<&'a str>,
    pub tags: &'a [(String, String)],
    /// The idempotency token (`ClientToken`), also written as the `ebssnap:request` tag.
    pub token: &'a str,
}

/// Creates a volume from a snapshot, tags applied at creation.
pub async fn create_volume(
    ec2: &aws_sdk_ec2::Client,
    v: &NewVolume<'_>,
) -> Result<String, AwsError> {
    let action = format!("creating a volume from {}", v.snapshot_id);
    let spec = TagSpecification::builder()
        .resource_type(ResourceType::Volume)
        .set_tags(Some(
            v.tags
                .iter()
                .map(|(k, val)| Tag::builder().key(k).value(val).build())
                .collect(),
        ))
        .build();
    let out = ec2
        .create_volume()
        .snapshot_id(v.snapshot_id)
        .availability_zone(v.zone)
        .size(i32::try_from(v.shape.size_gb).unwrap_or(i32::MAX))
        .volume_type(aws_sdk_ec2::types::VolumeType::from(
            v.shape.volume_type.as_str(),
        ))
        .set_iops(v.shape.iops.and_then(|i| i32::try_from(i).ok()))
        .set_throughput(v.shape.throughput.and_then(|i| i32::try_from(i).ok()))
        .set_encrypted((v.encrypted || v.kms_key_id.is_some()).then_some(true))
        .set_kms_key_id(v.kms_key_id.map(String::from))
        .tag_specifications(spec)
        .client_token(v.token)
        .send()
        .await
        .map_err(|e| aws_error(&action, e))?;
    out.volume_id.ok_or_else(|| AwsError {
        action,
        code: "MissingVolumeId".into(),
        message: "CreateVolume answered without a volume id".into(),
        retryable: false,
        ambiguous: false,
    })
}

pub async fn attach_volume(
    ec2: &aws_sdk_ec2::Client,
    volume_id: &str,
    instance_id: &str,
    device: &str,
) -> Result<(), AwsError> {
    ec2.attach_volume()
        .volume_id(volume_id)
        .instance_id(instance_id)
        .device(device)
        .send()
        .await
        .map_err(|e| {
            aws_error(
                format!("attaching {volume_id} to {instance_id} as {device}"),
                e,
            )
        })?;
    Ok(())
}

/// Deletes a volume; one already gone counts as deleted.
pub async fn delete_volume(ec2: &aws_sdk_ec2::Client, volume_id: &str) -> Result<(), AwsError> {
    match ec2.delete_volume().volume_id(volume_id).send().await {
        Ok(_) => Ok(()),
        Err(e) => {
            let e = aws_error(format!("deleting EBS volume {volume_id}"), e);
            if e.code == "InvalidVolume.NotFound" {
                Ok(())
            } else {
                Err(e)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instance_filters_split_the_largest_filter_and_keep_the_others_in_every_call() {
        let live = [filter(
            "instance-state-name",
            &LIVE_STATES.map(String::from),
        )];
        let ids: Vec<String> = (0..300).map(|i| format!("i-{i:017}")).collect();
        let f = BTreeMap::from([
            ("instance-id".to_string(), ids),
            (
                "tag:Env".to_string(),
                vec!["prod".to_string(), "stage".to_string()],
            ),
        ]);
        let calls = instance_filter_calls(&f, &live);
        assert_eq!(calls.len(), 2);
        let mut ids_seen = 0;
        for c in &calls {
            let total: usize = c.iter().map(|f| f.values().len()).sum();
            assert!(total <= FILTER_VALUES_PER_CALL, "{total}");
            assert!(c.iter().any(|f| f.name() == Some("tag:Env")));
            assert!(c.iter().any(|f| f.name() == Some("instance-state-name")));
            ids_seen += c
                .iter()
                .filter(|f| f.name() == Some("instance-id"))
                .map(|f| f.values().len())
                .sum::<usize>();
        }
        assert_eq!(ids_seen, 300);
        // A state filter of the user's replaces the runner's.
        let own = BTreeMap::from([(
            "instance-state-name".to_string(),
            vec!["running".to_string()],
        )]);
        let calls = instance_filter_calls(&own, &live);
        assert_eq!(calls.len(), 1);
        assert_eq!(calls[0].len(), 1);
    }

    #[test]
    fn batches_count_every_filter_value_of_the_call() {
        let live = [filter(
            "instance-state-name",
            &LIVE_STATES.map(String::from),
        )];
        let ids: Vec<String> = (0..200).map(|i| format!("i-{i:017}")).collect();
        let calls = batches(&live, "instance-id", &ids);
        assert_eq!(calls.len(), 2, "196 + 4 values, then the last 4");
        for filters in &calls {
            let values: usize = filters.iter().map(|f| f.values().len()).sum();
            assert!(
                values <= FILTER_VALUES_PER_CALL,
                "{values} values in one call"
            );
        }
        assert_eq!(batches(&[], "volume-id", &ids).len(), 1);
        assert!(batches(&live, "tag:Name", &[]).is_empty());
    }
}
