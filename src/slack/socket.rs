//! Socket Mode: Slack delivers commands, interactions and events over a WebSocket that powerpole
//! opens with the app-level token, so the service needs no inbound port at all. Slack has already
//! authenticated the connection, so there is no request signature; everything else is the HTTP
//! transport's handlers, unchanged (the callbacks below only translate the answer).
//!
//! slack-morphism takes plain `fn` callbacks; they find the [`SlackApp`] in the listener's user
//! state ([`environment`]).

use std::sync::Arc;

use slack_morphism::prelude::*;

type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

use super::{command, events, interaction, pool, Ack, RequestId, SlackApp};
use crate::notify::Message;
use crate::secrets::Secret;

type Environment = SlackClientEventsListenerEnvironment<SlackClientHyperHttpsConnector>;

/// Why Socket Mode stopped or could not start.
#[derive(Debug, thiserror::Error)]
pub enum SocketError {
    #[error("Slack refused the app-level token or the connection: {0}")]
    Connect(String),
}

/// The listener environment: the client and, as user state, the app.
pub fn environment(app: Arc<SlackApp>, client: Arc<SlackHyperClient>) -> Arc<Environment> {
    Arc::new(Environment::new(client).with_error_handler(on_error).with_user_state(app))
}

/// Connects with the app-level token and serves until a termination signal.
pub async fn run(app: Arc<SlackApp>, client: Arc<SlackHyperClient>, app_token: &Secret) -> Result<(), SocketError> {
    let callbacks = SlackSocketModeListenerCallbacks::new()
        .with_command_events(on_command)
        .with_interaction_events(on_interaction)
        .with_push_events(on_push);
    let listener = SlackClientSocketModeListener::new(&SlackClientSocketModeConfig::new(), environment(app, client), callbacks);
    let token = SlackApiToken::new(SlackApiTokenValue::new(app_token.expose().to_string()));
    listener.listen_for(&token).await.map_err(|e| SocketError::Connect(short(&e)))?;
    tracing::info!("connected to Slack in Socket Mode");
    listener.serve().await;
    Ok(())
}

fn short(err: &slack_morphism::errors::SlackClientError) -> String {
    match err {
        slack_morphism::errors::SlackClientError::ApiError(api) => api.code.clone(),
        _ => "the connection failed".into(),
    }
}

fn on_error(err: BoxError, _client: Arc<SlackHyperClient>, _state: SlackClientEventsUserState) -> HttpStatusCode {
    tracing::error!(error = %err, "Socket Mode listener error");
    HttpStatusCode::OK
}

async fn app_of(state: &SlackClientEventsUserState) -> Result<Arc<SlackApp>, BoxError> {
    let storage = state.read().await;
    storage.get_user_state::<Arc<SlackApp>>().cloned().ok_or_else(|| "the Socket Mode listener has no powerpole app".into())
}

fn content(message: &Message) -> Result<SlackMessageContent, BoxError> {
    let blocks: Vec<SlackBlock> = serde_json::from_value(serde_json::json!(message.blocks))?;
    Ok(SlackMessageContent::new().with_text(message.text.clone()).with_blocks(blocks))
}

/// A slash command over Socket Mode: the same handler as `POST /slack/commands`.
pub async fn on_command(event: SlackCommandEvent, _client: Arc<SlackHyperClient>, state: SlackClientEventsUserState) -> UserCallbackResult<SlackCommandEventResponse> {
    let app = app_of(&state).await?;
    let id = RequestId::new();
    let _span = tracing::info_span!("slack_command", request_id = %id, transport = "socket").entered();
    let reply = command::handle(&app, event.into(), &id);
    let reply = if app.follow_ups.take_refused(&id) { pool::busy_reply() } else { reply };
    match reply.message() {
        Some(message) => Ok(SlackCommandEventResponse::new(content(message)?).with_response_type(SlackMessageResponseType::Ephemeral)),
        None => Ok(SlackCommandEventResponse::new(SlackMessageContent::new())),
    }
}

/// An interaction over Socket Mode: the same handler as `POST /slack/interactions`.
pub async fn on_interaction(event: SlackInteractionEvent, _client: Arc<SlackHyperClient>, state: SlackClientEventsUserState) -> UserCallbackResult<SlackInteractionResponse> {
    let app = app_of(&state).await?;
    let id = RequestId::new();
    let _span = tracing::info_span!("slack_interaction", request_id = %id, transport = "socket").entered();
    let first_input = pool::first_input_block(&event);
    let ack = interaction::handle(&app, event, &id);
    let ack = match (app.follow_ups.take_refused(&id), first_input) {
        (false, _) => ack,
        (true, Some(block)) => pool::busy_ack(&block),
        // A click cannot carry text back: failing it shows the person it did not work.
        (true, None) => return Err(pool::BUSY.into()),
    };
    match ack {
        Ack::Ok => Ok(SlackInteractionResponse::Empty),
        errors @ Ack::Errors(_) => {
            let body = errors.body().unwrap_or_default();
            Ok(SlackInteractionResponse::ViewSubmission(serde_json::from_value(body)?))
        }
    }
}

/// An Events API event over Socket Mode, deduplicated by event id like over HTTP.
pub async fn on_push(event: SlackPushEventCallback, _client: Arc<SlackHyperClient>, state: SlackClientEventsUserState) -> UserCallbackResult<()> {
    let app = app_of(&state).await?;
    let id = RequestId::new();
    events::handle(&app, event, None, &id);
    if app.follow_ups.take_refused(&id) {
        return Err(pool::BUSY.into());
    }
    Ok(())
}
