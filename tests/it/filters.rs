//! `select.instance_filters` (EC2 DescribeInstances filters, AND-ed, EC2 doing the wildcard
//! matching) and `exclude.instance_ids`, against moto: the runner's selection, a run, and the
//! provider through the real terraform.

use std::collections::BTreeSet;

use ebssnap::aws::ec2::fetch_inventory;
use ebssnap::core::select::{self, Exclude, Select};
use serde_json::json;

use crate::fleet;
use crate::moto::Moto;

fn filters(pairs: &[(&str, &[&str])]) -> Select {
    Select {
        instance_filters: Some(
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.iter().map(|s| s.to_string()).collect()))
                .collect(),
        ),
        ..Select::default()
    }
}

#[tokio::test]
async fn instance_filters_are_and_ed_with_wildcards_and_exclusions_win() {
    let Some(m) = Moto::start() else { return };
    let c = m.clients().await;
    let (legacy_prod, legacy_prod_root) =
        fleet::instance(&c, &[("Name", "legacy_app1"), ("Env", "prod")]).await;
    let (legacy_dev, _) = fleet::instance(&c, &[("Name", "legacy_app2"), ("Env", "dev")]).await;
    let (modern_prod, _) = fleet::instance(&c, &[("Name", "app3"), ("Env", "prod")]).await;
    let (_legacy_prod2, legacy_prod2_root) =
        fleet::instance(&c, &[("Name", "legacy_db"), ("Env", "prod")]).await;
    let data = fleet::volume(&c, &[("Role", "data")]).await;
    fleet::attach(&c, &data, &legacy_prod, "/dev/sdf").await;

    let selected = |sel: Select, excl: Exclude| {
        let c = c.clone();
        async move {
            let inv = fetch_inventory(&c.ec2, &c.autoscaling, &sel).await.unwrap();
            select::select(&sel, &excl, &inv)
                .into_iter()
                .map(|s| s.volume_id)
                .collect::<BTreeSet<_>>()
        }
    };
    // tag:Name with a wildcard AND tag:Env: the two legacy prod instances, every volume.
    let sel = filters(&[("tag:Name", &["legacy_*"]), ("tag:Env", &["prod"])]);
    assert_eq!(
        selected(sel.clone(), Exclude::default()).await,
        BTreeSet::from([
            legacy_prod_root.clone(),
            data.clone(),
            legacy_prod2_root.clone()
        ])
    );
    // instance-id AND tag: one of them.
    let one = filters(&[
        ("instance-id", &[&legacy_prod, &legacy_dev]),
        ("tag:Env", &["prod"]),
    ]);
    assert_eq!(
        selected(one, Exclude::default()).await,
        BTreeSet::from([legacy_prod_root.clone(), data.clone()])
    );
    // exclude.instance_ids removes every volume of an instance.
    let excl = Exclude {
        instance_ids: Some(vec![legacy_prod.clone()]),
        ..Exclude::default()
    };
    assert_eq!(
        selected(sel, excl).await,
        BTreeSet::from([legacy_prod2_root.clone()])
    );
    // Filters that match nothing select nothing (no failure: they name no object).
    let none = filters(&[("tag:Name", &["nothing-*"])]);
    assert!(selected(none, Exclude::default()).await.is_empty());
    let _ = modern_prod;
}

#[tokio::test]
async fn an_asg_selected_through_its_group_name_tag_filter() {
    let Some(m) = Moto::start() else { return };
    let c = m.clients().await;
    let members = fleet::asg(&c, "web-prod", 2).await;
    let (_other, _) = fleet::instance(&c, &[("Name", "web-9")]).await;
    let sel = filters(&[("tag:aws:autoscaling:groupName", &["web-*"])]);
    let inv = fetch_inventory(&c.ec2, &c.autoscaling, &sel).await.unwrap();
    let got: BTreeSet<String> = select::select(&sel, &Exclude::default(), &inv)
        .into_iter()
        .filter_map(|s| s.instance_id)
        .collect();
    assert_eq!(got, members.into_iter().collect::<BTreeSet<_>>());
}

#[tokio::test]
async fn the_provider_writes_instance_filters_and_exclusions_and_imports_them() {
    let Some(m) = Moto::start() else { return };
    let Some(tf) = crate::tf::Tf::new(Some(&m)) else {
        return;
    };
    let c = m.clients().await;
    let (legacy, legacy_root) =
        fleet::instance(&c, &[("Name", "legacy_app1"), ("Env", "prod")]).await;
    let (skipped, _) = fleet::instance(&c, &[("Name", "legacy_app2"), ("Env", "prod")]).await;
    tf.write(&format!(
        r#"
resource "ebssnap_policy" "std" {{
  name           = "std"
  retention_days = 7
}}
resource "ebssnap_target" "legacy" {{
  policy = ebssnap_policy.std.name
  name   = "legacy"
  select {{
    instance_filters = {{
      "tag:Name" = ["legacy_*"]
      "tag:Env"  = ["prod"]
    }}
  }}
  exclude {{
    instance_ids = ["{skipped}"]
  }}
}}
data "ebssnap_volumes" "legacy" {{
  select {{
    instance_filters = {{ "tag:Name" = ["legacy_*"], "tag:Env" = ["prod"] }}
  }}
  exclude {{
    instance_ids = ["{skipped}"]
  }}
}}
output "volumes" {{
  value = data.ebssnap_volumes.legacy.volume_ids
}}
"#
    ));
    tf.apply();
    tf.assert_no_changes();
    let out = tf.run(&["output", "-json", "volumes"]);
    let v: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(v, json!([legacy_root]));
    let input = ebssnap::aws::scheduler::get_input(&c.scheduler, "std", "legacy")
        .await
        .unwrap()
        .unwrap();
    let d = ebssnap::core::doc::parse_target(&input).unwrap();
    assert_eq!(
        d.select.instance_filters.as_ref().unwrap()["tag:Name"],
        vec!["legacy_*".to_string()]
    );
    assert_eq!(
        d.exclude.as_ref().unwrap().instance_ids,
        Some(vec![skipped.clone()])
    );
    // Import round trip.
    let imported = crate::tf::Tf::new(Some(&m)).unwrap();
    imported.write(
        &std::fs::read_to_string(tf.dir.join("main.tf"))
            .unwrap()
            .replace(crate::tf::PROVIDER, ""),
    );
    for (addr, id) in [
        ("ebssnap_policy.std", "std"),
        ("ebssnap_target.legacy", "std/legacy"),
    ] {
        let o = imported.run(&["import", addr, id]);
        assert_eq!(o.code, 0, "{}", o.stderr);
    }
    imported.assert_no_changes();
    let _ = legacy;
}
