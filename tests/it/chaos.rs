//! Exactly once under lost answers (issue 24, docs/design.md §5): a fault proxy in front of moto
//! breaks the mutating EC2 calls of a 300-volume run, and every volume still ends with exactly
//! one snapshot of the run, no restore point the rules keep is deleted, and the report matches
//! what the emulator holds.
//!
//! Emulated here (moto never fails): per mutating call (`CreateSnapshot`, `CreateSnapshots`,
//! `DeleteSnapshot`, `CreateTags`), 5% are answered `500 InternalError` *before* reaching moto
//! (AWS did not act, the client cannot know), 3% reach moto and then lose their answer (the
//! connection is closed without a response: AWS acted, the client cannot know), 2% are throttled
//! (`503 RequestLimitExceeded`: refused). Which call gets which fault is a function of the seed,
//! the operation and the call's ordinal among that operation's calls, so a seed gives the same
//! pattern of faults on every run (`EBSSNAP_CHAOS_SEED`; `make bench` runs a second seed).

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use futures::StreamExt;
use serde_json::json;

use crate::cli::ebssnap;
use crate::docs;
use crate::fleet;
use crate::moto::Moto;
use crate::proxy::raw;

/// The calls the proxy may break (EC2 Query API `Action`s).
const MUTATING: [&str; 8] = [
    "CreateSnapshot",
    "CreateSnapshots",
    "DeleteSnapshot",
    "CreateTags",
    "CreateVolume",
    "AttachVolume",
    "DeleteVolume",
    "CopySnapshot",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Fault {
    /// 500 before forwarding: AWS did not act.
    ServerErrorBefore,
    /// Forwarded, then the connection closed without an answer: AWS acted.
    LostAnswer,
    /// 503 RequestLimitExceeded before forwarding: refused.
    Throttled,
}

/// splitmix64: a fixed, well-mixed function of its input.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn fault(seed: u64, op: usize, n: u64) -> Option<Fault> {
    match mix(seed ^ mix((op as u64) << 32 | n)) % 100 {
        0..5 => Some(Fault::ServerErrorBefore),
        5..8 => Some(Fault::LostAnswer),
        8..10 => Some(Fault::Throttled),
        _ => None,
    }
}

fn ec2_error(code: &str, message: &str) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Response><Errors><Error><Code>{code}</Code><Message>{message}</Message></Error></Errors><RequestID>chaos</RequestID></Response>"
    )
}

/// Which fault (if any) the `n`-th call (from 1) of operation `op` gets.
pub type Decide = Arc<dyn Fn(&str, u64) -> Option<Fault> + Send + Sync>;

/// The fault proxy: one thread per connection, one request per connection (`Connection: close`),
/// so that closing a connection loses exactly one answer.
pub struct ChaosProxy {
    port: u16,
    stop: Arc<AtomicBool>,
    faults: Arc<Mutex<BTreeMap<(String, Fault), u64>>>,
    handle: Option<JoinHandle<()>>,
}

impl Drop for ChaosProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

/// One HTTP/1.1 request: method, URL, headers, body.
type Request = (String, String, Vec<(String, String)>, Vec<u8>);

/// One HTTP/1.1 request, or None at end of stream.
fn read_request(s: &TcpStream) -> Option<Request> {
    let mut r = BufReader::new(s);
    let mut line = String::new();
    r.read_line(&mut line).ok()?;
    let mut parts = line.split_whitespace();
    let (method, url) = (parts.next()?.to_string(), parts.next()?.to_string());
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        r.read_line(&mut h).ok()?;
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            headers.push((k.trim().to_string(), v.trim().to_string()));
        }
    }
    let len = headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0; len];
    r.read_exact(&mut body).ok()?;
    Some((method, url, headers, body))
}

fn respond(mut s: &TcpStream, status: u16, headers: &[(String, String)], body: &[u8]) {
    let mut head = format!(
        "HTTP/1.1 {status} X\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    for (k, v) in headers {
        let lk = k.to_ascii_lowercase();
        if lk == "content-type" || lk.starts_with("x-amz") {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
    }
    head.push_str("\r\n");
    let _ = s.write_all(head.as_bytes());
    let _ = s.write_all(body);
    let _ = s.flush();
}

impl ChaosProxy {
    /// The seeded proxy of the chaos run.
    fn seeded(upstream: u16, seed: u64) -> ChaosProxy {
        ChaosProxy::start(
            upstream,
            Arc::new(move |op, n| {
                let i = MUTATING.iter().position(|m| *m == op)?;
                fault(seed, i, n)
            }),
        )
    }

    /// A proxy in front of moto on `upstream` whose faults `decide` chooses.
    pub fn start(upstream: u16, decide: Decide) -> ChaosProxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("chaos proxy listen");
        let port = listener.local_addr().expect("address").port();
        let stop = Arc::new(AtomicBool::new(false));
        let faults: Arc<Mutex<BTreeMap<(String, Fault), u64>>> = Arc::default();
        let ordinals: Arc<Mutex<[u64; MUTATING.len()]>> = Arc::default();
        let (stp, flt) = (stop.clone(), faults.clone());
        let handle = std::thread::spawn(move || {
            for conn in listener.incoming() {
                if stp.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(conn) = conn else { continue };
                let (flt, ordinals, decide) = (flt.clone(), ordinals.clone(), decide.clone());
                std::thread::spawn(move || {
                    let Some((method, url, headers, body)) = read_request(&conn) else {
                        return;
                    };
                    let text = String::from_utf8_lossy(&body);
                    let op = MUTATING
                        .iter()
                        .position(|op| text.contains(&format!("Action={op}&")));
                    let f = op.and_then(|i| {
                        let n = {
                            let mut o = ordinals.lock().unwrap();
                            o[i] += 1;
                            o[i]
                        };
                        let f = decide(MUTATING[i], n)?;
                        *flt.lock()
                            .unwrap()
                            .entry((MUTATING[i].to_string(), f))
                            .or_insert(0) += 1;
                        Some(f)
                    });
                    let xml = [("Content-Type".to_string(), "text/xml".to_string())];
                    match f {
                        Some(Fault::ServerErrorBefore) => respond(
                            &conn,
                            500,
                            &xml,
                            ec2_error("InternalError", "An internal error has occurred.")
                                .as_bytes(),
                        ),
                        Some(Fault::Throttled) => respond(
                            &conn,
                            503,
                            &xml,
                            ec2_error("RequestLimitExceeded", "Request limit exceeded.").as_bytes(),
                        ),
                        Some(Fault::LostAnswer) => {
                            let _ = raw(upstream, &method, &url, &headers, &body);
                            let _ = conn.shutdown(Shutdown::Both);
                        }
                        None => {
                            let (status, rh, rb) = raw(upstream, &method, &url, &headers, &body);
                            respond(&conn, status, &rh, &rb);
                        }
                    }
                });
            }
        });
        ChaosProxy {
            port,
            stop,
            faults,
            handle: Some(handle),
        }
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn faults(&self) -> BTreeMap<(String, Fault), u64> {
        self.faults.lock().unwrap().clone()
    }
}

fn seed() -> u64 {
    std::env::var("EBSSNAP_CHAOS_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20_261_206)
}

/// Snapshots of run `run`: volume -> snapshot ids.
fn of_run(
    all: &BTreeMap<String, (String, BTreeMap<String, String>)>,
    run: &str,
) -> BTreeMap<String, Vec<String>> {
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (id, (vol, tags)) in all {
        if tags.get("ebssnap:run").map(String::as_str) == Some(run) {
            out.entry(vol.clone()).or_default().push(id.clone());
        }
    }
    out
}

#[tokio::test]
async fn lost_answers_and_server_errors_give_every_volume_exactly_one_snapshot() {
    let Some(m) = Moto::start() else { return };
    let seed = seed();
    let c = m.clients().await;
    let mut vols = Vec::new();
    for _ in 0..300 {
        vols.push(fleet::volume(&c, &[("Backup", "yes")]).await);
    }
    vols.sort();
    // Retention: 7 days, at least 1 restore point kept.
    docs::store_policy(&c, &docs::policy("std", 7, 1)).await;
    let tgt = docs::target("std", "web", json!({"volume_tags": {"Backup": "yes"}}));
    docs::store_target(&c, &tgt).await;
    // Two earlier runs' restore points, tagged as ebssnap tags them, straight to moto (many at
    // once: the runner would pace them).
    let history = ["2026-11-02T05:00:00Z", "2026-11-03T05:00:00Z"];
    for key in history {
        // moto stamps snapshots to the second: each run's in a later second than the one before,
        // so "newest" is never a tie.
        std::thread::sleep(std::time::Duration::from_millis(1100));
        let made: Vec<String> = futures::stream::iter(vols.iter())
            .map(|v| {
                let c = &c;
                async move {
                    let tags = [
                        ("ebssnap:policy", "std"),
                        ("ebssnap:target", "web"),
                        ("ebssnap:run", key),
                        ("ebssnap:volume", v.as_str()),
                    ];
                    fleet::manual_snapshot(c, v, &tags).await
                }
            })
            .buffer_unordered(16)
            .collect()
            .await;
        assert_eq!(made.len(), 300);
    }
    let before = fleet::snapshots(&c).await;
    let oldest: BTreeSet<String> = of_run(&before, history[0])
        .into_values()
        .flatten()
        .collect();
    let kept: BTreeSet<String> = of_run(&before, history[1])
        .into_values()
        .flatten()
        .collect();
    assert_eq!((oldest.len(), kept.len()), (300, 300));

    // The chaos run, 30 days later: every earlier snapshot has expired; the minimum of 1 keeps
    // the newest completed one per volume (the second run's), the first run's go.
    let proxy = ChaosProxy::seeded(m.port, seed);
    let env = m.env_at(&proxy.endpoint());
    let now = (jiff::Timestamp::now() + jiff::SignedDuration::from_hours(24 * 30)).to_string();
    let key = "2026-12-01T05:00:00Z";
    let out = ebssnap(
        &env,
        &[
            "run",
            "--policy",
            "std",
            "--target",
            "web",
            "--run-key",
            key,
            "--now",
            &now,
            "--json",
        ],
    );
    let faults = proxy.faults();
    drop(proxy);
    let ctx = format!("seed {seed}, faults {faults:?}\nstderr:\n{}", out.stderr);
    assert_eq!(out.code, 0, "{ctx}\nstdout: {}", out.stdout);
    let report = out.json();

    // The faults happened, to creations and deletions alike.
    let n = |op: &str, f: Fault| faults.get(&(op.to_string(), f)).copied().unwrap_or(0);
    for op in ["CreateSnapshot", "DeleteSnapshot"] {
        for f in [
            Fault::ServerErrorBefore,
            Fault::LostAnswer,
            Fault::Throttled,
        ] {
            assert!(n(op, f) > 0, "no {f:?} on {op}: {ctx}");
        }
    }

    let after = fleet::snapshots(&c).await;
    // Exactly one snapshot of the run per volume.
    let this_run = of_run(&after, key);
    let counts: BTreeMap<usize, usize> = this_run.values().fold(BTreeMap::new(), |mut m, ids| {
        *m.entry(ids.len()).or_insert(0) += 1;
        m
    });
    assert_eq!(counts, BTreeMap::from([(1, 300)]), "{ctx}");
    assert_eq!(this_run.keys().cloned().collect::<Vec<_>>(), vols);
    // The report names exactly the snapshots moto holds for the run.
    let created: BTreeSet<String> = report["created"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["snapshot_id"].as_str().unwrap().to_string())
        .collect();
    let held: BTreeSet<String> = this_run.values().flatten().cloned().collect();
    assert_eq!(created, held, "{ctx}");
    // Every lost answer of a creation was found by the look-up, not sent again; every 500 was
    // sent again.
    let amb = &report["ambiguous"];
    let lost_creates = n("CreateSnapshot", Fault::LostAnswer);
    assert!(
        amb["found"].as_u64().unwrap() >= lost_creates,
        "{amb} vs {lost_creates} lost answers: {ctx}"
    );
    assert!(amb["retried"].as_u64().unwrap() > 0, "{amb}: {ctx}");
    assert_eq!(
        amb["count"].as_u64(),
        Some(amb["found"].as_u64().unwrap() + amb["retried"].as_u64().unwrap()),
        "every ambiguous call resolved: {amb}"
    );
    // No restore point the rules keep was deleted; the first run's went, as the report says.
    assert!(kept.iter().all(|id| after.contains_key(id)), "{ctx}");
    let deleted: BTreeSet<String> = report["deleted"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["snapshot_id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(deleted, oldest, "{ctx}");
    assert!(deleted.iter().all(|id| !after.contains_key(id)), "{ctx}");
    assert_eq!(after.len(), 300 + 300, "{ctx}");
    assert_eq!(
        report["failures"].as_array().map(Vec::len),
        Some(0),
        "{ctx}"
    );
}
