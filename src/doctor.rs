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

/// The admin connection's TLS and the server's `require_secure_transport`. Without TLS on the
/// admin connection every `CREATE USER ... IDENTIFIED BY` crosses the network in clear: a
/// failure unless the target says `admin_tls = "disabled"` (local databases only), which is
/// reported as such.
fn tls_status(target: &crate::config::TargetConfig, a: &crate::grants::AdminCheck) -> Result<String, String> {
    let secure = if a.require_secure_transport { "ON" } else { "OFF (logins without TLS are accepted; set it ON in the cluster's parameter group)" };
    match (&target.admin_tls, a.tls_cipher.is_empty()) {
        (crate::config::AdminTls::Verify { ca_bundle }, false) => {
            Ok(format!("admin connection TLS {} verified against {}; require_secure_transport {secure}", a.tls_cipher, ca_bundle.display()))
        }
        (crate::config::AdminTls::Verify { .. }, true) => Err("the admin connection has no TLS cipher although TLS is required; check the server's TLS set-up".into()),
        // The operator opted out in the config (the local stand-ins); said plainly, not failed.
        (crate::config::AdminTls::Disabled, _) => {
            Ok(format!("admin_tls is disabled (local databases only: passwords cross the network in clear); require_secure_transport {secure}"))
        }
    }
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

    let store = DynamoStore::new(aws_sdk_dynamodb::Client::new(aws), &config.store);
    checks.push(check("dynamodb", store.check().await));

    let bastions = Ec2Bastions::from_sdk_config(aws, config.bastion.clone());
    let grants = MysqlGrants::new(std::sync::Arc::new(SecretsManagerAdmin::new(aws_sdk_secretsmanager::Client::new(aws), SecretsManagerAdmin::DEFAULT_TTL)));
    for (name, target) in &config.targets {
        checks.push(check(format!("target {name}: network"), bastions.check_target(target).await));
        let admin = grants.check_admin(target).await;
        checks.push(check(format!("target {name}: database"), admin.as_ref().map(|a| a.summary.clone()).map_err(|e| e.to_string())));
        if let Ok(a) = &admin {
            checks.push(check(format!("target {name}: tls"), tls_status(target, a)));
        }
    }
    checks
}
