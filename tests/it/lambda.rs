//! The same binary as a Lambda function (custom runtime), against a fake Runtime API on loopback.

use std::collections::VecDeque;
use std::io::Read;
use std::process::{Command, Stdio};
use std::sync::{Arc, Condvar, Mutex, mpsc};
use std::time::Duration;

use serde_json::{Value, json};

use crate::docs;
use crate::fleet;
use crate::moto::Moto;

/// What the function answered for one invocation: (request id, "response" | "error", body).
pub type Answer = (String, String, Value);

/// Serves `events` one by one on GET .../invocation/next and reports every answer.
pub fn fake_runtime_api(events: Vec<Value>) -> (u16, mpsc::Receiver<Answer>) {
    fake_runtime_api_with_deadline(events, 300_000)
}

/// The same, with every invocation's deadline `deadline_ms` from when it is handed out.
pub fn fake_runtime_api_with_deadline(
    events: Vec<Value>,
    deadline_ms: i64,
) -> (u16, mpsc::Receiver<Answer>) {
    fake_runtime_api_on(Queue::with(events), deadline_ms)
}

/// Pending invocations of the fake function: the Runtime API hands them out, the fake Invoke
/// endpoint (a continuing run) adds to them.
#[derive(Clone, Default)]
pub struct Queue(Arc<(Mutex<VecDeque<Value>>, Condvar)>);

impl Queue {
    pub fn with(events: Vec<Value>) -> Queue {
        let q = Queue::default();
        for e in events {
            q.push(e);
        }
        q
    }

    pub fn push(&self, event: Value) {
        let (lock, ready) = &*self.0;
        if let Ok(mut q) = lock.lock() {
            q.push_back(event);
        }
        ready.notify_all();
    }

    /// The next event, waiting up to `wait` for one.
    fn next(&self, wait: Duration) -> Option<Value> {
        let (lock, ready) = &*self.0;
        let q = lock.lock().ok()?;
        let (mut q, _) = ready.wait_timeout_while(q, wait, |q| q.is_empty()).ok()?;
        q.pop_front()
    }
}

/// The Runtime API over a shared queue: each invocation's deadline is `deadline_ms` from when
/// it is handed out.
pub fn fake_runtime_api_on(queue: Queue, deadline_ms: i64) -> (u16, mpsc::Receiver<Answer>) {
    let server = tiny_http::Server::http("127.0.0.1:0").expect("listen");
    let port = server.server_addr().to_ip().unwrap().port();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut n = 0;
        for mut req in server.incoming_requests() {
            let url = req.url().to_string();
            if url.ends_with("/runtime/invocation/next") {
                let Some(event) = queue.next(Duration::from_secs(30)) else {
                    // Nothing left: hold the poll; the test kills the function.
                    continue;
                };
                let deadline = (jiff::Timestamp::now().as_millisecond() + deadline_ms).to_string();
                let h = |k: &str, v: &str| tiny_http::Header::from_bytes(k, v).unwrap();
                let resp = tiny_http::Response::from_string(event.to_string())
                    .with_header(h("Content-Type", "application/json"))
                    .with_header(h("Lambda-Runtime-Aws-Request-Id", &format!("req-{n}")))
                    .with_header(h("Lambda-Runtime-Deadline-Ms", &deadline))
                    .with_header(h("Lambda-Runtime-Invoked-Function-Arn", FUNCTION_ARN));
                n += 1;
                let _ = req.respond(resp);
            } else if let Some(rest) = url.strip_prefix("/2018-06-01/runtime/invocation/") {
                let mut body = String::new();
                let _ = req.as_reader().read_to_string(&mut body);
                let (id, kind) = rest.split_once('/').unwrap_or((rest, ""));
                let value = serde_json::from_str(&body).unwrap_or(Value::String(body));
                let _ = tx.send((id.to_string(), kind.to_string(), value));
                let _ = req.respond(tiny_http::Response::from_string("{}").with_status_code(202));
            } else {
                let _ = req
                    .respond(tiny_http::Response::from_string("not found").with_status_code(404));
            }
        }
    });
    (port, rx)
}

/// The function's ARN, as the fake Runtime API reports it.
pub const FUNCTION_ARN: &str = "arn:aws:lambda:us-east-1:123456789012:function:ebssnap";

/// The (function, invocation type) of each call the fake Invoke endpoint received.
/// Each Invoke: the function, the invocation type and the event.
pub type InvokeCalls = Arc<Mutex<Vec<(String, String, serde_json::Value)>>>;

/// A fake Lambda `Invoke` endpoint on loopback (moto cannot run a function): an asynchronous
/// invocation (`X-Amz-Invocation-Type: Event`) of any function queues its payload for the fake
/// Runtime API. Returns the port and the (function, invocation type) of each call.
pub fn fake_invoke_endpoint(queue: Queue) -> (u16, InvokeCalls) {
    let server = tiny_http::Server::http("127.0.0.1:0").expect("listen");
    let port = server.server_addr().to_ip().unwrap().port();
    let calls = Arc::new(Mutex::new(Vec::new()));
    let seen = calls.clone();
    std::thread::spawn(move || {
        for mut req in server.incoming_requests() {
            let url = req.url().to_string();
            let function = url
                .strip_prefix("/2015-03-31/functions/")
                .and_then(|r| r.strip_suffix("/invocations"))
                .map(|f| f.replace("%3A", ":"));
            let kind = req
                .headers()
                .iter()
                .find(|h| h.field.equiv("X-Amz-Invocation-Type"))
                .map(|h| h.value.to_string())
                .unwrap_or_default();
            let mut body = String::new();
            let _ = req.as_reader().read_to_string(&mut body);
            let Some(function) = function else {
                let _ = req.respond(tiny_http::Response::from_string("{}").with_status_code(404));
                continue;
            };
            let event: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
            seen.lock().unwrap().push((function, kind, event.clone()));
            if !event.is_null() {
                queue.push(event);
            }
            let _ = req.respond(tiny_http::Response::from_string("").with_status_code(202));
        }
    });
    (port, calls)
}

/// `program` as a Lambda function in an otherwise empty environment: the Runtime API on `port`,
/// the function's variables, and moto's endpoint and credentials.
pub fn as_lambda(program: &std::path::Path, m: &Moto, port: u16) -> Command {
    let mut c = Command::new(program);
    c.env_clear()
        .envs(m.env())
        .env("AWS_LAMBDA_RUNTIME_API", format!("127.0.0.1:{port}"))
        .env("AWS_LAMBDA_FUNCTION_NAME", "ebssnap")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256")
        .env("AWS_LAMBDA_LOG_GROUP_NAME", "/aws/lambda/ebssnap")
        .env("AWS_LAMBDA_LOG_STREAM_NAME", "test")
        .stdout(Stdio::null());
    c
}

/// Runs `events` through one bootstrap process (the function as Lambda) and returns its
/// answers, in order; panics with the function's stderr when one does not come.
pub fn answers_of(m: &Moto, events: Vec<Value>) -> Vec<Answer> {
    let n = events.len();
    let (port, answers) = fake_runtime_api(events);
    let mut child = as_lambda(std::path::Path::new(env!("CARGO_BIN_EXE_ebssnap")), m, port)
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the bootstrap");
    let mut got = Vec::new();
    for _ in 0..n {
        match answers.recv_timeout(Duration::from_secs(60)) {
            Ok(a) => got.push(a),
            Err(e) => {
                let _ = child.kill();
                let mut err = String::new();
                if let Some(mut s) = child.stderr.take() {
                    let _ = s.read_to_string(&mut err);
                }
                panic!("no answer from the function ({e}); stderr:\n{err}");
            }
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    got
}

/// Runs the binary as a Lambda function for one `event` with `deadline_ms` and extra `env`,
/// and returns its answer (or why there was none) and its stderr.
pub fn invoke_once(
    m: &Moto,
    event: Value,
    deadline_ms: i64,
    env: &[(&str, &str)],
    wait: Duration,
) -> (Result<Answer, mpsc::RecvTimeoutError>, String) {
    let (port, answers) = fake_runtime_api_with_deadline(vec![event], deadline_ms);
    let mut child = as_lambda(std::path::Path::new(env!("CARGO_BIN_EXE_ebssnap")), m, port)
        .envs(env.iter().copied())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the bootstrap");
    let answer = answers.recv_timeout(wait);
    let _ = child.kill();
    let mut stderr = String::new();
    if let Some(mut e) = child.stderr.take() {
        let _ = e.read_to_string(&mut stderr);
    }
    let _ = child.wait();
    (answer, stderr)
}

#[tokio::test]
async fn the_binary_serves_lambda_invocations_with_typed_errors() {
    let Some(m) = Moto::start() else { return };
    let c = m.clients().await;
    let vol = fleet::volume(&c, &[("Backup", "yes")]).await;
    let pol = docs::policy("std", 14, 1);
    docs::store_policy(&c, &pol).await;
    let mut placeholders = docs::target("std", "web", json!({"volume_tags": {"Backup": "yes"}}));
    docs::store_target(&c, &placeholders).await;
    let run = docs::recent_fire(0);
    placeholders["invocation"] = json!({"scheduled_time": run, "execution_id": "e-1",
                                         "attempt": "1", "schedule_arn": "arn:aws:scheduler:us-east-1:123456789012:schedule/ebssnap-std/web"});
    let mut bad = placeholders.clone();
    bad["select"]["volume_tagz"] = json!({});
    let sweep = docs::with_run(pol.clone(), &run);
    let events = vec![placeholders.clone(), bad, sweep, placeholders];
    let got = answers_of(&m, events);

    let (id, kind, report) = &got[0];
    assert_eq!((id.as_str(), kind.as_str()), ("req-0", "response"));
    assert_eq!(report["run_key"], run.as_str());
    assert_eq!(report["created"][0]["volume_id"], vol.as_str());

    let (id, kind, err) = &got[1];
    assert_eq!((id.as_str(), kind.as_str()), ("req-1", "error"));
    assert_eq!(err["errorType"], "NonRetryable");
    assert!(
        err["errorMessage"]
            .as_str()
            .unwrap()
            .contains("volume_tagz")
    );

    let (_, kind, sweep) = &got[2];
    assert_eq!(kind, "response");
    assert_eq!(sweep["kind"], "sweep");

    // A redelivery of the same scheduled time creates nothing (Scheduler is at-least-once).
    let (_, kind, again) = &got[3];
    assert_eq!(kind, "response");
    assert_eq!(again["created"].as_array().unwrap().len(), 0);
    assert_eq!(again["skipped"][0]["volume_id"], vol.as_str());
}
