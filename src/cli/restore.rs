//! `ebssnap restore`: a volume back from a restore point; `restore list` and `restore cleanup`
//! for the volumes it made (docs/guides/restore.md).

use std::time::Duration;

use clap::{Args, Subcommand};
use jiff::{SignedDuration, Timestamp};

use super::common::{EXIT_CODES, Global, connect, parse_now};
use super::output::{emit, outln, print_json};
use crate::core::restore::{self, Choice, Fate, RestoreVolume, ShapeFlags};
use crate::error::{Error, exit};
use crate::runner::restore::{self as run_restore, RestoreRequest};

pub const EXAMPLES: &str = "\
Examples:
  # The newest restore point of a volume, as a new volume in the source's zone (kept 24 h)
  ebssnap restore --volume vol-0abc123
  # A given run, attached to an instance for a single-file restore, kept 8 hours
  ebssnap restore --volume vol-0abc123 --run 2026-12-01T05:00:00Z --attach i-0def456 --device /dev/sdf --ttl 8h
  # What would be restored, without creating anything
  ebssnap restore --volume vol-0abc123 --before 2026-11-30T00:00:00Z --dry-run --json
  # Every volume of an instance, at the newest run they all have
  ebssnap restore --instance i-0def456 --ttl 2d";

const LIST_EXAMPLES: &str = "\
Examples:
  # Every restore volume, its source, expiry and state
  ebssnap restore list
  # As JSON
  ebssnap restore list --json";

const CLEANUP_EXAMPLES: &str = "\
Examples:
  # What would be deleted
  ebssnap restore cleanup --dry-run
  # Delete expired, detached restore volumes
  ebssnap restore cleanup --json";

#[derive(Debug, Args)]
#[command(
    args_conflicts_with_subcommands = true,
    subcommand_negates_reqs = true,
    after_help = format!("{EXAMPLES}\n\n{EXIT_CODES}")
)]
pub struct RestoreArgs {
    #[command(subcommand)]
    pub action: Option<RestoreAction>,
    #[command(flatten)]
    pub restore: RestoreFlags,
}

#[derive(Debug, Subcommand)]
pub enum RestoreAction {
    /// List the restore volumes ebssnap made in this Region: source, snapshot, expiry, state
    #[command(after_help = format!("{LIST_EXAMPLES}\n\n{EXIT_CODES}"))]
    List(ListArgs),
    /// Delete restore volumes whose expiry has passed and that are detached (never detaches one)
    #[command(after_help = format!("{CLEANUP_EXAMPLES}\n\n{EXIT_CODES}"))]
    Cleanup(CleanupArgs),
}

#[derive(Debug, Args)]
pub struct RestoreFlags {
    /// The volume to restore (its restore points are found by this id, even once it is deleted)
    #[arg(
        long,
        required_unless_present = "instance",
        conflicts_with = "instance"
    )]
    pub volume: Option<String>,
    /// Restore every volume attached to this instance at one run (--run, else the newest run
    /// all of them have); each new volume in its source's zone, unattached
    #[arg(long, conflicts_with_all = ["snapshot", "before", "size", "attach", "device"])]
    pub instance: Option<String>,
    /// Restore the restore point of this run key (default: the newest completed one)
    #[arg(long, conflicts_with_all = ["snapshot", "before"])]
    pub run: Option<String>,
    /// Restore this snapshot (one of the volume's restore points)
    #[arg(long, conflicts_with = "before")]
    pub snapshot: Option<String>,
    /// Restore the newest completed restore point started before this time (RFC 3339)
    #[arg(long, value_parser = parse_now)]
    pub before: Option<Timestamp>,
    /// Zone of the new volume (default: the --attach instance's, else the source volume's)
    #[arg(long)]
    pub availability_zone: Option<String>,
    /// gp3, gp2, io1, io2, st1, sc1 or standard (default: the source volume's, else gp3)
    #[arg(long)]
    pub volume_type: Option<String>,
    /// Provisioned IOPS (gp3, io1, io2; default: the source volume's when the type is the same)
    #[arg(long)]
    pub iops: Option<i64>,
    /// Throughput in MiB/s (gp3 only; default: the source volume's)
    #[arg(long)]
    pub throughput: Option<i64>,
    /// Size in GiB (default: the snapshot's; never smaller)
    #[arg(long)]
    pub size: Option<i64>,
    /// Encrypt the new volume with this KMS key (default: encrypted as the snapshot is)
    #[arg(long)]
    pub kms_key_id: Option<String>,
    /// Attach the new volume to this instance (same zone; needs --device)
    #[arg(long, requires = "device")]
    pub attach: Option<String>,
    /// Device name for --attach, e.g. /dev/sdf (must be free on the instance)
    #[arg(long, requires = "attach")]
    pub device: Option<String>,
    /// How long the volume lives before `restore cleanup` deletes it: 90m, 8h, 2d (default 24h)
    #[arg(long, value_parser = parse_ttl, conflicts_with = "keep")]
    pub ttl: Option<SignedDuration>,
    /// Keep the volume: no expiry, cleanup never deletes it
    #[arg(long)]
    pub keep: bool,
    /// Return once the volume is requested, without waiting for it to be available
    #[arg(long)]
    pub no_wait: bool,
    /// Seconds to wait for `available` (and `in-use` with --attach)
    #[arg(long, default_value_t = 900)]
    pub timeout: u64,
    /// Check everything and print what would be created; create nothing
    #[arg(long)]
    pub dry_run: bool,
    /// Print the result as one JSON object on stdout
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct ListArgs {
    /// Clock for the expiry column (RFC 3339; default: now)
    #[arg(long, value_parser = parse_now)]
    pub now: Option<Timestamp>,
    /// Print the rows as a JSON array on stdout
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct CleanupArgs {
    /// Clock for expiry decisions (RFC 3339; default: now)
    #[arg(long, value_parser = parse_now)]
    pub now: Option<Timestamp>,
    /// Print what would be deleted; delete nothing
    #[arg(long)]
    pub dry_run: bool,
    /// Print the result as one JSON object on stdout
    #[arg(long)]
    pub json: bool,
}

fn parse_ttl(s: &str) -> Result<SignedDuration, String> {
    restore::parse_ttl(s)
}

impl RestoreArgs {
    pub fn json(&self) -> bool {
        match &self.action {
            Some(RestoreAction::List(a)) => a.json,
            Some(RestoreAction::Cleanup(a)) => a.json,
            None => self.restore.json,
        }
    }
}

pub async fn exec(g: &Global, a: &RestoreArgs) -> Result<i32, Error> {
    let clients = connect(g).await;
    match &a.action {
        Some(RestoreAction::List(l)) => {
            let rows = run_restore::list(&clients, l.now.unwrap_or_else(Timestamp::now)).await?;
            if l.json {
                print_json(&rows);
            } else {
                let mut buf = String::new();
                outln!(
                    buf,
                    "{:<22} {:<10} {:<12} {:<22} {:<22} {:<21} FATE",
                    "VOLUME",
                    "STATE",
                    "ZONE",
                    "RESTORE OF",
                    "FROM",
                    "EXPIRES"
                );
                for r in &rows {
                    let v = &r.volume;
                    outln!(
                        buf,
                        "{:<22} {:<10} {:<12} {:<22} {:<22} {:<21} {}",
                        v.volume_id,
                        v.state,
                        v.availability_zone,
                        v.restore_of,
                        v.restored_from.as_deref().unwrap_or("-"),
                        v.expires.as_deref().unwrap_or("kept"),
                        fate_text(r.fate)
                    );
                }
                outln!(buf, "{} restore volume(s)", rows.len());
                emit(&buf);
            }
            Ok(exit::OK)
        }
        Some(RestoreAction::Cleanup(c)) => {
            let now = c.now.unwrap_or_else(Timestamp::now);
            let done = run_restore::cleanup(&clients, now, c.dry_run).await?;
            if c.json {
                print_json(&done);
            } else {
                let mut buf = String::new();
                let verb = if c.dry_run { "would delete" } else { "deleted" };
                for v in &done.deleted {
                    outln!(
                        buf,
                        "{verb} {} (restore of {}, expired {})",
                        v.volume_id,
                        v.restore_of,
                        expiry(v)
                    );
                }
                for v in &done.expired_in_use {
                    outln!(
                        buf,
                        "warning: {} expired {} but is {}{}: not touched (detach it, then run cleanup again)",
                        v.volume_id,
                        expiry(v),
                        v.state,
                        v.attached_to
                            .as_ref()
                            .map(|i| format!(" on {i}"))
                            .unwrap_or_default()
                    );
                }
                for v in &done.bad_expiry {
                    outln!(
                        buf,
                        "warning: {} has an unreadable ebssnap:expires ({}): kept",
                        v.volume_id,
                        expiry(v)
                    );
                }
                for (v, e) in &done.failures {
                    outln!(buf, "error: {v}: {e}");
                }
                outln!(
                    buf,
                    "{} {verb}, {} expired but in use, {} not expired",
                    done.deleted.len(),
                    done.expired_in_use.len(),
                    done.kept
                );
                emit(&buf);
            }
            Ok(if done.failures.is_empty() {
                exit::OK
            } else {
                exit::VOLUME_FAILED
            })
        }
        None => {
            let f = &a.restore;
            let choice = match (&f.run, &f.snapshot, f.before) {
                (Some(r), _, _) => Choice::Run(r.clone()),
                (_, Some(s), _) => Choice::Snapshot(s.clone()),
                (_, _, Some(t)) => Choice::Before(t),
                _ => Choice::Newest,
            };
            let req = RestoreRequest {
                volume: f.volume.clone().unwrap_or_default(),
                choice,
                zone: f.availability_zone.clone(),
                shape: ShapeFlags {
                    volume_type: f.volume_type.clone(),
                    size_gb: f.size,
                    iops: f.iops,
                    throughput: f.throughput,
                },
                kms_key_id: f.kms_key_id.clone(),
                attach: f.attach.clone().zip(f.device.clone()),
                ttl: if f.keep {
                    None
                } else {
                    Some(f.ttl.unwrap_or(restore::DEFAULT_TTL))
                },
                wait: !f.no_wait,
                wait_timeout: Duration::from_secs(f.timeout),
                dry_run: f.dry_run,
                now: Timestamp::now()
                    .round(jiff::Unit::Second)
                    .unwrap_or_else(|_| Timestamp::now()),
            };
            if let Some(instance) = &f.instance {
                let all = run_restore::restore_instance(&clients, instance, f.run.as_deref(), &req)
                    .await?;
                if f.json {
                    print_json(&all);
                } else {
                    let mut buf = String::new();
                    for r in &all {
                        describe(&mut buf, r);
                    }
                    emit(&buf);
                }
                return Ok(exit::OK);
            }
            if req.volume.is_empty() {
                return Err(Error::Input("--volume or --instance is required".into()));
            }
            let r = run_restore::restore(&clients, &req).await?;
            if f.json {
                print_json(&r);
            } else {
                let mut buf = String::new();
                describe(&mut buf, &r);
                emit(&buf);
            }
            Ok(exit::OK)
        }
    }
}

/// A restore's result for people: what was made from what, where, until when, and what next.
fn describe(mut buf: &mut String, r: &run_restore::Restored) {
    let head = match &r.volume_id {
        Some(id) => format!("restored {id}"),
        None => "would restore a new volume".into(),
    };
    outln!(
        buf,
        "{head} from {} (run {}, {}/{}) of {}",
        r.snapshot_id,
        r.run.as_deref().unwrap_or("-"),
        r.policy.as_deref().unwrap_or("-"),
        r.target.as_deref().unwrap_or("-"),
        r.restore_of
    );
    outln!(
        buf,
        "  {} {}, {} GiB{}{}, in {}",
        if r.encrypted {
            "encrypted"
        } else {
            "unencrypted"
        },
        r.shape.volume_type,
        r.shape.size_gb,
        r.shape
            .iops
            .map(|i| format!(", {i} IOPS"))
            .unwrap_or_default(),
        r.shape
            .throughput
            .map(|t| format!(", {t} MiB/s"))
            .unwrap_or_default(),
        r.availability_zone
    );
    outln!(
        buf,
        "  state {}{}; {}",
        r.state,
        r.attached_to
            .as_ref()
            .map(|i| format!(" on {i} as {}", r.device.as_deref().unwrap_or("?")))
            .unwrap_or_default(),
        match r.expires {
            Some(t) => format!("expires {}", t.strftime("%Y-%m-%dT%H:%M:%SZ")),
            None => "kept (no expiry)".into(),
        }
    );
    outln!(buf, "  next: {}", r.next_step);
}

fn expiry(v: &RestoreVolume) -> &str {
    v.expires.as_deref().unwrap_or("-")
}

fn fate_text(f: Fate) -> &'static str {
    match f {
        Fate::Keep => "kept",
        Fate::Delete => "expired: cleanup deletes it",
        Fate::ExpiredInUse => "expired, in use: cleanup leaves it",
        Fate::BadExpiry => "unreadable expiry: kept",
    }
}
