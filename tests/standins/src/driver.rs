//! Plays Slack's side of the product's inbound HTTP: slash commands, interactions and Events API
//! callbacks, signed as Slack signs them (see [`crate::sign`]) and shaped like Slack's payloads.
//!
//! ```no_run
//! # async fn demo(slack: powerpole_standins::slack::SlackStandin) -> Result<(), reqwest::Error> {
//! use powerpole_standins::driver::{SlackDriver, SlashCommand, Tamper};
//! let driver = SlackDriver::new("http://127.0.0.1:8080", "signing-secret").with_slack(&slack);
//! let reply = driver.command(SlashCommand::new("U01ALICE", "alice", "C01ACCESS", "request")).await?;
//! assert_eq!(reply.status, 200);
//! let refused = driver.tampered(Tamper::StaleTimestamp).command(SlashCommand::new("U01ALICE", "alice", "C01ACCESS", "")).await?;
//! assert_eq!(refused.status, 401);
//! # Ok(()) }
//! ```
//!
//! How it differs from Slack: it never retries by itself (pass `retry_num` to [`SlackDriver::event`]
//! to send what a retry looks like), does not wait for or enforce the 3-second answer limit, and
//! makes up ids (`trigger_id`, `event_id`, `action_ts`) that only look like Slack's.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::sign;
use crate::slack::{RecordedCall, SlackStandin, API_APP_ID, BOT_USER_ID, TEAM_DOMAIN, TEAM_ID};

/// The slash command powerpole registers.
pub const COMMAND: &str = "/powerpole";
/// The deprecated verification token Slack still puts in payloads; powerpole must not rely on it.
pub const VERIFICATION_TOKEN: &str = "standin-verification-token";
/// How far Slack's clock may be from ours before a verifier must refuse the request.
pub const SIGNATURE_MAX_AGE: Duration = Duration::from_secs(5 * 60);

/// What came back from the product.
#[derive(Debug, Clone, PartialEq)]
pub struct DriverResponse {
    pub status: u16,
    pub body: String,
}

impl DriverResponse {
    /// The body parsed as JSON, if it is JSON.
    pub fn json(&self) -> Option<Value> {
        serde_json::from_str(&self.body).ok()
    }
}

/// A way to get the signature wrong, for the tests that the product refuses such requests.
#[derive(Debug, Clone, PartialEq)]
pub enum Tamper {
    /// Correctly signed, but six minutes ago: older than Slack's five-minute window.
    StaleTimestamp,
    /// Current timestamp, but a signature of other bytes.
    ForgedSignature,
    /// Correctly made, but with this signing secret instead of the driver's.
    WrongSecret(String),
    /// No `X-Slack-Signature` and no `X-Slack-Request-Timestamp` at all.
    Unsigned,
}

/// Sends signed requests to the product at `base_url` (`/slack/commands`,
/// `/slack/interactions`, `/slack/events`).
#[derive(Debug, Clone)]
pub struct SlackDriver {
    base_url: String,
    signing_secret: String,
    response_url_base: Option<String>,
    tamper: Option<Tamper>,
    http: reqwest::Client,
}

/// A `/powerpole` invocation.
#[derive(Debug, Clone, PartialEq)]
pub struct SlashCommand {
    pub user_id: String,
    pub user_name: String,
    pub channel_id: String,
    pub channel_name: String,
    /// Everything after the command, as typed.
    pub text: String,
    pub command: String,
    /// Defaults to a fresh URL on the Slack stand-in given to [`SlackDriver::with_slack`].
    pub response_url: Option<String>,
    /// Defaults to a fresh made-up trigger id.
    pub trigger_id: Option<String>,
}

impl SlashCommand {
    /// `/powerpole {text}` typed by `user_id` in `channel_id`.
    pub fn new(user_id: &str, user_name: &str, channel_id: &str, text: &str) -> Self {
        Self {
            user_id: user_id.to_owned(),
            user_name: user_name.to_owned(),
            channel_id: channel_id.to_owned(),
            channel_name: "powerpole".to_owned(),
            text: text.to_owned(),
            command: COMMAND.to_owned(),
            response_url: None,
            trigger_id: None,
        }
    }
}

/// A click on a button in a message.
#[derive(Debug, Clone, PartialEq)]
pub struct ButtonClick {
    pub user_id: String,
    pub user_name: String,
    pub channel_id: String,
    pub message_ts: String,
    pub action_id: String,
    pub block_id: String,
    pub value: String,
    /// The button's label, as Slack echoes it in `actions[].text`.
    pub label: String,
    /// The message the button is on, as Slack sends it back; a minimal one if `None`.
    pub message: Option<Value>,
    /// Defaults to a fresh URL on the Slack stand-in given to [`SlackDriver::with_slack`].
    pub response_url: Option<String>,
}

impl ButtonClick {
    /// `user_id` clicks the button `action_id` in a message the product posted, found in a
    /// recorded `chat.postMessage` or `chat.update` call: the block id, value, label, channel
    /// and ts are taken from it. `None` if the message has no such button or was not posted.
    pub fn on(
        call: &RecordedCall,
        action_id: &str,
        user_id: &str,
        user_name: &str,
    ) -> Option<Self> {
        let message = call.response.get("message")?.clone();
        let channel_id = call.response.get("channel")?.as_str()?.to_owned();
        let message_ts = call.response.get("ts")?.as_str()?.to_owned();
        // The message as the stand-in answered it has the blocks parsed and, after an update,
        // the blocks kept from before.
        let blocks = message
            .get("blocks")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let (block_id, button) = blocks.into_iter().find_map(|block| {
            let mut elements = block
                .get("elements")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            elements.extend(block.get("accessory").cloned());
            let button = elements
                .into_iter()
                .find(|e| e.get("action_id").and_then(Value::as_str) == Some(action_id))?;
            let block_id = block
                .get("block_id")
                .and_then(Value::as_str)
                .unwrap_or_default();
            Some((block_id.to_owned(), button))
        })?;
        Some(Self {
            user_id: user_id.to_owned(),
            user_name: user_name.to_owned(),
            channel_id,
            message_ts,
            action_id: action_id.to_owned(),
            block_id,
            value: button
                .get("value")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned(),
            label: button
                .pointer("/text/text")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned(),
            message: Some(message),
            response_url: None,
        })
    }
}

/// A submitted modal.
#[derive(Debug, Clone, PartialEq)]
pub struct ViewSubmission {
    pub user_id: String,
    pub user_name: String,
    pub view_id: String,
    pub callback_id: String,
    pub private_metadata: String,
    /// The view's blocks, as the product opened it; Slack sends them back with the submission.
    pub blocks: Vec<Value>,
    /// `(block_id, action_id, value)` for each input.
    pub values: Vec<(String, String, InputValue)>,
}

/// What the user entered in one input of a modal.
#[derive(Debug, Clone, PartialEq)]
pub enum InputValue {
    /// A `plain_text_input`.
    Text(String),
    /// A `static_select`: the chosen option's value (its label is taken to be the same).
    Selected(String),
    /// Any other element's state, exactly as Slack sends it (with its `type`).
    Raw(Value),
}

impl ViewSubmission {
    /// `user_id` submits the view the product opened in a recorded `views.open`, `views.push`
    /// or `views.update` call, with no inputs filled yet (add them with [`ViewSubmission::input`]).
    pub fn of(call: &RecordedCall, user_id: &str, user_name: &str) -> Option<Self> {
        let view = call.response.get("view")?;
        let text = |name: &str| {
            view.get(name)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned()
        };
        Some(Self {
            user_id: user_id.to_owned(),
            user_name: user_name.to_owned(),
            view_id: text("id"),
            callback_id: text("callback_id"),
            private_metadata: text("private_metadata"),
            blocks: view
                .get("blocks")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default(),
            values: Vec::new(),
        })
    }

    /// Fills the input `action_id` in block `block_id`.
    pub fn input(mut self, block_id: &str, action_id: &str, value: InputValue) -> Self {
        self.values
            .push((block_id.to_owned(), action_id.to_owned(), value));
        self
    }
}

impl SlackDriver {
    /// A driver for the product at `base_url` (`http://127.0.0.1:PORT`), signing with
    /// `signing_secret`.
    pub fn new(base_url: &str, signing_secret: &str) -> Self {
        Self {
            base_url: base_url.trim_end_matches('/').to_owned(),
            signing_secret: signing_secret.to_owned(),
            response_url_base: None,
            tamper: None,
            // Building a client without TLS or proxies has nothing that can fail.
            http: reqwest::Client::builder()
                .no_proxy()
                .build()
                .unwrap_or_default(),
        }
    }

    /// Gives every command and click a `response_url` on this Slack stand-in, so what the
    /// product posts there is recorded.
    pub fn with_slack(mut self, slack: &SlackStandin) -> Self {
        self.response_url_base = Some(slack.response_url(""));
        self
    }

    /// A copy of this driver that gets the signature wrong in the way given.
    pub fn tampered(&self, tamper: Tamper) -> Self {
        Self {
            tamper: Some(tamper),
            ..self.clone()
        }
    }

    /// Sends a slash command to `/slack/commands`, form-encoded with Slack's fields in Slack's
    /// order.
    pub async fn command(&self, command: SlashCommand) -> Result<DriverResponse, reqwest::Error> {
        let response_url = command
            .response_url
            .unwrap_or_else(|| self.fresh_response_url());
        let trigger_id = command.trigger_id.unwrap_or_else(fresh_trigger_id);
        let body = form(&[
            ("token", VERIFICATION_TOKEN),
            ("team_id", TEAM_ID),
            ("team_domain", TEAM_DOMAIN),
            ("channel_id", &command.channel_id),
            ("channel_name", &command.channel_name),
            ("user_id", &command.user_id),
            ("user_name", &command.user_name),
            ("command", &command.command),
            ("text", &command.text),
            ("api_app_id", API_APP_ID),
            ("is_enterprise_install", "false"),
            ("response_url", &response_url),
            ("trigger_id", &trigger_id),
        ]);
        self.post("/slack/commands", FORM, body, &[]).await
    }

    /// Sends an interaction payload (see [`SlackDriver::block_actions`],
    /// [`SlackDriver::view_submission`]) to `/slack/interactions` as `payload=<json>`.
    pub async fn interaction(&self, payload: Value) -> Result<DriverResponse, reqwest::Error> {
        let body = form(&[("payload", &payload.to_string())]);
        self.post("/slack/interactions", FORM, body, &[]).await
    }

    /// Sends an Events API body (see [`url_verification`], [`event_callback`]) to
    /// `/slack/events`; with `retry_num`, as Slack's retry number `n` after a timeout.
    pub async fn event(
        &self,
        body: Value,
        retry_num: Option<u32>,
    ) -> Result<DriverResponse, reqwest::Error> {
        let retry = retry_num.map(|n| n.to_string());
        let headers: Vec<(&str, &str)> = match &retry {
            Some(n) => vec![
                ("X-Slack-Retry-Num", n),
                ("X-Slack-Retry-Reason", "http_timeout"),
            ],
            None => Vec::new(),
        };
        self.post(
            "/slack/events",
            "application/json",
            body.to_string(),
            &headers,
        )
        .await
    }

    /// Sends `body` to `{base_url}{path}`, signed (or tampered) like every other request: for
    /// shapes the helpers above do not make, such as malformed bodies.
    pub async fn post(
        &self,
        path: &str,
        content_type: &str,
        body: String,
        headers: &[(&str, &str)],
    ) -> Result<DriverResponse, reqwest::Error> {
        let mut request = self
            .http
            .post(format!("{}{path}", self.base_url))
            .header(reqwest::header::CONTENT_TYPE, content_type);
        for (name, value) in self.signature_headers(body.as_bytes()) {
            request = request.header(name, value);
        }
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response = request.body(body).send().await?;
        let status = response.status().as_u16();
        let body = response.text().await?;
        Ok(DriverResponse { status, body })
    }

    /// The `block_actions` payload Slack sends when `click.user_id` clicks the button.
    pub fn block_actions(&self, click: &ButtonClick) -> Value {
        let message = click.message.clone().unwrap_or_else(
            || json!({"type": "message", "user": BOT_USER_ID, "ts": click.message_ts, "text": ""}),
        );
        json!({
            "type": "block_actions",
            "user": user(&click.user_id, &click.user_name),
            "api_app_id": API_APP_ID,
            "token": VERIFICATION_TOKEN,
            "container": {
                "type": "message",
                "message_ts": click.message_ts,
                "channel_id": click.channel_id,
                "is_ephemeral": false,
            },
            "trigger_id": fresh_trigger_id(),
            "team": {"id": TEAM_ID, "domain": TEAM_DOMAIN},
            "enterprise": null,
            "is_enterprise_install": false,
            "channel": {"id": click.channel_id, "name": "powerpole"},
            "message": message,
            "state": {"values": {}},
            "response_url": click.response_url.clone().unwrap_or_else(|| self.fresh_response_url()),
            "actions": [{
                "action_id": click.action_id,
                "block_id": click.block_id,
                "text": {"type": "plain_text", "text": click.label, "emoji": true},
                "value": click.value,
                "type": "button",
                "action_ts": now_ts(),
            }],
        })
    }

    /// The `view_submission` payload Slack sends when the user submits the modal.
    pub fn view_submission(&self, submission: &ViewSubmission) -> Value {
        let mut values = serde_json::Map::new();
        for (block_id, action_id, value) in &submission.values {
            let state = match value {
                InputValue::Text(text) => json!({"type": "plain_text_input", "value": text}),
                InputValue::Selected(choice) => json!({
                    "type": "static_select",
                    "selected_option": {
                        "text": {"type": "plain_text", "text": choice, "emoji": true},
                        "value": choice,
                    },
                }),
                InputValue::Raw(state) => state.clone(),
            };
            let block = values.entry(block_id.clone()).or_insert_with(|| json!({}));
            block[action_id] = state;
        }
        json!({
            "type": "view_submission",
            "team": {"id": TEAM_ID, "domain": TEAM_DOMAIN},
            "user": user(&submission.user_id, &submission.user_name),
            "api_app_id": API_APP_ID,
            "token": VERIFICATION_TOKEN,
            "trigger_id": fresh_trigger_id(),
            "view": {
                "id": submission.view_id,
                "team_id": TEAM_ID,
                "type": "modal",
                "callback_id": submission.callback_id,
                "private_metadata": submission.private_metadata,
                "title": {"type": "plain_text", "text": "powerpole", "emoji": true},
                "blocks": submission.blocks,
                "state": {"values": values},
                "hash": now_ts(),
                "root_view_id": submission.view_id,
                "previous_view_id": null,
                "app_id": API_APP_ID,
                "external_id": "",
                "bot_id": crate::slack::BOT_ID,
                "clear_on_close": false,
                "notify_on_close": false,
            },
            "response_urls": [],
            "is_enterprise_install": false,
            "enterprise": null,
        })
    }

    fn fresh_response_url(&self) -> String {
        let base = self
            .response_url_base
            .clone()
            .unwrap_or_else(|| "https://hooks.slack.com/commands/T0STANDIN/".to_owned());
        format!("{base}{}", next_id())
    }

    fn signature_headers(&self, body: &[u8]) -> Vec<(&'static str, String)> {
        let now = chrono::Utc::now().timestamp();
        let stale = now - SIGNATURE_MAX_AGE.as_secs() as i64 - 60;
        match &self.tamper {
            None => sign::headers(&self.signing_secret, now, body).to_vec(),
            Some(Tamper::StaleTimestamp) => {
                sign::headers(&self.signing_secret, stale, body).to_vec()
            }
            Some(Tamper::WrongSecret(secret)) => sign::headers(secret, now, body).to_vec(),
            Some(Tamper::ForgedSignature) => {
                let forged = sign::signature(&self.signing_secret, now, b"some other body");
                vec![
                    (sign::TIMESTAMP_HEADER, now.to_string()),
                    (sign::SIGNATURE_HEADER, forged),
                ]
            }
            Some(Tamper::Unsigned) => Vec::new(),
        }
    }
}

/// The `url_verification` challenge Slack sends when the Events URL is saved.
pub fn url_verification(challenge: &str) -> Value {
    json!({"token": VERIFICATION_TOKEN, "challenge": challenge, "type": "url_verification"})
}

/// `event` (such as `{"type": "app_home_opened", "user": "U1", ...}`) in Slack's
/// `event_callback` envelope, with a fresh `event_id`.
pub fn event_callback(event: Value) -> Value {
    json!({
        "token": VERIFICATION_TOKEN,
        "team_id": TEAM_ID,
        "api_app_id": API_APP_ID,
        "event": event,
        "type": "event_callback",
        "event_id": format!("Ev{:010}", next_id()),
        "event_time": chrono::Utc::now().timestamp(),
        "authorizations": [{
            "enterprise_id": null,
            "team_id": TEAM_ID,
            "user_id": BOT_USER_ID,
            "is_bot": true,
            "is_enterprise_install": false,
        }],
        "is_ext_shared_channel": false,
        "event_context": format!("4-standin-{}", next_id()),
    })
}

const FORM: &str = "application/x-www-form-urlencoded";

fn form(fields: &[(&str, &str)]) -> String {
    // Encoding string pairs cannot fail.
    serde_urlencoded::to_string(fields).unwrap_or_default()
}

fn user(id: &str, name: &str) -> Value {
    json!({"id": id, "username": name, "name": name, "team_id": TEAM_ID})
}

fn next_id() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// Shaped like Slack's: `{n}.{team number}.{32 hex}`.
fn fresh_trigger_id() -> String {
    let n = next_id();
    let nanos = chrono::Utc::now().timestamp_nanos_opt().unwrap_or_default();
    let digest = Sha256::digest(format!("{n}:{nanos}").as_bytes());
    format!("{n}.47445629121.{}", &hex::encode(digest)[..32])
}

fn now_ts() -> String {
    let now = chrono::Utc::now();
    format!("{}.{:06}", now.timestamp(), now.timestamp_subsec_micros())
}

#[cfg(test)]
mod tests;
