//! Pacing mutating EC2 calls to the account's budget (DESIGN §5).
//!
//! EC2 throttles each API per account and region with a token bucket: a burst, then a few
//! requests per second. Measured against a model of that bucket (docs/benchmarks.md), the SDK's
//! standard retries collide with it (most attempts throttled) and its adaptive mode is far slower
//! than the bucket allows, so the runner paces its own sends: additive increase, multiplicative
//! decrease (AIMD) on the rate, fed by the throttled attempts the SDK interceptor counts. The SDK
//! still retries each throttled attempt; the pacer only decides when the next call starts.
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
const DECREASE: f64 = 0.6;
/// Without a throttle for a window, the rate grows by this fraction.
const INCREASE: f64 = 0.10;

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
        // One adjustment per window: concurrent calls throttled together are one signal.
        let window = Duration::from_secs_f64((4.0 / self.rate).clamp(0.05, 2.0));
        let settled = now.duration_since(self.last_change) >= window;
        if throttles > self.throttles_seen {
            self.throttles_seen = throttles;
            if settled {
                self.rate = (self.rate * DECREASE).max(MIN_RATE);
                self.last_change = now;
                // Let the bucket refill a little before the next send.
                self.next = self.next.max(now) + Duration::from_secs_f64(1.0 / self.rate);
            }
        } else if settled {
            self.rate = (self.rate * (1.0 + INCREASE)).min(MAX_RATE);
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
    pub fn new(op: &'static str, calls: &'a ApiCalls) -> Pacer<'a> {
        Pacer {
            op,
            calls,
            rate: Mutex::new(Rate::new(START_RATE, Instant::now())),
        }
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
        assert!((r.per_second() - 6.0).abs() < 1e-9);
        // More throttles inside the same window: one signal, no second cut.
        r.reserve(later + Duration::from_millis(10), 5);
        assert!((r.per_second() - 6.0).abs() < 1e-9);
        // A quiet window raises it again.
        r.reserve(later + Duration::from_secs(2), 5);
        assert!((r.per_second() - 6.6).abs() < 1e-9);
        // It never drops below the floor.
        let mut low = Rate::new(0.1, t0);
        low.reserve(later, 1);
        assert!(low.per_second() >= MIN_RATE);
    }
}
