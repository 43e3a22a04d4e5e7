//! The requester's identity as AWS sees it, carried by each bastion as `powerpole:identity`: the
//! engineer policy (infra/modules/powerpole/policies/engineer.json) lets a person start a session only on a bastion
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

    const TARGET: &str = r#"
[access]
home_domains = ["example.com"]

[targets.billing]
writer_endpoint = "billing.cluster-abc.eu-west-1.rds.amazonaws.com"
schemas = ["billing"]
admin_secret = "powerpole/billing-admin"
subnet_id = "subnet-0123"
security_group_id = "sg-0123"
approvers = ["U0APPROVER"]
approvals_channel = "C0APPROVALS"
"#;

    #[test]
    fn the_e_mail_and_powerpoles_document_are_the_defaults_and_both_can_be_set() {
        let c = crate::config::Config::from_toml_str(TARGET).unwrap();
        assert_eq!((c.bastion.identity_source, c.bastion.session_document.as_str()), (IdentitySource::Email, "powerpole-session"));
        let set = format!("[bastion]\nidentity_source = \"slack_user_id\"\nsession_document = \"acme-powerpole-session\"\n{TARGET}");
        let c = crate::config::Config::from_toml_str(&set).unwrap();
        assert_eq!((c.bastion.identity_source, c.bastion.session_document.as_str()), (IdentitySource::SlackUserId, "acme-powerpole-session"));
    }

    #[test]
    fn a_bad_document_name_or_identity_source_is_refused_with_what_to_write() {
        let bad = format!("[bastion]\nsession_document = \"no spaces\"\n{TARGET}");
        let err = crate::config::Config::from_toml_str(&bad).unwrap_err().to_string();
        assert!(err.contains("bastion.session_document") && err.contains("session_document_name"), "{err}");
        let bad = format!("[bastion]\nidentity_source = \"username\"\n{TARGET}");
        let err = crate::config::Config::from_toml_str(&bad).unwrap_err().to_string();
        assert!(err.contains("email") && err.contains("slack_user_id"), "{err}");
    }
}
