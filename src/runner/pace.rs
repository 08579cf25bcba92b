//! Pacing mutating EC2 calls to the account's budget (DESIGN §5).
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

use crate::aws::ApiCalls;

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

    pub fn per_second(&self) -> f64 {
        self.rate
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
    /// A pacer starting at `rate` calls per second (`START_RATE`, or what the previous link of
    /// the run had reached).
    pub fn new(op: &'static str, calls: &'a ApiCalls, rate: f64) -> Pacer<'a> {
        Pacer {
            op,
            calls,
            rate: Mutex::new(Rate::new(rate, Instant::now())),
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

    /// Waits for this call's slot.
    pub async fn wait(&self) {
        let throttles = self.calls.throttled(self.op);
        let slot = match self.rate.lock() {
            Ok(mut r) => r.reserve(Instant::now(), throttles),
            Err(_) => return,
        };
        tokio::time::sleep_until(tokio::time::Instant::from_std(slot)).await;
    }
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
}
