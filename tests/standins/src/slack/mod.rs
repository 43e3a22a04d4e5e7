//! A recording stand-in of the Slack Web API, for the product's outbound Slack calls.
//!
//! The product's Slack client (slack-morphism, configured with
//! `with_slack_api_url(standin.api_url())`) calls `{api_url}/{method}` here instead of
//! `https://slack.com/api/{method}`. The stand-in answers the methods powerpole uses with the same
//! JSON shapes Slack returns (`"ok": true` plus the method's fields, or HTTP 200 with
//! `"ok": false, "error": "..."`), and records every call so tests and the demo can assert on what
//! was sent and what a human would have read (see [`text_of`]).
//!
//! What it serves:
//! - `GET|POST /api/{method}`: JSON bodies, form bodies and query strings, authorised by
//!   `Authorization: Bearer xoxb-...` (or a `token` parameter, as Slack also allows).
//! - `POST /response/{id}`: a `response_url` target (see [`SlackStandin::response_url`]).
//! - `/_standin/...`: a small control surface for the demo, which runs the stand-in in another
//!   process: `GET /_standin/calls`, `POST /_standin/users`, `POST /_standin/groups`,
//!   `POST /_standin/clear`. Not part of Slack.
//!
//! How it differs from Slack, on purpose:
//! - one workspace ([`TEAM_ID`]), one bot ([`BOT_USER_ID`]); any token starting with `xoxb-` is
//!   that bot, with every scope. A missing token answers `not_authed`, any other token
//!   `invalid_auth`, as Slack does.
//! - users and user groups exist only once a test adds them ([`SlackStandin::add_user`],
//!   [`SlackStandin::add_group`]); channels always exist; nobody needs to be a member of anything.
//! - rate limits happen only when a test asks for them ([`SlackStandin::rate_limit_next`]).
//! - `trigger_id`s are never checked for expiry, `response_url`s never expire or run out, and
//!   multipart bodies (file uploads) are not understood (`invalid_form_data`).
//! - `users.info` gives `tz_label` as the zone's abbreviation (`CET`), not Slack's long name.
//! - a message posted to a user id (`U...`) lands in the DM channel `D{user id}`, the same id
//!   `conversations.open` gives; `chat.update`/`chat.delete` accept either id for it.
//! - `conversations.history` lists the bot's messages only (nobody else posts here), without
//!   cursor paging.

mod api;
mod render;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use tokio::sync::watch;

use crate::http_util::{any_loopback_port, Server};
use crate::StartError;

pub use render::{render_message, text_of};

/// The stand-in workspace's id.
pub const TEAM_ID: &str = "T0STANDIN";
/// The stand-in workspace's domain (`{domain}.slack.com`).
pub const TEAM_DOMAIN: &str = "powerpole-standin";
/// The stand-in workspace's name.
pub const TEAM_NAME: &str = "Powerpole Stand-in";
/// The app id on every payload the [`crate::driver`] sends and every message the bot posts.
pub const API_APP_ID: &str = "A0POWERPOLE";
/// The bot user behind every `xoxb-` token.
pub const BOT_USER_ID: &str = "U0POWERBOT";
/// The bot id behind every `xoxb-` token.
pub const BOT_ID: &str = "B0POWERBOT";
/// The pseudo method name under which posts to a `response_url` are recorded.
pub const RESPONSE_URL_METHOD: &str = "response_url";
/// The bot scopes `auth.test` reports in `x-oauth-scopes` until [`SlackStandin::grant_scopes`]:
/// every bot scope a Slack app like powerpole could ask for, so a test that does not care about
/// scopes never trips on them.
pub const DEFAULT_GRANTED_SCOPES: &[&str] = &[
    "app_mentions:read",
    "channels:history",
    "channels:read",
    "chat:write",
    "commands",
    "groups:read",
    "im:history",
    "im:read",
    "im:write",
    "mpim:read",
    "usergroups:read",
    "users:read",
    "users:read.email",
];

/// One request the stand-in received, and what it answered.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RecordedCall {
    /// The Web API method (`chat.postMessage`), or [`RESPONSE_URL_METHOD`].
    pub method: String,
    /// The parameters as a JSON object: the JSON body as sent, or form / query fields as strings.
    /// Form fields that hold JSON (`blocks`, `view`, `attachments`) stay strings, as Slack receives
    /// them; [`RecordedCall::param_json`] parses them.
    pub params: Value,
    /// When the stand-in received the request.
    pub received_at: DateTime<Utc>,
    /// The JSON body the stand-in answered with.
    pub response: Value,
    /// Whether this call was answered with HTTP 429 by [`SlackStandin::rate_limit_next`].
    pub rate_limited: bool,
    /// For [`RESPONSE_URL_METHOD`] calls: the `{id}` of `/response/{id}`.
    pub response_url_id: Option<String>,
}

impl RecordedCall {
    /// Whether the stand-in answered `"ok": true`.
    pub fn ok(&self) -> bool {
        self.response.get("ok").and_then(Value::as_bool) == Some(true)
    }

    /// The Slack error code the stand-in answered with, if any (`"user_not_found"`).
    pub fn error(&self) -> Option<&str> {
        self.response.get("error").and_then(Value::as_str)
    }

    /// A parameter as a string, if it was sent as one.
    pub fn param_str(&self, name: &str) -> Option<&str> {
        self.params.get(name).and_then(Value::as_str)
    }

    /// A parameter as JSON: parsed if it was sent as a JSON string (form-encoded `blocks`),
    /// as-is otherwise. `None` if absent or not valid JSON.
    pub fn param_json(&self, name: &str) -> Option<Value> {
        match self.params.get(name)? {
            Value::String(text) => serde_json::from_str(text).ok(),
            other => Some(other.clone()),
        }
    }

    /// The Block Kit blocks of a message call, parsed; empty if there are none.
    pub fn blocks(&self) -> Vec<Value> {
        match self.param_json("blocks") {
            Some(Value::Array(blocks)) => blocks,
            _ => Vec::new(),
        }
    }

    /// What a human would read in this call's message or view: see [`text_of`].
    pub fn text(&self) -> String {
        text_of(self)
    }
}

/// A wait on the recording ended before the expected calls arrived.
#[derive(Debug, thiserror::Error)]
#[error("waited {timeout:?} for {expected}; the stand-in saw {seen:?}")]
pub struct WaitError {
    /// What was waited for, in words.
    pub expected: String,
    /// How long it waited.
    pub timeout: Duration,
    /// The methods of every call recorded when the wait gave up, in order.
    pub seen: Vec<String>,
}

/// A user in the stand-in's directory.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DirectoryUser {
    pub id: String,
    pub email: String,
    /// An IANA time zone name, such as `Europe/Berlin`.
    pub tz: String,
}

/// A time zone that `add_user` could not take.
#[derive(Debug, thiserror::Error)]
#[error("`{0}` is not an IANA time zone name (such as Europe/Berlin)")]
pub struct UnknownTimeZone(pub String);

/// A running Slack Web API stand-in. Clones share the same server and recording; the server
/// stops when the last clone is dropped.
#[derive(Clone)]
pub struct SlackStandin {
    shared: Arc<Shared>,
    base_url: String,
    _server: Arc<Server>,
}

struct Shared {
    world: Mutex<api::World>,
    calls: Mutex<Vec<RecordedCall>>,
    /// Bumped after every recorded call; waiters watch it instead of polling.
    recorded: watch::Sender<u64>,
    /// While true, posts to response URLs wait (see [`SlackStandin::hold_responses`]).
    held: watch::Sender<bool>,
}

impl std::fmt::Debug for SlackStandin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SlackStandin")
            .field("base_url", &self.base_url)
            .finish_non_exhaustive()
    }
}

impl SlackStandin {
    /// Starts the stand-in on a free loopback port.
    ///
    /// # Panics
    /// If the machine cannot listen on loopback at all.
    pub async fn start() -> Self {
        match Self::start_on(any_loopback_port()).await {
            Ok(standin) => standin,
            Err(err) => panic!("the Slack stand-in could not start: {err}"),
        }
    }

    /// Starts the stand-in on `addr` (port 0 picks a free port).
    pub async fn start_on(addr: std::net::SocketAddr) -> Result<Self, StartError> {
        let (recorded, _) = watch::channel(0);
        let (held, _) = watch::channel(false);
        let shared = Arc::new(Shared {
            world: Mutex::new(api::World::default()),
            calls: Mutex::new(Vec::new()),
            recorded,
            held,
        });
        let server = Server::start(addr, |_| router(shared.clone())).await?;
        Ok(Self {
            base_url: format!("http://{}", server.addr),
            shared,
            _server: Arc::new(server),
        })
    }

    /// `http://127.0.0.1:PORT`, the root of everything this stand-in serves.
    pub fn base_url(&self) -> String {
        self.base_url.clone()
    }

    /// `http://127.0.0.1:PORT/api`: give this to slack-morphism's `with_slack_api_url`.
    pub fn api_url(&self) -> String {
        format!("{}/api", self.base_url)
    }

    /// A `response_url` that records what is posted to it under `id`.
    pub fn response_url(&self, id: &str) -> String {
        format!("{}/response/{id}", self.base_url)
    }

    /// Adds (or replaces) a user for `users.info` and `users.lookupByEmail`.
    ///
    /// # Panics
    /// If `tz` is not an IANA time zone name: that is a mistake in the test, not a situation to
    /// simulate. [`SlackStandin::try_add_user`] returns the error instead.
    pub fn add_user(&self, id: &str, email: &str, tz: &str) {
        if let Err(err) = self.try_add_user(id, email, tz) {
            panic!("add_user({id}): {err}");
        }
    }

    /// Adds (or replaces) a user; fails if `tz` is not an IANA time zone name.
    pub fn try_add_user(&self, id: &str, email: &str, tz: &str) -> Result<(), UnknownTimeZone> {
        self.shared.world().add_user(DirectoryUser {
            id: id.to_owned(),
            email: email.to_owned(),
            tz: tz.to_owned(),
        })
    }

    /// Adds (or replaces) a user group for `usergroups.users.list`.
    pub fn add_group(&self, id: &str, members: &[&str]) {
        let members = members.iter().map(|m| (*m).to_owned()).collect();
        self.shared.world().groups.insert(id.to_owned(), members);
    }

    /// From now on, `auth.test` reports exactly `scopes` in its `x-oauth-scopes` header, as Slack
    /// does for a token installed with those scopes (default: [`DEFAULT_GRANTED_SCOPES`]).
    pub fn grant_scopes(&self, scopes: &[&str]) {
        self.shared.world().granted_scopes = Some(scopes.iter().map(|s| (*s).to_owned()).collect());
    }

    /// Takes the bot out of `channel` (or puts it back): `conversations.info` then answers
    /// `is_member: false` and `chat.postMessage` there fails with `not_in_channel`, as in Slack
    /// before someone invites the bot. Channels are otherwise ones the bot is in.
    pub fn set_bot_member(&self, channel: &str, member: bool) {
        let mut world = self.shared.world();
        if member {
            world.outside.remove(channel);
        } else {
            world.outside.insert(channel.to_owned());
        }
    }

    /// Makes the next `n` calls of `method` answer HTTP 429 with `Retry-After: retry_after_secs`
    /// and `{"ok": false, "error": "ratelimited"}`, as Slack does; they are recorded with
    /// `rate_limited: true`. Calls after those are answered normally.
    pub fn rate_limit_next(&self, method: &str, n: u32, retry_after_secs: u64) {
        self.shared
            .world()
            .rate_limits
            .insert(method.to_owned(), (n, retry_after_secs));
    }

    /// Makes posts to response URLs wait, unanswered and unrecorded, until
    /// [`SlackStandin::release_responses`]: a Slack that is slow to take answers, so a test can
    /// keep the product's follow-ups running for as long as it needs.
    pub fn hold_responses(&self) {
        self.shared.held.send_replace(true);
    }

    /// Lets held (and later) posts to response URLs through; they are then recorded as usual.
    pub fn release_responses(&self) {
        self.shared.held.send_replace(false);
    }

    /// Every call recorded since the start or the last [`SlackStandin::clear`], in arrival order.
    pub fn calls(&self) -> Vec<RecordedCall> {
        self.shared.calls().clone()
    }

    /// The recorded calls of one method, in arrival order.
    pub fn calls_to(&self, method: &str) -> Vec<RecordedCall> {
        self.shared
            .calls()
            .iter()
            .filter(|call| call.method == method)
            .cloned()
            .collect()
    }

    /// The recorded posts to `response_url(id)`, in arrival order.
    pub fn responses_to(&self, id: &str) -> Vec<RecordedCall> {
        self.shared
            .calls()
            .iter()
            .filter(|call| call.response_url_id.as_deref() == Some(id))
            .cloned()
            .collect()
    }

    /// Forgets the recorded calls (users, groups, messages and views stay).
    pub fn clear(&self) {
        self.shared.calls().clear();
    }

    /// Waits until at least `count` calls of `method` are recorded, and returns all of them.
    pub async fn wait_for(
        &self,
        method: &str,
        count: usize,
        timeout: Duration,
    ) -> Result<Vec<RecordedCall>, WaitError> {
        let expected = format!("{count} call(s) to {method}");
        let calls = self
            .wait_until(&expected, timeout, |calls| {
                calls.iter().filter(|c| c.method == method).count() >= count
            })
            .await?;
        Ok(calls.into_iter().filter(|c| c.method == method).collect())
    }

    /// Waits until `done` holds for the recorded calls, and returns them all. `expected` says in
    /// words what is awaited, for the error message.
    pub async fn wait_until(
        &self,
        expected: &str,
        timeout: Duration,
        done: impl Fn(&[RecordedCall]) -> bool,
    ) -> Result<Vec<RecordedCall>, WaitError> {
        // Subscribe before looking, so a call recorded in between still wakes us.
        let mut recorded = self.shared.recorded.subscribe();
        let wait = async {
            loop {
                let calls = self.calls();
                if done(&calls) {
                    return calls;
                }
                // The sender lives as long as `self`, so this only fails if it is gone: stop
                // waiting then and let the timeout report.
                if recorded.changed().await.is_err() {
                    std::future::pending::<()>().await;
                }
            }
        };
        tokio::time::timeout(timeout, wait)
            .await
            .map_err(|_| WaitError {
                expected: expected.to_owned(),
                timeout,
                seen: self.calls().into_iter().map(|c| c.method).collect(),
            })
    }

    /// The current text and blocks of a message the bot posted, as the stand-in keeps it after
    /// updates; `None` once deleted or if never posted.
    pub fn message(&self, channel: &str, ts: &str) -> Option<Value> {
        self.shared.world().message(channel, ts)
    }
}

impl Shared {
    fn world(&self) -> MutexGuard<'_, api::World> {
        lock(&self.world)
    }

    fn calls(&self) -> MutexGuard<'_, Vec<RecordedCall>> {
        lock(&self.calls)
    }

    fn record(&self, call: RecordedCall) {
        self.calls().push(call);
        self.recorded.send_modify(|n| *n += 1);
    }
}

/// A panicking test thread must not take every later assertion down with it.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/api/{method}", any(web_api))
        .route("/response/{id}", post(response_url))
        .route("/_standin/calls", get(control_calls))
        .route("/_standin/users", post(control_add_user))
        .route("/_standin/groups", post(control_add_group))
        .route("/_standin/clear", post(control_clear))
        .with_state(shared)
}

async fn web_api(
    State(shared): State<Arc<Shared>>,
    Path(method): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let received_at = Utc::now();
    let (params, parse_error) = match api::parse_params(query.as_deref(), &headers, &body) {
        Ok(params) => (params, None),
        Err((raw, code)) => (raw, Some(code)),
    };
    let mut call = RecordedCall {
        method: method.clone(),
        params: Value::Object(params.clone()),
        received_at,
        response: Value::Null,
        rate_limited: false,
        response_url_id: None,
    };
    let retry_after = shared.world().take_rate_limit(&method);
    if let Some(retry_after) = retry_after {
        call.response = json!({"ok": false, "error": "ratelimited"});
        call.rate_limited = true;
        shared.record(call.clone());
        let mut response = (StatusCode::TOO_MANY_REQUESTS, Json(call.response)).into_response();
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(retry_after));
        return response;
    }
    let answer = match (parse_error, api::authorise(&headers, &params)) {
        (_, Err(code)) | (Some(code), Ok(())) => Err(code),
        (None, Ok(())) => shared.world().answer(&method, &params),
    };
    call.response = match answer {
        Ok(mut fields) => {
            fields.insert("ok".to_owned(), Value::Bool(true));
            Value::Object(fields)
        }
        Err(code) => json!({"ok": false, "error": code}),
    };
    shared.record(call.clone());
    let mut response = Json(call.response).into_response();
    if method == "auth.test" {
        // Slack reports the token's scopes on every Web API answer; auth.test is where apps look.
        let scopes = shared.world().granted_scopes();
        if let Ok(value) = HeaderValue::from_str(&scopes.join(",")) {
            response.headers_mut().insert("x-oauth-scopes", value);
        }
    }
    response
}

async fn response_url(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let mut held = shared.held.subscribe();
    // The sender lives in `shared`, so waiting cannot fail while this handler runs.
    let _ = held.wait_for(|held| !*held).await;
    let parsed = serde_json::from_slice::<Value>(&body);
    let (params, status, response) = match parsed {
        Ok(value @ Value::Object(_)) => (value, StatusCode::OK, json!({"ok": true})),
        _ => (
            Value::String(String::from_utf8_lossy(&body).into_owned()),
            StatusCode::BAD_REQUEST,
            json!({"ok": false, "error": "invalid_payload"}),
        ),
    };
    shared.record(RecordedCall {
        method: RESPONSE_URL_METHOD.to_owned(),
        params,
        received_at: Utc::now(),
        response: response.clone(),
        rate_limited: false,
        response_url_id: Some(id),
    });
    (status, Json(response)).into_response()
}

/// A recorded call with what a human would read, for the demo's timeline.
#[derive(Serialize)]
struct TimelineEntry {
    #[serde(flatten)]
    call: RecordedCall,
    text: String,
}

async fn control_calls(State(shared): State<Arc<Shared>>) -> Json<Vec<TimelineEntry>> {
    let calls = shared.calls().clone();
    Json(
        calls
            .into_iter()
            .map(|call| TimelineEntry {
                text: text_of(&call),
                call,
            })
            .collect(),
    )
}

async fn control_add_user(
    State(shared): State<Arc<Shared>>,
    Json(user): Json<DirectoryUser>,
) -> Response {
    match shared.world().add_user(user) {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(err) => (StatusCode::BAD_REQUEST, err.to_string()).into_response(),
    }
}

#[derive(Deserialize)]
struct GroupBody {
    id: String,
    members: Vec<String>,
}

async fn control_add_group(
    State(shared): State<Arc<Shared>>,
    Json(group): Json<GroupBody>,
) -> StatusCode {
    shared.world().groups.insert(group.id, group.members);
    StatusCode::NO_CONTENT
}

async fn control_clear(State(shared): State<Arc<Shared>>) -> StatusCode {
    shared.calls().clear();
    StatusCode::NO_CONTENT
}

/// Parameters as a JSON object; used by [`api`] and by tests.
pub(crate) type Params = Map<String, Value>;

/// Rate limits still to hand out: method -> (calls left, Retry-After seconds).
pub(crate) type RateLimits = HashMap<String, (u32, u64)>;

#[cfg(test)]
mod tests;
