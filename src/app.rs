//! Assembles powerpole from its configuration: the four adapters over DynamoDB, EC2/SSM, MySQL
//! and the Slack Web API, and the workflow on top of them. `serve`, `sweep`, `reconcile` and the
//! Lambda entry points all start here, so they cannot drift apart.

use std::sync::Arc;

use tokio::sync::Notify;

use crate::bastion::Ec2Bastions;
use crate::config::Config;
use crate::grants::{MysqlGrants, SecretsManagerAdmin};
use crate::metrics::timed::{TimedBastions, TimedGrants, TimedStore};
use crate::notify::{slack_client, Notifier, RetryPolicy, SlackNotifier};
use crate::secrets::{SecretError, Secrets};
use crate::store::dynamo::DynamoStore;
use crate::workflow::{Clock, Lifecycle, SystemClock, Workflow};

/// Why powerpole could not be assembled.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("the Slack {what} could not be read: {source}")]
    Secret { what: &'static str, source: SecretError },
    #[error("no AWS region is configured: set AWS_REGION (or a profile with a region)")]
    NoRegion,
}

/// Everything a running powerpole needs.
#[derive(Clone)]
pub struct App {
    pub config: Arc<Config>,
    pub aws: aws_config::SdkConfig,
    pub secrets: Secrets,
    pub notifier: Arc<dyn Notifier>,
    /// The slack-morphism client behind `notifier` (Socket Mode needs it too).
    pub slack: Arc<crate::notify::SlackHyperClient>,
    pub workflow: Workflow,
    pub lifecycle: Lifecycle,
}

impl App {
    /// Loads the AWS settings from the environment (region, credentials, `AWS_ENDPOINT_URL*`) and
    /// builds every adapter. Only the bot token is read here; nothing is launched or connected.
    pub async fn build(config: Config) -> Result<App, AppError> {
        let aws = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
        Self::build_with(config, aws, Arc::new(SystemClock)).await
    }

    /// As [`App::build`], with the AWS settings and the clock given (tests inject both).
    pub async fn build_with(config: Config, aws: aws_config::SdkConfig, clock: Arc<dyn Clock>) -> Result<App, AppError> {
        let config = Arc::new(config);
        let region = aws.region().map(|r| r.to_string()).ok_or(AppError::NoRegion)?;
        let secrets = Secrets::new(&aws);
        let bot_token = secrets
            .resolve(&config.slack.bot_token)
            .await
            .map_err(|source| AppError::Secret { what: "bot token", source })?;
        let slack = Arc::new(slack_client(&config.slack.api_url));
        // Each adapter bounded by its own `[calls]` policy (crate::calls), and timed for
        // `/metrics` and the Lambdas' EMF lines (metrics::timed).
        let calls = config.calls;
        let slack_policy = RetryPolicy { max_attempts: calls.slack.max_attempts, call_timeout: calls.slack.timeout.to_std(), ..RetryPolicy::default() };
        let notifier: Arc<dyn Notifier> = Arc::new(SlackNotifier::with_client(slack.clone(), bot_token.expose()).with_retry(slack_policy));
        let store = Arc::new(TimedStore(Arc::new(DynamoStore::from_sdk_config(&calls.dynamodb.aws(&aws), &config.store))));
        let workflow = Workflow { config: config.clone(), store, clock, wake: Arc::new(Notify::new()) };
        let admin = Arc::new(SecretsManagerAdmin::from_sdk_config(&calls.secrets_manager.aws(&aws)));
        let deployment = config.deployment.id.clone();
        let lifecycle = Lifecycle {
            workflow: workflow.clone(),
            bastions: Arc::new(TimedBastions(Arc::new(Ec2Bastions::from_sdk_config(&calls.ec2.aws(&aws), config.bastion.clone()).in_deployment(deployment.clone())))),
            grants: Arc::new(TimedGrants(Arc::new(MysqlGrants::new(admin).in_deployment(deployment).with_connect_timeout(calls.mysql.timeout.to_std())))),
            notifier: notifier.clone(),
            region,
            // Read only for the security channel's summary at teardown.
            transcripts: config.slack.security_channel.as_ref().map(|_| crate::transcripts::CloudWatchLogs::new(&calls.cloudwatch_logs.aws(&aws))),
            claims: Default::default(),
            dependencies: Default::default(),
        };
        Ok(App { config, aws, secrets, notifier, slack, workflow, lifecycle })
    }
}
