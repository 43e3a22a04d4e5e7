//! Identifiers that travel through Slack, the store and SQL: each is checked once, here.

use std::fmt;

use rand::RngExt;
use serde::{Deserialize, Serialize};

/// An identifier that failed validation.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    #[error("`{0}` is not a session id: they look like pp-7k2m9xq4ab (see `/powerpole list`)")]
    Session(String),
    #[error("`{0}` is not a valid target name: 1 to 32 characters from a-z, 0-9, - and _, starting with a letter")]
    Target(String),
    #[error("`{0}` is not a Slack user id (they look like U0123ABCD)")]
    SlackUser(String),
}

macro_rules! string_id {
    ($name:ident) => {
        impl $name {
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }
        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
        impl TryFrom<String> for $name {
            type Error = IdError;
            fn try_from(value: String) -> Result<Self, Self::Error> {
                $name::parse(&value)
            }
        }
        impl From<$name> for String {
            fn from(value: $name) -> String {
                value.0
            }
        }
    };
}

/// A session (one request and everything it leads to): `pp-` and 10 characters a person can read
/// out loud (no 0/o, 1/l). 50 random bits; the store refuses a duplicate, so a clash is retried.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct SessionId(String);

const SESSION_ALPHABET: &[u8; 32] = b"23456789abcdefghijkmnpqrstuvwxyz";
const SESSION_LEN: usize = 10;

impl SessionId {
    pub fn random() -> SessionId {
        let mut rng = rand::rng();
        let body: String = (0..SESSION_LEN).map(|_| SESSION_ALPHABET[rng.random_range(0..32)] as char).collect();
        SessionId(format!("pp-{body}"))
    }

    /// The session id that the request with id `seed` files: the same seed always gives the same
    /// id (50 bits of a SHA-256 of it). A request whose acknowledgement named its session and whose
    /// follow-up runs later in another process (the Lambda hand-off, `slack::deferred`) therefore
    /// files the session it announced. `seed` must be random itself (request ids are).
    pub fn derived_from(seed: &str) -> SessionId {
        use sha2::{Digest, Sha256};
        let digest = Sha256::new().chain_update(b"powerpole session id:").chain_update(seed.as_bytes()).finalize();
        let bits = digest.iter().take(8).fold(0u64, |acc, b| (acc << 8) | u64::from(*b));
        let body: String = (0..SESSION_LEN).map(|i| SESSION_ALPHABET[((bits >> (59 - 5 * i)) & 31) as usize] as char).collect();
        SessionId(format!("pp-{body}"))
    }

    pub fn parse(text: &str) -> Result<SessionId, IdError> {
        let t = text.trim().to_ascii_lowercase();
        let ok = t.strip_prefix("pp-").is_some_and(|body| body.len() == SESSION_LEN && body.bytes().all(|b| SESSION_ALPHABET.contains(&b)));
        if ok {
            Ok(SessionId(t))
        } else {
            Err(IdError::Session(text.trim().to_string()))
        }
    }
}
string_id!(SessionId);

/// The name of a configured database target (`billing`), as used in config, Slack and tags.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct TargetName(String);

impl TargetName {
    pub fn parse(text: &str) -> Result<TargetName, IdError> {
        let t = text.trim();
        let ok = (1..=32).contains(&t.len())
            && t.as_bytes()[0].is_ascii_lowercase()
            && t.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
        if ok {
            Ok(TargetName(t.to_string()))
        } else {
            Err(IdError::Target(t.to_string()))
        }
    }
}
string_id!(TargetName);

/// A Slack user id (`U0123ABCD`, or `W...` on Enterprise Grid).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct SlackUserId(String);

impl SlackUserId {
    pub fn parse(text: &str) -> Result<SlackUserId, IdError> {
        let t = text.trim();
        let ok = (3..=24).contains(&t.len())
            && (t.starts_with('U') || t.starts_with('W'))
            && t.bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit());
        if ok {
            Ok(SlackUserId(t.to_string()))
        } else {
            Err(IdError::SlackUser(t.to_string()))
        }
    }
}
string_id!(SlackUserId);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_session_ids_parse_back_and_differ() {
        let a = SessionId::random();
        assert_eq!(SessionId::parse(a.as_str()), Ok(a.clone()));
        assert_eq!(SessionId::parse(&a.as_str().to_uppercase()), Ok(a.clone()));
        assert_ne!(a, SessionId::random());
    }

    #[test]
    fn derived_session_ids_are_stable_valid_and_differ_by_seed() {
        let a = SessionId::derived_from("0123456789abcdef");
        assert_eq!(a, SessionId::derived_from("0123456789abcdef"));
        assert_eq!(SessionId::parse(a.as_str()), Ok(a.clone()));
        assert_ne!(a, SessionId::derived_from("0123456789abcdee"));
    }

    #[test]
    fn malformed_ids_are_refused_with_a_hint() {
        for bad in ["", "pp-", "pp-0000000000", "xx-abcdefghij", "pp-abc", "pp-abcdefghijk"] {
            let err = SessionId::parse(bad).unwrap_err();
            assert!(err.to_string().contains("/powerpole list"));
        }
    }

    #[test]
    fn target_names_are_restricted() {
        assert!(TargetName::parse("billing-eu_1").is_ok());
        for bad in ["", "Billing", "1db", "a b", "a;drop", &"a".repeat(33)] {
            assert!(TargetName::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn slack_user_ids_are_restricted() {
        assert!(SlackUserId::parse("U0123ABCD").is_ok());
        assert!(SlackUserId::parse("W0123ABCD").is_ok());
        for bad in ["", "C0123", "u0123abcd", "U01<script>"] {
            assert!(SlackUserId::parse(bad).is_err(), "{bad}");
        }
    }
}

/// A schema (database) name a target's grants cover. Only characters that need no escaping in a
/// backquoted identifier and cannot act as a `LIKE` wildcard in a grant (`_` and `%` do, so
/// `_` is allowed but escaped by the grants adapter, and `%` is refused).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct SchemaName(String);

/// A schema name that cannot be granted on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not a schema name powerpole grants on: 1 to 64 characters from A-Z, a-z, 0-9, _ and $; no wildcards, no `*`")]
pub struct SchemaNameError(pub String);

impl SchemaName {
    pub fn parse(text: &str) -> Result<SchemaName, SchemaNameError> {
        let t = text.trim();
        let ok = (1..=64).contains(&t.len()) && t.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'$');
        let reserved = ["mysql", "information_schema", "performance_schema", "sys"].contains(&t.to_ascii_lowercase().as_str());
        if ok && !reserved {
            Ok(SchemaName(t.to_string()))
        } else {
            Err(SchemaNameError(t.to_string()))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for SchemaName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for SchemaName {
    type Error = SchemaNameError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        SchemaName::parse(&value)
    }
}

impl From<SchemaName> for String {
    fn from(value: SchemaName) -> String {
        value.0
    }
}

#[cfg(test)]
mod schema_tests {
    use super::*;

    #[test]
    fn schema_names_refuse_wildcards_and_system_schemas() {
        assert!(SchemaName::parse("billing_v2").is_ok());
        for bad in ["", "*", "bill%", "a.b", "a`b", "mysql", "INFORMATION_SCHEMA", &"a".repeat(65)] {
            assert!(SchemaName::parse(bad).is_err(), "{bad}");
        }
    }
}
