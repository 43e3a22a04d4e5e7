//! Outbound Slack: the Web API client and every message powerpole sends.
//!
//! The workflow talks to Slack only through the [`Notifier`] trait; [`SlackNotifier`] is the
//! implementation over slack-morphism's client. What the messages say is decided by the pure
//! builders in [`messages`] (and the modals in [`views`]), so they are unit-tested without any I/O.
//!
//! A [`Message`] may hold a password (the hand-over DM): its `Debug` shows sizes only, and no error
//! here ever carries a message body.

pub mod messages;
mod slack;
pub mod views;

use async_trait::async_trait;
use serde_json::Value;

use crate::domain::SlackUserId;

pub use slack::{slack_client, RetryPolicy, SlackNotifier};
/// The slack-morphism client type (Socket Mode shares the notifier's client).
pub use slack_morphism::hyper_tokio::SlackHyperClient;

/// A message: the fallback text (notifications, screen readers) and its Block Kit blocks.
#[derive(Clone, PartialEq)]
pub struct Message {
    pub text: String,
    pub blocks: Vec<Value>,
    /// Posted as a reply in this message's thread (`thread_ts`) instead of at the top level.
    pub thread_ts: Option<String>,
}

impl Message {
    /// A message of `blocks`, with `text` as the fallback.
    pub fn new(text: impl Into<String>, blocks: Vec<Value>) -> Message {
        Message { text: text.into(), blocks, thread_ts: None }
    }

    /// The same message, posted as a reply in the thread of the message at `ts`.
    pub fn in_thread(mut self, ts: impl Into<String>) -> Message {
        self.thread_ts = Some(ts.into());
        self
    }

    /// A plain message of one `mrkdwn` section.
    pub fn plain(text: impl Into<String>) -> Message {
        let text = text.into();
        let blocks = vec![messages::section(&text)];
        Message::new(text, blocks)
    }

    /// Everything a person would read, blocks included (for tests and the demo).
    pub fn readable(&self) -> String {
        let mut out = self.text.clone();
        for block in &self.blocks {
            collect_text(block, &mut out);
        }
        out
    }
}

fn collect_text(value: &Value, out: &mut String) {
    match value {
        Value::Object(map) => {
            if let Some(Value::String(t)) = map.get("text") {
                out.push('\n');
                out.push_str(t);
            }
            for (key, v) in map {
                if key != "text" || !v.is_string() {
                    collect_text(v, out);
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| collect_text(v, out)),
        _ => {}
    }
}

impl std::fmt::Debug for Message {
    // Messages can carry a password: never print their content.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Message({} chars, {} blocks)", self.text.len(), self.blocks.len())
    }
}

/// A view: a modal (Block Kit `type: modal`) or an App Home tab (`type: home`).
#[derive(Debug, Clone, PartialEq)]
pub struct View(pub Value);

/// Where a posted message is, so it can be updated in place.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Posted {
    pub channel: String,
    pub ts: String,
}

/// What powerpole needs from a person's Slack profile.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Profile {
    pub email: Option<String>,
    /// IANA time zone name (`Europe/Berlin`).
    pub tz: Option<String>,
}

/// Why Slack did not take a call. Never carries a message body or a token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NotifyError {
    #[error("Slack kept rate-limiting {method} after {attempts} attempts (last Retry-After {retry_after_secs}s); try again later")]
    RateLimited { method: &'static str, attempts: u32, retry_after_secs: u64 },
    #[error("Slack refused {method}: {code}")]
    Refused { method: &'static str, code: String },
    #[error("Slack could not be reached for {method}: {reason}")]
    Unreachable { method: &'static str, reason: String },
    #[error("powerpole built a {what} that Slack's model does not accept ({reason}); this is a bug in powerpole")]
    Malformed { what: &'static str, reason: String },
}

/// Everything the workflow asks of Slack.
#[async_trait]
pub trait Notifier: Send + Sync {
    /// Posts `message` in `channel` (`chat.postMessage`).
    async fn post(&self, channel: &str, message: &Message) -> Result<Posted, NotifyError>;

    /// Replaces a posted message in place (`chat.update`).
    async fn update(&self, at: &Posted, message: &Message) -> Result<(), NotifyError>;

    /// Sends `message` to `user` as a direct message from the app; returns where it landed, so it
    /// can be updated later (the hand-over DM's password is redacted that way).
    async fn dm(&self, user: &SlackUserId, message: &Message) -> Result<Posted, NotifyError>;

    /// The app's DMs with `user`, newest first, posted after `since` when given, whose text
    /// contains `containing` (`conversations.open`, then one page of `conversations.history`).
    /// Finds a hand-over DM that Slack took although its post answered with an error (or that a
    /// worker posted just before it stopped), which nothing recorded.
    async fn find_dms(&self, user: &SlackUserId, since: Option<chrono::DateTime<chrono::Utc>>, containing: &str) -> Result<Vec<Posted>, NotifyError>;

    /// Deletes a message the app posted (`chat.delete`); one already gone counts as deleted.
    async fn delete(&self, at: &Posted) -> Result<(), NotifyError>;

    /// Answers privately through a `response_url` (ephemeral, seen only by the person who acted).
    async fn respond(&self, response_url: &str, message: &Message) -> Result<(), NotifyError>;

    /// Opens a modal (`views.open`) for a `trigger_id` (valid for 3 seconds after a click).
    async fn open_view(&self, trigger_id: &str, view: &View) -> Result<(), NotifyError>;

    /// Shows `view` (Block Kit `type: home`) as `user`'s App Home tab (`views.publish`).
    async fn publish_view(&self, user: &SlackUserId, view: &View) -> Result<(), NotifyError>;

    /// The e-mail and time zone of a user (`users.info`).
    async fn profile(&self, user: &SlackUserId) -> Result<Profile, NotifyError>;

    /// The members of a user group (`usergroups.users.list`).
    async fn group_members(&self, group: &str) -> Result<Vec<SlackUserId>, NotifyError>;
}
