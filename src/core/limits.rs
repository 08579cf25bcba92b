//! Every limit and check that both the provider (at plan time) and the runner (when it validates
//! a document) apply: one home per rule. A check returns findings that name the field they are
//! about; the provider turns a field into an attribute path, the runner into a document error.
//! Schema descriptions are formatted from the same constants.

use std::collections::BTreeMap;
use std::ops::RangeInclusive;

/// Retention in days (policy `retention_days`, target override, orphan retention).
pub const RETENTION_DAYS: RangeInclusive<i64> = 1..=36_500;
/// Snapshots always kept (`min_snapshots`).
pub const MIN_SNAPSHOTS: RangeInclusive<i64> = 0..=1000;
/// Cap on kept snapshots (`max_snapshots`).
pub const MAX_SNAPSHOTS: RangeInclusive<i64> = 1..=1000;

/// EventBridge Scheduler's retry policy: attempts and event age, and its own defaults (which
/// ebssnap uses, so omitting them never shows a diff).
pub const RETRY_ATTEMPTS: RangeInclusive<i64> = 0..=185;
pub const DEFAULT_RETRY_ATTEMPTS: i64 = 185;
pub const MAX_EVENT_AGE_SECONDS: RangeInclusive<i64> = 60..=86_400;
pub const DEFAULT_MAX_EVENT_AGE_SECONDS: i64 = 86_400;

/// EC2 and Scheduler tags: key and value lengths, tags per resource.
pub const TAG_KEY_CHARS: usize = 128;
pub const TAG_VALUE_CHARS: usize = 256;
pub const MAX_TAGS: usize = 50;
/// The tags ebssnap puts on every snapshot (`ebssnap:policy`, `:target`, `:run`, `:expires`).
pub const EBSSNAP_TAG_COUNT: usize = 4;
/// Extra snapshot tags that fit beside ebssnap's own.
pub const MAX_EXTRA_TAGS: usize = MAX_TAGS - EBSSNAP_TAG_COUNT;
/// Key prefixes AWS reserves on every tag.
pub const AWS_PREFIX: &str = "aws:";
/// The prefix of ebssnap's own snapshot tags, reserved on snapshots.
pub const EBSSNAP_PREFIX: &str = "ebssnap:";

/// Something wrong with one field (or one key of a map field).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// The field, as the provider names the attribute (`min_snapshots`, `snapshot_tags`).
    pub field: &'static str,
    /// The map key the finding is about, if any.
    pub key: Option<String>,
    /// A short title (a diagnostic's summary).
    pub summary: &'static str,
    /// What is wrong and what is allowed.
    pub message: String,
}

impl Finding {
    fn new(field: &'static str, summary: &'static str, message: String) -> Self {
        Finding {
            field,
            key: None,
            summary,
            message,
        }
    }
}

/// `value` within `range`.
pub fn check_range(
    field: &'static str,
    value: i64,
    range: &RangeInclusive<i64>,
) -> Option<Finding> {
    (!range.contains(&value)).then(|| {
        Finding::new(
            field,
            "Value out of range",
            format!(
                "{field} must be between {} and {}, got {value}.",
                range.start(),
                range.end()
            ),
        )
    })
}

/// The snapshot counts: each in range, and the minimum not above the cap.
pub fn check_counts(min: Option<i64>, max: Option<i64>) -> Vec<Finding> {
    let mut out = Vec::new();
    out.extend(min.and_then(|v| check_range("min_snapshots", v, &MIN_SNAPSHOTS)));
    out.extend(max.and_then(|v| check_range("max_snapshots", v, &MAX_SNAPSHOTS)));
    if let (Some(lo), Some(hi)) = (min, max)
        && lo > hi
    {
        out.push(Finding::new(
            "min_snapshots",
            "min_snapshots above max_snapshots",
            format!("min_snapshots ({lo}) must not exceed max_snapshots ({hi})."),
        ));
    }
    out
}

/// A tag map: key and value lengths, and keys without a `reserved` prefix (case-insensitive).
pub fn check_tags(
    field: &'static str,
    tags: &BTreeMap<String, String>,
    reserved: &[&str],
) -> Vec<Finding> {
    let mut out = Vec::new();
    for (k, v) in tags {
        let lower = k.to_ascii_lowercase();
        let (summary, message) = if k.is_empty() || k.chars().count() > TAG_KEY_CHARS {
            (
                "Invalid tag key",
                format!("tag keys must be 1 to {TAG_KEY_CHARS} characters, got {k:?}."),
            )
        } else if let Some(p) = reserved.iter().find(|p| lower.starts_with(**p)) {
            (
                "Reserved tag key",
                format!("tag key {k:?} uses the reserved prefix {p:?}."),
            )
        } else if v.chars().count() > TAG_VALUE_CHARS {
            (
                "Invalid tag value",
                format!("the value of tag {k:?} is longer than {TAG_VALUE_CHARS} characters."),
            )
        } else {
            continue;
        };
        out.push(Finding {
            field,
            key: Some(k.clone()),
            summary,
            message,
        });
    }
    out
}

/// Extra snapshot tags: valid tags, not ebssnap's or AWS's prefixes, and few enough to fit.
pub fn check_snapshot_tags(field: &'static str, tags: &BTreeMap<String, String>) -> Vec<Finding> {
    let mut out = check_tags(field, tags, &[AWS_PREFIX, EBSSNAP_PREFIX]);
    if tags.len() > MAX_EXTRA_TAGS {
        out.push(Finding::new(
            field,
            "Too many snapshot tags",
            format!(
                "{field} has {} tags; at most {MAX_EXTRA_TAGS} fit beside ebssnap's {EBSSNAP_TAG_COUNT}.",
                tags.len()
            ),
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_name_the_field_and_the_bounds() {
        assert!(check_range("retry_attempts", 185, &RETRY_ATTEMPTS).is_none());
        let f = check_range("retry_attempts", 200, &RETRY_ATTEMPTS).unwrap();
        assert_eq!(
            f.message,
            "retry_attempts must be between 0 and 185, got 200."
        );
        assert!(check_range("retention_days", 0, &RETENTION_DAYS).is_some());
    }

    #[test]
    fn counts_check_each_bound_and_their_order() {
        assert!(check_counts(Some(0), Some(1)).is_empty());
        let f = check_counts(Some(5), Some(2));
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].field, "min_snapshots");
        assert_eq!(check_counts(Some(1001), None)[0].field, "min_snapshots");
        assert_eq!(check_counts(None, Some(0))[0].field, "max_snapshots");
    }

    #[test]
    fn tags_check_lengths_reserved_prefixes_and_the_budget() {
        let t = BTreeMap::from([
            ("AWS:x".to_string(), "v".to_string()),
            ("ok".to_string(), "v".repeat(TAG_VALUE_CHARS + 1)),
            (String::new(), "v".to_string()),
            ("Team".to_string(), "ops".to_string()),
        ]);
        let f = check_tags("tags", &t, &[AWS_PREFIX]);
        let summaries: Vec<&str> = f.iter().map(|f| f.summary).collect();
        assert_eq!(
            summaries,
            vec!["Invalid tag key", "Reserved tag key", "Invalid tag value"]
        );
        assert_eq!(f[1].key.as_deref(), Some("AWS:x"));
        let many: BTreeMap<String, String> = (0..=MAX_EXTRA_TAGS)
            .map(|i| (format!("k{i}"), "v".to_string()))
            .collect();
        let f = check_snapshot_tags("snapshot_tags", &many);
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].summary, "Too many snapshot tags");
        let ours = BTreeMap::from([("ebssnap:run".to_string(), "x".to_string())]);
        assert_eq!(
            check_snapshot_tags("snapshot_tags", &ours)[0].summary,
            "Reserved tag key"
        );
    }
}
