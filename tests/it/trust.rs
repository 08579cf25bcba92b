//! What the Lambda trusts of an event (issue 25 items 1 and 2), through the fake Runtime API:
//! a run key its schedule could not have sent does nothing and pages nobody, and a ticket says
//! only what ebssnap knows.

use serde_json::{Value, json};

use crate::docs;
use crate::fleet;
use crate::lambda::answers_of;
use crate::moto::Moto;
use crate::tickets::Receiver;

fn shifted(t: &str, minutes: i64) -> String {
    let t: jiff::Timestamp = t.parse().unwrap();
    (t + jiff::SignedDuration::from_mins(minutes))
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

#[tokio::test]
async fn forged_run_keys_do_nothing_and_page_nobody() {
    let Some(m) = Moto::start() else { return };
    let c = m.clients().await;
    let vol = fleet::volume(&c, &[("Backup", "yes")]).await;
    let receiver = Receiver::start(vec![]);
    // At most two restore points: before the fix, three forged runs left no legitimate one.
    let mut pol = docs::policy("std", 14, 1);
    pol["retention"]["max_snapshots"] = json!(2);
    pol["notify"] = json!({"webhook_url": receiver.url()});
    docs::store_policy(&c, &pol).await;
    let tgt = docs::target("std", "web", json!({"volume_tags": {"Backup": "yes"}}));
    docs::store_target(&c, &tgt).await;

    let today = docs::recent_fire(0);
    let honest = docs::with_run(tgt.clone(), &today);
    let at = |t: &str| docs::with_run(tgt.clone(), t);
    let continuation = |link: u32, key: &str| {
        let mut e = tgt.clone();
        e["continuation"] = json!({"link": link, "run_key": key,
                                   "rates": {"CreateSnapshot": 1.0e9, "CreateSnapshots": 1.0e9}});
        e
    };
    let mut placeholder = tgt.clone();
    placeholder["invocation"] = json!({"scheduled_time": "<aws.scheduler.scheduled-time>"});
    let forged: Vec<(Value, &str)> = vec![
        (at(&shifted(&today, 24 * 60)), "in the future"),
        (at(&shifted(&today, 7)), "not a fire time"),
        (at(&shifted(&today, -10 * 24 * 60)), "older than"),
        (placeholder, "placeholder"),
        (at("yesterday"), "RFC 3339"),
        (tgt.clone(), "no scheduled time"),
        // A continuation of a run that never started, with a forged send rate.
        (
            continuation(2, &docs::recent_fire(1)),
            "no snapshot carries it",
        ),
        (continuation(3, "2026-01-01T00:00:17Z"), "older than"),
    ];
    let mut events = vec![honest];
    events.extend(forged.iter().map(|(e, _)| e.clone()));
    // Within Scheduler's delivery slack of today's fire: the same run, nothing new.
    events.push(at(&shifted(&today, 0).replace(":00Z", ":30Z")));

    let got = answers_of(&m, events);
    let (_, kind, first) = &got[0];
    assert_eq!(kind, "response", "{first}");
    assert_eq!(first["run_key"], today.as_str());
    assert_eq!(first["created"][0]["volume_id"], vol.as_str());
    let after_honest = fleet::snapshots(&c).await;
    assert_eq!(after_honest.len(), 1);

    for ((_, kind, answer), (event, why)) in got[1..].iter().zip(&forged) {
        assert_eq!(kind, "response", "a refused event succeeds: {answer}");
        assert_eq!(answer["kind"], "rejected_event", "{event}\n{answer}");
        let reason = answer["reason"].as_str().unwrap_or_default();
        assert!(reason.contains(why), "{why:?} not in {reason:?} ({event})");
    }
    let (_, kind, replay) = got.last().unwrap();
    assert_eq!(kind, "response", "{replay}");
    assert_eq!(
        replay["run_key"],
        today.as_str(),
        "normalised to the fire time"
    );
    assert_eq!(replay["created"].as_array().map(Vec::len), Some(0));
    assert_eq!(replay["skipped"][0]["volume_id"], vol.as_str());

    assert_eq!(
        fleet::snapshots(&c).await.keys().collect::<Vec<_>>(),
        after_honest.keys().collect::<Vec<_>>(),
        "no snapshot created or deleted by a refused event"
    );
    assert!(receiver.received().is_empty(), "a forger pages nobody");
}

#[tokio::test]
async fn tickets_carry_only_what_the_schedule_vouches_for() {
    let Some(m) = Moto::start() else { return };
    let c = m.clients().await;
    let receiver = Receiver::start(vec![]);
    let mut pol = docs::policy("std", 14, 1);
    pol["notify"] = json!({"webhook_url": receiver.url()});
    docs::store_policy(&c, &pol).await;
    // A target that always fails (the volume does not exist): every run raises a ticket.
    let tgt = docs::target(
        "std",
        "web",
        json!({"volume_ids": ["vol-0123456789abcdef0"]}),
    );
    docs::store_target(&c, &tgt).await;
    let real_arn = c
        .scheduler
        .get_schedule()
        .group_name("ebssnap-std")
        .name("web")
        .send()
        .await
        .expect("GetSchedule")
        .arn()
        .expect("the schedule's ARN")
        .to_string();

    let mut spoofed = docs::with_run(tgt.clone(), &docs::recent_fire(1));
    spoofed["invocation"]["schedule_arn"] =
        json!("arn:aws:scheduler:us-east-1:999999999999:schedule/ebssnap-std/web");
    spoofed["invocation"]["execution_id"] = json!("forged-execution");
    spoofed["invocation"]["attempt"] = json!("7");
    let mut vouched = docs::with_run(tgt.clone(), &docs::recent_fire(0));
    vouched["invocation"]["schedule_arn"] = json!(real_arn);
    vouched["invocation"]["execution_id"] = json!("exec-1");
    vouched["invocation"]["attempt"] = json!("1");

    let got = answers_of(&m, vec![spoofed, vouched]);
    let tickets = receiver.received();
    assert_eq!(tickets.len(), 2, "one ticket per failed run");

    let (_, kind, err) = &got[0];
    assert_eq!(kind, "error");
    let payload: Value = serde_json::from_str(err["errorMessage"].as_str().unwrap()).unwrap();
    let t = tickets[0].json();
    for ticket in [&t, &payload["ticket"]] {
        assert_eq!(
            ticket["account"], "123456789012",
            "the function's own account"
        );
        assert_eq!(ticket["run"]["key"], docs::recent_fire(1).as_str());
        for k in ["schedule_arn", "execution_id", "attempt"] {
            assert!(
                ticket["run"][k].is_null(),
                "spoofed {k} reached the ticket: {ticket}"
            );
        }
    }
    assert!(
        !tickets[0].body.contains("999999999999") && !tickets[0].body.contains("forged"),
        "{}",
        tickets[0].body
    );

    let (_, kind, _) = &got[1];
    assert_eq!(kind, "error");
    let t = tickets[1].json();
    assert_eq!(t["run"]["schedule_arn"], real_arn.as_str());
    assert_eq!(t["run"]["execution_id"], "exec-1");
    assert_eq!(t["run"]["attempt"], "1");
}
