//! The requester's identity as AWS sees it, carried by each bastion as `powerpole:identity`: the
//! engineer policy (infra/modules/powerpole/policies/engineer.json) lets a person start a session only on a bastion
//! whose tag equals their own principal tag, so this value decides who may enter.

use crate::config::IdentitySource;
use crate::domain::SlackUserId;

use super::BastionError;

/// Why a requester has no identity a bastion can carry under the configured `identity_source`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IdentityRefusal {
    /// Empty, longer than 256 characters, or holding characters an AWS tag value (and so an IAM
    /// principal tag) cannot hold, such as the apostrophe of `o'brien@example.com`.
    NotATagValue { value: String, bad: Vec<char> },
    /// `email_local_part` for an address outside `[access] home_domains`: its local part would be
    /// the identity of the home-domain person of that name.
    ForeignDomain { domain: String },
}

impl IdentityRefusal {
    /// What the operator reads (the log): the source, the value and why.
    pub fn cause(&self, source: IdentitySource) -> String {
        match self {
            IdentityRefusal::NotATagValue { value, bad } if bad.is_empty() => {
                format!("identity_source = {source:?} gives `{value}`, which is empty or longer than 256 characters")
            }
            IdentityRefusal::NotATagValue { value, bad } => format!(
                "identity_source = {source:?} gives `{value}`, which holds {} (an AWS tag value holds letters, digits, spaces and + - = . _ : / @); \
                 with identity_source = \"slack_user_id\" everyone has a usable identity (infra/README.md, \"Identities\")",
                bad.iter().map(|c| format!("{c:?}")).collect::<Vec<_>>().join(", ")
            ),
            IdentityRefusal::ForeignDomain { domain } => format!(
                "identity_source = \"email_local_part\" is used only for addresses in [access] home_domains, and this one is at `{domain}`; \
                 add the domain if its people are yours, or use identity_source = \"email\" or \"slack_user_id\""
            ),
        }
    }

    /// What the requester reads: what happened and whom to ask (never the configuration).
    pub fn for_requester(&self, email: &str) -> String {
        let why = match self {
            IdentityRefusal::NotATagValue { bad, .. } if !bad.is_empty() => format!(
                "your Slack e-mail address `{email}` contains {}, which AWS cannot carry as the identity that lets you into a bastion",
                bad.iter().map(|c| format!("`{c}`")).collect::<Vec<_>>().join(" and ")
            ),
            IdentityRefusal::NotATagValue { .. } => format!("your Slack e-mail address `{email}` cannot be used as the identity that lets you into a bastion"),
            IdentityRefusal::ForeignDomain { domain } => format!(
                "your Slack e-mail address is at `{domain}`, and here bastions know people by the name before the `@` only for the company's own domains \
                 (so that two people with the same name at different domains can never enter each other's bastions)"
            ),
        };
        format!(
            "powerpole cannot give you access yet: {why}. Nothing was filed and no approver was asked. \
             The platform team that runs powerpole has been told; ask them to set up your identity for bastions, then ask again."
        )
    }
}

/// The tag value for a requester, by `source`, or why there is none. `home_domains` are the
/// domains whose addresses `email_local_part` accepts (`[access] home_domains`).
pub fn check(source: IdentitySource, home_domains: &[String], slack_id: &SlackUserId, email: &str) -> Result<String, IdentityRefusal> {
    let email = email.trim();
    let value = match source {
        IdentitySource::Email => email.to_string(),
        IdentitySource::EmailLocalPart => {
            let (local, domain) = email.rsplit_once('@').unwrap_or((email, ""));
            let domain = domain.to_ascii_lowercase();
            if !home_domains.iter().any(|d| d.eq_ignore_ascii_case(&domain)) {
                return Err(IdentityRefusal::ForeignDomain { domain });
            }
            local.to_string()
        }
        IdentitySource::SlackUserId => slack_id.to_string(),
    };
    // Tag values and principal tag values alike: up to 256 of letters, digits, spaces and
    // + - = . _ : / @.
    let allowed = |c: char| c.is_alphanumeric() || " +-=._:/@".contains(c);
    let mut bad: Vec<char> = value.chars().filter(|c| !allowed(*c)).collect();
    bad.dedup();
    if value.is_empty() || value.chars().count() > 256 || !bad.is_empty() {
        return Err(IdentityRefusal::NotATagValue { value, bad });
    }
    Ok(value)
}

/// [`check`], as launching a bastion needs it. An empty value is refused: a bastion nobody can
/// enter is a failed launch, not a quiet one. Requests are refused earlier, when people ask
/// (`workflow::request`), so this is the last line only.
pub fn identity(source: IdentitySource, home_domains: &[String], slack_id: &SlackUserId, email: &str) -> Result<String, BastionError> {
    check(source, home_domains, slack_id, email).map_err(|refusal| {
        let value = match &refusal {
            IdentityRefusal::NotATagValue { value, .. } => value.clone(),
            IdentityRefusal::ForeignDomain { domain } => format!("an address at {domain}"),
        };
        BastionError::NoIdentity { requester: slack_id.to_string(), identity_source: source, value }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alice() -> SlackUserId {
        SlackUserId::parse("U0ALICE").unwrap()
    }

    fn home() -> Vec<String> {
        vec!["example.com".to_string()]
    }

    #[test]
    fn each_source_gives_its_identity() {
        assert_eq!(identity(IdentitySource::Email, &home(), &alice(), " Alice@Example.com ").unwrap(), "Alice@Example.com");
        assert_eq!(identity(IdentitySource::EmailLocalPart, &home(), &alice(), "alice@Example.COM").unwrap(), "alice");
        assert_eq!(identity(IdentitySource::SlackUserId, &home(), &alice(), "").unwrap(), "U0ALICE");
    }

    #[test]
    fn an_identity_nobody_could_match_is_refused() {
        for bad in ["", "  ", "@example.com"] {
            let source = if bad.starts_with('@') { IdentitySource::EmailLocalPart } else { IdentitySource::Email };
            let err = identity(source, &home(), &alice(), bad).unwrap_err().to_string();
            assert!(err.contains("identity_source"), "{err}");
        }
        assert!(identity(IdentitySource::Email, &home(), &alice(), "o'brien@example.com").is_err());
    }

    #[test]
    fn two_addresses_at_different_domains_never_share_an_identity() {
        let bob = SlackUserId::parse("U0BOB").unwrap();
        let employee = check(IdentitySource::EmailLocalPart, &home(), &alice(), "alice@example.com").unwrap();
        let contractor = check(IdentitySource::EmailLocalPart, &home(), &bob, "alice@contractor.io");
        assert_eq!(contractor, Err(IdentityRefusal::ForeignDomain { domain: "contractor.io".into() }));
        assert_eq!(employee, "alice");
        // A domain that merely ends like the home one is not it.
        assert!(check(IdentitySource::EmailLocalPart, &home(), &bob, "alice@evil-example.com").is_err());
        assert!(check(IdentitySource::EmailLocalPart, &home(), &bob, "alice@example.com.evil.io").is_err());
        // Under the other sources the two are different values as well.
        for source in [IdentitySource::Email, IdentitySource::SlackUserId] {
            assert_ne!(check(source, &home(), &alice(), "alice@example.com"), check(source, &home(), &bob, "alice@contractor.io"), "{source:?}");
        }
    }

    #[test]
    fn every_valid_slack_address_has_an_identity_under_slack_user_id() {
        for email in ["o'brien@example.com", "ren\u{e9}e+ops@example.com", "a\"b\"@example.com", "x@contractor.io"] {
            assert_eq!(check(IdentitySource::SlackUserId, &home(), &alice(), email).as_deref(), Ok("U0ALICE"), "{email}");
        }
        let refusal = check(IdentitySource::Email, &home(), &alice(), "o'brien@example.com").unwrap_err();
        assert_eq!(refusal, IdentityRefusal::NotATagValue { value: "o'brien@example.com".into(), bad: vec!['\''] });
        let words = refusal.for_requester("o'brien@example.com");
        assert!(words.contains("`'`") && words.contains("Nothing was filed") && words.contains("platform team"), "{words}");
        assert!(!words.contains("identity_source") && !words.contains("powerpole:"), "no configuration in a person's words: {words}");
        assert!(refusal.cause(IdentitySource::Email).contains("slack_user_id"), "the operator is told the way out");
    }

    const TARGET: &str = r#"
[access]
home_domains = ["example.com"]

[deployment]
id = "test"

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
