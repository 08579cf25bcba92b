//! Secrets Manager: the value of a policy's webhook secret. The value is returned to the caller
//! only; errors carry the ARN and the AWS code, never the value.

use super::aws_error;
use crate::error::AwsError;

/// The string value of secret `arn` (its current version).
pub async fn get_secret_string(
    client: &aws_sdk_secretsmanager::Client,
    arn: &str,
) -> Result<String, AwsError> {
    let out = client
        .get_secret_value()
        .secret_id(arn)
        .send()
        .await
        .map_err(|e| aws_error(format!("reading Secrets Manager secret {arn}"), e))?;
    out.secret_string()
        .map(String::from)
        .ok_or_else(|| AwsError {
            action: format!("reading Secrets Manager secret {arn}"),
            code: "SecretNotString".into(),
            message:
                "the secret has no string value (a binary secret cannot hold the webhook JSON)"
                    .into(),
            retryable: false,
            ambiguous: false,
        })
}
