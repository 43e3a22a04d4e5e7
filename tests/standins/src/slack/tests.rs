use std::time::Duration;

use serde_json::{json, Value};

use super::*;

const TOKEN: &str = "Bearer xoxb-standin-test";
const SOON: Duration = Duration::from_secs(5);

/// Sends `request` as the bot and reads the stand-in's JSON answer.
async fn answer(request: reqwest::RequestBuilder) -> Value {
    request
        .header("Authorization", TOKEN)
        .send()
        .await
        .expect("the stand-in answers")
        .json()
        .await
        .expect("the stand-in answers JSON")
}

async fn call_json(slack: &SlackStandin, method: &str, body: Value) -> Value {
    answer(reqwest::Client::new().post(format!("{}/{method}", slack.api_url())).json(&body)).await
}

/// A GET with a query string, as slack-morphism sends the read methods.
async fn call_get(slack: &SlackStandin, method_and_query: &str) -> Value {
    answer(reqwest::Client::new().get(format!("{}/{method_and_query}", slack.api_url()))).await
}

async fn call_form(slack: &SlackStandin, method: &str, fields: &[(&str, &str)]) -> Value {
    answer(
        reqwest::Client::new()
            .post(format!("{}/{method}", slack.api_url()))
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body(serde_urlencoded::to_string(fields).expect("encodable")),
    )
    .await
}

#[tokio::test]
async fn chat_post_message_answers_a_fresh_ts_and_records_the_call() {
    let slack = SlackStandin::start().await;
    let first = call_json(
        &slack,
        "chat.postMessage",
        json!({"channel": "C1", "text": "one"}),
    )
    .await;
    let second = call_json(
        &slack,
        "chat.postMessage",
        json!({"channel": "C1", "text": "two"}),
    )
    .await;

    assert_eq!(first["ok"], json!(true));
    assert_eq!(first["channel"], json!("C1"));
    assert_eq!(first["message"]["text"], json!("one"));
    assert_eq!(first["message"]["ts"], first["ts"]);
    let (ts1, ts2) = (
        first["ts"].as_str().unwrap(),
        second["ts"].as_str().unwrap(),
    );
    assert_ne!(ts1, ts2);
    let (secs, fraction) = ts1.split_once('.').expect("ts has a dot");
    assert!(
        secs.len() >= 10 && fraction.len() == 6,
        "{ts1} looks like 1700000000.000100"
    );

    let calls = slack.calls_to("chat.postMessage");
    assert_eq!(calls.len(), 2);
    assert_eq!(calls[0].param_str("text"), Some("one"));
    assert_eq!(calls[0].response, first);
    assert!(calls[0].ok() && !calls[0].rate_limited);
}

#[tokio::test]
async fn form_fields_holding_json_stay_strings_and_param_json_parses_them() {
    let slack = SlackStandin::start().await;
    let blocks = r#"[{"type":"section","text":{"type":"mrkdwn","text":"*hello*"}}]"#;
    let answer = call_form(
        &slack,
        "chat.postMessage",
        &[("channel", "C1"), ("blocks", blocks)],
    )
    .await;

    assert_eq!(answer["ok"], json!(true));
    assert_eq!(answer["message"]["blocks"][0]["type"], json!("section"));
    let call = &slack.calls()[0];
    assert_eq!(call.param_str("blocks"), Some(blocks));
    assert_eq!(call.param_json("blocks"), serde_json::from_str(blocks).ok());
    assert_eq!(call.blocks().len(), 1);
    assert_eq!(text_of(call), "*hello*");
}

#[tokio::test]
async fn get_query_strings_are_read_as_parameters() {
    let slack = SlackStandin::start().await;
    slack.add_user("U1", "alice@example.com", "UTC");
    let answer = call_get(&slack, "users.info?user=U1").await;
    assert_eq!(
        answer["user"]["profile"]["email"],
        json!("alice@example.com")
    );
    assert_eq!(slack.calls()[0].params, json!({"user": "U1"}));
}

#[tokio::test]
async fn a_missing_token_is_not_authed_and_a_non_bot_token_is_invalid_auth() {
    let slack = SlackStandin::start().await;
    let http = reqwest::Client::new();
    let url = format!("{}/auth.test", slack.api_url());
    let missing: Value = http.post(&url).send().await.unwrap().json().await.unwrap();
    let user_token: Value = http
        .post(&url)
        .header("Authorization", "Bearer xoxp-user-token")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let form_token = call_form(&slack, "auth.test", &[("token", "xoxb-in-the-form")]).await;

    assert_eq!(missing, json!({"ok": false, "error": "not_authed"}));
    assert_eq!(user_token, json!({"ok": false, "error": "invalid_auth"}));
    assert_eq!(form_token["user_id"], json!(BOT_USER_ID));
    assert_eq!(slack.calls().len(), 3, "refused calls are recorded too");
}

#[tokio::test]
async fn unknown_methods_answer_unknown_method_and_are_recorded() {
    let slack = SlackStandin::start().await;
    let answer = call_json(&slack, "chat.teleport", json!({"channel": "C1"})).await;
    assert_eq!(answer, json!({"ok": false, "error": "unknown_method"}));
    assert_eq!(
        slack.calls_to("chat.teleport")[0].error(),
        Some("unknown_method")
    );
}

#[tokio::test]
async fn users_come_from_the_directory_with_email_and_time_zone() {
    let slack = SlackStandin::start().await;
    slack.add_user("U01ALICE", "alice.smith@example.com", "Asia/Kolkata");

    let info = call_json(&slack, "users.info", json!({"user": "U01ALICE"})).await;
    let by_email = call_json(
        &slack,
        "users.lookupByEmail",
        json!({"email": "Alice.Smith@example.com"}),
    )
    .await;
    let unknown = call_json(&slack, "users.info", json!({"user": "U404"})).await;
    let unknown_email = call_json(
        &slack,
        "users.lookupByEmail",
        json!({"email": "x@example.com"}),
    )
    .await;

    let user = &info["user"];
    assert_eq!(user["id"], json!("U01ALICE"));
    assert_eq!(user["profile"]["email"], json!("alice.smith@example.com"));
    assert_eq!(user["real_name"], json!("Alice Smith"));
    assert_eq!(user["tz"], json!("Asia/Kolkata"));
    assert_eq!(user["tz_offset"], json!(19800), "India has no summer time");
    assert_eq!(by_email["user"], info["user"]);
    assert_eq!(unknown, json!({"ok": false, "error": "user_not_found"}));
    assert_eq!(
        unknown_email,
        json!({"ok": false, "error": "users_not_found"})
    );
}

#[tokio::test]
async fn a_time_zone_that_does_not_exist_is_refused() {
    let slack = SlackStandin::start().await;
    assert!(slack
        .try_add_user("U1", "a@example.com", "Mars/Olympus")
        .is_err());
}

#[tokio::test]
async fn user_groups_list_their_members() {
    let slack = SlackStandin::start().await;
    slack.add_group("S0APPROVERS", &["U1", "U2"]);
    let members = call_form(
        &slack,
        "usergroups.users.list",
        &[("usergroup", "S0APPROVERS")],
    )
    .await;
    let unknown = call_form(&slack, "usergroups.users.list", &[("usergroup", "S404")]).await;
    assert_eq!(members, json!({"ok": true, "users": ["U1", "U2"]}));
    assert_eq!(unknown["error"], json!("no_such_subteam"));
}

#[tokio::test]
async fn chat_update_keeps_what_it_does_not_replace_and_needs_an_existing_message() {
    let slack = SlackStandin::start().await;
    let blocks = json!([{"type": "section", "text": {"type": "mrkdwn", "text": "card"}}]);
    let posted = call_json(
        &slack,
        "chat.postMessage",
        json!({"channel": "C1", "text": "t", "blocks": blocks}),
    )
    .await;
    let ts = posted["ts"].as_str().unwrap();

    let updated = call_json(
        &slack,
        "chat.update",
        json!({"channel": "C1", "ts": ts, "text": "approved"}),
    )
    .await;
    let missing = call_json(
        &slack,
        "chat.update",
        json!({"channel": "C1", "ts": "1.000001", "text": "x"}),
    )
    .await;

    assert_eq!(updated["ts"], json!(ts));
    assert_eq!(updated["message"]["text"], json!("approved"));
    assert_eq!(updated["message"]["blocks"], blocks);
    assert_eq!(missing["error"], json!("message_not_found"));
    assert_eq!(slack.message("C1", ts).unwrap()["text"], json!("approved"));

    let deleted = call_json(&slack, "chat.delete", json!({"channel": "C1", "ts": ts})).await;
    assert_eq!(deleted, json!({"ok": true, "channel": "C1", "ts": ts}));
    assert_eq!(slack.message("C1", ts), None);
}

#[tokio::test]
async fn conversations_history_lists_a_channels_messages_newest_first_after_oldest() {
    let slack = SlackStandin::start().await;
    let first = call_json(&slack, "chat.postMessage", json!({"channel": "U01ALICE", "text": "one"})).await;
    call_json(&slack, "chat.postMessage", json!({"channel": "C1", "text": "elsewhere"})).await;
    call_json(&slack, "chat.postMessage", json!({"channel": "U01ALICE", "text": "two"})).await;
    call_json(&slack, "chat.postMessage", json!({"channel": "U01ALICE", "text": "three"})).await;
    let ts = first["ts"].as_str().unwrap();
    let texts = |answer: &Value| -> Vec<String> { answer["messages"].as_array().unwrap().iter().map(|m| m["text"].as_str().unwrap().to_owned()).collect() };
    let answer = call_get(&slack, &format!("conversations.history?channel=DU01ALICE&oldest={ts}&limit=1")).await;
    assert_eq!(texts(&answer), ["three"]);
    assert_eq!(answer["has_more"], json!(true), "\"two\" was left out by the limit");
    let all = call_json(&slack, "conversations.history", json!({"channel": "DU01ALICE"})).await;
    assert_eq!(texts(&all), ["three", "two", "one"]);
    assert_eq!(all["messages"][0]["bot_id"], json!(BOT_ID));
}

#[tokio::test]
async fn a_message_to_a_user_lands_in_the_dm_that_conversations_open_names() {
    let slack = SlackStandin::start().await;
    let opened = call_json(&slack, "conversations.open", json!({"users": "U01ALICE"})).await;
    let again = call_json(&slack, "conversations.open", json!({"users": ["U01ALICE"]})).await;
    let posted = call_json(
        &slack,
        "chat.postMessage",
        json!({"channel": "U01ALICE", "text": "hi"}),
    )
    .await;

    assert_eq!(opened["channel"]["id"], json!("DU01ALICE"));
    assert_eq!(opened["already_open"], json!(false));
    assert_eq!(again["already_open"], json!(true));
    assert_eq!(posted["channel"], json!("DU01ALICE"));
}

#[tokio::test]
async fn ephemeral_messages_need_a_user_and_answer_a_message_ts() {
    let slack = SlackStandin::start().await;
    let sent = call_json(
        &slack,
        "chat.postEphemeral",
        json!({"channel": "C1", "user": "U1", "text": "only you"}),
    )
    .await;
    let no_user = call_json(
        &slack,
        "chat.postEphemeral",
        json!({"channel": "C1", "text": "x"}),
    )
    .await;
    let no_text = call_json(&slack, "chat.postMessage", json!({"channel": "C1"})).await;
    let empty_text = call_json(
        &slack,
        "chat.postMessage",
        json!({"channel": "C1", "text": ""}),
    )
    .await;
    assert!(sent["message_ts"].is_string());
    assert_eq!(no_user["error"], json!("user_not_in_channel"));
    assert_eq!(no_text["error"], json!("no_text"));
    assert_eq!(empty_text["error"], json!("no_text"));
}

#[tokio::test]
async fn views_are_opened_updated_by_id_or_hash_and_pushed() {
    let slack = SlackStandin::start().await;
    let view = json!({"type": "modal", "callback_id": "request", "title": {"type": "plain_text", "text": "Request"}, "blocks": []});
    let opened = call_form(
        &slack,
        "views.open",
        &[("trigger_id", "1.2.abc"), ("view", &view.to_string())],
    )
    .await;
    let id = opened["view"]["id"].as_str().unwrap().to_owned();
    let hash = opened["view"]["hash"].as_str().unwrap().to_owned();

    let mut changed = view.clone();
    changed["title"]["text"] = json!("Request access");
    let updated = call_json(
        &slack,
        "views.update",
        json!({"view_id": id, "hash": hash, "view": changed}),
    )
    .await;
    let stale = call_json(
        &slack,
        "views.update",
        json!({"view_id": id, "hash": hash, "view": changed}),
    )
    .await;
    let pushed = call_json(
        &slack,
        "views.push",
        json!({"trigger_id": "1.2.def", "view": view}),
    )
    .await;
    let no_trigger = call_json(&slack, "views.open", json!({"view": view})).await;

    assert_eq!(opened["view"]["callback_id"], json!("request"));
    assert_eq!(opened["view"]["team_id"], json!(TEAM_ID));
    assert_eq!(updated["view"]["id"], json!(id));
    assert_eq!(updated["view"]["title"]["text"], json!("Request access"));
    assert_eq!(stale["error"], json!("hash_conflict"));
    assert_ne!(pushed["view"]["id"], json!(id));
    assert_eq!(no_trigger["error"], json!("invalid_arguments"));
    assert_eq!(text_of(&slack.calls_to("views.open")[0]), "Request");
}

#[tokio::test]
async fn rate_limited_calls_answer_429_with_retry_after_then_recover() {
    let slack = SlackStandin::start().await;
    slack.rate_limit_next("chat.postMessage", 2, 7);
    let http = reqwest::Client::new();
    let post = || {
        http.post(format!("{}/chat.postMessage", slack.api_url()))
            .header("Authorization", TOKEN)
            .json(&json!({"channel": "C1", "text": "hi"}))
            .send()
    };
    let first = post().await.unwrap();
    assert_eq!(first.status(), 429);
    assert_eq!(first.headers()["retry-after"], "7");
    assert_eq!(
        first.json::<Value>().await.unwrap()["error"],
        json!("ratelimited")
    );
    assert_eq!(post().await.unwrap().status(), 429);
    assert_eq!(post().await.unwrap().status(), 200);

    let calls = slack.calls_to("chat.postMessage");
    let limited: Vec<bool> = calls.iter().map(|c| c.rate_limited).collect();
    assert_eq!(limited, [true, true, false]);
}

#[tokio::test]
async fn response_url_posts_are_recorded_under_their_id() {
    let slack = SlackStandin::start().await;
    let answer = reqwest::Client::new()
        .post(slack.response_url("cmd-7"))
        .json(&json!({"text": "Request received", "response_type": "ephemeral"}))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 200);
    let recorded = slack.responses_to("cmd-7");
    assert_eq!(recorded.len(), 1);
    assert_eq!(recorded[0].method, RESPONSE_URL_METHOD);
    assert_eq!(recorded[0].text(), "Request received");
    assert!(slack.responses_to("other").is_empty());
}

#[tokio::test]
async fn held_response_url_posts_wait_unrecorded_until_released() {
    let slack = SlackStandin::start().await;
    slack.hold_responses();
    let url = slack.response_url("held-1");
    let post = tokio::spawn(async move { reqwest::Client::new().post(url).json(&json!({"text": "later"})).send().await.map(|r| r.status()) });
    // A hold that let the post through would record it within this wait.
    assert!(slack.wait_for(RESPONSE_URL_METHOD, 1, Duration::from_millis(500)).await.is_err(), "a held post was recorded before the release");
    assert!(!post.is_finished(), "a held post was answered before the release");
    slack.release_responses();
    assert_eq!(post.await.unwrap().unwrap(), 200);
    assert_eq!(slack.responses_to("held-1").len(), 1);
}

#[tokio::test]
async fn wait_for_wakes_when_the_awaited_call_arrives() {
    let slack = SlackStandin::start().await;
    let poster = slack.clone();
    let waiter = tokio::spawn(async move { poster.wait_for("chat.postMessage", 2, SOON).await });
    call_json(&slack, "auth.test", json!({})).await;
    call_json(
        &slack,
        "chat.postMessage",
        json!({"channel": "C1", "text": "1"}),
    )
    .await;
    call_json(
        &slack,
        "chat.postMessage",
        json!({"channel": "C1", "text": "2"}),
    )
    .await;
    let calls = waiter.await.unwrap().expect("both posts arrive");
    assert_eq!(calls.len(), 2);
}

// tokio's paused clock needs its `test-util` feature, which would rebuild half the workspace;
// a short real timeout does the same job.
#[tokio::test]
async fn wait_for_gives_up_after_the_timeout_and_says_what_it_saw() {
    let slack = SlackStandin::start().await;
    slack.shared.record(RecordedCall {
        method: "auth.test".into(),
        params: json!({}),
        received_at: Utc::now(),
        response: json!({"ok": true}),
        rate_limited: false,
        response_url_id: None,
    });
    let err = slack
        .wait_for("chat.update", 1, Duration::from_millis(50))
        .await
        .unwrap_err();
    assert_eq!(err.seen, ["auth.test"]);
    assert!(
        err.to_string().contains("1 call(s) to chat.update"),
        "{err}"
    );
}

#[tokio::test]
async fn clear_forgets_the_calls_but_not_the_directory() {
    let slack = SlackStandin::start().await;
    slack.add_user("U1", "a@example.com", "UTC");
    call_json(&slack, "users.info", json!({"user": "U1"})).await;
    slack.clear();
    assert!(slack.calls().is_empty());
    assert_eq!(
        call_json(&slack, "users.info", json!({"user": "U1"})).await["ok"],
        json!(true)
    );
}

#[tokio::test]
async fn the_control_surface_fills_the_directory_and_lists_the_timeline() {
    let slack = SlackStandin::start().await;
    let http = reqwest::Client::new();
    let base = slack.base_url();
    let added = http
        .post(format!("{base}/_standin/users"))
        .json(&json!({"id": "U1", "email": "a@example.com", "tz": "Europe/Berlin"}))
        .send()
        .await
        .unwrap();
    let bad_tz = http
        .post(format!("{base}/_standin/users"))
        .json(&json!({"id": "U2", "email": "b@example.com", "tz": "Nowhere"}))
        .send()
        .await
        .unwrap();
    call_json(
        &slack,
        "chat.postMessage",
        json!({"channel": "C1", "text": "hello"}),
    )
    .await;
    let timeline: Value = http
        .get(format!("{base}/_standin/calls"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();

    assert_eq!(added.status(), 204);
    assert_eq!(bad_tz.status(), 400);
    assert_eq!(timeline[0]["method"], json!("chat.postMessage"));
    assert_eq!(timeline[0]["text"], json!("hello"));
}

/// The product's own Slack client must understand every answer.
mod with_slack_morphism {
    use slack_morphism::errors::SlackClientError;
    use slack_morphism::prelude::*;

    use super::*;

    /// A client set up the way STACK-NOTES.md says the product sets up its own.
    fn session_for(slack: &SlackStandin) -> (SlackHyperClient, SlackApiToken) {
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_native_roots()
            .expect("native roots")
            .https_or_http()
            .enable_http1()
            .build();
        let client = SlackClient::new(
            SlackClientHyperConnector::with_connector(connector)
                .with_slack_api_url(&slack.api_url()),
        );
        (client, SlackApiToken::new("xoxb-standin-test".into()))
    }

    fn card() -> SlackMessageContent {
        SlackMessageContent::new()
            .with_text("Access request".into())
            .with_blocks(slack_blocks![
                some_into(SlackHeaderBlock::new(pt!("Database access"))),
                some_into(SlackSectionBlock::new().with_text(md!("*alice* wants READ on orders"))),
                some_into(SlackActionsBlock::new(slack_blocks![
                    some_into(
                        SlackBlockButtonElement::new(pt!("Approve"))
                            .with_action_id("approve".into())
                            .with_value("r-1".into())
                    ),
                    some_into(
                        SlackBlockButtonElement::new(pt!("Deny"))
                            .with_action_id("deny".into())
                            .with_value("r-1".into())
                    )
                ]))
            ])
    }

    #[tokio::test]
    async fn understands_every_answer_powerpole_relies_on() {
        let slack = SlackStandin::start().await;
        slack.add_user("U01ALICE", "alice@example.com", "Europe/Berlin");
        slack.add_group("S0APPROVERS", &["U01BOB"]);
        let (client, token) = session_for(&slack);
        let session = client.open_session(&token);

        let auth = session.auth_test().await.expect("auth.test");
        assert_eq!(auth.user_id.0, BOT_USER_ID);

        let posted = session
            .chat_post_message(&SlackApiChatPostMessageRequest::new(
                "C0APPROVALS".into(),
                card(),
            ))
            .await
            .expect("chat.postMessage");
        let updated = session
            .chat_update(&SlackApiChatUpdateRequest::new(
                "C0APPROVALS".into(),
                SlackMessageContent::new().with_text("Approved by bob".into()),
                posted.ts.clone(),
            ))
            .await
            .expect("chat.update");
        assert_eq!(updated.ts, posted.ts);
        session
            .chat_post_ephemeral(&SlackApiChatPostEphemeralRequest::new(
                "C0APPROVALS".into(),
                "U01BOB".into(),
                SlackMessageContent::new().with_text("You cannot approve this".into()),
            ))
            .await
            .expect("chat.postEphemeral");

        let dm = session
            .conversations_open(
                &SlackApiConversationsOpenRequest::new().with_users(vec!["U01ALICE".into()]),
            )
            .await
            .expect("conversations.open");
        assert_eq!(dm.channel.id.0, "DU01ALICE");
        session
            .conversations_open_full(
                &SlackApiConversationsOpenRequest::new().with_users(vec!["U01ALICE".into()]),
            )
            .await
            .expect("conversations.open with return_im");

        let alice = session
            .users_info(&SlackApiUsersInfoRequest::new("U01ALICE".into()))
            .await
            .expect("users.info");
        let profile = alice.user.profile.expect("a profile");
        assert_eq!(
            profile.email.map(|e| e.0),
            Some("alice@example.com".to_owned())
        );
        assert_eq!(alice.user.tz.as_deref(), Some("Europe/Berlin"));
        session
            .users_lookup_by_email(&SlackApiUsersLookupByEmailRequest::new(EmailAddress(
                "alice@example.com".into(),
            )))
            .await
            .expect("users.lookupByEmail");
        let members = session
            .usergroups_users_list(&SlackApiUserGroupsUsersListRequest::new(
                "S0APPROVERS".into(),
            ))
            .await
            .expect("usergroups.users.list");
        assert_eq!(members.users, vec![SlackUserId("U01BOB".into())]);

        let modal = SlackView::Modal(
            SlackModalView::new(
                pt!("Request access"),
                slack_blocks![some_into(SlackInputBlock::new(
                    pt!("Reason"),
                    SlackInputBlockElement::PlainTextInput(
                        SlackBlockPlainTextInputElement::new().with_action_id("reason".into())
                    )
                ))],
            )
            .with_callback_id("request".into()),
        );
        let opened = session
            .views_open(&SlackApiViewsOpenRequest::new(
                "1.2.abc".into(),
                modal.clone(),
            ))
            .await
            .expect("views.open");
        session
            .views_update(
                &SlackApiViewsUpdateRequest::new(modal.clone())
                    .with_view_id(opened.view.state_params.id.clone()),
            )
            .await
            .expect("views.update");
        session
            .views_push(&SlackApiViewsPushRequest::new("1.2.def".into(), modal))
            .await
            .expect("views.push");

        session
            .chat_delete(&SlackApiChatDeleteRequest::new(
                "C0APPROVALS".into(),
                posted.ts,
            ))
            .await
            .expect("chat.delete");
        client
            .respond_to_event(
                &SlackResponseUrl(slack.response_url("cmd-1").parse().expect("a URL")),
                &SlackApiPostWebhookMessageRequest::new(
                    SlackMessageContent::new().with_text("Got it".into()),
                ),
            )
            .await
            .expect("response_url");

        assert_eq!(slack.responses_to("cmd-1")[0].text(), "Got it");
        let card_call = &slack.calls_to("chat.postMessage")[0];
        assert_eq!(
            card_call.text(),
            "Access request\nDatabase access\n*alice* wants READ on orders\n[Approve] [Deny]"
        );
    }

    #[tokio::test]
    async fn sees_slack_errors_and_rate_limits_as_slack_would_give_them() {
        let slack = SlackStandin::start().await;
        let (client, token) = session_for(&slack);
        let session = client.open_session(&token);

        let unknown = session
            .users_info(&SlackApiUsersInfoRequest::new("U404".into()))
            .await
            .expect_err("no such user");
        match unknown {
            SlackClientError::ApiError(err) => assert_eq!(err.code, "user_not_found"),
            other => panic!("expected an API error, got {other:?}"),
        }

        slack.rate_limit_next("chat.postMessage", 1, 7);
        let limited = session
            .chat_post_message(&SlackApiChatPostMessageRequest::new("C1".into(), card()))
            .await
            .expect_err("rate limited");
        match limited {
            SlackClientError::RateLimitError(err) => {
                assert_eq!(err.retry_after, Some(Duration::from_secs(7)))
            }
            other => panic!("expected a rate limit error, got {other:?}"),
        }
    }
}
