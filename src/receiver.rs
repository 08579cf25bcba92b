//! `ebssnap webhook serve`: a small local receiver for failure tickets, to wire up and test a
//! ticket system. It is a tool for a person's machine, not part of a run, so it lives apart from
//! delivery ([`crate::webhook`]).
//!
//! What it defends against, since tickets carry account details and a listening port can be
//! reached by anything on the host: bodies over [`MAX_BODY_BYTES`] and header blocks over
//! [`MAX_HEADER_BYTES`] are refused; a request must arrive whole within the read timeout, and
//! each connection is served on its own task, so a slow sender cannot stall a signed ticket;
//! a signature header has one spelling ([`ticket::parse_signature`]) and the replay cache is keyed
//! on the MAC and bounded in entries and age; only verified tickets count toward `--count`
//! (every ticket when there is no secret to verify with); bodies are printed only as JSON, with
//! every control character escaped, so no terminal escape sequence reaches the screen.

use std::collections::{BTreeMap, VecDeque};
use std::convert::Infallible;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};

use crate::core::ticket;
use crate::webhook::Secret;

/// The largest ticket the receiver reads; a larger body is refused (HTTP 413).
pub const MAX_BODY_BYTES: usize = 1024 * 1024;
/// The largest header block the receiver reads (hyper's buffer: a larger one is refused, 431).
pub const MAX_HEADER_BYTES: usize = 16 * 1024;
/// How far a signature's time may be from the receiver's clock (seconds).
pub const SIGNATURE_WINDOW: i64 = 300;
/// Signatures remembered for replay detection, at most.
pub const REPLAY_CACHE_ENTRIES: usize = 4096;

/// One ticket received by [`serve`].
#[derive(Debug, Clone)]
pub struct Received {
    /// The body as compact JSON with every control character escaped (`None`: not JSON, not shown).
    pub json: Option<String>,
    /// The body's size in bytes.
    pub bytes: usize,
    pub idempotency_key: Option<String>,
    /// `None`: no secret to verify with; `Some(Ok)`: valid; `Some(Err)`: why not.
    pub verified: Option<Result<(), String>>,
}

impl Received {
    /// Whether this ticket counts toward `--count`: verified, or received with no secret.
    pub fn counts(&self) -> bool {
        self.json.is_some() && !matches!(self.verified, Some(Err(_)))
    }
}

/// How the receiver runs.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    pub listen: String,
    pub secret: Option<Secret>,
    /// Stop after this many counted tickets.
    pub count: Option<usize>,
    /// A request's headers and body must each arrive within this time.
    pub read_timeout: Duration,
}

impl ServeOptions {
    pub fn new(listen: &str) -> Self {
        ServeOptions {
            listen: listen.to_string(),
            secret: None,
            count: None,
            read_timeout: Duration::from_secs(10),
        }
    }
}

/// Signatures already accepted, keyed on their MAC: a second delivery of the same signature is a
/// replay (a retry is signed anew, with a new time). Bounded: entries older than twice the
/// window go, and past [`REPLAY_CACHE_ENTRIES`] the oldest goes (its signature is then refused
/// as stale soon anyway).
#[derive(Default)]
pub struct Replays {
    seen: BTreeMap<[u8; 32], i64>,
    order: VecDeque<([u8; 32], i64)>,
}

impl Replays {
    /// Records `mac` seen at `now`; false when it was already seen within the window.
    pub fn first_time(&mut self, mac: [u8; 32], now: i64) -> bool {
        while let Some((old, at)) = self.order.front().copied() {
            if now - at <= 2 * SIGNATURE_WINDOW && self.order.len() < REPLAY_CACHE_ENTRIES {
                break;
            }
            self.order.pop_front();
            if self.seen.get(&old) == Some(&at) {
                self.seen.remove(&old);
            }
        }
        if self.seen.contains_key(&mac) {
            return false;
        }
        self.seen.insert(mac, now);
        self.order.push_back((mac, now));
        true
    }

    pub fn len(&self) -> usize {
        self.seen.len()
    }

    pub fn is_empty(&self) -> bool {
        self.seen.is_empty()
    }
}

/// Whether an address to listen on is a loopback one.
pub fn is_loopback_listen(listen: &str) -> bool {
    match listen.parse::<std::net::SocketAddr>() {
        Ok(a) => a.ip().is_loopback(),
        Err(_) => listen.starts_with("localhost:"),
    }
}

/// A body as JSON safe for a terminal (compact, or `pretty`): `None` when it is not JSON.
/// serde_json escapes C0 controls inside strings; DEL and the C1 controls (U+0080–U+009F, which
/// some terminals read as escape sequences) can only stand inside strings, so they are escaped
/// there too. The only raw control left is the pretty form's line break, which is structural.
pub fn terminal_safe_json(body: &[u8], pretty: bool) -> Option<String> {
    let v: serde_json::Value = serde_json::from_slice(body).ok()?;
    let text = if pretty {
        serde_json::to_string_pretty(&v).ok()?
    } else {
        serde_json::to_string(&v).ok()?
    };
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_control() && !(pretty && c == '\n') {
            out.push_str(&format!("\\u{:04x}", c as u32));
        } else {
            out.push(c);
        }
    }
    Some(out)
}

struct State {
    opts: ServeOptions,
    replays: Mutex<Replays>,
    counted: AtomicUsize,
    done: tokio::sync::Notify,
    on_ticket: Box<dyn Fn(&Received) + Send + Sync>,
}

fn answer(status: StatusCode, text: &'static str) -> Response<Full<&'static [u8]>> {
    let mut r = Response::new(Full::new(text.as_bytes()));
    *r.status_mut() = status;
    r.headers_mut()
        .insert(hyper::header::CONNECTION, "close".parse().expect("static"));
    r
}

async fn handle(
    state: Arc<State>,
    req: Request<Incoming>,
) -> Result<Response<Full<&'static [u8]>>, Infallible> {
    if req.method() != Method::POST {
        return Ok(answer(
            StatusCode::METHOD_NOT_ALLOWED,
            "POST tickets here\n",
        ));
    }
    let declared = req
        .headers()
        .get(hyper::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_BODY_BYTES as u64) {
        return Ok(answer(StatusCode::PAYLOAD_TOO_LARGE, "ticket too large\n"));
    }
    let header = |name: &str| {
        req.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(String::from)
    };
    let signature = header("x-ebssnap-signature");
    let idempotency_key = header("idempotency-key");
    let body = Limited::new(req.into_body(), MAX_BODY_BYTES);
    let body = match tokio::time::timeout(state.opts.read_timeout, body.collect()).await {
        Err(_) => return Ok(answer(StatusCode::REQUEST_TIMEOUT, "body too slow\n")),
        Ok(Err(e)) if e.is::<http_body_util::LengthLimitError>() => {
            return Ok(answer(StatusCode::PAYLOAD_TOO_LARGE, "ticket too large\n"));
        }
        Ok(Err(_)) => return Ok(answer(StatusCode::BAD_REQUEST, "unreadable body\n")),
        Ok(Ok(b)) => b.to_bytes(),
    };
    let now = jiff::Timestamp::now().as_second();
    let verified = state.opts.secret.as_ref().map(|s| match &signature {
        None => Err("unsigned".to_string()),
        Some(h) => ticket::verify(s.expose(), h, &body, now, SIGNATURE_WINDOW)
            .map_err(|e| e.to_string())
            .and_then(|()| {
                let (_, mac) = ticket::parse_signature(h).map_err(|e| e.to_string())?;
                let mut replays = state.replays.lock().unwrap_or_else(|p| p.into_inner());
                if replays.first_time(mac, now) {
                    Ok(())
                } else {
                    Err("replayed: this signature was already accepted".to_string())
                }
            }),
    });
    let received = Received {
        json: terminal_safe_json(&body, false),
        bytes: body.len(),
        idempotency_key,
        verified,
    };
    (state.on_ticket)(&received);
    let status = match (&received.json, &received.verified) {
        (_, Some(Err(_))) => StatusCode::UNAUTHORIZED,
        (None, _) => StatusCode::BAD_REQUEST,
        _ => StatusCode::OK,
    };
    if received.counts() {
        let n = state.counted.fetch_add(1, Ordering::SeqCst) + 1;
        if state.opts.count.is_some_and(|c| n >= c) {
            state.done.notify_one();
        }
    }
    Ok(answer(status, "{}"))
}

/// A local receiver: accepts POSTed tickets on `opts.listen`, verifies their signature with
/// `opts.secret` when given (refusing replays), and hands each to `on_ticket` (from any task:
/// connections are served concurrently). Stops after `opts.count` counted tickets.
pub async fn serve(
    opts: ServeOptions,
    on_ticket: impl Fn(&Received) + Send + Sync + 'static,
) -> Result<(), String> {
    let listener = tokio::net::TcpListener::bind(&opts.listen)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", opts.listen))?;
    let state = Arc::new(State {
        replays: Mutex::new(Replays::default()),
        counted: AtomicUsize::new(0),
        done: tokio::sync::Notify::new(),
        on_ticket: Box::new(on_ticket),
        opts,
    });
    let mut connections = tokio::task::JoinSet::new();
    loop {
        let stream = tokio::select! {
            () = state.done.notified() => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    tracing::warn!("accepting a connection: {e}");
                    continue;
                }
            },
        };
        let state = state.clone();
        let read_timeout = state.opts.read_timeout;
        connections.spawn(async move {
            let service = service_fn(move |req| handle(state.clone(), req));
            let _ = http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(read_timeout)
                .max_buf_size(MAX_HEADER_BYTES)
                .keep_alive(false)
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
        while connections.try_join_next().is_some() {}
    }
    // Let the connection that delivered the last counted ticket finish its answer.
    let _ = tokio::time::timeout(Duration::from_secs(2), async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mac(n: u32) -> [u8; 32] {
        let mut m = [0u8; 32];
        m[..4].copy_from_slice(&n.to_be_bytes());
        m
    }

    #[test]
    fn a_signature_is_accepted_once_within_the_window() {
        let mut r = Replays::default();
        assert!(r.first_time(mac(1), 100));
        assert!(!r.first_time(mac(1), 150));
        assert!(r.first_time(mac(2), 150));
        // Long after the window the old entry is forgotten (verify refuses it as stale anyway).
        assert!(r.first_time(mac(1), 100 + 3 * SIGNATURE_WINDOW));
    }

    #[test]
    fn the_replay_cache_stays_bounded() {
        let mut r = Replays::default();
        for n in 0..10_000 {
            assert!(r.first_time(mac(n), 1_000));
            assert!(r.len() <= REPLAY_CACHE_ENTRIES, "{} entries", r.len());
        }
        assert_eq!(r.len(), REPLAY_CACHE_ENTRIES);
        // The newest are still remembered.
        assert!(!r.first_time(mac(9_999), 1_001));
    }

    #[test]
    fn bodies_reach_the_terminal_only_as_escaped_json() {
        let body = "{\"message\":\"a\\u001b[31mred\u{9b}2J\u{7f}\"}".as_bytes();
        for pretty in [false, true] {
            let shown = terminal_safe_json(body, pretty).unwrap();
            assert!(
                !shown
                    .chars()
                    .any(|c| c.is_control() && !(pretty && c == '\n')),
                "{shown:?}"
            );
            assert!(shown.contains("\\u001b[31mred\\u009b2J\\u007f"), "{shown}");
            // Still JSON, and the same value.
            let back: serde_json::Value = serde_json::from_str(&shown).unwrap();
            assert_eq!(back["message"], "a\u{1b}[31mred\u{9b}2J\u{7f}");
        }
        assert_eq!(terminal_safe_json(b"\x1b[2J not json", false), None);
    }

    #[test]
    fn loopback_listen_addresses() {
        assert!(is_loopback_listen("127.0.0.1:8080"));
        assert!(is_loopback_listen("[::1]:8080"));
        assert!(is_loopback_listen("localhost:8080"));
        assert!(!is_loopback_listen("0.0.0.0:8080"));
        assert!(!is_loopback_listen("10.1.2.3:8080"));
    }
}
