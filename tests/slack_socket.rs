//! Socket Mode uses the HTTP transport's handlers: the listener's callbacks, called as
//! slack-morphism calls them, answer and act exactly as the HTTP routes do. (No Slack workspace
//! exists here to open a real WebSocket.)

mod slack_support;

use std::sync::Arc;

use powerpole::domain::{AuditKind, State};
use powerpole::notify::slack_client;
use powerpole::slack::socket::{environment, on_command, on_interaction};
use serde_json::json;
use slack_morphism::prelude::*;
use slack_support::*;

fn command(user: &str, text: &str, response_url: &str) -> SlackCommandEvent {
    serde_json::from_value(json!({
        "team_id": "T0STANDIN", "channel_id": ACCESS, "user_id": user, "command": "/powerpole",
        "text": text, "response_url": response_url, "trigger_id": "1.2.3",
    }))
    .expect("a command event")
}

#[tokio::test]
async fn socket_mode_commands_and_clicks_go_through_the_same_handlers() {
    let t = spawn_app().await;
    let client = Arc::new(slack_client(&t.slack.api_url()));
    let env = environment(t.app.clone(), client.clone());

    let help = on_command(command(ALICE, "help", &t.slack.response_url("h")), client.clone(), env.user_state.clone()).await.unwrap();
    assert_eq!(help.response_type, Some(SlackMessageResponseType::Ephemeral));
    assert!(help.content.text.unwrap_or_default().contains("/powerpole request"));

    let bad = on_command(command(ALICE, "request billing READ 9h INC-1", &t.slack.response_url("b")), client.clone(), env.user_state.clone()).await.unwrap();
    assert!(bad.content.text.unwrap_or_default().contains("`billing` allows at most 4h"));
    assert!(t.slack.calls().is_empty());

    let filed = on_command(command(ALICE, "request billing READ 1h INC-9 socket", &t.slack.response_url("r")), client.clone(), env.user_state.clone()).await.unwrap();
    assert!(filed.content.text.unwrap_or_default().contains("Filing request"));
    let card = t.slack.wait_for("chat.postMessage", 1, SOON).await.unwrap().remove(0);
    let session = t.sessions_of(ALICE).await.remove(0);
    t.wait_for_session(&session.id, |s| s.slack.approval_ts.is_some()).await;

    let click = powerpole_standins::driver::ButtonClick::on(&card, "approve", BOB, "bob").unwrap();
    let payload: SlackInteractionEvent = serde_json::from_value(t.driver.block_actions(&click)).expect("an interaction event");
    let ack = on_interaction(payload, client, env.user_state.clone()).await.unwrap();
    assert_eq!(ack, SlackInteractionResponse::Empty);

    let approved = t.wait_for_session(&session.id, |s| s.state == State::Approved).await;
    assert_eq!(approved.approvals[0].approver.to_string(), BOB);
    assert_eq!(t.audit_kinds(&session.id).await, [AuditKind::Requested, AuditKind::Approved]);
    t.slack.wait_for("chat.update", 1, SOON).await.unwrap();
}
