//! Pacing mutating EC2 calls to the account's budget (docs/design.md §5).
//!
//! EC2 throttles each API per account and region with a token bucket: a burst, then a few
//! requests per second. Measured against a model of that bucket (docs/benchmarks.md), the SDK's
//! standard retries collide with it (most attempts throttled) and its adaptive mode is far slower
//! than the bucket allows, so the runner paces its own sends: a slow, time-based increase and a
//! multiplicative decrease (AIMD) on the rate, fed by the throttled attempts the SDK interceptor
//! counts.
//! Mutating calls are not retried by the SDK (see `aws::Clients::ec2_writes`): every attempt,
//! retries included, waits for its slot here.
//! One pacer per operation (EC2 has a bucket per API).

use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::exactly_once::Tally;
use super::options::RunOptions;
use crate::aws::ApiCalls;
use crate::error::AwsError;

/// The rate a run starts at (calls per second): high, so a large run uses the account's burst;
/// the first throttles bring it down to the refill rate within a few seconds.
pub const START_RATE: f64 = 50.0;
const MIN_RATE: f64 = 0.5;
const MAX_RATE: f64 = 500.0;
/// On a throttle the rate is multiplied by this (at most once per adjustment window).
const DECREASE: f64 = 0.8;
/// Per second without a throttle, the rate grows by this fraction.
const INCREASE_PER_SECOND: f64 = 0.05;
/// The shortest adjustment window: throttles within it are one signal.
const MIN_WINDOW: Duration = Duration::from_millis(250);

/// The pure AIMD rate: decisions depend only on the time and the throttle count given.
#[derive(Debug, Clone)]
pub struct Rate {
    rate: f64,
    next: Instant,
    throttles_seen: u64,
    last_change: Instant,
}

impl Rate {
    pub fn new(rate: f64, now: Instant) -> Rate {
        Rate {
            rate: rate.clamp(MIN_RATE, MAX_RATE),
            next: now,
            throttles_seen: 0,
            last_change: now,
        }
    }

    /// The current send rate.
    pub fn per_second(&self) -> f64 {
        self.rate
    }

    /// When the next call could be sent (without reserving it).
    fn next_slot(&self, now: Instant) -> Instant {
        self.next.max(now)
    }

    /// Adjusts the rate to the throttles seen so far, and reserves the next send slot.
    pub fn reserve(&mut self, now: Instant, throttles: u64) -> Instant {
        let since = now.duration_since(self.last_change);
        // Throttles within one window (a few sends) are one signal, not one per refused call.
        let window = Duration::from_secs_f64(4.0 / self.rate).max(MIN_WINDOW);
        if throttles > self.throttles_seen {
            self.throttles_seen = throttles;
            if since >= window {
                self.rate = (self.rate * DECREASE).max(MIN_RATE);
                self.last_change = now;
                // Let the bucket refill a little before the next send.
                self.next = self.next.max(now) + Duration::from_secs_f64(1.0 / self.rate);
            }
        } else if since >= Duration::from_secs(1) {
            // Additive-style increase, by time: a quiet second raises the rate 5%.
            let grow = (1.0 + INCREASE_PER_SECOND).powf(since.as_secs_f64().min(10.0));
            self.rate = (self.rate * grow).min(MAX_RATE);
            self.last_change = now;
        }
        let slot = self.next.max(now);
        self.next = slot + Duration::from_secs_f64(1.0 / self.rate);
        slot
    }
}

/// A pacer for one operation of one run.
pub struct Pacer<'a> {
    op: &'static str,
    calls: &'a ApiCalls,
    rate: Mutex<Rate>,
}

impl<'a> Pacer<'a> {
    /// A pacer starting at `rate` calls per second.
    pub fn new(op: &'static str, calls: &'a ApiCalls, rate: f64) -> Pacer<'a> {
        Pacer {
            op,
            calls,
            rate: Mutex::new(Rate::new(rate, Instant::now())),
        }
    }

    /// The pacer of a run's next link: it starts at `carried`, the rate the previous link had
    /// reached, but never above `START_RATE`, and cuts at its first throttle like any pacer. The
    /// marker travels in an event anyone allowed to invoke the function can forge, so it may only
    /// slow a run down, never raise its pressure on the account's EC2 budget. (Sending above the
    /// carried rate until the first throttle, to spend the bucket refilled between links, was
    /// measured to gain nothing: docs/benchmarks.md.)
    pub fn for_link(op: &'static str, calls: &'a ApiCalls, carried: Option<f64>) -> Pacer<'a> {
        let now = Instant::now();
        let rate = Rate::new(carried.unwrap_or(START_RATE).min(START_RATE), now);
        Pacer {
            op,
            calls,
            rate: Mutex::new(rate),
        }
    }

    pub fn op(&self) -> &'static str {
        self.op
    }

    /// The rate reached so far (calls per second).
    pub fn per_second(&self) -> f64 {
        self.rate
            .lock()
            .map(|r| r.per_second())
            .unwrap_or(START_RATE)
    }

    /// Waits for this call's slot; `false` (nothing reserved, no wait) when that slot would
    /// come at or after `stop_at`: a call queued behind a slow pace must not be sent past the
    /// run's margin, where it could outlive the Lambda invocation.
    pub async fn wait(&self, stop_at: Option<Instant>) -> bool {
        let throttles = self.calls.throttled(self.op);
        let slot = match self.rate.lock() {
            Ok(mut r) => {
                let now = Instant::now();
                if stop_at.is_some_and(|t| r.next_slot(now) >= t) {
                    return false;
                }
                r.reserve(now, throttles)
            }
            Err(_) => return true,
        };
        tokio::time::sleep_until(tokio::time::Instant::from_std(slot)).await;
        true
    }
}

/// The code of a call that was never sent because the run's time ran out: nothing was done, so
/// the volume is handed to the next link (or reported `NotStarted`), never retried blind.
pub const NOT_STARTED: &str = "NotStarted";

fn not_started(what: &str) -> AwsError {
    AwsError {
        action: format!("calling AWS for {what}"),
        code: NOT_STARTED.into(),
        message: "not sent: the run's time ran out before its slot".into(),
        retryable: true,
        ambiguous: false,
    }
}

/// How [`paced`] treats a failure whose outcome is unknown ([`AwsError::ambiguous`]).
#[derive(Clone, Copy)]
pub(super) enum Repeat<'a> {
    /// Sending the call again is harmless (a delete: `NotFound` on the retry is success): it is
    /// retried like any retryable error, and counted.
    Harmless(&'a Tally),
    /// Sending it again could act twice (a creation): it returns at once, for the caller to
    /// look up what AWS did before it sends again (`runner::exactly_once`).
    LookFirst,
}

/// Calls `call` in `pacer`'s slots, retrying what AWS refused and asks to retry (throttling,
/// per-volume limits, and the ambiguous failures of harmless calls) up to `opts.create_attempts`
/// times. Mutating calls go through a client without SDK retries, so that every attempt, retries
/// included, is paced and counted; a volume's own rate limit also waits a backoff of its own.
/// No retry is started past `stop_at`.
pub(super) async fn paced<T, F, Fut>(
    pacer: &Pacer<'_>,
    opts: &RunOptions,
    what: &str,
    repeat: Repeat<'_>,
    mut call: F,
) -> Result<T, AwsError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, AwsError>>,
{
    let mut attempt = 1;
    loop {
        if !pacer.wait(opts.stop_at).await {
            return Err(not_started(what));
        }
        match call().await {
            Ok(v) => return Ok(v),
            Err(e) if e.ambiguous && matches!(repeat, Repeat::LookFirst) => return Err(e),
            Err(e) if e.retryable && attempt < opts.create_attempts => {
                if opts.out_of_time() {
                    if let (true, Repeat::Harmless(tally)) = (e.ambiguous, repeat) {
                        tally.unresolved();
                        return Err(e);
                    }
                    // Refused (throttled): nothing was done; the time is up.
                    return Err(not_started(what));
                }
                if let (true, Repeat::Harmless(tally)) = (e.ambiguous, repeat) {
                    tally.sent_again();
                }
                if per_volume_limit(&e.code) {
                    let wait = backoff(opts.backoff, attempt);
                    if opts.stop_at.is_some_and(|t| Instant::now() + wait >= t) {
                        return Err(e);
                    }
                    tokio::time::sleep(wait).await;
                }
                tracing::debug!(%what, code = %e.code, attempt, "retrying");
                attempt += 1;
            }
            Err(e) => {
                if let (true, Repeat::Harmless(tally)) = (e.ambiguous, repeat) {
                    tally.unresolved();
                }
                return Err(e);
            }
        }
    }
}

/// Limits of one volume (or of the account's concurrent snapshots): wait before the next try.
fn per_volume_limit(code: &str) -> bool {
    matches!(
        code,
        "SnapshotCreationPerVolumeRateExceeded" | "ConcurrentSnapshotLimitExceeded"
    )
}

/// Exponential backoff with jitter, at most 30 s.
fn backoff(base: Duration, attempt: u32) -> Duration {
    let exp = base
        .saturating_mul(1 << attempt.min(6))
        .min(Duration::from_secs(30));
    // Cheap jitter (up to a quarter of the wait) without a random-number crate.
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    exp + exp.mul_f64(f64::from(nanos % 1000) / 4000.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_spaced_by_the_rate() {
        let t0 = Instant::now();
        let mut r = Rate::new(10.0, t0);
        let a = r.reserve(t0, 0);
        let b = r.reserve(t0, 0);
        assert_eq!(a, t0);
        assert_eq!(b.duration_since(a), Duration::from_millis(100));
    }

    #[test]
    fn throttles_decrease_the_rate_once_per_window_and_quiet_raises_it() {
        let t0 = Instant::now();
        let mut r = Rate::new(10.0, t0);
        let later = t0 + Duration::from_secs(1);
        r.reserve(later, 3);
        assert!((r.per_second() - 8.0).abs() < 1e-9);
        // More throttles inside the same window: one signal, no second cut.
        r.reserve(later + Duration::from_millis(10), 5);
        assert!((r.per_second() - 8.0).abs() < 1e-9);
        // A quiet second raises it 5%; half a second does nothing yet.
        r.reserve(later + Duration::from_millis(500), 5);
        assert!((r.per_second() - 8.0).abs() < 1e-9);
        r.reserve(later + Duration::from_secs(1), 5);
        assert!((r.per_second() - 8.4).abs() < 1e-9);
        // It never drops below the floor.
        let mut low = Rate::new(0.1, t0);
        low.reserve(later, 1);
        assert!(low.per_second() >= MIN_RATE);
    }

    /// A call queued behind a slow pace is not sent past `stop_at`: it comes back `NotStarted`
    /// at once, without waiting for its slot.
    #[tokio::test]
    async fn no_call_is_sent_after_the_stop_time() {
        let calls = ApiCalls::default();
        let pacer = Pacer::new("CreateSnapshot", &calls, 2.0);
        let stop = Instant::now() + Duration::from_millis(300);
        let opts = RunOptions {
            stop_at: Some(stop),
            ..RunOptions::default()
        };
        let sent = Mutex::new(Vec::new());
        let started = Instant::now();
        let results = futures::future::join_all((0..5).map(|i| {
            let (pacer, opts, sent) = (&pacer, &opts, &sent);
            async move {
                paced(
                    pacer,
                    opts,
                    &format!("vol-{i}"),
                    Repeat::LookFirst,
                    || async {
                        if let Ok(mut s) = sent.lock() {
                            s.push(Instant::now());
                        }
                        Ok::<_, AwsError>(())
                    },
                )
                .await
            }
        }))
        .await;
        let sent = sent.into_inner().unwrap();
        // At 2/s: slots at 0 and 500 ms; only the first is before the stop.
        assert_eq!(sent.len(), 1, "{sent:?}");
        assert!(sent.iter().all(|t| *t < stop));
        let not_started = results
            .iter()
            .filter(|r| matches!(r, Err(e) if e.code == NOT_STARTED))
            .count();
        assert_eq!(not_started, 4);
        assert!(
            started.elapsed() < Duration::from_millis(300),
            "refused calls do not wait for their slot"
        );
    }

    /// The flaky chain of issue 24 item 6: a call throttled just after the stop time used to end
    /// as a failure (a function error, and a volume neither snapshotted nor handed on). Refused
    /// means nothing was done: it is `NotStarted`, so the link hands it on.
    #[tokio::test]
    async fn a_call_throttled_after_the_stop_time_is_handed_on_not_failed() {
        let calls = ApiCalls::default();
        let pacer = Pacer::new("CreateSnapshot", &calls, 50.0);
        let opts = RunOptions {
            stop_at: Some(Instant::now() + Duration::from_millis(50)),
            ..RunOptions::default()
        };
        let r: Result<(), AwsError> = paced(&pacer, &opts, "vol-1", Repeat::LookFirst, || async {
            tokio::time::sleep(Duration::from_millis(100)).await;
            Err(AwsError {
                action: "creating EBS snapshot of vol-1".into(),
                code: "RequestLimitExceeded".into(),
                message: "Request limit exceeded.".into(),
                retryable: true,
                ambiguous: false,
            })
        })
        .await;
        assert_eq!(r.map_err(|e| e.code), Err(NOT_STARTED.to_string()));
    }

    #[test]
    fn a_forged_carried_rate_starts_at_most_at_the_default_and_is_cut_at_the_first_throttle() {
        let calls = ApiCalls::default();
        let forged = Pacer::for_link("CreateSnapshot", &calls, Some(10_000.0));
        assert_eq!(forged.per_second(), START_RATE);
        let slower = Pacer::for_link("CreateSnapshot", &calls, Some(12.5));
        assert_eq!(slower.per_second(), 12.5);
        let t0 = Instant::now();
        let mut r = Rate::new(10_000.0_f64.min(START_RATE), t0);
        r.reserve(t0, 0);
        r.reserve(t0 + Duration::from_secs(1), 1);
        assert!(
            (r.per_second() - START_RATE * DECREASE).abs() < 1e-9,
            "{}",
            r.per_second()
        );
    }
}
