//! `ebssnap adopt`: ebs_snapper's snapshots of a target's volumes get ebssnap's tags, so the
//! policy's retention and minimum apply to them.

use clap::Args;

use super::common::{Global, connect};
use super::output::{emit, outln, print_json};
use crate::aws::{Clients, ec2};
use crate::core::select;
use crate::error::{Error, exit};
use crate::runner::documents;

pub const EXAMPLES: &str = "\
Examples:
  # List the ebs_snapper snapshots target web of policy std would take over (changes nothing)
  ebssnap adopt --policy std --target web
  # Tag them, so the policy's retention and minimum apply to them
  ebssnap adopt --policy std --target web --yes";

#[derive(Debug, Args)]
pub struct AdoptArgs {
    /// Policy that takes the snapshots over
    #[arg(long)]
    pub policy: String,
    /// Target whose selected volumes' ebs_snapper snapshots are adopted
    #[arg(long)]
    pub target: String,
    /// Only list what would be tagged (the default)
    #[arg(long, conflicts_with = "yes")]
    pub dry_run: bool,
    /// Tag them
    #[arg(long)]
    pub yes: bool,
    /// Print {policy, target, tagged, snapshots} as JSON on stdout
    #[arg(long)]
    pub json: bool,
}

pub async fn exec(g: &Global, a: &AdoptArgs) -> Result<i32, Error> {
    let clients = connect(g).await;
    adopt(&clients, &a.policy, &a.target, a.yes, a.json).await
}

async fn adopt(
    clients: &Clients,
    policy: &str,
    target: &str,
    yes: bool,
    json: bool,
) -> Result<i32, Error> {
    let (doc, _) = documents::load_target(clients, policy, target).await?;
    let inv = ec2::fetch_inventory(&clients.ec2, &clients.autoscaling, &doc.select).await?;
    let selected: std::collections::BTreeSet<String> =
        select::select(&doc.select, &doc.exclude(), &inv)
            .into_iter()
            .map(|s| s.volume_id)
            .collect();
    let ids: Vec<String> = selected.iter().cloned().collect();
    let snapshots = ec2::list_delete_on_snapshots(&clients.ec2, &ids).await?;
    let plan = crate::core::migrate::adoption_plan(&snapshots, &selected, policy, target);
    if yes {
        for a in &plan {
            ec2::tag_snapshot(&clients.ec2, &a.snapshot_id, &a.tags).await?;
        }
    }
    if json {
        print_json(
            &serde_json::json!({"policy": policy, "target": target, "tagged": yes, "snapshots": plan}),
        );
    } else {
        let mut buf = String::new();
        let verb = if yes { "tagged" } else { "would tag" };
        for a in &plan {
            outln!(
                buf,
                "{verb} {} ({} from {})",
                a.snapshot_id,
                a.volume_id,
                a.start_time
            );
        }
        outln!(
            buf,
            "{} ebs_snapper snapshot(s) of {} selected volume(s) {} into {policy}/{target}{}",
            plan.len(),
            selected.len(),
            if yes { "adopted" } else { "to adopt" },
            if yes {
                ""
            } else {
                " (dry run: pass --yes to tag them)"
            }
        );
        emit(&buf);
    }
    Ok(exit::OK)
}
