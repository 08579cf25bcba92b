//! The `ebssnap` command line (DESIGN §8). A thin shell: parse arguments, build clients, call
//! the runner, print the report, map the outcome to a documented exit code.

use std::fmt::Write as _;
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::sync::Arc;

use clap::{Args, Parser, Subcommand, ValueEnum};
use jiff::Timestamp;
use serde::Serialize;

use crate::aws::{Clients, ConnectOptions, ec2};
use crate::core::doc::{self, PolicyDocument, TargetDocument};
use crate::core::retention;
use crate::core::select;
use crate::error::{Error, exit};
use crate::runner::documents;
use crate::runner::{self, RunOptions};

#[derive(Debug, Parser)]
#[command(
    name = "ebssnap",
    version,
    about = "Scheduled EBS snapshots: the ebssnap runner"
)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Args)]
pub struct Global {
    /// AWS region (default: the standard AWS chain)
    #[arg(long, global = true, env = "AWS_REGION")]
    pub region: Option<String>,
    /// Named AWS profile
    #[arg(long, global = true)]
    pub profile: Option<String>,
    /// One endpoint for every AWS service (emulators, VPC endpoints)
    #[arg(long, global = true, env = "AWS_ENDPOINT_URL")]
    pub endpoint_url: Option<String>,
    /// Log format on stderr
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Args)]
pub struct Common {
    /// Clock for age decisions (RFC 3339); never backdates anything in AWS
    #[arg(long, value_parser = parse_now)]
    pub now: Option<Timestamp>,
    /// Only read (Describe/Get); print what would be created and deleted
    #[arg(long)]
    pub dry_run: bool,
    /// Print the report as one JSON object
    #[arg(long)]
    pub json: bool,
    /// Snapshot creations and deletions in flight at once
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub concurrency: u16,
}

#[derive(Debug, Args)]
#[group(id = "which", required = true, multiple = true)]
pub struct Which {
    /// Policy name (reads the documents from EventBridge Scheduler)
    #[arg(long, group = "which", requires = "target")]
    pub policy: Option<String>,
    /// Target name
    #[arg(long, requires = "policy")]
    pub target: Option<String>,
    /// Target document from a file instead of Scheduler ("-" for stdin)
    #[arg(long, group = "which", conflicts_with = "policy")]
    pub input: Option<PathBuf>,
    /// Policy document from a file (with --input); default: read it from Scheduler
    #[arg(long, requires = "input")]
    pub policy_input: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Snapshot a target's volumes and prune its expired snapshots
    Run {
        #[command(flatten)]
        which: Which,
        #[command(flatten)]
        common: Common,
        /// Run key when the document has no scheduled time (default: manual-<UTC time>)
        #[arg(long)]
        run_key: Option<String>,
    },
    /// Prune every snapshot of a policy (removed targets and orphans included)
    Sweep {
        #[arg(long)]
        policy: String,
        #[command(flatten)]
        common: Common,
    },
    /// Show the volumes a target's selector matches now
    Volumes {
        #[command(flatten)]
        which: Which,
        #[arg(long)]
        json: bool,
    },
    /// Failure tickets: send a sample, or receive and verify them locally
    Webhook {
        #[command(subcommand)]
        command: WebhookCommand,
    },
    /// Take over ebs_snapper's snapshots (DeleteOn) of the volumes a target selects, so the
    /// policy's retention and minimum apply to them. Lists them unless --yes; never deletes
    Adopt {
        #[arg(long)]
        policy: String,
        #[arg(long)]
        target: String,
        /// Only list what would be tagged (the default)
        #[arg(long, conflicts_with = "yes")]
        dry_run: bool,
        /// Tag them
        #[arg(long)]
        yes: bool,
        #[arg(long)]
        json: bool,
    },
    /// Move to ebssnap from another tool
    Migrate {
        #[command(subcommand)]
        from: MigrateFrom,
    },
    /// List a policy's managed snapshots and when each expires
    Snapshots {
        #[arg(long)]
        policy: String,
        #[arg(long)]
        target: Option<String>,
        #[arg(long, value_parser = parse_now)]
        now: Option<Timestamp>,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum MigrateFrom {
    /// ebs_snapper's configuration stanzas (its DynamoDB table, or a file) as Terraform: one
    /// ebssnap_policy and one ebssnap_target per stanza, and MIGRATION.md
    EbsSnapper {
        /// The DynamoDB table holding the stanzas
        #[arg(long, default_value = crate::core::migrate::DEFAULT_TABLE)]
        table: String,
        /// Only the stanzas of this account (the table's aws_account_id)
        #[arg(long)]
        account_id: Option<String>,
        /// Read the stanzas from a JSON file instead: {id: configuration} or [{id, configuration}]
        #[arg(long)]
        file: Option<PathBuf>,
        /// Where to write ebssnap.tf and MIGRATION.md
        #[arg(long, required_unless_present = "verify")]
        out: Option<PathBuf>,
        /// Compare, per stanza, ebs_snapper's selection now with the generated target's and the
        /// deployed target's (exit 1 on any difference); writes nothing
        #[arg(long, conflicts_with = "out")]
        verify: bool,
        /// Exit 0 even when something could not be expressed (it is listed in MIGRATION.md)
        #[arg(long)]
        allow_lossy: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum WebhookCommand {
    /// Send a sample ticket to the policy's webhook (or --url) and report the receiver's answer
    Test {
        #[arg(long, conflicts_with = "url", required_unless_present = "url")]
        policy: Option<String>,
        #[arg(long)]
        url: Option<String>,
    },
    /// A local receiver: print each ticket and verify its signature with EBSSNAP_WEBHOOK_SECRET
    Serve {
        /// Address to listen on (loopback by default)
        #[arg(long, default_value = "127.0.0.1:8080")]
        listen: String,
        /// Allow listening on a non-loopback address (tickets carry account details)
        #[arg(long)]
        allow_remote: bool,
        /// Exit after this many tickets
        #[arg(long)]
        count: Option<usize>,
        /// Print each verified ticket as one JSON line on stdout (for piping into another
        /// system); everything else goes to stderr. Needs EBSSNAP_WEBHOOK_SECRET.
        #[arg(long)]
        json_lines: bool,
    },
}

fn parse_now(s: &str) -> Result<Timestamp, String> {
    s.parse::<Timestamp>()
        .map_err(|e| format!("expected an RFC 3339 time such as 2026-11-26T05:00:00Z: {e}"))
}

/// Runs the CLI and returns the process exit code.
pub async fn main(cli: Cli) -> i32 {
    match dispatch(cli).await {
        Ok(code) => code,
        Err(e) => {
            eprintln!("ebssnap: error: {e}");
            e.exit_code()
        }
    }
}

fn read_file(path: &PathBuf) -> Result<String, Error> {
    if path.as_os_str() == "-" {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut s)
            .map_err(|e| Error::Input(format!("reading stdin: {e}")))?;
        return Ok(s);
    }
    std::fs::read_to_string(path)
        .map_err(|e| Error::Input(format!("reading {}: {e}", path.display())))
}

async fn connect(g: &Global) -> Clients {
    Clients::connect(&ConnectOptions {
        region: g.region.clone(),
        profile: g.profile.clone(),
        endpoint_url: g.endpoint_url.clone(),
        ..Default::default()
    })
    .await
}

/// The documents of a run, and the target schedule's interval when read from Scheduler.
async fn documents(
    clients: &Clients,
    which: &Which,
) -> Result<(PolicyDocument, TargetDocument, Option<jiff::SignedDuration>), Error> {
    if let Some(path) = &which.input {
        let target = doc::parse_target(&read_file(path)?)
            .map_err(|e| Error::Input(format!("{}: {e}", path.display())))?;
        let policy = match &which.policy_input {
            Some(p) => doc::parse_policy(&read_file(p)?)
                .map_err(|e| Error::Input(format!("{}: {e}", p.display())))?,
            None => documents::load_policy(clients, &target.policy).await?,
        };
        return Ok((policy, target, None));
    }
    let (Some(p), Some(t)) = (&which.policy, &which.target) else {
        return Err(Error::Input(
            "give --policy and --target, or --input".into(),
        ));
    };
    let policy = documents::load_policy(clients, p).await?;
    let (target, interval) = documents::load_target(clients, p, t).await?;
    Ok((policy, target, interval))
}

fn options(common: &Common, run_key: Option<String>) -> RunOptions {
    let progress: Option<runner::Progress> = if std::io::stderr().is_terminal() && !common.json {
        Some(Arc::new(|what: &str, done: usize, total: usize| {
            if total >= 20 && (done.is_multiple_of(10) || done == total) {
                eprint!("\r{what}: {done}/{total}");
                if done == total {
                    eprintln!();
                }
            }
        }))
    } else {
        None
    };
    RunOptions {
        now: common.now.unwrap_or_else(Timestamp::now),
        dry_run: common.dry_run,
        run_key,
        concurrency: usize::from(common.concurrency),
        progress,
        ..RunOptions::from_env()
    }
}

/// Writes to stdout. A closed pipe (`ebssnap snapshots | head`) is not an error: the exit code
/// still reflects the run, so write errors are ignored rather than panicking like `print!`.
fn emit(text: &str) {
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes()).and_then(|_| out.flush());
}

/// `println!` into a `String` buffer.
macro_rules! outln {
    ($buf:expr, $($arg:tt)*) => {{
        let _ = writeln!($buf, $($arg)*);
    }};
}

fn print_json<T: Serialize>(value: &T) {
    match serde_json::to_string_pretty(value) {
        Ok(s) => emit(&(s + "\n")),
        Err(e) => eprintln!("ebssnap: error: cannot serialize the output: {e}"),
    }
}

/// Prints a report and gives the exit code it stands for.
fn finish(report: &crate::core::report::Report, json: bool) -> i32 {
    if json {
        print_json(report)
    } else {
        emit(&report.human())
    }
    if report.failed() {
        exit::VOLUME_FAILED
    } else {
        exit::OK
    }
}

async fn dispatch(cli: Cli) -> Result<i32, Error> {
    match &cli.command {
        Command::Run {
            which,
            common,
            run_key,
        } => {
            let clients = connect(&cli.global).await;
            let (policy, target, interval) = documents(&clients, which).await?;
            let opts = RunOptions {
                interval,
                ..options(common, run_key.clone())
            };
            let report = runner::run_target(&clients, &policy, &target, &opts).await?;
            Ok(finish(&report, common.json))
        }
        Command::Sweep { policy, common } => {
            let clients = connect(&cli.global).await;
            let doc = documents::load_policy(&clients, policy).await?;
            let report = runner::sweep(&clients, &doc, &options(common, None)).await?;
            Ok(finish(&report, common.json))
        }
        Command::Volumes { which, json } => {
            let clients = connect(&cli.global).await;
            let (_, target, _) = documents(&clients, which).await?;
            volumes(&clients, &target, *json).await
        }
        Command::Webhook { command } => webhook_command(&cli.global, command).await,
        Command::Adopt {
            policy,
            target,
            dry_run: _,
            yes,
            json,
        } => {
            let clients = connect(&cli.global).await;
            adopt(&clients, policy, target, *yes, *json).await
        }
        Command::Migrate {
            from:
                MigrateFrom::EbsSnapper {
                    table,
                    account_id,
                    file,
                    out,
                    allow_lossy,
                    verify,
                },
        } => {
            let stanzas = match file {
                Some(f) => crate::migrate::stanzas_from_file(f)?,
                None => {
                    let clients = connect(&cli.global).await;
                    let items = crate::aws::dynamo::scan_stanzas(
                        &clients.dynamodb,
                        table,
                        account_id.as_deref(),
                    )
                    .await?;
                    crate::migrate::stanzas_from_items(items)?
                }
            };
            if *verify {
                let clients = connect(&cli.global).await;
                return crate::migrate::verify(&clients, &stanzas).await;
            }
            match out {
                Some(out) => crate::migrate::write(out, &stanzas, *allow_lossy),
                None => Err(Error::Input("give --out DIR (or --verify)".into())),
            }
        }
        Command::Snapshots {
            policy,
            target,
            now,
            json,
        } => {
            let clients = connect(&cli.global).await;
            snapshots(
                &clients,
                policy,
                target.as_deref(),
                now.unwrap_or_else(Timestamp::now),
                *json,
            )
            .await
        }
    }
}

async fn webhook_command(g: &Global, command: &WebhookCommand) -> Result<i32, Error> {
    use crate::core::ticket;
    match command {
        WebhookCommand::Test { policy, url } => {
            let mut delivery = crate::webhook::DeliveryOptions::from_env();
            let (url, policy_name) = match (url, policy) {
                (Some(u), _) => (u.clone(), "webhook-test".to_string()),
                (None, Some(p)) => {
                    let clients = connect(g).await;
                    let doc = documents::load_policy(&clients, p).await?;
                    let u = match (doc.webhook_url(), doc.webhook_secret_arn()) {
                        (Some(u), _) => u.to_string(),
                        (None, Some(arn)) => {
                            // The same path as a run: the URL and signing secret from the secret.
                            let value = crate::aws::secrets::get_secret_string(
                                &clients.secretsmanager,
                                arn,
                            )
                            .await?;
                            let w = crate::webhook::WebhookSecret::parse(&value).map_err(|e| {
                                Error::Input(format!("the webhook secret {arn}: {e}"))
                            })?;
                            if w.signing_secret.is_some() {
                                delivery.secret = w.signing_secret;
                            }
                            w.url
                        }
                        (None, None) => {
                            return Err(Error::Input(format!(
                                "policy {p:?} has no webhook (failure_webhook_url or failure_webhook_secret_arn)"
                            )));
                        }
                    };
                    (u, p.clone())
                }
                (None, None) => return Err(Error::Input("give --policy or --url".into())),
            };
            crate::webhook::check_url(&url).map_err(Error::Input)?;
            let now = Timestamp::now();
            let t = ticket::Ticket {
                ebssnap: 1,
                event: ticket::EVENT_FAILED.into(),
                severity: "critical".into(),
                dedup_key: format!("{policy_name}/webhook-test/{}", now.as_second()),
                occurred_at: now.to_string(),
                policy: policy_name,
                target: Some("sample".into()),
                run: ticket::RunInfo {
                    kind: "run".into(),
                    key: "webhook-test".into(),
                    ..Default::default()
                },
                failures: vec![ticket::TicketFailure {
                    volume_id: Some("vol-0123456789abcdef0".into()),
                    instance_id: Some("i-0123456789abcdef0".into()),
                    device: Some("/dev/xvda".into()),
                    code: "Sample".into(),
                    message: "a sample ticket sent by `ebssnap webhook test`".into(),
                    ..Default::default()
                }],
                runner_version: env!("CARGO_PKG_VERSION").into(),
                ..Default::default()
            };
            let out = crate::webhook::deliver(&url, &t, &delivery).await;
            let mut buf = String::new();
            outln!(
                buf,
                "{} to {}: {} after {} attempt(s){}",
                if out.delivered {
                    "delivered"
                } else {
                    "NOT delivered"
                },
                out.url,
                out.status
                    .map(|s| format!("HTTP {s}"))
                    .unwrap_or_else(|| "no answer".into()),
                out.attempts,
                out.error
                    .as_ref()
                    .map(|e| format!(" ({e})"))
                    .unwrap_or_default()
            );
            emit(&buf);
            Ok(if out.delivered { exit::OK } else { exit::AWS })
        }
        WebhookCommand::Serve {
            listen,
            count,
            allow_remote,
            json_lines,
        } => {
            if !allow_remote && !crate::webhook::is_loopback_listen(listen) {
                return Err(Error::Input(format!(
                    "refusing to listen on {listen}: not a loopback address; pass --allow-remote to accept tickets from other hosts"
                )));
            }
            let secret = std::env::var("EBSSNAP_WEBHOOK_SECRET")
                .ok()
                .and_then(crate::webhook::Secret::new);
            if *json_lines && secret.is_none() {
                return Err(Error::Input(
                    "--json-lines forwards verified tickets only: set EBSSNAP_WEBHOOK_SECRET to the signing secret".into(),
                ));
            }
            let json_lines = *json_lines;
            eprintln!(
                "ebssnap: receiving tickets on http://{listen}/ ({})",
                if secret.is_some() {
                    "verifying signatures"
                } else {
                    "no EBSSNAP_WEBHOOK_SECRET: not verifying"
                }
            );
            let listen = listen.clone();
            let count = *count;
            tokio::task::spawn_blocking(move || {
                crate::webhook::serve(&listen, secret.as_ref(), count, |r| {
                    let pretty = serde_json::from_str::<serde_json::Value>(&r.body)
                        .and_then(|v| serde_json::to_string_pretty(&v))
                        .unwrap_or_else(|_| r.body.clone());
                    let sig = match &r.verified {
                        None => "not verified (no secret)".to_string(),
                        Some(Ok(())) => "valid".to_string(),
                        Some(Err(e)) => format!("INVALID: {e}"),
                    };
                    if json_lines {
                        // One compact line per verified ticket; the rest is diagnostics.
                        match (&r.verified, serde_json::from_str::<serde_json::Value>(&r.body)) {
                            (Some(Ok(())), Ok(v)) => emit(&format!("{v}\n")),
                            _ => eprintln!(
                                "ebssnap: ticket not forwarded (signature: {sig}; Idempotency-Key: {})",
                                r.idempotency_key.as_deref().unwrap_or("-")
                            ),
                        }
                        return;
                    }
                    emit(&format!(
                        "--- ticket (Idempotency-Key: {}; signature: {sig})\n{pretty}\n",
                        r.idempotency_key.as_deref().unwrap_or("-")
                    ));
                })
            })
            .await
            .map_err(|e| Error::Input(format!("receiver stopped: {e}")))?
            .map_err(Error::Input)?;
            Ok(exit::OK)
        }
    }
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

/// `ebssnap adopt`: ebs_snapper's snapshots of the target's volumes get ebssnap's tags.
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

#[derive(Serialize)]
struct SnapshotRow {
    snapshot_id: String,
    target: Option<String>,
    volume_id: String,
    state: String,
    start_time: Timestamp,
    /// keep reason or the reason it is due for deletion (`target_unreadable`: a target whose
    /// document cannot be read, never pruned)
    status: &'static str,
    /// when it becomes eligible for deletion by age (null: kept by the minimum or due now)
    expires_at: Option<Timestamp>,
}

/// The managed snapshots of a policy with what the next sweep decides for each: the sweep's own
/// plan (orphans, removed targets and unreadable targets included), not a second opinion.
async fn snapshots(
    clients: &Clients,
    policy: &str,
    target: Option<&str>,
    now: Timestamp,
    json: bool,
) -> Result<i32, Error> {
    let pdoc = documents::load_policy(clients, policy).await?;
    let planned = runner::sweep::plan(clients, &pdoc, now).await?;
    let decided: std::collections::BTreeMap<&str, &retention::Decision> = planned
        .plan
        .keep
        .iter()
        .chain(planned.plan.delete.iter())
        .map(|d| (d.snapshot_id.as_str(), d))
        .collect();
    let mut rows: Vec<SnapshotRow> = planned
        .snapshots
        .iter()
        .filter(|s| target.is_none_or(|t| s.tag(crate::core::tags::TAG_TARGET) == Some(t)))
        .filter_map(|s| {
            let snap_target = s.tag(crate::core::tags::TAG_TARGET).map(String::from);
            let (status, expires_at) = match decided.get(s.id.as_str()) {
                Some(d) => (d.reason.as_str(), d.expires_at),
                None if snap_target
                    .as_ref()
                    .is_some_and(|t| planned.unreadable.contains(t)) =>
                {
                    ("target_unreadable", None)
                }
                None => return None,
            };
            Some(SnapshotRow {
                snapshot_id: s.id.clone(),
                target: snap_target,
                volume_id: s.volume(),
                state: s.state.clone(),
                start_time: s.start_time,
                status,
                expires_at,
            })
        })
        .collect();
    rows.sort_by(|a, b| {
        (&a.target, &a.volume_id, b.start_time).cmp(&(&b.target, &b.volume_id, a.start_time))
    });
    if json {
        print_json(&rows);
    } else {
        let mut buf = String::new();
        outln!(
            buf,
            "{:<24} {:<12} {:<24} {:<10} {:<21} {:<17} EXPIRES",
            "SNAPSHOT",
            "TARGET",
            "VOLUME",
            "STATE",
            "STARTED",
            "STATUS"
        );
        for r in &rows {
            outln!(
                buf,
                "{:<24} {:<12} {:<24} {:<10} {:<21} {:<17} {}",
                r.snapshot_id,
                r.target.as_deref().unwrap_or("-"),
                r.volume_id,
                r.state,
                r.start_time.strftime("%Y-%m-%dT%H:%M:%SZ"),
                r.status,
                r.expires_at
                    .map(|t| t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string())
                    .unwrap_or_else(|| "-".into())
            );
        }
        outln!(buf, "{} managed snapshot(s) of policy {policy}", rows.len());
        for f in &planned.failures {
            outln!(buf, "warning: {}", f.message);
        }
        emit(&buf);
    }
    Ok(exit::OK)
}

/// Logs go to stderr (stdout carries reports). `EBSSNAP_LOG` (or `RUST_LOG`) overrides the level.
pub fn init_logging(format: LogFormat, default_level: &str) {
    use tracing_subscriber::EnvFilter;
    let filter = std::env::var("EBSSNAP_LOG")
        .ok()
        .or_else(|| std::env::var("RUST_LOG").ok())
        .and_then(|f| EnvFilter::try_new(f).ok())
        .unwrap_or_else(|| EnvFilter::new(format!("ebssnap={default_level},warn")));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
}
