//! Exactly once under lost answers (docs/design.md §5).
//!
//! A mutating call that fails may still have acted: the request left, then the connection broke,
//! the client timed out, or EC2 answered a server error after acting. Such a failure is
//! *ambiguous* (`AwsError::ambiguous`), unlike a refusal (an answer with a 4xx code, or
//! throttling, which EC2 decides before acting). `CreateSnapshot` and `CreateSnapshots` take no
//! idempotency token, so a blind retry can give a volume two snapshots of one run. Instead, the
//! ambiguous creations of a wave are set aside; once the wave is done, one filtered
//! `DescribeSnapshots` per 197 of their volumes looks for the run's snapshots; what it finds is
//! done, and only the rest is sent again (as a new wave, within the run's attempts and time).
//! A delete is harmless to repeat (`NotFound` on the retry is success), so it is retried and
//! only counted.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};

use super::target::Job;
use crate::aws::ec2::ManagedSnapshot;
use crate::core::report::{Ambiguous, Created};
use crate::core::select::Selected;

/// Ambiguous outcomes of one run and how they ended, shared by concurrent calls.
#[derive(Debug, Default)]
pub struct Tally {
    count: AtomicU64,
    found: AtomicU64,
    retried: AtomicU64,
}

impl Tally {
    /// A harmless call whose outcome was unknown, sent again.
    pub fn sent_again(&self) {
        self.count.fetch_add(1, Ordering::Relaxed);
        self.retried.fetch_add(1, Ordering::Relaxed);
    }

    /// A call whose outcome was unknown and stays unknown (no attempt or time left).
    pub fn unresolved(&self) {
        self.count.fetch_add(1, Ordering::Relaxed);
    }

    /// A look-up over `volumes` ambiguous creations: `found` were done, `sent_again` will be
    /// sent again (the rest stay unresolved).
    pub fn looked_up(&self, volumes: u64, found: u64, sent_again: u64) {
        self.count.fetch_add(volumes, Ordering::Relaxed);
        self.found.fetch_add(found, Ordering::Relaxed);
        self.retried.fetch_add(sent_again, Ordering::Relaxed);
    }

    pub fn total(&self) -> Ambiguous {
        Ambiguous {
            count: self.count.load(Ordering::Relaxed),
            found: self.found.load(Ordering::Relaxed),
            retried: self.retried.load(Ordering::Relaxed),
        }
    }
}

/// What a look-up made of a wave's ambiguous creations.
#[derive(Default)]
pub(super) struct Resolved {
    /// Snapshots the look-up found: AWS had acted.
    pub found: Vec<Created>,
    /// Work to send again: a volume, or a whole set, none of whose snapshots exists.
    pub again: Vec<Job>,
}

/// Splits ambiguous jobs into what `listed` (the run's snapshots of their volumes) shows done
/// and what must be sent again. A set of which only some members exist is finished volume by
/// volume: sending the whole set again would duplicate the members that exist.
pub(super) fn resolve(jobs: Vec<Job>, listed: &[ManagedSnapshot]) -> Resolved {
    let mut by_volume: BTreeMap<&str, &ManagedSnapshot> = BTreeMap::new();
    for s in listed {
        if let Some(v) = s.volume_id.as_deref() {
            by_volume.entry(v).or_insert(s);
        }
    }
    let created = |s: &Selected, snap: &ManagedSnapshot| Created {
        snapshot_id: Some(snap.id.clone()),
        volume_id: s.volume_id.clone(),
        instance_id: s.instance_id.clone(),
        device: s.device.clone(),
    };
    let mut out = Resolved::default();
    for job in jobs {
        match job {
            Job::Volume(s) => match by_volume.get(s.volume_id.as_str()) {
                Some(snap) => out.found.push(created(&s, snap)),
                None => out.again.push(Job::Volume(s)),
            },
            Job::Set {
                instance_id,
                volumes,
                exclude_boot,
                exclude_data,
            } => {
                let (done, missing): (Vec<Selected>, Vec<Selected>) = volumes
                    .into_iter()
                    .partition(|s| by_volume.contains_key(s.volume_id.as_str()));
                if done.is_empty() {
                    out.again.push(Job::Set {
                        instance_id,
                        volumes: missing,
                        exclude_boot,
                        exclude_data,
                    });
                    continue;
                }
                for s in &done {
                    out.found.push(created(s, by_volume[s.volume_id.as_str()]));
                }
                out.again.extend(missing.into_iter().map(Job::Volume));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::Timestamp;

    fn sel(v: &str, i: Option<&str>) -> Selected {
        Selected {
            volume_id: v.into(),
            instance_id: i.map(String::from),
            device: None,
            size_gb: 8,
            root: false,
        }
    }

    fn snap(id: &str, vol: &str) -> ManagedSnapshot {
        ManagedSnapshot {
            id: id.into(),
            volume_id: Some(vol.into()),
            state: "pending".into(),
            start_time: Timestamp::UNIX_EPOCH,
            tags: BTreeMap::new(),
            encrypted: false,
            kms_key_id: None,
        }
    }

    fn volumes(jobs: &[Job]) -> Vec<Vec<String>> {
        jobs.iter()
            .map(|j| match j {
                Job::Volume(s) => vec![s.volume_id.clone()],
                Job::Set { volumes, .. } => volumes.iter().map(|s| s.volume_id.clone()).collect(),
            })
            .collect()
    }

    #[test]
    fn what_the_look_up_finds_is_done_and_only_the_rest_is_sent_again() {
        let jobs = vec![
            Job::Volume(sel("vol-a", None)),
            Job::Volume(sel("vol-b", None)),
            // A set none of whose snapshots exists: sent again whole.
            Job::Set {
                instance_id: "i-1".into(),
                volumes: vec![sel("vol-c", Some("i-1")), sel("vol-d", Some("i-1"))],
                exclude_boot: false,
                exclude_data: vec![],
            },
            // A set with one member done: the other goes alone.
            Job::Set {
                instance_id: "i-2".into(),
                volumes: vec![sel("vol-e", Some("i-2")), sel("vol-f", Some("i-2"))],
                exclude_boot: true,
                exclude_data: vec![],
            },
        ];
        let r = resolve(jobs, &[snap("snap-a", "vol-a"), snap("snap-e", "vol-e")]);
        let found: Vec<(String, String)> = r
            .found
            .iter()
            .map(|c| {
                (
                    c.volume_id.clone(),
                    c.snapshot_id.clone().unwrap_or_default(),
                )
            })
            .collect();
        assert_eq!(
            found,
            [
                ("vol-a".into(), "snap-a".into()),
                ("vol-e".into(), "snap-e".into())
            ]
        );
        assert_eq!(r.found[1].instance_id.as_deref(), Some("i-2"));
        assert_eq!(
            volumes(&r.again),
            [vec!["vol-b"], vec!["vol-c", "vol-d"], vec!["vol-f"]]
        );
        assert!(matches!(r.again[2], Job::Volume(_)));
    }

    #[test]
    fn the_tally_adds_up() {
        let t = Tally::default();
        t.sent_again();
        t.unresolved();
        t.looked_up(5, 3, 1);
        assert_eq!(
            t.total(),
            Ambiguous {
                count: 7,
                found: 3,
                retried: 2
            }
        );
    }
}
