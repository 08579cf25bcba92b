//! DynamoDB: reading ebs_snapper's configuration table (operator command `ebssnap migrate`).

use aws_sdk_dynamodb::types::AttributeValue;

use super::aws_error;
use crate::error::AwsError;

/// One item of ebs_snapper's table: (id, aws_account_id, configuration JSON text).
pub type StanzaItem = (String, Option<String>, String);

/// Every item of `table` (paginated scan), optionally of one account.
pub async fn scan_stanzas(
    client: &aws_sdk_dynamodb::Client,
    table: &str,
    account: Option<&str>,
) -> Result<Vec<StanzaItem>, AwsError> {
    let mut pages = client.scan().table_name(table).into_paginator().send();
    let mut out = Vec::new();
    let text = |v: Option<&AttributeValue>| v.and_then(|a| a.as_s().ok()).cloned();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| aws_error(format!("scanning DynamoDB table {table}"), e))?;
        for item in page.items() {
            let (Some(id), Some(config)) = (text(item.get("id")), text(item.get("configuration")))
            else {
                continue;
            };
            let acct = text(item.get("aws_account_id"));
            if account.is_some_and(|a| acct.as_deref() != Some(a)) {
                continue;
            }
            out.push((id, acct, config));
        }
    }
    out.sort();
    Ok(out)
}
