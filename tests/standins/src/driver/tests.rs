//! The driver is checked against slack-morphism, the library the product verifies and parses
//! Slack's requests with: if it accepts what we send, so will the product.

use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::routing::post;
use axum::Router;
use slack_morphism::prelude::*;
use slack_morphism::signature_verifier::SlackEventSignatureVerifier;

use super::*;
use crate::http_util::{any_loopback_port, Server};

const SECRET: &str = "standin-signing-secret";

#[derive(Debug, Clone)]
struct Received {
    path: String,
    headers: HeaderMap,
    body: String,
}

impl Received {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// What the product's verifier says about this request.
    fn verified(&self) -> bool {
        let (Some(signature), Some(timestamp)) = (
            self.header(sign::SIGNATURE_HEADER),
            self.header(sign::TIMESTAMP_HEADER),
        ) else {
            return false;
        };
        SlackEventSignatureVerifier::new(&SlackSigningSecret::new(SECRET.into()))
            .verify(signature, &self.body, timestamp)
            .is_ok()
    }

    fn form(&self) -> Vec<(String, String)> {
        serde_urlencoded::from_str(&self.body).expect("a form body")
    }

    fn payload(&self) -> Value {
        let form = self.form();
        let (_, payload) = form
            .iter()
            .find(|(k, _)| k == "payload")
            .expect("a payload field");
        serde_json::from_str(payload).expect("JSON in the payload field")
    }
}

type Inbox = Arc<Mutex<Vec<Received>>>;

/// Stands where the product would: records each request and answers 200.
async fn product() -> (Server, Inbox) {
    async fn receive(
        State(inbox): State<Inbox>,
        uri: Uri,
        headers: HeaderMap,
        body: Bytes,
    ) -> StatusCode {
        inbox.lock().unwrap().push(Received {
            path: uri.path().to_owned(),
            headers,
            body: String::from_utf8(body.to_vec()).expect("UTF-8"),
        });
        StatusCode::OK
    }
    let inbox = Inbox::default();
    let router = Router::new()
        .route("/slack/commands", post(receive))
        .route("/slack/interactions", post(receive))
        .route("/slack/events", post(receive))
        .with_state(inbox.clone());
    let server = Server::start(any_loopback_port(), |_| router)
        .await
        .expect("starts");
    (server, inbox)
}

fn last(inbox: &Inbox) -> Received {
    inbox
        .lock()
        .unwrap()
        .last()
        .cloned()
        .expect("a request arrived")
}

#[tokio::test]
async fn slash_commands_are_signed_form_posts_with_slacks_fields_in_slacks_order() {
    let (server, inbox) = product().await;
    let slack = SlackStandin::start().await;
    let driver = SlackDriver::new(&format!("http://{}", server.addr), SECRET).with_slack(&slack);

    let reply = driver
        .command(SlashCommand::new(
            "U01ALICE",
            "alice",
            "C01ACCESS",
            "request orders READ 60m fix data",
        ))
        .await
        .unwrap();

    assert_eq!(reply.status, 200);
    let request = last(&inbox);
    assert_eq!(request.path, "/slack/commands");
    assert_eq!(
        request.header("content-type"),
        Some("application/x-www-form-urlencoded")
    );
    assert!(request.verified());
    let names: Vec<String> = request.form().into_iter().map(|(k, _)| k).collect();
    assert_eq!(
        names,
        [
            "token",
            "team_id",
            "team_domain",
            "channel_id",
            "channel_name",
            "user_id",
            "user_name",
            "command",
            "text",
            "api_app_id",
            "is_enterprise_install",
            "response_url",
            "trigger_id"
        ]
    );
    let command: SlackCommandEvent =
        serde_urlencoded::from_str(&request.body).expect("slack-morphism parses it");
    assert_eq!(command.command.0, "/powerpole");
    assert_eq!(command.user_id.0, "U01ALICE");
    assert_eq!(
        command.text.as_deref(),
        Some("request orders READ 60m fix data")
    );
    assert!(command
        .response_url
        .0
        .as_str()
        .starts_with(&slack.response_url("")));
    assert_eq!(command.trigger_id.0.split('.').count(), 3);
}

#[tokio::test]
async fn tampered_requests_fail_the_products_verifier() {
    let (server, inbox) = product().await;
    let driver = SlackDriver::new(&format!("http://{}", server.addr), SECRET);
    let command = SlashCommand::new("U1", "alice", "C1", "");

    driver.command(command.clone()).await.unwrap();
    assert!(last(&inbox).verified(), "the untampered request verifies");
    for tamper in [
        Tamper::StaleTimestamp,
        Tamper::ForgedSignature,
        Tamper::WrongSecret("someone-elses-secret".into()),
        Tamper::Unsigned,
    ] {
        driver
            .tampered(tamper.clone())
            .command(command.clone())
            .await
            .unwrap();
        assert!(!last(&inbox).verified(), "{tamper:?} must not verify");
    }
    let stale = {
        driver
            .tampered(Tamper::StaleTimestamp)
            .command(command)
            .await
            .unwrap();
        last(&inbox)
    };
    let ts: i64 = stale
        .header(sign::TIMESTAMP_HEADER)
        .unwrap()
        .parse()
        .unwrap();
    let signature = stale.header(sign::SIGNATURE_HEADER).unwrap();
    assert_eq!(
        signature,
        sign::signature(SECRET, ts, stale.body.as_bytes()),
        "only the age is wrong"
    );
}

#[tokio::test]
async fn a_click_on_a_posted_card_is_a_block_actions_payload_the_product_can_parse() {
    let (server, inbox) = product().await;
    let slack = SlackStandin::start().await;
    let driver = SlackDriver::new(&format!("http://{}", server.addr), SECRET).with_slack(&slack);
    let card = json!({
        "channel": "C0APPROVALS",
        "text": "Access request",
        "blocks": [{"type": "actions", "block_id": "decision", "elements": [
            {"type": "button", "action_id": "approve", "value": "req-1",
             "text": {"type": "plain_text", "text": "Approve"}}]}],
    });
    reqwest::Client::new()
        .post(format!("{}/chat.postMessage", slack.api_url()))
        .bearer_auth("xoxb-test")
        .json(&card)
        .send()
        .await
        .unwrap();
    let posted = &slack.calls_to("chat.postMessage")[0];

    let click =
        ButtonClick::on(posted, "approve", "U01BOB", "bob").expect("the card has the button");
    assert!(ButtonClick::on(posted, "no-such-button", "U01BOB", "bob").is_none());
    driver
        .interaction(driver.block_actions(&click))
        .await
        .unwrap();

    let request = last(&inbox);
    assert_eq!(request.path, "/slack/interactions");
    assert!(request.verified());
    let payload = request.payload();
    assert_eq!(payload["container"]["message_ts"], posted.response["ts"]);
    let event: SlackInteractionEvent =
        serde_json::from_value(payload).expect("slack-morphism parses it");
    let SlackInteractionEvent::BlockActions(actions) = event else {
        panic!("a block_actions event")
    };
    assert_eq!(actions.user.map(|u| u.id.0), Some("U01BOB".to_owned()));
    assert_eq!(
        actions.channel.map(|c| c.id.0),
        Some("C0APPROVALS".to_owned())
    );
    let action = &actions.actions.expect("actions")[0];
    assert_eq!(action.action_id.0, "approve");
    assert_eq!(action.value.as_deref(), Some("req-1"));
    assert_eq!(
        action.block_id.as_ref().map(|b| b.0.as_str()),
        Some("decision")
    );
    assert!(actions.message.is_some());
    assert!(actions.response_url.is_some());
}

#[tokio::test]
async fn a_submitted_modal_carries_its_state_values_as_slack_sends_them() {
    let (server, inbox) = product().await;
    let slack = SlackStandin::start().await;
    let driver = SlackDriver::new(&format!("http://{}", server.addr), SECRET);
    let view = json!({"type": "modal", "callback_id": "request", "private_metadata": "C01ACCESS",
                      "title": {"type": "plain_text", "text": "Request access"}, "blocks": []});
    reqwest::Client::new()
        .post(format!("{}/views.open", slack.api_url()))
        .bearer_auth("xoxb-test")
        .json(&json!({"trigger_id": "1.2.3", "view": view}))
        .send()
        .await
        .unwrap();
    let opened = &slack.calls_to("views.open")[0];

    let submission = ViewSubmission::of(opened, "U01ALICE", "alice")
        .expect("a view was opened")
        .input("target", "target", InputValue::Selected("orders".into()))
        .input(
            "reason",
            "reason",
            InputValue::Text("fix a broken order".into()),
        );
    driver
        .interaction(driver.view_submission(&submission))
        .await
        .unwrap();

    let request = last(&inbox);
    assert!(request.verified());
    let event: SlackInteractionEvent =
        serde_json::from_value(request.payload()).expect("slack-morphism parses it");
    let SlackInteractionEvent::ViewSubmission(submitted) = event else {
        panic!("a view_submission event")
    };
    assert_eq!(submitted.user.id.0, "U01ALICE");
    assert_eq!(
        submitted.view.state_params.id,
        opened.response["view"]["id"].as_str().unwrap().into()
    );
    let values = submitted.view.state_params.state.expect("state").values;
    let reason = &values[&"reason".into()][&"reason".into()];
    assert_eq!(reason.value.as_deref(), Some("fix a broken order"));
    let target = &values[&"target".into()][&"target".into()];
    assert_eq!(
        target.selected_option.as_ref().map(|o| o.value.as_str()),
        Some("orders")
    );
    match submitted.view.view {
        SlackView::Modal(modal) => {
            assert_eq!(modal.callback_id.map(|c| c.0), Some("request".to_owned()));
            assert_eq!(modal.private_metadata.as_deref(), Some("C01ACCESS"));
        }
        other => panic!("a modal, not {other:?}"),
    }
}

#[tokio::test]
async fn events_are_signed_json_and_retries_say_so_in_their_headers() {
    let (server, inbox) = product().await;
    let driver = SlackDriver::new(&format!("http://{}", server.addr), SECRET);

    driver
        .event(url_verification("challenge-1"), None)
        .await
        .unwrap();
    let first = last(&inbox);
    assert_eq!(first.header("content-type"), Some("application/json"));
    assert!(first.verified());
    assert_eq!(first.header("x-slack-retry-num"), None);
    let parsed: SlackPushEvent =
        serde_json::from_str(&first.body).expect("slack-morphism parses it");
    assert!(matches!(parsed, SlackPushEvent::UrlVerification(v) if v.challenge == "challenge-1"));

    let callback = event_callback(
        json!({"type": "app_home_opened", "user": "U1", "channel": "D1", "tab": "home", "event_ts": "1700000000.000100"}),
    );
    driver.event(callback.clone(), Some(2)).await.unwrap();
    let retried = last(&inbox);
    assert!(retried.verified());
    assert_eq!(retried.header("x-slack-retry-num"), Some("2"));
    assert_eq!(retried.header("x-slack-retry-reason"), Some("http_timeout"));
    let parsed: SlackPushEvent =
        serde_json::from_str(&retried.body).expect("slack-morphism parses it");
    let SlackPushEvent::EventCallback(envelope) = parsed else {
        panic!("an event_callback")
    };
    assert_eq!(envelope.team_id.0, TEAM_ID);
    assert_eq!(envelope.event_id.0, callback["event_id"].as_str().unwrap());
    assert_ne!(
        event_callback(json!({}))["event_id"],
        callback["event_id"],
        "event ids are fresh"
    );
}

#[tokio::test]
async fn the_answer_comes_back_as_status_and_text() {
    let driver = SlackDriver::new("http://127.0.0.1:9", SECRET);
    assert!(
        driver
            .command(SlashCommand::new("U1", "a", "C1", ""))
            .await
            .is_err(),
        "nothing listens on port 9"
    );

    let (server, _) = product().await;
    let driver = SlackDriver::new(&format!("http://{}/", server.addr), SECRET);
    let missing = driver
        .post("/slack/nowhere", "text/plain", "x".into(), &[])
        .await
        .unwrap();
    assert_eq!(missing.status, 404);
    let ok = driver.event(url_verification("c"), None).await.unwrap();
    assert_eq!(
        ok,
        DriverResponse {
            status: 200,
            body: String::new()
        }
    );
}
