//! Delivering failure tickets to the policy's webhook (docs/guides/tickets.md). The local receiver,
//! `webhook serve`, is [`crate::receiver`].
//!
//! Delivery: https only (plain http for loopback), one body signed per attempt, `Idempotency-Key`
//! = `dedup_key` on every attempt, bounded retries with exponential backoff and jitter, honouring
//! `Retry-After`, within the run's time budget. The secret and the URL's credentials, query and
//! fragment never reach a log, a report or an error.

use std::fmt;
use std::time::{Duration, Instant};

use crate::core::report::TicketOutcome;
use crate::core::ticket::{self, Answer, Ticket};

/// The signing secret; its `Debug` never shows it.
#[derive(Clone)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: String) -> Option<Secret> {
        (!s.is_empty()).then_some(Secret(s))
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

#[derive(Debug, Clone)]
pub struct DeliveryOptions {
    pub secret: Option<Secret>,
    pub max_attempts: u32,
    /// First backoff; doubled per attempt, plus up to 25% jitter.
    pub backoff: Duration,
    /// Longest wait honoured from a `Retry-After`.
    pub max_retry_after: Duration,
    /// Give up rather than pass this instant (the run's time budget).
    pub deadline: Option<Instant>,
    pub connect_timeout: Duration,
    pub timeout: Duration,
}

impl Default for DeliveryOptions {
    fn default() -> Self {
        DeliveryOptions {
            secret: None,
            max_attempts: 5,
            backoff: Duration::from_secs(1),
            max_retry_after: Duration::from_secs(60),
            deadline: None,
            connect_timeout: Duration::from_secs(5),
            timeout: Duration::from_secs(15),
        }
    }
}

impl DeliveryOptions {
    /// `EBSSNAP_WEBHOOK_SECRET` (the signing key), `EBSSNAP_WEBHOOK_ATTEMPTS` (default 5) and
    /// `EBSSNAP_WEBHOOK_BACKOFF_MS` (default 1000) from the runner's environment.
    pub fn from_env() -> Self {
        let num = |k: &str| std::env::var(k).ok().and_then(|v| v.parse::<u64>().ok());
        let d = DeliveryOptions::default();
        DeliveryOptions {
            secret: std::env::var("EBSSNAP_WEBHOOK_SECRET")
                .ok()
                .and_then(Secret::new),
            max_attempts: num("EBSSNAP_WEBHOOK_ATTEMPTS")
                .map(|n| n.clamp(1, 20) as u32)
                .unwrap_or(d.max_attempts),
            backoff: num("EBSSNAP_WEBHOOK_BACKOFF_MS")
                .map(Duration::from_millis)
                .unwrap_or(d.backoff),
            ..d
        }
    }
}

/// A webhook kept in Secrets Manager: its URL (which may carry a token) and its own signing
/// secret. `Debug` shows neither.
#[derive(Clone)]
pub struct WebhookSecret {
    pub url: String,
    pub signing_secret: Option<Secret>,
}

impl fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "WebhookSecret({}, ***)", ticket::redact_url(&self.url))
    }
}

impl WebhookSecret {
    /// Parses the secret's value: `{"url": "https://...", "signing_secret": "..."}`
    /// (`signing_secret` optional). Errors describe the shape, never the value.
    pub fn parse(value: &str) -> Result<WebhookSecret, String> {
        #[derive(serde::Deserialize)]
        struct Raw {
            url: Option<String>,
            signing_secret: Option<String>,
        }
        let raw: Raw = serde_json::from_str(value).map_err(|_| {
            "the secret is not a JSON object {\"url\": \"https://...\", \"signing_secret\": \"...\"}"
                .to_string()
        })?;
        let url = raw
            .url
            .filter(|u| !u.is_empty())
            .ok_or_else(|| "the secret has no \"url\"".to_string())?;
        check_url(&url)?;
        Ok(WebhookSecret {
            url,
            signing_secret: raw.signing_secret.and_then(Secret::new),
        })
    }
}

/// Whether the runner may post to `url`: https, or http to a loopback address.
pub fn check_url(url: &str) -> Result<(), String> {
    let u = url::Url::parse(url).map_err(|_| "the webhook URL is not a valid URL".to_string())?;
    let loopback = match u.host() {
        Some(url::Host::Domain(d)) => d == "localhost",
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    };
    match u.scheme() {
        "https" => Ok(()),
        "http" if loopback => Ok(()),
        _ => Err(format!(
            "refusing to post to {}: https is required (http only for loopback)",
            ticket::redact_url(url)
        )),
    }
}

struct Attempt {
    status: Option<u16>,
    retry_after: Option<u64>,
    error: Option<String>,
}

fn post_once(agent: &ureq::Agent, url: &str, body: &[u8], headers: &[(String, String)]) -> Attempt {
    let mut req = agent.post(url);
    for (k, v) in headers {
        req = req.header(k.as_str(), v.as_str());
    }
    match req.send(body) {
        Ok(resp) => {
            let now = jiff::Timestamp::now().as_second();
            let retry_after = resp
                .headers()
                .get("retry-after")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| ticket::retry_after(v, now));
            Attempt {
                status: Some(resp.status().as_u16()),
                retry_after,
                error: None,
            }
        }
        Err(e) => {
            // ureq's messages may quote the URL: keep only the kind of failure.
            let kind = match &e {
                ureq::Error::Timeout(_) => "timed out".to_string(),
                ureq::Error::Io(io) => format!("connection failed ({})", io.kind()),
                ureq::Error::HostNotFound => "host not found".to_string(),
                ureq::Error::ConnectionFailed => "connection failed".to_string(),
                ureq::Error::Tls(_) | ureq::Error::Rustls(_) => "TLS error".to_string(),
                _ => "request failed".to_string(),
            };
            Attempt {
                status: None,
                retry_after: None,
                error: Some(kind),
            }
        }
    }
}

fn jittered(base: Duration, attempt: u32) -> Duration {
    let exp = base.saturating_mul(1 << attempt.saturating_sub(1).min(10));
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    exp + exp.mul_f64(f64::from(nanos % 1000) / 4000.0)
}

/// Posts `ticket` to `url` with retries; never fails, the outcome says what happened.
pub async fn deliver(url: &str, t: &Ticket, opts: &DeliveryOptions) -> TicketOutcome {
    let mut outcome = TicketOutcome {
        event: t.event.clone(),
        dedup_key: t.dedup_key.clone(),
        url: ticket::redact_url(url),
        delivered: false,
        attempts: 0,
        status: None,
        error: None,
    };
    if let Err(e) = check_url(url) {
        outcome.error = Some(e);
        return outcome;
    }
    let body = match serde_json::to_vec(t) {
        Ok(b) => b,
        Err(e) => {
            outcome.error = Some(format!("cannot serialize the ticket: {e}"));
            return outcome;
        }
    };
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_connect(Some(opts.connect_timeout))
        .timeout_global(Some(opts.timeout))
        .http_status_as_error(false)
        // Never follow a redirect: the body (and the token in the URL) must not go elsewhere.
        .max_redirects(0)
        .build()
        .into();
    loop {
        outcome.attempts += 1;
        let mut headers = vec![
            ("Content-Type".to_string(), "application/json".to_string()),
            (
                "User-Agent".to_string(),
                format!("ebssnap/{}", env!("CARGO_PKG_VERSION")),
            ),
            ("Idempotency-Key".to_string(), t.dedup_key.clone()),
        ];
        if let Some(secret) = &opts.secret {
            let now = jiff::Timestamp::now().as_second();
            headers.push((
                "X-Ebssnap-Signature".into(),
                ticket::signature(secret.expose(), now, &body),
            ));
        }
        let (agent2, url2, body2) = (agent.clone(), url.to_string(), body.clone());
        let attempt =
            tokio::task::spawn_blocking(move || post_once(&agent2, &url2, &body2, &headers))
                .await
                .unwrap_or(Attempt {
                    status: None,
                    retry_after: None,
                    error: Some("delivery task failed".into()),
                });
        outcome.status = attempt.status;
        outcome.error = attempt.error.clone();
        let answer = attempt
            .status
            .map(ticket::classify)
            .unwrap_or(Answer::Retry);
        match answer {
            Answer::Delivered => {
                outcome.delivered = true;
                outcome.error = None;
                return outcome;
            }
            Answer::Permanent => {
                let status = attempt.status.unwrap_or(0);
                outcome.error = Some(if (300..400).contains(&status) {
                    format!(
                        "the receiver answered with a redirect (HTTP {status}); ebssnap never follows redirects: configure the final URL"
                    )
                } else {
                    format!("the receiver refused the ticket (HTTP {status})")
                });
                return outcome;
            }
            Answer::Retry => {}
        }
        if outcome.attempts >= opts.max_attempts {
            if outcome.error.is_none() {
                outcome.error = Some(format!(
                    "HTTP {} after {} attempts",
                    attempt.status.unwrap_or(0),
                    outcome.attempts
                ));
            }
            return outcome;
        }
        let wait = match attempt.retry_after {
            Some(s) => Duration::from_secs(s).min(opts.max_retry_after),
            None => jittered(opts.backoff, outcome.attempts),
        };
        if opts.deadline.is_some_and(|d| Instant::now() + wait >= d) {
            outcome.error = Some(format!(
                "{}; no time left in the run for another attempt",
                outcome
                    .error
                    .clone()
                    .unwrap_or_else(|| format!("HTTP {}", attempt.status.unwrap_or(0)))
            ));
            return outcome;
        }
        tracing::warn!(attempt = outcome.attempts, status = ?attempt.status, wait_ms = wait.as_millis() as u64, "ticket not delivered yet; retrying");
        tokio::time::sleep(wait).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn webhook_secrets_parse_and_never_show_their_values() {
        let s = WebhookSecret::parse(
            r#"{"url": "https://hooks.example.com/T0/B1/tok3n?key=k3y", "signing_secret": "s1gn"}"#,
        )
        .unwrap();
        assert_eq!(s.signing_secret.as_ref().map(Secret::expose), Some("s1gn"));
        let shown = format!("{s:?}");
        assert!(
            !shown.contains("tok3n") && !shown.contains("k3y") && !shown.contains("s1gn"),
            "{shown}"
        );
        let no_sig = WebhookSecret::parse(r#"{"url": "https://h.example.com/x"}"#).unwrap();
        assert!(no_sig.signing_secret.is_none());
        for bad in [
            "https://h.example.com/tok3n",
            r#"{"signing_secret": "s1gn"}"#,
            r#"{"url": "http://h.example.com/tok3n"}"#,
        ] {
            let e = WebhookSecret::parse(bad).unwrap_err();
            assert!(!e.contains("tok3n") && !e.contains("s1gn"), "{e}");
        }
    }
}
