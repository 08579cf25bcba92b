//! Failure tickets end to end (docs/design.md §7): one signed ticket per failed run, retries and
//! Retry-After, an unreachable receiver, nothing sent when all is well, sweep events, stable
//! dedup keys. Every receiver is on loopback.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ebssnap::core::ticket::{self, Ticket};
use ebssnap::webhook::{self, DeliveryOptions, Secret};
use serde_json::{Value, json};

use crate::cli::{Out, ebssnap};
use crate::docs;
use crate::fleet;
use crate::moto::Moto;
use crate::proxy::{Action, Proxy};

pub const SECRET: &str = "s3cr3t-signing-key-4242";
const URL_TOKEN: &str = "TOKEN-in-the-query-9876";

/// One request the receiver got.
#[derive(Debug, Clone)]
pub struct Got {
    pub body: String,
    pub headers: Vec<(String, String)>,
    pub at: Instant,
}

impl Got {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap()
    }
}

/// A loopback webhook receiver answering `script` in order (then 200), recording every request.
pub struct Receiver {
    pub port: u16,
    pub got: Arc<Mutex<Vec<Got>>>,
    server: Arc<tiny_http::Server>,
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.server.unblock();
    }
}

impl Receiver {
    pub fn start(script: Vec<(u16, Option<&'static str>)>) -> Receiver {
        let server = Arc::new(tiny_http::Server::http("127.0.0.1:0").unwrap());
        let port = server.server_addr().to_ip().unwrap().port();
        let got = Arc::new(Mutex::new(Vec::new()));
        let (srv, g) = (server.clone(), got.clone());
        std::thread::spawn(move || {
            let mut script = script.into_iter();
            while let Ok(mut req) = srv.recv() {
                let mut body = String::new();
                let _ = std::io::Read::read_to_string(req.as_reader(), &mut body);
                let headers = req
                    .headers()
                    .iter()
                    .map(|h| (h.field.to_string(), h.value.to_string()))
                    .collect();
                g.lock().unwrap().push(Got {
                    body,
                    headers,
                    at: Instant::now(),
                });
                let (status, retry_after) = script.next().unwrap_or((200, None));
                let mut resp = tiny_http::Response::from_string("{}").with_status_code(status);
                if (300..400).contains(&status) {
                    // A redirect to this same receiver: following it would show as a request.
                    let to = format!("http://127.0.0.1:{port}/elsewhere");
                    resp = resp.with_header(tiny_http::Header::from_bytes("Location", to).unwrap());
                }
                if let Some(ra) = retry_after {
                    resp =
                        resp.with_header(tiny_http::Header::from_bytes("Retry-After", ra).unwrap());
                }
                let _ = req.respond(resp);
            }
        });
        Receiver { port, got, server }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/hooks/ebs?token={URL_TOKEN}", self.port)
    }

    pub fn received(&self) -> Vec<Got> {
        self.got.lock().unwrap().clone()
    }
}

fn sample_ticket() -> Ticket {
    Ticket {
        ebssnap: 1,
        event: ticket::EVENT_FAILED.into(),
        severity: "critical".into(),
        dedup_key: "std/web/2026-11-26T05:00:00Z".into(),
        policy: "std".into(),
        ..Default::default()
    }
}

fn fast() -> DeliveryOptions {
    DeliveryOptions {
        backoff: Duration::from_millis(20),
        ..DeliveryOptions::default()
    }
}

#[tokio::test]
async fn five_hundreds_then_success_is_one_delivery_with_one_idempotency_key() {
    let r = Receiver::start(vec![(500, None), (500, None)]);
    let out = webhook::deliver(&r.url(), &sample_ticket(), &fast()).await;
    assert!(out.delivered, "{out:?}");
    assert_eq!(out.attempts, 3);
    let got = r.received();
    assert_eq!(got.len(), 3);
    for g in &got {
        assert_eq!(
            g.header("Idempotency-Key"),
            Some("std/web/2026-11-26T05:00:00Z")
        );
        assert_eq!(g.header("Content-Type"), Some("application/json"));
        assert!(
            g.header("User-Agent")
                .is_some_and(|u| u.starts_with("ebssnap/"))
        );
    }
    assert_eq!(got[0].body, got[2].body, "the same ticket each time");
    assert!(
        !out.url.contains(URL_TOKEN),
        "the reported URL is redacted: {}",
        out.url
    );
}

#[tokio::test]
async fn retry_after_is_honoured_and_permanent_errors_stop() {
    let r = Receiver::start(vec![(429, Some("1"))]);
    let out = webhook::deliver(&r.url(), &sample_ticket(), &fast()).await;
    assert!(out.delivered);
    let got = r.received();
    assert_eq!(got.len(), 2);
    let gap = got[1].at.duration_since(got[0].at);
    assert!(
        gap >= Duration::from_millis(950),
        "waited only {gap:?} despite Retry-After: 1"
    );

    let r = Receiver::start(vec![(400, None)]);
    let out = webhook::deliver(&r.url(), &sample_ticket(), &fast()).await;
    assert!(!out.delivered);
    assert_eq!(out.attempts, 1, "a 4xx other than 408/429 is permanent");
    assert_eq!(out.status, Some(400));

    // Plain http to a non-loopback host is refused without a request.
    let out = webhook::deliver("http://tickets.example.com/x", &sample_ticket(), &fast()).await;
    assert!(
        !out.delivered && out.attempts == 0 && out.error.unwrap().contains("https is required")
    );
}

#[tokio::test]
async fn the_signature_verifies_with_the_secret_and_not_with_another() {
    let r = Receiver::start(vec![]);
    let opts = DeliveryOptions {
        secret: Secret::new(SECRET.into()),
        ..fast()
    };
    assert!(
        webhook::deliver(&r.url(), &sample_ticket(), &opts)
            .await
            .delivered
    );
    let g = &r.received()[0];
    let sig = g.header("X-Ebssnap-Signature").expect("signed");
    let now = jiff::Timestamp::now().as_second();
    assert_eq!(
        ticket::verify(SECRET, sig, g.body.as_bytes(), now, 300),
        Ok(())
    );
    assert_eq!(
        ticket::verify("another-secret", sig, g.body.as_bytes(), now, 300),
        Err(ticket::VerifyError::Mismatch)
    );
}

/// A fleet with one volume whose snapshot EC2 refuses (through a proxy in front of moto).
pub struct FailingFleet {
    pub proxy: Proxy,
    pub instance: String,
    pub data: String,
    pub root: String,
}

pub async fn failing_fleet(m: &Moto) -> FailingFleet {
    let c = m.clients().await;
    let (instance, root) = fleet::instance(&c, &[("Name", "db-1")]).await;
    let data = fleet::volume(&c, &[("Role", "data")]).await;
    fleet::attach(&c, &data, &instance, "/dev/sdf").await;
    let victim = data.clone();
    let proxy = Proxy::start(
        m.port,
        Box::new(move |_, _, body| {
            if body.contains("Action=CreateSnapshot")
                && body.contains(&format!("VolumeId={victim}"))
            {
                return Action::Respond(
                    400,
                    "text/xml",
                    "<Response><Errors><Error><Code>IncorrectState</Code><Message>The volume is in an incorrect state.</Message></Error></Errors><RequestID>r</RequestID></Response>".into(),
                );
            }
            Action::Forward
        }),
    );
    FailingFleet {
        proxy,
        instance,
        data,
        root,
    }
}

pub fn run_cli(
    m: &Moto,
    proxy: &Proxy,
    policy: &Value,
    target: &Value,
    extra_env: &[(&'static str, String)],
) -> Out {
    let dir = std::env::temp_dir().join(format!(
        "ebssnap-tickets-{}-{}",
        std::process::id(),
        jiff::Timestamp::now().as_nanosecond()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let (tf, pf) = (dir.join("t.json"), dir.join("p.json"));
    std::fs::write(&tf, target.to_string()).unwrap();
    std::fs::write(&pf, policy.to_string()).unwrap();
    let mut env = m.env();
    env[0].1 = proxy.endpoint();
    env.push(("EBSSNAP_WEBHOOK_SECRET", SECRET.into()));
    env.push(("EBSSNAP_WEBHOOK_BACKOFF_MS", "20".into()));
    env.extend(extra_env.iter().cloned());
    let out = ebssnap(
        &env,
        &[
            "run",
            "--input",
            tf.to_str().unwrap(),
            "--policy-input",
            pf.to_str().unwrap(),
            "--json",
        ],
    );
    std::fs::remove_dir_all(dir).ok();
    out
}

fn assert_no_secrets(out: &Out) {
    for s in [SECRET, URL_TOKEN] {
        assert!(
            !out.stdout.contains(s) && !out.stderr.contains(s),
            "{s} leaked:\n{}\n{}",
            out.stdout,
            out.stderr
        );
    }
}

#[tokio::test]
async fn a_failed_volume_sends_exactly_one_signed_ticket_with_a_stable_dedup_key() {
    let Some(m) = Moto::start() else { return };
    let f = failing_fleet(&m).await;
    let r = Receiver::start(vec![]);
    let mut policy = docs::policy("std", 14, 1);
    policy["notify"] = json!({"webhook_url": r.url()});
    let target = docs::with_run(
        docs::target("std", "db", json!({"instance_names": ["db-*"]})),
        "2026-11-26T05:00:00Z",
    );

    let out = run_cli(&m, &f.proxy, &policy, &target, &[]);
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert_no_secrets(&out);
    let report = out.json();
    assert_eq!(
        report["created"][0]["volume_id"],
        f.root.as_str(),
        "the other volume is snapshotted"
    );
    assert_eq!(report["ticket"]["delivered"], true);
    let got = r.received();
    assert_eq!(got.len(), 1, "exactly one ticket");
    let t = got[0].json();
    assert_eq!(t["ebssnap"], 1);
    assert_eq!(t["event"], "snapshot.failed");
    assert_eq!(
        t["severity"], "error",
        "one volume failed, the others were snapshotted"
    );
    assert_eq!(t["policy"], "std");
    assert_eq!(t["target"], "db");
    assert_eq!(t["account"], "123456789012");
    assert_eq!(t["region"], "us-east-1");
    assert_eq!(t["run"]["scheduled_time"], "2026-11-26T05:00:00Z");
    assert_eq!(t["failures"].as_array().unwrap().len(), 1);
    assert_eq!(t["failures"][0]["volume_id"], f.data.as_str());
    assert_eq!(t["failures"][0]["instance_id"], f.instance.as_str());
    assert_eq!(t["failures"][0]["device"], "/dev/sdf");
    assert_eq!(t["failures"][0]["code"], "IncorrectState");
    assert_eq!(t["summary"]["created"], 1);
    assert_eq!(t["dedup_key"], "std/db/2026-11-26T05:00:00Z");
    assert_eq!(
        got[0].header("Idempotency-Key"),
        Some("std/db/2026-11-26T05:00:00Z")
    );
    let now = jiff::Timestamp::now().as_second();
    let sig = got[0].header("X-Ebssnap-Signature").unwrap();
    assert_eq!(
        ticket::verify(SECRET, sig, got[0].body.as_bytes(), now, 300),
        Ok(())
    );
    assert!(ticket::verify("not-the-secret", sig, got[0].body.as_bytes(), now, 300).is_err());

    // A retry of the same scheduled time fails the same way: the same dedup key.
    let again = run_cli(&m, &f.proxy, &policy, &target, &[]);
    assert_eq!(again.code, 1);
    let got = r.received();
    assert_eq!(got.len(), 2);
    assert_eq!(got[1].json()["dedup_key"], t["dedup_key"]);
}

#[tokio::test]
async fn an_unreachable_receiver_fails_the_run_and_the_log_keeps_the_ticket() {
    let Some(m) = Moto::start() else { return };
    let f = failing_fleet(&m).await;
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut policy = docs::policy("std", 14, 1);
    policy["notify"] = json!({"webhook_url": format!("http://user:hunter2pw@127.0.0.1:{closed}/hooks?token={URL_TOKEN}")});
    let target = docs::target("std", "db", json!({"instance_names": ["db-*"]}));
    let out = run_cli(
        &m,
        &f.proxy,
        &policy,
        &target,
        &[("EBSSNAP_WEBHOOK_ATTEMPTS", "2".into())],
    );
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert_no_secrets(&out);
    assert!(
        !out.stdout.contains("hunter2pw") && !out.stderr.contains("hunter2pw"),
        "URL password leaked"
    );
    let report = out.json();
    assert_eq!(report["ticket"]["delivered"], false);
    assert_eq!(report["ticket"]["attempts"], 2);
    assert!(
        out.stderr.contains("ticket NOT delivered"),
        "{}",
        out.stderr
    );
    // The whole ticket is in the log line (escaped JSON inside it).
    for want in [
        "snapshot.failed",
        f.data.as_str(),
        "IncorrectState",
        "dedup_key",
        "runner_version",
    ] {
        assert!(
            out.stderr.contains(want),
            "log misses {want}: {}",
            out.stderr
        );
    }
}

#[tokio::test]
async fn a_run_without_failures_sends_nothing() {
    let Some(m) = Moto::start() else { return };
    let c = m.clients().await;
    fleet::volume(&c, &[("Backup", "yes")]).await;
    let r = Receiver::start(vec![]);
    let proxy = Proxy::start(m.port, Box::new(|_, _, _| Action::Forward));
    let mut policy = docs::policy("std", 14, 1);
    policy["notify"] = json!({"webhook_url": r.url()});
    let target = docs::target("std", "ok", json!({"volume_tags": {"Backup": "yes"}}));
    let out = run_cli(&m, &proxy, &policy, &target, &[]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out.json()["ticket"].is_null());
    assert!(r.received().is_empty());
}

#[tokio::test]
async fn a_sweep_reports_overdue_volumes_and_a_healthy_policy_sends_nothing() {
    let Some(m) = Moto::start() else { return };
    let c = m.clients().await;
    let (_, root) = fleet::instance(&c, &[("Name", "web-1")]).await;
    let r = Receiver::start(vec![]);
    let mut policy = docs::policy("std", 14, 1);
    policy["notify"] = json!({"webhook_url": r.url()});
    docs::store_policy(&c, &policy).await;
    docs::store_target(
        &c,
        &docs::target("std", "web", json!({"instance_names": ["web-*"]})),
    )
    .await;
    let mut env = m.env();
    env.push(("EBSSNAP_WEBHOOK_SECRET", SECRET.into()));
    let run = ebssnap(
        &env,
        &["run", "--policy", "std", "--target", "web", "--json"],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);

    // Now: the daily snapshot is fresh.
    let healthy = ebssnap(&env, &["sweep", "--policy", "std", "--json"]);
    assert_eq!(healthy.code, 0, "{}", healthy.stderr);
    assert_eq!(healthy.json()["overdue"].as_array().unwrap().len(), 0);
    assert!(r.received().is_empty(), "a healthy policy sends nothing");

    // Three days later, with a daily schedule (cron(0 5 * * ? *)): overdue.
    let later = (jiff::Timestamp::now() + jiff::SignedDuration::from_hours(72)).to_string();
    let late = ebssnap(
        &env,
        &["sweep", "--policy", "std", "--now", &later, "--json"],
    );
    assert_eq!(
        late.code, 0,
        "a delivered overdue ticket is not a failed sweep: {}",
        late.stderr
    );
    assert_no_secrets(&late);
    let report = late.json();
    assert_eq!(report["overdue"][0]["volume_id"], root.as_str());
    assert_eq!(report["overdue"][0]["interval_seconds"], 86_400);
    let got = r.received();
    assert_eq!(got.len(), 1);
    let t = got[0].json();
    assert_eq!(t["event"], "snapshot.overdue");
    assert_eq!(
        t["severity"], "critical",
        "no completed snapshot for over two intervals"
    );
    assert_eq!(t["failures"][0]["code"], "Overdue");
    assert_eq!(t["failures"][0]["volume_id"], root.as_str());
    assert_eq!(t["failures"][0]["target"], "web");
    let day = &t["occurred_at"].as_str().unwrap()[..10];
    assert_eq!(t["dedup_key"], format!("std/sweep/snapshot.overdue/{day}"));
    assert_eq!(
        t["failures"][0]["dedup_key"],
        format!("std/web/{root}/{day}")
    );
}

#[test]
fn webhook_test_and_serve_work_together_and_verify_signatures() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let listen = format!("127.0.0.1:{port}");
    let serve = std::process::Command::new(env!("CARGO_BIN_EXE_ebssnap"))
        .args(["webhook", "serve", "--listen", &listen, "--count", "2"])
        .env("EBSSNAP_WEBHOOK_SECRET", SECRET)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let t0 = Instant::now();
    while std::net::TcpStream::connect(&listen).is_err() {
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "receiver did not start"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let url = format!("http://{listen}/hook");
    let good = ebssnap(
        &[("EBSSNAP_WEBHOOK_SECRET", SECRET.into())],
        &["webhook", "test", "--url", &url],
    );
    assert_eq!(good.code, 0, "{}{}", good.stdout, good.stderr);
    assert!(
        good.stdout.contains("delivered to") && good.stdout.contains("HTTP 200"),
        "{}",
        good.stdout
    );
    // Signed with another secret: the receiver refuses it (401, a permanent answer).
    let bad = ebssnap(
        &[("EBSSNAP_WEBHOOK_SECRET", "wrong".into())],
        &["webhook", "test", "--url", &url],
    );
    assert_eq!(bad.code, 3, "{}{}", bad.stdout, bad.stderr);
    assert!(
        bad.stdout.contains("NOT delivered") && bad.stdout.contains("HTTP 401"),
        "{}",
        bad.stdout
    );
    // Only verified tickets count toward --count: the receiver is still up after the bad one.
    let again = ebssnap(
        &[("EBSSNAP_WEBHOOK_SECRET", SECRET.into())],
        &["webhook", "test", "--url", &url],
    );
    assert_eq!(again.code, 0, "{}{}", again.stdout, again.stderr);
    let out = serve.wait_with_output().unwrap();
    let printed = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success());
    assert!(printed.contains("signature: valid"), "{printed}");
    assert!(
        printed.contains("signature: INVALID: signature does not match"),
        "{printed}"
    );
    assert!(
        printed.contains("\"event\": \"snapshot.failed\""),
        "{printed}"
    );
    assert!(!printed.contains(SECRET));
    // Plain http elsewhere than loopback is refused before sending anything.
    let insecure = ebssnap(
        &[],
        &["webhook", "test", "--url", "http://tickets.example.com/x"],
    );
    assert_eq!(insecure.code, 2, "{}", insecure.stderr);
}

/// A volume that failed on one run and is snapshotted on a later one raises exactly one
/// `snapshot.recovered`, resolving the failure's problem key; a healthy run after a healthy one
/// sends nothing. (moto cannot backdate snapshots: each starts at the real time, so the runs'
/// `--now` says how much later each one is.)
#[tokio::test]
async fn a_failure_then_a_success_sends_one_recovery_naming_its_problem_key() {
    let Some(m) = Moto::start() else { return };
    let c = m.clients().await;
    let vol = fleet::volume(&c, &[("Backup", "yes")]).await;
    let receiver = Receiver::start(vec![]);
    let mut pol = docs::policy("std", 14, 1);
    pol["notify"] = json!({"webhook_url": receiver.url()});
    docs::store_policy(&c, &pol).await;
    // A daily schedule (cron(0 5 * * ? *)): the interval is 24 h.
    docs::store_target(
        &c,
        &docs::target("std", "web", json!({"volume_tags": {"Backup": "yes"}})),
    )
    .await;
    let t0 = jiff::Timestamp::now();
    let at = |days: i64| (t0 + jiff::SignedDuration::from_hours(24 * days)).to_string();
    let run = |env: &[(&str, String)], key: &str, now: &str| {
        ebssnap(
            env,
            &[
                "run",
                "--policy",
                "std",
                "--target",
                "web",
                "--run-key",
                key,
                "--now",
                now,
                "--json",
            ],
        )
    };
    assert_eq!(run(&m.env(), "day-0", &at(0)).code, 0);
    // Day 1: EBS refuses the volume (IncorrectState).
    let proxy = Proxy::start(
        m.port,
        Box::new(|_, _, body| {
            if body.contains("Action=CreateSnapshot&") {
                return Action::Respond(
                    400,
                    "text/xml",
                    "<Response><Errors><Error><Code>IncorrectState</Code><Message>The volume is in an incorrect state.</Message></Error></Errors><RequestID>x</RequestID></Response>".into(),
                );
            }
            Action::Forward
        }),
    );
    let mut env = m.env();
    env[0].1 = proxy.endpoint();
    let failed = run(&env, "day-1", &at(1));
    assert_eq!(failed.code, 1, "{}", failed.stderr);
    let key = format!("std/web/{vol}/volume");
    let got = receiver.received();
    assert_eq!(got.len(), 1);
    let t = got[0].json();
    assert_eq!(t["event"], "snapshot.failed");
    assert_eq!(
        t["severity"], "critical",
        "nothing was created: the whole target failed"
    );
    assert_eq!(t["failures"][0]["problem_key"], key.as_str());
    assert_eq!(t["failures"][0]["category"], "volume");
    assert!(
        t["failures"][0]["action"]
            .as_str()
            .unwrap()
            .contains("describe-volumes")
    );
    // Day 2: the volume is snapshotted again; its previous restore point is 2 days old.
    let ok = run(&m.env(), "day-2", &at(2));
    assert_eq!(ok.code, 0, "{}", ok.stderr);
    assert_eq!(ok.json()["recovered"][0]["volume_id"], vol.as_str());
    let got = receiver.received();
    assert_eq!(got.len(), 2, "exactly one more ticket");
    let r = got[1].json();
    assert_eq!(r["event"], "snapshot.recovered");
    assert_eq!(r["severity"], "info");
    assert!(
        r["resolves"].as_array().unwrap().contains(&json!(key)),
        "{r}"
    );
    assert_eq!(r["recovered"][0]["volume_id"], vol.as_str());
    // A healthy run one day after a healthy run: nothing is sent.
    let again = run(&m.env(), "day-3", &at(1));
    assert_eq!(again.code, 0, "{}", again.stderr);
    assert!(again.json().get("recovered").is_none());
    assert_eq!(receiver.received().len(), 2);
}

/// The first fenced code block of `lang` in docs/guides/tickets.md.
fn doc_snippet(lang: &str) -> String {
    let doc = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/docs/guides/tickets.md"
    ))
    .unwrap();
    let start = doc
        .find(&format!("```{lang}\n"))
        .unwrap_or_else(|| panic!("no {lang} block in docs/guides/tickets.md"))
        + lang.len()
        + 4;
    let end = start + doc[start..].find("```").unwrap();
    doc[start..end].to_string()
}

/// Runs `program` with `script` on stdin; its stdout.
fn run_script(program: &str, script: &str) -> Option<String> {
    use std::io::Write;
    let mut child = match std::process::Command::new(program)
        .arg("-")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
    {
        Ok(c) => c,
        Err(_) if std::env::var("CI").is_ok_and(|v| v == "true" || v == "1") => {
            panic!("{program} not found under CI=true: run `make deps`")
        }
        Err(_) => {
            eprintln!("SKIP: {program} not found");
            return None;
        }
    };
    child
        .stdin
        .take()
        .unwrap()
        .write_all(script.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{program}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Some(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

#[test]
fn the_documented_python_and_node_verifiers_accept_real_signatures_and_only_those() {
    let body = serde_json::to_string(&sample_ticket()).unwrap();
    let now = jiff::Timestamp::now().as_second();
    let good = ticket::signature(SECRET, now, body.as_bytes());
    let wrong_key = ticket::signature("another-key", now, body.as_bytes());
    let stale = ticket::signature(SECRET, now - 3600, body.as_bytes());
    let cases = [(&good, "true"), (&wrong_key, "false"), (&stale, "false")];
    let lit = |s: &str| serde_json::to_string(s).unwrap();

    let python = std::env::var("EBSSNAP_PYTHON").unwrap_or_else(|_| "python3".into());
    let mut script = doc_snippet("python");
    for (header, _) in &cases {
        script.push_str(&format!(
            "print(str(verify({}.encode(), {}, {}.encode())).lower())\n",
            lit(SECRET),
            lit(header),
            lit(&body)
        ));
    }
    if let Some(out) = run_script(&python, &script) {
        assert_eq!(
            out.lines().collect::<Vec<_>>(),
            vec!["true", "false", "false"],
            "python"
        );
    }

    let mut script = doc_snippet("javascript");
    for (header, _) in &cases {
        script.push_str(&format!(
            "console.log(String(verify({}, {}, Buffer.from({}))));\n",
            lit(SECRET),
            lit(header),
            lit(&body)
        ));
    }
    if let Some(out) = run_script("node", &script) {
        assert_eq!(
            out.lines().collect::<Vec<_>>(),
            cases.iter().map(|(_, want)| *want).collect::<Vec<_>>(),
            "node"
        );
    }
}

#[test]
fn webhook_serve_json_lines_forwards_verified_tickets_only() {
    // Without a secret there is nothing to verify with: refused.
    let no_secret = ebssnap(&[], &["webhook", "serve", "--json-lines", "--count", "1"]);
    assert_eq!(no_secret.code, 2, "{}", no_secret.stderr);
    assert!(
        no_secret.stderr.contains("EBSSNAP_WEBHOOK_SECRET"),
        "{}",
        no_secret.stderr
    );

    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let listen = format!("127.0.0.1:{port}");
    let serve = std::process::Command::new(env!("CARGO_BIN_EXE_ebssnap"))
        .args([
            "webhook",
            "serve",
            "--listen",
            &listen,
            "--count",
            "1",
            "--json-lines",
        ])
        .env("EBSSNAP_WEBHOOK_SECRET", SECRET)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let t0 = Instant::now();
    while std::net::TcpStream::connect(&listen).is_err() {
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "receiver did not start"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let url = format!("http://{listen}/hook");
    // Only verified tickets count: the wrong one first, then the one that ends the receiver.
    for secret in ["wrong", SECRET] {
        ebssnap(
            &[("EBSSNAP_WEBHOOK_SECRET", secret.into())],
            &["webhook", "test", "--url", &url],
        );
    }
    let out = serve.wait_with_output().unwrap();
    assert!(out.status.success());
    let stdout = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 1, "one verified ticket, one line:\n{stdout}");
    let t: Value = serde_json::from_str(lines[0]).unwrap();
    assert_eq!(t["event"], "snapshot.failed");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("ticket not forwarded (signature: INVALID"),
        "{stderr}"
    );
}
