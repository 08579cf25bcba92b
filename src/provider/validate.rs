//! Plan-time validation of single values, each error attached to the attribute's path with a
//! message that says what to write instead. Unknown values are not validated here (Terraform calls
//! validation again once they are known).

use super::plugin::{AttributePath, Diagnostics};
use crate::core::limits;

use crate::core::{doc, schedule};

pub fn policy_name(diags: &mut Diagnostics, at: AttributePath, v: &str) {
    if let Err(e) = doc::validate_policy_name(v) {
        diags.error("Invalid policy name", e, at);
    }
}

pub fn target_name(diags: &mut Diagnostics, at: AttributePath, v: &str) {
    if let Err(e) = doc::validate_target_name(v) {
        diags.error("Invalid target name", e, at);
    }
}

pub fn schedule_expression(diags: &mut Diagnostics, at: AttributePath, v: &str) {
    if let Err(e) = schedule::parse(v) {
        diags.error("Invalid schedule expression", e.0, at);
    }
}

pub fn timezone(diags: &mut Diagnostics, at: AttributePath, v: &str) {
    if !schedule::valid_timezone(v) {
        diags.error(
            "Invalid time zone",
            format!("{v:?} is not an IANA time zone name; use e.g. \"UTC\", \"Europe/London\" or \"America/Chicago\"."),
            at,
        );
    }
}

/// A name shaped like an AWS Region (`us-west-2`): AWS answers for whether it exists.
pub fn is_region_name(r: &str) -> bool {
    r.len() <= 32
        && r.contains('-')
        && r.chars()
            .all(|ch| ch.is_ascii_lowercase() || ch.is_ascii_digit() || ch == '-')
}

/// An optional `region` attribute: an error at `attr` when it is not shaped like a Region.
pub fn region(diags: &mut Diagnostics, attr: &str, value: Option<&str>) {
    if let Some(r) = value
        && !is_region_name(r)
    {
        diags.error(
            "Invalid region",
            format!("{r:?} is not an AWS Region name (e.g. us-west-2)."),
            AttributePath::new(attr),
        );
    }
}

/// An ARN `arn:<partition>:<service>:<region>:<account>:<resource>`, of `service` when given.
pub fn arn(diags: &mut Diagnostics, at: AttributePath, v: &str, service: Option<&str>) {
    let parts: Vec<&str> = v.splitn(6, ':').collect();
    let ok = parts.len() == 6
        && parts[0] == "arn"
        && matches!(
            parts[1],
            "aws" | "aws-cn" | "aws-us-gov" | "aws-iso" | "aws-iso-b"
        )
        && !parts[2].is_empty()
        && service.is_none_or(|s| parts[2] == s)
        && (parts[4].is_empty()
            || (parts[4].len() == 12 && parts[4].chars().all(|c| c.is_ascii_digit())))
        && !parts[5].is_empty();
    if !ok {
        let want = service
            .map(|s| format!(" of service {s}"))
            .unwrap_or_default();
        diags.error(
            "Invalid ARN",
            format!("{v:?} is not a valid ARN{want}: expected arn:aws:<service>:<region>:<account-id>:<resource>."),
            at,
        );
    }
}

/// The failure webhook: https, or http to a loopback address only (local testing).
pub fn webhook_url(diags: &mut Diagnostics, at: AttributePath, v: &str) {
    // Never echo the URL: its path or query may hold a token. Scheme, host and port only.
    let shown = crate::core::ticket::redact_url(v);
    match url::Url::parse(v) {
        Ok(u) if u.scheme() == "https" && u.host().is_some() => {}
        Ok(u) if u.scheme() == "http" && is_loopback(&u) => {}
        Ok(u) if u.scheme() == "http" => diags.error(
            "Insecure webhook URL",
            format!("{shown} uses http; tickets carry account details, so use https (plain http is only accepted for 127.0.0.1, ::1 or localhost)."),
            at,
        ),
        _ => diags.error(
            "Invalid webhook URL",
            format!("{shown} is not an https URL."),
            at,
        ),
    }
}

fn is_loopback(u: &url::Url) -> bool {
    match u.host() {
        Some(url::Host::Domain(d)) => d == "localhost",
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

/// An endpoint URL (http or https, any host).
pub fn endpoint_url(diags: &mut Diagnostics, at: AttributePath, v: &str) {
    match url::Url::parse(v) {
        Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => {}
        _ => diags.error(
            "Invalid endpoint URL",
            format!("{v:?} is not an http(s) URL."),
            at,
        ),
    }
}

/// An RFC 3339 time such as `2026-12-01T00:00:00Z`.
pub fn rfc3339(diags: &mut Diagnostics, at: AttributePath, v: &str) -> Option<jiff::Timestamp> {
    match v.parse::<jiff::Timestamp>() {
        Ok(t) => Some(t),
        Err(_) => {
            diags.error(
                "Invalid date",
                format!(
                    "{v:?} is not an RFC 3339 date and time; write e.g. \"2026-12-01T00:00:00Z\"."
                ),
                at,
            );
            None
        }
    }
}

/// A finding of the shared limits (`core::limits`) as a diagnostic at `at` (plus its map key).
pub fn finding(diags: &mut Diagnostics, at: AttributePath, f: limits::Finding) {
    let at = match f.key {
        Some(k) => at.key(k),
        None => at,
    };
    diags.error(f.summary, f.message, at);
}

/// `v` within `range` (a range of `core::limits`), reported at `at`.
pub fn range(
    diags: &mut Diagnostics,
    at: AttributePath,
    name: &'static str,
    v: i64,
    range: &std::ops::RangeInclusive<i64>,
) {
    if let Some(f) = limits::check_range(name, v, range) {
        finding(diags, at, f);
    }
}

/// The snapshot counts (`min_snapshots`, `max_snapshots`) of a policy or a target.
pub fn counts(
    diags: &mut Diagnostics,
    path: impl Fn(&'static str) -> AttributePath,
    min: Option<i64>,
    max: Option<i64>,
) {
    for f in limits::check_counts(min, max) {
        let at = path(f.field);
        finding(diags, at, f);
    }
}

pub fn description(diags: &mut Diagnostics, at: AttributePath, v: &str) {
    if v.chars().count() > 512 {
        diags.error(
            "Description too long",
            "description must be at most 512 characters.",
            at,
        );
    }
}

/// A tag map of an AWS object (`limits::check_tags`), reported per key under `at`.
pub fn tags(
    diags: &mut Diagnostics,
    at: AttributePath,
    tags: &std::collections::BTreeMap<String, String>,
    reserved: &[&str],
) {
    for f in limits::check_tags("tags", tags, reserved) {
        finding(diags, at.clone(), f);
    }
}
