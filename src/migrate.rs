//! `ebssnap migrate ebs-snapper`: the shell around `core::migrate` — read the stanzas (from
//! ebs_snapper's DynamoDB table or a file), write the Terraform and MIGRATION.md, say what was
//! lost on stderr.

use std::collections::BTreeSet;
use std::path::Path;

use serde_json::Value;

use crate::core::migrate::{self, Migrated, Refused, Stanza};
use crate::error::Error;

/// Stanzas from a file: a JSON object `{id: configuration}`, or an array of
/// `{"id", "aws_account_id"?, "configuration"}` (configuration as an object or as the JSON text
/// DynamoDB stores).
pub fn stanzas_from_file(path: &Path) -> Result<Vec<Stanza>, Error> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| Error::Input(format!("cannot read {}: {e}", path.display())))?;
    let v: Value = serde_json::from_str(&text)
        .map_err(|e| Error::Input(format!("{} is not JSON: {e}", path.display())))?;
    let config = |c: &Value| -> Result<Value, Error> {
        match c {
            Value::String(s) => serde_json::from_str(s)
                .map_err(|e| Error::Input(format!("a configuration is not JSON: {e}"))),
            other => Ok(other.clone()),
        }
    };
    match v {
        Value::Object(m) => m
            .iter()
            .map(|(id, c)| {
                Ok(Stanza {
                    id: id.clone(),
                    account: None,
                    configuration: config(c)?,
                })
            })
            .collect(),
        Value::Array(items) => items
            .iter()
            .map(|i| {
                let id = i["id"]
                    .as_str()
                    .ok_or_else(|| Error::Input("every array entry needs an \"id\"".into()))?;
                Ok(Stanza {
                    id: id.to_string(),
                    account: i["aws_account_id"].as_str().map(String::from),
                    configuration: config(&i["configuration"])?,
                })
            })
            .collect(),
        _ => Err(Error::Input(format!(
            "{}: expected an object {{id: configuration}} or an array of {{id, configuration}}",
            path.display()
        ))),
    }
}

/// Stanzas from items of ebs_snapper's table.
pub fn stanzas_from_items(
    items: Vec<crate::aws::dynamo::StanzaItem>,
) -> Result<Vec<Stanza>, Error> {
    items
        .into_iter()
        .map(|(id, account, text)| {
            let configuration = serde_json::from_str(&text).map_err(|e| {
                Error::Input(format!("stanza {id:?}: its configuration is not JSON: {e}"))
            })?;
            Ok(Stanza {
                id,
                account,
                configuration,
            })
        })
        .collect()
}

/// `--verify`: per stanza, ebs_snapper's selection now, the generated target's, and the
/// deployed target's (when `ebssnap-<name>/<name>` exists); exit 1 on any difference.
pub async fn verify(clients: &crate::aws::Clients, stanzas: &[Stanza]) -> Result<i32, Error> {
    use crate::aws::ec2;
    use crate::core::select;
    let (migrated, refused) = plan(stanzas);
    let mut differ = false;
    for r in &refused {
        eprintln!("ebssnap: NOT MIGRATED {}: {}", r.stanza_id, r.reason);
    }
    for m in &migrated {
        let (sel, excl) = m.selector();
        let inv = ec2::fetch_inventory(&clients.ec2, &clients.autoscaling, &sel).await?;
        let theirs = m.ebs_snapper_selection(&inv);
        let generated: BTreeSet<String> = select::select(&sel, &excl, &inv)
            .into_iter()
            .map(|s| s.volume_id)
            .collect();
        let deployed = match crate::runner::documents::load_target(clients, &m.name, &m.name).await
        {
            Ok((doc, _)) => {
                let inv =
                    ec2::fetch_inventory(&clients.ec2, &clients.autoscaling, &doc.select).await?;
                Some(
                    select::select(&doc.select, &doc.exclude(), &inv)
                        .into_iter()
                        .map(|s| s.volume_id)
                        .collect::<BTreeSet<String>>(),
                )
            }
            // Not deployed (yet): only the generated target is compared.
            Err(Error::Input(_)) => None,
            Err(e) => return Err(e),
        };
        let gen_diff = migrate::difference(&theirs, &generated);
        let dep_diff = deployed
            .as_ref()
            .map(|d| migrate::difference(&theirs, d))
            .unwrap_or_default();
        let ok = gen_diff.is_empty() && dep_diff.is_empty();
        differ |= !ok;
        println!(
            "{} {}: ebs_snapper {}, generated {}{}, deployed {}{}",
            if ok { "OK  " } else { "DIFF" },
            m.stanza_id,
            theirs.len(),
            generated.len(),
            if gen_diff.is_empty() {
                String::new()
            } else {
                format!(" ({})", gen_diff.join(" "))
            },
            deployed
                .as_ref()
                .map_or("-".to_string(), |d| d.len().to_string()),
            if dep_diff.is_empty() {
                String::new()
            } else {
                format!(" ({})", dep_diff.join(" "))
            },
        );
    }
    Ok(if differ { 1 } else { crate::error::exit::OK })
}

/// Maps every stanza.
pub fn plan(stanzas: &[Stanza]) -> (Vec<Migrated>, Vec<Refused>) {
    let mut taken = BTreeSet::new();
    let mut ok = Vec::new();
    let mut refused = Vec::new();
    for s in stanzas {
        match migrate::migrate(s, &mut taken) {
            Ok(m) => ok.push(m),
            Err(r) => refused.push(r),
        }
    }
    (ok, refused)
}

/// Writes `ebssnap.tf` and `MIGRATION.md` under `out`; prints losses on stderr. The exit code:
/// 0, or 1 when something could not be expressed and `allow_lossy` is false.
pub async fn write(
    clients: &crate::aws::Clients,
    out: &Path,
    stanzas: &[Stanza],
    allow_lossy: bool,
) -> Result<i32, Error> {
    let (mut migrated, refused) = plan(stanzas);
    // Replication: the copy Regions are tags on what each stanza selects.
    for m in migrated.iter_mut().filter(|m| m.replication.is_some()) {
        let (sel, _) = m.selector();
        let regions = crate::aws::ec2::fetch_inventory(&clients.ec2, &clients.autoscaling, &sel)
            .await
            .map(|inv| m.replication_regions(&inv))
            .map_err(|e| format!("{}: {}", e.code, e.message));
        m.apply_replication(regions);
    }
    std::fs::create_dir_all(out)
        .map_err(|e| Error::Input(format!("cannot create {}: {e}", out.display())))?;
    let write = |name: &str, text: String| {
        std::fs::write(out.join(name), text)
            .map_err(|e| Error::Input(format!("cannot write {}: {e}", out.join(name).display())))
    };
    write("ebssnap.tf", migrate::render(&migrated))?;
    write("MIGRATION.md", migrate::report(&migrated, &refused))?;
    eprintln!(
        "ebssnap: migrated {} stanza(s) to {}/ebssnap.tf ({} not migrated); see MIGRATION.md",
        migrated.len(),
        out.display(),
        refused.len()
    );
    let mut lossy = !refused.is_empty();
    for m in &migrated {
        for l in &m.losses {
            eprintln!("ebssnap: LOSSY {}: {l}", m.stanza_id);
            lossy = true;
        }
    }
    for r in &refused {
        eprintln!("ebssnap: NOT MIGRATED {}: {}", r.stanza_id, r.reason);
    }
    Ok(if lossy && !allow_lossy {
        eprintln!(
            "ebssnap: the migration is lossy: review MIGRATION.md, then rerun with --allow-lossy to accept it"
        );
        1
    } else {
        crate::error::exit::OK
    })
}
