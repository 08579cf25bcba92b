//! `ebssnap migrate ebs-snapper`: stanzas in moto's DynamoDB (ebs_snapper's table) or a file →
//! Terraform that `terraform fmt -check`s, validates and applies with the real terraform, whose
//! targets select exactly what ebs_snapper selects; losses listed, exit 1 unless --allow-lossy.

use std::collections::BTreeSet;

use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, KeySchemaElement, KeyType,
    ScalarAttributeType,
};
use serde_json::{Value, json};

use crate::cli::ebssnap;
use crate::fleet;
use crate::moto::Moto;
use crate::tf::Tf;

const ACCOUNT: &str = "123456789012";

async fn seed_table(m: &Moto, stanzas: &[(&str, Value)]) {
    let c = m.clients().await;
    c.dynamodb
        .create_table()
        .table_name("ebs_snapshot_configuration")
        .billing_mode(BillingMode::PayPerRequest)
        .key_schema(
            KeySchemaElement::builder()
                .attribute_name("aws_account_id")
                .key_type(KeyType::Hash)
                .build()
                .unwrap(),
        )
        .key_schema(
            KeySchemaElement::builder()
                .attribute_name("id")
                .key_type(KeyType::Range)
                .build()
                .unwrap(),
        )
        .attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name("aws_account_id")
                .attribute_type(ScalarAttributeType::S)
                .build()
                .unwrap(),
        )
        .attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name("id")
                .attribute_type(ScalarAttributeType::S)
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    for (id, config) in stanzas {
        c.dynamodb
            .put_item()
            .table_name("ebs_snapshot_configuration")
            .item("aws_account_id", AttributeValue::S(ACCOUNT.into()))
            .item("id", AttributeValue::S((*id).into()))
            .item("configuration", AttributeValue::S(config.to_string()))
            .send()
            .await
            .unwrap();
    }
}

fn volumes(m: &Moto, policy: &str) -> BTreeSet<String> {
    let out = ebssnap(
        &m.env(),
        &["volumes", "--policy", policy, "--target", policy, "--json"],
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    out.json()["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["volume_id"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn stanzas_from_the_table_become_terraform_that_selects_what_ebs_snapper_selected() {
    let Some(m) = Moto::start() else { return };
    let Some(tf) = Tf::new(Some(&m)) else { return };
    let c = m.clients().await;
    // The fleet.
    let (backup_yes, backup_yes_root) = fleet::instance(&c, &[("backup", "yes")]).await;
    let (_backup_no, _) = fleet::instance(&c, &[("backup", "no")]).await;
    let (legacy, legacy_root) = fleet::instance(
        &c,
        &[("Name", "legacy_server_name_1"), ("key", "tag-value")],
    )
    .await;
    let (legacy2, _) = fleet::instance(
        &c,
        &[("Name", "legacy_server_name_2"), ("key", "tag-value")],
    )
    .await;
    let legacy_data = fleet::volume(&c, &[("Role", "data")]).await;
    fleet::attach(&c, &legacy_data, &legacy, "/dev/sdf").await;
    let web = fleet::asg(&c, "web-prod", 2).await;
    let mut web_volumes = BTreeSet::new();
    for i in &web {
        web_volumes.extend(fleet::volumes_of(&c, i).await);
    }
    let (db, db_root) = fleet::instance(&c, &[("Role", "db")]).await;
    let db_data = fleet::volume(&c, &[("Role", "db-data")]).await;
    fleet::attach(&c, &db_data, &db, "/dev/sdg").await;

    seed_table(
        &m,
        &[
            // README's example: everything tagged backup=yes.
            ("tagged_instances", json!({"match": {"tag:backup": "yes"}, "snapshot": {"retention": "4 days", "minimum": 5, "frequency": "12 hours"}, "ignore": []})),
            // DESIGN's example: instance id AND a tag AND a Name wildcard, crontab in UTC.
            ("legacy", json!({"match": {"instance-id": [legacy, legacy2], "tag:key": "tag-value", "tag:Name": "legacy_server_name_1*"},
                              "snapshot": {"retention": "1 week", "minimum": 3, "frequency": "0 5 * * ? *"}})),
            // An Auto Scaling group through its tag, hourly, sub-day retention.
            ("web asg", json!({"match": {"tag:aws:autoscaling:groupName": "web-*"}, "snapshot": {"retention": "36 hours", "minimum": 2, "frequency": "6 hours"}})),
            // ignore lists and ignore_retention (lossy).
            ("db", json!({"match": {"tag:Role": "db"}, "snapshot": {"retention": "30 days", "minimum": 7, "frequency": "1 day"},
                          "ignore": [db_data], "ignore_retention": true})),
        ],
    )
    .await;

    let out_dir = tf.dir.join("gen");
    let out_s = out_dir.display().to_string();
    let lossy = ebssnap(&m.env(), &["migrate", "ebs-snapper", "--out", &out_s]);
    assert_eq!(
        lossy.code, 1,
        "lossy without --allow-lossy:\n{}",
        lossy.stderr
    );
    assert!(
        lossy.stderr.contains("LOSSY db: ignore_retention"),
        "{}",
        lossy.stderr
    );
    let md = std::fs::read_to_string(out_dir.join("MIGRATION.md")).unwrap();
    assert!(md.contains("ignore_retention"), "{md}");
    assert!(md.contains("rounded up to 2 day(s)"), "{md}");
    let ok = ebssnap(
        &m.env(),
        &[
            "migrate",
            "ebs-snapper",
            "--account-id",
            ACCOUNT,
            "--out",
            &out_s,
            "--allow-lossy",
        ],
    );
    assert_eq!(ok.code, 0, "{}", ok.stderr);

    // The output is fmt-clean, validates and applies with the real terraform.
    let generated = std::fs::read_to_string(out_dir.join("ebssnap.tf")).unwrap();
    tf.write("");
    std::fs::write(tf.dir.join("ebssnap.tf"), &generated).unwrap();
    let fmt = tf.run(&["fmt", "-check", "-diff", "ebssnap.tf"]);
    assert_eq!(fmt.code, 0, "not fmt-clean:\n{}\n{generated}", fmt.stdout);
    let valid = tf.run(&["validate"]);
    assert_eq!(valid.code, 0, "{}\n{}", valid.stderr, generated);
    tf.apply();
    tf.assert_no_changes();

    // Each target selects what ebs_snapper selected.
    assert_eq!(
        volumes(&m, "tagged_instances"),
        BTreeSet::from([backup_yes_root.clone()])
    );
    assert_eq!(
        volumes(&m, "legacy"),
        BTreeSet::from([legacy_root.clone(), legacy_data.clone()])
    );
    assert_eq!(volumes(&m, "web_asg"), web_volumes);
    assert_eq!(
        volumes(&m, "db"),
        BTreeSet::from([db_root.clone()]),
        "ignore → exclude"
    );
    let _ = backup_yes;

    // A run snapshots exactly that selection.
    let run = ebssnap(
        &m.env(),
        &[
            "run",
            "--policy",
            "legacy",
            "--target",
            "legacy",
            "--run-key",
            "r1",
            "--json",
        ],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let created: BTreeSet<String> = run.json()["created"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["volume_id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(created, BTreeSet::from([legacy_root, legacy_data]));
}

#[tokio::test]
async fn stanzas_from_a_file_and_what_cannot_be_migrated() {
    let Some(m) = Moto::start() else { return };
    let dir = std::env::temp_dir().join(format!("ebssnap-migrate-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("stanzas.json");
    std::fs::write(
        &file,
        json!({
            "daily_tagged": {"snapshot": {"minimum": 5, "frequency": "1 day", "retention": "5 days"}, "match": {"tag:backup": "daily"}},
            "no_match": {"snapshot": {"minimum": 1, "frequency": "1 day", "retention": "5 days"}},
            "odd": {"match": {"tag:x": "y"}, "snapshot": {"retention": "2 weeks", "frequency": "whenever"}, "replication": "yes"}
        })
        .to_string(),
    )
    .unwrap();
    let out = dir.join("out");
    let r = ebssnap(
        &m.env(),
        &[
            "migrate",
            "ebs-snapper",
            "--file",
            file.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ],
    );
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(r.stderr.contains("NOT MIGRATED no_match"), "{}", r.stderr);
    assert!(
        r.stderr.contains("LOSSY odd: frequency \"whenever\""),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("LOSSY odd: replication"), "{}", r.stderr);
    let tf = std::fs::read_to_string(out.join("ebssnap.tf")).unwrap();
    assert!(
        tf.contains("resource \"ebssnap_target\" \"daily_tagged\""),
        "{tf}"
    );
    assert!(tf.contains("retention_days = 14"), "2 weeks: {tf}");
    assert!(!tf.contains("no_match"), "{tf}");
    std::fs::remove_dir_all(dir).ok();
}
