//! Slack's request signing, exactly as Slack does it, so that the product's verifier is tested
//! against the real algorithm and not against our own idea of it.
//!
//! Slack sends `X-Slack-Request-Timestamp: {unix seconds}` and
//! `X-Slack-Signature: v0={hex HMAC-SHA256(signing_secret, "v0:{timestamp}:{raw body}")}`, with the
//! hex in lowercase and the body byte-for-byte as sent (still form-encoded for slash commands and
//! interactions). See <https://api.slack.com/authentication/verifying-requests-from-slack>.

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

/// Header carrying the unix time (seconds) the request was signed at.
pub const TIMESTAMP_HEADER: &str = "X-Slack-Request-Timestamp";
/// Header carrying `v0=` and the signature.
pub const SIGNATURE_HEADER: &str = "X-Slack-Signature";
/// The only signature version Slack has published.
pub const VERSION: &str = "v0";

/// The `X-Slack-Signature` value for `body` signed at `timestamp` with `signing_secret`.
pub fn signature(signing_secret: &str, timestamp: i64, body: &[u8]) -> String {
    // HMAC takes keys of any length, so this cannot fail for any secret.
    let mut mac = Hmac::<Sha256>::new_from_slice(signing_secret.as_bytes())
        .expect("HMAC accepts keys of any length");
    mac.update(format!("{VERSION}:{timestamp}:").as_bytes());
    mac.update(body);
    format!("{VERSION}={}", hex::encode(mac.finalize().into_bytes()))
}

/// Both headers Slack adds, as `(name, value)` pairs ready to put on a request.
pub fn headers(signing_secret: &str, timestamp: i64, body: &[u8]) -> [(&'static str, String); 2] {
    [
        (TIMESTAMP_HEADER, timestamp.to_string()),
        (SIGNATURE_HEADER, signature(signing_secret, timestamp, body)),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    // Slack's published example, from the page linked in the module docs.
    const DOC_SECRET: &str = "8f742231b10e8888abcd99yyyzzz85a5";
    const DOC_TIMESTAMP: i64 = 1531420618;
    const DOC_BODY: &str =
        "token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow\
        &channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner\
        &command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands\
        %2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN\
        &trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c";
    const DOC_SIGNATURE: &str =
        "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503";

    #[test]
    fn signs_slacks_published_example_byte_exact() {
        assert_eq!(
            signature(DOC_SECRET, DOC_TIMESTAMP, DOC_BODY.as_bytes()),
            DOC_SIGNATURE
        );
    }

    #[test]
    fn headers_carry_the_timestamp_and_the_signature() {
        let [(ts_name, ts), (sig_name, sig)] =
            headers(DOC_SECRET, DOC_TIMESTAMP, DOC_BODY.as_bytes());
        assert_eq!((ts_name, ts.as_str()), (TIMESTAMP_HEADER, "1531420618"));
        assert_eq!((sig_name, sig.as_str()), (SIGNATURE_HEADER, DOC_SIGNATURE));
    }

    #[test]
    fn any_change_to_body_timestamp_or_secret_changes_the_signature() {
        let body = DOC_BODY.as_bytes();
        assert_ne!(
            signature(DOC_SECRET, DOC_TIMESTAMP + 1, body),
            DOC_SIGNATURE
        );
        assert_ne!(
            signature("another-secret", DOC_TIMESTAMP, body),
            DOC_SIGNATURE
        );
        let mut changed = body.to_vec();
        changed.push(b'x');
        assert_ne!(
            signature(DOC_SECRET, DOC_TIMESTAMP, &changed),
            DOC_SIGNATURE
        );
    }
}
