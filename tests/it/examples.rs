//! The examples do what their text says (issue 26): they validate with the real `terraform`, and
//! the production-databases selector of `examples/complete` selects only production databases.

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::fleet;
use crate::moto::Moto;
use crate::tf::{PROVIDER, Tf};

fn examples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("examples")
}

fn read(rel: &str) -> String {
    std::fs::read_to_string(examples().join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

fn validate(tf: &Tf, what: &str) {
    let out = tf.run(&["validate"]);
    assert_eq!(
        out.code, 0,
        "terraform validate of {what}:\n{}\n{}",
        out.stdout, out.stderr
    );
}

/// Every example that needs only this provider validates: the quickstart and the provider block
/// on their own, the registry fragments (resources, data source, functions) together, since they
/// refer to each other. `examples/complete` and the `ebssnap_iam_policy` fragment also need the
/// `hashicorp/aws` provider, which this machine cannot download (no Terraform registry): they are
/// checked by `terraform fmt` (`examples_are_terraform_fmt_clean`) and their selectors below. The
/// `ebssnap_restore_points` fragment is validated without its `aws_ebs_volume`.
#[test]
fn the_examples_validate() {
    let Some(tf) = Tf::new(None) else { return };
    tf.write_file("main.tf", &read("quickstart/main.tf"));
    validate(&tf, "examples/quickstart");

    let Some(tf) = Tf::new(None) else { return };
    tf.write_file("main.tf", &read("provider/provider.tf"));
    validate(&tf, "examples/provider");

    let Some(tf) = Tf::new(None) else { return };
    let mut all = String::from(PROVIDER);
    for rel in [
        "resources/ebssnap_policy/resource.tf",
        "resources/ebssnap_target/resource.tf",
        "data-sources/ebssnap_volumes/data-source.tf",
        "functions/next_runs/function.tf",
        "functions/validate_expression/function.tf",
    ] {
        all.push_str(&format!("\n# --- {rel}\n{}", read(rel)));
    }
    let points = read("data-sources/ebssnap_restore_points/data-source.tf");
    let ours = points
        .split("\n# A copy of the database volume")
        .next()
        .unwrap_or_default();
    assert!(ours.contains("data \"ebssnap_restore_points\""), "{ours}");
    all.push_str(&format!(
        "\n# --- ebssnap_restore_points (its data block)\n{ours}\n"
    ));
    tf.write_file("main.tf", &all);
    validate(&tf, "the registry examples");
}

/// The `select { ... }` block of `resource "<kind>" "<name>"` in `text`, braces balanced.
fn select_block(text: &str, kind: &str, name: &str) -> String {
    let head = format!("resource \"{kind}\" \"{name}\"");
    let start = text.find(&head).unwrap_or_else(|| panic!("no {head}"));
    let rest = &text[start..];
    let sel = rest.find("select {").expect("a select block");
    let mut depth = 0;
    for (i, ch) in rest[sel..].char_indices() {
        match ch {
            '{' => depth += 1,
            '}' => {
                depth -= 1;
                if depth == 0 {
                    return rest[sel..sel + i + 1].to_string();
                }
            }
            _ => {}
        }
    }
    panic!("unbalanced select block in {head}")
}

/// "Production databases" must mean databases that are in production: the selector of the
/// `databases` target in examples/complete, evaluated by the provider's own data source against
/// a seeded fleet, picks the db-* instances tagged Env=prod and nothing else.
#[tokio::test]
async fn the_complete_examples_database_target_selects_only_production_databases() {
    let Some(m) = Moto::start() else { return };
    let Some(tf) = Tf::new(Some(&m)) else { return };
    let c = m.clients().await;
    let (_, prod_db) = fleet::instance(&c, &[("Name", "db-1"), ("Env", "prod")]).await;
    let (_, dev_db) = fleet::instance(&c, &[("Name", "db-2"), ("Env", "dev")]).await;
    let (_, prod_app) = fleet::instance(&c, &[("Name", "app-1"), ("Env", "prod")]).await;

    let select = select_block(&read("complete/main.tf"), "ebssnap_target", "databases");
    tf.write(&format!(
        "data \"ebssnap_volumes\" \"databases\" {{\n{select}\n}}\noutput \"ids\" {{\n  value = data.ebssnap_volumes.databases.volume_ids\n}}\n"
    ));
    tf.apply();
    let out = tf.run(&["output", "-json", "ids"]);
    let ids: Value = serde_json::from_str(&out.stdout).expect("output JSON");
    let ids: Vec<&str> = ids
        .as_array()
        .expect("a list")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(
        ids,
        [prod_db.as_str()],
        "selected {ids:?}; dev db {dev_db}, prod app {prod_app}"
    );
}
