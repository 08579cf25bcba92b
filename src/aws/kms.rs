//! KMS: whether a key is AWS-managed (AWS refuses to share a snapshot encrypted under one).

use super::aws_error;
use crate::error::AwsError;

/// Whether `key_id` (an id, ARN or alias) is managed by AWS (`KeyManager` = `AWS`, e.g. the
/// default `aws/ebs` key) rather than by the customer.
pub async fn is_aws_managed(kms: &aws_sdk_kms::Client, key_id: &str) -> Result<bool, AwsError> {
    let out = kms
        .describe_key()
        .key_id(key_id)
        .send()
        .await
        .map_err(|e| aws_error(format!("describing KMS key {key_id}"), e))?;
    Ok(out
        .key_metadata()
        .and_then(|m| m.key_manager())
        .is_some_and(|m| *m == aws_sdk_kms::types::KeyManagerType::Aws))
}
