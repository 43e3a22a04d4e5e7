//! `powerpole doctor`: checks everything powerpole depends on and says exactly what is wrong.
//!
//! Configuration (already validated when this runs), the Slack secrets and the bot token
//! (`auth.test`, its granted scopes against exactly those powerpole uses, the bot's membership
//! of every approvals channel, and that every user group the configuration names exists), the DynamoDB table against the schema, and for every target: its subnet and
//! security group (which must admit nothing inbound), its AMI, its admin secret and login (which
//! must be able to create accounts) and its schemas. Each check says what it found or what to fix;
//! nothing is created or changed.

use std::fmt;

use crate::bastion::Ec2Bastions;
use crate::config::{Config, SlackMode};
use crate::grants::{MysqlGrants, SecretsManagerAdmin};
use crate::notify::{NotifyError, SlackNotifier};
use crate::secrets::Secrets;
use crate::slack::manifest::bot_scopes;
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
    match bot {
        Ok(token) => {
            let notifier = SlackNotifier::new(&config.slack.api_url, token.expose());
            let whoami = notifier.whoami().await;
            let token_works = whoami.is_ok();
            checks.push(check("slack bot token", whoami.map_err(|e| e.to_string())));
            // With a token Slack refuses, every further Slack check would repeat that failure.
            if token_works {
                checks.push(slack_scopes(&notifier).await);
                checks.extend(approvals_channels(config, &notifier).await);
                checks.extend(policy_groups(config, &notifier).await);
            }
        }
        Err(e) => checks.push(check("slack bot token", Err(e.to_string()))),
    }

    let store = DynamoStore::from_sdk_config(aws, &config.store);
    checks.push(check("dynamodb", store.check().await));

    let bastions = Ec2Bastions::from_sdk_config(aws, config.bastion.clone()).in_deployment(config.deployment.id.clone());
    let grants = MysqlGrants::new(std::sync::Arc::new(SecretsManagerAdmin::from_sdk_config(aws))).in_deployment(config.deployment.id.clone());
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

/// The bot scopes the token lacks, against exactly those powerpole uses (the manifest's).
async fn slack_scopes(notifier: &SlackNotifier) -> Check {
    let granted = match notifier.granted_scopes().await {
        Ok(granted) => granted,
        Err(e) => return check("slack scopes", Err(e.to_string())),
    };
    let needed = bot_scopes();
    let missing: Vec<&str> = needed.iter().copied().filter(|s| !granted.iter().any(|g| g == s)).collect();
    let extra: Vec<&str> = granted.iter().map(String::as_str).filter(|g| !needed.contains(g)).collect();
    if !missing.is_empty() {
        return check(
            "slack scopes",
            Err(format!(
                "the bot token lacks {}: add them under OAuth & Permissions (or update the app from `powerpole slack manifest`) and reinstall the app to the workspace",
                missing.join(", ")
            )),
        );
    }
    let note = if extra.is_empty() { String::new() } else { format!("; also granted, unused by powerpole: {} (remove them for least privilege)", extra.join(", ")) };
    check("slack scopes", Ok(format!("all {} needed scope(s) granted{note}", needed.len())))
}

/// Whether every user group the configuration names (approvers, on-call, eligibility, approval
/// rules, auto-approval) exists in Slack: each group once, with the fields that name it.
async fn policy_groups(config: &Config, notifier: &SlackNotifier) -> Vec<Check> {
    let mut named = std::collections::BTreeMap::<String, Vec<String>>::new();
    for target in config.targets.values() {
        for (path, group) in crate::policy::groups_named(target) {
            let paths = named.entry(group).or_default();
            if !paths.contains(&path) {
                paths.push(path);
            }
        }
    }
    let mut checks = Vec::new();
    for (group, paths) in named {
        let what = format!("slack user group {group} ({})", paths.join(", "));
        let result = match crate::policy::group_exists(notifier, &group).await {
            Ok(0) => Ok("exists, with no members: nobody qualifies through it".to_string()),
            Ok(n) => Ok(format!("exists, {n} member(s)")),
            Err(NotifyError::Refused { code, .. }) if code == "no_such_subteam" || code == "subteam_not_found" => {
                Err(format!("Slack has no such user group: fix the id (S..., from the group's page) in {}", paths.join(", ")))
            }
            Err(e) => Err(format!("{e} (the bot needs usergroups:read)")),
        };
        checks.push(check(what, result));
    }
    checks
}

/// Whether the bot is in every approvals channel (a card cannot be posted where it is not).
async fn approvals_channels(config: &Config, notifier: &SlackNotifier) -> Vec<Check> {
    let mut checks = Vec::new();
    let mut seen = std::collections::BTreeMap::<&str, Vec<String>>::new();
    for (name, target) in &config.targets {
        seen.entry(target.approvals_channel.as_str()).or_default().push(name.to_string());
    }
    for (channel, targets) in seen {
        let what = format!("slack approvals channel {channel} ({})", targets.join(", "));
        let result = match notifier.in_channel(channel).await {
            Ok(true) => Ok("the bot is a member".to_string()),
            Ok(false) => Err(format!("the bot is not a member, so approval cards cannot be posted: type `/invite @powerpole` in {channel}")),
            Err(NotifyError::Refused { code, .. }) if code == "channel_not_found" => Err(format!(
                "Slack says there is no such channel the bot can see: for a private channel, type `/invite @powerpole` in it; else fix `approvals_channel` (a channel id, C...)"
            )),
            Err(e) => Err(e.to_string()),
        };
        checks.push(check(what, result));
    }
    checks
}
