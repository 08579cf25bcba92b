//! `ebssnap migrate ebs-snapper`: ebs_snapper's configuration stanzas as Terraform, or a check
//! of ebs_snapper's selection against ebssnap's.

use std::path::PathBuf;

use clap::{Args, Subcommand};

use super::common::{Global, connect};
use crate::error::Error;

pub const EXAMPLES: &str = "\
Examples:
  # ebs_snapper's DynamoDB table as Terraform (ebssnap.tf and MIGRATION.md in ./migrated)
  ebssnap migrate ebs-snapper --out migrated
  # The same from an exported file, accepting what cannot be expressed (listed in MIGRATION.md)
  ebssnap migrate ebs-snapper --file stanzas.json --out migrated --allow-lossy
  # After applying: does each deployed target select what ebs_snapper selects? (exit 1 if not)
  ebssnap migrate ebs-snapper --verify";

#[derive(Debug, Args)]
pub struct MigrateArgs {
    #[command(subcommand)]
    pub from: MigrateFrom,
}

#[derive(Debug, Subcommand)]
pub enum MigrateFrom {
    /// ebs_snapper's configuration stanzas (its DynamoDB table, or a file) as Terraform: one
    /// ebssnap_policy and one ebssnap_target per stanza, and MIGRATION.md
    #[command(after_help = format!("{EXAMPLES}\n\n{}", super::EXIT_CODES))]
    EbsSnapper {
        /// The DynamoDB table holding the stanzas
        #[arg(long, default_value = crate::core::migrate::DEFAULT_TABLE)]
        table: String,
        /// Only the stanzas of this account (the table's aws_account_id)
        #[arg(long)]
        account_id: Option<String>,
        /// Read the stanzas from a JSON file instead: {id: configuration} or [{id, configuration}]
        #[arg(long)]
        file: Option<PathBuf>,
        /// Where to write ebssnap.tf and MIGRATION.md
        #[arg(long, required_unless_present = "verify")]
        out: Option<PathBuf>,
        /// Compare, per stanza, ebs_snapper's selection now with the generated target's and the
        /// deployed target's (exit 1 on any difference); writes nothing
        #[arg(long, conflicts_with = "out")]
        verify: bool,
        /// Exit 0 even when something could not be expressed (it is listed in MIGRATION.md)
        #[arg(long)]
        allow_lossy: bool,
    },
}

pub async fn exec(g: &Global, a: &MigrateArgs) -> Result<i32, Error> {
    let MigrateFrom::EbsSnapper {
        table,
        account_id,
        file,
        out,
        allow_lossy,
        verify,
    } = &a.from;
    let stanzas = match file {
        Some(f) => crate::migrate::stanzas_from_file(f)?,
        None => {
            let clients = connect(g).await;
            let items =
                crate::aws::dynamo::scan_stanzas(&clients.dynamodb, table, account_id.as_deref())
                    .await?;
            crate::migrate::stanzas_from_items(items)?
        }
    };
    if *verify {
        let clients = connect(g).await;
        return crate::migrate::verify(&clients, &stanzas).await;
    }
    match out {
        Some(out) => {
            let clients = connect(g).await;
            crate::migrate::write(&clients, out, &stanzas, *allow_lossy).await
        }
        None => Err(Error::Input("give --out DIR (or --verify)".into())),
    }
}
