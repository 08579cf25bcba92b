//! `ebssnap coverage` against moto (issue 22): each volume's status, the API-call budget through
//! a request log, the JSON Schema, several accounts through assumed roles and several Regions, and
//! the HTML page in a real headless browser.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::sync::{Arc, Mutex};

use serde_json::{Value, json};

use crate::cli::{ebssnap, tempdir};
use crate::docs;
use crate::fleet;
use crate::moto::Moto;
use crate::proxy::{Action, Proxy};

fn rows(r: &Value) -> &Vec<Value> {
    r["volumes"].as_array().expect("volumes")
}

fn row<'a>(r: &'a Value, v: &str) -> &'a Value {
    rows(r)
        .iter()
        .find(|row| row["volume_id"] == json!(v))
        .unwrap_or_else(|| panic!("{v} missing: {r}"))
}

fn status(r: &Value, v: &str) -> String {
    row(r, v)["status"].as_str().unwrap().to_string()
}

/// The operation of one request as the request log names it: the Query API's `Action`, or
/// Scheduler's REST call by method and path.
fn operation(method: &str, url: &str, body: &str) -> String {
    if let Some(a) = body.split('&').find_map(|kv| kv.strip_prefix("Action=")) {
        return a.to_string();
    }
    let path = url.split('?').next().unwrap_or(url);
    match (method, path) {
        ("GET", "/schedule-groups") => "ListScheduleGroups".into(),
        ("GET", "/schedules") => "ListSchedules".into(),
        ("GET", p) if p.starts_with("/schedules/") => "GetSchedule".into(),
        _ => format!("{method} {path}"),
    }
}

/// A proxy that logs every operation it forwards.
fn logging_proxy(m: &Moto) -> (Proxy, Arc<Mutex<Vec<String>>>) {
    let log: Arc<Mutex<Vec<String>>> = Arc::default();
    let l = log.clone();
    let proxy = Proxy::start(
        m.port,
        Box::new(move |method, url, body| {
            l.lock().unwrap().push(operation(method, url, body));
            Action::Forward
        }),
    );
    (proxy, log)
}

fn python() -> Option<String> {
    match std::env::var("EBSSNAP_PYTHON") {
        Ok(p) => Some(p),
        Err(_) if std::env::var("CI").is_ok_and(|v| v == "true") => {
            panic!(
                "EBSSNAP_PYTHON (with Playwright and jsonschema) is required under CI=true: run `make deps`"
            )
        }
        Err(_) => {
            eprintln!("SKIP: EBSSNAP_PYTHON not set (run `make deps`)");
            None
        }
    }
}

/// Validates a report against docs/coverage.schema.json (Python's `jsonschema`).
fn check_schema(python: &str, report: &Value, dir: &Path) {
    let file = dir.join("report.json");
    std::fs::write(&file, report.to_string()).unwrap();
    let schema = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/coverage.schema.json");
    let out = Command::new(python)
        .args([
            "-c",
            "import json, sys, jsonschema\n\
             schema = json.load(open(sys.argv[1]))\n\
             jsonschema.Draft202012Validator.check_schema(schema)\n\
             jsonschema.Draft202012Validator(schema).validate(json.load(open(sys.argv[2])))",
            schema,
        ])
        .arg(&file)
        .output()
        .expect("run python");
    assert!(
        out.status.success(),
        "the report does not match docs/coverage.schema.json: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test]
async fn every_volume_gets_the_status_its_targets_and_restore_points_give() {
    let Some(m) = Moto::start() else { return };
    let c = m.clients().await;
    let (web, web_root) = fleet::instance(&c, &[("Name", "web-1")]).await;
    let web_data = fleet::volume(&c, &[("Name", "web-1 data")]).await;
    fleet::attach(&c, &web_data, &web, "/dev/sdf").await;
    let members = fleet::asg(&c, "app", 2).await;
    let mut app_vols = Vec::new();
    for i in &members {
        app_vols.extend(fleet::volumes_of(&c, i).await);
    }
    let tagged = fleet::volume(&c, &[("Backup", "yes")]).await;
    let never_run = fleet::volume(&c, &[("Name", "new")]).await;
    let lonely = fleet::volume_of_size(&c, 100, &[("Name", "lonely </script><b>x</b>")]).await;
    let paused = fleet::volume(&c, &[("Name", "paused")]).await;
    let gone = fleet::volume(&c, &[("Name", "its target was removed")]).await;
    docs::store_policy(&c, &docs::policy("std", 7, 1)).await;
    let mut web_t = docs::target("std", "web", json!({"instance_names": ["web-*"]}));
    web_t["exclude"] = json!({"root_volumes": true});
    docs::store_target(&c, &web_t).await;
    docs::store_target(
        &c,
        &docs::target("std", "app", json!({"asg_names": ["app"]})),
    )
    .await;
    docs::store_target(
        &c,
        &docs::target("std", "tagged", json!({"volume_tags": {"Backup": "yes"}})),
    )
    .await;
    docs::store_target(
        &c,
        &docs::target("std", "new", json!({"volume_ids": [never_run]})),
    )
    .await;
    docs::store_target_disabled(
        &c,
        &docs::target("std", "paused", json!({"volume_ids": [paused]})),
    )
    .await;
    docs::store_target(
        &c,
        &docs::target("std", "gone", json!({"volume_ids": [gone]})),
    )
    .await;
    for t in ["web", "app", "tagged", "gone"] {
        let out = ebssnap(&m.env(), &["run", "--policy", "std", "--target", t]);
        assert_eq!(out.code, 0, "{}", out.stderr);
    }
    // The target is removed; its restore points stay.
    c.scheduler
        .delete_schedule()
        .group_name("ebssnap-std")
        .name("gone")
        .send()
        .await
        .expect("DeleteSchedule");

    let (proxy, log) = logging_proxy(&m);
    let env = m.env_at(&proxy.endpoint());
    let dir = tempdir();
    let page = dir.as_path().join("coverage.html");
    let soon = (jiff::Timestamp::now() + jiff::SignedDuration::from_hours(1)).to_string();
    let out = ebssnap(
        &env,
        &[
            "coverage",
            "--now",
            &soon,
            "--json",
            "--html",
            page.to_str().unwrap(),
        ],
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    let r = out.json();
    for v in [&web_data, &tagged] {
        assert_eq!(status(&r, v), "protected", "{v}");
    }
    for v in &app_vols {
        assert_eq!(status(&r, v), "protected", "ASG member volume {v}");
    }
    assert_eq!(status(&r, &web_root), "excluded");
    assert_eq!(
        row(&r, &web_root)["excluded_by"],
        json!([{"target": "std/web", "rule": "root_volumes"}])
    );
    assert_eq!(
        status(&r, &never_run),
        "stale",
        "selected, never snapshotted"
    );
    assert_eq!(status(&r, &lonely), "unprotected");
    assert_eq!(status(&r, &paused), "unprotected", "only a disabled target");
    assert_eq!(row(&r, &paused)["disabled_targets"], json!(["std/paused"]));
    assert_eq!(status(&r, &gone), "unprotected", "its target was removed");
    assert_eq!(
        row(&r, &gone)["restore_points"],
        1,
        "its restore point stays"
    );
    let d = row(&r, &web_data);
    assert_eq!(d["targets"], json!(["std/web"]));
    assert_eq!(d["instance_id"], json!(web));
    assert_eq!(d["device"], "/dev/sdf");
    assert_eq!(d["zone"], "us-east-1a");
    assert_eq!(d["account"], "123456789012");
    assert_eq!(d["region"], "us-east-1");
    assert_eq!(d["stale_after_seconds"], 2 * 86_400);
    assert!(d["next_run"].is_string(), "{d}");
    let protected = 2 + app_vols.len();
    assert_eq!(r["totals"]["volumes"]["protected"], json!(protected));
    assert_eq!(r["totals"]["volumes"]["unprotected"], 3);
    assert_eq!(r["totals"]["gib"]["unprotected"], 116);

    // The budget: one paginated pass per resource for all targets, one GetSchedule per target.
    let mut ops: BTreeMap<String, u64> = BTreeMap::new();
    for op in log.lock().unwrap().iter() {
        *ops.entry(op.clone()).or_insert(0) += 1;
    }
    let targets = 5; // web, app, tagged, new, paused
    for (op, want) in [
        ("DescribeInstances", 1),
        ("DescribeVolumes", 1),
        ("DescribeSnapshots", 1),
        ("DescribeAutoScalingGroups", 1),
        ("ListScheduleGroups", 1),
        ("ListSchedules", 1),
        ("GetSchedule", targets),
    ] {
        assert_eq!(ops.get(op).copied(), Some(want), "{op}: {ops:?}");
    }
    let total: u64 = ops.values().sum();
    assert!(total <= 6 + targets + 2, "{total} calls: {ops:?}");
    let counted = &r["scopes"][0]["api_calls"];
    assert_eq!(counted["GetSchedule"], json!(targets), "{counted}");

    // Three days later (daily schedules): the restore points are older than two intervals.
    let later = (jiff::Timestamp::now() + jiff::SignedDuration::from_hours(72)).to_string();
    let out = ebssnap(&m.env(), &["coverage", "--now", &later, "--json"]);
    let r3 = out.json();
    assert_eq!(status(&r3, &web_data), "stale");
    assert_eq!(status(&r3, &tagged), "stale");

    // A CI gate, and its bad input.
    let gate = ebssnap(&m.env(), &["coverage", "--fail-on", "unprotected"]);
    assert_eq!(gate.code, 1, "{}", gate.stderr);
    assert!(
        gate.stdout.contains("UNPROTECTED (3 volume(s)"),
        "{}",
        gate.stdout
    );
    assert!(
        gate.stdout.contains("selected by no target"),
        "{}",
        gate.stdout
    );
    assert!(
        gate.stdout.contains("excluded by std/web (root_volumes)"),
        "{}",
        gate.stdout
    );
    // No restore test has run: every selected volume is untested.
    let untested = ebssnap(&m.env(), &["coverage", "--fail-on", "untested"]);
    assert_eq!(untested.code, 1, "{}", untested.stderr);
    let ok = ebssnap(
        &m.env(),
        &["coverage", "--fail-on", "excluded", "--policy", "nope"],
    );
    assert_eq!(
        ok.code, 0,
        "no policy nope: nothing selected, nothing excluded: {}",
        ok.stdout
    );
    let bad = ebssnap(&m.env(), &["coverage", "--fail-on", "unsafe"]);
    assert_eq!(bad.code, 2, "{}", bad.stderr);
    assert!(bad.stderr.contains("not a status"), "{}", bad.stderr);

    let Some(python) = python() else { return };
    check_schema(&python, &r, dir.as_path());
    check_schema(&python, &r3, dir.as_path());
    browse(&python, &page, &r, &web_data);
}

/// The page in a real headless Chromium: every row and bar, no request beyond the page itself,
/// no script error or CSP refusal, and a working filter and sort.
fn browse(python: &str, page: &Path, r: &Value, volume: &str) {
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/browser/coverage_page.py"
    );
    let out = Command::new(python)
        .arg(script)
        .arg(page)
        .arg(volume)
        .output()
        .expect("run the browser check");
    assert!(
        out.status.success(),
        "the browser check failed (is chromium installed? run `make deps`): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let seen: Value = serde_json::from_slice(&out.stdout).expect("the browser check's JSON");
    let n = rows(r).len();
    assert_eq!(seen["rows"], json!(n), "{seen}");
    let mut want: Vec<&str> = rows(r)
        .iter()
        .map(|v| v["volume_id"].as_str().unwrap())
        .collect();
    let mut got: Vec<&str> = seen["row_volumes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    want.sort();
    got.sort();
    assert_eq!(got, want, "every volume is a row");
    let charted = rows(r)
        .iter()
        .filter(|v| v["stale_after_seconds"].is_number())
        .count();
    assert_eq!(seen["bars"].as_array().unwrap().len(), charted, "{seen}");
    assert!(
        seen["bar_heights"]
            .as_array()
            .unwrap()
            .iter()
            .all(|h| h.as_f64().unwrap() > 0.0),
        "every bar is drawn: {seen}"
    );
    assert_eq!(
        seen["requests"].as_array().unwrap().len(),
        1,
        "only the page itself is loaded: {seen}"
    );
    assert_eq!(seen["console"], json!([]), "no CSP refusal, no error");
    assert_eq!(seen["page_errors"], json!([]));
    assert_eq!(seen["shown"], format!("{n} of {n} shown"));
    assert_eq!(
        seen["cards"]["unprotected"],
        r["totals"]["volumes"]["unprotected"].to_string()
    );
    assert_eq!(
        seen["filter_rows"],
        json!([volume]),
        "the filter finds one row"
    );
    assert_eq!(
        seen["unprotected_rows"],
        r["totals"]["volumes"]["unprotected"]
    );
    let asc: Vec<i64> = serde_json::from_value(seen["sizes_ascending"].clone()).unwrap();
    let desc: Vec<i64> = serde_json::from_value(seen["sizes_descending"].clone()).unwrap();
    assert!(asc.windows(2).all(|w| w[0] <= w[1]), "{asc:?}");
    assert!(desc.windows(2).all(|w| w[0] >= w[1]), "{desc:?}");
    assert_ne!(asc, desc, "sizes differ, so the two sorts differ");
    assert_eq!(seen["sort_state"], "ascending");
    let ids: Vec<String> = serde_json::from_value(seen["ids_ascending"].clone()).unwrap();
    let mut sorted = ids.clone();
    sorted.sort();
    assert_eq!(ids, sorted);
}

/// The error STS answers for a role the caller may not assume.
fn access_denied() -> String {
    "<ErrorResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\"><Error><Type>Sender</Type><Code>AccessDenied</Code><Message>User is not authorized to perform: sts:AssumeRole</Message></Error><RequestId>x</RequestId></ErrorResponse>".into()
}

#[tokio::test]
async fn several_accounts_through_assumed_roles_and_several_regions_make_one_report() {
    let Some(m) = Moto::start() else { return };
    let c = m.clients().await;
    // Account B, reached by assuming its role: moto keeps each account's resources apart.
    let creds = ebssnap::aws::sts::assume_role(
        &c.sts,
        "arn:aws:iam::222233334444:role/ebssnap-audit",
        None,
        "seed",
    )
    .await
    .expect("AssumeRole");
    let b = ebssnap::aws::Clients::from_sdk_config(
        &ebssnap::aws::config_loader(&ebssnap::aws::ConnectOptions {
            region: Some("us-east-1".into()),
            endpoint_url: Some(m.endpoint()),
            ..Default::default()
        })
        .credentials_provider(creds)
        .load()
        .await,
    );
    let a_vol = fleet::volume(&c, &[("Name", "a-data")]).await;
    let b_vol = fleet::volume(&b, &[("Name", "b-data")]).await;
    docs::store_policy(&b, &docs::policy("std", 7, 1)).await;
    docs::store_target(
        &b,
        &docs::target("std", "data", json!({"volume_ids": [b_vol]})),
    )
    .await;
    // Account A has no policy: its volume is unprotected.

    // A third account refuses the role: a row with the AWS error, not an abort.
    let refused = Proxy::start(
        m.port,
        Box::new(|_, _, body| {
            if body.contains("Action=AssumeRole&") && body.contains("555566667777") {
                Action::Respond(403, "text/xml", access_denied())
            } else {
                Action::Forward
            }
        }),
    );
    let dir = tempdir();
    let file = dir.as_path().join("accounts.txt");
    std::fs::write(
        &file,
        "# account  role  [external id]\n\
         123456789012 arn:aws:iam::123456789012:role/ebssnap-audit\n\
         222233334444 arn:aws:iam::222233334444:role/ebssnap-audit ext-42\n\
         555566667777 arn:aws:iam::555566667777:role/ebssnap-audit\n",
    )
    .unwrap();
    let env = m.env_at(&refused.endpoint());
    let out = ebssnap(
        &env,
        &[
            "coverage",
            "--accounts",
            file.to_str().unwrap(),
            "--regions",
            "us-east-1,us-west-2",
            "--json",
        ],
    );
    assert_eq!(out.code, 3, "an account was not read: {}", out.stderr);
    let r = out.json();
    let scopes = r["scopes"].as_array().unwrap();
    assert_eq!(scopes.len(), 6, "3 accounts × 2 Regions: {r}");
    let scope = |acct: &str, region: &str| {
        scopes
            .iter()
            .find(|s| s["account"] == acct && s["region"] == region)
            .unwrap_or_else(|| panic!("{acct}/{region} missing: {r}"))
    };
    assert_eq!(scope("123456789012", "us-east-1")["volumes"], 1);
    assert_eq!(scope("222233334444", "us-east-1")["volumes"], 1);
    assert_eq!(
        scope("222233334444", "us-east-1")["targets"][0]["target"],
        "std/data"
    );
    assert_eq!(scope("222233334444", "us-west-2")["volumes"], 0);
    let denied = scope("555566667777", "us-east-1");
    assert!(
        denied["error"].as_str().unwrap().contains("AccessDenied"),
        "{denied}"
    );
    assert_eq!(
        denied["role_arn"],
        "arn:aws:iam::555566667777:role/ebssnap-audit"
    );
    assert_eq!(row(&r, &a_vol)["account"], "123456789012");
    assert_eq!(status(&r, &a_vol), "unprotected");
    assert_eq!(row(&r, &b_vol)["account"], "222233334444");
    assert_eq!(
        status(&r, &b_vol),
        "stale",
        "selected, no restore point yet"
    );
    assert!(
        !out.stdout.contains("ext-42"),
        "the external id is not echoed"
    );
    let text = ebssnap(&env, &["coverage", "--accounts", file.to_str().unwrap()]);
    assert!(
        text.stdout.contains(
            "NOT READ 555566667777/us-east-1 (role arn:aws:iam::555566667777:role/ebssnap-audit)"
        ) && text.stdout.contains("AccessDenied"),
        "{}",
        text.stdout
    );

    // Bad input: exit 2 with the line and what is wrong; an unknown Region.
    std::fs::write(
        &file,
        "123456789012 arn:aws:iam::123456789012:role/a\n42 nope\n",
    )
    .unwrap();
    let bad = ebssnap(
        &m.env(),
        &["coverage", "--accounts", file.to_str().unwrap()],
    );
    assert_eq!(bad.code, 2, "{}", bad.stderr);
    assert!(
        bad.stderr
            .contains("line 2: account id \"42\" is not 12 digits"),
        "{}",
        bad.stderr
    );
    let bad = ebssnap(
        &m.env(),
        &["coverage", "--regions", "us-east-1,mars-north-1"],
    );
    assert_eq!(bad.code, 2, "{}", bad.stderr);
    assert!(
        bad.stderr.contains("mars-north-1 is not a Region"),
        "{}",
        bad.stderr
    );
}

#[tokio::test]
async fn a_sweep_with_report_unprotected_raises_coverage_tickets_and_metrics() {
    use std::io::Read;
    let Some(m) = Moto::start() else { return };
    let c = m.clients().await;
    let receiver = crate::tickets::Receiver::start(vec![]);
    let kept = fleet::volume(&c, &[("Name", "kept")]).await;
    let mut pol = docs::policy("std", 7, 1);
    pol["report_unprotected"] = json!(true);
    pol["notify"] = json!({"webhook_url": receiver.url()});
    // Sweeps every minute, so that "since the previous sweep" is a minute.
    docs::store_policy_every(&c, &pol, "rate(1 minute)").await;
    docs::store_target(
        &c,
        &docs::target("std", "kept", json!({"volume_ids": [kept]})),
    )
    .await;
    let out = ebssnap(&m.env(), &["run", "--policy", "std", "--target", "kept"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let lonely = fleet::volume(&c, &[("Name", "lonely")]).await;
    let lonely_born = jiff::Timestamp::now();

    // The scheduled sweep, as Lambda: a coverage.unprotected ticket and the metrics line.
    let (port, answers) = crate::lambda::fake_runtime_api(vec![docs::with_run(
        pol.clone(),
        &jiff::Timestamp::now()
            .round(jiff::Unit::Minute)
            .unwrap()
            .to_string(),
    )]);
    let mut child = crate::lambda::as_lambda(Path::new(env!("CARGO_BIN_EXE_ebssnap")), &m, port)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start the bootstrap");
    let answer = answers
        .recv_timeout(std::time::Duration::from_secs(60))
        .expect("sweep answer");
    let _ = child.kill();
    let mut stdout = String::new();
    let _ = child.stdout.take().unwrap().read_to_string(&mut stdout);
    let _ = child.wait();
    let (_, kind, report) = &answer;
    assert_eq!(kind, "response", "{report}");
    assert_eq!(
        report["coverage"]["unprotected"][0]["volume_id"],
        json!(lonely),
        "{report}"
    );
    let emf: Value = stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|v| v.get("_aws").is_some())
        .unwrap_or_else(|| panic!("no metrics line:\n{stdout}"));
    assert_eq!(emf["UnprotectedVolumes"], 1, "{emf}");
    assert_eq!(emf["StaleVolumes"], 0);
    assert!(emf["OldestRestorePointAgeSeconds"].as_i64().unwrap() >= 0);
    let declared: Vec<&str> = emf["_aws"]["CloudWatchMetrics"][0]["Metrics"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|m| m["Name"].as_str())
        .collect();
    assert!(declared.contains(&"UnprotectedVolumes"), "{declared:?}");
    let tickets: Vec<Value> = receiver
        .received()
        .iter()
        .map(|g| serde_json::from_str(&g.body).unwrap())
        .collect();
    assert_eq!(tickets.len(), 1, "{tickets:?}");
    let t = &tickets[0];
    assert_eq!(t["event"], "coverage.unprotected");
    assert_eq!(t["severity"], "warning");
    let f = &t["failures"][0];
    assert_eq!(f["volume_id"], json!(lonely));
    assert_eq!(f["code"], "Unprotected");
    assert_eq!(f["category"], "configuration");
    let key = format!("std/coverage/{lonely}/unprotected");
    assert_eq!(f["problem_key"], json!(key));
    assert_eq!(
        t["failures"].as_array().unwrap().len(),
        1,
        "kept is protected"
    );

    // Selected and snapshotted: the next sweep sends coverage.recovered resolving that key.
    std::thread::sleep(std::time::Duration::from_secs(3));
    docs::store_target(
        &c,
        &docs::target("std", "lonely", json!({"volume_ids": [lonely]})),
    )
    .await;
    let out = ebssnap(&m.env(), &["run", "--policy", "std", "--target", "lonely"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    // The next sweep, a minute after the volume appeared (plus 2 s): the previous sweep saw it
    // without a restore point, this one sees its first.
    let next = (lonely_born + jiff::SignedDuration::from_secs(62)).to_string();
    let out = ebssnap(
        &m.env(),
        &["sweep", "--policy", "std", "--now", &next, "--json"],
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    let r = out.json();
    assert_eq!(r["coverage"]["unprotected"], json!([]), "{r}");
    assert_eq!(
        r["coverage"]["newly_protected"][0]["volume_id"],
        json!(lonely),
        "{r}"
    );
    let tickets: Vec<Value> = receiver
        .received()
        .iter()
        .map(|g| serde_json::from_str(&g.body).unwrap())
        .collect();
    let back = tickets
        .iter()
        .find(|t| t["event"] == "coverage.recovered")
        .unwrap_or_else(|| panic!("no coverage.recovered: {tickets:?}"));
    assert_eq!(back["severity"], "info");
    assert_eq!(back["resolves"], json!([key]));
    assert_eq!(
        back["recovered"].as_array().unwrap().len(),
        1,
        "kept was protected before the previous sweep: {back}"
    );
}
