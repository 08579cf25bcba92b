//! `ebssnap webhook test` and `ebssnap webhook serve`: send a sample ticket down the path a run
//! uses, and receive tickets locally ([`crate::receiver`]).

use clap::{Args, Subcommand};
use jiff::Timestamp;

use super::common::{Global, connect};
use super::output::{emit, outln};
use crate::core::ticket;
use crate::error::{Error, exit};
use crate::receiver::{self, ServeOptions};
use crate::runner::documents;
use crate::webhook::{self, DeliveryOptions, WebhookSecret};

pub const EXAMPLES: &str = "\
Examples:
  # Send a sample ticket through policy std's channel (its secret or URL), signed as a run signs
  ebssnap webhook test --policy std
  # Receive tickets locally, verifying signatures, and send one to it
  EBSSNAP_WEBHOOK_SECRET=s3cret ebssnap webhook serve --listen 127.0.0.1:8080
  EBSSNAP_WEBHOOK_SECRET=s3cret ebssnap webhook test --url http://127.0.0.1:8080/hook";

const TEST_EXAMPLES: &str = "\
Examples:
  # Send a sample ticket through policy std's channel (its secret or URL), signed as a run signs
  ebssnap webhook test --policy std
  # Send one to a receiver of your own, signed with the fallback secret
  EBSSNAP_WEBHOOK_SECRET=s3cret ebssnap webhook test --url https://tickets.example.com/ebssnap";

const SERVE_EXAMPLES: &str = "\
Examples:
  # Receive tickets on 127.0.0.1:8080, verifying their signatures
  EBSSNAP_WEBHOOK_SECRET=s3cret ebssnap webhook serve --listen 127.0.0.1:8080
  # Wait for one verified ticket, print it as one JSON line, exit (for scripts and tests)
  EBSSNAP_WEBHOOK_SECRET=s3cret ebssnap webhook serve --count 1 --json-lines";

#[derive(Debug, Args)]
pub struct WebhookArgs {
    #[command(subcommand)]
    pub command: WebhookCommand,
}

#[derive(Debug, Subcommand)]
pub enum WebhookCommand {
    /// Send a sample ticket to the policy's webhook (or --url) and report the receiver's answer
    #[command(after_help = format!("{TEST_EXAMPLES}\n\n{}", super::EXIT_CODES))]
    Test {
        /// Policy whose webhook to use: its Secrets Manager secret (URL and signing secret) or
        /// its plain URL
        #[arg(long, conflicts_with = "url", required_unless_present = "url")]
        policy: Option<String>,
        /// Send to this URL instead (https, or http on loopback); signed with
        /// EBSSNAP_WEBHOOK_SECRET when set
        #[arg(long)]
        url: Option<String>,
    },
    /// A local receiver: print each ticket and verify its signature with EBSSNAP_WEBHOOK_SECRET
    #[command(after_help = format!("{SERVE_EXAMPLES}\n\n{}", super::EXIT_CODES))]
    Serve {
        /// Address to listen on (loopback by default)
        #[arg(long, default_value = "127.0.0.1:8080")]
        listen: String,
        /// Allow listening on a non-loopback address (tickets carry account details)
        #[arg(long)]
        allow_remote: bool,
        /// Exit after this many verified tickets (every JSON ticket when no secret is set)
        #[arg(long)]
        count: Option<usize>,
        /// Print each verified ticket as one JSON line on stdout (for piping into another
        /// system); everything else goes to stderr. Needs EBSSNAP_WEBHOOK_SECRET.
        #[arg(long)]
        json_lines: bool,
    },
}

pub async fn exec(g: &Global, a: &WebhookArgs) -> Result<i32, Error> {
    match &a.command {
        WebhookCommand::Test { policy, url } => test(g, policy.as_deref(), url.as_deref()).await,
        WebhookCommand::Serve {
            listen,
            count,
            allow_remote,
            json_lines,
        } => serve(listen, *count, *allow_remote, *json_lines).await,
    }
}

async fn test(g: &Global, policy: Option<&str>, url: Option<&str>) -> Result<i32, Error> {
    let mut delivery = DeliveryOptions::from_env();
    let (url, policy_name) = match (url, policy) {
        (Some(u), _) => (u.to_string(), "webhook-test".to_string()),
        (None, Some(p)) => {
            let clients = connect(g).await;
            let doc = documents::load_policy(&clients, p).await?;
            let u = match (doc.webhook_url(), doc.webhook_secret_arn()) {
                (Some(u), _) => u.to_string(),
                (None, Some(arn)) => {
                    // The same path as a run: the URL and signing secret from the secret.
                    let value =
                        crate::aws::secrets::get_secret_string(&clients.secretsmanager, arn)
                            .await?;
                    let w = WebhookSecret::parse(&value)
                        .map_err(|e| Error::Input(format!("the webhook secret {arn}: {e}")))?;
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
            (u, p.to_string())
        }
        (None, None) => return Err(Error::Input("give --policy or --url".into())),
    };
    webhook::check_url(&url).map_err(Error::Input)?;
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
    let out = webhook::deliver(&url, &t, &delivery).await;
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

async fn serve(
    listen: &str,
    count: Option<usize>,
    allow_remote: bool,
    json_lines: bool,
) -> Result<i32, Error> {
    if !allow_remote && !receiver::is_loopback_listen(listen) {
        return Err(Error::Input(format!(
            "refusing to listen on {listen}: not a loopback address; pass --allow-remote to accept tickets from other hosts"
        )));
    }
    let secret = std::env::var("EBSSNAP_WEBHOOK_SECRET")
        .ok()
        .and_then(webhook::Secret::new);
    if json_lines && secret.is_none() {
        return Err(Error::Input(
            "--json-lines forwards verified tickets only: set EBSSNAP_WEBHOOK_SECRET to the signing secret".into(),
        ));
    }
    eprintln!(
        "ebssnap: receiving tickets on http://{listen}/ ({})",
        if secret.is_some() {
            "verifying signatures"
        } else {
            "no EBSSNAP_WEBHOOK_SECRET: not verifying"
        }
    );
    let opts = ServeOptions {
        secret,
        count,
        ..ServeOptions::new(listen)
    };
    receiver::serve(opts, move |r| {
        let sig = match &r.verified {
            None => "not verified (no secret)".to_string(),
            Some(Ok(())) => "valid".to_string(),
            Some(Err(e)) => format!("INVALID: {e}"),
        };
        // Header values are printed through JSON escaping too: nothing raw reaches a terminal.
        let key = serde_json::to_string(r.idempotency_key.as_deref().unwrap_or("-"))
            .unwrap_or_default()
            .trim_matches('"')
            .to_string();
        if json_lines {
            // One compact line per verified ticket; the rest is diagnostics.
            match (&r.verified, &r.json) {
                (Some(Ok(())), Some(json)) => emit(&format!("{json}\n")),
                _ => eprintln!(
                    "ebssnap: ticket not forwarded (signature: {sig}; Idempotency-Key: {key})"
                ),
            }
            return;
        }
        let body = r
            .json
            .as_deref()
            .and_then(|j| receiver::terminal_safe_json(j.as_bytes(), true))
            .unwrap_or_else(|| format!("(not JSON: {} bytes, not shown)", r.bytes));
        emit(&format!(
            "--- ticket (Idempotency-Key: {key}; signature: {sig})\n{body}\n"
        ));
    })
    .await
    .map_err(Error::Input)?;
    Ok(exit::OK)
}
