//! Provider-defined functions (`provider::ebssnap::NAME(...)`, Terraform 1.8+), computed with
//! the same schedule grammar and time-zone code as plan-time validation and the sweep's overdue
//! check.
//!
//! `next_runs` depends on the current time, and Terraform expects provider functions to return
//! the same result at plan and at apply: pass `plantimestamp()` as its optional fourth argument
//! wherever the result feeds a resource (outputs and `check` blocks may use the default, now).

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::{Value as Json, json};

use super::plugin::proto;
use super::plugin::resource::{Function, FunctionError};
use super::plugin::schema::AttributeType;
use crate::core::schedule;

/// The most fire times `next_runs` returns.
pub const MAX_RUNS: i64 = 1000;

fn param(name: &str, t: AttributeType, description: &str) -> proto::function::Parameter {
    proto::function::Parameter {
        name: name.into(),
        r#type: t.to_bytes(),
        allow_null_value: false,
        allow_unknown_values: false,
        description: description.into(),
        description_kind: proto::StringKind::Markdown as i32,
    }
}

fn arg_err(text: impl Into<String>, i: i64) -> FunctionError {
    FunctionError {
        text: text.into(),
        argument: Some(i),
    }
}

fn string_arg(args: &[Json], i: usize) -> Result<&str, FunctionError> {
    args.get(i)
        .and_then(Json::as_str)
        .ok_or_else(|| arg_err("expected a string", i as i64))
}

/// `next_runs(expression, timezone, count[, after])`: the next `count` fire times (RFC 3339, in
/// UTC) strictly after `after` (RFC 3339; default: now).
pub struct NextRuns;

impl NextRuns {
    pub fn compute(
        expression: &str,
        timezone: &str,
        count: i64,
        after: jiff::Timestamp,
    ) -> Result<Vec<String>, FunctionError> {
        let expr = schedule::parse(expression).map_err(|e| arg_err(e.0, 0))?;
        let tz = jiff::tz::TimeZone::get(timezone).map_err(|_| {
            arg_err(
                format!("{timezone:?} is not an IANA time zone name; use e.g. \"UTC\" or \"Europe/London\""),
                1,
            )
        })?;
        if !(1..=MAX_RUNS).contains(&count) {
            return Err(arg_err(
                format!("count must be between 1 and {MAX_RUNS}"),
                2,
            ));
        }
        let n = usize::try_from(count).unwrap_or(1);
        Ok(schedule::next_fires(&expr, &tz, after, n)
            .into_iter()
            .map(|t| t.to_string())
            .collect())
    }
}

impl Function for NextRuns {
    fn definition(&self) -> proto::Function {
        proto::Function {
            parameters: vec![
                param("expression", AttributeType::String, "A schedule expression: `cron(...)`, `rate(...)` or `at(...)`, as `ebssnap_target.schedule` accepts."),
                param("timezone", AttributeType::String, "An IANA time zone name, as `ebssnap_target.timezone` accepts."),
                param("count", AttributeType::Number, "How many fire times, 1 to 1000."),
            ],
            variadic_parameter: Some(param(
                "after",
                AttributeType::String,
                "At most one: the RFC 3339 time to count from (exclusive). Default: now. Pass `plantimestamp()` when the result is used by a resource, so plan and apply agree.",
            )),
            r#return: Some(proto::function::Return {
                r#type: AttributeType::List(Box::new(AttributeType::String)).to_bytes(),
            }),
            summary: "The next fire times of a schedule".into(),
            description: "The next `count` times (RFC 3339, UTC) a schedule expression fires in a time zone, strictly after `after` (default: now). Fewer when the schedule ends (an `at()` in the past, a cron limited to past years); times more than about five years ahead are not searched.".into(),
            description_kind: proto::StringKind::Markdown as i32,
            deprecation_message: String::new(),
        }
    }

    fn call(&self, args: Vec<Json>) -> Result<Json, FunctionError> {
        let expression = string_arg(&args, 0)?;
        let timezone = string_arg(&args, 1)?;
        let count = match args.get(2) {
            Some(Json::Number(n)) => n
                .as_i64()
                .ok_or_else(|| arg_err("count must be a whole number", 2))?,
            _ => return Err(arg_err("expected a number", 2)),
        };
        let after = match args.get(3) {
            None => jiff::Timestamp::now(),
            Some(_) if args.len() > 4 => {
                return Err(arg_err("at most one `after` argument", 4));
            }
            Some(Json::String(s)) => s
                .parse::<jiff::Timestamp>()
                .map_err(|e| arg_err(format!("{s:?} is not an RFC 3339 time: {e}"), 3))?,
            Some(_) => return Err(arg_err("expected a string", 3)),
        };
        Ok(json!(Self::compute(expression, timezone, count, after)?))
    }
}

/// `validate_expression(expression)`: whether a schedule expression is valid for a target.
pub struct ValidateExpression;

impl Function for ValidateExpression {
    fn definition(&self) -> proto::Function {
        proto::Function {
            parameters: vec![param("expression", AttributeType::String, "A schedule expression.")],
            variadic_parameter: None,
            r#return: Some(proto::function::Return {
                r#type: AttributeType::Bool.to_bytes(),
            }),
            summary: "Whether a schedule expression is valid".into(),
            description: "`true` when `expression` is a `cron(...)`, `rate(...)` or `at(...)` expression `ebssnap_target.schedule` accepts, `false` otherwise (never an error).".into(),
            description_kind: proto::StringKind::Markdown as i32,
            deprecation_message: String::new(),
        }
    }

    fn call(&self, args: Vec<Json>) -> Result<Json, FunctionError> {
        Ok(Json::Bool(schedule::parse(string_arg(&args, 0)?).is_ok()))
    }
}

pub fn all() -> BTreeMap<String, Arc<dyn Function>> {
    let mut m: BTreeMap<String, Arc<dyn Function>> = BTreeMap::new();
    m.insert("next_runs".into(), Arc::new(NextRuns));
    m.insert("validate_expression".into(), Arc::new(ValidateExpression));
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_runs_follows_the_time_zone_and_counts() {
        let after: jiff::Timestamp = "2026-03-27T12:00:00Z".parse().unwrap();
        // 05:00 in London: GMT until 01:00 UTC on 29 March, BST after.
        let runs = NextRuns::compute("cron(0 5 * * ? *)", "Europe/London", 3, after).unwrap();
        assert_eq!(
            runs,
            vec![
                "2026-03-28T05:00:00Z",
                "2026-03-29T04:00:00Z",
                "2026-03-30T04:00:00Z"
            ]
        );
        let r = NextRuns::compute("rate(12 hours)", "UTC", 2, after).unwrap();
        assert_eq!(r, vec!["2026-03-28T00:00:00Z", "2026-03-28T12:00:00Z"]);
    }

    #[test]
    fn errors_blame_the_argument() {
        let now = jiff::Timestamp::now();
        assert_eq!(
            NextRuns::compute("cron(bad)", "UTC", 1, now)
                .unwrap_err()
                .argument,
            Some(0)
        );
        assert_eq!(
            NextRuns::compute("rate(1 day)", "Mars/Base", 1, now)
                .unwrap_err()
                .argument,
            Some(1)
        );
        assert_eq!(
            NextRuns::compute("rate(1 day)", "UTC", 0, now)
                .unwrap_err()
                .argument,
            Some(2)
        );
        let e = NextRuns.call(vec![
            json!("rate(1 day)"),
            json!("UTC"),
            json!(1),
            json!("yesterday"),
        ]);
        assert_eq!(e.unwrap_err().argument, Some(3));
    }

    #[test]
    fn validate_expression_is_a_boolean_never_an_error() {
        assert_eq!(
            ValidateExpression.call(vec![json!("rate(1 day)")]),
            Ok(json!(true))
        );
        assert_eq!(
            ValidateExpression.call(vec![json!("every day")]),
            Ok(json!(false))
        );
    }
}
