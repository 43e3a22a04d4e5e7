//! Where the configuration is, and the one loader that reads it: the Lambda functions
//! (`lambdas/common`) and the operator's commands (`src/main.rs`: `config check`, `doctor`,
//! `db admin-sql`, `audit`, ...) both call [`ConfigLocation::load`], so what an operator checks is
//! exactly what the functions run with.
//!
//! - The base `powerpole.toml`: a file path, or `ssm:/parameter/name` (a Parameter Store
//!   parameter holding the TOML text, a `SecureString`: what the Terraform module writes,
//!   `infra/modules/powerpole/config.tf`). `POWERPOLE_CONFIG` on Lambda, `--config` on the CLI.
//! - The fragments the module writes (`config_layers.tf`: the table, the Slack secret references,
//!   the bastion profile, one per target with its security group, subnet, port and admin secret):
//!   `ssm:/path`, every parameter directly under it (one `GetParametersByPath`), merged over the
//!   base in name order. `POWERPOLE_CONFIG_LAYERS` on Lambda, `--config-layers` on the CLI.
//! - Then the `POWERPOLE_SECTION__FIELD` environment overrides, as always ([`Config`]).

use std::path::PathBuf;

use crate::config::{Config, ConfigError, ConfigProblem};
use crate::parameters::{ParameterError, ParameterStore};

/// Where the configuration is (Lambda's environment; the CLI's `--config` default).
pub const CONFIG_VAR: &str = "POWERPOLE_CONFIG";
/// Where the module's configuration fragments are (`ssm:/path`).
pub const LAYERS_VAR: &str = "POWERPOLE_CONFIG_LAYERS";
/// The prefix of a location that names Parameter Store.
pub const SSM_PREFIX: &str = "ssm:";

/// The base `powerpole.toml`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigBase {
    File(PathBuf),
    /// A Parameter Store parameter's name (`/powerpole/config`).
    Parameter(String),
}

/// The base, and the Parameter Store path of the fragments merged over it (if any).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigLocation {
    pub base: ConfigBase,
    pub layers: Option<String>,
}

/// Why the configuration could not be loaded. Each is a sentence saying what to do.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("no configuration given: pass --config FILE or --config ssm:/parameter/name (or set {CONFIG_VAR})")]
    NotGiven,
    #[error("the configuration fragments must be `ssm:/path` (the parameters the Terraform module writes), not `{0}`")]
    LayersNotSsm(String),
    #[error("the configuration parameter could not be read: {0}")]
    Parameter(ParameterError),
    #[error("the configuration fragments could not be read: {0}")]
    Layers(ParameterError),
    #[error("{source_name}: {error}")]
    Invalid { source_name: String, error: ConfigError },
}

impl LoadError {
    /// The configuration was read but is not valid (the CLI exits 2 for this, 1 otherwise).
    pub fn is_invalid(&self) -> bool {
        matches!(self, LoadError::Invalid { .. } | LoadError::NotGiven | LoadError::LayersNotSsm(_))
    }
}

impl ConfigLocation {
    /// A configuration file, without fragments.
    pub fn file(path: impl Into<PathBuf>) -> ConfigLocation {
        ConfigLocation { base: ConfigBase::File(path.into()), layers: None }
    }

    /// `config` is a file path or `ssm:/name`; `layers`, if given and not blank, `ssm:/path`.
    pub fn parse(config: &str, layers: Option<&str>) -> Result<ConfigLocation, LoadError> {
        let config = config.trim();
        if config.is_empty() {
            return Err(LoadError::NotGiven);
        }
        let base = match config.strip_prefix(SSM_PREFIX) {
            Some(name) => ConfigBase::Parameter(name.to_string()),
            None => ConfigBase::File(PathBuf::from(config)),
        };
        let layers = match layers.map(str::trim).filter(|l| !l.is_empty()) {
            None => None,
            Some(value) => Some(value.strip_prefix(SSM_PREFIX).ok_or_else(|| LoadError::LayersNotSsm(value.to_string()))?.to_string()),
        };
        Ok(ConfigLocation { base, layers })
    }

    /// From `POWERPOLE_CONFIG` and `POWERPOLE_CONFIG_LAYERS` (the Lambda functions' way).
    pub fn from_env() -> Result<ConfigLocation, LoadError> {
        let config = std::env::var(CONFIG_VAR).ok().filter(|v| !v.trim().is_empty()).ok_or(LoadError::NotGiven)?;
        ConfigLocation::parse(&config, std::env::var(LAYERS_VAR).ok().as_deref())
    }

    /// Whether reading it needs AWS (Parameter Store).
    pub fn needs_aws(&self) -> bool {
        matches!(self.base, ConfigBase::Parameter(_)) || self.layers.is_some()
    }

    /// How it is named in messages: `powerpole.toml`, `parameter /powerpole/config with the
    /// fragments under /powerpole/config.d`.
    pub fn describe(&self) -> String {
        let base = match &self.base {
            ConfigBase::File(path) => path.display().to_string(),
            ConfigBase::Parameter(name) => format!("parameter {name}"),
        };
        match &self.layers {
            Some(path) => format!("{base} with the fragments under {path}"),
            None => base,
        }
    }

    /// Reads, merges and validates. `aws` is used only when [`ConfigLocation::needs_aws`].
    pub async fn load(&self, aws: &aws_config::SdkConfig) -> Result<Config, LoadError> {
        let parameters = self.needs_aws().then(|| ParameterStore::from_sdk_config(aws));
        let layers = match (&self.layers, &parameters) {
            (Some(path), Some(store)) => store.get_under_path(path).await.map_err(LoadError::Layers)?.into_iter().map(|(_, text)| text).collect(),
            _ => Vec::new(),
        };
        let invalid = |error: ConfigError| LoadError::Invalid { source_name: self.describe(), error };
        match (&self.base, &parameters) {
            (ConfigBase::Parameter(name), Some(store)) => {
                // The TOML holds references to secrets, never secrets; it is a SecureString all
                // the same, so it is read decrypted.
                let text = store.get_decrypted(name).await.map_err(LoadError::Parameter)?;
                Config::from_toml_layers(&text, &layers).map_err(invalid)
            }
            (ConfigBase::File(path), _) if layers.is_empty() && self.layers.is_none() => Config::load(path).map_err(invalid),
            (ConfigBase::File(path), _) => {
                let text = std::fs::read_to_string(path).map_err(|e| {
                    invalid(ConfigError { problems: vec![ConfigProblem { path: path.display().to_string(), message: format!("cannot be read: {e}") }] })
                })?;
                Config::from_toml_layers(&text, &layers).map_err(invalid)
            }
            (ConfigBase::Parameter(_), None) => unreachable!("a parameter needs AWS, so the store exists"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_location_is_a_file_or_a_parameter_and_fragments_are_only_in_parameter_store() {
        assert_eq!(ConfigLocation::parse("powerpole.toml", None).unwrap(), ConfigLocation::file("powerpole.toml"));
        let deployed = ConfigLocation::parse("ssm:/powerpole/config", Some("ssm:/powerpole/config.d")).unwrap();
        assert_eq!(deployed.base, ConfigBase::Parameter("/powerpole/config".into()));
        assert_eq!(deployed.layers.as_deref(), Some("/powerpole/config.d"));
        assert_eq!(deployed.describe(), "parameter /powerpole/config with the fragments under /powerpole/config.d");
        assert!(deployed.needs_aws() && !ConfigLocation::file("a.toml").needs_aws());
        assert_eq!(ConfigLocation::parse("a.toml", Some(" ")).unwrap().layers, None, "a blank layers value is none");
        let err = ConfigLocation::parse("a.toml", Some("/powerpole/config.d")).unwrap_err();
        assert!(err.to_string().contains("must be `ssm:/path`"), "{err}");
        assert!(matches!(ConfigLocation::parse("  ", None), Err(LoadError::NotGiven)));
    }
}
