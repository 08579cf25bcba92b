//! The EventBridge Scheduler expression grammar: `at()`, `rate()` and six-field `cron()`,
//! validated at plan time so a typo fails `terraform plan`, not a 3 a.m. run.
//!
//! The rules follow the Scheduler documentation: cron fields are minutes, hours,
//! day-of-month, month, day-of-week, year; exactly one of the two day fields is `?`;
//! `L` and `W` belong to day-of-month, `L` and `#` to day-of-week; `rate()` takes a positive whole
//! number and a unit that is singular for 1 and plural otherwise.

use std::fmt;

/// A parsed schedule expression.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expression {
    /// One-off, in the schedule's time zone.
    At(jiff::civil::DateTime),
    Rate {
        value: u32,
        unit: RateUnit,
    },
    Cron(Cron),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RateUnit {
    Minutes,
    Hours,
    Days,
}

impl RateUnit {
    pub fn seconds(self) -> u64 {
        match self {
            RateUnit::Minutes => 60,
            RateUnit::Hours => 3600,
            RateUnit::Days => 86_400,
        }
    }
}

/// The six cron fields, kept as written (each already validated).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cron {
    pub minutes: String,
    pub hours: String,
    pub day_of_month: String,
    pub month: String,
    pub day_of_week: String,
    pub year: String,
}

/// Why an expression is invalid; the message says what to write instead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScheduleError(pub String);

impl fmt::Display for ScheduleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ScheduleError {}

fn err<T>(msg: impl Into<String>) -> Result<T, ScheduleError> {
    Err(ScheduleError(msg.into()))
}

/// Parses and validates a schedule expression.
pub fn parse(expr: &str) -> Result<Expression, ScheduleError> {
    let e = expr.trim();
    if e != expr {
        return err(format!("{expr:?} has leading or trailing spaces"));
    }
    let inner = |prefix: &str| e.strip_prefix(prefix).and_then(|r| r.strip_suffix(')'));
    if let Some(body) = inner("at(") {
        return parse_at(body);
    }
    if let Some(body) = inner("rate(") {
        return parse_rate(body);
    }
    if let Some(body) = inner("cron(") {
        return parse_cron(body).map(Expression::Cron);
    }
    err(format!(
        "{expr:?} is not a schedule expression: use cron(minutes hours day-of-month month day-of-week year), \
         rate(value unit) or at(yyyy-mm-ddThh:mm:ss)"
    ))
}

fn parse_at(body: &str) -> Result<Expression, ScheduleError> {
    let ok = body.len() == 19 && body.as_bytes().get(10) == Some(&b'T');
    match body.parse::<jiff::civil::DateTime>() {
        Ok(dt) if ok => Ok(Expression::At(dt)),
        _ => err(format!(
            "at({body}) must be at(yyyy-mm-ddThh:mm:ss), a date and time without offset \
             (the schedule's time zone applies)"
        )),
    }
}

fn parse_rate(body: &str) -> Result<Expression, ScheduleError> {
    let mut parts = body.split(' ');
    let (Some(v), Some(u), None) = (parts.next(), parts.next(), parts.next()) else {
        return err(format!(
            "rate({body}) must be rate(value unit), e.g. rate(12 hours)"
        ));
    };
    let value: u32 = match v.parse() {
        Ok(n) if n >= 1 && v.chars().all(|c| c.is_ascii_digit()) => n,
        _ => {
            return err(format!(
                "rate({body}): the value must be a whole number of at least 1"
            ));
        }
    };
    let (unit, plural) = match u {
        "minute" => (RateUnit::Minutes, false),
        "minutes" => (RateUnit::Minutes, true),
        "hour" => (RateUnit::Hours, false),
        "hours" => (RateUnit::Hours, true),
        "day" => (RateUnit::Days, false),
        "days" => (RateUnit::Days, true),
        _ => {
            return err(format!(
                "rate({body}): the unit must be minutes, hours or days"
            ));
        }
    };
    if plural != (value != 1) {
        let want = if value == 1 {
            u.trim_end_matches('s').to_string()
        } else {
            format!("{u}s")
        };
        return err(format!(
            "rate({body}): write rate({value} {want}) (singular for 1, plural otherwise)"
        ));
    }
    Ok(Expression::Rate { value, unit })
}

const MONTHS: [&str; 12] = [
    "JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC",
];
const DAYS: [&str; 7] = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];

struct Field {
    name: &'static str,
    min: u32,
    max: u32,
    names: &'static [&'static str],
}

impl Field {
    fn value(&self, s: &str) -> Result<u32, ScheduleError> {
        let upper = s.to_ascii_uppercase();
        if let Some(i) = self.names.iter().position(|n| *n == upper) {
            return Ok(i as u32 + self.min);
        }
        match s.parse::<u32>() {
            Ok(n)
                if (self.min..=self.max).contains(&n) && s.chars().all(|c| c.is_ascii_digit()) =>
            {
                Ok(n)
            }
            _ => err(format!(
                "cron {} field: {s:?} is not a value from {} to {}{}",
                self.name,
                self.min,
                self.max,
                if self.names.is_empty() {
                    String::new()
                } else {
                    format!(" or {}-{}", self.names[0], self.names[self.names.len() - 1])
                }
            )),
        }
    }

    /// `*`, `a`, `a-b`, `*/n`, `a/n`, `a-b/n`, and comma lists of those.
    fn check_ranges(&self, spec: &str) -> Result<(), ScheduleError> {
        for item in spec.split(',') {
            if item.is_empty() {
                return err(format!("cron {} field: empty item in {spec:?}", self.name));
            }
            let (range, step) = match item.split_once('/') {
                Some((r, s)) => (r, Some(s)),
                None => (item, None),
            };
            if let Some(s) = step {
                match s.parse::<u32>() {
                    Ok(n) if n >= 1 && s.chars().all(|c| c.is_ascii_digit()) => {}
                    _ => {
                        return err(format!(
                            "cron {} field: increment {s:?} must be a whole number of at least 1",
                            self.name
                        ));
                    }
                }
            }
            if range == "*" {
                continue;
            }
            match range.split_once('-') {
                Some((a, b)) => {
                    self.value(a)?;
                    self.value(b)?;
                }
                None => {
                    self.value(range)?;
                }
            }
        }
        Ok(())
    }
}

fn parse_cron(body: &str) -> Result<Cron, ScheduleError> {
    let fields: Vec<&str> = body.split(' ').collect();
    if fields.iter().any(|f| f.is_empty()) {
        return err(format!(
            "cron({body}): separate the fields with single spaces"
        ));
    }
    if fields.len() != 6 {
        return err(format!(
            "cron({body}) has {} fields; Scheduler needs 6: minutes hours day-of-month month day-of-week year \
             (e.g. cron(0 5 * * ? *))",
            fields.len()
        ));
    }
    let minutes = Field {
        name: "minutes",
        min: 0,
        max: 59,
        names: &[],
    };
    let hours = Field {
        name: "hours",
        min: 0,
        max: 23,
        names: &[],
    };
    let dom = Field {
        name: "day-of-month",
        min: 1,
        max: 31,
        names: &[],
    };
    let month = Field {
        name: "month",
        min: 1,
        max: 12,
        names: &MONTHS,
    };
    let dow = Field {
        name: "day-of-week",
        min: 1,
        max: 7,
        names: &DAYS,
    };
    let year = Field {
        name: "year",
        min: 1970,
        max: 2199,
        names: &[],
    };
    minutes.check_ranges(fields[0])?;
    hours.check_ranges(fields[1])?;
    month.check_ranges(fields[3])?;
    year.check_ranges(fields[5])?;
    let (d, w) = (fields[2], fields[4]);
    match (d == "?", w == "?") {
        (true, true) => {
            return err(format!(
                "cron({body}): only one of day-of-month and day-of-week may be ?"
            ));
        }
        (false, false) => {
            return err(format!(
                "cron({body}): set day-of-month or day-of-week, and ? in the other (e.g. cron(0 5 * * ? *) or cron(0 5 ? * MON-FRI *))"
            ));
        }
        _ => {}
    }
    if d != "?" {
        check_day_of_month(&dom, d)?;
    }
    if w != "?" {
        check_day_of_week(&dow, w)?;
    }
    Ok(Cron {
        minutes: fields[0].into(),
        hours: fields[1].into(),
        day_of_month: d.into(),
        month: fields[3].into(),
        day_of_week: w.into(),
        year: fields[5].into(),
    })
}

fn check_day_of_month(f: &Field, spec: &str) -> Result<(), ScheduleError> {
    if spec == "L" || spec == "LW" {
        return Ok(());
    }
    if let Some(day) = spec.strip_suffix('W') {
        f.value(day).map(|_| ())?;
        return Ok(());
    }
    if spec.contains('L') || spec.contains('W') || spec.contains('#') {
        return err(format!(
            "cron day-of-month field: {spec:?}: use L (last day), LW, or nW (nearest weekday to day n) alone"
        ));
    }
    f.check_ranges(spec)
}

fn check_day_of_week(f: &Field, spec: &str) -> Result<(), ScheduleError> {
    if spec == "L" {
        return Ok(());
    }
    if let Some((day, nth)) = spec.split_once('#') {
        f.value(day)?;
        return match nth.parse::<u32>() {
            Ok(1..=5) if nth.len() == 1 => Ok(()),
            _ => err(format!(
                "cron day-of-week field: {spec:?}: the # occurrence must be 1 to 5"
            )),
        };
    }
    if let Some(day) = spec.strip_suffix('L') {
        f.value(day)?;
        return Ok(());
    }
    if spec.contains('W') || spec.contains('L') {
        return err(format!(
            "cron day-of-week field: {spec:?}: W is for day-of-month; use nL or n#k"
        ));
    }
    f.check_ranges(spec)
}

/// True when `name` is an IANA time zone this build knows.
pub fn valid_timezone(name: &str) -> bool {
    !name.is_empty() && jiff::tz::db().get(name).is_ok()
}

// ---- When a schedule fires (for overdue detection) ----

/// A set of allowed values of one plain cron field (`*`, lists, ranges, steps, names).
fn value_set(f: &Field, spec: &str) -> Vec<bool> {
    let mut set = vec![false; f.max as usize + 1];
    for item in spec.split(',') {
        let (range, step) = match item.split_once('/') {
            Some((r, s)) => (r, s.parse::<u32>().unwrap_or(1).max(1)),
            None => (item, 1),
        };
        let (lo, hi) = if range == "*" {
            (f.min, f.max)
        } else if let Some((a, b)) = range.split_once('-') {
            (f.value(a).unwrap_or(f.min), f.value(b).unwrap_or(f.max))
        } else {
            let v = f.value(range).unwrap_or(f.min);
            // `a/n` means a, a+n, ... up to the maximum.
            (
                v,
                if step > 1 || item.contains('/') {
                    f.max
                } else {
                    v
                },
            )
        };
        // A range may wrap (FRI-MON).
        let values: Vec<u32> = if lo <= hi {
            (lo..=hi).collect()
        } else {
            (lo..=f.max).chain(f.min..=hi).collect()
        };
        for (i, v) in values.into_iter().enumerate() {
            if (i as u32).is_multiple_of(step) {
                set[v as usize] = true;
            }
        }
    }
    set
}

fn allows(set: &[bool], v: u32) -> bool {
    set.get(v as usize).copied().unwrap_or(false)
}

impl Cron {
    fn field(&self, name: &str) -> Field {
        match name {
            "minutes" => Field {
                name: "minutes",
                min: 0,
                max: 59,
                names: &[],
            },
            "hours" => Field {
                name: "hours",
                min: 0,
                max: 23,
                names: &[],
            },
            "day-of-month" => Field {
                name: "day-of-month",
                min: 1,
                max: 31,
                names: &[],
            },
            "month" => Field {
                name: "month",
                min: 1,
                max: 12,
                names: &MONTHS,
            },
            "day-of-week" => Field {
                name: "day-of-week",
                min: 1,
                max: 7,
                names: &DAYS,
            },
            _ => Field {
                name: "year",
                min: 1970,
                max: 2199,
                names: &[],
            },
        }
    }

    /// Whether the schedule fires on this calendar day.
    fn fires_on(&self, d: jiff::civil::Date) -> bool {
        let (year, month, day) = (d.year() as u32, d.month() as u32, d.day() as u32);
        if !allows(&value_set(&self.field("year"), &self.year), year)
            || !allows(&value_set(&self.field("month"), &self.month), month)
        {
            return false;
        }
        let last = d.last_of_month().day() as u32;
        // 1 = SUN ... 7 = SAT, as in Scheduler's cron.
        let weekday = d.weekday().to_sunday_one_offset() as u32;
        if self.day_of_month != "?" {
            let spec = self.day_of_month.as_str();
            return match spec {
                "L" => day == last,
                "LW" => day == nearest_weekday(d, last),
                _ if spec.ends_with('W') => {
                    let n = spec
                        .trim_end_matches('W')
                        .parse::<u32>()
                        .unwrap_or(0)
                        .min(last);
                    day == nearest_weekday(d, n)
                }
                _ => allows(&value_set(&self.field("day-of-month"), spec), day),
            };
        }
        let spec = self.day_of_week.as_str();
        let dow = self.field("day-of-week");
        if spec == "L" {
            return weekday == 7;
        }
        if let Some((w, nth)) = spec.split_once('#') {
            let (w, nth) = (dow.value(w).unwrap_or(0), nth.parse::<u32>().unwrap_or(0));
            return weekday == w && (day - 1) / 7 + 1 == nth;
        }
        if let Some(w) = spec.strip_suffix('L') {
            return weekday == dow.value(w).unwrap_or(0) && day + 7 > last;
        }
        allows(&value_set(&dow, spec), weekday)
    }
}

/// The weekday (Mon-Fri) nearest to day `n` of `d`'s month, without leaving the month.
fn nearest_weekday(d: jiff::civil::Date, n: u32) -> u32 {
    let Ok(target) = d
        .first_of_month()
        .checked_add(jiff::Span::new().days(i64::from(n.max(1)) - 1))
    else {
        return n;
    };
    let last = d.last_of_month().day() as u32;
    match target.weekday() {
        jiff::civil::Weekday::Saturday if n == 1 => 3,
        jiff::civil::Weekday::Saturday => n - 1,
        jiff::civil::Weekday::Sunday if n == last => n - 2,
        jiff::civil::Weekday::Sunday => n + 1,
        _ => n,
    }
}

/// The next `count` fire times strictly after `after`, in time zone `tz` (at most ~5 years ahead).
pub fn next_fires(
    expr: &Expression,
    tz: &jiff::tz::TimeZone,
    after: jiff::Timestamp,
    count: usize,
) -> Vec<jiff::Timestamp> {
    let mut out = Vec::new();
    match expr {
        Expression::At(dt) => {
            if let Ok(t) = tz.to_ambiguous_timestamp(*dt).compatible()
                && t > after
            {
                out.push(t);
            }
        }
        Expression::Rate { value, unit } => {
            let step = jiff::SignedDuration::from_secs(i64::from(*value) * unit.seconds() as i64);
            let mut t = after;
            for _ in 0..count {
                match t.checked_add(step) {
                    Ok(n) => {
                        out.push(n);
                        t = n;
                    }
                    Err(_) => break,
                }
            }
        }
        Expression::Cron(c) => {
            let minutes = value_set(&c.field("minutes"), &c.minutes);
            let hours = value_set(&c.field("hours"), &c.hours);
            let mut day = after.to_zoned_datetime(tz.clone()).date();
            for _ in 0..(366 * 5) {
                if c.fires_on(day) {
                    for h in (0..24).filter(|h| allows(&hours, *h)) {
                        for m in (0..60).filter(|m| allows(&minutes, *m)) {
                            let dt = day.at(h as i8, m as i8, 0, 0);
                            if let Ok(t) = tz.to_ambiguous_timestamp(dt).compatible()
                                && t > after
                                && out.last() != Some(&t)
                            {
                                out.push(t);
                                if out.len() >= count {
                                    return out;
                                }
                            }
                        }
                    }
                }
                match day.tomorrow() {
                    Ok(d) => day = d,
                    Err(_) => break,
                }
            }
        }
    }
    out
}

/// The longest gap between consecutive fires after `now` (over the next 10 fires), or `None` for
/// a schedule that fires fewer than twice (a one-off `at()`, or a cron limited to past years).
/// The interval of a schedule given as text (expression and IANA zone), if it has one.
pub fn interval_of(
    expression: &str,
    timezone: &str,
    now: jiff::Timestamp,
) -> Option<jiff::SignedDuration> {
    let expr = parse(expression).ok()?;
    let tz = jiff::tz::TimeZone::get(timezone).ok()?;
    interval(&expr, &tz, now)
}

pub fn interval(
    expr: &Expression,
    tz: &jiff::tz::TimeZone,
    now: jiff::Timestamp,
) -> Option<jiff::SignedDuration> {
    let fires = next_fires(expr, tz, now, 10);
    fires.windows(2).map(|w| w[1].duration_since(w[0])).max()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_expressions() {
        for e in [
            "cron(0 5 * * ? *)",
            "cron(0/15 8-17 ? * MON-FRI *)",
            "cron(30 2 L * ? *)",
            "cron(0 0 15W * ? 2026-2030)",
            "cron(0 12 ? JAN,JUL 6#3 *)",
            "cron(0 12 ? * 5L *)",
            "cron(*/5 * ? * * *)",
            "rate(1 day)",
            "rate(12 hours)",
            "rate(5 minutes)",
            "at(2026-12-24T18:00:00)",
        ] {
            parse(e).unwrap_or_else(|x| panic!("{e}: {x}"));
        }
    }

    #[test]
    fn invalid_expressions_say_why() {
        let cases = [
            ("cron(0 5 * * *)", "has 5 fields"),
            ("cron(0 5 * * * *)", "? in the other"),
            ("cron(0 5 ? * ? *)", "only one of"),
            ("cron(60 5 * * ? *)", "minutes field"),
            ("cron(0 24 * * ? *)", "hours field"),
            ("cron(0 5 32 * ? *)", "day-of-month"),
            ("cron(0 5 * 13 ? *)", "month field"),
            ("cron(0 5 ? * 8 *)", "day-of-week"),
            ("cron(0 5 ? * 2#6 *)", "occurrence"),
            ("cron(0 5 ? * 2W *)", "W is for day-of-month"),
            ("cron(0 5 * * ? 1969)", "year field"),
            ("cron(0/0 5 * * ? *)", "increment"),
            ("cron(0  5 * * ? *)", "single spaces"),
            ("rate(0 minutes)", "at least 1"),
            ("rate(1 minutes)", "singular"),
            ("rate(2 hour)", "rate(2 hours)"),
            ("rate(3 weeks)", "unit"),
            ("rate(1.5 hours)", "whole number"),
            ("at(2026-12-24 18:00:00)", "yyyy-mm-ddThh:mm:ss"),
            ("at(2026-12-24T18:00:00Z)", "without offset"),
            ("every day", "not a schedule expression"),
        ];
        for (e, want) in cases {
            let got = parse(e).unwrap_err().0;
            assert!(got.contains(want), "{e}: {got}");
        }
    }

    fn ts(s: &str) -> jiff::Timestamp {
        s.parse().unwrap()
    }

    fn fires(expr: &str, tz: &str, after: &str, n: usize) -> Vec<String> {
        let tz = jiff::tz::TimeZone::get(tz).unwrap();
        next_fires(&parse(expr).unwrap(), &tz, ts(after), n)
            .into_iter()
            .map(|t| t.to_string())
            .collect()
    }

    #[test]
    fn cron_fire_times() {
        assert_eq!(
            fires("cron(0 5 * * ? *)", "UTC", "2026-11-26T06:00:00Z", 2),
            ["2026-11-27T05:00:00Z", "2026-11-28T05:00:00Z"]
        );
        // 05:00 in London is 05:00Z in winter and 04:00Z in summer.
        assert_eq!(
            fires(
                "cron(0 5 * * ? *)",
                "Europe/London",
                "2026-06-01T00:00:00Z",
                1
            ),
            ["2026-06-01T04:00:00Z"]
        );
        // Weekdays only: Friday 2026-11-27, then Monday 2026-11-30.
        assert_eq!(
            fires("cron(30 2 ? * MON-FRI *)", "UTC", "2026-11-26T03:00:00Z", 2),
            ["2026-11-27T02:30:00Z", "2026-11-30T02:30:00Z"]
        );
        assert_eq!(
            fires("cron(0 0 L * ? *)", "UTC", "2026-02-01T00:00:00Z", 1),
            ["2026-02-28T00:00:00Z"]
        );
        // Third Friday (6#3) of December 2026 is the 18th; last Friday (6L) the 25th.
        assert_eq!(
            fires("cron(0 12 ? 12 6#3 *)", "UTC", "2026-11-26T00:00:00Z", 1),
            ["2026-12-18T12:00:00Z"]
        );
        assert_eq!(
            fires("cron(0 12 ? 12 6L *)", "UTC", "2026-11-26T00:00:00Z", 1),
            ["2026-12-25T12:00:00Z"]
        );
        // 15W in August 2026: the 15th is a Saturday, so Friday the 14th.
        assert_eq!(
            fires("cron(0 8 15W 8 ? *)", "UTC", "2026-08-01T00:00:00Z", 1),
            ["2026-08-14T08:00:00Z"]
        );
        assert_eq!(
            fires("cron(0/20 * * * ? *)", "UTC", "2026-01-01T00:05:00Z", 3),
            [
                "2026-01-01T00:20:00Z",
                "2026-01-01T00:40:00Z",
                "2026-01-01T01:00:00Z"
            ]
        );
        assert!(fires("cron(0 5 * * ? 2020)", "UTC", "2026-01-01T00:00:00Z", 1).is_empty());
    }

    #[test]
    fn intervals() {
        let utc = jiff::tz::TimeZone::UTC;
        let now = ts("2026-11-26T06:00:00Z");
        let h = |n: i64| Some(jiff::SignedDuration::from_hours(n));
        assert_eq!(
            interval(&parse("rate(12 hours)").unwrap(), &utc, now),
            h(12)
        );
        assert_eq!(
            interval(&parse("cron(0 5 * * ? *)").unwrap(), &utc, now),
            h(24)
        );
        // Weekdays: the longest gap spans the weekend.
        assert_eq!(
            interval(&parse("cron(0 5 ? * MON-FRI *)").unwrap(), &utc, now),
            h(72)
        );
        assert_eq!(
            interval(&parse("at(2027-01-01T00:00:00)").unwrap(), &utc, now),
            None
        );
    }

    #[test]
    fn time_zones() {
        assert!(valid_timezone("UTC"));
        assert!(valid_timezone("Europe/London"));
        assert!(valid_timezone("America/Argentina/Buenos_Aires"));
        assert!(!valid_timezone("Mars/Olympus_Mons"));
        assert!(!valid_timezone(""));
    }
}
