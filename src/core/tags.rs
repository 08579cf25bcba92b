//! The tag set written on each snapshot at creation (docs/design.md §5).
//!
//! Precedence, highest first: the four `ebssnap:` tags (retention depends on them, so nothing
//! overrides them), the policy's extra tags (explicit configuration beats copied values), the
//! volume's tags, then the instance's tags. Copied keys starting with `aws:` (EC2 refuses them) or
//! `ebssnap:` are skipped. When the set would exceed EC2's 50 tags, copied tags are dropped from
//! the end (instance tags first, then volume tags in reverse key order) and reported.

use std::collections::BTreeMap;

use serde::Serialize;

use super::limits::{AWS_PREFIX, EBSSNAP_PREFIX, MAX_TAGS, TAG_VALUE_CHARS as MAX_VALUE_CHARS};

/// The run key becomes the `ebssnap:run` tag value, so it must fit EC2's value limit.
pub fn check_run_key(key: &str) -> Result<(), String> {
    let n = key.chars().count();
    if n == 0 || n > MAX_VALUE_CHARS {
        return Err(format!(
            "the run key must be 1 to {MAX_VALUE_CHARS} characters (it becomes the {TAG_RUN} tag), got {n}"
        ));
    }
    Ok(())
}

pub const TAG_POLICY: &str = "ebssnap:policy";
pub const TAG_TARGET: &str = "ebssnap:target";
pub const TAG_RUN: &str = "ebssnap:run";
pub const TAG_VOLUME: &str = "ebssnap:volume";
/// On a disaster-recovery copy: the restore point it copies, its Region and its volume
/// (docs/design.md §13). Copies are found by these tags, never by `VolumeId`.
pub const TAG_SOURCE_SNAPSHOT: &str = "ebssnap:source-snapshot";
pub const TAG_SOURCE_REGION: &str = "ebssnap:source-region";
pub const TAG_SOURCE_VOLUME: &str = "ebssnap:source-volume";
/// The source restore point's start time: a copy's age is its data's age, not the copy's.
pub const TAG_SOURCE_TIME: &str = "ebssnap:source-time";

/// The identity of a snapshot, written as the `ebssnap:` tags.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity<'a> {
    pub policy: &'a str,
    pub target: &'a str,
    pub run_key: &'a str,
    pub volume_id: &'a str,
}

/// A copied tag that did not fit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DroppedTag {
    pub volume_id: String,
    pub key: String,
    pub source: &'static str,
}

/// The ordered tag list for one snapshot, and what was dropped to fit the limit.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TagSet {
    pub tags: Vec<(String, String)>,
    pub dropped: Vec<DroppedTag>,
}

/// Whether a key is in ebssnap's namespace (`ebssnap:`, any case).
pub fn is_ebssnap_key(key: &str) -> bool {
    key.to_ascii_lowercase().starts_with(EBSSNAP_PREFIX)
}

fn copyable(key: &str) -> bool {
    let lower = key.to_ascii_lowercase();
    !lower.starts_with(AWS_PREFIX) && !lower.starts_with(EBSSNAP_PREFIX)
}

/// The `ebssnap:` tags alone (also used for crash-consistent sets, where EC2 copies the rest).
pub fn identity_tags(id: &Identity<'_>) -> Vec<(String, String)> {
    vec![
        (TAG_POLICY.into(), id.policy.into()),
        (TAG_TARGET.into(), id.target.into()),
        (TAG_RUN.into(), id.run_key.into()),
        (TAG_VOLUME.into(), id.volume_id.into()),
    ]
}

/// Builds the full tag set. `volume_tags`/`instance_tags` are `None` when copying is disabled.
pub fn merge(
    id: &Identity<'_>,
    extra: &BTreeMap<String, String>,
    volume_tags: Option<&BTreeMap<String, String>>,
    instance_tags: Option<&BTreeMap<String, String>>,
) -> TagSet {
    let mut tags = identity_tags(id);
    let taken = |tags: &Vec<(String, String)>, k: &str| tags.iter().any(|(have, _)| have == k);
    for (k, v) in extra {
        if copyable(k) && !taken(&tags, k) {
            tags.push((k.clone(), v.clone()));
        }
    }
    let fixed = tags.len();
    let mut copied: Vec<(String, String, &'static str)> = Vec::new();
    for (source, map) in [("volume", volume_tags), ("instance", instance_tags)] {
        for (k, v) in map.into_iter().flatten() {
            if copyable(k) && !taken(&tags, k) && !copied.iter().any(|(have, _, _)| have == k) {
                copied.push((k.clone(), v.clone(), source));
            }
        }
    }
    let room = MAX_TAGS.saturating_sub(fixed);
    let dropped = if copied.len() > room {
        copied
            .split_off(room)
            .into_iter()
            .map(|(key, _, source)| DroppedTag {
                volume_id: id.volume_id.into(),
                key,
                source,
            })
            .collect()
    } else {
        Vec::new()
    };
    tags.extend(copied.into_iter().map(|(k, v, _)| (k, v)));
    TagSet { tags, dropped }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_keys_fit_a_tag_value() {
        assert!(check_run_key("2026-11-26T05:00:00Z").is_ok());
        assert!(check_run_key(&"k".repeat(256)).is_ok());
        assert!(
            check_run_key(&"k".repeat(257))
                .unwrap_err()
                .contains("1 to 256")
        );
        assert!(check_run_key("").is_err());
    }

    fn m(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    const ID: Identity<'static> = Identity {
        policy: "std",
        target: "web",
        run_key: "r1",
        volume_id: "vol-1",
    };

    #[test]
    fn ebssnap_tags_first_and_never_overwritten() {
        let vol = m(&[
            ("ebssnap:policy", "evil"),
            ("aws:cloudformation:stack-name", "s"),
            ("App", "x"),
        ]);
        let set = merge(&ID, &BTreeMap::new(), Some(&vol), None);
        assert_eq!(
            set.tags,
            vec![
                ("ebssnap:policy".into(), "std".into()),
                ("ebssnap:target".into(), "web".into()),
                ("ebssnap:run".into(), "r1".into()),
                ("ebssnap:volume".into(), "vol-1".into()),
                ("App".into(), "x".into()),
            ]
        );
        assert!(set.dropped.is_empty());
    }

    #[test]
    fn extra_beats_volume_beats_instance() {
        let extra = m(&[("Backup", "ebssnap")]);
        let vol = m(&[("Backup", "vol"), ("Env", "vol")]);
        let inst = m(&[("Env", "inst"), ("Owner", "inst")]);
        let set = merge(&ID, &extra, Some(&vol), Some(&inst));
        let got: BTreeMap<_, _> = set.tags.into_iter().collect();
        assert_eq!(got["Backup"], "ebssnap");
        assert_eq!(got["Env"], "vol");
        assert_eq!(got["Owner"], "inst");
    }

    #[test]
    fn fifty_tag_cap_drops_copied_tags_last_first() {
        let vol: BTreeMap<String, String> = (0..48)
            .map(|i| (format!("k{i:02}"), "v".to_string()))
            .collect();
        let set = merge(&ID, &m(&[("Backup", "yes")]), Some(&vol), None);
        assert_eq!(set.tags.len(), MAX_TAGS);
        let dropped: Vec<_> = set.dropped.iter().map(|d| d.key.as_str()).collect();
        assert_eq!(dropped, ["k45", "k46", "k47"]);
        assert!(set.tags.iter().any(|(k, _)| k == "Backup"));
    }
}
