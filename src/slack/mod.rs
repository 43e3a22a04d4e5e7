//! Inbound Slack: verify, parse and acknowledge slash commands, interactions and events.
//!
//! Two transports share one set of handlers on [`SlackApp`]:
//! - HTTP ([`router`]): `POST /slack/commands`, `/slack/interactions`, `/slack/events`, and
//!   `GET /healthz`; every POST is signature-checked ([`verify`]) before anything else;
//! - Socket Mode ([`socket`]): Slack's WebSocket, for a service with no inbound port.
//!
//! Each handler answers within Slack's 3 seconds: it parses and validates inline (and answers an
//! invalid request at once, storing nothing), then spawns whatever touches AWS or makes several
//! Slack calls. Commands live one per file in [`command`], button clicks and modal submissions in
//! [`interaction`], in the mini-redis shape: `parse` (verified payload to typed command, or a
//! problem) and `apply` (the effect, through the workflow).

pub mod command;
pub mod events;
pub mod health;
mod http;
pub mod interaction;
pub mod serve;
pub mod socket;
pub mod verify;

use std::future::Future;
use std::sync::Arc;

use rand::RngExt;
use serde_json::json;
use tracing::Instrument;

use crate::notify::{Message, Notifier};
use crate::secrets::Secret;
use crate::workflow::Workflow;

pub use health::TargetHealth;
pub use http::router;

/// Everything the handlers need.
pub struct SlackApp {
    pub workflow: Workflow,
    pub notifier: Arc<dyn Notifier>,
    pub signing_secret: Secret,
    pub health: Arc<TargetHealth>,
}

impl SlackApp {
    pub fn new(workflow: Workflow, notifier: Arc<dyn Notifier>, signing_secret: Secret) -> Arc<SlackApp> {
        Arc::new(SlackApp { workflow, notifier, signing_secret, health: Arc::new(TargetHealth::default()) })
    }

    /// The slash command as configured (`/powerpole`).
    pub fn command_name(&self) -> &str {
        &self.workflow.config.slack.command
    }

    /// Runs `work` after the acknowledgement, in the request's log span.
    pub fn spawn<F>(&self, request_id: &RequestId, what: &'static str, work: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let span = tracing::info_span!("follow_up", request_id = %request_id, what);
        tokio::spawn(work.instrument(span));
    }

    /// Tells the person who acted, through `response_url`, logging what Slack would not take.
    pub async fn tell(&self, response_url: &str, message: &Message) {
        if let Err(e) = self.notifier.respond(response_url, message).await {
            tracing::error!(error = %e, "the answer could not be delivered to the person who acted");
        }
    }

    /// Tells a user by DM (modal submissions have no `response_url`).
    pub async fn tell_user(&self, user: &crate::domain::SlackUserId, message: &Message) {
        if let Err(e) = self.notifier.dm(user, message).await {
            tracing::error!(error = %e, "the answer could not be delivered to the person who acted");
        }
    }

    /// Logs messages a stored change could not deliver, and returns a line for the actor.
    pub fn report_undelivered(&self, done: &crate::workflow::Done) -> String {
        for e in &done.undelivered {
            tracing::error!(session = %done.session.id, error = %e, "a message about a stored change was not delivered");
        }
        if done.undelivered.is_empty() {
            String::new()
        } else {
            format!(" (Slack did not take {} update(s): {})", done.undelivered.len(), done.undelivered[0])
        }
    }
}

/// A request's id: in every log line about it, and in the `x-request-id` answer header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestId(String);

impl RequestId {
    pub fn new() -> RequestId {
        RequestId(format!("{:016x}", rand::rng().random::<u64>()))
    }
}

impl Default for RequestId {
    fn default() -> Self {
        RequestId::new()
    }
}

impl std::fmt::Display for RequestId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// The immediate answer to a slash command.
#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    /// Seen only by the person who typed the command.
    Ephemeral(Message),
    /// Nothing to show now (a modal opens, or the answer follows through `response_url`).
    Nothing,
}

impl Reply {
    /// The JSON body Slack reads from the HTTP answer, if any.
    pub fn body(&self) -> Option<serde_json::Value> {
        match self {
            Reply::Ephemeral(m) => Some(json!({"response_type": "ephemeral", "text": m.text, "blocks": m.blocks})),
            Reply::Nothing => None,
        }
    }
}

/// The immediate answer to an interaction.
#[derive(Debug, Clone, PartialEq)]
pub enum Ack {
    /// 200 with no body: Slack closes a submitted modal.
    Ok,
    /// A modal submission with invalid inputs: `block_id` to message, shown under each input.
    Errors(Vec<(String, String)>),
}

impl Ack {
    pub fn body(&self) -> Option<serde_json::Value> {
        match self {
            Ack::Ok => None,
            Ack::Errors(errors) => {
                let map: serde_json::Map<String, serde_json::Value> = errors.iter().map(|(k, v)| (k.clone(), json!(v))).collect();
                Some(json!({"response_action": "errors", "errors": map}))
            }
        }
    }
}
