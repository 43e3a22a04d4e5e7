//! `powerpole doctor`: checks everything powerpole depends on and says exactly what is wrong.
//!
//! Configuration (already validated when this runs), the Slack secrets and the bot token
//! (`auth.test`), the DynamoDB table against the schema, and for every target: its subnet and
//! security group (which must admit nothing inbound), its AMI, its admin secret and login (which
//! must be able to create accounts) and its schemas. Each check says what it found or what to fix;
//! nothing is created or changed.

use std::fmt;

use crate::bastion::Ec2Bastions;
use crate::config::{Config, SlackMode};
use crate::grants::{MysqlGrants, SecretsManagerAdmin};
use crate::notify::SlackNotifier;
use crate::secrets::Secrets;
use crate::store::dynamo::DynamoStore;

/// One check and what it found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    pub what: String,
    pub result: Result<String, String>,
}

impl fmt::Display for Check {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.result {
            Ok(found) => write!(f, "ok    {}: {found}", self.what),
            Err(problem) => write!(f, "FAIL  {}: {problem}", self.what),
        }
    }
}

fn check(what: impl Into<String>, result: Result<String, String>) -> Check {
    Check { what: what.into(), result }
}

/// Runs every check against the AWS settings in `aws` (region, credentials, endpoints).
pub async fn run(config: &Config, aws: &aws_config::SdkConfig) -> Vec<Check> {
    let mut checks = Vec::new();
    let secrets = Secrets::new(aws);
    checks.push(check("aws region", aws.region().map(|r| r.to_string()).ok_or_else(|| "none: set AWS_REGION".to_string())));

    let bot = secrets.resolve(&config.slack.bot_token).await;
    match config.slack.mode {
        SlackMode::Http => checks.push(check("slack signing secret", secrets.resolve(&config.slack.signing_secret).await.map(|_| "readable".into()).map_err(|e| e.to_string()))),
        SlackMode::Socket => checks.push(check("slack app-level token", secrets.resolve(&config.slack.app_token).await.map(|_| "readable".into()).map_err(|e| e.to_string()))),
    }
    checks.push(match bot {
        Ok(token) => check("slack bot token", SlackNotifier::new(&config.slack.api_url, token.expose()).whoami().await.map_err(|e| e.to_string())),
        Err(e) => check("slack bot token", Err(e.to_string())),
    });

    let store = DynamoStore::from_sdk_config(aws, &config.store);
    checks.push(check("dynamodb", store.check().await));

    let bastions = Ec2Bastions::from_sdk_config(aws, config.bastion.clone()).in_deployment(config.deployment.id.clone());
    let grants = MysqlGrants::new(std::sync::Arc::new(SecretsManagerAdmin::from_sdk_config(aws))).in_deployment(config.deployment.id.clone());
    for (name, target) in &config.targets {
        checks.push(check(format!("target {name}: network"), bastions.check_target(target).await));
        checks.push(check(format!("target {name}: database"), grants.check_admin(target).await.map_err(|e| e.to_string())));
    }
    checks
}
