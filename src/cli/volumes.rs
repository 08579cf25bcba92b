//! `ebssnap volumes`: what a target's selector matches right now.

use clap::Args;
use serde::Serialize;

use super::common::{Global, Which, connect, documents};
use super::output::{emit, outln, print_json};
use crate::aws::{Clients, ec2};
use crate::core::doc::TargetDocument;
use crate::core::select;
use crate::error::{Error, exit};

pub const EXAMPLES: &str = "\
Examples:
  # The volumes target web of policy std would snapshot now
  ebssnap volumes --policy std --target web
  # The same for a target document in a file, as JSON
  ebssnap volumes --input web.json --policy-input std.json --json";

#[derive(Debug, Args)]
pub struct VolumesArgs {
    #[command(flatten)]
    pub which: Which,
    /// Print {volumes, warnings} as JSON on stdout
    #[arg(long)]
    pub json: bool,
}

pub async fn exec(g: &Global, a: &VolumesArgs) -> Result<i32, Error> {
    let clients = connect(g).await;
    let (_, target, _) = documents(&clients, &a.which).await?;
    volumes(&clients, &target, a.json).await
}

#[derive(Serialize)]
struct VolumeRow {
    volume_id: String,
    instance_id: Option<String>,
    device: Option<String>,
    size_gb: i64,
    root: bool,
    tags: std::collections::BTreeMap<String, String>,
}

#[derive(Serialize)]
struct VolumesOutput {
    volumes: Vec<VolumeRow>,
    /// Named references that resolve to nothing (a run fails with `NotFound` for each).
    warnings: Vec<String>,
}

async fn volumes(clients: &Clients, target: &TargetDocument, json: bool) -> Result<i32, Error> {
    let inv = ec2::fetch_inventory(&clients.ec2, &clients.autoscaling, &target.select).await?;
    let warnings: Vec<String> = select::unresolved(&target.select, &inv)
        .iter()
        .map(select::Unresolved::message)
        .collect();
    let rows: Vec<VolumeRow> = select::select(&target.select, &target.exclude(), &inv)
        .into_iter()
        .map(|s| VolumeRow {
            tags: inv
                .volumes
                .get(&s.volume_id)
                .map(|v| v.tags.clone())
                .unwrap_or_default(),
            volume_id: s.volume_id,
            instance_id: s.instance_id,
            device: s.device,
            size_gb: s.size_gb,
            root: s.root,
        })
        .collect();
    if json {
        print_json(&VolumesOutput {
            volumes: rows,
            warnings,
        });
    } else {
        let mut buf = String::new();
        outln!(
            buf,
            "{:<24} {:<21} {:<12} {:>6}  ROOT",
            "VOLUME",
            "INSTANCE",
            "DEVICE",
            "GiB"
        );
        for r in &rows {
            outln!(
                buf,
                "{:<24} {:<21} {:<12} {:>6}  {}",
                r.volume_id,
                r.instance_id.as_deref().unwrap_or("-"),
                r.device.as_deref().unwrap_or("-"),
                r.size_gb,
                if r.root { "yes" } else { "" }
            );
        }
        outln!(
            buf,
            "{} volume(s) selected by {}/{}",
            rows.len(),
            target.policy,
            target.target
        );
        for w in &warnings {
            outln!(buf, "warning: {w} (a run fails with NotFound)");
        }
        emit(&buf);
    }
    Ok(exit::OK)
}
