//! What the provider's own protocol layer adds, through the real terraform: resource identity and
//! import by identity, list resources for `terraform query` (1.15), provider functions (1.11 and
//! 1.15), and credentials from a `credential_process` profile.

use serde_json::Value;

use crate::moto::Moto;
use crate::tf::{Tf, Version};

const FLEET: &str = r#"
resource "ebssnap_policy" "std" {
  name           = "std"
  retention_days = 14
}
resource "ebssnap_policy" "db" {
  name           = "db"
  retention_days = 30
  min_snapshots  = 5
}
resource "ebssnap_target" "web" {
  policy   = ebssnap_policy.std.name
  name     = "web"
  schedule = "cron(0 5 * * ? *)"
  select {
    instance_tags = { Role = "web" }
  }
}
resource "ebssnap_target" "pg" {
  policy = ebssnap_policy.db.name
  name   = "pg"
  select {
    volume_tags = { Db = "*" }
  }
  exclude {
    root_volumes = true
  }
}
"#;

macro_rules! setup_115 {
    () => {{
        let Some(m) = Moto::start() else { return };
        let Some(tf) = Tf::with(Some(&m), Version::V115) else {
            return;
        };
        (m, tf)
    }};
}

/// The `identity` of every resource instance in a state file, by resource address.
fn identities(tf: &Tf) -> Vec<(String, Value)> {
    let state: Value =
        serde_json::from_str(&std::fs::read_to_string(tf.dir.join("terraform.tfstate")).unwrap())
            .unwrap();
    let mut out = Vec::new();
    for r in state["resources"].as_array().unwrap() {
        for i in r["instances"].as_array().unwrap() {
            out.push((
                format!(
                    "{}.{}",
                    r["type"].as_str().unwrap(),
                    r["name"].as_str().unwrap()
                ),
                i["identity"].clone(),
            ));
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

#[tokio::test]
async fn identity_is_stored_in_state_and_import_by_identity_works() {
    let (m, tf) = setup_115!();
    tf.write(FLEET);
    tf.apply();
    let ids = identities(&tf);
    assert_eq!(
        ids,
        vec![
            (
                "ebssnap_policy.db".into(),
                serde_json::json!({"name": "db"})
            ),
            (
                "ebssnap_policy.std".into(),
                serde_json::json!({"name": "std"})
            ),
            (
                "ebssnap_target.pg".into(),
                serde_json::json!({"policy": "db", "name": "pg"})
            ),
            (
                "ebssnap_target.web".into(),
                serde_json::json!({"policy": "std", "name": "web"})
            ),
        ],
        "identity in state"
    );
    tf.assert_no_changes();

    let other = Tf::with(Some(&m), Version::V115).unwrap();
    other.write(
        r#"
import {
  to       = ebssnap_policy.std
  identity = { name = "std" }
}
import {
  to       = ebssnap_target.web
  identity = { policy = "std", name = "web" }
}
"#,
    );
    let out = other.run(&["plan", "-generate-config-out=gen.tf"]);
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    assert!(
        out.stdout
            .contains("2 to import, 0 to add, 0 to change, 0 to destroy"),
        "{}",
        out.stdout
    );
    let applied = other.apply();
    assert!(applied.stdout.contains("2 imported"), "{}", applied.stdout);
    other.assert_no_changes();
    assert_eq!(identities(&other).len(), 2);

    // An identity that names nothing is the usual "does not exist" error.
    let missing = Tf::with(Some(&m), Version::V115).unwrap();
    missing.write(
        r#"
import {
  to       = ebssnap_policy.gone
  identity = { name = "gone" }
}
resource "ebssnap_policy" "gone" {
  name           = "gone"
  retention_days = 1
}
"#,
    );
    let out = missing.run(&["plan"]);
    assert_ne!(out.code, 0);
    assert!(
        out.stderr
            .contains("Cannot import non-existent remote object"),
        "{}",
        out.stderr
    );
}

#[tokio::test]
async fn terraform_query_lists_policies_and_targets_and_generates_importable_config() {
    let (m, tf) = setup_115!();
    tf.write(FLEET);
    tf.apply();
    // A schedule group that is not ebssnap's, and one named like ours without a policy document.
    let clients = m.clients().await;
    for g in ["backups-nightly", "ebssnap-stray"] {
        clients
            .scheduler
            .create_schedule_group()
            .name(g)
            .send()
            .await
            .unwrap();
    }

    let q = Tf::with(Some(&m), Version::V115).unwrap();
    q.write("");
    q.write_file(
        "adopt.tfquery.hcl",
        r#"
list "ebssnap_policy" "all" {
  provider = ebssnap
}
list "ebssnap_target" "all" {
  provider = ebssnap
}
list "ebssnap_target" "db" {
  provider = ebssnap
  config {
    policy = "db"
  }
}
"#,
    );
    let out = q.run(&["query"]);
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    let lines: Vec<String> = out
        .stdout
        .lines()
        .filter(|l| l.starts_with("list."))
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect();
    let mut got: Vec<(String, String)> = lines
        .iter()
        .map(|l| {
            let mut w = l.split(' ');
            let addr = w.next().unwrap_or_default().to_string();
            let name = w.next_back().unwrap_or_default().to_string();
            (addr, name)
        })
        .collect();
    got.sort();
    assert_eq!(
        got,
        vec![
            ("list.ebssnap_policy.all".into(), "db".into()),
            ("list.ebssnap_policy.all".into(), "std".into()),
            ("list.ebssnap_target.all".into(), "db/pg".into()),
            ("list.ebssnap_target.all".into(), "std/web".into()),
            ("list.ebssnap_target.db".into(), "db/pg".into()),
        ],
        "{}",
        out.stdout
    );

    // Generate configuration and import blocks, apply them, and plan nothing.
    let gen_dir = Tf::with(Some(&m), Version::V115).unwrap();
    gen_dir.write("");
    gen_dir.write_file(
        "adopt.tfquery.hcl",
        "list \"ebssnap_policy\" \"all\" {\n  provider = ebssnap\n}\nlist \"ebssnap_target\" \"all\" {\n  provider = ebssnap\n}\n",
    );
    let out = gen_dir.run(&["query", "-generate-config-out=generated.tf"]);
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    let generated = std::fs::read_to_string(gen_dir.dir.join("generated.tf")).unwrap();
    assert_eq!(generated.matches("import {").count(), 4, "{generated}");
    assert!(generated.contains("identity"), "{generated}");
    std::fs::remove_file(gen_dir.dir.join("adopt.tfquery.hcl")).unwrap();
    let applied = gen_dir.apply();
    assert!(
        applied
            .stdout
            .contains("4 imported, 0 added, 0 changed, 0 destroyed"),
        "{}\n{generated}",
        applied.stdout
    );
    gen_dir.assert_no_changes();
}

const FUNCTIONS: &str = r#"
output "runs" {
  value = provider::ebssnap::next_runs("cron(0 5 * * ? *)", "Europe/London", 3, "2026-03-27T12:00:00Z")
}
output "valid" {
  value = [
    provider::ebssnap::validate_expression("rate(1 day)"),
    provider::ebssnap::validate_expression("every day"),
  ]
}
"#;

async fn functions(v: Version) {
    let Some(tf) = Tf::with(None, v) else { return };
    tf.write(FUNCTIONS);
    tf.apply();
    let out = tf.run(&["output", "-json"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let o: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(
        o["runs"]["value"],
        serde_json::json!([
            "2026-03-28T05:00:00Z",
            "2026-03-29T04:00:00Z",
            "2026-03-30T04:00:00Z"
        ])
    );
    assert_eq!(o["valid"]["value"], serde_json::json!([true, false]));

    tf.write(
        r#"
output "bad" {
  value = provider::ebssnap::next_runs("rate(1 day)", "Mars/Olympus", 1)
}
"#,
    );
    let out = tf.run(&["plan"]);
    assert_ne!(out.code, 0);
    let err = crate::tf::squash_lines(&out.stderr);
    assert!(
        err.contains("Mars/Olympus") && err.contains("is not an IANA time zone"),
        "{}",
        out.stderr
    );
}

#[tokio::test]
async fn provider_functions_compute_next_runs_and_validate_expressions() {
    functions(Version::Default).await;
}

#[tokio::test]
async fn provider_functions_on_terraform_1_15() {
    functions(Version::V115).await;
}

#[tokio::test]
async fn credentials_come_from_a_credential_process_profile() {
    let Some(m) = Moto::start() else { return };
    let Some(mut tf) = Tf::new(Some(&m)) else {
        return;
    };
    let marker = tf.dir.join("credential-process-ran");
    let script = tf.dir.join("creds.sh");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\ntouch '{}'\necho '{{\"Version\": 1, \"AccessKeyId\": \"AKIDPROCESS\", \"SecretAccessKey\": \"process-secret\"}}'\n",
            marker.display()
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    let config = tf.dir.join("aws-config");
    std::fs::write(
        &config,
        format!(
            "[profile ops]\nregion = us-east-1\ncredential_process = {}\n",
            script.display()
        ),
    )
    .unwrap();
    tf.remove_env("AWS_ACCESS_KEY_ID");
    tf.remove_env("AWS_SECRET_ACCESS_KEY");
    tf.remove_env("AWS_SESSION_TOKEN");
    tf.set_env("AWS_CONFIG_FILE", &config.display().to_string());
    tf.set_env("AWS_PROFILE", "ops");
    tf.write(
        r#"
resource "ebssnap_policy" "std" {
  name           = "std"
  retention_days = 7
}
"#,
    );
    tf.apply();
    assert!(marker.exists(), "the credential_process was not run");
    tf.assert_no_changes();
}
