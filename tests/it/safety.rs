//! Runner safety (issue 9, docs/design.md §3–§7): the event is a pointer, what selects nothing fails
//! loudly, one restore point per run, crash-consistent sets snapshot only what was selected,
//! the Lambda reads the environment as the CLI does, failures carry their ticket, webhooks never
//! follow redirects, and the runner enforces AWS's limits itself. Against moto, loopback proxies
//! (EC2 listing and filter inspection) and the fake Lambda Runtime API.

use std::collections::BTreeSet;
use std::process::Stdio;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use ebssnap::core::ticket;
use ebssnap::runner::{self, RunOptions};
use jiff::{SignedDuration, Timestamp};
use serde_json::{Value, json};

use crate::cli::ebssnap;
use crate::docs::{self, p, t};
use crate::fleet;
use crate::lambda::invoke_once;
use crate::moto::{Moto, clients_at};
use crate::proxy::{Action, Proxy};
use crate::tickets::Receiver;

const SECRET: &str = "lambda-signing-secret-5150";
const PATH_TOKEN: &str = "B0000PATHTOKEN";

macro_rules! moto {
    () => {
        match Moto::start() {
            Some(m) => m,
            None => return,
        }
    };
}

fn snapshot_runs(
    snaps: &std::collections::BTreeMap<
        String,
        (String, std::collections::BTreeMap<String, String>),
    >,
) -> Vec<String> {
    let mut runs: Vec<String> = snaps
        .values()
        .filter_map(|(_, tags)| tags.get("ebssnap:run").cloned())
        .collect();
    runs.sort();
    runs
}

/// Item 1: a forged or stale event cannot change what is snapshotted; an event for a removed
/// target or policy does nothing and raises no ticket.
#[tokio::test]
async fn the_event_is_a_pointer_and_the_schedules_documents_are_used() {
    let m = moto!();
    let c = m.clients().await;
    let wanted = fleet::volume(&c, &[("Backup", "yes")]).await;
    let other = fleet::volume(&c, &[("Other", "yes")]).await;
    let receiver = Receiver::start(vec![]);
    let mut pol = docs::policy("std", 14, 1);
    pol["notify"] = json!({"webhook_url": receiver.url()});
    docs::store_policy(&c, &pol).await;
    docs::store_target(
        &c,
        &docs::target("std", "web", json!({"volume_tags": {"Backup": "yes"}})),
    )
    .await;
    let deadline = SystemTime::now() + Duration::from_secs(300);

    // The event asks for other volumes and a 1-day retention: neither is what the schedule says.
    let mut forged = docs::with_run(
        docs::target("std", "web", json!({"volume_tags": {"Other": "yes"}})),
        &docs::recent_fire(1),
    );
    forged["retention"] = json!({"days": 1, "min_snapshots": 0});
    let report = ebssnap::lambda::handle(&c, forged, deadline, None)
        .await
        .map(|a| serde_json::to_value(a).unwrap())
        .expect("a successful run");
    let created: Vec<&str> = report["created"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|c| c["volume_id"].as_str())
        .collect();
    assert_eq!(
        created,
        [wanted.as_str()],
        "the schedule's selector is used"
    );
    assert!(
        report["warnings"][0]
            .as_str()
            .is_some_and(|w| w.contains("differs") && w.contains("using the schedule's")),
        "{report}"
    );
    let snaps = fleet::snapshots(&c).await;
    assert!(!snaps.values().any(|(v, _)| v == &other));

    // The same event with the schedule's document: no warning.
    let honest = docs::with_run(
        docs::target("std", "web", json!({"volume_tags": {"Backup": "yes"}})),
        &docs::recent_fire(0),
    );
    let before = c.calls.snapshot();
    let report = ebssnap::lambda::handle(&c, honest, deadline, None)
        .await
        .map(|a| serde_json::to_value(a).unwrap())
        .unwrap();
    assert!(report.get("warnings").is_none(), "{report}");
    assert_eq!(
        c.calls.since(&before).calls.get("GetSchedule"),
        Some(&2),
        "the cost of trusting only current documents: two GetSchedule per run"
    );

    // A removed target, a removed policy: nothing happens, success, no ticket.
    for event in [
        docs::with_run(
            docs::target("std", "gone", json!({"volume_tags": {"Other": "yes"}})),
            "2026-11-26T05:00:00Z",
        ),
        docs::with_run(
            docs::target("nope", "web", json!({"volume_tags": {"Other": "yes"}})),
            "2026-11-26T05:00:00Z",
        ),
        docs::policy("nope", 1, 0),
    ] {
        let answer = ebssnap::lambda::handle(&c, event.clone(), deadline, None)
            .await
            .map(|a| serde_json::to_value(a).unwrap())
            .unwrap_or_else(|e| panic!("{event}: {e:?}"));
        assert_eq!(answer["kind"], "unknown_target", "{answer}");
        assert!(answer["message"].as_str().unwrap().contains("nothing done"));
    }
    assert_eq!(fleet::snapshots(&c).await.len(), 2, "two runs of web only");
    assert!(receiver.received().is_empty(), "no ticket storm");
}

/// Item 2: named references that resolve to nothing fail the run (NotFound) while the rest runs;
/// an empty selection fails (EmptySelection) unless allowed; `volumes` lists the warnings.
#[tokio::test]
async fn what_selects_nothing_is_a_failure_with_a_ticket() {
    let m = moto!();
    let c = m.clients().await;
    let vol = fleet::volume(&c, &[("Backup", "yes")]).await;
    let receiver = Receiver::start(vec![]);
    let url = format!("http://127.0.0.1:{}/hooks/{PATH_TOKEN}", receiver.port);
    let mut pol = docs::policy("std", 14, 1);
    pol["notify"] = json!({"webhook_url": url});
    docs::store_policy(&c, &pol).await;
    docs::store_target(
        &c,
        &docs::target(
            "std",
            "web",
            json!({"asg_names": ["gone-asg"], "instance_ids": ["i-0123456789abcdef0"],
                   "volume_ids": ["vol-0123456789abcdef0"], "instance_names": ["nothing-*"],
                   "volume_tags": {"Backup": "yes"}}),
        ),
    )
    .await;
    let out = ebssnap(
        &m.env(),
        &["run", "--policy", "std", "--target", "web", "--json"],
    );
    assert_eq!(out.code, 1, "{}\n{}", out.stdout, out.stderr);
    let r = out.json();
    assert_eq!(
        r["created"][0]["volume_id"],
        vol.as_str(),
        "the rest still runs"
    );
    let failures: Vec<(String, String)> = r["failures"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["code"].to_string(),
                f["message"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(failures.len(), 3, "{failures:?}");
    for (value, source) in [
        ("gone-asg", "select.asg_names"),
        ("i-0123456789abcdef0", "select.instance_ids"),
        ("vol-0123456789abcdef0", "select.volume_ids"),
    ] {
        assert!(
            failures.iter().any(|(code, msg)| code == "\"NotFound\""
                && msg.contains(value)
                && msg.contains(source)),
            "{value}: {failures:?}"
        );
    }
    // One ticket naming them; the URL's path token appears nowhere in the output.
    let got = receiver.received();
    assert_eq!(got.len(), 1);
    let ticket = got[0].json();
    assert_eq!(ticket["failures"].as_array().unwrap().len(), 3);
    assert_eq!(
        r["ticket"]["url"],
        format!("http://127.0.0.1:{}/…", receiver.port)
    );
    assert!(!out.stdout.contains(PATH_TOKEN) && !out.stderr.contains(PATH_TOKEN));

    // `volumes` shows what matches and what does not resolve.
    let v = ebssnap(
        &m.env(),
        &["volumes", "--policy", "std", "--target", "web", "--json"],
    );
    assert_eq!(v.code, 0, "{}", v.stderr);
    assert_eq!(v.json()["volumes"][0]["volume_id"], vol.as_str());
    assert_eq!(v.json()["warnings"].as_array().unwrap().len(), 3);

    // A whole selection that is empty fails, unless the target allows it.
    let mut empty = docs::target("std", "quiet", json!({"volume_tags": {"Nope": "*"}}));
    docs::store_target(&c, &empty).await;
    let out = ebssnap(
        &m.env(),
        &["run", "--policy", "std", "--target", "quiet", "--json"],
    );
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert_eq!(out.json()["failures"][0]["code"], "EmptySelection");
    empty["target"] = json!("quiet-ok");
    empty["allow_empty"] = json!(true);
    docs::store_target(&c, &empty).await;
    let out = ebssnap(
        &m.env(),
        &["run", "--policy", "std", "--target", "quiet-ok", "--json"],
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.json()["failures"], json!([]));
}

/// Item 3: two invocations of one run key at once both create (no client token); the pruning
/// that follows counts them as one restore point and keeps two distinct runs.
#[tokio::test]
async fn overlapping_invocations_of_one_run_are_one_restore_point() {
    let m = moto!();
    let c = m.clients().await;
    let vol = fleet::volume(&c, &[("Backup", "yes")]).await;
    let pol = docs::policy("std", 14, 2);
    let tgt = docs::target("std", "web", json!({"volume_tags": {"Backup": "yes"}}));
    let run = |key: &str| RunOptions {
        run_key: Some(key.into()),
        ..RunOptions::default()
    };
    runner::run_target(&c, &p(&pol), &t(&tgt), &run("run-A"))
        .await
        .unwrap();
    // Both invocations list the target's snapshots before either has created one: the proxy
    // answers their two listings with what EC2 held then (nothing of run B).
    let listings = Arc::new(AtomicUsize::new(0));
    let n = listings.clone();
    let proxy = Proxy::start(
        m.port,
        Box::new(move |_, _, body| {
            if body.contains("Action=DescribeSnapshots") && n.fetch_add(1, Ordering::SeqCst) < 2 {
                return Action::Respond(
                    200,
                    "text/xml",
                    r#"<DescribeSnapshotsResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/"><requestId>r</requestId><snapshotSet/></DescribeSnapshotsResponse>"#.into(),
                );
            }
            Action::Forward
        }),
    );
    let pc = clients_at(&proxy.endpoint()).await;
    let (pd, td, rb) = (p(&pol), t(&tgt), run("run-B"));
    let (a, b) = tokio::join!(
        runner::run_target(&pc, &pd, &td, &rb),
        runner::run_target(&pc, &pd, &td, &rb),
    );
    assert_eq!(a.unwrap().created.len() + b.unwrap().created.len(), 2);
    assert_eq!(
        snapshot_runs(&fleet::snapshots(&c).await),
        ["run-A", "run-B", "run-B"]
    );

    // 40 days later every snapshot is past retention; min 2 keeps two *restore points*.
    let later = RunOptions {
        now: Timestamp::now() + SignedDuration::from_hours(40 * 24),
        ..RunOptions::default()
    };
    let r = runner::sweep(&c, &p(&pol), &later).await.unwrap();
    assert_eq!(r.deleted.len(), 1, "{:?}", r.deleted);
    assert_eq!(r.deleted[0].reason.as_str(), "duplicate_run");
    let left = fleet::snapshots(&c).await;
    assert_eq!(snapshot_runs(&left), ["run-A", "run-B"]);
    let b_ids: BTreeSet<&String> = left
        .iter()
        .filter(|(_, (_, tags))| tags.get("ebssnap:run").map(String::as_str) == Some("run-B"))
        .map(|(id, _)| id)
        .collect();
    assert!(
        b_ids
            .iter()
            .all(|id| id.as_str() < r.deleted[0].snapshot_id.as_str()),
        "the lowest id of the run is kept"
    );
    assert!(left.values().all(|(v, _)| v == &vol));
}

/// Item 4: `volume_ids = [A]` with exclusions on an instance with three volumes, in
/// crash-consistent mode, snapshots exactly A (not the instance's whole set).
#[tokio::test]
async fn crash_consistent_mode_snapshots_only_the_selected_volume() {
    let m = moto!();
    let c = m.clients().await;
    let (instance, root) = fleet::instance(&c, &[("Name", "db-1")]).await;
    let a = fleet::volume(&c, &[("App", "db")]).await;
    let b = fleet::volume(&c, &[("NoBackup", "yes")]).await;
    fleet::attach(&c, &a, &instance, "/dev/sdf").await;
    fleet::attach(&c, &b, &instance, "/dev/sdg").await;
    let mut pol = docs::policy("std", 14, 1);
    pol["crash_consistent"] = json!(true);
    let mut tgt = docs::target("std", "db", json!({"volume_ids": [a]}));
    tgt["exclude"] = json!({"volume_tags": {"NoBackup": "*"}, "root_volumes": true});
    let r = runner::run_target(&c, &p(&pol), &t(&tgt), &RunOptions::default())
        .await
        .unwrap();
    assert!(r.failures.is_empty(), "{:?}", r.failures);
    let snaps = fleet::snapshots(&c).await;
    let vols: Vec<&String> = snaps.values().map(|(v, _)| v).collect();
    assert_eq!(
        vols,
        [&a],
        "root {root} and excluded {b} must not be snapshotted"
    );
}

/// A policy whose webhook is `receiver`, and a stored target naming a volume that does not
/// exist: a run that fails (NotFound) and raises a ticket. Returns the event Scheduler sends.
async fn failing_target(c: &ebssnap::aws::Clients, receiver: &Receiver) -> Value {
    let mut pol = docs::policy("std", 14, 1);
    pol["notify"] = json!({"webhook_url": receiver.url()});
    docs::store_policy(c, &pol).await;
    let tgt = docs::target(
        "std",
        "web",
        json!({"volume_ids": ["vol-0123456789abcdef0"]}),
    );
    docs::store_target(c, &tgt).await;
    docs::with_run(tgt, &docs::recent_fire(0))
}

/// Items 5 and 6: the Lambda reads the environment as the CLI does (signed ticket, attempts,
/// backoff), and its error payload carries the ticket for the on-failure destination.
#[tokio::test]
async fn the_lambda_signs_tickets_with_the_cli_settings_and_returns_the_ticket() {
    let m = moto!();
    let c = m.clients().await;
    let receiver = Receiver::start(vec![(500, None), (500, None), (500, None)]);
    let event = failing_target(&c, &receiver).await;
    let env = [
        ("EBSSNAP_WEBHOOK_SECRET", SECRET),
        ("EBSSNAP_WEBHOOK_ATTEMPTS", "2"),
        ("EBSSNAP_WEBHOOK_BACKOFF_MS", "50"),
    ];
    let (answer, stderr) = invoke_once(&m, event, 300_000, &env, Duration::from_secs(60));
    let (_, kind, err) = answer.unwrap_or_else(|e| panic!("no answer ({e}); stderr:\n{stderr}"));
    assert_eq!(kind, "error");
    assert_eq!(err["errorType"], "Retryable");
    let got = receiver.received();
    assert_eq!(
        got.len(),
        2,
        "EBSSNAP_WEBHOOK_ATTEMPTS=2 is read by the Lambda"
    );
    for g in &got {
        let sig = g
            .header("X-Ebssnap-Signature")
            .expect("signed from the Lambda");
        let now = Timestamp::now().as_second();
        ticket::verify(SECRET, sig, g.body.as_bytes(), now, 300).expect("valid signature");
    }
    // The error message is JSON with the ticket: what an on-failure destination receives.
    let payload: Value = serde_json::from_str(err["errorMessage"].as_str().unwrap()).unwrap();
    assert_eq!(payload["ticket"]["failures"][0]["code"], "NotFound");
    assert_eq!(payload["ticket"]["dedup_key"], got[0].json()["dedup_key"]);
    assert_eq!(payload["delivery"]["delivered"], false);
    assert!(!err.to_string().contains(SECRET) && !stderr.contains(SECRET));
}

/// Item 5: ticket delivery from the Lambda stops before the invocation's deadline.
#[tokio::test]
async fn the_lambdas_ticket_delivery_honours_the_deadline() {
    let m = moto!();
    let c = m.clients().await;
    // Always "try again in 60 s": only the deadline can stop the retries early.
    let receiver = Receiver::start(vec![(503, Some("60")); 5]);
    let event = failing_target(&c, &receiver).await;
    let started = Instant::now();
    let (answer, stderr) = invoke_once(&m, event, 25_000, &[], Duration::from_secs(30));
    let (_, kind, err) = answer.unwrap_or_else(|e| panic!("no answer ({e}); stderr:\n{stderr}"));
    assert!(started.elapsed() < Duration::from_secs(25));
    assert_eq!(kind, "error");
    let payload: Value = serde_json::from_str(err["errorMessage"].as_str().unwrap()).unwrap();
    assert_eq!(payload["delivery"]["attempts"], 1);
    assert!(
        payload["delivery"]["error"]
            .as_str()
            .unwrap()
            .contains("no time left"),
        "{payload}"
    );
    assert_eq!(receiver.received().len(), 1);
}

/// Item 5: every environment variable named anywhere in the runner's code is in the one list
/// both shells build their options from (the provider's own variables aside).
#[test]
fn every_environment_setting_is_in_the_shared_list() {
    let mut named = BTreeSet::new();
    let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut stack = vec![src];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(dir).unwrap().flatten() {
            let path = e.path();
            if path.is_dir() {
                if !path.ends_with("provider") {
                    stack.push(path);
                }
                continue;
            }
            let mut text = std::fs::read_to_string(&path).unwrap_or_default();
            if let Some(a) = text.find("pub const ENV_SETTINGS") {
                // The list itself does not count as reading a variable.
                let b = a + text[a..].find("];").unwrap_or(0);
                text.replace_range(a..b, "");
            }
            for part in text.split("\"EBSSNAP_").skip(1) {
                let rest: String = part.chars().take_while(|c| *c != '"').collect();
                named.insert(format!("EBSSNAP_{rest}"));
            }
        }
    }
    let listed: BTreeSet<String> = runner::ENV_SETTINGS
        .iter()
        .map(|(k, _)| k.to_string())
        .collect();
    assert!(named.len() >= 4, "{named:?}");
    assert_eq!(named, listed, "named in src/ vs runner::ENV_SETTINGS");
}

/// Item 7: a redirect is a failed attempt, never followed.
#[tokio::test]
async fn webhook_redirects_are_never_followed() {
    let receiver = Receiver::start(vec![(302, None)]);
    let t = ticket::Ticket {
        ebssnap: 1,
        event: ticket::EVENT_FAILED.into(),
        dedup_key: "std/web/k".into(),
        ..Default::default()
    };
    let url = format!("http://127.0.0.1:{}/hooks/{PATH_TOKEN}", receiver.port);
    let out = ebssnap::webhook::deliver(&url, &t, &Default::default()).await;
    assert!(!out.delivered);
    assert_eq!(out.attempts, 1);
    assert!(
        out.error.as_deref().unwrap().contains("redirect"),
        "{out:?}"
    );
    assert_eq!(out.url, format!("http://127.0.0.1:{}/…", receiver.port));
    assert_eq!(receiver.received().len(), 1, "the Location was not visited");
}

/// Item 7: `webhook serve` binds loopback unless told otherwise, caps bodies at 1 MiB and
/// refuses a replayed signature.
#[test]
fn webhook_serve_refuses_big_bodies_and_replays() {
    let remote = ebssnap(&[], &["webhook", "serve", "--listen", "0.0.0.0:0"]);
    assert_eq!(remote.code, 2, "{}", remote.stderr);
    assert!(remote.stderr.contains("--allow-remote"));

    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_ebssnap"))
        .env("EBSSNAP_WEBHOOK_SECRET", SECRET)
        .args([
            "webhook",
            "serve",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--count",
            "2",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let post = |body: &[u8], sig: Option<&str>| -> u16 {
        let mut headers = vec![("Content-Type".to_string(), "application/json".to_string())];
        if let Some(s) = sig {
            headers.push(("X-Ebssnap-Signature".to_string(), s.to_string()));
        }
        let t0 = Instant::now();
        loop {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                break;
            }
            assert!(
                t0.elapsed() < Duration::from_secs(10),
                "serve did not start"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        crate::proxy::raw(port, "POST", "/", &headers, body).0
    };
    // A body over 1 MiB is refused from its Content-Length, before it is read: a client that
    // asks first (`Expect: 100-continue`, as curl does for big bodies) gets 413 and never sends it.
    assert_eq!(post(b"{}", None), 401, "unsigned, with a secret set");
    {
        use std::io::{Read, Write};
        let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        write!(
            s,
            "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\nExpect: 100-continue\r\n\r\n",
            1024 * 1024 + 10
        )
        .unwrap();
        let mut head = [0u8; 12];
        s.read_exact(&mut head).unwrap();
        assert_eq!(&head, b"HTTP/1.1 413", "{}", String::from_utf8_lossy(&head));
    }
    let body = br#"{"ebssnap":1,"event":"snapshot.failed"}"#;
    let sig = ticket::signature(SECRET, Timestamp::now().as_second(), body);
    assert_eq!(post(body, Some(&sig)), 200);
    assert_eq!(
        post(body, Some(&sig)),
        401,
        "the same signature twice is a replay"
    );
    // Re-spelled variants of the captured header are refused too (one spelling per signature).
    let hex = sig.split_once(",v1=").unwrap().1;
    for variant in [
        format!("{sig},v1={hex}"),
        format!("{sig} "),
        sig.replace(",v1=", ", v1="),
        format!(
            "t={},v1={}",
            sig[2..].split(',').next().unwrap(),
            hex.to_uppercase()
        ),
    ] {
        assert_eq!(post(body, Some(&variant)), 401, "{variant}");
    }
    // Not JSON: refused, and its bytes never reach the terminal.
    assert_eq!(post(b"\x1b[2J\x1b]0;owned\x07", None), 401);
    // A slow sender (headers sent, body promised and never finished) holds its connection
    // open; a signed ticket on another connection is still answered: connections are served
    // concurrently (the old receiver read bodies one request at a time and stalled here).
    let mut slow = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    std::io::Write::write_all(
        &mut slow,
        b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{",
    )
    .unwrap();
    // A second verified ticket (signed a second later: a new MAC) is the second counted one.
    std::thread::sleep(Duration::from_millis(1100));
    let later = ticket::signature(SECRET, Timestamp::now().as_second(), body);
    assert_eq!(post(body, Some(&later)), 200);
    drop(slow);
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("replayed"), "{stdout}");
    assert!(
        !stdout.contains('\x1b'),
        "a terminal escape reached stdout: {stdout:?}"
    );
}

/// Item 8: EC2's 200 filter values per call hold with the instance-state filter counted, and
/// a run key that cannot be a tag value is refused.
#[tokio::test]
async fn the_runner_keeps_ec2s_limits() {
    let m = moto!();
    let most = Arc::new(Mutex::new(Vec::<usize>::new()));
    let seen = most.clone();
    let proxy = Proxy::start(
        m.port,
        Box::new(move |_, _, body| {
            if body.contains("Action=DescribeInstances") {
                let values = body.matches("Value.").count();
                seen.lock().unwrap().push(values);
            }
            Action::Forward
        }),
    );
    let ids: Vec<String> = (0..200).map(|i| format!("i-{i:017x}")).collect();
    let dir = std::env::temp_dir().join(format!("ebssnap-limits-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let tf = dir.join("t.json");
    std::fs::write(
        &tf,
        docs::target("std", "asg", json!({"instance_ids": ids})).to_string(),
    )
    .unwrap();
    let pf = dir.join("p.json");
    std::fs::write(&pf, docs::policy("std", 14, 1).to_string()).unwrap();
    let mut env = m.env();
    env[0].1 = proxy.endpoint();
    let (tf, pf) = (tf.display().to_string(), pf.display().to_string());
    let out = ebssnap(
        &env,
        &["run", "--input", &tf, "--policy-input", &pf, "--json"],
    );
    assert_eq!(out.code, 1, "200 NotFound: {}", out.stderr);
    let calls = most.lock().unwrap().clone();
    assert!(
        calls.iter().all(|n| *n <= 200),
        "filter values per call: {calls:?}"
    );
    assert!(
        calls.iter().any(|n| *n > 150),
        "the batch was exercised: {calls:?}"
    );

    let long = "k".repeat(300);
    let out = ebssnap(
        &env,
        &[
            "run",
            "--input",
            &tf,
            "--policy-input",
            &pf,
            "--run-key",
            &long,
        ],
    );
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(out.stderr.contains("run key"), "{}", out.stderr);
    std::fs::remove_dir_all(dir).ok();
}
