//! Restores (docs/design.md §11): a volume from a restore point, the restore volumes ebssnap
//! made, and deleting the expired ones. Every check runs before the one call that creates, so
//! bad input creates nothing; a creation whose answer is lost is found by its request tag before
//! it is sent again (the emulator ignores `ClientToken`; AWS honours it).

use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use serde::Serialize;
use sha2::{Digest, Sha256};
use tracing::{info, warn};

use crate::aws::Clients;
use crate::aws::ec2::{self, NewVolume, VolumeFacts};
use crate::core::report::Ambiguous;
use crate::core::restore::{
    self, Choice, Fate, Point, RestoreVolume, Shape, ShapeFlags, SourceShape, TAG_EXPIRES,
    TAG_RESTORE_OF, TAG_RESTORED_FROM,
};
use crate::core::tags::TAG_RUN;
use crate::error::{AwsError, Error};

/// What `ebssnap restore` is asked for.
#[derive(Debug, Clone)]
pub struct RestoreRequest {
    pub volume: String,
    pub choice: Choice,
    pub zone: Option<String>,
    pub shape: ShapeFlags,
    pub kms_key_id: Option<String>,
    /// (instance, device) to attach the new volume to.
    pub attach: Option<(String, String)>,
    /// How long the volume lives (None: `--keep`, no expiry).
    pub ttl: Option<SignedDuration>,
    pub wait: bool,
    pub wait_timeout: Duration,
    pub dry_run: bool,
    pub now: Timestamp,
}

/// What a restore made (or, in a dry run, would make).
#[derive(Debug, Clone, Serialize)]
pub struct Restored {
    pub dry_run: bool,
    /// The new volume (null in a dry run).
    pub volume_id: Option<String>,
    /// Its state when the command returned (`creating` with `--no-wait`).
    pub state: String,
    pub restore_of: String,
    pub snapshot_id: String,
    pub run: Option<String>,
    pub policy: Option<String>,
    pub target: Option<String>,
    pub availability_zone: String,
    #[serde(flatten)]
    pub shape: Shape,
    pub encrypted: bool,
    pub kms_key_id: Option<String>,
    /// When `ebssnap restore cleanup` may delete it (null: kept).
    pub expires: Option<Timestamp>,
    pub attached_to: Option<String>,
    pub device: Option<String>,
    /// The idempotency token, also the volume's `ebssnap:request` tag.
    pub request: String,
    /// Calls whose outcome was unknown, and how they ended.
    pub ambiguous: Ambiguous,
    /// What to do next, in one line.
    pub next_step: String,
}

/// Attempts of the one creating call (throttling, lost answers).
const CREATE_ATTEMPTS: u32 = 5;
const POLL: Duration = Duration::from_secs(2);

fn input(msg: impl Into<String>) -> Error {
    Error::Input(msg.into())
}

/// A fresh idempotency token (`ClientToken` allows 64 ASCII characters).
pub(super) fn request_token(volume: &str, now: Timestamp) -> String {
    let mut h = Sha256::new();
    h.update(volume.as_bytes());
    h.update(now.as_nanosecond().to_le_bytes());
    h.update(std::process::id().to_le_bytes());
    h.update(Timestamp::now().as_nanosecond().to_le_bytes());
    format!("ebssnap-{}", &hex::encode(h.finalize())[..32])
}

/// Restores `req.volume` (docs/design.md §11).
pub async fn restore(clients: &Clients, req: &RestoreRequest) -> Result<Restored, Error> {
    let prepared = prepare(clients, req).await?;
    if req.dry_run {
        return Ok(prepared.out);
    }
    create(clients, req, prepared).await
}

/// A restore checked and ready to create: its result so far (a dry run's) and its tags.
pub struct Prepared {
    out: Restored,
    tags: Vec<(String, String)>,
    /// The snapshot is encrypted (the volume will be).
    snapshot_encrypted: bool,
}

/// Every check of a restore, and what it would create; creates nothing.
async fn prepare(clients: &Clients, req: &RestoreRequest) -> Result<Prepared, Error> {
    let points = ec2::restore_points(&clients.ec2, &req.volume).await?;
    let point: &Point = restore::choose(&points, &req.choice, &req.volume).map_err(input)?;
    let source = ec2::describe_volume(&clients.ec2, &req.volume).await?;
    let instance = match &req.attach {
        Some((id, device)) => {
            let Some(i) = ec2::describe_instance(&clients.ec2, id).await? else {
                return Err(input(format!(
                    "--attach: instance {id} does not exist in this Region"
                )));
            };
            if let Some((_, vol)) = i.devices.iter().find(|(d, _)| d == device) {
                return Err(input(format!(
                    "--device {device} is in use on {id} (by {vol}): pick a free device name, \
                     e.g. /dev/sdf to /dev/sdp"
                )));
            }
            Some(i)
        }
        None => None,
    };
    // With --attach, the instance's zone is the only one that works.
    let zone = match (&req.zone, &instance, &source) {
        (Some(z), _, _) => z.clone(),
        (None, Some(i), _) => i.zone.clone(),
        (None, None, Some(s)) => s.zone.clone(),
        (None, None, None) => {
            return Err(input(format!(
                "{} no longer exists, so its zone is unknown: give --availability-zone \
                 (or --attach an instance)",
                req.volume
            )));
        }
    };
    if let Some(i) = &instance
        && i.zone != zone
    {
        return Err(input(format!(
            "instance {} is in {}, not {zone}: a volume attaches only in its own zone; \
             leave out --availability-zone or give {}",
            i.id, i.zone, i.zone
        )));
    }
    let zones = ec2::availability_zones(&clients.ec2).await?;
    match zones.iter().find(|(z, _)| *z == zone) {
        Some((_, true)) => {}
        Some((_, false)) => {
            return Err(input(format!(
                "Availability Zone {zone} is not available now"
            )));
        }
        None => {
            let names: Vec<&str> = zones.iter().map(|(z, _)| z.as_str()).collect();
            return Err(input(format!(
                "{zone} is not an Availability Zone of this Region: {}",
                names.join(", ")
            )));
        }
    }
    let source_shape = source_shape(source.as_ref());
    let shape = restore::shape(&req.shape, &source_shape, point.size_gb).map_err(input)?;
    let expires = req.ttl.map(|d| req.now + d);
    let token = request_token(&req.volume, req.now);
    let name = source.as_ref().and_then(|s| s.tags.get("Name").cloned());
    let tags = restore::tags(point, &req.volume, name.as_deref(), expires, &token);
    let mut out = Restored {
        dry_run: req.dry_run,
        volume_id: None,
        state: "not created (dry run)".into(),
        restore_of: req.volume.clone(),
        snapshot_id: point.snapshot_id.clone(),
        run: point.run.clone(),
        policy: point.policy.clone(),
        target: point.target.clone(),
        availability_zone: zone.clone(),
        shape: shape.clone(),
        encrypted: point.encrypted || req.kms_key_id.is_some(),
        kms_key_id: req.kms_key_id.clone(),
        expires,
        attached_to: None,
        device: None,
        request: token.clone(),
        ambiguous: Ambiguous::default(),
        next_step: String::new(),
    };
    out.next_step = "run it again without --dry-run to create the volume".into();
    Ok(Prepared {
        out,
        tags,
        snapshot_encrypted: point.encrypted,
    })
}

/// Creates a prepared restore, waits for it and attaches it as asked.
async fn create(clients: &Clients, req: &RestoreRequest, p: Prepared) -> Result<Restored, Error> {
    let Prepared {
        mut out,
        tags,
        snapshot_encrypted,
    } = p;
    out.dry_run = false;
    let new = NewVolume {
        snapshot_id: &out.snapshot_id,
        zone: &out.availability_zone,
        shape: &out.shape,
        encrypted: snapshot_encrypted,
        kms_key_id: req.kms_key_id.as_deref(),
        tags: &tags,
        token: &out.request,
    };
    let mut tally = Ambiguous::default();
    let id = create_once(clients, &new, &mut tally).await?;
    out.ambiguous = tally;
    info!(volume = %id, snapshot = %out.snapshot_id, "restore volume created");
    out.volume_id = Some(id.clone());
    out.state = "creating".into();
    if req.wait || req.attach.is_some() {
        out.state = wait_for(clients, &id, "available", req.wait_timeout).await?;
    }
    if let Some((instance, device)) = &req.attach {
        ec2::attach_volume(&clients.ec2_writes, &id, instance, device).await?;
        out.attached_to = Some(instance.clone());
        out.device = Some(device.clone());
        out.state = if req.wait {
            wait_for(clients, &id, "in-use", req.wait_timeout).await?
        } else {
            "attaching".into()
        };
    }
    out.next_step = match (&out.attached_to, &out.device) {
        (Some(i), Some(d)) => format!(
            "on {i}, find the new disk (lsblk; {d} may appear as an NVMe device), mount it \
             read-only (mount -o ro ...), copy what you need, unmount; then `ebssnap restore \
             cleanup` deletes it once it is detached and expired"
        ),
        _ => format!(
            "attach it (ebssnap restore ... --attach INSTANCE --device /dev/sdf, or aws ec2 \
             attach-volume --volume-id {id}), or create an instance from it; `ebssnap restore \
             cleanup` deletes it once it has expired"
        ),
    };
    Ok(out)
}

/// Restores every EBS volume attached to `instance` at one run: `run` when given, else the newest
/// run of which every one of its volumes has a completed restore point. Every volume is checked
/// before the first is created; each new volume goes to its source's zone, unattached.
pub async fn restore_instance(
    clients: &Clients,
    instance: &str,
    run: Option<&str>,
    base: &RestoreRequest,
) -> Result<Vec<Restored>, Error> {
    let Some(i) = ec2::describe_instance(&clients.ec2, instance).await? else {
        return Err(input(format!(
            "instance {instance} does not exist in this Region"
        )));
    };
    let volumes: Vec<&str> = i
        .devices
        .iter()
        .map(|(_, v)| v.as_str())
        .filter(|v| !v.is_empty())
        .collect();
    if volumes.is_empty() {
        return Err(input(format!(
            "instance {instance} has no EBS volume attached"
        )));
    }
    let run = match run {
        Some(r) => r.to_string(),
        None => {
            let mut per_volume = Vec::new();
            for v in &volumes {
                let points = ec2::restore_points(&clients.ec2, v).await?;
                let runs: std::collections::BTreeSet<String> = points
                    .into_iter()
                    .filter(|p| p.state == "completed")
                    .filter_map(|p| p.run)
                    .collect();
                per_volume.push((v.to_string(), runs));
            }
            restore::common_newest_run(&per_volume).map_err(input)?
        }
    };
    let mut prepared = Vec::new();
    for v in &volumes {
        let req = RestoreRequest {
            volume: v.to_string(),
            choice: Choice::Run(run.clone()),
            attach: None,
            ..base.clone()
        };
        prepared.push((req.clone(), prepare(clients, &req).await?));
    }
    let mut out = Vec::new();
    for (req, p) in prepared {
        out.push(if req.dry_run {
            p.out
        } else {
            create(clients, &req, p).await?
        });
    }
    Ok(out)
}

/// The shape of a source volume that still exists (else the defaults).
pub(super) fn source_shape(source: Option<&VolumeFacts>) -> SourceShape {
    source
        .map(|s| SourceShape {
            volume_type: s.volume_type.clone(),
            iops: s.iops,
            throughput: s.throughput,
        })
        .unwrap_or_default()
}

/// The one CreateVolume of a restore: refusals that ask for a retry are retried; after an
/// ambiguous failure the volume is looked up by its request tag before anything is sent again.
pub(super) async fn create_once(
    clients: &Clients,
    new: &NewVolume<'_>,
    tally: &mut Ambiguous,
) -> Result<String, Error> {
    let mut last: Option<AwsError> = None;
    for attempt in 1..=CREATE_ATTEMPTS {
        if let Some(e) = &last {
            if e.ambiguous {
                tally.count += 1;
                if let Some(v) = ec2::volume_of_request(&clients.ec2, new.token).await? {
                    tally.found += 1;
                    return Ok(v.id);
                }
                tally.retried += 1;
            }
            tokio::time::sleep(Duration::from_millis(200 * u64::from(attempt))).await;
        }
        match ec2::create_volume(&clients.ec2_writes, new).await {
            Ok(id) => return Ok(id),
            Err(e) if e.retryable || e.ambiguous => {
                warn!(code = %e.code, attempt, "creating the restore volume failed; trying again");
                last = Some(e);
            }
            Err(e) => return Err(e.into()),
        }
    }
    // Out of attempts: one last look, then the error.
    if let Some(v) = ec2::volume_of_request(&clients.ec2, new.token).await? {
        tally.found += 1;
        return Ok(v.id);
    }
    Err(last
        .map(Error::from)
        .unwrap_or_else(|| input("no attempt made")))
}

/// Polls a volume until it reaches `want` (or `error`, or the timeout).
pub(super) async fn wait_for(
    clients: &Clients,
    id: &str,
    want: &str,
    timeout: Duration,
) -> Result<String, Error> {
    let started = std::time::Instant::now();
    let terminal = std::io::IsTerminal::is_terminal(&std::io::stderr());
    loop {
        let state = ec2::describe_volume(&clients.ec2, id)
            .await?
            .map(|v| v.state)
            .unwrap_or_else(|| "missing".into());
        if state == want {
            return Ok(state);
        }
        if state == "error" || state == "missing" {
            return Err(Error::Aws(AwsError {
                action: format!("waiting for {id} to become {want}"),
                code: "VolumeFailed".into(),
                message: format!("the volume is {state}"),
                retryable: false,
                ambiguous: false,
            }));
        }
        if started.elapsed() >= timeout {
            return Err(Error::Aws(AwsError {
                action: format!("waiting for {id} to become {want}"),
                code: "Timeout".into(),
                message: format!(
                    "still {state} after {} s; it may still finish: `ebssnap restore list` shows it",
                    timeout.as_secs()
                ),
                retryable: true,
                ambiguous: false,
            }));
        }
        if terminal {
            eprintln!("  {id} is {state}; waiting for {want} ...");
        }
        tokio::time::sleep(POLL).await;
    }
}

pub(super) fn restore_volume(v: VolumeFacts) -> RestoreVolume {
    RestoreVolume {
        restore_of: v.tags.get(TAG_RESTORE_OF).cloned().unwrap_or_default(),
        restored_from: v.tags.get(TAG_RESTORED_FROM).cloned(),
        run: v.tags.get(TAG_RUN).cloned(),
        expires: v.tags.get(TAG_EXPIRES).cloned(),
        attached_to: v.attachment.map(|(i, _)| i),
        volume_id: v.id,
        state: v.state,
        availability_zone: v.zone,
        size_gb: v.size_gb,
        created: v.created,
    }
}

/// A restore volume and what a cleanup at `now` does with it.
#[derive(Debug, Clone, Serialize)]
pub struct Listed {
    #[serde(flatten)]
    pub volume: RestoreVolume,
    pub fate: Fate,
}

/// The restore volumes ebssnap made in this Region (tagged `ebssnap:restore-of`), oldest first.
pub async fn list(clients: &Clients, now: Timestamp) -> Result<Vec<Listed>, Error> {
    let mut rows: Vec<Listed> = ec2::restore_volumes(&clients.ec2)
        .await?
        .into_iter()
        .map(restore_volume)
        .map(|v| Listed {
            fate: restore::fate(&v, now),
            volume: v,
        })
        .collect();
    rows.sort_by(|a, b| {
        (a.volume.created, &a.volume.volume_id).cmp(&(b.volume.created, &b.volume.volume_id))
    });
    Ok(rows)
}

/// What a cleanup did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Cleaned {
    pub dry_run: bool,
    /// Expired and available: deleted (or, in a dry run, would be).
    pub deleted: Vec<RestoreVolume>,
    /// Expired but attached or busy: never detached, left for a person.
    pub expired_in_use: Vec<RestoreVolume>,
    /// Not expired (or kept without expiry).
    pub kept: usize,
    /// Tagged with an expiry that does not parse: kept.
    pub bad_expiry: Vec<RestoreVolume>,
    /// Deletions that failed: (volume, error).
    pub failures: Vec<(String, String)>,
}

/// Deletes the restore volumes whose `ebssnap:expires` has passed and that are `available`.
/// Volumes without `ebssnap:restore-of` are never listed, so never touched.
pub async fn cleanup(clients: &Clients, now: Timestamp, dry_run: bool) -> Result<Cleaned, Error> {
    let mut out = Cleaned {
        dry_run,
        ..Cleaned::default()
    };
    for row in list(clients, now).await? {
        match row.fate {
            Fate::Keep => out.kept += 1,
            Fate::BadExpiry => out.bad_expiry.push(row.volume),
            Fate::ExpiredInUse => out.expired_in_use.push(row.volume),
            Fate::Delete if dry_run => out.deleted.push(row.volume),
            Fate::Delete => {
                match ec2::delete_volume(&clients.ec2_writes, &row.volume.volume_id).await {
                    Ok(()) => out.deleted.push(row.volume),
                    Err(e) => out.failures.push((row.volume.volume_id, e.to_string())),
                }
            }
        }
    }
    Ok(out)
}

/// A sweep's share of restore cleanup: the policy's expired restore volumes are deleted when
/// `available`; those still attached are reported (a `restore.expired` ticket), never detached.
pub(super) async fn sweep_restore_volumes(
    clients: &Clients,
    policy: &str,
    opts: &super::RunOptions,
    report: &mut crate::core::report::Report,
) -> Result<(), Error> {
    for v in ec2::restore_volumes_of_policy(&clients.ec2, policy).await? {
        let v = restore_volume(v);
        match restore::fate(&v, opts.now) {
            Fate::Delete if opts.dry_run => report.restore_volumes_deleted.push(v.volume_id),
            Fate::Delete => match ec2::delete_volume(&clients.ec2_writes, &v.volume_id).await {
                Ok(()) => report.restore_volumes_deleted.push(v.volume_id),
                Err(e) => report.warnings.push(format!(
                    "the expired restore volume {} was not deleted: {e}",
                    v.volume_id
                )),
            },
            Fate::ExpiredInUse => report.restore_volumes_in_use.push(v),
            Fate::BadExpiry => report.warnings.push(format!(
                "restore volume {} has an unreadable ebssnap:expires ({}): kept",
                v.volume_id,
                v.expires.as_deref().unwrap_or("-")
            )),
            Fate::Keep => {}
        }
    }
    Ok(())
}
