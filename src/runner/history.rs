//! The target's history (its snapshots, read for pruning) listed beside a link's creations
//! (docs/design.md §5).
//!
//! Only the link that finishes the run's creations prunes, and listing a large target's history
//! takes seconds (pages of `DescribeSnapshots`). Once the inventory is read, a link that cannot
//! hand off (no chain, or the last allowed link) starts that listing at once, beside its
//! creations; a link that could hand off starts it when its creations, at the pace they have
//! gone so far (once at least 20 volumes have finished over 5 s), look set to end within half the time
//! left before its deadline. A link that hands off after all drops its listing. What the link created meanwhile may or may not be in the
//! listing: the prune counts it as pending either way.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use tracing::info;

use super::options::RunOptions;
use crate::aws::Clients;
use crate::aws::ec2::{self, ManagedSnapshot};
use crate::error::Error;

/// How often a link that could still hand off asks whether its creations will end in time.
const RECHECK: Duration = Duration::from_secs(1);

/// The pace of a link's creations is trusted once this many volumes have finished over at least
/// [`PACE_TIME`]: a short link's first few creations say little about its next ones.
const PACE_VOLUMES: usize = 20;
const PACE_TIME: Duration = Duration::from_secs(5);

/// How far a link's creations have come, in volumes: those the read handed on, and those with
/// an outcome (created, failed, or found done already; not those left unstarted).
#[derive(Default)]
pub(super) struct Progress {
    volumes: AtomicUsize,
    finished: AtomicUsize,
    first: Mutex<Option<Instant>>,
    /// The history listing was started (its result is worth waiting for).
    listing: AtomicBool,
}

impl Progress {
    /// The read is over: it handed on `volumes` volumes in all.
    pub(super) fn read(&self, volumes: usize) {
        self.volumes.store(volumes, Ordering::Relaxed);
    }

    /// The creations took their first batch.
    pub(super) fn started(&self) {
        if let Ok(mut first) = self.first.lock() {
            first.get_or_insert_with(Instant::now);
        }
    }

    pub(super) fn finished(&self, volumes: usize) {
        self.finished.fetch_add(volumes, Ordering::Relaxed);
    }

    /// Whether the history listing was started.
    pub(super) fn listing(&self) -> bool {
        self.listing.load(Ordering::Relaxed)
    }

    fn ends_before(&self, stop_at: Instant) -> bool {
        let now = Instant::now();
        let since = self
            .first
            .lock()
            .ok()
            .and_then(|f| *f)
            .map_or(Duration::ZERO, |f| now - f);
        let volumes = self.volumes.load(Ordering::Relaxed);
        let finished = self.finished.load(Ordering::Relaxed);
        ends_in_time(
            volumes.saturating_sub(finished),
            finished,
            since,
            stop_at.saturating_duration_since(now),
        )
    }
}

/// Whether `left` volumes, at the pace of the `finished` ones over `since`, end within half of
/// `time_left`. No pace to trust yet (fewer than [`PACE_VOLUMES`] finished, or over less than
/// [`PACE_TIME`]): not known, so no.
fn ends_in_time(left: usize, finished: usize, since: Duration, time_left: Duration) -> bool {
    if left == 0 {
        return true;
    }
    if finished < PACE_VOLUMES || since < PACE_TIME {
        return false;
    }
    let needed = since.as_secs_f64() * left as f64 / finished as f64;
    needed < time_left.as_secs_f64() / 2.0
}

/// Whether this link may hand the rest of its run to another (so it may not prune).
fn may_hand_off(opts: &RunOptions) -> bool {
    opts.stop_at.is_some() && opts.chain.as_ref().is_some_and(|c| c.link < opts.max_links)
}

/// Lists the target's history once `read` has resolved (the inventory is read) and this link is
/// likely to prune; `None` when the read failed.
pub(super) async fn list_beside_creations(
    clients: &Clients,
    policy: &str,
    target: &str,
    opts: &RunOptions,
    progress: &Progress,
    read: futures::channel::oneshot::Receiver<()>,
) -> Option<Result<Vec<ManagedSnapshot>, Error>> {
    read.await.ok()?;
    if may_hand_off(opts) {
        let stop_at = opts.stop_at?;
        while !progress.ends_before(stop_at) {
            tokio::time::sleep(RECHECK).await;
        }
    }
    progress.listing.store(true, Ordering::Relaxed);
    let phase = Instant::now();
    let listed = ec2::list_managed_snapshots(&clients.ec2, policy, Some(target), None)
        .await
        .map_err(Error::from);
    if let Ok(l) = &listed {
        info!(
            snapshots = l.len(),
            ms = phase.elapsed().as_millis() as u64,
            "read the target's snapshots to prune, beside the creations"
        );
    }
    Some(listed)
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: fn(u64) -> Duration = Duration::from_secs;

    #[test]
    fn nothing_left_always_ends_in_time() {
        assert!(ends_in_time(0, 0, Duration::ZERO, Duration::ZERO));
    }

    #[test]
    fn no_pace_to_trust_yet_is_not_in_time() {
        assert!(!ends_in_time(10, 0, S(5), S(900)));
        assert!(!ends_in_time(1, 19, S(60), S(900)));
        assert!(!ends_in_time(1, 100, S(4), S(900)));
    }

    #[test]
    fn pace_so_far_decides_with_half_the_time_to_spare() {
        // 100 done in 10 s: 300 left need 30 s.
        assert!(ends_in_time(300, 100, S(10), S(61)));
        assert!(!ends_in_time(300, 100, S(10), S(60)));
        assert!(!ends_in_time(9000, 1000, S(30), S(120)));
    }

    #[test]
    fn only_a_link_that_can_continue_may_hand_off() {
        let chain = |link| crate::runner::Chain {
            function_arn: "arn:aws:lambda:us-east-1:123456789012:function:f".into(),
            link,
            run_key: None,
            rates: Default::default(),
            volumes: Vec::new(),
        };
        let at = Some(Instant::now() + S(60));
        let opts = |stop_at, chain| RunOptions {
            stop_at,
            chain,
            max_links: 3,
            ..RunOptions::default()
        };
        assert!(may_hand_off(&opts(at, Some(chain(1)))));
        assert!(!may_hand_off(&opts(at, Some(chain(3)))));
        assert!(!may_hand_off(&opts(at, None)));
        assert!(!may_hand_off(&opts(None, Some(chain(1)))));
    }
}
