//! Seeds a small fleet in moto through the SDK, the way a customer account looks.

use std::collections::BTreeMap;

use aws_sdk_ec2::types::{
    Filter, InstanceType, LaunchTemplateSpecification, RequestLaunchTemplateData, ResourceType,
    Tag, TagSpecification,
};
use ebssnap::aws::Clients;

pub const AZ: &str = "us-east-1a";
pub const AMI: &str = "ami-12345678";

pub fn tags(pairs: &[(&str, &str)]) -> Vec<Tag> {
    pairs
        .iter()
        .map(|(k, v)| Tag::builder().key(*k).value(*v).build())
        .collect()
}

fn spec(rt: ResourceType, t: Vec<Tag>) -> TagSpecification {
    TagSpecification::builder()
        .resource_type(rt)
        .set_tags(Some(t))
        .build()
}

/// Runs one instance with the given tags; returns (instance id, root volume id).
pub async fn instance(c: &Clients, t: &[(&str, &str)]) -> (String, String) {
    let out = c
        .ec2
        .run_instances()
        .image_id(AMI)
        .instance_type(InstanceType::T3Micro)
        .min_count(1)
        .max_count(1)
        .tag_specifications(spec(ResourceType::Instance, tags(t)))
        .send()
        .await
        .expect("RunInstances");
    let i = &out.instances()[0];
    let id = i.instance_id().unwrap().to_string();
    let root = i.block_device_mappings()[0]
        .ebs()
        .unwrap()
        .volume_id()
        .unwrap()
        .to_string();
    (id, root)
}

pub async fn volume(c: &Clients, t: &[(&str, &str)]) -> String {
    volume_of_size(c, 8, t).await
}

pub async fn volume_of_size(c: &Clients, gib: i32, t: &[(&str, &str)]) -> String {
    new_volume(c, gib, false, t).await
}

/// An encrypted volume (under the Region's default EBS key).
pub async fn encrypted_volume(c: &Clients, t: &[(&str, &str)]) -> String {
    new_volume(c, 8, true, t).await
}

async fn new_volume(c: &Clients, gib: i32, encrypted: bool, t: &[(&str, &str)]) -> String {
    let mut req = c
        .ec2
        .create_volume()
        .availability_zone(AZ)
        .size(gib)
        .set_encrypted(encrypted.then_some(true));
    if !t.is_empty() {
        req = req.tag_specifications(spec(ResourceType::Volume, tags(t)));
    }
    req.send()
        .await
        .expect("CreateVolume")
        .volume_id()
        .unwrap()
        .to_string()
}

pub async fn attach(c: &Clients, volume: &str, instance: &str, device: &str) {
    c.ec2
        .attach_volume()
        .volume_id(volume)
        .instance_id(instance)
        .device(device)
        .send()
        .await
        .expect("AttachVolume");
}

pub async fn tag(c: &Clients, resource: &str, t: &[(&str, &str)]) {
    c.ec2
        .create_tags()
        .resources(resource)
        .set_tags(Some(tags(t)))
        .send()
        .await
        .expect("CreateTags");
}

/// An Auto Scaling group of `n` instances from a launch template; returns the member ids.
pub async fn asg(c: &Clients, name: &str, n: i32) -> Vec<String> {
    c.ec2
        .create_launch_template()
        .launch_template_name(format!("{name}-lt"))
        .launch_template_data(
            RequestLaunchTemplateData::builder()
                .image_id(AMI)
                .instance_type(InstanceType::T3Micro)
                .build(),
        )
        .send()
        .await
        .expect("CreateLaunchTemplate");
    c.autoscaling
        .create_auto_scaling_group()
        .auto_scaling_group_name(name)
        .launch_template(
            aws_sdk_autoscaling::types::LaunchTemplateSpecification::builder()
                .launch_template_name(format!("{name}-lt"))
                .build(),
        )
        .min_size(n)
        .max_size(n)
        .desired_capacity(n)
        .availability_zones(AZ)
        .send()
        .await
        .expect("CreateAutoScalingGroup");
    let _ = LaunchTemplateSpecification::builder();
    let g = c
        .autoscaling
        .describe_auto_scaling_groups()
        .auto_scaling_group_names(name)
        .send()
        .await
        .expect("DescribeAutoScalingGroups");
    g.auto_scaling_groups()[0]
        .instances()
        .iter()
        .map(|i| i.instance_id().unwrap().to_string())
        .collect()
}

/// Volume ids attached to an instance.
pub async fn volumes_of(c: &Clients, instance: &str) -> Vec<String> {
    let out = c
        .ec2
        .describe_volumes()
        .filters(
            Filter::builder()
                .name("attachment.instance-id")
                .values(instance)
                .build(),
        )
        .send()
        .await
        .expect("DescribeVolumes");
    let mut v: Vec<String> = out
        .volumes()
        .iter()
        .map(|v| v.volume_id().unwrap().to_string())
        .collect();
    v.sort();
    v
}

/// Every snapshot in the account: id -> (volume id, tags).
pub async fn snapshots(c: &Clients) -> BTreeMap<String, (String, BTreeMap<String, String>)> {
    snapshots_in(&c.ec2).await
}

/// Every snapshot of the account in the Region `ec2` reaches: id -> (volume id, tags).
pub async fn snapshots_in(
    ec2: &aws_sdk_ec2::Client,
) -> BTreeMap<String, (String, BTreeMap<String, String>)> {
    let out = ec2
        .describe_snapshots()
        .owner_ids("self")
        .send()
        .await
        .expect("DescribeSnapshots");
    out.snapshots()
        .iter()
        .map(|s| {
            let t = s
                .tags()
                .iter()
                .map(|t| (t.key().unwrap().to_string(), t.value().unwrap().to_string()))
                .collect();
            (
                s.snapshot_id().unwrap().to_string(),
                (s.volume_id().unwrap_or_default().to_string(), t),
            )
        })
        .collect()
}

/// A snapshot created by hand (not by ebssnap), with tags.
pub async fn manual_snapshot(c: &Clients, volume: &str, t: &[(&str, &str)]) -> String {
    let mut req = c.ec2.create_snapshot().volume_id(volume);
    if !t.is_empty() {
        req = req.tag_specifications(spec(ResourceType::Snapshot, tags(t)));
    }
    req.send()
        .await
        .expect("CreateSnapshot")
        .snapshot_id()
        .unwrap()
        .to_string()
}

/// The seeded fleet of the selection tests.
pub struct Fleet {
    pub db1: String,
    pub db1_root: String,
    pub db1_data: String,
    pub db2: String,
    pub db2_root: String,
    pub web: String,
    pub web_root: String,
    pub asg_members: Vec<String>,
    pub asg_volumes: Vec<String>,
    pub dead: String,
    pub dead_volume: String,
    pub free_tagged: String,
    pub free_plain: String,
}

pub async fn seed(c: &Clients) -> Fleet {
    let (db1, db1_root) = instance(c, &[("Name", "db-1"), ("Env", "prod"), ("Team", "data")]).await;
    let db1_data = volume(c, &[("Role", "data"), ("NoBackup", "true")]).await;
    attach(c, &db1_data, &db1, "/dev/sdf").await;
    let (db2, db2_root) = instance(c, &[("Name", "db-2"), ("Env", "dev")]).await;
    c.ec2
        .stop_instances()
        .instance_ids(&db2)
        .send()
        .await
        .expect("StopInstances");
    let (web, web_root) = instance(c, &[("Name", "web-1"), ("Env", "prod")]).await;
    let asg_members = asg(c, "web-prod", 2).await;
    let mut asg_volumes = Vec::new();
    for m in &asg_members {
        asg_volumes.extend(volumes_of(c, m).await);
    }
    asg_volumes.sort();
    // A terminated instance that still matches names and tags; its extra volume stays attached
    // in moto, so it must be ignored because of the instance state.
    let (dead, _) = instance(c, &[("Name", "db-9"), ("Env", "prod")]).await;
    let dead_volume = volume(c, &[("Tier", "web")]).await;
    attach(c, &dead_volume, &dead, "/dev/sdg").await;
    c.ec2
        .terminate_instances()
        .instance_ids(&dead)
        .send()
        .await
        .expect("TerminateInstances");
    let free_tagged = volume(c, &[("Tier", "web"), ("Backup", "yes")]).await;
    let free_plain = volume(c, &[]).await;
    Fleet {
        db1,
        db1_root,
        db1_data,
        db2,
        db2_root,
        web,
        web_root,
        asg_members,
        asg_volumes,
        dead,
        dead_volume,
        free_tagged,
        free_plain,
    }
}
