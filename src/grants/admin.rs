//! The admin credential of a target: read from Secrets Manager, never from plain config, and
//! kept for a short while so that a burst of sessions does not read the secret each time.
//!
//! The secret is JSON: `username` and `password`, and optionally `host` and `port`. Without
//! them the target's writer endpoint and port are used: RDS-managed master secrets
//! (`manage_master_user_password`) hold only `username` and `password`.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use serde_json::Value;

use crate::config::TargetConfig;
use crate::domain::TargetName;

use super::{GrantError, Password};

/// How to log in as a target's admin user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminCredentials {
    pub host: String,
    pub port: u16,
    pub username: String,
    /// Prints as `[redacted]`.
    pub password: Password,
}

impl AdminCredentials {
    /// Reads the secret's JSON. The problem, if any, names the field but never quotes the
    /// secret's text.
    pub fn from_secret_json(text: &str, target: &TargetConfig) -> Result<AdminCredentials, String> {
        let value: Value = serde_json::from_str(text).map_err(|e| format!("not JSON ({}:{} is where it stops parsing)", e.line(), e.column()))?;
        let field = |name: &str| value.get(name).filter(|v| !v.is_null());
        let text_field = |name: &str| match field(name) {
            Some(Value::String(s)) if !s.is_empty() => Ok(Some(s.clone())),
            Some(_) => Err(format!("`{name}` is not a non-empty string")),
            None => Ok(None),
        };
        let username = text_field("username")?.ok_or("`username` is missing")?;
        let password = text_field("password")?.ok_or("`password` is missing")?;
        let host = text_field("host")?.unwrap_or_else(|| target.writer_endpoint.clone());
        let port = match field("port") {
            None => target.port,
            Some(Value::Number(n)) => n.as_u64().and_then(|p| u16::try_from(p).ok()).ok_or("`port` is not a port number")?,
            Some(Value::String(s)) => s.trim().parse().map_err(|_| "`port` is not a port number")?,
            Some(_) => return Err("`port` is not a port number".into()),
        };
        Ok(AdminCredentials { host, port, username, password: Password::from_secret(password) })
    }
}

/// Where admin credentials come from. [`SecretsManagerAdmin`] in production; the trait is the
/// seam for a future source (e.g. IAM database authentication).
#[async_trait]
pub trait AdminSource: Send + Sync {
    /// The credential of `target`'s admin user.
    async fn credentials(&self, target: &TargetConfig) -> Result<AdminCredentials, GrantError>;
    /// Drops a cached credential, after the database refused it (the secret was rotated).
    fn forget(&self, target: &TargetName);
}

/// Reads `target.admin_secret` with `GetSecretValue` (through [`crate::secrets::Secrets`], the
/// one importer of the Secrets Manager SDK) and caches it for `ttl`.
pub struct SecretsManagerAdmin {
    secrets: crate::secrets::Secrets,
    ttl: Duration,
    cache: Mutex<HashMap<TargetName, (Instant, AdminCredentials)>>,
}

impl SecretsManagerAdmin {
    /// Short enough that a rotated secret is picked up soon even without a refused login.
    pub const DEFAULT_TTL: Duration = Duration::from_secs(300);

    pub fn new(secrets: crate::secrets::Secrets, ttl: Duration) -> SecretsManagerAdmin {
        SecretsManagerAdmin { secrets, ttl, cache: Mutex::new(HashMap::new()) }
    }

    /// A client from the AWS settings in `aws`, with [`Self::DEFAULT_TTL`].
    pub fn from_sdk_config(aws: &aws_config::SdkConfig) -> SecretsManagerAdmin {
        Self::new(crate::secrets::Secrets::new(aws), Self::DEFAULT_TTL)
    }

    fn cached(&self, target: &TargetName) -> Option<AdminCredentials> {
        let cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        cache.get(target).filter(|(at, _)| at.elapsed() < self.ttl).map(|(_, c)| c.clone())
    }

    async fn fetch(&self, target: &TargetConfig) -> Result<AdminCredentials, GrantError> {
        let secret_id = &target.admin_secret;
        let malformed = |problem: String| GrantError::AdminSecretMalformed { target: target.name.clone(), secret_id: secret_id.clone(), problem };
        let text = match self.secrets.secret_string(secret_id).await {
            Ok(text) => text,
            Err(crate::secrets::SecretError::Empty) => return Err(malformed("it has no SecretString (a binary secret?)".into())),
            Err(crate::secrets::SecretError::Unreadable(_, message)) => {
                return Err(GrantError::AdminSecretUnreadable { target: target.name.clone(), secret_id: secret_id.clone(), message })
            }
            Err(other) => return Err(GrantError::AdminSecretUnreadable { target: target.name.clone(), secret_id: secret_id.clone(), message: other.to_string() }),
        };
        AdminCredentials::from_secret_json(text.expose(), target).map_err(malformed)
    }
}

#[async_trait]
impl AdminSource for SecretsManagerAdmin {
    async fn credentials(&self, target: &TargetConfig) -> Result<AdminCredentials, GrantError> {
        if let Some(credentials) = self.cached(&target.name) {
            return Ok(credentials);
        }
        let credentials = self.fetch(target).await?;
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        cache.insert(target.name.clone(), (Instant::now(), credentials.clone()));
        Ok(credentials)
    }

    fn forget(&self, target: &TargetName) {
        self.cache.lock().unwrap_or_else(|p| p.into_inner()).remove(target);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    fn target() -> TargetConfig {
        let toml = r#"
[access]
home_domains = ["example.com"]

[deployment]
id = "test"

[targets.billing]
writer_endpoint = "billing.cluster-abc.eu-west-1.rds.amazonaws.com"
port = 3307
schemas = ["billing"]
admin_secret = "powerpole/billing-admin"
subnet_id = "subnet-0123"
security_group_id = "sg-0123"
approvers = ["U0APPROVER"]
approvals_channel = "C0APPROVALS"
"#;
        Config::from_toml_str(toml).unwrap().targets.into_values().next().unwrap()
    }

    #[test]
    fn a_full_secret_is_read_as_is() {
        let c = AdminCredentials::from_secret_json(r#"{"host":"db.internal","port":"3306","username":"admin","password":"p'w\"x"}"#, &target()).unwrap();
        assert_eq!((c.host.as_str(), c.port, c.username.as_str(), c.password.expose()), ("db.internal", 3306, "admin", "p'w\"x"));
    }

    #[test]
    fn an_rds_managed_secret_takes_host_and_port_from_the_target() {
        let c = AdminCredentials::from_secret_json(r#"{"username":"admin","password":"pw"}"#, &target()).unwrap();
        assert_eq!(c.host, "billing.cluster-abc.eu-west-1.rds.amazonaws.com");
        assert_eq!(c.port, 3307);
    }

    #[test]
    fn problems_name_the_field_and_never_quote_the_secret() {
        let cases = [
            (r#"{"username":"admin","password":"hunter2-secret""#, "not JSON"),
            (r#"{"username":"admin"}"#, "`password` is missing"),
            (r#"{"password":"hunter2-secret"}"#, "`username` is missing"),
            (r#"{"username":"admin","password":42}"#, "`password` is not"),
            (r#"{"username":"admin","password":"hunter2-secret","port":"hunter2-secret"}"#, "`port` is not"),
        ];
        for (text, expected) in cases {
            let problem = AdminCredentials::from_secret_json(text, &target()).unwrap_err();
            assert!(problem.contains(expected), "{problem}");
            assert!(!problem.contains("hunter2"), "{problem}");
        }
    }

    #[test]
    fn debug_hides_the_admin_password() {
        let c = AdminCredentials::from_secret_json(r#"{"username":"admin","password":"hunter2-secret"}"#, &target()).unwrap();
        assert!(!format!("{c:?}").contains("hunter2"));
    }
}
