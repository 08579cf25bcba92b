//! What the Lambda accepts from an event's invocation (docs/design.md, "What the runner trusts").
//!
//! Anyone allowed to invoke the function can send any event. The documents are re-read from
//! Scheduler, but the scheduled time becomes the run key, and the run key decides what is
//! "already snapshotted" and which restore points exist: a forged one could skip a real run (a
//! key in the future) or mint extra restore points that push the real ones past
//! `max_snapshots`. So the Lambda checks the scheduled time against the schedule it re-read:
//!
//! - present, substituted and RFC 3339;
//! - not in the future beyond [`CLOCK_SKEW`];
//! - not older than the schedule's interval + its flexible window + its retry window (maximum
//!   event age) + Lambda's asynchronous queue ([`ASYNC_QUEUE`]), plus [`PER_LINK`] per
//!   continuation link;
//! - for `cron()` and `at()`: within the flexible window (+ [`DELIVERY_SLACK`]) after a fire
//!   time of that schedule, and the run key is that fire time, so every time near one fire is
//!   the same run. `rate()` schedules have no published anchor (AWS only promises one-minute
//!   precision), so for them only the two bounds above apply.
//!
//! A refused event does nothing; the caller reports it as `rejected_event` and raises no ticket.

use jiff::{SignedDuration, Timestamp, tz::TimeZone};

use super::schedule::{self, Expression};

/// How far in the future a scheduled time may be (clock skew between Scheduler and Lambda).
pub const CLOCK_SKEW: SignedDuration = SignedDuration::from_mins(5);
/// How long Lambda keeps an asynchronous event before it gives up (its maximum event age).
pub const ASYNC_QUEUE: SignedDuration = SignedDuration::from_hours(6);
/// Scheduler's default retry window when a schedule sets none (24 hours).
pub const DEFAULT_EVENT_AGE: SignedDuration = SignedDuration::from_hours(24);
/// What one continuation link may add to a run's age (a Lambda runs at most 15 minutes).
pub const PER_LINK: SignedDuration = SignedDuration::from_mins(15);
/// Scheduler's delivery precision: a scheduled time may trail its fire time by this much.
pub const DELIVERY_SLACK: SignedDuration = SignedDuration::from_secs(60);

/// What the runner re-read about the schedule that supposedly sent the event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScheduleFacts {
    pub expression: String,
    pub timezone: String,
    /// 0 when the flexible window is off.
    pub flexible_window_minutes: i32,
    /// The schedule's retry window; 0 or less means Scheduler's default.
    pub max_event_age_seconds: i32,
    /// The schedule's ARN, when Scheduler returned it.
    pub arn: Option<String>,
}

/// Checks an event's scheduled time (`raw`, as the event carries it) for link `link` of a run,
/// and returns the run key to use. `Err` is the reason the event is refused.
pub fn check_scheduled_time(
    raw: Option<&str>,
    facts: &ScheduleFacts,
    link: u32,
    now: Timestamp,
) -> Result<String, String> {
    let Some(raw) = raw.filter(|s| !s.is_empty()) else {
        return Err("the event carries no scheduled time".into());
    };
    if raw.starts_with("<aws.scheduler.") {
        return Err(format!(
            "the scheduled time {raw:?} is an un-substituted placeholder: only EventBridge \
             Scheduler's deliveries are accepted (run by hand with `ebssnap run`)"
        ));
    }
    let t: Timestamp = raw
        .parse()
        .map_err(|_| format!("the scheduled time {raw:?} is not an RFC 3339 time"))?;
    if t > now + CLOCK_SKEW {
        return Err(format!(
            "the scheduled time {raw} is in the future (now {now})"
        ));
    }
    let expr = schedule::parse(&facts.expression).map_err(|e| {
        format!(
            "the schedule's expression {:?} cannot be read: {e}",
            facts.expression
        )
    })?;
    let tz = TimeZone::get(&facts.timezone)
        .map_err(|_| format!("the schedule's time zone {:?} is unknown", facts.timezone))?;
    let window = SignedDuration::from_mins(i64::from(facts.flexible_window_minutes.max(0)));
    let event_age = match facts.max_event_age_seconds {
        s if s > 0 => SignedDuration::from_secs(i64::from(s)),
        _ => DEFAULT_EVENT_AGE,
    };
    let interval = schedule::interval(&expr, &tz, t).unwrap_or(SignedDuration::ZERO);
    let links = PER_LINK
        * i32::try_from(link.saturating_sub(1))
            .unwrap_or(i32::MAX / 2)
            .min(64);
    let oldest = interval + window + event_age + ASYNC_QUEUE + links + DELIVERY_SLACK;
    if now.duration_since(t) > oldest {
        return Err(format!(
            "the scheduled time {raw} is older than this schedule can deliver ({} ago, at most {})",
            human(now.duration_since(t)),
            human(oldest)
        ));
    }
    match expr {
        Expression::Rate { .. } => Ok(raw.to_string()),
        Expression::Cron(_) | Expression::At(_) => {
            let earliest = t - window - DELIVERY_SLACK - SignedDuration::from_secs(1);
            let fire = schedule::next_fires(&expr, &tz, earliest, 1)
                .into_iter()
                .find(|f| *f <= t);
            match fire {
                Some(f) => Ok(f.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()),
                None => Err(format!(
                    "the scheduled time {raw} is not a fire time of {} in {}",
                    facts.expression, facts.timezone
                )),
            }
        }
    }
}

fn human(d: SignedDuration) -> String {
    let m = d.as_secs() / 60;
    if m < 120 {
        format!("{m} min")
    } else {
        format!("{:.1} h", d.as_secs_f64() / 3600.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts(expr: &str, window: i32) -> ScheduleFacts {
        ScheduleFacts {
            expression: expr.into(),
            timezone: "UTC".into(),
            flexible_window_minutes: window,
            max_event_age_seconds: 0,
            arn: None,
        }
    }

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    const DAILY: &str = "cron(0 5 * * ? *)";

    #[test]
    fn a_fire_time_of_the_schedule_is_its_own_run_key() {
        let now = ts("2026-11-26T05:00:30Z");
        let key =
            check_scheduled_time(Some("2026-11-26T05:00:00Z"), &facts(DAILY, 0), 1, now).unwrap();
        assert_eq!(key, "2026-11-26T05:00:00Z");
        // Yesterday's run retried by Scheduler and queued by Lambda is still accepted.
        let key = check_scheduled_time(
            Some("2026-11-25T05:00:00Z"),
            &facts(DAILY, 0),
            1,
            ts("2026-11-26T20:00:00Z"),
        )
        .unwrap();
        assert_eq!(key, "2026-11-25T05:00:00Z");
    }

    #[test]
    fn times_that_are_not_fire_times_are_refused() {
        let now = ts("2026-11-26T12:00:00Z");
        for t in [
            "2026-11-26T05:07:00Z",
            "2026-11-26T04:59:59Z",
            "2026-11-26T11:00:00Z",
        ] {
            let e = check_scheduled_time(Some(t), &facts(DAILY, 0), 1, now).unwrap_err();
            assert!(e.contains("not a fire time"), "{t}: {e}");
        }
    }

    #[test]
    fn a_time_inside_the_flexible_window_is_the_run_of_that_fire() {
        let now = ts("2026-11-26T06:00:00Z");
        for t in [
            "2026-11-26T05:00:00Z",
            "2026-11-26T05:14:10Z",
            "2026-11-26T05:30:59Z",
        ] {
            let key = check_scheduled_time(Some(t), &facts(DAILY, 30), 1, now).unwrap();
            assert_eq!(key, "2026-11-26T05:00:00Z", "{t}");
        }
        assert!(
            check_scheduled_time(Some("2026-11-26T05:32:00Z"), &facts(DAILY, 30), 1, now).is_err()
        );
    }

    #[test]
    fn future_old_placeholder_and_malformed_times_are_refused() {
        let now = ts("2026-11-26T05:00:00Z");
        let f = facts(DAILY, 0);
        let future = check_scheduled_time(Some("2026-11-27T05:00:00Z"), &f, 1, now).unwrap_err();
        assert!(future.contains("in the future"), "{future}");
        // Within the clock skew is fine.
        assert!(
            check_scheduled_time(
                Some("2026-11-26T05:00:00Z"),
                &f,
                1,
                now - SignedDuration::from_mins(4)
            )
            .is_ok()
        );
        let old = check_scheduled_time(Some("2026-11-20T05:00:00Z"), &f, 1, now).unwrap_err();
        assert!(old.contains("older than"), "{old}");
        let ph =
            check_scheduled_time(Some("<aws.scheduler.scheduled-time>"), &f, 1, now).unwrap_err();
        assert!(ph.contains("placeholder"), "{ph}");
        assert!(check_scheduled_time(None, &f, 1, now).is_err());
        assert!(check_scheduled_time(Some(""), &f, 1, now).is_err());
        let bad = check_scheduled_time(Some("yesterday"), &f, 1, now).unwrap_err();
        assert!(bad.contains("RFC 3339"), "{bad}");
    }

    #[test]
    fn later_links_may_be_older_by_a_lambda_run_each() {
        let f = facts("rate(1 hour)", 0);
        let t = ts("2026-11-26T00:00:00Z");
        // 1 h interval + 24 h retry + 6 h queue + 1 min slack.
        let edge = t + SignedDuration::from_hours(31) + SignedDuration::from_mins(2);
        assert!(check_scheduled_time(Some("2026-11-26T00:00:00Z"), &f, 1, edge).is_err());
        assert!(check_scheduled_time(Some("2026-11-26T00:00:00Z"), &f, 2, edge).is_ok());
    }

    #[test]
    fn rate_schedules_keep_the_time_as_sent() {
        let now = ts("2026-11-26T05:00:00Z");
        let key = check_scheduled_time(
            Some("2026-11-26T04:59:43Z"),
            &facts("rate(1 day)", 0),
            1,
            now,
        )
        .unwrap();
        assert_eq!(key, "2026-11-26T04:59:43Z");
    }

    #[test]
    fn an_at_schedule_accepts_only_its_one_time() {
        let f = facts("at(2026-11-26T05:00:00)", 0);
        let now = ts("2026-11-26T06:00:00Z");
        assert!(check_scheduled_time(Some("2026-11-26T05:00:00Z"), &f, 1, now).is_ok());
        assert!(check_scheduled_time(Some("2026-11-26T05:10:00Z"), &f, 1, now).is_err());
    }

    #[test]
    fn a_time_zone_moves_the_fire_times() {
        let f = ScheduleFacts {
            timezone: "Europe/Berlin".into(),
            ..facts(DAILY, 0)
        };
        let now = ts("2026-11-26T06:00:00Z");
        // 05:00 in Berlin (UTC+1 in November) is 04:00Z.
        assert!(check_scheduled_time(Some("2026-11-26T04:00:00Z"), &f, 1, now).is_ok());
        assert!(check_scheduled_time(Some("2026-11-26T05:00:00Z"), &f, 1, now).is_err());
    }
}
