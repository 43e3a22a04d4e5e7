//! [`SlackNotifier`]: the [`Notifier`] over slack-morphism's Web API client.
//!
//! Rate limits: Slack answers 429 with `Retry-After`; every call waits that long (capped by
//! [`RetryPolicy::max_wait`]) and tries again, up to [`RetryPolicy::max_attempts`] times, then
//! returns [`NotifyError::RateLimited`] so the caller can log it or retry later. Nothing is dropped
//! silently.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde_json::json;
use slack_morphism::errors::SlackClientError;
use slack_morphism::prelude::*;

use super::{Message, Notifier, NotifyError, Posted, Profile, View};
use crate::domain::SlackUserId;

/// How hard to try when Slack rate-limits a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all, the first included.
    pub max_attempts: u32,
    /// The longest single wait, whatever `Retry-After` says.
    pub max_wait: Duration,
    /// How long one attempt may take before it counts as Slack being unreachable.
    pub call_timeout: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy { max_attempts: 4, max_wait: Duration::from_secs(30), call_timeout: Duration::from_secs(10) }
    }
}

/// A Slack Web API client for `api_url` (`https://slack.com/api/`, or a stand-in's `http://`
/// URL). slack-morphism's default connector is https-only; this one also speaks plain http, for
/// the local stand-in.
pub fn slack_client(api_url: &str) -> SlackHyperClient {
    let connector = SlackClientHyperConnector::with_connector(https_or_http()).with_slack_api_url(api_url.trim_end_matches('/'));
    SlackClient::new(connector)
}

type Connector = hyper_rustls::HttpsConnector<hyper_util::client::legacy::connect::HttpConnector>;

fn https_or_http() -> Connector {
    let builder = match hyper_rustls::HttpsConnectorBuilder::new().with_native_roots() {
        Ok(builder) => builder,
        Err(err) => {
            tracing::warn!(error = %err, "no CA certificates found; only plain-http Slack URLs (the stand-in) will work");
            let empty = rustls::ClientConfig::builder().with_root_certificates(rustls::RootCertStore::empty()).with_no_client_auth();
            hyper_rustls::HttpsConnectorBuilder::new().with_tls_config(empty)
        }
    };
    builder.https_or_http().enable_http1().enable_http2().build()
}

/// The [`Notifier`] that talks to Slack.
#[derive(Clone)]
pub struct SlackNotifier {
    client: Arc<SlackHyperClient>,
    /// For the one call whose answer matters in its headers (`auth.test`'s granted scopes).
    api_url: Option<String>,
    token: SlackApiToken,
    retry: RetryPolicy,
}

impl SlackNotifier {
    /// A notifier calling `api_url` with the bot token `bot_token` (`xoxb-...`).
    pub fn new(api_url: &str, bot_token: &str) -> SlackNotifier {
        let mut notifier = SlackNotifier::with_client(Arc::new(slack_client(api_url)), bot_token);
        notifier.api_url = Some(api_url.trim_end_matches('/').to_string());
        notifier
    }

    /// A notifier sharing an existing client (Socket Mode hands one to its callbacks).
    pub fn with_client(client: Arc<SlackHyperClient>, bot_token: &str) -> SlackNotifier {
        let token = SlackApiToken::new(SlackApiTokenValue::new(bot_token.to_string()));
        SlackNotifier { client, api_url: None, token, retry: RetryPolicy::default() }
    }

    pub fn with_retry(mut self, retry: RetryPolicy) -> SlackNotifier {
        self.retry = retry;
        self
    }

    /// `powerpole doctor`: the bot token works (`auth.test`); returns who the bot is.
    pub async fn whoami(&self) -> Result<String, NotifyError> {
        let session = self.client.open_session(&self.token);
        let me = self.retrying("auth.test", || session.auth_test()).await?;
        Ok(format!("bot {} ({}) in workspace {} ({})", me.user.as_deref().unwrap_or("?"), me.user_id, me.team, me.team_id))
    }

    /// `powerpole doctor`: the bot scopes Slack granted this token, from `auth.test`'s
    /// `x-oauth-scopes` header (slack-morphism does not expose headers, so this one call is made
    /// directly; the token goes in the Authorization header and nothing of the answer is logged).
    pub async fn granted_scopes(&self) -> Result<Vec<String>, NotifyError> {
        const METHOD: &str = "auth.test";
        let unreachable = |reason: String| NotifyError::Unreachable { method: METHOD, reason };
        let api_url = self.api_url.as_deref().ok_or_else(|| unreachable("no API URL is known for this notifier".into()))?;
        let request = axum::http::Request::post(format!("{api_url}/{METHOD}"))
            .header("authorization", format!("Bearer {}", self.token.token_value.0))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(String::new())
            .map_err(|_| unreachable("the API URL is not a URL".into()))?;
        let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new()).build::<_, String>(https_or_http());
        let answer = client.request(request).await.map_err(|e| unreachable(e.to_string()))?;
        if !answer.status().is_success() {
            return Err(unreachable(format!("HTTP {}", answer.status())));
        }
        let header = answer.headers().get("x-oauth-scopes").ok_or_else(|| unreachable("Slack did not say which scopes the token has (no x-oauth-scopes header); is this a bot token (xoxb-)?".into()))?;
        let text = header.to_str().map_err(|_| unreachable("the x-oauth-scopes header is not text".into()))?;
        Ok(text.split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_string).collect())
    }

    /// `powerpole doctor`: whether the bot is a member of `channel` (`conversations.info`).
    pub async fn in_channel(&self, channel: &str) -> Result<bool, NotifyError> {
        let request = SlackApiConversationsInfoRequest::new(channel.into());
        let session = self.client.open_session(&self.token);
        let found = self.retrying("conversations.info", || session.conversations_info(&request)).await?;
        Ok(found.channel.flags.is_member == Some(true))
    }

    pub fn client(&self) -> Arc<SlackHyperClient> {
        self.client.clone()
    }

    /// Runs `call` until it is not rate-limited, within the retry policy.
    async fn retrying<T, Fut>(&self, method: &'static str, call: impl Fn() -> Fut) -> Result<T, NotifyError>
    where
        Fut: Future<Output = ClientResult<T>>,
    {
        let mut attempts = 0;
        loop {
            attempts += 1;
            let answer = match tokio::time::timeout(self.retry.call_timeout, call()).await {
                Ok(answer) => answer,
                Err(_) => return Err(NotifyError::Unreachable { method, reason: format!("no answer within {:?}", self.retry.call_timeout) }),
            };
            match answer {
                Ok(value) => return Ok(value),
                Err(SlackClientError::RateLimitError(limit)) => {
                    crate::metrics::slack_rate_limited(method);
                    let wait = limit.retry_after.unwrap_or(Duration::from_secs(1));
                    if attempts >= self.retry.max_attempts {
                        crate::metrics::slack_api_error(method);
                        return Err(NotifyError::RateLimited { method, attempts, retry_after_secs: wait.as_secs() });
                    }
                    let wait = wait.min(self.retry.max_wait);
                    tracing::warn!(method, attempt = attempts, wait_secs = wait.as_secs_f64(), "Slack rate-limited the call; waiting as asked");
                    tokio::time::sleep(wait).await;
                }
                Err(other) => {
                    crate::metrics::slack_api_error(method);
                    return Err(describe(method, other));
                }
            }
        }
    }
}

/// Turns a client error into a [`NotifyError`] without any response body (which can echo a
/// message, and so a password).
fn describe(method: &'static str, err: SlackClientError) -> NotifyError {
    match err {
        SlackClientError::ApiError(api) => NotifyError::Refused { method, code: api.code },
        SlackClientError::HttpError(http) => NotifyError::Unreachable { method, reason: format!("HTTP {}", http.status_code) },
        SlackClientError::HttpProtocolError(e) => NotifyError::Unreachable {
            method,
            reason: e.cause.map(|c| c.to_string()).unwrap_or_else(|| "connection failed".into()),
        },
        SlackClientError::RateLimitError(_) => NotifyError::RateLimited { method, attempts: 1, retry_after_secs: 0 },
        SlackClientError::ProtocolError(_) | SlackClientError::EndOfStream(_) => {
            NotifyError::Unreachable { method, reason: "the answer was not what the Web API sends".into() }
        }
        SlackClientError::SocketModeProtocolError(_) | SlackClientError::SystemError(_) => {
            NotifyError::Unreachable { method, reason: "the Slack client failed".into() }
        }
    }
}

/// Messages read in one `conversations.history` call: a session's DMs are a handful, posted
/// within its window (`oldest`); the person's own messages in the DM count too.
const HISTORY_PAGE: u16 = 200;

fn content(message: &Message) -> Result<SlackMessageContent, NotifyError> {
    let blocks: Vec<SlackBlock> = serde_json::from_value(json!(message.blocks))
        .map_err(|e| NotifyError::Malformed { what: "message", reason: e.to_string() })?;
    Ok(SlackMessageContent::new().with_text(message.text.clone()).with_blocks(blocks))
}

#[async_trait]
impl Notifier for SlackNotifier {
    async fn post(&self, channel: &str, message: &Message) -> Result<Posted, NotifyError> {
        let mut request = SlackApiChatPostMessageRequest::new(channel.into(), content(message)?);
        request.thread_ts = message.thread_ts.as_deref().map(Into::into);
        let session = self.client.open_session(&self.token);
        let posted = self.retrying("chat.postMessage", || session.chat_post_message(&request)).await?;
        Ok(Posted { channel: posted.channel.to_string(), ts: posted.ts.to_string() })
    }

    async fn update(&self, at: &Posted, message: &Message) -> Result<(), NotifyError> {
        let request = SlackApiChatUpdateRequest::new(at.channel.as_str().into(), content(message)?, at.ts.as_str().into());
        let session = self.client.open_session(&self.token);
        self.retrying("chat.update", || session.chat_update(&request)).await.map(|_| ())
    }

    async fn dm(&self, user: &SlackUserId, message: &Message) -> Result<Posted, NotifyError> {
        // Posting to a user id lands in the app's DM with that user.
        self.post(user.as_str(), message).await
    }

    async fn find_dms(&self, user: &SlackUserId, since: Option<chrono::DateTime<chrono::Utc>>, containing: &str) -> Result<Vec<Posted>, NotifyError> {
        let session = self.client.open_session(&self.token);
        let open = SlackApiConversationsOpenRequest::new().with_users(vec![user.as_str().into()]);
        let channel = self.retrying("conversations.open", || session.conversations_open(&open)).await?.channel.id;
        let mut history = SlackApiConversationsHistoryRequest::new().with_channel(channel.clone()).with_limit(HISTORY_PAGE);
        // Slack's `oldest` is a message timestamp: seconds, then microseconds.
        history.oldest = since.map(|t| format!("{}.{:06}", t.timestamp(), t.timestamp_subsec_micros()).into());
        let page = self.retrying("conversations.history", || session.conversations_history(&history)).await?;
        Ok(page
            .messages
            .into_iter()
            .filter(|m| m.sender.bot_id.is_some() && m.content.text.as_deref().is_some_and(|t| t.contains(containing)))
            .map(|m| Posted { channel: channel.to_string(), ts: m.origin.ts.to_string() })
            .collect())
    }

    async fn delete(&self, at: &Posted) -> Result<(), NotifyError> {
        let request = SlackApiChatDeleteRequest::new(at.channel.as_str().into(), at.ts.as_str().into());
        let session = self.client.open_session(&self.token);
        match self.retrying("chat.delete", || session.chat_delete(&request)).await {
            Ok(_) => Ok(()),
            Err(NotifyError::Refused { code, .. }) if code == "message_not_found" => Ok(()),
            Err(e) => Err(e),
        }
    }

    async fn respond(&self, response_url: &str, message: &Message) -> Result<(), NotifyError> {
        let url: url::Url = response_url
            .parse()
            .map_err(|_| NotifyError::Unreachable { method: "response_url", reason: "the response_url is not a URL".into() })?;
        let body = json!({
            "response_type": "ephemeral",
            "replace_original": false,
            "text": message.text,
            "blocks": message.blocks,
        });
        // A response_url needs no token, so none is sent (and the URL is not logged).
        let span = tracing::debug_span!("slack_response_url");
        let connector = self.client.http_api.connector.clone();
        self.retrying("response_url", || {
            let context = SlackClientApiCallContext { rate_control_params: None, token: None, tracing_span: &span, is_sensitive_url: true };
            let connector = connector.clone();
            let url = url.clone();
            let body = &body;
            async move { connector.http_post_uri::<_, SlackApiPostWebhookMessageResponse>(url, body, context).await }
        })
        .await
        .map(|_| ())
    }

    async fn open_view(&self, trigger_id: &str, view: &View) -> Result<(), NotifyError> {
        let view: SlackView = serde_json::from_value(view.0.clone()).map_err(|e| NotifyError::Malformed { what: "modal", reason: e.to_string() })?;
        let request = SlackApiViewsOpenRequest::new(trigger_id.into(), view);
        let session = self.client.open_session(&self.token);
        self.retrying("views.open", || session.views_open(&request)).await.map(|_| ())
    }

    async fn publish_view(&self, user: &SlackUserId, view: &View) -> Result<(), NotifyError> {
        let view: SlackView = serde_json::from_value(view.0.clone()).map_err(|e| NotifyError::Malformed { what: "home view", reason: e.to_string() })?;
        let request = SlackApiViewsPublishRequest::new(user.as_str().into(), view);
        let session = self.client.open_session(&self.token);
        self.retrying("views.publish", || session.views_publish(&request)).await.map(|_| ())
    }

    async fn profile(&self, user: &SlackUserId) -> Result<Profile, NotifyError> {
        let request = SlackApiUsersInfoRequest::new(user.as_str().into());
        let session = self.client.open_session(&self.token);
        let found = self.retrying("users.info", || session.users_info(&request)).await?;
        Ok(Profile {
            email: found.user.profile.and_then(|p| p.email).map(|e| e.0),
            tz: found.user.tz,
        })
    }

    async fn group_members(&self, group: &str) -> Result<Vec<SlackUserId>, NotifyError> {
        let request = SlackApiUserGroupsUsersListRequest::new(group.into());
        let session = self.client.open_session(&self.token);
        let found = self.retrying("usergroups.users.list", || session.usergroups_users_list(&request)).await?;
        Ok(found.users.iter().filter_map(|u| SlackUserId::parse(u.as_ref()).ok()).collect())
    }
}
