//! Plan-time validation: every bad input fails `terraform plan` with a message that names the
//! attribute (Terraform prints the attribute's line under the error).

use crate::tf::{PROVIDER, Tf};

fn target(body: &str) -> String {
    format!("resource \"ebssnap_target\" \"t\" {{\n  policy = \"std\"\n{body}\n}}\n")
}

fn target_sel(extra: &str) -> String {
    target(&format!(
        "  name = \"web\"\n  select {{\n    instance_names = [\"web-*\"]\n  }}\n{extra}"
    ))
}

fn policy(body: &str) -> String {
    format!("resource \"ebssnap_policy\" \"p\" {{\n{body}\n}}\n")
}

fn policy_ok(extra: &str) -> String {
    policy(&format!("  name = \"std\"\n  retention_days = 14\n{extra}"))
}

/// (case, configuration, the attribute named in the error, a phrase of the message)
fn cases() -> Vec<(&'static str, String, &'static str, &'static str)> {
    let many_ids: Vec<String> = (0..500).map(|i| format!("\"vol-{i:017}\"")).collect();
    vec![
        (
            "cron minutes out of range",
            target_sel("  schedule = \"cron(60 5 * * ? *)\""),
            "schedule",
            "minutes field",
        ),
        (
            "cron hours out of range",
            target_sel("  schedule = \"cron(0 25 * * ? *)\""),
            "schedule",
            "hours field",
        ),
        (
            "cron both day fields",
            target_sel("  schedule = \"cron(0 5 * * MON *)\""),
            "schedule",
            "? in the other",
        ),
        (
            "cron five fields",
            target_sel("  schedule = \"cron(0 5 * * ?)\""),
            "schedule",
            "Scheduler needs 6",
        ),
        (
            "cron bad # occurrence",
            target_sel("  schedule = \"cron(0 5 ? * 2#7 *)\""),
            "schedule",
            "occurrence",
        ),
        (
            "rate zero",
            target_sel("  schedule = \"rate(0 minutes)\""),
            "schedule",
            "at least 1",
        ),
        (
            "rate plural for one",
            target_sel("  schedule = \"rate(1 hours)\""),
            "schedule",
            "singular",
        ),
        (
            "at with offset",
            target_sel("  schedule = \"at(2027-01-01T00:00:00Z)\""),
            "schedule",
            "without offset",
        ),
        (
            "bad time zone",
            target_sel("  timezone = \"Mars/Olympus_Mons\""),
            "timezone",
            "IANA",
        ),
        (
            "target name starts with _",
            target("  name = \"_policy\"\n  select {\n    all_volumes = true\n  }"),
            "name",
            "reserved",
        ),
        (
            "target name too long",
            target(&format!(
                "  name = \"{}\"\n  select {{\n    all_volumes = true\n  }}",
                "t".repeat(65)
            )),
            "name",
            "1 to 64",
        ),
        (
            "policy name too long",
            policy(&format!(
                "  name = \"{}\"\n  retention_days = 14",
                "p".repeat(57)
            )),
            "name",
            "1 to 56",
        ),
        (
            "policy name with a space",
            policy("  name = \"my policy\"\n  retention_days = 14"),
            "name",
            "letters, digits",
        ),
        (
            "empty selector",
            target("  name = \"web\"\n  select {\n    all_volumes = false\n  }"),
            "select",
            "selects nothing",
        ),
        (
            "negative retention",
            policy("  name = \"std\"\n  retention_days = -1"),
            "retention_days",
            "between 1 and",
        ),
        (
            "zero retention",
            policy("  name = \"std\"\n  retention_days = 0"),
            "retention_days",
            "between 1 and",
        ),
        (
            "policy min above max",
            policy_ok("  min_snapshots = 5\n  max_snapshots = 2"),
            "min_snapshots",
            "must not exceed",
        ),
        (
            "target min above max",
            target_sel("  min_snapshots = 9\n  max_snapshots = 3"),
            "min_snapshots",
            "must not exceed",
        ),
        (
            "http webhook",
            policy_ok("  failure_webhook_url = \"http://tickets.example.com/x\""),
            "failure_webhook_url",
            "use https",
        ),
        (
            "webhook not a URL",
            policy_ok("  failure_webhook_url = \"tickets\""),
            "failure_webhook_url",
            "not an https URL",
        ),
        (
            "malformed DLQ ARN",
            target_sel("  dead_letter_queue_arn = \"arn:aws:sqs:us-east-1:12345:dlq\""),
            "dead_letter_queue_arn",
            "not a valid ARN",
        ),
        (
            "DLQ ARN of another service",
            target_sel("  dead_letter_queue_arn = \"arn:aws:sns:us-east-1:123456789012:t\""),
            "dead_letter_queue_arn",
            "service sqs",
        ),
        (
            "end before start",
            target_sel(
                "  start_date = \"2030-02-01T00:00:00Z\"\n  end_date = \"2030-01-01T00:00:00Z\"",
            ),
            "end_date",
            "must be after",
        ),
        (
            "start date not RFC 3339",
            target_sel("  start_date = \"2030-02-01\""),
            "start_date",
            "RFC 3339",
        ),
        (
            "oversized selector",
            target(&format!(
                "  name = \"web\"\n  select {{\n    volume_ids = [{}]\n  }}",
                many_ids.join(", ")
            )),
            "select",
            "at most 8192",
        ),
        (
            "instance id without i-",
            target("  name = \"web\"\n  select {\n    instance_ids = [\"web-1\"]\n  }"),
            "instance_ids",
            "start with",
        ),
        (
            "excluded volume id without vol-",
            target_sel("  exclude {\n    volume_ids = [\"v-1\"]\n  }"),
            "volume_ids",
            "start with",
        ),
        (
            "flexible window too long",
            target_sel("  flexible_window_minutes = 2000"),
            "flexible_window_minutes",
            "between 0 and 1440",
        ),
        (
            "too many retries",
            target_sel("  retry_attempts = 200"),
            "retry_attempts",
            "between 0 and 185",
        ),
        (
            "event age too short",
            target_sel("  max_event_age_seconds = 10"),
            "max_event_age_seconds",
            "between 60 and 86400",
        ),
        (
            "reserved snapshot tag",
            policy_ok("  snapshot_tags = { \"ebssnap:policy\" = \"x\" }"),
            "snapshot_tags",
            "reserved prefix",
        ),
        (
            "bad sweep schedule",
            policy_ok("  sweep_schedule = \"daily\""),
            "sweep_schedule",
            "not a schedule expression",
        ),
        (
            "negative orphan retention",
            policy_ok("  orphan_retention_days = -3"),
            "orphan_retention_days",
            "between 1 and",
        ),
        (
            "token in a plain webhook URL's query",
            policy_ok("  failure_webhook_url = \"https://hooks.example.com/ebs?token=abc\""),
            "failure_webhook_url",
            "failure_webhook_secret_arn",
        ),
        (
            "userinfo in a plain webhook URL",
            policy_ok("  failure_webhook_url = \"https://user:pass@hooks.example.com/ebs\""),
            "failure_webhook_url",
            "carries a credential",
        ),
        (
            "Slack webhook path in a plain webhook URL",
            policy_ok(
                "  failure_webhook_url = \"https://hooks.slack.com/services/T0000/B0000/XXXXXXXXXXXXXXXXXXXXXXXX\"",
            ),
            "failure_webhook_url",
            "a path that looks like a token",
        ),
        (
            "long token in a plain webhook URL's path",
            policy_ok(
                "  failure_webhook_url = \"https://tickets.example.com/webhook/9f8e7d6c5b4a39281706f5e4\"",
            ),
            "failure_webhook_url",
            "failure_webhook_secret_arn",
        ),
        (
            "two webhooks",
            policy_ok(
                "  failure_webhook_url = \"https://hooks.example.com/ebs\"\n  failure_webhook_secret_arn = \"arn:aws:secretsmanager:us-east-1:123456789012:secret:hook-AbCdEf\"",
            ),
            "failure_webhook_secret_arn",
            "not both",
        ),
        (
            "unknown instance filter name",
            target(
                "  name = \"web\"\n  select {\n    instance_filters = { colour = [\"blue\"] }\n  }",
            ),
            "instance_filters",
            "not a DescribeInstances filter name",
        ),
        (
            "excluded instance that is not an instance id",
            target_sel("  exclude {\n    instance_ids = [\"vol-1\"]\n  }"),
            "instance_ids",
            "must start with \"i-\"",
        ),
        (
            "SNS topic that is not an SNS ARN",
            policy_ok("  failure_sns_topic_arn = \"arn:aws:sqs:us-east-1:123456789012:failures\""),
            "failure_sns_topic_arn",
            "sns",
        ),
    ]
}

#[test]
fn bad_inputs_fail_plan_naming_the_attribute() {
    if crate::tf::terraform_binary().is_none() {
        return;
    }
    let cases = cases();
    assert!(cases.len() >= 25);
    let failures: Vec<String> = std::thread::scope(|s| {
        let handles: Vec<_> = cases
            .chunks(cases.len().div_ceil(4))
            .map(|chunk| {
                s.spawn(move || {
                    let mut bad = Vec::new();
                    for (case, config, attribute, phrase) in chunk {
                        let tf = Tf::new(None).expect("terraform");
                        tf.write(config);
                        let out = tf.run(&["plan"]);
                        let text = format!("{}\n{}", out.stdout, out.stderr);
                        let flat = text.split_whitespace().collect::<Vec<_>>().join(" ");
                        let names_attribute = text.lines().any(|l| {
                            let l = l.trim_start();
                            l.split(':').nth(1).is_some_and(|src| {
                                src.trim_start().starts_with(&format!("{attribute} "))
                            }) || l.contains(&format!("{attribute} ="))
                                || l.contains(&format!("{attribute} {{"))
                        }) || flat
                            .contains(&format!("The {attribute} block"));
                        if out.code == 0 || !flat.contains(phrase) || !names_attribute {
                            bad.push(format!(
                                "{case}: exit {}, want {attribute:?} and {phrase:?} in:\n{text}",
                                out.code
                            ));
                        }
                    }
                    bad
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect()
    });
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n---\n")
    );
}

#[test]
fn provider_configuration_is_validated() {
    if crate::tf::terraform_binary().is_none() {
        return;
    }
    for (body, attribute, phrase) in [
        ("runner_arn = \"ebssnap\"", "runner_arn", "not a valid ARN"),
        (
            "default_timezone = \"Nowhere/Land\"",
            "default_timezone",
            "IANA",
        ),
        (
            "default_schedule = \"cron(0 5 * * *)\"",
            "default_schedule",
            "Scheduler needs 6",
        ),
        (
            "endpoint_url = \"localhost\"",
            "endpoint_url",
            "not an http(s) URL",
        ),
    ] {
        let tf = Tf::new(None).unwrap();
        let config = PROVIDER.replace(
            "runner_arn         = \"arn:aws:lambda:us-east-1:123456789012:function:ebssnap\"",
            body,
        );
        std::fs::write(
            tf.dir.join("main.tf"),
            format!("{config}\n{}", policy_ok("")),
        )
        .unwrap();
        let out = tf.run(&["plan"]);
        let flat = out.stderr.split_whitespace().collect::<Vec<_>>().join(" ");
        assert_ne!(out.code, 0);
        assert!(
            flat.contains(phrase) && out.stderr.contains(attribute),
            "{body}: {}",
            out.stderr
        );
    }
}
