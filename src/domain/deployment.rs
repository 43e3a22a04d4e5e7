//! The deployment id: which installation of powerpole a resource belongs to.
//!
//! Two installations (staging and production, each with its own table) may share one AWS region
//! and one database server. Everything powerpole creates carries its deployment id (the
//! `powerpole:deployment` tag on bastions, the marker role's name on database accounts), and
//! reconcile only ever looks at, and removes, what carries its own.

use std::fmt;

/// `[a-z0-9-]{1,16}`: short enough to fit in a MySQL 8 role name (32 characters) after
/// powerpole's prefix, and safe in a tag value, an IAM condition and SQL without quoting tricks.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DeploymentId(String);

/// A deployment id that failed validation.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not a deployment id: 1 to 16 characters from a-z, 0-9 and -, such as `prod` or `staging-eu`")]
pub struct DeploymentIdError(pub String);

impl DeploymentId {
    pub const MAX_LEN: usize = 16;

    pub fn parse(text: &str) -> Result<DeploymentId, DeploymentIdError> {
        let ok = (1..=Self::MAX_LEN).contains(&text.len()) && text.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if ok {
            Ok(DeploymentId(text.to_string()))
        } else {
            Err(DeploymentIdError(text.to_string()))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Default for DeploymentId {
    /// `default`: what an installation that never set `[deployment] id` is.
    fn default() -> DeploymentId {
        DeploymentId("default".to_string())
    }
}

impl fmt::Display for DeploymentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deployment_ids_are_short_lowercase_names() {
        for ok in ["default", "prod", "staging-eu", "a", "0123456789abcdef"] {
            assert_eq!(DeploymentId::parse(ok).map(|d| d.to_string()), Ok(ok.to_string()));
        }
        for bad in ["", "Prod", "staging_eu", "prod eu", "0123456789abcdefg", "pröd", "a'b", "a%"] {
            assert_eq!(DeploymentId::parse(bad), Err(DeploymentIdError(bad.to_string())), "{bad}");
        }
    }
}
