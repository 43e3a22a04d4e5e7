//! Follow-ups: the work a handler does after Slack's acknowledgement, and where it runs.
//!
//! Every handler answers Slack at once (verify, parse, validate, reply: no side effect) and gives
//! the rest (store writes, approval cards, DMs) to [`SlackApp::follow_ups`] as a [`FollowUp`]:
//!
//! - `powerpole serve` and Socket Mode run it on the runtime through a bounded pool
//!   ([`super::pool::FollowUpPool`]), which refuses it when full so the answer says "busy";
//! - on Lambda anything still running after the answer is frozen, so a [`Deferrer`] holds the
//!   follow-up ([`HeldFollowUps`]), drops it unrun, and hands the *verified request* to a durable
//!   queue ([`HandOff`]) as a [`Deferred`]. A worker invocation replays that request through the
//!   same handler with the same request id (so a request files the session id its answer named,
//!   see [`crate::domain::SessionId::derived_from`]), drops the answer, and awaits the follow-up.
//!   The exception is a follow-up that opens a modal ([`SlackApp::spawn_with_trigger`]): Slack
//!   honours a trigger for 3 seconds, so it runs before the answer and is dropped from the replay.
//!
//! Once, and not lost:
//! - the answer has no side effect, so replaying it repeats nothing; the replayed follow-up first
//!   claims `deferred:<digest>` in the store, the digest being SHA-256 over what Slack signed
//!   (`v0:<timestamp>:<body>`), so a queue that delivers a request twice (or a hand-off that was
//!   retried) has it done once. The digest, not the request id the message carries: anyone who
//!   could put a copy of a signed request on the queue again could give it a fresh id;
//! - a request signed more than [`MAX_QUEUED_AGE`] ago is refused before anything is done: the
//!   dead-letter queue keeps messages for 14 days, and an old signed request put back on the
//!   queue (after its claim expired) must not file a session in someone's name. Refused messages
//!   fail, so they end in the dead-letter queue, whose alarm tells the operator;
//! - Slack gets its acknowledgement only after the queue took the request; if it did not, the
//!   person is told to try again (an event gets a 503, which Slack retries) and nothing was done;
//! - a worker that fails before the claim (start-up, secrets, store) leaves the message on the
//!   queue for a retry, and after the last retry in the dead-letter queue. After the claim the
//!   follow-up runs to its end in that invocation, telling the person about any failure, exactly
//!   as under `serve`.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, Request, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Router;
use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};
use tower::ServiceExt;
use tracing::Instrument;

use super::http::{answer, Endpoint, RETRY_HEADER};
use super::verify::{VerifyError, SIGNATURE_HEADER, TIMESTAMP_HEADER};
use super::{slack_router, Reply, RequestId, SlackApp};
use crate::notify::{messages, Notifier};
use crate::secrets::Secret;
use crate::store::StoreError;
use crate::workflow::Workflow;

/// How long a deferred request's claim is kept: longer than [`MAX_QUEUED_AGE`], so a request is
/// refused by its age before its claim could have expired.
pub const CLAIM_FOR: chrono::Duration = chrono::Duration::hours(24);
/// The oldest signed Slack request a worker still runs. The follow-up queue retries a message
/// `maxReceiveCount` times one visibility timeout apart (Terraform defaults: 5 x 180 s = 15
/// minutes), so a request that is delivered late but legitimately is well inside this bound; one
/// older than it is either stuck for an hour (its person has long been told it was taken) or a
/// replay, and is refused.
pub const MAX_QUEUED_AGE: chrono::Duration = chrono::Duration::hours(1);

/// The work after one acknowledgement, in the request's log span.
pub struct FollowUp {
    request_id: RequestId,
    what: &'static str,
    needs_trigger: bool,
    work: BoxFuture<'static, ()>,
}

impl FollowUp {
    /// `needs_trigger`: the work uses the interaction's `trigger_id` and must not wait.
    pub fn new<F>(request_id: &RequestId, what: &'static str, needs_trigger: bool, work: F) -> FollowUp
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let span = tracing::info_span!("follow_up", request_id = %request_id, what);
        FollowUp { request_id: request_id.clone(), what, needs_trigger, work: Box::pin(work.instrument(span)) }
    }

    pub fn request_id(&self) -> &RequestId {
        &self.request_id
    }

    pub fn what(&self) -> &'static str {
        self.what
    }

    pub fn needs_trigger(&self) -> bool {
        self.needs_trigger
    }

    pub async fn run(self) {
        self.work.await
    }

    /// The same follow-up, its work (still in its span) run inside `around`.
    pub(crate) fn wrap(self, around: impl FnOnce(BoxFuture<'static, ()>) -> BoxFuture<'static, ()>) -> FollowUp {
        FollowUp { work: around(self.work), ..self }
    }
}

impl std::fmt::Debug for FollowUp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FollowUp").field("request_id", &self.request_id).field("what", &self.what).field("needs_trigger", &self.needs_trigger).finish()
    }
}

/// Where follow-ups go.
pub trait FollowUps: Send + Sync {
    fn accept(&self, follow_up: FollowUp);

    /// Whether a follow-up of request `id` was refused for lack of room, forgetting it: its
    /// answer then says "busy, try again" instead of promising work that will not run.
    fn take_refused(&self, _id: &RequestId) -> bool {
        false
    }

    /// Whether request `id`'s answer produced a follow-up that waits to be journaled before the
    /// answer goes out ([`FollowUps::journal`]): under `serve` over HTTP ([`super::journal`]).
    /// A request with no follow-up (`help`, a refusal) is answered without building its record.
    fn awaits_journal(&self, _id: &RequestId) -> bool {
        false
    }

    /// Journals the follow-ups `request` (answered under `id`) produced, durably, and lets them
    /// run; called after the handler and before Slack gets its answer. `None` (the request cannot
    /// be recorded) lets them run unjournaled.
    fn journal<'a>(&'a self, _id: &'a RequestId, _request: Option<Deferred>) -> BoxFuture<'a, ()> {
        Box::pin(async {})
    }
}

/// Keeps each follow-up, unrun, until it is taken by its request id.
#[derive(Default)]
pub struct HeldFollowUps(Mutex<HashMap<RequestId, Vec<FollowUp>>>);

impl HeldFollowUps {
    pub fn take(&self, id: &RequestId) -> Vec<FollowUp> {
        self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).remove(id).unwrap_or_default()
    }
}

impl FollowUps for HeldFollowUps {
    fn accept(&self, follow_up: FollowUp) {
        let mut held = self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        held.entry(follow_up.request_id.clone()).or_default().push(follow_up);
    }
}

/// A verified Slack request whose follow-up runs later, elsewhere: what goes on the queue.
/// It holds exactly what Slack sent (body and signature) and the id it was answered under.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Deferred {
    pub endpoint: Endpoint,
    pub request_id: String,
    /// `X-Slack-Request-Timestamp` and `X-Slack-Signature` as received.
    pub timestamp: String,
    pub signature: String,
    /// `X-Slack-Retry-Num` of an Events API retry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_num: Option<u32>,
    /// The body as Slack sent it (form-encoded or JSON text).
    pub body: String,
}

/// A durable queue for deferred requests.
#[async_trait]
pub trait HandOff: Send + Sync {
    /// Keeps `deferred` for a worker; `Err` (a sentence for the log) means it was not taken.
    async fn hand_off(&self, deferred: &Deferred) -> Result<(), String>;
}

/// Why a deferred request was not done (the queue should retry it, then dead-letter it).
#[derive(Debug, thiserror::Error)]
pub enum DeferredError {
    #[error("`{0}` is not a request id")]
    RequestId(String),
    #[error("the deferred request is not signed by Slack: {0}")]
    Signature(VerifyError),
    #[error("the deferred request was signed {age_secs} s ago, more than the {max_secs} s a queued request may wait; refused, nothing done (a replay, or a message redriven too late: the person must ask again)")]
    TooOld { age_secs: i64, max_secs: i64 },
    #[error("the deferred request could not be claimed: {0}")]
    Store(StoreError),
}

/// What running a deferred request did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ran {
    /// Its follow-up ran (count).
    FollowUps(usize),
    /// An earlier delivery claimed it: nothing done now.
    AlreadyClaimed,
    /// The replay produced no follow-up (the configuration changed since it was answered?).
    Nothing,
}

/// The Slack app for a runtime that freezes after each answer (Lambda): answers through the same
/// Slack routes as `serve` (not its health routes: see [`slack_router`]), runs trigger-bound follow-ups before answering, hands every other
/// follow-up to `hand_off` as its [`Deferred`] request, and runs deferred requests it is given.
pub struct Deferrer {
    app: Arc<SlackApp>,
    held: Arc<HeldFollowUps>,
    router: Router,
    hand_off: Arc<dyn HandOff>,
}

impl Deferrer {
    pub fn new(workflow: Workflow, notifier: Arc<dyn Notifier>, signing_secret: Secret, hand_off: Arc<dyn HandOff>) -> Deferrer {
        let held = Arc::new(HeldFollowUps::default());
        let app = SlackApp::with_follow_ups(workflow, notifier, signing_secret, held.clone());
        Deferrer { router: slack_router(app.clone()), app, held, hand_off }
    }

    pub fn app(&self) -> &Arc<SlackApp> {
        &self.app
    }

    /// Answers one HTTP request from Slack. The answer goes out only once the follow-up is on
    /// the queue; if the queue refuses it, the person is asked to try again instead.
    pub async fn acknowledge(&self, request: Request<Body>) -> Response {
        let (parts, body) = request.into_parts();
        let body = match super::http::read_body(body).await {
            Ok(body) => body,
            Err(too_large) => return too_large,
        };
        let header = |name: &str| parts.headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_string);
        let (timestamp, signature) = (header(TIMESTAMP_HEADER), header(SIGNATURE_HEADER));
        let retry_num = header(RETRY_HEADER).and_then(|n| n.parse().ok());
        let endpoint = Endpoint::at(parts.uri.path());
        let request = Request::from_parts(parts, Body::from(body.clone()));
        let response = match self.router.clone().oneshot(request).await {
            Ok(response) => response,
            Err(never) => match never {},
        };
        let Some(id) = response.headers().get("x-request-id").and_then(|v| v.to_str().ok()).and_then(RequestId::parse) else {
            return response;
        };
        let mut deferrable = Vec::new();
        for follow_up in self.held.take(&id) {
            if follow_up.needs_trigger() {
                follow_up.run().await;
            } else {
                deferrable.push(follow_up.what());
            }
        }
        if deferrable.is_empty() {
            return response;
        }
        let span = tracing::info_span!("hand_off", request_id = %id, what = ?deferrable);
        let deferred = match (endpoint, timestamp, signature, String::from_utf8(body.to_vec())) {
            (Some(endpoint), Some(timestamp), Some(signature), Ok(body)) => {
                Deferred { endpoint, request_id: id.to_string(), timestamp, signature, retry_num, body }
            }
            _ => {
                span.in_scope(|| tracing::error!("a request with a follow-up cannot be deferred (no endpoint, signature or text body)"));
                return not_taken(endpoint, &id);
            }
        };
        match self.hand_off.hand_off(&deferred).instrument(span.clone()).await {
            Ok(()) => {
                span.in_scope(|| tracing::info!("follow-up handed off"));
                response
            }
            Err(error) => {
                span.in_scope(|| tracing::error!(%error, "the follow-up could not be handed off; the person is asked to try again"));
                not_taken(endpoint, &id)
            }
        }
    }

    /// Runs the follow-up of a deferred request (the worker's side): checks Slack's signature
    /// again (the HMAC, at the request's own time: the queue may deliver it minutes later),
    /// refuses it if it was signed more than [`MAX_QUEUED_AGE`] ago, claims it once by the digest
    /// of what Slack signed, replays it through the same handler under its original id, and
    /// awaits the follow-up that produces.
    pub async fn run(&self, deferred: &Deferred) -> Result<Ran, DeferredError> {
        let id = RequestId::parse(&deferred.request_id).ok_or_else(|| DeferredError::RequestId(deferred.request_id.clone()))?;
        let span = tracing::info_span!("slack_deferred", request_id = %id, endpoint = ?deferred.endpoint);
        async {
            self.check_signed(deferred)?;
            match self.app.workflow.store.remember_once(&format!("deferred:{}", signed_digest(deferred)), CLAIM_FOR).await {
                Ok(true) => {}
                Ok(false) => {
                    tracing::info!("an earlier delivery already did this request; nothing done");
                    return Ok(Ran::AlreadyClaimed);
                }
                Err(e) => return Err(DeferredError::Store(e)),
            }
            self.replay_checked(deferred, &id).await
        }
        .instrument(span)
        .await
    }

    /// Slack's signature checked again (the HMAC, at the request's own time) and the request
    /// signed at most [`MAX_QUEUED_AGE`] ago.
    fn check_signed(&self, deferred: &Deferred) -> Result<(), DeferredError> {
        let signed_at: i64 = deferred.timestamp.trim().parse().map_err(|_| DeferredError::Signature(VerifyError::BadTimestamp))?;
        self.app.signing_key.verify(Some(&deferred.timestamp), Some(&deferred.signature), deferred.body.as_bytes(), signed_at).map_err(DeferredError::Signature)?;
        let age_secs = self.app.workflow.clock.now().timestamp().saturating_sub(signed_at);
        if age_secs > MAX_QUEUED_AGE.num_seconds() {
            return Err(DeferredError::TooOld { age_secs, max_secs: MAX_QUEUED_AGE.num_seconds() });
        }
        Ok(())
    }

    /// Runs the follow-up of a request `serve` journaled and the caller has claimed in the
    /// journal ([`super::journal`]): the same checks as [`Deferrer::run`] (signature, age),
    /// without the once-claim, which the journal's claim replaces.
    pub async fn replay_journaled(&self, deferred: &Deferred) -> Result<Ran, DeferredError> {
        let id = RequestId::parse(&deferred.request_id).ok_or_else(|| DeferredError::RequestId(deferred.request_id.clone()))?;
        let span = tracing::info_span!("slack_journaled", request_id = %id, endpoint = ?deferred.endpoint);
        async {
            self.check_signed(deferred)?;
            self.replay_checked(deferred, &id).await
        }
        .instrument(span)
        .await
    }

    /// Replays a checked and claimed request through the handler and awaits its follow-ups.
    async fn replay_checked(&self, deferred: &Deferred, id: &RequestId) -> Result<Ran, DeferredError> {
        let mut headers = HeaderMap::new();
        if let Some(n) = deferred.retry_num {
            headers.insert(RETRY_HEADER, HeaderValue::from(n));
        }
        // The answer was given when the request arrived; only its follow-up is wanted now.
        drop(answer(&self.app, deferred.endpoint, &headers, deferred.body.as_bytes(), id));
        let mut ran = 0;
        for follow_up in self.held.take(id) {
            // Trigger-bound work ran before the acknowledgement.
            if !follow_up.needs_trigger() {
                follow_up.run().await;
                ran += 1;
            }
        }
        if ran == 0 {
            tracing::warn!("the replayed request produced no follow-up (was the configuration changed since it was answered?)");
            return Ok(Ran::Nothing);
        }
        Ok(Ran::FollowUps(ran))
    }
}

/// SHA-256 (hex) over exactly what Slack's signature covers: two deliveries of one signed request
/// have the same digest whatever else their messages say.
pub fn signed_digest(deferred: &Deferred) -> String {
    use sha2::{Digest, Sha256};
    let mut hash = Sha256::new();
    hash.update(b"v0:");
    hash.update(deferred.timestamp.trim().as_bytes());
    hash.update(b":");
    hash.update(deferred.body.as_bytes());
    hex::encode(hash.finalize())
}

/// The answer when a follow-up could not be handed off: a slash command tells the person to try
/// again (nothing was done); anything else gets a 503 (Slack retries events).
fn not_taken(endpoint: Option<Endpoint>, id: &RequestId) -> Response {
    let mut response = match endpoint {
        Some(Endpoint::Commands) => {
            Reply::Ephemeral(messages::problem("powerpole could not take this request right now and did nothing; please try again in a minute", "")).into_response()
        }
        _ => (StatusCode::SERVICE_UNAVAILABLE, "powerpole could not take this request right now; nothing was done").into_response(),
    };
    if let Ok(v) = HeaderValue::from_str(&id.to_string()) {
        response.headers_mut().insert("x-request-id", v);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn held_follow_ups_are_taken_once_by_request_id() {
        let held = HeldFollowUps::default();
        let (a, b) = (RequestId::new(), RequestId::new());
        held.accept(FollowUp::new(&a, "one", false, async {}));
        held.accept(FollowUp::new(&a, "two", true, async {}));
        let taken = held.take(&a);
        assert_eq!(taken.iter().map(|f| (f.what(), f.needs_trigger())).collect::<Vec<_>>(), [("one", false), ("two", true)]);
        assert!(held.take(&a).is_empty());
        assert!(held.take(&b).is_empty());
    }

    #[test]
    fn a_deferred_request_round_trips_through_json() {
        let d = Deferred {
            endpoint: Endpoint::Events,
            request_id: "0123456789abcdef".into(),
            timestamp: "1531420618".into(),
            signature: "v0=00".into(),
            retry_num: Some(1),
            body: "{}".into(),
        };
        let text = serde_json::to_string(&d).unwrap();
        assert!(text.contains(r#""endpoint":"events""#), "{text}");
        assert_eq!(serde_json::from_str::<Deferred>(&text).unwrap(), d);
    }

    #[test]
    fn the_digest_covers_what_slack_signed_and_nothing_the_message_adds() {
        let d = Deferred {
            endpoint: Endpoint::Commands,
            request_id: "0123456789abcdef".into(),
            timestamp: "1531420618".into(),
            signature: "v0=00".into(),
            retry_num: None,
            body: "text=request".into(),
        };
        let renamed = Deferred { request_id: "fedcba9876543210".into(), retry_num: Some(2), ..d.clone() };
        assert_eq!(signed_digest(&d), signed_digest(&renamed));
        assert_ne!(signed_digest(&d), signed_digest(&Deferred { body: "text=request2".into(), ..d.clone() }));
        assert_ne!(signed_digest(&d), signed_digest(&Deferred { timestamp: "1531420619".into(), ..d }));
    }

    #[test]
    fn request_ids_parse_only_in_their_own_shape() {
        let ids: std::collections::HashSet<RequestId> = (0..1000).map(|_| RequestId::new()).collect();
        assert_eq!(ids.len(), 1000, "ids do not repeat");
        for id in ids {
            assert_eq!(RequestId::parse(&id.to_string()), Some(id));
        }
        for bad in ["", "0123456789ABCDEF", "0123456789abcde", "0123456789abcdefg", "x123456789abcdef"] {
            assert_eq!(RequestId::parse(bad), None, "{bad}");
        }
    }
}
