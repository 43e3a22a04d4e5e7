//! Resolving a [`SecretRef`] (an environment variable, a Secrets Manager secret, or a Parameter
//! Store parameter) into the secret, and checking that a secret exists without reading it.
//!
//! A [`Secret`] never prints its value (`Debug` and `Display` are redacted); errors name the
//! reference, never the value.

use aws_config::SdkConfig;

use crate::parameters::ParameterStore;
use crate::config::SecretRef;

/// A resolved secret. Read it with [`Secret::expose`] where it is used, and nowhere else.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(redacted)")
    }
}

/// Why a secret could not be had.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretError {
    #[error("the environment variable {0} is not set (or empty)")]
    EnvMissing(String),
    #[error("the secret `{0}` does not exist or cannot be read: {1}")]
    Unreadable(String, String),
    #[error("the secret `{id}` is not a JSON object with a `{key}` field")]
    NoKey { id: String, key: String },
    #[error("the secret reference names no source")]
    NoSource,
    #[error("the secret is empty")]
    Empty,
}

/// Reads secrets from the environment, Secrets Manager and Parameter Store.
#[derive(Clone)]
pub struct Secrets {
    secrets_manager: aws_sdk_secretsmanager::Client,
    parameters: ParameterStore,
}

impl Secrets {
    pub fn new(aws: &SdkConfig) -> Secrets {
        Secrets { secrets_manager: aws_sdk_secretsmanager::Client::new(aws), parameters: ParameterStore::from_sdk_config(aws) }
    }

    /// The secret `reference` points to.
    pub async fn resolve(&self, reference: &SecretRef) -> Result<Secret, SecretError> {
        if let Some(name) = &reference.env {
            return from_env(name);
        }
        if let Some(id) = &reference.secrets_manager {
            let text = self.secret_string(id).await?;
            return match &reference.key {
                None => Ok(text),
                Some(key) => field(text.expose(), key).ok_or_else(|| SecretError::NoKey { id: id.clone(), key: key.clone() }),
            };
        }
        if let Some(name) = &reference.ssm_parameter {
            let value = self.parameters.get_decrypted(name).await.map_err(|e| SecretError::Unreadable(name.clone(), e.message))?;
            return Ok(Secret::new(value));
        }
        Err(SecretError::NoSource)
    }

    /// The whole `SecretString` of Secrets Manager secret `id` (a JSON document of fields, say);
    /// [`SecretError::Empty`] for a binary secret.
    pub async fn secret_string(&self, id: &str) -> Result<Secret, SecretError> {
        let value = self.secrets_manager.get_secret_value().secret_id(id).send().await.map_err(|e| SecretError::Unreadable(id.to_string(), aws_message(&e)))?;
        value.secret_string().map(Secret::new).ok_or(SecretError::Empty)
    }

    /// Checks that Secrets Manager has secret `id`, without reading its value.
    pub async fn check_exists(&self, id: &str) -> Result<(), SecretError> {
        self.secrets_manager
            .describe_secret()
            .secret_id(id)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| SecretError::Unreadable(id.to_string(), aws_message(&e)))
    }
}

/// The secret in environment variable `name`.
pub fn from_env(name: &str) -> Result<Secret, SecretError> {
    match std::env::var(name) {
        Ok(v) if !v.trim().is_empty() => Ok(Secret::new(v.trim())),
        _ => Err(SecretError::EnvMissing(name.to_string())),
    }
}

fn field(json: &str, key: &str) -> Option<Secret> {
    let value: serde_json::Value = serde_json::from_str(json).ok()?;
    value.get(key)?.as_str().map(Secret::new)
}

/// The service's own words for an SDK error (its code and message), never the request.
fn aws_message<E: std::error::Error + 'static>(err: &E) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(s) = source {
        text = s.to_string();
        source = s.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_never_print_their_value() {
        let s = Secret::new("xoxb-very-secret");
        assert_eq!(format!("{s:?}"), "Secret(redacted)");
    }

    #[test]
    fn json_secrets_yield_the_named_field_only() {
        assert_eq!(field(r#"{"bot_token":"xoxb-1","other":"x"}"#, "bot_token"), Some(Secret::new("xoxb-1")));
        assert_eq!(field(r#"{"bot_token":1}"#, "bot_token"), None);
        assert_eq!(field("not json", "bot_token"), None);
    }

    #[test]
    fn a_missing_variable_is_named() {
        assert_eq!(from_env("POWERPOLE_TEST_SURELY_UNSET_VARIABLE"), Err(SecretError::EnvMissing("POWERPOLE_TEST_SURELY_UNSET_VARIABLE".into())));
    }
}
