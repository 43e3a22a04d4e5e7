//! The HTTP transport: an axum router over [`SlackApp`]. Every POST is verified before it is
//! parsed; a request that fails is answered 401 with no side effect and logged with the reason
//! and its request id (never the secret, the signature or the body).

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use slack_morphism::prelude::{SlackInteractionEvent, SlackPushEvent};
use tracing::Instrument;

use super::verify::{SIGNATURE_HEADER, TIMESTAMP_HEADER};
use super::{events, pool, RequestId, SlackApp};

/// The headers every request reads and every answer carries, as names made once (a `&str` name is
/// parsed again on each lookup).
const TIMESTAMP: HeaderName = HeaderName::from_static(TIMESTAMP_HEADER);
const SIGNATURE: HeaderName = HeaderName::from_static(SIGNATURE_HEADER);
const RETRY: HeaderName = HeaderName::from_static(RETRY_HEADER);
const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Slack's payloads are small; anything larger is not from Slack (answered 413 by [`read_body`]).
const MAX_BODY: usize = 256 * 1024;

/// `serve`'s routes: the Slack routes of [`slack_router`], plus `GET /healthz` (the process
/// answers) and `GET /readyz` (its dependencies: the sweeper's last tick, the store).
pub fn router(app: Arc<SlackApp>) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .with_state(app.clone())
        .merge(slack_router(app))
}

/// Only what Slack calls: `POST /slack/commands`, `/slack/interactions`, `/slack/events`. The
/// Lambda function URL serves this one (`slack::deferred`): it is public, so it has no health
/// routes (a `/readyz` there would be a store read per hit from anyone, and its error text would
/// name the account, the role and the table); anything else is a bare 404.
pub fn slack_router(app: Arc<SlackApp>) -> Router {
    Router::new()
        .route("/slack/commands", post(commands))
        .route("/slack/interactions", post(interactions))
        .route("/slack/events", post(events_route))
        .with_state(app)
}

async fn healthz() -> &'static str {
    "ok"
}

/// 200 when every dependency is ready, else 503; the body says which is not and why.
async fn readyz(State(app): State<Arc<SlackApp>>) -> Response {
    let report = app.readiness.report(app.workflow.store.as_ref()).await;
    let status = if report.ready { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    (status, Json(report)).into_response()
}

/// Checks the signature; on failure, the 401 to answer.
fn check(app: &SlackApp, headers: &HeaderMap, body: &[u8]) -> Result<(), Box<Response>> {
    let header = |name: HeaderName| headers.get(name).and_then(|v| v.to_str().ok());
    // Slack's replay window is about real time: the wall clock, not the workflow's clock (which
    // tests move to deadlines).
    let now = chrono::Utc::now().timestamp();
    app.signing_key.verify(header(TIMESTAMP), header(SIGNATURE), body, now).map_err(|reason| {
        tracing::warn!(%reason, "refused a request that is not signed by Slack");
        Box::new((StatusCode::UNAUTHORIZED, "the request is not signed by Slack").into_response())
    })
}

fn bad_request(what: &'static str) -> Response {
    tracing::warn!(what, "a signed request did not have the expected shape");
    (StatusCode::BAD_REQUEST, what).into_response()
}

fn with_id(mut response: Response, id: &RequestId) -> Response {
    if let Ok(v) = HeaderValue::from_str(id.as_str()) {
        response.headers_mut().insert(REQUEST_ID, v);
    }
    response
}

fn json_or_empty(body: Option<serde_json::Value>) -> Response {
    match body {
        Some(b) => Json(b).into_response(),
        None => StatusCode::OK.into_response(),
    }
}

/// The three endpoints Slack posts to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Endpoint {
    Commands,
    Interactions,
    Events,
}

impl Endpoint {
    /// The name in log lines (`Commands`, as its `Debug` form).
    pub fn name(self) -> &'static str {
        match self {
            Endpoint::Commands => "Commands",
            Endpoint::Interactions => "Interactions",
            Endpoint::Events => "Events",
        }
    }

    /// The endpoint served at `path` (`/slack/commands`, ...).
    pub fn at(path: &str) -> Option<Endpoint> {
        match path {
            "/slack/commands" => Some(Endpoint::Commands),
            "/slack/interactions" => Some(Endpoint::Interactions),
            "/slack/events" => Some(Endpoint::Events),
            _ => None,
        }
    }
}

/// The Slack endpoint `request` is a POST to, if it is one. `serve`'s gate answers these with
/// [`read_and_verify`] directly, without the router's matching, the extensions it adds and its
/// boxed handler; any other request goes to the router.
pub(crate) fn slack_endpoint(request: &Request) -> Option<Endpoint> {
    (request.method() == Method::POST).then(|| Endpoint::at(request.uri().path())).flatten()
}

async fn commands(State(app): State<Arc<SlackApp>>, request: Request) -> Response {
    read_and_verify(&app, Endpoint::Commands, request).await
}

async fn interactions(State(app): State<Arc<SlackApp>>, request: Request) -> Response {
    read_and_verify(&app, Endpoint::Interactions, request).await
}

async fn events_route(State(app): State<Arc<SlackApp>>, request: Request) -> Response {
    read_and_verify(&app, Endpoint::Events, request).await
}

/// Reads the body (at most [`MAX_BODY`]) and keeps the request's own headers (the `HeaderMap`
/// extractor would copy them, on the path every acknowledgement takes).
pub(crate) async fn read_and_verify(app: &Arc<SlackApp>, endpoint: Endpoint, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    match read_body(body).await {
        Ok(body) => verified(app, endpoint, &parts.headers, &body).await,
        Err(too_large) => too_large,
    }
}

/// The body of a request from Slack, or the 413 for one larger than any Slack sends.
pub(crate) async fn read_body(body: axum::body::Body) -> Result<Bytes, Response> {
    axum::body::to_bytes(body, MAX_BODY).await.map_err(|_| (StatusCode::PAYLOAD_TOO_LARGE, "the body is larger than any Slack request").into_response())
}

/// Checks the signature, then answers; every answer carries the request id, and each request
/// is one log line at `[server] request_log` (warnings about it come on top).
async fn verified(app: &Arc<SlackApp>, endpoint: Endpoint, headers: &HeaderMap, body: &Bytes) -> Response {
    let started = std::time::Instant::now();
    let id = RequestId::new();
    let span = match endpoint {
        Endpoint::Commands => tracing::info_span!("slack_command", request_id = id.as_str()),
        Endpoint::Interactions => tracing::info_span!("slack_interaction", request_id = id.as_str()),
        Endpoint::Events => tracing::info_span!("slack_event", request_id = id.as_str()),
    };
    let response = async {
        if let Err(refused) = check(app, headers, body) {
            return *refused;
        }
        let response = answer(app, endpoint, headers, body, &id);
        if app.follow_ups.awaits_journal(&id) {
            // `serve`: the follow-up is durable before Slack hears "200" (`slack::journal`).
            app.follow_ups.journal(&id, as_deferred(endpoint, headers, body, &id)).await;
        }
        response
    }
    .instrument(span)
    .await;
    log_request(app.workflow.config.server.request_log, endpoint, response.status(), &id, started.elapsed());
    with_id(response, &id)
}

/// The verified request as the journal keeps it (what Slack signed and its signature).
fn as_deferred(endpoint: Endpoint, headers: &HeaderMap, body: &Bytes, id: &RequestId) -> Option<super::deferred::Deferred> {
    let header = |name: HeaderName| headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_string);
    Some(super::deferred::Deferred {
        endpoint,
        request_id: id.to_string(),
        timestamp: header(TIMESTAMP)?,
        signature: header(SIGNATURE)?,
        retry_num: header(RETRY).and_then(|n| n.parse().ok()),
        body: String::from_utf8(body.to_vec()).ok()?,
    })
}

/// The one line per request, at the level operators chose (tracing's levels are constants).
fn log_request(level: Option<tracing::Level>, endpoint: Endpoint, status: StatusCode, id: &RequestId, took: std::time::Duration) {
    use tracing::Level;
    macro_rules! line {
        ($level:expr) => {
            tracing::event!($level, request_id = id.as_str(), endpoint = endpoint.name(), status = status.as_u16(), micros = took.as_micros() as u64, "slack request")
        };
    }
    match level {
        Some(Level::ERROR) => line!(Level::ERROR),
        Some(Level::WARN) => line!(Level::WARN),
        Some(Level::INFO) => line!(Level::INFO),
        Some(Level::DEBUG) => line!(Level::DEBUG),
        Some(_) => line!(Level::TRACE),
        None => {}
    }
}

/// Parses a verified request and answers it, leaving its follow-up to `app.follow_ups`. Also
/// what a deferred request is replayed through ([`super::deferred`]), with its original id.
pub(crate) fn answer(app: &Arc<SlackApp>, endpoint: Endpoint, headers: &HeaderMap, body: &[u8], id: &RequestId) -> Response {
    match endpoint {
        Endpoint::Commands => match super::command::CommandForm::from_form(body) {
            Ok(form) => {
                let reply = super::command::handle(app, form, id);
                let reply = if app.follow_ups.take_refused(id) { pool::busy_reply() } else { reply };
                reply.into_response()
            }
            Err(_) => bad_request("the form does not have a slash command's fields"),
        },
        Endpoint::Interactions => {
            let payload = serde_urlencoded::from_bytes::<Vec<(String, String)>>(body)
                .ok()
                .and_then(|fields| fields.into_iter().find(|(k, _)| k == "payload").map(|(_, v)| v));
            let Some(payload) = payload else {
                return bad_request("the form has no `payload` field");
            };
            match serde_json::from_str::<SlackInteractionEvent>(&payload) {
                Ok(event) => {
                    let first_input = pool::first_input_block(&event);
                    let ack = super::interaction::handle(app, event, id);
                    match (app.follow_ups.take_refused(id), first_input) {
                        (false, _) => json_or_empty(ack.body()),
                        (true, Some(block)) => json_or_empty(pool::busy_ack(&block).body()),
                        (true, None) => pool::busy_response(),
                    }
                }
                Err(_) => bad_request("the payload is not an interaction Slack sends"),
            }
        }
        Endpoint::Events => {
            let retry = headers.get(RETRY).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u32>().ok());
            match serde_json::from_slice::<SlackPushEvent>(body) {
                Ok(SlackPushEvent::UrlVerification(v)) => Json(serde_json::json!({"challenge": v.challenge})).into_response(),
                Ok(SlackPushEvent::EventCallback(callback)) => {
                    events::handle(app, callback, retry, id);
                    // Refused: Slack retries the event later.
                    if app.follow_ups.take_refused(id) {
                        return pool::busy_response();
                    }
                    StatusCode::OK.into_response()
                }
                Ok(SlackPushEvent::AppRateLimited(_)) => {
                    tracing::warn!("Slack says the app is rate-limited for events");
                    StatusCode::OK.into_response()
                }
                Err(_) => bad_request("the body is not an Events API payload"),
            }
        }
    }
}

/// Slack's retry counter on a repeated Events API request.
pub const RETRY_HEADER: &str = "x-slack-retry-num";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_endpoint_is_logged_by_the_name_its_debug_form_gives() {
        for endpoint in [Endpoint::Commands, Endpoint::Interactions, Endpoint::Events] {
            assert_eq!(endpoint.name(), format!("{endpoint:?}"));
        }
    }
}
