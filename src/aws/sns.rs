//! SNS: publishing a ticket. The message is the ticket's JSON; `event`, `severity`, `policy`
//! and `target` are message attributes (subscription filter policies can route on them); a FIFO
//! topic (`.fifo`) gets the message group and deduplication ids from the ticket's `dedup_key`.

use aws_sdk_sns::types::MessageAttributeValue;

use super::aws_error;
use crate::core::ticket::Ticket;
use crate::error::AwsError;

fn string_attr(v: &str) -> Option<MessageAttributeValue> {
    MessageAttributeValue::builder()
        .data_type("String")
        .string_value(v)
        .build()
        .ok()
}

/// A FIFO id (≤ 128 characters of `[A-Za-z0-9!-~]`) derived from the dedup key: printable
/// ASCII kept, the rest replaced, and long keys shortened with a hash so distinct keys stay
/// distinct.
pub fn fifo_id(dedup_key: &str) -> String {
    let clean: String = dedup_key
        .chars()
        .map(|c| if c.is_ascii_graphic() { c } else { '_' })
        .collect();
    if clean.len() <= 128 {
        return clean;
    }
    use sha2::{Digest, Sha256};
    let digest = hex::encode(Sha256::digest(dedup_key.as_bytes()));
    format!("{}-{}", &clean[..63], &digest[..64])
}

/// Publishes `t` to `topic_arn`; returns the message id.
pub async fn publish_ticket(
    client: &aws_sdk_sns::Client,
    topic_arn: &str,
    t: &Ticket,
) -> Result<String, AwsError> {
    let body = serde_json::to_string(t).map_err(|e| AwsError {
        action: "encoding the ticket".into(),
        code: "Serialization".into(),
        message: e.to_string(),
        retryable: false,
        ambiguous: false,
    })?;
    let mut req = client
        .publish()
        .topic_arn(topic_arn)
        .subject(
            format!("ebssnap {} {}", t.event, t.policy)
                .chars()
                .take(100)
                .collect::<String>(),
        )
        .message(body);
    for (k, v) in [
        ("event", Some(t.event.as_str())),
        ("severity", Some(t.severity.as_str())),
        ("policy", Some(t.policy.as_str())),
        ("target", t.target.as_deref()),
    ] {
        if let Some(a) = v.filter(|v| !v.is_empty()).and_then(string_attr) {
            req = req.message_attributes(k, a);
        }
    }
    if topic_arn.ends_with(".fifo") {
        let id = fifo_id(&t.dedup_key);
        req = req
            .message_group_id(id.clone())
            .message_deduplication_id(id);
    }
    let out = req.send().await.map_err(|e| {
        aws_error(
            format!("publishing the {} ticket to SNS topic {topic_arn}", t.event),
            e,
        )
    })?;
    Ok(out.message_id().unwrap_or_default().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fifo_ids_are_valid_and_distinct() {
        assert_eq!(
            fifo_id("std/web/2026-11-27T05:00:00Z"),
            "std/web/2026-11-27T05:00:00Z"
        );
        assert_eq!(fifo_id("a b"), "a_b");
        let long_a = format!("{}a", "x".repeat(200));
        let long_b = format!("{}b", "x".repeat(200));
        assert!(fifo_id(&long_a).len() <= 128);
        assert_ne!(fifo_id(&long_a), fifo_id(&long_b));
    }
}
