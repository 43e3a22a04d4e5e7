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
pub mod deferred;
pub mod events;
pub mod health;
pub mod home;
mod http;
pub mod interaction;
pub mod journal;
pub mod manifest;
pub mod pool;
pub mod serve;
pub mod socket;
pub mod verify;

use std::future::Future;
use std::sync::Arc;

use rand::RngExt;
use serde_json::json;

use crate::notify::{Message, Notifier};
use crate::secrets::Secret;
use crate::workflow::Workflow;

pub use deferred::{FollowUp, FollowUps};
pub use health::{Readiness, TargetHealth};
pub use pool::{FollowUpPool, PoolStats};
pub use http::{router, slack_router, Endpoint};

/// Everything the handlers need.
pub struct SlackApp {
    pub workflow: Workflow,
    pub notifier: Arc<dyn Notifier>,
    pub signing_secret: Secret,
    /// The signing secret as the signature check uses it (keyed once, at start-up).
    pub signing_key: verify::SigningKey,
    pub health: Arc<TargetHealth>,
    /// What `GET /readyz` reports.
    pub readiness: Arc<Readiness>,
    /// `help`'s answer: the usage and the configured targets.
    pub help: Arc<Prepared>,
    /// Where the work after each acknowledgement runs: a bounded pool (`serve`, Socket Mode), or
    /// held for a Lambda entry point to hand off ([`deferred`]).
    pub follow_ups: Arc<dyn FollowUps>,
}

/// What a person reads when their action was refused or failed: the error's own words (written
/// for them); its technical cause, kept in the error's debug form, goes to the operator's log.
pub fn refusal<E: std::fmt::Display + std::fmt::Debug>(e: &E) -> String {
    tracing::warn!(cause = ?e, "an action was refused or failed");
    format!(":warning: {e}")
}

/// What someone is told when their acknowledged action waits for an unavailable store.
pub fn store_wait_note(app: &SlackApp, what: &str) -> String {
    format!(
        ":hourglass_flowing_sand: powerpole's request store is not answering right now. Your {what} is kept and will be done as soon as it answers (powerpole keeps trying for {}); you will be told either way.",
        app.workflow.config.store.unavailable_retry_for
    )
}

impl SlackApp {
    /// Follow-ups run through a bounded pool sized by `[server] follow_up_workers` and
    /// `follow_up_queue` (`serve`, Socket Mode).
    pub fn new(workflow: Workflow, notifier: Arc<dyn Notifier>, signing_secret: Secret) -> Arc<SlackApp> {
        let server = &workflow.config.server;
        let pool = Arc::new(FollowUpPool::new(server.follow_up_workers, server.follow_up_queue));
        SlackApp::with_pool(workflow, notifier, signing_secret, pool)
    }

    /// As [`SlackApp::new`], with a pool the caller keeps (to read its [`PoolStats`]).
    pub fn with_pool(workflow: Workflow, notifier: Arc<dyn Notifier>, signing_secret: Secret, pool: Arc<FollowUpPool>) -> Arc<SlackApp> {
        SlackApp::with_follow_ups(workflow, notifier, signing_secret, pool)
    }

    /// As [`SlackApp::new`], with the follow-ups going to `follow_ups` instead of a pool.
    pub fn with_follow_ups(workflow: Workflow, notifier: Arc<dyn Notifier>, signing_secret: Secret, follow_ups: Arc<dyn FollowUps>) -> Arc<SlackApp> {
        let readiness = Arc::new(Readiness::new(workflow.clock.clone()));
        let help = Arc::new(Prepared::new(command::Help::message(&workflow.config)));
        let signing_key = verify::SigningKey::new(&signing_secret);
        Arc::new(SlackApp { workflow, notifier, signing_secret, signing_key, health: Arc::new(TargetHealth::default()), readiness, help, follow_ups })
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
        self.follow_ups.accept(FollowUp::new(request_id, what, false, work));
    }

    /// As [`SlackApp::spawn`], for work that uses the interaction's `trigger_id` (opening a
    /// modal): Slack honours a trigger for 3 seconds only, so this work must start now and is
    /// never queued for later (a Lambda runs it before it answers).
    pub fn spawn_with_trigger<F>(&self, request_id: &RequestId, what: &'static str, work: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        self.follow_ups.accept(FollowUp::new(request_id, what, true, work));
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
            format!(" (Slack did not take {} update(s), so a card or a message may be out of date; the cause is in powerpole's log.)", done.undelivered.len())
        }
    }
}

/// A request's id: in every log line about it, and in the `x-request-id` answer header. Sixteen
/// lower-case hex digits, kept inline (no allocation on the acknowledgement's path).
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct RequestId([u8; 16]);

impl RequestId {
    pub fn new() -> RequestId {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let n: u64 = rand::rng().random();
        RequestId(std::array::from_fn(|i| HEX[(n >> (4 * (15 - i))) as usize & 0xf]))
    }

    /// The id as written in logs and headers.
    pub fn as_str(&self) -> &str {
        // Only ever ASCII hex digits (`new`, `parse`).
        std::str::from_utf8(&self.0).unwrap_or_default()
    }

    /// A request id as [`RequestId::new`] writes it (16 lower-case hex digits), e.g. read back
    /// from the `x-request-id` header or a deferred request.
    pub fn parse(text: &str) -> Option<RequestId> {
        let ok = text.len() == 16 && text.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        ok.then(|| RequestId(std::array::from_fn(|i| text.as_bytes()[i])))
    }
}

impl std::fmt::Debug for RequestId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("RequestId").field(&self.as_str()).finish()
    }
}

impl Default for RequestId {
    fn default() -> Self {
        RequestId::new()
    }
}

impl std::fmt::Display for RequestId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The immediate answer to a slash command.
#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    /// Seen only by the person who typed the command.
    Ephemeral(Message),
    /// An ephemeral answer that depends only on the configuration (`help`), built and serialized
    /// once when the app is assembled.
    Prepared(Arc<Prepared>),
    /// Nothing to show now (a modal opens, or the answer follows through `response_url`).
    Nothing,
}

/// An ephemeral message with the JSON Slack reads for it, written once.
#[derive(PartialEq)]
pub struct Prepared {
    pub message: Message,
    json: axum::body::Bytes,
}

impl Prepared {
    pub fn new(message: Message) -> Prepared {
        // Strings and JSON values always serialize; an empty body would only mark a bug.
        let json = serde_json::to_vec(&ephemeral(&message)).unwrap_or_default().into();
        Prepared { message, json }
    }
}

impl std::fmt::Debug for Prepared {
    // As `Message`'s: never the content.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Prepared").field("message", &self.message).field("json_bytes", &self.json.len()).finish()
    }
}

/// The body of an ephemeral answer: `response_type`, `text`, `blocks`.
#[derive(serde::Serialize)]
struct EphemeralBody<'a> {
    response_type: &'static str,
    text: &'a str,
    blocks: &'a [serde_json::Value],
}

fn ephemeral(m: &Message) -> EphemeralBody<'_> {
    EphemeralBody { response_type: "ephemeral", text: &m.text, blocks: &m.blocks }
}

impl Reply {
    /// The message a person reads, if any.
    pub fn message(&self) -> Option<&Message> {
        match self {
            Reply::Ephemeral(m) => Some(m),
            Reply::Prepared(p) => Some(&p.message),
            Reply::Nothing => None,
        }
    }
}

/// The HTTP answer Slack reads: an ephemeral message's JSON, written straight from the message
/// (no JSON tree in between) or as prepared, or an empty 200.
impl axum::response::IntoResponse for Reply {
    fn into_response(self) -> axum::response::Response {
        match &self {
            Reply::Ephemeral(m) => axum::Json(ephemeral(m)).into_response(),
            Reply::Prepared(p) => ([(axum::http::header::CONTENT_TYPE, "application/json")], p.json.clone()).into_response(),
            Reply::Nothing => axum::http::StatusCode::OK.into_response(),
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
