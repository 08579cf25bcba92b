//! What a person should do about an error that stops a command: one line per cause, with the
//! AWS code kept for searching. Pure: it reads codes and error texts, never SDK types.
//!
//! Two kinds of input: an AWS service error code (`AccessDenied`, `ExpiredToken`, ...), and the
//! text of an SDK error that never reached AWS (no credentials, no region, an endpoint that does
//! not answer), which has no code of its own: [`transport`] gives it one.

/// A cause an SDK error text reveals, when it never reached AWS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cause {
    /// A stable code for it (`NoCredentials`, `NoRegion`, `SsoTokenExpired`, `EndpointUnreachable`).
    pub code: &'static str,
    /// What went wrong, in one line.
    pub message: String,
}

/// The cause behind the full text of an SDK error that never reached AWS, if it is one of the
/// causes a person can fix. `text` is the error's display chain (never its `Debug` form).
pub fn transport(text: &str) -> Option<Cause> {
    let lower = text.to_ascii_lowercase();
    let has = |s: &str| lower.contains(s);
    let cause = |code, message: &str| {
        Some(Cause {
            code,
            message: message.to_string(),
        })
    };
    if has("sso") && (has("expired") || has("token")) && !has("credentialsnotloaded") {
        return cause("SsoTokenExpired", "the AWS SSO session has expired");
    }
    if has("credentialsnotloaded")
        || has("no credentials")
        || has("failed to load credentials")
        || has("credentials provider was not enabled")
        || has("the credential provider was not enabled")
    {
        return cause("NoCredentials", "no AWS credentials found");
    }
    if has("missingsigningregion")
        || has("signing region")
        || has("no region")
        || has("missing region")
        || has("region must be set")
        || has("invalid region")
    {
        return cause("NoRegion", "no AWS Region set");
    }
    if has("connection refused")
        || has("dns error")
        || has("failed to lookup address")
        || has("error trying to connect")
        || has("tcp connect error")
        || has("connection reset")
        || has("timed out")
        || has("io error")
    {
        return Some(Cause {
            code: "EndpointUnreachable",
            message: format!("could not reach the AWS endpoint ({})", last_cause(text)),
        });
    }
    None
}

/// The innermost cause of a display chain (`a: b: c` gives `c`), short.
fn last_cause(text: &str) -> String {
    let last = text
        .rsplit(": ")
        .map(str::trim)
        .find(|s| !s.is_empty())
        .unwrap_or(text);
    last.chars().take(120).collect()
}

/// What to do about an error with this code, if the code is one a person fixes outside ebssnap.
pub fn action(code: &str) -> Option<&'static str> {
    Some(match code {
        "NoCredentials" => {
            "set AWS_PROFILE (or --profile) to a configured profile, run `aws sso login` for an SSO \
             profile, or export AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
        }
        "SsoTokenExpired" => "run `aws sso login` (with --profile for a named profile), then retry",
        "NoRegion" => "pass --region (e.g. --region us-east-1) or set AWS_REGION",
        "EndpointUnreachable" => {
            "check the network, a proxy (HTTPS_PROXY) and --endpoint-url / AWS_ENDPOINT_URL \
             (unset it to reach AWS itself)"
        }
        "ExpiredToken" | "ExpiredTokenException" | "RequestExpired" => {
            "the credentials have expired: refresh them (`aws sso login`, or new session keys), \
             and check the machine's clock"
        }
        "AuthFailure"
        | "InvalidClientTokenId"
        | "UnrecognizedClientException"
        | "SignatureDoesNotMatch"
        | "IncompleteSignature" => {
            "the credentials are not valid here: check the profile, the account and the partition \
             (an AWS GovCloud or China key does not work elsewhere)"
        }
        "AccessDenied"
        | "AccessDeniedException"
        | "UnauthorizedOperation"
        | "UnauthorizedAccess" => {
            "the credentials in use lack this permission: check `aws sts get-caller-identity` and \
             the role's policy (for the runner, data \"ebssnap_iam_policy\" with this policy in \
             policy_names)"
        }
        "OptInRequired" => "the Region is not enabled for this account: enable it or use another",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sdk_texts_map_to_one_cause_each() {
        let cases = [
            (
                "dispatch failure: other: no credentials provider: CredentialsNotLoaded",
                "NoCredentials",
            ),
            (
                "failed to construct request: No signing region was set: MissingSigningRegion",
                "NoRegion",
            ),
            (
                "dispatch failure: other: the SSO token for this profile has expired",
                "SsoTokenExpired",
            ),
            (
                "dispatch failure: io error: error trying to connect: tcp connect error: Connection refused (os error 111)",
                "EndpointUnreachable",
            ),
        ];
        for (text, code) in cases {
            let c = transport(text).unwrap_or_else(|| panic!("{text}"));
            assert_eq!(c.code, code, "{text}");
            assert!(action(c.code).is_some(), "{code}");
            assert!(!c.message.contains('{'), "{}", c.message);
        }
        assert_eq!(
            transport(
                "dispatch failure: io error: tcp connect error: Connection refused (os error 111)"
            )
            .unwrap()
            .message,
            "could not reach the AWS endpoint (Connection refused (os error 111))"
        );
        assert_eq!(transport("InvalidVolume.NotFound"), None);
    }

    #[test]
    fn service_codes_people_fix_have_an_action() {
        for code in [
            "AccessDenied",
            "UnauthorizedOperation",
            "ExpiredToken",
            "AuthFailure",
        ] {
            assert!(action(code).is_some(), "{code}");
        }
        assert_eq!(action("InvalidVolume.NotFound"), None);
    }
}
