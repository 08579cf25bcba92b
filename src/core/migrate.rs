//! Migrating ebs_snapper configuration stanzas to ebssnap (pure): parse a stanza, map it to one
//! policy and one target, list what cannot be expressed, and render Terraform.
//!
//! A stanza (ebs_snapper's docs/design.md): `match` (DescribeInstances filters, AND-ed, a value or a
//! list of values each; ebs_snapper always adds `instance-state-name = running, stopped`),
//! `snapshot.{retention, minimum, frequency}` (durations such as "4 days" / "12 hours", or a
//! crontab expression in UTC), `ignore` (instance or volume ids), `ignore_retention`,
//! `replication`.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use serde_json::Value;

use super::schedule;

/// The DynamoDB table ebs_snapper's CloudFormation template creates.
pub const DEFAULT_TABLE: &str = "ebs_snapshot_configuration";

/// One stanza as stored: its id, account and configuration JSON.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stanza {
    pub id: String,
    pub account: Option<String>,
    pub configuration: Value,
}

/// What a stanza becomes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Migrated {
    pub stanza_id: String,
    /// Policy and target name (and the Terraform resource names).
    pub name: String,
    pub retention_days: i64,
    pub min_snapshots: i64,
    pub schedule: String,
    pub instance_filters: BTreeMap<String, Vec<String>>,
    pub exclude_instance_ids: Vec<String>,
    pub exclude_volume_ids: Vec<String>,
    /// Things changed on the way (rounded retention, ...): not losses.
    pub notes: Vec<String>,
    /// What ebssnap cannot express: the migration is lossy.
    pub losses: Vec<String>,
    /// The stanza replicates (`replication`): its instances' and volumes'
    /// `replication_dst_region` tags name the copy Regions ([`apply_replication`]).
    pub replication: Option<String>,
    /// Regions its snapshots were replicated to: `copy` blocks.
    pub copy_regions: Vec<String>,
}

/// The tag ebs_snapper reads on instances and volumes to replicate their snapshots.
pub const REPLICATION_TAG: &str = "replication_dst_region";

impl Migrated {
    /// Maps ebs_snapper's replication to `copy` blocks: the Regions named by the
    /// `replication_dst_region` tags of the instances and volumes it selects (`Err`: those tags
    /// could not be read). Without a Region the replication is a loss.
    pub fn apply_replication(&mut self, regions: Result<BTreeSet<String>, String>) {
        let Some(r) = self.replication.clone() else {
            return;
        };
        match regions {
            Ok(found) if !found.is_empty() => {
                self.copy_regions = found.into_iter().collect();
                self.notes.push(format!(
                    "replication = {r}: copy blocks for {}. ebssnap's copies are backups with their own retention and minimum, not ebs_snapper's mirror: a copy is never deleted because its source went",
                    self.copy_regions.join(", ")
                ));
            }
            Ok(_) => self.losses.push(format!(
                "replication = {r}, but no instance or volume it selects has a {REPLICATION_TAG} tag: nothing to copy"
            )),
            Err(e) => self.losses.push(format!(
                "replication = {r}: the {REPLICATION_TAG} tags could not be read ({e}): add copy blocks by hand"
            )),
        }
    }

    /// The copy Regions its selection names: `replication_dst_region` of the selected volumes
    /// and of their instances.
    pub fn replication_regions(&self, inv: &super::select::Inventory) -> BTreeSet<String> {
        let mut out = BTreeSet::new();
        for v in self.ebs_snapper_selection(inv) {
            let Some(vol) = inv.volumes.get(&v) else {
                continue;
            };
            out.extend(vol.tags.get(REPLICATION_TAG).cloned());
            if let Some(i) = vol
                .attachment
                .as_ref()
                .and_then(|(i, _)| inv.instances.get(i))
            {
                out.extend(i.tags.get(REPLICATION_TAG).cloned());
            }
        }
        out.retain(|r| super::doc::is_region_name(r));
        out
    }
}

/// A stanza that cannot be migrated at all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    pub stanza_id: String,
    pub reason: String,
}

const DAY: i64 = 86_400;

/// A duration as ebs_snapper writes them (pytimeparse): "4 days", "12 hours", "1 week",
/// "90 minutes", "2w", "36h", "1 day, 12 hours". Seconds.
pub fn parse_duration(s: &str) -> Option<i64> {
    let mut total = 0i64;
    let mut any = false;
    let cleaned = s.replace(',', " ").replace(" and ", " ");
    let mut tokens = cleaned.split_whitespace().peekable();
    while let Some(tok) = tokens.next() {
        let (num, unit) = match tok.find(|c: char| !c.is_ascii_digit()) {
            Some(0) => return None,
            Some(i) => (&tok[..i], tok[i..].to_string()),
            None => (tok, tokens.next()?.to_string()),
        };
        let n: i64 = num.parse().ok()?;
        let unit = unit.to_ascii_lowercase();
        let secs = match unit.trim_end_matches('s') {
            "w" | "wk" | "week" => 7 * DAY,
            "d" | "day" => DAY,
            "h" | "hr" | "hour" => 3600,
            "m" | "min" | "minute" => 60,
            "" | "sec" | "second" => 1,
            _ => return None,
        };
        total = total.checked_add(n.checked_mul(secs)?)?;
        any = true;
    }
    (any && total > 0).then_some(total)
}

/// A duration as a Scheduler `rate(...)` (whole days, hours or minutes).
fn rate_of(secs: i64) -> Option<String> {
    let (n, unit) = if secs % DAY == 0 {
        (secs / DAY, "day")
    } else if secs % 3600 == 0 {
        (secs / 3600, "hour")
    } else if secs % 60 == 0 {
        (secs / 60, "minute")
    } else {
        return None;
    };
    Some(format!("rate({n} {unit}{})", if n == 1 { "" } else { "s" }))
}

/// A crontab (5 fields, or 6 with a year; ebs_snapper's examples also use Scheduler's `?`) as a
/// Scheduler `cron(...)` in UTC. Numeric weekdays move from crontab's 0–6 (Sunday = 0 or 7) to
/// Scheduler's 1–7 (Sunday = 1); one of day-of-month and day-of-week becomes `?`.
pub fn cron_of(expr: &str) -> Option<String> {
    let f: Vec<&str> = expr.split_whitespace().collect();
    if !(5..=6).contains(&f.len()) {
        return None;
    }
    let (min, hour, dom, mon) = (f[0], f[1], f[2], f[3]);
    let mut dow = f[4].to_string();
    let year = f.get(5).copied().unwrap_or("*");
    if dow.chars().any(|c| c.is_ascii_digit()) {
        let mut out = String::new();
        let mut num = String::new();
        for c in dow.chars().chain(std::iter::once('\0')) {
            if c.is_ascii_digit() {
                num.push(c);
                continue;
            }
            if !num.is_empty() {
                let n: u32 = num.parse().ok()?;
                if n > 7 {
                    return None;
                }
                let _ = write!(out, "{}", n % 7 + 1);
                num.clear();
            }
            if c != '\0' {
                out.push(c);
            }
        }
        dow = out;
    }
    let (dom, dow) = match (dom, dow.as_str()) {
        (_, "?") | ("?", _) => (dom.to_string(), dow.clone()),
        (_, "*") => (dom.to_string(), "?".to_string()),
        ("*", _) => ("?".to_string(), dow.clone()),
        _ => return None, // both restricted: Scheduler cannot say "either"
    };
    let out = format!("cron({min} {hour} {dom} {mon} {dow} {year})");
    schedule::parse(&out).ok().map(|_| out)
}

/// A name for a stanza id: `[0-9A-Za-z_.-]`, at most 56 characters, starting with a letter;
/// `taken` makes it unique.
pub fn name_for(id: &str, taken: &mut BTreeSet<String>) -> String {
    let mut base: String = id
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if !base.starts_with(|c: char| c.is_ascii_alphabetic()) {
        base = format!("s_{base}");
    }
    base.truncate(50);
    let mut name = base.clone();
    let mut n = 2;
    while !taken.insert(name.to_ascii_lowercase()) {
        name = format!("{base}_{n}");
        n += 1;
    }
    name
}

fn values_of(v: &Value) -> Option<Vec<String>> {
    match v {
        Value::String(s) => Some(vec![s.clone()]),
        Value::Number(n) => Some(vec![n.to_string()]),
        Value::Array(items) => items
            .iter()
            .map(|i| match i {
                Value::String(s) => Some(s.clone()),
                Value::Number(n) => Some(n.to_string()),
                _ => None,
            })
            .collect(),
        _ => None,
    }
}

/// Maps one stanza.
pub fn migrate(stanza: &Stanza, taken: &mut BTreeSet<String>) -> Result<Migrated, Refused> {
    let refuse = |reason: String| Refused {
        stanza_id: stanza.id.clone(),
        reason,
    };
    let c = &stanza.configuration;
    let Some(matches) = c.get("match").and_then(Value::as_object) else {
        return Err(refuse(
            "no \"match\" object (ebs_snapper ignores such a stanza too)".into(),
        ));
    };
    let Some(snap) = c.get("snapshot").and_then(Value::as_object) else {
        return Err(refuse(
            "no \"snapshot\" object (ebs_snapper ignores such a stanza too)".into(),
        ));
    };
    let mut notes = Vec::new();
    let mut losses = Vec::new();

    let mut filters = BTreeMap::new();
    for (k, v) in matches {
        let Some(values) = values_of(v) else {
            return Err(refuse(format!(
                "match.{k} is neither a string nor a list of strings"
            )));
        };
        filters.insert(k.clone(), values);
    }
    // ebs_snapper only ever considers running and stopped instances.
    filters
        .entry("instance-state-name".to_string())
        .or_insert_with(|| vec!["running".into(), "stopped".into()]);
    if let Err(e) = super::select::check_instance_filters(&filters) {
        return Err(refuse(format!("match: {e}")));
    }

    let retention = snap
        .get("retention")
        .and_then(Value::as_str)
        .unwrap_or("7 days");
    let Some(secs) = parse_duration(retention) else {
        return Err(refuse(format!(
            "snapshot.retention {retention:?} is not a duration"
        )));
    };
    let retention_days = (secs + DAY - 1) / DAY;
    if secs % DAY != 0 {
        notes.push(format!(
            "retention {retention:?} is not a whole number of days: rounded up to {retention_days} day(s)"
        ));
    }
    let min_snapshots = match snap.get("minimum") {
        None => 1,
        Some(v) => match v
            .as_i64()
            .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
        {
            Some(n) if (0..=1000).contains(&n) => n,
            _ => {
                return Err(refuse(format!(
                    "snapshot.minimum {v} is not a count from 0 to 1000"
                )));
            }
        },
    };
    let frequency = snap.get("frequency").and_then(Value::as_str).unwrap_or("");
    let schedule = match parse_duration(frequency)
        .and_then(rate_of)
        .or_else(|| cron_of(frequency))
    {
        Some(s) => s,
        None => {
            losses.push(format!(
                "frequency {frequency:?} is neither a duration nor a crontab ebssnap can express: the target uses \"rate(1 day)\"; set its schedule by hand"
            ));
            "rate(1 day)".to_string()
        }
    };
    if schedule.starts_with("cron(") {
        notes.push(format!(
            "crontab {frequency:?} became {schedule} (UTC, as ebs_snapper read it); set timezone to run it in local time"
        ));
    }

    let mut exclude_instance_ids = Vec::new();
    let mut exclude_volume_ids = Vec::new();
    for id in c
        .get("ignore")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        match id.as_str() {
            Some(i) if i.starts_with("i-") => exclude_instance_ids.push(i.to_string()),
            Some(v) if v.starts_with("vol-") => exclude_volume_ids.push(v.to_string()),
            other => losses.push(format!(
                "ignore entry {} is neither an instance nor a volume id: dropped",
                other.map_or_else(|| id.to_string(), |s| format!("{s:?}"))
            )),
        }
    }
    if c.get("ignore_retention").and_then(Value::as_bool) == Some(true) {
        losses.push(
            "ignore_retention = true (delete expired snapshots even below the minimum): ebssnap always keeps min_snapshots"
                .into(),
        );
    }
    let replication = c
        .get("replication")
        .filter(|r| !r.is_null() && r.as_str() != Some("no") && r.as_bool() != Some(false))
        .map(|r| r.to_string());
    Ok(Migrated {
        stanza_id: stanza.id.clone(),
        name: name_for(&stanza.id, taken),
        retention_days,
        min_snapshots,
        schedule,
        instance_filters: filters,
        exclude_instance_ids,
        exclude_volume_ids,
        notes,
        losses,
        replication,
        copy_regions: Vec::new(),
    })
}

impl Migrated {
    /// The generated target's selector and exclusions, as the runner reads them.
    pub fn selector(&self) -> (super::select::Select, super::select::Exclude) {
        let non_empty = |v: &Vec<String>| (!v.is_empty()).then(|| v.clone());
        (
            super::select::Select {
                instance_filters: Some(self.instance_filters.clone()),
                ..Default::default()
            },
            super::select::Exclude {
                instance_ids: non_empty(&self.exclude_instance_ids),
                volume_ids: non_empty(&self.exclude_volume_ids),
                ..Default::default()
            },
        )
    }

    /// What ebs_snapper itself selects from an inventory fetched for [`Migrated::selector`]:
    /// every volume attached to an instance its filters matched, minus its `ignore` ids.
    pub fn ebs_snapper_selection(&self, inv: &super::select::Inventory) -> BTreeSet<String> {
        inv.volumes
            .values()
            .filter_map(|v| {
                let (instance, _) = v.attachment.as_ref()?;
                let matched = inv.filter_matches.contains(instance);
                let ignored = self.exclude_instance_ids.contains(instance)
                    || self.exclude_volume_ids.contains(&v.id);
                (matched && !ignored).then(|| v.id.clone())
            })
            .collect()
    }
}

/// `+` volumes only `b` has, `-` volumes only `a` has; empty when equal.
pub fn difference(a: &BTreeSet<String>, b: &BTreeSet<String>) -> Vec<String> {
    let mut out: Vec<String> = b.difference(a).map(|v| format!("+{v}")).collect();
    out.extend(a.difference(b).map(|v| format!("-{v}")));
    out
}

/// A snapshot of the account that carries a `DeleteOn` tag (what `ebssnap adopt` considers).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OldSnapshot {
    pub id: String,
    pub volume_id: Option<String>,
    pub description: String,
    pub start_time: jiff::Timestamp,
    pub tags: BTreeMap<String, String>,
}

/// ebs_snapper's snapshot description: `Created from <instance> by EbsSnapper(<version>) for
/// <ami> from <volume>`.
pub fn is_ebs_snapper_description(d: &str) -> bool {
    d.starts_with("Created from ") && d.contains(" by EbsSnapper(")
}

/// One snapshot `ebssnap adopt` takes over, and the tags it adds.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Adoption {
    pub snapshot_id: String,
    pub volume_id: String,
    pub start_time: String,
    pub tags: BTreeMap<String, String>,
}

/// The snapshots to adopt into `policy/target`: ebs_snapper's (a `DeleteOn` tag and its
/// description format) of the `selected` volumes, not yet ebssnap's. Each gets the
/// `ebssnap:policy/target/volume` tags and `ebssnap:run = adopted-<start time>-<snapshot id>`,
/// so retention and the minimum apply to it from the next run. The snapshot id makes each adopted
/// snapshot its own restore point: two of one volume started in the same second are not one run
/// (the `duplicate_run` rule would delete one of them).
pub fn adoption_plan(
    snapshots: &[OldSnapshot],
    selected: &BTreeSet<String>,
    policy: &str,
    target: &str,
) -> Vec<Adoption> {
    use super::tags::{TAG_POLICY, TAG_RUN, TAG_TARGET, TAG_VOLUME};
    snapshots
        .iter()
        .filter(|s| s.tags.contains_key("DeleteOn"))
        .filter(|s| is_ebs_snapper_description(&s.description))
        .filter(|s| !s.tags.contains_key(TAG_POLICY))
        .filter_map(|s| {
            let vol = s.volume_id.as_ref().filter(|v| selected.contains(*v))?;
            let start = s.start_time.to_string();
            Some(Adoption {
                snapshot_id: s.id.clone(),
                volume_id: vol.clone(),
                start_time: start.clone(),
                tags: BTreeMap::from([
                    (TAG_POLICY.to_string(), policy.to_string()),
                    (TAG_TARGET.to_string(), target.to_string()),
                    (TAG_VOLUME.to_string(), vol.clone()),
                    (TAG_RUN.to_string(), format!("adopted-{start}-{}", s.id)),
                ]),
            })
        })
        .collect()
}

/// A Terraform string literal. JSON's escapes are HCL's, and Terraform reads `${` and `%{` in a
/// quoted string as template sequences, so those are doubled (`$${`, `%%{`): a value from
/// ebs_snapper's table reaches the configuration as the literal it was.
fn quote(s: &str) -> String {
    serde_json::to_string(s)
        .unwrap_or_default()
        .replace("${", "$${")
        .replace("%{", "%%{")
}

fn list(values: &[String]) -> String {
    format!(
        "[{}]",
        values
            .iter()
            .map(|v| quote(v))
            .collect::<Vec<_>>()
            .join(", ")
    )
}

/// `key = value` lines with their `=` aligned, as `terraform fmt` writes them.
fn aligned(out: &mut String, indent: &str, pairs: &[(String, String)]) {
    let width = pairs
        .iter()
        .map(|(k, _)| k.chars().count())
        .max()
        .unwrap_or(0);
    for (k, v) in pairs {
        let _ = writeln!(out, "{indent}{k:<width$} = {v}");
    }
}

/// The Terraform for the migrated stanzas (`terraform fmt` clean).
pub fn render(migrated: &[Migrated]) -> String {
    let mut out = String::from(
        "# Generated by `ebssnap migrate ebs-snapper`: one policy and one target per ebs_snapper\n\
         # stanza. Review MIGRATION.md beside this file before applying.\n",
    );
    for m in migrated {
        let _ = writeln!(out, "\n# ebs_snapper stanza {:?}", m.stanza_id);
        let _ = writeln!(out, "resource \"ebssnap_policy\" \"{}\" {{", m.name);
        aligned(
            &mut out,
            "  ",
            &[
                ("name".into(), quote(&m.name)),
                (
                    "description".into(),
                    quote(&format!("Migrated from ebs_snapper stanza {}", m.stanza_id)),
                ),
                ("retention_days".into(), m.retention_days.to_string()),
                ("min_snapshots".into(), m.min_snapshots.to_string()),
            ],
        );
        for r in &m.copy_regions {
            let _ = writeln!(
                out,
                "\n  # ebs_snapper replicated to {r}. These copies are backups with their own retention\n  # and minimum, not a mirror: a copy is never deleted because its source went.\n  copy {{\n    region = {}\n  }}",
                quote(r)
            );
        }
        out.push_str("}\n\n");
        let _ = writeln!(out, "resource \"ebssnap_target\" \"{}\" {{", m.name);
        aligned(
            &mut out,
            "  ",
            &[
                ("policy".into(), format!("ebssnap_policy.{}.name", m.name)),
                ("name".into(), quote(&m.name)),
                ("schedule".into(), quote(&m.schedule)),
                ("timezone".into(), quote("UTC")),
            ],
        );
        out.push_str("\n  select {\n    instance_filters = {\n");
        let pairs: Vec<(String, String)> = m
            .instance_filters
            .iter()
            .map(|(k, v)| (quote(k), list(v)))
            .collect();
        aligned(&mut out, "      ", &pairs);
        out.push_str("    }\n  }\n");
        if !m.exclude_instance_ids.is_empty() || !m.exclude_volume_ids.is_empty() {
            out.push_str("\n  exclude {\n");
            let mut pairs = Vec::new();
            if !m.exclude_instance_ids.is_empty() {
                pairs.push(("instance_ids".to_string(), list(&m.exclude_instance_ids)));
            }
            if !m.exclude_volume_ids.is_empty() {
                pairs.push(("volume_ids".to_string(), list(&m.exclude_volume_ids)));
            }
            aligned(&mut out, "    ", &pairs);
            out.push_str("  }\n");
        }
        out.push_str("}\n");
    }
    out
}

/// MIGRATION.md: what each stanza became, what changed, and what was lost.
pub fn report(migrated: &[Migrated], refused: &[Refused]) -> String {
    let mut out = String::from(
        "# Migration from ebs_snapper\n\n| stanza | policy/target | retention | minimum | schedule |\n|---|---|---|---|---|\n",
    );
    for m in migrated {
        let _ = writeln!(
            out,
            "| `{}` | `{}/{}` | {} days | {} | `{}` |",
            m.stanza_id, m.name, m.name, m.retention_days, m.min_snapshots, m.schedule
        );
    }
    let lossy: Vec<&Migrated> = migrated.iter().filter(|m| !m.losses.is_empty()).collect();
    out.push_str("\n## Not expressed (lossy)\n\n");
    if lossy.is_empty() && refused.is_empty() {
        out.push_str("Nothing: every stanza was migrated completely.\n");
    }
    for m in lossy {
        for l in &m.losses {
            let _ = writeln!(out, "- `{}`: {l}", m.stanza_id);
        }
    }
    for r in refused {
        let _ = writeln!(out, "- `{}`: **not migrated**: {}", r.stanza_id, r.reason);
    }
    let notes: Vec<(&str, &String)> = migrated
        .iter()
        .flat_map(|m| m.notes.iter().map(move |n| (m.stanza_id.as_str(), n)))
        .collect();
    if !notes.is_empty() {
        out.push_str("\n## Changed on the way\n\n");
        for (id, n) in notes {
            let _ = writeln!(out, "- `{id}`: {n}");
        }
    }
    out.push_str(
        "\n## Differences you will notice\n\n\
         - The minimum is really kept: ebssnap never deletes below `min_snapshots`.\n\
         - Only ebssnap's own snapshots are pruned (tagged `ebssnap:policy`); ebs_snapper's and other \
         tools' `DeleteOn` snapshots are left alone until `ebssnap adopt` takes them over.\n\
         - Schedules fire at exact times (EventBridge Scheduler) instead of a 15-minute poller; \
         `rate()` counts from when the schedule is created.\n\
         - Crontab expressions stay in UTC (`timezone = \"UTC\"`): set a time zone to follow daylight saving.\n",
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn stanza(id: &str, c: Value) -> Stanza {
        Stanza {
            id: id.into(),
            account: Some("123456789012".into()),
            configuration: c,
        }
    }

    #[test]
    fn durations_parse_as_pytimeparse_does() {
        assert_eq!(parse_duration("4 days"), Some(4 * DAY));
        assert_eq!(parse_duration("12 hours"), Some(12 * 3600));
        assert_eq!(parse_duration("1 week"), Some(7 * DAY));
        assert_eq!(parse_duration("36h"), Some(36 * 3600));
        assert_eq!(parse_duration("1 day, 12 hours"), Some(DAY + 12 * 3600));
        assert_eq!(parse_duration("0 5 * * ? *"), None);
        assert_eq!(parse_duration("soon"), None);
        assert_eq!(rate_of(12 * 3600).as_deref(), Some("rate(12 hours)"));
        assert_eq!(rate_of(DAY).as_deref(), Some("rate(1 day)"));
        assert_eq!(rate_of(14 * DAY).as_deref(), Some("rate(14 days)"));
    }

    #[test]
    fn crontabs_become_scheduler_cron_in_utc() {
        assert_eq!(cron_of("0 5 * * ? *").as_deref(), Some("cron(0 5 * * ? *)"));
        assert_eq!(cron_of("0 6 * * *").as_deref(), Some("cron(0 6 * * ? *)"));
        // Crontab Monday-Friday (1-5) is Scheduler's 2-6; Sunday 0 is 1.
        assert_eq!(
            cron_of("30 2 * * 1-5").as_deref(),
            Some("cron(30 2 ? * 2-6 *)")
        );
        assert_eq!(cron_of("0 0 * * 0").as_deref(), Some("cron(0 0 ? * 1 *)"));
        assert_eq!(cron_of("0 0 1 * 1"), None, "both days restricted");
        assert_eq!(cron_of("12 hours"), None);
    }

    #[test]
    fn a_stanza_maps_to_filters_retention_and_exclusions() {
        let mut taken = BTreeSet::new();
        let m = migrate(
            &stanza(
                "legacy servers",
                json!({"match": {"instance-id": "i-abc12345", "tag:key": "tag-value", "tag:Name": "legacy_server_name_*"},
                       "snapshot": {"retention": "36 hours", "minimum": 5, "frequency": "12 hours"},
                       "ignore": ["i-0aaa", "vol-0bbb", "snap-1"], "ignore_retention": true}),
            ),
            &mut taken,
        )
        .unwrap();
        assert_eq!(m.name, "legacy_servers");
        assert_eq!(m.retention_days, 2, "36 hours rounds up");
        assert_eq!(m.min_snapshots, 5);
        assert_eq!(m.schedule, "rate(12 hours)");
        assert_eq!(m.instance_filters["tag:Name"], vec!["legacy_server_name_*"]);
        assert_eq!(
            m.instance_filters["instance-state-name"],
            vec!["running", "stopped"]
        );
        assert_eq!(m.exclude_instance_ids, vec!["i-0aaa"]);
        assert_eq!(m.exclude_volume_ids, vec!["vol-0bbb"]);
        assert_eq!(m.losses.len(), 2, "{:?}", m.losses);
        assert_eq!(m.notes.len(), 1);
        // A second stanza with a clashing name gets a unique one.
        let again = migrate(
            &stanza(
                "legacy-servers!",
                json!({"match": {}, "snapshot": {"retention": "1 week", "frequency": "1 day"}}),
            ),
            &mut taken,
        )
        .unwrap();
        assert_eq!(again.name, "legacy-servers_");
        let clash = migrate(
            &stanza(
                "legacy servers",
                json!({"match": {}, "snapshot": {"retention": "1 week", "frequency": "1 day"}}),
            ),
            &mut taken,
        )
        .unwrap();
        assert_eq!(clash.name, "legacy_servers_2");
        assert!(migrate(&stanza("x", json!({"snapshot": {}})), &mut taken).is_err());
    }

    #[test]
    fn adoption_takes_only_ebs_snappers_snapshots_of_selected_volumes_once() {
        let snap = |id: &str, vol: &str, desc: &str, tags: &[(&str, &str)]| OldSnapshot {
            id: id.into(),
            volume_id: Some(vol.into()),
            description: desc.into(),
            start_time: "2026-11-01T05:00:00Z".parse().unwrap(),
            tags: tags
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        };
        let ours = "Created from i-1 by EbsSnapper(0.10.0) for ami-1 from vol-1";
        let snaps = vec![
            snap("snap-a", "vol-1", ours, &[("DeleteOn", "2026-11-05")]),
            snap("snap-b", "vol-2", ours, &[("DeleteOn", "2026-11-05")]),
            snap(
                "snap-c",
                "vol-1",
                "made by hand",
                &[("DeleteOn", "2026-11-05")],
            ),
            snap("snap-d", "vol-1", ours, &[]),
            snap(
                "snap-e",
                "vol-1",
                ours,
                &[("DeleteOn", "x"), ("ebssnap:policy", "std")],
            ),
        ];
        let plan = adoption_plan(&snaps, &BTreeSet::from(["vol-1".to_string()]), "std", "web");
        assert_eq!(plan.len(), 1);
        assert_eq!(plan[0].snapshot_id, "snap-a");
        assert_eq!(
            plan[0].tags["ebssnap:run"],
            "adopted-2026-11-01T05:00:00Z-snap-a"
        );
        assert_eq!(plan[0].tags["ebssnap:volume"], "vol-1");
    }

    /// Two of ebs_snapper's snapshots of one volume that share a start second (the emulator
    /// stamps whole seconds) are two restore points once adopted: the planner keeps both under a
    /// minimum of two, where one shared run key made `duplicate_run` delete one.
    #[test]
    fn adopted_snapshots_are_each_their_own_restore_point() {
        use crate::core::retention::{self, Scope, Snap, SnapState};
        let ours = "Created from i-1 by EbsSnapper(0.10.0) for ami-1 from vol-1";
        let old = |id: &str| OldSnapshot {
            id: id.into(),
            volume_id: Some("vol-1".into()),
            description: ours.into(),
            start_time: "2026-11-01T05:00:00Z".parse().unwrap(),
            tags: BTreeMap::from([("DeleteOn".to_string(), "2026-11-05".to_string())]),
        };
        let plan = adoption_plan(
            &[old("snap-a"), old("snap-b")],
            &BTreeSet::from(["vol-1".to_string()]),
            "std",
            "web",
        );
        assert_eq!(plan.len(), 2);
        assert_ne!(plan[0].tags["ebssnap:run"], plan[1].tags["ebssnap:run"]);
        let snaps: Vec<Snap> = plan
            .iter()
            .map(|a| Snap {
                id: a.snapshot_id.clone(),
                owned: true,
                policy: Some("std".into()),
                target: Some("web".into()),
                volume: "vol-1".into(),
                run: Some(a.tags["ebssnap:run"].clone()),
                state: SnapState::Completed,
                start_time: "2026-11-01T05:00:00Z".parse().unwrap(),
                copy: false,
            })
            .collect();
        let rules = crate::core::doc::Rules {
            days: 1,
            min_snapshots: 2,
            max_snapshots: None,
            orphan_delete_after_days: None,
        };
        let decided = retention::plan(
            &Scope::Target {
                policy: "std",
                target: "web",
            },
            &snaps,
            |_| rules,
            |_| false,
            "2026-12-01T00:00:00Z".parse().unwrap(),
        );
        assert!(decided.delete.is_empty(), "{:?}", decided.delete);
        assert_eq!(decided.keep.len(), 2);
    }

    #[test]
    fn template_sequences_reach_terraform_as_literals() {
        assert_eq!(quote("a ${var.x} %{ if } b"), r#""a $${var.x} %%{ if } b""#);
        assert_eq!(quote("$ and % alone"), r#""$ and % alone""#);
    }

    #[test]
    fn the_terraform_is_aligned_like_terraform_fmt() {
        let mut taken = BTreeSet::new();
        let m = migrate(
            &stanza("db", json!({"match": {"tag:Env": ["prod", "stage"]}, "snapshot": {"retention": "4 days", "minimum": 5, "frequency": "0 5 * * ? *"}, "ignore": ["vol-1"]})),
            &mut taken,
        )
        .unwrap();
        let tf = render(&[m]);
        assert!(tf.contains("  retention_days = 4\n"), "{tf}");
        assert!(
            tf.contains("      \"instance-state-name\" = [\"running\", \"stopped\"]\n"),
            "{tf}"
        );
        assert!(
            tf.contains("      \"tag:Env\"             = [\"prod\", \"stage\"]\n"),
            "{tf}"
        );
        assert!(tf.contains("    volume_ids = [\"vol-1\"]\n"), "{tf}");
    }
}
