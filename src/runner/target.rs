//! A target run (docs/design.md §5): select, snapshot (per volume or crash-consistent sets), prune.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use futures::StreamExt;
use futures::future::Either;
use tracing::{Instrument, info, info_span, warn};

use super::chain;
use super::exactly_once::{self, Tally};
use super::history;
use super::notify::finish;
use super::options::{RunOptions, run_key};
use super::pace::{NOT_STARTED, Pacer, Repeat, paced};
use super::pipeline;
use super::prune::prune;
use crate::aws::Clients;
use crate::aws::ec2::{self, ManagedSnapshot};
use crate::core::doc::{PolicyDocument, TargetDocument};
use crate::core::report::{Created, Failure, Recovered, Report, Skipped};
use crate::core::retention::{self, Scope, SnapState};
use crate::core::select::{self, Inventory, Selected};
use crate::core::tags::{self, Identity, TAG_RUN};
use crate::error::{AwsError, Error};

fn description(policy: &str, target: &str, s: &Selected) -> String {
    let mut d = format!("ebssnap {policy}/{target} {}", s.volume_id);
    if let Some(i) = &s.instance_id {
        d.push_str(&format!(" {i}"));
    }
    if let Some(dev) = &s.device {
        d.push_str(&format!(" {dev}"));
    }
    d.chars().take(255).collect()
}

fn failure(s: &Selected, e: &AwsError) -> Failure {
    Failure {
        volume_id: s.volume_id.clone(),
        instance_id: s.instance_id.clone(),
        device: s.device.clone(),
        snapshot_id: None,
        code: e.code.clone(),
        message: e.message.clone(),
        retryable: e.retryable,
        reference: None,
    }
}

/// One unit of creation work: a single volume, or a whole instance's crash-consistent set.
pub(super) enum Job {
    Volume(Selected),
    Set {
        instance_id: String,
        volumes: Vec<Selected>,
        exclude_boot: bool,
        exclude_data: Vec<String>,
    },
}

enum JobResult {
    Created(Vec<Created>),
    Failed(Vec<Failure>),
    /// Not started: the run's time ran out.
    Unstarted(Vec<Selected>),
    /// Failed without knowing whether AWS acted: looked up before it is sent again.
    Ambiguous(Job, AwsError),
}

/// What a target run needs beyond the documents.
struct Ctx<'a> {
    clients: &'a Clients,
    policy: &'a PolicyDocument,
    target: &'a TargetDocument,
    run_key: &'a str,
    opts: &'a RunOptions,
    /// The tags of each volume's snapshot, built when its batch of the inventory arrived (the
    /// inventory itself is not kept while creations run).
    tags: Mutex<BTreeMap<String, tags::TagSet>>,
    /// What preparing the batches found beside the jobs.
    side: Mutex<Side>,
    /// Jobs handed to the current wave so far (progress).
    queued: AtomicUsize,
    /// Volumes handed on and finished (when to list the history beside the creations).
    progress: &'a history::Progress,
    /// One pacer per EC2 API (each has its own bucket).
    pace_single: Pacer<'a>,
    pace_sets: Pacer<'a>,
    ambiguous: Tally,
}

impl Ctx<'_> {
    /// This run's snapshots of `volume_ids` (one filtered listing per 197 volumes).
    async fn find_run(&self, volume_ids: &[String]) -> Result<Vec<ManagedSnapshot>, AwsError> {
        ec2::find_run_snapshots(
            &self.clients.ec2,
            &self.policy.policy,
            &self.target.target,
            self.run_key,
            volume_ids,
        )
        .await
    }

    /// Turns a batch of the inventory into jobs: volumes this run already snapshotted are
    /// skipped, the rest planned as volumes or sets, their tags kept until they are created.
    /// In a link that carries its volumes, what is done is looked up per batch (one filtered
    /// `DescribeSnapshots` per 197 volumes) instead of listing the whole run first; a failed
    /// look-up fails the batch's volumes (the next link or run retries them).
    async fn prepare(&self, batch: pipeline::Batch, done: &Done) -> Vec<Job> {
        self.progress.started();
        let looked_up;
        let done = match done {
            Done::Listed(d) => d,
            Done::PerBatch => {
                let ids: Vec<String> = batch
                    .items
                    .iter()
                    .map(|(s, _)| s.volume_id.clone())
                    .collect();
                match self.find_run(&ids).await {
                    Ok(found) => {
                        looked_up = found.iter().map(ManagedSnapshot::volume).collect();
                        &looked_up
                    }
                    Err(e) => {
                        warn!(code = %e.code, message = %e.message, "looking up what the run already snapshotted failed");
                        lock(&self.side)
                            .failures
                            .extend(batch.items.iter().map(|(s, _)| failure(s, &e)));
                        self.progress.finished(batch.items.len());
                        return Vec::new();
                    }
                }
            }
        };
        let handed = batch.items.len();
        let mut to_create = Vec::new();
        {
            let mut side = lock(&self.side);
            let mut tags = lock(&self.tags);
            for (s, set) in batch.items {
                if done.contains(&s.volume_id) {
                    side.already.push(already_done(s, self.run_key));
                } else {
                    tags.insert(s.volume_id.clone(), set);
                    to_create.push(s);
                }
            }
        }
        self.progress.finished(handed - to_create.len());
        let jobs = plan_jobs(to_create, &batch.sets, self.policy.crash_consistent());
        self.queued.fetch_add(jobs.len(), Ordering::Relaxed);
        jobs
    }

    async fn create_one(&self, s: &Selected) -> Result<(String, Vec<tags::DroppedTag>), AwsError> {
        let set = self
            .tags
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&s.volume_id)
            .cloned()
            .unwrap_or_else(|| {
                snapshot_tags(
                    self.policy,
                    self.target,
                    self.run_key,
                    s,
                    &Inventory::default(),
                )
            });
        let desc = description(&self.policy.policy, &self.target.target, s);
        let id = paced(
            &self.pace_single,
            self.opts,
            &s.volume_id,
            Repeat::LookFirst,
            || ec2::create_snapshot(&self.clients.ec2_writes, &s.volume_id, &desc, &set.tags),
        )
        .await?;
        Ok((id, set.dropped))
    }

    async fn run_job(&self, job: Job) -> (JobResult, Vec<tags::DroppedTag>) {
        if self.opts.out_of_time() {
            let vols = match job {
                Job::Volume(s) => vec![s],
                Job::Set { volumes, .. } => volumes,
            };
            return (JobResult::Unstarted(vols), vec![]);
        }
        match job {
            Job::Volume(s) => {
                let span = info_span!("snapshot", volume = %s.volume_id);
                match self.create_one(&s).instrument(span).await {
                    Ok((id, dropped)) => {
                        info!(volume = %s.volume_id, snapshot = %id, "created snapshot");
                        let c = Created {
                            snapshot_id: Some(id),
                            volume_id: s.volume_id,
                            instance_id: s.instance_id,
                            device: s.device,
                        };
                        (JobResult::Created(vec![c]), dropped)
                    }
                    Err(e) if e.code == NOT_STARTED => (JobResult::Unstarted(vec![s]), vec![]),
                    Err(e) if e.ambiguous => {
                        warn!(volume = %s.volume_id, code = %e.code, message = %e.message, "snapshot outcome unknown: looked up before any retry");
                        (JobResult::Ambiguous(Job::Volume(s), e), vec![])
                    }
                    Err(e) => {
                        warn!(volume = %s.volume_id, code = %e.code, message = %e.message, "snapshot failed");
                        (JobResult::Failed(vec![failure(&s, &e)]), vec![])
                    }
                }
            }
            Job::Set {
                instance_id,
                volumes,
                exclude_boot,
                exclude_data,
            } => {
                let mut ident = tags::identity_tags(&Identity {
                    policy: &self.policy.policy,
                    target: &self.target.target,
                    run_key: self.run_key,
                    volume_id: "",
                });
                ident.retain(|(k, _)| k != tags::TAG_VOLUME);
                ident.extend(self.policy.tag_settings().extra);
                let desc = format!(
                    "ebssnap {}/{} {instance_id} (crash-consistent set)",
                    self.policy.policy, self.target.target
                );
                let made = paced(
                    &self.pace_sets,
                    self.opts,
                    &instance_id,
                    Repeat::LookFirst,
                    || {
                        ec2::create_snapshots(
                            &self.clients.ec2_writes,
                            &instance_id,
                            exclude_boot,
                            &exclude_data,
                            &desc,
                            &ident,
                            self.policy.tag_settings().copy_volume_tags,
                        )
                    },
                )
                .await;
                match made {
                    Ok(made) => {
                        let by_vol: BTreeMap<&str, &Selected> =
                            volumes.iter().map(|s| (s.volume_id.as_str(), s)).collect();
                        let created = made
                            .into_iter()
                            .map(|(snap, vol)| {
                                let s = by_vol.get(vol.as_str());
                                Created {
                                    snapshot_id: Some(snap),
                                    instance_id: Some(instance_id.clone()),
                                    device: s.and_then(|s| s.device.clone()),
                                    volume_id: vol,
                                }
                            })
                            .collect();
                        (JobResult::Created(created), vec![])
                    }
                    Err(e) if e.code == NOT_STARTED => (JobResult::Unstarted(volumes), vec![]),
                    Err(e) if e.ambiguous => {
                        warn!(instance = %instance_id, code = %e.code, message = %e.message, "snapshot set outcome unknown: looked up before any retry");
                        let job = Job::Set {
                            instance_id,
                            volumes,
                            exclude_boot,
                            exclude_data,
                        };
                        (JobResult::Ambiguous(job, e), vec![])
                    }
                    Err(e) => (
                        JobResult::Failed(volumes.iter().map(|s| failure(s, &e)).collect()),
                        vec![],
                    ),
                }
            }
        }
    }
}

impl Ctx<'_> {
    /// Looks up what a wave's ambiguous creations did (one filtered listing per 197 volumes) and
    /// returns what must be sent again. Found snapshots join `report.created`; with no attempt
    /// or time left, the rest is reported failed (or left unstarted, for the next link's listing
    /// of the run to settle).
    async fn resolve_ambiguous(
        &self,
        ambiguous: Vec<(Job, AwsError)>,
        wave: u32,
        report: &mut Report,
        unstarted: &mut Vec<Selected>,
    ) -> Vec<Job> {
        let vols: Vec<Selected> = ambiguous
            .iter()
            .flat_map(|(job, _)| job_volumes(job))
            .cloned()
            .collect();
        let count = vols.len() as u64;
        if self.opts.out_of_time() {
            self.ambiguous.looked_up(count, 0, 0);
            unstarted.extend(vols);
            return Vec::new();
        }
        let ids: Vec<String> = vols.iter().map(|s| s.volume_id.clone()).collect();
        let listed = match self.find_run(&ids).await {
            Ok(l) => l,
            Err(look) => {
                self.ambiguous.looked_up(count, 0, 0);
                warn!(code = %look.code, message = %look.message, "looking up ambiguous creations failed");
                for (job, e) in &ambiguous {
                    let e = AwsError {
                        message: format!(
                            "{} (the outcome is unknown, and looking it up failed: {}: {})",
                            e.message, look.code, look.message
                        ),
                        ..e.clone()
                    };
                    report
                        .failures
                        .extend(job_volumes(job).map(|s| failure(s, &e)));
                }
                return Vec::new();
            }
        };
        let errors: BTreeMap<String, AwsError> = ambiguous
            .iter()
            .flat_map(|(job, e)| job_volumes(job).map(move |s| (s.volume_id.clone(), e.clone())))
            .collect();
        let resolved =
            exactly_once::resolve(ambiguous.into_iter().map(|(j, _)| j).collect(), &listed);
        let found = resolved.found.len() as u64;
        info!(
            wave,
            ambiguous = count,
            found,
            "looked up creations whose outcome was unknown"
        );
        report.created.extend(resolved.found);
        if wave + 1 >= self.opts.create_attempts {
            self.ambiguous.looked_up(count, found, 0);
            for job in &resolved.again {
                report.failures.extend(job_volumes(job).map(|s| {
                    let e = &errors[&s.volume_id];
                    failure(s, e)
                }));
            }
            return Vec::new();
        }
        let again: u64 = resolved
            .again
            .iter()
            .map(|j| job_volumes(j).count() as u64)
            .sum();
        self.ambiguous.looked_up(count, found, again);
        resolved.again
    }
}

impl Ctx<'_> {
    /// Moves what preparing the batches found into the report.
    fn side_into(&self, report: &mut Report) {
        let side = std::mem::take(&mut *lock(&self.side));
        report.skipped.extend(side.already);
        report.failures.extend(side.failures);
    }

    /// Sends `jobs` (up to `concurrency` at once) and records their outcomes; returns the
    /// ambiguous ones.
    async fn wave(
        &self,
        jobs: impl futures::Stream<Item = Job>,
        report: &mut Report,
        unstarted: &mut Vec<Selected>,
    ) -> Vec<(Job, AwsError)> {
        let mut results = std::pin::pin!(
            jobs.map(|job| self.run_job(job))
                .buffer_unordered(self.opts.concurrency.max(1))
        );
        let mut n = 0;
        let mut ambiguous = Vec::new();
        while let Some((result, dropped)) = results.next().await {
            n += 1;
            self.opts
                .tick("snapshots", n, self.queued.load(Ordering::Relaxed).max(n));
            report.tags_dropped.extend(dropped);
            // A volume's tags are kept only while it may still be sent.
            let finished: Vec<&str> = match &result {
                JobResult::Created(c) => c.iter().map(|c| c.volume_id.as_str()).collect(),
                JobResult::Failed(f) => f.iter().map(|f| f.volume_id.as_str()).collect(),
                JobResult::Unstarted(s) => s.iter().map(|s| s.volume_id.as_str()).collect(),
                JobResult::Ambiguous(..) => Vec::new(),
            };
            {
                let mut tags = lock(&self.tags);
                for v in finished {
                    tags.remove(v);
                }
            }
            match result {
                JobResult::Created(c) => {
                    self.progress.finished(c.len());
                    report.created.extend(c)
                }
                JobResult::Failed(f) => {
                    self.progress.finished(f.len());
                    report.failures.extend(f)
                }
                JobResult::Unstarted(s) => unstarted.extend(s),
                JobResult::Ambiguous(job, e) => ambiguous.push((job, e)),
            }
        }
        ambiguous
    }
}

fn already_done(s: Selected, run_key: &str) -> Skipped {
    Skipped {
        volume_id: s.volume_id,
        reason: format!("already snapshotted in run {run_key}"),
    }
}

/// What is known of the run's snapshots before creating: the run's whole listing, or nothing yet
/// (a link that carries its volumes looks them up batch by batch).
enum Done {
    Listed(BTreeSet<String>),
    PerBatch,
}

/// Volumes skipped as done, and volumes whose look-up failed.
#[derive(Default)]
struct Side {
    already: Vec<Skipped>,
    failures: Vec<Failure>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The tags of `s`'s snapshot (volume and instance tags copied as the policy says).
fn snapshot_tags(
    policy: &PolicyDocument,
    target: &TargetDocument,
    run_key: &str,
    s: &Selected,
    inv: &Inventory,
) -> tags::TagSet {
    let settings = policy.tag_settings();
    let id = Identity {
        policy: &policy.policy,
        target: &target.target,
        run_key,
        volume_id: &s.volume_id,
    };
    let vol_tags = inv.volumes.get(&s.volume_id).map(|v| &v.tags);
    let inst_tags = s
        .instance_id
        .as_ref()
        .and_then(|i| inv.instances.get(i))
        .map(|i| &i.tags);
    tags::merge(
        &id,
        &settings.extra,
        vol_tags.filter(|_| settings.copy_volume_tags),
        inst_tags.filter(|_| settings.copy_instance_tags),
    )
}

/// The volumes a job snapshots.
fn job_volumes(job: &Job) -> impl Iterator<Item = &Selected> {
    match job {
        Job::Volume(s) => std::slice::from_ref(s).iter(),
        Job::Set { volumes, .. } => volumes.iter(),
    }
}

/// Splits the volumes to snapshot into jobs: with `crash_consistent`, one set per instance when
/// every volume attached to it was described (so each unselected one can be excluded by id) and
/// none of its chosen volumes carries an `ebssnap:` tag; single volumes otherwise.
///
/// `CreateSnapshots` copies a volume's tags to its snapshot wholesale (`CopyTagsFromSource`), and
/// one call cannot give each snapshot its own `ebssnap:volume`. A volume restored from an ebssnap
/// snapshot carries that snapshot's `ebssnap:*` tags; copied onto a new snapshot they would make
/// it join another volume's pair (or another target's, or run's). Such volumes get their own
/// `CreateSnapshot`, whose tags ebssnap builds itself and which never copies `ebssnap:` keys.
fn plan_jobs(to_create: Vec<Selected>, inv: &Inventory, crash_consistent: bool) -> Vec<Job> {
    if !crash_consistent {
        return to_create.into_iter().map(Job::Volume).collect();
    }
    let mut by_instance: BTreeMap<String, Vec<Selected>> = BTreeMap::new();
    let mut jobs = Vec::new();
    for s in to_create {
        match s.instance_id.clone() {
            Some(i) => by_instance.entry(i).or_default().push(s),
            None => jobs.push(Job::Volume(s)),
        }
    }
    for (instance_id, volumes) in by_instance {
        let carries_ebssnap_tags = volumes.iter().any(|s| {
            inv.volumes
                .get(&s.volume_id)
                .is_some_and(|v| v.tags.keys().any(|k| tags::is_ebssnap_key(k)))
        });
        let exclusions = if carries_ebssnap_tags {
            None
        } else {
            set_exclusions(inv, &instance_id, &volumes)
        };
        match exclusions {
            Some((exclude_boot, exclude_data)) => jobs.push(Job::Set {
                instance_id,
                volumes,
                exclude_boot,
                exclude_data,
            }),
            None => jobs.extend(volumes.into_iter().map(Job::Volume)),
        }
    }
    jobs
}

/// What `CreateSnapshots` must exclude so that it snapshots exactly `chosen` of an instance:
/// (`ExcludeBootVolume`, `ExcludeDataVolumeIds`). `None` when the set cannot be used safely: the
/// instance or one of its attached volumes was not described, or its root volume is unknown.
fn set_exclusions(
    inv: &Inventory,
    instance_id: &str,
    chosen: &[Selected],
) -> Option<(bool, Vec<String>)> {
    let instance = inv.instances.get(instance_id)?;
    let chosen: BTreeSet<&str> = chosen.iter().map(|s| s.volume_id.as_str()).collect();
    let attached: BTreeSet<&str> = instance.volumes.iter().map(String::as_str).collect();
    if attached.is_empty() || !chosen.is_subset(&attached) {
        return None;
    }
    let mut exclude_boot = false;
    let mut exclude_data = Vec::new();
    let mut saw_root = false;
    for id in &attached {
        let v = inv.volumes.get(*id)?;
        let (on, device) = v.attachment.as_ref()?;
        if on != instance_id {
            return None;
        }
        let root = instance.root_device.as_deref() == Some(device.as_str());
        saw_root |= root;
        if !chosen.contains(id) {
            if root {
                exclude_boot = true;
            } else {
                exclude_data.push(id.to_string());
            }
        }
    }
    // ExcludeBootVolume needs to know which volume is the boot volume.
    if !saw_root && instance.root_device.is_some() && attached.len() != chosen.len() {
        return None;
    }
    Some((exclude_boot, exclude_data))
}

fn elapsed_ms(since: Instant) -> u64 {
    since.elapsed().as_millis() as u64
}

/// Runs one target: select, snapshot, prune (docs/design.md §5).
pub async fn run_target(
    clients: &Clients,
    policy: &PolicyDocument,
    target: &TargetDocument,
    opts: &RunOptions,
) -> Result<Report, Error> {
    let started = Instant::now();
    let calls_before = clients.calls.snapshot();
    policy.validate()?;
    target.validate()?;
    if target.policy != policy.policy {
        return Err(Error::Input(format!(
            "target {}/{} belongs to policy {:?}, but the policy document is {:?}",
            target.policy, target.target, target.policy, policy.policy
        )));
    }
    let run_key = run_key(target.invocation.as_ref(), opts)?;
    let span = info_span!("run", policy = %policy.policy, target = %target.target, run = %run_key);
    let result = run_target_in_span(
        clients,
        policy,
        target,
        opts,
        run_key.clone(),
        started,
        calls_before,
    )
    .instrument(span)
    .await;
    finish(
        clients,
        policy,
        Some(&target.target),
        &run_key,
        target.invocation.as_ref(),
        opts,
        result,
    )
    .await
}

/// The volumes this run snapshotted whose previous restore point (another run's newest completed
/// snapshot) is older than 1.5 intervals: their previous scheduled run(s) did not snapshot them,
/// so whatever failed has recovered. Inferred from the snapshots alone: no state is kept.
fn recovered(
    target: &str,
    created: &[Created],
    existing: &[ManagedSnapshot],
    run_key: &str,
    interval: jiff::SignedDuration,
    now: jiff::Timestamp,
) -> Vec<Recovered> {
    let mut newest: BTreeMap<String, jiff::Timestamp> = BTreeMap::new();
    for s in existing
        .iter()
        .filter(|s| s.state == "completed" && s.tag(TAG_RUN) != Some(run_key))
    {
        let e = newest.entry(s.volume()).or_insert(s.start_time);
        *e = (*e).max(s.start_time);
    }
    let late = now - interval * 3 / 2;
    created
        .iter()
        .filter(|c| c.snapshot_id.is_some())
        .filter_map(|c| {
            let prev = newest.get(&c.volume_id)?;
            (*prev < late).then(|| Recovered {
                target: target.to_string(),
                volume_id: c.volume_id.clone(),
                instance_id: c.instance_id.clone(),
                device: c.device.clone(),
                snapshot_id: c.snapshot_id.clone(),
                previous_at: Some(prev.to_string()),
            })
        })
        .collect()
}

/// What selects nothing is a failure (docs/design.md §4): named references that resolve to nothing
/// (`NotFound`), and an empty selection unless the target allows it (`EmptySelection`).
fn selection_failures(target: &TargetDocument, inv: &Inventory, selected: usize) -> Vec<Failure> {
    let mut out: Vec<Failure> = select::unresolved(&target.select, inv)
        .into_iter()
        .map(|u| Failure {
            volume_id: if u.source == "select.volume_ids" {
                u.value.clone()
            } else {
                String::new()
            },
            instance_id: (u.source == "select.instance_ids").then(|| u.value.clone()),
            device: None,
            snapshot_id: None,
            code: "NotFound".into(),
            message: format!(
                "{}; fix or remove it in target {}/{}",
                u.message(),
                target.policy,
                target.target
            ),
            retryable: false,
            reference: Some(format!("{}={}", u.source, u.value)),
        })
        .collect();
    if selected == 0 && !target.allow_empty() {
        out.push(Failure {
            volume_id: String::new(),
            instance_id: None,
            device: None,
            snapshot_id: None,
            code: "EmptySelection".into(),
            message: format!(
                "target {}/{} selects no volume; check its selector with `ebssnap volumes --policy {} --target {}`, or set allow_empty = true if that is expected",
                target.policy, target.target, target.policy, target.target
            ),
            retryable: false,
            reference: Some("selection".into()),
        });
    }
    for f in &out {
        warn!(code = %f.code, message = %f.message, "selection failure");
    }
    out
}

/// What reading the inventory decided beside the creations.
struct Outcome {
    /// How many volumes the target selects (in a link that carries the run's remaining volumes:
    /// how many of those it still selects).
    selected: usize,
    /// The selection's own failures (`NotFound`, `EmptySelection`).
    failures: Vec<Failure>,
    /// Carried volumes the target no longer selects, or that no longer exist.
    vanished: Vec<Skipped>,
}

/// The volumes a continuing link carries from the previous one, when it may read only those: its
/// target's selection is decided from each volume and its instance, which `instance_filters` is
/// not (EC2 evaluates those over the whole account), so such a target reads everything.
fn carried_volumes<'o>(opts: &'o RunOptions, target: &TargetDocument) -> Option<&'o [String]> {
    opts.chain
        .as_ref()
        .filter(|c| c.link > 1 && !c.volumes.is_empty())
        .filter(|_| target.select.instance_filters().is_none())
        .map(|c| c.volumes.as_slice())
}

/// A carried link's outcome: the carried volumes the target still selects are its selection (no
/// selection failure: the first link decided those on the whole inventory); the others are
/// reported, never silently dropped.
fn carried_outcome(carried: &[String], selected: &[Selected], inv: &Inventory) -> Outcome {
    let chosen: BTreeSet<&str> = selected.iter().map(|s| s.volume_id.as_str()).collect();
    let vanished: Vec<Skipped> = carried
        .iter()
        .filter(|v| !chosen.contains(v.as_str()))
        .map(|v| {
            let why = if inv.volumes.contains_key(v) {
                "the target no longer selects it (its tags, attachment or instance changed since the run began, or an exclusion now applies)"
            } else {
                "it no longer exists (deleted since the run began)"
            };
            Skipped {
                volume_id: v.clone(),
                reason: format!("not snapshotted: {why}"),
            }
        })
        .collect();
    warn_vanished(&vanished);
    Outcome {
        selected: carried.len() - vanished.len(),
        failures: Vec::new(),
        vanished,
    }
}

fn warn_vanished(vanished: &[Skipped]) {
    if !vanished.is_empty() {
        warn!(
            count = vanished.len(),
            first = %vanished[0].volume_id,
            "carried volumes no longer selected or gone: reported as skipped"
        );
    }
}

/// What a link that did not finish its creations hands to the next one.
struct HandOff {
    unstarted: Vec<Selected>,
    rates: BTreeMap<String, f64>,
    run_has_snapshots: bool,
}

/// The creations of a link, fed by the inventory's batches as they are read: lists this run's
/// snapshots (a continuation must find some), then snapshots each batch's volumes not yet done,
/// in waves (the first sends every job; each later one sends again only the ambiguous creations
/// the look-up after the previous wave did not find: exactly_once). `Some` when volumes are left
/// unstarted at the deadline.
#[allow(clippy::too_many_arguments)]
async fn create(
    clients: &Clients,
    policy: &PolicyDocument,
    target: &TargetDocument,
    opts: &RunOptions,
    run_key: &str,
    continuing: bool,
    carried: bool,
    batches: futures::channel::mpsc::UnboundedReceiver<pipeline::Batch>,
    progress: &history::Progress,
    report: &mut Report,
) -> Result<Option<HandOff>, Error> {
    // Idempotency: Scheduler delivers at least once and retries, so what the run already
    // snapshotted is skipped. A link that carries its volumes looks that up per batch and here
    // only checks that the run exists.
    let phase = Instant::now();
    let (done, run_has_snapshots) = if carried {
        let exists =
            ec2::run_has_snapshot(&clients.ec2, &policy.policy, &target.target, run_key).await?;
        (Done::PerBatch, exists)
    } else {
        let existing = ec2::list_managed_snapshots(
            &clients.ec2,
            &policy.policy,
            Some(&target.target),
            Some(run_key),
        )
        .await?;
        let done: BTreeSet<String> = existing
            .iter()
            .filter(|s| s.tag(TAG_RUN) == Some(run_key))
            .map(ManagedSnapshot::volume)
            .collect();
        let any = !done.is_empty();
        (Done::Listed(done), any)
    };
    info!(
        listed = matches!(done, Done::Listed(_)),
        run_has_snapshots,
        ms = elapsed_ms(phase),
        "read the run's snapshots"
    );
    // A continuation's run key must be a run this target started: its first link creates before
    // it hands on, so a real continuation finds snapshots carrying the key.
    if continuing && !run_has_snapshots {
        return Err(Error::Rejected(format!(
            "the continuation's run key {run_key:?} is not a run of target {}/{}: no snapshot carries it",
            policy.policy, target.target
        )));
    }
    let ctx = Ctx {
        clients,
        policy,
        target,
        run_key,
        opts,
        tags: Mutex::default(),
        side: Mutex::default(),
        queued: AtomicUsize::new(0),
        progress,
        pace_single: Pacer::for_link(
            "CreateSnapshot",
            &clients.calls,
            opts.carried_rate("CreateSnapshot"),
        ),
        pace_sets: Pacer::for_link(
            "CreateSnapshots",
            &clients.calls,
            opts.carried_rate("CreateSnapshots"),
        ),
        ambiguous: Tally::default(),
    };
    if opts.dry_run {
        let mut batches = batches;
        while let Some(b) = batches.next().await {
            let jobs = ctx.prepare(b, &done).await;
            report
                .created
                .extend(jobs.iter().flat_map(job_volumes).map(|s| Created {
                    snapshot_id: None,
                    volume_id: s.volume_id.clone(),
                    instance_id: s.instance_id.clone(),
                    device: s.device.clone(),
                }));
        }
        ctx.side_into(report);
        return Ok(None);
    }
    let phase = Instant::now();
    let mut unstarted = Vec::new();
    let first = batches
        .then(|b| ctx.prepare(b, &done))
        .flat_map(futures::stream::iter);
    let mut ambiguous = ctx.wave(first, report, &mut unstarted).await;
    ctx.side_into(report);
    for wave in 1.. {
        if ambiguous.is_empty() {
            break;
        }
        let jobs = ctx
            .resolve_ambiguous(ambiguous, wave, report, &mut unstarted)
            .await;
        if jobs.is_empty() {
            break;
        }
        ctx.queued.store(jobs.len(), Ordering::Relaxed);
        ambiguous = ctx
            .wave(futures::stream::iter(jobs), report, &mut unstarted)
            .await;
    }
    report.ambiguous.add(ctx.ambiguous.total());
    info!(
        created = report.created.len(),
        failed = report.failures.len(),
        unstarted = unstarted.len(),
        ambiguous = report.ambiguous.count,
        ms = elapsed_ms(phase),
        "creations done"
    );
    if unstarted.is_empty() {
        return Ok(None);
    }
    unstarted.sort_by(|a, b| a.volume_id.cmp(&b.volume_id));
    let rates = [&ctx.pace_single, &ctx.pace_sets]
        .into_iter()
        .map(|p| (p.op().to_string(), p.per_second()))
        .collect();
    Ok(Some(HandOff {
        unstarted,
        rates,
        run_has_snapshots,
    }))
}

async fn run_target_in_span(
    clients: &Clients,
    policy: &PolicyDocument,
    target: &TargetDocument,
    opts: &RunOptions,
    run_key: String,
    started: Instant,
    calls_before: BTreeMap<String, u64>,
) -> Result<Report, Error> {
    let rules = target.rules(&policy.rules());
    let mut report = Report {
        link: opts.chain.as_ref().map(|c| c.link),
        kind: "run",
        policy: policy.policy.clone(),
        target: Some(target.target.clone()),
        run_key: run_key.clone(),
        dry_run: opts.dry_run,
        now: opts.now.to_string(),
        ..Report::default()
    };

    // Pipelined (docs/design.md §5): the inventory is read page by page, and what each page
    // settles is snapshotted while later pages are read. Only this run's own snapshots (to skip
    // what is done) are listed first, beside the first page; the target's whole history
    // (retention days x volumes, pages of DescribeSnapshots) is read by the link that prunes,
    // beside its creations once the inventory is read (history.rs).
    let continuing = opts.chain.as_ref().is_some_and(|c| c.link > 1);
    let carried = carried_volumes(opts, target);
    let (tx, rx) = futures::channel::mpsc::unbounded::<pipeline::Batch>();
    let (read_done, inventory_read) = futures::channel::oneshot::channel::<()>();
    let progress = history::Progress::default();
    let tagger = |s: &Selected, inv: &Inventory| snapshot_tags(policy, target, &run_key, s, inv);
    let read = async {
        let mut dispatcher = pipeline::Dispatcher::new(
            &target.select,
            target.exclude(),
            policy.crash_consistent(),
            &tagger,
            tx,
        );
        if let Some(carried) = carried {
            dispatcher = dispatcher.only(carried);
        }
        let mut sink = |inv: &Inventory, complete: bool| dispatcher.on_page(inv, complete);
        let phase = Instant::now();
        let inv = match carried {
            Some(carried) => {
                ec2::read_listed_volumes(
                    &clients.ec2,
                    &clients.autoscaling,
                    &target.select,
                    carried,
                    policy.crash_consistent(),
                    Some(&mut sink),
                )
                .await?
            }
            None => {
                ec2::read_inventory(
                    &clients.ec2,
                    &clients.autoscaling,
                    &target.select,
                    Some(&mut sink),
                )
                .await?
            }
        };
        let handed_on = dispatcher.dispatched();
        info!(
            instances = inv.instances.len(),
            volumes = inv.volumes.len(),
            carried = carried.map(<[String]>::len),
            ms = elapsed_ms(phase),
            "read the inventory"
        );
        let selected = select::select(&target.select, &target.exclude(), &inv);
        let outcome = match carried {
            Some(carried) => carried_outcome(carried, &selected, &inv),
            None => Outcome {
                failures: selection_failures(target, &inv, selected.len()),
                selected: selected.len(),
                vanished: Vec::new(),
            },
        };
        drop(inv);
        progress.read(handed_on);
        let _ = read_done.send(());
        Ok::<_, Error>(outcome)
    };
    let create = create(
        clients,
        policy,
        target,
        opts,
        &run_key,
        continuing,
        carried.is_some(),
        rx,
        &progress,
        &mut report,
    );
    let history = history::list_beside_creations(
        clients,
        &policy.policy,
        &target.target,
        opts,
        &progress,
        inventory_read,
    );
    let history = std::pin::pin!(history);
    let (read, created, history) = match futures::future::select(
        std::pin::pin!(async { futures::join!(read, create) }),
        history,
    )
    .await
    {
        Either::Left(((read, created), history)) => (read, created, Either::Left(history)),
        Either::Right((listed, both)) => {
            let (read, created) = both.await;
            (read, created, Either::Right(listed))
        }
    };
    // A rejected continuation stops the reading: its error comes first.
    let hand_off = created?;
    let Outcome {
        selected,
        failures,
        vanished,
    } = read.inspect_err(|e| {
        warn!(
            created = report.created.len(),
            "the inventory could not be read to its end: {e}; the snapshots created so far stay and the run's next delivery skips them"
        )
    })?;
    report.volumes_selected = selected;
    report.failures.extend(failures);
    report.skipped.extend(vanished);
    if let Some(HandOff {
        unstarted,
        rates,
        run_has_snapshots,
    }) = hand_off
        && chain::hand_off(
            clients,
            target,
            &run_key,
            opts,
            rates,
            unstarted,
            run_has_snapshots,
            &mut report,
        )
        .await
    {
        // The next link carries on (same run key) and prunes once creations are done.
        report.created.sort_by(|a, b| a.volume_id.cmp(&b.volume_id));
        report.api_calls = clients.calls.since(&calls_before);
        report.duration_ms = started.elapsed().as_millis() as u64;
        return Ok(report);
    }
    report.created.sort_by(|a, b| a.volume_id.cmp(&b.volume_id));
    let phase = Instant::now();
    let early = match history {
        Either::Right(listed) => listed,
        Either::Left(listing) if progress.listing() => listing.await,
        Either::Left(_) => None,
    };
    let existing = match early {
        Some(listed) => listed?,
        None => {
            ec2::list_managed_snapshots(&clients.ec2, &policy.policy, Some(&target.target), None)
                .await?
        }
    };
    info!(
        snapshots = existing.len(),
        ms = elapsed_ms(phase),
        "read the target's snapshots to prune"
    );
    if let Some(interval) = opts.interval {
        report.recovered = recovered(
            &target.target,
            &report.created,
            &existing,
            &run_key,
            interval,
            opts.now,
        );
    }

    // Prune. New snapshots join as pending: never deleted, never counted. The listing was read
    // beside or after the creations and may hold some of them: what this link created counts as
    // pending whatever state the listing shows (as it would had the history been read before
    // them), so a run's own snapshots never push an older restore point out.
    let made: BTreeSet<&str> = report
        .created
        .iter()
        .filter_map(|c| c.snapshot_id.as_deref())
        .collect();
    let mut snaps: Vec<retention::Snap> = existing
        .iter()
        .map(|s| {
            let mut snap = s.to_snap();
            if made.contains(snap.id.as_str()) {
                snap.state = SnapState::Pending;
            }
            snap
        })
        .collect();
    drop(made);
    drop(existing);
    let listed: BTreeSet<String> = snaps.iter().map(|s| s.id.clone()).collect();
    for c in &report.created {
        if let Some(id) = c.snapshot_id.as_ref().filter(|id| !listed.contains(*id)) {
            snaps.push(retention::Snap {
                id: id.clone(),
                owned: true,
                policy: Some(policy.policy.clone()),
                target: Some(target.target.clone()),
                volume: c.volume_id.clone(),
                run: Some(run_key.clone()),
                state: SnapState::Pending,
                start_time: opts.now,
                copy: false,
            });
        }
    }
    let scope = Scope::Target {
        policy: &policy.policy,
        target: &target.target,
    };
    let plan = retention::plan(&scope, &snaps, |_| rules, |_| false, opts.now);
    let phase = Instant::now();
    prune(clients, plan, opts, &mut report).await;
    info!(
        deleted = report.deleted.len(),
        kept = report.kept,
        ms = elapsed_ms(phase),
        "pruned"
    );
    if let Some(listed) = super::copy::list_for_copies_and_share(clients, policy, target).await {
        let listed = listed.as_deref();
        report.share = super::share::share_run(clients, policy, &run_key, listed, opts).await;
        report.copies = super::copy::copy_and_prune(clients, policy, target, listed, opts).await;
    }
    for o in &target.copies {
        if !policy.copies.iter().any(|c| c.region == o.region) {
            report.warnings.push(format!(
                "the target's copy_retention for {} is ignored: its policy does not copy to {}",
                o.region, o.region
            ));
        }
    }

    report.api_calls = clients.calls.since(&calls_before);
    report.duration_ms = started.elapsed().as_millis() as u64;
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::select::{Instance, Volume};

    fn sel(v: &str, i: &str, dev: &str) -> Selected {
        Selected {
            volume_id: v.into(),
            instance_id: Some(i.into()),
            device: Some(dev.into()),
            size_gb: 8,
            root: dev == "/dev/xvda",
        }
    }

    /// Instance i-1: root vol-r, data vol-a and vol-b; `described` says which volumes the
    /// inventory holds.
    fn inv(described: &[&str]) -> Inventory {
        let mut inv = Inventory::default();
        inv.instances.insert(
            "i-1".into(),
            Instance {
                id: "i-1".into(),
                state: "running".into(),
                root_device: Some("/dev/xvda".into()),
                volumes: vec!["vol-r".into(), "vol-a".into(), "vol-b".into()],
                ..Default::default()
            },
        );
        for (v, dev) in [
            ("vol-r", "/dev/xvda"),
            ("vol-a", "/dev/sdf"),
            ("vol-b", "/dev/sdg"),
        ] {
            if described.contains(&v) {
                inv.volumes.insert(
                    v.into(),
                    Volume {
                        id: v.into(),
                        state: "in-use".into(),
                        attachment: Some(("i-1".into(), dev.into())),
                        ..Default::default()
                    },
                );
            }
        }
        inv
    }

    #[test]
    fn a_set_excludes_every_attached_volume_not_chosen() {
        let all = inv(&["vol-r", "vol-a", "vol-b"]);
        let chosen = [sel("vol-a", "i-1", "/dev/sdf")];
        assert_eq!(
            set_exclusions(&all, "i-1", &chosen),
            Some((true, vec!["vol-b".to_string()]))
        );
        let everything = [
            sel("vol-r", "i-1", "/dev/xvda"),
            sel("vol-a", "i-1", "/dev/sdf"),
            sel("vol-b", "i-1", "/dev/sdg"),
        ];
        assert_eq!(
            set_exclusions(&all, "i-1", &everything),
            Some((false, vec![]))
        );
    }

    #[test]
    fn no_set_unless_every_attached_volume_was_described() {
        let partial = inv(&["vol-a"]);
        let chosen = [sel("vol-a", "i-1", "/dev/sdf")];
        assert_eq!(set_exclusions(&partial, "i-1", &chosen), None);
        assert_eq!(set_exclusions(&partial, "i-unknown", &chosen), None);
        let jobs = plan_jobs(chosen.to_vec(), &partial, true);
        assert!(matches!(jobs.as_slice(), [Job::Volume(s)] if s.volume_id == "vol-a"));
        // Without crash_consistent every volume is its own job.
        let all = inv(&["vol-r", "vol-a", "vol-b"]);
        let jobs = plan_jobs(chosen.to_vec(), &all, false);
        assert!(matches!(jobs.as_slice(), [Job::Volume(_)]));
        let jobs = plan_jobs(chosen.to_vec(), &all, true);
        assert!(matches!(
            jobs.as_slice(),
            [Job::Set {
                exclude_boot: true,
                ..
            }]
        ));
    }

    #[test]
    fn descriptions_name_the_volume_and_fit_ec2() {
        let s = sel("vol-a", "i-1", "/dev/sdf");
        assert_eq!(
            description("std", "web", &s),
            "ebssnap std/web vol-a i-1 /dev/sdf"
        );
        let long = "p".repeat(300);
        assert_eq!(description(&long, "web", &s).chars().count(), 255);
    }
}
