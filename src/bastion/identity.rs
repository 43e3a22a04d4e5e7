//! The requester's identity as AWS sees it, carried by each bastion as `powerpole:identity`: the
//! engineer policy (policies/engineer.json) lets a person start a session only on a bastion
//! whose tag equals their own principal tag, so this value decides who may enter.

use crate::config::IdentitySource;
use crate::domain::SlackUserId;

use super::BastionError;

/// The tag value for a requester, by `source`. An empty value is refused: a bastion nobody can
/// enter is a failed launch, not a quiet one.
pub fn identity(source: IdentitySource, slack_id: &SlackUserId, email: &str) -> Result<String, BastionError> {
    let email = email.trim();
    let value = match source {
        IdentitySource::Email => email.to_string(),
        IdentitySource::EmailLocalPart => email.split('@').next().unwrap_or_default().to_string(),
        IdentitySource::SlackUserId => slack_id.to_string(),
    };
    // EC2 tag values: up to 256 of letters, digits, spaces and + - = . _ : / @.
    let allowed = |c: char| c.is_alphanumeric() || " +-=._:/@".contains(c);
    if value.is_empty() || value.chars().count() > 256 || !value.chars().all(allowed) {
        return Err(BastionError::NoIdentity { requester: slack_id.to_string(), identity_source: source, value });
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alice() -> SlackUserId {
        SlackUserId::parse("U0ALICE").unwrap()
    }

    #[test]
    fn each_source_gives_its_identity() {
        assert_eq!(identity(IdentitySource::Email, &alice(), " Alice@Example.com ").unwrap(), "Alice@Example.com");
        assert_eq!(identity(IdentitySource::EmailLocalPart, &alice(), "alice@example.com").unwrap(), "alice");
        assert_eq!(identity(IdentitySource::SlackUserId, &alice(), "").unwrap(), "U0ALICE");
    }

    #[test]
    fn an_identity_nobody_could_match_is_refused() {
        for bad in ["", "  ", "@example.com"] {
            let source = if bad.starts_with('@') { IdentitySource::EmailLocalPart } else { IdentitySource::Email };
            let err = identity(source, &alice(), bad).unwrap_err().to_string();
            assert!(err.contains("identity_source"), "{err}");
        }
        assert!(identity(IdentitySource::Email, &alice(), "o'brien@example.com").is_err());
    }
}
