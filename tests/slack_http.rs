//! The HTTP front door: signatures, commands, the request modal, events. Each test asserts the
//! HTTP answer and what was (or was not) sent to Slack and stored.

mod slack_support;

use std::time::Duration;

use powerpole::domain::{AuditKind, Role, State};
use powerpole_standins::driver::{event_callback, url_verification, InputValue, SlashCommand, Tamper, ViewSubmission};
use serde_json::json;
use slack_support::*;

#[tokio::test]
async fn a_valid_command_is_acknowledged_and_the_card_is_posted() {
    let t = spawn_app().await;
    let reply = t.command(ALICE, "request billing READ 1h INC-42 fix a refund").await;

    assert_eq!(reply.status, 200);
    let body = reply.json().expect("a JSON answer");
    assert_eq!(body["response_type"], "ephemeral");
    let said = body["text"].as_str().unwrap();
    assert!(said.contains("Filing request") && said.contains(&format!("<#{APPROVALS}>")), "{body}");
    assert!(!said.contains("sent"), "nothing says sent before the profile is checked: {body}");

    let cards = t.slack.wait_for("chat.postMessage", 1, SOON).await.unwrap();
    assert_eq!(cards[0].param_str("channel"), Some(APPROVALS));
    let text = cards[0].text();
    for expected in ["<@U0ALICE>", "billing", "READ", "1h", "INC-42 fix a refund"] {
        assert!(text.contains(expected), "{expected} not on the card: {text}");
    }
    let sessions = t.sessions_of(ALICE).await;
    assert_eq!(sessions.len(), 1);
    let s = t.wait_for_session(&sessions[0].id, |s| s.slack.approval_ts.is_some()).await;
    assert_eq!(s.state, State::Pending);
    assert_eq!((s.role, s.duration.to_string(), s.reason.as_str()), (Role::Read, "1h".to_string(), "INC-42 fix a refund"));
    assert_eq!(s.requester.db_user.to_string(), "alice");
    assert_eq!(s.requester.tz.as_deref(), Some("Europe/Berlin"));
    assert_eq!(s.slack.approval_channel.as_deref(), Some(APPROVALS));
    assert_eq!(t.audit_kinds(&s.id).await, [AuditKind::Requested]);
    assert_eq!(t.slack.calls_to("users.info").len(), 1);
}

/// Sends a valid command with the signature spoiled as given, and checks nothing happened.
async fn refused(tamper: Tamper) {
    let t = spawn_app().await;
    let reply = t.driver.tampered(tamper.clone()).command(SlashCommand::new(ALICE, "alice", ACCESS, "request billing READ 1h INC-1")).await.unwrap();
    assert_eq!(reply.status, 401, "{tamper:?}");
    assert!(!reply.body.contains("INC-1"));
    // A refused request is answered before anything is spawned, so nothing can come later.
    assert!(t.slack.calls().is_empty(), "{tamper:?} caused Slack calls: {:?}", t.slack.calls());
    assert!(t.sessions_of(ALICE).await.is_empty(), "{tamper:?} stored a session");
}

#[tokio::test]
async fn a_forged_signature_is_refused_with_no_side_effect() {
    refused(Tamper::ForgedSignature).await;
}

#[tokio::test]
async fn a_stale_timestamp_is_refused_with_no_side_effect() {
    refused(Tamper::StaleTimestamp).await;
}

#[tokio::test]
async fn a_wrong_signing_secret_is_refused_with_no_side_effect() {
    refused(Tamper::WrongSecret("someone-elses-secret".into())).await;
}

#[tokio::test]
async fn an_unsigned_request_is_refused_on_every_route() {
    let t = spawn_app().await;
    let unsigned = t.driver.tampered(Tamper::Unsigned);
    assert_eq!(unsigned.command(SlashCommand::new(ALICE, "alice", ACCESS, "help")).await.unwrap().status, 401);
    assert_eq!(unsigned.interaction(json!({"type": "block_actions"})).await.unwrap().status, 401);
    assert_eq!(unsigned.event(url_verification("c"), None).await.unwrap().status, 401);
    assert!(t.slack.calls().is_empty());
}

#[tokio::test]
async fn invalid_duration_role_and_target_are_named_and_nothing_is_stored() {
    let t = spawn_app().await;
    let cases = [
        ("request billing READ soon INC-1", "`soon` is not a duration"),
        ("request billing READ 5h INC-1", "`billing` allows at most 4h per session"),
        ("request billing ADMIN 1h INC-1", "unknown role `ADMIN`: use READ, DML or DDL"),
        ("request payments READ 1h INC-1", "there is no target `payments`; choose one of: `billing`, `orders`"),
        ("request billing READ 1h", "missing: a reason"),
        ("frobnicate", "is not a powerpole command"),
    ];
    for (text, problem) in cases {
        let reply = t.command(ALICE, text).await;
        assert_eq!(reply.status, 200);
        let body = reply.json().expect("a JSON answer");
        assert_eq!(body["response_type"], "ephemeral");
        let said = body["text"].as_str().unwrap();
        assert!(said.contains(problem), "{text}: {said}");
        assert!(said.contains("/powerpole"), "{text}: the answer shows the usage: {said}");
    }
    assert!(t.slack.calls().is_empty(), "{:?}", t.slack.calls());
    assert!(t.sessions_of(ALICE).await.is_empty());
}

#[tokio::test]
async fn help_and_the_bare_command_show_the_usage() {
    let t = spawn_app().await;
    for text in ["", "help"] {
        let body = t.command(ALICE, text).await.json().unwrap();
        let said = body["text"].as_str().unwrap();
        assert!(said.contains("/powerpole request") && said.contains("`billing` (up to 4h)"), "{said}");
        // Seen only by the person who typed it, with the same text as its one block.
        assert_eq!(body["response_type"], "ephemeral", "{body}");
        assert_eq!(body["blocks"][0]["text"]["text"].as_str(), Some(said), "{body}");
    }
    assert!(t.slack.calls().is_empty());
}

#[tokio::test]
async fn the_request_modal_opens_and_its_submission_files_the_request() {
    let t = spawn_app().await;
    let reply = t.command(ALICE, "request").await;
    assert_eq!((reply.status, reply.body.as_str()), (200, ""));
    let opened = t.slack.wait_for("views.open", 1, SOON).await.unwrap();
    let view = opened[0].param_json("view").unwrap();
    let targets: Vec<&str> = view["blocks"][0]["element"]["options"].as_array().unwrap().iter().map(|o| o["value"].as_str().unwrap()).collect();
    assert_eq!(targets, ["billing", "orders"]);

    let form = |duration: &str| {
        ViewSubmission::of(&opened[0], ALICE, "alice")
            .unwrap()
            .input("target", "target", InputValue::Selected("orders".into()))
            .input("role", "role", InputValue::Selected("DML".into()))
            .input("duration", "duration", InputValue::Selected(duration.into()))
            .input("reason", "reason", InputValue::Text("INC-7 replay orders".into()))
    };
    let too_long = t.driver.interaction(t.driver.view_submission(&form("4h"))).await.unwrap();
    assert_eq!(too_long.status, 200);
    let errors = too_long.json().expect("errors for the form");
    assert_eq!(errors["response_action"], "errors");
    assert_eq!(errors["errors"]["duration"], "`orders` allows at most 2h per session; ask for 2h or less");
    assert!(t.sessions_of(ALICE).await.is_empty());

    let ok = t.driver.interaction(t.driver.view_submission(&form("2h"))).await.unwrap();
    assert_eq!((ok.status, ok.body.as_str()), (200, ""), "a valid form closes");
    let posts = t.slack.wait_for("chat.postMessage", 2, SOON).await.unwrap();
    assert_eq!(posts.iter().filter(|c| c.param_str("channel") == Some(APPROVALS)).count(), 1);
    assert!(posts.iter().any(|c| c.param_str("channel") == Some(ALICE) && c.text().contains("sent to the approvers")));
    let sessions = t.sessions_of(ALICE).await;
    assert_eq!((sessions.len(), sessions[0].role, sessions[0].duration.to_string()), (1, Role::Dml, "2h".into()));
}

#[tokio::test]
async fn a_retried_event_is_handled_once() {
    let t = spawn_app().await;
    let mention = event_callback(json!({"type": "app_mention", "user": ALICE, "channel": ACCESS, "text": "<@U0POWERBOT> help", "ts": "1700000000.000100", "event_ts": "1700000000.000100"}));

    assert_eq!(t.driver.event(mention.clone(), None).await.unwrap().status, 200);
    assert_eq!(t.driver.event(mention.clone(), Some(1)).await.unwrap().status, 200);
    assert_eq!(t.driver.event(mention, Some(2)).await.unwrap().status, 200);
    let other = event_callback(json!({"type": "app_mention", "user": BOB, "channel": ACCESS, "text": "<@U0POWERBOT>", "ts": "1700000001.000100", "event_ts": "1700000001.000100"}));
    t.driver.event(other, None).await.unwrap();

    t.slack.wait_for("chat.postMessage", 2, SOON).await.unwrap();
    // Two distinct events, two answers; a third would be a retry handled twice. Give it a moment.
    let third = t.slack.wait_for("chat.postMessage", 3, Duration::from_millis(500)).await;
    assert!(third.is_err(), "a retried event was handled again");
    assert!(t.slack.calls_to("chat.postMessage")[0].text().contains("/powerpole request"));
}

#[tokio::test]
async fn url_verification_echoes_the_challenge_and_healthz_answers() {
    let t = spawn_app().await;
    let reply = t.driver.event(url_verification("3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P"), None).await.unwrap();
    assert_eq!(reply.status, 200);
    assert_eq!(reply.json().unwrap()["challenge"], "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P");
    let health = reqwest::get(format!("http://{}/healthz", t.addr)).await.unwrap();
    assert_eq!(health.status(), 200);
}

/// Slack's POSTs are answered without the router (`serve`'s gate); what is not one of them still
/// gets the router's answer.
#[tokio::test]
async fn only_a_post_to_a_slack_path_is_handled_and_every_answer_names_its_request() {
    let t = spawn_app().await;
    let reply = t.command(ALICE, "help").await;
    assert_eq!(reply.status, 200);
    let client = reqwest::Client::new();
    for path in ["/slack/commands", "/slack/interactions", "/slack/events"] {
        let get = client.get(format!("http://{}{path}", t.addr)).send().await.unwrap();
        assert_eq!(get.status(), 405, "GET {path}");
        let unsigned = client.post(format!("http://{}{path}?x=1", t.addr)).body("text=help").send().await.unwrap();
        assert_eq!(unsigned.status(), 401, "POST {path} with a query, unsigned");
        let id = unsigned.headers().get("x-request-id").and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
        assert!(id.len() == 16 && id.bytes().all(|b| b.is_ascii_hexdigit()), "POST {path}: request id {id:?}");
    }
    for path in ["/slack/commands/", "/slack/command", "/slack", "/"] {
        let post = client.post(format!("http://{}{path}", t.addr)).body("text=help").send().await.unwrap();
        assert_eq!(post.status(), 404, "POST {path}");
    }
    assert!(t.slack.calls_to("chat.postMessage").is_empty(), "nothing was posted");
}

#[tokio::test]
async fn a_signed_but_malformed_body_is_a_bad_request_with_no_side_effect() {
    let t = spawn_app().await;
    let reply = t.driver.post("/slack/interactions", "application/x-www-form-urlencoded", "payload=%7Bnot%20json".into(), &[]).await.unwrap();
    assert_eq!(reply.status, 400);
    assert!(t.slack.calls().is_empty());
}
