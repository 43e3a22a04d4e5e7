//! Parameter Store reads: a secret (`ssm_parameter` references, `secrets.rs`) or the deployed
//! configuration and its fragments (`config_source.rs`), kept as `SecureString`s. Parameter
//! Store is part of SSM; this module and `bastion/` (EC2 instances and Session Manager) are the
//! only importers of aws-sdk-ssm. It lives outside `bastion/` so that reading a secret or the
//! configuration does not depend on the bastion adapter.

use aws_sdk_ssm::error::DisplayErrorContext;

/// A parameter that could not be read: its name and SSM's own words (never a value).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("SSM parameter `{name}` cannot be read: {message}; check that it exists in this region and that powerpole may ssm:GetParameter on it (and kms:Decrypt for a SecureString)")]
pub struct ParameterError {
    pub name: String,
    pub message: String,
}

/// Reads parameters, decrypted.
#[derive(Debug, Clone)]
pub struct ParameterStore {
    ssm: aws_sdk_ssm::Client,
}

impl ParameterStore {
    pub fn from_sdk_config(aws: &aws_config::SdkConfig) -> ParameterStore {
        ParameterStore { ssm: aws_sdk_ssm::Client::new(aws) }
    }

    /// Every parameter directly under `path` (not recursively), decrypted, sorted by name.
    pub async fn get_under_path(&self, path: &str) -> Result<Vec<(String, String)>, ParameterError> {
        let mut found = Vec::new();
        let mut pages = self.ssm.get_parameters_by_path().path(path).recursive(false).with_decryption(true).into_paginator().send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| ParameterError { name: format!("{path}/*"), message: DisplayErrorContext(&e).to_string() })?;
            for parameter in page.parameters() {
                found.push((parameter.name().unwrap_or_default().to_string(), parameter.value().unwrap_or_default().to_string()));
            }
        }
        found.sort();
        Ok(found)
    }

    /// The value of parameter `name` (decrypted if it is a `SecureString`); empty if it has none.
    pub async fn get_decrypted(&self, name: &str) -> Result<String, ParameterError> {
        let answer = self.ssm.get_parameter().name(name).with_decryption(true).send().await.map_err(|e| ParameterError {
            name: name.to_string(),
            message: DisplayErrorContext(&e).to_string(),
        })?;
        Ok(answer.parameter().and_then(|p| p.value()).unwrap_or_default().to_string())
    }
}
