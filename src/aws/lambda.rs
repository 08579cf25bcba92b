//! Lambda: a run that runs out of time continues in an asynchronous invocation of its own
//! function (docs/design.md §5).

use aws_sdk_lambda::primitives::Blob;
use aws_sdk_lambda::types::InvocationType;

use super::aws_error;
use crate::error::AwsError;

/// Invokes `function_arn` asynchronously (`InvocationType=Event`) with `payload`.
pub async fn invoke_async(
    client: &aws_sdk_lambda::Client,
    function_arn: &str,
    payload: Vec<u8>,
) -> Result<(), AwsError> {
    client
        .invoke()
        .function_name(function_arn)
        .invocation_type(InvocationType::Event)
        .payload(Blob::new(payload))
        .send()
        .await
        .map(|_| ())
        .map_err(|e| aws_error(format!("invoking {function_arn} to continue the run"), e))
}
