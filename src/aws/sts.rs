//! STS: the credentials of a role in another account (`ebssnap coverage --accounts`).

use super::aws_error;
use crate::error::AwsError;

/// Assumes `role_arn` (with `external_id` when the role's trust policy requires one) for one
/// hour, as session `session_name`.
pub async fn assume_role(
    sts: &aws_sdk_sts::Client,
    role_arn: &str,
    external_id: Option<&str>,
    session_name: &str,
) -> Result<aws_sdk_sts::config::Credentials, AwsError> {
    let out = sts
        .assume_role()
        .role_arn(role_arn)
        .role_session_name(session_name)
        .set_external_id(external_id.map(String::from))
        .duration_seconds(3600)
        .send()
        .await
        .map_err(|e| aws_error(format!("assuming role {role_arn}"), e))?;
    let c = out.credentials().ok_or_else(|| AwsError {
        action: format!("assuming role {role_arn}"),
        code: "NoCredentials".into(),
        message: "STS answered without credentials".into(),
        retryable: false,
        ambiguous: false,
    })?;
    let expiry = std::time::SystemTime::try_from(*c.expiration()).ok();
    Ok(aws_sdk_sts::config::Credentials::new(
        c.access_key_id(),
        c.secret_access_key(),
        Some(c.session_token().to_string()),
        expiry,
        "ebssnap-assume-role",
    ))
}
