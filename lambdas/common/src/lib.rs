//! What powerpole's Lambda entry points share, so that each `main` only wires: the process
//! set-up, where the configuration comes from on Lambda, the assembled [`App`], and the SQS queue
//! that carries Slack follow-ups from the function that answers Slack to the one that does them.
//!
//! Everything else (verifying, parsing, deciding, the lifecycle) is the `powerpole` library, the
//! same code `powerpole serve` runs; the Lambda-specific part of the Slack flow is
//! [`powerpole::slack::deferred`].
//!
//! # Environment (set by `infra/modules/powerpole/lambda.tf`)
//!
//! - `POWERPOLE_CONFIG`: where `powerpole.toml` is: `ssm:/parameter/name` (a Parameter Store
//!   parameter holding the TOML text, what the module creates) or a file path (e.g. a file
//!   packaged next to `bootstrap`: `/var/task/powerpole.toml`).
//! - `POWERPOLE_CONFIG_LAYERS`: `ssm:/path` of the TOML fragments the module writes (one common
//!   one: table name, Slack secret references, bastion profile; one per target: its security
//!   group, subnet, port and admin secret), merged over `POWERPOLE_CONFIG` in name order. Kept
//!   out of the environment, whose 4 KB limit per-target variables reached at about ten targets.
//! - `POWERPOLE_SECTION__FIELD`: the usual overrides, applied last (the module sets none).
//! - `POWERPOLE_FOLLOW_UP_QUEUE_URL`: the SQS queue of Slack follow-ups (the Slack handler only).

use std::sync::Arc;

use async_trait::async_trait;
use powerpole::app::{App, AppError};
use powerpole::config::Config;
use powerpole::config_source::ConfigLocation;
use powerpole::secrets::SecretError;
use powerpole::slack::deferred::{Deferred, Deferrer, HandOff};

pub use powerpole::config_source::{CONFIG_VAR, LAYERS_VAR, SSM_PREFIX};
/// The SQS queue URL of Slack follow-ups.
pub const QUEUE_URL_VAR: &str = "POWERPOLE_FOLLOW_UP_QUEUE_URL";

/// Why a function could not start. Each is a sentence for the function's log.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("the configuration ({CONFIG_VAR}, {LAYERS_VAR}): {0}")]
    Config(#[from] powerpole::config_source::LoadError),
    #[error("{0}")]
    App(#[from] AppError),
    #[error("the Slack signing secret could not be read: {0}")]
    SigningSecret(SecretError),
    #[error("{QUEUE_URL_VAR} is not set: the Slack handler needs the follow-up queue")]
    NoQueue,
}

/// Once per process, before anything else: the TLS provider (two are linked in; see
/// STACK-NOTES), JSON logs on stdout exactly as `serve` writes them (one object per line; the
/// level from `RUST_LOG`, else Lambda's `AWS_LAMBDA_LOG_LEVEL`, else info), and the metrics
/// buffer that [`flush_metrics`] writes out.
pub fn init_process() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .or_else(|_| tracing_subscriber::EnvFilter::try_new(std::env::var("AWS_LAMBDA_LOG_LEVEL").unwrap_or_default().to_lowercase()))
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // Lambda adds its own timestamp and request id to each line; ANSI colours would be noise.
    let _ = tracing_subscriber::fmt().json().with_env_filter(filter).with_ansi(false).with_writer(std::io::stdout).try_init();
    powerpole::metrics::emit_emf();
}

/// Writes what this invocation observed (src/metrics) as CloudWatch embedded-metric-format
/// lines on stdout, where Lambda's log capture turns them into metrics in the `Powerpole`
/// namespace; the alarms of infra/modules/powerpole/alarms.tf watch them. Call once at the end
/// of every invocation.
pub fn flush_metrics(deployment: &str) {
    let now_ms = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or_default();
    for line in powerpole::metrics::emf_lines(deployment, now_ms) {
        println!("{line}");
    }
}

/// The AWS settings from the environment (Lambda sets region and credentials).
pub async fn aws() -> aws_config::SdkConfig {
    aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await
}

/// Reads and validates the configuration named by `POWERPOLE_CONFIG` and
/// `POWERPOLE_CONFIG_LAYERS`, with the `POWERPOLE_SECTION__FIELD` overrides applied: the library's
/// one loader ([`ConfigLocation`]), the same the operator's commands use.
pub async fn load_config(aws: &aws_config::SdkConfig) -> Result<Config, StartError> {
    let config = ConfigLocation::from_env()?.load(aws).await?;
    for warning in config.warnings() {
        tracing::warn!("{warning}");
    }
    Ok(config)
}

/// powerpole assembled from the Lambda environment, as `serve` assembles it.
pub async fn app() -> Result<App, StartError> {
    let aws = aws().await;
    let config = load_config(&aws).await?;
    Ok(App::build_with(config, aws, Arc::new(powerpole::workflow::SystemClock)).await?)
}

/// The Slack side for Lambda: the router of `serve`, with follow-ups handed to `hand_off`.
pub async fn slack_deferrer(app: &App, hand_off: Arc<dyn HandOff>) -> Result<Deferrer, StartError> {
    let signing_secret = app.secrets.resolve(&app.config.slack.signing_secret).await.map_err(StartError::SigningSecret)?;
    if signing_secret.expose().is_empty() {
        return Err(StartError::SigningSecret(SecretError::Empty));
    }
    Ok(Deferrer::new(app.workflow.clone(), app.notifier.clone(), signing_secret, hand_off))
}

/// The follow-up queue named by `POWERPOLE_FOLLOW_UP_QUEUE_URL` (the Slack handler).
pub fn follow_up_queue(app: &App) -> Result<SqsHandOff, StartError> {
    let queue_url = std::env::var(QUEUE_URL_VAR).ok().filter(|v| !v.trim().is_empty()).ok_or(StartError::NoQueue)?;
    Ok(SqsHandOff::new(aws_sdk_sqs::Client::new(&app.aws), queue_url.trim().to_string()))
}

/// The worker runs deferred requests and hands nothing on: a replay's follow-up runs right there.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoHandOff;

#[async_trait]
impl HandOff for NoHandOff {
    async fn hand_off(&self, _deferred: &Deferred) -> Result<(), String> {
        Err("the worker does not hand requests on".to_string())
    }
}

/// The follow-up queue: one message per deferred Slack request, its JSON as the body.
#[derive(Debug, Clone)]
pub struct SqsHandOff {
    client: aws_sdk_sqs::Client,
    queue_url: String,
}

impl SqsHandOff {
    pub fn new(client: aws_sdk_sqs::Client, queue_url: String) -> SqsHandOff {
        SqsHandOff { client, queue_url }
    }
}

#[async_trait]
impl HandOff for SqsHandOff {
    async fn hand_off(&self, deferred: &Deferred) -> Result<(), String> {
        let body = serde_json::to_string(deferred).map_err(|e| format!("the request could not be written as JSON: {e}"))?;
        self.client
            .send_message()
            .queue_url(&self.queue_url)
            .message_body(body)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| format!("SQS did not take the message: {}", aws_sdk_sqs::error::DisplayErrorContext(&e)))
    }
}

/// The message a deferred request travels in, read back (the worker's side).
pub fn deferred_from_message(body: &str) -> Result<Deferred, String> {
    serde_json::from_str(body).map_err(|e| format!("the message is not a deferred Slack request: {e}"))
}

/// One batch from the follow-up queue (the worker's side): runs each message's deferred request
/// (see [`Deferrer::run`]) and reports the messages that failed, which SQS delivers again and,
/// after the queue's `maxReceiveCount`, moves to the dead-letter queue. The function's event
/// source mapping must have `ReportBatchItemFailures` on.
pub async fn run_follow_ups(deferrer: &Deferrer, event: aws_lambda_events::sqs::SqsEvent) -> aws_lambda_events::sqs::SqsBatchResponse {
    let runs = event.records.into_iter().map(|message| async move {
        let id = message.message_id.clone().unwrap_or_default();
        let result = match deferred_from_message(message.body.as_deref().unwrap_or_default()) {
            Ok(deferred) => deferrer.run(&deferred).await.map_err(|e| e.to_string()),
            Err(e) => Err(e),
        };
        match result {
            Ok(ran) => {
                tracing::info!(message_id = %id, ?ran, "follow-up message done");
                None
            }
            Err(error) => {
                tracing::error!(message_id = %id, %error, "follow-up message failed; SQS will deliver it again");
                Some(id)
            }
        }
    });
    let mut response = aws_lambda_events::sqs::SqsBatchResponse::default();
    for failed in futures::future::join_all(runs).await.into_iter().flatten() {
        response.add_failure(failed);
    }
    response
}

/// What one sweeper invocation did (its answer, and a log line).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct TickSummary {
    /// Sessions a step acted on (not counting those not due or held by another worker).
    pub acted: usize,
    /// `session: error` for each step that failed (it stays due and is retried next tick).
    pub failed: Vec<String>,
    pub pages: u32,
    pub items_read: u32,
}

/// One scheduler tick for a scheduled event: exactly `powerpole sweep --once`. A step that
/// failed makes the invocation fail too (so the function's `Errors` metric shows it); the
/// session stays due and the next scheduled tick tries again.
pub async fn tick(app: &App, event: &aws_lambda_events::eventbridge::EventBridgeEvent) -> Result<TickSummary, TickError> {
    tracing::info!(event_id = event.id.as_deref().unwrap_or_default(), scheduled_for = ?event.time, "sweeper tick");
    let report = app.lifecycle.tick(app.config.scheduler.tick.to_chrono()).await.map_err(|e| TickError(e.to_string()))?;
    // Sessions by state, once a tick (what `serve` reads at each scrape).
    match app.workflow.store.live().await {
        Ok(live) => powerpole::metrics::live_sessions(&live),
        Err(e) => tracing::warn!(error = %e, "the live sessions could not be listed for the metrics"),
    }
    let mut summary = TickSummary { acted: 0, failed: Vec::new(), pages: report.pages, items_read: report.items_read };
    for (id, outcome) in report.acted() {
        summary.acted += 1;
        if let Err(e) = outcome {
            summary.failed.push(format!("{id}: {e}"));
        }
    }
    tracing::info!(acted = summary.acted, failed = summary.failed.len(), pages = summary.pages, items_read = summary.items_read, "sweeper tick done");
    if summary.failed.is_empty() {
        Ok(summary)
    } else {
        Err(TickError(format!("{} step(s) failed and stay due: {}", summary.failed.len(), summary.failed.join("; "))))
    }
}

/// A tick that could not read the store, or whose steps failed.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct TickError(pub String);
