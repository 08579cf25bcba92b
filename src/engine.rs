//! A target run and a policy sweep (DESIGN §5): the runner's core library function.
//!
//! Both take the AWS clients, the documents and `now`, and return a [`Report`]. Per-volume
//! failures are recorded and every other volume still processed; only errors that stop the
//! whole run (bad input, an AWS call the run cannot do without) are `Err`.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use jiff::Timestamp;
use tracing::{Instrument, info, info_span, warn};

use crate::aws::ec2::{self, Deleted, ManagedSnapshot};
use crate::aws::scheduler::ScheduleSpec;
use crate::aws::{Clients, scheduler};
use crate::core::doc::{self, PolicyDocument, Rules, TargetDocument};
use crate::core::retention::{self, Scope, SnapState};
use crate::core::schedule;
use crate::core::select::{self, Inventory, Selected};
use crate::core::tags::{self, Identity, TAG_RUN};
use crate::core::ticket::{self, Ticket};
use crate::error::{AwsError, Error};
use crate::report::{Created, DeletedSnapshot, Failure, InUse, Overdue, Report, Skipped};
use crate::webhook::{self, DeliveryOptions};

/// Progress of a long run, for a terminal.
pub type Progress = Arc<dyn Fn(&str, usize, usize) + Send + Sync>;

/// How a run behaves; the defaults suit the Lambda.
#[derive(Clone)]
pub struct RunOptions {
    /// The clock for age decisions (`--now`); never used to backdate anything in AWS.
    pub now: Timestamp,
    /// Only Describe/Get calls; report what would be created and deleted.
    pub dry_run: bool,
    /// Run key when the document carries no substituted scheduled time.
    pub run_key: Option<String>,
    /// Snapshot creations and deletions in flight at once.
    pub concurrency: usize,
    /// Stop starting new work after this instant (the Lambda deadline minus a margin).
    pub stop_at: Option<Instant>,
    /// Attempts for a volume that hits a per-volume rate limit, and the first backoff.
    pub create_attempts: u32,
    pub backoff: Duration,
    pub progress: Option<Progress>,
    /// How failure tickets are delivered (secret, retries); the deadline comes from `deadline`.
    pub delivery: DeliveryOptions,
    /// The hard end of the run's time budget (the Lambda deadline): ticket delivery stops here.
    pub deadline: Option<Instant>,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            now: Timestamp::now(),
            dry_run: false,
            run_key: None,
            concurrency: 8,
            stop_at: None,
            create_attempts: 4,
            backoff: Duration::from_secs(2),
            progress: None,
            delivery: DeliveryOptions::default(),
            deadline: None,
        }
    }
}

/// Every environment variable the runner reads, with what it sets. The CLI and the Lambda build
/// their options from the same function ([`RunOptions::from_env`]), so both read all of them.
pub const ENV_SETTINGS: &[(&str, &str)] = &[
    (
        "EBSSNAP_WEBHOOK_SECRET",
        "fallback signing secret for failure tickets",
    ),
    (
        "EBSSNAP_WEBHOOK_ATTEMPTS",
        "delivery attempts per ticket (1-20, default 5)",
    ),
    (
        "EBSSNAP_WEBHOOK_BACKOFF_MS",
        "first backoff between delivery attempts (default 1000)",
    ),
    (
        "EBSSNAP_LOG",
        "log filter (else RUST_LOG; default info for JSON logs, warn for text)",
    ),
];

impl RunOptions {
    /// The options both shells share, from the runner's environment ([`ENV_SETTINGS`]).
    pub fn from_env() -> Self {
        RunOptions {
            delivery: DeliveryOptions::from_env(),
            ..RunOptions::default()
        }
    }

    fn out_of_time(&self) -> bool {
        self.stop_at.is_some_and(|t| Instant::now() >= t)
    }

    fn tick(&self, what: &str, done: usize, total: usize) {
        if let Some(p) = &self.progress {
            p(what, done, total);
        }
    }
}

/// The run key: the substituted scheduled time, else `--run-key`, else `manual-<UTC time>`. It
/// becomes a tag value, so it must fit EC2's limit (an event may be forged).
fn run_key(invocation: Option<&doc::Invocation>, opts: &RunOptions) -> Result<String, Error> {
    let key = invocation
        .and_then(|i| i.scheduled_time())
        .map(String::from)
        .or_else(|| opts.run_key.clone())
        .unwrap_or_else(|| format!("manual-{}", Timestamp::now().strftime("%Y%m%dT%H%M%SZ")));
    tags::check_run_key(&key).map_err(Error::Input)?;
    Ok(key)
}

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
    }
}

/// One unit of creation work: a single volume, or a whole instance's crash-consistent set.
enum Job {
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
    Skipped(Vec<Skipped>),
}

/// What a target run needs beyond the documents.
struct Ctx<'a> {
    clients: &'a Clients,
    policy: &'a PolicyDocument,
    target: &'a TargetDocument,
    run_key: &'a str,
    opts: &'a RunOptions,
    inv: &'a Inventory,
}

impl Ctx<'_> {
    async fn create_one(&self, s: &Selected) -> Result<(String, Vec<tags::DroppedTag>), AwsError> {
        let settings = self.policy.tag_settings();
        let id = Identity {
            policy: &self.policy.policy,
            target: &self.target.target,
            run_key: self.run_key,
            volume_id: &s.volume_id,
        };
        let vol_tags = self.inv.volumes.get(&s.volume_id).map(|v| &v.tags);
        let inst_tags = s
            .instance_id
            .as_ref()
            .and_then(|i| self.inv.instances.get(i))
            .map(|i| &i.tags);
        let set = tags::merge(
            &id,
            &settings.extra,
            vol_tags.filter(|_| settings.copy_volume_tags),
            inst_tags.filter(|_| settings.copy_instance_tags),
        );
        let desc = description(&self.policy.policy, &self.target.target, s);
        let mut attempt = 1;
        loop {
            match ec2::create_snapshot(&self.clients.ec2, &s.volume_id, &desc, &set.tags).await {
                Ok(id) => return Ok((id, set.dropped)),
                Err(e) if e.retryable && attempt < self.opts.create_attempts => {
                    let wait = backoff(self.opts.backoff, attempt);
                    if self
                        .opts
                        .stop_at
                        .is_some_and(|t| Instant::now() + wait >= t)
                    {
                        return Err(e);
                    }
                    warn!(volume = %s.volume_id, code = %e.code, attempt, "retrying snapshot");
                    tokio::time::sleep(wait).await;
                    attempt += 1;
                }
                Err(e) => return Err(e),
            }
        }
    }

    async fn run_job(&self, job: Job) -> (JobResult, Vec<tags::DroppedTag>) {
        if self.opts.out_of_time() {
            let vols = match job {
                Job::Volume(s) => vec![s],
                Job::Set { volumes, .. } => volumes,
            };
            let skipped = vols
                .into_iter()
                .map(|s| Skipped {
                    volume_id: s.volume_id,
                    reason: "deadline: not started before the run's time ran out".into(),
                })
                .collect();
            return (JobResult::Skipped(skipped), vec![]);
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
                match ec2::create_snapshots(
                    &self.clients.ec2,
                    &instance_id,
                    exclude_boot,
                    &exclude_data,
                    &desc,
                    &ident,
                )
                .await
                {
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
                    Err(e) => (
                        JobResult::Failed(volumes.iter().map(|s| failure(s, &e)).collect()),
                        vec![],
                    ),
                }
            }
        }
    }
}

fn backoff(base: Duration, attempt: u32) -> Duration {
    let exp = base.saturating_mul(1 << attempt.min(6));
    // Cheap jitter (up to a quarter of the wait) without a random-number crate.
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    exp + exp.mul_f64(f64::from(nanos % 1000) / 4000.0)
}

/// Splits the volumes to snapshot into jobs: with `crash_consistent`, one set per instance when
/// every volume attached to it was described (so each unselected one can be excluded by id),
/// single volumes otherwise (DESIGN §5).
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
        match set_exclusions(inv, &instance_id, &volumes) {
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

/// Runs one target: select, snapshot, prune (DESIGN §5).
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

/// What selects nothing is a failure (DESIGN §4): named references that resolve to nothing
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
        });
    }
    for f in &out {
        warn!(code = %f.code, message = %f.message, "selection failure");
    }
    out
}

/// Sends the ticket a finished (or failed) run calls for, records the outcome, logs the report.
async fn finish(
    clients: &Clients,
    policy: &PolicyDocument,
    target: Option<&str>,
    run_key: &str,
    invocation: Option<&doc::Invocation>,
    opts: &RunOptions,
    result: Result<Report, Error>,
) -> Result<Report, Error> {
    let due = match &result {
        Ok(r) => {
            !r.dry_run && (r.failed() || !r.overdue.is_empty() || !r.error_snapshots.is_empty())
        }
        Err(Error::Aws(_)) => true,
        Err(_) => false,
    };
    if !due {
        if let Ok(r) = &result {
            log_report(r);
        }
        return result;
    }
    let before = clients.calls.snapshot();
    let account = match invocation
        .and_then(|i| i.schedule_arn())
        .and_then(ticket::account_of_arn)
    {
        Some(a) => Some(a),
        None => clients.account_id().await,
    };
    let ctx = ticket::Context {
        account,
        region: clients.region.clone(),
        occurred_at: Timestamp::now().to_string(),
        invocation: invocation.cloned(),
    };
    let url = policy.webhook_url();
    match result {
        Ok(mut report) => {
            if let Some(t) = ticket::from_report(&report, &ctx) {
                if let Some(url) = url {
                    report.ticket = Some(send(url, &t, opts).await);
                }
                report.ticket_body = Some(t);
            }
            for (op, n) in clients.calls.since(&before) {
                *report.api_calls.entry(op).or_insert(0) += n;
            }
            log_report(&report);
            Ok(report)
        }
        Err(Error::Aws(e)) => {
            let t = ticket::run_failed(
                &policy.policy,
                target,
                run_key,
                &e.code,
                &e.to_string(),
                e.retryable,
                &ctx,
            );
            match url {
                Some(url) => {
                    send(url, &t, opts).await;
                }
                None => log_undelivered(&t, "no webhook configured"),
            }
            Err(Error::Aws(e))
        }
        Err(e) => Err(e),
    }
}

fn log_undelivered(t: &Ticket, why: &str) {
    let body = serde_json::to_string(t).unwrap_or_default();
    tracing::error!(event = %t.event, dedup_key = %t.dedup_key, ticket = %body, "failure ticket ({why})");
}

/// Delivers a ticket; an undelivered one is logged in full (never the secret or the URL's
/// credentials), so it is not lost.
async fn send(url: &str, t: &Ticket, opts: &RunOptions) -> crate::report::TicketOutcome {
    let delivery = DeliveryOptions {
        deadline: opts.deadline.or(opts.delivery.deadline),
        ..opts.delivery.clone()
    };
    let outcome = webhook::deliver(url, t, &delivery).await;
    if outcome.delivered {
        info!(event = %t.event, dedup_key = %t.dedup_key, attempts = outcome.attempts, "ticket delivered");
    } else {
        let body = serde_json::to_string(t).unwrap_or_default();
        tracing::error!(
            url = %outcome.url,
            attempts = outcome.attempts,
            error = outcome.error.as_deref().unwrap_or(""),
            ticket = %body,
            "ticket NOT delivered"
        );
    }
    outcome
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
        kind: "run",
        policy: policy.policy.clone(),
        target: Some(target.target.clone()),
        run_key: run_key.clone(),
        dry_run: opts.dry_run,
        now: opts.now.to_string(),
        ..Report::default()
    };

    let inv = ec2::fetch_inventory(&clients.ec2, &clients.autoscaling, &target.select).await?;
    let selected = select::select(&target.select, &target.exclude(), &inv);
    report.volumes_selected = selected.len();
    report
        .failures
        .extend(selection_failures(target, &inv, selected.len()));
    let existing =
        ec2::list_managed_snapshots(&clients.ec2, &policy.policy, Some(&target.target)).await?;

    // Idempotency: Scheduler delivers at least once and retries.
    let done: BTreeSet<String> = existing
        .iter()
        .filter(|s| s.tag(TAG_RUN) == Some(run_key.as_str()))
        .map(ManagedSnapshot::volume)
        .collect();
    let (already, to_create): (Vec<Selected>, Vec<Selected>) = selected
        .into_iter()
        .partition(|s| done.contains(&s.volume_id));
    report.skipped.extend(already.into_iter().map(|s| Skipped {
        volume_id: s.volume_id,
        reason: format!("already snapshotted in run {run_key}"),
    }));

    if opts.dry_run {
        report.created = to_create
            .into_iter()
            .map(|s| Created {
                snapshot_id: None,
                volume_id: s.volume_id,
                instance_id: s.instance_id,
                device: s.device,
            })
            .collect();
    } else {
        let ctx = Ctx {
            clients,
            policy,
            target,
            run_key: &run_key,
            opts,
            inv: &inv,
        };
        let jobs = plan_jobs(to_create, &inv, policy.crash_consistent());
        let total = jobs.len();
        let mut results = futures::stream::iter(jobs)
            .map(|job| ctx.run_job(job))
            .buffer_unordered(opts.concurrency.max(1));
        let mut n = 0;
        while let Some((result, dropped)) = results.next().await {
            n += 1;
            opts.tick("snapshots", n, total);
            report.tags_dropped.extend(dropped);
            match result {
                JobResult::Created(c) => report.created.extend(c),
                JobResult::Failed(f) => report.failures.extend(f),
                JobResult::Skipped(s) => report.skipped.extend(s),
            }
        }
    }
    report.created.sort_by(|a, b| a.volume_id.cmp(&b.volume_id));

    // Prune. New snapshots join as pending: never deleted, never counted.
    let mut snaps: Vec<retention::Snap> = existing.iter().map(ManagedSnapshot::to_snap).collect();
    for c in &report.created {
        if let Some(id) = &c.snapshot_id {
            snaps.push(retention::Snap {
                id: id.clone(),
                owned: true,
                policy: Some(policy.policy.clone()),
                target: Some(target.target.clone()),
                volume: c.volume_id.clone(),
                run: Some(run_key.clone()),
                state: SnapState::Pending,
                start_time: opts.now,
            });
        }
    }
    let scope = Scope::Target {
        policy: &policy.policy,
        target: &target.target,
    };
    let plan = retention::plan(&scope, &snaps, |_| rules, |_| false, opts.now);
    prune(clients, plan, opts, &mut report).await;

    report.api_calls = clients.calls.since(&calls_before);
    report.duration_ms = started.elapsed().as_millis() as u64;
    Ok(report)
}

/// Executes a retention plan (or only reports it in a dry run).
async fn prune(clients: &Clients, plan: retention::Plan, opts: &RunOptions, report: &mut Report) {
    report.kept += plan.keep.len();
    report.error_snapshots.extend(plan.errors);
    if opts.dry_run {
        report
            .deleted
            .extend(plan.delete.into_iter().map(|d| DeletedSnapshot {
                snapshot_id: d.snapshot_id,
                volume_id: d.volume_id,
                target: d.target,
                reason: d.reason,
            }));
        return;
    }
    let total = plan.delete.len();
    let mut results = futures::stream::iter(plan.delete)
        .map(|d| async move {
            if opts.out_of_time() {
                return (d, None);
            }
            let r = ec2::delete_snapshot(&clients.ec2, &d.snapshot_id).await;
            (d, Some(r))
        })
        .buffer_unordered(opts.concurrency.max(1));
    let mut n = 0;
    while let Some((d, r)) = results.next().await {
        n += 1;
        opts.tick("deletions", n, total);
        match r {
            None => report.kept += 1,
            Some(Ok(Deleted::Deleted | Deleted::Gone)) => report.deleted.push(DeletedSnapshot {
                snapshot_id: d.snapshot_id,
                volume_id: d.volume_id,
                target: d.target,
                reason: d.reason,
            }),
            Some(Ok(Deleted::InUse(message))) => {
                report.kept += 1;
                report.in_use.push(InUse {
                    snapshot_id: d.snapshot_id,
                    volume_id: d.volume_id,
                    message,
                });
            }
            Some(Err(e)) => {
                report.kept += 1;
                report.failures.push(Failure {
                    volume_id: d.volume_id,
                    instance_id: None,
                    device: None,
                    snapshot_id: Some(d.snapshot_id),
                    code: e.code,
                    message: e.message,
                    retryable: e.retryable,
                });
            }
        }
    }
    report
        .deleted
        .sort_by(|a, b| a.snapshot_id.cmp(&b.snapshot_id));
}

/// Sweeps a policy: prunes every pair (removed targets and orphans included) and reports
/// snapshots in state `error` (DESIGN §5).
pub async fn sweep(
    clients: &Clients,
    policy: &PolicyDocument,
    opts: &RunOptions,
) -> Result<Report, Error> {
    let started = Instant::now();
    let calls_before = clients.calls.snapshot();
    policy.validate()?;
    let run_key = run_key(policy.invocation.as_ref(), opts)?;
    let span = info_span!("sweep", policy = %policy.policy, run = %run_key);
    let result = sweep_in_span(
        clients,
        policy,
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
        None,
        &run_key,
        policy.invocation.as_ref(),
        opts,
        result,
    )
    .await
}

async fn sweep_in_span(
    clients: &Clients,
    policy: &PolicyDocument,
    opts: &RunOptions,
    run_key: String,
    started: Instant,
    calls_before: BTreeMap<String, u64>,
) -> Result<Report, Error> {
    let mut report = Report {
        kind: "sweep",
        policy: policy.policy.clone(),
        target: None,
        run_key,
        dry_run: opts.dry_run,
        now: opts.now.to_string(),
        ..Report::default()
    };
    let policy_rules = policy.rules();
    let names = scheduler::list_targets(&clients.scheduler, &policy.policy)
        .await?
        .unwrap_or_default();
    // Rules of every live target; a target whose document cannot be read is not pruned at all,
    // since the policy's rules might be shorter than its own.
    let mut rules: BTreeMap<String, Option<Rules>> = BTreeMap::new();
    let mut live: Vec<(ScheduleSpec, TargetDocument)> = Vec::new();
    for name in names {
        let read = scheduler::get_schedule(&clients.scheduler, &policy.policy, &name).await?;
        let parsed = read
            .map(|spec| doc::parse_target(&spec.input).map(|d| (spec, d)))
            .transpose();
        let r = match parsed {
            Ok(Some((spec, t))) => {
                let r = t.rules(&policy_rules);
                live.push((spec, t));
                Some(r)
            }
            // Deleted between the listing and now: its snapshots follow the policy's rules.
            Ok(None) => continue,
            Err(e) => {
                report.failures.push(Failure {
                    volume_id: String::new(),
                    instance_id: None,
                    device: None,
                    snapshot_id: None,
                    code: "InvalidTargetDocument".into(),
                    message: format!("target {name} not pruned: {e}"),
                    retryable: false,
                });
                None
            }
        };
        rules.insert(name, r);
    }
    let existing = ec2::list_managed_snapshots(&clients.ec2, &policy.policy, None).await?;
    let snaps: Vec<retention::Snap> = existing
        .iter()
        .map(ManagedSnapshot::to_snap)
        .filter(|s| !matches!(s.target.as_ref().and_then(|t| rules.get(t)), Some(None)))
        .collect();
    let volumes: BTreeSet<String> = snaps.iter().map(|s| s.volume.clone()).collect();
    let volumes: Vec<String> = volumes.into_iter().collect();
    let alive = ec2::existing_volumes(&clients.ec2, &volumes).await?;
    let scope = Scope::Policy {
        policy: &policy.policy,
    };
    let plan = retention::plan(
        &scope,
        &snaps,
        |t| rules.get(t).copied().flatten().unwrap_or(policy_rules),
        |v| !alive.contains(v),
        opts.now,
    );
    prune(clients, plan, opts, &mut report).await;
    for (spec, target) in &live {
        report
            .overdue
            .extend(overdue(clients, spec, target, &existing, opts.now).await?);
    }
    report.api_calls = clients.calls.since(&calls_before);
    report.duration_ms = started.elapsed().as_millis() as u64;
    Ok(report)
}

/// The selected volumes of a live target whose newest completed snapshot is older than twice the
/// schedule's interval (or that never got one, once the schedule and the volume are that old).
async fn overdue(
    clients: &Clients,
    spec: &ScheduleSpec,
    target: &TargetDocument,
    snapshots: &[ManagedSnapshot],
    now: Timestamp,
) -> Result<Vec<Overdue>, Error> {
    let active = spec.enabled
        && spec.start_date.is_none_or(|t| t <= now)
        && spec.end_date.is_none_or(|t| t > now);
    let Ok(expr) = schedule::parse(&spec.expression) else {
        return Ok(vec![]);
    };
    let Ok(tz) = jiff::tz::TimeZone::get(&spec.timezone) else {
        return Ok(vec![]);
    };
    let Some(interval) = schedule::interval(&expr, &tz, now) else {
        return Ok(vec![]);
    };
    if !active {
        return Ok(vec![]);
    }
    let due_before = now - interval * 2;
    let inv = ec2::fetch_inventory(&clients.ec2, &clients.autoscaling, &target.select).await?;
    let mut newest: BTreeMap<String, &ManagedSnapshot> = BTreeMap::new();
    for s in snapshots.iter().filter(|s| {
        s.tag(tags::TAG_TARGET) == Some(target.target.as_str()) && s.state == "completed"
    }) {
        let e = newest.entry(s.volume()).or_insert(s);
        if s.start_time > e.start_time {
            *e = s;
        }
    }
    let mut out = Vec::new();
    for sel in select::select(&target.select, &target.exclude(), &inv) {
        let last = newest.get(&sel.volume_id);
        let late = match last {
            Some(s) => s.start_time < due_before,
            None => {
                let created = inv.volumes.get(&sel.volume_id).and_then(|v| v.created);
                spec.created.is_some_and(|t| t < due_before)
                    && created.is_some_and(|t| t < due_before)
            }
        };
        if late {
            out.push(Overdue {
                target: target.target.clone(),
                volume_id: sel.volume_id,
                instance_id: sel.instance_id,
                device: sel.device,
                newest_snapshot_id: last.map(|s| s.id.clone()),
                newest_at: last.map(|s| s.start_time.to_string()),
                interval_seconds: interval.as_secs(),
            });
        }
    }
    Ok(out)
}

/// The report as one structured log line.
fn log_report(report: &Report) {
    match serde_json::to_string(report) {
        Ok(json) => info!(report = %json, "ebssnap report"),
        Err(e) => warn!(error = %e, "could not serialize the report"),
    }
}
